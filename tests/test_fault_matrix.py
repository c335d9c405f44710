# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Fault matrix (issue 14): every bad input, bad file or fault a user can meet, one row each with its expected outcome.

Groups: videos, frame arrays, sampling arguments, prompts, model inputs, conversion (incl. data-loss commands,
interruption at fixed points, full disk and read-only destinations on a small tmpfs), loading, CLI. Every row either
succeeds (and its result is checked), raises a named error with a message that says what is wrong, warns, or (CLI rows)
exits with a given status and one `videochat COMMAND: error: ...` line and never a Python traceback. Rows that change
nothing must leave the folders they guard with the same listing and the same bytes (sha256). Slow rows are marked
`heavy` (CI runs them too).
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from fault_matrix_support import (
    REPO,
    Env,
    Exits,
    Ok,
    Raises,
    Row,
    Warns,
    decode_all,
    frame_pattern,
    leftovers,
    run_cli,
    run_row,
    snapshot,
)
from PIL import Image

from videochat.convert.output_safety import MARKER_NAME as MARKER
from videochat.convert.output_safety import files_in


GROUPS = ("videos", "frame arrays", "sampling", "prompts", "model inputs", "conversion", "loading", "cli")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    environment = Env(tmp_path_factory.mktemp("fault_matrix"))
    yield environment
    environment.close()


# ---------------------------------------------------------------------------------------------------------------------
# helpers used by the rows
# ---------------------------------------------------------------------------------------------------------------------


def load(env, key, **kwargs):
    from videochat.video_utils_videochat import load_video

    kwargs.setdefault("num_frames", 4)
    return load_video(env.videos.get(key, key) if isinstance(key, str) else key, **kwargs)


def frames_of_shape(shape):
    def check(result, env, ctx):
        frames = result[0] if isinstance(result, tuple) else result
        assert tuple(frames.shape) == tuple(shape), frames.shape

    return check


def equals_sampled(key, turns=0):
    """The frames equal the sequentially decoded frames of video `key` at the returned indices, turned `turns`
    quarter turns counter-clockwise."""

    def check(result, env, ctx):
        frames, metadata = result
        reference = decode_all(env.videos[key])[metadata.frames_indices]
        assert np.array_equal(frames, np.rot90(reference, turns, axes=(1, 2)))

    return check


def rgb(array):
    from videochat.video_utils_videochat import to_rgb_frames

    return to_rgb_frames(array)


def video_array(frames=8, size=32, dtype=np.uint8, fill=None):
    array = np.stack([frame_pattern(i, size, size) for i in range(frames)]).astype(dtype)
    if fill is not None:
        array[...] = fill
    return array


def process(env, text="<video> what happens?", videos=None, **kwargs):
    videos = video_array() if videos is None else videos
    return env.processor(text=text, videos=videos, return_tensors="pt", **kwargs)


def old_style_processor(env):
    """A processor with the placeholder ids of folders converted by videochat 0.1.0 (`<unk>`, id 0)."""
    processor = env.processor
    return type(processor)(
        processor.image_processor,
        processor.tokenizer,
        processor.qformer_tokenizer,
        chat_template=processor.chat_template,
        num_query_tokens=processor.num_query_tokens,
        video_token_id=0,
        image_token_id=0,
        qformer_instruction_mode=processor.qformer_instruction_mode,
        add_bos_to_every_segment=processor.add_bos_to_every_segment,
    )


def forward(env, **changes):
    inputs = {**env.inputs, **changes}
    inputs = {key: value for key, value in inputs.items() if value is not None}
    with torch.no_grad():
        return env.model(**inputs)


def generate(env, **changes):
    inputs = {key: value for key, value in {**env.inputs, **changes}.items() if value is not None}
    return env.model.generate(**inputs, max_new_tokens=2, do_sample=False)


def message(video_block, text="what happens?"):
    return [{"role": "user", "content": [video_block, {"type": "text", "text": text}]}]


def chat_template(env, conversation, **kwargs):
    return env.processor.apply_chat_template(
        conversation, add_generation_prompt=True, tokenize=True, return_dict=True, **kwargs
    )


@contextlib.contextmanager
def umask(mask):
    saved = os.umask(mask)
    try:
        yield
    finally:
        os.umask(saved)


@contextlib.contextmanager
def hub_offline():
    import huggingface_hub.constants as constants

    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


@contextlib.contextmanager
def patched(target, name, value):
    saved = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, saved)


def convert(source, output, **kwargs):
    from videochat.convert.converter import convert as run

    return run(source, output, progress=False, **kwargs)


def modes(folder):
    return {
        path.name: oct(path.stat().st_mode & 0o777)
        for path in [Path(folder), *Path(folder).iterdir()]
        if path.exists()
    }


def marker_files(folder):
    return json.loads((Path(folder) / ".videochat_output.json").read_text())["files"]


def converted_copy(env, name="converted"):
    return env.copy(env.converted, name)


def edit_weights(folder, remove=(), add=None, shape=None):
    from safetensors.torch import load_file, save_file

    weights = load_file(Path(folder) / "model.safetensors")
    for key in remove:
        del weights[key]
    if add:
        weights.update(add)
    if shape:
        weights[shape[0]] = torch.zeros(shape[1])
    save_file(weights, Path(folder) / "model.safetensors", metadata={"format": "pt"})
    return folder


def truncate(path, keep=0.5):
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep)])
    return path


def fixture(*parts):
    from conftest import shared_path

    return shared_path("fixtures", *parts)


def videochat2_copy(env, name):
    """A writable copy of a VideoChat2 fixture (stage file, original config, base LLM folder)."""
    return env.copy(fixture("videochat2", name), name)


# ---------------------------------------------------------------------------------------------------------------------
# videos
# ---------------------------------------------------------------------------------------------------------------------

V = "videos"
ROWS = [
    Row(
        V,
        "missing file",
        lambda e, c: load(e, e.root / "missing.mp4"),
        Raises(FileNotFoundError, "not found.*missing"),
    ),
    Row(V, "a folder", lambda e, c: load(e, "folder"), Raises(ValueError, "got a directory")),
    Row(V, "empty file", lambda e, c: load(e, "empty"), Raises(ValueError, r"empty \(0 bytes\)")),
    Row(V, "random bytes", lambda e, c: load(e, "garbage"), Raises(ValueError, "Could not open .*garbage.mp4")),
    Row(V, "text file named .mp4", lambda e, c: load(e, "text"), Raises(ValueError, "Could not open .*notes.mp4")),
    Row(
        V,
        "PNG named .mp4 is a one-frame video",
        lambda e, c: load(e, "png_named_mp4"),
        Ok(frames_of_shape((4, 48, 64, 3))),
    ),
    Row(
        V,
        "web-style MP4 cut at 50%: warned, sampled from the frames present",
        lambda e, c: load(e, "web_cut", num_frames=8),
        Warns(r"declares 48 frames but the file holds \d+.*truncated", equals_sampled("web")),
    ),
    Row(
        V,
        "MP4 with its index at the end, cut at 50%",
        lambda e, c: load(e, "moov_last_cut"),
        Raises(ValueError, "Could not open"),
    ),
    Row(
        V,
        "MP4 cut inside its header",
        lambda e, c: load(e, "header_only"),
        Raises(ValueError, "Could not open|no frames"),
    ),
    Row(V, "file named concat:good.mp4 is that file", lambda e, c: load(e, "concat"), Ok(equals_sampled("other"))),
    Row(
        V,
        "file named pipe:0 is that file (stdin untouched)",
        lambda e, c: load(e, "pipe"),
        Ok(equals_sampled("other")),
    ),
    Row(V, "file named file:other.mp4", lambda e, c: load(e, "file_prefixed"), Ok(equals_sampled("other"))),
    Row(V, "spaces, parentheses and accents in the name", lambda e, c: load(e, "spaces"), Ok(equals_sampled("good"))),
    Row(V, "name starting with a dash", lambda e, c: load(e, "dash"), Ok(equals_sampled("good"))),
    Row(
        V,
        "named pipe (FIFO): refused, no hang",
        lambda e, c: load(e, "fifo"),
        Raises(ValueError, "not a regular file"),
    ),
    Row(
        V,
        "character device /dev/zero",
        lambda e, c: load(e, Path("/dev/zero")),
        Raises(ValueError, "not a regular file"),
    ),
    Row(V, "symbolic link to a video", lambda e, c: load(e, "symlink"), Ok(equals_sampled("good"))),
    Row(V, "broken symbolic link", lambda e, c: load(e, "broken_link"), Raises(FileNotFoundError, "not found")),
    Row(
        V,
        "http URL without a network",
        lambda e, c: load(e, "http://127.0.0.1:9/clip.mp4"),
        Raises(ValueError, "Could not download the video http://127.0.0.1:9/clip.mp4.*network"),
    ),
    Row(
        V,
        "https URL of an unknown host",
        lambda e, c: load(e, "https://videochat-fault-matrix.invalid/clip.mp4"),
        Raises(ValueError, "Could not download the video https://videochat-fault-matrix.invalid"),
    ),
    Row(
        V,
        "ftp URL refused",
        lambda e, c: load(e, "ftp://host/clip.mp4"),
        Raises(ValueError, "Only local video files and http"),
    ),
    Row(
        V,
        "rtsp URL refused",
        lambda e, c: load(e, "rtsp://host/stream"),
        Raises(ValueError, "Only local video files and http"),
    ),
    Row(V, "file:// URL", lambda e, c: load(e, f"file://{e.videos['good']}"), Ok(equals_sampled("good"))),
    Row(V, "rotation 90 applied", lambda e, c: load(e, "rot90"), Ok(equals_sampled("plain", turns=1))),
    Row(V, "rotation 180 applied", lambda e, c: load(e, "rot180"), Ok(equals_sampled("plain", turns=2))),
    Row(V, "rotation 270 applied", lambda e, c: load(e, "rot270"), Ok(equals_sampled("plain", turns=3))),
    Row(
        V,
        "rotation kept with apply_rotation=False",
        lambda e, c: load(e, "rot90", apply_rotation=False),
        Ok(equals_sampled("plain")),
    ),
    Row(
        V,
        "decord backend on a rotated video: a clear error (decord 0.6 cannot decode them)",
        lambda e, c: load(e, "rot90", backend="decord"),
        Raises(ValueError, "decord cannot decode .*rot90.mp4: videos with rotation metadata .* PyAV backend"),
    ),
    Row(
        V,
        "rotated video through the processor: upright size in the metadata",
        lambda e, c: process(e, videos=str(e.videos["rot90"]), num_frames=2, return_metadata=True),
        Ok(
            lambda r, e, c: (
                (r["video_metadata"][0].width, r["video_metadata"][0].height) == (48, 64)
                or pytest.fail(str(r["video_metadata"][0]))
            )
        ),
    ),
    Row(V, "audio-only file", lambda e, c: load(e, "audio"), Raises(ValueError, "contains no video stream")),
    Row(V, "GIF", lambda e, c: load(e, "gif"), Ok(frames_of_shape((4, 48, 64, 3)))),
    Row(V, "Matroska", lambda e, c: load(e, "mkv"), Ok(frames_of_shape((4, 48, 64, 3)))),
    Row(V, "WebM (VP9)", lambda e, c: load(e, "webm"), Ok(frames_of_shape((4, 48, 64, 3)))),
    Row(V, "AVI (MPEG-4 part 2)", lambda e, c: load(e, "avi"), Ok(frames_of_shape((4, 48, 64, 3)))),
    Row(
        V,
        "one-frame video, 8 frames asked: the frame repeats",
        lambda e, c: load(e, "single", num_frames=8),
        Ok(lambda r, e, c: r[1].frames_indices == [0] * 8 or pytest.fail(str(r[1].frames_indices))),
    ),
    Row(V, "odd size, 4:4:4 chroma", lambda e, c: load(e, "odd"), Ok(equals_sampled("odd"))),
    Row(
        V,
        "decord backend: concat:-named file",
        lambda e, c: load(e, "concat", backend="decord"),
        Ok(equals_sampled("other")),
    ),
    Row(
        V,
        "decord backend: FIFO refused",
        lambda e, c: load(e, "fifo", backend="decord"),
        Raises(ValueError, "not a regular file"),
    ),
    Row(
        V,
        "decord backend: cut MP4",
        lambda e, c: load(e, "web_cut", backend="decord"),
        Raises(ValueError, "Could not open .*with decord"),
    ),
    Row(V, "pathlib.Path", lambda e, c: load(e, Path(e.videos["good"])), Ok(equals_sampled("good"))),
    Row(
        V,
        "~ is not expanded inside Python",
        lambda e, c: load(e, "~/no-such-video.mp4"),
        Raises(FileNotFoundError, "~/no-such-video"),
    ),
    Row(
        V,
        "bytes instead of a path",
        lambda e, c: process(e, videos=b"\x00\x01"),
        Raises(ValueError, "Unsupported video input of type bytes"),
    ),
    Row(
        V,
        "an integer instead of a video",
        lambda e, c: process(e, videos=7),
        Raises(ValueError, "Unsupported video input of type int"),
    ),
    Row(
        V,
        "a folder through the processor",
        lambda e, c: process(e, videos=str(e.videos["folder"])),
        Raises(ValueError, "directory"),
    ),
    Row(
        V,
        "InternVideo2 loader: concat:-named file",
        lambda e, c: __import__("videochat.video_utils_internvideo2", fromlist=["x"]).load_video_frames(
            e.videos["concat"], 4
        ),
        Ok(frames_of_shape((4, 64, 96, 3))),
    ),
    Row(
        V,
        "InternVideo2 loader: cut MP4 warned",
        lambda e, c: __import__("videochat.video_utils_internvideo2", fromlist=["x"]).load_video_frames(
            e.videos["web_cut"], 4
        ),
        Warns("looks truncated"),
    ),
    Row(
        V,
        "InternVideo2 loader: fewer frames than the stride rule needs",
        lambda e, c: __import__("videochat.video_utils_internvideo2", fromlist=["x"]).load_video_frames(
            e.videos["single"], 4
        ),
        Raises(ValueError, "has 1 frames but 4 are needed"),
    ),
    Row(
        V,
        "image file as a video",
        lambda e, c: load(e, "image"),
        Ok(frames_of_shape((4, 48, 64, 3))),
    ),
]

# ---------------------------------------------------------------------------------------------------------------------
# frame arrays
# ---------------------------------------------------------------------------------------------------------------------

F = "frame arrays"
ROWS += [
    Row(F, "uint8 (T, H, W, 3)", lambda e, c: rgb(video_array()), Ok(frames_of_shape((8, 32, 32, 3)))),
    Row(
        F,
        "channels first (T, 3, H, W)",
        lambda e, c: rgb(video_array().transpose(0, 3, 1, 2)),
        Ok(lambda r, e, c: np.array_equal(r, video_array()) or pytest.fail("moved")),
    ),
    Row(F, "grayscale (T, H, W)", lambda e, c: rgb(video_array()[..., 0]), Ok(frames_of_shape((8, 32, 32, 3)))),
    Row(F, "one channel (T, H, W, 1)", lambda e, c: rgb(video_array()[..., :1]), Ok(frames_of_shape((8, 32, 32, 3)))),
    Row(
        F,
        "RGBA: alpha dropped",
        lambda e, c: rgb(np.concatenate([video_array(), video_array()[..., :1]], -1)),
        Ok(lambda r, e, c: np.array_equal(r, video_array()) or pytest.fail("alpha")),
    ),
    Row(
        F,
        "two channels",
        lambda e, c: rgb(video_array()[..., :2]),
        Raises(ValueError, "channel axis of size 1, 3 or 4"),
    ),
    Row(
        F,
        "6-D array",
        lambda e, c: process(e, videos=video_array()[None, None]),
        Raises(ValueError, "must have 4 dimensions"),
    ),
    Row(F, "2-D array", lambda e, c: rgb(video_array()[0, ..., 0]), Raises(ValueError, "3 or 4 dimensions")),
    Row(F, "zero frames", lambda e, c: rgb(video_array()[:0]), Raises(ValueError, "contains no frames")),
    Row(F, "empty list", lambda e, c: rgb([]), Raises(ValueError, "empty list of frames")),
    Row(
        F,
        "floats in [0, 1] are scaled",
        lambda e, c: rgb(video_array().astype(np.float32) / 255),
        Ok(lambda r, e, c: np.array_equal(r, video_array()) or pytest.fail("scale")),
    ),
    Row(
        F,
        "floats in [0, 255]",
        lambda e, c: rgb(video_array().astype(np.float64)),
        Ok(lambda r, e, c: np.array_equal(r, video_array()) or pytest.fail("scale")),
    ),
    Row(
        F,
        "floats above 255",
        lambda e, c: rgb(video_array(dtype=np.float32, fill=300.0)),
        Raises(ValueError, r"must lie in \[0, 255\]"),
    ),
    Row(
        F,
        "negative values",
        lambda e, c: rgb(video_array(dtype=np.int16, fill=-1)),
        Raises(ValueError, r"must lie in \[0, 255\]"),
    ),
    Row(F, "NaN", lambda e, c: rgb(video_array(dtype=np.float32, fill=np.nan)), Raises(ValueError, "NaN or infinite")),
    Row(
        F,
        "infinity",
        lambda e, c: rgb(video_array(dtype=np.float32, fill=np.inf)),
        Raises(ValueError, "NaN or infinite"),
    ),
    Row(
        F,
        "booleans",
        lambda e, c: rgb(video_array().astype(bool)),
        Raises(ValueError, "Boolean arrays are not videos"),
    ),
    Row(
        F,
        "int16 in range",
        lambda e, c: rgb(video_array().astype(np.int16)),
        Ok(lambda r, e, c: np.array_equal(r, video_array()) or pytest.fail("int16")),
    ),
    Row(
        F,
        "int64 above 255",
        lambda e, c: rgb(video_array(dtype=np.int64, fill=256)),
        Raises(ValueError, r"must lie in \[0, 255\]"),
    ),
    Row(F, "float16", lambda e, c: rgb(video_array().astype(np.float16)), Ok(frames_of_shape((8, 32, 32, 3)))),
    Row(
        F,
        "complex numbers",
        lambda e, c: rgb(video_array().astype(np.complex64)),
        Raises(ValueError, "integers or floats, got an array of dtype complex64"),
    ),
    Row(F, "strings", lambda e, c: rgb(np.full((2, 4, 4, 3), "a")), Raises(ValueError, "integers or floats")),
    Row(
        F,
        "Python objects",
        lambda e, c: rgb(video_array().astype(object)),
        Raises(ValueError, "integers or floats, got an array of dtype object"),
    ),
    Row(
        F, "torch uint8 tensor", lambda e, c: rgb(torch.from_numpy(video_array())), Ok(frames_of_shape((8, 32, 32, 3)))
    ),
    Row(
        F,
        "torch float tensor in [0, 1]",
        lambda e, c: rgb(torch.from_numpy(video_array()).float() / 255),
        Ok(lambda r, e, c: np.array_equal(r, video_array()) or pytest.fail("torch")),
    ),
    Row(
        F,
        "torch bool tensor",
        lambda e, c: rgb(torch.zeros(2, 4, 4, 3, dtype=torch.bool)),
        Raises(ValueError, "Boolean"),
    ),
    Row(
        F,
        "list of PIL images",
        lambda e, c: rgb([Image.fromarray(f) for f in video_array()]),
        Ok(frames_of_shape((8, 32, 32, 3))),
    ),
    Row(
        F,
        "list of PIL images in L and RGBA modes",
        lambda e, c: rgb(
            [Image.fromarray(video_array()[0]).convert("L"), Image.fromarray(video_array()[1]).convert("RGBA")]
        ),
        Ok(frames_of_shape((2, 32, 32, 3))),
    ),
    Row(
        F,
        "frames of different sizes",
        lambda e, c: rgb([video_array()[0], video_array(size=16)[0]]),
        Raises(ValueError, "must all have the same size"),
    ),
    Row(
        F,
        "None among the frames",
        lambda e, c: rgb([video_array()[0], None]),
        Raises(ValueError, "Unsupported frame type NoneType"),
    ),
    Row(
        F,
        "1x1 frames through the processor",
        lambda e, c: process(e, videos=video_array(size=1)),
        Ok(lambda r, e, c: r["pixel_values_videos"].shape[-2:] == (224, 224) or pytest.fail("size")),
    ),
    Row(
        F,
        "1000 in-memory frames sampled to 8",
        lambda e, c: process(e, videos=video_array(frames=1000, size=8), num_frames=8),
        Ok(lambda r, e, c: r["pixel_values_videos"].shape[1] == 8 or pytest.fail("frames")),
    ),
    Row(F, "non-contiguous array", lambda e, c: rgb(video_array()[:, ::-1, ::2]), Ok(frames_of_shape((8, 32, 16, 3)))),
    Row(
        F,
        "read-only array",
        lambda e, c: rgb(np.lib.stride_tricks.as_strided(video_array(), writeable=False)),
        Ok(frames_of_shape((8, 32, 32, 3))),
    ),
    Row(
        F,
        "two in-memory videos of different lengths in one call",
        lambda e, c: process(e, text="<video><video>", videos=[video_array(8), video_array(5)]),
        Raises(ValueError, "same number of frames"),
    ),
]

# ---------------------------------------------------------------------------------------------------------------------
# sampling arguments
# ---------------------------------------------------------------------------------------------------------------------

S = "sampling"


def sample(env, **kwargs):
    return load(env, "good", **kwargs)


ROWS += [
    Row(
        S,
        "num_frames=0",
        lambda e, c: sample(e, num_frames=0),
        Raises(ValueError, "`num_frames` must be a positive integer, got 0"),
    ),
    Row(
        S,
        "num_frames=-1",
        lambda e, c: sample(e, num_frames=-1),
        Raises(ValueError, "`num_frames` must be a positive integer"),
    ),
    Row(
        S,
        "num_frames='8' (a string)",
        lambda e, c: sample(e, num_frames="8"),
        Raises(ValueError, "`num_frames` must be a positive integer, got '8'"),
    ),
    Row(S, "num_frames=8.0 (a float)", lambda e, c: sample(e, num_frames=8.0), Raises(ValueError, "got 8.0")),
    Row(S, "num_frames=True", lambda e, c: sample(e, num_frames=True), Raises(ValueError, "got True")),
    Row(
        S,
        "num_frames as numpy integer",
        lambda e, c: sample(e, num_frames=np.int64(4)),
        Ok(frames_of_shape((4, 48, 64, 3))),
    ),
    Row(
        S,
        "more frames than the video has: frames repeat",
        lambda e, c: sample(e, num_frames=64),
        Ok(frames_of_shape((64, 48, 64, 3))),
    ),
    Row(
        S,
        "num_frames='8' through the processor",
        lambda e, c: process(e, videos=str(e.videos["good"]), num_frames="8"),
        Raises(Exception, "Field 'num_frames' expected int, got str"),  # transformers' typed-kwargs validation
    ),
    Row(S, "fps=0", lambda e, c: sample(e, fps=0), Raises(ValueError, "`fps` must be a positive number")),
    Row(S, "fps=-2", lambda e, c: sample(e, fps=-2), Raises(ValueError, "`fps` must be a positive number")),
    Row(S, "fps='2'", lambda e, c: sample(e, fps="2"), Raises(ValueError, "`fps` must be a positive number, got '2'")),
    Row(S, "fps=NaN", lambda e, c: sample(e, fps=float("nan")), Raises(ValueError, "`fps` must be a positive number")),
    Row(S, "fps=inf", lambda e, c: sample(e, fps=float("inf")), Raises(ValueError, "`fps` must be a positive number")),
    Row(
        S,
        "fps=2 on a 10 fps video",
        lambda e, c: sample(e, fps=2, num_frames=None, sampling="fps"),
        Ok(frames_of_shape((6, 48, 64, 3))),
    ),
    Row(
        S,
        "fps=1000: capped at the frames there are",
        lambda e, c: sample(e, fps=1000, num_frames=None, sampling="fps"),
        Ok(frames_of_shape((30, 48, 64, 3))),
    ),
    Row(
        S,
        "unknown sampling",
        lambda e, c: sample(e, sampling="random"),
        Raises(ValueError, "Unknown frame sampling 'random'"),
    ),
    Row(
        S,
        "uniform sampling",
        lambda e, c: sample(e, sampling="uniform"),
        Ok(lambda r, e, c: r[1].frames_indices == [0, 10, 19, 29] or pytest.fail(str(r[1].frames_indices))),
    ),
    Row(
        S,
        "mvbench sampling in a window",
        lambda e, c: sample(e, sampling="mvbench", bound=(1.0, 2.0)),
        Ok(lambda r, e, c: all(10 <= i <= 20 for i in r[1].frames_indices) or pytest.fail(str(r[1].frames_indices))),
    ),
    Row(
        S,
        "fps sampling without fps",
        lambda e, c: sample(e, sampling="fps"),
        Raises(ValueError, "`fps` must be positive"),
    ),
    Row(
        S,
        "bound that ends before it starts",
        lambda e, c: sample(e, sampling="mvbench", bound=(5, 1)),
        Raises(ValueError, "ends before it starts"),
    ),
    Row(
        S,
        "bound with one value",
        lambda e, c: sample(e, sampling="mvbench", bound=(1,)),
        Raises(ValueError, "pair of numbers"),
    ),
    Row(
        S,
        "bound of strings",
        lambda e, c: sample(e, sampling="mvbench", bound=("a", "b")),
        Raises(ValueError, "pair of numbers"),
    ),
    Row(
        S,
        "bound after the end of the video",
        lambda e, c: sample(e, sampling="mvbench", bound=(100, 200)),
        Raises(ValueError, "selects no frame"),
    ),
    Row(
        S,
        "bound with segment sampling",
        lambda e, c: sample(e, sampling="segments", bound=(0, 1)),
        Raises(ValueError, "only supported with sampling='mvbench'"),
    ),
    Row(
        S,
        "frame indices out of range",
        lambda e, c: sample(e, frames_indices=[0, 30]),
        Raises(ValueError, r"out of range for 30 frames"),
    ),
    Row(
        S, "negative frame indices", lambda e, c: sample(e, frames_indices=[-1, 2]), Raises(ValueError, "out of range")
    ),
    Row(
        S,
        "empty frame indices",
        lambda e, c: sample(e, frames_indices=[]),
        Raises(ValueError, "non-empty list of integers"),
    ),
    Row(
        S,
        "frame indices as strings",
        lambda e, c: sample(e, frames_indices=["1"]),
        Raises(ValueError, "list of integers"),
    ),
    Row(S, "explicit frame indices", lambda e, c: sample(e, frames_indices=[0, 5, 29]), Ok(equals_sampled("good"))),
    Row(
        S,
        "do_sample_frames=False on a file",
        lambda e, c: process(e, videos=str(e.videos["good"]), do_sample_frames=False),
        Raises(ValueError, "always sampled"),
    ),
    Row(
        S,
        "do_sample_frames='yes'",
        lambda e, c: process(e, do_sample_frames="yes"),
        Raises(ValueError, "`do_sample_frames` must be True or False"),
    ),
    Row(
        S,
        "unknown video backend",
        lambda e, c: sample(e, backend="ffmpeg"),
        Raises(ValueError, "Unknown video backend 'ffmpeg'"),
    ),
    Row(
        S,
        "unknown video backend through the processor",
        lambda e, c: process(e, videos=str(e.videos["good"]), video_backend="opencv"),
        Raises(ValueError, "Unknown video backend 'opencv'"),
    ),
    Row(
        S,
        "apply_rotation='no'",
        lambda e, c: process(e, apply_rotation="no"),
        Raises(ValueError, "`apply_rotation` must be True or False"),
    ),
    Row(
        S,
        "sampler returning indices out of range",
        lambda e, c: load(e, "good", sample_indices_fn=lambda m: [0, 99]),
        Raises(ValueError, "out of range for 30 frames"),
    ),
    Row(
        S,
        "fps sampling of in-memory frames without their frame rate",
        lambda e, c: process(e, fps=2),
        Raises(ValueError, "frame rate is unknown"),
    ),
    Row(
        S,
        "two metadata entries for one video",
        lambda e, c: process(e, video_metadata=[{"fps": 1}, {"fps": 2}]),
        Raises(ValueError, "`video_metadata` has 2 entries for 1 videos"),
    ),
    Row(
        S,
        "misspelt keyword (num_frame)",
        lambda e, c: process(e, num_frame=4),
        Raises(ValueError, r"unknown keyword argument\(s\) \['num_frame'\]"),
    ),
    Row(
        S,
        "hd_num=0",
        lambda e, c: process(e, hd_num=0),
        Raises(ValueError, "`hd_num` must be a positive integer, got 0"),
    ),
    Row(S, "hd_num=-3", lambda e, c: process(e, hd_num=-3), Raises(ValueError, "`hd_num` must be a positive integer")),
    Row(S, "hd_num='6'", lambda e, c: process(e, hd_num="6"), Raises(Exception, "hd_num.*expected int")),
    Row(
        S,
        "fix_ratio with a zero",
        lambda e, c: process(e, fix_ratio=(0, 1)),
        Raises(ValueError, "`fix_ratio` must be a \\(cols, rows\\) pair of positive integers"),
    ),
    Row(S, "unknown hd_mode", lambda e, c: process(e, hd_mode="4k"), Raises(ValueError, "Unknown hd_mode '4k'")),
    Row(
        S,
        "unknown resize_mode",
        lambda e, c: process(e, resize_mode="nearest"),
        Raises(ValueError, "Unknown resize_mode 'nearest'"),
    ),
]

# ---------------------------------------------------------------------------------------------------------------------
# prompts
# ---------------------------------------------------------------------------------------------------------------------

P = "prompts"
ROWS += [
    Row(
        P,
        "two <video> for one video",
        lambda e, c: process(e, text="<video> and <video>"),
        Raises(ValueError, "Found total 2 <video> tokens and 1 videos"),
    ),
    Row(
        P,
        "a video without <video>",
        lambda e, c: process(e, text="what happens?"),
        Raises(ValueError, "Found total 0 <video> tokens and 1 videos"),
    ),
    Row(
        P,
        "<video> without a video",
        lambda e, c: e.processor(text="<video> what?"),
        Raises(ValueError, "Found total 1 <video> tokens and 0 videos"),
    ),
    Row(
        P,
        "a video without text",
        lambda e, c: e.processor(videos=video_array(), return_tensors="pt"),
        Ok(lambda r, e, c: "input_ids" not in r and r["pixel_values_videos"].ndim == 5 or pytest.fail(str(list(r)))),
    ),
    Row(
        P,
        "text that is a number",
        lambda e, c: process(e, text=123),
        Raises(ValueError, "`text` must be a string or a non-empty list of strings"),
    ),
    Row(P, "empty list of texts", lambda e, c: process(e, text=[]), Raises(ValueError, "non-empty list of strings")),
    Row(
        P,
        "None in the list of texts",
        lambda e, c: process(e, text=[None]),
        Raises(ValueError, "non-empty list of strings"),
    ),
    Row(
        P,
        "a number among the texts",
        lambda e, c: process(e, text=["<video>", 3]),
        Raises(ValueError, "non-empty list of strings"),
    ),
    Row(
        P,
        "typed <unk> with distinct placeholder tokens",
        lambda e, c: process(e, text="<video> what is <unk>?"),
        Ok(
            lambda r, e, c: (
                int((r["input_ids"] == e.processor.video_token_id).sum())
                == r["video_grid_thw"][0, 0] * e.processor.num_query_tokens
                or pytest.fail("count")
            )
        ),
    ),
    Row(
        P,
        "typed <unk> with 0.1.0 placeholder ids (<unk>)",
        lambda e, c: old_style_processor(e)(text="<video> what is <unk>?", videos=video_array()),
        Raises(ValueError, "tokenizes to id 0 \\('<unk>'\\), which this model uses for its <video> placeholder"),
    ),
    Row(
        P,
        "emoji unknown to the tokenizer with 0.1.0 placeholder ids",
        lambda e, c: old_style_processor(e)(text="<video> what is 🙂?", videos=video_array()),
        Raises(ValueError, "characters the tokenizer does not know"),
    ),
    Row(
        P,
        "<image> without an image",
        lambda e, c: e.processor(text="<image> what?"),
        Raises(ValueError, "Found total 1 <image> tokens and 0 images"),
    ),
    Row(
        P,
        "an image without <image>",
        lambda e, c: e.processor(text="what?", images=video_array()[0]),
        Raises(ValueError, "Found total 0 <image> tokens and 1 images"),
    ),
    Row(
        P,
        "text with undecodable bytes (lone surrogates)",
        lambda e, c: process(e, text="<video> caf\udce9"),
        Raises(ValueError, "not valid Unicode"),
    ),
    Row(
        P,
        "truncation without max_length",
        lambda e, c: process(e, truncation=True),
        Raises(ValueError, "`truncation=True` needs `max_length`"),
    ),
    Row(
        P,
        "truncation that would cut placeholders",
        lambda e, c: process(e, truncation=True, max_length=10),
        Raises(ValueError, "would cut .* visual placeholder positions"),
    ),
    Row(
        P,
        "unknown padding",
        lambda e, c: process(e, padding="middle"),
        Raises(ValueError, "Unsupported `padding` 'middle'"),
    ),
    Row(
        P,
        "one Q-Former text per item expected",
        lambda e, c: process(e, qformer_text=["a", "b"]),
        Raises(ValueError, "`qformer_text` must be one string or a list of 1"),
    ),
    Row(P, "audio", lambda e, c: process(e, audio=np.zeros(16000)), Raises(ValueError, "does not take audio")),
    Row(
        P,
        "unknown return_tensors",
        lambda e, c: e.processor(text="<video>", videos=video_array(), return_tensors="tf2"),
        Raises(ValueError, "not a valid TensorType"),
    ),
    Row(
        P,
        "chat template: plain string content",
        lambda e, c: chat_template(e, [{"role": "user", "content": "hello"}]),
        Ok(lambda r, e, c: len(r["input_ids"][0]) > 1 or pytest.fail("empty")),
    ),
    Row(
        P,
        "chat template: block of unknown type",
        lambda e, c: chat_template(e, message({"audio": "x.wav"})),
        Raises(ValueError, "Cannot tell the type of content block"),
    ),
    Row(
        P,
        "chat template: video block without a path",
        lambda e, c: chat_template(e, message({"type": "video"}), add_time_message=True),
        Raises(ValueError, "has no 'video', 'path' or 'url'"),
    ),
    Row(
        P,
        "chat template: video URL without a network",
        lambda e, c: chat_template(e, message({"type": "video", "url": "http://127.0.0.1:9/v.mp4"})),
        Raises(ValueError, "Could not download the video"),
    ),
    Row(
        P,
        "chat template: ftp video URL",
        lambda e, c: chat_template(e, message({"type": "video", "url": "ftp://host/v.mp4"})),
        Raises(ValueError, "Only local video files and http"),
    ),
    Row(
        P,
        "chat template: missing video file",
        lambda e, c: chat_template(e, message({"type": "video", "path": str(e.root / "none.mp4")})),
        Raises(FileNotFoundError, "Video file not found"),
    ),
    Row(
        P,
        "chat template: assistant mask with continue_final_message",
        lambda e, c: e.processor.apply_chat_template(
            message({"type": "video", "path": str(e.videos["good"])})
            + [{"role": "assistant", "content": [{"type": "text", "text": "A man"}]}],
            tokenize=True,
            return_dict=True,
            continue_final_message=True,
            return_assistant_tokens_mask=True,
        ),
        Raises(ValueError, "continue_final_message is not compatible with return_assistant_tokens_mask"),
    ),
    Row(
        P,
        "chat template: video file",
        lambda e, c: chat_template(
            e,
            message({"type": "video", "path": str(e.videos["good"])}),
            return_tensors="pt",
            processor_kwargs={"num_frames": 4},
        ),
        Ok(lambda r, e, c: r["pixel_values_videos"].shape[1] == 4 or pytest.fail("frames")),
    ),
    Row(
        P,
        "chat template: a batch of two conversations",
        lambda e, c: chat_template(
            e,
            [
                message({"type": "video", "path": str(e.videos["good"])}),
                message({"type": "video", "path": str(e.videos["odd"])}, "and?"),
            ],
            return_tensors="pt",
            padding=True,
            processor_kwargs={"num_frames": 2},
        ),
        Ok(lambda r, e, c: r["input_ids"].shape[0] == 2 or pytest.fail("batch")),
    ),
]

# ---------------------------------------------------------------------------------------------------------------------
# model inputs
# ---------------------------------------------------------------------------------------------------------------------

M = "model inputs"


def tiny_model(**overrides):
    from conftest import tiny_config

    from videochat import VideoChatForConditionalGeneration

    torch.manual_seed(0)
    return VideoChatForConditionalGeneration(tiny_config(**overrides)).eval()


def internvideo2_model(env):
    from videochat import InternVideo2VideoTextModel

    return InternVideo2VideoTextModel.from_pretrained(env.internvideo2).eval()


ROWS += [
    Row(
        M,
        "placeholders without pixel values (forward: embedded as text, as in transformers' VLMs)",
        lambda e, c: forward(e, pixel_values_videos=None, video_grid_thw=None),
        Warns("placeholder positions .* but no `pixel_values_videos` were passed.*embedded as text"),
    ),
    Row(
        M,
        "placeholders without pixel values (generate)",
        lambda e, c: generate(e, pixel_values_videos=None, video_grid_thw=None),
        Raises(ValueError, "but no `pixel_values_videos` were passed"),
    ),
    Row(
        M,
        "pixel values without placeholders",
        lambda e, c: forward(e, input_ids=torch.tensor([[1, 5, 6]]), attention_mask=None),
        Raises(ValueError, "the prompt has no <video> placeholder positions"),
    ),
    Row(
        M,
        "integer pixel values",
        lambda e, c: forward(e, pixel_values_videos=(e.inputs["pixel_values_videos"] * 50).to(torch.uint8)),
        Raises(ValueError, "floating point tensor .* got torch.uint8"),
    ),
    Row(
        M,
        "integer pixel values (generate)",
        lambda e, c: generate(e, pixel_values_videos=e.inputs["pixel_values_videos"].long()),
        Raises(ValueError, "floating point tensor"),
    ),
    Row(
        M,
        "4-D video pixel values",
        lambda e, c: forward(e, pixel_values_videos=e.inputs["pixel_values_videos"][0], video_grid_thw=None),
        Raises(ValueError, "must have shape \\(num_clips, num_frames, channels, height, width\\)"),
    ),
    Row(
        M,
        "one colour channel",
        lambda e, c: forward(e, pixel_values_videos=e.inputs["pixel_values_videos"][:, :, :1]),
        Raises(ValueError, "channels"),
    ),
    Row(
        M,
        "token id beyond the vocabulary",
        lambda e, c: forward(e, input_ids=torch.cat([e.inputs["input_ids"][:, :-1], torch.tensor([[10**6]])], 1)),
        Raises(ValueError, r"id\(s\) \[1000000\] outside the LLM vocabulary"),
    ),
    Row(
        M,
        "negative token id",
        lambda e, c: forward(e, input_ids=torch.cat([e.inputs["input_ids"][:, :-1], torch.tensor([[-5]])], 1)),
        Raises(ValueError, r"\[-5\] outside the LLM vocabulary"),
    ),
    Row(
        M,
        "float input_ids",
        lambda e, c: forward(e, input_ids=e.inputs["input_ids"].float()),
        Raises(ValueError, "must hold integer token ids"),
    ),
    Row(
        M,
        "input_ids and inputs_embeds together",
        lambda e, c: forward(e, inputs_embeds=torch.zeros(1, e.inputs["input_ids"].shape[1], 64)),
        Raises(ValueError, "exactly one of input_ids or inputs_embeds"),
    ),
    Row(
        M,
        "neither input_ids nor inputs_embeds",
        lambda e, c: e.model(pixel_values_videos=e.inputs["pixel_values_videos"]),
        Raises(ValueError, "exactly one of input_ids or inputs_embeds"),
    ),
    Row(
        M,
        "video_grid_thw that does not match the pixel rows",
        lambda e, c: forward(e, video_grid_thw=torch.tensor([[5, 1, 1]])),
        Raises(ValueError, "attributes 5 clips to the videos but the pixel values hold"),
    ),
    Row(
        M,
        "Q-Former rows for another number of clips",
        lambda e, c: forward(e, video_qformer_input_ids=torch.ones(7, 4, dtype=torch.long)),
        Raises(ValueError, "needs one row per clip"),
    ),
    Row(
        M,
        "encoder outputs and pixel values together",
        lambda e, c: forward(
            e, mm_encoder_outputs={"video": e.model.get_video_features(e.inputs["pixel_values_videos"])}
        ),
        Raises(ValueError, "both `pixel_values_videos` and `mm_encoder_outputs`"),
    ),
    Row(
        M,
        "sequence longer than max_position_embeddings: warned",
        lambda e, c: forward(
            e, input_ids=torch.cat([torch.full((1, 2100), 5), e.inputs["input_ids"]], 1), attention_mask=None
        ),
        Warns(r"longer than the LLM's max_position_embeddings \(2048\)"),
    ),
    Row(
        M,
        "pixel values of two videos for the placeholders of one",
        lambda e, c: forward(
            e, pixel_values_videos=torch.cat([e.inputs["pixel_values_videos"]] * 2), video_grid_thw=None
        ),
        Raises(ValueError, "features and video tokens do not match"),
    ),
    Row(
        M,
        "images and videos with one shared placeholder id",
        lambda e, c: tiny_model()(
            input_ids=torch.zeros(1, 10, dtype=torch.long),
            pixel_values_videos=torch.randn(1, 4, 3, 28, 28),
            pixel_values=torch.randn(1, 3, 28, 28),
        ),
        Raises(ValueError, "distinct `image_token_id` and `video_token_id`"),
    ),
    Row(
        M,
        "Q-Former text to a text-free Q-Former",
        lambda e, c: tiny_model(encoder_type="eva_gmhra")(
            input_ids=torch.zeros(1, 5, dtype=torch.long),
            pixel_values_videos=torch.randn(1, 4, 3, 28, 28),
            video_qformer_input_ids=torch.ones(1, 3, dtype=torch.long),
        ),
        Raises(ValueError, "takes no instruction text"),
    ),
    Row(
        M,
        "precomputed video features reused",
        lambda e, c: generate(
            e,
            pixel_values_videos=None,
            video_grid_thw=None,
            mm_encoder_outputs={"video": e.model.get_video_features(e.inputs["pixel_values_videos"])},
        ),
        Ok(lambda r, e, c: r.shape[1] == e.inputs["input_ids"].shape[1] + 2 or pytest.fail(str(r.shape))),
    ),
    Row(
        M,
        "InternVideo2: integer pixel values",
        lambda e, c: internvideo2_model(e).get_video_features(torch.zeros(1, 4, 3, 56, 56, dtype=torch.uint8)),
        Raises(ValueError, "floating point tensor"),
    ),
    Row(
        M,
        "InternVideo2: 4-D pixel values",
        lambda e, c: internvideo2_model(e).get_video_features(torch.zeros(4, 3, 56, 56)),
        Raises(
            ValueError, "expects pixel values \\(batch, frames, channels, height, width\\), got \\(4, 3, 56, 56\\)"
        ),
    ),
]

# ---------------------------------------------------------------------------------------------------------------------
# conversion
# ---------------------------------------------------------------------------------------------------------------------

C = "conversion"


def prepare_llm_copy(env):
    return {"llm": env.copy(env.llm_folder, "llm")}


def prepare_foreign_output(env):
    output = env.fresh("out") / "tokenizer_out"
    output.mkdir()
    (output / "unrelated.txt").write_text("keep me")
    return {"out": output}


def prepare_original_copy(env):
    return {"src": env.copy(env.original, "ckpt")}


def prepare_work_folder(env):
    work = env.fresh("work") / "work"
    work.mkdir()
    original = work / "original"
    shutil.copytree(env.original, original)
    (work / "notes.txt").write_text("my notes")
    return {"work": work, "src": original}


def prepare_converted_ours(env):
    """A folder an earlier conversion wrote (marked), next to its source."""
    folder = env.fresh("ours")
    convert(env.original, folder / "out")
    return {"out": folder / "out", "parent": folder}


def prepare_stage2_folder(env):
    folder = env.fresh("stage2") / "stage2_src"
    folder.mkdir()
    shutil.copyfile(env.internvideo2_source, folder / "original_checkpoint.pth")
    return {"src": folder}


def prepare_embed(env):
    folder = env.fresh("embed")
    model = env.copy(env.internvideo2, "model")
    return {"folder": folder, "model": model, "video": env.videos["good"]}


def embed_argv(ctx, output, *extra):
    return [
        "embed",
        ctx["video"],
        "--model",
        ctx["model"],
        "--output",
        output,
        "--no-progress",
        "--device",
        "cpu",
        *extra,
    ]


def prepare_foreign_npy(env):
    ctx = prepare_embed(env)
    np.save(ctx["folder"] / "emb.npy", np.arange(6, dtype=np.int64))
    return ctx


def prepare_own_npy(env):
    ctx = prepare_embed(env)
    assert run_cli(embed_argv(ctx, ctx["folder"] / "emb.npy")) == 0
    ctx["before"] = (ctx["folder"] / "emb.npy").stat().st_mtime_ns
    return ctx


def prepare_stale_partial(env):
    folder = env.fresh("stale")
    staging = folder / ".out.partial-999999999-abc"
    staging.mkdir()
    (staging / "model.safetensors").write_bytes(b"half")
    return {"parent": folder, "out": folder / "out"}


def prepare_stale_old(env, output_present):
    ctx = prepare_converted_ours(env)
    retired = ctx["parent"] / ".out.old-999999999"
    os.rename(ctx["out"], retired)
    ctx["saved"] = snapshot(retired)
    if output_present:  # the dead run had already put its new folder in place
        shutil.copytree(retired, ctx["out"])
    return ctx


def stale_partial_cleaned(result, env, ctx):
    assert leftovers(ctx["parent"]) == [], leftovers(ctx["parent"])
    assert (ctx["out"] / "config.json").is_file()


def act_restore_then_refuse(env, ctx):
    from videochat.convert.output_safety import OutputError

    with pytest.raises(OutputError, match="exists and is not empty"):
        convert(env.original, ctx["out"])
    assert snapshot(ctx["out"]) == ctx["saved"], "the previous output was not restored as it was"
    assert leftovers(ctx["parent"]) == []


def prepare_foreign_old(env):
    folder = env.fresh("foreign_old")
    foreign = folder / ".out.old-999999999"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("not videochat's")
    return {"parent": folder, "out": folder / "out", "foreign": foreign}


def converted_with_modes(mask):
    def act(env, ctx):
        output = env.fresh("umask") / "out"
        with umask(mask):
            convert(env.original, output)
        return output

    return act


def check_modes(directory, file):
    def check(output, env, ctx):
        found = modes(output)
        assert found["out"] == directory and found["config.json"] == file, found
        assert oct((output / "qformer_tokenizer").stat().st_mode & 0o777) == directory

    return check


def tokenizer_with_umask(env, ctx):
    from videochat.convert.tokenizer import convert_tokenizer

    output = env.fresh("tok_umask") / "tok"
    with umask(0o027):
        convert_tokenizer(env.llm_folder, output, "videochat2-vicuna-7b")
    return output


def embed_with_umask(env, ctx):
    ctx = prepare_embed(env)
    with umask(0o002):
        assert run_cli(embed_argv(ctx, ctx["folder"] / "emb.safetensors")) == 0
    return oct((ctx["folder"] / "emb.safetensors").stat().st_mode & 0o777)


class ShortWrites:
    """A file handle that accepts at most `limit` bytes per `write` (as Linux does past about 2 GiB)."""

    def __init__(self, handle, limit=1000):
        self.handle, self.limit, self.calls = handle, limit, 0

    def write(self, data):
        self.calls += 1
        return self.handle.write(memoryview(data).cast("B")[: self.limit])

    def __getattr__(self, name):
        return getattr(self.handle, name)


def short_writes(env, ctx):
    from safetensors.torch import load_file

    from videochat.convert.writer import ShardWriter, TensorSpec

    tensors = {
        "a": torch.randn(300, 7),
        "b": torch.arange(5000, dtype=torch.int32),
        "c": torch.randn(3, dtype=torch.float16),
    }
    path = env.fresh("short") / "shard.safetensors"
    writer = ShardWriter(path, [TensorSpec(k, t.dtype, tuple(t.shape)) for k, t in tensors.items()])
    writer._handle = ShortWrites(writer._handle)
    for key, tensor in tensors.items():
        writer.write(key, tensor)
    writer.close()
    loaded = load_file(path)
    assert all(torch.equal(loaded[key], tensor) for key, tensor in tensors.items())
    return writer._handle.calls


def short_copies(env, ctx):
    from safetensors.torch import load_file, save_file

    import videochat.convert.writer as writer_module
    from videochat.convert.writer import ShardWriter, TensorSpec

    source = env.fresh("short_copy") / "source.safetensors"
    tensor = torch.randn(1000, 9)
    save_file({"t": tensor}, source)
    header = json.loads(source.read_bytes()[8 : 8 + int.from_bytes(source.read_bytes()[:8], "little")])
    offset = 8 + int.from_bytes(source.read_bytes()[:8], "little") + header["t"]["data_offsets"][0]
    calls, copy_file_range = [], os.copy_file_range

    def copy_a_little(src, dst, count, offset_src=None, offset_dst=None):
        calls.append(count)
        return copy_file_range(src, dst, min(count, 777), offset_src)

    path = source.parent / "copy.safetensors"
    writer = ShardWriter(path, [TensorSpec("t", tensor.dtype, tuple(tensor.shape))])
    descriptor = os.open(source, os.O_RDONLY)
    try:
        with patched(writer_module.os, "copy_file_range", copy_a_little):
            writer.write_from_file("t", tensor.dtype, tuple(tensor.shape), descriptor, offset)
    finally:
        os.close(descriptor)
    writer.close()
    assert torch.equal(load_file(path)["t"], tensor) and len(calls) > 1
    return len(calls)


def zero_writes(env, ctx):
    from videochat.convert.writer import ShardWriter, TensorSpec

    writer = ShardWriter(env.fresh("zero") / "s.safetensors", [TensorSpec("a", torch.float32, (10,))])

    class Stuck:
        def write(self, data):
            return 0

        def close(self):
            pass

    writer._handle = Stuck()
    writer.write("a", torch.zeros(10))


def kill_at(point):
    """Run `videochat convert` in a child process that dies (`os._exit`, no clean-up, as SIGKILL) at `point`."""

    def act(env, ctx):
        script = KILL_SCRIPT.format(point=point, source=str(env.original), output=str(ctx["out"]))
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])},
        )
        assert result.returncode == 137, result.stderr
        return result

    return act


KILL_SCRIPT = """
import os
import videochat.convert.converter as converter
import videochat.convert.output_safety as output_safety
import videochat.convert.writer as writer
from videochat.configuration_videochat import VideoChatConfig
point, output = {point!r}, {output!r}

def die(*args, **kwargs):
    os._exit(137)

if point == "staging created":
    converter.write_weights = die
elif point == "mid-shard":
    original_write, calls = writer.ShardWriter.write, []
    def write(self, name, tensor):
        calls.append(name)
        if len(calls) == 2:
            die()
        return original_write(self, name, tensor)
    writer.ShardWriter.write = write
elif point == "before config.json":
    VideoChatConfig.save_pretrained = die
elif point == "between the two renames":
    original_rename = os.rename
    def rename(source, target):
        if str(target) == output:
            die()
        return original_rename(source, target)
    output_safety.os.rename = rename
elif point == "while deleting the replaced folder":
    original_unlink = output_safety.Path.unlink
    def unlink(self, *args, **kwargs):
        if ".old-" in str(self):
            original_unlink(self, *args, **kwargs)
            die()
        return original_unlink(self, *args, **kwargs)
    output_safety.Path.unlink = unlink
converter.convert({source!r}, output, preset="internvideo2-chat-8b-hd", progress=False, overwrite=True)
"""


def prepare_kill(env, existing):
    folder = env.fresh("kill")
    if existing:
        convert(env.original, folder / "out")
    return {"parent": folder, "out": folder / "out", "previous": snapshot(folder / "out") if existing else None}


def after_kill(existing_kept):
    def check(result, env, ctx):
        from videochat import VideoChatForConditionalGeneration

        out = ctx["out"]
        if out.exists():  # never a half-written output: the previous one, or a complete new one (marker last)
            assert snapshot(out) == ctx["previous"] or sorted(marker_files(out)) == sorted(files_in(out) - {MARKER})
        elif existing_kept:  # killed between the two renames: the previous output waits as .out.old-PID
            assert len([p for p in ctx["parent"].iterdir() if ".out.old-" in p.name]) == 1
        # the next run recovers: it restores or removes what the dead run left, and writes a complete output
        convert(env.original, out, overwrite=True)
        assert leftovers(ctx["parent"]) == [], leftovers(ctx["parent"])
        VideoChatForConditionalGeneration.from_pretrained(out)

    return check


def interrupted_writes():
    import videochat.convert.writer as writer_module

    def interrupted(self, name, tensor):
        raise KeyboardInterrupt

    return patched(writer_module.ShardWriter, "write", interrupted)


def prepare_ctrl_c(env):
    _ = env.original  # built before the patch
    folder = env.fresh("ctrl_c")
    return {"parent": folder, "out": folder / "out"}


def full_disk_convert(env):
    point = env.full_disk()
    return {"parent": point, "out": point / "out"}


def read_only(env):
    point = env.read_only()
    return {"parent": point, "out": point / "out"}


def preset_mismatch(fixture_name, preset, llm="llm"):
    def act(env, ctx):
        folder = fixture("videochat2", fixture_name)
        return convert(
            folder / "original_checkpoint.pth", env.fresh("mismatch") / "out", preset=preset, llm=folder / llm
        )

    return act


def internvideo2_chat_as(fixture_name, preset):
    def act(env, ctx):
        return convert(fixture("internvideo2_chat", fixture_name), env.fresh("mismatch") / "out", preset=preset)

    return act


def push_offline(env, ctx):
    import huggingface_hub.constants as constants

    with patched(constants, "ENDPOINT", "http://127.0.0.1:9"):
        return convert(env.original, ctx["out"], push_to_hub="someone/tiny-videochat")


def prepare_out(env):
    folder = env.fresh("out")
    return {"parent": folder, "out": folder / "out"}


def with_entry(ctx, make):
    """`ctx` after `make(ctx["out"])` created something at the output path."""
    make(ctx["out"])
    return ctx


def iv2_overwrite(env, ctx):
    from internvideo2_testing import convert_fixture

    convert_fixture("stage2", ctx["out"])
    return convert_fixture("stage2", ctx["out"], overwrite=True)


def malicious_pickle(env, ctx):
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, ("touch /tmp/videochat_pwned",))

    folder = env.fresh("pickle")
    with open(folder / "original_checkpoint.pth", "wb") as handle:
        pickle.dump({"model": Payload()}, handle)
    (folder / "original_config.json").write_text((env.original / "original_config.json").read_text())
    return convert(folder / "original_checkpoint.pth", folder / "out", preset="internvideo2-chat-8b-hd")


ROWS += [
    # the four data-loss commands of the issue, and their relatives
    Row(
        C,
        "convert-tokenizer LLM LLM (output is the source)",
        lambda e, c: ["convert-tokenizer", c["llm"], c["llm"], "--preset", "videochat2-mistral-7b"],
        Exits(2, "is the input .*destroy"),
        prepare=prepare_llm_copy,
        guard=lambda e, c: c["llm"].parent,
    ),
    Row(
        C,
        "convert-tokenizer into a folder with unrelated files",
        lambda e, c: ["convert-tokenizer", e.llm_folder, c["out"], "--preset", "videochat2-mistral-7b"],
        Exits(2, "exists and is not empty; pass --overwrite"),
        prepare=prepare_foreign_output,
        guard=lambda e, c: c["out"].parent,
    ),
    Row(
        C,
        "convert-tokenizer --overwrite over unrelated files",
        lambda e, c: ["convert-tokenizer", e.llm_folder, c["out"], "--preset", "videochat2-mistral-7b", "--overwrite"],
        Exits(2, "was not written by videochat"),
        prepare=prepare_foreign_output,
        guard=lambda e, c: c["out"].parent,
    ),
    Row(
        C,
        "convert CKPT CKPT --overwrite (output is the source)",
        lambda e, c: ["convert", c["src"], c["src"], "--overwrite", "--no-progress"],
        Exits(2, "is the input"),
        prepare=prepare_original_copy,
        guard=lambda e, c: c["src"].parent,
    ),
    Row(
        C,
        "convert work/original work --overwrite (output contains the source)",
        lambda e, c: ["convert", c["src"], c["work"], "--overwrite", "--no-progress"],
        Exits(2, "contains the input"),
        prepare=prepare_work_folder,
        guard=lambda e, c: c["work"].parent,
    ),
    Row(
        C,
        "convert into a folder inside the source",
        lambda e, c: ["convert", c["src"], c["src"] / "converted", "--no-progress"],
        Exits(2, "lies inside the input folder"),
        prepare=prepare_original_copy,
        guard=lambda e, c: c["src"].parent,
    ),
    Row(
        C,
        "convert --llm folder inside the output",
        lambda e, c: [
            "convert",
            c["src"] / "original_checkpoint.pth",
            c["src"].parent,
            "--llm",
            c["src"] / "llm",
            "--overwrite",
            "--no-progress",
        ],
        Exits(2, "contains the input"),
        prepare=lambda e: {"src": videochat2_copy(e, "videochat2_it_mistral")},
        guard=lambda e, c: c["src"].parent,
    ),
    Row(
        C,
        "convert-internvideo2 SRC SRC --overwrite",
        lambda e, c: ["convert-internvideo2", c["src"], c["src"], "--overwrite", "--no-progress"],
        Exits(2, "is the input"),
        prepare=prepare_stage2_folder,
        guard=lambda e, c: c["src"].parent,
    ),
    Row(
        C,
        "convert-internvideo2 into the folder holding the source file",
        lambda e, c: [
            "convert-internvideo2",
            c["src"] / "original_checkpoint.pth",
            c["src"],
            "--overwrite",
            "--no-progress",
        ],
        Exits(2, "contains the input"),
        prepare=prepare_stage2_folder,
        guard=lambda e, c: c["src"].parent,
    ),
    Row(
        C,
        "embed --output over the model's weights",
        lambda e, c: embed_argv(c, c["model"] / "model.safetensors", "--overwrite"),
        Exits(2, "lies inside the input folder"),
        prepare=prepare_embed,
        guard=lambda e, c: c["model"],
    ),
    Row(
        C,
        "embed --output over a video",
        lambda e, c: embed_argv(c, c["video"], "--overwrite"),
        Exits(2, "must end with one of|is the input"),
        prepare=prepare_embed,
        guard=lambda e, c: c["video"].parent,
    ),
    Row(
        C,
        "embed --overwrite over a .npy it did not write",
        lambda e, c: embed_argv(c, c["folder"] / "emb.npy", "--overwrite"),
        Exits(2, "was not written by videochat embed"),
        prepare=prepare_foreign_npy,
        guard=lambda e, c: c["folder"],
    ),
    Row(
        C,
        "embed over an existing file without --overwrite",
        lambda e, c: embed_argv(c, c["folder"] / "emb.npy"),
        Exits(2, "exists; pass --overwrite"),
        prepare=prepare_foreign_npy,
        guard=lambda e, c: c["folder"],
    ),
    Row(
        C,
        "embed --overwrite replaces its own output",
        lambda e, c: embed_argv(c, c["folder"] / "emb.npy", "--overwrite"),
        Exits(0, stdout="wrote .*emb.npy: 1 embeddings"),
        prepare=prepare_own_npy,
        heavy=True,
    ),
    Row(
        C,
        "convert --overwrite over a folder videochat did not write",
        lambda e, c: ["convert", e.original, c["out"], "--overwrite", "--no-progress"],
        Exits(2, "was not written by videochat"),
        prepare=prepare_foreign_output,
        guard=lambda e, c: c["out"].parent,
    ),
    Row(
        C,
        "convert --overwrite over our folder with a file added",
        lambda e, c: (
            c["out"].joinpath("notes.txt").write_text("mine"),
            ["convert", e.original, c["out"], "--overwrite", "--no-progress"],
        )[1],
        Exits(2, r"holds files videochat did not write \(notes.txt\)"),
        prepare=prepare_converted_ours,
    ),
    Row(
        C,
        "convert --overwrite replaces our own folder",
        lambda e, c: convert(e.original, c["out"], overwrite=True),
        Ok(
            lambda r, e, c: (
                leftovers(c["parent"]) == []
                and "config.json" in marker_files(c["out"])
                or pytest.fail(str(leftovers(c["parent"])))
            )
        ),
        prepare=prepare_converted_ours,
    ),
    Row(
        C,
        "convert into an existing empty folder",
        lambda e, c: (c["out"].mkdir(), convert(e.original, c["out"]))[1],
        Ok(lambda r, e, c: (c["out"] / "config.json").is_file() or pytest.fail("no config")),
        prepare=prepare_out,
    ),
    Row(
        C,
        "convert onto an existing file",
        lambda e, c: convert(e.original, c["out"], overwrite=True),
        Raises(ValueError, "exists and is a file"),
        prepare=lambda e: with_entry(prepare_out(e), lambda out: out.write_text("x")),
        guard=lambda e, c: c["parent"],
    ),
    Row(
        C,
        "convert onto a broken symbolic link",
        lambda e, c: convert(e.original, c["out"]),
        Raises(ValueError, "broken symbolic link"),
        prepare=lambda e: with_entry(prepare_out(e), lambda out: out.symlink_to(out.parent / "gone")),
        guard=lambda e, c: c["parent"],
    ),
    Row(
        C,
        "convert onto a symbolic link to the source",
        lambda e, c: convert(c["src"], c["out"], overwrite=True),
        Raises(ValueError, "is the input"),
        prepare=lambda e: (lambda c: with_entry(c, lambda out: out.symlink_to(c["src"])))(
            {**prepare_out(e), "src": e.copy(e.original, "src")}
        ),
        guard=lambda e, c: c["src"],
    ),
    Row(
        C,
        "a dead run's .partial-PID folder is removed by the next run",
        lambda e, c: convert(e.original, c["out"]),
        Ok(stale_partial_cleaned),
        prepare=prepare_stale_partial,
    ),
    Row(
        C,
        "a dead --overwrite's .old-PID folder is restored when the output is missing",
        act_restore_then_refuse,
        Ok(),
        prepare=lambda e: prepare_stale_old(e, output_present=False),
    ),
    Row(
        C,
        "a dead --overwrite's .old-PID folder is removed when the output exists",
        lambda e, c: convert(e.original, c["out"], overwrite=True),
        Ok(lambda r, e, c: leftovers(c["parent"]) == [] or pytest.fail(str(leftovers(c["parent"])))),
        prepare=lambda e: prepare_stale_old(e, output_present=True),
    ),
    Row(
        C,
        "an .old-PID folder without our marker is left alone",
        lambda e, c: convert(e.original, c["out"]),
        Ok(lambda r, e, c: (c["foreign"] / "mine.txt").read_text() == "not videochat's" or pytest.fail("deleted")),
        prepare=prepare_foreign_old,
        guard=lambda e, c: c["foreign"],
    ),
    Row(
        C,
        "umask 022: folders 755, files 644 (not 700)",
        converted_with_modes(0o022),
        Ok(check_modes("0o755", "0o644")),
    ),
    Row(C, "umask 077: folders 700, files 600", converted_with_modes(0o077), Ok(check_modes("0o700", "0o600"))),
    Row(
        C,
        "convert-tokenizer follows the umask",
        tokenizer_with_umask,
        Ok(
            lambda r, e, c: (
                modes(r)["tok"] == "0o750" and modes(r)["tokenizer.json"] == "0o640" or pytest.fail(str(modes(r)))
            )
        ),
    ),
    Row(
        C,
        "embed output follows the umask",
        embed_with_umask,
        Ok(lambda r, e, c: r == "0o664" or pytest.fail(r)),
        heavy=True,
    ),
    Row(C, "short writes are retried", short_writes, Ok(lambda r, e, c: r > 20 or pytest.fail(str(r)))),
    Row(C, "short kernel copies (copy_file_range) are retried", short_copies, Ok()),
    Row(C, "a write that makes no progress is an error", zero_writes, Raises(OSError, "accepted no more data")),
    *[
        Row(
            C,
            f"killed {point}: nothing loadable half-written, the next run recovers",
            kill_at(point),
            Ok(after_kill(existing)),
            prepare=lambda e, existing=existing: prepare_kill(e, existing),
            heavy=True,
        )
        for point, existing in (
            ("staging created", False),
            ("mid-shard", False),
            ("before config.json", True),
            ("between the two renames", True),
            ("while deleting the replaced folder", True),
        )
    ],
    Row(
        C,
        "Ctrl-C while writing: exit 130, nothing left behind",
        lambda e, c: ["convert", e.original, c["out"], "--no-progress"],
        Exits(130, "interrupted"),
        prepare=prepare_ctrl_c,
        guard=lambda e, c: c["parent"],
        within=interrupted_writes,
    ),
    Row(
        C,
        "full disk: convert",
        lambda e, c: ["convert", e.original, c["out"], "--no-progress"],
        Exits(2, "no space left on the device"),
        prepare=full_disk_convert,
        guard=lambda e, c: c["parent"],
    ),
    Row(
        C,
        "full disk: convert-tokenizer",
        lambda e, c: ["convert-tokenizer", e.llm_folder, c["out"], "--preset", "videochat2-vicuna-7b"],
        Exits(2, "no space left on the device"),
        prepare=full_disk_convert,
        guard=lambda e, c: c["parent"],
    ),
    Row(
        C,
        "full disk: embed",
        lambda e, c: embed_argv({**c, **prepare_embed(e)}, c["out"].with_suffix(".npz")),
        Exits(2, "no space left on the device"),
        prepare=full_disk_convert,
        guard=lambda e, c: c["parent"],
        heavy=True,
    ),
    Row(
        C,
        "read-only destination: convert",
        lambda e, c: ["convert", e.original, c["out"], "--no-progress"],
        Exits(2, "read-only file system|permission denied"),
        prepare=read_only,
        guard=lambda e, c: c["parent"],
    ),
    Row(
        C,
        "read-only destination: convert-tokenizer",
        lambda e, c: ["convert-tokenizer", e.llm_folder, c["out"], "--preset", "videochat2-vicuna-7b"],
        Exits(2, "read-only file system|permission denied"),
        prepare=read_only,
        guard=lambda e, c: c["parent"],
    ),
    Row(
        C,
        "read-only destination: embed",
        lambda e, c: embed_argv({**c, **prepare_embed(e)}, c["out"].with_suffix(".npy")),
        Exits(2, "read-only file system|permission denied"),
        prepare=read_only,
        guard=lambda e, c: c["parent"],
        heavy=True,
    ),
    Row(
        C,
        "VideoChat2-Mistral stage file as --preset videochat2-vicuna-7b",
        preset_mismatch("videochat2_it_mistral", "videochat2-vicuna-7b"),
        Raises(ValueError, "VideoChat2_it_mistral checkpoint .* preset 'videochat2-vicuna-7b' converts VideoChat2_it"),
    ),
    Row(
        C,
        "VideoChat2-HD stage file as the non-HD preset",
        preset_mismatch("videochat2_it_hd_mistral", "videochat2-mistral-7b"),
        Raises(ValueError, "VideoChat2_it_hd_mistral checkpoint .* converts VideoChat2_it_mistral"),
    ),
    Row(
        C,
        "non-HD VideoChat2 stage file as the HD preset",
        preset_mismatch("videochat2_it_mistral", "videochat2-hd-mistral-7b"),
        Raises(ValueError, "preset 'videochat2-hd-mistral-7b'"),
    ),
    Row(
        C,
        "Phi-3 stage file as a Mistral preset",
        preset_mismatch("videochat2_it_phi", "videochat2-mistral-7b"),
        Raises(ValueError, "VideoChat2_it_phi checkpoint"),
    ),
    Row(
        C,
        "Mistral base LLM under a Vicuna stage file",
        lambda e, c: convert(
            fixture("videochat2", "videochat2_it_vicuna", "original_checkpoint.pth"),
            e.fresh("m") / "out",
            preset="videochat2-vicuna-7b",
            llm=fixture("videochat2", "videochat2_it_mistral", "llm"),
        ),
        Raises(ValueError, "LLM is Mistral .* but preset 'videochat2-vicuna-7b' is a Llama / Vicuna model"),
    ),
    Row(
        C,
        "non-HD InternVideo2-Chat as the HD preset",
        internvideo2_chat_as("tiny_nonhd", "internvideo2-chat-8b-hd"),
        Raises(
            ValueError,
            "is a non-HD checkpoint .* preset 'internvideo2-chat-8b-hd' is an HD model; use --preset "
            "internvideo2-chat-8b",
        ),
    ),
    Row(
        C,
        "HD InternVideo2-Chat as the non-HD preset",
        internvideo2_chat_as("tiny_hd", "internvideo2-chat-8b"),
        Raises(ValueError, "is an HD checkpoint .* preset 'internvideo2-chat-8b' is a non-HD model"),
    ),
    Row(
        C,
        "Mistral InternVideo2-Chat as the InternLM2 preset",
        internvideo2_chat_as("tiny_hd", "internvideo2-chat-8b-internlm2_5"),
        Raises(ValueError, "LLM is Mistral .* 'internvideo2-chat-8b-internlm2_5' is a InternLM2 model"),
    ),
    Row(
        C,
        "InternVideo2-Chat checkpoint as a VideoChat2 preset",
        internvideo2_chat_as("tiny_hd", "videochat2-mistral-7b"),
        Raises(
            ValueError, "is a internvideo2_chat checkpoint .* preset 'videochat2-mistral-7b' is a videochat2 model"
        ),
    ),
    Row(
        C,
        "the preset detected from the source converts",
        lambda e, c: convert(
            fixture("videochat2", "videochat2_it_hd_mistral", "original_checkpoint.pth"),
            e.fresh("auto") / "out",
            llm=fixture("videochat2", "videochat2_it_hd_mistral", "llm"),
        ),
        Ok(lambda r, e, c: r.preset == "videochat2-hd-mistral-7b" or pytest.fail(r.preset)),
    ),
    Row(
        C,
        "truncated source safetensors named",
        lambda e, c: convert(
            truncate(e.copy(e.original, "trunc") / "original_checkpoint.safetensors").parent, e.fresh("t") / "out"
        ),
        Raises(ValueError, "original_checkpoint.safetensors"),
    ),
    Row(
        C,
        "missing source",
        lambda e, c: ["convert", e.root / "no_such_checkpoint", e.fresh("o") / "out", "--no-progress"],
        Exits(2, "source not found"),
    ),
    Row(
        C,
        "source folder without a checkpoint",
        lambda e, c: ["convert", e.fresh("empty_src"), e.fresh("o") / "out", "--no-progress"],
        Exits(2, "checkpoint|safetensors|found"),
    ),
    Row(
        C,
        "unknown dtype (Python)",
        lambda e, c: convert(e.original, e.fresh("o") / "out", dtype="float8"),
        Raises(ValueError, "unsupported dtype 'float8'"),
    ),
    Row(
        C,
        "unparsable shard size",
        lambda e, c: convert(e.original, e.fresh("o") / "out", max_shard_size="big"),
        Raises(ValueError, "cannot parse size 'big'"),
    ),
    Row(
        C,
        "--push-to-hub without a network: clear error, folder complete",
        push_offline,
        Raises(ValueError, "could not upload .* The converted folder is complete"),
        prepare=prepare_out,
    ),
    Row(
        C,
        "--push-to-hub --dry-run lists the files without the marker",
        lambda e, c: ["convert", e.original, c["out"], "--push-to-hub", "a/b", "--dry-run", "--no-progress"],
        Exits(0, stdout=r"would upload \d+ file\(s\) to a/b: (?!.*videochat_output)"),
        prepare=prepare_out,
    ),
    Row(
        C,
        "convert-tokenizer without tokenizer.model",
        lambda e, c: ["convert-tokenizer", e.fresh("no_spm"), e.fresh("o") / "out", "--preset", "videochat-7b"],
        Exits(2, "tokenizer.model not found"),
    ),
    Row(
        C,
        "convert-tokenizer with a corrupt tokenizer.model",
        lambda e, c: [
            "convert-tokenizer",
            (lambda f: (f.joinpath("tokenizer.model").write_bytes(b"junk"), f)[1])(e.fresh("bad_spm")),
            e.fresh("o") / "out",
            "--preset",
            "videochat-7b",
        ],
        Exits(2, "sentencepiece"),
    ),
    Row(
        C,
        "convert-tokenizer: a LLaMA-style tokenizer with the InternLM2.5 preset",
        lambda e, c: [
            "convert-tokenizer",
            e.llm_folder,
            e.fresh("o") / "out",
            "--preset",
            "internvideo2-chat-8b-internlm2_5",
        ],
        Exits(2, "added token '<\\|plugin\\|>' should have id 92538"),
    ),
    Row(
        C,
        "convert-tokenizer --overwrite replaces its own output",
        lambda e, c: (
            run_cli_ok(["convert-tokenizer", e.llm_folder, c["out"], "--preset", "videochat-7b"]),
            ["convert-tokenizer", e.llm_folder, c["out"], "--preset", "videochat-7b", "--overwrite"],
        )[1],
        Exits(0, stdout="wrote"),
        prepare=prepare_out,
    ),
    Row(
        C,
        "convert-tokenizer into a folder inside the source",
        lambda e, c: ["convert-tokenizer", c["llm"], c["llm"] / "tok", "--preset", "videochat-7b"],
        Exits(2, "lies inside the input folder"),
        prepare=prepare_llm_copy,
        guard=lambda e, c: c["llm"],
    ),
    Row(
        C,
        "original config that is not JSON",
        lambda e, c: (
            c["src"].joinpath("original_config.json").write_text("{not json"),
            ["convert", c["src"], e.fresh("o") / "out", "--no-progress"],
        )[1],
        Exits(2, "not valid JSON"),
        prepare=prepare_original_copy,
    ),
    Row(
        C,
        "a pickle that would run code is refused unrun",
        malicious_pickle,
        Raises(ValueError, "weights_only|unsafe|refus"),
    ),
    Row(
        C,
        "demo --workdir with someone else's files",
        lambda e, c: ["demo", "--workdir", c["out"]],
        Exits(2, "not written by `videochat demo`"),
        prepare=prepare_foreign_output,
        guard=lambda e, c: c["out"].parent,
    ),
    Row(
        C, "demo --workdir that is a file", lambda e, c: ["demo", "--workdir", e.videos["good"]], Exits(2, "is a file")
    ),
    Row(
        C,
        "convert-internvideo2 --overwrite replaces its own output",
        iv2_overwrite,
        Ok(
            lambda r, e, c: (
                leftovers(c["parent"]) == [] and "config.json" in marker_files(c["out"]) or pytest.fail("replace")
            )
        ),
        prepare=prepare_out,
    ),
]


def run_cli_ok(argv):
    code = run_cli(argv)
    assert code in (0, 2), code
    return code


# ---------------------------------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------------------------------

L = "loading"


def from_pretrained(folder, cls="VideoChatForConditionalGeneration", **kwargs):
    import videochat

    return getattr(videochat, cls).from_pretrained(folder, **kwargs)


def auto_model(folder, **kwargs):
    from transformers import AutoModelForImageTextToText

    import videochat  # noqa: F401

    return AutoModelForImageTextToText.from_pretrained(folder, **kwargs)


def chat_argv(env, folder, *extra):
    return [
        "chat",
        env.videos["good"],
        "what happens?",
        "--model",
        folder,
        "--max-new-tokens",
        "2",
        "--num-frames",
        "2",
        "--device",
        "cpu",
        "--greedy",
        *extra,
    ]


def without_query_tokens(env):
    return {"folder": edit_weights(converted_copy(env), remove=["model.query_tokens"])}


def with_extra_tensor(env):
    return {"folder": edit_weights(converted_copy(env), add={"model.extra_weight": torch.zeros(3)})}


def sharded_copy(env, damage):
    folder = env.fresh("sharded") / "out"
    convert(env.original, folder, max_shard_size="500KB")
    shard = folder / "model-00002-of-00006.safetensors"
    if damage == "remove":
        shard.unlink()
    else:
        truncate(shard)
    return {"folder": folder}


def iv2_without(env, key):
    folder = env.copy(env.internvideo2, "iv2")
    from safetensors.torch import load_file, save_file

    weights = load_file(folder / "model.safetensors")
    del weights[key]
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    return {"folder": folder, "video": env.videos["good"], "model": folder, "folder_out": env.fresh("emb")}


ROWS += [
    Row(
        L,
        "missing tensor: error naming it",
        lambda e, c: from_pretrained(c["folder"]),
        Raises(ValueError, "missing tensors .*model.query_tokens"),
        prepare=without_query_tokens,
    ),
    Row(
        L,
        "missing tensor through the Auto class",
        lambda e, c: auto_model(c["folder"]),
        Raises(ValueError, "missing tensors .*model.query_tokens"),
        prepare=without_query_tokens,
    ),
    Row(
        L,
        "unexpected tensor: error naming it",
        lambda e, c: from_pretrained(c["folder"]),
        Raises(ValueError, "unexpected tensors .*model.extra_weight"),
        prepare=with_extra_tensor,
    ),
    Row(
        L,
        "strict=False loads partially on purpose",
        lambda e, c: from_pretrained(c["folder"], strict=False, output_loading_info=True),
        Ok(lambda r, e, c: r[1]["missing_keys"] == {"model.query_tokens"} or pytest.fail(str(r[1]))),
        prepare=without_query_tokens,
    ),
    Row(
        L,
        "output_loading_info=True: the caller gets the missing key in the report instead of an error",
        lambda e, c: from_pretrained(c["folder"], output_loading_info=True),
        Ok(lambda r, e, c: r[1]["missing_keys"] == {"model.query_tokens"} or pytest.fail(str(r[1]))),
        prepare=without_query_tokens,
    ),
    Row(
        L,
        "output_loading_info=True with strict=True: still an error",
        lambda e, c: from_pretrained(c["folder"], output_loading_info=True, strict=True),
        Raises(ValueError, "missing tensors .*model.query_tokens"),
        prepare=without_query_tokens,
    ),
    Row(
        L,
        "videochat chat with a missing tensor",
        lambda e, c: chat_argv(e, c["folder"]),
        Exits(2, "missing tensors .*model.query_tokens"),
        prepare=without_query_tokens,
    ),
    Row(
        L,
        "tensor of the wrong shape",
        lambda e, c: from_pretrained(edit_weights(converted_copy(e), shape=("model.query_tokens", (1, 3, 64)))),
        Raises(ValueError, r"wrong shape \(model.query_tokens: \(1, 3, 64\) in the checkpoint"),
    ),
    Row(
        L,
        "truncated model.safetensors named",
        lambda e, c: from_pretrained(c["folder"]),
        Raises(ValueError, "model.safetensors: the file is truncated"),
        prepare=lambda e: {"folder": truncate(converted_copy(e) / "model.safetensors").parent},
    ),
    Row(
        L,
        "videochat chat with a truncated model.safetensors",
        lambda e, c: chat_argv(e, c["folder"]),
        Exits(2, "model.safetensors: the file is truncated"),
        prepare=lambda e: {"folder": truncate(converted_copy(e) / "model.safetensors").parent},
    ),
    Row(
        L,
        "model.safetensors that is not safetensors",
        lambda e, c: from_pretrained(c["folder"]),
        Raises(ValueError, "cannot read the weights .*model.safetensors"),
        prepare=lambda e: (
            lambda f: (
                (f / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json here!}"),
                {"folder": f},
            )[1]
        )(converted_copy(e)),
    ),
    Row(
        L,
        "sharded folder with a shard missing",
        lambda e, c: auto_model(c["folder"]),
        Raises(OSError, "model-00002-of-00006.safetensors"),
        prepare=lambda e: sharded_copy(e, "remove"),
    ),
    Row(
        L,
        "sharded folder with a truncated shard",
        lambda e, c: auto_model(c["folder"]),
        Raises(ValueError, "model-00002-of-00006.safetensors: the file is truncated"),
        prepare=lambda e: sharded_copy(e, "truncate"),
    ),
    Row(
        L,
        "videochat chat on a folder without config.json",
        lambda e, c: chat_argv(e, (lambda f: ((f / "config.json").unlink(), f)[1])(converted_copy(e))),
        Exits(2, "no config.json.*videochat convert"),
    ),
    Row(
        L,
        "videochat chat on a config.json that is not JSON",
        lambda e, c: chat_argv(e, (lambda f: ((f / "config.json").write_text("{oops"), f)[1])(converted_copy(e))),
        Exits(2, "is not valid JSON"),
    ),
    Row(
        L,
        "config.json that is not JSON (Python)",
        lambda e, c: auto_model((lambda f: ((f / "config.json").write_text("{oops"), f)[1])(converted_copy(e))),
        Raises(OSError, "not a valid JSON|JSON"),
    ),
    Row(
        L,
        "videochat chat on another model's folder",
        lambda e, c: chat_argv(
            e, (lambda f: ((f / "config.json").write_text('{"model_type": "llama"}'), f)[1])(converted_copy(e))
        ),
        Exits(2, "model_type 'llama'"),
    ),
    Row(
        L,
        "videochat chat on a folder without tokenizer.json",
        lambda e, c: chat_argv(e, (lambda f: ((f / "tokenizer.json").unlink(), f)[1])(converted_copy(e))),
        Exits(2, "no tokenizer.json.*incomplete"),
    ),
    Row(
        L,
        "AutoProcessor on a folder without tokenizer.json",
        lambda e, c: __import__("transformers").AutoProcessor.from_pretrained(
            (lambda f: ((f / "tokenizer.json").unlink(), f)[1])(converted_copy(e))
        ),
        Raises(FileNotFoundError, "no tokenizer.json"),
    ),
    Row(
        L,
        "videochat chat --model ./missing-folder",
        lambda e, c: chat_argv(e, "./no-such-converted-folder"),
        Exits(2, "model folder not found: ./no-such-converted-folder"),
    ),
    Row(
        L,
        "videochat chat --model name offline: not a local folder, not on the Hub",
        lambda e, c: chat_argv(e, "no-such-videochat-model"),
        Exits(2, "cannot load the model folder or Hub repo \\(no local folder of that name\\)"),
        within=hub_offline,
    ),
    Row(
        L,
        "InternVideo2: missing tensor",
        lambda e, c: from_pretrained(c["folder"], "InternVideo2VideoTextModel"),
        Raises(ValueError, "missing tensors .*temperature"),
        prepare=lambda e: iv2_without(e, "temperature"),
    ),
    Row(
        L,
        "InternVideo2: strict=False",
        lambda e, c: from_pretrained(c["folder"], "InternVideo2VideoTextModel", strict=False),
        Ok(lambda r, e, c: abs(r.temperature.item() - 0.07) < 1e-6 or pytest.fail("init")),
        prepare=lambda e: iv2_without(e, "temperature"),
    ),
    Row(
        L,
        "InternVideo2: videochat embed with a missing tensor",
        lambda e, c: [
            "embed",
            c["video"],
            "--model",
            c["folder"],
            "--output",
            c["folder_out"] / "e.npy",
            "--no-progress",
            "--device",
            "cpu",
        ],
        Exits(2, "missing tensors .*temperature"),
        prepare=lambda e: iv2_without(e, "temperature"),
    ),
    Row(
        L,
        "base model from a folder with a head: lm_head left out",
        lambda e, c: from_pretrained(e.converted, "VideoChatModel"),
        Ok(lambda r, e, c: type(r).__name__ == "VideoChatModel" or pytest.fail("class")),
    ),
    Row(
        L,
        "output_loading_info still returns the report",
        lambda e, c: from_pretrained(e.converted, output_loading_info=True),
        Ok(lambda r, e, c: r[1]["missing_keys"] == set() or pytest.fail(str(r[1]))),
    ),
    Row(
        L,
        "folder converted by videochat 0.1.0 loads strictly",
        lambda e, c: auto_model(REPO / "tests" / "assets" / "videochat_0.1.0" / "internvideo2"),
        Ok(),
    ),
]

# ---------------------------------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------------------------------

X = "cli"
COMMANDS = ("demo", "chat", "convert", "convert-tokenizer", "parity", "convert-internvideo2", "embed")


def non_utf8_stdin(env):
    return {"stdin": b"what \xff\xfe happens?\n"}


def broken_convert():
    import videochat.cli.convert as convert_cli

    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")

    return patched(convert_cli, "convert", broken)


ROWS += [
    Row(X, "no command", lambda e, c: [], Exits(2, "usage: videochat COMMAND")),
    Row(X, "unknown command", lambda e, c: ["chatt"], Exits(2, "unknown command 'chatt'")),
    Row(X, "--help", lambda e, c: ["--help"], Exits(0, stdout="commands:")),
    *[
        Row(X, f"{command} --help", lambda e, c, command=command: [command, "--help"], Exits(0, stdout="usage:"))
        for command in COMMANDS
    ],
    *[
        Row(
            X,
            f"{command} with a bad option",
            lambda e, c, command=command: [command, "--no-such-option"],
            Exits(2, "usage:.*error"),
        )
        for command in COMMANDS
    ],
    Row(
        X,
        "chat: missing video",
        lambda e, c: chat_argv(e, e.converted)[:1] + [e.root / "missing.mp4"] + chat_argv(e, e.converted)[2:],
        Exits(2, "video file not found"),
    ),
    Row(
        X,
        "chat: a folder as the video",
        lambda e, c: ["chat", e.videos["folder"], "q", "--model", e.converted],
        Exits(2, "is not a video file"),
    ),
    Row(
        X,
        "chat: --device cuda without CUDA",
        lambda e, c: (
            chat_argv(e, e.converted, "--device", "cuda")
            if not torch.cuda.is_available()
            else pytest.skip("CUDA present")
        ),
        Exits(2, "CUDA is not available here.*--device cpu"),
    ),
    Row(
        X,
        "chat: --device that is not a device",
        lambda e, c: chat_argv(e, e.converted, "--device", "gpu0"),
        Exits(2, "is not a device"),
    ),
    Row(
        X,
        "chat: --num-frames 0",
        lambda e, c: chat_argv(e, e.converted, "--num-frames", "0"),
        Exits(2, "--num-frames must be a positive integer"),
    ),
    Row(
        X,
        "chat: --max-new-tokens 0",
        lambda e, c: chat_argv(e, e.converted, "--max-new-tokens", "0"),
        Exits(2, "--max-new-tokens must be a positive integer"),
    ),
    Row(
        X,
        "chat: --hd-num 0",
        lambda e, c: chat_argv(e, e.converted, "--hd-num", "0"),
        Exits(2, "--hd-num must be a positive integer"),
    ),
    Row(
        X,
        "chat: non-UTF-8 standard input",
        lambda e, c: [
            "chat",
            e.videos["good"],
            "--model",
            e.converted,
            "--num-frames",
            "2",
            "--max-new-tokens",
            "2",
            "--greedy",
        ],
        Exits(2, "standard input is not valid UTF-8"),
        prepare=non_utf8_stdin,
    ),
    Row(
        X,
        "chat: question with undecodable bytes",
        lambda e, c: ["chat", e.videos["good"], "caf\udce9?", "--model", e.converted],
        Exits(2, "question is not valid UTF-8"),
    ),
    Row(X, "chat: a question answered", lambda e, c: chat_argv(e, e.converted), Exits(0)),
    Row(
        X,
        "chat: multi-turn on standard input",
        lambda e, c: [
            "chat",
            e.videos["good"],
            "--model",
            e.converted,
            "--num-frames",
            "2",
            "--max-new-tokens",
            "2",
            "--greedy",
        ],
        Exits(0, "Ask about the video"),
        prepare=lambda e: {"stdin": b"first?\nsecond?\n\n"},
    ),
    Row(
        X,
        "chat: a 0-byte video",
        lambda e, c: ["chat", e.videos["empty"], "q", "--model", e.converted],
        Exits(2, "empty \\(0 bytes\\)"),
    ),
    Row(
        X,
        "chat: a file named pipe:0 does not read standard input",
        lambda e, c: [
            "chat",
            e.videos["pipe"],
            "q?",
            "--model",
            e.converted,
            "--num-frames",
            "2",
            "--max-new-tokens",
            "1",
        ],
        Exits(0),
    ),
    Row(
        X,
        "embed: --device cuda without CUDA",
        lambda e, c: (
            embed_argv(prepare_embed(e), e.fresh("o") / "e.npy", "--device", "cuda")
            if not torch.cuda.is_available()
            else pytest.skip("CUDA present")
        ),
        Exits(2, "CUDA is not available"),
    ),
    Row(
        X,
        "embed: --model ./missing-folder",
        lambda e, c: ["embed", e.videos["good"], "--model", "./no-such-model", "--output", e.fresh("o") / "e.npy"],
        Exits(2, "model folder not found: ./no-such-model"),
    ),
    Row(
        X,
        "embed: output suffix",
        lambda e, c: embed_argv(prepare_embed(e), e.fresh("o") / "e.csv"),
        Exits(2, "must end with one of"),
    ),
    Row(
        X,
        "embed: a folder without videos",
        lambda e, c: ["embed", e.fresh("novideos"), "--model", e.internvideo2, "--output", e.fresh("o") / "e.npy"],
        Exits(2, "no video files found"),
    ),
    Row(
        X,
        "embed: missing video",
        lambda e, c: ["embed", e.root / "none.mp4", "--model", e.internvideo2, "--output", e.fresh("o") / "e.npy"],
        Exits(2, "no such video file or folder"),
    ),
    Row(
        X,
        "embed: --batch-size 0",
        lambda e, c: embed_argv(prepare_embed(e), e.fresh("o") / "e.npy", "--batch-size", "0"),
        Exits(2, "--batch-size must be positive"),
    ),
    Row(
        X,
        "embed: an undecodable video",
        lambda e, c: [
            "embed",
            e.videos["garbage"],
            "--model",
            e.internvideo2,
            "--output",
            e.fresh("o") / "e.npy",
            "--no-progress",
            "--device",
            "cpu",
        ],
        Exits(2, "cannot embed .*garbage.mp4"),
    ),
    Row(
        X,
        "embed: --model that is a Chat folder",
        lambda e, c: [
            "embed",
            e.videos["good"],
            "--model",
            e.converted,
            "--output",
            e.fresh("o") / "e.npy",
            "--device",
            "cpu",
        ],
        Exits(2, "needs an InternVideo2 model"),
    ),
    Row(
        X,
        "convert: --dtype not offered",
        lambda e, c: ["convert", e.original, e.fresh("o") / "out", "--dtype", "int4"],
        Exits(2, "invalid choice"),
    ),
    Row(
        X,
        "convert-internvideo2: missing source",
        lambda e, c: ["convert-internvideo2", e.root / "none.pth", e.fresh("o") / "out"],
        Exits(2, "not found|No such"),
    ),
    Row(
        X,
        "convert-internvideo2: --gelu not offered",
        lambda e, c: ["convert-internvideo2", e.internvideo2_source, e.fresh("o") / "out", "--gelu", "relu"],
        Exits(2, "invalid choice"),
    ),
    Row(
        X,
        "convert-tokenizer: missing source folder",
        lambda e, c: ["convert-tokenizer", e.root / "none", e.fresh("o") / "out", "--preset", "videochat-7b"],
        Exits(2, "tokenizer.model not found"),
    ),
    Row(
        X,
        "convert-tokenizer: --preset not offered",
        lambda e, c: ["convert-tokenizer", e.llm_folder, e.fresh("o") / "out", "--preset", "gpt2"],
        Exits(2, "invalid choice"),
    ),
    Row(
        X,
        "parity: not a fixture folder (a failed check, exit 1)",
        lambda e, c: ["parity", e.fresh("nofixture")],
        Exits(1, stdout="original_config.json is missing"),
    ),
    Row(
        X,
        "an unexpected failure is an internal error, without traceback",
        lambda e, c: ["convert", e.original, e.fresh("o") / "out", "--no-progress"],
        Exits(1, "internal error: RuntimeError: simulated bug.*VIDEOCHAT_TRACEBACK=1"),
        within=broken_convert,
    ),
]


# ---------------------------------------------------------------------------------------------------------------------
# the matrix
# ---------------------------------------------------------------------------------------------------------------------


def _param(row: Row):
    marks = [pytest.mark.heavy] if row.heavy else []
    return pytest.param(row, id=f"{row.group}: {row.name}", marks=marks)


@pytest.mark.parametrize("row", [_param(row) for row in ROWS])
def test_fault_matrix(row, env, capfd, caplog):
    run_row(row, env, capfd, caplog)


def test_matrix_covers_every_group_and_the_issue_count():
    counts = Counter(row.group for row in ROWS)
    assert set(counts) == set(GROUPS), counts
    assert len(ROWS) >= 181, len(ROWS)
    assert len({(row.group, row.name) for row in ROWS}) == len(ROWS), "row names must be unique"


def test_a_real_process_prints_no_traceback(env, tmp_path):
    """The console entry point itself (not only `main()` in this process) reports failures in one line."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    environment.pop("VIDEOCHAT_TRACEBACK", None)
    llm = env.copy(env.llm_folder, "llm")
    before = snapshot(llm)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "videochat",
            "convert-tokenizer",
            str(llm),
            str(llm),
            "--preset",
            "videochat2-mistral-7b",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=environment,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.stderr.startswith("videochat convert-tokenizer: error: ") and snapshot(llm) == before


def test_videochat_traceback_shows_the_traceback(env, capfd, monkeypatch):
    from fault_matrix_support import run_cli

    import videochat.cli.convert as convert_cli

    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(convert_cli, "convert", broken)
    monkeypatch.setenv("VIDEOCHAT_TRACEBACK", "1")
    assert run_cli(["convert", env.original, env.fresh("o") / "out", "--no-progress"]) == 1
    assert "Traceback (most recent call last)" in capfd.readouterr().err


def test_interrupted_by_a_signal_exits_cleanly(env, tmp_path):
    """SIGINT (Ctrl-C) delivered to a real `videochat convert` process: exit 130, one line, nothing left behind."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    script = (
        "import os, signal, sys\n"
        "import videochat.convert.writer as writer\n"
        "original = writer.ShardWriter.write\n"
        "def write(self, name, tensor):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    return original(self, name, tensor)\n"
        "writer.ShardWriter.write = write\n"
        "from videochat.cli import main\n"
        f"sys.exit(main(['convert', {str(env.original)!r}, {str(tmp_path / 'out')!r}, '--no-progress']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=environment
    )
    assert result.returncode == 130 and "interrupted" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []

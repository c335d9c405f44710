# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Support of the fault matrix (tests/test_fault_matrix.py): row and outcome types, the shared environment (generated
videos, converted folders, tmpfs mounts) and the checks every row gets (folder snapshots, no traceback)."""

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from conftest import train_sentencepiece_model


REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------------------------------
# Rows and outcomes
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ok:
    """The action succeeds; `check(result, env, ctx)` looks at what it returned."""

    check: Callable | None = None


@dataclass(frozen=True)
class Raises:
    """The action raises `error` with a message matching `match` (a regular expression)."""

    error: type
    match: str


@dataclass(frozen=True)
class Warns:
    """The action succeeds and logs a warning matching `match`; `check(result, env, ctx)` as for `Ok`."""

    match: str
    check: Callable | None = None


@dataclass(frozen=True)
class Exits:
    """The action returns a `videochat` command line; run in this process it exits with `code`, prints `match` on
    standard error (`stdout` on standard output) and never a Python traceback."""

    code: int
    match: str = ""
    stdout: str = ""


@dataclass(frozen=True)
class Row:
    """One fault: `prepare(env) -> ctx` builds what it needs, `act(env, ctx)` does what the user does, `expect` is the
    outcome; the folders `guard(env, ctx)` names must hold the same files with the same bytes afterwards; `within()`
    is a context (a patch, offline mode) the whole row runs in."""

    group: str
    name: str
    act: Callable[..., Any]
    expect: Ok | Raises | Warns | Exits
    prepare: Callable[..., dict] | None = None
    guard: Callable[..., Any] | None = None
    heavy: bool = False
    within: Callable[[], contextlib.AbstractContextManager] | None = None


# ---------------------------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, str]:
    """`{relative path: sha256 or "<dir>" or "-> target"}` of everything under `root` (hidden entries included)."""
    root = Path(root)
    if not root.exists() and not root.is_symlink():
        return {}
    found = {}
    for current, directories, files in os.walk(root):
        for name in directories:
            path = Path(current, name)
            found[str(path.relative_to(root))] = f"-> {os.readlink(path)}" if path.is_symlink() else "<dir>"
        for name in files:
            path = Path(current, name)
            if path.is_symlink():
                found[str(path.relative_to(root))] = f"-> {os.readlink(path)}"
            elif not path.is_file():  # a pipe or socket: never opened (that would block)
                found[str(path.relative_to(root))] = f"<special {oct(path.lstat().st_mode)}>"
            else:
                found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def leftovers(folder: Path) -> list[str]:
    """Staging / retired folders or files of interrupted runs next to an output."""
    return sorted(p.name for p in Path(folder).iterdir() if ".partial-" in p.name or ".old-" in p.name)


def run_cli(argv: list[str], stdin: bytes | None = None) -> int:
    from videochat.cli import main

    stream = io.TextIOWrapper(io.BytesIO(stdin or b""), encoding="utf-8")
    saved = sys.stdin
    sys.stdin = stream
    try:
        return main([str(arg) for arg in argv])
    except SystemExit as exit:  # argparse: --help, usage errors
        return exit.code if isinstance(exit.code, int) else 2
    finally:
        sys.stdin = saved


def run_row(row: Row, env, capfd, caplog) -> None:
    with row.within() if row.within else contextlib.nullcontext():
        _run_row(row, env, capfd, caplog)


def _run_row(row: Row, env, capfd, caplog) -> None:
    ctx = row.prepare(env) if row.prepare else {}
    guarded = row.guard(env, ctx) if row.guard else []
    guarded = [Path(path) for path in (guarded if isinstance(guarded, (list, tuple)) else [guarded])]
    before = [snapshot(path) for path in guarded]
    expect = row.expect
    if isinstance(expect, Exits):
        argv = row.act(env, ctx)
        capfd.readouterr()
        code = run_cli(argv, ctx.get("stdin"))
        out, err = capfd.readouterr()
        assert "Traceback (most recent call last)" not in out + err, err
        assert code == expect.code, f"exit {code}, stderr: {err}"
        assert re.search(expect.match, err, flags=re.S), err
        assert re.search(expect.stdout, out, flags=re.S), out
    elif isinstance(expect, Raises):
        with pytest.raises(expect.error, match=expect.match):
            row.act(env, ctx)
    elif isinstance(expect, Warns):
        with caplog.at_level("WARNING"):
            result = row.act(env, ctx)
        assert re.search(expect.match, caplog.text, flags=re.S), caplog.text
        if expect.check:
            expect.check(result, env, ctx)
    else:
        result = row.act(env, ctx)
        if expect.check:
            expect.check(result, env, ctx)
    for path, state in zip(guarded, before):
        assert snapshot(path) == state, f"{path} changed"


# ---------------------------------------------------------------------------------------------------------------------
# Videos
# ---------------------------------------------------------------------------------------------------------------------


def frame_pattern(index: int, height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([(xx * 3 + index * 9) % 256, (yy * 2 + index * 5) % 256, (xx + yy + index * 17) % 256], -1).astype(
        np.uint8
    )


def write_video(
    path: Path,
    num_frames: int = 30,
    width: int = 64,
    height: int = 48,
    fps: int = 10,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    container_format: str | None = None,
    container_options: dict | None = None,
    rotation: int | None = None,
) -> Path:
    with av.open(str(path), "w", format=container_format, options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "bframes": "2"}
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for index in range(num_frames):
            frame = av.VideoFrame.from_ndarray(frame_pattern(index, height, width), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)


def write_audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = np.zeros((1, 1024), np.float32)
        for index in range(10):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, index * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)


def decode_all(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def make_videos(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    videos = {
        "good": write_video(folder / "good.mp4"),
        "other": write_video(folder / "other.mp4", num_frames=10, width=96, height=64),
        "plain": write_video(folder / "plain.mp4", num_frames=12, width=64, height=48),
        "web": write_video(folder / "web.mp4", num_frames=48, container_options={"movflags": "faststart"}),
        "single": write_video(folder / "single.mp4", num_frames=1),
        "odd": write_video(folder / "odd.mp4", num_frames=9, width=33, height=17, pix_fmt="yuv444p"),
        "mkv": write_video(folder / "clip.mkv", num_frames=20, container_format="matroska"),
        "webm": write_video(folder / "clip.webm", num_frames=20, codec="libvpx-vp9", container_format="webm"),
        "avi": write_video(folder / "clip.avi", num_frames=20, codec="mpeg4", container_format="avi"),
        "gif": write_video(folder / "clip.gif", num_frames=6, codec="gif", pix_fmt="rgb8", container_format="gif"),
        "audio": write_audio_only(folder / "audio_only.m4a"),
    }
    for degrees in (90, 180, 270):
        videos[f"rot{degrees}"] = write_video(folder / f"rot{degrees}.mp4", num_frames=12, rotation=degrees)
    data = videos["web"].read_bytes()
    videos["web_cut"] = folder / "web_cut.mp4"
    videos["web_cut"].write_bytes(data[: len(data) // 2])
    plain = write_video(folder / "moov_last.mp4", num_frames=48).read_bytes()
    videos["moov_last_cut"] = folder / "moov_last_cut.mp4"
    videos["moov_last_cut"].write_bytes(plain[: len(plain) // 2])
    videos["header_only"] = folder / "header_only.mp4"
    videos["header_only"].write_bytes(data[:600])
    videos["empty"] = folder / "empty.mp4"
    videos["empty"].write_bytes(b"")
    videos["garbage"] = folder / "garbage.mp4"
    videos["garbage"].write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    videos["text"] = folder / "notes.mp4"
    videos["text"].write_text("this is not a video\n" * 50)
    videos["concat"] = folder / "concat:good.mp4"  # a file with that name: ffmpeg would read good.mp4
    shutil.copyfile(videos["other"], videos["concat"])
    videos["pipe"] = folder / "pipe:0"  # ffmpeg would read standard input
    shutil.copyfile(videos["other"], videos["pipe"])
    videos["file_prefixed"] = folder / "file:other.mp4"
    shutil.copyfile(videos["other"], videos["file_prefixed"])
    videos["spaces"] = folder / "my clip (final) é.mp4"
    shutil.copyfile(videos["good"], videos["spaces"])
    videos["dash"] = folder / "-i.mp4"
    shutil.copyfile(videos["good"], videos["dash"])
    videos["symlink"] = folder / "link.mp4"
    videos["symlink"].symlink_to(videos["good"])
    videos["broken_link"] = folder / "broken.mp4"
    videos["broken_link"].symlink_to(folder / "nowhere.mp4")
    videos["fifo"] = folder / "fifo.mp4"
    os.mkfifo(videos["fifo"])
    videos["folder"] = folder / "a_folder.mp4"
    videos["folder"].mkdir()
    from PIL import Image

    videos["png_named_mp4"] = folder / "still.mp4"
    Image.fromarray(frame_pattern(0, 48, 64)).save(videos["png_named_mp4"], format="PNG")
    videos["image"] = folder / "image.png"
    Image.fromarray(frame_pattern(3, 48, 64)).save(videos["image"])
    return videos


# ---------------------------------------------------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------------------------------------------------


def train_sentencepiece(folder: Path) -> Path:
    corpus = ["Describe the video in detail.", "What is happening? A person walks to the door.", "###Human: hi"] * 40
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.model").write_bytes(train_sentencepiece_model(corpus, vocab_size=400))
    return folder


def can_mount_tmpfs() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


class Env:
    """What the rows share, built on first use: generated videos, an original-layout checkpoint and its conversion,
    the loaded model and processor, a sentencepiece LLM folder, a converted InternVideo2 stage-2 folder."""

    def __init__(self, root: Path):
        self.root = root
        self._count = 0
        self._mounts: list[Path] = []

    def fresh(self, name: str = "work") -> Path:
        self._count += 1
        path = self.root / "rows" / f"{self._count:03d}-{name}"
        path.mkdir(parents=True)
        return path

    def copy(self, source: Path, name: str | None = None) -> Path:
        target = self.fresh(name or Path(source).name) / Path(source).name
        shutil.copytree(source, target, symlinks=True)
        return target

    @cached_property
    def videos(self) -> dict[str, Path]:
        return make_videos(self.root / "videos")

    @cached_property
    def original(self) -> Path:
        from videochat.cli.demo import write_original_checkpoint

        return write_original_checkpoint(self.root / "original", seed=0)

    @cached_property
    def converted(self) -> Path:
        from videochat.convert.converter import convert

        convert(self.original, self.root / "converted", preset="internvideo2-chat-8b-hd", progress=False)
        return self.root / "converted"

    @cached_property
    def model(self):
        from transformers import AutoModelForImageTextToText

        import videochat  # noqa: F401

        return AutoModelForImageTextToText.from_pretrained(self.converted).eval()

    @cached_property
    def processor(self):
        from transformers import AutoProcessor

        import videochat  # noqa: F401

        return AutoProcessor.from_pretrained(self.converted)

    @cached_property
    def inputs(self):
        """Processor outputs of one video prompt (4 frames of the good video)."""
        return self.processor(
            text="<video> what happens?", videos=str(self.videos["good"]), num_frames=4, return_tensors="pt"
        )

    @cached_property
    def llm_folder(self) -> Path:
        """A base-LLM-like folder: sentencepiece model, config and weights (what convert-tokenizer reads)."""
        folder = train_sentencepiece(self.root / "llm")
        (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
        (folder / "model.safetensors").write_bytes(b"weights" * 100)
        return folder

    @cached_property
    def internvideo2(self) -> Path:
        from internvideo2_testing import convert_fixture

        return convert_fixture("stage2", self.root / "internvideo2_stage2")

    @cached_property
    def internvideo2_source(self) -> Path:
        from conftest import shared_path

        return shared_path("fixtures", "internvideo2", "stage2_tiny", "original_checkpoint.pth")

    # ------------------------------------------------------------------------------------------- file systems

    def tmpfs(self, size: str, read_only: bool = False) -> Path:
        """A small tmpfs mounted for the row (root only); unmounted when the module ends."""
        if not can_mount_tmpfs():
            pytest.skip(
                "mounting a tmpfs needs root (the full-disk rows are root-only; read-only falls back to chmod)"
            )
        point = self.fresh("tmpfs")
        options = f"size={size}" + (",ro" if read_only else "")
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode(errors='replace').strip()}")
        self._mounts.append(point)
        return point

    def full_disk(self) -> Path:
        """A tmpfs filled up by a user's file (which must survive)."""
        point = self.tmpfs("256k")
        with contextlib.suppress(OSError), open(point / "user_data.bin", "wb") as handle:
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()
        return point

    def read_only(self) -> Path:
        """A read-only folder: a read-only tmpfs as root, else a folder without write permission."""
        if can_mount_tmpfs():
            return self.tmpfs("64k", read_only=True)
        folder = self.fresh("read_only")
        folder.chmod(0o555)
        return folder

    def close(self) -> None:
        for point in reversed(self._mounts):
            subprocess.run(["umount", "-l", str(point)], capture_output=True)
        for path in (self.root / "rows").glob("*"):
            with contextlib.suppress(OSError):
                path.chmod(0o755)


__all__ = [
    "Env",
    "Exits",
    "Ok",
    "REPO",
    "Raises",
    "Row",
    "Warns",
    "decode_all",
    "frame_pattern",
    "leftovers",
    "run_cli",
    "run_row",
    "snapshot",
    "write_video",
]

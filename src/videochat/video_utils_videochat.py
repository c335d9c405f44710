# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""
Video decoding and frame sampling for the VideoChat family, without torchvision.

Two layers:

* index rules (`get_segment_indices`, `get_bounded_segment_indices`, `get_uniform_indices`, `get_fps_indices`,
  `sample_frame_indices`) that reproduce how the original demos and benchmarks pick frames;
* decoders (`load_video` with the PyAV backend by default, decord optionally) that return RGB uint8 frames
  `(T, H, W, 3)` and a `VideoChatVideoMetadata`. Frame `i` always means the `i`-th frame in presentation order,
  the same numbering decord's `VideoReader` uses, so both backends return identical frames.

The PyAV decoder reads the packet index once (demuxing only, no decoding), groups the wanted frames by the
key frame they depend on, seeks to each group's key frame, stops feeding packets once the group's last wanted
picture has been sent and drains the decoder. Groups are decoded concurrently, longest first, one container per
thread (PyAV releases the GIL while decoding); disposable (non-reference) pictures that are not wanted are
skipped by the decoder, and only wanted frames are converted to RGB.

What a video input means:

* a local path is opened as a file, never as an ffmpeg URL or protocol (a file named `concat:a.mp4` or `pipe:0` is
  that file); it must be a regular file (not a folder, pipe or device). `file://` URLs are local paths;
* an `http://` / `https://` string is downloaded to a temporary file first (without a network: a clear error); other
  URL schemes are refused;
* a file whose header declares more frames than it holds (a truncated download or copy) is sampled from the frames
  it really holds, with a warning that names both counts; frames that cannot be decoded are an error;
* rotation metadata (the display matrix of phone videos) is applied by default, so frames come out as players show
  them (`apply_rotation=False` returns the stored orientation, which is what the original decord-based code saw).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import av
import numpy as np
import torch
from PIL import Image
from transformers.utils import logging
from transformers.video_utils import VideoMetadata


logger = logging.get_logger(__name__)


SAMPLING_STRATEGIES = ("segments", "mvbench", "uniform", "fps")
# Keyword arguments of `load_video_frames` that choose the frames of a video.
FRAME_SAMPLING_KEYS = ("do_sample_frames", "num_frames", "fps", "sampling", "bound", "video_backend", "apply_rotation")
VIDEO_BACKENDS = ("pyav", "decord")

# When the next wanted frame lies this many frames (or fewer) past the current decoding position, decoding on is
# cheaper than a seek even if a key frame lies in between.
_MAX_FRAMES_DECODED_INSTEAD_OF_SEEK = 12
URL_SCHEMES = ("http://", "https://")
DOWNLOAD_TIMEOUT_SECONDS = 60


@dataclass
class VideoChatVideoMetadata(VideoMetadata):
    """
    `transformers.video_utils.VideoMetadata` plus the presentation time stamps (seconds) of the returned frames.

    `frames_indices` are the sampled frame numbers, `total_num_frames` the number of frames in the stream, `fps`
    its average frame rate (what decord's `get_avg_fps()` reports; the original time messages divide by it).
    """

    frame_timestamps: list[float] | None = field(default=None)


# ---------------------------------------------------------------------------------------------------------------------
# Frame index rules
# ---------------------------------------------------------------------------------------------------------------------


def _is_integer(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def check_sampling_arguments(num_frames=None, fps=None, sampling=None, bound=None, frames_indices=None) -> None:
    """Refuse sampling arguments of the wrong type or range with a message naming the argument (`num_frames="8"`
    would otherwise fail deep inside numpy)."""
    if num_frames is not None and (not _is_integer(num_frames) or num_frames < 1):
        raise ValueError(f"`num_frames` must be a positive integer, got {num_frames!r}.")
    if fps is not None and (not _is_number(fps) or not np.isfinite(fps) or fps <= 0):
        raise ValueError(f"`fps` must be a positive number, got {fps!r}.")
    if sampling is not None and sampling not in SAMPLING_STRATEGIES:
        raise ValueError(f"Unknown frame sampling {sampling!r}; choose one of {SAMPLING_STRATEGIES}.")
    if bound is not None and (
        not isinstance(bound, (list, tuple, np.ndarray))
        or len(bound) != 2
        or not all(_is_number(value) and np.isfinite(value) for value in bound)
    ):
        raise ValueError(f"`bound` must be a (start_seconds, end_seconds) pair of numbers, got {bound!r}.")
    if frames_indices is not None and (
        isinstance(frames_indices, (str, bytes)) or not all(_is_integer(index) for index in np.ravel(frames_indices))
    ):
        raise ValueError(f"`frames_indices` must be a list of integers, got {frames_indices!r}.")


def _check_counts(total_num_frames: int, num_frames: int) -> None:
    if total_num_frames is None or int(total_num_frames) < 1:
        raise ValueError(f"The video has no frames to sample from (total_num_frames={total_num_frames}).")
    if num_frames is None or not _is_integer(num_frames) or int(num_frames) < 1:
        raise ValueError(f"`num_frames` must be a positive integer, got {num_frames!r}.")


def get_segment_indices(total_num_frames: int, num_segments: int) -> np.ndarray:
    """
    Middle-of-segment rule of the VideoChat / VideoChat2 / InternVideo2-Chat demos (`get_index`).

    `seg = (total - 1) / num_segments`, `start = int(seg / 2)`, `index_k = start + int(np.round(seg * k))`
    (numpy rounds half to even). With fewer frames than segments, frames repeat, as in the original.
    """
    _check_counts(total_num_frames, num_segments)
    segment_size = float(total_num_frames - 1) / num_segments
    start = int(segment_size / 2)
    return np.array([start + int(np.round(segment_size * k)) for k in range(num_segments)], dtype=np.int64)


def get_bounded_segment_indices(
    total_num_frames: int,
    num_segments: int,
    fps: float,
    bound: Sequence[float] | None = None,
    first_index: int = 0,
) -> np.ndarray:
    """
    Rule of the MVBench / Video-MME dataset classes, optionally restricted to `bound = (start_s, end_s)` seconds.

    `start_idx = max(first_index, round(start_s * fps))`, `end_idx = min(round(end_s * fps), total - 1)`,
    `seg = (end_idx - start_idx) / num_segments`, `index_k = int(start_idx + seg / 2 + np.round(seg * k))`.
    """
    _check_counts(total_num_frames, num_segments)
    if bound is not None:
        if len(bound) != 2:
            raise ValueError(f"`bound` must be a (start_seconds, end_seconds) pair, got {bound!r}.")
        start_s, end_s = float(bound[0]), float(bound[1])
        if end_s < start_s:
            raise ValueError(f"`bound` ends before it starts: {bound!r}.")
        if fps is None or fps <= 0:
            raise ValueError("A positive `fps` is needed to turn a time `bound` into frame indices.")
    else:
        start_s, end_s = -100000.0, 100000.0
    fps = float(fps) if fps else 1.0
    start_idx = max(first_index, round(start_s * fps))
    end_idx = min(round(end_s * fps), total_num_frames - 1)
    if end_idx < start_idx:
        raise ValueError(f"`bound` {bound!r} selects no frame of a video with {total_num_frames} frames at {fps} fps.")
    segment_size = float(end_idx - start_idx) / num_segments
    return np.array(
        [int(start_idx + segment_size / 2 + np.round(segment_size * k)) for k in range(num_segments)], dtype=np.int64
    )


def get_uniform_indices(total_num_frames: int, num_frames: int) -> np.ndarray:
    """`num_frames` indices spread evenly from the first to the last frame (`linspace`, rounded)."""
    _check_counts(total_num_frames, num_frames)
    return np.round(np.linspace(0, total_num_frames - 1, num_frames)).astype(np.int64)


def get_fps_indices(total_num_frames: int, video_fps: float, fps: float, max_frames: int | None = None) -> np.ndarray:
    """
    Indices that sample the video at `fps` frames per second (at least one frame). If that is more than
    `max_frames`, `max_frames` frames are spread uniformly instead.
    """
    _check_counts(total_num_frames, 1)
    if fps is None or fps <= 0:
        raise ValueError(f"`fps` must be positive, got {fps}.")
    if video_fps is None or video_fps <= 0:
        raise ValueError("The video's frame rate is unknown; sample by `num_frames` instead of `fps`.")
    num_frames = max(1, int(total_num_frames / video_fps * fps))
    num_frames = min(num_frames, total_num_frames)
    if max_frames is not None and num_frames > max_frames:
        return get_uniform_indices(total_num_frames, max_frames)
    return np.arange(0, total_num_frames, total_num_frames / num_frames).astype(np.int64)[:num_frames]


def sample_frame_indices(
    total_num_frames: int,
    video_fps: float | None = None,
    sampling: str = "segments",
    num_frames: int | None = 8,
    fps: float | None = None,
    bound: Sequence[float] | None = None,
) -> np.ndarray:
    """
    Pick frame indices with one of `SAMPLING_STRATEGIES`:

    * `"segments"` (default): the demos' `get_index(total, num_frames)`;
    * `"mvbench"`: the benchmark rule, optionally within `bound=(start_s, end_s)`;
    * `"uniform"`: `num_frames` evenly spaced indices including the first and last frame;
    * `"fps"`: `fps` frames per second of video (capped at `num_frames` if given).
    """
    if sampling not in SAMPLING_STRATEGIES:
        raise ValueError(f"Unknown frame sampling {sampling!r}; choose one of {SAMPLING_STRATEGIES}.")
    if bound is not None and sampling != "mvbench":
        raise ValueError("`bound` is only supported with sampling='mvbench'.")
    if sampling == "segments":
        return get_segment_indices(total_num_frames, num_frames)
    if sampling == "mvbench":
        return get_bounded_segment_indices(total_num_frames, num_frames, video_fps, bound=bound)
    if sampling == "uniform":
        return get_uniform_indices(total_num_frames, num_frames)
    return get_fps_indices(total_num_frames, video_fps, fps, max_frames=num_frames)


def sample_indices_fn(
    metadata: VideoMetadata,
    num_frames: int | None = 8,
    fps: float | None = None,
    sampling: str = "segments",
    bound: Sequence[float] | None = None,
    **kwargs,
) -> np.ndarray:
    """
    Frame indices of a video described by `metadata` (`total_num_frames`, `fps`), in the shape of transformers'
    `sample_indices_fn(metadata, **kwargs)`; see [`sample_frame_indices`] for the rules.
    """
    return sample_frame_indices(metadata.total_num_frames, metadata.fps, sampling, num_frames, fps, bound)


def format_time_message(frames_indices: Sequence[int], fps: float) -> str:
    """
    The original "time message": `"The video contains N frames sampled at s1, s2, ... seconds."` with
    `s = round(index / fps, 1)` (Python rounding of the float, as the demos do).
    """
    if fps is None or fps <= 0:
        raise ValueError(f"A positive `fps` is needed for the time message, got {fps}.")
    seconds = ", ".join(str(round(int(index) / float(fps), 1)) for index in frames_indices)
    return f"The video contains {len(frames_indices)} frames sampled at {seconds} seconds."


# ---------------------------------------------------------------------------------------------------------------------
# In-memory videos
# ---------------------------------------------------------------------------------------------------------------------


def to_rgb_frames(video) -> np.ndarray:
    """
    Turn an in-memory video into uint8 RGB frames `(T, H, W, 3)`.

    Accepts a numpy array or torch tensor shaped `(T, H, W)` (grayscale), `(T, H, W, C)` or `(T, C, H, W)` with
    C in {1, 3, 4} (alpha is dropped), or a list of PIL images / `(H, W[, C])` arrays. Float input must lie in
    [0, 1] or [0, 255]; it is rounded to uint8.
    """
    if isinstance(video, (list, tuple)):
        if len(video) == 0:
            raise ValueError("The video is an empty list of frames.")
        frames = [_frame_to_array(frame) for frame in video]
        sizes = sorted({frame.shape for frame in frames})
        if len(sizes) > 1:
            raise ValueError(f"The frames of a video must all have the same size, got {sizes[:3]}.")
        video = np.stack(frames)
    else:
        video = _tensor_to_numpy(video)
    if not isinstance(video, np.ndarray):
        raise ValueError(f"Unsupported video type {type(video).__name__}; pass a path, an array or a list of frames.")
    if video.ndim == 3:
        video = video[..., None]
    if video.ndim != 4:
        raise ValueError(f"A video array must have 3 or 4 dimensions (T, H, W[, C]), got shape {video.shape}.")
    if video.shape[0] == 0:
        raise ValueError("The video array contains no frames.")
    if video.shape[-1] not in (1, 3, 4) and video.shape[1] in (1, 3, 4):
        video = np.moveaxis(video, 1, -1)
    channels = video.shape[-1]
    if channels not in (1, 3, 4):
        raise ValueError(f"Cannot find a channel axis of size 1, 3 or 4 in a video of shape {video.shape}.")
    video = _to_uint8(video)
    if channels == 1:
        video = np.repeat(video, 3, axis=-1)
    elif channels == 4:
        video = video[..., :3]
    return np.ascontiguousarray(video)


def _tensor_to_numpy(video):
    if hasattr(video, "detach") and hasattr(video, "cpu"):
        return video.detach().cpu().numpy()
    return video


def _frame_to_array(frame) -> np.ndarray:
    if isinstance(frame, Image.Image):
        return np.asarray(frame.convert("RGB"))
    frame = _tensor_to_numpy(frame)
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"Unsupported frame type {type(frame).__name__}.")
    if frame.ndim == 2:
        frame = frame[..., None]
    if frame.ndim != 3:
        raise ValueError(f"A frame must have shape (H, W[, C]), got {frame.shape}.")
    if frame.shape[-1] not in (1, 3, 4) and frame.shape[0] in (1, 3, 4):
        frame = np.moveaxis(frame, 0, -1)
    if frame.shape[-1] == 1:
        frame = np.repeat(frame, 3, axis=-1)
    return frame[..., :3]


def _to_uint8(video: np.ndarray) -> np.ndarray:
    if video.dtype == np.uint8:
        return video
    if video.dtype == np.bool_:
        raise ValueError("Boolean arrays are not videos.")
    if not (np.issubdtype(video.dtype, np.integer) or np.issubdtype(video.dtype, np.floating)):
        raise ValueError(f"Video pixels must be integers or floats, got an array of dtype {video.dtype}.")
    if np.issubdtype(video.dtype, np.floating):
        if not np.isfinite(video).all():
            raise ValueError("The video array contains NaN or infinite values.")
        if video.size and video.max() <= 1.0:
            video = video * 255.0
        video = np.round(video)
    if video.size and (video.min() < 0 or video.max() > 255):
        raise ValueError(f"Video values must lie in [0, 255], got [{video.min()}, {video.max()}].")
    return video.astype(np.uint8)


# ---------------------------------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------------------------------


def _check_video_path(path) -> str:
    """A local video file: it must exist and be a regular, non-empty file (a pipe or device would block or never
    end)."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"Expected a path to a video file, got {type(path).__name__}.")
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"Video file not found: {path}") from None
    except OSError as error:
        raise ValueError(f"Cannot read the video file {path} ({error.strerror}).") from None
    if stat.S_ISDIR(mode):
        raise ValueError(f"Expected a video file, got a directory: {path}")
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path} is not a regular file (a pipe, socket or device); save the video to a file first.")
    if os.path.getsize(path) == 0:
        raise ValueError(f"The video file is empty (0 bytes): {path}")
    if not os.access(path, os.R_OK):
        raise ValueError(f"Cannot read the video file {path} (permission denied).")
    return path


def _as_file_url(path: str) -> str:
    """The name ffmpeg opens as exactly this file: without the `file:` protocol, names such as `concat:a.mp4`,
    `pipe:0` or `subfile,,...` select other ffmpeg protocols."""
    return "file:" + os.path.abspath(path)


def is_url(value) -> bool:
    return isinstance(value, str) and value.lower().startswith(URL_SCHEMES)


def download_to_temporary_file(url: str, kind: str = "video") -> str:
    """Download an `http(s)://` URL to a temporary file (the caller deletes it); a clear error without a network."""
    suffix = os.path.splitext(url.split("?", 1)[0].split("#", 1)[0])[1][:8]
    handle, temporary = tempfile.mkstemp(prefix="videochat-", suffix=suffix)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response, os.fdopen(handle, "wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError, ValueError) as error:
        os.unlink(temporary)
        reason = getattr(error, "reason", None) or error
        raise ValueError(
            f"Could not download the {kind} {url} ({reason}). Check the network connection, or download the file and "
            "pass its local path."
        ) from None
    except BaseException:
        os.unlink(temporary)
        raise
    return temporary


@dataclass
class _PacketIndex:
    """Presentation time stamps of every frame of a stream (sorted) and of its key frames."""

    frame_pts: np.ndarray
    keyframe_pts: np.ndarray
    disposable_pts: frozenset
    num_corrupt: int = 0


def _is_disposable_h264_packet(data: memoryview) -> bool:
    """True when every NAL unit of a length-prefixed (avcC) H.264 access unit has nal_ref_idc == 0."""
    offset, found_slice = 0, False
    size = len(data)
    while offset + 4 < size:
        nal_size = int.from_bytes(data[offset : offset + 4], "big")
        header = data[offset + 4]
        nal_type = header & 0x1F
        if nal_type in (1, 5):
            if (header >> 5) & 0x3:
                return False
            found_slice = True
        offset += 4 + nal_size
    return found_slice and offset == size


def _read_packet_index(container, stream) -> _PacketIndex:
    check_disposable = (
        stream.codec_context.name == "h264"
        and stream.codec_context.extradata is not None
        and len(stream.codec_context.extradata) > 4
        and stream.codec_context.extradata[0] == 1  # avcC: length-prefixed NAL units
        and (stream.codec_context.extradata[4] & 0x3) == 3  # 4-byte NAL lengths
    )
    frame_pts, keyframe_pts, disposable = [], [], set()
    num_corrupt = 0
    for packet in container.demux(stream):
        if packet.size == 0:
            continue
        if packet.is_corrupt:  # e.g. the last, partly present packet of a truncated file
            num_corrupt += 1
            continue
        if packet.pts is None:
            raise _NoTimestamps()
        frame_pts.append(packet.pts)
        if packet.is_keyframe:
            keyframe_pts.append(packet.pts)
        elif check_disposable and _is_disposable_h264_packet(memoryview(packet)):
            disposable.add(packet.pts)
    return _PacketIndex(
        frame_pts=np.sort(np.asarray(frame_pts, dtype=np.int64)),
        keyframe_pts=np.sort(np.asarray(keyframe_pts, dtype=np.int64)),
        disposable_pts=frozenset(disposable),
        num_corrupt=num_corrupt,
    )


class _NoTimestamps(Exception):
    """The stream has packets without presentation time stamps; frames are then counted while decoding."""


class _SeekMissed(Exception):
    """A seek landed after a wanted frame (inexact index); the group is decoded again from the start."""


def _plan_groups(index: _PacketIndex, wanted_pts: list[int]) -> list[tuple[int, list[int]]]:
    """Split sorted wanted time stamps into (seek_pts, [pts, ...]) groups, one seek per group."""
    groups: list[tuple[int, list[int]]] = []
    frame_position = {int(pts): position for position, pts in enumerate(index.frame_pts)}
    last_position = None
    for pts in wanted_pts:
        key_position = np.searchsorted(index.keyframe_pts, pts, side="right") - 1
        seek_pts = int(index.keyframe_pts[key_position]) if key_position >= 0 else int(index.frame_pts[0])
        position = frame_position[pts]
        if groups and (
            seek_pts <= groups[-1][1][-1] or position - last_position <= _MAX_FRAMES_DECODED_INSTEAD_OF_SEEK
        ):
            groups[-1][1].append(pts)
        else:
            groups.append((seek_pts, [pts]))
        last_position = position
    return groups


def _frame_to_rgb(frame, apply_rotation: bool = True) -> np.ndarray:
    """RGB pixels of a decoded frame, turned as players show it when `apply_rotation` (the display matrix gives a
    counter-clockwise rotation in degrees)."""
    rgb = frame.to_ndarray(format="rgb24")
    turns = int(round(frame.rotation / 90)) % 4 if apply_rotation and frame.rotation else 0
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def _set_codec_threads(stream, codec_threads: int, frame_threads: bool) -> None:
    if codec_threads > 1:
        stream.thread_type = "AUTO" if frame_threads else "SLICE"
        stream.thread_count = codec_threads
    else:
        stream.thread_type = "NONE"
        stream.thread_count = 1


def _decode_group(
    container,
    stream,
    seek_pts: int | None,
    wanted: list[int],
    disposable: frozenset,
    skip_disposable: bool,
    apply_rotation: bool = True,
) -> dict[int, np.ndarray]:
    """
    Decode the frames `wanted` (sorted time stamps) that depend on the key frame at `seek_pts` (`None`: decode
    from where the freshly opened `container` starts).

    Packets are fed in decoding order until the last wanted picture has been sent; the decoder is then drained
    instead of being fed the pictures that follow (they would only be decoded to release the wanted ones from the
    reordering buffer). With `skip_disposable`, pictures nothing refers to are skipped unless wanted. Only the
    wanted frames are converted to RGB.
    """
    wanted_set = set(wanted)
    not_sent = set(wanted)
    found: dict[int, np.ndarray] = {}

    def collect(frames) -> None:
        for frame in frames:
            pts = frame.pts
            if pts is None:
                continue
            if not found and pts > wanted[0]:
                raise _SeekMissed()
            if pts in wanted_set and pts not in found:
                found[pts] = _frame_to_rgb(frame, apply_rotation)

    if seek_pts is not None:
        # Seeking also flushes the decoder, so a container can serve several groups.
        container.seek(seek_pts, stream=stream, backward=True, any_frame=False)
    codec = stream.codec_context
    skipping = False
    for packet in container.demux(stream):
        if not packet.size or packet.is_corrupt:
            continue
        if skip_disposable:
            skip = packet.pts in disposable and packet.pts not in wanted_set
            if skip != skipping:
                codec.skip_frame = "NONREF" if skip else "DEFAULT"
                skipping = skip
        collect(codec.decode(packet))
        not_sent.discard(packet.pts)
        if not not_sent:
            break
    if skipping:
        codec.skip_frame = "DEFAULT"
    collect(codec.decode(None))
    return found


def _decode_groups(
    path: str,
    stream_index: int,
    groups: list[tuple[int, list[int]]],
    index: _PacketIndex,
    workers: int,
    apply_rotation: bool = True,
) -> dict[int, np.ndarray]:
    """
    Decode every group with `min(workers, len(groups))` threads (PyAV releases the GIL while decoding). Each thread
    opens the file once and takes the longest group left until none is left.

    One group: its decoder pipelines whole pictures over every core (frame threads, every picture decoded).
    Several: each decoder also gets slice threads (at least two, so that pictures cut into slices keep the cores
    busy while the last, unevenly sized groups finish) and skips the disposable pictures that are not wanted
    (exact with slice threads).
    """

    first_pts = int(index.frame_pts[0])
    frame_threads, codec_threads = _codec_threading(workers, len(groups))
    pending = sorted(groups, key=lambda group: _group_cost(index, *group), reverse=True)
    lock = threading.Lock()
    found: dict[int, np.ndarray] = {}

    def work() -> None:
        with av.open(_as_file_url(path)) as container:
            stream = container.streams[stream_index]
            _set_codec_threads(stream, codec_threads, frame_threads)
            fresh = True
            while True:
                with lock:
                    if not pending:
                        return
                    seek_pts, wanted = pending.pop(0)
                try:
                    result = _decode_group(
                        container,
                        stream,
                        None if fresh and seek_pts <= first_pts else seek_pts,
                        wanted,
                        index.disposable_pts,
                        skip_disposable=not frame_threads,
                        apply_rotation=apply_rotation,
                    )
                except BaseException:
                    with lock:
                        pending.clear()
                    raise
                fresh = False
                with lock:
                    found.update(result)

    _run_in_threads(work, min(workers, len(groups)))
    return found


def _codec_threading(workers: int, num_groups: int) -> tuple[bool, int]:
    """`(frame_threads, codec_threads)` of each decoder when `num_groups` groups share `workers` threads."""
    frame_threads = num_groups == 1 and workers > 1
    codec_threads = workers if frame_threads else min(workers, max(2, -(-workers // num_groups)))
    return frame_threads, codec_threads


def _run_in_threads(work: Callable[[], None], num_threads: int) -> None:
    """Run `work` in `num_threads` threads (in this one when it is 1) and re-raise the first error."""
    if num_threads == 1:
        work()
    else:
        with ThreadPoolExecutor(max_workers=num_threads) as pool:
            for future in [pool.submit(work) for _ in range(num_threads)]:
                future.result()


def _group_cost(index: _PacketIndex, seek_pts: int, wanted: list[int]) -> int:
    """Pictures from a group's key frame to its last wanted frame: a proxy for its decoding time."""
    start, stop = np.searchsorted(index.frame_pts, [seek_pts, wanted[-1]], side="left")
    return int(stop - start + 1)


def _decode_sequential(
    path: str, stream_index: int, indices: np.ndarray, apply_rotation: bool = True
) -> tuple[dict[int, np.ndarray], int]:
    """Fallback for streams without time stamps or with an inexact index: count frames from the start."""

    wanted = set(int(i) for i in indices)
    last = int(indices.max())
    found: dict[int, np.ndarray] = {}
    count = 0
    with av.open(_as_file_url(path)) as container:
        stream = container.streams[stream_index]
        stream.thread_type = "AUTO"
        for position, frame in enumerate(container.decode(stream)):
            count = position + 1
            if position in wanted:
                found[position] = _frame_to_rgb(frame, apply_rotation)
            if position >= last:
                break
    return found, count


def _open_pyav(path: str):

    try:
        container = av.open(_as_file_url(path))
    except av.error.FileNotFoundError as error:
        raise FileNotFoundError(f"Video file not found: {path}") from error
    except (av.error.InvalidDataError, av.error.FFmpegError, UnicodeDecodeError) as error:
        raise ValueError(f"Could not open {path} as a video ({error}).") from error
    if not container.streams.video:
        container.close()
        raise ValueError(f"{path} contains no video stream.")
    return container


def _stream_fps(stream) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and float(rate) > 0:
            return float(rate)
    return None


def _warn_if_truncated(path: str, declared: int, index: _PacketIndex) -> None:
    """A header that declares more frames than the file holds means a cut file (an interrupted download or copy):
    sampling then spreads over the frames that are there, and the user is told."""
    present = len(index.frame_pts)
    if declared and declared > present:
        logger.warning(
            f"{path}: the header declares {declared} frames but the file holds {present}"
            + (f" (and {index.num_corrupt} cut-off packet(s))" if index.num_corrupt else "")
            + "; it looks truncated (an interrupted download or copy?). Frames are sampled from the "
            f"{present} present ones; re-download or repair the file to use the whole video."
        )


@dataclass
class _PyAVStream:
    """What `_load_with_pyav` reads from a file before decoding: the video stream's header and packet index."""

    stream_index: int
    declared_num_frames: int
    fps: float | None
    time_base: float | None
    index: _PacketIndex | None  # None: packets without time stamps


def _probe_pyav_stream(container) -> _PyAVStream:
    """Read the first video stream's header and index its packets."""
    stream = container.streams.video[0]
    try:
        index = _read_packet_index(container, stream)
    except _NoTimestamps:
        index = None
    return _PyAVStream(
        stream_index=stream.index,
        declared_num_frames=int(stream.frames or 0),
        fps=_stream_fps(stream),
        time_base=float(stream.time_base) if stream.time_base else None,
        index=index,
    )


def _pyav_total_num_frames(path: str, probe: _PyAVStream) -> int:
    """Frames present (the packet index), or the header's count for a stream without time stamps."""
    if probe.index is None:
        if not probe.declared_num_frames:
            raise ValueError(f"Cannot count the frames of {path} (no time stamps and no frame count in the header).")
        return probe.declared_num_frames
    if len(probe.index.frame_pts) == 0:
        raise ValueError(f"The video stream of {path} contains no frames.")
    _warn_if_truncated(path, probe.declared_num_frames, probe.index)
    return len(probe.index.frame_pts)


def _decode_by_timestamps(
    path: str, probe: _PyAVStream, indices: np.ndarray, workers: int, apply_rotation: bool
) -> tuple[np.ndarray, list[float] | None]:
    """Frames and time stamps of `indices`, seeking to the key frames the packet index names."""
    index = probe.index
    wanted = sorted({int(index.frame_pts[i]) for i in indices})
    by_pts = _decode_groups(path, probe.stream_index, _plan_groups(index, wanted), index, workers, apply_rotation)
    missing = [pts for pts in wanted if pts not in by_pts]
    if missing:
        raise ValueError(
            f"Could not decode frame(s) {[int(np.searchsorted(index.frame_pts, p)) for p in missing]} of {path}; "
            "the file looks truncated or corrupt."
        )
    frames = np.stack([by_pts[int(index.frame_pts[i])] for i in indices])
    timestamps = [float(index.frame_pts[i]) * probe.time_base for i in indices] if probe.time_base else None
    return frames, timestamps


def _decode_by_counting(
    path: str, probe: _PyAVStream, indices: np.ndarray, apply_rotation: bool
) -> tuple[np.ndarray, list[float] | None]:
    """Frames and time stamps of `indices`, counting decoded frames from the start (see `_decode_sequential`)."""
    by_position, count = _decode_sequential(path, probe.stream_index, indices, apply_rotation)
    missing = [int(i) for i in indices if int(i) not in by_position]
    if missing:
        raise ValueError(
            f"Could not decode frame(s) {missing} of {path} (decoded {count} frames); the file looks truncated "
            "or corrupt."
        ) from None
    frames = np.stack([by_position[int(i)] for i in indices])
    timestamps = [float(i) / probe.fps for i in indices] if probe.fps else None
    return frames, timestamps


def _load_with_pyav(
    path: str, sample_indices: Callable[[VideoMetadata], np.ndarray], num_threads: int, apply_rotation: bool = True
):

    container = _open_pyav(path)
    try:
        probe = _probe_pyav_stream(container)
    except av.error.FFmpegError as error:
        raise ValueError(f"Could not read the packets of {path}; the file looks corrupt ({error}).") from error
    finally:
        container.close()
    total_num_frames = _pyav_total_num_frames(path, probe)
    video_fps = probe.fps
    indices = _checked_indices(sample_indices, total_num_frames, video_fps)
    workers = max(1, num_threads if num_threads and num_threads > 0 else (os.cpu_count() or 1))
    try:
        if probe.index is None:
            raise _SeekMissed()
        frames, timestamps = _decode_by_timestamps(path, probe, indices, workers, apply_rotation)
    except _SeekMissed:  # no time stamps, or a seek landed late: count frames from the start
        frames, timestamps = _decode_by_counting(path, probe, indices, apply_rotation)
    except av.error.FFmpegError as error:
        raise ValueError(f"Could not decode {path}; the file looks corrupt ({error}).") from error
    metadata = VideoChatVideoMetadata(
        total_num_frames=int(total_num_frames),
        fps=video_fps,
        width=int(frames.shape[2]),  # as displayed (after rotation)
        height=int(frames.shape[1]),
        duration=(total_num_frames / video_fps) if video_fps else None,
        video_backend="pyav",
        frames_indices=[int(i) for i in indices],
        frame_timestamps=timestamps,
    )
    return frames, metadata


def _display_rotation(path: str) -> int:
    """Counter-clockwise quarter turns of a file's display matrix (read from its first frame with PyAV)."""

    try:
        with av.open(_as_file_url(path)) as container:
            frame = next(container.decode(video=0), None)
    except (av.error.FFmpegError, StopIteration):
        return 0
    return int(round(frame.rotation / 90)) % 4 if frame is not None and frame.rotation else 0


def _load_with_decord(
    path: str, sample_indices: Callable[[VideoMetadata], np.ndarray], num_threads: int, apply_rotation: bool = True
):
    try:
        import decord
    except ImportError as error:
        raise ImportError("backend='decord' needs the `decord` package: pip install decord") from error
    try:
        reader = decord.VideoReader(_as_file_url(path), ctx=decord.cpu(0), num_threads=max(0, num_threads or 0))
    except (decord.DECORDError, RuntimeError) as error:
        raise ValueError(f"Could not open {path} as a video with decord ({error}).") from error
    total_num_frames = len(reader)
    if total_num_frames == 0:
        raise ValueError(f"The video stream of {path} contains no frames.")
    video_fps = float(reader.get_avg_fps()) or None
    indices = _checked_indices(sample_indices, total_num_frames, video_fps)
    try:
        frames = reader.get_batch(indices.tolist()).asnumpy()
        timestamps = [float(reader.get_frame_timestamp(int(i))[0]) for i in indices]
    except (decord.DECORDError, RuntimeError) as error:
        if _display_rotation(path):
            raise ValueError(
                f"decord cannot decode {path}: videos with rotation metadata break decord 0.6; use the default "
                "PyAV backend (video_backend='pyav')."
            ) from None
        raise ValueError(f"Could not decode {path} with decord; the file looks corrupt ({error}).") from error
    turns = _display_rotation(path) if apply_rotation else 0
    if turns:
        frames = np.ascontiguousarray(np.rot90(frames, turns, axes=(1, 2)))
    metadata = VideoChatVideoMetadata(
        total_num_frames=int(total_num_frames),
        fps=video_fps,
        width=int(frames.shape[2]),
        height=int(frames.shape[1]),
        duration=(total_num_frames / video_fps) if video_fps else None,
        video_backend="decord",
        frames_indices=[int(i) for i in indices],
        frame_timestamps=timestamps,
    )
    return frames, metadata


def _checked_indices(sample_indices, total_num_frames: int, video_fps: float | None) -> np.ndarray:
    indices = np.asarray(
        sample_indices(VideoMetadata(total_num_frames=total_num_frames, fps=video_fps)), dtype=np.int64
    )
    if indices.ndim != 1 or indices.size == 0 or indices.min() < 0 or indices.max() >= total_num_frames:
        raise ValueError(f"Frame indices {indices.tolist()} are out of range for {total_num_frames} frames.")
    return indices


def load_video(
    video,
    num_frames: int | None = 8,
    sampling: str = "segments",
    fps: float | None = None,
    bound: Sequence[float] | None = None,
    frames_indices: Sequence[int] | None = None,
    backend: str = "pyav",
    num_threads: int = 0,
    video_fps: float | None = None,
    sample_indices_fn: Callable[..., np.ndarray] | None = None,
    apply_rotation: bool = True,
) -> tuple[np.ndarray, VideoChatVideoMetadata]:
    """
    Decode the sampled frames of a video (see the module docstring for what paths and URLs mean).

    Args:
        video (`str`, `os.PathLike`, array, tensor or list of frames):
            A local video file (always opened as a file), an `http(s)://` URL (downloaded first), or frames already
            in memory (then only sampling and RGB conversion happen).
        num_frames (`int`, *optional*, defaults to 8):
            Number of frames (segments) to sample; with `sampling="fps"` an upper bound.
        sampling (`str`, *optional*, defaults to `"segments"`):
            One of `SAMPLING_STRATEGIES`, see `sample_frame_indices`.
        fps (`float`, *optional*):
            Target sampling rate for `sampling="fps"`. Passing `fps` with the default sampling selects `"fps"`.
        bound (`tuple[float, float]`, *optional*):
            `(start_s, end_s)` window for `sampling="mvbench"`.
        frames_indices (`list[int]`, *optional*):
            Explicit frame indices; overrides sampling.
        backend (`str`, *optional*, defaults to `"pyav"`):
            `"pyav"` or `"decord"` (imported lazily). Both return identical frames.
        num_threads (`int`, *optional*, defaults to 0):
            Decoding threads; 0 uses every CPU core.
        video_fps (`float`, *optional*):
            Frame rate of an in-memory video (needed for `"mvbench"` bounds, `"fps"` sampling and time stamps).
        sample_indices_fn (`Callable`, *optional*):
            `fn(metadata) -> indices`, called with the stream's `VideoMetadata` (`total_num_frames`, `fps`); replaces
            the sampling arguments above.
        apply_rotation (`bool`, *optional*, defaults to `True`):
            Turn frames of files with rotation metadata (phone videos) upright, as players show them. `False` keeps
            the stored orientation (what the original decord-based code saw).

    Returns:
        `tuple[np.ndarray, VideoChatVideoMetadata]`: uint8 RGB frames `(T, H, W, 3)` and their metadata.
    """
    if backend not in VIDEO_BACKENDS:
        raise ValueError(f"Unknown video backend {backend!r}; choose one of {VIDEO_BACKENDS}.")
    if sample_indices_fn is None:
        check_sampling_arguments(num_frames, fps, sampling, bound, frames_indices)
        sample_indices_fn = _default_sampler(num_frames, sampling, fps, bound, frames_indices)
    if isinstance(video, (str, os.PathLike)):
        return _load_path_or_url(video, backend, sample_indices_fn, num_threads, apply_rotation)
    frames = to_rgb_frames(video)
    indices = _checked_indices(sample_indices_fn, len(frames), video_fps)
    return frames[indices], _memory_metadata(frames, indices, video_fps)


def _load_path_or_url(video, backend: str, sample_indices_fn, num_threads: int, apply_rotation: bool):
    """Decode a local file, or an `http(s)://` URL downloaded to a temporary file (removed afterwards)."""
    video = local_path(video, "video")
    if is_url(video):
        temporary = download_to_temporary_file(video)
        try:
            return _load_file(temporary, backend, sample_indices_fn, num_threads, apply_rotation)
        finally:
            os.unlink(temporary)
    return _load_file(video, backend, sample_indices_fn, num_threads, apply_rotation)


def _load_file(path, backend: str, sample_indices_fn, num_threads: int, apply_rotation: bool):
    path = _check_video_path(path)
    if backend == "decord":
        return _load_with_decord(path, sample_indices_fn, num_threads, apply_rotation)
    return _load_with_pyav(path, sample_indices_fn, num_threads, apply_rotation)


def _default_sampler(num_frames, sampling, fps, bound, frames_indices) -> Callable[[VideoMetadata], np.ndarray]:
    if frames_indices is not None:
        indices = np.asarray(frames_indices, dtype=np.int64)
        if indices.ndim != 1 or indices.size == 0:
            raise ValueError("`frames_indices` must be a non-empty list of integers.")
        return lambda metadata: indices
    if fps is not None and sampling == "segments":
        sampling, num_frames = "fps", (None if num_frames == 8 else num_frames)
    return partial(sample_indices_fn, num_frames=num_frames, fps=fps, sampling=sampling, bound=bound)


def _memory_metadata(frames: np.ndarray, indices, video_fps: float | None) -> VideoChatVideoMetadata:
    """Metadata of frames sampled from an in-memory video."""
    return VideoChatVideoMetadata(
        total_num_frames=len(frames),
        fps=video_fps,
        width=int(frames.shape[2]),
        height=int(frames.shape[1]),
        duration=(len(frames) / video_fps) if video_fps else None,
        video_backend=None,
        frames_indices=[int(i) for i in indices],
        frame_timestamps=[float(i) / video_fps for i in indices] if video_fps else None,
    )


def load_video_frames(
    video,
    metadata=None,
    do_sample_frames: bool | None = None,
    num_frames: int | None = None,
    fps: float | None = None,
    sampling: str | None = None,
    bound: Sequence[float] | None = None,
    video_backend: str | None = None,
    default_num_frames: int = 8,
    apply_rotation: bool | None = None,
) -> tuple[np.ndarray, VideoChatVideoMetadata]:
    """
    The frames a processor works on: a video file is always decoded and sampled (`num_frames`, default
    `default_num_frames`; `fps`; `sampling`; `bound`); in-memory frames are sampled only when asked
    (`do_sample_frames=True`, or `num_frames` / `fps` / `bound` given) and otherwise used as they are. `metadata`
    (a dict or `VideoMetadata`) gives an in-memory video's `fps` and `frames_indices`. `apply_rotation` (default
    `True`) turns files with rotation metadata upright.
    """
    check_sampling_arguments(num_frames, fps, sampling, bound)
    for name, value in (("do_sample_frames", do_sample_frames), ("apply_rotation", apply_rotation)):
        if value is not None and not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"`{name}` must be True or False, got {value!r}.")
    is_file = isinstance(video, (str, os.PathLike))
    video_fps = _metadata_value(metadata, "fps")
    if is_file:
        video = local_path(video, "video")
        if do_sample_frames is False:
            raise ValueError(
                "Video files are always sampled; `do_sample_frames=False` only applies to decoded frames."
            )
    elif getattr(video, "ndim", 4) != 4:
        raise ValueError(f"A video array must have 4 dimensions (T, H, W, 3), got shape {tuple(video.shape)}.")
    sample = (
        do_sample_frames
        if do_sample_frames is not None
        else (is_file or num_frames is not None or fps is not None or bound is not None)
    )
    if not sample:
        frames = to_rgb_frames(video)
        if isinstance(metadata, VideoChatVideoMetadata) and len(metadata.frames_indices or []) == len(frames):
            return frames, metadata  # frames sampled earlier (e.g. by apply_chat_template)
        indices = _metadata_value(metadata, "frames_indices") or list(range(len(frames)))
        return frames, _memory_metadata(frames, indices, video_fps)
    if num_frames is None and fps is None:
        num_frames = default_num_frames  # with `fps` alone, sample at that rate without a cap
    if sampling is None:
        sampling = "mvbench" if bound is not None else ("fps" if fps is not None else "segments")
    return load_video(
        video,
        num_frames=num_frames,
        sampling=sampling,
        fps=fps,
        bound=bound,
        backend=video_backend or "pyav",
        video_fps=None if is_file else video_fps,
        apply_rotation=True if apply_rotation is None else bool(apply_rotation),
    )


def is_array(value) -> bool:
    return isinstance(value, (np.ndarray, torch.Tensor))


def is_single_frame(value) -> bool:
    """A PIL image or an `(H, W[, C])` array / tensor."""
    return isinstance(value, Image.Image) or (is_array(value) and value.ndim in (2, 3))


def is_single_video(value) -> bool:
    """A file path, a `(T, H, W[, C])` array / tensor or a non-empty list of frames."""
    if isinstance(value, (str, os.PathLike)):
        return True
    if is_array(value):
        return value.ndim == 4
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(is_single_frame(frame) for frame in value)


def flat_videos(videos) -> list:
    """A flat list of videos from one video, a 5-D batch array or nested (per-prompt) lists."""
    if videos is None:
        return []
    if is_single_video(videos):
        return [videos]
    if is_array(videos):
        if videos.ndim == 5:
            return list(videos)
        raise ValueError(
            f"A video array must have 4 dimensions (T, H, W, 3) (or 5 for a batch), got shape {tuple(videos.shape)}."
        )
    if isinstance(videos, (list, tuple)):
        return [video for item in videos if item is not None for video in flat_videos(item)]
    raise ValueError(
        f"Unsupported video input of type {type(videos).__name__}; pass a file path, a (T, H, W, 3) array or tensor, "
        "a list of frames, or a list of those."
    )


def per_video(value, count: int, name: str) -> list:
    """`value` spread over `count` videos: `None` for each, the entries of a list of `count`, or one value for one."""
    if value is None:
        return [None] * count
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise ValueError(f"`{name}` has {len(value)} entries for {count} videos.")
        return list(value)
    if count != 1:
        raise ValueError(f"Pass one `{name}` entry per video ({count} videos).")
    return [value]


def local_path(path, kind: str = "video") -> str:
    """A local file path from `path` or a `file://` URL; `http(s)://` URLs are returned as they are (downloaded by
    the loaders); other URL schemes are refused."""
    path = os.fspath(path)
    if path.startswith("file://"):
        path = path[len("file://") :]
    elif is_url(path):
        return path
    elif re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", path):
        raise ValueError(
            f"Only local {kind} files and http(s):// URLs are supported, got the URL {path!r}; download it first."
        )
    return path


def _metadata_value(metadata, key: str):
    if metadata is None:
        return None
    if isinstance(metadata, dict):
        return metadata.get(key)
    return getattr(metadata, key, None)


__all__ = [
    "FRAME_SAMPLING_KEYS",
    "SAMPLING_STRATEGIES",
    "VIDEO_BACKENDS",
    "check_sampling_arguments",
    "download_to_temporary_file",
    "is_url",
    "VideoChatVideoMetadata",
    "format_time_message",
    "get_bounded_segment_indices",
    "get_fps_indices",
    "get_segment_indices",
    "get_uniform_indices",
    "load_video",
    "flat_videos",
    "load_video_frames",
    "local_path",
    "per_video",
    "sample_frame_indices",
    "sample_indices_fn",
    "to_rgb_frames",
]

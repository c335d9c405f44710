# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Frame sampling of the InternVideo2 foundation models and PyAV decoding of the sampled frames.

Three index rules, each written out from the original code:

* `"stride"`: the stage-2 demo (`demo/utils.py frames2tensor`): `step = total // T`, frames `0, step, 2 step, ...`
  (from the FIRST frame, not segment middles); the demo asserts `total >= T`.
* `"middle"`: the stage-2 retrieval evaluation (`dataset/video_utils.py get_frame_indices(sample="middle")`):
  `T` equal intervals `linspace(0, total, T + 1).astype(int)`, index `(start + end - 1) // 2` per interval, the last
  index repeated when the video has fewer than `T` frames.
* `"kinetics"`: the stage-1 classifiers' Kinetics/MiT evaluation (`datasets/kinetics_sparse.py _get_seq_frames`,
  deterministic branch): `seg = (total - 1) / T`, `index_i = min(round(seg * i) + int(seg / (clips + 1) * (c + 1)),
  total - 1)` for temporal clip `c` of `clips` (1 clip: the validation rule; 4 clips: the test protocol).

Decoding reuses the chat models' PyAV decoder (packet index, seeks, only the sampled frames are converted to RGB):
frame `i` is the `i`-th frame in presentation order, as cv2's and decord's readers number them.
"""

from __future__ import annotations

import numpy as np

from .video_utils_videochat import load_video


FRAME_SAMPLINGS = ("stride", "middle", "kinetics")


def _check_counts(total_num_frames: int, num_frames: int) -> None:
    if total_num_frames is None or int(total_num_frames) < 1:
        raise ValueError(f"the video has no frames to sample from (total_num_frames={total_num_frames})")
    if num_frames is None or int(num_frames) < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames}")


def stride_indices(total_num_frames: int, num_frames: int) -> np.ndarray:
    """The stage-2 demo's rule: `list(range(total))[::total // num_frames][:num_frames]`."""
    _check_counts(total_num_frames, num_frames)
    if total_num_frames < num_frames:
        raise ValueError(
            f"the video has {total_num_frames} frames but {num_frames} are needed (the original demo requires at "
            "least "
            "as many frames as it samples)"
        )
    step = total_num_frames // num_frames
    return np.arange(0, total_num_frames, step, dtype=np.int64)[:num_frames]


def middle_indices(total_num_frames: int, num_frames: int) -> np.ndarray:
    """The stage-2 retrieval evaluation's `sample="middle"` rule (see the module docstring)."""
    _check_counts(total_num_frames, num_frames)
    used = min(num_frames, total_num_frames)
    bounds = np.linspace(start=0, stop=total_num_frames, num=used + 1).astype(int)
    indices = [(int(start) + int(end) - 1) // 2 for start, end in zip(bounds[:-1], bounds[1:])]
    indices += [indices[-1]] * (num_frames - used)
    return np.asarray(indices, dtype=np.int64)


def kinetics_indices(total_num_frames: int, num_frames: int, clip_index: int = 0, num_clips: int = 1) -> np.ndarray:
    """The stage-1 evaluation rule for temporal clip `clip_index` of `num_clips` (see the module docstring)."""
    _check_counts(total_num_frames, num_frames)
    if not 0 <= clip_index < num_clips:
        raise ValueError(f"clip_index must be in [0, {num_clips}), got {clip_index}")
    segment = max(0.0, float(total_num_frames - 1) / num_frames)
    offset = int(segment / (num_clips + 1) * (clip_index + 1))
    last = int(total_num_frames) - 1
    return np.asarray([min(int(np.round(segment * i)) + offset, last) for i in range(num_frames)], dtype=np.int64)


def sample_frame_indices(
    total_num_frames: int, num_frames: int, sampling: str = "stride", num_clips: int = 1
) -> np.ndarray:
    """Indices `(num_clips * num_frames,)` of every temporal clip, clip-major (`num_clips > 1` only for
    `"kinetics"`)."""
    if sampling not in FRAME_SAMPLINGS:
        raise ValueError(f"unknown frame sampling {sampling!r}; choose one of {FRAME_SAMPLINGS}")
    if num_clips != 1 and sampling != "kinetics":
        raise ValueError(f"several temporal clips (num_clips={num_clips}) exist only for sampling='kinetics'")
    if sampling == "stride":
        return stride_indices(total_num_frames, num_frames)
    if sampling == "middle":
        return middle_indices(total_num_frames, num_frames)
    return np.concatenate(
        [kinetics_indices(total_num_frames, num_frames, clip, num_clips) for clip in range(num_clips)]
    )


def load_video_frames(
    path, num_frames: int, sampling: str = "stride", num_clips: int = 1, num_threads: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """
    Decode the sampled frames of a video file with PyAV.

    Returns uint8 RGB frames `(num_clips * num_frames, H, W, 3)` (clip-major) and their indices. A missing file
    raises `FileNotFoundError`; a file that cannot be decoded raises `ValueError` naming it.
    """
    frames, metadata = load_video(
        path,
        num_threads=num_threads,
        sample_indices_fn=lambda metadata: sample_frame_indices(
            metadata.total_num_frames, num_frames, sampling, num_clips
        ),
    )
    return frames, np.asarray(metadata.frames_indices, dtype=np.int64)


__all__ = [
    "FRAME_SAMPLINGS",
    "kinetics_indices",
    "load_video_frames",
    "middle_indices",
    "sample_frame_indices",
    "stride_indices",
]

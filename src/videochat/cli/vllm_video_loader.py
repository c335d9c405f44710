# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""
A vLLM video loader that decodes and samples frames as the original models do (PyAV, the middle-of-segment
"segments" rule, the checkpoint's `num_frames`), instead of vLLM's default OpenCV loader, which takes 32 evenly spaced
frames.

vLLM picks a loader by the `video_processor_type` of a checkpoint's `video_preprocessor_config.json`: `videochat
convert` writes `"VideoChatVideoProcessor"`, which this loader is registered for. The frame count is the served
checkpoint's (published by `VideoChatMultiModalProcessor` when vLLM builds it); per request,
`media_io_kwargs={"video": {"videochat_num_frames": N, "videochat_sampling": "uniform"}}` override count and rule.
vLLM's own `num_frames` (32 unless `--media-io-kwargs` sets it) is ignored: it cannot be told apart from its default.
"""

import os
import tempfile

import numpy as np

from ..processing_videochat import VIDEO_PROCESSOR_TYPE
from ..video_utils_videochat import load_video


LOADER_NAME = "videochat"
DEFAULT_SAMPLING = "segments"
_defaults = {"num_frames": 8}


def set_default_num_frames(num_frames: int) -> None:
    """The frame count of the served checkpoint (its image processor's `num_frames`)."""
    _defaults["num_frames"] = int(num_frames)


def load_video_bytes(data: bytes, num_frames: int | None = None, sampling: str | None = None) -> tuple:
    """`(frames (T, H, W, 3) uint8, metadata)` of an encoded video given as bytes, sampled as the originals do."""
    handle, path = tempfile.mkstemp(suffix=".video")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        frames, metadata = load_video(
            path, num_frames=num_frames or _defaults["num_frames"], sampling=sampling or DEFAULT_SAMPLING
        )
    finally:
        os.unlink(path)
    return np.ascontiguousarray(frames), {
        "total_num_frames": metadata.total_num_frames,
        "fps": metadata.fps,
        "duration": metadata.duration,
        "video_backend": LOADER_NAME,
        "frames_indices": [int(index) for index in metadata.frames_indices],
        "do_sample_frames": False,  # already sampled: the processor uses the frames as they are
    }


def register_video_loader() -> None:
    """Register the loader with vLLM (idempotent)."""
    from vllm.multimodal.video import VIDEO_LOADER_REGISTRY, VideoLoader  # optional dependency

    if LOADER_NAME in VIDEO_LOADER_REGISTRY.name2class:
        return

    @VIDEO_LOADER_REGISTRY.register(LOADER_NAME, video_processor=VIDEO_PROCESSOR_TYPE)
    class VideoChatVideoLoader(VideoLoader):
        @classmethod
        def load_bytes(cls, data: bytes, num_frames: int = -1, fps: int = -1, **kwargs):
            return load_video_bytes(data, kwargs.get("videochat_num_frames"), kwargs.get("videochat_sampling"))


__all__ = ["LOADER_NAME", "load_video_bytes", "register_video_loader", "set_default_num_frames"]

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""
Video preprocessing of the InternVideo2 foundation models (PIL backend, no torchvision, no cv2).

Three original pipelines, operation for operation (`resize_mode`):

* `"squash_bilinear"`, the stage-2 demo (`demo/utils.py frames2tensor`): `cv2.resize(frame, (S, S))` with the default
  `INTER_LINEAR` on uint8 (aspect ratio ignored, no crop, no antialiasing, OpenCV's fixed-point arithmetic, written
  out in `cv2_linear_resize`), then `(x / 255.0 - mean) / std` in float64, then float32.
* `"shortest_edge_bilinear"`, the stage-1 classifiers' evaluation (`datasets/kinetics_sparse.py`): the same cv2
  bilinear resize of the short side to `size["shortest_edge"]` (long side `int(224 * long / short)`, frames already
  that size are kept), then a centre crop (`CenterCrop`, `round()` offsets) or, with `num_spatial_crops=3`, the test
  protocol's three crops along the long side (`int(k * (long - 224) / 2)`), then `/255` and the ImageNet
  normalisation in float32.
* `"squash_bicubic"`, the stage-2 retrieval evaluation (`dataset/__init__.py get_test_transform`): torchvision
  0.14's tensor `Resize((S, S), BICUBIC)` on uint8 (float32 `F.interpolate` without antialiasing, clamp, round),
  `/255`, float32 normalisation. Read from the source, not run against the original (its pipeline is not in the
  fixtures).

Outputs are `pixel_values` `(num_videos * num_views, frames, 3, S, S)` float32, views (temporal clips x spatial
crops) video-major; `merge_view_logits` averages the views' softmax as the original evaluation does.
"""

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_utils import BatchFeature
from transformers.processing_utils import ImagesKwargs

from .video_utils_internvideo2 import FRAME_SAMPLINGS, load_video_frames, sample_frame_indices
from .video_utils_videochat import to_rgb_frames


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_MODES = ("squash_bilinear", "shortest_edge_bilinear", "squash_bicubic")
RESIZE_COEF_BITS = 11  # OpenCV's INTER_RESIZE_COEF_BITS: weights are multiples of 1/2048
SETTING_NAMES = (
    "num_frames",
    "frame_sampling",
    "num_temporal_clips",
    "num_spatial_crops",
    "resize_mode",
    "normalize_in_float64",
    "image_mean",
    "image_std",
    "size",
    "crop_size",
)


# ---------------------------------------------------------------------------------------------------------------------
# OpenCV INTER_LINEAR on uint8, re-stated (shared/specs/internvideo2_encoders.md section 7.1)
# ---------------------------------------------------------------------------------------------------------------------


def _linear_taps(source_size: int, target_size: int, clamp_edges: bool) -> tuple[np.ndarray, ...]:
    """Source indices and fixed-point weights of one axis, computed as OpenCV does: float32 source coordinate
    `(d + 0.5) * scale - 0.5` with `scale = 1 / (target / source)` in double, floor, fraction; weights
    `round(2048 * (1 - f))`, `round(2048 * f)` (half to even). Only the x axis clamps the coordinate at the borders
    (`clamp_edges`); on the y axis only the row indices are clipped."""
    scale = 1.0 / (float(target_size) / float(source_size))
    coordinate = ((np.arange(target_size, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    start = np.floor(coordinate).astype(np.int64)
    fraction = (coordinate - start.astype(np.float32)).astype(np.float32)
    if clamp_edges:
        below, above = start < 0, start >= source_size - 1
        fraction[below | above] = 0.0
        start[below] = 0
        start[above] = source_size - 1
    one = np.float32(1 << RESIZE_COEF_BITS)
    weight0 = np.rint((np.float32(1.0) - fraction) * one).astype(np.int64)
    weight1 = np.rint(fraction * one).astype(np.int64)
    index0 = np.clip(start, 0, source_size - 1)
    index1 = np.clip(start + 1, 0, source_size - 1)
    return index0, index1, weight0, weight1


def cv2_linear_resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """
    `cv2.resize(image, (width, height))` (default `INTER_LINEAR`) for uint8 `(H, W[, C])` images, bit-exact: the
    horizontal pass `h = p[x0] * a0 + p[x1] * a1` in integers, then OpenCV's SIMD vertical rounding
    `((((h0 >> 4) * b0) >> 16) + (((h1 >> 4) * b1) >> 16) + 2) >> 2`, clipped to [0, 255].
    """
    if image.dtype != np.uint8:
        raise ValueError(f"cv2_linear_resize works on uint8 images, got {image.dtype}")
    if width < 1 or height < 1:
        raise ValueError(f"target size must be positive, got {width}x{height}")
    x0, x1, a0, a1 = _linear_taps(image.shape[1], width, clamp_edges=True)
    y0, y1, b0, b1 = _linear_taps(image.shape[0], height, clamp_edges=False)
    pixels = image.astype(np.int64)
    expand = (slice(None),) + (None,) * (image.ndim - 2)
    horizontal = pixels[:, x0] * a0[expand] + pixels[:, x1] * a1[expand]
    top = ((horizontal[y0] >> 4) * b0[(slice(None), None) + expand[1:]]) >> 16
    bottom = ((horizontal[y1] >> 4) * b1[(slice(None), None) + expand[1:]]) >> 16
    return np.clip((top + bottom + 2) >> 2, 0, 255).astype(np.uint8)


def torchvision_bicubic_resize(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """torchvision 0.14 `Resize((height, width), BICUBIC)` on uint8 tensors: float32 bicubic `F.interpolate`
    (`align_corners=False`, no antialiasing), clamp to [0, 255], round, uint8. `frames` `(T, H, W, 3)`."""
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    resized = F.interpolate(tensor, size=(height, width), mode="bicubic", align_corners=False, antialias=False)
    return resized.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


# ---------------------------------------------------------------------------------------------------------------------
# Geometry and normalisation
# ---------------------------------------------------------------------------------------------------------------------


def shortest_edge_size(height: int, width: int, size: int) -> tuple[int, int]:
    """`(height, width)` after the stage-1 `Resize(short_side)`: short side `size`, long side `int(size * long /
    short)` (`get_resize_sizes`)."""
    if width < height:
        return int(size * height / width), size
    return size, int(size * width / height)


def resize_shortest_edge(frames: np.ndarray, size: int) -> np.ndarray:
    """`resize_clip(clip, size, "bilinear")`: frames whose short side already equals `size` are returned as they
    are."""
    height, width = frames.shape[1:3]
    if (width <= height and width == size) or (height <= width and height == size):
        return frames
    new_height, new_width = shortest_edge_size(height, width, size)
    return np.stack([cv2_linear_resize(frame, new_width, new_height) for frame in frames])


def spatial_crop_offsets(height: int, width: int, crop: int, num_crops: int) -> list[tuple[int, int]]:
    """Top-left `(y, x)` of each crop: one `CenterCrop` (`int(round((side - crop) / 2.))`, Python rounding) or the
    stage-1 test protocol's three crops along the long side (`int(k * (long - crop) / 2)`, the short side kept)."""
    if crop > height or crop > width:
        raise ValueError(f"cannot crop {crop}x{crop} from frames of {height}x{width}")
    if num_crops == 1:
        return [(int(round((height - crop) / 2.0)), int(round((width - crop) / 2.0)))]
    if num_crops != 3:
        raise ValueError(f"num_spatial_crops must be 1 or 3, got {num_crops}")
    step = 1.0 * (max(height, width) - crop) / (num_crops - 1)
    starts = [int(index * step) for index in range(num_crops)]
    return [(start, 0) for start in starts] if height >= width else [(0, start) for start in starts]


def normalize_frames(
    frames: np.ndarray, mean: Sequence[float], std: Sequence[float], in_float64: bool
) -> torch.Tensor:
    """uint8 `(T, H, W, 3)` -> float32 `(T, 3, H, W)`: `(x / 255 - mean) / std`, in float64 then cast (the stage-2
    demo) or in float32 (`ClipToTensor` + `Normalize`, torchvision `Normalize`)."""
    if in_float64:
        mean64, std64 = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
        normalized = (frames / 255.0 - mean64) / std64
        return torch.from_numpy(np.ascontiguousarray(normalized.transpose(0, 3, 1, 2))).float()
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255
    mean32 = torch.as_tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    std32 = torch.as_tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return (tensor - mean32) / std32


# ---------------------------------------------------------------------------------------------------------------------
# Image processor
# ---------------------------------------------------------------------------------------------------------------------


class InternVideo2ImageProcessorKwargs(ImagesKwargs, total=False):
    """
    num_frames (`int`): frames per clip sampled from a video file.
    frame_sampling (`str`): `"stride"` (stage-2 demo), `"middle"` (stage-2 retrieval evaluation) or `"kinetics"`
        (stage-1 evaluation), see `video_utils_internvideo2`.
    num_temporal_clips (`int`): temporal clips per video (`"kinetics"` only; 4 in the stage-1 test protocol).
    num_spatial_crops (`int`): 1 (centre crop) or 3 (the stage-1 test protocol's crops); `"shortest_edge_bilinear"`.
    resize_mode (`str`): `"squash_bilinear"`, `"shortest_edge_bilinear"` or `"squash_bicubic"`.
    normalize_in_float64 (`bool`): normalise in float64 before the float32 cast (stage-2 demo).
    """

    num_frames: int
    frame_sampling: str
    num_temporal_clips: int
    num_spatial_crops: int
    resize_mode: str
    normalize_in_float64: bool


class InternVideo2ImageProcessor(PilBackend):
    r"""
    Video preprocessing of the InternVideo2 foundation models (see the module docstring for the three original
    pipelines). `__call__(videos)` takes video files (frames are sampled with `frame_sampling`), or videos already
    decoded and sampled (`(T, H, W, 3)` uint8 arrays, lists of frames); `images=` takes single frames (1-frame clips).
    Returns `pixel_values` `(num_videos * num_views, T, 3, S, S)`.

    Defaults: the stage-1 classifiers' single-view evaluation (8 frames, `"kinetics"` sampling, short side 224,
    centre crop, float32 normalisation). `temporal clips = 4, spatial crops = 3` gives the `8x3x4` protocol.
    """

    valid_kwargs = InternVideo2ImageProcessorKwargs
    model_input_names = ["pixel_values"]

    image_mean = IMAGENET_MEAN
    image_std = IMAGENET_STD
    size = {"shortest_edge": 224}
    crop_size = {"height": 224, "width": 224}
    do_resize = True
    do_center_crop = True
    do_rescale = True
    do_normalize = True
    num_frames = 8
    frame_sampling = "kinetics"
    num_temporal_clips = 1
    num_spatial_crops = 1
    resize_mode = "shortest_edge_bilinear"
    normalize_in_float64 = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._check_settings(self._settings({}))

    # --------------------------------------------------------------------------------------------- settings

    def _settings(self, overrides: dict) -> dict:
        """This processor's settings with the call's `overrides`; unknown names are an error, not silently ignored."""
        unknown = sorted(set(overrides) - set(SETTING_NAMES))
        if unknown:
            raise ValueError(f"unknown preprocessing argument(s) {unknown}; valid: {list(SETTING_NAMES)}")
        return {
            name: overrides[name] if overrides.get(name) is not None else getattr(self, name) for name in SETTING_NAMES
        }

    @staticmethod
    def _check_settings(settings: dict) -> None:
        if settings["resize_mode"] not in RESIZE_MODES:
            raise ValueError(f"unknown resize_mode {settings['resize_mode']!r}; choose one of {RESIZE_MODES}")
        if settings["frame_sampling"] not in FRAME_SAMPLINGS:
            raise ValueError(f"unknown frame_sampling {settings['frame_sampling']!r}; choose one of {FRAME_SAMPLINGS}")
        if settings["num_temporal_clips"] != 1 and settings["frame_sampling"] != "kinetics":
            raise ValueError("num_temporal_clips > 1 needs frame_sampling='kinetics' (the stage-1 test protocol)")
        if settings["num_spatial_crops"] not in (1, 3):
            raise ValueError(f"num_spatial_crops must be 1 or 3, got {settings['num_spatial_crops']}")
        if settings["num_spatial_crops"] != 1 and settings["resize_mode"] != "shortest_edge_bilinear":
            raise ValueError("several spatial crops exist only for resize_mode='shortest_edge_bilinear'")

    @property
    def num_views(self) -> int:
        """Clips fed to the model per video: temporal clips x spatial crops."""
        return int(self.num_temporal_clips) * int(self.num_spatial_crops)

    @staticmethod
    def _side(size, key: str) -> int:
        value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
        if value is None:
            raise ValueError(f"size {dict(size) if size is not None else None} has no {key!r}")
        return int(value)

    # --------------------------------------------------------------------------------------------- one clip

    def _spatial_views(self, frames: np.ndarray, settings: dict) -> list[np.ndarray]:
        """Sampled uint8 frames of one temporal clip -> the resized (and cropped) uint8 views."""
        mode = settings["resize_mode"]
        if mode == "shortest_edge_bilinear":
            frames = resize_shortest_edge(frames, self._side(settings["size"], "shortest_edge"))
            crop = self._side(settings["crop_size"], "height")
            offsets = spatial_crop_offsets(frames.shape[1], frames.shape[2], crop, settings["num_spatial_crops"])
            return [frames[:, top : top + crop, left : left + crop] for top, left in offsets]
        height, width = self._side(settings["size"], "height"), self._side(settings["size"], "width")
        if mode == "squash_bicubic":
            return [torchvision_bicubic_resize(frames, height, width)]
        return [np.stack([cv2_linear_resize(frame, width, height) for frame in frames])]

    def preprocess_frames(self, frames, **kwargs) -> torch.Tensor:
        """
        Sampled frames of one video (`num_temporal_clips * T` frames, clip-major; uint8 RGB `(N, H, W, 3)` or
        anything `to_rgb_frames` accepts) -> `(num_views, T, 3, S, S)` float32, temporal clip-major.
        """
        settings = self._settings(dict(kwargs))
        self._check_settings(settings)
        frames = to_rgb_frames(frames)
        clips = settings["num_temporal_clips"]
        if len(frames) % clips:
            raise ValueError(f"{len(frames)} frames cannot be split into {clips} temporal clips")
        views = []
        for clip in np.split(frames, clips):
            for view in self._spatial_views(clip, settings):
                views.append(
                    normalize_frames(
                        view, settings["image_mean"], settings["image_std"], settings["normalize_in_float64"]
                    )
                )
        return torch.stack(views)

    def sample_frame_indices(self, total_num_frames: int, **kwargs) -> np.ndarray:
        """Indices of the frames this processor samples from a video of `total_num_frames` frames."""
        settings = self._settings(dict(kwargs))
        return sample_frame_indices(
            total_num_frames, settings["num_frames"], settings["frame_sampling"], settings["num_temporal_clips"]
        )

    def load_video(self, path, num_threads: int = 0, **kwargs) -> tuple[np.ndarray, np.ndarray]:
        """Decode the frames this processor samples from the video file `path`: `(frames, indices)`."""
        settings = self._settings(dict(kwargs))
        return load_video_frames(
            path, settings["num_frames"], settings["frame_sampling"], settings["num_temporal_clips"], num_threads
        )

    # --------------------------------------------------------------------------------------------- entry point

    def __call__(self, videos=None, images=None, return_tensors="pt", **kwargs) -> BatchFeature:
        """Preprocess `videos` (files, or decoded and sampled frames) or `images` (1-frame clips)."""
        if (videos is None) == (images is None):
            raise ValueError("pass either `videos` or `images`")
        if images is not None:
            images = images if isinstance(images, (list, tuple)) else [images]
            clips = [
                self.preprocess_frames(to_rgb_frames([image]), num_temporal_clips=1, **kwargs) for image in images
            ]
        else:
            clips = [self._preprocess_video(video, kwargs) for video in _as_video_list(videos)]
        lengths = {clip.shape[1] for clip in clips}
        if len(lengths) > 1:
            raise ValueError(f"all videos of a batch must have the same number of frames, got {sorted(lengths)}")
        pixel_values = torch.cat(clips)
        if return_tensors == "np":
            pixel_values = pixel_values.numpy()
        return BatchFeature(data={"pixel_values": pixel_values})

    def _preprocess_video(self, video, kwargs: dict) -> torch.Tensor:
        if isinstance(video, (str, os.PathLike)):
            frames, _ = self.load_video(video, **dict(kwargs))
            return self.preprocess_frames(frames, **kwargs)
        return self.preprocess_frames(video, **kwargs)

    def merge_view_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """`(num_videos * num_views, num_labels)` logits -> `(num_videos, num_labels)` probabilities: the mean over
        each video's views of their softmax (the original evaluation's `merge`)."""
        views = self.num_views
        if logits.shape[0] % views:
            raise ValueError(f"{logits.shape[0]} rows are not a whole number of videos with {views} views each")
        return logits.float().softmax(-1).reshape(-1, views, logits.shape[-1]).mean(1)


def _as_video_list(videos) -> list:
    """One video (a path, a `(T, H, W, C)` array/tensor, a list of `(H, W, C)` frames) or a list of videos."""
    if isinstance(videos, (str, os.PathLike)):
        return [videos]
    if isinstance(videos, (np.ndarray, torch.Tensor)):
        return [videos] if videos.ndim in (3, 4) else list(videos)
    if isinstance(videos, (list, tuple)) and videos:
        first = videos[0]
        if isinstance(first, (np.ndarray, torch.Tensor)) and first.ndim in (2, 3):
            return [videos]  # a list of frames is one video
        if hasattr(first, "size") and hasattr(first, "mode"):  # PIL images
            return [videos]
        return list(videos)
    raise ValueError(f"unsupported videos input {type(videos).__name__}; pass paths, arrays or lists of frames")


__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "InternVideo2ImageProcessor",
    "cv2_linear_resize",
    "normalize_frames",
    "resize_shortest_edge",
    "shortest_edge_size",
    "spatial_crop_offsets",
    "torchvision_bicubic_resize",
]

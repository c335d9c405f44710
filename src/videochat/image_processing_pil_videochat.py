# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""
Image and video-frame preprocessing for InternVideo2-Chat, VideoChat2 (incl. HD) and VideoChat v1.

`VideoChatImageProcessor` runs on transformers' PIL backend (no torchvision). Every resize path reproduces the
ORIGINAL pipeline of the model it serves, operation for operation, so the pixel tensors match the originals:

* `resize_mode="pil"`: per frame, PIL bicubic resize of the shorter side to 224 (long side truncated), centre crop
  with round(), `/255`, per-channel normalisation (VideoChat2 / VideoChat v1 demos, `GroupScale`...).
* `resize_mode="torch_antialias"`: InternVideo2-Chat-8B model card, torchvision's tensor `Resize(224)` with
  `antialias=True` re-stated as `F.interpolate(..., antialias=True)`, centre crop, normalisation.
* `hd_mode="internvideo2_hd"` / `"videochat2_hd"`: `F.interpolate` bicubic (align_corners=False, no antialias, no
  clamp) of the 0..255 frames to a grid of 224x224 tiles, `/255`, normalisation, tiles row-major, then a global
  view resized from the NORMALISED HD frames. VideoChat2-HD tiles inside its model; here it happens up front and
  yields the same clips.

The tensor functions (`hd_resize_no_padding`, `hd_resize_padding`, `tile_hd_frames`, ...) are public so that
fixtures' raw frames or model-side tensors can be turned into clips directly.
"""

import math
import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_utils import BatchFeature, get_size_dict
from transformers.image_utils import PILImageResampling, SizeDict
from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import get_optimal_tiled_canvas
from transformers.processing_utils import ImagesKwargs

from .video_utils_videochat import (
    download_to_temporary_file,
    is_array,
    is_single_frame,
    is_url,
    local_path,
    to_rgb_frames,
)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

DEFAULT_RESCALE_FACTOR = 1 / 255

HD_MODES = ("none", "internvideo2_hd", "videochat2_hd")
RESIZE_MODES = ("pil", "torch_antialias")
IMAGE_RESIZE_MODES = ("square", "video")
# Settings a call may override on the way from frames to clips (the processor hands these video kwargs over)
CLIP_SETTING_KEYS = (
    "hd_mode",
    "hd_num",
    "fix_ratio",
    "hd_padding",
    "add_global_view",
    "resize_mode",
    "do_convert_rgb",
    "do_resize",
    "size",
    "resample",
    "do_center_crop",
    "crop_size",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "image_mean",
    "image_std",
)


# ---------------------------------------------------------------------------------------------------------------------
# Tensor functions (frames are float tensors [T, 3, H, W] unless stated otherwise)
# ---------------------------------------------------------------------------------------------------------------------


def find_closest_hd_grid(height: int, width: int, hd_num: int, image_size: int = 224) -> tuple[int, int]:
    """
    The (cols, rows) grid of at most `hd_num` tiles whose aspect ratio is closest to `width / height`; on an exact
    tie a larger grid wins while the frame covers more than half of its area (the InternVL rule both originals
    use; got_ocr2's `get_optimal_tiled_canvas` implements exactly it).
    """
    if hd_num < 1:
        raise ValueError(f"`hd_num` must be >= 1, got {hd_num}.")
    return get_optimal_tiled_canvas((height, width), (image_size, image_size), 1, hd_num)


def padded_hd_canvas(height: int, width: int, hd_num: int, image_size: int = 224) -> tuple[int, int, int]:
    """
    `(new_height, new_width, rows)` of `HD_transform_padding` on a landscape frame (portrait frames are measured
    with width and height swapped): the long side becomes `s * 224` with the largest `s` such that
    `s * ceil(s / ratio) <= hd_num`, and the height is padded up to `rows` tiles.
    """
    width, height = max(width, height), min(width, height)
    ratio = width / height
    scale = 1
    while scale * math.ceil(scale / ratio) <= hd_num:
        scale += 1
    scale -= 1
    new_width = int(scale * image_size)
    new_height = int(new_width / ratio)
    return new_height, new_width, int(np.ceil(new_height / image_size))


def _bicubic(frames: torch.Tensor, size: tuple[int, int], antialias: bool = False) -> torch.Tensor:
    """
    Bicubic `F.interpolate` of `[T, C, H, W]` frames. uint8 frames are converted to float32 one frame at a time:
    the values are those of converting the whole video first, without its full-resolution float copy (which costs
    more memory traffic than the resize itself).
    """
    if frames.dtype != torch.uint8:
        return F.interpolate(frames, size=size, mode="bicubic", align_corners=False, antialias=antialias)
    resized = torch.empty((frames.shape[0], frames.shape[1], *size), dtype=torch.float32, device=frames.device)
    for index, frame in enumerate(frames):
        resized[index] = _bicubic(frame.unsqueeze(0).float(), size, antialias)[0]
    return resized


def hd_resize_no_padding(
    frames: torch.Tensor, image_size: int = 224, hd_num: int = 6, fix_ratio: Sequence[int] | None = (2, 1)
) -> torch.Tensor:
    """
    `HD_transform_no_padding`: resize 0..255 frames `[T, 3, H, W]` (float, or uint8 taken as float) to
    `(224 * rows, 224 * cols)`.

    With `fix_ratio=(cols, rows)` (InternVideo2-Chat-8B-HD default `(2, 1)`) the grid is fixed whatever the aspect
    ratio; with `fix_ratio=None` the closest grid with at most `hd_num` tiles is chosen.
    """
    height, width = frames.shape[-2:]
    cols, rows = tuple(fix_ratio) if fix_ratio else find_closest_hd_grid(height, width, hd_num, image_size)
    return _bicubic(frames, (image_size * rows, image_size * cols))


def hd_resize_padding(frames: torch.Tensor, image_size: int = 224, hd_num: int = 6) -> torch.Tensor:
    """
    `HD_transform_padding`: scale the long side to `s * 224` with the largest `s` such that
    `s * ceil(s / ratio) <= hd_num`, then pad the height up to a multiple of 224 with 255 (top gets the floor half).

    Portrait frames are rotated by 180 degrees (`flip(-2, -1)`, not a transpose) and only the arithmetic swaps
    width and height, so they end up squashed into a landscape canvas, exactly like the original.
    """
    height, width = frames.shape[-2:]
    portrait = width < height
    if portrait:
        frames = frames.flip(-2, -1)
    new_height, new_width, rows = padded_hd_canvas(height, width, hd_num, image_size)
    resized = _bicubic(frames, (new_height, new_width))
    target_height = rows * image_size
    top = (target_height - new_height) // 2
    bottom = target_height - new_height - top
    padded = F.pad(resized, [0, 0, top, bottom], mode="constant", value=255)
    return padded.flip(-2, -1) if portrait else padded


def rescale(frames: torch.Tensor, rescale_factor: float | None = DEFAULT_RESCALE_FACTOR) -> torch.Tensor:
    """A new float32 tensor `frames * rescale_factor` (`None`: an unscaled copy). The default factor divides by 255
    as the originals do (`x / 255` and `x * (1 / 255)` differ in the last bit)."""
    frames = frames.float()
    if rescale_factor is None:
        return frames.clone()
    if rescale_factor == DEFAULT_RESCALE_FACTOR:
        return frames.div(255.0)
    return frames.mul(rescale_factor)


def normalize_frames(
    frames: torch.Tensor,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    rescale_factor: float | None = DEFAULT_RESCALE_FACTOR,
) -> torch.Tensor:
    """`x / 255` then `(x - mean) / std` per channel with float32 mean/std tensors (torchvision `Normalize`);
    `rescale_factor=None` skips the rescale, `mean=std=None` the normalisation."""
    frames = rescale(frames, rescale_factor)
    if mean is None:
        return frames
    mean = torch.as_tensor(mean, dtype=frames.dtype).view(-1, 1, 1)
    std = torch.as_tensor(std, dtype=frames.dtype).view(-1, 1, 1)
    return frames.sub_(mean).div_(std)


def tile_hd_frames(frames: torch.Tensor, image_size: int = 224, add_global_view: bool = True) -> torch.Tensor:
    """
    Cut normalised HD frames `[T, 3, rows * 224, cols * 224]` into clips `[rows * cols (+1), T, 3, 224, 224]`:
    tiles in row-major order, then (if `add_global_view`) the whole frame resized to 224x224 with bicubic
    `F.interpolate` (no antialias), as both originals do.
    """
    num_frames, channels, height, width = frames.shape
    if height % image_size or width % image_size:
        raise ValueError(f"HD frames of size {height}x{width} are not a grid of {image_size}x{image_size} tiles.")
    rows, cols = height // image_size, width // image_size
    clips = frames.new_empty((rows * cols + int(add_global_view), num_frames, channels, image_size, image_size))
    tiles = frames.reshape(num_frames, channels, rows, image_size, cols, image_size).permute(2, 4, 0, 1, 3, 5)
    clips[: rows * cols].view(rows, cols, num_frames, channels, image_size, image_size).copy_(tiles)
    if add_global_view:
        clips[-1] = _bicubic(frames, (image_size, image_size))
    return clips


def hd_preprocess_frames(
    frames: torch.Tensor,
    mean: Sequence[float] | None = IMAGENET_MEAN,
    std: Sequence[float] | None = IMAGENET_STD,
    image_size: int = 224,
    hd_num: int = 6,
    fix_ratio: Sequence[int] | None = (2, 1),
    padding: bool = False,
    add_global_view: bool = True,
    rescale_factor: float | None = DEFAULT_RESCALE_FACTOR,
) -> torch.Tensor:
    """uint8/float frames `[T, 3, H, W]` (0..255) -> HD clips `[num_clips, T, 3, 224, 224]` (see `normalize_frames`
    for `rescale_factor`, `mean` and `std`)."""
    if frames.dtype != torch.uint8:
        frames = frames.float()
    if padding:
        resized = hd_resize_padding(frames, image_size=image_size, hd_num=hd_num)
    else:
        resized = hd_resize_no_padding(frames, image_size=image_size, hd_num=hd_num, fix_ratio=fix_ratio)
    return tile_hd_frames(normalize_frames(resized, mean, std, rescale_factor), image_size, add_global_view)


def shorter_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """Output (height, width) of a shorter-side resize to `size`; the long side is truncated (torchvision rule)."""
    if height <= width:
        return size, int(size * width / height)
    return int(size * height / width), size


def center_crop_box(height: int, width: int, crop_height: int, crop_width: int) -> tuple[int, int]:
    """(top, left) of a centre crop, `round((h - ch) / 2)` like torchvision's `center_crop`."""
    if crop_height > height or crop_width > width:
        raise ValueError(f"Cannot crop {crop_height}x{crop_width} out of a {height}x{width} frame.")
    return int(round((height - crop_height) / 2.0)), int(round((width - crop_width) / 2.0))


def pil_resize_crop_frames(
    frames: np.ndarray,
    size: int | None = 224,
    crop_size: int | None = 224,
    resample: int = PILImageResampling.BICUBIC,
) -> np.ndarray:
    """
    VideoChat2 / VideoChat `GroupScale` + `GroupCenterCrop`: per uint8 RGB frame `[H, W, 3]`, PIL bicubic resize of
    the shorter side to `size`, then a centre crop. Returns uint8 `[T, crop, crop, 3]`. `size=None` / `crop_size=None`
    skip a step; `resample` is the PIL filter.
    """
    out = []
    for frame in frames:
        image = Image.fromarray(frame)
        if size is not None:
            new_height, new_width = shorter_side_size(image.height, image.width, size)
            image = image.resize((new_width, new_height), resample)
        if crop_size is not None:
            top, left = center_crop_box(image.height, image.width, crop_size, crop_size)
            image = image.crop((left, top, left + crop_size, top + crop_size))
        out.append(np.asarray(image))
    return np.stack(out)


def normalize_stacked_frames(
    frames: np.ndarray,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    rescale_factor: float | None = DEFAULT_RESCALE_FACTOR,
) -> torch.Tensor:
    """
    `Stack` + `ToTorchFormatTensor` + `GroupNormalize` of the VideoChat2 demos: uint8 `[T, H, W, 3]` -> float
    `[T, 3, H, W]`, `/255`, then per channel subtract/divide by the Python float mean/std (see `normalize_frames` for
    `rescale_factor=None` and `mean=std=None`).
    """
    num_frames, height, width, _ = frames.shape
    stacked = torch.from_numpy(np.ascontiguousarray(frames.transpose(1, 2, 0, 3).reshape(height, width, -1)))
    tensor = rescale(stacked.permute(2, 0, 1).contiguous(), rescale_factor)
    if mean is not None:
        for channel_index in range(tensor.shape[0]):
            channel = tensor[channel_index]
            channel.sub_(mean[channel_index % 3]).div_(std[channel_index % 3])
    return tensor.view(num_frames, 3, height, width)


def tensor_resize_crop_frames(
    frames: torch.Tensor,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    size: int | None = 224,
    crop_size: int | None = 224,
    rescale_factor: float | None = DEFAULT_RESCALE_FACTOR,
) -> torch.Tensor:
    """
    InternVideo2-Chat-8B (non-HD) model card: uint8 `[T, 3, H, W]` -> `/255` -> torchvision tensor
    `Resize(size, bicubic)` (shorter side, `antialias=True`) -> `CenterCrop(crop_size)` -> `Normalize`. `None` skips
    the resize, the crop, the rescale or (mean and std) the normalisation.
    """
    frames = rescale(frames, rescale_factor)
    if size is not None:
        new_height, new_width = shorter_side_size(frames.shape[-2], frames.shape[-1], size)
        frames = _bicubic(frames, (new_height, new_width), antialias=True)
    if crop_size is not None:
        top, left = center_crop_box(frames.shape[-2], frames.shape[-1], crop_size, crop_size)
        frames = frames[..., top : top + crop_size, left : left + crop_size]
    if mean is None:
        return frames
    mean_tensor = torch.as_tensor(mean, dtype=frames.dtype).view(-1, 1, 1)
    std_tensor = torch.as_tensor(std, dtype=frames.dtype).view(-1, 1, 1)
    return frames.sub(mean_tensor).div(std_tensor)


def square_resize_image(
    image: np.ndarray,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    size: int | None = 224,
    rescale_factor: float | None = DEFAULT_RESCALE_FACTOR,
    resample: int = PILImageResampling.BICUBIC,
) -> torch.Tensor:
    """VideoChat2 demo images: PIL `Resize((size, size), BICUBIC)` + `ToTensor` + `Normalize` -> `[3, size, size]`.
    `None` skips the resize, the rescale or (mean and std) the normalisation; `resample` is the PIL filter."""
    if size is not None:
        image = np.asarray(Image.fromarray(image).resize((size, size), resample))
    tensor = rescale(torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).contiguous(), rescale_factor)
    if mean is None:
        return tensor
    mean_tensor = torch.as_tensor(mean, dtype=tensor.dtype).view(-1, 1, 1)
    std_tensor = torch.as_tensor(std, dtype=tensor.dtype).view(-1, 1, 1)
    return tensor.sub(mean_tensor).div(std_tensor)


# ---------------------------------------------------------------------------------------------------------------------
# Image processor
# ---------------------------------------------------------------------------------------------------------------------


class VideoChatImageProcessorKwargs(ImagesKwargs, total=False):
    """
    hd_mode (`str`): one of `"none"`, `"internvideo2_hd"`, `"videochat2_hd"`.
    hd_num (`int`): maximum number of HD tiles.
    fix_ratio (`tuple[int, int]` or `None`): fixed (cols, rows) grid of the InternVideo2 HD transform.
    hd_padding (`bool`): use the padding HD transform (255 fill) instead of resizing to the grid.
    add_global_view (`bool`): append the global 224x224 view after the HD tiles.
    resize_mode (`str`): non-HD video path, `"pil"` or `"torch_antialias"`.
    image_resize_mode (`str`): `"square"` (PIL `Resize((224, 224))`) or `"video"` (an image is a 1-frame video).
    image_image_mean / image_image_std: statistics for images when they differ from the video ones.
    num_frames (`int`): default number of frames the processor samples from a video.
    """

    hd_mode: str
    hd_num: int
    fix_ratio: tuple[int, int] | list[int] | None
    hd_padding: bool
    add_global_view: bool
    resize_mode: str
    image_resize_mode: str
    image_image_mean: tuple[float, ...] | list[float] | None
    image_image_std: tuple[float, ...] | list[float] | None
    num_frames: int


class VideoChatImageProcessor(PilBackend):
    r"""
    Image processor for the VideoChat family (PIL backend, torchvision-free).

    Images go through `preprocess` (`__call__(images=...)`) and become `pixel_values` `(N, 3, 224, 224)` with one
    row per clip (`image_num_clips` gives the clips per image: 1, or tiles + 1 for HD presets). Videos go through
    `preprocess_videos` (`__call__(videos=...)`) and become `pixel_values_videos` `(num_clips_total, T, 3, 224, 224)`
    with `video_num_clips`, the clips per video (1, or tiles + 1 for HD presets, global view last).

    """

    valid_kwargs = VideoChatImageProcessorKwargs
    # The image side of `VideoChatProcessor`'s outputs (serving engines attribute outputs to a modality by these names;
    # the video side is `VideoChatProcessor.video_processor.model_input_names`).
    model_input_names = ["pixel_values", "image_qformer_input_ids", "image_qformer_attention_mask"]

    resample = PILImageResampling.BICUBIC
    image_mean = IMAGENET_MEAN
    image_std = IMAGENET_STD
    size = {"shortest_edge": 224}
    crop_size = {"height": 224, "width": 224}
    do_resize = True
    do_center_crop = True
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True
    hd_mode = "none"
    hd_num = 6
    fix_ratio = None
    hd_padding = False
    add_global_view = True
    resize_mode = "pil"
    image_resize_mode = "square"
    image_image_mean = None
    image_image_std = None
    num_frames = 8

    def __init__(self, **kwargs):
        if kwargs.get("fix_ratio") is not None:
            kwargs["fix_ratio"] = tuple(int(value) for value in kwargs["fix_ratio"])
        for name in ("image_image_mean", "image_image_std"):
            if kwargs.get(name) is not None:
                kwargs[name] = tuple(float(value) for value in kwargs[name])
        explicit_fix_ratio = "fix_ratio" in kwargs
        fix_ratio = kwargs.get("fix_ratio")
        super().__init__(**kwargs)
        # `_set_attributes` treats None as "use the class default"; an explicit None must stay None.
        if explicit_fix_ratio:
            self.fix_ratio = fix_ratio
        self._check_settings()

    def _check_settings(self) -> None:
        _check_tiling(self.hd_mode, self.resize_mode, self.hd_num, self.fix_ratio)
        if self.image_resize_mode not in IMAGE_RESIZE_MODES:
            raise ValueError(
                f"Unknown image_resize_mode {self.image_resize_mode!r}; choose one of {IMAGE_RESIZE_MODES}."
            )

    @property
    def image_size(self) -> int:
        """Side of every clip (224 for all released models)."""
        return int(self.crop_size.height or self.crop_size["height"])

    @property
    def is_hd(self) -> bool:
        return self.hd_mode != "none"

    # --------------------------------------------------------------------------------------------- geometry

    def hd_grid(self, height: int, width: int, kwargs: dict | None = None) -> tuple[int, int] | None:
        """`(cols, rows)` of the HD tiles a frame of `height x width` becomes, or `None` without HD tiling; `kwargs`
        override `hd_mode`, `hd_num`, `fix_ratio` and `hd_padding`."""
        settings = {
            name: (kwargs or {}).get(name, getattr(self, name))
            for name in ("hd_mode", "hd_num", "fix_ratio", "hd_padding")
        }
        if settings["hd_mode"] == "none":
            return None
        if settings["hd_padding"]:
            new_height, new_width, rows = padded_hd_canvas(height, width, settings["hd_num"], self.image_size)
            return new_width // self.image_size, rows
        if settings["hd_mode"] == "internvideo2_hd" and settings["fix_ratio"]:
            return tuple(settings["fix_ratio"])
        return find_closest_hd_grid(height, width, settings["hd_num"], self.image_size)

    def get_number_of_video_clips(self, height: int, width: int, videos_kwargs: dict | None = None) -> int:
        """Clips a video of `height x width` frames becomes: 1, or the HD tiles plus the global view."""
        grid = self.hd_grid(height, width, videos_kwargs)
        if grid is None:
            return 1
        add_global_view = (videos_kwargs or {}).get("add_global_view", self.add_global_view)
        return grid[0] * grid[1] + int(add_global_view)

    def get_number_of_image_patches(self, height: int, width: int, images_kwargs: dict | None = None) -> int:
        """Clips (rows of `pixel_values`) an image of `height x width` becomes."""
        if (images_kwargs or {}).get("image_resize_mode", self.image_resize_mode) == "square":
            return 1
        return self.get_number_of_video_clips(height, width, images_kwargs)

    # --------------------------------------------------------------------------------------------- entry point

    def __call__(self, images=None, videos=None, **kwargs) -> BatchFeature:
        """Preprocess `images` and/or `videos`; returns the union of both outputs."""
        if images is None and videos is None:
            raise ValueError("Pass `images` and/or `videos`.")
        data = {}
        return_tensors = kwargs.pop("return_tensors", "pt")
        if images is not None:
            data.update(self.preprocess(images, return_tensors=None, **kwargs))
        if videos is not None:
            data.update(self.preprocess_videos(videos, **kwargs))
        return BatchFeature(data=data, tensor_type=None if return_tensors == "pt" else return_tensors)

    # --------------------------------------------------------------------------------------------- videos

    def clip_settings(self, kwargs: dict) -> dict:
        """
        The settings of one call: the `CLIP_SETTING_KEYS` of `kwargs` (popped) over the processor's attributes,
        checked and resolved into what the tensor functions take, where `None` skips a step: `resize` (shorter side,
        `None` with `do_resize=False`), `crop` (`None` with `do_center_crop=False`), `rescale_factor` (`None` with
        `do_rescale=False`), `mean` / `std` (`None` with `do_normalize=False`), `side` (clip and HD tile side,
        `crop_size`), `resample`.
        """
        settings = {name: kwargs.pop(name, getattr(self, name)) for name in CLIP_SETTING_KEYS}
        _check_tiling(settings["hd_mode"], settings["resize_mode"], settings["hd_num"], settings["fix_ratio"])
        if not settings["do_convert_rgb"]:
            raise ValueError("The models take RGB frames: `do_convert_rgb=False` is not supported.")
        hd = settings["hd_mode"] != "none"
        if hd and not settings["do_resize"]:
            raise ValueError(
                f"hd_mode={settings['hd_mode']!r} resizes frames to its tile grid: `do_resize=False` is "
                "not supported with HD tiling."
            )
        resample = PILImageResampling(int(settings["resample"]))
        if (hd or settings["resize_mode"] == "torch_antialias") and resample != PILImageResampling.BICUBIC:
            raise ValueError(
                f"The HD and torch_antialias resizes are bicubic `F.interpolate` as in the originals; resample="
                f"{resample.name} is only available with PIL resizing (resize_mode='pil', square images)."
            )
        size = _size_dict(settings["size"], default_to_square=False)
        crop = _size_dict(settings["crop_size"], param_name="crop_size")
        if "shortest_edge" not in size:
            raise ValueError(f"`size` must give the shorter side as {{'shortest_edge': int}}, got {size}.")
        if crop.get("height") != crop.get("width"):
            raise ValueError(f"Clips are square: `crop_size` must have equal height and width, got {crop}.")
        normalize = settings["do_normalize"]
        return {
            **settings,
            "side": int(crop["height"]),
            "resize": int(size["shortest_edge"]) if settings["do_resize"] else None,
            "crop": int(crop["height"]) if settings["do_center_crop"] else None,
            "resample": resample,
            "rescale_factor": settings["rescale_factor"] if settings["do_rescale"] else None,
            "mean": settings["image_mean"] if normalize else None,
            "std": settings["image_std"] if normalize else None,
        }

    def preprocess_video_frames(self, frames, **kwargs) -> torch.Tensor:
        """
        One video's sampled frames (uint8 `(T, H, W, 3)`, or anything `to_rgb_frames` accepts) -> clips
        `(num_clips, T, 3, 224, 224)`. `kwargs` override the processor's settings (`CLIP_SETTING_KEYS`).
        """
        settings = self.clip_settings(kwargs)
        frames = to_rgb_frames(frames)
        mean, std, rescale_factor = settings["mean"], settings["std"], settings["rescale_factor"]
        if settings["hd_mode"] != "none":
            fix_ratio = settings["fix_ratio"] if settings["hd_mode"] == "internvideo2_hd" else None
            return hd_preprocess_frames(
                torch.from_numpy(frames).permute(0, 3, 1, 2),
                mean=mean,
                std=std,
                image_size=settings["side"],
                hd_num=settings["hd_num"],
                fix_ratio=fix_ratio,
                padding=settings["hd_padding"],
                add_global_view=settings["add_global_view"],
                rescale_factor=rescale_factor,
            )
        if settings["resize_mode"] == "torch_antialias":
            clip = tensor_resize_crop_frames(
                torch.from_numpy(frames).permute(0, 3, 1, 2),
                mean,
                std,
                settings["resize"],
                settings["crop"],
                rescale_factor,
            )
        else:
            resized = pil_resize_crop_frames(frames, settings["resize"], settings["crop"], settings["resample"])
            clip = normalize_stacked_frames(resized, mean, std, rescale_factor)
        return clip.unsqueeze(0)

    def preprocess_videos(self, videos, **kwargs) -> BatchFeature:
        """
        Preprocess decoded videos (a `(T, H, W, 3)` array/tensor or a list of them; all with the same T).

        Returns `pixel_values_videos` `(num_clips_total, T, 3, 224, 224)` float32 and `video_num_clips`.
        """
        kwargs.pop("return_tensors", None)
        if _is_single_video(videos):
            videos = [videos]
        if not isinstance(videos, (list, tuple)) or len(videos) == 0:
            raise ValueError("`videos` must be a decoded video or a non-empty list of decoded videos.")
        clips = [self.preprocess_video_frames(video, **dict(kwargs)) for video in videos]
        num_frames = {clip.shape[1] for clip in clips}
        if len(num_frames) > 1:
            raise ValueError(f"All videos of a batch must have the same number of frames, got {sorted(num_frames)}.")
        return BatchFeature(
            data={"pixel_values_videos": torch.cat(clips, dim=0), "video_num_clips": [clip.shape[0] for clip in clips]}
        )

    # --------------------------------------------------------------------------------------------- images

    def _preprocess(self, images: list[np.ndarray], return_tensors=None, **kwargs) -> BatchFeature:
        """Images arrive as channels-first numpy arrays (PIL backend); each becomes one or more 224x224 clips."""
        mean = kwargs.get("image_image_mean") or self.image_image_mean or kwargs.get("image_mean") or self.image_mean
        std = kwargs.get("image_image_std") or self.image_image_std or kwargs.get("image_std") or self.image_std
        image_resize_mode = kwargs.get("image_resize_mode") or self.image_resize_mode
        if image_resize_mode not in IMAGE_RESIZE_MODES:
            raise ValueError(f"Unknown image_resize_mode {image_resize_mode!r}; choose one of {IMAGE_RESIZE_MODES}.")
        clip_kwargs = {name: kwargs[name] for name in CLIP_SETTING_KEYS if kwargs.get(name) is not None}
        clip_kwargs.update(image_mean=mean, image_std=std)
        settings = self.clip_settings(dict(clip_kwargs))
        pixel_values, num_clips = [], []
        for image in images:
            image = _channels_last_uint8(image)
            if image_resize_mode == "square":
                resize = settings["side"] if settings["do_resize"] else None
                clips = square_resize_image(
                    image, settings["mean"], settings["std"], resize, settings["rescale_factor"], settings["resample"]
                ).unsqueeze(0)
            else:
                clips = self.preprocess_video_frames(image[None], **clip_kwargs)[:, 0]
            pixel_values.append(clips)
            num_clips.append(clips.shape[0])
        return BatchFeature(data={"pixel_values": torch.cat(pixel_values, dim=0), "image_num_clips": num_clips})


class VideoChatVideoProcessorView:
    """
    The video side of [`VideoChatProcessor`] as serving engines look for it (`processor.video_processor`): the
    image processor turns video frames into clips, so this is a read-only view of its video settings. The Q-Former
    rows of videos are listed among its `model_input_names` so that an engine attributes them to videos.

    (A real `video_processor` attribute would make `ProcessorMixin` load a transformers video processor, which needs
    torchvision.)
    """

    model_input_names = ["pixel_values_videos", "video_qformer_input_ids", "video_qformer_attention_mask"]
    # Frames are sampled when a video is decoded (files) or used as given (decoded frames).
    do_sample_frames = False

    def __init__(self, image_processor):
        self._image_processor = image_processor

    @property
    def num_frames(self) -> int:
        return int(self._image_processor.num_frames)

    @property
    def size(self) -> dict:
        return dict(self._image_processor.size)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_frames={self.num_frames}, size={self.size})"


def flat_images(images) -> list:
    """A flat list of images from one image (path, PIL image, `(H, W[, C])` array), a 4-D batch or nested lists."""
    if images is None:
        return []
    if isinstance(images, (str, os.PathLike)) or is_single_frame(images):
        return [images]
    if is_array(images):
        if images.ndim == 4:
            return list(images)
        raise ValueError(
            "An image array must have 2 or 3 dimensions (H, W[, 3]) (or 4 for a batch), got shape "
            f"{tuple(images.shape)}."
        )
    if isinstance(images, (list, tuple)):
        return [image for item in images if item is not None for image in flat_images(item)]
    raise ValueError(f"Unsupported image input of type {type(images).__name__}; pass a path, a PIL image or an array.")


def load_image(image):
    """A PIL image (RGB) from a local path, a `file://` or `http(s)://` URL (downloaded), a PIL image as RGB, or an
    `(H, W[, C])` array."""
    if isinstance(image, (str, os.PathLike)):
        path = local_path(image, "image")
        if is_url(path):
            temporary = download_to_temporary_file(path, "image")
            try:
                return _open_image_file(temporary, path)
            finally:
                os.unlink(temporary)
        if not os.path.exists(path):
            raise FileNotFoundError(f"Image file not found: {path}")
        if not os.path.isfile(path):
            raise ValueError(f"{path} is not an image file (a folder, pipe or device)")
        return _open_image_file(path, path)
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    return np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image


def _check_tiling(hd_mode, resize_mode, hd_num, fix_ratio) -> None:
    """The clip-cutting settings, at construction and per call alike."""
    if hd_mode not in HD_MODES:
        raise ValueError(f"Unknown hd_mode {hd_mode!r}; choose one of {HD_MODES}.")
    if resize_mode not in RESIZE_MODES:
        raise ValueError(f"Unknown resize_mode {resize_mode!r}; choose one of {RESIZE_MODES}.")
    if isinstance(hd_num, bool) or not isinstance(hd_num, (int, np.integer)) or hd_num < 1:
        raise ValueError(f"`hd_num` must be a positive integer, got {hd_num!r}.")
    if fix_ratio is not None and (
        len(fix_ratio) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in fix_ratio)
    ):
        raise ValueError(f"`fix_ratio` must be a (cols, rows) pair of positive integers, got {fix_ratio!r}.")


def _size_dict(size, **kwargs) -> dict:
    """A size given as an int, a sequence, a dict or a `SizeDict` as a plain dict (`get_size_dict`'s rules)."""
    return dict(size) if isinstance(size, (dict, SizeDict)) else get_size_dict(size, **kwargs)


def _open_image_file(path: str, name: str) -> Image.Image:
    try:
        with Image.open(path) as opened:
            return opened.convert("RGB")
    except (OSError, Image.DecompressionBombError) as error:
        raise ValueError(f"Could not read {name} as an image ({error}).") from None


def _is_single_video(videos) -> bool:
    if isinstance(videos, np.ndarray) or isinstance(videos, torch.Tensor):
        return videos.ndim in (3, 4)
    return False


def _channels_last_uint8(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3 and image.shape[0] in (1, 3, 4) and image.shape[-1] not in (1, 3, 4):
        image = np.moveaxis(image, 0, -1)
    return to_rgb_frames(image[None])[0]


__all__ = [
    "CLIP_MEAN",
    "CLIP_SETTING_KEYS",
    "CLIP_STD",
    "HD_MODES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VideoChatImageProcessor",
    "VideoChatVideoProcessorView",
    "center_crop_box",
    "find_closest_hd_grid",
    "flat_images",
    "hd_preprocess_frames",
    "hd_resize_no_padding",
    "hd_resize_padding",
    "load_image",
    "normalize_frames",
    "normalize_stacked_frames",
    "padded_hd_canvas",
    "pil_resize_crop_frames",
    "rescale",
    "shorter_side_size",
    "square_resize_image",
    "tensor_resize_crop_frames",
    "tile_hd_frames",
]

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""UMT-L/16 video encoder of VideoChat2: a plain pre-norm ViT over all frames at once, with a fixed 1-D sinusoid
position table that is recomputed from the actual frame count."""

from contextlib import contextmanager
from functools import lru_cache

import torch
from torch import nn
from transformers.models.videomae.modeling_videomae import VideoMAELayer

from .configuration_videochat import VideoChatVisionConfig
from .modeling_internvideo2 import InternVideo2PatchEmbeddings
from .modeling_vision_utils import VideoChatVisionPreTrainedModel, interpolate_temporal_positions


# The sinusoid table of the original is always built for 4 frames (`ckpt_num_frame` default) and resampled in time.
SINUSOID_TABLE_FRAMES = 4


@lru_cache(maxsize=16)
def sinusoid_position_table(num_positions: int, dim: int) -> torch.Tensor:
    """Classic transformer table `(num_positions, dim)`: angle(pos, j) = pos / 10000^(2 * (j // 2) / dim), sine on
    even and cosine on odd channels (interleaved), computed in float64 and returned as float32 (on CPU)."""
    positions = torch.arange(num_positions, dtype=torch.float64).unsqueeze(1)
    exponents = (2 * (torch.arange(dim) // 2)).to(torch.float64) / dim
    angles = positions / torch.pow(torch.tensor(10000.0, dtype=torch.float64), exponents)
    table = torch.empty_like(angles)
    table[:, 0::2] = torch.sin(angles[:, 0::2])
    table[:, 1::2] = torch.cos(angles[:, 1::2])
    return table.to(torch.float32)


def umt_position_table(num_frames: int, num_patches: int, dim: int) -> torch.Tensor:
    """Position table `(1, num_frames * num_patches, dim)` exactly as UMT builds it: a single frame uses the plain
    sinusoid over its patches; videos use the sinusoid over the flattened (t, h, w) index of a 4-frame clip, linearly
    resampled along time (`align_corners=False`) when `num_frames != 4`."""
    if num_frames == 1:
        return sinusoid_position_table(num_patches, dim).unsqueeze(0)
    base = sinusoid_position_table(SINUSOID_TABLE_FRAMES * num_patches, dim)
    per_frame = base.reshape(SINUSOID_TABLE_FRAMES, num_patches, dim)
    return interpolate_temporal_positions(per_frame, num_frames).reshape(1, num_frames * num_patches, dim)


@contextmanager
def _videomae_field_names(config: VideoChatVisionConfig):
    """VideoMAE's attention reads its q/v bias flag as `config.qv_bias`; expose our `qkv_bias` under that name while
    the layer is built (and only then, so it never lands in the saved config)."""
    if hasattr(config, "qv_bias"):
        yield config
        return
    config.qv_bias = config.qkv_bias
    try:
        yield config
    finally:
        del config.qv_bias


class UMTVisionLayer(VideoMAELayer):
    """A UMT block: pre-norm LayerNorm, attention with q/v bias and no k bias (scale head_dim^-0.5), exact-GELU MLP,
    no layer scale -- VideoMAE's block has exactly this math. Subclassed only to build it from our config."""

    def __init__(self, config: VideoChatVisionConfig):
        with _videomae_field_names(config):
            super().__init__(config)


class UMTEmbeddings(nn.Module):
    """`Conv3d` tubelet embedding plus the (non-learned) sinusoid position table of the actual frame count."""

    def __init__(self, config: VideoChatVisionConfig):
        super().__init__()
        self.config = config
        self.patch_embeddings = InternVideo2PatchEmbeddings(config)

    def position_table(self, num_frames: int) -> torch.Tensor:
        """Table `(1, num_frames * patches, dim)` (float32, CPU) for `num_frames` tubelet frames."""
        return umt_position_table(num_frames, self.config.num_patches_per_frame, self.config.hidden_size)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        embeddings = self.patch_embeddings(pixel_values)
        num_frames = pixel_values.shape[2] // self.config.tubelet_size
        table = self.position_table(num_frames).to(device=embeddings.device, dtype=embeddings.dtype)
        return embeddings + table


class UMTVisionModel(VideoChatVisionPreTrainedModel):
    """UMT-L/16 as used by VideoChat2: only the blocks up to the returned one are built (23 of UMT-L's 24), no class
    token, no final norm. Returns `last_hidden_state` of shape `(batch, frames * patches, hidden_size)`, frame-major.
    The position table is computed from the input's frame count, so any number of frames works."""

    _no_split_modules = ["UMTVisionLayer"]

    def __init__(self, config: VideoChatVisionConfig):
        super().__init__(config)
        self.embeddings = UMTEmbeddings(config)
        self.layers = nn.ModuleList([UMTVisionLayer(config) for _ in range(config.num_hidden_layers)])
        self.gradient_checkpointing = False
        self.post_init()


__all__ = ["UMTVisionLayer", "UMTVisionModel", "sinusoid_position_table", "umt_position_table"]

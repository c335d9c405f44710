# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Pieces shared by the video encoders (InternVideo2, UMT, EVA + GMHRA): base class, output, checks."""

import torch
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

from .configuration_videochat import VideoChatVisionConfig


class VideoChatVisionPreTrainedModel(PreTrainedModel):
    """Base of every video encoder. Encoders take `pixel_values` of shape `(batch, channels, frames, height, width)`
    and return a `BaseModelOutput` whose `last_hidden_state` holds all tokens of each clip (before the
    `vision_layernorm` that the composite model applies). The default `forward` runs `self.embeddings` then
    `self.layers`; encoders with extra stages override it."""

    config: VideoChatVisionConfig
    base_model_prefix = "vision_model"
    main_input_name = "pixel_values"
    input_modalities = ("image", "video")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    def get_input_embeddings(self):
        return self.embeddings.patch_embeddings

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool | None = None, **kwargs) -> BaseModelOutput:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, num_frames, height, width)`):
            Normalised clips. One frame selects the separate image position table.
        """
        check_video_pixel_values(pixel_values, self.config)
        hidden_states = self.embeddings(pixel_values)
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        for layer in self.layers:
            hidden_states = layer(hidden_states)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
        return BaseModelOutput(last_hidden_state=hidden_states, hidden_states=all_hidden_states)


def check_video_pixel_values(pixel_values: torch.Tensor, config: VideoChatVisionConfig) -> None:
    """Raise a `ValueError` naming the problem when `pixel_values` is not `(batch, channels, frames, size, size)`."""
    if not isinstance(pixel_values, torch.Tensor):
        raise ValueError(f"pixel values must be a torch.Tensor, got {type(pixel_values).__name__}")
    if pixel_values.ndim != 5:
        raise ValueError(
            f"the video encoder expects pixel values of rank 5 (batch, channels, frames, height, width), got shape "
            f"{tuple(pixel_values.shape)}"
        )
    _, channels, frames, height, width = pixel_values.shape
    if channels != config.num_channels:
        raise ValueError(f"expected {config.num_channels} channels, got {channels} (shape {tuple(pixel_values.shape)})")
    if height != config.image_size or width != config.image_size:
        raise ValueError(
            f"expected frames of {config.image_size}x{config.image_size} pixels, got {height}x{width}; resize or tile "
            "them with VideoChatImageProcessor"
        )
    if frames < 1 or frames % config.tubelet_size != 0:
        raise ValueError(f"the frame count ({frames}) must be a positive multiple of tubelet_size ({config.tubelet_size})")


def interpolate_temporal_positions(table: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Resample a `(frames, tokens_per_frame, dim)` position table to `num_frames` along time, linearly with
    `align_corners=False` as the originals do."""
    if table.shape[0] == num_frames:
        return table
    source_frames, tokens, dim = table.shape
    by_time_last = table.permute(1, 2, 0).reshape(tokens * dim, 1, source_frames)
    resampled = torch.nn.functional.interpolate(by_time_last.float(), size=num_frames, mode="linear", align_corners=False)
    return resampled.reshape(tokens, dim, num_frames).permute(2, 0, 1).to(table.dtype)


__all__ = ["BaseModelOutput", "VideoChatVisionPreTrainedModel", "check_video_pixel_values", "interpolate_temporal_positions"]

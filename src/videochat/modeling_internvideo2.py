# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""InternVideo2 video encoder (InternVideo2-Chat): a spatio-temporal ViT whose blocks are InternVL vision layers."""

import torch
from torch import nn
from transformers import initialization as init
from transformers.models.internvl.modeling_internvl import InternVLVisionLayer

from .configuration_videochat import VideoChatVisionConfig
from .modeling_vision_utils import VideoChatVisionPreTrainedModel, interpolate_temporal_positions


class InternVideo2PatchEmbeddings(nn.Module):
    """`Conv3d` tubelet embedding; tokens come out frame-major, then row-major patches within a frame."""

    def __init__(self, config: VideoChatVisionConfig):
        super().__init__()
        kernel = (config.tubelet_size, config.patch_size, config.patch_size)
        self.projection = nn.Conv3d(config.num_channels, config.hidden_size, kernel_size=kernel, stride=kernel)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        embeddings = self.projection(pixel_values.to(self.projection.weight.dtype))
        batch_size, hidden_size, frames = embeddings.shape[:3]
        return embeddings.reshape(batch_size, hidden_size, frames, -1).permute(0, 2, 3, 1).reshape(batch_size, -1, hidden_size)


class InternVideo2Embeddings(nn.Module):
    """Patch embeddings, a class token and learned position tables: one for videos (`config.num_frames` frames,
    resampled along time for other frame counts) and a separate one for single images."""

    def __init__(self, config: VideoChatVisionConfig):
        super().__init__()
        self.config = config
        num_patches = config.num_patches_per_frame
        video_positions = 1 + (config.num_frames // config.tubelet_size) * num_patches
        self.patch_embeddings = InternVideo2PatchEmbeddings(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.position_embeddings = nn.Parameter(torch.zeros(1, video_positions, config.hidden_size))
        self.image_position_embeddings = nn.Parameter(torch.zeros(1, 1 + num_patches, config.hidden_size))

    def position_table(self, num_frames: int) -> torch.Tensor:
        """Position table `(1, 1 + num_frames * patches, dim)` for a clip of `num_frames` (tubelet) frames."""
        if num_frames == 1:
            return self.image_position_embeddings
        cls_position, patch_positions = self.position_embeddings[:, :1], self.position_embeddings[0, 1:]
        table_frames = self.config.num_frames // self.config.tubelet_size
        per_frame = patch_positions.reshape(table_frames, -1, patch_positions.shape[-1])
        resampled = interpolate_temporal_positions(per_frame, num_frames).reshape(1, -1, patch_positions.shape[-1])
        return torch.cat([cls_position, resampled], dim=1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embeddings(pixel_values)
        num_frames = pixel_values.shape[2] // self.config.tubelet_size
        cls_tokens = self.cls_token.to(patches.dtype).expand(patches.shape[0], -1, -1)
        embeddings = torch.cat([cls_tokens, patches], dim=1)
        return embeddings + self.position_table(num_frames).to(embeddings.dtype)


class InternVideo2VisionModel(VideoChatVisionPreTrainedModel):
    """InternVideo2 encoder as used by InternVideo2-Chat: only the blocks up to the returned (penultimate) layer are
    built, and there is no final norm, attention pooling or CLIP projector."""

    _no_split_modules = ["InternVLVisionLayer"]

    def __init__(self, config: VideoChatVisionConfig):
        super().__init__(config)
        self.embeddings = InternVideo2Embeddings(config)
        self.layers = nn.ModuleList([InternVLVisionLayer(config) for _ in range(config.num_hidden_layers)])
        self.gradient_checkpointing = False
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, InternVideo2Embeddings):
            init.trunc_normal_(module.cls_token, std=std)
            init.trunc_normal_(module.position_embeddings, std=std)
            init.trunc_normal_(module.image_position_embeddings, std=std)
        elif isinstance(module, InternVLVisionLayer):
            init.constant_(module.lambda_1, self.config.layer_scale_init_value)
            init.constant_(module.lambda_2, self.config.layer_scale_init_value)


__all__ = ["InternVideo2VisionModel"]

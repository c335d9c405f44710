# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""The video encoders of the VideoChat family, each a `PreTrainedModel` chosen by its config type:

* `VideoChatInternVideo2VisionModel` (InternVideo2-Chat): InternVL vision layers over learned position tables;
* `VideoChatUMTVisionModel` (VideoChat2): VideoMAE layers over a sinusoid position table;
* `VideoChatEvaGmhraVisionModel` (VideoChat v1): EVA-CLIP ViT-g per frame (VideoMAE layers) plus Global MHRA blocks.

Every tower takes `pixel_values` of shape `(batch, channels, frames, height, width)` and returns all tokens of each
clip in `last_hidden_state`, after the tower's `post_layernorm` (the original `vision_layernorm` / `ln_vision`) when
it has one; `output_hidden_states=True` records the embeddings and every block output before it.
"""

from functools import lru_cache

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutput
from transformers.models.internvl.modeling_internvl import InternVLVisionAttention, InternVLVisionLayer
from transformers.models.videomae.modeling_videomae import VideoMAELayer, VideoMAESelfAttention
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

from .configuration_videochat import (
    VideoChatEvaGmhraVisionConfig,
    VideoChatInternVideo2VisionConfig,
    VideoChatUMTVisionConfig,
)
from .strict_loading_videochat import StrictLoadingMixin


# The sinusoid table of UMT is always built for 4 frames (`ckpt_num_frame` default) and resampled in time.
SINUSOID_TABLE_FRAMES = 4


def check_video_pixel_values(pixel_values: torch.Tensor, config) -> None:
    """Raise a `ValueError` naming the problem when `pixel_values` is not `(batch, channels, frames, size, size)`."""
    if not isinstance(pixel_values, torch.Tensor):
        raise ValueError(f"pixel values must be a torch.Tensor, got {type(pixel_values).__name__}")
    if not torch.is_floating_point(pixel_values):
        raise ValueError(
            f"pixel values must be a floating point tensor (normalised frames), got {pixel_values.dtype}; preprocess "
            "the frames with VideoChatImageProcessor"
        )
    if pixel_values.ndim != 5:
        raise ValueError(
            f"the video encoder expects pixel values of rank 5 (batch, channels, frames, height, width), got shape "
            f"{tuple(pixel_values.shape)}"
        )
    _, channels, frames, height, width = pixel_values.shape
    if channels != config.num_channels:
        raise ValueError(
            f"expected {config.num_channels} channels, got {channels} (shape {tuple(pixel_values.shape)})"
        )
    if height != config.image_size or width != config.image_size:
        raise ValueError(
            f"expected frames of {config.image_size}x{config.image_size} pixels, got {height}x{width}; resize or tile "
            "them with VideoChatImageProcessor"
        )
    if frames < 1 or frames % config.tubelet_size != 0:
        raise ValueError(
            f"the frame count ({frames}) must be a positive multiple of tubelet_size ({config.tubelet_size})"
        )


def interpolate_temporal_positions(table: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Resample a `(frames, tokens_per_frame, dim)` position table to `num_frames` along time, linearly with
    `align_corners=False` as the originals do."""
    if table.shape[0] == num_frames:
        return table
    source_frames, tokens, dim = table.shape
    by_time_last = table.permute(1, 2, 0).reshape(tokens * dim, 1, source_frames)
    resampled = nn.functional.interpolate(by_time_last.float(), size=num_frames, mode="linear", align_corners=False)
    return resampled.reshape(tokens, dim, num_frames).permute(2, 0, 1).to(table.dtype)


class VideoChatTubeletEmbeddings(nn.Module):
    """`Conv3d` tubelet embedding; tokens come out frame-major, then row-major patches within a frame."""

    def __init__(self, config):
        super().__init__()
        kernel = (config.tubelet_size, config.patch_size, config.patch_size)
        self.projection = nn.Conv3d(config.num_channels, config.hidden_size, kernel_size=kernel, stride=kernel)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        embeddings = self.projection(pixel_values.to(self.projection.weight.dtype))
        batch_size, hidden_size, frames = embeddings.shape[:3]
        return (
            embeddings.reshape(batch_size, hidden_size, frames, -1)
            .permute(0, 2, 3, 1)
            .reshape(batch_size, -1, hidden_size)
        )


class VideoChatFloat32LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 and cast back: EVA-CLIP's `ln_vision` is this `LayerNorm` subclass."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        weight = self.weight.float() if self.weight is not None else None
        bias = self.bias.float() if self.bias is not None else None
        output = nn.functional.layer_norm(hidden_states.float(), self.normalized_shape, weight, bias, self.eps)
        return output.to(hidden_states.dtype)


class VideoChatVisionPreTrainedModel(StrictLoadingMixin, PreTrainedModel):
    """Base of every video encoder (see the module docstring for inputs and outputs)."""

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

    def _run_blocks(self, pixel_values: torch.Tensor) -> torch.Tensor:
        check_video_pixel_values(pixel_values, self.config)
        hidden_states = self.embeddings(pixel_values)
        for layer in self.layers:
            hidden_states = layer(hidden_states)
        return hidden_states

    @merge_with_config_defaults
    @capture_outputs(tie_last_hidden_states=False)
    def forward(self, pixel_values: torch.Tensor, **kwargs) -> BaseModelOutput:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, num_frames, height, width)`):
            Normalised clips. One frame selects the image position table where the encoder has one.
        """
        hidden_states = self._run_blocks(pixel_values)
        if self.post_layernorm is not None:
            hidden_states = self.post_layernorm(hidden_states)
        return BaseModelOutput(last_hidden_state=hidden_states)


# ---------------------------------------------------------------------------------------------------------------------
# InternVideo2
# ---------------------------------------------------------------------------------------------------------------------


class VideoChatInternVideo2Embeddings(nn.Module):
    """Patch embeddings, a class token and learned position tables: one for videos (`config.num_frames` frames,
    resampled along time for other frame counts) and, if configured, a separate one for single images."""

    def __init__(self, config: VideoChatInternVideo2VisionConfig):
        super().__init__()
        self.config = config
        num_patches = config.num_patches_per_frame
        video_positions = 1 + (config.num_frames // config.tubelet_size) * num_patches
        self.patch_embeddings = VideoChatTubeletEmbeddings(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.position_embeddings = nn.Parameter(torch.zeros(1, video_positions, config.hidden_size))
        self.image_position_embeddings = None
        if config.use_image_position_embeddings:
            self.image_position_embeddings = nn.Parameter(torch.zeros(1, 1 + num_patches, config.hidden_size))

    def position_table(self, num_frames: int) -> torch.Tensor:
        """Position table `(1, 1 + num_frames * patches, dim)` for a clip of `num_frames` (tubelet) frames."""
        if num_frames == 1 and self.image_position_embeddings is not None:
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


class VideoChatInternVideo2VisionModel(VideoChatVisionPreTrainedModel):
    """InternVideo2: only the blocks up to the returned one are built (39 of 40 for InternVideo2-Chat), no final
    norm, attention pooling or CLIP projector; `post_layernorm` is InternVideo2-Chat's `vision_layernorm`."""

    config: VideoChatInternVideo2VisionConfig
    _no_split_modules = ["InternVLVisionLayer"]
    _can_record_outputs = {"hidden_states": InternVLVisionLayer, "attentions": InternVLVisionAttention}

    def __init__(self, config: VideoChatInternVideo2VisionConfig):
        super().__init__(config)
        self.embeddings = VideoChatInternVideo2Embeddings(config)
        self.layers = nn.ModuleList([InternVLVisionLayer(config) for _ in range(config.num_hidden_layers)])
        self.post_layernorm = (
            nn.LayerNorm(config.hidden_size, eps=config.post_layernorm_eps) if config.use_post_layernorm else None
        )
        self.gradient_checkpointing = False
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, VideoChatInternVideo2Embeddings):
            init.trunc_normal_(module.cls_token, std=std)
            init.trunc_normal_(module.position_embeddings, std=std)
            if module.image_position_embeddings is not None:
                init.trunc_normal_(module.image_position_embeddings, std=std)
        elif isinstance(module, InternVLVisionLayer):
            init.constant_(module.lambda_1, self.config.layer_scale_init_value)
            init.constant_(module.lambda_2, self.config.layer_scale_init_value)


# ---------------------------------------------------------------------------------------------------------------------
# UMT
# ---------------------------------------------------------------------------------------------------------------------


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


class VideoChatUMTEmbeddings(nn.Module):
    """`Conv3d` tubelet embedding plus the (non-learned) sinusoid position table of the actual frame count."""

    def __init__(self, config: VideoChatUMTVisionConfig):
        super().__init__()
        self.config = config
        self.patch_embeddings = VideoChatTubeletEmbeddings(config)

    def position_table(self, num_frames: int) -> torch.Tensor:
        """Table `(1, num_frames * patches, dim)` (float32, CPU) for `num_frames` tubelet frames."""
        return umt_position_table(num_frames, self.config.num_patches_per_frame, self.config.hidden_size)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        embeddings = self.patch_embeddings(pixel_values)
        num_frames = pixel_values.shape[2] // self.config.tubelet_size
        table = self.position_table(num_frames).to(device=embeddings.device, dtype=embeddings.dtype)
        return embeddings + table


class VideoChatUMTVisionModel(VideoChatVisionPreTrainedModel):
    """UMT-L/16: only the blocks up to the returned one are built (23 of 24), no class token; the blocks are VideoMAE
    layers (pre-norm LayerNorm, q/v bias without k bias, exact GELU, no layer scale: the same math). Any frame count
    works: the position table is computed from the input's."""

    config: VideoChatUMTVisionConfig
    _no_split_modules = ["VideoMAELayer"]
    _can_record_outputs = {"hidden_states": VideoMAELayer, "attentions": VideoMAESelfAttention}

    def __init__(self, config: VideoChatUMTVisionConfig):
        super().__init__(config)
        self.embeddings = VideoChatUMTEmbeddings(config)
        self.layers = nn.ModuleList([VideoMAELayer(config) for _ in range(config.num_hidden_layers)])
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.post_layernorm_eps)
        self.gradient_checkpointing = False
        self.post_init()


# ---------------------------------------------------------------------------------------------------------------------
# EVA-CLIP ViT-g + Global MHRA
# ---------------------------------------------------------------------------------------------------------------------


class VideoChatEvaEmbeddings(nn.Module):
    """Per-frame patch embedding (`Conv3d` with temporal kernel 1), a learned class token prepended to every frame and
    a learned spatial position table `(1, 1 + patches, dim)` shared by all frames."""

    def __init__(self, config: VideoChatEvaGmhraVisionConfig):
        super().__init__()
        self.patch_embeddings = VideoChatTubeletEmbeddings(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.position_embeddings = nn.Parameter(torch.zeros(1, 1 + config.num_patches_per_frame, config.hidden_size))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`(batch, channels, frames, H, W)` -> `(batch * frames, 1 + patches, dim)`, frames independent."""
        batch_size, _, num_frames = pixel_values.shape[:3]
        patches = self.patch_embeddings(pixel_values)
        patches = patches.reshape(batch_size * num_frames, -1, patches.shape[-1])
        cls_tokens = self.cls_token.to(patches.dtype).expand(patches.shape[0], -1, -1)
        embeddings = torch.cat([cls_tokens, patches], dim=1)
        return embeddings + self.position_embeddings.to(embeddings.dtype)


class VideoChatGmhraMLP(nn.Module):
    """`fc1` -> GELU -> dropout -> `fc2` (`c_fc` / `c_proj` in the original)."""

    def __init__(self, config: VideoChatEvaGmhraVisionConfig):
        super().__init__()
        hidden_features = int(round(config.hidden_size * config.gmhra_mlp_ratio))
        self.fc1 = nn.Linear(config.hidden_size, hidden_features)
        self.activation_fn = ACT2FN[config.hidden_act]
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.fc2 = nn.Linear(hidden_features, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(self.activation_fn(self.fc1(hidden_states))))


class VideoChatGmhraBlock(nn.Module):
    """
    One Global MHRA block. The query token attends to `context` = LayerNorm(all frame tokens of a ViT block output);
    a depth-wise 3x3x3 convolution over the patch tokens of that normalised context (arranged `(batch, dim, frames,
    rows, cols)`) is added to them (class tokens untouched). The block output stream itself is not modified.

        query = query + attention(layernorm_query(query), context)
        query = query + mlp(layernorm_mlp(query))
    """

    def __init__(self, config: VideoChatEvaGmhraVisionConfig):
        super().__init__()
        dim, eps = config.hidden_size, config.gmhra_layer_norm_eps
        self.position_conv = nn.Conv3d(dim, dim, kernel_size=3, stride=1, padding=1, groups=dim)
        self.layernorm_query = nn.LayerNorm(dim, eps=eps)
        self.layernorm_context = nn.LayerNorm(dim, eps=eps)
        self.layernorm_mlp = nn.LayerNorm(dim, eps=eps)
        self.attention = nn.MultiheadAttention(dim, config.num_attention_heads, batch_first=True)
        self.mlp = VideoChatGmhraMLP(config)

    def _context(self, frame_tokens: torch.Tensor, batch_size: int) -> torch.Tensor:
        """`(batch * frames, 1 + patches, dim)` block output -> normalised context `(batch, frames * (1 + patches),
        dim)`
        with the depth-wise position convolution added to the patch tokens."""
        context = self.layernorm_context(frame_tokens)
        num_frames = context.shape[0] // batch_size
        tokens, dim = context.shape[1:]
        side = int(round((tokens - 1) ** 0.5))
        context = context.reshape(batch_size, num_frames, tokens, dim)
        patches = context[:, :, 1:].permute(0, 3, 1, 2).reshape(batch_size, dim, num_frames, side, side)
        patches = self.position_conv(patches).reshape(batch_size, dim, num_frames, tokens - 1).permute(0, 2, 3, 1)
        context = torch.cat([context[:, :, :1], context[:, :, 1:] + patches], dim=2)
        return context.reshape(batch_size, num_frames * tokens, dim)

    def forward(self, query: torch.Tensor, frame_tokens: torch.Tensor) -> torch.Tensor:
        """`query` `(batch, 1, dim)`, `frame_tokens` `(batch * frames, 1 + patches, dim)` -> updated query."""
        context = self._context(frame_tokens, query.shape[0])
        attended, _ = self.attention(self.layernorm_query(query), context, context, need_weights=False)
        query = query + attended
        return query + self.mlp(self.layernorm_mlp(query))


class VideoChatEvaGmhraVisionModel(VideoChatVisionPreTrainedModel):
    """
    EVA-CLIP ViT-g/14 (39 built blocks, no final norm) over each frame independently; the `num_gmhra_layers` Global
    MHRA blocks run after the last `num_gmhra_layers` ViT blocks, in order (VideoChat's `gmhra[0]` follows block 31
    of 39), and update the learned `gmhra_cls_token`. Output `(batch, frames * (1 + patches) + 1, dim)`: the tokens of
    every frame (class token first, frame-major) followed by the GMHRA token, through `post_layernorm` (`ln_vision`).
    """

    config: VideoChatEvaGmhraVisionConfig
    _no_split_modules = ["VideoMAELayer", "VideoChatGmhraBlock"]
    _can_record_outputs = {"hidden_states": VideoMAELayer, "attentions": VideoMAESelfAttention}

    def __init__(self, config: VideoChatEvaGmhraVisionConfig):
        super().__init__(config)
        self.embeddings = VideoChatEvaEmbeddings(config)
        self.layers = nn.ModuleList([VideoMAELayer(config) for _ in range(config.num_hidden_layers)])
        self.gmhra_cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.gmhra_layers = nn.ModuleList([VideoChatGmhraBlock(config) for _ in range(config.num_gmhra_layers)])
        layer_norm = VideoChatFloat32LayerNorm if config.post_layernorm_fp32 else nn.LayerNorm
        self.post_layernorm = layer_norm(config.hidden_size, eps=config.post_layernorm_eps)
        self.gradient_checkpointing = False
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, nn.MultiheadAttention):
            # not torch's `_reset_parameters`: it would ignore the "already loaded" flags of
            # `transformers.initialization`
            init.normal_(module.in_proj_weight, std=std)
            init.zeros_(module.in_proj_bias)
            return
        super()._init_weights(module)
        if isinstance(module, VideoChatEvaEmbeddings):
            init.trunc_normal_(module.cls_token, std=std)
            init.trunc_normal_(module.position_embeddings, std=std)
        elif isinstance(module, VideoChatEvaGmhraVisionModel):
            init.zeros_(module.gmhra_cls_token)
            # The original zero-initialises the residual branches so that the GMHRA blocks start as identities. Done
            # here, after the children: modules without direct parameters (the blocks) are never visited by the init.
            for block in module.gmhra_layers:
                for linear in (block.attention.out_proj, block.mlp.fc2):
                    init.zeros_(linear.weight)
                    init.zeros_(linear.bias)

    def _run_blocks(self, pixel_values: torch.Tensor) -> torch.Tensor:
        check_video_pixel_values(pixel_values, self.config)
        batch_size, num_frames = pixel_values.shape[0], pixel_values.shape[2]
        hidden_states = self.embeddings(pixel_values)
        query = self.gmhra_cls_token.to(hidden_states.dtype).expand(batch_size, -1, -1)
        first_gmhra_layer = len(self.layers) - len(self.gmhra_layers)
        for index, layer in enumerate(self.layers):
            hidden_states = layer(hidden_states)
            if index >= first_gmhra_layer:
                query = self.gmhra_layers[index - first_gmhra_layer](query, hidden_states)
        frame_tokens = hidden_states.reshape(batch_size, num_frames * hidden_states.shape[1], hidden_states.shape[2])
        return torch.cat([frame_tokens, query], dim=1)


__all__ = [
    "VideoChatEvaGmhraVisionModel",
    "VideoChatInternVideo2VisionModel",
    "VideoChatUMTVisionModel",
    "VideoChatVisionPreTrainedModel",
    "sinusoid_position_table",
    "umt_position_table",
]

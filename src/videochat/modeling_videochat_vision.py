# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""The video encoders of the VideoChat family: InternVideo2 (InternVideo2-Chat), UMT-L (VideoChat2) and EVA-CLIP
ViT-g with Global MHRA temporal blocks (VideoChat v1)."""

from contextlib import contextmanager
from functools import lru_cache

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutput
from transformers.models.internvl.modeling_internvl import InternVLVisionLayer
from transformers.models.videomae.modeling_videomae import VideoMAELayer

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
    resampled along time for other frame counts) and, with `use_image_position_embeddings`, a separate one for single
    images."""

    def __init__(self, config: VideoChatVisionConfig):
        super().__init__()
        self.config = config
        num_patches = config.num_patches_per_frame
        video_positions = 1 + (config.num_frames // config.tubelet_size) * num_patches
        self.patch_embeddings = InternVideo2PatchEmbeddings(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.position_embeddings = nn.Parameter(torch.zeros(1, video_positions, config.hidden_size))
        self.image_position_embeddings = (
            nn.Parameter(torch.zeros(1, 1 + num_patches, config.hidden_size))
            if config.use_image_position_embeddings
            else None
        )

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
            if module.image_position_embeddings is not None:
                init.trunc_normal_(module.image_position_embeddings, std=std)
        elif isinstance(module, InternVLVisionLayer):
            init.constant_(module.lambda_1, self.config.layer_scale_init_value)
            init.constant_(module.lambda_2, self.config.layer_scale_init_value)


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


class EvaVisionLayer(UMTVisionLayer):
    """An EVA-CLIP ViT-g block: the same math as a UMT block (pre-norm LayerNorm, q/v bias without k bias, GELU MLP,
    no layer scale). A separate name only so device maps and `_no_split_modules` can tell the encoders apart."""


class EvaEmbeddings(nn.Module):
    """Per-frame patch embedding (`Conv3d` with temporal kernel 1), a learned class token prepended to every frame and
    a learned spatial position table `(1, 1 + patches, dim)` shared by all frames."""

    def __init__(self, config: VideoChatVisionConfig):
        super().__init__()
        self.config = config
        self.patch_embeddings = InternVideo2PatchEmbeddings(config)
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


class GmhraMLP(nn.Module):
    """`fc1` -> GELU -> dropout -> `fc2` (`c_fc` / `c_proj` in the original)."""

    def __init__(self, config: VideoChatVisionConfig):
        super().__init__()
        hidden_features = int(round(config.hidden_size * config.gmhra_mlp_ratio))
        self.fc1 = nn.Linear(config.hidden_size, hidden_features)
        self.activation_fn = ACT2FN[config.hidden_act]
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.fc2 = nn.Linear(hidden_features, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(self.activation_fn(self.fc1(hidden_states))))


class GmhraBlock(nn.Module):
    """
    One Global MHRA block. The query token attends to `context` = LayerNorm(all frame tokens of a ViT block output);
    a depth-wise 3x3x3 convolution over the patch tokens of that normalised context (arranged `(batch, dim, frames,
    rows, cols)`) is added to them (class tokens untouched). The block output stream itself is not modified.

        query = query + attention(layernorm_query(query), context)
        query = query + mlp(layernorm_mlp(query))
    """

    def __init__(self, config: VideoChatVisionConfig):
        super().__init__()
        dim, eps = config.hidden_size, config.gmhra_layer_norm_eps
        self.position_conv = nn.Conv3d(dim, dim, kernel_size=3, stride=1, padding=1, groups=dim)
        self.layernorm_query = nn.LayerNorm(dim, eps=eps)
        self.layernorm_context = nn.LayerNorm(dim, eps=eps)
        self.layernorm_mlp = nn.LayerNorm(dim, eps=eps)
        self.attention = nn.MultiheadAttention(dim, config.num_attention_heads, batch_first=True)
        self.mlp = GmhraMLP(config)

    def _context(self, frame_tokens: torch.Tensor, batch_size: int) -> torch.Tensor:
        """`(batch * frames, 1 + patches, dim)` block output -> normalised context `(batch, frames * (1 + patches), dim)`
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


class EvaGmhraVisionModel(VideoChatVisionPreTrainedModel):
    """
    EVA-CLIP ViT-g/14 (39 built blocks, no final norm) over each frame independently; the `num_gmhra_layers` Global
    MHRA blocks run after the last `num_gmhra_layers` ViT blocks, in order (VideoChat's `gmhra[0]` follows block 31
    of 39), and update the learned `gmhra_cls_token`. Output `(batch, frames * (1 + patches) + 1, dim)`: the tokens of
    every frame (class token first, frame-major) followed by the GMHRA token.
    """

    _no_split_modules = ["EvaVisionLayer", "GmhraBlock"]

    def __init__(self, config: VideoChatVisionConfig):
        super().__init__(config)
        if config.tubelet_size != 1:
            raise ValueError(f"the EVA encoder embeds frames independently: tubelet_size must be 1, got {config.tubelet_size}")
        if not 0 <= config.num_gmhra_layers <= config.num_hidden_layers:
            raise ValueError(
                f"num_gmhra_layers ({config.num_gmhra_layers}) must be between 0 and num_hidden_layers "
                f"({config.num_hidden_layers})"
            )
        self.embeddings = EvaEmbeddings(config)
        self.layers = nn.ModuleList([EvaVisionLayer(config) for _ in range(config.num_hidden_layers)])
        self.gmhra_cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.gmhra_layers = nn.ModuleList([GmhraBlock(config) for _ in range(config.num_gmhra_layers)])
        self.gradient_checkpointing = False
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, nn.MultiheadAttention):
            # not torch's `_reset_parameters`: it would ignore the "already loaded" flags of `transformers.initialization`
            init.normal_(module.in_proj_weight, std=std)
            init.zeros_(module.in_proj_bias)
            return
        super()._init_weights(module)
        if isinstance(module, EvaEmbeddings):
            init.trunc_normal_(module.cls_token, std=std)
            init.trunc_normal_(module.position_embeddings, std=std)
        elif isinstance(module, EvaGmhraVisionModel):
            init.zeros_(module.gmhra_cls_token)
            # The original zero-initialises the residual branches so that the GMHRA blocks start as identities. Done
            # here, after the children: modules without direct parameters (GmhraBlock) are never visited by the init.
            for block in module.gmhra_layers:
                for linear in (block.attention.out_proj, block.mlp.fc2):
                    init.zeros_(linear.weight)
                    init.zeros_(linear.bias)

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool | None = None, **kwargs) -> BaseModelOutput:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, num_frames, height, width)`):
            Normalised clips (one frame for images).
        """
        check_video_pixel_values(pixel_values, self.config)
        batch_size, num_frames = pixel_values.shape[0], pixel_values.shape[2]
        hidden_states = self.embeddings(pixel_values)
        query = self.gmhra_cls_token.to(hidden_states.dtype).expand(batch_size, -1, -1)
        first_gmhra_layer = len(self.layers) - len(self.gmhra_layers)
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        for index, layer in enumerate(self.layers):
            hidden_states = layer(hidden_states)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            if index >= first_gmhra_layer:
                query = self.gmhra_layers[index - first_gmhra_layer](query, hidden_states)
        frame_tokens = hidden_states.reshape(batch_size, num_frames * hidden_states.shape[1], hidden_states.shape[2])
        return BaseModelOutput(last_hidden_state=torch.cat([frame_tokens, query], dim=1), hidden_states=all_hidden_states)

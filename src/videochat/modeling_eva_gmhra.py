# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Video encoder of VideoChat (v1): EVA-CLIP ViT-g/14 applied to every frame, plus Global MHRA (UniFormerV2 style)
temporal blocks that update one learned query from the tokens of all frames."""

import torch
from torch import nn
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutput

from .configuration_videochat import VideoChatVisionConfig
from .modeling_internvideo2 import InternVideo2PatchEmbeddings
from .modeling_umt import UMTVisionLayer
from .modeling_vision_utils import VideoChatVisionPreTrainedModel, check_video_pixel_values


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


__all__ = ["EvaGmhraVisionModel", "EvaVisionLayer", "GmhraBlock"]

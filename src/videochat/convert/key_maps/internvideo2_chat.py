# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""InternVideo2-Chat-8B / -8B-HD hub layout (`InternVideo2_VideoChat2`, sharded safetensors or a single file)."""

from ..keymap import Drop, KeyMap, Rule, SplitDim0
from .common import peft_llm_rules, qformer_drops, qformer_rules


_VISION = r"vision_encoder"
_LAYER = r"model.vision_model.layers.\1"

INTERNVIDEO2_CHAT_KEY_MAP = KeyMap(
    name="internvideo2_chat",
    rules=(
        Rule(r"query_tokens", ("model.query_tokens",)),
        Rule(r"extra_query_tokens", ("model.extra_query_tokens",)),
        Rule(rf"{_VISION}\.cls_token", ("model.vision_model.embeddings.cls_token",)),
        Rule(rf"{_VISION}\.pos_embed", ("model.vision_model.embeddings.position_embeddings",)),
        Rule(rf"{_VISION}\.img_pos_embed", ("model.vision_model.embeddings.image_position_embeddings",)),
        Rule(
            rf"{_VISION}\.patch_embed\.proj\.(weight|bias)",
            (r"model.vision_model.embeddings.patch_embeddings.projection.\1",),
        ),
        Rule(rf"{_VISION}\.blocks\.(\d+)\.ls1", (rf"{_LAYER}.lambda_1",)),
        Rule(rf"{_VISION}\.blocks\.(\d+)\.ls2", (rf"{_LAYER}.lambda_2",)),
        Rule(rf"{_VISION}\.blocks\.(\d+)\.norm1\.weight", (rf"{_LAYER}.layernorm_before.weight",)),
        Rule(rf"{_VISION}\.blocks\.(\d+)\.norm2\.weight", (rf"{_LAYER}.layernorm_after.weight",)),
        Rule(
            rf"{_VISION}\.blocks\.(\d+)\.attn\.qkv\.weight",
            (
                rf"{_LAYER}.attention.q_proj.weight",
                rf"{_LAYER}.attention.k_proj.weight",
                rf"{_LAYER}.attention.v_proj.weight",
            ),
            SplitDim0(),
        ),
        Rule(rf"{_VISION}\.blocks\.(\d+)\.attn\.proj\.(weight|bias)", (rf"{_LAYER}.attention.projection_layer.\2",)),
        Rule(rf"{_VISION}\.blocks\.(\d+)\.attn\.(q_norm|k_norm)\.weight", (rf"{_LAYER}.attention.\2.weight",)),
        Rule(rf"{_VISION}\.blocks\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)", (rf"{_LAYER}.mlp.\2.\3",)),
        Rule(r"vision_layernorm\.(weight|bias)", (r"model.vision_model.post_layernorm.\1",)),
        Rule(r"project_up\.(weight|bias)", (r"model.multi_modal_projector.\1",)),
        *qformer_rules("qformer.bert"),
        *peft_llm_rules("lm"),
    ),
    drops=(
        Drop(r"project_down\.(weight|bias)", "training-only projection (vision regression loss), unused at inference"),
        *qformer_drops("qformer.bert"),
    ),
)

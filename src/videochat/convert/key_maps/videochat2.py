# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""VideoChat2 stage-3/4 layouts (`VideoChat2_it_vicuna`, `_mistral`, `_hd_mistral`, `_phi`).

Source namespace = the original model's `state_dict()`: the stage `.pth` (ViT, `vision_layernorm`, Q-Former, query
tokens, projection, PEFT LoRA adapters and buffers) merged with the base LLM folder, whose HF keys (`model.*`,
`lm_head.weight`) are re-prefixed to the PEFT names the stage file uses (`<llm>.base_model.model.model.*`), see
`videochat.convert.videochat2.combined_sources`. LoRA adapters are thereby next to their base weights and get folded.
"""

from ..keymap import Drop, KeyMap, Rule, SplitDim0
from .common import peft_llm_rules, plain_llm_rules, qformer_drops, qformer_rules, rotary_drops


_LAYER = r"model.vision_model.layers.\1"


def vit_block_rules(source_prefix: str) -> tuple[Rule, ...]:
    """timm/BEiT-style blocks (`norm1`, `attn.qkv` + `q_bias`/`v_bias`, `attn.proj`, `norm2`, `mlp.fc1/fc2`) under
    `source_prefix.blocks.N` -> our VideoMAE-style layers (UMT and EVA share this block layout)."""
    p = source_prefix.replace(".", r"\.")
    return (
        Rule(rf"{p}\.blocks\.(\d+)\.norm1\.(weight|bias)", (rf"{_LAYER}.layernorm_before.\2",)),
        Rule(rf"{p}\.blocks\.(\d+)\.norm2\.(weight|bias)", (rf"{_LAYER}.layernorm_after.\2",)),
        Rule(
            rf"{p}\.blocks\.(\d+)\.attn\.qkv\.weight",
            (
                rf"{_LAYER}.attention.attention.query.weight",
                rf"{_LAYER}.attention.attention.key.weight",
                rf"{_LAYER}.attention.attention.value.weight",
            ),
            SplitDim0(),
        ),
        Rule(rf"{p}\.blocks\.(\d+)\.attn\.q_bias", (rf"{_LAYER}.attention.attention.query.bias",)),
        Rule(rf"{p}\.blocks\.(\d+)\.attn\.v_bias", (rf"{_LAYER}.attention.attention.value.bias",)),
        Rule(rf"{p}\.blocks\.(\d+)\.attn\.proj\.(weight|bias)", (rf"{_LAYER}.attention.output.dense.\2",)),
        Rule(rf"{p}\.blocks\.(\d+)\.mlp\.fc1\.(weight|bias)", (rf"{_LAYER}.intermediate.dense.\2",)),
        Rule(rf"{p}\.blocks\.(\d+)\.mlp\.fc2\.(weight|bias)", (rf"{_LAYER}.output.dense.\2",)),
        Rule(
            rf"{p}\.patch_embed\.proj\.(weight|bias)",
            (r"model.vision_model.embeddings.patch_embeddings.projection.\1",),
        ),
    )


def stage1_leftover_drops() -> tuple[Drop, ...]:
    """Stage-1 (`VideoChat2_qformer`) tensors a chat checkpoint may still carry (spec checklist item 2)."""
    return (
        Drop(r"vision_temp_embed", "stage-1 learned temporal embedding, unused by the chat models"),
        Drop(r"qformer\.cls\..+", "Q-Former MLM head, deleted by the chat models"),
        Drop(r"(vision_proj|text_proj|itm_head)\.(weight|bias)", "stage-1 contrastive / matching heads, unused"),
        Drop(r"temp", "stage-1 contrastive temperature, unused"),
    )


def videochat2_key_map(name: str, llm_attr: str, projection_attr: str) -> KeyMap:
    """Key map of one VideoChat2 variant: `llm_attr` (`llama_model` / `mistral_model` / `phi_model`) and
    `projection_attr` (`llama_proj` / `mistral_proj` / `phi_proj`) are the attribute names of the original class."""
    return KeyMap(
        name=name,
        rules=(
            Rule(r"query_tokens", ("model.query_tokens",)),
            Rule(r"extra_query_tokens", ("model.extra_query_tokens",)),
            *vit_block_rules("vision_encoder.encoder"),
            Rule(r"vision_layernorm\.(weight|bias)", (r"model.vision_model.post_layernorm.\1",)),
            *qformer_rules("qformer.bert"),
            Rule(rf"{projection_attr}\.(weight|bias)", (r"model.multi_modal_projector.\1",)),
            *peft_llm_rules(llm_attr),
            *plain_llm_rules(llm_attr),  # checkpoints trained without LoRA (use_lora false)
        ),
        drops=(
            *qformer_drops("qformer.bert"),
            *rotary_drops(),
            *stage1_leftover_drops(),
        ),
        llm_attribute=llm_attr,
    )


VIDEOCHAT2_VICUNA_KEY_MAP = videochat2_key_map("videochat2_vicuna", "llama_model", "llama_proj")
VIDEOCHAT2_MISTRAL_KEY_MAP = videochat2_key_map("videochat2_mistral", "mistral_model", "mistral_proj")
VIDEOCHAT2_PHI_KEY_MAP = videochat2_key_map("videochat2_phi", "phi_model", "phi_proj")

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""VideoChat (v1) layout: four original files combined into one source namespace by
`videochat.convert.videochat2.combined_sources`:

- `videochat_7b.pth` / `videochat_13b.pth` (`{"model": sd}`) as is: `visual_encoder.gmhra.*`,
  `visual_encoder.gmhra_cls_token`, `ln_vision.*`, `extra_query_tokens`, `llama_proj.*` and buffers;
- `eva_vit_g.pth` (no prefix in the file) under `visual_encoder.`, as the original loads it;
- the BLIP-2 file (`blip2_pretrained_flant5xxl.pth`, `{"model": sd}`) under `blip2.`, so that its `ln_vision`, which
  the original overwrites with the one of the VideoChat file (loaded last), is dropped by name;
- the base LLM folder (HF keys) under `llama_model.` (no LoRA in v1).
"""

from ..keymap import Drop, InflatePatch2dTo3d, KeyMap, Rule
from .common import plain_llm_rules, qformer_drops, qformer_rules, rotary_drops
from .videochat2 import vit_block_rules


_GMHRA = r"model.vision_model.gmhra_layers.\1"

GMHRA_RULES = (
    Rule(r"visual_encoder\.gmhra_cls_token", ("model.vision_model.gmhra_cls_token",)),
    Rule(r"visual_encoder\.gmhra\.(\d+)\.dpe\.(weight|bias)", (rf"{_GMHRA}.position_conv.\2",)),
    Rule(r"visual_encoder\.gmhra\.(\d+)\.ln_1\.(weight|bias)", (rf"{_GMHRA}.layernorm_query.\2",)),
    Rule(r"visual_encoder\.gmhra\.(\d+)\.ln_2\.(weight|bias)", (rf"{_GMHRA}.layernorm_mlp.\2",)),
    Rule(r"visual_encoder\.gmhra\.(\d+)\.ln_3\.(weight|bias)", (rf"{_GMHRA}.layernorm_context.\2",)),
    Rule(r"visual_encoder\.gmhra\.(\d+)\.attn\.(in_proj_weight|in_proj_bias)", (rf"{_GMHRA}.attention.\2",)),
    Rule(r"visual_encoder\.gmhra\.(\d+)\.attn\.out_proj\.(weight|bias)", (rf"{_GMHRA}.attention.out_proj.\2",)),
    Rule(r"visual_encoder\.gmhra\.(\d+)\.mlp\.c_fc\.(weight|bias)", (rf"{_GMHRA}.mlp.fc1.\2",)),
    Rule(r"visual_encoder\.gmhra\.(\d+)\.mlp\.c_proj\.(weight|bias)", (rf"{_GMHRA}.mlp.fc2.\2",)),
)

EVA_RULES = (
    Rule(r"visual_encoder\.cls_token", ("model.vision_model.embeddings.cls_token",)),
    Rule(r"visual_encoder\.pos_embed", ("model.vision_model.embeddings.position_embeddings",)),
    # EVA-CLIP stores the image patch embedding 2-D; the original inflates it to a temporal kernel of 1 on load
    Rule(
        r"visual_encoder\.patch_embed\.proj\.weight",
        ("model.vision_model.embeddings.patch_embeddings.projection.weight",),
        InflatePatch2dTo3d(),
    ),
    *vit_block_rules("visual_encoder"),
)

BLIP2_DROPS = (
    Drop(
        r"blip2\.ln_vision\.(weight|bias)", "superseded by ln_vision of videochat_*.pth, which the original loads last"
    ),
    Drop(
        r"blip2\.Qformer\.bert\.embeddings\.(word_embeddings|position_embeddings)\.weight",
        "VideoChat v1 deletes the Q-Former's text embeddings (no instruction input)",
    ),
    Drop(
        r"blip2\.Qformer\.bert\.encoder\.layer\.\d+\.(intermediate|output)\.(dense|LayerNorm)\.(weight|bias)",
        "VideoChat v1 deletes the Q-Former's text FFNs (no instruction input)",
    ),
    Drop(r"blip2\.Qformer\.cls\..+", "BLIP-2 MLM head, deleted by VideoChat v1"),
    Drop(r"blip2\.(vision_proj|text_proj|itm_head)\.(weight|bias)", "BLIP-2 contrastive / matching heads, unused"),
    Drop(r"blip2\.temp", "BLIP-2 contrastive temperature, unused"),
)

VIDEOCHAT_V1_KEY_MAP = KeyMap(
    name="videochat_v1",
    rules=(
        *EVA_RULES,
        *GMHRA_RULES,
        Rule(r"ln_vision\.(weight|bias)", (r"model.vision_model.post_layernorm.\1",)),
        Rule(r"blip2\.query_tokens", ("model.query_tokens",)),
        Rule(r"extra_query_tokens", ("model.extra_query_tokens",)),
        *qformer_rules("blip2.Qformer.bert"),
        Rule(r"llama_proj\.(weight|bias)", (r"model.multi_modal_projector.\1",)),
        *plain_llm_rules("llama_model"),
    ),
    drops=(
        *qformer_drops("Qformer.bert"),
        *qformer_drops("blip2.Qformer.bert"),
        *rotary_drops(),
        *BLIP2_DROPS,
        Drop(
            r"visual_encoder\.(norm|fc_norm|head)\.(weight|bias)",
            "EVA-CLIP final norm / head: the original builds none",
        ),
    ),
    llm_attribute="llama_model",
)

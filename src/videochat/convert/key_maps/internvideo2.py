# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""InternVideo2 foundation-model layouts: the stage-1 classifier (`InternVideo2`, single_modality), the stage-1
distillation checkpoints (`DistInternVideo2`: the same tower without `fc_norm`/`head`, plus UTA decoders) and the
stage-2 video-text model (`InternVideo2_Stage2_visual`)."""

from ..keymap import Drop, KeyMap, Rule, SplitDim0


def tower_rules(source_prefix: str, target_prefix: str) -> tuple[Rule, ...]:
    """The InternVideo2 tower and its attention pooling (`clip_projector`) under `source_prefix` -> our
    `InternVideo2Model` under `target_prefix`."""
    p = source_prefix.replace(".", r"\.")
    layer = rf"{target_prefix}encoder.layers.\1"
    embeddings = f"{target_prefix}encoder.embeddings"
    pooler = f"{target_prefix}pooler"
    return (
        Rule(rf"{p}cls_token", (f"{embeddings}.cls_token",)),
        Rule(rf"{p}pos_embed", (f"{embeddings}.position_embeddings",)),
        Rule(rf"{p}img_pos_embed", (f"{embeddings}.image_position_embeddings",)),
        Rule(rf"{p}patch_embed\.proj\.(weight|bias)", (rf"{embeddings}.patch_embeddings.projection.\1",)),
        Rule(rf"{p}blocks\.(\d+)\.ls1\.gamma", (f"{layer}.lambda_1",)),
        Rule(rf"{p}blocks\.(\d+)\.ls2\.gamma", (f"{layer}.lambda_2",)),
        Rule(rf"{p}blocks\.(\d+)\.norm1\.weight", (f"{layer}.layernorm_before.weight",)),
        Rule(rf"{p}blocks\.(\d+)\.norm2\.weight", (f"{layer}.layernorm_after.weight",)),
        Rule(
            rf"{p}blocks\.(\d+)\.attn\.qkv\.weight",
            (
                f"{layer}.attention.q_proj.weight",
                f"{layer}.attention.k_proj.weight",
                f"{layer}.attention.v_proj.weight",
            ),
            SplitDim0(),
        ),
        Rule(  # only in towers built with qkv_bias=True (no released model)
            rf"{p}blocks\.(\d+)\.attn\.qkv\.bias",
            (f"{layer}.attention.q_proj.bias", f"{layer}.attention.k_proj.bias", f"{layer}.attention.v_proj.bias"),
            SplitDim0(),
        ),
        Rule(rf"{p}blocks\.(\d+)\.attn\.proj\.(weight|bias)", (rf"{layer}.attention.projection_layer.\2",)),
        Rule(rf"{p}blocks\.(\d+)\.attn\.(q_norm|k_norm)\.weight", (rf"{layer}.attention.\2.weight",)),
        Rule(rf"{p}blocks\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)", (rf"{layer}.mlp.\2.\3",)),
        Rule(rf"{p}clip_projector\.norm1_q\.(weight|bias)", (rf"{pooler}.query_layernorm.\1",)),
        Rule(rf"{p}clip_projector\.norm1_k\.(weight|bias)", (rf"{pooler}.key_layernorm.\1",)),
        Rule(rf"{p}clip_projector\.norm1_v\.(weight|bias)", (rf"{pooler}.value_layernorm.\1",)),
        # the original's bias-free q/k/v Linear plus separate q_bias/k_bias/v_bias are one Linear with bias here
        Rule(rf"{p}clip_projector\.cross_attn\.(q|k|v)\.weight", (rf"{pooler}.\1_proj.weight",)),
        Rule(rf"{p}clip_projector\.cross_attn\.(q|k|v)_bias", (rf"{pooler}.\1_proj.bias",)),
        Rule(rf"{p}clip_projector\.cross_attn\.proj\.(weight|bias)", (rf"{pooler}.out_proj.\1",)),
    )


def distillation_drops(source_prefix: str) -> tuple[Drop, ...]:
    """Training-only tensors of the unmasked-teacher alignment (UTA) that sit in the released checkpoints."""
    p = source_prefix.replace(".", r"\.")
    reason = "training-only UTA distillation target (aligns student tokens to a CLIP teacher), unused at inference"
    return (
        Drop(rf"{p}clip_pos_embed", reason),
        Drop(rf"{p}clip_img_pos_embed", reason),
        Drop(rf"{p}clip_decoder\.\d+\..+", reason),
        Drop(rf"{p}final_clip_decoder\..+", reason),
    )


INTERNVIDEO2_CLASSIFIER_KEY_MAP = KeyMap(
    name="internvideo2_classifier",
    rules=(
        *tower_rules("", "internvideo2."),
        Rule(r"fc_norm\.(weight|bias)", (r"fc_norm.\1",)),
        Rule(r"head\.(weight|bias)", (r"classifier.\1",)),
    ),
    drops=distillation_drops(""),
)

INTERNVIDEO2_FEATURES_KEY_MAP = KeyMap(
    name="internvideo2_features",
    rules=tower_rules("", ""),
    drops=distillation_drops(""),
)

_BERT = r"text_encoder\.bert"
_BERT_LAYER_PARAMETER = (
    r"(?:attention|crossattention)\.(?:self\.(?:query|key|value)|output\.(?:dense|LayerNorm))"
    r"|intermediate\.dense|output\.(?:dense|LayerNorm)"
)

INTERNVIDEO2_VIDEO_TEXT_KEY_MAP = KeyMap(
    name="internvideo2_video_text",
    rules=(
        *tower_rules("vision_encoder.", "vision_model."),
        Rule(
            rf"{_BERT}\.embeddings\.(word_embeddings|position_embeddings|token_type_embeddings)\.weight",
            (r"text_model.embeddings.\1.weight",),
        ),
        Rule(rf"{_BERT}\.embeddings\.LayerNorm\.(weight|bias)", (r"text_model.embeddings.LayerNorm.\1",)),
        Rule(
            rf"{_BERT}\.encoder\.layer\.(\d+)\.({_BERT_LAYER_PARAMETER})\.(weight|bias)",
            (r"text_model.encoder.layer.\1.\2.\3",),
        ),
        Rule(r"vision_proj\.(weight|bias)", (r"vision_projection.\1",)),
        Rule(r"text_proj\.(weight|bias)", (r"text_projection.\1",)),
        Rule(r"temp", ("temperature",)),
        Rule(r"itm_head\.(weight|bias)", (r"itm_head.\1",)),
    ),
    drops=(
        *distillation_drops("vision_encoder."),
        Drop(
            rf"{_BERT}\.embeddings\.position_ids", "buffer arange(max_position_embeddings), rebuilt by BertEmbeddings"
        ),
        Drop(
            r"text_encoder\.cls\.predictions\..+",
            "masked-language-model head, training only (its decoder weight is the tied word-embedding matrix)",
        ),
    ),
)

INTERNVIDEO2_KEY_MAPS = {
    key_map.name: key_map
    for key_map in (INTERNVIDEO2_CLASSIFIER_KEY_MAP, INTERNVIDEO2_FEATURES_KEY_MAP, INTERNVIDEO2_VIDEO_TEXT_KEY_MAP)
}

__all__ = [
    "INTERNVIDEO2_CLASSIFIER_KEY_MAP",
    "INTERNVIDEO2_FEATURES_KEY_MAP",
    "INTERNVIDEO2_KEY_MAPS",
    "INTERNVIDEO2_VIDEO_TEXT_KEY_MAP",
    "distillation_drops",
    "tower_rules",
]

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Named presets: the real-size configuration of every original model of the family.

A new family member is a config here plus a key map in `conversion/layouts/`, never a copied module.
"""

from copy import deepcopy

from .configuration_videochat import VideoChatConfig


INTERNVIDEO2_1B_VISION = {
    "encoder_type": "internvideo2",
    "hidden_size": 1408,
    "intermediate_size": 6144,
    "num_hidden_layers": 39,  # 40-layer InternVideo2-1B, features of the penultimate block: only 39 are built
    "num_attention_heads": 16,
    "image_size": 224,
    "patch_size": 14,
    "num_frames": 8,
    "norm_type": "rms_norm",
    "layer_norm_eps": 1e-6,
    "attention_bias": False,
    "use_qk_norm": True,
    "layer_scale_init_value": 1e-5,
    "vision_layernorm_eps": 1e-12,
}

UMT_L16_VISION = {
    "encoder_type": "umt",
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 23,  # UMT-L has 24 blocks; the returned feature is block 23's, only 23 are built
    "num_attention_heads": 16,
    "image_size": 224,
    "patch_size": 16,
    "num_frames": 4,  # the sinusoid table is built for 4 frames and resampled in time
    "norm_type": "layer_norm",
    "layer_norm_eps": 1e-6,
    "qkv_bias": True,
    "use_qk_norm": False,
    "layer_scale_init_value": 0.0,
    "vision_layernorm_eps": 1e-12,
}

EVA_VIT_G_GMHRA_VISION = {
    "encoder_type": "eva_gmhra",
    "hidden_size": 1408,
    "intermediate_size": 6144,
    "num_hidden_layers": 39,
    "num_attention_heads": 16,
    "image_size": 224,
    "patch_size": 14,
    "num_frames": 8,
    "norm_type": "layer_norm",
    "layer_norm_eps": 1e-6,
    "qkv_bias": True,
    "use_qk_norm": False,
    "layer_scale_init_value": 0.0,
    "num_gmhra_layers": 8,
    "gmhra_mlp_ratio": 4.3637,  # the GMHRA MLP reuses EVA's mlp_ratio: round(1408 * 4.3637) = 6144
    "gmhra_layer_norm_eps": 1e-5,
    "vision_layernorm_eps": 1e-5,
    "vision_layernorm_fp32": True,
}

BERT_BASE_QFORMER = {"vocab_size": 30523, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                     "intermediate_size": 3072, "max_position_embeddings": 512, "cross_attention_frequency": 2}

MISTRAL_7B_INSTRUCT_V03 = {
    "model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 32768,
    "max_position_embeddings": 32768, "rope_theta": 1e6, "rms_norm_eps": 1e-5, "sliding_window": None,
    "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": False,
}
MISTRAL_7B_INSTRUCT_V02 = {**MISTRAL_7B_INSTRUCT_V03, "vocab_size": 32000}
VICUNA_7B_V0 = {
    "model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32001, "max_position_embeddings": 2048,
    "rope_theta": 10000.0, "rms_norm_eps": 1e-6, "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": False,
}
STABLE_VICUNA_13B = {**VICUNA_7B_V0, "hidden_size": 5120, "intermediate_size": 13824, "num_hidden_layers": 40,
                     "num_attention_heads": 40, "num_key_value_heads": 40}
# Phi-3-mini-128k-instruct uses longrope scaling with 48 short/long factors that only its own config.json carries; the
# preset (used for meta-device instantiation and key checks) leaves them out. Conversion always takes the text config
# from the base LLM folder (`conversion.videochat2.config_from_original(..., llm_config=...)`), which restores them.
PHI3_MINI_128K = {
    "model_type": "phi3", "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32064, "max_position_embeddings": 131072,
    "original_max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "sliding_window": 262144,
    "bos_token_id": 1, "eos_token_id": 32000, "pad_token_id": 32000, "tie_word_embeddings": False,
}
INTERNLM2_5_7B_AS_LLAMA = {
    "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 92544, "max_position_embeddings": 32768,
    "rope_theta": 1e6, "rope_scaling": {"rope_type": "dynamic", "factor": 2.0}, "rms_norm_eps": 1e-5,
    "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": False,
}


def _preset(vision: dict, text: dict, qformer_extra: dict | None = None) -> dict:
    qformer = {**BERT_BASE_QFORMER, **(qformer_extra or {})}
    return {"vision_config": vision, "qformer_config": qformer, "text_config": text,
            "num_query_tokens": 32, "num_extra_query_tokens": 64}


PRESETS: dict[str, dict] = {
    "internvideo2-chat-8b-hd": _preset(INTERNVIDEO2_1B_VISION, MISTRAL_7B_INSTRUCT_V03),
    "internvideo2-chat-8b": _preset(INTERNVIDEO2_1B_VISION, MISTRAL_7B_INSTRUCT_V03),
    "internvideo2-chat-8b-internlm2_5": _preset(INTERNVIDEO2_1B_VISION, INTERNLM2_5_7B_AS_LLAMA),
    "videochat2-vicuna-7b": _preset(UMT_L16_VISION, VICUNA_7B_V0),
    "videochat2-mistral-7b": _preset(UMT_L16_VISION, MISTRAL_7B_INSTRUCT_V02),
    "videochat2-hd-mistral-7b": _preset(UMT_L16_VISION, MISTRAL_7B_INSTRUCT_V02),
    "videochat2-phi3-mini": _preset(UMT_L16_VISION, PHI3_MINI_128K),
    "videochat-7b": _preset(EVA_VIT_G_GMHRA_VISION, VICUNA_7B_V0, {"use_text_input": False, "vocab_size": 30522}),
    "videochat-13b": _preset(EVA_VIT_G_GMHRA_VISION, STABLE_VICUNA_13B, {"use_text_input": False, "vocab_size": 30522}),
}


def preset_names() -> list[str]:
    return sorted(PRESETS)


def get_preset_config(name: str, **overrides) -> VideoChatConfig:
    """Build the real-size `VideoChatConfig` of preset `name`; `overrides` replace top-level fields or, given as
    dicts, are merged into `vision_config` / `qformer_config` / `text_config`."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(preset_names())}")
    fields = deepcopy(PRESETS[name])
    for key, value in overrides.items():
        if key in ("vision_config", "qformer_config", "text_config") and isinstance(value, dict):
            fields[key] = {**fields[key], **value}
        else:
            fields[key] = value
    fields.setdefault("preset", name)
    return VideoChatConfig(**fields)


__all__ = ["PRESETS", "get_preset_config", "preset_names"]

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""InternVideo2-Chat (8B, 8B-HD): original `config.json` -> `VideoChatConfig`, original weights -> our model."""

import json
import re
from fractions import Fraction
from pathlib import Path

import torch

from videochat.configuration_videochat import VideoChatConfig
from videochat.presets import get_preset_config

from .keymap import ConversionPlan, convert_state_dict
from .layouts import INTERNVIDEO2_CHAT_KEY_MAP


def _ratio(value) -> float:
    return float(Fraction(value)) if isinstance(value, str) else float(value)


def lora_scaling(original_config: dict) -> float | None:
    """`lora_alpha / lora_r` from the original `model_config.llm`, or None when LoRA is off."""
    llm = original_config.get("model_config", {}).get("llm", {})
    if not llm.get("use_lora", False):
        return None
    return float(llm["lora_alpha"]) / float(llm["lora_r"])


def is_hd(original_config: dict) -> bool:
    """The HD and non-HD hub repos share `config.json`; the fixtures name the variant explicitly."""
    names = f"{original_config.get('variant', '')} {original_config.get('_name_or_path', '')}".lower().replace("non-hd", "")
    return re.search(r"(?<![a-z0-9])hd(?![a-z0-9])", names) is not None


def config_from_original(original_config: dict, lm_config: dict | None = None, preset: str | None = None) -> VideoChatConfig:
    """Build our config from the original `config.json` (`model_config` layout). Dimensions the original code
    hard-codes come from the preset; a `tiny_overrides` block (test fixtures) replaces them, and `lm_config`
    (the LLM's own `config.json`) replaces the preset's text config."""
    preset = preset or ("internvideo2-chat-8b-hd" if is_hd(original_config) else "internvideo2-chat-8b")
    model_config = original_config.get("model_config", {})
    vision_source = model_config.get("vision_encoder", {})
    bridge = model_config.get("bridge", {})
    overrides = original_config.get("tiny_overrides", {})

    vision = {"num_frames": int(vision_source.get("num_frames", 8)), "tubelet_size": int(vision_source.get("tubelet_size", 1)),
              "image_size": int(vision_source.get("img_size", 224)), "patch_size": int(vision_source.get("patch_size", 14))}
    ctor = overrides.get("vision_encoder_ctor")
    if ctor:
        vision.update(hidden_size=ctor["embed_dim"], num_attention_heads=ctor["num_heads"],
                      intermediate_size=int(ctor["embed_dim"] * _ratio(ctor["mlp_ratio"])),
                      num_hidden_layers=int(ctor.get("blocks_built", ctor["depth"] + vision_source.get("x_vis_return_idx", -2) + 1)),
                      attention_bias=bool(ctor.get("qkv_bias", False)), use_qk_norm=bool(ctor.get("qk_normalization", True)),
                      layer_scale_init_value=float(ctor.get("init_values", 1e-5)))
    qformer = {}
    bert = next((value for key, value in overrides.items() if key.startswith("qformer_bert_config")), None)
    if bert:
        qformer.update({key: bert[key] for key in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                                    "intermediate_size", "max_position_embeddings", "layer_norm_eps",
                                                    "hidden_act", "pad_token_id") if key in bert})
        qformer["vocab_size"] = int(overrides.get("qformer_vocab_after_[DEC]", bert["vocab_size"] + 1))
    fields = {"vision_config": vision, "qformer_config": qformer,
              "num_query_tokens": int(bridge.get("num_query_token", 32)),
              "num_extra_query_tokens": int(bridge.get("extra_num_query_token", 64))}
    if lm_config is not None:
        fields["text_config"] = {key: value for key, value in lm_config.items() if key not in ("architectures", "torch_dtype", "dtype")}
    return get_preset_config(preset, **fields)


def convert_internvideo2_chat(state_dict, original_config: dict) -> tuple[dict[str, torch.Tensor], ConversionPlan]:
    """Original InternVideo2-Chat tensors -> our state dict (LoRA folded with the recorded r/alpha)."""
    return convert_state_dict(INTERNVIDEO2_CHAT_KEY_MAP, state_dict, lora_scaling(original_config))


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())

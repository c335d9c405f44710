# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Original configs -> `VideoChatConfig`.

InternVideo2-Chat ships a remote-code `config.json` with a `model_config` block; VideoChat2 and VideoChat use
Ask-Anything's JSON files (`{"model": {...}}`). Dimensions the original code takes from the hub (BERT, the LLM) or
hard-codes come from the preset record; the LLM's own `config.json` replaces the record's text config; the test
fixtures' extra entries (`tiny_overrides`, `_qformer_bert_config (...)`, ...) replace the rest.
"""

from fractions import Fraction

from transformers import AutoConfig

from ..configuration_videochat import VideoChatConfig
from .presets import Preset, build_config


# LoRA used by every released VideoChat2 stage-3/4 checkpoint (r 16, alpha 32) when the config does not say
DEFAULT_LORA_R, DEFAULT_LORA_ALPHA = 16, 32
_BERT_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "layer_norm_eps",
    "hidden_act",
    "pad_token_id",
)
_DROPPED_LLM_CONFIG_KEYS = (
    "architectures",
    "torch_dtype",
    "dtype",
    "transformers_version",
    "_name_or_path",
    "auto_map",
)


def model_block(original_config: dict) -> dict:
    """The `model` block of an Ask-Anything config (the whole dict when it has none)."""
    return original_config.get("model", original_config)


def _private_entry(original_config: dict, prefix: str):
    """A fixture's `_<name> (...)` entry, whose key carries a free-text explanation after the name."""
    return next((value for key, value in original_config.items() if key.startswith(prefix)), None)


def lora_scaling(layout: str, original_config: dict | None) -> float | None:
    """`lora_alpha / lora_r` of the original config; `None` when LoRA is off (InternVideo2-Chat `use_lora: false`)."""
    if original_config is None:
        return None
    if layout == "internvideo2_chat":
        llm = original_config.get("model_config", {}).get("llm", {})
        return float(llm["lora_alpha"]) / float(llm["lora_r"]) if llm.get("use_lora", False) else None
    model = model_block(original_config)
    return float(model.get("lora_alpha", DEFAULT_LORA_ALPHA)) / float(model.get("lora_r", DEFAULT_LORA_R))


def text_config_fields(llm_config: dict) -> dict:
    """The base LLM's `config.json` without the entries that describe the file rather than the model."""
    return {key: value for key, value in llm_config.items() if key not in _DROPPED_LLM_CONFIG_KEYS}


def text_config_from_llm(llm_config: dict):
    """The base LLM's `config.json` -> an in-tree config object (replaces the record's text config entirely)."""
    fields = text_config_fields(llm_config)
    model_type = fields.pop("model_type", None)
    if model_type is None:
        raise ValueError("the LLM config.json has no `model_type`")
    return AutoConfig.for_model(model_type, **fields)


# ---------------------------------------------------------------------------------------------------------------------
# InternVideo2-Chat
# ---------------------------------------------------------------------------------------------------------------------


def _ratio(value) -> float:
    return float(Fraction(value)) if isinstance(value, str) else float(value)


def _internvideo2_vision_fields(model_config: dict, overrides: dict) -> dict:
    vision_source = model_config.get("vision_encoder", {})
    vision = {
        "num_frames": int(vision_source.get("num_frames", 8)),
        "tubelet_size": int(vision_source.get("tubelet_size", 1)),
        "image_size": int(vision_source.get("img_size", 224)),
        "patch_size": int(vision_source.get("patch_size", 14)),
    }
    ctor = overrides.get("vision_encoder_ctor")
    if ctor:
        built = ctor.get("blocks_built", ctor["depth"] + vision_source.get("x_vis_return_idx", -2) + 1)
        vision.update(
            hidden_size=ctor["embed_dim"],
            num_attention_heads=ctor["num_heads"],
            intermediate_size=int(ctor["embed_dim"] * _ratio(ctor["mlp_ratio"])),
            num_hidden_layers=int(built),
            attention_bias=bool(ctor.get("qkv_bias", False)),
            use_qk_norm=bool(ctor.get("qk_normalization", True)),
            layer_scale_init_value=float(ctor.get("init_values", 1e-5)),
        )
    return vision


def _internvideo2_qformer_fields(overrides: dict) -> dict:
    bert = next((value for key, value in overrides.items() if key.startswith("qformer_bert_config")), None)
    if not bert:
        return {}
    fields = {key: bert[key] for key in _BERT_FIELDS if key in bert}
    fields["vocab_size"] = int(overrides.get("qformer_vocab_after_[DEC]", bert["vocab_size"] + 1))
    return fields


def internvideo2_chat_config(
    original_config: dict, preset: Preset, text_config: dict | None = None
) -> VideoChatConfig:
    """Our config from an InternVideo2-Chat `config.json` (`model_config` layout); `text_config` (the LLM's own
    config, already in an in-tree layout) replaces the record's entirely (no record field survives: the rope
    settings of InternLM2.5's base LLM differ from the chat model's)."""
    model_config = original_config.get("model_config", {})
    bridge = model_config.get("bridge", {})
    overrides = original_config.get("tiny_overrides", {})
    fields = {
        "vision_config": _internvideo2_vision_fields(model_config, overrides),
        "qformer_config": _internvideo2_qformer_fields(overrides),
        "num_query_tokens": int(bridge.get("num_query_token", 32)),
        "num_extra_query_tokens": int(bridge.get("extra_num_query_token", 64)),
    }
    if text_config is not None:
        fields["text_config"] = text_config_from_llm(text_config)
    return build_config(preset.name, **fields)


# ---------------------------------------------------------------------------------------------------------------------
# VideoChat2 and VideoChat v1
# ---------------------------------------------------------------------------------------------------------------------


def _umt_vision_fields(model: dict) -> dict:
    encoder = model.get("vision_encoder", {})
    fields = {}
    if "encoder_embed_dim" in encoder:
        hidden = int(encoder["encoder_embed_dim"])
        fields.update(hidden_size=hidden, intermediate_size=4 * hidden)
    if "encoder_depth" in encoder:
        fields["num_hidden_layers"] = int(encoder["encoder_depth"]) + int(encoder.get("return_index", -2)) + 1
    for ours, theirs in (
        ("num_attention_heads", "encoder_num_heads"),
        ("patch_size", "patch_size"),
        ("image_size", "img_size"),
        ("tubelet_size", "tubelet_size"),
    ):
        if theirs in encoder:
            fields[ours] = int(encoder[theirs])
    # `num_frames` / `ckpt_num_frame` of the config are never passed to the ViT: its table is built for 4 frames
    return fields


def _eva_vision_fields(original_config: dict, model: dict) -> dict:
    fields = {}
    if "img_size" in model:
        fields["image_size"] = int(model["img_size"])
    if "gmhra_layers" in model:
        fields["num_gmhra_layers"] = int(model["gmhra_layers"])
    tiny = _private_entry(original_config, "_vision_encoder_tiny")
    if tiny:
        hidden, ratio = int(tiny["embed_dim"]), float(tiny["mlp_ratio"])
        fields.update(
            hidden_size=hidden,
            intermediate_size=int(hidden * ratio),
            gmhra_mlp_ratio=ratio,
            num_hidden_layers=int(tiny["depth"]),
            num_attention_heads=int(tiny["num_heads"]),
            patch_size=int(tiny["patch_size"]),
            layer_norm_eps=float(tiny.get("norm_eps", 1e-6)),
        )
        gmhra_indices = tiny.get("gmhra_layer_idx")
        if gmhra_indices is not None:
            _check_gmhra_indices(
                gmhra_indices, fields["num_hidden_layers"], fields.get("num_gmhra_layers", len(gmhra_indices))
            )
    return fields


def _check_gmhra_indices(indices: list[int], depth: int, num_gmhra: int) -> None:
    """Our encoder runs GMHRA block j after ViT block `depth - num_gmhra + j`, which is what the original's descending
    `gmhra_layer_idx = [depth - 1, ..., depth - num_gmhra]` means; refuse anything else."""
    expected = list(range(depth - 1, depth - 1 - num_gmhra, -1))
    if list(indices) != expected:
        raise ValueError(
            f"unsupported gmhra_layer_idx {indices}: only the last blocks in descending order {expected} are supported"
        )


def _videochat2_qformer_fields(original_config: dict, uses_text: bool) -> dict:
    fields = {"use_qformer_text_input": uses_text}
    bert = _private_entry(original_config, "_qformer_bert_config")
    if bert:
        fields.update({key: bert[key] for key in _BERT_FIELDS if key in bert})
        if uses_text:
            fields["vocab_size"] = int(
                _private_entry(original_config, "_qformer_tokenizer_len_after") or bert["vocab_size"] + 1
            )
    return fields


def videochat2_config(original_config: dict, preset: Preset, llm_config: dict | None = None) -> VideoChatConfig:
    """Our config from a VideoChat2 / VideoChat config (`llm_config` = the base LLM's own `config.json`, which
    replaces the record's text config)."""
    model = model_block(original_config)
    if preset.layout == "videochat_v1":
        vision, uses_text = _eva_vision_fields(original_config, model), False
    else:
        vision, uses_text = _umt_vision_fields(model), bool(model.get("qformer_text_input", True))
    fields = {
        "vision_config": vision,
        "qformer_config": _videochat2_qformer_fields(original_config, uses_text),
        "num_query_tokens": int(model.get("num_query_token", 32)),
        "num_extra_query_tokens": int(model.get("extra_num_query_token", 64)),
    }
    if llm_config is not None:
        fields["text_config"] = text_config_from_llm(llm_config)
    return build_config(preset.name, **fields)


__all__ = [
    "internvideo2_chat_config",
    "lora_scaling",
    "model_block",
    "text_config_from_llm",
    "videochat2_config",
]

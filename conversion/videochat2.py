# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""VideoChat2 (Vicuna, Mistral, HD-Mistral, Phi-3) and VideoChat v1: original config -> `VideoChatConfig`, original
files (stage checkpoint + base LLM folder [+ EVA ViT-g + BLIP-2 Q-Former for v1]) -> our state dict.

The original configs are Ask-Anything's JSON files (`video_chat2/configs/config*.json`, `video_chat/configs/
config*.json`: `{"model": {...}, "device": ...}`) or the fixtures' `original_config.json` (same `model` block plus
`_*` entries that replace hub files for the tiny models). Dimensions the original code takes from the hub (BERT,
the LLM) or hard-codes come from the preset; the LLM's own `config.json` replaces the preset's text config.
"""

import json
from pathlib import Path
from typing import Iterator, Mapping

import torch
from transformers import AutoConfig

from videochat.configuration_videochat import VideoChatConfig
from videochat.presets import get_preset_config

from .checkpoint_io import open_checkpoint
from .keymap import ConversionPlan, KeyMap, convert_state_dict
from .layouts.videochat2 import VIDEOCHAT2_VARIANTS
from .layouts.videochat_v1 import VIDEOCHAT_V1_KEY_MAP


VARIANT_PRESETS = {
    "vicuna": "videochat2-vicuna-7b",
    "mistral": "videochat2-mistral-7b",
    "hd_mistral": "videochat2-hd-mistral-7b",
    "phi": "videochat2-phi3-mini",
    "v1": "videochat-7b",
}
# LoRA used by every released stage-3/4 checkpoint (r 16, alpha 32) when the config does not say
DEFAULT_LORA_R, DEFAULT_LORA_ALPHA = 16, 32
_BERT_FIELDS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "max_position_embeddings",
                "layer_norm_eps", "hidden_act", "pad_token_id")
_DROPPED_LLM_CONFIG_KEYS = ("architectures", "torch_dtype", "dtype", "transformers_version", "_name_or_path")


def model_block(original_config: dict) -> dict:
    """The `model` block of an original config (the whole dict when it has none)."""
    return original_config.get("model", original_config)


def _private_entry(original_config: dict, prefix: str):
    """A fixture's `_<name> (...)` entry, whose key carries a free-text explanation after the name."""
    return next((value for key, value in original_config.items() if key.startswith(prefix)), None)


def detect_variant(original_config: dict) -> str:
    """`"vicuna"`, `"mistral"`, `"hd_mistral"`, `"phi"` (VideoChat2) or `"v1"` (VideoChat) from the config's keys."""
    model = model_block(original_config)
    model_cls = str(model.get("model_cls", ""))
    if "vit_model" in model or "gmhra_layers" in model:
        return "v1"
    if "phi_model_path" in model or "phi" in model_cls.lower():
        return "phi"
    if "mistral_model_path" in model or "mistral" in model_cls.lower():
        return "hd_mistral" if "dynamic_config" in model or "hd" in model_cls.lower() else "mistral"
    if "llama_model_path" in model or "vision_encoder" in model:
        return "vicuna"
    raise ValueError(
        "cannot tell which VideoChat2 / VideoChat model this config describes: expected a `model` block with "
        "`llama_model_path`, `mistral_model_path`, `phi_model_path` (VideoChat2) or `vit_model` (VideoChat v1)"
    )


def lora_scaling(original_config: dict) -> float:
    """`lora_alpha / lora_r` of the config (the released checkpoints' 32 / 16 = 2.0 when absent)."""
    model = model_block(original_config)
    return float(model.get("lora_alpha", DEFAULT_LORA_ALPHA)) / float(model.get("lora_r", DEFAULT_LORA_R))


def _umt_vision_fields(model: dict) -> dict:
    encoder = model.get("vision_encoder", {})
    fields = {}
    if "encoder_embed_dim" in encoder:
        hidden = int(encoder["encoder_embed_dim"])
        fields.update(hidden_size=hidden, intermediate_size=4 * hidden)
    if "encoder_depth" in encoder:
        fields["num_hidden_layers"] = int(encoder["encoder_depth"]) + int(encoder.get("return_index", -2)) + 1
    for ours, theirs in (("num_attention_heads", "encoder_num_heads"), ("patch_size", "patch_size"),
                         ("image_size", "img_size"), ("tubelet_size", "tubelet_size")):
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
        fields.update(hidden_size=hidden, intermediate_size=int(hidden * ratio), gmhra_mlp_ratio=ratio,
                      num_hidden_layers=int(tiny["depth"]), num_attention_heads=int(tiny["num_heads"]),
                      patch_size=int(tiny["patch_size"]), layer_norm_eps=float(tiny.get("norm_eps", 1e-6)))
        gmhra_indices = tiny.get("gmhra_layer_idx")
        if gmhra_indices is not None:
            _check_gmhra_indices(gmhra_indices, fields["num_hidden_layers"], fields.get("num_gmhra_layers", len(gmhra_indices)))
    return fields


def _check_gmhra_indices(indices: list[int], depth: int, num_gmhra: int) -> None:
    """Our encoder runs GMHRA block j after ViT block `depth - num_gmhra + j`, which is what the original's descending
    `gmhra_layer_idx = [depth - 1, ..., depth - num_gmhra]` means; refuse anything else."""
    expected = list(range(depth - 1, depth - 1 - num_gmhra, -1))
    if list(indices) != expected:
        raise ValueError(f"unsupported gmhra_layer_idx {indices}: only the last blocks in descending order {expected} are supported")


def _qformer_fields(original_config: dict, model: dict, uses_text: bool) -> dict:
    fields = {"use_text_input": uses_text}
    bert = _private_entry(original_config, "_qformer_bert_config")
    if bert:
        fields.update({key: bert[key] for key in _BERT_FIELDS if key in bert})
        if uses_text:
            fields["vocab_size"] = int(_private_entry(original_config, "_qformer_tokenizer_len_after") or bert["vocab_size"] + 1)
    return fields


def text_config_from_llm(llm_config: dict):
    """The base LLM's `config.json` -> an in-tree config object (replaces the preset's text config entirely)."""
    fields = {key: value for key, value in llm_config.items() if key not in _DROPPED_LLM_CONFIG_KEYS}
    model_type = fields.pop("model_type", None)
    if model_type is None:
        raise ValueError("the LLM config.json has no `model_type`")
    return AutoConfig.for_model(model_type, **fields)


def preset_name(variant: str, llm_config: dict | None = None) -> str:
    if variant == "v1" and llm_config is not None and int(llm_config.get("hidden_size", 4096)) == 5120:
        return "videochat-13b"
    return VARIANT_PRESETS[variant]


def config_from_original(original_config: dict, llm_config: dict | None = None, preset: str | None = None) -> VideoChatConfig:
    """Build our config from an original VideoChat2 / VideoChat config (`llm_config` = the base LLM's own
    `config.json`, which replaces the preset's text config)."""
    variant = detect_variant(original_config)
    model = model_block(original_config)
    if variant == "v1":
        vision = _eva_vision_fields(original_config, model)
        uses_text = False
    else:
        vision = _umt_vision_fields(model)
        uses_text = bool(model.get("qformer_text_input", True))
    fields = {
        "vision_config": vision,
        "qformer_config": _qformer_fields(original_config, model, uses_text),
        "num_query_tokens": int(model.get("num_query_token", 32)),
        "num_extra_query_tokens": int(model.get("extra_num_query_token", 64)),
    }
    if llm_config is not None:
        fields["text_config"] = text_config_from_llm(llm_config)
    return get_preset_config(preset or preset_name(variant, llm_config), **fields)


class CombinedSources(Mapping):
    """Read-only `{key: tensor}` view over several checkpoints, each re-prefixed into one namespace; tensors are read
    from the underlying (lazy) mappings on access. Two files providing the same key is an error."""

    def __init__(self, parts: list[tuple[str, Mapping]]):
        self._index: dict[str, tuple[Mapping, str]] = {}
        for prefix, mapping in parts:
            for key in mapping:
                combined = prefix + key
                if combined in self._index:
                    raise ValueError(f"two source files provide {combined!r}")
                self._index[combined] = (mapping, key)

    def source_of(self, key: str) -> tuple[Mapping, str]:
        return self._index[key]

    def __getitem__(self, key: str):
        mapping, source_key = self._index[key]
        return mapping[source_key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


def llm_prefix(stage_keys, llm_attr: str) -> str:
    """`<llm>.base_model.model.` when the stage checkpoint holds PEFT-wrapped (LoRA) LLM keys, else `<llm>.`."""
    peft_prefix = f"{llm_attr}.base_model.model."
    return peft_prefix if any(key.startswith(peft_prefix) for key in stage_keys) else f"{llm_attr}."


def combined_sources(
    variant: str, stage: Mapping, llm: Mapping, eva: Mapping | None = None, blip2: Mapping | None = None
) -> tuple[KeyMap, CombinedSources]:
    """The key map of `variant` and the original files merged into the namespace it reads (see the layouts)."""
    if variant == "v1":
        if eva is None or blip2 is None:
            raise ValueError("VideoChat v1 conversion needs the EVA ViT-g file (eva_vit_g.pth) and the BLIP-2 Q-Former file")
        parts = [("", stage), ("visual_encoder.", eva), ("blip2.", blip2), (llm_prefix(stage, "llama_model"), llm)]
        return VIDEOCHAT_V1_KEY_MAP, CombinedSources(parts)
    if variant not in VIDEOCHAT2_VARIANTS:
        raise ValueError(f"unknown VideoChat2 variant {variant!r} (known: {sorted(VIDEOCHAT2_VARIANTS)}, 'v1')")
    key_map, llm_attr, _ = VIDEOCHAT2_VARIANTS[variant]
    return key_map, CombinedSources([("", stage), (llm_prefix(stage, llm_attr), llm)])


def convert_videochat2(
    original_config: dict, stage: Mapping, llm: Mapping, eva: Mapping | None = None, blip2: Mapping | None = None
) -> tuple[dict[str, torch.Tensor], ConversionPlan]:
    """Original tensors (stage checkpoint, base LLM [, EVA ViT-g, BLIP-2]) -> our state dict, LoRA folded in."""
    key_map, sources = combined_sources(detect_variant(original_config), stage, llm, eva, blip2)
    return convert_state_dict(key_map, sources, lora_scaling(original_config))


def read_json(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    return json.loads(path.read_text())


def convert_from_files(
    original_config: dict | str | Path,
    stage_checkpoint: str | Path,
    llm_dir: str | Path,
    eva_checkpoint: str | Path | None = None,
    blip2_checkpoint: str | Path | None = None,
) -> tuple[VideoChatConfig, dict[str, torch.Tensor], ConversionPlan]:
    """Convert original files: the stage `.pth` (`{"model": sd}`, bare or DeepSpeed `{"module": sd}`), the base LLM
    folder (HF layout with `config.json`) and, for VideoChat v1, `eva_vit_g.pth` and the BLIP-2 file."""
    if not isinstance(original_config, dict):
        original_config = read_json(original_config)
    llm_dir = Path(llm_dir)
    llm_config = read_json(llm_dir / "config.json")
    config = config_from_original(original_config, llm_config)
    eva = open_checkpoint(eva_checkpoint) if eva_checkpoint is not None else None
    blip2 = open_checkpoint(blip2_checkpoint) if blip2_checkpoint is not None else None
    state_dict, plan = convert_videochat2(original_config, open_checkpoint(stage_checkpoint), open_checkpoint(llm_dir), eva, blip2)
    return config, state_dict, plan


__all__ = [
    "CombinedSources",
    "combined_sources",
    "config_from_original",
    "convert_from_files",
    "convert_videochat2",
    "detect_variant",
    "lora_scaling",
]

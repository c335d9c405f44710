# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""What is being converted: the one place that looks at a source and decides which released model it is.

A source is an InternVideo2-Chat hub snapshot (sharded safetensors + index + remote-code `config.json`), a single
`.pth` / `.bin` / `.safetensors` file with its original config next to it, a VideoChat2 / VideoChat stage file (with
the base LLM folder, and for v1 the EVA ViT-g and BLIP-2 files), or a folder laid out like the ones `videochat demo`
writes: `original_checkpoint.*`, `original_config.json` and optionally `llm/` or `lm_config/`, `llm_tokenizer/`,
`qformer_tokenizer/`, `eva_vit_g.pth`, `blip2_qformer.pth`.

An InternVideo2 foundation checkpoint (stage-1 classifier or distillation checkpoint, stage-2 video-text model) is a
`.pth` / `.pt` / `.bin` / `.safetensors` file or a folder holding `original_checkpoint.*`; `detect_source_family`
tells it from the chat models' sources and `detect_internvideo2_kind` tells its kind, both from key names.

`detect_preset` maps (original config, checkpoint keys, path, LLM config) to a preset record; `open_source` gathers
the lazily opened tensors, the key map, our config and the LoRA scaling into a `ConversionSource`.
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..configuration_videochat import VideoChatConfig
from .checkpoint_io import CombinedSources, SourceTensors, checkpoint_files, open_checkpoint
from .key_maps import key_map_for
from .key_maps.internlm2 import is_internlm2_config, llama_text_config_from_internlm2
from .keymap import KeyMap
from .original_config import (
    internvideo2_chat_config,
    lora_scaling,
    model_block,
    text_config_from_llm,
    videochat2_config,
)
from .presets import Preset, build_config, get_preset, is_internvideo2_preset, presets_with_layout


ORIGINAL_CHECKPOINT_NAMES = ("original_checkpoint.safetensors", "original_checkpoint.pth", "original_checkpoint.bin")
# the InternVideo2 converter has always preferred the pickle when a folder holds both
INTERNVIDEO2_CHECKPOINT_NAMES = (
    "original_checkpoint.pth",
    "original_checkpoint.bin",
    "original_checkpoint.safetensors",
)
ORIGINAL_CONFIG_NAMES = ("original_config.json", "config.json")
_HD_WORD = r"(?i)(^|[_\-/. (])hd([_\-/. )]|$)"


class ConversionError(ValueError):
    """The source cannot be converted as asked (the message names the problem)."""


@dataclass
class ConversionSource:
    """Everything needed to convert one original model: where the tensors are, how their names map, our config."""

    preset: Preset
    checkpoint: SourceTensors
    key_map: KeyMap
    config: VideoChatConfig
    files: list[Path]
    lora_scaling: float | None = None
    tokenizer_dir: Path | None = None
    qformer_tokenizer_dir: Path | None = None
    notes: list[str] = field(default_factory=list)


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ConversionError(f"{path} is not valid JSON: {error}") from None


def original_config_next_to(path: Path) -> tuple[dict | None, Path | None]:
    folder = path if path.is_dir() else path.parent
    for name in ORIGINAL_CONFIG_NAMES:
        if (folder / name).is_file():
            config = read_json(folder / name)
            if "model_config" in config or "model" in config:
                return config, folder / name
    return None, None


# ---------------------------------------------------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------------------------------------------------


def detect_layout(original_config: dict | None, keys) -> str:
    """`"internvideo2_chat"`, `"videochat2"` or `"videochat_v1"` from the original config, else from key names."""
    if original_config is not None:
        if "model_config" in original_config:
            return "internvideo2_chat"
        model = model_block(original_config)
        return "videochat_v1" if "vit_model" in model or "gmhra_layers" in model else "videochat2"
    keys = list(keys)
    if any(key.startswith("visual_encoder.gmhra") for key in keys):
        return "videochat_v1"
    if any(key.startswith("vision_encoder.encoder.") for key in keys):
        return "videochat2"
    return "internvideo2_chat"


def says_hd(original_config: dict | None, source: Path) -> bool:
    """The original config (`variant`, `_name_or_path`, `dynamic_config`, the class name) or the path names the HD
    model; HD and non-HD InternVideo2-Chat share their hub `config.json`."""
    config = original_config or {}
    if "dynamic_config" in model_block(config):
        return True
    text = f"{config.get('variant', '')} {config.get('_name_or_path', '')} {original_class_of(config) or ''}"
    text = re.sub(r"(?i)non-hd", "", text)
    return re.search(_HD_WORD, text) is not None or re.search(_HD_WORD, str(source)) is not None


def original_class_of(original_config: dict | None) -> str | None:
    if not original_config:
        return None
    return original_config.get("model_cls") or model_block(original_config).get("model_cls")


def _llm_of_videochat2(model: dict) -> str | None:
    for prefix in ("mistral", "phi", "llama"):
        if f"{prefix}_model_path" in model:
            return prefix
    return None


def _uses_internlm2(original_config: dict | None, keys, llm_config: dict | None) -> bool:
    llm_name = str(((original_config or {}).get("model_config") or {}).get("llm", {}).get("name", ""))
    return (
        "internlm" in llm_name.lower()
        or (llm_config is not None and is_internlm2_config(llm_config))
        or any(".attention.wqkv." in key for key in keys)
    )


def detect_preset(source: Path, original_config: dict | None, keys, llm_config: dict | None = None) -> Preset:
    """The released model `source` is (see the module docstring)."""
    keys = list(keys)
    layout = detect_layout(original_config, keys)
    candidates = presets_with_layout(layout)
    if layout == "internvideo2_chat":
        internlm2 = _uses_internlm2(original_config, keys, llm_config)
        candidates = [p for p in candidates if (p.config["text_config"]["vocab_size"] == 92544) == internlm2]
        if not internlm2:
            candidates = [p for p in candidates if p.is_hd == says_hd(original_config, source)]
    elif layout == "videochat2":
        model = model_block(original_config or {})
        by_class = [p for p in candidates if original_class_of(original_config) == p.original_class]
        llm = _llm_of_videochat2(model)
        by_llm = [
            p
            for p in candidates
            if llm
            and p.config["text_config"]["model_type"] == {"mistral": "mistral", "phi": "phi3", "llama": "llama"}[llm]
        ]
        candidates = by_class or by_llm or candidates
        if len(candidates) > 1:
            candidates = [p for p in candidates if p.is_hd == says_hd(original_config, source)]
    else:
        hidden = int((llm_config or {}).get("hidden_size", 4096))
        candidates = [p for p in candidates if (p.config["text_config"]["hidden_size"] == 5120) == (hidden == 5120)]
    if len(candidates) != 1:
        names = ", ".join(p.name for p in candidates) or "none"
        raise ConversionError(f"cannot tell which released model {source} is (candidates: {names}); pass --preset")
    return candidates[0]


# ---------------------------------------------------------------------------------------------------------------------
# InternVideo2 foundation models or chat models?
# ---------------------------------------------------------------------------------------------------------------------


def internvideo2_kind(keys) -> str | None:
    """`"video_text"` (stage 2), `"classifier"` (stage-1 fine-tune), `"features"` (stage-1 distillation) or `None`
    (not an InternVideo2 foundation checkpoint)."""
    keys = set(keys)
    if any(key.startswith("vision_encoder.") for key in keys) and any(key.startswith("text_encoder.") for key in keys):
        return "video_text"
    if "head.weight" in keys and "clip_projector.cross_attn.proj.weight" in keys:
        return "classifier"
    if "clip_projector.cross_attn.proj.weight" in keys and "cls_token" in keys:
        return "features"
    return None


def detect_internvideo2_kind(keys) -> str:
    """`internvideo2_kind`, refusing keys that are not an InternVideo2 foundation checkpoint."""
    keys = set(keys)
    kind = internvideo2_kind(keys)
    if kind is None:
        raise ConversionError(
            "not an InternVideo2 foundation checkpoint (expected stage-1 keys `blocks.N.*`, `clip_projector.*` or "
            f"stage-2 keys `vision_encoder.*` + `text_encoder.*`); first keys: {sorted(keys)[:8]}"
        )
    return kind


def internvideo2_checkpoint_files(source: str | Path) -> list[Path]:
    """The checkpoint file(s) of an InternVideo2 foundation source: a folder's `original_checkpoint.*`, else the
    file or the folder's weights."""
    source = Path(source)
    if source.is_dir():
        for name in INTERNVIDEO2_CHECKPOINT_NAMES:
            if (source / name).is_file():
                return [source / name]
    return checkpoint_files(source)


def detect_source_family(source: str | Path, preset: str | None = None) -> str:
    """`"internvideo2"` for an InternVideo2 foundation checkpoint, `"videochat"` for the chat models
    (InternVideo2-Chat, VideoChat2, VideoChat). A `preset` decides; otherwise a source with a chat model's original
    config is a chat model, and any other is told by its key names (read lazily: safetensors headers, memory-mapped
    pickles). A source that cannot be read is left to the chat path, which reports the problem as it always has."""
    if preset is not None:
        return "internvideo2" if is_internvideo2_preset(preset) else "videochat"
    source = Path(source).expanduser()
    if not source.exists() or original_config_next_to(source)[0] is not None:
        return "videochat"
    try:
        keys = SourceTensors(internvideo2_checkpoint_files(source)).keys()
    except Exception:  # unreadable (missing files, unsafe or broken pickle, bad header): the chat path reports it
        return "videochat"
    return "internvideo2" if internvideo2_kind(keys) is not None else "videochat"


# ---------------------------------------------------------------------------------------------------------------------
# Does the source fit an explicitly chosen preset?
# ---------------------------------------------------------------------------------------------------------------------

# Vocabulary sizes that name one LLM family among the released models (32000 is both Llama and Mistral v0.2).
FAMILY_OF_VOCABULARY = {32001: "llama", 32064: "phi3", 32768: "mistral", 92544: "internlm2"}
FAMILY_OF_STAGE_PREFIX = {"llama_model.": "llama", "mistral_model.": "mistral", "phi_model.": "phi3"}
FAMILY_NAMES = {"llama": "Llama / Vicuna", "mistral": "Mistral", "phi3": "Phi-3", "internlm2": "InternLM2"}


def preset_llm_family(preset: Preset) -> str:
    return "internlm2" if "internlm2" in preset.key_map else preset.config["text_config"]["model_type"]


def llm_family_evidence(
    original_config: dict | None, llm_config: dict | None, shapes: dict[str, tuple[int, ...]]
) -> list[tuple[str, str]]:
    """`(family, why)` pairs the source gives about its LLM: the LLM's config, the original config, the weights'
    names and the vocabulary size of their embedding (see `FAMILY_OF_VOCABULARY`)."""
    evidence = []
    if llm_config is not None:
        if is_internlm2_config(llm_config):
            evidence.append(("internlm2", "the LLM config.json is an InternLM2 config"))
        elif llm_config.get("model_type") in FAMILY_NAMES:
            evidence.append(
                (llm_config["model_type"], f"the LLM config.json has model_type {llm_config['model_type']!r}")
            )
    if original_config is not None:
        llm_name = str(((original_config.get("model_config") or {}).get("llm") or {}).get("name", "")).lower()
        for family in ("internlm2", "mistral", "phi3", "llama"):
            if family.rstrip("23") in llm_name:
                evidence.append((family, f"the original config names the LLM {llm_name!r}"))
                break
        prefix = _llm_of_videochat2(model_block(original_config))
        if prefix is not None:
            family = {"mistral": "mistral", "phi": "phi3", "llama": "llama"}[prefix]
            evidence.append((family, f"the original config has {prefix}_model_path"))
    keys = list(shapes)
    if any(".attention.wqkv." in key for key in keys):
        evidence.append(("internlm2", "the weights have InternLM2 `attention.wqkv` tensors"))
    elif any(".self_attn.qkv_proj." in key for key in keys):
        evidence.append(("phi3", "the weights have Phi-3 `qkv_proj` tensors"))
    for prefix, family in FAMILY_OF_STAGE_PREFIX.items():
        if any(key.startswith(prefix) for key in keys):
            evidence.append((family, f"the weights are named `{prefix}...`"))
    for key, shape in shapes.items():
        if key.endswith(("embed_tokens.weight", "tok_embeddings.weight")) and shape[0] in FAMILY_OF_VOCABULARY:
            evidence.append((FAMILY_OF_VOCABULARY[shape[0]], f"the LLM vocabulary has {shape[0]} tokens ({key})"))
            break
    return evidence


def hd_evidence(original_config: dict | None) -> tuple[bool, str] | None:
    """`(is_hd, why)` when the original config tells whether the model is HD (`dynamic_config`, an `_hd_` class,
    an explicit `variant`), else `None`."""
    if not original_config:
        return None
    model = model_block(original_config)
    if "dynamic_config" in model:
        return True, "the original config has `dynamic_config` (HD tiling)"
    original_class = original_class_of(original_config) or ""
    if "_hd" in original_class.lower():
        return True, f"the original config's model_cls is {original_class!r}"
    if original_class.startswith("VideoChat2_it"):
        return False, f"the original config's model_cls is {original_class!r}"
    described = f"{original_config.get('variant', '')} {original_config.get('_name_or_path', '')}"
    if re.search(r"(?i)non-hd", described):
        return False, f"the original config describes {described.strip()!r}"
    if re.search(_HD_WORD, described):
        return True, f"the original config describes {described.strip()!r}"
    return None


def _suggested_presets(layout: str, family: str | None, is_hd: bool | None) -> str:
    names = [
        p.name
        for p in presets_with_layout(layout)
        if (family is None or preset_llm_family(p) == family) and (is_hd is None or p.is_hd == is_hd)
    ]
    return " or ".join(f"--preset {name}" for name in names) or "another --preset"


def check_source_fits_preset(
    preset: Preset,
    source: Path,
    original_config: dict | None,
    llm_config: dict | None,
    shapes: dict[str, tuple[int, ...]],
) -> None:
    """Refuse an explicitly chosen preset that the source contradicts (naming both): another checkpoint layout,
    another original model class, another LLM family, HD versus non-HD."""
    if original_config is not None:
        layout = detect_layout(original_config, shapes)
        if layout != preset.layout:
            raise ConversionError(
                f"{source} is a {layout} checkpoint (from its original config) but preset {preset.name!r} is a "
                f"{preset.layout} model; use {_suggested_presets(layout, None, None)} or omit --preset"
            )
        original_class = original_class_of(original_config)
        if original_class and preset.original_class and original_class != preset.original_class:
            raise ConversionError(
                f"{source} is a {original_class} checkpoint (model_cls of its original config) but preset "
                f"{preset.name!r} converts {preset.original_class}; omit --preset to detect it"
            )
    expected = preset_llm_family(preset)
    for family, why in llm_family_evidence(original_config, llm_config, shapes):
        if family != expected:
            raise ConversionError(
                f"the checkpoint's LLM is {FAMILY_NAMES[family]} ({why}) but preset {preset.name!r} is a "
                f"{FAMILY_NAMES.get(expected, expected)} model; use "
                f"{_suggested_presets(preset.layout, family, None)} or omit --preset"
            )
    found = hd_evidence(original_config)
    if found is not None and found[0] != preset.is_hd:
        kind = "an HD" if found[0] else "a non-HD"
        raise ConversionError(
            f"{source} is {kind} checkpoint ({found[1]}) but preset {preset.name!r} is "
            f"{'an HD' if preset.is_hd else 'a non-HD'} model; use "
            f"{_suggested_presets(preset.layout, expected, found[0])} or omit --preset"
        )


def _shapes_of(*checkpoints) -> dict[str, tuple[int, ...]]:
    return {key: tuple(checkpoint.shape(key)) for checkpoint in checkpoints for key in checkpoint.keys()}


# ---------------------------------------------------------------------------------------------------------------------
# Opening a source
# ---------------------------------------------------------------------------------------------------------------------


def _tokenizer_dir_in(folder: Path | None) -> Path | None:
    if folder is None:
        return None
    for candidate in (folder / "llm_tokenizer", folder / "tokenizer", folder):
        if any((candidate / name).is_file() for name in ("tokenizer.json", "tokenizer.model")):
            return candidate
    return None


def _qformer_tokenizer_dir_in(folder: Path) -> Path | None:
    candidate = folder / "qformer_tokenizer"
    return (
        candidate if (candidate / "vocab.txt").is_file() or (candidate / "tokenizer_config.json").is_file() else None
    )


def _checkpoint_files(source: Path) -> list[Path]:
    if source.is_dir() and not (source / "model.safetensors.index.json").is_file():
        for name in ORIGINAL_CHECKPOINT_NAMES:
            if (source / name).is_file():
                return [source / name]
    return checkpoint_files(source)


def _internvideo2_llm_config(llm: Path | None, folder: Path) -> tuple[dict | None, Path | None]:
    """The LLM `config.json` (`--llm DIR` or `lm_config/`), rewritten to Llama fields for InternLM2."""
    path = (llm / "config.json") if llm else (folder / "lm_config" / "config.json")
    if not path.is_file():
        return None, None
    config = read_json(path)
    return (llama_text_config_from_internlm2(config) if is_internlm2_config(config) else config), path


def _open_internvideo2_chat(
    source: Path, preset: Preset | None, paths: dict, original_config, config_path
) -> ConversionSource:
    folder = source if source.is_dir() else source.parent
    files = _checkpoint_files(source)
    checkpoint = SourceTensors(files)
    llm_config, llm_config_path = _internvideo2_llm_config(paths["llm"], folder)
    if preset is not None:
        raw_llm_config = read_json(llm_config_path) if llm_config_path is not None else None
        check_source_fits_preset(preset, source, original_config, raw_llm_config, _shapes_of(checkpoint))
    preset = preset or detect_preset(source, original_config, checkpoint.keys(), llm_config)
    if preset.requires_llm_config and llm_config is None:
        raise ConversionError(
            f"{preset.name} needs the base LLM's config.json (pass --llm DIR, or put it in {folder / 'lm_config'}): "
            "its rope settings are read from there, not assumed"
        )
    notes, scaling = [], lora_scaling(preset.layout, original_config)
    if original_config is not None:
        config = internvideo2_chat_config(original_config, preset, llm_config)
    else:
        notes.append(f"no original config.json next to {source}: using the real-size preset {preset.name!r}")
        config = build_config(preset.name, **({"text_config": text_config_from_llm(llm_config)} if llm_config else {}))
        if any(".lora_A." in key for key in checkpoint.keys()):
            scaling = 2.0
            notes.append("LoRA scaling not in a config: using the released r=16, alpha=32 (2.0)")
    extra = [path for path in (config_path, llm_config_path) if path is not None]
    return ConversionSource(
        preset=preset,
        checkpoint=checkpoint,
        key_map=key_map_for(preset, config),
        config=config,
        files=[*files, *extra],
        lora_scaling=scaling,
        tokenizer_dir=paths["tokenizer"] or _tokenizer_dir_in(paths["llm"]) or _tokenizer_dir_in(folder),
        qformer_tokenizer_dir=paths["qformer_tokenizer"] or _qformer_tokenizer_dir_in(folder),
        notes=notes,
    )


def _open_videochat2(
    source: Path, preset: Preset | None, paths: dict, original_config, config_path
) -> ConversionSource:
    """A VideoChat2 stage-3/4 `.pth` (+ base LLM folder) or VideoChat v1 (+ EVA ViT-g + BLIP-2 Q-Former files)."""
    folder = source if source.is_dir() else source.parent
    if original_config is None:
        raise ConversionError(f"no original config (original_config.json / config.json) next to {source}")
    stage_file = source if source.is_file() else folder / "original_checkpoint.pth"
    llm = paths["llm"] or folder / "llm"
    if not (llm / "config.json").is_file():
        raise FileNotFoundError(f"base LLM folder with config.json not found: {llm} (pass --llm DIR)")
    llm_config = read_json(llm / "config.json")
    stage, llm_checkpoint = open_checkpoint(stage_file), open_checkpoint(llm)
    if preset is not None:
        check_source_fits_preset(preset, source, original_config, llm_config, _shapes_of(stage, llm_checkpoint))
    preset = preset or detect_preset(source, original_config, stage.keys(), llm_config)
    config = videochat2_config(original_config, preset, llm_config)
    key_map = key_map_for(preset, config)
    parts = [("", stage)]
    extra_files = []
    if preset.layout == "videochat_v1":
        vit = paths["vit"] or folder / "eva_vit_g.pth"
        qformer = paths["qformer"] or folder / "blip2_qformer.pth"
        parts += [("visual_encoder.", open_checkpoint(vit)), ("blip2.", open_checkpoint(qformer))]
        extra_files = [vit, qformer]
    parts.append((key_map.llm_prefix(stage.keys()), llm_checkpoint))
    files = [stage_file, config_path, llm / "config.json", *checkpoint_files(llm), *extra_files]
    return ConversionSource(
        preset=preset,
        checkpoint=CombinedSources(parts),
        key_map=key_map,
        config=config,
        files=files,
        lora_scaling=lora_scaling(preset.layout, original_config),
        tokenizer_dir=paths["tokenizer"] or _tokenizer_dir_in(llm) or _tokenizer_dir_in(folder),
        qformer_tokenizer_dir=paths["qformer_tokenizer"] or _qformer_tokenizer_dir_in(folder),
    )


def open_source(
    source: str | Path,
    preset: str | None = None,
    llm=None,
    vit=None,
    qformer=None,
    tokenizer=None,
    qformer_tokenizer=None,
) -> ConversionSource:
    """Detect what `source` is and open it for conversion (the preset is detected unless given)."""
    source = Path(source).expanduser().resolve()
    if not source.exists():
        raise FileNotFoundError(f"source not found: {source}")
    paths = {
        name: Path(value).expanduser().resolve() if value is not None else None
        for name, value in dict(
            llm=llm, vit=vit, qformer=qformer, tokenizer=tokenizer, qformer_tokenizer=qformer_tokenizer
        ).items()
    }
    for name, path in paths.items():
        if path is not None and not path.exists():
            raise FileNotFoundError(f"--{name.replace('_', '-')} path not found: {path}")
    original_config, config_path = original_config_next_to(source)
    record = get_preset(preset) if preset is not None else None
    if record is not None and original_config is not None:
        found_layout = detect_layout(original_config, ())
        if found_layout != record.layout:
            raise ConversionError(
                f"{source} is a {found_layout} checkpoint (from its original config) but preset {record.name!r} is a "
                f"{record.layout} model; use {_suggested_presets(found_layout, None, None)} or omit --preset"
            )
    if record is not None:
        layout = record.layout
    elif original_config is not None:
        layout = detect_layout(original_config, ())
    elif paths["vit"] is not None or paths["qformer"] is not None:
        layout = "videochat_v1"
    elif paths["llm"] is not None:
        layout = "videochat2"
    else:
        layout = "internvideo2_chat"
    if layout == "internvideo2_chat":
        if paths["vit"] or paths["qformer"]:
            raise ConversionError("--vit / --qformer are only for VideoChat v1 sources")
        return _open_internvideo2_chat(source, record, paths, original_config, config_path)
    return _open_videochat2(source, record, paths, original_config, config_path)


__all__ = [
    "ConversionError",
    "ConversionSource",
    "check_source_fits_preset",
    "detect_internvideo2_kind",
    "detect_layout",
    "detect_preset",
    "detect_source_family",
    "internvideo2_checkpoint_files",
    "internvideo2_kind",
    "open_source",
    "read_json",
]

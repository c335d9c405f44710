# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Convert an original checkpoint into a verified, Hub-ready folder of our safetensors.

    videochat convert SOURCE OUTPUT [--preset P] [--llm DIR] [--vit FILE] [--qformer FILE] [--tokenizer DIR]
                      [--qformer-tokenizer DIR] [--dtype D] [--verify] [--push-to-hub REPO_ID]
    python -m conversion.convert SOURCE OUTPUT ...

SOURCE is an InternVideo2-Chat hub snapshot (sharded `model-*.safetensors` + index + remote-code `config.json` with
`model_config`), a single `.pth` / `.bin` / `.safetensors` file next to its original config, a fixture folder in the
`shared/fixtures` format, or a VideoChat2 / VideoChat stage file (with `--llm`, and `--vit`/`--qformer` for v1).

How it works: the source is opened lazily (safetensors via `safe_open`, pickles only with `weights_only=True`), the
declarative key map turns the key list into operations without reading a tensor, the resulting names and shapes are
checked against our model built on the meta device, and then every tensor is read, converted (LoRA folded, fused
projections split) and appended to a pre-planned safetensors shard, one tensor at a time. Everything is written to
a temporary folder next to OUTPUT that is renamed into place only when complete; `config.json` is written last.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from collections.abc import Mapping

from .checkpoint_io import LazyCheckpoint, checkpoint_files
from .keymap import ConversionPlan, KeyMap, Operation, run_operation, transform_shapes
from .streaming import (
    SafetensorsReader,
    ShardWriter,
    TensorSpec,
    fsync_directory,
    parse_size,
    plan_shards,
    read_safetensors_header,
    shard_file_names,
    write_index,
)


INTERNVIDEO2_CHAT_PRESETS = ("internvideo2-chat-8b-hd", "internvideo2-chat-8b", "internvideo2-chat-8b-internlm2_5")
VIDEOCHAT2_PRESETS = ("videochat2-vicuna-7b", "videochat2-mistral-7b", "videochat2-hd-mistral-7b", "videochat2-phi3-mini")
VIDEOCHAT_V1_PRESETS = ("videochat-7b", "videochat-13b")

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
          "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}

# Rows of a LoRA-folded weight computed per step (bounds the float32 working set of `W + s * B @ A`).

_SAMPLING = {"do_sample": True, "top_p": 0.9, "top_k": 0, "temperature": 1.0}
_GREEDY = {"do_sample": False}
_COMMON = {"num_beams": 1, "min_new_tokens": 1, "repetition_penalty": 1.0, "length_penalty": 1.0}

# Generation defaults of the original chat code per preset. `top_k=0` is "no top-k" (the originals pass
# `top_k=None`); `min_length=1` on inputs_embeds-only generation is `min_new_tokens=1`. Stop ids: the LLM's EOS
# plus the single-token stops of the demos; pad is never 0 (0 is the visual placeholder id).
GENERATION_DEFAULTS: dict[str, dict] = {
    # InternVideo2-Chat spec section 7 (`generate_caption`).
    "internvideo2-chat-8b-hd": {**_COMMON, **_SAMPLING, "max_new_tokens": 200, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2},
    "internvideo2-chat-8b": {**_COMMON, **_SAMPLING, "max_new_tokens": 200, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2},
    # [unverified] same generate_caption; InternLM2.5-chat ends a turn with <|im_end|> (92542).
    "internvideo2-chat-8b-internlm2_5": {**_COMMON, **_SAMPLING, "max_new_tokens": 200, "bos_token_id": 1,
                                         "eos_token_id": [2, 92542], "pad_token_id": 2},
    # VideoChat2 spec section 6.6 (notebooks, "describe"); stops of section 6.1-6.3.
    "videochat2-vicuna-7b": {**_COMMON, **_GREEDY, "max_new_tokens": 256, "bos_token_id": 1, "eos_token_id": [2, 835], "pad_token_id": 2},
    "videochat2-mistral-7b": {**_COMMON, **_GREEDY, "max_new_tokens": 512, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2},
    "videochat2-hd-mistral-7b": {**_COMMON, **_GREEDY, "max_new_tokens": 512, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2},
    "videochat2-phi3-mini": {**_COMMON, **_GREEDY, "max_new_tokens": 128, "bos_token_id": 1, "eos_token_id": [32000, 32007],
                             "pad_token_id": 32000},
    # VideoChat v1 gradio demo (section 6.6) with the Vicuna "###" stop.
    "videochat-7b": {**_COMMON, **_SAMPLING, "max_new_tokens": 1000, "bos_token_id": 1, "eos_token_id": [2, 835], "pad_token_id": 2},
    "videochat-13b": {**_COMMON, **_SAMPLING, "max_new_tokens": 1000, "bos_token_id": 1, "eos_token_id": [2, 835], "pad_token_id": 2},
}


class ConversionError(ValueError):
    """The source cannot be converted as asked (the message names the problem)."""


# ---------------------------------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class ConversionSource:
    """Everything needed to convert one original model: where the tensors are, how their names map, our config."""

    family: str
    preset: str
    checkpoint: "SourceTensors"
    key_map: KeyMap
    config: object
    files: list[Path]
    lora_scaling: float | None = None
    tokenizer_dir: Path | None = None
    qformer_tokenizer_dir: Path | None = None
    fixture_dir: Path | None = None
    notes: list[str] = field(default_factory=list)
    # optional per-source tensor hook: (our key, tensor) -> tensor (e.g. a layout fix a key map cannot express)
    postprocess: Callable[[str, torch.Tensor], torch.Tensor] | None = None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ConversionError(f"{path} is not valid JSON: {error}") from None


_HD_WORD = r"(?i)(^|[_\-/. (])hd([_\-/. )]|$)"


def _is_hd_path(path: Path) -> bool:
    return re.search(_HD_WORD, str(path)) is not None


def _config_says_hd(original_config: dict) -> bool:
    """`variant` / `_name_or_path` naming the HD model ("non-HD" does not count)."""
    text = f"{original_config.get('variant', '')} {original_config.get('_name_or_path', '')}"
    return re.search(_HD_WORD, re.sub(r"(?i)non-hd", "", text)) is not None


def _original_config_next_to(path: Path) -> tuple[dict | None, Path | None]:
    folder = path if path.is_dir() else path.parent
    for name in ("original_config.json", "config.json"):
        if (folder / name).is_file():
            return _read_json(folder / name), folder / name
    return None, None


def _uses_internlm2(original_config: dict | None, keys) -> bool:
    llm_name = str(((original_config or {}).get("model_config") or {}).get("llm", {}).get("name", ""))
    return "internlm" in llm_name.lower() or any(".attention.wqkv." in key for key in keys)


def detect_preset(source: Path, original_config: dict | None, keys) -> str:
    """Preset of an InternVideo2-Chat source, from its config, key names and path (HD and non-HD share config.json)."""
    if _uses_internlm2(original_config, keys):
        return "internvideo2-chat-8b-internlm2_5"
    if _config_says_hd(original_config or {}) or _is_hd_path(source):
        return "internvideo2-chat-8b-hd"
    return "internvideo2-chat-8b"


def _family_of(preset: str) -> str:
    if preset in INTERNVIDEO2_CHAT_PRESETS:
        return "internvideo2_chat"
    if preset in VIDEOCHAT2_PRESETS:
        return "videochat2"
    if preset in VIDEOCHAT_V1_PRESETS:
        return "videochat_v1"
    from videochat.presets import preset_names

    raise ConversionError(f"unknown preset {preset!r}; known presets: {', '.join(preset_names())}")


def _looks_like_internvideo2_chat(original_config: dict | None) -> bool:
    return bool(original_config) and "model_config" in original_config


def _tokenizer_dir_in(folder: Path) -> Path | None:
    for candidate in (folder / "llm_tokenizer", folder / "tokenizer", folder):
        if any((candidate / name).is_file() for name in ("tokenizer.json", "tokenizer.model")):
            return candidate
    return None


def _qformer_tokenizer_dir_in(folder: Path) -> Path | None:
    candidate = folder / "qformer_tokenizer"
    return candidate if (candidate / "vocab.txt").is_file() or (candidate / "tokenizer_config.json").is_file() else None


def _fixture_dir_of(path: Path) -> Path | None:
    folder = path if path.is_dir() else path.parent
    return folder if (folder / "expected.safetensors").is_file() and (folder / "inputs.safetensors").is_file() else None


def _internvideo2_checkpoint_files(source: Path) -> list[Path]:
    if source.is_dir() and not (source / "model.safetensors.index.json").is_file():
        for name in ("original_checkpoint.safetensors", "original_checkpoint.pth", "original_checkpoint.bin"):
            if (source / name).is_file():
                return [source / name]
    return checkpoint_files(source)


def resolve_internvideo2_chat_source(
    source: Path, preset: str | None = None, llm: Path | None = None, tokenizer: Path | None = None,
    qformer_tokenizer: Path | None = None,
) -> ConversionSource:
    """An InternVideo2-Chat hub snapshot, fixture folder or single checkpoint file (config next to it, or `preset`)."""
    from videochat.presets import get_preset_config

    from .internvideo2_chat import config_from_original, lora_scaling
    from .layouts import INTERNVIDEO2_CHAT_KEY_MAP
    from .layouts.internlm2 import internvideo2_chat_internlm2_key_map, is_internlm2_config, llama_text_config_from_internlm2

    files = _internvideo2_checkpoint_files(source)
    checkpoint = SourceTensors(LazyCheckpoint(files), files)
    original_config, config_path = _original_config_next_to(source)
    if original_config is not None and not _looks_like_internvideo2_chat(original_config):
        original_config, config_path = None, None
    preset = preset or detect_preset(source, original_config, checkpoint.keys())
    notes = []
    folder = source if source.is_dir() else source.parent

    lm_config = None
    lm_config_path = (llm / "config.json") if llm else (folder / "lm_config" / "config.json")
    if lm_config_path.is_file():
        lm_config = _read_json(lm_config_path)
        if is_internlm2_config(lm_config):
            lm_config = llama_text_config_from_internlm2(lm_config)
    if original_config is not None:
        config = config_from_original(original_config, lm_config, preset)
        scaling = lora_scaling(original_config)
    else:
        notes.append(f"no original config.json next to {source}: using the real-size preset {preset!r}")
        config = get_preset_config(preset, **({"text_config": lm_config} if lm_config else {}))
        scaling = 2.0 if any(".lora_A." in key for key in checkpoint.keys()) else None
        if scaling is not None:
            notes.append("LoRA scaling not in a config: using the released r=16, alpha=32 (2.0)")

    if preset == "internvideo2-chat-8b-internlm2_5" or _uses_internlm2(original_config, checkpoint.keys()):
        text = config.text_config
        key_map = internvideo2_chat_internlm2_key_map(text.num_attention_heads, text.num_key_value_heads)
    else:
        key_map = INTERNVIDEO2_CHAT_KEY_MAP
    extra_files = [path for path in (config_path, lm_config_path) if path is not None and path.is_file()]
    return ConversionSource(
        family="internvideo2_chat",
        preset=preset,
        checkpoint=checkpoint,
        key_map=key_map,
        config=config,
        files=[*files, *extra_files],
        lora_scaling=scaling,
        tokenizer_dir=tokenizer or (llm and _tokenizer_dir_in(llm)) or _tokenizer_dir_in(folder),
        qformer_tokenizer_dir=qformer_tokenizer or _qformer_tokenizer_dir_in(folder),
        fixture_dir=_fixture_dir_of(source),
        notes=notes,
    )


class MappingTensors(Mapping):
    """Adapter giving any lazy `{key: tensor}` mapping the `shape()` / `dtype()` the planner needs (used for the
    multi-file VideoChat2 / VideoChat sources of `conversion.videochat2.combined_sources`)."""

    def __init__(self, mapping: Mapping):
        self.mapping = mapping

    def _origin(self, key: str):
        source_of = getattr(self.mapping, "source_of", None)
        return source_of(key) if source_of is not None else (self.mapping, key)

    def shape(self, key: str) -> tuple[int, ...]:
        mapping, inner = self._origin(key)
        return tuple(mapping.shape(inner)) if hasattr(mapping, "shape") else tuple(self.mapping[key].shape)

    def dtype(self, key: str) -> torch.dtype:
        return self.mapping[key].dtype

    def __getitem__(self, key: str) -> torch.Tensor:
        return self.mapping[key]

    def __iter__(self):
        return iter(self.mapping)

    def __len__(self) -> int:
        return len(self.mapping)


def resolve_videochat2_source(
    source: Path, preset: str | None, llm: Path | None = None, vit: Path | None = None, qformer: Path | None = None,
    tokenizer: Path | None = None, qformer_tokenizer: Path | None = None,
) -> ConversionSource:
    """A VideoChat2 stage-3/4 `.pth` (+ base LLM folder) or VideoChat v1 (+ `eva_vit_g.pth` + BLIP-2 Q-Former file),
    read through `conversion.videochat2`. A fixture folder supplies `llm/`, `eva_vit_g.pth`, `blip2_qformer.pth`."""
    from . import videochat2
    from .checkpoint_io import open_checkpoint

    folder = source if source.is_dir() else source.parent
    stage_file = source if source.is_file() else folder / "original_checkpoint.pth"
    original_config, config_path = _original_config_next_to(source)
    if original_config is None:
        raise ConversionError(f"no original config (original_config.json / config.json) next to {source}")
    llm = llm or folder / "llm"
    if not (llm / "config.json").is_file():
        raise FileNotFoundError(f"base LLM folder with config.json not found: {llm} (pass --llm DIR)")
    variant = videochat2.detect_variant(original_config)
    eva = blip2 = None
    if variant == "v1":
        vit = vit or folder / "eva_vit_g.pth"
        qformer = qformer or folder / "blip2_qformer.pth"
        eva, blip2 = open_checkpoint(vit), open_checkpoint(qformer)
    stage, llm_checkpoint = open_checkpoint(stage_file), open_checkpoint(llm)
    key_map, combined = videochat2.combined_sources(variant, stage, llm_checkpoint, eva, blip2)
    config = videochat2.config_from_original(original_config, _read_json(llm / "config.json"), preset)
    files = [stage_file, config_path, llm / "config.json", *checkpoint_files(llm), *(p for p in (vit, qformer) if p)]
    return ConversionSource(
        family="videochat_v1" if variant == "v1" else "videochat2",
        preset=config.preset,
        checkpoint=MappingTensors(combined),
        key_map=key_map,
        config=config,
        files=files,
        lora_scaling=videochat2.lora_scaling(original_config),
        tokenizer_dir=tokenizer or _tokenizer_dir_in(llm) or _tokenizer_dir_in(folder),
        qformer_tokenizer_dir=qformer_tokenizer or _qformer_tokenizer_dir_in(folder),
        fixture_dir=_fixture_dir_of(source),
    )


def resolve_source(
    source: str | Path, preset: str | None = None, llm=None, vit=None, qformer=None, tokenizer=None,
    qformer_tokenizer=None,
) -> ConversionSource:
    """Detect what `source` is and how to convert it (preset detected from the source unless given)."""
    source = Path(source).expanduser().resolve()
    if not source.exists():
        raise FileNotFoundError(f"source not found: {source}")
    paths = {name: Path(value).expanduser().resolve() if value is not None else None
             for name, value in dict(llm=llm, vit=vit, qformer=qformer, tokenizer=tokenizer,
                                     qformer_tokenizer=qformer_tokenizer).items()}
    for name, path in paths.items():
        if path is not None and not path.exists():
            raise FileNotFoundError(f"--{name.replace('_', '-')} path not found: {path}")
    original_config, _ = _original_config_next_to(source)
    if preset is not None:
        family = _family_of(preset)
    elif _looks_like_internvideo2_chat(original_config):
        family = "internvideo2_chat"
    elif source.is_dir() and (source / "original_config.json").is_file():
        from videochat.parity import detect_family

        family = detect_family(source)
    elif paths["vit"] is not None or paths["qformer"] is not None:
        family = "videochat_v1"
    elif paths["llm"] is not None:
        family = "videochat2"
    else:
        family = "internvideo2_chat"
    if family == "internvideo2_chat":
        if paths["vit"] or paths["qformer"]:
            raise ConversionError("--vit / --qformer are only for VideoChat v1 sources")
        return resolve_internvideo2_chat_source(source, preset, paths["llm"], paths["tokenizer"], paths["qformer_tokenizer"])
    return resolve_videochat2_source(source, preset, **paths)


# ---------------------------------------------------------------------------------------------------------------------
# Planning (no tensor is read here)
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class WritePlan:
    plan: ConversionPlan
    specs: list[TensorSpec]
    shards: list[list[TensorSpec]]
    shard_names: list[str]

    @property
    def total_bytes(self) -> int:
        return sum(spec.nbytes for spec in self.specs)


class SourceTensors(Mapping):
    """The source checkpoint for streaming: safetensors tensors are read with positioned reads
    (`SafetensorsReader`), pickled ones come from the (validated, `weights_only`) `LazyCheckpoint`."""

    def __init__(self, checkpoint: LazyCheckpoint, files: list[Path]):
        self.checkpoint = checkpoint
        self.reader = SafetensorsReader([path for path in files if path.suffix == ".safetensors"])

    def shape(self, key: str) -> tuple[int, ...]:
        return self.checkpoint.shape(key)

    def dtype(self, key: str) -> torch.dtype:
        return self.reader.dtype(key) if key in self.reader else self.checkpoint[key].dtype

    def __getitem__(self, key: str) -> torch.Tensor:
        return self.reader.read(key) if key in self.reader else self.checkpoint[key]

    def __iter__(self):
        return iter(self.checkpoint)

    def __len__(self) -> int:
        return len(self.checkpoint)


def expected_model_shapes(config) -> dict[str, tuple[int, ...]]:
    """`{name: shape}` of our model's state dict, from an instance on the meta device (no memory used)."""
    from videochat.modeling_videochat import VideoChatForConditionalGeneration

    with torch.device("meta"):
        model = VideoChatForConditionalGeneration(config)
    return {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}


def compare_with_model(target_shapes: dict[str, tuple[int, ...]], config) -> dict[str, list]:
    """Missing / unexpected / shape-mismatched names of a converted `{name: shape}` against our model."""
    expected = expected_model_shapes(config)
    return {
        "missing": sorted(set(expected) - set(target_shapes)),
        "unexpected": sorted(set(target_shapes) - set(expected)),
        "mismatched": sorted(
            (name, target_shapes[name], expected[name]) for name in set(expected) & set(target_shapes)
            if tuple(target_shapes[name]) != tuple(expected[name])
        ),
    }


def plan_conversion(source: ConversionSource, dtype: torch.dtype | None, max_shard_size: int) -> WritePlan:
    """Map every source key (unknown keys stop here), check names and shapes against the meta model, lay out shards."""
    checkpoint = source.checkpoint
    plan = source.key_map.plan(checkpoint.keys())
    specs: list[TensorSpec] = []
    for op in plan.operations:
        shapes = transform_shapes(op.transform, checkpoint.shape(op.source), len(op.targets), **dict(op.transform_args))
        source_dtype = checkpoint.dtype(op.source)
        target_dtype = dtype if dtype is not None and source_dtype.is_floating_point else source_dtype
        specs.extend(TensorSpec(target, target_dtype, tuple(shape)) for target, shape in zip(op.targets, shapes))
    problems = compare_with_model({spec.name: spec.shape for spec in specs}, source.config)
    if any(problems.values()):
        shown = {key: value[:20] for key, value in problems.items() if value}
        raise ConversionError(f"the converted weights would not match our model for preset {source.preset!r}: {shown}")
    shards = plan_shards(specs, max_shard_size)
    return WritePlan(plan, specs, shards, shard_file_names(len(shards)))


# ---------------------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------------------


def materialize(op: Operation, checkpoint, lora_scaling: float | None) -> dict[str, torch.Tensor]:
    """Read one operation's source tensor(s) and return our tensors (LoRA folded, transform applied)."""
    return run_operation(op, checkpoint.__getitem__, lora_scaling)


def _progress_bar(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="converting", disable=not enabled)


def _is_verbatim_copy(op: Operation, source: ConversionSource, by_target: dict[str, TensorSpec]) -> bool:
    """A tensor whose bytes go to the output unchanged (copied kernel-side instead of through memory)."""
    checkpoint = source.checkpoint
    return (
        op.transform == "copy" and op.lora_a is None and source.postprocess is None
        and isinstance(checkpoint, SourceTensors) and op.source in checkpoint.reader
        and checkpoint.reader.dtype(op.source) == by_target[op.targets[0]].dtype
        and tuple(checkpoint.shape(op.source)) == by_target[op.targets[0]].shape
    )


def write_weights(folder: Path, source: ConversionSource, write_plan: WritePlan, progress: bool = True) -> None:
    """Stream every converted tensor into its planned shard (one source tensor in memory at a time)."""
    by_target = {spec.name: spec for spec in write_plan.specs}
    shard_of = {spec.name: index for index, shard in enumerate(write_plan.shards) for spec in shard}
    writers = [ShardWriter(folder / name, shard) for shard, name in zip(write_plan.shards, write_plan.shard_names)]
    try:
        with _progress_bar(write_plan.total_bytes, progress) as bar:
            for op in write_plan.plan.operations:
                if _is_verbatim_copy(op, source, by_target):
                    descriptor, offset, dtype, shape = source.checkpoint.reader.location(op.source)
                    bar.update(writers[shard_of[op.targets[0]]].write_from_file(op.targets[0], dtype, shape, descriptor, offset))
                    continue
                for name, tensor in materialize(op, source.checkpoint, source.lora_scaling).items():
                    if source.postprocess is not None:
                        tensor = source.postprocess(name, tensor)
                    tensor = tensor.to(by_target[name].dtype)
                    bar.update(writers[shard_of[name]].write(name, tensor))
                    del tensor
        for writer in writers:
            writer.close()
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    if len(write_plan.shards) > 1:
        write_index(folder, write_plan.shards, write_plan.shard_names)


def check_written_weights(folder: Path, config) -> dict[str, list]:
    """Names and shapes of the written safetensors headers against our meta model (no tensor is read)."""
    index = folder / "model.safetensors.index.json"
    names = sorted(set(_read_json(index)["weight_map"].values())) if index.is_file() else ["model.safetensors"]
    shapes = {}
    for name in names:
        for key, entry in read_safetensors_header(folder / name).items():
            if key != "__metadata__":
                shapes[key] = tuple(entry["shape"])
    return compare_with_model(shapes, config)


# ---------------------------------------------------------------------------------------------------------------------
# Side files: config, generation config, processor and tokenizers, model card
# ---------------------------------------------------------------------------------------------------------------------


def _dominant_dtype(specs: list[TensorSpec]) -> torch.dtype:
    totals: dict[torch.dtype, int] = {}
    for spec in specs:
        if spec.dtype.is_floating_point:
            totals[spec.dtype] = totals.get(spec.dtype, 0) + spec.nbytes
    return max(totals, key=totals.get) if totals else torch.float32


def generation_config_for(preset: str):
    from transformers import GenerationConfig

    return GenerationConfig(**GENERATION_DEFAULTS[preset])


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "added_tokens.json", "chat_template.jinja", "vocab.txt")


def _load_tokenizer_isolated(tokenizer_dir: Path):
    """`AutoTokenizer` on a copy of the tokenizer files only: a hub snapshot's remote-code `config.json` (auto_map)
    must never be consulted, let alone executed."""
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as isolated:
        for name in TOKENIZER_FILES:
            if (tokenizer_dir / name).is_file():
                shutil.copy(tokenizer_dir / name, Path(isolated) / name)
        return AutoTokenizer.from_pretrained(isolated, trust_remote_code=False)


def _load_llm_tokenizer(tokenizer_dir: Path, preset: str):
    if (tokenizer_dir / "tokenizer.model").is_file():
        try:
            from .convert_tokenizer import build_tokenizer
        except ImportError:
            build_tokenizer = None
        if build_tokenizer is not None:
            return build_tokenizer(tokenizer_dir, preset)
    return _load_tokenizer_isolated(tokenizer_dir)


def _load_qformer_tokenizer(folder: Path):
    from transformers import BertTokenizer

    if (folder / "tokenizer_config.json").is_file():
        tokenizer = _load_tokenizer_isolated(folder)
    else:
        tokenizer = BertTokenizer(str(folder / "vocab.txt"), truncation_side="left")
    if tokenizer.bos_token is None:
        tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    tokenizer.truncation_side = "left"
    tokenizer.padding_side = "left"
    return tokenizer


def save_processor(folder: Path, source: ConversionSource) -> list[str]:
    """Save the processor (image processor, LLM tokenizer, Q-Former tokenizer with `[DEC]`, chat template) when its
    pieces are available; returns messages describing what was skipped."""
    messages = []
    try:
        from videochat.image_processing_videochat import VideoChatImageProcessor
        from videochat.processing_videochat import VideoChatProcessor, load_chat_template
    except ImportError as error:
        return [f"processor not saved: videochat.processing_videochat is not available ({error})"]
    if source.tokenizer_dir is None:
        messages.append("processor and LLM tokenizer not saved: no LLM tokenizer found (pass --tokenizer DIR)")
        (folder / "chat_template.jinja").write_text(load_chat_template(source.preset))
        return messages
    tokenizer = _load_llm_tokenizer(source.tokenizer_dir, source.preset)
    uses_qformer_text = source.config.qformer_config.use_text_input
    qformer_tokenizer = _load_qformer_tokenizer(source.qformer_tokenizer_dir) if source.qformer_tokenizer_dir else None
    if qformer_tokenizer is None and uses_qformer_text:
        tokenizer.save_pretrained(str(folder))
        (folder / "chat_template.jinja").write_text(load_chat_template(source.preset))
        return ["processor not saved: no Q-Former tokenizer (pass --qformer-tokenizer DIR with bert-base-uncased's "
                "vocab.txt); the LLM tokenizer and chat template were saved"]
    if qformer_tokenizer is not None and len(qformer_tokenizer) != source.config.qformer_config.vocab_size and uses_qformer_text:
        messages.append(f"warning: the Q-Former tokenizer has {len(qformer_tokenizer)} tokens but the Q-Former "
                        f"vocabulary has {source.config.qformer_config.vocab_size} rows")
    image_processor = VideoChatImageProcessor.from_preset(
        source.preset, num_frames=int(source.config.vision_config.num_frames)
    )
    processor = VideoChatProcessor.from_preset(
        source.preset, tokenizer, qformer_tokenizer, image_processor=image_processor,
        num_query_tokens=source.config.num_visual_queries,
        video_token_id=source.config.video_token_id, image_token_id=source.config.image_token_id,
    )
    processor.save_pretrained(str(folder))
    return messages


def sha256_of(path: Path, chunk_size: int = 8 * 2**20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


class _BackgroundHashes:
    """sha256 of the input files, computed in a thread while the conversion runs (hashlib releases the GIL)."""

    def __init__(self, paths: list[Path]):
        self.paths = list(dict.fromkeys(paths))
        self.result: dict[str, str] = {}
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            for path in self.paths:
                self.result[str(path)] = sha256_of(path)
        except BaseException as error:  # reported by join()
            self._error = error

    def join(self) -> dict[str, str]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.result


MODEL_CARD_TEMPLATE = """---
library_name: transformers
pipeline_tag: image-text-to-text
tags:
- video-text-to-text
- videochat
---

# {preset} (converted)

Transformers-native conversion of the original OpenGVLab checkpoint (`{preset}`), loadable without
`trust_remote_code`. **Requires** `pip install videochat` (the package registers the model, config and processor
with the transformers Auto classes on `import videochat`).

## Usage

```python
import torch
import videochat  # registers the VideoChat classes
from transformers import AutoModelForImageTextToText, AutoProcessor

model = AutoModelForImageTextToText.from_pretrained("{repo}", dtype=torch.bfloat16)
processor = AutoProcessor.from_pretrained("{repo}")
messages = [{{"role": "user", "content": [{{"type": "video", "path": "video.mp4"}},
                                         {{"type": "text", "text": "Describe the video in detail."}}]}}]
inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                       return_tensors="pt").to(model.device, torch.bfloat16)
output = model.generate(**inputs, do_sample=False, max_new_tokens=200)
print(processor.batch_decode(output[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)[0])
```

`generation_config.json` holds the original chat defaults of this model.

## Provenance

Converted with `videochat convert` (videochat {version}, transformers {transformers_version}, torch {torch_version}).
Weights are stored under our names (no conversion mapping is registered); dtypes are those of the source{dtype_note}.

| input | sha256 |
|---|---|
{inputs}

{notes}
## Parity report

{parity}
"""


def write_model_card(folder: Path, source: ConversionSource, hashes: dict[str, str], parity: str, repo: str | None,
                     dtype: torch.dtype | None, messages: list[str]) -> None:
    import transformers

    try:
        from videochat import __version__ as version
    except ImportError:
        version = "unknown"
    rows = "\n".join(f"| `{path}` | `{digest}` |" for path, digest in hashes.items())
    notes = [*source.notes, *messages]
    notes_text = ("## Notes\n\n" + "\n".join(f"- {note}" for note in notes) + "\n") if notes else ""
    (folder / "README.md").write_text(MODEL_CARD_TEMPLATE.format(
        preset=source.preset, repo=repo or "PATH_TO_THIS_FOLDER", version=version,
        transformers_version=transformers.__version__, torch_version=torch.__version__,
        dtype_note=f" cast to {str(dtype).removeprefix('torch.')}" if dtype is not None else "",
        inputs=rows, notes=notes_text, parity=parity,
    ))


# ---------------------------------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------------------------------


def load_converted(folder: Path, dtype: torch.dtype = torch.float32):
    """Reload a converted folder through the Auto class; raises when any loading-info list is not empty."""
    import videochat  # noqa: F401  (registers the Auto classes)
    from transformers import AutoModelForImageTextToText

    model, info = AutoModelForImageTextToText.from_pretrained(str(folder), dtype=dtype, output_loading_info=True)
    problems = {key: value for key, value in info.items() if value}
    if problems:
        raise ConversionError(f"{folder} does not reload cleanly: {problems}")
    return model.eval()


def verify_against_fixture(folder: Path, fixture_dir: Path) -> dict:
    """Run the converted folder on the fixture's recorded inputs and compare with the recorded original outputs."""
    from videochat import parity

    bundle = parity.load_fixture(fixture_dir)
    model = load_converted(folder)
    diffs, failures = {}, []
    for case in bundle.cases:
        num_new = int(case.generated_ids.numel()) if case.generated_ids is not None else 0
        ours = parity.compute_outputs(model, case, num_new)
        for our_name, (fixture_name, reference) in case.expected.items():
            diff = parity.compare(ours[our_name], reference)
            diffs[fixture_name] = diff
            if not diff <= parity.tolerance_for(our_name, reference):
                failures.append(f"{fixture_name}: max abs diff {diff:.3g}")
        if case.generated_ids is not None:
            same = torch.equal(ours["generated_ids"].reshape(-1), case.generated_ids.reshape(-1))
            diffs[f"{case.name}.generated_ids"] = 0.0 if same else 1.0
            if not same:
                failures.append(f"{case.name}.generated_ids differ")
    return {"kind": "fixture", "reference": str(fixture_dir), "max_abs_diff": diffs, "failures": failures, "ok": not failures}


def _visual_state_dict(prefix_filter: Callable[[str], bool], tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor for name, tensor in tensors.items() if prefix_filter(name)}


_VISUAL_PREFIXES = ("model.vision_model.", "model.vision_layernorm.", "model.qformer.", "model.query_tokens",
                    "model.extra_query_tokens", "model.multi_modal_projector.")


def _read_written(folder: Path, names: set[str]) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    index = folder / "model.safetensors.index.json"
    files = sorted(set(_read_json(index)["weight_map"].values())) if index.is_file() else ["model.safetensors"]
    tensors = {}
    for file_name in files:
        with safe_open(str(folder / file_name), framework="pt") as handle:
            for key in handle.keys():
                if key in names:
                    tensors[key] = handle.get_tensor(key)
    return tensors


@torch.no_grad()
def verify_visual_path(folder: Path, source: ConversionSource, write_plan: WritePlan, seed: int = 0) -> dict:
    """For real checkpoints: a small random forward of the vision tower -> layernorm -> Q-Former -> projection with
    weights taken (a) from the ORIGINAL tensors through the in-memory key map and (b) from the written files, plus an
    exact comparison of LLM spot tensors (first layer, last layer, lm_head) recomputed from the source. This checks
    the streaming writer, sharding, dtype handling and LoRA folding of this run; the key map itself is what the
    fixture parity tests check against the original code."""
    from videochat.modeling_videochat import VideoChatForConditionalGeneration

    config = source.config
    visual_ops = [op for op in write_plan.plan.operations if any(t.startswith(_VISUAL_PREFIXES) for t in op.targets)]
    reference = {}
    for op in visual_ops:
        reference.update(materialize(op, source.checkpoint, source.lora_scaling))
    written = _read_written(folder, set(reference))

    def run(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.device("meta"):
            model = VideoChatForConditionalGeneration(config)
        model.model.language_model = None
        model.lm_head = None
        missing, unexpected = model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=False, assign=True)
        missing = [key for key in missing if key.startswith(_VISUAL_PREFIXES)]
        if missing or unexpected:
            raise ConversionError(f"visual weights incomplete: missing {missing[:5]}, unexpected {unexpected[:5]}")
        generator = torch.Generator().manual_seed(seed)
        size = config.vision_config.image_size
        pixel_values = torch.randn(1, 3, size, size, generator=generator)
        qformer_ids = None
        if config.qformer_config.use_text_input:
            qformer_ids = torch.randint(5, config.qformer_config.vocab_size, (1, 6), generator=generator)
        _fill_non_persistent_buffers(model)
        model.eval()
        features = model.model.get_image_features(pixel_values.float(), qformer_ids)
        return features.pooler_output

    diffs = {"visual_path.projection_out": parity_diff(run(reference), run(written))}
    spot = _llm_spot_operations(write_plan.plan.operations, config)
    for op in spot:
        recomputed = materialize(op, source.checkpoint, source.lora_scaling)
        stored = _read_written(folder, set(recomputed))
        for name, tensor in recomputed.items():
            target_dtype = next(spec.dtype for spec in write_plan.specs if spec.name == name)
            diffs[name] = parity_diff(tensor.to(target_dtype), stored[name])
    failures = [f"{name}: max abs diff {diff:.3g}" for name, diff in diffs.items() if diff != 0.0]
    return {"kind": "weights", "reference": "original tensors via the in-memory key map", "max_abs_diff": diffs,
            "failures": failures, "ok": not failures}


def _fill_non_persistent_buffers(model) -> None:
    """Buffers that are not saved (position ids) are created on meta; rebuild them as the constructor does."""
    for module in model.modules():
        for name, buffer in list(module.named_buffers(recurse=False)):
            if buffer.is_meta:
                if name == "position_ids":
                    module.register_buffer(name, torch.arange(buffer.shape[-1]).expand(buffer.shape).clone(), persistent=False)
                else:
                    raise ConversionError(f"cannot rebuild buffer {name} of {type(module).__name__} for verification")


def _llm_spot_operations(operations: list[Operation], config) -> list[Operation]:
    last = config.text_config.num_hidden_layers - 1
    wanted = re.compile(rf"model\.language_model\.layers\.(0|{last})\.|lm_head\.weight|model\.language_model\.embed_tokens")
    return [op for op in operations if any(wanted.match(target) for target in op.targets)]


def parity_diff(ours: torch.Tensor, reference: torch.Tensor) -> float:
    if ours.shape != reference.shape:
        raise ConversionError(f"shape mismatch: {tuple(ours.shape)} vs {tuple(reference.shape)}")
    if not ours.numel():
        return 0.0
    return (ours.double() - reference.double()).abs().max().item()


def format_parity(report: dict | None) -> str:
    if report is None:
        return "Not run (convert with `--verify` to compare the converted weights with the original computation)."
    lines = [f"Reference: {report['reference']} ({report['kind']}). Result: **{'OK' if report['ok'] else 'FAILED'}**.", "",
             "| tensor | max abs diff |", "|---|---|"]
    lines += [f"| `{name}` | {diff:.3e} |" for name, diff in report["max_abs_diff"].items()]
    lines += [f"\nFAIL: {failure}" for failure in report["failures"]]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------------
# Output folder handling and the Hub
# ---------------------------------------------------------------------------------------------------------------------


def _staging_prefix(output: Path) -> str:
    return f".{output.name}.partial-"


def remove_stale_staging(output: Path) -> list[Path]:
    """Delete leftovers of interrupted runs (`.<name>.partial-<pid>-*` whose process is gone)."""
    removed = []
    for candidate in output.parent.glob(_staging_prefix(output) + "*"):
        found = re.match(re.escape(_staging_prefix(output)) + r"(\d+)-", candidate.name)
        if not found or not candidate.is_dir():
            continue
        pid = int(found[1])
        try:
            os.kill(pid, 0)
            alive = pid != os.getpid()
        except ProcessLookupError:
            alive = False
        except PermissionError:
            alive = True
        if not alive:
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


def _move_into_place(staging: Path, output: Path, overwrite: bool) -> None:
    if output.exists():
        if not overwrite:
            raise FileExistsError(f"{output} exists; pass overwrite=True (--overwrite) to replace it")
        retired = output.parent / f".{output.name}.old-{os.getpid()}"
        os.rename(output, retired)
        os.rename(staging, output)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.rename(staging, output)
    fsync_directory(output.parent)


def upload_to_hub(folder: str | Path, repo_id: str, dry_run: bool = False, private: bool = False, token: str | None = None) -> list[str]:
    """Upload a converted folder with `huggingface_hub`; returns the uploaded files (with `dry_run`, only lists them)."""
    folder = Path(folder)
    files = sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())
    if not (folder / "config.json").is_file():
        raise ConversionError(f"{folder} is not a converted folder (config.json missing)")
    if dry_run:
        return files
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model",
                      commit_message="Add converted VideoChat checkpoint (videochat convert)")
    return files


# ---------------------------------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class ConversionResult:
    output: Path
    preset: str
    num_tensors: int
    total_bytes: int
    shards: list[str]
    dropped: dict[str, str]
    input_sha256: dict[str, str]
    parity: dict | None
    messages: list[str]
    uploaded: list[str] | None = None


def convert(
    source, output, preset=None, llm=None, vit=None, qformer=None, tokenizer=None, qformer_tokenizer=None, dtype=None,
    verify=False, push_to_hub=None, max_shard_size="5GB", overwrite=False, progress=True, save_processor_files=True,
    push_dry_run=False,
) -> ConversionResult:
    """
    Convert an original checkpoint into a Hub-ready folder at `output` (see the module docstring).

    Args:
        source: hub snapshot folder, checkpoint file, fixture folder or VideoChat2 / VideoChat stage file.
        output: the folder to create (must not exist unless `overwrite`).
        preset: a `videochat.presets` name; detected from the source when omitted.
        llm / vit / qformer: base LLM folder (VideoChat2 / VideoChat, or an LLM config override), EVA ViT-g file and
            BLIP-2 Q-Former file (VideoChat v1).
        tokenizer / qformer_tokenizer: LLM tokenizer folder and Q-Former (BERT) tokenizer folder.
        dtype: cast floating tensors (`"bfloat16"`, `"float16"`, `"float32"`); default keeps the source dtypes.
        verify: compare converted and reference computations and put the report in the model card.
        push_to_hub: repo id to upload the finished folder to.
        max_shard_size: shard size (`"5GB"`, bytes, ...).
    """
    from videochat.configuration_videochat import VideoChatConfig  # noqa: F401  (fails early if the package is broken)

    output = Path(output).expanduser().resolve()
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; choose a new folder or pass overwrite=True (--overwrite)")
    target_dtype = None
    if dtype is not None:
        target_dtype = dtype if isinstance(dtype, torch.dtype) else DTYPES.get(str(dtype).removeprefix("torch."))
        if target_dtype is None:
            raise ConversionError(f"unsupported dtype {dtype!r}; choose one of {sorted(DTYPES)}")
    conversion_source = resolve_source(source, preset, llm, vit, qformer, tokenizer, qformer_tokenizer)
    write_plan = plan_conversion(conversion_source, target_dtype, parse_size(max_shard_size))
    for note in conversion_source.notes:
        print(f"note: {note}", file=sys.stderr)

    output.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(output)
    staging = Path(tempfile.mkdtemp(prefix=f"{_staging_prefix(output)}{os.getpid()}-", dir=output.parent))
    hashes = _BackgroundHashes(conversion_source.files)
    try:
        write_weights(staging, conversion_source, write_plan, progress)
        problems = check_written_weights(staging, conversion_source.config)
        if any(problems.values()):
            raise ConversionError(f"written weights do not match the model: {problems}")
        config = conversion_source.config
        config.dtype = target_dtype or _dominant_dtype(write_plan.specs)
        config.architectures = ["VideoChatForConditionalGeneration"]
        generation_config_for(conversion_source.preset).save_pretrained(str(staging))
        messages = save_processor(staging, conversion_source) if save_processor_files else ["processor not saved (disabled)"]
        for message in messages:
            print(f"note: {message}", file=sys.stderr)
        # config.json last: a folder without it is never loadable
        config.save_pretrained(str(staging))
        parity = None
        if verify:
            if conversion_source.fixture_dir is not None:
                parity = verify_against_fixture(staging, conversion_source.fixture_dir)
            else:
                parity = verify_visual_path(staging, conversion_source, write_plan)
            _print_parity(parity)
        input_hashes = hashes.join()
        write_model_card(staging, conversion_source, input_hashes, format_parity(parity), push_to_hub, target_dtype, messages)
        if parity is not None and not parity["ok"]:
            raise ConversionError(f"verification failed: {parity['failures']}")
        _move_into_place(staging, output, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    uploaded = None
    if push_to_hub:
        uploaded = upload_to_hub(output, push_to_hub, dry_run=push_dry_run)
    return ConversionResult(
        output=output, preset=conversion_source.preset, num_tensors=len(write_plan.specs),
        total_bytes=write_plan.total_bytes, shards=write_plan.shard_names, dropped=write_plan.plan.dropped,
        input_sha256=input_hashes, parity=parity, messages=messages, uploaded=uploaded,
    )


def _print_parity(report: dict) -> None:
    print(f"verification against {report['reference']}:")
    for name, diff in report["max_abs_diff"].items():
        print(f"  {name:<60} max_abs_diff={diff:.3e}")
    print("  OK" if report["ok"] else "  FAILED: " + "; ".join(report["failures"]))


def add_cli_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of `videochat convert` (also used by `python -m conversion.convert`)."""
    from videochat.presets import preset_names

    parser.add_argument("source", help="original checkpoint: hub snapshot folder, .pth/.bin/.safetensors file, fixture folder")
    parser.add_argument("output", help="folder to create (written to a temporary folder and renamed at the end)")
    parser.add_argument("--preset", choices=preset_names(), help="model preset (default: detected from the source)")
    parser.add_argument("--llm", help="base LLM folder (VideoChat2 / VideoChat; for InternVideo2-Chat: LLM config override)")
    parser.add_argument("--vit", help="VideoChat v1: EVA ViT-g checkpoint (eva_vit_g.pth)")
    parser.add_argument("--qformer", help="VideoChat v1: BLIP-2 Q-Former checkpoint")
    parser.add_argument("--tokenizer", help="LLM tokenizer folder (default: found in the source or --llm folder)")
    parser.add_argument("--qformer-tokenizer", help="Q-Former BERT tokenizer folder (vocab.txt); [DEC] is added")
    parser.add_argument("--dtype", choices=sorted(DTYPES), help="cast floating tensors (default: keep the source dtypes)")
    parser.add_argument("--verify", action="store_true", help="compare converted and reference computations")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the result to this Hub repo")
    parser.add_argument("--dry-run", action="store_true", help="with --push-to-hub: only list the files to upload")
    parser.add_argument("--max-shard-size", default="5GB", help="shard size (default 5GB)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = add_cli_arguments(argparse.ArgumentParser(prog="videochat convert", description=__doc__.split("\n\n")[0]))
    args = parser.parse_args(argv)
    try:
        result = convert(
            args.source, args.output, preset=args.preset, llm=args.llm, vit=args.vit, qformer=args.qformer,
            tokenizer=args.tokenizer, qformer_tokenizer=args.qformer_tokenizer, dtype=args.dtype, verify=args.verify,
            push_to_hub=args.push_to_hub, max_shard_size=args.max_shard_size, overwrite=args.overwrite,
            progress=not args.no_progress, push_dry_run=args.dry_run,
        )
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {result.output} ({result.preset}): {result.num_tensors} tensors, {result.total_bytes / 1e9:.2f} GB in "
          f"{len(result.shards)} shard(s); {len(result.dropped)} source key(s) dropped by name")
    if result.uploaded is not None:
        verb = "would upload" if args.dry_run else "uploaded"
        print(f"{verb} {len(result.uploaded)} file(s) to {args.push_to_hub}: " + ", ".join(result.uploaded))
    return 0


__all__ = [
    "ConversionError",
    "ConversionResult",
    "ConversionSource",
    "GENERATION_DEFAULTS",
    "add_cli_arguments",
    "convert",
    "main",
    "plan_conversion",
    "resolve_source",
    "upload_to_hub",
]


if __name__ == "__main__":
    sys.exit(main())

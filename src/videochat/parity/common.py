# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""What every fixture adapter shares: the case records, the converted model and processor of a fixture folder.

A fixture folder (`shared/fixtures/<family>/<variant>/`) is an original-layout source (see `convert.sources`) plus
`inputs.safetensors` / `expected.safetensors` / `meta.json` recorded by running the ORIGINAL code, and usually a
`verify_report.json` written when the fixture was re-checked (see `recorded_merge_noise`).
"""

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoTokenizer, BertTokenizer

from ..convert.keymap import convert_state_dict
from ..convert.presets import build_image_processor, build_processor
from ..convert.sources import ConversionSource, open_source
from ..convert.verify import max_abs_diff
from ..modeling_videochat import VideoChatForConditionalGeneration
from ..processing_videochat import VideoChatProcessor


ABS_TOLERANCE = 1e-5
# Logits of a chat model against the fixture's float32 noise N (see `checker`): our float64 model within 1.5 N,
# our float32 model within 3 N.
FLOAT64_NOISE_FACTOR = 1.5
FLOAT32_NOISE_FACTOR = 3.0
# `verify_report.json` of an InternVideo2-Chat fixture: "<case>.logits(LoRA-merged MistralForCausalLM on expected
# inputs_embeds)" = max |LoRA-merged float32 LLM - recorded logits| on the recorded LLM input.
_MERGED_LOGITS_KEY = re.compile(r"^(?P<case>[^.()]+)\.logits\((?=[^)]*merged)[^)]*\)$", re.IGNORECASE)


@dataclass
class FixtureCase:
    """One recorded prompt case. `forward_inputs` go to `VideoChatForConditionalGeneration.forward`;
    `expected` maps our output names (see `checker.compute_outputs`) to `(fixture tensor name, reference tensor)`."""

    name: str
    forward_inputs: dict
    expected: dict[str, tuple[str, torch.Tensor]]
    generated_ids: torch.Tensor | None = None
    extra_checks: dict[str, Callable[[], float | bool]] = field(default_factory=dict)


@dataclass
class FixtureBundle:
    family: str
    model: torch.nn.Module
    cases: list[FixtureCase]
    notes: list[str] = field(default_factory=list)


def read_original_config(fixture_dir: Path) -> dict:
    path = Path(fixture_dir) / "original_config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{fixture_dir} is not a fixture folder: original_config.json is missing")
    return json.loads(path.read_text())


def recorded_merge_noise(fixture_dir: Path) -> dict[str, float]:
    """Case -> the fixture's own float32 noise of the LLM as its `verify_report.json` records it: how far a
    LoRA-merged float32 LLM run on the recorded `inputs_embeds` lands from the recorded (LoRA at run time) logits.
    Only InternVideo2-Chat fixtures record it; `{}` for the others (their reports hold same-code re-runs, 0.0)."""
    path = Path(fixture_dir) / "verify_report.json"
    if not path.is_file():
        return {}
    try:
        report = json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}
    noise = {}
    for key, value in report.items() if isinstance(report, dict) else ():
        found = _MERGED_LOGITS_KEY.match(key)
        if found and isinstance(value, (int, float)) and not isinstance(value, bool):
            noise[found["case"]] = float(value)
    return noise


class _AsDtype(Mapping):
    """A lazily read checkpoint whose floating-point tensors are read in `dtype`."""

    def __init__(self, tensors: Mapping, dtype: torch.dtype):
        self.tensors, self.dtype = tensors, dtype

    def __getitem__(self, key: str) -> torch.Tensor:
        tensor = self.tensors[key]
        return tensor.to(self.dtype) if tensor.is_floating_point() else tensor

    def __iter__(self) -> Iterator[str]:
        return iter(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)


def instantiate_from_state_dict(model_class, config, state_dict: dict[str, torch.Tensor]):
    """`model_class.from_pretrained(None, config=..., state_dict=...)` (meta-device init, no random init of loaded
    weights) with every loading-info list required to be empty."""
    model, info = model_class.from_pretrained(None, config=config, state_dict=state_dict, output_loading_info=True)
    problems = {key: value for key, value in info.items() if value}
    if problems:
        raise ValueError(f"converted weights do not match {model_class.__name__}: {problems}")
    return model


def build_converted_model(
    fixture_dir: Path, dtype: torch.dtype = torch.float32, **source_kwargs
) -> tuple[VideoChatForConditionalGeneration, ConversionSource]:
    """The fixture's original checkpoint through our source detection and key map, as a model in eval mode.
    `dtype=torch.float64` reads every tensor in float64 first, so LoRA is folded and run without float32 rounding."""
    source = open_source(fixture_dir, **source_kwargs)
    checkpoint = source.checkpoint if dtype == torch.float32 else _AsDtype(source.checkpoint, dtype)
    state_dict, _ = convert_state_dict(source.key_map, checkpoint, source.lora_scaling)
    model = instantiate_from_state_dict(VideoChatForConditionalGeneration, source.config, state_dict)
    return model.to(dtype).eval(), source


# ---------------------------------------------------------------------------------------------------------------------
# Processors
# ---------------------------------------------------------------------------------------------------------------------


def _fixture_qformer_tokenizer(fixture_dir: Path):
    folder = fixture_dir / "qformer_tokenizer"
    if (folder / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(folder)
    vocab = folder / "vocab.txt"
    if not vocab.is_file():
        raise FileNotFoundError(f"No Q-Former tokenizer (tokenizer_config.json or vocab.txt) in {folder}")
    return BertTokenizer(str(vocab), truncation_side="left")


def _fixture_llm_tokenizer(fixture_dir: Path):
    for folder in (fixture_dir / "llm_tokenizer", fixture_dir / "llm"):
        if (folder / "tokenizer.json").is_file():
            return AutoTokenizer.from_pretrained(folder)
    raise FileNotFoundError(f"No LLM tokenizer (llm_tokenizer/ or llm/ with tokenizer.json) in {fixture_dir}")


def _fixture_overrides(original_config: dict) -> tuple[dict, dict]:
    """Processor and image-processor settings a tiny fixture changes: query count, frame count, HD grid limit."""
    processor_kwargs, image_kwargs = {}, {}
    if "model" in original_config:  # VideoChat2 / VideoChat harness layout
        model = original_config["model"]
        processor_kwargs["num_query_tokens"] = int(model["num_query_token"]) + int(
            model.get("extra_num_query_token", 0)
        )
        if "_num_frames" in original_config:
            image_kwargs["num_frames"] = int(original_config["_num_frames"])
        elif "vision_encoder" in model:
            image_kwargs["num_frames"] = int(model["vision_encoder"]["num_frames"])
        dynamic = model.get("dynamic_config")
        if dynamic:
            image_kwargs.update(
                hd_num=int(dynamic["hd_num"]),
                hd_padding=bool(dynamic.get("padding", False)),
                add_global_view=bool(dynamic.get("add_global", True)),
            )
    else:  # InternVideo2-Chat hub layout
        bridge = original_config["model_config"]["bridge"]
        processor_kwargs["num_query_tokens"] = int(bridge["num_query_token"]) + int(bridge["extra_num_query_token"])
        image_kwargs["num_frames"] = int(original_config["model_config"]["vision_encoder"]["num_frames"])
    return processor_kwargs, image_kwargs


def build_fixture_processor(fixture_dir: Path, preset: str, **kwargs) -> VideoChatProcessor:
    """The processor of `preset` with the fixture's tiny LLM tokenizer (`llm_tokenizer/` or `llm/`), its Q-Former
    tokenizer (`qformer_tokenizer/`) and the tiny config's query and frame counts."""
    fixture_dir = Path(fixture_dir)
    processor_kwargs, image_kwargs = _fixture_overrides(read_original_config(fixture_dir))
    return build_processor(
        preset,
        tokenizer=_fixture_llm_tokenizer(fixture_dir),
        qformer_tokenizer=_fixture_qformer_tokenizer(fixture_dir),
        image_processor=build_image_processor(preset, **image_kwargs),
        **{**processor_kwargs, **kwargs},
    )


__all__ = [
    "ABS_TOLERANCE",
    "FLOAT32_NOISE_FACTOR",
    "FLOAT64_NOISE_FACTOR",
    "FixtureBundle",
    "FixtureCase",
    "build_converted_model",
    "build_fixture_processor",
    "instantiate_from_state_dict",
    "max_abs_diff",
    "recorded_merge_noise",
]

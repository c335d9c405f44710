# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""`videochat convert --verify`: checks of this run's writing, dtypes and LoRA folding on any source (the key maps'
semantics are what the fixture parity checker tests against the original code)."""

import re
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import AutoModelForImageTextToText

from ..modeling_videochat import VideoChatForConditionalGeneration
from .keymap import Operation, run_operation
from .sources import ConversionError, ConversionSource, read_json


def load_converted(folder: Path, dtype: torch.dtype = torch.float32):
    """Reload a converted folder through the Auto class; raises when any loading-info list is not empty."""
    model, info = AutoModelForImageTextToText.from_pretrained(str(folder), dtype=dtype, output_loading_info=True)
    problems = {key: value for key, value in info.items() if value}
    if problems:
        raise ConversionError(f"{folder} does not reload cleanly: {problems}")
    return model.eval()


_VISUAL_PREFIXES = (
    "model.vision_model.",
    "model.qformer.",
    "model.qformer_embeddings.",
    "model.query_tokens",
    "model.extra_query_tokens",
    "model.multi_modal_projector.",
)


def _read_written(folder: Path, names: set[str]) -> dict[str, torch.Tensor]:
    index = folder / "model.safetensors.index.json"
    files = sorted(set(read_json(index)["weight_map"].values())) if index.is_file() else ["model.safetensors"]
    tensors = {}
    for file_name in files:
        with safe_open(str(folder / file_name), framework="pt") as handle:
            for key in handle.keys():
                if key in names:
                    tensors[key] = handle.get_tensor(key)
    return tensors


@torch.no_grad()
def verify_visual_path(
    folder: Path,
    source: ConversionSource,
    operations: list[Operation],
    target_dtypes: dict[str, torch.dtype],
    seed: int = 0,
) -> dict:
    """For real checkpoints: a small random forward of the vision tower -> layernorm -> Q-Former -> projection with
    weights taken (a) from the ORIGINAL tensors through the in-memory key map and (b) from the written files, plus an
    exact comparison of LLM spot tensors (first layer, last layer, lm_head) recomputed from the source. This checks
    the streaming writer, sharding, dtype handling and LoRA folding of this run; the key map itself is what the
    fixture parity tests check against the original code."""
    config = source.config
    visual_ops = [op for op in operations if any(t.startswith(_VISUAL_PREFIXES) for t in op.targets)]
    reference = {}
    for op in visual_ops:
        reference.update(run_operation(op, source.checkpoint.__getitem__, source.lora_scaling))
    written = _read_written(folder, set(reference))

    def run(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.device("meta"):
            model = VideoChatForConditionalGeneration(config)
        model.model.language_model = None
        model.lm_head = None
        missing, unexpected = model.load_state_dict(
            {k: v.float() for k, v in tensors.items()}, strict=False, assign=True
        )
        missing = [key for key in missing if key.startswith(_VISUAL_PREFIXES)]
        if missing or unexpected:
            raise ConversionError(f"visual weights incomplete: missing {missing[:5]}, unexpected {unexpected[:5]}")
        generator = torch.Generator().manual_seed(seed)
        size = config.vision_config.image_size
        pixel_values = torch.randn(1, 3, size, size, generator=generator)
        qformer_ids = None
        if config.qformer_takes_text:
            qformer_ids = torch.randint(5, config.qformer_config.vocab_size, (1, 6), generator=generator)
        _fill_non_persistent_buffers(model)
        model.eval()
        features = model.model.get_image_features(pixel_values.float(), qformer_ids)
        return features.pooler_output

    diffs = {"visual_path.projection_out": max_abs_diff(run(reference), run(written))}
    spot = _llm_spot_operations(operations, config)
    for op in spot:
        recomputed = run_operation(op, source.checkpoint.__getitem__, source.lora_scaling)
        stored = _read_written(folder, set(recomputed))
        for name, tensor in recomputed.items():
            diffs[name] = max_abs_diff(tensor.to(target_dtypes[name]), stored[name])
    failures = [f"{name}: max abs diff {diff:.3g}" for name, diff in diffs.items() if diff != 0.0]
    return {
        "kind": "weights",
        "reference": "original tensors via the in-memory key map",
        "max_abs_diff": diffs,
        "failures": failures,
        "ok": not failures,
    }


def _fill_non_persistent_buffers(model) -> None:
    """Buffers that are not saved (position ids) are created on meta; rebuild them as the constructor does."""
    for module in model.modules():
        for name, buffer in list(module.named_buffers(recurse=False)):
            if buffer.is_meta:
                if name == "position_ids":
                    module.register_buffer(
                        name, torch.arange(buffer.shape[-1]).expand(buffer.shape).clone(), persistent=False
                    )
                else:
                    raise ConversionError(f"cannot rebuild buffer {name} of {type(module).__name__} for verification")


def _llm_spot_operations(operations: list[Operation], config) -> list[Operation]:
    last = config.text_config.num_hidden_layers - 1
    wanted = re.compile(
        rf"model\.language_model\.layers\.(0|{last})\.|lm_head\.weight|model\.language_model\.embed_tokens"
    )
    return [op for op in operations if any(wanted.match(target) for target in op.targets)]


def max_abs_diff(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """Max abs difference (in float32) of two tensors with the same number of elements; singleton or grouping
    dimensions may differ. The one comparison used by `--verify` and the parity checker."""
    if ours.numel() != reference.numel():
        raise ValueError(f"shape mismatch: ours {tuple(ours.shape)} vs reference {tuple(reference.shape)}")
    if not ours.numel():
        return 0.0
    return (ours.detach().float().reshape(-1) - reference.detach().float().reshape(-1)).abs().max().item()


def format_parity(report: dict | None) -> str:
    if report is None:
        return "Not run (convert with `--verify` to compare the converted weights with the original computation)."
    lines = [
        f"Reference: {report['reference']} ({report['kind']}). Result: **{'OK' if report['ok'] else 'FAILED'}**.",
        "",
        "| tensor | max abs diff |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {diff:.3e} |" for name, diff in report["max_abs_diff"].items()]
    lines += [f"\nFAIL: {failure}" for failure in report["failures"]]
    return "\n".join(lines)

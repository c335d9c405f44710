# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Parity adapter for InternLM2 fixture folders (shared/fixtures/internlm2/*): the original InternLM2(.5) LLM
converted by our key map into an in-tree `LlamaForCausalLM`, compared with outputs of the original remote code."""

import json
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

from ..convert.key_maps.internlm2 import internlm2_key_map, llama_text_config_from_internlm2
from ..convert.keymap import KeyMap, convert_state_dict
from .common import instantiate_from_state_dict


def converted_llm_config(fixture_dir: Path) -> LlamaConfig:
    text = llama_text_config_from_internlm2(json.loads((Path(fixture_dir) / "original" / "config.json").read_text()))
    return LlamaConfig(**{key: value for key, value in text.items() if key != "model_type"})


def build_converted_llm(fixture_dir: Path, key_map: KeyMap | None = None) -> LlamaForCausalLM:
    """`original/config.json` + `original/model.safetensors` -> our converted `LlamaForCausalLM` (fp32, eval)."""
    config = converted_llm_config(fixture_dir)
    key_map = key_map or internlm2_key_map(config.num_attention_heads, config.num_key_value_heads)
    state_dict, _ = convert_state_dict(key_map, load_file(Path(fixture_dir) / "original" / "model.safetensors"))
    return instantiate_from_state_dict(LlamaForCausalLM, config, state_dict).float().eval()


def _masked_max_abs(ours: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor) -> float:
    """Padded positions carry meaningless logits in the reference: compare where `mask == 1` only."""
    return ((ours - reference).abs() * mask[..., None]).max().item()


@torch.no_grad()
def run_fixture(fixture_dir: Path, tolerance: Callable) -> tuple[dict[str, float], list[str], bool]:
    """Logits (masked), greedy ids and per-step greedy scores of every case, each from a freshly converted model
    (the original's dynamic NTK rope is stateful, so every reference was computed on a fresh model)."""
    fixture_dir = Path(fixture_dir)
    inputs, expected = load_file(fixture_dir / "inputs.safetensors"), load_file(fixture_dir / "expected.safetensors")
    tensors, failures, greedy_equal = {}, [], True
    cases = sorted(key.removesuffix(".input_ids") for key in inputs if key.endswith(".input_ids"))
    for case in cases:
        ids = inputs[f"{case}.input_ids"]
        mask = inputs.get(f"{case}.attention_mask", torch.ones_like(ids))
        if f"{case}.logits" in expected:
            logits = build_converted_llm(fixture_dir)(
                input_ids=ids, attention_mask=mask, position_ids=inputs.get(f"{case}.position_ids"), use_cache=False
            ).logits
            reference = expected[f"{case}.logits"]
            tensors[f"{case}.logits"] = diff = _masked_max_abs(logits, reference, mask)
            if not diff <= tolerance("logits", reference):
                failures.append(f"{case}.logits: max abs diff {diff:.3g}")
        if f"{case}.gen_ids" in expected:
            model = build_converted_llm(fixture_dir)
            reference_ids = expected[f"{case}.gen_ids"]
            config = GenerationConfig(
                do_sample=False,
                max_new_tokens=reference_ids.shape[1] - ids.shape[1],
                eos_token_id=model.config.eos_token_id,
                pad_token_id=model.config.pad_token_id,
            )
            output = model.generate(
                input_ids=ids,
                attention_mask=mask,
                generation_config=config,
                output_scores=True,
                return_dict_in_generate=True,
            )
            same = torch.equal(output.sequences, reference_ids)
            tensors[f"{case}.gen_ids"] = 0.0 if same else 1.0
            if not same:
                greedy_equal = False
                failures.append(f"{case}.gen_ids: ours {output.sequences.tolist()} vs {reference_ids.tolist()}")
            if f"{case}.gen_scores" in expected and same:
                scores = torch.stack(output.scores, dim=1)
                reference = expected[f"{case}.gen_scores"]
                tensors[f"{case}.gen_scores"] = diff = (scores - reference).abs().max().item()
                if not diff <= tolerance("logits", reference):
                    failures.append(f"{case}.gen_scores: max abs diff {diff:.3g}")
    return tensors, failures, greedy_equal

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Parity adapter for InternVideo2-Chat fixture folders (see shared/fixtures/internvideo2_chat/*/README.md)."""

from pathlib import Path

import torch
from safetensors.torch import load_file

from .common import FixtureBundle, FixtureCase, build_converted_model


# fixture tensor suffix -> name of our output in `videochat.parity.compute_outputs`
RECORDED_OUTPUTS = {
    "vision_encoder_out": "vision_encoder_out",
    "vision_layernorm_out": "vision_layernorm_out",
    "qformer_query_embeds": "qformer_query_embeds",
    "qformer_last_hidden_state": "qformer_last_hidden_state",
    "project_up_out": "projection_out",
    "inputs_embeds": "inputs_embeds",
    "logits": "logits",
}


def _pixel_values_videos(pixel_values: torch.Tensor) -> torch.Tensor:
    """Recorded model input -> our `(num_clips, frames, channels, H, W)`: HD `[1, N, T, C, H, W]`, non-HD `[T, C, H,
    W]`."""
    if pixel_values.ndim == 6:
        return pixel_values.reshape(-1, *pixel_values.shape[2:])
    if pixel_values.ndim == 5:
        return pixel_values
    if pixel_values.ndim == 4:
        return pixel_values.unsqueeze(0)
    raise ValueError(f"unexpected recorded pixel_values shape {tuple(pixel_values.shape)}")


def _case_names(inputs: dict) -> list[str]:
    return sorted(key.removesuffix(".input_ids") for key in inputs if key.endswith(".input_ids"))


def load_fixture(fixture_dir: Path) -> FixtureBundle:
    fixture_dir = Path(fixture_dir)
    inputs = load_file(fixture_dir / "inputs.safetensors")
    expected = load_file(fixture_dir / "expected.safetensors")
    model, _ = build_converted_model(fixture_dir)
    num_queries = model.config.num_visual_queries
    pixel_values_videos = _pixel_values_videos(inputs["pixel_values"])
    cases = []
    for name in _case_names(inputs):
        forward_inputs = {
            "input_ids": inputs[f"{name}.input_ids"].reshape(1, -1),
            "pixel_values_videos": pixel_values_videos,
        }
        if f"{name}.attention_mask" in inputs:
            forward_inputs["attention_mask"] = inputs[f"{name}.attention_mask"].reshape(1, -1)
        if f"{name}.qformer_input_ids" in inputs:
            qformer_ids, mask = inputs[f"{name}.qformer_input_ids"], inputs[f"{name}.qformer_attention_mask"]
            forward_inputs["video_qformer_input_ids"] = qformer_ids
            forward_inputs["video_qformer_attention_mask"] = (
                mask[:, num_queries:] if mask.shape[1] > qformer_ids.shape[1] else mask
            )
        recorded = {}
        for suffix, our_name in RECORDED_OUTPUTS.items():
            key = f"{name}.{suffix}"
            if (
                key not in expected
                and suffix in ("vision_encoder_out", "vision_layernorm_out")
                and name == _case_names(inputs)[0]
            ):
                key = next((k for k in expected if k.endswith(f".{suffix}")), key)
            if key in expected:
                recorded[our_name] = (key, expected[key])
        cases.append(FixtureCase(name, forward_inputs, recorded, expected.get(f"{name}.generated_ids")))
    return FixtureBundle("internvideo2_chat", model, cases)

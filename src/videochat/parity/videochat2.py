# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Parity adapter for the VideoChat2 / VideoChat v1 fixture folders (see shared/fixtures/videochat2/*/README.md):
recorded original inputs -> our model inputs, recorded intermediates -> names of our outputs."""

from pathlib import Path

import torch
from safetensors.torch import load_file

from ..convert.verify import max_abs_diff
from ..image_processing_pil_videochat import tile_hd_frames
from .common import FixtureBundle, FixtureCase, build_converted_model


# fixture tensor suffix -> name of our output in `videochat.parity.compute_outputs` (`video_embeds` is the same tensor
# as `proj_out`, flattened over the clips; it is checked separately)
RECORDED_OUTPUTS = {
    "vision_encoder_out": "vision_encoder_out",
    "vision_layernorm_out": "vision_layernorm_out",
    "qformer_query_embeds": "qformer_query_embeds",
    "qformer_last_hidden_state": "qformer_last_hidden_state",
    "proj_out": "projection_out",
    "inputs_embeds": "inputs_embeds",
    "logits": "logits",
}


# `VideoChat2_it_hd_mistral.encode_img` splits each normalised sample `(T, 3, rows*224, cols*224)` into row-major tiles
# plus a bicubic global view inside the model; our processor does exactly this up front.
hd_clips = tile_hd_frames


def recorded_clips(pixel_values: torch.Tensor, is_hd: bool) -> torch.Tensor:
    """Recorded model input `[1, T, 3, H, W]` -> our clips `(num_clips, T, 3, 224, 224)`."""
    if pixel_values.ndim != 5 or pixel_values.shape[0] != 1:
        raise ValueError(f"expected a recorded input of shape [1, T, 3, H, W], got {tuple(pixel_values.shape)}")
    return hd_clips(pixel_values[0]) if is_hd else pixel_values


def _case_names(inputs: dict) -> list[str]:
    return sorted(key.removesuffix(".llm_segment0_ids") for key in inputs if key.endswith(".llm_segment0_ids"))


def _input_ids(inputs: dict, case: str, num_visual_tokens: int, placeholder_id: int) -> torch.Tensor:
    """`segment0 ++ placeholders ++ segment1`: the originals embed the segments separately around the visual rows."""
    placeholders = torch.full((num_visual_tokens,), placeholder_id, dtype=torch.long)
    return torch.cat([inputs[f"{case}.llm_segment0_ids"], placeholders, inputs[f"{case}.llm_segment1_ids"]]).unsqueeze(
        0
    )


def _video_embeds_check(model, forward_inputs: dict, reference: torch.Tensor):
    """The spliced features (`video_embeds`, all clips flattened in order) against ours."""

    @torch.no_grad()
    def check() -> float:
        if "pixel_values_videos" in forward_inputs:
            features = model.model.get_video_features(
                forward_inputs["pixel_values_videos"],
                forward_inputs.get("video_qformer_input_ids"),
                forward_inputs.get("video_qformer_attention_mask"),
            )
        else:
            features = model.model.get_image_features(
                forward_inputs["pixel_values"],
                forward_inputs.get("image_qformer_input_ids"),
                forward_inputs.get("image_qformer_attention_mask"),
            )
        return max_abs_diff(features.pooler_output.reshape(1, -1, features.pooler_output.shape[-1]), reference)

    return check


def _position_table_checks(model, expected: dict, num_frames: int) -> dict:
    """UMT only: our position tables for the fixture's frame count and for images against the recorded ones."""
    embeddings = model.model.vision_model.embeddings
    if not hasattr(embeddings, "position_table"):
        return {}
    checks = {}
    if "vision_pos_embed" in expected:
        checks["vision_pos_embed"] = lambda: max_abs_diff(
            embeddings.position_table(num_frames), expected["vision_pos_embed"]
        )
    if "vision_img_pos_embed" in expected:
        checks["vision_img_pos_embed"] = lambda: max_abs_diff(
            embeddings.position_table(1), expected["vision_img_pos_embed"]
        )
    return checks


def load_fixture(fixture_dir: Path) -> FixtureBundle:
    fixture_dir = Path(fixture_dir)
    inputs = load_file(fixture_dir / "inputs.safetensors")
    expected = load_file(fixture_dir / "expected.safetensors")
    model, source = build_converted_model(fixture_dir)
    is_hd = source.preset.is_hd
    config = model.config
    num_queries = config.num_visual_queries

    video_clips = recorded_clips(inputs["pixel_values"], is_hd)
    image_clips = recorded_clips(inputs["image_pixel_values"], is_hd)[:, 0]  # each tile of the image = one image
    cases = []
    for name in _case_names(inputs):
        is_image = name == "image"
        num_clips = image_clips.shape[0] if is_image else video_clips.shape[0]
        placeholder = config.image_token_id if is_image else config.video_token_id
        input_ids = _input_ids(inputs, name, num_clips * num_queries, placeholder)
        # explicit mask: generate() would otherwise infer one from a pad id that may equal the placeholder id (0)
        forward_inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
        forward_inputs["pixel_values" if is_image else "pixel_values_videos"] = (
            image_clips if is_image else video_clips
        )
        if f"{name}.qformer_input_ids" in inputs:
            modality = "image" if is_image else "video"
            forward_inputs[f"{modality}_qformer_input_ids"] = inputs[f"{name}.qformer_input_ids"]
            # the recorded mask is cat(ones(queries), text mask); our model prepends the query ones itself
            forward_inputs[f"{modality}_qformer_attention_mask"] = inputs[f"{name}.qformer_attention_mask"][
                :, num_queries:
            ]
        recorded = {
            our_name: (f"{name}.{suffix}", expected[f"{name}.{suffix}"])
            for suffix, our_name in RECORDED_OUTPUTS.items()
            if f"{name}.{suffix}" in expected
        }
        extra_checks = {}
        if f"{name}.video_embeds" in expected:
            extra_checks[f"{name}.video_embeds"] = _video_embeds_check(
                model, forward_inputs, expected[f"{name}.video_embeds"]
            )
        if name == "chat":
            extra_checks.update(_position_table_checks(model, expected, video_clips.shape[1]))
        cases.append(FixtureCase(name, forward_inputs, recorded, expected.get(f"{name}.generated_ids"), extra_checks))
    return FixtureBundle(source.preset.layout, model, cases, notes=[f"preset {source.preset.name}"])

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Preprocessing checks of the fixture checker: from a fixture's raw uint8 frames and recorded prompts, our frame
sampling, pixel tensors, rendered prompt and token ids must equal what the original code recorded.

Each check returns a max abs diff (pixels) or a bool (indices, strings, ids); `videochat.parity` reports them next to
the model tensors.
"""

import json
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import load_file

from ..convert.sources import detect_preset
from ..convert.verify import max_abs_diff
from ..image_processing_pil_videochat import tile_hd_frames
from ..processing_videochat import get_num_visual_tokens
from ..qformer_instructions_videochat import split_instruction
from ..video_utils_videochat import get_segment_indices
from .common import build_fixture_processor


Check = Callable[[], "float | bool"]


def _max_abs(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """Pixel comparison that reports a shape mismatch as an infinite difference instead of raising."""
    return max_abs_diff(ours, reference) if ours.numel() == reference.numel() else float("inf")


def with_original_placeholders(processor, input_ids: torch.Tensor) -> list[int]:
    """Our ids with the visual positions written as the originals write them (id 0, `<unk>`): our placeholders are
    the distinct ids of the `<video>` / `<image>` special tokens."""
    placeholders = (input_ids == processor.video_token_id) | (input_ids == processor.image_token_id)
    return input_ids.masked_fill(placeholders, 0).tolist()


def _processor_text(prompt: str) -> str:
    return prompt.replace("[<VID_PLH>]", "<video>").replace("<VideoHere>", "<video>").replace("<ImageHere>", "<image>")


def internvideo2_checks(fixture_dir: Path) -> dict[str, Check]:
    """Frame indices, pixels, rendered prompt, input ids and Q-Former ids of an InternVideo2-Chat fixture."""
    preset = detect_preset(fixture_dir, json.loads((fixture_dir / "original_config.json").read_text()), ()).name
    meta = json.loads((fixture_dir / "meta.json").read_text())
    inputs = load_file(fixture_dir / "inputs.safetensors")
    processor = build_fixture_processor(fixture_dir, preset)
    frames = inputs["video_frames_uint8_all"].numpy()
    num_frames = int(inputs["frame_indices"].numel())
    recorded_pixels = inputs["pixel_values"]
    num_clips = recorded_pixels.shape[1] if recorded_pixels.ndim == 6 else 1
    checks: dict[str, Check] = {
        "preprocessing.frame_indices": lambda: (
            get_segment_indices(len(frames), num_frames).tolist() == inputs["frame_indices"].tolist()
        ),
        "preprocessing.pixel_values": lambda: _max_abs(
            processor.image_processor(videos=[frames[inputs["frame_indices"].numpy()]])["pixel_values_videos"],
            recorded_pixels,
        ),
    }
    cases = sorted(key.removesuffix(".input_ids") for key in inputs if key.endswith(".input_ids"))
    for case in cases:
        checks.update(_internvideo2_case_checks(processor, meta, inputs, case, frames, num_clips))
    return checks


def _internvideo2_case_checks(processor, meta, inputs, case, frames, num_clips) -> dict[str, Check]:
    case_meta = meta.get(case, {})
    chat_kwargs = case_meta.get("chat_kwargs", {})
    instruction = chat_kwargs.get("instruction") or None
    time_message = chat_kwargs.get("msg") or ""
    conversation = [{"role": "system", "content": instruction}] if instruction else []
    conversation.append(
        {
            "role": "user",
            "content": [
                {"type": "video", "video": frames, "fps": meta.get("fps_used_for_time_msg")},
                {"type": "text", "text": meta.get("user_prompt", "")},
            ],
        }
    )
    options = {
        "add_generation_prompt": True,
        "add_time_message": bool(time_message),
        "processor_kwargs": {"num_frames": int(inputs["frame_indices"].numel())},
    }

    def rendered_prompt() -> bool:
        # the system message opens our rendered prompt a second time, for the Q-Former (the processor removes it)
        prompt, _ = split_instruction(processor.apply_chat_template(conversation, **options))
        # our template writes one <Video>...</Video> per video; the processor repeats it per clip like the original
        expanded = prompt.replace("<Video><video></Video>", "<Video><video></Video>" * num_clips)
        return expanded == _processor_text(case_meta.get("conversation", ""))

    def encoded():
        return processor.apply_chat_template(
            conversation, tokenize=True, return_dict=True, return_tensors="pt", **options
        )

    checks: dict[str, Check] = {}
    if "conversation" in case_meta and "user_prompt" in meta:
        checks[f"{case}.preprocessing.prompt"] = rendered_prompt
        checks[f"{case}.preprocessing.input_ids"] = lambda: (
            with_original_placeholders(processor, encoded()["input_ids"][0]) == inputs[f"{case}.input_ids"].tolist()
        )
    if f"{case}.qformer_input_ids" in inputs:
        checks[f"{case}.preprocessing.qformer_input_ids"] = lambda: (
            encoded()["video_qformer_input_ids"].tolist() == inputs[f"{case}.qformer_input_ids"].tolist()
        )
    return checks


def videochat2_checks(fixture_dir: Path) -> dict[str, Check]:
    """Frame indices, pixels (video and image), input ids and Q-Former ids of a VideoChat2 / VideoChat fixture."""
    record = detect_preset(fixture_dir, json.loads((fixture_dir / "original_config.json").read_text()), ())
    preset = record.name
    meta = json.loads((fixture_dir / "meta.json").read_text())
    inputs = load_file(fixture_dir / "inputs.safetensors")
    processor = build_fixture_processor(fixture_dir, preset)
    hd = record.is_hd
    full_instruction = (
        build_fixture_processor(fixture_dir, preset, qformer_instruction_mode="full") if hd else processor
    )
    video = inputs["video_uint8"].numpy()
    indices = inputs["frame_indices"].numpy()
    sampled = video[indices]

    def recorded_clips(pixels: torch.Tensor) -> torch.Tensor:
        frames = pixels[0]
        return tile_hd_frames(frames) if hd else frames[None]

    checks: dict[str, Check] = {
        "preprocessing.frame_indices": lambda: (
            get_segment_indices(len(video), len(indices)).tolist() == indices.tolist()
        ),
        "preprocessing.pixel_values": lambda: _max_abs(
            processor.image_processor(videos=[sampled])["pixel_values_videos"], recorded_clips(inputs["pixel_values"])
        ),
    }
    image = None
    if "image_pixel_values" in inputs and "image_frame_index" in meta:
        image = Image.fromarray(video[int(meta["image_frame_index"])])
        checks["preprocessing.image_pixel_values"] = lambda: _max_abs(
            processor.image_processor(images=[image])["pixel_values"],
            recorded_clips(inputs["image_pixel_values"])[:, 0],
        )
    for case, case_meta in meta.get("cases", {}).items():
        case_processor = full_instruction if "instrlist" in case else processor
        checks.update(_videochat2_case_checks(case_processor, case, case_meta, inputs, sampled, image))
    return checks


def _videochat2_case_checks(processor, case, case_meta, inputs, sampled, image) -> dict[str, Check]:
    is_image = "<ImageHere>" in case_meta.get("prompt", "")
    if is_image and image is None:
        return {}
    qformer_text = case_meta.get("qformer_instruction") if f"{case}.qformer_input_ids" in inputs else None

    def encoded():
        return processor(
            text=_processor_text(case_meta["prompt"]),
            videos=None if is_image else sampled,
            images=[image] if is_image else None,
            qformer_text=qformer_text,
            return_tensors="pt",
        )

    def input_ids() -> bool:
        out = encoded()
        segments = case_meta["segment_ids"]
        num_clips = out["pixel_values" if is_image else "pixel_values_videos"].shape[0]
        placeholder = [0] * get_num_visual_tokens(num_clips, processor.num_query_tokens)
        return with_original_placeholders(processor, out["input_ids"][0]) == segments[0] + placeholder + segments[1]

    checks: dict[str, Check] = {}
    if "segment_ids" in case_meta and len(case_meta["segment_ids"]) == 2:
        checks[f"{case}.preprocessing.input_ids"] = input_ids
    if f"{case}.qformer_input_ids" in inputs:
        key = "image_qformer_input_ids" if is_image else "video_qformer_input_ids"
        checks[f"{case}.preprocessing.qformer_input_ids"] = lambda: (
            encoded()[key].tolist() == inputs[f"{case}.qformer_input_ids"].tolist()
        )
    return checks


def preprocessing_checks(fixture_dir: Path, family: str) -> dict[str, Check]:
    fixture_dir = Path(fixture_dir)
    if not (fixture_dir / "meta.json").is_file():
        return {}
    if family == "internvideo2_chat":
        return internvideo2_checks(fixture_dir)
    return videochat2_checks(fixture_dir)


__all__ = ["preprocessing_checks"]

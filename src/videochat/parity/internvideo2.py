# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Parity adapter for the InternVideo2 foundation-model fixtures (`shared/fixtures/internvideo2/{stage1_cls_tiny,
stage2_tiny}`, see their README.md): the fixture's ORIGINAL checkpoint goes through `videochat convert-internvideo2`
into a temporary folder, which is loaded with the Auto classes; every recorded tensor is then recomputed.

Reading the fixture format (the harness' `original_config.json`: the constructor overrides of the tiny model, the
pure-PyTorch branch selection) happens only here. Checks return a max abs diff (floats, tolerance 1e-5) or a bool
(indices, ids, uint8 pixels: must be equal).
"""

import copy
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForVideoClassification, AutoProcessor

from ..convert.internvideo2 import convert_internvideo2, factory_fields
from ..convert.verify import max_abs_diff
from ..image_processing_internvideo2 import cv2_linear_resize
from ..video_utils_videochat import load_video
from .common import ABS_TOLERANCE


Check = Callable[[], "float | bool"]


def fixture_stage(original_config: dict) -> str | None:
    """`"stage1"` / `"stage2"` for the InternVideo2 foundation fixtures' `original_config.json`, else `None`."""
    source = str(original_config.get("source", ""))
    if "InternVideo2/single_modality" in source and "factory" in original_config:
        return "stage1"
    if "InternVideo2/multi_modality" in source and "eval_config_overrides" in original_config:
        return "stage2"
    return None


def _gelu(original_config: dict) -> str:
    """The fused MLP (tanh GELU) unless the harness selected the pure-PyTorch branch (exact GELU)."""
    overrides = original_config.get("ctor_overrides_MP3") or {
        key.rsplit(".", 1)[-1]: value for key, value in original_config.get("eval_config_overrides", {}).items()
    }
    return "tanh" if overrides.get("use_fused_mlp", True) else "exact"


def _vision_overrides(constructor: dict) -> dict:
    """The harness' MP-1 constructor overrides in our field names (what the shapes cannot tell)."""
    names = {
        "num_heads": "num_attention_heads",
        "attn_pool_num_heads": "pooling_num_attention_heads",
        "img_size": "image_size",
    }
    return {ours: constructor[theirs] for theirs, ours in names.items() if theirs in constructor}


def _convert(fixture_dir: Path, workdir: Path, **kwargs) -> Path:
    output = workdir / "converted"
    convert_internvideo2(fixture_dir, output, progress=False, **kwargs)
    return output


def _record(name: str, value, tensors: dict, failures: list) -> None:
    if isinstance(value, bool):
        tensors[name] = 0.0 if value else 1.0
        if not value:
            failures.append(f"{name}: mismatch")
        return
    tensors[name] = float(value)
    if not value <= ABS_TOLERANCE:
        failures.append(f"{name}: max abs diff {value:.3g}")


def _compare(ours: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> dict[str, Check]:
    checks = {}
    for name, reference in expected.items():
        ours_tensor = ours[name]
        if reference.dtype.is_floating_point:
            checks[name] = lambda a=ours_tensor, b=reference: max_abs_diff(a, b)
        else:
            checks[name] = lambda a=ours_tensor, b=reference: torch.equal(a.reshape(-1).cpu(), b.reshape(-1).cpu())
    return checks


# ---------------------------------------------------------------------------------------------------------------------
# Stage 1: the classifier
# ---------------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def _stage1_outputs(model, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
    """Our tensors under the fixture's names; `pixel_values` in the original layout (batch, channels, frames, H, W)."""
    clips = pixel_values.transpose(1, 2)
    outputs = model(clips, output_hidden_states=True)
    base = model.internvideo2
    tokens = base(clips)
    ours = {
        "patch_embeds": base.encoder.embeddings.patch_embeddings(pixel_values),
        "embeddings": outputs.hidden_states[0],
        "last_hidden_state": tokens.last_hidden_state,
        "pooler_output": tokens.pooler_output,
        "fc_norm_output": model.fc_norm(tokens.pooler_output),
        "logits": outputs.logits,
    }
    ours.update({f"block_outputs.{index}": state for index, state in enumerate(outputs.hidden_states[1:])})
    return ours


def _stage1_checks(fixture_dir: Path, original_config: dict, workdir: Path) -> dict[str, Check]:
    vision = {
        **factory_fields(original_config.get("factory")),
        **_vision_overrides(original_config["ctor_overrides_MP1"]),
    }
    folder = _convert(fixture_dir, workdir, gelu=_gelu(original_config), config_overrides={"vision": vision})
    inputs = load_file(fixture_dir / "inputs.safetensors")
    expected = load_file(fixture_dir / "expected.safetensors")
    model = AutoModelForVideoClassification.from_pretrained(folder, dtype=torch.float32).eval()
    ours = _stage1_outputs(model, inputs["pixel_values"])
    tanh_model = AutoModelForVideoClassification.from_pretrained(
        folder, dtype=torch.float32, hidden_act="gelu_pytorch_tanh"
    ).eval()
    ours.update(
        {f"gelu_tanh.{name}": value for name, value in _stage1_outputs(tanh_model, inputs["pixel_values"]).items()}
    )
    return _compare(ours, expected)


# ---------------------------------------------------------------------------------------------------------------------
# Stage 2: the video-text model, its demo and its evaluation
# ---------------------------------------------------------------------------------------------------------------------


def _stage2_overrides(fixture_dir: Path, original_config: dict) -> dict:
    bert = json.loads((fixture_dir / "text_encoder_bert_config.json").read_text())
    return {
        "vision": {
            **factory_fields("pretrain_internvideo2_1b_patch14_224"),
            **_vision_overrides(original_config["vision_ctor_overrides_MP1"]),
        },
        "text": {
            "num_attention_heads": bert["num_attention_heads"],
            "layer_norm_eps": bert["layer_norm_eps"],
            "hidden_act": bert["hidden_act"],
        },
    }


def _needs_interpolation(model, pixel_values_videos: torch.Tensor) -> bool:
    """The demo resamples `pos_embed` at load time when its `num_frames` differs from the checkpoint's
    (`interpolate_pos_embed_internvideo2_new`); 1-frame inputs use the image table."""
    frames = pixel_values_videos.shape[1]
    return frames != 1 and frames != model.config.vision_config.num_frames


@torch.no_grad()
def _vision_outputs(model, pixel_values_videos: torch.Tensor, prefix: str) -> dict[str, torch.Tensor]:
    interpolate = _needs_interpolation(model, pixel_values_videos)
    vision = model.vision_model(pixel_values_videos, interpolate, output_hidden_states=True)
    ours = {
        f"{prefix}embeddings": vision.hidden_states[0],
        f"{prefix}last_hidden_state": vision.last_hidden_state,
        f"{prefix}pooler_output": vision.pooler_output,
    }
    ours.update({f"{prefix}block_outputs.{index}": state for index, state in enumerate(vision.hidden_states[1:])})
    return ours


@torch.no_grad()
def _stage2_model_outputs(model, inputs: dict) -> dict[str, torch.Tensor]:
    videos, ids, mask = inputs["pixel_values_videos"], inputs["text.input_ids"], inputs["text.attention_mask"]
    ours = _vision_outputs(model, videos, "vision.")
    ours["vision.patch_embeds"] = model.vision_model.encoder.embeddings.patch_embeddings(videos.transpose(1, 2))
    image = _vision_outputs(model, inputs["image.pixel_values"], "image.")
    ours.update({key: image[key] for key in ("image.embeddings", "image.last_hidden_state", "image.pooler_output")})
    ours["image.feat"] = F.normalize(model.get_video_features(inputs["image.pixel_values"]).pooler_output, dim=-1)

    interpolate = _needs_interpolation(model, videos)
    learned = model(ids, videos, mask, output_matching_logits=True, interpolate_pos_encoding=interpolate)
    ours["video_proj"] = learned.video_model_output.pooler_output
    ours["video_feat"] = learned.video_embeds
    ours["text.last_hidden_state"] = learned.text_model_output.last_hidden_state
    ours["text.proj"] = learned.text_model_output.pooler_output
    ours["text.feat"] = learned.text_embeds
    ours["temp"] = model.temperature
    ours["itc.sim_v2t_temp"], ours["itc.sim_t2v_temp"] = learned.logits_per_video, learned.logits_per_text
    ours["itc.probs_v2t_temp"] = learned.logits_per_video.softmax(dim=-1)
    cosine = model.similarity_logits(learned.video_embeds, learned.text_embeds, logit_scale=1.0)
    ours["itc.cos"] = cosine
    ours["itc.demo_probs"] = model.similarity_logits(learned.video_embeds, learned.text_embeds, 100.0).softmax(dim=-1)

    num_videos, num_texts = videos.shape[0], ids.shape[0]
    fused = model.text_model.fuse(
        learned.text_model_output.last_hidden_state.repeat(num_videos, 1, 1),
        mask.repeat(num_videos, 1),
        learned.video_model_output.last_hidden_state.repeat_interleave(num_texts, dim=0),
    ).last_hidden_state
    ours["itm.fusion_last_hidden_state"] = fused.reshape(num_videos, num_texts, *fused.shape[1:])
    ours["itm.embeds"] = ours["itm.fusion_last_hidden_state"][:, :, 0]
    ours["itm.logits"] = learned.matching_logits
    ours.update(_evaluation_scores(cosine, learned.matching_logits[..., 1]))
    return ours


def _evaluation_scores(cosine: torch.Tensor, match: torch.Tensor) -> dict[str, torch.Tensor]:
    """The six rankings `tasks/retrieval_utils.evaluation` returns, from our cosines and ITM match scores (all texts
    are inside its top-k=128, so every pair keeps its ITM score)."""
    return {
        "eval.i2t_match": match.softmax(dim=1),
        "eval.t2i_match": match.T.softmax(dim=1),
        "eval.i2t_sim": cosine.softmax(dim=1),
        "eval.t2i_sim": cosine.T.softmax(dim=1),
        "eval.i2t_dsl": (cosine * cosine.softmax(dim=0)).softmax(dim=1),
        "eval.t2i_dsl": (cosine.T * cosine.T.softmax(dim=0)).softmax(dim=1),
    }


@torch.no_grad()
def _demo_outputs(
    model, processor, fixture_dir: Path, texts: list[str], clips: dict[str, str], expected: dict
) -> dict[str, torch.Tensor]:
    """`retrieve_text(frames, texts, model, topk)` per clip: one video per call, one text per `get_txt_feat`."""
    text_feats = torch.cat(
        [
            F.normalize(model.get_text_features(**processor(text=text, truncation=True)).pooler_output, dim=-1)
            for text in texts
        ]
    )
    ours = {}
    for clip, file in clips.items():
        video = processor(videos=str(fixture_dir / file))["pixel_values_videos"]
        features = model.get_video_features(video, interpolate_pos_encoding=_needs_interpolation(model, video))
        video_feat = F.normalize(features.pooler_output, dim=-1)
        probs = model.similarity_logits(video_feat, text_feats, logit_scale=100.0).softmax(dim=-1)
        top_probs, top_indices = probs.topk(expected[f"demo.{clip}.topk_indices"].numel(), dim=-1)
        ours.update(
            {
                f"demo.{clip}.video_feat": video_feat,
                f"demo.{clip}.text_feat": text_feats,
                f"demo.{clip}.probs": probs,
                f"demo.{clip}.topk_probs": top_probs[0],
                f"demo.{clip}.topk_indices": top_indices[0],
            }
        )
    return ours


def _preprocessing_checks(
    processor, fixture_dir: Path, inputs: dict, meta: dict, clips: dict[str, str]
) -> dict[str, Check]:
    """Frame count and frames decoded by PyAV vs the demo's cv2 frames, sampled indices, resized uint8 frames and
    pixel tensors (from the mp4 files and from the recorded frames), text ids: all must be equal."""
    image_processor = processor.image_processor
    texts = meta["texts"]
    checks: dict[str, Check] = {}
    for clip, file in clips.items():
        path = str(fixture_dir / file)
        recorded_rgb = inputs[f"{clip}.frames_bgr_uint8"].numpy()[..., ::-1]
        indices = inputs[f"{clip}.frame_indices"].numpy()
        size = image_processor.size

        def decoded_frames_equal(path=path, recorded=recorded_rgb):
            frames, _ = load_video(path, sample_indices_fn=lambda metadata: np.arange(metadata.total_num_frames))
            return frames.shape == recorded.shape and bool((frames == recorded).all())

        checks[f"preprocessing.{clip}.decoded_frames"] = decoded_frames_equal
        checks[f"preprocessing.{clip}.frame_indices"] = lambda recorded=recorded_rgb, expected=indices: (
            image_processor.sample_frame_indices(len(recorded)).tolist() == expected.tolist()
        )
        checks[f"preprocessing.{clip}.resized_rgb_uint8"] = (
            lambda recorded=recorded_rgb, idx=indices, clip=clip, size=size: bool(
                np.array_equal(
                    np.stack(
                        [
                            cv2_linear_resize(np.ascontiguousarray(frame), size.width, size.height)
                            for frame in recorded[idx]
                        ]
                    ),
                    inputs[f"{clip}.resized_rgb_uint8"].numpy(),
                )
            )
        )
        checks[f"preprocessing.{clip}.pixel_values_from_frames"] = (
            lambda recorded=recorded_rgb, idx=indices, clip=clip: torch.equal(
                processor(videos=recorded[idx])["pixel_values_videos"], inputs[f"{clip}.pixel_values"]
            )
        )
        checks[f"preprocessing.{clip}.pixel_values_from_file"] = lambda path=path, clip=clip: torch.equal(
            processor(videos=path)["pixel_values_videos"], inputs[f"{clip}.pixel_values"]
        )
    videos = [str(fixture_dir / file) for file in clips.values()]
    checks["preprocessing.pixel_values_videos"] = lambda: torch.equal(
        processor(videos=videos)["pixel_values_videos"], inputs["pixel_values_videos"]
    )
    image_clip = next(clip for clip, file in clips.items() if file == meta["image_input"]["from"])
    image_frame = inputs[f"{image_clip}.frames_bgr_uint8"].numpy()[meta["image_input"]["frame_indices"][0], :, :, ::-1]
    checks["preprocessing.image.pixel_values"] = lambda: torch.equal(
        processor(images=image_frame)["pixel_values_videos"], inputs["image.pixel_values"]
    )
    checks["preprocessing.text.input_ids"] = lambda: torch.equal(
        processor(text=texts, truncation=True)["input_ids"], inputs["text.input_ids"]
    )
    checks["preprocessing.text.attention_mask"] = lambda: torch.equal(
        processor(text=texts, truncation=True)["attention_mask"], inputs["text.attention_mask"]
    )
    return checks


def _stage2_checks(fixture_dir: Path, original_config: dict, workdir: Path) -> dict[str, Check]:
    folder = _convert(
        fixture_dir,
        workdir,
        gelu=_gelu(original_config),
        vocab=fixture_dir / "tokenizer" / "vocab.txt",
        config_overrides=_stage2_overrides(fixture_dir, original_config),
    )
    inputs = load_file(fixture_dir / "inputs.safetensors")
    expected = load_file(fixture_dir / "expected.safetensors")
    meta = json.loads((fixture_dir / "meta.json").read_text())
    clips = {clip["name"]: clip["file"] for clip in meta["clips"]}
    model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
    demo = original_config.get("demo_config_overrides", {})
    size = demo.get("size_t", model.config.vision_config.image_size)
    processor = AutoProcessor.from_pretrained(
        folder,
        num_frames=demo.get("num_frames", model.config.vision_config.num_frames),
        size={"height": size, "width": size},
    )
    processor.max_text_length = int(original_config.get("max_txt_l", processor.max_text_length))
    ours = {
        **_stage2_model_outputs(model, inputs),
        **_demo_outputs(model, processor, fixture_dir, meta["texts"], clips, expected),
    }
    tanh_config = copy.deepcopy(model.config)
    tanh_config.vision_config.hidden_act = "gelu_pytorch_tanh"
    tanh_model = type(model).from_pretrained(folder, config=tanh_config, dtype=torch.float32).eval()
    with torch.no_grad():
        tanh_vision = tanh_model.get_video_features(
            inputs["pixel_values_videos"], _needs_interpolation(tanh_model, inputs["pixel_values_videos"])
        )
    ours["gelu_tanh.vision.last_hidden_state"] = tanh_vision.last_hidden_state
    ours["gelu_tanh.vision.pooler_output"] = tanh_model.vision_model.pooler(tanh_vision.last_hidden_state)
    ours["gelu_tanh.video_feat"] = F.normalize(tanh_vision.pooler_output, dim=-1)
    return {**_preprocessing_checks(processor, fixture_dir, inputs, meta, clips), **_compare(ours, expected)}


# ---------------------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------------------


def run_fixture(fixture_dir: str | Path) -> dict:
    """Check one InternVideo2 foundation fixture folder; returns the checker's JSON-able report."""
    fixture_dir = Path(fixture_dir)
    original_config = json.loads((fixture_dir / "original_config.json").read_text())
    stage = fixture_stage(original_config)
    if stage is None:
        raise ValueError(f"{fixture_dir} is not an InternVideo2 stage-1 / stage-2 fixture")
    tensors: dict[str, float] = {}
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="internvideo2-parity-") as workdir:
        build = _stage1_checks if stage == "stage1" else _stage2_checks
        for name, check in build(fixture_dir, original_config, Path(workdir)).items():
            _record(name, check(), tensors, failures)
    expected_names = set(load_file(fixture_dir / "expected.safetensors"))
    missing = sorted(expected_names - set(tensors))
    failures.extend(f"{name}: not checked" for name in missing)
    return {
        "fixture": str(fixture_dir),
        "family": f"internvideo2_{stage}",
        "tensors": tensors,
        "greedy_equal": True,
        "ok": not failures,
        "failures": failures,
        "notes": [f"GELU: {_gelu(original_config)} (the fixture's main tensors); gelu_tanh.* with tanh GELU"],
    }


__all__ = ["fixture_stage", "run_fixture"]

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""InternVideo2 preprocessing: the cv2 INTER_LINEAR re-statement (against recorded OpenCV 4.8.0 outputs and the
stage-2 fixture), the three frame-index rules, the stage-1 evaluation geometry, normalisation precision, PyAV
decoding, the text path (no [SEP], max_txt_l) and input errors."""

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import shared_path
from internvideo2_testing import STAGE2, write_clip
from safetensors.torch import load_file

from videochat import InternVideo2ImageProcessor, InternVideo2Processor
from videochat.image_processing_internvideo2 import (
    cv2_linear_resize,
    normalize_frames,
    shortest_edge_size,
    spatial_crop_offsets,
    torchvision_bicubic_resize,
)
from videochat.video_utils_internvideo2 import kinetics_indices, load_video_frames, middle_indices, stride_indices


DATA = Path(__file__).resolve().parent / "data"


def _reference_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_cv2_resize_reference", DATA / "make_cv2_resize_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------------- cv2 resize


def test_cv2_linear_resize_matches_recorded_opencv_outputs_bit_for_bit():
    """240 cases recorded with opencv-python-headless 4.8.0 (random up/down sizes, 224x224 squashes, short-side
    resizes): the SHA-256 of every output must match."""
    reference = json.loads((DATA / "cv2_resize_reference.json").read_text())
    module = _reference_module()
    assert len(reference["cases"]) == 240
    mismatched = []
    for case in reference["cases"]:
        (height, width), (dst_h, dst_w) = case["src"], case["dst"]
        ours = cv2_linear_resize(module.reference_image(height, width, case["seed"]), dst_w, dst_h)
        if hashlib.sha256(np.ascontiguousarray(ours).tobytes()).hexdigest() != case["sha256"]:
            mismatched.append(case)
    assert mismatched == []


def test_cv2_linear_resize_reproduces_the_demo_frames_of_the_fixture():
    inputs = load_file(shared_path(*STAGE2, "inputs.safetensors"))
    for clip in ("clip0", "clip1"):
        frames = inputs[f"{clip}.frames_bgr_uint8"].numpy()[inputs[f"{clip}.frame_indices"].numpy()]
        ours = np.stack([cv2_linear_resize(np.ascontiguousarray(frame[:, :, ::-1]), 56, 56) for frame in frames])
        assert np.array_equal(ours, inputs[f"{clip}.resized_rgb_uint8"].numpy())


def test_cv2_linear_resize_is_the_identity_at_the_same_size_and_keeps_constants():
    image = np.random.default_rng(0).integers(0, 256, size=(17, 23, 3), dtype=np.uint8)
    assert np.array_equal(cv2_linear_resize(image, 23, 17), image)
    flat = np.full((31, 9, 3), 173, dtype=np.uint8)
    assert (cv2_linear_resize(flat, 50, 7) == 173).all()
    with pytest.raises(ValueError, match="uint8"):
        cv2_linear_resize(image.astype(np.float32), 5, 5)


def test_cv2_linear_resize_is_within_one_level_of_float_bilinear():
    """Half-pixel bilinear without antialiasing (`F.interpolate`, align_corners=False) differs only by rounding."""
    image = np.random.default_rng(1).integers(0, 256, size=(40, 64, 3), dtype=np.uint8)
    for height, width in ((224, 224), (17, 100), (80, 30)):
        ours = cv2_linear_resize(image, width, height).astype(np.int64)
        reference = (
            F.interpolate(
                torch.from_numpy(image).permute(2, 0, 1)[None].double(),
                size=(height, width),
                mode="bilinear",
                align_corners=False,
            )[0]
            .permute(1, 2, 0)
            .numpy()
        )
        assert np.abs(ours - reference).max() <= 1.0


def test_torchvision_bicubic_resize_rounds_and_clamps_float_bicubic():
    frames = np.random.default_rng(2).integers(0, 256, size=(2, 30, 40, 3), dtype=np.uint8)
    ours = torchvision_bicubic_resize(frames, 56, 56)
    reference = (
        F.interpolate(
            torch.from_numpy(frames).permute(0, 3, 1, 2).float(), size=(56, 56), mode="bicubic", align_corners=False
        )
        .clamp(0, 255)
        .round()
        .to(torch.uint8)
        .permute(0, 2, 3, 1)
        .numpy()
    )
    assert ours.dtype == np.uint8 and np.array_equal(ours, reference)


# ---------------------------------------------------------------------------------------------------- frame indices


def test_stride_rule_starts_at_frame_zero():
    assert stride_indices(30, 4).tolist() == [0, 7, 14, 21]
    assert stride_indices(23, 4).tolist() == [0, 5, 10, 15]
    assert stride_indices(8, 8).tolist() == list(range(8))
    with pytest.raises(ValueError, match="7 frames but 8"):
        stride_indices(7, 8)


def test_middle_rule_takes_interval_middles_and_pads_short_videos():
    # linspace(0, 10, 5).astype(int) = [0, 2, 5, 7, 10] -> (0+1)//2, (2+4)//2, (5+6)//2, (7+9)//2
    assert middle_indices(10, 4).tolist() == [0, 3, 5, 8]
    assert middle_indices(3, 5).tolist() == [0, 1, 2, 2, 2]


def test_kinetics_rule_validation_and_test_clips():
    segment = 299 / 8
    validation = [round(segment * i) + int(segment / 2) for i in range(8)]
    assert kinetics_indices(300, 8).tolist() == validation
    clips = [kinetics_indices(300, 8, clip, 4).tolist() for clip in range(4)]
    assert clips[0] == [int(np.round(segment * i)) + int(segment / 5) for i in range(8)]
    assert len({tuple(clip) for clip in clips}) == 4
    assert kinetics_indices(5, 8).max() == 4  # clipped to the last frame


# ---------------------------------------------------------------------------------------------------- geometry


def test_shortest_edge_sizes_truncate_the_long_side():
    assert shortest_edge_size(240, 320, 224) == (224, 298)
    assert shortest_edge_size(1080, 720, 224) == (336, 224)


def test_crop_offsets_centre_rounding_and_three_test_crops():
    assert spatial_crop_offsets(224, 299, 224, 1) == [(0, 38)]  # round(37.5) = 38 (Python rounds half to even)
    assert spatial_crop_offsets(224, 297, 224, 1) == [(0, 36)]  # round(36.5) = 36
    assert spatial_crop_offsets(224, 298, 224, 3) == [(0, 0), (0, 37), (0, 74)]
    assert spatial_crop_offsets(300, 224, 224, 3) == [(0, 0), (38, 0), (76, 0)]


def test_float64_and_float32_normalisation_are_the_two_originals():
    frames = np.random.default_rng(3).integers(0, 256, size=(2, 5, 6, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    demo = (frames / 255.0 - np.array(mean)) / np.array(std)
    assert torch.equal(normalize_frames(frames, mean, std, True), torch.from_numpy(demo.transpose(0, 3, 1, 2)).float())
    single = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255)
    single = single.sub(torch.tensor(mean).view(3, 1, 1)).div(torch.tensor(std).view(3, 1, 1))
    assert torch.equal(normalize_frames(frames, mean, std, False), single)
    assert not torch.equal(normalize_frames(frames, mean, std, True), normalize_frames(frames, mean, std, False))


# ---------------------------------------------------------------------------------------------------- image processor


def test_classifier_protocol_8x3x4_views_and_their_merge(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", num_frames=40, width=96, height=64)
    processor = InternVideo2ImageProcessor(
        size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56}, num_temporal_clips=4, num_spatial_crops=3
    )
    assert processor.num_views == 12
    pixel_values = processor(videos=[clip, clip])["pixel_values"]
    assert pixel_values.shape == (24, 8, 3, 56, 56)
    frames, indices = processor.load_video(clip)
    assert indices.tolist() == np.concatenate([kinetics_indices(40, 8, c, 4) for c in range(4)]).tolist()
    resized = np.stack([cv2_linear_resize(frame, 84, 56) for frame in frames[:8]])  # short side 56 -> 56x84
    expected_left = normalize_frames(resized[:, :, 0:56], processor.image_mean, processor.image_std, False)
    expected_right = normalize_frames(resized[:, :, 28:84], processor.image_mean, processor.image_std, False)
    assert torch.equal(pixel_values[0], expected_left) and torch.equal(pixel_values[2], expected_right)
    logits = torch.randn(24, 7)
    merged = processor.merge_view_logits(logits)
    assert merged.shape == (2, 7) and torch.allclose(merged[1], logits[12:].softmax(-1).mean(0))


def test_image_processor_save_and_reload_keep_the_protocol(tmp_path):
    from transformers import AutoImageProcessor

    import videochat  # noqa: F401

    processor = InternVideo2ImageProcessor(
        num_frames=4,
        frame_sampling="stride",
        resize_mode="squash_bilinear",
        size={"height": 56, "width": 56},
        normalize_in_float64=True,
    )
    processor.save_pretrained(tmp_path)
    reloaded = AutoImageProcessor.from_pretrained(tmp_path)
    assert type(reloaded) is InternVideo2ImageProcessor
    for name in ("num_frames", "frame_sampling", "resize_mode", "normalize_in_float64"):
        assert getattr(reloaded, name) == getattr(processor, name)
    clip = shared_path(*STAGE2, "clip0.mp4")
    assert torch.equal(reloaded(videos=clip)["pixel_values"], processor(videos=clip)["pixel_values"])


@pytest.mark.parametrize(
    "settings",
    [
        {"resize_mode": "bilinear"},
        {"frame_sampling": "random"},
        {"num_spatial_crops": 2},
        {"frame_sampling": "stride", "num_temporal_clips": 4},
    ],
)
def test_unknown_settings_are_rejected(settings):
    with pytest.raises(ValueError):
        InternVideo2ImageProcessor(**settings)


def test_a_misspelt_call_argument_is_an_error_not_ignored():
    frames = np.zeros((8, 32, 32, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="num_frame"):
        InternVideo2ImageProcessor()(videos=frames, num_frame=4)


def test_pyav_decoding_equals_the_demo_cv2_frames_and_bad_files_are_clear_errors(tmp_path):
    inputs = load_file(shared_path(*STAGE2, "inputs.safetensors"))
    frames, indices = load_video_frames(shared_path(*STAGE2, "clip1.mp4"), 4, "stride")
    assert indices.tolist() == [0, 5, 10, 15]
    assert np.array_equal(frames, inputs["clip1.frames_bgr_uint8"].numpy()[indices][..., ::-1])
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 definitely not a video")
    with pytest.raises(ValueError, match="broken.mp4"):
        InternVideo2ImageProcessor()(videos=broken)
    with pytest.raises(FileNotFoundError):
        InternVideo2ImageProcessor()(videos=tmp_path / "missing.mp4")


# ---------------------------------------------------------------------------------------------------- text


@pytest.fixture(scope="module")
def text_processor():
    from videochat.convert.internvideo2 import build_text_tokenizer

    image_processor = InternVideo2ImageProcessor(
        num_frames=4,
        frame_sampling="stride",
        resize_mode="squash_bilinear",
        size={"height": 56, "width": 56},
        normalize_in_float64=True,
    )
    return InternVideo2Processor(image_processor, build_text_tokenizer(shared_path(*STAGE2, "tokenizer", "vocab.txt")))


def _texts():
    return json.loads(shared_path(*STAGE2, "meta.json").read_text())["texts"]


def test_text_ids_equal_the_original_tokenizer_and_have_no_sep(text_processor):
    inputs = load_file(shared_path(*STAGE2, "inputs.safetensors"))
    encoded = text_processor(text=_texts(), truncation=True)
    assert torch.equal(encoded["input_ids"], inputs["text.input_ids"])
    assert torch.equal(encoded["attention_mask"], inputs["text.attention_mask"])
    sep = text_processor.tokenizer.sep_token_id
    assert sep == 3 and not (encoded["input_ids"] == sep).any()
    assert encoded["input_ids"].shape == (3, 40) and (encoded["input_ids"][:, 0] == 2).all()


def test_a_text_longer_than_max_txt_l_is_an_error_unless_truncation(text_processor):
    with pytest.raises(ValueError, match="text 2 is .* max_text_length is 40"):
        text_processor(text=_texts())
    assert text_processor(text=_texts()[:2])["input_ids"].shape == (2, 40)


def test_processor_save_and_reload_keep_the_ids(text_processor, tmp_path):
    from transformers import AutoProcessor

    from videochat import InternVideo2Config

    text_processor.save_pretrained(tmp_path)
    InternVideo2Config().save_pretrained(tmp_path)
    reloaded = AutoProcessor.from_pretrained(tmp_path)
    assert type(reloaded) is InternVideo2Processor and reloaded.max_text_length == 40
    first = text_processor(text=_texts(), truncation=True, videos=shared_path(*STAGE2, "clip0.mp4"))
    second = reloaded(text=_texts(), truncation=True, videos=shared_path(*STAGE2, "clip0.mp4"))
    for key in ("input_ids", "attention_mask", "pixel_values_videos"):
        assert torch.equal(first[key], second[key]), key
    assert set(second) == set(reloaded.model_input_names)


def test_processor_rejects_videos_and_images_together(text_processor):
    frame = np.zeros((20, 20, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="not both"):
        text_processor(videos=[frame] * 4, images=frame)
    assert text_processor(images=[frame, frame])["pixel_values_videos"].shape == (2, 1, 3, 56, 56)
    assert not math.isnan(float(text_processor(images=frame)["pixel_values_videos"].sum()))

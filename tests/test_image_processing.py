# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Parity of VideoChatImageProcessor with the ORIGINAL preprocessing recorded in /work/shared/fixtures."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub.errors import StrictDataclassFieldValidationError
from safetensors.torch import load_file
from transformers import AutoTokenizer
from transformers.image_utils import PILImageResampling

from videochat.convert.presets import PRESETS, build_image_processor, build_processor
from videochat.image_processing_pil_videochat import (
    CLIP_MEAN,
    IMAGENET_MEAN,
    VideoChatImageProcessor,
    center_crop_box,
    find_closest_hd_grid,
    hd_resize_no_padding,
    hd_resize_padding,
    normalize_stacked_frames,
    pil_resize_crop_frames,
    shorter_side_size,
    tile_hd_frames,
)


SHARED = Path(os.environ.get("VIDEOCHAT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
FIXTURES = SHARED / "fixtures"
TOLERANCE = 1e-5

INTERNVIDEO2_FIXTURES = {"tiny_hd": "internvideo2-chat-8b-hd", "tiny_nonhd": "internvideo2-chat-8b"}
VIDEOCHAT2_FIXTURES = {
    "videochat2_it_vicuna": "videochat2-vicuna-7b",
    "videochat2_it_mistral": "videochat2-mistral-7b",
    "videochat2_it_hd_mistral": "videochat2-hd-mistral-7b",
    "videochat2_it_phi": "videochat2-phi3-mini",
    "videochat_v1": "videochat-7b",
}


def test_shared_fixtures_exist():
    assert FIXTURES.is_dir(), f"shared fixtures not found at {FIXTURES} (set VIDEOCHAT_SHARED)"


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, f"shape {tuple(a.shape)} != {tuple(b.shape)}"
    return (a.float() - b.float()).abs().max().item()


# ------------------------------------------------------------------------------------------------ InternVideo2-Chat


@pytest.mark.parametrize("folder", sorted(INTERNVIDEO2_FIXTURES))
def test_internvideo2_video_parity(folder):
    inputs = load_file(FIXTURES / "internvideo2_chat" / folder / "inputs.safetensors")
    frames_all = inputs["video_frames_uint8_all"].numpy()
    indices = inputs["frame_indices"].numpy()
    np.testing.assert_array_equal(frames_all[indices], inputs["video_frames_uint8_sampled"].numpy())

    processor = build_image_processor(INTERNVIDEO2_FIXTURES[folder])
    output = processor(videos=inputs["video_frames_uint8_sampled"].numpy())
    expected = inputs["pixel_values"]
    expected = expected[0] if expected.ndim == 6 else expected.unsqueeze(0)  # -> [clips, T, 3, 224, 224]
    assert output["pixel_values_videos"].dtype == torch.float32
    assert _max_diff(output["pixel_values_videos"], expected) <= TOLERANCE
    assert output["video_num_clips"] == [expected.shape[0]]


def test_internvideo2_hd_padding_parity():
    folder = FIXTURES / "internvideo2_chat" / "tiny_hd"
    inputs = load_file(folder / "inputs.safetensors")
    meta = json.loads((folder / "meta.json").read_text())
    processor = build_image_processor("internvideo2-chat-8b-hd", hd_padding=True)
    clips = processor(videos=inputs["video_frames_uint8_sampled"].numpy())["pixel_values_videos"]
    assert list(clips.unsqueeze(0).shape) == meta["pixel_values_hd_padding_true_full_shape"]
    assert _max_diff(clips[:, :1], inputs["pixel_values_hd_padding_true_frame0"][0]) <= TOLERANCE


def test_internvideo2_hd_resize_table():
    table = json.loads((FIXTURES / "internvideo2_chat" / "tiny_hd" / "meta.json").read_text())[
        "hd_resize_table_from_original_functions"
    ]
    assert len(table) >= 5
    for size, expected in table.items():
        height, width = (int(v) for v in size.split("x"))
        frames = torch.zeros(1, 3, height, width)
        closest = hd_resize_no_padding(frames, hd_num=6, fix_ratio=None)
        assert list(closest.shape[-2:]) == expected["no_padding_fix_ratio_None_HxW"], size
        assert list(hd_resize_padding(frames, hd_num=6).shape[-2:]) == expected["padding_HxW"], size
        # the model card default ignores the aspect ratio
        assert list(hd_resize_no_padding(frames, hd_num=6).shape[-2:]) == [224, 448]


def test_internvideo2_hd_closest_ratio_variant_clip_count():
    processor = build_image_processor("internvideo2-chat-8b-hd", fix_ratio=None)
    assert processor.fix_ratio is None
    video = np.random.default_rng(0).integers(0, 256, (2, 480, 640, 3), dtype=np.uint8)
    output = processor(videos=video)
    assert output["video_num_clips"] == [7]  # 480x640 -> 3x2 grid + global
    assert output["pixel_values_videos"].shape == (7, 2, 3, 224, 224)


def test_hd_padding_portrait_is_a_rotation_not_a_transpose():
    frames = torch.arange(2 * 3 * 160 * 90, dtype=torch.float32).reshape(2, 3, 160, 90) % 256
    padded = hd_resize_padding(frames, hd_num=6)
    assert padded.shape[-2:] == (448, 672)
    # rotating the input by 180 degrees rotates the output (the flip is undone at the end)
    rotated = hd_resize_padding(frames.flip(-2, -1), hd_num=6)
    torch.testing.assert_close(rotated, padded.flip(-2, -1), rtol=0, atol=1e-2)
    # the 255 fill sits at the top/bottom of the canvas (before normalisation)
    assert torch.all(padded[..., :35, :] == 255) and torch.all(padded[..., -35:, :] == 255)


# ------------------------------------------------------------------------------------------------ VideoChat2 / v1


@pytest.mark.parametrize("folder", sorted(VIDEOCHAT2_FIXTURES))
def test_videochat2_video_parity(folder):
    inputs = load_file(FIXTURES / "videochat2" / folder / "inputs.safetensors")
    frames = inputs["video_uint8"].numpy()[inputs["frame_indices"].numpy()]
    processor = build_image_processor(VIDEOCHAT2_FIXTURES[folder])
    output = processor(videos=frames)
    expected = inputs["pixel_values"][0]  # [T, 3, H, W]: model input as the demo builds it
    if processor.is_hd:
        # the original tiles inside the model; our processor tiles up front
        hd_frames = hd_resize_no_padding(
            torch.from_numpy(frames).permute(0, 3, 1, 2).float(), hd_num=processor.hd_num, fix_ratio=None
        )
        assert hd_frames.shape[-2:] == expected.shape[-2:]
        expected = tile_hd_frames(expected)
        assert expected.shape[0] == 7  # 2 rows x 3 cols + global
    else:
        expected = expected.unsqueeze(0)
    assert _max_diff(output["pixel_values_videos"], expected) <= TOLERANCE
    assert output["video_num_clips"] == [expected.shape[0]]


@pytest.mark.parametrize("folder", sorted(VIDEOCHAT2_FIXTURES))
def test_videochat2_image_parity(folder):
    folder_path = FIXTURES / "videochat2" / folder
    inputs = load_file(folder_path / "inputs.safetensors")
    frame_index = json.loads((folder_path / "meta.json").read_text())["image_frame_index"]
    image = inputs["video_uint8"].numpy()[frame_index]
    processor = build_image_processor(VIDEOCHAT2_FIXTURES[folder])
    output = processor(images=image)
    expected = inputs["image_pixel_values"][0]  # [1, 3, H, W]
    expected = tile_hd_frames(expected)[:, 0] if processor.is_hd else expected
    assert _max_diff(output["pixel_values"], expected) <= TOLERANCE
    assert output["image_num_clips"] == [expected.shape[0]]
    # PIL input gives the same result as the array
    from PIL import Image

    assert torch.equal(processor(images=Image.fromarray(image))["pixel_values"], output["pixel_values"])


def test_videochat2_hd_grid_table():
    table = json.loads((FIXTURES / "videochat2" / "preproc_hd_grid_table.json").read_text())["table"]
    assert len(table) >= 10
    for key, expected in table.items():
        size, hd_num = key.split("/hd_num=")
        height, width = (int(v) for v in size.split("x"))
        frames = torch.zeros(1, 3, height, width)
        assert (
            list(hd_resize_no_padding(frames, hd_num=int(hd_num), fix_ratio=None).shape[-2:])
            == expected["no_padding_out_HxW"]
        ), key
        assert list(hd_resize_padding(frames, hd_num=int(hd_num)).shape[-2:]) == expected["padding_out_HxW"], key


def test_verify_preprocessing_report_covers_every_fixture():
    report = json.loads((FIXTURES / "videochat2" / "verify_preprocessing.json").read_text())
    assert set(report) == set(VIDEOCHAT2_FIXTURES)
    for folder, checks in report.items():
        assert all(checks.values()), folder
        inputs = load_file(FIXTURES / "videochat2" / folder / "inputs.safetensors")
        # the recorded indices follow the demos' get_index rule
        from videochat.video_utils_videochat import get_segment_indices

        total = inputs["video_uint8"].shape[0]
        num_segments = inputs["frame_indices"].shape[0]
        np.testing.assert_array_equal(get_segment_indices(total, num_segments), inputs["frame_indices"].numpy())


# ------------------------------------------------------------------------------------------------ unit rules


def test_closest_grid_tie_rule():
    # a square frame ties between 1x1, 2x2, ...: a larger grid wins only above half its pixel area
    assert find_closest_hd_grid(224, 224, hd_num=12) == (1, 1)
    assert find_closest_hd_grid(300, 300, hd_num=12) == (1, 1)
    assert find_closest_hd_grid(400, 400, hd_num=12) == (2, 2)
    assert find_closest_hd_grid(1000, 1000, hd_num=12) == (3, 3)
    assert find_closest_hd_grid(1000, 1000, hd_num=6) == (2, 2)


def test_resize_and_crop_arithmetic():
    assert shorter_side_size(90, 160, 224) == (224, 398)  # long side truncated, not rounded
    assert shorter_side_size(416, 240, 224) == (388, 224)
    assert center_crop_box(224, 398, 224, 224) == (0, 87)
    assert center_crop_box(225, 225, 224, 224) == (0, 0)  # round(0.5) == 0
    assert center_crop_box(227, 227, 224, 224) == (2, 2)  # round(1.5) == 2
    with pytest.raises(ValueError, match="Cannot crop"):
        center_crop_box(100, 100, 224, 224)


def test_tile_hd_frames_order_and_global_view():
    frames = torch.randn(2, 3, 448, 672)
    clips = tile_hd_frames(frames)
    assert clips.shape == (7, 2, 3, 224, 224)
    assert torch.equal(clips[0], frames[..., :224, :224])
    assert torch.equal(clips[1], frames[..., :224, 224:448])  # row-major: second tile is to the right
    assert torch.equal(clips[3], frames[..., 224:, :224])
    global_view = torch.nn.functional.interpolate(frames, (224, 224), mode="bicubic", align_corners=False)
    assert torch.equal(clips[-1], global_view)
    assert tile_hd_frames(frames, add_global_view=False).shape[0] == 6
    with pytest.raises(ValueError, match="grid"):
        tile_hd_frames(torch.zeros(1, 3, 100, 224))


def test_mean_std_per_preset():
    assert build_image_processor("videochat2-mistral-7b").image_mean == CLIP_MEAN
    assert build_image_processor("videochat2-phi3-mini").image_mean == IMAGENET_MEAN
    assert build_image_processor("videochat2-phi3-mini").image_image_mean == CLIP_MEAN
    assert build_image_processor("internvideo2-chat-8b-hd").image_mean == IMAGENET_MEAN


# ------------------------------------------------------------------------------------------------ API


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_save_load_round_trip(preset, tmp_path):
    processor = build_image_processor(preset)
    processor.save_pretrained(tmp_path)
    reloaded = VideoChatImageProcessor.from_pretrained(tmp_path)
    assert reloaded.to_dict() == processor.to_dict()
    video = np.random.default_rng(1).integers(0, 256, (2, 120, 200, 3), dtype=np.uint8)
    assert torch.equal(reloaded(videos=video)["pixel_values_videos"], processor(videos=video)["pixel_values_videos"])
    image = video[0]
    assert torch.equal(reloaded(images=image)["pixel_values"], processor(images=image)["pixel_values"])


def test_batched_videos_and_images():
    processor = build_image_processor("internvideo2-chat-8b-hd")
    rng = np.random.default_rng(2)
    videos = [
        rng.integers(0, 256, (4, 90, 160, 3), dtype=np.uint8),
        rng.integers(0, 256, (4, 160, 90, 3), dtype=np.uint8),
    ]
    output = processor(videos=videos, images=[videos[0][0], videos[1][0]])
    assert output["pixel_values_videos"].shape == (6, 4, 3, 224, 224)
    assert output["video_num_clips"] == [3, 3]
    assert torch.equal(output["pixel_values_videos"][3:], processor(videos=videos[1])["pixel_values_videos"])
    assert output["pixel_values"].shape == (6, 3, 224, 224)
    assert output["image_num_clips"] == [3, 3]


def test_grayscale_rgba_and_channels_first_videos():
    processor = build_image_processor("videochat2-mistral-7b")
    rgb = np.random.default_rng(3).integers(0, 256, (2, 100, 150, 3), dtype=np.uint8)
    reference = processor(videos=rgb)["pixel_values_videos"]
    rgba = np.concatenate([rgb, np.full((2, 100, 150, 1), 7, np.uint8)], axis=-1)
    assert torch.equal(processor(videos=rgba)["pixel_values_videos"], reference)
    assert torch.equal(processor(videos=torch.from_numpy(rgb).permute(0, 3, 1, 2))["pixel_values_videos"], reference)
    gray = rgb[..., 0]
    out = processor(videos=gray)["pixel_values_videos"]
    assert out.shape == reference.shape
    assert torch.equal(processor(videos=np.repeat(gray[..., None], 3, -1))["pixel_values_videos"], out)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"hd_mode": "tiles"}, "hd_mode"),
        ({"resize_mode": "nearest"}, "resize_mode"),
        ({"hd_num": 0}, "hd_num"),
        ({"fix_ratio": (0, 1)}, "fix_ratio"),
        ({"image_resize_mode": "crop"}, "image_resize_mode"),
    ],
)
def test_invalid_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VideoChatImageProcessor(**kwargs)


def test_invalid_inputs():
    processor = build_image_processor("videochat2-mistral-7b")
    with pytest.raises(ValueError, match="images.*videos"):
        processor()
    with pytest.raises(ValueError, match="same number of frames"):
        processor(videos=[np.zeros((2, 64, 64, 3), np.uint8), np.zeros((3, 64, 64, 3), np.uint8)])
    with pytest.raises(ValueError, match="non-empty"):
        processor(videos=[])
    with pytest.raises(ValueError, match="channel"):
        processor(videos=np.zeros((2, 64, 64, 5), np.uint8))
    with pytest.raises(ValueError, match="unknown preset"):
        build_image_processor("videochat3")


# ------------------------------------------------------------------------------------------------ saved flags

FLAG_PRESETS = ["videochat2-mistral-7b", "internvideo2-chat-8b", "internvideo2-chat-8b-hd", "videochat2-hd-mistral-7b"]


def _video_and_image():
    video = np.random.default_rng(5).integers(0, 256, (2, 120, 200, 3), dtype=np.uint8)
    return video, video[0]


def _outputs(processor, **kwargs):
    video, image = _video_and_image()
    return processor(videos=video, **kwargs)["pixel_values_videos"], processor(images=image, **kwargs)["pixel_values"]


def _statistics(processor, modality):
    mean, std = processor.image_mean, processor.image_std
    if modality == "image" and processor.image_image_mean is not None:
        mean, std = processor.image_image_mean, processor.image_image_std
    return torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)


@pytest.mark.parametrize("preset", FLAG_PRESETS)
def test_normalize_and_rescale_flags_are_honoured_in_every_path(preset):
    """`do_normalize`, `do_rescale` and `rescale_factor` act on videos and images of every resize path (PIL, tensor
    antialias, both HD tilings, square and video-like images); the resizes are linear, so the outputs relate."""
    processor = build_image_processor(preset)
    default = _outputs(processor)
    unnormalized = _outputs(processor, do_normalize=False)
    raw = _outputs(processor, do_normalize=False, do_rescale=False)
    doubled = _outputs(processor, do_normalize=False, rescale_factor=2 / 255)
    negative = _outputs(processor, do_normalize=False, rescale_factor=-1.0)
    for index, modality in enumerate(("video", "image")):
        mean, std = _statistics(processor, modality)
        torch.testing.assert_close(default[index] * std + mean, unnormalized[index], rtol=0, atol=2e-6)
        torch.testing.assert_close(raw[index] / 255, unnormalized[index], rtol=0, atol=2e-6)
        torch.testing.assert_close(doubled[index], 2 * unnormalized[index], rtol=0, atol=2e-6)
        torch.testing.assert_close(negative[index], -raw[index], rtol=0, atol=2e-4)
        assert raw[index].max() > 2  # no rescale: the 0..255 range
    assert torch.equal(default[0], _outputs(processor, do_rescale=True, rescale_factor=1 / 255)[0])


@pytest.mark.parametrize("preset", FLAG_PRESETS)
def test_saved_flags_are_honoured_after_reloading(preset, tmp_path):
    processor = build_image_processor(preset, do_normalize=False, rescale_factor=0.5 / 255)
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["do_normalize"] is False and saved["rescale_factor"] == 0.5 / 255
    reloaded = VideoChatImageProcessor.from_pretrained(tmp_path)
    expected = _outputs(build_image_processor(preset), do_normalize=False, rescale_factor=0.5 / 255)
    for got, want in zip(_outputs(reloaded), expected):
        assert torch.equal(got, want)


def test_size_crop_and_resample_are_honoured_where_the_resize_is_pil():
    processor = build_image_processor("videochat2-mistral-7b")
    video, image = _video_and_image()
    wider = processor(videos=video, size={"shortest_edge": 256})["pixel_values_videos"]
    expected = normalize_stacked_frames(
        pil_resize_crop_frames(video, 256, 224), processor.image_mean, processor.image_std
    )
    assert torch.equal(wider[0], expected)
    nearest = processor(videos=video, images=image, resample=PILImageResampling.NEAREST)
    default = processor(videos=video, images=image)
    for key in ("pixel_values_videos", "pixel_values"):
        assert nearest[key].shape == default[key].shape and not torch.equal(nearest[key], default[key])
    uncropped = processor(videos=video, do_center_crop=False)["pixel_values_videos"]
    assert uncropped.shape[-2:] == shorter_side_size(120, 200, 224)
    unresized = processor(videos=video, do_resize=False, crop_size={"height": 100, "width": 100})
    assert torch.equal(
        unresized["pixel_values_videos"][0],
        normalize_stacked_frames(pil_resize_crop_frames(video, None, 100), processor.image_mean, processor.image_std),
    )


@pytest.mark.parametrize(
    ("preset", "kwargs", "message"),
    [
        ("internvideo2-chat-8b-hd", {"do_resize": False}, "do_resize=False"),
        ("internvideo2-chat-8b-hd", {"resample": PILImageResampling.NEAREST}, "resample"),
        ("internvideo2-chat-8b", {"resample": PILImageResampling.BILINEAR}, "resample"),
        ("videochat2-mistral-7b", {"do_convert_rgb": False}, "do_convert_rgb"),
        ("videochat2-mistral-7b", {"crop_size": {"height": 224, "width": 200}}, "crop_size"),
    ],
)
def test_flags_a_path_cannot_honour_are_refused(preset, kwargs, message):
    processor = build_image_processor(preset)
    video, image = _video_and_image()
    with pytest.raises(ValueError, match=message):
        processor(videos=video, **kwargs)
    with pytest.raises(ValueError, match=message):
        build_image_processor(preset, **kwargs)(videos=video)


def test_processor_applies_image_processor_overrides_per_call():
    image_processor = build_image_processor("videochat2-mistral-7b")
    video, image = _video_and_image()
    tokenizer_dir = FIXTURES / "videochat2" / "videochat2_it_mistral"
    processor = build_processor(
        "videochat2-mistral-7b",
        AutoTokenizer.from_pretrained(tokenizer_dir / "llm"),
        AutoTokenizer.from_pretrained(tokenizer_dir / "qformer_tokenizer"),
        image_processor=image_processor,
    )
    out = processor(
        text="<video><image>", videos=[video], images=[image], do_normalize=False, rescale_factor=0.5 / 255
    )
    expected = _outputs(image_processor, do_normalize=False, rescale_factor=0.5 / 255)
    assert torch.equal(out["pixel_values_videos"], expected[0])
    assert torch.equal(out["pixel_values"], expected[1])
    default = processor(text="<video><image>", videos=[video], images=[image])
    assert torch.equal(default["pixel_values_videos"], _outputs(image_processor)[0])


@pytest.mark.parametrize("kwargs", [{"hd_num": "six"}, {"add_global_view": "yes"}, {"hd_padding": 1.5}])
def test_call_kwargs_of_the_wrong_type_are_rejected(kwargs):
    """The kwargs TypedDict is checked by transformers (its annotations must be real types, not strings)."""
    image_processor = VideoChatImageProcessor()
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    with pytest.raises(StrictDataclassFieldValidationError, match=f"field '{next(iter(kwargs))}'"):
        image_processor(images=image, **kwargs)

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""The serving pieces that need neither vLLM nor lmms-eval: the plugin modules import without them, the video loader
samples as the processor does, `videochat convert` writes the loader's `video_preprocessor_config.json`, the
processor exposes a `video_processor` view and per-modality input names, and per-item Q-Former rows (as serving
engines batch them) encode each item as if alone."""

import json

import numpy as np
import torch
from conftest import tiny_config
from serving_testing import write_clip

from videochat import VideoChatForConditionalGeneration, load_video
from videochat.cli import vllm_plugin
from videochat.cli.vllm_video_loader import load_video_bytes, set_default_num_frames
from videochat.processing_videochat import VIDEO_PROCESSOR_TYPE


def test_the_plugin_module_imports_without_vllm():
    assert vllm_plugin.ARCHITECTURE == "VideoChatForConditionalGeneration"
    assert callable(vllm_plugin.register)


def test_the_loader_samples_as_load_video(tmp_path):
    path = write_clip(tmp_path / "clip.mp4", num_frames=40)
    set_default_num_frames(8)
    frames, metadata = load_video_bytes(path.read_bytes())
    expected, expected_metadata = load_video(str(path), num_frames=8)
    assert np.array_equal(frames, expected)
    assert metadata["frames_indices"] == list(expected_metadata.frames_indices) and len(frames) == 8
    assert metadata["do_sample_frames"] is False
    uniform, _ = load_video_bytes(path.read_bytes(), num_frames=4, sampling="uniform")
    assert np.array_equal(uniform, load_video(str(path), num_frames=4, sampling="uniform")[0])


def test_convert_writes_the_video_preprocessor_config(tmp_path):
    from videochat.cli.demo import write_original_checkpoint
    from videochat.convert.converter import convert

    convert(write_original_checkpoint(tmp_path / "original"), tmp_path / "out", preset="internvideo2-chat-8b-hd")
    settings = json.loads((tmp_path / "out" / "video_preprocessor_config.json").read_text())
    assert settings == {"video_processor_type": VIDEO_PROCESSOR_TYPE, "num_frames": 8}

    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tmp_path / "out")  # the extra file does not disturb loading
    view = processor.video_processor
    assert view.num_frames == 8 and view.do_sample_frames is False
    assert set(view.model_input_names).isdisjoint(processor.image_processor.model_input_names)
    assert "pixel_values_videos" in view.model_input_names
    assert "image_qformer_input_ids" in processor.image_processor.model_input_names
    tokens = processor.tokenizer.convert_ids_to_tokens(
        [processor.qformer_instruction_start_id, processor.qformer_instruction_end_id]
    )
    assert tokens == ["<qformer_instruction>", "</qformer_instruction>"]


def test_per_item_qformer_rows_encode_each_item_alone():
    torch.manual_seed(0)
    model = VideoChatForConditionalGeneration(tiny_config()).eval().model
    pixels = torch.randn(3, 4, 3, 28, 28)
    rows = [torch.tensor([[5, 6, 7]]), torch.tensor([[8, 9], [8, 9]])]
    masks = [torch.ones_like(row) for row in rows]
    with torch.no_grad():
        together = model.get_video_features(pixels, rows, masks).pooler_output
        alone = [
            model.get_video_features(pixels[:1], rows[0], masks[0]),
            model.get_video_features(pixels[1:], *rows[1:], masks[1]),
        ]
        assert torch.equal(together, torch.cat([output.pooler_output for output in alone]))

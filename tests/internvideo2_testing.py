# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Helpers of the InternVideo2 foundation-model tests: tiny random configs, the fixtures' original checkpoints
converted once per session, generated H.264 clips."""

from pathlib import Path

import av
import numpy as np
import torch
from conftest import shared_path


STAGE1 = ("fixtures", "internvideo2", "stage1_cls_tiny")
STAGE2 = ("fixtures", "internvideo2", "stage2_tiny")
# what the tiny fixtures' shapes cannot tell (their original_config.json, harness overrides MP-1)
STAGE1_OVERRIDES = {"vision": {"num_attention_heads": 4, "pooling_num_attention_heads": 8, "image_size": 112}}
STAGE2_OVERRIDES = {
    "vision": {"num_attention_heads": 4, "pooling_num_attention_heads": 8, "image_size": 56},
    "text": {"num_attention_heads": 4},
}


def tiny_vision_config(**overrides):
    from videochat import InternVideo2VisionConfig

    fields = {
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "pooling_num_attention_heads": 4,
        "pooler_output_size": 24,
        "image_size": 28,
        "patch_size": 14,
        "num_frames": 4,
        "num_labels": 5,
    }
    fields.update(overrides)
    return InternVideo2VisionConfig(**fields)


def tiny_video_text_config(**overrides):
    from videochat import InternVideo2Config

    vision = tiny_vision_config(use_image_position_embeddings=True).to_dict()
    text = {
        "vocab_size": 60,
        "hidden_size": 32,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "max_position_embeddings": 48,
        "fusion_layer": 2,
        "encoder_hidden_size": 32,
    }
    return InternVideo2Config(vision_config=vision, text_config=text, projection_dim=16, **overrides)


def random_clips(batch: int = 2, frames: int = 4, size: int = 28, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, frames, 3, size, size, generator=torch.Generator().manual_seed(seed))


def random_text(batch: int = 3, length: int = 12, vocab: int = 60, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, vocab, (batch, length), generator=generator)
    input_ids[:, 0] = 2
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, length // 2 :] = 0
    return input_ids, attention_mask


def convert_fixture(stage: str, output: Path, **kwargs) -> Path:
    """The fixture's ORIGINAL checkpoint through `convert_internvideo2` (exact GELU, like the fixtures' main
    tensors)."""
    from videochat.convert.internvideo2 import convert_internvideo2

    folder = shared_path(*(STAGE1 if stage == "stage1" else STAGE2))
    defaults = {
        "gelu": "exact",
        "progress": False,
        "config_overrides": STAGE1_OVERRIDES if stage == "stage1" else STAGE2_OVERRIDES,
    }
    if stage == "stage2":
        defaults["vocab"] = folder / "tokenizer" / "vocab.txt"
    convert_internvideo2(folder, output, **{**defaults, **kwargs})
    return output


def write_clip(
    path: Path, num_frames: int = 20, width: int = 96, height: int = 72, fps: int = 10, seed: int = 0
) -> Path:
    """A generated H.264 clip (libx264, yuv420p): a moving square over a seeded random colour field."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(num_frames):
            frame = background.copy()
            left = int(index * (width - 16) / max(1, num_frames - 1))
            frame[height // 3 : height // 3 + 16, left : left + 16] = (230, 40, 30)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path

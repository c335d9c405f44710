# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Big-model loading: `device_map="auto"` with CPU + disk offload gives the logits of a one-device model, and the
placement never splits a vision block, a Q-Former layer or a decoder layer."""

import shutil

import pytest
import torch


BLOCK_CLASSES = ("InternVLVisionLayer", "Blip2QFormerLayer", "MistralDecoderLayer")


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from videochat.cli.demo import write_demo_video, write_original_checkpoint
    from videochat.convert.converter import convert

    root = tmp_path_factory.mktemp("multi_device")
    original = write_original_checkpoint(root / "original", seed=1)
    convert(original, root / "converted", preset="internvideo2-chat-8b-hd", progress=False)
    video = write_demo_video(root / "clip.mp4", num_frames=16)
    yield root, root / "converted", video
    shutil.rmtree(root, ignore_errors=True)


def block_paths(model) -> set[str]:
    return {name for name, module in model.named_modules() if type(module).__name__ in BLOCK_CLASSES}


def test_no_split_modules_cover_every_block_type():
    from conftest import tiny_config

    from videochat import VideoChatForConditionalGeneration

    model = VideoChatForConditionalGeneration(tiny_config())
    no_split = set(model._no_split_modules)  # own blocks plus those the LLM registers
    assert set(BLOCK_CLASSES) <= no_split


def test_offloaded_device_map_gives_the_same_logits_and_keeps_blocks_whole(tiny_checkpoint):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    import videochat  # noqa: F401

    root, folder, video = tiny_checkpoint
    processor = AutoProcessor.from_pretrained(folder)
    conversation = [
        {
            "role": "user",
            "content": [{"type": "video", "path": str(video)}, {"type": "text", "text": "describe the video."}],
        }
    ]
    inputs = processor.apply_chat_template(
        conversation,
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        processor_kwargs={"num_frames": 2},
    )
    reference_model = AutoModelForImageTextToText.from_pretrained(folder).eval()
    with torch.no_grad():
        reference = reference_model(**inputs).logits
    total = sum(p.numel() * p.element_size() for p in reference_model.parameters())

    offloaded = AutoModelForImageTextToText.from_pretrained(
        folder,
        device_map="auto",
        max_memory={"cpu": int(total * 0.4)},
        offload_folder=str(root / "offload"),
    ).eval()
    device_map = offloaded.hf_device_map
    placements = set(device_map.values())
    assert "disk" in placements and "cpu" in placements, device_map  # the budget forced a split

    blocks = block_paths(offloaded)
    assert blocks
    for key in device_map:
        # a device-map entry is a whole block or something around blocks, never a piece inside one
        assert not any(key.startswith(block + ".") for block in blocks), f"{key} splits a block"
    decoder_layers = [b for b in blocks if ".layers." in b and "language_model" in b]
    assert any(any(block.startswith(key + ".") or block == key for key in device_map) for block in decoder_layers)

    with torch.no_grad():
        logits = offloaded(**inputs).logits
    torch.testing.assert_close(logits, reference, rtol=1e-5, atol=1e-5)

    generated = offloaded.generate(**inputs, max_new_tokens=4, do_sample=False)
    expected = reference_model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert torch.equal(generated, expected)

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Full prompts through the processor with the REAL Mistral vocabularies (converted by `convert-tokenizer`) equal the
original's concatenated per-segment ids recorded in shared/fixtures/tokenizers (model-card prompt, instruction +
time message, multi-turn), for InternVideo2-Chat-8B-HD (v0.3 vocabulary) and VideoChat2-Mistral (v0.2)."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path

from videochat.convert.presets import build_processor
from videochat.convert.tokenizer import convert_tokenizer
from videochat.processing_videochat import prepare_qformer_tokenizer


VOCABULARIES = {
    "internvideo2-chat-8b-hd": (
        "mistral_v3",
        "mistral_instruct_tokenizer_240323.model.v3",
        "hub_tokenizer_config_internvideo2_chat_8b.json",
    ),
    "videochat2-mistral-7b": (
        "mistral_v1",
        "tokenizer.model.v1",
        "assumed_tokenizer_config_mistral_7b_instruct_v0.2.json",
    ),
}


def recorded_ids(vocabulary: str) -> dict[str, list[int]]:
    expected = json.loads(shared_path("fixtures", "tokenizers", "expected.json").read_text())
    return {case["tag"]: case["ids"] for case in expected["tokenizers"][vocabulary]["cases"]}


_BUILT: dict[str, tuple] = {}


def build(preset: str, tmp_path_factory):
    if preset not in _BUILT:
        _BUILT[preset] = _build(preset, tmp_path_factory)
    return _BUILT[preset]


@pytest.fixture(scope="module", params=sorted(VOCABULARIES))
def processor_and_ids(request, tmp_path_factory):
    return build(request.param, tmp_path_factory)


def _build(preset: str, tmp_path_factory):
    import mistral_common
    from transformers import AutoTokenizer, BertTokenizer

    vocabulary, model_name, config_name = VOCABULARIES[preset]
    source = tmp_path_factory.mktemp("spm")
    shutil.copy(Path(os.path.dirname(mistral_common.__file__)) / "data" / model_name, source / "tokenizer.model")
    shutil.copy(shared_path("fixtures", "tokenizers", config_name), source / "tokenizer_config.json")
    converted = convert_tokenizer(source, tmp_path_factory.mktemp("tok") / "out", preset)
    tokenizer = AutoTokenizer.from_pretrained(converted)
    qformer = prepare_qformer_tokenizer(
        BertTokenizer(str(shared_path("fixtures", "internvideo2_chat", "tiny_hd", "qformer_tokenizer", "vocab.txt")))
    )
    return preset, build_processor(preset, tokenizer, qformer), recorded_ids(vocabulary)


def video(num_frames: int = 24) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, size=(num_frames, 90, 160, 3), dtype=np.uint8)


def encode(processor, conversation, **kwargs) -> list[int]:
    out = processor.apply_chat_template(
        conversation, tokenize=True, return_dict=True, processor_kwargs={"num_frames": 8}, **kwargs
    )
    ids = list(out["input_ids"][0])
    # the original writes id 0 at the visual positions; ours writes the distinct id of the `<video>` special token
    assert processor.video_token_id not in ids[:1] and processor.video_token_id >= len(processor.tokenizer) - 4
    return [0 if token == processor.video_token_id else token for token in ids]


def test_model_card_prompt(processor_and_ids):
    preset, processor, ids = processor_and_ids
    conversation = [
        {
            "role": "user",
            "content": [
                {"type": "video", "video": video()},
                {
                    "type": "text",
                    "text": (
                        "Describe the action step by step."
                        if preset.startswith("internvideo2")
                        else "Describe the video in details."
                    ),
                },
            ],
        }
    ]
    visual = [0] * 96
    if preset.startswith("internvideo2"):
        # HD: 2 tiles + global view, every text segment tokenized separately WITH BOS
        expected = (
            ids["iv2_seg0_default"]
            + visual
            + ids["iv2_seg_mid_hd"]
            + visual
            + ids["iv2_seg_mid_hd"]
            + visual
            + ids["iv2_seg_last_default"]
        )
        assert len(expected) == 322  # not the 321 of a plain fast tokenizer: segment 0 keeps the original lone "▁"
    else:
        expected = ids["vc2_seg0_video"] + visual + ids["vc2_seg1_chat"]
    assert encode(processor, conversation, add_generation_prompt=True) == expected


def test_instruction_and_time_message(tmp_path_factory):
    _, processor, ids = build("internvideo2-chat-8b-hd", tmp_path_factory)
    conversation = [
        {"role": "system", "content": "You are a helpful video assistant."},
        {
            "role": "user",
            "content": [
                {"type": "video", "video": video(), "fps": 8.0},
                {"type": "text", "text": "Describe the action step by step."},
            ],
        },
    ]
    visual = [0] * 96
    expected = (
        ids["iv2_seg0_instr"]
        + visual
        + ids["iv2_seg_mid_hd"]
        + visual
        + ids["iv2_seg_mid_hd"]
        + visual
        + ids["iv2_seg_last_timemsg"]
    )
    assert encode(processor, conversation, add_generation_prompt=True, add_time_message=True) == expected


def test_multi_turn(processor_and_ids):
    preset, processor, ids = processor_and_ids
    iv2 = preset.startswith("internvideo2")
    first, answer, second = (
        ("What is the man doing?", "He is dancing on a stage.", "What color is his shirt?")
        if iv2
        else ("Describe the video in details.", "The man is dancing on a stage.", "What color is his shirt?")
    )
    conversation = [
        {"role": "user", "content": [{"type": "video", "video": video()}, {"type": "text", "text": first}]},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": second},
    ]
    visual = [0] * 96
    if iv2:
        expected = (
            ids["iv2_seg0_default"]
            + visual
            + ids["iv2_seg_mid_hd"]
            + visual
            + ids["iv2_seg_mid_hd"]
            + visual
            + ids["iv2_multiturn"]
        )
    else:
        expected = ids["vc2_seg0_video"] + visual + ids["vc2_multiturn"]
    assert encode(processor, conversation, add_generation_prompt=True) == expected

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""The ids a one-pass serving tokenization reaches (vLLM: the rendered prompt tokenized whole, every placeholder
token replaced by its item's expansion ids, `videochat.cli.serving`) equal the processor's segment-wise ids for
every preset with a sentencepiece LLM tokenizer, converted from the REAL Mistral vocabularies, and for chat (no
special tokens) as well as completion (special tokens) tokenization; the Q-Former instruction comes back out of the
prompt. vLLM itself is exercised in test_vllm_serving.py."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path
from test_internlm2_5 import write_llm_tokenizer

from videochat.cli.serving import item_expansion_ids, prompt_ids_for_serving
from videochat.convert.presets import PRESETS, build_processor
from videochat.convert.tokenizer import convert_tokenizer
from videochat.processing_videochat import prepare_qformer_tokenizer


# Mistral v0.3 for InternVideo2-Chat; the 32000-piece v1 model stands in for the LLaMA-2-style vocabularies of
# VideoChat2 / VideoChat (same model type and normalizer). InternLM2.5 gets a small InternLM2-like model trained here.
MISTRAL_V3 = ("mistral_instruct_tokenizer_240323.model.v3", "hub_tokenizer_config_internvideo2_chat_8b.json")
MISTRAL_V1 = ("tokenizer.model.v1", "assumed_tokenizer_config_mistral_7b_instruct_v0.2.json")
VOCABULARIES = {
    "internvideo2-chat-8b-hd": MISTRAL_V3,
    "internvideo2-chat-8b": MISTRAL_V3,
    "videochat2-mistral-7b": MISTRAL_V1,
    "videochat2-hd-mistral-7b": MISTRAL_V1,
    "videochat2-vicuna-7b": ("tokenizer.model.v1", None),
    "videochat2-phi3-mini": ("tokenizer.model.v1", None),
    "videochat-7b": ("tokenizer.model.v1", None),
    "internvideo2-chat-8b-internlm2_5": None,
}
assert set(VOCABULARIES) == {name for name, preset in PRESETS.items() if preset.tokenizer is not None} - {
    "videochat-13b"  # same template and tokenizer settings as videochat-7b
}

VIDEO = np.random.default_rng(0).integers(0, 255, size=(16, 90, 160, 3), dtype=np.uint8)
WIDE_VIDEO = np.random.default_rng(1).integers(0, 255, size=(16, 96, 320, 3), dtype=np.uint8)
IMAGE = np.random.default_rng(2).integers(0, 255, size=(120, 90, 3), dtype=np.uint8)


def user(*blocks, text):
    return {"role": "user", "content": [*blocks, {"type": "text", "text": text}]}


CONVERSATIONS = {
    "video": [user({"type": "video", "video": VIDEO}, text="Describe the action step by step.")],
    "system": [
        {"role": "system", "content": "Carefully watch the video and pay attention to the cause of events."},
        user({"type": "video", "video": WIDE_VIDEO}, text=" What happens first?"),
    ],
    "image": [user({"type": "image", "image": IMAGE}, text="What is in the picture?")],
    "image_and_video": [user({"type": "image", "image": IMAGE}, {"type": "video", "video": VIDEO}, text="Compare.")],
    "two_videos": [
        user({"type": "video", "video": VIDEO}, {"type": "video", "video": WIDE_VIDEO}, text="Differences?")
    ],
    "multi_turn": [
        user({"type": "video", "video": VIDEO}, text="What is the man doing?"),
        {"role": "assistant", "content": "He is dancing on a stage."},
        user(text="What color is his shirt?"),
    ],
}


@pytest.fixture(scope="module", params=sorted(VOCABULARIES))
def processor(request, tmp_path_factory):
    import mistral_common
    from transformers import AutoTokenizer, BertTokenizer

    source = tmp_path_factory.mktemp("spm")
    if VOCABULARIES[request.param] is None:
        write_llm_tokenizer(source)
        model_name = config_name = None
    else:
        model_name, config_name = VOCABULARIES[request.param]
        shutil.copy(Path(os.path.dirname(mistral_common.__file__)) / "data" / model_name, source / "tokenizer.model")
    if config_name:
        shutil.copy(shared_path("fixtures", "tokenizers", config_name), source / "tokenizer_config.json")
    converted = convert_tokenizer(source, tmp_path_factory.mktemp("tok") / "out", request.param)
    vocab = shared_path("fixtures", "internvideo2_chat", "tiny_hd", "qformer_tokenizer", "vocab.txt")
    qformer = BertTokenizer(str(vocab))
    return build_processor(request.param, AutoTokenizer.from_pretrained(converted), prepare_qformer_tokenizer(qformer))


def served_ids(processor, prompt: str, num_clips: dict, add_special_tokens: bool) -> tuple[list[int], str | None]:
    """What vLLM does with our plugin: tokenize in one pass, fix the prompt's specials and Q-Former block, then expand
    every placeholder token with its item's ids."""
    ids, qformer_text = prompt_ids_for_serving(
        processor, processor.tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"]
    )
    expanded, seen = [], {"video": 0, "image": 0}
    for token in ids:
        kind = {processor.video_token_id: "video", processor.image_token_id: "image"}.get(token)
        if kind is None:
            expanded.append(token)
            continue
        clips = num_clips[kind][seen[kind]]
        seen[kind] += 1
        replacement = getattr(processor, f"replace_{kind}_token")({f"{kind}_grid_thw": [[clips, 1, 1]]}, 0)
        expanded.extend(item_expansion_ids(processor, replacement))
    return expanded, qformer_text


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_one_pass_serving_ids_equal_the_processor(processor, name):
    conversation = CONVERSATIONS[name]
    settings = {"add_generation_prompt": True, "add_time_message": False}
    ours = processor.apply_chat_template(
        conversation, tokenize=True, return_dict=True, processor_kwargs={"num_frames": 8}, **settings
    )
    rendered = processor.apply_chat_template(conversation, **settings)
    num_clips = {kind: [int(row[0]) for row in ours.get(f"{kind}_grid_thw", [])] for kind in ("video", "image")}
    if processor.add_bos_to_every_segment and name != "image":
        assert max(num_clips["video"]) > 1 or processor.video_clip_separator is None  # HD separators are covered
    for add_special_tokens in (True, False):  # completions / chat completions
        ids, qformer_text = served_ids(processor, rendered, num_clips, add_special_tokens)
        assert ids == list(ours["input_ids"][0])
        system = conversation[0]["content"] if conversation[0]["role"] == "system" else None
        assert qformer_text == system


def test_the_qformer_instruction_reaches_the_served_items(processor):
    conversation = CONVERSATIONS["system"]
    settings = {"add_generation_prompt": True, "add_time_message": False}
    ours = processor.apply_chat_template(
        conversation, tokenize=True, return_dict=True, processor_kwargs={"num_frames": 8}, **settings
    )
    rendered = processor.apply_chat_template(conversation, **settings)
    _, qformer_text = served_ids(processor, rendered, {"video": [1], "image": []}, False)
    if processor.qformer_instruction_mode == "none":  # a text-free Q-Former: the plugin passes no qformer_text
        assert "video_qformer_input_ids" not in ours
        return
    # vLLM processes the items with `qformer_text` as a processor kwarg and a placeholder-only text
    items = processor(text="<video>", videos=WIDE_VIDEO, num_frames=8, qformer_text=qformer_text)
    assert items["video_qformer_input_ids"] == ours["video_qformer_input_ids"]
    default = processor(text="<video>", videos=WIDE_VIDEO, num_frames=8)
    assert default.get("video_qformer_input_ids") != items["video_qformer_input_ids"]


def test_a_marker_elsewhere_than_at_the_start_is_rejected(processor):
    prompt = "Hello <qformer_instruction>x</qformer_instruction> <video>"
    ids = processor.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    with pytest.raises(ValueError, match="may only open a prompt"):
        prompt_ids_for_serving(processor, ids)
    with pytest.raises(ValueError, match="may only open a prompt"):
        processor(text=prompt, videos=VIDEO)

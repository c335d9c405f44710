# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Shared test helpers: location of the read-only fixtures and a tiny random VideoChat configuration."""

import importlib.util
import io
import os
from pathlib import Path

import pytest
import sentencepiece as spm
import torch


# The vLLM / lmms-eval tests run in their own venvs (`make test-serving`); where those packages are missing they are
# not collected at all.
collect_ignore = [
    name
    for name, package in (("test_vllm_serving.py", "vllm"), ("test_lmms_eval.py", "lmms_eval"))
    if importlib.util.find_spec(package) is None
]

SHARED = Path(os.environ.get("VIDEOCHAT_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"test data missing: {path} (set VIDEOCHAT_SHARED to the shared/ folder)")
    return path


VISION_MODEL_TYPES = {
    "internvideo2": "videochat_internvideo2_vision",
    "umt": "videochat_umt_vision",
    "eva_gmhra": "videochat_eva_gmhra_vision",
}


def tiny_vision_config(encoder_type: str = "internvideo2", **fields) -> dict:
    """The vision sub-config of a tiny model: 32 wide, 2 blocks, 28x28 frames (`encoder_type` picks the tower)."""
    vision = {
        "model_type": VISION_MODEL_TYPES[encoder_type],
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": 28,
        "patch_size": 14,
        "num_frames": 4,
    }
    if encoder_type == "eva_gmhra":
        vision.update(num_gmhra_layers=1, gmhra_mlp_ratio=1.5)
    return {**vision, **fields}


def tiny_config(encoder_type: str = "internvideo2", vocab_size: int = 120, **overrides):
    """A tiny random VideoChat config (32-wide towers, 2-layer Mistral) for fast CPU tests; VideoChat v1's
    EVA + GMHRA tower comes with its text-free Q-Former."""
    from videochat import VideoChatConfig

    vision = tiny_vision_config(encoder_type)
    qformer = {
        "model_type": "blip_2_qformer",
        "vocab_size": 50,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 48,
        "max_position_embeddings": 32,
        "use_qformer_text_input": encoder_type != "eva_gmhra",
    }
    text = {
        "model_type": "mistral",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "vocab_size": vocab_size,
        "max_position_embeddings": 512,
        "pad_token_id": 2,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    for key, value in overrides.pop("vision_config", {}).items():
        vision[key] = value
    for key, value in overrides.pop("qformer_config", {}).items():
        qformer[key] = value
    for key, value in overrides.pop("text_config", {}).items():
        text[key] = value
    fields = {
        "vision_config": vision,
        "qformer_config": qformer,
        "text_config": text,
        "num_query_tokens": 2,
        "num_extra_query_tokens": 3,
        "video_token_id": 0,
        "image_token_id": 0,
    }
    fields.update(overrides)
    return VideoChatConfig(**fields)


def pytest_collection_modifyitems(config, items):
    """Test classes may list slow tests in `heavy_tests` (name prefixes): those get the `heavy` marker."""
    for item in items:
        prefixes = tuple(getattr(getattr(item, "cls", None), "heavy_tests", ()))
        if prefixes and item.name.startswith(prefixes):
            item.add_marker(pytest.mark.heavy)


@pytest.fixture
def tiny_model():
    from videochat import VideoChatForConditionalGeneration

    torch.manual_seed(0)
    return VideoChatForConditionalGeneration(tiny_config()).eval()


# The normalizer / trainer options under which LLaMA's, Mistral's and InternLM2's `tokenizer.model` were trained.
LLAMA_LIKE_SENTENCEPIECE_OPTIONS = {
    "split_digits": True,
    "allow_whitespace_only_pieces": True,
    "remove_extra_whitespaces": False,
    "normalization_rule_name": "identity",
}


def train_sentencepiece_model(corpus: list[str], vocab_size: int, **options) -> bytes:
    """A serialized BPE sentencepiece model trained on `corpus`: byte fallback, `<unk>` 0 / `<s>` 1 / `</s>` 2, no pad;
    `options` add or override trainer options (e.g. `**LLAMA_LIKE_SENTENCEPIECE_OPTIONS`, `add_dummy_prefix`)."""
    model = io.BytesIO()
    settings = {"byte_fallback": True, "character_coverage": 1.0, "unk_id": 0, "bos_id": 1, "eos_id": 2, "pad_id": -1}
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_writer=model,
        model_type="bpe",
        vocab_size=vocab_size,
        minloglevel=2,
        **{**settings, **options},
    )
    return model.getvalue()

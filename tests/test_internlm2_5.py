# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""InternVideo2-Chat-8B-InternLM2.5: the exact-id `InternLM2Tokenizer` conversion, the chat template and the BOS rule
of the STEP training code (`src/dataset/it_dataset_internlm_hd.py`), the answer labels, and the LLM config read
from the LLM's own `config.json` at conversion (never the preset's).

The tokenizer tests train small sentencepiece models here, laid out like InternLM2's `tokenizer.model` (BPE with
byte fallback; the last six pieces user-defined and renamed by `added_tokens_decoder` to the chat tokens), with and
without sentencepiece's dummy prefix (InternLM2's has none: `"<|im_start|>user\\n"` is `[92543, 1008, 364]`, and a
segment that starts with a newline starts with id 364).
"""

import json
import random
import shutil
from pathlib import Path

import pytest
import sentencepiece as spm
import torch
from conftest import LLAMA_LIKE_SENTENCEPIECE_OPTIONS, train_sentencepiece_model
from safetensors import safe_open
from safetensors.torch import save_file
from sentencepiece import sentencepiece_model_pb2
from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

import videochat  # noqa: F401  (registers the classes with the Auto classes)
from videochat.cli.demo import (
    DEMO_DIMS,
    original_internvideo2_chat_shapes,
    write_demo_video,
    write_original_checkpoint,
    write_qformer_vocab,
)
from videochat.convert.converter import convert
from videochat.convert.presets import get_preset, load_chat_template
from videochat.convert.sources import ConversionError, open_source
from videochat.convert.tokenizer import convert_tokenizer, resolve_tokenizer_settings
from videochat.training import build_training_example, resolve_answer_end


PRESET = "internvideo2-chat-8b-internlm2_5"
CHAT_TOKENS = ["<|plugin|>", "<|interpreter|>", "<|action_end|>", "<|action_start|>", "<|im_end|>", "<|im_start|>"]
CORPUS = [
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n",
    "<|im_start|>user\n<vid></vid><|im_end|>\n<|im_start|>user\nWhat is happening in the video?<|im_end|>\n",
    "<|im_start|>assistant\nA man is cooking pasta in a small kitchen.<|im_end|>\n</s>",
    "The video contains 8 frames sampled at 0.1, 0.5, 0.9, 1.2 seconds. Describe it in detail.",
    "a red square moves from the left to the right over a blue background while the camera stays still",
    "视频里的人在做什么？ Café crème brûlée, naïve façade.  two  spaces,\tand a tab.",
] * 40


def train_internlm2_like_sentencepiece(folder: Path, add_dummy_prefix: bool) -> Path:
    model = train_sentencepiece_model(
        CORPUS, vocab_size=500, add_dummy_prefix=add_dummy_prefix, **LLAMA_LIKE_SENTENCEPIECE_OPTIONS
    )
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model)
    for index in range(141, 147):  # InternLM2: the last six pieces, renamed to the chat tokens by the config
        piece = proto.pieces.add()
        piece.piece, piece.score, piece.type = f"[UNUSED_TOKEN_{index}]", 0.0, piece.USER_DEFINED
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.model").write_bytes(proto.SerializeToString())
    return folder / "tokenizer.model"


def internlm2_tokenizer_config(vocab_size: int) -> dict:
    """The layout of InternLM2.5-7B-chat's hub `tokenizer_config.json`, chat tokens at the end of this vocabulary."""
    entry = {"lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True}
    added = {str(index): {**entry, "content": content} for index, content in enumerate(["<unk>", "<s>", "</s>"])}
    first = vocab_size - len(CHAT_TOKENS)
    added.update({str(first + offset): {**entry, "content": token} for offset, token in enumerate(CHAT_TOKENS)})
    return {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>", "<|action_start|>", "<|action_end|>"]
        + ["<|interpreter|>", "<|plugin|>"],
        "auto_map": {"AutoTokenizer": ["tokenization_internlm2.InternLM2Tokenizer", None]},
        "bos_token": "<s>",
        "clean_up_tokenization_spaces": False,
        "decode_with_prefix_space": False,
        "eos_token": "</s>",
        "model_max_length": 1000000000000000019884624838656,
        "pad_token": "</s>",
        "tokenizer_class": "InternLM2Tokenizer",
        "unk_token": "<unk>",
    }


def write_llm_tokenizer(folder: Path, add_dummy_prefix: bool = False) -> Path:
    model_file = train_internlm2_like_sentencepiece(folder, add_dummy_prefix)
    vocab_size = spm.SentencePieceProcessor(model_file=str(model_file)).get_piece_size()
    (folder / "tokenizer_config.json").write_text(json.dumps(internlm2_tokenizer_config(vocab_size)))
    return folder


class InternLM2SlowReference:
    """
    `InternLM2Tokenizer` (InternLM2 remote code) on transformers 4.38-4.41, re-stated on `sentencepiece`:
    `PreTrainedTokenizer.tokenize` splits the text at the added tokens (leftmost, longest first; none of InternLM2's
    strips spaces), `_tokenize` is `sp_model.encode(piece, out_type=str)` on every other piece, ids come from the
    added tokens or `sp_model.piece_to_id`, and `add_special_tokens` prepends `sp_model.bos_id()`.
    """

    def __init__(self, folder: Path):
        self.sp = spm.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
        config = json.loads((folder / "tokenizer_config.json").read_text())
        self.added = {entry["content"]: int(index) for index, entry in config["added_tokens_decoder"].items()}
        self.contents = sorted(self.added, key=len, reverse=True)

    def __call__(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids, start, position = [], 0, 0
        while position < len(text):
            token = next((token for token in self.contents if text.startswith(token, position)), None)
            if token is None:
                position += 1
                continue
            ids += self._encode(text[start:position]) + [self.added[token]]
            position = start = position + len(token)
        ids += self._encode(text[start:])
        return [self.sp.bos_id()] * add_special_tokens + ids

    def _encode(self, piece: str) -> list[int]:
        return [self.sp.piece_to_id(token) for token in self.sp.encode(piece, out_type=str)] if piece else []


FRAGMENTS = ["Describe", "the", "video", "?", ".", "0.5", "视频", "Café", "\n", "\n\n", "\t", " ", "  ", "<vid>"]


def random_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    specials = ["<s>", "</s>", "<unk>", *CHAT_TOKENS, "</vid><vid>"]
    texts = []
    for _ in range(count):
        parts = [
            rng.choice(specials)
            if rng.random() < 0.3
            else " " * rng.randint(1, 12)
            if rng.random() < 0.15
            else rng.choice(FRAGMENTS)
            for _ in range(rng.randint(1, 10))
        ]
        texts.append(("" if rng.random() < 0.5 else " ").join(parts))
    return texts


CHAT_TEXTS = [
    "",
    "<|im_start|>user\n<vid>",
    "</vid><vid>",
    "</vid><|im_end|>\n<|im_start|>user\nWhat is happening in the video?<|im_end|>\n<|im_start|>assistant\n",
    "A man is cooking pasta.<|im_end|>\n</s>",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n",
    " leading space, trailing space ",
]


@pytest.mark.parametrize("add_dummy_prefix", [False, True])
def test_converted_tokenizer_gives_internlm2_tokenizer_ids(tmp_path, add_dummy_prefix):
    source = write_llm_tokenizer(tmp_path / "source", add_dummy_prefix)
    reference = InternLM2SlowReference(source)
    converted = convert_tokenizer(source, tmp_path / "converted", PRESET)
    resaved = tmp_path / "resaved"
    AutoTokenizer.from_pretrained(converted).save_pretrained(resaved)
    texts = CHAT_TEXTS + random_texts(300, seed=int(add_dummy_prefix))
    for folder in (converted, resaved):
        tokenizer = AutoTokenizer.from_pretrained(folder)
        for add_special_tokens in (True, False):
            got = tokenizer(texts, add_special_tokens=add_special_tokens)["input_ids"]
            assert [text for text, ids in zip(texts, got) if ids != reference(text, add_special_tokens)] == []
    # the chat tokens are the renamed last pieces; "\n" after a chat token is its own piece without a dummy prefix
    vocab_size = reference.sp.get_piece_size()
    assert tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|im_start|>"]) == [vocab_size - 2, vocab_size - 1]
    newline = reference.sp.piece_to_id("\n") if "\n" in reference.sp.id_to_piece(range(vocab_size)) else None
    if not add_dummy_prefix and newline is not None:
        assert tokenizer("<|im_end|>\n", add_special_tokens=False)["input_ids"] == [vocab_size - 2, newline]
    text = "A man is cooking pasta in a small kitchen."
    assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == text
    # InternLM2Tokenizer's decode drops the spaces before punctuation (its clean_up_tokenization), after a reload too
    assert tokenizer.decode(tokenizer("Is it pasta ? Yes , it is .")["input_ids"], skip_special_tokens=True) == (
        "Is it pasta? Yes, it is."
    )


def test_internlm2_settings_follow_the_class_not_the_llama_defaults(tmp_path):
    source = write_llm_tokenizer(tmp_path / "source")
    config = json.loads((source / "tokenizer_config.json").read_text())
    (source / "tokenizer_config.json").write_text(json.dumps({**config, "legacy": False}))
    settings = resolve_tokenizer_settings(source, PRESET)
    # InternLM2Tokenizer has no `legacy` handling: every piece goes through sentencepiece as it is
    assert settings["tokenizer_class"] == "InternLM2Tokenizer" and settings["legacy"] is True
    assert settings["pad_token"] == "</s>" and settings["add_bos_token"] is True
    tokenizer = AutoTokenizer.from_pretrained(convert_tokenizer(source, tmp_path / "converted", PRESET))
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == ("<s>", "</s>", "</s>")


def test_tokenizer_class_must_match_the_preset(tmp_path):
    source = write_llm_tokenizer(tmp_path / "source")
    with pytest.raises(ValueError, match="expected a LlamaTokenizer config"):
        convert_tokenizer(source, tmp_path / "out", "internvideo2-chat-8b-hd")
    config = json.loads((source / "tokenizer_config.json").read_text())
    (source / "tokenizer_config.json").write_text(json.dumps({**config, "tokenizer_class": "LlamaTokenizer"}))
    with pytest.raises(ValueError, match="expected a InternLM2Tokenizer config"):
        convert_tokenizer(source, tmp_path / "out", PRESET)
    # InternLM2Tokenizer adds sentencepiece's bos_id() whatever bos_token says: a config naming another BOS is refused
    (source / "tokenizer_config.json").write_text(json.dumps({**config, "bos_token": "<|im_start|>"}))
    with pytest.raises(ValueError, match="BOS"):
        convert_tokenizer(source, tmp_path / "out", PRESET)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------------- chat template


def test_template_follows_the_training_code():
    from jinja2 import Environment

    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What happens?"}]},
        {"role": "assistant", "content": "A man cooks."},
        {"role": "user", "content": "And then?"},
    ]
    environment = Environment(extensions=["jinja2.ext.loopcontrols"])
    # `{% generation %}` is transformers' extension; rendered here with a no-op stand-in
    template = load_chat_template(PRESET).replace("{% generation %}", "").replace("{% endgeneration %}", "")
    rendered = environment.from_string(template).render(messages=messages, add_generation_prompt=True)
    assert rendered == (
        # the Q-Former's copy of the system message, which the processor cuts out of the LLM prompt
        "<qformer_instruction>You are a helpful assistant.</qformer_instruction>"
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<vid><video></vid><|im_end|>\n"
        "<|im_start|>user\nWhat happens?<|im_end|>\n"
        "<|im_start|>assistant\nA man cooks.<|im_end|>\n</s>"
        "<|im_start|>user\nAnd then?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    preset = get_preset(PRESET)
    assert preset.processor["add_bos_to_every_segment"] is False
    assert preset.processor["add_bos_to_first_segment"] is False
    assert preset.requires_llm_config


def test_assistant_mask_covers_the_answer_and_its_terminators(tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(
        convert_tokenizer(write_llm_tokenizer(tmp_path / "source"), tmp_path / "converted", PRESET)
    )
    messages = [
        {"role": "user", "content": "What happens?"},
        {"role": "assistant", "content": "A man cooks."},
        {"role": "user", "content": "And then?"},
        {"role": "assistant", "content": "He eats."},
    ]
    encoded = tokenizer.apply_chat_template(
        messages,
        chat_template=load_chat_template(PRESET),
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    ids, mask = encoded["input_ids"], encoded["assistant_masks"]
    supervised = tokenizer.decode([token for token, keep in zip(ids, mask) if keep])
    assert supervised == "A man cooks.<|im_end|>\n</s>He eats.<|im_end|>\n</s>"


# ------------------------------------------------------------------------------------- conversion of a tiny model

LLM_CONFIG_1M = {  # the shape of internlm2_5-7b-chat-1m's config.json, rope settings unlike the preset record's
    "architectures": ["InternLM2ForCausalLM"],
    "auto_map": {"AutoConfig": "configuration_internlm2.InternLM2Config"},
    "model_type": "internlm2",
    "bias": False,
    "hidden_act": "silu",
    "hidden_size": DEMO_DIMS["llm"],
    "intermediate_size": 2 * DEMO_DIMS["llm"],
    "num_hidden_layers": DEMO_DIMS["llm_layers"],
    "num_attention_heads": DEMO_DIMS["llm_heads"],
    "num_key_value_heads": DEMO_DIMS["llm_kv_heads"],
    "max_position_embeddings": 262144,
    "rope_theta": 50000000,
    "rope_scaling": {"type": "dynamic", "factor": 2.5},
    "rms_norm_eps": 1e-5,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 2,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}


def _internlm2_llm_shapes(vocab_size: int) -> dict[str, tuple[int, ...]]:
    """The InternLM2 LLM under `lm.base_model.model.` with STEP's LoRA targets (wqkv, wo, w1, w2, w3)."""
    h, heads, kv_heads, r = DEMO_DIMS["llm"], DEMO_DIMS["llm_heads"], DEMO_DIMS["llm_kv_heads"], DEMO_DIMS["lora_r"]
    head_dim, mlp = h // heads, 2 * h
    lm = "lm.base_model.model"
    shapes = {
        f"{lm}.model.tok_embeddings.weight": (vocab_size, h),
        f"{lm}.model.norm.weight": (h,),
        f"{lm}.output.weight": (vocab_size, h),
    }
    for i in range(DEMO_DIMS["llm_layers"]):
        layer = f"{lm}.model.layers.{i}"
        shapes.update({f"{layer}.attention_norm.weight": (h,), f"{layer}.ffn_norm.weight": (h,)})
        adapted = {
            f"{layer}.attention.wqkv": ((heads + 2 * kv_heads) * head_dim, h),
            f"{layer}.attention.wo": (h, h),
            f"{layer}.feed_forward.w1": (mlp, h),
            f"{layer}.feed_forward.w3": (mlp, h),
            f"{layer}.feed_forward.w2": (h, mlp),
        }
        for module, (rows, columns) in adapted.items():
            shapes.update(
                {
                    f"{module}.weight": (rows, columns),
                    f"{module}.lora_A.default.weight": (r, columns),
                    f"{module}.lora_B.default.weight": (rows, r),
                }
            )
    return shapes


def write_internlm2_5_original(folder: Path, with_llm_config: bool = True) -> Path:
    """A random tiny InternVideo2-Chat-8B-InternLM2.5 checkpoint in the original layout (PEFT-wrapped InternLM2)."""
    folder.mkdir(parents=True)
    write_llm_tokenizer(folder / "llm_tokenizer")
    vocab_size = spm.SentencePieceProcessor(model_file=str(folder / "llm_tokenizer" / "tokenizer.model")).vocab_size()
    qformer_vocab = write_qformer_vocab(folder / "qformer_tokenizer") + 1
    shapes = {
        key: shape
        for key, shape in original_internvideo2_chat_shapes(DEMO_DIMS, vocab_size, qformer_vocab).items()
        if not key.startswith("lm.")
    }
    shapes.update(_internlm2_llm_shapes(vocab_size))
    generator = torch.Generator().manual_seed(0)
    state_dict = {
        key: (1.0 if key.endswith("norm.weight") or key.endswith(("norm1.weight", "norm2.weight")) else 0.0)
        + 0.05 * torch.randn(shape, generator=generator)
        for key, shape in shapes.items()
    }
    state_dict["qformer.bert.embeddings.position_ids"] = torch.arange(64).unsqueeze(0)
    save_file(state_dict, folder / "original_checkpoint.safetensors", metadata={"format": "pt"})
    if with_llm_config:
        (folder / "lm_config").mkdir()
        (folder / "lm_config" / "config.json").write_text(json.dumps({**LLM_CONFIG_1M, "vocab_size": vocab_size}))
    scratch = folder / "_demo"  # the demo's InternVideo2-Chat original config, with an InternLM2.5 LLM block
    write_original_checkpoint(scratch)
    original_config = json.loads((scratch / "original_config.json").read_text())
    shutil.rmtree(scratch)
    original_config["variant"] = "InternLM2.5 (test)"
    original_config["model_config"]["llm"] = {
        "name": "internlm2_5_7b",
        "pretrained_llm_path": "internlm/internlm2_5-7b-chat-1m",
        "use_lora": True,
        "lora_r": DEMO_DIMS["lora_r"],
        "lora_alpha": 2 * DEMO_DIMS["lora_r"],
    }
    (folder / "original_config.json").write_text(json.dumps(original_config, indent=2))
    return folder


@pytest.fixture(scope="module")
def converted_internlm2_5(tmp_path_factory):
    root = tmp_path_factory.mktemp("internlm2_5")
    original = write_internlm2_5_original(root / "original")
    result = convert(original, root / "converted", progress=False)
    assert result.preset == PRESET
    video = write_demo_video(root / "clip.mp4", num_frames=12, width=256, height=128)
    yield original, root / "converted", video
    shutil.rmtree(root, ignore_errors=True)


def test_text_config_comes_from_the_llm_config_json(converted_internlm2_5):
    _, converted, _ = converted_internlm2_5
    text = AutoConfig.from_pretrained(converted).text_config
    record = get_preset(PRESET).config["text_config"]
    assert text.model_type == "llama"
    assert text.max_position_embeddings == 262144 != record["max_position_embeddings"]
    assert text.rope_parameters["rope_type"] == "dynamic"
    assert text.rope_parameters["factor"] == 2.5 != record["rope_scaling"]["factor"]
    assert text.rope_parameters["rope_theta"] == 5e7 != record["rope_theta"]
    assert text.hidden_size == DEMO_DIMS["llm"] and text.num_key_value_heads == DEMO_DIMS["llm_kv_heads"]


def test_conversion_refuses_to_assume_the_llm_config(tmp_path):
    original = write_internlm2_5_original(tmp_path / "original", with_llm_config=False)
    with pytest.raises(ConversionError, match="config.json"):
        open_source(original)
    llm = tmp_path / "llm"
    llm.mkdir()
    (llm / "config.json").write_text(json.dumps({**LLM_CONFIG_1M, "vocab_size": 506, "rope_theta": 2e6}))
    assert open_source(original, llm=llm).config.text_config.rope_parameters["rope_theta"] == 2e6


def test_lora_is_folded_before_the_grouped_qkv_split(converted_internlm2_5):
    original, converted, _ = converted_internlm2_5
    with safe_open(str(original / "original_checkpoint.safetensors"), framework="pt") as handle:
        prefix = "lm.base_model.model.model.layers.1.attention.wqkv"
        weight, lora_a, lora_b = (handle.get_tensor(f"{prefix}.{name}") for name in ("weight", *LORA_NAMES))
    folded = weight + 2.0 * lora_b @ lora_a
    heads, kv_heads = DEMO_DIMS["llm_heads"], DEMO_DIMS["llm_kv_heads"]
    grouped = folded.reshape(kv_heads, heads // kv_heads + 2, -1, folded.shape[1])
    model = AutoModelForImageTextToText.from_pretrained(converted)
    attention = model.model.language_model.layers[1].self_attn
    torch.testing.assert_close(attention.k_proj.weight, grouped[:, -2].reshape(-1, folded.shape[1]))
    torch.testing.assert_close(attention.v_proj.weight, grouped[:, -1].reshape(-1, folded.shape[1]))
    torch.testing.assert_close(attention.q_proj.weight, grouped[:, :-2].reshape(-1, folded.shape[1]))


LORA_NAMES = ("lora_A.default.weight", "lora_B.default.weight")


def step_tokenize(tokenizer, text: str, num_queries: int, placeholder_id: int) -> list[int]:
    """STEP's `MultimodalLlamaTokenizer.prepare_text_input`: split at every clip placeholder `[<VID_PLH>]`, tokenize
    each piece with `add_special_tokens=False`, `num_queries` query positions per clip."""
    ids = []
    for index, piece in enumerate(text.split("[<VID_PLH>]")):
        if index:
            ids += [placeholder_id] * num_queries
        ids += tokenizer(piece, add_special_tokens=False)["input_ids"]
    return ids


def step_prompt(instruction: str, num_clips: int) -> str:
    """The visual turn of STEP's `process_qa` (msg ""), with the system turn when there is an instruction."""
    conversation = f"<|im_start|>system\n{instruction}<|im_end|>\n" if instruction else ""
    return conversation + "<|im_start|>user\n" + "<vid>[<VID_PLH>]</vid>" * num_clips + "<|im_end|>\n"


def step_process_qa(tokenizer, instruction, qa, num_clips, num_queries, placeholder_id):
    """`ITTrainDataset.process_qa` of STEP's `it_dataset_internlm_hd.py` (msg "", no shuffling, no truncation):
    `(input_ids, labels)`; an answer of `None` ends the prompt at the open assistant turn."""
    ids = step_tokenize(tokenizer, step_prompt(instruction, num_clips), num_queries, placeholder_id)
    labels = [-100] * len(ids)
    for question, answer in qa:
        prompt = (f"<|im_start|>user\n{question}<|im_end|>\n" if question else "") + "<|im_start|>assistant\n"
        prompt_ids = step_tokenize(tokenizer, prompt, num_queries, placeholder_id)
        ids, labels = ids + prompt_ids, labels + [-100] * len(prompt_ids)
        if answer is not None:
            answer_ids = step_tokenize(tokenizer, answer + "<|im_end|>\n" + "</s>", num_queries, placeholder_id)
            ids, labels = ids + answer_ids, labels + answer_ids
    return ids, labels


def test_prompt_and_labels_equal_the_training_code(converted_internlm2_5):
    _, converted, video = converted_internlm2_5
    processor = AutoProcessor.from_pretrained(converted)
    assert not processor.add_bos_to_first_segment and not processor.add_bos_to_every_segment
    qa = [("What happens?", "A red square moves."), ("And the camera?", "It stays still.")]
    conversation = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": [{"type": "video", "video": str(video)}, {"type": "text", "text": qa[0][0]}]},
        {"role": "assistant", "content": qa[0][1]},
        {"role": "user", "content": qa[1][0]},
        {"role": "assistant", "content": qa[1][1]},
    ]
    example = build_training_example(processor, conversation, processor_kwargs={"num_frames": 4})
    num_clips = example["pixel_values_videos"].shape[0]
    assert num_clips == 3  # 2 HD tiles + the global view
    ids, labels = step_process_qa(
        processor.tokenizer,
        "You are a helpful assistant.",
        qa,
        num_clips,
        processor.num_query_tokens,
        processor.video_token_id,
    )
    assert example["input_ids"].tolist() == ids
    assert example["labels"].tolist() == labels
    assert processor.tokenizer.bos_token_id not in ids  # no BOS on any segment
    # the collator appends nothing: the template already closes every answer with <|im_end|>\n</s>
    prompt = processor.apply_chat_template(conversation[:2], tokenize=False, add_generation_prompt=True)
    turn = processor.apply_chat_template(conversation[:3], tokenize=False)
    assert turn.endswith("<|im_end|>\n</s>") and resolve_answer_end(processor, turn[len(prompt) :]) == ""
    # inference: the training prompt up to the open assistant turn
    inputs = processor.apply_chat_template(
        conversation[:2],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        processor_kwargs={"num_frames": 4},
    )
    expected, _ = step_process_qa(
        processor.tokenizer,
        "You are a helpful assistant.",
        [(qa[0][0], None)],
        num_clips,
        processor.num_query_tokens,
        processor.video_token_id,
    )
    assert list(inputs["input_ids"][0]) == expected


def test_converted_model_generates(converted_internlm2_5):
    _, converted, video = converted_internlm2_5
    model = AutoModelForImageTextToText.from_pretrained(converted)
    processor = AutoProcessor.from_pretrained(converted)
    conversation = [
        {
            "role": "user",
            "content": [{"type": "video", "video": str(video)}, {"type": "text", "text": "What happens?"}],
        }
    ]
    inputs = processor.apply_chat_template(
        conversation,
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        processor_kwargs={"num_frames": 4},
    )
    output = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert output.shape == (1, inputs["input_ids"].shape[1] + 4)
    assert model.generation_config.eos_token_id == [2, 92542]

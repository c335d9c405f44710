# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""`convert-tokenizer`: converted tokenizers give the ids of the original slow sentencepiece `LlamaTokenizer`.

Three kinds of checks:
1. the recorded original ids of `shared/fixtures/tokenizers/expected.json` (real Mistral v0.3 / v0.2 vocabularies
   from `mistral-common==1.13.1`), through `convert_tokenizer` + `AutoTokenizer`, before and after a save/reload;
2. randomized texts on the real vocabularies against `SlowLlamaReference`, a direct re-statement of the slow
   tokenizer's algorithm (documented in the fixture README) on top of the `sentencepiece` library;
3. the same for small sentencepiece models trained here with the LLaMA / Mistral normalizer settings, set up like
   Vicuna (legacy, no config) and Phi-3 (legacy False, chat tokens after the vocabulary with rstrip).
The reference itself is checked against the recorded original ids first.
"""

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sentencepiece as spm
from conftest import LLAMA_LIKE_SENTENCEPIECE_OPTIONS, train_sentencepiece_model
from sentencepiece import sentencepiece_model_pb2
from transformers import AutoTokenizer

import videochat  # noqa: F401  (registers VideoChatTokenizer with AutoTokenizer)
from videochat.cli import main as videochat_main
from videochat.cli.convert_tokenizer import main
from videochat.convert.output_safety import MARKER_NAME
from videochat.convert.tokenizer import convert_tokenizer, resolve_tokenizer_settings
from videochat.tokenization_videochat import VideoChatTokenizer


SHARED = Path(os.environ.get("VIDEOCHAT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
FIXTURE = SHARED / "fixtures" / "tokenizers"
SPIECE_UNDERLINE = "▁"


def _fixture(name: str) -> Path:
    path = FIXTURE / name
    if not path.exists():
        raise FileNotFoundError(f"tokenizer fixture missing: {path} (set VIDEOCHAT_SHARED to the shared/ folder)")
    return path


def _expected() -> dict:
    return json.loads(_fixture("expected.json").read_text(encoding="utf-8"))


def _mistral_common_model(name: str) -> Path:
    import mistral_common  # test dependency: mistral-common==1.13.1

    return Path(os.path.dirname(mistral_common.__file__)) / "data" / name


# key in expected.json -> (.model in mistral-common, config in the fixture folder, preset)
VOCABULARIES = {
    "mistral_v3": (
        "mistral_instruct_tokenizer_240323.model.v3",
        "hub_tokenizer_config_internvideo2_chat_8b.json",
        "internvideo2-chat-8b-hd",
    ),
    "mistral_v1": (
        "tokenizer.model.v1",
        "assumed_tokenizer_config_mistral_7b_instruct_v0.2.json",
        "videochat2-mistral-7b",
    ),
}


class SlowLlamaReference:
    """
    The slow `LlamaTokenizer` (transformers 4.38-4.40) re-stated on top of `sentencepiece`:

    - legacy `False`: replace "▁" by " ", prepend "▁" to the whole text, split at added tokens (honouring
      lstrip/rstrip), encode every other piece with sentencepiece without its dummy prefix (pieces starting with a
      space through the "<unk>" prefix trick), then drop a leading "▁" that is followed by one of
      `all_special_tokens`;
    - legacy `True`: split at added tokens and encode every piece with sentencepiece as configured (dummy prefix).
    """

    def __init__(self, model_file, *, legacy, added, all_special, add_bos=True, add_eos=False, add_prefix_space=True):
        proto = sentencepiece_model_pb2.ModelProto()
        proto.ParseFromString(Path(model_file).read_bytes())
        if not legacy:
            proto.normalizer_spec.add_dummy_prefix = False
        self.sp = spm.SentencePieceProcessor(model_proto=proto.SerializeToString())
        self.legacy, self.add_prefix_space = legacy, add_prefix_space
        self.added = added  # content -> (id, lstrip, rstrip)
        self.all_special = set(all_special)
        self.add_bos, self.add_eos = add_bos, add_eos
        self.unk_length = len(self.sp.encode("<unk>", out_type=str))

    def _split(self, text):
        contents = sorted(self.added, key=len, reverse=True)
        parts, start, position = [], 0, 0
        while position < len(text):
            match = next((token for token in contents if text.startswith(token, position)), None)
            if match is None:
                position += 1
                continue
            parts += [text[start:position], match]
            position = start = position + len(match)
        parts.append(text[start:])
        is_token = [index % 2 == 1 for index in range(len(parts))]
        for index, part in enumerate(parts):
            if is_token[index]:
                _, lstrip, rstrip = self.added[part]
                if rstrip and index + 1 < len(parts):
                    parts[index + 1] = parts[index + 1].lstrip()
                if lstrip and index > 0:
                    parts[index - 1] = parts[index - 1].rstrip()
        return list(zip(parts, is_token))

    def _encode_piece(self, text):
        if self.legacy or not text.startswith((SPIECE_UNDERLINE, " ")):
            return self.sp.encode(text, out_type=str)
        return self.sp.encode("<unk>" + text, out_type=str)[self.unk_length :]

    def tokenize(self, text):
        if not self.legacy and text:
            text = text.replace(SPIECE_UNDERLINE, " ")
            if self.add_prefix_space:
                text = SPIECE_UNDERLINE + text
        tokens = []
        for part, is_token in self._split(text):
            if is_token:
                tokens.append(part)
            elif part:
                tokens += self._encode_piece(part)
        if not self.legacy and len(tokens) > 1 and tokens[0] == SPIECE_UNDERLINE and tokens[1] in self.all_special:
            tokens = tokens[1:]
        return tokens

    def __call__(self, text, add_special_tokens=True):
        ids = [
            self.added[token][0] if token in self.added else self.sp.piece_to_id(token)
            for token in self.tokenize(text)
        ]
        if add_special_tokens:
            ids = [self.sp.bos_id()] * self.add_bos + ids + [self.sp.eos_id()] * self.add_eos
        return ids


def _reference_from_config(model_file, config: dict, legacy_default=True) -> SlowLlamaReference:
    def content(value):
        return value["content"] if isinstance(value, dict) else value

    named = [content(config.get(key)) for key in ("bos_token", "eos_token", "unk_token", "pad_token")]
    named = [token for token in named if token]
    all_special = named + [content(token) for token in config.get("additional_special_tokens") or []]
    added = {
        entry["content"]: (int(index), entry.get("lstrip", False), entry.get("rstrip", False))
        for index, entry in (config.get("added_tokens_decoder") or {}).items()
    }
    for token in named:
        if token not in added:
            added[token] = (spm.SentencePieceProcessor(model_file=str(model_file)).piece_to_id(token), False, False)
    return SlowLlamaReference(
        model_file,
        legacy=config.get("legacy", legacy_default) if config.get("legacy") is not None else legacy_default,
        added=added,
        all_special=all_special,
        add_bos=config.get("add_bos_token", True),
        add_eos=config.get("add_eos_token", False),
    )


@pytest.fixture(scope="module")
def real_vocabularies(tmp_path_factory):
    """key -> (source folder, converted folder, reloaded-after-save folder)."""
    root = tmp_path_factory.mktemp("real_vocabularies")
    folders = {}
    for key, (model_name, config_name, preset) in VOCABULARIES.items():
        src = root / f"{key}_src"
        src.mkdir()
        shutil.copyfile(_mistral_common_model(model_name), src / "tokenizer.model")
        shutil.copyfile(_fixture(config_name), src / "tokenizer_config.json")
        converted = convert_tokenizer(src, root / f"{key}_converted", preset)
        resaved = root / f"{key}_resaved"
        AutoTokenizer.from_pretrained(converted).save_pretrained(resaved)
        folders[key] = (src, converted, resaved)
    return folders


def _mismatches(tokenizer, cases):
    return [
        (case["text"], case["add_special_tokens"], ids, case["ids"])
        for case in cases
        if (ids := tokenizer(case["text"], add_special_tokens=case["add_special_tokens"])["input_ids"]) != case["ids"]
    ]


def test_fixture_models_are_the_recorded_ones():
    import hashlib

    for key, (model_name, _, _) in VOCABULARIES.items():
        digest = hashlib.sha256(_mistral_common_model(model_name).read_bytes()).hexdigest()
        assert digest == _expected()["sentencepiece_models"][key]["sha256"], key


@pytest.mark.parametrize("key", sorted(VOCABULARIES))
def test_converted_tokenizer_gives_original_ids(real_vocabularies, key):
    cases = _expected()["tokenizers"][key]["cases"]
    assert len(cases) == _expected()["summary"][key]["n_cases"]
    _, converted, resaved = real_vocabularies[key]
    for folder in (converted, resaved):
        tokenizer = AutoTokenizer.from_pretrained(folder)
        assert isinstance(tokenizer, VideoChatTokenizer)
        assert _mismatches(tokenizer, cases) == []


def test_plain_fast_tokenizer_differs_where_recorded(real_vocabularies):
    # The fixture's own claim that we fix: the 5.23 fast ids differ from the original ones on these cases.
    for key in VOCABULARIES:
        cases = _expected()["tokenizers"][key]["cases"]
        differing = [case for case in cases if case["fast_ids_tf523"] != case["ids"]]
        assert len(differing) == _expected()["summary"][key]["n_differ"]["fast_ids_tf523"] > 0
    v3 = AutoTokenizer.from_pretrained(real_vocabularies["mistral_v3"][1])
    assert v3("[INST] <Video>")["input_ids"] == [1, 29473, 3, 1291, 12529, 29535]


def test_converted_settings_follow_the_source_config(real_vocabularies):
    v3 = AutoTokenizer.from_pretrained(real_vocabularies["mistral_v3"][1])
    assert (v3.bos_token, v3.eos_token, v3.unk_token, v3.pad_token) == ("<s>", "</s>", "<unk>", "<unk>")
    assert len(v3) == 32768 and v3.convert_tokens_to_ids("[INST]") == 3 and v3.convert_tokens_to_ids("[/INST]") == 4
    assert v3.padding_side == "left" and v3.chat_template is not None
    v1 = AutoTokenizer.from_pretrained(real_vocabularies["mistral_v1"][1])
    assert len(v1) == 32000 and v1.pad_token == "</s>"
    assert v1.decode(v1("Describe the video.  Then   stop.")["input_ids"], skip_special_tokens=True) == (
        "Describe the video.  Then   stop."
    )


@pytest.mark.parametrize("key", sorted(VOCABULARIES))
def test_reference_reproduces_recorded_ids(key):
    model_name, config_name, _ = VOCABULARIES[key]
    config = json.loads(_fixture(config_name).read_text(encoding="utf-8"))
    reference = _reference_from_config(_mistral_common_model(model_name), config)
    cases = _expected()["tokenizers"][key]["cases"]
    assert [case["text"] for case in cases if reference(case["text"], case["add_special_tokens"]) != case["ids"]] == []


FRAGMENTS = [
    "Describe",
    "the",
    "video",
    "What",
    "is",
    "happening",
    "?",
    ".",
    ",",
    "(A)",
    "Best option:(",
    "<Video>",
    "</Video>",
    "Café",
    "naïve",
    "视频",
    "비디오",
    "🎬🔥",
    "0.5",
    "2024",
    "x**2",
    "#",
    "don't",
    "a▁b",
    "▁",
    "\n",
    "\n\n",
    "\t",
    "  ",
    " ",
    " ",
    " ",
]


def random_texts(specials, count, seed, named=("<s>", "</s>", "<unk>")):
    """Texts mixing words, runs of spaces (up to 40, to cover the whitespace-piece ties), special tokens."""
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 10)):
            roll = rng.random()
            if roll < 0.15:
                parts.append(" " * rng.randint(1, 40))
            elif roll < 0.3 and specials:
                parts.append(rng.choice(specials))
            else:
                parts.append(rng.choice(FRAGMENTS))
        texts.append(("" if rng.random() < 0.5 else " ").join(parts))
    # A text that is exactly one added token (not a named special token) is the one documented deviation.
    return [text for text in texts if text not in specials or text in named]


@pytest.mark.parametrize("key", sorted(VOCABULARIES))
def test_random_texts_match_reference_on_real_vocabularies(real_vocabularies, key):
    model_name, config_name, _ = VOCABULARIES[key]
    config = json.loads(_fixture(config_name).read_text(encoding="utf-8"))
    reference = _reference_from_config(_mistral_common_model(model_name), config)
    tokenizer = AutoTokenizer.from_pretrained(real_vocabularies[key][2])
    specials = ["<s>", "</s>", "<unk>", "[INST]", "[/INST]", "[TOOL_CALLS]"]
    texts = random_texts(specials, 400, seed=len(key))
    for add_special_tokens in (True, False):
        got = tokenizer(texts, add_special_tokens=add_special_tokens)["input_ids"]
        mismatches = [text for text, ids in zip(texts, got) if ids != reference(text, add_special_tokens)]
        assert mismatches == []


CORPUS = [
    "The man is dancing on a stage while the crowd cheers loudly.",
    "A dog runs across the park and catches a red frisbee in the air.",
    "What is the person doing in the video? Describe it in detail.",
    "The video contains 8 frames sampled at 0.1, 0.5, 0.9, 1.2 seconds.",
    "def f(x):\n    return x ** 2  # square of x\n\n\tindented with a tab",
    "Café crème brûlée, naïve façade. 视频里的人在做什么？ 비디오에서 무슨 일이",
    "###Human: <Video></Video>\n###Assistant: He is cooking pasta in a small kitchen.",
    "Carefully watch the video and pay attention to the cause and sequence of events.",
    "    four spaces,  two spaces,        eight spaces and   three.",
] * 30


def train_small_sentencepiece(path: Path, vocab_size: int = 600) -> Path:
    """A BPE model with the LLaMA / Mistral normalizer and trainer settings, trained on a small corpus."""
    model = train_sentencepiece_model(
        CORPUS, vocab_size=vocab_size, add_dummy_prefix=True, **LLAMA_LIKE_SENTENCEPIECE_OPTIONS
    )
    path.mkdir(parents=True, exist_ok=True)
    (path / "tokenizer.model").write_bytes(model)
    return path / "tokenizer.model"


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    return train_small_sentencepiece(tmp_path_factory.mktemp("small_spm") / "base")


def test_small_llama_like_model_matches_reference(small_model, tmp_path):
    # Vicuna / VideoChat: LLaMA-style tokenizer.model without a tokenizer_config.json -> preset defaults (legacy).
    src = tmp_path / "vicuna"
    src.mkdir()
    shutil.copyfile(small_model, src / "tokenizer.model")
    converted = convert_tokenizer(src, tmp_path / "converted", "videochat2-vicuna-7b")
    settings = resolve_tokenizer_settings(src, "videochat2-vicuna-7b")
    assert settings["legacy"] is True and settings["pad_token"] == "</s>"
    reference = _reference_from_config(small_model, {**settings, "added_tokens_decoder": {}})
    specials = ["<s>", "</s>", "<unk>"]
    texts = random_texts(specials, 300, seed=7) + [
        "",
        " ",
        "He is dancing.</s>Next",
        "</s> ###Human",
        "<s> hello </s>",
    ]
    for folder in (converted, _resave(converted, tmp_path / "resaved")):
        tokenizer = AutoTokenizer.from_pretrained(folder)
        assert tokenizer.pad_token == "</s>"
        for add_special_tokens in (True, False):
            got = tokenizer(texts, add_special_tokens=add_special_tokens)["input_ids"]
            assert [text for text, ids in zip(texts, got) if ids != reference(text, add_special_tokens)] == []


def _phi3_like_config(vocab_size: int) -> dict:
    # Phi-3's hub layout: chat tokens right after the sentencepiece vocabulary, all but <|endoftext|> with rstrip.
    names = ["<|endoftext|>", "<|assistant|>", "<|placeholder1|>", "<|system|>", "<|end|>", "<|user|>"]
    added = {
        str(index): {
            "content": content,
            "lstrip": False,
            "normalized": False,
            "rstrip": content != "<|endoftext|>",
            "single_word": False,
            "special": True,
        }
        for index, content in enumerate(["<unk>", "<s>", "</s>"])
    }
    for offset, content in enumerate(names):
        added[str(vocab_size + offset)] = {**added["0"], "content": content, "rstrip": content != "<|endoftext|>"}
    for index in ("0", "1", "2"):
        added[index]["rstrip"] = False
    return {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": added,
        "bos_token": "<s>",
        "eos_token": "<|endoftext|>",
        "legacy": False,
        "pad_token": "<|endoftext|>",
        "unk_token": "<unk>",
        "tokenizer_class": "LlamaTokenizer",
    }


def test_small_phi3_like_model_matches_reference(small_model, tmp_path):
    src = tmp_path / "phi3"
    src.mkdir()
    shutil.copyfile(small_model, src / "tokenizer.model")
    vocab_size = spm.SentencePieceProcessor(model_file=str(small_model)).get_piece_size()
    config = _phi3_like_config(vocab_size)
    (src / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    converted = convert_tokenizer(src, tmp_path / "converted", "videochat2-phi3-mini")
    reference = _reference_from_config(small_model, config)
    specials = ["<s>", "</s>", "<unk>", "<|endoftext|>", "<|assistant|>", "<|system|>", "<|end|>", "<|user|>"]
    texts = random_texts(specials, 300, seed=11, named=("<s>", "<unk>", "<|endoftext|>")) + [
        "<|user|>\n<Video>",
        "</Video> The video contains 16 frames sampled at 0.3 seconds.\nDescribe the video.<|end|>\n<|assistant|>",
        "<|end|>\n<|assistant|>\nAnswer<|end|>\n",
        "<s><|user|> hi",
    ]
    for folder in (converted, _resave(converted, tmp_path / "resaved")):
        tokenizer = AutoTokenizer.from_pretrained(folder)
        assert (tokenizer.eos_token, tokenizer.pad_token) == ("<|endoftext|>", "<|endoftext|>")
        assert tokenizer.convert_tokens_to_ids("<|end|>") == vocab_size + 4
        for add_special_tokens in (True, False):
            got = tokenizer(texts, add_special_tokens=add_special_tokens)["input_ids"]
            assert [text for text, ids in zip(texts, got) if ids != reference(text, add_special_tokens)] == []
    # The slow tokenizer keeps its "▁" before a chat token that is not a named special token.
    assert reference("<|user|>\n<Video>")[:3] == [1, reference.sp.piece_to_id("▁"), vocab_size + 5]


def _resave(folder: Path, target: Path) -> Path:
    AutoTokenizer.from_pretrained(folder).save_pretrained(target)
    return target


def test_cli_and_atomic_replacement(small_model, tmp_path):
    src = small_model.parent
    output = tmp_path / "out"
    output.mkdir()
    (output / "stale.txt").write_text("old")
    for extra in ([], ["--overwrite"]):  # a folder videochat did not write is never replaced
        assert videochat_main(["convert-tokenizer", str(src), str(output), "--preset", "videochat-7b", *extra]) == 2
        assert [path.name for path in output.iterdir()] == ["stale.txt"]
    output = tmp_path / "new"
    assert main([str(src), str(output), "--preset", "videochat-7b"]) == 0
    assert sorted(path.name for path in output.iterdir()) == [MARKER_NAME, "tokenizer.json", "tokenizer_config.json"]
    assert main([str(src), str(output), "--preset", "videochat-7b", "--overwrite"]) == 0  # ours: replaced
    assert sorted(path.name for path in tmp_path.iterdir()) == ["new", "out"]  # no staging folders left behind
    config = json.loads((output / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["tokenizer_class"] == "VideoChatTokenizer"


def test_bad_inputs_raise_clear_errors(small_model, tmp_path):
    with pytest.raises(FileNotFoundError, match="tokenizer.model"):
        convert_tokenizer(tmp_path / "missing", tmp_path / "out", "videochat-7b")
    with pytest.raises(ValueError, match="preset"):
        convert_tokenizer(small_model.parent, tmp_path / "out", "no-such-preset")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "tokenizer.model").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="sentencepiece"):
        convert_tokenizer(bad, tmp_path / "out", "videochat-7b")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ without protobuf


def _proto_fields(proto) -> dict:
    """The fields of a `ModelProto` the conversion reads (and a few more), as plain values."""
    trainer = proto.trainer_spec
    return {
        "pieces": [(piece.piece, piece.score, piece.type) for piece in proto.pieces],
        "trainer": {
            name: getattr(trainer, name)
            for name in ("model_type", "vocab_size", "byte_fallback", "treat_whitespace_as_suffix", "unk_id", "bos_id")
            + ("eos_id", "pad_id", "unk_piece", "bos_piece", "eos_piece", "pad_piece", "split_digits")
        },
        "trainer_lists": [list(trainer.control_symbols), list(trainer.user_defined_symbols)],
        "normalizer": {
            name: getattr(spec, name)
            for spec in (proto.normalizer_spec,)
            for name in ("name", "precompiled_charsmap", "add_dummy_prefix", "remove_extra_whitespaces")
            + ("escape_whitespaces",)
        },
    }


@pytest.mark.parametrize("model", ["tokenizer.model.v1", "mistral_instruct_tokenizer_240323.model.v3", "small"])
def test_the_protobuf_free_reader_reads_what_protobuf_reads(model, small_model):
    from videochat.convert.sentencepiece import read_sentencepiece_model

    path = small_model if model == "small" else _mistral_common_model(model)
    reference = sentencepiece_model_pb2.ModelProto()
    reference.ParseFromString(Path(path).read_bytes())
    assert _proto_fields(read_sentencepiece_model(str(path))) == _proto_fields(reference)


def test_convert_tokenizer_runs_without_protobuf(real_vocabularies, tmp_path):
    """`videochat convert-tokenizer` with protobuf and sentencepiece made unimportable (as in an environment whose
    protobuf does not match sentencepiece's gencode) writes the same files as this process does."""
    source = real_vocabularies["mistral_v3"][0]
    hidden = tmp_path / "hidden"
    code = (
        "import sys; sys.modules['google.protobuf'] = None; sys.modules['sentencepiece'] = None\n"
        "from videochat.cli import main\n"
        f"sys.exit(main(['convert-tokenizer', {str(source)!r}, {str(hidden)!r}, '--preset', "
        "'internvideo2-chat-8b-hd']))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "1"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=300)
    visible = tmp_path / "visible"
    code = code.replace("sys.modules['google.protobuf'] = None; sys.modules['sentencepiece'] = None", "pass")
    code = code.replace(repr(str(hidden)), repr(str(visible)))
    subprocess.run([sys.executable, "-c", code], check=True, env={**env, "PYTHONHASHSEED": "2"}, timeout=300)
    names = sorted(path.name for path in hidden.iterdir())
    assert "tokenizer.json" in names and names == sorted(path.name for path in visible.iterdir())
    for name in names:
        assert (hidden / name).read_bytes() == (visible / name).read_bytes(), name

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Convert an original LLM sentencepiece tokenizer into a `VideoChatTokenizer` folder.

`SRC_DIR` holds the LLM's sentencepiece `tokenizer.model` and, where the hub has one, its `tokenizer_config.json`
(also read: `special_tokens_map.json`, `added_tokens.json`). `OUTPUT_DIR` receives `tokenizer.json` +
`tokenizer_config.json` (+ `chat_template.jinja`) that load with `AutoTokenizer.from_pretrained(OUTPUT_DIR)` and give
the ids of the original slow tokenizer (`use_fast=False`) for every text.

Two slow tokenizer classes are reproduced: transformers' `LlamaTokenizer` (Mistral, Vicuna, Phi-3) and InternLM2's
remote-code `InternLM2Tokenizer` (InternLM2 / InternLM2.5). The latter splits the text at its added tokens and
encodes every other piece with the sentencepiece model as it is (`_tokenize` is `sp_model.encode(text)`; BOS / EOS
are the model's `bos_id()` / `eos_id()`): the behaviour of `LlamaTokenizer(legacy=True)`, whatever `legacy` its
config holds. Settings come from the source `tokenizer_config.json` when there is one (missing keys take the slow
class's defaults, as the original loading did), otherwise from the preset record's `tokenizer` settings.

    videochat convert-tokenizer SRC_DIR OUTPUT_DIR --preset internvideo2-chat-8b-hd
"""

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from .output_safety import prepare_output_folder, publish_folder, staging_folder
from .presets import get_preset
from .sentencepiece import AddedTokenSpec, read_sentencepiece_model, tokenizer_from_sentencepiece


SENTENCEPIECE_FILE = "tokenizer.model"
CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
ADDED_TOKENS_FILE = "added_tokens.json"
NAMED_TOKENS = ("bos_token", "eos_token", "unk_token", "pad_token")

# Defaults of the slow `LlamaTokenizer` (transformers 4.38-4.40) for keys a hub config leaves out.
LLAMA_TOKENIZER_DEFAULTS: dict[str, Any] = {
    "legacy": True,  # `legacy=None` behaves as `True`
    "add_bos_token": True,
    "add_eos_token": False,
    "add_prefix_space": True,
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "pad_token": None,
}
# `InternLM2Tokenizer.__init__` defaults (InternLM2 remote code); it has no `legacy` / `add_prefix_space` handling.
INTERNLM2_TOKENIZER_DEFAULTS: dict[str, Any] = {**LLAMA_TOKENIZER_DEFAULTS, "pad_token": "</s>"}
# slow tokenizer class -> its defaults
SLOW_TOKENIZER_CLASSES: dict[str, dict[str, Any]] = {
    "LlamaTokenizer": LLAMA_TOKENIZER_DEFAULTS,
    "InternLM2Tokenizer": INTERNLM2_TOKENIZER_DEFAULTS,
}


def _token_content(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict) and "content" in value:
        return value["content"]
    raise ValueError(f"cannot read a token from {value!r}")


def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error


def resolve_tokenizer_settings(src_dir: str | os.PathLike, preset: str) -> dict[str, Any]:
    """
    Settings of the original slow tokenizer of `preset` whose files are in `src_dir`.

    Returns a dict with `tokenizer_class` (the slow class reproduced), `legacy`, `add_bos_token`, `add_eos_token`,
    `add_prefix_space`, the named special tokens, `added_tokens_decoder` (id -> entry), `additional_special_tokens`
    and, when the source config has them, `chat_template` / `model_max_length`.
    """
    family = get_preset(preset).tokenizer
    if family is None:
        raise ValueError(f"no sentencepiece tokenizer conversion for preset {preset!r}")
    family = dict(family)
    expected_class = family.pop("tokenizer_class", "LlamaTokenizer")
    src_dir = Path(src_dir)
    config_path = src_dir / CONFIG_FILE
    if config_path.is_file():
        config = _read_json(config_path)
        tokenizer_class = (config.get("tokenizer_class") or "LlamaTokenizer").removesuffix("Fast")
        if tokenizer_class != expected_class:
            raise ValueError(
                f"{config_path}: expected a {expected_class} config for preset {preset!r}, got tokenizer_class "
                f"{tokenizer_class!r}"
            )
        settings = {**SLOW_TOKENIZER_CLASSES[tokenizer_class], "added_tokens_decoder": {}}
        if (src_dir / SPECIAL_TOKENS_MAP_FILE).is_file():
            config = {**_read_json(src_dir / SPECIAL_TOKENS_MAP_FILE), **config}
        for key in ("legacy", "add_bos_token", "add_eos_token", "add_prefix_space"):
            if config.get(key) is not None:
                settings[key] = bool(config[key])
        for key in NAMED_TOKENS:
            if key in config:
                settings[key] = _token_content(config[key])
        settings["added_tokens_decoder"] = {int(k): v for k, v in (config.get("added_tokens_decoder") or {}).items()}
        settings["additional_special_tokens"] = [
            _token_content(token) for token in config.get("additional_special_tokens") or []
        ]
        for key in ("chat_template", "model_max_length"):
            if key in config:
                settings[key] = config[key]
        if settings["pad_token"] is None:
            settings["pad_token"] = family.get("pad_token")
    else:
        settings = {
            **SLOW_TOKENIZER_CLASSES[expected_class],
            "added_tokens_decoder": {},
            "additional_special_tokens": [],
            **family,
        }
    if expected_class == "InternLM2Tokenizer":
        settings["legacy"] = True  # InternLM2Tokenizer encodes every piece with sentencepiece as it is
    settings["tokenizer_class"] = expected_class
    if (src_dir / ADDED_TOKENS_FILE).is_file():
        # Old-style slow tokenizer files: {content: id}, not special unless named.
        known = {_token_content(entry) for entry in settings["added_tokens_decoder"].values()}
        for content, index in _read_json(src_dir / ADDED_TOKENS_FILE).items():
            if content not in known:
                settings["added_tokens_decoder"][int(index)] = {"content": content, "special": False}
    return settings


def build_tokenizer(src_dir: str | os.PathLike, preset: str):
    """Build the `VideoChatTokenizer` of `preset` from the original tokenizer files in `src_dir`."""
    model_file = Path(src_dir) / SENTENCEPIECE_FILE
    if not model_file.is_file():
        raise FileNotFoundError(
            f"{model_file} not found: SRC_DIR must hold the LLM's sentencepiece {SENTENCEPIECE_FILE}"
        )
    settings = resolve_tokenizer_settings(src_dir, preset)
    if settings["tokenizer_class"] == "InternLM2Tokenizer":
        _check_sentencepiece_bos_eos(model_file, settings)
    extra = {key: settings[key] for key in ("chat_template", "model_max_length") if key in settings}
    if settings["tokenizer_class"] == "InternLM2Tokenizer":
        # its `convert_tokens_to_string` always removes the spaces before punctuation (" ." -> "."), which
        # transformers 5 only does for a BPE tokenizer when told twice
        extra["clean_up_tokenization_spaces"] = True
        extra["clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output"] = True
    return tokenizer_from_sentencepiece(
        str(model_file),
        legacy=settings["legacy"],
        add_prefix_space=settings["add_prefix_space"],
        add_bos_token=settings["add_bos_token"],
        add_eos_token=settings["add_eos_token"],
        bos_token=settings["bos_token"],
        eos_token=settings["eos_token"],
        unk_token=settings["unk_token"],
        pad_token=settings["pad_token"],
        added_tokens={
            index: AddedTokenSpec.from_config(entry) for index, entry in settings["added_tokens_decoder"].items()
        },
        additional_special_tokens=settings["additional_special_tokens"],
        padding_side="left",
        **extra,
    )


def _check_sentencepiece_bos_eos(model_file: Path, settings: dict) -> None:
    """`InternLM2Tokenizer` adds the model's `bos_id()` / `eos_id()` whatever its `bos_token` / `eos_token` say; the
    converted tokenizer adds its named tokens, so they must be the same pieces."""
    proto = read_sentencepiece_model(str(model_file))
    names = {int(index): _token_content(entry) for index, entry in settings["added_tokens_decoder"].items()}
    for name, index in (("bos_token", proto.trainer_spec.bos_id), ("eos_token", proto.trainer_spec.eos_id)):
        if index < 0 or settings[name] is None:
            continue
        piece = names.get(index, proto.pieces[index].piece if index < len(proto.pieces) else None)
        if piece != settings[name]:
            raise ValueError(
                f"{model_file}: the sentencepiece {name.split('_')[0].upper()} (id {index}, {piece!r}) is not the "
                f"configured {name} {settings[name]!r}; InternLM2Tokenizer would add id {index}"
            )


def convert_tokenizer(
    src_dir: str | os.PathLike, output_dir: str | os.PathLike, preset: str, overwrite: bool = False
) -> Path:
    """
    Convert the tokenizer in `src_dir` for `preset` and save it to `output_dir`.

    `output_dir` may not be, contain or lie inside `src_dir`; an existing non-empty folder is replaced (atomically)
    only with `overwrite` and only when `videochat` wrote it (see `videochat.convert.output_safety`). Returns the
    output path.
    """
    output_dir, recovered = prepare_output_folder(output_dir, [src_dir], overwrite)
    for note in recovered:
        print(f"note: {note}", file=sys.stderr)
    tokenizer = build_tokenizer(src_dir, preset)
    staging = staging_folder(output_dir)
    try:
        tokenizer.save_pretrained(str(staging))
        publish_folder(staging, output_dir, "convert-tokenizer")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output_dir

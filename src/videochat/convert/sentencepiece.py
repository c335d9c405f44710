# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Sentencepiece -> `tokenizer.json` for the VideoChat LLM tokenizers: a `tokenizers` pipeline that gives the ids of
the original slow
sentencepiece `LlamaTokenizer` (transformers 4.38-4.40, `use_fast=False`) for every text.

The original code tokenizes each prompt segment with the slow tokenizer. The fast tokenizer that transformers 5.x
builds from the same `tokenizer.model` differs from it in three ways:

1. **Legacy `False` (InternVideo2-Chat, Phi-3).** The slow tokenizer prepends "▁" to the whole text and then splits
   it at the added tokens, so a text that starts with an added token that is not one of `all_special_tokens` (for
   example `[INST]`) gets a lone "▁" before it: `"[INST] <Video>"` -> `<s> ▁ [INST] ▁< Video >`. A Metaspace
   pre-tokenizer with `prepend_scheme="first"` never sees that "▁".
2. **Leading spaces.** Metaspace does not prepend "▁" to a text that already starts with a space; sentencepiece
   always does (`" Describe"` -> `▁ ▁Describe`).
3. **Runs of spaces.** The whitespace-only pieces ("▁▁", "▁▁▁", ...) share one score. Sentencepiece merges equal
   scores left to right, which a merge list ordered only by score does not reproduce
   (`"is  the"` -> `▁is ▁ ▁the`, not `▁is ▁▁ the`).

`build_sentencepiece_backend` writes a pipeline without these differences: the normalizer prepends "▁" (to the
whole text for legacy `False`, to every piece between added tokens for legacy `True`, exactly where the slow
tokenizer's sentencepiece call adds it), the pre-tokenizer only escapes spaces, and the BPE merges are ordered so
that ties resolve like sentencepiece. `VideoChatTokenizer` loads that `tokenizer.json` unchanged, so the ids also
survive `save_pretrained` / `from_pretrained`.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE

from ..tokenization_videochat import VideoChatTokenizer
from .sentencepiece_proto import ModelProto, WireFormatError, parse_model_proto


SPIECE_UNDERLINE = "▁"

# Piece types of `sentencepiece_model.proto`.
_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _UNUSED, _BYTE = 1, 2, 3, 4, 5, 6
_BPE_MODEL_TYPE = 2


@dataclass(frozen=True)
class AddedTokenSpec:
    """One entry of a slow tokenizer's `added_tokens_decoder`."""

    content: str
    special: bool = True
    lstrip: bool = False
    rstrip: bool = False
    single_word: bool = False

    @classmethod
    def from_config(cls, entry: "str | Mapping") -> "AddedTokenSpec":
        if isinstance(entry, str):
            return cls(content=entry)
        if "content" not in entry:
            raise ValueError(f"added token entry {entry!r} has no 'content'")
        return cls(
            content=entry["content"],
            special=bool(entry.get("special", True)),
            lstrip=bool(entry.get("lstrip", False)),
            rstrip=bool(entry.get("rstrip", False)),
            single_word=bool(entry.get("single_word", False)),
        )


def read_sentencepiece_model(model_file: str) -> ModelProto:
    """Parse a sentencepiece `.model` file into a `ModelProto`-like object, without protobuf or sentencepiece (see
    `sentencepiece_proto`): the conversion works whatever protobuf version is installed, or none."""
    with open(model_file, "rb") as handle:
        data = handle.read()
    try:
        proto = parse_model_proto(data)
    except (WireFormatError, UnicodeDecodeError) as error:
        raise ValueError(f"{model_file} is not a sentencepiece model: {error}") from error
    if len(proto.pieces) == 0:
        raise ValueError(f"{model_file} is not a sentencepiece model: it has no pieces")
    return proto


def sentencepiece_bpe_merges(proto) -> list[tuple[str, str]]:
    """
    Merge list that makes `tokenizers`' BPE segment like sentencepiece's BPE.

    Sentencepiece repeatedly merges the adjacent pair whose concatenation is the highest-scoring piece, the leftmost
    pair on ties. `tokenizers` merges the pair of lowest rank. Ranking merges by score matches that as long as scores
    are unique. The only ties in the LLaMA / Mistral models are the whitespace-only pieces ("▁▁" ... "▁" * 16, all at
    the lowest score): sentencepiece grows a run of spaces from its left end. Within such a tie the ranks below
    reproduce that: first a merge that joins a finished run with a newer one ("▁" * 14 + "▁▁"), then growing a run
    by one space, then starting a run ("▁" + "▁").
    """
    pieces = proto.pieces
    normal = {piece.piece: index for index, piece in enumerate(pieces) if piece.type == _NORMAL}
    merges = []
    for target, index in normal.items():
        for split in range(1, len(target)):
            left, right = target[:split], target[split:]
            if left in normal and right in normal:
                merges.append((-pieces[index].score, _tie_rank(left, right), index, split, left, right))
    merges.sort()
    return [(left, right) for *_, left, right in merges]


def _tie_rank(left: str, right: str) -> int:
    if set(left + right) != {SPIECE_UNDERLINE}:
        return 0
    if len(right) > 1:
        return 0
    return 1 if len(left) > 1 else 2


def build_sentencepiece_backend(
    proto,
    *,
    legacy: bool,
    add_prefix_space: bool = True,
    added_tokens: Mapping[int, AddedTokenSpec] | None = None,
    special_tokens: Iterable[str] = (),
    add_bos_token: bool = True,
    add_eos_token: bool = False,
    bos_token: str | None = "<s>",
    eos_token: str | None = "</s>",
) -> Tokenizer:
    """
    Build a `tokenizers.Tokenizer` that tokenizes like the slow `LlamaTokenizer` on this sentencepiece BPE model.

    Args:
        proto: the sentencepiece `ModelProto` (see [`read_sentencepiece_model`]).
        legacy (`bool`): the slow tokenizer's `legacy` flag.
        add_prefix_space (`bool`): the slow tokenizer's `add_prefix_space` (legacy `False` only).
        added_tokens (`Mapping[int, AddedTokenSpec]`): id -> added token, as in `added_tokens_decoder`. The named
            special tokens must be among them or in the model (they are added as special tokens otherwise).
        special_tokens (`Iterable[str]`): the slow tokenizer's `all_special_tokens`; with legacy `False` a text that
            starts with one of them gets no "▁" before it.
        add_bos_token / add_eos_token / bos_token / eos_token: the post-processor template.
    """
    _check_supported(proto.trainer_spec)
    normalizer_spec = proto.normalizer_spec
    added_tokens = _as_added_token_specs(added_tokens or {})
    vocab = _vocabulary(proto, added_tokens)
    tokenizer = Tokenizer(_bpe_model(proto, vocab))
    special_tokens = list(dict.fromkeys(token for token in special_tokens if token))
    prepends_prefix = add_prefix_space if not legacy else normalizer_spec.add_dummy_prefix
    if normalizer_spec.escape_whitespaces:
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
            replacement=SPIECE_UNDERLINE, prepend_scheme="never", split=False
        )
    tokenizer.decoder = _decoder(prepends_prefix)
    added_specs = _collect_added_tokens(vocab, proto, added_tokens, special_tokens)
    # The normalizer comes first: `tokenizers` normalizes the contents of normalized added tokens with it.
    tokenizer.normalizer = _normalizer(
        normalizer_spec, legacy, prepends_prefix, special_tokens, [spec.content for spec in added_specs.values()]
    )
    _register_added_tokens(tokenizer, added_specs, legacy)
    tokenizer.post_processor = _post_processor(tokenizer, add_bos_token, add_eos_token, bos_token, eos_token)
    return tokenizer


def _check_supported(trainer_spec) -> None:
    """Only BPE models with whitespace as a prefix (the Llama / Mistral layout) are supported."""
    if trainer_spec.model_type != _BPE_MODEL_TYPE:
        raise ValueError(
            f"only sentencepiece BPE models are supported (model_type {_BPE_MODEL_TYPE}), got "
            f"{trainer_spec.model_type}"
        )
    if trainer_spec.treat_whitespace_as_suffix:
        raise ValueError("sentencepiece models with treat_whitespace_as_suffix=True are not supported")


def _as_added_token_specs(added_tokens: Mapping) -> dict[int, AddedTokenSpec]:
    """Id -> `AddedTokenSpec` from specs or `added_tokens_decoder` entries (a `tokenizer_config.json` has string
    ids)."""
    return {
        int(index): spec if isinstance(spec, AddedTokenSpec) else AddedTokenSpec.from_config(spec)
        for index, spec in added_tokens.items()
    }


def _bpe_model(proto, vocab: dict[str, int]) -> BPE:
    """The BPE model: the vocabulary, merges in sentencepiece's order, its unknown piece and byte fallback."""
    id_to_piece = {index: name for name, index in vocab.items()}
    unk_piece = next((id_to_piece[i] for i, piece in enumerate(proto.pieces) if piece.type == _UNKNOWN), None)
    return BPE(
        vocab=vocab,
        merges=sentencepiece_bpe_merges(proto),
        unk_token=unk_piece,
        fuse_unk=True,
        byte_fallback=proto.trainer_spec.byte_fallback,
        dropout=None,
    )


def _vocabulary(proto, added_tokens: Mapping[int, AddedTokenSpec]) -> dict[str, int]:
    """Piece -> id, with the names that `added_tokens_decoder` gives to control / user-defined ids."""
    names = [piece.piece for piece in proto.pieces]
    for index, spec in added_tokens.items():
        if index < len(names) and names[index] != spec.content:
            if proto.pieces[index].type == _NORMAL:
                raise ValueError(
                    f"added token {spec.content!r} has id {index}, which is the ordinary piece {names[index]!r}"
                )
            # As in the slow tokenizer the config's name wins; sentencepiece never emits control pieces from text.
            names[index] = spec.content
    vocab = {}
    for index, name in enumerate(names):
        if name in vocab:
            raise ValueError(f"the vocabulary lists {name!r} twice (ids {vocab[name]} and {index})")
        vocab[name] = index
    return vocab


def _normalizer(normalizer_spec, legacy: bool, prepends_prefix: bool, special_tokens: list[str], added: list[str]):
    steps = []
    if normalizer_spec.precompiled_charsmap:
        steps.append(normalizers.Precompiled(normalizer_spec.precompiled_charsmap))
    if normalizer_spec.remove_extra_whitespaces:
        steps += [normalizers.Replace(Regex(r"\A +| +\z"), ""), normalizers.Replace(Regex(" {2,}"), " ")]
    if not legacy:
        # Like the slow tokenizer, before added tokens are matched (their lstrip / rstrip see these spaces).
        steps.append(normalizers.Replace(SPIECE_UNDERLINE, " "))
    if prepends_prefix:
        steps.append(normalizers.Prepend(SPIECE_UNDERLINE))
        if not legacy and added:
            # With legacy False the added tokens are matched in the normalized text, and `tokenizers` normalizes
            # their contents with this same normalizer: a lone token must stay prefix-free to match mid-text.
            steps.append(normalizers.Replace(Regex(rf"\A{SPIECE_UNDERLINE}(?=(?:{_alternatives(added)})\z)"), ""))
        if not legacy and special_tokens:
            # The slow tokenizer drops its prefix "▁" when the next token is one of `all_special_tokens`.
            steps.append(
                normalizers.Replace(Regex(rf"\A{SPIECE_UNDERLINE}(?=(?:{_alternatives(special_tokens)}))"), "")
            )
    return normalizers.Sequence(steps) if steps else None


def _alternatives(tokens: Iterable[str]) -> str:
    # ties broken by the text: the same regex, hence the same tokenizer.json, in every process
    return "|".join(re.escape(token) for token in sorted(set(tokens), key=lambda token: (-len(token), token)))


def _decoder(prepends_prefix: bool):
    steps = [decoders.Replace(SPIECE_UNDERLINE, " "), decoders.ByteFallback(), decoders.Fuse()]
    if prepends_prefix:
        steps.append(decoders.Strip(content=" ", left=1, right=0))
    return decoders.Sequence(steps)


def _collect_added_tokens(vocab: dict, proto, added_tokens, special_tokens: list[str]) -> dict[int, AddedTokenSpec]:
    """The slow tokenizer's added tokens by id: the configured ones, missing special tokens, user-defined pieces."""
    specs = dict(added_tokens)
    known = {spec.content for spec in specs.values()}
    next_index = max([len(vocab) - 1, *specs]) + 1
    for token in special_tokens:
        if token not in known:
            specs[vocab.get(token, next_index)] = AddedTokenSpec(token)
            next_index += token not in vocab
            known.add(token)
    for piece in proto.pieces:
        # sentencepiece matches user-defined pieces in the text itself.
        if piece.type == _USER_DEFINED and piece.piece not in known and piece.piece in vocab:
            specs[vocab[piece.piece]] = AddedTokenSpec(piece.piece, special=False)
    return dict(sorted(specs.items()))


def _register_added_tokens(tokenizer: Tokenizer, specs: Mapping[int, AddedTokenSpec], legacy: bool) -> None:
    """
    Add the tokens with their ids.

    With legacy `True` the slow tokenizer splits the raw text at added tokens and sentencepiece adds its dummy
    prefix to every piece, so the tokens are matched before normalization. With legacy `False` the "▁" is
    prepended to the whole text first, so they are matched in the normalized text.
    """
    for index, spec in specs.items():
        token = AddedToken(
            spec.content,
            single_word=spec.single_word,
            lstrip=spec.lstrip,
            rstrip=spec.rstrip,
            normalized=not legacy,
            special=spec.special,
        )
        tokenizer.add_tokens([token])
        if tokenizer.token_to_id(spec.content) != index:
            raise ValueError(
                f"added token {spec.content!r} should have id {index} but got {tokenizer.token_to_id(spec.content)}; "
                "added tokens beyond the sentencepiece vocabulary must have consecutive ids (is this tokenizer.model "
                "the one of the preset's LLM?)"
            )


def _post_processor(tokenizer: Tokenizer, add_bos_token: bool, add_eos_token: bool, bos_token, eos_token):
    if add_bos_token and bos_token is None:
        raise ValueError("add_bos_token=True needs a bos_token")
    if add_eos_token and eos_token is None:
        raise ValueError("add_eos_token=True needs an eos_token")
    prefix = [bos_token] if add_bos_token else []
    suffix = [eos_token] if add_eos_token else []
    single = " ".join([*(f"{token}:0" for token in prefix), "$A:0", *(f"{token}:0" for token in suffix)])
    pair = " ".join([single, *(f"{token}:1" for token in prefix), "$B:1", *(f"{token}:1" for token in suffix)])
    special = [(token, tokenizer.token_to_id(token)) for token in dict.fromkeys(prefix + suffix)]
    return processors.TemplateProcessing(single=single, pair=pair, special_tokens=special)


def tokenizer_from_sentencepiece(
    model_file: str,
    *,
    legacy: bool = True,
    add_prefix_space: bool = True,
    add_bos_token: bool = True,
    add_eos_token: bool = False,
    bos_token: str | None = "<s>",
    eos_token: str | None = "</s>",
    unk_token: str | None = "<unk>",
    pad_token: str | None = None,
    added_tokens: Mapping[int, "AddedTokenSpec"] | None = None,
    additional_special_tokens: Iterable[str] = (),
    **kwargs,
) -> VideoChatTokenizer:
    """
    Build the tokenizer from a sentencepiece `tokenizer.model` and the settings of the original slow tokenizer.

    Args:
        model_file (`str`): path of the sentencepiece BPE model.
        legacy (`bool`): the slow tokenizer's `legacy` flag (`True` is the behaviour of every version before 4.35).
        add_prefix_space (`bool`): the slow tokenizer's `add_prefix_space` (used when `legacy=False`).
        add_bos_token / add_eos_token (`bool`): what `add_special_tokens=True` adds.
        bos_token / eos_token / unk_token / pad_token (`str`, *optional*): the named special tokens.
        added_tokens (`Mapping[int, AddedTokenSpec]`, *optional*): the slow tokenizer's `added_tokens_decoder`.
        additional_special_tokens (`Iterable[str]`): the slow tokenizer's `additional_special_tokens`.
        kwargs: further `tokenizer_config.json` entries (`chat_template`, `padding_side`, ...).
    """
    named_tokens = {"bos_token": bos_token, "eos_token": eos_token, "unk_token": unk_token, "pad_token": pad_token}
    named_tokens = {name: token for name, token in named_tokens.items() if token is not None}
    additional_special_tokens = list(additional_special_tokens)
    backend = build_sentencepiece_backend(
        read_sentencepiece_model(model_file),
        legacy=legacy,
        add_prefix_space=add_prefix_space,
        added_tokens=added_tokens,
        special_tokens=list(named_tokens.values()) + additional_special_tokens,
        add_bos_token=add_bos_token,
        add_eos_token=add_eos_token,
        bos_token=bos_token,
        eos_token=eos_token,
    )
    if additional_special_tokens:
        kwargs["extra_special_tokens"] = additional_special_tokens
    return VideoChatTokenizer(
        tokenizer_object=backend,
        add_bos_token=add_bos_token,
        add_eos_token=add_eos_token,
        clean_up_tokenization_spaces=kwargs.pop("clean_up_tokenization_spaces", False),
        **named_tokens,
        **kwargs,
    )


__all__ = ["AddedTokenSpec", "build_sentencepiece_backend", "read_sentencepiece_model", "tokenizer_from_sentencepiece"]

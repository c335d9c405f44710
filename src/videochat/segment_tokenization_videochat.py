# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Segment-wise tokenization of expanded prompts, as the original VideoChat models tokenize them.

The originals split a prompt at every visual item and tokenize each text segment on its own, adding the tokenizer's
special tokens (BOS) to the first segment only (VideoChat2, VideoChat), to every segment (InternVideo2-Chat) or to
none (InternVideo2-Chat-InternLM2.5 training); the visual positions hold a placeholder id. With SentencePiece
tokenizers every separately encoded segment starts with "▁", so tokenizing the joined string gives other ids at the
seams.
"""

import re
from collections.abc import Mapping

from tokenizers import AddedToken


# Tokenizer options that segment-wise tokenization with placeholder runs cannot honour.
UNSUPPORTED_TEXT_KWARGS = (
    "text_pair",
    "text_target",
    "text_pair_target",
    "is_split_into_words",
    "stride",
    "return_overflowing_tokens",
    "return_special_tokens_mask",
    "return_length",
    "return_token_type_ids",
)
MODALITY_TYPES = {"text": 0, "image": 1, "video": 2}


class SegmentTokenizer:
    """
    Tokenizes prompts whose visual items are already expanded into runs of placeholder tokens.

    Args:
        tokenizer: the LLM tokenizer.
        placeholder_ids (`Mapping[str, int]`): placeholder token -> id written at its positions, e.g.
            `{"<video>": 32768, "<image>": 32769}`.
        add_bos_to_every_segment (`bool`): special tokens on every text segment instead of the first only.
        add_bos_to_first_segment (`bool`, defaults to `True`): special tokens on the first text segment (with
            `add_bos_to_every_segment=False`, `False` means on none).
    """

    def __init__(
        self,
        tokenizer,
        placeholder_ids: Mapping[str, int],
        add_bos_to_every_segment: bool,
        add_bos_to_first_segment: bool = True,
    ):
        self.tokenizer = tokenizer
        self.placeholder_ids = dict(placeholder_ids)
        self.add_bos_to_every_segment = add_bos_to_every_segment
        self.add_bos_to_first_segment = add_bos_to_first_segment
        alternatives = "|".join(re.escape(token) for token in sorted(self.placeholder_ids, key=len, reverse=True))
        self.token_pattern = re.compile(alternatives)
        self.pattern = re.compile(f"((?:{alternatives})+)")
        self.modality = {
            token: MODALITY_TYPES["video" if "video" in token else "image"] for token in self.placeholder_ids
        }

    @property
    def pad_token_id(self) -> int:
        """The tokenizer's pad id, or EOS where the pad id is missing or equals a placeholder id (the `<unk>`
        placeholder of folders converted by 0.1.0)."""
        for pad_id in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id):
            if pad_id is not None and pad_id not in self.placeholder_ids.values():
                return int(pad_id)
        raise ValueError(
            "Cannot pad: the tokenizer's pad and EOS ids are missing or equal to a visual placeholder id; "
            "set a distinct `tokenizer.pad_token`."
        )

    def segment_gets_special_tokens(self, segment_index: int) -> bool:
        """Whether the tokenizer's special tokens go on text segment `segment_index` (when they are asked for)."""
        return self.add_bos_to_every_segment or (segment_index == 0 and self.add_bos_to_first_segment)

    def _check_no_placeholder_ids(self, piece: str, ids: list[int]) -> None:
        """Text that tokenizes to a placeholder id (folders of videochat 0.1.0 use `<unk>`, id 0, as placeholder: a
        typed `<unk>` or a character the tokenizer does not know) would be taken for a visual position."""
        clashes = {token: i for token, i in self.placeholder_ids.items() if i in ids}
        if clashes:
            token, token_id = next(iter(clashes.items()))
            name = self.tokenizer.convert_ids_to_tokens(token_id)
            raise ValueError(
                f"The text {piece[:60]!r} tokenizes to id {token_id} ({name!r}), which this model uses for its "
                f"{token} placeholder: the text contains {name!r} or characters the tokenizer does not know (e.g. "
                "emoji). Remove them, or re-convert the checkpoint with `videochat convert` (distinct placeholder "
                "tokens)."
            )

    def pieces(self, text: str, item_spans: list[tuple[int, int]]) -> list[tuple[int, str, bool]]:
        """`(start, piece, is_visual)` of one expanded prompt: the text segments between items (empty ones too, the
        originals encode them), and inside each item the placeholder runs and the separator text between clips."""
        pieces, position = [], 0
        for start, end in sorted(item_spans):
            pieces.append((position, text[position:start], False))
            for index, part in enumerate(self.pattern.split(text[start:end])):
                if part or index % 2:
                    pieces.append((start, part, bool(index % 2)))
                start += len(part)
            position = end
        pieces.append((position, text[position:], False))
        return pieces

    def encode(
        self, text: str, item_spans: list[tuple[int, int]], add_special_tokens: bool = True, with_offsets: bool = False
    ) -> dict:
        """`input_ids`, `mm_token_type_ids` (0 text, 1 image, 2 video) and, if asked, `offset_mapping` of one prompt;
        `item_spans` are the `(start, end)` characters of every visual item's expansion."""
        ids, types, offsets = [], [], []
        segment_index = 0
        for position, piece, is_visual in self.pieces(text, item_spans):
            if is_visual:
                for match in self.token_pattern.finditer(piece):
                    ids.append(self.placeholder_ids[match.group()])
                    types.append(self.modality[match.group()])
                    offsets.append((position + match.start(), position + match.end()))
                continue
            specials = add_special_tokens and self.segment_gets_special_tokens(segment_index)
            encoded = self.tokenizer(piece, add_special_tokens=specials, return_offsets_mapping=with_offsets)
            self._check_no_placeholder_ids(piece, encoded["input_ids"])
            ids.extend(encoded["input_ids"])
            types.extend([0] * len(encoded["input_ids"]))
            if with_offsets:
                offsets.extend((position + start, position + end) for start, end in encoded["offset_mapping"])
            segment_index += 1
        encoded = {"input_ids": ids, "mm_token_type_ids": types}
        if with_offsets:
            encoded["offset_mapping"] = offsets
        return encoded

    def expansion_ids(self, replacement: str) -> list[int]:
        """
        The ids one visual item stands for inside a prompt tokenized by `encode`: its placeholder runs, the clip
        separators between them (text segments of their own), and the special tokens that open the text segment after
        it (the BOS of InternVideo2-Chat's every segment). A prompt tokenized in one pass, with each placeholder token
        replaced by these ids, equals `encode`'s ids when the tokenizer starts every text piece after an added token
        with "▁" as a separate segment starts (the tokenizers `videochat convert` writes do).
        """
        ids = []
        for _, piece, is_visual in self.pieces(replacement, [(0, len(replacement))])[1:-1]:
            if is_visual:
                ids.extend(self.placeholder_ids[match.group()] for match in self.token_pattern.finditer(piece))
            else:
                ids.extend(self.tokenizer(piece, add_special_tokens=self.add_bos_to_every_segment)["input_ids"])
        ids.extend(self.tokenizer("", add_special_tokens=self.add_bos_to_every_segment)["input_ids"])
        return ids

    def __call__(
        self,
        texts: list[str],
        replacement_offsets: list[list[dict]],
        add_special_tokens: bool | None = None,
        truncation=None,
        max_length=None,
        padding=None,
        pad_to_multiple_of=None,
        padding_side=None,
        return_attention_mask=None,
        return_offsets_mapping=False,
        **kwargs,
    ) -> dict:
        """Tokenize, truncate (text positions only) and pad a batch of expanded prompts (`replacement_offsets` as
        `ProcessorMixin.get_text_with_replacements` returns them); returns lists (`input_ids`, `attention_mask`,
        `mm_token_type_ids`, and `offset_mapping` when asked)."""
        unsupported = sorted(key for key in UNSUPPORTED_TEXT_KWARGS if kwargs.get(key))
        if unsupported:
            raise ValueError(f"Segment-wise tokenization does not support the tokenizer option(s) {unsupported}.")
        padding_side = padding_side or "left"
        if padding_side not in ("left", "right"):
            raise ValueError(f"`padding_side` must be 'left' or 'right', got {padding_side!r}.")
        truncate = truncation not in (None, False, "do_not_truncate")
        if truncate and max_length is None:
            raise ValueError("`truncation=True` needs `max_length`.")
        special = True if add_special_tokens is None else bool(add_special_tokens)
        rows = [
            self.encode(text, [item["new_span"] for item in items], special, bool(return_offsets_mapping))
            for text, items in zip(texts, replacement_offsets)
        ]
        if truncate:
            rows = [self._truncate(row, max_length) for row in rows]
        target = padded_length([len(row["input_ids"]) for row in rows], padding, max_length, pad_to_multiple_of)
        batch = {key: [] for key in rows[0]}
        batch["attention_mask"] = []
        for row in rows:
            pad = max(0, target - len(row["input_ids"])) if target is not None else 0
            fills = {"input_ids": self.pad_token_id, "mm_token_type_ids": 0, "offset_mapping": (0, 0)}
            row["attention_mask"] = [1] * len(row["input_ids"])
            fills["attention_mask"] = 0
            for key, values in row.items():
                padding_values = [fills[key]] * pad
                batch[key].append(padding_values + values if padding_side == "left" else values + padding_values)
        if return_attention_mask is False:
            del batch["attention_mask"]
        return batch

    def _truncate(self, row: dict, max_length: int) -> dict:
        """Cut text tokens beyond `max_length` (the tokenizer's truncation side); never cut visual positions."""
        length = len(row["input_ids"])
        if length <= max_length:
            return row
        from_right = getattr(self.tokenizer, "truncation_side", "right") != "left"
        kept = slice(0, max_length) if from_right else slice(length - max_length, length)
        removed = (
            row["mm_token_type_ids"][max_length:] if from_right else row["mm_token_type_ids"][: length - max_length]
        )
        if any(removed):
            raise ValueError(
                f"Truncating the prompt to max_length={max_length} would cut {sum(1 for t in removed if t)} "
                f"visual placeholder positions (prompt length {length}). Please disable truncation or "
                "increase `max_length`."
            )
        return {key: values[kept] for key, values in row.items()}


def padded_length(lengths: list[int], padding, max_length, pad_to_multiple_of) -> int | None:
    """Length a batch is padded to (`None`: no padding)."""
    if padding in (None, False, "do_not_pad"):
        return None
    if padding in (True, "longest"):
        target = max(lengths)
    elif padding == "max_length":
        target = max(max_length or 0, max(lengths))
    else:
        raise ValueError(f"Unsupported `padding` {padding!r}; use True/'longest', 'max_length' or False.")
    if pad_to_multiple_of:
        target = -(-target // pad_to_multiple_of) * pad_to_multiple_of
    return target


def placeholder_token_id(tokenizer, token: str, token_id: int | None = None) -> int:
    """The id of a visual placeholder: `token_id` when the processor config names one (folders of 0.1.0 used the
    `<unk>` id 0), else the id of `token` as a special token of the LLM tokenizer, added when missing. An added
    token can be typed but never produced by other text, and no padding or EOS id can equal it."""
    if token_id is not None:
        return int(token_id)
    if token not in tokenizer.get_vocab():
        tokenizer.add_tokens([AddedToken(token, normalized=False, special=True)], special_tokens=True)
    return int(tokenizer.convert_tokens_to_ids(token))


def normalize_prompts(text) -> list[str] | None:
    """`text` of a processor call as a list of prompts (`None` stays `None`): a string or a non-empty list of
    strings, each valid Unicode."""
    if text is None:
        return None
    if isinstance(text, str):
        text = [text]
    if isinstance(text, (list, tuple)) and len(text) > 0 and all(isinstance(sample, str) for sample in text):
        for sample in text:
            try:
                sample.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(
                    f"`text` {sample[:40]!r} is not valid Unicode (it holds lone surrogates, e.g. from "
                    "undecodable bytes); decode the input as UTF-8 first."
                ) from None
        return list(text)
    raise ValueError("`text` must be a string or a non-empty list of strings.")


__all__ = ["SegmentTokenizer", "normalize_prompts", "padded_length", "placeholder_token_id"]

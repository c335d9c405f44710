# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""
Supervised fine-tuning helpers: training labels for chat conversations and a data collator for `transformers.Trainer`.

Labels follow the original instruction-tuning code (VideoChat2 `it_dataset*.py`, InternVideo2-Chat): the loss is
computed on the assistant answers only, each together with the text that closes its turn (`"###"` for the Vicuna
format, `</s>` for Mistral, `<|end|>` for Phi-3, `<|im_end|>` + newline + `</s>` for InternLM2.5 as in STEP's
`it_dataset_internlm_hd.py`). The system prompt, the user turns, the role headers and every visual
placeholder are masked with `-100`. Unlike the original forward pass, the first position keeps the real BOS embedding
(the originals overwrite `inputs_embeds[:, :1]` with the scalar BOS id during training only).

The prompt is the one the processor's chat template renders at inference, so a fine-tuned model is prompted exactly
like it was trained.
"""

import re
from collections.abc import Sequence

import torch

from .qformer_instructions_videochat import split_instruction


IGNORE_INDEX = -100
# Texts that already close an assistant turn in the shipped chat templates (no end token is appended after them).
TURN_TERMINATORS = ("###", "<|im_end|>\n</s>", "<|im_end|>", "<|end|>")
_VISUAL_KEYS = ("pixel_values_videos", "pixel_values")
_GRID_KEYS = ("video_grid_thw", "image_grid_thw")
_QFORMER_KEYS = (
    "video_qformer_input_ids",
    "video_qformer_attention_mask",
    "image_qformer_input_ids",
    "image_qformer_attention_mask",
)


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(
        block["text"] for block in content or [] if block.get("type", "text") == "text" and "text" in block
    )


def _with_answer_end(message: dict, answer_end: str) -> dict:
    """A copy of an assistant message whose (last) text ends with `answer_end`."""
    message = dict(message)
    content = message.get("content")
    if isinstance(content, str) or content is None:
        message["content"] = (content or "") + answer_end
        return message
    blocks = [dict(block) for block in content]
    text_indices = [
        index for index, block in enumerate(blocks) if block.get("type", "text") == "text" and "text" in block
    ]
    if not text_indices:
        blocks.append({"type": "text", "text": answer_end})
    else:
        blocks[text_indices[-1]]["text"] += answer_end
    message["content"] = blocks
    return message


def resolve_answer_end(processor, rendered_turn: str, answer_end: str | None = "auto") -> str:
    """
    Text appended to every assistant answer before tokenization.

    `"auto"`: nothing when the chat template already closes the turn (`</s>` in InternVideo2-Chat, `"###"` in the
    Vicuna format, `<|im_end|>` + newline + `</s>` in InternVideo2-Chat-InternLM2.5, `<|im_end|>`); `<|end|>` for
    tokenizers that have it (Phi-3); otherwise the tokenizer's EOS token (VideoChat2-Mistral: `" answer </s>"`, as in
    `it_dataset_mistral.py`). `None` or `""`: append nothing.
    """
    if answer_end != "auto":
        return answer_end or ""
    tokenizer = processor.tokenizer
    stripped = rendered_turn.rstrip()
    eos = tokenizer.eos_token
    if (eos and eos in rendered_turn) or stripped.endswith(TURN_TERMINATORS):
        return ""
    if "<|end|>" in tokenizer.get_vocab():
        return "<|end|>"
    if eos is None:
        raise ValueError("The tokenizer has no EOS token; pass `answer_end=` explicitly (or None to append nothing).")
    return eos


def render_with_answer_spans(processor, conversation: list[dict], answer_end: str | None = "auto", **template_kwargs):
    """
    Render `conversation` with the processor's chat template and locate the supervised text.

    Returns `(text, spans, messages)`: the rendered prompt, one `(start, end)` character span per assistant message
    covering the answer and the text that closes its turn (plus `answer_end`, see [`resolve_answer_end`]), and the
    messages with `answer_end` appended to the answers (what `text` renders). Raises
    `ValueError` when the template does not render a conversation as the concatenation of its turns.
    """
    if not conversation or not any(message.get("role") == "assistant" for message in conversation):
        raise ValueError("A training conversation needs at least one assistant message to learn from.")

    def render(messages, add_generation_prompt):
        return processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt, **template_kwargs
        )

    messages = [dict(message) for message in conversation]
    ends = None
    spans, rendered_prefixes = [], []
    for index, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        prefix = render(messages[:index], add_generation_prompt=True)
        if ends is None:
            first_turn = render(messages[: index + 1], add_generation_prompt=False)
            ends = resolve_answer_end(processor, first_turn[len(prefix) :], answer_end)
        messages[index] = _with_answer_end(message, ends)
        through_answer = render(messages[: index + 1], add_generation_prompt=False)
        if not through_answer.startswith(prefix):
            raise ValueError(
                "The chat template does not render an assistant turn as a continuation of the generation prompt "
                f"(message {index}); cannot locate the answer to supervise."
            )
        spans.append((len(prefix), len(through_answer)))
        rendered_prefixes.append(through_answer)
    text = render(messages, add_generation_prompt=False)
    if not all(text.startswith(rendered) for rendered in rendered_prefixes):
        raise ValueError(
            "The chat template renders earlier turns differently once later turns follow; cannot build labels."
        )
    return text, spans, messages


def _common_prefix_length(first: Sequence[int], second: Sequence[int]) -> int:
    length = 0
    for a, b in zip(first, second):
        if a != b:
            break
        length += 1
    return length


def _locate_segments(
    input_ids: list[int], modality: list[int], segment_ids: list[list[int]], separators: list
) -> list[int]:
    """
    Start position of every text segment (the text between visual items) in a tokenized prompt.

    `separators[k]` are the token ids the processor writes between two clips of visual item `k` (HD presets), or
    `None`. Items are matched clip by clip; a small search resolves the case where a separator and the text between
    two adjacent items tokenize identically.
    """

    def skip_visual_run(position):
        if position >= len(modality) or modality[position] == 0:
            return None
        while position < len(modality) and modality[position] != 0:
            position += 1
        return position

    def match(segment, position):
        ids = segment_ids[segment]
        if input_ids[position : position + len(ids)] != ids:
            return None
        position += len(ids)
        if segment == len(segment_ids) - 1:
            return [position - len(ids)] if position == len(input_ids) else None
        after_item = skip_visual_run(position)
        separator = separators[segment]
        while after_item is not None:
            rest = match(segment + 1, after_item)
            if rest is not None:
                return [position - len(ids), *rest]
            if not separator or input_ids[after_item : after_item + len(separator)] != separator:
                return None
            after_item = skip_visual_run(after_item + len(separator))
        return None

    starts = match(0, 0)
    if starts is None:
        raise ValueError(
            "Could not align the rendered conversation with the processor's token ids; the processor tokenizes "
            "prompts differently from `videochat.training` expects."
        )
    return starts


def build_labels(
    processor,
    text: str,
    spans: Sequence[tuple[int, int]],
    input_ids: Sequence[int],
    modality: Sequence[int],
    add_special_tokens: bool = True,
) -> list[int]:
    """
    Labels for one unpadded tokenized prompt: `input_ids` on the tokens of the character `spans` of `text`, `-100`
    elsewhere. `modality` is the processor's `mm_token_type_ids` row (0 for text positions).

    The processor tokenizes every text segment between visual items on its own; a span's tokens are found by
    tokenizing the segment up to the span's start and end, as the original training code counts answer lengths.
    """
    input_ids, modality = list(input_ids), list(modality)
    tokenizer = processor.tokenizer
    pattern = re.compile(f"({re.escape(processor.video_token)}|{re.escape(processor.image_token)})")
    parts = pattern.split(text)
    segments, offsets, separators = [], [], []
    offset = 0
    for index, part in enumerate(parts):
        if index % 2 == 0:
            segments.append(part)
            offsets.append(offset)
        else:
            is_video = part == processor.video_token
            separators.append(processor.video_clip_separator if is_video else processor.image_clip_separator)
        offset += len(part)

    segment_tokenizer = processor.segment_tokenizer

    def encode(segment_text, segment_index):
        with_specials = add_special_tokens and segment_tokenizer.segment_gets_special_tokens(segment_index)
        return tokenizer(segment_text, add_special_tokens=with_specials)["input_ids"]

    segment_ids = [encode(segment, index) for index, segment in enumerate(segments)]
    separator_ids = [encode(separator, 1) if separator is not None else None for separator in separators]
    starts = _locate_segments(input_ids, modality, segment_ids, separator_ids)

    labels = [IGNORE_INDEX] * len(input_ids)
    for span_start, span_end in spans:
        segment = max(index for index, segment_offset in enumerate(offsets) if segment_offset <= span_start)
        segment_start, segment_text = offsets[segment], segments[segment]
        if span_end > segment_start + len(segment_text):
            raise ValueError("An assistant answer contains a visual placeholder; only text answers can be supervised.")
        full = segment_ids[segment]
        first = _common_prefix_length(full, encode(segment_text[: span_start - segment_start], segment))
        if span_end == segment_start + len(segment_text):
            last = len(full)
        else:
            last = _common_prefix_length(full, encode(segment_text[: span_end - segment_start], segment))
        for position in range(starts[segment] + first, starts[segment] + last):
            labels[position] = input_ids[position]
    return labels


def build_training_example(
    processor,
    conversation: list[dict],
    answer_end: str | None = "auto",
    processor_kwargs: dict | None = None,
    **template_kwargs,
) -> dict:
    """
    One training example from a chat conversation (the same format as inference, with assistant messages).

    Returns a dict of tensors without a batch dimension for the text: `input_ids` and `labels` `(L,)`,
    `attention_mask` `(L,)`, plus `pixel_values_videos` `(num_clips, T, 3, H, W)` / `pixel_values`
    `(num_images, 3, H, W)` and the Q-Former rows `qformer_input_ids` / `qformer_attention_mask` `(num_clips, Lq)`
    when the processor returns them. Batch examples with [`VideoChatDataCollator`].

    Args:
        processor ([`VideoChatProcessor`]): the processor of the model to fine-tune.
        conversation (`list[dict]`): messages with `"role"` (`system` / `user` / `assistant`) and `"content"`
            (a string or a list of `{"type": "text" | "video" | "image", ...}` blocks).
        answer_end (`str`, *optional*, defaults to `"auto"`): text appended to every answer, see
            [`resolve_answer_end`].
        processor_kwargs (`dict`, *optional*): forwarded to the processor (e.g. `{"num_frames": 8, "hd_num": 6}`).
        template_kwargs: forwarded to `apply_chat_template` for rendering.
    """
    text, spans, messages = render_with_answer_spans(processor, conversation, answer_end, **template_kwargs)
    # the Q-Former block the template puts first never reaches the LLM: label the prompt the processor tokenizes
    llm_text, _ = split_instruction(text)
    shift = len(text) - len(llm_text)
    text, spans = llm_text, [(start - shift, end - shift) for start, end in spans]
    processor_kwargs = {**(processor_kwargs or {}), "return_mm_token_type_ids": True}
    inputs = processor.apply_chat_template(
        messages,
        add_generation_prompt=False,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        processor_kwargs=processor_kwargs,
        **template_kwargs,
    )
    if inputs["input_ids"].shape[0] != 1:
        raise ValueError("`build_training_example` takes one conversation; call it once per conversation.")
    input_ids = inputs["input_ids"][0]
    modality = inputs.pop("mm_token_type_ids")[0]
    add_special_tokens = not (processor.tokenizer.bos_token and text.startswith(processor.tokenizer.bos_token))
    labels = build_labels(processor, text, spans, input_ids.tolist(), modality.tolist(), add_special_tokens)
    example = {
        "input_ids": input_ids,
        "attention_mask": inputs["attention_mask"][0],
        "labels": torch.tensor(labels, dtype=torch.long),
    }
    for key in (*_VISUAL_KEYS, *_GRID_KEYS, *_QFORMER_KEYS):
        if key in inputs:
            example[key] = inputs[key]
    return example


def _pad_rows(rows: list[torch.Tensor], value: int, side: str) -> torch.Tensor:
    length = max(row.shape[-1] for row in rows)
    padded = []
    for row in rows:
        pad = row.new_full((*row.shape[:-1], length - row.shape[-1]), value)
        padded.append(torch.cat([pad, row], dim=-1) if side == "left" else torch.cat([row, pad], dim=-1))
    return padded


class VideoChatDataCollator:
    """
    Batch [`build_training_example`] outputs (or raw conversations) for `transformers.Trainer`.

    Text is padded to the longest example (`input_ids` with the processor's pad id, which is never the visual
    placeholder id; `attention_mask` with 0; `labels` with -100) on `padding_side`. Visual inputs are concatenated
    clip by clip in example order, so videos with different HD tile grids (different clip counts) batch together;
    all videos must have the same number of frames. Q-Former rows are left padded to the longest row and
    concatenated the same way.

    Args:
        processor ([`VideoChatProcessor`]): the model's processor.
        padding_side (`str`, defaults to `"right"`): `"right"` for training, `"left"` to batch prompts for generation.
        conversation_key (`str`, defaults to `"messages"`): when a feature has this key (and no `input_ids`), it is
            a conversation and is turned into an example with [`build_training_example`] first (use
            `remove_unused_columns=False` in the `TrainingArguments`).
        answer_end, processor_kwargs: passed to [`build_training_example`] for raw conversations.
    """

    def __init__(
        self,
        processor,
        padding_side: str = "right",
        conversation_key: str = "messages",
        answer_end: str | None = "auto",
        processor_kwargs: dict | None = None,
    ):
        if padding_side not in ("left", "right"):
            raise ValueError(f"`padding_side` must be 'left' or 'right', got {padding_side!r}.")
        self.processor = processor
        self.padding_side = padding_side
        self.conversation_key = conversation_key
        self.answer_end = answer_end
        self.processor_kwargs = processor_kwargs

    def _as_example(self, feature: dict) -> dict:
        if "input_ids" in feature:
            return feature
        if self.conversation_key in feature:
            return build_training_example(
                self.processor, feature[self.conversation_key], self.answer_end, self.processor_kwargs
            )
        raise ValueError(
            f"A feature needs `input_ids` or a `{self.conversation_key}` conversation; got keys {sorted(feature)}."
        )

    def __call__(self, features: list[dict]) -> dict:
        if not features:
            raise ValueError("Cannot collate an empty list of features.")
        examples = [self._as_example(feature) for feature in features]
        pad_id = self.processor.segment_tokenizer.pad_token_id
        texts = [torch.as_tensor(example["input_ids"]).reshape(-1) for example in examples]
        masks = [
            torch.as_tensor(example.get("attention_mask", torch.ones_like(ids))).reshape(-1)
            for example, ids in zip(examples, texts)
        ]
        batch = {
            "input_ids": torch.stack(_pad_rows(texts, pad_id, self.padding_side)),
            "attention_mask": torch.stack(_pad_rows(masks, 0, self.padding_side)),
        }
        if all("labels" in example for example in examples):
            labels = [torch.as_tensor(example["labels"]).reshape(-1) for example in examples]
            batch["labels"] = torch.stack(_pad_rows(labels, IGNORE_INDEX, self.padding_side))
        elif any("labels" in example for example in examples):
            raise ValueError("Either every example has `labels` or none has.")

        for key in (*_VISUAL_KEYS, *_GRID_KEYS):
            tensors = [torch.as_tensor(example[key]) for example in examples if example.get(key) is not None]
            if not tensors:
                continue
            shapes = {tuple(tensor.shape[1:]) for tensor in tensors}
            if len(shapes) > 1:
                raise ValueError(
                    f"Cannot batch `{key}` of different per-clip shapes {sorted(shapes)}; sample every video to the "
                    "same number of frames (processor_kwargs={'num_frames': ...})."
                )
            batch[key] = torch.cat(tensors, dim=0)
        for modality, pixels in (("video", "pixel_values_videos"), ("image", "pixel_values")):
            batch.update(self._collate_qformer_rows(examples, modality, pixels))
        return batch

    def _collate_qformer_rows(self, examples: list[dict], modality: str, pixels: str) -> dict:
        """The Q-Former rows of every clip of one modality, left padded to the longest and concatenated in example
        order (the order of the clips)."""
        key = f"{modality}_qformer_input_ids"
        with_rows = [example for example in examples if example.get(key) is not None]
        if not with_rows:
            return {}
        if len(with_rows) != sum(1 for example in examples if example.get(pixels) is not None):
            raise ValueError("Either every example with visuals has Q-Former instruction rows or none has.")
        pad_id = self.processor.qformer_tokenizer.pad_token_id or 0
        ids = [torch.as_tensor(example[key]) for example in with_rows]
        masks = [
            torch.as_tensor(example.get(f"{modality}_qformer_attention_mask", torch.ones_like(rows)))
            for example, rows in zip(with_rows, ids)
        ]
        return {
            key: torch.cat(_pad_rows(ids, pad_id, "left")),
            f"{modality}_qformer_attention_mask": torch.cat(_pad_rows(masks, 0, "left")),
        }


__all__ = [
    "IGNORE_INDEX",
    "VideoChatDataCollator",
    "build_labels",
    "build_training_example",
    "render_with_answer_spans",
    "resolve_answer_end",
]

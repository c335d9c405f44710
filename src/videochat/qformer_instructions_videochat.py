# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""The Q-Former's instruction text: one row per clip, tokenized by the Q-Former's BERT tokenizer the way the
originals do (left truncation and padding)."""

from transformers import BertTokenizer


QFORMER_INSTRUCTION_MODES = ("full", "first_char", "none")
QFORMER_BOS_TOKEN = "[DEC]"
# The chat templates render a conversation's system message (the originals' Q-Former instruction) at the start of the
# prompt between these added special tokens; the processor removes the markers and the text between them from the LLM
# prompt and gives the text to the Q-Former, so `processor(text=rendered_prompt)` sees what the template saw.
QFORMER_INSTRUCTION_START = "<qformer_instruction>"
QFORMER_INSTRUCTION_END = "</qformer_instruction>"


def prepare_qformer_tokenizer(tokenizer):
    """
    Configure a BERT tokenizer the way the originals use it for the Q-Former: truncation and padding on the left,
    and `[DEC]` added as `bos_token` when missing (the originals add it, so the Q-Former vocabulary has one more row;
    it is never inserted at inference). Modifies and returns `tokenizer`.
    """
    if tokenizer.bos_token is None:
        tokenizer.add_special_tokens({"bos_token": QFORMER_BOS_TOKEN})
    tokenizer.truncation_side = "left"
    tokenizer.padding_side = "left"
    return tokenizer


def placeholder_qformer_tokenizer():
    """A BERT tokenizer with only the special tokens, for models whose Q-Former never reads text (VideoChat v1,
    InternVideo2-Chat-8B): the processor always carries (and saves) a `qformer_tokenizer`."""
    return BertTokenizer(vocab={"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4})


def check_instruction_mode(mode: str) -> None:
    if mode not in QFORMER_INSTRUCTION_MODES:
        raise ValueError(f"Unknown qformer_instruction_mode {mode!r}; choose one of {QFORMER_INSTRUCTION_MODES}.")


def qformer_tokenizer_for_mode(tokenizer, mode: str):
    """The Q-Former tokenizer of a processor whose Q-Former reads text in `mode`, configured by
    `prepare_qformer_tokenizer`; without one, `mode="none"` gets `placeholder_qformer_tokenizer()` and any other mode
    is an error."""
    if tokenizer is None:
        if mode != "none":
            raise ValueError(
                f"A `qformer_tokenizer` is required when the Q-Former takes an instruction (qformer_instruction_mode="
                f"{mode!r})."
            )
        tokenizer = placeholder_qformer_tokenizer()
    return prepare_qformer_tokenizer(tokenizer)


def instruction_texts(kinds: list[str], qformer_text, mode: str, defaults: dict) -> list[str] | None:
    """
    The instruction of every visual item (`kinds`: `"video"` / `"image"` per item, videos first): `qformer_text` (one
    string for all, or one per item), else the per-modality `defaults`; `None` when no item has one. `mode` is
    `"full"`, `"first_char"` (the VideoChat2-HD demo feeds only the first character) or `"none"` (no text).
    """
    if mode == "none":
        if qformer_text is not None:
            raise ValueError(
                "This processor's Q-Former takes no instruction (qformer_instruction_mode='none'); do not pass "
                "`qformer_text`."
            )
        return None
    if qformer_text is None:
        texts = [defaults[kind] for kind in kinds]
    elif isinstance(qformer_text, str):
        texts = [qformer_text] * len(kinds)
    elif (
        isinstance(qformer_text, (list, tuple))
        and len(qformer_text) == len(kinds)
        and all(text is None or isinstance(text, str) for text in qformer_text)
    ):
        texts = list(qformer_text)
    else:
        raise ValueError(
            f"`qformer_text` must be one string or a list of {len(kinds)} strings (one per video, then one per "
            f"image); got {qformer_text!r}."
        )
    if not texts or all(text is None for text in texts):
        return None
    if any(text is None for text in texts):
        raise ValueError("Either every visual item has a Q-Former instruction or none has; got a mix.")
    return [text[:1] for text in texts] if mode == "first_char" else texts


def split_instruction(text: str) -> tuple[str, str | None]:
    """`(prompt, instruction)`: the Q-Former instruction a rendered prompt carries at its start between
    `QFORMER_INSTRUCTION_START` / `QFORMER_INSTRUCTION_END`, and the prompt without it (`instruction` is `None` when
    the prompt carries none). The markers anywhere else are an error: the LLM must never see them."""
    instruction = None
    if text.startswith(QFORMER_INSTRUCTION_START):
        end = text.find(QFORMER_INSTRUCTION_END)
        if end < 0:
            raise ValueError(f"The prompt opens a {QFORMER_INSTRUCTION_START} but never closes it.")
        instruction = text[len(QFORMER_INSTRUCTION_START) : end]
        text = text[end + len(QFORMER_INSTRUCTION_END) :]
    if QFORMER_INSTRUCTION_START in text or QFORMER_INSTRUCTION_END in text:
        raise ValueError(
            f"{QFORMER_INSTRUCTION_START}...{QFORMER_INSTRUCTION_END} may only open a prompt (the chat templates put "
            "the system message there for the Q-Former)."
        )
    return text, instruction


def prompt_instructions(
    instructions: list[str | None], video_counts: list[int], image_counts: list[int]
) -> str | list[str] | None:
    """The `qformer_text` of a batch whose prompts carried `instructions` (one per prompt, `None` for none): one
    string when they agree, else one per visual item (videos in prompt order, then images); `None` when no prompt
    carries one."""
    if all(instruction is None for instruction in instructions):
        return None
    if any(instruction is None for instruction in instructions):
        raise ValueError("Either every conversation of the batch has a system message or none has.")
    if len(set(instructions)) == 1:
        return instructions[0]
    per_video = [text for text, count in zip(instructions, video_counts) for _ in range(count)]
    per_image = [text for text, count in zip(instructions, image_counts) for _ in range(count)]
    return per_video + per_image


def split_prompt_instructions(
    texts: list[str] | None, video_token: str, image_token: str
) -> tuple[list[str] | None, str | list[str] | None]:
    """The prompts without the Q-Former instruction the chat template put at their start (see `split_instruction`),
    and those instructions as one `qformer_text` (see `prompt_instructions`)."""
    if texts is None:
        return None, None
    texts, instructions = zip(*(split_instruction(text) for text in texts))
    counts = {token: [text.count(token) for text in texts] for token in (video_token, image_token)}
    return list(texts), prompt_instructions(list(instructions), counts[video_token], counts[image_token])


def encode_rows(tokenizer, texts: list[str], items: list[tuple[str, int]], max_length: int) -> dict:
    """`{video,image}_qformer_input_ids` / `_attention_mask`: the instruction of every item repeated for each of
    its clips (`items` are `(kind, num_clips)`), left padded per modality."""
    outputs = {}
    for modality in ("video", "image"):
        rows = [text for text, (kind, clips) in zip(texts, items) if kind == modality for _ in range(clips)]
        if rows:
            encoded = tokenizer(
                rows,
                padding="longest",
                truncation=True,
                max_length=max_length,
                padding_side="left",
                return_attention_mask=True,
            )
            outputs[f"{modality}_qformer_input_ids"] = encoded["input_ids"]
            outputs[f"{modality}_qformer_attention_mask"] = encoded["attention_mask"]
    return outputs


def qformer_inputs(tokenizer, visual_inputs: dict, qformer_text, mode: str, defaults: dict, max_length: int) -> dict:
    """The Q-Former rows of a processor call: one instruction row per clip, per modality (videos in prompt order,
    then images, as `visual_inputs["video_grid_thw"]` / `["image_grid_thw"]` count their clips); see
    `instruction_texts` for `qformer_text`, `mode` and the per-modality `defaults`."""
    items = [("video", int(grid[0])) for grid in visual_inputs.get("video_grid_thw", [])]
    items += [("image", int(grid[0])) for grid in visual_inputs.get("image_grid_thw", [])]
    texts = instruction_texts([kind for kind, _ in items], qformer_text, mode, defaults)
    return {} if texts is None else encode_rows(tokenizer, texts, items, max_length)


__all__ = [
    "QFORMER_INSTRUCTION_END",
    "QFORMER_INSTRUCTION_MODES",
    "QFORMER_INSTRUCTION_START",
    "check_instruction_mode",
    "encode_rows",
    "instruction_texts",
    "placeholder_qformer_tokenizer",
    "prepare_qformer_tokenizer",
    "prompt_instructions",
    "qformer_inputs",
    "qformer_tokenizer_for_mode",
    "split_instruction",
    "split_prompt_instructions",
]

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""
How a serving engine that tokenizes the whole rendered prompt in one pass (vLLM) reaches the ids of
`VideoChatProcessor`, which tokenizes every text segment between visual items on its own.

The tokenizers `videochat convert` writes already start every text piece after a visual placeholder with "▁", as a
separately tokenized segment starts, so the one-pass ids differ from the processor's only in special tokens:

* the special tokens the processor adds to the first segment (BOS), which chat requests do not add and which a prompt
  rendered with a BOS could carry twice: `prompt_ids_for_serving` makes the prompt start with them exactly once;
* the special tokens of every later segment (InternVideo2-Chat adds BOS to each): they follow each visual item, so
  they are part of the item's expansion (`SegmentTokenizer.expansion_ids`), as are the clip separators of HD items;
* the Q-Former instruction the chat template renders at the start between `<qformer_instruction>` markers: removed
  from the prompt and returned as the `qformer_text` the processor must get for the visual items.

Nothing here imports vLLM; `videochat.cli.vllm_model` applies it inside vLLM's multi-modal processor.
"""

from ..qformer_instructions_videochat import QFORMER_INSTRUCTION_END, QFORMER_INSTRUCTION_START


def special_prefix_ids(tokenizer) -> list[int]:
    """The ids the tokenizer puts before a text with `add_special_tokens=True` (BOS for the LLaMA-style ones)."""
    with_specials = tokenizer("a", add_special_tokens=True)["input_ids"]
    without = tokenizer("a", add_special_tokens=False)["input_ids"]
    position = len(with_specials) - len(without)
    return list(with_specials[:position]) if with_specials[position:] == without else []


def prompt_ids_for_serving(processor, prompt_ids: list[int]) -> tuple[list[int], str | None]:
    """
    `(ids, qformer_text)` of a prompt tokenized in one pass (with or without special tokens): the ids start with the
    processor's first-segment special tokens exactly once (none where the processor gives the first segment none),
    the Q-Former instruction block is cut out and returned as text (`None` when the prompt has none).
    """
    prefix = special_prefix_ids(processor.tokenizer)
    ids = list(prompt_ids)
    while prefix and ids[: len(prefix)] == prefix:
        ids = ids[len(prefix) :]
    if not processor.segment_tokenizer.segment_gets_special_tokens(0):  # InternLM2.5 (STEP): no BOS on any segment
        prefix = []
    start, end = processor.qformer_instruction_start_id, processor.qformer_instruction_end_id
    instruction = None
    if ids[:1] == [start]:
        if end not in ids:
            raise ValueError(f"The prompt opens a {QFORMER_INSTRUCTION_START} but never closes it.")
        close = ids.index(end)
        instruction = processor.tokenizer.decode(ids[1:close], skip_special_tokens=False)
        ids = ids[close + 1 :]
    if start in ids or end in ids:
        raise ValueError(
            f"{QFORMER_INSTRUCTION_START}...{QFORMER_INSTRUCTION_END} may only open a prompt (the chat templates put "
            "the system message there for the Q-Former)."
        )
    return prefix + ids, instruction


def item_expansion_ids(processor, replacement: str) -> list[int]:
    """The ids one visual item's replacement text (`replace_video_token` / `replace_image_token`) stands for."""
    return processor.segment_tokenizer.expansion_ids(replacement)


__all__ = ["item_expansion_ids", "prompt_ids_for_serving", "special_prefix_ids"]

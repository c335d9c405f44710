# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Rules shared by several layouts: the BLIP-2/BERT Q-Former and PEFT-wrapped stock LLMs."""

import re

from ..keymap import Drop, Rule


def qformer_rules(source_prefix: str) -> tuple[Rule, ...]:
    """Original LAVIS/BLIP-2 `BertModel` names under `source_prefix` (e.g. `qformer.bert`) -> InstructBLIP Q-Former."""
    p = re.escape(source_prefix)
    return (
        Rule(
            rf"{p}\.embeddings\.(word_embeddings|position_embeddings)\.weight",
            (r"model.qformer_embeddings.\1.weight",),
        ),
        Rule(rf"{p}\.embeddings\.LayerNorm\.(weight|bias)", (r"model.qformer.layernorm.\1",)),
        Rule(
            rf"{p}\.encoder\.layer\.(\d+)\.(attention|crossattention)\.self\.(query|key|value)\.(weight|bias)",
            (r"model.qformer.encoder.layer.\1.\2.attention.\3.\4",),
        ),
        Rule(
            rf"{p}\.encoder\.layer\.(\d+)\.(attention|crossattention)\.output\.(dense|LayerNorm)\.(weight|bias)",
            (r"model.qformer.encoder.layer.\1.\2.output.\3.\4",),
        ),
        Rule(
            rf"{p}\.encoder\.layer\.(\d+)\.(intermediate|intermediate_query)\.dense\.(weight|bias)",
            (r"model.qformer.encoder.layer.\1.\2.dense.\3",),
        ),
        Rule(
            rf"{p}\.encoder\.layer\.(\d+)\.(output|output_query)\.(dense|LayerNorm)\.(weight|bias)",
            (r"model.qformer.encoder.layer.\1.\2.\3.\4",),
        ),
    )


def qformer_drops(source_prefix: str) -> tuple[Drop, ...]:
    p = re.escape(source_prefix)
    return (Drop(rf"{p}\.embeddings\.position_ids", "buffer recomputed by the model"),)


def peft_llm_rules(source_prefix: str) -> tuple[Rule, ...]:
    """A PEFT-wrapped (peft 0.4/0.5 naming) stock causal LM under `source_prefix` (e.g. `lm`) -> our LLM + lm_head.
    LoRA adapters next to these weights are folded in by the plan."""
    p = re.escape(source_prefix)
    return (
        Rule(rf"{p}\.base_model\.model\.model\.(.+)", (r"model.language_model.\1",)),
        Rule(rf"{p}\.base_model\.model\.lm_head\.weight", ("lm_head.weight",)),
    )


def plain_llm_rules(source_prefix: str) -> tuple[Rule, ...]:
    """A stock causal LM (no PEFT wrapper) under `source_prefix` (`""` for a bare HF LLM folder)."""
    p = re.escape(source_prefix) + r"\." if source_prefix else ""
    return (
        Rule(rf"{p}model\.(.+)", (r"model.language_model.\1",)),
        Rule(rf"{p}lm_head\.weight", ("lm_head.weight",)),
    )


def rotary_drops() -> tuple[Drop, ...]:
    return (Drop(r".*\.rotary_emb\.inv_freq", "rotary buffer recomputed by the LLM"),)

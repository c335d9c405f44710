# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""InternLM2 / InternLM2.5 (hub remote code `InternLM2ForCausalLM`) -> in-tree `LlamaForCausalLM` names.

InternLM2 packs q/k/v into one `attention.wqkv` whose rows are grouped per KV head (`[q (heads/kv_heads heads), k,
v]`, `head_dim` rows each); the `SplitGroupedQKV` transform de-interleaves it, so it needs the head counts of the
config and the key map is built per config. `w1`/`w3`/`w2` are the gate/up/down projections.
"""

import re

from ..keymap import KeyMap, Rule, SplitGroupedQKV
from .common import rotary_drops
from .internvideo2_chat import INTERNVIDEO2_CHAT_KEY_MAP


INTERNLM2_FFN_NAMES = {"w1": "gate_proj", "w3": "up_proj", "w2": "down_proj"}


def internlm2_llm_rules(
    source_prefix: str,
    num_attention_heads: int,
    num_key_value_heads: int,
    target_prefix: str = "model.language_model",
    lm_head_target: str = "lm_head.weight",
) -> tuple[Rule, ...]:
    """Rules for an InternLM2 causal LM whose keys start with `source_prefix` (`""` for a bare checkpoint; the
    `model.` / `output.` part of the InternLM2 names follows it) -> Llama names under `target_prefix`."""
    p = re.escape(source_prefix) + r"\." if source_prefix else ""
    layer = rf"{p}model\.layers\.(\d+)"
    out = rf"{target_prefix}.layers.\1"
    return (
        Rule(rf"{p}model\.tok_embeddings\.weight", (f"{target_prefix}.embed_tokens.weight",)),
        Rule(
            rf"{layer}\.attention\.wqkv\.(weight|bias)",
            (rf"{out}.self_attn.q_proj.\2", rf"{out}.self_attn.k_proj.\2", rf"{out}.self_attn.v_proj.\2"),
            SplitGroupedQKV(num_attention_heads, num_key_value_heads),
        ),
        Rule(rf"{layer}\.attention\.wo\.(weight|bias)", (rf"{out}.self_attn.o_proj.\2",)),
        *(
            Rule(rf"{layer}\.feed_forward\.{ours}\.weight", (rf"{out}.mlp.{theirs}.weight",))
            for ours, theirs in INTERNLM2_FFN_NAMES.items()
        ),
        Rule(rf"{layer}\.attention_norm\.weight", (rf"{out}.input_layernorm.weight",)),
        Rule(rf"{layer}\.ffn_norm\.weight", (rf"{out}.post_attention_layernorm.weight",)),
        Rule(rf"{p}model\.norm\.weight", (f"{target_prefix}.norm.weight",)),
        Rule(rf"{p}output\.weight", (lm_head_target,)),
    )


def internlm2_key_map(num_attention_heads: int, num_key_value_heads: int) -> KeyMap:
    """A bare InternLM2 checkpoint (`model.tok_embeddings.weight`, ..., `output.weight`) -> `LlamaForCausalLM`."""
    return KeyMap(
        name="internlm2",
        rules=internlm2_llm_rules("", num_attention_heads, num_key_value_heads, target_prefix="model"),
        drops=rotary_drops(),
    )


def internvideo2_chat_internlm2_key_map(num_attention_heads: int, num_key_value_heads: int) -> KeyMap:
    """InternVideo2-Chat-8B-InternLM2.5: the InternVideo2-Chat vision/Q-Former/bridge names, with the LLM stored as
    InternLM2 under `lm.` (full fine-tune) or `lm.base_model.model.` (PEFT-wrapped; adapters are folded)."""
    bridge_rules = tuple(rule for rule in INTERNVIDEO2_CHAT_KEY_MAP.rules if not rule.pattern.startswith(r"lm\."))
    return KeyMap(
        name="internvideo2_chat_internlm2",
        rules=(
            *bridge_rules,
            *internlm2_llm_rules("lm.base_model.model", num_attention_heads, num_key_value_heads),
            *internlm2_llm_rules("lm", num_attention_heads, num_key_value_heads),
        ),
        drops=(*INTERNVIDEO2_CHAT_KEY_MAP.drops, *rotary_drops()),
    )


def llama_text_config_from_internlm2(internlm2_config: dict) -> dict:
    """The InternLM2 `config.json` (remote code) -> the equivalent `LlamaConfig` fields; dynamic-NTK `rope_scaling`
    (`{"type": "dynamic", "factor": f}`) and `rope_theta` are carried over."""
    hidden_size = int(internlm2_config["hidden_size"])
    num_heads = int(internlm2_config["num_attention_heads"])
    config = {
        "model_type": "llama",
        "hidden_size": hidden_size,
        "intermediate_size": int(internlm2_config["intermediate_size"]),
        "num_hidden_layers": int(internlm2_config["num_hidden_layers"]),
        "num_attention_heads": num_heads,
        "num_key_value_heads": int(internlm2_config.get("num_key_value_heads", num_heads)),
        "head_dim": hidden_size // num_heads,
        "vocab_size": int(internlm2_config["vocab_size"]),
        "max_position_embeddings": int(internlm2_config.get("max_position_embeddings", 2048)),
        "rms_norm_eps": float(internlm2_config.get("rms_norm_eps", 1e-6)),
        "hidden_act": internlm2_config.get("hidden_act", "silu"),
        "rope_theta": float(internlm2_config.get("rope_theta", 10000.0)),
        "attention_bias": bool(internlm2_config.get("bias", False)),
        "mlp_bias": False,
        "tie_word_embeddings": bool(internlm2_config.get("tie_word_embeddings", False)),
        "bos_token_id": internlm2_config.get("bos_token_id", 1),
        "eos_token_id": internlm2_config.get("eos_token_id", 2),
        "pad_token_id": internlm2_config.get("pad_token_id"),
    }
    rope_scaling = internlm2_config.get("rope_scaling")
    if rope_scaling:
        rope_scaling = dict(rope_scaling)
        rope_type = rope_scaling.pop("rope_type", None) or rope_scaling.pop("type", None)
        rope_scaling.pop("type", None)
        if rope_type not in ("dynamic", "linear"):
            raise ValueError(f"unsupported InternLM2 rope_scaling type {rope_type!r} (expected 'dynamic' or 'linear')")
        config["rope_scaling"] = {"rope_type": rope_type, **rope_scaling}
    return config


def is_internlm2_config(config: dict) -> bool:
    """True for an InternLM2/2.5 remote-code `config.json`."""
    return config.get("model_type") == "internlm2" or any(
        "InternLM2" in name for name in config.get("architectures") or []
    )


__all__ = [
    "internlm2_key_map",
    "internlm2_llm_rules",
    "internvideo2_chat_internlm2_key_map",
    "is_internlm2_config",
    "llama_text_config_from_internlm2",
]

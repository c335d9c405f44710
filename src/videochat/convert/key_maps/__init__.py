# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""One declarative key map per original checkpoint layout; a preset record names its map in `KEY_MAPS`."""

from collections.abc import Callable

from ..keymap import KeyMap
from .internlm2 import internvideo2_chat_internlm2_key_map
from .internvideo2_chat import INTERNVIDEO2_CHAT_KEY_MAP
from .videochat2 import VIDEOCHAT2_MISTRAL_KEY_MAP, VIDEOCHAT2_PHI_KEY_MAP, VIDEOCHAT2_VICUNA_KEY_MAP
from .videochat_v1 import VIDEOCHAT_V1_KEY_MAP


def _fixed(key_map: KeyMap) -> Callable[..., KeyMap]:
    return lambda config: key_map


# key map name -> factory(our config) -> KeyMap (InternLM2's fused qkv split needs the head counts)
KEY_MAPS: dict[str, Callable[..., KeyMap]] = {
    "internvideo2_chat": _fixed(INTERNVIDEO2_CHAT_KEY_MAP),
    "internvideo2_chat_internlm2": lambda config: internvideo2_chat_internlm2_key_map(
        config.text_config.num_attention_heads, config.text_config.num_key_value_heads
    ),
    "videochat2_vicuna": _fixed(VIDEOCHAT2_VICUNA_KEY_MAP),
    "videochat2_mistral": _fixed(VIDEOCHAT2_MISTRAL_KEY_MAP),
    "videochat2_phi": _fixed(VIDEOCHAT2_PHI_KEY_MAP),
    "videochat_v1": _fixed(VIDEOCHAT_V1_KEY_MAP),
}


def key_map_for(preset, config) -> KeyMap:
    """The key map of `preset` (a `presets.Preset`), built for `config` (our `VideoChatConfig`)."""
    return KEY_MAPS[preset.key_map](config)


__all__ = [
    "INTERNVIDEO2_CHAT_KEY_MAP",
    "KEY_MAPS",
    "VIDEOCHAT2_MISTRAL_KEY_MAP",
    "VIDEOCHAT2_PHI_KEY_MAP",
    "VIDEOCHAT2_VICUNA_KEY_MAP",
    "VIDEOCHAT_V1_KEY_MAP",
    "key_map_for",
]

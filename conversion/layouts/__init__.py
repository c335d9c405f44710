"""One declarative key map per original checkpoint layout."""

from .internvideo2_chat import INTERNVIDEO2_CHAT_KEY_MAP
from .videochat2 import VIDEOCHAT2_MISTRAL_KEY_MAP, VIDEOCHAT2_PHI_KEY_MAP, VIDEOCHAT2_VICUNA_KEY_MAP
from .videochat_v1 import VIDEOCHAT_V1_KEY_MAP

LAYOUTS = {
    key_map.name: key_map
    for key_map in (
        INTERNVIDEO2_CHAT_KEY_MAP,
        VIDEOCHAT2_VICUNA_KEY_MAP,
        VIDEOCHAT2_MISTRAL_KEY_MAP,
        VIDEOCHAT2_PHI_KEY_MAP,
        VIDEOCHAT_V1_KEY_MAP,
    )
}

__all__ = [
    "INTERNVIDEO2_CHAT_KEY_MAP",
    "LAYOUTS",
    "VIDEOCHAT2_MISTRAL_KEY_MAP",
    "VIDEOCHAT2_PHI_KEY_MAP",
    "VIDEOCHAT2_VICUNA_KEY_MAP",
    "VIDEOCHAT_V1_KEY_MAP",
]

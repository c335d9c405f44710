"""One declarative key map per original checkpoint layout."""

from .internvideo2_chat import INTERNVIDEO2_CHAT_KEY_MAP

LAYOUTS = {INTERNVIDEO2_CHAT_KEY_MAP.name: INTERNVIDEO2_CHAT_KEY_MAP}

__all__ = ["LAYOUTS", "INTERNVIDEO2_CHAT_KEY_MAP"]

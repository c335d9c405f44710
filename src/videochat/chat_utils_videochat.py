# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Conversations with visual blocks, prepared for `VideoChatProcessor.apply_chat_template`: typed blocks, the system
message the originals feed to the Q-Former, and the original "time message" of each video."""

from .qformer_instructions_videochat import QFORMER_INSTRUCTION_START
from .video_utils_videochat import FRAME_SAMPLING_KEYS, format_time_message, load_video_frames


VISUAL_TYPES = ("video", "image")


def _typed_block(block: dict) -> dict:
    """A copy of a content block with a `type` (`{"video": ...}` / `{"image": ...}` / `{"text": ...}` blocks may omit
    it)."""
    block = dict(block)
    if "type" not in block:
        block["type"] = next((kind for kind in (*VISUAL_TYPES, "text") if kind in block), None)
        if block["type"] is None:
            raise ValueError(f"Cannot tell the type of content block {block!r}; add a 'type' key.")
    return block


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(block["text"] for block in content or [] if block.get("type") == "text")


def _video_of_block(block: dict):
    for key in ("video", "path", "url"):
        if block.get(key) is not None:
            return block[key]
    raise ValueError(f"The video block {block!r} has no 'video', 'path' or 'url'.")


class VisualConversation:
    """One conversation or a batch of them, copied with typed content blocks (the caller's messages are untouched)."""

    def __init__(self, conversation):
        self.is_batched = bool(conversation) and isinstance(conversation[0], (list, tuple))
        conversations = conversation if self.is_batched else [conversation]
        self.conversations = [[self._copy_message(message) for message in messages] for messages in conversations]

    @staticmethod
    def _copy_message(message: dict) -> dict:
        message = dict(message)
        if isinstance(message.get("content"), (list, tuple)):
            message["content"] = [_typed_block(block) for block in message["content"]]
        return message

    @property
    def messages(self):
        return self.conversations if self.is_batched else self.conversations[0]

    def blocks(self, kind: str):
        for messages in self.conversations:
            for message in messages:
                content = message.get("content")
                if not isinstance(content, str):
                    yield from (block for block in content or [] if block.get("type") == kind)

    def system_instructions(self) -> str | list[str] | None:
        """The Q-Former instruction(s) the system messages give: one string for the whole batch, one per visual item
        when the conversations differ, `None` without system messages."""
        texts = [
            next((_text_of(m.get("content")) for m in messages if m.get("role") == "system"), None)
            for messages in self.conversations
        ]
        if all(text is None for text in texts):
            return None
        if len(set(texts)) == 1:
            return texts[0]
        if any(text is None for text in texts):
            raise ValueError("Either every conversation of the batch has a system message or none has.")
        counts = [
            sum(
                1
                for m in messages
                if not isinstance(m.get("content"), str)
                for block in m.get("content") or []
                if block.get("type") in VISUAL_TYPES
            )
            for messages in self.conversations
        ]
        return [text for text, count in zip(texts, counts) for _ in range(count)]

    def give_system_message_to_qformer(self, chat_template: str, processor_kwargs: dict) -> None:
        """Set `processor_kwargs["qformer_text"]` to the system instructions when the caller gave none and
        `chat_template` does not carry the system message to the Q-Former itself (a custom template without the
        `QFORMER_INSTRUCTION_START` block)."""
        if "qformer_text" in processor_kwargs or QFORMER_INSTRUCTION_START in chat_template:
            return
        qformer_text = self.system_instructions()
        if qformer_text is not None:
            processor_kwargs["qformer_text"] = qformer_text

    def add_time_messages(self, default_num_frames: int, processor_kwargs: dict, kwargs: dict) -> None:
        """Decode every video block up front, store its frames and the original time message in the block, and make
        the processor use those frames as they are."""
        videos_kwargs = processor_kwargs.get("videos_kwargs") or {}
        sampling = {
            key: videos_kwargs.get(key, processor_kwargs.get(key, kwargs.get(key))) for key in FRAME_SAMPLING_KEYS
        }
        metadata = videos_kwargs.get("video_metadata", processor_kwargs.get("video_metadata"))
        decoded = []
        for block in self.blocks("video"):
            if block.get("time_message"):
                continue
            block_metadata = (
                {"fps": block["fps"]} if block.get("fps") is not None else (block.get("video_metadata") or metadata)
            )
            frames, video_metadata = load_video_frames(
                _video_of_block(block), block_metadata, default_num_frames=default_num_frames, **sampling
            )
            if not video_metadata.fps:
                raise ValueError(
                    "The time message needs the video's frame rate: pass `fps` in the video block or "
                    "`video_metadata`, or set add_time_message=False."
                )
            block["time_message"] = format_time_message(video_metadata.frames_indices, video_metadata.fps)
            block.pop("path", None)
            block.pop("url", None)
            block["video"] = frames
            decoded.append(video_metadata)
        processor_kwargs["do_sample_frames"] = False
        for key in ("num_frames", "fps", "bound", "sampling", "video_metadata"):
            processor_kwargs.pop(key, None)
            kwargs.pop(key, None)
        if videos_kwargs:
            processor_kwargs["videos_kwargs"] = {
                k: v for k, v in videos_kwargs.items() if k not in FRAME_SAMPLING_KEYS
            }
        if decoded:
            processor_kwargs["video_metadata"] = decoded


__all__ = ["VisualConversation"]

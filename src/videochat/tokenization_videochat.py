# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""LLM tokenizer class of the VideoChat models.

`VideoChatTokenizer` is a plain `TokenizersBackend`: its `tokenizer.json` (written by `videochat convert` /
`videochat convert-tokenizer`, see `videochat.convert.tokenizer`) reproduces the token ids of the original slow
sentencepiece `LlamaTokenizer`, and the class only makes `AutoTokenizer` load that pipeline as it is instead of
re-deriving a Metaspace pre-tokenizer as `LlamaTokenizer` would.
"""

from transformers.tokenization_utils_tokenizers import TokenizersBackend


class VideoChatTokenizer(TokenizersBackend):
    """
    LLM tokenizer of the VideoChat / VideoChat2 / InternVideo2-Chat models.

    It is a [`TokenizersBackend`] whose `tokenizer.json` reproduces the token ids of the original slow sentencepiece
    `LlamaTokenizer` (see the module docstring for what differs from the fast tokenizer transformers builds from the
    same `tokenizer.model`). The class adds no behaviour of its own: it exists so that the saved
    `tokenizer_config.json` names it and `AutoTokenizer` loads the serialized pipeline as it is, instead of
    re-deriving a Metaspace pre-tokenizer as `LlamaTokenizer` does. Build one with
    `videochat.convert.tokenizer.tokenizer_from_sentencepiece` or `videochat convert-tokenizer`.
    """

    model_input_names = ["input_ids", "attention_mask"]


__all__ = ["VideoChatTokenizer"]

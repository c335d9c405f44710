# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""
vLLM general plugin: entry point `vllm.general_plugins: videochat = videochat.cli.vllm_plugin:register`.

vLLM calls `register()` in every process it starts (API server, engine core, workers) before it reads a model's
config. It
* imports `videochat`, which registers the `videochat` config, model and processor with the transformers Auto
  classes (vLLM reads `config.json` with `AutoConfig`, builds the model with `AutoModel.from_config` and the processor
  with `AutoProcessor`);
* maps the architecture `VideoChatForConditionalGeneration` to `videochat.cli.vllm_model:VideoChatForVLLM`, a
  subclass of vLLM's Transformers modeling backend (vLLM looks an unknown architecture up as a `transformers`
  attribute only, so it would never find ours); the string keeps vLLM's model code unimported until a model is built;
* registers the video loader that samples frames as the originals do (`videochat.cli.vllm_video_loader`).

Importing this module does not import vLLM; `register()` is idempotent.
"""

import videochat  # noqa: F401  (registers the Auto classes)

from .vllm_video_loader import register_video_loader


ARCHITECTURE = "VideoChatForConditionalGeneration"
MODEL_CLASS = "videochat.cli.vllm_model:VideoChatForVLLM"


def register() -> None:
    from vllm import ModelRegistry  # vLLM calls this; the package works without vLLM

    if ARCHITECTURE not in ModelRegistry.get_supported_archs():
        ModelRegistry.register_model(ARCHITECTURE, MODEL_CLASS)
    register_video_loader()


__all__ = ["ARCHITECTURE", "register"]

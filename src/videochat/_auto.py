# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Registration with the transformers Auto classes: the only `Auto*.register` calls of the package.

Importing `videochat` runs this, so converted folders load with `AutoConfig` / `AutoModel` /
`AutoModelForImageTextToText` / `AutoProcessor` / `AutoTokenizer` without `trust_remote_code`.
"""

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageTextToText,
    AutoModelForMultimodalLM,
    AutoProcessor,
    AutoTokenizer,
)

from .configuration_videochat import VideoChatConfig, VideoChatQFormerConfig, VideoChatVisionConfig
from .image_processing_pil_videochat import VideoChatImageProcessor
from .modeling_videochat import VideoChatForConditionalGeneration, VideoChatModel
from .processing_videochat import VideoChatProcessor
from .tokenization_videochat import VideoChatTokenizer


def register_auto_classes() -> None:
    """Register every class (idempotent)."""
    for config_class in (VideoChatConfig, VideoChatVisionConfig, VideoChatQFormerConfig):
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    AutoModel.register(VideoChatConfig, VideoChatModel, exist_ok=True)
    AutoModelForImageTextToText.register(VideoChatConfig, VideoChatForConditionalGeneration, exist_ok=True)
    AutoModelForMultimodalLM.register(VideoChatConfig, VideoChatForConditionalGeneration, exist_ok=True)
    AutoImageProcessor.register(VideoChatConfig, image_processor_classes={"pil": VideoChatImageProcessor}, exist_ok=True)
    AutoTokenizer.register(VideoChatConfig, tokenizer_class=VideoChatTokenizer, exist_ok=True)
    AutoProcessor.register(VideoChatConfig, VideoChatProcessor, exist_ok=True)


register_auto_classes()

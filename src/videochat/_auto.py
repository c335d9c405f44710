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
    AutoModelForVideoClassification,
    AutoProcessor,
    AutoTokenizer,
)

from .configuration_internvideo2 import InternVideo2Config, InternVideo2TextConfig, InternVideo2VisionConfig
from .configuration_videochat import VideoChatConfig, VideoChatQFormerConfig, VideoChatVisionConfig
from .image_processing_internvideo2 import InternVideo2ImageProcessor
from .image_processing_pil_videochat import VideoChatImageProcessor
from .modeling_internvideo2 import (
    InternVideo2ForVideoClassification,
    InternVideo2Model,
    InternVideo2TextModel,
    InternVideo2VideoTextModel,
)
from .modeling_videochat import VideoChatForConditionalGeneration, VideoChatModel
from .processing_internvideo2 import InternVideo2Processor
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
    register_internvideo2_classes()


def register_internvideo2_classes() -> None:
    """The InternVideo2 foundation models: stage-1 folders (vision config) load with `AutoModel` /
    `AutoModelForVideoClassification`, stage-2 folders with `AutoModel` / `AutoProcessor`."""
    for config_class in (InternVideo2VisionConfig, InternVideo2TextConfig, InternVideo2Config):
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    AutoModel.register(InternVideo2VisionConfig, InternVideo2Model, exist_ok=True)
    AutoModel.register(InternVideo2TextConfig, InternVideo2TextModel, exist_ok=True)
    AutoModel.register(InternVideo2Config, InternVideo2VideoTextModel, exist_ok=True)
    AutoModelForVideoClassification.register(InternVideo2VisionConfig, InternVideo2ForVideoClassification, exist_ok=True)
    for config_class in (InternVideo2VisionConfig, InternVideo2Config):
        AutoImageProcessor.register(config_class, image_processor_classes={"pil": InternVideo2ImageProcessor}, exist_ok=True)
    AutoProcessor.register(InternVideo2Config, InternVideo2Processor, exist_ok=True)


register_auto_classes()

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""OpenGVLab's video chat models (InternVideo2-Chat, VideoChat2, VideoChat) as native transformers models.

Importing this package registers every class with the transformers Auto classes, so converted checkpoints load
with `AutoConfig` / `AutoModel` / `AutoModelForImageTextToText` / `AutoProcessor` without `trust_remote_code`.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForImageTextToText

from .configuration_videochat import VideoChatConfig, VideoChatQFormerConfig, VideoChatVisionConfig
from .image_processing_videochat import VideoChatImageProcessor
from .modeling_videochat import VideoChatForConditionalGeneration, VideoChatModel, VideoChatPreTrainedModel
from .presets import PRESETS, get_preset_config, preset_names
from .processing_videochat import VideoChatProcessor, get_num_visual_tokens, register_processor
from .tokenization_videochat import VideoChatTokenizer, register_tokenizer
from .training import VideoChatDataCollator, build_training_example
from .video_processing_videochat import VideoChatVideoMetadata, format_time_message, load_video, sample_frame_indices


__version__ = "0.1.0"


def _register_auto_classes() -> None:
    for model_type, config_class in (
        ("videochat", VideoChatConfig),
        ("videochat_vision", VideoChatVisionConfig),
        ("videochat_qformer", VideoChatQFormerConfig),
    ):
        AutoConfig.register(model_type, config_class, exist_ok=True)
    AutoModel.register(VideoChatConfig, VideoChatModel, exist_ok=True)
    AutoModelForImageTextToText.register(VideoChatConfig, VideoChatForConditionalGeneration, exist_ok=True)
    try:
        from transformers import AutoModelForMultimodalLM

        AutoModelForMultimodalLM.register(VideoChatConfig, VideoChatForConditionalGeneration, exist_ok=True)
    except ImportError:
        pass


    AutoImageProcessor.register(VideoChatConfig, image_processor_classes={"pil": VideoChatImageProcessor}, exist_ok=True)
    register_tokenizer()
    register_processor()


_register_auto_classes()

__all__ = [
    "PRESETS",
    "VideoChatConfig",
    "VideoChatDataCollator",
    "VideoChatForConditionalGeneration",
    "VideoChatImageProcessor",
    "VideoChatModel",
    "VideoChatPreTrainedModel",
    "VideoChatProcessor",
    "VideoChatQFormerConfig",
    "VideoChatTokenizer",
    "VideoChatVideoMetadata",
    "VideoChatVisionConfig",
    "build_training_example",
    "format_time_message",
    "get_num_visual_tokens",
    "get_preset_config",
    "load_video",
    "preset_names",
    "sample_frame_indices",
]

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""OpenGVLab's video chat models (InternVideo2-Chat, VideoChat2, VideoChat) as native transformers models.

Importing this package registers every class with the transformers Auto classes (`_auto.py`), so converted
checkpoints load with `AutoConfig` / `AutoModel` / `AutoModelForImageTextToText` / `AutoProcessor` without
`trust_remote_code`. Layers, imports only downward: this core package, then `videochat.convert` (original
checkpoints -> converted folder), `videochat.parity` (checks against the original code) and `videochat.cli`.
"""

from . import _auto  # noqa: F401  (registers the Auto classes)
from .configuration_internvideo2 import InternVideo2Config, InternVideo2TextConfig, InternVideo2VisionConfig
from .configuration_videochat import (
    VideoChatConfig,
    VideoChatEvaGmhraVisionConfig,
    VideoChatInternVideo2VisionConfig,
    VideoChatUMTVisionConfig,
)
from .image_processing_internvideo2 import InternVideo2ImageProcessor
from .image_processing_pil_videochat import VideoChatImageProcessor
from .modeling_internvideo2 import (
    InternVideo2ForVideoClassification,
    InternVideo2Model,
    InternVideo2PreTrainedModel,
    InternVideo2TextModel,
    InternVideo2VideoTextModel,
)
from .modeling_videochat import VideoChatForConditionalGeneration, VideoChatModel, VideoChatPreTrainedModel
from .modeling_videochat_vision import (
    VideoChatEvaGmhraVisionModel,
    VideoChatInternVideo2VisionModel,
    VideoChatUMTVisionModel,
    VideoChatVisionPreTrainedModel,
)
from .pipeline_videochat import VideoChatImageTextToTextPipeline
from .processing_internvideo2 import InternVideo2Processor
from .processing_videochat import VideoChatProcessor, get_num_visual_tokens
from .tokenization_videochat import VideoChatTokenizer
from .training import VideoChatDataCollator, build_training_example
from .video_utils_videochat import VideoChatVideoMetadata, format_time_message, load_video, sample_frame_indices


__version__ = "0.2.0"

__all__ = [
    "InternVideo2Config",
    "InternVideo2ForVideoClassification",
    "InternVideo2ImageProcessor",
    "InternVideo2Model",
    "InternVideo2PreTrainedModel",
    "InternVideo2Processor",
    "InternVideo2TextConfig",
    "InternVideo2TextModel",
    "InternVideo2VideoTextModel",
    "InternVideo2VisionConfig",
    "VideoChatConfig",
    "VideoChatDataCollator",
    "VideoChatEvaGmhraVisionConfig",
    "VideoChatEvaGmhraVisionModel",
    "VideoChatForConditionalGeneration",
    "VideoChatImageProcessor",
    "VideoChatImageTextToTextPipeline",
    "VideoChatInternVideo2VisionConfig",
    "VideoChatInternVideo2VisionModel",
    "VideoChatModel",
    "VideoChatPreTrainedModel",
    "VideoChatProcessor",
    "VideoChatTokenizer",
    "VideoChatUMTVisionConfig",
    "VideoChatUMTVisionModel",
    "VideoChatVideoMetadata",
    "VideoChatVisionPreTrainedModel",
    "build_training_example",
    "format_time_message",
    "get_num_visual_tokens",
    "load_video",
    "sample_frame_indices",
]

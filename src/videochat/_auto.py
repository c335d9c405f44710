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
from transformers.conversion_mapping import register_checkpoint_conversion_mapping
from transformers.core_model_loading import WeightRenaming

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
    InternVideo2TextModel,
    InternVideo2VideoTextModel,
)
from .modeling_videochat import VideoChatForConditionalGeneration, VideoChatModel
from .modeling_videochat_vision import (
    VideoChatEvaGmhraVisionModel,
    VideoChatInternVideo2VisionModel,
    VideoChatUMTVisionModel,
)
from .processing_internvideo2 import InternVideo2Processor
from .processing_videochat import VideoChatProcessor
from .tokenization_videochat import VideoChatTokenizer


VISION_TOWERS = {
    VideoChatInternVideo2VisionConfig: VideoChatInternVideo2VisionModel,
    VideoChatUMTVisionConfig: VideoChatUMTVisionModel,
    VideoChatEvaGmhraVisionConfig: VideoChatEvaGmhraVisionModel,
}

# Weight names of folders converted by videochat 0.1.0 -> ours (the post layernorm moved into the vision towers, the
# Q-Former became BLIP-2's with the instruction embeddings beside it)
LEGACY_0_1_0_RENAMES = [
    WeightRenaming(r"^model\.vision_layernorm\.", "model.vision_model.post_layernorm."),
    WeightRenaming(r"^model\.qformer\.embeddings\.layernorm\.", "model.qformer.layernorm."),
    WeightRenaming(
        r"^model\.qformer\.embeddings\.(word|position)_embeddings\.", r"model.qformer_embeddings.\1_embeddings."
    ),
]


def register_auto_classes() -> None:
    """Register every class (idempotent)."""
    AutoConfig.register(VideoChatConfig.model_type, VideoChatConfig, exist_ok=True)
    for config_class, model_class in VISION_TOWERS.items():
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        AutoModel.register(config_class, model_class, exist_ok=True)
    AutoModel.register(VideoChatConfig, VideoChatModel, exist_ok=True)
    AutoModelForImageTextToText.register(VideoChatConfig, VideoChatForConditionalGeneration, exist_ok=True)
    AutoModelForMultimodalLM.register(VideoChatConfig, VideoChatForConditionalGeneration, exist_ok=True)
    AutoImageProcessor.register(
        VideoChatConfig, image_processor_classes={"pil": VideoChatImageProcessor}, exist_ok=True
    )
    AutoTokenizer.register(VideoChatConfig, tokenizer_class=VideoChatTokenizer, exist_ok=True)
    AutoProcessor.register(VideoChatConfig, VideoChatProcessor, exist_ok=True)
    register_checkpoint_conversion_mapping(VideoChatConfig.model_type, LEGACY_0_1_0_RENAMES, overwrite=True)
    register_internvideo2_classes()


def register_internvideo2_classes() -> None:
    """The InternVideo2 foundation models: stage-1 folders (vision config) load with `AutoModel` /
    `AutoModelForVideoClassification`, stage-2 folders with `AutoModel` / `AutoProcessor`."""
    for config_class in (InternVideo2VisionConfig, InternVideo2TextConfig, InternVideo2Config):
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    AutoModel.register(InternVideo2VisionConfig, InternVideo2Model, exist_ok=True)
    AutoModel.register(InternVideo2TextConfig, InternVideo2TextModel, exist_ok=True)
    AutoModel.register(InternVideo2Config, InternVideo2VideoTextModel, exist_ok=True)
    AutoModelForVideoClassification.register(
        InternVideo2VisionConfig, InternVideo2ForVideoClassification, exist_ok=True
    )
    for config_class in (InternVideo2VisionConfig, InternVideo2Config):
        AutoImageProcessor.register(
            config_class, image_processor_classes={"pil": InternVideo2ImageProcessor}, exist_ok=True
        )
    AutoProcessor.register(InternVideo2Config, InternVideo2Processor, exist_ok=True)


register_auto_classes()

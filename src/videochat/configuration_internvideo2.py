# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Configuration classes of the InternVideo2 foundation models: the stage-1 video classifiers (1B, distilled
S/14, B/14, L/14) and the stage-2 video-text model (vision tower + BERT text encoder with fusion layers)."""

from huggingface_hub.dataclasses import strict
from transformers import BertConfig
from transformers.configuration_utils import PreTrainedConfig

from .configuration_videochat import VideoChatInternVideo2VisionConfig


@strict
class InternVideo2VisionConfig(VideoChatInternVideo2VisionConfig):
    r"""
    Configuration of an InternVideo2 vision model ([`InternVideo2Model`], [`InternVideo2ForVideoClassification`],
    the vision side of [`InternVideo2VideoTextModel`]).

    The tower is the InternVideo2-Chat encoder, so this class extends the chat model's vision config (every field of
    [`VideoChatInternVideo2VisionConfig`] keeps its meaning) with the attention-pooling head (`clip_projector` in the
    original) that the chat model does not have. Defaults: the 1B stage-1 classifier (`internvideo2_1B_patch14_224`,
    8 frames, all 40 blocks, no image position table, no post layernorm).

    Args:
        num_hidden_layers (`int`, defaults to 40): blocks, all of them are used (the chat model uses 39 of 40).
        num_frames (`int`, defaults to 8): frame count of the learned video position table.
        hidden_act (`str`, defaults to `"gelu"`): block MLP activation: `"gelu"` (exact erf, the original's pure
            PyTorch branch and the stage-2 demo) or `"gelu_pytorch_tanh"` (the tanh GELU of the fused CUDA branch
            that fine-tuned and evaluated the stage-1 classifiers and ran the stage-2 evaluation config).
        use_image_position_embeddings (`bool`, defaults to `False`): separate learned table for 1-frame inputs
            (stage 2 has one, `img_pos_embed`; stage 1 has none).
        use_post_layernorm (`bool`, defaults to `False`): the foundation models have no final norm before pooling.
        pooling_num_attention_heads (`int`, defaults to 16): heads of the attention pooling (16 for every released
            model, also when the blocks have 6 or 12).
        pooler_output_size (`int`, defaults to 768): width of the pooled embedding (`clip_embed_dim`).
        pooler_layer_norm_eps (`float`, defaults to 1e-5): epsilon of the three pooling LayerNorms and of the
            classifier's `fc_norm`.
    """

    model_type = "internvideo2_vision"
    base_config_key = "vision_config"

    num_hidden_layers: int = 40
    num_frames: int = 8
    use_image_position_embeddings: bool = False
    use_post_layernorm: bool = False
    pooling_num_attention_heads: int = 16
    pooler_output_size: int = 768
    pooler_layer_norm_eps: float = 1e-5

    def check_fields(self):
        super().check_fields()
        if self.hidden_size % self.pooling_num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by pooling_num_attention_heads "
                f"({self.pooling_num_attention_heads})"
            )
        if self.num_frames % self.tubelet_size != 0:
            raise ValueError(
                f"num_frames ({self.num_frames}) must be a multiple of tubelet_size ({self.tubelet_size})"
            )


@strict
class InternVideo2TextConfig(BertConfig):
    r"""
    Configuration of the stage-2 text encoder ([`InternVideo2TextModel`]): BERT (bert-large-uncased dimensions by
    default) whose layers from `fusion_layer` on also cross-attend to the vision tokens. Text features use only the
    layers before `fusion_layer`; the video-text matching head uses only the layers from `fusion_layer` on. Every
    [`~transformers.BertConfig`] field keeps its meaning (the BERT layers are transformers' own).

    Args:
        fusion_layer (`int`, defaults to 19): index of the first layer with cross-attention.
        encoder_hidden_size (`int`, defaults to 1408): width of the vision tokens the cross-attention keys and values
            read (the vision tower's `hidden_size`).
    """

    model_type = "internvideo2_text"
    base_config_key = "text_config"

    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    tie_word_embeddings: bool = False
    fusion_layer: int = 19
    encoder_hidden_size: int = 1408

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if not 0 <= self.fusion_layer <= self.num_hidden_layers:
            raise ValueError(
                f"text_config.fusion_layer ({self.fusion_layer}) must be between 0 and num_hidden_layers "
                f"({self.num_hidden_layers})"
            )


@strict
class InternVideo2Config(PreTrainedConfig):
    r"""
    Configuration of [`InternVideo2VideoTextModel`] (the stage-2 model, `InternVideo2_Stage2_visual` in the original).

    Args:
        vision_config (`dict` or [`InternVideo2VisionConfig`], *optional*): the vision tower and pooling head
            (defaults: stage-2 1B, 4 frames, with the image position table).
        text_config (`dict` or [`InternVideo2TextConfig`], *optional*): the BERT text / fusion encoder.
        projection_dim (`int`, defaults to 512): width of the shared video-text embedding space (`embed_dim`).
        temperature_init_value (`float`, defaults to 0.07): initial value of the learned temperature (`temp`).
        temperature_min (`float`, defaults to 0.001): lower clamp of the temperature when it scales logits.
        temperature_max (`float`, defaults to 0.5): upper clamp (the original clamps `temp` to [0.001, 0.5]).
        initializer_range (`float`, defaults to 0.02): std of the random initialisation.
    """

    model_type = "internvideo2"
    sub_configs_defaults = {"vision_config": InternVideo2VisionConfig, "text_config": InternVideo2TextConfig}

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    projection_dim: int = 512
    temperature_init_value: float = 0.07
    temperature_min: float = 0.001
    temperature_max: float = 0.5
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        vision_given = self.vision_config is not None
        super().__post_init__(**kwargs)
        if not vision_given:  # the stage-2 tower: 4-frame video table plus the image table
            self.vision_config = InternVideo2VisionConfig(num_frames=4, use_image_position_embeddings=True)
        if self.text_config.encoder_hidden_size != self.vision_config.hidden_size:
            raise ValueError(
                f"Inconsistent sub-configs: text_config.encoder_hidden_size={self.text_config.encoder_hidden_size} "
                "but "
                f"vision_config.hidden_size={self.vision_config.hidden_size} (the fusion layers cross-attend to the "
                "vision tokens)"
            )
        if not 0 < self.temperature_min <= self.temperature_max:
            raise ValueError(
                f"need 0 < temperature_min <= temperature_max, got {self.temperature_min}, {self.temperature_max}"
            )


__all__ = ["InternVideo2Config", "InternVideo2TextConfig", "InternVideo2VisionConfig"]

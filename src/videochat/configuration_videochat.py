# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Configuration classes of the VideoChat family (InternVideo2-Chat, VideoChat2, VideoChat).

One vision config per encoder, each with its own `model_type`, so `VideoChatConfig.vision_config` is resolved through
`AutoConfig` and the tower is built with `AutoModel.from_config`. The Q-Former is BLIP-2's in-tree one
(`Blip2QFormerConfig`): `use_qformer_text_input=True` when it reads an instruction (VideoChat2, InternVideo2-Chat),
`False` for VideoChat v1's text-free Q-Former.
"""

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, Blip2QFormerConfig
from transformers.configuration_utils import PreTrainedConfig, SubConfigSpec


class _VideoEncoderConfigMixin:
    """Checks every video encoder config shares (plain `ValueError`s naming the field, raised at construction)."""

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.check_fields()

    def check_fields(self):
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"vision_config.hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.image_size % self.patch_size != 0:
            raise ValueError(
                f"vision_config.image_size ({self.image_size}) must be a multiple of patch_size ({self.patch_size})"
            )
        if self.tubelet_size < 1 or self.num_frames % self.tubelet_size != 0:
            raise ValueError(
                f"vision_config.num_frames ({self.num_frames}) must be a multiple of tubelet_size "
                f"({self.tubelet_size})"
            )

    @property
    def num_patches_per_frame(self) -> int:
        return (self.image_size // self.patch_size) ** 2


@strict
class VideoChatInternVideo2VisionConfig(_VideoEncoderConfigMixin, PreTrainedConfig):
    r"""
    Configuration of the InternVideo2 video encoder (InternVideo2-Chat; the stage-1/2 InternVideo2 models use the same
    tower): a spatio-temporal ViT whose blocks are InternVL vision layers (RMSNorm, q/k RMSNorm over the full width,
    layer scale) over learned position tables.

    Args:
        hidden_size (`int`, defaults to 1408): width of the encoder.
        intermediate_size (`int`, defaults to 6144): hidden width of the block MLPs (`int(1408 * 48 / 11)`).
        num_hidden_layers (`int`, defaults to 39): blocks that are BUILT; InternVideo2-Chat uses 39 of the 40 blocks.
        num_attention_heads (`int`, defaults to 16): attention heads per block.
        image_size (`int`, defaults to 224): side of the (square) input frames.
        patch_size (`int`, defaults to 14): side of the square patches.
        num_channels (`int`, defaults to 3): input channels.
        tubelet_size (`int`, defaults to 1): temporal extent of a patch.
        num_frames (`int`, defaults to 8): frame count the video position table was built for; other counts are
            interpolated along time exactly as the original does.
        hidden_act (`str`, defaults to `"gelu"`): MLP activation; `"gelu_pytorch_tanh"` for the fused original path.
        norm_type (`str`, defaults to `"rms_norm"`): block norms (read by the InternVL layers).
        layer_norm_eps (`float`, defaults to 1e-6): epsilon of the block norms.
        attention_bias (`bool`, defaults to `False`): bias on q, k and v.
        use_qk_norm (`bool`, defaults to `True`): RMSNorm on q and k over the full width.
        layer_scale_init_value (`float`, defaults to 1e-5): initial layer scale.
        attention_dropout (`float`, defaults to 0.0): attention dropout.
        projection_dropout (`float`, defaults to 0.0): dropout after the attention projection.
        hidden_dropout_prob (`float`, defaults to 0.0): dropout after the MLP.
        use_image_position_embeddings (`bool`, defaults to `True`): a separate position table for one-frame inputs
            (`img_pos_embed`); the stage-1 classifiers have none.
        use_post_layernorm (`bool`, defaults to `True`): a LayerNorm on the encoder output (`vision_layernorm` of
            InternVideo2-Chat, read by the Q-Former); the stage-1/2 models have none.
        post_layernorm_eps (`float`, defaults to 1e-12): epsilon of `post_layernorm`.
        chunk_size_feed_forward (`int`, defaults to 0): feed-forward chunking of the reused layers (0: none).
        initializer_range (`float`, defaults to 0.02): std of the random initialisation.
    """

    model_type = "videochat_internvideo2_vision"
    base_config_key = "vision_config"

    hidden_size: int = 1408
    intermediate_size: int = 6144
    num_hidden_layers: int = 39
    num_attention_heads: int = 16
    image_size: int = 224
    patch_size: int = 14
    num_channels: int = 3
    tubelet_size: int = 1
    num_frames: int = 8
    hidden_act: str = "gelu"
    norm_type: str = "rms_norm"
    layer_norm_eps: float = 1e-6
    attention_bias: bool = False
    use_qk_norm: bool = True
    layer_scale_init_value: float | int = 1e-5
    attention_dropout: float | int = 0.0
    projection_dropout: float | int = 0.0
    hidden_dropout_prob: float | int = 0.0
    use_image_position_embeddings: bool = True
    use_post_layernorm: bool = True
    post_layernorm_eps: float = 1e-12
    chunk_size_feed_forward: int = 0
    initializer_range: float = 0.02


@strict
class VideoChatUMTVisionConfig(_VideoEncoderConfigMixin, PreTrainedConfig):
    r"""
    Configuration of UMT-L/16, the video encoder of VideoChat2: a plain pre-norm ViT (VideoMAE layers: LayerNorm, q/v
    bias without k bias, no layer scale) over all frames at once, with a fixed sinusoid position table.

    Args:
        hidden_size (`int`, defaults to 1024): width of the encoder.
        intermediate_size (`int`, defaults to 4096): hidden width of the block MLPs.
        num_hidden_layers (`int`, defaults to 23): blocks that are BUILT; VideoChat2 uses 23 of UMT-L's 24 blocks.
        num_attention_heads (`int`, defaults to 16): attention heads per block.
        image_size (`int`, defaults to 224): side of the (square) input frames.
        patch_size (`int`, defaults to 16): side of the square patches.
        num_channels (`int`, defaults to 3): input channels.
        tubelet_size (`int`, defaults to 1): temporal extent of a patch.
        num_frames (`int`, defaults to 4): frame count the sinusoid table is built for (always 4 in the original);
            it is resampled along time for the actual frame count.
        hidden_act (`str`, defaults to `"gelu"`): MLP activation.
        layer_norm_eps (`float`, defaults to 1e-6): epsilon of the block norms.
        qv_bias (`bool`, defaults to `True`): bias on q and v (not k).
        attention_probs_dropout_prob (`float`, defaults to 0.0): attention dropout.
        hidden_dropout_prob (`float`, defaults to 0.0): dropout after the attention projection and the MLP.
        post_layernorm_eps (`float`, defaults to 1e-12): epsilon of `post_layernorm` (`vision_layernorm`).
        chunk_size_feed_forward (`int`, defaults to 0): feed-forward chunking of the reused layers (0: none).
        initializer_range (`float`, defaults to 0.02): std of the random initialisation.
    """

    model_type = "videochat_umt_vision"
    base_config_key = "vision_config"

    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_hidden_layers: int = 23
    num_attention_heads: int = 16
    image_size: int = 224
    patch_size: int = 16
    num_channels: int = 3
    tubelet_size: int = 1
    num_frames: int = 4
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-6
    qv_bias: bool = True
    attention_probs_dropout_prob: float | int = 0.0
    hidden_dropout_prob: float | int = 0.0
    post_layernorm_eps: float = 1e-12
    chunk_size_feed_forward: int = 0
    initializer_range: float = 0.02


@strict
class VideoChatEvaGmhraVisionConfig(_VideoEncoderConfigMixin, PreTrainedConfig):
    r"""
    Configuration of VideoChat (v1)'s video encoder: EVA-CLIP ViT-g/14 applied to every frame (VideoMAE layers) plus
    Global MHRA temporal blocks (UniFormerV2 style) that update one learned query from the tokens of all frames.

    Args:
        hidden_size (`int`, defaults to 1408): width of the encoder.
        intermediate_size (`int`, defaults to 6144): hidden width of the ViT MLPs.
        num_hidden_layers (`int`, defaults to 39): ViT blocks that are BUILT (39 of EVA ViT-g's 40).
        num_attention_heads (`int`, defaults to 16): attention heads (ViT and GMHRA).
        image_size (`int`, defaults to 224): side of the (square) input frames.
        patch_size (`int`, defaults to 14): side of the square patches.
        num_channels (`int`, defaults to 3): input channels.
        tubelet_size (`int`, defaults to 1): frames are embedded independently; must be 1.
        num_frames (`int`, defaults to 8): frames per clip of the released model (informational: any count works).
        hidden_act (`str`, defaults to `"gelu"`): MLP activation (ViT and GMHRA).
        layer_norm_eps (`float`, defaults to 1e-6): epsilon of the ViT block norms.
        qv_bias (`bool`, defaults to `True`): bias on q and v (not k).
        attention_probs_dropout_prob (`float`, defaults to 0.0): attention dropout.
        hidden_dropout_prob (`float`, defaults to 0.0): dropout after the attention projection and the MLPs.
        num_gmhra_layers (`int`, defaults to 8): Global MHRA blocks, run after the last `num_gmhra_layers` ViT blocks.
        gmhra_mlp_ratio (`float`, defaults to 4.3637): MLP ratio of the GMHRA blocks (`round(hidden * ratio)` wide).
        gmhra_layer_norm_eps (`float`, defaults to 1e-5): epsilon of the GMHRA LayerNorms.
        post_layernorm_eps (`float`, defaults to 1e-5): epsilon of `post_layernorm` (`ln_vision`).
        post_layernorm_fp32 (`bool`, defaults to `True`): compute `post_layernorm` in float32 (EVA's `LayerNorm`
            subclass casts to float32 and back).
        chunk_size_feed_forward (`int`, defaults to 0): feed-forward chunking of the reused layers (0: none).
        initializer_range (`float`, defaults to 0.02): std of the random initialisation.
    """

    model_type = "videochat_eva_gmhra_vision"
    base_config_key = "vision_config"

    hidden_size: int = 1408
    intermediate_size: int = 6144
    num_hidden_layers: int = 39
    num_attention_heads: int = 16
    image_size: int = 224
    patch_size: int = 14
    num_channels: int = 3
    tubelet_size: int = 1
    num_frames: int = 8
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-6
    qv_bias: bool = True
    attention_probs_dropout_prob: float | int = 0.0
    hidden_dropout_prob: float | int = 0.0
    num_gmhra_layers: int = 8
    gmhra_mlp_ratio: float | int = 4.3637
    gmhra_layer_norm_eps: float = 1e-5
    post_layernorm_eps: float = 1e-5
    post_layernorm_fp32: bool = True
    chunk_size_feed_forward: int = 0
    initializer_range: float = 0.02

    def check_fields(self):
        super().check_fields()
        if self.tubelet_size != 1:
            raise ValueError(
                f"the EVA encoder embeds frames independently: tubelet_size must be 1, got {self.tubelet_size}"
            )
        if not 0 <= self.num_gmhra_layers <= self.num_hidden_layers:
            raise ValueError(
                f"num_gmhra_layers ({self.num_gmhra_layers}) must be between 0 and num_hidden_layers "
                f"({self.num_hidden_layers})"
            )


# 0.1.0 wrote one union vision config (`videochat_vision` + `encoder_type`) and its own Q-Former config; folders it
# converted are read through these maps (see `VideoChatConfig._upgrade_0_1_0_sub_configs`).
_LEGACY_VISION_TYPES = {
    "internvideo2": VideoChatInternVideo2VisionConfig,
    "umt": VideoChatUMTVisionConfig,
    "eva_gmhra": VideoChatEvaGmhraVisionConfig,
}
_LEGACY_VISION_RENAMES = {
    "vision_layernorm_eps": "post_layernorm_eps",
    "vision_layernorm_fp32": "post_layernorm_fp32",
    "qkv_bias": "qv_bias",
}


def _upgrade_legacy_vision_config(fields: dict) -> dict:
    config_class = _LEGACY_VISION_TYPES[fields.get("encoder_type", "internvideo2")]
    renamed = {_LEGACY_VISION_RENAMES.get(key, key): value for key, value in fields.items()}
    known = set(config_class.__dataclass_fields__) - {"model_type"}
    return {"model_type": config_class.model_type, **{key: value for key, value in renamed.items() if key in known}}


def _upgrade_legacy_qformer_config(fields: dict) -> dict:
    fields = {key: value for key, value in fields.items() if key not in ("model_type", "chunk_size_feed_forward")}
    return {"model_type": "blip_2_qformer", "use_qformer_text_input": fields.pop("use_text_input", True), **fields}


@strict
class VideoChatConfig(PreTrainedConfig):
    r"""
    Configuration of a [`VideoChatForConditionalGeneration`]: a video encoder, a Q-Former with `num_query_tokens +
    num_extra_query_tokens` learned queries, a linear projection and a stock causal LM.

    Args:
        vision_config (`dict` or `PreTrainedConfig`, *optional*): the video encoder, one of
            [`VideoChatInternVideo2VisionConfig`], [`VideoChatUMTVisionConfig`], [`VideoChatEvaGmhraVisionConfig`]
            (chosen by `model_type`; InternVideo2 by default).
        qformer_config (`dict` or `Blip2QFormerConfig`, *optional*): the Q-Former; `use_qformer_text_input=False` for
            VideoChat v1, whose Q-Former reads no instruction.
        text_config (`dict` or `PreTrainedConfig`, *optional*): the LLM (any in-tree causal LM; Mistral by default).
        num_query_tokens (`int`, defaults to 32): BLIP-2 query tokens (`query_tokens`).
        num_extra_query_tokens (`int`, defaults to 64): extra query tokens appended after them (`extra_query_tokens`).
        video_token_id (`int`, defaults to 0): placeholder id of the visual positions of a video; their embeddings
            are replaced by the projected Q-Former outputs. Converted models use the id of the `<video>` special token
            of their tokenizer, which may lie past the LLM vocabulary (such ids are never embedded).
        image_token_id (`int`, defaults to 0): placeholder id of the visual positions of an image.
        projector_bias (`bool`, defaults to `True`): bias of the Q-Former -> LLM projection.
        tie_word_embeddings (`bool`, defaults to `False`): all original LLMs have an untied `lm_head`.
        preset (`str`, *optional*): name of the released model this configuration reproduces (provenance only).
        initializer_range (`float`, defaults to 0.02): std of the random initialisation.
    """

    model_type = "videochat"
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(
            config_class=AutoConfig, model_type=VideoChatInternVideo2VisionConfig.model_type
        ),
        "qformer_config": SubConfigSpec(config_class=Blip2QFormerConfig, init_kwargs={"use_qformer_text_input": True}),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="mistral"),
    }

    vision_config: dict | PreTrainedConfig | None = None
    qformer_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    num_query_tokens: int = 32
    num_extra_query_tokens: int = 64
    video_token_id: int = 0
    image_token_id: int = 0
    projector_bias: bool = True
    tie_word_embeddings: bool = False
    preset: str | None = None
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        self._upgrade_0_1_0_sub_configs()
        encoder_width_given = isinstance(self.qformer_config, dict) and "encoder_hidden_size" in self.qformer_config
        super().__post_init__(**kwargs)
        if encoder_width_given and self.qformer_config.encoder_hidden_size != self.vision_config.hidden_size:
            raise ValueError(
                "Inconsistent sub-configs: "
                f"qformer_config.encoder_hidden_size={self.qformer_config.encoder_hidden_size} "
                f"but vision_config.hidden_size={self.vision_config.hidden_size} (the Q-Former cross-attends to the "
                "vision tokens, so both must be equal)"
            )
        self.qformer_config.encoder_hidden_size = self.vision_config.hidden_size
        self.check_fields()

    def _upgrade_0_1_0_sub_configs(self):
        if isinstance(self.vision_config, dict) and self.vision_config.get("model_type") == "videochat_vision":
            self.vision_config = _upgrade_legacy_vision_config(self.vision_config)
        if isinstance(self.qformer_config, dict) and self.qformer_config.get("model_type") == "videochat_qformer":
            self.qformer_config = _upgrade_legacy_qformer_config(self.qformer_config)

    def check_fields(self):
        """Cross-field checks (plain `ValueError`s naming the field, raised at construction)."""
        if self.num_query_tokens <= 0 or self.num_extra_query_tokens < 0:
            raise ValueError(
                f"num_query_tokens must be > 0 and num_extra_query_tokens >= 0, got {self.num_query_tokens} and "
                f"{self.num_extra_query_tokens}"
            )
        if self.vision_config.model_type not in _VISION_CONFIG_TYPES:
            raise ValueError(
                f"vision_config.model_type must be one of {sorted(_VISION_CONFIG_TYPES)}, got "
                f"{self.vision_config.model_type!r}"
            )
        for name in ("video_token_id", "image_token_id"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be a non-negative token id, got {getattr(self, name)}")

    @property
    def num_visual_queries(self) -> int:
        """Query tokens per clip, i.e. LLM positions one clip fills (96 in every original model)."""
        return self.num_query_tokens + self.num_extra_query_tokens

    @property
    def qformer_takes_text(self) -> bool:
        """Whether the Q-Former reads an instruction (VideoChat v1's text-free Q-Former does not)."""
        return self.qformer_config.use_qformer_text_input


_VISION_CONFIG_TYPES = {
    config_class.model_type: config_class
    for config_class in (VideoChatInternVideo2VisionConfig, VideoChatUMTVisionConfig, VideoChatEvaGmhraVisionConfig)
}


__all__ = [
    "VideoChatConfig",
    "VideoChatEvaGmhraVisionConfig",
    "VideoChatInternVideo2VisionConfig",
    "VideoChatUMTVisionConfig",
]

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Configuration classes of the VideoChat family (InternVideo2-Chat, VideoChat2, VideoChat)."""

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig
from transformers.configuration_utils import PreTrainedConfig, SubConfigSpec


VISION_ENCODER_TYPES = ("internvideo2", "umt", "eva_gmhra")


@strict
class VideoChatVisionConfig(PreTrainedConfig):
    r"""
    Configuration of the video encoder of a VideoChat model. One class covers the three original encoders, selected
    by `encoder_type`; field names follow the in-tree vision configs whose layers we reuse.

    Args:
        encoder_type (`str`, defaults to `"internvideo2"`):
            `"internvideo2"` (InternVideo2-1B: RMSNorm, q/k RMSNorm over the full width, layer scale, learned
            position tables), `"umt"` (UMT-L/16 of VideoChat2: LayerNorm, q/v bias, sinusoid position table) or
            `"eva_gmhra"` (EVA-CLIP ViT-g/14 per frame + Global MHRA temporal blocks of VideoChat v1).
        hidden_size (`int`, defaults to 1408): width of the encoder.
        intermediate_size (`int`, defaults to 6144): hidden width of the block MLPs.
        num_hidden_layers (`int`, defaults to 39): number of blocks that are BUILT. The originals build only the
            blocks up to the returned one (e.g. 39 of InternVideo2-1B's 40, 23 of UMT-L's 24).
        num_attention_heads (`int`, defaults to 16): attention heads per block.
        image_size (`int`, defaults to 224): side of the (square) input frames.
        patch_size (`int`, defaults to 14): side of the square patches.
        num_channels (`int`, defaults to 3): input channels.
        tubelet_size (`int`, defaults to 1): temporal extent of a patch.
        num_frames (`int`, defaults to 8): frame count the video position table was built for. Other counts are
            interpolated on the fly exactly as the original does.
        hidden_act (`str`, defaults to `"gelu"`): MLP activation (exact erf GELU in every original).
        norm_type (`str`, defaults to `"rms_norm"`): `"rms_norm"` or `"layer_norm"` for the block norms.
        layer_norm_eps (`float`, defaults to 1e-6): epsilon of the block norms.
        attention_bias (`bool`, defaults to `False`): bias on q, k and v (InternVideo2).
        qkv_bias (`bool`, defaults to `True`): q and v bias without k bias (UMT, EVA).
        use_qk_norm (`bool`, defaults to `True`): RMSNorm on q and k over the full width (InternVideo2).
        layer_scale_init_value (`float`, defaults to 1e-5): initial layer scale; 0 disables layer scale.
        attention_dropout (`float`, defaults to 0.0): attention dropout.
        projection_dropout (`float`, defaults to 0.0): dropout after the attention projection.
        hidden_dropout_prob (`float`, defaults to 0.0): dropout after the MLP.
        vision_layernorm_eps (`float`, defaults to 1e-12): epsilon of the LayerNorm applied to the encoder output
            before the Q-Former (`vision_layernorm` / `ln_vision` in the originals).
        vision_layernorm_fp32 (`bool`, defaults to `False`): compute that LayerNorm in float32 (VideoChat v1).
        num_gmhra_layers (`int`, defaults to 0): Global MHRA temporal blocks (VideoChat v1: 8).
        gmhra_mlp_ratio (`float`, defaults to 4.0): MLP ratio of the GMHRA blocks.
        gmhra_layer_norm_eps (`float`, defaults to 1e-5): epsilon of the GMHRA LayerNorms.
        use_image_position_embeddings (`bool`, defaults to `True`): InternVideo2 only: a separate learned position
            table for single images (`img_pos_embed`). Without it a 1-frame input uses the video table resampled to one
            frame (the stage-1 classifiers have no image table).
        initializer_range (`float`, defaults to 0.02): std of the random initialisation.
    """

    model_type = "videochat_vision"
    base_config_key = "vision_config"

    encoder_type: str = "internvideo2"
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
    qkv_bias: bool = True
    use_qk_norm: bool = True
    layer_scale_init_value: float | int = 1e-5
    attention_dropout: float | int = 0.0
    projection_dropout: float | int = 0.0
    hidden_dropout_prob: float | int = 0.0
    attention_probs_dropout_prob: float | int = 0.0
    chunk_size_feed_forward: int = 0
    vision_layernorm_eps: float = 1e-12
    vision_layernorm_fp32: bool = False
    num_gmhra_layers: int = 0
    gmhra_mlp_ratio: float | int = 4.0
    gmhra_layer_norm_eps: float = 1e-5
    use_image_position_embeddings: bool = True
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self._check_fields()

    def _check_fields(self):
        """Cross-field checks of the vision config (plain `ValueError`s naming the field)."""
        if self.encoder_type not in VISION_ENCODER_TYPES:
            raise ValueError(f"vision_config.encoder_type must be one of {VISION_ENCODER_TYPES}, got {self.encoder_type!r}")
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"vision_config.hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.image_size % self.patch_size != 0:
            raise ValueError(f"vision_config.image_size ({self.image_size}) must be a multiple of patch_size ({self.patch_size})")
        if self.norm_type not in ("rms_norm", "layer_norm"):
            raise ValueError(f"vision_config.norm_type must be 'rms_norm' or 'layer_norm', got {self.norm_type!r}")

    @property
    def num_patches_per_frame(self) -> int:
        return (self.image_size // self.patch_size) ** 2


@strict
class VideoChatQFormerConfig(PreTrainedConfig):
    r"""
    Configuration of the BLIP-2 style Q-Former (a BERT-base encoder whose learned queries cross-attend to the video
    tokens every `cross_attention_frequency` layers, with a separate feed-forward for the query rows). Field names
    are those of `InstructBlipQFormerConfig`, whose modules are reused.

    Args:
        vocab_size (`int`, defaults to 30523): word embedding rows (bert-base-uncased + `[DEC]`).
        hidden_size (`int`, defaults to 768): width of the Q-Former.
        num_hidden_layers (`int`, defaults to 12): layers.
        num_attention_heads (`int`, defaults to 12): attention heads.
        intermediate_size (`int`, defaults to 3072): FFN width.
        hidden_act (`str`, defaults to `"gelu"`): FFN activation.
        hidden_dropout_prob (`float`, defaults to 0.1): dropout on hidden states (training only).
        attention_probs_dropout_prob (`float`, defaults to 0.1): attention dropout (training only).
        max_position_embeddings (`int`, defaults to 512): rows of the text position table.
        layer_norm_eps (`float`, defaults to 1e-12): LayerNorm epsilon.
        pad_token_id (`int`, defaults to 0): id of `[PAD]`.
        cross_attention_frequency (`int`, defaults to 2): cross-attention in layers 0, f, 2f, ...
        encoder_hidden_size (`int`, defaults to 1408): width of the vision tokens (set from `vision_config`).
        use_text_input (`bool`, defaults to `True`): whether the Q-Former takes instruction text (VideoChat2,
            InternVideo2-Chat). VideoChat v1's Q-Former has no word embeddings and no text FFNs.
        initializer_range (`float`, defaults to 0.02): std of the random initialisation.
    """

    model_type = "videochat_qformer"
    base_config_key = "qformer_config"

    vocab_size: int = 30523
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.1
    attention_probs_dropout_prob: float | int = 0.1
    max_position_embeddings: int = 512
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    cross_attention_frequency: int = 2
    encoder_hidden_size: int = 1408
    use_text_input: bool = True
    chunk_size_feed_forward: int = 0

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self._check_fields()

    def _check_fields(self):
        """Cross-field checks of the Q-Former config."""
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"qformer_config.hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.cross_attention_frequency < 1:
            raise ValueError(f"qformer_config.cross_attention_frequency must be >= 1, got {self.cross_attention_frequency}")


@strict
class VideoChatConfig(PreTrainedConfig):
    r"""
    Configuration of a [`VideoChatForConditionalGeneration`]: a video encoder, a Q-Former with `num_query_tokens +
    num_extra_query_tokens` learned queries, a linear projection and a stock causal LM.

    Args:
        vision_config (`dict` or [`VideoChatVisionConfig`], *optional*): the video encoder.
        qformer_config (`dict` or [`VideoChatQFormerConfig`], *optional*): the Q-Former.
        text_config (`dict` or `PreTrainedConfig`, *optional*): the LLM (any in-tree causal LM; Mistral by default).
        num_query_tokens (`int`, defaults to 32): BLIP-2 query tokens (`query_tokens`).
        num_extra_query_tokens (`int`, defaults to 64): extra query tokens appended after them (`extra_query_tokens`).
        video_token_id (`int`, defaults to 0): placeholder id of the visual positions of a video. The originals write
            id 0 (`<unk>`) there; the embedding at these positions is replaced by the projected Q-Former outputs.
        image_token_id (`int`, defaults to 0): placeholder id of the visual positions of an image.
        projector_bias (`bool`, defaults to `True`): bias of the Q-Former -> LLM projection.
        tie_word_embeddings (`bool`, defaults to `False`): all original LLMs have an untied `lm_head`.
        preset (`str`, *optional*): name of the original model this configuration reproduces (informational; the
            processor uses it to pick the chat template).
        initializer_range (`float`, defaults to 0.02): std of the random initialisation.
    """

    model_type = "videochat"
    sub_configs_defaults = {
        "vision_config": VideoChatVisionConfig,
        "qformer_config": VideoChatQFormerConfig,
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
        encoder_width_given = isinstance(self.qformer_config, dict) and "encoder_hidden_size" in self.qformer_config
        super().__post_init__(**kwargs)
        if encoder_width_given and self.qformer_config.encoder_hidden_size != self.vision_config.hidden_size:
            raise ValueError(
                f"Inconsistent sub-configs: qformer_config.encoder_hidden_size={self.qformer_config.encoder_hidden_size} "
                f"but vision_config.hidden_size={self.vision_config.hidden_size} (the Q-Former cross-attends to the "
                "vision tokens, so both must be equal)"
            )
        self.qformer_config.encoder_hidden_size = self.vision_config.hidden_size
        self._check_fields()

    def _check_fields(self):
        """Cross-field checks between the sub-configs."""
        if self.num_query_tokens <= 0 or self.num_extra_query_tokens < 0:
            raise ValueError(
                f"num_query_tokens must be > 0 and num_extra_query_tokens >= 0, got {self.num_query_tokens} and "
                f"{self.num_extra_query_tokens}"
            )
        if self.qformer_config.encoder_hidden_size != self.vision_config.hidden_size:
            raise ValueError(
                f"Inconsistent sub-configs: qformer_config.encoder_hidden_size={self.qformer_config.encoder_hidden_size} "
                f"but vision_config.hidden_size={self.vision_config.hidden_size}"
            )
        vocab_size = getattr(self.text_config, "vocab_size", None)
        for name in ("video_token_id", "image_token_id"):
            token_id = getattr(self, name)
            if vocab_size is not None and not 0 <= token_id < vocab_size:
                raise ValueError(f"{name}={token_id} is outside the LLM vocabulary (text_config.vocab_size={vocab_size})")

    @property
    def num_visual_queries(self) -> int:
        """Query tokens per clip, i.e. LLM positions one clip fills (96 in every original model)."""
        return self.num_query_tokens + self.num_extra_query_tokens


__all__ = ["VideoChatConfig", "VideoChatQFormerConfig", "VideoChatVisionConfig"]

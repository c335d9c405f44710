# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""InternVideo2 foundation models: feature extraction and video classification (stage 1) and the video-text model
(stage 2: contrastive video/text embeddings plus video-text matching through BERT fusion layers).

The vision tower is the InternVideo2-Chat encoder (InternVL vision layers); the text tower is made of transformers'
BERT embeddings and layers. Ours are only the attention pooling head, the classifier head, the fusion layers'
wider cross-attention inputs and the glue.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_outputs import (
    BaseModelOutput,
    BaseModelOutputWithPooling,
    ImageClassifierOutput,
    ModelOutput,
)
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.bert.modeling_bert import BertAttention, BertEmbeddings, BertLayer
from transformers.models.internvl.modeling_internvl import eager_attention_forward
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs
from transformers.utils.generic import can_return_tuple

from .configuration_internvideo2 import InternVideo2Config, InternVideo2TextConfig, InternVideo2VisionConfig
from .modeling_videochat_vision import VideoChatInternVideo2VisionModel
from .strict_loading_videochat import StrictLoadingMixin


def build_vision_tower(config: InternVideo2VisionConfig) -> PreTrainedModel:
    """The InternVideo2 tower shared with the chat models (embeddings + blocks, no final norm): the one place this
    file touches the chat encoder's class. Takes `(batch, channels, frames, height, width)`."""
    return VideoChatInternVideo2VisionModel(config)


# ---------------------------------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class InternVideo2VideoTextOutput(ModelOutput):
    r"""
    Output of [`InternVideo2VideoTextModel`].

    logits_per_video (`torch.FloatTensor` of shape `(num_videos, num_texts)`):
        Scaled cosine similarities: `cos / temperature` (learned, clamped), or `logit_scale * cos` when a fixed
        `logit_scale` is passed (the original demo uses 100).
    logits_per_text (`torch.FloatTensor` of shape `(num_texts, num_videos)`): the transpose of `logits_per_video`.
    video_embeds (`torch.FloatTensor` of shape `(num_videos, projection_dim)`): L2-normalised video embeddings.
    text_embeds (`torch.FloatTensor` of shape `(num_texts, projection_dim)`): L2-normalised text embeddings.
    matching_logits (`torch.FloatTensor` of shape `(num_videos, num_texts, 2)`, *optional*):
        Video-text matching head logits for every pair (`output_matching_logits=True`); `[..., 1]` is the match score.
    video_model_output (`BaseModelOutputWithPooling`): output of the vision model (tokens and pooled embedding).
    text_model_output (`BaseModelOutput`): output of the text layers.
    """

    logits_per_video: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    video_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    matching_logits: torch.FloatTensor | None = None
    video_model_output: BaseModelOutputWithPooling | None = None
    text_model_output: BaseModelOutput | None = None

    def to_tuple(self) -> tuple:
        return tuple(
            value.to_tuple() if isinstance(value, ModelOutput) else value
            for value in (self[key] for key in self.keys())
        )


# ---------------------------------------------------------------------------------------------------------------------
# Vision: attention pooling head
# ---------------------------------------------------------------------------------------------------------------------


class InternVideo2AttentionPooling(nn.Module):
    """
    Pools all tokens (class token included) into one vector (`clip_projector` in the original): a single query, the
    MEAN of the tokens, attends to the tokens. Query, key and value inputs have three separate LayerNorms; the
    projections have biases (the original's separate `q_bias/k_bias/v_bias`); `pooling_num_attention_heads` heads;
    the output projection maps to `pooler_output_size`.
    """

    def __init__(self, config: InternVideo2VisionConfig):
        super().__init__()
        self.config = config
        dim, eps = config.hidden_size, config.pooler_layer_norm_eps
        self.num_heads = config.pooling_num_attention_heads
        self.head_dim = dim // self.num_heads
        self.scale = self.head_dim**-0.5
        self.is_causal = False
        self.query_layernorm = nn.LayerNorm(dim, eps=eps)
        self.key_layernorm = nn.LayerNorm(dim, eps=eps)
        self.value_layernorm = nn.LayerNorm(dim, eps=eps)
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, config.pooler_output_size)

    def _split_heads(self, states: torch.Tensor) -> torch.Tensor:
        return states.reshape(states.shape[0], states.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`(batch, tokens, hidden_size)` -> `(batch, pooler_output_size)`."""
        query = self._split_heads(self.q_proj(self.query_layernorm(hidden_states.mean(1, keepdim=True))))
        key = self._split_heads(self.k_proj(self.key_layernorm(hidden_states)))
        value = self._split_heads(self.v_proj(self.value_layernorm(hidden_states)))
        attention: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        pooled, _ = attention(self, query, key, value, None, scaling=self.scale, dropout=0.0)
        return self.out_proj(pooled.reshape(hidden_states.shape[0], -1))


# ---------------------------------------------------------------------------------------------------------------------
# Text: BERT layers, fusion layers with vision-width cross-attention
# ---------------------------------------------------------------------------------------------------------------------


class InternVideo2FusionLayer(BertLayer):
    """A BERT layer with cross-attention to the vision tokens after its self-attention. Subclassed because stock BERT
    cross-attention reads `hidden_size`-wide keys/values; here they are `encoder_hidden_size` (vision) wide."""

    def __init__(self, config: InternVideo2TextConfig, layer_idx: int | None = None):
        super().__init__(config, layer_idx=layer_idx)
        self.crossattention = BertAttention(config, layer_idx=layer_idx, is_cross_attention=True)
        width = self.crossattention.self.all_head_size
        self.crossattention.self.key = nn.Linear(config.encoder_hidden_size, width)
        self.crossattention.self.value = nn.Linear(config.encoder_hidden_size, width)
        # BertLayer.forward runs the cross-attention only for decoders; the self-attention above was built
        # bidirectional (config.is_decoder is False) and nothing else reads this flag
        self.is_decoder = True


class InternVideo2TextEncoder(nn.Module):
    """`num_hidden_layers` BERT layers; those from `fusion_layer` on are [`InternVideo2FusionLayer`]s."""

    def __init__(self, config: InternVideo2TextConfig):
        super().__init__()
        self.config = config
        self.layer = nn.ModuleList(
            [
                BertLayer(config, layer_idx=index)
                if index < config.fusion_layer
                else InternVideo2FusionLayer(config, index)
                for index in range(config.num_hidden_layers)
            ]
        )

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        layers: range,
        encoder_hidden_states: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> BaseModelOutput:
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        for index in layers:
            hidden_states = self.layer[index](hidden_states, attention_mask, encoder_hidden_states)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
        return BaseModelOutput(last_hidden_state=hidden_states, hidden_states=all_hidden_states)


# ---------------------------------------------------------------------------------------------------------------------
# Pretrained base
# ---------------------------------------------------------------------------------------------------------------------


class InternVideo2PreTrainedModel(StrictLoadingMixin, PreTrainedModel):
    """Shared class attributes and the initialisation of our custom parameters (the vision tower initialises its
    own)."""

    config: InternVideo2VisionConfig
    base_model_prefix = "internvideo2"
    main_input_name = "pixel_values"
    input_modalities = ("video",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["InternVLVisionLayer", "BertLayer", "InternVideo2FusionLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, BertEmbeddings):
            init.copy_(module.position_ids, torch.arange(module.position_ids.shape[-1]).expand((1, -1)))
            init.zeros_(module.token_type_ids)
        elif isinstance(module, InternVideo2VideoTextModel):
            init.constant_(module.temperature, self.config.temperature_init_value)


def _check_video_input(
    pixel_values: torch.Tensor, config: InternVideo2VisionConfig, interpolate_pos_encoding: bool
) -> None:
    """`(batch, frames, channels, height, width)` with a frame count the position tables serve, else a ValueError."""
    if not isinstance(pixel_values, torch.Tensor) or pixel_values.ndim != 5:
        shape = tuple(pixel_values.shape) if isinstance(pixel_values, torch.Tensor) else type(pixel_values).__name__
        raise ValueError(f"InternVideo2 expects pixel values (batch, frames, channels, height, width), got {shape}")
    frames, channels, height, width = pixel_values.shape[1:]
    if channels != config.num_channels:
        raise ValueError(
            f"expected {config.num_channels} channels in dimension 2 of (batch, frames, channels, height, width), got "
            f"shape {tuple(pixel_values.shape)}"
        )
    if height != config.image_size or width != config.image_size:
        raise ValueError(
            f"expected {config.image_size}x{config.image_size} frames, got {height}x{width}; preprocess them with "
            "InternVideo2ImageProcessor"
        )
    served = frames == config.num_frames or (frames == 1 and config.use_image_position_embeddings)
    if not served and not interpolate_pos_encoding:
        image_note = " or 1 (image)" if config.use_image_position_embeddings else ""
        raise ValueError(
            f"this model's position table is for {config.num_frames} frames{image_note}, got {frames}; pass "
            "interpolate_pos_encoding=True to resample it linearly along time (what the original does when it loads "
            "a checkpoint for another frame count)"
        )


# ---------------------------------------------------------------------------------------------------------------------
# Stage 1: feature extraction and classification
# ---------------------------------------------------------------------------------------------------------------------


class InternVideo2Model(InternVideo2PreTrainedModel):
    """
    InternVideo2 video encoder: the tower (all blocks, no final norm) and the attention pooling head. Returns every
    token (`last_hidden_state`, class token first, then frame-major patches) and the pooled embedding
    (`pooler_output`, `pooler_output_size` wide).
    """

    def __init__(self, config: InternVideo2VisionConfig):
        super().__init__(config)
        self.encoder = build_vision_tower(config)
        self.pooler = InternVideo2AttentionPooling(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.encoder.get_input_embeddings()

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        interpolate_pos_encoding: bool = False,
        output_hidden_states: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPooling:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_frames, num_channels, height, width)`):
            Normalised clips (see [`InternVideo2ImageProcessor`]). One frame uses the image position table when the
            model has one.
        interpolate_pos_encoding (`bool`, defaults to `False`):
            Resample the video position table linearly along time when the frame count differs from `num_frames`.
        output_hidden_states (`bool`, *optional*):
            Also return the embeddings and the output of every block.
        kwargs: `output_attentions=True` returns every block's attention weights (eager attention).
        """
        _check_video_input(pixel_values, self.config, interpolate_pos_encoding)
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        tower_output = self.encoder(
            pixel_values.transpose(1, 2), output_hidden_states=output_hidden_states, return_dict=True, **kwargs
        )
        tokens = tower_output.last_hidden_state
        return BaseModelOutputWithPooling(
            last_hidden_state=tokens,
            pooler_output=self.pooler(tokens),
            hidden_states=tower_output.hidden_states,
            attentions=tower_output.attentions,
        )


class InternVideo2ForVideoClassification(InternVideo2PreTrainedModel):
    """InternVideo2 video classifier (stage-1 fine-tunes): `classifier(fc_norm(pooled embedding))`."""

    def __init__(self, config: InternVideo2VisionConfig):
        super().__init__(config)
        self.internvideo2 = InternVideo2Model(config)
        self.fc_norm = nn.LayerNorm(config.pooler_output_size, eps=config.pooler_layer_norm_eps)
        self.classifier = nn.Linear(config.pooler_output_size, config.num_labels)
        self.post_init()

    def get_input_embeddings(self):
        return self.internvideo2.get_input_embeddings()

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        interpolate_pos_encoding: bool = False,
        output_hidden_states: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> ImageClassifierOutput:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_frames, num_channels, height, width)`):
            Normalised clips; exactly `config.num_frames` frames unless `interpolate_pos_encoding=True`.
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class indices for a cross-entropy loss.
        interpolate_pos_encoding (`bool`, defaults to `False`): see [`InternVideo2Model.forward`].
        output_hidden_states (`bool`, *optional*): also return the embeddings and every block output.
        kwargs: `output_attentions=True` returns every block's attention weights (eager attention).
        """
        # an explicit `output_attentions=None` would hide the config's default from the tower
        output_attentions = kwargs.pop("output_attentions", None)
        attention_kwargs = {} if output_attentions is None else {"output_attentions": output_attentions}
        outputs = self.internvideo2(
            pixel_values, interpolate_pos_encoding, output_hidden_states, return_dict=True, **attention_kwargs
        )
        logits = self.classifier(self.fc_norm(outputs.pooler_output))
        loss = self.loss_function(labels, logits, self.config, **kwargs) if labels is not None else None
        return ImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


# ---------------------------------------------------------------------------------------------------------------------
# Stage 2: text encoder and the video-text model
# ---------------------------------------------------------------------------------------------------------------------


class InternVideo2TextModel(InternVideo2PreTrainedModel):
    """
    The stage-2 text encoder: BERT embeddings and layers. `forward` is the text mode (embeddings + the layers before
    `fusion_layer`, what every text feature uses); `fuse` is the fusion mode (the layers from `fusion_layer` on,
    applied to text-mode outputs while cross-attending to vision tokens).
    """

    config: InternVideo2TextConfig
    main_input_name = "input_ids"
    input_modalities = ("text",)

    def __init__(self, config: InternVideo2TextConfig):
        super().__init__(config)
        self.embeddings = BertEmbeddings(config)
        self.encoder = InternVideo2TextEncoder(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.embeddings.word_embeddings = value

    def _mask(self, attention_mask: torch.Tensor | None, hidden_states: torch.Tensor):
        return create_bidirectional_mask(
            config=self.config, inputs_embeds=hidden_states, attention_mask=attention_mask
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> BaseModelOutput:
        r"""
        input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
            `[CLS]` + word pieces, no `[SEP]` (see [`InternVideo2Processor`]).
        attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*): 1 for tokens, 0 for
            padding.
        output_hidden_states (`bool`, *optional*): also return the embeddings and every text layer's output.
        """
        if input_ids.shape[-1] > self.config.max_position_embeddings:
            raise ValueError(
                f"the text is {input_ids.shape[-1]} tokens long but the text encoder has only "
                f"{self.config.max_position_embeddings} positions; truncate it (the original cuts texts to "
                "max_txt_l=40)"
            )
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        hidden_states = self.embeddings(input_ids=input_ids)
        mask = self._mask(attention_mask, hidden_states)
        return self.encoder(
            hidden_states, mask, range(self.config.fusion_layer), output_hidden_states=output_hidden_states
        )

    def fuse(
        self,
        text_hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        vision_hidden_states: torch.Tensor,
        output_hidden_states: bool = False,
    ) -> BaseModelOutput:
        """Fusion layers on text-mode outputs `(batch, length, hidden_size)` and vision tokens `(batch, tokens,
        encoder_hidden_size)` (all of them attended, class token included), row `i` with row `i`."""
        if text_hidden_states.shape[0] != vision_hidden_states.shape[0]:
            raise ValueError(
                f"fuse pairs row i of the texts with row i of the videos: got {text_hidden_states.shape[0]} texts and "
                f"{vision_hidden_states.shape[0]} videos"
            )
        mask = self._mask(attention_mask, text_hidden_states)
        layers = range(self.config.fusion_layer, self.config.num_hidden_layers)
        vision_hidden_states = vision_hidden_states.to(text_hidden_states.dtype)
        return self.encoder(text_hidden_states, mask, layers, vision_hidden_states, output_hidden_states)


class InternVideo2VideoTextModel(InternVideo2PreTrainedModel):
    """
    The InternVideo2 stage-2 video-text model (`InternVideo2_Stage2_visual`): a vision model (tower + attention
    pooling) and a BERT text encoder projected into one `projection_dim` space, a learned temperature, and a
    video-text matching head (`itm_head`) on the fusion layers' `[CLS]` output.

    Video and text features: [`get_video_features`], [`get_text_features`] (projected, not normalised).
    Similarities: `forward` (`logits_per_video` = cosine / learned temperature, or `logit_scale * cosine` for a fixed
    scale such as the demo's 100). Matching: `forward(..., output_matching_logits=True)` for every pair or
    [`get_matching_logits`] for aligned pairs (re-ranking).
    """

    config: InternVideo2Config
    main_input_name = "pixel_values_videos"
    input_modalities = ("video", "text")

    def __init__(self, config: InternVideo2Config):
        super().__init__(config)
        self.vision_model = InternVideo2Model(config.vision_config)
        self.text_model = InternVideo2TextModel(config.text_config)
        self.vision_projection = nn.Linear(config.vision_config.pooler_output_size, config.projection_dim)
        self.text_projection = nn.Linear(config.text_config.hidden_size, config.projection_dim)
        self.temperature = nn.Parameter(torch.tensor(config.temperature_init_value))
        self.itm_head = nn.Linear(config.text_config.hidden_size, 2)
        self.post_init()

    def get_input_embeddings(self):
        return self.text_model.get_input_embeddings()

    @property
    def logit_scale(self) -> torch.Tensor:
        """`1 / temperature`, with the temperature clamped to `[temperature_min, temperature_max]` as the original."""
        return 1.0 / self.clamped_temperature()

    def clamped_temperature(self) -> torch.Tensor:
        return self.temperature.clamp(self.config.temperature_min, self.config.temperature_max)

    def get_video_features(
        self, pixel_values_videos: torch.Tensor, interpolate_pos_encoding: bool = False, **kwargs
    ) -> BaseModelOutputWithPooling:
        r"""
        pixel_values_videos (`torch.FloatTensor` of shape `(batch_size, num_frames, num_channels, height, width)`):
            Normalised clips; one frame is an image (own position table).

        Returns: the vision model output with `pooler_output` replaced by the projected (not normalised) embedding
        `(batch_size, projection_dim)`.
        """
        outputs = self.vision_model(pixel_values_videos, interpolate_pos_encoding, **kwargs)
        outputs.pooler_output = self.vision_projection(outputs.pooler_output)
        return outputs

    def get_image_features(self, pixel_values: torch.Tensor, **kwargs) -> BaseModelOutputWithPooling:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`): images, encoded as
        1-frame videos.
        """
        return self.get_video_features(pixel_values.unsqueeze(1), **kwargs)

    def get_text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs
    ) -> BaseModelOutputWithPooling:
        r"""
        input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`): `[CLS]` + word pieces, no `[SEP]`.
        attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*): 1 = token.

        Returns: the text layers' output with `pooler_output` = the projected (not normalised) `[CLS]` output.
        """
        outputs = self.text_model(input_ids, attention_mask, **kwargs)
        return BaseModelOutputWithPooling(
            last_hidden_state=outputs.last_hidden_state,
            pooler_output=self.text_projection(outputs.last_hidden_state[:, 0]),
            hidden_states=outputs.hidden_states,
        )

    def similarity_logits(
        self, video_embeds: torch.Tensor, text_embeds: torch.Tensor, logit_scale: float | None = None
    ):
        """`(num_videos, num_texts)` logits of normalised embeddings: `cos / clamped temperature` (the original's
        training loss), or `logit_scale * cos` for a fixed scale (the demo's `100.0 * vid_feat @ txt_feat.T`, computed
        in that order)."""
        if logit_scale is None:
            return video_embeds @ text_embeds.T / self.clamped_temperature()
        return (logit_scale * video_embeds) @ text_embeds.T

    def get_matching_logits(
        self,
        video_hidden_states: torch.Tensor,
        text_hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        r"""
        Video-text matching logits `(batch_size, 2)` for aligned pairs (video `i` with text `i`); `[:, 1]` is the
        match score the original ranks by.

        video_hidden_states (`torch.FloatTensor` of shape `(batch_size, num_tokens, vision_hidden_size)`):
            `last_hidden_state` of [`get_video_features`] (all tokens).
        text_hidden_states (`torch.FloatTensor` of shape `(batch_size, sequence_length, text_hidden_size)`):
            `last_hidden_state` of [`get_text_features`].
        attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*): the text mask.
        """
        fused = self.text_model.fuse(text_hidden_states, attention_mask, video_hidden_states)
        return self.itm_head(fused.last_hidden_state[:, 0])

    def forward(
        self,
        input_ids: torch.Tensor,
        pixel_values_videos: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        logit_scale: float | None = None,
        output_matching_logits: bool = False,
        interpolate_pos_encoding: bool = False,
        **kwargs,
    ) -> InternVideo2VideoTextOutput:
        r"""
        input_ids (`torch.LongTensor` of shape `(num_texts, sequence_length)`): text ids (no `[SEP]`).
        pixel_values_videos (`torch.FloatTensor` of shape `(num_videos, num_frames, num_channels, height, width)`):
            normalised clips.
        attention_mask (`torch.LongTensor` of shape `(num_texts, sequence_length)`, *optional*): text mask.
        logit_scale (`float`, *optional*): fixed scale of the cosine similarities (the demo uses 100.0); default:
            `1 / temperature` (learned, clamped to `[temperature_min, temperature_max]`).
        output_matching_logits (`bool`, defaults to `False`): also run the fusion layers and `itm_head` for every
            (video, text) pair: `matching_logits` `(num_videos, num_texts, 2)`.
        interpolate_pos_encoding (`bool`, defaults to `False`): see [`InternVideo2Model.forward`].
        """
        video_outputs = self.get_video_features(pixel_values_videos, interpolate_pos_encoding)
        text_outputs = self.get_text_features(input_ids, attention_mask)
        video_embeds = F.normalize(video_outputs.pooler_output, dim=-1)
        text_embeds = F.normalize(text_outputs.pooler_output, dim=-1)
        logits_per_video = self.similarity_logits(video_embeds, text_embeds, logit_scale)
        matching_logits = None
        if output_matching_logits:
            matching_logits = self._all_pairs_matching_logits(video_outputs, text_outputs, attention_mask)
        return InternVideo2VideoTextOutput(
            logits_per_video=logits_per_video,
            logits_per_text=logits_per_video.T,
            video_embeds=video_embeds,
            text_embeds=text_embeds,
            matching_logits=matching_logits,
            video_model_output=video_outputs,
            text_model_output=text_outputs,
        )

    def _all_pairs_matching_logits(self, video_outputs, text_outputs, attention_mask) -> torch.Tensor:
        num_videos, num_texts = video_outputs.last_hidden_state.shape[0], text_outputs.last_hidden_state.shape[0]
        videos = video_outputs.last_hidden_state.repeat_interleave(num_texts, dim=0)
        texts = text_outputs.last_hidden_state.repeat(num_videos, 1, 1)
        mask = attention_mask.repeat(num_videos, 1) if attention_mask is not None else None
        return self.get_matching_logits(videos, texts, mask).reshape(num_videos, num_texts, 2)


__all__ = [
    "InternVideo2AttentionPooling",
    "InternVideo2ForVideoClassification",
    "InternVideo2Model",
    "InternVideo2PreTrainedModel",
    "InternVideo2TextModel",
    "InternVideo2VideoTextModel",
    "InternVideo2VideoTextOutput",
    "build_vision_tower",
]

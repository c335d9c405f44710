# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""VideoChat family modeling: video encoder -> Q-Former (96 queries) -> projection -> stock causal LM."""

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from transformers import AutoModel, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache
from transformers.modeling_outputs import BaseModelOutput, BaseModelOutputWithPooling, ModelOutput
from transformers.models.blip_2.modeling_blip_2 import Blip2TextEmbeddings
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, logging
from transformers.utils.generic import can_return_tuple

from .configuration_videochat import VideoChatConfig
from .strict_loading_videochat import StrictLoadingMixin


logger = logging.get_logger(__name__)


class _ModalityInputs(NamedTuple):
    """The inputs of one modality of `VideoChatModel.forward`: pixels, Q-Former rows and the clips of every item."""

    pixel_values: torch.Tensor | None
    qformer_input_ids: torch.Tensor | None
    qformer_attention_mask: torch.Tensor | None
    grid_thw: torch.Tensor | None


@dataclass
class VideoChatVisualFeaturesOutput(BaseModelOutputWithPooling):
    r"""
    Output of [`VideoChatModel.get_video_features`] / [`VideoChatModel.get_image_features`], one row per clip.

    last_hidden_state (`torch.FloatTensor` of shape `(num_clips, num_tokens, vision_hidden_size)`):
        Output of the video encoder (after its `post_layernorm`): the tokens the Q-Former cross-attends to.
    pooler_output (`torch.FloatTensor` of shape `(num_clips, num_queries, text_hidden_size)`):
        The LLM-ready features: projected Q-Former query outputs, in clip order.
    hidden_states (`tuple(torch.FloatTensor)`, *optional*): the video encoder's, with `output_hidden_states=True`.
    attentions (`tuple(torch.FloatTensor)`, *optional*): the video encoder's, with `output_attentions=True`.
    vision_outputs (`BaseModelOutput`): outputs of the video encoder.
    qformer_outputs (`BaseModelOutputWithPoolingAndCrossAttentions`): outputs of the Q-Former (queries then
        instruction rows).
    """

    vision_outputs: BaseModelOutput | None = None
    qformer_outputs: ModelOutput | None = None


@dataclass
class VideoChatModelOutputWithPast(ModelOutput):
    r"""
    Output of [`VideoChatModel`].

    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, sequence_length, hidden_size)`): LLM output.
    past_key_values (`Cache`, *optional*): the LLM key/value cache.
    hidden_states (`tuple(torch.FloatTensor)`, *optional*): LLM hidden states.
    attentions (`tuple(torch.FloatTensor)`, *optional*): LLM attentions.
    image_hidden_states (`torch.FloatTensor`, *optional*): projected image features that filled the placeholders.
    video_hidden_states (`torch.FloatTensor`, *optional*): projected video features that filled the placeholders.
    """

    last_hidden_state: torch.FloatTensor | None = None
    past_key_values: Cache | None = None
    hidden_states: tuple[torch.FloatTensor] | None = None
    attentions: tuple[torch.FloatTensor] | None = None
    image_hidden_states: torch.FloatTensor | None = None
    video_hidden_states: torch.FloatTensor | None = None


@dataclass
class VideoChatCausalLMOutputWithPast(ModelOutput):
    r"""
    Output of [`VideoChatForConditionalGeneration`].

    loss (`torch.FloatTensor`, *optional*): shifted causal LM loss, returned when `labels` are given.
    logits (`torch.FloatTensor` of shape `(batch_size, sequence_length, vocab_size)`): LM head scores.
    past_key_values (`Cache`, *optional*): the LLM key/value cache.
    hidden_states (`tuple(torch.FloatTensor)`, *optional*): LLM hidden states.
    attentions (`tuple(torch.FloatTensor)`, *optional*): LLM attentions.
    image_hidden_states (`torch.FloatTensor`, *optional*): projected image features.
    video_hidden_states (`torch.FloatTensor`, *optional*): projected video features.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    past_key_values: Cache | None = None
    hidden_states: tuple[torch.FloatTensor] | None = None
    attentions: tuple[torch.FloatTensor] | None = None
    image_hidden_states: torch.FloatTensor | None = None
    video_hidden_states: torch.FloatTensor | None = None


class VideoChatPreTrainedModel(StrictLoadingMixin, PreTrainedModel):
    """Base class of the composite VideoChat models."""

    config: VideoChatConfig
    base_model_prefix = "model"
    input_modalities = ("image", "video", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["InternVLVisionLayer", "VideoMAELayer", "VideoChatGmhraBlock", "Blip2QFormerLayer"]
    _skip_keys_device_placement = ["past_key_values"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    # decoding steps (no pixels) are the LLM's forward plus an embedding lookup: static cache and torch.compile work
    _can_compile_fullgraph = True

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, VideoChatModel):
            init.normal_(module.query_tokens, std=self.config.initializer_range)
            init.normal_(module.extra_query_tokens, std=self.config.initializer_range)
        elif isinstance(module, Blip2TextEmbeddings):
            init.copy_(module.position_ids, torch.arange(module.position_ids.shape[-1]).expand((1, -1)))

    def save_pretrained(self, *args, save_original_format: bool = False, **kwargs):
        """`save_pretrained` writing our weight names: the conversion mapping registered for folders of 0.1.0 would
        otherwise write those old names back (`save_original_format=True` is the transformers default)."""
        return super().save_pretrained(*args, save_original_format=save_original_format, **kwargs)


class VideoChatModel(VideoChatPreTrainedModel):
    """Video encoder (chosen by `vision_config`), BLIP-2 Q-Former with `query_tokens` + `extra_query_tokens` (and the
    instruction's word embeddings unless the Q-Former is text-free), projection and the headless LLM. The visual
    features replace the placeholder embeddings (`config.video_token_id` / `config.image_token_id`) in clip order."""

    def __init__(self, config: VideoChatConfig):
        super().__init__(config)
        qformer_config = config.qformer_config
        self.vision_model = AutoModel.from_config(config.vision_config)
        self.query_tokens = nn.Parameter(torch.zeros(1, config.num_query_tokens, qformer_config.hidden_size))
        self.extra_query_tokens = nn.Parameter(
            torch.zeros(1, config.num_extra_query_tokens, qformer_config.hidden_size)
        )
        self.qformer_embeddings = Blip2TextEmbeddings(qformer_config) if config.qformer_takes_text else None
        self.qformer = AutoModel.from_config(qformer_config)
        self.multi_modal_projector = nn.Linear(
            qformer_config.hidden_size, config.text_config.hidden_size, bias=config.projector_bias
        )
        self.language_model = AutoModel.from_config(config.text_config)
        self.post_init()

    def get_input_embeddings(self):
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.language_model.set_input_embeddings(value)

    def _encode_clips(self, clips: torch.Tensor, qformer_input_ids, qformer_attention_mask, **kwargs):
        """Encoder -> Q-Former -> projection on `(num_clips, channels, frames, H, W)` clips."""
        vision_outputs = self.vision_model(pixel_values=clips, return_dict=True, **kwargs)
        image_embeds = vision_outputs.last_hidden_state
        query_embeds = torch.cat([self.query_tokens, self.extra_query_tokens], dim=1).expand(clips.shape[0], -1, -1)
        rows, attention_mask = _qformer_rows(
            self.qformer_embeddings, query_embeds, qformer_input_ids, qformer_attention_mask
        )
        qformer_outputs = self.qformer(
            query_embeds=rows,
            query_length=query_embeds.shape[1],
            attention_mask=attention_mask,
            encoder_hidden_states=image_embeds,
            return_dict=True,
            **kwargs,
        )
        projected = self.multi_modal_projector(qformer_outputs.last_hidden_state[:, : query_embeds.shape[1]])
        return VideoChatVisualFeaturesOutput(
            last_hidden_state=image_embeds,
            pooler_output=projected,
            hidden_states=vision_outputs.hidden_states,
            attentions=vision_outputs.attentions,
            vision_outputs=vision_outputs,
            qformer_outputs=qformer_outputs,
        )

    @can_return_tuple
    def get_video_features(
        self,
        pixel_values_videos: torch.FloatTensor,
        video_qformer_input_ids: torch.LongTensor | None = None,
        video_qformer_attention_mask: torch.LongTensor | None = None,
        **kwargs,
    ) -> VideoChatVisualFeaturesOutput:
        r"""
        Encode video clips into LLM-ready features.

        Args:
            pixel_values_videos (`torch.FloatTensor` of shape `(num_clips, num_frames, channels, height, width)`):
                All clips of the batch in prompt order (HD videos: tiles row-major, then the global view).
            video_qformer_input_ids (`torch.LongTensor` of shape `(num_clips, text_length)`, *optional*):
                Q-Former instruction ids, one row per clip.
            video_qformer_attention_mask (`torch.LongTensor` of shape `(num_clips, text_length)`, *optional*):
                Mask of `video_qformer_input_ids`.
            kwargs: `output_hidden_states` / `output_attentions` of the video encoder and the Q-Former.

        Returns:
            [`VideoChatVisualFeaturesOutput`] whose `pooler_output` is `(num_clips, num_queries, text_hidden_size)`.
        """
        if isinstance(video_qformer_input_ids, (list, tuple)):
            return _encode_items(
                self.get_video_features, pixel_values_videos, video_qformer_input_ids, video_qformer_attention_mask
            )
        if not isinstance(pixel_values_videos, torch.Tensor) or pixel_values_videos.ndim != 5:
            shape = (
                tuple(pixel_values_videos.shape)
                if isinstance(pixel_values_videos, torch.Tensor)
                else type(pixel_values_videos)
            )
            raise ValueError(
                f"`pixel_values_videos` must have shape (num_clips, num_frames, channels, height, width), got {shape}"
            )
        clips = pixel_values_videos.permute(0, 2, 1, 3, 4)
        return self._encode_clips(
            clips, video_qformer_input_ids, video_qformer_attention_mask, **_encoder_kwargs(kwargs)
        )

    @can_return_tuple
    def get_image_features(
        self,
        pixel_values: torch.FloatTensor,
        image_qformer_input_ids: torch.LongTensor | None = None,
        image_qformer_attention_mask: torch.LongTensor | None = None,
        **kwargs,
    ) -> VideoChatVisualFeaturesOutput:
        r"""
        Encode images (one-frame clips, which use the separate image position table) into LLM-ready features.

        Args:
            pixel_values (`torch.FloatTensor` of shape `(num_image_clips, channels, height, width)`): normalised
            images.
            image_qformer_input_ids (`torch.LongTensor` of shape `(num_image_clips, text_length)`, *optional*):
                Q-Former instruction ids, one row per image clip.
            image_qformer_attention_mask (`torch.LongTensor`, *optional*): mask of `image_qformer_input_ids`.
            kwargs: `output_hidden_states` / `output_attentions` of the video encoder and the Q-Former.
        """
        if isinstance(image_qformer_input_ids, (list, tuple)):
            return _encode_items(
                self.get_image_features, pixel_values, image_qformer_input_ids, image_qformer_attention_mask
            )
        if not isinstance(pixel_values, torch.Tensor) or pixel_values.ndim != 4:
            shape = tuple(pixel_values.shape) if isinstance(pixel_values, torch.Tensor) else type(pixel_values)
            raise ValueError(f"`pixel_values` must have shape (num_images, channels, height, width), got {shape}")
        return self._encode_clips(
            pixel_values.unsqueeze(2), image_qformer_input_ids, image_qformer_attention_mask, **_encoder_kwargs(kwargs)
        )

    def embed_text_positions(self, input_ids: torch.LongTensor) -> torch.FloatTensor:
        """LLM input embeddings of `input_ids`. A visual placeholder id past the LLM vocabulary (converted models
        append `<video>` / `<image>` to the tokenizer) embeds as id 0; an id inside it embeds as itself, so that
        `get_input_embeddings()(input_ids)` is a valid `inputs_embeds`. Either way the visual features replace the
        row."""
        embeddings = self.get_input_embeddings()
        placeholders = (input_ids == self.config.video_token_id) | (input_ids == self.config.image_token_id)
        return embeddings(input_ids.masked_fill(placeholders & (input_ids >= embeddings.num_embeddings), 0))

    def get_placeholder_mask(
        self,
        input_ids: torch.LongTensor | None,
        inputs_embeds: torch.FloatTensor,
        token_id: int,
        features: torch.Tensor,
        name: str,
    ) -> torch.BoolTensor:
        """Boolean mask `(batch, length, hidden)` of the positions `features` fill; raises when the counts differ."""
        if input_ids is None:
            placeholder = self.embed_text_positions(
                torch.tensor(token_id, dtype=torch.long, device=inputs_embeds.device)
            )
            mask = (inputs_embeds == placeholder).all(-1)
        else:
            mask = input_ids == token_id
        num_tokens = int(mask.sum())
        # (clips, queries, hidden) from the encoder, or already flattened (positions, hidden)
        num_feature_rows = features.shape[0] * features.shape[1] if features.ndim == 3 else features.shape[0]
        if num_tokens == 0 and num_feature_rows:
            raise ValueError(
                f"{name} inputs were passed but the prompt has no <{name}> placeholder positions (id {token_id}); "
                f"put <{name}> in the text and let the processor expand it, or leave the {name} out"
            )
        if num_tokens != num_feature_rows:
            raise ValueError(
                f"{name.capitalize()} features and {name} tokens do not match, tokens: {num_tokens}, features: "
                f"{num_feature_rows} (each clip fills {self.config.num_visual_queries} placeholder positions; check "
                "the "
                f"number of <{name}> placeholders against the {name}s passed)"
            )
        return mask.unsqueeze(-1).expand_as(inputs_embeds).to(inputs_embeds.device)

    def missing_media_message(self, input_ids: torch.LongTensor, has_video: bool, has_image: bool) -> str | None:
        """Why the prompt cannot be answered as meant: it has placeholders of a modality whose media were not passed
        (`None` when nothing is missing). A placeholder is a run of `num_visual_queries` placeholder ids, as the
        processor writes them: a lone id is text (folders of videochat 0.1.0 use `<unk>` as placeholder)."""
        video_id, image_id = self.config.video_token_id, self.config.image_token_id
        for token_id, present, name, key in (
            (video_id, has_video or (video_id == image_id and has_image), "video", "pixel_values_videos"),
            (image_id, has_image or (video_id == image_id and has_video), "image", "pixel_values"),
        ):
            if not present and _has_run(input_ids == token_id, self.config.num_visual_queries):
                return (
                    f"the prompt has <{name}> placeholder positions (id {token_id}) but no `{key}` were passed; pass "
                    f"the {name} with the text (the processor returns both), or remove the <{name}> placeholder"
                )
        return None

    def _merge_features(self, input_ids, inputs_embeds, features_output, token_id: int, name: str):
        features = features_output.pooler_output
        if isinstance(features, (list, tuple)):
            features = torch.cat(list(features), dim=0)
        features = features.to(inputs_embeds.device, inputs_embeds.dtype)
        mask = self.get_placeholder_mask(input_ids, inputs_embeds, token_id, features, name)
        return inputs_embeds.masked_scatter(mask, features), features

    def _check_prompt(
        self, input_ids, inputs_embeds, past_key_values, has_video: bool, has_image: bool, use_cache=None
    ) -> None:
        """The prompt's ids, checked once, on the prompt (not on every decoding step): ids outside the vocabulary are
        errors (transformers would raise an `IndexError` deep in the embedding); placeholders without their media are
        a warning here (they embed as text, as in transformers' VLMs) and an error in `generate`, where they would
        give an answer that ignores the video. A sequence past the LLM's positions is a warning, except with
        `use_cache=False` and no cache: serving engines (vLLM) call the model that way on all their requests' tokens
        flattened into one row, which says nothing about any one sequence's positions."""
        past_length = past_key_values.get_seq_length() if past_key_values is not None else 0
        if input_ids is not None and past_length == 0:
            if input_ids.is_floating_point():
                raise ValueError(f"`input_ids` must hold integer token ids, got {input_ids.dtype}")
            if message := self.missing_media_message(input_ids, has_video, has_image):
                logger.warning_once(f"{message}; the placeholders are embedded as text.")
            _check_text_ids(input_ids, self.config, self.get_input_embeddings().num_embeddings)
        if use_cache is False and past_key_values is None:
            return
        length = past_length + (input_ids if input_ids is not None else inputs_embeds).shape[1]
        _warn_past_max_positions(self.config.text_config, length)

    def _embed_inputs(
        self,
        input_ids,
        inputs_embeds,
        video: _ModalityInputs,
        image: _ModalityInputs,
        mm_encoder_outputs,
        qformer_rows,
    ) -> tuple:
        """`(inputs_embeds, video_features, image_features)`: the text embeddings with the visual features (encoded
        here unless pre-computed in `mm_encoder_outputs`) at the placeholder positions. `qformer_rows` are the
        `(qformer_input_ids, qformer_attention_mask)` of both modalities in one tensor (videochat 0.1.0)."""
        mm_encoder_outputs = dict(mm_encoder_outputs or {})
        if inputs_embeds is None:
            inputs_embeds = self.embed_text_positions(input_ids)
        video_rows, image_rows = _qformer_rows_per_modality(video, image, qformer_rows)
        if video.pixel_values is not None and "video" not in mm_encoder_outputs:
            mm_encoder_outputs["video"] = self.get_video_features(video.pixel_values, *video_rows, return_dict=True)
        if image.pixel_values is not None and "image" not in mm_encoder_outputs:
            mm_encoder_outputs["image"] = self.get_image_features(image.pixel_values, *image_rows, return_dict=True)
        video_features = image_features = None
        if "video" in mm_encoder_outputs:
            inputs_embeds, video_features = self._merge_features(
                input_ids, inputs_embeds, mm_encoder_outputs["video"], self.config.video_token_id, "video"
            )
        if "image" in mm_encoder_outputs:
            inputs_embeds, image_features = self._merge_features(
                input_ids, inputs_embeds, mm_encoder_outputs["image"], self.config.image_token_id, "image"
            )
        return inputs_embeds, video_features, image_features

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        pixel_values_videos: torch.FloatTensor | None = None,
        video_qformer_input_ids: torch.LongTensor | None = None,
        video_qformer_attention_mask: torch.LongTensor | None = None,
        image_qformer_input_ids: torch.LongTensor | None = None,
        image_qformer_attention_mask: torch.LongTensor | None = None,
        video_grid_thw: torch.LongTensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        mm_encoder_outputs: dict | None = None,
        qformer_input_ids: torch.LongTensor | None = None,
        qformer_attention_mask: torch.LongTensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> VideoChatModelOutputWithPast:
        r"""
        video_qformer_input_ids / video_qformer_attention_mask (`torch.LongTensor` of shape `(num_video_clips, L)`):
            Q-Former instruction of every video clip (see `get_video_features`).
        image_qformer_input_ids / image_qformer_attention_mask (`torch.LongTensor` of shape `(num_image_clips, L)`):
            Q-Former instruction of every image clip.
        video_grid_thw / image_grid_thw (`torch.LongTensor` of shape `(num_items, 3)`, *optional*):
            `[num_clips, 1, 1]` per video / image: which rows of the pixel values belong to which item (checked).
        mm_encoder_outputs (`dict`, *optional*):
            Pre-computed `{"video": ..., "image": ...}` outputs of `get_video_features` / `get_image_features`.
        qformer_input_ids / qformer_attention_mask (`torch.LongTensor`, *optional*):
            The Q-Former rows of both modalities in one tensor (video clips first, then image clips), as videochat
            0.1.0 took them.
        """
        video = _ModalityInputs(
            pixel_values_videos, video_qformer_input_ids, video_qformer_attention_mask, video_grid_thw
        )
        image = _ModalityInputs(pixel_values, image_qformer_input_ids, image_qformer_attention_mask, image_grid_thw)
        has_video, has_image = _check_inputs(self.config, input_ids, inputs_embeds, video, image, mm_encoder_outputs)
        self._check_prompt(input_ids, inputs_embeds, past_key_values, has_video, has_image, use_cache)
        inputs_embeds, video_features, image_features = self._embed_inputs(
            input_ids, inputs_embeds, video, image, mm_encoder_outputs, (qformer_input_ids, qformer_attention_mask)
        )
        outputs = self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            use_cache=use_cache,
            return_dict=True,
            **kwargs,
        )
        return VideoChatModelOutputWithPast(
            last_hidden_state=outputs.last_hidden_state,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            image_hidden_states=image_features,
            video_hidden_states=video_features,
        )


def _qformer_rows(qformer_embeddings, query_embeds: torch.Tensor, qformer_input_ids, qformer_attention_mask) -> tuple:
    """Q-Former input rows (queries, then the instruction's embeddings) and their attention mask."""
    num_clips, num_queries = query_embeds.shape[:2]
    if qformer_input_ids is None:
        return query_embeds, None
    if qformer_embeddings is None:
        raise ValueError("this model's Q-Former takes no instruction text; do not pass `qformer_input_ids`")
    if qformer_input_ids.shape[0] != num_clips:
        raise ValueError(
            f"`qformer_input_ids` needs one row per clip: got {qformer_input_ids.shape[0]} rows for {num_clips} clips"
        )
    if qformer_attention_mask is None:
        qformer_attention_mask = torch.ones_like(qformer_input_ids)
    query_mask = torch.ones(
        num_clips, num_queries, dtype=qformer_attention_mask.dtype, device=qformer_input_ids.device
    )
    rows = qformer_embeddings(input_ids=qformer_input_ids, query_embeds=query_embeds)
    return rows, torch.cat([query_mask, qformer_attention_mask], dim=1)


def _encode_items(get_features, pixel_values, qformer_input_ids, qformer_attention_mask):
    """
    Features of items whose Q-Former rows come as one tensor per item (`(item_clips, text_length)`, lengths
    differing between items, as serving engines batch them): each item is encoded with its own rows, unpadded,
    exactly as when it is processed alone.
    """
    masks = qformer_attention_mask if qformer_attention_mask is not None else [None] * len(qformer_input_ids)
    clips = torch.split(pixel_values, [len(rows) for rows in qformer_input_ids])
    outputs = [
        get_features(item, rows, mask, return_dict=True) for item, rows, mask in zip(clips, qformer_input_ids, masks)
    ]
    return VideoChatVisualFeaturesOutput(
        last_hidden_state=torch.cat([output.last_hidden_state for output in outputs]),
        pooler_output=torch.cat([output.pooler_output for output in outputs]),
    )


def _check_inputs(
    config, input_ids, inputs_embeds, video: _ModalityInputs, image: _ModalityInputs, mm_encoder_outputs
) -> tuple[bool, bool]:
    """Exactly one of `input_ids` / `inputs_embeds`, each modality's features from pixels or pre-computed but not
    both, distinct placeholder ids when both modalities come, grids matching the pixels; returns whether video /
    image features come."""
    if (input_ids is None) ^ (inputs_embeds is not None):
        raise ValueError("You must specify exactly one of input_ids or inputs_embeds")
    encoded = mm_encoder_outputs or {}
    if "video" in encoded and video.pixel_values is not None:
        raise ValueError("You cannot specify both `pixel_values_videos` and `mm_encoder_outputs` at the same time")
    if "image" in encoded and image.pixel_values is not None:
        raise ValueError("You cannot specify both `pixel_values` and `mm_encoder_outputs` at the same time")
    has_video = video.pixel_values is not None or "video" in encoded
    has_image = image.pixel_values is not None or "image" in encoded
    if has_video and has_image and config.video_token_id == config.image_token_id:
        raise ValueError(
            "images and videos in one call need distinct `image_token_id` and `video_token_id` (both are "
            f"{config.video_token_id} in this config)"
        )
    _check_grid(video.grid_thw, video.pixel_values, "video")
    _check_grid(image.grid_thw, image.pixel_values, "image")
    return has_video, has_image


def _check_text_ids(input_ids: torch.LongTensor, config, vocab_size: int) -> None:
    """Ids other than the placeholders must lie in the LLM vocabulary."""
    placeholders = (input_ids == config.video_token_id) | (input_ids == config.image_token_id)
    text_ids = input_ids[~placeholders]
    if text_ids.numel() and (int(text_ids.min()) < 0 or int(text_ids.max()) >= vocab_size):
        bad = sorted({int(i) for i in text_ids[(text_ids < 0) | (text_ids >= vocab_size)].tolist()})[:5]
        raise ValueError(
            f"`input_ids` hold id(s) {bad} outside the LLM vocabulary (0 .. {vocab_size - 1}); tokenize with this "
            "model's own tokenizer / processor"
        )


def _warn_past_max_positions(text_config, length: int) -> None:
    max_positions = getattr(text_config, "max_position_embeddings", None)
    if max_positions and length > max_positions:
        logger.warning_once(
            f"The sequence ({length} positions, visual placeholders included) is longer than the LLM's "
            f"max_position_embeddings ({max_positions}); outputs past that length are unreliable. Use fewer "
            "frames / HD tiles or a shorter prompt."
        )


def _has_run(mask: torch.BoolTensor, length: int) -> bool:
    """Whether a row of `mask` has `length` consecutive `True` values."""
    if mask.shape[-1] < length or not bool(mask.any()):
        return False
    return bool(mask.unfold(-1, length, 1).all(-1).any())


def _encoder_kwargs(kwargs: dict) -> dict:
    """The keyword arguments of a feature method that reach the encoders (not the placeholder bookkeeping)."""
    return {key: value for key, value in kwargs.items() if key in ("output_hidden_states", "output_attentions")}


def _check_grid(grid_thw: torch.Tensor | None, pixels: torch.Tensor | None, name: str) -> None:
    if grid_thw is None or pixels is None:
        return
    num_clips = int(grid_thw[:, 0].sum())
    if num_clips != pixels.shape[0]:
        raise ValueError(
            f"`{name}_grid_thw` attributes {num_clips} clips to the {name}s but the pixel values hold "
            f"{pixels.shape[0]} rows"
        )


def _qformer_rows_per_modality(video: _ModalityInputs, image: _ModalityInputs, qformer_rows: tuple) -> tuple:
    """The `(qformer_input_ids, qformer_attention_mask)` of the video and of the image clips: each modality's own,
    else its part of the rows of both (`qformer_rows`, videochat 0.1.0)."""
    video_rows, image_rows = _split_qformer_rows(*qformer_rows, video.pixel_values, image.pixel_values)
    if video.qformer_input_ids is not None:
        video_rows = (video.qformer_input_ids, video.qformer_attention_mask)
    if image.qformer_input_ids is not None:
        image_rows = (image.qformer_input_ids, image.qformer_attention_mask)
    return video_rows, image_rows


def _split_qformer_rows(input_ids, attention_mask, pixel_values_videos, pixel_values):
    """Q-Former instruction rows come one per clip, video clips first, then images; split them per modality."""
    if input_ids is None or pixel_values_videos is None or pixel_values is None:
        return (input_ids, attention_mask), (input_ids, attention_mask)
    num_video_rows = pixel_values_videos.shape[0]
    if input_ids.shape[0] != num_video_rows + pixel_values.shape[0]:
        raise ValueError(
            f"`qformer_input_ids` needs one row per clip ({num_video_rows} video clips + {pixel_values.shape[0]} "
            "images), "
            f"got {input_ids.shape[0]} rows"
        )
    mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
    return (input_ids[:num_video_rows], mask[:num_video_rows]), (input_ids[num_video_rows:], mask[num_video_rows:])


class VideoChatForConditionalGeneration(VideoChatPreTrainedModel, GenerationMixin):
    """[`VideoChatModel`] with the LLM's untied `lm_head`. Use the standard `generate()`: the video is encoded once
    before prefill (through `get_video_features`) and reused for the whole generation."""

    _tied_weights_keys = {"lm_head.weight": "model.language_model.embed_tokens.weight"}
    # a tied head reads the embedding a tensor-parallel plan shards row-wise, so it needs its own entry
    _tp_plan = {"lm_head": "colwise_gather_output"}

    def __init__(self, config: VideoChatConfig):
        super().__init__(config)
        self.model = VideoChatModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def generate(self, inputs: torch.Tensor | None = None, **kwargs):
        """[`GenerationMixin.generate`]. A prompt with visual placeholders but without their media is an error here
        (forward only warns): the answer would silently ignore the video."""
        input_ids = inputs if inputs is not None else kwargs.get("input_ids")
        if input_ids is not None and not input_ids.is_floating_point():
            encoded = kwargs.get("mm_encoder_outputs") or {}
            has_video = kwargs.get("pixel_values_videos") is not None or encoded.get("video") is not None
            has_image = kwargs.get("pixel_values") is not None or encoded.get("image") is not None
            if message := self.model.missing_media_message(input_ids, has_video, has_image):
                raise ValueError(message)
        return super().generate(inputs, **kwargs)

    def _prepare_multimodal_encoder_kwargs_for_generation(self, model_kwargs: dict) -> dict:
        """Encode the visual inputs once before prefill (as `GenerationMixin` does) and keep only what decoding
        reads, the projected features: the encoder tokens and the Q-Former states of `get_*_features` would stay
        alive through every decoding step otherwise (156 MiB per 16-frame x 7-clip video in float32, see
        bench/bench_generate_memory.py). Pre-computed `mm_encoder_outputs` are copied the same way, so `generate`
        neither keeps nor modifies the caller's."""
        model_kwargs = super()._prepare_multimodal_encoder_kwargs_for_generation(model_kwargs)
        model_kwargs["mm_encoder_outputs"] = {
            modality: VideoChatVisualFeaturesOutput(pooler_output=output.pooler_output)
            for modality, output in model_kwargs["mm_encoder_outputs"].items()
            if output is not None
        }
        return model_kwargs

    def get_video_features(
        self, pixel_values_videos, video_qformer_input_ids=None, video_qformer_attention_mask=None, **kwargs
    ):
        """See [`VideoChatModel.get_video_features`]."""
        return self.model.get_video_features(
            pixel_values_videos, video_qformer_input_ids, video_qformer_attention_mask, **kwargs
        )

    def get_image_features(
        self, pixel_values, image_qformer_input_ids=None, image_qformer_attention_mask=None, **kwargs
    ):
        """See [`VideoChatModel.get_image_features`]."""
        return self.model.get_image_features(
            pixel_values, image_qformer_input_ids, image_qformer_attention_mask, **kwargs
        )

    def _logits_and_loss(self, hidden_states, labels, logits_to_keep, **kwargs) -> tuple:
        """LM head scores of the last `logits_to_keep` positions (all with 0) and, with `labels`, the loss."""
        slice_indices = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden_states[:, slice_indices, :])
        loss = None
        if labels is not None:
            loss = self.loss_function(
                logits=logits, labels=labels, vocab_size=self.config.text_config.vocab_size, **kwargs
            )
        return logits, loss

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        pixel_values_videos: torch.FloatTensor | None = None,
        video_qformer_input_ids: torch.LongTensor | None = None,
        video_qformer_attention_mask: torch.LongTensor | None = None,
        image_qformer_input_ids: torch.LongTensor | None = None,
        image_qformer_attention_mask: torch.LongTensor | None = None,
        video_grid_thw: torch.LongTensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        mm_encoder_outputs: dict | None = None,
        qformer_input_ids: torch.LongTensor | None = None,
        qformer_attention_mask: torch.LongTensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> VideoChatCausalLMOutputWithPast:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Token ids for the causal LM loss; positions set to `-100` (visual placeholders, prompt) are ignored.
        See [`VideoChatModel.forward`] for the visual inputs.
        """
        outputs = self.model(
            input_ids=input_ids,
            pixel_values=pixel_values,
            pixel_values_videos=pixel_values_videos,
            video_qformer_input_ids=video_qformer_input_ids,
            video_qformer_attention_mask=video_qformer_attention_mask,
            image_qformer_input_ids=image_qformer_input_ids,
            image_qformer_attention_mask=image_qformer_attention_mask,
            video_grid_thw=video_grid_thw,
            image_grid_thw=image_grid_thw,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            mm_encoder_outputs=mm_encoder_outputs,
            qformer_input_ids=qformer_input_ids,
            qformer_attention_mask=qformer_attention_mask,
            return_dict=True,
            **kwargs,
        )
        logits, loss = self._logits_and_loss(outputs.last_hidden_state, labels, logits_to_keep, **kwargs)
        return VideoChatCausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            image_hidden_states=outputs.image_hidden_states,
            video_hidden_states=outputs.video_hidden_states,
        )


__all__ = [
    "VideoChatForConditionalGeneration",
    "VideoChatModel",
    "VideoChatPreTrainedModel",
]

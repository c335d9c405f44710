# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""
Processor of the VideoChat family: placeholder expansion, segment-wise tokenization and Q-Former instructions.

Built on `ProcessorMixin`'s hooks: `_process_videos` / `_process_images` turn the media into clips (the image
processor owns the geometry) and call `replace_video_token` / `replace_image_token`, whose strings
`get_text_with_replacements` splices into the prompt. The expanded prompt is then tokenized the way the originals do:
split at the visual placeholders, every text segment tokenized on its own (InternVideo2-Chat adds the tokenizer's
special tokens to every segment, VideoChat2 / VideoChat only to the first), the placeholder ids written at the visual
positions. Tokenizing the joined string instead gives different ids at the seams.
"""

import os

import torch
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_utils import ImageInput
from transformers.processing_utils import (
    ImagesKwargs,
    MultiModalData,
    ProcessingKwargs,
    ProcessorMixin,
    Unpack,
    VideosKwargs,
)
from transformers.tokenization_utils_base import TextInput
from transformers.video_utils import VideoInput

from .chat_utils_videochat import VisualConversation
from .image_processing_pil_videochat import (
    CLIP_SETTING_KEYS,
    VideoChatVideoProcessorView,
    flat_images,
    load_image,
)
from .qformer_instructions_videochat import (
    QFORMER_INSTRUCTION_END,
    QFORMER_INSTRUCTION_START,
    check_instruction_mode,
    prepare_qformer_tokenizer,
    qformer_inputs,
    qformer_tokenizer_for_mode,
    split_prompt_instructions,
)
from .segment_tokenization_videochat import SegmentTokenizer, normalize_prompts, placeholder_token_id
from .video_utils_videochat import FRAME_SAMPLING_KEYS, flat_videos, load_video_frames, per_video


VIDEO_QFORMER_INSTRUCTION = "Watch the video and answer the question."
IMAGE_QFORMER_INSTRUCTION = "Observe the image and answer the question."
# `video_processor_type` of the `video_preprocessor_config.json` a converted folder carries: no transformers class
# (the image processor handles video frames), but the name serving engines look up a video loader by (the vLLM
# plugin registers one that samples frames as the originals do).
VIDEO_PROCESSOR_TYPE = "VideoChatVideoProcessor"
VIDEO_PREPROCESSOR_CONFIG = "video_preprocessor_config.json"
MODEL_INPUT_NAMES = (
    "input_ids",
    "attention_mask",
    "pixel_values",
    "pixel_values_videos",
    "video_grid_thw",
    "image_grid_thw",
    "video_qformer_input_ids",
    "video_qformer_attention_mask",
    "image_qformer_input_ids",
    "image_qformer_attention_mask",
)


class VideoChatVideosKwargs(VideosKwargs, total=False):
    """
    sampling (`str`): frame index rule, one of `video_utils_videochat.SAMPLING_STRATEGIES` (default `"segments"`,
        the demos' middle-of-segment `get_index`).
    bound (`tuple[float, float]`): `(start_s, end_s)` window for `sampling="mvbench"`.
    video_backend (`str`): `"pyav"` (default) or `"decord"` for video files.
    apply_rotation (`bool`): turn video files with rotation metadata upright (default `True`; `False` keeps the stored
        orientation, as the original decord-based code read it).
    hd_mode, hd_num, fix_ratio, hd_padding, add_global_view, resize_mode: see [`VideoChatImageProcessor`].
    """

    sampling: str | None
    bound: tuple[float, float] | list[float] | None
    video_backend: str | None
    apply_rotation: bool | None
    hd_mode: str | None
    hd_num: int | None
    fix_ratio: tuple[int, int] | list[int] | None
    hd_padding: bool | None
    add_global_view: bool | None
    resize_mode: str | None


class VideoChatImagesKwargs(ImagesKwargs, total=False):
    hd_mode: str | None
    hd_num: int | None
    fix_ratio: tuple[int, int] | list[int] | None
    hd_padding: bool | None
    add_global_view: bool | None
    resize_mode: str | None
    image_resize_mode: str | None
    image_image_mean: tuple[float, ...] | list[float] | None
    image_image_std: tuple[float, ...] | list[float] | None


class VideoChatProcessorKwargs(ProcessingKwargs, total=False):
    """
    qformer_text (`str` or `list[str]`): Q-Former instruction for this call, one string for every visual item or one
        per item (videos in prompt order, then images). Defaults to the instruction a rendered prompt carries at its
        start (`<qformer_instruction>...</qformer_instruction>`, the chat template's system message), else to the
        processor's per-modality instruction.
    """

    images_kwargs: VideoChatImagesKwargs
    videos_kwargs: VideoChatVideosKwargs
    qformer_text: str | list | None


def _check_placeholder_settings(video_token: str, image_token: str, num_query_tokens: int) -> None:
    if not video_token or not image_token or video_token == image_token:
        raise ValueError(
            f"`video_token` and `image_token` must be distinct non-empty strings, got {video_token!r}, "
            f"{image_token!r}."
        )
    if int(num_query_tokens) < 1:
        raise ValueError(f"`num_query_tokens` must be a positive integer, got {num_query_tokens}.")


def _check_tokenizer_files(folder: str) -> None:
    """A local folder without its LLM tokenizer file is a clear error (transformers would suggest installing
    sentencepiece)."""
    if os.path.isdir(folder) and not any(
        os.path.isfile(os.path.join(folder, name)) for name in ("tokenizer.json", "tokenizer.model")
    ):
        raise FileNotFoundError(
            f"{folder} has no tokenizer.json: the converted folder is incomplete. Convert it again (`videochat "
            "convert`), or write the tokenizer with `videochat convert-tokenizer` and copy its files there."
        )


def _known_kwargs(valid_processor_kwargs, image_processor) -> set[str]:
    """The keyword arguments a processor call understands: those of some modality, or of the image processor."""
    annotations = valid_processor_kwargs.__annotations__
    known = set(annotations) | {"common_kwargs"}
    for modality in ("text_kwargs", "images_kwargs", "videos_kwargs", "audio_kwargs"):
        known |= set(annotations[modality].__annotations__)
    return known | set(getattr(image_processor.valid_kwargs, "__annotations__", {}))


def _load_videos(videos: list, metadata: list, default_num_frames: int, sampling: dict) -> list[tuple]:
    """`(frames, metadata)` of every video, decoded and sampled; all videos of a call must have one frame count."""
    loaded = [
        load_video_frames(video, meta, default_num_frames=default_num_frames, **sampling)
        for video, meta in zip(videos, metadata)
    ]
    frame_counts = sorted({len(frames) for frames, _ in loaded})
    if len(frame_counts) > 1:
        raise ValueError(
            f"All videos of a call must have the same number of frames, got {frame_counts}; pass "
            "`num_frames=` (with `do_sample_frames=True` for in-memory videos) to sample them to one count."
        )
    return loaded


class VideoChatProcessor(ProcessorMixin):
    r"""
    Processor for InternVideo2-Chat, VideoChat2 and VideoChat: a [`VideoChatImageProcessor`], the LLM tokenizer and
    the Q-Former's BERT tokenizer.

    `processor(text=..., videos=..., images=..., return_tensors="pt")` returns `input_ids` and `attention_mask`,
    `pixel_values_videos` `(num_clips_total, T, 3, 224, 224)` and `video_grid_thw` (`[num_clips, 1, 1]` per video,
    attributing the clip rows to their video) and/or `pixel_values` `(num_image_clips, 3, 224, 224)` and
    `image_grid_thw`, and, when the model's Q-Former reads an instruction, `video_qformer_input_ids` /
    `video_qformer_attention_mask` (one row per video clip) and `image_qformer_*` (one row per image clip). Every
    `<video>` / `<image>` in the text becomes `num_query_tokens` placeholder ids per clip.

    Videos may be file paths (decoded with PyAV, or decord with `video_backend="decord"`), uint8 arrays or tensors
    `(T, H, W, 3)`, or lists of PIL images / `(H, W, 3)` arrays. Files are always sampled to `num_frames` frames
    (default: the image processor's `num_frames`); in-memory videos are sampled when `do_sample_frames=True` or
    `num_frames` / `fps` is given, otherwise used as they are.

    Args:
        image_processor ([`VideoChatImageProcessor`]): preprocessing of images and video frames.
        tokenizer ([`PreTrainedTokenizerBase`]): the LLM tokenizer.
        qformer_tokenizer ([`PreTrainedTokenizerBase`]): BERT tokenizer of the Q-Former (configured by
            `prepare_qformer_tokenizer`). May be `None` when `qformer_instruction_mode="none"`.
        chat_template (`str`, *optional*): Jinja template rendering one `<video>` / `<image>` per visual block.
        num_query_tokens (`int`, defaults to 96): Q-Former outputs per clip (`config.num_visual_queries`).
        video_token (`str`, defaults to `"<video>"`) / image_token (`str`, defaults to `"<image>"`): placeholders.
        video_token_id / image_token_id (`int`, *optional*): ids written at visual positions
            (`config.video_token_id` / `config.image_token_id`); by default the ids of the placeholders as special
            tokens of the LLM tokenizer (added when missing).
        video_qformer_instruction / image_qformer_instruction (`str`, *optional*): default Q-Former text per modality.
        qformer_instruction_mode (`str`, defaults to `"full"`): `"full"`, `"first_char"` (VideoChat2-HD demo: only the
            first character reaches the Q-Former) or `"none"` (the Q-Former takes no text).
        add_bos_to_every_segment (`bool`, defaults to `False`): add the tokenizer's special tokens to every text
            segment between visual items (InternVideo2-Chat) instead of only the first one.
        add_bos_to_first_segment (`bool`, defaults to `True`): add the tokenizer's special tokens to the first text
            segment; with both flags `False` no segment gets them (InternVideo2-Chat-InternLM2.5, whose training
            code tokenizes every segment with `add_special_tokens=False`).
        video_clip_separator / image_clip_separator (`str`, *optional*): text between the clips of one HD item
            (InternVideo2-Chat-HD wraps every clip in its own `<Video>...</Video>`); `None` keeps them contiguous.
        add_time_message (`bool`, defaults to `False`): let `apply_chat_template` add "The video contains N frames
            sampled at ... seconds." after each video.
        qformer_max_length (`int`, defaults to 512): truncation length of the Q-Former instruction.
    """

    valid_processor_kwargs = VideoChatProcessorKwargs
    # defaults of the call's text kwargs (left padding: batched generation appends to the right)
    text_kwargs = {"padding": "longest", "padding_side": "left"}

    def __init__(
        self,
        image_processor=None,
        tokenizer=None,
        qformer_tokenizer=None,
        chat_template=None,
        num_query_tokens: int = 96,
        video_token: str = "<video>",
        image_token: str = "<image>",
        video_token_id: int | None = None,
        image_token_id: int | None = None,
        video_qformer_instruction: str | None = VIDEO_QFORMER_INSTRUCTION,
        image_qformer_instruction: str | None = IMAGE_QFORMER_INSTRUCTION,
        qformer_instruction_mode: str = "full",
        add_bos_to_every_segment: bool = False,
        add_bos_to_first_segment: bool = True,
        video_clip_separator: str | None = None,
        image_clip_separator: str | None = None,
        add_time_message: bool = False,
        qformer_max_length: int = 512,
        **kwargs,
    ):
        padding_side = kwargs.pop("padding_side", None)  # an init argument in 0.1.0; now a text kwarg
        if padding_side is not None and tokenizer is not None:
            tokenizer.padding_side = padding_side
        check_instruction_mode(qformer_instruction_mode)
        _check_placeholder_settings(video_token, image_token, num_query_tokens)
        qformer_tokenizer = qformer_tokenizer_for_mode(qformer_tokenizer, qformer_instruction_mode)
        self.num_query_tokens = int(num_query_tokens)
        self.video_token, self.image_token = video_token, image_token
        self.video_qformer_instruction = video_qformer_instruction
        self.image_qformer_instruction = image_qformer_instruction
        self.qformer_instruction_mode = qformer_instruction_mode
        self.add_bos_to_every_segment = bool(add_bos_to_every_segment)
        self.add_bos_to_first_segment = bool(add_bos_to_first_segment)
        self.video_clip_separator, self.image_clip_separator = video_clip_separator, image_clip_separator
        self.add_time_message = bool(add_time_message)
        self.qformer_max_length = int(qformer_max_length)
        super().__init__(image_processor, tokenizer, qformer_tokenizer, chat_template=chat_template, **kwargs)
        self.video_token_id = placeholder_token_id(tokenizer, video_token, video_token_id)
        self.image_token_id = placeholder_token_id(tokenizer, image_token, image_token_id)
        self.qformer_instruction_start_id = placeholder_token_id(tokenizer, QFORMER_INSTRUCTION_START)
        self.qformer_instruction_end_id = placeholder_token_id(tokenizer, QFORMER_INSTRUCTION_END)

    @property
    def video_processor(self) -> VideoChatVideoProcessorView:
        """The video settings of the image processor, where serving engines (vLLM) look for a video processor."""
        return VideoChatVideoProcessorView(self.image_processor)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """[`ProcessorMixin.from_pretrained`]; a local folder without its LLM tokenizer file is a clear error
        (transformers would suggest installing sentencepiece)."""
        _check_tokenizer_files(os.path.join(os.fspath(pretrained_model_name_or_path), kwargs.get("subfolder") or ""))
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @property
    def model_input_names(self) -> list[str]:
        return list(MODEL_INPUT_NAMES)

    @property
    def segment_tokenizer(self) -> SegmentTokenizer:
        """The segment-wise tokenization of expanded prompts (see the module docstring)."""
        placeholder_ids = {self.video_token: self.video_token_id, self.image_token: self.image_token_id}
        return SegmentTokenizer(
            self.tokenizer, placeholder_ids, self.add_bos_to_every_segment, self.add_bos_to_first_segment
        )

    # ------------------------------------------------------------------------------------------------ main call

    def __call__(
        self,
        images: ImageInput | None = None,
        text: TextInput | list[TextInput] | None = None,
        videos: VideoInput | None = None,
        **kwargs: Unpack[VideoChatProcessorKwargs],
    ) -> BatchFeature:
        """
        Tokenize `text` (a string or a list of strings), expanding every `<video>` / `<image>`, and preprocess
        `videos` / `images` in prompt order. See the class docstring for the returned keys.
        """
        for name in ("audio", "audios"):
            if kwargs.pop(name, None) is not None:
                raise ValueError(f"{type(self).__name__} does not take audio.")
        self._check_kwargs(kwargs)
        texts, prompt_qformer_text = split_prompt_instructions(
            normalize_prompts(text), self.video_token, self.image_token
        )
        videos, images = flat_videos(videos), flat_images(images)
        self.validate_inputs(images=images or None, text=texts, videos=videos or None)
        output_kwargs = self._merge_kwargs(tokenizer_init_kwargs=self.tokenizer.init_kwargs, **kwargs)
        text_kwargs = output_kwargs["text_kwargs"]
        return_tensors = text_kwargs.pop("return_tensors", None)

        data, video_replacements, image_replacements = {}, [], []
        if videos:
            processed, video_replacements = self._process_videos(videos, **output_kwargs["videos_kwargs"])
            data.update(processed)
        if images:
            processed, image_replacements = self._process_images(images, **output_kwargs["images_kwargs"])
            data.update(processed)
        qformer_text = output_kwargs.get("qformer_text")
        if qformer_text is None and self.qformer_instruction_mode != "none":
            qformer_text = prompt_qformer_text
        data.update(self._qformer_inputs(data, qformer_text))
        if texts is not None:
            expanded, offsets = self.get_text_with_replacements(list(texts), image_replacements, video_replacements)
            text_inputs = self.segment_tokenizer(expanded, offsets, **text_kwargs)
            if text_kwargs.get("return_text_replacement_offsets") or output_kwargs.get(
                "return_text_replacement_offsets"
            ):
                text_inputs["text_replacement_offsets"] = offsets
            if not (text_kwargs.get("return_mm_token_type_ids") or output_kwargs.get("return_mm_token_type_ids")):
                text_inputs.pop("mm_token_type_ids")
            data = {**text_inputs, **data}
        if not output_kwargs["videos_kwargs"].get("return_metadata"):
            data.pop("video_metadata", None)
        return BatchFeature(data, tensor_type=return_tensors, skip_tensor_conversion=self.skip_tensor_conversion)

    def _check_kwargs(self, kwargs: dict) -> None:
        """Reject keyword arguments that no modality understands (transformers would only warn and ignore them)."""
        known = _known_kwargs(self.valid_processor_kwargs, self.image_processor)
        unknown = sorted(key for key in kwargs if key not in known)
        if unknown:
            raise ValueError(f"{type(self).__name__} got unknown keyword argument(s) {unknown}.")

    def validate_inputs(self, images=None, text=None, videos=None, **kwargs) -> None:
        """At least one input, and as many `<video>` / `<image>` in the texts as videos / images passed."""
        if images is None and text is None and videos is None:
            raise ValueError(f"You need to provide at least one input to call {type(self).__name__}.")
        if text is None:
            return
        for token, items, name in ((self.video_token, videos, "videos"), (self.image_token, images, "images")):
            in_text, passed = sum(sample.count(token) for sample in text), len(items or [])
            if in_text != passed:
                raise ValueError(
                    f"The total number of {token} tokens in the prompts should be the same as the number of "
                    f"{name} passed. Found total {in_text} {token} tokens and {passed} {name}."
                )

    # ------------------------------------------------------------------------------------------------ visuals

    def _process_videos(self, videos: list, **kwargs):
        """Decode and sample every video, turn its frames into clips, and build each video's placeholder text."""
        metadata = per_video(kwargs.pop("video_metadata", None), len(videos), "video_metadata")
        sampling = {key: kwargs.pop(key, None) for key in FRAME_SAMPLING_KEYS}
        loaded = _load_videos(videos, metadata, self.image_processor.num_frames, sampling)
        clip_kwargs = {key: kwargs[key] for key in CLIP_SETTING_KEYS if kwargs.get(key) is not None}
        processed = self.image_processor.preprocess_videos([frames for frames, _ in loaded], **clip_kwargs)
        num_clips = processed.pop("video_num_clips")
        processed["video_grid_thw"] = torch.tensor([[count, 1, 1] for count in num_clips])
        processed["video_metadata"] = [meta for _, meta in loaded]
        return processed, [self.replace_video_token(processed, index) for index in range(len(videos))]

    def _process_images(self, images: list, **kwargs):
        kwargs = {key: value for key, value in kwargs.items() if value is not None and key != "return_tensors"}
        processed = self.image_processor.preprocess(
            [load_image(image) for image in images], return_tensors=None, **kwargs
        )
        processed["image_grid_thw"] = torch.tensor([[count, 1, 1] for count in processed.pop("image_num_clips")])
        return processed, [self.replace_image_token(processed, index) for index in range(len(images))]

    def replace_video_token(self, video_inputs: dict, video_idx: int, **kwargs) -> str:
        """The text one `<video>` becomes: `num_query_tokens` placeholders per clip, the clip separator between the
        clips of an HD video."""
        return self._visual_replacement(
            self.video_token, int(video_inputs["video_grid_thw"][video_idx][0]), self.video_clip_separator
        )

    def replace_image_token(self, image_inputs: dict, image_idx: int, **kwargs) -> str:
        return self._visual_replacement(
            self.image_token, int(image_inputs["image_grid_thw"][image_idx][0]), self.image_clip_separator
        )

    def _visual_replacement(self, token: str, num_clips: int, separator: str | None) -> str:
        return (separator or "").join([token * self.num_query_tokens] * num_clips)

    def _get_num_multimodal_tokens(self, image_sizes=None, video_sizes=None, **kwargs) -> MultiModalData:
        """
        Placeholder counts for images of `image_sizes` `[(height, width), ...]` and videos of `video_sizes`
        `[(num_frames, height, width), ...]`, as `__call__` would produce them (used by serving engines).
        """
        data = {}
        if image_sizes is not None:
            clips = [
                self.image_processor.get_number_of_image_patches(height, width, kwargs)
                for height, width in image_sizes
            ]
            data.update(num_image_tokens=[count * self.num_query_tokens for count in clips], num_image_patches=clips)
        if video_sizes is not None:
            clips = [
                self.image_processor.get_number_of_video_clips(height, width, kwargs)
                for _, height, width in video_sizes
            ]
            data["num_video_tokens"] = [count * self.num_query_tokens for count in clips]
        return MultiModalData(**data)

    # ------------------------------------------------------------------------------------------------ Q-Former text

    def _qformer_inputs(self, visual_inputs: dict, qformer_text) -> dict:
        """One instruction row per clip, per modality (videos in prompt order, then images)."""
        defaults = {"video": self.video_qformer_instruction, "image": self.image_qformer_instruction}
        return qformer_inputs(
            self.qformer_tokenizer,
            visual_inputs,
            qformer_text,
            self.qformer_instruction_mode,
            defaults,
            self.qformer_max_length,
        )

    # ------------------------------------------------------------------------------------------------ chat template

    def apply_chat_template(self, conversation, chat_template=None, **kwargs):
        """
        Render (and optionally tokenize) a conversation with the processor's chat template.

        On top of [`ProcessorMixin.apply_chat_template`]: video blocks may use `"path"`, `"url"` (local files only) or
        `"video"` (a path or decoded frames), and a block without `"type"` but with a `"video"` / `"image"` key is
        accepted. A system message becomes the Q-Former instruction (the originals feed their system prompt to the
        Q-Former) unless `processor_kwargs["qformer_text"]` is given: the chat templates render it at the start of the
        prompt between `<qformer_instruction>` markers, which `__call__` removes, so that rendering with
        `tokenize=False` and then calling the processor on the text gives the same inputs. `add_time_message=True`
        (default: the processor's setting) adds the original "The video contains N frames sampled at ... seconds."
        after each video; this decodes the videos up front. `answer_prompt="..."` pre-fills the answer (e.g.
        `"Best option:("`). `return_assistant_tokens_mask=True` (with `tokenize=True, return_dict=True`) adds
        `assistant_masks`: 1 on the tokens the template's `{% generation %}` blocks mark (the answers and the text
        closing their turns).
        """
        add_time_message = kwargs.pop("add_time_message", self.add_time_message)
        processor_kwargs = dict(kwargs.pop("processor_kwargs", None) or {})
        conversation = VisualConversation(conversation)
        template = self._resolve_chat_template(chat_template)
        if self.qformer_instruction_mode != "none":
            conversation.give_system_message_to_qformer(template, processor_kwargs)
        if add_time_message:
            conversation.add_time_messages(self.image_processor.num_frames, processor_kwargs, kwargs)
        return super().apply_chat_template(
            conversation.messages, chat_template=chat_template, processor_kwargs=processor_kwargs, **kwargs
        )

    def post_process_image_text_to_text(self, generated_outputs, skip_special_tokens=True, **kwargs):
        """Decode generated ids (new tokens only) to text."""
        return self.tokenizer.batch_decode(generated_outputs, skip_special_tokens=skip_special_tokens, **kwargs)


def get_num_visual_tokens(num_clips: int, num_query_tokens: int = 96) -> int:
    """LLM placeholder positions of one visual item: `num_query_tokens` Q-Former outputs per clip."""
    if int(num_clips) < 1 or int(num_query_tokens) < 1:
        raise ValueError(
            f"`num_clips` and `num_query_tokens` must be positive integers, got {num_clips}, {num_query_tokens}."
        )
    return int(num_clips) * int(num_query_tokens)


__all__ = [
    "IMAGE_QFORMER_INSTRUCTION",
    "VIDEO_PREPROCESSOR_CONFIG",
    "VIDEO_PROCESSOR_TYPE",
    "VIDEO_QFORMER_INSTRUCTION",
    "VideoChatProcessor",
    "get_num_visual_tokens",
    "placeholder_token_id",
    "prepare_qformer_tokenizer",
]

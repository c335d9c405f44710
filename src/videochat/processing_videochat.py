# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""
Processor of the VideoChat family: prompt expansion and tokenization, Q-Former instructions, video decoding.

`VideoChatProcessor` bundles a [`VideoChatImageProcessor`] (images and video frames), the LLM tokenizer and the
Q-Former's BERT tokenizer. It has no `video_processor` attribute (transformers 5.23 video processors need
torchvision): videos are decoded and sampled by `video_processing_videochat.load_video` and turned into clips by
the image processor.

Tokenization follows the originals exactly. A prompt is split at every visual placeholder and every text segment
is tokenized on its own; the visual positions are filled with the placeholder id (0 = `<unk>` in the originals).
InternVideo2-Chat adds the tokenizer's special tokens (`<s>`) to every segment, VideoChat2 / VideoChat only to the
first one. Tokenizing the joined string instead gives different ids at the seams (SentencePiece-style tokenizers
prefix each separately encoded segment with "▁").
"""

import os
import re
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from transformers import BertTokenizer
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import (
    ImagesKwargs,
    MultiModalData,
    ProcessingKwargs,
    ProcessorMixin,
    TextKwargs,
    VideosKwargs,
)

from .image_processing_pil_videochat import VideoChatImageProcessor, find_closest_hd_grid
from .video_utils_videochat import (
    VideoChatVideoMetadata,
    format_time_message,
    load_video,
    to_rgb_frames,
)

DEFAULT_NUM_QUERY_TOKENS = 96
VIDEO_QFORMER_INSTRUCTION = "Watch the video and answer the question."
IMAGE_QFORMER_INSTRUCTION = "Observe the image and answer the question."
QFORMER_INSTRUCTION_MODES = ("full", "first_char", "none")
QFORMER_BOS_TOKEN = "[DEC]"

# Keys of the video kwargs that choose frames; the other video kwargs go to the image processor.
_FRAME_SAMPLING_KEYS = (
    "do_sample_frames",
    "num_frames",
    "fps",
    "sampling",
    "bound",
    "video_backend",
    "video_metadata",
)
# Tokenizer options that do not make sense for segment-wise tokenization with placeholder expansion.
_UNSUPPORTED_TEXT_KWARGS = (
    "text_pair",
    "text_target",
    "text_pair_target",
    "is_split_into_words",
    "stride",
    "return_overflowing_tokens",
    "return_offsets_mapping",
    "return_special_tokens_mask",
    "return_length",
    "return_token_type_ids",
    "sanitize_control_tokens",
)
_CLIP_SETTING_KEYS = (
    "hd_mode",
    "hd_num",
    "fix_ratio",
    "hd_padding",
    "add_global_view",
    "resize_mode",
    "image_mean",
    "image_std",
)


def get_num_visual_tokens(num_clips: int, num_query_tokens: int = DEFAULT_NUM_QUERY_TOKENS) -> int:
    """
    Number of LLM placeholder positions of one visual item: `num_query_tokens` Q-Former outputs per clip.

    `num_clips` is 1 for non-HD videos and images, and tiles + 1 (the global view) for the HD presets.
    """
    if int(num_clips) < 1:
        raise ValueError(f"`num_clips` must be a positive integer, got {num_clips}.")
    if int(num_query_tokens) < 1:
        raise ValueError(f"`num_query_tokens` must be a positive integer, got {num_query_tokens}.")
    return int(num_clips) * int(num_query_tokens)


def prepare_qformer_tokenizer(tokenizer):
    """
    Configure a BERT tokenizer the way the originals use it for the Q-Former: truncation and padding on the left,
    and `[DEC]` added as `bos_token` when missing (the originals add it, so the Q-Former vocabulary has one more row;
    it is never inserted at inference). Modifies and returns `tokenizer`.
    """
    if tokenizer.bos_token is None:
        tokenizer.add_special_tokens({"bos_token": QFORMER_BOS_TOKEN})
    tokenizer.truncation_side = "left"
    tokenizer.padding_side = "left"
    return tokenizer


def _placeholder_qformer_tokenizer():
    """A BERT tokenizer with only the special tokens, for models whose Q-Former never reads text (VideoChat v1,
    InternVideo2-Chat-8B): the processor always carries (and saves) a `qformer_tokenizer`."""
    return BertTokenizer(vocab={"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4})


class VideoChatVideosKwargs(VideosKwargs, total=False):
    """
    sampling (`str`): frame index rule, one of `video_processing_videochat.SAMPLING_STRATEGIES` (default `"segments"`,
        the demos' middle-of-segment `get_index`).
    bound (`tuple[float, float]`): `(start_s, end_s)` window for `sampling="mvbench"`.
    video_backend (`str`): `"pyav"` (default) or `"decord"` for video files.
    hd_mode, hd_num, fix_ratio, hd_padding, add_global_view, resize_mode: see [`VideoChatImageProcessor`].
    """

    sampling: str | None
    bound: tuple[float, float] | list[float] | None
    video_backend: str | None
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
        per item (videos in prompt order, then images). Defaults to the processor's per-modality instruction.
    """

    text_kwargs: TextKwargs
    images_kwargs: VideoChatImagesKwargs
    videos_kwargs: VideoChatVideosKwargs
    qformer_text: str | list | None


class VideoChatProcessor(ProcessorMixin):
    r"""
    Processor for InternVideo2-Chat, VideoChat2 and VideoChat: a [`VideoChatImageProcessor`], the LLM tokenizer and
    the Q-Former's BERT tokenizer.

    `processor(text=..., videos=..., images=..., return_tensors="pt")` returns `input_ids` and `attention_mask` (left
    padded), `pixel_values_videos` `(num_clips_total, T, 3, 224, 224)` and/or `pixel_values`
    `(num_image_clips, 3, 224, 224)`, and `qformer_input_ids` / `qformer_attention_mask` (one row per clip, videos
    first, left padded) when the model's Q-Former takes an instruction. Every `<video>` / `<image>` in the text is
    replaced by `get_num_visual_tokens(num_clips, num_query_tokens)` placeholder ids.

    Videos may be file paths (decoded with PyAV, or decord with `video_backend="decord"`), uint8 arrays or tensors
    `(T, H, W, 3)`, or lists of PIL images / `(H, W, 3)` arrays. Files are always sampled to `num_frames` frames
    (default: the image processor's `num_frames`); in-memory videos are sampled when `do_sample_frames=True` or
    `num_frames` / `fps` is given, otherwise used as they are.

    Args:
        image_processor ([`VideoChatImageProcessor`]): preprocessing of images and video frames.
        tokenizer ([`PreTrainedTokenizerBase`]): the LLM tokenizer.
        qformer_tokenizer ([`PreTrainedTokenizerBase`]): BERT tokenizer of the Q-Former (configured by
            `prepare_qformer_tokenizer`: left truncation and padding, `[DEC]` as `bos_token`). May be `None` when
            `qformer_instruction_mode="none"`; a special-tokens-only placeholder is then used.
        chat_template (`str`, *optional*): Jinja template rendering one `<video>` / `<image>` per visual block.
        num_query_tokens (`int`, defaults to 96): Q-Former outputs per clip
            (`num_query_tokens + num_extra_query_tokens` of the model config).
        video_token (`str`, defaults to `"<video>"`) / image_token (`str`, defaults to `"<image>"`): placeholders
            in text.
        video_token_id (`int`, defaults to 0) / image_token_id (`int`, defaults to 0): ids written at visual positions
            (`config.video_token_id` / `config.image_token_id`; 0 = `<unk>`, as the originals).
        video_qformer_instruction / image_qformer_instruction (`str`, *optional*): default Q-Former text per modality
            (`None`: no text unless `qformer_text` is passed).
        qformer_instruction_mode (`str`, defaults to `"full"`): `"full"`, `"first_char"` (VideoChat2-HD demo: only the
            first character reaches the Q-Former) or `"none"` (the Q-Former takes no text).
        add_bos_to_every_segment (`bool`, defaults to `False`): add the tokenizer's special tokens to every text
            segment between visual items (InternVideo2-Chat) instead of only the first one (VideoChat2 / VideoChat).
        video_clip_separator / image_clip_separator (`str`, *optional*): text between the clips of one HD item
            (InternVideo2-Chat-HD wraps every clip in its own `<Video>...</Video>`); `None` keeps the clips contiguous.
        add_time_message (`bool`, defaults to `False`): let `apply_chat_template` add "The video contains N frames
            sampled at ... seconds." after each video.
        padding_side (`str`, defaults to `"left"`): padding side unless a call passes `padding_side`.
        qformer_max_length (`int`, defaults to 512): truncation length of the Q-Former instruction.
    """

    valid_processor_kwargs = VideoChatProcessorKwargs
    text_kwargs = {"padding": "longest"}
    skip_tensor_conversion = ["video_metadata"]

    def __init__(
        self,
        image_processor=None,
        tokenizer=None,
        qformer_tokenizer=None,
        chat_template=None,
        num_query_tokens: int = DEFAULT_NUM_QUERY_TOKENS,
        video_token: str = "<video>",
        image_token: str = "<image>",
        video_token_id: int = 0,
        image_token_id: int = 0,
        video_qformer_instruction: str | None = VIDEO_QFORMER_INSTRUCTION,
        image_qformer_instruction: str | None = IMAGE_QFORMER_INSTRUCTION,
        qformer_instruction_mode: str = "full",
        add_bos_to_every_segment: bool = False,
        video_clip_separator: str | None = None,
        image_clip_separator: str | None = None,
        add_time_message: bool = False,
        padding_side: str = "left",
        qformer_max_length: int = 512,
        **kwargs,
    ):
        if qformer_instruction_mode not in QFORMER_INSTRUCTION_MODES:
            raise ValueError(
                f"Unknown qformer_instruction_mode {qformer_instruction_mode!r}; "
                f"choose one of {QFORMER_INSTRUCTION_MODES}."
            )
        if padding_side not in ("left", "right"):
            raise ValueError(f"`padding_side` must be 'left' or 'right', got {padding_side!r}.")
        if not video_token or not image_token or video_token == image_token:
            raise ValueError(
                "`video_token` and `image_token` must be distinct non-empty strings, "
                f"got {video_token!r}, {image_token!r}."
            )
        get_num_visual_tokens(1, num_query_tokens)
        self.num_query_tokens = int(num_query_tokens)
        self.video_token = video_token
        self.image_token = image_token
        self.video_token_id = int(video_token_id)
        self.image_token_id = int(image_token_id)
        self.video_qformer_instruction = video_qformer_instruction
        self.image_qformer_instruction = image_qformer_instruction
        self.qformer_instruction_mode = qformer_instruction_mode
        self.add_bos_to_every_segment = bool(add_bos_to_every_segment)
        self.video_clip_separator = video_clip_separator
        self.image_clip_separator = image_clip_separator
        self.add_time_message = bool(add_time_message)
        self.padding_side = padding_side
        self.qformer_max_length = int(qformer_max_length)
        if qformer_tokenizer is None:
            if qformer_instruction_mode != "none":
                raise ValueError(
                    "A `qformer_tokenizer` is required when the Q-Former takes an instruction "
                    f"(qformer_instruction_mode={qformer_instruction_mode!r})."
                )
            qformer_tokenizer = _placeholder_qformer_tokenizer()
        prepare_qformer_tokenizer(qformer_tokenizer)
        super().__init__(image_processor, tokenizer, qformer_tokenizer, chat_template=chat_template, **kwargs)

    # ------------------------------------------------------------------------------------------------ construction

    @property
    def model_input_names(self) -> list[str]:
        return [
            "input_ids",
            "attention_mask",
            "pixel_values",
            "pixel_values_videos",
            "qformer_input_ids",
            "qformer_attention_mask",
        ]

    @property
    def placeholder_pad_token_id(self) -> int:
        """Padding id of `input_ids`: the tokenizer's pad id unless it collides with a placeholder id, then EOS."""
        placeholder_ids = {self.video_token_id, self.image_token_id}
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None or pad_id in placeholder_ids:
            pad_id = self.tokenizer.eos_token_id
        if pad_id is None or pad_id in placeholder_ids:
            raise ValueError(
                "Cannot pad: the tokenizer's pad and EOS ids are missing or equal to the visual placeholder id "
                f"{sorted(placeholder_ids)}. Set a distinct `tokenizer.pad_token`."
            )
        return int(pad_id)

    # ------------------------------------------------------------------------------------------------ main call

    def __call__(self, images=None, text=None, videos=None, audio=None, **kwargs) -> BatchFeature:
        """
        Tokenize `text` (a string or a list of strings), expanding every `<video>` / `<image>`, and preprocess
        `videos` / `images` in prompt order. See the class docstring for the returned keys.
        """
        if audio is not None:
            raise ValueError(f"{type(self).__name__} does not take audio.")
        if images is None and text is None and videos is None:
            raise ValueError(f"You need to provide at least one input to call {type(self).__name__}.")
        self._check_kwargs(kwargs)
        explicit_padding_side = "padding_side" in kwargs or "padding_side" in (kwargs.get("text_kwargs") or {})
        output_kwargs = self._merge_kwargs(tokenizer_init_kwargs=self.tokenizer.init_kwargs, **kwargs)
        text_kwargs = output_kwargs["text_kwargs"]
        if not explicit_padding_side:
            text_kwargs["padding_side"] = self.padding_side
        return_tensors = text_kwargs.pop("return_tensors", None)
        for modality in ("images_kwargs", "videos_kwargs"):
            output_kwargs[modality].pop("return_tensors", None)

        texts = self._normalize_text(text)
        video_list = _flatten_videos(videos) if videos is not None else []
        image_list = _flatten_images(images) if images is not None else []
        if texts is not None:
            self._check_placeholder_counts(texts, len(video_list), len(image_list))

        data: dict = {}
        video_num_clips: list[int] = []
        image_num_clips: list[int] = []
        video_metadata = None
        if video_list:
            video_outputs, video_metadata = self._process_video_list(video_list, output_kwargs["videos_kwargs"])
            data["pixel_values_videos"] = video_outputs["pixel_values_videos"]
            video_num_clips = list(video_outputs["video_num_clips"])
        if image_list:
            image_outputs = self._process_image_list(image_list, output_kwargs["images_kwargs"])
            data["pixel_values"] = image_outputs["pixel_values"]
            image_num_clips = list(image_outputs["image_num_clips"])

        qformer_inputs = self._build_qformer_inputs(
            video_num_clips, image_num_clips, output_kwargs.get("qformer_text")
        )
        if qformer_inputs is not None:
            data.update(qformer_inputs)

        if texts is not None:
            return_mm_token_type_ids = text_kwargs.pop("return_mm_token_type_ids", None)
            if return_mm_token_type_ids is None:
                return_mm_token_type_ids = output_kwargs.get("return_mm_token_type_ids", self.return_mm_token_type_ids)
            text_inputs = self._tokenize_prompts(
                texts, video_num_clips, image_num_clips, text_kwargs, return_tensors, bool(return_mm_token_type_ids)
            )
            data = {**text_inputs, **data}

        if output_kwargs["videos_kwargs"].get("return_metadata") and video_metadata is not None:
            data["video_metadata"] = video_metadata
        return BatchFeature(data, tensor_type=return_tensors, skip_tensor_conversion=self.skip_tensor_conversion)

    def _check_kwargs(self, kwargs: dict) -> None:
        """Reject keyword arguments that no modality understands (transformers would only warn and ignore them)."""
        annotations = self.valid_processor_kwargs.__annotations__
        known = set(annotations) | {"common_kwargs"}
        for modality in ("text_kwargs", "images_kwargs", "videos_kwargs", "audio_kwargs"):
            known |= set(annotations[modality].__annotations__)
        known |= set(getattr(self.image_processor.valid_kwargs, "__annotations__", {}))
        unknown = sorted(key for key in kwargs if key not in known)
        if unknown:
            raise ValueError(f"{type(self).__name__} got unknown keyword argument(s) {unknown}.")
        for modality in ("text_kwargs", "images_kwargs", "videos_kwargs"):
            value = kwargs.get(modality)
            if value is not None and not isinstance(value, dict):
                raise ValueError(f"`{modality}` must be a dict, got {type(value).__name__}.")

    @staticmethod
    def _normalize_text(text) -> list[str] | None:
        if text is None:
            return None
        if isinstance(text, str):
            return [text]
        if isinstance(text, (list, tuple)) and len(text) > 0 and all(isinstance(sample, str) for sample in text):
            return list(text)
        raise ValueError("`text` must be a string or a non-empty list of strings.")

    def _check_placeholder_counts(self, texts: list[str], num_videos: int, num_images: int) -> None:
        for token, count, name in ((self.video_token, num_videos, "videos"), (self.image_token, num_images, "images")):
            in_text = sum(sample.count(token) for sample in texts)
            if in_text != count:
                raise ValueError(
                    f"The total number of {token} tokens in the prompts should be the same as the number of {name} "
                    f"passed. Found total {in_text} {token} tokens and {count} {name}."
                )

    # ------------------------------------------------------------------------------------------------ visuals

    def _process_video_list(self, videos: list, videos_kwargs: dict):
        """Decode / sample every video, then turn its frames into clips with the image processor."""
        videos_kwargs = dict(videos_kwargs)
        metadata_list = _per_video(videos_kwargs.pop("video_metadata", None), len(videos), "video_metadata")
        sampling_kwargs = {
            key: videos_kwargs.pop(key, None) for key in _FRAME_SAMPLING_KEYS if key != "video_metadata"
        }
        clip_kwargs = {key: videos_kwargs[key] for key in _CLIP_SETTING_KEYS if videos_kwargs.get(key) is not None}
        frames_list, metadata_out = [], []
        for video, metadata in zip(videos, metadata_list):
            frames, video_metadata = self._load_frames(video, metadata, **sampling_kwargs)
            frames_list.append(frames)
            metadata_out.append(video_metadata)
        num_frames = {len(frames) for frames in frames_list}
        if len(num_frames) > 1:
            raise ValueError(
                f"All videos of a call must have the same number of frames, got {sorted(num_frames)}; pass "
                "`num_frames=` (with `do_sample_frames=True` for in-memory videos) to sample them to one count."
            )
        outputs = self.image_processor.preprocess_videos(frames_list, **clip_kwargs)
        return outputs, metadata_out

    def _load_frames(
        self,
        video,
        metadata=None,
        do_sample_frames=None,
        num_frames=None,
        fps=None,
        sampling=None,
        bound=None,
        video_backend=None,
    ) -> tuple[np.ndarray, VideoChatVideoMetadata]:
        """Sampled uint8 RGB frames `(T, H, W, 3)` of one video and their metadata."""
        video_fps = _metadata_value(metadata, "fps")
        is_file = isinstance(video, (str, os.PathLike))
        if is_file:
            video = _local_video_path(video)
        wants_sampling = (
            do_sample_frames
            if do_sample_frames is not None
            else (is_file or num_frames is not None or fps is not None or bound is not None)
        )
        if is_file and do_sample_frames is False:
            raise ValueError(
                "Video files are always sampled; `do_sample_frames=False` only applies to decoded frames."
            )
        if not is_file:
            _check_video_array(video)
        if not wants_sampling:
            frames = to_rgb_frames(video)
            if isinstance(metadata, VideoChatVideoMetadata) and len(metadata.frames_indices or []) == len(frames):
                return frames, metadata  # frames sampled earlier (e.g. by apply_chat_template)
            indices = _metadata_value(metadata, "frames_indices") or list(range(len(frames)))
            return frames, VideoChatVideoMetadata(
                total_num_frames=len(frames),
                fps=video_fps,
                width=int(frames.shape[2]),
                height=int(frames.shape[1]),
                duration=(len(frames) / video_fps) if video_fps else None,
                frames_indices=[int(i) for i in indices],
                frame_timestamps=[float(i) / video_fps for i in indices] if video_fps else None,
            )
        if num_frames is None and fps is None:
            num_frames = self.image_processor.num_frames  # with `fps` alone, sample at that rate without a cap
        load_kwargs = {"num_frames": num_frames, "fps": fps, "bound": bound, "backend": video_backend or "pyav"}
        if sampling is not None:
            load_kwargs["sampling"] = sampling
        elif bound is not None:
            load_kwargs["sampling"] = "mvbench"
        if not is_file:
            load_kwargs["video_fps"] = video_fps
        return load_video(video, **load_kwargs)

    def _process_image_list(self, images: list, images_kwargs: dict):
        images = [_load_image(image) for image in images]
        images_kwargs = {key: value for key, value in images_kwargs.items() if value is not None}
        return self.image_processor.preprocess(images, return_tensors=None, **images_kwargs)

    def get_num_clips(self, height: int, width: int, **kwargs) -> int:
        """Clips a frame of `height x width` becomes: 1, or tiles + 1 global view for the HD presets."""
        settings = {
            key: kwargs.get(key, getattr(self.image_processor, key))
            for key in ("hd_mode", "hd_num", "fix_ratio", "hd_padding", "add_global_view")
        }
        if settings["hd_mode"] == "none":
            return 1
        size = self.image_processor.image_size
        if settings["hd_padding"]:
            cols, rows = _padded_hd_grid(height, width, settings["hd_num"], size)
        elif settings["hd_mode"] == "internvideo2_hd" and settings["fix_ratio"]:
            cols, rows = settings["fix_ratio"]
        else:
            cols, rows = find_closest_hd_grid(height, width, settings["hd_num"], size)
        return cols * rows + (1 if settings["add_global_view"] else 0)

    def _get_num_multimodal_tokens(self, image_sizes=None, video_sizes=None, **kwargs) -> MultiModalData:
        """
        Placeholder counts for images of `image_sizes` `[(height, width), ...]` and videos of `video_sizes`
        `[(num_frames, height, width), ...]`, as `__call__` would produce them (used by serving engines).
        """
        data = {}
        if image_sizes is not None:
            clips = [self.get_num_clips(height, width, **kwargs) for height, width in image_sizes]
            if self.image_processor.image_resize_mode == "square":
                clips = [1] * len(image_sizes)
            data["num_image_tokens"] = [get_num_visual_tokens(n, self.num_query_tokens) for n in clips]
            data["num_image_patches"] = clips
        if video_sizes is not None:
            clips = [self.get_num_clips(height, width, **kwargs) for _, height, width in video_sizes]
            data["num_video_tokens"] = [get_num_visual_tokens(n, self.num_query_tokens) for n in clips]
        return MultiModalData(**data)

    # ------------------------------------------------------------------------------------------------ Q-Former text

    def _build_qformer_inputs(
        self, video_num_clips: list[int], image_num_clips: list[int], qformer_text
    ) -> dict | None:
        """One instruction row per clip (videos in prompt order, then images), tokenized by the Q-Former tokenizer."""
        items = [("video", n) for n in video_num_clips] + [("image", n) for n in image_num_clips]
        if self.qformer_instruction_mode == "none":
            if qformer_text is not None:
                raise ValueError(
                    "This processor's Q-Former takes no instruction (qformer_instruction_mode='none'); do not pass "
                    "`qformer_text`."
                )
            return None
        if not items:
            return None
        if qformer_text is None:
            texts = [
                self.video_qformer_instruction if kind == "video" else self.image_qformer_instruction
                for kind, _ in items
            ]
        elif isinstance(qformer_text, str):
            texts = [qformer_text] * len(items)
        elif isinstance(qformer_text, (list, tuple)):
            if len(qformer_text) != len(items) or not all(t is None or isinstance(t, str) for t in qformer_text):
                raise ValueError(
                    f"`qformer_text` must be one string or a list of {len(items)} strings (one per video, then "
                    f"one per image); got {qformer_text!r}."
                )
            texts = list(qformer_text)
        else:
            raise ValueError(
                f"`qformer_text` must be a string or a list of strings, got {type(qformer_text).__name__}."
            )
        if all(text is None for text in texts):
            return None
        if any(text is None for text in texts):
            raise ValueError("Either every visual item has a Q-Former instruction or none has; got a mix.")
        if self.qformer_instruction_mode == "first_char":
            texts = [text[:1] for text in texts]
        rows = [text for text, (_, num_clips) in zip(texts, items) for _ in range(num_clips)]
        encoded = self.qformer_tokenizer(
            rows,
            padding="longest",
            truncation=True,
            max_length=self.qformer_max_length,
            padding_side="left",
            return_attention_mask=True,
        )
        return {"qformer_input_ids": encoded["input_ids"], "qformer_attention_mask": encoded["attention_mask"]}

    # ------------------------------------------------------------------------------------------------ LLM text

    def _placeholder_pattern(self) -> re.Pattern:
        return re.compile(f"({re.escape(self.video_token)}|{re.escape(self.image_token)})")

    def split_prompt(self, text: str, video_num_clips: Sequence[int], image_num_clips: Sequence[int]) -> list:
        """
        Split one prompt into the pieces the originals tokenize separately: text segments (`str`) and visual runs
        (`(modality, token_id, length)`), with the clip separator text between the clips of an HD item when configured.
        `video_num_clips` / `image_num_clips` are consumed in order.
        """
        videos, images = iter(video_num_clips), iter(image_num_clips)
        pieces: list = []
        for index, part in enumerate(self._placeholder_pattern().split(text)):
            if index % 2 == 0:
                pieces.append(part)
                continue
            is_video = part == self.video_token
            num_clips = next(videos if is_video else images)
            token_id = self.video_token_id if is_video else self.image_token_id
            separator = self.video_clip_separator if is_video else self.image_clip_separator
            kind = "video" if is_video else "image"
            if separator is None:
                pieces.append((kind, token_id, get_num_visual_tokens(num_clips, self.num_query_tokens)))
                continue
            for clip in range(num_clips):
                if clip > 0:
                    pieces.append(separator)
                pieces.append((kind, token_id, self.num_query_tokens))
        return pieces

    def _encode_pieces(self, pieces: list, add_special_tokens: bool) -> tuple[list[int], list[int]]:
        """Token ids of one prompt and the modality of every position (0 text, 1 image, 2 video)."""
        input_ids: list[int] = []
        modality: list[int] = []
        text_index = 0
        for piece in pieces:
            if isinstance(piece, str):
                with_specials = add_special_tokens and (self.add_bos_to_every_segment or text_index == 0)
                ids = self.tokenizer(piece, add_special_tokens=with_specials)["input_ids"]
                input_ids.extend(ids)
                modality.extend([0] * len(ids))
                text_index += 1
            else:
                kind, token_id, length = piece
                input_ids.extend([token_id] * length)
                modality.extend([2 if kind == "video" else 1] * length)
        return input_ids, modality

    def _tokenize_prompts(
        self,
        texts: list[str],
        video_num_clips: Sequence[int],
        image_num_clips: Sequence[int],
        text_kwargs: dict,
        return_tensors=None,
        return_mm_token_type_ids: bool = False,
    ) -> dict:
        """Tokenize a batch of prompts segment by segment, expand the placeholders, truncate and pad."""
        unsupported = sorted(key for key in _UNSUPPORTED_TEXT_KWARGS if text_kwargs.get(key))
        if unsupported:
            raise ValueError(f"{type(self).__name__} does not support the tokenizer option(s) {unsupported}.")
        add_special_tokens = text_kwargs.get("add_special_tokens")
        add_special_tokens = True if add_special_tokens is None else bool(add_special_tokens)
        truncation = text_kwargs.get("truncation")
        max_length = text_kwargs.get("max_length")
        padding = text_kwargs.get("padding")
        padding_side = text_kwargs.get("padding_side") or self.padding_side
        if padding_side not in ("left", "right"):
            raise ValueError(f"`padding_side` must be 'left' or 'right', got {padding_side!r}.")
        if truncation not in (None, False, "do_not_truncate") and max_length is None:
            raise ValueError("`truncation=True` needs `max_length`.")

        video_counts, image_counts = list(video_num_clips), list(image_num_clips)
        sequences, modalities = [], []
        for text in texts:
            num_videos, num_images = text.count(self.video_token), text.count(self.image_token)
            pieces = self.split_prompt(text, video_counts[:num_videos], image_counts[:num_images])
            video_counts, image_counts = video_counts[num_videos:], image_counts[num_images:]
            input_ids, modality = self._encode_pieces(pieces, add_special_tokens)
            if truncation not in (None, False, "do_not_truncate"):
                input_ids, modality = self._truncate(input_ids, modality, max_length)
            sequences.append(input_ids)
            modalities.append(modality)

        target_length = self._padded_length(
            [len(ids) for ids in sequences], padding, max_length, text_kwargs.get("pad_to_multiple_of")
        )
        output = {"input_ids": [], "attention_mask": [], "mm_token_type_ids": []}
        for ids, modality in zip(sequences, modalities):
            pad = max(0, target_length - len(ids)) if target_length is not None else 0
            pad_ids, zeros = [self.placeholder_pad_token_id] * pad, [0] * pad
            mask = [1] * len(ids)
            if padding_side == "left":
                ids, mask, modality = pad_ids + ids, zeros + mask, zeros + modality
            else:
                ids, mask, modality = ids + pad_ids, mask + zeros, modality + zeros
            output["input_ids"].append(ids)
            output["attention_mask"].append(mask)
            output["mm_token_type_ids"].append(modality)
        if return_tensors is not None and len({len(ids) for ids in output["input_ids"]}) > 1:
            raise ValueError(
                "Prompts of different lengths need `padding=True` (or 'max_length') to form a tensor batch."
            )
        if text_kwargs.get("return_attention_mask") is False:
            del output["attention_mask"]
        if not return_mm_token_type_ids:
            del output["mm_token_type_ids"]
        return output

    @staticmethod
    def _padded_length(lengths: list[int], padding, max_length, pad_to_multiple_of) -> int | None:
        if padding in (None, False, "do_not_pad"):
            return None
        if padding in (True, "longest"):
            target = max(lengths)
        elif padding == "max_length":
            target = max(max_length or 0, max(lengths))
        else:
            raise ValueError(f"Unsupported `padding` {padding!r}; use True/'longest', 'max_length' or False.")
        if pad_to_multiple_of:
            target = -(-target // pad_to_multiple_of) * pad_to_multiple_of
        return target

    def _truncate(self, input_ids: list[int], modality: list[int], max_length: int) -> tuple[list[int], list[int]]:
        """Cut text tokens beyond `max_length` (tokenizer's truncation side); never cut visual positions."""
        if len(input_ids) <= max_length:
            return input_ids, modality
        excess = len(input_ids) - max_length
        from_right = getattr(self.tokenizer, "truncation_side", "right") != "left"
        removed = modality[max_length:] if from_right else modality[:excess]
        if any(removed):
            raise ValueError(
                f"Truncating the prompt to max_length={max_length} would cut {sum(1 for m in removed if m)} visual "
                f"placeholder positions (prompt length {len(input_ids)}). Please disable truncation or increase "
                "`max_length`."
            )
        if from_right:
            return input_ids[:max_length], modality[:max_length]
        return input_ids[excess:], modality[excess:]

    # ------------------------------------------------------------------------------------------------ chat template

    def apply_chat_template(self, conversation, chat_template=None, **kwargs):
        """
        Render (and optionally tokenize) a conversation with the processor's chat template.

        On top of [`ProcessorMixin.apply_chat_template`]: video blocks may use `"path"`, `"url"` (local files only) or
        `"video"` (a path or decoded frames), and a block without `"type"` but with a `"video"` / `"image"` key is
        accepted; files are decoded by this package's decoder. A system message becomes the Q-Former instruction
        (as the originals feed their system prompt to the Q-Former) unless `processor_kwargs["qformer_text"]` is
        given. `add_time_message=True` (default: the processor's setting) adds the original "The video contains N
        frames sampled at ... seconds." after each video; this decodes the videos up front. `answer_prompt="..."`
        pre-fills the answer (e.g. `"Best option:("`), as does `continue_final_message=True`.
        """
        if kwargs.get("return_assistant_tokens_mask"):
            raise ValueError(f"{type(self).__name__} does not support `return_assistant_tokens_mask`.")
        add_time_message = kwargs.pop("add_time_message", self.add_time_message)
        processor_kwargs = dict(kwargs.pop("processor_kwargs", None) or {})
        conversation, is_batched = _normalize_visual_blocks(conversation)

        if self.qformer_instruction_mode != "none" and "qformer_text" not in processor_kwargs:
            system_texts = [_system_text(messages) for messages in conversation]
            if any(text is not None for text in system_texts):
                num_visuals = [_count_visual_blocks(messages) for messages in conversation]
                if len({text for text in system_texts}) == 1:
                    processor_kwargs["qformer_text"] = system_texts[0]
                else:
                    processor_kwargs["qformer_text"] = [
                        text for text, count in zip(system_texts, num_visuals) for _ in range(count)
                    ]
                    if any(text is None for text in processor_kwargs["qformer_text"]):
                        raise ValueError("Either every conversation of the batch has a system message or none has.")

        if add_time_message:
            self._decode_videos_for_time_message(conversation, processor_kwargs, kwargs)

        conversation = conversation if is_batched else conversation[0]
        return super().apply_chat_template(
            conversation, chat_template=chat_template, processor_kwargs=processor_kwargs, **kwargs
        )

    def _decode_videos_for_time_message(self, conversations: list, processor_kwargs: dict, kwargs: dict) -> None:
        """Decode every video block, store its frames in the block and add its `time_message`."""
        sampling = {key: processor_kwargs.get(key, kwargs.get(key)) for key in _FRAME_SAMPLING_KEYS}
        videos_kwargs = processor_kwargs.get("videos_kwargs") or {}
        sampling.update({key: value for key, value in videos_kwargs.items() if key in _FRAME_SAMPLING_KEYS})
        metadata = sampling.pop("video_metadata")
        decoded_metadata = []
        for messages in conversations:
            for message in messages:
                content = message.get("content")
                if isinstance(content, str) or not content:
                    continue
                for block in content:
                    if block.get("type") != "video" or block.get("time_message"):
                        continue
                    video = _video_of_block(block)
                    block_metadata = block.get("video_metadata") or metadata
                    if block.get("fps") is not None:
                        block_metadata = {"fps": block["fps"]}
                    frames, video_metadata = self._load_frames(video, block_metadata, **sampling)
                    if not video_metadata.fps:
                        raise ValueError(
                            "The time message needs the video's frame rate: pass `fps` in the video block or "
                            "`video_metadata`, or set add_time_message=False."
                        )
                    block["time_message"] = format_time_message(video_metadata.frames_indices, video_metadata.fps)
                    for key in ("path", "url"):
                        block.pop(key, None)
                    block["video"] = frames
                    decoded_metadata.append(video_metadata)
        processor_kwargs["do_sample_frames"] = False
        for key in ("num_frames", "fps", "bound", "sampling", "video_metadata"):
            processor_kwargs.pop(key, None)
            kwargs.pop(key, None)
        if decoded_metadata:
            processor_kwargs["video_metadata"] = decoded_metadata
        if "videos_kwargs" in processor_kwargs:
            processor_kwargs["videos_kwargs"] = {
                key: value
                for key, value in processor_kwargs["videos_kwargs"].items()
                if key not in _FRAME_SAMPLING_KEYS
            }

    def post_process_image_text_to_text(self, generated_outputs, skip_special_tokens=True, **kwargs):
        """Decode generated ids (new tokens only) to text."""
        return self.tokenizer.batch_decode(generated_outputs, skip_special_tokens=skip_special_tokens, **kwargs)


# ---------------------------------------------------------------------------------------------------------------------
# Input helpers
# ---------------------------------------------------------------------------------------------------------------------


def _is_array(value) -> bool:
    return isinstance(value, (np.ndarray, torch.Tensor))


def _is_frame(value) -> bool:
    return isinstance(value, Image.Image) or (_is_array(value) and value.ndim in (2, 3))


def _is_single_video(value) -> bool:
    if isinstance(value, (str, os.PathLike)):
        return True
    if _is_array(value):
        return value.ndim == 4
    if isinstance(value, (list, tuple)) and len(value) > 0:
        return all(_is_frame(frame) for frame in value)
    return False


def _flatten_videos(videos) -> list:
    """A flat list of videos from one video, a list of videos, a 5-D batch or nested (per-prompt) lists."""
    if _is_single_video(videos):
        return [videos]
    if _is_array(videos):
        if videos.ndim == 5:
            return list(videos)
        raise ValueError(
            f"A video array must have 4 dimensions (T, H, W, 3) (or 5 for a batch), got shape {tuple(videos.shape)}."
        )
    if isinstance(videos, (list, tuple)):
        flat = []
        for item in videos:
            if item is None:
                continue
            flat.extend(_flatten_videos(item) if not _is_single_video(item) else [item])
        return flat
    raise ValueError(
        f"Unsupported video input of type {type(videos).__name__}; pass a file path, a (T, H, W, 3) array or "
        "tensor, a list of frames, or a list of those."
    )


def _flatten_images(images) -> list:
    if isinstance(images, (str, os.PathLike, Image.Image)) or (_is_array(images) and images.ndim in (2, 3)):
        return [images]
    if _is_array(images):
        if images.ndim == 4:
            return list(images)
        raise ValueError(
            f"An image array must have 2 or 3 dimensions (or 4 for a batch), got shape {tuple(images.shape)}."
        )
    if isinstance(images, (list, tuple)):
        flat = []
        for item in images:
            if item is not None:
                flat.extend(_flatten_images(item))
        return flat
    raise ValueError(f"Unsupported image input of type {type(images).__name__}.")


def _load_image(image):
    if isinstance(image, (str, os.PathLike)):
        path = _local_path(image, "image")
        with Image.open(path) as opened:
            return opened.convert("RGB")
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return image


def _local_path(path, kind: str) -> str:
    path = os.fspath(path)
    if path.startswith("file://"):
        path = path[len("file://") :]
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", path):
        raise ValueError(f"Only local {kind} files are supported, got the URL {path!r}; download it first.")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{kind.capitalize()} file not found: {path}")
    return path


def _local_video_path(path) -> str:
    return _local_path(path, "video")


def _check_video_array(video) -> None:
    if _is_array(video) and video.ndim != 4:
        raise ValueError(f"A video array must have 4 dimensions (T, H, W, 3), got shape {tuple(video.shape)}.")


def _per_video(value, num_videos: int, name: str) -> list:
    if value is None:
        return [None] * num_videos
    if isinstance(value, (list, tuple)):
        if len(value) != num_videos:
            raise ValueError(f"`{name}` has {len(value)} entries for {num_videos} videos.")
        return list(value)
    if num_videos != 1:
        raise ValueError(f"Pass one `{name}` entry per video ({num_videos} videos).")
    return [value]


def _metadata_value(metadata, key: str):
    if metadata is None:
        return None
    if isinstance(metadata, dict):
        return metadata.get(key)
    return getattr(metadata, key, None)


def _padded_hd_grid(height: int, width: int, hd_num: int, image_size: int) -> tuple[int, int]:
    """(cols, rows) of `hd_resize_padding`'s output, from the arithmetic of the original transform."""
    if width < height:
        width, height = height, width
    ratio = width / height
    scale = 1
    while scale * np.ceil(scale / ratio) <= hd_num:
        scale += 1
    scale -= 1
    new_height = int(int(scale * image_size) / ratio)
    rows = int(np.ceil(new_height / image_size))
    return scale, rows


# ---------------------------------------------------------------------------------------------------------------------
# Conversation helpers
# ---------------------------------------------------------------------------------------------------------------------


def _normalize_visual_blocks(conversation) -> tuple[list, bool]:
    """Copy the conversation(s), giving a `type` to bare `{"video": ...}` / `{"image": ...}` blocks."""
    is_batched = (
        isinstance(conversation, (list, tuple))
        and len(conversation) > 0
        and isinstance(conversation[0], (list, tuple))
    )
    conversations = conversation if is_batched else [conversation]
    normalized = []
    for messages in conversations:
        new_messages = []
        for message in messages:
            message = dict(message)
            content = message.get("content")
            if isinstance(content, (list, tuple)):
                blocks = []
                for block in content:
                    block = dict(block)
                    if "type" not in block:
                        if "video" in block:
                            block["type"] = "video"
                        elif "image" in block:
                            block["type"] = "image"
                        elif "text" in block:
                            block["type"] = "text"
                        else:
                            raise ValueError(f"Cannot tell the type of content block {block!r}; add a 'type' key.")
                    blocks.append(block)
                message["content"] = blocks
            new_messages.append(message)
        normalized.append(new_messages)
    return normalized, is_batched


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(block["text"] for block in content or [] if block.get("type") == "text")


def _system_text(messages: list) -> str | None:
    for message in messages:
        if message.get("role") == "system":
            return _text_of(message.get("content"))
    return None


def _count_visual_blocks(messages: list) -> int:
    return sum(
        1
        for message in messages
        if not isinstance(message.get("content"), str)
        for block in message.get("content") or []
        if block.get("type") in ("video", "image")
    )


def _video_of_block(block: dict):
    for key in ("video", "path", "url"):
        if key in block and block[key] is not None:
            return block[key]
    raise ValueError(f"The video block {block!r} has no 'video', 'path' or 'url'.")


__all__ = [
    "DEFAULT_NUM_QUERY_TOKENS",
    "IMAGE_QFORMER_INSTRUCTION",
    "VIDEO_QFORMER_INSTRUCTION",
    "VideoChatProcessor",
    "get_num_visual_tokens",
    "prepare_qformer_tokenizer",
]

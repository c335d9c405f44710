# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Processor of the InternVideo2 stage-2 video-text model: [`InternVideo2ImageProcessor`] for the clips and a BERT
tokenizer that writes the original ids (`[CLS]` + word pieces, NO `[SEP]`, right-padded to `max_text_length`)."""

from transformers.image_processing_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin


class InternVideo2Processor(ProcessorMixin):
    r"""
    `processor(text=..., videos=..., images=...)` returns `input_ids` / `attention_mask` `(num_texts,
    max_text_length)` and `pixel_values_videos` `(num_videos, T, 3, S, S)` (images are 1-frame clips).

    Texts are tokenised as the original `get_txt_feat` does: padding to `max_text_length` (`max_txt_l`, 40). A text
    longer than that is an error unless `truncation=True`, which cuts it silently as the original demo does.

    Args:
        image_processor ([`InternVideo2ImageProcessor`]): clip preprocessing.
        tokenizer ([`PreTrainedTokenizerBase`]): uncased BERT WordPiece whose post-processor writes `[CLS] $A` (the
            conversion saves such a `tokenizer.json`).
        max_text_length (`int`, defaults to 40): padded text length, `[CLS]` included.
    """

    def __init__(self, image_processor=None, tokenizer=None, max_text_length: int = 40, **kwargs):
        if int(max_text_length) < 1:
            raise ValueError(f"max_text_length must be positive, got {max_text_length}")
        self.max_text_length = int(max_text_length)
        super().__init__(image_processor, tokenizer, **kwargs)

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "pixel_values_videos"]

    def __call__(self, text=None, videos=None, images=None, truncation: bool = False, return_tensors="pt", **kwargs):
        """Tokenise `text` (a string or a list) and preprocess `videos` or `images` (see the class docstring);
        `kwargs` go to the image processor."""
        if text is None and videos is None and images is None:
            raise ValueError("pass `text`, `videos` or `images`")
        if videos is not None and images is not None:
            raise ValueError("pass `videos` or `images`, not both (images are encoded as 1-frame videos)")
        data = {}
        if text is not None:
            data.update(self.tokenize(text, truncation=truncation, return_tensors=return_tensors))
        if videos is not None or images is not None:
            pixel_values = self.image_processor(videos=videos, images=images, return_tensors=return_tensors, **kwargs)
            data["pixel_values_videos"] = pixel_values["pixel_values"]
        return BatchFeature(data=data)

    def tokenize(self, text, truncation: bool = False, return_tensors="pt") -> dict:
        """`input_ids` and `attention_mask` padded to `max_text_length`; too long texts raise unless `truncation`."""
        texts = [text] if isinstance(text, str) else list(text)
        if not texts or not all(isinstance(item, str) for item in texts):
            raise ValueError("`text` must be a string or a non-empty list of strings")
        if not truncation:
            lengths = [len(ids) for ids in self.tokenizer(texts)["input_ids"]]
            too_long = [(index, length) for index, length in enumerate(lengths) if length > self.max_text_length]
            if too_long:
                index, length = too_long[0]
                raise ValueError(
                    f"text {index} is {length} tokens long ([CLS] included) but max_text_length is "
                    f"{self.max_text_length}; shorten it or pass truncation=True to cut it as the original does"
                )
        encoded = self.tokenizer(
            texts,
            padding="max_length",
            truncation=True,
            max_length=self.max_text_length,
            return_tensors=return_tensors,
        )
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


__all__ = ["InternVideo2Processor"]

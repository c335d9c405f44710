# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""
`image-text-to-text` pipeline batching for the VideoChat family.

The stock pipeline processes every conversation on its own and then collates the outputs with
`transformers.pipelines.base.pad_collate_fn`, which concatenates only `pixel_values`: for `pixel_values_videos` it
keeps the first row of each conversation (one clip of an HD video: "Video features and video tokens do not match"),
it pads Q-Former rows as if each conversation had one, and it refuses a batch that mixes image and video
conversations (different keys). `VideoChatImageTextToTextPipeline` only replaces that collate with the one
`VideoChatProcessor` batches by: clip rows and `*_grid_thw` concatenated in conversation order, `input_ids` /
`attention_mask` padded as the processor pads them.

    pipe = pipeline("image-text-to-text", model=model, processor=processor,
                    pipeline_class=VideoChatImageTextToTextPipeline)
    pipe(text=conversations, batch_size=4, generate_kwargs={"max_new_tokens": 64})
"""

import os

import torch
from torch.utils.data import DataLoader
from transformers.pipelines.image_text_to_text import ImageTextToTextPipeline
from transformers.pipelines.pt_utils import PipelineDataset, PipelineIterator


TEXT_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids")
QFORMER_KEYS = (
    "video_qformer_input_ids",
    "video_qformer_attention_mask",
    "image_qformer_input_ids",
    "image_qformer_attention_mask",
)


def _pad_rows(rows: list[torch.Tensor], value: int, side: str) -> torch.Tensor:
    """Rows `(n_i, length_i)` padded to one length on `side` and stacked along the first dimension."""
    length = max(row.shape[1] for row in rows)
    padded = []
    for row in rows:
        fill = row.new_full((row.shape[0], length - row.shape[1]), value)
        padded.append(torch.cat([fill, row] if side == "left" else [row, fill], dim=1))
    return torch.cat(padded)


def videochat_collate_fn(processor):
    """Collate per-conversation `VideoChatProcessor` outputs into one batch (see the module docstring)."""
    pad_token_id = processor.segment_tokenizer.pad_token_id
    text_kwargs = processor._merge_kwargs(tokenizer_init_kwargs=processor.tokenizer.init_kwargs)["text_kwargs"]
    side = text_kwargs.get("padding_side") or "left"

    def collate(items: list) -> dict:
        keys = dict.fromkeys(key for item in items for key in item)
        batch = {}
        for key in keys:
            values = [item[key] for item in items if key in item]
            if key == "text":
                batch[key] = values
            elif key in TEXT_KEYS:
                batch[key] = _pad_rows(values, pad_token_id if key == "input_ids" else 0, side)
            elif key in QFORMER_KEYS:
                batch[key] = _pad_rows(values, 0, "left")  # the Q-Former's rows are left padded (the originals')
            elif isinstance(values[0], torch.Tensor):
                batch[key] = torch.cat(values)  # clip rows / grids of the items, in conversation order
            else:
                batch[key] = values
        return batch

    return collate


class VideoChatImageTextToTextPipeline(ImageTextToTextPipeline):
    """[`ImageTextToTextPipeline`] whose batches (`batch_size > 1`) are collated as [`VideoChatProcessor`] batches, so
    that HD videos, images and mixed conversations batch and answer as they do one at a time."""

    def get_iterator(
        self, inputs, num_workers: int, batch_size: int, preprocess_params, forward_params, postprocess_params
    ):
        if batch_size == 1:
            return super().get_iterator(
                inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params
            )
        dataset = PipelineDataset(inputs, self.preprocess, preprocess_params)
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        collate = videochat_collate_fn(self.processor)
        loader = DataLoader(dataset, num_workers=num_workers, batch_size=batch_size, collate_fn=collate)
        model_iterator = PipelineIterator(loader, self.forward, forward_params, loader_batch_size=batch_size)
        return PipelineIterator(model_iterator, self.postprocess, postprocess_params)


__all__ = ["VideoChatImageTextToTextPipeline", "videochat_collate_fn"]

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""`pipeline("image-text-to-text")` with `batch_size` 2 and 4 on mixed conversations (HD videos, an image, image +
video, a system message) answers exactly as one conversation at a time, with `VideoChatImageTextToTextPipeline`
(the stock pipeline's collate keeps one clip per conversation and refuses mixed image / video batches)."""

import pytest
from serving_testing import build_checkpoints
from transformers import AutoModelForImageTextToText, AutoProcessor, pipeline

from videochat import VideoChatImageTextToTextPipeline


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    paths = build_checkpoints(tmp_path_factory.mktemp("pipeline"), real_vocabulary=False, sharpen_factor=6.0)
    model = AutoModelForImageTextToText.from_pretrained(paths["hd"]).eval()
    return paths, model, AutoProcessor.from_pretrained(paths["hd"])


def conversations(paths: dict) -> list:
    def user(*blocks, text):
        return {"role": "user", "content": [*blocks, {"type": "text", "text": text}]}

    video, other, image = (
        {"type": "video", "path": paths["red_right"]},
        {"type": "video", "path": paths["green_left"]},
        {"type": "image", "path": paths["image"]},
    )
    return [
        [user(video, text="What happens?")],
        [user(image, text="What is in the picture?")],
        [user(other, text="Describe the whole video in detail, please.")],
        [user(image, video, text="Compare them.")],
        [{"role": "system", "content": "Watch carefully."}, user(other, text="Describe the action.")],
    ]


GENERATION = {"generate_kwargs": {"max_new_tokens": 8, "do_sample": False}, "return_full_text": False}


@pytest.mark.parametrize("batch_size", [2, 4])
def test_batched_pipeline_answers_as_single_conversations(workspace, batch_size):
    paths, model, processor = workspace
    pipe = pipeline(
        "image-text-to-text", model=model, processor=processor, pipeline_class=VideoChatImageTextToTextPipeline
    )
    chats = conversations(paths)
    single = [pipe(text=chat, **GENERATION)[0]["generated_text"] for chat in chats]
    assert len(set(single)) == len(single)  # the answers see their inputs
    batched = [output[0]["generated_text"] for output in pipe(text=chats, batch_size=batch_size, **GENERATION)]
    assert batched == single


def test_the_stock_collate_cannot_batch_hd_videos_with_images(workspace):
    paths, model, processor = workspace
    pipe = pipeline("image-text-to-text", model=model, processor=processor)
    with pytest.raises(ValueError, match="different keys|do not match"):
        pipe(text=conversations(paths)[:2], batch_size=2, **GENERATION)

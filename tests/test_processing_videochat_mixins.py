# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""transformers' `ProcessorTesterMixin` of the pinned release (see `hf_test_mixins.py`) on `VideoChatProcessor`:
image processor + LLM tokenizer + Q-Former tokenizer, from the tiny VideoChat2-Mistral fixture's tokenizers."""

import unittest

import torch
from conftest import shared_path
from hf_test_mixins import import_hf_test_module
from transformers import AutoTokenizer

from videochat import VideoChatImageProcessor, VideoChatProcessor
from videochat.convert.presets import load_chat_template


ProcessorTesterMixin = import_hf_test_module("test_processing_common").ProcessorTesterMixin

FIXTURE = ("fixtures", "videochat2", "videochat2_it_mistral")


class VideoChatProcessorTest(ProcessorTesterMixin, unittest.TestCase):
    processor_class = VideoChatProcessor

    @classmethod
    def _setup_image_processor(cls):
        # 28-pixel clips keep the mixin's videos cheap; everything else is the class default
        return VideoChatImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})

    @classmethod
    def _setup_tokenizer(cls):
        return AutoTokenizer.from_pretrained(shared_path(*FIXTURE, "llm"))

    @classmethod
    def _setup_qformer_tokenizer(cls):
        return AutoTokenizer.from_pretrained(shared_path(*FIXTURE, "qformer_tokenizer"))

    def get_subprocessor_name(self, modality: str, attributes: list):
        # the image processor also preprocesses the videos (there is no `video_processor`), so the mixin's video
        # tests drive it with video inputs and video kwargs
        if modality == "videos":
            return "image_processor"
        return super().get_subprocessor_name(modality, attributes)

    def test_subprocessor_defaults_2_videos(self):
        # replaces the mixin's case, which calls a video processor as `video_processor(videos, **videos_kwargs)`:
        # here the videos go through the image processor's `preprocess_videos`
        image_processor = self.get_component("image_processor")
        processor = self.get_processor()
        video = self.prepare_videos_inputs()
        expected = image_processor.preprocess_videos([video])["pixel_values_videos"]
        output = processor(videos=[video], do_sample_frames=False, return_tensors="pt")["pixel_values_videos"]
        torch.testing.assert_close(output, expected, rtol=0, atol=0)

    @staticmethod
    def prepare_processor_dict():
        return {"chat_template": load_chat_template("videochat2-mistral-7b"), "num_query_tokens": 4}

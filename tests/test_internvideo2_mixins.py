# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""transformers' common model tests (`ModelTesterMixin` + `ConfigTester` of the pinned release, see
`hf_test_mixins.py`) on the stage-1 InternVideo2 foundation models, `InternVideo2Model` and
`InternVideo2ForVideoClassification` (the stage-2 `InternVideo2VideoTextModel` is not covered yet)."""

import unittest
from unittest import mock

import torch
from hf_test_mixins import import_hf_test_module
from internvideo2_testing import tiny_vision_config
from transformers.models.auto import modeling_auto

from videochat import InternVideo2ForVideoClassification, InternVideo2Model, InternVideo2VisionConfig


_common = import_hf_test_module("test_modeling_common")
ModelTesterMixin, floats_tensor = _common.ModelTesterMixin, _common.floats_tensor
ConfigTester = import_hf_test_module("test_configuration_common").ConfigTester


def patch_name_tables(test_case, entries: dict) -> None:
    """Add our class names to transformers' static name tables for the duration of one test (see
    test_modeling_videochat_mixins.py)."""
    for table, (model_type, class_name) in entries.items():
        patcher = mock.patch.dict(getattr(modeling_auto, table), {model_type: class_name})
        patcher.start()
        test_case.addCleanup(patcher.stop)


class InternVideo2VisionTester:
    def __init__(self, parent, batch_size=2):
        self.parent = parent
        self.batch_size = batch_size
        self.is_training = True
        self.config = tiny_vision_config()
        self.num_hidden_layers = self.config.num_hidden_layers
        self.hidden_size = self.config.hidden_size
        self.num_attention_heads = self.config.num_attention_heads
        self.image_size = self.config.image_size
        self.num_channels = self.config.num_channels
        self.num_labels = self.config.num_labels
        num_patches = (self.config.image_size // self.config.patch_size) ** 2
        self.seq_length = 1 + self.config.num_frames * num_patches

    def get_config(self):
        return tiny_vision_config()

    def prepare_config_and_inputs_for_common(self):
        config = self.config
        pixel_values = floats_tensor(
            [self.batch_size, config.num_frames, config.num_channels, config.image_size, config.image_size]
        )
        return self.get_config(), {"pixel_values": pixel_values}


class InternVideo2ModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (InternVideo2Model, InternVideo2ForVideoClassification)
    # as tests/models/videomae/test_modeling_videomae.py (VideoMAEModelTest): a video encoder has no token
    # embeddings to resize, and its input embedding is the patch projection (see test_model_get_set_embeddings)
    test_resize_embeddings = False

    def setUp(self):
        self.model_tester = InternVideo2VisionTester(self)
        self.config_tester = ConfigTester(self, config_class=InternVideo2VisionConfig, has_text_modality=False)
        patch_name_tables(
            self,
            {
                "MODEL_MAPPING_NAMES": ("internvideo2_vision", "InternVideo2Model"),
                "MODEL_FOR_VIDEO_CLASSIFICATION_MAPPING_NAMES": (
                    "internvideo2_vision",
                    "InternVideo2ForVideoClassification",
                ),
            },
        )

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_model_get_set_embeddings(self):
        # replaces the mixin's (which expects an `nn.Embedding`) as tests/models/videomae/test_modeling_videomae.py
        # does: the input embedding is the tubelet projection, there is no output embedding
        config, _ = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            model = model_class(config)
            self.assertIsInstance(model.get_input_embeddings(), torch.nn.Module)
            self.assertIsNone(model.get_output_embeddings())

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""transformers' common model tests (`ModelTesterMixin` + `ConfigTester` of the pinned release, see
`hf_test_mixins.py`) on `VideoChatModel` / `VideoChatForConditionalGeneration`, once per encoder family:

    InternVideo2  + Mistral, Q-Former reads the instruction   (InternVideo2-Chat)
    UMT           + Phi-3,   Q-Former reads the instruction   (VideoChat2)
    EVA + GMHRA   + Llama,   text-free Q-Former               (VideoChat v1)

Every sample holds one video clip and one image (distinct placeholder ids), so the mixin's `get_video_features` and
`get_image_features` tests both have inputs. The generation checks the sdist lacks are in `test_generation.py`.
"""

import unittest
from unittest import mock

import torch
from hf_test_mixins import import_hf_test_module
from transformers.models.auto import modeling_auto

from videochat import VideoChatConfig, VideoChatForConditionalGeneration, VideoChatModel


_common = import_hf_test_module("test_modeling_common")
ModelTesterMixin, floats_tensor, ids_tensor = _common.ModelTesterMixin, _common.floats_tensor, _common.ids_tensor
ConfigTester = import_hf_test_module("test_configuration_common").ConfigTester
# the stand-in (the sdist has no tests/generation/): the common tests check that generative models' tests inherit it
GenerationTesterMixin = import_hf_test_module("generation.test_utils").GenerationTesterMixin

VISION_CONFIGS = {
    "internvideo2": {"model_type": "videochat_internvideo2_vision"},
    "umt": {"model_type": "videochat_umt_vision"},
    "eva_gmhra": {"model_type": "videochat_eva_gmhra_vision", "num_gmhra_layers": 1, "gmhra_mlp_ratio": 1.5},
}
TEXT_CONFIGS = {
    "mistral": {"model_type": "mistral", "num_key_value_heads": 2, "head_dim": 8},
    "phi3": {"model_type": "phi3", "num_key_value_heads": 4},
    "llama": {"model_type": "llama", "num_key_value_heads": 4},
}

# The common tests look model classes up by NAME in transformers' static tables: the base model is exempt from the
# training tests only when it is in MODEL_MAPPING_NAMES, and `labels` are added only for heads listed in
# MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES. `AutoModel.register` does not touch these tables, so each test adds our
# names for its duration (not globally: the lazy Auto mappings would then try to import transformers.models.videochat).
NAME_TABLE_ENTRIES = {
    "MODEL_MAPPING_NAMES": "VideoChatModel",
    "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES": "VideoChatForConditionalGeneration",
}

# The slowest common tests, which exercise the LLM and the shared glue rather than the encoder, run on the first
# layout by default and on the other two under the `heavy` marker (see `heavy_tests` in tests/conftest.py).
HEAVY_ON_SECONDARY_LAYOUTS = (
    "test_eager_matches_sdpa_inference",
    "test_bc_torch_dtype",
    "test_model_outputs_equivalence",
    "test_enable_input_require_grads_with_gradient_checkpointing",
    "test_can_init_all_missing_weights",
    "test_attention_outputs",
    "test_training_gradient_checkpointing",
    "test_save_load",
    "test_resize_tokens_embeddings",
    "test_resize_embeddings_untied",
    "test_causal_lm_loss_honors_shift_labels",
    "test_feed_forward_chunking",
    "test_model_rope_scaling",
)


class VideoChatModelTester:
    """Tiny random configs and inputs: `[video placeholders][image placeholders][text]` per sample, one clip each."""

    def __init__(
        self,
        parent,
        encoder="internvideo2",
        text_model="mistral",
        batch_size=2,
        text_length=6,
        qformer_length=5,
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_frames=4,
        image_size=28,
        patch_size=14,
        num_query_tokens=2,
        num_extra_query_tokens=3,
    ):
        self.parent = parent
        self.qformer_takes_text = encoder != "eva_gmhra"
        self.batch_size = batch_size
        self.qformer_length = qformer_length
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_frames = num_frames
        self.image_size = image_size
        self.patch_size = patch_size
        self.num_channels = 3
        self.num_query_tokens = num_query_tokens
        self.num_extra_query_tokens = num_extra_query_tokens
        self.num_visual_tokens = num_query_tokens + num_extra_query_tokens
        self.seq_length = text_length + 2 * self.num_visual_tokens
        self.is_training = True
        self.pad_token_id, self.bos_token_id, self.eos_token_id = 0, 1, 2
        self.video_token_id, self.image_token_id = 3, 4
        self.vision_config = {
            "hidden_size": 32,
            "intermediate_size": 48,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": image_size,
            "patch_size": patch_size,
            "num_frames": num_frames,
            **VISION_CONFIGS[encoder],
        }
        self.qformer_config = {
            "model_type": "blip_2_qformer",
            "vocab_size": 50,
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 48,
            "max_position_embeddings": 32,
            "use_qformer_text_input": self.qformer_takes_text,
        }
        self.text_config = {
            "hidden_size": hidden_size,
            "intermediate_size": 64,
            "num_hidden_layers": num_hidden_layers,
            "num_attention_heads": num_attention_heads,
            "vocab_size": vocab_size,
            "max_position_embeddings": 512,
            "pad_token_id": self.pad_token_id,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            **TEXT_CONFIGS[text_model],
        }

    def get_config(self):
        return VideoChatConfig(
            vision_config=dict(self.vision_config),
            qformer_config=dict(self.qformer_config),
            text_config=dict(self.text_config),
            num_query_tokens=self.num_query_tokens,
            num_extra_query_tokens=self.num_extra_query_tokens,
            video_token_id=self.video_token_id,
            image_token_id=self.image_token_id,
        )

    def prepare_config_and_inputs_for_common(self):
        config = self.get_config()
        visual = self.num_visual_tokens
        input_ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size - 5) + 5  # no special ids
        input_ids[:, :visual] = self.video_token_id
        input_ids[:, visual : 2 * visual] = self.image_token_id
        size, frames, channels = self.image_size, self.num_frames, self.num_channels
        inputs = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "pixel_values_videos": floats_tensor([self.batch_size, frames, channels, size, size]),
            "pixel_values": floats_tensor([self.batch_size, channels, size, size]),
        }
        if self.qformer_takes_text:
            for modality in ("video", "image"):
                rows = ids_tensor([self.batch_size, self.qformer_length], 50)
                inputs[f"{modality}_qformer_input_ids"] = rows
                inputs[f"{modality}_qformer_attention_mask"] = torch.ones_like(rows)
        return config, inputs


class VideoChatMixinTests(ModelTesterMixin, GenerationTesterMixin):
    """The common tests; the `unittest.TestCase` subclasses below pick the layout."""

    all_model_classes = (VideoChatModel, VideoChatForConditionalGeneration)
    _is_composite = True  # as every in-tree VLM test (video_llava, qwen2_vl, vlm_tester.VLMModelTest)
    tester_kwargs: dict = {}

    def setUp(self):
        self.model_tester = VideoChatModelTester(self, **self.tester_kwargs)
        self.config_tester = ConfigTester(self, config_class=VideoChatConfig, has_text_modality=False)
        for table, class_name in NAME_TABLE_ENTRIES.items():
            patcher = mock.patch.dict(getattr(modeling_auto, table), {"videochat": class_name})
            patcher.start()
            self.addCleanup(patcher.stop)

    def test_config(self):
        self.config_tester.run_common_tests()

    # Precedent: tests/models/qwen3_5/test_modeling_qwen3_5.py skips it for the same reason ("Intentionally not
    # reversable (no changes) as only load time within a VLM depends on this"; Qwen3_5ModelTest: "Conversion only for
    # the `CausalLM` loading from saved `ConditionalLM`, doesn't apply to simple VLM").
    @unittest.skip(
        "The registered renaming only loads folders written by videochat 0.1.0; saving intentionally keeps the "
        "current names (`save_pretrained(save_original_format=False)`), so nothing is reversed (tests/test_layout.py "
        "loads the 0.1.0 folders, tests/test_modeling.py checks the saved names)"
    )
    def test_reverse_loading_mapping(self):
        pass


class VideoChatInternVideo2MistralTest(VideoChatMixinTests, unittest.TestCase):
    tester_kwargs = {"encoder": "internvideo2", "text_model": "mistral"}


class VideoChatUMTPhi3Test(VideoChatMixinTests, unittest.TestCase):
    tester_kwargs = {"encoder": "umt", "text_model": "phi3"}
    heavy_tests = HEAVY_ON_SECONDARY_LAYOUTS


class VideoChatEvaGmhraLlamaTest(VideoChatMixinTests, unittest.TestCase):
    tester_kwargs = {"encoder": "eva_gmhra", "text_model": "llama"}
    heavy_tests = HEAVY_ON_SECONDARY_LAYOUTS

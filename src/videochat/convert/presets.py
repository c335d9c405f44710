# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""One record per released model: everything that makes a converted folder that model.

Like timm's `default_cfgs`, every released checkpoint is one `Preset` built by `_preset(...)` from a few shared
building blocks. A record holds the real-size model config, the image-processor and processor settings, the chat
template, the tokenizer settings, the generation defaults and the original checkpoint layout. The core classes know
nothing of presets: `videochat convert` writes a record's settings into the converted folder, and the folder is the
preset from then on. A new family member is a record here, a key map in `key_maps/` and a template in
`chat_templates/`.

The InternVideo2 foundation models (stage-1 classifiers and distillation checkpoints, the stage-2 video-text model)
are `InternVideo2Preset` records in `INTERNVIDEO2_PRESETS`: what their checkpoints' shapes cannot tell (GELU flavour,
evaluation preprocessing). `ALL_PRESETS` / `all_preset_names()` list both kinds, the names `--preset` takes.
"""

from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path

from transformers import GenerationConfig

from ..configuration_videochat import VideoChatConfig
from ..image_processing_pil_videochat import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD, VideoChatImageProcessor
from ..processing_videochat import VideoChatProcessor, prepare_qformer_tokenizer


CHAT_TEMPLATE_DIR = Path(__file__).resolve().parent / "chat_templates"


@dataclass(frozen=True)
class Preset:
    """
    A released model.

    Attributes:
        name: the preset name (`videochat convert --preset`).
        original: the original release (hub repo or file) this record reproduces.
        layout: original checkpoint layout, i.e. which config reader and source files: `"internvideo2_chat"`,
            `"videochat2"` or `"videochat_v1"`.
        key_map: name of the key map in `key_maps.KEY_MAPS`.
        original_class: the original model class (`model_cls` of the original config).
        config: `VideoChatConfig` fields at real size.
        image_processor: `VideoChatImageProcessor` settings.
        processor: `VideoChatProcessor` settings.
        chat_template: template file in `chat_templates/`.
        tokenizer: settings of the original slow LLM tokenizer, used when the source has no `tokenizer_config.json`
            (`None`: no exact-id sentencepiece conversion for this LLM).
        generation: `GenerationConfig` fields of the original chat code.
        is_hd: whether the model tiles frames (its original config or path says HD).
        requires_llm_config: conversion needs the LLM's own `config.json` (`--llm DIR` or `lm_config/`): the
            record's `text_config` is a stand-in for shapes and key checks only (InternLM2.5: the base LLM's rope
            settings are not assumed).
    """

    name: str
    original: str
    layout: str
    key_map: str
    original_class: str
    config: dict
    image_processor: dict
    processor: dict
    chat_template: str
    tokenizer: dict | None
    generation: dict
    is_hd: bool = False
    requires_llm_config: bool = False
    notes: tuple[str, ...] = field(default=())


# ---------------------------------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------------------------------

INTERNVIDEO2_1B_VISION = {
    "model_type": "videochat_internvideo2_vision",
    "hidden_size": 1408,
    "intermediate_size": 6144,
    "num_hidden_layers": 39,  # 40-layer InternVideo2-1B, features of the penultimate block: only 39 are built
    "num_attention_heads": 16,
    "image_size": 224,
    "patch_size": 14,
    "num_frames": 8,
    "layer_norm_eps": 1e-6,
    "attention_bias": False,
    "use_qk_norm": True,
    "layer_scale_init_value": 1e-5,
    "post_layernorm_eps": 1e-12,
}
UMT_L16_VISION = {
    "model_type": "videochat_umt_vision",
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 23,  # UMT-L has 24 blocks; the returned feature is block 23's, only 23 are built
    "num_attention_heads": 16,
    "image_size": 224,
    "patch_size": 16,
    "num_frames": 4,  # the sinusoid table is built for 4 frames and resampled in time
    "layer_norm_eps": 1e-6,
    "qv_bias": True,
    "post_layernorm_eps": 1e-12,
}
EVA_VIT_G_GMHRA_VISION = {
    "model_type": "videochat_eva_gmhra_vision",
    "hidden_size": 1408,
    "intermediate_size": 6144,
    "num_hidden_layers": 39,
    "num_attention_heads": 16,
    "image_size": 224,
    "patch_size": 14,
    "num_frames": 8,
    "layer_norm_eps": 1e-6,
    "qv_bias": True,
    "num_gmhra_layers": 8,
    "gmhra_mlp_ratio": 4.3637,  # the GMHRA MLP reuses EVA's mlp_ratio: round(1408 * 4.3637) = 6144
    "gmhra_layer_norm_eps": 1e-5,
    "post_layernorm_eps": 1e-5,
    "post_layernorm_fp32": True,
}
BERT_BASE_QFORMER = {
    "model_type": "blip_2_qformer",
    "vocab_size": 30523,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 512,
    "cross_attention_frequency": 2,
    "use_qformer_text_input": True,
}
TEXT_FREE_QFORMER = {**BERT_BASE_QFORMER, "use_qformer_text_input": False, "vocab_size": 30522}

MISTRAL_7B_INSTRUCT_V03 = {
    "model_type": "mistral",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 32768,
    "max_position_embeddings": 32768,
    "rope_theta": 1e6,
    "rms_norm_eps": 1e-5,
    "sliding_window": None,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "tie_word_embeddings": False,
}
MISTRAL_7B_INSTRUCT_V02 = {**MISTRAL_7B_INSTRUCT_V03, "vocab_size": 32000}
VICUNA_7B_V0 = {
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32001,
    "max_position_embeddings": 2048,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-6,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "tie_word_embeddings": False,
}
STABLE_VICUNA_13B = {
    **VICUNA_7B_V0,
    "hidden_size": 5120,
    "intermediate_size": 13824,
    "num_hidden_layers": 40,
    "num_attention_heads": 40,
    "num_key_value_heads": 40,
}
# Phi-3-mini-128k-instruct uses longrope scaling with 48 short/long factors that only its own config.json carries; the
# record (used for meta-device instantiation and key checks) leaves them out. Conversion always takes the text config
# from the base LLM folder, which restores them.
PHI3_MINI_128K = {
    "model_type": "phi3",
    "hidden_size": 3072,
    "intermediate_size": 8192,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32064,
    "max_position_embeddings": 131072,
    "original_max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "sliding_window": 262144,
    "bos_token_id": 1,
    "eos_token_id": 32000,
    "pad_token_id": 32000,
    "tie_word_embeddings": False,
}
# InternLM2.5-7B-chat's config.json rewritten as Llama, for meta-device instantiation and key checks. The released
# model was trained on internlm2_5-7b-chat-1m (STEP configs), whose rope settings differ: conversion always replaces
# this with the LLM's own config.json (the preset's `requires_llm_config`).
INTERNLM2_5_7B_AS_LLAMA = {
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 92544,
    "max_position_embeddings": 32768,
    "rope_theta": 1e6,
    "rope_scaling": {"rope_type": "dynamic", "factor": 2.0},
    "rms_norm_eps": 1e-5,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "tie_word_embeddings": False,
}

INTERNVIDEO2_HD_FRAMES = {
    "hd_mode": "internvideo2_hd",
    "hd_num": 6,
    "fix_ratio": (2, 1),
    "hd_padding": False,
    "image_mean": IMAGENET_MEAN,
    "image_std": IMAGENET_STD,
    "image_resize_mode": "video",
    "num_frames": 8,
}
PIL_CLIP_FRAMES = {
    "hd_mode": "none",
    "resize_mode": "pil",
    "image_mean": CLIP_MEAN,
    "image_std": CLIP_STD,
    "image_resize_mode": "square",
}

# InternVideo2-Chat `chat()`: BOS on every segment, one "<Video>...</Video>" per clip, Q-Former text only if given.
INTERNVIDEO2_CHAT_PROCESSOR = {
    "add_bos_to_every_segment": True,
    "video_qformer_instruction": None,
    "image_qformer_instruction": None,
}
TEXT_FREE_QFORMER_PROCESSOR = {
    "qformer_instruction_mode": "none",
    "video_qformer_instruction": None,
    "image_qformer_instruction": None,
}

SAMPLING = {"do_sample": True, "top_p": 0.9, "top_k": 0, "temperature": 1.0}
GREEDY = {"do_sample": False}
# `top_k=0` is "no top-k" (the originals pass `top_k=None`); `min_length=1` on inputs_embeds-only generation is
# `min_new_tokens=1`. Stop ids: the LLM's EOS plus the single-token stops of the demos; pad is never the placeholder.
COMMON_GENERATION = {
    "num_beams": 1,
    "min_new_tokens": 1,
    "repetition_penalty": 1.0,
    "length_penalty": 1.0,
    "bos_token_id": 1,
}

# Settings of the original slow tokenizers, used when the source folder has no `tokenizer_config.json`.
MISTRAL_V03_TOKENIZER = {"legacy": False, "pad_token": "<unk>"}  # as the InternVideo2-Chat-8B hub config sets it
MISTRAL_V02_TOKENIZER = {"legacy": True, "pad_token": "</s>"}  # assumed, see the tokenizer fixture README
LLAMA_TOKENIZER = {"legacy": True, "pad_token": "</s>"}  # LlamaTokenizer of 2023 (Vicuna v0, StableVicuna)
# InternLM2.5-7B-chat(-1m) hub `tokenizer_config.json`: `InternLM2Tokenizer` (remote code), pad `</s>`, the chat
# tokens renaming the last six sentencepiece pieces. Only used when the LLM folder has no `tokenizer_config.json`.
INTERNLM2_TOKENIZER = {
    "tokenizer_class": "InternLM2Tokenizer",
    "pad_token": "</s>",
    "added_tokens_decoder": {
        92538: "<|plugin|>",
        92539: "<|interpreter|>",
        92540: "<|action_end|>",
        92541: "<|action_start|>",
        92542: "<|im_end|>",
        92543: "<|im_start|>",
    },
    "additional_special_tokens": [
        "<|im_start|>",
        "<|im_end|>",
        "<|action_start|>",
        "<|action_end|>",
        "<|interpreter|>",
        "<|plugin|>",
    ],
}
PHI3_TOKENIZER = {
    "legacy": False,
    "eos_token": "<|endoftext|>",
    "pad_token": "<|endoftext|>",
    "added_tokens_decoder": {
        32000: {"content": "<|endoftext|>", "rstrip": False},
        **{
            index: {"content": content, "rstrip": True}
            for index, content in {
                32001: "<|assistant|>",
                32002: "<|placeholder1|>",
                32003: "<|placeholder2|>",
                32004: "<|placeholder3|>",
                32005: "<|placeholder4|>",
                32006: "<|system|>",
                32007: "<|end|>",
                32008: "<|placeholder5|>",
                32009: "<|placeholder6|>",
                32010: "<|user|>",
            }.items()
        },
    },
}


def _preset(
    name: str, *, vision: dict, text: dict, qformer: dict = BERT_BASE_QFORMER, generation: dict, **fields
) -> Preset:
    config = {
        "vision_config": vision,
        "qformer_config": qformer,
        "text_config": text,
        "num_query_tokens": 32,
        "num_extra_query_tokens": 64,
    }
    return Preset(name=name, config=config, generation={**COMMON_GENERATION, **generation}, **fields)


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        _preset(
            "internvideo2-chat-8b-hd",
            original="OpenGVLab/InternVideo2_chat_8B_HD",
            layout="internvideo2_chat",
            key_map="internvideo2_chat",
            original_class="InternVideo2_VideoChat2",
            is_hd=True,
            vision=INTERNVIDEO2_1B_VISION,
            text=MISTRAL_7B_INSTRUCT_V03,
            image_processor=INTERNVIDEO2_HD_FRAMES,
            processor={
                **INTERNVIDEO2_CHAT_PROCESSOR,
                "video_clip_separator": "</Video><Video>",
                "image_clip_separator": "</Image><Image>",
            },
            chat_template="internvideo2_chat_mistral.jinja",
            tokenizer=MISTRAL_V03_TOKENIZER,
            generation={**SAMPLING, "max_new_tokens": 200, "eos_token_id": 2, "pad_token_id": 2},
        ),
        _preset(
            "internvideo2-chat-8b",
            original="OpenGVLab/InternVideo2-Chat-8B",
            layout="internvideo2_chat",
            key_map="internvideo2_chat",
            original_class="InternVideo2_VideoChat2",
            vision=INTERNVIDEO2_1B_VISION,
            text=MISTRAL_7B_INSTRUCT_V03,
            image_processor={
                "hd_mode": "none",
                "resize_mode": "torch_antialias",
                "image_mean": IMAGENET_MEAN,
                "image_std": IMAGENET_STD,
                "image_resize_mode": "video",
                "num_frames": 8,
            },
            processor={**INTERNVIDEO2_CHAT_PROCESSOR, "qformer_instruction_mode": "none"},
            chat_template="internvideo2_chat_mistral.jinja",
            tokenizer=MISTRAL_V03_TOKENIZER,
            generation={**SAMPLING, "max_new_tokens": 200, "eos_token_id": 2, "pad_token_id": 2},
        ),
        _preset(
            "internvideo2-chat-8b-internlm2_5",
            original="OpenGVLab/InternVideo2_Chat_8B_InternLM2_5",
            layout="internvideo2_chat",
            key_map="internvideo2_chat_internlm2",
            original_class="InternVideo2_VideoChat2",
            is_hd=True,
            vision=INTERNVIDEO2_1B_VISION,
            text=INTERNLM2_5_7B_AS_LLAMA,
            # [unverified] the variant's own load_video was not found; third-party code uses HD with hd_num 6.
            image_processor=INTERNVIDEO2_HD_FRAMES,
            # STEP `it_dataset_internlm_hd.py`: "<vid>...</vid>" per clip, every segment without special tokens.
            processor={
                **INTERNVIDEO2_CHAT_PROCESSOR,
                "add_bos_to_every_segment": False,
                "add_bos_to_first_segment": False,
                "video_clip_separator": "</vid><vid>",
                "image_clip_separator": "</img><img>",
            },
            chat_template="internvideo2_chat_internlm2.jinja",
            tokenizer=INTERNLM2_TOKENIZER,
            # [unverified] same generate_caption; the model learnt to end an answer with <|im_end|> (92542).
            generation={**SAMPLING, "max_new_tokens": 200, "eos_token_id": [2, 92542], "pad_token_id": 2},
            requires_llm_config=True,
            notes=(
                "the hub chat() of this variant was not available: template, BOS rule and preprocessing follow the "
                "STEP training code (it_dataset_internlm_hd.py)",
                "the LLM config (1M-context rope of internlm2_5-7b-chat-1m) is read from the LLM's config.json",
            ),
        ),
        _preset(
            "videochat2-vicuna-7b",
            original="VideoChat2 stage 3 (videochat2_7b_stage3.pth)",
            layout="videochat2",
            key_map="videochat2_vicuna",
            original_class="VideoChat2_it",
            vision=UMT_L16_VISION,
            text=VICUNA_7B_V0,
            image_processor={**PIL_CLIP_FRAMES, "num_frames": 16},
            processor={},
            chat_template="vicuna.jinja",
            tokenizer=LLAMA_TOKENIZER,
            generation={**GREEDY, "max_new_tokens": 256, "eos_token_id": [2, 835], "pad_token_id": 2},
        ),
        _preset(
            "videochat2-mistral-7b",
            original="OpenGVLab/VideoChat2_stage3_Mistral_7B",
            layout="videochat2",
            key_map="videochat2_mistral",
            original_class="VideoChat2_it_mistral",
            vision=UMT_L16_VISION,
            text=MISTRAL_7B_INSTRUCT_V02,
            image_processor={**PIL_CLIP_FRAMES, "num_frames": 16},
            processor={},
            chat_template="mistral.jinja",
            tokenizer=MISTRAL_V02_TOKENIZER,
            generation={**GREEDY, "max_new_tokens": 512, "eos_token_id": 2, "pad_token_id": 2},
        ),
        _preset(
            "videochat2-hd-mistral-7b",
            original="OpenGVLab/VideoChat2_HD_stage4_Mistral_7B",
            layout="videochat2",
            key_map="videochat2_mistral",
            original_class="VideoChat2_it_hd_mistral",
            is_hd=True,
            vision=UMT_L16_VISION,
            text=MISTRAL_7B_INSTRUCT_V02,
            # demo_mistral_hd.ipynb: hd_num 12, closest grid, ImageNet statistics.
            image_processor={
                "hd_mode": "videochat2_hd",
                "hd_num": 12,
                "fix_ratio": None,
                "hd_padding": False,
                "image_mean": IMAGENET_MEAN,
                "image_std": IMAGENET_STD,
                "image_resize_mode": "video",
                "num_frames": 16,
            },
            # The demo passes the instruction as a string that encode_img indexes per sample: the Q-Former sees its
            # first character only. qformer_instruction_mode="full" gives the training-time behaviour.
            processor={"qformer_instruction_mode": "first_char"},
            chat_template="mistral.jinja",
            tokenizer=MISTRAL_V02_TOKENIZER,
            generation={**GREEDY, "max_new_tokens": 512, "eos_token_id": 2, "pad_token_id": 2},
        ),
        _preset(
            "videochat2-phi3-mini",
            original="OpenGVLab/VideoChat2_stage4_Phi3",
            layout="videochat2",
            key_map="videochat2_phi",
            original_class="VideoChat2_it_phi",
            vision=UMT_L16_VISION,
            text=PHI3_MINI_128K,
            # demo_phi.ipynb: videos with norm="vit" (ImageNet), images with CLIP statistics.
            image_processor={
                "hd_mode": "none",
                "resize_mode": "pil",
                "image_mean": IMAGENET_MEAN,
                "image_std": IMAGENET_STD,
                "image_resize_mode": "square",
                "image_image_mean": CLIP_MEAN,
                "image_image_std": CLIP_STD,
                "num_frames": 16,
            },
            processor={"add_time_message": True},
            chat_template="phi3.jinja",
            tokenizer=PHI3_TOKENIZER,
            generation={**GREEDY, "max_new_tokens": 128, "eos_token_id": [32000, 32007], "pad_token_id": 32000},
        ),
        _preset(
            "videochat-7b",
            original="VideoChat v1 (videochat_7b.pth + eva_vit_g.pth + BLIP-2)",
            layout="videochat_v1",
            key_map="videochat_v1",
            original_class="VideoChat",
            vision=EVA_VIT_G_GMHRA_VISION,
            text=VICUNA_7B_V0,
            qformer=TEXT_FREE_QFORMER,
            image_processor={**PIL_CLIP_FRAMES, "num_frames": 8},
            processor={**TEXT_FREE_QFORMER_PROCESSOR, "add_time_message": True},
            chat_template="vicuna.jinja",
            tokenizer=LLAMA_TOKENIZER,
            generation={**SAMPLING, "max_new_tokens": 1000, "eos_token_id": [2, 835], "pad_token_id": 2},
        ),
        _preset(
            "videochat-13b",
            original="VideoChat v1 (videochat_13b.pth + eva_vit_g.pth + BLIP-2)",
            layout="videochat_v1",
            key_map="videochat_v1",
            original_class="VideoChat",
            vision=EVA_VIT_G_GMHRA_VISION,
            text=STABLE_VICUNA_13B,
            qformer=TEXT_FREE_QFORMER,
            image_processor={**PIL_CLIP_FRAMES, "num_frames": 8},
            processor={**TEXT_FREE_QFORMER_PROCESSOR, "add_time_message": True},
            chat_template="vicuna.jinja",
            tokenizer=LLAMA_TOKENIZER,
            generation={**SAMPLING, "max_new_tokens": 1000, "eos_token_id": [2, 835], "pad_token_id": 2},
        ),
    )
}


# ---------------------------------------------------------------------------------------------------------------------
# InternVideo2 foundation models (`videochat convert`, alias `videochat convert-internvideo2`)
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InternVideo2Preset:
    """
    A released InternVideo2 foundation checkpoint.

    Attributes:
        name: preset name (`videochat convert --preset`).
        original: the released file.
        kind: `"classifier"` (stage-1 fine-tune), `"features"` (stage-1 distillation checkpoint: tower + pooling,
            no classifier) or `"video_text"` (stage 2).
        factory: the original factory (documents the hard-coded dimensions).
        gelu: `"tanh"` or `"exact"`, the GELU of the code path the released numbers come from.
        eval_protocol: image processor settings reproducing the original evaluation (or demo) preprocessing.
        notes: caveats shown by the converter.
    """

    name: str
    original: str
    kind: str
    factory: str
    gelu: str
    eval_protocol: dict
    notes: tuple[str, ...] = field(default=())


KINETICS_SINGLE_VIEW = {
    "frame_sampling": "kinetics",
    "num_temporal_clips": 1,
    "num_spatial_crops": 1,
    "resize_mode": "shortest_edge_bilinear",
}
STAGE2_DEMO = {"frame_sampling": "stride", "resize_mode": "squash_bilinear", "normalize_in_float64": True}
SSV2_NOTE = (
    "the original SSv1/SSv2 evaluation reads raw frames with its own sampling (datasets/ssv2.py), which the "
    "processor does not reproduce; the Kinetics rule is configured instead"
)


def _internvideo2_stage1(size: str, factory: str, original: str, dataset: str) -> InternVideo2Preset:
    notes = (SSV2_NOTE,) if dataset.startswith("ss") else ()
    name = f"internvideo2-stage1-{size.lower()}-{dataset}"
    return InternVideo2Preset(name, original, "classifier", factory, "tanh", KINETICS_SINGLE_VIEW, notes)


_1B = "internvideo2_1B_patch14_224"
_1B_REPO = "OpenGVLab/InternVideo2-Stage1-1B-224p"
_DISTILLED = "OpenGVLab/InternVideo2_distillation_models/stage1"
INTERNVIDEO2_PRESETS: dict[str, InternVideo2Preset] = {
    preset.name: preset
    for preset in (
        _internvideo2_stage1("1B", _1B, f"{_1B_REPO}-f8-K400/1B_ft_k710_ft_k400_f8.pth", "k400-f8"),
        _internvideo2_stage1("1B", _1B, f"{_1B_REPO}-f16-K400/1B_ft_k710_ft_k400_f16.pth", "k400-f16"),
        _internvideo2_stage1("1B", _1B, f"{_1B_REPO}-f8-K600/1B_ft_k710_ft_k600_f8.pth", "k600-f8"),
        _internvideo2_stage1("1B", _1B, f"{_1B_REPO}-f16-K600/1B_ft_k710_ft_k600_f16.pth", "k600-f16"),
        _internvideo2_stage1("1B", _1B, f"{_1B_REPO}-f8-K700/1B_ft_k710_ft_k700_f8.pth", "k700-f8"),
        _internvideo2_stage1("1B", _1B, f"{_1B_REPO}-f16-K700/1B_ft_k710_ft_k700_f16.pth", "k700-f16"),
        _internvideo2_stage1("1B", _1B, f"{_1B_REPO}-f8-K710/1B_ft_k710_f8.pth", "k710-f8"),
        _internvideo2_stage1("1B", _1B, f"{_1B_REPO}-f8-MiT/1B_ft_k710_ft_k400_ft_mit_f8.pth", "mit-f8"),
        _internvideo2_stage1("1B", _1B, f"{_1B_REPO}-f8-SSv2/1B_ft_ssv2_f8.pth", "ssv2-f8"),
        _internvideo2_stage1("1B", _1B, f"{_1B_REPO}-f8-SSv1/1B_ft_ssv1_f8.pth", "ssv1-f8"),
        *(
            _internvideo2_stage1(
                size,
                f"internvideo2_{factory}_patch14_224",
                f"{_DISTILLED}/{size}/{size}_ft_k710_ft_k400_f8/pytorch_model.bin",
                "k400-f8",
            )
            for size, factory in (("S14", "small"), ("B14", "base"), ("L14", "large"))
        ),
        *(
            InternVideo2Preset(
                f"internvideo2-stage1-{size.lower()}-distilled",
                f"{_DISTILLED}/{size}/{size}_dist_1B_stage2/pytorch_model.bin",
                "features",
                f"distill_internvideo2_{factory}_patch14_224",
                "tanh",
                KINETICS_SINGLE_VIEW,
                ("a distillation checkpoint: features only, it has no classifier",),
            )
            for size, factory in (("S14", "small"), ("B14", "base"), ("L14", "large"))
        ),
        InternVideo2Preset(
            "internvideo2-stage2-1b-f4",
            "OpenGVLab/InternVideo2-Stage2_1B-224p-f4/InternVideo2-stage2_1b-224p-f4.pt",
            "video_text",
            "pretrain_internvideo2_1b_patch14_224 + bert-large-uncased (fusion_layer 19)",
            "exact",
            STAGE2_DEMO,
            (
                "exact GELU as the stage-2 demo; its evaluation config ran the fused branch (--gelu tanh)",
                "preprocessing: the demo's (frames from index 0 with stride, cv2 bilinear squash, float64 "
                "normalisation)",
            ),
        ),
    )
}

# the record used when no --preset is given, per detected kind (dimensions come from the shapes)
GENERIC_INTERNVIDEO2_PRESETS = {
    "classifier": "internvideo2-stage1-1b-k400-f8",
    "features": "internvideo2-stage1-l14-distilled",
    "video_text": "internvideo2-stage2-1b-f4",
}

# every released model, by the name `videochat convert --preset` takes
ALL_PRESETS: dict[str, Preset | InternVideo2Preset] = {**PRESETS, **INTERNVIDEO2_PRESETS}


# ---------------------------------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------------------------------


def preset_names() -> list[str]:
    return sorted(PRESETS)


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(preset_names())}")
    return PRESETS[name]


def presets_with_layout(layout: str) -> list[Preset]:
    return [preset for preset in PRESETS.values() if preset.layout == layout]


def all_preset_names() -> list[str]:
    """Every released model `videochat convert --preset` knows: the chat models and the InternVideo2 foundation
    models."""
    return sorted(ALL_PRESETS)


def internvideo2_preset_names() -> list[str]:
    return sorted(INTERNVIDEO2_PRESETS)


def get_internvideo2_preset(name: str) -> InternVideo2Preset:
    if name not in INTERNVIDEO2_PRESETS:
        raise ValueError(f"unknown InternVideo2 preset {name!r}; choose one of {internvideo2_preset_names()}")
    return INTERNVIDEO2_PRESETS[name]


def is_internvideo2_preset(name: str | None) -> bool:
    return name in INTERNVIDEO2_PRESETS


def build_config(name: str, **overrides) -> VideoChatConfig:
    """The real-size `VideoChatConfig` of preset `name`; `overrides` replace top-level fields or, given as dicts,
    are merged into `vision_config` / `qformer_config` / `text_config`."""
    fields = deepcopy(get_preset(name).config)
    for key, value in overrides.items():
        if key in ("vision_config", "qformer_config", "text_config") and isinstance(value, dict):
            fields[key] = {**fields[key], **value}
        else:
            fields[key] = value
    fields.setdefault("preset", name)
    return VideoChatConfig(**fields)


def load_chat_template(name: str) -> str:
    """The Jinja chat template of preset `name`."""
    return (CHAT_TEMPLATE_DIR / get_preset(name).chat_template).read_text(encoding="utf-8")


def build_image_processor(name: str, **overrides) -> VideoChatImageProcessor:
    """The image processor of preset `name` (frame count, normalisation, HD tiling), `overrides` applied."""
    return VideoChatImageProcessor(**{**get_preset(name).image_processor, **overrides})


def build_processor(
    name: str, tokenizer, qformer_tokenizer=None, image_processor=None, **overrides
) -> VideoChatProcessor:
    """The processor of preset `name`: chat template, segment BOS rule, Q-Former instruction behaviour and (unless
    `image_processor` is given) the preset's image processor. `overrides` replace processor init arguments."""
    preset = get_preset(name)
    if image_processor is None:
        image_processor = build_image_processor(name)
    if qformer_tokenizer is not None:
        prepare_qformer_tokenizer(qformer_tokenizer)
    settings = {"chat_template": load_chat_template(name), **preset.processor, **overrides}
    return VideoChatProcessor(image_processor, tokenizer, qformer_tokenizer, **settings)


def build_generation_config(name: str) -> GenerationConfig:
    """The generation defaults of the original chat code of preset `name`."""
    return GenerationConfig(**get_preset(name).generation)


__all__ = [
    "ALL_PRESETS",
    "GENERIC_INTERNVIDEO2_PRESETS",
    "INTERNVIDEO2_PRESETS",
    "InternVideo2Preset",
    "PRESETS",
    "Preset",
    "all_preset_names",
    "build_config",
    "build_generation_config",
    "build_image_processor",
    "build_processor",
    "get_internvideo2_preset",
    "get_preset",
    "internvideo2_preset_names",
    "is_internvideo2_preset",
    "load_chat_template",
    "preset_names",
    "presets_with_layout",
]

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""VideoChat2 (Vicuna, Mistral, HD-Mistral, Phi-3) and VideoChat v1: fixture parity, full-size key maps on the meta
device, the UMT encoder at several frame counts, HD batching and the image path."""

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from videochat import VideoChatForConditionalGeneration
from videochat.convert.checkpoint_io import CombinedSources
from videochat.convert.key_maps import key_map_for
from videochat.convert.keymap import UnknownKeysError, convert_shapes, convert_state_dict
from videochat.convert.original_config import lora_scaling, videochat2_config
from videochat.convert.presets import build_config, get_preset
from videochat.convert.sources import detect_preset, open_source
from videochat.parity import run_fixture
from videochat.parity.common import build_converted_model as build_converted_model_and_source
from videochat.parity.videochat2 import hd_clips


SHARED = Path(os.environ.get("VIDEOCHAT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
FIXTURES = SHARED / "fixtures" / "videochat2"
KEYS = SHARED / "specs" / "keys"
FIXTURE_NAMES = [
    "videochat2_it_vicuna",
    "videochat2_it_mistral",
    "videochat2_it_hd_mistral",
    "videochat2_it_phi",
    "videochat_v1",
]
# manifest -> (variant, preset, LoRA-adapted modules per the spec: (layers x modules) + lm_head)
MANIFESTS = {
    "videochat2_it_vicuna": ("vicuna", "videochat2-vicuna-7b", 32 * 2),
    "videochat2_it_mistral": ("mistral", "videochat2-mistral-7b", 32 * 7 + 1),
    "videochat2_it_hd_mistral": ("hd_mistral", "videochat2-hd-mistral-7b", 32 * 7 + 1),
    "videochat2_it_phi": ("phi", "videochat2-phi3-mini", 32 * 2 + 1),
    "videochat_v1_7b": ("v1", "videochat-7b", 0),
    "videochat_v1_13b": ("v1", "videochat-13b", 0),
}


VARIANT_PRESETS = {
    "vicuna": "videochat2-vicuna-7b",
    "mistral": "videochat2-mistral-7b",
    "hd_mistral": "videochat2-hd-mistral-7b",
    "phi": "videochat2-phi3-mini",
    "v1": "videochat-7b",
}


def combined_sources(variant: str, stage, llm, eva=None, blip2=None):
    """The key map of `variant` and the original files in the one namespace it reads (as `open_source` builds it)."""
    preset = get_preset(VARIANT_PRESETS[variant])
    key_map = key_map_for(preset, build_config(preset.name))
    parts = [("", stage)]
    if preset.layout == "videochat_v1":
        parts += [("visual_encoder.", eva), ("blip2.", blip2)]
    return key_map, CombinedSources([*parts, (key_map.llm_prefix(stage), llm)])


def build_converted_model(folder: Path):
    return build_converted_model_and_source(folder)[0]


def fixture_dir(name: str) -> Path:
    path = FIXTURES / name
    if not path.is_dir():
        raise FileNotFoundError(f"fixture folder missing: {path} (set VIDEOCHAT_SHARED to the shared/ folder)")
    return path


@pytest.fixture(scope="module")
def vicuna():
    folder = fixture_dir("videochat2_it_vicuna")
    return (
        build_converted_model(folder),
        load_file(folder / "inputs.safetensors"),
        load_file(folder / "expected.safetensors"),
    )


@pytest.fixture(scope="module")
def hd_mistral():
    folder = fixture_dir("videochat2_it_hd_mistral")
    return (
        build_converted_model(folder),
        load_file(folder / "inputs.safetensors"),
        load_file(folder / "expected.safetensors"),
    )


# ------------------------------------------------------------------------------------------------- fixture parity


@pytest.mark.heavy
@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_parity_passes_on_fixture(name):
    report = run_fixture(fixture_dir(name))
    assert report["ok"], report["failures"]
    assert report["greedy_equal"]
    compared = report["tensors"]
    assert any(key.endswith(".logits") for key in compared) and any(
        key.endswith(".vision_encoder_out") for key in compared
    )
    assert all(value <= 1e-5 for key, value in compared.items() if not key.endswith(".logits")), compared
    # the checker also re-derives the preprocessing from the raw frames and recorded prompts
    for key in (
        "preprocessing.frame_indices",
        "preprocessing.pixel_values",
        "preprocessing.image_pixel_values",
        "chat.preprocessing.input_ids",
        "image.preprocessing.input_ids",
    ):
        assert compared[key] == 0.0, key


# ------------------------------------------------------------------------------------- full-size key maps (meta)


def _file_key(note: str) -> str:
    """`"eva_vit_g.pth: patch_embed.proj.weight (2-D ...)"` -> `patch_embed.proj.weight`."""
    return re.split(r"\s+\(", note.split(": ", 1)[1], maxsplit=1)[0].strip()


def manifest_sources(manifest: dict) -> tuple[dict, dict, dict, dict]:
    """Per original file, `{key in that file: shape}` as the manifest documents them."""
    stage, llm, eva, blip2 = {}, {}, {}, {}
    for key, entry in manifest["keys"].items():
        shape = tuple(entry["shape"])
        source = entry.get("from_file", "")
        if entry["in_released_stage_checkpoint"]:
            stage[key] = shape
        elif "from_llm_checkpoint" in entry:
            llm[entry["from_llm_checkpoint"]] = shape
        elif source.startswith("eva_vit_g.pth"):
            # the file stores the patch embedding 2-D; the manifest shows the inflated model shape
            eva[_file_key(source)] = shape[:2] + shape[3:] if "2-D" in source else shape
        elif source.startswith("blip2_"):
            blip2[_file_key(source)] = shape
        else:
            raise AssertionError(f"manifest key {key} has no documented source: {entry}")
    if blip2:
        # the BLIP-2 file also holds its own ln_vision (spec section 4), superseded by the VideoChat file's
        width = stage["ln_vision.weight"]
        blip2.update({"ln_vision.weight": width, "ln_vision.bias": width})
    return stage, llm, eva, blip2


@pytest.mark.parametrize("manifest_name", sorted(MANIFESTS))
def test_full_size_key_map_matches_preset(manifest_name):
    variant, preset, num_lora_folds = MANIFESTS[manifest_name]
    manifest = json.loads((KEYS / f"{manifest_name}.json").read_text())
    stage, llm, eva, blip2 = manifest_sources(manifest)
    key_map, sources = combined_sources(variant, stage, llm, eva or None, blip2 or None)

    ours = convert_shapes(key_map, sources)  # raises UnknownKeysError on any unmapped, undropped key
    with torch.device("meta"):
        model = VideoChatForConditionalGeneration(build_config(preset))
    wanted = {key: tuple(tensor.shape) for key, tensor in model.state_dict().items()}

    assert sorted(set(wanted) - set(ours)) == []
    assert sorted(set(ours) - set(wanted)) == []
    assert [key for key in wanted if wanted[key] != ours[key]] == []
    plan = key_map.plan(sources.keys())
    assert sum(op.lora_a is not None for op in plan.operations) == num_lora_folds
    assert any(key.endswith("position_ids") for key in plan.dropped)
    if variant == "v1":
        assert {"blip2.ln_vision.weight", "blip2.ln_vision.bias"} <= set(plan.dropped)


def test_unknown_stage_key_is_reported_by_name():
    stage = {"query_tokens": (1, 4, 8), "some_new_module.weight": (3, 3)}
    key_map, sources = combined_sources("mistral", stage, {})
    with pytest.raises(UnknownKeysError, match="some_new_module.weight"):
        key_map.plan(sources.keys())


def test_v1_conversion_needs_eva_and_blip2_files(tmp_path):
    folder = tmp_path / "v1"
    folder.mkdir()
    for item in fixture_dir("videochat_v1").iterdir():
        if item.name != "eva_vit_g.pth":
            (folder / item.name).symlink_to(item)
    with pytest.raises(FileNotFoundError, match="eva_vit_g"):
        open_source(folder)


def test_real_ask_anything_config_gives_the_preset_sizes():
    umt = {
        "name": "vit_l14",
        "img_size": 224,
        "patch_size": 16,
        "d_model": 1024,
        "encoder_embed_dim": 1024,
        "encoder_depth": 24,
        "encoder_num_heads": 16,
        "drop_path_rate": 0.0,
        "num_frames": 8,
        "tubelet_size": 1,
        "return_index": -2,
        "vit_add_ln": True,
        "ckpt_num_frame": 4,
    }
    mistral_hd = {
        "model": {
            "model_cls": "VideoChat2_it_hd_mistral",
            "mistral_model_path": "x",
            "vision_encoder": umt,
            "num_query_token": 32,
            "extra_num_query_token": 64,
            "qformer_text_input": True,
            "dynamic_config": {"local_size": 224, "hd_num": 6, "padding": False, "add_global": True},
        },
        "device": "cuda",
    }
    preset = detect_preset(Path("x.pth"), mistral_hd, ())
    config = videochat2_config(mistral_hd, preset)
    assert preset.name == "videochat2-hd-mistral-7b" and config.preset == "videochat2-hd-mistral-7b"
    assert config.vision_config.num_hidden_layers == 23 and config.vision_config.hidden_size == 1024
    assert config.vision_config.num_frames == 4  # the UMT table is always built for 4 frames
    assert config.num_visual_queries == 96 and config.qformer_config.encoder_hidden_size == 1024
    v1 = {
        "model": {
            "vit_model": "eva_clip_g",
            "img_size": 224,
            "num_query_token": 32,
            "gmhra_layers": 8,
            "extra_num_query_token": 64,
            "no_lmhra": True,
        }
    }
    llm_config = {
        "model_type": "llama",
        "hidden_size": 5120,
        "intermediate_size": 13824,
        "num_hidden_layers": 40,
        "num_attention_heads": 40,
        "vocab_size": 32001,
    }
    config = videochat2_config(v1, detect_preset(Path("x.pth"), v1, (), llm_config), llm_config)
    assert config.preset == "videochat-13b" and not config.qformer_takes_text
    assert config.vision_config.num_gmhra_layers == 8 and config.text_config.hidden_size == 5120


def test_v1_files_convert_and_ln_vision_comes_from_the_videochat_file():
    folder = fixture_dir("videochat_v1")
    model, source = build_converted_model_and_source(folder)  # raises on any missing / unexpected key
    plan = source.key_map.plan(source.checkpoint.keys())
    videochat_ln = torch.load(folder / "original_checkpoint.pth", weights_only=True)["model"]["ln_vision.weight"]
    blip2_ln = torch.load(folder / "blip2_qformer.pth", weights_only=True)["model"]["ln_vision.weight"]
    assert not torch.equal(videochat_ln, blip2_ln)
    assert torch.equal(model.model.vision_model.post_layernorm.weight.detach(), videochat_ln)
    eva_patch = torch.load(folder / "eva_vit_g.pth", weights_only=True)["patch_embed.proj.weight"]
    assert torch.equal(
        model.model.vision_model.embeddings.patch_embeddings.projection.weight.detach(), eva_patch.unsqueeze(2)
    )
    assert "blip2.ln_vision.weight" in plan.dropped


def test_lora_is_folded_with_alpha_over_r():
    folder = fixture_dir("videochat2_it_phi")
    original_config = json.loads((folder / "original_config.json").read_text())
    stage = torch.load(folder / "original_checkpoint.pth", weights_only=True)["model"]
    llm = load_file(folder / "llm" / "model.safetensors")
    key_map, sources = combined_sources("phi", stage, llm)
    converted, plan = convert_state_dict(key_map, sources, lora_scaling("videochat2", original_config))
    lora = "phi_model.base_model.model.model.layers.1.mlp.down_proj.lora_{}.default.weight"
    scaling = original_config["model"]["lora_alpha"] / original_config["model"]["lora_r"]
    expected = llm["model.layers.1.mlp.down_proj.weight"] + scaling * stage[lora.format("B")] @ stage[lora.format("A")]
    torch.testing.assert_close(converted["model.language_model.layers.1.mlp.down_proj.weight"], expected)
    # Phi-3's fused projections carry no LoRA and are copied unchanged
    torch.testing.assert_close(
        converted["model.language_model.layers.1.self_attn.qkv_proj.weight"],
        llm["model.layers.1.self_attn.qkv_proj.weight"],
    )
    assert any("inv_freq" in key or "position_ids" in key for key in plan.dropped)


# ------------------------------------------------------------------------------------------------ UMT encoder


def reference_umt_table(num_frames: int, num_patches: int, dim: int) -> torch.Tensor:
    """Spec 1.3 written independently: numpy float64 sinusoid over 4 frames, [1,4,14,14,d] -> [196,d,4] -> linear."""

    def sinusoid(num_positions):
        table = np.array(
            [[pos / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)] for pos in range(num_positions)]
        )
        table[:, 0::2], table[:, 1::2] = np.sin(table[:, 0::2]), np.cos(table[:, 1::2])
        return torch.tensor(table, dtype=torch.float32).unsqueeze(0)

    if num_frames == 1:
        return sinusoid(num_patches)
    side = int(num_patches**0.5)
    table = sinusoid(4 * num_patches)
    if num_frames == 4:
        return table
    table = table.view(1, 4, side, side, dim).permute(0, 2, 3, 4, 1).reshape(num_patches, dim, 4)
    table = F.interpolate(table, size=num_frames, mode="linear", align_corners=False)
    table = table.reshape(1, side, side, dim, num_frames).permute(0, 4, 1, 2, 3)
    return table.flatten(1, 3)


@pytest.mark.parametrize("num_frames", [1, 4, 8, 16])
def test_umt_position_table_follows_the_spec(vicuna, num_frames):
    model, _, _ = vicuna
    embeddings = model.model.vision_model.embeddings
    ours = embeddings.position_table(num_frames)
    reference = reference_umt_table(num_frames, 196, model.config.vision_config.hidden_size)
    assert ours.shape == (1, num_frames * 196, model.config.vision_config.hidden_size)
    torch.testing.assert_close(ours, reference, atol=1e-6, rtol=0)


@torch.no_grad()
def test_umt_encoder_runs_4_8_16_frames_and_reproduces_the_fixture(vicuna):
    model, inputs, expected = vicuna
    encoder = model.model.vision_model
    clip = inputs["pixel_values"]  # [1, 8, 3, 224, 224]
    clips = {4: clip[:, ::2], 8: clip, 16: clip.repeat_interleave(2, dim=1)}
    # the last block's output (before post_layernorm) is the last of the recorded hidden states
    results = {t: encoder(frames.permute(0, 2, 1, 3, 4), output_hidden_states=True) for t, frames in clips.items()}
    outputs = {t: result.hidden_states[-1] for t, result in results.items()}
    for num_frames, output in outputs.items():
        assert output.shape == (1, num_frames * 196, 64)
        assert len(results[num_frames].hidden_states) == model.config.vision_config.num_hidden_layers + 1
        assert torch.isfinite(output).all()
    assert (outputs[8] - expected["chat.vision_encoder_out"].reshape(1, -1, 64)).abs().max().item() <= 1e-5
    after_layernorm = expected["chat.vision_layernorm_out"].reshape(1, -1, 64)
    assert (results[8].last_hidden_state - after_layernorm).abs().max().item() <= 1e-5
    # the frame count changes the (temporal) position table, hence the features
    assert not torch.allclose(outputs[16][:, :196], outputs[8][:, :196], atol=1e-4)


# ---------------------------------------------------------------------------------------- HD batch and images


def _qformer_rows(input_ids: torch.Tensor, mask: torch.Tensor, num_queries: int, num_rows: int):
    return input_ids[:1].expand(num_rows, -1), mask[:1, num_queries:].expand(num_rows, -1)


@torch.no_grad()
def test_hd_batch_of_two_tile_grids_keeps_clip_order(hd_mistral):
    model, inputs, expected = hd_mistral
    num_queries = model.config.num_visual_queries
    frames_a = inputs["pixel_values"][0]  # [4, 3, 448, 672]: 2 x 3 tiles
    frames_b = F.interpolate(frames_a, size=(224, 448), mode="bicubic", align_corners=False)  # 1 x 2 tiles
    clips_a, clips_b = hd_clips(frames_a), hd_clips(frames_b)
    assert clips_a.shape[0] == 7 and clips_b.shape[0] == 3
    qformer_ids, qformer_mask = _qformer_rows(
        inputs["chat_instrlist.qformer_input_ids"], inputs["chat_instrlist.qformer_attention_mask"], num_queries, 10
    )
    segment0, segment1 = inputs["chat_instrlist.llm_segment0_ids"], inputs["chat_instrlist.llm_segment1_ids"]
    rows = [torch.cat([segment0, torch.zeros(n * num_queries, dtype=torch.long), segment1]) for n in (7, 3)]
    pad = 2  # EOS, != the placeholder id 0
    length = max(len(row) for row in rows)
    input_ids = torch.stack([F.pad(row, (length - len(row), 0), value=pad) for row in rows])
    attention_mask = torch.stack([F.pad(torch.ones_like(row), (length - len(row), 0)) for row in rows])

    captured = {}

    def capture_llm_inputs(module, args, kwargs):
        captured["embeds"] = kwargs["inputs_embeds"]

    handle = model.model.language_model.register_forward_pre_hook(capture_llm_inputs, with_kwargs=True)
    try:
        model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            pixel_values_videos=torch.cat([clips_a, clips_b]),
            qformer_input_ids=qformer_ids,
            qformer_attention_mask=qformer_mask,
        )
    finally:
        handle.remove()

    single_a = model.model.get_video_features(clips_a, qformer_ids[:7], qformer_mask[:7]).pooler_output
    single_b = model.model.get_video_features(clips_b, qformer_ids[:3], qformer_mask[:3]).pooler_output
    embeds = captured["embeds"]
    spliced_a = embeds[0][input_ids[0] == 0]
    spliced_b = embeds[1][input_ids[1] == 0]
    torch.testing.assert_close(spliced_a, single_a.reshape(-1, single_a.shape[-1]), atol=1e-5, rtol=0)
    torch.testing.assert_close(spliced_b, single_b.reshape(-1, single_b.shape[-1]), atol=1e-5, rtol=0)
    # video A alone is the original's chat_instrlist case: tiles row-major, global view last
    reference = expected["chat_instrlist.video_embeds"].reshape(-1, single_a.shape[-1])
    assert (spliced_a - reference).abs().max().item() <= 1e-5
    # B's tiles are not A's: a wrong clip order or grid would show up here
    assert not torch.allclose(spliced_b[:num_queries], spliced_a[:num_queries], atol=1e-3)


def test_hd_global_view_is_bicubic_of_the_whole_frame():
    frames = torch.randn(2, 3, 448, 672)
    clips = hd_clips(frames)
    torch.testing.assert_close(clips[1], frames[:, :, :224, 224:448])  # row 0, col 1
    torch.testing.assert_close(clips[3], frames[:, :, 224:, :224])  # row 1, col 0
    torch.testing.assert_close(clips[-1], F.interpolate(frames, size=(224, 224), mode="bicubic", align_corners=False))
    with pytest.raises(ValueError, match="not a grid"):
        hd_clips(torch.zeros(1, 3, 300, 448))


@torch.no_grad()
def test_image_input_through_the_same_model(vicuna):
    model, inputs, expected = vicuna
    num_queries = model.config.num_visual_queries
    image = inputs["image_pixel_values"][:, 0]  # [1, 3, 224, 224]
    input_ids = torch.cat(
        [
            inputs["image.llm_segment0_ids"],
            torch.zeros(num_queries, dtype=torch.long),
            inputs["image.llm_segment1_ids"],
        ]
    ).unsqueeze(0)
    output = model(
        input_ids=input_ids,
        pixel_values=image,
        qformer_input_ids=inputs["image.qformer_input_ids"],
        qformer_attention_mask=inputs["image.qformer_attention_mask"][:, num_queries:],
    )
    reference = expected["image.logits"]
    assert (output.logits - reference).abs().max().item() <= 1e-5 * max(1.0, reference.abs().max().item())
    assert output.image_hidden_states.shape == (1, num_queries, model.config.text_config.hidden_size)


# ------------------------------------------------------------------------------------------- random init, config


def _tiny_vision_config(encoder_type: str, **fields):
    from conftest import tiny_vision_config
    from transformers import AutoConfig

    fields = {"num_hidden_layers": 3, **fields}
    model_type = tiny_vision_config(encoder_type)["model_type"]
    return AutoConfig.for_model(
        model_type, **{k: v for k, v in tiny_vision_config(encoder_type, **fields).items() if k != "model_type"}
    )


@torch.no_grad()
def test_fresh_gmhra_blocks_start_as_identity():
    from videochat.modeling_videochat_vision import VideoChatEvaGmhraVisionModel as EvaGmhraVisionModel

    torch.manual_seed(0)
    encoder = EvaGmhraVisionModel(_tiny_vision_config("eva_gmhra", num_gmhra_layers=2, gmhra_mlp_ratio=1.5)).eval()
    output = encoder(torch.randn(2, 3, 5, 28, 28)).last_hidden_state
    assert output.shape == (2, 5 * (1 + 4) + 1, 32)
    # zero-initialised residual branches (as in the original): the GMHRA token is still the (zero) learned token
    assert output[:, -1].abs().max().item() == 0.0
    assert output[:, :-1].abs().max().item() > 0.0


def test_umt_layers_have_q_and_v_bias_without_k_bias_and_leave_the_config_unchanged():
    from videochat.modeling_videochat_vision import VideoChatUMTVisionModel as UMTVisionModel

    config = _tiny_vision_config("umt")
    before = config.to_dict()
    encoder = UMTVisionModel(config)
    assert config.to_dict() == before
    attention = encoder.layers[0].attention.attention
    assert attention.query.bias is not None and attention.value.bias is not None and attention.key.bias is None

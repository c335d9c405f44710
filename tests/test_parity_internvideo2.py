# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""`python -m videochat.parity` on the InternVideo2-Chat fixtures, and the full-size key map check."""

import json
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import shared_path
from safetensors.torch import load_file, save_file

from videochat import VideoChatForConditionalGeneration
from videochat.convert.key_maps import INTERNVIDEO2_CHAT_KEY_MAP
from videochat.convert.keymap import convert_shapes
from videochat.convert.presets import build_config


FIXTURES = ["tiny_hd", "tiny_nonhd"]


def run_parity(*paths):
    return subprocess.run(
        [sys.executable, "-m", "videochat.parity", "--json", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.heavy
@pytest.mark.parametrize("name", FIXTURES)
def test_parity_passes_on_fixture(name):
    result = run_parity(shared_path("fixtures", "internvideo2_chat", name))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["ok"] and report["greedy_equal"]
    tensors = report["tensors"]
    for case in ("default", "instr"):
        for suffix in ("qformer_last_hidden_state", "project_up_out", "inputs_embeds"):
            assert tensors[f"{case}.{suffix}"] <= 1e-5
        assert f"{case}.logits" in tensors and f"{case}.generated_ids" in tensors
    assert tensors["default.vision_encoder_out"] <= 1e-5 and tensors["default.vision_layernorm_out"] <= 1e-5
    # preprocessing from the raw frames and recorded prompts (0.0 = equal)
    for key in (
        "preprocessing.frame_indices",
        "preprocessing.pixel_values",
        "default.preprocessing.prompt",
        "default.preprocessing.input_ids",
        "instr.preprocessing.prompt",
        "instr.preprocessing.input_ids",
    ):
        assert tensors[key] == 0.0, key
    if name == "tiny_hd":
        assert tensors["instr.preprocessing.qformer_input_ids"] == 0.0


@pytest.mark.heavy
def test_parity_fails_on_a_perturbed_reference(tmp_path):
    source = shared_path("fixtures", "internvideo2_chat", "tiny_nonhd")
    target = tmp_path / "perturbed"
    shutil.copytree(source, target)
    expected = load_file(target / "expected.safetensors")
    expected["instr.project_up_out"] = expected["instr.project_up_out"] + 1e-3
    expected["default.generated_ids"] = expected["default.generated_ids"].flip(-1) + 1
    (target / "expected.safetensors").chmod(0o644)
    save_file(expected, target / "expected.safetensors")
    result = run_parity(target)
    assert result.returncode == 1
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not report["ok"] and not report["greedy_equal"]
    assert report["tensors"]["instr.project_up_out"] > 9e-4


def test_parity_rejects_a_folder_that_is_not_a_fixture(tmp_path):
    result = run_parity(tmp_path)
    assert result.returncode == 1
    assert "original_config.json is missing" in result.stdout


def test_full_size_key_map_matches_the_preset_exactly():
    manifest = json.loads(shared_path("specs", "keys", "internvideo2_chat_8b_hd.json").read_text())
    source_shapes = {**manifest["vision"], **manifest["bridge"], **manifest["llm"]}
    assert len(source_shapes) == 1590
    converted = convert_shapes(INTERNVIDEO2_CHAT_KEY_MAP, source_shapes)
    with torch.device("meta"):
        model = VideoChatForConditionalGeneration(build_config("internvideo2-chat-8b-hd"))
    ours = {name: tuple(p.shape) for name, p in model.state_dict().items()}
    assert sorted(set(ours) - set(converted)) == []  # missing
    assert sorted(set(converted) - set(ours)) == []  # unexpected
    assert [k for k in ours if ours[k] != tuple(converted[k])] == []  # shape mismatches
    # same parameter count as the original minus what conversion removes by name: LoRA factors (folded), the
    # unused project_down, the position_ids buffer (the manifest's per-module totals count state-dict entries)
    removed = sum(
        torch.Size(shape).numel()
        for key, shape in source_shapes.items()
        if ".lora_" in key or key.startswith("project_down") or key.endswith("position_ids")
    )
    assert removed == 42532864 + 3146496 + 512
    assert sum(p.numel() for p in model.parameters()) == sum(manifest["param_count_by_top_module"].values()) - removed

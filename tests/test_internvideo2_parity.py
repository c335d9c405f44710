# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""`python -m videochat.parity` on the InternVideo2 foundation fixtures: every recorded tensor, the preprocessing,
the gelu_tanh variants; a perturbed reference fails."""

import json
import shutil
import subprocess
import sys

import pytest
from conftest import shared_path
from internvideo2_testing import STAGE1, STAGE2
from safetensors.torch import load_file, save_file


def run_parity(*paths):
    return subprocess.run(
        [sys.executable, "-m", "videochat.parity", "--json", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _report(result) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.heavy
@pytest.mark.parametrize("stage", [STAGE1, STAGE2], ids=["stage1_cls_tiny", "stage2_tiny"])
def test_parity_passes_on_every_recorded_tensor(stage):
    folder = shared_path(*stage)
    result = run_parity(folder)
    assert result.returncode == 0, result.stdout + result.stderr
    report = _report(result)
    assert report["ok"] and report["failures"] == []
    tensors = report["tensors"]
    recorded = load_file(folder / "expected.safetensors")
    for name, reference in recorded.items():
        assert name in tensors, name
        assert tensors[name] <= (1e-5 if reference.dtype.is_floating_point else 0.0), name
    assert any(name.startswith("gelu_tanh.") for name in recorded)
    if stage == STAGE2:
        preprocessing = [name for name in tensors if name.startswith("preprocessing.")]
        assert len(preprocessing) == 14 and all(tensors[name] == 0.0 for name in preprocessing)


@pytest.mark.heavy
def test_parity_fails_when_a_reference_or_an_input_frame_is_perturbed(tmp_path):
    target = tmp_path / "perturbed"
    shutil.copytree(shared_path(*STAGE2), target)
    for name in ("expected.safetensors", "inputs.safetensors"):
        (target / name).chmod(0o644)
    expected = load_file(target / "expected.safetensors")
    expected["itm.logits"] = expected["itm.logits"] + 1e-4
    expected["gelu_tanh.video_feat"] = expected[
        "video_feat"
    ].clone()  # the exact-GELU tensor cannot pass as the tanh one
    save_file(expected, target / "expected.safetensors")
    inputs = load_file(target / "inputs.safetensors")
    inputs["clip1.resized_rgb_uint8"][0, 0, 0, 0] ^= 1
    save_file(inputs, target / "inputs.safetensors")
    result = run_parity(target)
    assert result.returncode == 1
    report = _report(result)
    assert report["tensors"]["itm.logits"] > 9e-5
    assert report["tensors"]["preprocessing.clip1.resized_rgb_uint8"] == 1.0
    assert any(failure.startswith("gelu_tanh.video_feat") for failure in report["failures"])


def test_internvideo2_fixtures_are_recognised():
    from videochat.parity.internvideo2 import fixture_stage

    for stage, expected in ((STAGE1, "stage1"), (STAGE2, "stage2")):
        config = json.loads(shared_path(*stage, "original_config.json").read_text())
        assert fixture_stage(config) == expected
    chat = json.loads(shared_path("fixtures", "internvideo2_chat", "tiny_hd", "original_config.json").read_text())
    assert fixture_stage(chat) is None

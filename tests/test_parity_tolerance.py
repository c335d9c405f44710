# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""The parity checker's logits rule: our float64 model within 1.5 N and our float32 model within 3 N of the recorded
logits, N the fixture's own float32 noise (the LLM's rounding m + the visual path's rounding p, see
`videochat.parity.checker`)."""

import json
from dataclasses import replace

import pytest
import torch
from conftest import shared_path

from videochat.parity import run_fixture
from videochat.parity.checker import LogitsCheck, check_logits, compute_outputs, load_fixture
from videochat.parity.common import build_converted_model, recorded_merge_noise


def test_recorded_merge_noise_reads_the_internvideo2_chat_report():
    fixture = shared_path("fixtures", "internvideo2_chat", "tiny_hd")
    report = json.loads((fixture / "verify_report.json").read_text())
    noise = recorded_merge_noise(fixture)
    assert sorted(noise) == ["default", "instr"]
    assert noise["default"] == report["default.logits(LoRA-merged MistralForCausalLM on expected inputs_embeds)"]
    assert noise["instr"] == report["instr.logits(LoRA-merged MistralForCausalLM on expected inputs_embeds)"]


def test_recorded_merge_noise_is_empty_without_a_merged_figure(tmp_path):
    # VideoChat2 reports hold same-code re-runs (0.0), not a LoRA-merged run: nothing to read there
    assert recorded_merge_noise(shared_path("fixtures", "videochat2", "videochat2_it_mistral")) == {}
    assert recorded_merge_noise(tmp_path) == {}
    (tmp_path / "verify_report.json").write_text("{not json")
    assert recorded_merge_noise(tmp_path) == {}
    (tmp_path / "verify_report.json").write_text(json.dumps({"a.logits(merged run)": True, "b.logits(merged)": 2e-5}))
    assert recorded_merge_noise(tmp_path) == {"b": 2e-5}


def test_logits_check_limits():
    check = LogitsCheck(float64=1.4e-4, float32=2.9e-4, merged=6e-5, merged_source="recorded", propagated=4e-5)
    assert check.noise == pytest.approx(1e-4) and check.ok
    assert not replace(check, float64=1.6e-4).ok
    assert not replace(check, float32=3.1e-4).ok
    assert check.as_dict()["limit_float64"] == pytest.approx(1.5e-4)
    assert "float64 0.00014" in check.describe()


@pytest.fixture(scope="module")
def nonhd():
    fixture = shared_path("fixtures", "internvideo2_chat", "tiny_nonhd")
    bundle = load_fixture(fixture)
    model64, _ = build_converted_model(fixture, dtype=torch.float64)
    return fixture, bundle, model64


def test_float64_model_keeps_float64_precision(nonhd):
    _, bundle, model64 = nonhd
    weight = model64.model.language_model.layers[0].self_attn.q_proj.weight
    assert weight.dtype == torch.float64
    # LoRA folded in float64: not a float32 value cast up
    assert not torch.equal(weight, weight.float().double())
    reference = bundle.model.model.language_model.layers[0].self_attn.q_proj.weight
    assert (weight - reference.double()).abs().max() < 1e-6


@pytest.mark.heavy
def test_run_fixture_prints_both_figures(nonhd, capsys):
    fixture, _, _ = nonhd
    report = run_fixture(fixture)
    assert report["ok"], report["failures"]
    check = report["logits"]["default.logits"]
    assert check["merged_source"] == "recorded"
    assert check["merged"] == recorded_merge_noise(fixture)["default"]
    assert 0 < check["float64"] <= check["limit_float64"] == pytest.approx(1.5 * check["noise"])
    assert 0 < check["float32"] <= check["limit_float32"] == pytest.approx(3 * check["noise"])
    assert report["tensors"]["default.logits"] == check["float32"]


def test_a_wrong_llm_fails_in_float64_and_float32(nonhd):
    fixture, bundle, model64 = nonhd
    case = bundle.cases[0]
    merge_noise = recorded_merge_noise(fixture)
    ours32 = compute_outputs(bundle.model, case, 0)["logits"]
    assert check_logits(bundle.model, model64, case, ours32, merge_noise).ok
    # a float32 run that rounds worse than float32 (here: 1e-3 off) fails the float32 bound only
    off = check_logits(bundle.model, model64, case, ours32 + 1e-3, merge_noise)
    assert not off.ok and off.float64 <= 1.5 * off.noise
    # different arithmetic (a slightly wrong final norm) shows in float64
    norm = model64.model.language_model.norm.weight
    saved = norm.detach().clone()
    try:
        with torch.no_grad():
            norm.mul_(1.001)
        wrong = check_logits(bundle.model, model64, case, ours32, merge_noise)
    finally:
        with torch.no_grad():
            norm.copy_(saved)
    assert not wrong.ok and wrong.float64 > 1.5 * wrong.noise


@pytest.mark.heavy
def test_fixtures_without_a_recorded_figure_measure_the_llm_rounding():
    report = run_fixture(shared_path("fixtures", "videochat2", "videochat2_it_vicuna"))
    assert report["ok"], report["failures"]
    assert {check["merged_source"] for check in report["logits"].values()} == {"measured"}
    assert all(check["merged"] > 0 and check["propagated"] > 0 for check in report["logits"].values())

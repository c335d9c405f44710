# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""InternVideo2 conversion: the five full-size manifests on the meta device, named drops, unknown keys, every
wrapper and dtype, safe unpickling, atomic output, labels, the command line."""

import json
import pickle
import shutil

import pytest
import torch
from conftest import shared_path
from internvideo2_testing import STAGE1, STAGE1_OVERRIDES, STAGE2, STAGE2_OVERRIDES, convert_fixture
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from videochat.cli import main as videochat_main
from videochat.cli.convert import internvideo2_main
from videochat.convert.checkpoint_io import UnsafeCheckpointError
from videochat.convert.internvideo2 import build_config, check_manifest, convert_internvideo2
from videochat.convert.key_maps.internvideo2 import INTERNVIDEO2_VIDEO_TEXT_KEY_MAP
from videochat.convert.keymap import UnknownKeysError
from videochat.convert.output_safety import MARKER_NAME, OutputError
from videochat.convert.presets import INTERNVIDEO2_PRESETS, all_preset_names
from videochat.convert.sources import detect_internvideo2_kind, detect_source_family


def manifest_shapes(name: str) -> dict:
    manifest = json.loads(shared_path("specs", "keys", f"{name}.json").read_text())
    return {key: tuple(entry["shape"]) for key, entry in manifest["keys"].items()}, manifest


# ---------------------------------------------------------------------------------------------------- manifests


@pytest.mark.parametrize(
    ("name", "num_keys", "params"),
    [
        ("internvideo2_stage1_1b_k400", 542, 1_021_017_744),
        ("internvideo2_stage1_s14_k400", 178, 23_352_976),
        ("internvideo2_stage1_b14_k400", 178, 89_748_112),
        ("internvideo2_stage1_l14_k400", 334, 309_238_416),
    ],
)
def test_full_size_stage1_manifests_match_our_classifier_exactly(name, num_keys, params):
    shapes, manifest = manifest_shapes(name)
    report = check_manifest(shapes)
    assert report["kind"] == "classifier" and report["num_source_keys"] == num_keys == manifest["n_keys"]
    assert (report["unknown"], report["missing"], report["unexpected"], report["mismatched"]) == (0, 0, 0, 0)
    assert report["dropped_keys"] == 0
    assert report["params_ours"] == report["params_source_minus_dropped"] == params == manifest["total_params"]


def test_full_size_stage2_manifest_matches_our_video_text_model_exactly():
    shapes, manifest = manifest_shapes("internvideo2_stage2_1b")
    report = check_manifest(shapes)
    assert report["kind"] == "video_text" and report["num_source_keys"] == 1023
    assert (report["unknown"], report["missing"], report["unexpected"], report["mismatched"]) == (0, 0, 0, 0)
    # dropped by name: 30 UTA tensors, the position_ids buffer, the 7 MLM-head entries
    assert report["dropped_keys"] == 38
    assert report["params_ours"] == report["params_source_minus_dropped"] == 1_379_575_939
    # the same number from the manifest's unique count: minus the UTA tensors and the MLM head's own parameters
    # (its decoder weight is the tied word-embedding matrix and its decoder bias is predictions.bias)
    uta = manifest["params_by_component"]["vision_encoder.training_only(UTA distillation)"]["n_elements"]
    mlm_own = 30522 + 1024 * 1024 + 1024 + 2 * 1024
    assert manifest["total_params_unique"] - uta - mlm_own == 1_379_575_939
    config = build_config("video_text", shapes, "exact")
    assert config.vision_config.num_frames == 4 and config.vision_config.use_image_position_embeddings
    assert (config.text_config.fusion_layer, config.text_config.encoder_hidden_size) == (19, 1408)


def test_f16_and_distillation_layouts():
    shapes, manifest = manifest_shapes("internvideo2_stage1_1b_k400")
    shapes["pos_embed"] = (1, 4097, 1408)  # 1B_ft_k710_ft_k400_f16.pth
    assert check_manifest(shapes)["mismatched"] == 0
    assert build_config("classifier", shapes, "tanh").num_frames == 16
    for size in ("s14", "b14", "l14"):
        shapes, manifest = manifest_shapes(f"internvideo2_stage1_{size}_k400")
        layout = manifest["distillation_checkpoint_layout"]
        for key in layout["classifier_keys_missing_here"]:
            del shapes[key]
        shapes.update({key: tuple(shape) for key, shape in layout["keys_not_in_classifier"].items()})
        assert len(shapes) == layout["n_keys"]
        report = check_manifest(shapes)
        assert report["kind"] == "features" and report["dropped_keys"] == len(layout["keys_not_in_classifier"])
        assert (report["missing"], report["unexpected"], report["mismatched"]) == (0, 0, 0)
        assert report["params_ours"] == report["params_source_minus_dropped"]


def test_every_drop_has_a_reason_and_unknown_keys_are_fatal():
    shapes, _ = manifest_shapes("internvideo2_stage2_1b")
    plan = INTERNVIDEO2_VIDEO_TEXT_KEY_MAP.plan(shapes)
    assert all(reason for reason in plan.dropped.values())
    assert "text_encoder.cls.predictions.decoder.weight" in plan.dropped
    assert "vision_encoder.clip_decoder.0.head.weight" in plan.dropped
    shapes["vision_encoder.blocks.0.attn.q_bias"] = (1408,)
    with pytest.raises(UnknownKeysError, match="q_bias"):
        INTERNVIDEO2_VIDEO_TEXT_KEY_MAP.plan(shapes)
    assert check_manifest(shapes)["unknown"] == 1


def test_source_kinds_and_presets():
    assert (
        detect_internvideo2_kind(["cls_token", "clip_projector.cross_attn.proj.weight", "head.weight"]) == "classifier"
    )
    assert detect_internvideo2_kind(["cls_token", "clip_projector.cross_attn.proj.weight"]) == "features"
    assert (
        detect_internvideo2_kind(["vision_encoder.cls_token", "text_encoder.bert.embeddings.word_embeddings.weight"])
        == "video_text"
    )
    with pytest.raises(ValueError, match="not an InternVideo2"):
        detect_internvideo2_kind(["model.embed_tokens.weight"])
    kinds = {preset.kind for preset in INTERNVIDEO2_PRESETS.values()}
    assert kinds == {"classifier", "features", "video_text"} and len(INTERNVIDEO2_PRESETS) >= 17
    # one registry: `videochat convert --preset` lists the foundation models next to the chat models
    assert set(INTERNVIDEO2_PRESETS) < set(all_preset_names()) and "internvideo2-chat-8b" in all_preset_names()


# ---------------------------------------------------------------------------------------------------- real conversion


def _original_state_dict():
    return torch.load(shared_path(*STAGE1, "original_checkpoint.pth"), map_location="cpu", weights_only=True)["module"]


def _converted_tensors(folder):
    return load_file(folder / "model.safetensors")


@pytest.mark.parametrize("wrapper", ["model", "module", None])
def test_every_wrapper_and_safetensors_convert_to_the_same_tensors(tmp_path, wrapper):
    reference = convert_fixture("stage1", tmp_path / "reference")
    state_dict = _original_state_dict()
    source = tmp_path / "source"
    source.mkdir()
    torch.save(state_dict if wrapper is None else {wrapper: state_dict, "epoch": 3}, source / "checkpoint.pth")
    converted = convert_internvideo2(
        source / "checkpoint.pth", tmp_path / "out", progress=False, gelu="exact", config_overrides=STAGE1_OVERRIDES
    )
    ours, expected = _converted_tensors(converted.output), _converted_tensors(reference)
    assert ours.keys() == expected.keys() and all(torch.equal(ours[key], expected[key]) for key in ours)
    save_file(state_dict, tmp_path / "bare.safetensors")
    from_safetensors = convert_internvideo2(
        tmp_path / "bare.safetensors",
        tmp_path / "out2",
        progress=False,
        gelu="exact",
        config_overrides=STAGE1_OVERRIDES,
    )
    assert all(torch.equal(_converted_tensors(from_safetensors.output)[key], expected[key]) for key in expected)


def test_bf16_sources_and_dtype_casts(tmp_path):
    state_dict = {key: value.to(torch.bfloat16) for key, value in _original_state_dict().items()}
    torch.save({"module": state_dict}, tmp_path / "bf16.pth")
    kept = convert_internvideo2(
        tmp_path / "bf16.pth", tmp_path / "kept", progress=False, config_overrides=STAGE1_OVERRIDES
    )
    tensors = _converted_tensors(kept.output)
    assert {tensor.dtype for tensor in tensors.values()} == {torch.bfloat16}
    assert json.loads((kept.output / "config.json").read_text())["dtype"] == "bfloat16"
    cast = convert_internvideo2(
        tmp_path / "bf16.pth", tmp_path / "fp32", dtype="float32", progress=False, config_overrides=STAGE1_OVERRIDES
    )
    assert {tensor.dtype for tensor in _converted_tensors(cast.output).values()} == {torch.float32}


def test_stage2_conversion_writes_our_names_drops_by_name_and_a_processor(tmp_path):
    folder = convert_fixture("stage2", tmp_path / "stage2")
    with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
        keys = set(handle.keys())
        assert handle.get_tensor("temperature").shape == ()
    assert not any(key.startswith(("vision_encoder.", "text_encoder.")) for key in keys)
    assert "itm_head.weight" in keys and "text_model.encoder.layer.3.crossattention.self.key.weight" in keys
    assert not any("clip_decoder" in key or "position_ids" in key for key in keys)
    for name in ("config.json", "processor_config.json", "tokenizer.json", "tokenizer_config.json"):
        assert (folder / name).is_file(), name
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["InternVideo2VideoTextModel"] and config["model_type"] == "internvideo2"


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"module": {"cls_token": Exploit()}}, handle)
    with pytest.raises(UnsafeCheckpointError):
        convert_internvideo2(path, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_failures_leave_no_output_and_no_staging(tmp_path, monkeypatch):
    from videochat.convert import internvideo2

    def broken_write(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(internvideo2, "write_weights", broken_write)
    with pytest.raises(RuntimeError, match="disk full"):
        convert_fixture("stage1", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    state_dict = dict(_original_state_dict(), extra_tensor=torch.zeros(3))
    torch.save(state_dict, tmp_path / "unknown.pth")
    with pytest.raises(UnknownKeysError, match="extra_tensor"):
        convert_internvideo2(
            tmp_path / "unknown.pth", tmp_path / "out2", progress=False, config_overrides=STAGE1_OVERRIDES
        )
    assert not (tmp_path / "out2").exists()
    convert_fixture("stage1", tmp_path / "out3")
    with pytest.raises(OutputError, match="exists and is not empty"):
        convert_fixture("stage1", tmp_path / "out3")


def test_labels_from_a_file_and_their_count_checked(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"action {index}" for index in range(10)) + "\n")
    folder = convert_fixture("stage1", tmp_path / "out", labels=labels)
    config = json.loads((folder / "config.json").read_text())
    assert config["id2label"]["3"] == "action 3" and len(config["id2label"]) == 10
    labels.write_text("a\nb\n")
    with pytest.raises(ValueError, match="names 2 classes but the classifier has 10"):
        convert_fixture("stage1", tmp_path / "out2", labels=labels)


def test_command_line(tmp_path, capsys):
    """A one-block S/14-wide stage-1 checkpoint (head count known for 384-wide towers) through the CLI."""
    shapes, _ = manifest_shapes("internvideo2_stage1_s14_k400")
    generator = torch.Generator().manual_seed(0)
    state_dict = {
        key: torch.randn(shape, generator=generator) * 0.02
        for key, shape in shapes.items()
        if not key.startswith("blocks.") or key.startswith("blocks.0.")
    }
    torch.save({"module": state_dict}, tmp_path / "s14.pth")
    code = internvideo2_main(
        [
            str(tmp_path / "s14.pth"),
            str(tmp_path / "cls"),
            "--no-progress",
            "--preset",
            "internvideo2-stage1-s14-k400-f8",
            "--dtype",
            "bfloat16",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "tanh GELU" in captured.err and "dropped by name" in captured.out
    config = json.loads((tmp_path / "cls" / "config.json").read_text())
    assert (config["hidden_size"], config["num_attention_heads"], config["num_hidden_layers"]) == (384, 6, 1)
    assert config["hidden_act"] == "gelu_pytorch_tanh" and config["num_frames"] == 8 and config["dtype"] == "bfloat16"
    # failures go through the `videochat` dispatcher: one line, exit status 2
    assert (
        videochat_main(["convert-internvideo2", str(tmp_path / "s14.pth"), str(tmp_path / "cls"), "--no-progress"])
        == 2
    )
    assert "exists" in capsys.readouterr().err
    source = shared_path(*STAGE2)
    assert (
        videochat_main(
            ["convert-internvideo2", str(source / "original_checkpoint.pth"), str(tmp_path / "out"), "--no-progress"]
        )
        == 2
    )
    # a tiny 56-pixel model without its overrides: the shapes contradict the 224px default, said plainly
    assert "pos_embed has 64 patch rows, not a multiple of 256 (224px)" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------- plain convert


def _folder_bytes(folder) -> dict[str, bytes]:
    """Every file of a converted folder except the output marker (it names the command that wrote the folder)."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MARKER_NAME
    }


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_plain_convert_takes_internvideo2_fixtures(stage, tmp_path, capsys):
    """`videochat convert` (no alias, no --preset) tells an InternVideo2 stage-1 / stage-2 checkpoint from its keys
    and writes the same bytes as the alias and as the conversion the parity checker runs (`convert_fixture`)."""
    folder = shared_path(*(STAGE1 if stage == "stage1" else STAGE2))
    overrides = STAGE1_OVERRIDES if stage == "stage1" else STAGE2_OVERRIDES
    options = ["--gelu", "exact", "--config-overrides", json.dumps(overrides), "--no-progress"]
    if stage == "stage2":
        options += ["--vocab", str(folder / "tokenizer" / "vocab.txt")]
    assert detect_source_family(folder) == "internvideo2"
    assert videochat_main(["convert", str(folder), str(tmp_path / "plain"), *options]) == 0, capsys.readouterr().err
    kind = "classifier" if stage == "stage1" else "video_text"
    assert f", {kind}): " in capsys.readouterr().out
    assert videochat_main(["convert-internvideo2", str(folder), str(tmp_path / "alias"), *options]) == 0
    reference = convert_fixture(stage, tmp_path / "reference")
    plain = _folder_bytes(tmp_path / "plain")
    assert "config.json" in plain and any(name.endswith(".safetensors") for name in plain)
    assert plain == _folder_bytes(tmp_path / "alias") == _folder_bytes(reference)
    # the writers' safety rules hold on this path too: the output may not be the folder holding the source, and
    # --overwrite replaces only folders videochat wrote
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(folder / "original_checkpoint.pth", source / "original_checkpoint.pth")
    capsys.readouterr()
    assert videochat_main(["convert", str(source / "original_checkpoint.pth"), str(source), *options]) == 2
    assert "videochat convert: error:" in capsys.readouterr().err
    assert sorted(path.name for path in source.iterdir()) == ["original_checkpoint.pth"]
    assert videochat_main(["convert", str(source), str(tmp_path / "plain"), *options, "--overwrite"]) == 0
    assert videochat_main(["convert", str(source), str(tmp_path / "source"), *options, "--overwrite"]) == 2
    assert (source / "original_checkpoint.pth").is_file()


def test_plain_convert_keeps_options_to_their_kind_of_source(tmp_path, capsys):
    stage1 = shared_path(*STAGE1)
    assert detect_source_family(shared_path("fixtures", "internvideo2_chat", "tiny_nonhd")) == "videochat"
    assert detect_source_family(tmp_path, preset="internvideo2-stage1-l14-distilled") == "internvideo2"
    assert videochat_main(["convert", str(stage1), str(tmp_path / "o"), "--llm", str(tmp_path)]) == 2
    assert "--llm cannot be used with an InternVideo2 foundation checkpoint" in capsys.readouterr().err
    chat = shared_path("fixtures", "internvideo2_chat", "tiny_nonhd")
    assert videochat_main(["convert", str(chat), str(tmp_path / "o"), "--gelu", "tanh"]) == 2
    assert "--gelu cannot be used with a chat model's checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()

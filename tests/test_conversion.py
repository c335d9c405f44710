# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""`videochat convert`: every InternVideo2-Chat fixture from .pth and hub-style safetensors reproduces the recorded
original outputs; InternLM2 -> Llama; full-size key/shape check; safety (malicious pickle, SIGKILL, truncated shard,
unknown key)."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from videochat.cli.convert import main
from videochat.convert.checkpoint_io import UnsafeCheckpointError
from videochat.convert.converter import compare_with_model, convert, upload_to_hub
from videochat.convert.key_maps import INTERNVIDEO2_CHAT_KEY_MAP
from videochat.convert.key_maps.internlm2 import internlm2_key_map, llama_text_config_from_internlm2
from videochat.convert.keymap import SplitDim0, SplitGroupedQKV, UnknownKeysError, convert_shapes
from videochat.convert.output_safety import OutputError
from videochat.convert.presets import build_config
from videochat.parity import verify_converted_folder
from videochat.parity.internlm2 import build_converted_llm, converted_llm_config


SHARED = Path(os.environ.get("VIDEOCHAT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ["tiny_hd", "tiny_nonhd"]
PRESETS = {"tiny_hd": "internvideo2-chat-8b-hd", "tiny_nonhd": "internvideo2-chat-8b"}


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"test data missing: {path} (set VIDEOCHAT_SHARED to the shared/ folder)")
    return path


def sha256_tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def written_keys(folder: Path) -> dict[str, tuple]:
    index = folder / "model.safetensors.index.json"
    files = (
        sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.is_file() else ["model.safetensors"]
    )
    keys = {}
    for name in files:
        with safe_open(str(folder / name), framework="pt") as handle:
            for key in handle.keys():
                keys[key] = handle.get_slice(key).get_dtype()
    return keys


def make_hub_snapshot(fixture: Path, folder: Path, num_shards: int = 2) -> Path:
    """A hub-style snapshot: `model-0000k-of-0000n.safetensors` + index + remote-code `config.json` + tokenizer."""
    folder.mkdir(parents=True)
    state_dict = load_file(fixture / "original_checkpoint.safetensors")
    keys = list(state_dict)
    per_shard = -(-len(keys) // num_shards)
    weight_map = {}
    for index in range(num_shards):
        name = f"model-{index + 1:05d}-of-{num_shards:05d}.safetensors"
        part = {key: state_dict[key] for key in keys[index * per_shard : (index + 1) * per_shard]}
        save_file(part, folder / name, metadata={"format": "pt"})
        weight_map.update({key: name for key in part})
    total = sum(t.numel() * t.element_size() for t in state_dict.values())
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map})
    )
    shutil.copy(fixture / "original_config.json", folder / "config.json")
    for item in (fixture / "llm_tokenizer").iterdir():
        shutil.copy(item, folder / item.name)
    shutil.copytree(fixture / "qformer_tokenizer", folder / "qformer_tokenizer")
    return folder


def assert_parity(report: dict) -> None:
    assert report["ok"], report["failures"]
    assert any(name.endswith(".logits") for name in report["max_abs_diff"])
    assert any(name.endswith(".generated_ids") for name in report["max_abs_diff"])


def assert_converted_parity(result, fixture: Path) -> None:
    """`--verify`'s own check of this run passed, and the written folder reproduces the fixture's original outputs."""
    assert result.parity["kind"] == "weights" and result.parity["ok"], result.parity
    assert_parity(verify_converted_folder(result.output, fixture))


# --------------------------------------------------------------------------------------------------- fixture parity


@pytest.mark.parametrize("source_file", ["original_checkpoint.pth", "original_checkpoint.safetensors"])
@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_converts_and_reproduces_original_outputs(tmp_path, name, source_file):
    fixture = shared_path("fixtures", "internvideo2_chat", name)
    before = sha256_tree(fixture)
    result = convert(fixture / source_file, tmp_path / "out", verify=True, progress=False)
    assert result.preset == PRESETS[name]
    assert_converted_parity(result, fixture)
    out = tmp_path / "out"
    for file_name in (
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "README.md",
        "chat_template.jinja",
        "tokenizer.json",
        "qformer_tokenizer/tokenizer_config.json",
        "processor_config.json",
    ):
        assert (out / file_name).is_file(), file_name
    keys = written_keys(out)
    assert not any(key.startswith(("lm.", "vision_encoder.", "qformer.bert")) or "lora_" in key for key in keys)
    assert json.loads((out / "config.json").read_text())["preset"] == PRESETS[name]
    card = (out / "README.md").read_text()
    assert hashlib.sha256((fixture / source_file).read_bytes()).hexdigest() in card
    assert "max abs diff" in card and "visual_path.projection_out" in card
    assert sha256_tree(fixture) == before  # sources are never modified
    assert not list(tmp_path.glob(".out.partial-*"))


@pytest.mark.parametrize("name", FIXTURES)
def test_sharded_hub_snapshot_converts_to_sharded_output(tmp_path, name):
    fixture = shared_path("fixtures", "internvideo2_chat", name)
    snapshot = make_hub_snapshot(fixture, tmp_path / "snapshot")
    # the tiny LLM dims are not in a hub config.json: pass the LLM config folder as --llm
    result = convert(
        snapshot,
        tmp_path / "out",
        preset=PRESETS[name],
        llm=fixture / "lm_config",
        verify=True,
        max_shard_size="500KB",
        progress=False,
    )
    out = tmp_path / "out"
    assert len(result.shards) > 1 and (out / "model.safetensors.index.json").is_file()
    assert all((out / shard).is_file() for shard in result.shards)
    assert_converted_parity(result, fixture)
    processor_config = json.loads((out / "processor_config.json").read_text())
    assert processor_config["num_query_tokens"] == 96


def test_dtype_cast_and_dry_run_upload(tmp_path):
    fixture = shared_path("fixtures", "internvideo2_chat", "tiny_nonhd")
    convert(fixture, tmp_path / "out", dtype="bfloat16", progress=False)
    dtypes = written_keys(tmp_path / "out")
    assert set(dtypes.values()) == {"BF16"}
    assert json.loads((tmp_path / "out" / "config.json").read_text())["dtype"] == "bfloat16"
    files = upload_to_hub(tmp_path / "out", "someone/converted", dry_run=True)
    assert {
        "config.json",
        "model.safetensors",
        "README.md",
        "generation_config.json",
        "tokenizer.json",
        "chat_template.jinja",
        "qformer_tokenizer/tokenizer_config.json",
    } <= set(files)


def test_generation_config_has_original_chat_defaults(tmp_path):
    convert(shared_path("fixtures", "internvideo2_chat", "tiny_hd"), tmp_path / "out", progress=False)
    generation = json.loads((tmp_path / "out" / "generation_config.json").read_text())
    assert generation["do_sample"] is True and generation["top_p"] == 0.9 and generation["max_new_tokens"] == 200
    assert generation["top_k"] == 0 and generation["eos_token_id"] == 2 and generation["pad_token_id"] != 0


# --------------------------------------------------------------------------------------------------- full-size check


def test_full_size_manifest_maps_exactly_onto_our_preset():
    from videochat.modeling_videochat import VideoChatForConditionalGeneration

    manifest = json.loads(shared_path("specs", "keys", "internvideo2_chat_8b_hd.json").read_text())
    shapes = {key: tuple(shape) for section in ("vision", "bridge", "llm") for key, shape in manifest[section].items()}
    assert len(shapes) == 1590
    converted = convert_shapes(INTERNVIDEO2_CHAT_KEY_MAP, shapes)  # raises UnknownKeysError on any unknown key
    config = build_config("internvideo2-chat-8b-hd")
    problems = compare_with_model(converted, config)
    assert problems == {"missing": [], "unexpected": [], "mismatched": []}
    with torch.device("meta"):
        model = VideoChatForConditionalGeneration(config)
    ours = sum(p.numel() for p in model.parameters())
    converted_count = sum(torch.Size(shape).numel() for shape in converted.values())
    assert converted_count == ours
    lora = sum(torch.Size(s).numel() for k, s in shapes.items() if ".lora_" in k)
    dropped = sum(
        torch.Size(s).numel() for k, s in shapes.items() if k.startswith("project_down") or k.endswith("position_ids")
    )
    assert sum(torch.Size(s).numel() for s in shapes.values()) - lora - dropped == ours


# --------------------------------------------------------------------------------------------------- InternLM2


def _internlm2_model(transform_override=None):
    from dataclasses import replace

    folder = shared_path("fixtures", "internlm2", "tiny")
    config = converted_llm_config(folder)
    key_map = None
    if transform_override:
        key_map = internlm2_key_map(config.num_attention_heads, config.num_key_value_heads)
        key_map = replace(
            key_map,
            rules=tuple(
                replace(r, transform=transform_override) if isinstance(r.transform, SplitGroupedQKV) else r
                for r in key_map.rules
            ),
        )
    return build_converted_llm(folder, key_map), config


def test_internlm2_config_carries_dynamic_rope_scaling():
    folder = shared_path("fixtures", "internlm2", "tiny")
    text = llama_text_config_from_internlm2(json.loads((folder / "original" / "config.json").read_text()))
    assert text["rope_scaling"] == {"rope_type": "dynamic", "factor": 2.0} and text["rope_theta"] == 1e6
    _, config = _internlm2_model()
    assert config.rope_parameters["rope_type"] == "dynamic" and config.rope_parameters["factor"] == 2.0


@pytest.mark.parametrize("case", ["short", "long", "cross", "batch"])
def test_internlm2_as_llama_reproduces_original_outputs(case):
    folder = shared_path("fixtures", "internlm2", "tiny")
    inputs, expected = load_file(folder / "inputs.safetensors"), load_file(folder / "expected.safetensors")
    ids, mask = inputs[f"{case}.input_ids"], inputs[f"{case}.attention_mask"]
    model, _ = _internlm2_model()
    with torch.no_grad():
        logits = model(
            input_ids=ids, attention_mask=mask, position_ids=inputs[f"{case}.position_ids"], use_cache=False
        ).logits
    diff = ((logits - expected[f"{case}.logits"]).abs() * mask[..., None]).max().item()
    assert diff <= 1e-5 * max(1.0, expected[f"{case}.logits"].abs().max().item()), diff
    fresh, _ = _internlm2_model()  # the original's dynamic NTK is stateful: every reference used a fresh model
    generated = fresh.generate(
        input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=8, pad_token_id=2, eos_token_id=2
    )
    assert torch.equal(generated, expected[f"{case}.gen_ids"])


def test_parity_checker_covers_internlm2_folders():
    from videochat.parity import run_fixture

    report = run_fixture(shared_path("fixtures", "internlm2", "tiny"))
    assert report["ok"] and report["greedy_equal"], report["failures"]
    assert {
        f"{case}.{kind}"
        for case in ("short", "long", "cross", "batch")
        for kind in ("logits", "gen_ids", "gen_scores")
    } <= set(report["tensors"])


def test_internlm2_naive_qkv_split_does_not_match():
    """Negative control: splitting `wqkv` in three equal blocks instead of de-interleaving changes the logits."""
    folder = shared_path("fixtures", "internlm2", "tiny")
    inputs, expected = load_file(folder / "inputs.safetensors"), load_file(folder / "expected.safetensors")
    try:
        model, _ = _internlm2_model(SplitDim0())
    except (ValueError, RuntimeError, AssertionError):
        return  # shapes do not even fit (4 q heads vs 2 kv heads): also proves the layout matters
    with torch.no_grad():
        logits = model(input_ids=inputs["short.input_ids"], use_cache=False).logits
    assert (logits - expected["short.logits"]).abs().max() > 1e-2


def test_grouped_qkv_split_layout():
    heads, kv_heads, head_dim = 4, 2, 3
    rows = []
    for kv in range(kv_heads):
        rows += [("q", kv * 2 + g) for g in range(2)] + [("k", kv), ("v", kv)]
    labels = {
        ("q", 0): 0,
        ("q", 1): 1,
        ("q", 2): 2,
        ("q", 3): 3,
        ("k", 0): 10,
        ("k", 1): 11,
        ("v", 0): 20,
        ("v", 1): 21,
    }
    wqkv = torch.tensor([[labels[row]] * 5 for row in rows for _ in range(head_dim)], dtype=torch.float32)
    transform = SplitGroupedQKV(num_heads=heads, num_key_value_heads=kv_heads)
    q, k, v = transform.convert(wqkv, 3)
    assert q[:, 0].tolist() == [h for h in range(4) for _ in range(head_dim)]
    assert k[:, 0].tolist() == [10] * 3 + [11] * 3 and v[:, 0].tolist() == [20] * 3 + [21] * 3
    assert transform.shapes(tuple(wqkv.shape), 3) == [tuple(q.shape), tuple(k.shape), tuple(v.shape)]


# --------------------------------------------------------------------------------------------------- safety


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_malicious_pickle_is_refused_and_never_run(tmp_path):
    fixture = shared_path("fixtures", "internvideo2_chat", "tiny_nonhd")
    marker = tmp_path / "payload_ran"
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(fixture / "original_config.json", source / "original_config.json")
    state_dict = load_file(fixture / "original_checkpoint.safetensors")
    torch.save({"model": state_dict, "evil": _Payload(marker)}, source / "original_checkpoint.pth")
    torch.load(source / "original_checkpoint.pth", weights_only=False)  # control: an unsafe load DOES run it
    assert marker.exists()
    marker.unlink()
    with pytest.raises(UnsafeCheckpointError, match="refusing to load"):
        convert(source / "original_checkpoint.pth", tmp_path / "out", preset="internvideo2-chat-8b", progress=False)
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_unknown_key_stops_the_run_and_names_it(tmp_path):
    fixture = shared_path("fixtures", "internvideo2_chat", "tiny_nonhd")
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(fixture / "original_config.json", source / "original_config.json")
    state_dict = load_file(fixture / "original_checkpoint.safetensors")
    state_dict["vision_encoder.mystery_adapter.weight"] = torch.zeros(2)
    save_file(state_dict, source / "original_checkpoint.safetensors")
    with pytest.raises(UnknownKeysError, match=r"vision_encoder\.mystery_adapter\.weight") as error:
        convert(source / "original_checkpoint.safetensors", tmp_path / "out", progress=False)
    assert error.value.keys == ["vision_encoder.mystery_adapter.weight"]
    assert not (tmp_path / "out").exists()


def test_truncated_source_shard_gives_clear_error(tmp_path):
    fixture = shared_path("fixtures", "internvideo2_chat", "tiny_hd")
    snapshot = make_hub_snapshot(fixture, tmp_path / "snapshot")
    shard = snapshot / "model-00002-of-00002.safetensors"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"model-00002-of-00002\.safetensors.*truncated"):
        convert(
            snapshot, tmp_path / "out", preset="internvideo2-chat-8b-hd", llm=fixture / "lm_config", progress=False
        )
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.partial-*"))


def test_existing_output_is_not_overwritten(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="exists and is not empty"):
        convert(shared_path("fixtures", "internvideo2_chat", "tiny_hd"), tmp_path / "out", progress=False)
    assert (
        main([str(shared_path("fixtures", "internvideo2_chat", "tiny_hd")), str(tmp_path / "out"), "--no-progress"])
        == 2
    )
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["notes.txt"]


KILL_SCRIPT = """
import os, signal, sys
import videochat.convert.writer as streaming
count = {"n": 0}
def die_midway(method):
    def wrapped(self, *args):
        count["n"] += 1
        if count["n"] == 60:  # midway through the 120 tensors, after the first shards are complete
            os.kill(os.getpid(), signal.SIGKILL)
        return method(self, *args)
    return wrapped
streaming.ShardWriter.write = die_midway(streaming.ShardWriter.write)
streaming.ShardWriter.write_from_file = die_midway(streaming.ShardWriter.write_from_file)
from videochat.convert.converter import convert
convert(sys.argv[1], sys.argv[2], max_shard_size="200KB", progress=False)
"""


def test_sigkill_midway_leaves_nothing_loadable_and_rerun_succeeds(tmp_path):
    from transformers import AutoModelForImageTextToText

    import videochat  # noqa: F401

    fixture = shared_path("fixtures", "internvideo2_chat", "tiny_hd")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILL_SCRIPT), str(fixture), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert not out.exists()
    leftovers = list(tmp_path.glob(".out.partial-*"))
    assert leftovers and list(leftovers[0].glob("model-*.safetensors"))  # it really was killed midway
    assert not (leftovers[0] / "config.json").exists()
    with pytest.raises(OSError):
        AutoModelForImageTextToText.from_pretrained(str(out))
    result = convert(fixture, out, max_shard_size="200KB", verify=True, progress=False)
    assert_converted_parity(result, fixture)
    assert not list(tmp_path.glob(".out.partial-*"))  # the stale partial folder was cleaned up


@pytest.mark.parametrize(
    "name",
    ["videochat2_it_vicuna", "videochat2_it_mistral", "videochat2_it_hd_mistral", "videochat2_it_phi", "videochat_v1"],
)
def test_videochat2_and_v1_fixtures_convert_and_reproduce_original_outputs(tmp_path, name):
    fixture = shared_path("fixtures", "videochat2", name)
    result = convert(fixture, tmp_path / "out", verify=True, progress=False)
    assert_converted_parity(result, fixture)
    assert (tmp_path / "out" / "generation_config.json").is_file() and (tmp_path / "out" / "config.json").is_file()


@pytest.mark.parametrize("wrapping", ["bare", "deepspeed"])
def test_stage_checkpoint_wrappings_convert_identically(tmp_path, wrapping):
    """Stage files come as `{"model": sd}` (the fixtures), a bare `sd`, or DeepSpeed's `{"module": sd}`."""
    fixture = tmp_path / "fixture"
    shutil.copytree(shared_path("fixtures", "videochat2", "videochat2_it_mistral"), fixture)
    checkpoint = fixture / "original_checkpoint.pth"
    state_dict = torch.load(checkpoint, weights_only=True)["model"]
    checkpoint.chmod(0o644)
    torch.save(state_dict if wrapping == "bare" else {"module": state_dict, "global_steps": 10}, checkpoint)
    result = convert(fixture, tmp_path / "out", verify=True, progress=False)
    assert_converted_parity(result, fixture)


# ------------------------------------------------------------------------------------------------------- LoRA fold


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_lora_fold_in_place_equals_a_fresh_float32_fold(dtype, monkeypatch):
    """The block-wise fold (into a new tensor or into the weight itself) rounds every element once from float32:
    the same bits as folding the whole matrix in float32, in any block size."""
    from videochat.convert import keymap

    generator = torch.Generator().manual_seed(0)
    weight = (torch.randn(300, 70, generator=generator) * 0.02).to(dtype)
    lora_a, lora_b = torch.randn(4, 70, generator=generator) * 0.01, torch.randn(300, 4, generator=generator) * 0.01
    whole = (weight.float() + 2.0 * lora_b @ lora_a).to(dtype)
    monkeypatch.setattr(keymap, "LORA_CHUNK_ELEMENTS", 70 * 7)  # 43 blocks of 7 rows, the last one short
    fresh = keymap.merge_lora(weight, lora_a, lora_b, 2.0)
    assert torch.equal(fresh, whole) and fresh.dtype == dtype and not torch.equal(fresh, weight)
    in_place = weight.clone()
    assert keymap.merge_lora(in_place, lora_a, lora_b, 2.0, out=in_place).data_ptr() == in_place.data_ptr()
    assert torch.equal(in_place, whole)


def test_converter_folds_into_the_freshly_read_weight(tmp_path, monkeypatch):
    """Safetensors sources are read into fresh buffers, which the converter folds LoRA into (no second tensor)."""
    from videochat.convert import keymap

    calls = []
    merge_lora = keymap.merge_lora

    def recording(weight, lora_a, lora_b, scaling, out=None):
        calls.append(out is weight)
        return merge_lora(weight, lora_a, lora_b, scaling, out=out)

    monkeypatch.setattr(keymap, "merge_lora", recording)
    fixture = shared_path("fixtures", "internvideo2_chat", "tiny_hd")
    result = convert(fixture, tmp_path / "converted", preset="internvideo2-chat-8b-hd", progress=False)
    assert calls and all(calls)
    assert_parity(verify_converted_folder(result.output, fixture))

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""The shape of the codebase: one package in four layers with imports only downward, folders written by 0.1.0 keep
loading, and a new family member is a preset record, a key map and a template."""

import ast
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from conftest import SHARED
from safetensors.torch import load_file, save_file

import videochat
from videochat import VideoChatForConditionalGeneration, VideoChatProcessor
from videochat.convert import presets
from videochat.convert.key_maps import KEY_MAPS
from videochat.convert.key_maps.videochat2 import videochat2_key_map
from videochat.convert.presets import CHAT_TEMPLATE_DIR


SOURCE_ROOT = Path(videochat.__file__).resolve().parent.parent
PACKAGE_DIR = SOURCE_ROOT / "videochat"
LAYERS = ("core", "convert", "parity", "cli")  # each may import only from itself and the layers before it
ASSETS_0_1_0 = Path(__file__).parent / "assets" / "videochat_0.1.0"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    if module == "videochat.__main__":  # `python -m videochat`: an entry point, the CLI's front door
        return "cli"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS[1:] else "core"


def _imported_modules(path: Path) -> list[tuple[str, int, bool]]:
    """`(absolute module, line, inside a function)` for every `videochat` import of one file."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    function_nodes = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    local = {id(inner) for function in function_nodes for inner in ast.walk(function)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            names = [name] if node.module or not node.level else [f"{name}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [(name, node.lineno, id(node) in local) for name in names if name.split(".")[0] == "videochat"]
    return found


def _all_imports():
    return {path: _imported_modules(path) for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def test_source_tree_holds_one_top_level_package():
    packages = [child.name for child in SOURCE_ROOT.iterdir() if (child / "__init__.py").is_file()]
    modules = [child.name for child in SOURCE_ROOT.glob("*.py")]
    assert packages == ["videochat"] and not modules, (packages, modules)


def test_wheel_installs_one_top_level_package_with_every_module(tmp_path):
    """`pip install .` ships exactly `videochat` (top_level.txt) and every module and template of the source tree."""
    project = SOURCE_ROOT.parent
    build_dir = tmp_path / "project"
    shutil.copytree(SOURCE_ROOT, build_dir / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "setup.cfg", "README.md"):
        shutil.copy(project / name, build_dir / name)
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", ".", "-w", "dist"]
    subprocess.run(command, cwd=build_dir, check=True, capture_output=True)
    (wheel,) = (build_dir / "dist").glob("videochat-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        top_level = next(name for name in names if name.endswith(".dist-info/top_level.txt"))
        assert archive.read(top_level).decode().split() == ["videochat"]
    sources = {
        path.relative_to(SOURCE_ROOT).as_posix()
        for path in PACKAGE_DIR.rglob("*")
        if path.suffix in (".py", ".jinja") and "__pycache__" not in path.parts
    }
    assert sources - names == set(), sorted(sources - names)


COPYRIGHT_HEADER = "# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0."


def test_every_python_file_starts_with_the_one_copyright_header():
    project = SOURCE_ROOT.parent
    files = [
        path
        for folder in ("src", "tests", "bench")
        for path in sorted((project / folder).rglob("*.py"))
        if ".cache" not in path.parts and "assets" not in path.parts
    ]
    assert len(files) > 50
    wrong = [
        str(path.relative_to(project)) for path in files if not path.read_text().startswith(COPYRIGHT_HEADER + "\n")
    ]
    assert wrong == []


def test_imports_only_point_down_the_layers():
    upward = []
    for path, imports in _all_imports().items():
        own = LAYERS.index(_layer(_module_name(path)))
        for name, line, _ in imports:
            if LAYERS.index(_layer(name)) > own:
                upward.append(f"{path.relative_to(SOURCE_ROOT)}:{line} imports {name}")
    assert not upward, "\n".join(upward)


def test_no_modeling_module_imports_a_processing_module():
    offenders = [
        f"{path.name}:{line} imports {name}"
        for path, imports in _all_imports().items()
        if path.name.startswith("modeling_")
        for name, line, _ in imports
        if name.rsplit(".", 1)[-1].startswith(("processing_", "image_processing_", "video_processing_"))
    ]
    assert not offenders, offenders


def test_package_imports_are_module_level():
    """Function-local imports of our own modules are how import cycles hide; the layering needs none."""
    local = [
        f"{path.relative_to(SOURCE_ROOT)}:{line} imports {name}"
        for path, imports in _all_imports().items()
        for name, line, is_local in imports
        if is_local
    ]
    assert not local, "\n".join(local)


def test_import_walker_sees_an_upward_edge(tmp_path, monkeypatch):
    """Negative control for the walker: a core module importing `videochat.cli` is reported as core -> cli."""
    fake_root = tmp_path / "src"
    (fake_root / "videochat").mkdir(parents=True)
    bad = fake_root / "videochat" / "modeling_bad.py"
    bad.write_text("from .cli import chat\n\n\ndef f():\n    from .convert import presets\n")
    monkeypatch.setattr(sys.modules[__name__], "SOURCE_ROOT", fake_root)
    imports = _imported_modules(bad)
    assert imports == [("videochat.cli", 1, False), ("videochat.convert", 5, True)]
    assert [_layer(name) for name, _, _ in imports] == ["cli", "convert"]


# ---------------------------------------------------------------------------------------------------------------------
# Folders written by 0.1.0
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoder", ["internvideo2", "umt", "eva_gmhra"])
def test_folder_converted_by_0_1_0_gives_identical_logits(encoder):
    folder = ASSETS_0_1_0 / encoder
    recorded = load_file(folder / "expected_0.1.0.safetensors")
    legacy_config = json.loads((folder / "config.json").read_text())
    assert legacy_config["vision_config"]["model_type"] == "videochat_vision", "not the 0.1.0 union vision config"
    model = VideoChatForConditionalGeneration.from_pretrained(folder).eval()
    assert model.config.vision_config.model_type.startswith("videochat_") and (
        model.config.vision_config.model_type != "videochat_vision"
    )
    with torch.no_grad():
        logits = model(
            input_ids=recorded["input_ids"],
            attention_mask=recorded["attention_mask"],
            pixel_values_videos=recorded["pixel_values_videos"],
            qformer_input_ids=recorded.get("qformer_input_ids"),
            qformer_attention_mask=recorded.get("qformer_attention_mask"),
        ).logits
    assert torch.equal(logits, recorded["logits"]), (logits - recorded["logits"]).abs().max()


@pytest.mark.parametrize("encoder", ["internvideo2", "umt", "eva_gmhra"])
def test_processor_of_a_0_1_0_folder_loads(encoder):
    processor = VideoChatProcessor.from_pretrained(ASSETS_0_1_0 / encoder)
    pixels = torch.rand(4, 3, 28, 28)
    # the tiny tokenizers of these folders know lowercase letters only: anything else becomes <unk>, which is also
    # their placeholder id, and is refused with a clear error instead of adding a stray visual position
    batch = processor(text="<video>what", videos=[pixels], return_tensors="pt")
    assert batch["input_ids"].shape[0] == 1 and "pixel_values_videos" in batch
    with pytest.raises(ValueError, match="which this model uses for its <video> placeholder"):
        processor(text="<video> What happens?", videos=[pixels], return_tensors="pt")


# ---------------------------------------------------------------------------------------------------------------------
# A new family member: a preset record, a key map and a template, nothing else
# ---------------------------------------------------------------------------------------------------------------------

MISTRAL_FIXTURE = SHARED / "fixtures" / "videochat2" / "videochat2_it_mistral"
TEST_CLASS = "VideoChat2_it_qwen2_test"


def _qwen2_variant_of_the_mistral_fixture(root: Path) -> Path:
    """The VideoChat2-Mistral fixture re-expressed as a hypothetical VideoChat2 with a Qwen2 LLM (`qwen_model`,
    `qwen_proj`): the Mistral weights plus zero q/k/v biases, so the original outputs stay the reference."""
    fixture = root / "videochat2_it_qwen2_test"
    shutil.copytree(MISTRAL_FIXTURE, fixture, ignore=shutil.ignore_patterns("llm", "original_checkpoint.pth"))
    original = json.loads((MISTRAL_FIXTURE / "original_config.json").read_text())
    model = original["model"]
    model["model_cls"] = TEST_CLASS
    model["qwen_model_path"] = model.pop("mistral_model_path")
    (fixture / "original_config.json").write_text(json.dumps(original))
    stage = torch.load(MISTRAL_FIXTURE / "original_checkpoint.pth", map_location="cpu", weights_only=True)
    stage["model"] = {
        key.replace("mistral_model.", "qwen_model.", 1).replace("mistral_proj.", "qwen_proj.", 1): value
        for key, value in stage["model"].items()
    }
    torch.save(stage, fixture / "original_checkpoint.pth")
    # the tokenizer files stay Mistral's: next to a qwen2 config.json, AutoTokenizer would pick Qwen2's class
    skip = shutil.ignore_patterns("*config.json", "*.safetensors")
    shutil.copytree(MISTRAL_FIXTURE / "llm", fixture / "llm_tokenizer", ignore=skip)
    shutil.copy(MISTRAL_FIXTURE / "llm" / "tokenizer_config.json", fixture / "llm_tokenizer")
    llm = fixture / "llm"
    llm.mkdir()
    mistral = json.loads((MISTRAL_FIXTURE / "llm" / "config.json").read_text())
    qwen2 = {key: value for key, value in mistral.items() if key not in ("sliding_window", "head_dim")}
    qwen2.update(model_type="qwen2", architectures=["Qwen2ForCausalLM"], use_sliding_window=False)
    (llm / "config.json").write_text(json.dumps(qwen2))
    weights = load_file(MISTRAL_FIXTURE / "llm" / "model.safetensors")
    for name in list(weights):
        if name.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight")):
            weights[name.replace(".weight", ".bias")] = torch.zeros(weights[name].shape[0])
    save_file(weights, llm / "model.safetensors")
    return fixture


@pytest.fixture
def qwen2_test_preset(tmp_path, monkeypatch):
    """The three additions, made at test time: a record, a key map, a template file."""
    template = tmp_path / "qwen2_test.jinja"
    template.write_text("{#- test-only preset -#}\n" + (CHAT_TEMPLATE_DIR / "mistral.jinja").read_text())
    mistral = presets.get_preset("videochat2-mistral-7b")
    record = presets._preset(
        "videochat2-qwen2-test",
        original="test only",
        layout="videochat2",
        key_map="videochat2_qwen2_test",
        original_class=TEST_CLASS,
        vision=presets.UMT_L16_VISION,
        text={**mistral.config["text_config"], "model_type": "qwen2"},
        image_processor=mistral.image_processor,
        processor={},
        chat_template=str(template),
        tokenizer=None,
        generation={"do_sample": False, "max_new_tokens": 7, "eos_token_id": 2, "pad_token_id": 2},
    )
    monkeypatch.setitem(presets.PRESETS, record.name, record)
    key_map = videochat2_key_map("videochat2_qwen2_test", "qwen_model", "qwen_proj")
    monkeypatch.setitem(KEY_MAPS, "videochat2_qwen2_test", lambda config: key_map)
    return record


def test_a_new_llm_preset_is_a_record_a_key_map_and_a_template(tmp_path, qwen2_test_preset):
    from videochat.convert.converter import convert
    from videochat.parity import run_fixture

    fixture = _qwen2_variant_of_the_mistral_fixture(tmp_path / "fixtures")
    report = run_fixture(fixture)  # detects the new record from the original class, converts, compares
    assert report["ok"] and report["greedy_equal"], report["failures"]
    assert len(report["tensors"]) >= 10, report["tensors"]

    result = convert(fixture, tmp_path / "converted", progress=False)
    converted = tmp_path / "converted"
    assert result.preset == "videochat2-qwen2-test"
    config = json.loads((converted / "config.json").read_text())
    assert config["text_config"]["model_type"] == "qwen2"
    assert (converted / "chat_template.jinja").read_text().startswith("{#- test-only preset -#}")
    assert json.loads((converted / "generation_config.json").read_text())["max_new_tokens"] == 7
    model = VideoChatForConditionalGeneration.from_pretrained(converted)
    assert type(model.model.language_model).__name__ == "Qwen2Model"

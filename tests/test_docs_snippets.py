# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Every ```python block of README.md and docs/**/*.md runs against a tiny converted checkpoint (offline), and every
public class of `videochat` has an `[[autodoc]]` entry."""

import inspect
import re
import shutil
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(path: Path) -> list[tuple[int, str]]:
    text = path.read_text(encoding="utf-8")
    return [(text[: match.start()].count("\n") + 1, match.group(1)) for match in PYTHON_BLOCK.finditer(text)]


SNIPPETS = [(path, line, code) for path in DOC_FILES for line, code in python_blocks(path)]


@pytest.fixture(scope="session")
def doc_workspace(tmp_path_factory):
    """Real paths for the placeholders the docs use: an original-layout checkpoint, its conversion and a video."""
    from videochat.cli.demo import write_demo_video, write_original_checkpoint
    from videochat.convert.converter import convert

    root = tmp_path_factory.mktemp("docs")
    original = write_original_checkpoint(root / "original", seed=0)
    convert(original, root / "converted", preset="internvideo2-chat-8b-hd", progress=False)
    video = write_demo_video(root / "clip.mp4", num_frames=24)
    yield {
        "path/to/original": str(original),
        "path/to/converted": str(root / "converted"),
        "path/to/output": str(root / "output"),
        "clip.mp4": str(video),
        **internvideo2_workspace(root),
    }
    shutil.rmtree(root, ignore_errors=True)


def internvideo2_workspace(root: Path) -> dict:
    """The InternVideo2 page's placeholders: the tiny fixtures' conversions and a folder of generated clips."""
    from internvideo2_testing import convert_fixture, write_clip

    videos = root / "videos"
    videos.mkdir()
    for index in range(3):
        write_clip(videos / f"clip{index}.mp4", num_frames=16, seed=index)
    return {
        "path/to/internvideo2-stage2": str(convert_fixture("stage2", root / "internvideo2-stage2")),
        "path/to/internvideo2-classifier": str(convert_fixture("stage1", root / "internvideo2-classifier")),
        "path/to/videos": str(videos),
    }


def substitute(code: str, paths: dict) -> str:
    for placeholder, real in paths.items():
        code = code.replace(f'"{placeholder}"', repr(real))
    return code


def test_docs_have_python_snippets():
    per_file = {path.relative_to(REPO).as_posix(): len(python_blocks(path)) for path in DOC_FILES}
    assert per_file.get("README.md", 0) >= 1
    assert per_file.get("docs/source/en/model_doc/videochat.md", 0) >= 8
    assert per_file.get("docs/source/en/fine_tuning.md", 0) >= 2
    assert per_file.get("docs/source/en/conversion.md", 0) >= 2
    assert per_file.get("docs/source/en/model_doc/internvideo2.md", 0) >= 4


@pytest.mark.parametrize(
    ("path", "line", "code"),
    SNIPPETS,
    ids=[f"{path.relative_to(REPO).as_posix()}:{line}" for path, line, _ in SNIPPETS],
)
def test_snippet_runs(path, line, code, doc_workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # snippets that write relative paths (offload folders, outputs) stay in tmp
    code = substitute(code, doc_workspace)
    for placeholder in doc_workspace:
        assert f'"{placeholder}"' not in code
    namespace = {"__name__": "__doc_snippet__"}  # a fresh namespace per snippet
    exec(compile(code, f"{path.name}:{line}", "exec"), namespace)


def test_a_broken_snippet_fails(doc_workspace):
    """The runner really executes the code: a snippet using a wrong path raises."""
    code = substitute(
        'from transformers import AutoProcessor\nAutoProcessor.from_pretrained("path/to/converted/missing")',
        doc_workspace,
    )
    with pytest.raises(OSError):
        exec(compile(code, "broken", "exec"), {})


def autodoc_entries() -> set[str]:
    entries = set()
    for path in DOC_FILES:
        entries |= set(re.findall(r"^\[\[autodoc\]\]\s+(\S+)", path.read_text(encoding="utf-8"), re.MULTILINE))
    return entries


def test_every_public_class_has_an_autodoc_entry():
    import videochat

    classes = [name for name in videochat.__all__ if inspect.isclass(getattr(videochat, name))]
    assert len(classes) >= 8
    entries = autodoc_entries()
    missing = [name for name in classes if name not in entries and f"videochat.{name}" not in entries]
    assert not missing, f"no [[autodoc]] entry for {missing}"


def test_autodoc_entries_resolve_to_importable_objects():
    import importlib

    import videochat

    for entry in autodoc_entries():
        if "." in entry:
            module, _, name = entry.rpartition(".")
            assert hasattr(importlib.import_module(module), name), entry
        else:
            assert hasattr(videochat, entry), entry


def test_model_doc_page_has_the_doc_builder_layout():
    text = (REPO / "docs/source/en/model_doc/videochat.md").read_text(encoding="utf-8")
    assert text.startswith("<!--Copyright") and "Apache License" in text.split("-->")[0]
    for section in (
        "## Overview",
        "Chat template",
        "Batched generation",
        "HD tiling",
        "Frame sampling",
        "Conversion",
        "lmms-eval",
        "llm_int8_skip_modules",
        "device_map",
    ):
        assert section in text, section
    toctree = (REPO / "docs/source/en/_toctree.yml").read_text(encoding="utf-8")
    for local in re.findall(r"local:\s*(\S+)", toctree):
        assert (REPO / "docs/source/en" / f"{local}.md").is_file(), local

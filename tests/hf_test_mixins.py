# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""transformers' own common test mixins (`ModelTesterMixin`, `ConfigTester`, `ProcessorTesterMixin`, ...) of the
pinned release, fetched from its source distribution on PyPI at test time. Nothing of it is committed.

The transformers wheel ships no tests; its sdist carries `tests/test*.py` (the top level only: setuptools adds
`tests/test*.py` to every sdist by default). Those files import four modules that are not in that selection, so small
stand-ins are written next to them:

* `tests/generation/test_utils.py` (`GenerationTesterMixin`): an empty mixin; our own generation tests live in
  `tests/test_generation.py`;
* `tests/exporters/test_export.py` (`ExportTesterMixin`, a base of `ModelTesterMixin`): an empty mixin;
* `tests/utils/test_configuration_utils.py` (`config_common_kwargs`): non-default values of the common config kwargs;
* `utils/fetch_hub_objects_for_ci.py` (`url_to_local_path`): writes the images / videos the processor tests name
  locally (a noise PNG, an H.264 MP4 made with PyAV) instead of downloading them.

Cache layout (`<cache>` = `$VIDEOCHAT_HF_TESTS_CACHE`, by default `<repo>/.cache/hf-tests`, ignored by git):

    <cache>/transformers-<version>/
        transformers_tests/      the sdist's tests/test*.py byte for byte, an empty __init__.py and the stand-ins
        utils/                   fetch_hub_objects_for_ci.py (the processor tests append `<tests>/../utils`)
        COMPLETE                 written last

The package is called `transformers_tests` so that it never clashes with our `tests/`, and the relative imports
inside the transformers files resolve inside it. `VIDEOCHAT_REQUIRE_HF_MIXINS=1` (set it in CI) turns a failed
download into an error instead of a module skip.
"""

import hashlib
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
import transformers


TRANSFORMERS_VERSION = "5.23.0"
# sha256 of transformers-5.23.0.tar.gz on PyPI (pip checks it with --require-hashes; checked again after download)
SDIST_SHA256 = "19d647a4d5d903a7c644ca5cde2d86efc3dde7d8c687ae7988806ff2205efa71"
PACKAGE = "transformers_tests"
REPO_ROOT = Path(__file__).resolve().parents[1]

# pytest markers the transformers test files use (their pyproject / conftest, which we do not import, registers them)
HF_MARKERS = (
    "accelerate_tests",
    "all_flash_attn_test",
    "bitsandbytes",
    "flash_attn_3_test",
    "flash_attn_4_test",
    "flash_attn_test",
    "generate",
    "is_expert_parallel_test",
    "is_fsdp_test",
    "is_tensor_parallel_test",
    "is_training_test",
    "torch_compile_test",
)

_STAND_INS = {
    "generation/__init__.py": "",
    "generation/test_utils.py": '''\
"""Stand-in (videochat): the transformers sdist has no tests/generation/; see tests/test_generation.py."""


class GenerationTesterMixin:
    videochat_stand_in = True
''',
    "exporters/__init__.py": "",
    "exporters/test_export.py": '''\
"""Stand-in (videochat): the transformers sdist has no tests/exporters/."""


class ExportTesterMixin:
    videochat_stand_in = True
''',
    "utils/__init__.py": "",
    "utils/test_configuration_utils.py": '''\
"""Stand-in (videochat): non-default values of the common `PreTrainedConfig` kwargs, used by
`ConfigTester.check_config_arguments_init`."""

config_common_kwargs = {
    "return_dict": False,
    "output_hidden_states": True,
    "output_attentions": True,
    "dtype": "float16",
    "tie_word_embeddings": False,
    "is_decoder": True,
    "cross_attention_hidden_size": 128,
    "add_cross_attention": True,
    "chunk_size_feed_forward": 5,
    "architectures": ["BertModel"],
    "id2label": {0: "label"},
    "label2id": {"label": "0"},
    "problem_type": "regression",
    "bos_token_id": 2,
    "pad_token_id": 3,
    "eos_token_id": 4,
    "sep_token_id": 6,
    "decoder_start_token_id": 7,
}
''',
}
_FETCH_HUB_STAND_IN = '''\
"""Stand-in (videochat): transformers' CI downloads the hub media the common tests name and maps each URL to the
local copy. Here the images and videos are written locally (a deterministic noise image, a 30-frame H.264 MP4 made
with PyAV), so the tests never reach the network. Other URLs are returned unchanged."""

import os
from pathlib import Path

import av
import numpy as np
from PIL import Image

_FOLDER = Path(__file__).resolve().parent / "hub_objects"


def _image(path, width=320, height=240):
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG")


def _video(path, num_frames=30, width=320, height=240, fps=10):
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        rows, cols = np.mgrid[0:height, 0:width]
        for index in range(num_frames):
            frame = np.stack([(cols + 7 * index) % 256, (rows + 3 * index) % 256, (rows + cols) % 256], -1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame.astype(np.uint8), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def url_to_local_path(url, return_url_if_not_found=True):
    if not isinstance(url, str) or not url.startswith("http"):
        return url
    name = url.rsplit("/", 1)[-1]
    suffix = os.path.splitext(name)[1].lower()
    if suffix not in (".png", ".jpg", ".jpeg", ".mp4"):
        return url
    _FOLDER.mkdir(exist_ok=True)
    path = _FOLDER / name
    if not path.exists():
        partial = path.with_name(f".{os.getpid()}{suffix}")
        (_video if suffix == ".mp4" else _image)(partial)
        os.replace(partial, path)
    return str(path)
'''


class HFMixinsUnavailable(RuntimeError):
    """The pinned transformers test files could not be obtained."""


def cache_root() -> Path:
    return Path(os.environ.get("VIDEOCHAT_HF_TESTS_CACHE", REPO_ROOT / ".cache" / "hf-tests"))


def _download_sdist(folder: Path) -> Path:
    """`pip download` the pinned, hash-checked sdist into `folder`; returns the tarball."""
    requirement = folder / "requirement.txt"
    requirement.write_text(f"transformers=={TRANSFORMERS_VERSION} --hash=sha256:{SDIST_SHA256}\n")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--require-hashes"]
    command += ["--disable-pip-version-check", "-q", "-d", str(folder), "-r", str(requirement)]
    result = subprocess.run(command, capture_output=True, text=True)
    tarball = folder / f"transformers-{TRANSFORMERS_VERSION}.tar.gz"
    if result.returncode != 0 or not tarball.exists():
        raise HFMixinsUnavailable(f"pip download failed ({result.returncode}): {result.stderr[-2000:]}")
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise HFMixinsUnavailable(f"sha256 mismatch for {tarball.name}: {digest}")
    return tarball


def _extract_tests(tarball: Path, package_dir: Path) -> None:
    """Copy `<sdist>/tests/*.py` (regular files of the top level only) into `package_dir`."""
    prefix = f"transformers-{TRANSFORMERS_VERSION}/tests/"
    with tarfile.open(tarball) as archive:
        for member in archive.getmembers():
            name = member.name[len(prefix) :] if member.name.startswith(prefix) else ""
            if name.endswith(".py") and "/" not in name and member.isfile():
                (package_dir / name).write_bytes(archive.extractfile(member).read())
    if not (package_dir / "test_modeling_common.py").exists():
        raise HFMixinsUnavailable(f"{tarball.name} has no tests/test_modeling_common.py")


def _populate(target: Path) -> None:
    package_dir = target / PACKAGE
    package_dir.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as download_dir:
        _extract_tests(_download_sdist(Path(download_dir)), package_dir)
    # must stay empty: ConfigTester executes the package's __init__.py as a module named `transformers`
    (package_dir / "__init__.py").write_text("")
    for relative, text in _STAND_INS.items():
        path = package_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (target / "utils").mkdir()
    (target / "utils" / "fetch_hub_objects_for_ci.py").write_text(_FETCH_HUB_STAND_IN)


def ensure_hf_test_package() -> Path:
    """The folder holding the `transformers_tests` package, fetched on first use. Built in a temporary sibling and
    renamed into place, so concurrent test workers never see a half-written folder."""
    if transformers.__version__ != TRANSFORMERS_VERSION:
        raise HFMixinsUnavailable(
            f"installed transformers {transformers.__version__} is not the pinned {TRANSFORMERS_VERSION}"
        )
    root = cache_root()
    target = root / f"transformers-{TRANSFORMERS_VERSION}"
    if (target / "COMPLETE").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    try:
        _populate(staging)
        (staging / "COMPLETE").write_text(f"{TRANSFORMERS_VERSION} sha256:{SDIST_SHA256}\n")
        try:
            staging.rename(target)
        except OSError:  # another worker finished first
            if not (target / "COMPLETE").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def import_hf_test_module(name: str):
    """`import_hf_test_module("test_modeling_common")`: the module, or a module-level skip when it cannot be
    fetched (an error under `VIDEOCHAT_REQUIRE_HF_MIXINS=1`)."""
    try:
        if importlib.util.find_spec("parameterized") is None:
            raise HFMixinsUnavailable("`parameterized` is not installed (pip install -e '.[test]')")
        folder = ensure_hf_test_package()
    except HFMixinsUnavailable as error:
        if os.environ.get("VIDEOCHAT_REQUIRE_HF_MIXINS") == "1":
            raise
        pytest.skip(f"transformers test mixins unavailable: {error}", allow_module_level=True)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return importlib.import_module(f"{PACKAGE}.{name}")

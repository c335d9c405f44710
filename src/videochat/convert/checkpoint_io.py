# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Safe, lazy readers for original checkpoints: `.safetensors` (single or sharded with an index), `.pth`/`.bin`
(`torch.load(weights_only=True, mmap=True)`; a pickle that would run code is refused, never executed), and views
that present several files as one `{key: tensor}` namespace with `shape()` / `dtype()` known before any read."""

import json
import os
import pickle
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from safetensors import safe_open

from .writer import TORCH_DTYPES


NESTING_KEYS = ("model", "module", "state_dict")


class UnsafeCheckpointError(ValueError):
    """The pickle asks for something `weights_only=True` refuses (code execution); it was not run."""


def _unwrap(obj) -> dict[str, torch.Tensor]:
    """`{"model": sd}`, `{"module": sd}` (DeepSpeed), `{"state_dict": sd}` or a bare `sd` -> the tensor dict."""
    while isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        inner = next((obj[key] for key in NESTING_KEYS if key in obj and isinstance(obj[key], Mapping)), None)
        if inner is None:
            raise ValueError(f"no state dict found in checkpoint (top-level keys: {sorted(obj)[:10]})")
        obj = inner
    if not isinstance(obj, Mapping):
        raise ValueError(f"checkpoint holds a {type(obj).__name__}, not a state dict")
    tensors = {key: value for key, value in obj.items() if isinstance(value, torch.Tensor)}
    others = sorted(key for key, value in obj.items() if not isinstance(value, torch.Tensor))
    if others:
        raise ValueError(f"state dict has non-tensor entries: {others[:10]}")
    return tensors


def load_pickle_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a `.pth` / `.bin` state dict with `weights_only=True` (memory-mapped when the format allows)."""
    path = Path(path)
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as error:
            if "mmap" not in str(error):
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise UnsafeCheckpointError(
            f"refusing to load {path}: it is not a plain tensor checkpoint and loading it would need to execute code "
            f"(torch.load weights_only=True said: {str(error).splitlines()[0]})"
        ) from None
    except (EOFError, RuntimeError, OSError) as error:
        raise ValueError(f"cannot read checkpoint {path}: {error}") from None
    return _unwrap(obj)


class LazyCheckpoint(Mapping):
    """Read-only `{key: tensor}` view over one or more checkpoint files; safetensors tensors are read on access."""

    def __init__(self, paths: list[Path]):
        self._files: dict[str, Path] = {}
        self._pickles: dict[str, dict[str, torch.Tensor]] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        for path in paths:
            self._add(Path(path))

    def _add(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint file not found: {path}")
        if path.suffix == ".safetensors":
            try:
                with safe_open(str(path), framework="pt") as handle:
                    for key in handle.keys():
                        self._files[key] = path
                        self._shapes[key] = tuple(handle.get_slice(key).get_shape())
            except Exception as error:  # safetensors raises its own error types for truncated/corrupt headers
                raise ValueError(f"cannot read safetensors file {path} (truncated or corrupt?): {error}") from None
        else:
            state_dict = load_pickle_checkpoint(path)
            self._pickles[str(path)] = state_dict
            for key, tensor in state_dict.items():
                self._files[key] = path
                self._shapes[key] = tuple(tensor.shape)

    def shape(self, key: str) -> tuple[int, ...]:
        return self._shapes[key]

    def __getitem__(self, key: str) -> torch.Tensor:
        path = self._files[key]
        if path.suffix == ".safetensors":
            try:
                with safe_open(str(path), framework="pt") as handle:
                    return handle.get_tensor(key)
            except Exception as error:
                raise ValueError(f"cannot read tensor {key!r} from {path} (truncated or corrupt?): {error}") from None
        return self._pickles[str(path)][key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)


def read_safetensors_header(path: str | Path) -> dict:
    """The JSON header of a safetensors file (names, dtypes, shapes, offsets) without reading any tensor data."""
    path = Path(path)
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{path} is not a safetensors file (truncated before the header)")
        (length,) = struct.unpack("<Q", prefix)
        if length > 100 * 2**20 or length > path.stat().st_size - 8:
            raise ValueError(f"{path} has an invalid safetensors header length {length} (truncated or corrupt?)")
        return json.loads(handle.read(length))


class SafetensorsReader:
    """Reads whole tensors of safetensors files with positioned reads into fresh buffers: one copy, no page-fault
    storm of a fresh memory map per tensor. Offsets come from the headers; a file shorter than its header says is
    rejected up front."""

    def __init__(self, paths: list[Path]):
        self._entries: dict[str, tuple[Path, torch.dtype, tuple[int, ...], int, int]] = {}
        self._descriptors: dict[Path, int] = {}
        for path in paths:
            header = read_safetensors_header(path)
            with open(path, "rb") as handle:
                base = 8 + struct.unpack("<Q", handle.read(8))[0]
            size = path.stat().st_size
            for key, entry in header.items():
                if key == "__metadata__":
                    continue
                start, end = entry["data_offsets"]
                if base + end > size:
                    raise ValueError(
                        f"{path} is truncated: tensor {key!r} ends at byte {base + end} but the file has {size}"
                    )
                self._entries[key] = (
                    Path(path),
                    TORCH_DTYPES[entry["dtype"]],
                    tuple(entry["shape"]),
                    base + start,
                    base + end,
                )

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def dtype(self, key: str) -> torch.dtype:
        return self._entries[key][1]

    def read(self, key: str) -> torch.Tensor:
        path, dtype, shape, start, end = self._entries[key]
        if path not in self._descriptors:
            self._descriptors[path] = os.open(path, os.O_RDONLY)
        buffer = torch.empty(end - start, dtype=torch.uint8)
        view = memoryview(buffer.numpy())
        done = 0
        while done < end - start:
            count = os.preadv(self._descriptors[path], [view[done:]], start + done)
            if count <= 0:
                raise ValueError(f"{path} is truncated: could not read tensor {key!r}")
            done += count
        return buffer.view(dtype).reshape(shape)

    def location(self, key: str) -> tuple[int, int, torch.dtype, tuple[int, ...]]:
        """`(descriptor, byte offset, dtype, shape)` of a stored tensor, for kernel-side copies."""
        path, dtype, shape, start, _ = self._entries[key]
        if path not in self._descriptors:
            self._descriptors[path] = os.open(path, os.O_RDONLY)
        return self._descriptors[path], start, dtype, shape

    def close(self) -> None:
        for descriptor in self._descriptors.values():
            os.close(descriptor)
        self._descriptors.clear()


def checkpoint_files(source: str | Path) -> list[Path]:
    """The weight files of `source`: a file, or a folder with `model.safetensors[.index.json]` or one `.pth`/`.bin`."""
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise FileNotFoundError(f"checkpoint not found: {source}")
    index = source / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        return sorted({source / name for name in weight_map.values()})
    for pattern in ("model.safetensors", "*.safetensors", "pytorch_model.bin", "*.pth", "*.bin"):
        found = sorted(source.glob(pattern))
        if found:
            return found
    raise FileNotFoundError(f"no checkpoint files (*.safetensors, *.pth, *.bin) in {source}")


def open_checkpoint(source: str | Path) -> LazyCheckpoint:
    return LazyCheckpoint(checkpoint_files(source))


class SourceTensors(Mapping):
    """The tensors of one checkpoint for streaming: safetensors tensors are read with positioned reads
    (`SafetensorsReader`), pickled ones come from the (validated, `weights_only`) `LazyCheckpoint`."""

    def __init__(self, files: list[Path]):
        self.checkpoint = LazyCheckpoint(files)
        self.reader = SafetensorsReader([path for path in files if Path(path).suffix == ".safetensors"])

    def shape(self, key: str) -> tuple[int, ...]:
        return self.checkpoint.shape(key)

    def dtype(self, key: str) -> torch.dtype:
        return self.reader.dtype(key) if key in self.reader else self.checkpoint[key].dtype

    def __getitem__(self, key: str) -> torch.Tensor:
        return self.reader.read(key) if key in self.reader else self.checkpoint[key]

    def __iter__(self):
        return iter(self.checkpoint)

    def __len__(self) -> int:
        return len(self.checkpoint)


class CombinedSources(Mapping):
    """Read-only `{key: tensor}` view over several checkpoints, each re-prefixed into one namespace (VideoChat2's stage
    file + base LLM folder, VideoChat's four files); tensors are read from the underlying lazy mappings on access.
    Two files providing the same key is an error."""

    def __init__(self, parts: list[tuple[str, Mapping]]):
        self._index: dict[str, tuple[Mapping, str]] = {}
        for prefix, mapping in parts:
            for key in mapping:
                combined = prefix + key
                if combined in self._index:
                    raise ValueError(f"two source files provide {combined!r}")
                self._index[combined] = (mapping, key)

    def shape(self, key: str) -> tuple[int, ...]:
        mapping, inner = self._index[key]
        return tuple(mapping.shape(inner))

    def dtype(self, key: str) -> torch.dtype:
        return self[key].dtype

    def __getitem__(self, key: str) -> torch.Tensor:
        mapping, inner = self._index[key]
        return mapping[inner]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Safe, lazy readers for original checkpoints: `.safetensors` (single or sharded with an index), `.pth`/`.bin`
(`torch.load(weights_only=True, mmap=True)`; a pickle that would run code is refused, never executed)."""

import json
import pickle
from pathlib import Path
from typing import Iterator, Mapping

import torch
from safetensors import safe_open


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

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Streaming safetensors writer: shards are laid out from the planned names/shapes/dtypes before any tensor is read,
each shard's header is written first and every tensor is appended as soon as it is computed, so memory holds one
tensor at a time (never a whole shard or the whole model)."""

import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import torch


SAFETENSORS_DTYPES: dict[torch.dtype, str] = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
    torch.float8_e4m3fn: "F8_E4M3",
    torch.float8_e5m2: "F8_E5M2",
}
TORCH_DTYPES: dict[str, torch.dtype] = {name: dtype for dtype, name in SAFETENSORS_DTYPES.items()}
_SIZE_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}


def parse_size(size: int | str) -> int:
    """`"5GB"` -> 5_000_000_000 (decimal units as in `save_pretrained`; `GiB` etc. are binary)."""
    if isinstance(size, int):
        return size
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*", str(size), flags=re.IGNORECASE)
    if not found:
        raise ValueError(f"cannot parse size {size!r} (examples: 5GB, 500MB, 2GiB, 1000000)")
    return int(float(found[1]) * _SIZE_UNITS[(found[2] or "").upper()])


@dataclass(frozen=True)
class TensorSpec:
    """A tensor to be written: name, dtype and shape (known before the tensor is computed)."""

    name: str
    dtype: torch.dtype
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        numel = 1
        for dim in self.shape:
            numel *= dim
        return numel * torch.empty((), dtype=self.dtype).element_size()


def plan_shards(specs: list[TensorSpec], max_shard_size: int) -> list[list[TensorSpec]]:
    """Split `specs` (in write order) into shards of at most `max_shard_size` bytes (a bigger tensor gets its own)."""
    shards: list[list[TensorSpec]] = [[]]
    current = 0
    for spec in specs:
        if shards[-1] and current + spec.nbytes > max_shard_size:
            shards.append([])
            current = 0
        shards[-1].append(spec)
        current += spec.nbytes
    return shards if shards[0] else []


def shard_file_names(num_shards: int) -> list[str]:
    if num_shards == 1:
        return ["model.safetensors"]
    return [f"model-{index:05d}-of-{num_shards:05d}.safetensors" for index in range(1, num_shards + 1)]


class ShardWriter:
    """Writes one safetensors file whose content is declared up front; `write()` appends tensors in that order."""

    def __init__(self, path: str | Path, specs: list[TensorSpec], metadata: dict[str, str] | None = None):
        self.path = Path(path)
        self._specs = list(specs)
        self._next = 0
        header: dict = {"__metadata__": {"format": "pt", **(metadata or {})}}
        offset = 0
        for spec in self._specs:
            header[spec.name] = {
                "dtype": SAFETENSORS_DTYPES[spec.dtype],
                "shape": list(spec.shape),
                "data_offsets": [offset, offset + spec.nbytes],
            }
            offset += spec.nbytes
        encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
        encoded += b" " * (-len(encoded) % 8)  # the data section starts 8-byte aligned
        self._handle = open(self.path, "wb", buffering=0)
        self._write_all(struct.pack("<Q", len(encoded)) + encoded)

    def _write_all(self, data) -> None:
        """Write every byte of `data`: one `write` call may write less (Linux caps a call at about 2 GiB; signals and
        some file systems cut writes short)."""
        view = memoryview(data).cast("B")
        while view:
            try:
                count = self._handle.write(view)
            except OSError as error:  # name the file (a bare write error does not)
                raise OSError(error.errno, error.strerror, str(self.path)) from None
            if not count:
                raise OSError(f"{self.path}: the file system accepted no more data")
            view = view[count:]

    def write(self, name: str, tensor: torch.Tensor) -> int:
        """Append `tensor` (must be the next declared one, with the declared dtype and shape); returns bytes
        written."""
        if self._next >= len(self._specs):
            raise ValueError(f"{self.path.name}: unexpected extra tensor {name!r}")
        spec = self._specs[self._next]
        if name != spec.name or tensor.dtype != spec.dtype or tuple(tensor.shape) != spec.shape:
            raise ValueError(
                f"{self.path.name}: expected {spec.name} {spec.dtype} {spec.shape}, got {name} {tensor.dtype} "
                f"{tuple(tensor.shape)}"
            )
        data = tensor.detach().cpu().contiguous().reshape(-1)
        if data.numel():
            self._write_all(data.view(torch.uint8).numpy())
        self._next += 1
        return spec.nbytes

    def write_from_file(
        self, name: str, dtype: torch.dtype, shape: tuple[int, ...], descriptor: int, offset: int
    ) -> int:
        """Append a tensor stored verbatim in another file (same dtype and shape) by a kernel-side copy
        (`copy_file_range`): no user-space buffer, no extra page faults."""
        if self._next >= len(self._specs):
            raise ValueError(f"{self.path.name}: unexpected extra tensor {name!r}")
        spec = self._specs[self._next]
        if name != spec.name or dtype != spec.dtype or tuple(shape) != spec.shape:
            raise ValueError(
                f"{self.path.name}: expected {spec.name} {spec.dtype} {spec.shape}, got {name} {dtype} {shape}"
            )
        remaining, position = spec.nbytes, offset
        output = self._handle.fileno()
        while remaining:
            try:
                count = os.copy_file_range(descriptor, output, remaining, position)
            except OSError:
                count = 0
            if count <= 0:  # not supported here (or EOF): fall back to read + write
                chunk = os.pread(descriptor, min(remaining, 64 * 2**20), position)
                if not chunk:
                    raise ValueError(f"source ended early while copying {name!r}")
                self._write_all(chunk)
                count = len(chunk)
            remaining -= count
            position += count
        self._next += 1
        return spec.nbytes

    def close(self) -> None:
        missing = [spec.name for spec in self._specs[self._next :]]
        self._handle.close()
        if missing:
            raise ValueError(f"{self.path.name}: {len(missing)} declared tensor(s) were never written: {missing[:5]}")

    def abort(self) -> None:
        self._handle.close()


def write_index(folder: Path, shards: list[list[TensorSpec]], names: list[str]) -> None:
    """`model.safetensors.index.json` (only for sharded checkpoints, as `save_pretrained`)."""
    total = sum(spec.nbytes for shard in shards for spec in shard)
    weight_map = {spec.name: file_name for shard, file_name in zip(shards, names) for spec in shard}
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2, sort_keys=False) + "\n")


__all__ = [
    "SAFETENSORS_DTYPES",
    "ShardWriter",
    "TORCH_DTYPES",
    "TensorSpec",
    "parse_size",
    "plan_shards",
    "shard_file_names",
    "write_index",
]

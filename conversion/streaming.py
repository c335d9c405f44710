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
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL", torch.float8_e4m3fn: "F8_E4M3", torch.float8_e5m2: "F8_E5M2",
}
TORCH_DTYPES: dict[str, torch.dtype] = {name: dtype for dtype, name in SAFETENSORS_DTYPES.items()}
_SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KIB": 2**10, "MIB": 2**20,
               "GIB": 2**30, "TIB": 2**40}


def parse_size(size: int | str) -> int:
    """`"5GB"` -> 5_000_000_000 (decimal units as in `save_pretrained`; `GiB` etc. are binary)."""
    if isinstance(size, int):
        return size
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*", str(size), flags=re.IGNORECASE)
    if not found:
        raise ValueError(f"cannot parse size {size!r} (examples: 5GB, 500MB, 2GiB, 1000000)")
    return int(float(found[1]) * _SIZE_UNITS[(found[2] or "").upper()])


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
                    raise ValueError(f"{path} is truncated: tensor {key!r} ends at byte {base + end} but the file has {size}")
                self._entries[key] = (Path(path), TORCH_DTYPES[entry["dtype"]], tuple(entry["shape"]), base + start, base + end)

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
        self._handle.write(struct.pack("<Q", len(encoded)))
        self._handle.write(encoded)

    def write(self, name: str, tensor: torch.Tensor) -> int:
        """Append `tensor` (must be the next declared one, with the declared dtype and shape); returns bytes written."""
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
            self._handle.write(memoryview(data.view(torch.uint8).numpy()))
        self._next += 1
        return spec.nbytes

    def write_from_file(self, name: str, dtype: torch.dtype, shape: tuple[int, ...], descriptor: int, offset: int) -> int:
        """Append a tensor stored verbatim in another file (same dtype and shape) by a kernel-side copy
        (`copy_file_range`): no user-space buffer, no extra page faults."""
        if self._next >= len(self._specs):
            raise ValueError(f"{self.path.name}: unexpected extra tensor {name!r}")
        spec = self._specs[self._next]
        if name != spec.name or dtype != spec.dtype or tuple(shape) != spec.shape:
            raise ValueError(f"{self.path.name}: expected {spec.name} {spec.dtype} {spec.shape}, got {name} {dtype} {shape}")
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
                count = self._handle.write(chunk)
            remaining -= count
            position += count
        self._next += 1
        return spec.nbytes

    def close(self) -> None:
        missing = [spec.name for spec in self._specs[self._next:]]
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


def fsync_directory(path: Path) -> None:
    """Best effort: make a rename in `path` durable."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


__all__ = [
    "SAFETENSORS_DTYPES",
    "SafetensorsReader",
    "ShardWriter",
    "TORCH_DTYPES",
    "TensorSpec",
    "parse_size",
    "plan_shards",
    "read_safetensors_header",
    "shard_file_names",
    "write_index",
]

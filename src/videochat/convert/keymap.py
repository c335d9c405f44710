# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Declarative key maps: original checkpoint names -> our parameter names.

A layout is a `KeyMap`: an ordered tuple of `Rule`s (regex over the source key -> one or more target templates plus a
`TensorTransform` object that knows `convert()` and `shapes()`) and an explicit tuple of `Drop`s (keys that are
intentionally not converted, each with the reason). `plan()` turns a list of source keys into `Operation`s without
touching any tensor, so the same map serves a full-size manifest on the meta device, a lazy streaming conversion and
the fixture checker. A source key that is neither mapped nor dropped stops the plan with the list of unknown keys.
PEFT LoRA adapters (`lora_A/lora_B`) next to a mapped weight are folded into it: `W + scaling * B @ A`, computed in
float32 and cast back.
"""

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import torch


LORA_PATTERN = re.compile(r"^(?P<base>.+)\.lora_(?P<which>[AB])(?:\.default)?\.weight$")


class UnknownKeysError(ValueError):
    """Raised when a source checkpoint holds keys that the layout neither maps nor drops."""

    def __init__(self, layout: str, keys: list[str]):
        self.keys = keys
        shown = "\n  ".join(keys[:50]) + ("\n  ..." if len(keys) > 50 else "")
        super().__init__(f"{len(keys)} unknown key(s) for layout {layout!r} (neither mapped nor dropped):\n  {shown}")


class TensorTransform:
    """How one source tensor becomes the target tensors of a rule. `convert()` works on tensors, `shapes()` on shapes
    alone (meta-device manifest checks and shard planning), and the two always agree."""

    def convert(self, tensor: torch.Tensor, num_targets: int) -> list[torch.Tensor]:
        raise NotImplementedError

    def shapes(self, shape: tuple[int, ...], num_targets: int) -> list[tuple[int, ...]]:
        raise NotImplementedError


@dataclass(frozen=True)
class Copy(TensorTransform):
    """The tensor as it is (the only transform whose bytes can be copied to the output verbatim)."""

    def convert(self, tensor, num_targets):
        return [tensor]

    def shapes(self, shape, num_targets):
        return [tuple(shape)]


@dataclass(frozen=True)
class SplitDim0(TensorTransform):
    """A fused `qkv` -> `num_targets` equal blocks along the output dimension."""

    def convert(self, tensor, num_targets):
        self.shapes(tuple(tensor.shape), num_targets)
        return [part.contiguous() for part in tensor.chunk(num_targets, dim=0)]

    def shapes(self, shape, num_targets):
        if shape[0] % num_targets:
            raise ValueError(f"cannot split a tensor of shape {tuple(shape)} into {num_targets} equal parts")
        return [(shape[0] // num_targets, *shape[1:])] * num_targets


@dataclass(frozen=True)
class InflatePatch2dTo3d(TensorTransform):
    """A 2-D patch-embedding kernel `(out, in, h, w)` -> a temporal kernel of 1 `(out, in, 1, h, w)`."""

    def convert(self, tensor, num_targets):
        return [tensor.unsqueeze(2) if tensor.ndim == 4 else tensor]

    def shapes(self, shape, num_targets):
        return [(shape[0], shape[1], 1, *shape[2:]) if len(shape) == 4 else tuple(shape)]


@dataclass(frozen=True)
class SqueezeLeading(TensorTransform):
    """A `(1, ..., 1, n)` parameter -> `(n,)`."""

    def convert(self, tensor, num_targets):
        return [tensor.reshape(tensor.shape[-1])]

    def shapes(self, shape, num_targets):
        return [(shape[-1],)]


@dataclass(frozen=True)
class SplitGroupedQKV(TensorTransform):
    """InternLM2 `wqkv` -> q, k, v. Rows are grouped per KV head: `[q (group heads), k, v]`, `head_dim` rows each."""

    num_heads: int
    num_key_value_heads: int

    def _sizes(self, rows: int) -> tuple[int, int]:
        """`(head_dim, query heads per KV group)` of a grouped `wqkv` with `rows` output rows."""
        heads, kv_heads = self.num_heads, self.num_key_value_heads
        if heads % kv_heads:
            raise ValueError(f"num_heads ({heads}) must be a multiple of num_key_value_heads ({kv_heads})")
        group = heads // kv_heads
        if rows % (kv_heads * (group + 2)):
            raise ValueError(
                f"a grouped wqkv with {rows} rows cannot hold {heads} query heads and {kv_heads} KV heads"
            )
        return rows // (kv_heads * (group + 2)), group

    def convert(self, tensor, num_targets):
        head_dim, group = self._sizes(tensor.shape[0])
        rest = tensor.shape[1:]
        grouped = tensor.reshape(self.num_key_value_heads, group + 2, head_dim, *rest)
        query = grouped[:, :group].reshape(self.num_heads * head_dim, *rest)
        key = grouped[:, group].reshape(self.num_key_value_heads * head_dim, *rest)
        value = grouped[:, group + 1].reshape(self.num_key_value_heads * head_dim, *rest)
        return [query.contiguous(), key.contiguous(), value.contiguous()]

    def shapes(self, shape, num_targets):
        head_dim, _ = self._sizes(shape[0])
        rest = tuple(shape[1:])
        kv_rows = self.num_key_value_heads * head_dim
        return [(self.num_heads * head_dim, *rest), (kv_rows, *rest), (kv_rows, *rest)]


COPY = Copy()


@dataclass(frozen=True)
class Rule:
    """`pattern` (full-match regex over a source key) -> `targets` (templates using the regex groups, `\\1` style),
    made from the source tensor by `transform`."""

    pattern: str
    targets: tuple[str, ...]
    transform: TensorTransform = COPY

    def match(self, key: str) -> re.Match | None:
        return re.fullmatch(self.pattern, key)


@dataclass(frozen=True)
class Drop:
    """Source keys (full-match regex) that are deliberately not converted, with the reason."""

    pattern: str
    reason: str


@dataclass
class Operation:
    """One conversion step: read `sources`, fold the optional LoRA pair, apply `transform`, write `targets`."""

    targets: tuple[str, ...]
    source: str
    transform: TensorTransform = COPY
    lora_a: str | None = None
    lora_b: str | None = None

    @property
    def source_keys(self) -> tuple[str, ...]:
        return tuple(key for key in (self.source, self.lora_a, self.lora_b) if key is not None)


@dataclass
class ConversionPlan:
    operations: list[Operation]
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def target_keys(self) -> list[str]:
        return [target for op in self.operations for target in op.targets]


@dataclass(frozen=True)
class KeyMap:
    """A declarative map for one original checkpoint layout."""

    name: str
    rules: tuple[Rule, ...]
    drops: tuple[Drop, ...] = ()
    # attribute of the LLM in the original class when its weights come from a separate base LLM folder
    # (VideoChat2 / VideoChat): the folder's keys are re-prefixed under it to meet the stage file's LoRA adapters
    llm_attribute: str | None = None

    def llm_prefix(self, stage_keys) -> str:
        """`<llm>.base_model.model.` when the stage checkpoint holds PEFT-wrapped (LoRA) LLM keys, else `<llm>.`."""
        if self.llm_attribute is None:
            raise ValueError(f"layout {self.name!r} takes no separate base LLM folder")
        peft_prefix = f"{self.llm_attribute}.base_model.model."
        return peft_prefix if any(key.startswith(peft_prefix) for key in stage_keys) else f"{self.llm_attribute}."

    def drop_reason(self, key: str) -> str | None:
        for drop in self.drops:
            if re.fullmatch(drop.pattern, key):
                return drop.reason
        return None

    def map_key(self, key: str) -> tuple[tuple[str, ...], str] | None:
        matched = self._match_rule(key)
        return None if matched is None else (matched[1], matched[0].transform)

    def _match_rule(self, key: str) -> tuple[Rule, tuple[str, ...]] | None:
        for rule in self.rules:
            found = rule.match(key)
            if found:
                return rule, tuple(found.expand(target) for target in rule.targets)
        return None

    def plan(self, source_keys: Iterable[str]) -> ConversionPlan:
        """Map every source key; raise `UnknownKeysError` listing the keys that are neither mapped nor dropped."""
        keys = list(source_keys)
        lora_pairs: dict[str, dict[str, str]] = {}
        for key in keys:
            found = LORA_PATTERN.match(key)
            if found:
                lora_pairs.setdefault(found["base"], {})[found["which"]] = key
        operations, dropped, unknown, claimed_lora = [], {}, [], set()
        for key in keys:
            if LORA_PATTERN.match(key):
                continue
            reason = self.drop_reason(key)
            if reason is not None:
                dropped[key] = reason
                continue
            matched = self._match_rule(key)
            if matched is None:
                unknown.append(key)
                continue
            rule, targets = matched
            lora = lora_pairs.get(key.removesuffix(".weight"), {}) if key.endswith(".weight") else {}
            if lora and set(lora) != {"A", "B"}:
                raise ValueError(f"incomplete LoRA pair for {key}: found only lora_{''.join(lora)}")
            if lora:
                claimed_lora.update(lora.values())
            operations.append(Operation(targets, key, rule.transform, lora.get("A"), lora.get("B")))
        orphan_lora = [key for pair in lora_pairs.values() for key in pair.values() if key not in claimed_lora]
        unknown.extend(key for key in orphan_lora if self.drop_reason(key) is None)
        dropped.update({key: self.drop_reason(key) for key in orphan_lora if self.drop_reason(key) is not None})
        if unknown:
            raise UnknownKeysError(self.name, sorted(unknown))
        _check_unique_targets(operations)
        return ConversionPlan(operations, dropped)


def _check_unique_targets(operations: list[Operation]) -> None:
    seen: dict[str, str] = {}
    for op in operations:
        for target in op.targets:
            if target in seen:
                raise ValueError(f"two source keys map to {target!r}: {seen[target]!r} and {op.source!r}")
            seen[target] = op.source


LORA_CHUNK_ELEMENTS = 2**22  # elements of W folded per step (a 16 MB float32 buffer): few, large steps


def merge_lora(
    weight: torch.Tensor,
    lora_a: torch.Tensor,
    lora_b: torch.Tensor,
    scaling: float,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """`W + scaling * B @ A` computed in float32 (float64 for float64 weights), returned in the weight's dtype.

    Folded by row blocks through one reused float32 buffer (`addmm_`): the working memory stays at 16 MB, and every
    element is rounded once, as a float32 fold of the whole matrix would. `out` (which may be `weight` itself, for a
    freshly read weight nobody else holds) receives the result instead of a new tensor: no fresh output memory to
    fault in, which is most of the fold's cost besides the block conversions."""
    compute = torch.float64 if weight.dtype == torch.float64 else torch.float32
    matrix = weight.reshape(weight.shape[0], -1)
    merged = torch.empty_like(matrix) if out is None else out.view(matrix.shape)
    lora_a, lora_b = lora_a.to(compute), lora_b.to(compute)
    rows = max(1, min(matrix.shape[0], LORA_CHUNK_ELEMENTS // max(1, matrix.shape[1])))
    buffer = torch.empty(rows, matrix.shape[1], dtype=compute)
    for start in range(0, matrix.shape[0], rows):
        stop = min(start + rows, matrix.shape[0])
        block = buffer[: stop - start]
        block.copy_(matrix[start:stop])
        block.addmm_(lora_b[start:stop], lora_a, alpha=scaling)
        merged[start:stop].copy_(block)
    return merged.reshape(weight.shape)


def run_operation(
    op: Operation, read: Callable[[str], torch.Tensor], lora_scaling: float | None, fold_in_place: bool = False
) -> dict[str, torch.Tensor]:
    """Materialise one operation; `read(key)` returns a source tensor (lazily loaded by the caller).
    `fold_in_place`: the weight `read` returns is a fresh buffer of this call's own, so LoRA is folded into it."""
    tensor = read(op.source)
    if op.lora_a is not None:
        if lora_scaling is None:
            raise ValueError(f"{op.source} has LoRA adapters but no LoRA scaling (lora_alpha / r) was given")
        out = tensor if fold_in_place and tensor.is_contiguous() else None
        tensor = merge_lora(tensor, read(op.lora_a), read(op.lora_b), lora_scaling, out=out)
    return dict(zip(op.targets, op.transform.convert(tensor, len(op.targets))))


def convert_state_dict(
    key_map: KeyMap, state_dict: Mapping[str, torch.Tensor], lora_scaling: float | None = None
) -> tuple[dict[str, torch.Tensor], ConversionPlan]:
    """Convert an in-memory state dict; returns our state dict and the plan (with the dropped keys and reasons)."""
    plan = key_map.plan(state_dict.keys())
    converted: dict[str, torch.Tensor] = {}
    for op in plan.operations:
        converted.update(run_operation(op, state_dict.__getitem__, lora_scaling))
    return converted, plan


def convert_shapes(key_map: KeyMap, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """Map a `{source key: shape}` manifest to `{our key: shape}` without tensors (LoRA folds keep the base shape)."""
    plan = key_map.plan(shapes.keys())
    result: dict[str, tuple[int, ...]] = {}
    for op in plan.operations:
        for target, shape in zip(op.targets, op.transform.shapes(tuple(shapes[op.source]), len(op.targets))):
            result[target] = shape
    return result


__all__ = [
    "COPY",
    "ConversionPlan",
    "Copy",
    "Drop",
    "InflatePatch2dTo3d",
    "KeyMap",
    "Operation",
    "Rule",
    "SplitDim0",
    "SplitGroupedQKV",
    "SqueezeLeading",
    "TensorTransform",
    "UnknownKeysError",
    "convert_shapes",
    "convert_state_dict",
    "merge_lora",
    "run_operation",
]

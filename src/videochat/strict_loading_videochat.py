# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Strict `from_pretrained` for the VideoChat and InternVideo2 model classes.

transformers loads a checkpoint with missing tensors by initialising them randomly and printing a load report; a
converted folder that lost a tensor (a half-copied shard, a hand-edited file) then answers with random weights. Our
classes refuse instead: a tensor the model needs that the checkpoint lacks, or (when loading the class the folder was
saved as) a tensor the model does not have, is a `ValueError` naming the keys; so is a tensor of the wrong shape
(unless `ignore_mismatched_sizes=True`). `AutoModel*` classes call the model
class's `from_pretrained`, so they are strict too.

Opt out with `from_pretrained(..., strict=False)` to load partially on purpose (e.g. a new head on a converted
backbone): missing tensors then keep their fresh initialisation, as in plain transformers. A caller that asks for the
report itself (`output_loading_info=True`) or passes its own `state_dict` gets plain transformers' behaviour unless it
also passes `strict=True`: it holds the missing and unexpected keys and decides (transformers' own loading tests rely
on this). Unexpected tensors are
always allowed when loading another class than the one the folder was saved as (a `VideoChatModel` from a folder of
`VideoChatForConditionalGeneration` leaves out `lm_head`). A safetensors file that cannot be read is reported with its
name.
"""

import json
import os
from pathlib import Path

from safetensors import SafetensorError, safe_open


_SHOWN_KEYS = 10


class MismatchedShapesError(ValueError, RuntimeError):
    """Checkpoint tensors of the wrong shape: a `RuntimeError` as transformers raises it, a `ValueError` as our other
    loading errors."""


def _shown(keys) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:_SHOWN_KEYS]) + (f" and {len(keys) - _SHOWN_KEYS} more" if len(keys) > _SHOWN_KEYS else "")


def _safetensors_problem(path: Path) -> str | None:
    """Why the safetensors file `path` cannot be loaded (`None` when its header and size are sound)."""
    try:
        with open(path, "rb") as handle:
            size = path.stat().st_size
            prefix = handle.read(8)
            if len(prefix) < 8:
                return f"{path.name}: the file is truncated ({size} bytes)"
            header_size = int.from_bytes(prefix, "little")
            if header_size > size - 8:
                return f"{path.name}: the file is truncated ({size} bytes, header of {header_size} bytes)"
            header = json.loads(handle.read(header_size))
        data_end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
        if size < 8 + header_size + data_end:
            return f"{path.name}: the file is truncated ({size} of {8 + header_size + data_end} bytes)"
        with safe_open(str(path), framework="pt"):
            pass
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, IndexError) as error:
        return f"{path.name}: {error}"
    return None


def unreadable_weight_files(folder: Path) -> list[str]:
    """`"name: problem"` of every safetensors file of a local `folder` that cannot be loaded."""
    return [problem for path in sorted(folder.glob("*.safetensors")) if (problem := _safetensors_problem(path))]


def checkpoint_problems(model_class: type, model, loading_info: dict) -> list[str]:
    """What makes a load partial: missing tensors, and unexpected ones when loading the class the folder was saved
    as."""
    problems = []
    missing = set(loading_info.get("missing_keys") or ())
    unexpected = set(loading_info.get("unexpected_keys") or ())
    if missing:
        problems.append(f"missing tensors (they would keep random values): {_shown(missing)}")
    architectures = getattr(model.config, "architectures", None) or []
    if unexpected and (not architectures or model_class.__name__ in architectures):
        problems.append(f"unexpected tensors (the model has no such weights): {_shown(unexpected)}")
    return problems


class StrictLoadingMixin:
    """`from_pretrained` that refuses partial loads unless `strict=False` (see the module docstring)."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, strict: bool | None = None, **kwargs):
        """
        [`PreTrainedModel.from_pretrained`], strict by default.

        Args:
            strict (`bool`, *optional*):
                Raise a `ValueError` naming the keys when the checkpoint lacks tensors the model needs, or holds
                tensors it does not have (when loading the class the checkpoint was saved as). `strict=False` loads
                partially as plain transformers does: missing tensors keep their fresh initialisation. Defaults to
                `True`, unless `output_loading_info=True` or a `state_dict` is passed (the caller gets the keys).
        """
        return_loading_info = kwargs.pop("output_loading_info", False)
        if strict is None:
            strict = not return_loading_info and kwargs.get("state_dict") is None
        ignore_mismatched_sizes = kwargs.pop("ignore_mismatched_sizes", False)
        try:
            # mismatched shapes are reported below with their names (transformers raises a bare RuntimeError)
            model, loading_info = super().from_pretrained(
                pretrained_model_name_or_path,
                *model_args,
                output_loading_info=True,
                ignore_mismatched_sizes=True,
                **kwargs,
            )
        except (SafetensorError, OSError) as error:
            folder = Path(os.fspath(pretrained_model_name_or_path)) if pretrained_model_name_or_path else None
            broken = unreadable_weight_files(folder) if folder is not None and folder.is_dir() else []
            if broken or isinstance(error, SafetensorError):
                details = "; ".join(broken) or str(error)
                raise ValueError(
                    f"cannot read the weights in {pretrained_model_name_or_path}: {details}. The file is damaged or "
                    "incomplete (an interrupted copy or download?); copy or convert it again"
                ) from None
            raise
        mismatched = sorted(loading_info.get("mismatched_keys") or ())
        if mismatched and not ignore_mismatched_sizes:
            shown = "; ".join(
                f"{key}: {tuple(saved)} in the checkpoint, {tuple(ours)} in the model"
                for key, saved, ours in mismatched[:_SHOWN_KEYS]
            )
            raise MismatchedShapesError(
                f"{cls.__name__}.from_pretrained({str(pretrained_model_name_or_path)!r}): tensors of the wrong shape "
                f"({shown}); the config does not describe these weights. Convert the folder again, or pass "
                "ignore_mismatched_sizes=True to re-initialise them on purpose."
            )
        problems = checkpoint_problems(cls, model, loading_info)
        if problems and strict:
            raise ValueError(
                f"{cls.__name__}.from_pretrained({str(pretrained_model_name_or_path)!r}): the checkpoint does not "
                f"match the model: {'; '.join(problems)}. The folder is incomplete or holds another model; convert it "
                "again (`videochat convert`), or pass strict=False to load it partially on purpose."
            )
        return (model, loading_info) if return_loading_info else model


__all__ = ["MismatchedShapesError", "StrictLoadingMixin", "checkpoint_problems", "unreadable_weight_files"]

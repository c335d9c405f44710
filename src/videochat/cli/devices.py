# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""`--device` of the commands: checked before a model is loaded, so that a missing accelerator is a clear error."""

import torch


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str) -> torch.device:
    """The `torch.device` of a `--device` value; raises `ValueError` naming the problem and the fix."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"--device {device!r} is not a device ({error}); use e.g. cpu, cuda or cuda:1") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only torch build" if torch.version.cuda is None else "no usable CUDA device"
            raise ValueError(f"--device {device}: CUDA is not available here ({build}); use --device cpu")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(
                f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) are visible; use cuda:0 .. "
                f"cuda:{torch.cuda.device_count() - 1}"
            )
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device}: Apple MPS is not available here; use --device cpu")
    elif parsed.type not in ("cpu", "cuda", "mps", "xpu", "npu", "hpu", "meta"):
        raise ValueError(f"--device {device!r}: unsupported device type; use cpu or cuda")
    if parsed.type == "meta":
        raise ValueError("--device meta holds no data; use cpu or cuda")
    return parsed


__all__ = ["check_device", "default_device"]

# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Parity with the ORIGINAL code: the only code that reads the fixture format (`python -m videochat.parity DIR`)."""

from .checker import (
    compute_outputs,
    detect_family,
    load_fixture,
    main,
    run_fixture,
    tolerance_for,
    verify_converted_folder,
)


__all__ = [
    "compute_outputs",
    "detect_family",
    "load_fixture",
    "main",
    "run_fixture",
    "tolerance_for",
    "verify_converted_folder",
]

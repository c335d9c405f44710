# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""How every `videochat` command reports a failure: one line `videochat COMMAND: error: ...` that names the problem
and the fix, exit status 2, never a Python traceback.

Expected failures (bad input, a missing or unreadable file, a full or read-only disk, a missing optional package,
out of memory) are errors of the user's environment. Anything else is reported as an internal error (exit status 1)
with a request to report it; setting `VIDEOCHAT_TRACEBACK=1` prints the traceback as well. Ctrl-C exits with 130.
"""

import errno
import functools
import os
import sys
import traceback
from collections.abc import Callable

import torch
from huggingface_hub.errors import StrictDataclassError
from safetensors import SafetensorError


TRACEBACK_ENV = "VIDEOCHAT_TRACEBACK"
EXIT_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130

_OS_ERRORS = {
    errno.ENOSPC: "no space left on the device holding {path}: free some space or write to another disk",
    errno.EDQUOT: "disk quota exceeded writing {path}: free some space or write to another disk",
    errno.EROFS: "{path} is on a read-only file system: write the output to a writable location",
    errno.EACCES: "permission denied: {path}; choose a location you can read / write or fix its permissions",
    errno.EPERM: "operation not permitted on {path}; choose another location or fix its permissions",
    errno.ENAMETOOLONG: "the path {path} is too long for the file system; choose a shorter path",
    errno.EIO: "input/output error on {path} (failing disk or network file system)",
    errno.EMFILE: "too many open files; raise the limit (`ulimit -n`) and try again",
    errno.ENOTDIR: "a part of {path} is a file, not a folder",
    errno.EISDIR: "{path} is a folder; a file was expected",
    errno.ENOENT: "no such file or folder: {path}",
    errno.EEXIST: "{path} already exists",
}


def _describe_os_error(error: OSError) -> str:
    template = _OS_ERRORS.get(error.errno)
    if template is None:
        return str(error)
    path = error.filename if error.filename is not None else "the output"
    message = template.format(path=path)
    detail = str(error)
    if error.errno in (errno.ENOENT, errno.EEXIST) and error.filename is None and detail:
        return detail  # our own messages (FileNotFoundError("... not found ...")) already say it all
    return message


def describe_error(error: BaseException) -> tuple[str, bool]:
    """`(message, expected)`: the one-line message of `error` and whether it is a failure of the user's input or
    environment (exit status 2) rather than a bug (exit status 1)."""
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return (
            f"out of memory ({str(error).splitlines()[0] if str(error) else type(error).__name__}); try a smaller "
            "--dtype (bfloat16), fewer frames, a smaller batch or another device",
            True,
        )
    if isinstance(error, OSError):
        return _describe_os_error(error), True
    if isinstance(error, UnicodeError):
        return f"text that is not valid UTF-8 ({error}); convert it to UTF-8", True
    if isinstance(error, (ValueError, SafetensorError, StrictDataclassError)):
        return str(error), True
    if isinstance(error, ImportError):
        return f"a package this needs is missing: {error}", True
    return f"{type(error).__name__}: {error}", False


def report_error(command: str, error: BaseException) -> int:
    """Print `error` for `videochat COMMAND` (see the module docstring); returns the exit status."""
    if os.environ.get(TRACEBACK_ENV):
        traceback.print_exception(error)
    message, expected = describe_error(error)
    if expected:
        print(f"videochat {command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    print(
        f"videochat {command}: internal error: {message}\n"
        f"This is a bug in videochat or a library it uses; please report it with the command line. Set "
        f"{TRACEBACK_ENV}=1 to print the traceback.",
        file=sys.stderr,
    )
    return EXIT_INTERNAL_ERROR


def handles_errors(command: str) -> Callable:
    """Decorate a command's `main(argv)`: failures are reported by `report_error`, Ctrl-C exits with 130."""

    def decorate(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
        @functools.wraps(main)
        def wrapper(argv: list[str] | None = None) -> int:
            try:
                return int(main(argv) or 0)
            except KeyboardInterrupt:
                print(f"\nvideochat {command}: interrupted", file=sys.stderr)
                return EXIT_INTERRUPTED
            except Exception as error:
                return report_error(command, error)

        return wrapper

    return decorate


__all__ = ["EXIT_ERROR", "TRACEBACK_ENV", "describe_error", "handles_errors", "report_error"]

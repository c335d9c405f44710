# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Where a command may write: the one place that decides whether an output path is safe, and replaces it atomically.

Every writing command (`videochat convert`, `convert-tokenizer`, `convert-internvideo2`, `embed`, `demo`) follows
these rules:

* the output may not be an input, contain an input, or lie inside an input folder (refused before anything is read
  or written);
* an existing output is replaced only with `--overwrite`, and only when a previous run of ours wrote it: a folder
  holds the marker file `.videochat_output.json` that lists the files written; a file passes the writing command's
  own check. Any other file or folder, and a marked folder with files added since, is refused and left untouched.
  An existing empty folder is used as if it did not exist;
* everything is written into a staging folder (file) `.NAME.partial-PID-*` next to the output and renamed into place
  at the end; a folder being replaced is first renamed `.NAME.old-PID` and deleted only once the new one is in place;
* leftovers of an interrupted run whose process is gone are handled by the next run on the same output: a staging
  folder is deleted, an `.old-PID` folder is renamed back when the output is missing (the run died between the two
  renames) and deleted otherwise;
* outputs get the permissions of the user's umask (temporary folders and files are created private).
"""

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path


MARKER_NAME = ".videochat_output.json"


class OutputError(ValueError):
    """A refused output path; the message names the problem and the fix."""


def resolved(path: str | os.PathLike) -> Path:
    """Absolute path with `~` and symbolic links resolved (what a write would really touch)."""
    return Path(path).expanduser().resolve()


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_output_location(output: str | os.PathLike, inputs: Iterable, allow_inside: Iterable = ()) -> Path:
    """
    Refuse an `output` that is one of `inputs`, contains one of them or lies inside one of them (`allow_inside`:
    inputs the output may lie inside, e.g. a folder of videos next to which an embedding file is written). Returns the
    resolved output.
    """
    given = Path(output).expanduser()
    if given.is_symlink() and not given.exists():
        raise OutputError(f"the output {given} is a broken symbolic link; remove it or choose another output")
    target = resolved(output)
    may_contain = {resolved(path) for path in allow_inside if path is not None}
    for given in inputs:
        if given is None:
            continue
        source = resolved(given)
        if target == source:
            raise OutputError(
                f"the output {target} is the input {source}: writing there would destroy the input; choose a new "
                "output path"
            )
        if _within(target, source) and source not in may_contain:
            raise OutputError(
                f"the output {target} lies inside the input folder {source}; choose an output outside it"
            )
        if _within(source, target):
            raise OutputError(
                f"the output {target} contains the input {source}: replacing it would delete the input; choose a new "
                "output path"
            )
    return target


# ---------------------------------------------------------------------------------------------------------------------
# Folders
# ---------------------------------------------------------------------------------------------------------------------


def files_in(folder: Path) -> set[str]:
    """Relative paths (POSIX) of every non-directory entry under `folder`."""
    found = set()
    for root, directories, files in os.walk(folder):
        for name in files + [d for d in directories if os.path.islink(os.path.join(root, d))]:
            found.add(Path(os.path.relpath(os.path.join(root, name), folder)).as_posix())
    return found


def read_marker(folder: Path) -> dict | None:
    """The marker of a folder a videochat command wrote, or `None`."""
    try:
        marker = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or not isinstance(marker.get("files"), list):
        return None
    return marker


def write_marker(folder: Path, command: str) -> None:
    """Record the files of a finished staging folder (the marker itself is written last)."""
    marker = {"written_by": f"videochat {command}", "files": sorted(files_in(folder) - {MARKER_NAME})}
    (folder / MARKER_NAME).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")


def check_replaceable_folder(output: Path, overwrite: bool) -> None:
    """Refuse an existing `output` unless it is an empty folder, or (with `overwrite`) a folder we wrote that holds
    nothing else."""
    if output.is_symlink() and not output.exists():
        raise OutputError(f"the output {output} is a broken symbolic link; remove it or choose another output")
    if not output.exists():
        return
    if not output.is_dir():
        raise OutputError(f"the output {output} exists and is a file, not a folder; choose another output")
    if not any(output.iterdir()):
        return
    if not overwrite:
        raise OutputError(
            f"the output {output} exists and is not empty; pass --overwrite (overwrite=True) to replace a folder that "
            "videochat wrote, or choose a new folder"
        )
    marker = read_marker(output)
    if marker is None:
        raise OutputError(
            f"the output {output} was not written by videochat (it has no {MARKER_NAME}); --overwrite only replaces "
            "folders videochat wrote. Choose a new folder, or move this one away yourself"
        )
    foreign = sorted(files_in(output) - set(marker["files"]) - {MARKER_NAME})
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise OutputError(
            f"the output {output} holds files videochat did not write ({shown}); --overwrite would delete them. Move "
            "them away or choose a new folder"
        )


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def staging_folder(output: Path) -> Path:
    """A new folder next to `output` to write into (permissions from the umask, unlike `mkdtemp`'s 0700)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-{os.getpid()}-", dir=output.parent))
    os.chmod(folder, 0o777 & ~current_umask())
    return folder


def remove_our_folder(folder: Path) -> None:
    """Delete a folder a videochat command created: its marker last, so that an interrupted deletion leaves a folder
    that is still recognisably ours."""
    for child in folder.iterdir():
        if child.name == MARKER_NAME:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    (folder / MARKER_NAME).unlink(missing_ok=True)
    folder.rmdir()


def publish_folder(staging: Path, output: Path, command: str) -> None:
    """Mark the finished `staging` folder and rename it to `output` (checked with `check_replaceable_folder`): an
    existing output is renamed aside first and deleted once the new folder is in place."""
    write_marker(staging, command)
    if output.is_dir() and not output.is_symlink() and not any(output.iterdir()):
        output.rmdir()
    if output.exists():
        retired = output.parent / f".{output.name}.old-{os.getpid()}"
        os.rename(output, retired)
        try:
            os.rename(staging, output)
        except BaseException:
            os.rename(retired, output)
            raise
        remove_our_folder(retired)
    else:
        os.rename(staging, output)
    fsync_directory(output.parent)


def _process_is_gone(pid: int) -> bool:
    if pid == os.getpid():
        return True  # our own leftovers: this run has not created anything for this output yet
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    except OSError:
        return False
    return False


def _leftovers(output: Path, kind: str):
    """`(path, pid)` of `.NAME.partial-PID-*` / `.NAME.old-PID` entries next to `output` whose process is gone."""
    if not output.parent.is_dir():
        return []
    pattern = re.compile(re.escape(f".{output.name}.{kind}-") + (r"(\d+)-" if kind == "partial" else r"(\d+)$"))
    found = []
    for candidate in sorted(output.parent.iterdir()):
        match = pattern.match(candidate.name)
        if match and _process_is_gone(int(match[1])):
            found.append(candidate)
    return found


def recover_interrupted_runs(output: Path) -> list[str]:
    """Clean up after interrupted runs on `output` (see the module docstring); returns what was done."""
    notes = []
    for retired in _leftovers(output, "old"):
        if not retired.is_dir() or retired.is_symlink():
            continue
        if read_marker(retired) is None:
            if any(retired.iterdir()):
                notes.append(f"left {retired} in place: it is not recognisably a folder videochat wrote")
                continue
            retired.rmdir()
        elif not output.exists():
            os.rename(retired, output)
            notes.append(f"restored {output} from an interrupted --overwrite ({retired.name})")
        else:
            remove_our_folder(retired)
            notes.append(f"removed {retired.name} left by an interrupted --overwrite")
    for staging in _leftovers(output, "partial"):
        if staging.is_dir() and not staging.is_symlink():
            shutil.rmtree(staging, ignore_errors=True)
        elif staging.is_file():
            staging.unlink(missing_ok=True)
        notes.append(f"removed {staging.name} left by an interrupted run")
    return notes


def prepare_output_folder(output, inputs: Iterable, overwrite: bool) -> tuple[Path, list[str]]:
    """Check `output` against `inputs`, recover leftovers of interrupted runs and check that an existing output may be
    replaced. Returns the resolved output and notes about recovered leftovers. Nothing is written when it raises."""
    target = check_output_location(output, inputs)
    check_replaceable_folder(target, overwrite)  # before recovery: a refused command touches nothing
    notes = recover_interrupted_runs(target)
    check_replaceable_folder(target, overwrite)  # a restored folder is checked again
    return target, notes


# ---------------------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------------------


def prepare_output_file(
    output,
    inputs: Iterable,
    overwrite: bool,
    is_ours: Callable[[Path], bool],
    allow_inside: Iterable = (),
    written_by: str = "videochat",
) -> Path:
    """The file-output counterpart of `prepare_output_folder`: `is_ours(path)` tells whether an existing file is one
    the command wrote (only such a file is replaced, and only with `overwrite`)."""
    target = check_output_location(output, inputs, allow_inside)
    if target.is_symlink() and not target.exists():
        raise OutputError(f"the output {target} is a broken symbolic link; remove it or choose another output")
    if target.is_dir():
        raise OutputError(f"the output {target} is a folder; name a file")
    if target.exists():
        if not overwrite:
            raise OutputError(f"the output {target} exists; pass --overwrite to replace it, or choose a new file")
        if not is_ours(target):
            raise OutputError(
                f"the output {target} was not written by {written_by}; --overwrite only replaces files it wrote. "
                "Choose a new file, or move this one away yourself"
            )
    recover_interrupted_runs(target)
    return target


def write_file_atomically(output: Path, write: Callable[[Path], None]) -> None:
    """Call `write(temporary_path)` next to `output`, give the file the umask's permissions and rename it into place;
    nothing is left behind when `write` fails."""
    output.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.partial-{os.getpid()}-", dir=output.parent)
    os.close(handle)
    try:
        write(Path(temporary))
        os.chmod(temporary, 0o666 & ~current_umask())
        os.replace(temporary, output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_directory(output.parent)


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
    "MARKER_NAME",
    "OutputError",
    "check_output_location",
    "check_replaceable_folder",
    "files_in",
    "prepare_output_file",
    "prepare_output_folder",
    "publish_folder",
    "read_marker",
    "recover_interrupted_runs",
    "remove_our_folder",
    "resolved",
    "staging_folder",
    "write_file_atomically",
]

"""Options and helpers shared by the model-running subcommands (predict, explain)."""

from __future__ import annotations

import argparse
import errno
import os
import stat
import sys
from collections.abc import Iterable
from pathlib import Path

from ..data import IMAGE_EXTENSIONS
from ..options import runtime_from_args



def add_degrade_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("degradation (applied before analysis)")
    how = group.add_mutually_exclusive_group()
    how.add_argument("--degrade", metavar="SPEC", help='a spec or preset, e.g. "jpeg:quality=20;gblur:sigma=2" or ffpp-c40')
    how.add_argument("--compound", metavar="STRENGTH", type=float, help="the paper's compound engine at this strength in [0, 1]")
    group.add_argument("--seed", type=seed_arg, default=0, metavar="N", help="seed of the degradation, 0..2**32-1 (default 0)")


class UsageError(ValueError):
    """A command-line input refused before any work starts: one line, exit code 2."""


def seed_arg(text: str) -> int:
    """argparse ``type`` of ``--seed``: a whole number in 0..MAX_SEED, refused at parse time."""
    from ..degrade import MAX_SEED, check_seed

    try:
        return check_seed(int(text))
    except ValueError:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to {MAX_SEED}, got {shown!r}") from None


def whole_number(low: int, high: int | None = None):
    """argparse ``type``: a whole number in ``low``..``high`` (no upper bound when None), refused at parse time."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"must be a whole number {span}, got {text[:40]!r}")
        return value

    return parse


def method_arg(*, allow_none: bool = False):
    """argparse ``type``: an explanation method's name in the registry (:mod:`forensic.explain.methods`)."""
    def parse(text: str) -> str:
        from ..explain.methods import check_method

        try:
            return check_method(text, allow_none=allow_none)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def say(text: str = "") -> None:
    """The CLI's results, on stdout (one place for every subcommand's output)."""
    sys.stdout.write(f"{text}\n")


def warn(text: str) -> None:
    """Notes and errors for the user, on stderr."""
    sys.stderr.write(f"{text}\n")


def fail(message: str, code: int = 2) -> int:
    warn(f"error: {message}")
    return code


def load_detector(args: argparse.Namespace):
    """The detector the options (and the environment) ask for, or None after printing why it cannot be had."""
    from ..pipeline import Detector
    from ..weights import WeightsUnavailable

    try:
        return Detector.from_runtime(runtime_from_args(args))
    except WeightsUnavailable as exc:
        warn(f"error: {exc}")
    except (KeyError, ValueError) as exc:  # RuntimeConfigError is a ValueError
        warn(f"error: {exc.args[0] if exc.args else exc}")
    return None


def expand_paths(paths: Iterable[str], skipped: list[tuple[Path, str]] | None = None) -> list[Path]:
    """Files as given, and the image and clip files under folders (recursively, sorted by name).

    Under folders only regular files with an image extension (:data:`forensic.data.IMAGE_EXTENSIONS`)
    or a clip's (:data:`forensic.video.VIDEO_SUFFIXES`) count; images and clips stay mixed in name order. A missing or unreadable file
    given by name is kept, to be reported in its own record. An entry under a folder that is
    named like an image but is no regular file (a named pipe, a link to ``/dev/zero``, a broken
    link) is left out, and appended with what it is to ``skipped`` when given, so the caller can
    say so.

    Raises:
        UsageError: a path given by name is a named pipe, a device or a socket (see
            :func:`check_regular_input`).
    """
    from ..video.decoding import VIDEO_SUFFIXES

    wanted = IMAGE_EXTENSIONS | set(VIDEO_SUFFIXES)
    out: list[Path] = []
    for text in paths:
        path = Path(text)
        if check_regular_input(text):
            found = []
            for p in path.rglob("*"):
                if p.suffix.lower() not in wanted:
                    continue
                if p.is_file():
                    found.append(p)
                elif skipped is not None and (kind := _not_regular(p)) is not None:
                    skipped.append((p, kind))
            out.extend(sorted(found, key=lambda p: (p.name, str(p))))
        else:
            out.append(path)
    return out


def _not_regular(path: Path) -> str | None:
    """What a non-regular entry is ("a named pipe (FIFO)", "a device", "a broken link"...), None for a folder."""
    from ..images import special_file_kind

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "a broken link" if path.is_symlink() else "unreadable"
    if stat.S_ISDIR(mode):
        return None
    return special_file_kind(mode) or "not a regular file"


def check_regular_input(text: str) -> bool:
    """Refuse an input path that is a named pipe, a device or a socket; True if it is a folder.

    Reading a FIFO waits for a writer forever and ``/dev/zero`` never ends, so such a path stops the
    run before it starts. ``stat`` never opens the file. Missing paths pass (reported later).

    Raises:
        UsageError: the path is a named pipe, a device or a socket.
    """
    from ..images import special_file_kind

    try:
        mode = os.stat(text).st_mode
    except (OSError, ValueError):
        return False
    kind = special_file_kind(mode)
    if kind is not None:
        raise UsageError(f"{text} is {kind}, not an image file: pass image files or folders")
    return stat.S_ISDIR(mode)


def output_file_problem(text: str) -> str | None:
    """Why ``--out FILE`` cannot be written, in one line, or None. Creates and truncates nothing."""
    path = Path(text)
    if path.is_dir():
        return f"--out {text} is a folder: give a file name inside it"
    parent = path.parent
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        return f"--out {text}: the folder {parent} {what}: create it first (mkdir -p {parent})"
    target = path if path.exists() else parent
    if not os.access(target, os.W_OK):
        return f"--out {text}: no permission to write there"
    return None


#: errno values that mean the disk (or the file-size limit, or the quota) is full
_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def write_problem(where: str | os.PathLike, exc: OSError) -> str:
    """One line for a failed write to ``where``: "no space left" for a full disk, else the OS's reason."""
    if exc.errno in _FULL:
        return f"cannot write {where}: no space left on the device (free some space and run again)"
    return f"cannot write {where} ({exc.strerror or exc}): choose another file or folder"


def silence_stdout() -> None:
    """After stdout failed (a full disk behind ``> file``), send what is still buffered to /dev/null,
    so Python's final flush at exit does not print a second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # a replaced sys.stdout (tests, notebooks) has no fd
        pass


def output_folder_problem(text: str) -> str | None:
    """Why ``--out DIR`` (a folder, created if missing) cannot be used, in one line, or None."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        return f"--out {text} is a file: give the name of a folder (it is created if missing)"
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"--out {text}: {parent} is a file, not a folder"
            break
    return None


def save_atomically(path: Path, write) -> Path:
    """``write(tmp)`` to a temporary sibling of ``path``, then renamed over it: ``path`` is whole or absent.

    On any error the temporary file is removed and the error raised again (an ``OSError``'s
    ``filename`` is set to ``path`` so the message names the file the user asked for).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            exc.filename = str(path)
        raise
    return path

"""Writing files and directories so that a crash or a full disk never leaves half of one where a
good one was.

Everything is built in a temporary beside its target (same file system, so the final rename is
atomic), flushed to disk, given the mode a plain ``open()`` or ``os.mkdir()`` would have given
it under the process umask, then renamed into place; the parent directory is flushed after the
rename so that the rename itself survives a crash. On any error the temporary is removed and the
target is left as it was. A temporary's name holds the id of the process writing it, so that
what a killed process left behind is recognised and cleared (or, for a directory it was
replacing, put back) by the next write of the same target (:func:`recover`).

Setting the environment variable ``AEKIT_SLOW_WRITES`` to a number of seconds makes every
write pause that long at each of its steps (after writing, before each rename): the
fault-injection test uses it to kill processes in the middle of writes. It is off by default.

This module uses NumPy and the standard library only, so that every part of aekit (including
the data loaders, which must not import torch) can write through it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "atomic_directory",
    "atomic_file",
    "check_replaceable",
    "json_text",
    "recover",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]


# -- single files ----------------------------------------------------------------------------
# The temporary starts empty, so only modes that truncate make sense: "a" or "r+" would suggest
# that the old content is still there to append to or update.
_WRITE_MODES = frozenset({"wb", "w+b", "wb+", "w", "wt", "w+", "w+t", "wt+"})


@contextlib.contextmanager
def atomic_file(path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success, rename it over ``path``.

    Write to the yielded file object. When the block ends normally the file is flushed,
    fsynced and renamed over ``path``, and the directory is fsynced. When the block raises,
    the temporary file is removed, ``path`` is left untouched and the exception propagates.

    Parameters
    ----------
    path : str or os.PathLike
        The file to create or replace; its parents are created.
    mode : str, default="wb"
        A writing mode of :func:`open`: ``"wb"``, ``"w+b"`` (to read back what was written,
        e.g. to check it before it is published), or ``"w"`` / ``"w+"`` for UTF-8 text.

    Yields
    ------
    file object
        The open temporary file.

    Raises
    ------
    ValueError
        If ``mode`` is not a mode that starts an empty file.
    """
    if mode not in _WRITE_MODES:
        raise ValueError(f"atomic_file needs a writing mode ('wb', 'w+b', 'w', 'w+'), got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale_files(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            # mkstemp makes the file 0600 whatever the umask; give it what open() would have
            # (by descriptor where the OS allows it, so that the name cannot be swapped meanwhile)
            os.chmod(f.fileno() if os.chmod in os.supports_fd else tmp, _file_mode())
            yield f
            f.flush()
            _pause()
            os.fsync(f.fileno())  # the data must be on disk before the rename publishes it
        _pause()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_bytes_atomic(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_file`.

    Parameters
    ----------
    path : str or os.PathLike
        The file to create or replace; its parents are created.
    data : bytes
        The whole new content.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    with atomic_file(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_text_atomic(path, text: str) -> Path:
    """:func:`write_bytes_atomic` for UTF-8 text."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path, obj) -> Path:
    """Write ``obj`` as strict JSON (indent 2, trailing newline) through :func:`atomic_file`.

    NaN and infinite floats become ``null``, wherever they are (also inside lists, dicts and
    NumPy arrays): the bare ``NaN`` and ``Infinity`` that :func:`json.dumps` writes by default
    are not JSON, and strict parsers (browsers, ``jq``) reject the whole file. NumPy scalars
    and arrays become Python numbers and lists; tuples become lists.

    ``obj`` is made of dicts, lists, tuples, strings, numbers, booleans, None and NumPy
    values (anything else is a ``TypeError``); ``path``'s parents are created. Returns ``path``.
    """
    return write_text_atomic(path, json_text(obj) + "\n")


def json_text(obj) -> str:
    """``obj`` as the strict JSON text (indent 2) that :func:`write_json_atomic` writes."""
    # allow_nan=False: should a non-finite float slip through, fail rather than write bad JSON
    return json.dumps(_strict_json(obj), indent=2, allow_nan=False)


def _strict_json(value):
    """``value`` with NumPy values as Python ones and non-finite floats as None."""
    if isinstance(value, (np.generic, np.ndarray)):
        value = value.tolist()  # nested lists of Python scalars; NaN stays NaN, handled below
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_json_key(k): _strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(v) for v in value]
    return value


def _json_key(key):
    # json.dumps accepts str, int, float, bool and None keys, but not NumPy scalars
    return key.item() if isinstance(key, np.generic) else key


# -- directories -----------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_directory(path, overwrite: bool = True, *, is_own: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Build a directory in a temporary place beside ``path``, then swap it in.

    Write into the yielded directory. If the block raises, ``path`` is untouched and the
    temporary directory is removed. Otherwise its files are fsynced and it replaces ``path``:
    the old directory is renamed aside, the new one renamed in, then the old one deleted (a
    rename cannot replace a non-empty directory in one step). Should the process die between
    the two renames, the old directory survives as a hidden ``.NAME.old-*`` sibling, which the
    next call for the same ``path`` puts back (:func:`recover`).

    Before the swap, every file and directory in the temporary tree (including files written by
    other libraries) gets the mode ``open()`` / ``os.mkdir()`` give under the process umask.

    Parameters
    ----------
    path : str or os.PathLike
        The directory to create or replace; its parents are created.
    overwrite : bool, default=True
        Whether an existing ``path`` may be replaced.
    is_own : callable, optional
        ``is_own(path) -> bool``: whether an existing non-empty directory is one the caller
        wrote (e.g. a model directory) and so may be replaced. Without it only an empty
        directory is replaced. A file or a symbolic link at ``path`` is never replaced.

    Yields
    ------
    pathlib.Path
        The temporary directory, in the same parent as ``path`` (so the rename is atomic).

    Raises
    ------
    FileExistsError
        If ``path`` exists and may not be replaced.
    """
    path = Path(os.path.abspath(path))  # "." or "out/.." need a real name and parent to rename
    recover(path)
    check_replaceable(path, overwrite, is_own=is_own)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent))
    try:
        yield tmp
        _pause()
        _seal_tree(tmp)
        _swap_in(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already after a successful swap


def check_replaceable(path, overwrite: bool = True, *, is_own: Callable[[Path], bool] | None = None) -> None:
    """Raise ``FileExistsError`` unless :func:`atomic_directory` may create or replace ``path``
    (same arguments): a command calls it before hours of work, not only when writing."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return
    if not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
    if path.is_symlink() or not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a directory; refusing to replace it")
    if any(path.iterdir()) and not (is_own is not None and is_own(path)):
        raise FileExistsError(
            f"{path} is a non-empty directory that aekit did not write; "
            "refusing to replace it (its files would be deleted)"
        )


def _swap_in(tmp: Path, path: Path) -> None:
    if not path.exists():
        os.rename(tmp, path)
    else:
        aside = path.with_name(f".{path.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        _pause()
        os.rename(path, aside)
        try:
            _pause()  # the window in which a kill leaves no directory at path, only the one aside
            os.rename(tmp, path)
        except BaseException:
            os.rename(aside, path)  # put the old one back: nothing is lost
            raise
        try:
            shutil.rmtree(aside)
        except OSError as exc:  # the new directory is in place; only a stale copy remains
            logger.warning("could not delete the previous directory %s: %s", aside, exc)
    _fsync_dir(path.parent)


def _seal_tree(root: Path) -> None:
    """Give the tree under ``root`` its umask modes and flush it to disk.

    The modes: mkdtemp makes ``root`` 0700, and other libraries may write 0600 files (from
    mkstemp); a model directory should be as readable as anything else the user writes. The
    flush: without it, a crash soon after the rename can leave a complete-looking directory of
    empty or partial files. Symbolic links are neither followed nor changed.
    """
    file_mode, dir_mode = _file_mode(), _dir_mode()
    os.chmod(root, dir_mode)
    for directory, subdirectories, names in os.walk(root):
        for name in subdirectories:
            sub = os.path.join(directory, name)
            if not os.path.islink(sub):
                os.chmod(sub, dir_mode)  # before os.walk enters it, in case it was unreadable
        for name in names:
            file = os.path.join(directory, name)
            if os.path.isfile(file) and not os.path.islink(file):  # no FIFOs: opening one blocks
                os.chmod(file, file_mode)
                _fsync_file(file)
        _fsync_dir(Path(directory))


def _fsync_file(file) -> None:
    fd = os.open(file, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    """Make renames inside ``directory`` durable (POSIX; a no-op where a directory cannot be
    opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on directories; the rename itself still happened
    finally:
        os.close(fd)


# -- what killed writes leave behind ---------------------------------------------------------
def recover(path) -> None:
    """Clear what writes of the directory ``path`` by processes that no longer run left beside it.

    A directory a killed :func:`atomic_directory` was replacing (``.NAME.old-*``) is put back
    when ``path`` is missing, and deleted otherwise; temporaries it was building
    (``.NAME.tmp-*``) are deleted. Those of processes still running are left alone.
    """
    path = Path(os.path.abspath(path))
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(tmp|old)-(?:(\d+)-)?")
    dead = {"tmp": [], "old": []}
    for entry in _siblings(path):
        match = pattern.match(entry.name)
        if match and entry.is_dir() and not entry.is_symlink() and not _alive(match.group(2)):
            dead[match.group(1)].append(entry)
    olds = sorted(dead["old"], key=lambda p: p.stat().st_mtime, reverse=True)
    if olds and not (path.exists() or path.is_symlink()):
        os.rename(olds.pop(0), path)
        logger.warning("%s: put back the directory that an interrupted write had moved aside", path)
    for leftover in olds + dead["tmp"]:
        shutil.rmtree(leftover, ignore_errors=True)


def _clear_stale_files(path: Path) -> None:
    """Delete the temporaries that killed :func:`atomic_file` calls for ``path`` left beside it."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(?:(\d+)\.)?[A-Za-z0-9_]+\.tmp")
    for entry in _siblings(path):
        match = pattern.fullmatch(entry.name)
        if match and entry.is_file() and not entry.is_symlink() and not _alive(match.group(1)):
            entry.unlink(missing_ok=True)


def _siblings(path: Path) -> list[Path]:
    try:
        return [path.parent / name for name in os.listdir(path.parent) if name.startswith(f".{path.name}.")]
    except OSError:  # no parent yet, or unreadable: nothing to clear
        return []


def _alive(pid: str | None) -> bool:
    """Whether the process ``pid`` (a temporary's name holds it) may still be writing.
    Names without one come from older versions of aekit: left over."""
    if pid is None:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would stop the process there: never presume it dead
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # e.g. another user's process: alive
        return True
    return True


def _pause() -> None:
    """Sleep ``$AEKIT_SLOW_WRITES`` seconds (fault-injection tests widen the windows of a write)."""
    try:
        seconds = float(os.environ.get("AEKIT_SLOW_WRITES") or 0)
    except ValueError:
        return
    if seconds > 0:
        time.sleep(seconds)


# -- modes -----------------------------------------------------------------------------------
def _file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: ``0o666`` less the umask."""
    return 0o666 & ~_umask()


def _dir_mode() -> int:
    """The mode ``os.mkdir(path)`` gives a new directory: ``0o777`` less the umask."""
    return 0o777 & ~_umask()


def _umask() -> int:
    """The process umask, read afresh (a caller may change it between two writes).

    Linux shows it in ``/proc/self/status``. Elsewhere it can only be read by setting it and
    setting it back, which races with other threads: a file one of them creates in between
    gets the temporary umask.
    """
    with contextlib.suppress(OSError, ValueError):
        # read as bytes: the process name on another line need not be valid text
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    old = os.umask(0o077)  # so that a racing thread's file comes out private, never world-writable
    os.umask(old)
    return old

"""Rows that stay on disk: ``.npy`` files memory-mapped and read as one array, never loaded whole.

A :class:`ShardedArray` is the rows of one or more ``.npy`` files (shards), in order, as one
read-only 2-D array of float32: indexing it (a row, a slice, an array of row numbers or a
boolean mask) reads only those rows from the memory maps and converts them to float32. The
operating system's page cache holds what was read; the process's own (anonymous) memory
holds only the rows asked for. A folder of shards is opened by :func:`open_shards`; a single
``.npy`` file whose data is not float32 is read through a one-shard array
(:func:`aekit.datasets.load_file`), while a float32 file is memory-mapped as it is.

:func:`on_disk` tells such arrays (and any ``numpy.memmap``) from arrays in memory: the engine
streams their rows instead of copying them.

Shard names: the files ``*.npy`` of the folder, in the order of the number that ends their
names (``part-00000.npy``, ``part-00001.npy``, ... or ``train-3-of-8.npy``). A gap in the
numbers, a numbering that starts above 1, or fewer files than ``-of-N`` says is a missing shard
and an error; names without numbers are taken in alphabetical order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from .dataset import DatasetError

# stem, shard number, and optionally the number of shards: "train-00003-of-00008.npy"
_SHARD_NAME = re.compile(r"^(?P<stem>.*?)(?P<index>\d+)(?:-of-(?P<total>\d+))?\.npy$", re.IGNORECASE)
NUMERIC_KINDS = "biuf"  # booleans, integers, floats: what can become float32 samples
BLOCK_BYTES = 16 << 20  # rows read at once by a scan (min, max, the finite check)


class ShardedArray:
    """The rows of memory-mapped ``.npy`` shards as one read-only float32 array.

    Parameters
    ----------
    paths : sequence of path
        The shards, in order. Each holds samples of the same shape and dtype (any numeric
        dtype; a 3-D shard is images and is flattened to one row per image), C-ordered.

    Attributes
    ----------
    shape : tuple of int
        ``(total rows, features)``.
    dtype : numpy.dtype
        float32: what indexing returns. ``source_dtype`` is the dtype stored in the files.
    image_shape : tuple of int or None
        ``(height, width)`` of a sample, from 3-D shards or a square number of features.
    paths : list of Path
    """

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, paths: Sequence[str | Path]):
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise DatasetError("no shards given")
        maps = [_map_shard(p) for p in self.paths]
        first, first_path = maps[0], self.paths[0]
        for path, shard in zip(self.paths[1:], maps[1:]):
            if shard.shape[1:] != first.shape[1:]:
                raise DatasetError(
                    f"shard {path} holds samples of shape {shard.shape[1:]} but {first_path.name} holds "
                    f"{first.shape[1:]}: every shard needs the same number of features"
                )
            if shard.dtype != first.dtype:
                raise DatasetError(
                    f"shard {path} holds {shard.dtype} but {first_path.name} holds {first.dtype}: "
                    "every shard needs the same dtype"
                )
        n_features = math.prod(first.shape[1:])
        self._maps = [m.reshape(len(m), n_features) for m in maps]  # views: the shards are C-ordered
        self.source_dtype = first.dtype
        self.image_shape = image_shape(first.shape)
        self._starts = np.cumsum([0] + [len(m) for m in self._maps])
        self.shape = (int(self._starts[-1]), n_features)
        if self.shape[0] == 0:
            names = ", ".join(str(p) for p in self.paths)
            raise DatasetError(f"{names} {'are' if len(self.paths) > 1 else 'is'} empty (no rows)")

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return (
            f"ShardedArray({len(self.paths)} shard{'s' * (len(self.paths) > 1)} of {self.source_dtype}, "
            f"shape={self.shape}, read as float32)"
        )

    def __getitem__(self, key) -> np.ndarray:
        """Rows by an int, a slice, an array of row numbers or a boolean mask of every row;
        ``(rows, columns)`` selects columns of those rows."""
        if isinstance(key, tuple):
            rows, *columns = key
            return self[rows][(slice(None), *columns)]
        if isinstance(key, (int, np.integer)):
            return self._gather(np.array([key]))[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step == 1:
                return self._read_range(start, stop)
            return self._gather(np.arange(start, stop, step))
        ids = np.asarray(key)
        if ids.dtype == bool:
            if ids.shape != (len(self),):
                raise IndexError(f"a boolean mask of {ids.shape} for {len(self)} rows")
            return self._gather(np.flatnonzero(ids))
        if ids.dtype.kind not in "iu" or ids.ndim != 1:
            raise IndexError(f"rows are selected by int, slice, 1-D int array or boolean mask, not {key!r}")
        return self._gather(ids)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """Every row, in memory (what ``np.asarray`` does: it loads the whole array)."""
        out = self._read_range(0, len(self))
        return out if dtype is None else out.astype(dtype, copy=False)

    def min(self) -> float:
        return min(float(block.min()) for _, block in iter_blocks(self))

    def max(self) -> float:
        return max(float(block.max()) for _, block in iter_blocks(self))

    def _read_range(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((max(stop - start, 0), self.shape[1]), dtype=np.float32)
        first = int(np.searchsorted(self._starts, start, side="right")) - 1
        for k in range(max(first, 0), len(self._maps)):
            lo, hi = max(start, self._starts[k]), min(stop, self._starts[k + 1])
            if lo >= stop:
                break
            if lo < hi:
                out[lo - start : hi - start] = self._maps[k][lo - self._starts[k] : hi - self._starts[k]]
        return out

    def _gather(self, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` (any order, repeats allowed), read shard by shard in ascending order."""
        n = len(self)
        ids = np.where(ids < 0, ids + n, ids)
        if len(ids) and (ids.min() < 0 or ids.max() >= n):
            raise IndexError(f"row numbers must lie in [-{n}, {n}); got {int(ids.min())}..{int(ids.max())}")
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        shard_of = np.searchsorted(self._starts, sorted_ids, side="right") - 1
        bounds = np.searchsorted(shard_of, np.arange(len(self._maps) + 1))
        out = np.empty((len(ids), self.shape[1]), dtype=np.float32)
        for k in np.unique(shard_of):
            run = slice(bounds[k], bounds[k + 1])
            out[order[run]] = self._maps[k][sorted_ids[run] - self._starts[k]]
        return out


def on_disk(X) -> bool:
    """Whether ``X`` is rows on disk to be read as needed: a :class:`ShardedArray` or a
    ``numpy.memmap`` (a memory-mapped ``.npy`` file)."""
    return isinstance(X, (ShardedArray, np.memmap))


def iter_blocks(X, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, np.ndarray]]:
    """``(first row, rows)`` of ``X`` in order, a few megabytes at a time."""
    row_bytes = max(1, math.prod(X.shape[1:])) * 4
    step = max(1, block_bytes // row_bytes)
    for start in range(0, len(X), step):
        yield start, np.asarray(X[start : start + step])


def open_shards(folder: str | Path) -> ShardedArray:
    """The ``.npy`` shards of ``folder`` as one :class:`ShardedArray` (see the module's
    docstring for the order and the missing-shard checks).

    Raises
    ------
    DatasetError
        If the folder has no ``.npy`` file, a shard is missing, unreadable, Fortran-ordered,
        not numeric, of another dtype or another number of features than the first.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder of .npy shards")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".npy" and p.is_file())
    if not paths:
        raise DatasetError(f"{folder} holds no .npy shards")
    return ShardedArray(_in_shard_order(folder, paths))


def _in_shard_order(folder: Path, paths: list[Path]) -> list[Path]:
    matches = [_SHARD_NAME.match(p.name) for p in paths]
    if not any(matches):
        return paths
    unnumbered = [p.name for p, m in zip(paths, matches) if m is None]
    if unnumbered:
        raise DatasetError(
            f"{folder}: shard names must all end in a number (or none of them): {', '.join(unnumbered)} do not"
        )
    stems = {m["stem"] for m in matches}
    if len(stems) > 1:
        raise DatasetError(f"{folder}: shards of different names {sorted(stems)}; keep one data set per folder")
    numbered = sorted((int(m["index"]), p) for m, p in zip(matches, paths))
    numbers = [i for i, _ in numbered]
    if len(set(numbers)) < len(numbers):
        raise DatasetError(f"{folder}: two shards have the same number")
    first = numbers[0] if numbers[0] in (0, 1) else 0
    expected = range(first, first + len(numbers))
    totals = {int(m["total"]) for m in matches if m["total"] is not None}
    if len(totals) > 1:
        raise DatasetError(f"{folder}: shard names disagree on the number of shards ({sorted(totals)})")
    if totals:
        expected = range(first, first + totals.pop())
    missing = sorted(set(expected) - set(numbers))
    if missing:
        raise DatasetError(
            f"{folder}: shard{'s' * (len(missing) > 1)} {', '.join(map(str, missing[:10]))}"
            f"{' ...' * (len(missing) > 10)} missing (found {len(numbers)}: {numbered[0][1].name} .. "
            f"{numbered[-1][1].name})"
        )
    return [p for _, p in numbered]


def _map_shard(path: Path) -> np.ndarray:
    """One shard memory-mapped, checked to be a numeric, C-ordered array of samples."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DatasetError(f"shard {path} cannot be read as a .npy file: {exc}") from exc
    if not isinstance(array, np.ndarray):
        raise DatasetError(f"shard {path} is an .npz archive, not an .npy file")
    if array.dtype.kind not in NUMERIC_KINDS:
        raise DatasetError(f"shard {path} is not numeric (type {array.dtype})")
    if array.ndim < 2 or math.prod(array.shape[1:]) == 0:
        raise DatasetError(f"shard {path} has shape {array.shape}; expected one row per sample (2-D, or 3-D images)")
    if not array.flags.c_contiguous:
        raise DatasetError(
            f"shard {path} is stored in Fortran order: its rows cannot be read without loading it "
            "whole; save it C-ordered (numpy.ascontiguousarray)"
        )
    return array


def image_shape(shape: tuple[int, ...]) -> tuple[int, int] | None:
    """``(height, width)`` of one sample of an array of ``shape``: its last two axes when it is
    3-D, ``(k, k)`` for ``k * k`` features of a 2-D array, else None."""
    if len(shape) == 3:
        return int(shape[1]), int(shape[2])
    side = math.isqrt(shape[1]) if len(shape) == 2 else 0
    return (side, side) if side * side == shape[1] and len(shape) == 2 else None

"""User files: samples (and optionally labels) in ``.npy``, ``.npz`` or ``.csv`` files."""

from __future__ import annotations

import csv
import logging
import math
import os
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .dataset import Dataset, DatasetError
from .shards import NUMERIC_KINDS, ShardedArray, image_shape, iter_blocks, open_shards

logger = logging.getLogger(__name__)

_LABEL_COLUMNS = ("label", "y")
# what NumPy raises for a malformed .npy or .npz (its header parser tokenizes Python literals)
_NUMPY_ERRORS = (
    ValueError,
    OSError,
    EOFError,
    SyntaxError,
    TypeError,
    OverflowError,
    NotImplementedError,  # zipfile: a compression method or zip version it does not read
    RuntimeError,  # zipfile: an encrypted member
    tokenize.TokenError,
    zipfile.BadZipFile,
    zlib.error,
)
# Role in the data set -> accepted array names in an .npz archive, in order of preference.
_NPZ_KEYS = {"X": ("X", "x"), "y": ("y",), "X_test": ("X_test", "x_test"), "y_test": ("y_test",)}


def load_file(path: str | os.PathLike) -> Dataset:
    """Load samples (and optionally labels) from a ``.npy``, ``.npz`` or ``.csv`` file.

    * ``.npy``: one array of samples, no labels, memory-mapped: never loaded whole. A C-ordered
      float32 file is ``X_train`` as it is (a read-only ``numpy.memmap``); any other numeric
      file is read through a :class:`~aekit.datasets.ShardedArray`, which converts the rows
      it is asked for to float32.
    * ``.npz``: ``X`` (or ``x``) required; optional ``y``, ``X_test`` (or ``x_test``)
      and ``y_test``. Other keys are ignored with a warning.
    * ``.csv``: comma-separated numbers, one sample per line. The first line is a
      header if any of its fields is not a number; a header column named ``label`` or
      ``y`` (any case) becomes the labels.

    Samples of more than two dimensions are flattened; a 3-D array gives
    ``image_shape = shape[1:]``, and ``d = k * k`` features give ``(k, k)``. Values are
    cast to float32 but not rescaled; labels must be whole numbers and become int64.
    Without a test part in the file, ``X_test`` has shape ``(0, d)`` and ``y_test``
    is an empty int64 array, or None when there are no labels. Pickled data is never
    loaded.

    Parameters
    ----------
    path : str or path-like
        The ``.npy``, ``.npz`` or ``.csv`` file; the suffix (any case) gives the format.

    Returns
    -------
    Dataset
        Named after the file's name.

    Raises
    ------
    DatasetError
        If the file is missing, of another type, empty, not numeric, contains NaN or
        infinite values, or holds a 1-D array of samples.
    """
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        raise DatasetError(f"{path}: unsupported file type {suffix or '(none)'!r}; use .npy, .npz or .csv")
    if not path.is_file():
        raise DatasetError(f"file {path} does not exist")
    if path.stat().st_size == 0:
        raise DatasetError(f"{path} is empty")
    arrays = _READERS[suffix](path)
    return _user_dataset(path, **arrays)


def load_folder(path: str | os.PathLike) -> Dataset:
    """A folder of ``.npy`` shards (samples only, no labels) as one data set whose ``X_train``
    is a :class:`~aekit.datasets.ShardedArray`: see :func:`aekit.datasets.open_shards`.

    Raises
    ------
    DatasetError
        If a shard is missing or unreadable, or the shards disagree on features or dtype, or
        hold NaN or infinite values.
    """
    path = Path(path).expanduser()
    return _user_dataset(path, X=open_shards(path))


def _user_dataset(path: Path, X, y=None, X_test=None, y_test=None) -> Dataset:
    X, image_shape = _as_samples(X, path, "X")
    y = _as_labels(y, len(X), path, "y")
    if X_test is None:
        if y_test is not None:
            raise DatasetError(f"{path} has y_test but no X_test")
        X_test = np.empty((0, X.shape[1]), dtype=np.float32)
        y_test = None if y is None else np.empty(0, dtype=np.int64)
    else:
        X_test, _ = _as_samples(X_test, path, "X_test", allow_empty=True)
        if X_test.shape[1] != X.shape[1]:
            raise DatasetError(f"{path}: X has {X.shape[1]} features but X_test has {X_test.shape[1]}")
        y_test = _as_labels(y_test, len(X_test), path, "y_test")
    if (y is None) != (y_test is None):
        raise DatasetError(f"{path}: labels must be given for both parts or neither")
    return Dataset(X, y, X_test, y_test, image_shape, name=path.name)


def _as_samples(a, path: Path, key: str, *, allow_empty: bool = False):
    """Check and flatten an array of samples; return it as float32 and its image shape (an
    array on disk stays there)."""
    if isinstance(a, ShardedArray):
        if a.source_dtype.kind == "f":  # integers are finite as float32
            _check_finite(a, path, key)
        return a, a.image_shape
    a = a if isinstance(a, np.memmap) else np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise DatasetError(f"{path}: {key} is not numeric (type {a.dtype})")
    if a.ndim < 2:
        raise DatasetError(
            f"{path}: {key} is a {a.ndim}-D array of shape {a.shape}; expected one row "
            "per sample (2-D, or 3-D for images)"
        )
    if (len(a) == 0 and not allow_empty) or math.prod(a.shape[1:]) == 0:
        raise DatasetError(f"{path}: {key} is empty (shape {a.shape})")
    X = a.reshape(len(a), math.prod(a.shape[1:]))
    if not isinstance(X, np.memmap):  # a memory map is float32 already (_read_npy)
        with np.errstate(over="ignore"):  # values beyond float32 become inf, refused just below
            X = X.astype(np.float32)
    _check_finite(X, path, key)
    return X, image_shape(a.shape)


def _as_labels(y, n: int, path: Path, key: str) -> np.ndarray | None:
    if y is None:
        return None
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:  # a column vector is a common way to save labels
        y = y[:, 0]
    if y.dtype.kind not in "biuf" or y.ndim != 1:
        raise DatasetError(f"{path}: {key} must be a 1-D numeric array, got shape {y.shape}, type {y.dtype}")
    if len(y) != n:
        raise DatasetError(f"{path}: {key} has {len(y)} labels for {n} samples")
    if y.dtype.kind == "f" and not (np.isfinite(y).all() and (y == np.round(y)).all()):
        raise DatasetError(f"{path}: {key} holds labels that are not whole numbers")
    return y.astype(np.int64)


def _check_finite(X, path: Path, key: str) -> None:
    """A block of rows at a time, so that a file on disk is never held whole."""
    for start, block in iter_blocks(X):
        bad = ~np.isfinite(block)
        if bad.any():
            row, col = np.unravel_index(np.argmax(bad), bad.shape)
            raise DatasetError(
                f"{path}: {key} contains NaN or infinite values (first at sample {start + row}, feature {col})"
            )


def _load_numpy(path: Path, mmap_mode: str | None = None):
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except _NUMPY_ERRORS as exc:
        # Object arrays and non-NumPy files both end here; pickles are refused on purpose.
        raise DatasetError(f"{path} cannot be read as NumPy data: {exc}") from exc


def _check_declared_size(f, available: int, path: Path, what: str) -> None:
    """Refuse an array whose header declares more data than ``available`` bytes hold, before
    NumPy allocates it (a 100-byte file may claim a terabyte)."""
    try:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
    except _NUMPY_ERRORS:
        return  # not readable as a header: np.load says why
    declared = math.prod(shape) * dtype.itemsize
    if not dtype.hasobject and declared > available - f.tell():
        raise DatasetError(
            f"{path}: {what} declares shape {shape} of {dtype} ({declared} bytes), "
            f"but holds {max(available - f.tell(), 0)} bytes of data"
        )


def _read_npy(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            _check_declared_size(f, path.stat().st_size, path, "the array")
    except OSError as exc:
        raise DatasetError(f"{path} cannot be read: {exc}") from exc
    a = _load_numpy(path, mmap_mode="r")
    if not isinstance(a, np.ndarray):
        a.close()
        raise DatasetError(f"{path} is an .npz archive, not an .npy file")
    if a.dtype.kind not in NUMERIC_KINDS or a.ndim < 2 or not a.flags.c_contiguous:
        return {"X": np.asarray(a)}  # in memory, for _as_samples to check (or convert) as any array
    if a.dtype != np.float32:
        return {"X": ShardedArray([path])}  # float32 as rows are read
    return {"X": a}


def _read_npz(path: Path) -> dict:
    archive = _load_numpy(path)
    if isinstance(archive, np.ndarray):
        raise DatasetError(f"{path} is an .npy file, not an .npz archive")
    with archive:
        found = {key: next((n for n in names if n in archive.files), None) for key, names in _NPZ_KEYS.items()}
        if found["X"] is None:
            raise DatasetError(f"{path} has no array named 'X' or 'x' (it has: {', '.join(archive.files)})")
        ignored = set(archive.files) - set(found.values())
        if ignored:
            logger.warning("%s: ignoring arrays %s", path, ", ".join(sorted(ignored)))
        return {k: _npz_member(archive, n, path) for k, n in found.items() if n is not None}


def _npz_member(archive, name: str, path: Path) -> np.ndarray:
    try:
        info = archive.zip.getinfo(name + ".npy")
        with archive.zip.open(info) as f:
            _check_declared_size(f, info.file_size, path, f"array {name!r}")
        return archive[name]
    except _NUMPY_ERRORS as exc:
        raise DatasetError(f"{path}: array {name!r} cannot be read: {exc}") from exc


def _read_csv(path: Path) -> dict:
    lines = _csv_lines(path)
    if not lines:
        raise DatasetError(f"{path} is empty")
    header = None if _is_numeric_row(lines[0][1]) else [f.strip() for f in lines[0][1]]
    body = lines[1:] if header is not None else lines
    if not body:
        raise DatasetError(f"{path} has a header line but no data")
    if header is not None and len(body[0][1]) != len(header):
        line, row = body[0]
        raise DatasetError(f"{path}, line {line}: {len(row)} fields, but the header has {len(header)}")
    values = _csv_values(body, path)
    names = [h.lower() for h in header] if header is not None else []
    label_col = next((names.index(n) for n in names if n in _LABEL_COLUMNS), None)
    if label_col is None:
        return {"X": values}
    return {"X": np.delete(values, label_col, axis=1), "y": values[:, label_col]}


def _csv_lines(path: Path) -> list[tuple[int, list[str]]]:
    """Return the non-blank rows of a CSV file, each with its line number."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            return [(reader.line_num, row) for row in reader if any(s.strip() for s in row)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path} is not a readable CSV text file: {exc}") from exc


def _is_numeric_row(row: list[str]) -> bool:
    try:
        for field in row:
            float(field)
    except ValueError:
        return False
    return True


def _csv_values(body: list[tuple[int, list[str]]], path: Path) -> np.ndarray:
    width = len(body[0][1])
    for line, row in body:
        if len(row) != width:
            raise DatasetError(f"{path}, line {line}: {len(row)} fields, expected {width}")
    try:
        return np.array([row for _, row in body], dtype=np.float64)
    except ValueError:
        pass
    # Parsing failed somewhere; find the first bad field to name it.
    for line, row in body:
        for col, field in enumerate(row, start=1):
            if not _is_numeric_row([field]):
                raise DatasetError(f"{path}, line {line}, column {col}: {field!r} is not a number")
    raise DatasetError(f"{path} holds values that are not numbers")  # pragma: no cover


_READERS = {".npy": _read_npy, ".npz": _read_npz, ".csv": _read_csv}
SUFFIXES = tuple(_READERS)  # the file name endings load_file reads

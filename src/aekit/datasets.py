"""Load the data sets used by aekit's examples, tests and benchmarks.

Three named data sets are known (see :func:`available`):

``"digits"``
    scikit-learn's 8x8 handwritten digits (1,797 images, shipped with scikit-learn, no
    network). Pixels 0..16 are scaled to [0, 1]. The train/test split is stratified by
    class and fixed: ``train_test_split(test_size=0.2, random_state=0, stratify=y)``,
    which gives 1,437 training and 360 test images.
``"mnist"`` and ``"fashion-mnist"``
    The 28x28 IDX files (60,000 training, 10,000 test images). Pixels 0..255 are scaled
    to [0, 1] and images are flattened to 784 features.

The IDX files are looked for, in this order, in

1. the ``data_dir`` argument of :func:`load`,
2. the directory named by the ``AEKIT_DATA_DIR`` environment variable,
3. the user cache ``$XDG_CACHE_HOME/aekit/<name>/`` (``~/.cache/aekit/<name>/``).

For 1 and 2 both ``<dir>/<name>/`` and ``<dir>`` itself are accepted (the first wins);
``<dir>`` itself is skipped when its name is that of another known data set, so that
``AEKIT_DATA_DIR=/data/mnist`` never serves MNIST as Fashion-MNIST. Each file may be
plain or gzip-compressed. Files missing from the cache are downloaded from the
official mirrors (unless ``download=False``), checked against pinned hashes, and
written atomically. Local copies are checked by their IDX headers only, so
re-compressed copies work.

Any other name is taken as the path of a user file (``.npy``, ``.npz`` or ``.csv``),
read by :func:`load_file`. Every problem with the data raises :class:`DatasetError`.

This module uses NumPy and the standard library only (scikit-learn for "digits"); it
must never import torch or the torch-based parts of aekit.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import http.client
import logging
import math
import os
import tempfile
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

logger = logging.getLogger(__name__)

__all__ = ["Dataset", "DatasetError", "available", "load", "load_file", "read_idx"]


class DatasetError(ValueError):
    """A data file is missing, unreadable or malformed.

    The message names the file (or directory) and the problem.
    """


@dataclass(frozen=True, eq=False)
class Dataset:
    """A data set split into training and test parts.

    Attributes
    ----------
    X_train : ndarray of shape (n_train, n_features), float32
        Training samples. Named data sets are scaled to [0, 1]; user files are not.
    y_train : ndarray of shape (n_train,), int64, or None
        Training labels, or None when the data has none.
    X_test : ndarray of shape (n_test, n_features), float32
        Test samples; ``n_test`` is 0 for a user file without a test part.
    y_test : ndarray of shape (n_test,), int64, or None
        Test labels; None exactly when ``y_train`` is None.
    image_shape : tuple of int or None
        ``(height, width)`` of one sample as an image, or None when unknown.
    name : str
        The data set's name, or the file name for a user file.
    """

    X_train: np.ndarray
    y_train: np.ndarray | None
    X_test: np.ndarray
    y_test: np.ndarray | None
    image_shape: tuple[int, int] | None
    name: str

    def __repr__(self) -> str:
        # The default repr would print the arrays' contents; shapes say what matters.
        def describe(a):
            return "None" if a is None else f"{a.shape} {a.dtype}"

        return (
            f"Dataset(name={self.name!r}, X_train={describe(self.X_train)}, "
            f"y_train={describe(self.y_train)}, X_test={describe(self.X_test)}, "
            f"y_test={describe(self.y_test)}, image_shape={self.image_shape})"
        )


@dataclass(frozen=True)
class _Source:
    """Where an IDX data set is downloaded from and how downloads are verified."""

    mirrors: tuple[str, ...]
    checksums: dict[str, str]  # file stem -> hex digest
    algorithm: str  # a hashlib name
    of_compressed: bool  # True: digest of the .gz bytes; False: of the decompressed bytes
    image_shape: tuple[int, int] = (28, 28)


_SPLIT_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_STEMS = tuple(stem for pair in _SPLIT_STEMS.values() for stem in pair)

_SOURCES: dict[str, _Source] = {
    # Decompressed sha256, as pinned by public projects; valid for any gzip stream.
    "mnist": _Source(
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        checksums={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        algorithm="sha256",
        of_compressed=False,
    ),
    # zalandoresearch/fashion-mnist publishes only the MD5 of its .gz files.
    "fashion-mnist": _Source(
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        checksums={
            "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        algorithm="md5",
        of_compressed=True,
    ),
}

_DIGITS_TEST_SIZE = 0.2
_DIGITS_SEED = 0

# IDX type codes; multi-byte values are big-endian.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"

# Module-level so tests can substitute a fake opener.
_urlopen = urllib.request.urlopen
_DOWNLOAD_TIMEOUT_S = 60
# URLError, HTTPError, timeouts and refused connections are all OSErrors.
_NETWORK_ERRORS = (OSError, http.client.HTTPException)
_LOCAL_COPY_HINT = (
    "To use a local copy, pass load(..., data_dir=DIR) or set the AEKIT_DATA_DIR "
    "environment variable to a directory holding the four IDX files (plain or .gz), "
    "directly or in a subfolder named {name!r}."
)

_LABEL_COLUMNS = ("label", "y")
# Role in the data set -> accepted array names in an .npz archive, in order of preference.
_NPZ_KEYS = {"X": ("X", "x"), "y": ("y",), "X_test": ("X_test", "x_test"), "y_test": ("y_test",)}


def available() -> list[str]:
    """Names of the data sets :func:`load` knows.

    Returns
    -------
    list of str
        ``["digits", "mnist", "fashion-mnist"]``.
    """
    return ["digits", *_SOURCES]


def load(
    name: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    verbose: bool = True,
) -> Dataset:
    """Load a named data set or a user file.

    Parameters
    ----------
    name : str or path-like
        One of :func:`available` (case and ``_``/``-`` do not matter), or the path of
        a ``.npy``, ``.npz`` or ``.csv`` file (see :func:`load_file`).
    data_dir : str or path-like, optional
        Directory holding the IDX files of "mnist" or "fashion-mnist", directly or in
        a subfolder of that name. Searched before ``$AEKIT_DATA_DIR`` and the cache.
        Ignored for "digits" and user files.
    download : bool, default=True
        Whether IDX files missing from the cache may be downloaded into it.
    verbose : bool, default=True
        Whether to show a progress bar while downloading (only on a terminal).

    Returns
    -------
    Dataset

    Raises
    ------
    DatasetError
        If ``data_dir`` does not exist, the name is unknown, the files cannot be found
        or downloaded, or a file is malformed.
    """
    key = _normalise_name(name)
    if key == "digits":
        return _load_digits()
    if key in _SOURCES:
        return _load_idx_dataset(key, data_dir, download=download, verbose=verbose)
    path = Path(name).expanduser()
    if path.suffix.lower() in _FILE_READERS or path.is_file():
        return load_file(path)
    raise DatasetError(
        f"unknown data set {os.fspath(name)!r}: known names are "
        f"{', '.join(available())}; otherwise give the path of a .npy, .npz or .csv file"
    )


def _normalise_name(name: str | os.PathLike) -> str | None:
    if not isinstance(name, str):
        return None
    return name.strip().lower().replace("_", "-")


def _load_digits() -> Dataset:
    # Imported here so that loading MNIST or a user file does not pay for scikit-learn.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    X = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=_DIGITS_TEST_SIZE, random_state=_DIGITS_SEED, stratify=y
    )
    return Dataset(X_train, y_train, X_test, y_test, image_shape=(8, 8), name="digits")


# --------------------------------------------------------------------------- IDX files


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzip-compressed or not.

    Compression is recognised by the gzip magic bytes, not by the file name.

    Parameters
    ----------
    path : str or path-like
        The file to read.

    Returns
    -------
    ndarray
        The array, with the shape the header declares and the header's element type
        (uint8, int8, int16, int32, float32 or float64) in native byte order.

    Raises
    ------
    DatasetError
        If the file is missing, not valid gzip, not an IDX file, truncated, or longer
        than its header says.
    """
    path = Path(path)
    raw = _read_maybe_gzip(path)
    dtype, shape, offset = _parse_idx_header(raw, path)
    count = math.prod(shape)
    expected, found = count * dtype.itemsize, len(raw) - offset
    if found < expected:
        raise DatasetError(
            f"{path} is truncated: header says {expected} bytes of data, found {found}"
        )
    if found > expected:
        raise DatasetError(
            f"{path} is corrupt: header says {expected} bytes of data, found {found}"
        )
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=offset).reshape(shape)
    # The copy makes the array writable and converts it to native byte order.
    return data.astype(dtype.newbyteorder("="))


def _read_maybe_gzip(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist") from None
    except OSError as exc:
        raise DatasetError(f"{path} cannot be read: {exc}") from exc
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path} is a corrupt gzip file: {exc}") from exc


def _parse_idx_header(raw: bytes, path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """Return the element type, the shape and the offset of the data."""
    if len(raw) < 4:
        raise DatasetError(f"{path} is not an IDX file (only {len(raw)} bytes long)")
    ndim = raw[3]
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or ndim == 0:
        magic = int.from_bytes(raw[:4], "big")
        raise DatasetError(f"{path} is not an IDX file (bad magic number 0x{magic:08X})")
    offset = 4 + 4 * ndim
    if len(raw) < offset:
        raise DatasetError(
            f"{path} is truncated: header declares {ndim} dimensions but the file "
            f"ends after {len(raw)} bytes"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    return _IDX_DTYPES[raw[2]], shape, offset


def _load_idx_dataset(key: str, data_dir, *, download: bool, verbose: bool) -> Dataset:
    source = _SOURCES[key]
    directory, searched = _find_idx_directory(key, data_dir)
    if directory is None:
        directory = _cache_directory(key)
        _fetch_missing(key, directory, searched, download=download, verbose=verbose)
    logger.info("loading %s from %s", key, directory)
    X_train, y_train = _read_idx_split(directory, "train", source)
    X_test, y_test = _read_idx_split(directory, "test", source)
    return Dataset(X_train, y_train, X_test, y_test, source.image_shape, name=key)


def _find_idx_directory(key: str, data_dir) -> tuple[Path | None, list[Path]]:
    """Return the first directory holding all four files, and the directories searched."""
    roots = []
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        if not root.is_dir():
            raise DatasetError(f"data directory {root} does not exist")
        roots.append(root)
    env_dir = os.environ.get("AEKIT_DATA_DIR")
    if env_dir:
        root = Path(env_dir).expanduser()
        if root.is_dir():
            roots.append(root)
        else:
            logger.warning("ignoring AEKIT_DATA_DIR=%s: not a directory", env_dir)
    candidates = [c for root in roots for c in _candidate_directories(root, key)]
    candidates.append(_cache_directory(key))
    for i, candidate in enumerate(candidates):
        if all(_find_idx_file(candidate, stem) for stem in _IDX_STEMS):
            return candidate, candidates[: i + 1]
    return None, candidates


def _candidate_directories(root: Path, key: str) -> list[Path]:
    # A folder named after another data set holds that data set's identically named files.
    other_names = set(_SOURCES) - {key}
    if root.name.lower() in other_names:
        return [root / key]
    return [root / key, root]


def _cache_directory(key: str) -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says relative paths in $XDG_CACHE_HOME are invalid and to be ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "aekit" / key


def _find_idx_file(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def _read_idx_split(directory: Path, split: str, source: _Source):
    images_path, labels_path = (_find_idx_file(directory, s) for s in _SPLIT_STEMS[split])
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.shape[1:] != source.image_shape:
        raise DatasetError(
            f"{images_path} does not hold {source.image_shape} uint8 images: "
            f"found shape {images.shape}, type {images.dtype}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DatasetError(
            f"{labels_path} does not hold uint8 labels: found shape {labels.shape}, "
            f"type {labels.dtype}"
        )
    if len(images) != len(labels):
        raise DatasetError(
            f"{images_path} holds {len(images)} images but {labels_path} holds "
            f"{len(labels)} labels"
        )
    X = images.reshape(len(images), -1).astype(np.float32)
    X /= 255.0
    return X, labels.astype(np.int64)


# ----------------------------------------------------------------------------- download


def _fetch_missing(key: str, cache: Path, searched, *, download: bool, verbose: bool):
    missing = [stem for stem in _IDX_STEMS if _find_idx_file(cache, stem) is None]
    where = ", ".join(str(d) for d in searched)
    hint = _LOCAL_COPY_HINT.format(name=key)
    if not download:
        raise DatasetError(
            f"{key} files {', '.join(missing)} were not found in {where}, and "
            f"download=False. {hint}"
        )
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot create cache directory {cache}: {exc}. {hint}") from exc
    for stem in missing:
        _download(key, stem, cache, where, verbose=verbose)


def _download(key: str, stem: str, cache: Path, where: str, *, verbose: bool) -> None:
    """Download ``<stem>.gz`` into ``cache``, trying each mirror in turn."""
    source, filename = _SOURCES[key], stem + ".gz"
    reasons = []
    for mirror in source.mirrors:
        url = mirror if mirror.endswith("/") else mirror + "/"
        url += filename
        logger.info("downloading %s", url)
        try:
            tmp = _download_to_temp(url, cache, verbose=verbose)
        except _NETWORK_ERRORS as exc:
            logger.warning("download of %s failed: %s", url, exc)
            reasons.append(f"{url}: {exc}")
            continue
        _verify_and_install(tmp, cache / filename, stem, source, url)
        return
    raise DatasetError(
        f"{key} file {filename} was not found in {where} and could not be downloaded "
        f"({'; '.join(reasons)}). {_LOCAL_COPY_HINT.format(name=key)}"
    )


def _download_to_temp(url: str, directory: Path, *, verbose: bool) -> Path:
    # The temporary file lies in the target directory so that os.replace is atomic.
    fd, name = tempfile.mkstemp(dir=directory, prefix=".", suffix=".part")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, _urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as resp:
            _copy_with_progress(resp, out, desc=url.rsplit("/", 1)[-1], verbose=verbose)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _copy_with_progress(resp, out, *, desc: str, verbose: bool) -> None:
    total = int(resp.headers.get("Content-Length") or 0) or None
    # disable=None lets tqdm hide the bar when stderr is not a terminal.
    with tqdm(
        total=total, unit="B", unit_scale=True, desc=desc, leave=False,
        disable=None if verbose else True,
    ) as bar:
        for chunk in iter(lambda: resp.read(1 << 16), b""):
            out.write(chunk)
            bar.update(len(chunk))


def _verify_and_install(tmp: Path, target: Path, stem: str, source: _Source, url: str):
    try:
        expected, actual = source.checksums[stem], _digest(tmp, source, url)
        if actual != expected:
            what = "the file" if source.of_compressed else "the decompressed data"
            raise DatasetError(
                f"checksum mismatch for {target.name} downloaded from {url}: expected "
                f"{source.algorithm} {expected} of {what}, got {actual}; "
                "the download was discarded"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _digest(path: Path, source: _Source, url: str) -> str:
    # usedforsecurity=False keeps MD5 usable on FIPS-mode systems; it only detects damage.
    h = hashlib.new(source.algorithm, usedforsecurity=False)
    opener = open if source.of_compressed else gzip.open
    try:
        with opener(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"the file downloaded from {url} is not valid gzip: {exc}") from exc
    return h.hexdigest()


# --------------------------------------------------------------------------- user files


def load_file(path: str | os.PathLike) -> Dataset:
    """Load samples (and optionally labels) from a ``.npy``, ``.npz`` or ``.csv`` file.

    * ``.npy``: one array of samples, no labels.
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
        The file to read.

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
    if suffix not in _FILE_READERS:
        raise DatasetError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; use .npy, .npz or .csv"
        )
    if not path.is_file():
        raise DatasetError(f"file {path} does not exist")
    if path.stat().st_size == 0:
        raise DatasetError(f"{path} is empty")
    arrays = _FILE_READERS[suffix](path)
    return _user_dataset(path, **arrays)


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
            raise DatasetError(
                f"{path}: X has {X.shape[1]} features but X_test has {X_test.shape[1]}"
            )
        y_test = _as_labels(y_test, len(X_test), path, "y_test")
    if (y is None) != (y_test is None):
        raise DatasetError(f"{path}: labels must be given for both parts or neither")
    return Dataset(X, y, X_test, y_test, image_shape, name=path.name)


def _as_samples(a, path: Path, key: str, *, allow_empty: bool = False):
    """Check and flatten an array of samples; return it as float32 and its image shape."""
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise DatasetError(f"{path}: {key} is not numeric (type {a.dtype})")
    if a.ndim < 2:
        raise DatasetError(
            f"{path}: {key} is a {a.ndim}-D array of shape {a.shape}; expected one row "
            "per sample (2-D, or 3-D for images)"
        )
    if (len(a) == 0 and not allow_empty) or math.prod(a.shape[1:]) == 0:
        raise DatasetError(f"{path}: {key} is empty (shape {a.shape})")
    n_features = math.prod(a.shape[1:])
    X = a.reshape(len(a), n_features).astype(np.float32)
    _check_finite(X, path, key)
    if a.ndim == 3:
        return X, (int(a.shape[1]), int(a.shape[2]))
    side = math.isqrt(n_features)
    return X, ((side, side) if a.ndim == 2 and side * side == n_features else None)


def _as_labels(y, n: int, path: Path, key: str) -> np.ndarray | None:
    if y is None:
        return None
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:  # a column vector is a common way to save labels
        y = y[:, 0]
    if y.dtype.kind not in "biuf" or y.ndim != 1:
        raise DatasetError(
            f"{path}: {key} must be a 1-D numeric array, got shape {y.shape}, type {y.dtype}"
        )
    if len(y) != n:
        raise DatasetError(f"{path}: {key} has {len(y)} labels for {n} samples")
    if y.dtype.kind == "f" and not (np.isfinite(y).all() and (y == np.round(y)).all()):
        raise DatasetError(f"{path}: {key} holds labels that are not whole numbers")
    return y.astype(np.int64)


def _check_finite(X: np.ndarray, path: Path, key: str) -> None:
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = np.unravel_index(np.argmax(bad), bad.shape)
        raise DatasetError(
            f"{path}: {key} contains NaN or infinite values "
            f"(first at sample {row}, feature {col})"
        )


def _load_numpy(path: Path):
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        # Object arrays and non-NumPy files both end here; pickles are refused on purpose.
        raise DatasetError(f"{path} cannot be read as NumPy data: {exc}") from exc


def _read_npy(path: Path) -> dict:
    a = _load_numpy(path)
    if not isinstance(a, np.ndarray):
        a.close()
        raise DatasetError(f"{path} is an .npz archive, not an .npy file")
    return {"X": a}


def _read_npz(path: Path) -> dict:
    archive = _load_numpy(path)
    if isinstance(archive, np.ndarray):
        raise DatasetError(f"{path} is an .npy file, not an .npz archive")
    with archive:
        found = {
            key: next((n for n in names if n in archive.files), None)
            for key, names in _NPZ_KEYS.items()
        }
        if found["X"] is None:
            raise DatasetError(
                f"{path} has no array named 'X' or 'x' (it has: {', '.join(archive.files)})"
            )
        ignored = set(archive.files) - set(found.values())
        if ignored:
            logger.warning("%s: ignoring arrays %s", path, ", ".join(sorted(ignored)))
        return {k: _npz_member(archive, n, path) for k, n in found.items() if n is not None}


def _npz_member(archive, name: str, path: Path) -> np.ndarray:
    try:
        return archive[name]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DatasetError(f"{path}: array {name!r} cannot be read: {exc}") from exc


def _read_csv(path: Path) -> dict:
    lines = _csv_lines(path)
    if not lines:
        raise DatasetError(f"{path} is empty")
    header = None if _is_numeric_row(lines[0][1]) else [f.strip() for f in lines[0][1]]
    body = lines[1:] if header is not None else lines
    if not body:
        raise DatasetError(f"{path} has a header line but no data")
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
                raise DatasetError(
                    f"{path}, line {line}, column {col}: {field!r} is not a number"
                )
    raise DatasetError(f"{path} holds values that are not numbers")  # pragma: no cover


_FILE_READERS = {".npy": _read_npy, ".npz": _read_npz, ".csv": _read_csv}

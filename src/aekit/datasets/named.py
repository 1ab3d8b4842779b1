"""The named data sets: scikit-learn's digits, and MNIST-like IDX data sets found on disk or
downloaded into the cache.

Where the IDX files are looked for is described in :mod:`aekit.datasets`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from .dataset import Dataset, DatasetError
from .download import SOURCES, Source, fetch_missing
from .idx import read_idx

logger = logging.getLogger(__name__)

_DIGITS_TEST_SIZE = 0.2
_DIGITS_SEED = 0

_SPLIT_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_STEMS = tuple(stem for pair in _SPLIT_STEMS.values() for stem in pair)


def names() -> list[str]:
    """The names of the named data sets, digits first."""
    return ["digits", *SOURCES]


def load_named(key: str, data_dir, *, download: bool, verbose: bool) -> Dataset:
    """Load the data set called ``key`` (one of :func:`names`); see :func:`aekit.datasets.load`."""
    if key == "digits":
        return _load_digits()
    return _load_idx_dataset(key, data_dir, download=download, verbose=verbose)


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


def _load_idx_dataset(key: str, data_dir, *, download: bool, verbose: bool) -> Dataset:
    source = SOURCES[key]
    directory, searched = _find_idx_directory(key, data_dir)
    if directory is None:
        directory = _cache_directory(key)
        missing = [stem for stem in _IDX_STEMS if _find_idx_file(directory, stem) is None]
        fetch_missing(key, directory, missing, searched, download=download, verbose=verbose)
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
    other_names = set(SOURCES) - {key}
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


def _read_idx_split(directory: Path, split: str, source: Source):
    images_path, labels_path = (_find_idx_file(directory, s) for s in _SPLIT_STEMS[split])
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.shape[1:] != source.image_shape:
        raise DatasetError(
            f"{images_path} does not hold {source.image_shape} uint8 images: "
            f"found shape {images.shape}, type {images.dtype}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DatasetError(f"{labels_path} does not hold uint8 labels: found shape {labels.shape}, type {labels.dtype}")
    if len(images) != len(labels):
        raise DatasetError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels")
    X = images.reshape(len(images), -1).astype(np.float32)
    X /= 255.0
    return X, labels.astype(np.int64)

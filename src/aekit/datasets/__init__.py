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
read by :func:`load_file`, or of a folder of ``.npy`` shards, read by :func:`load_folder`
(a :class:`ShardedArray`: rows stay on disk until they are read, as a ``.npy`` file's do).
Every problem with the data raises :class:`DatasetError`.

The package has one module per job: :mod:`~aekit.datasets.named` (the named data sets
and where their files are looked for), :mod:`~aekit.datasets.download` (mirrors, pinned
hashes, fetching), :mod:`~aekit.datasets.idx` (the IDX reader),
:mod:`~aekit.datasets.userfiles` (``.npy``, ``.npz``, ``.csv``) and
:mod:`~aekit.datasets.dataset` (:class:`Dataset` and :class:`DatasetError`).

It uses NumPy, tqdm and the standard library only (scikit-learn for "digits"), and of
aekit only :mod:`aekit.files`; it must never import torch or the torch-based parts of
aekit.
"""

from __future__ import annotations

import os
from pathlib import Path

from .dataset import Dataset, DatasetError
from .idx import read_idx
from .named import load_named, names
from .shards import ShardedArray, on_disk, open_shards
from .userfiles import SUFFIXES, load_file, load_folder

__all__ = [
    "Dataset",
    "DatasetError",
    "ShardedArray",
    "available",
    "load",
    "load_file",
    "load_folder",
    "on_disk",
    "open_shards",
    "read_idx",
]


def available() -> list[str]:
    """Names of the data sets :func:`load` knows.

    Returns
    -------
    list of str
        ``["digits", "mnist", "fashion-mnist"]``.
    """
    return names()


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
        One of :func:`available` (case and ``_``/``-`` do not matter), the path of
        a ``.npy``, ``.npz`` or ``.csv`` file (see :func:`load_file`), or of a folder of
        ``.npy`` shards (see :func:`load_folder`).
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
    if key in names():
        return load_named(key, data_dir, download=download, verbose=verbose)
    path = Path(name).expanduser()
    if path.is_dir():
        return load_folder(path)
    if path.suffix.lower() in SUFFIXES or path.is_file():
        return load_file(path)
    raise DatasetError(
        f"unknown data set {os.fspath(name)!r}: known names are "
        f"{', '.join(available())}; otherwise give the path of a .npy, .npz or .csv file "
        "or of a folder of .npy shards"
    )


def _normalise_name(name: str | os.PathLike) -> str | None:
    if not isinstance(name, str):
        return None
    return name.strip().lower().replace("_", "-")

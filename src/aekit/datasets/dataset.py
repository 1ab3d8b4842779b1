"""What every loader returns (:class:`Dataset`) and raises (:class:`DatasetError`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
        Training samples. Named data sets are scaled to [0, 1]; user files are not. For a
        ``.npy`` file or a folder of shards the rows stay on disk: a read-only
        ``numpy.memmap``, or a :class:`~aekit.datasets.ShardedArray` that converts them to
        float32 as they are read.
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

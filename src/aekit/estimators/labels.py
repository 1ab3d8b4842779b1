"""scikit-learn's semi-supervised labels: ``y == -1`` marks an unlabelled row
(``SelfTrainingClassifier``, ``LabelSpreading``); the checks aekit's classifiers run on them."""

from __future__ import annotations

import numpy as np
from sklearn.utils.multiclass import check_classification_targets

UNLABELLED = -1  # scikit-learn's semi-supervised mark


def labelled_mask(y: np.ndarray) -> np.ndarray:
    """True where ``y`` is not the integer ``-1`` (strings are always labels)."""
    if y.dtype.kind in "iuf":
        return y != UNLABELLED
    if y.dtype.kind == "O":
        return np.array([not (isinstance(v, (int, float, np.number)) and v == UNLABELLED) for v in y], dtype=bool)
    return np.ones(len(y), dtype=bool)


def check_labels(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(classes_, class indices)`` of the labelled rows; clear errors when they cannot train."""
    if len(y) == 0:
        raise ValueError(
            f"no labelled rows: every y is {UNLABELLED}, the mark of an unlabelled "
            "row; label at least one row of each of 2 classes"
        )
    try:
        check_classification_targets(y)
        classes, targets = np.unique(y, return_inverse=True)
    except TypeError as error:  # numpy cannot order e.g. str and int
        kinds = ", ".join(sorted({type(v).__name__ for v in y}))
        raise ValueError(
            f"the labelled rows mix label types ({kinds}), which cannot be ordered into classes; "
            "give every label the same type (-1 marks unlabelled rows in an object array)"
        ) from error
    if len(classes) < 2:
        raise ValueError(
            f"the labelled rows (y != {UNLABELLED}) have 1 class "
            f"({classes.tolist()[0]!r}); a classifier needs at least 2 classes"
        )
    return classes, targets

"""Images as rows: aekit's modules take flat rows, and its estimators take images too.

An array of 3 dimensions is a stack of one-channel images ``(n, height, width)``; of 4, images
``(n, channels, height, width)``, as torch lays them out. Both become rows of
``channels * height * width`` values, and what comes back in the input's space (a
reconstruction) gets the input's shape again.
"""

from __future__ import annotations

import numpy as np

from ..nn.conv import as_image_shape


def to_rows(X) -> tuple[object, tuple[int, int, int] | None]:
    """``(rows, image shape)``: images flattened to rows with their ``(channels, height,
    width)``; anything else (rows, a data frame, a list) as it is, with None."""
    if getattr(X, "ndim", 2) < 3:
        return X, None
    X = np.asarray(X)
    if X.ndim > 4:
        raise ValueError(
            f"X has {X.ndim} dimensions; give rows (n, features), one-channel images (n, height, width) "
            "or images (n, channels, height, width)"
        )
    shape = as_image_shape(X.shape[1:])
    return X.reshape(len(X), -1), shape


def check_shape(found, expected, owner: str) -> None:
    """Images of shape ``found`` where ``expected`` (from ``owner``) is wanted: a clear error
    when they differ. Either being None (rows, or no shape yet) passes."""
    if found is None or expected is None:
        return
    expected = as_image_shape(expected)
    if tuple(found) != expected:
        raise ValueError(f"X holds images of shape {tuple(found)}, but {owner} is {expected} (channels, height, width)")


def like_input(values: np.ndarray, X) -> np.ndarray:
    """``values``, rows in the input space, shaped as the input ``X`` was (images stay images)."""
    shape = getattr(X, "shape", None)
    return values.reshape(shape) if shape is not None and len(shape) >= 3 else values

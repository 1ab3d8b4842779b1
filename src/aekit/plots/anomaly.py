"""Anomaly figures: the most anomalous images with their per-pixel error maps, the histogram of
reconstruction errors with the detector's threshold, and the ROC curve. Arrays in, figures out."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .images import _as_images, _image_figure, _show


def error_maps(
    images,
    reconstructions,
    errors,
    image_shape,
    *,
    scores=None,
    title: str | None = "Most anomalous images",
    cmap: str = "gray",
    error_cmap: str = "inferno",
) -> Figure:
    """One column per image: the image, its reconstruction and its squared error per pixel.

    The images and reconstructions share the images' intensity range; the error maps share
    one scale (0 to the largest error shown), so a brighter map is a worse reconstruction.

    Parameters
    ----------
    images, reconstructions, errors : array-like of shape (n, n_pixels) or (n, h, w)
        From :meth:`aekit.AutoencoderOutlierDetector.feature_errors` for ``errors``.
    image_shape : tuple of int or None
    scores : array-like of shape (n,), optional
        Written above each column (e.g. the reconstruction error of the row).

    Returns
    -------
    matplotlib.figure.Figure
        ``3 * n`` axes.
    """
    images, reconstructions, errors = (_as_images(a, image_shape) for a in (images, reconstructions, errors))
    n = len(images)
    if n == 0:
        raise ValueError("no images to draw")
    vmin, vmax = float(images.min()), float(images.max())
    emax = float(errors.max()) or 1.0
    fig, axes = _image_figure(3, n, title)
    for i in range(n):
        label = None if scores is None else f"{float(np.asarray(scores)[i]):.3g}"
        _show(axes[0, i], images[i], cmap, vmin, vmax, label)
        _show(axes[1, i], reconstructions[i], cmap, vmin, vmax)
        _show(axes[2, i], errors[i], error_cmap, 0.0, emax)
    for row, name in enumerate(("image", "reconstructed", "error")):
        axes[row, 0].set_ylabel(name, fontsize=8)
    return fig


def error_histogram(
    errors, threshold: float | None = None, outliers=None, *, bins: int = 60, title: str | None = "Reconstruction error"
) -> Figure:
    """Histogram of the reconstruction errors (logarithmic bins), with the threshold above which
    a row is an outlier; with ``outliers`` (boolean, True for a known outlier) the two groups
    are drawn apart.

    Returns
    -------
    matplotlib.figure.Figure
    """
    errors = np.asarray(errors, dtype=np.float64)
    positive = errors[errors > 0]
    lo, hi = (positive.min(), positive.max()) if len(positive) else (1e-6, 1.0)
    edges = np.geomspace(lo, max(hi, lo * 1.01), bins + 1)
    fig = Figure(figsize=(6.0, 3.6), layout="constrained")
    ax = fig.add_subplot()
    if outliers is None:
        ax.hist(np.clip(errors, lo, None), edges, color="tab:blue", alpha=0.8)
    else:
        outliers = np.asarray(outliers, dtype=bool)
        for mask, name, colour in ((~outliers, "normal", "tab:blue"), (outliers, "anomalous", "tab:red")):
            ax.hist(np.clip(errors[mask], lo, None), edges, color=colour, alpha=0.55, label=f"{name} ({mask.sum()})")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("reconstruction error, mean squared (higher: more anomalous)")
    ax.set_ylabel("rows")
    if outliers is not None or threshold is not None:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def roc_curve(false_positive_rate, true_positive_rate, auc: float, *, title: str | None = "ROC curve") -> Figure:
    """The ROC curve of an anomaly score (outliers as the positive class), with its area."""
    fig = Figure(figsize=(4.2, 4.0), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(false_positive_rate, true_positive_rate, color="tab:red", label=f"AUROC {auc:.4f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate (normal rows flagged)")
    ax.set_ylabel("true positive rate (anomalies found)")
    ax.legend(loc="lower right", fontsize=8)
    if title:
        ax.set_title(title)
    return fig

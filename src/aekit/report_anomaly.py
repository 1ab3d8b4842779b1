"""The report's sections for an outlier detector: the most anomalous test images with their
per-pixel error maps, the histogram of reconstruction errors against the threshold, and the ROC
curve when it is known which test rows are anomalies."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as roc_points

from . import plots
from .report import Section, _png, _table


def detector_sections(detector, data, metrics: dict, options, outliers=None) -> list[Section]:
    """The detector's sections of :func:`aekit.report.compute_sections` on the test rows of
    ``data`` (its training rows when it has none); the metrics they find go into ``metrics``."""
    X = data.X_test if len(data.X_test) else data.X_train
    sections, found = anomaly_sections(detector, X, data.image_shape, outliers, n_examples=options.n_examples)
    metrics.update(found)
    return sections


def anomaly_sections(detector, X, image_shape, outliers=None, *, n_examples: int = 10) -> tuple[list[Section], dict]:
    """The sections for a fitted :class:`~aekit.AutoencoderOutlierDetector` on rows ``X``, and
    the metrics they found.

    Parameters
    ----------
    detector : AutoencoderOutlierDetector
    X : ndarray of shape (n, n_features)
        The rows to score (the test rows).
    image_shape : tuple of int or None
        Without one, the image section is left out.
    outliers : array-like of bool, optional
        True for the rows known to be anomalies: the histogram splits them and the ROC curve
        is drawn.
    """
    errors = -detector.score_samples(X)
    flagged = errors > -detector.offset_
    metrics = {"flagged_fraction": float(flagged.mean()), "threshold": -detector.offset_}
    sections = [_summary(flagged, detector.contamination)]
    if image_shape is not None:
        sections.append(_worst_images(detector, X, errors, image_shape, n_examples))
    if outliers is not None:
        outliers = np.asarray(outliers, dtype=bool)
        metrics["auroc"] = float(roc_auc_score(outliers, errors))
    sections.append(_histogram(errors, -detector.offset_, outliers))
    if outliers is not None:
        fpr, tpr, _ = roc_points(outliers, errors)
        sections.append(
            Section(
                "ROC curve",
                "How well the reconstruction error ranks the known anomalies above the normal rows, "
                "at every threshold: 1 is perfect, 0.5 is chance.",
                _png(plots.roc_curve(fpr, tpr, metrics["auroc"], title=None)),
            )
        )
    return sections, metrics


def _summary(flagged: np.ndarray, contamination: float) -> Section:
    rows = {"rows scored": len(flagged), "flagged as outliers": f"{flagged.sum()} ({flagged.mean():.2%})"}
    rows["contamination (expected in training)"] = f"{contamination:.2%}"
    return Section(
        "Outliers",
        "Rows whose reconstruction error is above the threshold the detector set on its training rows.",
        html_body=_table(rows),
    )


def _worst_images(detector, X, errors, image_shape, n: int) -> Section:
    worst = np.argsort(errors)[::-1][:n]
    figure = plots.error_maps(
        X[worst],
        detector.autoencoder_.reconstruct(X[worst]),
        detector.feature_errors(X[worst]),
        image_shape,
        scores=errors[worst],
        title=None,
    )
    return Section(
        f"The {len(worst)} most anomalous test images",
        "Top: the images with the largest reconstruction error (the number above each); middle: "
        "their reconstructions; bottom: the squared error of every pixel (brighter is worse), "
        "which shows what the autoencoder could not reproduce.",
        _png(figure),
    )


def _histogram(errors, threshold: float, outliers) -> Section:
    return Section(
        "Reconstruction errors",
        "Histogram of the test rows' reconstruction errors (log scale); the dashed line is the "
        "threshold. Known anomalies, when given, are drawn in red: the less they overlap the "
        "normal rows, the better the detector separates them.",
        _png(plots.error_histogram(errors, threshold, outliers, title=None)),
    )

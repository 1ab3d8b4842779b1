"""Outlier detection on the command line: ``aekit train --detector`` trains an
AutoencoderOutlierDetector, ``aekit detect`` scores the rows of a data set with a saved one."""

from __future__ import annotations

import csv
import io as text_io
from pathlib import Path

import numpy as np

from ..estimators import AutoencoderOutlierDetector
from ..estimators.outlier import default_autoencoder
from .flags import given


def normal_labels(text: str) -> tuple[int, ...]:
    """``"3"`` or ``"3,5"``: the labels of the normal rows."""
    return tuple(int(v) for v in text.split(","))


def outlier_mask(labels, normal) -> np.ndarray | None:
    """True for the rows whose label is not a normal one; None without labels or ``normal``."""
    if labels is None or normal is None:
        return None
    return ~np.isin(labels, normal)


def default_autoencoder_params() -> dict:
    """The detector's default autoencoder as the flags' starting point (flags override it)."""
    params = default_autoencoder().get_params(deep=False)
    params.pop("verbose")  # the command sets it from --quiet
    return params


def make_detector(args, autoencoder) -> AutoencoderOutlierDetector:
    """The detector the flags describe around ``autoencoder``, checked before any data is read."""
    detector = AutoencoderOutlierDetector(
        autoencoder, **given(args, args.detector_dests), device=autoencoder.device, verbose=autoencoder.verbose
    )
    detector._validate_params()
    return detector


def fit_detector(detector, data, normal) -> tuple[AutoencoderOutlierDetector, dict]:
    """Fit on the training rows (those with a normal label when ``normal`` is given); the
    metrics: the autoencoder's, the threshold and, with labels, the test AUROC."""
    from sklearn.metrics import roc_auc_score

    mask = outlier_mask(data.y_train, normal)
    X = data.X_train if mask is None else data.X_train[~mask]
    if not len(X):
        raise ValueError(f"no training rows have the normal labels {normal}")
    detector.fit(X)
    metrics = {"n_normal_train": len(X), "threshold": -detector.offset_}
    outliers = outlier_mask(data.y_test, normal)
    if outliers is not None and len(data.X_test) and 0 < outliers.sum() < len(outliers):
        metrics["test_auroc"] = float(roc_auc_score(outliers, -detector.score_samples(data.X_test)))
    return detector, metrics


def load_detector(model_dir, modules=None) -> AutoencoderOutlierDetector:
    from .. import io

    model_dir = Path(model_dir)
    if (model_dir / "model" / io.CONFIG_FILE).exists():
        model_dir = model_dir / "model"
    detector = io.load(model_dir, modules=modules)
    if not isinstance(detector, AutoencoderOutlierDetector):
        raise ValueError(
            f"{model_dir} holds a model of class {type(detector).__name__}, not an AutoencoderOutlierDetector; "
            "train one with `aekit train --detector`"
        )
    return detector


def scores_table(detector, data) -> tuple[str, np.ndarray, np.ndarray | None]:
    """The CSV text of every row's scores (training rows, then test rows), the rows and their
    labels."""
    X = np.concatenate([data.X_train, data.X_test])
    labels = None if data.y_train is None else np.concatenate([data.y_train, data.y_test])
    split = ["train"] * len(data.X_train) + ["test"] * len(data.X_test)
    score = detector.score_samples(X)
    decision = score - detector.offset_
    out = text_io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["row", "split", "score", "decision", "prediction", *(["label"] if labels is not None else [])])
    for i in range(len(X)):
        label = [int(labels[i])] if labels is not None else []
        writer.writerow([i, split[i], f"{score[i]:.9g}", f"{decision[i]:.9g}", 1 if decision[i] >= 0 else -1, *label])
    return out.getvalue(), X, labels


def anomaly_report(path, detector, X, image_shape, outliers, title: str) -> Path:
    """An HTML page of the detector's parameters and its anomaly sections on the rows ``X``."""
    from ..files import write_text_atomic
    from ..report import Section, _parameter_table, render
    from ..report_anomaly import anomaly_sections

    sections, _ = anomaly_sections(detector, X, image_shape, outliers)
    config = Section("Configuration", "The detector's parameters.", html_body=_parameter_table(detector))
    return write_text_atomic(path, render([config, *sections], title))

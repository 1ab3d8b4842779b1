"""One self-contained HTML report of a fitted autoencoder: configuration, metrics, training
history and every figure of :mod:`aekit.plots`, images inlined as base64 PNG.

The report never trains the autoencoder; it only runs it (and, for the linear probe and the
latent maps, fits scikit-learn's logistic regression, PCA and t-SNE on its codes).
"""

from __future__ import annotations

import base64
import html
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import inspect, params, plots
from .files import write_text_atomic
from .nn import ConvAutoencoder, CustomAutoencoder, DenseVAE

logger = logging.getLogger(__name__)


@dataclass
class Section:
    """One part of the report: a heading, a caption saying what to look for, and content."""

    title: str
    caption: str
    image_png: bytes | None = None
    html_body: str = ""


@dataclass
class ReportOptions:
    """What to compute for the report; the slow parts can be switched off."""

    n_examples: int = 10
    n_units: int = 8
    top_k: int = 8
    tsne: bool = True
    max_points: int = 1500
    activation_steps: int = 200
    # enough input L2 that the optimum is not just the sign pattern of the weights (a corner
    # of the input box), so the images show structure; 1e-3 gives black-and-white noise
    activation_l2: float = 0.05
    probe: bool = True
    random_state: int = 0
    verbose: bool = True
    extra: dict = field(default_factory=dict)


def _png(fig) -> bytes:
    return plots.figure_to_png_bytes(fig, dpi=90)


def _table(rows: dict) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows.items())
    return f"<table>{cells}</table>"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.5g}"
    return str(value)


def _parameter_table(estimator) -> str:
    """Each parameter's value beside its description, from the estimator's parameter table."""
    rows = "".join(
        f"<tr><th>{html.escape(e.name)}</th><td>{html.escape(_fmt(getattr(estimator, e.name)))}</td>"
        f"<td>{html.escape(' '.join(e.param.doc.split()))}</td></tr>"
        for e in params.table(estimator)
    )
    return f"<table><tr><th>parameter</th><th>value</th><th>meaning</th></tr>{rows}</table>"


# the history's columns, in this order, where any record has them
_HISTORY_KEYS = ("phase", "epoch", "loss", "reconstruction", "l2", "sparsity", "activity_l1", "contractive", "kl")
_HISTORY_KEYS += ("val_loss", "seconds")


def _history_table(history: list[dict]) -> str:
    keys = [k for k in _HISTORY_KEYS if any(k in r for r in history)]
    head = "".join(f"<th>{k}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(k, '')))}</td>" for k in keys) + "</tr>" for r in history
    )
    return f"<details><summary>every epoch</summary><table><tr>{head}</tr>{body}</table></details>"


def _image_sections(estimator, data, options: ReportOptions, progress) -> list[Section]:
    """The figures that need the data as images."""
    shape, X_test, X_train = data.image_shape, data.X_test, data.X_train
    module = estimator.module_
    sections = []
    progress.set_description("reconstructions")
    originals = X_test[: options.n_examples]
    sections.append(
        Section(
            "Reconstructions",
            "Top row: test images; below: the autoencoder's reconstructions. "
            "Look for blurred strokes or digits turned into other digits.",
            _png(
                plots.reconstruction_grid(
                    originals, estimator.reconstruct(originals), shape, n=options.n_examples, title=None
                )
            ),
        )
    )
    progress.update()
    progress.set_description("weights")
    sections += _weights_section(module, shape)
    progress.update()
    if isinstance(module, DenseVAE):  # its codes are a posterior, not a layer of units
        return sections
    depth = module.depth
    progress.set_description("top activating")
    units = np.arange(min(options.n_units, module.n_codes))
    indices, values = inspect.top_activating(module, X_train, depth, options.top_k)
    sections.append(
        Section(
            f"Most activating training images (coding layer, units 0-{units[-1]})",
            "One row per coding unit: the training images that excite it most. A unit whose row "
            "shows one kind of shape has learned that shape.",
            _png(
                plots.top_activating_grid(X_train, indices[units], shape, units=units, values=values[units], title=None)
            ),
        )
    )
    progress.update()
    progress.set_description("activation maximisation")
    lo, hi = float(X_train.min()), float(X_train.max())
    for layer, name in [(1, "first hidden layer"), (depth, "coding layer")][: 1 + (depth > 1)]:
        layer_units = units[units < inspect.n_units(module, layer)]
        inputs, acts = inspect.maximize_activation(
            module,
            layer,
            layer_units,
            steps=options.activation_steps,
            l2=options.activation_l2,
            input_range=(lo, hi),
            random_state=options.random_state,
        )
        sections.append(
            Section(
                f"Activation maximisation ({name})",
                "Inputs found by gradient ascent (from noise, kept in the data's range, with a little "
                "L2) that excite one neuron each; the number is the activation reached.",
                _png(plots.activation_maximization_grid(inputs, shape, layer_units, activations=acts, title=None)),
            )
        )
    progress.update()
    return sections


def _weights_section(module, shape) -> list[Section]:
    """The first layer's weights as images: a dense layer's per neuron, a convolution's kernels;
    none for your own modules."""
    if isinstance(module, CustomAutoencoder):
        return []
    caption = (
        "Each kernel of the first convolution drawn as an image: edge and stroke detectors are a good sign."
        if isinstance(module, ConvAutoencoder)
        else "Each hidden neuron's incoming weights drawn as an image: stroke and blob detectors are a good sign, "
        "noise means under-training."
    )
    images = inspect.weight_images(module, shape)
    return [Section("First-layer features", caption, _png(plots.weight_grid(images, None, max_units=50, title=None)))]


def _latent_section(codes, labels, options: ReportOptions, progress) -> Section:
    progress.set_description("latent maps (PCA, t-SNE)")
    pca, idx = inspect.latent_projection(codes, "pca", random_state=options.random_state, max_points=options.max_points)
    if options.tsne:
        tsne, _ = inspect.latent_projection(
            codes, "tsne", random_state=options.random_state, max_points=options.max_points
        )
        fig = plots.latent_maps(pca, tsne, None if labels is None else labels[idx])
    else:
        fig = plots.latent_map(pca, None if labels is None else labels[idx], "PCA")
    progress.update()
    return Section(
        "Latent space",
        "Test codes projected to 2-D, coloured by label: separate "
        "clusters mean the codes keep the classes apart without ever seeing a label.",
        _png(fig),
    )


def _probe_section(estimator, data, options: ReportOptions, progress) -> tuple[Section, dict]:
    progress.set_description("linear probe")
    probe = inspect.linear_probe(
        estimator.transform(data.X_train),
        data.y_train,
        estimator.transform(data.X_test),
        data.y_test,
        X_train=data.X_train,
        X_test=data.X_test,
        random_state=options.random_state,
    )
    progress.update()
    rows = {
        "autoencoder codes": probe["codes"],
        "raw inputs": probe["raw"],
        f"PCA, {probe['n_components']} components": probe["pca"],
    }
    return Section(
        "Linear probe",
        "Test accuracy of a logistic regression trained on each "
        "representation: the codes should beat PCA with as many components.",
        html_body=_table({k: f"{v:.4f}" for k, v in rows.items()}),
    ), probe


def compute_sections(
    estimator, data, metrics: dict, options: ReportOptions, study: list[dict] | None = None, outliers=None
) -> list[Section]:
    """Every section of the report, in order; shows a progress bar when ``options.verbose``.

    For an outlier detector (it has ``offset_``) the sections of its autoencoder come first,
    then :func:`aekit.report_anomaly.detector_sections` (``outliers`` marks the test rows
    known to be anomalies)."""
    from .report_generative import generative_sections

    detector = estimator if hasattr(estimator, "offset_") else None
    estimator = estimator.autoencoder_ if detector is not None else estimator
    has_images = data.image_shape is not None and len(data.X_test) > 0
    has_labels = data.y_test is not None and len(data.X_test) > 0
    total = 3 + 4 * has_images + has_labels * (1 + options.probe) + (study is not None)
    caption = (
        "The evidence lower bound (ELBO) in nats per row (higher is better)."
        if "train_elbo" in metrics
        else "Mean squared reconstruction error per pixel (lower is better)."
    )
    sections = [
        Section("Configuration", "The estimator's parameters.", html_body=_parameter_table(detector or estimator)),
        Section("Metrics", caption, html_body=_table(metrics)),
    ]
    with tqdm(total=total, disable=not options.verbose, desc="report", unit="part") as progress:
        progress.update(2)
        sections.append(
            Section(
                "Training",
                "Loss per epoch, one colour per phase (dashed: validation). It should fall and flatten, not climb.",
                _png(plots.loss_curves(estimator.history_, title=None)),
                _history_table(estimator.history_),
            )
        )
        if has_images:
            sections += _image_sections(estimator, data, options, progress)
        sections += generative_sections(estimator, data, options, progress)
        if has_labels:
            sections.append(_latent_section(estimator.transform(data.X_test), data.y_test, options, progress))
            if options.probe:
                probe_section, probe = _probe_section(estimator, data, options, progress)
                sections.append(probe_section)
                metrics.update({f"probe_accuracy_{k}": v for k, v in probe.items()})
        if study is not None:
            sections.append(_study_section(study))
            progress.update()
    if detector is not None:
        from .report_anomaly import detector_sections  # it builds on this module's sections

        sections += detector_sections(detector, data, metrics, options, outliers)
    return sections


def _study_section(study: list[dict]) -> Section:
    from .study import summarize

    records = [{**r, "error": r["test_error"]} for r in study]
    return Section(
        "Label-budget study",
        "Test error against the number of labels, mean ± std "
        "over seeds: pretrained lines below the from-scratch line mean pretraining helps; the "
        "ladder line is a network that learns from the unlabelled rows throughout its training.",
        _png(plots.label_budget(records, metric="error")),
        f"<pre>{html.escape(summarize(study))}</pre>",
    )


CSS = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
p.caption{color:#555;font-style:italic;margin:.3em 0 .8em}img{max-width:100%;height:auto}
table{border-collapse:collapse;font-size:.9em}th,td{border:1px solid #ddd;padding:2px 8px;text-align:left}
th{background:#f5f5f5}details{margin-top:.5em}"""


def render(sections: list[Section], title: str) -> str:
    """The HTML page: no scripts, no external resources, images as data URIs."""
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for s in sections:
        parts.append(f"<section><h2>{html.escape(s.title)}</h2><p class='caption'>{html.escape(s.caption)}</p>")
        if s.image_png is not None:
            data = base64.b64encode(s.image_png).decode("ascii")
            parts.append(f"<img alt='{html.escape(s.title)}' src='data:image/png;base64,{data}'>")
        parts.append(s.html_body + "</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    path,
    estimator,
    data,
    metrics: dict,
    *,
    title: str = "aekit report",
    options: ReportOptions | None = None,
    study: list[dict] | None = None,
    outliers=None,
) -> Path:
    """Compute every section for a fitted ``estimator`` on ``data`` and write the HTML file.

    Parameters
    ----------
    path : path-like
        The HTML file to write (atomically).
    estimator : AutoencoderTransformer or AutoencoderOutlierDetector
        Fitted.
    data : aekit.datasets.Dataset
        Training rows feed the feature views; test rows the reconstructions, maps and probe.
    metrics : dict
        Shown as a table; the linear-probe accuracies are added to it.
    study : list of dict, optional
        Records of a label-budget study (``aekit pretrain``), plotted when given.
    outliers : array-like of bool, optional
        For a detector: True for the test rows known to be anomalies (for the ROC curve).
    """
    sections = compute_sections(estimator, data, metrics, options or ReportOptions(), study, outliers)
    return write_text_atomic(path, render(sections, title))

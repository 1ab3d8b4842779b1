"""Matplotlib figures from arrays; nothing here trains or imports torch.

Every function builds a :class:`matplotlib.figure.Figure` directly, without ``pyplot``: such a
figure needs no GUI backend and renders with Agg when saved, and the user's pyplot backend is
left alone. Show one in a notebook by returning it from a cell, or save it with
:func:`save_figure`; :func:`figure_to_png_bytes` gives the bytes to inline in an HTML report.
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from .files import write_bytes_atomic

__all__ = [
    "image_grid",
    "reconstruction_grid",
    "weight_grid",
    "top_activating_grid",
    "activation_maximization_grid",
    "latent_map",
    "latent_maps",
    "loss_curves",
    "label_budget",
    "figure_to_png_bytes",
    "save_figure",
]

_CELL = 1.0  # inches per image in a grid
_MAX_DISCRETE = 20  # more distinct labels than this are drawn as a continuous colour scale


# -- image grids ---------------------------------------------------------------------------
def _as_images(images, image_shape) -> np.ndarray:
    images = np.asarray(images, dtype=np.float32)
    if image_shape is not None:
        images = images.reshape(len(images), *tuple(image_shape))
    if images.ndim not in (3, 4):
        raise ValueError(
            f"images must be (n, h, w) or (n, h, w, channels) after reshaping, "
            f"got shape {images.shape}; pass image_shape"
        )
    return images


def _image_figure(nrows: int, ncols: int, title: str | None) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(min(ncols * _CELL, 14.0), nrows * _CELL + (0.4 if title else 0.0)))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    fig.subplots_adjust(
        left=0.08, right=0.98, bottom=0.02, top=0.9 if title else 0.98, wspace=0.05, hspace=0.3
    )
    if title:
        fig.suptitle(title)
    return fig, axes


def _show(ax, image: np.ndarray, cmap: str, vmin, vmax, title: str | None = None) -> None:
    ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=8)


def image_grid(
    images,
    image_shape=None,
    *,
    ncols: int = 10,
    titles=None,
    title: str | None = None,
    cmap: str = "gray",
    vmin: float | None = None,
    vmax: float | None = None,
) -> Figure:
    """Images in a grid, ``ncols`` per row; one axes per image (the unused cells are removed).

    Parameters
    ----------
    images : array-like of shape (n, n_pixels) or (n, h, w)
    image_shape : tuple of int, optional
        Shape to reshape each row of ``images`` to, e.g. ``(8, 8)``.
    ncols : int, default=10
    titles : sequence of str, optional
        One small title per image.
    title : str, optional
        Title of the figure.
    cmap : str, default="gray"
    vmin, vmax : float, optional
        Shared colour range; None scales each image on its own.

    Returns
    -------
    matplotlib.figure.Figure
    """
    images = _as_images(images, image_shape)
    n = len(images)
    if n == 0:
        raise ValueError("no images to draw")
    ncols = max(1, min(int(ncols), n))
    nrows = -(-n // ncols)
    fig, axes = _image_figure(nrows, ncols, title)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.remove()
            continue
        _show(ax, images[i], cmap, vmin, vmax, None if titles is None else str(titles[i]))
    return fig


def reconstruction_grid(
    originals,
    reconstructions,
    image_shape,
    *,
    n: int = 10,
    title: str | None = "Reconstructions",
    cmap: str = "gray",
) -> Figure:
    """The first ``n`` originals in the top row, their reconstructions below.

    Both rows share the originals' intensity range, so a washed-out reconstruction looks it.

    Returns
    -------
    matplotlib.figure.Figure
        ``2 * n`` axes (fewer when there are fewer than ``n`` images).
    """
    originals = _as_images(originals, image_shape)
    reconstructions = _as_images(reconstructions, image_shape)
    if originals.shape != reconstructions.shape:
        raise ValueError(
            f"originals {originals.shape} and reconstructions {reconstructions.shape} differ in shape"
        )
    n = min(int(n), len(originals))
    vmin, vmax = float(originals[:n].min()), float(originals[:n].max())
    fig, axes = _image_figure(2, n, title)
    for row, (images, label) in enumerate([(originals, "original"), (reconstructions, "reconstructed")]):
        for i in range(n):
            _show(axes[row, i], images[i], cmap, vmin, vmax)
        axes[row, 0].set_ylabel(label, fontsize=8)
    return fig


def weight_grid(
    weight_images,
    image_shape=None,
    *,
    ncols: int = 10,
    max_units: int = 100,
    title: str | None = "First-layer weights",
    cmap: str = "gray",
) -> Figure:
    """Each neuron's incoming weights as an image (from :func:`aekit.inspect.weight_images`).

    The images are drawn on a fixed [0, 1] scale, as ``weight_images`` normalises them; at most
    ``max_units`` (the first ones) are drawn, titled with their unit number.
    """
    images = _as_images(weight_images, image_shape)[:max_units]
    return image_grid(
        images,
        ncols=ncols,
        titles=[f"{i}" for i in range(len(images))],
        title=title,
        cmap=cmap,
        vmin=0.0,
        vmax=1.0,
    )


def top_activating_grid(
    X,
    indices,
    image_shape,
    *,
    units=None,
    values=None,
    max_units: int = 10,
    title: str | None = "Most activating instances",
    cmap: str = "gray",
) -> Figure:
    """One row per neuron: the instances of ``X`` that activate it most.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_pixels)
    indices : array-like of shape (n_units, k)
        From :func:`aekit.inspect.top_activating`.
    image_shape : tuple of int
    units : sequence of int, optional
        Which rows of ``indices`` to draw; default the first ``max_units``.
    values : array-like of shape (n_units, k), optional
        Activations, written above each image.

    Returns
    -------
    matplotlib.figure.Figure
        ``len(units) * k`` axes.
    """
    images = _as_images(X, image_shape)
    indices = np.asarray(indices)
    units = list(range(min(max_units, len(indices)))) if units is None else [int(u) for u in units]
    k = indices.shape[1]
    vmin, vmax = float(images.min()), float(images.max())
    fig, axes = _image_figure(len(units), k, title)
    for row, unit in enumerate(units):
        for j in range(k):
            label = None if values is None else f"{float(np.asarray(values)[unit, j]):.2f}"
            _show(axes[row, j], images[indices[unit, j]], cmap, vmin, vmax, label)
        axes[row, 0].set_ylabel(f"unit {unit}", fontsize=8)
    return fig


def activation_maximization_grid(
    inputs,
    image_shape,
    units=None,
    *,
    activations=None,
    ncols: int = 10,
    title: str | None = "Activation maximisation",
    cmap: str = "gray",
) -> Figure:
    """Inputs found by :func:`aekit.inspect.maximize_activation`, titled with their unit.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per input.
    """
    units = range(len(inputs)) if units is None else units
    titles = [f"unit {u}" for u in units]
    if activations is not None:
        titles = [f"{t}\n{float(a):.2f}" for t, a in zip(titles, activations)]
    return image_grid(inputs, image_shape, ncols=ncols, titles=titles, title=title, cmap=cmap)


# -- latent maps ---------------------------------------------------------------------------
def _scatter(fig: Figure, ax, points, labels, title: str | None) -> None:
    points = np.asarray(points, dtype=np.float32)
    size = max(2.0, min(20.0, 4000.0 / max(len(points), 1)))
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=size, alpha=0.7)
    elif len(np.unique(labels)) <= _MAX_DISCRETE:
        labels = np.asarray(labels)
        classes = np.unique(labels)
        cmap = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
        for i, c in enumerate(classes):
            mask = labels == c
            ax.scatter(points[mask, 0], points[mask, 1], s=size, alpha=0.7, color=cmap(i), label=str(c))
        ax.legend(
            fontsize=7, markerscale=max(1.0, 16.0 / size), loc="best", ncol=2 if len(classes) > 10 else 1
        )
    else:  # a continuous quantity (e.g. an anomaly score): a colour bar instead of a legend
        sc = ax.scatter(
            points[:, 0], points[:, 1], s=size, c=np.asarray(labels, dtype=float), cmap="viridis", alpha=0.7
        )
        fig.colorbar(sc, ax=ax)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)


def latent_map(points, labels=None, title: str | None = "Latent space") -> Figure:
    """2-D projection of codes, coloured by label.

    Up to 20 distinct labels get a legend; more (a continuous quantity) get a colour bar, which
    is an extra axes.

    Parameters
    ----------
    points : array-like of shape (n, 2)
        From :func:`aekit.inspect.latent_projection`.
    labels : array-like of shape (n,), optional
        Index them like the points: ``labels[indices]``.
    """
    fig = Figure(figsize=(5.5, 5.0), layout="constrained")
    _scatter(fig, fig.add_subplot(), points, labels, title)
    return fig


def latent_maps(pca_points, tsne_points, labels=None, *, titles=("PCA", "t-SNE")) -> Figure:
    """PCA and t-SNE maps side by side (two panels; one when ``tsne_points`` is None)."""
    panels = [p for p in (pca_points, tsne_points) if p is not None]
    fig = Figure(figsize=(5.5 * len(panels), 5.0), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, points, title in zip(axes, panels, titles):
        _scatter(fig, ax, points, labels, title)
    return fig


# -- training curves and label budgets -----------------------------------------------------
_PART_KEYS = ("reconstruction", "l2", "sparsity", "kl", "contractive")


def _parts(record: dict) -> dict:
    parts = dict(record.get("parts", {}))
    parts.update({k: record[k] for k in _PART_KEYS if k in record})
    return parts


def _phase_series(history) -> dict[str, dict[str, list]]:
    """``{phase: {"loss": [(x, y), ...], "val_loss": [...], part: [...]}}``, x cumulative."""
    series: dict[str, dict[str, list]] = {}
    for x, record in enumerate(history, start=1):
        s = series.setdefault(str(record.get("phase", "train")), defaultdict(list))
        for key, value in {
            "loss": record["loss"],
            "val_loss": record.get("val_loss"),
            **_parts(record),
        }.items():
            if value is not None:
                s[key].append((x, float(value)))
    return series


def loss_curves(
    history, *, show_parts: bool = False, logy: bool = True, title: str | None = "Training loss"
) -> Figure:
    """Loss per epoch, one colour per phase: training solid, validation dashed.

    Parameters
    ----------
    history : list of dict
        ``history_`` of a fitted estimator: records with ``phase``, ``epoch``, ``loss`` and
        optionally ``val_loss`` and the loss's parts (``reconstruction``, ``l2``, ...), either
        as keys of the record or in a ``parts`` dict. The x axis counts epochs across phases.
    show_parts : bool, default=False
        Add a second panel with the parts of the training loss (dotted lines per phase).
    logy : bool, default=True
        Logarithmic y axis (when every value is positive).

    Returns
    -------
    matplotlib.figure.Figure
        One axes, two with ``show_parts``.
    """
    series = _phase_series(list(history))
    fig = Figure(figsize=(10.0 if show_parts else 6.0, 4.0), layout="constrained")
    axes = fig.subplots(1, 2 if show_parts else 1, squeeze=False)[0]
    cmap = matplotlib.colormaps["tab10"]
    for i, (phase, s) in enumerate(series.items()):
        for key, style in (("loss", "-"), ("val_loss", "--")):
            if s.get(key):
                x, y = zip(*s[key])
                axes[0].plot(
                    x,
                    y,
                    style,
                    color=cmap(i % 10),
                    marker=".",
                    label=phase if key == "loss" else f"{phase} (validation)",
                )
        if show_parts:
            for j, part in enumerate(k for k in s if k not in ("loss", "val_loss")):
                x, y = zip(*s[part])
                axes[1].plot(
                    x, y, ls=("-", ":", "-.", "--")[j % 4], color=cmap(i % 10), label=f"{phase}: {part}"
                )
    for ax, name in zip(axes, ("loss", "loss parts")):
        ax.set_xlabel("epoch (cumulative over phases)")
        ax.set_ylabel(name)
        if logy and all(y > 0 for line in ax.get_lines() for y in line.get_ydata()):
            ax.set_yscale("log")
        if ax.get_lines():
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def _aggregate(results, metric: str) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``{method: (n_labels, mean, std)}`` over seeds, n_labels ascending."""
    groups: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        groups[str(r["method"])][int(r["n_labels"])].append(float(r[metric]))
    out = {}
    for method, by_n in groups.items():
        ns = np.array(sorted(by_n))
        values = [np.asarray(by_n[n]) for n in ns]
        out[method] = (
            ns,
            np.array([v.mean() for v in values]),
            np.array([v.std(ddof=1) if len(v) > 1 else 0.0 for v in values]),
        )
    return out


def label_budget(results, *, metric: str | None = None, title: str | None = None) -> Figure:
    """Test metric against the number of labels, one line per method, mean ± std over seeds.

    Parameters
    ----------
    results : list of dict
        Records ``{"method", "n_labels", "seed", "error" or "accuracy"}``; extra keys ignored.
    metric : {"error", "accuracy"} or None, default=None
        Key to plot; None picks ``"accuracy"`` when present, else ``"error"``.
    title : str, optional
        Default: "<Metric> against label budget".

    Returns
    -------
    matplotlib.figure.Figure
        One axes; log x axis; error bars are the sample standard deviation over seeds.
    """
    results = list(results)
    if not results:
        raise ValueError("no results to plot")
    metric = metric or ("accuracy" if "accuracy" in results[0] else "error")
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for method, (ns, mean, std) in _aggregate(results, metric).items():
        ax.errorbar(ns, mean, yerr=std, marker="o", capsize=3, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("number of labelled examples")
    ax.set_ylabel(f"test {metric}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"{metric.capitalize()} against label budget")
    return fig


# -- output --------------------------------------------------------------------------------
def figure_to_png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (rendered with Agg), e.g. to inline as base64 in HTML."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def save_figure(fig: Figure, path, dpi: int = 100) -> None:
    """Write the figure to ``path`` atomically; the format follows the suffix (``.png``,
    ``.pdf``, ``.svg``)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    write_bytes_atomic(path, buffer.getvalue())

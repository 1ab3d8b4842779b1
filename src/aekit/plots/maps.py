"""Latent-space maps: 2-D projections of codes, coloured by label."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure

_MAX_DISCRETE = 20  # more distinct labels than this are drawn as a continuous colour scale


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
        ax.legend(fontsize=7, markerscale=max(1.0, 16.0 / size), loc="best", ncol=2 if len(classes) > 10 else 1)
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

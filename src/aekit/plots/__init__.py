"""Matplotlib figures from arrays; nothing here trains or imports torch.

Every function builds a :class:`matplotlib.figure.Figure` directly, without ``pyplot``: such a
figure needs no GUI backend and renders with Agg when saved, and the user's pyplot backend is
left alone. Show one in a notebook by returning it from a cell, or save it with
:func:`save_figure`; :func:`figure_to_png_bytes` gives the bytes to inline in an HTML report.
"""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.figure import Figure

from ..files import write_bytes_atomic
from .anomaly import error_histogram, error_maps, roc_curve
from .curves import label_budget, loss_curves
from .generative import activation_histogram, interpolation_strip, manifold_grid, sample_grid
from .images import (
    activation_maximization_grid,
    image_grid,
    reconstruction_grid,
    top_activating_grid,
    weight_grid,
)
from .maps import latent_map, latent_maps

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
    "error_maps",
    "error_histogram",
    "roc_curve",
    "activation_histogram",
    "sample_grid",
    "interpolation_strip",
    "manifold_grid",
    "figure_to_png_bytes",
    "save_figure",
]


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

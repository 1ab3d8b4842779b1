"""Figures of sparse and generative models: the coding units' mean activations against the
sparsity target, generated samples, an interpolation between two inputs and the decoded
manifold of a 2-D latent space. Arrays in, figures out."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from .images import _as_images, image_grid


def _range(images: np.ndarray) -> tuple[float | None, float | None]:
    """(0, 1) for images that lie in it (e.g. Bernoulli means), so faint ones look faint;
    else each image scaled on its own."""
    return (0.0, 1.0) if images.min() >= 0 and images.max() <= 1 else (None, None)


def activation_histogram(mean_activations, target: float | None = None, *, title: str | None = None) -> Figure:
    """Histogram of each coding unit's mean activation, with the sparsity target ``target``
    (rho) marked; a sparse autoencoder that meets its target piles its units up at rho.

    Parameters
    ----------
    mean_activations : array-like of shape (n_units,)
    target : float, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    values = np.asarray(mean_activations, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("no mean activations to draw")
    fig = Figure(figsize=(6.0, 3.2), layout="constrained")
    ax = fig.subplots()
    ax.hist(values, bins=min(50, max(10, values.size // 5)), color="tab:blue", alpha=0.8)
    ax.axvline(values.mean(), color="black", linestyle=":", label=f"mean of units {values.mean():.3g}")
    if target is not None:
        ax.axvline(target, color="tab:red", label=f"target rho = {target:g}")
    ax.set_xlabel("mean activation of a coding unit")
    ax.set_ylabel("units")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def tile(images: np.ndarray, ncols: int) -> np.ndarray:
    """Gray images (n, h, w) as one picture, ``ncols`` per row, with a blank (NaN: drawn white)
    row and column between tiles; cells after the last image stay blank."""
    n, h, w = images.shape
    nrows = -(-n // ncols)
    cells = np.full((nrows * ncols, h + 1, w + 1), np.nan)
    cells[:n, :h, :w] = images
    rows = cells.reshape(nrows, ncols, h + 1, w + 1).transpose(0, 2, 1, 3)  # (row, y, column, x)
    return rows.reshape(nrows * (h + 1), ncols * (w + 1))[:-1, :-1]


def _picture(canvas: np.ndarray, vmin, vmax, cmap: str, title: str | None, size: float) -> tuple[Figure, object]:
    fig = Figure(figsize=(size, size * canvas.shape[0] / canvas.shape[1]), layout="constrained")
    ax = fig.subplots()
    ax.imshow(canvas, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    if title:
        ax.set_title(title)
    return fig, ax


def sample_grid(samples, image_shape, *, title: str | None = None, cmap: str = "gray") -> Figure:
    """Generated images as one square-ish picture (one axes: quick to draw for many images)."""
    images = _as_images(samples, image_shape)
    if images.ndim != 3 or not len(images):
        raise ValueError(f"a sample grid needs gray images, got shape {images.shape}")
    vmin, vmax = _range(images)
    fig, ax = _picture(tile(images, math.ceil(math.sqrt(len(images)))), vmin, vmax, cmap, title, 6.0)
    ax.set_axis_off()
    return fig


def interpolation_strip(start, path, end, image_shape, *, title: str | None = None, cmap: str = "gray") -> Figure:
    """One row: the input ``start``, the decodings of ``path`` (codes from start's to end's),
    the input ``end``; each titled with its position along the path."""
    path = _as_images(path, image_shape)
    images = np.concatenate([_as_images([start], image_shape), path, _as_images([end], image_shape)])
    steps = np.linspace(0, 1, len(path))
    titles = ["input", *[f"{t:.2f}" for t in steps], "input"]
    vmin, vmax = _range(images)
    return image_grid(images, ncols=len(images), titles=titles, title=title, cmap=cmap, vmin=vmin, vmax=vmax)


def manifold_grid(decoded, image_shape, z_values, *, title: str | None = None, cmap: str = "gray") -> Figure:
    """The decodings of an n x n grid of 2-D codes as one picture (Kingma & Welling 2014,
    figure 4): row i, column j is the decoding of ``(z_values[j], z_values[n - 1 - i])``.

    Parameters
    ----------
    decoded : array-like of shape (n * n, n_pixels)
        Decodings in row-major order of that layout (top row first).
    image_shape : tuple of int
        (h, w) of one image.
    z_values : array-like of shape (n,)
        The code values along each axis, increasing.
    """
    z_values = np.asarray(z_values, dtype=np.float64)
    n = len(z_values)
    images = _as_images(decoded, image_shape)
    if images.ndim != 3 or len(images) != n * n:
        raise ValueError(f"a manifold of {n} x {n} codes needs {n * n} gray images, got shape {images.shape}")
    vmin, vmax = _range(images)
    fig, ax = _picture(tile(images, n), vmin, vmax, cmap, title, 6.0)
    h, w = images.shape[1] + 1, images.shape[2] + 1  # a tile and its gap
    labels = [f"{v:.1f}" for v in z_values]
    ax.set_xticks(np.arange(n) * w + (w - 2) / 2, labels, fontsize=6)
    ax.set_yticks(np.arange(n) * h + (h - 2) / 2, labels[::-1], fontsize=6)
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    return fig

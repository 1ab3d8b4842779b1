"""Image grids: inputs beside reconstructions, weights as images, most-activating instances and
activation maximisation. Arrays in, figures out."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

_CELL = 1.0  # inches per image in a grid


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
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.02, top=0.9 if title else 0.98, wspace=0.05, hspace=0.3)
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
        raise ValueError(f"originals {originals.shape} and reconstructions {reconstructions.shape} differ in shape")
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


def top_activating_grid(X, indices, image_shape, *, units=None, values=None, max_units: int = 10,
                        title: str | None = "Most activating instances", cmap: str = "gray") -> Figure:  # fmt: skip
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


def activation_maximization_grid(inputs, image_shape, units=None, *, activations=None, ncols: int = 10,
                                 title: str | None = "Activation maximisation", cmap="gray") -> Figure:  # fmt: skip
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

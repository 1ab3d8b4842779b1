"""The report's sections on sparse and generative models: the coding units' mean activations
against the sparsity target, samples from a variational autoencoder, an interpolation between
two test images, and the decoded manifold of a 2-D latent space.

Like the rest of the report, nothing here trains: it runs the fitted estimator's
``transform``, ``inverse_transform`` and ``sample``.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from . import plots
from .report import ReportOptions, Section


def _png(fig) -> bytes:
    return plots.figure_to_png_bytes(fig, dpi=90)


def interpolation(estimator, start, end, n_steps: int = 9) -> np.ndarray:
    """Decodings of ``n_steps`` codes evenly spaced on the line from ``start``'s code to
    ``end``'s (both ends included), shape (n_steps, n_features)."""
    codes = estimator.transform(np.stack([start, end]))
    t = np.linspace(0.0, 1.0, n_steps, dtype=np.float32)[:, None]
    return estimator.inverse_transform((1 - t) * codes[0] + t * codes[1])


def latent_grid(n: int = 15, edge: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """An n x n grid of 2-D codes at the prior's quantiles of probabilities evenly spaced in
    [edge, 1 - edge] (Kingma & Welling 2014, figure 4), so it covers where the prior puts its
    mass. Returns (codes of shape (n * n, 2), top row first as :func:`aekit.plots.manifold_grid`
    lays them out; the n values along each axis)."""
    z = np.array([NormalDist().inv_cdf(p) for p in np.linspace(edge, 1 - edge, n)], dtype=np.float32)
    codes = np.array([(z[j], z[n - 1 - i]) for i in range(n) for j in range(n)], dtype=np.float32)
    return codes, z


def sparsity_summary(mean_activations: np.ndarray, target: float) -> dict:
    """How far the units' mean activations are from the target: their mean, and the mean over
    units of |mean activation - target| / target."""
    return {
        "mean": float(np.mean(mean_activations)),
        "mean_relative_deviation": float(np.mean(np.abs(mean_activations - target)) / target),
    }


def generative_sections(estimator, data, options: ReportOptions, progress) -> list[Section]:
    """The sections that apply to ``estimator``: the activation histogram for a sparse
    autoencoder; samples and the manifold for a variational autoencoder (the manifold for a 2-D
    latent space only); the interpolation for any autoencoder of images."""
    X = data.X_test if len(data.X_test) else data.X_train
    sections = []
    if getattr(estimator, "sparsity_target", None) is not None or getattr(estimator, "activity_l1", 0):
        sections.append(_activation_section(estimator, X))
    if data.image_shape is not None and len(X) > 1:
        progress.set_description("samples and interpolation")
        if hasattr(estimator, "sample"):
            sections.append(_samples_section(estimator, data.image_shape, options))
        sections.append(
            _interpolation_section(estimator, X, data.y_test if len(data.X_test) else None, data.image_shape)
        )
        if hasattr(estimator, "sample") and estimator.module_.n_codes == 2:
            sections.append(_manifold_section(estimator, data.image_shape))
    progress.update()
    return sections


def _activation_section(estimator, X) -> Section:
    means = estimator.transform(X).mean(0)
    target = estimator.sparsity_target
    caption = "Each coding unit's mean activation over the test rows"
    if target is not None:
        summary = sparsity_summary(means, target)
        caption += (
            f", against the target rho = {target:g}: units piled up at rho meet it (mean of units "
            f"{summary['mean']:.4g}; mean |activation - rho| / rho = {summary['mean_relative_deviation']:.1%})."
        )
    else:
        caption += ": the L1 penalty pushes most of them towards 0."
    return Section("Sparsity of the codes", caption, _png(plots.activation_histogram(means, target)))


def _samples_section(estimator, image_shape, options: ReportOptions) -> Section:
    samples = estimator.sample(64, random_state=options.random_state)
    return Section(
        "Generated samples",
        "Decodings of 64 codes drawn from the prior N(0, I): new images the model has never seen. "
        "Blurred or mixed shapes mean the posterior does not cover the prior well.",
        _png(plots.sample_grid(samples, image_shape)),
    )


def _interpolation_section(estimator, X, y, image_shape) -> Section:
    """Between the first test image and the first of another label (or the second image)."""
    end = 1 if y is None or not np.any(y != y[0]) else int(np.flatnonzero(y != y[0])[0])
    path = interpolation(estimator, X[0], X[end])
    return Section(
        "Interpolation",
        "Two test images at the ends; between them, the decodings of codes on the straight line "
        "from one's code to the other's. A smooth morph means the latent space is continuous "
        "there; a plain autoencoder often passes through blurs that are no digit.",
        _png(plots.interpolation_strip(X[0], path, X[end], image_shape)),
    )


def _manifold_section(estimator, image_shape) -> Section:
    codes, z = latent_grid()
    return Section(
        "Latent manifold",
        "The decodings of a grid of 2-D codes spaced by the prior's quantiles: how the model "
        "lays the data out over its latent plane.",
        _png(plots.manifold_grid(estimator.inverse_transform(codes), image_shape, z)),
    )

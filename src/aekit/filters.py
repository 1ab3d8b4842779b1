"""Weights as images: a dense layer's incoming weights, a convolution's kernels, and how either is
scaled for display. Used by :func:`aekit.inspect.weight_images`."""

from __future__ import annotations

import numpy as np
import torch

from .nn import ConvAutoencoder, DenseEncoder


def normalize_rows(W: np.ndarray, normalize: str | None) -> np.ndarray:
    """Each row of ``W`` scaled for display: ``"minmax"`` to [0, 1] (a constant row -> 0.5),
    ``"symmetric"`` by ``0.5 + 0.5 * w / max|w|`` (zero is mid grey), None as it is."""
    if normalize in (None, "none"):
        return W
    if normalize == "minmax":  # each image stretched to [0, 1]: the most contrast
        lo, hi = W.min(axis=1, keepdims=True), W.max(axis=1, keepdims=True)
        span = np.where(hi > lo, hi - lo, 1.0)
        return np.where(hi > lo, (W - lo) / span, 0.5)
    if normalize == "symmetric":  # 0 -> 0.5 (mid grey), so the sign of a weight stays readable
        scale = np.abs(W).max(axis=1, keepdims=True)
        return 0.5 + 0.5 * W / np.where(scale > 0, scale, 1.0)
    raise ValueError(f"normalize must be 'minmax', 'symmetric' or None, got {normalize!r}")


@torch.no_grad()
def kernel_images(module: ConvAutoencoder, layer: int = 1, normalize: str | None = "minmax") -> np.ndarray:
    """The kernels of the first convolution as images, each normalised on its own.

    Returns
    -------
    ndarray, float32
        ``(n_kernels, k, k)`` for one input channel; ``(n_kernels, k, k, 3)`` (colour images)
        for three; otherwise one image per kernel and input channel, ``(n_kernels * channels,
        k, k)``.
    """
    if layer != 1:
        raise ValueError(
            f"layer {layer} of a convolutional model has no image-sized weights; weight images are "
            "the first convolution's kernels (layer=1): use maximize_activation for deeper layers"
        )
    conv = module.encoder[0][1]  # after the Unflatten that makes images of the rows
    W = conv.weight.detach().double().cpu().numpy()  # (n_kernels, channels, k, k)
    n, channels, k, _ = W.shape
    if channels == 3:
        flat = normalize_rows(W.reshape(n, -1), normalize).reshape(W.shape)
        return flat.transpose(0, 2, 3, 1).astype(np.float32)  # channels last, as images are drawn
    return normalize_rows(W.reshape(n * channels, k * k), normalize).reshape(-1, k, k).astype(np.float32)


@torch.no_grad()
def dense_weight_images(module, image_shape: tuple[int, ...], layer: int, normalize: str | None) -> np.ndarray:
    """A dense stack's weights into layer ``layer``, projected to the input space through the
    lower layers (``W_layer @ ... @ W_1``, a linear view), as ``(n_units, *image_shape)``."""
    if not isinstance(getattr(module, "encoder", None), DenseEncoder):  # stacked or variational
        raise TypeError(f"a {type(module).__name__} has no weights that are images of its inputs")
    n_inputs = module.encoder.layers[0].in_features
    if int(np.prod(image_shape)) != n_inputs:
        raise ValueError(f"image_shape {image_shape} does not hold the model's {n_inputs} inputs")
    W = module.encoder.layers[0].weight  # (n_1, n_inputs)
    for k in range(1, layer):
        W = module.encoder.layers[k].weight @ W  # (n_{k+1}, n_k) @ (n_k, n_inputs) -> (n_{k+1}, n_inputs)
    W = W.detach().double().cpu().numpy()
    return normalize_rows(W, normalize).astype(np.float32).reshape(len(W), *image_shape)

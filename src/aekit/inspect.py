"""Looking inside a trained autoencoder: arrays in, arrays out.

Every function that needs the network accepts either a fitted
:class:`~aekit.AutoencoderTransformer` (its ``module_`` is used) or its module directly: a
:class:`~aekit.nn.StackedAutoencoder`, a :class:`~aekit.nn.ConvAutoencoder` (whose units in a
convolution layer are its channels, each activated by its mean over the feature map), or a
:class:`~aekit.nn.CustomAutoencoder` (one layer: the code). Forward passes run on the module's
own device, in batches, without gradients (activation maximisation differentiates with respect
to the input only); results come back as numpy arrays. Nothing here trains or changes the model.
Plotting lives in :mod:`aekit.plots`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .filters import dense_weight_images, kernel_images
from .nn import ConvAutoencoder

logger = logging.getLogger(__name__)

__all__ = [
    "activations",
    "n_units",
    "weight_images",
    "top_activating",
    "maximize_activation",
    "linear_probe",
    "reconstruction_error",
    "latent_projection",
]


# -- helpers -------------------------------------------------------------------------------
def _module(model) -> nn.Module:
    """The autoencoder module behind ``model`` (a fitted estimator or the module itself)."""
    if isinstance(model, nn.Module):
        module = model
    elif hasattr(model, "fit"):
        check_is_fitted(model)  # NotFittedError for an estimator that was never fitted
        module = getattr(model, "module_", None)
    else:
        module = None
    if not (hasattr(module, "encoder") and hasattr(module, "encode")):
        raise TypeError(f"expected a fitted AutoencoderTransformer or its module, got {type(model).__name__}")
    return module


def _check_layer(module: nn.Module, layer: int) -> int:
    depth = module.depth
    if not 1 <= int(layer) <= depth:
        raise ValueError(f"layer must be in 1..{depth} (1-based encoder layer), got {layer}")
    return int(layer)


def _check_X(module: nn.Module, X) -> np.ndarray:
    X = check_array(X.reshape(len(X), -1) if getattr(X, "ndim", 2) > 2 else X, dtype=np.float32)
    n_inputs = module.config.n_inputs
    if X.shape[1] != n_inputs:
        raise ValueError(f"X has {X.shape[1]} features, but the model expects {n_inputs}")
    return X


def _device_dtype(module: nn.Module) -> tuple[torch.device, torch.dtype]:
    weight = next(module.parameters())
    return weight.device, weight.dtype


def _unit_activations(module: nn.Module, x: torch.Tensor, layer: int) -> torch.Tensor:
    """``(B, n_units)``: the outputs of encoder layer ``layer``; a convolution's units are its
    channels, each activated by the mean of its feature map."""
    h = module.encode(x, layer)
    return h.mean(dim=(2, 3)) if h.dim() == 4 else h  # (B, C, H, W) -> (B, C)


@torch.no_grad()
def n_units(model, layer: int) -> int:
    """How many units encoder layer ``layer`` has (channels for a convolution)."""
    module = _module(model)
    _, x = next(_batches(module, np.zeros((1, module.config.n_inputs), np.float32), 1))
    with _evaluating(module):
        return _unit_activations(module, x, _check_layer(module, layer)).shape[1]


@contextmanager
def _evaluating(module: nn.Module):
    """Eval mode for the duration, then the module's previous mode again."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def _batches(module: nn.Module, X: np.ndarray, batch_size: int) -> Iterator[tuple[int, torch.Tensor]]:
    """``(start, rows as a tensor on the module's device)`` for consecutive slices of ``X``."""
    device, dtype = _device_dtype(module)
    for start in range(0, len(X), int(batch_size)):
        yield start, torch.as_tensor(X[start : start + batch_size], device=device, dtype=dtype)


# -- activations and weights ---------------------------------------------------------------
@torch.no_grad()
def activations(model, X, layer: int | None = None, *, batch_size: int = 4096) -> np.ndarray:
    """Output of encoder layer ``layer`` (1-based; default: the coding layer) for every row of X.

    Returns
    -------
    ndarray of shape (n_samples, n_units), float32
        (n_samples, channels, height, width) for a convolution layer.
    """
    module = _module(model)
    layer = _check_layer(module, module.depth if layer is None else layer)
    X = _check_X(module, X)
    with _evaluating(module):
        out = [module.encode(xb, layer).float().cpu() for _, xb in _batches(module, X, batch_size)]
    return torch.cat(out).numpy()


@torch.no_grad()
def weight_images(model, image_shape, layer: int = 1, *, normalize: str | None = "minmax") -> np.ndarray:
    """Each neuron's incoming weights as an image; for a convolutional model, the first
    convolution's kernels (see :func:`aekit.filters.kernel_images`; ``image_shape`` is then unused).

    Parameters
    ----------
    model : AutoencoderTransformer, StackedAutoencoder or ConvAutoencoder
    image_shape : tuple of int
        Shape of one input image, e.g. ``(28, 28)``; its product must be the number of inputs.
    layer : int, default=1
        Encoder layer (1-based). For ``layer > 1`` the weights are projected to the input space
        through the lower layers, ``W_layer @ ... @ W_1``: a linear view that ignores the
        activations and biases in between, so read it as an approximation. A convolutional
        model has kernel images for layer 1 only.
    normalize : {"minmax", "symmetric", None}, default="minmax"
        ``"minmax"`` maps each image to [0, 1] on its own (min -> 0, max -> 1; a constant image
        -> 0.5). ``"symmetric"`` maps each image by ``0.5 + 0.5 * w / max|w|``, so zero weights
        are mid grey and the sign is visible. ``None`` returns the raw weights.

    Returns
    -------
    ndarray of shape (n_units, *image_shape), float32
    """
    module = _module(model)
    layer = _check_layer(module, layer)
    if isinstance(module, ConvAutoencoder):
        return kernel_images(module, layer, normalize)
    return dense_weight_images(module, tuple(int(s) for s in np.atleast_1d(image_shape)), layer, normalize)


@torch.no_grad()
def top_activating(model, X, layer: int, k: int = 9, *, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``X`` that most activate each neuron of encoder layer ``layer``.

    ``X`` is passed through in batches; after each batch the best ``k`` so far are merged with
    the batch (one ``torch.topk`` over their concatenation), so only one batch's activations of
    one layer are alive at a time. Ties are broken arbitrarily.

    Parameters
    ----------
    model : AutoencoderTransformer or its module
    X : array-like of shape (n_samples, n_inputs)
    layer : int
        Encoder layer, 1-based (``layer = depth`` is the coding layer).
    k : int, default=9
        Instances per neuron, ``1 <= k <= n_samples``.
    batch_size : int, default=1024

    Returns
    -------
    indices : ndarray of shape (n_units, k), int64
        Row indices into ``X``, the most activating first.
    values : ndarray of shape (n_units, k), float32
        The matching activations, sorted descending along each row.
    """
    module = _module(model)
    layer = _check_layer(module, layer)
    X = _check_X(module, X)
    if not 1 <= k <= len(X):
        raise ValueError(f"k must be in 1..n_samples={len(X)}, got {k}")
    best_vals = best_idx = None
    with _evaluating(module):
        for start, xb in _batches(module, X, batch_size):
            vals = _unit_activations(module, xb, layer).T  # (B, n_units) -> (n_units, B)
            idx = torch.arange(start, start + len(xb), device=vals.device).expand_as(vals)
            if best_vals is not None:  # merge the running best with this batch
                vals, idx = torch.cat([best_vals, vals], 1), torch.cat([best_idx, idx], 1)
            best_vals, pos = vals.topk(min(k, vals.shape[1]), dim=1)  # sorted, descending
            best_idx = idx.gather(1, pos)
    return best_idx.cpu().numpy().astype(np.int64), best_vals.float().cpu().numpy()


# -- activation maximisation ---------------------------------------------------------------
def _random_start(n: int, n_inputs: int, input_range, random_state, module) -> torch.Tensor:
    lo, hi = (0.0, 1.0) if input_range is None else input_range
    x0 = check_random_state(random_state).uniform(lo, hi, size=(n, n_inputs))
    device, dtype = _device_dtype(module)
    return torch.as_tensor(x0, device=device, dtype=dtype)  # drawn on the host: same on any device


def _check_units(units, n_units: int) -> np.ndarray:
    units = np.arange(n_units) if units is None else np.asarray(units, dtype=np.int64).reshape(-1)
    if units.size == 0 or units.min() < 0 or units.max() >= n_units:
        raise ValueError(f"units must be non-empty indices in 0..{n_units - 1}")
    return units


def maximize_activation(
    model,
    layer: int,
    units=None,
    *,
    steps: int = 200,
    lr: float = 0.05,
    l2: float = 1e-3,
    input_range=(0.0, 1.0),
    random_state=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs that strongly activate chosen neurons, by gradient ascent on the input.

    Each requested unit gets its own input row, started uniformly at random in
    ``input_range``; all rows are optimised together as one batch (one backward per step), to
    maximise ``sum_i activation[i, units[i]] - l2 * ||x_i||^2``. Rows do not interact: the
    objective is a sum of per-row terms. The step is Adam's on the input, followed by clamping
    into ``input_range`` (projected gradient ascent). Only the input receives gradients
    (``torch.autograd.grad`` with respect to it): the model's parameters, their ``.grad`` and
    the module's train/eval mode are left as they were.

    Parameters
    ----------
    model : AutoencoderTransformer or its module
    layer : int
        Encoder layer, 1-based.
    units : array-like of int or None, default=None
        Units of that layer (0-based); None means all of them, in order.
    steps : int, default=200
    lr : float, default=0.05
        Adam learning rate on the input.
    l2 : float, default=1e-3
        Weight of the squared L2 norm of the input, which keeps irrelevant inputs low.
    input_range : (float, float) or None, default=(0.0, 1.0)
        Box the input is kept in; None: unconstrained (started uniformly in [0, 1]).
    random_state : int, RandomState or None
        Seeds the random start.

    Returns
    -------
    inputs : ndarray of shape (n_requested_units, n_inputs), float32
    activations : ndarray of shape (n_requested_units,), float32
        Activation of ``units[i]`` at ``inputs[i]`` after the last step.
    """
    module = _module(model)
    layer = _check_layer(module, layer)
    units = _check_units(units, n_units(module, layer))
    x = _random_start(len(units), module.config.n_inputs, input_range, random_state, module)
    x.requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=lr)
    rows = torch.arange(len(units), device=x.device)
    cols = torch.as_tensor(units, device=x.device)
    with _evaluating(module):
        for _ in range(int(steps)):
            objective = _unit_activations(module, x, layer)[rows, cols].sum() - l2 * x.square().sum()
            x.grad = torch.autograd.grad(-objective, x)[0]  # input only: parameters get nothing
            optimizer.step()
            if input_range is not None:
                with torch.no_grad():
                    x.clamp_(*input_range)
        with torch.no_grad():
            final = _unit_activations(module, x, layer)[rows, cols]
    return x.detach().float().cpu().numpy(), final.float().cpu().numpy()


# -- feature quality, anomaly scores, latent maps -----------------------------------------
def _probe(random_state: int, max_iter: int, *steps):
    return make_pipeline(*steps, StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=random_state))


def linear_probe(
    codes_train,
    y_train,
    codes_test,
    y_test,
    *,
    X_train=None,
    X_test=None,
    max_iter: int = 1000,
    random_state: int = 0,
) -> dict:
    """Feature quality as the test accuracy of a linear classifier.

    A logistic regression on the standardised codes; when the raw inputs are given too, the
    same probe on the raw inputs and on as many principal components of them as the codes have
    features (the linear baseline the codes should beat).

    Parameters
    ----------
    codes_train, codes_test : array-like of shape (n, n_codes)
    y_train, y_test : array-like of shape (n,)
    X_train, X_test : array-like of shape (n, n_inputs), optional
        Both or neither.
    max_iter : int, default=1000
    random_state : int, default=0

    Returns
    -------
    dict
        ``{"codes": acc}``, plus ``"raw"``, ``"pca"`` and ``"n_components"`` when X is given.
        Accuracies are floats in [0, 1].
    """
    codes_train, codes_test = check_array(codes_train), check_array(codes_test)
    result = {"codes": _fit_score(_probe(random_state, max_iter), codes_train, y_train, codes_test, y_test)}
    if (X_train is None) != (X_test is None):
        raise ValueError("give both X_train and X_test, or neither")
    if X_train is not None:
        X_train, X_test = check_array(X_train), check_array(X_test)
        m = min(codes_train.shape[1], *X_train.shape)
        pca = PCA(n_components=m, random_state=random_state)
        result["raw"] = _fit_score(_probe(random_state, max_iter), X_train, y_train, X_test, y_test)
        result["pca"] = _fit_score(_probe(random_state, max_iter, pca), X_train, y_train, X_test, y_test)
        result["n_components"] = int(m)
    return result


def _fit_score(estimator, X_train, y_train, X_test, y_test) -> float:
    return float(estimator.fit(X_train, y_train).score(X_test, y_test))


@torch.no_grad()
def reconstruction_error(model, X, *, batch_size: int = 4096) -> np.ndarray:
    """Per-sample mean squared reconstruction error, an anomaly score.

    Returns
    -------
    ndarray of shape (n_samples,), float32
    """
    module = _module(model)
    X = _check_X(module, X)
    with _evaluating(module):
        errors = [(module(xb) - xb).float().square().mean(dim=1).cpu() for _, xb in _batches(module, X, batch_size)]
    return torch.cat(errors).numpy()


def latent_projection(
    codes, method: str = "pca", *, random_state: int = 0, max_points: int = 2000, perplexity: float = 30.0
) -> tuple[np.ndarray, np.ndarray]:
    """2-D projection of codes for a latent-space map.

    When there are more than ``max_points`` rows, a seeded random subset of that size is
    projected (the same ``random_state`` and ``max_points`` give the same subset for both
    methods, so PCA and t-SNE maps show the same points). Colour by ``labels[indices]``.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_codes), n_codes >= 2
    method : {"pca", "tsne"}, default="pca"
    random_state : int, default=0
    max_points : int, default=2000
    perplexity : float, default=30.0
        t-SNE only; lowered to ``(n_points - 1) / 3`` for small subsets.

    Returns
    -------
    points : ndarray of shape (n_points, 2), float32
    indices : ndarray of shape (n_points,), int64
        Sorted row indices into ``codes`` of the projected points.
    """
    codes = check_array(codes, dtype=np.float64, ensure_min_samples=3)
    if codes.shape[1] < 2:
        raise ValueError(f"a 2-D projection needs codes with at least 2 features, got {codes.shape[1]}")
    indices = np.arange(len(codes))
    if len(codes) > max_points:
        rng = np.random.default_rng(random_state)
        indices = np.sort(rng.choice(len(codes), size=int(max_points), replace=False))
    subset = codes[indices]
    if method == "pca":
        points = PCA(n_components=2, random_state=random_state).fit_transform(subset)
    elif method == "tsne":
        from sklearn.manifold import TSNE  # imported here: slow to import, rarely needed

        perplexity = min(float(perplexity), (len(subset) - 1) / 3)
        points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=random_state).fit_transform(
            subset
        )
    else:
        raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")
    return points.astype(np.float32), indices.astype(np.int64)

"""Loss terms as pure functions of tensors."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F

RECONSTRUCTION_LOSSES = ("mse", "bce")


def reconstruction(output: torch.Tensor, target: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Mean reconstruction loss over all elements.

    Parameters
    ----------
    output : Tensor
        The decoder's output: the reconstruction for ``"mse"``, its logits (before the
        sigmoid) for ``"bce"``, which is the numerically stable form of cross-entropy.
    target : Tensor
        The clean input.
    kind : {"mse", "bce"}
    """
    if kind == "mse":
        return F.mse_loss(output, target)  # tf.reduce_mean(tf.square(outputs - X)), Géron ch. 15
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(output, target)
    raise ValueError(f"unknown reconstruction loss {kind!r}; choose one of {RECONSTRUCTION_LOSSES}")


def l2_penalty(weights: Iterable[torch.Tensor]) -> torch.Tensor:
    """``sum(||W||^2) / 2`` over the given weights: TensorFlow's ``l2_loss``, as in the book.

    Pass only weights that are parameters: with tied weights the decoder's are transposes of
    the encoder's and must not be counted twice, and biases are never regularised.
    """
    weights = list(weights)
    if not weights:
        raise ValueError("l2_penalty needs at least one weight")
    return 0.5 * sum(w.pow(2).sum() for w in weights)


# -- penalties on the codes ------------------------------------------------------------------
def kl_sparsity(codes: torch.Tensor, target: float, eps: float = 1e-6) -> torch.Tensor:
    """Sum over coding units of KL(rho || rho_hat_j), rho_hat_j the unit's mean activation over
    the batch (Ng 2011, "Sparse autoencoder", CS294A lecture notes, section 3):

    ``rho log(rho / rho_hat) + (1 - rho) log((1 - rho) / (1 - rho_hat))``.

    ``codes`` must lie in (0, 1) (sigmoid units); ``rho_hat`` is clamped to [eps, 1 - eps] so a
    saturated unit gives a large but finite penalty.
    """
    rho_hat = codes.mean(0).clamp(eps, 1 - eps)  # (B, n_codes) -> (n_codes,)
    return (target * torch.log(target / rho_hat) + (1 - target) * torch.log((1 - target) / (1 - rho_hat))).sum()


def l1_activity(codes: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``sum_j |h_j|``: the L1 activity penalty that makes few units active
    per row (Goodfellow et al. 2016, "Deep Learning", section 14.2.1), with no target rate."""
    return codes.abs().sum(1).mean()


def contractive_dense(codes: torch.Tensor, weight: torch.Tensor, derivative: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ||dh/dx||_F^2 for one dense layer ``h = s(W x + b)``, in closed form
    (Rifai et al. 2011, "Contractive auto-encoders", eq. 4 for the sigmoid):

    ``sum_j s'(z_j)^2 sum_i W_ji^2``, since row j of the Jacobian is ``s'(z_j) W_j``.

    ``derivative`` is s'(z) for each row and unit, shape (B, n_codes) like ``codes``;
    ``weight`` is (n_codes, n_inputs).
    """
    return (derivative.square() @ weight.square().sum(1)).mean()


def jacobian_frobenius_estimate(
    inputs: torch.Tensor, codes: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Unbiased one-projection estimate of the mean over rows of ||dh/dx||_F^2, for any encoder.

    ``E_u ||J^T u||^2 = trace(J J^T) = ||J||_F^2`` for u ~ N(0, I) (Hutchinson 1990): one
    vector-Jacobian product per step (a backward pass that stays in the graph) instead of one
    per coding unit. ``codes`` must have been computed from ``inputs`` with ``inputs``
    requiring gradients.
    """
    u = torch.randn(codes.shape, generator=generator, device=codes.device, dtype=codes.dtype)
    (vjp,) = torch.autograd.grad(codes, inputs, grad_outputs=u, create_graph=True)  # (B, n_inputs)
    return vjp.square().sum(1).mean()


# -- the variational autoencoder's terms (Kingma & Welling 2014) ------------------------------
LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, diag(exp(log_var))) || N(0, I)) of each row, summed over the last dimension
    (Kingma & Welling 2014, "Auto-Encoding Variational Bayes", appendix B)."""
    return 0.5 * (mean.square() + log_var.exp() - 1 - log_var).sum(-1)


def gaussian_log_density(z: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, diag(exp(log_var))), summed over the last dimension (broadcasting)."""
    return -0.5 * (LOG_2PI + log_var + (z - mean).square() * torch.exp(-log_var)).sum(-1)


def standard_normal_log_density(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dimension: the VAE's prior."""
    return -0.5 * (LOG_2PI + z.square()).sum(-1)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``sum_i x_i log p_i + (1 - x_i) log(1 - p_i)`` with p = sigmoid(logits), in the stable
    logits form; summed over the last dimension. ``x`` broadcasts to ``logits``."""
    x = x.expand_as(logits)
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def gaussian_log_likelihood(mean: torch.Tensor, log_scale: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``sum_i log N(x_i; mean_i, exp(log_scale_i)^2)``, summed over the last dimension."""
    return -(0.5 * LOG_2PI + log_scale + 0.5 * ((x - mean) * torch.exp(-log_scale)).square()).sum(-1)

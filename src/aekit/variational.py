"""A variational autoencoder's probabilities: the ELBO it is trained on and the
importance-sampled log-likelihood it is judged by. Every quantity is in nats per row.

The module is a :class:`~aekit.nn.DenseVAE`; the pure terms (Gaussian KL and
densities, the Bernoulli and Gaussian likelihoods) are in :mod:`aekit.losses`.
"""

from __future__ import annotations

import math

import torch

from . import losses
from .nn.variational import DenseVAE, sample_posterior

# how many decoder outputs (rows x samples x features) one importance-sampling step holds
_ELEMENTS_PER_STEP = 2**22


def log_likelihood_given(module: DenseVAE, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """log p(x | z) per row under the decoder. ``z`` is (B, L) or (B, k, L); ``x`` is (B, D),
    broadcast over the k samples. Returns (B,) or (B, k)."""
    if z.dim() == 3:
        x = x.unsqueeze(1)  # (B, D) -> (B, 1, D)
    if module.config.likelihood == "bernoulli":
        return losses.bernoulli_log_likelihood(module.decode(z, logits=True), x)
    return losses.gaussian_log_likelihood(module.decode(z), module.output_log_scale(), x)


def elbo_parts(
    module: DenseVAE, x: torch.Tensor, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(-log p(x | z) for one z ~ q(z | x) by reparameterisation, KL(q(z | x) || p(z))), each of
    shape (B,): the ELBO is ``-(first + second)`` (Kingma & Welling 2014, eq. 10)."""
    mean, log_var = module.posterior(x)
    z = sample_posterior(mean, log_var, generator)
    return -log_likelihood_given(module, x, z), losses.gaussian_kl(mean, log_var)


class KLWeight:
    """The weight of the KL term: ``beta``, reached linearly from 0 over ``warmup_epochs``
    epochs when that is > 0 (KL annealing: Bowman et al. 2016; Sønderby et al. 2016). Called
    with each epoch's record, as an engine callback, it sets the next epoch's weight."""

    def __init__(self, beta: float, warmup_epochs: int):
        self.beta, self.warmup_epochs = beta, warmup_epochs
        self.value = 0.0 if warmup_epochs else beta

    def __call__(self, record: dict) -> None:
        if self.warmup_epochs:
            self.value = self.beta * min(1.0, record["epoch"] / self.warmup_epochs)


def elbo_objective(module: DenseVAE, kl_weight: KLWeight, generator: torch.Generator | None):
    """``loss_fn(batch) -> (loss, parts)`` for :func:`aekit.engine.fit`: the mean over rows of
    ``-log p(x | z) + w * KL``, with parts ``reconstruction`` (-log p(x | z)) and ``kl``."""

    def loss_fn(x: torch.Tensor):
        nll, kl = (part.mean() for part in elbo_parts(module, x, generator))
        total = nll + kl_weight.value * kl
        return total, {"loss": total, "reconstruction": nll, "kl": kl}

    return loss_fn


@torch.no_grad()
def importance_log_likelihood(
    module: DenseVAE, x: torch.Tensor, n_importance: int, generator: torch.Generator | None
) -> torch.Tensor:
    """Each row's estimate of log p(x) from ``n_importance`` samples of its posterior (Burda et
    al. 2016, "Importance Weighted Autoencoders", eq. 8):

    ``log (1/k) sum_i p(x | z_i) p(z_i) / q(z_i | x)``, z_i ~ q(z | x),

    a lower bound in expectation that tightens as k grows (k = 1 is the ELBO). The samples are
    drawn in steps that hold at most ``2**22`` decoder outputs; the average is a logsumexp in
    float64, so weights of -100 nats and below neither underflow nor lose digits. Returns (B,)
    float64.
    """
    mean, log_var = module.posterior(x)  # (B, L) each
    step = max(1, _ELEMENTS_PER_STEP // max(1, x.shape[0] * x.shape[1]))
    log_weights = []
    for start in range(0, n_importance, step):
        z = sample_posterior(mean, log_var, generator, min(step, n_importance - start))  # (B, k, L)
        log_q = losses.gaussian_log_density(z, mean.unsqueeze(1), log_var.unsqueeze(1))
        log_p = log_likelihood_given(module, x, z) + losses.standard_normal_log_density(z)
        log_weights.append((log_p - log_q).double())  # (B, k)
    return torch.logsumexp(torch.cat(log_weights, 1), 1) - math.log(n_importance)

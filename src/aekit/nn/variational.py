"""DenseVAE: a Gaussian latent between a dense encoder and its mirror (Kingma &
Welling 2014, "Auto-Encoding Variational Bayes").

The encoder (a :class:`~aekit.nn.DenseEncoder`) maps ``x`` to the mean and log-variance of a
diagonal Gaussian posterior q(z | x); the decoder, the encoder's hidden widths in reverse order,
maps ``z`` to the parameters of p(x | z): logits of independent Bernoullis, or the means of
Gaussians with one learned scale per feature (Rybkin et al. 2021, "calibrated decoders"). The
probabilities themselves (ELBO, importance sampling) live in :mod:`aekit.variational`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..params import Interval, Options
from .config import DictConfig
from .encoder import DenseEncoder, EncoderLayers, he_normal_

LIKELIHOODS = ("bernoulli", "gaussian")
# a Gaussian decoder's log-scale never goes below this (scale 0.0025): a feature that is
# constant in the data (MNIST's border pixels) would otherwise drive its density to infinity
MIN_LOG_SCALE = -6.0


@dataclass
class VAEConfig(EncoderLayers, DictConfig):
    """Architecture of a :class:`DenseVAE`: ``n_inputs``, the encoder's
    ``hidden_sizes`` (bottom first), ``latent_dim``, the hidden layers' ``activation`` and the
    decoder's ``likelihood`` ("bernoulli" or "gaussian")."""

    n_inputs: int
    hidden_sizes: tuple[int, ...]
    latent_dim: int
    activation: str
    likelihood: str

    code_activation = None  # not a field: every hidden layer uses `activation`

    def __post_init__(self):
        self._validate_encoder()
        Interval(int, 1).check("latent_dim", self.latent_dim)
        Options(*LIKELIHOODS).check("likelihood", self.likelihood)


@dataclass
class _DecoderLayers(EncoderLayers):
    """The decoder as a stack of dense layers: latent -> hidden widths reversed -> inputs."""

    n_inputs: int
    hidden_sizes: tuple[int, ...]
    activation: str
    code_activation: str  # of the output layer: "linear", it gives logits or means


class DenseVAE(nn.Module):
    """Dense VAE: ``x -> hidden ... -> (mean, log_var) of q(z|x)``, ``z -> hidden ... -> p(x|z)``."""

    def __init__(self, config: VAEConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        self.encoder = DenseEncoder(config, generator)
        width = config.hidden_sizes[-1]
        self.mean = nn.Linear(width, config.latent_dim)
        self.log_var = nn.Linear(width, config.latent_dim)
        decoder_sizes = (*reversed(config.hidden_sizes), config.n_inputs)
        self.decoder = DenseEncoder(
            _DecoderLayers(config.latent_dim, decoder_sizes, config.activation, "linear"), generator
        )
        if config.likelihood == "gaussian":
            self.log_scale = nn.Parameter(torch.zeros(config.n_inputs))
        he_normal_(self.mean.weight, generator)
        nn.init.zeros_(self.mean.bias)
        # zero weights: every posterior starts with the prior's unit variance, not with
        # log-variances of several units either way that blow up the first samples
        nn.init.zeros_(self.log_var.weight)
        nn.init.zeros_(self.log_var.bias)

    @property
    def depth(self) -> int:
        """Hidden layers of the encoder (the inspection tools' layers 1..depth)."""
        return len(self.encoder.layers)

    @property
    def n_codes(self) -> int:
        return self.config.latent_dim

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x), each of shape (..., latent_dim)."""
        h = self.encoder(x)  # (B, n_inputs) -> (B, n_hidden)
        return self.mean(h), self.log_var(h)  # (B, n_hidden) -> 2 x (B, latent_dim)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean: the code ``transform`` gives."""
        return self.posterior(x)[0]

    def decode(self, z: torch.Tensor, *, logits: bool = False) -> torch.Tensor:
        """E[x | z] (shape (..., n_inputs)); ``logits=True`` gives a Bernoulli decoder's logits."""
        out = self.decoder(z)  # (..., latent_dim) -> (..., n_inputs)
        return torch.sigmoid(out) if self.config.likelihood == "bernoulli" and not logits else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction of ``x`` through its posterior mean, without sampling."""
        return self.decode(self.encode(x))

    def output_log_scale(self) -> torch.Tensor:
        """A Gaussian decoder's log standard deviation per feature, floored at ``MIN_LOG_SCALE``."""
        return self.log_scale.clamp(min=MIN_LOG_SCALE)

    def weight_matrices(self) -> list[nn.Parameter]:
        return [m.weight for m in self.modules() if isinstance(m, nn.Linear)]


def sample_posterior(
    mean: torch.Tensor, log_var: torch.Tensor, generator: torch.Generator | None, n_samples: int | None = None
) -> torch.Tensor:
    """z = mean + exp(log_var / 2) * eps, eps ~ N(0, I): the reparameterisation trick (Kingma &
    Welling 2014, section 2.4), differentiable in ``mean`` and ``log_var``.

    ``n_samples`` None gives one z per row, shape (B, L); an int gives (B, n_samples, L).
    """
    if n_samples is not None:
        mean, log_var = mean.unsqueeze(1), log_var.unsqueeze(1)  # (B, L) -> (B, 1, L)
        shape = (mean.shape[0], n_samples, mean.shape[-1])
    else:
        shape = mean.shape
    eps = torch.randn(shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + torch.exp(0.5 * log_var) * eps

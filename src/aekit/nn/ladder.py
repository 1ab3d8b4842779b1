"""The Ladder network (Rasmus, Valpola, Honkala, Berglund & Raiko, NIPS 2015): a classifier
whose encoder is also the corrupted half of a denoising autoencoder with lateral connections.

Encoder, layers l = 1 .. L (L is the output layer), run clean and corrupted::

    h_0 = x (+ noise)
    z_l = BN(W_l h_{l-1}) (+ noise)            no bias: BN would remove it
    h_l = relu(z_l + beta_l)                   hidden layers
    h_L = softmax(gamma * (z_L + beta_L))      output layer

In training BN normalises each unit by the batch's own mean and variance, the labelled and
the unlabelled rows of a step separately (as the authors' code does); at inference by those of
the training rows (:class:`BatchStatistics`). The noise is N(0, sigma^2), added after BN.

Decoder, l = L .. 0, on the unlabelled rows::

    u_L = BN(h~_L),  u_l = BN(V_l z^_{l+1})
    z^_l = g(z~_l, u_l)                        the combinator, Eq. (2) of the paper

where ``~`` marks the corrupted pass. Layer l's denoising cost compares ``z^_l``, normalised
by the clean pass's batch statistics of layer l, with the clean ``z_l`` (:func:`denoising_cost`).
The Gamma model (``decoder="gamma"``) decodes the top layer only.

This module holds the network; the objective that combines the costs is
:mod:`aekit.semisupervised`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..params import Interval, Options, Sizes
from .config import DictConfig

DECODERS = ("full", "gamma")
# Smaller than any variance that matters: the decoder's u starts at exactly 0 (the combinator
# outputs 0 at initialisation) and must be normalised whatever its scale once it moves.
BN_EPS = 1e-10
# momentum of the running statistics that inference uses while training runs
RUNNING_MOMENTUM = 0.1

Noise = Callable[[torch.Tensor], torch.Tensor]  # z -> z plus noise


@dataclass
class LadderConfig(DictConfig):
    """Architecture of a :class:`LadderNetwork`: ``n_inputs -> hidden_sizes -> n_classes``."""

    n_inputs: int
    hidden_sizes: tuple[int, ...]
    n_classes: int
    decoder: str  # "full" or "gamma"

    def __post_init__(self):
        self.hidden_sizes = tuple(self.hidden_sizes)
        Sizes().check("n_inputs", self.n_inputs)
        Sizes().check("hidden_sizes", self.hidden_sizes)
        Interval(int, 2).check("n_classes", self.n_classes)
        Options(*DECODERS).check("decoder", self.decoder)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Width of layer l at index l: ``(n_inputs, *hidden_sizes, n_classes)``."""
        return (self.n_inputs, *self.hidden_sizes, self.n_classes)

    @property
    def depth(self) -> int:
        """L: the number of weight layers, the output layer included."""
        return len(self.hidden_sizes) + 1

    @property
    def decoded_layers(self) -> tuple[int, ...]:
        """The layers the decoder reconstructs: all (0 is the input), or the top alone."""
        return tuple(range(self.depth + 1)) if self.decoder == "full" else (self.depth,)


def batch_norm(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(normalised z, mean, variance)`` of each column over the batch (biased variance)."""
    var, mean = torch.var_mean(z, 0, unbiased=False)
    return (z - mean) * torch.rsqrt(var + BN_EPS), mean, var


def batch_norm_parts(z: torch.Tensor, sizes: list[int]) -> tuple[torch.Tensor, list[tuple]]:
    """``z`` with each block of rows (``sizes``, top to bottom) normalised by its own batch
    statistics, and each block's ``(mean, variance)``."""
    if len(set(sizes)) == 1:  # equal blocks (the usual step): one view, no copies
        blocks = z.view(len(sizes), sizes[0], z.shape[1])  # (parts, B, n)
        var, mean = torch.var_mean(blocks, 1, unbiased=False, keepdim=True)
        normed = ((blocks - mean) * torch.rsqrt(var + BN_EPS)).view_as(z)
        return normed, [(m[0], v[0]) for m, v in zip(mean, var)]
    parts = [batch_norm(p) for p in z.split(sizes)]
    return torch.cat([p[0] for p in parts]), [(m, v) for _, m, v in parts]


def combinator(z: torch.Tensor, u: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The per-unit combinator of Rasmus et al. (2015), Eq. (2): the denoised estimate of
    ``z`` (corrupted, from the lateral connection) given ``u`` (from the layer above)::

        mu = a1 sigmoid(a2 u + a3) + a4 u + a5,  v = a6 sigmoid(a7 u + a8) + a9 u + a10
        z^ = (z - mu) v + mu

    ``a`` is (10, n): a1 .. a10 for each of the n units.
    """
    mu = a[0] * torch.sigmoid(a[1] * u + a[2]) + a[3] * u + a[4]
    v = a[5] * torch.sigmoid(a[6] * u + a[7]) + a[8] * u + a[9]
    return (z - mu) * v + mu


def denoising_cost(z_hat: torch.Tensor, z: torch.Tensor, mean=None, var=None) -> torch.Tensor:
    """``||(z^ - mean) / sqrt(var) - z||^2 / width``, averaged over rows: the reconstruction
    normalised with the clean batch's statistics of its layer (none for the input), compared
    with the clean normalised ``z``."""
    if mean is not None:
        z_hat = (z_hat - mean) * torch.rsqrt(var + BN_EPS)
    return F.mse_loss(z_hat, z)


@dataclass
class EncoderPass:
    """One run of the encoder in training: ``z[l]`` the (noisy) normalised pre-activation of
    layer l for every row (``z[0]``: the input), ``stats[l]`` its per-part batch ``(mean,
    var)`` (``stats[0]`` None), ``logits`` the output layer's ``gamma * (z_L + beta_L)``."""

    z: list[torch.Tensor]
    stats: list[list[tuple[torch.Tensor, torch.Tensor]] | None]
    logits: torch.Tensor


class BatchStatistics(nn.Module):
    """One layer's mean and variance for inference: running averages while training, then the
    exact values over the training rows (:func:`aekit.semisupervised.calibrate`)."""

    def __init__(self, n: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n))
        self.register_buffer("var", torch.ones(n))

    @torch.no_grad()
    def update(self, mean: torch.Tensor, var: torch.Tensor, momentum: float = RUNNING_MOMENTUM) -> None:
        self.mean.lerp_(mean.detach(), momentum)
        self.var.lerp_(var.detach(), momentum)

    def normalise(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.mean) * torch.rsqrt(self.var + BN_EPS)


class LadderNetwork(nn.Module):
    """The Ladder network's encoder, decoder and inference statistics (see the module's
    docstring). ``forward`` is the clean encoder at inference: logits."""

    def __init__(self, config: LadderConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        sizes, L = config.sizes, config.depth
        self.weights = nn.ModuleList(nn.Linear(sizes[k - 1], sizes[k], bias=False) for k in range(1, L + 1))
        self.betas = nn.ParameterList(nn.Parameter(torch.zeros(sizes[k])) for k in range(1, L + 1))
        self.gamma = nn.Parameter(torch.ones(sizes[L]))  # the softmax's scale; ReLU layers need none
        # vertical[l] maps layer l+1's estimate down to layer l (the full model only)
        self.vertical = nn.ModuleList(
            nn.Linear(sizes[k + 1], sizes[k], bias=False) for k in range(L) if config.decoder == "full"
        )
        self.combinators = nn.ParameterDict(
            {str(k): nn.Parameter(torch.zeros(10, sizes[k])) for k in config.decoded_layers}
        )
        self.statistics = nn.ModuleList(BatchStatistics(sizes[k]) for k in range(1, L + 1))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Weights N(0, 1/fan_in), as the authors'; the combinators start at a2 = a7 = 1, the
        rest 0 (so z^ starts at 0)."""
        for layer in [*self.weights, *self.vertical]:
            nn.init.normal_(layer.weight, 0.0, 1 / math.sqrt(layer.in_features), generator=generator)
        for a in self.combinators.values():
            nn.init.zeros_(a)
            with torch.no_grad():
                a[1] = a[6] = 1.0

    @property
    def depth(self) -> int:
        return self.config.depth

    def activate(self, z: torch.Tensor, k: int) -> torch.Tensor:
        """Layer ``k``'s output from its normalised pre-activation: ReLU, or the logits at the top."""
        if k == self.depth:
            return self.gamma * (z + self.betas[k - 1])
        return F.relu(z + self.betas[k - 1])

    # -- inference -----------------------------------------------------------------------
    def hidden(self, x: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        """The clean output of layer ``depth`` (default: the top hidden layer) at inference."""
        h = x
        for k in range(1, (self.depth - 1 if depth is None else depth) + 1):
            h = self.activate(self.statistics[k - 1].normalise(self.weights[k - 1](h)), k)  # (B, n_k)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(x, self.depth)  # (B, n_inputs) -> (B, n_classes) logits

    # -- training ------------------------------------------------------------------------
    def encode(self, parts: list[torch.Tensor], noise: Noise | None = None) -> EncoderPass:
        """The encoder in training on the rows of ``parts`` (e.g. labelled, unlabelled), each
        part batch-normalised with its own statistics; ``noise`` corrupts the input and each
        normalised pre-activation (None: the clean pass)."""
        sizes = [len(p) for p in parts]
        h = torch.cat(parts) if len(parts) > 1 else parts[0]
        h = noise(h) if noise else h
        z, stats = [h], [None]
        for k in range(1, self.depth + 1):
            h, part_stats = batch_norm_parts(self.weights[k - 1](h), sizes)  # (B, n_{k-1}) -> (B, n_k)
            h = noise(h) if noise else h
            z.append(h)
            stats.append(part_stats)
            h = self.activate(h, k)
        return EncoderPass(z, stats, h)

    def decode(self, z_corrupted: list[torch.Tensor], top: torch.Tensor) -> dict[int, torch.Tensor]:
        """``{l: z^_l}`` for the decoded layers, from the corrupted pass's ``z~_l`` and its
        output ``top`` (the softmax probabilities ``h~_L``), all of the same rows."""
        estimates: dict[int, torch.Tensor] = {}
        u = top
        for k in reversed(self.config.decoded_layers):
            if k < self.depth:
                u = self.vertical[k](estimates[k + 1])  # (B, n_{k+1}) -> (B, n_k)
            u = batch_norm(u)[0]
            estimates[k] = combinator(z_corrupted[k], u, self.combinators[str(k)])
        return estimates

    def update_statistics(self, clean: EncoderPass) -> None:
        """Move the inference statistics towards the clean pass's batch statistics (of its
        first part)."""
        for k in range(1, self.depth + 1):
            self.statistics[k - 1].update(*clean.stats[k][0])

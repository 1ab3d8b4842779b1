"""The functions the engine minimises for an autoencoder: reconstruction of clean inputs from
(optionally corrupted) inputs, plus weight decay. Shared by every training mode."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from . import corruption as corruption_
from .losses import RECONSTRUCTION_LOSSES, l2_penalty, reconstruction
from .params import Interval, Options, Param

LOSS = Param(
    Options(*RECONSTRUCTION_LOSSES),
    "Reconstruction loss: 'mse', or 'bce' (binary cross-entropy: a sigmoid on the output, inputs must lie in [0, 1]).",
)
L2 = Param(
    Interval(float, 0),
    "Weight of sum(W**2)/2 over the weight matrices that are parameters (not biases, not tied decoder weights).",
)
CORRUPTION = Param(
    Options(*corruption_.CORRUPTIONS),
    "Training-time input noise (a denoising autoencoder): None, 'gaussian' or "
    "'masking' (each input unit zeroed with probability corruption_level). "
    "Never applied outside training.",
)
CORRUPTION_LEVEL = Param(
    Interval(float, 0), "Standard deviation of 'gaussian' corruption, drop rate of 'masking' (below 1)."
)


@dataclass(frozen=True)
class Objective:
    """What an autoencoder minimises: its reconstruction ``loss`` ("mse" or "bce"), the L2
    weight on its weight matrices, and the training-time input ``corruption`` (None,
    "gaussian" or "masking") at ``corruption_level``. Values come checked from the estimator."""

    loss: str
    l2: float
    corruption: str | None
    corruption_level: float


def reconstruction_objective(
    forward: Callable[[torch.Tensor], torch.Tensor],
    weights: Sequence[torch.Tensor] = (),
    *,
    loss: str = "mse",
    l2: float = 0.0,
    corruption: str | None = None,
    corruption_level: float = 0.0,
    generator: torch.Generator | None = None,
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
):
    """Build ``loss_fn(batch) -> (loss, parts)`` for :func:`aekit.engine.fit`.

    ``forward`` maps an input batch to its reconstruction (its logits when ``loss="bce"``).
    The input is corrupted before ``forward`` while the target stays the clean batch: the
    denoising criterion of Vincent et al. (2008).

    ``weights`` and ``l2`` put ``l2 * sum(||W||^2) / 2`` into the graph: the plain formulation,
    kept as the reference that tests compare against. Training passes ``l2`` to
    :func:`aekit.engine.fit` instead, which applies the same gradient inside the optimizer.

    ``criterion(noisy, clean) -> loss``, when given, replaces ``reconstruction(forward(noisy),
    clean)``: the fused form of the same loss (:meth:`StackedAutoencoder.reconstruction_loss`).
    """
    weights = list(weights)

    def loss_fn(batch: torch.Tensor):
        noisy = corruption_.corrupt(batch, corruption, corruption_level, generator)
        rec = criterion(noisy, batch) if criterion else reconstruction(forward(noisy), batch, loss)
        if l2 == 0:
            return rec, {"loss": rec, "reconstruction": rec}
        penalty = l2 * l2_penalty(weights)
        total = rec + penalty
        return total, {"loss": total, "reconstruction": rec, "l2": penalty}

    return loss_fn


def clean_reconstruction(forward: Callable[[torch.Tensor], torch.Tensor], loss: str = "mse"):
    """``eval_fn(batch) -> loss`` without corruption or penalty: the validation criterion."""
    return lambda batch: reconstruction(forward(batch), batch, loss)

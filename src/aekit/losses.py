"""Loss terms as pure functions of tensors."""

from __future__ import annotations

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

"""The activation table: each activation's module, its in-place forward and its derivative.

The modules (:class:`~aekit.nn.StackedAutoencoder`, the encoder classifier) build their layers
from :func:`make_activation`; the fused reconstruction loss (:mod:`aekit.nn.fused`) runs
:attr:`Activation.forward` and :attr:`Activation.backward`. One table, so the two can never
disagree about what an activation computes. Every derivative here is a function of the
activation's *output*, so the fused backward keeps no pre-activations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# SELU's constants (Klambauer et al. 2017), as torch uses them
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805


@dataclass(frozen=True)
class Activation:
    """One activation: ``module()`` builds it; ``forward(z)`` applies it in place;
    ``backward(grad, y)`` turns dL/dy into dL/dz given the output ``y`` (it may reuse ``grad``)."""

    module: Callable[[], nn.Module]
    forward: Callable[[torch.Tensor], torch.Tensor]
    backward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _elu_backward(grad, y):  # y > 0: 1, else exp(z) = y + 1
    return torch.ops.aten.elu_backward(grad, 1.0, 1.0, 1.0, True, y)


def _selu_backward(grad, y):
    return torch.ops.aten.elu_backward(grad, SELU_ALPHA, SELU_SCALE, 1.0, True, y)


ACTIVATIONS: dict[str, Activation] = {
    "elu": Activation(nn.ELU, lambda z: F.elu(z, inplace=True), _elu_backward),
    "relu": Activation(nn.ReLU, lambda z: z.clamp_(min=0), lambda grad, y: grad.mul_(y > 0)),
    "selu": Activation(nn.SELU, lambda z: F.selu(z, inplace=True), _selu_backward),
    "sigmoid": Activation(nn.Sigmoid, torch.sigmoid_, lambda grad, y: grad.mul_(y * (1 - y))),
    "tanh": Activation(nn.Tanh, torch.tanh_, lambda grad, y: grad.mul_(1 - y * y)),
    "linear": Activation(nn.Identity, lambda z: z, lambda grad, y: grad),
}


def activation(name: str) -> Activation:
    """The table's entry for ``name``; a clear error for an unknown one."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def make_activation(name: str) -> nn.Module:
    """A new module computing the activation called ``name``."""
    return activation(name).module()

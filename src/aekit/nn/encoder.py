"""The dense encoder shared by the stacked autoencoder and the encoder classifier.

Both describe their encoder by the same fields (:class:`EncoderLayers`): ``n_inputs``,
``hidden_sizes``, ``activation`` and ``code_activation``. :class:`DenseEncoder` builds the
layers from them, initialises them and runs them one layer at a time or all together, so the
classifier's hidden layers are the autoencoder's encoder, not a copy of its code.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..params import Options, Sizes
from .activations import ACTIVATIONS, make_activation

_SIZES, _ACTIVATION = Sizes(), Options(*ACTIVATIONS)


class EncoderLayers:
    """Mixin for a configuration dataclass with ``n_inputs``, ``hidden_sizes``, ``activation``
    and ``code_activation``: the layer specification of a :class:`DenseEncoder`."""

    def _validate_encoder(self, *more_activations: str) -> None:
        self.hidden_sizes = (
            tuple(self.hidden_sizes) if isinstance(self.hidden_sizes, (list, tuple)) else (self.hidden_sizes,)
        )
        _SIZES.check("n_inputs", self.n_inputs)
        _SIZES.check("hidden_sizes", self.hidden_sizes)
        for name in (self.activation, self.code_activation or "linear", *more_activations):
            _ACTIVATION.check("activation", name)

    @property
    def depth(self) -> int:
        return len(self.hidden_sizes)

    @property
    def sizes(self) -> tuple[int, ...]:
        """``(n_inputs, *hidden_sizes)``: the width of the output of layer k at index k."""
        return (self.n_inputs, *self.hidden_sizes)

    def layer_activation(self, k: int) -> str:
        """Activation of encoder (hidden) layer ``k``, 1-based: the last one may differ."""
        if k == self.depth and self.code_activation is not None:
            return self.code_activation
        return self.activation


def he_normal_(weight: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """He (variance-scaling, fan-in) initialisation: N(0, 2 / fan_in), for ELU and ReLU layers."""
    return nn.init.normal_(weight, 0.0, math.sqrt(2.0 / weight.shape[1]), generator=generator)


class DenseEncoder(nn.Module):
    """``n_inputs -> hidden 1 -> ... -> coding layer``: ``layers[k-1]`` is hidden layer k."""

    def __init__(self, spec: EncoderLayers, generator: torch.Generator | None = None):
        super().__init__()
        sizes = spec.sizes
        self.layers = nn.ModuleList(nn.Linear(sizes[k], sizes[k + 1]) for k in range(spec.depth))
        self.activations = nn.ModuleList(make_activation(spec.layer_activation(k + 1)) for k in range(spec.depth))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """He-initialised weights, zero biases."""
        for layer in self.layers:
            he_normal_(layer.weight, generator)
            nn.init.zeros_(layer.bias)

    @property
    def depth(self) -> int:
        return len(self.layers)

    def encode_layer(self, h: torch.Tensor, k: int) -> torch.Tensor:
        """Hidden layer ``k`` alone (1-based): output of layer k-1 -> output of layer k."""
        return self.activations[k - 1](self.layers[k - 1](h))  # (B, n_{k-1}) -> (B, n_k)

    def forward(self, x: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        """Output of layer ``depth`` (default: the coding layer); ``depth=0`` is ``x``."""
        for k in range(1, (self.depth if depth is None else depth) + 1):
            x = self.encode_layer(x, k)
        return x

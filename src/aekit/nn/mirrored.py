"""What an autoencoder made of encoder layers and their mirrors shares."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch


class MirroredLayers:
    """Mixin for a module whose ``config`` has ``depth`` and ``hidden_sizes`` and which defines
    ``encode`` and ``decode_layer(h, k, logits=...)``: the mirror of layer k maps the output of
    layer k back to the output of layer k-1 (``decode_layer(h, 1)`` gives the reconstruction)."""

    @property
    def depth(self) -> int:
        return self.config.depth

    @property
    def n_codes(self) -> int:
        """Width of the coding layer."""
        return self.config.hidden_sizes[-1]

    def decode(self, z: torch.Tensor, *, logits: bool = False) -> torch.Tensor:
        """Map codes back to inputs; ``logits=True`` skips the output activation (for BCE)."""
        for k in range(self.depth, 0, -1):
            z = self.decode_layer(z, k, logits=logits and k == 1)  # (B, n_k) -> (B, n_{k-1})
        return z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def criterion(self, loss: str = "mse", layer: int | None = None) -> Callable:
        """``criterion(x, target)``: the module's ``reconstruction_loss`` by ``loss`` (of
        ``layer`` and its mirror alone when given), what training minimises."""
        return functools.partial(self.reconstruction_loss, loss=loss, layer=layer)

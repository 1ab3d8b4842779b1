"""The tied decoder layer: a layer whose weight is the transpose of an encoder layer's."""

from __future__ import annotations

import torch
from torch import nn


class TiedLinear(nn.Module):
    """Decoder layer whose weight is the transpose of an encoder layer's weight.

    Only the bias is a parameter of this layer: biases are never tied. The encoder layer is
    held outside the module registry so that its weight is listed, saved and regularised once,
    as the encoder's.

    Parameters
    ----------
    encoder : torch.nn.Linear
        The mirrored encoder layer, mapping ``out_features -> in_features`` of this layer.
    """

    def __init__(self, encoder: nn.Linear):
        super().__init__()
        object.__setattr__(self, "encoder", encoder)  # a plain attribute, not a submodule
        self.bias = nn.Parameter(torch.zeros(encoder.in_features))

    @property
    def weight(self) -> torch.Tensor:
        """The effective weight, ``W_enc.T`` of shape (in_features_enc, out_features_enc)."""
        return self.encoder.weight.t()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        # tied: W_dec = W_enc^T, so h @ W_dec^T = h @ W_enc. Written as addmm on W_enc itself
        # (not F.linear(h, W_enc.t())) so the weight gradient h^T @ grad comes out in W_enc's own
        # layout and accumulates without a transposed copy.
        return torch.addmm(self.bias, h, self.encoder.weight)  # (B, n_out_enc) -> (B, n_in_enc)

    def extra_repr(self) -> str:
        return f"in_features={self.encoder.out_features}, out_features={self.encoder.in_features}, tied"

"""StackedAutoencoder: a symmetric MLP, tied or untied (Géron, ch. 15; SPEC 1-2)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from .config import DictConfig, EncoderLayers
from .fused import LayerSpec, fused_reconstruction_loss
from .layers import TiedLinear, make_activation


@dataclass
class StackedConfig(EncoderLayers, DictConfig):
    """Architecture of a :class:`StackedAutoencoder`.

    ``hidden_sizes=(300, 150)`` with ``n_inputs=784`` gives 784-300-150-300-784; the last
    hidden size is the coding layer.
    """

    n_inputs: int
    hidden_sizes: tuple[int, ...] = (300, 150)
    activation: str = "elu"
    output_activation: str = "linear"  # "sigmoid" goes with the binary cross-entropy loss
    tied: bool = True
    code_activation: str | None = None  # None: the coding layer uses `activation`

    def __post_init__(self):
        self._validate_encoder(self.output_activation)


class StackedAutoencoder(nn.Module):
    """Symmetric MLP autoencoder: inputs -> hidden 1 ... coding ... -> outputs.

    ``encoders[k-1]`` is encoder layer k; ``decoders[k-1]`` is its mirror, the layer that maps
    the output of layer k back to the input of layer k (so ``decoders[0]`` is the output
    layer). With ``tied=True`` every decoder is a :class:`TiedLinear` over its mirror.
    """

    def __init__(self, config: StackedConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        sizes = (config.n_inputs, *config.hidden_sizes)
        self.encoders = nn.ModuleList(nn.Linear(sizes[k], sizes[k + 1]) for k in range(config.depth))
        self.decoders = nn.ModuleList(
            TiedLinear(enc) if config.tied else nn.Linear(enc.out_features, enc.in_features)
            for enc in self.encoders
        )
        self.enc_acts = nn.ModuleList(make_activation(config.layer_activation(k + 1))
                                      for k in range(config.depth))
        # the mirror of layer k outputs what layer k-1 output: that layer's activation
        self.dec_acts = nn.ModuleList(
            [make_activation(config.output_activation)]
            + [make_activation(config.layer_activation(k)) for k in range(1, config.depth)]
        )
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """He (variance-scaling, fan-in) initialisation of every weight; zero biases."""
        for layer in [*self.encoders, *self.decoders]:
            if isinstance(layer, nn.Linear):
                std = math.sqrt(2.0 / layer.in_features)
                nn.init.normal_(layer.weight, 0.0, std, generator=generator)
            nn.init.zeros_(layer.bias)

    @property
    def depth(self) -> int:
        return self.config.depth

    def encode(self, x: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        """Output of encoder layer ``depth`` (default: the coding layer). ``depth=0`` is ``x``."""
        depth = self.depth if depth is None else depth
        for k in range(depth):
            x = self.enc_acts[k](self.encoders[k](x))  # (B, n_k) -> (B, n_{k+1})
        return x

    def decode(self, z: torch.Tensor, *, logits: bool = False) -> torch.Tensor:
        """Map codes back to inputs; ``logits=True`` skips the output activation (for BCE)."""
        for k in reversed(range(1, self.depth)):
            z = self.dec_acts[k](self.decoders[k](z))  # (B, n_{k+1}) -> (B, n_k)
        z = self.decoders[0](z)  # (B, n_1) -> (B, n_inputs)
        return z if logits else self.dec_acts[0](z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    # -- the views a layer-wise phase needs ------------------------------------------------
    def encode_layer(self, h: torch.Tensor, k: int) -> torch.Tensor:
        """Encoder layer ``k`` alone (1-based): output of layer k-1 -> output of layer k."""
        return self.enc_acts[k - 1](self.encoders[k - 1](h))

    def decode_layer(self, h: torch.Tensor, k: int, *, logits: bool = False) -> torch.Tensor:
        """The mirror of layer ``k`` alone: output of layer k -> reconstruction of layer k-1."""
        out = self.decoders[k - 1](h)
        return out if logits else self.dec_acts[k - 1](out)

    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        """Trainable parameters of encoder layer ``k`` and its mirror (tied: one weight)."""
        return [*self.encoders[k - 1].parameters(), *self.decoders[k - 1].parameters()]

    def chain(self, layer: int | None = None, *, logits: bool = False
              ) -> tuple[tuple[LayerSpec, ...], tuple[torch.Tensor, ...]]:
        """The layers ``forward`` runs (or, for ``layer=k``, encoder k and its mirror), as
        :class:`~aekit.nn.fused.LayerSpec` s over a tuple of weights and biases."""
        ks = range(1, self.depth + 1) if layer is None else [layer]
        tensors: list[torch.Tensor] = []

        def index(t: torch.Tensor) -> int:
            for i, u in enumerate(tensors):
                if u is t:
                    return i
            tensors.append(t)
            return len(tensors) - 1

        specs = [LayerSpec(index(self.encoders[k - 1].weight), index(self.encoders[k - 1].bias),
                           False, self.config.layer_activation(k)) for k in ks]
        for k in reversed(ks):
            dec = self.decoders[k - 1]
            tied = isinstance(dec, TiedLinear)
            act = self.config.output_activation if k == 1 else self.config.layer_activation(k - 1)
            weight = dec.encoder.weight if tied else dec.weight
            specs.append(LayerSpec(index(weight), index(dec.bias), tied, act))
        if logits:
            specs[-1] = dataclasses.replace(specs[-1], activation="linear")
        return tuple(specs), tuple(tensors)

    def reconstruction_loss(self, x: torch.Tensor, target: torch.Tensor, loss: str = "mse",
                            layer: int | None = None) -> torch.Tensor:
        """Mean ``loss`` of reconstructing ``target`` from ``x`` through the whole stack (or,
        for ``layer=k``, encoder k and its mirror alone), as one fused autograd node.

        Equal to ``losses.reconstruction(self.forward(x), target)`` (with logits for BCE), but
        with a hand-written backward: see :mod:`aekit.nn.fused`.
        """
        specs, tensors = self.chain(layer, logits=loss == "bce")
        return fused_reconstruction_loss(x, target, specs, tensors, loss)

    def weight_matrices(self) -> list[nn.Parameter]:
        """Every weight that is a parameter: the ones L2 applies to (SPEC 2: tied decoders have none)."""
        return [m.weight for m in self.modules() if isinstance(m, nn.Linear)]

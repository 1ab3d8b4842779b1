"""StackedAutoencoder: a symmetric MLP, tied or untied (Géron, ch. 15)."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .activations import make_activation
from .config import DictConfig
from .encoder import DenseEncoder, EncoderLayers, he_normal_
from .fused import ChainCriterion, LayerSpec, fused_reconstruction_loss
from .layers import TiedLinear
from .mirrored import MirroredLayers


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

    def mirror_activation(self, k: int) -> str:
        """Activation of the mirror of layer ``k``: it outputs what layer k-1 output."""
        return self.output_activation if k == 1 else self.layer_activation(k - 1)


class StackedAutoencoder(MirroredLayers, nn.Module):
    """Symmetric MLP autoencoder: inputs -> hidden 1 ... coding ... -> outputs.

    ``encoder`` is a :class:`~aekit.nn.DenseEncoder`; ``decoders[k-1]`` is the mirror of
    encoder layer k, the layer that maps the output of layer k back to the input of layer k
    (so ``decoders[0]`` is the output layer). With ``tied=True`` every decoder is a
    :class:`TiedLinear` over its mirror.
    """

    def __init__(self, config: StackedConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        self.encoder = DenseEncoder(config, generator)
        self.decoders = nn.ModuleList(
            TiedLinear(enc) if config.tied else nn.Linear(enc.out_features, enc.in_features)
            for enc in self.encoder.layers
        )
        self.dec_acts = nn.ModuleList(make_activation(config.mirror_activation(k)) for k in range(1, config.depth + 1))
        self._reset_decoders(generator)

    def _reset_decoders(self, generator: torch.Generator | None) -> None:
        """He-initialised untied decoder weights (after the encoder's, from the same stream)."""
        for layer in self.decoders:
            if isinstance(layer, nn.Linear):
                he_normal_(layer.weight, generator)
            nn.init.zeros_(layer.bias)

    def encode(self, x: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        """Output of encoder layer ``depth`` (default: the coding layer). ``depth=0`` is ``x``."""
        return self.encoder(x, depth)  # (B, n_inputs) -> (B, n_depth)

    # -- the views a layer-wise phase needs ------------------------------------------------
    def layer_width(self, k: int) -> int:
        """Units of encoder layer ``k`` (1-based)."""
        return self.config.hidden_sizes[k - 1]

    def encode_layer(self, h: torch.Tensor, k: int) -> torch.Tensor:
        """Encoder layer ``k`` alone (1-based): output of layer k-1 -> output of layer k."""
        return self.encoder.encode_layer(h, k)

    def decode_layer(self, h: torch.Tensor, k: int, *, logits: bool = False) -> torch.Tensor:
        """The mirror of layer ``k`` alone: output of layer k -> reconstruction of layer k-1."""
        out = self.decoders[k - 1](h)
        return out if logits else self.dec_acts[k - 1](out)

    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        """Trainable parameters of encoder layer ``k`` and its mirror (tied: one weight)."""
        return [*self.encoder.layers[k - 1].parameters(), *self.decoders[k - 1].parameters()]

    def chain(
        self, layer: int | None = None, *, logits: bool = False
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

        specs = [
            LayerSpec(
                index(self.encoder.layers[k - 1].weight),
                index(self.encoder.layers[k - 1].bias),
                False,
                self.config.layer_activation(k),
            )
            for k in ks
        ]
        for k in reversed(ks):
            dec = self.decoders[k - 1]
            tied = isinstance(dec, TiedLinear)
            weight = dec.encoder.weight if tied else dec.weight
            specs.append(LayerSpec(index(weight), index(dec.bias), tied, self.config.mirror_activation(k)))
        if logits:
            specs[-1] = dataclasses.replace(specs[-1], activation="linear")
        return tuple(specs), tuple(tensors)

    def reconstruction_loss(
        self, x: torch.Tensor, target: torch.Tensor, loss: str = "mse", layer: int | None = None
    ) -> torch.Tensor:
        """Mean ``loss`` of reconstructing ``target`` from ``x`` through the whole stack (or,
        for ``layer=k``, encoder k and its mirror alone), as one fused autograd node.

        Equal to ``losses.reconstruction(self.forward(x), target)`` (with logits for BCE), but
        with a hand-written backward: see :mod:`aekit.nn.fused`. Under autocast it is that
        plain formulation, which autocast casts (the fused node's products follow their own
        precision setting). Under ``torch.compile`` the node runs outside the traced graph,
        since it compiles its own (:func:`aekit.nn.fused.compiled_kernels`).
        """
        if torch.is_autocast_enabled(x.device.type):
            return self._plain_reconstruction_loss(x, target, loss, layer)
        if torch.compiler.is_compiling():
            return self._fused_loss_untraced(x, target, loss, layer)
        return self._fused_loss(x, target, loss, layer)

    def criterion(self, loss: str = "mse", layer: int | None = None) -> ChainCriterion:
        """``criterion(x, target)``: :meth:`reconstruction_loss` by ``loss`` (of ``layer`` and
        its mirror alone when given), with the chain it computes laid open to a training step
        that runs the chain itself."""
        return ChainCriterion(
            functools.partial(self.reconstruction_loss, loss=loss, layer=layer),
            functools.partial(self.chain, layer, logits=loss == "bce"),
            loss,
        )

    def _fused_loss(self, x, target, loss: str, layer: int | None) -> torch.Tensor:
        specs, tensors = self.chain(layer, logits=loss == "bce")
        return fused_reconstruction_loss(x, target, specs, tensors, loss)

    # dynamo runs the node, and the building of its chain, outside its graph: the node compiles
    # a kernel of its own, and a traced chain would be guarded attribute by attribute every step
    _fused_loss_untraced = torch.compiler.disable(_fused_loss)

    def _plain_reconstruction_loss(self, x, target, loss: str, layer: int | None) -> torch.Tensor:
        logits = loss == "bce"
        if layer is None:
            out = self.decode(self.encode(x), logits=logits)
        else:
            out = self.decode_layer(self.encode_layer(x, layer), layer, logits=logits)
        out = out.to(target.dtype)  # autocast's bfloat16 outputs: the loss is taken in the data's dtype
        if logits:
            return F.binary_cross_entropy_with_logits(out, target)
        return F.mse_loss(out, target)

    def weight_matrices(self) -> list[nn.Parameter]:
        """Every weight that is a parameter: the ones L2 applies to (tied decoders have none)."""
        return [m.weight for m in self.modules() if isinstance(m, nn.Linear)]

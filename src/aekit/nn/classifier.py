"""EncoderClassifier: the dense encoder topped by a linear output layer giving class logits."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..params import Interval
from .config import DictConfig
from .encoder import DenseEncoder, EncoderLayers

_RATE = Interval(float, 0, 1, closed="left")


@dataclass
class ClassifierConfig(EncoderLayers, DictConfig):
    """Architecture of an :class:`EncoderClassifier`: ``n_inputs -> hidden_sizes -> n_classes``."""

    n_inputs: int
    hidden_sizes: tuple[int, ...]
    n_classes: int
    activation: str = "elu"
    code_activation: str | None = None  # activation of the last hidden layer; None: `activation`
    dropout: float = 0.0  # on the outputs of hidden layers that train (never on frozen ones)
    input_dropout: float = 0.0  # on the input, when the first layer trains

    def __post_init__(self):
        self._validate_encoder()
        Interval(int, 2).check("n_classes", self.n_classes)
        _RATE.check("dropout", self.dropout)
        _RATE.check("input_dropout", self.input_dropout)


class EncoderClassifier(nn.Module):
    """A :class:`~aekit.nn.DenseEncoder` plus a linear output layer giving class logits.

    ``encoder`` has the autoencoder's layout, so pretrained layers copy over by name;
    ``head`` is the output layer.
    """

    def __init__(self, config: ClassifierConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        self.encoder = DenseEncoder(config, generator)
        self.head = nn.Linear(config.sizes[-1], config.n_classes)
        self.dropout = nn.Dropout(config.dropout)
        self.input_dropout = nn.Dropout(config.input_dropout)
        # The head starts at zero: every class equally likely at first, so the validation loss
        # starts at log(n_classes) instead of at a random, overconfident guess, which early
        # stopping on a few labelled rows would otherwise latch onto.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def depth(self) -> int:
        return self.config.depth

    def encode_layer(self, h: torch.Tensor, k: int) -> torch.Tensor:
        """Hidden layer ``k`` alone (1-based), without dropout: what a frozen layer computes."""
        return self.encoder.encode_layer(h, k)

    def forward_from(self, h: torch.Tensor, n_frozen: int = 0) -> torch.Tensor:
        """Logits from the output of layer ``n_frozen`` (``h = x`` for 0): the trainable part.

        Dropout (training mode only) acts on the outputs of the layers above ``n_frozen``, and
        input dropout on ``x`` when nothing is frozen.
        """
        if n_frozen == 0:
            h = self.input_dropout(h)  # (B, n_inputs)
        for k in range(n_frozen + 1, self.depth + 1):
            h = self.dropout(self.encode_layer(h, k))  # (B, n_{k-1}) -> (B, n_k)
        return self.head(h)  # (B, n_code) -> (B, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_from(x, 0)  # (B, n_inputs) -> (B, n_classes) logits

    def trainable_layers(self, n_frozen: int) -> list[nn.Linear]:
        """The hidden layers above ``n_frozen`` and the head."""
        return [*self.encoder.layers[n_frozen:], self.head]

    def trainable_parameters(self, n_frozen: int) -> list[nn.Parameter]:
        return [p for layer in self.trainable_layers(n_frozen) for p in layer.parameters()]

    def trainable_weights(self, n_frozen: int) -> list[nn.Parameter]:
        """The weight matrices L2 applies to: those of the trainable layers (no biases)."""
        return [layer.weight for layer in self.trainable_layers(n_frozen)]

"""Classifiers built on a stacked autoencoder's encoder (Géron, ch. 15; SPEC 6).

An :class:`EncoderClassifier` is the encoder layers of a :class:`~aekit.nn.StackedAutoencoder`
(all of them, or the first k) topped by a new linear output layer whose logits go through a
softmax, via the cross-entropy loss. The same architecture can start from He-initialised
weights instead, to measure what pretraining brings.

:func:`train_classifier` freezes the lower layers by a policy, computes their outputs for the
labelled rows once, without gradients (as :mod:`aekit.layerwise` does for its phases), and
trains the rest with one call of :func:`aekit.engine.fit`: frozen layers never run during
epochs. The engine takes one tensor, so features and labels travel together, the label as the
last column (:func:`pack`); float32 holds every class index below 2**24 exactly.
"""
from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral

import torch
import torch.nn.functional as F
from torch import nn

from . import engine
from .layerwise import layer_outputs
from .nn import StackedAutoencoder
from .nn.config import DictConfig, EncoderLayers
from .nn.layers import make_activation

logger = logging.getLogger(__name__)

FREEZE_POLICIES = ("none", "lower", "all")


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
        if int(self.n_classes) < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got n_classes={self.n_classes}")
        for name in ("dropout", "input_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")


class EncoderClassifier(nn.Module):
    """Encoder layers plus a linear output layer giving class logits.

    ``encoders[k-1]`` is hidden layer k, named as in :class:`~aekit.nn.StackedAutoencoder`
    so pretrained weights copy over by name; ``head`` is the output layer.
    """

    def __init__(self, config: ClassifierConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        sizes = (config.n_inputs, *config.hidden_sizes)
        self.encoders = nn.ModuleList(nn.Linear(sizes[k], sizes[k + 1]) for k in range(config.depth))
        self.enc_acts = nn.ModuleList(make_activation(config.layer_activation(k + 1))
                                      for k in range(config.depth))
        self.head = nn.Linear(sizes[-1], config.n_classes)
        self.dropout = nn.Dropout(config.dropout)
        self.input_dropout = nn.Dropout(config.input_dropout)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """He (fan-in) initialisation of the hidden weights, as the autoencoder's; zero biases.

        The head starts at zero: every class is equally likely at first, and the validation
        loss starts at ``log(n_classes)`` instead of at a random, overconfident guess, which
        early stopping on a few labelled rows would otherwise latch onto.
        """
        for layer in self.encoders:
            nn.init.normal_(layer.weight, 0.0, math.sqrt(2.0 / layer.in_features), generator=generator)
            nn.init.zeros_(layer.bias)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def depth(self) -> int:
        return self.config.depth

    def encode_layer(self, h: torch.Tensor, k: int) -> torch.Tensor:
        """Hidden layer ``k`` alone (1-based), without dropout: what a frozen layer computes."""
        return self.enc_acts[k - 1](self.encoders[k - 1](h))  # (B, n_{k-1}) -> (B, n_k)

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

    def trainable_parameters(self, n_frozen: int) -> list[nn.Parameter]:
        """Parameters of the layers above ``n_frozen`` and of the head."""
        layers = [*self.encoders[n_frozen:], self.head]
        return [p for layer in layers for p in layer.parameters()]

    def trainable_weights(self, n_frozen: int) -> list[nn.Parameter]:
        """The weight matrices L2 applies to: those of the trainable layers (no biases)."""
        return [layer.weight for layer in [*self.encoders[n_frozen:], self.head]]


def from_autoencoder(autoencoder: StackedAutoencoder, n_classes: int, *, n_layers: int | None = None,
                     dropout: float = 0.0, input_dropout: float = 0.0,
                     generator: torch.Generator | None = None) -> EncoderClassifier:
    """A classifier whose hidden layers are copies of the first ``n_layers`` encoder layers.

    The autoencoder is not modified (its weights are copied); the head starts at zero (see
    :meth:`EncoderClassifier.reset_parameters`). The classifier lives on the autoencoder's device.
    """
    ae = autoencoder.config
    n_layers = ae.depth if n_layers is None else _check_depth(n_layers, ae.depth)
    config = ClassifierConfig(n_inputs=ae.n_inputs, hidden_sizes=ae.hidden_sizes[:n_layers],
                              n_classes=n_classes, activation=ae.activation,
                              code_activation=ae.code_activation if n_layers == ae.depth else None,
                              dropout=dropout, input_dropout=input_dropout)
    module = EncoderClassifier(config, generator).to(next(autoencoder.parameters()).device)
    for k in range(n_layers):
        module.encoders[k].load_state_dict(autoencoder.encoders[k].state_dict())
    return module


def _check_depth(n_layers, depth: int) -> int:
    if isinstance(n_layers, bool) or not isinstance(n_layers, Integral) or not 1 <= n_layers <= depth:
        raise ValueError(f"n_layers must be an int in [1, {depth}] (the autoencoder's depth), "
                         f"got {n_layers!r}")
    return int(n_layers)


def n_frozen_layers(freeze, depth: int) -> int:
    """How many bottom layers a freeze policy freezes in a classifier of ``depth`` hidden layers.

    ``"none"``: 0 (fine-tune everything); ``"lower"``: all but the top hidden layer;
    ``"all"``: every hidden layer (only the head trains: a linear probe); an int: that many.
    """
    if isinstance(freeze, str):
        if freeze not in FREEZE_POLICIES:
            raise ValueError(f"freeze={freeze!r} is not one of {FREEZE_POLICIES} or an int")
        return {"none": 0, "lower": depth - 1, "all": depth}[freeze]
    if isinstance(freeze, bool) or not isinstance(freeze, Integral) or not 0 <= freeze <= depth:
        raise ValueError(f"freeze must be one of {FREEZE_POLICIES} or an int in [0, {depth}], "
                         f"got {freeze!r}")
    return int(freeze)


# -- training --------------------------------------------------------------------------------


def pack(features: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(n, d)`` features and ``(n,)`` class indices -> one ``(n, d + 1)`` tensor for the engine."""
    return torch.cat([features, y.to(features.dtype)[:, None]], dim=1)


def unpack(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`pack`: ``(features, class indices)``."""
    return batch[:, :-1], batch[:, -1].long()


@torch.no_grad()
def frozen_features(module: EncoderClassifier, X: torch.Tensor, n_frozen: int) -> torch.Tensor:
    """Output of layer ``n_frozen`` for ``X``: the frozen layers run here once, clean, without
    gradients (``X`` itself when nothing is frozen)."""
    for k in range(1, n_frozen + 1):
        X = layer_outputs(module, X, k)  # (n, n_{k-1}) -> (n, n_k)
    return X


def classification_objective(module: EncoderClassifier, n_frozen: int):
    """``loss_fn(batch) -> (loss, parts)`` for :func:`aekit.engine.fit` on packed batches:
    the cross-entropy of the softmax of the logits (the multinomial log-loss). L2 on the
    trainable weights is the engine's (``l2`` of :func:`aekit.engine.fit`)."""

    def loss_fn(batch: torch.Tensor):
        h, target = unpack(batch)
        ce = F.cross_entropy(module.forward_from(h, n_frozen), target)
        return ce, {"loss": ce, "cross_entropy": ce}

    return loss_fn


def train_classifier(module: EncoderClassifier, X, y, *, freeze="none", l2: float = 0.0,
                     config: engine.TrainConfig, generator: torch.Generator,
                     callbacks: Sequence[Callable[[dict], bool | None]] = ()) -> list[dict]:
    """Train ``module`` in place on labelled rows ``(X, y)``, lower layers frozen by ``freeze``.

    Parameters
    ----------
    module : EncoderClassifier
        Trained on the device of its parameters.
    X : array-like or Tensor of shape (n, n_inputs)
        Labelled rows only.
    y : array-like or Tensor of shape (n,)
        Class indices in ``[0, n_classes)``.
    freeze : {"none", "lower", "all"} or int
        See :func:`n_frozen_layers`. Frozen layers are not in the optimizer and their outputs
        are computed once, before the first epoch.
    l2 : float
        Weight decay on the trainable weight matrices.
    config : aekit.engine.TrainConfig
        Epochs, batch size, learning rate and early stopping; the validation split is drawn
        from these labelled rows and its loss is the clean (dropout-free) cross-entropy.
    generator : torch.Generator
        On the training device: batch order, validation split and dropout masks' seed.
    callbacks : sequence of callable
        Passed to :func:`aekit.engine.fit`.

    Returns
    -------
    list of dict
        The engine's per-epoch records (``loss``, ``cross_entropy``, ``l2``, ``val_loss``...).
    """
    if not l2 >= 0:
        raise ValueError(f"l2 must be >= 0, got {l2}")
    n_frozen = n_frozen_layers(freeze, module.depth)
    device = next(module.parameters()).device
    X = engine.as_tensor(X, device)
    y = torch.as_tensor(y, device=device).long()
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
    if len(y) and not 0 <= int(y.min()) <= int(y.max()) < module.config.n_classes:
        raise ValueError(f"class indices must lie in [0, {module.config.n_classes}), "
                         f"got [{int(y.min())}, {int(y.max())}]")
    data = pack(frozen_features(module, X, n_frozen), y)  # (n, n_{n_frozen} + 1)
    loss_fn = classification_objective(module, n_frozen)
    logger.info("classifier: %d of %d hidden layers frozen, %d labelled rows",
                n_frozen, module.depth, len(data))
    with _dropout_rng(device, generator):
        # validation loss: the cross-entropy alone (no L2; dropout is off in evaluation mode)
        return engine.fit(module, loss_fn, data, params=module.trainable_parameters(n_frozen),
                          config=config, generator=generator,
                          eval_fn=lambda batch: loss_fn(batch)[0],
                          l2_weights=module.trainable_weights(n_frozen), l2=l2, callbacks=callbacks)


@contextlib.contextmanager
def _dropout_rng(device: torch.device, generator: torch.Generator):
    """Seed the global stream of ``device`` from ``generator``, and restore it afterwards.

    ``nn.Dropout`` draws from torch's global stream: forking it makes a seeded fit
    reproducible without moving the caller's random state.
    """
    seed = int(torch.randint(2**31 - 1, (), generator=generator, device=generator.device))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        if device.type == "cuda":
            torch.cuda.manual_seed(seed)
        else:
            torch.random.default_generator.manual_seed(seed)
        yield

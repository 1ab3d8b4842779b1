"""Classifiers built on a stacked autoencoder's encoder (Géron, ch. 15).

An :class:`~aekit.nn.EncoderClassifier` is the encoder layers of a :class:`~aekit.nn.StackedAutoencoder`
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
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from . import engine
from .layerwise import layer_outputs
from .nn import ClassifierConfig, EncoderClassifier, StackedAutoencoder
from .params import AnyOf, Interval, Maybe, Options, Param

logger = logging.getLogger(__name__)

FREEZE_POLICIES = ("none", "lower", "all")

FREEZE = Param(
    AnyOf(Options(*FREEZE_POLICIES), Interval(int, 0)),
    "Which pretrained layers stay fixed while the classifier trains: 'none' "
    "fine-tunes every layer, 'lower' freezes all but the top hidden layer, 'all' "
    "trains only the output layer (a linear probe), an int freezes that many bottom "
    "layers. Frozen layers run once, before training.",
)
DROPOUT = Param(Interval(float, 0, 1, closed="left"), "Dropout rate on the outputs of the hidden layers that train.")
INPUT_DROPOUT = Param(
    Interval(float, 0, 1, closed="left"),
    "Dropout rate on the input while the first layer trains (Hinton et al. 2012 "
    "used 0.2 on MNIST); ignored when that layer is frozen.",
)
N_LAYERS = Param(
    Maybe(Interval(int, 1)),
    "Use the first n_layers encoder layers; None: all of them, up to the coding layer.",
)


def from_autoencoder(
    autoencoder: StackedAutoencoder,
    n_classes: int,
    *,
    n_layers: int | None = None,
    dropout: float = 0.0,
    input_dropout: float = 0.0,
    generator: torch.Generator | None = None,
) -> EncoderClassifier:
    """A classifier whose hidden layers are copies of the first ``n_layers`` encoder layers.

    The autoencoder is not modified (its weights are copied); the head starts at zero (see
    :class:`~aekit.nn.EncoderClassifier`). The classifier lives on the autoencoder's device.
    """
    ae = autoencoder.config
    n_layers = ae.depth if n_layers is None else check_n_layers(n_layers, ae.depth)
    config = ClassifierConfig(
        n_inputs=ae.n_inputs,
        hidden_sizes=ae.hidden_sizes[:n_layers],
        n_classes=n_classes,
        activation=ae.activation,
        code_activation=ae.code_activation if n_layers == ae.depth else None,
        dropout=dropout,
        input_dropout=input_dropout,
    )
    module = EncoderClassifier(config, generator).to(next(autoencoder.parameters()).device)
    for k in range(n_layers):
        module.encoder.layers[k].load_state_dict(autoencoder.encoder.layers[k].state_dict())
    return module


def check_n_layers(n_layers, depth: int) -> int:
    Interval(int, 1, depth).check("n_layers", n_layers)  # at most the autoencoder's depth
    return int(n_layers)


def n_frozen_layers(freeze, depth: int) -> int:
    """How many bottom layers a freeze policy freezes in a classifier of ``depth`` hidden layers.

    ``"none"``: 0 (fine-tune everything); ``"lower"``: all but the top hidden layer;
    ``"all"``: every hidden layer (only the head trains: a linear probe); an int: that many.
    """
    AnyOf(Options(*FREEZE_POLICIES), Interval(int, 0, depth)).check("freeze", freeze)
    if isinstance(freeze, str):
        return {"none": 0, "lower": depth - 1, "all": depth}[freeze]
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


def train_classifier(
    module: EncoderClassifier,
    X,
    y,
    *,
    freeze="none",
    l2: float = 0.0,
    config: engine.TrainConfig,
    generator: torch.Generator,
    callbacks: Sequence[Callable[[dict], bool | None]] = (),
) -> list[dict]:
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
    n_frozen = n_frozen_layers(freeze, module.depth)
    device = next(module.parameters()).device
    X = engine.as_tensor(X, device)
    y = torch.as_tensor(y, device=device).long()
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
    if len(y) and not 0 <= int(y.min()) <= int(y.max()) < module.config.n_classes:
        raise ValueError(
            f"class indices must lie in [0, {module.config.n_classes}), got [{int(y.min())}, {int(y.max())}]"
        )
    data = pack(frozen_features(module, X, n_frozen), y)  # (n, n_{n_frozen} + 1)
    loss_fn = classification_objective(module, n_frozen)
    logger.info("classifier: %d of %d hidden layers frozen, %d labelled rows", n_frozen, module.depth, len(data))
    with _dropout_rng(device, generator):
        # validation loss: the cross-entropy alone (no L2; dropout is off in evaluation mode)
        return engine.fit(
            module,
            loss_fn,
            data,
            params=module.trainable_parameters(n_frozen),
            config=config,
            generator=generator,
            eval_fn=lambda batch: loss_fn(batch)[0],
            l2_weights=module.trainable_weights(n_frozen),
            l2=l2,
            callbacks=callbacks,
        )


@contextlib.contextmanager
def _dropout_rng(device: torch.device, generator: torch.Generator):
    """Seed the global stream of ``device`` from ``generator``, and restore it afterwards.

    ``nn.Dropout`` draws from torch's global stream: forking it makes a seeded fit
    reproducible without moving the caller's random state. In several processes each rank's
    seed differs, so no two ranks drop the same units of their rows.
    """
    seed = int(torch.randint(2**31 - 1, (), generator=generator, device=generator.device))
    seed += engine.world().rank
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        if device.type == "cuda":
            torch.cuda.manual_seed(seed)
        else:
            torch.random.default_generator.manual_seed(seed)
        yield

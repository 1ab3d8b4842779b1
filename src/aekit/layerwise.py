"""Greedy layer-wise training of a stacked autoencoder (Géron, ch. 15).

Two methods, both of the book, both giving the same :class:`~aekit.nn.StackedAutoencoder`
(same configuration, same parameter names) as end-to-end training:

``"phases"``
    One model. Phase k trains encoder layer k and its mirror, bypassing the inner layers, to
    reconstruct the output of layer k-1. Lower layers are frozen: not in the optimizer, and
    their outputs for the training set are computed once, without gradients, at the start of
    the phase and fed to it as its data (the book's cache).
``"separate"``
    One shallow autoencoder per layer, each trained on the codes of the one before, then
    copied into the stack (encoder layers in order, output layers in reverse order).

Each shallow autoencoder starts from the stacked model's own initial weights for its layer,
so on the same seed both methods run the same computation and give the same weights.

Stacked denoising autoencoders (Vincent et al. 2010) corrupt each phase's input (``X`` for
phase 1, the cached codes of the layer below after it) during that phase only; the codes
passed up to the next phase are computed from clean inputs. Every phase is one call of
:func:`aekit.engine.fit`; fine-tuning afterwards is :func:`aekit.training.fine_tune`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from . import corruption as corruption_
from . import engine
from .engine import BATCH_SIZE, EPOCHS, LEARNING_RATE, MAX_GRAD_NORM
from .nn import StackedAutoencoder, StackedConfig
from .nn.config import DictConfig
from .objectives import CORRUPTION, CORRUPTION_LEVEL, L2, CodePenalties, dense_coding, reconstruction_objective
from .params import InvalidParameterError, Options, Param

logger = logging.getLogger(__name__)

METHOD = Param(
    Options("phases", "separate"),
    "The book's two methods of greedy layer-wise training: 'phases', one model trained "
    "a layer at a time with the lower layers frozen and their outputs cached; or "
    "'separate', one shallow autoencoder per layer, assembled into the stack.",
)
STEP_COUNT = Param(
    Options("per_phase", "shared"),
    "Each phase (and fine-tuning) gets a fresh Adam. 'per_phase': its step count "
    "starts at 0, as a fresh PyTorch Adam's does. 'shared': it starts where the "
    "phases before left off, with zero moments, as in the book's TensorFlow 1 code "
    "that reuses one AdamOptimizer: the first steps of later phases are then "
    "several times larger (the first moment gets no bias correction).",
)
_PER_PHASE = {
    "epochs": EPOCHS,
    "learning_rate": LEARNING_RATE,
    "l2": L2,
    "corruption": CORRUPTION,
    "corruption_level": CORRUPTION_LEVEL,
}
Callback = Callable[[dict], "bool | None"]  # as in engine.fit: True stops the phase


@dataclass(frozen=True)
class PhaseSettings:
    """The settings of one layer-wise phase (one layer), resolved from a :class:`LayerwiseConfig`."""

    epochs: int
    learning_rate: float
    l2: float
    corruption: str | None
    corruption_level: float


@dataclass
class LayerwiseConfig(DictConfig):
    """How to train a stack one layer at a time.

    ``epochs``, ``learning_rate``, ``l2``, ``corruption`` and ``corruption_level`` take one
    value for every phase or a sequence with one value per layer (bottom first); each value
    follows the rule of the estimator parameter of the same name. ``l2`` applies to the
    weights of the phase's layers that are parameters (the encoder weight, plus the decoder
    weight when untied); ``corruption`` is noise on each phase's input during that phase only
    (a stacked denoising autoencoder).
    """

    method: str
    epochs: int | tuple[int, ...]
    learning_rate: float | tuple[float, ...]
    l2: float | tuple[float, ...]
    corruption: str | None | tuple[str | None, ...]
    corruption_level: float | tuple[float, ...]
    batch_size: int
    step_count: str
    max_grad_norm: float | None  # gradient clipping in every phase (engine.MAX_GRAD_NORM)

    def __post_init__(self):
        for name in _PER_PHASE:  # JSON gives lists; keep sequences as tuples
            value = getattr(self, name)
            if _is_sequence(value):
                setattr(self, name, tuple(value))
        METHOD.constraint.check("method", self.method)
        STEP_COUNT.constraint.check("step_count", self.step_count)
        BATCH_SIZE.constraint.check("batch_size", self.batch_size)
        MAX_GRAD_NORM.constraint.check("max_grad_norm", self.max_grad_norm)
        self.phases(None)  # validates every value; lengths are checked against a depth later

    def phases(self, depth: int | None) -> list[PhaseSettings]:
        """One :class:`PhaseSettings` per layer of a stack of ``depth`` layers.

        Raises ``ValueError`` when a per-phase sequence does not have ``depth`` values or a
        value is out of range. ``depth=None`` only checks the values.
        """
        lengths = {n: len(getattr(self, n)) for n in _PER_PHASE if _is_sequence(getattr(self, n))}
        if len(set(lengths.values())) > 1:
            raise InvalidParameterError(f"layer-wise settings have different numbers of phases: {lengths}")
        n = depth if depth is not None else max(lengths.values(), default=1)
        columns = [_broadcast(name, getattr(self, name), n, depth is not None) for name in _PER_PHASE]
        phases = [PhaseSettings(*row) for row in zip(*columns)]
        for k, phase in enumerate(phases, 1):
            _validate_phase(k, phase)
        return phases


def _is_sequence(value) -> bool:
    return isinstance(value, (tuple, list))


def _broadcast(name: str, value, n: int, check_length: bool) -> tuple:
    if not _is_sequence(value):
        return (value,) * n
    if check_length and len(value) != n:
        raise InvalidParameterError(
            f"layer-wise {name} has {len(value)} values {tuple(value)}, but "
            f"the stack has {n} layers: give one value or one per layer"
        )
    return tuple(value)


def _validate_phase(k: int, phase: PhaseSettings) -> None:
    try:
        for name, param in _PER_PHASE.items():
            param.constraint.check(name, getattr(phase, name))
        corruption_.validate(phase.corruption, phase.corruption_level)
    except ValueError as error:
        raise InvalidParameterError(f"layer {k}: {error}") from None


# -- training --------------------------------------------------------------------------------


def train_layerwise(
    module: StackedAutoencoder,
    X,
    *,
    config: LayerwiseConfig,
    loss: str,
    penalties: CodePenalties,
    generator: torch.Generator,
    verbose: bool = False,
    callbacks: Sequence[Callback] = (),
    step: engine.StepOptions | None = None,
) -> list[dict]:
    """Train ``module`` greedily, one layer at a time, in place.

    Parameters
    ----------
    module : StackedAutoencoder
        Trained on the device of its parameters; its configuration is unchanged, so the
        result saves, loads and transforms like an end-to-end model.
    X : array-like or Tensor of shape (n, n_inputs)
        Moved once to the training device; rows on disk (:func:`aekit.datasets.on_disk`)
        stay there, and so do the cached outputs of the layers below each phase.
    config : LayerwiseConfig
    loss : {"mse", "bce"}
        The model's reconstruction loss: phase 1's (it reconstructs ``X``); inner phases
        reconstruct hidden activations with MSE.
    penalties : CodePenalties
        Penalties on each phase's coding layer (the layer it trains).
    generator : torch.Generator
        On the training device; seeds batch order and noise of every phase.
    verbose : bool
        A progress bar per phase.
    callbacks : sequence of callable
        Passed to every :func:`aekit.engine.fit` call (each phase), so returning True ends
        the current phase early, not the whole training.
    step : aekit.engine.StepOptions, optional
        How each phase's steps run; None: eagerly, in float32.

    Returns
    -------
    list of dict
        The per-epoch records of every phase in order; ``phase`` is ``"layer 1"``,
        ``"layer 2"``, ...
    """
    phases = config.phases(module.depth)
    X = engine.training_rows(X, next(module.parameters()).device)
    run = _Run(
        config.batch_size,
        loss,
        penalties,
        generator,
        verbose,
        tuple(callbacks),
        config.step_count,
        len(X),
        config.max_grad_norm,
        step,
    )
    history = (_train_phases if config.method == "phases" else _train_separate)(module, X, phases, run)
    module.eval()
    return history


@dataclass(frozen=True)
class _Run:
    """What every phase of one layer-wise training shares."""

    batch_size: int
    loss: str
    penalties: CodePenalties
    generator: torch.Generator
    verbose: bool
    callbacks: tuple
    step_count: str
    n_rows: int
    max_grad_norm: float | None
    step: engine.StepOptions | None

    def train(
        self,
        model: StackedAutoencoder,
        k: int,
        inputs: torch.Tensor | engine.Streamed,
        phase: PhaseSettings,
        number: int,
        history: list[dict],
    ) -> list[dict]:
        """The phase of the stack's layer ``number``, after ``history``: layer ``k`` of ``model``
        (the stack itself, or a shallow autoencoder) learns to reconstruct ``inputs``."""
        start_step = steps_so_far(history, self.n_rows, self.batch_size, self.step_count)
        return train_layer(
            model,
            k,
            inputs,
            phase,
            self,
            loss=layer_loss(self.loss, number),
            label=f"layer {number}",
            start_step=start_step,
        )


def _train_phases(module: StackedAutoencoder, X: torch.Tensor, phases: list[PhaseSettings], run: _Run) -> list[dict]:
    """Method "phases": one model; phase k sees only the cached output of layer k-1."""
    history: list[dict] = []
    inputs = X  # output of layer 0; replaced (not kept) so the cache holds one layer
    for k, phase in enumerate(phases, 1):
        if k > 1:  # layer k-1 is frozen from now on: its outputs are computed once, here
            inputs = layer_outputs(module, inputs, k - 1)
        history += run.train(module, k, inputs, phase, k, history)
    return history


def _train_separate(module: StackedAutoencoder, X: torch.Tensor, phases: list[PhaseSettings], run: _Run) -> list[dict]:
    """Method "separate": one shallow autoencoder per layer, copied into the stack."""
    history: list[dict] = []
    inputs, previous = X, None
    for k, phase in enumerate(phases, 1):
        if previous is not None:  # run the training set through the previous one's hidden layer
            inputs = layer_outputs(previous, inputs, 1)
        shallow = previous = shallow_autoencoder(module, k)
        history += run.train(shallow, 1, inputs, phase, k, history)
        # encoder layers in order, output layers in reverse order
        module.encoder.layers[k - 1].load_state_dict(shallow.encoder.layers[0].state_dict())
        module.decoders[k - 1].load_state_dict(shallow.decoders[0].state_dict())
    return history


def steps_so_far(history: list[dict], n_rows: int, batch_size: int, step_count: str) -> int:
    """Where the next phase's Adam starts its step count: 0, or with ``"shared"`` the steps of
    the epochs in ``history`` (every phase takes n_rows // batch_size steps an epoch)."""
    if step_count != "shared":
        return 0
    return len(history) * (n_rows // min(batch_size, n_rows))


def layer_loss(loss: str, k: int) -> str:
    """The reconstruction loss of layer ``k``'s phase: the model's for k = 1, else MSE."""
    return loss if k == 1 else "mse"  # hidden activations (ELU, ...) need not lie in [0, 1]


def shallow_autoencoder(module: StackedAutoencoder, k: int) -> StackedAutoencoder:
    """A depth-1 autoencoder for layer ``k`` of ``module``, starting from its current weights.

    Its output activation is the model's for ``k = 1`` (it reconstructs ``X``) and layer
    k-1's activation for inner layers (they reconstruct that layer's output).
    """
    cfg = module.config
    shallow_cfg = StackedConfig(
        n_inputs=cfg.sizes[k - 1],
        hidden_sizes=(cfg.sizes[k],),
        activation=cfg.layer_activation(k),
        output_activation=cfg.mirror_activation(k),
        tied=cfg.tied,
    )
    # a throwaway seeded generator keeps the global RNG untouched; the weights are replaced
    shallow = StackedAutoencoder(shallow_cfg, torch.Generator().manual_seed(0))
    shallow.to(next(module.parameters()).device)
    shallow.encoder.layers[0].load_state_dict(module.encoder.layers[k - 1].state_dict())
    shallow.decoders[0].load_state_dict(module.decoders[k - 1].state_dict())
    return shallow


def train_layer(
    model: StackedAutoencoder,
    k: int,
    inputs: torch.Tensor | engine.Streamed,
    phase: PhaseSettings,
    run: _Run,
    *,
    loss: str,
    label: str,
    start_step: int = 0,
) -> list[dict]:
    """Train encoder layer ``k`` of ``model`` and its mirror to reconstruct ``inputs`` by ``loss``.

    ``inputs`` are the outputs of layer k-1 (``X`` for k = 1). Only the two layers run and
    only their parameters are in the optimizer, whose step count starts at ``start_step``.
    """
    logits = loss == "bce"
    params = model.layer_parameters(k)

    def forward(x):  # (B, n_{k-1}) -> (B, n_k) -> (B, n_{k-1}), inner layers bypassed
        return model.decode_layer(model.encode_layer(x, k), k, logits=logits)

    weights = [p for p in params if p.dim() == 2]  # weight matrices that are parameters, no biases
    loss_fn = reconstruction_objective(
        forward,
        loss=loss,
        corruption=phase.corruption,
        corruption_level=phase.corruption_level,
        generator=run.generator,
        criterion=model.criterion(loss, k),
        coding=dense_coding(model, k, logits=logits, generator=run.generator),
        penalties=run.penalties,
    )
    config = engine.TrainConfig(
        epochs=phase.epochs,
        batch_size=run.batch_size,
        learning_rate=phase.learning_rate,
        learning_rate_schedule="constant",
        validation_fraction=0.0,
        patience=None,
        max_grad_norm=run.max_grad_norm,
        verbose=run.verbose,
        phase=label,
        adam_start_step=start_step,
        step=run.step,
    )
    logger.info("%s: %d epochs on %d rows", label, phase.epochs, len(inputs))
    return engine.fit(
        model,
        loss_fn,
        inputs,
        params=params,
        config=config,
        generator=run.generator,
        l2_weights=weights,
        l2=phase.l2,
        callbacks=run.callbacks,
    )


@torch.no_grad()
def layer_outputs(model, inputs, k: int, batch_size: int = 4096):
    """Encoder layer ``k`` applied to ``inputs`` (outputs of layer k-1), clean, in batches.

    No gradients and no corruption: this is the frozen layer's cache for the next phase.
    A dense layer's rows stay on the device of ``inputs`` (a tensor), or on disk (a streamed
    source); in several processes each computes a part and all hold the whole
    (:func:`aekit.engine.map_rows`). A convolution's feature maps stay in this process's memory.
    """
    model.eval()
    if isinstance(model, StackedAutoencoder):  # (B, n_{k-1}) -> (B, n_k)
        return engine.map_rows(lambda h: model.encode_layer(h, k), inputs, model.layer_width(k), batch_size)
    if isinstance(inputs, engine.Streamed):
        raise ValueError("layer-wise training of a convolutional model needs its rows in memory, not on disk")
    return torch.cat([model.encode_layer(inputs[i : i + batch_size], k) for i in range(0, len(inputs), batch_size)])

"""Greedy layer-wise training of a stacked autoencoder (Géron, ch. 15; SPEC 3, 7).

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
passed up to the next phase are computed from clean inputs. Every phase, and the optional
end-to-end fine-tuning, is one call of :func:`aekit.engine.fit`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral

import torch

from . import corruption as corruption_
from . import engine
from .losses import RECONSTRUCTION_LOSSES
from .nn import StackedAutoencoder, StackedConfig
from .nn.config import DictConfig
from .objectives import clean_reconstruction, reconstruction_objective

logger = logging.getLogger(__name__)

METHODS = ("phases", "separate")
STEP_COUNTS = ("per_phase", "shared")
_PER_PHASE = ("epochs", "learning_rate", "l2", "corruption", "corruption_level")
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
    value for every phase or a sequence with one value per layer (bottom first).

    Parameters
    ----------
    method : {"phases", "separate"}
    epochs, learning_rate : int, float or sequence
        Adam's epochs and step size in each phase.
    l2 : float or sequence
        Weight of ``sum(W**2)/2`` over the weights of the phase's layers that are parameters
        (the encoder weight, plus the decoder weight when untied).
    corruption : {None, "gaussian", "masking"} or sequence
        Noise on each phase's input, during that phase only (stacked denoising autoencoder).
    corruption_level : float or sequence
        Standard deviation (``"gaussian"``) or drop rate (``"masking"``).
    batch_size : int
    fine_tune_epochs : int
        Epochs of end-to-end training of all parameters after the phases (0: none).
    fine_tune_learning_rate : float or None
        None uses a tenth of the last phase's learning rate.
    step_count : {"per_phase", "shared"}
        Each phase (and fine-tuning) gets a fresh Adam. ``"per_phase"``: each starts its step
        count at 0, as a fresh PyTorch Adam does. ``"shared"``: each starts where the previous
        phases left off, with zero moments, which is what the book's TensorFlow 1 code does
        by reusing one ``AdamOptimizer`` for every phase; the first steps of phase 2 onwards
        are then several times larger (no bias correction of the first moment).
    """

    method: str = "phases"
    epochs: int | tuple[int, ...] = 4
    learning_rate: float | tuple[float, ...] = 0.01
    l2: float | tuple[float, ...] = 0.0
    corruption: str | None | tuple[str | None, ...] = None
    corruption_level: float | tuple[float, ...] = 0.0
    batch_size: int = 150
    fine_tune_epochs: int = 0
    fine_tune_learning_rate: float | None = None
    step_count: str = "per_phase"

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown layer-wise method {self.method!r}; choose one of {METHODS}")
        if self.step_count not in STEP_COUNTS:
            raise ValueError(f"step_count must be one of {STEP_COUNTS}, got {self.step_count!r}")
        if self.batch_size < 1 or self.fine_tune_epochs < 0:
            raise ValueError(f"need batch_size >= 1 and fine_tune_epochs >= 0, got "
                             f"{self.batch_size} and {self.fine_tune_epochs}")
        if self.fine_tune_learning_rate is not None and not self.fine_tune_learning_rate > 0:
            raise ValueError(f"fine_tune_learning_rate must be > 0, got {self.fine_tune_learning_rate}")
        for name in _PER_PHASE:  # JSON gives lists; keep sequences as tuples
            value = getattr(self, name)
            if _is_sequence(value):
                setattr(self, name, tuple(value))
        self.phases(None)  # validates every value; lengths are checked against a depth later

    def phases(self, depth: int | None) -> list[PhaseSettings]:
        """One :class:`PhaseSettings` per layer of a stack of ``depth`` layers.

        Raises ``ValueError`` when a per-phase sequence does not have ``depth`` values or a
        value is out of range. ``depth=None`` only checks the values.
        """
        lengths = {n: len(getattr(self, n)) for n in _PER_PHASE if _is_sequence(getattr(self, n))}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"layer-wise settings have different numbers of phases: {lengths}")
        n = depth if depth is not None else max(lengths.values(), default=1)
        columns = [_broadcast(name, getattr(self, name), n, depth is not None) for name in _PER_PHASE]
        phases = [PhaseSettings(*row) for row in zip(*columns)]
        for k, phase in enumerate(phases, 1):
            _validate_phase(k, phase)
        return phases


@dataclass
class Objective:
    """The model's own end-to-end objective: what phase 1's loss and fine-tuning use.

    ``loss`` is the reconstruction loss of phase 1 (it reconstructs ``X``) and of fine-tuning;
    inner phases reconstruct hidden activations, which need not lie in [0, 1], so they use
    MSE. ``l2``, ``corruption`` and ``corruption_level`` apply to fine-tuning only: the phases
    take theirs from :class:`LayerwiseConfig`.
    """

    loss: str = "mse"
    l2: float = 0.0
    corruption: str | None = None
    corruption_level: float = 0.0

    def __post_init__(self):
        if self.loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(f"unknown reconstruction loss {self.loss!r}; "
                             f"choose one of {RECONSTRUCTION_LOSSES}")
        if not self.l2 >= 0:
            raise ValueError(f"l2 must be >= 0, got {self.l2}")
        corruption_.validate(self.corruption, self.corruption_level)


def _is_sequence(value) -> bool:
    return isinstance(value, (tuple, list))


def _broadcast(name: str, value, n: int, check_length: bool) -> tuple:
    if not _is_sequence(value):
        return (value,) * n
    if check_length and len(value) != n:
        raise ValueError(f"layer-wise {name} has {len(value)} values {tuple(value)}, but the "
                         f"stack has {n} layers: give one value or one per layer")
    return tuple(value)


def _validate_phase(k: int, phase: PhaseSettings) -> None:
    if isinstance(phase.epochs, bool) or not isinstance(phase.epochs, Integral) or phase.epochs < 0:
        raise ValueError(f"layer {k}: epochs must be an int >= 0, got {phase.epochs!r}")
    if not phase.learning_rate > 0 or not phase.l2 >= 0:
        raise ValueError(f"layer {k}: need learning_rate > 0 and l2 >= 0, got "
                         f"{phase.learning_rate} and {phase.l2}")
    try:
        corruption_.validate(phase.corruption, phase.corruption_level)
    except ValueError as error:
        raise ValueError(f"layer {k}: {error}") from None


# -- training --------------------------------------------------------------------------------


def train_layerwise(module: StackedAutoencoder, X, *, config: LayerwiseConfig,
                    generator: torch.Generator, objective: Objective | None = None,
                    verbose: bool = False, callbacks: Sequence[Callback] = ()) -> list[dict]:
    """Train ``module`` greedily, one layer at a time, in place; then optionally fine-tune.

    Parameters
    ----------
    module : StackedAutoencoder
        Trained on the device of its parameters; its configuration is unchanged, so the
        result saves, loads and transforms like an end-to-end model.
    X : array-like or Tensor of shape (n, n_inputs)
        Moved once to the training device.
    config : LayerwiseConfig
    generator : torch.Generator
        On the training device; seeds batch order and noise of every phase.
    objective : Objective, optional
        The model's loss (phase 1 and fine-tuning) and fine-tuning's L2 and corruption.
    verbose : bool
        A progress bar per phase.
    callbacks : sequence of callable
        Passed to every :func:`aekit.engine.fit` call (each phase and fine-tuning), so
        returning True ends the current phase early, not the whole training.

    Returns
    -------
    list of dict
        The per-epoch records of every phase in order; ``phase`` is ``"layer 1"``,
        ``"layer 2"``, ..., then ``"fine-tune"``.
    """
    objective = objective or Objective()
    phases = config.phases(module.depth)
    X = engine.as_tensor(X, next(module.parameters()).device)
    train = _train_phases if config.method == "phases" else _train_separate
    kwargs = dict(batch_size=config.batch_size, loss=objective.loss, generator=generator,
                  verbose=verbose, callbacks=callbacks, step_count=config.step_count)
    history = train(module, X, phases, **kwargs)
    if config.fine_tune_epochs:
        # a fresh Adam's first steps are about lr per weight: a tenth of the phases' rate keeps
        # them from undoing the pretrained stack (as AutoencoderTransformer does)
        learning_rate = config.fine_tune_learning_rate or phases[-1].learning_rate / 10
        fine = engine.TrainConfig(epochs=config.fine_tune_epochs, batch_size=config.batch_size,
                                  learning_rate=learning_rate, verbose=verbose, phase="fine-tune",
                                  adam_start_step=steps_so_far(history, len(X), config.batch_size,
                                                               config.step_count))
        history += fine_tune(module, X, objective=objective, config=fine, generator=generator,
                             callbacks=callbacks)
    module.eval()
    return history


def _train_phases(module: StackedAutoencoder, X: torch.Tensor, phases: list[PhaseSettings], *,
                  loss: str, step_count: str, **kwargs) -> list[dict]:
    """Method "phases": one model; phase k sees only the cached output of layer k-1."""
    history: list[dict] = []
    inputs = X  # output of layer 0; replaced (not kept) so the cache holds one layer
    for k, phase in enumerate(phases, 1):
        if k > 1:  # layer k-1 is frozen from now on: its outputs are computed once, here
            inputs = layer_outputs(module, inputs, k - 1)
        start_step = steps_so_far(history, len(X), kwargs["batch_size"], step_count)
        history += train_layer(module, k, inputs, phase, label=f"layer {k}",
                               loss=layer_loss(loss, k), start_step=start_step, **kwargs)
    return history


def _train_separate(module: StackedAutoencoder, X: torch.Tensor, phases: list[PhaseSettings], *,
                    loss: str, step_count: str, **kwargs) -> list[dict]:
    """Method "separate": one shallow autoencoder per layer, copied into the stack."""
    history: list[dict] = []
    inputs, previous = X, None
    for k, phase in enumerate(phases, 1):
        if previous is not None:  # run the training set through the previous one's hidden layer
            inputs = layer_outputs(previous, inputs, 1)
        shallow = previous = shallow_autoencoder(module, k)
        start_step = steps_so_far(history, len(X), kwargs["batch_size"], step_count)
        history += train_layer(shallow, 1, inputs, phase, label=f"layer {k}",
                               loss=layer_loss(loss, k), start_step=start_step, **kwargs)
        # encoder layers in order, output layers in reverse order (SPEC 3)
        module.encoders[k - 1].load_state_dict(shallow.encoders[0].state_dict())
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
    sizes = (cfg.n_inputs, *cfg.hidden_sizes)
    shallow_cfg = StackedConfig(
        n_inputs=sizes[k - 1], hidden_sizes=(sizes[k],), activation=cfg.layer_activation(k),
        output_activation=cfg.output_activation if k == 1 else cfg.layer_activation(k - 1),
        tied=cfg.tied)
    # a throwaway seeded generator keeps the global RNG untouched; the weights are replaced
    shallow = StackedAutoencoder(shallow_cfg, torch.Generator().manual_seed(0))
    shallow.to(next(module.parameters()).device)
    shallow.encoders[0].load_state_dict(module.encoders[k - 1].state_dict())
    shallow.decoders[0].load_state_dict(module.decoders[k - 1].state_dict())
    return shallow


def train_layer(model: StackedAutoencoder, k: int, inputs: torch.Tensor, phase: PhaseSettings, *,
                batch_size: int, loss: str, generator: torch.Generator, label: str,
                verbose: bool = False, callbacks: Sequence[Callback] = (),
                start_step: int = 0) -> list[dict]:
    """Train encoder layer ``k`` of ``model`` and its mirror to reconstruct ``inputs``.

    ``inputs`` are the outputs of layer k-1 (``X`` for k = 1). Only the two layers run and
    only their parameters are in the optimizer, whose step count starts at ``start_step``.
    """
    logits = loss == "bce"
    params = model.layer_parameters(k)

    def forward(x):  # (B, n_{k-1}) -> (B, n_k) -> (B, n_{k-1}), inner layers bypassed
        return model.decode_layer(model.encode_layer(x, k), k, logits=logits)

    weights = [p for p in params if p.dim() == 2]  # weight matrices that are parameters, no biases
    loss_fn = reconstruction_objective(
        forward, loss=loss, corruption=phase.corruption, corruption_level=phase.corruption_level,
        generator=generator, criterion=lambda noisy, clean: model.reconstruction_loss(noisy, clean, loss, k))
    config = engine.TrainConfig(epochs=phase.epochs, batch_size=batch_size,
                                learning_rate=phase.learning_rate, verbose=verbose, phase=label,
                                adam_start_step=start_step)
    logger.info("%s: %d epochs on %s", label, phase.epochs, tuple(inputs.shape))
    return engine.fit(model, loss_fn, inputs, params=params, config=config, generator=generator,
                      l2_weights=weights, l2=phase.l2, callbacks=callbacks)


@torch.no_grad()
def layer_outputs(model: StackedAutoencoder, inputs: torch.Tensor, k: int,
                  batch_size: int = 4096) -> torch.Tensor:
    """Encoder layer ``k`` applied to ``inputs`` (outputs of layer k-1), clean, in batches.

    No gradients and no corruption: this is the frozen layer's cache for the next phase.
    It stays on the device of ``inputs``.
    """
    model.eval()
    return torch.cat([model.encode_layer(inputs[i:i + batch_size], k)  # (B, n_{k-1}) -> (B, n_k)
                      for i in range(0, len(inputs), batch_size)])


def fine_tune(module: StackedAutoencoder, X, *, objective: Objective, config: engine.TrainConfig,
              generator: torch.Generator, callbacks: Sequence[Callback] = ()) -> list[dict]:
    """End-to-end training of all parameters with the model's own objective.

    This is end-to-end training itself (``AutoencoderTransformer`` calls it for
    ``training="end_to_end"`` too): reconstruction plus L2 over every weight matrix that is a
    parameter, with the model's corruption; the validation loss (when
    ``config.validation_fraction > 0``) is the clean reconstruction.
    """
    logits = objective.loss == "bce"

    def forward(x):  # (B, n_inputs) -> (B, n_code) -> (B, n_inputs)
        return module.decode(module.encode(x), logits=logits)

    loss_fn = reconstruction_objective(
        forward, loss=objective.loss, corruption=objective.corruption,
        corruption_level=objective.corruption_level, generator=generator,
        criterion=lambda noisy, clean: module.reconstruction_loss(noisy, clean, objective.loss))
    return engine.fit(module, loss_fn, X, params=list(module.parameters()), config=config,
                      generator=generator, eval_fn=clean_reconstruction(forward, objective.loss),
                      l2_weights=module.weight_matrices(), l2=objective.l2, callbacks=callbacks)

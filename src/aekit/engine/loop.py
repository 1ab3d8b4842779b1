"""The one training loop every fit in aekit goes through.

:func:`fit` trains a module by minimising a loss function over batches of a source
(:mod:`aekit.engine.data`). A step returns its loss and the loss's parts; they are summed on the
device and read once per epoch, so the hot loop never waits for a ``.item()``.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from ..losses import l2_penalty
from . import checkpoint, distributed
from .data import Source, source_of
from .guard import Guard
from .optim import clip_gradients, learning_rate_at, make_optimizer, set_learning_rate
from .runtime import denormals_flushed
from .settings import TrainConfig
from .step import eager_step, make_step

logger = logging.getLogger(__name__)

# loss_fn(batch) -> (loss to minimise, {part name: detached or not tensor})
LossFn = Callable[[object], tuple[torch.Tensor, dict[str, torch.Tensor]]]
EvalFn = Callable[[object], torch.Tensor]


@dataclass
class EarlyStopping:
    """Tracks the best validation loss and the weights that gave it."""

    patience: int
    best: float = math.inf
    best_state: dict | None = None
    bad_epochs: int = 0

    def update(self, module: nn.Module, val_loss: float) -> bool:
        """Record this epoch; return True when training should stop."""
        if val_loss < self.best:
            self.best, self.bad_epochs = val_loss, 0
            self.best_state = copy.deepcopy(module.state_dict())
            return False
        self.bad_epochs += 1
        return self.bad_epochs >= self.patience


def run_epoch(
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    source: Source,
    batch_size: int,
    generator: torch.Generator,
    step: Callable | None = None,
) -> dict[str, float]:
    """One pass over a fresh order of ``source``; returns the mean of each loss part.
    ``step(batch) -> parts`` runs one step (default: :func:`~.step.eager_step`)."""
    step = step or eager_step(loss_fn, optimizer)
    sums: dict[str, torch.Tensor] = {}
    n_batches = source.steps(batch_size)
    for batch in source.epoch(batch_size, generator):
        parts = step(batch)
        for name, value in parts.items():
            value = value.detach()
            # a copy to start from: a captured step writes its next parts into the same tensors
            sums[name] = sums[name] + value if name in sums else value.clone()
    return {name: float(total) / n_batches for name, total in sums.items()}


@torch.no_grad()
def evaluate(eval_fn: EvalFn, source: Source, batch_size: int = 4096, reduce: Callable | None = None) -> float:
    """Mean of ``eval_fn`` over every row of ``source`` (row-weighted), without gradients;
    ``reduce(total, rows)`` sums them over processes that each hold part of the rows."""
    total, rows = 0.0, 0
    for chunk, n in source.chunks(batch_size):
        total += float(eval_fn(chunk)) * n
        rows += n
    if reduce is not None:
        total, rows = reduce(total, rows)
    return total / rows


def fit(
    module: nn.Module,
    loss_fn: LossFn,
    data,
    *,
    params: Sequence[nn.Parameter],
    config: TrainConfig,
    generator: torch.Generator,
    eval_fn: EvalFn | None = None,
    l2_weights: Sequence[nn.Parameter] = (),
    l2: float = 0.0,
    callbacks: Sequence[Callable[[dict], bool | None]] = (),
) -> list[dict]:
    """Train ``module`` by minimising ``loss_fn`` over the rows of ``data``.

    Under torchrun (:func:`~.distributed.world`) every process calls ``fit`` alike: each
    trains on its part of every batch, the gradients are summed, and all end with the same
    history and weights. ``config.step`` says how each step runs (:mod:`.step`).

    Parameters
    ----------
    module : torch.nn.Module
        Put in training mode during epochs and evaluation mode for validation; with early
        stopping its best weights are restored at the end.
    loss_fn : callable
        ``loss_fn(batch) -> (loss, parts)``; ``parts`` maps names (``"reconstruction"``,
        ``"l2"``, ...) to scalar tensors that are averaged into the history.
    data : array-like, Tensor of shape (n, d), or a source (:mod:`aekit.engine.data`)
        The training data; an array or tensor is moved once to the device of ``module``'s
        parameters, rows on disk (:func:`aekit.datasets.on_disk`) are streamed.
    params : sequence of Parameter
        The parameters to train. Anything not listed is frozen: this is how layer-wise phases
        and classifiers freeze lower layers.
    config : TrainConfig
    generator : torch.Generator
        Seeds the batch order and the validation split (and, through ``loss_fn``, the noise),
        so the same seed gives the same weights.
    eval_fn : callable, optional
        ``eval_fn(batch) -> loss`` on clean data for the validation loss; default ``loss_fn``.
    l2_weights, l2 : sequence of Parameter, float
        L2 regularisation ``l2 * sum(||W||^2) / 2`` of these trainable weights, applied through
        the optimizer (see :func:`~aekit.engine.make_optimizer`); the history's ``l2`` part is
        the penalty at the end of each epoch, and ``loss`` includes it.
    callbacks : sequence of callable
        Called with each epoch's record; returning True stops training. A callback with an
        ``on_fit_start(module, config)`` method is first called with it (e.g. to draw
        reconstructions, or log the constant learning rate). Callbacks must not draw from
        torch's random streams (a resumed run would differ).

    Returns
    -------
    list of dict
        One record per epoch: ``phase``, ``epoch``, ``loss`` and its parts, ``seconds``, with
        validation ``val_loss``, and with a schedule the epoch's ``learning_rate``.

    Raises
    ------
    DivergenceError
        When a loss or a weight stops being finite (:mod:`aekit.engine.guard`).

    Notes
    -----
    Under :func:`aekit.engine.checkpoint.recording`, the call is a stage of a recorded run:
    it is snapshotted at the end of every epoch, and a resumed run skips or continues it.
    """
    params = list(params)
    if not params:
        raise ValueError("no trainable parameters: everything is frozen")
    stage = checkpoint.begin(module, params, config, generator)  # None unless a run is recorded
    if stage is not None and stage.skipped is not None:
        return stage.skipped  # a resumed run had finished this stage; its weights are back
    world = distributed.world()
    device = params[0].device
    train, validation = source_of(data, device, params[0].dtype).split(config.validation_fraction, generator)
    batch_size = min(config.batch_size, len(train))
    train, validation = world.shard(train), world.shard(validation)
    l2_weights = [w for w in l2_weights if any(w is p for p in params)]
    optimizer = make_optimizer(params, config.learning_rate, l2_weights, l2, config.adam_start_step)
    stopper = EarlyStopping(config.patience) if (config.patience and validation is not None) else None
    eval_fn = eval_fn or (lambda batch, loss_fn=loss_fn: loss_fn(batch)[0])  # this loss_fn, not the rank's
    loss_fn, eval_fn = world.synchronise(loss_fn, eval_fn, params, optimizer, batch_size, generator)
    world.broadcast_module(module)  # rank 0's weights: every rank starts alike
    if config.max_grad_norm is not None:  # after synchronise: the summed gradients are clipped
        clip_gradients(optimizer, config.max_grad_norm)
    guard = Guard(config.phase, config.learning_rate, config.max_grad_norm)
    if config.step is None or not (config.step.compile or config.step.cuda_graphs):
        loss_fn = guard.watch(loss_fn)  # a compiled or captured step is checked once an epoch
    step = None if config.step is None else make_step(loss_fn, optimizer, config.step, device, [generator], world.size)
    for callback in callbacks:
        getattr(callback, "on_fit_start", lambda module, config: None)(module, config)
    history: list[dict] = []
    first = 0 if stage is None else stage.restore(optimizer, stopper, history)
    bar = tqdm(
        range(first, config.epochs),
        initial=first,
        total=config.epochs,
        desc=config.phase,
        disable=not config.verbose,
        unit="epoch",
    )
    for epoch in bar:
        learning_rate = learning_rate_at(config, epoch)
        set_learning_rate(optimizer, learning_rate)
        guard.start_epoch(epoch)
        record = world.average(train_one_epoch(module, loss_fn, optimizer, train, batch_size, generator, step))
        record = {"phase": config.phase, "epoch": epoch + 1, **record}
        if config.learning_rate_schedule != "constant":
            record["learning_rate"] = learning_rate
        if l2 and l2_weights:
            record["l2"] = l2 * float(l2_penalty(w.detach() for w in l2_weights))
            record["loss"] += record["l2"]
        if validation is not None:
            module.eval()
            record["val_loss"] = evaluate(eval_fn, validation, reduce=world.total)
        guard.check(record, params)
        history.append(record)
        bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if "loss" in k})
        logger.debug("%s", record)
        stop = world.any(any(callback(record) for callback in callbacks))
        if stopper is not None and stopper.update(module, record["val_loss"]):
            stop = True
        if stage is not None:
            stage.epoch_end(optimizer, stopper, history, stop)
        if stop:
            break
    if stopper is not None and stopper.best_state is not None:
        module.load_state_dict(stopper.best_state)
    module.eval()
    if stage is not None:
        stage.end(history)
    return history


def train_one_epoch(module, loss_fn, optimizer, source, batch_size, generator, step=None) -> dict:
    """``run_epoch`` in training mode, timed, with denormals flushed to zero (see
    :func:`~aekit.engine.runtime.denormals_flushed`)."""
    module.train()
    start = time.perf_counter()
    with denormals_flushed():
        parts = run_epoch(loss_fn, optimizer, source, batch_size, generator, step)
    return {**parts, "seconds": time.perf_counter() - start}

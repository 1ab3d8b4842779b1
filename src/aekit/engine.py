"""The one training loop every fit in aekit goes through.

The data lives in one tensor on the training device; each epoch draws a permutation and the
batches are slices of it, so there is no DataLoader and no per-sample Python. A step returns
its loss and the loss's parts; they are summed on the device and read once per epoch, so the
hot loop never waits for a ``.item()``. Shapes are static: every batch has exactly
``batch_size`` rows (the remainder of each epoch's permutation is dropped; a new permutation
next epoch means every row is still seen), which is what CUDA-graph capture needs.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .losses import l2_penalty
from .params import Device, Flag, Interval, Maybe, Options, Param, Seed, validate

logger = logging.getLogger(__name__)

# loss_fn(batch) -> (loss to minimise, {part name: detached or not tensor})
LossFn = Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]]
EvalFn = Callable[[torch.Tensor], torch.Tensor]


LEARNING_RATE_SCHEDULES = ("constant", "cosine")

# The training settings every estimator shares: allowed values and meaning, declared once.
EPOCHS = Param(Interval(int, 0), "Passes over the training rows.")
BATCH_SIZE = Param(
    Interval(int, 1),
    "Rows per training step; the remainder of each epoch's "
    "shuffled rows is left out of that epoch (every batch has the same shape).",
)
LEARNING_RATE = Param(Interval(float, 0, closed="neither"), "Adam's step size.", flags=("--learning-rate", "--lr"))
LEARNING_RATE_SCHEDULE = Param(
    Options(*LEARNING_RATE_SCHEDULES),
    "'constant', or 'cosine': the step size is annealed from "
    "learning_rate towards 0 over the epochs (Loshchilov & Hutter 2017), so long runs settle "
    "into a minimum instead of bouncing around it.",
    flags=("--learning-rate-schedule", "--lr-schedule"),
)
VALIDATION_FRACTION = Param(
    Interval(float, 0, 1, closed="left"),
    "Fraction of the training rows held out (a random split) to compute the validation loss each epoch; 0: none.",
)
PATIENCE = Param(
    Maybe(Interval(int, 1)),
    "Stop after this many epochs without improvement of the "
    "validation loss and keep the best weights (needs validation_fraction > 0); "
    "None: never stop early.",
)
DEVICE = Param(Device(), "Where to train: 'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:N'.")
RANDOM_STATE = Param(
    Seed(),
    "Seeds initialisation, batch order and noise: the same seed gives the same weights on the CPU.",
    flags=("--random-state", "--seed"),
)
VERBOSE = Param(Flag(), "Show progress bars.", flags=())


@dataclass
class TrainConfig:
    """How to train: the settings of :func:`fit` that are not the model, loss or data.

    The first six come from an estimator, which has checked them; ``__post_init__`` checks
    them again with the same rules for callers of the engine itself.
    """

    epochs: int = EPOCHS.field()
    batch_size: int = BATCH_SIZE.field()
    learning_rate: float = LEARNING_RATE.field()
    learning_rate_schedule: str = LEARNING_RATE_SCHEDULE.field()
    validation_fraction: float = VALIDATION_FRACTION.field()
    patience: int | None = PATIENCE.field()
    verbose: bool = False
    phase: str = "train"  # label written into every history record
    # Adam's bias correction starts as if this many steps had been taken (see make_optimizer)
    adam_start_step: int = 0

    def __post_init__(self):
        validate(self)


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


def make_optimizer(
    params: Sequence[nn.Parameter],
    learning_rate: float,
    l2_weights: Sequence[nn.Parameter] = (),
    l2: float = 0.0,
    start_step: int = 0,
) -> torch.optim.Optimizer:
    """Adam with the fused kernel (one kernel for all parameters); foreach where fused is unavailable.

    L2 regularisation of ``l2_weights`` is Adam's (coupled) ``weight_decay``: it adds ``l2 * W``
    to the gradient, which is exactly the gradient of ``l2 * ||W||^2 / 2``, inside the fused
    kernel, instead of five extra passes over the weights per step in autograd.

    ``start_step > 0`` starts every parameter's moments at zero but its step count at
    ``start_step``, so the first steps are not bias-corrected as a fresh Adam's are: what
    TensorFlow 1's Adam does when one optimizer trains several phases, as in the book's
    layer-wise code (its step count lives in the optimizer, its moments per variable).
    """
    decayed = {id(w) for w in l2_weights} if l2 else set()
    groups = [
        {"params": [p for p in params if id(p) in decayed], "weight_decay": l2},
        {"params": [p for p in params if id(p) not in decayed], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    try:
        optimizer = torch.optim.Adam(groups, lr=learning_rate, fused=True)
    except (RuntimeError, TypeError):  # e.g. a device or dtype the fused kernel lacks
        optimizer = torch.optim.Adam(groups, lr=learning_rate, foreach=True)
    if start_step:
        _start_adam_at_step(optimizer, start_step)
    return optimizer


def _start_adam_at_step(optimizer: torch.optim.Adam, step: int) -> None:
    """Adam's state as its lazy initialisation makes it, except the step count."""
    for group in optimizer.param_groups:
        fused = bool(group["fused"])
        for p in group["params"]:
            # the step lives where torch's Adam keeps it: on the device when fused, else the CPU
            optimizer.state[p] = {
                "step": torch.tensor(
                    float(step),
                    dtype=torch.float32 if fused else torch.get_default_dtype(),
                    device=p.device if fused or group["capturable"] else "cpu",
                ),
                "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
            }


def learning_rate_at(config: TrainConfig, epoch: int) -> float:
    """The step size for 0-based ``epoch``: constant, or cosine-annealed from the configured
    rate towards 0 at the end of ``config.epochs`` (Loshchilov & Hutter 2017, one cycle, no
    restart): long runs settle into a minimum instead of bouncing around it at a fixed rate."""
    if config.learning_rate_schedule == "cosine":
        return config.learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))
    return config.learning_rate


def set_learning_rate(optimizer: torch.optim.Optimizer, learning_rate: float) -> None:
    """Every parameter group's step size (a float, so the fused kernel takes it as it is)."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate


def as_tensor(X, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The data as one contiguous tensor on ``device`` (no copy when it already is one)."""
    X = X if torch.is_tensor(X) else torch.from_numpy(np.ascontiguousarray(X))
    return X.to(device=device, dtype=dtype).contiguous()


def split_validation(X: torch.Tensor, fraction: float, generator: torch.Generator):
    """Random (train, validation) split of the rows of ``X``; no validation when fraction is 0."""
    if fraction == 0:
        return X, None
    n_val = max(1, int(round(fraction * len(X))))
    if n_val >= len(X):
        raise ValueError(f"validation_fraction={fraction} leaves no training rows out of {len(X)}")
    perm = torch.randperm(len(X), generator=generator, device=generator.device).to(X.device)
    return X[perm[n_val:]], X[perm[:n_val]]


def run_epoch(
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    X: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
) -> dict[str, float]:
    """One pass over a fresh permutation of ``X``; returns the mean of each loss part."""
    n_batches = len(X) // batch_size
    perm = torch.randperm(len(X), generator=generator, device=generator.device).to(X.device)
    sums: dict[str, torch.Tensor] = {}
    for i in range(n_batches):
        batch = X.index_select(0, perm[i * batch_size : (i + 1) * batch_size])
        loss, parts = loss_fn(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for name, value in parts.items():
            value = value.detach()
            sums[name] = sums[name] + value if name in sums else value
    return {name: float(total) / n_batches for name, total in sums.items()}


@torch.no_grad()
def evaluate(eval_fn: EvalFn, X: torch.Tensor, batch_size: int = 4096) -> float:
    """Mean of ``eval_fn`` over ``X`` (row-weighted), in batches, without gradients."""
    total = 0.0
    for start in range(0, len(X), batch_size):
        batch = X[start : start + batch_size]
        total += float(eval_fn(batch)) * len(batch)
    return total / len(X)


def fit(
    module: nn.Module,
    loss_fn: LossFn,
    X,
    *,
    params: Sequence[nn.Parameter],
    config: TrainConfig,
    generator: torch.Generator,
    eval_fn: EvalFn | None = None,
    l2_weights: Sequence[nn.Parameter] = (),
    l2: float = 0.0,
    callbacks: Sequence[Callable[[dict], bool | None]] = (),
) -> list[dict]:
    """Train ``module`` by minimising ``loss_fn`` over the rows of ``X``.

    Parameters
    ----------
    module : torch.nn.Module
        Put in training mode during epochs and evaluation mode for validation; with early
        stopping its best weights are restored at the end.
    loss_fn : callable
        ``loss_fn(batch) -> (loss, parts)``; ``parts`` maps names (``"reconstruction"``,
        ``"l2"``, ...) to scalar tensors that are averaged into the history.
    X : array-like or Tensor of shape (n, d)
        The training data; it is moved once to the device of ``module``'s parameters.
    params : sequence of Parameter
        The parameters to train. Anything not listed is frozen: this is how layer-wise phases
        and classifiers freeze lower layers.
    config : TrainConfig
    generator : torch.Generator
        Seeds the permutations and the validation split (and, through ``loss_fn``, the noise),
        so the same seed gives the same weights.
    eval_fn : callable, optional
        ``eval_fn(batch) -> loss`` on clean data for the validation loss; default ``loss_fn``.
    l2_weights, l2 : sequence of Parameter, float
        L2 regularisation ``l2 * sum(||W||^2) / 2`` of these trainable weights, applied through
        the optimizer (see :func:`make_optimizer`); the history's ``l2`` part is the penalty at
        the end of each epoch, and ``loss`` includes it.
    callbacks : sequence of callable
        Called with each epoch's record; returning True stops training.

    Returns
    -------
    list of dict
        One record per epoch: ``phase``, ``epoch``, ``loss`` and its parts, ``seconds``, with
        validation ``val_loss``, and with a schedule the epoch's ``learning_rate``.
    """
    params = list(params)
    if not params:
        raise ValueError("no trainable parameters: everything is frozen")
    device = params[0].device
    X = as_tensor(X, device, params[0].dtype)  # float64 models (reference tests) get float64 data
    X_train, X_val = split_validation(X, config.validation_fraction, generator)
    batch_size = min(config.batch_size, len(X_train))
    l2_weights = [w for w in l2_weights if any(w is p for p in params)]
    optimizer = make_optimizer(params, config.learning_rate, l2_weights, l2, config.adam_start_step)
    stopper = EarlyStopping(config.patience) if (config.patience and X_val is not None) else None
    eval_fn = eval_fn or (lambda batch: loss_fn(batch)[0])
    history: list[dict] = []
    bar = tqdm(range(config.epochs), desc=config.phase, disable=not config.verbose, unit="epoch")
    for epoch in bar:
        learning_rate = learning_rate_at(config, epoch)
        set_learning_rate(optimizer, learning_rate)
        record = train_one_epoch(module, loss_fn, optimizer, X_train, batch_size, generator)
        record = {"phase": config.phase, "epoch": epoch + 1, **record}
        if config.learning_rate_schedule != "constant":
            record["learning_rate"] = learning_rate
        if l2 and l2_weights:
            record["l2"] = l2 * float(l2_penalty(w.detach() for w in l2_weights))
            record["loss"] += record["l2"]
        if X_val is not None:
            module.eval()
            record["val_loss"] = evaluate(eval_fn, X_val)
        history.append(record)
        bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if "loss" in k})
        logger.debug("%s", record)
        stop = any(callback(record) for callback in callbacks)
        if stopper is not None and stopper.update(module, record["val_loss"]):
            stop = True
        if stop:
            break
    if stopper is not None and stopper.best_state is not None:
        module.load_state_dict(stopper.best_state)
    module.eval()
    return history


def train_one_epoch(module, loss_fn, optimizer, X, batch_size, generator) -> dict:
    """``run_epoch`` in training mode, timed."""
    module.train()
    start = time.perf_counter()
    parts = run_epoch(loss_fn, optimizer, X, batch_size, generator)
    return {**parts, "seconds": time.perf_counter() - start}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU; anything else is passed to torch."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested but CUDA is not available")
    return device


def make_generators(random_state, device: torch.device) -> tuple[torch.Generator, torch.Generator]:
    """(CPU generator for initialisation, device generator for batches and noise), both seeded
    from ``random_state`` (None, an int or a ``numpy.random.RandomState``, as scikit-learn)."""
    from sklearn.utils import check_random_state

    seed = int(check_random_state(random_state).randint(0, 2**31 - 1))
    init = torch.Generator().manual_seed(seed)
    train = torch.Generator(device=device).manual_seed(seed + 1)
    return init, train

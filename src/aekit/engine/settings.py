"""The training settings every estimator shares, each declared once (allowed values, meaning,
flags), and :class:`TrainConfig`, the engine's settings of one training run."""

from __future__ import annotations

from dataclasses import dataclass

from ..params import Device, Flag, Interval, Maybe, Options, Param, Seed, validate
from .step import StepOptions

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
    # how each step runs (compiled, captured in a CUDA graph, precision); None: eager float32
    step: StepOptions | None = None

    def __post_init__(self):
        validate(self)

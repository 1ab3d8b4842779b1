"""The training settings every estimator shares, each declared once (allowed values, meaning,
flags), and :class:`TrainConfig`, the engine's settings of one training run."""

from __future__ import annotations

from dataclasses import dataclass

from ..params import Device, Flag, Interval, Maybe, Options, Param, Seed, validate
from .step import StepOptions

LEARNING_RATE_SCHEDULES = ("constant", "cosine", "linear")

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
    "into a minimum instead of bouncing around it; or 'linear': constant for the first "
    "learning_rate_decay_start of the epochs, then decreased linearly to 0 at the end (the "
    "Ladder network's schedule, Rasmus et al. 2015).",
    flags=("--learning-rate-schedule", "--lr-schedule"),
)
LEARNING_RATE_DECAY_START = Param(
    Interval(float, 0, 1, closed="left"),
    "With learning_rate_schedule='linear': the fraction of the epochs run at learning_rate "
    "before the linear decay to 0 begins (Rasmus et al. 2015: 100 of 150 epochs).",
    flags=("--learning-rate-decay-start", "--lr-decay-start"),
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
MAX_GRAD_NORM = Param(
    Maybe(Interval(float, 0, closed="neither")),
    "Clip the gradient of the loss to this global L2 norm before each step "
    "(L2 weight decay is added inside the optimizer, after clipping); None: no clipping.",
)


@dataclass
class TrainConfig:
    """How to train: the settings of :func:`fit` that are not the model, loss or data.

    The first seven come from an estimator, which has checked them; ``__post_init__`` checks
    them again with the same rules for callers of the engine itself.
    """

    epochs: int = EPOCHS.field()
    batch_size: int = BATCH_SIZE.field()
    learning_rate: float = LEARNING_RATE.field()
    learning_rate_schedule: str = LEARNING_RATE_SCHEDULE.field()
    validation_fraction: float = VALIDATION_FRACTION.field()
    patience: int | None = PATIENCE.field()
    max_grad_norm: float | None = MAX_GRAD_NORM.field()
    verbose: bool = False
    phase: str = "train"  # label written into every history record
    # Adam's bias correction starts as if this many steps had been taken (see make_optimizer)
    adam_start_step: int = 0
    # only the 'linear' schedule reads it, and then it must be given (None: not given)
    learning_rate_decay_start: float | None = LEARNING_RATE_DECAY_START.but(
        constraint=Maybe(LEARNING_RATE_DECAY_START.constraint)
    ).field(None)
    # how each step runs (compiled, captured in a CUDA graph, precision); None: eager float32
    step: StepOptions | None = None

    def __post_init__(self):
        validate(self)
        if self.learning_rate_schedule == "linear" and self.learning_rate_decay_start is None:
            raise ValueError("learning_rate_schedule='linear' needs a learning_rate_decay_start")

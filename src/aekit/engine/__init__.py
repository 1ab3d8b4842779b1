"""aekit's training engine: the one loop every fit goes through (:mod:`.loop`), the sources its
batches come from (:mod:`.data`), the optimiser and schedule (:mod:`.optim`), the shared
training settings (:mod:`.settings`) and the device and seeds (:mod:`.runtime`)."""

from .data import DynamicBinarized, InMemory, SemiSupervised, Source, as_tensor, source_of
from .guard import DivergenceError
from .loop import EarlyStopping, EvalFn, LossFn, evaluate, fit, run_epoch, train_one_epoch
from .optim import clip_gradients, learning_rate_at, linear_decay, make_optimizer, set_learning_rate
from .runtime import make_generators, resolve_device
from .settings import (
    BATCH_SIZE,
    DEVICE,
    EPOCHS,
    LEARNING_RATE,
    LEARNING_RATE_DECAY_START,
    LEARNING_RATE_SCHEDULE,
    LEARNING_RATE_SCHEDULES,
    MAX_GRAD_NORM,
    PATIENCE,
    RANDOM_STATE,
    VALIDATION_FRACTION,
    VERBOSE,
    TrainConfig,
)

__all__ = [
    "BATCH_SIZE",
    "DEVICE",
    "DivergenceError",
    "DynamicBinarized",
    "EPOCHS",
    "EarlyStopping",
    "EvalFn",
    "InMemory",
    "LEARNING_RATE",
    "LEARNING_RATE_DECAY_START",
    "LEARNING_RATE_SCHEDULE",
    "LEARNING_RATE_SCHEDULES",
    "LossFn",
    "MAX_GRAD_NORM",
    "PATIENCE",
    "RANDOM_STATE",
    "SemiSupervised",
    "Source",
    "TrainConfig",
    "VALIDATION_FRACTION",
    "VERBOSE",
    "as_tensor",
    "clip_gradients",
    "evaluate",
    "fit",
    "learning_rate_at",
    "linear_decay",
    "make_generators",
    "make_optimizer",
    "resolve_device",
    "run_epoch",
    "set_learning_rate",
    "source_of",
    "train_one_epoch",
]

"""aekit's training engine: the one loop every fit goes through (:mod:`.loop`), the sources its
batches come from (:mod:`.data`, rows on disk: :mod:`.streaming`), how a step runs
(:mod:`.step`), training in several processes (:mod:`.distributed`, :mod:`.sharding`), frozen
layers' caches (:mod:`.cache`), the optimiser and schedule (:mod:`.optim`), the shared training
settings (:mod:`.settings`) and the device and seeds (:mod:`.runtime`)."""

from ..datasets import on_disk
from .cache import map_rows
from .data import DynamicBinarized, InMemory, SemiSupervised, Source, as_tensor, source_of, training_rows
from .distributed import DistributedError, World, init_distributed, world
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
from .step import COMPILE, CUDA_GRAPHS, PRECISION, StepOptions
from .streaming import Streamed

__all__ = [
    "BATCH_SIZE",
    "COMPILE",
    "CUDA_GRAPHS",
    "DEVICE",
    "DistributedError",
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
    "PRECISION",
    "RANDOM_STATE",
    "SemiSupervised",
    "Source",
    "StepOptions",
    "Streamed",
    "TrainConfig",
    "VALIDATION_FRACTION",
    "VERBOSE",
    "World",
    "as_tensor",
    "clip_gradients",
    "evaluate",
    "fit",
    "init_distributed",
    "learning_rate_at",
    "linear_decay",
    "make_generators",
    "make_optimizer",
    "map_rows",
    "on_disk",
    "resolve_device",
    "run_epoch",
    "set_learning_rate",
    "source_of",
    "train_one_epoch",
    "training_rows",
    "world",
]

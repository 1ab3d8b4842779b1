"""What aekit's estimators share: a parameter table checked before ``fit`` touches the data,
estimators given as parameters (with nested parameters ``autoencoder__l2``), the training
settings, and inference in batches.

An estimator class is declared with :func:`estimator`: a dataclass whose fields are made by
:meth:`aekit.params.Param.field`, so its ``__init__`` only stores its arguments (as
scikit-learn requires) and its table is the list of those fields.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.utils import check_array, check_consistent_length, check_random_state, column_or_1d
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import engine, params
from ..datasets import on_disk
from ..datasets.shards import iter_blocks
from ..nn import ACTIVATIONS
from .labels import check_labels, labelled_mask

# class name -> estimator class: what aekit.io can save and load
ESTIMATORS: dict[str, type] = {}

# model settings that more than one estimator has
HIDDEN_LAYER_SIZES = params.Param(
    params.Sizes(),
    "Encoder widths, bottom first; the last is the coding layer. The decoder mirrors them.",
    flags=("--hidden",),
)
ACTIVATION = params.Param(params.Options(*ACTIVATIONS), "Activation of the hidden layers.")
WARM_START = params.Param(
    params.Flag(),
    "fit continues training the fitted network (history_ and n_iter_ grow) instead of "
    "building a new one; the parameters must still describe the same network.",
    flags=(),
)
CALLBACKS = params.Param(
    params.Callables(),
    "Called with each epoch's record (a dict: phase, epoch, loss, ...) of every phase; one "
    "returning True ends that phase. clone deep-copies them, pickle keeps them, aekit.io does "
    "not save them.",
    flags=(),
    saved=False,
)


def estimator(cls):
    """Class decorator: ``cls`` becomes a dataclass over its parameter table (keyword-only
    unless a field says otherwise; scikit-learn's own ``repr`` and identity equality kept), its
    docstring gets the table's Parameters section, and :mod:`aekit.io` learns its name."""
    cls = dataclasses.dataclass(eq=False, repr=False, kw_only=True)(cls)
    ESTIMATORS[cls.__name__] = cls
    return params.with_parameters_doc(cls)


def unwrap(value):
    """The estimator inside a :class:`~sklearn.frozen.FrozenEstimator`, else ``value`` itself."""
    return value.estimator if isinstance(value, FrozenEstimator) else value


def is_fitted(est) -> bool:
    try:
        check_is_fitted(est)
    except NotFittedError:
        return False
    return True


class AekitEstimator(BaseEstimator):
    """Base of aekit's estimators.

    ``_components`` maps the name of a parameter that holds an estimator to the factory of
    its default (used when the parameter is None): ``get_params(deep=True)`` lists the
    default's parameters under ``name__``, and setting one of them puts a default instance
    in place first, so ``GridSearchCV`` can tune ``autoencoder__l2`` without anyone building
    the autoencoder by hand.
    """

    _components: dict[str, Callable[[], BaseEstimator]] = {}
    # learned attributes (besides module_) that aekit.io writes to config.json
    _fitted_attributes = ("n_features_in_", "n_iter_", "history_", "feature_names_in_")

    # -- parameters ----------------------------------------------------------------------------
    def _validate_params(self) -> None:
        """Check every parameter, alone and together, before any data is looked at."""
        params.validate(self)
        self._check_params_together()

    def _check_params_together(self) -> None:
        """Rules between parameters; subclasses add theirs."""

    def component(self, name: str):
        """The estimator parameter ``name`` stands for: its value (unwrapped from a
        FrozenEstimator), or a new default instance when it is None."""
        value = unwrap(getattr(self, name))
        return self._components[name]() if value is None else value

    def get_params(self, deep: bool = True) -> dict:
        out = super().get_params(deep=False)
        if deep:
            for name, value in list(out.items()):
                if name in self._components and value is None:
                    value = self._components[name]()
                if hasattr(value, "get_params") and not isinstance(value, type):
                    out.update((f"{name}__{key}", v) for key, v in value.get_params(deep=True).items())
        return out

    def set_params(self, **values):
        for name, factory in self._components.items():
            if getattr(self, name) is None and any(key.startswith(name + "__") for key in values):
                setattr(self, name, factory())  # a default instance, to set its parameters on
        return super().set_params(**values)

    def _fitted_component(self, name: str, X, seed: int, prefit="auto"):
        """The fitted estimator of component ``name`` for data ``X``.

        A FrozenEstimator is used as it is; otherwise ``prefit`` says: ``"auto"`` uses a fitted
        instance as it is and fits a clone of an unfitted one, True requires a fitted one,
        False always fits a clone. A clone trains on this estimator's ``device`` with its
        ``verbose``, and is seeded with ``seed`` unless it has a ``random_state`` of its own.
        """
        value = getattr(self, name)
        inner = self.component(name)
        if isinstance(value, FrozenEstimator) or prefit is True or (prefit == "auto" and is_fitted(inner)):
            check_is_fitted(inner, msg=f"prefit={prefit!r} needs a fitted {name}; fit it first or pass prefit=False")
            n_features = int(np.prod(X.shape[1:]))  # images count their pixels
            if inner.n_features_in_ != n_features:
                raise ValueError(f"the {name} was fitted on {inner.n_features_in_} features, X has {n_features}")
            return inner
        inner = clone(inner)
        own = inner.get_params(deep=False)
        inner.set_params(**{k: getattr(self, k) for k in ("device", "verbose") if k in own and hasattr(self, k)})
        if getattr(self, "callbacks", ()):  # the whole run's epochs, pretraining included
            inner.set_params(callbacks=(*inner.callbacks, *self.callbacks))
        if inner.random_state is None:
            inner.set_params(random_state=seed)
        return inner.fit(X)

    def _check_fitted(self) -> None:
        """Raise ``ValueError`` when a learned attribute contradicts ``module_`` (:mod:`aekit.io`
        checks what it loads with it)."""
        n_inputs, n = self.module_.config.n_inputs, getattr(self, "n_features_in_", None)
        if not params.is_int(n) or n != n_inputs:
            raise ValueError(f"n_features_in_={n!r}, but the network has {n_inputs} inputs")
        names = getattr(self, "feature_names_in_", None)
        if names is not None and (names.shape != (n,) or not all(isinstance(v, str) for v in names)):
            raise ValueError(f"feature_names_in_ should be {n} strings, got {names.tolist()!r}"[:200])
        n_iter = getattr(self, "n_iter_", 0)
        if not params.is_int(n_iter) or n_iter < 0:
            raise ValueError(f"n_iter_={n_iter!r} is not a count of epochs")
        history = getattr(self, "history_", [])
        if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
            raise ValueError("history_ should be a list of records (objects)")

    def _warm_module(self, config, device: torch.device) -> torch.nn.Module:
        """A copy of the fitted ``module_`` for ``warm_start`` to train on (the fitted one stays
        as it is until training succeeds); ``config`` is the network the parameters describe."""
        if self.module_.config != config:
            raise params.InvalidParameterError(
                f"warm_start=True continues training the fitted network {self.module_.config}, but the "
                f"parameters now describe {config}; set warm_start=False to build a new network"
            )
        return copy.deepcopy(self.module_).to(device)

    # -- running -------------------------------------------------------------------------------
    def _seeds(self, n: int) -> list[int]:
        """``n`` seeds drawn from ``random_state``: one stream for everything a fit seeds."""
        return [int(s) for s in check_random_state(self.random_state).randint(0, 2**31 - 1, size=n)]

    def _apply(self, fn, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """``fn`` over the rows of ``X`` in evaluation mode, on ``module_``'s device; numpy out."""
        return apply_in_batches(self.module_, fn, X, batch_size)

    def _check_rows(self, X, *, reset: bool):
        """``X`` checked as ``validate_data(self, X, dtype=np.float32, reset=reset)`` checks it;
        an array on disk (:func:`aekit.datasets.on_disk`) a block at a time, and left there."""
        if not on_disk(X):
            return validate_data(self, X, dtype=np.float32, reset=reset)
        return check_rows_on_disk(self, X, reset=reset)


def check_rows_on_disk(est, X, *, reset: bool):
    """The checks of scikit-learn's ``validate_data`` on rows that stay on disk: 2-D, numeric,
    at least one row and feature, finite (read a block at a time), and on ``reset=False`` the
    number of features ``fit`` saw. Sets ``n_features_in_`` on reset."""
    if len(X.shape) != 2 or X.dtype.kind not in "biuf":
        raise ValueError(f"expected a 2-D numeric array of samples, got shape {X.shape} of {X.dtype}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"Found array with shape {X.shape}: at least one sample and one feature are required")
    for start, block in iter_blocks(X):
        if not np.isfinite(block).all():
            raise ValueError(f"Input X contains NaN or infinity (first in rows {start}..{start + len(block) - 1})")
    if reset:
        est.n_features_in_ = int(X.shape[1])
        if hasattr(est, "feature_names_in_"):
            del est.feature_names_in_
    elif X.shape[1] != est.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(est).__name__} is expecting "
            f"{est.n_features_in_} features as input."
        )
    return X


class LogitsClassifier:
    """A classifier whose ``module_`` maps rows to logits over ``classes_`` (columns in that
    order): its prediction methods, and the check of semi-supervised training data."""

    def _check_semisupervised(self, X, y, reset: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(X, labelled mask, classes_, class index of each labelled row)`` from ``X`` and
        ``y`` in which ``-1`` marks an unlabelled row; clear errors when they cannot train.
        ``reset=False`` checks ``X`` against the fitted model (a warm start). Rows on disk are
        checked there and stay there (an autoencoder streams them)."""
        if on_disk(X):
            y = column_or_1d(check_array(y, ensure_2d=False, dtype=None, ensure_all_finite=False), warn=True)
            check_consistent_length(X, y)
            X = self._check_rows(X, reset=reset)
        else:
            X, y = validate_data(self, X, y, dtype=np.float32, reset=reset)
        labelled = labelled_mask(y)
        classes, targets = check_labels(y[labelled])
        return X, labelled, classes, targets

    def _warm_targets(self, classes: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Class indices of ``y`` in the fitted ``classes_`` (warm start keeps the output layer)."""
        unknown = classes[~np.isin(classes, self.classes_)]
        if len(unknown):
            raise ValueError(
                f"warm_start=True: y has classes {unknown.tolist()} that the fitted classifier does not "
                f"have ({self.classes_.tolist()}); set warm_start=False to train a new one"
            )
        return np.searchsorted(self.classes_, y)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns in the order of ``classes_``."""
        logits = torch.from_numpy(self._logits(X)).double()
        return torch.softmax(logits, dim=1).numpy()  # float64, so rows sum to 1 to 1e-15

    def predict_log_proba(self, X) -> np.ndarray:
        """Log of :meth:`predict_proba`, computed stably from the logits."""
        return torch.log_softmax(torch.from_numpy(self._logits(X)).double(), dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row."""
        check_is_fitted(self)  # before classes_ is looked up
        return self.classes_[np.argmax(self._logits(X), axis=1)]

    def _logits(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self._apply(self.module_, self._check_rows(X, reset=False))


@torch.no_grad()
def outputs_in_batches(
    module: torch.nn.Module, fn, X, batch_size: int = 4096
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(rows, fn(rows))`` for consecutive batches of the rows of ``X`` (as float32), in
    evaluation mode on the module's device; numpy both. Only a batch is in memory at a time."""
    module.eval()
    device = next(module.parameters()).device
    for i in range(0, len(X), batch_size):
        rows = np.asarray(X[i : i + batch_size], dtype=np.float32)
        rows = rows if rows.flags.writeable else rows.copy()  # a read-only memory map's rows
        yield rows, fn(torch.from_numpy(rows).to(device)).cpu().numpy()


def apply_in_batches(module: torch.nn.Module, fn, X, batch_size: int = 4096) -> np.ndarray:
    """``fn`` over the rows of ``X`` in evaluation mode, on the module's device; numpy out."""
    return np.concatenate([out for _, out in outputs_in_batches(module, fn, X, batch_size)])


# the engine's settings that are estimator parameters of the same name
_TRAIN_SETTINGS = (
    "epochs",
    "batch_size",
    "learning_rate",
    "learning_rate_schedule",
    "learning_rate_decay_start",
    "validation_fraction",
    "patience",
    "max_grad_norm",
)


@dataclasses.dataclass(eq=False, repr=False, kw_only=True)
class TrainingParams:
    """The training settings every trained estimator has, besides its own ``epochs``,
    ``batch_size`` and ``learning_rate`` (whose defaults differ by estimator)."""

    learning_rate_schedule: str = engine.LEARNING_RATE_SCHEDULE.field("constant")
    learning_rate_decay_start: float = engine.LEARNING_RATE_DECAY_START.field(2 / 3)
    validation_fraction: float = engine.VALIDATION_FRACTION.field(0.0)
    patience: int | None = engine.PATIENCE.field(None)
    max_grad_norm: float | None = engine.MAX_GRAD_NORM.field(None)
    device: str = engine.DEVICE.field("auto")
    random_state: int | None = engine.RANDOM_STATE.field(None)
    verbose: bool = engine.VERBOSE.field(False)
    warm_start: bool = WARM_START.field(False)
    callbacks: tuple = CALLBACKS.field(())
    precision: str = engine.PRECISION.field("float32")
    compile: bool = engine.COMPILE.field(False)
    cuda_graphs: bool = engine.CUDA_GRAPHS.field(False)

    def _train_config(self, phase: str, **overrides) -> engine.TrainConfig:
        """The engine's settings from this estimator's parameters (``overrides`` win)."""
        settings = {name: getattr(self, name) for name in _TRAIN_SETTINGS}
        return engine.TrainConfig(
            **{**settings, **overrides}, verbose=bool(self.verbose), phase=phase, step=self._step_options()
        )

    def _step_options(self) -> engine.StepOptions:
        """How each training step runs (compiled, captured, precision)."""
        return engine.StepOptions(self.precision, bool(self.compile), bool(self.cuda_graphs))

    def _check_early_stopping(self) -> None:
        if self.patience is not None and not self.validation_fraction:
            raise params.InvalidParameterError(
                f"patience={self.patience} (early stopping) needs a validation_fraction > 0 to watch"
            )

    def _check_step_options(self) -> None:
        if self.device == "auto":  # checked on the device it resolves to, when training starts
            return
        try:
            self._step_options().check(torch.device(self.device))
        except ValueError as error:
            raise params.InvalidParameterError(f"{error} (device={self.device!r})") from None

    def _runtime(self, random_state) -> tuple[torch.device, torch.Generator, torch.Generator]:
        """(training device, initialisation generator, training generator) seeded from
        ``random_state``."""
        device = engine.resolve_device(self.device)
        return (device, *engine.make_generators(random_state, device))

"""What aekit's estimators share: a parameter table checked before ``fit`` touches the data,
estimators given as parameters (with nested parameters ``autoencoder__l2``), the training
settings, and inference in batches.

An estimator class is declared with :func:`estimator`: a dataclass whose fields are made by
:meth:`aekit.params.Param.field`, so its ``__init__`` only stores its arguments (as
scikit-learn requires) and its table is the list of those fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import engine, params
from ..datasets import on_disk
from ..datasets.shards import iter_blocks
from ..nn import ACTIVATIONS

# class name -> estimator class: what aekit.io can save and load
ESTIMATORS: dict[str, type] = {}

# model settings that more than one estimator has
HIDDEN_LAYER_SIZES = params.Param(
    params.Sizes(),
    "Encoder widths, bottom first; the last is the coding layer. The decoder mirrors them.",
    flags=("--hidden",),
)
ACTIVATION = params.Param(params.Options(*ACTIVATIONS), "Activation of the hidden layers.")


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
            if inner.n_features_in_ != X.shape[1]:
                raise ValueError(f"the {name} was fitted on {inner.n_features_in_} features, X has {X.shape[1]}")
            return inner
        inner = clone(inner)
        own = inner.get_params(deep=False)
        inner.set_params(**{k: getattr(self, k) for k in ("device", "verbose") if k in own and hasattr(self, k)})
        if inner.random_state is None:
            inner.set_params(random_state=seed)
        return inner.fit(X)

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
_TRAIN_SETTINGS = ("epochs", "batch_size", "learning_rate", "learning_rate_schedule", "validation_fraction", "patience")


@dataclasses.dataclass(eq=False, repr=False, kw_only=True)
class TrainingParams:
    """The training settings every trained estimator has, besides its own ``epochs``,
    ``batch_size`` and ``learning_rate`` (whose defaults differ by estimator)."""

    learning_rate_schedule: str = engine.LEARNING_RATE_SCHEDULE.field("constant")
    validation_fraction: float = engine.VALIDATION_FRACTION.field(0.0)
    patience: int | None = engine.PATIENCE.field(None)
    device: str = engine.DEVICE.field("auto")
    random_state: int | None = engine.RANDOM_STATE.field(None)
    verbose: bool = engine.VERBOSE.field(False)
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

"""Fitting with checkpoints, and resuming a fit where it stopped.

>>> from aekit import AutoencoderTransformer, checkpoints
>>> ae = AutoencoderTransformer((48, 24), epochs=20, random_state=0)
>>> ae = checkpoints.fit(ae, X, directory="ckpt", every=5)   # doctest: +SKIP

writes ``ckpt/checkpoint.safetensors`` every 5 epochs, when the fit is interrupted (Ctrl-C,
or any exception) and when it ends. After a kill, a crash or Ctrl-C, in this process or
another,

>>> ae = checkpoints.resume("ckpt", X)   # doctest: +SKIP

builds the estimator again from the settings in the checkpoint and continues the fit from its
last epoch; with an int ``random_state`` (or None: numpy's global stream is recorded) the
weights at the end are bit-identical to those of an uninterrupted fit on the CPU with the same
thread count (see :mod:`aekit.engine.checkpoint`). Resuming a checkpoint of a finished fit
gives the fitted estimator without training. ``X`` (and ``y``) must be the data of the first
call: the checkpoint holds a digest of them and refuses other data.

Fitted estimators the fit starts from (a ``warm_start`` estimator's own network, a fitted
autoencoder given to a classifier) are saved beside the checkpoint through :mod:`aekit.io`.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.frozen import FrozenEstimator

from . import io
from .engine import checkpoint_file
from .engine.checkpoint import CheckpointError, Recorder, recording
from .estimators.base import is_fitted, unwrap
from .io.format import estimator_class, param_from_json, params_to_json

__all__ = ["CHECKPOINT_FILE", "CheckpointError", "fit", "resume"]

CHECKPOINT_FILE = "checkpoint.safetensors"
_START = "start"  # the fitted estimator a warm start continues
_PARAMS = "params"  # fitted estimators given as parameters, one model directory each


def fit(estimator, X, y=None, *, directory, every: int | None = 1):
    """Fit ``estimator`` on ``X`` (and ``y``), checkpointing to ``directory``.

    Parameters
    ----------
    estimator : AutoencoderTransformer, PretrainedClassifier, ...
    X, y : array-like
        As the estimator's ``fit`` takes them.
    directory : str or os.PathLike
        Where the checkpoint goes (created; an earlier checkpoint there is replaced).
    every : int or None, default=1
        Write a checkpoint every ``every`` epochs of the run (all phases counted); None: only
        when the fit is interrupted and when it ends.

    Returns
    -------
    estimator
        Fitted.
    """
    directory = Path(directory)
    extra = {
        "estimator": type(estimator).__name__,
        "params": params_to_json(estimator.get_params(deep=False), type(estimator))[0],
        "data": digest(X, y),
        "every": every,
        "numpy": _numpy_state(estimator.random_state),
        **_save_fitted_parts(estimator, directory),
    }
    recorder = Recorder(every=every, write=lambda snapshot: _write(directory, snapshot, extra))
    return _run(estimator, X, y, recorder)


def resume(directory, X, y=None, *, callbacks=(), verbose: bool | None = None):
    """Continue the fit that :func:`fit` checkpointed to ``directory``.

    Parameters
    ----------
    directory : str or os.PathLike
    X, y : array-like
        The data of the first call.
    callbacks : sequence of callable
        The estimator's ``callbacks`` (they are not saved in the checkpoint).
    verbose : bool, optional
        Override the saved ``verbose``.

    Returns
    -------
    estimator
        A new estimator with the checkpoint's parameters, fitted.

    Raises
    ------
    CheckpointError
        If there is no readable checkpoint in ``directory``, or it was written for other data.
    """
    directory = Path(directory)
    snapshot, extra = checkpoint_file.read(directory / CHECKPOINT_FILE)
    try:
        estimator, every, data = _estimator(extra, directory), extra["every"], extra["data"]
        _restore_numpy(estimator, extra["numpy"])
        estimator._validate_params()
        if every is not None and not (isinstance(every, int) and every >= 1):
            raise ValueError(f"every={every!r}")
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise CheckpointError(
            f"{directory / CHECKPOINT_FILE} does not describe an estimator this aekit can build: {exc}"
        ) from exc
    if digest(X, y) != data:
        raise CheckpointError(f"{directory}: the checkpoint was written for other data than this X (and y)")
    estimator.set_params(callbacks=tuple(callbacks), **({} if verbose is None else {"verbose": verbose}))
    recorder = Recorder(every=every, write=lambda s: _write(directory, s, extra), resume=snapshot)
    return _run(estimator, X, y, recorder)


def where(directory) -> str:
    """Where the checkpointed fit in ``directory`` stands: ``"layer 2, epoch 3 of 4"``."""
    snapshot, _ = checkpoint_file.read(Path(directory) / CHECKPOINT_FILE)
    return "finished" if snapshot.finished else snapshot.where()


def epochs_run(directory) -> int:
    """The epochs (of every phase) the checkpointed fit in ``directory`` has run."""
    snapshot, _ = checkpoint_file.read(Path(directory) / CHECKPOINT_FILE)
    return snapshot.epochs_run


def _run(estimator, X, y, recorder: Recorder):
    with recording(recorder):
        try:
            estimator.fit(X) if y is None else estimator.fit(X, y)
        except BaseException:  # Ctrl-C, SIGTERM made an exception, an error: keep the last epoch
            recorder.write_last()
            raise
    resumed = recorder.resume
    if resumed is not None and recorder.stages < len(resumed.done) + (resumed.current is not None):
        raise CheckpointError("the checkpoint has more phases than this fit: it was written by another run")
    recorder.finish()
    recorder.write_last()
    return estimator


def _write(directory: Path, snapshot, extra: dict) -> None:
    checkpoint_file.write(directory / CHECKPOINT_FILE, snapshot, extra)


def digest(X, y=None) -> str:
    """A digest of the training data, to refuse resuming on other data."""
    h = hashlib.blake2b(digest_size=16)
    for a in (X, y):
        if a is None:
            h.update(b"none")
            continue
        a = np.asarray(a)
        if a.dtype.kind == "O":
            h.update(repr(a.tolist()).encode())
        else:
            a = np.ascontiguousarray(a, dtype=np.float32 if a.dtype.kind == "f" else None)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(memoryview(a).cast("B"))
    return h.hexdigest()


# -- numpy's random state (what random_state=None or a RandomState draws from) ----------------
def _numpy_state(random_state) -> dict | None:
    if random_state is None:
        source, state = "global", np.random.get_state()
    elif isinstance(random_state, np.random.RandomState):
        source, state = "instance", random_state.get_state()
    else:
        return None  # an int seeds a fresh stream every fit
    name, keys, pos, has_gauss, cached = state
    return {"source": source, "state": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]}


def _restore_numpy(estimator, saved: dict | None) -> None:
    if saved is None:
        return
    name, keys, pos, has_gauss, cached = saved["state"]
    state = (name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached)
    if saved["source"] == "global":
        np.random.set_state(state)
    else:
        stream = np.random.RandomState()
        stream.set_state(state)
        estimator.set_params(random_state=stream)


# -- fitted estimators the fit starts from ----------------------------------------------------
def _save_fitted_parts(estimator, directory: Path) -> dict:
    """Save what the checkpoint's parameters cannot rebuild; returns how to put it back."""
    for stale in (directory / _START, directory / _PARAMS):
        shutil.rmtree(stale, ignore_errors=True)
    start = bool(estimator.warm_start and is_fitted(estimator))
    if start:
        io.save(estimator, directory / _START)
    parts = {}
    for name, value in estimator.get_params(deep=False).items():
        inner = unwrap(value)
        if isinstance(inner, BaseEstimator) and is_fitted(inner):
            io.save(inner, directory / _PARAMS / name)
            parts[name] = {"frozen": isinstance(value, FrozenEstimator)}
    return {"start": start, "fitted_params": parts}


def _estimator(extra: dict, directory: Path):
    cls = estimator_class(extra["estimator"], directory / CHECKPOINT_FILE)
    params = {name: param_from_json(v, directory, {}, name) for name, v in extra["params"].items()}
    estimator = io.load(directory / _START) if extra["start"] else cls()
    estimator.set_params(**params)
    for name, how in extra["fitted_params"].items():
        inner = io.load(directory / _PARAMS / name)
        estimator.set_params(**{name: FrozenEstimator(inner) if how["frozen"] else inner})
    return estimator

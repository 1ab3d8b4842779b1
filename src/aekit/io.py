"""Save and load fitted estimators: a JSON config beside safetensors weights, never a pickle.

A model directory holds two files:

``config.json``
    ``{"format": "aekit-model", "format_version": 1, "aekit_version": ..., "estimator": name,
    "params": get_params(deep=False), "module": the module's config, "fitted": the learned
    attributes other than the module}`` (plus ``"notes"`` when something could not be saved
    as it was, e.g. a ``RandomState``).
``model.safetensors``
    The module's ``state_dict`` (CPU, contiguous). Tied decoders own no weight, so a tied
    model stores only ``encoders.*.weight`` / ``encoders.*.bias`` and ``decoders.*.bias``.

Loading reads JSON and safetensors only, so opening a model from an untrusted source cannot
run code. Writing goes through :func:`atomic_directory`: a failed save never leaves a
half-written model or loses the previous one.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import safetensors
import safetensors.torch
import torch
from sklearn.utils.validation import check_is_fitted

from sklearn.base import BaseEstimator
from sklearn.frozen import FrozenEstimator

from . import engine
from .classify import ClassifierConfig, EncoderClassifier
from .estimators import AutoencoderTransformer, PretrainedClassifier
from .nn import StackedAutoencoder, StackedConfig

logger = logging.getLogger(__name__)

FORMAT = "aekit-model"
FORMAT_VERSION = 1  # the newest format this aekit reads and the one it writes
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
_REQUIRED_KEYS = ("estimator", "params", "module", "fitted")


class ModelFileError(ValueError):
    """A model directory cannot be read; the message names the file and the problem."""


def _error(file: Path, problem: str) -> ModelFileError:
    return ModelFileError(f"{file}: {problem}")


# -- what can be saved -----------------------------------------------------------------------
@dataclass(frozen=True)
class ModelKind:
    """How to rebuild one estimator class: its module class, that module's config class and
    the learned attributes (besides ``module_``) that go into ``config.json``."""

    estimator: type
    module: type
    module_config: type
    fitted: tuple[str, ...] = ("n_features_in_", "n_iter_", "history_", "feature_names_in_")


# Adding an estimator (e.g. PretrainedClassifier) is one entry here; names are class names.
ESTIMATORS: dict[str, ModelKind] = {
    "AutoencoderTransformer": ModelKind(AutoencoderTransformer, StackedAutoencoder, StackedConfig),
    "PretrainedClassifier": ModelKind(
        PretrainedClassifier, EncoderClassifier, ClassifierConfig,
        fitted=("n_features_in_", "n_iter_", "history_", "feature_names_in_", "classes_", "n_frozen_")),
}

# JSON has no arrays of objects: these attributes need their type back after loading
_FITTED_FROM_JSON: dict[str, Callable] = {
    "feature_names_in_": lambda names: np.asarray(names, dtype=object),
    "classes_": np.asarray,
}


# -- saving ----------------------------------------------------------------------------------
def save(estimator, path, *, overwrite: bool = True) -> Path:
    """Write a fitted estimator to the model directory ``path``.

    Parameters
    ----------
    estimator : AutoencoderTransformer
        A fitted estimator of a class listed in :data:`ESTIMATORS`.
    path : str or os.PathLike
        The model directory to create (its parents are created too).
    overwrite : bool, default=True
        Replace an existing model directory at ``path``. Anything else at ``path`` (a file,
        a non-empty directory that is not an aekit model) is never replaced.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    FileExistsError
        If ``path`` exists and ``overwrite`` is False, or ``path`` is not a model directory.
    TypeError
        If the estimator's class is not registered or a parameter cannot be written as JSON.
    """
    name = _kind_name(estimator)
    check_is_fitted(estimator)
    # everything is serialised before the disk is touched, so a bad parameter fails early
    text = json.dumps(_config(estimator, name), indent=2)
    state = {key: value.detach().cpu().contiguous()
             for key, value in estimator.module_.state_dict().items()}
    path = Path(path)
    with atomic_directory(path, overwrite, is_own=_is_model_directory) as tmp:
        (tmp / CONFIG_FILE).write_text(text, encoding="utf-8")
        safetensors.torch.save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
    logger.info("saved %s to %s", name, path)
    return path


def _kind_name(estimator) -> str:
    name = type(estimator).__name__
    if name not in ESTIMATORS or not isinstance(estimator, ESTIMATORS[name].estimator):
        raise TypeError(f"cannot save a {name}; aekit.io knows {sorted(ESTIMATORS)}")
    return name


def _config(estimator, name: str) -> dict:
    from . import __version__  # at call time: aekit/__init__ may import this module

    params, notes = _params_to_json(estimator.get_params(deep=False))
    fitted = {attr: _to_json(getattr(estimator, attr), attr)
              for attr in ESTIMATORS[name].fitted if hasattr(estimator, attr)}
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "aekit_version": __version__,
              "estimator": name, "params": params,
              "module": estimator.module_.config.to_dict(), "fitted": fitted}
    if notes:
        config["notes"] = notes
    return config


def _params_to_json(params: dict) -> tuple[dict, list[str]]:
    """JSON-safe parameters, and notes on what could not be kept as it was."""
    out, notes = {}, []
    for name, value in params.items():
        if isinstance(value, np.random.RandomState):
            # its state is 2.5 kB of Mersenne Twister that only pickle could restore faithfully
            out[name] = None
            notes.append(f"{name} was a numpy RandomState; saved as null")
            logger.warning("%s is a numpy RandomState: it is saved as None", name)
        elif isinstance(value, BaseEstimator):  # PretrainedClassifier's autoencoder
            out[name] = _estimator_param_to_json(value, name)
            notes.append(f"{name} was a {type(value).__name__}; saved as its parameters "
                         "(it loads unfitted: the fitted layers are in the model's weights)")
        else:
            out[name] = _to_json(value, f"parameter {name!r}")
    return out, notes


def _estimator_param_to_json(value, name: str) -> dict:
    """An estimator that is a parameter, as ``{"__estimator__": class name, "params": ...}``."""
    inner = value.estimator if isinstance(value, FrozenEstimator) else value
    kind = type(inner).__name__
    if kind not in ESTIMATORS:
        raise TypeError(f"cannot save parameter {name!r}: a {kind} is not an estimator "
                        f"aekit.io knows ({sorted(ESTIMATORS)})")
    params, _ = _params_to_json(inner.get_params(deep=False))
    return {"__estimator__": kind, "params": params}


def _param_from_json(value):
    """Undo the JSON forms of parameters: lists were tuples, tagged objects were estimators."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict) and set(value) == {"__estimator__", "params"}:
        kind = _kind_of(value["__estimator__"], Path(CONFIG_FILE))
        return kind.estimator(**{k: _param_from_json(v) for k, v in value["params"].items()})
    return value


def _to_json(value, what: str):
    """``value`` as plain JSON types (tuples and arrays become lists)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_to_json(v, what) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v, what) for k, v in value.items()}
    raise TypeError(f"cannot save {what}: a {type(value).__name__} cannot be written as JSON")


# -- loading ---------------------------------------------------------------------------------
def load(path):
    """Read an estimator written by :func:`save`.

    The module is put on the device the saved ``device`` parameter resolves to. When that is
    a CUDA device and CUDA is unavailable, the module goes to the CPU with a logged warning;
    the ``device`` parameter keeps its saved value (so ``get_params`` round-trips, and a
    refit on this machine fails loudly instead of silently training elsewhere).

    Parameters
    ----------
    path : str or os.PathLike
        A model directory.

    Returns
    -------
    estimator
        Fitted, giving bit-identical outputs to the saved one on the same device.

    Raises
    ------
    ModelFileError
        If the directory or either of its files is missing, unreadable, of another format or
        a newer format version, or if the weights do not match the architecture.
    """
    path = Path(path)
    if not path.is_dir():
        raise _error(path, "is not a directory" if path.exists() else "no such model directory")
    config_file = path / CONFIG_FILE
    config = _read_config(config_file)
    kind = _kind_of(config["estimator"], config_file)
    estimator = _estimator_from_params(kind, config["params"], config_file)
    module = _module_from_config(kind, config["module"], config_file)
    _load_weights(module, path / WEIGHTS_FILE)
    device = _load_device(estimator.get_params(deep=False).get("device", "auto"))
    estimator.module_ = module.to(device).eval()
    for attr, value in config["fitted"].items():
        if attr in kind.fitted:  # names a newer aekit might add are not ours to set
            setattr(estimator, attr, _FITTED_FROM_JSON.get(attr, lambda v: v)(value))
    return estimator


def _read_config(file: Path) -> dict:
    if not file.is_file():
        raise _error(file, "is missing; this is not an aekit model directory")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _error(file, f"is not valid JSON ({exc})") from exc
    found = config.get("format") if isinstance(config, dict) else None
    if found != FORMAT:
        raise _error(file, f"is not an aekit model config (format {found!r}, expected {FORMAT!r})")
    _check_version(config.get("format_version"), file)
    missing = [key for key in _REQUIRED_KEYS if key not in config]
    if missing:
        raise _error(file, f"lacks the keys {missing}")
    for key in ("params", "module", "fitted"):
        if not isinstance(config[key], dict):
            raise _error(file, f"{key!r} should be an object, got {type(config[key]).__name__}")
    return config


def _check_version(version, file: Path) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _error(file, f"format_version {version!r} is not a positive integer")
    if version > FORMAT_VERSION:
        raise _error(file, f"has format_version {version}, but this aekit reads up to "
                           f"{FORMAT_VERSION}; upgrade aekit to load it")


def _kind_of(name, file: Path) -> ModelKind:
    if name not in ESTIMATORS:
        raise _error(file, f"names estimator {name!r}, which this aekit cannot load "
                           f"(it knows {sorted(ESTIMATORS)})")
    return ESTIMATORS[name]


def _estimator_from_params(kind: ModelKind, params: dict, file: Path):
    # scikit-learn parameters that are sequences are tuples by convention (hidden_layer_sizes)
    try:
        params = {name: _param_from_json(v) for name, v in params.items()}
        return kind.estimator().set_params(**params)
    except (TypeError, ValueError) as exc:
        raise _error(file, f"has parameters this aekit does not accept: {exc}") from exc


def _module_from_config(kind: ModelKind, module: dict, file: Path) -> torch.nn.Module:
    try:
        config = kind.module_config.from_dict(module)
    except (TypeError, ValueError) as exc:
        raise _error(file, f"'module' is not a valid {kind.module_config.__name__}: {exc}") from exc
    # the module initialises its weights (overwritten next); loading must not move the
    # caller's global random stream
    with torch.random.fork_rng(devices=[]):
        return kind.module(config)


def _load_weights(module: torch.nn.Module, file: Path) -> None:
    if not file.is_file():
        raise _error(file, "is missing")
    try:
        state = safetensors.torch.load_file(str(file))
    except (safetensors.SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise _error(file, f"is not a readable safetensors file ({exc})") from exc
    _check_state(module.state_dict(), state, file)
    module.load_state_dict(state, strict=True)


def _check_state(expected: dict, found: dict, file: Path) -> None:
    """Compare keys, shapes and dtypes ourselves: load_state_dict's messages are long and
    it would cast a float64 file silently."""
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing:
        raise _error(file, f"is missing weights {missing}")
    if extra:
        raise _error(file, f"has unexpected weights {extra}")
    for name, want in expected.items():
        got = found[name]
        if got.shape != want.shape:
            raise _error(file, f"weight {name!r} has shape {tuple(got.shape)} but "
                               f"{CONFIG_FILE} says {tuple(want.shape)}")
        if got.dtype != want.dtype:
            raise _error(file, f"weight {name!r} has dtype {got.dtype}, expected {want.dtype}")


def _load_device(device) -> torch.device:
    try:
        return engine.resolve_device(device)
    except ValueError:  # a CUDA device on a machine without CUDA: still usable for inference
        logger.warning("model was saved for device %r but CUDA is not available; "
                       "loading it on the CPU", device)
        return torch.device("cpu")


def _is_model_directory(path: Path) -> bool:
    """True when ``path`` holds an aekit config.json (whatever its version): ours to replace."""
    try:
        config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(config, dict) and config.get("format") == FORMAT


# -- writing a directory atomically ----------------------------------------------------------
@contextlib.contextmanager
def atomic_directory(path, overwrite: bool = True, *,
                     is_own: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Build a directory in a temporary place beside ``path``, then swap it in.

    Write into the yielded directory. If the block raises, ``path`` is untouched and the
    temporary directory is removed. Otherwise its files are fsynced and it replaces ``path``:
    the old directory is renamed aside, the new one renamed in, then the old one deleted (a
    rename cannot replace a non-empty directory in one step). Should the process die between
    the two renames, the old directory survives as a hidden ``.NAME.old-*`` sibling.

    Parameters
    ----------
    path : str or os.PathLike
        The directory to create or replace; its parents are created.
    overwrite : bool, default=True
        Whether an existing ``path`` may be replaced.
    is_own : callable, optional
        ``is_own(path) -> bool``: whether an existing non-empty directory is one the caller
        wrote (e.g. a model directory) and so may be replaced. Without it only an empty
        directory is replaced. A file or a symbolic link at ``path`` is never replaced.

    Yields
    ------
    pathlib.Path
        The temporary directory, in the same parent as ``path`` (so the rename is atomic).

    Raises
    ------
    FileExistsError
        If ``path`` exists and may not be replaced.
    """
    path = Path(os.path.abspath(path))  # "." or "out/.." need a real name and parent to rename
    _check_replaceable(path, overwrite, is_own)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        _fsync_tree(tmp)
        _swap_in(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already after a successful swap


def _check_replaceable(path: Path, overwrite: bool, is_own) -> None:
    if not (path.exists() or path.is_symlink()):
        return
    if not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
    if path.is_symlink() or not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a directory; refusing to replace it")
    if any(path.iterdir()) and not (is_own is not None and is_own(path)):
        raise FileExistsError(f"{path} is a non-empty directory that aekit did not write; "
                              "refusing to replace it (its files would be deleted)")


def _swap_in(tmp: Path, path: Path) -> None:
    if not path.exists():
        os.rename(tmp, path)
    else:
        aside = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(path, aside)
        try:
            os.rename(tmp, path)
        except BaseException:
            os.rename(aside, path)  # put the old one back: nothing is lost
            raise
        try:
            shutil.rmtree(aside)
        except OSError as exc:  # the new directory is in place; only a stale copy remains
            logger.warning("could not delete the previous directory %s: %s", aside, exc)
    _fsync_dir(path.parent)


def _fsync_tree(root: Path) -> None:
    """Flush every file to disk before the rename publishes them: otherwise a crash soon after
    can leave a complete-looking directory of empty or partial files."""
    for file in root.rglob("*"):
        if file.is_file():
            fd = os.open(file, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(root)


def _fsync_dir(directory: Path) -> None:
    """Make renames inside ``directory`` durable (POSIX; a no-op where a directory cannot be
    opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on directories; the rename itself still happened
    finally:
        os.close(fd)

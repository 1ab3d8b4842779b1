"""Reading a model directory back into a fitted estimator."""

from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path

import numpy as np
import safetensors
import safetensors.torch
import torch

from .. import engine
from ..nn import FAMILIES, CustomAutoencoder
from . import compat
from .format import (
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    ModelFileError,
    error,
    estimator_class,
    param_from_json,
)

logger = logging.getLogger(__name__)

_REQUIRED_KEYS = ("estimator", "params", "family", "module", "fitted")
# the dtypes safetensors headers name, as torch's
_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,  # batch norm counts its batches
}
# JSON has no arrays of objects: these attributes need their type back after loading
_FITTED_FROM_JSON = {
    "feature_names_in_": lambda names: np.asarray(names, dtype=object),
    "classes_": np.asarray,
    "image_shape_": lambda shape: None if shape is None else tuple(shape),
}


def load(path, *, modules: dict | None = None):
    """Read an estimator written by :func:`aekit.io.save`.

    The module is put on the device the saved ``device`` parameter resolves to. When that is
    a CUDA device and CUDA is unavailable, the module goes to the CPU with a logged warning;
    the ``device`` parameter keeps its saved value (so ``get_params`` round-trips, and a
    refit on this machine fails loudly instead of silently training elsewhere).

    Parameters
    ----------
    path : str or os.PathLike
        A model directory.
    modules : dict, optional
        Your own modules by parameter name, ``{"encoder": ..., "decoder": ...}`` (instances or
        factories of the architecture the model was trained with), for a model trained with
        modules that are not registered families (:data:`aekit.nn.FAMILIES`): their weights
        are in the directory, but their code is not, and aekit never imports code named in a
        file. The given modules are copied; their weights are replaced by the saved ones.

    Returns
    -------
    estimator
        Fitted, giving bit-identical outputs to the saved one on the same device.

    Raises
    ------
    ModelFileError
        If the directory or either of its files is missing, unreadable, of another format or
        a newer format version, if a parameter is not one the estimator allows, if the weights
        do not match the architecture, or if a learned attribute (``n_features_in_``,
        ``classes_``, ...) contradicts the network. Everything is checked before the weights
        are read.
    """
    path = Path(path)
    if not path.is_dir():
        raise error(path, "is not a directory" if path.exists() else "no such model directory")
    config_file = path / CONFIG_FILE
    stored = _read_config(config_file)
    try:
        config = compat.upgrade(stored)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # a format-1 config of odd shape
        raise error(config_file, f"is not a valid format-1 config ({type(exc).__name__}: {exc})") from exc
    _check_keys(config, config_file)
    modules = dict(modules or {})
    estimator = _estimator_from_params(config, config_file, modules)
    module = _module_from_config(config, path / WEIGHTS_FILE, stored["format_version"], modules)
    module = module.to(_load_device(estimator.get_params(deep=False).get("device", "auto"))).eval()
    try:
        _set_fitted(estimator, config["fitted"], module, config_file, modules)
    except ModelFileError:
        raise
    except (TypeError, ValueError) as exc:
        raise error(config_file, f"'fitted' does not match the network: {exc}") from exc
    return estimator


def _set_fitted(estimator, fitted: dict, module, file: Path, modules: dict) -> None:
    """The module and learned attributes, checked against the network (a wrong ``classes_``
    would load and fail later, at predict time); a fitted estimator inside (tagged
    ``__estimator__``) gets the same module."""
    estimator.module_ = module
    for attr, value in fitted.items():
        if attr not in estimator._fitted_attributes:  # names a newer aekit might add are not ours to set
            continue
        if isinstance(value, dict) and "__estimator__" in value:
            inner = param_from_json({k: value[k] for k in ("__estimator__", "params")}, file, modules)
            _set_fitted(inner, value.get("fitted", {}), module, file, modules)
            value = inner
        else:
            value = _FITTED_FROM_JSON.get(attr, lambda v: v)(value)
        setattr(estimator, attr, value)
    estimator._check_fitted()


def _read_config(file: Path) -> dict:
    if not file.is_file():
        raise error(file, "is missing; this is not an aekit model directory")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(file, f"is not valid JSON ({exc})") from exc
    found = config.get("format") if isinstance(config, dict) else None
    if found != FORMAT:
        raise error(file, f"is not an aekit model config (format {found!r}, expected {FORMAT!r})")
    version = config.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise error(file, f"format_version {version!r} is not a positive integer")
    if version > FORMAT_VERSION:
        raise error(
            file,
            f"has format_version {version}, but this aekit reads up to {FORMAT_VERSION}; upgrade aekit to load it",
        )
    if "estimator" not in config:
        raise error(file, "lacks the key 'estimator'")
    return config


def _check_keys(config: dict, file: Path) -> None:
    missing = [key for key in _REQUIRED_KEYS if key not in config]
    if missing:
        raise error(file, f"lacks the keys {missing}")
    for key in ("params", "module", "fitted"):
        if not isinstance(config[key], dict):
            raise error(file, f"{key!r} should be an object, got {type(config[key]).__name__}")
    if not isinstance(config["family"], str) or config["family"] not in FAMILIES:
        raise error(
            file,
            f"names model family {config['family']!r}, which this aekit does not know (it knows {sorted(FAMILIES)})",
        )


def _estimator_from_params(config: dict, file: Path, modules: dict):
    cls = estimator_class(config["estimator"], file)
    try:
        params = {name: param_from_json(v, file, modules, name) for name, v in config["params"].items()}
        estimator = cls().set_params(**params)
        estimator._validate_params()  # the types and ranges a fit would check, before anything is built
    except ModelFileError:
        raise
    except (TypeError, ValueError) as exc:
        raise error(file, f"has parameters this aekit does not accept: {exc}") from exc
    return estimator


def _module_from_config(config: dict, weights: Path, format_version: int, modules: dict) -> torch.nn.Module:
    """The module, built only after the weight file's names and shapes match its config."""
    family = FAMILIES[config["family"]]
    try:
        module_config = family.config.from_dict(config["module"])
    except (TypeError, ValueError) as exc:
        raise error(weights.with_name(CONFIG_FILE), f"'module' is not a valid {family.config.__name__}: {exc}") from exc
    if modules and family.module is not CustomAutoencoder:
        raise error(
            weights.with_name(CONFIG_FILE),
            f"modules= is for models with your own modules, not a {config['family']!r} model",
        )
    # your own parts are built from what you passed
    build = partial(family.module, module_config, **({"parts": modules} if modules else {}))
    try:
        with torch.device("meta"):  # shapes only: nothing is allocated for a config that lies
            expected = _built(build, weights).state_dict()
    except ModelFileError:
        raise
    except (RuntimeError, TypeError, ValueError, OverflowError) as exc:  # e.g. sizes beyond any memory
        raise error(weights.with_name(CONFIG_FILE), f"'module' describes no buildable network: {exc}") from exc
    state = _read_weights(weights, expected, format_version)
    # the module initialises its weights (overwritten next); loading must not move the
    # caller's global random stream
    with torch.random.fork_rng(devices=[]):
        module = build()
    module.load_state_dict(state, strict=True)
    return module


def _built(build, weights: Path) -> torch.nn.Module:
    try:
        return build()
    except ValueError as exc:  # e.g. your own module, not passed
        raise error(weights.with_name(CONFIG_FILE), str(exc)) from exc


def _read_weights(file: Path, expected: dict, format_version: int) -> dict:
    """The weights, read only once the file's header matches ``expected`` (names, shapes, dtypes)."""
    if not file.is_file():
        raise error(file, "is missing")
    _check_header(expected, _readable(file, lambda: _header(file, format_version)), file)
    state = _readable(file, lambda: safetensors.torch.load_file(str(file)))
    return {compat.weight_name(k, format_version): v for k, v in state.items()}


def _header(file: Path, format_version: int) -> dict:
    """``{weight name: (shape, safetensors dtype)}`` from the file's header alone."""
    with safetensors.safe_open(str(file), framework="pt") as f:
        slices = {k: f.get_slice(k) for k in f.keys()}
        return {compat.weight_name(k, format_version): (tuple(s.get_shape()), s.get_dtype()) for k, s in slices.items()}


def _readable(file: Path, read):
    try:
        return read()
    except (safetensors.SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise error(file, f"is not a readable safetensors file ({exc})") from exc


def _check_header(expected: dict, found: dict, file: Path) -> None:
    """Compare names, shapes and dtypes ourselves: load_state_dict's messages are long and it
    would cast a float64 file silently."""
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing:
        raise error(file, f"is missing weights {missing}")
    if extra:
        raise error(file, f"has unexpected weights {extra}")
    for name, want in expected.items():
        shape, dtype = found[name]
        if shape != tuple(want.shape):
            raise error(file, f"weight {name!r} has shape {shape} but {CONFIG_FILE} says {tuple(want.shape)}")
        if _DTYPES.get(dtype) != want.dtype:
            raise error(file, f"weight {name!r} has dtype {_DTYPES.get(dtype, dtype)}, expected {want.dtype}")


def _load_device(device) -> torch.device:
    try:
        return engine.resolve_device(device)
    except ValueError:  # a CUDA device on a machine without CUDA: still usable for inference
        logger.warning("model was saved for device %r but CUDA is not available; loading it on the CPU", device)
        return torch.device("cpu")

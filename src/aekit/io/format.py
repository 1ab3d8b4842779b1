"""The model directory's names and version, its error, and parameters as JSON."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from torch import nn

from .. import params as params_
from ..estimators.base import ESTIMATORS, unwrap
from ..nn import FAMILIES
from ..nn.custom import describe_part

logger = logging.getLogger(__name__)

FORMAT = "aekit-model"
FORMAT_VERSION = 2  # the newest format this aekit reads and the one it writes
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class ModelFileError(ValueError):
    """A model directory cannot be read; the message names the file and the problem."""


def error(file: Path, problem: str) -> ModelFileError:
    return ModelFileError(f"{file}: {problem}")


def estimator_class(name, file: Path) -> type:
    if not isinstance(name, str) or name not in ESTIMATORS:
        raise error(file, f"names estimator {name!r}, which this aekit cannot load (it knows {sorted(ESTIMATORS)})")
    return ESTIMATORS[name]


def params_to_json(params: dict, cls: type) -> tuple[dict, list[str]]:
    """JSON-safe parameters of an estimator of class ``cls``, and notes on what could not be
    kept as it was."""
    out, notes = {}, []
    unsaved = {entry.name: entry.default for entry in params_.table(cls) if not entry.param.saved}
    for name, value in params.items():
        if name in unsaved:  # e.g. callbacks: they mean something only in the process that set them
            out[name] = to_json(unsaved[name], f"parameter {name!r}")
            if value != unsaved[name]:
                notes.append(f"{name} was not saved")
        elif isinstance(value, np.random.RandomState):
            # its state is 2.5 kB of Mersenne Twister that only pickle could restore faithfully
            out[name] = None
            notes.append(f"{name} was a numpy RandomState; saved as null")
            logger.warning("%s is a numpy RandomState: it is saved as None", name)
        elif isinstance(value, BaseEstimator):  # e.g. PretrainedClassifier's autoencoder
            out[name] = _estimator_to_json(value, name)
            notes.append(
                f"{name} was a {type(value).__name__}; saved as its parameters "
                "(it loads unfitted: the fitted layers are in the model's weights)"
            )
        elif isinstance(value, nn.Module) or callable(value):  # your own encoder or decoder
            out[name], note = _part_to_json(value, name)
            notes += [note] if note else []
        else:
            out[name] = to_json(value, f"parameter {name!r}")
    return out, notes


def _part_to_json(value, name: str) -> tuple[dict, str | None]:
    """A module (or factory) parameter: a registered family's module by its configuration (it
    loads rebuilt, with fresh weights); anything else by its name alone (never imported)."""
    if isinstance(value, nn.Module):
        part = describe_part(value)
        if "family" in part:
            return {"__module__": part}, None
        what = f"a {part['class']}"
    else:
        part = {"class": f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"}
        what = f"the factory {part['class']}"
    return {"__module__": part}, f"{name} was {what}; load the model with modules={{{name!r}: ...}}"


def _estimator_to_json(value, name: str) -> dict:
    """An estimator that is a parameter, as ``{"__estimator__": class name, "params": ...}``."""
    inner = unwrap(value)
    kind = type(inner).__name__
    if ESTIMATORS.get(kind) is not type(inner):
        raise TypeError(
            f"cannot save parameter {name!r}: a {kind} is not an estimator aekit.io knows ({sorted(ESTIMATORS)})"
        )
    params, _ = params_to_json(inner.get_params(deep=False), type(inner))
    return {"__estimator__": kind, "params": params}


def param_from_json(value, file: Path, modules: dict, name: str = ""):
    """Undo the JSON forms of parameters: lists were tuples, tagged objects were estimators or
    modules; ``modules`` gives your own modules by parameter name (at any depth)."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict) and set(value) == {"__estimator__", "params"}:
        cls = estimator_class(value["__estimator__"], file)
        if not isinstance(value["params"], dict):
            raise ValueError(f"the parameters of a {cls.__name__} should be an object, got {value['params']!r}")
        return cls(**{k: param_from_json(v, file, modules, k) for k, v in value["params"].items()})
    if isinstance(value, dict) and set(value) == {"__module__"}:
        return _part_from_json(value["__module__"], file, modules, name)
    return value


def _part_from_json(part: dict, file: Path, modules: dict, name: str):
    if name in modules:
        return modules[name]
    if part.get("family") in FAMILIES:
        family = FAMILIES[part["family"]]
        return family.module(family.config.from_dict(part["config"]))
    raise error(
        file,
        f"the model's {name} is your own module ({part.get('class', part.get('family'))}), which aekit does not "
        "import from a file: pass your modules, aekit.io.load(path, modules={'encoder': ..., 'decoder': ...}) "
        "(instances or factories of the same architecture; the weights come from the model directory)",
    )


def fitted_to_json(value, what: str):
    """A learned attribute as JSON. A fitted estimator inside (a detector's ``autoencoder_``)
    is its class, parameters and own learned attributes; its module is the model's."""
    if isinstance(value, BaseEstimator):
        params, _ = params_to_json(value.get_params(deep=False), type(value))
        fitted = {a: fitted_to_json(getattr(value, a), a) for a in value._fitted_attributes if hasattr(value, a)}
        return {"__estimator__": type(value).__name__, "params": params, "fitted": fitted}
    return to_json(value, what)


def to_json(value, what: str):
    """``value`` as plain JSON types (tuples and arrays become lists)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [to_json(v, what) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v, what) for k, v in value.items()}
    raise TypeError(f"cannot save {what}: a {type(value).__name__} cannot be written as JSON")

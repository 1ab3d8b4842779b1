"""Writing a fitted estimator to a model directory."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import safetensors.torch
from sklearn.utils.validation import check_is_fitted

from ..files import atomic_directory, json_text
from ..nn import family_of
from .format import (
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    estimator_class,
    fitted_to_json,
    params_to_json,
)

logger = logging.getLogger(__name__)


def save(estimator, path, *, overwrite: bool = True) -> Path:
    """Write a fitted estimator to the model directory ``path``.

    Parameters
    ----------
    estimator : AutoencoderTransformer, PretrainedClassifier, ...
        A fitted aekit estimator.
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
        If the estimator's class is not an aekit estimator or a parameter cannot be written
        as JSON.
    """
    name = type(estimator).__name__
    try:
        known = estimator_class(name, Path(CONFIG_FILE)) is type(estimator)
    except ValueError:
        known = False
    if not known:
        raise TypeError(f"cannot save a {name}: aekit.io saves aekit's estimators only")
    check_is_fitted(estimator)
    # everything is serialised before the disk is touched, so a bad parameter fails early
    text = json_text(_config(estimator, name))  # strict JSON: a non-finite number becomes null
    state = {key: value.detach().cpu().contiguous() for key, value in estimator.module_.state_dict().items()}
    path = Path(path)
    with atomic_directory(path, overwrite, is_own=is_model_directory) as tmp:
        (tmp / CONFIG_FILE).write_text(text, encoding="utf-8")
        safetensors.torch.save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
    logger.info("saved %s to %s", name, path)
    return path


def _config(estimator, name: str) -> dict:
    from .. import __version__  # at call time: aekit/__init__ imports this module

    params, notes = params_to_json(estimator.get_params(deep=False), type(estimator))
    fitted = {
        attr: fitted_to_json(getattr(estimator, attr), attr)
        for attr in estimator._fitted_attributes
        if hasattr(estimator, attr)
    }
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "aekit_version": __version__,
        "estimator": name,
        "params": params,
        "family": family_of(estimator.module_),
        "module": estimator.module_.config.to_dict(),
        "fitted": fitted,
    }
    if notes:
        config["notes"] = notes
    return config


def is_model_directory(path: Path) -> bool:
    """True when ``path`` holds an aekit config.json (whatever its version): ours to replace."""
    try:
        config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(config, dict) and config.get("format") == FORMAT

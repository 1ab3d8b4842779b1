"""Reading model directories written by earlier versions of aekit.

Format 1 (aekit 0.1) differs from format 2 in three ways: the config has no ``"family"``
(the estimator implied it); the encoder's weights are named ``encoders.K.*`` (now
``encoder.layers.K.*``, the encoder module the autoencoder and the classifier share); and a
PretrainedClassifier stored its default autoencoder's settings as flat parameters
(``pretrain_epochs``, ``corruption_level``, ...) where it now holds an AutoencoderTransformer
as its ``autoencoder`` parameter.
"""

from __future__ import annotations

import re

_FAMILY_V1 = {"AutoencoderTransformer": "dense", "PretrainedClassifier": "classifier"}
_ENCODER_V1 = re.compile(r"^encoders\.(\d+)\.")
# PretrainedClassifier's flat parameters of format 1 -> the autoencoder parameter they became
_CLASSIFIER_AE_V1 = {
    "hidden_layer_sizes": "hidden_layer_sizes",
    "activation": "activation",
    "training": "training",
    "corruption": "corruption",
    "corruption_level": "corruption_level",
    "pretrain_batch_size": "batch_size",
    "pretrain_learning_rate": "learning_rate",
    "pretrain_l2": "l2",
}


def upgrade(config: dict) -> dict:
    """A format-1 config as format 2 would write it (a new dict; format-2 configs unchanged)."""
    if config.get("format_version") != 1:
        return config
    config = {**config, "format_version": 2, "family": _FAMILY_V1.get(config["estimator"])}
    if config["estimator"] == "PretrainedClassifier":
        config["params"] = _classifier_params_v1(config["params"])
    return config


def _classifier_params_v1(params: dict) -> dict:
    """Format 1's flat pretraining parameters folded into the autoencoder they described."""
    params = dict(params)
    flat = {name: params.pop(name) for name in (*_CLASSIFIER_AE_V1, "pretrain_epochs") if name in params}
    if params.get("autoencoder") is None:  # format 1 built this autoencoder from the flat settings
        ae = {new: flat[old] for old, new in _CLASSIFIER_AE_V1.items() if old in flat}
        if "pretrain_epochs" in flat:
            ae["epochs"] = ae["layerwise_epochs"] = flat["pretrain_epochs"]
        ae.update(device=params.get("device", "auto"), verbose=params.get("verbose", False))
        params["autoencoder"] = {"__estimator__": "AutoencoderTransformer", "params": ae}
    return params


def weight_name(name: str, format_version: int) -> str:
    """The format-2 name of a weight stored under ``name`` by a directory of that version."""
    return _ENCODER_V1.sub(r"encoder.layers.\1.", name) if format_version == 1 else name

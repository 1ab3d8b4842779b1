"""The registry of model families: how a family's module is built, saved and rebuilt.

A family is a torch module class, its configuration dataclass (with ``to_dict`` /
``from_dict``) and, for the autoencoder families an estimator chooses with its
``architecture`` parameter, the function that makes that configuration from the estimator's
parameters and the number of input features. :mod:`aekit.io` records the family's name in a
model directory and rebuilds the module from this table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from .classifier import ClassifierConfig, EncoderClassifier
from .conv import ConvAutoencoder, ConvConfig, as_image_shape
from .custom import CustomAutoencoder, CustomConfig
from .ladder import LadderConfig, LadderNetwork
from .stacked import StackedAutoencoder, StackedConfig
from .variational import DenseVAE, VAEConfig


@dataclass(frozen=True)
class Family:
    """One model family.

    Attributes
    ----------
    module : type
        ``module(config, generator=None)`` builds it.
    config : type
        The module's configuration dataclass.
    from_params : callable or None
        ``from_params(params, n_features) -> config`` for an autoencoder family: the module an
        estimator with these parameters trains. None for families built another way.
    layerwise : bool
        Whether greedy layer-wise training applies (the module has ``encode_layer``,
        ``decode_layer``, ``layer_parameters`` and ``reconstruction_loss(..., layer=k)``).
    layerwise_methods : tuple of str
        The layer-wise methods that apply ("separate" builds shallow dense autoencoders).
    """

    module: type[nn.Module]
    config: type
    from_params: Callable[[Mapping[str, Any], int], Any] | None = None
    layerwise: bool = False
    layerwise_methods: tuple[str, ...] = ("phases", "separate")


def _dense_config(params: Mapping[str, Any], n_features: int) -> StackedConfig:
    sizes = params["hidden_layer_sizes"]
    return StackedConfig(
        n_inputs=n_features,
        hidden_sizes=sizes if isinstance(sizes, tuple) else (sizes,),
        activation=params["activation"],
        output_activation="sigmoid" if params["loss"] == "bce" else "linear",
        tied=bool(params["tied"]),
        code_activation=params["code_activation"],
    )


def _conv_config(params: Mapping[str, Any], n_features: int) -> ConvConfig:
    if params["image_shape"] is None:
        raise ValueError(
            "architecture='conv' needs the shape of the images: set image_shape (e.g. (1, 28, 28)) "
            "or pass X as images, a 4-D array (n, channels, height, width)"
        )
    shape = as_image_shape(params["image_shape"])
    if math.prod(shape) != n_features:
        raise ValueError(f"X has {n_features} features, but image_shape {shape} holds {math.prod(shape)} values")
    sizes = params["hidden_layer_sizes"]
    return ConvConfig(
        image_shape=shape,
        channels=params["channels"],
        hidden_sizes=sizes if isinstance(sizes, tuple) else (sizes,),
        kernel_size=params["kernel_size"],
        batch_norm=bool(params["batch_norm"]),
        activation=params["activation"],
        output_activation="sigmoid" if params["loss"] == "bce" else "linear",
        tied=bool(params["tied"]),
        code_activation=params["code_activation"],
    )


FAMILIES: dict[str, Family] = {
    "dense": Family(StackedAutoencoder, StackedConfig, _dense_config, layerwise=True),
    "conv": Family(ConvAutoencoder, ConvConfig, _conv_config, layerwise=True, layerwise_methods=("phases",)),
    "classifier": Family(EncoderClassifier, ClassifierConfig),
    # your own encoder and decoder (the estimators' encoder= and decoder=): never chosen by name
    "custom": Family(CustomAutoencoder, CustomConfig),
    "variational": Family(DenseVAE, VAEConfig),
    "ladder": Family(LadderNetwork, LadderConfig),
}
AUTOENCODER_FAMILIES = tuple(name for name, family in FAMILIES.items() if family.from_params)


def family_of(module: nn.Module) -> str:
    """The registry name of ``module``'s family."""
    for name, family in FAMILIES.items():
        if type(module) is family.module:
            return name
    raise TypeError(f"{type(module).__name__} is not a registered model family ({sorted(FAMILIES)})")

"""The registry of model families: how a family's module is built, saved and rebuilt.

A family is a torch module class, its configuration dataclass (with ``to_dict`` /
``from_dict``) and, for the autoencoder families an estimator chooses with its
``architecture`` parameter, the function that makes that configuration from the estimator's
parameters and the number of input features. :mod:`aekit.io` records the family's name in a
model directory and rebuilds the module from this table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from .classifier import ClassifierConfig, EncoderClassifier
from .ladder import LadderConfig, LadderNetwork
from .stacked import StackedAutoencoder, StackedConfig


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
    """

    module: type[nn.Module]
    config: type
    from_params: Callable[[Mapping[str, Any], int], Any] | None = None
    layerwise: bool = False


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


FAMILIES: dict[str, Family] = {
    "dense": Family(StackedAutoencoder, StackedConfig, _dense_config, layerwise=True),
    "classifier": Family(EncoderClassifier, ClassifierConfig),
    "ladder": Family(LadderNetwork, LadderConfig),
}
AUTOENCODER_FAMILIES = tuple(name for name, family in FAMILIES.items() if family.from_params)


def family_of(module: nn.Module) -> str:
    """The registry name of ``module``'s family."""
    for name, family in FAMILIES.items():
        if type(module) is family.module:
            return name
    raise TypeError(f"{type(module).__name__} is not a registered model family ({sorted(FAMILIES)})")

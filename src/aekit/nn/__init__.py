"""Torch modules of aekit: no training, no I/O, no plotting."""

from .activations import ACTIVATIONS, make_activation
from .classifier import ClassifierConfig, EncoderClassifier
from .encoder import DenseEncoder
from .families import AUTOENCODER_FAMILIES, FAMILIES, Family, family_of
from .ladder import LadderConfig, LadderNetwork
from .layers import TiedLinear
from .stacked import StackedAutoencoder, StackedConfig

__all__ = [
    "ACTIVATIONS",
    "AUTOENCODER_FAMILIES",
    "ClassifierConfig",
    "DenseEncoder",
    "EncoderClassifier",
    "FAMILIES",
    "Family",
    "LadderConfig",
    "LadderNetwork",
    "StackedAutoencoder",
    "StackedConfig",
    "TiedLinear",
    "family_of",
    "make_activation",
]

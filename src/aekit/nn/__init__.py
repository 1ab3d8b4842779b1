"""Torch modules of aekit: no training, no I/O, no plotting."""

from .activations import ACTIVATIONS, make_activation
from .classifier import ClassifierConfig, EncoderClassifier
from .conv import ConvAutoencoder, ConvConfig
from .custom import CustomAutoencoder, CustomConfig
from .encoder import DenseEncoder
from .families import AUTOENCODER_FAMILIES, FAMILIES, Family, family_of
from .ladder import LadderConfig, LadderNetwork
from .layers import TiedLinear
from .stacked import StackedAutoencoder, StackedConfig
from .variational import LIKELIHOODS, DenseVAE, VAEConfig

__all__ = [
    "ACTIVATIONS",
    "AUTOENCODER_FAMILIES",
    "ClassifierConfig",
    "ConvAutoencoder",
    "ConvConfig",
    "CustomAutoencoder",
    "CustomConfig",
    "DenseEncoder",
    "EncoderClassifier",
    "FAMILIES",
    "LIKELIHOODS",
    "Family",
    "LadderConfig",
    "LadderNetwork",
    "StackedAutoencoder",
    "StackedConfig",
    "TiedLinear",
    "DenseVAE",
    "VAEConfig",
    "family_of",
    "make_activation",
]

"""Torch modules of aekit: no training, no I/O, no plotting."""
from .layers import ACTIVATIONS, TiedLinear, make_activation
from .stacked import StackedAutoencoder, StackedConfig

__all__ = ["ACTIVATIONS", "StackedAutoencoder", "StackedConfig", "TiedLinear", "make_activation"]

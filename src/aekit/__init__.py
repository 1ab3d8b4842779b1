"""aekit: autoencoders with a scikit-learn face and a PyTorch core."""

from importlib.metadata import PackageNotFoundError, version

from .estimators import (
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    LadderClassifier,
    PretrainedClassifier,
    VariationalAutoencoder,
)

try:
    __version__ = version("aekit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "AutoencoderOutlierDetector",
    "AutoencoderTransformer",
    "LadderClassifier",
    "PretrainedClassifier",
    "VariationalAutoencoder",
    "__version__",
]

"""scikit-learn estimators over aekit's modules: check the parameters, build the module, train."""

from .autoencoder import TRAINING_MODES, AutoencoderTransformer
from .base import ESTIMATORS, AekitEstimator
from .classifier import PretrainedClassifier
from .labels import UNLABELLED
from .ladder import LadderClassifier
from .outlier import AutoencoderOutlierDetector
from .variational import VariationalAutoencoder

__all__ = [
    "AekitEstimator",
    "AutoencoderOutlierDetector",
    "AutoencoderTransformer",
    "ESTIMATORS",
    "LadderClassifier",
    "PretrainedClassifier",
    "TRAINING_MODES",
    "UNLABELLED",
    "VariationalAutoencoder",
]

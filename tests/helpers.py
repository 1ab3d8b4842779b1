"""Small builders the tests share."""

import numpy as np
from sklearn.datasets import make_classification

from aekit.engine import TrainConfig


def train_config(**settings) -> TrainConfig:
    """A :class:`~aekit.engine.TrainConfig` with small test defaults: the engine itself takes
    every setting explicitly (the estimators' defaults are theirs, not the engine's)."""
    defaults = dict(
        epochs=3,
        batch_size=16,
        learning_rate=0.01,
        learning_rate_schedule="constant",
        validation_fraction=0.0,
        patience=None,
        max_grad_norm=None,
    )
    return TrainConfig(**{**defaults, **settings})


# scikit-learn's checks a semi-supervised classifier cannot pass, with the reason
SEMI_SUPERVISED_FAILED_CHECKS = {
    "check_classifiers_classes": "it fits labels [-1, 1]; -1 marks an unlabelled row (scikit-learn's "
    "semi-supervised convention), so one class is left; scikit-learn exempts its own semi-supervised "
    "estimators from that part of the check by name",
}


def semi_supervised_data(n_samples: int):
    """``(X, y, y_semi)``: ``n_samples`` rows, 10 features, 3 classes; in ``y_semi`` every row
    after the first 30 is unlabelled (-1)."""
    X, y = make_classification(n_samples=n_samples, n_features=10, n_informative=6, n_classes=3, random_state=0)
    y_semi = y.copy()
    y_semi[30:] = -1
    return X.astype(np.float32), y, y_semi

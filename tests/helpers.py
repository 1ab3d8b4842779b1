"""Small builders the tests share."""

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

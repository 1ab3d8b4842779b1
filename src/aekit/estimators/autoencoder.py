"""AutoencoderTransformer: a stacked (optionally tied, denoising) autoencoder as a scikit-learn
transformer."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from .. import corruption, training
from ..engine import BATCH_SIZE, EPOCHS, LEARNING_RATE
from ..layerwise import METHOD, STEP_COUNT, LayerwiseConfig
from ..nn import ACTIVATIONS, AUTOENCODER_FAMILIES, FAMILIES
from ..objectives import CORRUPTION, CORRUPTION_LEVEL, L2, LOSS, Objective
from ..params import Flag, InvalidParameterError, Maybe, Options, Param, PerLayer
from .base import ACTIVATION, HIDDEN_LAYER_SIZES, AekitEstimator, TrainingParams, estimator, outputs_in_batches

TRAINING_MODES = ("end_to_end", "layerwise")


@estimator
class AutoencoderTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, TrainingParams, AekitEstimator):
    """Stacked (optionally tied, denoising) autoencoder as a scikit-learn transformer.

    ``transform`` gives the codes of the coding layer, ``inverse_transform`` maps codes back
    to inputs, ``score`` is the negative mean squared reconstruction error.

    {parameters}

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained autoencoder, a :class:`~aekit.nn.StackedAutoencoder` for
        ``architecture="dense"``.
    history_ : list of dict
        One record per epoch (and per phase).
    n_features_in_ : int
    n_iter_ : int
        Epochs run.
    """

    hidden_layer_sizes: tuple = HIDDEN_LAYER_SIZES.field((300, 150), kw_only=False)
    architecture: str = Param(
        Options(*AUTOENCODER_FAMILIES), "The model family: 'dense' is a symmetric multilayer perceptron."
    ).field("dense")
    activation: str = ACTIVATION.field("elu")
    code_activation: str | None = Param(
        Maybe(Options(*ACTIVATIONS)), "Activation of the coding layer; None uses activation."
    ).field(None)
    tied: bool = Param(
        Flag(),
        "Decoder weights are the transposes of the encoder weights: half the weights, and they are regularised once.",
    ).field(True)
    loss: str = LOSS.field("mse")
    l2: float = L2.field(5e-4)
    corruption: str | None = CORRUPTION.field(None)
    corruption_level: float = CORRUPTION_LEVEL.field(0.1)
    training: str = Param(
        Options(*TRAINING_MODES),
        "Train the whole stack at once, or greedily one layer at a time (then fine-tune for fine_tune_epochs).",
    ).field("end_to_end")
    layerwise_method: str = METHOD.field("phases")
    layerwise_epochs: int | tuple = Param(
        PerLayer(EPOCHS.constraint), "Epochs of each layer-wise phase: one value for all, or one per layer."
    ).field(4)
    layerwise_step_count: str = STEP_COUNT.field("per_phase")
    fine_tune_epochs: int = Param(EPOCHS.constraint, "End-to-end epochs after the layer-wise phases.").field(0)
    fine_tune_learning_rate: float | None = Param(
        Maybe(LEARNING_RATE.constraint),
        "Step size of that fine-tuning; None: learning_rate / 10. "
        "A fresh Adam's first steps move every weight by about the step size whatever its "
        "gradient, which at the pretraining rate can undo the pretrained stack.",
        flags=("--fine-tune-learning-rate", "--fine-tune-lr"),
    ).field(None)
    epochs: int = EPOCHS.but(doc="Epochs of end-to-end training.").field(10)
    batch_size: int = BATCH_SIZE.field(150)
    learning_rate: float = LEARNING_RATE.field(0.01)

    # -- fitting -------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Train on ``X`` of shape (n_samples, n_features); ``y`` is ignored. Returns self."""
        self._validate_params()
        plan = self._plan()
        X = self._check_rows(X, reset=True)  # rows on disk stay there, and are streamed
        if self.loss == "bce" and (X.min() < 0 or X.max() > 1):
            raise ValueError("loss='bce' needs inputs in [0, 1]; scale X (e.g. MinMaxScaler) or use loss='mse'")
        device, init_generator, generator = self._runtime(self.random_state)
        family = FAMILIES[self.architecture]
        config = family.from_params(self.get_params(deep=False), X.shape[1])
        self.module_ = family.module(config, init_generator).to(device)
        self.history_ = training.train_autoencoder(self.module_, X, plan, generator=generator)
        self.n_iter_ = len(self.history_)
        return self

    def _check_params_together(self) -> None:
        self._check_early_stopping()
        self._check_step_options()
        corruption.validate(self.corruption, self.corruption_level)
        if self.training == "layerwise":
            if not FAMILIES[self.architecture].layerwise:
                raise InvalidParameterError(
                    f"training='layerwise' is not available for architecture={self.architecture!r}"
                )
            epochs = self.layerwise_epochs
            if isinstance(epochs, (tuple, list)) and len(epochs) != self._depth():
                raise InvalidParameterError(
                    f"layerwise_epochs={epochs!r} has {len(epochs)} values, but hidden_layer_sizes="
                    f"{self.hidden_layer_sizes!r} has {self._depth()} layers: give one value or one per layer"
                )
            if self.validation_fraction and not self.fine_tune_epochs:
                raise InvalidParameterError(
                    "validation_fraction (and patience) apply to end-to-end training and to "
                    "fine-tuning; with training='layerwise' and fine_tune_epochs=0 they would be "
                    "ignored: set fine_tune_epochs > 0 or validation_fraction=0"
                )

    def _depth(self) -> int:
        sizes = self.hidden_layer_sizes
        return len(sizes) if isinstance(sizes, (tuple, list)) else 1

    def _plan(self) -> training.Plan:
        """How :func:`aekit.training.train_autoencoder` trains this estimator's module."""
        objective = Objective(self.loss, self.l2, self.corruption, self.corruption_level)
        if self.training == "end_to_end":
            return training.Plan(objective, end_to_end=self._train_config("train"))
        layerwise = LayerwiseConfig(
            method=self.layerwise_method,
            epochs=self.layerwise_epochs,
            learning_rate=self.learning_rate,
            l2=self.l2,
            corruption=self.corruption,
            corruption_level=self.corruption_level,
            batch_size=self.batch_size,
            step_count=self.layerwise_step_count,
        )
        layerwise.phases(self._depth())  # one value per layer?
        fine_tune = (
            self._train_config(
                "fine-tune",
                epochs=self.fine_tune_epochs,
                learning_rate=self.fine_tune_learning_rate or self.learning_rate / 10,
            )
            if self.fine_tune_epochs
            else None
        )
        return training.Plan(
            objective, layerwise=layerwise, fine_tune=fine_tune, verbose=bool(self.verbose), step=self._step_options()
        )

    # -- using the fitted model ----------------------------------------------------------
    def transform(self, X) -> np.ndarray:
        """Codes of the coding layer, shape (n_samples, n_codes)."""
        X = self._check(X)  # first: it raises NotFittedError before module_ is looked up
        return self._apply(self.module_.encode, X)

    def inverse_transform(self, X) -> np.ndarray:
        """Decode codes back to the input space."""
        check_is_fitted(self)
        return self._apply(self.module_.decode, self._check_codes(X))

    def reconstruct(self, X) -> np.ndarray:
        """``inverse_transform(transform(X))`` in one pass, without corruption."""
        X = self._check(X)
        return self._apply(self.module_, X)

    def score(self, X, y=None) -> float:
        """Negative mean squared reconstruction error (higher is better, as scikit-learn wants),
        summed in float64 a batch at a time (rows on disk are never held whole)."""
        X = self._check(X)
        squares = sum(
            float(np.square(rec - rows, dtype=np.float64).sum())
            for rows, rec in outputs_in_batches(self.module_, self.module_, X)
        )
        return -squares / (X.shape[0] * X.shape[1])

    @property
    def _n_features_out(self) -> int:
        return int(self.module_.n_codes)

    def _check(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self._check_rows(X, reset=False)

    def _check_codes(self, Z) -> np.ndarray:
        Z = check_array(Z, dtype=np.float32)
        if Z.shape[1] != self._n_features_out:
            raise ValueError(
                f"codes have {Z.shape[1]} features, but the coding layer of "
                f"{type(self).__name__} has {self._n_features_out}"
            )
        return Z

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

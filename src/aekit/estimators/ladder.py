"""LadderClassifier: a Ladder network (Rasmus et al. 2015) as a scikit-learn classifier that
learns from labelled and unlabelled rows at once (``y == -1`` marks an unlabelled row)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import ClassifierMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import engine, semisupervised
from ..engine import BATCH_SIZE, EPOCHS, LEARNING_RATE, LEARNING_RATE_SCHEDULE
from ..nn import LadderConfig, LadderNetwork
from ..params import AnyOf, InvalidParameterError, Options, Param, Sizes
from ..semisupervised import DECODER, DENOISING_COSTS, NOISE_STD
from .base import AekitEstimator, LogitsClassifier, TrainingParams, estimator, is_fitted

# Rasmus et al.'s hidden layers for MNIST's 784 pixels; "auto" scales them to smaller inputs
PAPER_WIDTHS, PAPER_INPUTS = (1000, 500, 250, 250, 250), 784
MIN_AUTO_WIDTH = 10


def auto_hidden_sizes(n_features: int) -> tuple[int, ...]:
    """The paper's widths for ``n_features >= 784``; below that, scaled by the square root of
    ``n_features / 784`` (at least 10 units a layer): 286-143-71-71-71 for the 64 pixels of the
    8x8 digits.

    Why the square root: scaled in proportion (82-41-20-20-20 for the digits) the layers are
    too narrow. On a validation split of the digits' training rows (``benches/bench_ladder_widths.py``,
    4 seeds, 100 labels) they erred 6.0 % of the time, these widths 3.1 %, and the paper's
    own widths 2.6 % for nearly three times the CPU time."""
    return scaled_paper_widths(min(1.0, (n_features / PAPER_INPUTS) ** 0.5))


def scaled_paper_widths(scale: float) -> tuple[int, ...]:
    """The paper's hidden widths times ``scale``, at least :data:`MIN_AUTO_WIDTH` units each."""
    return tuple(max(MIN_AUTO_WIDTH, round(w * scale)) for w in PAPER_WIDTHS)


@estimator
class LadderClassifier(LogitsClassifier, ClassifierMixin, TransformerMixin, TrainingParams, AekitEstimator):
    """Ladder network (Rasmus, Valpola, Honkala, Berglund & Raiko, NIPS 2015): a classifier
    trained on its labelled rows while it denoises every row, layer by layer.

    ``fit(X, y)`` follows scikit-learn's semi-supervised convention: rows with ``y == -1`` are
    unlabelled. Each step takes ``batch_size`` rows of all of ``X`` (labels unused) and as many
    labelled rows, cycled (all of them when there are fewer); an epoch is one pass over ``X``.
    The loss is the cross-entropy of the corrupted network on the labelled rows plus the
    weighted denoising costs of the decoder on the unlabelled ones (:mod:`aekit.semisupervised`).
    Prediction runs the clean network with batch-normalisation statistics computed over every
    training row after training.

    The defaults are the paper's settings for permutation-invariant MNIST: 784-1000-500-250-
    250-250-10, noise 0.3, denoising weights 1000, 10, 0.1, ..., Adam at 0.002 for 100 epochs
    then decayed linearly to 0 over 50, batches of 100 labelled and 100 unlabelled rows.

    {parameters}

    Attributes
    ----------
    module_ : aekit.nn.LadderNetwork
        The network: its ``forward`` gives the clean logits, ``hidden`` the hidden layers.
    classes_ : ndarray of shape (n_classes,)
    history_ : list of dict
        Per-epoch records: ``loss``, ``cross_entropy``, ``denoising_<l>`` (layer l's cost
        before its weight; 0 is the input), ``learning_rate``, ``seconds``.
    n_iter_ : int
        Epochs run.
    n_features_in_ : int
    """

    _fitted_attributes = (*AekitEstimator._fitted_attributes, "classes_")

    hidden_layer_sizes: str | tuple = Param(
        AnyOf(Options("auto"), Sizes()),
        "Widths of the hidden layers, bottom first. 'auto': the paper's 1000-500-250-250-250 "
        "for 784 or more input features, scaled down by the square root of the ratio for fewer "
        "(at least 10 units; 286-143-71-71-71 for 64 features).",
        flags=("--hidden",),
    ).field("auto", kw_only=False)
    decoder: str = DECODER.field("full")
    denoising_costs: str | float | tuple = DENOISING_COSTS.field("auto")
    noise_std: float = NOISE_STD.field(0.3)
    epochs: int = EPOCHS.but(doc="Passes over all rows of X (labelled or not).").field(150)
    batch_size: int = BATCH_SIZE.but(
        doc="Rows of X per step, the same number of labelled rows beside them (all of them when "
        "there are fewer); the remainder of each epoch's shuffled rows is left out of that epoch."
    ).field(100)
    learning_rate: float = LEARNING_RATE.field(0.002)
    learning_rate_schedule: str = LEARNING_RATE_SCHEDULE.field("linear")

    # -- fitting -------------------------------------------------------------------------
    def fit(self, X, y):
        """Train on every row of ``X``; the labels of rows with ``y != -1`` supervise.

        ``module_`` and ``classes_`` exist from the first epoch on, so a callback (the
        ``callbacks`` parameter) can evaluate the network as it trains
        (:func:`aekit.semisupervised.calibrate` first gives it exact batch statistics; training
        does not read them). With ``warm_start`` and a fitted network, training continues from
        its weights and classes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels; ``-1`` marks an unlabelled row (use an object array to mix string
            labels with ``-1``). A class no labelled row has is unknown to the classifier.

        Returns
        -------
        self : LadderClassifier
            Fitted.
        """
        self._validate_params()
        warm = self.warm_start and is_fitted(self)
        X, labelled, classes, targets = self._check_semisupervised(X, y, reset=not warm)
        config = self._train_config("ladder")
        device, init_generator, generator = self._runtime(self.random_state)
        sizes = self._hidden_sizes(X.shape[1])
        if warm:
            classes, targets = self.classes_, self._warm_targets(classes, classes[targets])
        network = LadderConfig(X.shape[1], sizes, len(classes), self.decoder)
        module = self._warm_module(network, device) if warm else LadderNetwork(network, init_generator).to(device)
        source = engine.SemiSupervised(
            engine.as_tensor(X, device),
            torch.as_tensor(np.flatnonzero(labelled), device=device),
            torch.as_tensor(targets, device=device),
        )
        earlier = self.history_ if warm else []
        self.module_, self.classes_ = module, classes
        history = semisupervised.train_ladder(
            module,
            source,
            costs=semisupervised.layer_costs(self.denoising_costs, module.depth, self.decoder),
            noise_std=self.noise_std,
            config=config,
            generator=generator,
            callbacks=self.callbacks,
        )
        self.history_ = earlier + history
        self.n_iter_ = len(self.history_)
        return self

    def _hidden_sizes(self, n_features: int) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        if sizes == "auto":
            return auto_hidden_sizes(n_features)
        return tuple(sizes) if isinstance(sizes, (tuple, list)) else (sizes,)

    def _check_params_together(self) -> None:
        self._check_early_stopping()
        costs = self.denoising_costs
        if not isinstance(costs, (tuple, list)):
            return
        if self.decoder == "gamma":
            raise InvalidParameterError(
                f"denoising_costs={costs!r}: with decoder='gamma' only the top layer has a "
                "denoising cost; give one value (or 'auto')"
            )
        n_layers = len(self._hidden_sizes(PAPER_INPUTS)) + 2  # 'auto' has as many at any width
        if len(costs) != n_layers:
            raise InvalidParameterError(
                f"denoising_costs={costs!r} has {len(costs)} values, but hidden_layer_sizes="
                f"{self.hidden_layer_sizes!r} makes {n_layers} layers to denoise (the input, each "
                "hidden layer and the output layer): give one value or one per layer"
            )

    # -- using the fitted model ----------------------------------------------------------
    def transform(self, X) -> np.ndarray:
        """The clean top hidden layer, shape (n_samples, hidden_layer_sizes[-1])."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        return self._apply(self.module_.hidden, X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

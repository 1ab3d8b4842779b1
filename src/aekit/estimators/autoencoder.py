"""AutoencoderTransformer: a stacked or convolutional (optionally tied, denoising, sparse,
contractive) autoencoder, or your own encoder and decoder, as a scikit-learn transformer."""

from __future__ import annotations

import copy
import math

import numpy as np

from .. import corruption, training
from ..engine import BATCH_SIZE, EPOCHS, LEARNING_RATE
from ..layerwise import METHOD, STEP_COUNT, LayerwiseConfig
from ..nn import ACTIVATIONS, AUTOENCODER_FAMILIES, FAMILIES, CustomAutoencoder
from ..nn.conv import BATCH_NORM, CHANNELS, IMAGE_SHAPE, KERNEL_SIZE, as_image_shape, grid_sizes
from ..nn.custom import DECODER, ENCODER
from ..objectives import (
    ACTIVITY_L1,
    CONTRACTIVE_WEIGHT,
    CORRUPTION,
    CORRUPTION_LEVEL,
    L2,
    LOSS,
    SPARSITY_TARGET,
    SPARSITY_WEIGHT,
    CodePenalties,
    Objective,
)
from ..params import Flag, InvalidParameterError, Maybe, Options, Param, PerLayer
from . import images
from .base import (
    ACTIVATION,
    HIDDEN_LAYER_SIZES,
    AekitEstimator,
    TrainingParams,
    estimator,
    is_fitted,
    outputs_in_batches,
)
from .codes import CodesTransformer

TRAINING_MODES = ("end_to_end", "layerwise")


@estimator
class AutoencoderTransformer(CodesTransformer, TrainingParams, AekitEstimator):
    """Stacked or convolutional (optionally tied, denoising, sparse, contractive) autoencoder as
    a scikit-learn transformer; or your own encoder and decoder modules, trained by aekit's engine.

    ``transform`` gives the codes of the coding layer, ``inverse_transform`` maps codes back
    to inputs, ``score`` is the negative mean squared reconstruction error.

    X is rows (n_samples, n_features) or images: (n, height, width) or (n, channels, height,
    width). Images are flattened to rows (their shape is kept as ``image_shape_``);
    ``reconstruct`` gives back the input's shape. ``architecture="conv"`` needs the image
    shape: from ``image_shape`` or from images given to ``fit``.

    {parameters}

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained autoencoder: a :class:`~aekit.nn.StackedAutoencoder` for
        ``architecture="dense"``, a :class:`~aekit.nn.ConvAutoencoder` for ``"conv"``, a
        :class:`~aekit.nn.CustomAutoencoder` around copies of ``encoder`` and ``decoder``.
    image_shape_ : tuple of int or None
        (channels, height, width) of the images the model was fitted on; None for rows
        without an image shape.
    history_ : list of dict
        One record per epoch (and per phase).
    n_features_in_ : int
    n_iter_ : int
        Epochs run.
    """

    hidden_layer_sizes: tuple = HIDDEN_LAYER_SIZES.field((300, 150), kw_only=False)
    architecture: str = Param(
        Options(*AUTOENCODER_FAMILIES),
        "The model family: 'dense' is a symmetric multilayer perceptron; 'conv' strided "
        "convolutions (channels), then the dense layers of hidden_layer_sizes, and their mirror "
        "image (transposed convolutions).",
    ).field("dense")
    image_shape: tuple | None = IMAGE_SHAPE.field(None)
    channels: tuple = CHANNELS.field((32, 64))
    kernel_size: int = KERNEL_SIZE.field(3)
    batch_norm: bool = BATCH_NORM.field(False)
    encoder: object = ENCODER.field(None)
    decoder: object = DECODER.field(None)
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
    sparsity_target: float | None = SPARSITY_TARGET.field(None)
    # Ng's beta = 3 against a reconstruction error summed over pixels and halved is about 0.01
    # against aekit's mean over pixels (3 / 392); much more makes every unit the same template
    sparsity_weight: float = SPARSITY_WEIGHT.field(0.01)
    activity_l1: float = ACTIVITY_L1.field(0.0)
    contractive_weight: float = CONTRACTIVE_WEIGHT.field(0.0)
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
    _fitted_attributes = (*AekitEstimator._fitted_attributes, "image_shape_")

    def fit(self, X, y=None):
        """Train on rows ``X`` (n_samples, n_features) or images (n, [channels,] height, width);
        ``y`` is ignored. Returns self.

        With ``warm_start`` and a fitted network, training continues from its weights. When
        training fails (e.g. :class:`~aekit.engine.DivergenceError`), the fitted attributes
        stay as they were.
        """
        self._validate_params()
        plan = self._plan()
        warm = self.warm_start and is_fitted(self)
        X, found_shape = images.to_rows(X)
        images.check_shape(found_shape, self.image_shape, "image_shape")
        X = self._check_rows(X, reset=not warm)  # rows on disk stay there, and are streamed
        if self.loss == "bce" and (X.min() < 0 or X.max() > 1):
            raise ValueError("loss='bce' needs inputs in [0, 1]; scale X (e.g. MinMaxScaler) or use loss='mse'")
        image_shape = found_shape or (None if self.image_shape is None else as_image_shape(self.image_shape))
        if image_shape is not None and math.prod(image_shape) != X.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features, but image_shape {image_shape} holds {math.prod(image_shape)}"
            )
        device, init_generator, generator = self._runtime(self.random_state)
        if warm:
            module = self._continued_module(X.shape[1], image_shape, device)
        else:
            module = self._build_module(X.shape[1], image_shape, init_generator).to(device)
        history = training.train_autoencoder(module, X, plan, generator=generator, callbacks=self.callbacks)
        self.module_, self.image_shape_ = module, image_shape
        self.history_ = (self.history_ if warm else []) + history
        self.n_iter_ = len(self.history_)
        return self

    def _build_module(self, n_features: int, image_shape, generator):
        """The untrained module: the architecture's, or your encoder and decoder."""
        if self.encoder is not None:
            output = "sigmoid" if self.loss == "bce" else "linear"
            input_shape = image_shape or (n_features,)
            return CustomAutoencoder.from_parts(self.encoder, self.decoder, input_shape, output, generator)
        return FAMILIES[self.architecture].module(self._module_config(n_features, image_shape), generator)

    def _module_config(self, n_features: int, image_shape):
        """The network the parameters describe for ``n_features`` inputs."""
        params = {**self.get_params(deep=False), "image_shape": image_shape}
        return FAMILIES[self.architecture].from_params(params, n_features)

    def _continued_module(self, n_features: int, image_shape, device):
        """warm_start's copy of the fitted network, checked against the parameters."""
        if self.encoder is not None:  # your own modules: no configuration to compare
            return copy.deepcopy(self.module_).to(device)
        return self._warm_module(self._module_config(n_features, image_shape), device)

    def _family(self) -> str:
        return "custom" if self.encoder is not None else self.architecture

    def _check_params_together(self) -> None:
        self._check_early_stopping()
        self._check_step_options()
        corruption.validate(self.corruption, self.corruption_level)
        if (self.encoder is None) != (self.decoder is None):
            raise InvalidParameterError("give encoder and decoder together (or neither)")
        if self.architecture == "conv" and self.image_shape is not None:
            try:
                grid_sizes(self.image_shape, len(self.channels))
            except ValueError as error:
                raise InvalidParameterError(
                    f"image_shape={self.image_shape!r} and channels={self.channels!r}: {error}"
                ) from None
        self._check_sparsity()
        if self.training == "layerwise":
            self._check_layerwise()

    def _check_layerwise(self) -> None:
        family = FAMILIES[self._family()]
        if not family.layerwise:
            what = "your own encoder and decoder" if self.encoder is not None else f"architecture={self.architecture!r}"
            raise InvalidParameterError(f"training='layerwise' is not available with {what}")
        if self.layerwise_method not in family.layerwise_methods:
            raise InvalidParameterError(
                f"layerwise_method={self.layerwise_method!r} is not available for architecture="
                f"{self.architecture!r}; it has {', '.join(map(repr, family.layerwise_methods))}"
            )
        epochs = self.layerwise_epochs
        if isinstance(epochs, (tuple, list)) and len(epochs) != self._depth():
            layers = f"hidden_layer_sizes={self.hidden_layer_sizes!r}"
            if self.architecture == "conv":
                layers = f"channels={self.channels!r} with {layers}"
            raise InvalidParameterError(
                f"layerwise_epochs={epochs!r} has {len(epochs)} values, but {layers} has {self._depth()} "
                "layers: give one value or one per layer"
            )
        if self.validation_fraction and not self.fine_tune_epochs:
            raise InvalidParameterError(
                "validation_fraction (and patience) apply to end-to-end training and to "
                "fine-tuning; with training='layerwise' and fine_tune_epochs=0 they would be "
                "ignored: set fine_tune_epochs > 0 or validation_fraction=0"
            )

    def _check_sparsity(self) -> None:
        """The KL sparsity penalty reads activations as firing rates in (0, 1): sigmoid codings,
        and with layer-wise training every layer is a phase's coding layer."""
        if self.sparsity_target is None:
            return
        coding = self.code_activation or self.activation
        if coding != "sigmoid":
            raise InvalidParameterError(
                f"sparsity_target={self.sparsity_target} needs sigmoid codings (mean activations in (0, 1)), but "
                f"the coding layer's activation is {coding!r}: set code_activation='sigmoid', or use activity_l1"
            )
        if self.training == "layerwise" and self._depth() > 1 and self.activation != "sigmoid":
            raise InvalidParameterError(
                f"sparsity_target with training='layerwise' applies to every phase's coding layer, so every "
                f"hidden layer needs activation='sigmoid', not {self.activation!r}"
            )

    def _depth(self) -> int:
        """Layers a layer-wise training has phases for: the convolutions (conv), then the dense layers."""

        def count(sizes) -> int:
            return len(sizes) if isinstance(sizes, (tuple, list)) else 1

        return count(self.hidden_layer_sizes) + (count(self.channels) if self.architecture == "conv" else 0)

    def _plan(self) -> training.Plan:
        """How :func:`aekit.training.train_autoencoder` trains this estimator's module."""
        penalties = CodePenalties(self.sparsity_target, self.sparsity_weight, self.activity_l1, self.contractive_weight)
        objective = Objective(self.loss, self.l2, self.corruption, self.corruption_level, penalties)
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
            max_grad_norm=self.max_grad_norm,
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
    def score(self, X, y=None) -> float:
        """Negative mean squared reconstruction error (higher is better, as scikit-learn wants),
        summed in float64 a batch at a time (rows on disk are never held whole)."""
        X = self._check(X)
        squares = sum(
            float(np.square(rec - rows, dtype=np.float64).sum())
            for rows, rec in outputs_in_batches(self.module_, self.module_, X)
        )
        return -squares / (X.shape[0] * X.shape[1])

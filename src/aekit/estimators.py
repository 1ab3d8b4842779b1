"""scikit-learn estimators over aekit's modules: validate, build the module, call the engine."""
from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted, validate_data

from . import corruption as corruption_
from . import engine, layerwise
from .losses import RECONSTRUCTION_LOSSES
from .nn import StackedAutoencoder, StackedConfig
from .objectives import clean_reconstruction, reconstruction_objective


TRAINING_MODES = ("end_to_end", "layerwise")


def _validate_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {tuple(choices)}")


class AutoencoderTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Stacked (optionally tied, denoising) autoencoder as a scikit-learn transformer.

    ``transform`` gives the codes of the coding layer, ``inverse_transform`` maps codes back
    to inputs, ``score`` is the negative mean squared reconstruction error.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(300, 150)
        Encoder widths; the last is the coding layer. The decoder mirrors them.
    activation : {"elu", "relu", "selu", "sigmoid", "tanh", "linear"}, default="elu"
    tied : bool, default=True
        Decoder weights are the transposes of the encoder weights (SPEC 2).
    l2 : float, default=5e-4
        Weight of ``sum(W**2)/2`` over weight matrices that are parameters (not biases, not
        tied decoder weights).
    loss : {"mse", "bce"}, default="mse"
        ``"bce"`` puts a sigmoid on the output and needs inputs in [0, 1].
    corruption : {None, "gaussian", "masking"}, default=None
        Training-time input noise (denoising autoencoder); never applied outside ``fit``.
    corruption_level : float, default=0.1
        Standard deviation for ``"gaussian"``, drop rate for ``"masking"``.
    code_activation : str or None, default=None
        Activation of the coding layer; None uses ``activation``.
    training : {"end_to_end", "layerwise"}, default="end_to_end"
        Train the whole stack at once, or greedily one layer at a time (SPEC 3).
    layerwise_method : {"phases", "separate"}, default="phases"
        The book's two methods: one model trained in phases with frozen, cached lower layers,
        or separate shallow autoencoders assembled into the stack.
    layerwise_epochs : int or tuple of int, default=4
        Epochs per layer-wise phase (one value for all, or one per layer).
    fine_tune_epochs : int, default=0
        End-to-end epochs after the layer-wise phases.
    epochs, batch_size, learning_rate : training settings (Adam); ``epochs`` is for
        end-to-end training.
    validation_fraction : float, default=0.0
        Fraction of rows held out to compute ``val_loss`` each epoch.
    patience : int or None, default=None
        Stop after this many epochs without validation improvement (needs a validation fraction).
    device : str, default="auto"
        "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
    random_state : int, RandomState or None
        Seeds initialisation, batch order and noise; the same seed gives the same weights on CPU.
    verbose : bool, default=False
        Show a progress bar.

    Attributes
    ----------
    module_ : StackedAutoencoder
    history_ : list of dict
        One record per epoch (and per phase).
    n_features_in_ : int
    n_iter_ : int
        Epochs run.
    """

    def __init__(self, hidden_layer_sizes=(300, 150), *, activation="elu", tied=True, l2=5e-4,
                 loss="mse", corruption=None, corruption_level=0.1, code_activation=None,
                 training="end_to_end", layerwise_method="phases", layerwise_epochs=4,
                 fine_tune_epochs=0, epochs=10, batch_size=150, learning_rate=0.01, validation_fraction=0.0,
                 patience=None, device="auto", random_state=None, verbose=False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.tied = tied
        self.l2 = l2
        self.loss = loss
        self.corruption = corruption
        self.corruption_level = corruption_level
        self.code_activation = code_activation
        self.training = training
        self.layerwise_method = layerwise_method
        self.layerwise_epochs = layerwise_epochs
        self.fine_tune_epochs = fine_tune_epochs
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- fitting -------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Train on ``X`` of shape (n_samples, n_features); ``y`` is ignored. Returns self."""
        X = self._validate_params_and_data(X)
        device = engine.resolve_device(self.device)
        init_generator, generator = engine.make_generators(self.random_state, device)
        self.module_ = StackedAutoencoder(self._module_config(X.shape[1]), init_generator).to(device)
        if self.training == "layerwise":
            self.history_ = self._train_layerwise(X, generator)
        else:
            self.history_ = self._train(X, generator)
        self.n_iter_ = len(self.history_)
        return self

    def _validate_params_and_data(self, X) -> np.ndarray:
        _validate_choice("loss", self.loss, RECONSTRUCTION_LOSSES)
        _validate_choice("training", self.training, TRAINING_MODES)
        _validate_choice("layerwise_method", self.layerwise_method, layerwise.METHODS)
        corruption_.validate(self.corruption, self.corruption_level)
        if not self.l2 >= 0:
            raise ValueError(f"l2 must be >= 0, got {self.l2}")
        X = validate_data(self, X, dtype=np.float32)
        if self.loss == "bce" and (X.min() < 0 or X.max() > 1):
            raise ValueError("loss='bce' needs inputs in [0, 1]; scale X (e.g. MinMaxScaler) or use loss='mse'")
        return X

    def _module_config(self, n_features: int) -> StackedConfig:
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if np.isscalar(sizes) else tuple(sizes)
        return StackedConfig(n_inputs=n_features, hidden_sizes=sizes, activation=self.activation,
                             output_activation="sigmoid" if self.loss == "bce" else "linear",
                             tied=bool(self.tied), code_activation=self.code_activation)

    def _train_config(self, **overrides) -> engine.TrainConfig:
        settings = dict(epochs=self.epochs, batch_size=self.batch_size,
                        learning_rate=self.learning_rate,
                        validation_fraction=self.validation_fraction, patience=self.patience,
                        verbose=bool(self.verbose))
        return engine.TrainConfig(**{**settings, **overrides})

    def _forward_for_loss(self):
        module, logits = self.module_, self.loss == "bce"
        return lambda x: module.decode(module.encode(x), logits=logits)

    def _train(self, X: np.ndarray, generator: torch.Generator, **overrides) -> list[dict]:
        """End-to-end training of every parameter (also the fine-tuning after layer-wise phases)."""
        forward = self._forward_for_loss()
        loss_fn = reconstruction_objective(
            forward, self.module_.weight_matrices(), loss=self.loss, l2=self.l2,
            corruption=self.corruption, corruption_level=self.corruption_level, generator=generator)
        return engine.fit(self.module_, loss_fn, X, params=self.module_.parameters(),
                          config=self._train_config(**overrides), generator=generator,
                          eval_fn=clean_reconstruction(forward, self.loss))

    def _train_layerwise(self, X: np.ndarray, generator: torch.Generator) -> list[dict]:
        """Greedy layer-wise phases, then end-to-end fine-tuning (with validation, if asked)."""
        config = layerwise.LayerwiseConfig(
            method=self.layerwise_method, epochs=self.layerwise_epochs,
            learning_rate=self.learning_rate, l2=self.l2, corruption=self.corruption,
            corruption_level=self.corruption_level, batch_size=self.batch_size)
        history = layerwise.train_layerwise(
            self.module_, X, config=config, generator=generator, verbose=bool(self.verbose),
            objective=layerwise.Objective(self.loss, self.l2, self.corruption, self.corruption_level))
        if self.fine_tune_epochs:
            history += self._train(X, generator, epochs=self.fine_tune_epochs, phase="fine-tune")
        return history

    # -- using the fitted model ----------------------------------------------------------
    def transform(self, X) -> np.ndarray:
        """Codes of the coding layer, shape (n_samples, hidden_layer_sizes[-1])."""
        return self._apply(self.module_.encode, self._check(X))

    def inverse_transform(self, X) -> np.ndarray:
        """Decode codes back to the input space."""
        check_is_fitted(self)
        return self._apply(self.module_.decode, self._check_codes(X))

    def reconstruct(self, X) -> np.ndarray:
        """``inverse_transform(transform(X))`` in one pass, without corruption."""
        return self._apply(self.module_, self._check(X))

    def score(self, X, y=None) -> float:
        """Negative mean squared reconstruction error (higher is better, as scikit-learn wants)."""
        X = self._check(X)
        return -float(np.mean((self._apply(self.module_, X) - X) ** 2))

    @property
    def _n_features_out(self) -> int:
        return int(self.module_.config.hidden_sizes[-1])

    def _check(self, X) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, dtype=np.float32, reset=False)

    def _check_codes(self, Z) -> np.ndarray:
        Z = check_array(Z, dtype=np.float32)
        if Z.shape[1] != self._n_features_out:
            raise ValueError(f"codes have {Z.shape[1]} features, but the coding layer of "
                             f"{type(self).__name__} has {self._n_features_out}")
        return Z

    @torch.no_grad()
    def _apply(self, fn, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        self.module_.eval()
        device = next(self.module_.parameters()).device
        outputs = [fn(torch.from_numpy(X[i:i + batch_size]).to(device)).cpu()
                   for i in range(0, len(X), batch_size)]
        return torch.cat(outputs).numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

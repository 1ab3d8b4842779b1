"""scikit-learn estimators over aekit's modules: validate, build the module, call the engine."""
from __future__ import annotations

from numbers import Integral

import numpy as np
import torch
from sklearn.base import (BaseEstimator, ClassifierMixin, ClassNamePrefixFeaturesOutMixin,
                          TransformerMixin, clone)
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.utils import check_array, check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import classify, engine, layerwise
from . import corruption as corruption_
from .losses import RECONSTRUCTION_LOSSES
from .nn import StackedAutoencoder, StackedConfig


TRAINING_MODES = ("end_to_end", "layerwise")


@torch.no_grad()
def _apply_in_batches(module: torch.nn.Module, fn, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """``fn`` over the rows of ``X`` in evaluation mode, on the module's device; numpy out."""
    module.eval()
    device = next(module.parameters()).device
    outputs = [fn(torch.from_numpy(X[i:i + batch_size]).to(device)).cpu()
               for i in range(0, len(X), batch_size)]
    return torch.cat(outputs).numpy()


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
    layerwise_step_count : {"per_phase", "shared"}, default="per_phase"
        ``"shared"`` carries Adam's step count (not its moments) from one phase to the next
        and into fine-tuning, as the book's TensorFlow 1 code does by reusing one optimizer;
        it makes the first steps of each later phase larger. See
        :class:`aekit.layerwise.LayerwiseConfig`.
    fine_tune_epochs : int, default=0
        End-to-end epochs after the layer-wise phases.
    fine_tune_learning_rate : float or None, default=None
        Learning rate of that fine-tuning; None means ``learning_rate / 10``. A fresh Adam's
        first steps move every weight by about the learning rate whatever its gradient, which
        at the pretraining rate can undo the pretrained stack (seen on MNIST at 0.01).
    epochs, batch_size, learning_rate : training settings (Adam); ``epochs`` is for
        end-to-end training.
    learning_rate_schedule : {"constant", "cosine"}, default="constant"
        Of end-to-end training and of fine-tuning: ``"cosine"`` anneals the step size towards
        0 over their epochs. Layer-wise phases keep a constant step size.
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
                 layerwise_step_count="per_phase", fine_tune_epochs=0, fine_tune_learning_rate=None,
                 epochs=10, batch_size=150, learning_rate=0.01, learning_rate_schedule="constant",
                 validation_fraction=0.0, patience=None, device="auto", random_state=None,
                 verbose=False):
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
        self.layerwise_step_count = layerwise_step_count
        self.fine_tune_epochs = fine_tune_epochs
        self.fine_tune_learning_rate = fine_tune_learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
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
        _validate_choice("layerwise_step_count", self.layerwise_step_count, layerwise.STEP_COUNTS)
        _validate_choice("learning_rate_schedule", self.learning_rate_schedule, engine.LEARNING_RATE_SCHEDULES)
        corruption_.validate(self.corruption, self.corruption_level)
        if not self.l2 >= 0:
            raise ValueError(f"l2 must be >= 0, got {self.l2}")
        if self.fine_tune_learning_rate is not None and not self.fine_tune_learning_rate > 0:
            raise ValueError(f"fine_tune_learning_rate must be > 0, got {self.fine_tune_learning_rate}")
        if self.patience is not None and not self.validation_fraction:
            raise ValueError("patience (early stopping) needs a validation_fraction > 0 to watch")
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
                        learning_rate_schedule=self.learning_rate_schedule,
                        validation_fraction=self.validation_fraction, patience=self.patience,
                        verbose=bool(self.verbose))
        return engine.TrainConfig(**{**settings, **overrides})

    def _objective(self) -> layerwise.Objective:
        return layerwise.Objective(self.loss, self.l2, self.corruption, self.corruption_level)

    def _train(self, X: np.ndarray, generator: torch.Generator, **overrides) -> list[dict]:
        """End-to-end training of every parameter (also the fine-tuning after layer-wise phases)."""
        return layerwise.fine_tune(self.module_, X, objective=self._objective(), generator=generator,
                                   config=self._train_config(**overrides))

    def _train_layerwise(self, X: np.ndarray, generator: torch.Generator) -> list[dict]:
        """Greedy layer-wise phases, then end-to-end fine-tuning (with validation, if asked)."""
        config = layerwise.LayerwiseConfig(
            method=self.layerwise_method, epochs=self.layerwise_epochs,
            learning_rate=self.learning_rate, l2=self.l2, corruption=self.corruption,
            corruption_level=self.corruption_level, batch_size=self.batch_size,
            step_count=self.layerwise_step_count)
        history = layerwise.train_layerwise(
            self.module_, X, config=config, generator=generator, verbose=bool(self.verbose),
            objective=self._objective())
        if self.fine_tune_epochs:
            learning_rate = self.fine_tune_learning_rate or self.learning_rate / 10
            start_step = layerwise.steps_so_far(history, len(X), self.batch_size, self.layerwise_step_count)
            history += self._train(X, generator, epochs=self.fine_tune_epochs,
                                   learning_rate=learning_rate, phase="fine-tune",
                                   adam_start_step=start_step)
        return history

    # -- using the fitted model ----------------------------------------------------------
    def transform(self, X) -> np.ndarray:
        """Codes of the coding layer, shape (n_samples, hidden_layer_sizes[-1])."""
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

    def _apply(self, fn, X: np.ndarray) -> np.ndarray:
        return _apply_in_batches(self.module_, fn, X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


# -- PretrainedClassifier ------------------------------------------------------------------
UNLABELLED = -1  # scikit-learn's semi-supervised mark (SelfTrainingClassifier, LabelSpreading)
PREFIT_MODES = ("auto", True, False)


class PretrainedClassifier(ClassifierMixin, BaseEstimator):
    """Classifier on top of an autoencoder pretrained on labelled and unlabelled rows (SPEC 6).

    ``fit(X, y)`` follows scikit-learn's semi-supervised convention: rows with ``y == -1``
    are unlabelled. It pretrains a stacked autoencoder on *all* rows of ``X`` (labels are not
    used), builds a classifier from its encoder layers plus a new softmax output layer, and
    trains that on the labelled rows only, the lower layers frozen by ``freeze``. Frozen
    layers run once, before training; early stopping uses a validation split of the labelled
    rows.

    Parameters
    ----------
    autoencoder : AutoencoderTransformer, FrozenEstimator or None, default=None
        None builds an :class:`AutoencoderTransformer` from the flat ``hidden_layer_sizes``,
        ``activation``, ``training``, ``corruption``, ``corruption_level`` and ``pretrain_*``
        parameters (the recommended form for grid search). An instance is used as ``prefit``
        says; its own parameters then override those flat ones. Wrap a fitted autoencoder in
        :class:`sklearn.frozen.FrozenEstimator` to keep it fitted through :func:`~sklearn.base.clone`
        (which ``GridSearchCV`` and ``cross_val_score`` call and which unfits a plain instance).
    prefit : {"auto", True, False}, default="auto"
        What to do with an ``autoencoder`` instance. ``"auto"``: used as it is when already
        fitted (never refitted nor modified: its weights are copied), else cloned and fitted on
        ``X``. ``True``: it must be fitted (else ``NotFittedError``). ``False``: always cloned
        and refitted on ``X``. A ``FrozenEstimator`` is always used as it is.
    pretrain : bool, default=True
        False skips the autoencoder and trains the same architecture from He-initialised
        weights (the baseline "from scratch"); ``freeze`` is then ignored: every layer trains.
    hidden_layer_sizes : tuple of int, default=(300, 150)
        Encoder widths of the default autoencoder (and of the classifier's hidden layers).
    activation : str, default="elu"
    training : {"end_to_end", "layerwise"}, default="end_to_end"
        How the default autoencoder is pretrained.
    corruption : {None, "gaussian", "masking"}, default=None
        Input noise while pretraining (a denoising autoencoder).
    corruption_level : float, default=0.1
    pretrain_epochs : int, default=10
        Epochs of the default autoencoder (per layer with ``training="layerwise"``).
    pretrain_batch_size, pretrain_learning_rate, pretrain_l2 : default=150, 0.01, 5e-4
        The default autoencoder's batch size, Adam step size and weight decay.
    n_layers : int or None, default=None
        Use the first ``n_layers`` encoder layers (None: all of them, up to the codings).
    freeze : {"none", "lower", "all"} or int, default="lower"
        "none" fine-tunes everything, "lower" freezes all but the top hidden layer, "all"
        trains only the output layer (a linear probe), an int freezes that many bottom layers.
    epochs : int, default=100
        (Maximum) epochs of classifier training. With fewer labelled rows than
        ``batch_size`` an epoch is a single step.
    batch_size : int, default=32
    learning_rate : float, default=0.01
        Adam's step size for the classifier.
    learning_rate_schedule : {"constant", "cosine"}, default="constant"
        ``"cosine"`` anneals the step size from ``learning_rate`` towards 0 over ``epochs``
        (long runs on many labels end lower); early stopping may end the run before it is done.
    l2 : float, default=0.0
        Weight of ``sum(W**2)/2`` over the trainable weight matrices.
    dropout : float, default=0.0
        Dropout rate on the outputs of the trainable hidden layers.
    input_dropout : float, default=0.0
        Dropout rate on the input pixels while the first layer trains (Hinton et al. 2012
        used 0.2 on MNIST); ignored when the first layer is frozen.
    validation_fraction : float, default=0.0
        Fraction of the labelled rows held out (a random split) for early stopping; 0: none.
        Off by default, as in ``MLPClassifier``: with a few labels per class, holding some
        out costs more than early stopping gains (a class may lose all its training rows).
    patience : int or None, default=None
        With a validation split, stop after this many epochs without improvement of the
        validation cross-entropy and keep the best weights.
    device : str, default="auto"
    random_state : int, RandomState or None
        Seeds the default (or cloned, unseeded) autoencoder and the classifier.
    verbose : bool, default=False
        Progress bars.

    Attributes
    ----------
    module_ : aekit.classify.EncoderClassifier
    classes_ : ndarray of shape (n_classes,)
    autoencoder_ : AutoencoderTransformer or None
        The autoencoder the layers came from (None with ``pretrain=False``). :mod:`aekit.io`
        saves the classifier only, so a loaded classifier has no ``autoencoder_``.
    n_frozen_ : int
        Hidden layers frozen during training.
    history_ : list of dict
        Per-epoch records of classifier training.
    n_iter_ : int
        Epochs run.
    n_features_in_ : int
    """

    def __init__(self, autoencoder=None, *, prefit="auto", pretrain=True,
                 hidden_layer_sizes=(300, 150), activation="elu", training="end_to_end",
                 corruption=None, corruption_level=0.1, pretrain_epochs=10,
                 pretrain_batch_size=150, pretrain_learning_rate=0.01, pretrain_l2=5e-4,
                 n_layers=None, freeze="lower", epochs=100, batch_size=32, learning_rate=0.01,
                 learning_rate_schedule="constant", l2=0.0, dropout=0.0, input_dropout=0.0,
                 validation_fraction=0.0, patience=None, device="auto", random_state=None,
                 verbose=False):
        self.autoencoder = autoencoder
        self.prefit = prefit
        self.pretrain = pretrain
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.training = training
        self.corruption = corruption
        self.corruption_level = corruption_level
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_batch_size = pretrain_batch_size
        self.pretrain_learning_rate = pretrain_learning_rate
        self.pretrain_l2 = pretrain_l2
        self.n_layers = n_layers
        self.freeze = freeze
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.l2 = l2
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- fitting -------------------------------------------------------------------------
    def fit(self, X, y):
        """Pretrain on all rows of ``X``, then train the classifier on rows with ``y != -1``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels; ``-1`` marks an unlabelled row (use an object array to mix string
            labels with ``-1``).

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, dtype=np.float32)
        labelled = _labelled_mask(y)
        classes, targets = _check_labels(y[labelled])
        self._check_params()
        rng = check_random_state(self.random_state)  # one stream: the autoencoder, then us
        ae_seed, seed = (int(s) for s in rng.randint(0, 2**31 - 1, size=2))
        device = engine.resolve_device(self.device)
        init_generator, generator = engine.make_generators(seed, device)
        if self.pretrain:
            self.autoencoder_ = self._pretrained_autoencoder(X, ae_seed)
            module = classify.from_autoencoder(self.autoencoder_.module_, len(classes),
                                               n_layers=self.n_layers, dropout=self.dropout,
                                               input_dropout=self.input_dropout,
                                               generator=init_generator).to(device)
        else:
            self.autoencoder_ = None
            module = classify.EncoderClassifier(self._scratch_config(X.shape[1], len(classes)),
                                                init_generator).to(device)
        freeze = self.freeze if self.pretrain else "none"
        self.n_frozen_ = classify.n_frozen_layers(freeze, module.depth)
        config = engine.TrainConfig(epochs=self.epochs, batch_size=self.batch_size,
                                    learning_rate=self.learning_rate,
                                    learning_rate_schedule=self.learning_rate_schedule,
                                    validation_fraction=self.validation_fraction,
                                    patience=self.patience, verbose=bool(self.verbose),
                                    phase="classifier")
        self.history_ = classify.train_classifier(module, X[labelled], targets, freeze=freeze,
                                                  l2=self.l2, config=config, generator=generator)
        self.module_, self.classes_, self.n_iter_ = module, classes, len(self.history_)
        return self

    def _check_params(self) -> None:
        if self.prefit not in PREFIT_MODES:
            raise ValueError(f"prefit={self.prefit!r} is not one of {PREFIT_MODES}")
        if self.n_layers is not None and (isinstance(self.n_layers, bool)
                                          or not isinstance(self.n_layers, Integral) or self.n_layers < 1):
            raise ValueError(f"n_layers must be None or an int >= 1, got {self.n_layers!r}")
        if not 0 <= self.dropout < 1 or not 0 <= self.input_dropout < 1 or not self.l2 >= 0:
            raise ValueError(f"need dropout and input_dropout in [0, 1) and l2 >= 0, got "
                             f"{self.dropout}, {self.input_dropout} and {self.l2}")
        if isinstance(self.freeze, str):
            _validate_choice("freeze", self.freeze, classify.FREEZE_POLICIES)
        ae = self.autoencoder.estimator if isinstance(self.autoencoder, FrozenEstimator) else self.autoencoder
        if not (ae is None or isinstance(ae, AutoencoderTransformer)):
            raise TypeError(f"autoencoder must be an AutoencoderTransformer, a FrozenEstimator "
                            f"of one, or None; got {type(ae).__name__}")

    def _pretrained_autoencoder(self, X: np.ndarray, seed: int) -> AutoencoderTransformer:
        """The fitted autoencoder to take layers from, per ``autoencoder`` and ``prefit``."""
        ae, frozen = self.autoencoder, isinstance(self.autoencoder, FrozenEstimator)
        if frozen:
            ae = ae.estimator
        prefit = "auto" if self.prefit == "auto" else bool(self.prefit)
        if ae is None:
            if prefit is True:
                raise ValueError("prefit=True needs a fitted autoencoder; autoencoder is None")
            return self._default_autoencoder(seed).fit(X)
        if frozen or prefit is True or (prefit == "auto" and _is_fitted(ae)):
            check_is_fitted(ae, msg=f"prefit={self.prefit!r} needs a fitted autoencoder; "
                                    "fit it first or pass prefit=False")
            if ae.n_features_in_ != X.shape[1]:
                raise ValueError(f"the autoencoder was fitted on {ae.n_features_in_} features, "
                                 f"X has {X.shape[1]}")
            return ae
        ae = clone(ae)
        if ae.random_state is None:
            ae.set_params(random_state=seed)
        return ae.fit(X)

    def _default_autoencoder(self, seed: int) -> AutoencoderTransformer:
        return AutoencoderTransformer(
            self.hidden_layer_sizes, activation=self.activation, l2=self.pretrain_l2,
            corruption=self.corruption, corruption_level=self.corruption_level,
            training=self.training, layerwise_epochs=self.pretrain_epochs,
            epochs=self.pretrain_epochs, batch_size=self.pretrain_batch_size,
            learning_rate=self.pretrain_learning_rate, device=self.device, random_state=seed,
            verbose=self.verbose)

    def _scratch_config(self, n_features: int, n_classes: int) -> classify.ClassifierConfig:
        """The architecture the pretrained path would have, for training from scratch."""
        ae = self.autoencoder.estimator if isinstance(self.autoencoder, FrozenEstimator) else self.autoencoder
        source = ae if ae is not None else self
        sizes = source.hidden_layer_sizes
        sizes = (sizes,) if np.isscalar(sizes) else tuple(sizes)
        n_layers = len(sizes) if self.n_layers is None else self.n_layers
        if n_layers > len(sizes):
            raise ValueError(f"n_layers={n_layers} but there are only {len(sizes)} hidden layers")
        code_activation = getattr(source, "code_activation", None) if n_layers == len(sizes) else None
        return classify.ClassifierConfig(n_inputs=n_features, hidden_sizes=sizes[:n_layers],
                                         n_classes=n_classes, activation=source.activation,
                                         code_activation=code_activation, dropout=self.dropout,
                                         input_dropout=self.input_dropout)

    # -- using the fitted model ----------------------------------------------------------
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns in the order of ``classes_``."""
        logits = torch.from_numpy(self._logits(X)).double()
        return torch.softmax(logits, dim=1).numpy()  # float64, so rows sum to 1 to 1e-15

    def predict_log_proba(self, X) -> np.ndarray:
        """Log of :meth:`predict_proba`, computed stably from the logits."""
        return torch.log_softmax(torch.from_numpy(self._logits(X)).double(), dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self._logits(X), axis=1)]

    def _logits(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        return _apply_in_batches(self.module_, self.module_, X)


def _labelled_mask(y: np.ndarray) -> np.ndarray:
    """True where ``y`` is not the integer ``-1`` (strings are always labels)."""
    if y.dtype.kind in "iuf":
        return y != UNLABELLED
    if y.dtype.kind == "O":
        return np.array([not (isinstance(v, (int, float, np.number)) and v == UNLABELLED) for v in y],
                        dtype=bool)
    return np.ones(len(y), dtype=bool)


def _check_labels(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(classes_, class indices)`` of the labelled rows; clear errors when they cannot train."""
    if len(y) == 0:
        raise ValueError(f"no labelled rows: every y is {UNLABELLED}, the mark of an unlabelled "
                         "row; label at least one row of each of 2 classes")
    check_classification_targets(y)
    classes, targets = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"the labelled rows (y != {UNLABELLED}) have 1 class "
                         f"({classes.tolist()[0]!r}); "
                         "a classifier needs at least 2 classes")
    return classes, targets


def _is_fitted(estimator) -> bool:
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True

"""PretrainedClassifier: a classifier on the encoder of an autoencoder pretrained on every row,
labelled or not (scikit-learn's semi-supervised convention: ``y == -1`` is unlabelled)."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.frozen import FrozenEstimator

from .. import classify
from ..classify import DROPOUT, FREEZE, INPUT_DROPOUT, N_LAYERS
from ..engine import BATCH_SIZE, EPOCHS, LEARNING_RATE
from ..nn import ClassifierConfig, EncoderClassifier
from ..objectives import L2
from ..params import Flag, InstanceOf, InvalidParameterError, Options, Param, is_int
from .autoencoder import AutoencoderTransformer
from .base import AekitEstimator, LogitsClassifier, TrainingParams, estimator, is_fitted, unwrap


@estimator
class PretrainedClassifier(LogitsClassifier, ClassifierMixin, TrainingParams, AekitEstimator):
    """Classifier on top of an autoencoder pretrained on labelled and unlabelled rows.

    ``fit(X, y)`` follows scikit-learn's semi-supervised convention: rows with ``y == -1``
    are unlabelled. It pretrains the autoencoder on *all* rows of ``X`` (labels are not used),
    builds a classifier from its encoder layers plus a new softmax output layer, and trains
    that on the labelled rows only, the lower layers frozen by ``freeze``. Frozen layers run
    once, before training.

    Every setting of the autoencoder is a nested parameter: ``autoencoder__l2``,
    ``autoencoder__corruption_level``, ``autoencoder__training``, ... (``get_params`` lists
    them, ``set_params`` and ``GridSearchCV`` set them, also while ``autoencoder`` is None).

    {parameters}

    Attributes
    ----------
    module_ : aekit.nn.EncoderClassifier
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

    _components = {"autoencoder": AutoencoderTransformer}
    _fitted_attributes = (*AekitEstimator._fitted_attributes, "classes_", "n_frozen_")

    autoencoder: AutoencoderTransformer | None = Param(
        InstanceOf(AutoencoderTransformer, unwrap=unwrap),
        "The autoencoder to pretrain (or, fitted, to take the layers from); None: "
        "AutoencoderTransformer() with its defaults. Its hidden_layer_sizes, activation and "
        "code_activation are the classifier's architecture. A clone is fitted on every row of X, "
        "on this classifier's device and with its verbose, seeded from random_state unless it has "
        "its own. Wrap a fitted autoencoder in sklearn.frozen.FrozenEstimator to keep it fitted "
        "through clone (which GridSearchCV calls).",
        flags=(),
    ).field(None, kw_only=False)
    prefit: str | bool = Param(
        Options("auto", True, False),
        "What to do with the autoencoder: 'auto' uses a fitted one "
        "as it is (never refitted nor modified: its weights are copied) and fits a clone of an "
        "unfitted one; True requires a fitted one; False always fits a clone. A FrozenEstimator "
        "is always used as it is.",
        flags=(),
    ).field("auto")
    pretrain: bool = Param(
        Flag(),
        "False skips the autoencoder and trains the same architecture "
        "from He-initialised weights (the baseline 'from scratch'); freeze is "
        "then ignored: every layer trains.",
    ).field(True)
    n_layers: int | None = N_LAYERS.field(None)
    freeze: str | int = FREEZE.field("lower")
    l2: float = L2.but(doc="Weight of sum(W**2)/2 over the trainable weight matrices.").field(0.0)
    dropout: float = DROPOUT.field(0.0)
    input_dropout: float = INPUT_DROPOUT.field(0.0)
    epochs: int = EPOCHS.but(
        doc="(Maximum) epochs of classifier training; with fewer labelled "
        "rows than batch_size an epoch is a single step."
    ).field(100)
    batch_size: int = BATCH_SIZE.field(32)
    learning_rate: float = LEARNING_RATE.field(0.01)

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
        self._validate_params()
        config = self._train_config("classifier")
        warm = self.warm_start and is_fitted(self)
        X, labelled, classes, targets = self._check_semisupervised(X, y, reset=not warm)
        ae_seed, seed = self._seeds(2)  # one stream: the autoencoder, then the classifier
        device, init_generator, generator = self._runtime(seed)
        if warm:
            classes, targets = self.classes_, self._warm_targets(classes, classes[targets])
            autoencoder = getattr(self, "autoencoder_", None)
            module = self._warm_module(self._scratch_config(X.shape[1], len(classes)), device)
        else:
            autoencoder, module = self._build_module(X, len(classes), ae_seed, init_generator)
            module = module.to(device)
        n_frozen = classify.n_frozen_layers(self.freeze if self.pretrain else "none", module.depth)
        history = classify.train_classifier(
            module,
            X[labelled],
            targets,
            freeze=n_frozen,
            l2=self.l2,
            config=config,
            generator=generator,
            callbacks=self.callbacks,
        )
        self.module_, self.classes_, self.n_frozen_, self.autoencoder_ = module, classes, n_frozen, autoencoder
        self.history_ = (self.history_ if warm else []) + history
        self.n_iter_ = len(self.history_)
        return self

    def _check_fitted(self) -> None:
        super()._check_fitted()
        classes, n_classes = getattr(self, "classes_", None), self.module_.config.n_classes
        if not isinstance(classes, np.ndarray):
            raise ValueError("classes_ is missing")
        if classes.shape != (n_classes,) or classes.dtype.kind not in "biufUO":
            raise ValueError(f"classes_ should hold {n_classes} labels, one per output, got {classes.tolist()!r}"[:200])
        if not all(isinstance(c, (str, int, float, np.generic)) for c in classes.tolist()):
            raise ValueError("classes_ should hold numbers or strings")
        if len({(type(c), c) for c in classes.tolist()}) != n_classes:
            raise ValueError(f"classes_ should hold {n_classes} different labels")
        depth, n_frozen = self.module_.depth, getattr(self, "n_frozen_", 0)
        if not is_int(n_frozen) or not 0 <= n_frozen <= depth:
            raise ValueError(f"n_frozen_={n_frozen!r} is not a count of the network's {depth} layers")

    def _check_params_together(self) -> None:
        self._check_early_stopping()
        self._check_step_options()
        ae = self.component("autoencoder")
        if self.prefit is True and self.autoencoder is None:
            raise InvalidParameterError("prefit=True needs a fitted autoencoder; autoencoder is None")
        if self.pretrain and not self._uses_fitted_autoencoder():
            ae._validate_params()
        depth = len(self._hidden_sizes(ae))
        n_layers = depth if self.n_layers is None else classify.check_n_layers(self.n_layers, depth)
        if self.pretrain:
            classify.n_frozen_layers(self.freeze, n_layers)

    def _uses_fitted_autoencoder(self) -> bool:
        return (
            isinstance(self.autoencoder, FrozenEstimator)
            or self.prefit is True
            or (self.prefit == "auto" and is_fitted(self.component("autoencoder")))
        )

    @staticmethod
    def _hidden_sizes(ae) -> tuple:
        sizes = ae.hidden_layer_sizes
        return tuple(sizes) if isinstance(sizes, (tuple, list)) else (sizes,)

    def _build_module(self, X, n_classes: int, ae_seed: int, generator) -> tuple:
        """(the fitted autoencoder or None, the classifier network): the pretrained encoder's
        layers, or the same architecture from He-initialised weights."""
        if self.pretrain:
            autoencoder = self._fitted_component("autoencoder", X, ae_seed, self.prefit)
            return autoencoder, classify.from_autoencoder(
                autoencoder.module_,
                n_classes,
                n_layers=self.n_layers,
                dropout=self.dropout,
                input_dropout=self.input_dropout,
                generator=generator,
            )
        return None, EncoderClassifier(self._scratch_config(X.shape[1], n_classes), generator)

    def _scratch_config(self, n_features: int, n_classes: int) -> ClassifierConfig:
        """The architecture the pretrained path would have, for training from scratch."""
        ae = self.component("autoencoder")
        sizes = self._hidden_sizes(ae)
        n_layers = len(sizes) if self.n_layers is None else self.n_layers
        return ClassifierConfig(
            n_inputs=n_features,
            hidden_sizes=sizes[:n_layers],
            n_classes=n_classes,
            activation=ae.activation,
            code_activation=ae.code_activation if n_layers == len(sizes) else None,
            dropout=self.dropout,
            input_dropout=self.input_dropout,
        )

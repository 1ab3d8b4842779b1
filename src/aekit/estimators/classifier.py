"""PretrainedClassifier: a classifier on the encoder of an autoencoder pretrained on every row,
labelled or not (scikit-learn's semi-supervised convention: ``y == -1`` is unlabelled)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.frozen import FrozenEstimator
from sklearn.utils import check_array, check_consistent_length, column_or_1d
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import classify
from ..classify import DROPOUT, FREEZE, INPUT_DROPOUT, N_LAYERS
from ..datasets import on_disk
from ..engine import BATCH_SIZE, EPOCHS, LEARNING_RATE
from ..nn import ClassifierConfig, EncoderClassifier
from ..objectives import L2
from ..params import Flag, InstanceOf, InvalidParameterError, Options, Param
from .autoencoder import AutoencoderTransformer
from .base import AekitEstimator, TrainingParams, estimator, is_fitted, unwrap

UNLABELLED = -1  # scikit-learn's semi-supervised mark (SelfTrainingClassifier, LabelSpreading)


@estimator
class PretrainedClassifier(ClassifierMixin, TrainingParams, AekitEstimator):
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
        X, y = self._check_rows_and_labels(X, y)
        labelled = labelled_mask(y)
        classes, targets = check_labels(y[labelled])
        ae_seed, seed = self._seeds(2)  # one stream: the autoencoder, then the classifier
        device, init_generator, generator = self._runtime(seed)
        module = self._build_module(X, len(classes), ae_seed, init_generator).to(device)
        self.n_frozen_ = classify.n_frozen_layers(self.freeze if self.pretrain else "none", module.depth)
        self.history_ = classify.train_classifier(
            module,
            X[labelled],
            targets,
            freeze=self.n_frozen_,
            l2=self.l2,
            config=config,
            generator=generator,
        )
        self.module_, self.classes_, self.n_iter_ = module, classes, len(self.history_)
        return self

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

    def _check_rows_and_labels(self, X, y):
        """``validate_data(self, X, y)``; rows on disk are checked there and stay there (the
        autoencoder streams them; the labelled rows the classifier trains on are read)."""
        if not on_disk(X):
            return validate_data(self, X, y, dtype=np.float32)
        y = column_or_1d(check_array(y, ensure_2d=False, dtype=None, ensure_all_finite=False), warn=True)
        check_consistent_length(X, y)
        return self._check_rows(X, reset=True), y

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

    def _build_module(self, X, n_classes: int, ae_seed: int, generator) -> EncoderClassifier:
        """The classifier network: the pretrained encoder's layers, or the same architecture
        from He-initialised weights."""
        if self.pretrain:
            self.autoencoder_ = self._fitted_component("autoencoder", X, ae_seed, self.prefit)
            return classify.from_autoencoder(
                self.autoencoder_.module_,
                n_classes,
                n_layers=self.n_layers,
                dropout=self.dropout,
                input_dropout=self.input_dropout,
                generator=generator,
            )
        self.autoencoder_ = None
        return EncoderClassifier(self._scratch_config(X.shape[1], n_classes), generator)

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
        check_is_fitted(self)  # before classes_ is looked up
        return self.classes_[np.argmax(self._logits(X), axis=1)]

    def _logits(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self._apply(self.module_, self._check_rows(X, reset=False))


def labelled_mask(y: np.ndarray) -> np.ndarray:
    """True where ``y`` is not the integer ``-1`` (strings are always labels)."""
    if y.dtype.kind in "iuf":
        return y != UNLABELLED
    if y.dtype.kind == "O":
        return np.array([not (isinstance(v, (int, float, np.number)) and v == UNLABELLED) for v in y], dtype=bool)
    return np.ones(len(y), dtype=bool)


def check_labels(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(classes_, class indices)`` of the labelled rows; clear errors when they cannot train."""
    if len(y) == 0:
        raise ValueError(
            f"no labelled rows: every y is {UNLABELLED}, the mark of an unlabelled "
            "row; label at least one row of each of 2 classes"
        )
    check_classification_targets(y)
    classes, targets = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(
            f"the labelled rows (y != {UNLABELLED}) have 1 class "
            f"({classes.tolist()[0]!r}); a classifier needs at least 2 classes"
        )
    return classes, targets

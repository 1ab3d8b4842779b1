"""AutoencoderOutlierDetector: an autoencoder's reconstruction error as an outlier score, with
scikit-learn's outlier-detection API (``IsolationForest``, ``LocalOutlierFactor(novelty=True)``)."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter
from sklearn.base import OutlierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..engine import DEVICE, RANDOM_STATE, VERBOSE
from ..nn.conv import as_image_shape
from ..params import AnyOf, Constraint, Interval, InvalidParameterError, Options, Param
from . import images
from .autoencoder import AutoencoderTransformer
from .base import AekitEstimator, estimator, is_fitted, unwrap

AUTO_SMOOTHING = 1.0  # error_smoothing="auto" for images, in pixels


def default_autoencoder() -> AutoencoderTransformer:
    """The autoencoder a detector trains when given none (chosen on a validation split of
    MNIST's training images, see benches/README.md): a dense autoencoder with a small code,
    which reconstructs the rows it was trained on and little else."""
    return AutoencoderTransformer(
        hidden_layer_sizes=(256, 16),
        activation="elu",
        code_activation="linear",
        tied=False,
        l2=0.0,
        epochs=30,
        batch_size=64,
        learning_rate=1e-3,
    )


class Smoothing(AnyOf):
    """``"auto"`` or a float >= 0 (pixels)."""

    def __init__(self):
        super().__init__(Options("auto"), Interval(float, 0))


class Reconstructs(Constraint):
    """None or an autoencoder estimator: it has ``fit`` and ``reconstruct`` (also inside a
    :class:`~sklearn.frozen.FrozenEstimator`)."""

    description = "None or an autoencoder estimator (with fit and reconstruct)"
    type_name = "AutoencoderTransformer or None"

    def allows(self, value) -> bool:
        inner = unwrap(value)
        return value is None or (
            callable(getattr(inner, "fit", None)) and callable(getattr(inner, "reconstruct", None))
        )


@estimator
class AutoencoderOutlierDetector(OutlierMixin, AekitEstimator):
    """Outlier detection by an autoencoder's reconstruction error.

    ``fit`` trains the autoencoder on X (rows or images, as
    :class:`~aekit.AutoencoderTransformer` takes them) and sets ``offset_`` so that a fraction
    ``contamination`` of the training rows scores below it. A row's score
    (``score_samples``) is minus its mean squared reconstruction error (for images, of the
    residual blurred by ``error_smoothing`` first): higher is more normal.
    ``decision_function`` is the score minus ``offset_`` (negative: an outlier), ``predict``
    gives +1 (inlier) or -1 (outlier), and ``feature_errors`` the squared error of every
    feature (every pixel), which says where a row is unusual.

    Any autoencoder that can reconstruct works inside: dense, denoising, convolutional, your
    own modules, a variational one. Its settings are nested parameters
    (``autoencoder__epochs``, ...) for ``set_params`` and ``GridSearchCV``.

    {parameters}

    Attributes
    ----------
    autoencoder_ : AutoencoderTransformer
        The fitted autoencoder.
    offset_ : float
        The score below which a row is an outlier: the ``contamination`` quantile of the
        training rows' scores.
    image_shape_ : tuple of int or None
        (channels, height, width) of the images, from X or the autoencoder; None for rows.
    smoothing_ : float
        The blur of the residual in pixels (``error_smoothing`` with "auto" resolved).
    n_features_in_ : int
    """

    _components = {"autoencoder": default_autoencoder}
    _fitted_attributes = (
        "n_features_in_",
        "feature_names_in_",
        "offset_",
        "image_shape_",
        "smoothing_",
        "autoencoder_",
    )

    autoencoder: AutoencoderTransformer | None = Param(
        Reconstructs(),
        "The autoencoder to train (or, fitted, to use); None: the default, a dense "
        "n-256-16-256-n autoencoder (untied, ELU, linear code, no L2, 30 epochs, Adam 1e-3, "
        "batch 64) chosen on a validation split of MNIST's training images. A clone is fitted, "
        "on this detector's device and with its verbose, seeded from random_state unless it has "
        "its own; wrap a fitted one in sklearn.frozen.FrozenEstimator to keep it through clone.",
        flags=(),
    ).field(None, kw_only=False)
    contamination: float = Param(
        Interval(float, 0, 0.5, closed="right"),
        "The expected fraction of outliers in the training rows: offset_ is that quantile of "
        "their scores, so predict marks about this fraction of them -1.",
    ).field(0.1)
    error_smoothing: float | str = Param(
        Smoothing(),
        "Standard deviation, in pixels, of a Gaussian blur of each image's residual (reconstruction "
        "minus input) before it is squared: the proximally sensitive error of Gudi et al. (2022). "
        "Errors that cluster, such as a stroke the autoencoder cannot draw, then count more than "
        "scattered ones, such as an edge drawn a pixel off. 0: the plain squared error. Above 0 it "
        f"needs images: X given as images, or an autoencoder with an image_shape. 'auto': "
        f"{AUTO_SMOOTHING} pixel for images (chosen on a validation split of MNIST's training "
        "images), 0 for rows without an image shape.",
    ).field("auto")
    prefit: str | bool = Param(
        Options("auto", True, False),
        "What to do with the autoencoder: 'auto' uses a fitted one as it is and fits a clone of "
        "an unfitted one; True requires a fitted one; False always fits a clone.",
        flags=(),
    ).field("auto")
    device: str = DEVICE.field("auto")
    random_state: int | None = RANDOM_STATE.field(None)
    verbose: bool = VERBOSE.field(False)

    def fit(self, X, y=None):
        """Train the autoencoder on ``X`` (rows or images) and set ``offset_``; ``y`` is ignored."""
        self._validate_params()
        rows, shape = images.to_rows(X)
        rows = validate_data(self, rows, dtype=np.float32)
        data = rows if shape is None else rows.reshape(len(rows), *shape)
        self.image_shape_ = self._image_shape(shape)
        self.smoothing_ = self._smoothing()
        self.autoencoder_ = self._fitted_component("autoencoder", data, self._seeds(1)[0], self.prefit)
        self.module_ = self.autoencoder_.module_  # saved by aekit.io with the detector
        self.offset_ = float(np.percentile(self._scores(data), 100 * self.contamination))
        return self

    def _image_shape(self, found):
        """The images' (channels, height, width): the input's, else the autoencoder's."""
        inner = self.component("autoencoder")
        shape = found or getattr(inner, "image_shape_", None) or getattr(inner, "image_shape", None)
        if shape is None and self.error_smoothing not in ("auto", 0):
            raise ValueError(
                f"error_smoothing={self.error_smoothing} blurs each image's residual, but X has no image "
                "shape: pass X as images (n, height, width) or (n, channels, height, width), give the "
                "autoencoder an image_shape, or set error_smoothing=0"
            )
        return None if shape is None else as_image_shape(shape)

    def _smoothing(self) -> float:
        if self.error_smoothing == "auto":
            return AUTO_SMOOTHING if self.image_shape_ is not None else 0.0
        return float(self.error_smoothing)

    def _check_params_together(self) -> None:
        if self.prefit is True and self.autoencoder is None:
            raise InvalidParameterError("prefit=True needs a fitted autoencoder; autoencoder is None")
        inner = self.component("autoencoder")
        if not (self.prefit is True or (self.prefit == "auto" and is_fitted(inner))):
            inner._validate_params()  # the autoencoder's settings fail before any training

    # -- scoring --------------------------------------------------------------------------
    def feature_errors(self, X) -> np.ndarray:
        """Squared reconstruction error of every feature (the residual smoothed by ``smoothing_``
        first), in the shape of ``X``: images give per-pixel error maps. Their row means are
        minus the scores."""
        data = self._check(X)
        return images.like_input(self._feature_errors(data), X)

    def score_samples(self, X) -> np.ndarray:
        """Minus the mean squared reconstruction error of each row (its residual smoothed first
        when ``smoothing_ > 0``): higher is more normal."""
        return self._scores(self._check(X))

    def decision_function(self, X) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """+1 for an inlier, -1 for an outlier."""
        return np.where(self.decision_function(X) < 0, -1, 1)

    def _check(self, X) -> np.ndarray:
        """``X`` as the fitted autoencoder takes it, checked against what the detector saw."""
        check_is_fitted(self)
        rows, shape = images.to_rows(X)
        rows = validate_data(self, rows, dtype=np.float32, reset=False)
        return rows if shape is None else rows.reshape(len(rows), *shape)

    def _feature_errors(self, data: np.ndarray) -> np.ndarray:
        rows = data.reshape(len(data), -1)
        residual = self.autoencoder_.reconstruct(data).reshape(rows.shape) - rows
        if self.smoothing_ > 0:  # per image and channel; zero beyond the border
            cube = residual.reshape(len(rows), *self.image_shape_)
            sigma = (0, 0, self.smoothing_, self.smoothing_)
            residual = gaussian_filter(cube, sigma, mode="constant").reshape(rows.shape)
        return residual**2

    def _scores(self, data: np.ndarray) -> np.ndarray:
        return -self._feature_errors(data).mean(axis=1, dtype=np.float64)

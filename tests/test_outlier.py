"""AutoencoderOutlierDetector: scikit-learn's outlier-detection contract, the score against a plain
reconstruction-error reference, any autoencoder inside, composition, saving, and bad input."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch import nn

from aekit import AutoencoderOutlierDetector, AutoencoderTransformer, io
from aekit.estimators.outlier import default_autoencoder
from aekit.params import InvalidParameterError

TINY_AE = dict(hidden_layer_sizes=(8,), epochs=4, batch_size=32, learning_rate=0.005, device="cpu")


def detector(autoencoder=None, **params) -> AutoencoderOutlierDetector:
    ae = AutoencoderTransformer(**TINY_AE) if autoencoder is None else autoencoder
    return AutoencoderOutlierDetector(ae, **{"random_state": 0, **params})


_ROUNDING = (
    "float32 reconstructions of a row can differ in the last ulp with the rows computed beside it "
    "(MKL's sgemm blocks by the number of rows); the squared error of a residual near zero turns that "
    "into a few 1e-7 relative, above the check's rtol of 1e-7. "
    "test_scores_do_not_depend_on_the_other_rows checks the property at 1e-5."
)
# A check that cannot pass goes here as name -> reason.
EXPECTED_FAILED_CHECKS = {
    "check_methods_subset_invariance": _ROUNDING,
    "check_methods_sample_order_invariance": _ROUNDING,
}


@parametrize_with_checks(
    [detector(AutoencoderTransformer((4,), epochs=2, batch_size=16, device="cpu"))],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture
def threes(digits):
    X, y = digits
    return X[y == 3], X[y != 3]


@pytest.fixture
def fitted(threes):
    return detector().fit(threes[0])


def test_score_is_minus_the_mean_squared_error_of_the_plain_forward_pass(fitted, digits):
    X = digits[0][:50]
    module = fitted.autoencoder_.module_
    with torch.no_grad():  # the reference: the module's forward in float64, by hand
        x = torch.from_numpy(X)
        reference = -(module(x).double() - x.double()).pow(2).mean(dim=1).numpy()
    np.testing.assert_allclose(fitted.score_samples(X), reference, rtol=1e-6)
    np.testing.assert_allclose(fitted.feature_errors(X).mean(axis=1), -fitted.score_samples(X), rtol=1e-6)
    assert fitted.feature_errors(X.reshape(-1, 8, 8)).shape == (50, 8, 8)


def test_scores_do_not_depend_on_the_other_rows(fitted, digits):
    X = digits[0][:200]
    order = np.random.default_rng(0).permutation(len(X))
    full = fitted.score_samples(X)
    np.testing.assert_allclose(fitted.score_samples(X[order]), full[order], rtol=1e-5)
    np.testing.assert_allclose(
        np.concatenate([fitted.score_samples(X[i : i + 7]) for i in range(0, 200, 7)]), full, rtol=1e-5
    )


def test_contamination_sets_the_offset_and_the_fraction_of_training_outliers(threes):
    normal = threes[0]
    for contamination in (0.05, 0.2, 0.5):
        det = detector(contamination=contamination).fit(normal)
        scores = det.score_samples(normal)
        assert det.offset_ == pytest.approx(np.percentile(scores, 100 * contamination))
        assert np.mean(det.predict(normal) == -1) == pytest.approx(contamination, abs=1.5 / len(normal))
        np.testing.assert_allclose(det.decision_function(normal), scores - det.offset_)
        np.testing.assert_array_equal(det.predict(normal), np.where(scores < det.offset_, -1, 1))


def test_fit_predict_is_fit_then_predict(threes):
    np.testing.assert_array_equal(detector().fit_predict(threes[0]), detector().fit(threes[0]).predict(threes[0]))


def test_other_digits_score_lower_than_the_digit_it_was_fitted_on(fitted, threes):
    normal, other = threes
    labels = np.r_[np.ones(len(normal)), np.zeros(len(other))]
    assert roc_auc_score(labels, fitted.score_samples(np.r_[normal, other])) > 0.9


@pytest.mark.slow
@pytest.mark.parametrize(
    "params",
    [
        dict(corruption="masking", corruption_level=0.2),
        dict(architecture="conv", channels=(4, 8), image_shape=(8, 8)),
        dict(encoder=lambda: nn.Sequential(nn.Linear(64, 8), nn.ELU()), decoder=lambda: nn.Linear(8, 64)),
    ],
    ids=["denoising", "conv", "own modules"],
)
def test_any_autoencoder_family_inside(threes, params):
    normal, other = threes
    det = detector(AutoencoderTransformer(**{**TINY_AE, "epochs": 10, **params})).fit(normal)
    scores = det.score_samples(np.r_[normal, other])
    assert roc_auc_score(np.r_[np.ones(len(normal)), np.zeros(len(other))], scores) > 0.85


def gaussian_blur_reference(images: np.ndarray, sigma: float) -> np.ndarray:
    """Blur each (h, w) image with a Gaussian truncated at 4 sigma, zero outside: two 1-D
    convolutions written out with numpy."""
    radius = int(4 * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()

    def blur(v):
        return np.convolve(np.pad(v, radius), taps, mode="valid")

    return np.apply_along_axis(blur, -2, np.apply_along_axis(blur, -1, images))


def test_smoothed_error_is_the_squared_blurred_residual(threes):
    normal = threes[0].reshape(-1, 8, 8)
    det = detector(error_smoothing=1.0).fit(normal)
    residual = det.autoencoder_.reconstruct(normal) - normal
    expected = gaussian_blur_reference(residual.astype(np.float64), 1.0) ** 2
    np.testing.assert_allclose(det.feature_errors(normal), expected, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(det.score_samples(normal), -expected.reshape(len(normal), -1).mean(axis=1), rtol=1e-4)
    plain = detector(error_smoothing=0.0).fit(normal)
    assert not np.allclose(plain.score_samples(normal), det.score_samples(normal))
    assert plain.smoothing_ == 0 and det.smoothing_ == 1.0


def test_auto_smoothing_blurs_images_and_not_rows(threes):
    images = detector().fit(threes[0].reshape(-1, 8, 8))
    rows = detector().fit(threes[0])
    assert (images.smoothing_, images.image_shape_) == (1.0, (1, 8, 8))
    assert (rows.smoothing_, rows.image_shape_) == (0.0, None)
    same = detector(error_smoothing=1.0).fit(threes[0].reshape(-1, 8, 8))
    np.testing.assert_array_equal(images.score_samples(threes[1]), same.score_samples(threes[1]))


def test_smoothing_needs_an_image_shape(threes):
    with pytest.raises(ValueError, match="error_smoothing=1.0 blurs each image's residual, but X has no image shape"):
        detector(error_smoothing=1.0).fit(threes[0])
    ae = AutoencoderTransformer(**{**TINY_AE, "architecture": "conv", "channels": (4,), "image_shape": (8, 8)})
    det = detector(ae, error_smoothing=1.0).fit(threes[0])  # rows, and the autoencoder knows the shape
    assert det.image_shape_ == (1, 8, 8) and det.feature_errors(threes[0]).shape == threes[0].shape


def test_images_in_and_per_pixel_error_maps_out(threes):
    images = threes[0].reshape(-1, 1, 8, 8)
    det = detector(AutoencoderTransformer(**{**TINY_AE, "architecture": "conv", "channels": (4,)})).fit(images)
    assert det.n_features_in_ == 64 and det.autoencoder_.image_shape_ == (1, 8, 8)
    assert det.feature_errors(images).shape == images.shape
    np.testing.assert_array_equal(det.score_samples(images), det.score_samples(threes[0]))


def test_a_fitted_autoencoder_is_used_as_it_is(threes):
    ae = AutoencoderTransformer(**TINY_AE, random_state=0).fit(threes[0])
    before = {k: v.clone() for k, v in ae.module_.state_dict().items()}
    for wrapped in (ae, FrozenEstimator(ae)):
        det = detector(wrapped).fit(threes[0])
        assert det.autoencoder_ is ae
    assert all(torch.equal(v, ae.module_.state_dict()[k]) for k, v in before.items())
    assert detector(ae, prefit=False).fit(threes[0]).autoencoder_ is not ae


def test_nested_parameters_clone_and_grid_search(digits):
    X, y = digits
    det = AutoencoderOutlierDetector()
    assert det.get_params()["autoencoder__hidden_layer_sizes"] == default_autoencoder().hidden_layer_sizes
    det.set_params(autoencoder__epochs=2, autoencoder__hidden_layer_sizes=(8,), random_state=0, device="cpu")
    assert isinstance(det.autoencoder, AutoencoderTransformer) and det.autoencoder.epochs == 2
    assert clone(det).autoencoder is not det.autoencoder
    inlier = np.where(y[:300] == 3, 1, -1)
    search = GridSearchCV(det, {"autoencoder__l2": [0.0, 1e-3]}, scoring="roc_auc", cv=2)
    search.fit(X[:300], inlier)  # fit ignores y; the scorer uses it
    assert search.best_params_["autoencoder__l2"] in (0.0, 1e-3)


def test_pickle_and_save_load_give_identical_scores(fitted, digits, tmp_path):
    X = digits[0]
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.score_samples(X), fitted.score_samples(X))
    loaded = io.load(io.save(fitted, tmp_path / "det"))
    assert loaded.offset_ == fitted.offset_ and loaded.autoencoder_.module_ is loaded.module_
    assert (loaded.smoothing_, loaded.image_shape_) == (fitted.smoothing_, fitted.image_shape_)
    np.testing.assert_array_equal(loaded.decision_function(X), fitted.decision_function(X))
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))


class Encoder(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Linear(64, 6), nn.ELU())


def test_a_detector_around_your_own_modules_loads_with_them(threes, tmp_path):
    ae = AutoencoderTransformer(encoder=Encoder, decoder=lambda: nn.Linear(6, 64), epochs=2)
    det = detector(ae).fit(threes[0])
    path = io.save(det, tmp_path / "det")
    with pytest.raises(io.ModelFileError, match="pass your modules"):
        io.load(path)
    loaded = io.load(path, modules={"encoder": Encoder, "decoder": nn.Linear(6, 64)})
    np.testing.assert_array_equal(loaded.score_samples(threes[1]), det.score_samples(threes[1]))


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("contamination", [0.0, 0.6, -0.1, 1.0])
def test_contamination_outside_zero_to_a_half(threes, contamination):
    with pytest.raises(InvalidParameterError, match=r"contamination must be a float in \(0, 0.5\]"):
        detector(contamination=contamination).fit(threes[0])


def test_bad_autoencoder_settings_and_prefit(threes):
    with pytest.raises(InvalidParameterError, match="autoencoder must be None or an autoencoder estimator"):
        AutoencoderOutlierDetector("an autoencoder").fit(threes[0])
    with pytest.raises(InvalidParameterError, match="learning_rate"):
        AutoencoderOutlierDetector().set_params(autoencoder__learning_rate=-1).fit(threes[0])
    with pytest.raises(InvalidParameterError, match="prefit=True needs a fitted autoencoder"):
        AutoencoderOutlierDetector(prefit=True).fit(threes[0])


def test_rows_of_another_width_after_fit(fitted, threes):
    with pytest.raises(ValueError, match="X has 63 features, but AutoencoderOutlierDetector is expecting 64"):
        fitted.score_samples(threes[0][:, :63])

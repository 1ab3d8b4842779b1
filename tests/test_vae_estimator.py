"""VariationalAutoencoder: the scikit-learn contract, generation, scores, saving, bad input."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks
from test_sklearn_checks import EXPECTED_FAILED_CHECKS

from aekit import VariationalAutoencoder, io
from aekit.nn import DenseVAE
from aekit.params import InvalidParameterError

SMALL = dict(hidden_layer_sizes=(16,), latent_dim=3, epochs=3, batch_size=32, random_state=0, device="cpu")


def make(**kw):
    return VariationalAutoencoder(**{**SMALL, **kw})


@pytest.fixture
def X(digits):
    return digits[0][:300]


@pytest.fixture
def fitted(X):
    return make().fit(X)


@parametrize_with_checks(
    [make(likelihood="gaussian", epochs=2, batch_size=16)],  # scikit-learn's checks feed any real numbers
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,  # the encoder's ELU, as the autoencoder's
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_fit_sets_history_with_the_elbo_parts(fitted):
    assert fitted.n_iter_ == 3 and fitted.n_features_in_ == 64 and isinstance(fitted.module_, DenseVAE)
    assert {"loss", "reconstruction", "kl"} <= set(fitted.history_[0])
    assert fitted.history_[-1]["loss"] < fitted.history_[0]["loss"]


def test_codes_decodings_and_samples_have_their_shapes(fitted, X):
    Z = fitted.transform(X)
    assert Z.shape == (300, 3) and Z.dtype == np.float32
    decoded = fitted.inverse_transform(Z)
    assert decoded.shape == (300, 64) and 0 <= decoded.min() and decoded.max() <= 1  # Bernoulli means
    np.testing.assert_allclose(fitted.reconstruct(X), decoded, rtol=1e-5, atol=1e-6)
    samples = fitted.sample(5, random_state=0)
    assert samples.shape == (5, 64)
    np.testing.assert_array_equal(samples, fitted.sample(5, random_state=0))
    assert not np.array_equal(samples, fitted.sample(5, random_state=1))


def test_score_is_a_repeatable_elbo_below_the_importance_sampled_likelihood(fitted, X):
    score = fitted.score(X)
    assert score < 0 and score == fitted.score(X)
    ll = fitted.log_likelihood(X, n_importance=100, random_state=0)
    assert ll.shape == (300,) and ll.dtype == np.float64
    assert score < ll.mean() < 0  # k = 100 tightens the one-sample bound
    np.testing.assert_array_equal(ll, fitted.log_likelihood(X, n_importance=100, random_state=0))


def test_training_raises_the_elbo(X):
    assert make(epochs=20).fit(X).score(X) > make(epochs=0).fit(X).score(X) + 5


def test_dynamic_binarization_and_warm_up_train(X):
    est = make(binarize="dynamic", kl_warmup_epochs=2, validation_fraction=0.2).fit(X)
    assert all("val_loss" in r for r in est.history_)


def test_clone_pickle_pipeline_and_grid_search(fitted, X, digits):
    again = clone(fitted).fit(X)
    np.testing.assert_array_equal(again.transform(X), fitted.transform(X))
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(X), fitted.transform(X))
    pipe = make_pipeline(make(), LogisticRegression(max_iter=200)).fit(X, digits[1][:300])
    assert pipe.score(X, digits[1][:300]) > 0.3
    search = GridSearchCV(make(), {"beta": [0.5, 1.0]}, cv=2).fit(X)
    assert search.best_params_["beta"] in (0.5, 1.0)


def test_save_and_load_give_identical_outputs(fitted, X, tmp_path):
    loaded = io.load(io.save(fitted, tmp_path / "vae"))
    assert type(loaded) is VariationalAutoencoder and loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))
    np.testing.assert_array_equal(loaded.sample(4, random_state=0), fitted.sample(4, random_state=0))
    assert loaded.score(X) == fitted.score(X) and loaded.history_ == fitted.history_
    gaussian = make(likelihood="gaussian").fit(X)
    loaded = io.load(io.save(gaussian, tmp_path / "gaussian"))
    np.testing.assert_array_equal(loaded.module_.log_scale.detach(), gaussian.module_.log_scale.detach())


# -- bad input ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params, message",
    [
        (dict(beta=-0.1), "beta=-0.1 is not allowed: beta must be a float >= 0"),
        (dict(latent_dim=0), "latent_dim=0 is not allowed: latent_dim must be an int >= 1"),
        (dict(likelihood="poisson"), "likelihood='poisson' is not allowed"),
        (dict(binarize="static"), "binarize='static' is not allowed"),
        (dict(binarize="dynamic", likelihood="gaussian"), "binarize='dynamic' draws binary rows"),
        (dict(kl_warmup_epochs=-1), "kl_warmup_epochs=-1 is not allowed"),
    ],
)
def test_bad_parameters_fail_before_the_data_is_read(params, message):
    with pytest.raises(InvalidParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make(**params).fit("not even an array")


def test_bernoulli_likelihood_rejects_inputs_outside_the_unit_interval(X, fitted):
    with pytest.raises(ValueError, match=r"likelihood='bernoulli' needs inputs in \[0, 1\].*\[-1, 1\]"):
        make().fit(X * 2 - 1)
    with pytest.raises(ValueError, match="needs inputs in"):
        fitted.score(X + 1)
    with pytest.raises(ValueError, match="needs inputs in"):
        fitted.log_likelihood(-X)
    make(likelihood="gaussian").fit(X * 2 - 1)  # any real numbers


def test_bad_calls_of_a_fitted_model(fitted, X):
    with pytest.raises(NotFittedError):
        make().sample(2)
    with pytest.raises(InvalidParameterError, match="n_importance=0 is not allowed"):
        fitted.log_likelihood(X, n_importance=0)
    with pytest.raises(InvalidParameterError, match="n_samples=0 is not allowed"):
        fitted.sample(0)
    with pytest.raises(ValueError, match="codes have 5 features, but the coding layer of VariationalAutoencoder has 3"):
        fitted.inverse_transform(np.zeros((2, 5)))

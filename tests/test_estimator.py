"""AutoencoderTransformer: the scikit-learn contract, denoising, errors, composition."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from aekit import AutoencoderTransformer
from aekit.nn import TiedLinear

SMALL = dict(hidden_layer_sizes=(16, 8), epochs=3, batch_size=32, random_state=0, device="cpu")


def make(**kw):
    return AutoencoderTransformer(**{**SMALL, **kw})


@pytest.fixture
def X(digits):
    return digits[0][:300]


@pytest.fixture
def fitted(X):
    return make().fit(X)


def state(est):
    return {k: v.detach().clone() for k, v in est.module_.state_dict().items()}


def same_state(a, b):
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


# -- the basic contract ------------------------------------------------------------------
def test_fit_returns_self_and_sets_fitted_attributes(X):
    est = make()
    assert est.fit(X) is est
    assert est.n_features_in_ == 64 and est.n_iter_ == 3 and len(est.history_) == 3
    assert {"loss", "reconstruction", "l2"} <= set(est.history_[0])


def test_transform_inverse_transform_reconstruct_shapes(fitted, X):
    Z = fitted.transform(X)
    assert Z.shape == (300, 8) and Z.dtype == np.float32
    assert fitted.inverse_transform(Z).shape == (300, 64)
    np.testing.assert_allclose(fitted.reconstruct(X), fitted.inverse_transform(Z), rtol=1e-5, atol=1e-6)
    assert make(hidden_layer_sizes=5).fit(X).transform(X).shape == (300, 5)  # a bare int works


def test_score_is_negative_mse_of_the_reconstruction(fitted, X):
    expected = -np.mean((fitted.reconstruct(X).astype(np.float64) - X) ** 2)
    assert fitted.score(X) < 0
    assert fitted.score(X) == pytest.approx(expected, rel=1e-5)


def test_training_reduces_reconstruction_error(X):
    untrained = make(epochs=0).fit(X)
    assert untrained.n_iter_ == 0 and untrained.history_ == []
    trained = make(epochs=10).fit(X)
    assert trained.score(X) > 0.5 * untrained.score(X)  # error at least halved (scores are < 0)


def test_same_seed_same_model_and_clone_refits_identically(fitted, X):
    again = clone(fitted)
    assert not hasattr(again, "module_")
    assert again.get_params() == fitted.get_params()
    again.fit(X)
    assert same_state(state(again), state(fitted))
    np.testing.assert_array_equal(again.transform(X), fitted.transform(X))
    other = make(random_state=1).fit(X)
    assert not np.array_equal(other.transform(X), fitted.transform(X))


def test_pickle_round_trip_gives_identical_outputs(fitted, X):
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(X), fitted.transform(X))
    np.testing.assert_array_equal(restored.reconstruct(X), fitted.reconstruct(X))
    assert restored.score(X) == fitted.score(X)
    # the restored tied decoder still shares the restored encoder's weight
    dec, enc = restored.module_.decoders[0], restored.module_.encoder.layers[0]
    assert dec.encoder is enc
    with torch.no_grad():
        enc.weight.zero_()
    assert not np.array_equal(restored.reconstruct(X), fitted.reconstruct(X))


def test_transform_is_row_order_invariant_to_float32_rounding(fitted, X):
    for seed in range(20):
        idx = np.random.RandomState(seed).permutation(len(X))
        np.testing.assert_allclose(fitted.transform(X[idx]), fitted.transform(X)[idx], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(fitted.reconstruct(X[idx]), fitted.reconstruct(X)[idx], rtol=1e-6, atol=1e-7)


def test_transform_does_not_change_the_model(fitted, X):
    before = state(fitted)
    fitted.transform(X), fitted.reconstruct(X), fitted.score(X)
    assert same_state(before, state(fitted))


@pytest.mark.parametrize("tied", [True, False])
def test_tied_and_untied(X, tied):
    est = make(tied=tied).fit(X)
    decoders = est.module_.decoders
    assert all(isinstance(d, TiedLinear) for d in decoders) == tied
    weight_names = {n for n, _ in est.module_.named_parameters() if n.endswith("weight")}
    assert any(n.startswith("decoders.") for n in weight_names) == (not tied)
    assert est.score(X) > make(tied=tied, epochs=0).fit(X).score(X)


def test_untied_model_has_more_parameters(X):
    count = lambda est: sum(p.numel() for p in est.module_.parameters())  # noqa: E731
    tied, untied = make(epochs=1).fit(X), make(epochs=1, tied=False).fit(X)
    assert count(untied) - count(tied) == 64 * 16 + 16 * 8


def test_get_feature_names_out(fitted):
    names = fitted.get_feature_names_out()
    assert list(names) == [f"autoencodertransformer{i}" for i in range(8)]


def test_validation_and_early_stopping_through_the_estimator(X):
    est = make(epochs=30, validation_fraction=0.2, patience=2, learning_rate=0.05).fit(X)
    val = [r["val_loss"] for r in est.history_]
    assert est.n_iter_ == len(val) < 30
    assert int(np.argmin(val)) == len(val) - 3  # stopped after two epochs without improvement


# -- denoising -----------------------------------------------------------------------------
@pytest.mark.parametrize("corruption, level", [("gaussian", 0.3), ("masking", 0.3)])
def test_denoising_outputs_are_deterministic_and_use_the_clean_input(X, corruption, level):
    est = make(corruption=corruption, corruption_level=level).fit(X)
    np.testing.assert_array_equal(est.transform(X), est.transform(X))
    np.testing.assert_array_equal(est.reconstruct(X), est.reconstruct(X))
    assert est.score(X) == est.score(X)
    with torch.no_grad():
        clean_codes = est.module_.encode(torch.from_numpy(X)).numpy()
        clean_rec = est.module_(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(est.transform(X), clean_codes, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(est.reconstruct(X), clean_rec, rtol=1e-6, atol=1e-7)
    assert est.score(X) == pytest.approx(-np.mean((clean_rec.astype(np.float64) - X) ** 2), rel=1e-5)


def test_corruption_affects_training(X, fitted):
    noisy = make(corruption="masking", corruption_level=0.3).fit(X)
    assert not same_state(state(noisy), state(fitted))
    assert same_state(state(make(corruption="gaussian", corruption_level=0.0).fit(X)), state(fitted))


# -- losses ------------------------------------------------------------------------------
def test_bce_loss_works_on_unit_interval_data(X):
    est = make(loss="bce", epochs=5).fit(X)
    rec = est.reconstruct(X)
    assert rec.min() >= 0 and rec.max() <= 1  # sigmoid output
    assert est.score(X) > make(loss="bce", epochs=0).fit(X).score(X)


@pytest.mark.parametrize("shift", [-0.5, 0.5])
def test_bce_rejects_data_outside_the_unit_interval(X, shift):
    with pytest.raises(ValueError, match=r"loss='bce' needs inputs in \[0, 1\]"):
        make(loss="bce").fit(X + shift)


# -- composition -------------------------------------------------------------------------
@pytest.mark.slow
def test_pipeline_scaler_autoencoder_logistic_regression(digits):
    X, y = digits
    pipe = make_pipeline(MinMaxScaler(), make(hidden_layer_sizes=(32,), epochs=10), LogisticRegression(max_iter=500))
    pipe.fit(X[:1000], y[:1000])
    assert pipe.predict(X[1000:]).shape == (797,)
    assert pipe.score(X[1000:], y[1000:]) > 0.8  # ten classes: chance is 0.1


def test_grid_search_over_hidden_layer_sizes(X):
    search = GridSearchCV(make(epochs=5), {"hidden_layer_sizes": [(2,), (24,)]}, cv=2)
    search.fit(X)
    assert search.best_params_ == {"hidden_layer_sizes": (24,)}  # a wider code reconstructs better
    assert search.best_estimator_.transform(X).shape == (300, 24)
    assert np.all(search.cv_results_["mean_test_score"] < 0)


# -- parameters and errors ---------------------------------------------------------------
def test_init_stores_params_untouched():
    sizes, rng = [12, 6], np.random.RandomState(3)
    params = dict(
        hidden_layer_sizes=sizes,
        activation="nope",
        tied=0,
        l2=-1.0,
        loss="nope",
        corruption="nope",
        corruption_level=7,
        code_activation="nope",
        epochs=-3,
        batch_size=0,
        learning_rate="fast",
        validation_fraction=2.0,
        patience=0,
        device="nowhere",
        random_state=rng,
        verbose=1,
    )
    got = AutoencoderTransformer(**params).get_params()
    assert {k: got[k] for k in params} == params
    assert got["hidden_layer_sizes"] is sizes and got["random_state"] is rng


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(activation="swish"), "activation='swish' is not allowed"),
        (dict(code_activation="swish"), "code_activation='swish' is not allowed"),
        (dict(loss="mae"), "loss='mae' is not allowed: loss must be one of 'mse', 'bce'; did you mean 'mse'"),
        (dict(corruption="salt"), "corruption='salt' is not allowed"),
        (dict(corruption="gaussian", corruption_level=-1.0), "corruption_level must be a float >= 0"),
        (dict(corruption="masking", corruption_level=1.0), r"drop rate must lie in \[0, 1\)"),
        (dict(l2=-0.1), "l2 must be a float >= 0"),
        (dict(epochs=-1), "epochs must be an int >= 0"),
        (dict(batch_size=0), "batch_size must be an int >= 1"),
        (dict(hidden_layer_sizes=()), "hidden_layer_sizes=\\(\\) is not allowed"),
        (dict(training="layerwise", layerwise_step_count="global"), "layerwise_step_count='global'"),
        (dict(learning_rate_schedule="step"), "learning_rate_schedule='step'"),
    ],
)
def test_bad_params_raise_at_fit_not_init(X, params, match):
    est = make(**params)  # no error here
    with pytest.raises(ValueError, match=match):
        est.fit(X)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.array([[0.0, np.nan], [1.0, 2.0]]), "Input X contains NaN"),
        (np.array([[0.0, np.inf], [1.0, 2.0]]), "Input X contains infinity"),
        (np.arange(4.0), "Expected 2D array, got 1D array"),
        (np.zeros((0, 4)), r"Found array with 0 sample\(s\)"),
        (np.array([["a", "b"], ["c", "d"]]), "could not convert string to float"),
    ],
)
def test_bad_input_at_fit(bad, match):
    with pytest.raises(ValueError, match=match):
        make().fit(bad)


def test_bad_input_after_fit(fitted, X):
    with pytest.raises(ValueError, match="X has 10 features, but AutoencoderTransformer is expecting 64"):
        fitted.transform(X[:, :10])
    with pytest.raises(ValueError, match="X has 10 features"):
        fitted.score(X[:, :10])
    with pytest.raises(ValueError, match="X has 10 features"):
        fitted.reconstruct(X[:, :10])
    with pytest.raises(ValueError, match="Input X contains NaN"):
        fitted.transform(np.full((2, 64), np.nan))
    with pytest.raises(ValueError, match="codes have 5 features, but the coding layer of AutoencoderTransformer has 8"):
        fitted.inverse_transform(np.zeros((3, 5)))


def test_inverse_transform_before_fit_raises_not_fitted():
    with pytest.raises(NotFittedError):
        make().inverse_transform(np.zeros((2, 8)))


@pytest.mark.parametrize("method", ["transform", "reconstruct"])
def test_transform_before_fit_raises_not_fitted(X, method):
    with pytest.raises(NotFittedError):
        getattr(make(), method)(X)


def test_score_before_fit_raises_not_fitted(X):
    with pytest.raises(NotFittedError):
        make().score(X)


@pytest.fixture
def fine_tune_configs(monkeypatch):
    """The TrainConfig of every fine-tuning run, recorded as training.fine_tune is called."""
    from aekit import training

    seen = []
    original = training.fine_tune

    def spy(module, X, *, objective, config, generator, callbacks=()):
        seen.append(config)
        return original(module, X, objective=objective, config=config, generator=generator)

    monkeypatch.setattr(training, "fine_tune", spy)
    return seen


def test_fine_tuning_uses_a_tenth_of_the_learning_rate_by_default(X, fine_tune_configs):
    make(training="layerwise", layerwise_epochs=1, fine_tune_epochs=1, learning_rate=0.02).fit(X)
    make(
        training="layerwise",
        layerwise_epochs=1,
        fine_tune_epochs=1,
        learning_rate=0.02,
        fine_tune_learning_rate=0.005,
    ).fit(X)
    assert [c.learning_rate for c in fine_tune_configs] == [pytest.approx(0.002), 0.005]
    with pytest.raises(ValueError, match="fine_tune_learning_rate"):
        make(fine_tune_learning_rate=0.0).fit(X)


def test_shared_step_count_runs_on_into_fine_tuning(X, fine_tune_configs):
    for step_count in ("per_phase", "shared"):
        make(
            training="layerwise",
            layerwise_epochs=(2, 1),
            fine_tune_epochs=1,
            batch_size=16,
            layerwise_step_count=step_count,
        ).fit(X)
    assert [c.adam_start_step for c in fine_tune_configs] == [0, 3 * (len(X) // 16)]


def test_cosine_schedule_anneals_end_to_end_training_and_fine_tuning_not_the_phases(X):
    est = make(
        training="layerwise",
        layerwise_epochs=1,
        fine_tune_epochs=4,
        learning_rate=0.02,
        learning_rate_schedule="cosine",
    ).fit(X)
    rates = {r["phase"]: r.get("learning_rate") for r in est.history_ if r["epoch"] == 1}
    assert rates == {"layer 1": None, "layer 2": None, "fine-tune": pytest.approx(0.002)}
    fine = [r["learning_rate"] for r in est.history_ if r["phase"] == "fine-tune"]
    assert fine == pytest.approx([0.002, 0.001 * (1 + np.cos(np.pi / 4)), 0.001, 0.001 * (1 - np.cos(np.pi / 4))])
    end_to_end = make(epochs=2, learning_rate_schedule="cosine").fit(X).history_
    assert [r["learning_rate"] for r in end_to_end] == pytest.approx([0.01, 0.005])

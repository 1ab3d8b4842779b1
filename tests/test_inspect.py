"""aekit.inspect: checked against brute force on tiny seeded models and data."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from aekit import AutoencoderTransformer
from aekit import inspect as ai
from aekit.nn import StackedAutoencoder, StackedConfig

N_INPUTS = 16  # 4 x 4 "images"


@pytest.fixture
def module():
    config = StackedConfig(n_inputs=N_INPUTS, hidden_sizes=(8, 4))
    return StackedAutoencoder(config, torch.Generator().manual_seed(0))


@pytest.fixture
def X():
    return np.random.default_rng(0).random((200, N_INPUTS)).astype(np.float32)


def _brute_force_activations(module, X, layer):
    with torch.no_grad():
        return module.encode(torch.from_numpy(X), layer).numpy()


def test_activations_match_encode(module, X):
    np.testing.assert_allclose(
        ai.activations(module, X, 1, batch_size=64),
        _brute_force_activations(module, X, 1),
        rtol=1e-5,
        atol=1e-6,
    )
    assert ai.activations(module, X).shape == (200, 4)  # default: the coding layer


@pytest.mark.parametrize("layer", [1, 2])
def test_top_activating_matches_brute_force(module, X, layer):
    k = 5
    # batches of 37 do not divide 200: the running merge sees uneven batches
    indices, values = ai.top_activating(module, X, layer, k, batch_size=37)
    acts = _brute_force_activations(module, X, layer)  # (200, n_units)
    expected = np.argsort(-acts, axis=0, kind="stable")[:k].T  # (n_units, k)
    assert indices.shape == values.shape == (acts.shape[1], k)
    assert indices.dtype == np.int64 and values.dtype == np.float32
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(values, np.take_along_axis(acts.T, expected, 1), rtol=1e-5, atol=1e-6)
    assert np.all(np.diff(values, axis=1) <= 0)  # sorted descending


def test_top_activating_validates(module, X):
    with pytest.raises(ValueError, match="layer"):
        ai.top_activating(module, X, layer=3)
    with pytest.raises(ValueError, match="k must"):
        ai.top_activating(module, X[:3], layer=1, k=4)
    with pytest.raises(ValueError, match="features"):
        ai.top_activating(module, X[:, :5], layer=1)


def test_accepts_fitted_estimator_only(X):
    est = AutoencoderTransformer((8, 4), epochs=1, batch_size=50, device="cpu", random_state=0)
    with pytest.raises(NotFittedError):
        ai.activations(est, X)
    est.fit(X)
    np.testing.assert_array_equal(ai.activations(est, X), ai.activations(est.module_, X))
    np.testing.assert_allclose(ai.activations(est, X), est.transform(X), rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError):
        ai.activations(object(), X)


@pytest.mark.parametrize("layer", [1, 2])
def test_maximize_activation_beats_every_instance(module, X, layer):
    state = {k: v.clone() for k, v in module.state_dict().items()}
    module.train()
    inputs, final = ai.maximize_activation(module, layer, steps=100, random_state=0)
    acts = _brute_force_activations(module, X, layer)
    assert inputs.shape == (acts.shape[1], N_INPUTS) and final.shape == (acts.shape[1],)
    assert inputs.min() >= 0.0 and inputs.max() <= 1.0
    # Layer 1 is a monotone function of w.x + b, whose maximum over the box [0, 1]^16 is at a
    # vertex; rows drawn uniformly inside the box cannot reach it, so every unit must win.
    # Layer 2 is not concave in x, so this is not guaranteed in general; it holds for this
    # seeded model by a wide margin (> 0.5), which is what the test pins down.
    assert np.all(final > acts.max(axis=0))
    np.testing.assert_allclose(
        final,
        _brute_force_activations(module, inputs, layer)[np.arange(len(final)), np.arange(len(final))],
        rtol=1e-5,
        atol=1e-6,
    )
    # the model is untouched: same weights, no gradients, same mode
    for name, value in module.state_dict().items():
        assert torch.equal(value, state[name]), name
    assert all(p.grad is None for p in module.parameters())
    assert module.training


def test_maximize_activation_units_and_seed(module):
    a, act_a = ai.maximize_activation(module, 1, units=[3, 3, 0], steps=5, random_state=1)
    b, act_b = ai.maximize_activation(module, 1, units=[3, 3, 0], steps=5, random_state=1)
    assert a.shape == (3, N_INPUTS)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(act_a, act_b)
    with pytest.raises(ValueError, match="units"):
        ai.maximize_activation(module, 1, units=[8])


def test_weight_images_shape_and_range(module):
    images = ai.weight_images(module, (4, 4))
    assert images.shape == (8, 4, 4) and images.dtype == np.float32
    flat = images.reshape(8, -1)
    np.testing.assert_allclose(flat.min(axis=1), 0.0)
    np.testing.assert_allclose(flat.max(axis=1), 1.0)
    # symmetric: zero weight is mid grey, the largest magnitude reaches 0 or 1
    W = module.encoder.layers[0].weight.detach().numpy()
    sym = ai.weight_images(module, (4, 4), normalize="symmetric").reshape(8, -1)
    np.testing.assert_allclose(sym, 0.5 + 0.5 * W / np.abs(W).max(1, keepdims=True), rtol=1e-5)
    # layer 2: weights projected through layer 1, W2 @ W1
    raw = ai.weight_images(module, (4, 4), layer=2, normalize=None)
    W2 = module.encoder.layers[1].weight.detach().numpy()
    np.testing.assert_allclose(raw.reshape(4, -1), W2 @ W, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="image_shape"):
        ai.weight_images(module, (5, 5))


def test_linear_probe_beats_chance(module):
    rng = np.random.default_rng(0)
    centres = rng.random((3, N_INPUTS)) * 2
    y = rng.integers(0, 3, size=300)
    X = (centres[y] + 0.15 * rng.standard_normal((300, N_INPUTS))).astype(np.float32)
    codes = ai.activations(module, X)  # 4-D codes of a random network still carry the classes
    result = ai.linear_probe(codes[:200], y[:200], codes[200:], y[200:], X_train=X[:200], X_test=X[200:])
    assert set(result) == {"codes", "raw", "pca", "n_components"}
    assert result["n_components"] == 4
    for key in ("codes", "raw", "pca"):
        assert 0.0 <= result[key] <= 1.0
    assert result["codes"] > 0.6  # chance is about 1/3
    assert set(ai.linear_probe(codes[:200], y[:200], codes[200:], y[200:])) == {"codes"}
    with pytest.raises(ValueError, match="both"):
        ai.linear_probe(codes[:200], y[:200], codes[200:], y[200:], X_train=X[:200])


def test_reconstruction_error_per_sample(module, X):
    errors = ai.reconstruction_error(module, X, batch_size=64)
    with torch.no_grad():
        expected = ((module(torch.from_numpy(X)) - torch.from_numpy(X)) ** 2).mean(1).numpy()
    assert errors.shape == (200,)
    np.testing.assert_allclose(errors, expected, rtol=1e-5)


def test_latent_projection_pca_subsamples_deterministically():
    codes = np.random.default_rng(0).standard_normal((300, 5))
    points, indices = ai.latent_projection(codes, max_points=100, random_state=3)
    assert points.shape == (100, 2) and indices.shape == (100,)
    assert np.all(np.diff(indices) > 0)
    np.testing.assert_array_equal(indices, ai.latent_projection(codes, max_points=100, random_state=3)[1])
    all_points, all_indices = ai.latent_projection(codes)
    assert all_points.shape == (300, 2)
    np.testing.assert_array_equal(all_indices, np.arange(300))
    with pytest.raises(ValueError, match="method"):
        ai.latent_projection(codes, method="umap")


def test_latent_projection_tsne():
    codes = np.random.default_rng(0).standard_normal((60, 5))
    points, indices = ai.latent_projection(codes, method="tsne", max_points=40)
    assert points.shape == (40, 2) and np.isfinite(points).all()
    assert len(np.unique(indices)) == 40

"""The inspection tools on a convolutional model and on your own modules: kernels as images,
channel units, most-activating images and activation maximisation, each against a brute-force
reference."""

import numpy as np
import pytest
import torch
from torch import nn

from aekit import AutoencoderTransformer, inspect
from aekit.filters import normalize_rows


@pytest.fixture(scope="module")
def conv(_digits):
    X = _digits[0][:300]
    ae = AutoencoderTransformer(
        architecture="conv", image_shape=(8, 8), channels=(4, 6), hidden_layer_sizes=(5,), epochs=2, random_state=0
    )
    return ae.fit(X), X


def test_weight_images_are_the_first_kernels_scaled_to_unit_range(conv):
    ae, _ = conv
    images = inspect.weight_images(ae, (8, 8))
    kernels = ae.module_.encoder[0][1].weight.detach().numpy().reshape(4, 9)
    lo, hi = kernels.min(axis=1, keepdims=True), kernels.max(axis=1, keepdims=True)
    np.testing.assert_allclose(images.reshape(4, 9), (kernels - lo) / (hi - lo), rtol=1e-5, atol=1e-6)
    assert images.shape == (4, 3, 3)
    np.testing.assert_array_equal(inspect.weight_images(ae, None, normalize=None).reshape(4, 9), kernels)
    symmetric = inspect.weight_images(ae, None, normalize="symmetric").reshape(4, 9)
    np.testing.assert_allclose(symmetric, normalize_rows(kernels.astype(np.float64), "symmetric"), rtol=1e-6)
    with pytest.raises(ValueError, match="layer 2 of a convolutional model has no image-sized weights"):
        inspect.weight_images(ae, (8, 8), layer=2)


def test_colour_kernels_come_channels_last():
    X = np.random.default_rng(0).random((40, 3, 8, 8), dtype=np.float32)
    ae = AutoencoderTransformer(architecture="conv", channels=(5,), hidden_layer_sizes=(4,), epochs=1).fit(X)
    assert inspect.weight_images(ae, None).shape == (5, 3, 3, 3)


def test_units_of_a_convolution_are_its_channels(conv):
    ae, X = conv
    assert [inspect.n_units(ae, k) for k in (1, 2, 3)] == [4, 6, 5]
    assert inspect.activations(ae, X, 1).shape == (300, 4, 4, 4)
    assert inspect.activations(ae, X.reshape(-1, 1, 8, 8)).shape == (300, 5)


def test_top_activating_channels_match_a_brute_force_ranking(conv):
    ae, X = conv
    indices, values = inspect.top_activating(ae, X, layer=1, k=5, batch_size=64)
    means = inspect.activations(ae, X, 1).mean(axis=(2, 3))  # (n, channels)
    for unit in range(4):
        np.testing.assert_allclose(values[unit], np.sort(means[:, unit])[::-1][:5], rtol=1e-5)
        np.testing.assert_allclose(means[indices[unit], unit], values[unit], rtol=1e-5)


def test_activation_maximisation_raises_the_channel_mean_and_the_code(conv):
    ae, X = conv
    for layer in (1, 3):
        start, _ = inspect.maximize_activation(ae, layer, [0, 1], steps=0, random_state=0)
        inputs, reached = inspect.maximize_activation(ae, layer, [0, 1], steps=60, random_state=0)
        before = inspect.activations(ae, start, layer)
        before = before.mean(axis=(2, 3)) if before.ndim == 4 else before
        assert np.all(reached > before[[0, 1], [0, 1]])
        assert inputs.shape == (2, 64) and inputs.min() >= 0 and inputs.max() <= 1


def test_your_own_modules_have_one_layer_and_no_weight_images(digits):
    X = digits[0][:100]
    ae = AutoencoderTransformer(
        encoder=nn.Sequential(nn.Linear(64, 6), nn.Tanh()), decoder=nn.Linear(6, 64), epochs=1, random_state=0
    ).fit(X)
    assert inspect.n_units(ae, 1) == 6
    np.testing.assert_allclose(inspect.activations(ae, X), ae.transform(X), rtol=1e-6)
    indices, _ = inspect.top_activating(ae, X, 1, k=3)
    assert indices.shape == (6, 3)
    with pytest.raises(TypeError, match="CustomAutoencoder has no weights that are images"):
        inspect.weight_images(ae, (8, 8))
    with pytest.raises(ValueError, match=r"layer must be in 1..1"):
        inspect.activations(ae, X, 2)
    assert torch.is_tensor(ae.module_.encode(torch.zeros(1, 64), 0))

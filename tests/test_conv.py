"""The convolutional family: shapes, a plain-PyTorch reference, tying, layer-wise phases, images as
input, saving, and clear errors for shapes that do not fit."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aekit import AutoencoderTransformer, io
from aekit.losses import reconstruction
from aekit.nn import ConvAutoencoder, ConvConfig
from aekit.params import InvalidParameterError


def config(**changes) -> ConvConfig:
    values = dict(
        image_shape=(1, 8, 8),
        channels=(4, 6),
        hidden_sizes=(10, 5),
        kernel_size=3,
        batch_norm=False,
        activation="elu",
        output_activation="linear",
        tied=False,
        code_activation=None,
    )
    return ConvConfig(**{**values, **changes})


def build(seed=0, dtype=torch.float32, **changes) -> ConvAutoencoder:
    return ConvAutoencoder(config(**changes), torch.Generator().manual_seed(seed)).to(dtype)


def reference_forward(model: ConvAutoencoder, x: torch.Tensor) -> torch.Tensor:
    """The same network written out with torch.nn.functional and the model's weights."""
    enc, dec = model.encoder, model.decoders
    h = F.elu(F.conv2d(x.view(-1, 1, 8, 8), enc[0][1].weight, enc[0][1].bias, 2, 1))  # (B, 4, 4, 4)
    h = F.elu(F.conv2d(h, enc[1][0].weight, enc[1][0].bias, 2, 1))  # (B, 6, 2, 2)
    h = F.elu(F.linear(h.flatten(1), enc[2][1].weight, enc[2][1].bias))  # (B, 10)
    z = F.elu(F.linear(h, enc[3][1].weight, enc[3][1].bias))  # (B, 5)
    h = F.elu(F.linear(z, dec[3][0].weight, dec[3][0].bias))
    h = F.elu(F.linear(h, dec[2][0].weight, dec[2][0].bias)).view(-1, 6, 2, 2)
    h = F.elu(F.conv_transpose2d(h, dec[1][0].weight, dec[1][0].bias, 2, 1, output_padding=1))  # (B, 4, 4, 4)
    return F.conv_transpose2d(h, dec[0][0].weight, dec[0][0].bias, 2, 1, output_padding=1).flatten(1)


def test_forward_matches_the_functional_reference_in_float64():
    model = build(dtype=torch.float64)
    x = torch.rand(3, 64, dtype=torch.float64)
    torch.testing.assert_close(model(x), reference_forward(model, x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 7, 9), (2, 5, 5)])
@pytest.mark.parametrize("tied", [False, True])
def test_decoder_restores_any_image_size(shape, tied):
    model = build(image_shape=shape, channels=(4, 3), tied=tied)
    x = torch.rand(2, int(np.prod(shape)))
    assert model(x).shape == x.shape
    assert model.encode(x, 1).shape[1:2] == (4,)
    assert model.encode(x).shape == (2, 5)


def test_tied_mirror_uses_the_convolutions_own_kernel():
    model = build(tied=True)
    names = [n for n, _ in model.named_parameters()]
    assert not [n for n in names if n.startswith("decoders.") and n.endswith("weight")]
    conv = model.encoder[1][0]
    h = torch.randn(2, 6, 2, 2)
    expected = F.conv_transpose2d(h, conv.weight, model.decoders[1][0].bias, 2, 1, output_padding=1)
    torch.testing.assert_close(model.decoders[1][0](h), expected)
    assert len(model.weight_matrices()) == 4  # two kernels, two dense weights: each once


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_reconstruction_loss_is_the_plain_loss_of_the_forward_pass(loss):
    model = build(output_activation="sigmoid" if loss == "bce" else "linear")
    x = torch.rand(4, 64)
    out = model.decode(model.encode(x), logits=loss == "bce")
    torch.testing.assert_close(model.reconstruction_loss(x, x, loss), reconstruction(out, x, loss))
    if loss == "bce":
        torch.testing.assert_close(torch.sigmoid(out), model(x))


def test_gradients_match_finite_differences_in_float64():
    model = build(dtype=torch.float64, tied=True, batch_norm=True).eval()
    x = torch.rand(2, 64, dtype=torch.float64, requires_grad=True)
    target = x.detach().clone()  # gradcheck perturbs x in place: the target must not share it
    assert torch.autograd.gradcheck(lambda v: model.reconstruction_loss(v, target), (x,))


def test_layer_phase_trains_its_layer_and_mirror_only():
    X = torch.rand(64, 64)
    model = build()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    params = model.layer_parameters(2)
    optimizer = torch.optim.SGD(params, lr=0.1)
    h = model.encode(X, 1).detach()
    model.reconstruction_loss(h, h, "mse", layer=2).backward()
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"encoder.1.0.weight", "encoder.1.0.bias", "decoders.1.0.weight", "decoders.1.0.bias"}


def test_config_round_trips_through_a_dict():
    cfg = config(tied=True, batch_norm=True)
    assert ConvConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown ConvConfig keys"):
        ConvConfig.from_dict({**cfg.to_dict(), "stride": 2})


# -- through the estimator -----------------------------------------------------------------------
def conv_ae(**params) -> AutoencoderTransformer:
    values = dict(
        architecture="conv",
        channels=(4, 8),
        hidden_layer_sizes=(8,),
        epochs=3,
        batch_size=32,
        learning_rate=0.005,
        random_state=0,
        device="cpu",
    )
    return AutoencoderTransformer(**{**values, **params})


@pytest.fixture
def X(digits):
    return digits[0][:300]


def test_flat_rows_with_image_shape_and_images_train_the_same_weights(X):
    flat = conv_ae(image_shape=(8, 8)).fit(X)
    images = conv_ae().fit(X.reshape(-1, 1, 8, 8))
    one_channel = conv_ae().fit(X.reshape(-1, 8, 8))
    for other in (images, one_channel):
        for a, b in zip(flat.module_.state_dict().values(), other.module_.state_dict().values()):
            assert torch.equal(a, b)
    assert flat.image_shape_ == images.image_shape_ == (1, 8, 8)
    assert images.reconstruct(X.reshape(-1, 1, 8, 8)).shape == (300, 1, 8, 8)
    assert images.reconstruct(X).shape == (300, 64)
    np.testing.assert_array_equal(images.transform(X.reshape(-1, 8, 8)), flat.transform(X))


def test_conv_reconstructs_better_as_it_trains(X):
    short, longer = conv_ae(epochs=1, image_shape=(8, 8)).fit(X), conv_ae(epochs=15, image_shape=(8, 8)).fit(X)
    assert -longer.score(X) < 0.8 * -short.score(X)


@pytest.mark.slow
def test_denoising_and_batch_norm_and_bce(X):
    ae = conv_ae(image_shape=(8, 8), corruption="masking", corruption_level=0.2, batch_norm=True, loss="bce")
    ae.fit(X)
    assert ae.history_[-1]["loss"] < ae.history_[0]["loss"]
    np.testing.assert_array_equal(ae.reconstruct(X), ae.reconstruct(X))  # no noise outside training


@pytest.mark.slow
def test_layerwise_phases_then_fine_tuning(X):
    ae = conv_ae(image_shape=(8, 8), training="layerwise", layerwise_epochs=(2, 2, 2), fine_tune_epochs=2).fit(X)
    assert [h["phase"] for h in ae.history_] == ["layer 1"] * 2 + ["layer 2"] * 2 + ["layer 3"] * 2 + ["fine-tune"] * 2


def test_save_and_load_give_identical_outputs(X, tmp_path):
    ae = conv_ae(image_shape=(8, 8), tied=True, batch_norm=True).fit(X)
    loaded = io.load(io.save(ae, tmp_path / "m"))
    assert type(loaded.module_) is ConvAutoencoder and loaded.image_shape_ == (1, 8, 8)
    np.testing.assert_array_equal(loaded.reconstruct(X), ae.reconstruct(X))
    np.testing.assert_array_equal(loaded.transform(X), ae.transform(X))


# -- bad input ------------------------------------------------------------------------------------
def test_images_whose_size_does_not_match_image_shape(X):
    with pytest.raises(ValueError, match=r"images of shape \(1, 8, 7\), but image_shape is \(1, 8, 8\)"):
        conv_ae(image_shape=(8, 8)).fit(X.reshape(-1, 8, 8)[:, :, :7])
    with pytest.raises(ValueError, match=r"X has 63 features, but image_shape \(1, 8, 8\) holds 64"):
        conv_ae(image_shape=(8, 8)).fit(X[:, :63])
    fitted = conv_ae().fit(X.reshape(-1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"images of shape \(1, 4, 16\), but the image shape of the fitted model"):
        fitted.transform(X.reshape(-1, 1, 4, 16))
    with pytest.raises(ValueError, match="X has 5 dimensions"):
        fitted.transform(X.reshape(-1, 1, 1, 8, 8))


def test_flat_rows_without_an_image_shape(X):
    with pytest.raises(ValueError, match="architecture='conv' needs the shape of the images"):
        conv_ae().fit(X)


def test_a_shape_the_strides_cannot_reduce(X):
    with pytest.raises(InvalidParameterError, match=r"8x8 -> 4x4 -> 2x2 -> 1x1 leaves convolution 4 a side of 1"):
        conv_ae(image_shape=(8, 8), channels=(2, 2, 2, 2)).fit(X)
    with pytest.raises(ValueError, match="leaves convolution 4"):  # the shape came with the images
        conv_ae(channels=(2, 2, 2, 2)).fit(X.reshape(-1, 8, 8))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(kernel_size=4), "kernel_size=4 is not allowed: kernel_size must be an odd int >= 1"),
        (dict(image_shape=(1, 0, 8)), "image_shape must be None or a tuple"),
        (dict(image_shape=(8, 8), training="layerwise", layerwise_method="separate"), "'separate' is not available"),
        (dict(image_shape=(8, 8), training="layerwise", layerwise_epochs=(1, 1)), "channels=.* has 3 layers"),
    ],
)
def test_bad_conv_parameters(X, params, match):
    with pytest.raises(InvalidParameterError, match=match):
        conv_ae(**params).fit(X)


@pytest.mark.slow
@pytest.mark.parametrize("training", ["end_to_end", "layerwise"])
def test_code_penalties_train_a_conv_model_through_the_jacobian_estimate(training):
    from aekit import datasets

    X = datasets.load("digits").X_train[:96]
    ae = AutoencoderTransformer(
        architecture="conv",
        image_shape=(1, 8, 8),
        channels=(4,),
        hidden_layer_sizes=(6,),
        contractive_weight=0.01,
        training=training,
        layerwise_epochs=1,
        epochs=1,
        random_state=0,
    ).fit(X)
    assert all(r["contractive"] > 0 for r in ae.history_)

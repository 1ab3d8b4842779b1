"""Your own encoder and decoder: trained by aekit's engine with its options, checked against a plain
PyTorch step, saved and loaded (rebuilt when registered, passed in when not), clear errors."""

import pickle
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from sklearn.base import clone
from torch import nn

from aekit import AutoencoderTransformer, io
from aekit.nn import FAMILIES, CustomAutoencoder, Family
from aekit.nn.config import DictConfig
from aekit.params import InvalidParameterError


class Encoder(nn.Module):
    """A small convolutional encoder for 1x8x8 images: (B, 1, 8, 8) -> (B, 4, 2, 2)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.ReLU(), nn.Conv2d(4, 4, 3, 2, 1))

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, out_side=8):
        super().__init__()
        self.net = nn.Sequential(nn.ConvTranspose2d(4, 4, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(4, 1, 4, 2, 1))
        self.out_side = out_side

    def forward(self, z):
        return self.net(z)[..., : self.out_side, : self.out_side]


@pytest.fixture
def X(digits):
    return digits[0][:256]


def custom(**params) -> AutoencoderTransformer:
    values = dict(
        encoder=Encoder, decoder=Decoder, image_shape=(8, 8), epochs=3, batch_size=32, random_state=0, device="cpu"
    )
    return AutoencoderTransformer(**{**values, **params})


def state(module) -> dict:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_factories_train_reproducibly_and_instances_are_never_changed(X):
    a, b, other = custom().fit(X), custom().fit(X), custom(random_state=1).fit(X)
    assert type(a.module_) is CustomAutoencoder
    assert all(torch.equal(u, v) for u, v in zip(state(a.module_).values(), state(b.module_).values()))
    assert not all(torch.equal(u, v) for u, v in zip(state(a.module_).values(), state(other.module_).values()))
    encoder, decoder = Encoder(), Decoder()
    before = state(encoder)
    fitted = custom(encoder=encoder, decoder=decoder).fit(X)
    assert all(torch.equal(v, encoder.state_dict()[k]) for k, v in before.items())  # the copy trained
    assert fitted.module_.encoder is not encoder
    assert fitted.transform(X).shape == (256, 16) and fitted.reconstruct(X).shape == X.shape
    assert fitted.reconstruct(X.reshape(-1, 1, 8, 8)).shape == (256, 1, 8, 8)


def test_one_training_step_equals_the_plain_pytorch_step(X):
    """Full batch, one epoch: aekit's engine does what torch.optim.Adam does on mse(dec(enc(x)), x)."""
    encoder, decoder = Encoder().double(), Decoder().double()
    X64 = X.astype(np.float64)
    ae = custom(encoder=encoder, decoder=decoder, epochs=1, batch_size=len(X), l2=0.0, learning_rate=0.01)
    ae.fit(X64)  # float32 data: the engine casts to the module's dtype
    enc, dec = Encoder().double(), Decoder().double()
    enc.load_state_dict(encoder.state_dict()), dec.load_state_dict(decoder.state_dict())
    optimizer = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=0.01)
    x = torch.from_numpy(X64).view(-1, 1, 8, 8)
    nn.functional.mse_loss(dec(enc(x)), x).backward()
    optimizer.step()
    for name, value in ae.module_.encoder.state_dict().items():
        torch.testing.assert_close(value, enc.state_dict()[name], rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_the_engines_options_apply(X):
    ae = custom(
        corruption="masking",
        corruption_level=0.2,
        validation_fraction=0.2,
        patience=2,
        learning_rate_schedule="cosine",
        loss="bce",
        epochs=6,
    ).fit(X)
    assert all("val_loss" in r and "l2" in r for r in ae.history_)
    assert np.all((ae.reconstruct(X) >= 0) & (ae.reconstruct(X) <= 1))  # the sigmoid on the logits
    flat = AutoencoderTransformer(
        encoder=nn.Sequential(nn.Linear(64, 8), nn.ELU()), decoder=nn.Linear(8, 64), epochs=2, random_state=0
    ).fit(X)
    assert flat.module_.config.input_shape == (64,) and flat.module_.n_codes == 8


def test_clone_and_pickle(X):
    ae = custom(encoder=Encoder(), decoder=Decoder()).fit(X)
    copy = clone(ae)
    assert copy.encoder is not ae.encoder and isinstance(copy.encoder, Encoder)
    restored = pickle.loads(pickle.dumps(ae))
    np.testing.assert_array_equal(restored.reconstruct(X), ae.reconstruct(X))


def test_arbitrary_modules_load_when_passed_back(X, tmp_path):
    ae = custom().fit(X)
    path = io.save(ae, tmp_path / "m")
    with pytest.raises(
        io.ModelFileError, match=r"decoder is your own module \(test_custom.Decoder\).*modules=\{'encoder'"
    ):
        io.load(path)
    loaded = io.load(path, modules={"encoder": Encoder(), "decoder": Decoder})
    np.testing.assert_array_equal(loaded.reconstruct(X), ae.reconstruct(X))
    wrong = nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.ReLU(), nn.Conv2d(4, 2, 3, 2, 1))
    with pytest.raises(io.ModelFileError, match="unexpected weights|missing weights|has shape"):
        io.load(path, modules={"encoder": wrong, "decoder": Decoder()})
    dense = io.save(AutoencoderTransformer(hidden_layer_sizes=(4,), epochs=1).fit(X), tmp_path / "dense")
    with pytest.raises(io.ModelFileError, match="modules= is for models with your own modules"):
        io.load(dense, modules={"encoder": Encoder()})


@dataclass
class MLPConfig(DictConfig):
    sizes: tuple


class MLP(nn.Module):
    """A module of a registered family: built as MLP(config, generator)."""

    def __init__(self, config: MLPConfig, generator=None):
        super().__init__()
        self.config = config
        sizes = config.sizes
        self.net = nn.Sequential(*[nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])

    def forward(self, x):
        return self.net(x)


def test_registered_modules_are_rebuilt_without_being_passed(X, tmp_path, monkeypatch):
    monkeypatch.setitem(FAMILIES, "test-mlp", Family(MLP, MLPConfig))
    ae = AutoencoderTransformer(
        encoder=MLP(MLPConfig((64, 6))), decoder=MLP(MLPConfig((6, 64))), epochs=2, random_state=0
    ).fit(X)
    loaded = io.load(io.save(ae, tmp_path / "m"))
    assert isinstance(loaded.encoder, MLP) and tuple(loaded.encoder.config.sizes) == (64, 6)
    np.testing.assert_array_equal(loaded.transform(X), ae.transform(X))


# -- bad input ----------------------------------------------------------------------------------
def test_a_decoder_whose_output_shape_differs_from_the_input(X):
    with pytest.raises(ValueError, match=r"decoder's output has shape \(2, 1, 7, 7\).*\(2, 1, 8, 8\)"):
        custom(decoder=Decoder(out_side=7)).fit(X)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(decoder=None), "give encoder and decoder together"),
        (dict(training="layerwise"), "not available with your own encoder and decoder"),
        (dict(encoder="Encoder"), "encoder must be None, a torch.nn.Module, or a callable"),
    ],
)
def test_bad_module_parameters(X, params, match):
    with pytest.raises(InvalidParameterError, match=match):
        custom(**params).fit(X)


def test_a_factory_that_returns_no_module(X):
    with pytest.raises(TypeError, match="returned a int, not a torch.nn.Module"):
        custom(encoder=lambda: 3).fit(X)

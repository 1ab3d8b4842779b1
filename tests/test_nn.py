"""StackedAutoencoder and its layers: shapes, tying, initialisation, a float64 reference."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from aekit.nn import ACTIVATIONS, StackedAutoencoder, StackedConfig, TiedLinear, make_activation


def build(n_inputs=10, hidden=(8, 6, 4), seed=0, **kw):
    return StackedAutoencoder(
        StackedConfig(n_inputs=n_inputs, hidden_sizes=hidden, **kw), torch.Generator().manual_seed(seed)
    )


@pytest.mark.parametrize("hidden", [(3,), (8, 4), (8, 6, 4), (9, 7, 5, 3, 2)])
@pytest.mark.parametrize("tied", [True, False])
def test_encode_decode_shapes_any_depth(hidden, tied):
    model = build(hidden=hidden, tied=tied)
    x = torch.randn(5, 10)
    z = model.encode(x)
    assert z.shape == (5, hidden[-1])
    assert model.decode(z).shape == (5, 10)
    assert model(x).shape == (5, 10)
    for k, width in enumerate(hidden, start=1):
        assert model.encode(x, depth=k).shape == (5, width)


def test_encode_depth_zero_is_the_input():
    model = build()
    x = torch.randn(3, 10)
    assert model.encode(x, depth=0) is x


def test_tied_decoder_weight_is_the_encoders_transpose_same_storage():
    model = build(tied=True)
    for enc, dec in zip(model.encoder.layers, model.decoders):
        assert isinstance(dec, TiedLinear)
        assert dec.weight.shape == (enc.in_features, enc.out_features)
        assert torch.equal(dec.weight, enc.weight.t())
        assert dec.weight.data_ptr() == enc.weight.data_ptr()
    # changing the encoder weight changes what the decoder computes
    h = torch.randn(2, 8)
    before = model.decoders[0](h).detach().clone()
    with torch.no_grad():
        model.encoder.layers[0].weight.mul_(2.0)
    after = model.decoders[0](h).detach()
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, h @ model.encoder.layers[0].weight.detach() + model.decoders[0].bias.detach())


def test_tied_model_has_no_decoder_weight_parameters():
    names = [name for name, _ in build(tied=True).named_parameters()]
    assert not [n for n in names if n.startswith("decoders.") and n.endswith("weight")]
    assert sorted(n for n in names if n.startswith("decoders.")) == [
        "decoders.0.bias",
        "decoders.1.bias",
        "decoders.2.bias",
    ]
    # each encoder weight is listed exactly once, also in the state dict
    assert [n for n in names if n.endswith("weight")] == [
        "encoder.layers.0.weight",
        "encoder.layers.1.weight",
        "encoder.layers.2.weight",
    ]
    assert [k for k in build(tied=True).state_dict() if k.endswith("weight")] == [
        "encoder.layers.0.weight",
        "encoder.layers.1.weight",
        "encoder.layers.2.weight",
    ]


def test_untied_model_has_decoder_weight_parameters():
    names = {name for name, _ in build(tied=False).named_parameters()}
    assert {"decoders.0.weight", "decoders.1.weight", "decoders.2.weight"} <= names


def test_parameter_counts():
    # 10-8-6-4: encoder weights 80 + 48 + 24, encoder biases 8 + 6 + 4, decoder biases 10 + 8 + 6
    n_tied = sum(p.numel() for p in build(tied=True).parameters())
    n_untied = sum(p.numel() for p in build(tied=False).parameters())
    assert n_tied == 152 + 18 + 24
    assert n_untied == n_tied + 152


@pytest.mark.parametrize("tied", [True, False])
def test_weight_matrices_are_the_parameter_weights(tied):
    model = build(tied=tied)
    got = {id(w) for w in model.weight_matrices()}
    expected = {id(e.weight) for e in model.encoder.layers}
    if not tied:
        expected |= {id(d.weight) for d in model.decoders}
    assert got == expected


def test_he_initialisation_std():
    model = build(n_inputs=800, hidden=(400,), tied=False, seed=1)
    enc, dec = model.encoder.layers[0], model.decoders[0]
    assert abs(enc.weight.std().item() - math.sqrt(2 / 800)) < 0.02 * math.sqrt(2 / 800)
    assert abs(dec.weight.std().item() - math.sqrt(2 / 400)) < 0.02 * math.sqrt(2 / 400)
    assert abs(enc.weight.mean().item()) < 0.01 * math.sqrt(2 / 800)
    assert torch.count_nonzero(enc.bias) == 0 and torch.count_nonzero(dec.bias) == 0


def test_initialisation_follows_the_generator():
    a, b, c = build(seed=3), build(seed=3), build(seed=4)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.encoder.layers[0].weight, c.encoder.layers[0].weight)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_every_activation_builds(name):
    act = make_activation(name)
    assert isinstance(act, nn.Module)
    x = torch.linspace(-2, 2, 9)
    assert act(x).shape == x.shape
    model = build(activation=name, output_activation=name, code_activation=name)
    assert model(torch.randn(2, 10)).shape == (2, 10)


def test_activations_compute_what_they_are_named():
    x = torch.linspace(-3, 3, 13)
    torch.testing.assert_close(make_activation("relu")(x), x.clamp(min=0))
    torch.testing.assert_close(make_activation("elu")(x), torch.where(x > 0, x, x.exp() - 1))
    torch.testing.assert_close(make_activation("tanh")(x), x.tanh())
    torch.testing.assert_close(make_activation("sigmoid")(x), x.sigmoid())
    assert torch.equal(make_activation("linear")(x), x)


def test_unknown_activation_raises():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        make_activation("swish")
    for key in ("activation", "output_activation", "code_activation"):
        with pytest.raises(ValueError, match="activation='swish' is not allowed"):
            StackedConfig(n_inputs=4, hidden_sizes=(2,), **{key: "swish"})


@pytest.mark.parametrize("kw", [dict(n_inputs=0), dict(hidden_sizes=()), dict(hidden_sizes=(3, 0))])
def test_bad_sizes_raise(kw):
    with pytest.raises(ValueError, match="is not allowed: .* must be a positive int"):
        StackedConfig(**{"n_inputs": 4, **kw})


def test_sigmoid_output():
    model = build(output_activation="sigmoid")
    x = 3 * torch.randn(50, 10)
    out = model(x)
    assert out.min() >= 0 and out.max() <= 1
    logits = model.decode(model.encode(x), logits=True)
    torch.testing.assert_close(out, logits.sigmoid())
    assert logits.min() < 0 or logits.max() > 1  # the logits really skip the sigmoid


def test_linear_output_is_unbounded():
    out = build()(10 * torch.randn(50, 10))
    assert out.min() < 0 and out.max() > 1


def test_encode_layer_and_decode_layer_compose_to_forward_for_depth_one():
    model = build(hidden=(5,), output_activation="sigmoid")
    x = torch.randn(4, 10)
    torch.testing.assert_close(model.decode_layer(model.encode_layer(x, 1), 1), model(x))


def test_encode_layer_chain_is_encode_and_decode_layer_chain_is_decode():
    model = build(code_activation="tanh")
    x = torch.randn(4, 10)
    h = x
    for k in (1, 2, 3):
        h = model.encode_layer(h, k)
    torch.testing.assert_close(h, model.encode(x))
    z = h
    for k in (3, 2, 1):
        z = model.decode_layer(z, k)
    torch.testing.assert_close(z, model.decode(h))


def test_layer_parameters_tied_and_untied():
    tied, untied = build(tied=True), build(tied=False)
    assert [p.shape for p in tied.layer_parameters(2)] == [(6, 8), (6,), (8,)]
    assert [p.shape for p in untied.layer_parameters(2)] == [(6, 8), (6,), (8, 6), (8,)]


def test_config_round_trip_and_unknown_keys():
    config = StackedConfig(
        n_inputs=7,
        hidden_sizes=[5, 3],
        activation="tanh",
        output_activation="sigmoid",
        tied=False,
        code_activation="linear",
    )
    d = config.to_dict()
    assert d == {
        "n_inputs": 7,
        "hidden_sizes": [5, 3],
        "activation": "tanh",
        "output_activation": "sigmoid",
        "tied": False,
        "code_activation": "linear",
    }
    assert StackedConfig.from_dict(d) == config
    assert StackedConfig.from_dict(d).hidden_sizes == (5, 3)
    with pytest.raises(ValueError, match="unknown StackedConfig keys: \\['depthh'\\]"):
        StackedConfig.from_dict({**d, "depthh": 3})


# -- float64 reference -------------------------------------------------------------------
NP_ACTS = {
    "elu": lambda a: np.where(a > 0, a, np.expm1(np.minimum(a, 0))),
    "tanh": np.tanh,
    "sigmoid": lambda a: 1 / (1 + np.exp(-a)),
    "linear": lambda a: a,
    "relu": lambda a: np.maximum(a, 0),
}


def numpy_forward(model, x, activation, code_activation, output_activation):
    """The same MLP written out in float64 numpy from the model's weights."""
    W = [e.weight.detach().numpy() for e in model.encoder.layers]
    b = [e.bias.detach().numpy() for e in model.encoder.layers]
    if model.config.tied:
        V = [w.T for w in W]  # decoder k uses the encoder's W.T
    else:
        V = [d.weight.detach().numpy() for d in model.decoders]
    c = [d.bias.detach().numpy() for d in model.decoders]
    depth = len(W)
    h = x
    for k in range(depth):
        act = code_activation if k == depth - 1 else activation
        h = NP_ACTS[act](h @ W[k].T + b[k])
    for k in reversed(range(depth)):
        act = output_activation if k == 0 else activation
        h = NP_ACTS[act](h @ V[k].T + c[k])
    return h


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize(
    "acts", [("elu", "elu", "linear"), ("tanh", "linear", "sigmoid"), ("relu", "sigmoid", "linear")]
)
def test_forward_matches_float64_numpy_reference(tied, acts):
    activation, code_activation, output_activation = acts
    model = build(
        tied=tied,
        activation=activation,
        code_activation=code_activation,
        output_activation=output_activation,
        seed=5,
    ).double()
    with torch.no_grad():  # non-zero biases so that their placement is tested too
        for p in model.parameters():
            if p.ndim == 1:
                p.normal_(0, 0.5, generator=torch.Generator().manual_seed(p.numel()))
    x = np.random.default_rng(0).normal(size=(6, 10))
    expected = numpy_forward(model, x, activation, code_activation, output_activation)
    got = model(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)

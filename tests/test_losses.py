"""Loss terms, the reconstruction objective (L2 on the right weights, exact gradients) and
training-time corruption."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from aekit import corruption, objectives
from aekit.losses import l2_penalty, reconstruction
from aekit.nn import StackedAutoencoder, StackedConfig
from aekit.objectives import clean_reconstruction, reconstruction_objective


def build(tied=True, hidden=(4, 3), n_inputs=5, seed=0, **kw):
    return StackedAutoencoder(
        StackedConfig(n_inputs=n_inputs, hidden_sizes=hidden, tied=tied, **kw),
        torch.Generator().manual_seed(seed),
    )


# -- loss terms --------------------------------------------------------------------------
def test_mse_is_numpy_mean_squared_error():
    rng = np.random.default_rng(0)
    out, target = rng.normal(size=(7, 5)), rng.normal(size=(7, 5))
    got = reconstruction(torch.from_numpy(out), torch.from_numpy(target), "mse")
    assert got.item() == pytest.approx(np.mean((out - target) ** 2), rel=1e-12)


def test_bce_on_logits_is_the_float64_formula():
    rng = np.random.default_rng(1)
    logits, target = 4 * rng.normal(size=(6, 9)), rng.uniform(size=(6, 9))
    target[0, :3] = [0.0, 1.0, 0.5]
    p = 1 / (1 + np.exp(-logits))
    expected = np.mean(-(target * np.log(p) + (1 - target) * np.log(1 - p)))
    got = reconstruction(torch.from_numpy(logits), torch.from_numpy(target), "bce")
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_unknown_reconstruction_loss_raises():
    with pytest.raises(ValueError, match="unknown reconstruction loss 'mae'"):
        reconstruction(torch.zeros(2, 2), torch.zeros(2, 2), "mae")


def test_l2_penalty_is_half_sum_of_squares():
    rng = np.random.default_rng(2)
    ws = [rng.normal(size=(3, 4)), rng.normal(size=(5,)), rng.normal(size=(2, 2))]
    got = l2_penalty(torch.from_numpy(w) for w in ws)
    assert got.item() == pytest.approx(0.5 * sum((w**2).sum() for w in ws), rel=1e-12)
    with pytest.raises(ValueError, match="at least one weight"):
        l2_penalty([])


# -- L2 applies to the weights that are parameters, never to biases ----------------------
def set_biases(model, value):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.fill_(value)


@pytest.mark.parametrize("tied", [True, False])
def test_l2_part_covers_encoder_weights_when_tied_all_weights_untied_never_biases(tied):
    model = build(tied=tied).double()
    set_biases(model, 3.0)  # large biases: counting them would show
    l2 = 0.1
    loss_fn = reconstruction_objective(model, model.weight_matrices(), l2=l2)
    x = torch.randn(4, 5, dtype=torch.float64)
    total, parts = loss_fn(x)
    mats = [e.weight for e in model.encoder.layers]
    if not tied:
        mats += [d.weight for d in model.decoders]
    expected = 0.5 * l2 * sum(float((w.detach() ** 2).sum()) for w in mats)
    assert parts["l2"].item() == pytest.approx(expected, rel=1e-12)
    assert total.item() == pytest.approx(parts["reconstruction"].item() + expected, rel=1e-12)
    assert parts["reconstruction"].item() == pytest.approx(F.mse_loss(model(x), x).item(), rel=1e-12)
    # the penalty's gradient never reaches a bias
    parts["l2"].backward()
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            assert p.grad is None or torch.count_nonzero(p.grad) == 0, name


def test_tied_l2_counts_each_weight_once():
    tied = build(tied=True).double()
    loss_fn = reconstruction_objective(tied, tied.weight_matrices(), l2=1.0)
    _, parts = loss_fn(torch.zeros(2, 5, dtype=torch.float64))
    once = 0.5 * sum(float((e.weight.detach() ** 2).sum()) for e in tied.encoder.layers)
    assert parts["l2"].item() == pytest.approx(once, rel=1e-12)  # not 2 * once


def test_no_l2_part_when_l2_is_zero():
    model = build()
    _, parts = reconstruction_objective(model, model.weight_matrices(), l2=0.0)(torch.randn(3, 5))
    assert "l2" not in parts and set(parts) == {"loss", "reconstruction"}


# -- gradients: finite differences in float64 --------------------------------------------
def functional_objective(model, x, l2):
    """Objective as a function of the model's parameters (in named_parameters order)."""
    names = [n for n, _ in model.named_parameters()]

    def f(*params):
        values = dict(zip(names, params))
        weights = [values[n] for n in names if n.endswith("weight")]
        forward = lambda b: functional_call(model, values, (b,))  # noqa: E731
        return reconstruction_objective(forward, weights, l2=l2)(x)[0]

    return f, tuple(p.detach().clone().requires_grad_(True) for _, p in model.named_parameters())


@pytest.mark.parametrize("tied", [True, False])
def test_total_loss_gradient_matches_finite_differences(tied):
    model = build(tied=tied, activation="tanh", code_activation="elu").double()
    set_biases(model, 0.1)
    x = torch.randn(3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    f, params = functional_objective(model, x, l2=0.05)
    assert torch.autograd.gradcheck(f, params, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_tied_gradient_collects_encoder_and_decoder_contributions():
    model = build(tied=True, hidden=(3,), activation="tanh").double()
    set_biases(model, 0.2)
    x = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    loss = F.mse_loss(model(x), x)
    loss.backward()
    tied_grad = model.encoder.layers[0].weight.grad.clone()

    # the same network with the two uses of W as separate leaves
    W = model.encoder.layers[0].weight.detach()
    b, c = model.encoder.layers[0].bias.detach(), model.decoders[0].bias.detach()
    W_enc = W.clone().requires_grad_(True)
    W_dec = W.t().clone().requires_grad_(True)  # (5, 3)
    out = torch.tanh(x @ W_enc.t() + b) @ W_dec.t() + c
    F.mse_loss(out, x).backward()
    g_enc, g_dec = W_enc.grad, W_dec.grad.t()
    torch.testing.assert_close(tied_grad, g_enc + g_dec, rtol=1e-12, atol=1e-14)
    assert not torch.allclose(tied_grad, g_enc) and not torch.allclose(tied_grad, g_dec)


def test_bce_objective_uses_logits_and_clean_target():
    model = build(output_activation="sigmoid").double()
    x = torch.rand(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    fwd = lambda b: model.decode(model.encode(b), logits=True)  # noqa: E731
    total, _ = reconstruction_objective(fwd, model.weight_matrices(), loss="bce")(x)
    expected = F.binary_cross_entropy(model(x), x)
    assert total.item() == pytest.approx(expected.item(), rel=1e-10)


def test_objective_corrupts_the_input_but_targets_the_clean_batch():
    seen = []

    def forward(b):
        seen.append(b.clone())
        return torch.zeros_like(b)

    x = torch.ones(50, 20)
    g = torch.Generator().manual_seed(0)
    loss_fn = reconstruction_objective(
        forward, [torch.zeros(1)], corruption="masking", corruption_level=0.5, generator=g
    )
    total, parts = loss_fn(x)
    assert 0.3 < (seen[0] == 0).float().mean() < 0.7  # the forward saw a corrupted batch
    assert total.item() == pytest.approx(1.0)  # the loss compares zeros with the clean ones
    evaluated = clean_reconstruction(forward)(x)
    assert torch.equal(seen[1], x) and evaluated.item() == pytest.approx(1.0)


# -- corruption --------------------------------------------------------------------------
def test_gaussian_noise_has_the_requested_std():
    x = torch.full((400, 500), 0.5)
    out = corruption.gaussian(x, 0.3, torch.Generator().manual_seed(0))
    noise = out - x
    assert noise.std().item() == pytest.approx(0.3, rel=0.01)
    assert abs(noise.mean().item()) < 0.003
    assert out.dtype == x.dtype and out.shape == x.shape


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.7])
def test_masking_drops_about_rate_and_keeps_the_rest_unchanged(rate):
    x = torch.rand(300, 400, generator=torch.Generator().manual_seed(1)) + 0.5  # no zeros
    out = corruption.masking(x, rate, torch.Generator().manual_seed(2))
    dropped = out == 0
    assert dropped.float().mean().item() == pytest.approx(rate, abs=0.005)
    assert torch.equal(out[~dropped], x[~dropped])  # kept units are not rescaled


def test_same_generator_seed_gives_the_same_noise():
    x = torch.rand(20, 30)
    for kind, level in (("gaussian", 0.2), ("masking", 0.4)):
        a = corruption.corrupt(x, kind, level, torch.Generator().manual_seed(7))
        b = corruption.corrupt(x, kind, level, torch.Generator().manual_seed(7))
        c = corruption.corrupt(x, kind, level, torch.Generator().manual_seed(8))
        assert torch.equal(a, b)
        assert not torch.equal(a, c)
        assert not torch.equal(a, x)


def test_no_corruption_returns_the_input():
    x = torch.rand(4, 3)
    assert corruption.corrupt(x, None, 0.5) is x
    assert corruption.corrupt(x, "gaussian", 0.0) is x
    assert corruption.corrupt(x, "masking", 0) is x


@pytest.mark.parametrize(
    "name, value, match",
    [
        ("corruption", "salt", "corruption='salt' is not allowed: corruption must be one of None"),
        ("corruption", "gausian", "did you mean 'gaussian'"),
        ("corruption_level", -0.1, "corruption_level must be a float >= 0"),
        ("corruption_level", float("nan"), "corruption_level must be a float >= 0"),
    ],
)
def test_corruption_parameters_reject_bad_kinds_and_levels(name, value, match):
    param = {"corruption": objectives.CORRUPTION, "corruption_level": objectives.CORRUPTION_LEVEL}[name]
    with pytest.raises(ValueError, match=match):
        param.constraint.check(name, value)


def test_a_masking_rate_must_stay_below_one():
    with pytest.raises(ValueError, match=r"drop rate must lie in \[0, 1\)"):
        corruption.validate("masking", 1.0)


@pytest.mark.parametrize(
    "kind, level", [(None, 0.0), ("gaussian", 0.0), ("gaussian", 2.0), ("masking", 0.0), ("masking", 0.99)]
)
def test_validate_accepts_good_levels(kind, level):
    corruption.validate(kind, level)

"""The fused reconstruction loss against the plain autograd formulation (float64) and finite
differences: same value, same gradient for every parameter, tied or not, any depth."""

import pytest
import torch

from aekit.engine.step import matmul_precision
from aekit.losses import reconstruction
from aekit.nn import StackedAutoencoder, StackedConfig, fused
from aekit.nn.activations import activation
from aekit.nn.fused import fused_reconstruction_loss

CASES = [
    dict(hidden_sizes=(6, 3), tied=True, activation="elu"),
    dict(hidden_sizes=(6, 3), tied=False, activation="elu"),
    dict(hidden_sizes=(7, 5, 3), tied=True, activation="tanh"),
    dict(hidden_sizes=(7, 5, 3), tied=False, activation="selu", code_activation="linear"),
    dict(hidden_sizes=(6,), tied=True, activation="sigmoid"),
    dict(hidden_sizes=(6, 4), tied=False, activation="relu"),
]


def model(seed=0, **kw):
    m = StackedAutoencoder(StackedConfig(n_inputs=8, **kw), torch.Generator().manual_seed(seed))
    return m.double()


def plain_loss(m, x, target, loss, layer):
    logits = loss == "bce"
    if layer is None:
        out = m.decode(m.encode(x), logits=logits)
    else:
        out = m.decode_layer(m.encode_layer(x, layer), layer, logits=logits)
    return reconstruction(out, target, loss)


def grads(m, loss_value):
    """Gradient of every parameter; zeros for those the loss does not use (other layers)."""
    params = list(m.parameters())
    found = torch.autograd.grad(loss_value, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, found)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['hidden_sizes']}-{c['activation']}-tied{c['tied']}")
@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_fused_loss_and_gradients_equal_plain_autograd(case, loss):
    out_act = "sigmoid" if loss == "bce" else "linear"
    m = model(**case, output_activation=out_act)
    g = torch.Generator().manual_seed(1)
    target = torch.rand(10, 8, generator=g, dtype=torch.float64)
    x = target + 0.1 * torch.randn(10, 8, generator=g, dtype=torch.float64)  # a corrupted input
    for layer in [None, *range(1, m.depth + 1)]:
        # a phase k > 1 reconstructs layer k-1's (clean) output from its (noisy) output, with MSE
        k_loss = loss if layer in (None, 1) else "mse"
        depth_in = 0 if layer is None else layer - 1
        with torch.no_grad():
            x_in, t_in = m.encode(x, depth_in), m.encode(target, depth_in)
        expected = plain_loss(m, x_in, t_in, k_loss, layer)
        got = m.reconstruction_loss(x_in, t_in, k_loss, layer)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)
        for a, b in zip(grads(m, got), grads(m, expected)):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("tied", [True, False])
def test_fused_gradients_match_finite_differences(tied):
    m = model(hidden_sizes=(5, 3), tied=tied, activation="elu")
    x = torch.rand(4, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    specs, tensors = m.chain()
    inputs = tuple(t.detach().clone().requires_grad_(True) for t in tensors)
    assert torch.autograd.gradcheck(lambda *ts: fused_reconstruction_loss(x, x, specs, ts, "mse"), inputs)


def test_input_gradient_when_the_input_requires_it():
    m = model(hidden_sizes=(5, 3), tied=True, activation="elu")
    x = torch.rand(4, 8, dtype=torch.float64, requires_grad=True)
    target = torch.rand(4, 8, dtype=torch.float64)
    (g_fused,) = torch.autograd.grad(m.reconstruction_loss(x, target), x)
    (g_plain,) = torch.autograd.grad(plain_loss(m, x, target, "mse", None), x)
    torch.testing.assert_close(g_fused, g_plain)


def test_chain_shares_the_tied_weight():
    m = model(hidden_sizes=(5, 3), tied=True, activation="elu")
    specs, tensors = m.chain()
    assert [s.weight for s in specs] == [0, 2, 2, 0] and [s.transposed for s in specs] == [
        False,
        False,
        True,
        True,
    ]
    assert len(tensors) == 6  # 2 weights + 4 biases


@pytest.fixture
def bf16_products(monkeypatch):
    """torch set, as precision="bf16-matmul" sets it for a step, to run float32 CPU matrix
    products in bfloat16; restored after the test. On a CPU without oneDNN's bfloat16 the node
    is made to take the bfloat16 path all the same (torch's own bfloat16 GEMM then runs it)."""
    monkeypatch.setattr(fused, "bf16_products_supported", lambda: True)
    with matmul_precision("bf16-matmul"):
        yield


def test_bf16_products_only_where_onednn_runs_them(bf16_products, monkeypatch):
    """Where torch ignores the bfloat16 setting (no AVX-512 / bfloat16 CPU support), the node
    keeps float32 products too; and float64 always keeps its own."""
    x = torch.zeros(2, 3)
    specs, tensors = (fused.LayerSpec(0, 1, False, "linear"),), (torch.zeros(3, 3), torch.zeros(3))
    assert type(fused._products(x, specs, tensors)) is fused.Bfloat16Products
    assert type(fused._products(x.double(), specs, tensors)) is fused.Products
    monkeypatch.setattr(fused, "bf16_products_supported", lambda: False)
    assert type(fused._products(x, specs, tensors)) is fused.Products


def bf16_rounded_loss(x, target, specs, tensors, loss):
    """The forward of the bfloat16 products in float64: each product's operands and result
    rounded to bfloat16, everything else exact."""

    def r(t):
        return t.to(torch.bfloat16).double()

    h = x.double()
    for s in specs:
        w = tensors[s.weight].double()
        z = r(r(h) @ r(w if s.transposed else w.t())) + tensors[s.bias].double()
        h = activation(s.activation).forward(z)
    return reconstruction(h, target.double(), loss)


@pytest.mark.parametrize("loss", ["mse", "bce"])
@pytest.mark.parametrize("tied", [True, False])
def test_bf16_products_round_like_bfloat16_and_stay_close_to_float32(tied, loss, bf16_products):
    """Under the bfloat16 setting the float32 node multiplies bfloat16 operands: its value is
    the float64 model of bfloat16 products (up to float32 accumulation), several bfloat16 roundings
    away from the exact value, and every gradient is within bfloat16's precision of the exact one."""
    m = StackedAutoencoder(
        StackedConfig(n_inputs=40, hidden_sizes=(24, 12), tied=tied, activation="elu"), torch.Generator().manual_seed(3)
    )
    x = torch.rand(30, 40, generator=torch.Generator().manual_seed(4))
    specs, tensors = m.chain(logits=loss == "bce")
    params = list(m.parameters())
    got = m.reconstruction_loss(x, x, loss)
    got_grads = torch.autograd.grad(got, params)
    exact = m.double().reconstruction_loss(x.double(), x.double(), loss)
    exact_grads = torch.autograd.grad(exact, list(m.parameters()))
    modelled = bf16_rounded_loss(x, x, specs, tensors, loss)
    assert abs(got.item() - modelled.item()) < 0.1 * abs(modelled.item() - exact.item())
    assert got.item() == pytest.approx(exact.item(), rel=1e-2)
    for g, e in zip(got_grads, exact_grads):
        relative = ((g.double() - e).norm() / e.norm()).item()
        assert 1e-5 < relative < 3e-2  # bfloat16's rounding, not float32's (about 1e-7)


def test_float32_products_without_the_bf16_setting():
    m = StackedAutoencoder(StackedConfig(n_inputs=40, hidden_sizes=(24, 12)), torch.Generator().manual_seed(3))
    x = torch.rand(30, 40, generator=torch.Generator().manual_seed(4))
    got = m.reconstruction_loss(x, x)
    exact = m.double().reconstruction_loss(x.double(), x.double())
    assert got.item() == pytest.approx(exact.item(), rel=1e-6)

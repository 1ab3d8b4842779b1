"""The fused loss's compiled node: the value and gradients of one kernel, compiled once per chain
and shapes, against the eager node (the reference that tests/test_fused.py checks against plain
autograd and finite differences)."""

import functools
import shutil

import pytest
import torch

from aekit.engine.step import matmul_precision
from aekit.nn import StackedAutoencoder, StackedConfig, fused
from aekit.nn.fused import compiled_kernels, fused_reconstruction_loss


def chain(seed=0, dtype=torch.float64, **kw):
    m = StackedAutoencoder(StackedConfig(n_inputs=8, **kw), torch.Generator().manual_seed(seed)).to(dtype)
    return m.chain(logits=kw.get("output_activation") == "sigmoid")


def batch(dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(10, 8, generator=g, dtype=dtype)
    return target + 0.1 * torch.randn(10, 8, generator=g, dtype=dtype), target  # corrupted input, clean target


@pytest.fixture
def dynamo_only(monkeypatch):
    """torch.compile with dynamo's tracing and no code generation (inductor's, tested once below,
    takes seconds a kernel); the kernels of other tests are forgotten before and after."""
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    kernels = fused.compiled_kernel  # the cache itself, whatever a test puts in its place
    kernels.cache_clear()
    yield
    kernels.cache_clear()


def eager_gradients(x, target, specs, tensors, loss, scale=1.0):
    tensors = [t.detach().requires_grad_(True) for t in tensors]
    x = x.detach().requires_grad_(True)
    value = fused_reconstruction_loss(x, target, specs, tensors, loss)
    return value, torch.autograd.grad(scale * value, [x, *tensors])


@pytest.mark.parametrize("loss", ["mse", "bce"])
@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("input_grad", [True, False])
def test_loss_and_gradients_equal_the_eager_node(loss, tied, input_grad):
    """The kernel's function, uncompiled: forward and backward run back to back, no autograd."""
    specs, tensors = chain(hidden_sizes=(6, 3), tied=tied, output_activation="sigmoid" if loss == "bce" else "linear")
    x, target = batch()
    value, grad_x, grads = fused.loss_and_gradients(
        x, target, *tensors, specs=specs, loss=loss, bf16=False, input_grad=input_grad
    )
    expected_value, (expected_x, *expected) = eager_gradients(x, target, specs, tensors, loss)
    torch.testing.assert_close(value, expected_value.detach(), rtol=1e-13, atol=0)
    assert (grad_x is None) != input_grad
    if input_grad:
        torch.testing.assert_close(grad_x, expected_x, rtol=1e-12, atol=1e-15)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-15)


def test_inside_compiled_kernels_the_node_is_the_compiled_one(dynamo_only):
    """Same value and gradients as the eager node, scaled by the gradient of what the loss flows
    into; without gradients, and outside the block, the eager node."""
    specs, tensors = chain(hidden_sizes=(6, 3), tied=True)
    x, target = batch()
    params = [t.detach().requires_grad_(True) for t in tensors]
    x_in = x.detach().requires_grad_(True)
    expected_value, expected = eager_gradients(x, target, specs, tensors, "mse", scale=3.0)
    with compiled_kernels():
        value = fused_reconstruction_loss(x_in, target, specs, params)
        got = torch.autograd.grad(3.0 * value, [x_in, *params])
        with torch.no_grad():
            assert fused_reconstruction_loss(x, target, specs, tensors).item() == pytest.approx(value.item(), rel=1e-13)
    assert value.grad_fn.name() == "CompiledReconstructionLossBackward"
    assert fused_reconstruction_loss(x_in, target, specs, params).grad_fn.name() == "FusedReconstructionLossBackward"
    torch.testing.assert_close(value, expected_value, rtol=1e-13, atol=0)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)


def test_one_kernel_per_chain_and_shapes_reused_by_later_models(dynamo_only):
    """A new model of the same architecture reuses the kernel; another width gets its own, however
    many there are (dynamo would refuse a ninth shape of one kernel)."""
    x, target = batch()
    for seed in (0, 1):
        specs, tensors = chain(seed, hidden_sizes=(6, 3))
        with compiled_kernels():
            fused_reconstruction_loss(x, target, specs, [t.requires_grad_(True) for t in tensors]).backward()
    assert fused.compiled_kernel.cache_info().currsize == 1
    for width in range(7, 17):
        specs, tensors = chain(hidden_sizes=(width, 3))
        with compiled_kernels():
            fused_reconstruction_loss(x, target, specs, [t.requires_grad_(True) for t in tensors]).backward()
    assert fused.compiled_kernel.cache_info().currsize == 11


def test_the_compiled_node_takes_the_bf16_products_where_the_step_sets_them(dynamo_only, monkeypatch):
    monkeypatch.setattr(fused, "bf16_products_supported", lambda: True)
    made = []  # the settings of each kernel asked for: (specs, shapes, loss, bf16, input_grad)
    cached = fused.compiled_kernel
    monkeypatch.setattr(fused, "compiled_kernel", lambda *key: made.append(key) or cached(*key))
    specs, tensors = chain(dtype=torch.float32, hidden_sizes=(6, 3))
    x, target = batch(torch.float32)
    with matmul_precision("bf16-matmul"):
        expected_value, expected = eager_gradients(x, target, specs, tensors, "mse")
        with compiled_kernels():
            params = [t.detach().requires_grad_(True) for t in tensors]
            value = fused_reconstruction_loss(x, target, specs, params)
            got = torch.autograd.grad(value, params)
    assert [bf16 for _, _, _, bf16, _ in made] == [True]
    torch.testing.assert_close(value, expected_value, rtol=1e-6, atol=0)
    for a, b in zip(got, expected[1:]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.slow
@pytest.mark.skipif(not any(map(shutil.which, ("c++", "g++", "clang++"))), reason="inductor needs a C++ compiler")
def test_inductor_compiles_the_kernel_and_it_computes_what_the_eager_node_does():
    """The real compilation (a C++ compiler at work), float32, and bfloat16 products where this
    CPU has them."""
    specs, tensors = chain(dtype=torch.float32, hidden_sizes=(6, 3))
    x, target = batch(torch.float32)
    precisions = ["float32"] + (["bf16-matmul"] if fused.bf16_products_supported() else [])
    for precision in precisions:
        with matmul_precision(precision):
            expected_value, expected = eager_gradients(x, target, specs, tensors, "mse")
            with compiled_kernels():
                params = [t.detach().requires_grad_(True) for t in tensors]
                value = fused_reconstruction_loss(x, target, specs, params)
                got = torch.autograd.grad(value, params)
        torch.testing.assert_close(value, expected_value, rtol=1e-5, atol=0)
        for a, b in zip(got, expected[1:]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_under_torch_compile_the_model_runs_its_node_outside_the_graph(dynamo_only):
    """A loss function that torch.compile traces reaches the node (compiled in the block, eager
    outside it), not the plain formulation of the loss."""
    m = StackedAutoencoder(StackedConfig(n_inputs=8, hidden_sizes=(6, 3)), torch.Generator().manual_seed(0))
    x, _ = batch(torch.float32)
    traced = torch.compile(lambda rows: m.reconstruction_loss(rows, rows) * 1.0)
    with compiled_kernels():
        assert traced(x).grad_fn.next_functions[0][0].name() == "CompiledReconstructionLossBackward"
    assert traced(x).grad_fn.next_functions[0][0].name() == "FusedReconstructionLossBackward"

"""The whole step as one compiled kernel (loss, gradients, Adam): Adam's update against
torch.optim.Adam in float64, the step against the autograd step, and when it is chosen."""

import functools
import shutil

import numpy as np
import pytest
import torch

from aekit import AutoencoderTransformer
from aekit.engine import StepOptions, clip_gradients, make_optimizer, set_learning_rate
from aekit.engine import fused_step as fs
from aekit.engine.optim import adam_scalars, adam_update
from aekit.engine.step import eager_step, make_step, matmul_precision
from aekit.nn import StackedAutoencoder, StackedConfig, fused
from aekit.objectives import reconstruction_objective

CPU = torch.device("cpu")


@pytest.fixture
def dynamo_only(monkeypatch):
    """torch.compile with dynamo's tracing and no code generation (inductor's, tested once below,
    takes seconds a kernel); the kernels of other tests are forgotten before and after."""
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    fs.compiled_update.cache_clear()
    yield
    fs.compiled_update.cache_clear()


def model(dtype=torch.float64, seed=0, **kw):
    config = StackedConfig(n_inputs=8, hidden_sizes=(6, 3), **kw)
    return StackedAutoencoder(config, torch.Generator().manual_seed(seed)).to(dtype)


def batches(n, dtype=torch.float64):
    g = torch.Generator().manual_seed(5)
    return [torch.rand(10, 8, generator=g, dtype=dtype) for _ in range(n)]


def objective(m, loss="mse", fused_chain=True, generator=None, **kw):
    """The training objective of ``m``, denoising; a ChainObjective when ``fused_chain``."""
    criterion = m.criterion(loss) if fused_chain else functools.partial(m.reconstruction_loss, loss=loss)
    generator = generator or torch.Generator().manual_seed(3)
    return reconstruction_objective(
        m, loss=loss, corruption="gaussian", corruption_level=0.1, generator=generator, criterion=criterion, **kw
    )


def optimizer(m, l2=1e-3):
    return make_optimizer(list(m.parameters()), 0.01, m.weight_matrices(), l2)


def test_adam_update_is_torch_adam_in_float64():
    """Five steps of two tensors, one with weight decay, the step size changed halfway."""
    g = torch.Generator().manual_seed(0)
    params = [torch.randn(4, 3, generator=g, dtype=torch.float64) for _ in range(2)]
    grads = [[torch.randn(4, 3, generator=g, dtype=torch.float64) for _ in params] for _ in range(5)]
    ours = [p.clone() for p in params]
    theirs = [p.clone().requires_grad_(True) for p in params]
    reference = torch.optim.Adam(
        [{"params": theirs[:1], "weight_decay": 0.01}, {"params": theirs[1:], "weight_decay": 0.0}],
        lr=0.01,
        betas=(0.8, 0.99),
        eps=1e-6,
        foreach=False,
    )
    moments = [(torch.zeros_like(p), torch.zeros_like(p), torch.zeros(())) for p in ours]
    for t, step_grads in enumerate(grads):
        lr = 0.01 if t < 3 else 0.002
        for group in reference.param_groups:
            group["lr"] = lr
        for p, grad in zip(theirs, step_grads):
            p.grad = grad.clone()
        reference.step()
        for p, grad, (m, v, count), decay in zip(ours, step_grads, moments, (0.01, 0.0)):
            scalars = torch.tensor(adam_scalars(float(count) + 1, lr, 0.8, 0.99), dtype=torch.float64)
            adam_update(p, grad, m, v, count, scalars, 0.8, 0.99, 1e-6, decay)
    for p, q, (m, v, count) in zip(ours, theirs, moments):
        torch.testing.assert_close(p, q.detach(), rtol=1e-13, atol=1e-15)
        state = reference.state[q]
        torch.testing.assert_close(m, state["exp_avg"], rtol=1e-13, atol=1e-15)
        torch.testing.assert_close(v, state["exp_avg_sq"], rtol=1e-13, atol=1e-15)
        assert float(count) == float(state["step"]) == 5


@pytest.mark.parametrize("loss", ["mse", "bce"])
@pytest.mark.parametrize("tied", [True, False])
def test_the_fused_step_trains_as_the_autograd_step(dynamo_only, loss, tied):
    """Same noise, same batches, a step size changed halfway: the same weights, Adam state and
    losses, in float64."""
    kw = dict(tied=tied, output_activation="sigmoid" if loss == "bce" else "linear")
    ours, theirs = model(**kw), model(**kw)
    opt_ours, opt_theirs = optimizer(ours), optimizer(theirs)
    step_ours = make_step(objective(ours, loss), opt_ours, StepOptions("float32", True, False), CPU)
    step_theirs = eager_step(objective(theirs, loss, fused_chain=False), opt_theirs)
    assert isinstance(step_ours, fs.FusedChainStep)
    for t, batch in enumerate(batches(6)):
        if t == 3:
            set_learning_rate(opt_ours, 0.003)
            set_learning_rate(opt_theirs, 0.003)
        got, want = step_ours(batch), step_theirs(batch)
        torch.testing.assert_close(got["loss"], want["loss"].detach(), rtol=1e-12, atol=0)
        assert got["reconstruction"] is got["loss"]
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-13)
        assert a.grad is None  # no gradient is kept
        for key in ("exp_avg", "exp_avg_sq", "step"):
            torch.testing.assert_close(opt_ours.state[a][key], opt_theirs.state[b][key], rtol=1e-11, atol=1e-13)


def test_the_state_is_the_optimizers_own(dynamo_only):
    """Three fused steps then two of torch's optimizer continue as five autograd steps do: what a
    checkpoint saves of the optimizer is what the fused step updated."""
    ours, theirs = model(), model()
    opt_ours, opt_theirs = optimizer(ours), optimizer(theirs)
    noise = torch.Generator().manual_seed(3)  # one stream for both steps, as one fit has
    fused_then_autograd = [
        make_step(objective(ours, generator=noise), opt_ours, StepOptions("float32", True, False), CPU),
        eager_step(objective(ours, fused_chain=False, generator=noise), opt_ours),
    ]
    autograd = eager_step(objective(theirs, fused_chain=False), opt_theirs)
    for t, batch in enumerate(batches(5)):
        fused_then_autograd[t >= 3](batch)
        autograd(batch)
    assert opt_ours.state_dict()["state"][0]["step"] == 5
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-13)


def test_the_step_fuses_only_what_it_computes(dynamo_only):
    """Anything beyond the chain's loss and Adam's update keeps the autograd step."""
    m = model(torch.float32)
    assert isinstance(fs.fused_step(objective(m), optimizer(m), CPU), fs.FusedChainStep)
    assert fs.fused_step(objective(m, fused_chain=False), optimizer(m), CPU) is None
    assert fs.fused_step(objective(m, l2=1e-3), optimizer(m), CPU) is None  # a term besides the chain's
    assert fs.fused_step(objective(m), optimizer(m), torch.device("cuda")) is None
    clipped = optimizer(m)
    clip_gradients(clipped, 1.0)
    assert fs.fused_step(objective(m), clipped, CPU) is None
    frozen = make_optimizer(list(m.parameters())[1:], 0.01)
    assert fs.fused_step(objective(m), frozen, CPU) is None
    unfused = torch.optim.Adam(m.parameters(), lr=0.01)
    assert fs.fused_step(objective(m), unfused, CPU) is None
    assert isinstance(
        make_step(objective(m), optimizer(m), StepOptions("float32", True, False), CPU), fs.FusedChainStep
    )
    for options in (StepOptions("float32", False, False), StepOptions("bf16", True, False)):
        made = make_step(objective(m), optimizer(m), options, CPU)
        assert not isinstance(made, fs.FusedChainStep)
        assert made.__name__ in ("step", "step_within")


def test_one_compiled_update_per_chain_and_settings_reused_by_later_fits(dynamo_only):
    for seed in range(3):
        m = model(torch.float32, seed=seed)
        make_step(objective(m), optimizer(m), StepOptions("float32", True, False), CPU)(batches(1, torch.float32)[0])
    assert fs.compiled_update.cache_info().currsize == 1
    m = model(torch.float32)
    make_step(objective(m), optimizer(m, l2=0.5), StepOptions("float32", True, False), CPU)(
        batches(1, torch.float32)[0]
    )
    assert fs.compiled_update.cache_info().currsize == 2  # another weight decay is another kernel


@pytest.mark.skipif(not any(map(shutil.which, ("c++", "g++", "clang++"))), reason="inductor needs a C++ compiler")
def test_inductor_compiles_the_step_and_it_trains_as_the_autograd_step():
    """The real compilation, float32, and bfloat16 products where this CPU has them."""
    precisions = ["float32"] + (["bf16-matmul"] if fused.bf16_products_supported() else [])
    for precision in precisions:
        ours, theirs = model(torch.float32), model(torch.float32)
        opt_ours, opt_theirs = optimizer(ours), optimizer(theirs)
        step_ours = make_step(objective(ours), opt_ours, StepOptions(precision, True, False), CPU)
        step_theirs = eager_step(objective(theirs, fused_chain=False), opt_theirs)
        for batch in batches(3, torch.float32):
            got = step_ours(batch)
            with matmul_precision(precision):
                want = step_theirs(batch)
            torch.testing.assert_close(got["loss"], want["loss"].detach(), rtol=1e-4, atol=0)
        for a, b in zip(ours.parameters(), theirs.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("training", ["end_to_end", "layerwise"])
def test_an_estimator_trains_through_the_fused_step_as_without_it(dynamo_only, monkeypatch, training):
    """compile=True reaches the fused step in an estimator's end-to-end fit and in each layer-wise
    phase (denoising, L2, a cosine schedule), and trains as the eager estimator does."""
    calls = []
    real = fs.FusedChainStep.__call__
    monkeypatch.setattr(fs.FusedChainStep, "__call__", lambda self, batch: calls.append(1) or real(self, batch))
    X = np.random.default_rng(0).random((96, 8)).astype(np.float32)
    settings = dict(
        hidden_layer_sizes=(6, 3),
        layerwise_epochs=2,
        training=training,
        corruption="gaussian",
        corruption_level=0.1,
        l2=1e-3,
        learning_rate_schedule="cosine",
        epochs=3,
        batch_size=32,
        device="cpu",
        random_state=0,
    )
    eager = AutoencoderTransformer(**settings).fit(X)
    assert not calls
    compiled = AutoencoderTransformer(**settings, compile=True).fit(X)
    assert calls
    for a, b in zip(eager.history_, compiled.history_):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
    np.testing.assert_allclose(compiled.transform(X), eager.transform(X), rtol=1e-4, atol=1e-5)

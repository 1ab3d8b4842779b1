"""How a step runs: eager, compiled, in bfloat16, captured in a (here simulated) CUDA graph."""

import functools

import numpy as np
import pytest
import torch
from helpers import train_config

from aekit import AutoencoderTransformer, engine
from aekit.engine import StepOptions, step
from aekit.nn import StackedAutoencoder, StackedConfig
from aekit.objectives import reconstruction_objective
from aekit.params import InvalidParameterError


def train(X, options=None, schedule="constant", epochs=3):
    model = StackedAutoencoder(StackedConfig(n_inputs=64, hidden_sizes=(16, 4)), torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(1)
    loss_fn = reconstruction_objective(
        model, corruption="gaussian", corruption_level=0.1, generator=generator, criterion=model.reconstruction_loss
    )
    config = train_config(epochs=epochs, batch_size=50, learning_rate_schedule=schedule, step=options)
    history = engine.fit(
        model,
        loss_fn,
        X,
        params=list(model.parameters()),
        config=config,
        generator=generator,
        l2_weights=model.weight_matrices(),
        l2=1e-3,
    )
    return model, history


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_the_default_step_is_the_eager_loop(digits):
    assert same_weights(train(digits[0])[0], train(digits[0], StepOptions("float32", False, False))[0])


def test_options_a_cpu_cannot_run_are_errors(digits):
    with pytest.raises(InvalidParameterError, match=r"cuda_graphs=True needs a CUDA device.*device='cpu'"):
        AutoencoderTransformer(device="cpu", cuda_graphs=True).fit(digits[0])
    with pytest.raises(InvalidParameterError, match=r"precision='tf32' needs a CUDA device"):
        AutoencoderTransformer(device="cpu", precision="tf32").fit(digits[0])
    with pytest.raises(InvalidParameterError, match=r"precision='bf16-matmul' needs a CPU device.*use 'tf32'"):
        AutoencoderTransformer(device="cuda:1", precision="bf16-matmul").fit(digits[0])
    with pytest.raises(ValueError, match="precision='tf32' needs a CUDA device; training runs on cpu"):
        train(digits[0], StepOptions("tf32", False, False))
    with pytest.raises(ValueError, match="cuda_graphs=True trains in one process, not 2"):
        StepOptions("float32", False, True).check(torch.device("cuda"), world_size=2)
    with pytest.raises(InvalidParameterError, match="precision='fp8' is not allowed"):
        StepOptions("fp8", False, False)


def test_bf16_autocast_takes_the_plain_loss_and_stays_close(digits):
    model = StackedAutoencoder(StackedConfig(n_inputs=64, hidden_sizes=(16, 4)), torch.Generator().manual_seed(0))
    x = torch.from_numpy(digits[0][:100])
    fused = model.reconstruction_loss(x, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = model.reconstruction_loss(x, x)
    assert plain.grad_fn.name() != fused.grad_fn.name()  # autograd's graph, not the fused node
    assert plain.dtype == torch.float32 and plain.item() == pytest.approx(fused.item(), rel=2e-2)
    (_, eager), (_, bf16) = train(digits[0]), train(digits[0], StepOptions("bf16", False, False))
    for a, b in zip(eager, bf16):
        assert b["loss"] == pytest.approx(a["loss"], rel=2e-2)


@pytest.mark.slow
def test_bf16_matmul_rounds_the_products_of_the_step_only(digits):
    """Forward and backward products in bfloat16 (oneDNN), within bfloat16's rounding of the
    float32 run; the setting is restored after every step, so validation runs in float32."""
    seen = []
    model = StackedAutoencoder(StackedConfig(n_inputs=64, hidden_sizes=(16, 4)), torch.Generator().manual_seed(0))
    loss_fn = reconstruction_objective(model, criterion=model.reconstruction_loss)

    def watched(batch):
        seen.append(torch.backends.mkldnn.matmul.fp32_precision)
        return loss_fn(batch)

    optimizer = engine.make_optimizer(list(model.parameters()), 0.01)
    made = step.make_step(watched, optimizer, StepOptions("bf16-matmul", False, False), torch.device("cpu"))
    before = torch.backends.mkldnn.matmul.fp32_precision
    made(torch.from_numpy(digits[0][:50]))
    assert seen == ["bf16"] and torch.backends.mkldnn.matmul.fp32_precision == before
    (_, eager), (_, reduced) = train(digits[0]), train(digits[0], StepOptions("bf16-matmul", False, False))
    for a, b in zip(eager, reduced):
        assert b["loss"] == pytest.approx(a["loss"], rel=2e-2)


@pytest.mark.slow
def test_compiled_step_trains_as_the_eager_one(digits, monkeypatch):
    """Dynamo's tracing and AOTAutograd's backward of the plain loss (inductor's code
    generation, which takes a minute on this CPU, is torch's own; benches/gpu_check.py times it)."""
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    torch._dynamo.reset()
    (eager, h_eager), (compiled, h_compiled) = train(digits[0]), train(digits[0], StepOptions("float32", True, False))
    for a, b in zip(h_eager, h_compiled):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
    for a, b in zip(eager.parameters(), compiled.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


class FakeGraphs:
    """CUDA's graph API on the CPU: capture records the step without running it; a replay runs
    it and writes its outputs into the same tensors, as a real graph's replay does."""

    def __init__(self):
        self.warm_ups = self.captures = self.replays = 0

    def warm_up(self, step_fn, batch, device):
        self.warm_ups += 1
        return step_fn(batch)

    def capture(self, body, generators):
        self.captures += 1
        outputs = {}
        fake = self

        class Graph:
            def replay(self):
                fake.replays += 1
                for name, value in body().items():
                    if name in outputs:
                        outputs[name].copy_(value.detach())
                    else:
                        outputs[name] = value.detach().clone()

        return Graph(), outputs


def test_a_captured_step_replays_every_batch_after_the_warm_up(digits, monkeypatch):
    graphs = FakeGraphs()
    monkeypatch.setattr(StepOptions, "check", lambda self, device, world_size=1: None)  # the CPU may capture
    monkeypatch.setattr(engine.loop, "make_step", functools.partial(step.make_step, graphs=graphs))
    options = StepOptions("float32", False, True)
    eager, h_eager = train(digits[0], schedule="cosine")
    captured, h_captured = train(digits[0], options, schedule="cosine")
    steps = 3 * (len(digits[0]) // 50)
    assert graphs.warm_ups == step.WARMUP_STEPS and graphs.captures == 1
    assert graphs.replays == steps - step.WARMUP_STEPS
    # no step lost or repeated, the schedule followed; Adam's capturable form computes its bias
    # correction in float32 tensors, not Python floats: the last bits differ
    for a, b in zip(eager.parameters(), captured.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    for a, b in zip(h_eager, h_captured):  # the parts summed, not overwritten by the next replay
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-6)


def test_a_captured_step_reads_the_learning_rate_from_a_tensor_set_learning_rate_fills():
    p = torch.nn.Parameter(torch.ones(3))
    optimizer = engine.make_optimizer([p], 0.1)
    captured = step.GraphStep(lambda batch: {}, optimizer, torch.device("cpu"), (), FakeGraphs())
    lr = optimizer.param_groups[0]["lr"]
    assert torch.is_tensor(lr) and optimizer.param_groups[0]["capturable"]
    engine.set_learning_rate(optimizer, 0.025)
    assert optimizer.param_groups[0]["lr"] is lr and lr.item() == pytest.approx(0.025)
    assert captured.graph is None


def test_cpu_gpu_options_are_estimator_parameters():
    est = AutoencoderTransformer(precision="bf16", compile=True)
    config = est._train_config("train")
    assert config.step == StepOptions("bf16", True, False)
    assert {"precision", "compile", "cuda_graphs"} <= set(est.get_params())
    np.testing.assert_equal(est._plan().end_to_end.step, config.step)

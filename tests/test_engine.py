"""The training loop: what a step changes, reproducibility, history, validation, stopping."""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import train_config

from aekit import engine
from aekit.nn import StackedAutoencoder, StackedConfig
from aekit.objectives import clean_reconstruction, reconstruction_objective


def build(seed=0, tied=True, hidden=(6, 3), n_inputs=8):
    return StackedAutoencoder(
        StackedConfig(n_inputs=n_inputs, hidden_sizes=hidden, tied=tied), torch.Generator().manual_seed(seed)
    )


def data(n=64, d=8, seed=0):
    rng = np.random.default_rng(seed)
    # low-rank data an autoencoder can learn
    return (rng.normal(size=(n, 2)) @ rng.normal(size=(2, d))).astype(np.float32)


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def train(model, X, seed=0, params=None, loss_fn=None, **config):
    loss_fn = loss_fn or reconstruction_objective(model, model.weight_matrices(), l2=1e-4)
    config = {"epochs": 3, "batch_size": 16, "learning_rate": 0.01, **config}
    return engine.fit(
        model,
        loss_fn,
        X,
        params=list(model.parameters()) if params is None else params,
        config=train_config(**config),
        generator=torch.Generator().manual_seed(seed),
    )


def test_training_changes_trainable_weights_and_leaves_frozen_ones_bit_identical():
    model = build(tied=False)
    before = snapshot(model)
    trainable = model.layer_parameters(2)  # encoder layer 2 and its mirror
    train(model, data(), params=trainable, epochs=2)
    after = snapshot(model)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {
        "encoder.layers.1.weight",
        "encoder.layers.1.bias",
        "decoders.1.weight",
        "decoders.1.bias",
    }


def test_tied_training_of_one_layer_moves_its_shared_weight_only():
    model = build(tied=True)
    before = snapshot(model)
    train(model, data(), params=model.layer_parameters(1), epochs=1)
    after = snapshot(model)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"encoder.layers.0.weight", "encoder.layers.0.bias", "decoders.0.bias"}


def test_evaluate_changes_nothing():
    model = build()
    before = snapshot(model)
    X = torch.from_numpy(data())
    value = engine.evaluate(clean_reconstruction(model), engine.InMemory(X), batch_size=10)
    assert value == pytest.approx(torch.mean((model(X) - X) ** 2).item(), rel=1e-5)
    after = snapshot(model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())


def test_loss_falls_over_epochs():
    model = build()
    history = train(model, data(n=128), epochs=15)
    losses = [r["loss"] for r in history]
    assert losses[-1] < 0.5 * losses[0]
    assert history[-1]["reconstruction"] < history[0]["reconstruction"]


def test_same_seed_gives_bit_identical_weights():
    runs = [snapshot_after_training(seed=3) for _ in range(2)]
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    other = snapshot_after_training(seed=4)
    assert not all(torch.equal(runs[0][k], other[k]) for k in runs[0])


def snapshot_after_training(seed):
    model = build(seed=0)
    g = torch.Generator().manual_seed(seed)
    loss_fn = reconstruction_objective(
        model, model.weight_matrices(), l2=1e-3, corruption="gaussian", corruption_level=0.1, generator=g
    )
    engine.fit(
        model,
        loss_fn,
        data(),
        params=list(model.parameters()),
        config=train_config(epochs=3, batch_size=8, validation_fraction=0.25),
        generator=g,
    )
    return snapshot(model)


def test_history_records():
    history = train(build(), data(), epochs=3, phase="phase 1")
    assert [r["epoch"] for r in history] == [1, 2, 3]
    for r in history:
        assert r["phase"] == "phase 1"
        assert set(r) == {"phase", "epoch", "loss", "reconstruction", "l2", "seconds"}
        assert r["seconds"] >= 0 and math.isfinite(r["loss"])
        assert isinstance(r["loss"], float)
        assert r["loss"] == pytest.approx(r["reconstruction"] + r["l2"], rel=1e-5)


def test_validation_fraction_adds_val_loss():
    history = train(build(), data(), epochs=2, validation_fraction=0.25)
    assert all("val_loss" in r and math.isfinite(r["val_loss"]) for r in history)
    assert "val_loss" not in train(build(), data(), epochs=1)[0]


def test_validation_rows_are_held_out_of_training():
    model, X = build(), data(n=40)
    steps = []

    def loss_fn(batch):
        steps.append(len(batch))
        out = model(batch)
        loss = torch.mean((out - batch) ** 2)
        return loss, {"loss": loss}

    train(model, X, loss_fn=loss_fn, epochs=1, batch_size=100, validation_fraction=0.25)
    # one training step on the 30 rows left (the batch shrinks to them), then the default
    # eval_fn (loss_fn itself) on the 10 held-out rows
    assert steps == [30, 10]


def scripted_validation(model, values):
    """An eval_fn that returns the given validation losses in turn."""
    values = iter(values)
    return lambda batch: torch.tensor(next(values))


def test_early_stopping_stops_with_patience_and_restores_the_best_weights():
    model = build()
    states = {}

    def keep(record):
        states[record["epoch"]] = snapshot(model)

    val = [3.0, 2.0, 1.0, 1.5, 1.25, 0.5, 0.25]
    history = engine.fit(
        model,
        reconstruction_objective(model, model.weight_matrices()),
        data(),
        params=list(model.parameters()),
        config=train_config(epochs=7, batch_size=16, validation_fraction=0.25, patience=2),
        generator=torch.Generator().manual_seed(0),
        eval_fn=scripted_validation(model, val),
        callbacks=[keep],
    )
    assert [r["val_loss"] for r in history] == [3.0, 2.0, 1.0, 1.5, 1.25]  # stopped before epoch 6
    final = snapshot(model)
    assert all(torch.equal(final[k], states[3][k]) for k in final)  # best epoch restored
    assert not all(torch.equal(final[k], states[5][k]) for k in final)


def test_without_patience_validation_does_not_stop_or_restore():
    model = build()
    history = engine.fit(
        model,
        reconstruction_objective(model, model.weight_matrices()),
        data(),
        params=list(model.parameters()),
        config=train_config(epochs=4, batch_size=16, validation_fraction=0.25),
        generator=torch.Generator().manual_seed(0),
        eval_fn=scripted_validation(model, [1.0, 2.0, 3.0, 4.0]),
    )
    assert len(history) == 4


def test_a_callback_returning_true_stops_training():
    calls = []

    def stop_at_two(record):
        calls.append(record["epoch"])
        return record["epoch"] == 2

    model = build()
    history = engine.fit(
        model,
        reconstruction_objective(model, model.weight_matrices()),
        data(),
        params=list(model.parameters()),
        config=train_config(epochs=10, batch_size=16),
        generator=torch.Generator().manual_seed(0),
        callbacks=[lambda record: None, stop_at_two],
    )
    assert len(history) == 2 and calls == [1, 2]


def counting_loss(model, sizes):
    def loss_fn(batch):
        sizes.append(len(batch))
        loss = torch.mean((model(batch) - batch) ** 2)
        return loss, {"loss": loss}

    return loss_fn


def test_the_last_partial_batch_is_dropped():
    model, sizes = build(), []
    train(model, data(n=10), loss_fn=counting_loss(model, sizes), epochs=3, batch_size=4)
    assert sizes == [4, 4] * 3  # 10 // 4 = 2 steps per epoch; the 2 rows left are dropped


def test_batch_size_larger_than_the_data_becomes_the_data():
    model, sizes = build(), []
    history = train(model, data(n=5), loss_fn=counting_loss(model, sizes), epochs=2, batch_size=100)
    assert sizes == [5, 5] and len(history) == 2


def test_no_trainable_parameters_raises():
    with pytest.raises(ValueError, match="no trainable parameters"):
        train(build(), data(), params=[])


def test_zero_epochs_changes_nothing():
    model = build()
    before = snapshot(model)
    assert train(model, data(), epochs=0) == []
    after = snapshot(model)
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(epochs=-1), "epochs must be an int >= 0"),
        (dict(batch_size=0), "batch_size must be an int >= 1"),
        (dict(learning_rate=0.0), "learning_rate must be a float > 0"),
        (dict(validation_fraction=1.0), r"validation_fraction must be a float in \[0, 1\)"),
    ],
)
def test_train_config_rejects_bad_settings(kw, match):
    with pytest.raises(ValueError, match=match):
        train_config(**kw)


def test_split_validation_too_few_rows_raises():
    with pytest.raises(ValueError, match="leaves no training rows"):
        engine.InMemory(torch.zeros(1, 3)).split(0.5, torch.Generator().manual_seed(0))


def test_resolve_device_and_generators():
    assert engine.resolve_device("cpu") == torch.device("cpu")
    assert engine.resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            engine.resolve_device("cuda")
    a, b = engine.make_generators(5, torch.device("cpu")), engine.make_generators(5, torch.device("cpu"))
    assert torch.equal(torch.rand(3, generator=a[0]), torch.rand(3, generator=b[0]))
    assert torch.equal(torch.rand(3, generator=a[1]), torch.rand(3, generator=b[1]))


@pytest.mark.parametrize("tied", [True, False])
def test_l2_through_the_optimizer_matches_l2_in_the_graph(tied):
    """The engine's weight-decay L2 follows the same trajectory as the plain in-graph penalty
    (float64, so only rounding separates them), and reports the same l2 part."""
    X = data().astype(np.float64)
    reference, fast = build(tied=tied).double(), build(tied=tied).double()
    config = train_config(epochs=3, batch_size=16, learning_rate=0.01)
    graph_history = engine.fit(
        reference,
        reconstruction_objective(reference, reference.weight_matrices(), l2=0.05),
        X,
        params=list(reference.parameters()),
        config=config,
        generator=torch.Generator().manual_seed(0),
    )
    opt_history = engine.fit(
        fast,
        reconstruction_objective(fast),
        X,
        params=list(fast.parameters()),
        config=config,
        generator=torch.Generator().manual_seed(0),
        l2_weights=fast.weight_matrices(),
        l2=0.05,
    )
    for (name, a), b in zip(reference.state_dict().items(), fast.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11, msg=name)
    # the in-graph l2 part is a per-batch mean, the engine's the end-of-epoch value: close, not equal
    assert opt_history[-1]["l2"] == pytest.approx(graph_history[-1]["l2"], rel=0.05)
    assert "l2" in opt_history[-1] and opt_history[-1]["loss"] == pytest.approx(
        opt_history[-1]["reconstruction"] + opt_history[-1]["l2"]
    )


def test_learning_rate_at_constant_and_cosine():
    constant = train_config(epochs=4, learning_rate=0.1)
    assert [engine.learning_rate_at(constant, e) for e in range(4)] == [0.1] * 4
    cosine = train_config(epochs=4, learning_rate=0.1, learning_rate_schedule="cosine")
    rates = [engine.learning_rate_at(cosine, e) for e in range(4)]
    assert rates[0] == pytest.approx(0.1) and rates[2] == pytest.approx(0.05)
    assert all(a > b > 0 for a, b in zip(rates, rates[1:]))


def test_cosine_schedule_matches_torch_cosine_annealing_in_float64():
    """engine.fit with the cosine schedule against plain Adam + CosineAnnealingLR stepped per
    epoch, same batches, float64: the same weights."""
    X = torch.from_numpy(data(n=48).astype(np.float64))
    model, reference = build().double(), build().double()
    history = train(model, X, epochs=3, learning_rate_schedule="cosine")
    assert [r["learning_rate"] for r in history] == pytest.approx([0.01, 0.0075, 0.0025])

    loss_fn = reconstruction_objective(reference, reference.weight_matrices(), l2=1e-4)
    optimizer = torch.optim.Adam(reference.parameters(), lr=0.01)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        perm = torch.randperm(len(X), generator=generator)
        for i in range(len(X) // 16):
            optimizer.zero_grad()
            loss_fn(X[perm[i * 16 : (i + 1) * 16]])[0].backward()
            optimizer.step()
        schedule.step()
    for (name, got), want in zip(model.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12, msg=name)


def test_constant_schedule_records_no_learning_rate_and_bad_schedule_raises():
    assert "learning_rate" not in train(build(), data(), epochs=1)[0]
    with pytest.raises(ValueError, match="learning_rate_schedule"):
        train_config(learning_rate_schedule="step")


def reference_adam_step(params, state, lr, t, b1=0.9, b2=0.999, eps=1e-8):
    """Adam (Kingma & Ba, alg. 1, PyTorch's eps placement) at step count ``t``."""
    with torch.no_grad():
        for p in params:
            m, v = state.setdefault(p, (torch.zeros_like(p), torch.zeros_like(p)))
            m.mul_(b1).add_(p.grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
            p.sub_(lr * m_hat / (v_hat.sqrt() + eps))


@pytest.mark.parametrize("start_step", [0, 500])
def test_adam_start_step_matches_adam_with_an_offset_step_count_in_float64(start_step):
    """Zero moments, step count ``start_step``: the TF1 behaviour of one optimizer over phases."""
    X = torch.from_numpy(data(n=48).astype(np.float64))
    model, reference = build().double(), build().double()
    train(model, X, epochs=2, adam_start_step=start_step)

    loss_fn = reconstruction_objective(reference, reference.weight_matrices(), l2=1e-4)
    generator, state, t = torch.Generator().manual_seed(0), {}, start_step
    for _ in range(2):
        perm = torch.randperm(len(X), generator=generator)
        for i in range(len(X) // 16):
            reference.zero_grad()
            loss_fn(X[perm[i * 16 : (i + 1) * 16]])[0].backward()
            t += 1
            reference_adam_step(list(reference.parameters()), state, 0.01, t)
    for (name, got), want in zip(model.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12, msg=name)


def test_adam_start_step_makes_the_first_steps_larger_than_a_fresh_adams():
    """Without bias correction of the first moment, step 1 moves a weight by about
    lr * 0.1 / sqrt(0.001 / (1 - 0.999**T)) instead of lr."""
    X = data(n=16)
    fresh, started = build(), build()
    before = snapshot(fresh)
    train(fresh, X, epochs=1, batch_size=16)
    train(started, X, epochs=1, batch_size=16, adam_start_step=10_000)
    w = next(iter(before))  # the first weight matrix
    fresh_move = (snapshot(fresh)[w] - before[w]).abs().max().item()
    started_move = (snapshot(started)[w] - before[w]).abs().max().item()
    assert fresh_move == pytest.approx(0.01, rel=1e-3)
    assert started_move == pytest.approx(0.01 * 0.1 / math.sqrt(0.001), rel=1e-3)


def test_training_flushes_denormals_and_leaves_the_mode_off_afterwards():
    model = StackedAutoencoder(StackedConfig(6, (3,), "elu", "linear", True, None), torch.Generator().manual_seed(0))
    seen = []

    def loss_fn(batch):
        seen.append((torch.tensor([1e-39]) * 1.0).item())  # a denormal: 0 when flushed
        return reconstruction_objective(model)(batch)

    engine.fit(
        model,
        loss_fn,
        torch.rand(8, 6),
        params=list(model.parameters()),
        config=train_config(epochs=1, batch_size=4),
        generator=torch.Generator(),
    )
    assert seen == [0.0, 0.0]
    assert (torch.tensor([1e-39]) * 1.0).item() > 0  # off again


@pytest.mark.parametrize("start_step", [0, 7])
def test_fused_adam_calling_the_kernel_directly_is_torch_adam_bit_for_bit(start_step):
    """engine.FusedAdam skips torch.optim's per-step bookkeeping; the update must not change."""
    from aekit.engine.optim import FusedAdam

    models = [build(tied=False) for _ in range(2)]
    ours = engine.make_optimizer(list(models[0].parameters()), 0.01, models[0].weight_matrices(), 1e-3, start_step)
    theirs = engine.make_optimizer(list(models[1].parameters()), 0.01, models[1].weight_matrices(), 1e-3, start_step)
    theirs.__class__ = torch.optim.Adam  # the same state and groups, torch's own step
    assert type(ours) is FusedAdam and ours.param_groups[0]["fused"]
    X = torch.from_numpy(data())
    for i in range(6):
        for model, optimizer in zip(models, (ours, theirs)):
            engine.set_learning_rate(optimizer, 0.01 / (1 + i))
            optimizer.zero_grad(set_to_none=True)
            model.reconstruction_loss(X, X).backward()
            optimizer.step()
    assert ours._ready_groups() is not None  # the direct call ran (from the first step with a state)
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        assert torch.equal(a, b)
    for p, q in zip(models[0].parameters(), models[1].parameters()):
        assert all(torch.equal(ours.state[p][k], theirs.state[q][k]) for k in ("step", "exp_avg", "exp_avg_sq"))


def test_a_read_only_array_is_shared_without_a_warning(tmp_path):
    """A memory map opened for reading becomes a tensor on its memory, with no warning. In a
    fresh process: torch gives that warning once per process, so another test could have used it up."""
    np.save(tmp_path / "x.npy", np.arange(12, dtype=np.float32).reshape(4, 3))
    code = (
        "import numpy as np, torch\n"
        "from aekit import engine\n"
        f"X = np.load({str(tmp_path / 'x.npy')!r}, mmap_mode='r')\n"
        "t = engine.as_tensor(X, torch.device('cpu'))\n"
        "assert t.data_ptr() == X.ctypes.data and t.tolist() == X.tolist()\n"
    )
    done = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

"""Greedy layer-wise training: both methods, frozen and cached lower layers,
per-phase settings, stacked denoising, fine-tuning."""

import json

import numpy as np
import pytest
import torch
from helpers import train_config

from aekit.layerwise import LayerwiseConfig
from aekit.nn import StackedAutoencoder, StackedConfig, fused
from aekit.objectives import NO_PENALTIES
from aekit.objectives import Objective as _Objective
from aekit.training import Plan, train_autoencoder

N_BATCHES = 1797 // 150  # batches per epoch of the digits at the default batch size


def make_module(sizes=(32, 16), tied=True, loss="mse", seed=0):
    config = StackedConfig(
        n_inputs=64, hidden_sizes=sizes, tied=tied, output_activation="sigmoid" if loss == "bce" else "linear"
    )
    return StackedAutoencoder(config, torch.Generator().manual_seed(seed))


LAYERWISE = dict(
    method="phases",
    epochs=4,
    learning_rate=0.01,
    l2=0.0,
    corruption=None,
    corruption_level=0.0,
    batch_size=150,
    step_count="per_phase",
    max_grad_norm=None,
)


def Objective(loss="mse", l2=0.0, corruption=None, corruption_level=0.0):
    return _Objective(loss, l2, corruption, corruption_level, NO_PENALTIES)


def train(module, X, *, seed=1, objective=None, callbacks=(), fine_tune_epochs=0, **config):
    """Layer-wise phases (then fine-tuning at a tenth of the step size, as the estimator does)."""
    layerwise = LayerwiseConfig(**{**LAYERWISE, **config})
    fine_tune = (
        train_config(epochs=fine_tune_epochs, batch_size=layerwise.batch_size, learning_rate=0.001)
        if fine_tune_epochs
        else None
    )
    plan = Plan(objective or Objective(), layerwise=layerwise, fine_tune=fine_tune)
    return train_autoencoder(module, X, plan, generator=torch.Generator().manual_seed(seed), callbacks=callbacks)


def state(module):
    return {name: t.detach().clone() for name, t in module.state_dict().items()}


def layer_of(name):
    """``"encoder.layers.1.weight"`` -> 2: the layer a parameter belongs to (its mirror's too)."""
    return int(name.split(".")[-2]) + 1


@torch.no_grad()
def reconstruction_mse(module, X):
    X = torch.as_tensor(X)
    return float(((module(X) - X) ** 2).mean())


def by_phase(history):
    phases = {}
    for record in history:
        phases.setdefault(record["phase"], []).append(record)
    return phases


def rows_of(batch, table):
    """Whether every row of ``batch`` is exactly (bit for bit) a row of ``table``."""
    known = {row.tobytes() for row in table.numpy()}
    return all(row.tobytes() in known for row in batch.numpy())


@pytest.mark.parametrize("tied", [True, False])
def test_phase_freezes_lower_layers_and_runs_them_once(digits, tied, monkeypatch):
    X = digits[0]
    module = make_module((32, 16, 8), tied)
    calls = [0, 0, 0]
    encoder_weights = [enc.weight for enc in module.encoder.layers]

    def count_training_use(products, h, spec):  # every training batch's forward
        for j, w in enumerate(encoder_weights):
            if products.tensors[spec.weight] is w and not spec.transposed:
                calls[j] += 1
                if j > 0:  # what feeds layer 2 and 3 is a cache, outside autograd
                    assert not h.requires_grad
        return linear(products, h, spec)

    linear = fused.Products.linear
    monkeypatch.setattr(fused.Products, "linear", count_training_use)
    for j, encoder in enumerate(module.encoder.layers):  # the unfused calls: filling the caches
        encoder.register_forward_hook(lambda layer, i, o, j=j: calls.__setitem__(j, calls[j] + 1))
    snapshots = {"layer 0": state(module)}  # phase label -> state after its last epoch
    history = train(
        module,
        X,
        epochs=(2, 3, 4),
        callbacks=[lambda record: snapshots.__setitem__(record["phase"], state(module))],
    )

    # each encoder runs once per training batch of its own phase, plus once to fill the
    # cache of the next phase; never during later phases' epochs
    assert calls == [2 * N_BATCHES + 1, 3 * N_BATCHES + 1, 4 * N_BATCHES]
    assert [r["phase"] for r in history] == ["layer 1"] * 2 + ["layer 2"] * 3 + ["layer 3"] * 4
    for k in (1, 2, 3):
        before, after = snapshots[f"layer {k - 1}"], snapshots[f"layer {k}"]
        for name in before:
            if layer_of(name) == k:
                assert not torch.equal(before[name], after[name]), name
            else:  # frozen below, untouched above
                assert torch.equal(before[name], after[name]), (k, name)


@pytest.mark.parametrize("method", ["phases", "separate"])
@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_both_methods_train_a_stack(digits, method, tied, loss):
    X = digits[0]  # 64-32-16-32-64
    module = make_module((32, 16), tied, loss)
    untrained = reconstruction_mse(module, X)
    history = train(module, X, method=method, epochs=5, objective=Objective(loss=loss))

    phases = by_phase(history)
    assert list(phases) == ["layer 1", "layer 2"]
    for records in phases.values():
        assert len(records) == 5
        assert records[-1]["reconstruction"] < records[0]["reconstruction"]
    assert reconstruction_mse(module, X) < 0.5 * untrained
    assert not module.training


@pytest.mark.parametrize("method", ["phases", "separate"])
@pytest.mark.parametrize("tied", [True, False])
def test_result_has_the_end_to_end_architecture(digits, method, tied):
    module = make_module((32, 16, 8), tied)
    train(module, digits[0], method=method, epochs=1)
    reference = make_module((32, 16, 8), tied, seed=5).state_dict()
    assert {n: t.shape for n, t in module.state_dict().items()} == {n: t.shape for n, t in reference.items()}
    assert module.config == make_module((32, 16, 8), tied).config
    if tied:  # a tied phase is tied: the decoder still reads the encoder's weight
        for encoder, decoder in zip(module.encoder.layers, module.decoders):
            assert torch.equal(decoder.weight, encoder.weight.t())


@pytest.mark.parametrize("tied,loss", [(True, "mse"), (False, "bce")])
@pytest.mark.parametrize("corruption,level", [(None, 0.0), (("masking", "gaussian"), (0.3, 0.1))])
@pytest.mark.parametrize("step_count", ["per_phase", "shared"])
def test_separate_and_phases_give_the_same_weights(digits, tied, loss, corruption, level, step_count):
    # the shallow autoencoders start from the stack's own initial weights and consume the
    # same random stream, so the two methods of the book are the same computation
    results = []
    for method in ("phases", "separate"):
        module = make_module((32, 16), tied, loss, seed=3)
        history = train(
            module,
            digits[0],
            method=method,
            epochs=(2, 3),
            l2=(1e-3, 0.0),
            corruption=corruption,
            corruption_level=level,
            objective=Objective(loss),
            step_count=step_count,
        )
        results.append((state(module), [r["loss"] for r in history]))
    (phases, phase_losses), (separate, separate_losses) = results
    assert phase_losses == separate_losses
    for name in phases:
        torch.testing.assert_close(phases[name], separate[name], rtol=0, atol=0)


@pytest.mark.parametrize("method", ["phases", "separate"])
@pytest.mark.parametrize("step_count", ["per_phase", "shared"])
def test_step_count_per_phase_or_running_on_across_phases(digits, method, step_count, monkeypatch):
    """Each phase and fine-tuning get a fresh Adam; "shared" starts its step count where the
    earlier phases' steps end (the book's one TF1 optimizer), "per_phase" at 0."""
    from aekit import engine

    starts, make_optimizer = [], engine.make_optimizer

    def recording(params, learning_rate, l2_weights=(), l2=0.0, start_step=0):
        starts.append(start_step)
        return make_optimizer(params, learning_rate, l2_weights, l2, start_step)

    monkeypatch.setattr(engine.loop, "make_optimizer", recording)
    train(
        make_module((32, 16, 8)),
        digits[0],
        method=method,
        epochs=(2, 1, 3),
        fine_tune_epochs=1,
        step_count=step_count,
    )
    shared = [0, 2 * N_BATCHES, 3 * N_BATCHES, 6 * N_BATCHES]
    assert starts == (shared if step_count == "shared" else [0, 0, 0, 0])


def test_shared_step_count_changes_the_later_phases_only(digits):
    runs = {}
    for step_count in ("per_phase", "shared"):
        module = make_module((32, 16), seed=3)
        history = train(module, digits[0], epochs=2, step_count=step_count)
        runs[step_count] = by_phase(history)
    assert runs["per_phase"]["layer 1"] == [
        {**r, "seconds": p["seconds"]} for r, p in zip(runs["shared"]["layer 1"], runs["per_phase"]["layer 1"])
    ]
    assert runs["per_phase"]["layer 2"][0]["loss"] != runs["shared"]["layer 2"][0]["loss"]


def test_per_phase_epochs_give_records_per_phase(digits):
    history = train(make_module((32, 16, 8)), digits[0], epochs=[1, 0, 3], learning_rate=(0.01, 0.02, 0.005))
    assert [r["phase"] for r in history] == ["layer 1"] + ["layer 3"] * 3
    assert [r["epoch"] for r in history] == [1, 1, 2, 3]


@pytest.mark.parametrize(
    "field,value",
    [
        ("epochs", (2, 2)),
        ("learning_rate", (0.01,) * 4),
        ("l2", (0.0, 0.0)),
        ("corruption", ("gaussian", None)),
        ("corruption_level", (0.1, 0.1, 0.1, 0.1)),
    ],
)
def test_wrong_length_per_phase_setting_raises(digits, field, value):
    with pytest.raises(ValueError, match=f"layer-wise {field} has {len(value)} values.*3 layers"):
        train(make_module((32, 16, 8)), digits[0], **{field: value})


@pytest.mark.parametrize(
    "settings,message",
    [
        (dict(method="greedy"), "method='greedy' is not allowed"),
        (dict(epochs=(1, 2), l2=(0.0, 0.0, 0.0)), "different numbers of phases"),
        (dict(epochs=(1, -1)), "layer 2: epochs=-1 is not allowed"),
        (dict(epochs=1.5), "epochs must be an int"),
        (dict(learning_rate=(0.01, 0.0)), "layer 2: learning_rate=0.0 is not allowed"),
        (
            dict(corruption=("masking", None), corruption_level=(1.5, 0.0)),
            "layer 1: corruption_level=1.5 .*='masking'",
        ),
        (dict(corruption="salt"), "corruption='salt' is not allowed"),
        (dict(batch_size=0), "batch_size=0 is not allowed"),
        (dict(step_count="global"), "step_count='global' is not allowed"),
    ],
)
def test_invalid_config_raises(settings, message):
    with pytest.raises(ValueError, match=message):
        LayerwiseConfig(**{**LAYERWISE, **settings})


def test_config_round_trips_through_json():
    config = LayerwiseConfig(
        **{
            **LAYERWISE,
            "method": "separate",
            "epochs": (2, 3),
            "corruption": ("masking", None),
            "corruption_level": 0.3,
        }
    )
    assert LayerwiseConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="unknown LayerwiseConfig keys"):
        LayerwiseConfig.from_dict({**config.to_dict(), "epoch": 3})


@pytest.mark.parametrize("tied", [True, False])
def test_l2_of_a_phase_covers_its_weight_parameters_only(digits, tied):
    module = make_module((32, 16), tied)
    weights = [module.encoder.layers[1].weight] + ([] if tied else [module.decoders[1].weight])
    expected = 0.5 * 0.5 * sum(float(w.detach().pow(2).sum()) for w in weights)
    # a vanishing step keeps the weights, so the mean penalty is the initial one
    history = by_phase(train(module, digits[0], epochs=1, learning_rate=1e-12, l2=(0.0, 0.5)))
    assert "l2" not in history["layer 1"][0]
    assert history["layer 2"][0]["l2"] == pytest.approx(expected, rel=1e-5)


def test_denoising_corrupts_each_phase_input_only_while_it_trains(digits, monkeypatch):
    X = torch.from_numpy(digits[0])
    module = make_module((32, 16))
    seen = {0: [], 1: []}  # training inputs of encoder layers 1 and 2

    def record(products, h, spec):  # the fused training forward's layers
        for j in (0, 1):
            if products.tensors[spec.weight] is module.encoder.layers[j].weight and not spec.transposed:
                seen[j].append(h.clone())
        return linear(products, h, spec)

    linear = fused.Products.linear
    monkeypatch.setattr(fused.Products, "linear", record)
    train(module, X, epochs=2, corruption=("masking", None), corruption_level=(0.5, 0.0))

    with torch.no_grad():
        clean_codes = module.encode(X, 1)  # layer 1 is frozen after phase 1: its final codes
    assert len(seen[0]) == len(seen[1]) == 2 * N_BATCHES
    assert not any(rows_of(batch, X) for batch in seen[0])  # phase 1 saw masked inputs
    assert all(rows_of(batch, clean_codes) for batch in seen[1])  # phase 2: clean cache
    torch.testing.assert_close(module(X), module(X), rtol=0, atol=0)  # no noise after fit


@pytest.mark.parametrize("method", ["phases", "separate"])
def test_fine_tuning_changes_every_layer_and_is_its_own_phase(digits, method):
    module = make_module((32, 16), tied=False)
    after_phases = {}

    def remember(record):
        if record["phase"] != "fine-tune":
            after_phases.update(state(module))

    history = train(
        module,
        digits[0],
        method=method,
        epochs=2,
        fine_tune_epochs=3,
        objective=Objective(l2=1e-4, corruption="gaussian", corruption_level=0.05),
        callbacks=[remember],
    )
    phases = by_phase(history)
    assert list(phases) == ["layer 1", "layer 2", "fine-tune"]
    assert [r["epoch"] for r in phases["fine-tune"]] == [1, 2, 3]
    assert "l2" in phases["fine-tune"][0]
    for name, tensor in module.state_dict().items():
        assert not torch.equal(after_phases[name], tensor), name


def test_numpy_and_tensor_inputs_agree(digits):
    a, b = make_module(), make_module()
    train(a, digits[0], epochs=1)
    train(b, torch.from_numpy(digits[0]), epochs=1)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name
    assert np.isfinite(reconstruction_mse(a, digits[0]))

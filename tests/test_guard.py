"""The divergence guard and gradient clipping: a run whose loss or weights stop being finite ends
with an error naming where, nothing of it is kept; clipping matches the plain formulation."""

import json
import math

import numpy as np
import pytest
import torch
from helpers import train_config

from aekit import AutoencoderTransformer, PretrainedClassifier, engine, io
from aekit.cli import main
from aekit.engine import DivergenceError
from aekit.engine.guard import FIRST_STEPS

DIVERGING = dict(hidden_layer_sizes=(16, 8), epochs=5, learning_rate=1e6, activation="relu", tied=False)


def linear_fit(loss_at, *, n=64, batch_size=16, epochs=3, **config):
    """engine.fit of a tiny linear model whose loss is ``loss_at(epoch, step, loss)``; the calls made."""
    model = torch.nn.Linear(4, 1)
    calls = []

    def loss_fn(batch):
        step = len(calls) % (n // batch_size) + 1
        epoch = len(calls) // (n // batch_size) + 1
        calls.append((epoch, step))
        loss = loss_at(epoch, step, model(batch).pow(2).mean())
        return loss, {"loss": loss}

    X = np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32)
    settings = dict(epochs=epochs, batch_size=batch_size, phase="probe", **config)
    engine.fit(
        model,
        loss_fn,
        X,
        params=list(model.parameters()),
        config=train_config(**settings),
        generator=torch.Generator().manual_seed(0),
    )
    return calls


def test_a_non_finite_loss_late_in_an_epoch_names_its_phase_epoch_and_step():
    with pytest.raises(DivergenceError, match=r"phase 'probe', epoch 2, step 3: the loss is nan; lower the learning"):
        linear_fit(lambda epoch, step, loss: loss * math.nan if (epoch, step) >= (2, 3) else loss)


def test_the_first_steps_are_checked_at_once():
    with pytest.raises(DivergenceError, match="epoch 1, step 2: the loss is inf") as caught:
        linear_fit(lambda epoch, step, loss: loss * math.inf if step == 2 else loss)
    assert "clip the gradients (max_grad_norm" in str(caught.value)
    assert FIRST_STEPS >= 2


def test_weights_broken_by_the_last_step_are_caught_though_its_loss_was_finite():
    # sqrt(|w|) at w = 0: the loss is finite (0), its gradient infinite, and Adam's step NaN
    model = torch.nn.Linear(4, 1)
    with torch.no_grad():
        model.weight.zero_()

    def loss_fn(batch):
        loss = model.weight.abs().sqrt().sum()
        return loss, {"loss": loss}

    with pytest.raises(DivergenceError, match="epoch 1, step 1: a weight is no longer finite"):
        engine.fit(
            model,
            loss_fn,
            np.zeros((16, 4), dtype=np.float32),
            params=list(model.parameters()),
            config=train_config(epochs=1, batch_size=16),
            generator=torch.Generator().manual_seed(0),
        )


def test_a_non_finite_validation_loss_is_an_error():
    model = torch.nn.Linear(4, 1)
    X = np.ones((40, 4), dtype=np.float32)

    def loss_fn(batch):
        loss = model(batch).pow(2).mean()
        return loss, {"loss": loss}

    with pytest.raises(DivergenceError, match="val_loss = nan at the end of the epoch"):
        engine.fit(
            model,
            loss_fn,
            X,
            params=list(model.parameters()),
            config=train_config(epochs=2, batch_size=8, validation_fraction=0.25),
            generator=torch.Generator().manual_seed(0),
            eval_fn=lambda batch: torch.tensor(math.nan),
        )


def test_a_diverging_fit_keeps_the_estimator_as_it_was(digits):
    X, y = digits
    ae = AutoencoderTransformer((16, 8), epochs=1, device="cpu", random_state=0).fit(X)
    before = {k: v.clone() for k, v in ae.module_.state_dict().items()}
    with pytest.raises(DivergenceError, match="phase 'train', epoch 1"):
        ae.set_params(**DIVERGING).fit(X)
    assert all(torch.equal(before[k], v) for k, v in ae.module_.state_dict().items())
    assert ae.n_iter_ == 1
    fresh = AutoencoderTransformer(**DIVERGING, device="cpu", random_state=0)
    with pytest.raises(DivergenceError):
        fresh.fit(X)
    assert not hasattr(fresh, "module_")


def test_a_diverging_layerwise_phase_is_named(digits):
    X, _ = digits
    ae = AutoencoderTransformer(**{**DIVERGING, "training": "layerwise", "layerwise_epochs": 2}, device="cpu")
    with pytest.raises(DivergenceError, match="phase 'layer 1', epoch 1, step 1: the loss is inf"):
        ae.fit(X * 1e20)  # squared errors beyond float32


def test_a_diverging_classifier_is_named(digits):
    X, y = digits
    clf = PretrainedClassifier(
        AutoencoderTransformer((8,), epochs=1), pretrain=False, learning_rate=1e9, epochs=3, device="cpu"
    )
    with pytest.raises(DivergenceError, match="phase 'classifier'"):
        clf.fit(X * 1e38, y)  # logits beyond float32


def test_the_command_line_reports_divergence_in_one_line_and_keeps_the_previous_run(tmp_path, capsys):
    out = tmp_path / "run"
    fast = ["--dataset", "digits", "--hidden", "8,4", "--epochs", "1", "--device", "cpu", "--seed", "0"]
    assert main(["-q", "train", *fast, "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    diverging = ["--hidden", "16,8", "--epochs", "5", "--lr", "1e6", "--activation", "relu", "--no-tied"]
    assert main(["-q", "train", "--dataset", "digits", *diverging, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "training diverged in phase 'train', epoch 1" in err
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_json_outputs_are_strict_even_with_a_non_finite_number_in_the_history(digits, tmp_path):
    X, _ = digits
    ae = AutoencoderTransformer((8,), epochs=1, device="cpu", random_state=0).fit(X)
    ae.history_[0]["loss"] = math.nan
    io.save(ae, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text(), parse_constant=pytest.fail)
    assert config["fitted"]["history_"][0]["loss"] is None


# -- gradient clipping ----------------------------------------------------------------------
def test_clipping_matches_adam_on_gradients_scaled_by_hand():
    """One step of engine.fit with max_grad_norm against the plain formulation: the gradient
    scaled to norm c when it is longer, then torch's Adam."""
    X = np.random.default_rng(1).normal(size=(32, 4)).astype(np.float32) * 10
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    reference = torch.nn.Linear(4, 2)
    reference.load_state_dict(model.state_dict())
    c = 0.05

    def loss_fn(batch):
        loss = model(batch).pow(2).mean()
        return loss, {"loss": loss}

    engine.fit(
        model,
        loss_fn,
        X,
        params=list(model.parameters()),
        config=train_config(epochs=1, batch_size=32, learning_rate=0.1, max_grad_norm=c),
        generator=torch.Generator().manual_seed(0),
    )
    batch = torch.from_numpy(X)[torch.randperm(32, generator=torch.Generator().manual_seed(0))]
    reference(batch).pow(2).mean().backward()
    norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in reference.parameters()))
    assert norm > c  # the case where clipping acts
    for p in reference.parameters():
        p.grad *= c / norm
    torch.optim.Adam(reference.parameters(), lr=0.1).step()
    for a, b in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_max_grad_norm_is_a_parameter_and_a_flag(digits):
    X, _ = digits
    ae = AutoencoderTransformer((8,), epochs=1, max_grad_norm=1.0, device="cpu", random_state=0).fit(X)
    assert ae.get_params()["max_grad_norm"] == 1.0
    with pytest.raises(ValueError, match="max_grad_norm"):
        AutoencoderTransformer(max_grad_norm=0.0).fit(X)

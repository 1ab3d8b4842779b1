"""The Ladder network's module and objective against a plain formulation of the paper's
Algorithm 1 (float64, autograd), its inference statistics, and the engine's semi-supervised
source and linear learning-rate schedule."""

import math

import pytest
import torch
import torch.nn.functional as F
from helpers import train_config

from aekit import engine
from aekit.engine import SemiSupervised, linear_decay
from aekit.nn import LadderConfig, LadderNetwork
from aekit.semisupervised import calibrate, ladder_objective, layer_costs, train_ladder

EPS = 1e-10


# -- the reference: Rasmus et al. (2015), Algorithm 1, written out plainly -----------------------
def bn(z):
    return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + EPS)


def reference_encoder(net, x, noises=None):
    """One part of a batch through the encoder; ``noises[k]`` is added to layer k (0: input).
    Returns the z of every layer, the batch mean and variance of each pre-activation, and the
    output layer's softmax."""
    W = [layer.weight for layer in net.weights]  # W[k-1] maps layer k-1 to layer k
    L = len(W)
    h = x + (noises[0] if noises else 0)
    zs, means, variances = [h], [None], [None]
    for k in range(1, L + 1):
        pre = h @ W[k - 1].T
        means.append(pre.mean(0))
        variances.append(pre.var(0, unbiased=False))
        z = (pre - means[k]) / torch.sqrt(variances[k] + EPS) + (noises[k] if noises else 0)
        zs.append(z)
        if k < L:
            h = torch.relu(z + net.betas[k - 1])
        else:
            h = torch.softmax(net.gamma * (z + net.betas[k - 1]), dim=1)
    return zs, means, variances, h


def g(z, u, a):
    a1, a2, a3, a4, a5, a6, a7, a8, a9, a10 = a
    mu = a1 * torch.sigmoid(a2 * u + a3) + a4 * u + a5
    v = a6 * torch.sigmoid(a7 * u + a8) + a9 * u + a10
    return (z - mu) * v + mu


def reference_cost(net, x_l, y_l, x_u, noises, lambdas, decoded):
    """Supervised cross-entropy of the corrupted labelled rows plus sum_l lambda_l C_l on the
    unlabelled rows; labelled and unlabelled rows batch-normalised apart."""
    n_l = len(x_l)
    _, _, _, y_corr = reference_encoder(net, x_l, [n[:n_l] for n in noises])
    z_corr, _, _, h_corr = reference_encoder(net, x_u, [n[n_l:] for n in noises])
    z_clean, means, variances, _ = reference_encoder(net, x_u)
    cost = -torch.log(y_corr[torch.arange(n_l), y_l]).mean()
    L = len(z_clean) - 1
    z_hat = {}
    for k in range(L, -1, -1):
        if k not in decoded:
            break
        u = bn(h_corr) if k == L else bn(z_hat[k + 1] @ net.vertical[k].weight.T)
        z_hat[k] = g(z_corr[k], u, net.combinators[str(k)])
        z_hat_bn = z_hat[k] if k == 0 else (z_hat[k] - means[k]) / torch.sqrt(variances[k] + EPS)
        width = z_clean[k].shape[1]
        C_l = ((z_hat_bn - z_clean[k]) ** 2).sum(1).mean() / width
        cost = cost + lambdas[k] * C_l
    return cost


class Recorded:
    """Gaussian noise from a seeded generator, every draw kept for the reference."""

    def __init__(self, std):
        self.std, self.draws = std, []
        self.generator = torch.Generator().manual_seed(7)

    def __call__(self, z):
        self.draws.append(self.std * torch.randn(z.shape, generator=self.generator, dtype=z.dtype))
        return z + self.draws[-1]


def perturbed_network(decoder, sizes=(6, 5, 4), n_inputs=7, n_classes=3):
    """A float64 network whose every parameter is away from its initial value (the
    combinators start where most of their terms vanish)."""
    torch.manual_seed(0)
    net = LadderNetwork(LadderConfig(n_inputs, sizes, n_classes, decoder), torch.Generator().manual_seed(0))
    net = net.double()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return net


def batch(n_l=5, n_u=9, n_inputs=7, n_classes=3):
    g_ = torch.Generator().manual_seed(1)
    x_l = torch.rand(n_l, n_inputs, generator=g_, dtype=torch.float64)
    x_u = torch.rand(n_u, n_inputs, generator=g_, dtype=torch.float64)
    return x_l, torch.arange(n_l) % n_classes, x_u


@pytest.mark.parametrize("decoder, n_l", [("full", 5), ("gamma", 5), ("full", 9)])  # 9: as many as unlabelled
def test_objective_and_gradients_match_the_plain_formulation(decoder, n_l):
    net = perturbed_network(decoder)
    costs = {k: 0.5 + k for k in net.config.decoded_layers}
    noise = Recorded(0.3)
    loss, parts = ladder_objective(net, costs, noise)(batch(n_l))
    grads = torch.autograd.grad(loss, list(net.parameters()))
    expected = reference_cost(net, *batch(n_l), noise.draws, costs, net.config.decoded_layers)
    expected_grads = torch.autograd.grad(expected, list(net.parameters()))
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
    assert set(parts) == {"loss", "cross_entropy", *(f"denoising_{k}" for k in net.config.decoded_layers)}
    weighted = parts["cross_entropy"] + sum(c * parts[f"denoising_{k}"] for k, c in costs.items())
    torch.testing.assert_close(parts["loss"], weighted)
    assert len(noise.draws) == net.depth + 1  # the input and every layer, clean pass none


def test_the_gradient_reaches_every_parameter_and_the_clean_pass():
    net = perturbed_network("full")
    loss, _ = ladder_objective(net, layer_costs("auto", net.depth, "full"), Recorded(0.3))(batch())
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    # the cost through the clean targets alone, noise off: the gradient is not zero
    net.zero_grad()
    clean_only = ladder_objective(net, {0: 0.0, 1: 1.0, 2: 0.0, 3: 0.0, 4: 0.0}, None)
    x_l, y_l, x_u = batch()
    loss, _ = clean_only((x_l, y_l, x_u))
    assert loss.requires_grad


def test_zero_weights_skip_the_decoder_and_train_the_labelled_rows_alone():
    net = perturbed_network("full")
    noise = Recorded(0.3)
    loss, parts = ladder_objective(net, dict.fromkeys(range(net.depth + 1), 0.0), noise)(batch())
    assert set(parts) == {"loss", "cross_entropy"}
    expected = reference_cost(net, *batch(), noise.draws, {}, decoded=())
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    loss.backward()
    assert all(c.grad is None for c in net.combinators.values())


def test_the_combinators_start_at_zero_output():
    net = LadderNetwork(LadderConfig(7, (6, 5), 3, "full"))
    x_l, y_l, x_u = batch()
    corrupted = net.encode([x_l.float(), x_u.float()], Recorded(0.3))
    estimates = net.decode([z[5:] for z in corrupted.z], torch.softmax(corrupted.logits[5:], 1))
    assert sorted(estimates) == [0, 1, 2, 3]
    assert all(torch.equal(z, torch.zeros_like(z)) for z in estimates.values())


def test_paper_costs_and_gamma_costs():
    assert layer_costs("auto", 6, "full") == {0: 1000.0, 1: 10.0, 2: 0.1, 3: 0.1, 4: 0.1, 5: 0.1, 6: 0.1}
    assert layer_costs("auto", 6, "gamma") == {6: 1.0}
    assert layer_costs(2.0, 6, "gamma") == {6: 2.0}
    assert layer_costs((1, 2, 3), 2, "full") == {0: 1.0, 1: 2.0, 2: 3.0}
    assert layer_costs(0.5, 2, "full") == {0: 0.5, 1: 0.5, 2: 0.5}


def test_calibrated_inference_is_the_encoder_normalised_over_all_rows():
    net = perturbed_network("full")
    X = torch.rand(50, 7, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    calibrate(net, X, batch_size=16)  # several chunks
    torch.testing.assert_close(net(X), net.encode([X]).logits)
    _, _, _, probs = reference_encoder(net, X)
    torch.testing.assert_close(torch.softmax(net(X), 1), probs)
    torch.testing.assert_close(net.hidden(X), torch.relu(net.encode([X]).z[3] + net.betas[2]))


def test_training_moves_the_running_statistics_towards_the_clean_batch():
    net = perturbed_network("full")
    before = [s.mean.clone() for s in net.statistics]
    ladder_objective(net, layer_costs("auto", net.depth, "full"), Recorded(0.3))(batch())
    clean = net.encode([batch()[2]])
    for k, (old, stats) in enumerate(zip(before, net.statistics), start=1):
        torch.testing.assert_close(stats.mean, 0.9 * old + 0.1 * clean.stats[k][0][0])


def test_train_ladder_lowers_the_loss_and_calibrates(digits):
    X, y = digits
    X, y = torch.from_numpy(X[:400]), torch.from_numpy(y[:400])
    labelled = torch.arange(0, 400, 10)
    net = LadderNetwork(LadderConfig(64, (20, 10), 10, "full"), torch.Generator().manual_seed(0))
    config = train_config(
        epochs=6, batch_size=50, learning_rate=0.01, learning_rate_schedule="linear", learning_rate_decay_start=0.5
    )
    history = train_ladder(
        net,
        SemiSupervised(X, labelled, y[labelled]),
        costs=layer_costs("auto", net.depth, "full"),
        noise_std=0.3,
        config=config,
        generator=torch.Generator().manual_seed(1),
    )
    assert history[-1]["loss"] < history[0]["loss"]
    assert [r["learning_rate"] for r in history] == pytest.approx([0.01, 0.01, 0.01, 0.01, 0.01 * 2 / 3, 0.01 / 3])
    assert {f"denoising_{k}" for k in range(4)} <= set(history[0])
    stats = net.statistics[0]
    pre = net.weights[0](X)
    torch.testing.assert_close(stats.mean, pre.mean(0))
    torch.testing.assert_close(stats.var, pre.var(0, unbiased=False), rtol=1e-4, atol=1e-5)


def test_module_config_round_trip_and_errors():
    config = LadderConfig(7, [6, 5], 3, "gamma")
    assert LadderConfig.from_dict(config.to_dict()) == config
    assert config.sizes == (7, 6, 5, 3) and config.depth == 3 and config.decoded_layers == (3,)
    with pytest.raises(ValueError, match="decoder"):
        LadderConfig(7, (6,), 3, "partial")
    with pytest.raises(ValueError, match="n_classes"):
        LadderConfig(7, (6,), 1, "full")
    net = LadderNetwork(config)
    assert len(net.vertical) == 0 and list(net.combinators) == ["3"]


# -- the engine's semi-supervised source -----------------------------------------------------------
def source(n=23, m=7):
    X = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 2)  # row i holds i
    labelled = torch.arange(0, 3 * m, 3)
    return SemiSupervised(X, labelled, labelled % 5)


def test_an_epoch_runs_over_every_row_with_labelled_rows_cycled():
    src = source()
    batches = list(src.epoch(4, torch.Generator().manual_seed(0)))
    assert len(batches) == src.steps(4) == 5
    unlabelled = torch.cat([b[2][:, 0] for b in batches]).long()
    assert len(set(unlabelled.tolist())) == 20  # distinct rows, the remainder (3) left out
    labelled = [b[0][:, 0].long() for b in batches]
    assert all(len(rows) == 4 for rows in labelled)
    for rows, (_, y, _) in zip(labelled, batches):
        torch.testing.assert_close(y, rows % 5)  # each row's own label
    # a pass over the 7 labelled rows gives one batch of 4 distinct rows (remainder left out)
    assert all(len(set(rows.tolist())) == 4 and set(rows.tolist()) <= set(range(0, 21, 3)) for rows in labelled)
    again = list(src.epoch(4, torch.Generator().manual_seed(0)))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[2], b[2]) for a, b in zip(batches, again))


def test_fewer_labelled_rows_than_a_batch_gives_all_of_them_each_step():
    src = source(n=100, m=3)
    batches = list(src.epoch(10, torch.Generator().manual_seed(0)))
    assert src.labelled_batch_size(10) == 3
    orders = [b[0][:, 0].tolist() for b in batches]
    assert all(sorted(o) == [0.0, 3.0, 6.0] for o in orders)
    assert len({tuple(o) for o in orders}) > 1  # reshuffled each time through


def test_split_holds_labelled_rows_out_of_training_altogether():
    src = source()
    train, validation = src.split(0.3, torch.Generator().manual_seed(0))
    held = validation.X[:, 0].long().tolist()
    assert len(held) == 2 and len(train) == 21 and len(train.labelled) == 5
    assert not set(held) & set(train.X[:, 0].long().tolist())
    assert sorted(train.X[train.labelled, 0].long().tolist()) == sorted(set(range(0, 21, 3)) - set(held))
    torch.testing.assert_close(train.y, train.X[train.labelled, 0].long() % 5)
    (x, y), n = next(iter(validation.chunks(100)))
    assert n == 2 and torch.equal(y, x[:, 0].long() % 5)
    assert src.split(0.0, torch.Generator())[1] is None
    with pytest.raises(ValueError, match="no labelled training rows"):
        source(m=2).split(0.9, torch.Generator())
    with pytest.raises(ValueError, match="one class index per labelled row"):
        SemiSupervised(src.X, src.labelled, src.y[:3])


# -- the linear schedule -------------------------------------------------------------------------
def test_linear_decay_is_constant_then_falls_to_zero():
    factors = [linear_decay(e, 150, 2 / 3) for e in range(150)]
    assert factors[:101] == [1.0] * 101
    assert factors[101] == pytest.approx(49 / 50) and factors[-1] == pytest.approx(1 / 50)
    assert all(a > b for a, b in zip(factors[100:], factors[101:]))
    assert [linear_decay(e, 4, 0.0) for e in range(4)] == [1.0, 0.75, 0.5, 0.25]
    config = train_config(
        epochs=150, learning_rate=0.002, learning_rate_schedule="linear", learning_rate_decay_start=2 / 3
    )
    assert engine.learning_rate_at(config, 149) == pytest.approx(0.002 / 50)


def test_the_linear_schedule_needs_its_start():
    with pytest.raises(ValueError, match="learning_rate_decay_start"):
        train_config(learning_rate_schedule="linear")
    with pytest.raises(ValueError, match="learning_rate_decay_start"):
        train_config(learning_rate_schedule="linear", learning_rate_decay_start=1.0)
    assert math.isclose(
        train_config(learning_rate_schedule="linear", learning_rate_decay_start=0.5).learning_rate_decay_start, 0.5
    )


def test_cross_entropy_is_of_the_corrupted_labelled_rows():
    net = perturbed_network("full")
    noise = Recorded(0.3)
    _, parts = ladder_objective(net, layer_costs("auto", net.depth, "full"), noise)(batch())
    x_l, y_l, x_u = batch()
    draws = iter(noise.draws)
    logits = net.encode([x_l, x_u], lambda z: z + next(draws)).logits[:5]
    torch.testing.assert_close(parts["cross_entropy"], F.cross_entropy(logits, y_l))

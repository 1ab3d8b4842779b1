"""The VAE's probabilities: its terms against torch.distributions, the importance-sampled
log-likelihood against exact marginals, dynamic binarisation and the KL warm-up."""

import math

import numpy as np
import pytest
import torch
from helpers import train_config
from torch.distributions import Bernoulli, Normal, kl_divergence

from aekit import engine, losses, variational
from aekit.nn import DenseVAE, VAEConfig
from aekit.nn.variational import sample_posterior
from aekit.training import train_variational


def vae(n_inputs=6, hidden=(4,), latent=2, activation="elu", likelihood="bernoulli", seed=0) -> DenseVAE:
    config = VAEConfig(n_inputs, hidden, latent, activation, likelihood)
    return DenseVAE(config, torch.Generator().manual_seed(seed)).double()


# -- the terms ---------------------------------------------------------------------------
def test_terms_match_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mean, log_var, z = (torch.randn(7, 3, generator=g, dtype=torch.float64) for _ in range(3))
    std = torch.exp(0.5 * log_var)
    q, prior = Normal(mean, std), Normal(torch.zeros(3, dtype=torch.float64), 1.0)
    torch.testing.assert_close(losses.gaussian_kl(mean, log_var), kl_divergence(q, prior).sum(-1))
    torch.testing.assert_close(losses.gaussian_log_density(z, mean, log_var), q.log_prob(z).sum(-1))
    torch.testing.assert_close(losses.standard_normal_log_density(z), prior.log_prob(z).sum(-1))
    x = torch.rand(7, 3, generator=g, dtype=torch.float64).round()
    torch.testing.assert_close(losses.bernoulli_log_likelihood(z, x), Bernoulli(logits=z).log_prob(x).sum(-1))
    torch.testing.assert_close(
        losses.gaussian_log_likelihood(mean, log_var, z), Normal(mean, log_var.exp()).log_prob(z).sum(-1)
    )


def test_sample_posterior_has_the_posterior_moments_and_shapes():
    mean, log_var = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.0, math.log(4.0)]])
    z = sample_posterior(mean, log_var, torch.Generator().manual_seed(0), 20000)
    assert z.shape == (1, 20000, 2)
    torch.testing.assert_close(z.mean(1), mean, atol=0.05, rtol=0)
    torch.testing.assert_close(z.std(1), torch.tensor([[1.0, 2.0]]), atol=0.05, rtol=0)
    assert sample_posterior(mean, log_var, None).shape == (1, 2)


# -- the importance-sampled log-likelihood -----------------------------------------------
def linear_gaussian_vae(exact_posterior: bool) -> tuple[DenseVAE, torch.Tensor, torch.Tensor]:
    """A linear VAE x = A z + c + sigma * noise whose marginal is N(c, A A^T + sigma^2 I). With
    orthogonal columns of A its posterior is diagonal, and ``exact_posterior`` sets the encoder
    to it exactly. Returns (module, A A^T + sigma^2 I, c)."""
    D, L, sigma = 5, 2, 0.7
    module = vae(D, (D,), L, activation="linear", likelihood="gaussian")
    A = torch.linalg.qr(torch.randn(D, L, generator=torch.Generator().manual_seed(1), dtype=torch.float64))[0]
    A = A * torch.tensor([2.0, 0.5], dtype=torch.float64)  # orthogonal columns, different lengths
    c = torch.linspace(-1, 1, D, dtype=torch.float64)
    cov_post = torch.linalg.inv(torch.eye(L, dtype=torch.float64) + A.T @ A / sigma**2)  # diagonal
    enc_gain = cov_post @ A.T / sigma**2  # posterior mean = enc_gain @ (x - c)
    with torch.no_grad():
        first, second = module.decoder.layers
        first.weight.copy_(A), first.bias.zero_()
        second.weight.copy_(torch.eye(D)), second.bias.copy_(c)
        module.log_scale.fill_(math.log(sigma))
        module.encoder.layers[0].weight.copy_(torch.eye(D)), module.encoder.layers[0].bias.zero_()
        module.log_var.weight.zero_()
        module.log_var.bias.copy_(torch.diagonal(cov_post).log())
        module.mean.weight.copy_(enc_gain)
        module.mean.bias.copy_(-enc_gain @ c)
        if not exact_posterior:
            module.mean.bias.add_(0.3)
            module.log_var.bias.add_(0.4)
    return module, A @ A.T + sigma**2 * torch.eye(D, dtype=torch.float64), c


def exact_log_marginal(X, cov, c) -> torch.Tensor:
    return torch.distributions.MultivariateNormal(c, cov).log_prob(X)


def test_importance_sampling_is_exact_with_the_exact_posterior():
    # every importance weight p(x, z) / q(z | x) then equals p(x): any k gives log p(x) exactly
    module, cov, c = linear_gaussian_vae(exact_posterior=True)
    X = torch.randn(8, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 2
    for k in (1, 7):
        estimate = variational.importance_log_likelihood(module, X, k, torch.Generator().manual_seed(k))
        torch.testing.assert_close(estimate, exact_log_marginal(X, cov, c), rtol=0, atol=1e-10)


@pytest.mark.slow
def test_importance_sampling_converges_from_below_with_an_inexact_posterior():
    module, cov, c = linear_gaussian_vae(exact_posterior=False)
    X = torch.randn(4, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    exact = exact_log_marginal(X, cov, c)
    elbo = torch.stack(
        [variational.importance_log_likelihood(module, X, 1, torch.Generator().manual_seed(s)) for s in range(4000)]
    ).mean(0)
    many = variational.importance_log_likelihood(module, X, 200_000, torch.Generator().manual_seed(0))
    assert (elbo < exact - 0.05).all()  # the ELBO: a strict lower bound for this posterior
    torch.testing.assert_close(many, exact, rtol=0, atol=0.01)


def test_importance_sampling_matches_quadrature_on_a_one_dimensional_latent():
    """A Bernoulli VAE with one latent dimension: p(x) = int p(x | z) N(z) dz by brute force."""
    module = vae(6, (4,), 1)
    X = torch.tensor([[1, 0, 1, 1, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=torch.float64)
    z = torch.linspace(-10, 10, 40001, dtype=torch.float64).unsqueeze(1)  # (Z, 1)
    with torch.no_grad():
        log_joint = torch.stack([variational.log_likelihood_given(module, x.expand(len(z), 6), z) for x in X])
        log_joint = log_joint + losses.standard_normal_log_density(z)  # (2, Z)
        exact = torch.logsumexp(log_joint, 1) + math.log(float(z[1] - z[0]))  # Riemann sum of a smooth density
    estimate = variational.importance_log_likelihood(module, X, 50_000, torch.Generator().manual_seed(0))
    torch.testing.assert_close(estimate, exact, rtol=0, atol=0.01)


def test_importance_sampling_in_steps_counts_every_sample_once(monkeypatch):
    # with the exact posterior every weight is p(x): a sample lost or counted twice by the
    # stepping would shift the estimate by log(count / k)
    module, cov, c = linear_gaussian_vae(exact_posterior=True)
    X = torch.randn(5, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    monkeypatch.setattr(variational, "_ELEMENTS_PER_STEP", 5 * 5 * 3)  # three samples a step, 40 = 13 * 3 + 1
    estimate = variational.importance_log_likelihood(module, X, 40, torch.Generator().manual_seed(3))
    torch.testing.assert_close(estimate, exact_log_marginal(X, cov, c), rtol=0, atol=1e-10)


def test_log_weights_far_below_zero_do_not_underflow():
    module = vae(200, (8,), 2)
    X = torch.ones(3, 200, dtype=torch.float64)
    with torch.no_grad():
        module.decoder.layers[-1].bias.fill_(-10.0)  # p(x) ~ exp(-2000): far below float64's range
    estimate = variational.importance_log_likelihood(module, X, 100, torch.Generator().manual_seed(0))
    assert torch.isfinite(estimate).all() and (estimate < -1500).all()


# -- the ELBO and training ----------------------------------------------------------------
def test_elbo_parts_are_the_one_sample_elbo():
    module = vae()
    X = torch.rand(4, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64).round()
    nll, kl = variational.elbo_parts(module, X, torch.Generator().manual_seed(5))
    mean, log_var = module.posterior(X)
    z = sample_posterior(mean, log_var, torch.Generator().manual_seed(5))
    logits = module.decode(z, logits=True)
    torch.testing.assert_close(nll, -Bernoulli(logits=logits).log_prob(X).sum(1))
    torch.testing.assert_close(kl, kl_divergence(Normal(mean, (0.5 * log_var).exp()), Normal(0.0, 1.0)).sum(1))
    # one importance sample from the same draw: the same log p(x | z), the KL by its one-sample estimate
    one = variational.importance_log_likelihood(module, X, 1, torch.Generator().manual_seed(5))
    kl_sampled = losses.gaussian_log_density(z, mean, log_var) - losses.standard_normal_log_density(z)
    torch.testing.assert_close(one, -(nll + kl_sampled), rtol=0, atol=1e-10)


def test_kl_weight_warms_up_linearly_to_beta():
    weight, seen = variational.KLWeight(2.0, 4), []
    for epoch in range(1, 7):
        seen.append(weight.value)
        weight({"epoch": epoch})
    assert seen == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]
    assert variational.KLWeight(0.5, 0).value == 0.5


def test_training_with_warm_up_records_parts_and_the_loss_weighs_the_kl():
    module = vae(64, (16,), 3).float()
    X = torch.from_numpy(np.random.default_rng(0).random((200, 64), dtype=np.float32))
    config = train_config(epochs=4, batch_size=50)
    history = train_variational(module, X, beta=1.0, warmup_epochs=2, config=config, generator=torch.Generator())
    weights = [0.0, 0.5, 1.0, 1.0]
    for record, w in zip(history, weights):
        assert record["loss"] == pytest.approx(record["reconstruction"] + w * record["kl"], rel=1e-5)
    assert history[-1]["reconstruction"] < history[0]["reconstruction"]


# -- dynamic binarisation -------------------------------------------------------------------
def test_dynamic_binarization_draws_fresh_binary_batches_with_the_rows_mean():
    P = torch.tensor([[0.1, 0.5, 0.9]]).repeat(3000, 1)
    source = engine.DynamicBinarized(P)
    generator = torch.Generator().manual_seed(0)
    first = torch.cat(list(source.epoch(100, generator)))
    second = torch.cat(list(source.epoch(100, generator)))
    assert set(first.unique().tolist()) <= {0.0, 1.0} and not torch.equal(first, second)
    torch.testing.assert_close(first.mean(0), P[0], atol=0.02, rtol=0)
    chunk, n = next(source.chunks(10))
    assert n == 10 and torch.equal(chunk, P[:10])  # evaluation sees the probabilities


def test_dynamic_binarization_fixes_the_validation_sample_once():
    P = torch.rand(100, 4, generator=torch.Generator().manual_seed(0))
    train, validation = engine.DynamicBinarized(P).split(0.2, torch.Generator().manual_seed(0))
    assert isinstance(train, engine.DynamicBinarized) and len(train) == 80 and len(validation) == 20
    first, _ = next(validation.chunks(20))
    again, _ = next(validation.chunks(20))
    assert torch.equal(first, again) and set(first.unique().tolist()) <= {0.0, 1.0}
    assert engine.DynamicBinarized(P).split(0.0, torch.Generator())[1] is None

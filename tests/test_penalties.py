"""Penalties on the codes: sparsity (KL, L1) and contraction, against their definitions in
float64, finite differences and torch.autograd.functional.jacobian; how training uses them."""

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck
from torch.autograd.functional import jacobian

from aekit import AutoencoderTransformer, losses
from aekit.nn import StackedAutoencoder, StackedConfig
from aekit.nn.activations import activation as activation_table
from aekit.objectives import CodePenalties, dense_coding, reconstruction_objective
from aekit.params import InvalidParameterError

F64 = dict(dtype=torch.float64)


def stack(hidden=(5,), activation="sigmoid", n_inputs=7, seed=0, tied=True) -> StackedAutoencoder:
    config = StackedConfig(n_inputs, hidden, activation, "linear", tied, None)
    return StackedAutoencoder(config, torch.Generator().manual_seed(seed)).double()


def exact_jacobian_norm(encode, X) -> torch.Tensor:
    """Mean over rows of ||dh/dx||_F^2, one full Jacobian per row."""
    return torch.stack([jacobian(encode, x, create_graph=True).square().sum() for x in X]).mean()


def rows(n=6, d=7, seed=1) -> torch.Tensor:
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed), **F64)


# -- sparsity ------------------------------------------------------------------------------
def test_kl_sparsity_is_the_kl_divergence_of_mean_activations():
    codes = torch.rand(10, 4, generator=torch.Generator().manual_seed(0), **F64)
    rho, rho_hat = 0.1, codes.mean(0)
    expected = sum(rho * np.log(rho / r) + (1 - rho) * np.log((1 - rho) / (1 - r)) for r in rho_hat.tolist())
    assert losses.kl_sparsity(codes, rho).item() == pytest.approx(expected, rel=1e-12)
    assert losses.kl_sparsity(torch.full((3, 4), 0.1, **F64), 0.1).item() == pytest.approx(0.0, abs=1e-15)
    assert gradcheck(lambda h: losses.kl_sparsity(h, 0.05), (codes.requires_grad_(),))


def test_kl_sparsity_of_saturated_units_is_finite():
    assert torch.isfinite(losses.kl_sparsity(torch.tensor([[0.0, 1.0]]), 0.1))


def test_l1_activity_is_the_mean_row_sum_of_absolute_codes():
    codes = torch.tensor([[1.0, -2.0], [0.5, 0.0]], **F64)
    assert losses.l1_activity(codes).item() == pytest.approx((3.0 + 0.5) / 2)


# -- contraction ---------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "elu", "selu", "relu", "linear"])
def test_one_layer_closed_form_is_the_exact_jacobian_norm(activation):
    module, X = stack(activation=activation), rows() * 2 - 1
    coding = dense_coding(module, None, logits=False, generator=None)
    assert not coding.needs_input_grad  # one dense layer: the closed form
    closed = coding.jacobian_norm(X, module.encode(X))
    torch.testing.assert_close(closed, exact_jacobian_norm(module.encode, X), rtol=1e-12, atol=0)


@pytest.mark.parametrize("activation", ["sigmoid", "elu"])
def test_closed_form_gradients_match_finite_differences(activation):
    module, X = stack(activation=activation), rows(3) * 2 - 1
    layer = module.encoder.layers[0]
    coding = dense_coding(module, None, logits=False, generator=None)

    def penalty(weight, bias):
        with torch.no_grad():
            layer.weight.copy_(weight), layer.bias.copy_(bias)
        return coding.jacobian_norm(X, module.encode(X))

    # gradcheck needs the penalty as a function of its inputs: run the layer by hand with them
    def functional(weight, bias):
        h = torch.nn.functional.linear(X, weight, bias)
        h = torch.sigmoid(h) if activation == "sigmoid" else torch.nn.functional.elu(h)
        derivative = coding_derivative(activation, h)
        return losses.contractive_dense(h, weight, derivative)

    weight, bias = layer.weight.detach().clone(), layer.bias.detach().clone() + 0.1
    assert functional(weight, bias).item() == pytest.approx(penalty(weight, bias).item(), rel=1e-12)
    assert gradcheck(functional, (weight.requires_grad_(), bias.requires_grad_()))


def coding_derivative(name, h):
    return activation_table(name).backward(torch.ones_like(h), h)


def test_layer_phase_uses_the_closed_form_of_that_layer():
    module, X = stack(hidden=(6, 4)), rows()
    coding = dense_coding(module, 2, logits=False, generator=None)
    H = module.encode(X, 1)  # phase 2 sees the outputs of layer 1
    assert not coding.needs_input_grad
    exact = exact_jacobian_norm(lambda h: module.encode_layer(h, 2), H)
    torch.testing.assert_close(coding.jacobian_norm(H, coding.encode(H)), exact, rtol=1e-12, atol=0)


@pytest.mark.slow
def test_deep_estimate_is_unbiased_for_the_exact_norm_and_its_gradient():
    module, X = stack(hidden=(6, 4), activation="elu"), rows(4)
    weight = module.encoder.layers[0].weight
    exact = exact_jacobian_norm(module.encode, X)
    (exact_grad,) = torch.autograd.grad(exact, weight)
    coding = dense_coding(module, None, logits=False, generator=torch.Generator().manual_seed(0))
    assert coding.needs_input_grad
    n, total, grad = 4000, 0.0, torch.zeros_like(weight)
    x = X.clone().requires_grad_(True)
    for _ in range(n):
        estimate = coding.jacobian_norm(x, module.encode(x))
        total += estimate.item()
        grad += torch.autograd.grad(estimate, weight)[0]
    assert total / n == pytest.approx(exact.item(), rel=0.05)
    torch.testing.assert_close(grad / n, exact_grad, rtol=0, atol=0.1 * exact_grad.abs().max().item())


# -- the objective ---------------------------------------------------------------------------
def test_penalties_are_parts_of_their_own_and_the_loss_adds_them():
    module, X = stack(), rows()
    penalties = CodePenalties(sparsity_target=0.2, sparsity_weight=0.5, activity_l1=0.01, contractive_weight=0.1)
    coding = dense_coding(module, None, logits=False, generator=None)
    loss, parts = reconstruction_objective(module, coding=coding, penalties=penalties)(X)
    codes = module.encode(X)
    assert parts["reconstruction"].item() == pytest.approx(torch.mean((module(X) - X) ** 2).item(), rel=1e-12)
    assert parts["sparsity"].item() == pytest.approx(0.5 * losses.kl_sparsity(codes, 0.2).item(), rel=1e-12)
    assert parts["activity_l1"].item() == pytest.approx(0.01 * losses.l1_activity(codes).item(), rel=1e-12)
    assert parts["contractive"].item() == pytest.approx(0.1 * exact_jacobian_norm(module.encode, X).item(), rel=1e-9)
    total = sum(parts[k] for k in ("reconstruction", "sparsity", "activity_l1", "contractive"))
    assert loss.item() == pytest.approx(total.item(), rel=1e-12)


def test_the_fused_loss_is_used_only_without_penalties():
    module, X, calls = stack(), rows(), []

    def criterion(noisy, clean):
        calls.append(1)
        return module.reconstruction_loss(noisy, clean)

    coding = dense_coding(module, None, logits=False, generator=None)
    plain = reconstruction_objective(module, criterion=criterion, coding=coding)(X)[0]
    sparse = CodePenalties(0.1, 0.0, 0.0, 0.0)  # active, weight 0: the same value, unfused
    unfused = reconstruction_objective(module, criterion=criterion, coding=coding, penalties=sparse)(X)[0]
    assert calls == [1] and unfused.item() == pytest.approx(plain.item(), rel=1e-12)


# -- the estimator ---------------------------------------------------------------------------
SMALL = dict(hidden_layer_sizes=(16,), epochs=8, batch_size=32, random_state=0, device="cpu", learning_rate=0.01)


@pytest.fixture
def X(digits):
    return digits[0][:400]


def mean_deviation(est, X, rho):
    return float(np.mean(np.abs(est.transform(X).mean(0) - rho)))


@pytest.mark.slow
def test_sparsity_pulls_mean_activations_to_the_target(X):
    plain = AutoencoderTransformer(code_activation="sigmoid", **SMALL).fit(X)
    sparse = AutoencoderTransformer(code_activation="sigmoid", sparsity_target=0.1, sparsity_weight=0.5, **SMALL).fit(X)
    assert "sparsity" in sparse.history_[0] and "sparsity" not in plain.history_[0]
    assert sparse.history_[-1]["sparsity"] < sparse.history_[0]["sparsity"]
    assert mean_deviation(sparse, X, 0.1) < 0.5 * mean_deviation(plain, X, 0.1)


def test_contraction_lowers_the_jacobian_norm(X):
    def norm(est):
        module = est.module_.double()
        return exact_jacobian_norm(module.encode, torch.from_numpy(X[:50]).double()).item()

    plain = AutoencoderTransformer(activation="sigmoid", **SMALL).fit(X)
    contractive = AutoencoderTransformer(activation="sigmoid", contractive_weight=0.5, **SMALL).fit(X)
    assert "contractive" in contractive.history_[-1]
    assert norm(contractive) < 0.5 * norm(plain)


def test_penalties_apply_in_every_layerwise_phase_and_fine_tuning(X):
    est = AutoencoderTransformer(
        activation="sigmoid",
        training="layerwise",
        hidden_layer_sizes=(16, 8),
        layerwise_epochs=2,
        fine_tune_epochs=2,
        sparsity_target=0.1,
        contractive_weight=0.1,
        activity_l1=1e-3,
        **{k: v for k, v in SMALL.items() if k != "hidden_layer_sizes"},
    ).fit(X)
    assert [r["phase"] for r in est.history_] == ["layer 1"] * 2 + ["layer 2"] * 2 + ["fine-tune"] * 2
    for record in est.history_:
        assert {"sparsity", "contractive", "activity_l1", "reconstruction"} <= set(record)


@pytest.mark.parametrize(
    "params, message",
    [
        (
            dict(sparsity_target=0.0),
            r"sparsity_target=0.0 is not allowed: sparsity_target must be None or a float in \(0, 1\)",
        ),
        (dict(sparsity_target=1.0), "sparsity_target=1.0 is not allowed"),
        (dict(sparsity_target=-0.1), "sparsity_target=-0.1 is not allowed"),
        (dict(sparsity_target=0.1, code_activation="elu"), "needs sigmoid codings.*'elu'"),
        (dict(sparsity_target=0.1), "needs sigmoid codings.*'elu'"),  # the default activation
        (
            dict(sparsity_target=0.1, code_activation="sigmoid", training="layerwise"),
            "every hidden layer needs activation='sigmoid', not 'elu'",
        ),
        (dict(sparsity_weight=-1.0), "sparsity_weight=-1.0 is not allowed"),
        (dict(activity_l1=-1.0), "activity_l1=-1.0 is not allowed"),
        (dict(contractive_weight=-0.5), "contractive_weight=-0.5 is not allowed"),
    ],
)
def test_bad_penalty_settings_fail_before_the_data_is_read(params, message):
    with pytest.raises(InvalidParameterError, match=message):
        AutoencoderTransformer(hidden_layer_sizes=(8, 4), **params).fit("not even an array")


def test_sigmoid_codings_of_a_layerwise_stack_may_carry_a_target(X):
    AutoencoderTransformer(
        hidden_layer_sizes=(8,), code_activation="sigmoid", sparsity_target=0.1, training="layerwise", epochs=1
    )._validate_params()  # one layer: its only phase's coding layer is the coding layer

"""A stacked autoencoder's reconstruction loss as one autograd node with a hand-written backward.

Autograd records some twenty nodes for the book's 784-300-150-300-784 model, accumulates a
tied weight's two gradients with an extra pass, and allocates every intermediate anew. This
function runs the same chain of layers and the loss in ``forward`` and writes each weight's
gradient with one GEMM per use, the second use of a tied weight accumulating in place
(``addmm_``, beta = 1). ``tests/test_fused.py`` checks it against the plain autograd
formulation in float64 and by finite differences.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .activations import activation


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the chain: ``act(h @ W.T + b)``, or ``act(h @ W + b)`` when ``transposed``
    (a tied decoder reusing an encoder weight). ``weight`` and ``bias`` index the tensors."""

    weight: int
    bias: int
    transposed: bool
    activation: str


def _linear(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, transposed: bool) -> torch.Tensor:
    # (B, n_in) -> (B, n_out); a transposed layer multiplies by W itself, not by a copy of W.T
    return torch.addmm(bias, h, weight if transposed else weight.t())


def reconstruction_value(out: torch.Tensor, target: torch.Tensor, loss: str) -> torch.Tensor:
    """Mean ``"mse"`` of ``out``, or mean ``"bce"`` with ``out`` as logits: the loss every module
    of :mod:`aekit.nn` computes (``aekit.losses.reconstruction`` outside it)."""
    if loss == "mse":
        return torch.nn.functional.mse_loss(out, target)
    return torch.nn.functional.binary_cross_entropy_with_logits(out, target)


class FusedReconstructionLoss(torch.autograd.Function):
    """``loss(chain(x), target)`` for a chain of :class:`LayerSpec`; ``loss`` is ``"mse"`` or
    ``"bce"`` (with logits: the last layer's activation must then be ``"linear"``)."""

    @staticmethod
    def forward(ctx, x, target, specs, loss, *tensors):
        outputs = [x]
        for spec in specs:  # h_k = act(h_{k-1} W^T + b)
            z = _linear(outputs[-1], tensors[spec.weight], tensors[spec.bias], spec.transposed)
            outputs.append(activation(spec.activation).forward(z))
        out = outputs[-1]
        if loss == "mse":  # the difference once, for the value (one dot product) and the gradient
            target = out - target
            value = torch.dot(target.view(-1), target.view(-1)) / target.numel()
        else:
            value = reconstruction_value(out, target, loss)
        ctx.specs, ctx.loss = specs, loss
        ctx.save_for_backward(target, *outputs, *tensors)  # for "mse", out - target
        return value

    @staticmethod
    def backward(ctx, grad_loss):
        specs, n = ctx.specs, len(ctx.specs)
        target, outputs, tensors = (
            ctx.saved_tensors[0],
            ctx.saved_tensors[1 : n + 2],
            ctx.saved_tensors[n + 2 :],
        )
        out = outputs[-1]
        if ctx.loss == "mse":  # d mean((o - t)^2) / do = 2 (o - t) / N; `target` holds o - t
            grad = target * (grad_loss * (2.0 / out.numel()))
        else:  # d BCE-with-logits / do = (sigmoid(o) - t) / N
            grad = torch.sigmoid(out).sub_(target).mul_(grad_loss / out.numel())
        grads: list[torch.Tensor | None] = [None] * len(tensors)
        for k in reversed(range(n)):
            spec, h_in = specs[k], outputs[k]
            grad = activation(spec.activation).backward(grad, outputs[k + 1])  # dL/dz_k
            grads[spec.bias] = grad.sum(0)
            _accumulate_weight_grad(grads, spec, h_in, grad)
            if k > 0 or ctx.needs_input_grad[0]:
                w = tensors[spec.weight]
                grad = grad @ (w.t() if spec.transposed else w)  # dL/dh_{k-1}
        grad_x = grad if ctx.needs_input_grad[0] else None
        return (grad_x, None, None, None, *grads)


def _accumulate_weight_grad(grads: list, spec: LayerSpec, h_in: torch.Tensor, grad_z: torch.Tensor) -> None:
    """dL/dW for one use of W: grad_z^T h_in (W is (out, in)) or h_in^T grad_z (transposed use).

    A weight used twice (tied) gets its second term added inside the GEMM (beta = 1)."""
    a, b = (h_in.t(), grad_z) if spec.transposed else (grad_z.t(), h_in)
    if grads[spec.weight] is None:
        grads[spec.weight] = torch.mm(a, b)
    else:
        grads[spec.weight].addmm_(a, b)


def fused_reconstruction_loss(
    x: torch.Tensor,
    target: torch.Tensor,
    specs: tuple[LayerSpec, ...],
    tensors: tuple[torch.Tensor, ...],
    loss: str = "mse",
) -> torch.Tensor:
    """Mean reconstruction loss of the chain ``specs`` over ``tensors`` (weights and biases)."""
    if loss == "bce" and specs[-1].activation != "linear":
        raise ValueError("with loss='bce' the last layer must output logits (activation 'linear')")
    return FusedReconstructionLoss.apply(x, target, tuple(specs), loss, *tensors)

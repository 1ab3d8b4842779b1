"""A stacked autoencoder's reconstruction loss as one autograd node with a hand-written backward.

Autograd records some twenty nodes for the book's 784-300-150-300-784 model, accumulates a
tied weight's two gradients with an extra pass, and allocates every intermediate anew. This
function runs the same chain of layers and the loss in ``forward`` and writes each weight's
gradient with one GEMM per use, the second use of a tied weight accumulating in place
(``addmm_``, beta = 1). ``tests/test_fused.py`` checks it against the plain autograd
formulation in float64 and by finite differences.

Where torch is set to run float32 CPU matrix products in bfloat16 (a training step with
``precision="bf16-matmul"``), the node's products take bfloat16 operands, each weight converted
once per step (:class:`Bfloat16Products`).
"""

from __future__ import annotations

import functools
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
        products = _products(x, specs, tensors)
        outputs, operands = [x], []
        for spec in specs:  # h_k = act(h_{k-1} W^T + b)
            operands.append(products.operand(outputs[-1]))
            outputs.append(activation(spec.activation).forward(products.linear(operands[-1], spec)))
        out = outputs[-1]
        if loss == "mse":  # the difference once, for the value and the gradient
            target = out - target
            # a norm, not a dot product: torch runs dot products as matrix products, in
            # bfloat16 and through oneDNN (25 times slower), when float32 products are set to bfloat16
            value = torch.linalg.vector_norm(target).square() / target.numel()
        else:
            value = reconstruction_value(out, target, loss)
        ctx.specs, ctx.loss, ctx.products = specs, loss, products
        # the weight gradients read the layers' inputs as the products take them: converted
        # copies are kept here, unconverted ones are the saved outputs themselves
        ctx.operands = operands if products.converts else None
        ctx.save_for_backward(target, *outputs, *tensors)  # for "mse", out - target
        return value

    @staticmethod
    def backward(ctx, grad_loss):
        specs, n, products = ctx.specs, len(ctx.specs), ctx.products
        target, outputs = ctx.saved_tensors[0], ctx.saved_tensors[1 : n + 2]
        operands = outputs[:n] if ctx.operands is None else ctx.operands
        out = outputs[-1]
        if ctx.loss == "mse":  # d mean((o - t)^2) / do = 2 (o - t) / N; `target` holds o - t
            grad = target * (grad_loss * (2.0 / out.numel()))
        else:  # d BCE-with-logits / do = (sigmoid(o) - t) / N
            grad = torch.sigmoid(out).sub_(target).mul_(grad_loss / out.numel())
        grads: list[torch.Tensor | None] = [None] * (len(ctx.saved_tensors) - n - 2)
        uses: dict[int, list] = {}  # weight index -> one (a, b) per use; dL/dW = sum of a^T b
        for k in reversed(range(n)):
            spec = specs[k]
            grad = activation(spec.activation).backward(grad, outputs[k + 1])  # dL/dz_k
            grads[spec.bias] = grad.sum(0)
            grad_z = products.operand(grad)
            # W is (out, in): its use as act(h W^T + b) gives grad_z^T h; a transposed use h^T grad_z
            use = (operands[k], grad_z) if spec.transposed else (grad_z, operands[k])
            uses.setdefault(spec.weight, []).append(use)
            if k > 0 or ctx.needs_input_grad[0]:
                grad = products.input_grad(grad_z, spec)  # dL/dh_{k-1}
        for index, pairs in uses.items():
            grads[index] = products.weight_grad(pairs)
        grad_x = grad if ctx.needs_input_grad[0] else None
        return (grad_x, None, None, None, *grads)


class Products:
    """The chain's matrix products on the tensors as they are: one GEMM per product, a tied
    weight's second gradient term accumulated inside its GEMM (``addmm_``, beta = 1)."""

    converts = False

    def __init__(self, tensors: tuple[torch.Tensor, ...]):
        self.tensors = tensors

    def operand(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` in the dtype the products take."""
        return t

    def weight(self, spec: LayerSpec) -> torch.Tensor:
        return self.tensors[spec.weight]

    def linear(self, h: torch.Tensor, spec: LayerSpec) -> torch.Tensor:
        """``h W^T + b`` (``h W + b`` for a transposed use): (B, n_in) -> (B, n_out), in the
        tensors' dtype; a transposed use multiplies by W itself, not by a copy of W^T."""
        w = self.weight(spec)
        return torch.addmm(self.tensors[spec.bias], h, w if spec.transposed else w.t())

    def input_grad(self, grad_z: torch.Tensor, spec: LayerSpec) -> torch.Tensor:
        """dL/dh from dL/dz, in the tensors' dtype."""
        w = self.weight(spec)
        return grad_z @ (w.t() if spec.transposed else w)

    def weight_grad(self, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """The sum of ``a^T b`` over a weight's uses, in the tensors' dtype."""
        (a, b), *more = pairs
        grad = torch.mm(a.t(), b)
        for a, b in more:
            grad.addmm_(a.t(), b)
        return grad


class Bfloat16Products(Products):
    """The same products from bfloat16 operands, as oneDNN's AMX or AVX512-BF16 GEMMs run them
    (float32 accumulation, bfloat16 results), turned back to float32 for the activations and
    gradients.

    Each weight is converted once per step, not once per product: on bfloat16 operands a GEMM
    runs about twice as fast as when oneDNN converts float32 operands on every call (110-130
    against 214 us for the 784x300 product of 150 rows on an AMX Xeon). A tied weight's uses
    make one GEMM over their two batches stacked, since adding a bfloat16 term into a float32
    gradient costs a conversion pass of its own.
    """

    converts = True

    def __init__(self, specs: tuple[LayerSpec, ...], tensors: tuple[torch.Tensor, ...]):
        super().__init__(tensors)
        self.low = {i: tensors[i].to(torch.bfloat16) for i in {spec.weight for spec in specs}}

    def operand(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(torch.bfloat16)

    def weight(self, spec: LayerSpec) -> torch.Tensor:
        return self.low[spec.weight]

    def linear(self, h: torch.Tensor, spec: LayerSpec) -> torch.Tensor:
        w = self.weight(spec)
        return torch.mm(h, w if spec.transposed else w.t()).float().add_(self.tensors[spec.bias])

    def input_grad(self, grad_z: torch.Tensor, spec: LayerSpec) -> torch.Tensor:
        return super().input_grad(grad_z, spec).float()

    def weight_grad(self, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        # one use needs no stacking (torch.cat would copy it)
        a, b = pairs[0] if len(pairs) == 1 else (torch.cat(side) for side in zip(*pairs))
        return torch.mm(a.t(), b).float()


def _products(x: torch.Tensor, specs: tuple[LayerSpec, ...], tensors: tuple[torch.Tensor, ...]) -> Products:
    """Bfloat16 products where torch itself would run this node's float32 CPU matrix products
    in bfloat16 (``torch.backends.mkldnn.matmul.fp32_precision``, as ``precision="bf16-matmul"``
    sets it for a training step); else products in the tensors' own dtype."""
    on_cpu_in_float32 = x.device.type == "cpu" and x.dtype == torch.float32
    if on_cpu_in_float32 and torch.backends.mkldnn.matmul.fp32_precision == "bf16" and bf16_products_supported():
        return Bfloat16Products(specs, tensors)
    return Products(tensors)


@functools.cache
def bf16_products_supported() -> bool:
    """Whether this CPU runs bfloat16 products through oneDNN (AVX-512, AVX512-BF16 or AMX).
    Elsewhere torch leaves float32 products in float32 whatever the setting, and so does this node."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)  # torch's own test of it
    return torch.backends.mkldnn.is_available() and check is not None and bool(check())


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

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

The forward and the backward are two functions (:func:`chain_forward`, :func:`chain_backward`)
that the eager node runs apart, as autograd calls it. A training step with ``compile=True`` runs
them back to back instead, in one function that ``torch.compile`` makes a kernel of
(:func:`loss_and_gradients`, :class:`CompiledReconstructionLoss`): the gradients come with the
value, and the conversions, biases and activations between the products are fused into single
loops. ``tests/test_fused_compiled.py`` checks it against the eager node.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import types
from collections.abc import Callable, Iterator
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


@dataclass
class Tape:
    """What the chain's forward keeps for its backward: the layers' outputs (``outputs[0]`` is
    the input), their operands as the products took them (None: the outputs themselves) and,
    for ``"mse"``, the reconstruction minus the target (for ``"bce"``, the target)."""

    outputs: list[torch.Tensor]
    operands: list[torch.Tensor] | None
    residual: torch.Tensor


def chain_forward(x, target, specs, loss: str, products: Products) -> tuple[torch.Tensor, Tape]:
    """The mean ``loss`` of the chain ``specs`` on ``x`` against ``target``, and its tape."""
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
    # the weight gradients read the layers' inputs as the products take them: converted
    # copies are kept, unconverted ones are the outputs themselves
    return value, Tape(outputs, operands if products.converts else None, target)


def chain_backward(tape: Tape, grad_loss, specs, loss: str, products: Products, input_grad: bool):
    """``(dL/dx or None, [dL/dt for each of the products' tensors])`` from ``chain_forward``'s tape."""
    n = len(specs)
    outputs = tape.outputs
    operands = outputs[:n] if tape.operands is None else tape.operands
    out = outputs[-1]
    if loss == "mse":  # d mean((o - t)^2) / do = 2 (o - t) / N; the residual is o - t
        grad = tape.residual * (grad_loss * (2.0 / out.numel()))
    else:  # d BCE-with-logits / do = (sigmoid(o) - t) / N
        grad = torch.sigmoid(out).sub_(tape.residual).mul_(grad_loss / out.numel())
    grads: list[torch.Tensor | None] = [None] * len(products.tensors)
    uses: dict[int, list] = {}  # weight index -> one (a, b) per use; dL/dW = sum of a^T b
    for k in reversed(range(n)):
        spec = specs[k]
        grad = activation(spec.activation).backward(grad, outputs[k + 1])  # dL/dz_k
        grads[spec.bias] = grad.sum(0)
        grad_z = products.operand(grad)
        # W is (out, in): its use as act(h W^T + b) gives grad_z^T h; a transposed use h^T grad_z
        use = (operands[k], grad_z) if spec.transposed else (grad_z, operands[k])
        uses.setdefault(spec.weight, []).append(use)
        if k > 0 or input_grad:
            grad = products.input_grad(grad_z, spec)  # dL/dh_{k-1}
    for index, pairs in uses.items():
        grads[index] = products.weight_grad(pairs)
    return (grad if input_grad else None), grads


class FusedReconstructionLoss(torch.autograd.Function):
    """``loss(chain(x), target)`` for a chain of :class:`LayerSpec`; ``loss`` is ``"mse"`` or
    ``"bce"`` (with logits: the last layer's activation must then be ``"linear"``)."""

    @staticmethod
    def forward(ctx, x, target, specs, loss, *tensors):
        products = _products(x, specs, tensors)
        value, tape = chain_forward(x, target, specs, loss, products)
        ctx.specs, ctx.loss, ctx.products = specs, loss, products
        ctx.operands = tape.operands
        ctx.save_for_backward(tape.residual, *tape.outputs, *tensors)
        return value

    @staticmethod
    def backward(ctx, grad_loss):
        n = len(ctx.specs)
        residual, outputs = ctx.saved_tensors[0], list(ctx.saved_tensors[1 : n + 2])
        tape = Tape(outputs, ctx.operands, residual)
        grad_x, grads = chain_backward(tape, grad_loss, ctx.specs, ctx.loss, ctx.products, ctx.needs_input_grad[0])
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
    """Bfloat16 products where :func:`bf16_products_wanted`; else products in the tensors' own dtype."""
    return Bfloat16Products(specs, tensors) if bf16_products_wanted(x) else Products(tensors)


def bf16_products_wanted(x: torch.Tensor) -> bool:
    """Whether the chain's products on ``x`` run in bfloat16: where torch itself would run
    float32 CPU matrix products in bfloat16 (``torch.backends.mkldnn.matmul.fp32_precision``,
    as ``precision="bf16-matmul"`` sets it for a training step)."""
    on_cpu_in_float32 = x.device.type == "cpu" and x.dtype == torch.float32
    return on_cpu_in_float32 and torch.backends.mkldnn.matmul.fp32_precision == "bf16" and bf16_products_supported()


@functools.cache
def bf16_products_supported() -> bool:
    """Whether this CPU runs bfloat16 products through oneDNN (AVX-512, AVX512-BF16 or AMX).
    Elsewhere torch leaves float32 products in float32 whatever the setting, and so does this node."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)  # torch's own test of it
    return torch.backends.mkldnn.is_available() and check is not None and bool(check())


class CompiledReconstructionLoss(torch.autograd.Function):
    """The same loss as one autograd node whose gradients come with its value, from a kernel
    that ``torch.compile`` made of :func:`loss_and_gradients` (:func:`compiled_kernel`); the
    backward only scales them by the loss's own gradient."""

    @staticmethod
    def forward(ctx, x, target, specs, loss, *tensors):
        shapes = tuple(tuple(t.shape) for t in (x, *tensors))
        kernel = compiled_kernel(specs, shapes, loss, bf16_products_wanted(x), ctx.needs_input_grad[0])
        value, grad_x, grads = kernel(x, target, *tensors)
        ctx.save_for_backward(grad_x, *grads)
        return value

    @staticmethod
    def backward(ctx, grad_loss):
        grad_x, *grads = ctx.saved_tensors
        # a training step's loss is the node's value itself, so its gradient is 1: multiplying
        # by it would be a pass over every gradient (3 % of the book model's step). On the CPU
        # reading it costs nothing; on CUDA it would wait for the device, so there it multiplies.
        if not (grad_loss.device.type == "cpu" and grad_loss.item() == 1.0):
            grad_x = None if grad_x is None else grad_x * grad_loss
            grads = [g * grad_loss for g in grads]
        return (grad_x, None, None, None, *grads)


def loss_and_gradients(x, target, *tensors, specs, loss: str, bf16: bool, input_grad: bool):
    """``(value, dL/dx or None, [dL/dt for t in tensors])`` of the chain's mean ``loss``, the
    forward and backward run back to back without autograd: what :func:`compiled_kernel`
    compiles. ``bf16``: the products of :class:`Bfloat16Products`."""
    products = Bfloat16Products(specs, tensors) if bf16 else Products(tensors)
    value, tape = chain_forward(x, target, specs, loss, products)
    grad_x, grads = chain_backward(tape, 1.0, specs, loss, products, input_grad)
    return value, grad_x, grads


@functools.cache
def compiled_kernel(specs: tuple[LayerSpec, ...], shapes: tuple, loss: str, bf16: bool, input_grad: bool):
    """:func:`loss_and_gradients` for one chain, compiled by ``torch.compile`` at its first call
    into fused kernels (the conversions, biases and activations between products become one loop
    each). One per chain, ``shapes`` (of the input and the tensors: the code is specialised to
    them) and setting, for the life of the process: later fits of the same architecture reuse
    it without compiling again."""

    def kernel(x, target, *tensors):
        return loss_and_gradients(x, target, *tensors, specs=specs, loss=loss, bf16=bf16, input_grad=input_grad)

    return torch.compile(with_own_code(kernel), dynamic=False, fullgraph=True)


_KERNELS = itertools.count()


def with_own_code(fn):
    """``fn`` with a code object of its own. Dynamo keeps the compiled versions of a function
    by its code (compared by content) and refuses, with ``fullgraph=True`` raises, past a few;
    every chain's kernel is a closure of the same code, so each gets a renamed copy."""
    name = f"{fn.__name__}_{next(_KERNELS)}"
    code = fn.__code__.replace(co_name=name, co_qualname=name)
    return types.FunctionType(code, fn.__globals__, name, fn.__defaults__, fn.__closure__)


_COMPILED = contextvars.ContextVar("aekit_compiled_fused_loss", default=False)


@contextlib.contextmanager
def compiled_kernels() -> Iterator[None]:
    """Inside the block the fused loss computes its value and gradients with a compiled kernel
    (:class:`CompiledReconstructionLoss`) wherever gradients are recorded; a training step with
    ``compile=True`` runs in it."""
    token = _COMPILED.set(True)
    try:
        yield
    finally:
        _COMPILED.reset(token)


def fused_reconstruction_loss(
    x: torch.Tensor,
    target: torch.Tensor,
    specs: tuple[LayerSpec, ...],
    tensors: tuple[torch.Tensor, ...],
    loss: str = "mse",
) -> torch.Tensor:
    """Mean reconstruction loss of the chain ``specs`` over ``tensors`` (weights and biases):
    the eager node, or inside :func:`compiled_kernels` the compiled one."""
    if loss == "bce" and specs[-1].activation != "linear":
        raise ValueError("with loss='bce' the last layer must output logits (activation 'linear')")
    node = FusedReconstructionLoss
    if _COMPILED.get() and torch.is_grad_enabled():
        node = CompiledReconstructionLoss
    return node.apply(x, target, tuple(specs), loss, *tensors)


@dataclass(frozen=True)
class ChainCriterion:
    """``criterion(x, target)``: a module's fused reconstruction loss (``reconstruct``), with
    what it computes laid open: the mean ``loss`` of the chain that ``chain()`` returns (its
    specs and tensors). A training step that runs the chain itself reads them
    (``aekit.engine.fused_step``); everything else just calls it."""

    reconstruct: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    chain: Callable[[], tuple[tuple[LayerSpec, ...], tuple[torch.Tensor, ...]]]
    loss: str

    def __call__(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.reconstruct(x, target)

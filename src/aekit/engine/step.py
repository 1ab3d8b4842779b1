"""How one training step runs: eagerly; compiled by ``torch.compile``; captured in a CUDA graph
and replayed; in float32, with reduced-precision matrix products, or in bfloat16.

A step is ``step(batch) -> parts``: the loss and its parts, the gradients, the optimizer's
update. :func:`eager_step` is the plain one. :func:`make_step` builds the one a
:class:`StepOptions` asks for:

``precision``
    ``"tf32"`` (CUDA) and ``"bf16-matmul"`` (CPUs with AVX512-BF16 or AMX, through oneDNN) let
    the step's matrix products, forward and backward, round their inputs to TensorFloat-32
    (10 bits of mantissa) or bfloat16 (8 bits) and accumulate in float32; everything else stays
    float32. The stacked autoencoder's fused loss multiplies bfloat16 copies of its weights,
    made once per step, and rounds its products' results to bfloat16 too
    (:class:`aekit.nn.fused.Bfloat16Products`): about twice as fast as converting on every
    call. ``"bf16"`` runs the loss under bfloat16 autocast (the weights, gradients and Adam
    stay float32); under autocast the model computes its loss with plain autograd operations
    (:meth:`aekit.nn.StackedAutoencoder.reconstruction_loss`), which autocast casts, instead
    of its fused node.
``compile``
    The loss (forward, and through AOTAutograd its backward) is compiled by
    ``torch.compile`` into fused kernels; the first steps of every fit pay the compilation.
    A stacked autoencoder's fused loss is compiled on its own, forward and backward as one
    kernel that returns the gradients with the value (:func:`aekit.nn.fused.compiled_kernels`),
    once per architecture and process: later fits reuse it. Where that loss is all the
    objective and Adam all the update, on the CPU, the whole step is one compiled kernel
    instead: loss, gradients and Adam's update (:mod:`.fused_step`).
``cuda_graphs``
    After :data:`WARMUP_STEPS` eager steps (which also compile), the whole step (forward,
    backward and fused Adam) is captured in a CUDA graph and replayed for every later batch:
    one launch a step instead of dozens. Batches are copied into the graph's input; the
    learning rate becomes a tensor on the device that :func:`~.optim.set_learning_rate`
    fills; noise is drawn by the graph from the training generator registered with it.

Shapes are static (every batch has ``batch_size`` rows, :mod:`.data`), which capture needs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from ..nn.fused import compiled_kernels
from ..params import Flag, Options, Param, validate
from .fused_step import fused_step

PRECISIONS = ("float32", "tf32", "bf16-matmul", "bf16")
PRECISION = Param(
    Options(*PRECISIONS),
    "Arithmetic of the training step: 'float32'; 'tf32' (CUDA) or 'bf16-matmul' (CPUs with "
    "AVX512-BF16 or AMX): matrix products round their inputs to TensorFloat-32 or bfloat16 and "
    "accumulate in float32 (a stacked autoencoder's also round their results to bfloat16); "
    "'bf16': the forward and backward run under bfloat16 autocast. "
    "Weights, gradients and Adam stay float32; evaluation and inference run in float32.",
)
# the setting of torch's float32 matrix products that each reduced precision selects
_MATMUL = {"tf32": ("cuda", "tf32"), "bf16-matmul": ("mkldnn", "bf16")}
COMPILE = Param(
    Flag(),
    "Compile the training step's loss (forward and backward) with torch.compile into fused "
    "kernels; the first fit pays the compilation. A stacked autoencoder's loss is one kernel (on "
    "the CPU, with its L2 alone, the whole step with Adam's update), reused by later fits of the "
    "same architecture in the process.",
)
CUDA_GRAPHS = Param(
    Flag(),
    "On CUDA, capture the whole training step (forward, backward, Adam) in a CUDA graph after "
    "a few eager steps and replay it for every batch.",
)
WARMUP_STEPS = 3  # eager steps before capture: lazy state (Adam's moments, compiled code) is made


@dataclass(frozen=True)
class StepOptions:
    """What :func:`make_step` builds; the values come checked from an estimator."""

    precision: str = PRECISION.field()
    compile: bool = COMPILE.field()
    cuda_graphs: bool = CUDA_GRAPHS.field()

    def __post_init__(self):
        validate(self)

    def check(self, device: torch.device, world_size: int = 1) -> None:
        """Raise ``ValueError`` for an option that ``device`` (or training in ``world_size``
        processes) cannot run."""
        needs = {"tf32": "cuda", "bf16-matmul": "cpu"}.get(self.precision)
        if needs is not None and device.type != needs:
            hint = "; on CUDA use 'tf32'" if needs == "cpu" else ""
            raise ValueError(
                f"precision={self.precision!r} needs a {needs.upper()} device; training runs on {device}{hint}"
            )
        if self.cuda_graphs and device.type != "cuda":
            raise ValueError(f"cuda_graphs=True needs a CUDA device; training runs on {device}")
        if self.cuda_graphs and world_size > 1:
            raise ValueError(
                f"cuda_graphs=True trains in one process, not {world_size}: each rank's noise stream is "
                "swapped in and out around its loss, which a graph cannot replay"
            )


def eager_step(loss_fn: Callable, optimizer: torch.optim.Optimizer) -> Callable:
    """The plain step: loss, gradients, update; returns the loss's parts."""

    params = [p for group in optimizer.param_groups for p in group["params"]]

    def step(batch):
        # optimizer.zero_grad(set_to_none=True) without its per-call bookkeeping, before the
        # loss: the last step's gradients are freed before a compiled loss makes the next ones
        for p in params:
            p.grad = None
        loss, parts = loss_fn(batch)
        loss.backward()
        optimizer.step()
        return parts

    return step


def make_step(
    loss_fn: Callable,
    optimizer: torch.optim.Optimizer,
    options: StepOptions,
    device: torch.device,
    generators: Sequence[torch.Generator] = (),
    world_size: int = 1,
    graphs: GraphAPI | None = None,
) -> Callable:
    """The step ``options`` ask for, on ``device``, in one of ``world_size`` processes;
    ``generators`` are those the loss draws noise from (registered with a CUDA graph);
    ``graphs`` replaces CUDA's graph API (tests)."""
    options.check(device, world_size)
    step = None
    if options.compile and options.precision != "bf16":
        step = fused_step(loss_fn, optimizer, device)  # None unless the whole step fuses
    if step is None:
        step = _autograd_step(loss_fn, optimizer, options, device)
    if options.precision in _MATMUL:
        step = _within(step, lambda: matmul_precision(options.precision))
    if options.cuda_graphs:
        step = GraphStep(step, optimizer, device, generators, graphs or CudaGraphs())
    return step


def _autograd_step(loss_fn: Callable, optimizer: torch.optim.Optimizer, options: StepOptions, device) -> Callable:
    """The step through autograd and the optimizer, its loss under autocast and compiled as
    ``options`` ask."""
    if options.precision == "bf16":
        loss_fn = _under_autocast(loss_fn, device)
    if not options.compile:
        return eager_step(loss_fn, optimizer)
    return _within(eager_step(torch.compile(loss_fn, dynamic=False), optimizer), compiled_kernels)


def _under_autocast(loss_fn: Callable, device: torch.device) -> Callable:
    """The loss in bfloat16 autocast; its backward follows the forward's dtypes."""

    def loss_in_bf16(batch):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return loss_fn(batch)

    return loss_in_bf16


def _within(step: Callable, context: Callable[[], contextlib.AbstractContextManager]) -> Callable:
    """``step`` run inside ``context()``, a setting made for the step alone: it is restored
    after each step, so evaluation and inference run without it."""

    def step_within(batch):
        with context():
            return step(batch)

    return step_within


@contextlib.contextmanager
def matmul_precision(precision: str) -> Iterator[None]:
    """Torch's float32 matrix products as the step ``precision`` sets them ("tf32" on CUDA,
    "bf16-matmul" on the CPU; any other leaves them alone) inside the block, restored after."""
    if precision not in _MATMUL:
        yield
        return
    backend, value = _MATMUL[precision]
    setting = torch.backends.cuda.matmul if backend == "cuda" else torch.backends.mkldnn.matmul
    before = setting.fp32_precision
    setting.fp32_precision = value
    try:
        yield
    finally:
        setting.fp32_precision = before


class CudaGraphs:
    """The graph API :class:`GraphStep` uses, on CUDA."""

    def warm_up(self, step: Callable, batch, device: torch.device):
        """``step(batch)`` on a side stream, as capture's warm-up steps must run."""
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            parts = step(batch)
        torch.cuda.current_stream(device).wait_stream(side)
        return parts

    def capture(self, body: Callable, generators: Sequence[torch.Generator]):
        """``(graph, outputs)``: ``body`` recorded, not run; ``graph.replay()`` runs it."""
        graph = torch.cuda.CUDAGraph()
        for generator in generators:
            if generator.device.type == "cuda":
                graph.register_generator_state(generator)
        with torch.cuda.graph(graph):
            outputs = body()
        return graph, outputs


GraphAPI = CudaGraphs  # the interface: warm_up(step, batch, device), capture(body, generators)


class GraphStep:
    """A step captured in a graph after :data:`WARMUP_STEPS` eager ones, then replayed.

    The eager steps and the capture use real batches and count as training steps: the batch
    that triggers the capture is trained on by the graph's first replay. The parts returned
    after capture are the graph's own output tensors, overwritten by the next replay.
    """

    def __init__(self, step, optimizer, device, generators, graphs: GraphAPI):
        self.step, self.device, self.generators, self.graphs = step, device, tuple(generators), graphs
        self.eager_left = WARMUP_STEPS
        self.graph = None
        self.static_batch: torch.Tensor | None = None
        self.static_parts: dict | None = None
        for group in optimizer.param_groups:  # an update that replays: state and step size on the device
            group["capturable"] = True
            group["lr"] = torch.tensor(float(group["lr"]), device=device)
        self.optimizer = optimizer

    def __call__(self, batch: torch.Tensor) -> dict:
        if self.graph is None:
            if self.eager_left:
                self.eager_left -= 1
                return self.graphs.warm_up(self.step, batch, self.device)
            self._capture(batch)
        self.static_batch.copy_(batch)
        self.graph.replay()
        return self.static_parts

    def _capture(self, batch: torch.Tensor) -> None:
        self.static_batch = batch.clone()
        self.optimizer.zero_grad(set_to_none=True)  # the gradients are made in the graph's memory
        self.graph, self.static_parts = self.graphs.capture(lambda: self.step(self.static_batch), self.generators)

"""How one training step runs: eagerly; compiled by ``torch.compile``; captured in a CUDA graph
and replayed; in float32, TF32 or bfloat16.

A step is ``step(batch) -> parts``: the loss and its parts, the gradients, the optimizer's
update. :func:`eager_step` is the plain one. :func:`make_step` builds the one a
:class:`StepOptions` asks for:

``precision``
    ``"tf32"`` lets CUDA's matrix products round their inputs to TensorFloat-32 (10 bits of
    mantissa) during the step; ``"bf16"`` runs the loss under bfloat16 autocast (the weights,
    gradients and Adam stay float32). Neither is the fused reconstruction node's business: under
    autocast or compilation the model computes its loss with plain autograd operations
    (:meth:`aekit.nn.StackedAutoencoder.reconstruction_loss`), which both handle natively.
``compile``
    The loss (forward, and through AOTAutograd its backward) is compiled by
    ``torch.compile`` into fused kernels; the first steps of every fit pay the compilation.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..params import Flag, Options, Param, validate

PRECISIONS = ("float32", "tf32", "bf16")
PRECISION = Param(
    Options(*PRECISIONS),
    "Arithmetic of the training step: 'float32'; 'tf32' (CUDA only): matrix products round "
    "their inputs to TensorFloat-32; 'bf16': the forward and backward run under bfloat16 autocast "
    "while weights and Adam stay float32.",
)
COMPILE = Param(
    Flag(),
    "Compile the training step's loss (forward and backward) with torch.compile into fused "
    "kernels; each fit first pays the compilation.",
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
        if device.type != "cuda":
            for name, wanted in (
                ("precision='tf32'", self.precision == "tf32"),
                ("cuda_graphs=True", self.cuda_graphs),
            ):
                if wanted:
                    raise ValueError(f"{name} needs a CUDA device; training runs on {device}")
        if self.cuda_graphs and world_size > 1:
            raise ValueError(
                f"cuda_graphs=True trains in one process, not {world_size}: each rank's noise stream is "
                "swapped in and out around its loss, which a graph cannot replay"
            )


def eager_step(loss_fn: Callable, optimizer: torch.optim.Optimizer) -> Callable:
    """The plain step: loss, gradients, update; returns the loss's parts."""

    def step(batch):
        loss, parts = loss_fn(batch)
        optimizer.zero_grad(set_to_none=True)
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
    if options.precision != "float32":
        loss_fn = _with_precision(loss_fn, options.precision, device)
    if options.compile:
        loss_fn = torch.compile(loss_fn, dynamic=False)
    step = eager_step(loss_fn, optimizer)
    if options.cuda_graphs:
        step = GraphStep(step, optimizer, device, generators, graphs or CudaGraphs())
    return step


def _with_precision(loss_fn: Callable, precision: str, device: torch.device) -> Callable:
    def loss_in_precision(batch):
        with _precision(precision, device):
            return loss_fn(batch)

    return loss_in_precision


@contextlib.contextmanager
def _precision(precision: str, device: torch.device):
    if precision == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
        return
    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    matmul.fp32_precision = "tf32"
    try:
        yield
    finally:
        matmul.fp32_precision = before


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

"""A stacked autoencoder's training step as one compiled kernel: the reconstruction loss, its
gradients and Adam's update of every weight.

Otherwise a ``compile=True`` step runs the compiled loss kernel (:mod:`aekit.nn.fused`) as an
autograd node and then the optimizer. Around the kernel, autograd's node and engine, dynamo's
guards on the traced loss function, the optimizer's Python and its own passes over the
gradients cost a fifth of the book model's step on two CPU threads. When the objective is a
fused chain's loss and nothing else (:class:`ChainObjective`) and the optimizer is plain fused
Adam over exactly the chain's tensors (:func:`fused_step`), :class:`FusedChainStep` compiles
:func:`aekit.nn.fused.loss_and_gradients` and :func:`~.optim.adam_update` into one function:
no autograd graph is recorded, no gradient is kept, and Adam's passes fuse with the making of
each gradient.

The update is torch's Adam (``tests/test_fused_step.py`` compares it with
``torch.optim.Adam`` in float64) on the optimizer's own state, updated in place: a checkpoint
saves and restores it as before. The step runs on the CPU; on CUDA a compiled step is captured
in a graph instead (:mod:`.step`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..nn.fused import ChainCriterion, LayerSpec, bf16_products_wanted, loss_and_gradients, with_own_code
from .optim import FusedAdam, adam_scalars, adam_update, start_adam_at_step


@dataclass(frozen=True)
class ChainObjective:
    """``loss_fn(batch) -> (loss, parts)`` that is ``criterion(inputs(batch), batch)`` and
    nothing else (no penalty, no term outside the chain); ``inputs`` makes the chain's input
    of a batch (its corruption, drawn outside the kernel)."""

    loss_fn: Callable
    criterion: ChainCriterion
    inputs: Callable[[torch.Tensor], torch.Tensor]

    def __call__(self, batch: torch.Tensor):
        return self.loss_fn(batch)


def fused_step(loss_fn: Callable, optimizer: torch.optim.Optimizer, device: torch.device) -> FusedChainStep | None:
    """The step of ``loss_fn`` and ``optimizer`` as one compiled kernel where it computes what
    the general step would, else None: ``loss_fn`` is a :class:`ChainObjective`, training runs
    on the CPU, and the optimizer is plain fused Adam (:meth:`~.optim.FusedAdam.plain`: no
    gradient clipping, no all-reduce) over the chain's tensors and no others."""
    if not isinstance(loss_fn, ChainObjective) or device.type != "cpu":
        return None
    if not isinstance(optimizer, FusedAdam) or not optimizer.plain():
        return None
    specs, tensors = loss_fn.criterion.chain()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if len(params) != len(tensors) or {id(p) for p in params} != {id(t) for t in tensors}:
        return None  # a frozen tensor in the chain, or a parameter outside it
    return FusedChainStep(loss_fn, optimizer, specs, tensors)


class FusedChainStep:
    """``step(batch) -> parts``: the chain's loss, gradients and Adam's update in one compiled
    kernel (:func:`compiled_update`), the optimizer's settings and state read at every step."""

    def __init__(self, objective: ChainObjective, optimizer: FusedAdam, specs, tensors):
        self.objective, self.optimizer = objective, optimizer
        self.specs, self.tensors = specs, tensors
        group_of = {id(p): i for i, group in enumerate(optimizer.param_groups) for p in group["params"]}
        self.groups = tuple(group_of[id(t)] for t in tensors)
        self.shapes = tuple(tuple(t.shape) for t in tensors)

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.objective.inputs(batch)
        optimizer, tensors = self.optimizer, self.tensors
        if any(t not in optimizer.state for t in tensors):  # a fresh Adam makes its state at its first step
            start_adam_at_step(optimizer, 0)
        states = [optimizer.state[t] for t in tensors]
        groups = optimizer.param_groups
        settings = tuple((*groups[i]["betas"], groups[i]["eps"], groups[i]["weight_decay"]) for i in self.groups)
        kernel = compiled_update(
            self.specs,
            (tuple(x.shape), self.shapes),
            self.objective.criterion.loss,
            bf16_products_wanted(x),
            settings,
        )
        # the step counts after this step (the kernel increments them)
        scalars = [
            adam_scalars(float(state["step"]) + 1, groups[i]["lr"], *groups[i]["betas"])
            for state, i in zip(states, self.groups)
        ]
        with torch.no_grad():
            value = kernel(
                x,
                batch,
                torch.tensor(scalars, dtype=torch.float64),
                list(tensors),
                [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states],
                [s["step"] for s in states],
            )
        return {"loss": value, "reconstruction": value}


def update(x, target, scalars, tensors, exp_avgs, exp_avg_sqs, steps, *, specs, loss, bf16, settings):
    """The chain's mean ``loss`` of ``x`` against ``target``, after which every tensor has
    taken one Adam step on its gradient; ``settings`` holds each tensor's ``(beta1, beta2, eps,
    weight_decay)``, ``scalars[i]`` tensor i's :func:`~.optim.adam_scalars` of this step. What
    :func:`compiled_update` compiles."""
    value, _, grads = loss_and_gradients(x, target, *tensors, specs=specs, loss=loss, bf16=bf16, input_grad=False)
    for tensor, grad, exp_avg, exp_avg_sq, step, own, setting in zip(
        tensors, grads, exp_avgs, exp_avg_sqs, steps, scalars, settings
    ):
        adam_update(tensor, grad, exp_avg, exp_avg_sq, step, own, *setting)
    return value


@functools.cache
def compiled_update(specs: tuple[LayerSpec, ...], shapes: tuple, loss: str, bf16: bool, settings: tuple):
    """:func:`update` for one chain, compiled at its first call. One per chain, ``shapes``,
    loss, products and Adam settings, for the life of the process: later fits of the same
    architecture reuse it."""

    def kernel(x, target, scalars, tensors, exp_avgs, exp_avg_sqs, steps):
        state = (tensors, exp_avgs, exp_avg_sqs, steps)
        return update(x, target, scalars, *state, specs=specs, loss=loss, bf16=bf16, settings=settings)

    return torch.compile(with_own_code(kernel), dynamic=False, fullgraph=True)

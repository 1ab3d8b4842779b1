"""The optimiser: fused Adam with L2 as weight decay, its step count, and the step-size schedule."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.optim import optimizer as _torch_optimizer  # its global step hooks

if TYPE_CHECKING:  # settings imports the step, which imports this module's Adam
    from .settings import TrainConfig


def make_optimizer(
    params: Sequence[nn.Parameter],
    learning_rate: float,
    l2_weights: Sequence[nn.Parameter] = (),
    l2: float = 0.0,
    start_step: int = 0,
) -> torch.optim.Optimizer:
    """Adam with the fused kernel (:class:`FusedAdam`: one kernel for all parameters, called
    directly); foreach where fused is unavailable.

    L2 regularisation of ``l2_weights`` is Adam's (coupled) ``weight_decay``: it adds ``l2 * W``
    to the gradient, which is exactly the gradient of ``l2 * ||W||^2 / 2``, inside the fused
    kernel, instead of five extra passes over the weights per step in autograd.

    ``start_step > 0`` starts every parameter's moments at zero but its step count at
    ``start_step``, so the first steps are not bias-corrected as a fresh Adam's are: what
    TensorFlow 1's Adam does when one optimizer trains several phases, as in the book's
    layer-wise code (its step count lives in the optimizer, its moments per variable).
    """
    decayed = {id(w) for w in l2_weights} if l2 else set()
    groups = [
        {"params": [p for p in params if id(p) in decayed], "weight_decay": l2},
        {"params": [p for p in params if id(p) not in decayed], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    try:
        optimizer = FusedAdam(groups, lr=learning_rate, fused=True)
    except (RuntimeError, TypeError):  # e.g. a device or dtype the fused kernel lacks
        optimizer = torch.optim.Adam(groups, lr=learning_rate, foreach=True)
    if start_step:
        start_adam_at_step(optimizer, start_step)
    return optimizer


class FusedAdam(torch.optim.Adam):
    """torch's fused Adam, whose steps call the fused kernel directly once every parameter has
    its state and a gradient.

    ``torch.optim.Adam.step`` checks every parameter's state and groups the tensors by device
    and dtype on every call: some 0.3 ms a step on a CPU, a tenth of the book model's whole
    step. The kernel, its arguments and the step-count increment are torch's own, so the
    numbers are the same (``tests/test_engine.py`` checks it bit for bit); anything else (a
    first step, a closure, a tensor learning rate, a missing gradient, a gradient scaler) goes
    through ``torch.optim.Adam.step``.
    """

    @torch.no_grad()
    def step(self, closure=None):
        groups = None if closure is not None else self._ready_groups()
        if groups is None:
            return super().step(closure)
        for group, params in zip(self.param_groups, groups):
            states = [self.state[p] for p in params]
            steps = [state["step"] for state in states]
            beta1, beta2 = group["betas"]
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(
                params,
                [p.grad for p in params],
                [state["exp_avg"] for state in states],
                [state["exp_avg_sq"] for state in states],
                [],
                steps,
                amsgrad=False,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=False,
                grad_scale=None,
                found_inf=None,
            )
        return None

    def plain(self) -> bool:
        """Whether a step is Adam's update and nothing else: every group plain (coupled weight
        decay, no amsgrad, a float step size) and no hook on the step, such as a gradient
        clipping or the all-reduce of several processes (:mod:`.distributed`)."""
        hooks = (
            self._optimizer_step_pre_hooks,
            self._optimizer_step_post_hooks,
            _torch_optimizer._global_optimizer_pre_hooks,
            _torch_optimizer._global_optimizer_post_hooks,
        )
        return not any(hooks) and all(_plain_group(group) for group in self.param_groups)

    def _ready_groups(self) -> list[list[torch.Tensor]] | None:
        """Each group's parameters when the direct call does what ``Adam.step`` would, else None."""
        if getattr(self, "grad_scale", None) is not None or getattr(self, "found_inf", None) is not None:
            return None
        groups = []
        for group in self.param_groups:
            if not _plain_group(group):
                return None
            params = group["params"]
            if any(p.grad is None or p not in self.state for p in params):
                return None
            if len({(p.device, p.dtype) for p in params}) > 1:  # one kernel call takes one of each
                return None
            groups.append(params)
        return groups


def _plain_group(group: dict) -> bool:
    """Whether ``group`` is fused Adam with coupled weight decay, no variant and a float step size."""
    variant = group["amsgrad"] or group["maximize"] or group["differentiable"] or group["decoupled_weight_decay"]
    return bool(group["fused"]) and not variant and not torch.is_tensor(group["lr"])


def adam_update(param, grad, exp_avg, exp_avg_sq, step, scalars, beta1, beta2, eps, weight_decay) -> None:
    """One step of torch's Adam (coupled weight decay, no variant) for one tensor, in place,
    written as tensor operations for ``torch.compile`` to fuse with the making of ``grad``
    (:mod:`.fused_step`). ``step`` is the tensor of the step count; ``scalars`` holds this
    step's :func:`adam_scalars`, as a tensor so that they are not compiled in as constants."""
    if weight_decay:
        grad = grad + weight_decay * param
    step.add_(1)
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    step_size, bias2_sqrt = scalars[0], scalars[1]
    param.sub_(step_size * exp_avg / (exp_avg_sq.sqrt() / bias2_sqrt).add_(eps))


def adam_scalars(count: float, lr: float, beta1: float, beta2: float) -> tuple[float, float]:
    """Adam's step size and the square root of its second bias correction at step ``count``
    (counted from 1), in float64 as torch's fused kernel computes them. They are computed
    here, once a step: in a compiled update, inductor would compute them again for every
    vector of elements (two powers each, the update's whole cost)."""
    return lr / (1 - beta1**count), math.sqrt(1 - beta2**count)


def start_adam_at_step(optimizer: torch.optim.Adam, step: int) -> None:
    """Adam's state as its lazy initialisation makes it, except the step count."""
    for group in optimizer.param_groups:
        fused = bool(group["fused"])
        for p in group["params"]:
            # the step lives where torch's Adam keeps it: on the device when fused, else the CPU
            optimizer.state[p] = {
                "step": torch.tensor(
                    float(step),
                    dtype=torch.float32 if fused else torch.get_default_dtype(),
                    device=p.device if fused or group["capturable"] else "cpu",
                ),
                "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
            }


def learning_rate_at(config: TrainConfig, epoch: int) -> float:
    """The step size for 0-based ``epoch``: constant; cosine-annealed from the configured
    rate towards 0 at the end of ``config.epochs`` (Loshchilov & Hutter 2017, one cycle, no
    restart): long runs settle into a minimum instead of bouncing around it at a fixed rate;
    or "linear": see :func:`linear_decay`."""
    if config.learning_rate_schedule == "cosine":
        return config.learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))
    if config.learning_rate_schedule == "linear":
        return config.learning_rate * linear_decay(epoch, config.epochs, config.learning_rate_decay_start)
    return config.learning_rate


def linear_decay(epoch: int, epochs: int, start: float) -> float:
    """The factor of the step size in 0-based ``epoch`` of ``epochs``: 1 for the first
    ``start * epochs`` epochs, then falling linearly to reach 0 after the last epoch.

    Rasmus et al. (2015) train the Ladder network 100 epochs at a constant rate, then 50 while
    it decays linearly to zero (``start = 2/3``). The last epoch runs at a small rate, not 0.
    """
    first = math.floor(start * epochs)  # epochs at the full rate
    if epoch < first:
        return 1.0
    return (epochs - epoch) / (epochs - first)


def set_learning_rate(optimizer: torch.optim.Optimizer, learning_rate: float) -> None:
    """Every parameter group's step size: a float, so the fused kernel takes it as it is, or,
    where a captured step reads it from a tensor (:mod:`.step`), that tensor filled in place."""
    for group in optimizer.param_groups:
        if torch.is_tensor(group["lr"]):
            group["lr"].fill_(learning_rate)
        else:
            group["lr"] = learning_rate


def clip_gradients(optimizer: torch.optim.Optimizer, max_norm: float) -> None:
    """Before every step of ``optimizer``, scale the gradients of its parameters so that their
    global L2 norm is at most ``max_norm`` (:func:`torch.nn.utils.clip_grad_norm_`). A hook of
    the optimizer, so the loop that steps it needs no change; L2 weight decay is added inside
    the step, after clipping."""
    params = [p for group in optimizer.param_groups for p in group["params"]]

    def clip(opt, args, kwargs):
        torch.nn.utils.clip_grad_norm_(params, max_norm)

    optimizer.register_step_pre_hook(clip)

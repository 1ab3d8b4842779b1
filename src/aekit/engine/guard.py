"""The divergence guard: a run whose loss or weights stop being finite ends with an error.

A step's loss stays on the device (the hot loop never waits for it); the guard keeps a
reference to each step's detached loss and looks at them only when the epoch's sums, which
the loop reads anyway, are not finite: then it names the first bad step. The first few steps
of every fit are checked one by one, so a run that explodes at once fails at once instead of
after a whole epoch. After each epoch the trained weights are checked too (one reduction per
parameter), since the last step of an epoch can break them without its own loss showing it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

# steps checked one at a time at the start of every fit (each costs a device synchronisation)
FIRST_STEPS = 3


class DivergenceError(FloatingPointError):
    """Training diverged: a loss or a weight became NaN or infinite.

    The message names the phase, the epoch and the step, and what to change. Nothing is saved
    by the code that raises it: the previous model on disk, if any, stays as it was.
    """


class Guard:
    """Watches the losses of one :func:`aekit.engine.fit` call.

    Parameters
    ----------
    phase : str
        The phase's name in messages (``"train"``, ``"layer 2"``, ...).
    learning_rate : float
        Named in the advice of the error message.
    max_grad_norm : float or None
        Named in the advice when set.
    """

    def __init__(self, phase: str, learning_rate: float, max_grad_norm: float | None):
        self.phase, self.learning_rate, self.max_grad_norm = phase, learning_rate, max_grad_norm
        self.losses: list[torch.Tensor] = []  # this epoch's step losses, detached, on the device
        self.checked = 0  # steps checked one by one so far
        self.epoch = 0

    def start_epoch(self, epoch: int) -> None:
        """Forget the last epoch's losses; ``epoch`` (0-based) is the one starting."""
        self.epoch, self.losses = epoch, []

    def watch(self, loss_fn):
        """``loss_fn`` that keeps each step's loss and checks the first steps of the fit at
        once (an eager step's: a compiled or captured step is checked once an epoch)."""

        def step(batch):
            loss, parts = loss_fn(batch)
            self.losses.append(loss.detach())
            if self.checked < FIRST_STEPS:
                self.checked += 1
                value = float(self.losses[-1])
                if not math.isfinite(value):
                    raise self.error(self.epoch + 1, len(self.losses), f"the loss is {value}")
            return loss, parts

        return step

    def check(self, record: dict, params: Sequence[torch.Tensor]) -> None:
        """Raise :class:`DivergenceError` when a number of the epoch's ``record`` or a weight
        in ``params`` is not finite."""
        epoch = record["epoch"]
        bad = {k: v for k, v in record.items() if isinstance(v, float) and not math.isfinite(v)}
        if bad and set(bad) != {"val_loss"}:
            step = self._first_bad_step()
            if step is not None:
                raise self.error(epoch, step + 1, f"the loss is {float(self.losses[step])}")
        if not all(bool(torch.isfinite(p).all()) for p in params):
            raise self.error(epoch, len(self.losses), "a weight is no longer finite after this step")
        if bad:
            what = ", ".join(f"{k} = {v}" for k, v in bad.items())
            raise self.error(epoch, len(self.losses), f"{what} at the end of the epoch")

    def _first_bad_step(self) -> int | None:
        if not self.losses:
            return None
        bad = (~torch.isfinite(torch.stack(self.losses))).nonzero()
        return int(bad[0, 0]) if len(bad) else None

    def error(self, epoch: int, step: int, what: str) -> DivergenceError:
        advice = f"lower the learning rate (it is {self.learning_rate:g})"
        if self.max_grad_norm is None:
            advice += " or clip the gradients (max_grad_norm, --max-grad-norm)"
        else:
            advice += f" or max_grad_norm (it is {self.max_grad_norm:g})"
        return DivergenceError(
            f"training diverged in phase {self.phase!r}, epoch {epoch}, step {step}: {what}; {advice}"
        )

"""Recording a training run so that it can be checkpointed and resumed bit-identically.

A *run* is everything trained while a :class:`Recorder` is active (:func:`recording`): one or
more calls of :func:`aekit.engine.fit`, its *stages*, numbered in the order they are made (an
end-to-end fit is one stage; layer-wise training is one per phase, then fine-tuning; a
classifier's pretraining comes before its own training). At the end of every epoch the
recorder keeps a :class:`Snapshot` of the run in memory, and hands it to its writer every
``every`` epochs: the finished stages' trained weights and histories, and for the stage in
progress its module's state, the optimizer's state, early stopping's state, its history and
the states of the random streams it draws from (the training generator and torch's global
stream, which dropout uses), both at the stage's start and at the epoch's end.

Resuming runs the same code again, in any process, under a recorder made from a snapshot:
each finished stage is skipped (:func:`aekit.engine.fit` puts its trained weights back and
returns its history, so whatever runs between stages, such as the layer-wise cache of a
frozen layer, is computed from the same weights); the stage in progress restores the random
streams as they were at its start (so its validation split is drawn again identically), then
everything as it was at the snapshot's epoch, and trains on. With the same seed, the same
thread count and the same build of torch on the same kind of CPU, the weights at the end are
bit-identical to those of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

import torch
from torch import nn

_ACTIVE: ContextVar[Recorder | None] = ContextVar("aekit_recorder", default=None)


class CheckpointError(ValueError):
    """A checkpoint cannot be read, or does not belong to the run that resumes from it."""


@dataclass
class StageRecord:
    """A finished stage: what a resumed run needs to skip it."""

    label: str  # the stage's phase ("train", "layer 2", "fine-tune", "classifier")
    weights: dict[str, torch.Tensor]  # its trained parameters at its end, by name in its module
    history: list[dict]


@dataclass
class StageState:
    """The stage in progress at the end of one of its epochs."""

    label: str
    epochs: int  # the stage's planned epochs
    epoch: int  # epochs done
    stopped: bool  # early stopping or a callback ended the stage at this epoch
    history: list[dict]
    module: dict[str, torch.Tensor]
    optimizer: dict
    stopper: dict | None  # {"best", "bad_epochs", "best_state"} with early stopping
    rng_entry: dict[str, torch.Tensor]  # the random streams at the stage's start
    rng: dict[str, torch.Tensor]  # ... and at this epoch's end


@dataclass
class Snapshot:
    """A run at the end of an epoch (``current``), or after its last stage (``current`` None)."""

    done: list[StageRecord] = field(default_factory=list)
    current: StageState | None = None
    finished: bool = False  # the whole run ended (set by the code that drives the run)

    def where(self) -> str:
        """Where the run stands, for messages: ``"layer 2, epoch 3 of 4"``."""
        if self.current is None:
            return "after training" if self.done else "before training"
        state = self.current
        return f"{state.label}, epoch {state.epoch} of {state.epochs}"

    @property
    def epochs_run(self) -> int:
        return sum(len(r.history) for r in self.done) + (self.current.epoch if self.current else 0)


class Recorder:
    """Records the run trained while it is active (see the module's docstring).

    Parameters
    ----------
    every : int, optional
        Hand a snapshot to ``write`` every ``every`` epochs of the run (counted over all its
        stages); None: only when :meth:`write_last` is called.
    write : callable, optional
        ``write(snapshot)``, e.g. to a file through :mod:`aekit.files`.
    resume : Snapshot, optional
        Resume the run from this snapshot: its stages are skipped or continued as the
        module's docstring says.
    """

    def __init__(
        self,
        *,
        every: int | None = None,
        write: Callable[[Snapshot], None] | None = None,
        resume: Snapshot | None = None,
    ):
        self.every, self.write, self.resume = every, write, resume
        self.done: list[StageRecord] = []
        self.last: Snapshot | None = resume  # the newest snapshot
        self.written: Snapshot | None = resume  # the newest one handed to write
        self.stages = 0  # stages begun in this process

    def begin(self, module: nn.Module, params: list[nn.Parameter], config, generator: torch.Generator) -> Stage:
        index, self.stages = self.stages, self.stages + 1
        stage = Stage(self, config, module, _names(module, params), generator)
        with _restoring():
            self._begin(stage, index)
        return stage

    def _begin(self, stage: Stage, index: int) -> None:
        module, generator, resume = stage.module, stage.generator, self.resume
        if resume is not None and index < len(resume.done):
            record = resume.done[index]
            stage.check(record.label, record.weights, whole=False)
            _load(module, record.weights)
            self.done.append(record)
            stage.skipped = record.history
        elif resume is not None and index == len(resume.done) and resume.current is not None:
            stage.check(resume.current.label, resume.current.module, whole=True)
            stage.resume = resume.current
            set_rng_states(resume.current.rng_entry, generator)
            stage.rng_entry = resume.current.rng_entry
        else:
            stage.rng_entry = rng_states(generator)

    def snapshot(self, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` as the newest; write it when the run has reached a multiple of
        ``every`` epochs."""
        self.last = snapshot
        if self.every and snapshot.epochs_run % self.every == 0:
            self.write_last()

    def finish(self) -> Snapshot:
        """Mark the run as ended; the last snapshot then holds every stage as finished."""
        self.last = Snapshot(done=list(self.done), finished=True)
        return self.last

    def write_last(self) -> None:
        """Hand the newest snapshot to ``write`` unless it already was."""
        if self.write is not None and self.last is not None and self.last is not self.written:
            self.write(self.last)
            self.written = self.last


@contextlib.contextmanager
def recording(recorder: Recorder) -> Iterator[Recorder]:
    """Make ``recorder`` the one :func:`aekit.engine.fit` reports to, for the ``with`` block."""
    token = _ACTIVE.set(recorder)
    try:
        yield recorder
    finally:
        _ACTIVE.reset(token)


def begin(module: nn.Module, params: list[nn.Parameter], config, generator: torch.Generator) -> Stage | None:
    """The stage a call of :func:`aekit.engine.fit` is, or None when no run is being recorded."""
    recorder = _ACTIVE.get()
    return None if recorder is None else recorder.begin(module, params, config, generator)


class Stage:
    """One call of :func:`aekit.engine.fit` in a recorded run.

    ``skipped`` is the history to return at once when a resumed run had finished this stage
    (its weights are back in the module); otherwise the loop calls :meth:`restore` before its
    first epoch, :meth:`epoch_end` after each and :meth:`end` at the end.
    """

    def __init__(self, recorder: Recorder, config, module: nn.Module, names: list[str], generator):
        self.recorder, self.config, self.module, self.names, self.generator = recorder, config, module, names, generator
        self.skipped: list[dict] | None = None
        self.resume: StageState | None = None
        self.rng_entry: dict[str, torch.Tensor] = {}

    def check(self, label: str, weights: dict[str, torch.Tensor], *, whole: bool) -> None:
        """The checkpoint's stage must be this one: the same phase and the same tensors (the
        trained parameters, or with ``whole`` the module's whole state), by name and shape."""
        state = self.module.state_dict()
        names = set(state) if whole else set(self.names)
        if (
            label != self.config.phase
            or set(weights) != names
            or any(tuple(state[n].shape) != tuple(w.shape) for n, w in weights.items())
        ):
            raise CheckpointError(
                f"the checkpoint's stage {label!r} does not match this run's stage {self.config.phase!r}: "
                "it was written by another run (other settings or other data)"
            )

    def restore(self, optimizer: torch.optim.Optimizer, stopper, history: list[dict]) -> int:
        """Put the snapshot's state back (after the validation split was drawn); the 0-based
        epoch to train next."""
        state = self.resume
        if state is None:
            return 0
        with _restoring():
            self.module.load_state_dict(state.module)
            _load_moments(optimizer, state.optimizer["state"])
            if (stopper is None) != (state.stopper is None):
                raise ValueError("early stopping differs from the checkpoint's")
            if stopper is not None:
                stopper.best, stopper.bad_epochs = state.stopper["best"], state.stopper["bad_epochs"]
                stopper.best_state = state.stopper["best_state"]
            history.extend(dict(r) for r in state.history)
            set_rng_states(state.rng, self.generator)
        return self.config.epochs if state.stopped else min(max(state.epoch, 0), self.config.epochs)

    def epoch_end(self, optimizer: torch.optim.Optimizer, stopper, history: list[dict], stopped: bool) -> None:
        """Snapshot the run as it is now, at the end of an epoch."""
        state = StageState(
            label=self.config.phase,
            epochs=self.config.epochs,
            epoch=len(history),
            stopped=stopped,
            history=[dict(r) for r in history],
            module={k: v.detach().clone() for k, v in self.module.state_dict().items()},
            optimizer=copy.deepcopy(optimizer.state_dict()),
            # best_state is replaced, never changed in place: a reference is a snapshot
            stopper=None
            if stopper is None
            else {"best": stopper.best, "bad_epochs": stopper.bad_epochs, "best_state": stopper.best_state},
            rng_entry=self.rng_entry,
            rng=rng_states(self.generator),
        )
        self.recorder.snapshot(Snapshot(done=list(self.recorder.done), current=state))

    def end(self, history: list[dict]) -> None:
        """The stage is finished: record its trained weights (after early stopping put the best back)."""
        params = dict(self.module.named_parameters())
        weights = {n: params[n].detach().clone() for n in self.names}
        self.recorder.done.append(StageRecord(self.config.phase, weights, [dict(r) for r in history]))


_MOMENTS = ("step", "exp_avg", "exp_avg_sq")


def _load_moments(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """Adam's per-parameter state from a checkpoint. Its settings (step size, betas, weight
    decay) are not taken from the file: the resumed run makes them from its own settings."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for index, entry in saved.items():
        if not (0 <= index < len(params)) or set(entry) != set(_MOMENTS):
            raise CheckpointError(
                f"the checkpoint's optimizer state does not fit this run's ({index}: {sorted(entry)})"
            )
        if any(entry[k].shape != params[index].shape for k in _MOMENTS[1:]) or entry["step"].numel() != 1:
            raise CheckpointError(f"the checkpoint's optimizer state for parameter {index} has the wrong shape")
    current = optimizer.state_dict()
    optimizer.load_state_dict({"state": saved, "param_groups": current["param_groups"]})


@contextlib.contextmanager
def _restoring() -> Iterator[None]:
    """Whatever a damaged checkpoint makes torch raise while it is put back, as a CheckpointError."""
    try:
        yield
    except CheckpointError:
        raise
    except (RuntimeError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise CheckpointError(f"the checkpoint cannot be restored ({type(exc).__name__}: {exc})") from exc


def _names(module: nn.Module, params: list[nn.Parameter]) -> list[str]:
    """The names in ``module`` of the parameters a stage trains."""
    trained = {id(p) for p in params}
    return [name for name, p in module.named_parameters() if id(p) in trained]


@torch.no_grad()
def _load(module: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    params = dict(module.named_parameters())
    for name, value in weights.items():
        params[name].copy_(value)


# -- random streams --------------------------------------------------------------------------
def rng_states(generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The states of the streams a stage draws from: ``generator`` (batch order, noise) and
    torch's global stream on its device (dropout)."""
    states = {"generator": generator.get_state(), "torch": torch.random.get_rng_state()}
    if generator.device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(generator.device)
    return states


def set_rng_states(states: dict[str, torch.Tensor], generator: torch.Generator) -> None:
    """Put back what :func:`rng_states` returned."""
    generator.set_state(states["generator"])
    torch.random.set_rng_state(states["torch"])
    if "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], generator.device)

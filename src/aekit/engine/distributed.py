"""Training in several processes: torchrun's environment, the process group, and what the
processes exchange.

Started by ``torchrun --nproc-per-node N`` (on one or several machines), every process runs
the same program on the same data; :func:`world` finds torchrun's environment variables and
joins the process group on first use (gloo for CPU tensors, NCCL for CUDA ones), or uses one
the program has made itself (:func:`init_distributed`, or ``torch.distributed``'s own). Then
every :func:`~aekit.engine.fit`:

- seeds alike (:meth:`World.agree`) and starts from rank 0's weights, so every rank draws the
  same permutation each epoch and takes its own part of every batch (:mod:`.sharding`);
- sums the gradients of all ranks before each optimizer step, so the weights stay identical on
  every rank and each step is the one a single process would take on the whole batch
  (a rank's loss is weighted by its share of the batch when the shares differ);
- draws each rank's training noise (corruption) from a stream of its own, so no two ranks
  corrupt their rows alike, while the shared generator, which orders the rows, stays in step;
- averages the epoch's losses, sums the validation loss over the ranks' parts of the
  validation rows, and stops when any rank's callbacks or early stopping say so: every rank
  sees the same history and stops at the same epoch.

The gradients are summed by one all-reduce of all of them, flattened, before the optimizer
step: aekit's losses are computed outside ``module.forward`` (a fused autograd node), where
``DistributedDataParallel``'s reducer is never told to expect gradients and would silently
leave them unsummed; ``benches/bench_scaling.py`` measures this against a DDP-wrapped loss.

A collective that fails, because another rank died, was killed or stopped answering, raises
:class:`DistributedError` on the survivors within the process group's timeout instead of
leaving them waiting.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from . import sharding

# what torchrun sets in every process it starts; all or none of them must be set
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
TIMEOUT = timedelta(minutes=10)  # longest wait for another rank in one collective


class DistributedError(RuntimeError):
    """Processes cannot train together: torchrun's environment is incomplete or wrong, the
    process group cannot be joined, or another rank stopped during training. The message says
    which rank saw it and why."""


@dataclass(frozen=True)
class World:
    """This process's place among those training together: ``rank`` of ``size``, and its
    ``local_rank`` on its machine (which CUDA device it uses). ``World()`` is one process."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes models, metrics and reports."""
        return self.rank == 0

    # -- collectives -----------------------------------------------------------------------
    def agree(self, value: int) -> int:
        """Rank 0's ``value`` (an int), on every rank."""
        if self.size == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.int64, device=self._small_device())
        with self._collective("agreeing on a seed"):
            dist.broadcast(tensor, src=0)
        return int(tensor.item())

    def total(self, *values: float) -> tuple[float, ...]:
        """Each value summed over the ranks."""
        if self.size == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self._small_device())
        with self._collective("summing over the ranks"):
            dist.all_reduce(tensor)
        return tuple(tensor.tolist())

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank."""
        return bool(self.total(float(flag))[0]) if self.size > 1 else flag

    def average(self, record: dict) -> dict:
        """The epoch's record with every loss part averaged over the ranks (``seconds`` and
        the labels stay this rank's)."""
        names = [k for k, v in record.items() if isinstance(v, float) and k != "seconds"]
        if self.size == 1 or not names:
            return record
        sums = self.total(*(record[k] for k in names))
        return {**record, **{k: s / self.size for k, s in zip(names, sums)}}

    def broadcast_module(self, module: nn.Module) -> None:
        """Rank 0's parameters and buffers, copied into ``module`` on every rank."""
        if self.size == 1:
            return
        with self._collective("copying rank 0's weights"), torch.no_grad():
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)

    def gather_rows(self, part: torch.Tensor, n: int) -> torch.Tensor:
        """The ``n`` rows whose rank-ordered parts (:func:`~.sharding.part_bounds`) the ranks
        hold, on every rank."""
        if self.size == 1:
            return part
        sizes = [hi - lo for lo, hi in (sharding.part_bounds(n, r, self.size) for r in range(self.size))]
        padded = part.new_zeros((max(sizes), *part.shape[1:]))
        padded[: len(part)] = part
        parts = [torch.empty_like(padded) for _ in sizes]
        with self._collective("gathering a frozen layer's outputs"):
            dist.all_gather(parts, padded)
        return torch.cat([p[:k] for p, k in zip(parts, sizes)])

    # -- training ---------------------------------------------------------------------------
    def shard(self, source):
        """This rank's view of a source (:func:`.sharding.shard`)."""
        return sharding.shard(source, self.rank, self.size)

    def synchronise(
        self,
        loss_fn: Callable,
        eval_fn: Callable,
        params: Sequence[nn.Parameter],
        optimizer: torch.optim.Optimizer,
        batch_size: int,
        generator: torch.Generator,
    ) -> tuple[Callable, Callable]:
        """``(loss_fn, eval_fn)`` for this rank, and the optimizer made to sum gradients.

        The loss of a rank holding ``b`` of a batch's ``B`` rows is scaled by ``b * size / B``
        (1 when the batch divides evenly), so the averaged gradient is the whole batch's; both
        functions draw their noise from this rank's own stream.
        """
        if self.size == 1:
            return loss_fn, eval_fn
        if batch_size < self.size:
            raise DistributedError(
                f"{self.size} processes but batches of {batch_size} row{'s' * (batch_size > 1)} (batch_size, or "
                "every training row when there are fewer): each rank needs at least one row of every batch; "
                "start fewer processes, or train on more rows with a larger batch_size"
            )
        lo, hi = sharding.part_bounds(batch_size, self.rank, self.size)
        weight = (hi - lo) * self.size / batch_size
        noise = RankNoise(generator, self.rank)
        optimizer.register_step_pre_hook(lambda *_: self._all_reduce_gradients(params))

        def local_loss(batch):
            with noise:
                loss, parts = loss_fn(batch)
            if weight != 1:
                loss, parts = loss * weight, {k: v * weight for k, v in parts.items()}
            return loss, parts

        def local_eval(batch):
            with noise:
                return eval_fn(batch)

        return local_loss, local_eval

    def _all_reduce_gradients(self, params: Sequence[nn.Parameter]) -> None:
        """Every rank's gradients averaged, in one all-reduce of them all, flattened."""
        grads = [p.grad for p in params if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        with self._collective("the gradient all-reduce"):
            dist.all_reduce(flat)
        flat.div_(self.size)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def _small_device(self) -> torch.device:
        """Where the small tensors of agreements and sums live: the CPU unless the process
        group has no CPU backend (a group of NCCL alone, made by the program)."""
        return torch.device("cpu") if "gloo" in str(dist.get_backend()) else torch.device("cuda", self.local_rank)

    @contextlib.contextmanager
    def _collective(self, what: str):
        try:
            yield
        except RuntimeError as error:
            raise DistributedError(
                f"rank {self.rank} of {self.size}: {what} failed: another rank has probably stopped "
                f"(crashed, was killed, ran out of memory) or cannot be reached; see its output. ({error})"
            ) from error


class RankNoise:
    """A context in which ``generator`` draws from this rank's own stream.

    On entering, the shared generator's state is set aside and the rank's stream put in its
    place; on leaving, the rank's stream is kept for next time and the shared state restored,
    so the shared generator (which orders the rows) moves only when every rank moves it. A
    rank's stream starts from a hash of the shared state and the rank: deterministic, and
    different on every rank and in every fit.
    """

    def __init__(self, generator: torch.Generator, rank: int):
        self.generator, self.rank = generator, rank
        self.state: torch.Tensor | None = None
        self._shared: torch.Tensor | None = None
        self._depth = 0  # entered again from inside (a loss called by an eval_fn): swap once

    def __enter__(self):
        self._depth += 1
        if self._depth > 1:
            return
        self._shared = self.generator.get_state()
        if self.state is None:
            digest = hashlib.sha256(self._shared.numpy().tobytes() + self.rank.to_bytes(8, "little")).digest()
            self.generator.manual_seed(int.from_bytes(digest[:8], "little") >> 1)
        else:
            self.generator.set_state(self.state)

    def __exit__(self, *exc):
        self._depth -= 1
        if self._depth == 0:
            self.state = self.generator.get_state()
            self.generator.set_state(self._shared)


def torchrun_environment(environ: Mapping[str, str] | None = None) -> World | None:
    """The :class:`World` torchrun's environment variables describe, None when none is set.

    Raises
    ------
    DistributedError
        If some of the variables are set and others not, or a value is malformed.
    """
    environ = os.environ if environ is None else environ
    present = [name for name in TORCHRUN_VARIABLES if environ.get(name)]
    if not present:
        return None
    missing = [name for name in TORCHRUN_VARIABLES if not environ.get(name)]
    if missing:
        raise DistributedError(
            f"torchrun's environment is half set: {', '.join(present)} set but {', '.join(missing)} not. "
            "Start every process with torchrun, or set all of "
            f"{', '.join(TORCHRUN_VARIABLES)} (or none of them, to train in one process)"
        )
    values = {name: _int_variable(environ, name) for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    rank, size, local_rank = values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"]
    if size < 1 or not 0 <= rank < size or local_rank < 0 or not 0 < values["MASTER_PORT"] < 65536:
        raise DistributedError(
            f"torchrun's environment is inconsistent: RANK={rank}, WORLD_SIZE={size}, "
            f"LOCAL_RANK={local_rank}, MASTER_PORT={values['MASTER_PORT']} (need 0 <= RANK < WORLD_SIZE, "
            "LOCAL_RANK >= 0 and a port in 1..65535)"
        )
    return World(rank, size, local_rank)


def _int_variable(environ: Mapping[str, str], name: str) -> int:
    try:
        return int(environ[name])
    except ValueError:
        raise DistributedError(f"torchrun's environment: {name}={environ[name]!r} is not an integer") from None


def local_device(device: torch.device) -> torch.device:
    """``device``; under torchrun a CUDA device that names no index becomes the process's own,
    ``cuda:LOCAL_RANK``. Reads the environment only: joins no process group."""
    device = torch.device(device)
    env = torchrun_environment()
    if env is None or env.size == 1 or device.type != "cuda" or device.index is not None:
        return device
    if env.local_rank >= torch.cuda.device_count():
        raise DistributedError(
            f"rank {env.rank}: LOCAL_RANK={env.local_rank} but this machine has "
            f"{torch.cuda.device_count()} CUDA devices; start at most that many processes per machine"
        )
    return torch.device("cuda", env.local_rank)


def world() -> World:
    """This process's :class:`World`: the process group's when there is one, else torchrun's
    environment's (joining the group, with :func:`init_distributed`), else one process."""
    if dist.is_available() and dist.is_initialized():
        env = torchrun_environment()
        local_rank = env.local_rank if env is not None else dist.get_rank()
        return World(dist.get_rank(), dist.get_world_size(), local_rank)
    env = torchrun_environment()
    if env is None or env.size == 1:
        return World()
    return init_distributed()


def init_distributed(timeout: timedelta = TIMEOUT) -> World:
    """Join the process group torchrun's environment describes: gloo for CPU tensors and,
    where CUDA is available, NCCL for CUDA ones. ``timeout`` bounds every wait for another
    rank. Called by :func:`world` on first use; call it first for another timeout.

    Raises
    ------
    DistributedError
        If the environment is missing or incomplete, or the other processes cannot be joined.
    """
    env = torchrun_environment()
    if env is None:
        raise DistributedError(f"not started by torchrun: none of {', '.join(TORCHRUN_VARIABLES)} is set")
    if not dist.is_available():
        raise DistributedError("this build of PyTorch has no torch.distributed")
    nccl = torch.cuda.is_available() and dist.is_nccl_available()
    try:
        dist.init_process_group("cpu:gloo,cuda:nccl" if nccl else "gloo", timeout=timeout)
    except (RuntimeError, ValueError) as error:
        raise DistributedError(
            f"rank {env.rank} of {env.size} could not join the others at "
            f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}: {error}"
        ) from error
    atexit.register(_leave)
    return env


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()

"""Training rows that stay on disk: a source that reads each epoch's batches as it needs them.

:class:`Streamed` trains on an array on disk (a ``numpy.memmap`` of a ``.npy`` file, or a
:class:`~aekit.datasets.ShardedArray` over a folder of shards; see
:func:`aekit.datasets.on_disk`) without ever loading it whole. Each epoch it draws the same
permutation :class:`~.data.InMemory` draws and cuts it into the same batches, so on data that
fits in memory both give the same weights. A background thread reads the rows of the next few
batches at a time (a chunk of about :data:`CHUNK_BYTES`), converts them to the training dtype
and, on CUDA, copies them to the device from pinned memory on a side stream; the training loop
takes slices of chunks that are ready. The memory it holds is a few chunks, whatever the size
of the data.

A split keeps row numbers (8 bytes a row), not rows; in several processes each reads only its
part of every batch (:mod:`.sharding`).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from .data import permutation, validation_size
from .sharding import part_bounds

CHUNK_BYTES = 4 << 20  # rows gathered at once by the background thread
AHEAD = 1  # chunks gathered ahead of the one the training loop is using


class Streamed:
    """Rows of an array on disk (``rows``), or of the subset ``index`` of them, read in
    chunks by a background thread; ``part`` is ``(rank, world size)``, this process's share of
    each batch and of the rows (:mod:`.sharding`)."""

    def __init__(
        self,
        rows,
        device: torch.device,
        dtype: torch.dtype,
        *,
        index: np.ndarray | None = None,
        part: tuple[int, int] = (0, 1),
    ):
        if len(rows.shape) != 2:
            raise ValueError(f"rows on disk must be a 2-D array (samples, features), got shape {rows.shape}")
        self.rows, self.device, self.dtype = rows, torch.device(device), dtype
        self.index, self.part = index, part

    def __len__(self) -> int:
        return len(self.rows) if self.index is None else len(self.index)

    @property
    def n_features(self) -> int:
        return int(self.rows.shape[1])

    def steps(self, batch_size: int) -> int:
        return len(self) // batch_size

    def epoch(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """This epoch's batches: rows ``perm[i B : (i + 1) B]`` (this process's part of them)."""
        perm = permutation(len(self), generator, torch.device("cpu")).numpy()
        steps = self.steps(batch_size)
        lo, hi = part_bounds(batch_size, *self.part)
        local = perm[: steps * batch_size].reshape(steps, batch_size)[:, lo:hi]  # (steps, hi - lo)
        per_chunk = max(1, CHUNK_BYTES // max(1, (hi - lo) * self.n_features * 4))
        plan = (local[i : i + per_chunk].reshape(-1) for i in range(0, steps, per_chunk))
        for chunk in self._read(plan):
            yield from chunk.split(hi - lo)

    def split(self, fraction: float, generator: torch.Generator) -> tuple[Streamed, Streamed | None]:
        """Random (train, validation) split, drawn as :meth:`InMemory.split` draws it."""
        if fraction == 0:
            return self, None
        n_val = validation_size(fraction, len(self))
        perm = permutation(len(self), generator, torch.device("cpu")).numpy()
        ids = perm if self.index is None else self.index[perm]
        return self._subset(ids[n_val:]), self._subset(ids[:n_val])

    def shard(self, rank: int, size: int) -> Streamed:
        return Streamed(self.rows, self.device, self.dtype, index=self.index, part=(rank, size))

    def chunks(self, size: int) -> Iterator[tuple[torch.Tensor, int]]:
        """``(rows, how many)`` in order, every row of this process's part once."""
        lo, hi = part_bounds(len(self), *self.part)
        for chunk in self.read((start, min(start + size, hi)) for start in range(lo, hi, size)):
            yield chunk, len(chunk)

    def read(self, ranges: Iterable[tuple[int, int]]) -> Iterator[torch.Tensor]:
        """Rows ``[start, stop)`` of this source (whatever its part) for each range, in order."""
        return self._read(np.arange(start, stop) for start, stop in ranges)

    def _subset(self, ids: np.ndarray) -> Streamed:
        return Streamed(self.rows, self.device, self.dtype, index=ids)

    def _read(self, plan: Iterable[np.ndarray]) -> Iterator[torch.Tensor]:
        """The rows of each array of positions in ``plan`` as one tensor on the device, read
        :data:`AHEAD` chunks ahead by a background thread."""
        to_device = _DeviceCopy(self.device)
        positions = (ids if self.index is None else self.index[ids] for ids in plan)
        produced = (to_device(self._gather(ids)) for ids in positions)
        for chunk in in_background(produced, AHEAD):
            yield to_device.ready(chunk)

    def _gather(self, ids: np.ndarray) -> torch.Tensor:
        """Rows ``ids``, in that order, as a tensor of ``dtype`` (in pinned memory for CUDA).

        The rows are read in the order given: sorting them first (and putting them back in
        order after) costs three times the read itself when the file is in the page cache."""
        rows = torch.from_numpy(np.asarray(self.rows[ids]))
        if self.device.type != "cuda":
            return rows.to(self.dtype)
        return torch.empty(rows.shape, dtype=self.dtype, pin_memory=True).copy_(rows)


class _DeviceCopy:
    """Host chunks to the device: on CUDA a non-blocking copy on a side stream (in the
    background thread) and an event the training stream waits for; elsewhere nothing."""

    def __init__(self, device: torch.device):
        self.device = device
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    def __call__(self, host: torch.Tensor):
        if self.stream is None:
            return host
        with torch.cuda.stream(self.stream):
            chunk = host.to(self.device, non_blocking=True)
            event = torch.cuda.Event()
            event.record(self.stream)
        return chunk, event

    def ready(self, produced) -> torch.Tensor:
        if self.stream is None:
            return produced
        chunk, event = produced
        current = torch.cuda.current_stream(self.device)
        current.wait_event(event)
        chunk.record_stream(current)  # its memory is not reused before the training stream is done
        return chunk


_END = object()


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


def in_background(items: Iterable, ahead: int) -> Iterator:
    """The items of ``items``, produced by a background thread at most ``ahead`` items ahead
    of the consumer; an error in the thread is raised here, and the thread stops when the
    consumer does."""
    ready: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                ready.put(item, timeout=0.05)
                return True
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as error:  # handed to the consumer, which raises it
            put(_Failed(error))

    thread = threading.Thread(target=produce, name="aekit-rows", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not _END:
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()

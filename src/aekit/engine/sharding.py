"""Which rows each process takes when training runs in several (:mod:`.distributed`).

Every process draws the same permutation of the rows each epoch (its training generator is
seeded alike), cuts it into the same global batches, and takes its own contiguous part of each:
rank ``r`` of ``W`` takes rows ``[B r // W, B (r + 1) // W)`` of every batch of ``B`` rows, so
the parts of all ranks make up the batch one process would have taken. The validation rows are
cut the same way, once.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


def part_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """``[lo, hi)``: rank ``rank``'s contiguous part of ``n`` items split among ``size`` ranks
    (parts differ by at most one item)."""
    return n * rank // size, n * (rank + 1) // size


def shard(source, rank: int, size: int):
    """``source`` as rank ``rank`` of ``size`` sees it; the source itself when ``size`` is 1.

    A source with a ``shard(rank, size)`` method (e.g. :class:`~.streaming.Streamed`, which
    then reads its part of each batch only) makes its own shard; any other is wrapped in a
    :class:`BatchShard`.
    """
    if size == 1 or source is None:
        return source
    if hasattr(source, "shard"):
        return source.shard(rank, size)
    return BatchShard(source, rank, size)


class BatchShard:
    """Rank ``rank``'s part of every batch and of the rows of a source whose batches are
    tensors (rows first)."""

    def __init__(self, source, rank: int, size: int):
        self.source, self.rank, self.size = source, rank, size

    def __len__(self) -> int:
        return len(self.source)  # the global rows: batch sizes and steps are global

    def steps(self, batch_size: int) -> int:
        return self.source.steps(batch_size)

    def epoch(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        lo, hi = part_bounds(batch_size, self.rank, self.size)
        for batch in self.source.epoch(batch_size, generator):
            yield batch[lo:hi]

    def split(self, fraction: float, generator: torch.Generator):
        raise TypeError("split a source before sharding it: every rank must hold out the same rows")

    def chunks(self, size: int) -> Iterator[tuple[torch.Tensor, int]]:
        """This rank's part of the rows, in order (nothing when it has none)."""
        lo, hi = part_bounds(len(self.source), self.rank, self.size)
        offset = 0
        for chunk, n in self.source.chunks(size):
            a, b = max(lo, offset) - offset, min(hi, offset + n) - offset
            if a < b:
                yield chunk[a:b], b - a
            offset += n

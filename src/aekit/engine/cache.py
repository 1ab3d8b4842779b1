"""A frozen layer's outputs for every training row, computed once: the cache a layer-wise phase
or a classifier over frozen layers trains on.

Rows in memory (a tensor) give a tensor on the same device; rows on disk
(:class:`~.streaming.Streamed`) give a source over a temporary file of the outputs, written a
block at a time, so the cache never has to fit in memory either. In several processes each rank
computes its part of every block and all gather the parts (:meth:`~.distributed.World.gather_rows`):
the work is shared and every rank holds the same cache.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable

import numpy as np
import torch

from . import distributed
from .sharding import part_bounds
from .streaming import Streamed


@torch.no_grad()
def map_rows(fn: Callable[[torch.Tensor], torch.Tensor], rows, width: int, batch_size: int = 4096):
    """``fn`` over every row of ``rows`` (a tensor, or a :class:`~.streaming.Streamed`
    source), in order and in blocks of ``batch_size`` rows per process.

    ``fn`` maps ``(b, d)`` to ``(b, width)``. Returns a tensor for a tensor, a
    :class:`~.streaming.Streamed` source over a temporary file for a streamed source: the file
    has no name (it goes with the last reference to it) and lives in ``$TMPDIR``, which is
    memory on some systems.
    """
    world = distributed.world()
    n, block = len(rows), batch_size * world.size
    on_disk = isinstance(rows, Streamed)
    if on_disk:
        out = np.memmap(tempfile.TemporaryFile(), dtype=np.float32, mode="w+", shape=(n, width))
    else:
        out = rows.new_empty((n, width))
    ranges = [(start, min(start + block, n)) for start in range(0, n, block)]
    parts = [tuple(start + b for b in part_bounds(stop - start, world.rank, world.size)) for start, stop in ranges]
    inputs = rows.read(parts) if on_disk else (rows[lo:hi] for lo, hi in parts)
    for (start, stop), inputs_part in zip(ranges, inputs):
        outputs = world.gather_rows(fn(inputs_part), stop - start)
        out[start:stop] = outputs.float().cpu().numpy() if on_disk else outputs
    return Streamed(out, rows.device, rows.dtype) if on_disk else out

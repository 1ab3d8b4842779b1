"""Where the engine's batches come from: a source of training rows.

A source gives the engine, for one epoch, ``steps(batch_size)`` batches of exactly
``batch_size`` rows each (static shapes, which CUDA-graph capture needs), in an order drawn from
the training generator; ``split`` holds out a validation source; ``chunks`` runs through every
row once, in order, for evaluation. A batch is whatever the loss function takes: a tensor for
:class:`InMemory`; other sources may yield tuples (e.g. a labelled and an unlabelled batch).

:class:`InMemory` keeps the data in one tensor on the training device and slices a fresh
permutation each epoch: no DataLoader and no per-sample Python. The remainder of each epoch's
permutation is dropped; a new permutation next epoch means every row is still seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np
import torch

from ..datasets import on_disk


class Source(Protocol):
    """What :func:`aekit.engine.fit` trains on (see the module's docstring)."""

    def __len__(self) -> int: ...

    def steps(self, batch_size: int) -> int: ...

    def epoch(self, batch_size: int, generator: torch.Generator) -> Iterator: ...

    def split(self, fraction: float, generator: torch.Generator) -> tuple[Source, Source | None]: ...

    def chunks(self, size: int) -> Iterator[tuple[object, int]]: ...


def as_tensor(X, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The data as one contiguous tensor on ``device`` (no copy when it already is one)."""
    X = X if torch.is_tensor(X) else torch.from_numpy(np.ascontiguousarray(X))
    return X.to(device=device, dtype=dtype).contiguous()


def permutation(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """A random order of ``n`` rows drawn from ``generator``, on ``device``."""
    return torch.randperm(n, generator=generator, device=generator.device).to(device)


def validation_size(fraction: float, n: int) -> int:
    """How many of ``n`` rows a split holds out: at least one, and never all of them."""
    n_val = max(1, int(round(fraction * n)))
    if n_val >= n:
        raise ValueError(f"validation_fraction={fraction} leaves no training rows out of {n}")
    return n_val


class InMemory:
    """Rows of one tensor on the training device; batches are slices of a permutation."""

    def __init__(self, X: torch.Tensor):
        self.X = X

    def __len__(self) -> int:
        return len(self.X)

    def steps(self, batch_size: int) -> int:
        return len(self.X) // batch_size

    def epoch(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        perm = permutation(len(self.X), generator, self.X.device)
        for i in range(self.steps(batch_size)):
            yield self.X.index_select(0, perm[i * batch_size : (i + 1) * batch_size])

    def split(self, fraction: float, generator: torch.Generator) -> tuple[InMemory, InMemory | None]:
        """Random (train, validation) split of the rows; no validation when ``fraction`` is 0."""
        if fraction == 0:
            return self, None
        n_val = validation_size(fraction, len(self.X))
        perm = permutation(len(self.X), generator, self.X.device)
        return InMemory(self.X[perm[n_val:]]), InMemory(self.X[perm[:n_val]])

    def chunks(self, size: int) -> Iterator[tuple[torch.Tensor, int]]:
        """``(rows, how many)`` in order, every row once."""
        for start in range(0, len(self.X), size):
            chunk = self.X[start : start + size]
            yield chunk, len(chunk)


def training_rows(X, device: torch.device, dtype: torch.dtype = torch.float32):
    """The rows a training mode works on: a tensor on ``device``, or, for an array on disk, a
    :class:`~.streaming.Streamed` source that leaves them there."""
    return source_of(X, device, dtype) if on_disk(X) else as_tensor(X, device, dtype)


def source_of(data, device: torch.device, dtype: torch.dtype) -> Source:
    """``data`` as a source: a source as it is, an array on disk
    (:func:`aekit.datasets.on_disk`) as :class:`~.streaming.Streamed`, any other array or
    tensor as :class:`InMemory` on ``device`` (float64 models, as reference tests use, get
    float64 data)."""
    if hasattr(data, "epoch") and hasattr(data, "split"):
        return data
    if on_disk(data):
        from .streaming import Streamed

        return Streamed(data, device, dtype)
    return InMemory(as_tensor(data, device, dtype))

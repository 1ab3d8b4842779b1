"""Where the engine's batches come from: a source of training rows.

A source gives the engine, for one epoch, ``steps(batch_size)`` batches of exactly
``batch_size`` rows each (static shapes, which CUDA-graph capture needs), in an order drawn from
the training generator; ``split`` holds out a validation source; ``chunks`` runs through every
row once, in order, for evaluation. A batch is whatever the loss function takes: a tensor for
:class:`InMemory`; a tuple of a labelled and an unlabelled batch for :class:`SemiSupervised`.

:class:`InMemory` keeps the data in one tensor on the training device and slices a fresh
permutation each epoch: no DataLoader and no per-sample Python. The remainder of each epoch's
permutation is dropped; a new permutation next epoch means every row is still seen.
"""

from __future__ import annotations

import warnings
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
    """The data as one contiguous tensor on ``device`` (no copy when it already is one). A
    read-only array (a memory map opened for reading) is shared, not copied, without torch's
    warning that the tensor could be written to: training only reads its data (batches are
    gathered copies)."""
    if not torch.is_tensor(X):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "The given NumPy array is not writable", UserWarning)
            X = torch.from_numpy(np.ascontiguousarray(X))
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


class DynamicBinarized(InMemory):
    """Rows of probabilities in [0, 1]; every batch is a fresh binary sample of its rows, x ~
    Bernoulli(p), drawn from the training generator: dynamic binarisation, the protocol of the
    published MNIST log-likelihoods (e.g. Burda et al. 2016), which sees a new binary image
    every epoch. A validation split is binarised once, so its loss is comparable from epoch to
    epoch; ``chunks`` gives the probabilities themselves."""

    def epoch(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        for batch in super().epoch(batch_size, generator):
            yield torch.bernoulli(batch, generator=generator)

    def split(self, fraction: float, generator: torch.Generator) -> tuple[DynamicBinarized, InMemory | None]:
        train, validation = super().split(fraction, generator)
        if validation is None:
            return self, None
        return DynamicBinarized(train.X), InMemory(torch.bernoulli(validation.X, generator=generator))


class SemiSupervised:
    """Every row unlabelled, and some of them also labelled: the two batches of a
    semi-supervised step (a Ladder network's).

    An epoch runs over every row of ``X`` as unlabelled (their labels, if any, unused) in a
    fresh random order; beside each unlabelled batch comes a batch of labelled rows, cycled:
    each pass over the labelled rows is a new permutation, its remainder left out as
    :class:`InMemory` does. A batch is ``(x_labelled, y_labelled, x_unlabelled)``. With fewer
    labelled rows than ``batch_size`` every labelled batch holds all of them (in a new order).

    Parameters
    ----------
    X : Tensor of shape (n, d)
        Every row, on the training device.
    labelled : Tensor of int64, shape (m,)
        Indices of the labelled rows in ``X``.
    y : Tensor of int64, shape (m,)
        Their class indices.
    """

    def __init__(self, X: torch.Tensor, labelled: torch.Tensor, y: torch.Tensor):
        if len(labelled) != len(y) or len(labelled) == 0:
            raise ValueError(f"need one class index per labelled row, and at least one: {len(labelled)}, {len(y)}")
        self.X, self.labelled, self.y = X, labelled, y

    def __len__(self) -> int:
        return len(self.X)

    def steps(self, batch_size: int) -> int:
        return len(self.X) // batch_size

    def labelled_batch_size(self, batch_size: int) -> int:
        return min(batch_size, len(self.labelled))

    def epoch(self, batch_size: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, ...]]:
        perm = permutation(len(self.X), generator, self.X.device)
        labelled = self._labelled_batches(batch_size, generator)
        for i in range(self.steps(batch_size)):
            picks = next(labelled)  # (b_l,) positions in self.labelled
            rows = self.labelled.index_select(0, picks)
            unlabelled = perm[i * batch_size : (i + 1) * batch_size]
            yield self.X.index_select(0, rows), self.y.index_select(0, picks), self.X.index_select(0, unlabelled)

    def _labelled_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """Positions of the labelled rows, batch by batch, a new permutation each pass."""
        size = self.labelled_batch_size(batch_size)
        while True:
            perm = permutation(len(self.labelled), generator, self.X.device)
            for j in range(len(perm) // size):
                yield perm[j * size : (j + 1) * size]

    def split(self, fraction: float, generator: torch.Generator) -> tuple[SemiSupervised, SemiSupervised | None]:
        """Hold out a random ``fraction`` of the labelled rows (at least one) for validation;
        they leave the training rows altogether, so the validation loss is on rows never seen."""
        if fraction == 0:
            return self, None
        m = len(self.labelled)
        n_val = max(1, int(round(fraction * m)))
        if n_val >= m:
            raise ValueError(f"validation_fraction={fraction} leaves no labelled training rows out of {m}")
        perm = permutation(m, generator, self.X.device)
        held, kept = perm[:n_val], perm[n_val:]
        keep = torch.ones(len(self.X), dtype=torch.bool, device=self.X.device)
        keep[self.labelled[held]] = False
        new_index = torch.cumsum(keep, 0) - 1  # row i of X -> its row in X[keep]
        train = SemiSupervised(self.X[keep], new_index[self.labelled[kept]], self.y[kept])
        rows = self.labelled[held]
        validation = SemiSupervised(self.X[rows], torch.arange(n_val, device=self.X.device), self.y[held])
        return train, validation

    def chunks(self, size: int) -> Iterator[tuple[tuple[torch.Tensor, torch.Tensor], int]]:
        """``((labelled rows, their class indices), how many)`` in order, every labelled row once."""
        for start in range(0, len(self.labelled), size):
            rows = self.labelled[start : start + size]
            yield (self.X.index_select(0, rows), self.y[start : start + size]), len(rows)


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

"""Where training runs and how it is seeded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from . import distributed


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU; anything else is passed to torch.
    Under torchrun, ``"cuda"`` (or ``"auto"`` on CUDA) is the process's own GPU, by LOCAL_RANK."""
    if str(device) == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested but CUDA is not available")
    return distributed.local_device(device)


def make_generators(random_state, device: torch.device) -> tuple[torch.Generator, torch.Generator]:
    """(CPU generator for initialisation, device generator for batches and noise), both seeded
    from ``random_state`` (None, an int or a ``numpy.random.RandomState``, as scikit-learn)."""
    from sklearn.utils import check_random_state

    seed = int(check_random_state(random_state).randint(0, 2**31 - 1))
    seed = distributed.world().agree(seed)  # rank 0's: every process initialises and orders alike
    init = torch.Generator().manual_seed(seed)
    train = torch.Generator(device=device).manual_seed(seed + 1)
    return init, train


@contextmanager
def denormals_flushed() -> Iterator[None]:
    """Flush denormal floats (magnitudes below 1.2e-38) to zero while the block runs, then
    switch flushing off again.

    The CPU computes on denormals about 200 times slower than on normal floats. Training makes
    them: weights that L2 decay drives towards zero because their input never varies (MNIST's
    border pixels) become denormal after a few epochs, and so do their Adam moments; the
    784-300 sparse autoencoder's epoch went from 2.3 to 16 s of CPU time at epoch 5. Nothing
    above 1.2e-38 changes. torch sets the mode of the calling thread only: intra-op worker
    threads keep theirs, so with several threads the work they do is not protected.
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)

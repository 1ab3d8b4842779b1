"""Where training runs and how it is seeded."""

from __future__ import annotations

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

"""The failures the command line expects, and the one line it prints for each."""

from __future__ import annotations

import signal
import sys


def expected() -> tuple[type[BaseException], ...]:
    """What a command may raise for a reason the user can act on: bad data or model files,
    bad settings, the file system (permissions, a full disk), a diverging run, a process of a
    torchrun group that stopped, memory."""
    import torch

    from ..datasets import DatasetError
    from ..engine import DistributedError, DivergenceError
    from ..io import ModelFileError

    return (
        DatasetError,
        ModelFileError,
        ValueError,
        OSError,
        DivergenceError,
        DistributedError,
        MemoryError,
        torch.OutOfMemoryError,
    )


def describe(error: BaseException) -> str:
    """``error`` as one line."""
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror}{where}"
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return f"out of memory ({' '.join(str(error).split())[:200]}); try a smaller --batch-size or model"
    return " ".join(str(error).split()) or type(error).__name__


def report(command: str, error: BaseException) -> int:
    """Print the line for ``error`` (an expected failure or an interruption); the exit status."""
    if isinstance(error, KeyboardInterrupt):
        message = getattr(error, "message", "interrupted; nothing was written")
        print(f"aekit {command}: {message}".replace("aekit : ", "aekit: "), file=sys.stderr)
        return 128 + int(getattr(error, "signum", signal.SIGINT))
    print(f"aekit {command}: error: {describe(error)}", file=sys.stderr)
    return 1

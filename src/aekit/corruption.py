"""Training-time input corruption for denoising autoencoders (Vincent et al. 2008/2010).

Corruption only ever happens while training: encoding, reconstructing and scoring new data
use the clean input. Each function takes a ``torch.Generator`` so that runs are reproducible.
"""

from __future__ import annotations

import torch

from .params import InvalidParameterError

CORRUPTIONS = (None, "gaussian", "masking")


def gaussian(x: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x + N(0, std^2)`` noise, elementwise."""
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + std * noise


def masking(x: torch.Tensor, rate: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero each input unit with probability ``rate`` (masking noise; the book's dropout on inputs).

    Unlike dropout, the kept units are not rescaled: the target is the clean input itself.
    """
    keep = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) >= rate
    return x * keep


def validate(kind: str | None, level: float) -> None:
    """The rule between the two settings: a masking rate must stay below 1 (at 1 every input
    would be zeroed). Each setting's own range is its parameter's (:mod:`aekit.objectives`)."""
    if kind == "masking" and not level < 1:
        raise InvalidParameterError(
            f"corruption_level={level!r} is not allowed with corruption='masking': a drop rate must lie in [0, 1)"
        )


def corrupt(x: torch.Tensor, kind: str | None, level: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply the named corruption (``None`` returns ``x`` unchanged)."""
    if kind is None or level == 0:
        return x
    if kind == "gaussian":
        return gaussian(x, level, generator)
    if kind == "masking":
        return masking(x, level, generator)
    raise ValueError(f"unknown corruption {kind!r}; choose one of {CORRUPTIONS}")

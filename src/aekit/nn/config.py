"""``to_dict`` / ``from_dict`` for aekit's configuration dataclasses (STYLE 6)."""
from __future__ import annotations

import dataclasses


class DictConfig:
    """Mixin for a dataclass: JSON-ready ``to_dict`` (tuples become lists) and a strict
    ``from_dict`` in which an unknown key is an error, not silently dropped."""

    def to_dict(self) -> dict:
        return {name: list(v) if isinstance(v, tuple) else v
                for name, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict):
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
        return cls(**d)


class EncoderLayers:
    """Mixin for a configuration with ``n_inputs``, ``hidden_sizes``, ``activation`` and
    ``code_activation``: the encoder that autoencoders and classifiers share."""

    def _validate_encoder(self, *more_activations: str) -> None:
        from .layers import ACTIVATIONS

        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        if int(self.n_inputs) < 1 or not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"sizes must be positive, got n_inputs={self.n_inputs}, "
                             f"hidden_sizes={self.hidden_sizes}")
        for name in (self.activation, self.code_activation or "linear", *more_activations):
            if name not in ACTIVATIONS:
                raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")

    @property
    def depth(self) -> int:
        return len(self.hidden_sizes)

    def layer_activation(self, k: int) -> str:
        """Activation of encoder (hidden) layer ``k``, 1-based: the last one may differ."""
        if k == self.depth and self.code_activation is not None:
            return self.code_activation
        return self.activation

"""``to_dict`` / ``from_dict`` for aekit's configuration dataclasses."""

from __future__ import annotations

import dataclasses


class DictConfig:
    """Mixin for a dataclass: JSON-ready ``to_dict`` (tuples become lists) and a strict
    ``from_dict`` in which an unknown key is an error, not silently dropped."""

    def to_dict(self) -> dict:
        return {name: list(v) if isinstance(v, tuple) else v for name, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict):
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
        return cls(**d)

"""CustomAutoencoder: your own encoder and decoder modules behind aekit's autoencoder interface.

The encoder takes a batch shaped as ``input_shape`` says (rows ``(B, n_features)``, or images
``(B, C, H, W)``); whatever it outputs, flattened, is the code. The decoder takes the code in
the encoder's output shape and must give back the encoder's input shape; with the binary
cross-entropy loss it outputs logits (the sigmoid is applied here).

A part whose class is a registered family (:data:`aekit.nn.FAMILIES`: the class is built as
``cls(config, generator)`` and has a ``config`` with ``to_dict``) is recorded by its family and
configuration, so a saved model rebuilds it. Any other part is recorded by its class's name
only, for the error message: that name is never imported, and loading such a model needs the
module passed in (``parts``).
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..params import Constraint, Param
from .activations import make_activation
from .config import DictConfig
from .fused import reconstruction_value


class Part(Constraint):
    """None, a ``torch.nn.Module``, or a factory (a class, function or partial called with no
    arguments) that returns one."""

    description = "None, a torch.nn.Module, or a callable that returns one (a class or a function)"
    type_name = "torch.nn.Module, callable or None"

    def allows(self, value) -> bool:
        return value is None or isinstance(value, nn.Module) or callable(value)


_PART_DOC = (
    "A module instance is copied and the copy trains from the instance's current weights (fit "
    "never changes it); a factory is called in fit with torch's random generator seeded from "
    "random_state, so every fit starts from the same fresh weights. Given with {other}, it "
    "replaces the module architecture would build (hidden_layer_sizes, activation, tied, "
    "channels, kernel_size and batch_norm are then unused); training is end-to-end, with every "
    "other training setting. A lambda cannot be pickled: use a class or functools.partial."
)


def _part_param(role: str, what: str, other: str) -> Param:
    return Param(
        Part(),
        f"Your own {role}: a torch.nn.Module, or a callable that returns one. {what} " + _PART_DOC.format(other=other),
        flags=(),
    )


ENCODER = _part_param(
    "encoder",
    "It receives a batch of rows (B, n_features), or of images (B, C, H, W) when the model has an "
    "image shape; its output, flattened, is the code.",
    "decoder",
)
DECODER = _part_param(
    "decoder",
    "It receives codes in the encoder's output shape and must return the encoder's input shape "
    "(logits with loss='bce').",
    "encoder",
)


@dataclass
class CustomConfig(DictConfig):
    """What a :class:`CustomAutoencoder` needs besides its parts' weights.

    ``encoder`` and ``decoder`` are ``{"family": name, "config": {...}}`` for a part that can
    be rebuilt, else ``{"class": "package.module.Class"}``.
    """

    input_shape: tuple[int, ...]
    code_shape: tuple[int, ...]
    output_activation: str
    encoder: dict
    decoder: dict

    def __post_init__(self):
        self.input_shape, self.code_shape = tuple(self.input_shape), tuple(self.code_shape)

    @property
    def n_inputs(self) -> int:
        return math.prod(self.input_shape)


def describe_part(module: nn.Module) -> dict:
    """How a config records a part: by family and configuration, or by class name."""
    from .families import FAMILIES  # the registry imports this module

    for name, family in FAMILIES.items():
        if type(module) is family.module and hasattr(module, "config"):
            return {"family": name, "config": module.config.to_dict()}
    return {"class": f"{type(module).__module__}.{type(module).__qualname__}"}


def make_part(value, generator: torch.Generator | None = None) -> nn.Module:
    """The module to train for an ``encoder`` or ``decoder`` parameter: a copy of an instance,
    or a factory's result made under torch's random generator seeded from ``generator``."""
    if isinstance(value, nn.Module):
        return copy.deepcopy(value)
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator)) if generator is not None else None
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        module = value()
    if not isinstance(module, nn.Module):
        raise TypeError(f"the factory {value!r} returned a {type(module).__name__}, not a torch.nn.Module")
    return module


def _rebuild(spec: dict, given, role: str, generator) -> nn.Module:
    if given is not None:
        return make_part(given, generator)
    if "family" in spec:
        from .families import FAMILIES

        family = FAMILIES[spec["family"]]
        return family.module(family.config.from_dict(spec["config"]), generator)
    raise ValueError(
        f"the model's {role} is your own module ({spec.get('class', 'unknown class')}), which cannot be "
        f"rebuilt from its configuration: pass it, e.g. aekit.io.load(path, modules={{'{role}': ...}})"
    )


class CustomAutoencoder(nn.Module):
    """Your encoder and decoder (see the module's docstring) on flat rows.

    Parameters
    ----------
    config : CustomConfig
    generator : torch.Generator, optional
        Seeds a part rebuilt from its family, or made by a factory.
    parts : dict, optional
        ``{"encoder": module or factory, "decoder": ...}``: the parts to use (copied) in place
        of rebuilding them; required for parts that are not registered families.
    """

    def __init__(self, config: CustomConfig, generator: torch.Generator | None = None, *, parts: dict | None = None):
        super().__init__()
        parts = parts or {}
        self.config = config
        self.encoder = _rebuild(config.encoder, parts.get("encoder"), "encoder", generator)
        self.decoder = _rebuild(config.decoder, parts.get("decoder"), "decoder", generator)
        self.output = make_activation(config.output_activation)

    @classmethod
    def from_parts(cls, encoder, decoder, input_shape, output_activation: str, generator=None) -> CustomAutoencoder:
        """Build from the ``encoder`` and ``decoder`` parameters, after checking on a batch of
        two zero rows that the decoder gives back the encoder's input shape."""
        encoder, decoder = make_part(encoder, generator), make_part(decoder, generator)
        code_shape = _probe(encoder, decoder, tuple(input_shape))
        config = CustomConfig(
            input_shape=tuple(input_shape),
            code_shape=code_shape,
            output_activation=output_activation,
            encoder=describe_part(encoder),
            decoder=describe_part(decoder),
        )
        return cls(config, parts={"encoder": encoder, "decoder": decoder})

    @property
    def depth(self) -> int:
        return 1

    @property
    def n_codes(self) -> int:
        return math.prod(self.config.code_shape)

    def encode(self, x: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        """The flattened output of your encoder (``depth`` 0 is ``x``; 1 or None the code)."""
        if depth == 0:
            return x
        return self.encoder(x.view(len(x), *self.config.input_shape)).flatten(1)  # (B, n) -> (B, n_codes)

    def decode(self, z: torch.Tensor, *, logits: bool = False) -> torch.Tensor:
        out = self.decoder(z.view(len(z), *self.config.code_shape)).flatten(1)  # (B, n_codes) -> (B, n)
        return out if logits else self.output(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def reconstruction_loss(self, x: torch.Tensor, target: torch.Tensor, loss: str = "mse") -> torch.Tensor:
        return reconstruction_value(self.decode(self.encode(x), logits=loss == "bce"), target, loss)

    def criterion(self, loss: str = "mse") -> Callable:
        """``criterion(x, target)``: :meth:`reconstruction_loss` by ``loss``, what training minimises."""
        return functools.partial(self.reconstruction_loss, loss=loss)

    def weight_matrices(self) -> list[nn.Parameter]:
        """The parameters of two or more dimensions (weights and kernels, not biases or scales)."""
        return [p for p in self.parameters() if p.dim() >= 2]


@torch.no_grad()
def _probe(encoder: nn.Module, decoder: nn.Module, input_shape: tuple) -> tuple:
    """The encoder's output shape for one row; a clear error when the decoder does not give
    the input's shape back."""
    x = torch.zeros(2, *input_shape, dtype=next(encoder.parameters(), torch.zeros(())).dtype)
    modes = encoder.training, decoder.training
    encoder.eval()
    decoder.eval()
    try:
        z = encoder(x)
        out = decoder(z)
    finally:
        encoder.train(modes[0])
        decoder.train(modes[1])
    if tuple(out.shape) != tuple(x.shape):
        raise ValueError(
            f"the decoder's output has shape {tuple(out.shape)} for an input batch of shape {tuple(x.shape)}: "
            "the decoder must give back the shape of the encoder's input"
        )
    return tuple(z.shape[1:])

"""ConvAutoencoder: strided convolutions down, dense layers to a coding layer, and the mirror image
back up (transposed convolutions), tied or untied.

The module takes and returns flat rows, ``(B, channels * height * width)``, as every aekit
autoencoder does, so the engine, the corruptions and the losses treat it like the dense family;
it reshapes to images inside. Layer k is one block of the encoder (a convolution, or a dense
layer after them); its mirror maps the block's output back to its input, so greedy layer-wise
training (method "phases") applies as it does to the dense stack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..params import Constraint, Flag, Interval, Maybe, Options, Param, Sizes
from .activations import ACTIVATIONS, make_activation
from .config import DictConfig
from .encoder import he_normal_
from .fused import reconstruction_value
from .layers import TiedLinear
from .mirrored import MirroredLayers

STRIDE = 2  # every convolution halves the height and the width (rounding up)


class ImageShape(Constraint):
    """``(channels, height, width)`` or ``(height, width)`` (one channel), positive ints;
    ``"1,28,28"`` on the command line."""

    description = "a tuple (channels, height, width) or (height, width) of positive ints"
    type_name, placeholder = "tuple of int", "C,H,W"

    def allows(self, value) -> bool:
        return (
            isinstance(value, (tuple, list)) and len(value) in (2, 3) and all(Interval(int, 1).allows(v) for v in value)
        )

    def parse(self, text: str):
        return tuple(int(v) for v in text.split(","))


class OddSize(Interval):
    """An odd int >= 1: a kernel with a centre, so padding ``k // 2`` keeps the grid aligned."""

    description = "an odd int >= 1"

    def __init__(self):
        super().__init__(int, 1)

    def allows(self, value) -> bool:
        return super().allows(value) and value % 2 == 1

    def describe(self) -> str:
        return self.description


IMAGE_SHAPE = Param(
    Maybe(ImageShape()),
    "Shape of one input image, (channels, height, width) or (height, width), for "
    "architecture='conv'; flat rows are reshaped to it. None: taken from 4-D (or 3-D) input "
    "arrays, or from the data set on the command line.",
)
CHANNELS = Param(
    Sizes(),
    "Output channels of each convolution (architecture='conv'), bottom first; each one halves "
    "the height and width (stride 2), and the dense layers of hidden_layer_sizes follow.",
)
KERNEL_SIZE = Param(OddSize(), "Height and width of every convolution kernel (architecture='conv').")
BATCH_NORM = Param(Flag(), "Batch normalisation after every convolution but the output layer (architecture='conv').")


def as_image_shape(shape) -> tuple[int, int, int]:
    """``(channels, height, width)``: a (height, width) shape has one channel."""
    shape = tuple(int(s) for s in shape)
    return (1, *shape) if len(shape) == 2 else shape


def grid_sizes(image_shape, n_convolutions: int) -> list[tuple[int, int]]:
    """The (height, width) of the input of each convolution and of the last one's output.

    Raises ``ValueError`` when a convolution would get a side of 1, which a stride cannot
    reduce: the decoder could not mirror it.
    """
    sizes = [tuple(as_image_shape(image_shape)[1:])]
    for k in range(1, n_convolutions + 1):
        if min(sizes[-1]) < 2:
            path = " -> ".join(f"{h}x{w}" for h, w in sizes)
            raise ValueError(
                f"images of {sizes[0][0]}x{sizes[0][1]} cannot be reduced by {n_convolutions} stride-{STRIDE} "
                f"convolutions: {path} leaves convolution {k} a side of 1 to reduce; use at most {k - 1} "
                "channels entries, or larger images"
            )
        sizes.append(tuple(math.ceil(s / STRIDE) for s in sizes[-1]))
    return sizes


@dataclass
class ConvConfig(DictConfig):
    """Architecture of a :class:`ConvAutoencoder`.

    ``channels=(32, 64)`` and ``hidden_sizes=(32,)`` on ``image_shape=(1, 28, 28)`` give
    1x28x28 -> 32x14x14 -> 64x7x7 -> 32 codes, and back.
    """

    image_shape: tuple[int, int, int]
    channels: tuple[int, ...]
    hidden_sizes: tuple[int, ...]
    kernel_size: int
    batch_norm: bool
    activation: str
    output_activation: str
    tied: bool
    code_activation: str | None

    def __post_init__(self):
        self.image_shape = as_image_shape(self.image_shape)
        self.channels, self.hidden_sizes = _sizes(self.channels), _sizes(self.hidden_sizes)
        ImageShape().check("image_shape", self.image_shape)
        Sizes().check("channels", self.channels)
        Sizes().check("hidden_sizes", self.hidden_sizes)
        KERNEL_SIZE.constraint.check("kernel_size", self.kernel_size)
        Flag().check("batch_norm", self.batch_norm)
        Flag().check("tied", self.tied)
        for name in (self.activation, self.output_activation, self.code_activation or "linear"):
            Options(*ACTIVATIONS).check("activation", name)
        grid_sizes(self.image_shape, len(self.channels))

    @property
    def n_inputs(self) -> int:
        return math.prod(self.image_shape)

    @property
    def n_convolutions(self) -> int:
        return len(self.channels)

    @property
    def depth(self) -> int:
        return len(self.channels) + len(self.hidden_sizes)

    @property
    def sizes(self) -> tuple[int, ...]:
        """The flat width of the input of the first dense layer, then the dense widths."""
        h, w = grid_sizes(self.image_shape, self.n_convolutions)[-1]
        return (self.channels[-1] * h * w, *self.hidden_sizes)

    def layer_activation(self, k: int) -> str:
        """Activation of encoder layer ``k`` (1-based, convolutions first)."""
        if k == self.depth and self.code_activation is not None:
            return self.code_activation
        return self.activation

    def mirror_activation(self, k: int) -> str:
        """Activation of the mirror of layer ``k``: it outputs what layer k-1 output."""
        return self.output_activation if k == 1 else self.layer_activation(k - 1)


def _sizes(value) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _he_normal(weight: torch.Tensor, fan_in: float, generator: torch.Generator | None) -> None:
    nn.init.normal_(weight, 0.0, math.sqrt(2.0 / fan_in), generator=generator)


class TiedConvTranspose2d(nn.Module):
    """The mirror of a convolution whose kernel is that convolution's own: ``conv_transpose2d``
    with the encoder's weight, a bias of its own, and the output padding that restores the
    encoder's input size."""

    def __init__(self, conv: nn.Conv2d, output_padding: tuple[int, int]):
        super().__init__()
        object.__setattr__(self, "conv", conv)  # a plain attribute: the weight is the encoder's
        self.bias = nn.Parameter(torch.zeros(conv.in_channels))
        self.output_padding = output_padding

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        c = self.conv
        return F.conv_transpose2d(h, c.weight, self.bias, c.stride, c.padding, self.output_padding)


class ConvAutoencoder(MirroredLayers, nn.Module):
    """Convolutional autoencoder on flat rows (see the module's docstring).

    ``encoder[k-1]`` is layer k: a convolution block (convolution, optional batch norm,
    activation) for ``k <= n_convolutions``, then dense layers. ``decoders[k-1]`` is its
    mirror: a transposed convolution (or dense layer) with the mirrored activation.
    ``decode`` runs the mirrors from the coding layer down, giving flat rows.
    """

    def __init__(self, config: ConvConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        self.encoder = nn.ModuleList(self._encoder_block(k) for k in range(1, config.depth + 1))
        self.decoders = nn.ModuleList(self._decoder_block(k) for k in range(1, config.depth + 1))
        self.output = make_activation(config.output_activation)  # kept apart: BCE wants logits
        self.reset_parameters(generator)

    # -- building ---------------------------------------------------------------------------
    def _channels_in(self, k: int) -> int:
        return self.config.image_shape[0] if k == 1 else self.config.channels[k - 2]

    def _encoder_block(self, k: int) -> nn.Sequential:
        cfg, n_conv = self.config, self.config.n_convolutions
        act = make_activation(cfg.layer_activation(k))
        if k > n_conv:  # a dense layer; the first flattens the last feature maps
            j = k - n_conv
            return nn.Sequential(nn.Flatten(), nn.Linear(cfg.sizes[j - 1], cfg.sizes[j]), act)
        conv = nn.Conv2d(self._channels_in(k), cfg.channels[k - 1], cfg.kernel_size, STRIDE, cfg.kernel_size // 2)
        first = [nn.Unflatten(1, cfg.image_shape)] if k == 1 else []  # flat rows in
        norm = [nn.BatchNorm2d(cfg.channels[k - 1])] if cfg.batch_norm else []
        return nn.Sequential(*first, conv, *norm, act)

    def _decoder_block(self, k: int) -> nn.Sequential:
        cfg, n_conv = self.config, self.config.n_convolutions
        act = make_activation(cfg.mirror_activation(k))
        encoder = self._weighted(k)
        if k > n_conv:
            linear = TiedLinear(encoder) if cfg.tied else nn.Linear(encoder.out_features, encoder.in_features)
            if k - n_conv > 1:
                return nn.Sequential(linear, act)
            h, w = grid_sizes(cfg.image_shape, n_conv)[-1]
            return nn.Sequential(linear, act, nn.Unflatten(1, (cfg.channels[-1], h, w)))
        (h_in, w_in), (h_out, w_out) = grid_sizes(cfg.image_shape, n_conv)[k - 1 : k + 1]
        # the transposed convolution gives 2 * out - 1 for an odd kernel; pad back to the input's
        padding = (h_in - (STRIDE * h_out - 1), w_in - (STRIDE * w_out - 1))
        if cfg.tied:
            up = TiedConvTranspose2d(encoder, padding)
        else:
            up = nn.ConvTranspose2d(
                encoder.out_channels, encoder.in_channels, cfg.kernel_size, STRIDE, cfg.kernel_size // 2, padding
            )
        if k == 1:  # flat rows out; the output activation is self.output
            return nn.Sequential(up, nn.Flatten())
        norm = [nn.BatchNorm2d(encoder.in_channels)] if cfg.batch_norm else []
        return nn.Sequential(up, *norm, act)

    def _weighted(self, k: int) -> nn.Conv2d | nn.Linear:
        """The convolution or linear layer of encoder layer ``k``."""
        return next(m for m in self.encoder[k - 1] if isinstance(m, (nn.Conv2d, nn.Linear)))

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """He-initialised weights (encoder first, from the same stream), zero biases, unit
        batch-norm scales."""
        k = self.config.kernel_size
        for module in [*self.encoder.modules(), *self.decoders.modules()]:
            if isinstance(module, nn.Linear):
                he_normal_(module.weight, generator)
            elif isinstance(module, nn.Conv2d):
                _he_normal(module.weight, module.in_channels * k * k, generator)
            elif isinstance(module, nn.ConvTranspose2d):
                # an output pixel of a stride-2 transposed convolution sums about k*k/4 taps per channel
                _he_normal(module.weight, module.in_channels * k * k / STRIDE**2, generator)
            if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, TiedLinear, TiedConvTranspose2d)):
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()

    # -- the autoencoder's interface -----------------------------------------------------------
    def encode(self, x: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        """Output of encoder layer ``depth`` (default: the coding layer; 0 is ``x``): images
        (B, C, H, W) for a convolution, rows for a dense layer."""
        for k in range(1, (self.depth if depth is None else depth) + 1):
            x = self.encode_layer(x, k)  # (B, 784) -> (B, 32, 14, 14) -> ... -> (B, n_codes)
        return x

    def reconstruction_loss(
        self, x: torch.Tensor, target: torch.Tensor, loss: str = "mse", layer: int | None = None
    ) -> torch.Tensor:
        """Mean ``loss`` of reconstructing ``target`` from ``x`` through the whole model (or,
        for ``layer=k``, encoder layer k and its mirror alone)."""
        logits = loss == "bce"
        if layer is None:
            out = self.decode(self.encode(x), logits=logits)
        else:
            out = self.decode_layer(self.encode_layer(x, layer), layer, logits=logits)
        return reconstruction_value(out, target, loss)

    def weight_matrices(self) -> list[nn.Parameter]:
        """The weights L2 applies to: every convolution kernel and weight matrix that is a
        parameter (tied mirrors own none; biases and batch-norm scales are not regularised)."""
        kinds = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
        return [m.weight for m in self.modules() if isinstance(m, kinds)]

    # -- the views a layer-wise phase needs ------------------------------------------------
    def encode_layer(self, h: torch.Tensor, k: int) -> torch.Tensor:
        """Encoder layer ``k`` alone (1-based): output of layer k-1 -> output of layer k."""
        return self.encoder[k - 1](h)

    def decode_layer(self, h: torch.Tensor, k: int, *, logits: bool = False) -> torch.Tensor:
        """The mirror of layer ``k``: output of layer k -> reconstruction of layer k-1's output
        (flat rows for k = 1); ``logits`` leaves out the output activation."""
        out = self.decoders[k - 1](h)
        return self.output(out) if k == 1 and not logits else out

    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        """Trainable parameters of encoder layer ``k`` and its mirror (tied: one kernel)."""
        return [*self.encoder[k - 1].parameters(), *self.decoders[k - 1].parameters()]

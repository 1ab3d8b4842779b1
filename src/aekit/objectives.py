"""The functions the engine minimises for an autoencoder: reconstruction of clean inputs from
(optionally corrupted) inputs, plus weight decay and penalties on the codes (sparsity,
contraction). Shared by every training mode."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch

from . import corruption as corruption_
from . import losses
from .engine.fused_step import ChainObjective
from .losses import RECONSTRUCTION_LOSSES, l2_penalty, reconstruction
from .nn.activations import activation
from .nn.fused import ChainCriterion
from .params import Interval, Maybe, Options, Param

LOSS = Param(
    Options(*RECONSTRUCTION_LOSSES),
    "Reconstruction loss: 'mse', or 'bce' (binary cross-entropy: a sigmoid on the output, inputs must lie in [0, 1]).",
)
L2 = Param(
    Interval(float, 0),
    "Weight of sum(W**2)/2 over the weight matrices that are parameters (not biases, not tied decoder weights).",
)
CORRUPTION = Param(
    Options(*corruption_.CORRUPTIONS),
    "Training-time input noise (a denoising autoencoder): None, 'gaussian' or "
    "'masking' (each input unit zeroed with probability corruption_level). "
    "Never applied outside training.",
)
CORRUPTION_LEVEL = Param(
    Interval(float, 0), "Standard deviation of 'gaussian' corruption, drop rate of 'masking' (below 1)."
)
SPARSITY_TARGET = Param(
    Maybe(Interval(float, 0, 1, closed="neither")),
    "Target mean activation rho of every coding unit: adds sparsity_weight times the KL "
    "divergence between rho and each unit's mean activation over the batch, summed over units "
    "(Ng 2011; needs sigmoid codings). None: no sparsity penalty.",
)
SPARSITY_WEIGHT = Param(Interval(float, 0), "Weight of the KL sparsity penalty (used when sparsity_target is set).")
ACTIVITY_L1 = Param(
    Interval(float, 0),
    "Weight of an L1 penalty on the codes (mean over rows of sum |h|): sparse codes "
    "without a target rate or sigmoid units; 0: none.",
)
CONTRACTIVE_WEIGHT = Param(
    Interval(float, 0),
    "Weight of the squared Frobenius norm of the encoder's Jacobian dh/dx, mean over rows "
    "(a contractive autoencoder, Rifai et al. 2011): exact for one layer, an unbiased "
    "one-projection estimate through deeper encoders; 0: none.",
)


@dataclass(frozen=True)
class Objective:
    """What an autoencoder minimises: its reconstruction ``loss`` ("mse" or "bce"), the L2
    weight on its weight matrices, the training-time input ``corruption`` (None, "gaussian" or
    "masking") at ``corruption_level``, and the ``penalties`` on its codes. Values come checked
    from the estimator."""

    loss: str
    l2: float
    corruption: str | None
    corruption_level: float
    penalties: CodePenalties


@dataclass(frozen=True)
class CodePenalties:
    """Penalties on the codes of the layer being trained (the coding layer end-to-end, each
    phase's layer in layer-wise training), each weighted and recorded as its own part of the
    history: ``sparsity`` (KL to ``sparsity_target``, when set), ``activity_l1`` and
    ``contractive``. Values come checked from the estimator."""

    sparsity_target: float | None
    sparsity_weight: float
    activity_l1: float
    contractive_weight: float

    @property
    def active(self) -> bool:
        return self.sparsity_target is not None or self.activity_l1 > 0 or self.contractive_weight > 0

    def parts(self, inputs: torch.Tensor, codes: torch.Tensor, coding: Coding) -> dict[str, torch.Tensor]:
        """The weighted penalties of ``codes``, computed from ``inputs`` by ``coding.encode``."""
        parts = {}
        if self.sparsity_target is not None:
            parts["sparsity"] = self.sparsity_weight * losses.kl_sparsity(codes, self.sparsity_target)
        if self.activity_l1:
            parts["activity_l1"] = self.activity_l1 * losses.l1_activity(codes)
        if self.contractive_weight:
            parts["contractive"] = self.contractive_weight * coding.jacobian_norm(inputs, codes)
        return parts


NO_PENALTIES = CodePenalties(None, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Coding:
    """An autoencoder (or one layer-wise phase of it) as ``encode`` then ``decode``, for the
    objectives that need its codes. ``jacobian_norm(inputs, codes)`` is the mean over rows of
    ||dh/dx||_F^2; when ``needs_input_grad`` it differentiates through ``inputs``, which must
    then require gradients when encoded."""

    encode: Callable[[torch.Tensor], torch.Tensor]
    decode: Callable[[torch.Tensor], torch.Tensor]
    jacobian_norm: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    needs_input_grad: bool


def dense_coding(module, layer: int | None, *, logits: bool, generator: torch.Generator | None) -> Coding:
    """The :class:`Coding` of a stacked autoencoder (``layer`` None) or of its layer ``layer``
    and that layer's mirror. Where one dense layer makes the codes, the Jacobian norm is the
    closed form (:func:`aekit.losses.contractive_dense`); through deeper encoders it is the
    one-projection estimate (:func:`aekit.losses.jacobian_frobenius_estimate`), as it is for any
    other module with ``encode_layer`` and ``decode_layer`` (a convolutional stack)."""
    if layer is None:
        encode, decode = module.encode, partial(module.decode, logits=logits)
        coding_layer = 1 if module.depth == 1 else None  # the closed form needs a single layer
    else:
        encode, decode = partial(module.encode_layer, k=layer), partial(module.decode_layer, k=layer, logits=logits)
        coding_layer = layer
    dense_layers = getattr(module.encoder, "layers", None)  # None: not a dense stack (e.g. convolutions)
    if coding_layer is None or dense_layers is None:
        return Coding(encode, decode, partial(losses.jacobian_frobenius_estimate, generator=generator), True)
    weight, name = dense_layers[coding_layer - 1].weight, module.config.layer_activation(coding_layer)

    def closed_form(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        derivative = activation(name).backward(torch.ones_like(h), h)  # s'(z), from the output
        return losses.contractive_dense(h, weight, derivative)

    return Coding(encode, decode, closed_form, False)


def reconstruction_objective(
    forward: Callable[[torch.Tensor], torch.Tensor],
    weights: Sequence[torch.Tensor] = (),
    *,
    loss: str = "mse",
    l2: float = 0.0,
    corruption: str | None = None,
    corruption_level: float = 0.0,
    generator: torch.Generator | None = None,
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    coding: Coding | None = None,
    penalties: CodePenalties = NO_PENALTIES,
):
    """Build ``loss_fn(batch) -> (loss, parts)`` for :func:`aekit.engine.fit`.

    ``forward`` maps an input batch to its reconstruction (its logits when ``loss="bce"``).
    The input is corrupted before ``forward`` while the target stays the clean batch: the
    denoising criterion of Vincent et al. (2008).

    ``weights`` and ``l2`` put ``l2 * sum(||W||^2) / 2`` into the graph: the plain formulation,
    kept as the reference that tests compare against. Training passes ``l2`` to
    :func:`aekit.engine.fit` instead, which applies the same gradient inside the optimizer.

    ``criterion(noisy, clean) -> loss``, when given, replaces ``reconstruction(forward(noisy),
    clean)``: the fused form of the same loss (:meth:`StackedAutoencoder.reconstruction_loss`).
    When it is a stacked autoencoder's :class:`~aekit.nn.fused.ChainCriterion` and nothing is
    added to it, the function is a :class:`~aekit.engine.fused_step.ChainObjective`, which a
    compiled step runs as one kernel with the optimizer's update.

    With active ``penalties`` the codes are needed, which the fused loss never exposes: the
    reconstruction is then ``coding.decode(coding.encode(noisy))`` by plain autograd, and each
    penalty of the codes is added and recorded as a part of its own.
    """
    weights = list(weights)

    def inputs(batch: torch.Tensor) -> torch.Tensor:
        return corruption_.corrupt(batch, corruption, corruption_level, generator)

    def loss_fn(batch: torch.Tensor):
        noisy = inputs(batch)
        if penalties.active:
            rec, parts = _penalized_reconstruction(noisy, batch, loss, coding, penalties)
        else:
            rec = criterion(noisy, batch) if criterion else reconstruction(forward(noisy), batch, loss)
            parts = {}
        if l2:
            parts["l2"] = l2 * l2_penalty(weights)
        total = rec + sum(parts.values()) if parts else rec
        return total, {"loss": total, "reconstruction": rec, **parts}

    if isinstance(criterion, ChainCriterion) and not (penalties.active or l2):
        return ChainObjective(loss_fn, criterion, inputs)  # a compiled step may fuse it with Adam
    return loss_fn


def _penalized_reconstruction(noisy, clean, loss: str, coding: Coding, penalties: CodePenalties):
    """(reconstruction loss, {penalty name: weighted value}) of one batch through ``coding``;
    the penalties see the codes of the input the encoder gets, the corrupted one."""
    if penalties.contractive_weight and coding.needs_input_grad:
        noisy = noisy.detach().requires_grad_(True)  # the Jacobian is taken with respect to it
    codes = coding.encode(noisy)  # (B, n_inputs) -> (B, n_codes)
    rec = reconstruction(coding.decode(codes), clean, loss)
    return rec, penalties.parts(noisy, codes, coding)


def clean_reconstruction(forward: Callable[[torch.Tensor], torch.Tensor], loss: str = "mse"):
    """``eval_fn(batch) -> loss`` without corruption or penalty: the validation criterion."""
    return lambda batch: reconstruction(forward(batch), batch, loss)

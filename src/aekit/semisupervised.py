"""Training a Ladder network (:class:`aekit.nn.LadderNetwork`): its objective, one call of the
engine over labelled and unlabelled batches, and the batch statistics inference uses.

Each step (Rasmus et al. 2015, Algorithm 1) runs the corrupted encoder on the labelled and the
unlabelled batch and the clean encoder on the unlabelled batch; the cost is the cross-entropy
of the corrupted pass on the labelled rows plus, on the unlabelled rows, each decoded layer's
denoising cost weighted by its lambda. As in the authors' code, the gradient also flows through
the clean pass (its normalised pre-activations and batch statistics are the targets).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from . import engine
from .nn.ladder import DECODERS, LadderNetwork, denoising_cost
from .params import AnyOf, Interval, Options, Param, PerLayer

NOISE_STD = Param(
    Interval(float, 0),
    "Standard deviation of the Gaussian noise the corrupted pass adds to the input and to "
    "every layer's batch-normalised pre-activation (Rasmus et al. 2015: 0.3). 0: no noise.",
)
DECODER = Param(
    Options(*DECODERS),
    "'full': the decoder reconstructs every layer, input included, each with its denoising "
    "cost; 'gamma': the top layer only (the Gamma model: cheaper, weaker with few labels).",
)
DENOISING_COSTS = Param(
    AnyOf(Options("auto"), PerLayer(Interval(float, 0))),
    "Weights lambda_l of the layers' denoising costs: one per layer, input first and output "
    "layer last (len(hidden_layer_sizes) + 2 values), or one for all; with decoder='gamma' one "
    "value, the top layer's. 'auto': the paper's choice for MNIST, 1000 for the input, 10 for "
    "the first hidden layer, 0.1 above; 1 for the Gamma model's top layer (the authors' tuned "
    "values ranged from 0.5 to 10). All 0: the network trains on its labelled rows alone, "
    "noise and batch normalisation kept (the decoder does not run).",
)

PAPER_COSTS = (1000.0, 10.0, 0.1)  # input, first hidden layer, every layer above
GAMMA_COST = 1.0


def layer_costs(denoising_costs, depth: int, decoder: str) -> dict[int, float]:
    """``{layer: lambda}`` for the decoded layers of a network of ``depth`` weight layers,
    from a ``denoising_costs`` parameter (checked against its table)."""
    if decoder == "gamma":
        return {depth: GAMMA_COST if denoising_costs == "auto" else float(denoising_costs)}
    if denoising_costs == "auto":
        return {k: PAPER_COSTS[min(k, 2)] for k in range(depth + 1)}
    if isinstance(denoising_costs, (tuple, list)):
        return {k: float(c) for k, c in enumerate(denoising_costs)}
    return {k: float(denoising_costs) for k in range(depth + 1)}


def gaussian_noise(std: float, generator: torch.Generator) -> Callable[[torch.Tensor], torch.Tensor]:
    """``z -> z + N(0, std^2)``, drawn from ``generator``."""

    def noise(z: torch.Tensor) -> torch.Tensor:
        return z + std * torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)

    return noise


def ladder_objective(module: LadderNetwork, costs: dict[int, float], noise: Callable | None):
    """``loss_fn((x_labelled, y_labelled, x_unlabelled)) -> (loss, parts)`` for
    :func:`aekit.engine.fit`.

    ``parts`` holds the total ``loss``, the ``cross_entropy`` and each decoded layer's
    ``denoising_<l>`` cost before its weight. With every weight 0 the decoder does not run and
    the clean pass only updates the inference statistics.
    """
    denoise = any(costs.values())

    def loss_fn(batch):
        x_l, y_l, x_u = batch
        n_l = len(x_l)
        corrupted = module.encode([x_l, x_u], noise)
        ce = F.cross_entropy(corrupted.logits[:n_l], y_l)  # the corrupted pass's, as the paper's
        with torch.set_grad_enabled(denoise and torch.is_grad_enabled()):
            clean = module.encode([x_u])
        module.update_statistics(clean)
        loss, parts = ce, {"cross_entropy": ce}
        if denoise:
            top = torch.softmax(corrupted.logits[n_l:], dim=1)
            estimates = module.decode([z[n_l:] for z in corrupted.z], top)
            for k, z_hat in estimates.items():
                stats = clean.stats[k][0] if k else ()
                parts[f"denoising_{k}"] = cost = denoising_cost(z_hat, clean.z[k], *stats)
                loss = loss + costs[k] * cost
        parts["loss"] = loss
        return loss, parts

    return loss_fn


def clean_cross_entropy(module: LadderNetwork):
    """``eval_fn((x, y)) -> loss``: the validation criterion, the clean network's cross-entropy
    with the inference statistics."""
    return lambda batch: F.cross_entropy(module(batch[0]), batch[1])


@torch.no_grad()
def calibrate(module: LadderNetwork, X: torch.Tensor, batch_size: int = 4096) -> None:
    """Set the inference statistics to the exact mean and variance of each layer's
    pre-activation over the rows of ``X``, layer by layer (each layer's from the rows as the
    calibrated layers below transform them), as the authors' final evaluation does."""
    for k in range(1, module.depth + 1):
        total = total_sq = 0.0
        for start in range(0, len(X), batch_size):
            pre = module.weights[k - 1](module.hidden(X[start : start + batch_size], k - 1)).double()
            total = total + pre.sum(0)
            total_sq = total_sq + pre.pow(2).sum(0)
        mean = total / len(X)
        stats = module.statistics[k - 1]
        stats.mean.copy_(mean)
        stats.var.copy_((total_sq / len(X) - mean.pow(2)).clamp_min(0))


def train_ladder(
    module: LadderNetwork,
    source: engine.SemiSupervised,
    *,
    costs: dict[int, float],
    noise_std: float,
    config: engine.TrainConfig,
    generator: torch.Generator,
    callbacks: Sequence[Callable[[dict], bool | None]] = (),
) -> list[dict]:
    """Train ``module`` in place on ``source`` by one call of :func:`aekit.engine.fit`, then
    :func:`calibrate` its inference statistics on every row of the source.

    Parameters
    ----------
    module : LadderNetwork
    source : aekit.engine.SemiSupervised
        Every training row (an epoch runs over them) and the labelled ones; a validation
        split, if any, holds out labelled rows.
    costs : dict
        ``{layer: lambda}`` for the decoded layers (:func:`layer_costs`).
    noise_std : float
        The corrupted pass's noise.
    config : aekit.engine.TrainConfig
    generator : torch.Generator
        On the training device: batch order, validation split and noise.
    callbacks : sequence of callable
        Passed to :func:`aekit.engine.fit`.

    Returns
    -------
    list of dict
        The engine's per-epoch records (``loss``, ``cross_entropy``, ``denoising_<l>``, ...).
    """
    noise = gaussian_noise(noise_std, generator) if noise_std else None
    history = engine.fit(
        module,
        ladder_objective(module, costs, noise),
        source,
        params=list(module.parameters()),
        eval_fn=clean_cross_entropy(module),  # the validation loss: clean, labelled rows only
        config=config,
        generator=generator,
        callbacks=callbacks,
    )
    calibrate(module, source.X)
    return history

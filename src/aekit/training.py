"""The ways aekit trains an autoencoder, each a call of the one engine
(:func:`aekit.engine.fit`): end-to-end, greedy layer-wise phases, fine-tuning after them, and a
variational autoencoder by its ELBO.

An autoencoder module here is any module of a registered family
(:data:`aekit.nn.FAMILIES`): it has ``encode(x)``, ``decode(z, logits=False)``,
``reconstruction_loss(x, target, loss)``, ``criterion(loss)`` (that loss as a function of
``(x, target)``) and ``weight_matrices()``; layer-wise training also needs the views of
:mod:`aekit.layerwise`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from . import engine
from .layerwise import Callback, LayerwiseConfig, steps_so_far, train_layerwise
from .objectives import Objective, clean_reconstruction, dense_coding, reconstruction_objective
from .variational import KLWeight, elbo_objective


@dataclass(frozen=True)
class Plan:
    """How to train one autoencoder: what it minimises and in which mode.

    ``layerwise`` None means end-to-end training by ``end_to_end``; otherwise the layer-wise
    phases run (with progress bars when ``verbose``, their steps as ``step`` says), then
    fine-tuning by ``fine_tune`` when it is not None.
    """

    objective: Objective
    end_to_end: engine.TrainConfig | None = None
    layerwise: LayerwiseConfig | None = None
    fine_tune: engine.TrainConfig | None = None
    verbose: bool = False
    step: engine.StepOptions | None = None


def train_autoencoder(
    module: nn.Module, X, plan: Plan, *, generator: torch.Generator, callbacks: Sequence[Callback] = ()
) -> list[dict]:
    """Train ``module`` on the rows of ``X`` as ``plan`` says; the per-epoch history."""
    if plan.layerwise is None:
        return train_end_to_end(
            module,
            X,
            objective=plan.objective,
            config=plan.end_to_end,
            generator=generator,
            callbacks=callbacks,
        )
    history = train_layerwise(
        module,
        X,
        config=plan.layerwise,
        loss=plan.objective.loss,
        penalties=plan.objective.penalties,
        generator=generator,
        verbose=plan.verbose,
        callbacks=callbacks,
        step=plan.step,
    )
    if plan.fine_tune is not None:
        start = steps_so_far(history, len(X), plan.layerwise.batch_size, plan.layerwise.step_count)
        history += fine_tune(
            module,
            X,
            objective=plan.objective,
            generator=generator,
            callbacks=callbacks,
            config=dataclasses.replace(plan.fine_tune, adam_start_step=start),
        )
    return history


def train_end_to_end(
    module: nn.Module,
    X,
    *,
    objective: Objective,
    config: engine.TrainConfig,
    generator: torch.Generator,
    callbacks: Sequence[Callback] = (),
) -> list[dict]:
    """Train every parameter at once to reconstruct ``X`` from its (corrupted) self.

    Reconstruction plus L2 over every weight matrix that is a parameter, plus the objective's
    penalties on the coding layer, with the objective's corruption; the validation loss (when
    ``config.validation_fraction > 0``) is the clean reconstruction.
    """
    logits = objective.loss == "bce"

    def forward(x):  # (B, n_inputs) -> (B, n_code) -> (B, n_inputs)
        return module.decode(module.encode(x), logits=logits)

    loss_fn = reconstruction_objective(
        forward,
        loss=objective.loss,
        corruption=objective.corruption,
        corruption_level=objective.corruption_level,
        generator=generator,
        criterion=module.criterion(objective.loss),
        coding=dense_coding(module, None, logits=logits, generator=generator),
        penalties=objective.penalties,
    )
    return engine.fit(
        module,
        loss_fn,
        X,
        params=list(module.parameters()),
        config=config,
        generator=generator,
        eval_fn=clean_reconstruction(forward, objective.loss),
        l2_weights=module.weight_matrices(),
        l2=objective.l2,
        callbacks=callbacks,
    )


def fine_tune(module: nn.Module, X, *, config: engine.TrainConfig, **kwargs) -> list[dict]:
    """End-to-end training of a stack after its layer-wise phases, recorded as "fine-tune";
    ``kwargs`` are :func:`train_end_to_end`'s."""
    return train_end_to_end(module, X, config=dataclasses.replace(config, phase="fine-tune"), **kwargs)


def train_variational(
    module: nn.Module,
    data,
    *,
    beta: float,
    warmup_epochs: int,
    config: engine.TrainConfig,
    generator: torch.Generator,
    callbacks: Sequence[Callback] = (),
) -> list[dict]:
    """Train a :class:`~aekit.nn.DenseVAE` on ``data`` (an array, a tensor or a source such as
    :class:`~aekit.engine.DynamicBinarized`) by maximising its ELBO with the KL term weighted by
    ``beta``, warmed up linearly over ``warmup_epochs``. The validation loss is the same
    objective at the full weight ``beta``."""
    kl_weight = KLWeight(beta, warmup_epochs)
    validation = elbo_objective(module, KLWeight(beta, 0), generator)
    return engine.fit(
        module,
        elbo_objective(module, kl_weight, generator),
        data,
        params=list(module.parameters()),
        config=config,
        generator=generator,
        eval_fn=lambda batch: validation(batch)[0],
        callbacks=[kl_weight, *callbacks],
    )

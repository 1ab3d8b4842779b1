"""One process of the multi-process tests (tests/test_distributed.py): started with torchrun's
environment variables, it trains and saves what it ends with to OUT/rank<R>.pt.

    python tests/distributed_worker.py {train,dies,hangs} OUT
"""

import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

from aekit import AutoencoderTransformer, PretrainedClassifier, engine
from aekit.objectives import reconstruction_objective

torch.set_num_threads(1)
CLIP = 0.01  # small enough that every step is clipped


def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    return (data.data / 16).astype(np.float32), data.target


def fit_engine(X, batch_size: int, callbacks=(), max_grad_norm=None):
    """The engine alone, in float64, with validation and early stopping (the test runs the
    same in one process); ``max_grad_norm`` clips the gradients summed over the ranks."""
    from aekit.nn import StackedAutoencoder, StackedConfig

    model = StackedAutoencoder(
        StackedConfig(n_inputs=64, hidden_sizes=(16, 4)), torch.Generator().manual_seed(0)
    ).double()
    generator = torch.Generator().manual_seed(1)
    config = engine.TrainConfig(
        epochs=12,
        batch_size=batch_size,
        learning_rate=0.1,
        learning_rate_schedule="constant",
        validation_fraction=0.2,
        patience=1,  # stops after about 10 epochs
        max_grad_norm=max_grad_norm,
    )
    history = engine.fit(
        model,
        reconstruction_objective(model, criterion=model.reconstruction_loss),
        torch.from_numpy(X).double(),
        params=list(model.parameters()),
        config=config,
        generator=generator,
        l2_weights=model.weight_matrices(),
        l2=1e-3,
        callbacks=callbacks,
    )
    return model.state_dict(), history


def train(out: Path) -> None:
    world = engine.world()
    X, y = digits()
    results = {"world_size": world.size}
    for batch_size in (64, 63):  # even parts, and parts of 31 and 32 rows
        results[f"engine_{batch_size}"] = fit_engine(X, batch_size)
    results["engine_64_clipped"] = fit_engine(X, 64, max_grad_norm=CLIP)
    sda = dict(
        hidden_layer_sizes=(16, 8),
        training="layerwise",
        layerwise_epochs=2,
        fine_tune_epochs=2,
        corruption="masking",
        corruption_level=0.3,
        validation_fraction=0.1,
        batch_size=50,
        device="cpu",
    )
    fitted = AutoencoderTransformer(**sda).fit(X)  # no random_state: the ranks must still agree on one
    results["sda"] = fitted.module_.state_dict(), fitted.history_
    np.save(out / f"x{world.rank}.npy", X)  # the same rows, streamed from disk: caches on disk too
    fitted = AutoencoderTransformer(**sda, random_state=0).fit(np.load(out / f"x{world.rank}.npy", mmap_mode="r"))
    results["sda_streamed"] = fitted.module_.state_dict(), fitted.history_
    results["sda_in_memory"] = AutoencoderTransformer(**sda, random_state=0).fit(X).module_.state_dict()
    y = y.copy()
    y[::3] = -1
    classifier = PretrainedClassifier(
        AutoencoderTransformer((16, 8), epochs=2), epochs=3, dropout=0.2, freeze="lower", device="cpu", random_state=0
    ).fit(X, y)
    results["classifier"] = classifier.module_.state_dict(), classifier.history_
    torch.save(results, out / f"rank{world.rank}.pt")


def stops(out: Path, how: str) -> None:
    """Rank 1 dies (or stops answering) in its second epoch; the others must fail fast."""
    world = engine.init_distributed(timeout=timedelta(seconds=5))

    def rank_1_stops(record):
        if world.rank == 1 and record["epoch"] == 1:
            if how == "dies":
                import os

                os._exit(3)
            time.sleep(120)

    X, _ = digits()
    start = time.perf_counter()
    try:
        fit_engine(X, 64, callbacks=[rank_1_stops])
    except engine.DistributedError as error:
        print(f"rank {world.rank} failed after {time.perf_counter() - start:.1f} s: {error}", file=sys.stderr)
        sys.exit(1)


def reference(out: Path) -> None:
    """The engine runs of ``train`` in one fresh process: what two ranks must reproduce (a
    fresh process, not the test's, whose earlier tests leave state behind)."""
    X, _ = digits()
    runs = {f"engine_{b}": fit_engine(X, b) for b in (64, 63)}
    runs["engine_64_clipped"] = fit_engine(X, 64, max_grad_norm=CLIP)
    torch.save(runs, out / "reference.pt")


if __name__ == "__main__":
    mode, out = sys.argv[1], Path(sys.argv[2])
    {"train": train, "reference": reference}.get(mode, lambda out: stops(out, mode))(out)

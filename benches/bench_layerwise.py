"""Greedy layer-wise training on MNIST: quality of both methods, the cache's speed-up, and a
deep autoencoder after Hinton & Salakhutdinov (2006). Prints one table per part.

    python benches/bench_layerwise.py --data-dir ../shared/datasets            # all parts
    python benches/bench_layerwise.py --parts book,cache --data-dir ...         # a subset
    python benches/bench_layerwise.py --parts deep --deep-epochs 10 --deep-fine-tune 30

Parts:
  book   the book's case (untied 784-300-150-300-784, ELU, L2 1e-4, Adam 0.01, batch 150,
         4 epochs per phase): test MSE of "phases", "separate", and end-to-end for the same
         total epochs. The book reports 0.00979 for "phases". The "-shared" methods carry
         Adam's step count across phases as the book's TF1 code does (one AdamOptimizer
         for both phases); the others give each phase a fresh PyTorch Adam.
  cache  time of phase 2 fed from the cached layer-1 outputs against the same phase
         recomputing the frozen layer 1 for every batch.
  deep   784-1000-500-250-30 (linear 30-unit code), layer-wise then fine-tuned: squared error
         summed over pixels, averaged over the test images (the paper: 3.00; PCA-30: 13.87,
         computed here too as a check of the metric).
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from sklearn.decomposition import PCA

from aekit import AutoencoderTransformer, engine
from aekit.datasets import load
from aekit.nn import StackedAutoencoder, StackedConfig
from aekit.objectives import reconstruction_objective

BOOK = dict(
    hidden_layer_sizes=(300, 150),
    activation="elu",
    tied=False,
    l2=1e-4,
    learning_rate=0.01,
    batch_size=150,
    device="cpu",
)


def part_book(data, epochs: int, seeds: list[int], methods: list[str]) -> None:
    configs = {
        "phases": dict(training="layerwise", layerwise_method="phases", layerwise_epochs=epochs),
        "separate": dict(training="layerwise", layerwise_method="separate", layerwise_epochs=epochs),
        "phases-shared": dict(
            training="layerwise",
            layerwise_method="phases",
            layerwise_epochs=epochs,
            layerwise_step_count="shared",
        ),
        "separate-shared": dict(
            training="layerwise",
            layerwise_method="separate",
            layerwise_epochs=epochs,
            layerwise_step_count="shared",
        ),
        "end-to-end": dict(training="end_to_end", epochs=2 * epochs),
    }
    print(
        f"\nBook case: untied 784-300-150-300-784, {epochs}+{epochs} epochs (end-to-end: "
        f"{2 * epochs}); test MSE per seed {seeds}"
    )
    print("| training        | test MSE per seed                          | mean    | s/run |")
    print("|-----------------|--------------------------------------------|---------|-------|")
    for name in methods:
        mses, seconds = [], []
        for seed in seeds:
            ae = AutoencoderTransformer(**BOOK, **configs[name], random_state=seed)
            start = time.perf_counter()
            ae.fit(data.X_train)
            seconds.append(time.perf_counter() - start)
            mses.append(-ae.score(data.X_test))
        cells = " ".join(f"{m:.5f}" for m in mses)
        print(f"| {name:<15} | {cells:<42} | {np.mean(mses):.5f} | {np.mean(seconds):5.1f} |")


def part_cache(data, epochs: int) -> None:
    """Phase 2 of "phases", with and without the cache of layer 1's outputs."""
    model = StackedAutoencoder(StackedConfig(784, (300, 150), tied=False), torch.Generator().manual_seed(0))
    X = torch.from_numpy(data.X_train)
    with torch.no_grad():
        cached = model.encode_layer(X, 1)

    def phase2(loss_fn, inputs):
        config = engine.TrainConfig(
            epochs=epochs,
            batch_size=150,
            learning_rate=0.01,
            learning_rate_schedule="constant",
            validation_fraction=0.0,
            patience=None,
            max_grad_norm=None,
            phase="layer 2",
        )
        start = time.perf_counter()
        engine.fit(
            model,
            loss_fn,
            inputs,
            params=model.layer_parameters(2),
            config=config,
            generator=torch.Generator().manual_seed(0),
        )
        return (time.perf_counter() - start) / epochs

    def layer2(h1):  # (B, 300) -> (B, 150) -> (B, 300)
        return model.decode_layer(model.encode_layer(h1, 2), 2)

    def recomputing_loss(x):  # the frozen layer 1 runs for every batch (no grad), then the same loss
        with torch.no_grad():
            h1 = model.encode_layer(x, 1)
        loss = torch.nn.functional.mse_loss(layer2(h1), h1)
        return loss, {"loss": loss}

    with_cache = phase2(reconstruction_objective(layer2), cached)
    without = phase2(recomputing_loss, X)
    print(f"\nCache: phase 2 ({epochs} epochs, 60,000 x 300 cached codes)")
    print("| phase 2 fed from        | s/epoch |")
    print("|-------------------------|---------|")
    print(f"| cached layer-1 outputs  | {with_cache:7.3f} |")
    print(f"| layer 1 recomputed      | {without:7.3f} |")
    print(f"speed-up from the cache: {without / with_cache:.2f}x")


def part_deep(data, epochs: int, fine_tune: int, learning_rate: float, schedule: str) -> None:
    X, X_test = data.X_train, data.X_test
    pca = PCA(30, random_state=0).fit(X)
    pca_error = float(((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2).sum(1).mean())
    ae = AutoencoderTransformer(
        (1000, 500, 250, 30),
        activation="elu",
        code_activation="linear",
        tied=False,
        l2=0.0,
        loss="bce",
        training="layerwise",
        layerwise_epochs=epochs,
        fine_tune_epochs=fine_tune,
        learning_rate=learning_rate,
        fine_tune_learning_rate=learning_rate,
        learning_rate_schedule=schedule,
        batch_size=100,
        device="cpu",
        random_state=0,
        verbose=True,
    )
    start = time.perf_counter()
    ae.fit(X)
    seconds = time.perf_counter() - start
    ae_error = float(((ae.reconstruct(X_test) - X_test) ** 2).sum(1).mean())
    print(
        f"\nDeep: 784-1000-500-250-30 (linear code, sigmoid output, BCE), {epochs} epochs per "
        f"layer + {fine_tune} fine-tuning, lr {learning_rate} {schedule}, {seconds:.0f} s"
    )
    print("| model                     | squared error per test image | paper |")
    print("|---------------------------|------------------------------|-------|")
    print(f"| PCA, 30 components        | {pca_error:28.2f} | 13.87 |")
    print(f"| aekit deep autoencoder    | {ae_error:28.2f} |  3.00 |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--parts", default="book,cache,deep")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per phase (book case)")
    parser.add_argument("--seeds", default="42", help="book case: comma-separated seeds")
    parser.add_argument(
        "--methods",
        default="phases,phases-shared,separate,separate-shared,end-to-end",
        help="book case: which trainings",
    )
    parser.add_argument("--cache-epochs", type=int, default=2)
    parser.add_argument("--deep-epochs", type=int, default=5, help="epochs per layer, deep case")
    parser.add_argument("--deep-fine-tune", type=int, default=20)
    parser.add_argument("--deep-lr", type=float, default=1e-3)
    parser.add_argument(
        "--deep-schedule",
        default="constant",
        choices=["constant", "cosine"],
        help="learning-rate schedule of the deep case's fine-tuning",
    )
    args = parser.parse_args(argv)
    data = load("mnist", args.data_dir)
    print(f"machine: {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    parts = args.parts.split(",")
    if "book" in parts:
        part_book(data, args.epochs, [int(v) for v in args.seeds.split(",")], args.methods.split(","))
    if "cache" in parts:
        part_cache(data, args.cache_epochs)
    if "deep" in parts:
        part_deep(data, args.deep_epochs, args.deep_fine_tune, args.deep_lr, args.deep_schedule)


if __name__ == "__main__":
    main()

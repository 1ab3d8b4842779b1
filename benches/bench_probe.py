"""Feature quality as linear-probe accuracy on MNIST (issue 4's quality bar).

Trains the book's tied 784-300-150-300-784 autoencoder (ELU, L2 5e-4, Adam 0.01, batch 150,
5 epochs) on the training images, then fits the same logistic-regression probe (standardised
inputs) on its 150-unit codes, on the raw pixels and on PCA with 150 components, and prints
their test accuracies side by side.

    python benches/bench_probe.py --data-dir ../shared/datasets [--epochs 5] [--n-train 60000]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from aekit import AutoencoderTransformer
from aekit.datasets import load
from aekit.inspect import linear_probe


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--n-train", type=int, default=60000, help="rows for the probes (all by default)")
    parser.add_argument("--max-iter", type=int, default=300, help="logistic regression iterations")
    args = parser.parse_args(argv)
    data = load("mnist", args.data_dir)
    start = time.perf_counter()
    ae = AutoencoderTransformer(
        (300, 150),
        activation="elu",
        tied=True,
        l2=5e-4,
        epochs=args.epochs,
        batch_size=150,
        learning_rate=0.01,
        device="cpu",
        random_state=42,
    )
    ae.fit(data.X_train)
    fit_seconds = time.perf_counter() - start
    X, y = data.X_train[: args.n_train], data.y_train[: args.n_train]
    start = time.perf_counter()
    probe = linear_probe(
        ae.transform(X),
        y,
        ae.transform(data.X_test),
        data.y_test,
        X_train=X,
        X_test=data.X_test,
        max_iter=args.max_iter,
    )
    print(
        f"machine: {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"autoencoder {fit_seconds:.0f} s ({args.epochs} epochs, test MSE {-ae.score(data.X_test):.5f}), "
        f"probes {time.perf_counter() - start:.0f} s on {len(X)} training rows"
    )
    print("| representation            | features | test accuracy |")
    print("|---------------------------|----------|---------------|")
    print(f"| autoencoder codes         | {150:8d} | {probe['codes']:13.4f} |")
    print(f"| PCA                       | {probe['n_components']:8d} | {probe['pca']:13.4f} |")
    print(f"| raw pixels                | {784:8d} | {probe['raw']:13.4f} |")


if __name__ == "__main__":
    main()

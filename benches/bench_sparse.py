"""Sparse autoencoder on MNIST: how close the coding units' mean activations come to the target
(issue 11).

784-300 with sigmoid codings, the KL sparsity penalty at rho = 0.1 with its default weight,
Adam at 1e-3 and L2 1e-5 (Ng's weight decay of 3e-3 on aekit's per-pixel mean scale; at
AutoencoderTransformer's defaults for the book's ELU model, Adam 0.01 and L2 5e-4, many units
end as copies of one digit template), tied, batch 150, 10 epochs. For each
``--weights`` value (and, as a reference, no penalty) it prints the mean over units of their
mean activations, the mean over units of |mean activation - rho| / rho (the target: 20 % at
most), the share of units within 20 % of rho, the reconstruction MSE and the training time,
and writes the first-layer weight images and the histogram of mean activations to
``--out-dir``. ``--validate`` trains on the first 50,000 training images and evaluates on the
other 10,000 (where the default weight was chosen) instead of the test set.

    python benches/bench_sparse.py --data-dir ../shared/datasets --validate --weights 0.05,0.1,0.2,0.5,1
    python benches/bench_sparse.py --data-dir ../shared/datasets --out-dir sparse-figures
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from aekit import AutoencoderTransformer, inspect, plots
from aekit.datasets import load
from aekit.report_generative import sparsity_summary

RHO = 0.1
LEARNING_RATE, L2 = 1e-3, 1e-5


def fit(X, weight: float | None, epochs: int, seed: int) -> tuple[AutoencoderTransformer, float]:
    sparse = {} if weight is None else dict(sparsity_target=RHO, sparsity_weight=weight)
    ae = AutoencoderTransformer(
        (300,),
        code_activation="sigmoid",
        learning_rate=LEARNING_RATE,
        l2=L2,
        epochs=epochs,
        device="cpu",
        random_state=seed,
        **sparse,
    )
    start = time.process_time()
    return ae.fit(X), time.process_time() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--weights", default="default", help="sparsity weights, comma-separated, or 'default'")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--validate", action="store_true", help="train on 50,000 images, evaluate on the other 10,000")
    parser.add_argument("--out-dir", default=None, help="write weight images and histograms here")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load("mnist", args.data_dir)
    X_train, X_eval = (data.X_train[:50000], data.X_train[50000:]) if args.validate else (data.X_train, data.X_test)
    default = AutoencoderTransformer().sparsity_weight
    weights = [default] if args.weights == "default" else [float(w) for w in args.weights.split(",")]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {args.threads} thread(s); "
        f"load {os.getloadavg()[0]:.2f}; {'validation split' if args.validate else 'test set'}; {vars(args)}"
    )
    print("| sparsity_weight | mean of units | mean abs dev / rho | units within 20 % | MSE     | CPU s |")
    print("|-----------------|---------------|--------------------|-------------------|---------|-------|")
    for weight in [None, *weights]:
        ae, seconds = fit(X_train, weight, args.epochs, args.seed)
        means = ae.transform(X_eval).mean(0)
        summary = sparsity_summary(means, RHO)
        within = np.mean(np.abs(means - RHO) <= 0.2 * RHO)
        label = "none" if weight is None else f"{weight:g}" + (" (default)" if weight == default else "")
        print(
            f"| {label:15s} | {summary['mean']:13.4f} | {summary['mean_relative_deviation']:18.1%} | "
            f"{within:17.1%} | {-ae.score(X_eval):.5f} | {seconds:5.0f} |",
            flush=True,
        )
        if args.out_dir:
            out = Path(args.out_dir)
            out.mkdir(parents=True, exist_ok=True)
            images = inspect.weight_images(ae, (28, 28))
            plots.save_figure(
                plots.weight_grid(images, max_units=100, title=f"sparsity_weight {label}"),
                out / f"weights-{label.split()[0]}.png",
            )
            plots.save_figure(plots.activation_histogram(means, RHO), out / f"activations-{label.split()[0]}.png")
    print(f"done; load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

"""Convolutional against dense autoencoder on MNIST at the same code size: test MSE after the same
number of epochs, seconds per epoch and parameter counts.

Both train with the same settings (ELU, untied, no L2, Adam 1e-3, batch 128, a linear coding
layer of ``--code`` units): the dense one 784-300-code-300-784, the convolutional one
1x28x28 -> 32x14x14 -> 64x7x7 -> code and back (3x3 kernels, stride 2, transposed convolutions).

    python benches/bench_conv.py --data-dir ../shared/datasets [--epochs 10] [--code 32]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from aekit import AutoencoderTransformer
from aekit.datasets import load


def contenders(code: int, epochs: int, seed: int) -> dict[str, AutoencoderTransformer]:
    shared = dict(
        activation="elu",
        code_activation="linear",
        tied=False,
        l2=0.0,
        learning_rate=1e-3,
        batch_size=128,
        epochs=epochs,
        device="cpu",
        random_state=seed,
    )
    return {
        "dense 784-300-code": AutoencoderTransformer(hidden_layer_sizes=(300, code), **shared),
        "conv 32-64 ch, code": AutoencoderTransformer(
            architecture="conv", image_shape=(1, 28, 28), channels=(32, 64), hidden_layer_sizes=(code,), **shared
        ),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--code", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load("mnist", args.data_dir)
    print(
        f"machine: {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"{args.epochs} epochs, code {args.code}; load before: {os.getloadavg()[0]:.2f}"
    )
    print("| model                | parameters | test MSE | train MSE | s/epoch (median) | load |")
    print("|----------------------|------------|----------|-----------|------------------|------|")
    for name, ae in contenders(args.code, args.epochs, args.seed).items():
        start = time.perf_counter()
        ae.fit(data.X_train)
        total = time.perf_counter() - start
        n_params = sum(p.numel() for p in ae.module_.parameters())
        per_epoch = float(np.median([r["seconds"] for r in ae.history_]))
        print(
            f"| {name:20s} | {n_params:10d} | {-ae.score(data.X_test):8.5f} | {-ae.score(data.X_train):9.5f} "
            f"| {per_epoch:16.2f} | {os.getloadavg()[0]:4.2f} |  ({total:.0f} s in all)",
            flush=True,
        )


if __name__ == "__main__":
    main()

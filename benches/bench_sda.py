"""Stacked denoising autoencoder 784-1000-1000-1000 on all 60,000 MNIST labels (Vincent et al.
2010, SdA-3: 1.28 % test error): layer-wise pretraining with masking noise, then the encoder
plus a softmax layer fine-tuned on every label. Prints test error, time and machine.

    python benches/bench_sda.py --data-dir ../shared/datasets --pretrain-epochs 5 --epochs 30

Choose settings with ``--validate``: it trains on the first 50,000 training images and prints
the error on the last 10,000 (as Vincent et al. split them); the test error it also prints is
for the record, not for choosing. Then run the chosen settings without ``--validate`` (all
60,000 labels).
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from aekit import AutoencoderTransformer, PretrainedClassifier
from aekit.datasets import load


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--hidden", default="1000,1000,1000")
    parser.add_argument("--pretrain-epochs", type=int, default=5, help="per layer")
    parser.add_argument("--corruption-level", type=float, default=0.25, help="masking rate")
    parser.add_argument("--epochs", type=int, default=30, help="fine-tuning epochs")
    parser.add_argument("--lr", type=float, default=1e-3, help="fine-tuning learning rate")
    parser.add_argument(
        "--schedule",
        default="constant",
        choices=["constant", "cosine"],
        help="fine-tuning learning-rate schedule",
    )
    parser.add_argument("--activation", default="sigmoid")
    parser.add_argument(
        "--validate",
        action="store_true",
        help="train on the first 50,000 images, report error on the last 10,000",
    )
    parser.add_argument("--dropout", type=float, default=0.0, help="on the hidden layers")
    parser.add_argument("--input-dropout", type=float, default=0.0, help="on the input pixels")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    hidden = tuple(int(h) for h in args.hidden.split(","))
    data = load("mnist", args.data_dir)
    X, y = data.X_train, data.y_train
    if args.validate:
        X, y, X_val, y_val = X[:50_000], y[:50_000], X[50_000:], y[50_000:]
    start = time.perf_counter()
    sda = AutoencoderTransformer(
        hidden,
        activation=args.activation,
        tied=True,
        l2=0.0,
        loss="bce",
        corruption="masking",
        corruption_level=args.corruption_level,
        training="layerwise",
        layerwise_epochs=args.pretrain_epochs,
        batch_size=args.batch_size,
        learning_rate=1e-3,
        device="auto",
        random_state=args.seed,
        verbose=True,
    ).fit(X)
    pretrain_seconds = time.perf_counter() - start
    clf = PretrainedClassifier(
        sda,
        freeze="none",
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        learning_rate_schedule=args.schedule,
        dropout=args.dropout,
        input_dropout=args.input_dropout,
        device="auto",
        random_state=args.seed,
        verbose=True,
    )
    start = time.perf_counter()
    clf.fit(X, y)
    error = 100 * (1 - clf.score(data.X_test, data.y_test))
    validation = (
        f"validation error {100 * (1 - clf.score(X_val, y_val)):.2f} % (50,000 train), " if args.validate else ""
    )
    print(f"machine: {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(
        f"SdA {'-'.join(map(str, (784, *hidden)))} {args.activation}, masking {args.corruption_level}, "
        f"{args.pretrain_epochs} epochs/layer ({pretrain_seconds:.0f} s), fine-tuned {args.epochs} "
        f"epochs lr {args.lr} {args.schedule}, dropout {args.dropout}, input dropout "
        f"{args.input_dropout} "
        f"({time.perf_counter() - start:.0f} s): {validation}test error {error:.2f} % "
        f"(Vincent et al. 2010: 1.28 %)"
    )


if __name__ == "__main__":
    main()

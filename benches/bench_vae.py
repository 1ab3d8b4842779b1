"""Variational autoencoder on dynamically binarised MNIST: test negative ELBO and
importance-sampled negative log-likelihood as training goes on (issue 11).

The model of Burda et al. 2016's one-stochastic-layer VAE: 784-500-500 encoder, 50-dimensional
Gaussian latent, mirrored decoder, Bernoulli likelihood; trained on a fresh binarisation of the
training images every batch. The evaluation rows are binarised once (seed 0), as in the
published protocol. At each checkpoint epoch it prints the mean negative ELBO (one posterior
sample per row) and the mean of -log p(x) estimated with ``--n-importance`` samples per row
(Burda et al.'s k = 5000; 1000 here by default), with the CPU time training has taken so far
(evaluation excluded). ``--validate`` trains on the first 50,000 training images and evaluates
on the other 10,000 instead of the test set: the split settings are chosen on.

    python benches/bench_vae.py --data-dir ../shared/datasets --epochs 500 --checkpoints 10,50,100,200
    python benches/bench_vae.py --data-dir ../shared/datasets --validate --epochs 30 --eval-rows 2000
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from aekit import engine, variational
from aekit.datasets import load
from aekit.nn import DenseVAE, VAEConfig
from aekit.training import train_variational


def binarized(X: np.ndarray, seed: int) -> np.ndarray:
    """One fixed Bernoulli sample of each pixel: the published evaluation protocol."""
    return (np.random.default_rng(seed).random(X.shape, dtype=np.float32) < X).astype(np.float32)


@torch.no_grad()
def evaluate(module: DenseVAE, X: torch.Tensor, n_importance: int, seed: int) -> tuple[float, float]:
    """(mean negative ELBO, mean importance-sampled -log p(x)) over the rows of ``X``."""
    module.eval()
    generator = torch.Generator().manual_seed(seed)
    elbo, nll = [], []
    for x in X.split(500):
        rec, kl = variational.elbo_parts(module, x, generator)
        elbo.append((rec + kl).double())
        nll.append(-variational.importance_log_likelihood(module, x, n_importance, generator))
    return float(torch.cat(elbo).mean()), float(torch.cat(nll).mean())


class Checkpoints:
    """Engine callback: evaluates at the chosen epochs and at the last, and keeps the CPU time
    of training alone (the evaluations' time is subtracted)."""

    def __init__(self, module, X_eval, epochs, n_importance, total):
        self.module, self.X_eval, self.n_importance = module, X_eval, n_importance
        self.epochs, self.total = set(epochs) | {total}, total
        self.rows: list[tuple] = []
        self.cpu_start, self.eval_cpu, self.wall_start = time.process_time(), 0.0, time.perf_counter()

    def __call__(self, record: dict) -> None:
        if record["epoch"] not in self.epochs:
            return
        start = time.process_time()
        train_cpu = start - self.cpu_start - self.eval_cpu
        neg_elbo, nll = evaluate(self.module, self.X_eval, self.n_importance, seed=record["epoch"])
        self.eval_cpu += time.process_time() - start
        row = (record["epoch"], neg_elbo, nll, record["loss"], train_cpu, time.perf_counter() - self.wall_start)
        self.rows.append(row)
        print("| {:5d} | {:10.2f} | {:10.2f} | {:10.2f} | {:9.0f} | {:9.0f} |".format(*row), flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--checkpoints", default="10,50", help="epochs to evaluate at besides the last")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--schedule", default="cosine", choices=engine.LEARNING_RATE_SCHEDULES)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--activation", default="elu")
    parser.add_argument("--n-importance", type=int, default=1000)
    parser.add_argument("--eval-rows", type=int, default=None, help="evaluate on the first N rows only")
    parser.add_argument("--validate", action="store_true", help="train on 50,000 images, evaluate on the other 10,000")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (one is fastest on a shared machine)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load("mnist", args.data_dir)
    X_train, X_eval = (data.X_train[:50000], data.X_train[50000:]) if args.validate else (data.X_train, data.X_test)
    X_eval = torch.from_numpy(binarized(X_eval[: args.eval_rows], seed=0))
    init, generator = engine.make_generators(args.seed, torch.device("cpu"))
    module = DenseVAE(VAEConfig(784, (500, 500), 50, args.activation, "bernoulli"), init)
    config = engine.TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        learning_rate_schedule=args.schedule,
        validation_fraction=0.0,
        patience=None,
    )
    checkpoints = [int(e) for e in args.checkpoints.split(",") if e]
    watch = Checkpoints(module, X_eval, checkpoints, args.n_importance, args.epochs)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {args.threads} thread(s); "
        f"load {os.getloadavg()[0]:.2f}; {'validation split' if args.validate else 'test set'} of {len(X_eval)} rows; "
        f"{vars(args)}",
        flush=True,
    )
    print("| epoch | -ELBO      | NLL (k={:<4d})| train loss | CPU s     | wall s    |".format(args.n_importance))
    print("|-------|------------|------------|------------|-----------|-----------|", flush=True)
    train_variational(
        module,
        engine.DynamicBinarized(torch.from_numpy(X_train)),
        beta=1.0,
        warmup_epochs=0,
        config=config,
        generator=generator,
        callbacks=[watch],
    )
    print(f"done; load {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()

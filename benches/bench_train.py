"""Training speed: aekit's engine against the loop a plain PyTorch user would write.

Both train the book's tied 784-300-150-300-784 autoencoder (ELU, He init, L2 5e-4 on the
encoder weights, Adam 0.01, batch 150) on MNIST for the same number of epochs, in the same
process, alternating so that machine noise hits all contenders. Prints one table: seconds per
epoch (whole training wall time / epochs), test MSE, and each contender's time and MSE as a
fraction of the plain loop's (medians over the rounds), and the lowest and highest of each
round's time ratio (how far the machine's drift moves one measurement). ``--variants`` adds
aekit contenders with other step options (``precision``, ``compile``): e.g.
``float32,bf16-matmul,bf16,bf16-matmul+compile``. A compiled contender's first round includes
its compilation (the highest of its per-round ratios); later rounds, new models of the same
architecture, reuse the compiled kernel, as later fits in a user's process do.

    python benches/bench_train.py --data-dir ../shared/datasets --epochs 3 --repeats 2
    python benches/bench_train.py --data-dir ../shared/datasets --variants float32,bf16-matmul

On a machine shared with other work, ``--threads 1 --clock cpu`` measures the process's CPU
time instead of the wall clock: the time it was not running is then left out (its caches are
still shared).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from aekit import AutoencoderTransformer
from aekit.datasets import load


class PlainTiedAutoencoder(nn.Module):
    """The book's model as a PyTorch user would write it."""

    def __init__(self):
        super().__init__()
        self.hidden1 = nn.Linear(784, 300)
        self.hidden2 = nn.Linear(300, 150)
        self.bias3 = nn.Parameter(torch.zeros(300))
        self.bias4 = nn.Parameter(torch.zeros(784))
        for layer in (self.hidden1, self.hidden2):
            nn.init.kaiming_normal_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        h1 = F.elu(self.hidden1(x))
        h2 = F.elu(self.hidden2(h1))
        h3 = F.elu(F.linear(h2, self.hidden2.weight.t(), self.bias3))
        return F.linear(h3, self.hidden1.weight.t(), self.bias4)


CLOCK = time.perf_counter  # --clock cpu: time.process_time


def train_plain(X, epochs, seed):
    torch.manual_seed(seed)
    model = PlainTiedAutoencoder()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    loader = DataLoader(TensorDataset(torch.from_numpy(X)), batch_size=150, shuffle=True)
    start = CLOCK()
    for _ in range(epochs):
        for (batch,) in loader:
            outputs = model(batch)
            l2 = 0.5 * (model.hidden1.weight.pow(2).sum() + model.hidden2.weight.pow(2).sum())
            loss = F.mse_loss(outputs, batch) + 5e-4 * l2
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    seconds = CLOCK() - start
    model.eval()
    with torch.no_grad():
        return seconds / epochs, float(F.mse_loss(model(torch.from_numpy(X_TEST)), torch.from_numpy(X_TEST)))


def train_aekit(X, epochs, seed, variant="float32"):
    """aekit with the step options ``variant`` names: a precision, with "+compile" to compile."""
    precision, _, compile_ = variant.partition("+")
    options = {} if variant == "float32" else dict(precision=precision, compile=compile_ == "compile")
    ae = AutoencoderTransformer(
        (300, 150),
        activation="elu",
        tied=True,
        l2=5e-4,
        epochs=epochs,
        batch_size=150,
        learning_rate=0.01,
        device="cpu",
        random_state=seed,
        **options,  # none for float32: the script also times aekit versions before these options
    )
    start = CLOCK()
    ae.fit(X)
    seconds = CLOCK() - start
    return seconds / epochs, -ae.score(X_TEST)


def round_ratios(results, plain) -> str:
    """The lowest and highest of each round's time over the plain loop's in the same round: how
    far the machine's drift moves one ratio (the table's time ratio is the ratio of medians)."""
    ratios = [r[0] / p[0] for r, p in zip(results, plain)]
    return f"{min(ratios):.3f}-{max(ratios):.3f}"


def main(argv=None):
    global X_TEST, CLOCK
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None, help="folder with MNIST IDX files (else $AEKIT_DATA_DIR / cache)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each; the table shows medians")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--json", default=None, help="also write the raw runs here")
    parser.add_argument(
        "--variants",
        default="float32",
        help="aekit contenders, comma-separated: a precision (float32, bf16-matmul, bf16), "
        "'+compile' to compile the step (default: float32)",
    )
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="wall time, or the process's CPU time")
    args = parser.parse_args(argv)
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load("mnist", args.data_dir)
    X, X_TEST = data.X_train, data.X_test
    variants = args.variants.split(",")
    names = {v: "aekit" if v == "float32" else f"aekit {v}" for v in variants}
    runs = {"plain PyTorch loop": [], **{names[v]: [] for v in variants}}
    for seed in range(args.repeats):
        runs["plain PyTorch loop"].append(train_plain(X, args.epochs, seed))
        for variant in variants:
            runs[names[variant]].append(train_aekit(X, args.epochs, seed, variant))
    plain_s = statistics.median(s for s, _ in runs["plain PyTorch loop"])
    plain_mse = statistics.median(m for _, m in runs["plain PyTorch loop"])
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; {args.epochs} epochs x {args.repeats} repeats; {args.clock} clock"
    )
    print(f"| {'implementation':<26} | s/epoch | test MSE | time ratio | MSE ratio | ratio by round |")
    print(f"|{'-' * 28}|---------|----------|------------|-----------|----------------|")
    for name, results in runs.items():
        s = statistics.median(r[0] for r in results)
        mse = statistics.median(r[1] for r in results)
        spread = round_ratios(results, runs["plain PyTorch loop"])
        print(f"| {name:<26} | {s:7.3f} | {mse:.5f}  | {s / plain_s:10.3f} | {mse / plain_mse:9.3f} | {spread:>14} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: [list(r) for r in v] for k, v in runs.items()}, f, indent=1)


X_TEST: np.ndarray
if __name__ == "__main__":
    main()

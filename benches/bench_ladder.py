"""LadderClassifier with its defaults on permutation-invariant MNIST (Rasmus et al. 2015:
1.06 % test error with 100 labels, 0.84 % with 1000, 0.57 % with all): balanced labelled
subsets, several seeds, mean ± std of the test error after some epochs and at the end, and the
CPU time per run.

    python benches/bench_ladder.py --data-dir ../shared/datasets --labels 100 --seeds 0,1,2

The test set is scored by a callback at the listed epochs, for the record only: nothing is
chosen on it (the settings are the estimator's defaults, the paper's). An error "after 10
epochs" is that of the 150-epoch run after its 10th epoch, still at the full step size, not
that of a run trained for 10 epochs with its own decay. Each evaluation first computes exact
batch-normalisation statistics over the training rows (as the final model has); training does
not read them, so the evaluations leave the run unchanged.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from aekit import LadderClassifier, semisupervised
from aekit.datasets import load
from aekit.study import balanced_subset


def run(data, n_labels, seed: int, epochs: int | None, eval_epochs: set[int]) -> dict:
    """One fit; its test error at ``eval_epochs`` and at the end, and its CPU time."""
    rows = balanced_subset(data.y_train, n_labels, seed)
    y = np.full(len(data.y_train), -1)
    y[rows] = data.y_train[rows]
    clf = LadderClassifier(random_state=seed, **({"epochs": epochs} if epochs else {}))
    X = torch.from_numpy(data.X_train)
    errors, eval_cpu = {}, 0.0

    def evaluate(record: dict) -> None:
        nonlocal eval_cpu
        if record["epoch"] in eval_epochs:
            start = time.process_time()
            semisupervised.calibrate(clf.module_, X.to(next(clf.module_.parameters()).device))
            errors[record["epoch"]] = 1 - clf.score(data.X_test, data.y_test)
            eval_cpu += time.process_time() - start
            print(f"    labels {len(rows)} seed {seed} epoch {record['epoch']}: {100 * errors[record['epoch']]:.2f} %")

    start_cpu, start_wall = time.process_time(), time.perf_counter()
    clf.set_params(callbacks=(evaluate,))
    clf.fit(data.X_train, y)
    cpu = time.process_time() - start_cpu - eval_cpu
    wall = time.perf_counter() - start_wall
    errors["final"] = 1 - clf.score(data.X_test, data.y_test)
    return {"labels": len(rows), "seed": seed, "epochs": clf.n_iter_, "errors": errors, "cpu": cpu, "wall": wall}


def cell(values) -> str:
    values = 100 * np.asarray(values)
    if len(values) == 0:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{values.mean():.2f} ± {values.std(ddof=1):.2f}"


def table(results: list[dict], eval_epochs: list[int]) -> str:
    head = " | ".join(f"after {e}" for e in eval_epochs)
    lines = [
        f"| labels | seeds | {head} | final | CPU min/run | wall min/run |",
        "|---:|---:|" + "---:|" * (len(eval_epochs) + 3),
    ]
    for n in sorted({r["labels"] for r in results}):
        runs = [r for r in results if r["labels"] == n]
        cells = [cell([r["errors"][e] for r in runs if e in r["errors"]]) for e in eval_epochs]
        cpu = np.mean([r["cpu"] for r in runs]) / 60
        wall = np.mean([r["wall"] for r in runs]) / 60
        final = cell([r["errors"]["final"] for r in runs])
        lines.append(f"| {n} | {len(runs)} | " + " | ".join(cells) + f" | {final} | {cpu:.1f} | {wall:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--labels", default="100", help="comma-separated budgets; 'all' for every row")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=None, help="default: the estimator's (150)")
    parser.add_argument("--eval-epochs", default="10,25,50", help="epochs after which to score the test set")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared machine)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    budgets = [None if v == "all" else int(v) for v in args.labels.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    eval_epochs = [int(e) for e in args.eval_epochs.split(",") if e]
    data = load(args.dataset, args.data_dir)
    print(
        f"{args.dataset}, {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load {os.getloadavg()[0]:.1f}, {time.strftime('%Y-%m-%d %H:%M')}",
        flush=True,
    )
    results = []
    for budget in budgets:
        for seed in seeds:
            result = run(data, budget, seed, args.epochs, set(eval_epochs))
            results.append(result)
            print(
                f"labels {result['labels']} seed {seed}: {100 * result['errors']['final']:.2f} % after "
                f"{result['epochs']} epochs, CPU {result['cpu'] / 60:.1f} min, wall {result['wall'] / 60:.1f} min, "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            print(table(results, eval_epochs), flush=True)
    print(f"done {time.strftime('%Y-%m-%d %H:%M')}, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

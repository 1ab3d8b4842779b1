"""How LadderClassifier's hidden widths should scale to small inputs, chosen on a validation
split: the network is fitted on part of a data set's training rows and scored on the rest of
them (stratified, seeded); the data set's test rows are never read.

    python benches/bench_ladder_widths.py --labels 50,100,all --seeds 0,1,2,3

Each contender is a rule that turns the paper's widths for 784 pixels (1000-500-250-250-250)
into widths for ``n`` input features: ``linear`` scales them by ``n / 784``, ``sqrt`` by
``sqrt(n / 784)``, ``paper`` keeps them. Everything else is the estimator's defaults.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from aekit import LadderClassifier
from aekit.datasets import load
from aekit.estimators.ladder import PAPER_INPUTS, scaled_paper_widths
from aekit.study import balanced_subset

RULES = {
    "linear": lambda n: min(1.0, n / PAPER_INPUTS),
    "sqrt": lambda n: min(1.0, (n / PAPER_INPUTS) ** 0.5),
    "paper": lambda n: 1.0,
}


def validation_error(X_fit, y_fit, X_val, y_val, sizes, n_labels, seed) -> tuple[float, float]:
    """Validation error (%) of one fit with ``n_labels`` balanced labels, and its CPU seconds."""
    rows = balanced_subset(y_fit, n_labels, seed) if n_labels < len(y_fit) else np.arange(len(y_fit))
    y = np.full(len(y_fit), -1)
    y[rows] = y_fit[rows]
    start = time.process_time()
    clf = LadderClassifier(sizes, random_state=seed, device="cpu").fit(X_fit, y)
    return 100 * (1 - clf.score(X_val, y_val)), time.process_time() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--rules", default="linear,sqrt,paper", help=f"comma-separated, of {', '.join(RULES)}")
    parser.add_argument("--labels", default="50,100,all", help="comma-separated budgets; 'all' for every row")
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--validation", type=float, default=0.25, help="fraction of the training rows held out")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load(args.dataset, args.data_dir)
    X_fit, X_val, y_fit, y_val = train_test_split(
        data.X_train, data.y_train, test_size=args.validation, stratify=data.y_train, random_state=0
    )
    print(
        f"{args.dataset}: fit on {len(y_fit)} training rows, validate on {len(y_val)}; {platform.machine()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    seeds = [int(s) for s in args.seeds.split(",")]
    print("| widths | labels | validation error (%) | per seed | CPU s/fit |\n|---|---:|---:|---|---:|")
    for rule in args.rules.split(","):
        sizes = scaled_paper_widths(RULES[rule](X_fit.shape[1]))
        for budget in args.labels.split(","):
            n_labels = len(y_fit) if budget == "all" else int(budget)
            runs = [validation_error(X_fit, y_fit, X_val, y_val, sizes, n_labels, s) for s in seeds]
            errors = np.array([e for e, _ in runs])
            print(
                f"| {rule} {'-'.join(map(str, sizes))} | {n_labels} | {errors.mean():.2f} ± {errors.std(ddof=1):.2f} "
                f"| {', '.join(f'{e:.2f}' for e in errors)} | {np.mean([c for _, c in runs]):.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

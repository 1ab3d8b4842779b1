"""One-class anomaly detection on MNIST (the protocol of Ruff et al. 2018, "Deep One-Class
Classification"): for each digit k, fit on the training images of k only, score every test image,
AUROC of "not k"; AutoencoderOutlierDetector with its defaults beside baselines computed in the
same run: PCA reconstruction error (90 % of the variance), the mean distance to the 5 nearest
training images, IsolationForest and OneClassSVM (scikit-learn's defaults).

``--validate`` runs the same protocol on the training images alone, to choose defaults without
the test set: each digit is fitted on 80 % of its training images and scored against a fixed
random 20 % of all training images (seeded, the same split for every digit and method).
The detector is fitted on the images as (n, 28, 28) arrays ("images": its default
``error_smoothing="auto"`` blurs the residual by one pixel); "rows" is the same detector's score
for the images as rows of 784 values (no image shape, so the plain mean squared error), computed
from the same fitted autoencoder, which trains on exactly the same rows either way.
``--autoencoder-*`` flags change the detector's autoencoder (its parameters' names),
``--error-smoothing`` the detector's own setting.

    python benches/bench_anomaly.py --data-dir ../shared/datasets [--digits 0,1] [--validate] [--baselines pca,knn]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors
from sklearn.svm import OneClassSVM

from aekit import AutoencoderOutlierDetector, AutoencoderTransformer
from aekit.cli.flags import add_param_flags, given
from aekit.datasets import load


def pca_error(X_fit, X):
    """PCA reconstruction error with the components that keep 90 % of the variance."""
    pca = PCA(n_components=0.9, svd_solver="full").fit(X_fit)
    return ((pca.inverse_transform(pca.transform(X)) - X) ** 2).sum(axis=1)


def knn_distance(X_fit, X):
    """Mean Euclidean distance to the 5 nearest fitted images."""
    return NearestNeighbors(n_neighbors=5).fit(X_fit).kneighbors(X)[0].mean(axis=1)


def isolation_forest(X_fit, X):
    return -IsolationForest(random_state=0).fit(X_fit).score_samples(X)


def one_class_svm(X_fit, X):
    return -OneClassSVM().fit(X_fit).score_samples(X)


BASELINES = {"pca": pca_error, "knn": knn_distance, "iforest": isolation_forest, "ocsvm": one_class_svm}


def protocol(data, validate: bool, seed: int = 1234):
    """``(X_fit, y_fit, X_score, y_score)``: the test protocol, or its validation stand-in
    made from the training images only."""
    if not validate:
        return data.X_train, data.y_train, data.X_test, data.y_test
    held = np.zeros(len(data.X_train), dtype=bool)
    held[np.random.default_rng(seed).choice(len(held), len(held) // 5, replace=False)] = True
    return data.X_train[~held], data.y_train[~held], data.X_train[held], data.y_train[held]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--digits", default="0,1,2,3,4,5,6,7,8,9")
    parser.add_argument("--baselines", default="pca,knn,iforest,ocsvm", help="comma-separated; '' for none")
    parser.add_argument("--validate", action="store_true", help="the protocol on the training images alone")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    group = parser.add_argument_group("the detector and its autoencoder")
    dests = add_param_flags(group, AutoencoderOutlierDetector, only=("error_smoothing",))
    dests += add_param_flags(group, AutoencoderTransformer, prefix="autoencoder", exclude=("verbose",))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load(args.dataset, args.data_dir)
    X_fit, y_fit, X_score, y_score = protocol(data, args.validate)
    methods = ["images", "rows", *[b for b in args.baselines.split(",") if b]]
    detector = AutoencoderOutlierDetector(random_state=args.seed, device="cpu").set_params(**given(args, dests))
    print(
        f"machine: {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"{'validation (training images only)' if args.validate else 'test'} protocol; changed: {given(args, dests)}"
    )
    print("| digit | " + " | ".join(f"{m:>7}" for m in methods) + " | aekit s |")
    print("|-------|" + "|".join("-" * 9 for _ in methods) + "|---------|")
    table = {m: [] for m in methods}

    def images(X):
        return X.reshape(len(X), *data.image_shape)

    for k in (int(d) for d in args.digits.split(",")):
        normal = X_fit[y_fit == k]
        start = time.perf_counter()
        scores = {"images": -detector.fit(images(normal)).score_samples(images(X_score))}
        seconds = time.perf_counter() - start
        scores["rows"] = ((detector.autoencoder_.reconstruct(X_score) - X_score) ** 2).mean(axis=1)
        scores.update({m: BASELINES[m](normal, X_score) for m in methods[2:]})
        for m in methods:
            table[m].append(roc_auc_score(y_score != k, scores[m]))
        print(f"| {k:5d} | " + " | ".join(f"{table[m][-1]:7.4f}" for m in methods) + f" | {seconds:7.1f} |", flush=True)
    print("|  mean | " + " | ".join(f"{np.mean(table[m]):7.4f}" for m in methods) + " |         |")


if __name__ == "__main__":
    main()

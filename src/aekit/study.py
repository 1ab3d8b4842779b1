"""The label-budget study: how much does unsupervised pretraining help with few labels?

For each seed, the autoencoders are pretrained once on every training row (their labels are
never read), then reused for every label budget. For each budget a balanced labelled subset
is drawn (the same number of rows per class); every method trains on that subset only and is
scored once on the test set, which is never used for any choice: early stopping uses a
validation split of the labelled subset.

Methods
-------
``"scratch"``
    The classifier's architecture trained from He-initialised weights.
``"pretrained-frozen"``
    Encoder of an end-to-end autoencoder, all but the top hidden layer frozen.
``"pretrained-finetuned"``
    The same encoder, every layer fine-tuned.
``"sda-finetuned"``
    Encoder of a stacked denoising autoencoder (layer-wise, masking noise), fine-tuned.
``"logreg-codes"``
    Logistic regression on the end-to-end autoencoder's codes.
``"logreg-raw"``
    Logistic regression on the raw inputs.
``"spreading-codes"``, ``"spreading-raw"``
    Label spreading over a nearest-neighbour graph of every training row's codes or inputs.
``"ladder"``
    A Ladder network (:class:`~aekit.LadderClassifier`), which learns from the unlabelled
    rows throughout its training instead of only before it.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.semi_supervised import LabelSpreading
from sklearn.utils import check_random_state
from tqdm.auto import tqdm

from .estimators import AutoencoderTransformer, LadderClassifier, PretrainedClassifier
from .files import write_json_atomic, write_text_atomic

logger = logging.getLogger(__name__)

METHODS = (
    "scratch",
    "pretrained-frozen",
    "pretrained-finetuned",
    "sda-finetuned",
    "logreg-codes",
    "logreg-raw",
    "spreading-codes",
    "spreading-raw",
    "ladder",
)
DEFAULT_BUDGETS = (100, 600, 1000, 3000, None)  # None: every training row is labelled
_NEEDS_AE = {"pretrained-frozen", "pretrained-finetuned", "logreg-codes", "spreading-codes"}
# label spreading (Zhou et al. 2004) over a k-nearest-neighbour graph of every training row:
# the unlabelled rows carry the labels along the data's clusters; k fixed a priori
SPREADING_NEIGHBOURS = 10
_NEEDS_SDA = {"sda-finetuned"}
_FREEZE = {"pretrained-frozen": "lower", "pretrained-finetuned": "none", "sda-finetuned": "none"}


def balanced_subset(y, n_labels: int | None, random_state=None) -> np.ndarray:
    """Indices of a labelled subset with the same number of rows of each class.

    Parameters
    ----------
    y : array-like of shape (n,)
        The labels of every training row.
    n_labels : int or None
        Size of the subset; None takes every row. When ``n_labels`` is not a multiple of the
        number of classes, the first ``n_labels % n_classes`` classes in a random order get
        one row more (so counts differ by at most one).
    random_state : int, RandomState or None

    Returns
    -------
    ndarray of int
        Sorted row indices.

    Raises
    ------
    ValueError
        If ``n_labels`` is smaller than the number of classes, or a class has fewer rows
        than its share.
    """
    y = np.asarray(y)
    if n_labels is None:
        return np.arange(len(y))
    classes, counts = np.unique(y, return_counts=True)
    _check_budget(n_labels, classes, counts)
    rng = check_random_state(random_state)
    share = np.full(len(classes), n_labels // len(classes))
    share[rng.permutation(len(classes))[: n_labels % len(classes)]] += 1
    picks = [rng.choice(np.flatnonzero(y == c), k, replace=False) for c, k in zip(classes, share)]
    return np.sort(np.concatenate(picks))


def _check_budget(n_labels, classes: np.ndarray, counts: np.ndarray) -> None:
    if isinstance(n_labels, bool) or not isinstance(n_labels, (int, np.integer)):
        raise ValueError(f"a label budget is an int or None, got {n_labels!r}")
    if n_labels < len(classes):
        raise ValueError(
            f"label budget {n_labels} is smaller than the number of classes "
            f"({len(classes)}): a balanced subset needs one row of each"
        )
    need = math.ceil(n_labels / len(classes))
    short = [(c, n) for c, n in zip(classes.tolist(), counts.tolist()) if n < need]
    if short:
        raise ValueError(
            f"label budget {n_labels} needs up to {need} rows of each of "
            f"{len(classes)} classes, but the training set has fewer of "
            f"(class, rows) {short[:5]}; use a smaller budget or None for all rows"
        )


SDA_SETTINGS = dict(training="layerwise", corruption="masking", corruption_level=0.3)


def default_sda(autoencoder: AutoencoderTransformer) -> AutoencoderTransformer:
    """The stacked denoising autoencoder of ``"sda-finetuned"`` when none is given: a clone of
    ``autoencoder`` trained layer-wise, as many epochs per layer as it has, with masking noise
    (Vincent et al. 2010)."""
    return clone(autoencoder).set_params(layerwise_epochs=autoencoder.epochs, **SDA_SETTINGS)


def run_study(
    X,
    y,
    X_test,
    y_test,
    *,
    budgets: Sequence[int | None] = DEFAULT_BUDGETS,
    seeds: int | Iterable[int] = 5,
    methods: Sequence[str] = METHODS,
    classifier: PretrainedClassifier | None = None,
    sda: AutoencoderTransformer | None = None,
    ladder: LadderClassifier | None = None,
    logreg_C: float = 1.0,
    progress: bool = True,
) -> list[dict]:
    """Run every method for every label budget and seed; one record per run.

    Parameters
    ----------
    X, y : arrays of shape (n, d) and (n,)
        Training rows, all used (without labels) to pretrain the autoencoders; labelled
        subsets are drawn from them.
    X_test, y_test : arrays
        Scored once per run, never used to choose anything.
    budgets : sequence of int or None
        Numbers of labelled rows; None labels every training row.
    seeds : int or iterable of int
        An int ``n`` means seeds ``0 .. n-1``. A seed fixes the subsets, the autoencoders and
        every classifier's initialisation.
    methods : sequence of str
        A subset of :data:`METHODS`.
    classifier : PretrainedClassifier, optional
        The settings of every network method (its ``freeze``, ``pretrain`` and
        ``random_state`` are the study's); its ``autoencoder`` is the one the pretrained
        methods and the codes' baselines use, fitted once per seed. Default:
        ``PretrainedClassifier()``. Early stopping (``validation_fraction > 0`` and
        ``patience``) holds out part of each labelled subset; it is off by default because at
        2 labels per class a random split leaves classes without training rows (on the
        digits, 20 labels: ~54 % test error with a 0.2 split against ~27 % without).
    sda : AutoencoderTransformer, optional
        The stacked denoising autoencoder of ``"sda-finetuned"``; default
        :func:`default_sda` of the classifier's autoencoder.
    ladder : LadderClassifier, optional
        The settings of ``"ladder"`` (its ``random_state`` is the study's); it trains on every
        training row, only the budget's rows labelled. Default: ``LadderClassifier()``, the
        paper's settings for MNIST (150 epochs over every row: hours per run on a CPU).
    logreg_C : float
        Inverse regularisation strength of both logistic regressions.
    progress : bool
        A progress bar over runs.

    Returns
    -------
    list of dict
        ``method``, ``n_labels``, ``seed``, ``test_error``, ``seconds`` (training of this
        run), ``pretrain_seconds`` (the shared autoencoder it used, 0 if none), ``n_epochs``
        (classifier epochs run; logistic regression: its iterations), ``n_unlabelled``.
    """
    X, y = np.asarray(X, dtype=np.float32), np.asarray(y)
    X_test, y_test = np.asarray(X_test, dtype=np.float32), np.asarray(y_test)
    methods, budgets = list(methods), list(budgets)
    seeds = list(range(seeds)) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    classifier = PretrainedClassifier() if classifier is None else classifier
    sda = default_sda(classifier.component("autoencoder")) if sda is None else sda
    ladder = LadderClassifier() if ladder is None else ladder
    _check_study(methods, budgets, seeds, y, classifier, sda, ladder)
    templates = {"classifier": classifier, "ladder": ladder}
    records: list[dict] = []
    bar = tqdm(
        total=len(seeds) * len(budgets) * len(methods),
        desc="label-budget study",
        unit="run",
        disable=not progress,
    )
    for seed in seeds:
        bar.set_postfix_str(f"seed {seed}: pretraining")
        pretrained = _pretrain(X, X_test, methods, seed, classifier, sda)
        for budget in budgets:
            rows = balanced_subset(y, budget, seed)
            for method in methods:
                bar.set_postfix_str(f"seed {seed}, {len(rows)} labels, {method}")
                record = _run_one(method, X, y, X_test, y_test, rows, seed, pretrained, templates, logreg_C)
                records.append(
                    {
                        "method": method,
                        "n_labels": int(len(rows)),
                        "seed": seed,
                        "n_unlabelled": int(len(y) - len(rows)),
                        **record,
                    }
                )
                logger.info("%s", records[-1])
                bar.update()
    bar.close()
    return records


def _check_study(methods: list, budgets: list, seeds: list, y: np.ndarray, *estimators) -> None:
    """Fail before any training on a bad method, budget, seed list or estimator setting."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown or no methods {unknown}; choose from {METHODS}")
    if not budgets or not seeds:
        raise ValueError("need at least one budget and one seed")
    classes, counts = np.unique(y, return_counts=True)
    for budget in budgets:
        if budget is not None:
            _check_budget(budget, classes, counts)
    for estimator in estimators:
        estimator._validate_params()


def _fitted(autoencoder: AutoencoderTransformer, X, seed: int, device: str) -> tuple[AutoencoderTransformer, float]:
    """A clone fitted with the study's seed on the classifier's device, and its time."""
    start = time.perf_counter()
    fitted = clone(autoencoder).set_params(random_state=seed, device=device).fit(X)
    return fitted, time.perf_counter() - start


def _pretrain(X, X_test, methods, seed: int, classifier: PretrainedClassifier, sda) -> dict:
    """The autoencoders of one seed, fitted once on every training row, and their costs."""
    out: dict = {}
    if _NEEDS_AE & set(methods):
        out["ae"], out["ae_seconds"] = _fitted(classifier.component("autoencoder"), X, seed, classifier.device)
        out["codes"] = out["ae"].transform(X), out["ae"].transform(X_test)
    if _NEEDS_SDA & set(methods):
        out["sda"], out["sda_seconds"] = _fitted(sda, X, seed, classifier.device)
    return out


def _run_one(
    method: str,
    X,
    y,
    X_test,
    y_test,
    rows,
    seed: int,
    pretrained: dict,
    templates: dict,
    logreg_C: float,
) -> dict:
    """Train one method on the labelled ``rows``; its test error, time and epochs.
    ``templates`` holds the unfitted ``"classifier"`` and ``"ladder"``."""
    start = time.perf_counter()
    pretrain_seconds = 0.0
    if method.startswith(("logreg", "spreading")):
        on_codes = method.endswith("-codes")
        train, test = pretrained["codes"] if on_codes else (X, X_test)
        pretrain_seconds = pretrained["ae_seconds"] if on_codes else 0.0
        if method.startswith("logreg"):
            model = LogisticRegression(C=logreg_C, max_iter=1000).fit(train[rows], y[rows])
        else:
            model = _label_spreading(train, y, rows)
        n_epochs = int(np.max(model.n_iter_))
    elif method == "ladder":
        model = clone(templates["ladder"]).set_params(random_state=seed).fit(X, _partial_labels(y, rows))
        test, n_epochs = X_test, model.n_iter_
    else:
        model = clone(templates["classifier"]).set_params(random_state=seed)
        if method == "scratch":
            model.set_params(pretrain=False)
        else:
            key = "sda" if method == "sda-finetuned" else "ae"
            pretrain_seconds = pretrained[f"{key}_seconds"]
            model.set_params(autoencoder=pretrained[key], prefit=True, freeze=_FREEZE[method])
        model.fit(X[rows], y[rows])
        test, n_epochs = X_test, model.n_iter_
    seconds = time.perf_counter() - start
    with np.errstate(invalid="ignore", divide="ignore"):  # label spreading's isolated rows
        error = float(np.mean(model.predict(test) != y_test))
    return {
        "test_error": error,
        "seconds": seconds,
        "pretrain_seconds": pretrain_seconds,
        "n_epochs": int(n_epochs),
    }


def _partial_labels(y, rows) -> np.ndarray:
    """``y`` with every row but ``rows`` marked unlabelled (-1)."""
    partial = np.full(len(y), -1, dtype=np.int64)
    partial[rows] = y[rows]
    return partial


def _label_spreading(train, y, rows) -> LabelSpreading:
    """Label spreading over all training rows, only ``rows`` keeping their labels (-1 elsewhere)."""
    partial = _partial_labels(y, rows)
    model = LabelSpreading(kernel="knn", n_neighbors=SPREADING_NEIGHBOURS, max_iter=30)
    with np.errstate(invalid="ignore", divide="ignore"):  # isolated rows: sklearn divides by 0
        return model.fit(train, partial)


# -- reporting -------------------------------------------------------------------------------


def _grouped(records) -> tuple[list[str], list[int], dict]:
    methods = list(dict.fromkeys(str(r["method"]) for r in records))
    budgets = sorted({int(r["n_labels"]) for r in records})
    errors: dict = defaultdict(list)
    for r in records:
        errors[str(r["method"]), int(r["n_labels"])].append(float(r["test_error"]))
    return methods, budgets, errors


def summarize(records) -> str:
    """A markdown table: one row per label budget, one column per method, test error in
    percent as mean ± sample standard deviation over seeds."""
    records = list(records)
    if not records:
        raise ValueError("no records to summarize")
    methods, budgets, errors = _grouped(records)
    lines = ["| labels | seeds | " + " | ".join(methods) + " |", "|---:|---:|" + "---:|" * len(methods)]
    for n in budgets:
        cells, n_seeds = [], 0
        for m in methods:
            values = np.asarray(errors.get((m, n), []))
            n_seeds = max(n_seeds, len(values))
            cells.append(_cell(values))
        lines.append(f"| {n} | {n_seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(values: np.ndarray) -> str:
    if len(values) == 0:
        return "–"
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * values.mean():.1f} ± {100 * values.std(ddof=1):.1f}"


def write_study(records, out_dir) -> dict[str, Path]:
    """Write ``study.json`` (the records), ``study.md`` (the table) and ``label_budget.png``.

    Returns
    -------
    dict
        ``{"json": path, "markdown": path, "png": path}``.
    """
    from . import plots  # matplotlib only when writing

    records = list(records)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "study.json", "markdown": out / "study.md", "png": out / "label_budget.png"}
    write_json_atomic(paths["json"], records)
    write_text_atomic(
        paths["markdown"],
        "# Label-budget study\n\nTest error (%), mean ± std over seeds.\n\n" + summarize(records),
    )
    fig = plots.label_budget(
        [{**r, "error": r["test_error"]} for r in records],
        metric="error",
        title="Test error against label budget",
    )
    plots.save_figure(fig, paths["png"])
    return paths

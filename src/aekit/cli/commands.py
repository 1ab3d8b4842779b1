"""What each ``aekit`` subcommand does, given its parsed arguments. Each builds its estimators
and checks their parameters before any data is loaded.

Under ``torchrun`` every process runs the command and trains its part of each batch; rank 0
alone computes the metrics and writes the model, metrics, figures and reports."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..engine import world
from ..estimators import AutoencoderTransformer, PretrainedClassifier
from .flags import given
from .presets import PRESETS, QUICK


def _autoencoder(args, base: dict | None = None) -> AutoencoderTransformer:
    """The estimator the flags describe: ``base`` (or the preset), then every flag given."""
    params = {**(base or {}), **PRESETS.get(args.preset or "", {}), **given(args, args.model_dests)}
    estimator = AutoencoderTransformer(**params, verbose=not args.quiet)
    estimator._validate_params()  # a typo fails here, before the data is loaded
    world()  # so does torchrun's environment, half set, or a process group that cannot be joined
    return estimator


def _fit(estimator, data):
    start = time.perf_counter()
    estimator.fit(data.X_train)
    return estimator, time.perf_counter() - start


def _metrics(estimator, data, seconds: float | None) -> dict:
    metrics = {
        "dataset": data.name,
        "n_train": len(data.X_train),
        "n_test": len(data.X_test),
        "train_mse": -estimator.score(data.X_train),
        "epochs_run": estimator.n_iter_,
        "world_size": world().size,
    }
    if seconds is not None:
        metrics["fit_seconds"] = round(seconds, 3)
    if len(data.X_test):
        metrics["test_mse"] = -estimator.score(data.X_test)
    return metrics


def _write_figures(out: Path, estimator, data) -> None:
    from .. import plots

    plots.save_figure(plots.loss_curves(estimator.history_), out / "loss.png")
    if data.image_shape is not None:
        X = (data.X_test if len(data.X_test) else data.X_train)[:10]
        plots.save_figure(
            plots.reconstruction_grid(X, estimator.reconstruct(X), data.image_shape),
            out / "reconstructions.png",
        )


def _save_outputs(out: Path, estimator, metrics: dict, data) -> None:
    from .. import io
    from ..files import write_json_atomic

    out.mkdir(parents=True, exist_ok=True)
    io.save(estimator, out / "model")
    write_json_atomic(out / "metrics.json", metrics)
    _write_figures(out, estimator, data)


def train(args) -> int:
    from ..datasets import load

    estimator = _autoencoder(args)
    data = load(args.dataset, args.data_dir, verbose=not args.quiet)
    estimator, seconds = _fit(estimator, data)
    if not world().is_main:
        return 0
    metrics = _metrics(estimator, data, seconds)
    out = Path(args.out)
    _save_outputs(out, estimator, metrics, data)
    print(_summary(metrics))
    print(f"wrote {out}/model, {out}/metrics.json and figures")
    return 0


def demo(args) -> int:
    from ..datasets import load
    from ..report import ReportOptions, write_report

    data = load(args.dataset, args.data_dir, verbose=not args.quiet)
    preset = "demo" if data.X_train.shape[1] <= 256 else "demo-large"
    base = {**PRESETS[preset], "random_state": 0, **(QUICK[preset] if args.quick else {})}
    estimator, seconds = _fit(_autoencoder(args, base), data)
    if not world().is_main:
        return 0
    metrics = _metrics(estimator, data, seconds)
    out = Path(args.out)
    options = ReportOptions(tsne=not args.no_tsne, verbose=not args.quiet, activation_steps=50 if args.quick else 200)
    path = write_report(
        out / "report.html", estimator, data, metrics, title=f"aekit demo: {data.name}", options=options
    )
    _save_outputs(out, estimator, metrics, data)  # after the report: metrics now hold the probe's
    print(_summary(metrics))
    print(f"report: {path}")
    return 0


def report(args) -> int:
    from .. import io
    from ..datasets import load
    from ..report import ReportOptions, write_report

    if not world().is_main:  # nothing to train: under torchrun, rank 0 alone writes the report
        return 0
    model_dir = Path(args.model_dir)
    if (model_dir / "model" / "config.json").exists():
        model_dir = model_dir / "model"
    estimator = io.load(model_dir)
    if args.dataset is None:
        raise ValueError("aekit report needs --dataset (the data the model was trained on)")
    data = load(args.dataset, args.data_dir, verbose=not args.quiet)
    metrics = _metrics(estimator, data, None)
    out = Path(args.out) if args.out else model_dir.parent / "report.html"
    options = ReportOptions(tsne=not args.no_tsne, verbose=not args.quiet)
    study = _read_study(args.study) if args.study else None
    path = write_report(out, estimator, data, metrics, title=f"aekit report: {data.name}", options=options, study=study)
    print(f"report: {path}")
    return 0


def _study_templates(args) -> tuple[PretrainedClassifier, AutoencoderTransformer | None]:
    """The classifier (holding the autoencoder) and the stacked denoising autoencoder the
    flags describe, checked."""
    from .. import study

    values = given(args, args.model_dests)
    sda_values = {k.split("__", 1)[1]: v for k, v in values.items() if k.startswith("sda__")}
    classifier = PretrainedClassifier(verbose=not args.quiet).set_params(
        **{k: v for k, v in values.items() if not k.startswith("sda__")}
    )
    sda = study.default_sda(classifier.component("autoencoder")).set_params(**sda_values) if sda_values else None
    for estimator in (classifier, sda):
        if estimator is not None:
            estimator._validate_params()
    world()
    return classifier, sda


def pretrain(args) -> int:
    from .. import study
    from ..datasets import load

    classifier, sda = _study_templates(args)
    data = load(args.dataset, args.data_dir, verbose=not args.quiet)
    if data.y_train is None or not len(data.X_test):
        raise ValueError(f"{data.name}: the study needs labels and a test set")
    budgets = args.budgets or ((20, 50, 100, 500, None) if data.name == "digits" else study.DEFAULT_BUDGETS)
    records = study.run_study(
        data.X_train,
        data.y_train,
        data.X_test,
        data.y_test,
        budgets=budgets,
        seeds=args.seeds,
        methods=args.methods or study.METHODS,
        classifier=classifier,
        sda=sda,
        logreg_C=args.logreg_c,
        progress=not args.quiet,
    )
    if not world().is_main:
        return 0
    paths = study.write_study(records, args.out)
    print(study.summarize(records))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _read_study(path) -> list[dict]:
    try:
        records = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable study.json ({error})") from None
    if not isinstance(records, list) or not all(
        isinstance(r, dict) and {"method", "n_labels", "test_error"} <= set(r) for r in records
    ):
        raise ValueError(f"{path}: not a study.json (a list of records with method, n_labels, test_error)")
    return records


def _summary(metrics: dict) -> str:
    keys = [
        k
        for k in (
            "dataset",
            "train_mse",
            "test_mse",
            "probe_accuracy_codes",
            "probe_accuracy_raw",
            "fit_seconds",
        )
        if k in metrics
    ]
    return "  ".join(f"{k}={metrics[k]:.5g}" if isinstance(metrics[k], float) else f"{k}={metrics[k]}" for k in keys)

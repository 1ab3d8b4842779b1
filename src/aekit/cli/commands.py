"""What each ``aekit`` subcommand does, given its parsed arguments. Each builds its estimators
and checks their parameters, and that its output folder may be written, before any data is
loaded; each writes its whole output folder at once (:mod:`.runs`).

Under ``torchrun`` every process runs the command and trains its part of each batch; rank 0
alone computes the metrics and writes the model, metrics, figures and reports."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ..engine import world
from ..estimators import (
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    VariationalAutoencoder,
)
from . import outliers, runs
from .flags import given
from .presets import PRESETS, QUICK
from .pretrain import read_study

# `aekit train --model NAME`
MODELS = {"autoencoder": AutoencoderTransformer, "vae": VariationalAutoencoder}
# what `score` measures, by estimator: (metric name, sign that turns the score into it)
_SCORES = {AutoencoderTransformer: ("mse", -1.0), VariationalAutoencoder: ("elbo", 1.0)}


def _model(args, base: dict | None = None):
    """The estimator the flags describe: ``base`` (or the preset), then every flag given; the
    model ``--model`` names (an AutoencoderTransformer where the command has no ``--model``)."""
    model = getattr(args, "model", "autoencoder")
    values = given(args, args.model_dests)
    for dest in values:
        flag, models = getattr(args, "model_flags", {}).get(dest, (dest, (model,)))
        if model not in models:
            raise ValueError(f"{flag} does not apply to --model {model}: {MODELS[model].__name__} has no {dest}")
    if args.preset and model != "autoencoder":
        raise ValueError(f"--preset names AutoencoderTransformer settings; it does not apply to --model {model}")
    params = {**(base or {}), **PRESETS.get(args.preset or "", {}), **values}
    estimator = MODELS[model](**params, verbose=not args.quiet)
    estimator._validate_params()  # a typo fails here, before the data is loaded
    world()  # so does torchrun's environment, half set, or a process group that cannot be joined
    return estimator


def _fit(estimator, data):
    start = time.perf_counter()
    estimator.fit(data.X_train)
    return estimator, time.perf_counter() - start


def _with_image_shape(estimator, data):
    """A convolutional model without an image shape takes the data set's (one channel)."""
    if getattr(estimator, "architecture", None) == "conv" and estimator.image_shape is None and data.image_shape:
        estimator.set_params(image_shape=tuple(data.image_shape))
    return estimator


def _metrics(estimator, data, seconds: float | None) -> dict:
    name, sign = _SCORES[type(estimator)]
    metrics = {
        "dataset": data.name,
        "n_train": len(data.X_train),
        "n_test": len(data.X_test),
        f"train_{name}": sign * estimator.score(data.X_train),
        "epochs_run": estimator.n_iter_,
        "world_size": world().size,
    }
    if seconds is not None:
        metrics["fit_seconds"] = round(seconds, 3)
    if len(data.X_test):
        metrics[f"test_{name}"] = sign * estimator.score(data.X_test)
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
        if hasattr(estimator, "sample"):
            plots.save_figure(
                plots.sample_grid(estimator.sample(64, random_state=0), data.image_shape), out / "samples.png"
            )


def _save_outputs(out: Path, estimator, metrics: dict, data) -> None:
    """The model, ``metrics.json`` and the figures, into ``out`` (a folder being built)."""
    from .. import io
    from ..files import write_json_atomic

    io.save(estimator, out / "model")
    write_json_atomic(out / "metrics.json", metrics)
    _write_figures(out, getattr(estimator, "autoencoder_", estimator), data)  # a detector's autoencoder


def train(args) -> int:
    from .. import checkpoints

    if args.resume:
        return _resume(args)
    if args.checkpoint_every is not None and args.checkpoint_every < 1:
        raise ValueError(f"--checkpoint-every must be an int >= 1, got {args.checkpoint_every}")
    if not args.detector and (args.normal_labels or given(args, args.detector_dests)):
        raise ValueError("--normal-labels and --contamination are for outlier detection: add --detector")
    if args.detector and args.checkpoint_every is not None:
        raise ValueError("--checkpoint-every is for autoencoders; an outlier detector's training is not checkpointed")
    detector_base = outliers.default_autoencoder_params() if args.detector and args.model == "autoencoder" else None
    estimator = _model(args, detector_base)
    detector = outliers.make_detector(args, estimator) if args.detector else None
    if not world().is_main:
        return _train_on_rank(args, estimator, detector)
    out = Path(args.out)
    runs.check_target(out)
    settings = {  # paths made absolute: --resume may run from another folder
        "dataset": _absolute_unless_named(args.dataset or "digits"),
        "data_dir": args.data_dir and str(Path(args.data_dir).absolute()),
        "tensorboard": args.tensorboard and str(Path(args.tensorboard).absolute()),
    }
    work, run_id = runs.start(out, settings, restart=args.restart)

    def fit(data):
        _with_image_shape(estimator, data)  # the detector holds this estimator too
        estimator.set_params(callbacks=_callbacks(args.tensorboard, data))
        if detector is not None:
            return outliers.fit_detector(detector, data, args.normal_labels)
        directory = runs.checkpoint_dir(work)
        return checkpoints.fit(estimator, data.X_train, directory=directory, every=args.checkpoint_every), {}

    return _run(out, work, run_id, settings, fit, args.quiet)


def _train_on_rank(args, estimator, detector) -> int:
    """A process of a torchrun group other than rank 0: it trains its part of every batch, as
    rank 0 does, and writes nothing."""
    from ..datasets import load

    data = load(args.dataset or "digits", args.data_dir, verbose=False)
    _with_image_shape(estimator, data)
    if detector is not None:
        outliers.fit_detector(detector, data, args.normal_labels)
    else:
        estimator.fit(data.X_train)
    return 0


def _absolute_unless_named(dataset: str) -> str:
    from ..datasets import available

    return dataset if dataset.strip().lower().replace("_", "-") in available() else str(Path(dataset).absolute())


def _resume(args) -> int:
    """``aekit train --resume DIR``: the unfinished run of DIR, with its own settings."""
    from .. import checkpoints

    if world().size > 1:
        raise ValueError("--resume runs in one process (not under torchrun)")
    out = Path(args.resume)
    own = (*given(args, args.model_dests), "preset", "dataset", "data_dir", "checkpoint_every", "restart")
    conflicting = [k for k in own if getattr(args, k)]
    if conflicting:
        flags = ", ".join("--" + k.replace("_", "-") for k in conflicting)
        raise ValueError(f"--resume continues a run with its own settings; drop {flags}")
    settings = runs.settings(out)
    directory = runs.checkpoint_dir(runs.unfinished(out))
    tensorboard = args.tensorboard or settings["tensorboard"]

    def fit(data):
        callbacks = _callbacks(tensorboard, data, checkpoints.epochs_run(directory))
        return checkpoints.resume(directory, data.X_train, callbacks=callbacks, verbose=not args.quiet), {}

    return _run(out, runs.unfinished(out), settings["run_id"], settings, fit, args.quiet)


def _run(out: Path, work: Path, run_id: str, settings: dict, fit, quiet: bool) -> int:
    """Load the data, ``fit(data)`` (the fitted estimator and metrics of its own) with its
    checkpoints in ``work``, publish the outputs.
    After Ctrl-C or SIGTERM the run can be resumed; after a failure its unfinished folder goes,
    unless a checkpoint can continue it."""
    from ..datasets import load

    try:
        data = load(settings["dataset"], settings["data_dir"], verbose=not quiet)
        start = time.perf_counter()
        fitted, found = fit(data)
        _publish(out, work, fitted, data, {**found, "run_id": run_id}, time.perf_counter() - start)
    except KeyboardInterrupt as stop:
        raise runs.interrupted(stop, out, work) from None
    except BaseException:
        runs.abandon(out, work)
        raise
    return 0


def _publish(out: Path, work: Path, estimator, data, extra: dict, seconds: float) -> None:
    """Swap the run's outputs in as one folder; then its unfinished folder goes."""
    metrics = {**_metrics(getattr(estimator, "autoencoder_", estimator), data, seconds), **extra}
    with runs.output_folder(out) as tmp:
        _save_outputs(tmp, estimator, metrics, data)
    runs.finish(work)
    print(_summary(metrics))
    print(f"wrote {out}/model, {out}/metrics.json and figures")


def _callbacks(tensorboard, data, first_step: int = 0) -> tuple:
    """The callbacks of ``--tensorboard DIR``: losses, learning rate and reconstructions."""
    if not tensorboard:
        return ()
    from ..tensorboard import TensorBoardLogger

    images = data.X_test if len(data.X_test) else data.X_train
    try:
        logger = TensorBoardLogger(tensorboard, images=images[:8], image_shape=data.image_shape)
    except ImportError as exc:
        raise ValueError(f"--tensorboard: {exc}") from None
    logger.step = first_step  # a resumed run goes on where it stopped
    return (logger,)


def demo(args) -> int:
    from ..datasets import load
    from ..report import ReportOptions, write_report

    out = Path(args.out)
    runs.check_target(out)
    data = load(args.dataset, args.data_dir, verbose=not args.quiet)
    preset = "demo" if data.X_train.shape[1] <= 256 else "demo-large"
    base = {**PRESETS[preset], "random_state": 0, **(QUICK[preset] if args.quick else {})}
    estimator, seconds = _fit(_model(args, base), data)
    if not world().is_main:
        return 0
    metrics = _metrics(estimator, data, seconds)
    options = ReportOptions(tsne=not args.no_tsne, verbose=not args.quiet, activation_steps=50 if args.quick else 200)
    with runs.output_folder(out) as tmp:
        write_report(tmp / "report.html", estimator, data, metrics, title=f"aekit demo: {data.name}", options=options)
        _save_outputs(tmp, estimator, metrics, data)  # after the report: metrics now hold the probe's
    print(_summary(metrics))
    print(f"report: {out / 'report.html'}")
    return 0


def _model_dir(path) -> Path:
    """The model directory ``path`` names: itself, or the ``model/`` that `aekit train` wrote in it."""
    path = Path(path)
    return path / "model" if (path / "model" / "config.json").exists() else path


def report(args) -> int:
    from .. import io
    from ..datasets import load
    from ..report import ReportOptions, write_report

    if not world().is_main:  # nothing to train: under torchrun, rank 0 alone writes the report
        return 0
    folder = Path(args.model_dir)
    model_dir = _model_dir(args.model_dir)
    if args.dataset is None:
        raise ValueError("aekit report needs --dataset (the data the model was trained on)")
    estimator = io.load(model_dir)
    if not isinstance(estimator, (*MODELS.values(), AutoencoderOutlierDetector)):
        raise ValueError(
            f"{model_dir} holds a {type(estimator).__name__}; aekit report describes autoencoders "
            "(AutoencoderTransformer, VariationalAutoencoder) and outlier detectors (AutoencoderOutlierDetector)"
        )
    data = load(args.dataset, args.data_dir, verbose=not args.quiet)
    metrics = _metrics(getattr(estimator, "autoencoder_", estimator), data, None)
    out = Path(args.out) if args.out else folder / "report.html"
    options = ReportOptions(tsne=not args.no_tsne, verbose=not args.quiet)
    study = read_study(args.study) if args.study else None
    known = outliers.outlier_mask(data.y_test, args.normal_labels)
    path = write_report(
        out, estimator, data, metrics, title=f"aekit report: {data.name}", options=options, study=study, outliers=known
    )
    print(f"report: {path}")
    return 0


def detect(args) -> int:
    from ..datasets import load
    from ..files import write_text_atomic

    detector = outliers.load_detector(args.model_dir)
    data = load(args.data, args.data_dir, verbose=not args.quiet)
    text, X, labels = outliers.scores_table(detector, data)
    path = write_text_atomic(args.out, text)
    flagged = int(np.sum(detector.predict(X) == -1))
    print(f"{len(X)} rows scored, {flagged} flagged as outliers ({flagged / len(X):.2%}): {path}")
    if args.report:
        known = outliers.outlier_mask(labels, args.normal_labels)
        title = f"aekit detect: {data.name}"
        print(f"report: {outliers.anomaly_report(args.report, detector, X, data.image_shape, known, title)}")
    return 0


def generate(args) -> int:
    from .. import io, plots

    model_dir = _model_dir(args.model_dir)
    estimator = io.load(model_dir)
    if not hasattr(estimator, "sample"):
        raise ValueError(
            f"{model_dir} holds an estimator of class {type(estimator).__name__}, which cannot generate; "
            "train a VariationalAutoencoder (aekit train --model vae)"
        )
    shape = args.image_shape or _square(estimator.n_features_in_)
    if math.prod(shape) != estimator.n_features_in_:
        raise ValueError(f"--image-shape {shape} does not hold the model's {estimator.n_features_in_} inputs")
    samples = estimator.sample(args.n, random_state=args.seed)
    plots.save_figure(plots.sample_grid(samples, shape), args.out)
    print(f"wrote {args.n} samples to {args.out}")
    return 0


def _square(n_features: int) -> tuple[int, int]:
    side = math.isqrt(n_features)
    if side * side != n_features:
        raise ValueError(f"the model's {n_features} inputs are no square image; give --image-shape H,W")
    return side, side


def _summary(metrics: dict) -> str:
    keys = [
        k
        for k in (
            "dataset",
            "train_mse",
            "test_mse",
            "train_elbo",
            "test_elbo",
            "probe_accuracy_codes",
            "probe_accuracy_raw",
            "fit_seconds",
        )
        if k in metrics
    ]
    return "  ".join(f"{k}={metrics[k]:.5g}" if isinstance(metrics[k], float) else f"{k}={metrics[k]}" for k in keys)

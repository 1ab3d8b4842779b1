"""The ``aekit`` command: parses arguments, builds estimators, calls the library.

Nothing runs at import; ``main(argv)`` returns the exit code (0 ok, 1 a reported error).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

logger = logging.getLogger(__name__)

# the book's stacked autoencoder (Géron ch. 15): tied 784-300-150-300-784, ELU, L2 5e-4, Adam 0.01
PRESETS = {
    "book": dict(hidden_layer_sizes=(300, 150), activation="elu", tied=True, l2=5e-4,
                 learning_rate=0.01, epochs=5, batch_size=150),
    # the book's layer-wise case (ch. 15, "Training One Autoencoder at a Time"): untied, two
    # phases of 4 epochs, one Adam whose step count runs on across the phases as in TF1
    "book-layerwise": dict(hidden_layer_sizes=(300, 150), activation="elu", tied=False, l2=1e-4,
                           learning_rate=0.01, batch_size=150, training="layerwise",
                           layerwise_epochs=(4, 4), layerwise_step_count="shared"),
    # small and quick, for the 64-pixel digits: what `aekit demo` trains
    "demo": dict(hidden_layer_sizes=(48, 24), activation="elu", tied=True, l2=1e-4,
                 learning_rate=0.005, batch_size=32, corruption="gaussian", corruption_level=0.1,
                 training="layerwise", layerwise_epochs=(40, 40), fine_tune_epochs=60),
    # what `aekit demo --dataset mnist` (or any 28x28 set) trains: the book's model, denoising, layer-wise
    "demo-large": dict(hidden_layer_sizes=(300, 150), activation="elu", tied=True, l2=5e-4,
                       learning_rate=0.01, batch_size=150, corruption="gaussian",
                       corruption_level=0.1, training="layerwise", layerwise_epochs=(2, 2),
                       fine_tune_epochs=2),
}

# estimator parameter -> (flags, argparse keywords); defaults are None so presets can fill in
MODEL_OPTIONS = {
    "hidden_layer_sizes": (["--hidden"], dict(type=lambda s: tuple(int(v) for v in s.split(",")),
                                              help="encoder widths, e.g. 300,150")),
    "activation": (["--activation"], dict(choices=["elu", "relu", "selu", "sigmoid", "tanh", "linear"])),
    "tied": (["--tied"], dict(action=argparse.BooleanOptionalAction, help="tie decoder weights (--no-tied unties)")),
    "l2": (["--l2"], dict(type=float, help="L2 weight on weight matrices")),
    "loss": (["--loss"], dict(choices=["mse", "bce"])),
    "corruption": (["--corruption"], dict(choices=["none", "gaussian", "masking"])),
    "corruption_level": (["--corruption-level"], dict(type=float, help="gaussian std or masking rate")),
    "training": (["--training"], dict(choices=["end_to_end", "layerwise"])),
    "layerwise_method": (["--layerwise-method"], dict(choices=["phases", "separate"])),
    "layerwise_epochs": (["--layerwise-epochs"], dict(type=lambda s: _one_or_tuple(int(v) for v in s.split(",")),
                                                       help="epochs per phase: one value or one per layer")),
    "layerwise_step_count": (["--layerwise-step-count"], dict(
        choices=["per_phase", "shared"], help="shared: Adam's step count runs on across phases (the book's TF1 code)")),
    "fine_tune_epochs": (["--fine-tune-epochs"], dict(type=int)),
    "fine_tune_learning_rate": (["--fine-tune-lr"], dict(type=float, help="default: --lr / 10")),
    "epochs": (["--epochs"], dict(type=int)),
    "batch_size": (["--batch-size"], dict(type=int)),
    "learning_rate": (["--lr", "--learning-rate"], dict(type=float)),
    "learning_rate_schedule": (["--lr-schedule"], dict(choices=["constant", "cosine"],
                                                       help="of end-to-end training and fine-tuning")),
    "validation_fraction": (["--validation-fraction"], dict(type=float)),
    "patience": (["--patience"], dict(type=int)),
    "device": (["--device"], dict(help="auto, cpu, cuda, cuda:1, ...")),
    "random_state": (["--seed"], dict(type=int)),
}


def _one_or_tuple(values):
    """``4`` for "4" (every phase), ``(4, 2)`` for "4,2" (one per layer)."""
    values = tuple(values)
    return values[0] if len(values) == 1 else values


def _add_data_options(parser: argparse.ArgumentParser, default: str | None = "digits") -> None:
    parser.add_argument("--dataset", default=default,
                        help="digits (embedded), mnist, fashion-mnist, or a .npy/.npz/.csv file")
    parser.add_argument("--data-dir", help="folder holding the IDX files (else $AEKIT_DATA_DIR, then the cache)")


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model and training")
    group.add_argument("--preset", choices=sorted(PRESETS), help="start from a named configuration")
    for dest, (flags, kwargs) in MODEL_OPTIONS.items():
        group.add_argument(*flags, dest=dest, default=None, **kwargs)


def _estimator_params(args, base: dict | None = None) -> dict:
    """Preset (or ``base``) first, then every option the user gave explicitly."""
    params = dict(base or {})
    params.update(PRESETS.get(args.preset, {}) if args.preset else {})
    params.update({k: getattr(args, k) for k in MODEL_OPTIONS if getattr(args, k) is not None})
    if params.get("corruption") == "none":
        params["corruption"] = None
    return params


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="aekit", description="Autoencoders: train, inspect, report.")
    parser.add_argument("--version", action="version", version=f"aekit {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="train a tied denoising autoencoder layer-wise and write an HTML report")
    _add_data_options(demo)
    _add_model_options(demo)
    demo.add_argument("--out", default="demo-report", help="output folder (default: demo-report)")
    demo.add_argument("--quick", action="store_true", help="a few epochs only (for smoke tests)")
    demo.add_argument("--no-tsne", action="store_true", help="skip the t-SNE map (the slowest figure)")

    train = sub.add_parser("train", help="train an autoencoder; write the model, metrics and figures")
    _add_data_options(train)
    _add_model_options(train)
    train.add_argument("--out", default="aekit-out", help="output folder (default: aekit-out)")

    report = sub.add_parser("report", help="write the HTML report of a saved model")
    report.add_argument("model_dir", help="a folder written by `aekit train` (its model/ or the folder itself)")
    _add_data_options(report, default=None)
    report.add_argument("--out", default=None, help="HTML file (default: MODEL_DIR/report.html)")
    report.add_argument("--no-tsne", action="store_true", help="skip the t-SNE map")
    report.add_argument("--study", help="a study.json written by `aekit pretrain`, to add its results")
    _add_pretrain_parser(sub)
    return parser


def _int_list(text: str) -> tuple:
    return tuple(None if v.strip() == "all" else int(v) for v in text.split(","))


def _add_pretrain_parser(sub) -> None:
    study = sub.add_parser("pretrain", help="label-budget study: how much unsupervised pretraining "
                                            "helps a classifier that has few labels")
    _add_data_options(study)
    study.add_argument("--budgets", type=_int_list, default=None,
                       help="labels per run, comma-separated, 'all' for every row "
                            "(default: 100,600,1000,3000,all; digits: 20,50,100,500,all)")
    study.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    study.add_argument("--methods", type=lambda s: tuple(s.split(",")), default=None,
                       help="comma-separated subset of: scratch, pretrained-frozen, pretrained-finetuned, "
                            "sda-finetuned, logreg-codes, logreg-raw, spreading-codes, spreading-raw")
    study.add_argument("--hidden", type=lambda s: tuple(int(v) for v in s.split(",")), default=(300, 150))
    study.add_argument("--pretrain-epochs", type=int, default=10)
    study.add_argument("--pretrain-batch-size", type=int, default=150)
    study.add_argument("--pretrain-lr", type=float, default=0.01)
    study.add_argument("--masking-rate", type=float, default=0.3)
    study.add_argument("--epochs", type=int, default=100, help="classifier epochs")
    study.add_argument("--batch-size", type=int, default=32)
    study.add_argument("--lr", type=float, default=0.01)
    study.add_argument("--l2", type=float, default=0.0)
    study.add_argument("--dropout", type=float, default=0.0)
    study.add_argument("--validation-fraction", type=float, default=0.0)
    study.add_argument("--patience", type=int, default=None)
    study.add_argument("--logreg-c", type=float, default=1.0)
    study.add_argument("--device", default="auto")
    study.add_argument("--out", default="study", help="output folder (default: study)")


def cmd_pretrain(args) -> int:
    from . import study
    from .datasets import load

    data = load(args.dataset, args.data_dir, verbose=not args.quiet)
    if data.y_train is None or not len(data.X_test):
        raise ValueError(f"{data.name}: the study needs labels and a test set")
    budgets = args.budgets or ((20, 50, 100, 500, None) if data.name == "digits" else study.DEFAULT_BUDGETS)
    records = study.run_study(
        data.X_train, data.y_train, data.X_test, data.y_test, budgets=budgets, seeds=args.seeds,
        methods=args.methods or study.METHODS, hidden_layer_sizes=args.hidden,
        pretrain_epochs=args.pretrain_epochs, pretrain_batch_size=args.pretrain_batch_size,
        pretrain_learning_rate=args.pretrain_lr, masking_rate=args.masking_rate,
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, l2=args.l2,
        dropout=args.dropout, validation_fraction=args.validation_fraction,
        patience=args.patience, logreg_C=args.logreg_c, device=args.device,
        progress=not args.quiet)
    paths = study.write_study(records, args.out)
    print(study.summarize(records))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _metrics(estimator, data, seconds: float) -> dict:
    metrics = {"dataset": data.name, "n_train": len(data.X_train), "n_test": len(data.X_test),
               "train_mse": -estimator.score(data.X_train), "epochs_run": estimator.n_iter_,
               "fit_seconds": round(seconds, 3)}
    if len(data.X_test):
        metrics["test_mse"] = -estimator.score(data.X_test)
    return metrics


def _fit(params: dict, data, verbose: bool):
    from .estimators import AutoencoderTransformer

    estimator = AutoencoderTransformer(**{**params, "verbose": verbose})
    start = time.perf_counter()
    estimator.fit(data.X_train)
    return estimator, time.perf_counter() - start


def _write_figures(out: Path, estimator, data) -> None:
    from . import plots

    plots.save_figure(plots.loss_curves(estimator.history_), out / "loss.png")
    if data.image_shape is not None:
        X = data.X_test if len(data.X_test) else data.X_train
        X = X[:10]
        plots.save_figure(plots.reconstruction_grid(X, estimator.reconstruct(X), data.image_shape),
                          out / "reconstructions.png")


def _save_outputs(out: Path, estimator, metrics: dict, data) -> None:
    from . import io
    from .report import write_json_atomic

    out.mkdir(parents=True, exist_ok=True)
    io.save(estimator, out / "model")
    write_json_atomic(out / "metrics.json", metrics)
    _write_figures(out, estimator, data)


def cmd_train(args) -> int:
    from .datasets import load

    data = load(args.dataset, args.data_dir, verbose=not args.quiet)
    estimator, seconds = _fit(_estimator_params(args), data, not args.quiet)
    metrics = _metrics(estimator, data, seconds)
    out = Path(args.out)
    _save_outputs(out, estimator, metrics, data)
    print(_summary(metrics))
    print(f"wrote {out}/model, {out}/metrics.json and figures")
    return 0


def cmd_demo(args) -> int:
    from .datasets import load
    from .report import ReportOptions, write_report

    data = load(args.dataset, args.data_dir, verbose=not args.quiet)
    base = dict(PRESETS["demo" if data.X_train.shape[1] <= 256 else "demo-large"], random_state=0)
    if args.quick:
        base.update(layerwise_epochs=(1, 1) if data.X_train.shape[1] > 256 else (2, 2),
                    fine_tune_epochs=1 if data.X_train.shape[1] > 256 else 2)
    estimator, seconds = _fit(_estimator_params(args, base), data, not args.quiet)
    metrics = _metrics(estimator, data, seconds)
    out = Path(args.out)
    options = ReportOptions(tsne=not args.no_tsne, verbose=not args.quiet,
                            activation_steps=50 if args.quick else 200)
    path = write_report(out / "report.html", estimator, data, metrics,
                        title=f"aekit demo: {data.name}", options=options)
    _save_outputs(out, estimator, metrics, data)  # after the report: metrics now hold the probe's
    print(_summary(metrics))
    print(f"report: {path}")
    return 0


def cmd_report(args) -> int:
    from . import io
    from .datasets import load
    from .report import ReportOptions, write_report

    model_dir = Path(args.model_dir)
    if (model_dir / "model" / "config.json").exists():
        model_dir = model_dir / "model"
    estimator = io.load(model_dir)
    if args.dataset is None:
        raise ValueError("aekit report needs --dataset (the data the model was trained on)")
    data = load(args.dataset, args.data_dir, verbose=not args.quiet)
    metrics = _metrics(estimator, data, float("nan"))
    metrics.pop("fit_seconds")
    out = Path(args.out) if args.out else model_dir.parent / "report.html"
    options = ReportOptions(tsne=not args.no_tsne, verbose=not args.quiet)
    study = _read_study(args.study) if args.study else None
    path = write_report(out, estimator, data, metrics, title=f"aekit report: {data.name}",
                        options=options, study=study)
    print(f"report: {path}")
    return 0


def _read_study(path) -> list[dict]:
    import json

    try:
        records = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable study.json ({error})") from None
    if not isinstance(records, list) or not all(
            isinstance(r, dict) and {"method", "n_labels", "test_error"} <= set(r) for r in records):
        raise ValueError(f"{path}: not a study.json (a list of records with method, n_labels, test_error)")
    return records


def _summary(metrics: dict) -> str:
    keys = [k for k in ("dataset", "train_mse", "test_mse", "probe_accuracy_codes",
                        "probe_accuracy_raw", "fit_seconds") if k in metrics]
    return "  ".join(f"{k}={metrics[k]:.5g}" if isinstance(metrics[k], float) else f"{k}={metrics[k]}"
                     for k in keys)


COMMANDS = {"demo": cmd_demo, "train": cmd_train, "report": cmd_report, "pretrain": cmd_pretrain}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aekit`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from .datasets import DatasetError
    from .io import ModelFileError

    try:
        return COMMANDS[args.command](args)
    except (DatasetError, ModelFileError, ValueError, FileExistsError, FileNotFoundError) as error:
        print(f"aekit {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

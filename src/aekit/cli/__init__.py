"""The ``aekit`` command: parses arguments, builds estimators, calls the library.

Nothing runs at import; ``main(argv)`` returns the exit code: 0 ok, 1 an expected failure
(bad data, settings or files, a full disk, a diverging run) reported in one line, 128 + the
signal's number after SIGINT or SIGTERM (``--debug`` shows tracebacks instead). Every model and
training flag comes from an estimator's parameter table (:mod:`.flags`).
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..estimators import AutoencoderOutlierDetector, AutoencoderTransformer, LadderClassifier, PretrainedClassifier
from . import commands, errors, pretrain, runs
from .commands import MODELS
from .flags import add_model_flags, add_param_flags
from .outliers import normal_labels
from .presets import PRESETS

logger = logging.getLogger(__name__)

# the parameters a command sets from elsewhere than a flag of its own
_NOT_FLAGS = ("verbose",)


def _add_data_options(parser: argparse.ArgumentParser, default: str | None = "digits") -> None:
    parser.add_argument(
        "--dataset",
        default=default,
        help="digits (embedded), mnist, fashion-mnist, a .npy/.npz/.csv file, or a folder of .npy shards "
        "(.npy files and shards are streamed from disk, never loaded whole)",
    )
    parser.add_argument("--data-dir", help="folder holding the IDX files (else $AEKIT_DATA_DIR, then the cache)")


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model and training (AutoencoderTransformer's parameters)")
    group.add_argument("--preset", choices=sorted(PRESETS), help="start from a named configuration")
    parser.set_defaults(model_dests=add_param_flags(group, AutoencoderTransformer, exclude=_NOT_FLAGS))


def _add_models_options(parser: argparse.ArgumentParser) -> None:
    """``--model`` and the flags of every model's parameters (each model's own flags say so)."""
    group = parser.add_argument_group("model and training (the chosen model's parameters)")
    group.add_argument(
        "--model",
        choices=list(MODELS),
        default="autoencoder",
        help="autoencoder: AutoencoderTransformer; vae: VariationalAutoencoder (default: autoencoder)",
    )
    group.add_argument("--preset", choices=sorted(PRESETS), help="start from a named configuration (autoencoder)")
    flags = add_model_flags(group, MODELS, exclude=_NOT_FLAGS)
    parser.set_defaults(model_dests=list(flags), model_flags=flags)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="aekit", description="Autoencoders: train, inspect, report.")
    parser.add_argument("--version", action="version", version=f"aekit {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="train a tied denoising autoencoder layer-wise and write an HTML report")
    _add_data_options(demo)
    _add_model_options(demo)
    demo.add_argument("--out", default="demo-report", help="output folder (default: demo-report)")
    demo.add_argument("--quick", action="store_true", help="a few epochs only (for smoke tests)")
    demo.add_argument("--no-tsne", action="store_true", help="skip the t-SNE map (the slowest figure)")

    train = sub.add_parser("train", help="train an autoencoder; write the model, metrics and figures")
    _add_data_options(train, default=None)  # None: digits, unless --resume takes the run's own
    _add_models_options(train)
    train.add_argument("--out", default="aekit-out", help="output folder (default: aekit-out)")
    _add_run_options(train)
    _add_detector_options(train)

    generate = sub.add_parser("generate", help="draw new images from a saved variational autoencoder")
    generate.add_argument("model_dir", help="a folder written by `aekit train --model vae` (or its model/)")
    generate.add_argument("--n", type=int, default=64, help="how many images (default: 64)")
    generate.add_argument("--out", default="samples.png", help="image file (default: samples.png)")
    generate.add_argument("--seed", type=int, default=None, help="seeds the draws (default: fresh ones)")
    generate.add_argument(
        "--image-shape", type=_int_list, default=None, help="H,W of one image (default: square, from the inputs)"
    )

    report = sub.add_parser("report", help="write the HTML report of a saved model")
    report.add_argument("model_dir", help="a folder written by `aekit train` (its model/ or the folder itself)")
    _add_data_options(report, default=None)
    report.add_argument("--out", default=None, help="HTML file (default: MODEL_DIR/report.html)")
    report.add_argument("--no-tsne", action="store_true", help="skip the t-SNE map")
    report.add_argument("--study", help="a study.json written by `aekit pretrain`, to add its results")
    _add_normal_labels(report)
    _add_pretrain_parser(sub)
    _add_detect_parser(sub)
    for command in sub.choices.values():  # `aekit train ... --debug` as well as `aekit --debug train`
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def _add_run_options(train: argparse.ArgumentParser) -> None:
    group = train.add_argument_group("checkpoints and monitoring")
    group.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="N",
        help="also write a checkpoint every N epochs (one is always written on SIGINT or SIGTERM)",
    )
    group.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the unfinished run whose --out was DIR, with its own settings",
    )
    group.add_argument("--restart", action="store_true", help="discard an unfinished run of --out and start afresh")
    group.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="log each epoch's losses, learning rate and reconstructions for TensorBoard "
        "(needs the tensorboard package: pip install 'aekit[tensorboard]')",
    )


def _add_normal_labels(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--normal-labels",
        type=normal_labels,
        metavar="L[,L...]",
        help="the labels of the normal rows: the others are known anomalies (a ROC curve, a test AUROC)",
    )


def _add_detector_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("outlier detection (AutoencoderOutlierDetector's parameters)")
    group.add_argument(
        "--detector",
        action="store_true",
        help="train an AutoencoderOutlierDetector around the autoencoder (whose flags then start "
        "from the detector's default autoencoder); with --normal-labels on those rows only",
    )
    parser.set_defaults(detector_dests=add_param_flags(group, AutoencoderOutlierDetector, only=("contamination",)))
    _add_normal_labels(group)


def _add_detect_parser(sub) -> None:
    detect = sub.add_parser("detect", help="score rows with a saved outlier detector; write a CSV of scores")
    detect.add_argument(
        "model_dir", help="a folder written by `aekit train --detector` (its model/ or the folder itself)"
    )
    detect.add_argument("--data", required=True, help="digits, mnist, fashion-mnist, or a .npy/.npz/.csv file")
    detect.add_argument("--data-dir", help="folder holding the IDX files (else $AEKIT_DATA_DIR, then the cache)")
    detect.add_argument("--out", default="scores.csv", help="CSV of every row's scores (default: scores.csv)")
    detect.add_argument("--report", help="also write an HTML page: the most anomalous images, the histogram, ROC")
    _add_normal_labels(detect)


def _int_list(text: str) -> tuple:
    return tuple(None if v.strip() == "all" else int(v) for v in text.split(","))


def _add_pretrain_parser(sub) -> None:
    from ..study import METHODS

    study = sub.add_parser(
        "pretrain",
        help="label-budget study: how much unsupervised pretraining helps a classifier that has few labels",
    )
    _add_data_options(study)
    study.add_argument(
        "--budgets",
        type=_int_list,
        default=None,
        help="labels per run, comma-separated, 'all' for every row "
        "(default: 100,600,1000,3000,all; digits: 20,50,100,500,all)",
    )
    study.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    study.add_argument(
        "--methods",
        type=lambda s: tuple(s.split(",")),
        default=None,
        help="comma-separated subset of: " + ", ".join(METHODS),
    )
    study.add_argument(
        "--logreg-c",
        type=float,
        default=1.0,
        help="inverse regularisation of the logistic regressions (default 1.0)",
    )
    study.add_argument("--out", default="study", help="output folder (default: study)")
    group = study.add_argument_group("the networks' classifier (PretrainedClassifier's parameters)")
    dests = add_param_flags(group, PretrainedClassifier, exclude=(*_NOT_FLAGS, "freeze", "pretrain"))
    group = study.add_argument_group("the autoencoder every pretrained method uses (--autoencoder-*)")
    dests += add_param_flags(group, AutoencoderTransformer, prefix="autoencoder", exclude=_NOT_FLAGS)
    group = study.add_argument_group("the stacked denoising autoencoder of sda-finetuned (--sda-*)")
    dests += add_param_flags(
        group,
        AutoencoderTransformer,
        prefix="sda",
        only=("corruption", "corruption_level", "layerwise_epochs"),
    )
    group = study.add_argument_group("the Ladder network of the ladder method (--ladder-*)")
    dests += add_param_flags(group, LadderClassifier, prefix="ladder", exclude=_NOT_FLAGS)
    study.set_defaults(model_dests=dests)


COMMANDS = {
    "demo": commands.demo,
    "train": commands.train,
    "generate": commands.generate,
    "report": commands.report,
    "pretrain": pretrain.pretrain,
    "detect": commands.detect,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aekit`` console script."""
    with runs.signals():
        try:
            parser = build_parser()
            args = parser.parse_args(argv)
        except KeyboardInterrupt as stop:
            return errors.report("", stop)
        if args.command is None:
            parser.print_help()
            return 0
        try:
            return COMMANDS[args.command](args)
        except (KeyboardInterrupt, *errors.expected()) as error:
            if args.debug:
                raise
            return errors.report(args.command, error)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

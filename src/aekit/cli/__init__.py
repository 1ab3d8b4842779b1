"""The ``aekit`` command: parses arguments, builds estimators, calls the library.

Nothing runs at import; ``main(argv)`` returns the exit code (0 ok, 1 a reported error).
Every model and training flag comes from an estimator's parameter table (:mod:`.flags`).
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..estimators import AutoencoderTransformer, PretrainedClassifier
from . import commands
from .flags import add_param_flags
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


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

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
    study.set_defaults(model_dests=dests)


COMMANDS = {
    "demo": commands.demo,
    "train": commands.train,
    "report": commands.report,
    "pretrain": commands.pretrain,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aekit`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from ..datasets import DatasetError
    from ..engine import DistributedError
    from ..io import ModelFileError

    try:
        return COMMANDS[args.command](args)
    except (DatasetError, DistributedError, ModelFileError, ValueError, FileExistsError, FileNotFoundError) as error:
        print(f"aekit {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

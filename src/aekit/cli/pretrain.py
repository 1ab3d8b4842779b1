"""``aekit pretrain``: the label-budget study of the pretrained classifier, the stacked
denoising autoencoder, the Ladder network and the baselines, and reading its results back."""

from __future__ import annotations

import json
from pathlib import Path

from ..engine import world
from ..estimators import AutoencoderTransformer, LadderClassifier, PretrainedClassifier
from . import runs
from .flags import given


def _study_templates(args) -> tuple[PretrainedClassifier, AutoencoderTransformer | None, LadderClassifier]:
    """The classifier (holding the autoencoder), the stacked denoising autoencoder and the
    Ladder network the flags describe, checked."""
    from .. import study

    values = given(args, args.model_dests)
    own = {prefix: _prefixed(values, prefix) for prefix in ("sda", "ladder")}
    classifier = PretrainedClassifier(verbose=not args.quiet).set_params(
        **{k: v for k, v in values.items() if not k.startswith(("sda__", "ladder__"))}
    )
    sda = study.default_sda(classifier.component("autoencoder")).set_params(**own["sda"]) if own["sda"] else None
    ladder = LadderClassifier(verbose=not args.quiet, **own["ladder"])
    for estimator in (classifier, sda, ladder):
        if estimator is not None:
            estimator._validate_params()
    world()
    return classifier, sda, ladder


def _prefixed(values: dict, prefix: str) -> dict:
    """The values of the flags ``--<prefix>-*``, by parameter name."""
    return {k.split("__", 1)[1]: v for k, v in values.items() if k.startswith(prefix + "__")}


def pretrain(args) -> int:
    from .. import study
    from ..datasets import load

    classifier, sda, ladder = _study_templates(args)
    out = Path(args.out)
    runs.check_target(out)
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
        ladder=ladder,
        logreg_C=args.logreg_c,
        progress=not args.quiet,
    )
    if not world().is_main:
        return 0
    with runs.output_folder(out) as tmp:
        names = [p.name for p in study.write_study(records, tmp).values()]
    print(study.summarize(records))
    print("wrote " + ", ".join(str(out / name) for name in names))
    return 0


def read_study(path) -> list[dict]:
    try:
        records = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable study.json ({error})") from None
    if not isinstance(records, list) or not all(
        isinstance(r, dict) and {"method", "n_labels", "test_error"} <= set(r) for r in records
    ):
        raise ValueError(f"{path}: not a study.json (a list of records with method, n_labels, test_error)")
    return records

"""Parameter tables: every estimator checks every parameter before it touches the data or
trains anything; the docstrings and the command line's flags are the tables'; nested
parameters of estimators given as parameters."""

import argparse
import time

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from aekit import AutoencoderTransformer, LadderClassifier, PretrainedClassifier, VariationalAutoencoder, engine, params
from aekit.cli import build_parser
from aekit.estimators import ESTIMATORS
from aekit.estimators.outlier import Reconstructs, Smoothing
from aekit.nn.conv import ImageShape
from aekit.nn.custom import Part

ALL = sorted(ESTIMATORS.items())


def bad_values(constraint):
    """Values ``constraint`` must refuse, one of each kind: wrong type, out of range, unknown."""
    if isinstance(constraint, params.Maybe):
        return bad_values(constraint.inner)
    if isinstance(constraint, Smoothing):
        return ["no such option", -1.0, True]
    if isinstance(constraint, params.AnyOf):
        return [v for v in ["no such option", 1.5, -1.0, (1.0, -1.0)] if not constraint.allows(v)]
    if isinstance(constraint, params.Flag):
        return ["yes", 1]
    if isinstance(constraint, params.Options):
        return ["no such option", 3]
    if isinstance(constraint, params.Interval):
        values = ["1", True, float("nan")]
        if constraint.low is not None:
            values.append(constraint.low - 1)
        if constraint.high is not None:
            values.append(constraint.high + 1)
        return values + ([2.5] if constraint.kind is int else [])
    if isinstance(constraint, params.Sizes):
        return [(), (10, 0), 2.5, "300,150"]
    if isinstance(constraint, params.PerLayer):
        return [(), *bad_values(constraint.inner)[:2]]
    if isinstance(constraint, params.Device):
        return ["tpu", "cuda:x", 0]
    if isinstance(constraint, params.Seed):
        return [-1, "0", 2.5]
    if isinstance(constraint, params.InstanceOf):
        return ["an autoencoder", AutoencoderTransformer]
    if isinstance(constraint, params.Callables):
        return [print, (print, "not callable"), None]
    if isinstance(constraint, ImageShape):
        return [(28,), (1, 0, 28), "1,28,28", (1, 28, 28.5)]
    if isinstance(constraint, Part):
        return ["an encoder", 3]
    if isinstance(constraint, Reconstructs):
        return ["an autoencoder", 3]
    raise AssertionError(f"no bad values for {constraint!r}")


CASES = [
    (name, entry.name, value)
    for name, cls in ALL
    for entry in params.table(cls)
    for value in bad_values(entry.param.constraint)
]
# rules between parameters, and a nested parameter of an estimator given as a parameter
CASES += [
    ("AutoencoderTransformer", "patience", {"patience": 3}),
    ("AutoencoderTransformer", "corruption_level", {"corruption": "masking", "corruption_level": 1.0}),
    ("AutoencoderTransformer", "layerwise_epochs", {"training": "layerwise", "layerwise_epochs": (1, 2, 3)}),
    ("AutoencoderTransformer", "validation_fraction", {"training": "layerwise", "validation_fraction": 0.1}),
    ("AutoencoderTransformer", "sparsity_target", {"sparsity_target": 0.1}),  # needs sigmoid codings
    ("VariationalAutoencoder", "binarize", {"binarize": "dynamic", "likelihood": "gaussian"}),
    ("PretrainedClassifier", "n_layers", {"n_layers": 3}),
    ("PretrainedClassifier", "freeze", {"freeze": 3}),
    ("PretrainedClassifier", "prefit", {"prefit": True}),
    ("PretrainedClassifier", "l2", {"autoencoder__l2": -1.0}),
    ("PretrainedClassifier", "learning_rate_schedule", {"autoencoder__learning_rate_schedule": "cosin"}),
    ("LadderClassifier", "patience", {"patience": 3}),
    ("LadderClassifier", "denoising_costs", {"denoising_costs": (1.0, 1.0)}),
    ("LadderClassifier", "denoising_costs", {"hidden_layer_sizes": (8,), "denoising_costs": (1.0,) * 4}),
    ("LadderClassifier", "denoising_costs", {"decoder": "gamma", "denoising_costs": (0.0, 1.0)}),
]


@pytest.fixture(scope="module")
def mnist_sized():
    X = np.random.default_rng(0).random((60_000, 784), dtype=np.float32)
    y = np.arange(60_000) % 10
    return X, y


@pytest.fixture
def no_training(monkeypatch):
    """Any training, or any look at the data, fails the test."""
    from aekit.estimators import base, variational

    def touched(*args, **kwargs):
        pytest.fail("the data was looked at or training started before the parameters were checked")

    monkeypatch.setattr(engine, "fit", touched)
    monkeypatch.setattr(base, "validate_data", touched)
    monkeypatch.setattr(variational, "validate_data", touched)


@pytest.mark.parametrize("estimator, name, value", CASES, ids=[f"{e}-{n}-{v!r}"[:80] for e, n, v in CASES])
def test_an_invalid_parameter_fails_before_training_on_mnist_sized_data(
    estimator, name, value, mnist_sized, no_training
):
    X, y = mnist_sized
    est = ESTIMATORS[estimator]().set_params(**(value if isinstance(value, dict) else {name: value}))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=name) as caught:
        est.fit(X, y)
    assert time.perf_counter() - start < 0.5
    assert isinstance(caught.value, params.InvalidParameterError)


def test_the_error_names_the_allowed_values_and_a_close_one():
    with pytest.raises(
        ValueError,
        match=r"activation='rellu' is not allowed: activation must be one of "
        r"'elu', 'relu', .*; did you mean 'relu'\?",
    ):
        AutoencoderTransformer(activation="rellu").fit(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"learning_rate must be a float > 0"):
        PretrainedClassifier(learning_rate=0).fit(np.zeros((4, 2)), [0, 1, 0, 1])


# -- one home: docstrings and flags come from the tables ---------------------------------------------
@pytest.mark.parametrize("name, cls", ALL)
def test_the_docstring_documents_every_parameter_of_the_table(name, cls):
    doc = cls.__doc__
    for entry in params.table(cls):
        header = f"{entry.name} : {entry.param.constraint.doc_type()}, default={params.literal(entry.default)}"
        assert header in doc, header
        assert " ".join(entry.param.doc.split())[:60] in " ".join(doc.split())
    assert "{parameters}" not in doc


def actions(parser: argparse.ArgumentParser, command: str) -> dict:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return {a.dest: a for a in sub._actions}


FLAG_SETS = [
    ("train", AutoencoderTransformer, ""),
    ("train", VariationalAutoencoder, ""),
    ("demo", AutoencoderTransformer, ""),
    ("pretrain", PretrainedClassifier, ""),
    ("pretrain", AutoencoderTransformer, "autoencoder"),
    ("pretrain", LadderClassifier, "ladder"),
]


@pytest.mark.parametrize("command, cls, prefix", FLAG_SETS)
def test_command_line_flags_are_the_tables(command, cls, prefix):
    found = actions(build_parser(), command)
    skipped = {"verbose", "freeze", "pretrain"}  # set by the command itself
    for entry in params.table(cls):
        flags = entry.param.cli_flags(entry.name)
        dest = f"{prefix}__{entry.name}" if prefix else entry.name
        if not flags or entry.name in skipped:
            assert dest not in found
            continue
        action = found[dest]
        assert action.option_strings[: len(flags)] == [f"--{prefix}-{f[2:]}" if prefix else f for f in flags]
        assert action.default is None  # the table's default applies
        assert f"(default: {params.literal(entry.default)})" in action.help
        assert " ".join(entry.param.doc.split()).rstrip(".")[:60] in action.help
        constraint = entry.param.constraint
        if isinstance(constraint, params.Flag):
            assert isinstance(action, argparse.BooleanOptionalAction)
        elif entry.default is not None:
            text = ",".join(map(str, entry.default)) if isinstance(entry.default, tuple) else str(entry.default)
            assert action.type(text) == entry.default  # a flag parses its default's text back
        if isinstance(constraint, params.Options) and not isinstance(constraint, params.Flag):
            assert all(str(v).lower() in action.metavar for v in constraint.values)


def test_a_flag_reaches_the_estimator_under_its_parameters_name():
    args = build_parser().parse_args(
        [
            "pretrain",
            "--autoencoder-corruption",
            "none",
            "--lr-schedule",
            "cosine",
            "--autoencoder-hidden",
            "8,4",
            "--patience",
            "none",
        ]
    )
    assert args.autoencoder__corruption is None and args.learning_rate_schedule == "cosine"
    assert args.autoencoder__hidden_layer_sizes == (8, 4) and args.patience is None


# -- composition ----------------------------------------------------------------------------------
def test_nested_parameters_of_the_default_autoencoder():
    clf = PretrainedClassifier()
    nested = {k: v for k, v in clf.get_params().items() if k.startswith("autoencoder__")}
    assert nested == {f"autoencoder__{k}": v for k, v in AutoencoderTransformer().get_params().items()}
    assert clf.autoencoder is None
    clf.set_params(autoencoder__l2=0.1, autoencoder__corruption="gaussian")
    assert isinstance(clf.autoencoder, AutoencoderTransformer) and clf.autoencoder.l2 == 0.1
    assert PretrainedClassifier().get_params()["autoencoder__l2"] == 5e-4  # nothing shared


def test_grid_search_tunes_a_nested_parameter(digits):
    X, y = digits
    clf = PretrainedClassifier(epochs=3, device="cpu", random_state=0).set_params(
        autoencoder__hidden_layer_sizes=(16,), autoencoder__epochs=1
    )
    search = GridSearchCV(
        clf, {"autoencoder__corruption_level": [0.0, 0.3], "autoencoder__corruption": ["masking"]}, cv=2
    ).fit(X[:200], y[:200])
    assert search.best_params_["autoencoder__corruption_level"] in (0.0, 0.3)
    assert search.best_estimator_.autoencoder_.corruption == "masking"
    assert len(search.cv_results_["params"]) == 2

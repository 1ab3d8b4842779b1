"""The label-budget study: balanced subsets, one pretraining per seed, records, table,
files."""

import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from threadpoolctl import threadpool_limits

from aekit import AutoencoderTransformer, LadderClassifier, PretrainedClassifier, study

FIELDS = {
    "method",
    "n_labels",
    "seed",
    "test_error",
    "seconds",
    "pretrain_seconds",
    "n_epochs",
    "n_unlabelled",
}
TINY_AE = AutoencoderTransformer((8, 4), epochs=2, batch_size=32)
TINY = dict(
    classifier=PretrainedClassifier(TINY_AE, epochs=5, batch_size=16, device="cpu"),
    ladder=LadderClassifier((8,), epochs=2, batch_size=32, device="cpu"),
    progress=False,
)


@pytest.fixture(autouse=True)
def one_blas_thread():
    """As conftest does for torch: tiny logistic regressions only lose to thread start-up
    (lbfgs on 30 rows: 0.2 s with 2 OpenBLAS threads on a busy machine, 0.01 s with one)."""
    with threadpool_limits(1):
        yield


@pytest.fixture
def data():
    """150 training rows and 60 test rows, 12 features, 3 classes."""
    X, y = make_classification(n_samples=210, n_features=12, n_informative=6, n_classes=3, random_state=0)
    X = X.astype(np.float32)
    return X[:150], y[:150], X[150:], y[150:]


def test_balanced_subset_has_equal_counts_per_class(data):
    y = data[1]
    rows = study.balanced_subset(y, 30, 0)
    assert len(rows) == len(set(rows)) == 30
    assert np.bincount(y[rows]).tolist() == [10, 10, 10]
    np.testing.assert_array_equal(rows, study.balanced_subset(y, 30, 0))  # seeded
    assert not np.array_equal(rows, study.balanced_subset(y, 30, 1))
    counts = np.bincount(y[study.balanced_subset(y, 31, 0)])
    assert counts.sum() == 31 and counts.max() - counts.min() == 1
    np.testing.assert_array_equal(study.balanced_subset(y, None), np.arange(len(y)))


def test_balanced_subset_errors(data):
    y = data[1]
    with pytest.raises(ValueError, match="smaller than the number of classes"):
        study.balanced_subset(y, 2)
    with pytest.raises(ValueError, match="fewer"):
        study.balanced_subset(y, 3 * (np.bincount(y).min() + 1))


@pytest.mark.slow
def test_run_study_end_to_end(data, tmp_path, monkeypatch):
    fits = []
    ae_fit = AutoencoderTransformer.fit
    monkeypatch.setattr(
        AutoencoderTransformer, "fit", lambda self, X, y=None: fits.append(len(X)) or ae_fit(self, X, y)
    )
    budgets, seeds = (6, 30, None), 2
    records = study.run_study(*data, budgets=budgets, seeds=seeds, **TINY)
    assert len(records) == len(budgets) * seeds * len(study.METHODS)
    assert all(set(r) == FIELDS for r in records)
    assert {r["method"] for r in records} == set(study.METHODS)
    assert sorted({r["n_labels"] for r in records}) == [6, 30, 150]
    assert all(0 <= r["test_error"] <= 1 for r in records)
    assert all(r["n_labels"] + r["n_unlabelled"] == 150 for r in records)
    # two autoencoders (end-to-end, stacked denoising) per seed, on every training row
    assert fits == [150] * 2 * seeds

    table = study.summarize(records)
    lines = table.strip().splitlines()
    assert lines[0] == "| labels | seeds | " + " | ".join(study.METHODS) + " |"
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["6", "30", "150"]
    assert " ± " in lines[2]

    paths = study.write_study(records, tmp_path / "out")
    assert json.loads(paths["json"].read_text()) == records
    assert table in paths["markdown"].read_text()
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"


def test_the_ladder_trains_on_every_row_with_the_budgets_labels_only(data, monkeypatch):
    seen = []
    fit = LadderClassifier.fit
    monkeypatch.setattr(
        LadderClassifier, "fit", lambda self, X, y: seen.append((len(X), int(np.sum(y != -1)))) or fit(self, X, y)
    )
    records = study.run_study(*data, budgets=(6, None), seeds=1, methods=("ladder",), **TINY)
    assert seen == [(150, 6), (150, 150)]
    assert [r["n_epochs"] for r in records] == [2, 2]


def test_the_test_labels_choose_nothing(data):
    """Early stopping and every other choice see the labelled subset only: shuffling the test
    labels changes the test errors and nothing else."""
    X, y, X_test, y_test = data
    classifier = PretrainedClassifier(
        TINY_AE, epochs=5, batch_size=16, device="cpu", validation_fraction=0.25, patience=1
    )
    params = dict(budgets=(12,), seeds=1, methods=("scratch", "logreg-raw"), classifier=classifier, progress=False)
    a = study.run_study(X, y, X_test, y_test, **params)
    b = study.run_study(X, y, X_test, np.random.RandomState(0).permutation(y_test), **params)
    assert [r["n_epochs"] for r in a] == [r["n_epochs"] for r in b]
    assert [r["test_error"] for r in a] != [r["test_error"] for r in b]


def test_bad_settings_fail_before_training(data, monkeypatch):
    monkeypatch.setattr(AutoencoderTransformer, "fit", lambda *a: pytest.fail("trained"))
    with pytest.raises(ValueError, match="unknown or no methods"):
        study.run_study(*data, methods=("magic",), **TINY)
    with pytest.raises(ValueError, match="fewer"):
        study.run_study(*data, budgets=(30, 3000), **TINY)
    with pytest.raises(ValueError, match="l2=-1.0 is not allowed"):
        study.run_study(
            *data,
            budgets=(30,),
            classifier=PretrainedClassifier(clone(TINY_AE).set_params(l2=-1.0)),
            progress=False,
        )
    with pytest.raises(ValueError, match="noise_std=-1.0 is not allowed"):
        study.run_study(*data, budgets=(30,), ladder=LadderClassifier(noise_std=-1.0), progress=False)
    with pytest.raises(ValueError, match="corruption_level=1.0 is not allowed"):
        study.run_study(
            *data,
            budgets=(30,),
            sda=study.default_sda(TINY_AE).set_params(corruption_level=1.0),
            progress=False,
        )


def test_the_default_sda_is_the_autoencoder_trained_layer_wise_with_masking():
    sda = study.default_sda(AutoencoderTransformer((8, 4), epochs=7))
    assert (
        sda.get_params()
        == AutoencoderTransformer(
            (8, 4),
            epochs=7,
            training="layerwise",
            layerwise_epochs=7,
            corruption="masking",
            corruption_level=0.3,
        ).get_params()
    )


def test_summarize_one_seed_and_empty():
    records = [{"method": "scratch", "n_labels": 10, "seed": 0, "test_error": 0.25}]
    assert "| 10 | 1 | 25.0 |" in study.summarize(records)
    with pytest.raises(ValueError, match="no records"):
        study.summarize([])


def test_label_spreading_uses_only_the_budgets_labels():
    """Spreading sees every training row but only the labelled subset's labels: scrambling
    the other rows' labels changes nothing, and on clustered data it beats chance widely."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=6.0, size=(3, 5))
    y = np.repeat(np.arange(3), 60)
    X = (centres[y] + rng.normal(size=(180, 5))).astype(np.float32)
    rows = study.balanced_subset(y, 6, 0)
    scrambled = y.copy()
    others = np.setdiff1d(np.arange(len(y)), rows)
    scrambled[others] = rng.permutation(scrambled[others])
    a = study._label_spreading(X, y, rows).transduction_
    b = study._label_spreading(X, scrambled, rows).transduction_
    np.testing.assert_array_equal(a, b)
    assert np.mean(a == y) > 0.9

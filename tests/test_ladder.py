"""LadderClassifier: scikit-learn's contract (checks, Pipeline, clone, grid search, pickle),
save/load, the semi-supervised convention and its bad inputs, and the gain from unlabelled
rows on the digits."""

import pickle

import numpy as np
import pytest
import torch
from helpers import SEMI_SUPERVISED_FAILED_CHECKS, semi_supervised_data
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from aekit import LadderClassifier, io
from aekit.estimators.ladder import auto_hidden_sizes
from aekit.nn import LadderNetwork

TINY = dict(hidden_layer_sizes=(8, 6), epochs=4, batch_size=16, learning_rate=0.01, device="cpu", random_state=0)


# On the checks' 2-feature blobs the paper's denoising weights (1000 for the input, tuned for 784
# pixels) drown the labels of a 20-epoch run; weight 1 everywhere keeps the test fast and apt.
@parametrize_with_checks(
    [
        LadderClassifier(
            (16,), denoising_costs=1.0, epochs=20, batch_size=16, learning_rate=0.01, random_state=0, device="cpu"
        )
    ],
    expected_failed_checks=lambda estimator: SEMI_SUPERVISED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture
def data():
    """150 rows, 10 features, 3 classes; all but the first 30 rows unlabelled (y == -1)."""
    return semi_supervised_data(150)


def test_fit_predict_transform_and_history(data):
    X, y, y_semi = data
    clf = LadderClassifier(**TINY).fit(X, y_semi)
    assert clf.classes_.tolist() == [0, 1, 2] and clf.n_iter_ == 4
    assert clf.predict(X).shape == (150,) and set(clf.predict(X)) <= {0, 1, 2}
    np.testing.assert_allclose(clf.predict_proba(X).sum(1), 1.0)
    assert clf.transform(X).shape == (150, 6)
    record = clf.history_[-1]
    assert {"loss", "cross_entropy", "learning_rate", *(f"denoising_{k}" for k in range(4))} <= set(record)
    assert isinstance(clf.module_, LadderNetwork) and clf.module_.config.sizes == (10, 8, 6, 3)


def test_auto_widths_follow_the_paper_and_scale_down():
    assert auto_hidden_sizes(784) == auto_hidden_sizes(3072) == (1000, 500, 250, 250, 250)
    assert auto_hidden_sizes(64) == (286, 143, 71, 71, 71)
    assert auto_hidden_sizes(196) == (500, 250, 125, 125, 125)
    assert auto_hidden_sizes(1) == (36, 18, 10, 10, 10)


def test_the_defaults_are_the_papers():
    clf = LadderClassifier()
    assert (clf.hidden_layer_sizes, clf.decoder, clf.denoising_costs, clf.noise_std) == ("auto", "full", "auto", 0.3)
    assert (clf.epochs, clf.batch_size, clf.learning_rate) == (150, 100, 0.002)
    assert (clf.learning_rate_schedule, clf.learning_rate_decay_start) == ("linear", 2 / 3)


def test_gamma_model_decodes_the_top_layer_only(data):
    X, _, y_semi = data
    clf = LadderClassifier(**TINY, decoder="gamma").fit(X, y_semi)
    assert [k for k in clf.history_[-1] if k.startswith("denoising")] == ["denoising_3"]


def test_seeded_clone_pickle_and_pipeline(data):
    X, _, y_semi = data
    clf = LadderClassifier(**TINY).fit(X, y_semi)
    np.testing.assert_array_equal(clone(clf).fit(X, y_semi).predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X), clf.predict_proba(X))
    pipe = make_pipeline(MinMaxScaler(), LadderClassifier(**TINY)).fit(X, y_semi)
    scaled = MinMaxScaler().fit_transform(X)
    np.testing.assert_array_equal(pipe.predict(X), LadderClassifier(**TINY).fit(scaled, y_semi).predict(scaled))


def test_grid_search_over_a_ladder_setting(data):
    X, y, _ = data
    search = GridSearchCV(LadderClassifier(**TINY), {"noise_std": [0.0, 0.3]}, cv=2).fit(X[:60], y[:60])
    assert search.best_params_["noise_std"] in (0.0, 0.3)


def test_save_load_round_trip(data, tmp_path):
    X, _, y_semi = data
    clf = LadderClassifier(**TINY).fit(X, y_semi)
    loaded = io.load(io.save(clf, tmp_path / "ladder"))
    assert type(loaded) is LadderClassifier and loaded.get_params() == clf.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.transform(X), clf.transform(X))
    assert loaded.classes_.tolist() == [0, 1, 2] and loaded.history_ == clf.history_


def test_callbacks_see_the_estimator_as_it_trains(data):
    X, y, y_semi = data
    seen = []
    clf = LadderClassifier(**TINY)
    clf.set_params(callbacks=(lambda record: seen.append((record["epoch"], clf.predict(X[:3]).shape)),))
    clf.fit(X, y_semi)
    assert seen == [(1, (3,)), (2, (3,)), (3, (3,)), (4, (3,))]
    stopped = LadderClassifier(**TINY, callbacks=(lambda record: record["epoch"] == 2,)).fit(X, y_semi)
    assert stopped.n_iter_ == 2


def test_warm_start_continues_the_fitted_network(data):
    X, y, y_semi = data
    clf = LadderClassifier(**TINY).fit(X, y_semi)
    first = clf.module_
    before = [p.detach().clone() for p in first.parameters()]
    clf.set_params(warm_start=True, epochs=2).fit(X, y_semi)
    assert clf.n_iter_ == TINY["epochs"] + 2 and clf.module_ is not first
    assert all(torch.equal(a, b) for a, b in zip(before, first.parameters()))  # the fitted one was copied
    with pytest.raises(ValueError, match="warm_start=True: y has classes"):
        clf.fit(X, np.where(y_semi == -1, -1, y_semi + 100))


def test_validation_holds_out_labelled_rows_and_early_stopping_works(data):
    X, _, y_semi = data
    clf = LadderClassifier(**{**TINY, "epochs": 8}, validation_fraction=0.2, patience=2).fit(X, y_semi)
    assert all("val_loss" in r for r in clf.history_) and clf.n_iter_ <= 8


# -- the semi-supervised convention and bad input -----------------------------------------------
def test_every_row_unlabelled_is_an_error(data):
    X, _, _ = data
    with pytest.raises(ValueError, match="no labelled rows"):
        LadderClassifier(**TINY).fit(X, np.full(len(X), -1))


def test_a_class_with_no_labelled_row_is_unknown_to_the_classifier(data):
    X, y, _ = data
    y_semi = np.where(y == 2, -1, y)  # class 2 is in the data, but nobody labelled it
    clf = LadderClassifier(**TINY).fit(X, y_semi)
    assert clf.classes_.tolist() == [0, 1]
    assert set(clf.predict(X)) <= {0, 1} and clf.predict_proba(X).shape == (150, 2)


def test_labels_of_mixed_types_are_an_error(data):
    X, _, _ = data
    y = np.array(["a", 1, -1] * 50, dtype=object)
    with pytest.raises(ValueError, match="mix label types \\(int, str\\)"):
        LadderClassifier(**TINY).fit(X, y)


def test_string_labels_with_minus_one_in_an_object_array(data):
    X, y, _ = data
    names = np.array(["cat", "dog", "eel"], dtype=object)[y]
    names[30:] = -1
    clf = LadderClassifier(**TINY).fit(X, names)
    assert clf.classes_.tolist() == ["cat", "dog", "eel"] and set(clf.predict(X)) <= {"cat", "dog", "eel"}


def test_fewer_labelled_rows_than_a_batch_train_on_all_of_them_each_step(data):
    X, y, _ = data
    y_semi = np.full(len(y), -1)
    y_semi[:5] = y[:5]  # 5 labelled rows, batches of 16
    clf = LadderClassifier(**TINY).fit(X, y_semi)
    assert clf.n_iter_ == 4 and np.isfinite(clf.history_[-1]["loss"])


def test_y_of_the_wrong_length_is_an_error(data):
    X, y, _ = data
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        LadderClassifier(**TINY).fit(X, y[:-1])


def test_one_labelled_class_is_an_error(data):
    X, _, _ = data
    y = np.full(len(X), -1)
    y[:4] = 1
    with pytest.raises(ValueError, match="1 class"):
        LadderClassifier(**TINY).fit(X, y)


# -- what it is for ------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_unlabelled_rows_beat_the_same_network_on_its_labelled_rows_alone(digits, seed):
    """3 labels per class on the digits: the Ladder network against the same network (noise and
    batch normalisation included, no decoder) trained as many steps on the 30 labelled rows."""
    X, y = digits
    X_train, y_train, X_test, y_test = X[:1200], y[:1200], X[1200:], y[1200:]
    rng = np.random.RandomState(seed)
    y_semi = np.full(len(y_train), -1)
    for c in range(10):
        picks = rng.choice(np.flatnonzero(y_train == c), 3, replace=False)
        y_semi[picks] = c
    settings = dict(hidden_layer_sizes=(64, 32), learning_rate=0.01, random_state=seed, device="cpu")
    ladder = LadderClassifier(**settings, epochs=25).fit(X_train, y_semi)
    labelled = y_semi != -1
    steps = 25 * (len(X_train) // 100)  # one step an epoch on 30 rows
    alone = LadderClassifier(**settings, epochs=steps, denoising_costs=0.0).fit(X_train[labelled], y_semi[labelled])
    ladder_error, alone_error = 1 - ladder.score(X_test, y_test), 1 - alone.score(X_test, y_test)
    assert ladder_error < alone_error - 0.05, (ladder_error, alone_error)

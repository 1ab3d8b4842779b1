"""Checkpoints and resume: a fit interrupted at any epoch of any phase and resumed (in this
process or another) ends with weights bit-identical to an uninterrupted fit; warm_start and
callbacks as estimator parameters."""

import hashlib
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator

from aekit import AutoencoderTransformer, PretrainedClassifier, checkpoints, engine, io
from aekit.engine import checkpoint_file
from aekit.engine.checkpoint import CheckpointError

SMALL = dict(batch_size=64, device="cpu", random_state=0)
CASES = {
    # name: (estimator, phase and epoch whose end is interrupted, labelled?)
    "end-to-end, validation, early stopping, cosine, noise": (
        lambda: AutoencoderTransformer(
            (16, 8),
            epochs=6,
            corruption="gaussian",
            validation_fraction=0.2,
            patience=2,
            learning_rate_schedule="cosine",
            **SMALL,
        ),
        ("train", 3),
        False,
    ),
    "layer-wise phases mid-phase 2, shared step count, masking": (
        lambda: AutoencoderTransformer(
            (16, 8),
            training="layerwise",
            layerwise_epochs=3,
            fine_tune_epochs=2,
            tied=False,
            layerwise_step_count="shared",
            corruption="masking",
            corruption_level=0.2,
            **SMALL,
        ),
        ("layer 2", 2),
        False,
    ),
    "layer-wise separate, in fine-tuning": (
        lambda: AutoencoderTransformer(
            (16, 8), training="layerwise", layerwise_method="separate", layerwise_epochs=2, fine_tune_epochs=2, **SMALL
        ),
        ("fine-tune", 1),
        False,
    ),
    "classifier, in its pretraining": (
        lambda: PretrainedClassifier(
            AutoencoderTransformer((16, 8), epochs=3, batch_size=64),
            dropout=0.2,
            epochs=4,
            validation_fraction=0.2,
            **SMALL,
        ),
        ("train", 2),
        True,
    ),
    "classifier, dropout, in its own training": (
        lambda: PretrainedClassifier(
            AutoencoderTransformer((16, 8), epochs=2, batch_size=64),
            dropout=0.2,
            input_dropout=0.1,
            epochs=4,
            validation_fraction=0.2,
            **SMALL,
        ),
        ("classifier", 3),
        True,
    ),
}


class InterruptAt:
    """A callback that interrupts the fit at the end of one epoch, as Ctrl-C would."""

    def __init__(self, phase, epoch):
        self.phase, self.epoch = phase, epoch

    def __call__(self, record):
        if (record["phase"], record["epoch"]) == (self.phase, self.epoch):
            raise KeyboardInterrupt


def fitted(make, X, y):
    return make().fit(X, y) if y is not None else make().fit(X)


def assert_same_weights(a, b):
    sa, sb = a.module_.state_dict(), b.module_.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


def interrupted_fit(make, at, X, y, directory, every=None):
    estimator = make().set_params(callbacks=[InterruptAt(*at)])
    with pytest.raises(KeyboardInterrupt):
        checkpoints.fit(estimator, X, y, directory=directory, every=every)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_an_interrupted_fit_resumes_to_bit_identical_weights(case, digits, tmp_path):
    make, at, labelled = CASES[case]
    X, y = digits
    y = y if labelled else None
    reference = fitted(make, X, y)
    interrupted_fit(make, at, X, y, tmp_path)
    np.random.seed(123)  # resuming must depend on nothing of the process's state
    torch.manual_seed(123)
    resumed = checkpoints.resume(tmp_path, X, y)
    assert_same_weights(reference, resumed)
    assert [(r["phase"], r["epoch"]) for r in resumed.history_] == [
        (r["phase"], r["epoch"]) for r in reference.history_
    ]
    if labelled:
        assert np.array_equal(resumed.predict(X), reference.predict(X))
        assert_same_weights(reference.autoencoder_, resumed.autoencoder_)


def test_random_state_none_resumes_from_numpys_recorded_global_stream(digits, tmp_path):
    X, _ = digits
    make = lambda: AutoencoderTransformer((8,), epochs=3, batch_size=64, device="cpu", random_state=None)  # noqa: E731
    np.random.seed(5)
    reference = make().fit(X)
    np.random.seed(5)
    interrupted_fit(make, ("train", 2), X, None, tmp_path)
    np.random.seed(99)
    assert_same_weights(reference, checkpoints.resume(tmp_path, X))


def test_checkpoints_are_written_every_n_epochs_and_say_where_the_run_stands(digits, tmp_path):
    X, _ = digits
    make = lambda: AutoencoderTransformer((8,), epochs=5, **SMALL)  # noqa: E731
    interrupted_fit(make, ("train", 5), X, None, tmp_path / "every2", every=2)
    # every=2: epochs 2 and 4 were written, then the interruption wrote the last one (4)
    assert checkpoints.where(tmp_path / "every2") == "train, epoch 4 of 5"
    assert checkpoints.epochs_run(tmp_path / "every2") == 4
    ae = checkpoints.fit(make(), X, directory=tmp_path / "done", every=None)
    assert checkpoints.where(tmp_path / "done") == "finished"
    assert_same_weights(ae, make().fit(X))


def test_resuming_a_finished_fit_trains_nothing(digits, tmp_path, monkeypatch):
    X, _ = digits
    ae = checkpoints.fit(
        AutoencoderTransformer((8, 4), training="layerwise", fine_tune_epochs=1, **SMALL), X, directory=tmp_path
    )
    calls = []
    original = engine.checkpoint.Stage.restore
    monkeypatch.setattr(engine.checkpoint.Stage, "restore", lambda *a: calls.append(a) or original(*a))
    again = checkpoints.resume(tmp_path, X)
    assert calls == [] and again.n_iter_ == ae.n_iter_
    assert_same_weights(ae, again)


def test_resume_refuses_other_data_and_a_damaged_checkpoint(digits, tmp_path):
    X, _ = digits
    interrupted_fit(lambda: AutoencoderTransformer((8,), epochs=3, **SMALL), ("train", 2), X, None, tmp_path)
    with pytest.raises(CheckpointError, match="other data"):
        checkpoints.resume(tmp_path, X[:-1])
    file = tmp_path / checkpoints.CHECKPOINT_FILE
    file.write_bytes(file.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="not a readable aekit checkpoint"):
        checkpoints.resume(tmp_path, X)
    with pytest.raises(CheckpointError, match="no checkpoint to resume"):
        checkpoints.resume(tmp_path / "nothing", X)


def test_a_checkpoint_of_another_run_is_refused(digits, tmp_path):
    X, _ = digits
    interrupted_fit(lambda: AutoencoderTransformer((8,), epochs=3, **SMALL), ("train", 2), X, None, tmp_path)
    snapshot, extra = checkpoint_file.read(tmp_path / checkpoints.CHECKPOINT_FILE)
    extra["params"]["hidden_layer_sizes"] = [6]
    checkpoint_file.write(tmp_path / checkpoints.CHECKPOINT_FILE, snapshot, extra)
    with pytest.raises(CheckpointError, match="does not match this run"):
        checkpoints.resume(tmp_path, X)


def test_a_warm_start_and_a_frozen_autoencoder_resume_from_what_they_started_with(digits, tmp_path):
    X, y = digits
    ae = AutoencoderTransformer((8,), epochs=2, **SMALL).fit(X)
    make_warm = lambda: clone(ae).set_params(warm_start=True, epochs=3)  # noqa: E731

    def warm():
        est = make_warm()
        est.module_, est.history_, est.n_iter_, est.n_features_in_ = ae.module_, list(ae.history_), 2, 64
        return est

    reference = warm().fit(X)
    interrupted_fit(warm, ("train", 2), X, None, tmp_path / "warm")
    resumed = checkpoints.resume(tmp_path / "warm", X)
    assert_same_weights(reference, resumed)
    assert resumed.n_iter_ == reference.n_iter_ == 5
    make_clf = lambda: PretrainedClassifier(FrozenEstimator(ae), epochs=3, **SMALL)  # noqa: E731
    reference = make_clf().fit(X, y)
    interrupted_fit(make_clf, ("classifier", 2), X, y, tmp_path / "frozen")
    assert_same_weights(reference, checkpoints.resume(tmp_path / "frozen", X, y))


WIDE = dict(
    hidden_layer_sizes=(128, 64),
    training="layerwise",
    layerwise_epochs=2,
    fine_tune_epochs=2,
    corruption="gaussian",
    batch_size=50,
    device="cpu",
    random_state=0,
)
CROSS_PROCESS = textwrap.dedent(
    """
    import hashlib, sys, numpy as np, torch
    torch.set_num_threads(1)  # as the test process (conftest.py): the thread count is part of the result
    from aekit import AutoencoderTransformer, checkpoints
    X = np.random.default_rng(0).random((300, 200), dtype=np.float32)
    est = AutoencoderTransformer(**{settings})
    def stop(record):
        if (record["phase"], record["epoch"]) == ("layer 2", 1):
            raise KeyboardInterrupt
    if sys.argv[1] == "interrupt":
        try:
            checkpoints.fit(est.set_params(callbacks=[stop]), X, directory=sys.argv[2], every=None)
        except KeyboardInterrupt:
            sys.exit(0)
    est = checkpoints.resume(sys.argv[2], X)
    h = hashlib.sha256()
    for k, v in sorted(est.module_.state_dict().items()):
        h.update(v.numpy().tobytes())
    print(h.hexdigest())
    """
)


@pytest.mark.slow
def test_a_fit_interrupted_in_one_process_resumes_bit_identically_in_another(tmp_path):
    """The interrupted fit and its resumption each in a fresh process, as after a crash: the
    weights equal those of an uninterrupted fit in this process, for a model wider than the
    digits' (so no kernel rounds differently from one process to the next)."""
    X = np.random.default_rng(0).random((300, 200), dtype=np.float32)
    reference = AutoencoderTransformer(**WIDE).fit(X)
    h = hashlib.sha256()
    for _, v in sorted(reference.module_.state_dict().items()):
        h.update(v.numpy().tobytes())
    script = CROSS_PROCESS.replace("{settings}", repr(WIDE))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def run(mode):
        command = [sys.executable, "-c", script, mode, str(tmp_path)]
        return subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout.strip()

    assert run("interrupt") == ""
    assert checkpoints.where(tmp_path) == "layer 1, epoch 2 of 2"
    assert run("resume") == h.hexdigest()


# -- warm_start and callbacks as parameters ---------------------------------------------------
def test_warm_start_continues_training_and_checks_the_network(digits):
    X, y = digits
    ae = AutoencoderTransformer((8,), epochs=2, **SMALL).fit(X)
    first = {k: v.clone() for k, v in ae.module_.state_dict().items()}
    ae.set_params(warm_start=True, epochs=1).fit(X)
    assert ae.n_iter_ == 3 and len(ae.history_) == 3
    assert any(not torch.equal(first[k], v) for k, v in ae.module_.state_dict().items())
    with pytest.raises(ValueError, match="warm_start=True continues training the fitted network"):
        ae.set_params(hidden_layer_sizes=(6,)).fit(X)
    with pytest.raises(ValueError, match="features"):
        ae.set_params(hidden_layer_sizes=(8,)).fit(X[:, :10])
    clf = PretrainedClassifier(AutoencoderTransformer((8,), epochs=1), epochs=2, **SMALL).fit(X, y)
    clf.set_params(warm_start=True, epochs=1).fit(X[y < 5], y[y < 5])  # a subset of the classes
    assert clf.n_iter_ == 3 and list(clf.classes_) == list(range(10))
    with pytest.raises(ValueError, match="classes"):
        clf.fit(X, y + 1)


def test_callbacks_see_every_phase_and_are_cloned_pickled_but_not_saved(digits, tmp_path):
    X, y = digits
    seen = []
    clf = PretrainedClassifier(AutoencoderTransformer((8,), epochs=2), epochs=2, callbacks=[seen.append], **SMALL)
    clf.fit(X, y)
    assert [(r["phase"], r["epoch"]) for r in seen] == [
        ("train", 1),
        ("train", 2),
        ("classifier", 1),
        ("classifier", 2),
    ]
    assert clone(clf).callbacks[0] is not None
    pickle.loads(pickle.dumps(AutoencoderTransformer(callbacks=[print])))
    io.save(clf, tmp_path / "m")
    loaded = io.load(tmp_path / "m")
    assert loaded.callbacks == ()
    stop_after_one = AutoencoderTransformer((8,), epochs=5, callbacks=[lambda r: True], **SMALL).fit(X)
    assert stop_after_one.n_iter_ == 1


def test_checkpoints_follow_the_umask(digits, tmp_path):
    X, _ = digits
    old = os.umask(0o022)
    try:
        checkpoints.fit(AutoencoderTransformer((4,), epochs=1, **SMALL), X, directory=tmp_path / "new" / "ckpt")
    finally:
        os.umask(old)
    assert oct((tmp_path / "new" / "ckpt").stat().st_mode & 0o777) == oct(0o755)
    assert oct((tmp_path / "new" / "ckpt" / checkpoints.CHECKPOINT_FILE).stat().st_mode & 0o777) == oct(0o644)

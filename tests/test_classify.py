"""Classifiers on pretrained encoders: freeze policies and caching, the semi-supervised
convention of PretrainedClassifier, prefit semantics, save/load, scikit-learn's checks."""

import pickle

import numpy as np
import pytest
import torch
from helpers import SEMI_SUPERVISED_FAILED_CHECKS, semi_supervised_data, train_config
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

from aekit import AutoencoderTransformer, PretrainedClassifier, classify, io
from aekit.classify import from_autoencoder, train_classifier
from aekit.nn import ClassifierConfig, EncoderClassifier, StackedAutoencoder, StackedConfig

TINY_AE = dict(hidden_layer_sizes=(8, 4), epochs=2, batch_size=32, device="cpu")
TINY = dict(epochs=5, batch_size=16, device="cpu", random_state=0)


def tiny(autoencoder=None, **params):
    """A small PretrainedClassifier; its autoencoder by default a small unfitted one."""
    return PretrainedClassifier(
        AutoencoderTransformer(**TINY_AE) if autoencoder is None else autoencoder, **{**TINY, **params}
    )


@parametrize_with_checks(
    [
        PretrainedClassifier(
            AutoencoderTransformer((8,), epochs=2, device="cpu"),
            epochs=30,
            batch_size=32,
            random_state=0,
            device="cpu",
        )
    ],
    expected_failed_checks=lambda estimator: SEMI_SUPERVISED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture
def data():
    """120 rows, 10 features, 3 classes; the last 90 rows unlabelled (y == -1)."""
    return semi_supervised_data(120)


def autoencoder_module(sizes=(8, 6, 4), seed=0):
    return StackedAutoencoder(StackedConfig(n_inputs=10, hidden_sizes=sizes), torch.Generator().manual_seed(seed))


def state(module):
    return {name: t.detach().clone() for name, t in module.state_dict().items()}


def train(module, X, y, freeze, epochs=3, **kwargs):
    return train_classifier(
        module,
        X,
        y,
        freeze=freeze,
        generator=torch.Generator().manual_seed(1),
        config=train_config(epochs=epochs, batch_size=10),
        **kwargs,
    )


# -- the torch level -------------------------------------------------------------------------


@pytest.mark.parametrize("freeze, n_frozen", [("none", 0), ("lower", 2), ("all", 3), (1, 1)])
def test_frozen_layers_stay_bit_identical_and_the_rest_trains(data, freeze, n_frozen):
    X, y, _ = data
    module = from_autoencoder(autoencoder_module(), 3)
    before = state(module)
    train(module, X[:30], y[:30], freeze)
    after = state(module)
    for name in before:
        layer = int(name.split(".")[-2]) + 1 if name.startswith("encoder.") else 99  # head: top
        if layer <= n_frozen:
            assert torch.equal(before[name], after[name]), name
        else:
            assert not torch.equal(before[name], after[name]), name


def test_frozen_layers_run_once_not_every_epoch(data):
    X, y, _ = data
    module = from_autoencoder(autoencoder_module(), 3)
    calls = [0] * module.depth
    for k, layer in enumerate(module.encoder.layers):
        layer.register_forward_hook(lambda *_, k=k: calls.__setitem__(k, calls[k] + 1))
    epochs, n_batches = 4, 30 // 10
    train(module, X[:30], y[:30], "lower", epochs=epochs)
    assert calls[:2] == [1, 1]  # the cache: one pass over the 30 rows, before epoch 1
    assert calls[2] == epochs * n_batches


def test_from_autoencoder_copies_layers_and_leaves_the_autoencoder_alone(data):
    X, y, _ = data
    ae = autoencoder_module()
    ae_before = state(ae)
    module = from_autoencoder(ae, 3, n_layers=2)
    assert module.config.hidden_sizes == (8, 6)
    assert torch.equal(module.encoder.layers[1].weight, ae.encoder.layers[1].weight)
    train(module, X[:30], y[:30], "none")
    assert all(torch.equal(ae_before[k], v) for k, v in ae.state_dict().items())
    with pytest.raises(ValueError, match="n_layers"):
        from_autoencoder(ae, 3, n_layers=4)


def test_l2_and_dropout_are_loss_parts_and_seeded(data):
    X, y, _ = data
    histories, outputs, global_states = [], [], []
    for _ in range(2):
        module = EncoderClassifier(ClassifierConfig(10, (8, 4), 3, dropout=0.5), torch.Generator().manual_seed(0))
        global_states.append(torch.get_rng_state())
        histories.append(train(module, X[:30], y[:30], "none", l2=1e-3))
        outputs.append(module(torch.from_numpy(X)))
        global_states.append(torch.get_rng_state())
    assert {"loss", "cross_entropy", "l2"} <= set(histories[0][0])
    assert torch.equal(outputs[0], outputs[1])  # dropout masks come from the seeded generator
    assert torch.equal(global_states[0], global_states[1])  # the caller's stream is untouched
    assert not module.training  # fit leaves it in eval mode: predictions without dropout


def test_freeze_policy_and_config_validation():
    assert [classify.n_frozen_layers(f, 3) for f in ("none", "lower", "all", 2)] == [0, 2, 3, 2]
    for bad in ("some", 4, -1, True):
        with pytest.raises(ValueError, match="freeze=.* is not allowed"):
            classify.n_frozen_layers(bad, 3)
    config = ClassifierConfig(10, (8, 4), 3, code_activation="tanh", dropout=0.1)
    assert ClassifierConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown ClassifierConfig keys"):
        ClassifierConfig.from_dict({**config.to_dict(), "depth": 2})
    with pytest.raises(ValueError, match="n_classes=1 is not allowed: n_classes must be an int >= 2"):
        ClassifierConfig(10, (8,), 1)


# -- the estimator: semi-supervised convention ------------------------------------------------


def test_unlabelled_rows_pretrain_but_never_reach_the_supervised_loss(data, monkeypatch):
    X, y, y_semi = data
    seen = {}
    ae_fit, train_fn = AutoencoderTransformer.fit, classify.train_classifier

    def spy_ae_fit(self, X_ae, y_ae=None):
        seen["pretrain"] = np.array(X_ae)
        return ae_fit(self, X_ae, y_ae)

    def spy_train(module, X_clf, y_clf, **kwargs):
        seen["classifier"] = (np.array(X_clf), np.array(y_clf))
        return train_fn(module, X_clf, y_clf, **kwargs)

    monkeypatch.setattr(AutoencoderTransformer, "fit", spy_ae_fit)
    monkeypatch.setattr(classify, "train_classifier", spy_train)
    tiny().fit(X, y_semi)
    np.testing.assert_array_equal(seen["pretrain"], X)  # every row, labelled or not
    X_clf, y_clf = seen["classifier"]
    np.testing.assert_array_equal(X_clf, X[:30])  # only the labelled rows, and their labels
    np.testing.assert_array_equal(y_clf, y[:30])


def test_unlabelled_rows_do_not_change_a_classifier_on_a_fitted_autoencoder(data):
    """With the autoencoder fixed, the classifier must be the same whether the unlabelled rows
    are passed (with y == -1) or not, and whatever they contain."""
    X, y, y_semi = data
    ae = AutoencoderTransformer((8, 4), epochs=2, device="cpu", random_state=0).fit(X)
    params = dict(TINY, validation_fraction=0.2, patience=2)
    reference = PretrainedClassifier(ae, **params).fit(X[:30], y[:30]).predict_proba(X)
    X_noisy = X.copy()
    X_noisy[30:] = 1e3  # unlabelled rows that would wreck any loss they entered
    semi = PretrainedClassifier(ae, **params).fit(X_noisy, y_semi).predict_proba(X)
    np.testing.assert_array_equal(reference, semi)


def test_string_labels_with_minus_one_in_an_object_array(data):
    X, y, y_semi = data
    names = np.array(["ant", "bee", "cat"], dtype=object)[y]
    names[30:] = -1
    clf = tiny().fit(X, names)
    assert list(clf.classes_) == ["ant", "bee", "cat"]
    assert set(clf.predict(X)) <= {"ant", "bee", "cat"}


@pytest.mark.parametrize(
    "y_labels, message",
    [
        (np.full(120, -1), "no labelled rows"),
        (np.r_[np.full(30, 2), np.full(90, -1)], "1 class"),
        (np.linspace(0, 1, 120), "Unknown label type"),
        (np.array(["a", 1, -1] * 40, dtype=object), "mix label types"),
    ],
)
def test_clear_errors_on_labels(data, y_labels, message):
    with pytest.raises(ValueError, match=message):
        tiny().fit(data[0], y_labels)


def test_clear_errors_on_data_and_parameters(data):
    X, _, y_semi = data
    X_nan = X.copy()
    X_nan[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tiny().fit(X_nan, y_semi)
    for bad, match in [
        (dict(freeze="some"), "freeze"),
        (dict(n_layers=3), "n_layers"),
        (dict(prefit="yes"), "prefit"),
        (dict(dropout=1.0), "dropout"),
        (dict(input_dropout=-0.1), "input_dropout"),
    ]:
        with pytest.raises(ValueError, match=match):
            tiny(**bad).fit(X, y_semi)
    with pytest.raises(ValueError, match="prefit=True needs a fitted autoencoder"):
        PretrainedClassifier(prefit=True, **TINY).fit(X, y_semi)
    with pytest.raises(
        TypeError,
        match="autoencoder='ae' is not allowed: autoencoder must be None or an instance of AutoencoderTransformer",
    ):
        PretrainedClassifier("ae", **TINY).fit(X, y_semi)


# -- the estimator: where the layers come from -----------------------------------------------


def test_freeze_and_scratch_in_the_estimator(data):
    X, _, y_semi = data
    lower = tiny().fit(X, y_semi)
    ae_layer = lower.autoencoder_.module_.encoder.layers[0].weight
    assert lower.n_frozen_ == 1 and torch.equal(lower.module_.encoder.layers[0].weight, ae_layer)
    tuned = tiny(freeze="none").fit(X, y_semi)
    assert tuned.n_frozen_ == 0 and not torch.equal(tuned.module_.encoder.layers[0].weight, ae_layer)
    scratch = tiny(pretrain=False).fit(X, y_semi)
    assert scratch.autoencoder_ is None and scratch.n_frozen_ == 0
    assert scratch.module_.config.hidden_sizes == (8, 4)
    first = tiny(n_layers=1, freeze="all").fit(X, y_semi)
    assert first.module_.config.hidden_sizes == (8,) and first.n_frozen_ == 1


def test_prefit_semantics(data):
    X, _, y_semi = data
    fitted = AutoencoderTransformer((8, 4), epochs=2, device="cpu", random_state=0).fit(X)
    weights = state(fitted.module_)
    auto = tiny(fitted).fit(X, y_semi)
    assert auto.autoencoder_ is fitted  # used as it is ...
    assert all(torch.equal(weights[k], v) for k, v in fitted.module_.state_dict().items())  # ... untouched
    refit = tiny(fitted, prefit=False).fit(X, y_semi)
    assert refit.autoencoder_ is not fitted and refit.autoencoder_.n_iter_ == 2
    unfitted = AutoencoderTransformer((8, 4), epochs=2, device="cpu")
    cloned = tiny(unfitted).fit(X, y_semi)
    assert not hasattr(unfitted, "module_") and hasattr(cloned.autoencoder_, "module_")
    with pytest.raises(NotFittedError, match="prefit=True"):
        tiny(unfitted, prefit=True).fit(X, y_semi)
    # clone (as GridSearchCV does) unfits a plain instance; a FrozenEstimator survives it
    frozen = clone(tiny(FrozenEstimator(fitted))).fit(X, y_semi)
    assert frozen.autoencoder_ is fitted
    with pytest.raises(ValueError, match="features"):
        tiny(fitted).fit(X[:, :5], y_semi)


def test_reproducible_clone_and_pickle(data):
    X, _, y_semi = data
    params = {"dropout": 0.2}
    a = tiny(**params).fit(X, y_semi)
    b = clone(a).fit(X, y_semi)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(a)).predict_proba(X), a.predict_proba(X))
    np.testing.assert_allclose(a.predict_proba(X).sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(a.predict(X), a.classes_[a.predict_proba(X).argmax(axis=1)])


@pytest.mark.parametrize("with_instance", [False, True])
def test_save_load_round_trip(data, tmp_path, with_instance):
    X, _, y_semi = data
    names = np.array(["ant", "bee", "cat"], dtype=object)[np.where(y_semi < 0, 0, y_semi)]
    names[y_semi < 0] = -1
    ae = AutoencoderTransformer((8, 4), epochs=2, device="cpu", random_state=0) if with_instance else None
    clf = (
        PretrainedClassifier(ae, **TINY)
        .set_params(autoencoder__hidden_layer_sizes=(8, 4), autoencoder__epochs=2)
        .fit(X, names)
    )
    loaded = io.load(io.save(clf, tmp_path / "model"))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    assert loaded.n_frozen_ == clf.n_frozen_ and loaded.history_ == clf.history_
    assert loaded.autoencoder.get_params() == clf.autoencoder.get_params()


# -- the point of it all ---------------------------------------------------------------------


def manifold_clusters(n, seed=0, n_classes=4, dim=100, noise=3.0):
    """Clusters in 2-D, embedded nonlinearly in ``dim`` dimensions and drowned in isotropic
    noise: the structure is strong (an autoencoder finds the 2-D sheet from unlabelled rows)
    but a network trained on a handful of labels fits the noise."""
    rng = np.random.RandomState(seed)
    angles = 2 * np.pi * np.arange(n_classes) / n_classes
    centres = 2.5 * np.column_stack([np.cos(angles), np.sin(angles)])
    y = rng.randint(n_classes, size=n)
    z = centres[y] + 0.6 * rng.randn(n, 2)
    X = np.tanh(z @ rng.randn(2, 8)) @ rng.randn(8, dim)
    X = X / X.std(axis=0) + noise * rng.randn(n, dim)
    return X.astype(np.float32), y


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_pretraining_beats_scratch_with_few_labels(seed):
    X, y = manifold_clusters(1400)
    X_train, y_train, X_test, y_test = X[:1000], y[:1000], X[1000:], y[1000:]
    rng = np.random.RandomState(seed)
    labelled = np.concatenate(
        [rng.choice(np.flatnonzero(y_train == c), 3, replace=False) for c in range(4)]
    )  # 12 labels
    y_semi = np.full_like(y_train, -1)
    y_semi[labelled] = y_train[labelled]
    ae = AutoencoderTransformer((16, 4), epochs=20, batch_size=50, device="cpu")
    errors = {
        pretrain: 1
        - PretrainedClassifier(ae, pretrain=pretrain, epochs=60, device="cpu", random_state=seed)
        .fit(X_train, y_semi)
        .score(X_test, y_test)
        for pretrain in (True, False)
    }
    # measured on seeds 0-4: pretrained 0.10-0.17, scratch 0.30-0.47
    assert errors[True] < errors[False] - 0.1, errors


def test_input_dropout_masks_the_input_in_training_only_and_only_when_layer_1_trains():
    module = EncoderClassifier(ClassifierConfig(400, (8, 4), 3, input_dropout=0.5), torch.Generator().manual_seed(0))
    seen = []
    module.encoder.layers[0].register_forward_pre_hook(lambda layer, args: seen.append(args[0].clone()))
    x = torch.ones(8, 400)
    module.train()
    module(x)
    dropped = seen[-1] == 0
    assert 0.3 < dropped.float().mean() < 0.7  # about half the pixels, the rest scaled by 2
    assert torch.equal(seen[-1][~dropped], torch.full_like(seen[-1][~dropped], 2.0))
    module.eval()
    module(x)
    assert torch.equal(seen[-1], x)
    module.train()  # layer 1 frozen: its cached outputs are the input of the trainable part
    h1 = module.encode_layer(x, 1)
    seen.clear()
    module.encoder.layers[1].register_forward_pre_hook(lambda layer, args: seen.append(args[0].clone()))
    module.forward_from(h1, 1)
    assert torch.equal(seen[-1], h1)

"""aekit.io: save / load round trips, atomic writes, and clear errors on bad model directories."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import safetensors.torch
import torch
from sklearn.exceptions import NotFittedError

import aekit
from aekit import AutoencoderTransformer
from aekit.io import ModelFileError, atomic_directory, load, save


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).random((48, 8), dtype=np.float32)  # in [0, 1] for bce


def fitted(X, **params):
    settings = dict(hidden_layer_sizes=(6, 3), epochs=2, batch_size=16, device="cpu", random_state=0, l2=1e-4)
    return AutoencoderTransformer(**{**settings, **params}).fit(X)


@pytest.fixture(scope="module")
def model(X):
    return fitted(X)


@pytest.fixture
def saved(model, tmp_path):
    return save(model, tmp_path / "model")


def files_of(directory):
    return {p.name: p.read_bytes() for p in directory.iterdir()}


# -- round trips -----------------------------------------------------------------------------
@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_round_trip_gives_identical_outputs(X, tmp_path, tied, loss):
    model = fitted(X, tied=tied, loss=loss)
    loaded = load(save(model, tmp_path / "m"))
    codes = model.transform(X)
    np.testing.assert_array_equal(loaded.transform(X), codes)
    np.testing.assert_array_equal(loaded.inverse_transform(codes), model.inverse_transform(codes))
    np.testing.assert_array_equal(loaded.reconstruct(X), model.reconstruct(X))
    assert loaded.score(X) == model.score(X)
    assert loaded.get_params() == model.get_params()
    assert (loaded.history_, loaded.n_iter_, loaded.n_features_in_) == (
        model.history_,
        model.n_iter_,
        model.n_features_in_,
    )


def test_config_json_contents(model, saved):
    config = json.loads((saved / "config.json").read_text())
    assert config["format"] == "aekit-model" and config["format_version"] == 2
    assert config["aekit_version"] == aekit.__version__
    assert config["estimator"] == "AutoencoderTransformer"
    assert config["params"]["hidden_layer_sizes"] == [6, 3]
    assert config["module"] == model.module_.config.to_dict()
    assert config["fitted"]["n_iter_"] == 2 and "feature_names_in_" not in config["fitted"]


def test_tied_model_stores_no_decoder_weights(saved):
    keys = set(safetensors.torch.load_file(saved / "model.safetensors"))
    assert keys == {
        "encoder.layers.0.weight",
        "encoder.layers.0.bias",
        "encoder.layers.1.weight",
        "encoder.layers.1.bias",
        "decoders.0.bias",
        "decoders.1.bias",
    }


def test_random_state_object_is_saved_as_null(X, tmp_path, caplog):
    model = fitted(X, random_state=np.random.RandomState(0))
    with caplog.at_level(logging.WARNING, logger="aekit.io"):
        path = save(model, tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    assert config["params"]["random_state"] is None and "RandomState" in config["notes"][0]
    assert "RandomState" in caplog.text
    np.testing.assert_array_equal(load(path).transform(X), model.transform(X))


def test_feature_names_round_trip(X, tmp_path):
    model = fitted(X)
    model.feature_names_in_ = np.array([f"f{i}" for i in range(8)], dtype=object)
    loaded = load(save(model, tmp_path / "m"))
    assert loaded.feature_names_in_.dtype == object
    np.testing.assert_array_equal(loaded.feature_names_in_, model.feature_names_in_)


def test_load_leaves_the_global_random_stream_alone(saved):
    state = torch.get_rng_state()
    load(saved)
    assert torch.equal(torch.get_rng_state(), state)


def test_cuda_model_loads_on_cpu_when_cuda_is_missing(X, model, saved, monkeypatch, caplog):
    config = json.loads((saved / "config.json").read_text())
    config["params"]["device"] = "cuda"
    (saved / "config.json").write_text(json.dumps(config))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="aekit.io"):
        loaded = load(saved)
    assert "CUDA is not available" in caplog.text
    assert loaded.device == "cuda"  # params as saved; only the module moved
    assert next(loaded.module_.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))


def test_unfitted_estimator_cannot_be_saved(tmp_path):
    with pytest.raises(NotFittedError):
        save(AutoencoderTransformer(), tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


# -- overwriting and atomicity ---------------------------------------------------------------
def test_overwrite_replaces_a_model_and_leaves_nothing_else(X, model, saved):
    other = fitted(X, random_state=1)
    save(other, saved)
    assert [p.name for p in saved.parent.iterdir()] == ["model"]
    np.testing.assert_array_equal(load(saved).transform(X), other.transform(X))


def test_overwrite_false_refuses_an_existing_model(model, saved):
    before = files_of(saved)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save(model, saved, overwrite=False)
    assert files_of(saved) == before


def test_save_creates_parents_and_replaces_an_empty_directory(model, tmp_path):
    save(model, tmp_path / "a" / "b")
    (tmp_path / "empty").mkdir()
    save(model, tmp_path / "empty")
    assert load(tmp_path / "a" / "b") is not None and load(tmp_path / "empty") is not None


def test_unrelated_files_are_never_replaced(model, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"meow")
    file = tmp_path / "notes.txt"
    file.write_text("keep me")
    with pytest.raises(FileExistsError, match="did not write"):
        save(model, folder)
    with pytest.raises(FileExistsError, match="not a directory"):
        save(model, file)
    assert (folder / "cat.jpg").read_bytes() == b"meow" and file.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "photos"]


def test_failed_save_keeps_the_previous_model(X, saved, monkeypatch):
    before = files_of(saved)

    def half_written(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\x00" * 10)
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", half_written)
    with pytest.raises(OSError, match="disk full"):
        save(fitted(X, random_state=1), saved)
    with pytest.raises(OSError, match="disk full"):
        save(fitted(X, random_state=1), saved.parent / "new")
    assert files_of(saved) == before
    assert [p.name for p in saved.parent.iterdir()] == ["model"]  # no temp or half directory


def test_atomic_directory_publishes_only_on_success(tmp_path):
    target = tmp_path / "out"
    with atomic_directory(target) as tmp:
        assert tmp.parent == tmp_path and not target.exists()
        (tmp / "a.txt").write_text("one")
    with pytest.raises(RuntimeError):
        with atomic_directory(target, is_own=lambda p: True) as tmp:
            (tmp / "a.txt").write_text("two")
            raise RuntimeError("interrupted")
    assert (target / "a.txt").read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    with pytest.raises(FileExistsError):  # non-empty and not claimed by is_own
        with atomic_directory(target):
            pass


# -- bad model directories -------------------------------------------------------------------
def edit_config(path, **changes):
    config = json.loads((path / "config.json").read_text())
    config.update(changes)
    (path / "config.json").write_text(json.dumps(config))


def edit_weights(path, change):
    state = safetensors.torch.load_file(path / "model.safetensors")
    change(state)
    safetensors.torch.save_file(state, path / "model.safetensors")


def _missing_key(state):
    del state["encoder.layers.1.bias"]


def _extra_key(state):
    state["decoders.0.weight"] = torch.zeros(8, 6)


def _wrong_shape(state):
    state["encoder.layers.0.weight"] = torch.zeros(5, 8)


def _wrong_dtype(state):
    state["encoder.layers.0.bias"] = state["encoder.layers.0.bias"].double()


BAD_DIRECTORIES = {
    "path missing": (lambda p: p.rename(p.with_name("gone")), "model", "no such model directory"),
    "path is a file": (
        lambda p: (p.rename(p.with_name("gone")), p.write_text("x")),
        "model",
        "not a directory",
    ),
    "config missing": (lambda p: (p / "config.json").unlink(), "config.json", "is missing"),
    "config not JSON": (lambda p: (p / "config.json").write_text("{nope"), "config.json", "not valid JSON"),
    "config not an object": (
        lambda p: (p / "config.json").write_text("[1]"),
        "config.json",
        "not an aekit model config",
    ),
    "wrong format": (lambda p: edit_config(p, format="keras"), "config.json", "not an aekit model config"),
    "newer format": (
        lambda p: edit_config(p, format_version=3),
        "config.json",
        "format_version 3.*upgrade aekit",
    ),
    "bad format_version": (
        lambda p: edit_config(p, format_version="1"),
        "config.json",
        "not a positive integer",
    ),
    "unknown estimator": (lambda p: edit_config(p, estimator="Pickle"), "config.json", "estimator 'Pickle'"),
    "unknown parameter": (
        lambda p: edit_config(p, params={"colour": "red"}),
        "config.json",
        "parameters.*colour",
    ),
    "bad module config": (
        lambda p: edit_config(p, module={"n_inputs": 8, "depth": 2}),
        "config.json",
        "not a valid StackedConfig",
    ),
    "weights missing": (lambda p: (p / "model.safetensors").unlink(), "model.safetensors", "is missing"),
    "weights random bytes": (
        lambda p: (p / "model.safetensors").write_bytes(np.random.default_rng(0).bytes(300)),
        "model.safetensors",
        "not a readable safetensors",
    ),
    "weights truncated": (
        lambda p: (p / "model.safetensors").write_bytes((p / "model.safetensors").read_bytes()[:-7]),
        "model.safetensors",
        "not a readable safetensors",
    ),
    "missing key": (
        lambda p: edit_weights(p, _missing_key),
        "model.safetensors",
        r"missing weights \['encoder.layers.1.bias'\]",
    ),
    "extra key": (
        lambda p: edit_weights(p, _extra_key),
        "model.safetensors",
        r"unexpected weights \['decoders.0.weight'\]",
    ),
    "wrong shape": (
        lambda p: edit_weights(p, _wrong_shape),
        "model.safetensors",
        r"'encoder.layers.0.weight' has shape \(5, 8\) but config.json says \(6, 8\)",
    ),
    "wrong dtype": (lambda p: edit_weights(p, _wrong_dtype), "model.safetensors", "dtype torch.float64"),
}


@pytest.mark.parametrize("damage, file, problem", BAD_DIRECTORIES.values(), ids=BAD_DIRECTORIES)
def test_bad_model_directory_raises_a_clear_error(saved, damage, file, problem):
    damage(saved)
    with pytest.raises(ModelFileError, match=f"{file}: .*{problem}"):
        load(saved)


def _with_module(p, **changes):
    config = json.loads((p / "config.json").read_text())
    config["module"].update(changes)
    (p / "config.json").write_text(json.dumps(config))


def _with_fitted(p, **changes):
    config = json.loads((p / "config.json").read_text())
    config["fitted"].update(changes)
    (p / "config.json").write_text(json.dumps(config))


CHECKED_BEFORE_USE = {
    "a string where a number belongs": (
        lambda p: edit_config(p, params={"epochs": "ten"}),
        "epochs='ten' is not allowed",
    ),
    "n_features_in_ against the network": (lambda p: _with_fitted(p, n_features_in_=5), "n_features_in_=5"),
    "feature names of the wrong count": (
        lambda p: _with_fitted(p, feature_names_in_=["a"]),
        "feature_names_in_ should be 8 strings",
    ),
    "a history that is not records": (lambda p: _with_fitted(p, history_=3), "history_ should be a list"),
    "huge layers, caught from the header alone": (
        lambda p: _with_module(p, hidden_sizes=[20000, 20000]),
        "has shape",
    ),
    "layers beyond any memory": (lambda p: _with_module(p, n_inputs=2**62), "no buildable network|has shape"),
}


@pytest.mark.parametrize("damage, problem", CHECKED_BEFORE_USE.values(), ids=CHECKED_BEFORE_USE)
def test_the_config_is_checked_before_anything_is_built_or_used(saved, damage, problem):
    damage(saved)
    with pytest.raises(ModelFileError, match=problem):
        load(saved)


def test_classes_are_checked_against_the_network(X, tmp_path):
    from aekit import PretrainedClassifier

    clf = PretrainedClassifier(AutoencoderTransformer((4,), epochs=1), epochs=1, device="cpu")
    path = save(clf.fit(X, np.arange(len(X)) % 3), tmp_path / "clf")
    for classes, problem in [([0, 1], "classes_ should hold 3 labels"), ([0, 0, 1], "3 different labels")]:
        _with_fitted(path, classes_=classes)
        with pytest.raises(ModelFileError, match=problem):
            load(path)
    _with_fitted(path, classes_=[0, 1, 2], n_frozen_=7)
    with pytest.raises(ModelFileError, match="n_frozen_=7"):
        load(path)

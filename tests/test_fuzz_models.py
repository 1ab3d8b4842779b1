"""Fuzzing model directories (config.json and model.safetensors): a damaged or hand-edited model
loads as a working estimator or raises ModelFileError, never another exception. Cases: see the
profiles in conftest.py."""

import json
import shutil
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aekit import AutoencoderTransformer, PretrainedClassifier, io
from aekit.io import ModelFileError

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 6), dtype=np.float32), np.arange(40) % 3
    io.save(AutoencoderTransformer((4, 2), epochs=1, device="cpu", random_state=0).fit(X), root / "ae")
    clf = PretrainedClassifier(AutoencoderTransformer((4,), epochs=1), epochs=1, device="cpu", random_state=0)
    io.save(clf.fit(X, y), root / "clf")
    io.save(AutoencoderTransformer((3,), tied=False, epochs=1, device="cpu").fit(X), root / "untied")
    return root


def paths(value, prefix=()):
    """Every place in a JSON value: tuples of keys and indices."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def edited(value, path, new, delete):
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        value = dict(value)
        if delete and not rest:
            value.pop(head)
        else:
            value[head] = edited(value[head], rest, new, delete)
    else:
        value = list(value)
        value[head] = edited(value[head], rest, new, delete)
    return value


@st.composite
def config_edits(draw, config):
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(paths(config))))
        config = edited(config, path, draw(JSON), delete=draw(st.booleans()))
    return config


def header_of(raw: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def with_header(header: dict, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


@st.composite
def damaged_models(draw, root):
    source = root / draw(st.sampled_from(["ae", "clf", "untied"]))
    config_text = (source / "config.json").read_text()
    weights = (source / "model.safetensors").read_bytes()
    target = draw(st.sampled_from(["config", "config bytes", "weights header", "weights bytes"]))
    if target == "config":
        config_text = json.dumps(draw(config_edits(json.loads(config_text))))
    elif target == "config bytes":
        config_text = draw(st.sampled_from([config_text[: draw(st.integers(0, len(config_text)))], draw(st.text())]))
    elif target == "weights header":
        header, body = header_of(weights)
        weights = with_header(draw(config_edits(header)), body)
    else:
        cut = draw(st.integers(0, len(weights)))
        weights = weights[:cut] + draw(st.binary(max_size=8)) + weights[cut + draw(st.integers(0, 8)) :]
    return source.name, config_text, weights


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("damaged")


def test_an_estimator_parameter_without_parameters_is_a_model_file_error(models, scratch):
    # found by the nightly profile: {"__estimator__": ..., "params": null}
    shutil.copytree(models / "clf", scratch / "clf", dirs_exist_ok=True)
    config = json.loads((scratch / "clf" / "config.json").read_text())
    config["params"]["autoencoder"]["params"] = None
    (scratch / "clf" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="should be an object"):
        io.load(scratch / "clf")


def test_a_damaged_model_loads_and_works_or_raises_model_file_error(models, scratch):
    @given(case=damaged_models(models))
    def check(case):
        name, config_text, weights = case
        directory = scratch / "model"
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir()
        (directory / "config.json").write_text(config_text, encoding="utf-8", errors="surrogatepass")
        (directory / "model.safetensors").write_bytes(weights)
        try:
            estimator = io.load(directory)
        except ModelFileError:
            return
        X = np.zeros((2, estimator.n_features_in_), dtype=np.float32)
        if isinstance(estimator, PretrainedClassifier):
            assert estimator.predict(X).shape == (2,) and estimator.predict_proba(X).shape[1] == len(estimator.classes_)
        else:
            assert estimator.transform(X).shape[0] == 2 and estimator.reconstruct(X).shape == X.shape

    check()

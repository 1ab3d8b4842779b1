"""Model directories written by aekit 0.1.0 (format 1, before the parameter tables) still load
and give the outputs they gave then (tests/fixtures/models_v1, made by make_models.py there)."""

from pathlib import Path

import numpy as np
import pytest

from aekit import AutoencoderTransformer, PretrainedClassifier, io

FIXTURES = Path(__file__).parent / "fixtures" / "models_v1"


@pytest.fixture(scope="module")
def expected():
    with np.load(FIXTURES / "expected.npz") as archive:
        return dict(archive)


@pytest.mark.parametrize("name", ["ae_tied", "ae_layerwise_bce"])
def test_autoencoders_of_format_1_give_identical_outputs(name, expected):
    model = io.load(FIXTURES / name)
    assert isinstance(model, AutoencoderTransformer)
    np.testing.assert_array_equal(model.transform(expected["X"]), expected[f"{name}.transform"])
    np.testing.assert_array_equal(model.reconstruct(expected["X"]), expected[f"{name}.reconstruct"])


@pytest.mark.parametrize("name", ["clf_default_ae", "clf_given_ae"])
def test_classifiers_of_format_1_give_identical_outputs(name, expected):
    model = io.load(FIXTURES / name)
    assert isinstance(model, PretrainedClassifier)
    np.testing.assert_array_equal(model.predict_proba(expected["X"]), expected[f"{name}.predict_proba"])


def test_flat_pretraining_parameters_become_the_autoencoders():
    """Format 1's default autoencoder, described by flat parameters, is the autoencoder parameter now."""
    model = io.load(FIXTURES / "clf_default_ae")
    ae = model.autoencoder
    assert isinstance(ae, AutoencoderTransformer)
    assert (
        ae.hidden_layer_sizes,
        ae.epochs,
        ae.layerwise_epochs,
        ae.corruption,
        ae.corruption_level,
        ae.batch_size,
        ae.l2,
    ) == ((16, 8), 2, 2, "masking", 0.2, 150, 5e-4)
    assert model.get_params()["autoencoder__corruption_level"] == 0.2
    given = io.load(FIXTURES / "clf_given_ae").autoencoder  # an instance: its own settings win
    assert (given.hidden_layer_sizes, given.l2) == ((12,), 1e-3)


def test_a_loaded_format_1_model_saves_as_format_2_and_round_trips(tmp_path, expected):
    model = io.load(FIXTURES / "clf_default_ae")
    again = io.load(io.save(model, tmp_path / "m"))
    np.testing.assert_array_equal(again.predict_proba(expected["X"]), expected["clf_default_ae.predict_proba"])
    assert again.get_params()["autoencoder__epochs"] == 2

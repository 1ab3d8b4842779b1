"""The command line for images and anomalies: ``aekit train --architecture conv``, ``aekit train
--detector``, ``aekit detect`` and the report of a detector."""

import csv
import json

import numpy as np
import pytest

from aekit import io
from aekit.cli import main
from aekit.nn import ConvAutoencoder

FAST = ["--epochs", "3", "--batch-size", "64", "--device", "cpu", "--seed", "0"]


@pytest.mark.slow
def test_train_conv_takes_the_image_shape_from_the_data_set(tmp_path):
    out = tmp_path / "conv"
    argv = ["-q", "train", "--architecture", "conv", "--channels", "4,8", "--hidden", "6", *FAST, "--out", str(out)]
    assert main(argv) == 0
    model = io.load(out / "model")
    assert isinstance(model.module_, ConvAutoencoder) and model.image_shape == (8, 8)
    assert (out / "reconstructions.png").exists()


@pytest.fixture(scope="module")
def detector_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "det"
    argv = ["-q", "train", "--detector", "--normal-labels", "3", "--hidden", "16,8", *FAST, "--out", str(out)]
    argv += ["--contamination", "0.05"]
    assert main(argv) == 0
    return out


def test_train_detector_on_the_normal_rows(detector_dir):
    metrics = json.loads((detector_dir / "metrics.json").read_text())
    assert metrics["n_normal_train"] == 146 and 0.5 < metrics["test_auroc"] <= 1
    detector = io.load(detector_dir / "model")
    assert detector.contamination == 0.05 and detector.autoencoder_.hidden_layer_sizes == (16, 8)
    assert detector.autoencoder_.learning_rate == detector.get_params()["autoencoder__learning_rate"]


def test_detect_writes_every_rows_scores_and_a_report(detector_dir, tmp_path, capsys):
    scores, page = tmp_path / "scores.csv", tmp_path / "anomalies.html"
    argv = ["-q", "detect", str(detector_dir), "--data", "digits", "--out", str(scores)]
    assert main([*argv, "--report", str(page), "--normal-labels", "3"]) == 0
    rows = list(csv.DictReader(scores.open()))
    assert len(rows) == 1797 and rows[0].keys() == {"row", "split", "score", "decision", "prediction", "label"}
    detector = io.load(detector_dir / "model")
    decision = np.array([float(r["decision"]) for r in rows])
    assert np.array_equal(np.array([int(r["prediction"]) for r in rows]), np.where(decision < 0, -1, 1))
    np.testing.assert_allclose(decision, [float(r["score"]) - detector.offset_ for r in rows], atol=1e-8)
    html = page.read_text()
    assert html.count("<img") == 3 and "ROC curve" in html and "most anomalous" in html
    assert "flagged as outliers" in capsys.readouterr().out


@pytest.mark.slow
def test_report_of_a_detector_adds_the_anomaly_sections(detector_dir, tmp_path):
    page = tmp_path / "report.html"
    argv = ["-q", "report", str(detector_dir), "--dataset", "digits", "--normal-labels", "3", "--no-tsne"]
    assert main([*argv, "--out", str(page)]) == 0
    html = page.read_text()
    assert "Reconstruction errors" in html and "ROC curve" in html and "Linear probe" in html


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--contamination", "0.7", "--detector"], "contamination must be a float in (0, 0.5]"),
        (["train", "--normal-labels", "3"], "add --detector"),
        (["train", "--detector", "--normal-labels", "42"], "no training rows have the normal labels (42,)"),
        (["train", "--architecture", "conv", "--channels", "2,2,2,2"], "leaves convolution 4 a side of 1"),
    ],
)
def test_bad_detector_and_conv_flags(argv, message, capsys, tmp_path):
    assert main(["-q", *argv, "--epochs", "1", "--out", str(tmp_path / "o")]) == 1
    assert message in capsys.readouterr().err


def test_detect_needs_a_detector(tmp_path, capsys):
    out = tmp_path / "ae"
    assert main(["-q", "train", "--hidden", "4", *FAST, "--out", str(out)]) == 0
    assert main(["-q", "detect", str(out), "--data", "digits", "--out", str(tmp_path / "s.csv")]) == 1
    assert "not an AutoencoderOutlierDetector; train one with `aekit train --detector`" in capsys.readouterr().err


def test_a_detector_is_not_checkpointed(tmp_path, capsys):
    argv = ["train", "--detector", "--checkpoint-every", "1", *FAST, "--out", str(tmp_path / "d")]
    assert main(argv) == 1
    assert "--checkpoint-every is for autoencoders" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


@pytest.mark.slow
def test_a_conv_model_trains_on_with_warm_start():
    from aekit import AutoencoderTransformer, datasets

    X = datasets.load("digits").X_train[:128]
    ae = AutoencoderTransformer(
        architecture="conv", image_shape=(1, 8, 8), channels=(4,), hidden_layer_sizes=(6,), epochs=1, random_state=0
    )
    first = ae.fit(X).module_
    ae.set_params(warm_start=True, epochs=2).fit(X)
    assert ae.n_iter_ == 3 and ae.module_ is not first

"""The report with a convolutional model, with your own modules, and with an outlier detector
(its anomaly sections and figures)."""

import numpy as np
import pytest
from torch import nn

from aekit import AutoencoderOutlierDetector, AutoencoderTransformer, plots
from aekit.datasets import load
from aekit.report import ReportOptions, compute_sections

QUICK = ReportOptions(tsne=False, probe=False, verbose=False, activation_steps=5, n_examples=4)


@pytest.fixture(scope="module")
def digits_data():
    return load("digits")


def titles(sections) -> list[str]:
    return [s.title for s in sections]


@pytest.mark.slow
def test_a_conv_model_shows_its_kernels(digits_data):
    ae = AutoencoderTransformer(architecture="conv", channels=(4,), hidden_layer_sizes=(6,), epochs=1, random_state=0)
    sections = compute_sections(ae.fit(digits_data.X_train.reshape(-1, 8, 8)), digits_data, {}, QUICK)
    weights = next(s for s in sections if s.title == "First-layer features")
    assert "kernel of the first convolution" in weights.caption and weights.image_png.startswith(b"\x89PNG")
    assert "Activation maximisation (first hidden layer)" in titles(sections)


@pytest.mark.slow
def test_your_own_modules_have_no_weight_images(digits_data):
    ae = AutoencoderTransformer(
        encoder=nn.Sequential(nn.Linear(64, 6), nn.Tanh()), decoder=nn.Linear(6, 64), epochs=1, random_state=0
    )
    found = titles(compute_sections(ae.fit(digits_data.X_train), digits_data, {}, QUICK))
    assert "First-layer features" not in found and "Activation maximisation (coding layer)" not in found
    assert "Activation maximisation (first hidden layer)" in found  # one layer: the code


@pytest.mark.slow
@pytest.mark.parametrize("known", [False, True])
def test_a_detector_adds_outliers_worst_images_histogram_and_roc_with_labels(digits_data, known):
    d = digits_data
    detector = AutoencoderOutlierDetector(AutoencoderTransformer((8,), epochs=3), random_state=0)
    detector.fit(d.X_train[d.y_train == 3])
    metrics = {}
    outliers = d.y_test != 3 if known else None
    sections = compute_sections(detector, d, metrics, QUICK, outliers=outliers)
    found = titles(sections)
    assert found[-4 + (not known) :] == [
        "Outliers",
        "The 4 most anomalous test images",
        "Reconstruction errors",
        *(["ROC curve"] if known else []),
    ]
    assert "autoencoder" in sections[0].html_body  # the detector's own parameters
    errors = -detector.score_samples(d.X_test)
    assert metrics["flagged_fraction"] == pytest.approx(np.mean(errors > -detector.offset_))
    assert ("auroc" in metrics) == known


def test_anomaly_figures():
    rng = np.random.default_rng(0)
    images = rng.random((5, 64))
    fig = plots.error_maps(images, images * 0.5, (images * 0.5) ** 2, (8, 8), scores=rng.random(5))
    assert len(fig.axes) == 15
    fig = plots.error_histogram(rng.random(100), 0.5, rng.random(100) > 0.8)
    assert fig.axes[0].get_xscale() == "log" and len(fig.axes[0].get_legend().get_texts()) == 3
    assert len(plots.roc_curve([0, 0.5, 1], [0, 0.9, 1], 0.95).axes[0].lines) == 2
    with pytest.raises(ValueError, match="no images"):
        plots.error_maps(images[:0], images[:0], images[:0], (8, 8))

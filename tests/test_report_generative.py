"""The report's sections on sparse and generative models, and their figures."""

from statistics import NormalDist

import numpy as np
import pytest
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from aekit import AutoencoderTransformer, VariationalAutoencoder, plots
from aekit.datasets import load
from aekit.report import ReportOptions, compute_sections
from aekit.report_generative import generative_sections, interpolation, latent_grid, sparsity_summary


@pytest.fixture(scope="module")
def data():
    return load("digits")


@pytest.fixture(scope="module")
def vae(data):
    return VariationalAutoencoder((16,), latent_dim=2, epochs=2, batch_size=64, random_state=0, device="cpu").fit(
        data.X_train
    )


OPTIONS = ReportOptions(tsne=False, probe=False, activation_steps=2, verbose=False, max_points=100)


def titles(estimator, data, metrics):
    return {s.title: s for s in compute_sections(estimator, data, metrics, OPTIONS)}


def generative_titles(estimator, data):
    return {s.title: s for s in generative_sections(estimator, data, OPTIONS, tqdm(disable=True))}


# -- arrays ----------------------------------------------------------------------------------
def test_interpolation_runs_on_the_line_between_the_two_codes(vae, data):
    a, b = data.X_test[0], data.X_test[1]
    path = interpolation(vae, a, b, n_steps=5)
    assert path.shape == (5, 64)
    np.testing.assert_allclose(path[0], vae.reconstruct(a[None])[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(path[-1], vae.reconstruct(b[None])[0], rtol=1e-5, atol=1e-6)
    middle = vae.transform(np.stack([a, b])).mean(0, keepdims=True)
    np.testing.assert_allclose(path[2], vae.inverse_transform(middle)[0], rtol=1e-5, atol=1e-6)


def test_latent_grid_spans_the_prior_quantiles_top_row_first():
    codes, z = latent_grid(n=4, edge=0.1)
    assert codes.shape == (16, 2)
    np.testing.assert_allclose(z, [NormalDist().inv_cdf(p) for p in np.linspace(0.1, 0.9, 4)], rtol=1e-6)
    np.testing.assert_allclose(codes[:4, 1], z[-1])  # the top row: the largest z[1]
    np.testing.assert_allclose(codes[:4, 0], z)  # left to right: z[0] increasing
    np.testing.assert_allclose(codes[-1], [z[-1], z[0]])


def test_sparsity_summary():
    summary = sparsity_summary(np.array([0.1, 0.12, 0.06]), 0.1)
    assert summary["mean"] == pytest.approx(0.28 / 3)
    assert summary["mean_relative_deviation"] == pytest.approx((0.0 + 0.2 + 0.4) / 3)


# -- sections ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_vae_report_has_samples_interpolation_and_manifold(vae, data):
    sections = titles(vae, data, {"train_elbo": vae.score(data.X_train)})
    assert {"Generated samples", "Interpolation", "Latent manifold", "Reconstructions"} <= set(sections)
    assert not any(t.startswith(("Most activating", "Activation maximisation")) for t in sections)
    assert "ELBO" in sections["Metrics"].caption and "Sparsity of the codes" not in sections
    for section in ("Generated samples", "Interpolation", "Latent manifold"):
        assert sections[section].image_png[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_manifold_beyond_two_latent_dimensions(data):
    vae = VariationalAutoencoder((16,), latent_dim=3, epochs=1, random_state=0, device="cpu").fit(data.X_train)
    assert set(generative_titles(vae, data)) == {"Generated samples", "Interpolation"}


@pytest.mark.slow
def test_a_sparse_autoencoder_report_shows_mean_activations_against_rho(data):
    ae = AutoencoderTransformer(
        (16,), code_activation="sigmoid", sparsity_target=0.1, epochs=2, random_state=0, device="cpu"
    ).fit(data.X_train)
    sections = generative_titles(ae, data)
    caption = sections["Sparsity of the codes"].caption
    means = ae.transform(data.X_test).mean(0)
    assert "rho = 0.1" in caption and f"{sparsity_summary(means, 0.1)['mean']:.4g}" in caption
    assert set(sections) == {"Sparsity of the codes", "Interpolation"}
    plain = AutoencoderTransformer((16,), epochs=1, random_state=0, device="cpu").fit(data.X_train)
    assert set(generative_titles(plain, data)) == {"Interpolation"}


# -- figures ----------------------------------------------------------------------------------
def test_activation_histogram_marks_the_target_and_the_mean():
    fig = plots.activation_histogram(np.linspace(0.05, 0.2, 30), target=0.1)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    xs = sorted(line.get_xdata()[0] for line in fig.axes[0].lines)
    assert xs == pytest.approx([0.1, 0.125])
    with pytest.raises(ValueError, match="no mean activations"):
        plots.activation_histogram([])


def test_sample_grid_is_one_square_ish_picture_on_the_unit_range():
    samples = np.random.default_rng(0).random((10, 16))
    image = plots.sample_grid(samples, (4, 4)).axes[0].images[0]
    canvas = np.asarray(image.get_array())
    assert canvas.shape == (3 * 5 - 1, 4 * 5 - 1) and image.get_clim() == (0.0, 1.0)  # 4 columns, 3 rows
    np.testing.assert_allclose(canvas[5:9, 0:4], samples[4].reshape(4, 4))  # second row, first column
    assert np.isnan(np.asarray(canvas.data)[10:, 10:]).all()  # no image after the tenth
    assert plots.sample_grid(np.full((2, 16), 2.0), (4, 4)).axes[0].images[0].get_clim() == (2.0, 2.0)


def test_interpolation_strip_puts_the_inputs_at_the_ends():
    start, end, path = np.zeros(16), np.ones(16), np.random.default_rng(0).random((5, 16))
    fig = plots.interpolation_strip(start, path, end, (4, 4))
    assert len(fig.axes) == 7
    assert [ax.get_title() for ax in fig.axes] == ["input", "0.00", "0.25", "0.50", "0.75", "1.00", "input"]


def test_manifold_grid_tiles_the_decodings_apart():
    n, shape = 3, (2, 2)
    decoded = np.arange(n * n, dtype=np.float32).repeat(4).reshape(n * n, 4) / 10
    fig = plots.manifold_grid(decoded, shape, z_values=[-1.0, 0.0, 1.0])
    canvas = np.asarray(fig.axes[0].images[0].get_array())
    assert canvas.shape == (n * 3 - 1, n * 3 - 1)  # 2-pixel tiles with a 1-pixel gap between them
    assert canvas[0, 0] == 0.0 and canvas[0, 3] == pytest.approx(0.1) and canvas[3, 0] == pytest.approx(0.3)
    assert np.ma.is_masked(canvas[2, 0]) or np.isnan(canvas[2, 0])
    with pytest.raises(ValueError, match="3 x 3 codes needs 9"):
        plots.manifold_grid(decoded[:8], shape, z_values=[-1.0, 0.0, 1.0])

"""aekit.plots: every function returns a Figure with the expected panels and finite images."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from aekit import plots

SHAPE = (4, 4)


@pytest.fixture
def images():
    return np.random.default_rng(0).random((12, 16)).astype(np.float32)


def _check(fig, n_axes):
    assert isinstance(fig, Figure)
    assert len(fig.axes) == n_axes
    for ax in fig.axes:
        for im in ax.images:
            assert np.isfinite(np.asarray(im.get_array(), dtype=float)).all()
    assert plots.figure_to_png_bytes(fig, dpi=30)[:8] == b"\x89PNG\r\n\x1a\n"


def test_image_grid_removes_unused_cells(images):
    fig = plots.image_grid(images, SHAPE, ncols=5, titles=[str(i) for i in range(12)])
    _check(fig, 12)  # 3 rows of 5, 3 empty cells removed
    assert all(len(ax.images) == 1 for ax in fig.axes)
    _check(plots.image_grid(images.reshape(12, 4, 4)), 12)  # already image-shaped


def test_reconstruction_grid(images):
    fig = plots.reconstruction_grid(images, images * 0.5, SHAPE, n=6)
    _check(fig, 12)
    assert fig.axes[0].get_ylabel() == "original"
    assert fig.axes[6].get_ylabel() == "reconstructed"
    assert fig.axes[0].get_xticks().size == 0
    _check(plots.reconstruction_grid(images[:3], images[:3], SHAPE, n=10), 6)
    with pytest.raises(ValueError, match="shape"):
        plots.reconstruction_grid(images, images[:5], SHAPE)


def test_weight_grid(images):
    _check(plots.weight_grid(images.reshape(12, 4, 4), max_units=8), 8)


def test_top_activating_grid(images):
    indices = np.arange(15).reshape(5, 3) % 12
    values = np.sort(np.random.default_rng(1).random((5, 3)), axis=1)[:, ::-1]
    fig = plots.top_activating_grid(images, indices, SHAPE, units=[0, 4], values=values)
    _check(fig, 6)
    np.testing.assert_array_equal(fig.axes[3].images[0].get_array(), images[indices[4, 0]].reshape(SHAPE))
    _check(plots.top_activating_grid(images, indices, SHAPE), 15)


def test_activation_maximization_grid(images):
    fig = plots.activation_maximization_grid(images[:4], SHAPE, units=[2, 5, 7, 9], activations=[1.0, 2.0, 3.0, 4.0])
    _check(fig, 4)
    assert fig.axes[1].get_title().startswith("unit 5")


def test_latent_maps():
    rng = np.random.default_rng(0)
    points, labels = rng.standard_normal((50, 2)), rng.integers(0, 3, 50)
    fig = plots.latent_map(points, labels, "codes")
    _check(fig, 1)
    assert fig.axes[0].get_legend() is not None
    _check(plots.latent_maps(points, points * 2, labels), 2)
    _check(plots.latent_maps(points, None, labels), 1)
    _check(plots.latent_map(points, rng.random(50)), 2)  # continuous labels: a colour bar
    _check(plots.latent_map(points), 1)


def test_loss_curves_one_line_per_phase_and_split():
    history = [
        {
            "phase": "phase1",
            "epoch": e,
            "loss": 1.0 / e,
            "reconstruction": 0.9 / e,
            "l2": 0.1 / e,
            "val_loss": 1.1 / e,
        }
        for e in (1, 2, 3)
    ]
    history += [{"phase": "phase2", "epoch": e, "loss": 0.5 / e, "parts": {"reconstruction": 0.4 / e}} for e in (1, 2)]
    fig = plots.loss_curves(history)
    _check(fig, 1)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 3  # phase1 train + validation, phase2 train
    np.testing.assert_array_equal(lines[-1].get_xdata(), [4, 5])  # epochs continue across phases
    fig = plots.loss_curves(history, show_parts=True)
    _check(fig, 2)
    assert len(fig.axes[1].get_lines()) == 3  # phase1: reconstruction, l2; phase2: reconstruction


def test_label_budget_aggregates_seeds():
    results = [
        {"method": m, "n_labels": n, "seed": s, "error": 0.5 / n**0.5 + 0.01 * s + off}
        for m, off in (("scratch", 0.1), ("pretrained", 0.0))
        for n in (10, 100, 1000)
        for s in range(3)
    ]
    fig = plots.label_budget(results)
    _check(fig, 1)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert ax.get_ylabel() == "test error"
    containers = {c.get_label(): c for c in ax.containers}  # one error-bar line per method
    assert set(containers) == {"scratch", "pretrained"}
    line, _, (bars,) = containers["scratch"].lines
    np.testing.assert_array_equal(line.get_xdata(), [10, 100, 1000])
    # mean over seeds 0, 1, 2 adds 0.01; the bar spans +- the sample std (0.01)
    np.testing.assert_allclose(line.get_ydata(), 0.5 / np.array([10, 100, 1000]) ** 0.5 + 0.11)
    np.testing.assert_allclose(bars.get_segments()[0][:, 1], line.get_ydata()[0] + [-0.01, 0.01])


def test_save_figure(tmp_path, images):
    path = tmp_path / "grid.png"
    plots.save_figure(plots.image_grid(images, SHAPE), path)
    assert path.read_bytes()[:4] == b"\x89PNG"

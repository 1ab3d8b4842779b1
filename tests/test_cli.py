"""The ``aekit`` command: thin, returns exit codes, writes what it says."""

import json

import numpy as np
import pytest

import aekit
from aekit import io
from aekit.cli import main

FAST = ["--hidden", "8,4", "--epochs", "2", "--batch-size", "64", "--device", "cpu", "--seed", "0"]


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert aekit.__version__ in capsys.readouterr().out


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("demo", "train", "report"):
        assert command in out


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "usage" in capsys.readouterr().out


def test_train_writes_model_metrics_and_figures(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "-q",
                "train",
                "--dataset",
                "digits",
                *FAST,
                "--corruption",
                "masking",
                "--corruption-level",
                "0.3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == "digits" and metrics["test_mse"] > 0 and metrics["epochs_run"] == 2
    for name in ("reconstructions.png", "loss.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = io.load(out / "model")
    assert model.hidden_layer_sizes == (8, 4) and model.corruption == "masking"
    assert "test_mse" in capsys.readouterr().out


def test_preset_is_overridden_by_explicit_options(tmp_path):
    out = tmp_path / "run"
    assert main(["-q", "train", "--preset", "book", *FAST, "--no-tied", "--out", str(out)]) == 0
    model = io.load(out / "model")
    assert model.l2 == 5e-4 and model.tied is False and model.hidden_layer_sizes == (8, 4)


def test_book_layerwise_preset_shares_the_step_count_and_the_flag_overrides_it(tmp_path):
    out = tmp_path / "run"
    assert main(["-q", "train", "--preset", "book-layerwise", *FAST, "--layerwise-epochs", "1", "--out", str(out)]) == 0
    model = io.load(out / "model")
    assert model.training == "layerwise" and model.layerwise_step_count == "shared" and not model.tied
    assert (
        main(
            [
                "-q",
                "train",
                "--preset",
                "book-layerwise",
                *FAST,
                "--layerwise-epochs",
                "1",
                "--layerwise-step-count",
                "per_phase",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert io.load(out / "model").layerwise_step_count == "per_phase"


def test_train_layerwise_from_a_csv_file(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "data.csv"
    np.savetxt(data, rng.random((100, 9)), delimiter=",")
    out = tmp_path / "run"
    assert (
        main(
            [
                "-q",
                "train",
                "--dataset",
                str(data),
                *FAST,
                "--training",
                "layerwise",
                "--layerwise-method",
                "separate",
                "--layerwise-epochs",
                "2,1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    history = json.loads((out / "model" / "config.json").read_text())["fitted"]["history_"]
    assert [r["phase"] for r in history] == ["layer 1", "layer 1", "layer 2"]
    assert (out / "loss.png").exists() and (out / "reconstructions.png").exists()  # 9 = 3x3 images


@pytest.mark.slow
def test_demo_quick_writes_report_and_report_command_rebuilds_it(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["-q", "demo", "--quick", "--no-tsne", "--out", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert page.count("<img") >= 6 and "Linear probe" in page
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 < metrics["probe_accuracy_codes"] <= 1
    again = tmp_path / "again.html"
    assert main(["-q", "report", str(out), "--dataset", "digits", "--no-tsne", "--out", str(again)]) == 0
    assert again.read_text().count("<img") == page.count("<img")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--dataset", "no-such-set"], "no-such-set"),
        (["train", "--dataset", "mnist", "--data-dir", "/no/such/dir"], "/no/such/dir"),
        (["report", "/no/such/model", "--dataset", "digits"], "/no/such/model"),
        (["train", "--activation", "elu", "--l2", "-1"], "l2"),
    ],
)
def test_errors_are_reported_with_exit_code_1(argv, message, capsys, tmp_path):
    assert main(["-q", *argv[:1], *argv[1:], *(["--out", str(tmp_path / "o")] if argv[0] == "train" else [])]) == 1
    err = capsys.readouterr().err
    assert "error" in err and message in err


@pytest.mark.slow
def test_pretrain_study_writes_json_table_and_plot(tmp_path, capsys):
    out = tmp_path / "study"
    assert (
        main(
            [
                "-q",
                "pretrain",
                "--dataset",
                "digits",
                "--budgets",
                "20,50",
                "--seeds",
                "2",
                "--methods",
                "scratch,pretrained-finetuned,logreg-raw,ladder",
                "--autoencoder-hidden",
                "16",
                "--ladder-hidden",
                "16",
                "--ladder-epochs",
                "2",
                "--autoencoder-epochs",
                "2",
                "--epochs",
                "5",
                "--device",
                "cpu",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    records = json.loads((out / "study.json").read_text())
    assert len(records) == 2 * 2 * 4
    assert {r["n_epochs"] for r in records if r["method"] == "ladder"} == {2}
    assert {r["n_labels"] for r in records} == {20, 50}
    assert (out / "label_budget.png").read_bytes()[:4] == b"\x89PNG"
    assert "scratch" in (out / "study.md").read_text()


@pytest.mark.slow
def test_report_with_a_study_and_a_bad_study_file(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["-q", "train", "--dataset", "digits", *FAST, "--out", str(run)]) == 0
    study = tmp_path / "study.json"
    study.write_text(
        json.dumps(
            [
                {"method": m, "n_labels": n, "seed": s, "test_error": e}
                for m, e in [("scratch", 30.0), ("pretrained-finetuned", 20.0), ("ladder", 5.0)]
                for n in (20, 50)
                for s in (0, 1)
            ]
        )
    )
    page = tmp_path / "r.html"
    assert (
        main(
            [
                "-q",
                "report",
                str(run),
                "--dataset",
                "digits",
                "--no-tsne",
                "--study",
                str(study),
                "--out",
                str(page),
            ]
        )
        == 0
    )
    assert "Label-budget study" in page.read_text()
    assert "| labels | seeds | scratch | pretrained-finetuned | ladder |" in page.read_text()
    study.write_text("{not json")
    assert main(["-q", "report", str(run), "--dataset", "digits", "--study", str(study), "--out", str(page)]) == 1
    assert "study.json" in capsys.readouterr().err


# -- the variational autoencoder and generation ------------------------------------------------
VAE_FAST = ["--model", "vae", "--hidden", "16", "--latent-dim", "2", "--epochs", "2", "--batch-size", "64"]


def test_train_a_vae_then_generate_from_it(tmp_path, capsys):
    out = tmp_path / "vae"
    assert (
        main(["-q", "train", "--dataset", "digits", *VAE_FAST, "--device", "cpu", "--seed", "0", "--out", str(out)])
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_elbo"] < 0 and metrics["test_elbo"] < 0 and "test_mse" not in metrics
    model = io.load(out / "model")
    assert isinstance(model, aekit.VariationalAutoencoder) and model.latent_dim == 2
    for name in ("samples.png", "reconstructions.png", "loss.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    grid = tmp_path / "grid.png"
    assert main(["-q", "generate", str(out), "--n", "9", "--out", str(grid), "--seed", "1"]) == 0
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["-q", "generate", str(out / "model"), "--image-shape", "4,16", "--out", str(grid)]) == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", *VAE_FAST, "--sparsity-target", "0.1"], "--sparsity-target does not apply to --model vae"),
        (["train", "--latent-dim", "3"], "--latent-dim does not apply to --model autoencoder"),
        (["train", *VAE_FAST, "--preset", "book"], "--preset names AutoencoderTransformer settings"),
        (["train", *VAE_FAST, "--beta", "-1"], "beta=-1.0 is not allowed"),
        (["train", "--sparsity-target", "1.5"], "sparsity_target=1.5 is not allowed"),
    ],
)
def test_model_flags_that_do_not_apply_fail_before_loading_data(argv, message, capsys, tmp_path):
    assert main(["-q", *argv, "--dataset", "no-such-set", "--out", str(tmp_path / "o")]) == 1
    assert message in capsys.readouterr().err


def test_generate_needs_a_vae_and_an_image_shape_that_fits(tmp_path, capsys):
    ae = tmp_path / "ae"
    assert main(["-q", "train", "--dataset", "digits", *FAST, "--out", str(ae)]) == 0
    assert main(["-q", "generate", str(ae), "--out", str(tmp_path / "g.png")]) == 1
    assert "holds an estimator of class AutoencoderTransformer, which cannot generate" in capsys.readouterr().err
    vae = tmp_path / "vae"
    assert main(["-q", "train", "--dataset", "digits", *VAE_FAST, "--device", "cpu", "--out", str(vae)]) == 0
    assert main(["-q", "generate", str(vae), "--image-shape", "5,5", "--out", str(tmp_path / "g.png")]) == 1
    assert "--image-shape (5, 5) does not hold the model's 64 inputs" in capsys.readouterr().err


def test_model_flags_of_two_tables_must_agree(tmp_path):
    import argparse
    import dataclasses

    from aekit.cli.flags import add_model_flags
    from aekit.params import Interval, Param

    @dataclasses.dataclass
    class One:
        size: int = Param(Interval(int, 1), "A size.").field(1)

    @dataclasses.dataclass
    class Other:
        size: int = Param(Interval(int, 0), "A size.").field(1)

    with pytest.raises(TypeError, match="parameter 'size' of --model other differs"):
        add_model_flags(argparse.ArgumentParser(), {"one": One, "other": Other})

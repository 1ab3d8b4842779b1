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

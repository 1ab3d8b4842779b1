"""The command line's guarantees: outputs complete as a whole, an interrupted run resumes with
its own settings, and every expected failure is one line and a non-zero exit status."""

import errno
import json
import os
import stat

import pytest
import torch

from aekit import engine, io
from aekit.cli import main, runs
from aekit.files import recover

FAST = ["--dataset", "digits", "--hidden", "8,4", "--batch-size", "64", "--device", "cpu", "--seed", "0"]


def tree(folder):
    """Every file under ``folder`` with its bytes (names relative to it)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def weights(folder):
    return io.load(folder / "model").module_.state_dict()


def one_line_error(capsys, *words):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


@pytest.fixture
def interrupt_at(monkeypatch):
    """``interrupt_at(n)``: Ctrl-C at the end of the run's n-th epoch, after its snapshot."""

    def arm(n):
        original, seen = engine.checkpoint.Stage.epoch_end, []

        def epoch_end(self, *args):
            original(self, *args)
            seen.append(1)
            if len(seen) == n:
                raise KeyboardInterrupt

        monkeypatch.setattr(engine.checkpoint.Stage, "epoch_end", epoch_end)

    return arm


@pytest.mark.slow
def test_an_interrupted_run_resumes_with_its_own_settings_to_the_same_weights(tmp_path, capsys, interrupt_at):
    layerwise = [*FAST, "--training", "layerwise", "--layerwise-epochs", "2", "--fine-tune-epochs", "2"]
    assert main(["-q", "train", *layerwise, "--out", str(tmp_path / "whole")]) == 0
    out = tmp_path / "run"
    interrupt_at(3)  # in layer 2
    assert main(["-q", "train", *layerwise, "--out", str(out)]) == 130
    err = one_line_error(capsys, "interrupted (layer 2, epoch 1 of 2)", f"aekit train --resume {out}")
    assert not out.exists() and runs.unfinished(out).is_dir(), err
    assert main(["-q", "train", "--resume", str(out), "--epochs", "3"]) == 1
    one_line_error(capsys, "--resume continues a run with its own settings; drop --epochs")
    assert main(["-q", "train", *FAST, "--out", str(out)]) == 1
    one_line_error(capsys, "has an unfinished run (layer 2, epoch 1 of 2)", "--restart")
    interrupt_at(10**9)
    assert main(["-q", "train", "--resume", str(out)]) == 0
    whole, resumed = weights(tmp_path / "whole"), weights(out)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert not runs.unfinished(out).exists()
    assert main(["-q", "train", "--resume", str(out)]) == 1
    one_line_error(capsys, "no unfinished run to resume (its run finished)")


@pytest.mark.slow
def test_restart_discards_an_unfinished_run(tmp_path, capsys, interrupt_at):
    out = tmp_path / "run"
    interrupt_at(1)
    assert main(["-q", "train", *FAST, "--epochs", "3", "--out", str(out)]) == 130
    interrupt_at(10**9)
    assert main(["-q", "train", *FAST, "--epochs", "1", "--restart", "--out", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 1
    assert not runs.unfinished(out).exists()


@pytest.mark.slow
def test_a_run_killed_after_publishing_is_recognised_as_finished(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    with monkeypatch.context() as killed:  # as if killed between the swap and the clean-up
        killed.setattr(runs, "finish", lambda work: None)
        assert main(["-q", "train", *FAST, "--epochs", "1", "--out", str(out)]) == 0
    assert (runs.unfinished(out) / "checkpoint").is_dir()
    assert main(["-q", "train", "--resume", str(out)]) == 1
    one_line_error(capsys, "no unfinished run to resume (its run finished)")
    assert main(["-q", "train", *FAST, "--epochs", "1", "--out", str(out)]) == 0  # no "unfinished run" error
    assert not runs.unfinished(out).exists()


def test_outputs_are_refused_in_a_folder_aekit_did_not_write(tmp_path, capsys, monkeypatch):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    monkeypatch.setattr(engine, "fit", lambda *a, **k: pytest.fail("trained before checking the output folder"))
    assert main(["-q", "train", *FAST, "--out", str(out)]) == 1
    one_line_error(capsys, "aekit did not write")
    assert main(["-q", "demo", "--quick", "--out", str(out)]) == 1
    one_line_error(capsys, "aekit did not write")
    assert (out / "notes.txt").read_text() == "keep me"


@pytest.mark.slow
def test_a_full_disk_while_writing_outputs_keeps_the_previous_run(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert main(["-q", "train", *FAST, "--epochs", "1", "--out", str(out)]) == 0
    before = tree(out)
    real_fsync = os.fsync

    def full(fd):  # the disk fills up while the outputs are written, after training
        if ".run.tmp-" in os.readlink(f"/proc/self/fd/{fd}") and stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    assert main(["-q", "train", *FAST, "--epochs", "2", "--out", str(out)]) == 1
    one_line_error(capsys, "error: No space left on device")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert tree(out) == before
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name or ".old-" in p.name] == []
    # the finished training is kept: --resume writes the outputs once there is room
    assert main(["-q", "train", "--resume", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_everything_written_follows_the_umask(tmp_path, umask, file_mode, dir_mode):
    old = os.umask(umask)
    try:
        assert main(["-q", "train", *FAST, "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    finally:
        os.umask(old)
    for path in (tmp_path / "run").rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (dir_mode if path.is_dir() else file_mode), path
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == dir_mode


def test_leftovers_of_a_killed_swap_are_put_back_or_cleared(tmp_path):
    out = tmp_path / "run"
    (out / "model").mkdir(parents=True)
    (out / "model" / "config.json").write_text("{}")
    before = tree(out)
    dead = 2**22 + 12345  # above pid_max's default: no such process
    os.rename(out, tmp_path / f".run.old-{dead}-0000abcd")  # killed between the two renames
    (tmp_path / f".run.tmp-{dead}-xyz").mkdir()  # ... and the new folder it was swapping in
    (tmp_path / f".run.tmp-{os.getpid()}-live").mkdir()  # a live process's: left alone
    recover(out)
    assert tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".run.tmp-{os.getpid()}-live", "run"]


@pytest.mark.slow
def test_report_writes_into_the_folder_it_is_given_and_refuses_a_classifier(tmp_path, capsys):
    from aekit import AutoencoderTransformer, PretrainedClassifier
    from aekit.datasets import load

    data = load("digits")
    model = tmp_path / "models" / "a"  # beside others: each model's report goes into its own folder
    io.save(AutoencoderTransformer((4,), epochs=1, device="cpu").fit(data.X_train), model)
    assert main(["-q", "report", str(model), "--dataset", "digits", "--no-tsne"]) == 0
    assert (model / "report.html").is_file() and not (tmp_path / "models" / "report.html").exists()
    clf = PretrainedClassifier(AutoencoderTransformer((4,), epochs=1), epochs=1, device="cpu")
    io.save(clf.fit(data.X_train, data.y_train), tmp_path / "clf")
    capsys.readouterr()
    assert main(["-q", "report", str(tmp_path / "clf"), "--dataset", "digits"]) == 1
    one_line_error(capsys, "holds a PretrainedClassifier; aekit report describes autoencoders")


def test_a_malformed_config_an_unreadable_file_and_a_bad_device_are_one_line(tmp_path, capsys, monkeypatch):
    from aekit import AutoencoderTransformer

    X = [[0.0, 1.0]] * 8
    io.save(AutoencoderTransformer((2,), epochs=1, device="cpu").fit(X), tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["params"]["epochs"] = "ten"
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    assert main(["-q", "report", str(tmp_path / "m"), "--dataset", "digits"]) == 1
    one_line_error(capsys, "epochs='ten' is not allowed")
    assert main(["-q", "train", *FAST, "--device", "tpu", "--out", str(tmp_path / "o")]) == 1
    one_line_error(capsys, "device='tpu' is not allowed")
    csv = tmp_path / "data.csv"
    csv.write_text("1,2\n3,4\n")

    def unreadable(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(csv))

    monkeypatch.setattr("builtins.open", unreadable)
    assert main(["-q", "train", "--dataset", str(csv), "--out", str(tmp_path / "o")]) == 1
    one_line_error(capsys, "Permission denied", str(csv))


def test_ctrl_c_in_any_command_is_one_line_and_status_130_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("aekit.datasets.load", interrupt)
    assert main(["-q", "demo", "--out", str(tmp_path / "d")]) == 130
    one_line_error(capsys, "aekit demo: interrupted; nothing was written")
    assert main(["-q", "train", *FAST, "--out", str(tmp_path / "t")]) == 130
    one_line_error(capsys, "interrupted before the first epoch ended; nothing was written")
    assert sorted(tmp_path.iterdir()) == []
    with pytest.raises(KeyboardInterrupt):
        main(["-q", "train", *FAST, "--out", str(tmp_path / "t"), "--debug"])
    with pytest.raises(ValueError, match="l2"):
        main(["--debug", "-q", "train", "--l2", "-1", "--out", str(tmp_path / "t")])


def test_tensorboard_without_its_package_is_one_line(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    assert main(["-q", "train", *FAST, "--tensorboard", str(tmp_path / "tb"), "--out", str(tmp_path / "o")]) == 1
    one_line_error(capsys, "pip install 'aekit[tensorboard]'")
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_resume_from_another_folder_finds_a_data_file_given_by_a_relative_path(
    tmp_path, capsys, monkeypatch, interrupt_at
):
    import numpy as np

    np.save(tmp_path / "data.npy", np.random.default_rng(0).random((64, 4), dtype=np.float32))
    monkeypatch.chdir(tmp_path)
    interrupt_at(1)
    settings = ["--dataset", "data.npy", "--hidden", "2", "--epochs", "2", "--device", "cpu", "--seed", "0"]
    assert main(["-q", "train", *settings, "--out", "run"]) == 130
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    interrupt_at(10**9)
    assert main(["-q", "train", "--resume", str(tmp_path / "run")]) == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["dataset"] == "data.npy"

"""The optional TensorBoard logger: every epoch's losses and learning rate, and a reconstruction
grid, readable by TensorBoard's own event reader (skipped without the tensorboard package)."""

import copy
import pickle

import pytest

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from aekit import AutoencoderTransformer  # noqa: E402
from aekit.cli import main  # noqa: E402
from aekit.tensorboard import TensorBoardLogger  # noqa: E402


def events(log_dir):
    accumulator = EventAccumulator(str(log_dir))
    accumulator.Reload()
    return accumulator


def test_the_logger_writes_losses_learning_rates_and_reconstructions(digits, tmp_path):
    X, _ = digits
    logger = TensorBoardLogger(tmp_path, images=X[:6], image_shape=(8, 8))
    AutoencoderTransformer(
        (16, 8), training="layerwise", layerwise_epochs=2, fine_tune_epochs=2, callbacks=[logger], device="cpu"
    ).fit(X)
    logger.close()
    found = events(tmp_path)
    scalars = found.Tags()["scalars"]
    for tag in ("layer 1/loss", "layer 2/loss", "fine-tune/loss", "fine-tune/learning_rate", "layer 2/learning_rate"):
        assert tag in scalars
    assert [e.step for e in found.Scalars("fine-tune/loss")] == [5, 6]  # the run's epochs, over every phase
    assert found.Scalars("fine-tune/learning_rate")[0].value == pytest.approx(0.001)
    images = found.Images("reconstructions")
    assert len(images) == 6 - 2  # not while layer 2 reconstructs codes
    assert (images[0].height, images[0].width) == (16, 48)  # originals above reconstructions


def test_the_logger_copies_and_pickles_without_its_writer(tmp_path, digits):
    X, _ = digits
    logger = TensorBoardLogger(tmp_path)
    logger({"phase": "train", "epoch": 1, "loss": 1.0})
    for other in (copy.deepcopy(logger), pickle.loads(pickle.dumps(logger))):
        assert other._writer is None and other.step == 1
    logger.close()


def test_train_tensorboard_flag(tmp_path):
    fast = ["--dataset", "digits", "--hidden", "8,4", "--epochs", "2", "--device", "cpu"]
    assert main(["-q", "train", *fast, "--tensorboard", str(tmp_path / "tb"), "--out", str(tmp_path / "run")]) == 0
    assert [e.value for e in events(tmp_path / "tb").Scalars("train/loss")][-1] > 0

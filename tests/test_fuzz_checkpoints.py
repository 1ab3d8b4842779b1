"""Fuzzing checkpoints: a damaged or hand-edited checkpoint resumes to a fitted estimator or
raises CheckpointError, never another exception. A tenth of the profile's cases (each resumes a
small fit): see conftest.py."""

import json
import shutil
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fuzz_models import config_edits

from aekit import AutoencoderTransformer, checkpoints
from aekit.engine.checkpoint import CheckpointError

X = np.random.default_rng(0).random((64, 6), dtype=np.float32)


class InterruptAt:
    def __init__(self, epoch):
        self.epoch = epoch

    def __call__(self, record):
        if record["epoch"] == self.epoch and record["phase"] == "layer 2":
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("checkpoint")
    estimator = AutoencoderTransformer(
        (4, 2), training="layerwise", layerwise_epochs=2, batch_size=16, device="cpu", random_state=0
    )
    with pytest.raises(KeyboardInterrupt):
        checkpoints.fit(estimator.set_params(callbacks=[InterruptAt(2)]), X, directory=directory, every=1)
    return directory / checkpoints.CHECKPOINT_FILE


@st.composite
def damaged(draw, raw: bytes):
    (n,) = struct.unpack("<Q", raw[:8])
    header, body = json.loads(raw[8 : 8 + n]), raw[8 + n :]
    if draw(st.booleans()):  # the JSON of the run (in the header's metadata)
        run = json.loads(header["__metadata__"]["aekit"])
        header["__metadata__"]["aekit"] = json.dumps(draw(config_edits(run)))
    else:  # the tensors' names, shapes, dtypes, offsets
        meta = header.pop("__metadata__")
        edited = draw(config_edits(header))
        header = {**edited, "__metadata__": meta} if isinstance(edited, dict) else edited
    text = json.dumps(header).encode()
    raw = struct.pack("<Q", len(text)) + text + body
    if draw(st.integers(0, 4)) == 0:
        cut = draw(st.integers(0, len(raw)))
        raw = raw[:cut] + draw(st.binary(max_size=8)) + raw[cut:]
    return raw


def test_a_damaged_checkpoint_resumes_or_raises_checkpoint_error(checkpoint, tmp_path_factory):
    scratch = tmp_path_factory.mktemp("damaged")
    raw = checkpoint.read_bytes()

    @settings(max_examples=max(20, settings.default.max_examples // 10))
    @given(case=damaged(raw))
    def check(case):
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        (scratch / checkpoints.CHECKPOINT_FILE).write_bytes(case)
        try:
            estimator = checkpoints.resume(scratch, X)
        except CheckpointError:
            return
        assert estimator.transform(X[:2]).shape[0] == 2

    check()

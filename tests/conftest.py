"""Shared fixtures: a fixed torch thread count, the digits data set scaled to [0, 1], and the
Hypothesis profiles of the fuzz tests.

The fuzz tests (tests/test_fuzz_*.py) run a few hundred cases per reader by default. Set
``AEKIT_HYPOTHESIS_PROFILE=nightly`` for a nightly run of 10,000 cases per reader::

    AEKIT_HYPOTHESIS_PROFILE=nightly python -m pytest tests/test_fuzz_readers.py tests/test_fuzz_models.py \
        tests/test_fuzz_checkpoints.py

(test_fuzz_checkpoints.py runs a tenth of the profile's cases: each resumes a small fit.)
"""

import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings
from sklearn.datasets import load_digits

# no deadline: a case's time varies with the machine's load; the example database stays off
# the working tree (print_blob tells how to replay a failure)
_FUZZ = dict(deadline=None, database=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("aekit", max_examples=200, **_FUZZ)
settings.register_profile("nightly", max_examples=10_000, **_FUZZ)
settings.load_profile(os.environ.get("AEKIT_HYPOTHESIS_PROFILE", "aekit"))

# One intra-op thread: the tests' models are tiny (threads only add overhead) and a fixed
# count keeps float reductions in the same order from run to run.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def _digits():
    data = load_digits()
    return (data.data / 16).astype(np.float32), data.target


@pytest.fixture
def digits(_digits):
    """``(X, y)``: the 1797 8x8 digits, X float32 in [0, 1] of shape (1797, 64), y in 0..9."""
    X, y = _digits
    return X.copy(), y.copy()

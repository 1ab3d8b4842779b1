"""Shared fixtures: a fixed torch thread count and the digits data set, scaled to [0, 1]."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

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

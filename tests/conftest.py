"""Shared fixtures: the small data sets several test files use, and the CUDA marker."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from _settings import FAST_16

from skae import AutoEncoder


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA; torch.cuda.is_available() is False")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config):
    # The suite's models are tiny: one thread per process avoids spinning
    # OpenMP workers and is faster on the 2-core CI machine.
    torch.set_num_threads(1)


# ------------------------------------------------------------------- data sets


@pytest.fixture(scope="module")
def X_40x5():
    """A small table: 40 samples of 5 standard-normal features."""
    return np.random.RandomState(0).normal(size=(40, 5))


@pytest.fixture(scope="module")
def X_120x6():
    """A table of 120 samples of 6 standard-normal features."""
    return np.random.RandomState(0).normal(size=(120, 6))


@pytest.fixture(scope="module")
def X_400x12():
    """A float32 table of 400 samples of 12 standard-normal features."""
    return np.random.RandomState(0).normal(size=(400, 12)).astype(np.float32)


@pytest.fixture
def X_sparse():
    """A CSR matrix of 60 x 12 values in [0, 1], as TF-IDF, with all-zero rows 4 and 17."""
    X = sp.random(60, 12, density=0.25, format="csr", random_state=np.random.RandomState(0))
    keep = np.ones(60)
    keep[[4, 17]] = 0
    X = (sp.diags(keep) @ X).tocsr()
    X.eliminate_zeros()
    return X


@pytest.fixture(scope="module")
def fitted_autoencoder(X_120x6):
    """An AutoEncoder with 3 codes fitted on ``X_120x6`` (FAST_16)."""
    return AutoEncoder(n_components=3, **FAST_16).fit(X_120x6)

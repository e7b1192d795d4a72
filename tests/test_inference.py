"""Batched inference (skae._inference): outputs too large for the machine are refused."""

import numpy as np
import pytest

from skae import AutoEncoder, RecurrentAutoEncoder, VariationalAutoEncoder

FAST = dict(max_iter=2, tol=None, random_state=0, device="cpu")


@pytest.fixture(scope="module")
def X():
    return np.random.RandomState(0).normal(size=(30, 6))


def test_sampling_more_than_memory_holds_is_a_clear_error(X):
    vae = VariationalAutoEncoder(2, hidden_layer_sizes=(4,), **FAST).fit(X)
    with pytest.raises(ValueError, match=r"sample\(n_samples=1000000000000000\) asks for an"):
        vae.sample(10**15)
    assert vae.sample(3, random_state=0).shape == (3, 6)


def test_decoding_more_steps_than_memory_holds_is_a_clear_error(X):
    rec = RecurrentAutoEncoder(2, hidden_size=4, **FAST).fit(X)
    codes = rec.transform(X[:2])
    with pytest.raises(ValueError, match=r"inverse_transform\(n_timesteps=1000000000000000\)"):
        rec.inverse_transform(codes, n_timesteps=10**15)
    assert rec.inverse_transform(codes, n_timesteps=9).shape == (2, 9)


def test_feature_errors_of_sparse_input_are_dense_per_feature(X):
    import scipy.sparse as sp

    ae = AutoEncoder(2, hidden_layer_sizes=(4,), **FAST).fit(X)
    errors = ae.feature_errors(sp.csr_matrix(X))
    np.testing.assert_allclose(errors, ae.feature_errors(X), rtol=1e-6)
    np.testing.assert_allclose(errors.mean(axis=1), -ae.score_samples(X), rtol=1e-6)

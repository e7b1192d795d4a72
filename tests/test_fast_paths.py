"""Opt-in fast paths: bf16 autocast and torch.compile give the model eager float32 gives."""

import pickle

import numpy as np
import pytest
import torch

from skae import AutoEncoder, DenoisingAutoEncoder, VariationalAutoEncoder

PARAMS = dict(n_components=4, hidden_layer_sizes=(16,), max_iter=10, tol=None, random_state=0)


@pytest.fixture(scope="module")
def X():
    return np.random.RandomState(0).normal(size=(400, 12)).astype(np.float32)


@pytest.mark.parametrize("cls", [AutoEncoder, DenoisingAutoEncoder, VariationalAutoEncoder])
def test_mixed_precision_trains_to_the_float32_model(X, cls):
    eager = cls(device="cpu", **PARAMS).fit(X)
    bf16 = cls(device="cpu", mixed_precision=True, **PARAMS).fit(X)
    assert np.all(np.isfinite(bf16.loss_curve_))
    # bf16 keeps ~3 significant digits in the forward pass; weights stay float32.
    np.testing.assert_allclose(bf16.loss_curve_, eager.loss_curve_, rtol=0.02)
    assert next(bf16.module_.parameters()).dtype == torch.float32
    assert bf16.transform(X).dtype == np.float32


def test_compiled_fit_matches_eager_and_pickles(X):
    eager = AutoEncoder(device="cpu", **PARAMS).fit(X)
    compiled = AutoEncoder(device="cpu", compile=True, **PARAMS).fit(X)
    np.testing.assert_allclose(compiled.loss_curve_, eager.loss_curve_, rtol=1e-4)
    np.testing.assert_allclose(compiled.transform(X), eager.transform(X), rtol=1e-3, atol=1e-4)
    restored = pickle.loads(pickle.dumps(compiled))
    np.testing.assert_array_equal(restored.transform(X), compiled.transform(X))


@pytest.mark.cuda
@pytest.mark.parametrize("options", [{}, {"mixed_precision": True}, {"compile": True}])
def test_cuda_fast_paths_train_like_cpu(X, options):
    cpu = AutoEncoder(device="cpu", **PARAMS).fit(X)
    gpu = AutoEncoder(device="cuda", **options, **PARAMS).fit(X)
    assert np.all(np.isfinite(gpu.loss_curve_))
    assert gpu.loss_curve_[-1] == pytest.approx(cpu.loss_curve_[-1], rel=0.1)
    restored = pickle.loads(pickle.dumps(gpu))
    np.testing.assert_allclose(restored.transform(X), gpu.transform(X), rtol=1e-5)

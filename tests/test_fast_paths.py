"""Fast paths: bf16 autocast and torch.compile give the model eager float32 gives; data
too large for the GPU are streamed in batches from the host."""

import pickle

import numpy as np
import pytest
import torch

import skae._device
from skae import AutoEncoder, DenoisingAutoEncoder, VariationalAutoEncoder
from skae._batching import TensorBatchIterator
from skae._training import training_loss

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


def test_batches_of_host_data_are_moved_to_the_training_device():
    X = torch.arange(20.0).reshape(10, 2)
    lengths = torch.arange(10)
    in_place = list(TensorBatchIterator((X,), 4, shuffle=False))
    assert all(batch.device == X.device for batch in in_place)
    # Streaming to another device ("meta": shapes and dtypes, no data) moves
    # every tensor of every batch and keeps the rows aligned.
    streamed = list(TensorBatchIterator((X, lengths), 4, shuffle=True, device="meta"))
    assert [len(x) for x, _ in streamed] == [4, 4, 2]
    assert all(x.is_meta and n.is_meta and n.dtype == torch.int64 for x, n in streamed)


@pytest.mark.cuda
def test_data_too_large_for_the_gpu_are_streamed_from_the_host(X, monkeypatch):
    on_device = AutoEncoder(device="cuda", **PARAMS).fit(X)
    monkeypatch.setattr(skae._device, "fits_on_device", lambda arrays, device: False)
    streamed = AutoEncoder(device="cuda", **PARAMS).fit(X)
    assert next(streamed.module_.parameters()).is_cuda
    assert streamed.loss_curve_[-1] == pytest.approx(on_device.loss_curve_[-1], rel=0.1)


def test_mixed_precision_on_a_gpu_without_bf16_is_a_clear_error(monkeypatch):
    # Simulated: the check runs before any CUDA work, so no GPU is needed.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *args, **kwargs: "Old GPU")
    model = AutoEncoder(mixed_precision=True)
    module = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"this GPU \(Old GPU\) does not support"):
        training_loss(model, module, torch.device("cuda"))
    # Without the option the same device needs no bf16.
    plain = AutoEncoder()
    assert training_loss(plain, module, torch.device("cuda")) == plain._loss

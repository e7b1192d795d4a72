"""Devices and seeding (skae._device): the device parameter, CUDA and its absence, data too
large for the GPU streamed from the host, seeds that leave torch's global generator alone."""

import pickle

import numpy as np
import pytest
import skorch.callbacks
import torch
from _settings import FAST, FAST_16, FAST_PATHS

import skae._device
import skae._inference
from skae import (
    AutoEncoder,
)


@pytest.fixture(scope="module")
def X(X_120x6):
    return X_120x6


# ----------------------------------------------------------------- the device parameter


@pytest.mark.parametrize("device", ["mps", "meta", "tpu", "nonsense"])
def test_unsupported_device_is_a_clear_error(device, X_40x5):
    with pytest.raises(ValueError, match=f"device='{device}'"):
        AutoEncoder(2, **{**FAST, "device": device}).fit(X_40x5)


def test_cuda_device_without_cuda_is_a_clear_error(X):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="torch.cuda.is_available\\(\\) is False"):
        AutoEncoder(device="cuda").fit(X)


def test_device_auto_resolves_to_the_available_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert skae._device.resolve_device("auto").type == expected


@pytest.mark.cuda
def test_fit_and_reload_on_cuda(X):
    ae = AutoEncoder(n_components=3, **{**FAST_16, "device": "auto"}).fit(X)
    assert next(ae.module_.parameters()).is_cuda
    loaded = pickle.loads(pickle.dumps(ae))
    np.testing.assert_allclose(loaded.transform(X), ae.transform(X), rtol=1e-6)
    cpu_model = AutoEncoder(n_components=3, **FAST_16).fit(X)
    # Same architecture trains to a similar reconstruction error on both devices.
    assert ae.score(X) == pytest.approx(cpu_model.score(X), rel=0.2)


@pytest.mark.cuda
def test_data_too_large_for_the_gpu_are_streamed_from_the_host(X_400x12, monkeypatch):
    on_device = AutoEncoder(device="cuda", **FAST_PATHS).fit(X_400x12)
    monkeypatch.setattr(skae._device, "fits_on_device", lambda arrays, device: False)
    streamed = AutoEncoder(device="cuda", **FAST_PATHS).fit(X_400x12)
    assert next(streamed.module_.parameters()).is_cuda
    assert streamed.loss_curve_[-1] == pytest.approx(on_device.loss_curve_[-1], rel=0.1)


# ------------------------------------------------------------------------------ seeding


def test_same_seed_same_codes_other_seed_other_codes(X):
    a = AutoEncoder(n_components=3, **FAST_16).fit(X).transform(X)
    b = AutoEncoder(n_components=3, **FAST_16).fit(X).transform(X)
    c = AutoEncoder(n_components=3, **{**FAST_16, "random_state": 1}).fit(X).transform(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fit_leaves_torch_global_rng_alone(X):
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    AutoEncoder(n_components=2, **FAST_16).fit(X)
    assert torch.equal(torch.random.get_rng_state(), state)


# ------------------------------------------------ memory-mapped training data


class TrainingDataPointer(skorch.callbacks.Callback):
    """Keeps the address and dtype of the tensor the net trains from."""

    def on_train_begin(self, net, X=None, **kwargs):
        self.ptr, self.dtype = X.tensors[0].data_ptr(), X.tensors[0].dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fit", ["fit", "partial_fit"])
def test_a_read_only_memmap_is_trained_from_in_place_not_copied(dtype, fit, tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "X.bin"
    X = np.memmap(path, dtype=dtype, mode="w+", shape=(300, 6))
    X[:] = rng.normal(size=(300, 6))
    X.flush()
    X = np.memmap(path, dtype=dtype, mode="r", shape=(300, 6))
    pointer = TrainingDataPointer()
    ae = AutoEncoder(2, **{**FAST, "batch_size": 64, "callbacks": [pointer]})
    getattr(ae, fit)(X)
    assert pointer.ptr == X.ctypes.data  # the file's pages, not a copy
    assert pointer.dtype == torch.float32 if dtype == np.float32 else torch.float64
    # The same model as from the array in memory (batches cast to float32).
    in_memory = getattr(AutoEncoder(2, **{**FAST, "batch_size": 64}), fit)(np.array(X))
    np.testing.assert_allclose(ae.transform(X), in_memory.transform(np.array(X)), rtol=1e-5)

"""Saving and loading (skae._persistence): a fitted estimator's state is plain data, so
skops can load it without trusting torch, and a crafted file cannot run code that way."""

import io
import os
import pickle
import pickletools
import warnings

import joblib
import numpy as np
import pytest
import torch
from _settings import FAST, FAST_RNN, family_id
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from skae import (
    AnomalyDetector,
    AutoEncoder,
    DenoisingAutoEncoder,
    RecurrentAutoEncoder,
    SparseAutoEncoder,
    VariationalAutoEncoder,
)

sio = pytest.importorskip("skops.io", reason="needs the skops extra: pip install skae[skops]")

ESTIMATORS = [
    AutoEncoder(2, **FAST),
    DenoisingAutoEncoder(2, **FAST),
    SparseAutoEncoder(4, **FAST),
    VariationalAutoEncoder(2, **FAST),
    RecurrentAutoEncoder(2, **FAST_RNN),
    AnomalyDetector(AutoEncoder(2, **FAST)),
]


@pytest.fixture(scope="module")
def X():
    return np.random.RandomState(0).normal(size=(30, 5))


@pytest.fixture(scope="module", params=ESTIMATORS, ids=family_id)
def fitted(request, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clone(request.param).fit(X)


def pickled_globals(obj) -> set[str]:
    """The module of every class or function a pickle of ``obj`` refers to."""
    modules = set()
    strings = []
    for opcode, arg, _ in pickletools.genops(pickle.dumps(obj)):
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif opcode.name == "STACK_GLOBAL":
            modules.add(strings[-2])
        elif opcode.name == "GLOBAL":
            modules.add(arg.split(" ")[0])
    return modules


def test_pickled_state_holds_no_torch_or_skorch_object(fitted):
    modules = pickled_globals(fitted)
    assert not {m for m in modules if m.split(".")[0] in ("torch", "skorch")}, modules


def test_skops_round_trip_trusts_only_skae_classes(fitted, X):
    data = sio.dumps(fitted)
    untrusted = sio.get_untrusted_types(data=data)
    assert untrusted and all(name.startswith("skae.") for name in untrusted), untrusted
    loaded = sio.loads(data, trusted=untrusted)
    np.testing.assert_array_equal(loaded.score_samples(X), fitted.score_samples(X))
    if hasattr(fitted, "transform"):
        np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))


def test_pickle_and_joblib_round_trips_give_identical_outputs(fitted, X):
    buffer = io.BytesIO()
    joblib.dump(fitted, buffer)
    buffer.seek(0)
    for loaded in (pickle.loads(pickle.dumps(fitted)), joblib.load(buffer)):
        np.testing.assert_array_equal(loaded.score_samples(X), fitted.score_samples(X))


def test_loaded_model_keeps_its_history_and_can_warm_start(X):
    ae = AutoEncoder(2, **{**FAST, "warm_start": True}).fit(X)
    loaded = sio.loads(
        sio.dumps(ae), trusted=["skae.autoencoder.AutoEncoder", "skae.architectures.MLP"]
    )
    assert [row["train_loss"] for row in loaded.history_] == ae.loss_curve_
    loaded.fit(X)
    assert loaded.n_iter_ == 2 * FAST["max_iter"]


def test_model_saved_from_cuda_loads_on_the_cpu_by_every_route(X, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    ae = AutoEncoder(2, **FAST).fit(X)
    state = ae.__getstate__()
    state["_net_state"]["device"] = "cuda:0"  # as a model fitted on a GPU saves it
    monkeypatch.setattr(AutoEncoder, "__getstate__", lambda self: state)
    joblib_file = io.BytesIO()
    joblib.dump(ae, joblib_file)
    saved = [pickle.dumps(ae), sio.dumps(ae)]
    monkeypatch.undo()
    loaders = [
        lambda: pickle.loads(saved[0]),
        lambda: joblib.load(io.BytesIO(joblib_file.getvalue())),
        lambda: sio.loads(
            saved[1], trusted=["skae.autoencoder.AutoEncoder", "skae.architectures.MLP"]
        ),
    ]
    for load in loaders:
        with pytest.warns(UserWarning, match="no CUDA devices are available"):
            loaded = load()
        assert str(loaded.net_.device) == "cpu"
        np.testing.assert_array_equal(loaded.transform(X), ae.transform(X))


def test_clone_pickle_and_joblib_round_trips(X_120x6, fitted_autoencoder, tmp_path):
    expected = fitted_autoencoder.transform(X_120x6)
    unpickled = pickle.loads(pickle.dumps(fitted_autoencoder))
    np.testing.assert_array_equal(unpickled.transform(X_120x6), expected)
    np.testing.assert_array_equal(
        unpickled.score_samples(X_120x6), fitted_autoencoder.score_samples(X_120x6)
    )
    joblib.dump(fitted_autoencoder, tmp_path / "ae.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "ae.joblib").transform(X_120x6), expected)
    cloned = clone(fitted_autoencoder)
    assert cloned.get_params() == fitted_autoencoder.get_params()
    with pytest.raises(NotFittedError):
        cloned.transform(X_120x6)
    np.testing.assert_array_equal(cloned.fit(X_120x6).transform(X_120x6), expected)


def test_model_saved_on_cuda_loads_on_a_cpu_only_machine(X_120x6, fitted_autoencoder):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; test_fit_and_reload_on_cuda covers it")
    # Pretend the net trained on CUDA: on unpickling without CUDA, skorch must
    # map its tensors to the CPU and say so, and skae must then infer there.
    model = pickle.loads(pickle.dumps(fitted_autoencoder))
    model.net_.device = "cuda"
    buffer = io.BytesIO()
    pickle.dump(model, buffer)
    buffer.seek(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = pickle.load(buffer)
    assert any("no CUDA devices are available" in str(w.message) for w in caught)
    assert str(loaded.net_.device) == "cpu"
    np.testing.assert_array_equal(loaded.transform(X_120x6), fitted_autoencoder.transform(X_120x6))


# --------------------------------------------------------------- payloads


class Payload:
    """Unpickling this runs a shell command (here: it creates a file)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def crafted(ae, monkeypatch, where, payload):
    """Save ``ae`` with ``payload`` planted ``where`` in its state."""
    state = ae.__getstate__()
    if where == "weights":
        name = next(iter(state["_net_state"]["weights"]))
        state["_net_state"]["weights"][name] = payload
    elif where == "history":
        state["_net_state"]["history"][0]["train_loss"] = payload
    else:
        state["loss_curve_"] = payload
    monkeypatch.setattr(AutoEncoder, "__getstate__", lambda self: state)
    return sio.dumps(ae), pickle.dumps(ae)


@pytest.mark.parametrize("where", ["weights", "history", "loss_curve_"])
def test_safe_route_refuses_a_code_payload_without_running_it(where, X, tmp_path, monkeypatch):
    ae = AutoEncoder(2, **FAST).fit(X)
    marker = tmp_path / "payload-ran"
    skops_bytes, pickle_bytes = crafted(ae, monkeypatch, where, Payload(str(marker)))
    monkeypatch.undo()

    untrusted = sio.get_untrusted_types(data=skops_bytes)
    assert "test_persistence.Payload" in untrusted, untrusted
    # The safe route: trust skae's own classes only.
    with pytest.raises(Exception, match="[Uu]ntrusted"):
        sio.loads(skops_bytes, trusted=["skae.autoencoder.AutoEncoder", "skae.architectures.MLP"])
    assert not marker.exists()

    # What pickle does with the same state: it runs the command.
    try:
        pickle.loads(pickle_bytes)
    except Exception:
        pass  # the model is unusable, but the command has already run
    assert marker.exists()


def test_a_non_numeric_weight_is_refused_on_load(X, monkeypatch):
    ae = AutoEncoder(2, **FAST).fit(X)
    state = ae.__getstate__()
    name = next(iter(state["_net_state"]["weights"]))
    state["_net_state"]["weights"][name] = "not an array"
    loaded = AutoEncoder.__new__(AutoEncoder)
    with pytest.raises(TypeError, match="not a numeric array"):
        loaded.__setstate__(state)

"""Property-based tests (hypothesis) of every family's public methods.

The property, for any input: a finite result of the right shape, or a
``ValueError``/``TypeError`` (or, for a fit that diverges on extreme values, a
``FloatingPointError``) with a message; never another exception, never NaN
or inf from finite input, never a half-fitted estimator.

The default profile runs a few examples per test (CI). ``SKAE_FUZZ=1`` (``make
fuzz``) selects the ``fuzz`` profile, with ``SKAE_FUZZ_EXAMPLES`` examples
per test (default 300), and ``SKAE_FUZZ_REPORT=path.json`` writes the
outcomes by kind there.
"""

import copy
import json
import os
import warnings
from collections import Counter

import _settings
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback

from skae import (
    AnomalyDetector,
    AutoEncoder,
    DenoisingAutoEncoder,
    RecurrentAutoEncoder,
    SparseAutoEncoder,
    VariationalAutoEncoder,
)

pd = pytest.importorskip("pandas")

_COMMON = dict(deadline=None, suppress_health_check=list(HealthCheck), database=None)
settings.register_profile("ci", max_examples=12, derandomize=True, **_COMMON)
settings.register_profile(
    "fuzz", max_examples=int(os.environ.get("SKAE_FUZZ_EXAMPLES", "300")), **_COMMON
)
settings.load_profile("fuzz" if os.environ.get("SKAE_FUZZ") else "ci")

OUTCOMES: Counter = Counter()
N_FEATURES = 4
FAST = {**_settings.FAST, "hidden_layer_sizes": (6,), "max_iter": 2}
FAST_RNN = {**_settings.FAST_RNN, "max_iter": 2}
FAMILIES = {
    "AutoEncoder": AutoEncoder(2, **FAST),
    "DenoisingAutoEncoder": DenoisingAutoEncoder(2, **FAST),
    "SparseAutoEncoder": SparseAutoEncoder(3, **FAST),
    "VariationalAutoEncoder": VariationalAutoEncoder(2, **FAST),
    "RecurrentAutoEncoder": RecurrentAutoEncoder(2, **FAST_RNN),
    "AnomalyDetector": AnomalyDetector(AutoEncoder(2, **FAST)),
}
# Inference methods taking X (of the training shape) and returning one row per sample.
METHODS = {
    "AutoEncoder": ["transform", "score_samples", "score"],
    "DenoisingAutoEncoder": ["transform", "score_samples", "denoise"],
    "SparseAutoEncoder": ["transform", "score_samples"],
    "VariationalAutoEncoder": ["transform", "score_samples", "posterior"],
    "RecurrentAutoEncoder": ["transform", "score_samples", "timestep_errors"],
    "AnomalyDetector": ["predict", "decision_function", "score_samples"],
}


MEMMAP = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"skae-fuzz-{os.getpid()}.dat")


@pytest.fixture(scope="session", autouse=True)
def _report_outcomes():
    yield
    if os.path.exists(MEMMAP):
        os.remove(MEMMAP)
    path = os.environ.get("SKAE_FUZZ_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump(dict(sorted(OUTCOMES.items())), f, indent=1)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="module")
def fitted():
    X = np.random.RandomState(0).normal(size=(30, N_FEATURES))
    return {name: clone(est).fit(X) for name, est in FAMILIES.items()}


# ------------------------------------------------------------ inputs

DTYPES = ["float16", "float32", "float64", "int8", "int64", "uint8", "bool", "complex128"]
SPECIALS = [np.nan, np.inf, -np.inf, 1e30, -1e30, 1e39, 1e-300, 5e-324, 0.0, -0.0]


@st.composite
def inputs(draw, n_features=N_FEATURES):
    """(X, description): X in one of many forms; description names the form."""
    # Weighted towards valid input, so that both outcomes are explored.
    rank = draw(st.sampled_from([2] * 6 + [1, 3]))
    n_rows = draw(st.sampled_from([0, 1, 2, 7, 7]))
    n_cols = draw(st.sampled_from([n_features] * 5 + [0, 1, n_features + 2]))
    shape = {1: (n_rows,), 2: (n_rows, n_cols), 3: (n_rows, 3, n_cols)}[rank]
    dtype = draw(st.sampled_from(DTYPES))
    scale = draw(st.sampled_from([1.0, 1.0, 1e-30, 1e6, 1e20]))
    seed = draw(st.integers(0, 2**16))
    X = np.random.RandomState(seed).normal(size=shape) * scale
    n_special = draw(st.sampled_from([0] * 5 + [1, 2]))
    for _ in range(n_special if X.size else 0):
        X.flat[draw(st.integers(0, X.size - 1))] = draw(st.sampled_from(SPECIALS))
    with np.errstate(all="ignore"):
        X = X.astype(dtype) if dtype != "bool" else X > 0
    layout = draw(
        st.sampled_from(
            ["C", "F", "reversed", "readonly", "memmap", "pandas", "list", "object", "sparse"]
        )
    )
    if layout == "F":
        X = np.asfortranarray(X)
    elif layout == "reversed":
        X = X[::-1, ::-1] if X.ndim >= 2 else X[::-1]
    elif layout == "readonly":
        X = X.copy()
        X.setflags(write=False)
    elif layout == "memmap":
        path = MEMMAP
        mm = np.memmap(path, dtype=X.dtype, mode="w+", shape=X.shape or (1,))
        if X.size:
            mm[...] = X
        X = np.memmap(path, dtype=X.dtype, mode="r", shape=X.shape) if X.size else X
    elif layout == "pandas" and X.ndim == 2:
        names = draw(
            st.sampled_from(
                [
                    [f"f{i}" for i in range(X.shape[1])],
                    list(range(X.shape[1])),
                    [f"ü {i}\n" for i in range(X.shape[1])],
                    [str(i) if i % 2 else i for i in range(X.shape[1])],
                ]
            )
        )
        X = pd.DataFrame(X, columns=names)
    elif layout == "list":
        X = X.tolist()
    elif layout == "object":
        X = X.astype(object)
        if X.size and draw(st.booleans()):
            X.flat[0] = "text"
    elif layout == "sparse" and X.ndim == 2 and dtype not in ("complex128", "float16"):
        X = sp.csr_matrix(X)
    return X, f"{layout}/{dtype}/rank{rank}/{shape}"


def is_finite_numeric(X) -> bool:
    """Whether X holds only finite real numbers (the inputs that must give finite output)."""
    if sp.issparse(X):
        X = X.toarray()
    try:
        a = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    kind = np.asarray(X).dtype.kind if not isinstance(X, list) else "f"
    return kind != "c" and bool(np.isfinite(a).all())


def record(where: str, outcome: str) -> None:
    OUTCOMES[f"{where}: {outcome}"] += 1
    OUTCOMES[f"total: {outcome}"] += 1


def check_error(exc: BaseException, allowed=(ValueError, TypeError)) -> str:
    """The outcome name of an exception the property allows; fail on any other."""
    if not isinstance(exc, allowed):
        raise AssertionError(f"unexpected {type(exc).__name__}: {exc}") from exc
    assert str(exc).strip(), "an error with no message"
    return type(exc).__name__


def assert_finite_rows(out, n_rows: int) -> None:
    arrays = out if isinstance(out, tuple) else (out,)
    for a in arrays:
        if isinstance(a, list):  # timestep_errors of list input
            assert len(a) == n_rows and all(np.isfinite(x).all() for x in a)
            continue
        a = np.asarray(a)
        assert a.ndim == 0 or a.shape[0] == n_rows, (a.shape, n_rows)
        assert np.isfinite(a).all(), "non-finite output from finite input"


def n_rows_of(X) -> int:
    return X.shape[0] if hasattr(X, "shape") else len(X)


def weights(est):
    inner = getattr(est, "estimator_", est)
    return [p.detach().clone() for p in inner.module_.state_dict().values()]


# ------------------------------------------------------------ properties


@pytest.mark.parametrize("name", list(METHODS))
@given(data=inputs())
def test_inference_methods_give_finite_rows_or_a_clear_error(fitted, name, data):
    X, _ = data
    model = fitted[name]
    before = weights(model)
    for method in METHODS[name]:
        try:
            out = getattr(model, method)(X)
        except Exception as exc:
            record(f"{name}.{method}", check_error(exc))
            continue
        record(f"{name}.{method}", "ok")
        if is_finite_numeric(X):
            assert_finite_rows(out, n_rows_of(X) if method != "score" else 0)
    for a, b in zip(weights(model), before, strict=True):
        assert torch.equal(a, b), "inference changed the weights"


@pytest.mark.parametrize("name", list(METHODS))
@given(data=inputs())
def test_fit_gives_a_usable_model_or_leaves_the_estimator_unfitted(name, data):
    X, _ = data
    est = clone(FAMILIES[name])
    try:
        est.fit(X)
    except Exception as exc:
        allowed = (ValueError, TypeError, FloatingPointError)
        record(f"{name}.fit", check_error(exc, allowed))
        if isinstance(exc, FloatingPointError):
            assert "diverged" in str(exc)
        with pytest.raises(NotFittedError):
            check_is_fitted(est)
        return
    record(f"{name}.fit", "ok")
    if is_finite_numeric(X):
        out = est.score_samples(X)
        assert_finite_rows(out, n_rows_of(X))


@pytest.mark.parametrize("name", [n for n in METHODS if n != "AnomalyDetector"])
@given(
    codes=st.one_of(
        st.builds(
            lambda rows, cols, scale, seed: (
                np.random.RandomState(seed).normal(size=(rows, cols)) * scale
            ),
            st.sampled_from([0, 1, 5, 5]),
            st.sampled_from([2, 2, 3, 3, 1, 4]),
            st.sampled_from([1.0, 1.0, 1e10, 1e30, 1e39]),
            st.integers(0, 1000),
        ),
        st.sampled_from([np.zeros(2), np.full((2, 2), np.nan), np.zeros((2, 2), dtype=complex)]),
    ),
    reverse=st.booleans(),
)
def test_inverse_transform_gives_finite_rows_or_a_clear_error(fitted, name, codes, reverse):
    model = fitted[name]
    codes = codes[::-1] if reverse else codes
    try:
        out = model.inverse_transform(codes)
    except Exception as exc:
        record(f"{name}.inverse_transform", check_error(exc))
        return
    record(f"{name}.inverse_transform", "ok")
    assert_finite_rows(out, len(codes))


class Fault(Callback):
    """Raises ``exc`` at batch ``batch`` of epoch ``epoch``."""

    def __init__(self, exc=None, epoch=1, batch=1):
        self.exc = exc
        self.epoch = epoch
        self.batch = batch

    def on_batch_end(self, net, **kwargs):
        self.seen_ = getattr(self, "seen_", 0) + 1
        if len(net.history) == self.epoch and self.seen_ % 3 == self.batch % 3:
            raise self.exc


@pytest.mark.parametrize("name", [n for n in METHODS if n != "AnomalyDetector"])
@given(
    kind=st.sampled_from(["KeyboardInterrupt", "RuntimeError", "FloatingPointError"]),
    epoch=st.integers(1, 4),
    batch=st.integers(1, 3),
    warm=st.booleans(),
)
def test_a_fault_in_training_leaves_the_model_fitted_or_as_before(name, kind, epoch, batch, warm):
    X = np.random.RandomState(epoch).normal(size=(24, N_FEATURES))
    base = clone(FAMILIES[name]).set_params(max_iter=4, batch_size=8)
    if warm:
        base.fit(X)
    est = copy.deepcopy(base)
    before = weights(est) if warm else None
    exc = {"KeyboardInterrupt": KeyboardInterrupt(), "RuntimeError": RuntimeError("fault")}.get(
        kind, FloatingPointError("fault")
    )
    est.set_params(warm_start=warm, callbacks=[Fault(exc, epoch, batch)])
    try:
        est.fit(X)
    except (KeyboardInterrupt, RuntimeError, FloatingPointError):
        record("faults", f"{kind}: as before")
        if warm:
            for a, b in zip(weights(est), before, strict=True):
                assert torch.equal(a, b), "a failed fit changed the weights"
            assert est.n_iter_ == base.n_iter_
        else:
            with pytest.raises(NotFittedError):
                check_is_fitted(est)
        return
    # Survived: only a Ctrl-C after a complete epoch keeps the model.
    assert kind == "KeyboardInterrupt"
    record("faults", f"{kind}: kept, fitted")
    assert len(est.history_) == est.n_iter_ - (base.n_iter_ if warm else 0) >= 1
    assert np.isfinite(est.score_samples(X)).all()

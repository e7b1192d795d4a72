"""ONNX export: the exported graphs agree with the estimators, at any batch size."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from skae import (
    AnomalyDetector,
    AutoEncoder,
    DenoisingAutoEncoder,
    RecurrentAutoEncoder,
    SparseAutoEncoder,
    VariationalAutoEncoder,
    to_onnx,
)

ort = pytest.importorskip("onnxruntime", reason="needs the onnx extra: pip install skae[onnx]")
pytest.importorskip("onnx", reason="needs the onnx extra: pip install skae[onnx]")

FAST = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0, device="cpu")
FAST_RNN = dict(hidden_size=6, max_iter=5, random_state=0, device="cpu")
TABLES = [
    AutoEncoder(3, **FAST),
    DenoisingAutoEncoder(3, **FAST),
    SparseAutoEncoder(4, **FAST),
    SparseAutoEncoder(4, sparsity="topk", k=2, **FAST),
    VariationalAutoEncoder(2, **FAST),
    VariationalAutoEncoder(2, likelihood="bernoulli", **FAST),
]


def fit(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clone(est).fit(X)


def run(model, X):
    session = ort.InferenceSession(model.SerializeToString())
    return session.run(None, {"X": np.asarray(X, dtype=np.float32)})[0]


@pytest.fixture(scope="module")
def X():
    return np.random.RandomState(0).uniform(size=(40, 6))


@pytest.mark.parametrize("est", TABLES, ids=lambda e: f"{type(e).__name__}-{e.get_params()}"[:60])
@pytest.mark.parametrize("method", ["transform", "inverse_transform", "score_samples"])
def test_exported_table_methods_match_the_estimator(est, method, X):
    model = fit(est, X)
    if method == "score_samples" and isinstance(model, VariationalAutoEncoder):
        with pytest.raises(ValueError, match="random latent samples"):
            to_onnx(model, method)
        return
    graph = to_onnx(model, method)
    inputs = model.transform(X) if method == "inverse_transform" else X
    for rows in (1, 7, len(X)):  # the batch dimension is dynamic
        expected = getattr(model, method)(inputs[:rows])
        np.testing.assert_allclose(run(graph, inputs[:rows]), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(20, 9), (20, 9, 2)])
@pytest.mark.parametrize("method", ["transform", "inverse_transform", "score_samples"])
def test_exported_recurrent_methods_match_the_estimator(shape, method):
    X = np.random.RandomState(0).normal(size=shape)
    model = fit(RecurrentAutoEncoder(2, **FAST_RNN), X)
    graph = to_onnx(model, method)
    inputs = model.transform(X) if method == "inverse_transform" else X
    np.testing.assert_allclose(
        run(graph, inputs[:5]), getattr(model, method)(inputs[:5]), rtol=1e-4, atol=1e-5
    )
    if method == "transform" and len(shape) == 3:  # the time dimension is dynamic too
        shorter = X[:3, :5]
        np.testing.assert_allclose(run(graph, shorter), model.transform(shorter), atol=1e-5)


def test_export_writes_a_file_that_onnx_checks(X, tmp_path):
    import onnx

    path = tmp_path / "ae.onnx"
    to_onnx(fit(AutoEncoder(3, **FAST), X), "score_samples", path)
    onnx.checker.check_model(onnx.load(path))


def test_export_rejects_what_it_cannot_export(X):
    with pytest.raises(TypeError, match="export its estimator_"):
        to_onnx(fit(AnomalyDetector(AutoEncoder(2, **FAST)), X))
    with pytest.raises(ValueError, match="method must be one of"):
        to_onnx(fit(AutoEncoder(2, **FAST), X), "predict")
    seqs = [np.zeros((4, 1)), np.zeros((6, 1))]
    with pytest.raises(ValueError, match="different lengths"):
        to_onnx(fit(RecurrentAutoEncoder(2, **FAST_RNN), seqs), "inverse_transform")

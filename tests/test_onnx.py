"""ONNX export: the exported graphs agree with the estimators, at any batch size."""

import functools
import warnings

import _settings
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from skae import (
    AnomalyDetector,
    AutoEncoder,
    AutoEncoderEnsemble,
    DenoisingAutoEncoder,
    RecurrentAutoEncoder,
    SparseAutoEncoder,
    VariationalAutoEncoder,
    to_onnx,
)
from skae.architectures import Convolutional1D, Convolutional2D, Recurrent

ort = pytest.importorskip("onnxruntime", reason="needs the onnx extra: pip install skae[onnx]")
pytest.importorskip("onnx", reason="needs the onnx extra: pip install skae[onnx]")

FAST = {**_settings.FAST, "max_iter": 5}
FAST_RNN = {**_settings.FAST_RNN, "hidden_size": 6, "max_iter": 5}
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
@pytest.mark.parametrize(
    "method", ["transform", "inverse_transform", "score_samples", "feature_errors"]
)
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
@pytest.mark.parametrize(
    "method",
    ["transform", "inverse_transform", "score_samples", "feature_errors", "timestep_errors"],
)
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
    with pytest.raises(TypeError, match="wraps PCA"):
        to_onnx(fit(AnomalyDetector(PCA(2)), X), "score_samples")
    with pytest.raises(ValueError, match="random latent samples"):
        to_onnx(fit(AnomalyDetector(VariationalAutoEncoder(2, **FAST)), X), "predict")
    with pytest.raises(ValueError, match="method must be one of"):
        to_onnx(fit(AutoEncoder(2, **FAST), X), "predict")
    with pytest.raises(ValueError, match="method must be one of"):
        to_onnx(fit(AnomalyDetector(AutoEncoder(2, **FAST)), X), "transform")
    with pytest.raises(ValueError, match="method must be one of"):
        to_onnx(fit(AutoEncoderEnsemble(n_estimators=2, max_iter=2, device="cpu"), X), "predict")
    with pytest.raises(ValueError, match="sequence architectures only"):
        to_onnx(fit(AutoEncoder(2, **FAST), X), "timestep_errors")
    with pytest.raises(TypeError, match="got PCA"):
        to_onnx(fit(PCA(2), X), "transform")
    seqs = [np.zeros((4, 1)), np.zeros((6, 1))]
    with pytest.raises(ValueError, match="different lengths"):
        to_onnx(fit(RecurrentAutoEncoder(2, **FAST_RNN), seqs), "inverse_transform")


# ------------------------------------------------ every family on every architecture

FAMILIES = {
    "AutoEncoder": lambda arch: AutoEncoder(2, architecture=arch, **FAST_ARCH),
    "Denoising": lambda arch: DenoisingAutoEncoder(2, architecture=arch, **FAST_ARCH),
    "SparseTopk": lambda arch: SparseAutoEncoder(
        3, sparsity="topk", k=2, architecture=arch, **FAST_ARCH
    ),
    "Variational": lambda arch: VariationalAutoEncoder(2, architecture=arch, **FAST_ARCH),
}
FAST_ARCH = dict(max_iter=2, batch_size=8, random_state=0, device="cpu")
_rng = np.random.RandomState(1)
ARCHITECTURES = {  # (architecture, training input)
    "conv2d-flat": (lambda: Convolutional2D((6, 6), channels=(4,)), _rng.uniform(size=(12, 36))),
    "conv2d-images": (lambda: Convolutional2D(channels=(4, 4)), _rng.uniform(size=(12, 2, 8, 8))),
    "conv1d-signals": (lambda: Convolutional1D(channels=(4,)), _rng.uniform(size=(12, 15))),
    "recurrent": (lambda: Recurrent(hidden_size=5), _rng.normal(size=(12, 7, 2))),
}
METHODS = ["transform", "inverse_transform", "score_samples", "feature_errors", "timestep_errors"]


@functools.cache
def fitted_on(family, architecture):
    make_arch, X = ARCHITECTURES[architecture]
    return fit(FAMILIES[family](make_arch()), X), X


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", METHODS)
def test_every_deterministic_method_of_every_family_and_architecture_exports(
    family, architecture, method
):
    model, X = fitted_on(family, architecture)
    sequential = architecture == "recurrent"
    random = method == "score_samples" and family == "Variational"
    if random or (method == "timestep_errors" and not sequential):
        with pytest.raises(ValueError, match="random latent samples|sequence architectures only"):
            to_onnx(model, method)
        return
    graph = to_onnx(model, method)
    inputs = model.transform(X) if method == "inverse_transform" else X
    for rows in (1, 5):
        expected = getattr(model, method)(inputs[:rows])
        got = run(graph, inputs[:rows])
        assert got.shape == np.shape(expected)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


# ------------------------------------------------ the ensemble and the detector


def close_in_float32(got, expected):
    """Scores of float32 graphs: agreement to about 1e-4 of the scores' scale."""
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale)


@pytest.fixture(scope="module")
def outliers():
    rng = np.random.RandomState(3)
    X = rng.normal(size=(200, 2)) @ rng.normal(size=(2, 6)) + 0.1 * rng.normal(size=(200, 6))
    X_new = np.vstack([X[:20], rng.uniform(-6, 6, size=(10, 6))])
    return X.astype(np.float32), X_new.astype(np.float32)


@pytest.mark.parametrize("code_density", [False, True])
def test_exported_ensemble_score_matches(code_density, outliers):
    X, X_new = outliers
    ensemble = AutoEncoderEnsemble(
        n_estimators=5, max_iter=20, code_density=code_density, random_state=0, device="cpu"
    ).fit(X)
    graph = to_onnx(ensemble, "score_samples")
    for rows in (1, len(X_new)):
        close_in_float32(run(graph, X_new[:rows]), ensemble.score_samples(X_new[:rows]))


DETECTORS = {
    "default": lambda: AnomalyDetector(random_state=0),
    "autoencoder": lambda: AnomalyDetector(AutoEncoder(3, **FAST), random_state=0),
    "sparse-topk": lambda: AnomalyDetector(SparseAutoEncoder(4, sparsity="topk", k=2, **FAST)),
}


@pytest.fixture(scope="module", params=DETECTORS, ids=DETECTORS)
def detector(request, outliers):
    return fit(DETECTORS[request.param](), outliers[0])


@pytest.mark.parametrize("method", ["score_samples", "decision_function", "predict"])
def test_exported_detector_methods_match(detector, method, outliers):
    X_new = outliers[1]
    got = run(to_onnx(detector, method), X_new)
    expected = getattr(detector, method)(X_new)
    if method != "predict":
        close_in_float32(got, expected)
        return
    assert got.dtype == np.int64
    assert set(np.unique(got)) <= {-1, 1}
    decision = detector.decision_function(X_new)
    clear = np.abs(decision) > 1e-4 * max(1.0, np.abs(detector.score_samples(X_new)).max())
    np.testing.assert_array_equal(got[clear], expected[clear])
    assert (expected[-10:] == -1).sum() >= 5  # the planted outliers are found


def test_exported_detector_on_sequences_matches():
    X = np.random.RandomState(0).normal(size=(20, 9, 2))
    detector = fit(AnomalyDetector(RecurrentAutoEncoder(2, **FAST_RNN)), X)
    graph = to_onnx(detector, "decision_function")
    close_in_float32(run(graph, X[:5]), detector.decision_function(X[:5]))

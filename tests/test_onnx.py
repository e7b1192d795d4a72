"""ONNX export: the exported graphs agree with the estimators, at any batch size.

Also whole pipelines holding skae estimators, converted by skl2onnx with skae's converters.
"""

import functools
import sys
import warnings

import _settings
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline, make_union
from sklearn.preprocessing import StandardScaler

from skae import (
    AnomalyDetector,
    AutoEncoder,
    AutoEncoderEnsemble,
    DenoisingAutoEncoder,
    RecurrentAutoEncoder,
    SparseAutoEncoder,
    VariationalAutoEncoder,
    register_skl2onnx_converters,
    to_onnx,
)
from skae.architectures import Convolutional1D, Convolutional2D, PooledSequence, Recurrent

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
    "pooled": (
        lambda: PooledSequence(channels=(4, 4), hidden_size=5),
        _rng.normal(size=(12, 7, 2)),
    ),
}
SEQUENCE_ARCHITECTURES = {"recurrent", "pooled"}
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
    sequential = architecture in SEQUENCE_ARCHITECTURES
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


# ------------------------------------------------ whole pipelines with skl2onnx


@pytest.fixture(scope="module")
def skl2onnx():
    module = pytest.importorskip("skl2onnx", reason="needs the onnx extra: pip install skae[onnx]")
    register_skl2onnx_converters()
    return module


def run_all(model, X):
    session = ort.InferenceSession(model.SerializeToString())
    return session.run(None, {session.get_inputs()[0].name: X})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scaler_autoencoder_classifier_pipeline_converts_to_one_graph(skl2onnx, dtype):
    import onnx

    rng = np.random.RandomState(0)
    X = (rng.normal(size=(150, 6)) * [1, 10, 100, 1, 1, 1] + 5).astype(dtype)
    y = (X[:, 0] - 5 + (X[:, 1] - 5) / 10 > 0).astype(int)
    pipe = make_pipeline(
        StandardScaler(), AutoEncoder(3, **{**FAST, "max_iter": 20}), LogisticRegression()
    ).fit(X, y)
    model = skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False})
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["X"]
    for rows in (1, len(X)):  # the batch dimension stays dynamic
        labels, probabilities = run_all(model, X[:rows])
        expected = pipe.predict_proba(X[:rows])
        np.testing.assert_allclose(probabilities, expected, atol=1e-4)
        clear = np.abs(expected[:, 1] - 0.5) > 1e-3
        np.testing.assert_array_equal(labels[clear], pipe.predict(X[:rows])[clear])


@pytest.mark.parametrize("inner", ["default", "autoencoder"])
def test_scaler_detector_pipeline_converts_like_isolation_forest(skl2onnx, inner, outliers):
    from sklearn.ensemble import IsolationForest

    X, X_new = outliers
    estimator = None if inner == "default" else AutoEncoder(3, **{**FAST, "max_iter": 20})
    pipe = make_pipeline(StandardScaler(), AnomalyDetector(estimator, random_state=0)).fit(X)
    options = {AnomalyDetector: {"score_samples": True}}
    model = skl2onnx.to_onnx(pipe, X[:1], options=options)
    label, scores, score_samples = run_all(model, X_new)

    # The outputs skl2onnx gives scikit-learn's IsolationForest, in the same place.
    forest = make_pipeline(StandardScaler(), IsolationForest(n_estimators=3, random_state=0))
    reference = skl2onnx.to_onnx(
        forest.fit(X),
        X[:1],
        options={IsolationForest: options[AnomalyDetector]},
        target_opset={"": 18, "ai.onnx.ml": 3},  # skl2onnx 1.20's forest stops at ml opset 3
    )
    assert [o.name for o in model.graph.output] == [o.name for o in reference.graph.output]
    for got, expected in zip(run_all(model, X_new), run_all(reference, X_new), strict=True):
        assert got.dtype == expected.dtype and got.shape == expected.shape

    decision = pipe.decision_function(X_new)
    close_in_float32(scores[:, 0], decision)
    close_in_float32(score_samples[:, 0], pipe.score_samples(X_new))
    clear = np.abs(decision) > 1e-4 * max(1.0, np.abs(pipe.score_samples(X_new)).max())
    np.testing.assert_array_equal(label[clear, 0], pipe.predict(X_new)[clear])
    assert (label[-10:, 0] == -1).sum() >= 5  # the planted outliers are found

    # Without the option: label and scores only.
    assert len(run_all(skl2onnx.to_onnx(pipe, X[:1]), X_new)) == 2


CONVERTED = {  # (estimator, training input), each converting its transform
    "denoising": (DenoisingAutoEncoder(3, **FAST), (40, 6)),
    "sparse-topk": (SparseAutoEncoder(4, sparsity="topk", k=2, **FAST), (40, 6)),
    "variational": (VariationalAutoEncoder(2, **FAST), (40, 6)),
    "conv1d": (AutoEncoder(2, architecture=Convolutional1D(channels=(4,)), **FAST_ARCH), (12, 15)),
    "lstm-2d": (RecurrentAutoEncoder(2, **FAST_RNN), (20, 9)),
    "pooled-3d": (
        AutoEncoder(2, architecture=PooledSequence(channels=(4,), hidden_size=4), **FAST_ARCH),
        (20, 7, 3),
    ),
    "gru-bidirectional-3d": (
        RecurrentAutoEncoder(2, cell="gru", bidirectional=True, num_layers=2, **FAST_RNN),
        (20, 7, 3),
    ),
}


@pytest.mark.parametrize("name", CONVERTED)
def test_every_family_converts_its_transform(skl2onnx, name):
    est, shape = CONVERTED[name]
    X = np.random.RandomState(0).normal(size=shape).astype(np.float32)
    model = fit(est, X)
    (got,) = run_all(skl2onnx.to_onnx(model, X[:1]), X[:5])
    np.testing.assert_allclose(got, model.transform(X[:5]), rtol=1e-4, atol=1e-5)


def test_ensemble_and_two_autoencoders_in_one_graph_get_their_own_names(skl2onnx, outliers):
    # Two graphs that to_onnx exports with the same internal names, side by side.
    X, X_new = outliers
    union = make_union(AutoEncoder(2, **FAST), AutoEncoder(3, **{**FAST, "random_state": 1}))
    union.fit(X)
    (got,) = run_all(skl2onnx.to_onnx(union, X[:1]), X_new)
    np.testing.assert_allclose(got, union.transform(X_new), rtol=1e-4, atol=1e-5)

    ensemble = AutoEncoderEnsemble(n_estimators=4, max_iter=10, random_state=0, device="cpu")
    ensemble.fit(X)
    (got,) = run_all(skl2onnx.to_onnx(ensemble, X[:1]), X_new)
    assert got.shape == (len(X_new), 1)
    close_in_float32(got[:, 0], ensemble.score_samples(X_new))


def test_converters_refuse_what_they_cannot_convert(skl2onnx, X):
    X = X.astype(np.float32)
    with pytest.raises(NotFittedError):
        skl2onnx.to_onnx(AutoEncoder(2), X[:1])
    with pytest.raises(NotFittedError):
        skl2onnx.to_onnx(AnomalyDetector(), X[:1])
    with pytest.raises(ValueError, match="random latent samples"):
        skl2onnx.to_onnx(fit(AnomalyDetector(VariationalAutoEncoder(2, **FAST)), X), X[:1])
    with pytest.raises(TypeError, match="wraps PCA"):
        skl2onnx.to_onnx(fit(AnomalyDetector(PCA(2)), X), X[:1])
    ae = fit(AutoEncoder(2, **FAST), X)
    with pytest.raises(ValueError, match="has 4 features, but it was fitted on 6"):
        skl2onnx.to_onnx(ae, X[:1, :4])
    with pytest.raises(TypeError, match="float32 or float64 input"):
        skl2onnx.to_onnx(ae, X[:1].astype(np.int64))


def test_registration_without_skl2onnx_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install skae\[onnx\]"):
        register_skl2onnx_converters()

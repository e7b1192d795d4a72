"""Reading inputs (skae._inputs): the forms X comes in (pandas, sparse matrices and arrays,
lists of sequences), bad input refused before anything is fitted, outputs in the input's form."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from _settings import FAST, FAST_16, FAST_BATCHES, FAST_RNN
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted

from skae import (
    AnomalyDetector,
    AutoEncoder,
    AutoEncoderEnsemble,
    DenoisingAutoEncoder,
    RecurrentAutoEncoder,
    VariationalAutoEncoder,
)
from skae.architectures import Convolutional2D


@pytest.fixture(scope="module")
def X(X_120x6):
    return X_120x6


@pytest.fixture(scope="module")
def fitted(fitted_autoencoder):
    return fitted_autoencoder


# ---------------------------------------------------------------------------- bad input


BAD_INPUTS = {
    "nan": (np.array([[0.0, np.nan], [1.0, 2.0]]), ValueError, "NaN"),
    "inf": (np.array([[0.0, np.inf], [1.0, 2.0]]), ValueError, "infinity"),
    "1-D": (np.arange(5.0), ValueError, "Expected 2D array"),
    "3-D": (np.zeros((4, 2, 2)), ValueError, "Found array with dim 3"),
    "empty": (np.zeros((0, 3)), ValueError, "0 sample"),
    "strings": (np.array([["a", "b"], ["c", "d"]], dtype=object), ValueError, "could not convert"),
    "complex": (np.array([[1 + 1j, 2], [3, 4]]), ValueError, "Complex data not supported"),
    "sparse-nan": (sp.csr_matrix(np.array([[0.0, np.nan], [1.0, 2.0]])), ValueError, "NaN"),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_fit_rejects_bad_input_and_stays_unfitted(name):
    X_bad, error, message = BAD_INPUTS[name]
    ae = AutoEncoder(n_components=2, **FAST_16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        with pytest.raises(error, match=message):
            ae.fit(X_bad)
    with pytest.raises(NotFittedError):
        check_is_fitted(ae)


@pytest.mark.parametrize("name", ["nan", "inf", "1-D", "3-D", "empty", "sparse-nan"])
def test_transform_and_score_reject_bad_input(fitted, name):
    X_bad, error, message = BAD_INPUTS[name]
    for method in (fitted.transform, fitted.score_samples):
        with pytest.raises(error, match=message):
            method(X_bad)


def test_transform_rejects_wrong_feature_count(X, fitted):
    with pytest.raises(ValueError, match="X has 4 features, but AutoEncoder is expecting 6"):
        fitted.transform(X[:, :4])


def test_inverse_transform_rejects_wrong_code_width(fitted):
    with pytest.raises(ValueError, match="decodes codes of n_components=3"):
        fitted.inverse_transform(np.zeros((2, 5)))


def test_anomaly_detector_rejects_values_beyond_float32_range(X_40x5):
    detector = AnomalyDetector(AutoEncoder(2, **FAST)).fit(X_40x5)
    with pytest.raises(ValueError, match="beyond float32's range"):
        detector.predict(np.full((2, 5), 1e39))


# ------------------------------------------------------------------------------- pandas


def test_pandas_in_and_pandas_out(X, fitted):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        X, columns=[f"f{i}" for i in range(X.shape[1])], index=np.arange(len(X)) + 7
    )
    ae = AutoEncoder(n_components=3, **FAST_16).set_output(transform="pandas").fit(frame)
    out = ae.transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["autoencoder0", "autoencoder1", "autoencoder2"]
    assert list(out.index) == list(frame.index)
    assert list(ae.feature_names_in_) == list(frame.columns)
    np.testing.assert_array_equal(out.to_numpy(), fitted.transform(X))


# ------------------------------------------------------------------------------- polars


@pytest.fixture(scope="module")
def polars_frame(X):
    pl = pytest.importorskip("polars")
    return pl.DataFrame(X, schema=[f"f{i}" for i in range(X.shape[1])])


def test_polars_in_and_polars_out(X, fitted, polars_frame):
    import polars as pl

    ae = AutoEncoder(n_components=3, **FAST_16).set_output(transform="polars")
    codes = ae.fit_transform(polars_frame)
    assert isinstance(codes, pl.DataFrame)
    assert codes.columns == ["autoencoder0", "autoencoder1", "autoencoder2"]
    assert list(ae.feature_names_in_) == polars_frame.columns
    out = ae.transform(polars_frame)
    assert isinstance(out, pl.DataFrame) and out.columns == codes.columns
    # The same model as from the NumPy array: only the container differs.
    np.testing.assert_array_equal(out.to_numpy(), fitted.transform(X))
    # NumPy in, polars out as well: set_output decides the container (and
    # scikit-learn warns that the array has no feature names).
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        assert isinstance(ae.transform(X), pl.DataFrame)


def test_polars_output_of_a_pipeline(X, polars_frame):
    import polars as pl
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(StandardScaler(), VariationalAutoEncoder(n_components=2, **FAST))
    out = pipe.set_output(transform="polars").fit_transform(polars_frame)
    assert isinstance(out, pl.DataFrame)
    assert out.columns == ["variationalautoencoder0", "variationalautoencoder1"]
    assert out.height == len(X)
    # The scaler passed its polars columns on: the autoencoder knows their names.
    assert list(pipe[-1].feature_names_in_) == polars_frame.columns
    assert pipe.transform(polars_frame).columns == out.columns


# ------------------------------------------------------------------------- sparse input


@pytest.mark.parametrize(
    "convert",
    [sp.csc_matrix, sp.csr_array, sp.csc_array, sp.coo_matrix],
    ids=["csc_matrix", "csr_array", "csc_array", "coo_matrix"],
)
def test_other_sparse_formats_give_the_csr_model(convert, X_sparse):
    ae = AutoEncoder(n_components=3, **FAST_BATCHES)
    reference = clone(ae).fit(X_sparse).transform(X_sparse)
    codes = clone(ae).fit(convert(X_sparse)).transform(convert(X_sparse))
    np.testing.assert_allclose(codes, reference, atol=1e-6)


def test_float32_sparse_input_gives_float32_codes(X_sparse):
    X32 = X_sparse.astype(np.float32)
    assert AutoEncoder(n_components=3, **FAST_BATCHES).fit(X32).transform(X32).dtype == np.float32


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_sparse_input_with_non_finite_values_is_rejected(bad):
    X = sp.csr_matrix(np.array([[0.0, bad], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="NaN|infinity"):
        AutoEncoder(n_components=1, **FAST_BATCHES).fit(X)


def test_bernoulli_range_is_checked_on_sparse_values(X_sparse):
    vae = VariationalAutoEncoder(n_components=2, likelihood="bernoulli", **FAST_BATCHES)
    X = X_sparse.copy()
    X.data[0] = 1.5
    with pytest.raises(ValueError, match=r"needs X in \[0, 1\], got values in \[0, 1.5\]"):
        vae.fit(X)
    X.data[0] = -0.5
    with pytest.raises(ValueError, match=r"got values in \[-0.5, "):
        vae.fit(X)


def test_recurrent_rejects_sparse_input_clearly(X_sparse):
    rae = RecurrentAutoEncoder(n_components=2, hidden_size=4, max_iter=1, device="cpu")
    assert not get_tags(rae).input_tags.sparse
    with pytest.raises(TypeError, match="does not accept sparse input"):
        rae.fit(X_sparse)
    with pytest.raises(TypeError, match="does not accept sparse input"):
        rae.fit([X_sparse[:5], X_sparse[5:12]])
    fitted = clone(rae).fit(X_sparse.toarray())
    with pytest.raises(TypeError, match="does not accept sparse input"):
        fitted.transform(X_sparse)


# ---------------------------------------------------------------------------- sequences


def test_recurrent_takes_a_list_of_1d_sequences():
    rng = np.random.RandomState(0)
    seqs = [rng.normal(size=n) for n in (5, 8, 3, 6)]
    model = RecurrentAutoEncoder(2, **FAST_RNN).fit(seqs)
    assert model.n_features_per_step_ == 1
    assert model.transform(seqs).shape == (4, 2)
    errors = model.timestep_errors(seqs)
    assert [len(e) for e in errors] == [5, 8, 3, 6]
    as_2d = [s[:, None] for s in seqs]
    np.testing.assert_allclose(model.score_samples(seqs), model.score_samples(as_2d))


def test_recurrent_rejects_zero_length_sequences():
    with pytest.raises(ValueError, match="no time steps"):
        RecurrentAutoEncoder(2, **FAST_RNN).fit(np.zeros((4, 0, 2)))


# ------------------------------------------------- torch tensors in and out


def _numpy_calls(monkeypatch):
    """Record the size of every tensor turned into a NumPy array."""
    sizes = []
    original = torch.Tensor.numpy

    def numpy(self, *args, **kwargs):
        sizes.append(self.numel())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "numpy", numpy)
    return sizes


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: AutoEncoder(2, **FAST), (60, 5)),
        (lambda: DenoisingAutoEncoder(2, **FAST), (60, 5)),
        (lambda: VariationalAutoEncoder(2, **FAST), (60, 5)),
        (
            lambda: AutoEncoder(
                2,
                architecture=Convolutional2D(channels=(4,)),
                **{k: v for k, v in FAST.items() if k != "hidden_layer_sizes"},
            ),
            (30, 6, 6),
        ),
        (lambda: RecurrentAutoEncoder(2, **FAST_RNN), (20, 7, 2)),
    ],
    ids=["autoencoder", "denoising", "variational", "conv2d", "recurrent"],
)
def test_a_tensor_stays_a_tensor_and_is_never_copied_to_numpy(make, shape, monkeypatch):
    X = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    reference = make().fit(X.numpy())
    sizes = _numpy_calls(monkeypatch)
    est = make().fit(X)
    outputs = {
        "transform": est.transform(X),
        "inverse_transform": est.inverse_transform(est.transform(X)),
        "score_samples": est.score_samples(X),
        "feature_errors": est.feature_errors(X),
    }
    row = int(np.prod(shape[1:]))
    assert max(sizes, default=0) <= row  # at most one row (the shape check) went to NumPy
    monkeypatch.undo()
    for name, out in outputs.items():
        assert isinstance(out, torch.Tensor) and out.device == X.device, name
        assert out.dtype == torch.float32 or name == "score_samples", name
    # The same model and outputs as from the NumPy array (same seed, same batches).
    np.testing.assert_allclose(
        outputs["transform"].numpy(), reference.transform(X.numpy()), rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(
        outputs["score_samples"].numpy(), reference.score_samples(X.numpy()), rtol=1e-4
    )
    assert est.score(X) == pytest.approx(reference.score(X.numpy()), rel=1e-4)


def test_tensor_dtypes_and_bad_tensors():
    X = torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
    ae = AutoEncoder(2, **FAST).fit(X)
    assert ae.transform(X.double()).dtype == torch.float64
    assert ae.transform((X * 10).int()).dtype == torch.float32
    bad = X.clone()
    bad[5, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        ae.transform(bad)
    with pytest.raises(ValueError, match="features"):
        ae.transform(X[:, :3])
    with pytest.raises(TypeError, match="sparse torch tensor"):
        ae.transform(X.to_sparse())
    with pytest.raises(ValueError, match="NaN"):
        ae.inverse_transform(torch.full((2, 2), float("nan")))


def test_the_detector_and_the_ensemble_give_tensors_back():
    from sklearn.decomposition import PCA

    X = torch.randn(120, 4, generator=torch.Generator().manual_seed(0))
    for detector in (
        AnomalyDetector(AutoEncoderEnsemble(n_estimators=2, max_iter=2, random_state=0)),
        AnomalyDetector(AutoEncoder(2, **FAST)),
        AnomalyDetector(PCA(2)),
    ):
        labels = detector.fit_predict(X)
        assert isinstance(labels, torch.Tensor) and labels.dtype == torch.int64
        np.testing.assert_array_equal(labels.numpy(), detector.predict(X.numpy()))
        for method in ("score_samples", "decision_function", "predict", "feature_errors"):
            assert isinstance(getattr(detector, method)(X), torch.Tensor), method


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tensors_in_and_out_without_a_host_copy(monkeypatch):
    X = torch.randn(500, 8, device="cuda")
    sizes = _numpy_calls(monkeypatch)
    ae = AutoEncoder(2, hidden_layer_sizes=(16,), max_iter=3, device="cuda").fit(
        X, sample_weight=torch.rand(500, device="cuda")
    )
    for out in (ae.transform(X), ae.score_samples(X), ae.inverse_transform(ae.transform(X))):
        assert out.device.type == "cuda"
    detector = AnomalyDetector(AutoEncoder(2, max_iter=3, device="cuda")).fit(X)
    assert detector.predict(X).device.type == "cuda"
    assert max(sizes) <= 500  # one row, the weights, and the detector's training scores


@pytest.mark.parametrize(
    "est",
    [
        AutoEncoder(2, **FAST),
        VariationalAutoEncoder(2, **FAST),
        RecurrentAutoEncoder(2, **FAST_RNN),
        AnomalyDetector(AutoEncoder(2, **FAST)),
    ],
    ids=lambda est: type(est).__name__,
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_array_api_tag_holds_for_torch_tensors(est, dtype, monkeypatch):
    """The estimators declaring ``array_api_support`` pass scikit-learn's check with
    torch tensors (which needs SciPy's array API mode to run)."""
    from sklearn.utils.estimator_checks import check_array_api_input

    assert get_tags(est).array_api_support
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check_array_api_input(
        type(est).__name__, est, array_namespace="torch", device_name="cpu", dtype_name=dtype
    )

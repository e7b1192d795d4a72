"""Behaviour of AutoEncoder and the shared base it exercises."""

import io
import pickle
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback

import skae._device
import skae._inference
from skae import AutoEncoder

FAST = dict(hidden_layer_sizes=(16,), max_iter=15, random_state=0, device="cpu")


@pytest.fixture(scope="module")
def X():
    return np.random.RandomState(0).normal(size=(120, 6))


@pytest.fixture(scope="module")
def fitted(X):
    return AutoEncoder(n_components=3, **FAST).fit(X)


def curved_manifold(seed, n=600):
    """A noisy 1-D curve (an arc of a twisted circle) embedded in 10-D."""
    rng = np.random.RandomState(seed)
    t = rng.uniform(0, 1.5 * np.pi, n)
    curve = np.c_[np.cos(t), np.sin(t), 0.3 * np.cos(2 * t)]
    rotation, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    return curve @ rotation[:3] + 0.01 * rng.normal(size=(n, 10))


# ------------------------------------------------------------- integration


def test_pipeline_with_classifier_on_digits():
    X, y = load_digits(return_X_y=True)
    pipe = make_pipeline(
        StandardScaler(),
        AutoEncoder(n_components=16, hidden_layer_sizes=(64,), max_iter=30, random_state=0),
        LogisticRegression(max_iter=500),
    )
    pipe.fit(X[::2], y[::2])
    accuracy = pipe.score(X[1::2], y[1::2])
    # Chance is 0.1; a code that kept the digits' structure gives far more.
    assert accuracy > 0.8


def test_grid_search_without_scoring_picks_the_best_reconstruction():
    X, _ = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    search = GridSearchCV(
        AutoEncoder(max_iter=15, random_state=0),
        {"n_components": [2, 16], "hidden_layer_sizes": [(32,), (64,)]},
        cv=3,
        n_jobs=2,
    ).fit(X)
    means = search.cv_results_["mean_test_score"]
    assert search.best_score_ == pytest.approx(means.max())
    assert np.all(means < 0)  # score is a negative reconstruction error
    # A 16-value code reconstructs 64 pixels better than a 2-value one.
    assert search.best_params_["n_components"] == 16


def test_autoencoder_beats_pca_on_a_curved_manifold():
    for seed in (0, 1, 2):
        X = curved_manifold(seed)
        pca = PCA(n_components=1).fit(X)
        pca_error = np.mean((pca.inverse_transform(pca.transform(X)) - X) ** 2)
        ae = AutoEncoder(
            n_components=1,
            hidden_layer_sizes=(32,),
            activation="tanh",
            learning_rate_init=1e-2,
            batch_size=64,
            max_iter=300,
            random_state=seed,
        ).fit(X)
        ae_error = np.mean((ae.inverse_transform(ae.transform(X)) - X) ** 2)
        # Seen: the autoencoder's error is 1-2% of PCA's on seeds 0-4.
        assert ae_error < 0.2 * pca_error


# ------------------------------------------------------- API and contracts


def test_transform_inverse_transform_and_scores(X, fitted):
    codes = fitted.transform(X)
    assert codes.shape == (len(X), 3)
    reconstruction = fitted.inverse_transform(codes)
    assert reconstruction.shape == X.shape
    expected = -np.mean((reconstruction - X) ** 2, axis=1)
    np.testing.assert_allclose(fitted.score_samples(X), expected, rtol=1e-5, atol=1e-6)
    assert fitted.score(X) == pytest.approx(expected.mean(), rel=1e-5)


def test_fitted_attributes(X, fitted):
    assert fitted.n_features_in_ == X.shape[1]
    assert fitted.n_iter_ == len(fitted.loss_curve_) == len(fitted.history_)
    assert isinstance(fitted.module_, torch.nn.Module)
    assert not hasattr(fitted, "validation_scores_")
    assert list(fitted.get_feature_names_out()) == [f"autoencoder{i}" for i in range(3)]


def test_training_loss_decreases(X, fitted):
    assert fitted.loss_curve_[-1] < fitted.loss_curve_[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outputs_keep_the_input_float_dtype(X, fitted, dtype):
    Xd = X.astype(dtype)
    assert fitted.transform(Xd).dtype == dtype
    assert fitted.score_samples(Xd).dtype == dtype
    assert fitted.inverse_transform(fitted.transform(Xd)).dtype == dtype


def test_same_seed_same_codes_other_seed_other_codes(X):
    a = AutoEncoder(n_components=3, **FAST).fit(X).transform(X)
    b = AutoEncoder(n_components=3, **FAST).fit(X).transform(X)
    c = AutoEncoder(n_components=3, **{**FAST, "random_state": 1}).fit(X).transform(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fit_leaves_torch_global_rng_alone(X):
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    AutoEncoder(n_components=2, **FAST).fit(X)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_clone_pickle_and_joblib_round_trips(X, fitted, tmp_path):
    expected = fitted.transform(X)
    unpickled = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(unpickled.transform(X), expected)
    np.testing.assert_array_equal(unpickled.score_samples(X), fitted.score_samples(X))
    joblib.dump(fitted, tmp_path / "ae.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "ae.joblib").transform(X), expected)
    cloned = clone(fitted)
    assert cloned.get_params() == fitted.get_params()
    with pytest.raises(NotFittedError):
        cloned.transform(X)
    np.testing.assert_array_equal(cloned.fit(X).transform(X), expected)


def test_model_saved_on_cuda_loads_on_a_cpu_only_machine(X, fitted):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; test_fit_and_reload_on_cuda covers it")
    # Pretend the net trained on CUDA: on unpickling without CUDA, skorch must
    # map its tensors to the CPU and say so, and skae must then infer there.
    model = pickle.loads(pickle.dumps(fitted))
    model.net_.device = "cuda"
    buffer = io.BytesIO()
    pickle.dump(model, buffer)
    buffer.seek(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = pickle.load(buffer)
    assert any("no CUDA devices are available" in str(w.message) for w in caught)
    assert str(loaded.net_.device) == "cpu"
    np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))


@pytest.mark.cuda
def test_fit_and_reload_on_cuda(X):
    ae = AutoEncoder(n_components=3, **{**FAST, "device": "auto"}).fit(X)
    assert next(ae.module_.parameters()).is_cuda
    loaded = pickle.loads(pickle.dumps(ae))
    np.testing.assert_allclose(loaded.transform(X), ae.transform(X), rtol=1e-6)
    cpu_model = AutoEncoder(n_components=3, **FAST).fit(X)
    # Same architecture trains to a similar reconstruction error on both devices.
    assert ae.score(X) == pytest.approx(cpu_model.score(X), rel=0.2)


def test_pandas_in_and_pandas_out(X, fitted):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        X, columns=[f"f{i}" for i in range(X.shape[1])], index=np.arange(len(X)) + 7
    )
    ae = AutoEncoder(n_components=3, **FAST).set_output(transform="pandas").fit(frame)
    out = ae.transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["autoencoder0", "autoencoder1", "autoencoder2"]
    assert list(out.index) == list(frame.index)
    assert list(ae.feature_names_in_) == list(frame.columns)
    np.testing.assert_array_equal(out.to_numpy(), fitted.transform(X))


def test_batched_inference_matches_one_batch(X, fitted, monkeypatch):
    whole = fitted.score_samples(X)
    batches = []
    run_batch = skae._inference.run_batch

    def counting(fn, module, device, X, aligned, rows):
        batches.append(rows)
        return run_batch(fn, module, device, X, aligned, rows)

    monkeypatch.setattr(skae._inference, "INFERENCE_BATCH_ROWS", 7)
    monkeypatch.setattr(skae._inference, "run_batch", counting)
    np.testing.assert_allclose(fitted.score_samples(X), whole, rtol=1e-5, atol=1e-7)
    # The patched batch size is the one inference used: ceil(n / 7) batches of 7 rows.
    assert len(batches) == -(-len(X) // 7)
    assert all(rows.stop - rows.start == 7 for rows in batches)
    np.testing.assert_allclose(fitted.transform(X[:50]), fitted.transform(X)[:50], rtol=1e-5)


# ----------------------------------------------------------------- training


def test_early_stopping_records_validation_scores_and_stops():
    X = curved_manifold(0)
    ae = AutoEncoder(
        n_components=1, early_stopping=True, n_iter_no_change=3, max_iter=500, random_state=0
    ).fit(X)
    assert ae.n_iter_ < 500
    assert len(ae.validation_scores_) == ae.n_iter_
    assert ae.best_validation_score_ == max(ae.validation_scores_)
    # The best epoch's weights are restored: the last epochs scored worse.
    assert ae.validation_scores_[-1] <= ae.best_validation_score_


def test_tol_none_runs_exactly_max_iter_epochs(X):
    assert AutoEncoder(n_components=2, **{**FAST, "tol": None, "max_iter": 13}).fit(X).n_iter_ == 13


def test_training_loss_plateau_stops_the_fit(X):
    ae = AutoEncoder(
        n_components=2, **{**FAST, "max_iter": 1000, "tol": 10.0, "n_iter_no_change": 2}
    )
    # No epoch improves the loss by 10, so the fit stops after 1 + 2 epochs.
    assert ae.fit(X).n_iter_ == 3


def test_warm_start_continues_from_the_previous_weights(X):
    ae = AutoEncoder(n_components=2, **{**FAST, "tol": None, "warm_start": True}).fit(X)
    first = list(ae.loss_curve_)
    ae.fit(X)
    assert ae.n_iter_ == 2 * FAST["max_iter"]
    assert ae.loss_curve_[: len(first)] == first
    assert ae.loss_curve_[len(first)] < first[0]


def test_warm_start_rejects_a_different_number_of_features(X):
    ae = AutoEncoder(n_components=2, **{**FAST, "warm_start": True}).fit(X)
    with pytest.raises(ValueError, match="warm_start=True continues a model fitted on 6"):
        ae.fit(X[:, :4])
    assert ae.n_features_in_ == 6


def test_user_callbacks_run_every_epoch(X):
    class CountEpochs(Callback):
        def initialize(self):
            self.epochs = 0
            return self

        def on_epoch_end(self, net, **kwargs):
            self.epochs += 1

    ae = AutoEncoder(n_components=2, **{**FAST, "callbacks": [CountEpochs()]}).fit(X)
    assert dict(ae.net_.callbacks_)["user_0"].epochs == ae.n_iter_


def test_verbose_zero_is_silent_and_two_prints_epochs(X, capsys):
    AutoEncoder(n_components=2, **FAST).fit(X)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    ae = AutoEncoder(n_components=2, **{**FAST, "verbose": 2, "tol": None}).fit(X)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch ")]
    assert len(lines) == ae.n_iter_
    assert "loss=" in lines[0]


def test_diverging_fit_raises_and_leaves_the_estimator_unfitted(X):
    ae = AutoEncoder(n_components=2, learning_rate_init=1e6, max_iter=50, random_state=0)
    with pytest.raises(FloatingPointError, match="diverged.*smaller learning_rate_init"):
        ae.fit(X)
    with pytest.raises(NotFittedError):
        check_is_fitted(ae)


def test_failed_refit_keeps_the_previous_model(X):
    ae = AutoEncoder(n_components=2, **FAST).fit(X)
    codes = ae.transform(X)
    with pytest.raises(ValueError, match="NaN"):
        ae.fit(np.full_like(X, np.nan))
    np.testing.assert_array_equal(ae.transform(X), codes)


# ----------------------------------------------------------------- bad input

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
    ae = AutoEncoder(n_components=2, **FAST)
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


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_components": 0}, "n_components"),
        ({"activation": "swish"}, "activation"),
        ({"learning_rate_init": 0.0}, "learning_rate_init"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"hidden_layer_sizes": (8, 0)}, "hidden_layer_sizes"),
        ({"device": "tpu9"}, "device='tpu9' is not a torch device"),
    ],
)
def test_invalid_parameters_raise_at_fit(X, params, message):
    with pytest.raises(ValueError, match=message):
        AutoEncoder(**params).fit(X)


def test_cuda_device_without_cuda_is_a_clear_error(X):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="torch.cuda.is_available\\(\\) is False"):
        AutoEncoder(device="cuda").fit(X)


def test_device_auto_resolves_to_the_available_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert skae._device.resolve_device("auto").type == expected

"""Inference (skae._inference, skae._errors): transform, inverse_transform, the scores and
the errors, in batches of bounded memory, retried after out-of-memory, finite from finite
input; outputs too large for the machine are refused."""

import numpy as np
import pytest
import torch
from _settings import FAST
from sklearn.decomposition import PCA

import skae._device
import skae._inference
from skae import (
    AnomalyDetector,
    AutoEncoder,
    AutoEncoderEnsemble,
    RecurrentAutoEncoder,
    VariationalAutoEncoder,
)

# No network size: each test sets its own.
FAST_NO_NETWORK = dict(max_iter=2, tol=None, random_state=0, device="cpu")


@pytest.fixture(scope="module")
def X(X_40x5):
    return X_40x5


@pytest.fixture(scope="module")
def fitted(fitted_autoencoder):
    return fitted_autoencoder


@pytest.fixture(scope="module")
def X_30x6():
    return np.random.RandomState(0).normal(size=(30, 6))


# ---------------------------------------------- transform, inverse_transform and scores


def test_transform_inverse_transform_and_scores(X_120x6, fitted):
    codes = fitted.transform(X_120x6)
    assert codes.shape == (len(X_120x6), 3)
    reconstruction = fitted.inverse_transform(codes)
    assert reconstruction.shape == X_120x6.shape
    expected = -np.mean((reconstruction - X_120x6) ** 2, axis=1)
    np.testing.assert_allclose(fitted.score_samples(X_120x6), expected, rtol=1e-5, atol=1e-6)
    assert fitted.score(X_120x6) == pytest.approx(expected.mean(), rel=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outputs_keep_the_input_float_dtype(X_120x6, fitted, dtype):
    Xd = X_120x6.astype(dtype)
    assert fitted.transform(Xd).dtype == dtype
    assert fitted.score_samples(Xd).dtype == dtype
    assert fitted.inverse_transform(fitted.transform(Xd)).dtype == dtype


def test_vae_scores_repeat_between_calls_without_random_state(X):
    vae = VariationalAutoEncoder(2, **{**FAST, "random_state": None}).fit(X)
    np.testing.assert_array_equal(vae.score_samples(X), vae.score_samples(X))


def test_feature_errors_of_sparse_input_are_dense_per_feature(X_30x6):
    import scipy.sparse as sp

    ae = AutoEncoder(2, hidden_layer_sizes=(4,), **FAST_NO_NETWORK).fit(X_30x6)
    errors = ae.feature_errors(sp.csr_matrix(X_30x6))
    np.testing.assert_allclose(errors, ae.feature_errors(X_30x6), rtol=1e-6)
    np.testing.assert_allclose(errors.mean(axis=1), -ae.score_samples(X_30x6), rtol=1e-6)


# ------------------------------------------------------------------------------ batches


def test_batched_inference_matches_one_batch(X_120x6, fitted, monkeypatch):
    whole = fitted.score_samples(X_120x6)
    batches = []
    run_batch = skae._inference.run_batch

    def counting(fn, module, device, X_120x6, aligned, rows):
        batches.append(rows)
        return run_batch(fn, module, device, X_120x6, aligned, rows)

    monkeypatch.setattr(skae._inference, "INFERENCE_BATCH_ROWS", 7)
    monkeypatch.setattr(skae._inference, "run_batch", counting)
    np.testing.assert_allclose(fitted.score_samples(X_120x6), whole, rtol=1e-5, atol=1e-7)
    # The patched batch size is the one inference used: ceil(n / 7) batches of 7 rows.
    assert len(batches) == -(-len(X_120x6) // 7)
    assert all(rows.stop - rows.start == 7 for rows in batches)
    np.testing.assert_allclose(
        fitted.transform(X_120x6[:50]), fitted.transform(X_120x6)[:50], rtol=1e-5
    )


def test_inference_retries_smaller_batches_after_out_of_memory(X, monkeypatch):
    ae = AutoEncoder(2, **FAST).fit(X)
    expected = ae.transform(X)
    original = skae._inference.run_batch
    calls = []

    def flaky(fn, module, device, X, aligned, rows):
        calls.append(rows.stop - rows.start)
        if len(calls) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return original(fn, module, device, X, aligned, rows)

    monkeypatch.setattr(skae._inference, "INFERENCE_BATCH_ROWS", 32)
    monkeypatch.setattr(skae._inference, "run_batch", flaky)
    with pytest.warns(ResourceWarning, match="retrying with 16"):
        codes = ae.transform(X)
    np.testing.assert_allclose(codes, expected, rtol=1e-6)
    assert calls == [32, 16, 16, 16]


def test_sampling_more_than_memory_holds_is_a_clear_error(X_30x6):
    vae = VariationalAutoEncoder(2, hidden_layer_sizes=(4,), **FAST_NO_NETWORK).fit(X_30x6)
    with pytest.raises(ValueError, match=r"sample\(n_samples=1000000000000000\) asks for an"):
        vae.sample(10**15)
    assert vae.sample(3, random_state=0).shape == (3, 6)


def test_decoding_more_steps_than_memory_holds_is_a_clear_error(X_30x6):
    rec = RecurrentAutoEncoder(2, hidden_size=4, **FAST_NO_NETWORK).fit(X_30x6)
    codes = rec.transform(X_30x6[:2])
    with pytest.raises(ValueError, match=r"inverse_transform\(n_timesteps=1000000000000000\)"):
        rec.inverse_transform(codes, n_timesteps=10**15)
    assert rec.inverse_transform(codes, n_timesteps=9).shape == (2, 9)


# ----------------------------------------------------------------------------- overflow


@pytest.mark.parametrize("n_importance_samples", [1, 5])
def test_vae_scores_far_from_the_training_scale_are_finite_and_still_rank(X, n_importance_samples):
    vae = VariationalAutoEncoder(2, n_importance_samples=n_importance_samples, **FAST).fit(X)
    lowest = np.finfo(np.float64).min
    far = vae.score_samples(X * 300)
    # In float32, exp(log_var) and the squared errors overflowed here (NaN or -inf);
    # in float64 the scores are exact, not clipped, and still rank.
    assert np.all(far > lowest)
    assert np.median(far) < np.median(vae.score_samples(X * 30)) < np.median(vae.score_samples(X))
    # Further out even float64 overflows (exp(log_var / 2) > 1.8e308): clipped, finite.
    assert np.isfinite(vae.score_samples(X * 1e4)).all()


def test_squared_errors_are_computed_beyond_float32(X):
    ae = AutoEncoder(2, **FAST).fit(X)
    scores = ae.score_samples(X * 1e20)
    # Squares of 1e20 overflow float32; in float64 they are about -1e40.
    assert np.all(scores < -1e36) and np.all(scores > -1e44)


def test_score_of_clipped_float32_scores_is_finite(X):
    # Found by make fuzz: float32 scores clipped to float32's lowest value
    # summed to -inf in a float32 mean.
    ae = AutoEncoder(2, **FAST).fit(X)
    huge = (X * 1e20).astype(np.float32)
    assert ae.score_samples(huge).min() == np.finfo(np.float32).min
    assert np.isfinite(ae.score(huge))


def test_codes_that_overflow_raise_instead_of_returning_inf(X):
    ae = AutoEncoder(2, **FAST).fit(X)
    with torch.no_grad():  # a network that amplifies: its float32 activations overflow
        for p in ae.module_.parameters():
            p.mul_(100.0)
    with pytest.raises(ValueError, match="non-finite values from finite input"):
        ae.transform(np.full((3, 5), 3e38))
    assert np.isfinite(ae.score_samples(np.full((3, 5), 3e38))).all()


@pytest.mark.parametrize(
    "make",
    [
        lambda: AutoEncoder(2, **FAST),
        lambda: AutoEncoderEnsemble(n_estimators=2, max_iter=2, random_state=0),
        lambda: AnomalyDetector(AutoEncoderEnsemble(n_estimators=2, max_iter=2, random_state=0)),
        lambda: AnomalyDetector(PCA(2)),
    ],
    ids=["autoencoder", "ensemble", "detector", "detector_pca"],
)
def test_feature_errors_of_a_dataframe_keep_its_index_and_columns(make):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        rng.normal(size=(30, 4)), columns=["a", "b", "c", "d"], index=np.arange(100, 130)
    )
    est = make().fit(frame)
    errors = est.feature_errors(frame)
    assert isinstance(errors, pd.DataFrame)
    assert list(errors.columns) == ["a", "b", "c", "d"] and list(errors.index) == list(frame.index)
    np.testing.assert_array_equal(errors.to_numpy(), est.feature_errors(frame.to_numpy()))

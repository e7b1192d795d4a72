"""The estimator every family is (skae._base) and the contract all families share: any
strides, values beyond float32 refused, finite scores of finite input, bad parameters
refused before training (skae._checks), sparse input giving the dense model."""

import numpy as np
import pytest
from _settings import FAST, FAST_BATCHES, FAST_RNN, family_id
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted

from skae import (
    AnomalyDetector,
    AutoEncoder,
    DenoisingAutoEncoder,
    RecurrentAutoEncoder,
    SparseAutoEncoder,
    VariationalAutoEncoder,
)

TABLE_FAMILIES = [
    AutoEncoder(2, **FAST),
    DenoisingAutoEncoder(2, **FAST),
    SparseAutoEncoder(3, **FAST),
    VariationalAutoEncoder(2, **FAST),
]


ALL_FAMILIES = [*TABLE_FAMILIES, RecurrentAutoEncoder(2, **FAST_RNN)]


SPARSE_INPUT_FAMILIES = [
    AutoEncoder(n_components=3, **FAST_BATCHES),
    DenoisingAutoEncoder(n_components=3, noise="salt_pepper", noise_level=0.2, **FAST_BATCHES),
    SparseAutoEncoder(n_components=3, sparsity="kl", **FAST_BATCHES),
    VariationalAutoEncoder(n_components=3, likelihood="bernoulli", **FAST_BATCHES),
]


@pytest.fixture(scope="module")
def X(X_40x5):
    return X_40x5


# ------------------------------------------------------------------------- every family


@pytest.mark.parametrize("est", ALL_FAMILIES, ids=family_id)
def test_every_method_takes_arrays_with_negative_strides(est, X):
    flipped = X[::-1, ::-1]
    assert any(s < 0 for s in flipped.strides)
    model = clone(est).fit(flipped)
    expected = model.transform(np.ascontiguousarray(flipped))
    np.testing.assert_allclose(model.transform(flipped), expected, rtol=1e-6)
    codes = model.transform(X)
    assert model.inverse_transform(codes[::-1]).shape[0] == len(X)
    assert np.isfinite(model.score_samples(np.flip(X))).all()


@pytest.mark.parametrize("est", ALL_FAMILIES, ids=family_id)
def test_values_beyond_float32_range_are_rejected_clearly(est, X):
    huge = X.copy()
    huge[0, 0] = 1e39
    with pytest.raises(ValueError, match="beyond float32's range"):
        clone(est).fit(huge)
    model = clone(est).fit(X)
    for method in ("transform", "score_samples"):
        with pytest.raises(ValueError, match="beyond float32's range"):
            getattr(model, method)(huge)


@pytest.mark.parametrize("est", ALL_FAMILIES, ids=family_id)
@pytest.mark.parametrize("scale", [1e3, 1e20, 1e35])
def test_scores_of_finite_input_are_finite(est, scale, X):
    model = clone(est).fit(X)
    scores = model.score_samples(X * scale)
    assert scores.shape == (len(X),) and np.isfinite(scores).all()
    if scale == 1e3:  # far from the training data: scored lower
        assert np.median(scores) < np.median(model.score_samples(X))


# --------------------------------------------------------------------------- parameters


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
def test_invalid_parameters_raise_at_fit(X_120x6, params, message):
    with pytest.raises(ValueError, match=message):
        AutoEncoder(**params).fit(X_120x6)


@pytest.mark.parametrize(
    "est, params, match",
    [
        (AutoEncoder(**FAST), dict(n_components=10**15), "could not build its network"),
        (AutoEncoder(**FAST), dict(alpha=1e300), "alpha=1e\\+300 is beyond float32"),
        (AutoEncoder(**FAST), dict(callbacks=[object()]), "callbacks\\[0\\]"),
        (AutoEncoder(**FAST), dict(n_components=True), "n_components must be a number"),
        (VariationalAutoEncoder(**FAST), dict(n_components=True), "got the bool"),
        (AutoEncoder(**FAST), dict(hidden_layer_sizes={}), "hidden_layer_sizes must be"),
        (AutoEncoder(**FAST), dict(hidden_layer_sizes=(True,)), "hidden_layer_sizes must be"),
        (DenoisingAutoEncoder(**FAST), dict(noise_level=1e30), "noise_level=1e\\+30"),
    ],
    ids=lambda v: family_id(v) if hasattr(v, "fit") else None,
)
def test_bad_hyper_parameters_get_a_clear_error(est, params, match, X):
    model = clone(est).set_params(**params)
    with pytest.raises((ValueError, FloatingPointError), match=match):
        model.fit(X)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)


# ------------------------------------------------------------------------- sparse input


@pytest.mark.parametrize("estimator", SPARSE_INPUT_FAMILIES, ids=lambda e: type(e).__name__)
def test_table_families_declare_sparse_input(estimator):
    assert get_tags(estimator).input_tags.sparse
    assert get_tags(AnomalyDetector(estimator)).input_tags.sparse


@pytest.mark.parametrize("estimator", SPARSE_INPUT_FAMILIES, ids=lambda e: type(e).__name__)
def test_sparse_fit_gives_the_model_of_its_dense_equivalent(estimator, X_sparse):
    on_sparse = clone(estimator).fit(X_sparse)
    on_dense = clone(estimator).fit(X_sparse.toarray())
    np.testing.assert_allclose(on_sparse.loss_curve_, on_dense.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(
        on_sparse.transform(X_sparse), on_dense.transform(X_sparse.toarray()), atol=1e-6
    )
    np.testing.assert_allclose(
        on_sparse.score_samples(X_sparse), on_dense.score_samples(X_sparse.toarray()), atol=1e-5
    )

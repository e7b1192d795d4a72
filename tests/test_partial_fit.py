"""partial_fit (one epoch per call, optimizer state kept) on every family."""

import numpy as np
import pytest

from skae import (
    AutoEncoder,
    DenoisingAutoEncoder,
    RecurrentAutoEncoder,
    SparseAutoEncoder,
    VariationalAutoEncoder,
)
from skae.architectures import Convolutional1D


@pytest.fixture
def X():
    # Rank-2 data in 6 dimensions: an AutoEncoder with 2 codes can learn it.
    rng = np.random.default_rng(0)
    return (rng.normal(size=(600, 2)) @ rng.normal(size=(2, 6))).astype(np.float32)


def _mse(model, X):
    return float(np.mean((model.inverse_transform(model.transform(X)) - X) ** 2))


def _adam_steps(model) -> int:
    state = model.net_.optimizer_.state_dict()["state"]
    return int(next(iter(state.values()))["step"])


def test_partial_fit_over_chunks_approaches_in_memory_fit(X):
    params = dict(n_components=2, hidden_layer_sizes=(32,), batch_size=32, learning_rate_init=1e-2)
    params["random_state"] = 0
    full = AutoEncoder(max_iter=8, tol=None, **params).fit(X)
    inc = AutoEncoder(**params)
    for _ in range(8):
        for chunk in np.array_split(X, 3):
            inc.partial_fit(chunk)
    baseline = float(np.mean((X - X.mean(axis=0)) ** 2))
    # 24 one-epoch calls over 200-row chunks see the data as often as 8
    # epochs: both reach under 1% of the variance, and the incremental error
    # is within 2x of the in-memory one (seeds 0-4: ratios 0.9 to 1.7).
    assert _mse(inc, X) < 0.01 * baseline
    assert _mse(full, X) < 0.01 * baseline
    assert _mse(inc, X) < 2 * _mse(full, X)


def test_partial_fit_runs_one_epoch_per_call_and_keeps_optimizer_state(X):
    ae = AutoEncoder(n_components=2, batch_size=100, max_iter=50, random_state=0)
    ae.partial_fit(X[:300])
    assert ae.n_iter_ == 1 and len(ae.loss_curve_) == 1
    assert _adam_steps(ae) == 3  # 300 rows / 100 per batch
    ae.partial_fit(X[300:])
    assert ae.n_iter_ == 2 and len(ae.loss_curve_) == 2
    assert _adam_steps(ae) == 6  # Adam's step count carried over
    assert len(ae.history_) == 2


def test_partial_fit_rejects_chunk_with_other_feature_count(X):
    ae = AutoEncoder(n_components=2, random_state=0).partial_fit(X)
    weights = ae.transform(X)
    with pytest.raises(ValueError, match="X has 5 features, but AutoEncoder is expecting 6"):
        ae.partial_fit(X[:, :5])
    # The failed call changed nothing.
    assert ae.n_iter_ == 1
    np.testing.assert_array_equal(ae.transform(X), weights)


def test_partial_fit_failed_call_restores_weights_and_optimizer(X):
    ae = AutoEncoder(n_components=2, random_state=0).partial_fit(X)
    codes, steps = ae.transform(X), _adam_steps(ae)
    bad = X * 1e30  # overflows float32 in the loss: a non-finite epoch
    with pytest.raises(FloatingPointError, match="training diverged"):
        ae.partial_fit(bad)
    np.testing.assert_array_equal(ae.transform(X), codes)
    assert _adam_steps(ae) == steps and ae.n_iter_ == 1


def test_partial_fit_is_reproducible_with_random_state(X):
    def run():
        ae = AutoEncoder(n_components=2, random_state=3)
        for chunk in np.array_split(X, 3):
            ae.partial_fit(chunk)
        return ae.transform(X)

    np.testing.assert_array_equal(run(), run())


def test_partial_fit_ignores_early_stopping_and_continues_a_fit(X):
    ae = AutoEncoder(n_components=2, max_iter=3, early_stopping=True, random_state=0).fit(X)
    assert ae.n_iter_ == 3
    ae.partial_fit(X)  # no validation split, no stopping: one more epoch
    assert ae.n_iter_ == 4 and len(ae.loss_curve_) == 4
    assert "valid_loss" not in ae.history_[-1]


def test_fit_after_partial_fit_starts_over_unless_warm_start(X):
    ae = AutoEncoder(n_components=2, max_iter=2, tol=None, random_state=0)
    ae.partial_fit(X).partial_fit(X)
    assert ae.fit(X).n_iter_ == 2
    ae.partial_fit(X)
    ae.set_params(warm_start=True)
    assert ae.fit(X).n_iter_ == 5


@pytest.mark.parametrize(
    "model, data",
    [
        (DenoisingAutoEncoder(2, noise="salt_pepper", noise_level=0.1), "table"),
        (SparseAutoEncoder(4, sparsity="topk", k=2), "table"),
        (VariationalAutoEncoder(2), "table"),
        (AutoEncoder(2, architecture=Convolutional1D(channels=(4,))), "signal"),
        (RecurrentAutoEncoder(2, hidden_size=8), "sequences"),
    ],
    ids=["denoising", "sparse", "variational", "conv1d", "recurrent"],
)
def test_partial_fit_works_for_every_family(model, data, X):
    inputs = {"table": X, "signal": X[:, None, :], "sequences": X[:, :, None]}[data]
    model.set_params(random_state=0, batch_size=64)
    model.partial_fit(inputs[:300]).partial_fit(inputs[300:])
    assert model.n_iter_ == 2
    assert np.all(np.isfinite(model.score_samples(inputs)))
    assert model.input_shape_ == inputs.shape[1:]

"""Reliability: odd inputs, bad hyper-parameters, faults during training and
inference, and a fitted model whose state is plain data (issue 15)."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback, Checkpoint, EarlyStopping, LRScheduler

import skae._inference
from skae import (
    AnomalyDetector,
    AutoEncoder,
    DenoisingAutoEncoder,
    RecurrentAutoEncoder,
    SparseAutoEncoder,
    VariationalAutoEncoder,
)
from skae.architectures import MLP, Convolutional1D

FAST = dict(hidden_layer_sizes=(8,), max_iter=4, random_state=0, device="cpu")
FAST_RNN = dict(hidden_size=4, max_iter=3, random_state=0, device="cpu")

TABLE_FAMILIES = [
    AutoEncoder(2, **FAST),
    DenoisingAutoEncoder(2, **FAST),
    SparseAutoEncoder(3, **FAST),
    VariationalAutoEncoder(2, **FAST),
]
ALL_FAMILIES = [*TABLE_FAMILIES, RecurrentAutoEncoder(2, **FAST_RNN)]


def family_id(est):
    return type(est).__name__


@pytest.fixture(scope="module")
def X():
    return np.random.RandomState(0).normal(size=(40, 5))


@pytest.fixture(autouse=True)
def _quiet_convergence():
    # Tiny max_iter is on purpose here; tests that check the warning use pytest.warns.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def weights(est):
    return {k: v.clone() for k, v in est.module_.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


# ------------------------------------------------------- item 1: strides


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


# ------------------------------------------------ item 2: warm start


@pytest.mark.parametrize(
    "est, change",
    [
        (AutoEncoder(2, **FAST), dict(n_components=4)),
        (AutoEncoder(2, **FAST), dict(hidden_layer_sizes=(6, 3))),
        (AutoEncoder(2, **FAST), dict(activation="tanh")),
        (SparseAutoEncoder(4, sparsity="topk", k=2, **FAST), dict(k=3)),
        (VariationalAutoEncoder(2, **FAST), dict(likelihood="bernoulli")),
        (RecurrentAutoEncoder(2, **FAST_RNN), dict(hidden_size=6)),
        (RecurrentAutoEncoder(2, **FAST_RNN), dict(cell="gru")),
    ],
    ids=lambda v: family_id(v) if hasattr(v, "fit") else ",".join(v),
)
def test_warm_start_refuses_a_changed_architecture(est, change, X):
    X = np.clip(X, 0, 1) if "likelihood" in change else X
    model = clone(est).set_params(warm_start=True).fit(X)
    before = weights(model)
    name = next(iter(change))
    with pytest.raises(ValueError, match=f"{name} is .*warm_start=True continues"):
        model.set_params(**change).fit(X)
    assert_same_weights(weights(model), before)


def test_warm_start_accepts_an_unchanged_architecture_given_in_another_form(X):
    model = AutoEncoder(2, **{**FAST, "hidden_layer_sizes": 8, "warm_start": True}).fit(X)
    model.set_params(hidden_layer_sizes=[8]).fit(X)
    assert model.n_iter_ == 2 * FAST["max_iter"]


def test_warm_start_refuses_a_changed_architecture_parameter(X):
    # An explicit architecture's parameters are checked through architecture__<name>.
    model = AutoEncoder(2, architecture=MLP((8,)), **{**FAST, "warm_start": True}).fit(X)
    before = weights(model)
    model.set_params(architecture__activation="tanh")
    with pytest.raises(ValueError, match="architecture__activation is 'tanh'"):
        model.fit(X)
    assert_same_weights(weights(model), before)
    model.set_params(architecture=Convolutional1D())
    with pytest.raises(ValueError, match="architecture is a Convolutional1D"):
        model.fit(X)


# --------------------------------------------- item 3: sparse dead codes


def test_sparse_defaults_keep_code_units_alive_on_minmax_digits():
    X = MinMaxScaler().fit_transform(load_digits().data[::3])
    codes = SparseAutoEncoder(random_state=0, max_iter=60, device="cpu").fit_transform(X)
    # With the old default (sparsity_weight=0.1) every unit died on this data.
    assert (codes != 0).any(axis=0).sum() >= 4


def test_sparse_warns_when_all_code_units_die(X):
    with pytest.warns(UserWarning, match="Only 0 of the 3 code units"):
        SparseAutoEncoder(
            3, sparsity_weight=10.0, learning_rate_init=0.01, **{**FAST, "max_iter": 30}
        ).fit(X)


# ------------------------------------------------- item 5: float32 range


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


def test_anomaly_detector_rejects_values_beyond_float32_range(X):
    detector = AnomalyDetector(AutoEncoder(2, **FAST)).fit(X)
    with pytest.raises(ValueError, match="beyond float32's range"):
        detector.predict(np.full((2, 5), 1e39))


# ----------------------------------------------- item 6: convergence


def test_hitting_max_iter_warns_convergence(X):
    with pytest.warns(ConvergenceWarning, match="max_iter=4"):
        AutoEncoder(2, **FAST).fit(X)


def test_max_iter_with_tol_none_does_not_warn(X):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        AutoEncoder(2, **{**FAST, "tol": None}).fit(X)


def test_a_loss_that_rises_warns_divergence(X):
    with pytest.warns(ConvergenceWarning, match="rose from .* diverged"):
        AutoEncoder(2, learning_rate_init=1e3, max_iter=30, random_state=0, device="cpu").fit(X)


def test_last_step_that_diverges_fails_and_leaves_no_fitted_state(X):
    ae = AutoEncoder(2, learning_rate_init=1e6, max_iter=1, random_state=0, device="cpu")
    with pytest.raises(FloatingPointError, match="diverged"):
        ae.fit(X)
    with pytest.raises(NotFittedError):
        check_is_fitted(ae)


# -------------------------------------------------------- item 7


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


@pytest.mark.parametrize("device", ["mps", "meta", "tpu", "nonsense"])
def test_unsupported_device_is_a_clear_error(device, X):
    with pytest.raises(ValueError, match=f"device='{device}'"):
        AutoEncoder(2, **{**FAST, "device": device}).fit(X)


def test_vae_scores_repeat_between_calls_without_random_state(X):
    vae = VariationalAutoEncoder(2, **{**FAST, "random_state": None}).fit(X)
    np.testing.assert_array_equal(vae.score_samples(X), vae.score_samples(X))


# ------------------------------------------- item 8: skorch history keys


def test_skorch_checkpoint_lr_scheduler_and_early_stopping_work(X, tmp_path):
    callbacks = [
        Checkpoint(monitor="train_loss_best", dirname=str(tmp_path)),
        LRScheduler(policy="StepLR", step_size=1, gamma=0.5),
        ("stop", EarlyStopping(monitor="train_loss", patience=50)),
    ]
    ae = AutoEncoder(2, **{**FAST, "callbacks": callbacks}).fit(X)
    best = [row["train_loss_best"] for row in ae.history_]
    assert best[0] is True
    losses = ae.loss_curve_
    assert best == [loss == min(losses[: i + 1]) for i, loss in enumerate(losses)]
    assert (tmp_path / "params.pt").exists()


def test_history_flags_the_best_validation_loss(X):
    ae = AutoEncoder(2, **{**FAST, "early_stopping": True, "max_iter": 6}).fit(X)
    losses = [row["valid_loss"] for row in ae.history_]
    flags = [row["valid_loss_best"] for row in ae.history_]
    assert flags == [loss == min(losses[: i + 1]) for i, loss in enumerate(losses)]


# ------------------------------------------- failed or interrupted fits


class RaiseAt(Callback):
    def __init__(self, exc, epoch):
        self.exc = exc
        self.epoch = epoch

    def on_batch_end(self, net, training=False, **kwargs):
        if len(net.history) == self.epoch:
            raise self.exc


def test_failed_warm_start_restores_the_weights(X):
    ae = AutoEncoder(2, **FAST).fit(X)
    before, codes = weights(ae), ae.transform(X)
    with pytest.raises(FloatingPointError):
        ae.set_params(warm_start=True, learning_rate_init=1e6).fit(X)
    assert_same_weights(weights(ae), before)
    np.testing.assert_array_equal(ae.transform(X), codes)


@pytest.mark.parametrize("epoch", [1, 3])
def test_exception_from_a_callback_leaves_the_model_as_before(X, epoch):
    ae = AutoEncoder(2, **FAST).fit(X)
    before = weights(ae)
    ae.set_params(warm_start=True, callbacks=[RaiseAt(RuntimeError("boom"), epoch)])
    with pytest.raises(RuntimeError, match="boom"):
        ae.fit(X)
    assert_same_weights(weights(ae), before)
    assert ae.n_iter_ == FAST["max_iter"]


def test_keyboard_interrupt_in_the_first_epoch_propagates_and_changes_nothing(X):
    ae = AutoEncoder(2, **{**FAST, "callbacks": [RaiseAt(KeyboardInterrupt(), 1)]})
    with pytest.raises(KeyboardInterrupt):
        ae.fit(X)
    with pytest.raises(NotFittedError):
        check_is_fitted(ae)


def test_keyboard_interrupt_later_keeps_the_model_and_warns(X):
    ae = AutoEncoder(2, **{**FAST, "max_iter": 10, "batch_size": 8})
    ae.set_params(callbacks=[RaiseAt(KeyboardInterrupt(), 3)])
    with pytest.warns(UserWarning, match="interrupted .* after 2 complete epoch"):
        ae.fit(X)
    assert ae.n_iter_ == 2 and len(ae.history_) == 2
    assert np.isfinite(ae.transform(X)).all()


# ---------------------------------------------------------- overflow


@pytest.mark.parametrize("est", ALL_FAMILIES, ids=family_id)
@pytest.mark.parametrize("scale", [1e3, 1e20, 1e35])
def test_scores_of_finite_input_are_finite(est, scale, X):
    model = clone(est).fit(X)
    scores = model.score_samples(X * scale)
    assert scores.shape == (len(X),) and np.isfinite(scores).all()
    if scale == 1e3:  # far from the training data: scored lower
        assert np.median(scores) < np.median(model.score_samples(X))


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


# -------------------------------------------------- hyper-parameters


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


# ------------------------------------------------- recurrent shapes


def test_recurrent_rejects_zero_length_sequences():
    with pytest.raises(ValueError, match="no time steps"):
        RecurrentAutoEncoder(2, **FAST_RNN).fit(np.zeros((4, 0, 2)))


def test_recurrent_warm_start_from_2d_to_3d_is_a_clear_error():
    model = RecurrentAutoEncoder(2, **{**FAST_RNN, "warm_start": True}).fit(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="3 features per time step.* of 1 features per"):
        model.fit(np.zeros((4, 3, 3)))


# --------------------------------------------- CUDA out of memory


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

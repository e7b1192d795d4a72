"""The one training path (skae._base, skae._training, skae._checks): fit, partial_fit and a
warm start in one transaction; the module a fit continues; the end-of-training checks;
failures and interrupts; the options of a fit (stopping, callbacks, mixed precision, compile)."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from _settings import FAST, FAST_16, FAST_PATHS, FAST_RNN, curved_manifold, family_id
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback, Checkpoint, EarlyStopping, EpochScoring, LRScheduler

from skae import (
    AutoEncoder,
    DenoisingAutoEncoder,
    RecurrentAutoEncoder,
    SparseAutoEncoder,
    VariationalAutoEncoder,
)
from skae._training import training_loss
from skae.architectures import MLP, Convolutional1D, Recurrent

FAST_BATCH_32 = {**FAST, "batch_size": 32}


@pytest.fixture(scope="module")
def X(X_40x5):
    return X_40x5


@pytest.fixture
def X_rank2_120x6():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(120, 2)) @ rng.normal(size=(2, 6))).astype(np.float32)


@pytest.fixture
def X_rank2_600x6():
    # Rank-2 data in 6 dimensions: an AutoEncoder with 2 codes can learn it.
    rng = np.random.default_rng(0)
    return (rng.normal(size=(600, 2)) @ rng.normal(size=(2, 6))).astype(np.float32)


def _state(est):
    weights = {k: v.clone() for k, v in est.module_.state_dict().items()}
    return weights, est.n_iter_, list(est.loss_curve_), est.get_params()["n_components"]


def _assert_same_state(est, before):
    weights, n_iter, curve, _ = before
    assert est.n_iter_ == n_iter and est.loss_curve_ == curve
    for k, v in est.module_.state_dict().items():
        assert torch.equal(v, weights[k])


def weights(est):
    return {k: v.clone() for k, v in est.module_.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def _mse(model, X):
    return float(np.mean((model.inverse_transform(model.transform(X)) - X) ** 2))


def _adam_steps(model) -> int:
    state = model.net_.optimizer_.state_dict()["state"]
    return int(next(iter(state.values()))["step"])


# ----------------------------------------------------------------- the options of a fit


def test_tol_none_runs_exactly_max_iter_epochs(X_120x6):
    assert (
        AutoEncoder(n_components=2, **{**FAST_16, "tol": None, "max_iter": 13}).fit(X_120x6).n_iter_
        == 13
    )


def test_training_loss_plateau_stops_the_fit(X_120x6):
    # Rank-2 data that a 2-unit code starts learning in its first epoch of 15 steps.
    X = X_120x6[:, :2] @ np.random.RandomState(1).normal(size=(2, 6))
    params = {**FAST_16, "batch_size": 8, "learning_rate_init": 1e-2}
    ae = AutoEncoder(2, **{**params, "max_iter": 1000, "tol": 10.0, "n_iter_no_change": 2})
    # No epoch improves the loss by 10 times the data's variance: it stops after 1 + 2 epochs.
    assert ae.fit(X).n_iter_ == 3
    assert ae.loss_curve_[0] < 0.9 * X.var(axis=0).mean()  # below the plateau (0.98)


def test_the_stopping_rule_waits_while_the_model_has_learned_nothing(X_120x6):
    # A learning rate so small that the loss stays at the mean predictor's: epochs
    # without improvement on that plateau are not counted, so all max_iter run.
    params = {**FAST_16, "learning_rate_init": 1e-8, "tol": 10.0, "n_iter_no_change": 2}
    with pytest.warns(ConvergenceWarning, match="learned almost nothing"):
        ae = AutoEncoder(2, **{**params, "max_iter": 8}).fit(X_120x6 + 3.0)
    assert ae.n_iter_ == 8


def test_early_stopping_records_validation_scores_and_stops():
    X_120x6 = curved_manifold(0)
    ae = AutoEncoder(
        n_components=1, early_stopping=True, n_iter_no_change=3, max_iter=500, random_state=0
    ).fit(X_120x6)
    assert ae.n_iter_ < 500
    assert len(ae.validation_scores_) == ae.n_iter_
    assert ae.best_validation_score_ == max(ae.validation_scores_)
    # The best epoch's weights are restored: the last epochs scored worse.
    assert ae.validation_scores_[-1] <= ae.best_validation_score_


class CountEpochs(Callback):
    def initialize(self):
        self.epochs = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        self.epochs += 1


def test_user_callbacks_run_every_epoch(X_120x6):
    ae = AutoEncoder(n_components=2, **{**FAST_16, "callbacks": [CountEpochs()]}).fit(X_120x6)
    assert dict(ae.net_.callbacks_)["user_0"].epochs == ae.n_iter_


def test_verbose_zero_is_silent_and_two_prints_epochs(X_120x6, capsys):
    AutoEncoder(n_components=2, **FAST_16).fit(X_120x6)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    ae = AutoEncoder(n_components=2, **{**FAST_16, "verbose": 2, "tol": None}).fit(X_120x6)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch ")]
    assert len(lines) == ae.n_iter_
    assert "loss=" in lines[0]


@pytest.mark.parametrize(
    "est, data",
    [
        (AutoEncoder(2, **{**FAST, "tol": None}), "dense"),
        (AutoEncoder(2, **{**FAST, "tol": None}), "sparse"),
        (RecurrentAutoEncoder(2, **{**FAST_RNN, "tol": None}), "ragged"),
    ],
    ids=["dense", "sparse", "ragged"],
)
def test_epoch_scoring_scores_the_reconstruction_every_epoch(est, data, X):
    """skorch's EpochScoring gets the data and, as target, the data as flat rows;
    net.predict gives the reconstructions, so a scikit-learn scorer scores them."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    if data == "sparse":
        X = sp.random(40, 12, density=0.3, format="csr", random_state=0, dtype=np.float32)
    elif data == "ragged":
        X = [rng.normal(size=(n, 2)).astype(np.float32) for n in (4, 7, 5, 6, 3)]
    scoring = EpochScoring("neg_mean_squared_error", on_train=True, lower_is_better=False)
    est.set_params(callbacks=[scoring]).fit(X)
    scores = est.history_[:, "neg_mean_squared_error"]
    assert len(scores) == est.n_iter_ and len(set(scores)) > 1  # scored each epoch
    errors = est.feature_errors(X)
    if data == "ragged":  # padded steps count as exact zeros in the flat rows
        n_values = len(X) * max(len(x) for x in X) * 2
        expected = -sum(e.sum() for e in errors) / n_values
    else:
        expected = -np.mean(errors)
    assert scores[-1] == pytest.approx(expected, rel=1e-4)


def test_a_tuple_of_callbacks_works_as_a_list(X):
    ae = AutoEncoder(2, **{**FAST, "callbacks": (CountEpochs(), ("named", CountEpochs()))})
    ae.fit(X)
    callbacks = dict(ae.net_.callbacks_)
    assert callbacks["user_0"].epochs == callbacks["named"].epochs == ae.n_iter_


@pytest.mark.parametrize(
    "callback, match",
    [
        (EarlyStopping(monitor="valid_loss"), "monitors 'valid_loss'.*early_stopping=True"),
        ("checkpoint", "monitors 'valid_loss_best'"),
        (EpochScoring("r2"), "on_train=False.*on_train=True"),
    ],
    ids=["early_stopping", "checkpoint", "epoch_scoring"],
)
def test_callbacks_watching_validation_scores_need_a_validation_set(callback, match, X, tmp_path):
    if callback == "checkpoint":  # its default monitor; files go to tmp_path
        callback = Checkpoint(dirname=str(tmp_path))
    ae = AutoEncoder(2, **{**FAST, "callbacks": [callback]})
    with pytest.raises(ValueError, match=match):
        ae.fit(X)
    assert not hasattr(ae, "net_")
    # With a validation set they work, and partial_fit (which holds none out) says so.
    ae.set_params(early_stopping=True).fit(X)
    with pytest.raises(ValueError, match="partial_fit holds out no validation set"):
        ae.partial_fit(X)


class RecordRows(Callback):
    """Keeps the first column of every training batch (the test data's row ids)."""

    def initialize(self):
        self.ids = []
        return self

    def on_batch_begin(self, net, batch, training, **kwargs):
        if training:
            x = batch[0] if isinstance(batch, tuple) else batch
            self.ids.extend(x.reshape(len(x), -1)[:, 0].round().long().tolist())


def _rows_with_ids(n, n_features=4, seed=0):
    X = np.random.default_rng(seed).normal(size=(n, n_features)).astype(np.float32)
    X[:, 0] = np.arange(n)
    return X


@pytest.mark.parametrize("fit", ["fit", "partial_fit", "early_stopping"])
def test_sample_weight_draws_rows_in_proportion_and_never_zero_weights(fit):
    X = _rows_with_ids(40)
    weights = np.r_[np.zeros(10), np.ones(15), np.full(15, 3.0)]
    recorder = RecordRows()
    params = {**FAST_BATCH_32, "max_iter": 30, "tol": None, "callbacks": [recorder]}
    ae = AutoEncoder(2, early_stopping=fit == "early_stopping", **params)
    if fit == "partial_fit":
        for _ in range(30):
            ae.partial_fit(X, sample_weight=weights)
    else:
        ae.fit(X, sample_weight=weights)
    ids = np.array(dict(ae.net_.callbacks_)["user_0"].ids)
    assert len(ids) > 0 and not np.isin(ids, np.arange(10)).any()
    light, heavy = np.isin(ids, np.arange(10, 25)).sum(), np.isin(ids, np.arange(25, 40)).sum()
    assert 2.4 < heavy / light < 3.6  # 3 expected; about 1000 draws


def test_equal_sample_weights_train_as_none(X):
    plain = AutoEncoder(2, **FAST_BATCH_32).fit(X)
    weighted = AutoEncoder(2, **FAST_BATCH_32).fit(X, sample_weight=np.full(len(X), 0.5))
    assert weighted.loss_curve_ == plain.loss_curve_


def test_sample_weight_fits_the_weighted_rows_better():
    rng = np.random.default_rng(0)
    A = (rng.normal(size=(100, 2)) @ rng.normal(size=(2, 6))).astype(np.float32)
    B = (rng.normal(size=(100, 6)) * 3 + 5).astype(np.float32)
    X = np.vstack([A, B])
    weights = np.r_[np.ones(100), np.full(100, 0.01)]
    params = {**FAST_BATCH_32, "max_iter": 30}
    weighted = AutoEncoder(2, **params).fit(X, sample_weight=weights)
    plain = AutoEncoder(2, **params).fit(X)
    assert weighted.score(A) > plain.score(A) and weighted.score(B) < plain.score(B)


@pytest.mark.parametrize(
    "weights, match",
    [
        (np.ones(3), "shape \\(3,\\); expected \\(40,\\)"),
        (-np.ones(40), "finite and non-negative"),
        (np.r_[np.nan, np.ones(39)], "finite and non-negative"),
        (np.zeros(40), "zero for every sample"),
        (["a"] * 40, "array of numbers"),
    ],
)
def test_bad_sample_weights_are_refused_and_leave_the_model_unfitted(weights, match, X):
    ae = AutoEncoder(2, **FAST)
    with pytest.raises(ValueError, match=match):
        ae.fit(X, sample_weight=weights)
    assert not hasattr(ae, "net_")


def test_sample_weight_with_chunked_data_is_refused(X):
    from skae import ChunkedData

    with pytest.raises(ValueError, match="ChunkedData"):
        AutoEncoder(2, **FAST).fit(ChunkedData(X, chunk_size=20), sample_weight=np.ones(40))


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


# --------------------------------------------------------------------------- warm start


def test_warm_start_continues_from_the_previous_weights(X_120x6):
    ae = AutoEncoder(n_components=2, **{**FAST_16, "tol": None, "warm_start": True}).fit(X_120x6)
    first = list(ae.loss_curve_)
    ae.fit(X_120x6)
    assert ae.n_iter_ == 2 * FAST_16["max_iter"]
    assert ae.loss_curve_[: len(first)] == first
    assert ae.loss_curve_[len(first)] < first[0]


def test_warm_start_rejects_a_different_number_of_features(X_120x6):
    ae = AutoEncoder(n_components=2, **{**FAST_16, "warm_start": True}).fit(X_120x6)
    with pytest.raises(ValueError, match="warm_start=True continues a model fitted on 6"):
        ae.fit(X_120x6[:, :4])
    assert ae.n_features_in_ == 6


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


def test_recurrent_warm_start_from_2d_to_3d_is_a_clear_error():
    model = RecurrentAutoEncoder(2, **{**FAST_RNN, "warm_start": True}).fit(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="3 features per time step.* of 1 features per"):
        model.fit(np.zeros((4, 3, 3)))


# -------------------------------------------------------------------------- partial_fit


def test_partial_fit_over_chunks_approaches_in_memory_fit(X_rank2_600x6):
    params = dict(n_components=2, hidden_layer_sizes=(32,), batch_size=32, learning_rate_init=1e-2)
    params["random_state"] = 0
    full = AutoEncoder(max_iter=8, tol=None, **params).fit(X_rank2_600x6)
    inc = AutoEncoder(**params)
    for _ in range(8):
        for chunk in np.array_split(X_rank2_600x6, 3):
            inc.partial_fit(chunk)
    baseline = float(np.mean((X_rank2_600x6 - X_rank2_600x6.mean(axis=0)) ** 2))
    # 24 one-epoch calls over 200-row chunks see the data as often as 8
    # epochs: both reach under 1% of the variance, and the incremental error
    # is within 2x of the in-memory one (seeds 0-4: ratios 0.9 to 1.7).
    assert _mse(inc, X_rank2_600x6) < 0.01 * baseline
    assert _mse(full, X_rank2_600x6) < 0.01 * baseline
    assert _mse(inc, X_rank2_600x6) < 2 * _mse(full, X_rank2_600x6)


def test_partial_fit_runs_one_epoch_per_call_and_keeps_optimizer_state(X_rank2_600x6):
    ae = AutoEncoder(n_components=2, batch_size=100, max_iter=50, random_state=0)
    ae.partial_fit(X_rank2_600x6[:300])
    assert ae.n_iter_ == 1 and len(ae.loss_curve_) == 1
    assert _adam_steps(ae) == 3  # 300 rows / 100 per batch
    ae.partial_fit(X_rank2_600x6[300:])
    assert ae.n_iter_ == 2 and len(ae.loss_curve_) == 2
    assert _adam_steps(ae) == 6  # Adam's step count carried over
    assert len(ae.history_) == 2


def test_partial_fit_rejects_chunk_with_other_feature_count(X_rank2_600x6):
    ae = AutoEncoder(n_components=2, random_state=0).partial_fit(X_rank2_600x6)
    weights = ae.transform(X_rank2_600x6)
    with pytest.raises(ValueError, match="X has 5 features, but AutoEncoder is expecting 6"):
        ae.partial_fit(X_rank2_600x6[:, :5])
    # The failed call changed nothing.
    assert ae.n_iter_ == 1
    np.testing.assert_array_equal(ae.transform(X_rank2_600x6), weights)


def test_partial_fit_failed_call_restores_weights_and_optimizer(X_rank2_600x6):
    ae = AutoEncoder(n_components=2, random_state=0).partial_fit(X_rank2_600x6)
    codes, steps = ae.transform(X_rank2_600x6), _adam_steps(ae)
    bad = X_rank2_600x6 * 1e30  # overflows float32 in the loss: a non-finite epoch
    with pytest.raises(FloatingPointError, match="training diverged"):
        ae.partial_fit(bad)
    np.testing.assert_array_equal(ae.transform(X_rank2_600x6), codes)
    assert _adam_steps(ae) == steps and ae.n_iter_ == 1
    # The continued net's history loses the failed epoch too.
    assert len(ae.history_) == 1 and np.isfinite(ae.history_[-1, "train_loss"])


def test_partial_fit_is_reproducible_with_random_state(X_rank2_600x6):
    def run():
        ae = AutoEncoder(n_components=2, random_state=3)
        for chunk in np.array_split(X_rank2_600x6, 3):
            ae.partial_fit(chunk)
        return ae.transform(X_rank2_600x6)

    np.testing.assert_array_equal(run(), run())


def test_partial_fit_ignores_early_stopping_and_continues_a_fit(X_rank2_600x6):
    ae = AutoEncoder(n_components=2, max_iter=3, early_stopping=True, random_state=0).fit(
        X_rank2_600x6
    )
    assert ae.n_iter_ == 3
    ae.partial_fit(X_rank2_600x6)  # no validation split, no stopping: one more epoch
    assert ae.n_iter_ == 4 and len(ae.loss_curve_) == 4
    assert "valid_loss" not in ae.history_[-1]


def test_fit_after_partial_fit_starts_over_unless_warm_start(X_rank2_600x6):
    ae = AutoEncoder(n_components=2, max_iter=2, tol=None, random_state=0)
    ae.partial_fit(X_rank2_600x6).partial_fit(X_rank2_600x6)
    assert ae.fit(X_rank2_600x6).n_iter_ == 2
    ae.partial_fit(X_rank2_600x6)
    ae.set_params(warm_start=True)
    assert ae.fit(X_rank2_600x6).n_iter_ == 5


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
def test_partial_fit_works_for_every_family(model, data, X_rank2_600x6):
    inputs = {
        "table": X_rank2_600x6,
        "signal": X_rank2_600x6[:, None, :],
        "sequences": X_rank2_600x6[:, :, None],
    }[data]
    model.set_params(random_state=0, batch_size=64)
    model.partial_fit(inputs[:300]).partial_fit(inputs[300:])
    assert model.n_iter_ == 2
    assert np.all(np.isfinite(model.score_samples(inputs)))
    assert model.input_shape_ == inputs.shape[1:]


@pytest.mark.parametrize(
    "change, match",
    [
        ({"n_components": 4}, r"n_components is 4, but the fitted module was built with 2"),
        ({"hidden_layer_sizes": (16,)}, r"hidden_layer_sizes is \(16,\), but the fitted"),
        ({"architecture": Recurrent()}, r"architecture is a Recurrent, but the fitted module"),
    ],
)
def test_partial_fit_refuses_a_parameter_change_that_would_build_another_module(
    X_rank2_120x6, change, match
):
    ae = AutoEncoder(2, **FAST_BATCH_32).partial_fit(X_rank2_120x6)
    before = _state(ae)
    ae.set_params(**change)
    with pytest.raises(ValueError, match=match + r".*partial_fit continues the fitted module"):
        ae.partial_fit(X_rank2_120x6)
    _assert_same_state(ae, before)
    # Set back, training continues; the codes still have the fitted size.
    ae.set_params(n_components=2, hidden_layer_sizes=(8,), architecture=None).partial_fit(
        X_rank2_120x6
    )
    assert ae.transform(X_rank2_120x6).shape == (len(X_rank2_120x6), 2)


def test_partial_fit_accepts_an_equal_network_given_in_another_form(X_rank2_120x6):
    ae = AutoEncoder(2, **{**FAST_BATCH_32, "hidden_layer_sizes": 8}).partial_fit(X_rank2_120x6)
    ae.set_params(hidden_layer_sizes=[8]).partial_fit(X_rank2_120x6)
    ae.set_params(architecture=MLP((8,))).partial_fit(X_rank2_120x6)
    assert ae.n_iter_ == 3


# --------------------------------------------------------------- end-of-training checks


@pytest.mark.parametrize("how", ["fit", "partial_fit"])
def test_dead_sparse_code_units_warn_on_every_path(how):
    X_rank2_120x6 = np.random.RandomState(0).normal(size=(40, 5))
    ae = SparseAutoEncoder(3, sparsity_weight=10.0, learning_rate_init=0.01, **FAST_BATCH_32)
    with pytest.warns(UserWarning, match=r"3 of the 3 code units are 0 on every training row"):
        if how == "fit":
            ae.set_params(max_iter=30, tol=None).fit(X_rank2_120x6)
        else:
            for _ in range(30):
                ae.partial_fit(X_rank2_120x6)
    assert (ae.transform(X_rank2_120x6) == 0).all()


def test_sparse_warns_when_a_large_penalty_kills_code_units(X):
    # Revived once, the units die again under the penalty (one, on this run, within 30 epochs).
    with pytest.warns(UserWarning, match="of the 3 code units (is|are) 0 on every training row"):
        SparseAutoEncoder(
            3, sparsity_weight=10.0, learning_rate_init=0.01, **{**FAST, "max_iter": 30}
        ).fit(X)


class PoisonWeights(Callback):
    """Makes the weights non-finite after the per-epoch loss guard looked."""

    def on_train_end(self, net, **kwargs):
        with torch.no_grad():
            next(net.module_.parameters()).fill_(float("nan"))


def test_a_non_finite_model_is_refused_on_every_path(X_rank2_120x6):
    poisoned = {**FAST_BATCH_32, "callbacks": [PoisonWeights()]}
    for how in ("fit", "partial_fit"):
        ae = AutoEncoder(2, **poisoned)
        with pytest.raises(FloatingPointError, match="weights or its loss on the training data"):
            getattr(ae, how)(X_rank2_120x6)
        assert not hasattr(ae, "net_")
    # A warm start that ends non-finite restores the weights it started from.
    ae = AutoEncoder(2, **FAST_BATCH_32).fit(X_rank2_120x6)
    before = _state(ae)
    ae.set_params(callbacks=[PoisonWeights()], warm_start=True)
    with pytest.raises(FloatingPointError):
        ae.fit(X_rank2_120x6)
    _assert_same_state(ae, before)


def test_partial_fit_warns_when_the_loss_rises_across_calls(X_rank2_120x6):
    ae = AutoEncoder(2, **{**FAST_BATCH_32, "learning_rate_init": 1e-3}).partial_fit(X_rank2_120x6)

    class Worse(Callback):
        def on_epoch_end(self, net, **kwargs):
            net.history.record("train_loss", 100.0)

    ae.set_params(callbacks=[Worse()])
    ae.net_.callbacks_.insert(0, ("worse", Worse()))  # the continued net's own list
    with pytest.warns(ConvergenceWarning, match="The training loss rose"):
        ae.partial_fit(X_rank2_120x6)


def test_a_check_is_disabled_by_its_name_as_skorch_does(X_rank2_120x6):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        AutoEncoder(2, **{**FAST_BATCH_32, "callbacks": [("convergence_check", None)]}).fit(
            X_rank2_120x6
        )
    with pytest.warns(ConvergenceWarning, match="learned almost nothing"):
        AutoEncoder(2, **FAST_BATCH_32).fit(X_rank2_120x6)


def test_convergence_warning_points_at_the_callers_line(X_rank2_120x6):
    with pytest.warns(ConvergenceWarning) as record:
        AutoEncoder(2, **FAST_BATCH_32).fit(X_rank2_120x6)
    assert record[0].filename == __file__


def test_hitting_max_iter_warns_convergence(X):
    with pytest.warns(ConvergenceWarning, match="max_iter=4"):
        AutoEncoder(2, **FAST).fit(X)


def test_max_iter_with_tol_none_does_not_warn(X):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        AutoEncoder(2, **{**FAST, "tol": None}).fit(X)
    assert not [w for w in record if "maximum iterations" in str(w.message)]


def test_a_loss_that_rises_warns_divergence(X):
    with pytest.warns(ConvergenceWarning, match="rose from .* diverged"):
        AutoEncoder(
            2, learning_rate_init=1e3, max_iter=30, batch_size=256, random_state=0, device="cpu"
        ).fit(X)


# ----------------------------------------------------------- failed fits change nothing


def test_diverging_fit_raises_and_leaves_the_estimator_unfitted(X_120x6):
    ae = AutoEncoder(n_components=2, learning_rate_init=1e6, max_iter=50, random_state=0)
    with pytest.raises(FloatingPointError, match="diverged.*smaller learning_rate_init"):
        ae.fit(X_120x6)
    with pytest.raises(NotFittedError):
        check_is_fitted(ae)


def test_last_step_that_diverges_fails_and_leaves_no_fitted_state(X):
    ae = AutoEncoder(2, learning_rate_init=1e6, max_iter=1, random_state=0, device="cpu")
    with pytest.raises(FloatingPointError, match="diverged"):
        ae.fit(X)
    with pytest.raises(NotFittedError):
        check_is_fitted(ae)


def test_failed_refit_keeps_the_previous_model(X_120x6):
    ae = AutoEncoder(n_components=2, **FAST_16).fit(X_120x6)
    codes = ae.transform(X_120x6)
    with pytest.raises(ValueError, match="NaN"):
        ae.fit(np.full_like(X_120x6, np.nan))
    np.testing.assert_array_equal(ae.transform(X_120x6), codes)


def test_failed_warm_start_restores_the_weights(X):
    ae = AutoEncoder(2, **FAST).fit(X)
    before, codes = weights(ae), ae.transform(X)
    with pytest.raises(FloatingPointError):
        ae.set_params(warm_start=True, learning_rate_init=1e6).fit(X)
    assert_same_weights(weights(ae), before)
    np.testing.assert_array_equal(ae.transform(X), codes)


class RaiseAt(Callback):
    def __init__(self, exc, epoch):
        self.exc = exc
        self.epoch = epoch

    def on_batch_end(self, net, training=False, **kwargs):
        if len(net.history) == self.epoch:
            raise self.exc


@pytest.mark.parametrize("epoch", [1, 3])
def test_exception_from_a_callback_leaves_the_model_as_before(X, epoch):
    ae = AutoEncoder(2, **FAST).fit(X)
    before = weights(ae)
    ae.set_params(warm_start=True, callbacks=[RaiseAt(RuntimeError("boom"), epoch)])
    with pytest.raises(RuntimeError, match="boom"):
        ae.fit(X)
    assert_same_weights(weights(ae), before)
    assert ae.n_iter_ == FAST["max_iter"]


# --------------------------------------------------------------------------- interrupts


class Stop(KeyboardInterrupt):
    """A KeyboardInterrupt subclass, as a scheduler or a callback may raise."""


class RaiseOnBatch(Callback):
    def __init__(self, exc, epoch=1):
        self.exc = exc
        self.epoch = epoch

    def on_batch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise self.exc


@pytest.mark.parametrize("how", ["fit", "partial_fit"])
def test_an_interrupt_in_the_first_epoch_is_the_callers_own_exception(X_rank2_120x6, how):
    stop = Stop("the scheduler said stop")
    ae = AutoEncoder(2, **{**FAST_BATCH_32, "callbacks": [RaiseOnBatch(stop)]})
    with pytest.raises(Stop, match="the scheduler said stop") as caught:
        getattr(ae, how)(X_rank2_120x6)
    assert caught.value is stop
    assert caught.value.__traceback__ is not None
    assert not hasattr(ae, "net_")


def test_an_interrupt_after_an_epoch_keeps_the_weights_and_names_the_exception(X_rank2_120x6):
    ae = AutoEncoder(2, **{**FAST_BATCH_32, "callbacks": [RaiseOnBatch(Stop("later"), epoch=3)]})
    with pytest.warns(UserWarning, match=r"interrupted \(Stop\) after 2 complete epoch"):
        ae.fit(X_rank2_120x6)
    assert ae.n_iter_ == 2


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


# ---------------------------------------------------------- mixed precision and compile


@pytest.mark.parametrize("cls", [AutoEncoder, DenoisingAutoEncoder, VariationalAutoEncoder])
def test_mixed_precision_trains_to_the_float32_model(X_400x12, cls):
    eager = cls(device="cpu", **FAST_PATHS).fit(X_400x12)
    bf16 = cls(device="cpu", mixed_precision=True, **FAST_PATHS).fit(X_400x12)
    assert np.all(np.isfinite(bf16.loss_curve_))
    # bf16 keeps ~3 significant digits in the forward pass; weights stay float32.
    np.testing.assert_allclose(bf16.loss_curve_, eager.loss_curve_, rtol=0.02)
    assert next(bf16.module_.parameters()).dtype == torch.float32
    assert bf16.transform(X_400x12).dtype == np.float32


def test_compiled_fit_matches_eager_and_pickles(X_400x12):
    eager = AutoEncoder(device="cpu", **FAST_PATHS).fit(X_400x12)
    compiled = AutoEncoder(device="cpu", compile=True, **FAST_PATHS).fit(X_400x12)
    np.testing.assert_allclose(compiled.loss_curve_, eager.loss_curve_, rtol=1e-4)
    np.testing.assert_allclose(
        compiled.transform(X_400x12), eager.transform(X_400x12), rtol=1e-3, atol=1e-4
    )
    restored = pickle.loads(pickle.dumps(compiled))
    np.testing.assert_array_equal(restored.transform(X_400x12), compiled.transform(X_400x12))


@pytest.mark.cuda
@pytest.mark.parametrize("options", [{}, {"mixed_precision": True}, {"compile": True}])
def test_cuda_fast_paths_train_like_cpu(X_400x12, options):
    cpu = AutoEncoder(device="cpu", **FAST_PATHS).fit(X_400x12)
    gpu = AutoEncoder(device="cuda", **options, **FAST_PATHS).fit(X_400x12)
    assert np.all(np.isfinite(gpu.loss_curve_))
    assert gpu.loss_curve_[-1] == pytest.approx(cpu.loss_curve_[-1], rel=0.1)
    restored = pickle.loads(pickle.dumps(gpu))
    np.testing.assert_allclose(restored.transform(X_400x12), gpu.transform(X_400x12), rtol=1e-5)


def test_mixed_precision_on_a_gpu_without_bf16_is_a_clear_error(monkeypatch):
    # Simulated: the check runs before any CUDA work, so no GPU is needed.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *args, **kwargs: "Old GPU")
    model = AutoEncoder(mixed_precision=True)
    module = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"this GPU \(Old GPU\) does not support"):
        training_loss(model, module, torch.device("cuda"))
    # Without the option the same device needs no bf16.
    plain = AutoEncoder()
    assert training_loss(plain, module, torch.device("cuda")) == plain._loss


def test_mixed_precision_with_a_recurrent_network_on_the_cpu_is_a_clear_error():
    X_rank2_120x6 = np.random.default_rng(0).normal(size=(16, 5))
    arch = Recurrent(hidden_size=4)
    settings = {**FAST_BATCH_32, "hidden_layer_sizes": (64,)}  # the default: Recurrent has none
    est = AutoEncoder(2, architecture=arch, mixed_precision=True, **settings)
    with pytest.raises(ValueError, match="no bfloat16 kernels for recurrent layers"):
        est.fit(X_rank2_120x6)
    assert not hasattr(est, "net_")


# ------------------------------------------------- the training budget and its checks


@pytest.mark.parametrize(
    ("n_rows", "rows_per_batch"), [(5, 5), (50, 8), (200, 12), (1000, 62), (10_000, 256)]
)
def test_auto_batch_size_gives_small_sets_several_steps_an_epoch(n_rows, rows_per_batch):
    X = np.random.RandomState(0).normal(size=(n_rows, 3))
    ae = AutoEncoder(1, hidden_layer_sizes=(), max_iter=1, random_state=0, device="cpu").fit(X)
    assert ae.get_params()["batch_size"] == "auto"
    assert ae.net_.batch_size == rows_per_batch


def test_an_int_batch_size_is_used_as_given(X_120x6):
    ae = AutoEncoder(2, **{**FAST, "batch_size": 7}).fit(X_120x6)
    assert ae.net_.batch_size == 7


def test_mean_predictor_error_is_the_mean_variance_of_each_position():
    from skae._checks import mean_predictor_mse

    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 4)) * [1.0, 2.0, 3.0, 0.0] + 5.0
    batches = [torch.tensor(X[:7]), torch.tensor(X[7:])]
    assert mean_predictor_mse(batches) == pytest.approx(X.var(axis=0).mean())
    # Padded sequences: each step's mean over the sequences that reach it.
    seqs = [rng.normal(size=(n, 2)) for n in (3, 5, 5, 2)]
    padded = np.zeros((4, 6, 2))  # one padded step past the longest
    for i, s in enumerate(seqs):
        padded[i, : len(s)] = s
    padded[0, 4] = 99.0  # a value past the end of sequence 0 must not count
    lengths = torch.tensor([len(s) for s in seqs])
    expected_sum, count = 0.0, 0
    for t in range(5):
        at_t = np.array([s[t] for s in seqs if len(s) > t])
        expected_sum += ((at_t - at_t.mean(axis=0)) ** 2).sum()
        count += at_t.size
    got = mean_predictor_mse(
        [(torch.tensor(padded[:2]), lengths[:2]), (torch.tensor(padded[2:]), lengths[2:])]
    )
    assert got == pytest.approx(expected_sum / count)


def test_tol_is_relative_to_the_mean_predictors_error(X_120x6):
    for scale in (1.0, 1e-3):
        X = X_120x6 * scale
        ae = AutoEncoder(2, **{**FAST, "tol": 1e-2}).fit(X)
        stopping = dict(ae.net_.callbacks_)["early_stopping"]
        assert stopping.threshold == pytest.approx(1e-2 * X.var(axis=0).mean(), rel=1e-4)


def test_a_fit_that_learned_nothing_warns_what_to_change(X_120x6):
    # One step of a tiny learning rate: the model is where it started.
    params = {**FAST, "max_iter": 1, "learning_rate_init": 1e-7, "tol": None}
    with pytest.warns(ConvergenceWarning, match="learned almost nothing.*max_iter=1"):
        AutoEncoder(2, **params).fit(X_120x6 + 10.0)


def test_the_learned_nothing_check_skips_the_multinomial_loss():
    # The same untrained fit warns with the squared error; the multinomial
    # model is not judged by a squared error it does not minimise.
    counts = np.random.RandomState(2).poisson(1.0, size=(120, 6)).astype(float)
    params = {**FAST, "max_iter": 1, "learning_rate_init": 1e-7, "tol": None}
    with pytest.warns(ConvergenceWarning, match="learned almost nothing"):
        AutoEncoder(2, **params).fit(counts + 10.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        AutoEncoder(2, loss="multinomial", **params).fit(counts + 10.0)


def test_a_fit_that_learned_does_not_warn():
    X = np.random.RandomState(0).normal(size=(200, 2)) @ np.random.RandomState(1).normal(
        size=(2, 8)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        AutoEncoder(2, max_iter=100, random_state=0, device="cpu").fit(X)


def test_recent_share_of_the_loss_decrease():
    from skae._checks import _recent_share

    assert _recent_share([10.0, 5.0, 2.0, 1.0], 2) == pytest.approx(4 / 9)
    assert _recent_share([10.0, 5.0, 2.0, 1.0, 1.0, 1.0], 2) == 0.0
    assert _recent_share([1.0, 2.0, 3.0], 2) == 0.0  # never fell
    assert _recent_share([1.0], 10) == 1.0


def test_max_iter_warns_only_while_the_loss_still_falls_notably(X_120x6):
    # A converged fit that runs into max_iter with the stopping rule undecided: quiet.
    X = X_120x6[:, :2] @ np.random.RandomState(1).normal(size=(2, 6))
    params = dict(n_components=2, hidden_layer_sizes=(), random_state=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ae = AutoEncoder(max_iter=150, tol=0.0, **params).fit(X)
    assert ae.n_iter_ == 150
    with pytest.warns(ConvergenceWarning, match="max_iter=3.*more epochs would still change"):
        AutoEncoder(max_iter=3, tol=0.0, **params).fit(X)

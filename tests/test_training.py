"""The one training path (skae._training, skae._checks): fit, partial_fit, a warm
start and the end-of-training checks, alike on every path."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from skorch.callbacks import Callback

from skae import AutoEncoder, SparseAutoEncoder
from skae.architectures import MLP, Recurrent

FAST = dict(hidden_layer_sizes=(8,), max_iter=4, batch_size=32, random_state=0, device="cpu")


@pytest.fixture
def X():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(120, 2)) @ rng.normal(size=(2, 6))).astype(np.float32)


def _state(est):
    weights = {k: v.clone() for k, v in est.module_.state_dict().items()}
    return weights, est.n_iter_, list(est.loss_curve_), est.get_params()["n_components"]


def _assert_same_state(est, before):
    weights, n_iter, curve, _ = before
    assert est.n_iter_ == n_iter and est.loss_curve_ == curve
    for k, v in est.module_.state_dict().items():
        assert torch.equal(v, weights[k])


# ----------------------------------------- continuing the fitted module


@pytest.mark.parametrize(
    "change, match",
    [
        ({"n_components": 4}, r"n_components is 4, but the fitted module was built with 2"),
        ({"hidden_layer_sizes": (16,)}, r"hidden_layer_sizes is \(16,\), but the fitted"),
        ({"architecture": Recurrent()}, r"architecture is a Recurrent, but the fitted module"),
    ],
)
def test_partial_fit_refuses_a_parameter_change_that_would_build_another_module(X, change, match):
    ae = AutoEncoder(2, **FAST).partial_fit(X)
    before = _state(ae)
    ae.set_params(**change)
    with pytest.raises(ValueError, match=match + r".*partial_fit continues the fitted module"):
        ae.partial_fit(X)
    _assert_same_state(ae, before)
    # Set back, training continues; the codes still have the fitted size.
    ae.set_params(n_components=2, hidden_layer_sizes=(8,), architecture=None).partial_fit(X)
    assert ae.transform(X).shape == (len(X), 2)


def test_partial_fit_accepts_an_equal_network_given_in_another_form(X):
    ae = AutoEncoder(2, **{**FAST, "hidden_layer_sizes": 8}).partial_fit(X)
    ae.set_params(hidden_layer_sizes=[8]).partial_fit(X)
    ae.set_params(architecture=MLP((8,))).partial_fit(X)
    assert ae.n_iter_ == 3


# ------------------------------------------------- end-of-training checks


@pytest.mark.parametrize("how", ["fit", "partial_fit"])
def test_dead_sparse_code_units_warn_on_every_path(how):
    X = np.random.RandomState(0).normal(size=(40, 5))
    ae = SparseAutoEncoder(3, sparsity_weight=10.0, learning_rate_init=0.01, **FAST)
    with pytest.warns(UserWarning, match=r"Only 0 of the 3 code units are ever non-zero"):
        if how == "fit":
            ae.set_params(max_iter=30, tol=None).fit(X)
        else:
            for _ in range(30):
                ae.partial_fit(X)
    assert (ae.transform(X) == 0).all()


class PoisonWeights(Callback):
    """Makes the weights non-finite after the per-epoch loss guard looked."""

    def on_train_end(self, net, **kwargs):
        with torch.no_grad():
            next(net.module_.parameters()).fill_(float("nan"))


def test_a_non_finite_model_is_refused_on_every_path(X):
    poisoned = {**FAST, "callbacks": [PoisonWeights()]}
    for how in ("fit", "partial_fit"):
        ae = AutoEncoder(2, **poisoned)
        with pytest.raises(FloatingPointError, match="weights or its loss on the training data"):
            getattr(ae, how)(X)
        assert not hasattr(ae, "net_")
    # A warm start that ends non-finite restores the weights it started from.
    ae = AutoEncoder(2, **FAST).fit(X)
    before = _state(ae)
    ae.set_params(callbacks=[PoisonWeights()], warm_start=True)
    with pytest.raises(FloatingPointError):
        ae.fit(X)
    _assert_same_state(ae, before)


def test_partial_fit_warns_when_the_loss_rises_across_calls(X):
    ae = AutoEncoder(2, **{**FAST, "learning_rate_init": 1e-3}).partial_fit(X)

    class Worse(Callback):
        def on_epoch_end(self, net, **kwargs):
            net.history.record("train_loss", 100.0)

    ae.set_params(callbacks=[Worse()])
    ae.net_.callbacks_.insert(0, ("worse", Worse()))  # the continued net's own list
    with pytest.warns(ConvergenceWarning, match="The training loss rose"):
        ae.partial_fit(X)


def test_a_check_is_disabled_by_its_name_as_skorch_does(X):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        AutoEncoder(2, **{**FAST, "callbacks": [("convergence_check", None)]}).fit(X)
    with pytest.warns(ConvergenceWarning, match="maximum iterations"):
        AutoEncoder(2, **FAST).fit(X)


def test_convergence_warning_points_at_the_callers_line(X):
    with pytest.warns(ConvergenceWarning) as record:
        AutoEncoder(2, **FAST).fit(X)
    assert record[0].filename == __file__


# ------------------------------------------------------------ interrupts


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
def test_an_interrupt_in_the_first_epoch_is_the_callers_own_exception(X, how):
    stop = Stop("the scheduler said stop")
    ae = AutoEncoder(2, **{**FAST, "callbacks": [RaiseOnBatch(stop)]})
    with pytest.raises(Stop, match="the scheduler said stop") as caught:
        getattr(ae, how)(X)
    assert caught.value is stop
    assert caught.value.__traceback__ is not None
    assert not hasattr(ae, "net_")


def test_an_interrupt_after_an_epoch_keeps_the_weights_and_names_the_exception(X):
    ae = AutoEncoder(2, **{**FAST, "callbacks": [RaiseOnBatch(Stop("later"), epoch=3)]})
    with pytest.warns(UserWarning, match=r"interrupted \(Stop\) after 2 complete epoch"):
        ae.fit(X)
    assert ae.n_iter_ == 2


# --------------------------------------------------------- mixed precision


def test_mixed_precision_with_a_recurrent_network_on_the_cpu_is_a_clear_error():
    X = np.random.default_rng(0).normal(size=(16, 5))
    arch = Recurrent(hidden_size=4)
    est = AutoEncoder(2, architecture=arch, mixed_precision=True, **FAST)
    with pytest.raises(ValueError, match="no bfloat16 kernels for recurrent layers"):
        est.fit(X)
    assert not hasattr(est, "net_")

"""How an estimator trains: the fit transaction, the skorch net, the loss, the data.

:meth:`BaseAutoEncoder._fit` is the one training path (``fit``,
``partial_fit``, a warm start, ``fit(ChunkedData)`` and data-parallel
training all go through it); this module holds the parts it assembles.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager

import torch
from skorch.callbacks import EarlyStopping, GradientNormClipping
from skorch.helper import predefined_split
from torch import nn

from ._batching import SparseRows, TensorDataset, split_rows
from ._callbacks import NonFiniteLossGuard, ProgressBar, silent
from ._checks import (
    LEARNED_NOTHING_RATIO,
    ConvergenceCheck,
    DivergenceCheck,
    FittedModelCheck,
    InterruptCheck,
)
from ._chunked import ChunkedData
from ._device import data_home, training_tensor
from ._net import SkaeNet


@contextmanager
def transaction(est):
    """All or nothing: an error inside leaves ``est`` exactly as it was.

    A failed fit (bad input, a diverging loss, an exception from a callback,
    Ctrl-C in the first epoch) restores the estimator's attributes and, since
    continued training updates the fitted net in place, its module's and
    optimizer's state and its history too.
    """
    before = dict(est.__dict__)
    net = before.get("net_")
    saved = None
    if net is not None:
        weights = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}
        optimizer = getattr(net, "optimizer_", None)
        optimizer = None if optimizer is None else copy.deepcopy(optimizer.state_dict())
        saved = weights, optimizer, len(net.history)
    try:
        yield
    except BaseException:
        est.__dict__.clear()
        est.__dict__.update(before)
        if saved is not None:
            weights, optimizer, n_epochs = saved
            net.module_.load_state_dict(weights)
            if optimizer is not None:
                net.optimizer_.load_state_dict(optimizer)
            del net.history[n_epochs:]
        raise


def training_data(
    est, X, arrays, device: torch.device, incremental: bool, weights=None, module=None
):
    """``(train, valid)`` datasets: a stream of ``X`` if it is a :class:`ChunkedData`,
    else the validated ``arrays``.

    ``weights`` (per-row sample weights, or None) make each training epoch
    draw its rows in proportion to them; the validation split is unweighted.
    Sparse training data give sparse batches when the family says ``module``
    multiplies them directly (``est._takes_sparse_batches``), dense ones otherwise.

    The training data go to the device once, unless they would take more
    than half of its free memory: then they stay on the host and batches are
    streamed. ``valid`` is the ``early_stopping`` split (never in
    ``partial_fit``, which holds nothing out), else None.
    """
    if isinstance(X, ChunkedData):
        if est.early_stopping and not incremental:
            raise ValueError(
                "early_stopping=True holds out a validation set in memory, which "
                "ChunkedData (streamed training data) does not allow; use "
                "early_stopping=False, or validate on a held-out array yourself."
            )

        def check(chunk):
            return est._validate_input(chunk, reset=False)

        return X._stream(check, arrays), None
    home = data_home(arrays, device)
    train = tuple(training_tensor(a, home, device) for a in arrays)
    if isinstance(train[0], SparseRows) and module is not None:
        train[0].sparse_batches = est._takes_sparse_batches(module)
    if weights is not None:
        weights = torch.as_tensor(weights, device=home)
    if incremental or not est.early_stopping:
        return TensorDataset(*train, weights=weights), None
    if weights is not None:  # split alongside the rows, then kept for training only
        train = (*train, weights)
    train, valid = split_rows(train, est.validation_fraction)
    if weights is not None:
        train, valid = (train[:-1], train[-1]), (valid[:-1], None)
        return TensorDataset(*train[0], weights=train[1]), TensorDataset(*valid[0])
    return TensorDataset(*train), TensorDataset(*valid)


def training_loss(est, module: nn.Module, device: torch.device):
    """``est._loss``, compiled and/or under bfloat16 autocast as the options ask."""
    loss_fn = est._loss
    if est.compile:
        loss_fn = torch.compile(loss_fn)
    if not est.mixed_precision:
        return loss_fn
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(
            "mixed_precision=True trains under bfloat16 autocast, which this "
            f"GPU ({torch.cuda.get_device_name(device)}) does not support; "
            "use mixed_precision=False."
        )
    if device.type == "cpu" and any(isinstance(m, nn.RNNBase) for m in module.modules()):
        raise ValueError(
            "mixed_precision=True trains under bfloat16 autocast, but on the CPU torch "
            "has no bfloat16 kernels for recurrent layers (LSTM/GRU); use "
            "mixed_precision=False on the CPU, or train on a CUDA device."
        )
    inner = loss_fn

    def autocast_loss(module, X, training):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return inner(module, X, training).float()

    return autocast_loss


# batch_size="auto": at least this many optimizer steps per epoch, in batches
# of AUTO_BATCH_MIN to AUTO_BATCH_MAX rows (see resolve_batch_size).
AUTO_STEPS_PER_EPOCH = 16
AUTO_BATCH_MIN = 8
AUTO_BATCH_MAX = 256
# Sequence networks clip each step's gradient to this norm (all parameters together).
SEQUENCE_GRADIENT_NORM = 1.0


def resolve_batch_size(batch_size, n_samples: int) -> int:
    """Rows per training batch: ``batch_size``, or the ``"auto"`` rule for ``n_samples`` rows.

    ``"auto"`` is ``n_samples // 16`` clipped to [8, 256] (and to
    ``n_samples``): every epoch of a set of 128 rows or more takes at least 16
    optimizer steps, so the budget ``max_iter`` epochs buys does not shrink to
    ``max_iter`` steps on a small set; large sets keep batches of 256 rows.
    """
    if batch_size != "auto":
        return int(batch_size)
    rows = min(max(n_samples // AUTO_STEPS_PER_EPOCH, AUTO_BATCH_MIN), AUTO_BATCH_MAX)
    return max(1, min(rows, n_samples))


class PlateauStopping(EarlyStopping):
    """skorch's ``EarlyStopping``, which does not stop a fit that has learned nothing yet.

    While the monitored loss is above ``floor`` (close to the mean
    predictor's error, see :data:`~skae._checks.LEARNED_NOTHING_RATIO`), an
    epoch without improvement does not count towards ``patience``: networks
    (recurrent ones above all) often sit on the mean predictor's plateau for
    a while before they leave it, and ``tol`` would stop them there. Such a
    fit runs up to ``max_iter`` epochs, then the convergence check says that
    it learned almost nothing. ``floor=None`` is skorch's rule.
    """

    def __init__(self, floor=None, **kwargs):
        super().__init__(**kwargs)
        self.floor = floor

    def on_epoch_end(self, net, **kwargs):
        score = net.history[-1, self.monitor]
        if self.floor is not None and score > self.floor and not self._is_score_improved(score):
            return  # still on the plateau: not a miss
        super().on_epoch_end(net, **kwargs)


def make_net(
    est,
    module: nn.Module,
    device: torch.device,
    valid=None,
    loss_fn=None,
    n_rows: int | None = None,
    reference: float | None = None,
) -> SkaeNet:
    """The skorch net that trains ``module``: Adam, the estimator's loss and callbacks.

    ``loss_fn`` defaults to :func:`training_loss`; a net rebuilt from a saved
    state takes the plain ``est._loss``. ``n_rows`` (the training rows, or a
    stream's first chunk) sets ``batch_size="auto"``; ``reference`` is the
    mean predictor's error on the training data (see
    :func:`~skae._checks.mean_predictor_mse`), the scale of ``tol`` and of the
    learned-nothing check, None where unknown.

    Callbacks run in list order at each epoch's end and at the end of
    training: the progress bar first (early stopping ends the epoch loop),
    then the stopping rule, the user's callbacks, and the end-of-training
    checks (see :mod:`skae._checks`). A user's callback named like one of
    skae's replaces it; ``(name, None)`` disables it.
    """
    advice = est._divergence_advice()
    batch_size = resolve_batch_size(est.batch_size, AUTO_BATCH_MAX if n_rows is None else n_rows)
    callbacks = {}
    if est.verbose:
        callbacks["progress_bar"] = ProgressBar(est.verbose, type(est).__name__)
    callbacks["nonfinite_guard"] = NonFiniteLossGuard(advice)
    if est._configured_architecture().input_kind == "sequence":
        # Recurrent networks meet steep cliffs in the loss (long products of
        # Jacobians through time): one clipped step cannot throw the weights
        # off a plateau the network was about to leave.
        callbacks["gradient_clipping"] = GradientNormClipping(SEQUENCE_GRADIENT_NORM)
    if est.early_stopping or est.tol is not None:
        floor = None
        if reference and est._loss_is_mse:
            floor = LEARNED_NOTHING_RATIO * reference
        callbacks["early_stopping"] = PlateauStopping(
            floor,
            monitor="valid_loss" if est.early_stopping else "train_loss",
            patience=est.n_iter_no_change,
            # tol is relative: a fraction of the loss's scale on these data.
            threshold=(est.tol or 0.0) * est._loss_scale(reference),
            threshold_mode="abs",
            # As MLPRegressor: keep the best weights when a validation set
            # decides, the last ones otherwise.
            load_best=est.early_stopping,
            sink=silent,
        )
    checks = {
        "interrupt_check": InterruptCheck(est.max_iter),
        "divergence_check": DivergenceCheck(est._loss, advice, batch_size),
        "fitted_model_check": FittedModelCheck(est._check_fitted_model, est._inference_rows()),
        "convergence_check": ConvergenceCheck(
            est.max_iter,
            advice,
            errors=est._errors if est._squared_error_shows_learning else None,
            reference=reference,
            rows=batch_size,
            advice_learn=est._learning_advice(batch_size),
        ),
    }
    for i, cb in enumerate(est.callbacks or []):
        name, cb = cb if isinstance(cb, tuple) else (f"user_{i}", cb)
        if name in checks:
            checks[name] = cb
        else:
            callbacks[name] = cb
    callbacks.update(checks)
    return SkaeNet(
        module=module,
        criterion=torch.nn.MSELoss,  # unused: the loss is the estimator's _loss
        loss_fn=training_loss(est, module, device) if loss_fn is None else loss_fn,
        reconstruct_fn=est._reconstruct,
        optimizer=torch.optim.Adam,
        lr=est.learning_rate_init,
        optimizer__weight_decay=est.alpha,
        max_epochs=est.max_iter,
        batch_size=batch_size,
        train_split=None if valid is None else predefined_split(valid),
        callbacks=[(name, cb) for name, cb in callbacks.items() if cb is not None],
        device=str(device),
    )


def continue_incrementally(net: SkaeNet) -> None:
    """Make a fitted net train one epoch a call, as ``partial_fit`` does.

    A model fitted with a validation split or a stopping rule continues
    without them: ``partial_fit`` holds nothing out, and the caller decides
    when to stop. The convergence check then only looks for a rising loss.
    """
    net.train_split = None
    for attr in ("callbacks", "callbacks_"):
        kept = [(n, cb) for n, cb in getattr(net, attr, []) if n != "early_stopping"]
        for _, cb in kept:
            if isinstance(cb, ConvergenceCheck):
                cb.max_iter = None
            if isinstance(cb, ProgressBar):
                cb.total = 1
        setattr(net, attr, kept)

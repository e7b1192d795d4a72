"""Checks around training: parameters, the module a fit continues, how training ended.

The parameter checks run before any training. The end-of-training checks are
skorch callbacks that every fit carries (``fit``, ``partial_fit``, a warm
start, ``fit(ChunkedData)``, data-parallel training): they run at the end
of each training call, in this order, after the progress bar closes.

* ``interrupt_check`` (:class:`InterruptCheck`): Ctrl-C (or any
  ``KeyboardInterrupt``) before an epoch completed re-raises that very
  exception, so ``fit`` restores the estimator; after one, a warning.
* ``divergence_check`` (:class:`DivergenceCheck`): non-finite weights, or a
  non-finite loss on the first training batch, raise ``FloatingPointError``.
* ``fitted_model_check`` (:class:`FittedModelCheck`): the family's own
  warning about a valid but unhelpful model (e.g. dead sparse code units).
* ``convergence_check`` (:class:`ConvergenceCheck`): ``ConvergenceWarning``
  when the loss rose or ``max_iter`` ran out before the stopping rule decided.

A user disables one by passing ``callbacks=[("convergence_check", None)]``,
or replaces it with a callback of that name.
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval
from skorch.callbacks import Callback, EarlyStopping
from skorch.callbacks.scoring import ScoringBase

from ._batching import TensorBatchIterator, TensorDataset
from ._chunked import ChunkedData, ChunkStream
from ._device import FLOAT32_MAX, to_device
from ._inference import batch_rows
from .architectures import Architecture

# Warnings point at the user's line: the first frame outside these packages.
_INTERNAL = tuple(
    os.path.dirname(os.path.abspath(m.__file__)) + os.sep
    for m in (sys.modules["skae"], sys.modules["skorch"], sys.modules["sklearn"])
)


def warn(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` attributed to the first caller outside skae, skorch and sklearn."""
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(_INTERNAL):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


# ------------------------------------------------------------- parameters


def check_params(est) -> None:
    """What ``_parameter_constraints`` cannot say: no bools for numbers,
    numbers float32 can hold, callbacks that are skorch callbacks."""
    for name, constraints in est._parameter_constraints.items():
        value = getattr(est, name)
        numeric = [c for c in constraints if isinstance(c, Interval)]
        if not numeric or "boolean" in constraints:
            continue
        if isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name} must be a number, got the bool {value!r}.")
        if isinstance(value, Real) and abs(value) > FLOAT32_MAX:
            raise ValueError(
                f"{name}={value!r} is beyond float32's range ({FLOAT32_MAX:.3g}), "
                "in which skae computes."
            )
    for i, cb in enumerate(est.callbacks or []):
        named = isinstance(cb, tuple) and len(cb) == 2 and isinstance(cb[0], str)
        inner = cb[1] if named else cb
        is_callback = (named and inner is None) or (
            isinstance(inner, Callback) or (isinstance(inner, type) and issubclass(inner, Callback))
        )
        if not is_callback:
            raise ValueError(
                "callbacks must hold skorch callbacks (skorch.callbacks.Callback "
                f"instances), (name, callback) tuples, or (name, None) to disable one "
                f"of skae's checks; callbacks[{i}] is {cb!r}."
            )


# The estimator parameters that describe the default network (architecture=None).
DEFAULT_NETWORK_PARAMS = ("hidden_layer_sizes", "activation")


def check_network_params(est) -> None:
    """Refuse ``hidden_layer_sizes``/``activation`` that an ``architecture`` would ignore.

    They build the default network only (``architecture=None``); an
    architecture brings its own parameters. A value other than the default,
    set next to an architecture whose own parameter of that name differs (or
    that has none), would be silently ignored, so it is an error. A default
    value is indistinguishable from none and passes.
    """
    arch = getattr(est, "architecture", None)
    if arch is None or "architecture" not in est._parameter_constraints:
        return
    defaults = inspect.signature(type(est).__init__).parameters
    arch_params = arch.get_params(deep=False) if hasattr(arch, "get_params") else {}
    ignored = {
        key: getattr(est, key)
        for key in DEFAULT_NETWORK_PARAMS
        if key in defaults
        and not _same_value(getattr(est, key), defaults[key].default)
        and not (key in arch_params and _same_value(getattr(est, key), arch_params[key]))
    }
    if not ignored:
        return
    name = type(arch).__name__
    own = {key: value for key, value in ignored.items() if key in arch_params}
    advice = []
    if own:
        try:
            example = f", e.g. architecture={clone(arch).set_params(**own)!r}"
        except Exception:  # an own architecture that does not clone: name the parameter only
            example = ""
        advice.append(
            f"Set {' and '.join(own)} on the architecture instead{example} (in a search, "
            + " and ".join(f"architecture__{key}" for key in own)
            + ")."
        )
    missing = [key for key in ignored if key not in own]
    if missing:
        advice.append(
            f"{name} has no {' or '.join(missing)}: its own parameters "
            f"({', '.join(sorted(arch_params)) or 'none'}) set its network."
        )
    settings = ", ".join(f"{key}={value!r}" for key, value in ignored.items())
    raise ValueError(
        f"{settings} would be ignored: {' and '.join(DEFAULT_NETWORK_PARAMS)} only "
        f"configure the default network (architecture=None), and architecture={arch!r} "
        f"is set. {' '.join(advice)} Leave {' and '.join(ignored)} at the default. To "
        "search over both kinds of network, give the search a list of grids: one with "
        "architecture=[None] and the default network's parameters, one with the architecture."
    )


def _same_value(value, other) -> bool:
    """Whether two values of a network parameter are equal (an int width is a 1-tuple)."""

    def normal(v):
        is_int = isinstance(v, Integral) and not isinstance(v, (bool, np.bool_))
        return plain((v,) if is_int else v)

    try:
        return bool(normal(value) == normal(other))
    except (TypeError, ValueError):
        return False


def check_monitors(est, validation: bool) -> None:
    """Refuse a user callback that watches validation scores no fit will record.

    skorch's ``EarlyStopping``, ``Checkpoint``, ``LRScheduler`` (and any callback
    with a ``monitor``) read a history key each epoch; ``valid_*`` keys exist
    only when ``validation`` (``early_stopping=True`` in ``fit``), else skorch
    fails mid-fit with a bare ``KeyError``.
    """
    if validation:
        return
    which = (
        "partial_fit holds out no validation set"
        if est.early_stopping
        else "early_stopping=False, so no validation set is held out"
    )
    remedy = (
        f"Set early_stopping=True (it holds out validation_fraction="
        f"{est.validation_fraction} of the rows and records 'valid_loss')"
    )
    for i, cb in enumerate(est.callbacks or []):
        cb = cb[1] if isinstance(cb, tuple) else cb
        monitor = getattr(cb, "monitor", None)
        if isinstance(cb, ScoringBase) and not cb.on_train:
            raise ValueError(
                f"callbacks[{i}] ({type(cb).__name__}) scores the validation set "
                f"(on_train=False), but this fit has none ({which}). {remedy}, or "
                "score the training data with on_train=True."
            )
        if isinstance(monitor, str) and monitor.startswith("valid_"):
            raise ValueError(
                f"callbacks[{i}] ({type(cb).__name__}) monitors {monitor!r}, which this "
                f"fit does not record ({which}). {remedy}, or monitor a training key "
                f"such as {monitor.replace('valid_', 'train_', 1)!r}."
            )


def check_weights(sample_weight, X, arrays) -> np.ndarray | None:
    """``sample_weight`` of a fit, checked: float64 weights, or None when they change nothing.

    Equal weights are the same as none (so a seeded fit gives the same model).
    """
    if sample_weight is None:
        return None
    if isinstance(X, ChunkedData):
        raise ValueError(
            "sample_weight cannot be given with a ChunkedData (streamed training "
            "data); fit an array, or repeat rows in the stream to weight them."
        )
    n_samples = arrays[0].shape[0]
    if isinstance(sample_weight, torch.Tensor):  # n floats to the host: the data stay put
        sample_weight = sample_weight.detach().cpu().numpy()
    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"sample_weight must be an array of numbers: {exc}") from exc
    if weights.shape != (n_samples,):
        raise ValueError(
            f"sample_weight has shape {weights.shape}; expected ({n_samples},), one "
            "weight per sample of X."
        )
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("sample_weight must be finite and non-negative.")
    if weights.sum() <= 0:
        raise ValueError(
            "sample_weight is zero for every sample; at least one sample needs a positive weight."
        )
    return None if np.all(weights == weights[0]) else weights


# ----------------------------------------------- the module a fit continues


def plain(value):
    """A parameter value in a form that compares by value."""
    if hasattr(value, "get_params"):
        params = (
            value._signature() if isinstance(value, Architecture) else value.get_params(deep=False)
        )
        return (type(value).__qualname__, {k: plain(v) for k, v in params.items()})
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def module_signature(est) -> dict:
    """The values of the estimator's ``_module_params`` and of its network's parameters."""
    signature = {name: plain(getattr(est, name)) for name in est._module_params}
    signature["architecture"] = plain(est._configured_architecture())
    return signature


def check_same_module(est, how: str) -> None:
    """Refuse to continue the fitted module with parameters that would build another.

    ``how`` names the way training continues (``"warm_start=True"`` or
    ``"partial_fit"``) in the message.
    """
    fitted = getattr(est, "_fitted_module_params", None)
    if fitted is None:
        return
    for name, value in module_signature(est).items():
        if fitted.get(name, value) == value:
            continue
        if name == "architecture":
            what = _describe_network_change(est, fitted[name], value)
        else:
            what = f"{name} is {value!r}, but the fitted module was built with {fitted[name]!r}"
        fresh = (
            "Set warm_start=False (or use sklearn.base.clone) to fit a new one."
            if how == "warm_start=True"
            else "Use fit (or sklearn.base.clone) to start a new one."
        )
        raise ValueError(f"{what}: {how} continues the fitted module and cannot change it. {fresh}")


def _describe_network_change(est, before, now) -> str:
    """Which of the network's parameters a continued fit would change, in words."""
    (kind_before, params_before), (kind_now, params_now) = before, now
    if kind_before != kind_now:
        return f"architecture is a {kind_now}, but the fitted module is a {kind_before}"
    # The default network's parameters are the estimator's own.
    prefix = "" if est.architecture is None else "architecture__"
    name = next(k for k in params_now if params_now[k] != params_before.get(k))
    return (
        f"{prefix}{name} is {params_now[name]!r}, but the fitted module was built "
        f"with {params_before.get(name)!r}"
    )


def check_same_input(shape: tuple, fitted: tuple, sequential: bool, how: str) -> None:
    """Refuse a continued fit on samples of another shape than the fitted model's.

    Sequences may change length between fits; their features per step may not.
    """
    same = len(shape) == len(fitted) and (
        shape[1:] == fitted[1:] if sequential else tuple(shape) == tuple(fitted)
    )
    if not same:
        now, before = _describe_shape(shape, sequential), _describe_shape(fitted, sequential)
        raise ValueError(f"X has {now}, but {how} continues a model fitted on {before}.")


def _describe_shape(shape, sequential: bool) -> str:
    if sequential:
        return f"sequences of {shape[-1]} features per time step"
    if len(shape) == 1:
        return f"{shape[0]} features"
    return f"samples of shape {tuple(shape)}"


# ------------------------------------------------------ end of training


def check_batches(net, dataset, batch_size: int):
    """Batches of the training data for the end-of-training checks, in order.

    The whole in-memory training set, or the first chunk of a stream.
    """
    if isinstance(dataset, ChunkStream):
        tensors = tuple(to_device(a, torch.device(net.device)) for a in dataset.first)
    elif isinstance(dataset, TensorDataset):
        tensors = dataset.tensors
    else:
        return iter(())
    rows = min(batch_size, batch_rows(tensors[0], heavy=False))
    return iter(TensorBatchIterator(tensors, rows, shuffle=False, device=net.device))


class InterruptCheck(Callback):
    """Ctrl-C in the first epoch of a call re-raises it; later, warn and keep the weights.

    Parameters
    ----------
    max_iter : int
        The estimator's epoch budget, quoted in the warning.
    """

    def __init__(self, max_iter: int):
        self.max_iter = max_iter

    def on_train_begin(self, net, **kwargs):
        self.epochs_before_ = len(net.history)

    def on_train_end(self, net, **kwargs):
        interrupt = getattr(net, "interrupt_", None)
        if interrupt is None or net.stopped_early():
            return
        completed = len(net.history) - self.epochs_before_
        if completed == 0:
            # The caller's exception itself, with its type, message and traceback.
            raise interrupt
        warn(
            f"fit was interrupted ({type(interrupt).__name__}) after {completed} complete "
            f"epoch(s) of max_iter={self.max_iter}; the estimator keeps the weights "
            "reached when it was interrupted.",
            UserWarning,
        )


class DivergenceCheck(Callback):
    """Refuse a model with non-finite weights, or a non-finite loss on training data.

    The per-epoch guard sees the mean loss of each epoch; this check sees the
    weights after the last step, which can diverge after the guard looked.

    Parameters
    ----------
    loss : callable
        ``loss(module, batch, training)``, the estimator's plain loss.
    advice : str
        What to try, said in the error.
    rows : int
        Rows of the training data the loss is computed on (a training batch).
    """

    def __init__(self, loss, advice: str, rows: int):
        self.loss = loss
        self.advice = advice
        self.rows = rows

    def on_train_end(self, net, X=None, **kwargs):
        module = net.module_
        finite = all(bool(torch.isfinite(p).all()) for p in module.parameters())
        first = next(check_batches(net, X, self.rows), None)
        if finite and first is not None:
            with torch.no_grad():
                finite = bool(torch.isfinite(self.loss(module, first, False)))
        if not finite:
            raise FloatingPointError(
                "Training diverged: the fitted model's weights or its loss on the "
                f"training data are not finite. {self.advice}"
            )


class FittedModelCheck(Callback):
    """A family's warning about a model that is valid but unhelpful.

    Parameters
    ----------
    check : callable
        ``check(module, batches)`` with ``batches`` an iterator over the
        training data (see :func:`check_batches`); it warns or does nothing.
    batch_size : int
        Rows per batch it gets.
    """

    def __init__(self, check, batch_size: int):
        self.check = check
        self.batch_size = batch_size

    def on_train_end(self, net, X=None, **kwargs):
        net.module_.eval()
        with torch.no_grad():
            self.check(net.module_, check_batches(net, X, self.batch_size))


class ConvergenceCheck(Callback):
    """``ConvergenceWarning`` when the loss rose, or ``max_iter`` ran out undecided.

    Parameters
    ----------
    max_iter : int or None
        The epoch budget; None (``partial_fit``, where the caller decides
        when to stop) checks only for a rising loss.
    advice : str
        What to try when the loss rose.
    """

    def __init__(self, max_iter: int | None, advice: str):
        self.max_iter = max_iter
        self.advice = advice

    def on_train_end(self, net, **kwargs):
        # All the epochs of this net: a fit's, or every partial_fit call's so far.
        curve = [row["train_loss"] for row in net.history if "train_loss" in row]
        if len(curve) >= 2 and curve[-1] > curve[0] + abs(curve[0]):
            warn(
                f"The training loss rose from {curve[0]:.4g} (first epoch) to "
                f"{curve[-1]:.4g} (last epoch): the fit diverged. {self.advice}",
                ConvergenceWarning,
            )
            return
        has_rule = any(isinstance(cb, EarlyStopping) for _, cb in net.callbacks_)
        ran_out = self.max_iter is not None and len(curve) == self.max_iter
        if has_rule and ran_out and not net.stopped_early():
            warn(
                f"Stochastic optimizer: maximum iterations (max_iter={self.max_iter}) "
                "reached and the optimization hasn't converged yet.",
                ConvergenceWarning,
            )

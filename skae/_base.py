"""What every skae estimator shares: validation, seeding, devices, the skorch
fit, batched inference, scores, tags and feature names.

A family subclasses :class:`BaseAutoEncoder` and says only what is special
about it: ``_build_module`` (its torch module), and where they differ from a
plain autoencoder, ``_loss`` (its training loss) and ``_score_batch`` (how a
sample is scored).
"""

from __future__ import annotations

import copy
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
    clone,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted
from skorch.callbacks import Callback, EarlyStopping
from skorch.helper import predefined_split
from skorch.history import History

from . import _inputs
from ._batching import SparseRows, TensorDataset, split_rows
from ._callbacks import NonFiniteLossGuard, ProgressBar, silent
from ._chunked import ChunkedData
from ._inputs import FLOAT_DTYPES
from ._modules import ACTIVATIONS, Network
from ._net import SkaeNet
from .architectures import MLP, Architecture

# Rows per inference batch. Inference holds no gradients, so it can take
# bigger batches than training; memory stays bounded by this, not by the input.
INFERENCE_BATCH_ROWS = 8192
# Rows per inference batch for images, signals and sequences, whose rows are heavier.
INFERENCE_BATCH_ROWS_ND = 1024
# Sparse input is densified one batch at a time; this bounds a dense inference
# batch (64 MiB of float32) however wide the rows (e.g. 2**20 hashed columns).
INFERENCE_BATCH_ELEMENTS = 2**24

# Largest finite float32: skae computes in float32, so larger inputs would
# silently become inf on the device.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def resolve_device(device) -> torch.device:
    """Turn the ``device`` parameter into a :class:`torch.device`.

    ``"auto"`` means CUDA when :func:`torch.cuda.is_available`, else the CPU.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    expected = "expected 'auto', 'cpu', 'cuda' or 'cuda:<index>'"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device; {expected}.") from exc
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            f"device={device!r} asks for Apple's MPS backend, which this torch build or "
            f"machine does not offer; {expected}."
        )
    if resolved.type not in ("cpu", "cuda", "mps"):
        raise ValueError(
            f"device={device!r} is a {resolved.type!r} device, on which skae cannot "
            f"train or infer; {expected}."
        )
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} asks for CUDA, but torch.cuda.is_available() is "
            "False on this machine; use device='auto' or 'cpu'."
        )
    return resolved


def _check_float32_range(a: np.ndarray, name: str = "X") -> None:
    """Reject finite values that float32, the computing dtype, cannot hold."""
    if a.dtype != np.float64 or a.size == 0:
        return
    # max and -min instead of abs(a).max(): no temporary copy of a.
    largest = max(float(a.max()), -float(a.min()))
    if largest > FLOAT32_MAX:
        raise ValueError(
            f"{name} has values beyond float32's range (largest magnitude "
            f"{largest:.3g} > {FLOAT32_MAX:.3g}); skae computes in float32. "
            "Scale the data first (e.g. StandardScaler)."
        )


def _to_device(a: np.ndarray, device: torch.device, densify_on=None) -> torch.Tensor:
    """Float arrays become float32 tensors on ``device``; others keep their dtype.

    A scipy sparse matrix stays sparse on ``device``, as
    :class:`~skae._batching.SparseRows` whose row batches come out dense on
    ``densify_on`` (default ``device``).
    """
    if sp.issparse(a):
        _check_float32_range(a.data)
        return SparseRows.from_scipy(a, device, densify_on)
    _check_float32_range(a)
    # torch takes neither negative strides (X[::-1]) nor, without a warning,
    # read-only arrays (e.g. joblib memmaps); copy those.
    a = np.ascontiguousarray(a)
    tensor = torch.from_numpy(a if a.flags.writeable else a.copy())
    dtype = torch.float32 if tensor.is_floating_point() else tensor.dtype
    return tensor.to(device=device, dtype=dtype)


def _fits_on_device(arrays, device: torch.device) -> bool:
    """Whether the training arrays (as float32) fit in half the device's free memory."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    needed = sum(_device_bytes(a) for a in arrays)
    return needed <= free // 2


def _plain(value):
    """A parameter value in a form that compares by value (for warm starts)."""
    if hasattr(value, "get_params"):
        params = (
            value._signature() if isinstance(value, Architecture) else value.get_params(deep=False)
        )
        return (type(value).__qualname__, {k: _plain(v) for k, v in params.items()})
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _plain_row(row: dict) -> dict:
    """A history row with NumPy scalars turned into Python numbers."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in row.items()}


def _device_bytes(a) -> int:
    """Bytes that ``_to_device`` takes for ``a`` (float32 values)."""
    if sp.issparse(a):  # float32 values, int32 column indices, int64 row pointers
        return 8 * a.nnz + 8 * (a.shape[0] + 1)
    return a.size * (4 if a.dtype.kind == "f" else a.itemsize)


def _first_rows(train, arrays) -> tuple[torch.Tensor, ...]:
    """Tensors whose first rows check the fitted model (a ChunkedData's first chunk)."""
    if isinstance(train, TensorDataset):
        return train.tensors
    rows = (torch.from_numpy(np.array(a[:4096])) for a in arrays)  # a copy: memmaps are read-only
    return tuple(t.float() if t.is_floating_point() else t for t in rows)


def _forked_rng(device: torch.device):
    """Fork torch's global RNG on ``device`` so seeding a fit leaves the user's alone."""
    cuda = [device.index or 0] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=cuda)


def _shape_differs(shape: tuple, before: tuple | None, sequential: bool) -> bool:
    """Whether a warm start's sample shape differs from the fitted one.

    Sequences may change length between fits; their features per step may not.
    """
    if before is None or len(shape) != len(before):
        return True
    return shape[1:] != before[1:] if sequential else shape != before


def _describe_shape(shape, sequential: bool = False) -> str:
    """``shape`` of a sample in words for a message."""
    if sequential:
        return f"sequences of {shape[-1]} features per time step"
    if shape is not None and len(shape) == 1:
        return f"{shape[0]} features"
    return f"samples of shape {shape}"


def _split_batch(batch):
    """``(X, lengths)`` of a batch; ``lengths=None`` for fixed-size samples."""
    return batch if isinstance(batch, tuple) else (batch, None)


def _trim(X: torch.Tensor, lengths) -> torch.Tensor:
    """Cut padded sequences ``X`` to the longest of the batch (one host-device sync)."""
    return X if lengths is None else X[:, : int(lengths.max())]


def _valid_steps(err: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mask of the real (unpadded) time steps, broadcastable to ``err`` (batch, time, ...)."""
    valid = torch.arange(err.shape[1], device=err.device) < lengths[:, None]
    return valid.view(*valid.shape, *([1] * (err.ndim - 2)))


def _n_real(err: torch.Tensor, lengths) -> torch.Tensor:
    """Number of real elements of each sample of ``err``."""
    per_sample = err[0].numel()
    if lengths is None:
        return torch.full((len(err),), per_sample, device=err.device)
    return lengths * (per_sample // err.shape[1])


def _sample_mean(err: torch.Tensor, lengths=None) -> torch.Tensor:
    """Mean of each sample's real elements: (batch,)."""
    if lengths is None:
        return err.flatten(1).mean(dim=1)
    return err.flatten(1).sum(dim=1) / _n_real(err, lengths)


def _batch_mean(err: torch.Tensor, lengths=None) -> torch.Tensor:
    """Mean over all real elements of a batch: a scalar."""
    if lengths is None:
        return err.mean()
    return err.sum() / _n_real(err, lengths).sum()


class BaseAutoEncoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Base class of the skae autoencoders; not for direct use.

    See :class:`skae.AutoEncoder` for the parameters every family shares.
    """

    # Rows per inference batch of a table; images, signals and sequences,
    # whose rows are heavier, take at most INFERENCE_BATCH_ROWS_ND.
    _inference_batch_rows = INFERENCE_BATCH_ROWS

    # The constructor parameters that define the torch module. A warm start
    # reuses the fitted module, so it refuses a change in any of them; a
    # family extends the tuple with its own (e.g. ``k``, ``likelihood``).
    # (The network's own parameters count through ``architecture``, or, when it
    # is None, through the default network's.)
    _module_params: tuple[str, ...] = ("n_components",)

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "architecture": [Architecture, None],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "device": [str, torch.device],
        "callbacks": [list, None],
        "mixed_precision": ["boolean"],
        "compile": ["boolean"],
    }

    def __init__(
        self,
        n_components=8,
        *,
        architecture=None,
        hidden_layer_sizes=(64,),
        activation="relu",
        alpha=0.0,
        batch_size=256,
        learning_rate_init=1e-3,
        max_iter=200,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        warm_start=False,
        random_state=None,
        verbose=0,
        device="auto",
        callbacks=None,
        mixed_precision=False,
        compile=False,
    ):
        self.n_components = n_components
        self.architecture = architecture
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.callbacks = callbacks
        self.mixed_precision = mixed_precision
        self.compile = compile

    # ----------------------------------------------------------------- hooks

    def _default_architecture(self) -> Architecture:
        """The network when ``architecture=None``: an MLP from the estimator's parameters."""
        return MLP(self.hidden_layer_sizes, self.activation)

    def _configured_architecture(self) -> Architecture:
        """``architecture``, or the default one when it is None."""
        return self._default_architecture() if self.architecture is None else self.architecture

    def _resolve_architecture(self) -> Architecture:
        """A fresh copy of the architecture the next fit builds its module from."""
        return clone(self._configured_architecture())

    @property
    def _sequential(self) -> bool:
        return self.architecture_.input_kind == "sequence"

    def _n_encoder_outputs(self) -> int:
        """Values per sample the architecture's encoder emits (the VAE asks for more)."""
        return self.n_components

    def _build_network(self, input_shape: tuple) -> torch.nn.Module:
        """The architecture's module for ``input_shape``, built for this objective."""
        return self.architecture_.build(
            tuple(input_shape), self.n_components, self._n_encoder_outputs()
        )

    def _build_module(self, input_shape: tuple) -> torch.nn.Module:
        """Return a fresh torch module with ``encode`` and ``decode`` methods."""
        return Network(self._build_network(input_shape), self._sequential)

    def _errors(self, module, X, lengths=None, X_in=None, exact=False):
        """Squared reconstruction error of each element: ``(errors, lengths)``.

        ``errors`` has the shape of ``X`` (batch, *input_shape), but for
        variable-length sequences the time axis is cut to the longest
        sequence of the batch and padded steps are exactly 0, so neither a
        loss nor a score ever sees padding. ``X_in`` (e.g. a corrupted
        batch) is what the module encodes instead of ``X``.
        """
        X = _trim(X, lengths)
        X_in = X if X_in is None else _trim(X_in, lengths)
        z = module.encode(X_in, lengths)
        return self._decode_errors(module, z, X, lengths, exact), lengths

    def _decode_errors(self, module, z, X, lengths=None, exact=False) -> torch.Tensor:
        """Squared error of each element of the decoded codes ``z`` against ``X`` (trimmed).

        ``exact=True`` computes it in float64, where squares of float32 values
        cannot overflow (scores of inputs far outside the training scale).
        """
        X_hat = module.decode(z, X.shape[1] if self._sequential else None)
        if exact:
            X_hat, X = X_hat.double(), X.double()
        err = (X_hat - X) ** 2
        if lengths is not None:
            err = torch.where(_valid_steps(err, lengths), err, 0.0)
        return err

    def _reconstruct(self, module, X, lengths=None) -> torch.Tensor:
        """Decode the codes of the batch ``X`` back to its shape."""
        return module.decode(module.encode(X, lengths), X.shape[1] if self._sequential else None)

    def _loss(self, module, batch, training: bool) -> torch.Tensor:
        """Training loss of one batch: mean squared reconstruction error."""
        X, lengths = _split_batch(batch)
        if lengths is None:  # one fused kernel for the common case
            return F.mse_loss(self._reconstruct(module, X), X)
        return _batch_mean(*self._errors(module, X, lengths))

    def _score_batch(self, module, X: torch.Tensor, lengths=None) -> torch.Tensor:
        """Per-sample score of one batch, higher = more normal."""
        # In float64: squares of float32 values above ~1.8e19 overflow float32.
        return -_sample_mean(*self._errors(module, X, lengths, exact=True))

    def _check_values(self, X: np.ndarray) -> None:
        """Reject values the family cannot model (after the generic checks)."""

    def _prepare_fit(self, X: np.ndarray, lengths: np.ndarray | None = None) -> None:
        """Check parameter combinations; set fitted state that depends on the data.

        Called by ``fit`` with the validated training arrays (those that
        ``_validate_input`` returns), before the module is built (or reused,
        with ``warm_start``).
        """

    def _read_input(self, X, *, reset: bool):
        """Check ``X`` at a public boundary: ``(arrays, form)``, see :func:`_inputs.read`."""
        arrays, form = _inputs.read(self, X, reset=reset, architecture=self.architecture_)
        self._check_values(arrays[0])
        return arrays, form

    def _validate_input(self, X, *, reset: bool) -> tuple[np.ndarray, ...]:
        """Check ``X`` at a public boundary; return the aligned arrays the module takes.

        A table gives ``(X,)``, images and signals ``(X,)`` with a channel
        axis, variable-length sequences ``(padded, lengths)``. ``reset=True``
        (in ``fit``) records ``n_features_in_`` and ``input_shape_``;
        otherwise the input is checked against them.
        """
        return self._read_input(X, reset=reset)[0]

    def _as_fit_form(self, out: np.ndarray, lengths=None):
        """Per-sample outputs of shape (n, *input_shape) in the training input's form."""
        return _inputs.as_form(out, self._fit_form, lengths)

    # -------------------------------------------------------------- fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the autoencoder to ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.

        Raises
        ------
        FloatingPointError
            If training diverges (a non-finite loss, or non-finite final
            weights). Like any error in ``fit`` (an exception from a callback,
            Ctrl-C in the first epoch), it leaves the estimator, weights
            included, exactly as it was before the call.

        Warns
        -----
        ConvergenceWarning
            If the training loss ends above twice where it began, or
            ``max_iter`` epochs ran before the stopping rule decided.
        UserWarning
            If Ctrl-C interrupted training after at least one complete epoch:
            the estimator keeps the weights reached then.
        """
        # A failed fit (bad input, diverging loss, an exception from a
        # callback, Ctrl-C in the first epoch) leaves the estimator exactly as
        # it was, never half-fitted. A warm start trains the fitted module in
        # place, so its weights are restored too.
        before = dict(self.__dict__)
        weights = self._snapshot_weights()
        try:
            self._fit(X)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            if weights is not None:
                self.net_.module_.load_state_dict(weights)
            raise
        return self

    def _snapshot_weights(self) -> dict | None:
        """A copy of the fitted module's weights, or None before the first fit."""
        if "net_" not in self.__dict__:
            return None
        return {k: v.detach().clone() for k, v in self.net_.module_.state_dict().items()}

    def _fit(self, X) -> None:
        self._check_params()
        warm = self.warm_start and hasattr(self, "net_")
        shape_before = getattr(self, "input_shape_", None)
        if warm:
            self._check_warm_start(self._module_signature())
        # The architecture the module is built from is fitted state, and it
        # reads the input: a warm start keeps the previous fit's network.
        if not warm:
            self.architecture_ = self._resolve_architecture()
        chunked = isinstance(X, ChunkedData)
        arrays = self._validate_input(X.first_chunk() if chunked else X, reset=True)
        if warm and _shape_differs(self.input_shape_, shape_before, self._sequential):
            now = _describe_shape(self.input_shape_, self._sequential)
            before = _describe_shape(shape_before, self._sequential)
            raise ValueError(
                f"X has {now}, but warm_start=True continues a model fitted on {before}."
            )
        self._prepare_fit(*arrays)
        device = resolve_device(self.device)
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)

        with _forked_rng(device):
            torch.manual_seed(seed)
            module = self.net_.module_ if warm else self._new_module(self.input_shape_)
            train, valid = self._training_data(X if chunked else arrays, device)
            net = self._make_net(module, device, valid)
            try:
                net.fit(train)
            finally:
                # Compiled or autocast wrappers do not pickle; the fitted net
                # keeps the plain loss.
                net.loss_fn = self._loss
            stopped = self._end_of_training(net, _first_rows(train, arrays))

        history = net.history
        loss_curve = list(history[:, "train_loss"])
        scores = [-v for v in history[:, "valid_loss"]] if self.early_stopping else []
        self._warn_if_not_converged(loss_curve, stopped)
        if warm:
            loss_curve = self.loss_curve_ + loss_curve
            scores = getattr(self, "validation_scores_", []) + scores
        self.net_ = net
        self._fitted_module_params = self._module_signature()
        self.n_iter_ = len(loss_curve)
        self.loss_curve_ = loss_curve
        if self.early_stopping:
            self.validation_scores_ = scores
            self.best_validation_score_ = max(scores)
        self._n_features_out = self.n_components
        self._check_fitted_model(*arrays)

    def partial_fit(self, X, y=None):
        """Train one pass (one epoch) over ``X``, continuing the current model.

        scikit-learn's incremental convention, as
        :meth:`sklearn.neural_network.MLPRegressor.partial_fit`: each call runs
        one epoch over the chunk ``X`` in shuffled mini-batches, and the Adam
        optimizer's state (moments, step count) carries over between calls.
        The first call builds the model and fixes ``n_features_in_`` and
        ``input_shape_``; later chunks must match them.

        ``early_stopping`` and ``tol`` are ignored (no validation split is
        held out, and no call stops early): the caller decides when to stop.
        ``max_iter`` is ignored too. On a model fitted by :meth:`fit`,
        ``partial_fit`` continues training it; a later :meth:`fit` starts over
        unless ``warm_start=True``. With a ``random_state``, the same sequence
        of chunks gives the same model. A pickled (or skops-saved) model
        keeps its weights but not the optimizer's state: ``partial_fit``
        after loading continues from the weights with fresh Adam moments.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            One chunk of training data, in the form :meth:`fit` takes.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The updated estimator.

        Examples
        --------
        >>> import numpy as np
        >>> from skae import AutoEncoder
        >>> X = np.random.default_rng(0).normal(size=(200, 6))
        >>> ae = AutoEncoder(n_components=2, random_state=0)
        >>> for chunk in np.array_split(X, 4):
        ...     ae = ae.partial_fit(chunk)
        >>> ae.n_iter_, len(ae.loss_curve_)
        (4, 4)
        """
        if not hasattr(self, "net_"):
            # The first call validates parameters, as fit does.
            self._validate_params()
            self._check_params()
        # A failed call (bad chunk, diverging loss) leaves the estimator, its
        # weights and its optimizer exactly as they were.
        before = dict(self.__dict__)
        saved = self._snapshot_training_state()
        try:
            self._partial_fit(X)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            self._restore_training_state(saved)
            raise
        return self

    def _snapshot_training_state(self):
        """Copies of the module's and the optimizer's state, or None before a first fit."""
        if not hasattr(self, "net_"):
            return None
        module = {k: v.detach().clone() for k, v in self.net_.module_.state_dict().items()}
        return module, copy.deepcopy(self.net_.optimizer_.state_dict())

    def _restore_training_state(self, saved) -> None:
        if saved is not None:
            self.net_.module_.load_state_dict(saved[0])
            self.net_.optimizer_.load_state_dict(saved[1])

    def _partial_fit(self, X) -> None:
        first = not hasattr(self, "net_")
        if first:
            self.architecture_ = self._resolve_architecture()
        arrays = self._validate_input(X, reset=first)
        if first:
            self._prepare_fit(*arrays)
        if not hasattr(self, "_partial_fit_seed"):
            # One seed per estimator; each call reseeds from it and the number
            # of epochs so far, so a replayed sequence of chunks replays the fit.
            self._partial_fit_seed = int(
                check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
            )
        device = resolve_device(self.device) if first else torch.device(self.net_.device)
        seed = self._partial_fit_seed + getattr(self, "n_iter_", 0)
        with _forked_rng(device):
            torch.manual_seed(seed)
            if first:
                net = self._make_net(self._new_module(self.input_shape_), device, None)
                net.callbacks = [cb for cb in net.callbacks if cb[0] != "early_stopping"]
            else:
                net = self.net_
                if net.train_split is not None or "early_stopping" in dict(net.callbacks_):
                    # A model fitted with a validation split or tol-based
                    # stopping continues without them, one epoch at a time.
                    net.train_split = None
                    for attr in ("callbacks", "callbacks_"):
                        kept = [cb for cb in getattr(net, attr) if cb[0] != "early_stopping"]
                        setattr(net, attr, kept)
            home = device if _fits_on_device(arrays, device) else torch.device("cpu")
            train = TensorDataset(*(_to_device(a, home) for a in arrays))
            net.loss_fn = self._training_loss(device)
            try:
                net.partial_fit(train, epochs=1)
            finally:
                net.loss_fn = self._loss
            self._end_of_training(net, train.tensors)
        self.net_ = net
        if first:
            self._fitted_module_params = self._module_signature()
        self.loss_curve_ = getattr(self, "loss_curve_", []) + [net.history[-1, "train_loss"]]
        self.n_iter_ = len(self.loss_curve_)
        self._n_features_out = self.n_components

    def _training_data(self, data, device: torch.device):
        """``(train, valid)`` datasets of a fit from validated arrays or a ChunkedData."""
        if isinstance(data, ChunkedData):
            if self.early_stopping:
                raise ValueError(
                    "early_stopping=True holds out a validation set in memory, which "
                    "ChunkedData (streamed training data) does not allow; use "
                    "early_stopping=False, or validate on a held-out array yourself."
                )
            return data._stream(lambda chunk: self._validate_input(chunk, reset=False)), None
        # The training data go to the device once, unless they would take
        # more than half of its free memory: then they stay on the host and
        # batches are streamed (see TensorBatchIterator).
        home = device if _fits_on_device(data, device) else torch.device("cpu")
        train = tuple(_to_device(a, home, device) for a in data)
        if not self.early_stopping:
            return TensorDataset(*train), None
        train, valid = split_rows(train, self.validation_fraction)
        return TensorDataset(*train), valid

    def _check_fitted_model(self, X: np.ndarray, lengths: np.ndarray | None = None) -> None:
        """Warn about a fitted model that is valid but unhelpful (a family hook)."""

    # ------------------------------------------------ checks around fitting

    def _check_params(self) -> None:
        """What ``_parameter_constraints`` cannot say: no bools for numbers,
        numbers float32 can hold, callbacks that are skorch callbacks."""
        for name, constraints in self._parameter_constraints.items():
            value = getattr(self, name)
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
        for i, cb in enumerate(self.callbacks or []):
            named = isinstance(cb, tuple) and len(cb) == 2 and isinstance(cb[0], str)
            inner = cb[1] if named else cb
            is_callback = isinstance(inner, Callback) or (
                isinstance(inner, type) and issubclass(inner, Callback)
            )
            if not is_callback:
                raise ValueError(
                    "callbacks must hold skorch callbacks (skorch.callbacks.Callback "
                    f"instances) or (name, callback) tuples; callbacks[{i}] is {cb!r}."
                )

    def _module_signature(self) -> dict:
        """The values of ``_module_params`` and of the network's parameters."""
        signature = {name: _plain(getattr(self, name)) for name in self._module_params}
        signature["architecture"] = _plain(self._configured_architecture())
        return signature

    def _check_warm_start(self, signature: dict) -> None:
        """Refuse a warm start whose module would differ from the fitted one."""
        fitted = getattr(self, "_fitted_module_params", None)
        if fitted is None:
            return
        for name, value in signature.items():
            if fitted.get(name, value) == value:
                continue
            if name == "architecture":
                what = self._describe_network_change(fitted[name], value)
            else:
                what = f"{name} is {value!r}, but the fitted module was built with {fitted[name]!r}"
            raise ValueError(
                f"{what}: warm_start=True continues the fitted module and cannot change "
                "it. Set warm_start=False (or use sklearn.base.clone) to fit a new one."
            )

    def _describe_network_change(self, before, now) -> str:
        """Which of the network's parameters a warm start would change, in words."""
        (kind_before, params_before), (kind_now, params_now) = before, now
        if kind_before != kind_now:
            return f"architecture is a {kind_now}, but the fitted module is a {kind_before}"
        # The default network's parameters are the estimator's own.
        prefix = "" if self.architecture is None else "architecture__"
        name = next(k for k in params_now if params_now[k] != params_before.get(k))
        return (
            f"{prefix}{name} is {params_now[name]!r}, but the fitted module was built "
            f"with {params_before.get(name)!r}"
        )

    def _new_module(self, input_shape: tuple) -> torch.nn.Module:
        """``_build_module``, with allocation failures turned into a clear error."""
        try:
            return self._build_module(input_shape)
        except (RuntimeError, MemoryError, OverflowError) as exc:
            sizes = ", ".join(f"{p}={getattr(self, p)!r}" for p in self._module_params)
            raise ValueError(
                f"{type(self).__name__} could not build its network "
                f"{self.architecture_!r} for samples of shape {tuple(input_shape)} with "
                f"{sizes}: {exc}. Use smaller sizes."
            ) from exc

    def _end_of_training(self, net, train) -> bool:
        """Check how training ended; return whether a stopping rule ended it.

        A fit interrupted with Ctrl-C keeps the weights reached (with a warning)
        if at least one epoch completed; otherwise the interrupt propagates and
        ``fit`` restores the estimator. A model with non-finite weights, or a
        non-finite loss on a training batch, is refused: the last step
        diverged after the per-epoch guard looked.
        """
        stopped = any(
            isinstance(cb, EarlyStopping) and cb.misses_ >= cb.patience for _, cb in net.callbacks_
        )
        if net.history and "train_loss" not in net.history[-1]:
            # The row of an epoch cut short: skorch opened it, nothing closed it.
            net.history.pop()
        if getattr(net, "interrupted_", False) and not stopped:
            if not net.history:
                raise KeyboardInterrupt
            warnings.warn(
                f"fit was interrupted (KeyboardInterrupt) after {len(net.history)} complete "
                f"epoch(s) of max_iter={self.max_iter}; the estimator keeps the weights "
                "reached when it was interrupted.",
                UserWarning,
                stacklevel=5,
            )
        module = net.module_
        finite = all(bool(torch.isfinite(p).all()) for p in module.parameters())
        if finite:
            with torch.no_grad():
                first = tuple(t[: self.batch_size].to(net.device) for t in train)
                loss = self._loss(module, first[0] if len(first) == 1 else first, False)
            finite = bool(torch.isfinite(loss))
        if not finite:
            raise FloatingPointError(
                "Training diverged: the fitted model's weights or its loss on the "
                f"training data are not finite. {self._divergence_advice()}"
            )
        return stopped

    def _warn_if_not_converged(self, loss_curve: list, stopped: bool) -> None:
        """ConvergenceWarning when max_iter ran out, or the loss ended above where it began."""
        if len(loss_curve) >= 2:
            first, last = loss_curve[0], loss_curve[-1]
            if last > first + abs(first):
                warnings.warn(
                    f"The training loss rose from {first:.4g} (first epoch) to {last:.4g} "
                    f"(last epoch): the fit diverged. {self._divergence_advice()}",
                    ConvergenceWarning,
                    stacklevel=5,
                )
                return
        has_stopping_rule = self.early_stopping or self.tol is not None
        if has_stopping_rule and not stopped and len(loss_curve) == self.max_iter:
            warnings.warn(
                f"Stochastic optimizer: maximum iterations (max_iter={self.max_iter}) "
                "reached and the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=5,
            )

    def _divergence_advice(self) -> str:
        """What to try when training diverges; a family adds its own suspects."""
        advice = (
            f"Try a smaller learning_rate_init (it is {self.learning_rate_init}), scale "
            "the input (e.g. StandardScaler), or a smaller batch_size"
        )
        if self.alpha > 1:
            advice += f", or a smaller alpha (it is {self.alpha})"
        return advice + "."

    def _training_loss(self, device: torch.device):
        """``self._loss``, compiled and/or under bf16 autocast as the options ask."""
        loss_fn = self._loss
        if self.compile:
            loss_fn = torch.compile(loss_fn)
        if self.mixed_precision:
            if device.type == "cuda" and not torch.cuda.is_bf16_supported():
                raise ValueError(
                    "mixed_precision=True trains under bfloat16 autocast, which this "
                    f"GPU ({torch.cuda.get_device_name(device)}) does not support; "
                    "use mixed_precision=False."
                )
            inner = loss_fn

            def loss_fn(module, X, training):
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    return inner(module, X, training).float()

        return loss_fn

    def _make_net(self, module, device, valid) -> SkaeNet:
        # Order matters: callbacks run in list order at each epoch's end, and
        # early stopping ends the epoch loop, so the progress bar goes first.
        callbacks = []
        if self.verbose:
            callbacks.append(("progress_bar", ProgressBar(self.verbose)))
        callbacks.append(("nonfinite_guard", NonFiniteLossGuard(self._divergence_advice())))
        monitor = "valid_loss" if self.early_stopping else "train_loss"
        if self.early_stopping or self.tol is not None:
            callbacks.append(
                (
                    "early_stopping",
                    EarlyStopping(
                        monitor=monitor,
                        patience=self.n_iter_no_change,
                        threshold=self.tol or 0.0,
                        threshold_mode="abs",
                        # As MLPRegressor: keep the best weights when a
                        # validation set decides, the last ones otherwise.
                        load_best=self.early_stopping,
                        sink=silent,
                    ),
                )
            )
        for i, cb in enumerate(self.callbacks or []):
            callbacks.append(cb if isinstance(cb, tuple) else (f"user_{i}", cb))
        return SkaeNet(
            module=module,
            criterion=torch.nn.MSELoss,  # unused: the loss is self._loss
            loss_fn=self._training_loss(device),
            optimizer=torch.optim.Adam,
            lr=self.learning_rate_init,
            optimizer__weight_decay=self.alpha,
            max_epochs=self.max_iter,
            batch_size=self.batch_size,
            train_split=None if valid is None else predefined_split(TensorDataset(*valid)),
            callbacks=callbacks,
            device=str(device),
        )

    # ---------------------------------------------------------- persistence

    def __getstate__(self):
        """The estimator's state as plain data: no pickled torch object in it.

        The fitted skorch net is replaced by ``_net_state``: the module's
        weights as NumPy arrays (saved from the CPU), the training history as
        a list of dicts, and the device it ran on. ``__setstate__`` rebuilds
        the module and the net from them, so ``skops.io`` can save and load a
        fitted estimator without trusting any torch or skorch type.
        """
        # A copy: object.__getstate__ may return the instance's own __dict__.
        state = dict(super().__getstate__())
        net = state.pop("net_", None)
        if net is not None:
            state["_net_state"] = {
                "weights": {
                    name: tensor.detach().cpu().numpy().copy()
                    for name, tensor in net.module_.state_dict().items()
                },
                "history": [_plain_row(row) for row in net.history],
                "device": str(net.device),
            }
        return state

    def __setstate__(self, state):
        state = dict(state)
        net_state = state.pop("_net_state", None)
        super().__setstate__(state)
        if net_state is not None:
            self.net_ = self._rebuild_net(net_state)

    def _rebuild_net(self, net_state: dict) -> SkaeNet:
        """The fitted net, from the plain ``_net_state`` of ``__getstate__``.

        The module is built as ``_fit`` builds it, then gets the saved
        weights. A model fitted on CUDA comes back on the CPU where CUDA is
        not available (with a warning).
        """
        device = torch.device(net_state["device"])
        if device.type == "cuda" and not torch.cuda.is_available():
            warnings.warn(
                f"This {type(self).__name__} was fitted on {device}, but no CUDA devices "
                "are available; it is loaded on the CPU.",
                UserWarning,
                stacklevel=3,
            )
            device = torch.device("cpu")
        module = self._build_module(self.input_shape_)
        weights = {}
        for name, array in net_state["weights"].items():
            if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiub":
                raise TypeError(
                    f"The saved weight {name!r} is not a numeric array, but "
                    f"{type(array).__name__}; the file is damaged or was not written by skae."
                )
            weights[name] = torch.from_numpy(np.array(array))
        module.load_state_dict(weights)
        net = self._make_net(module, device, None)
        net.initialize()
        net.loss_fn = self._loss
        net.history = History(net_state["history"])
        return net

    # ------------------------------------------------------------ inference

    @property
    def module_(self) -> torch.nn.Module:
        """The fitted torch module (lives in ``net_``, which pickles it safely)."""
        check_is_fitted(self, "net_")
        return self.net_.module_

    @property
    def history_(self):
        """The skorch history of the last fit: one row per epoch."""
        check_is_fitted(self, "net_")
        return self.net_.history

    def _batched(
        self, fn, X: np.ndarray, *aligned: np.ndarray, overflow: str = "raise"
    ) -> np.ndarray:
        """Apply ``fn(module, batch, *aligned_batches)`` to ``X`` in batches.

        ``aligned`` are arrays with one row per row of ``X`` (e.g. sequence
        lengths), sliced alongside it and passed in their own dtype. The result
        comes back in X's dtype. Each batch is copied to the device, processed,
        and copied back into a preallocated host array, so device memory holds
        one batch at a time. A batch that runs out of CUDA memory is retried in
        halves (down to one row), with a warning.

        ``overflow`` says what to do with non-finite results (finite inputs
        whose computation overflowed float32): ``"raise"`` a ValueError, or,
        for scores and errors, clip them to the output dtype's lowest
        (``"low"``: NaN counts as lowest) or highest (``"high"``) finite value.
        """
        _check_float32_range(X)
        module = self.net_.module_
        device = self.net_.device
        rows = self._inference_batch_rows
        if self.architecture_.input_kind != "table":
            rows = min(rows, INFERENCE_BATCH_ROWS_ND)
        if sp.issparse(X):
            rows = max(1, min(rows, INFERENCE_BATCH_ELEMENTS // max(1, X.shape[1])))
        module.eval()
        out = None
        start = 0
        with torch.inference_mode():
            while start < X.shape[0]:
                stop = start + rows
                try:
                    result = self._run_batch(fn, module, device, X, aligned, slice(start, stop))
                except torch.cuda.OutOfMemoryError:
                    if rows == 1:
                        raise
                    torch.cuda.empty_cache()
                    warnings.warn(
                        f"CUDA ran out of memory on an inference batch of {rows} rows; "
                        f"retrying with {max(1, rows // 2)}.",
                        ResourceWarning,
                        stacklevel=3,
                    )
                    rows = max(1, rows // 2)
                    continue
                if out is None:
                    out = np.empty((X.shape[0], *result.shape[1:]), dtype=X.dtype)
                # float64 scores beyond float32 become inf here, handled below.
                with np.errstate(over="ignore"):
                    out[start:stop] = result
                start = stop
        if out is None or np.isfinite(out).all():
            return out
        if overflow == "raise":
            raise ValueError(
                f"{type(self).__name__} computed non-finite values from finite input: "
                f"values of X (largest magnitude {np.abs(X).max():.3g}) overflow float32 "
                "in the network. Scale the data like the training data."
            )
        info = np.finfo(out.dtype)
        low, high = float(info.min), float(info.max)
        return np.nan_to_num(out, nan=low if overflow == "low" else high, posinf=high, neginf=low)

    @staticmethod
    def _run_batch(fn, module, device, X, aligned, rows: slice) -> np.ndarray:
        if sp.issparse(X):  # densified on the device, one batch at a time
            batch = SparseRows.from_scipy(X[rows], device)[:]
        else:
            # Slices of X[::-1] have negative strides, which torch does not take.
            batch = torch.tensor(np.ascontiguousarray(X[rows]), dtype=torch.float32, device=device)
        extra = [torch.as_tensor(np.ascontiguousarray(a[rows]), device=device) for a in aligned]
        return fn(module, batch, *extra).cpu().numpy()

    def transform(self, X):
        """Encode ``X`` into codes.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        codes : ndarray of shape (n_samples, n_components)
            The codes, in the dtype of ``X`` (float32 or float64).
        """
        check_is_fitted(self)
        return self._batched(lambda m, *x: m.encode(*x), *self._validate_input(X, reset=False))

    def inverse_transform(self, X, n_timesteps=None):
        """Decode codes back into the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, e.g. from :meth:`transform`.
        n_timesteps : int, array-like of int of shape (n_samples,) or None, default=None
            Sequence architectures only: length of the decoded sequences, or
            one length per code. None means the training length, which exists
            only when all training sequences had one length.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features) or list of ndarray
            The reconstructions, in the form of the training input (flat rows,
            images, signals or sequences) and the dtype of the codes; a list
            of arrays for sequences of per-code lengths.
        """
        check_is_fitted(self)
        Z = check_array(X, dtype=FLOAT_DTYPES, input_name="X")
        if Z.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has {Z.shape[1]} features, but {type(self).__name__} decodes "
                f"codes of n_components={self._n_features_out} features."
            )
        if not self._sequential:
            if n_timesteps is not None:
                raise ValueError(
                    "n_timesteps applies to sequence architectures only; "
                    f"{type(self).__name__} was fitted with {type(self.architecture_).__name__}."
                )
            return self._as_fit_form(self._batched(lambda m, z: m.decode(z), Z))
        lengths = self._output_lengths(n_timesteps, len(Z))
        longest = int(lengths.max())
        out = self._batched(lambda m, z: m.decode(z, longest), Z)
        if lengths.ndim == 1:
            return _inputs.as_form(out, "list", lengths)
        return self._as_fit_form(out, [longest] * len(out))

    def _output_lengths(self, n_timesteps, n_codes: int) -> np.ndarray:
        """``n_timesteps`` of :meth:`inverse_transform`, checked, as an int array."""
        if n_timesteps is None:
            if self.input_shape_[0] is None:
                raise ValueError(
                    f"{type(self).__name__} was fitted on sequences of different "
                    "lengths, so it has no default output length: pass n_timesteps "
                    "(an int, or one int per code)."
                )
            n_timesteps = self.input_shape_[0]
        lengths = np.asarray(n_timesteps)
        if (
            lengths.dtype.kind not in "iu"
            or lengths.ndim > 1
            or (lengths.ndim == 1 and len(lengths) != n_codes)
            or np.any(lengths < 1)
        ):
            raise ValueError(
                f"n_timesteps must be a positive int or {n_codes} positive ints (one "
                f"per code), got {n_timesteps!r}."
            )
        return lengths

    def score_samples(self, X):
        """Per-sample score; higher means more normal.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            For reconstruction-based families, the negative mean squared
            reconstruction error of each sample, computed in float64. Scores
            are always finite: one that overflows (a sample far outside the
            training data's scale) is clipped to the lowest finite value of
            the output dtype, so it ranks as the least normal.
        """
        check_is_fitted(self)
        arrays = self._validate_input(X, reset=False)
        return self._batched(self._score_batch, *arrays, overflow="low")

    def score(self, X, y=None):
        """Mean of :meth:`score_samples`; what ``GridSearchCV`` maximises by default.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to score.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        score : float
            The mean per-sample score.
        """
        # In float64: float32 scores clipped near float32's lowest value
        # would overflow a float32 sum.
        return float(np.mean(self.score_samples(X), dtype=np.float64))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        # Which input ranks the architecture reads.
        arch = self._configured_architecture()
        kind = getattr(arch, "input_kind", "table")
        declared = kind == "image" and arch.input_shape is not None
        tags.input_tags.two_d_array = kind != "image" or declared
        tags.input_tags.three_d_array = kind != "table"
        tags.input_tags.sparse = kind == "table"
        return tags

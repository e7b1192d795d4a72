"""What every skae estimator shares: validation, seeding, devices, the skorch
fit, batched inference, scores, tags and feature names.

A family subclasses :class:`BaseAutoEncoder` and says only what is special
about it: ``_build_module`` (its torch module), and where they differ from a
plain autoencoder, ``_loss`` (its training loss) and ``_score_batch`` (how a
sample is scored).
"""

from __future__ import annotations

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
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data
from skorch.callbacks import EarlyStopping
from skorch.helper import predefined_split

from ._batching import SparseRows, TensorDataset, split_rows
from ._callbacks import NonFiniteLossGuard, ProgressBar, silent
from ._modules import ACTIVATIONS
from ._net import SkaeNet

# Rows per inference batch. Inference holds no gradients, so it can take
# bigger batches than training; memory stays bounded by this, not by the input.
INFERENCE_BATCH_ROWS = 8192
# Sparse input is densified one batch at a time; this bounds a dense inference
# batch (64 MiB of float32) however wide the rows (e.g. 2**20 hashed columns).
INFERENCE_BATCH_ELEMENTS = 2**24

FLOAT_DTYPES = (np.float64, np.float32)


def resolve_device(device) -> torch.device:
    """Turn the ``device`` parameter into a :class:`torch.device`.

    ``"auto"`` means CUDA when :func:`torch.cuda.is_available`, else the CPU.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; expected 'auto', 'cpu', "
            "'cuda' or 'cuda:<index>'."
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} asks for CUDA, but torch.cuda.is_available() is "
            "False on this machine; use device='auto' or 'cpu'."
        )
    return resolved


def _to_device(a: np.ndarray, device: torch.device, densify_on=None) -> torch.Tensor:
    """Float arrays become float32 tensors on ``device``; others keep their dtype.

    A scipy sparse matrix stays sparse on ``device``, as
    :class:`~skae._batching.SparseRows` whose row batches come out dense on
    ``densify_on`` (default ``device``).
    """
    if sp.issparse(a):
        return SparseRows.from_scipy(a, device, densify_on)
    # torch warns on read-only arrays (e.g. joblib memmaps); copy those.
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


def _device_bytes(a) -> int:
    """Bytes that ``_to_device`` takes for ``a`` (float32 values)."""
    if sp.issparse(a):  # float32 values, int32 column indices, int64 row pointers
        return 8 * a.nnz + 8 * (a.shape[0] + 1)
    return a.size * (4 if a.dtype.kind == "f" else a.itemsize)


def _forked_rng(device: torch.device):
    """Fork torch's global RNG on ``device`` so seeding a fit leaves the user's alone."""
    cuda = [device.index or 0] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=cuda)


class BaseAutoEncoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Base class of the skae autoencoders; not for direct use.

    See :class:`skae.AutoEncoder` for the parameters every family shares.
    """

    # Rows per inference batch; a family with heavy rows (sequences) lowers it.
    _inference_batch_rows = INFERENCE_BATCH_ROWS

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
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

    def _build_module(self, n_features: int) -> torch.nn.Module:
        """Return a fresh torch module with ``encode`` and ``decode`` methods."""
        raise NotImplementedError

    def _loss(self, module, X: torch.Tensor, training: bool) -> torch.Tensor:
        """Training loss of one batch: mean squared reconstruction error."""
        return F.mse_loss(module(X), X)

    def _score_batch(self, module, X: torch.Tensor) -> torch.Tensor:
        """Per-sample score of one batch, higher = more normal."""
        return -((module(X) - X) ** 2).mean(dim=1)

    def _check_values(self, X: np.ndarray) -> None:
        """Reject values the family cannot model (after the generic checks)."""

    def _prepare_fit(self, X: np.ndarray) -> None:
        """Check parameter combinations; set fitted state that depends on the data.

        Called by ``fit`` with the validated training data (the first array that
        ``_validate_input`` returns), before the module is built (or reused, with
        ``warm_start``).
        """

    def _validate_input(self, X, *, reset: bool) -> tuple[np.ndarray, ...]:
        """Check ``X`` at a public boundary; return the aligned arrays the module takes.

        A plain 2-D table gives ``(X,)``; a family whose input is not one table
        (e.g. variable-length sequences) returns several aligned arrays, the
        first holding the float data. ``reset=True`` (in ``fit``) records
        ``n_features_in_``; otherwise the input is checked against it.
        """
        # Sparse input (e.g. TF-IDF) stays sparse: CSR, densified per batch.
        X = validate_data(self, X, dtype=FLOAT_DTYPES, accept_sparse="csr", reset=reset)
        self._check_values(X)
        return (X,)

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
        """
        # A failed fit (bad input, diverging loss) leaves the estimator exactly
        # as it was, never half-fitted.
        before = dict(self.__dict__)
        try:
            self._fit(X)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        return self

    def _fit(self, X) -> None:
        warm = self.warm_start and hasattr(self, "net_")
        n_features_before = getattr(self, "n_features_in_", None)
        arrays = self._validate_input(X, reset=True)
        if warm and self.n_features_in_ != n_features_before:
            raise ValueError(
                f"X has {self.n_features_in_} features, but warm_start=True continues a "
                f"model fitted on {n_features_before} features."
            )
        self._prepare_fit(arrays[0])
        device = resolve_device(self.device)
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)

        with _forked_rng(device):
            torch.manual_seed(seed)
            module = self.net_.module_ if warm else self._build_module(arrays[0].shape[-1])
            # The training data go to the device once, unless they would take
            # more than half of its free memory: then they stay on the host and
            # batches are streamed (see TensorBatchIterator).
            home = device if _fits_on_device(arrays, device) else torch.device("cpu")
            train = tuple(_to_device(a, home, device) for a in arrays)
            valid = None
            if self.early_stopping:
                train, valid = split_rows(train, self.validation_fraction)
            net = self._make_net(module, device, valid)
            try:
                net.fit(TensorDataset(*train))
            finally:
                # Compiled or autocast wrappers do not pickle; the fitted net
                # keeps the plain loss.
                net.loss_fn = self._loss

        history = net.history
        loss_curve = list(history[:, "train_loss"])
        scores = [-v for v in history[:, "valid_loss"]] if self.early_stopping else []
        if warm:
            loss_curve = self.loss_curve_ + loss_curve
            scores = getattr(self, "validation_scores_", []) + scores
        self.net_ = net
        self.n_iter_ = len(loss_curve)
        self.loss_curve_ = loss_curve
        if self.early_stopping:
            self.validation_scores_ = scores
            self.best_validation_score_ = max(scores)
        self._n_features_out = self.n_components

    def _hidden_layer_sizes(self) -> tuple:
        """``hidden_layer_sizes`` as a tuple of positive ints, checked."""
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
        if not all(isinstance(s, Integral) and s >= 1 for s in sizes):
            raise ValueError(
                "hidden_layer_sizes must be a positive int or a sequence of "
                f"positive ints, got {self.hidden_layer_sizes!r}."
            )
        return sizes

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
        callbacks.append(("nonfinite_guard", NonFiniteLossGuard()))
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

    def _batched(self, fn, X: np.ndarray, *aligned: np.ndarray) -> np.ndarray:
        """Apply ``fn(module, batch, *aligned_batches)`` to ``X`` in batches.

        ``aligned`` are arrays with one row per row of ``X`` (e.g. sequence
        lengths), sliced alongside it and passed in their own dtype. The result
        comes back in X's dtype. Each batch is copied to the device, processed,
        and copied back into a preallocated host array, so device memory holds
        one batch at a time; a sparse ``X`` is densified there one batch at a time.
        """
        module = self.net_.module_
        device = self.net_.device
        rows = self._inference_batch_rows
        n_samples = X.shape[0]
        if sparse := sp.issparse(X):
            rows = max(1, min(rows, INFERENCE_BATCH_ELEMENTS // max(1, X.shape[1])))
        module.eval()
        out = None
        with torch.inference_mode():
            for start in range(0, n_samples, rows):
                stop = start + rows
                if sparse:
                    batch = SparseRows.from_scipy(X[start:stop], device)[:]
                else:
                    batch = torch.tensor(X[start:stop], dtype=torch.float32, device=device)
                extra = [torch.as_tensor(a[start:stop], device=device) for a in aligned]
                result = fn(module, batch, *extra).cpu().numpy()
                if out is None:
                    out = np.empty((n_samples, *result.shape[1:]), dtype=X.dtype)
                out[start:stop] = result
        return out

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

    def inverse_transform(self, X):
        """Decode codes back into the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, e.g. from :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            The reconstructions, in the dtype of the codes.
        """
        check_is_fitted(self)
        Z = check_array(X, dtype=FLOAT_DTYPES, input_name="X")
        if Z.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has {Z.shape[1]} features, but {type(self).__name__} decodes "
                f"codes of n_components={self._n_features_out} features."
            )
        return self._batched(lambda m, z: m.decode(z), Z)

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
            reconstruction error of each sample.
        """
        check_is_fitted(self)
        return self._batched(self._score_batch, *self._validate_input(X, reset=False))

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
        return float(np.mean(self.score_samples(X)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.sparse = True
        return tags

"""The estimator every skae autoencoder is: parameters, one training path, inference.

A family subclasses :class:`BaseAutoEncoder` and says only what is special
about it: ``_build_module`` (its torch module), and where they differ from a
plain autoencoder, ``_loss`` (its training loss) and ``_score_batch`` (how a
sample is scored). What is not the estimator has its own module:

* :mod:`skae._training`: the fit transaction, the skorch net, the loss options;
* :mod:`skae._checks`: parameter, continuation and end-of-training checks;
* :mod:`skae._inputs`: reading inputs (a frozen :class:`~skae._inputs.InputSpec`);
* :mod:`skae._device`: devices, copies to them, seeding;
* :mod:`skae._inference`: batched inference with bounded memory, and the
  public methods of a fitted model (``transform``, scores, errors);
* :mod:`skae._errors`: the reconstruction error and its padding-aware means;
* :mod:`skae._persistence`: the fitted state as plain data.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    _fit_context,
    clone,
)
from sklearn.utils._param_validation import Interval, StrOptions

from . import _errors, _inputs
from ._batching import SparseRows
from ._checks import (
    check_batches,
    check_monitors,
    check_network_params,
    check_params,
    check_same_input,
    check_same_module,
    check_weights,
    mean_predictor_mse,
    module_signature,
)
from ._chunked import ChunkedData
from ._device import draw_seed, forked_rng, resolve_device, to_device
from ._doc_link import DocLinkMixin
from ._inference import InferenceMixin
from ._modules import ACTIVATIONS, Network
from ._persistence import net_state, rebuild_net
from ._training import (
    continue_incrementally,
    make_net,
    resolve_batch_size,
    training_data,
    training_loss,
    transaction,
)
from .architectures import MLP, Architecture, check_built, check_shapes

# Samples of the training data on which a newly built module's methods are checked.
PROTOCOL_CHECK_ROWS = 2


class BaseAutoEncoder(ClassNamePrefixFeaturesOutMixin, InferenceMixin, DocLinkMixin, BaseEstimator):
    """Base class of the skae autoencoders; not for direct use.

    See :class:`skae.AutoEncoder` for the parameters every family shares.
    """

    # The constructor parameters that define the torch module. Continued
    # training (a warm start, partial_fit) reuses the fitted module, so it
    # refuses a change in any of them; a family extends the tuple with its
    # own (e.g. ``k``, ``likelihood``). The network's own parameters count
    # through ``architecture``, or, when it is None, the default network's.
    _module_params: tuple[str, ...] = ("n_components",)

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "architecture": [Architecture, None],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
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
        "callbacks": [list, tuple, None],
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
        batch_size="auto",
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

    @property
    def _sequential(self) -> bool:
        return self.architecture_.input_kind == "sequence"

    def _n_encoder_outputs(self) -> int:
        """Values per sample the architecture's encoder emits (the VAE asks for more)."""
        return self.n_components

    def _build_network(self, input_shape: tuple) -> torch.nn.Module:
        """The architecture's module for ``input_shape``, built for this objective."""
        net = self.architecture_.build(
            tuple(input_shape), self.n_components, self._n_encoder_outputs()
        )
        check_built(self.architecture_, net)
        return net

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
        X = _errors.trim(X, lengths)
        X_in = X if X_in is None else _errors.trim(X_in, lengths)
        z = module.encode(X_in, lengths)
        return self._decode_errors(module, z, X, lengths, exact), lengths

    def _decode_errors(self, module, z, X, lengths=None, exact=False) -> torch.Tensor:
        """Squared error of each element of the decoded codes ``z`` against ``X`` (trimmed)."""
        X_hat = module.decode(z, X.shape[1] if self._sequential else None)
        return _errors.squared_errors(X_hat, X, lengths, exact)

    def _reconstruct(self, module, X, lengths=None) -> torch.Tensor:
        """Decode the codes of the batch ``X`` back to its shape."""
        return module.decode(module.encode(X, lengths), X.shape[1] if self._sequential else None)

    def _loss(self, module, batch, training: bool) -> torch.Tensor:
        """Training loss of one batch: mean squared reconstruction error."""
        X, lengths = _errors.split_batch(batch)
        if lengths is None:  # one fused kernel for the common case
            return F.mse_loss(self._reconstruct(module, X), X)
        return _errors.batch_mean(*self._errors(module, X, lengths))

    def _score_batch(self, module, X: torch.Tensor, lengths=None) -> torch.Tensor:
        """Per-sample score of one batch, higher = more normal."""
        # In float64: squares of float32 values above ~1.8e19 overflow float32.
        return -_errors.sample_mean(*self._errors(module, X, lengths, exact=True))

    def _takes_sparse_batches(self, module) -> bool:
        """Whether training feeds ``module`` sparse batches of sparse ``X`` (a family hook).

        True only where the family's loss reads sparse batches and the
        module's first layer multiplies them; otherwise batches are dense.
        """
        return False

    def _check_values(self, X: np.ndarray) -> None:
        """Reject values the family cannot model (after the generic checks)."""

    def _prepare_fit(self, X: np.ndarray, lengths: np.ndarray | None = None) -> None:
        """Check parameter combinations; set fitted state that depends on the data.

        Called with the validated training arrays before a new module is
        built (by ``fit``, and by the first ``partial_fit``).
        """

    def _check_fitted_model(self, module, batches) -> None:
        """Warn about a fitted model that is valid but unhelpful (a family hook).

        ``batches`` iterates over the training data on the training device;
        it runs under ``torch.no_grad`` at the end of every training call.
        """

    def _divergence_advice(self) -> str:
        """What to try when training diverges; a family adds its own suspects."""
        advice = (
            f"Try a smaller learning_rate_init (it is {self.learning_rate_init}), scale "
            "the input (e.g. StandardScaler), or a smaller batch_size"
        )
        if self.alpha > 1:
            advice += f", or a smaller alpha (it is {self.alpha})"
        return advice + "."

    # Whether the training loss is (at least) the mean squared reconstruction
    # error, comparable with the mean predictor's (see make_net).
    _loss_is_mse = True

    # Whether the squared reconstruction error measures what the model learns,
    # so that the end-of-fit check may compare it with the mean predictor's.
    _squared_error_shows_learning = True

    def _loss_scale(self, reference: float | None) -> float:
        """The scale ``tol`` is relative to: the mean predictor's error on the data.

        The families trained on a mean squared error compare improvements of
        their loss with the error of a model that learned nothing, so one
        ``tol`` means the same on data of any scale. A family whose loss is in
        other units says what its scale is.
        """
        return 1.0 if not reference else reference

    def _learning_advice(self, batch_size: int) -> str:
        """What to try when a fit learned almost nothing."""
        return (
            f"Give it more optimizer steps: more epochs (max_iter={self.max_iter}), "
            f"smaller batches (it trained on {batch_size} rows a step), or a larger "
            f"learning_rate_init (it is {self.learning_rate_init}); check that the input "
            "is scaled (e.g. StandardScaler) and that n_components is large enough."
        )

    # ----------------------------------------------------------------- input

    def _read_input(self, X, *, reset: bool):
        """Check ``X`` at a public boundary: ``(arrays, spec)``, see :func:`_inputs.read`."""
        fitted = None if reset else _inputs.InputSpec(self._fit_form, self.input_shape_)
        arrays, spec = _inputs.read(self, X, architecture=self.architecture_, fitted=fitted)
        self._check_values(arrays[0])
        return arrays, spec

    def _validate_input(self, X, *, reset: bool) -> tuple[np.ndarray, ...]:
        """The aligned arrays the module takes: ``(X,)`` or ``(padded, lengths)``."""
        return self._read_input(X, reset=reset)[0]

    def _record_input(self, spec: _inputs.InputSpec) -> None:
        """Keep what fit saw of its input as fitted attributes."""
        self.input_shape_ = spec.sample_shape
        self._fit_form = spec.form
        if spec.n_features_in is not None:
            self.n_features_in_ = spec.n_features_in
            self.__dict__.pop("feature_names_in_", None)
        if self._sequential:
            self.n_timesteps_in_, self.n_features_per_step_ = spec.sample_shape

    def _as_fit_form(self, out: np.ndarray, lengths=None):
        """Per-sample outputs of shape (n, *input_shape) in the training input's form."""
        return _inputs.as_form(out, self._fit_form, lengths)

    # -------------------------------------------------------------- fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Fit the autoencoder to ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or ChunkedData
            Training data, in any form the architecture reads.
        y : None
            Ignored; present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample. Each epoch then draws its
            ``n_samples`` rows with replacement, with probabilities
            proportional to the weights, so the loss minimised is, in
            expectation, the weighted mean of the per-sample loss (for every
            family, penalties computed per batch included); a zero weight
            drops a sample. None, or equal weights, trains as without
            weights (each epoch a permutation of the rows). The
            ``early_stopping`` validation loss is not weighted. Not with a
            :class:`~skae.ChunkedData`.

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
            If the training loss ends above twice where it began; if the
            model reconstructs its training data with at least 0.98 times
            the error of the mean predictor (it learned almost nothing; the
            message says what to change); or if ``max_iter`` epochs ran
            before the stopping rule decided while the loss still fell
            notably (its last ``n_iter_no_change`` epochs brought more than
            1% of the fit's whole decrease).
        UserWarning
            If Ctrl-C interrupted training after at least one complete epoch:
            the estimator keeps the weights reached then.
        """
        with transaction(self):
            self._fit(X, incremental=False, sample_weight=sample_weight)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None):
        """Train one pass (one epoch) over ``X``, continuing the current model.

        scikit-learn's incremental convention, as
        :meth:`sklearn.neural_network.MLPRegressor.partial_fit`: each call runs
        one epoch over the chunk ``X`` in shuffled mini-batches, and the Adam
        optimizer's state (moments, step count) carries over between calls.
        The first call builds the model and fixes ``n_features_in_`` and
        ``input_shape_``; later chunks must match them, and parameters that
        define the module (``n_components``, the network's) may not change.
        The checks at the end of ``fit`` (divergence, a rising loss, the
        family's warnings) run after every call.

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
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample of the chunk, as in :meth:`fit`:
            the epoch draws the chunk's rows with probabilities proportional
            to them.

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
        with transaction(self):
            self._fit(X, incremental=True, sample_weight=sample_weight)
        return self

    def _fit(self, X, incremental: bool, sample_weight=None) -> None:
        """The one training path: ``fit`` (fresh or warm) and ``partial_fit``.

        ``incremental`` trains one epoch on ``X`` and continues the fitted
        net (its optimizer state included); otherwise up to ``max_iter``
        epochs run in a new net, from the fitted module's weights with
        ``warm_start=True``. ``fit_data_parallel`` adds its callback to this
        path; ``ChunkedData`` streams through it.
        """
        continuing = hasattr(self, "net_") and (incremental or self.warm_start)
        arrays = self._start(X, continuing, incremental)
        weights = check_weights(sample_weight, X, arrays)
        device, seed = self._device_and_seed(continuing, incremental)
        with forked_rng(device):
            torch.manual_seed(seed)
            if continuing and incremental:
                net = self.net_
                train, _ = training_data(self, X, arrays, device, incremental, weights, net.module_)
                net.loss_fn = training_loss(self, net.module_, device)
            else:
                module = self.net_.module_ if continuing else self._new_module(arrays)
                train, valid = training_data(self, X, arrays, device, incremental, weights, module)
                n_rows = arrays[0].shape[0]
                rows = resolve_batch_size(self.batch_size, n_rows)
                reference = mean_predictor_mse(check_batches(None, train, rows, device=device))
                net = make_net(self, module, device, valid, n_rows=n_rows, reference=reference)
            if incremental:
                continue_incrementally(net)
            try:
                if incremental:
                    net.partial_fit(train, epochs=1)
                else:
                    net.fit(train)
            finally:
                # Compiled or autocast wrappers do not pickle; the fitted net
                # keeps the plain loss.
                net.loss_fn = self._loss
        self._record_training(net, continuing, incremental)

    def _start(self, X, continuing: bool, incremental: bool) -> tuple:
        """The checks before training; return the validated arrays (a stream's first chunk).

        A new module gets a fresh copy of the architecture (fitted state) and
        records the input; a continued one must keep its module and input.
        """
        check_params(self)
        check_monitors(self, validation=self.early_stopping and not incremental)
        how = "partial_fit" if incremental else "warm_start=True"
        if continuing:
            check_same_module(self, how)  # first: a continued fit cannot change its network
        check_network_params(self)
        if not continuing:
            self.architecture_ = clone(self._configured_architecture())
        first = X.first_chunk() if isinstance(X, ChunkedData) else X
        arrays, spec = self._read_input(first, reset=not (continuing and incremental))
        if continuing and not incremental:
            check_same_input(spec.sample_shape, self.input_shape_, self._sequential, how)
        if not (continuing and incremental):
            self._record_input(spec)
            self._prepare_fit(*arrays)
        return arrays

    def _device_and_seed(self, continuing: bool, incremental: bool) -> tuple:
        """Where this call trains and the seed of its RNG.

        ``partial_fit`` draws one seed per estimator and reseeds each call from
        it and the number of epochs so far, so a replayed sequence of chunks
        replays the fit; it trains where the fitted net lives.
        """
        if not incremental:
            return resolve_device(self.device), draw_seed(self.random_state)
        device = torch.device(self.net_.device) if continuing else resolve_device(self.device)
        if not hasattr(self, "_partial_fit_seed"):
            self._partial_fit_seed = draw_seed(self.random_state)
        return device, self._partial_fit_seed + getattr(self, "n_iter_", 0)

    def _new_module(self, arrays) -> torch.nn.Module:
        """A new module for the training data ``arrays``, checked on their first rows."""
        input_shape = self.input_shape_
        try:
            module = self._build_module(input_shape)
        except (RuntimeError, MemoryError, OverflowError) as exc:
            sizes = ", ".join(f"{p}={getattr(self, p)!r}" for p in self._module_params)
            raise ValueError(
                f"{type(self).__name__} could not build its network "
                f"{self.architecture_!r} for samples of shape {tuple(input_shape)} with "
                f"{sizes}: {exc}. Use smaller sizes."
            ) from exc
        x, *lengths = (to_device(a[:PROTOCOL_CHECK_ROWS], torch.device("cpu")) for a in arrays)
        x = x[:] if isinstance(x, SparseRows) else x  # the rows dense
        lengths = lengths[0] if lengths else None
        training = module.training
        module.eval()  # no dropout draw, no batch-norm update
        check_shapes(
            self.architecture_,
            module.net,
            _errors.trim(x, lengths),
            lengths,
            self.n_components,
            self._n_encoder_outputs(),
        )
        module.train(training)
        return module

    def _record_training(self, net, continuing: bool, incremental: bool) -> None:
        """Set the fitted attributes from the net that just trained."""
        if incremental:
            loss_curve = getattr(self, "loss_curve_", []) + [net.history[-1, "train_loss"]]
        else:
            loss_curve = list(net.history[:, "train_loss"])
            if continuing:
                loss_curve = self.loss_curve_ + loss_curve
        if self.early_stopping and not incremental:
            scores = [-v for v in net.history[:, "valid_loss"]]
            if continuing:
                scores = getattr(self, "validation_scores_", []) + scores
            self.validation_scores_ = scores
            self.best_validation_score_ = max(scores)
        self.net_ = net
        if not continuing:
            self._fitted_module_params = module_signature(self)
        self.n_iter_ = len(loss_curve)
        self.loss_curve_ = loss_curve
        self._n_features_out = self.n_components

    # ---------------------------------------------------------- persistence

    def __getstate__(self):
        """The estimator's state as plain data: no pickled torch object in it.

        The fitted skorch net is replaced by ``_net_state`` (see
        :mod:`skae._persistence`), so ``skops.io`` can save and load a fitted
        estimator without trusting any torch or skorch type.
        """
        # A copy: object.__getstate__ may return the instance's own __dict__.
        state = dict(super().__getstate__())
        net = state.pop("net_", None)
        if net is not None:
            state["_net_state"] = net_state(net)
        return state

    def __setstate__(self, state):
        state = dict(state)
        saved = state.pop("_net_state", None)
        super().__setstate__(state)
        if saved is not None:
            self.net_ = rebuild_net(self, saved)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        # Which input ranks the architecture reads.
        arch = self._configured_architecture()
        kind = getattr(arch, "input_kind", "table")
        try:
            declared = kind == "image" and arch.declared_shape() is not None
        except (AttributeError, TypeError, ValueError):
            declared = False  # fit reports a bad architecture clearly
        tags.input_tags.two_d_array = kind != "image" or declared
        tags.input_tags.three_d_array = kind != "table"
        tags.input_tags.sparse = kind == "table"
        # torch tensors stay on their device, outputs are tensors there (the
        # namespace skae's engine is written in; NumPy in, NumPy out).
        tags.array_api_support = True
        return tags

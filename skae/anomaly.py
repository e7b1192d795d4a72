"""Outlier detection with any estimator that scores samples."""

from __future__ import annotations

import copy
import inspect
from numbers import Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context, clone
from sklearn.utils import _safe_indexing, check_random_state, get_tags
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _routing_enabled,
    process_routing,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import _num_samples, check_is_fitted, has_fit_parameter

from . import _errors
from ._chunked import ChunkedData, row_draws
from ._doc_link import DocLinkMixin
from ._inference import batch_rows, like_input, on_host
from .ensemble import AutoEncoderEnsemble

# Tukey's fence: a box plot's lower whisker sits 1.5 interquartile ranges
# below the first quartile.
TUKEY_FENCE = 1.5
# fit sets offset_ from the scores of at most this many training rows (a
# uniform sample, drawn with random_state). Their quartiles are within about
# 1% of the scores' interquartile range of those of all rows, and with
# contamination=0.01 the share of training rows flagged has a relative standard
# error of 7%; a pass over all of a large training set would cost as much as
# the fit.
MAX_OFFSET_ROWS = 20_000


def _can_explain(self) -> bool:
    """True when the (fitted, else the given) estimator can give feature errors."""
    inner = self.estimator_ if hasattr(self, "estimator_") else self._estimator()
    if callable(getattr(inner, "feature_errors", None)):
        return True
    return all(callable(getattr(inner, m, None)) for m in ("transform", "inverse_transform"))


def _quantiles(values: np.ndarray, qs, weights=None) -> list[float]:
    """Quantiles ``qs`` (in [0, 1]) of ``values``, weighted when ``weights`` differ.

    Unweighted (or equal weights): NumPy's linear interpolation. Weighted: the
    smallest value whose cumulative weight reaches the fraction (the
    weighted version of the inverted empirical distribution).
    """
    if weights is None or np.all(weights == weights[0]):
        return list(np.percentile(values, [100.0 * q for q in qs]))
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    positions = np.searchsorted(cumulative, np.asarray(qs) * cumulative[-1], side="left")
    return list(values[order][np.minimum(positions, len(values) - 1)])


class AnomalyDetector(OutlierMixin, DocLinkMixin, BaseEstimator):
    """Outlier detector around any estimator with ``score_samples``.

    It fits a clone of ``estimator`` (by default an
    :class:`~skae.AutoEncoderEnsemble`; or any skae autoencoder, or any
    estimator whose ``score_samples`` is higher for more normal samples, such
    as :class:`~sklearn.decomposition.PCA`) on unlabelled data, and puts a
    cutoff ``offset_`` on its training scores. Samples scoring below the
    cutoff are outliers. The API is that of scikit-learn's outlier detectors
    (:class:`~sklearn.ensemble.IsolationForest`): ``predict`` returns +1 for
    inliers and -1 for outliers, and
    ``decision_function = score_samples - offset_`` is negative for outliers.

    Parameters
    ----------
    estimator : estimator object, default=None
        Unfitted scikit-learn estimator instance (it is cloned) with ``fit``
        and ``score_samples`` (higher = more normal). ``None`` means
        ``AutoEncoderEnsemble()``: 8 small autoencoders on 256-row
        subsamples, scored by the robustly normalised distances of a sample
        to the rows of those subsamples (their reconstruction
        errors weigh in with ``estimator__error_weight > 0``; results on
        ADBench sets against :class:`~sklearn.ensemble.IsolationForest` and
        PyOD's detectors are on the anomaly benchmark page). Nested parameters work
        with the default too: ``set_params(estimator__n_estimators=64)``.
    contamination : "auto" or float in (0, 0.5], default="auto"
        Expected fraction of outliers in the training data. A float puts
        ``offset_`` at that quantile of the training scores, so that this
        fraction of the training data is predicted -1. ``"auto"`` needs no
        guess: it puts ``offset_`` at Tukey's lower fence of the training
        scores, ``Q1 - 1.5 * (Q3 - Q1)`` (see Notes).
    random_state : int, RandomState instance or None, default=None
        Seeds the wrapped estimator, as ``IsolationForest``'s seeds its
        trees: when it is not None and the estimator has a ``random_state``
        parameter, the clone gets ``random_state`` set to an int drawn from
        it (the estimator passed in is not changed). With an int, fitting
        twice gives the same model. ``None`` leaves the estimator's own
        ``random_state`` as it is.

    Attributes
    ----------
    estimator_ : estimator object
        The fitted clone of ``estimator``.
    offset_ : float
        Cutoff on ``score_samples``: ``decision_function`` is
        ``score_samples - offset_``.
    n_features_in_ : int
        Number of features seen during :term:`fit` (from ``estimator_``).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit` (from ``estimator_``).
        Defined only when `X` has feature names that are all strings.

    See Also
    --------
    sklearn.ensemble.IsolationForest : Outlier detection with random trees.
    skae.AutoEncoderEnsemble : The default scoring model.

    Notes
    -----
    The wrapper leaves input validation to ``estimator``, so it accepts
    whatever ``estimator`` accepts (e.g. 3-D sequence input for a recurrent
    autoencoder); its input tags are those of ``estimator``.

    Why Tukey's fence for ``contamination="auto"``: it makes no assumption
    on the scale or the distribution of the scores (reconstruction errors,
    log-likelihoods and ELBOs all work), and the quartiles stay where they
    are when up to a quarter of the training data are outliers, whereas a
    mean-and-standard-deviation rule is dragged by the very outliers it should
    find. Reconstruction errors are right-skewed, so it typically flags a few
    percent of the training data; the fraction follows the data rather than a
    guess. Set ``contamination`` when the outlier rate is known.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import AnomalyDetector, AutoEncoder
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 8))  # rank-4 data
    >>> X_new = np.vstack([X[:2], 10 * rng.normal(size=(2, 8))])  # 2 outliers
    >>> detector = AnomalyDetector(contamination=0.01, random_state=0).fit(X)
    >>> detector.predict(X_new)
    array([ 1,  1, -1, -1])

    Per-feature reconstruction errors show which inputs are off:

    >>> X_bad = X[:1].copy()
    >>> X_bad[0, 5] += 10
    >>> int(detector.feature_errors(X_bad).argmax())
    5

    Any skae autoencoder (or other scorer) can do the scoring instead:

    >>> detector = AnomalyDetector(
    ...     AutoEncoder(n_components=4, max_iter=100), contamination=0.01, random_state=0
    ... ).fit(X)
    >>> detector.predict(X_new)
    array([ 1,  1, -1, -1])
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "score_samples"]), None],
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator=None, *, contamination="auto", random_state=None):
        self.estimator = estimator
        self.contamination = contamination
        self.random_state = random_state

    def _estimator(self):
        if self.estimator is None:
            return AutoEncoderEnsemble()
        return self.estimator

    def get_params(self, deep=True):
        """Get parameters, with the nested ``estimator__<param>`` ones when ``deep``.

        With ``estimator=None`` the nested ones are the default
        ``AutoEncoderEnsemble()``'s, which :meth:`set_params` accepts.

        Parameters
        ----------
        deep : bool, default=True
            If True, include the parameters of ``estimator`` (or of the default
            ensemble) as ``estimator__<param>``.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        params = super().get_params(deep=deep)
        if deep and self.estimator is None:
            for key, value in self._estimator().get_params(deep=True).items():
                params[f"estimator__{key}"] = value
        return params

    def set_params(self, **params):
        """Set parameters, including nested ``estimator__<param>`` ones.

        With ``estimator=None``, a nested parameter first makes ``estimator``
        the default ``AutoEncoderEnsemble()``, then sets the parameter on it.

        Parameters
        ----------
        **params : dict
            Parameters of the detector and ``estimator__<param>`` ones.

        Returns
        -------
        self : object
            The detector.
        """
        estimator = params.get("estimator", self.estimator)
        if estimator is None and any(k.startswith("estimator__") for k in params):
            params = {"estimator": self._estimator(), **params}
        return super().set_params(**params)

    def _seeded_clone(self):
        estimator = self._estimator()
        if isinstance(estimator, type):
            raise TypeError(
                f"estimator must be an estimator instance, e.g. {estimator.__name__}(), "
                f"got the class {estimator.__name__} itself."
            )
        estimator = clone(estimator)
        if self.random_state is not None and "random_state" in estimator.get_params():
            seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
            estimator.set_params(random_state=seed)
        return estimator

    # The wrapped estimator validated X, so its record of it is the one to show.
    @property
    def n_features_in_(self) -> int:
        """Number of features seen during fit."""
        return self.estimator_.n_features_in_

    @property
    def feature_names_in_(self) -> np.ndarray:
        """Names of the features seen during fit (string column names only)."""
        return self.estimator_.feature_names_in_

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, sample_weight=None, **fit_params):
        """Fit the wrapped estimator on ``X`` and set ``offset_``.

        Parameters
        ----------
        X : array-like or ChunkedData
            Training data, unlabelled, in any form ``estimator`` accepts
            (usually of shape (n_samples, n_features)); it may hold outliers.
            With more than 20,000 rows, ``offset_`` comes from the scores
            of a uniform sample of 20,000 of them (drawn with
            ``random_state``), as a second full pass would cost as much as
            the fit.
            A :class:`~skae.ChunkedData` goes to a skae ``estimator``'s
            ``fit`` as it is; the training scores that set ``offset_`` are
            then computed one chunk at a time (one float per row in memory).
        y : None
            Ignored; present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each training sample. The cutoff
            ``offset_`` is then a weighted quantile of the training scores, and
            the weights go to ``estimator.fit`` (which must accept them). With
            metadata routing enabled (``sklearn.set_config(
            enable_metadata_routing=True)``) they reach the estimator as its
            request says (``estimator.set_fit_request(sample_weight=True)``), as
            in any scikit-learn meta-estimator; a pipeline or a search passes
            them to the detector when its estimator requests them.
        **fit_params : dict
            Only with metadata routing enabled: other metadata routed to
            ``estimator.fit`` as its requests say.

        Returns
        -------
        self : object
            The fitted detector.
        """
        self._fit(X, sample_weight, fit_params)
        return self

    @_fit_context(prefer_skip_nested_validation=False)
    def fit_predict(self, X, y=None, sample_weight=None, **fit_params):
        """Fit on ``X`` and return its labels: +1 inlier, -1 outlier.

        Parameters
        ----------
        X : array-like
            Training data, as for :meth:`fit`.
        y : None
            Ignored; present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            As for :meth:`fit`.
        **fit_params : dict
            As for :meth:`fit` (metadata routing only).

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            +1 for inliers, -1 for outliers.
        """
        return self._labels(self._fit(X, sample_weight, fit_params, "fit_predict") - self.offset_)

    def get_metadata_routing(self):
        """How metadata passed to ``fit`` reach the wrapped estimator.

        ``fit`` and ``fit_predict`` route to ``estimator.fit``. The detector
        uses a ``sample_weight`` it is given for its cutoff too.

        Returns
        -------
        routing : sklearn.utils.metadata_routing.MetadataRouter
            The routing information.
        """
        mapping = MethodMapping().add(caller="fit", callee="fit")
        mapping.add(caller="fit_predict", callee="fit")
        return MetadataRouter(owner=self).add(estimator=self._estimator(), method_mapping=mapping)

    def _fit_params(self, estimator, sample_weight, fit_params, caller):
        """``(own sample_weight, estimator's fit params)`` as routing decides."""
        if _routing_enabled():
            if sample_weight is not None:
                fit_params = {"sample_weight": sample_weight, **fit_params}
            routed = process_routing(self, caller, **fit_params)
            return sample_weight, routed.estimator.fit
        if fit_params:
            raise TypeError(
                f"AnomalyDetector.{caller} got unexpected arguments {sorted(fit_params)}: "
                "metadata other than sample_weight reach the estimator only with "
                "sklearn.set_config(enable_metadata_routing=True)."
            )
        if sample_weight is None:
            return None, {}
        if not has_fit_parameter(estimator, "sample_weight"):
            raise TypeError(
                f"sample_weight was given, but {type(estimator).__name__}.fit takes no "
                "sample_weight; use an estimator that does (every skae estimator does)."
            )
        return sample_weight, {"sample_weight": sample_weight}

    def _fit(self, X, sample_weight=None, fit_params=None, caller="fit") -> np.ndarray:
        """Fit, set the fitted attributes together, return the training scores.

        Except for ``fit_predict``, the scores are those of a uniform sample
        of at most ``MAX_OFFSET_ROWS`` rows of an array ``X``.
        """
        estimator = self._seeded_clone()
        sample_weight, estimator_params = self._fit_params(
            estimator, sample_weight, fit_params or {}, caller
        )
        if isinstance(X, ChunkedData):
            from ._base import BaseAutoEncoder

            if not isinstance(estimator, BaseAutoEncoder | AutoEncoderEnsemble):
                raise TypeError(
                    "X is a ChunkedData, which the skae estimators' fit reads; "
                    f"{type(estimator).__name__} is not one of them. Pass an array, or "
                    "use a skae estimator (e.g. the default AutoEncoderEnsemble)."
                )
            estimator.fit(X, **estimator_params)
            # One score per training row, computed chunk by chunk.
            scores = np.concatenate([estimator.score_samples(c) for c in X._in_order()])
        else:
            from ._base import BaseAutoEncoder

            drawn = []  # the rows that set the cutoff, when not all of them

            def offset_rows(X):
                n_rows = _num_samples(X)
                if caller == "fit_predict" or n_rows <= MAX_OFFSET_ROWS:
                    return X
                draws = row_draws(check_random_state(self.random_state))
                drawn.append(np.sort(draws.choice(n_rows, MAX_OFFSET_ROWS, replace=False)))
                if isinstance(X, torch.Tensor):
                    return X[torch.as_tensor(drawn[0], device=X.device)]
                return _safe_indexing(X, drawn[0])

            if isinstance(estimator, BaseAutoEncoder | AutoEncoderEnsemble):
                estimator.fit(X, **estimator_params)
                scores = estimator.score_samples(offset_rows(X))
            else:  # a foreign estimator reads a tensor on the host
                scores = on_host(
                    lambda X: estimator.fit(X, **estimator_params).score_samples(offset_rows(X)),
                    X,
                )
            if drawn and sample_weight is not None:
                sample_weight = np.asarray(sample_weight)[drawn[0]]
        returned = scores = self._checked(scores)
        if isinstance(scores, torch.Tensor):  # the cutoff is set on the host
            scores = scores.double().cpu().numpy()
        weights = None
        if sample_weight is not None:
            weights = np.asarray(sample_weight, dtype=np.float64)
            if weights.shape != scores.shape:
                raise ValueError(
                    f"sample_weight has shape {weights.shape}; expected {scores.shape}, "
                    "one weight per sample of X."
                )
        # Infinite scores give a NaN quantile, refused just below.
        with np.errstate(invalid="ignore"):
            if self.contamination == "auto":
                q1, q3 = _quantiles(scores, [0.25, 0.75], weights)
                offset = q1 - TUKEY_FENCE * (q3 - q1)
            else:
                (offset,) = _quantiles(scores, [self.contamination], weights)
        if not np.isfinite(offset):
            raise ValueError(
                f"Cannot set a finite cutoff: the wrapped estimator's training "
                f"scores range from {scores.min()} to {scores.max()} (a degenerate "
                "model, e.g. a likelihood on data with no noise in some direction)."
            )
        self.estimator_ = estimator
        self.offset_ = float(offset)
        return returned

    def _call(self, method, X):
        """``method(X)``; a tensor goes through the host for a non-skae estimator."""
        from ._base import BaseAutoEncoder

        skae_estimator = isinstance(self.estimator_, BaseAutoEncoder | AutoEncoderEnsemble)
        return method(X) if skae_estimator else on_host(method, X)

    @staticmethod
    def _checked(scores):
        if isinstance(scores, torch.Tensor):  # scores of a tensor, on its device
            nan = bool(torch.isnan(scores).any())
        else:
            scores = np.asarray(scores)
            nan = np.isnan(scores).any()
        if nan:
            raise ValueError(
                "The wrapped estimator's score_samples returned NaN; the model "
                "or the input is broken (check for diverging training or "
                "extreme values)."
            )
        return scores

    @staticmethod
    def _labels(decision):
        if isinstance(decision, torch.Tensor):
            return torch.where(decision < 0, -1, 1)
        labels = np.ones(len(decision), dtype=int)
        labels[decision < 0] = -1
        return labels

    def score_samples(self, X):
        """Score of each sample under the wrapped estimator; higher is more normal.

        Parameters
        ----------
        X : array-like
            Samples, in any form ``estimator`` accepts.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``estimator_.score_samples(X)``.
        """
        check_is_fitted(self)
        return self._checked(self._call(self.estimator_.score_samples, X))

    def decision_function(self, X):
        """Shifted score: negative for outliers, positive for inliers.

        Parameters
        ----------
        X : array-like
            Samples, in any form ``estimator`` accepts.

        Returns
        -------
        decision : ndarray of shape (n_samples,)
            ``score_samples(X) - offset_``.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """Label each sample: +1 inlier, -1 outlier.

        Parameters
        ----------
        X : array-like
            Samples, in any form ``estimator`` accepts.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            -1 where ``decision_function(X) < 0``, else +1.
        """
        return self._labels(self.decision_function(X))

    @available_if(_can_explain)
    def feature_errors(self, X):
        """Squared reconstruction error of each feature of each sample.

        They say which inputs make a sample anomalous: a large entry is a
        feature the model could not reconstruct from the rest. For the
        default :class:`~skae.AutoEncoderEnsemble` they are its
        :meth:`~skae.AutoEncoderEnsemble.feature_errors` (errors on robustly
        scaled features, averaged over members; its score is set by a
        neighbour term unless ``error_weight > 0``, when they split the
        reconstruction part of it). For the skae reconstruction
        families (``AutoEncoder`` and its denoising and sparse variants), the
        mean over features is exactly ``-score_samples``. For other
        estimators (e.g. ``PCA``, whose ``score_samples`` is a Gaussian
        log-likelihood, or a variational autoencoder's ELBO) the errors still
        locate the anomaly but do not add up to the score. Available when the
        wrapped estimator has ``feature_errors``, or ``transform`` and
        ``inverse_transform``.

        Put features on one scale first (e.g. a ``StandardScaler`` before the
        detector): the model explains a corrupted reading partly by moving the
        features that go with it, and large-scale features then take a large
        share of the error. A nonlinear model may also put the largest error
        of a sample on such a companion feature; averaged over several
        anomalous samples, the errors point at the corrupted input more
        reliably.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples, in the space the wrapped estimator was fitted in (after
            any scaler that precedes the detector in a pipeline). Sequences
            for a recurrent estimator, variable-length lists included. A
            sparse matrix goes to a skae estimator as it is, and to another
            estimator a dense batch of rows at a time.

        Returns
        -------
        errors : ndarray of shape (n_samples, n_features) or list of ndarray
            ``(X - inverse_transform(transform(X))) ** 2``, in the shape of
            ``X`` (a list of arrays for a list of sequences; dense for sparse
            input; a DataFrame with the same index and columns for a
            DataFrame), or the wrapped estimator's own ``feature_errors(X)``.

        Examples
        --------
        Three sensors read one signal; the third one of the last sample is off:

        >>> import numpy as np
        >>> from sklearn.decomposition import PCA
        >>> from skae import AnomalyDetector
        >>> rng = np.random.RandomState(0)
        >>> signal = rng.normal(size=(100, 1))
        >>> X = np.hstack([signal, 2 * signal, -signal]) + 0.1 * rng.normal(size=(100, 3))
        >>> detector = AnomalyDetector(PCA(n_components=1)).fit(X)
        >>> X_new = np.array([[1.0, 2.0, -1.0], [1.0, 2.0, 3.0]])
        >>> detector.predict(X_new)
        array([ 1, -1])
        >>> detector.feature_errors(X_new).round(2)
        array([[ 0.  ,  0.  ,  0.  ],
               [ 0.44,  1.79, 11.16]])
        """
        check_is_fitted(self)
        if callable(getattr(self.estimator_, "feature_errors", None)):
            return self.estimator_.feature_errors(X)
        if sp.issparse(X):
            # Dense batches of rows: the foreign estimator never sees X whole and dense.
            X = sp.csr_matrix(X)
            rows = batch_rows(X, heavy=False)
            return np.concatenate(
                [
                    self._reconstruction_errors(X[i : i + rows].toarray())
                    for i in range(0, X.shape[0], rows)
                ]
            )
        return like_input(on_host(self._reconstruction_errors, X), X)

    def _reconstruction_errors(self, X):
        """``feature_errors`` of an estimator with ``transform`` and ``inverse_transform``."""
        codes = self.estimator_.transform(X)
        inverse = self.estimator_.inverse_transform
        if isinstance(X, list | tuple) and "n_timesteps" in inspect.signature(inverse).parameters:
            # Variable-length sequences: decode each code to its sequence's length.
            X_hat = inverse(codes, n_timesteps=[len(x) for x in X])
            return [
                _errors.squared_errors(x_hat, np.asarray(x, dtype=x_hat.dtype).reshape(x_hat.shape))
                for x, x_hat in zip(X, X_hat, strict=True)
            ]
        X_hat = inverse(codes)
        X = np.asarray(X, dtype=X_hat.dtype)
        if X.shape != X_hat.shape:
            raise ValueError(
                f"feature_errors needs reconstructions of X's shape {X.shape}, "
                f"but the wrapped estimator returned shape {X_hat.shape}."
            )
        return _errors.squared_errors(X_hat, X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            inner = get_tags(self._estimator())
        except (AttributeError, TypeError):
            return tags  # not an estimator: fit will refuse it with a clear error
        # The wrapped estimator validates the input, so it says what is accepted.
        tags.input_tags = copy.copy(inner.input_tags)
        tags.non_deterministic = inner.non_deterministic
        tags.array_api_support = inner.array_api_support  # torch tensors stay on their device
        return tags

"""An ensemble of small autoencoders on subsamples, for anomaly scores."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _errors, _inference
from ._checks import check_weights
from ._chunked import ChunkedData, reservoir_sample, row_draws
from ._device import check_float32_range, forked_rng, resolve_device, to_device
from ._doc_link import DocLinkMixin
from ._inference import batched, check_output_size
from ._inputs import FLOAT_DTYPES
from ._training import transaction

# Robust scale = IQR / 1.349, which is the standard deviation for Gaussian
# data; it may not fall below this fraction of the standard deviation, so a
# feature whose IQR is nearly zero is magnified at most tenfold rather than
# without bound. A feature whose IQR is exactly zero (one value on at least
# half of its rows: a one-hot column, a mostly-zero embedding unit) has no
# dense core to spread out, and is scaled by its standard deviation.
SCALE_FLOOR = 0.1
IQR_TO_STD = 1.349
# Scaled inputs are clipped here: far beyond any inlier, and small enough that
# squared errors stay finite in float32.
CLIP = 1e6
# Rows scored at once per member at inference (memory: members x rows x width):
# small enough that a batch's intermediates stay in the CPU's caches; fewer
# for wide rows (see AutoEncoderEnsemble._inference_rows).
INFERENCE_ROWS = 1024
# Rows that stand for a ChunkedData (a uniform sample drawn in one pass).
MAX_STATISTICS_ROWS = 100_000
# Training rows (a uniform sample) whose per-feature medians and quartiles
# set the scaling: their standard errors are then under 1% of the spread.
MAX_SCALING_ROWS = 20_000
# Training rows whose scores set each member's median and MAD: a uniform
# sample of the training data. The median's standard error is then under 2%
# of the spread, and the statistics cost a fraction of one scoring pass.
MAX_NORMALISATION_ROWS = 8192
# Batched products with fewer output columns than this are padded to it at
# inference: on CPU they are several times slower, not cheaper (1,024 rows x 16
# hidden units x 32 members: 1.2-1.7 ms for 3 to 10 columns, 0.4 ms for 16).
MIN_PRODUCT_WIDTH = 16
# Members that hold neighbour rows (the first ones; all when there are fewer):
# on the development sets 8 members' 256 rows scored as well as 32 members',
# at a quarter of the cost.
NEIGHBOR_MEMBERS = 8
# The neighbour members' feature scalings for each neighbor_scaling (see
# _neighbor_weights); "mixed" gives the first half of them the first one.
NEIGHBOR_SCALINGS = {"robust": ("robust",), "none": ("none",), "mixed": ("robust", "none")}
# Ridge on each member's code covariance, relative to its mean variance.
RIDGE = 1e-3
# The fitted per-member statistics that normalise the three terms of the score.
NORMALISATION = (
    "error_median",
    "error_mad",
    "distance_median",
    "distance_mad",
    "neighbor_median",
    "neighbor_mad",
)


class AutoEncoderEnsemble(DocLinkMixin, BaseEstimator):
    """Ensemble of small autoencoders, each trained briefly on a subsample.

    An anomaly scorer built like :class:`~sklearn.ensemble.IsolationForest`:
    ``n_estimators`` small autoencoders, each fitted on its own random
    subsample of ``max_samples`` rows (256 by default), with code sizes drawn
    at random, briefly and with a trimmed loss. A sample's score has two
    terms, each normalised per member by its median and median absolute
    deviation (MAD) on the training data and averaged over members: the
    members' reconstruction error (weight ``error_weight``, 0 by default),
    and a neighbour term (weight 1): its distance to the rows of the first
    eight members' subsamples, the mean over ``neighbor_groups`` groups of
    those rows of the distance to the group's nearest row. The score is
    minus their weighted mean. All members are trained together as one
    batched network, in one loop of ``max_iter`` full-batch Adam steps on
    their subsamples.

    It is the default scoring model of :class:`~skae.AnomalyDetector`; see
    Notes for why it is built this way.

    Parameters
    ----------
    n_estimators : int, default=8
        Number of autoencoders. The default score reads the neighbour rows
        of the first eight only, so more members change it only through
        ``error_weight > 0`` or ``code_density=True``, and make
        :meth:`feature_errors` an average over more members, at a cost
        proportional to their number (most of the fit's time on wide data).
    max_samples : "auto", int or float, default="auto"
        Rows in each member's subsample, drawn without replacement:
        ``"auto"`` is ``min(256, n_samples)``, an int is capped at
        ``n_samples``, a float in (0, 1] is that fraction of ``n_samples``.
    max_components : "auto" or int, default="auto"
        Largest code size; each member's code size is drawn uniformly from
        1 to it. ``"auto"`` is half the number of features, rounded up. Capped
        at the number of features.
    hidden_size : int, default=16
        Width of the one hidden layer (tanh) on each side of the code.
    max_iter : int, default=100
        Training steps; each is a full-batch Adam step on every member's
        subsample (so it is also the number of epochs).
    learning_rate_init : float, default=0.01
        Adam's step size.
    trim_fraction : float in [0, 1), default=0.2
        Fraction of each member's subsample left out of each step's loss:
        the rows it reconstructs worst at that step, which are the likeliest
        anomalies in unlabelled training data.
    neighbor_samples : int, default=256
        Rows of the subsample of each of the first eight members (a random
        part of it, capped at its size: by default all of it) that the
        neighbour term measures distances to (see ``neighbor_scaling``). 0
        leaves the term out.
    neighbor_scaling : {"mixed", "robust", "none"}, default="mixed"
        The units in which the neighbour term measures distances.
        ``"robust"``: the robust scaling the members train on (every
        feature spread alike, see Notes). ``"none"``: the data's own units
        (centred, one common scale for all features), as nearest-neighbour
        detectors such as KNN or LOF use them. ``"mixed"``: the first half
        of the neighbour members measure ``"robust"``, the others
        ``"none"``. Every choice gives the same score when all features are
        multiplied by one factor; only ``"robust"`` gives it when each is
        multiplied by its own.
    neighbor_groups : "auto" or int, default="auto"
        The neighbour rows of a member are split into this many equal groups
        (capped so that each has at least two rows); its neighbour term is
        the mean over groups of the distance to the group's nearest row.
        One group gives the nearest-neighbour distance; ``g`` groups give
        about the distance to the ``g``-th nearest row, estimated with less
        noise. ``"auto"`` is 8, or 1 with ``novelty=True``: in unlabelled
        data a few anomalies close together are each other's nearest
        neighbours, but not in most groups; in clean data the nearest row is
        the sharpest evidence.
    error_weight : float, default=0.0
        Weight of the members' normalised reconstruction error in the score,
        against 1 for the neighbour term (and 1 for the code distance with
        ``code_density=True``). 0, the default, scores by the neighbour term
        alone: on tabular sets not used to develop it, adding the error
        lowered the mean ROC-AUC (see Notes). The members are trained either
        way: :meth:`feature_errors` reads their reconstructions.
    novelty : bool, default=False
        Whether the training data is known to hold no anomalies (the
        one-class setting, the ``novelty`` idea of scikit-learn's
        :class:`~sklearn.neighbors.LocalOutlierFactor`). Then nothing is
        trimmed (``trim_fraction`` is ignored) and, when
        ``neighbor_samples > 0``, every row of each member's subsample is a
        neighbour row: clean data is used fully.
    code_density : bool, default=False
        Also score by the Mahalanobis distance of each member's code to the
        codes of its subsample (normalised the same way, and averaged with
        the reconstruction error). Off by default: see Notes.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsamples, the code sizes and the initial weights.
    device : str or torch.device, default="auto"
        Where to train and score: ``"auto"`` is CUDA when available.

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X` has
        feature names that are all strings.
    center_ : ndarray of shape (n_features,)
        Per-feature median of the training data (of a uniform sample of
        20,000 of its rows when there are more).
    scale_ : ndarray of shape (n_features,)
        Per-feature robust scale (see Notes).
    estimators_samples_ : ndarray of shape (n_estimators, n_subsample)
        Training rows each member was fitted on.
    neighbor_rows_ : ndarray of shape (n_neighbor_members, n_neighbor_rows, n_features)
        The neighbour rows of the first ``min(8, n_estimators)`` members,
        robustly scaled, then multiplied by the member's ``neighbor_weights_``.
    neighbor_weights_ : ndarray of shape (n_neighbor_members, n_features)
        Each neighbour member's factor on each robustly scaled feature: its
        distances are measured between rows so multiplied (all ones for
        ``neighbor_scaling="robust"``).
    neighbor_groups_ : int
        Number of groups the neighbour rows of a member are split into (0
        without neighbour rows).
    code_sizes_ : ndarray of shape (n_estimators,)
        Code size of each member.
    coefs_ : list of ndarray
        Weights of the four layers (encoder hidden, code, decoder hidden,
        output) of all members; entry ``i`` has shape (n_estimators,
        fan_in, fan_out). Code units beyond a member's code size are unused.
    intercepts_ : list of ndarray
        Biases of the four layers, of shape (n_estimators, fan_out).
    loss_curve_ : list of float
        Trimmed training loss (mean over members) at each step.
    n_iter_ : int
        Number of training steps run.

    See Also
    --------
    skae.AnomalyDetector : Cutoffs and labels on top of these scores.
    sklearn.ensemble.IsolationForest : The subsampling ensemble it follows.

    Notes
    -----
    Why each part is there (the benchmark is ``benchmarks/bench_anomaly.py``;
    the ablations are on its documentation page):

    - Training data for anomaly detection hold anomalies. Small subsamples
      (as IsolationForest's 256 rows per tree), few training steps and a
      trimmed loss keep members from learning to reconstruct them: an
      autoencoder fits the dense normal mass first.
    - One autoencoder's quality swings with its code size and its random
      start; an average over members with varied code sizes, each normalised
      robustly (median, MAD) so that no member dominates, is stable.
    - Inputs are scaled per feature by the median and the robust scale
      ``max(IQR / 1.349, 0.1 * std)``, or the std where the IQR is 0. On
      skewed features (e.g. lab values) the IQR spreads out the dense core
      of the data, where anomalies hide from a scale set by the tails; a
      feature that takes one value on half of its rows or more (a one-hot
      column, a mostly-zero embedding unit) has no such core, and the tenth
      of its std would magnify its rare values tenfold over other features.
      The members train on this scaling; the neighbour term uses it with
      ``neighbor_scaling="robust"`` (see below). Beyond 20,000 training rows
      both come from a uniform sample of 20,000 (their standard errors are
      then under 1% of the spread).
    - Reconstruction error misses anomalies that lie on the learned manifold
      but far from any data (between clusters); a subsampled
      nearest-neighbour ensemble catches those. Its distance is averaged
      over eight groups of a member's 256 rows, about the distance to the
      8th nearest row: a few anomalies close together in the training data
      do not vouch for each other, as they do for the nearest row.
    - The score is the neighbour term alone by default. On 24 ADBench sets
      that no earlier choice had used, adding the reconstruction error with
      any weight from 1/4 to 1 lowered the mean ROC-AUC (in a prototype:
      0.749 alone, 0.735 to 0.742 with it), and on nine shipped sets it
      added 0.001 to 0.005. The trained members stay, for
      ``error_weight > 0`` and for :meth:`feature_errors`, which shows the
      features the members reconstruct worst.
    - Distances need units. The robust scaling gives every feature the same
      spread and ignores each feature's unit, but magnifies nearly constant
      or mostly-zero features (image and text embeddings) into noise: on 23
      ADBench embedding sets a KNN on the raw features beat it on every set.
      The data's own units (as KNN uses them) fail where a feature in large
      units is noise. So by default half the neighbour members measure in
      each; where one fails, the other still ranks. In a study on 80 sets in
      six groups (the anomaly benchmark page) this mix's mean ROC-AUC was
      within 0.03 of the best scaling tried on every group, where either
      scaling alone fell 0.07 to 0.2 behind on some group.
    - Reconstruction error misses anomalies that lie on the learned manifold
      but in a sparse part of it; ``code_density=True`` adds the Mahalanobis
      distance of the code for those. On the benchmark it helped after
      standard scaling but cost mean ROC-AUC after the robust scaling above
      (which already spreads out the dense core), so it is off by default.

    Computation runs in float32; inputs beyond float32's range are rejected.
    Sparse input (SciPy CSR/CSC) is densified a batch of rows (or, for the
    scaling, a block of columns) at a time. ``fit`` takes a
    :class:`~skae.ChunkedData` too; see :meth:`fit`. Inference runs in
    batches of bounded memory, retried in smaller batches when CUDA runs
    out of memory; the members' torch module is built once and kept between
    calls (it is not pickled: a loaded ensemble rebuilds it from its arrays).
    A failed ``fit`` leaves the ensemble as it was.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import AutoEncoderEnsemble
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(300, 3)) @ rng.normal(size=(3, 8))  # rank-3 data
    >>> ensemble = AutoEncoderEnsemble(random_state=0).fit(X)
    >>> far = 10 * rng.normal(size=(2, 8))
    >>> bool(ensemble.score_samples(far).max() < ensemble.score_samples(X).min())
    True
    """

    _parameter_constraints: dict = {
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "max_samples": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="right"),
        ],
        "max_components": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "trim_fraction": [Interval(Real, 0, 1, closed="left")],
        "neighbor_samples": [Interval(Integral, 0, None, closed="left")],
        "neighbor_groups": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "neighbor_scaling": [StrOptions(set(NEIGHBOR_SCALINGS))],
        "error_weight": [Interval(Real, 0, None, closed="left")],
        "novelty": ["boolean"],
        "code_density": ["boolean"],
        "random_state": ["random_state"],
        "device": [str, torch.device],
    }

    def __init__(
        self,
        n_estimators=8,
        *,
        max_samples="auto",
        max_components="auto",
        hidden_size=16,
        max_iter=100,
        learning_rate_init=0.01,
        trim_fraction=0.2,
        neighbor_samples=256,
        neighbor_groups="auto",
        neighbor_scaling="mixed",
        error_weight=0.0,
        novelty=False,
        code_density=False,
        random_state=None,
        device="auto",
    ):
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_components = max_components
        self.hidden_size = hidden_size
        self.max_iter = max_iter
        self.learning_rate_init = learning_rate_init
        self.trim_fraction = trim_fraction
        self.neighbor_samples = neighbor_samples
        self.neighbor_groups = neighbor_groups
        self.neighbor_scaling = neighbor_scaling
        self.error_weight = error_weight
        self.novelty = novelty
        self.code_density = code_density
        self.random_state = random_state
        self.device = device

    # ------------------------------------------------------------- fitting

    def _validate(self, X, *, reset: bool, min_samples: int | None = None):
        """Check ``X`` as the autoencoders do: float dtypes, sparse CSR/CSC, float32's range."""
        X = validate_data(
            self,
            X,
            dtype=FLOAT_DTYPES,
            accept_sparse=["csr", "csc"],
            reset=reset,
            ensure_min_samples=(2 if reset else 1) if min_samples is None else min_samples,
        )
        check_float32_range(X)
        return X

    def _subsample_size(self, n_samples: int) -> int:
        if self.max_samples == "auto":
            return min(256, n_samples)
        if isinstance(self.max_samples, Integral):
            return min(self.max_samples, n_samples)
        return max(1, int(self.max_samples * n_samples))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Fit the members, each on its own subsample of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or ChunkedData
            Training data, unlabelled; it may hold anomalies. A sparse
            matrix is densified a block at a time. A
            :class:`~skae.ChunkedData` is read once, in its chunks' order:
            a uniform sample of at most 100 000 of its rows (all of them
            when there are no more) stands for the data, and the subsamples,
            the scaling and the members' statistics come from it as from an
            array. With no more rows than that, the fit equals the fit on
            the concatenated chunks.
        y : None
            Ignored; present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample: each member's subsample draws
            rows (without replacement) with probabilities proportional to
            them, and rows of zero weight are never drawn. None, or equal
            weights, draws uniformly. Not with a :class:`~skae.ChunkedData`.

        Returns
        -------
        self : object
            The fitted ensemble.

        Raises
        ------
        ValueError
            If training diverges (a non-finite loss). Like any error in
            ``fit``, it leaves the ensemble exactly as it was before the call.
        """
        with transaction(self):
            _inference.on_host(self._fit, X, sample_weight)
        return self

    def _fit(self, X, sample_weight=None) -> None:
        if self.neighbor_samples == 0 and self.error_weight == 0 and not self.code_density:
            raise ValueError(
                "neighbor_samples=0 and error_weight=0 leave the score without a term; "
                "set error_weight > 0 (e.g. 1.0) to score by the reconstruction error, "
                "or neighbor_samples > 0."
            )
        device = resolve_device(self.device)
        rng = check_random_state(self.random_state)
        if isinstance(X, ChunkedData):
            weights = check_weights(sample_weight, X, None)  # None, or refused
            X, row_ids, n_samples = reservoir_sample(X, MAX_STATISTICS_ROWS, rng, self._read_chunk)
            if n_samples < 2:
                raise ValueError(
                    f"ChunkedData holds {n_samples} sample; AutoEncoderEnsemble needs at least 2."
                )
        else:
            X = self._validate(X, reset=True)
            weights = check_weights(sample_weight, X, (X,))
            row_ids, n_samples = None, X.shape[0]
        n_rows, n_features = X.shape
        draws = row_draws(rng)  # every draw of rows without replacement

        scaling_rows = X
        if n_rows > MAX_SCALING_ROWS:
            scaling_rows = X[np.sort(draws.choice(n_rows, MAX_SCALING_ROWS, replace=False))]
        center, spread = _robust_scaling(scaling_rows)
        scale = np.where(spread > 0, spread, 1.0)  # constant features: as they are
        n_sub = min(self._subsample_size(n_samples), n_rows)
        p = None
        if weights is not None:
            n_sub = min(n_sub, int(np.count_nonzero(weights)))
            p = weights / weights.sum()
        samples = np.stack(
            [draws.choice(n_rows, n_sub, replace=False, p=p) for _ in range(self.n_estimators)]
        )
        width = self.max_components
        if width == "auto":
            width = math.ceil(n_features / 2)
        width = min(width, n_features)
        code_sizes = rng.randint(1, width + 1, size=self.n_estimators)
        seed = rng.randint(np.iinfo(np.int32).max)

        rows = _ScaledRows(X, center, scale)
        n_neighbors = min(self.neighbor_samples, n_sub)
        if self.novelty and n_neighbors:
            n_neighbors = n_sub
        neighbor_members = min(NEIGHBOR_MEMBERS, self.n_estimators)
        neighbor_weights = _neighbor_weights(
            spread, scale, NEIGHBOR_SCALINGS[self.neighbor_scaling], neighbor_members
        )
        with forked_rng(device):
            torch.manual_seed(seed)
            net = _Members(
                n_features, self.hidden_size, code_sizes, width, n_neighbors, neighbor_members
            )
            net.init_weights()
        net.neighbor_weights.copy_(torch.as_tensor(neighbor_weights))
        net.to(device)
        X_sub = rows[samples.ravel()].reshape(*samples.shape, n_features)
        X_sub = to_device(X_sub, device)  # (members, rows, features)
        trim = 0.0 if self.novelty else self.trim_fraction
        losses = net.train_trimmed(X_sub, self.max_iter, self.learning_rate_init, trim)
        if not np.all(np.isfinite(losses)):
            raise ValueError(
                "Training diverged (non-finite loss); lower learning_rate_init "
                f"(got {self.learning_rate_init})."
            )
        if self.code_density:
            # Each member's code covariance: wide codes make it the dearest part of
            # the fit, so it is computed only for the score that uses it.
            net.set_code_statistics(X_sub)
        # The subsamples are in random order: each member's first rows are a
        # random part of its subsample.
        net.neighbors.copy_(X_sub[:neighbor_members, :n_neighbors] * net.neighbor_weights[:, None])
        del X_sub
        net.requires_grad_(False)
        # Each member's scores on (a uniform sample of) the training data set
        # its medians and MADs. A row never counts as its own neighbour, so the
        # statistics are those of new data (with at least two neighbours).
        # With sample weights: the rows of nonzero weight, drawn in proportion.
        stats_rows = np.arange(n_rows) if weights is None else np.flatnonzero(weights)
        if len(stats_rows) > MAX_NORMALISATION_ROWS:
            stats_rows = np.sort(draws.choice(n_rows, MAX_NORMALISATION_ROWS, replace=False, p=p))
        own = samples[:neighbor_members, :n_neighbors] if n_neighbors > 1 else None
        groups = self.neighbor_groups
        if groups == "auto":
            groups = 1 if self.novelty else 8
        # At least two rows a group: a training row is not its own neighbour.
        groups = int(max(1, min(groups, n_neighbors // 2))) if n_neighbors else 0
        terms = self._member_terms(net, device, rows, stats_rows, own, groups)

        self.center_, self.scale_ = center, scale
        self.estimators_samples_ = samples if row_ids is None else row_ids[samples]
        self.code_sizes_ = code_sizes
        self.coefs_ = [w.detach().cpu().numpy() for w in net.weights]
        self.intercepts_ = [b.detach().cpu().numpy()[:, 0] for b in net.biases]
        self.code_means_ = net.code_mean.cpu().numpy()[:, 0]
        self.code_precisions_ = net.code_precision.cpu().numpy()
        self.neighbor_rows_ = net.neighbors.cpu().numpy()
        self.neighbor_weights_ = neighbor_weights
        self.neighbor_groups_ = groups
        self.error_median_, self.error_mad_ = _median_mad(terms[0])
        self.distance_median_, self.distance_mad_ = _median_mad(terms[1])
        self.neighbor_median_, self.neighbor_mad_ = _median_mad(terms[2][:neighbor_members])
        self.loss_curve_ = [float(v) for v in losses]
        self.n_iter_ = len(losses)
        # The trained members score until the next fit (not pickled; see __getstate__).
        self._members_cache = _MembersCache(device, net)

    def _read_chunk(self, chunk, first: bool) -> np.ndarray:
        """A checked chunk of a ChunkedData, dense (the reservoir is)."""
        chunk = self._validate(chunk, reset=first, min_samples=1)
        return chunk.toarray() if sp.issparse(chunk) else chunk

    # ----------------------------------------------------------- inference

    def __getstate__(self):
        """The ensemble's state as plain data: the cached torch members are left out."""
        state = dict(super().__getstate__())
        state.pop("_members_cache", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._members_cache = _MembersCache()  # filled at the first call

    def _members(self) -> tuple[_Members, torch.device]:
        """The members as one torch module on the device: built once, then cached."""
        device = resolve_device(self.device)
        cache = self.__dict__.get("_members_cache")
        if cache is None:
            cache = self._members_cache = _MembersCache()
        if cache.module is None or cache.device != device:
            cache.module = _Members.from_arrays(
                self.coefs_,
                self.intercepts_,
                self.code_sizes_,
                self.code_means_,
                self.code_precisions_,
                self.neighbor_rows_,
                # Ensembles fitted before neighbor_scaling: the robust scaling.
                getattr(self, "neighbor_weights_", None),
            ).to(device)
            cache.module.requires_grad_(False)
            cache.device = device
        return cache.module, device

    def _score_settings(self) -> tuple[int, float]:
        """Neighbour groups and error weight of the score.

        Ensembles fitted before these existed score as they did: one group,
        error and neighbour terms weighted equally.
        """
        return max(getattr(self, "neighbor_groups_", 1), 1), getattr(self, "error_weight", 1.0)

    def _inference_rows(self, net, n_features: int) -> int:
        """Rows per inference batch: each row's widest intermediate stays bounded.

        That is the members' layers (members x widest layer) or the distances
        to the neighbour rows (neighbour members x their rows).
        """
        layers = net.n_members * max(n_features, self.hidden_size)
        neighbors, n_neighbors = net.neighbors.shape[:2]
        per_row = max(layers, neighbors * n_neighbors)
        return max(1, min(INFERENCE_ROWS, _inference.INFERENCE_BATCH_ELEMENTS // per_row))

    def _member_terms(self, net, device, rows, row_ids, own, groups):
        """Each member's error, code distance and neighbour distance on ``rows[row_ids]``.

        Three arrays of shape (members, len(row_ids)). ``own`` holds each
        member's neighbour rows as row numbers of ``rows`` (or None): a row
        is then never its own neighbour.
        """
        own = None if own is None else torch.as_tensor(own, device=device)
        code_density = self.code_density

        def terms(net, batch, ids):
            exclude = None if own is None else own[:, None, :] == ids[None, :, None]
            err, distance, nearest = net.terms(batch, groups, exclude, code_density=code_density)
            return torch.stack([err, distance, nearest], dim=-1).transpose(0, 1)

        out = batched(
            terms,
            net,
            device,
            _Rows(rows, row_ids),
            row_ids,
            rows=self._inference_rows(net, rows.shape[1]),
            overflow="high",
            name=type(self).__name__,
            out_dtype=np.float64,
        )
        return [np.ascontiguousarray(out[..., k].T) for k in range(3)]

    def _normalisation(self, device) -> dict:
        """The members' medians and MADs as float32 tensors on ``device``."""
        return {
            name: torch.as_tensor(getattr(self, name + "_"), dtype=torch.float32, device=device)
            for name in NORMALISATION
        }

    def score_samples(self, X):
        """Anomaly score of each sample; higher is more normal.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples to score; a sparse matrix is densified a batch at a time.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Minus the weighted mean of the normalised terms, each
            ``(term - training median) / training MAD`` averaged over
            members: the neighbour term (weight 1, when ``neighbor_samples
            > 0``), the reconstruction error (weight ``error_weight``) and
            the code distance (weight 1, with ``code_density=True``).
        """
        check_is_fitted(self)
        if isinstance(X, torch.Tensor):  # the members read NumPy: a host round trip
            return _inference.on_host(self.score_samples, X)
        X = self._validate(X, reset=False)
        net, device = self._members()
        stats = self._normalisation(device)
        code_density = self.code_density
        groups, error_weight = self._score_settings()

        def scores(net, batch):
            return net.score(batch, stats, groups, error_weight, code_density=code_density)

        return self._batched(scores, net, device, _ScaledRows(X, self.center_, self.scale_))

    def score(self, X, y=None):
        """Mean of :meth:`score_samples`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples to score.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        score : float
            The mean per-sample score.
        """
        return float(np.mean(self.score_samples(X)))

    def feature_errors(self, X):
        """Squared reconstruction error of each feature, averaged over members.

        Errors are measured on the robustly scaled features (see Notes of the
        class), and each member's are divided by its training MAD of errors,
        as in the score. So with ``neighbor_samples=0``, ``error_weight >
        0`` and ``code_density=False``, ``score_samples(X) +
        feature_errors(X).mean(axis=1)`` is the same constant for every
        sample: the errors split the score over features (with the other
        terms, they split its reconstruction part; with the default
        ``error_weight=0`` they show which features the members reconstruct
        worst, beside a score set by the neighbour term).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples to explain; a sparse matrix is densified a batch at a time.

        Returns
        -------
        errors : ndarray of shape (n_samples, n_features)
            Larger where a feature is further from what the members
            reconstruct from the sample (dense for sparse input; a DataFrame
            with the same index and columns for a DataFrame).
        """
        check_is_fitted(self)
        if isinstance(X, torch.Tensor):  # the members read NumPy: a host round trip
            return _inference.on_host(self.feature_errors, X)
        X_in, X = X, self._validate(X, reset=False)
        check_output_size(X.shape, "feature_errors(X)")
        net, device = self._members()
        weight = torch.as_tensor(1.0 / self.error_mad_, device=device)[:, None, None]

        def errors(net, batch):
            err = _errors.squared_errors(net.decode(net.encode(batch[None])), batch)
            return (err * weight).mean(0)

        out = self._batched(errors, net, device, _ScaledRows(X, self.center_, self.scale_))
        return _inference.like_input(out, X_in)

    def _batched(self, fn, net, device, rows) -> np.ndarray:
        """``fn(net, batch)`` over the scaled ``rows`` in bounded batches, in float64."""
        return batched(
            fn,
            net,
            device,
            rows,
            rows=self._inference_rows(net, rows.shape[1]),
            overflow="high",
            name=type(self).__name__,
            out_dtype=np.float64,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = True
        return tags


class _MembersCache:
    """The members' torch module and its device, kept between calls (never pickled)."""

    def __init__(self, device=None, module=None):
        self.device = device
        self.module = module


def _robust_scaling(X) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature median and robust scale ``max(IQR / 1.349, 0.1 * std)``.

    Where the IQR is 0 the scale is the std (0 for constant features). A
    sparse ``X`` is densified a block of columns at a time.
    """
    if sp.issparse(X):
        X = X.tocsc()
        step = max(2, _inference.INFERENCE_BATCH_ELEMENTS // max(1, X.shape[0]))
        parts = [
            _robust_scaling(X[:, j : j + step].toarray(order="C"))
            for j in range(0, X.shape[1], step)
        ]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    center = np.median(X, axis=0)
    q1, q3 = np.percentile(X, [25, 75], axis=0)
    iqr, std = q3 - q1, X.std(axis=0)
    return center, np.where(iqr > 0, np.maximum(iqr / IQR_TO_STD, SCALE_FLOOR * std), std)


def _neighbor_weights(spread, scale, scalings, members: int) -> np.ndarray:
    """Each neighbour member's factors on the robustly scaled features (members, features).

    ``spread`` is the robust scale of each feature (0 if constant), ``scale``
    the one the features are divided by. "robust" keeps that scaling;
    "none" divides every feature by one common scale instead (the data's own
    units), the median spread of the features that vary. ``scalings`` are
    given to equal consecutive runs of the members.
    """
    varying = spread[spread > 0]
    common = np.median(varying) if len(varying) else 1.0
    factors = {"robust": np.ones_like(scale), "none": scale / common}
    runs = np.array_split(np.arange(members), len(scalings))
    weights = np.empty((members, len(scale)))
    for scaling, run in zip(scalings, runs, strict=True):
        weights[run] = factors[scaling]
    return weights.astype(np.float32)


class _ScaledRows:
    """Rows of ``X`` robustly scaled as float32, computed when read.

    Batched inference reads it a batch at a time, so neither the scaled
    copy of ``X`` nor, for a sparse ``X``, its dense form is ever whole in
    memory.
    """

    dtype = np.dtype(np.float32)

    def __init__(self, X, center: np.ndarray, scale: np.ndarray):
        self.X = X.tocsr() if sp.issparse(X) else X
        self.center, self.scale = center, scale
        self.shape = X.shape
        self.ndim = 2
        self.size = X.shape[0] * X.shape[1]

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows) -> np.ndarray:
        X = self.X[rows]
        if sp.issparse(X):
            X = X.toarray()
        return np.clip((X - self.center) / self.scale, -CLIP, CLIP).astype(np.float32)


class _Rows:
    """The rows ``row_ids`` of ``rows``, read a batch at a time."""

    def __init__(self, rows, row_ids: np.ndarray):
        self.rows, self.row_ids = rows, row_ids
        self.dtype = rows.dtype
        self.shape = (len(row_ids), rows.shape[1])
        self.ndim = 2
        self.size = self.shape[0] * self.shape[1]

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows) -> np.ndarray:
        return self.rows[self.row_ids[rows]]


def _tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh as ``2 sigmoid(2x) - 1``: the same function, several times faster on CPU."""
    return 2 * torch.sigmoid(2 * x) - 1


def _median_mad(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-member (row) median and median absolute deviation; a zero MAD becomes 1."""
    median = np.median(values, axis=1)
    mad = np.median(np.abs(values - median[:, None]), axis=1)
    return median, np.where(mad > 0, mad, 1.0)


class _Members(torch.nn.Module):
    """All members' MLP autoencoders as batched weights: one bmm per layer.

    Every member has layers features -> hidden -> width -> hidden -> features;
    a member with a code smaller than ``width`` has its extra code units
    masked to zero, so they carry nothing and get no gradient.
    """

    def __init__(
        self,
        n_features: int,
        hidden: int,
        code_sizes: np.ndarray,
        width: int,
        n_neighbors: int,
        neighbor_members: int | None = None,
    ):
        super().__init__()
        members = len(code_sizes)
        shapes = [(n_features, hidden), (hidden, width), (width, hidden), (hidden, n_features)]
        self.weights = torch.nn.ParameterList(
            torch.nn.Parameter(torch.empty(members, a, b)) for a, b in shapes
        )
        self.biases = torch.nn.ParameterList(
            torch.nn.Parameter(torch.zeros(members, 1, b)) for _, b in shapes
        )
        mask = torch.arange(width)[None, :] < torch.as_tensor(code_sizes)[:, None]
        self.register_buffer("code_mask", mask.float()[:, None, :])  # (members, 1, width)
        self.register_buffer("code_mean", torch.zeros(members, 1, width))
        self.register_buffer("code_precision", torch.eye(width).repeat(members, 1, 1))
        # The neighbour rows (robustly scaled) of the first neighbour_members
        # members, for the neighbour term.
        neighbor_members = members if neighbor_members is None else neighbor_members
        self.register_buffer("neighbors", torch.zeros(neighbor_members, n_neighbors, n_features))
        # Each neighbour member's factors on the features: its distances are
        # between rows so multiplied (its neighbour rows are stored so).
        self.register_buffer("neighbor_weights", torch.ones(neighbor_members, n_features))

    @torch.no_grad()
    def init_weights(self) -> None:
        """torch.nn.Linear's default: uniform in +-1/sqrt(fan_in), from torch's RNG."""
        for w in self.weights:
            w.copy_((2 * torch.rand(w.shape) - 1) / math.sqrt(w.shape[1]))

    @property
    def n_members(self) -> int:
        return self.code_mask.shape[0]

    @classmethod
    def from_arrays(
        cls, coefs, intercepts, code_sizes, code_means, code_precisions, neighbors, weights=None
    ):
        n_features, hidden = coefs[0].shape[1:]
        net = cls(
            n_features, hidden, code_sizes, coefs[1].shape[2], neighbors.shape[1], len(neighbors)
        )
        with torch.no_grad():
            for p, a in zip(net.weights, coefs, strict=True):
                p.copy_(torch.as_tensor(a))
            for p, a in zip(net.biases, intercepts, strict=True):
                p.copy_(torch.as_tensor(a)[:, None, :])
            net.code_mean.copy_(torch.as_tensor(code_means)[:, None, :])
            net.code_precision.copy_(torch.as_tensor(code_precisions))
            net.neighbors.copy_(torch.as_tensor(neighbors))
            if weights is not None:
                net.neighbor_weights.copy_(torch.as_tensor(weights))
        return net

    def encode(self, X: torch.Tensor) -> torch.Tensor:
        # X: (members or 1, rows, features) -> codes (members, rows, width)
        w, b = self.weights, self.biases
        hidden = _tanh(torch.matmul(X, w[0]) + b[0])
        return (torch.bmm(hidden, w[1]) + b[1]) * self.code_mask

    def decode(self, Z: torch.Tensor) -> torch.Tensor:
        w, b = self.weights, self.biases
        return torch.bmm(_tanh(torch.bmm(Z, w[2]) + b[2]), w[3]) + b[3]

    def train_trimmed(self, X: torch.Tensor, steps: int, lr: float, trim: float) -> np.ndarray:
        """Full-batch Adam on each member's rows ``X`` (members, rows, features)."""
        # The fused implementation does the whole update in one kernel: on small
        # members the per-parameter loop of the default one costs more than it.
        fused = X.device.type in ("cpu", "cuda") or None
        optimizer = torch.optim.Adam(self.parameters(), lr=lr, fused=fused)
        n_rows = X.shape[1]
        keep = max(1, round((1 - trim) * n_rows))
        losses = torch.empty(steps, device=X.device)
        for step in range(steps):
            errors = _errors.squared_errors(self.decode(self.encode(X)), X)
            errors = _errors.sample_mean(errors, start_dim=2)  # (members, rows)
            if keep < n_rows:
                # Zero weight on each member's n_rows - keep worst rows: one topk
                # of the few dropped rows, cheaper than sorting out the kept ones.
                worst = torch.topk(errors.detach(), n_rows - keep, dim=1).indices
                errors = errors * torch.ones_like(errors).scatter_(1, worst, 0.0)
            member_losses = errors.sum(1) / keep
            optimizer.zero_grad()
            # A sum, so that each member's gradient is its own loss's.
            member_losses.sum().backward()
            optimizer.step()
            losses[step] = member_losses.detach().mean()
        return losses.cpu().numpy()  # one host-device sync for the whole loop

    @torch.no_grad()
    def set_code_statistics(self, X: torch.Tensor) -> None:
        """Mean and (ridged) inverse covariance of each member's codes of ``X``."""
        codes = self.encode(X)
        mean = codes.mean(1, keepdim=True)
        centered = codes - mean
        cov = centered.transpose(1, 2) @ centered / X.shape[1]
        used = self.code_mask.transpose(1, 2) * self.code_mask  # (members, width, width)
        eye = torch.eye(cov.shape[1], device=cov.device)[None]
        # Unused code units are always zero: an identity block there adds nothing.
        cov = cov * used + eye * (1 - used)
        ridge = RIDGE * (torch.diagonal(cov, dim1=1, dim2=2).mean(1).clamp_min(1e-6))
        self.code_mean.copy_(mean)
        self.code_precision.copy_(torch.linalg.inv(cov + ridge[:, None, None] * eye))

    def code_distance(self, codes: torch.Tensor) -> torch.Tensor:
        """Squared Mahalanobis distance of ``codes`` to each member's training codes."""
        centered = (codes - self.code_mean) * self.code_mask
        return ((centered @ self.code_precision) * centered).sum(2)

    def nearest_distance(self, X: torch.Tensor, groups: int = 1, exclude=None) -> torch.Tensor:
        """Each neighbour member's neighbour distance of the rows ``X`` (rows, features).

        The member's neighbour rows are split into ``groups`` equal runs (the
        last ``n % groups`` rows are left out); the distance is the mean over
        runs of the distance to the run's nearest row. ``exclude``
        (members, rows, neighbours), if given, marks pairs that do not count
        (a training row and itself). Returns (neighbour members, rows).
        """
        # A member with feature factors w measures |w x - r|^2 (its rows r
        # are stored multiplied) = |w x|^2 + (|r|^2 - 2 x.(w r)): the bracket is
        # one matrix product of [x, 1] with every member's [-2 w r, |r|^2] side
        # by side, and |w x|^2 (one product of x^2 with the w^2) is added after
        # the min.
        members, n_neighbors, n_features = self.neighbors.shape
        size = n_neighbors // groups
        neighbors = self.neighbors[:, : groups * size]
        own_norms = (neighbors * neighbors).sum(2, keepdim=True)
        factors = self.neighbor_weights[:, None, :]
        weights = torch.cat([-2 * neighbors * factors, own_norms], dim=2)  # (m, neighbours, f + 1)
        weights = weights.permute(2, 0, 1).reshape(n_features + 1, members * groups * size)
        ones = torch.ones(X.shape[0], 1, dtype=X.dtype, device=X.device)
        partial = (torch.cat([X, ones], dim=1) @ weights).view(-1, members, groups, size)
        if exclude is not None:
            exclude = exclude[:, :, : groups * size].transpose(0, 1)
            partial = partial.masked_fill(exclude.view(partial.shape), float("inf"))
        own = (X * X) @ (self.neighbor_weights * self.neighbor_weights).t()  # (rows, members)
        nearest = partial.amin(3) + own[:, :, None]  # (rows, members, groups)
        return nearest.clamp_min(0).sqrt().mean(2).t()

    def terms(self, X: torch.Tensor, groups: int = 1, exclude=None, *, code_density: bool = True):
        """Each member's reconstruction error, code distance and neighbour distance of ``X``.

        Three tensors of shape (members, rows); the code distance is zero
        unless ``code_density``, the neighbour distance when the members
        keep no neighbour rows, and for the members past the neighbour ones.
        """
        codes, err = self.fast_forward(X, codes=code_density)
        nearest = torch.zeros_like(err)
        if self.neighbors.shape[1]:
            nearest[: len(self.neighbors)] = self.nearest_distance(X, groups, exclude)
        distance = self.code_distance(codes) if code_density else torch.zeros_like(err)
        return err, distance, nearest

    def fast_forward(self, X: torch.Tensor, *, codes: bool = True):
        """Codes (or None) and reconstruction errors of ``X`` (rows, features), for inference.

        The same function as ``encode`` then ``decode``, in fewer and cheaper
        passes over memory:

        - ``tanh(a) = 2 sigmoid(2a) - 1``, with the factors, the biases and
          the code mask folded into the weights, so that each layer is one
          matrix product (bias included) and each activation one sigmoid;
        - the first layers of all members are one product of ``[X, 1]`` with
          their weights side by side;
        - with ``codes=False`` the linear code layer and the next are one
          product (their weights multiplied beforehand);
        - outputs narrower than ``MIN_PRODUCT_WIDTH`` get zero columns: on CPU
          a batched product with fewer output columns is not cheaper but
          several times slower.
        """
        w, b = [p for p in self.weights], [p for p in self.biases]
        members, n_features, hidden = w[0].shape
        mask = self.code_mask
        ones = torch.ones(X.shape[0], 1, dtype=X.dtype, device=X.device)
        first = 2 * torch.cat([w[0], b[0]], dim=1)  # (members, features + 1, hidden)
        first = first.permute(1, 0, 2).reshape(n_features + 1, members * hidden)
        hidden_out = torch.sigmoid(torch.cat([X, ones], dim=1) @ first)
        hidden_out = hidden_out.view(-1, members, hidden).transpose(0, 1).contiguous()
        # (2s - 1) W + b = s (2W) + (b - sum of W's rows)
        code_weight, code_bias = 2 * w[1] * mask, (b[1] - w[1].sum(1, keepdim=True)) * mask
        if codes:
            code = torch.baddbmm(code_bias, hidden_out, code_weight)
            hidden_out = torch.sigmoid(torch.baddbmm(2 * b[2], code, 2 * w[2]))
        else:
            code = None
            weight = 2 * torch.bmm(code_weight, w[2])
            bias = 2 * (torch.bmm(code_bias, w[2]) + b[2])
            hidden_out = torch.sigmoid(torch.baddbmm(bias, hidden_out, weight))
        pad = max(0, MIN_PRODUCT_WIDTH - n_features)
        weight = torch.nn.functional.pad(2 * w[3], (0, pad))
        bias = torch.nn.functional.pad(b[3] - w[3].sum(1, keepdim=True), (0, pad))
        output = torch.baddbmm(bias, hidden_out, weight)[..., :n_features]
        err = _errors.sample_mean(_errors.squared_errors(output, X), start_dim=2)
        return code, err

    def score(
        self, X: torch.Tensor, stats: dict, groups: int, error_weight: float, *, code_density: bool
    ) -> torch.Tensor:
        """The ensemble's score of the scaled rows ``X``, shape (rows,); see score_samples."""

        def normalised(values, name):
            """Each member's term normalised by its training median and MAD, averaged."""
            median, mad = stats[name + "_median"][:, None], stats[name + "_mad"][:, None]
            return ((values - median) / mad).mean(0)

        total, weights = 0.0, 0.0
        if error_weight or code_density:
            codes, err = self.fast_forward(X, codes=code_density)
            if error_weight:
                total = total + error_weight * normalised(err, "error")
                weights += error_weight
            if code_density:
                total = total + normalised(self.code_distance(codes), "distance")
                weights += 1.0
        if self.neighbors.shape[1]:
            total = total + normalised(self.nearest_distance(X, groups), "neighbor")
            weights += 1.0
        return -total / weights

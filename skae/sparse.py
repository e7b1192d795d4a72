"""The sparse autoencoder: codes with most entries zero or nearly zero."""

from __future__ import annotations

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BaseAutoEncoder
from ._checks import warn
from ._docstring import shared_docs
from ._errors import batch_mean, split_batch, trim
from ._modules import Network

# fit warns when more than this share of the code units ends dead (0 on every
# training row): any dead unit of a code of up to 10 units, more than a tenth
# of a larger one.
DEAD_UNITS_SHARE = 0.1


class SparseCode(Network):
    """A :class:`~skae._modules.Network` whose code goes through a sparsifying function.

    ``"l1"``: ReLU (exact zeros, the L1 penalty pushes more entries to them);
    ``"kl"``: sigmoid (activations in (0, 1), pushed towards a small mean);
    ``"topk"``: the ``k`` largest entries of each row are kept, the rest set to 0.
    Any architecture's linear code works.

    A unit that is 0 on every row gets no gradient through the ReLU or the
    top-k selection, so once off it stays off, though it may have died in the
    first steps, before the decoder learned to use it. With ``"l1"`` and
    ``"topk"``, :meth:`training_code` revives such a unit once: a unit that
    has been 0 on ``revive_after`` consecutive training rows (one epoch) is
    raised on the row where it is nearest to switching on until it is
    non-zero there; the reconstruction and the penalty then decide whether
    it stays. A unit that dies again is left dead: the
    objective switched it off.
    """

    def __init__(self, net, sequential, sparsity, k, n_components, revive_after):
        super().__init__(net, sequential)
        self.sparsity = sparsity
        self.k = k
        self.revive_after = revive_after
        # Per unit: training rows since it was last non-zero, and whether it was
        # revived (training state, not saved with the weights).
        self.register_buffer(
            "silent_rows", torch.zeros(n_components, dtype=torch.long), persistent=False
        )
        self.register_buffer(
            "revived", torch.zeros(n_components, dtype=torch.bool), persistent=False
        )

    def sparsify(self, z: torch.Tensor, top=None) -> torch.Tensor:
        """The code of the linear code ``z`` (batch, n_components).

        ``top``: ``torch.topk(z, k, dim=1)`` with ``"topk"``, when the caller has it.
        """
        if self.sparsity == "l1":
            return torch.relu(z)
        if self.sparsity == "kl":
            return torch.sigmoid(z)
        top = torch.topk(z, self.k, dim=1) if top is None else top
        return torch.zeros_like(z).scatter(1, top.indices, top.values)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.sparsify(super().encode(x, lengths))  # (batch, n_components)

    def training_code(self, x: torch.Tensor, lengths: torch.Tensor | None = None):
        """``(code, revival)`` of a training batch: the code, and the revival term.

        ``revival`` is 0, with the gradient of how far below their switch-on
        point (0; with ``"topk"``, the row's k-th largest entry) the units to
        revive (the dead units not revived before) are on the row where each
        is nearest to it, averaged over the units: added to the loss, it
        raises them without changing the loss's value.
        """
        z = super().encode(x, lengths)
        top = torch.topk(z, self.k, dim=1) if self.sparsity == "topk" else None
        code = self.sparsify(z, top)
        if self.sparsity == "kl":
            return code, z.new_zeros(())  # sigmoid units always have a gradient
        with torch.no_grad():
            fired = (code != 0).any(0)
            self.revived |= fired & (self.silent_rows >= self.revive_after)
            self.silent_rows.copy_(torch.where(fired, 0, self.silent_rows + len(code)))
            revive = (self.silent_rows >= self.revive_after) & ~self.revived
        if top is not None:  # switched on above the k-th largest entry of a row
            z = z - top.values[:, -1:].detach()
        # How far below its switch-on point each unit is on the row where it is
        # nearest to it, averaged over the units: one row each, so the shared
        # layers hardly move.
        below = (revive.to(z.dtype) * torch.relu(-z.max(0).values)).mean()
        return code, below - below.detach()


@shared_docs
class SparseAutoEncoder(BaseAutoEncoder):
    """Autoencoder whose codes are sparse: most entries are zero or nearly so.

    Sparse codes are often overcomplete (``n_components`` above the number of
    features): each sample then uses a few of many learned features.

    Parameters
    ----------
    n_components : int, default=8
        Size of the code; may exceed ``n_features`` (an overcomplete code).
    architecture : Architecture or None, default=None
        The network, from :mod:`skae.architectures` (MLP, convolutional,
        recurrent, or your own); it decides which inputs ``fit`` takes. None:
        an MLP with ``hidden_layer_sizes`` and ``activation``. Tune its
        parameters as ``architecture__<param>``.
    sparsity : {"l1", "kl", "topk"}, default="l1"
        How codes are made sparse. ``"l1"``: ReLU codes (exact zeros) with an
        L1 penalty ``sparsity_weight * mean(|code|)``. ``"kl"``: sigmoid codes
        with the penalty ``sparsity_weight`` times the mean over code units of
        KL(``sparsity_target`` || mean activation of the unit over the batch)
        (Ng, "Sparse autoencoder" lecture notes); codes are small but not exactly
        zero. ``"topk"``: the ``k`` largest entries of each code are kept and the
        others set to zero, in training and in :meth:`transform` (Makhzani and
        Frey, 2013); no penalty.
    sparsity_weight : float, default=0.01
        Weight of the L1 or KL penalty relative to the mean squared
        reconstruction error. Unused with ``"topk"``. Too large a weight
        switches ReLU code units off for good (0 on every row: dead).
        Training revives each dead unit once (see Notes); ``fit`` warns when
        more than a tenth of the units end dead. 0.1 works for standardised
        data with overcomplete codes.
    sparsity_target : float, default=0.05
        Target mean activation of each code unit with ``"kl"``, in (0, 1).
    k : int, default=4
        Non-zero entries per code with ``"topk"``; at most ``n_components``.
    hidden_layer_sizes : int or tuple of int, default=(64,)
        Widths of the encoder's hidden layers, input side first; the decoder
        mirrors them. ``()`` gives the classic one-layer sparse autoencoder.
        Used only when ``architecture=None``: next to an architecture,
        ``fit`` raises a ValueError for a value other than the default (set
        the architecture's own parameter instead).
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Activation between hidden layers. Used only when ``architecture=None``,
        as ``hidden_layer_sizes``.
    {training_parameters}

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when all are strings.
    n_iter_ : int
        Number of epochs run (summed over fits with ``warm_start=True``).
    loss_curve_ : list of float
        Mean training loss (reconstruction error plus penalty) of each epoch.
    validation_scores_ : list of float
        Negative validation loss of each epoch, with ``early_stopping``.
    best_validation_score_ : float
        Best of ``validation_scores_``, with ``early_stopping``.
    input_shape_ : tuple of int
        Shape of one sample as the network sees it (see
        :class:`AutoEncoder`); later calls must match it.
    architecture_ : Architecture
        The network's parameter object the module was built from.
    module_ : torch.nn.Module
        The fitted encoder/decoder.
    history_ : skorch.History
        Per-epoch record of the last fit.
    net_ : skae._net.SkaeNet
        The skorch net that trained ``module_``.

    See Also
    --------
    AutoEncoder : The same model with dense, linear codes.
    sklearn.decomposition.MiniBatchDictionaryLearning : Sparse codes of a
        linear dictionary.

    Notes
    -----
    ``early_stopping`` monitors the training loss of the validation rows:
    reconstruction error plus the sparsity penalty.

    A code unit that is 0 on every training row (dead) gets no gradient
    through the ReLU or the top-k selection. A unit that has been 0 on an
    epoch's worth of consecutive training rows is revived once: a term of the
    loss whose value is 0 but whose gradient raises the unit's linear code on
    the row where it is nearest to switching on (0 with ``"l1"``, the row's
    k-th largest entry with ``"topk"``) until it is non-zero there; the
    reconstruction (and the penalty) then decide whether it stays. Small
    codes lose units in the first epochs otherwise (on MinMax-scaled digits,
    1 to 2 of 4 units on two of three seeds). ``fit`` warns when more than a
    tenth of the units end dead (any dead unit of a code of up to 10), with
    ``"l1"`` or ``"topk"``.

    :meth:`transform` returns the sparse codes; :meth:`inverse_transform`
    decodes any codes, sparse or not. With ``"topk"`` every row of
    :meth:`transform` has at most ``k`` non-zero entries.

    Examples
    --------
    Top-k codes of the digits: at most ``k`` non-zero values per row, and
    every unit used by some row.

    >>> from sklearn.datasets import load_digits
    >>> from skae import SparseAutoEncoder
    >>> X = load_digits().data / 16
    >>> sae = SparseAutoEncoder(16, sparsity="topk", k=4, max_iter=30, random_state=0)
    >>> codes = sae.fit(X).transform(X)
    >>> codes.shape
    (1797, 16)
    >>> int((codes != 0).sum(axis=1).max())
    4
    >>> int((codes != 0).any(axis=0).sum())
    16
    """

    _module_params = (*BaseAutoEncoder._module_params, "sparsity", "k")

    _parameter_constraints: dict = {
        **BaseAutoEncoder._parameter_constraints,
        "sparsity": [StrOptions({"l1", "kl", "topk"})],
        "sparsity_weight": [Interval(Real, 0, None, closed="left")],
        "sparsity_target": [Interval(Real, 0, 1, closed="neither")],
        "k": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_components=8,
        *,
        architecture=None,
        sparsity="l1",
        sparsity_weight=0.01,
        sparsity_target=0.05,
        k=4,
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
        super().__init__(
            n_components,
            architecture=architecture,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate_init=learning_rate_init,
            max_iter=max_iter,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            warm_start=warm_start,
            random_state=random_state,
            verbose=verbose,
            device=device,
            callbacks=callbacks,
            mixed_precision=mixed_precision,
            compile=compile,
        )
        self.sparsity = sparsity
        self.sparsity_weight = sparsity_weight
        self.sparsity_target = sparsity_target
        self.k = k

    def _prepare_fit(self, X, lengths=None):
        # A unit silent on this many consecutive training rows (an epoch) is dead.
        self._revive_after = X.shape[0]
        if self.sparsity == "topk" and self.k > self.n_components:
            raise ValueError(
                f"k={self.k} exceeds n_components={self.n_components}; with "
                "sparsity='topk', k must be at most n_components."
            )

    def _check_fitted_model(self, module, batches):
        if self.sparsity == "kl":
            return  # sigmoid codes are never exactly 0
        alive = None
        for batch in batches:
            used = (module.encode(*(batch if isinstance(batch, tuple) else (batch,))) != 0).any(0)
            alive = used if alive is None else alive | used
        if alive is None:
            return
        n_dead = self.n_components - int(alive.sum())
        if n_dead <= DEAD_UNITS_SHARE * self.n_components:
            return
        if self.sparsity == "l1":
            cause = "the L1 penalty outweighs what they would add to the reconstruction"
            change = (
                f"use a smaller sparsity_weight (it is {self.sparsity_weight}), scale X to "
                "a larger range (e.g. StandardScaler), or a smaller n_components"
            )
        else:
            cause = "they are never among the k largest entries of a code"
            change = f"use a larger k (it is {self.k}) or a smaller n_components"
        if not bool(module.revived[~alive].all()):
            # Some died within the last epoch: training ended before their revival.
            change = f"use a larger max_iter (it is {self.max_iter}), or {change}"
        warn(
            f"{n_dead} of the {self.n_components} code units "
            f"{'is' if n_dead == 1 else 'are'} 0 on every training row (dead): {cause}, "
            f"so the codes have only {self.n_components - n_dead} informative values. "
            f"To keep more units, {change}.",
            UserWarning,
        )

    def _build_module(self, input_shape):
        return SparseCode(
            self._build_network(input_shape),
            self._sequential,
            self.sparsity,
            self.k,
            self.n_components,
            self._revive_after,
        )

    def _loss(self, module, batch, training):
        X, lengths = split_batch(batch)
        X = trim(X, lengths)
        if training:
            z, revival = module.training_code(X, lengths)  # (batch, n_components), ()
        else:
            z, revival = module.encode(X, lengths), 0.0
        loss = revival + batch_mean(self._decode_errors(module, z, X, lengths), lengths)
        if self.sparsity == "l1":
            return loss + self.sparsity_weight * z.abs().mean()
        if self.sparsity == "kl":
            rho = self.sparsity_target
            # Clamped so that a saturated unit gives a large, finite penalty.
            rho_hat = z.mean(dim=0).clamp(1e-6, 1 - 1e-6)  # (n_components,)
            kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
            return loss + self.sparsity_weight * kl.mean()
        return loss

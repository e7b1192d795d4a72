"""The plain MLP autoencoder."""

from __future__ import annotations

import scipy.sparse as sp
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import StrOptions

from ._base import BaseAutoEncoder
from ._docstring import shared_docs
from ._errors import split_batch, squared_errors
from ._modules import Network


class MultinomialNetwork(Network):
    """A table network whose decoder gives a distribution over the features.

    ``logits`` is the architecture's decoder output; ``decode`` its softmax
    along the features (each reconstruction sums to 1).
    """

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.net.decode(z)

    def decode(self, z: torch.Tensor, n_timesteps: int | None = None) -> torch.Tensor:
        return torch.softmax(self.logits(z), dim=1)


def multinomial_nll(log_p: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """``-sum_j X[i, j] * log_p[i, j]`` per row; ``X`` dense or sparse COO."""
    if X.layout == torch.sparse_coo:
        rows, cols = X._indices()
        picked = X._values().to(log_p.dtype) * log_p[rows, cols]
        return -torch.zeros(len(log_p), dtype=log_p.dtype, device=log_p.device).index_add_(
            0, rows, picked
        )
    return -(X.to(log_p.dtype) * log_p).sum(dim=1)


@shared_docs
class AutoEncoder(BaseAutoEncoder):
    """Autoencoder trained on the reconstruction error, a nonlinear analogue of PCA.

    The encoder maps each sample to a code of ``n_components`` values; the
    decoder maps it back to the input space. By default both are multi-layer
    perceptrons (``hidden_layer_sizes``, mirrored); ``architecture`` swaps in
    a convolutional, recurrent or hand-written network. Training minimises
    the mean squared reconstruction error with Adam on mini-batches, through
    a :class:`skorch.NeuralNet` fed by slices of tensors that already sit on
    the training device.

    Parameters
    ----------
    n_components : int, default=8
        Size of the code. It may exceed ``n_features`` (an overcomplete code).
    loss : {"squared_error", "multinomial"}, default="squared_error"
        The training loss. ``"squared_error"``: the mean squared reconstruction
        error. ``"multinomial"``, for non-negative counts or weights such as
        word counts or TF-IDF rows (tables only): the decoder gives a
        distribution ``p`` over the features (a softmax) and the loss of a
        row ``x`` is the multinomial negative log-likelihood
        ``-sum_j x_j log p_j``, which weighs the few words a document has
        instead of the thousands of zeros a squared error averages over.
        A multinomial fit is not checked for having learned almost nothing
        (that check compares squared errors, which this loss does not
        minimise: on TF-IDF rows a model whose codes classify better than
        LSA's can reconstruct them no closer than the mean row).
    architecture : Architecture or None, default=None
        The network, from :mod:`skae.architectures`: :class:`~skae.architectures.MLP`,
        :class:`~skae.architectures.Convolutional2D` (images),
        :class:`~skae.architectures.Convolutional1D` (signals),
        :class:`~skae.architectures.Recurrent` (sequences) or your own
        :class:`~skae.architectures.Architecture`. It decides which inputs
        ``fit`` takes. None: an MLP with ``hidden_layer_sizes`` and
        ``activation``. Tune its parameters as ``architecture__<param>``.
    hidden_layer_sizes : int or tuple of int, default=(64,)
        Widths of the encoder's hidden layers, input side first. The decoder
        uses them in reverse. ``()`` gives a linear-code autoencoder with no
        hidden layer. Used only when ``architecture=None``: next to an
        architecture, ``fit`` raises a ValueError for a value other than the
        default (set the architecture's own parameter instead).
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Activation between layers. Codes and reconstructions are linear. Used
        only when ``architecture=None``, as ``hidden_layer_sizes``.
    {training_parameters}

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen during :term:`fit`: the columns of a 2-D
        input; for images and signals given with their shape, the number of
        values per sample; for sequences, as :class:`RecurrentAutoEncoder`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.
    n_iter_ : int
        Number of epochs run (summed over fits with ``warm_start=True``).
    loss_curve_ : list of float
        Mean training loss of each epoch.
    validation_scores_ : list of float
        Negative validation loss of each epoch. Only with ``early_stopping=True``.
    best_validation_score_ : float
        Best of ``validation_scores_``. Only with ``early_stopping=True``.
    input_shape_ : tuple of int
        Shape of one sample as the network sees it: ``(n_features,)`` for
        tables, ``(c, h, w)`` for images, ``(c, length)`` for signals,
        ``(n_timesteps, n_features)`` for sequences (``n_timesteps`` None for
        variable lengths). Later calls must match it.
    architecture_ : Architecture
        The network's parameter object the module was built from.
    module_ : torch.nn.Module
        The fitted encoder/decoder (the architecture's module is its ``net``).
    history_ : skorch.History
        Per-epoch record of the last fit.
    net_ : skae._net.SkaeNet
        The skorch net that trained ``module_``.

    See Also
    --------
    sklearn.decomposition.PCA : The linear model an autoencoder generalises.

    Notes
    -----
    With ``loss="multinomial"``, :meth:`inverse_transform` returns the
    decoded distributions (rows summing to 1), :meth:`score_samples` the
    negative multinomial log-loss of each row, and :meth:`feature_errors` the
    squared errors of ``x`` against ``p * x.sum()``.

    Computation runs in float32; outputs come back in the input's float dtype.
    Inference runs in batches, so device memory is bounded by the batch, not
    the input.

    ``X`` may be a SciPy sparse matrix or array (CSR, CSC, ...), e.g. TF-IDF
    text features: it stays sparse on the device. With the default MLP,
    training multiplies each sparse batch by the first layer directly (its
    cost grows with the stored values, not the width); inference, and other
    architectures, densify one batch at a time. The first layer holds
    ``n_features * hidden_layer_sizes[0]`` weights, which dominates memory
    for very wide inputs (see the "Text and speech" page of the user guide).

    Examples
    --------
    >>> import numpy as np
    >>> from skae import AutoEncoder
    >>> X = np.random.RandomState(0).normal(size=(200, 10))
    >>> ae = AutoEncoder(n_components=3, max_iter=20, random_state=0).fit(X)
    >>> ae.transform(X).shape
    (200, 3)
    >>> ae.inverse_transform(ae.transform(X)).shape
    (200, 10)
    >>> bool(ae.score(X) < 0)
    True

    Word counts, with the multinomial loss:

    >>> from scipy.sparse import random as sparse_random
    >>> counts = sparse_random(100, 50, density=0.1, format="csr", random_state=0)
    >>> ae = AutoEncoder(4, loss="multinomial", max_iter=5, random_state=0).fit(counts)
    >>> ae.inverse_transform(ae.transform(counts)).sum(axis=1).round(3)[:3]
    array([1., 1., 1.])
    """

    _module_params = (*BaseAutoEncoder._module_params, "loss")

    _parameter_constraints: dict = {
        **BaseAutoEncoder._parameter_constraints,
        "loss": [StrOptions({"squared_error", "multinomial"})],
    }

    def __init__(
        self,
        n_components=8,
        *,
        loss="squared_error",
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
        self.loss = loss

    def _prepare_fit(self, X, lengths=None):
        if self.loss == "multinomial" and self.architecture_.input_kind != "table":
            raise ValueError(
                "loss='multinomial' models each row as a distribution over its "
                "features, so it takes tables only; "
                f"{type(self.architecture_).__name__} reads {self.architecture_.input_kind}s. "
                "Use loss='squared_error'."
            )

    def _check_values(self, X):
        if self.loss != "multinomial":
            return
        # NumPy, SciPy or torch (on its device): min() of each.
        values = X.data if sp.issparse(X) else X
        if values.shape[0] == 0:
            return
        minimum = float(values.min())
        if minimum < 0:
            raise ValueError(
                "loss='multinomial' needs non-negative X (counts or weights such as "
                f"TF-IDF); got a minimum of {minimum:.3g}. Use "
                "loss='squared_error' for signed data."
            )

    @property
    def _squared_error_shows_learning(self) -> bool:
        return self.loss != "multinomial"

    def _build_module(self, input_shape):
        if self.loss == "multinomial":
            return MultinomialNetwork(self._build_network(input_shape), self._sequential)
        return super()._build_module(input_shape)

    def _takes_sparse_batches(self, module) -> bool:
        # Under autocast or torch.compile the sparse product has no kernel.
        plain = not (self.mixed_precision or self.compile)
        return plain and bool(getattr(module.net, "takes_sparse_batches", False))

    def _loss(self, module, batch, training):
        X, lengths = split_batch(batch)
        if self.loss == "multinomial":
            log_p = F.log_softmax(module.logits(module.encode(X)), dim=1)
            return multinomial_nll(log_p, X).mean()
        if X.layout == torch.sparse_coo:
            return F.mse_loss(module.decode(module.encode(X)), X.to_dense())
        return super()._loss(module, batch, training)

    def _score_batch(self, module, X, lengths=None):
        if self.loss != "multinomial":
            return super()._score_batch(module, X, lengths)
        # In float64, as the squared-error score.
        log_p = F.log_softmax(module.logits(module.encode(X)).double(), dim=1)
        return -multinomial_nll(log_p, X)

    def _decode_errors(self, module, z, X, lengths=None, exact=False):
        if self.loss != "multinomial":
            return super()._decode_errors(module, z, X, lengths, exact)
        X_hat = module.decode(z) * X.sum(dim=1, keepdim=True)
        return squared_errors(X_hat, X, lengths, exact)

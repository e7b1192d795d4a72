"""The plain MLP autoencoder."""

from __future__ import annotations

from ._base import BaseAutoEncoder
from ._docstring import shared_docs


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
    Computation runs in float32; outputs come back in the input's float dtype.
    Inference runs in batches, so device memory is bounded by the batch, not
    the input.

    ``X`` may be a SciPy sparse matrix or array (CSR, CSC, ...), e.g. TF-IDF
    text features: it stays sparse on the device and is densified one batch
    at a time, for training and for inference. The first layer holds
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
    """

"""The denoising autoencoder: corrupt the input in training, reconstruct it clean."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from . import _inputs
from ._base import BaseAutoEncoder
from ._device import check_float32_range
from ._docstring import shared_docs
from ._errors import batch_mean, split_batch, valid_steps
from ._inference import batch_rows
from ._patches import reconstruct_by_patches


@shared_docs
class DenoisingAutoEncoder(BaseAutoEncoder):
    """Autoencoder trained to reconstruct clean samples from corrupted ones.

    Each training batch is corrupted afresh with ``noise`` before it enters the
    encoder, and the loss compares the reconstruction with the clean batch
    (Vincent et al., 2008). Inference never corrupts: :meth:`transform`,
    :meth:`inverse_transform`, :meth:`score_samples` and :meth:`denoise` are
    deterministic, and ``inverse_transform(transform(X_noisy))`` (or
    ``denoise(X_noisy)``) removes noise from data you already have.

    Parameters
    ----------
    n_components : int, default=8
        Size of the code. It may exceed ``n_features`` (an overcomplete code):
        the corruption keeps the model from learning the identity.
    architecture : Architecture or None, default=None
        The network, from :mod:`skae.architectures` (MLP, convolutional,
        recurrent, or your own); it decides which inputs ``fit`` takes. None:
        an MLP with ``hidden_layer_sizes`` and ``activation``. Tune its
        parameters as ``architecture__<param>``.
    noise : {"gaussian", "masking", "salt_pepper"}, default="gaussian"
        The corruption. ``"gaussian"`` adds normal noise of standard deviation
        ``noise_level``; ``"masking"`` sets each entry to zero with probability
        ``noise_level``; ``"salt_pepper"`` sets each entry, with probability
        ``noise_level``, to its feature's training minimum or maximum (a fair
        coin picks which).
    noise_level : float, default=0.1
        Standard deviation (``"gaussian"``, in the units of ``X``) or
        probability of corrupting an entry (``"masking"``, ``"salt_pepper"``;
        then at most 1). 0 trains a plain autoencoder.
    hidden_layer_sizes : int or tuple of int, default=(64,)
        Widths of the encoder's hidden layers, input side first; the decoder
        mirrors them. ``()`` gives an autoencoder with no hidden layer. Used
        only when ``architecture=None``: next to an architecture, ``fit``
        raises a ValueError for a value other than the default (set the
        architecture's own parameter instead).
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Activation between layers. Codes and reconstructions are linear.
        Used only when ``architecture=None``, as ``hidden_layer_sizes``.
    {training_parameters}

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when all are strings.
    data_min_ : ndarray of shape (`n_features_in_`,)
        Per-feature minimum of the training data (the "pepper" value).
    data_max_ : ndarray of shape (`n_features_in_`,)
        Per-feature maximum of the training data (the "salt" value).
    n_iter_ : int
        Number of epochs run (summed over fits with ``warm_start=True``).
    loss_curve_ : list of float
        Mean training loss (corrupted input vs clean target) of each epoch.
    validation_scores_ : list of float
        Negative clean validation loss of each epoch, with ``early_stopping``.
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
    AutoEncoder : The same model trained on clean input.
    sklearn.decomposition.PCA : Linear denoising by projection.

    Notes
    -----
    With ``early_stopping``, validation batches are *not* corrupted: the
    validation loss is the clean reconstruction error (what :meth:`score`
    measures), free of the noise of corruption draws. ``random_state`` seeds
    every corruption draw too, and ``warm_start`` keeps the fitted
    ``data_min_`` and ``data_max_`` with the weights.

    Scale features first (e.g. :class:`~sklearn.preprocessing.StandardScaler`
    or to [0, 1]) so that one ``noise_level`` fits them all.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import DenoisingAutoEncoder
    >>> X = np.random.RandomState(0).normal(size=(200, 10))
    >>> dae = DenoisingAutoEncoder(3, noise_level=0.2, max_iter=20, random_state=0)
    >>> dae.fit(X).transform(X).shape
    (200, 3)
    >>> bool(np.allclose(dae.denoise(X), dae.inverse_transform(dae.transform(X))))
    True
    """

    _parameter_constraints: dict = {
        **BaseAutoEncoder._parameter_constraints,
        "noise": [StrOptions({"gaussian", "masking", "salt_pepper"})],
        "noise_level": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_components=8,
        *,
        architecture=None,
        noise="gaussian",
        noise_level=0.1,
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
        self.noise = noise
        self.noise_level = noise_level

    def _prepare_fit(self, X, lengths=None):
        if self.noise != "gaussian" and self.noise_level > 1:
            raise ValueError(
                f"noise_level={self.noise_level} is a probability for "
                f"noise={self.noise!r}; expected a value in [0, 1]."
            )
        # A warm start keeps the module, hence the range stored in it.
        if not (self.warm_start and hasattr(self, "net_")):
            self.data_min_, self.data_max_ = _value_range(X, lengths, self.architecture_)

    def _divergence_advice(self):
        advice = super()._divergence_advice()
        if self.noise == "gaussian" and self.noise_level > 1:
            advice += (
                f" noise_level={self.noise_level} is the noise's standard deviation in "
                "the units of X: for standardised data, keep it below about 1."
            )
        return advice

    def _build_module(self, input_shape):
        module = super()._build_module(input_shape)
        # Buffers follow the module to the training device and into pickles.
        module.register_buffer("data_min", torch.tensor(self.data_min_, dtype=torch.float32))
        module.register_buffer("data_max", torch.tensor(self.data_max_, dtype=torch.float32))
        return module

    def _corrupt(self, module, X: torch.Tensor) -> torch.Tensor:
        """A freshly corrupted copy of the batch ``X`` (batch, *input_shape)."""
        if self.noise == "gaussian":
            return X + self.noise_level * torch.randn_like(X)
        hit = torch.rand_like(X) < self.noise_level
        if self.noise == "masking":
            return X.masked_fill(hit, 0.0)
        salt = torch.rand_like(X) < 0.5
        return torch.where(hit, torch.where(salt, module.data_max, module.data_min), X)

    def _loss(self, module, batch, training):
        # Validation batches stay clean; see ``early_stopping`` in the docstring.
        X, lengths = split_batch(batch)
        if not training:
            return batch_mean(*self._errors(module, X, lengths))
        X_in = self._corrupt(module, X)
        if lengths is not None:
            # Padding stays zero: corruption touches real steps only.
            X_in = torch.where(valid_steps(X, lengths), X_in, X)
        return batch_mean(*self._errors(module, X, lengths, X_in=X_in))

    def denoise(self, X, *, stride=None, weights="gaussian"):
        """Reconstruct ``X``: ``inverse_transform(transform(X))``, or whole larger images.

        For samples of the training shape this is the same as
        ``inverse_transform(transform(X))``. A model with an image
        architecture (e.g. :class:`~skae.architectures.PatchMLP` or
        :class:`~skae.architectures.Convolutional2D`) trained on ``h x w``
        images or patches also denoises larger images: each ``h x w`` window
        on a grid of step ``stride`` is reconstructed, and every pixel of the
        result is a weighted mean of the reconstructions of the windows that
        cover it, each window's pixels weighted by ``weights`` (by default
        more at the window's centre, where the model sees the most context;
        Burger et al., 2012, weight their patch denoiser's windows so).
        ``weights="uniform"`` gives the plain mean, as
        :func:`sklearn.feature_extraction.image.reconstruct_from_patches_2d`
        averages all windows. Memory stays bounded: the model sees batches of
        windows (as every inference call), and the host holds the input, the
        output and one band of windows.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features), or images
            Data, possibly noisy, in any form :meth:`fit` takes; it is not
            corrupted further. Images larger than the training ones come as
            ``(n_images, H, W)`` (one channel) or ``(n_images, c, H, W)``,
            with ``H >= h`` and ``W >= w``.
        stride : int or None, default=None
            Step between the windows on larger images, from 1 (every window,
            the best estimate and the slowest) to the window's smaller side
            (tiles, with overlaps only where the last window is flush with an
            edge). None: a quarter of the window's smaller side (at least 1),
            so that each pixel is averaged over about 16 windows. Ignored for
            samples of the training shape.
        weights : {"gaussian", "uniform"} or array-like of shape (h, w), default="gaussian"
            Weight of each pixel of a window in the mean, on larger images.
            ``"gaussian"``: a Gaussian bump centred on the window, of standard
            deviation a quarter of the window's side along each axis (the
            corners weigh about 3% of the centre); on the photos of
            ``benchmarks/bench_denoising_photos.py`` it gains 0.05 to 0.1 dB
            PSNR over the plain mean at the default stride. ``"uniform"``: the plain
            mean. An array: your own weights, finite and positive. Ignored
            for samples of the training shape.

        Returns
        -------
        X_denoised : ndarray
            The reconstructions, in the dtype of ``X``: in the form of the
            training input for samples of the training shape, and in the shape
            of ``X`` for larger images.

        Examples
        --------
        A model of 8x8 patches applied to a whole 20x30 image:

        >>> import numpy as np
        >>> from skae import DenoisingAutoEncoder
        >>> from skae.architectures import Convolutional2D
        >>> rng = np.random.default_rng(0)
        >>> image = np.add.outer(np.sin(np.arange(20) / 3), np.cos(np.arange(30) / 4))
        >>> patches = np.array([image[i:i + 8, j:j + 8] for i in range(12) for j in range(22)])
        >>> dae = DenoisingAutoEncoder(16, architecture=Convolutional2D(channels=(8,)),
        ...                            noise_level=0.3, max_iter=5, random_state=0)
        >>> dae = dae.fit(patches)
        >>> noisy = image + rng.normal(scale=0.3, size=image.shape)
        >>> dae.denoise(noisy[None], stride=2).shape
        (1, 20, 30)
        """
        check_is_fitted(self)
        if self._larger_images(X):
            return self._denoise_larger(X, stride, weights)
        if stride is not None:
            _check_stride(stride, self.input_shape_[1:])
        if self.architecture_.input_kind == "image":
            _window_weights(weights, self.input_shape_[1:])
        arrays, spec = self._read_input(X, reset=False)
        out = self._batched(self._reconstruct, *arrays)
        lengths = arrays[1] if len(arrays) > 1 else [out.shape[1]] * len(out)
        return _inputs.as_form(out, spec.form, lengths)

    def _larger_images(self, X) -> bool:
        """Whether ``X`` is images of another size than the training images."""
        if self.architecture_.input_kind != "image" or sp.issparse(X):
            return False
        ndim = np.ndim(X) if getattr(X, "ndim", None) is None else X.ndim
        return ndim in (3, 4) and tuple(np.shape(X)[-2:]) != tuple(self.input_shape_[1:])

    def _denoise_larger(self, X, stride, weights):
        """:meth:`denoise` of images larger than the training images, by windows."""
        c, h, w = self.input_shape_
        X = check_array(X, dtype=_inputs.FLOAT_DTYPES, allow_nd=True, input_name="X")
        images = X[:, None] if X.ndim == 3 else X
        if images.shape[1] != c or images.shape[2] < h or images.shape[3] < w:
            expected = f"(n_images, {c}, H, W)" + (" or (n_images, H, W)" if c == 1 else "")
            raise ValueError(
                f"X of shape {X.shape} is not images {expected} with H >= {h} and W >= {w}: "
                f"{type(self).__name__} was fitted on {c}-channel {h}x{w} images, and "
                "denoises larger ones window by window."
            )
        stride = max(1, min(h, w) // 4) if stride is None else _check_stride(stride, (h, w))
        weight = _window_weights(weights, (h, w))
        self._check_values(images)
        check_float32_range(images)
        rows = batch_rows(images[:0, :, :h, :w], heavy=True)
        out = reconstruct_by_patches(
            self._reconstruct,
            self.net_.module_,
            self.net_.device,
            images,
            (h, w),
            stride,
            rows,
            weight,
        )
        if not np.isfinite(out).all():
            raise ValueError(
                f"{type(self).__name__} computed non-finite values from finite input: "
                f"values of X (largest magnitude {np.abs(X).max():.3g}) overflow float32 "
                "in the network. Scale the images like the training data."
            )
        return out[:, 0] if X.ndim == 3 else out


def _check_stride(stride, window) -> int:
    """``stride`` of :meth:`DenoisingAutoEncoder.denoise`, checked."""
    largest = min(window)
    if isinstance(stride, bool) or not isinstance(stride, Integral) or not 1 <= stride <= largest:
        raise ValueError(
            f"stride must be an int from 1 to {largest} (the smaller side of the "
            f"{window[0]}x{window[1]} training images), got {stride!r}."
        )
    return int(stride)


def _window_weights(weights, window):
    """``weights`` of :meth:`DenoisingAutoEncoder.denoise`, checked: None (uniform) or (h, w)."""
    if isinstance(weights, str):
        if weights == "uniform":
            return None
        if weights == "gaussian":
            h, w = window
            bump = [np.exp(-0.5 * ((np.arange(n) - (n - 1) / 2) / (n / 4)) ** 2) for n in (h, w)]
            return np.outer(*bump)
    else:
        array = np.asarray(weights, dtype=np.float64) if np.ndim(weights) == 2 else None
        if array is not None and array.shape == tuple(window):
            if np.isfinite(array).all() and (array > 0).all():
                return array
            raise ValueError(f"weights must be finite and positive, got min {array.min()!r}.")
    raise ValueError(
        'weights must be "gaussian", "uniform" or an array of shape '
        f"{tuple(window)} (the training images' height and width), got {weights!r}."
    )


def _value_range(X: np.ndarray, lengths, architecture):
    """Per-value minimum and maximum of the training data (salt and pepper).

    One per feature of a table, per pixel of an image or signal, and per
    feature (over the real time steps) of sequences.
    """
    if sp.issparse(X):  # (1, n_features) sparse results; small to densify
        return X.min(axis=0).toarray().ravel(), X.max(axis=0).toarray().ravel()
    if isinstance(X, torch.Tensor):  # reduced where it lies; the extremes come to the host
        low, high = _value_range(X.amin(0, keepdim=True).cpu().numpy(), None, architecture)
        return low, _value_range(X.amax(0, keepdim=True).cpu().numpy(), None, architecture)[1]
    if architecture.input_kind != "sequence":
        return X.min(axis=0), X.max(axis=0)
    steps = X.reshape(-1, X.shape[-1])
    if lengths is not None:
        steps = steps[(np.arange(X.shape[1]) < lengths[:, None]).ravel()]
    return steps.min(axis=0), steps.max(axis=0)

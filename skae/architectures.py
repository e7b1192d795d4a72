"""Networks as parameters: what an estimator's ``architecture`` can be.

Every skae family is an *objective* (plain reconstruction, denoising,
sparsity, the variational bound); the network it trains is a separate
parameter, ``architecture``. An architecture is a small parameter object, as
a scikit-learn kernel is: it has its own hyper-parameters, ``get_params`` and
``set_params``, clones and pickles, and a search tunes it through
``architecture__<param>``. At ``fit`` the estimator asks it to build a torch
module for the input shape it saw.

* :class:`MLP`: fully connected layers, for tables (the default network of
  the dense families).
* :class:`Convolutional2D`: strided convolutions and transposed convolutions,
  for images.
* :class:`PatchMLP`: fully connected layers on small images or patches,
  their mean kept aside (a patch denoiser's network).
* :class:`Convolutional1D`: the same in one dimension, for fixed-length
  signals.
* :class:`Recurrent`: LSTM/GRU sequence-to-sequence, for sequences of any
  length (the network of :class:`~skae.RecurrentAutoEncoder`).
* :class:`PooledSequence`: convolutions over time pooled into a code, for
  sequences whose codes should not depend on timing (features for a
  classifier).
* Your own network: subclass :class:`Architecture` (see its docstring for the
  protocol).
"""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from ._doc_link import DocLinkMixin
from ._modules import (
    ACTIVATIONS,
    POOLINGS,
    RNN_CELLS,
    MLPAutoEncoder,
    PooledConvSeq2Seq,
    RecurrentSeq2Seq,
    mlp,
)

__all__ = [
    "MLP",
    "Architecture",
    "PatchMLP",
    "Convolutional1D",
    "Convolutional2D",
    "Recurrent",
    "PooledSequence",
]

# What an architecture reads: the input forms, and so the ranks, it takes.
INPUT_KINDS = ("table", "signal", "image", "sequence")


class Architecture(DocLinkMixin, BaseEstimator):
    """Base class of the networks an estimator's ``architecture`` can be.

    Subclass it to train your own torch module with any skae objective. A
    subclass, as a scikit-learn estimator, takes its hyper-parameters as
    keyword arguments of ``__init__`` and stores them unchanged, so that it
    clones, pickles and tunes as ``architecture__<param>`` in a search. It
    says which inputs it reads with the class attribute ``input_kind`` and
    builds its module in :meth:`build`.

    ``input_kind`` is one of:

    * ``"table"``: 2-D arrays ``(n_samples, n_features)``; the module sees
      ``(batch, n_features)``.
    * ``"image"``: ``(n, h, w)``, channels-first ``(n, c, h, w)``, or flat rows
      ``(n, c * h * w)`` when the subclass has an ``input_shape`` parameter set;
      the module sees ``(batch, c, h, w)``.
    * ``"signal"``: ``(n, length)`` as one channel, ``(n, c, length)``, or flat
      rows with ``input_shape``; the module sees ``(batch, c, length)``.
    * ``"sequence"``: the three forms of :class:`~skae.RecurrentAutoEncoder`;
      the module sees zero-padded ``(batch, time, n_features)`` and the
      sequences' lengths.

    The module returned by :meth:`build` has two methods:

    * ``encode(x)`` -> ``(batch, n_outputs)``, a linear code (no activation:
      the objective adds one where it needs it);
    * ``decode(z)`` with ``z`` of shape ``(batch, n_components)`` -> a tensor of
      the input's shape ``(batch, *input_shape)``, linear too.

    For ``input_kind="sequence"`` they are ``encode(x, lengths)`` (``lengths``
    is None when all sequences of the batch have the same length) and
    ``decode(z, n_timesteps)``.

    ``n_outputs`` is ``n_components`` except where an objective needs more
    numbers per sample from the encoder (the variational family asks for
    ``2 * n_components``: the posterior's mean and log-variance).

    That is all the engine asks. ``fit`` checks it on the first rows of the
    training data: ``input_kind`` must be one of the four above, ``build``
    must return a :class:`torch.nn.Module` with parameters and with
    ``encode`` and ``decode``, and each must return the shape above; a
    mistake is a ``TypeError`` or ``ValueError`` naming the method, the
    shape it returned and the shape expected. Image and signal architectures
    that take flat rows give their shape as an ``input_shape`` parameter
    (``(h, w)`` or ``(c, h, w)``; ``(length,)`` or ``(c, length)``), read by
    :meth:`declared_shape`.

    Examples
    --------
    A linear autoencoder written by hand:

    >>> import numpy as np
    >>> from torch import nn
    >>> from skae import AutoEncoder
    >>> from skae.architectures import Architecture
    >>> class Linear(nn.Module):
    ...     def __init__(self, n_features, n_outputs, n_components):
    ...         super().__init__()
    ...         self.encoder = nn.Linear(n_features, n_outputs)
    ...         self.decoder = nn.Linear(n_components, n_features)
    ...     def encode(self, x):
    ...         return self.encoder(x)
    ...     def decode(self, z):
    ...         return self.decoder(z)
    >>> class LinearArchitecture(Architecture):
    ...     input_kind = "table"
    ...     def build(self, input_shape, n_components, n_outputs):
    ...         return Linear(input_shape[0], n_outputs, n_components)
    >>> X = np.random.RandomState(0).normal(size=(100, 5))
    >>> ae = AutoEncoder(2, architecture=LinearArchitecture(), max_iter=5, random_state=0)
    >>> ae.fit(X).transform(X).shape
    (100, 2)
    """

    input_kind = "table"

    # Parameters given as an int or a sequence of ints (e.g. hidden_layer_sizes=8
    # and (8,)), compared by their tuple when a warm start checks the network.
    _size_params: tuple[str, ...] = ()

    def _checked_kind(self) -> str:
        """``input_kind``, refused with a clear error when it is not one of ``INPUT_KINDS``."""
        kind = getattr(self, "input_kind", None)
        if kind not in INPUT_KINDS:
            raise ValueError(
                f"{type(self).__name__}.input_kind is {kind!r}; expected one of "
                f"{', '.join(map(repr, INPUT_KINDS))}."
            )
        return kind

    def declared_shape(self) -> tuple | None:
        """The sample shape of flat input rows, channels first, or None when not given.

        Read from an ``input_shape`` parameter, for image and signal
        architectures only: ``(h, w)`` or ``(c, h, w)`` for images,
        ``(length,)`` or ``(c, length)`` for signals (a missing channel axis
        means one channel).
        """
        kind = self._checked_kind()
        declared = getattr(self, "input_shape", None)
        if kind not in ("image", "signal") or declared is None:
            return None
        n_spatial = 2 if kind == "image" else 1
        shape = _positive_ints(declared, "input_shape")
        if len(shape) == n_spatial:
            shape = (1, *shape)
        if len(shape) != n_spatial + 1:
            raise ValueError(
                f"input_shape must have {n_spatial} or {n_spatial + 1} entries "
                f"for {type(self).__name__}, got {declared!r}."
            )
        return shape

    def _signature(self) -> dict:
        """The parameters, with equivalent forms of one network made equal."""
        params = self.get_params(deep=False)
        for name in self._size_params:
            try:
                params[name] = _positive_ints(params[name], name)
            except ValueError:
                pass  # fit reports it
        return params

    def build(self, input_shape: tuple, n_components: int, n_outputs: int) -> nn.Module:
        """Return a fresh torch module for inputs of ``input_shape``.

        Parameters
        ----------
        input_shape : tuple of int
            The shape of one sample as the module sees it: ``(n_features,)``
            for tables, ``(c, h, w)`` for images, ``(c, length)`` for signals,
            ``(n_timesteps, n_features)`` for sequences (``n_timesteps`` is
            None when the training sequences have different lengths).
        n_components : int
            Size of the code that ``decode`` takes.
        n_outputs : int
            Number of values ``encode`` returns per sample.

        Returns
        -------
        module : torch.nn.Module
            A module with ``encode`` and ``decode`` (see the class docstring).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement build().")


def _positive_ints(value, name: str) -> tuple:
    """``value`` (an int or a sequence of ints) as a tuple of positive ints."""
    if isinstance(value, Integral) and not isinstance(value, (bool, np.bool_)):
        sizes = (value,)
    elif isinstance(value, (list, tuple, np.ndarray)):
        sizes = tuple(value)
    else:
        sizes = None
    if sizes is None or not all(
        isinstance(s, Integral) and not isinstance(s, (bool, np.bool_)) and s >= 1 for s in sizes
    ):
        raise ValueError(
            f"{name} must be a positive int or a sequence of positive ints, got {value!r}."
        )
    return sizes


class MLP(Architecture):
    """Fully connected encoder and mirrored decoder, for tables.

    The encoder maps each sample through ``hidden_layer_sizes`` to a linear
    code; the decoder uses the same widths in reverse. This is the network of
    :class:`~skae.AutoEncoder` when ``architecture=None``, where it is
    configured by the estimator's own ``hidden_layer_sizes`` and
    ``activation``.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default=(64,)
        Widths of the encoder's hidden layers, input side first. ``()`` gives
        a linear encoder and decoder.
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Activation between layers. Codes and reconstructions are linear.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import AutoEncoder
    >>> from skae.architectures import MLP
    >>> X = np.random.RandomState(0).normal(size=(100, 6))
    >>> ae = AutoEncoder(2, architecture=MLP((16, 8), activation="tanh"),
    ...                  max_iter=5, random_state=0).fit(X)
    >>> ae.transform(X).shape
    (100, 2)
    """

    input_kind = "table"
    _size_params = ("hidden_layer_sizes",)

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
    }

    def __init__(self, hidden_layer_sizes=(64,), activation="relu"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation

    def build(self, input_shape, n_components, n_outputs):
        self._validate_params()
        hidden = _positive_ints(self.hidden_layer_sizes, "hidden_layer_sizes")
        return MLPAutoEncoder(
            input_shape[0], n_components, hidden, self.activation, n_code_out=n_outputs
        )


class Recurrent(Architecture):
    """LSTM or GRU sequence-to-sequence network with a repeat-vector decoder.

    The encoder reads each sequence (packed, so padding never enters it) and
    projects its final hidden state to the code; the decoder feeds the code
    at every step, followed by sines and cosines of the step's index, into a
    unidirectional recurrent network and maps each of its states back to the
    input features. The network of :class:`~skae.RecurrentAutoEncoder`,
    which documents the input forms.

    Parameters
    ----------
    cell : {"lstm", "gru"}, default="lstm"
        Recurrent unit of the encoder and the decoder.
    hidden_size : int, default=64
        Size of the recurrent state of each layer.
    num_layers : int, default=1
        Number of stacked recurrent layers in the encoder and in the decoder.
    bidirectional : bool, default=False
        If True, the encoder also reads each sequence backwards.
    time_encoding : int, default=10
        Number of sine/cosine pairs of the step's index that the decoder
        reads beside the code at every step, with periods of 4, 8, 16, ...
        steps (10 pairs tell apart the steps of sequences up to 2,048 steps).
        0 feeds the code alone, the plain repeat-vector decoder.

    Notes
    -----
    Why the decoder reads the time: fed the same code at every step, a
    recurrent decoder has to count the steps in its own state to make a
    waveform that changes along the sequence, and with the default budget
    it mostly does not learn to. On 12 and 50 normal ECG5000 beats
    (development data) the default model's training error stayed at 0.31
    and 0.27, above the 0.18 and 0.16 of the mean beat itself (it learned
    less than the mean beat); with ``time_encoding=10`` it is 0.06 and 0.05.
    The encoder does not read the time, and a step's output still depends
    only on the code and on the steps before it, so padding never reaches
    it. ``docs/benchmarks/sequence-sets.md`` has the development runs and
    a measure on public sequence sets the project does not ship.

    Examples
    --------
    A denoising LSTM autoencoder on univariate sequences:

    >>> import numpy as np
    >>> from skae import DenoisingAutoEncoder
    >>> from skae.architectures import Recurrent
    >>> t = np.linspace(0, 4 * np.pi, 20)
    >>> X = np.sin(t + np.random.RandomState(0).uniform(0, 6, size=(32, 1)))
    >>> dae = DenoisingAutoEncoder(2, architecture=Recurrent(hidden_size=8),
    ...                            max_iter=3, random_state=0).fit(X)
    >>> dae.denoise(X).shape
    (32, 20)
    """

    input_kind = "sequence"

    _parameter_constraints: dict = {
        "cell": [StrOptions(set(RNN_CELLS))],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "num_layers": [Interval(Integral, 1, None, closed="left")],
        "bidirectional": ["boolean"],
        "time_encoding": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self, cell="lstm", hidden_size=64, num_layers=1, bidirectional=False, time_encoding=10
    ):
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.time_encoding = time_encoding

    def build(self, input_shape, n_components, n_outputs):
        self._validate_params()
        return RecurrentSeq2Seq(
            input_shape[-1],
            n_components,
            self.cell,
            self.hidden_size,
            self.num_layers,
            self.bidirectional,
            n_code_out=n_outputs,
            time_encoding=self.time_encoding,
        )


class PooledSequence(Architecture):
    """Convolutions over time pooled into a code, with a recurrent decoder.

    A sequence network whose code does not depend on where things happen in
    time. The encoder runs a stack of 1-D convolutions over the steps of each
    sequence ("same" zero padding, an activation after each), then pools
    each channel over the sequence's own steps (mean, max or both,
    concatenated) and maps the pooled values linearly to the code. The
    decoder is a repeat-vector decoder, :class:`Recurrent`'s with
    ``time_encoding=0``: the code alone is fed at every step into a
    unidirectional LSTM or GRU whose states map linearly back to the input
    features, so every objective trains it by
    reconstructing the whole sequence while the code itself can keep only
    what is true of the sequence as a whole (its sound, not its timing).
    Inputs come in the three forms of :class:`~skae.RecurrentAutoEncoder`:
    3-D arrays, 2-D univariate arrays, or lists of different lengths.

    Parameters
    ----------
    channels : int or tuple of int, default=(64, 64)
        Channels of each convolution, input side first. ``()`` pools the
        input features themselves.
    kernel_size : int, default=3
        Steps each convolution reads; odd, so that "same" padding is
        symmetric.
    pooling : {"mean", "max"} or tuple of them, default=("mean", "max")
        Statistics of each channel over a sequence's steps, concatenated
        before the linear map to the code.
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Activation after every convolution.
    cell : {"lstm", "gru"}, default="gru"
        Recurrent unit of the decoder.
    hidden_size : int, default=64
        Size of the decoder's recurrent state.

    See Also
    --------
    Recurrent : A recurrent encoder, whose code follows the sequence's order.
    skae.RecurrentAutoEncoder : The plain objective on :class:`Recurrent`.

    Notes
    -----
    What the code is invariant to, exactly (up to floating point rounding):

    * **Padding**: the padded steps of a batch are set to zero before the
      first convolution and after every one, and pooling reads only a
      sequence's own steps, so a sequence has the same code alone and
      padded beside longer ones, whatever the padded values are.
    * **Shifts inside silence**: let ``m = len(channels) * (kernel_size -
      1)``. A sequence ``x`` framed by zero steps, ``[0] * a + x + [0] *
      b``, has the same code for every ``a, b >= m`` with ``a + b`` fixed:
      every convolution is equivariant to shifts, and with ``m`` zero steps
      on each side the steps near the ends of the sequence see only zeros,
      so the pooled multiset of values does not move. With fewer zero steps
      the steps near an end see part of ``x`` and the code may change (a
      convolution's bias makes an interior zero step differ from the
      padding beyond the end).
    * **Reordering** with ``kernel_size=1``: each step is encoded alone, so
      any permutation of a sequence's steps has the same code.

    The code is not invariant to stretching (a word spoken slowly), nor to
    zero steps added without removing others (the mean changes with the
    length; ``pooling="max"`` alone keeps it when ``a, b >= m``).

    On spoken digits (FSDD log-mel frames, ``benchmarks/bench_speech_fsdd.py``)
    the default's 16-value codes classify with accuracy 0.903 on the official
    split, against 0.820 for PCA of mean/std-pooled frames and 0.803 for
    :class:`Recurrent` codes; with new speakers it ties with PCA (0.469 and
    0.465). On a validation split, mean pooling alone or ``kernel_size=1``
    brought it down to PCA's level (0.817 and 0.820 against 0.877).

    Examples
    --------
    A sequence has the same code alone, padded beside a longer one, and
    shifted inside zero steps:

    >>> import numpy as np
    >>> from skae import AutoEncoder
    >>> from skae.architectures import PooledSequence
    >>> rng = np.random.RandomState(0)
    >>> X = [rng.normal(size=(n, 3)) for n in rng.randint(5, 15, size=40)]
    >>> ae = AutoEncoder(4, architecture=PooledSequence(channels=(8,)),
    ...                  max_iter=3, random_state=0).fit(X)
    >>> x = X[0]
    >>> alone = ae.transform([x])[0]
    >>> padded = ae.transform([x, np.zeros((30, 3))])[0]
    >>> bool(np.allclose(alone, padded, atol=1e-6))
    True
    >>> frame = lambda a, b: np.vstack([np.zeros((a, 3)), x, np.zeros((b, 3))])
    >>> early, late = ae.transform([frame(2, 6), frame(6, 2)])
    >>> bool(np.allclose(early, late, atol=1e-6))
    True
    """

    input_kind = "sequence"
    _size_params = ("channels",)

    _parameter_constraints: dict = {
        "channels": ["array-like", Interval(Integral, 1, None, closed="left")],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],
        "pooling": ["array-like", StrOptions(set(POOLINGS))],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "cell": [StrOptions(set(RNN_CELLS))],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        channels=(64, 64),
        *,
        kernel_size=3,
        pooling=("mean", "max"),
        activation="relu",
        cell="gru",
        hidden_size=64,
    ):
        self.channels = channels
        self.kernel_size = kernel_size
        self.pooling = pooling
        self.activation = activation
        self.cell = cell
        self.hidden_size = hidden_size

    def _poolings(self) -> tuple:
        """``pooling`` as a tuple of distinct names, refused with a clear error otherwise."""
        pooling = (self.pooling,) if isinstance(self.pooling, str) else tuple(self.pooling)
        if (
            not pooling
            or any(p not in POOLINGS for p in pooling)
            or len(set(pooling)) < len(pooling)
        ):
            raise ValueError(
                f"pooling must be one of {', '.join(map(repr, POOLINGS))} or a tuple of "
                f"distinct ones, got {self.pooling!r}."
            )
        return pooling

    def build(self, input_shape, n_components, n_outputs):
        self._validate_params()
        if self.kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be odd, so that 'same' padding is symmetric; got "
                f"{self.kernel_size}."
            )
        return PooledConvSeq2Seq(
            input_shape[-1],
            n_components,
            _positive_ints(self.channels, "channels"),
            self.kernel_size,
            self.activation,
            self._poolings(),
            self.cell,
            self.hidden_size,
            n_code_out=n_outputs,
        )


# --------------------------------------------------------- image patches


class MeanFreeMLP(nn.Module):
    """An MLP on flattened windows, the window's mean per channel kept aside.

    ``encode``: (batch, c, h, w) -> subtract each channel's mean -> flatten ->
    MLP -> (batch, n_outputs - c), followed by the c means: (batch, n_outputs).
    ``decode``: the MLP of the first ``n_components - c`` entries, plus the
    means (the last c entries), -> (batch, c, h, w). With ``remove_mean``
    False it is a plain MLP on the flattened window.
    """

    def __init__(self, input_shape, n_components, n_outputs, hidden, activation, remove_mean):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.n_means = self.input_shape[0] if remove_mean else 0
        n_values = math.prod(self.input_shape)
        widths = list(hidden)
        self.encoder = mlp([n_values, *widths, n_outputs - self.n_means], activation)
        self.decoder = mlp([n_components - self.n_means, *widths[::-1], n_values], activation)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if not self.n_means:
            return self.encoder(x.flatten(1))
        means = x.mean(dim=(2, 3))  # (batch, c)
        return torch.cat([self.encoder((x - means[:, :, None, None]).flatten(1)), means], 1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        c = self.n_means
        if not c:
            return self.decoder(z).view(-1, *self.input_shape)
        out = self.decoder(z[:, :-c]).view(-1, *self.input_shape)
        return out + z[:, -c:, None, None]


class PatchMLP(Architecture):
    """Fully connected layers on small images or patches, their mean kept aside.

    A network for images small enough to be read whole by fully connected
    layers, such as the patches a denoiser is trained on (Burger et al.,
    2012, denoise photos with such MLPs): each window's mean per channel is
    subtracted before the encoder and added back after the decoder, so the
    network models the window's structure, not its brightness, as PCA or
    dictionary learning on patches do after removing the mean. The code is
    the encoder's output followed by the window's ``c`` means (its last ``c``
    entries). With :meth:`skae.DenoisingAutoEncoder.denoise`, a model
    trained on patches denoises whole images of any size.

    Images come as ``(n, h, w)``, ``(n, c, h, w)`` or flat rows with
    ``input_shape``, as for :class:`Convolutional2D`.

    Parameters
    ----------
    input_shape : tuple of int or None, default=None
        ``(h, w)`` or ``(c, h, w)`` of flat input rows. None: the input
        carries its shape (3-D or 4-D arrays).
    hidden_layer_sizes : int or tuple of int, default=(512,)
        Widths of the encoder's hidden layers, input side first; the decoder
        mirrors them.
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Activation between layers. Codes and reconstructions are linear.
    remove_mean : bool, default=True
        Keep each window's mean per channel out of the network (the code's
        last ``c`` entries). ``n_components`` must then exceed ``c``. The
        variational family draws its codes at random, so it needs False.

    See Also
    --------
    MLP : The same layers for tables.
    Convolutional2D : Convolutions, for larger images.

    Notes
    -----
    The recipe of ``benchmarks/bench_denoising_photos.py``: train
    ``DenoisingAutoEncoder(256, architecture=PatchMLP(hidden_layer_sizes=(1024,)),
    noise_level=sigma)`` on 12x12 windows of clean photos (with their flipped
    and rotated copies), then ``denoise`` noisy photos of any size. Keeping
    the mean out is worth about 0.8 dB there, and 1024 hidden units instead
    of 512 about 0.5 dB (at a noise std of 15/255); the benchmark page
    "Denoising photos" compares it with scikit-image's denoisers.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import DenoisingAutoEncoder
    >>> from skae.architectures import PatchMLP
    >>> patches = np.random.default_rng(0).uniform(size=(200, 6, 6))
    >>> dae = DenoisingAutoEncoder(8, architecture=PatchMLP(hidden_layer_sizes=16),
    ...                            max_iter=3, random_state=0).fit(patches)
    >>> codes = dae.transform(patches)
    >>> bool(np.allclose(codes[:, -1], patches.mean(axis=(1, 2)), atol=1e-6))
    True
    """

    input_kind = "image"
    _size_params = ("input_shape", "hidden_layer_sizes")

    _parameter_constraints: dict = {
        "input_shape": ["array-like", None],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "remove_mean": ["boolean"],
    }

    def __init__(
        self, input_shape=None, *, hidden_layer_sizes=(512,), activation="relu", remove_mean=True
    ):
        self.input_shape = input_shape
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.remove_mean = remove_mean

    def build(self, input_shape, n_components, n_outputs):
        self._validate_params()
        c = input_shape[0]
        if self.remove_mean and n_outputs != n_components:
            raise ValueError(
                "PatchMLP(remove_mean=True) keeps each window's mean in the code, which "
                f"needs an encoder of n_components outputs (asked for {n_outputs} with "
                f"n_components={n_components}, as the variational family does); use "
                "remove_mean=False."
            )
        if self.remove_mean and n_components <= c:
            raise ValueError(
                f"PatchMLP(remove_mean=True) keeps the {c} channel means of each window "
                f"in the code, so n_components must exceed {c}; got {n_components}."
            )
        hidden = _positive_ints(self.hidden_layer_sizes, "hidden_layer_sizes")
        return MeanFreeMLP(
            input_shape, n_components, n_outputs, hidden, self.activation, self.remove_mean
        )


# ------------------------------------------------------------ convolutions


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class ConvAutoEncoder(nn.Module):
    """Strided convolutions down to a linear code, transposed convolutions back.

    ``encode``: (batch, c, *spatial) -> conv/activation per entry of
    ``channels`` (each with ``stride``) -> flatten -> linear -> (batch, n_outputs).
    ``decode``: (batch, n_components) -> linear -> activation -> reshape to the
    encoder's last feature map -> transposed convolutions mirroring the
    encoder -> (batch, c, *spatial), linear at the end. Each transposed
    convolution's ``output_padding`` is chosen so that every stage, and so the
    output, has exactly the size of the matching encoder stage, odd sizes
    included (7 -> 4 -> 7, 28 -> 14 -> 7 -> 14 -> 28).
    """

    def __init__(
        self,
        input_shape: tuple,
        n_components: int,
        n_outputs: int,
        channels: tuple,
        kernel_size: int,
        stride: int,
        activation: str,
    ):
        super().__init__()
        n_dims = len(input_shape) - 1
        conv = nn.Conv1d if n_dims == 1 else nn.Conv2d
        deconv = nn.ConvTranspose1d if n_dims == 1 else nn.ConvTranspose2d
        act = ACTIVATIONS[activation]
        padding = kernel_size // 2
        widths = [input_shape[0], *channels]
        sizes = [tuple(input_shape[1:])]  # spatial size after each stage
        for _ in channels:
            sizes.append(tuple(_conv_out(s, kernel_size, stride, padding) for s in sizes[-1]))
        # With padding k // 2 every stage keeps at least one value, and the
        # output_padding below, (size + 2p - k) mod stride, is always valid.

        down: list[nn.Module] = []
        for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
            down += [conv(n_in, n_out, kernel_size, stride, padding), act()]
        self.encoder = nn.Sequential(*down, nn.Flatten())
        self.feature_shape = (widths[-1], *sizes[-1])
        n_flat = math.prod(self.feature_shape)
        self.to_code = nn.Linear(n_flat, n_outputs)
        self.from_code = nn.Sequential(nn.Linear(n_components, n_flat), act())

        up: list[nn.Module] = []
        widths_up, sizes_up = widths[::-1], sizes[::-1]
        stages = list(zip(widths_up[:-1], widths_up[1:], sizes_up[:-1], sizes_up[1:], strict=True))
        for i, (n_in, n_out, size_in, size_out) in enumerate(stages):
            # A transposed convolution maps size s to (s - 1) * stride - 2p + k,
            # plus output_padding (< stride), which picks the exact target.
            extra = tuple(
                t - ((s - 1) * stride - 2 * padding + kernel_size)
                for s, t in zip(size_in, size_out, strict=True)
            )
            up.append(deconv(n_in, n_out, kernel_size, stride, padding, output_padding=extra))
            if i < len(stages) - 1:
                up.append(act())
        self.decoder = nn.Sequential(*up)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_code(self.encoder(x))  # (batch, n_outputs)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.from_code(z).view(-1, *self.feature_shape)  # (batch, c_last, *small)
        return self.decoder(h)  # (batch, c, *spatial)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class _Convolutional(Architecture):
    """What the 1-D and 2-D convolutional architectures share."""

    _size_params = ("input_shape", "channels")

    _parameter_constraints: dict = {
        "input_shape": ["array-like", None],
        "channels": ["array-like", Interval(Integral, 1, None, closed="left")],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],
        "stride": [Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
    }

    def __init__(
        self, input_shape=None, *, channels=(32, 64), kernel_size=3, stride=2, activation="relu"
    ):
        self.input_shape = input_shape
        self.channels = channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.activation = activation

    def build(self, input_shape, n_components, n_outputs):
        self._validate_params()
        return ConvAutoEncoder(
            tuple(input_shape),
            n_components,
            n_outputs,
            _positive_ints(self.channels, "channels"),
            self.kernel_size,
            self.stride,
            self.activation,
        )


class Convolutional2D(_Convolutional):
    """Convolutional encoder and transposed-convolution decoder, for images.

    Each entry of ``channels`` adds a convolution with ``stride`` (halving
    the image at the default stride of 2) and an activation; a linear layer
    maps the last feature map to the code. The decoder mirrors it with
    transposed convolutions, which reconstruct exactly the input's size, odd
    sizes included (28x28 -> 14x14 -> 7x7 -> 14x14 -> 28x28, 8x8 -> 4x4 -> 2x2
    -> 4x4 -> 8x8).

    Images come as ``(n, h, w)`` (one channel), channels-first
    ``(n, c, h, w)``, or flat rows ``(n, c * h * w)`` with ``input_shape``
    given once here, so that a scaler can sit before the estimator in a
    :class:`~sklearn.pipeline.Pipeline`. Reconstructions and per-pixel errors
    come back in the form of the training input.

    Parameters
    ----------
    input_shape : tuple of int or None, default=None
        ``(h, w)`` or ``(c, h, w)`` of flat input rows. None: the input
        carries its shape (3-D or 4-D arrays).
    channels : tuple of int, default=(32, 64)
        Feature maps of each convolution, input side first.
    kernel_size : int, default=3
        Size of every (transposed) convolution's kernel.
    stride : int, default=2
        Stride of every (transposed) convolution.
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Activation after every convolution but the last of the decoder.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoEncoder
    >>> from skae.architectures import Convolutional2D
    >>> X = load_digits().data[:200] / 16  # flat 8x8 images
    >>> ae = AutoEncoder(8, architecture=Convolutional2D((8, 8), channels=(8, 16)),
    ...                  max_iter=3, random_state=0).fit(X)
    >>> ae.transform(X).shape
    (200, 8)
    >>> ae.inverse_transform(ae.transform(X)).shape
    (200, 64)
    """

    input_kind = "image"


class Convolutional1D(_Convolutional):
    """Convolutional encoder and transposed-convolution decoder, for signals.

    The one-dimensional twin of :class:`Convolutional2D`, for fixed-length
    signals: ``(n, length)`` (one channel, so scikit-learn's 2-D tools
    apply), channels-first ``(n, c, length)``, or flat rows ``(n, c * length)``
    with ``input_shape=(c, length)``.

    Parameters
    ----------
    input_shape : tuple of int or None, default=None
        ``(c, length)`` of flat input rows. None: a 2-D input is one channel
        per row, a 3-D input is channels-first.
    channels : tuple of int, default=(32, 64)
        Feature maps of each convolution, input side first.
    kernel_size : int, default=3
        Size of every (transposed) convolution's kernel.
    stride : int, default=2
        Stride of every (transposed) convolution.
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Activation after every convolution but the last of the decoder.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import AutoEncoder
    >>> from skae.architectures import Convolutional1D
    >>> t = np.linspace(0, 4 * np.pi, 25)
    >>> X = np.sin(t + np.random.RandomState(0).uniform(0, 6, size=(64, 1)))
    >>> ae = AutoEncoder(4, architecture=Convolutional1D(channels=(8, 8)),
    ...                  max_iter=3, random_state=0).fit(X)
    >>> ae.inverse_transform(ae.transform(X)).shape
    (64, 25)
    """

    input_kind = "signal"


# ------------------------------------------------- checking a built module


def check_built(architecture: Architecture, module) -> None:
    """Refuse what :meth:`Architecture.build` returned unless it is a trainable module."""
    name = f"{type(architecture).__name__}.build"
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"{name} returned {type(module).__name__}, expected a torch.nn.Module with "
            "encode and decode methods."
        )
    missing = [m for m in ("encode", "decode") if not callable(getattr(module, m, None))]
    if missing:
        raise TypeError(
            f"{name} returned a {type(module).__name__} without {' or '.join(missing)}; "
            "the module needs encode(x) and decode(z) (see Architecture)."
        )
    if not any(p.requires_grad for p in module.parameters()):
        raise ValueError(
            f"{name} returned a {type(module).__name__} with no trainable parameters; "
            "register its layers as attributes (or nn.Parameter) so they train."
        )


def check_shapes(architecture, module, x, lengths, n_components: int, n_outputs: int) -> None:
    """Run ``module.encode`` and ``decode`` on a few samples ``x`` and check their shapes.

    ``x`` is (batch, *input_shape) as the module sees it, with ``lengths``
    for padded sequences. Errors name the method, the shape it returned and
    the shape expected; exceptions raised inside a method say which one.
    """
    sequential = architecture.input_kind == "sequence"
    owner = f"The module of {type(architecture).__name__}"
    batch = x.shape[0]
    with torch.no_grad():
        z = _call(owner, "encode", module.encode, (x, lengths) if sequential else (x,), x)
        _expect_shape(owner, "encode", z, (batch, n_outputs), x)
        z = z[:, :n_components]
        args = (z, x.shape[1]) if sequential else (z,)
        out = _call(owner, "decode", module.decode, args, z)
        _expect_shape(owner, "decode", out, tuple(x.shape), z)


def _call(owner: str, method: str, fn, args, given):
    try:
        return fn(*args)
    except Exception as exc:
        raise ValueError(
            f"{owner} failed in {method} on a batch of shape {tuple(given.shape)}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _expect_shape(owner: str, method: str, out, expected: tuple, given) -> None:
    if not isinstance(out, torch.Tensor):
        raise TypeError(
            f"{owner}: {method} returned {type(out).__name__}, expected a tensor of "
            f"shape {expected}."
        )
    if tuple(out.shape) != expected:
        raise ValueError(
            f"{owner}: {method} returned shape {tuple(out.shape)} for a batch of shape "
            f"{tuple(given.shape)}, expected {expected}."
        )

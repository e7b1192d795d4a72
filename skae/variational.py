"""The variational autoencoder: a generative model with likelihood-based scores."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from . import _inference
from ._base import BaseAutoEncoder
from ._docstring import shared_docs
from ._errors import split_batch, squared_errors, trim, valid_steps
from ._modules import Network

LOG_2PI = math.log(2 * math.pi)

# Floor of the Gaussian decoder's log-variance: log(1e-6), a standard deviation
# of 1e-3 in the data's units. Without it a feature the decoder reproduces
# exactly (e.g. a constant one) drives its variance to zero and the
# log-likelihood to infinity.
MIN_LOG_VAR = math.log(1e-6)
LOG_VAR_SPEED = 10.0

# Elements (rows x samples of z x widest layer) of one importance-sampling
# chunk, so that a large n_importance_samples costs time, not memory.
IMPORTANCE_CHUNK_ELEMENTS = 2**22


def _int64(c: int) -> int:
    """An unsigned 64-bit constant as the int64 with the same bits."""
    return c - (1 << 64) if c >= (1 << 63) else c


# splitmix64 (Steele, Lea & Flood, OOPSLA 2014): a counter-based generator
# whose outputs are a fixed mixing function of (key, index). It needs only
# wrapping int64 arithmetic, so it runs on the data's device with no host
# round trip (checked on CPU; no GPU was available to check CUDA).
GOLDEN = _int64(0x9E3779B97F4A7C15)
MIX1 = _int64(0xBF58476D1CE4E5B9)
MIX2 = _int64(0x94D049BB133111EB)


def _shr(z, s):
    """Logical right shift of int64 bits (torch's ``>>`` is arithmetic)."""
    return (z >> s) & ((1 << (64 - s)) - 1)


def _mix(z):
    z = (z ^ _shr(z, 30)) * MIX1
    z = (z ^ _shr(z, 27)) * MIX2
    return z ^ _shr(z, 31)


def _row_keys(X, seed, valid=None):
    """A 64-bit key per row from its float32 bits and ``seed``: (batch,) int64.

    ``valid`` (a mask broadcastable to ``X``) leaves padding out, so that a
    sequence's key does not depend on how far its batch is padded.
    """
    keep = None if valid is None else valid.expand(X.shape).flatten(1)
    X = X.flatten(1)
    bits = X.contiguous().view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    columns = torch.arange(X.shape[1], device=X.device) * GOLDEN + seed
    mixed = _mix(bits ^ _mix(columns))
    if keep is not None:
        mixed = mixed * keep
    return mixed.sum(dim=1)


def _row_normals(keys, start, stop, n_components):
    """Standard normals number ``start..stop`` of each row's stream.

    Returns (stop - start, batch, n_components) float32. They depend only on
    the row's key, so a row gets the same noise whatever rows come with it.
    """
    n = (stop - start) * n_components
    index = torch.arange(
        2 * start * n_components, 2 * start * n_components + 2 * n, device=keys.device
    )
    bits = _mix(keys[:, None] + (index + 1) * GOLDEN)  # (batch, 2n)
    u = (_shr(bits, 11).to(torch.float64) + 0.5) * 2.0**-53  # uniform in (0, 1)
    u1, u2 = u[:, 0::2], u[:, 1::2]
    # Box-Muller.
    normal = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)
    return normal.to(torch.float32).reshape(len(keys), stop - start, n_components).transpose(0, 1)


class VAENetwork(Network):
    """An architecture's module as a VAE: a Gaussian posterior and a likelihood.

    The architecture's encoder emits ``2 * n_components`` values per sample,
    the posterior's mean and log-variance; ``encode``/``decode`` give the
    posterior mean and the decoder mean, so the base class's
    ``transform``/``inverse_transform`` apply unchanged.
    """

    def __init__(self, net, sequential, input_shape, likelihood):
        super().__init__(net, sequential)
        self.likelihood = likelihood
        if likelihood == "gaussian":
            # One learned variance per value (per feature for sequences),
            # shared by all z (see the class Notes).
            shape = input_shape[-1:] if sequential else input_shape
            self.raw_log_var = nn.Parameter(torch.zeros(shape))

    def posterior(self, x, lengths=None):
        mean, log_var = super().encode(x, lengths).chunk(2, dim=-1)
        return mean, log_var  # (batch, n_components) each

    def encode(self, x, lengths=None):
        return self.posterior(x, lengths)[0]

    def decode_logits(self, z, n_timesteps=None):
        """The decoder's raw output for ``z`` with any leading sample dims."""
        lead = z.shape[:-1]
        out = super().decode(z.reshape(-1, z.shape[-1]), n_timesteps)
        return out.view(*lead, *out.shape[1:])  # (..., batch, *input_shape)

    def decode(self, z, n_timesteps=None):
        out = self.decode_logits(z, n_timesteps)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def decoder_log_var(self):
        # Adam moves a parameter by about the learning rate per step, so the
        # scale lets the log-variance travel 10x faster (a variance 100x
        # smaller than 1 is ~500 steps away, not ~5000). The softplus is a
        # smooth floor: ~the scaled value well above MIN_LOG_VAR, never below.
        scaled = LOG_VAR_SPEED * self.raw_log_var
        return MIN_LOG_VAR + F.softplus(scaled - MIN_LOG_VAR)

    def log_likelihood(self, x, z, valid=None):
        """log p(x | z) summed over all values of a sample (real steps only).

        ``z`` may carry leading sample dims; ``valid`` masks padded steps.
        """
        # Scores pass z in float64, so that squared errors and variances of
        # samples far from the training data do not overflow; the decoder
        # itself runs in float32 (a no-op in training, where all is float32).
        out = self.decode_logits(z.float(), x.shape[1] if self.sequential else None)
        out, x = out.to(z.dtype), x.to(z.dtype)
        if self.likelihood == "bernoulli":
            # x * log(sigmoid(l)) + (1 - x) * log(1 - sigmoid(l)), stably.
            ll = x * out - F.softplus(out)
        else:
            log_var = self.decoder_log_var().to(z.dtype)
            ll = -0.5 * (LOG_2PI + log_var + squared_errors(out, x) * torch.exp(-log_var))
        if valid is not None:
            ll = torch.where(valid, ll, 0.0)
        return ll.flatten(ll.ndim - x.ndim + 1).sum(-1)  # (..., batch)


def _mask(X, lengths):
    """Mask of the real steps of padded sequences ``X`` (None when nothing is padded)."""
    return None if lengths is None else valid_steps(X, lengths)


def _kl_to_prior(mean, log_var):
    """KL(N(mean, exp(log_var)) || N(0, I)) per sample, in nats."""
    return 0.5 * (mean**2 + torch.exp(log_var) - 1.0 - log_var).sum(-1)


@shared_docs
class VariationalAutoEncoder(BaseAutoEncoder):
    """Variational autoencoder (VAE) with a diagonal Gaussian latent.

    The encoder maps each sample through ``hidden_layer_sizes`` to the mean
    and log-variance of a Gaussian posterior q(z|x) over ``n_components``
    latent dimensions; the decoder maps a latent vector back to the parameters
    of a likelihood p(x|z). The prior p(z) is a standard normal. Training
    maximises the evidence lower bound (ELBO) with one reparameterised sample
    of z per training sample and per step (Kingma & Welling, 2014); ``beta``
    weights its KL term (a beta-VAE when ``beta != 1``, Higgins et al., 2017).

    Parameters
    ----------
    n_components : int, default=8
        Number of latent dimensions.
    architecture : Architecture or None, default=None
        The network, from :mod:`skae.architectures` (MLP, convolutional,
        recurrent, or your own); it decides which inputs ``fit`` takes. None:
        an MLP with ``hidden_layer_sizes`` and ``activation``. Tune its
        parameters as ``architecture__<param>``.
    beta : float, default=1.0
        Weight of the KL term of the training loss. ``1`` is the plain VAE;
        larger values pull the posterior towards the prior (smoother, less
        informative codes); ``0`` drops it (a noisy autoencoder). Scores are
        always the unweighted log-likelihood bound, whatever ``beta`` is.
    likelihood : {"gaussian", "bernoulli"}, default="gaussian"
        Model of p(x|z). ``"gaussian"``: the decoder gives a mean, with one
        learned variance per feature; for real-valued data, preferably
        standardised. ``"bernoulli"``: the decoder gives logits; for binary
        data (or data in [0, 1], scored by cross-entropy); values outside
        [0, 1] are rejected.
    n_importance_samples : int, default=1
        Samples of z per data point in :meth:`score_samples`. ``1`` gives the
        ELBO; ``K > 1`` the importance-weighted bound of Burda et al. (2016),
        tighter as ``K`` grows, at ``K`` times the cost of the decoder.
    hidden_layer_sizes : int or tuple of int, default=(64,)
        Widths of the encoder's hidden layers, input side first. The decoder
        uses them in reverse. Used only when ``architecture=None``: next to
        an architecture, ``fit`` raises a ValueError for a value other than
        the default (set the architecture's own parameter instead).
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Activation between layers. Used only when ``architecture=None``, as
        ``hidden_layer_sizes``.
    {training_parameters}

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.
    n_iter_ : int
        Number of epochs run (summed over fits with ``warm_start=True``).
    loss_curve_ : list of float
        Mean training loss of each epoch: the negative (beta-weighted) ELBO in
        nats per sample, summed over features.
    validation_scores_ : list of float
        Validation ELBO (beta-weighted) of each epoch, in nats per sample.
        Only with ``early_stopping=True``.
    best_validation_score_ : float
        Best of ``validation_scores_``. Only with ``early_stopping=True``.
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
    AutoEncoder : The deterministic autoencoder.
    sklearn.mixture.GaussianMixture : Another density model with
        ``score_samples`` and ``sample``.

    Notes
    -----
    ``random_state`` also seeds the reparameterisation noise of training and
    the noise of :meth:`score_samples` (for ``None`` or a ``RandomState``,
    seeded once per fit, so that a fitted model's scores repeat on every call).

    :meth:`transform` returns the posterior mean, :meth:`posterior` its
    log-variance too, and :meth:`inverse_transform` the decoder mean (pixel
    probabilities for ``likelihood="bernoulli"``); :meth:`sample` draws from
    the full model.

    Units: the training loss and :meth:`score_samples` are in nats per
    sample (log-densities summed over features), so ``-loss_curve_[-1]`` is
    the training ELBO when ``beta=1``.

    The Gaussian decoder's variance is one learned parameter per feature
    (not a function of z), floored at 1e-6 in the data's units so that a
    constant feature cannot make the likelihood infinite. It starts at 1,
    which suits standardised data.

    :meth:`score_samples` draws the latent noise of each row from a
    counter-based generator keyed by ``random_state`` and the row's values, so
    rows get independent noise, yet a row's score does not depend on the
    other rows or their order.

    References: Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR
    2014; Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders",
    ICLR 2016; Higgins et al., "beta-VAE", ICLR 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import VariationalAutoEncoder
    >>> X = np.random.RandomState(0).normal(size=(200, 10))
    >>> vae = VariationalAutoEncoder(n_components=2, max_iter=20, random_state=0).fit(X)
    >>> vae.transform(X).shape
    (200, 2)
    >>> mean, log_var = vae.posterior(X[:5])
    >>> log_var.shape
    (5, 2)
    >>> vae.sample(3, random_state=0).shape
    (3, 10)
    >>> elbo = vae.score(X)
    >>> iwae = vae.set_params(n_importance_samples=100).score(X)
    >>> bool(iwae >= elbo)
    True
    """

    _module_params = (*BaseAutoEncoder._module_params, "likelihood")

    _parameter_constraints: dict = {
        **BaseAutoEncoder._parameter_constraints,
        "beta": [Interval(Real, 0, None, closed="left")],
        "likelihood": [StrOptions({"gaussian", "bernoulli"})],
        "n_importance_samples": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_components=8,
        *,
        architecture=None,
        beta=1.0,
        likelihood="gaussian",
        n_importance_samples=1,
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
        self.beta = beta
        self.likelihood = likelihood
        self.n_importance_samples = n_importance_samples

    # ----------------------------------------------------------------- hooks

    def _n_encoder_outputs(self):
        return 2 * self.n_components  # the posterior's mean and log-variance

    def _build_module(self, input_shape):
        return VAENetwork(
            self._build_network(input_shape), self._sequential, input_shape, self.likelihood
        )

    def _prepare_fit(self, X, lengths=None):
        # Without an int random_state, the noise of score_samples is seeded once
        # per fit, so that a fitted model's scores repeat from call to call.
        if not isinstance(self.random_state, Integral):
            rng = check_random_state(self.random_state)
            self._score_seed = int(rng.randint(np.iinfo(np.int32).max))

    def _noise_seed(self) -> int:
        """Seed of the noise of score_samples: from an int random_state, else from fit."""
        if isinstance(self.random_state, Integral):
            return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        return self._score_seed

    def _check_values(self, X):
        if self.likelihood == "bernoulli" and (X.min() < 0 or X.max() > 1):
            raise ValueError(
                f"likelihood='bernoulli' needs X in [0, 1], got values in "
                f"[{X.min():.4g}, {X.max():.4g}]; scale X (e.g. MinMaxScaler) or "
                "use likelihood='gaussian'."
            )

    def _loss(self, module, batch, training):
        X, lengths = split_batch(batch)
        X = trim(X, lengths)
        mean, log_var = module.posterior(X, lengths)
        # Reparameterisation: z is a differentiable function of the noise.
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        nll = -module.log_likelihood(X, z, _mask(X, lengths))
        return (nll + self.beta * _kl_to_prior(mean, log_var)).mean()

    # ------------------------------------------------------------ inference

    def _log_likelihood_bound(self, module, X, seed, lengths=None):
        """ELBO (K = 1) or importance-weighted bound (K > 1) of each row of ``X``."""
        n_samples_z = self.n_importance_samples
        X = trim(X, lengths)
        valid = _mask(X, lengths)
        keys = _row_keys(X, seed, valid)
        # In float64 from here on: exp(log_var) and squared errors of samples
        # far outside the training data overflow float32.
        mean, log_var = (t.double() for t in module.posterior(X, lengths))
        std = torch.exp(0.5 * log_var)
        if n_samples_z == 1:
            # The ELBO with the KL in closed form: less variance than sampling it.
            z = mean + std * _row_normals(keys, 0, 1, self.n_components)[0].double()
            return module.log_likelihood(X, z, valid) - _kl_to_prior(mean, log_var)
        # A sample's decoder activations: several times its size for a
        # convolutional or recurrent network, its widest layer for an MLP.
        width = 8 * max(X[0].numel(), 2 * self.n_components, 64)
        chunk = max(1, IMPORTANCE_CHUNK_ELEMENTS // (len(X) * width))
        total = None
        for start in range(0, n_samples_z, chunk):
            stop = min(start + chunk, n_samples_z)
            eps = _row_normals(keys, start, stop, self.n_components).double()  # (k, batch, n_comp.)
            z = mean + std * eps
            log_prior = -0.5 * (LOG_2PI + z**2).sum(-1)
            log_post = -0.5 * (LOG_2PI + log_var + eps**2).sum(-1)
            log_w = module.log_likelihood(X, z, valid) + log_prior - log_post  # (k, batch)
            part = torch.logsumexp(log_w, dim=0)
            total = part if total is None else torch.logaddexp(total, part)
        return total - math.log(n_samples_z)

    def score_samples(self, X):
        """Log-likelihood bound of each sample, in nats; higher means more normal.

        With ``n_importance_samples=1`` the ELBO, estimated with one sample of
        z (and the KL term in closed form); with ``K > 1`` the
        importance-weighted bound, a tighter (higher on average) lower bound
        of log p(x). The noise is seeded by an int ``random_state``, or
        otherwise by a seed drawn at fit, so a fitted model gives the same
        scores on every call. Scores that
        overflow (samples far outside the training data's scale) are clipped
        to the lowest finite value of the output dtype. Memory stays
        bounded for any ``K``: the samples of z are processed in chunks.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Per-sample log-likelihood bound (sum over features).
        """
        check_is_fitted(self)
        arrays = self._validate_input(X, reset=False)
        seed = self._noise_seed()
        return self._batched(
            lambda m, x, *a: self._log_likelihood_bound(m, x, seed, *a), *arrays, overflow="low"
        )

    def posterior(self, X):
        """Mean and log-variance of the Gaussian posterior q(z|x) of each sample.

        :meth:`transform` returns the mean only. Draw posterior samples as
        ``mean + np.exp(0.5 * log_var) * rng.standard_normal(mean.shape)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        mean : ndarray of shape (n_samples, n_components)
            Posterior means (what :meth:`transform` returns).
        log_var : ndarray of shape (n_samples, n_components)
            Posterior log-variances.
        """
        check_is_fitted(self)
        arrays = self._validate_input(X, reset=False)
        stats = self._batched(lambda m, *x: torch.cat(m.posterior(*x), dim=1), *arrays)
        return stats[:, : self.n_components], stats[:, self.n_components :]

    def sample(self, n_samples=1, random_state=None):
        """Draw new data from the model: z from the prior, then x from p(x|z).

        For the decoder's mean at random codes instead (smooth images rather
        than noisy or binary draws), use
        ``inverse_transform(rng.standard_normal((n, n_components)))``.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples to draw.
        random_state : int, RandomState instance or None, default=None
            Seeds both draws; the same int gives the same samples.

        Returns
        -------
        X : ndarray
            The samples, of shape (n_samples, n_features) for tables and in
            the form of the training input otherwise (flat rows, images,
            signals, or sequences of the training length): 0/1 values for
            ``likelihood="bernoulli"``.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}.")
        n_timesteps = None
        if self._sequential:
            n_timesteps = int(self._output_lengths(None, n_samples))
        shape = (n_timesteps, self.input_shape_[-1]) if self._sequential else self.input_shape_
        _inference.check_output_size((n_samples, *shape), f"sample(n_samples={n_samples})")
        rng = check_random_state(random_state)
        z = rng.standard_normal((n_samples, self.n_components))
        mean = self._batched(lambda m, z: m.decode(z, n_timesteps), z)
        if self.likelihood == "bernoulli":
            draws = (rng.uniform(size=mean.shape) < mean).astype(np.float64)
        else:
            std = np.exp(0.5 * self.module_.decoder_log_var().detach().cpu().numpy())
            draws = mean + std * rng.standard_normal(mean.shape)
        return self._as_fit_form(draws, [n_timesteps] * n_samples)

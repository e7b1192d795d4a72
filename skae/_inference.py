"""Inference: batches with bounded memory, and the public methods of a fitted model.

Inference holds no gradients, so it takes bigger batches than training; device
memory stays bounded by one batch, not by the input. Every estimator's
``transform``, ``inverse_transform``, scores and errors (the ensemble's too)
run through :func:`batched`, with CUDA out-of-memory retry and finite results.
:class:`InferenceMixin` holds those public methods for the autoencoders.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from sklearn.base import TransformerMixin
from sklearn.utils._available_if import available_if
from sklearn.utils.validation import check_array, check_is_fitted

from . import _errors, _inputs
from ._batching import SparseRows
from ._device import check_float32_range
from ._inputs import FLOAT_DTYPES

# Rows per inference batch of a table (read at each call, so it can be tuned).
INFERENCE_BATCH_ROWS = 8192
# Rows per inference batch for images, signals and sequences, whose rows are heavier.
INFERENCE_BATCH_ROWS_ND = 1024
# Sparse input is densified one batch at a time; this bounds a dense inference
# batch (64 MiB of float32) however wide the rows (e.g. 2**20 hashed columns).
INFERENCE_BATCH_ELEMENTS = 2**24


def batch_rows(X, heavy: bool) -> int:
    """Rows per inference batch of ``X``; ``heavy`` for images, signals and sequences.

    ``X`` may be None (rows of unknown width), a NumPy array, a scipy sparse
    matrix or a :class:`~skae._batching.SparseRows`: wide sparse rows are
    densified a batch at a time, so they bound the batch by its elements.
    """
    rows = INFERENCE_BATCH_ROWS_ND if heavy else INFERENCE_BATCH_ROWS
    if X is None:
        return rows
    per_row = math.prod(X.shape[1:])
    if sp.issparse(X) or isinstance(X, SparseRows) or heavy:
        rows = max(1, min(rows, INFERENCE_BATCH_ELEMENTS // max(1, per_row)))
    return rows


def check_output_size(shape: tuple, what: str, itemsize: int = 8) -> None:
    """Refuse an output too large for this machine's memory, before allocating it.

    ``shape`` is the output's; ``what`` names the request in the message
    (e.g. ``"sample(n_samples=10**15)"``).
    """
    n_bytes = math.prod(int(s) for s in shape) * itemsize
    limit = _physical_memory()
    if limit is not None and n_bytes > limit:
        raise ValueError(
            f"{what} asks for an output of shape {tuple(shape)} ({n_bytes / 2**30:.3g} GiB), "
            f"more than this machine's memory ({limit / 2**30:.3g} GiB); ask for less."
        )


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        return None


def batched(
    fn,
    module,
    device,
    X,
    *aligned,
    rows: int,
    overflow: str = "raise",
    name: str = "The estimator",
    out_dtype=None,
) -> np.ndarray:
    """Apply ``fn(module, batch, *aligned_batches)`` to ``X`` in batches of ``rows``.

    ``aligned`` are arrays with one row per row of ``X`` (e.g. sequence
    lengths), sliced alongside it and passed in their own dtype. The result
    comes back in ``out_dtype`` (default: X's dtype). Each batch is copied to
    the device, processed, and copied back into a preallocated host array, so
    device memory holds one batch at a time. A batch that runs out of CUDA
    memory is retried in halves (down to one row), with a warning.

    ``overflow`` says what to do with non-finite results (finite inputs
    whose computation overflowed float32): ``"raise"`` a ValueError, or,
    for scores and errors, clip them to the output dtype's lowest
    (``"low"``: NaN counts as lowest) or highest (``"high"``) finite value.
    """
    check_float32_range(X)
    tensor = isinstance(X, torch.Tensor)
    out_dtype = X.dtype if out_dtype is None else out_dtype
    if tensor and not isinstance(out_dtype, torch.dtype):
        out_dtype = getattr(torch, np.dtype(out_dtype).name)
    module.eval()
    out = None
    start = 0
    with torch.inference_mode():
        while start < X.shape[0]:
            stop = start + rows
            try:
                result = run_batch(fn, module, device, X, aligned, slice(start, stop))
            except torch.cuda.OutOfMemoryError:
                if rows == 1:
                    raise
                torch.cuda.empty_cache()
                warnings.warn(
                    f"CUDA ran out of memory on an inference batch of {rows} rows; "
                    f"retrying with {max(1, rows // 2)}.",
                    ResourceWarning,
                    stacklevel=4,
                )
                rows = max(1, rows // 2)
                continue
            if out is None:
                shape = (X.shape[0], *result.shape[1:])
                out = (
                    torch.empty(shape, dtype=out_dtype, device=X.device)
                    if tensor
                    else np.empty(shape, dtype=out_dtype)
                )
            # float64 scores beyond float32 become inf here, handled below.
            with np.errstate(over="ignore"):
                out[start:stop] = result
            start = stop
    if tensor:
        return out if out is None else _finite_tensor(out, X, overflow, name)
    if out is None or np.isfinite(out).all():
        return out
    if overflow == "raise":
        largest = abs(X).max() if sp.issparse(X) else np.abs(X).max()
        raise ValueError(
            f"{name} computed non-finite values from finite input: values of X "
            f"(largest magnitude {largest:.3g}) overflow float32 in the network. "
            "Scale the data like the training data."
        )
    info = np.finfo(out.dtype)
    low, high = float(info.min), float(info.max)
    return np.nan_to_num(out, nan=low if overflow == "low" else high, posinf=high, neginf=low)


def _finite_tensor(out: torch.Tensor, X: torch.Tensor, overflow: str, name: str):
    """:func:`batched`'s handling of non-finite results, for a tensor output."""
    if bool(torch.isfinite(out).all()):
        return out
    if overflow == "raise":
        raise ValueError(
            f"{name} computed non-finite values from finite input: values of X "
            f"(largest magnitude {float(X.abs().max()):.3g}) overflow float32 in the "
            "network. Scale the data like the training data."
        )
    info = torch.finfo(out.dtype)
    low, high = info.min, info.max
    return torch.nan_to_num(out, nan=low if overflow == "low" else high, posinf=high, neginf=low)


def run_batch(fn, module, device, X, aligned, rows: slice) -> np.ndarray:
    """``fn`` on the rows ``rows`` of ``X`` (and of ``aligned``), back on the host
    (on ``X``'s own device when ``X`` is a tensor)."""
    if isinstance(X, torch.Tensor):
        batch = X[rows].to(device=device, dtype=torch.float32)
        extra = [torch.as_tensor(a[rows], device=device) for a in aligned]
        return fn(module, batch, *extra).to(X.device)
    if sp.issparse(X):  # densified on the device, one batch at a time
        batch = SparseRows.from_scipy(X[rows], device)[:]
    else:
        # Slices of X[::-1] have negative strides, which torch does not take.
        batch = torch.tensor(np.ascontiguousarray(X[rows]), dtype=torch.float32, device=device)
    extra = [torch.as_tensor(np.ascontiguousarray(a[rows]), device=device) for a in aligned]
    return fn(module, batch, *extra).cpu().numpy()


def like_input(out, X):
    """Per-feature outputs ``out`` as a DataFrame with ``X``'s index and columns
    when ``X`` is a pandas DataFrame (so errors keep the names of what they explain)."""
    columns = getattr(X, "columns", None)
    if columns is None or not hasattr(X, "iloc") or getattr(out, "shape", None) != X.shape:
        return out
    return type(X)(out, index=X.index, columns=columns)


def check_codes(Z):
    """Codes for decoding: a 2-D float array, or a tensor kept on its device."""
    if not isinstance(Z, torch.Tensor):
        return check_array(Z, dtype=FLOAT_DTYPES, input_name="X")
    if Z.layout != torch.strided or Z.ndim != 2 or Z.is_complex():
        raise ValueError(
            f"Expected codes as a dense 2-D tensor (n_samples, n_components), got a "
            f"{Z.layout} tensor of shape {tuple(Z.shape)}."
        )
    Z = Z.detach()
    if Z.dtype not in (torch.float32, torch.float64):
        Z = Z.to(torch.float32)
    if len(Z) == 0:
        raise ValueError(
            "Found array with 0 sample(s) (shape=(0, ...)) while a minimum of 1 is required."
        )
    if not bool(torch.isfinite(Z).all()):
        raise ValueError("Input X contains NaN or infinity.")
    return Z


def on_host(fn, X, *args, **kwargs):
    """``fn(X, ...)`` for code that reads NumPy: a tensor ``X`` goes to the host,
    and an array result comes back as a tensor on ``X``'s device."""
    if not isinstance(X, torch.Tensor):
        return fn(X, *args, **kwargs)
    out = fn(X.detach().cpu().numpy(), *args, **kwargs)
    return torch.as_tensor(out, device=X.device) if isinstance(out, np.ndarray) else out


def _reads_sequences(est) -> bool:
    arch = getattr(est, "architecture_", None) or est._configured_architecture()
    return getattr(arch, "input_kind", None) == "sequence"


class InferenceMixin(TransformerMixin):
    """What a fitted skae autoencoder computes: codes, reconstructions, scores, errors.

    Each public method validates its input against the fitted
    :class:`~skae._inputs.InputSpec`, runs the fitted module through
    :func:`batched`, and gives outputs back in the training input's form.
    The family hooks it calls (``_score_batch``, ``_errors``) live on
    :class:`~skae._base.BaseAutoEncoder`. It is a ``TransformerMixin``, so
    that ``set_output`` wraps the ``transform`` defined here.
    """

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

    def _inference_rows(self, X=None) -> int:
        return batch_rows(X, heavy=self.architecture_.input_kind != "table")

    def _batched(self, fn, X, *aligned, overflow: str = "raise") -> np.ndarray:
        """``fn(module, batch, *aligned_batches)`` over ``X`` in batches; see :mod:`_inference`."""
        return batched(
            fn,
            self.net_.module_,
            self.net_.device,
            X,
            *aligned,
            rows=self._inference_rows(X),
            overflow=overflow,
            name=type(self).__name__,
        )

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

    def inverse_transform(self, X, n_timesteps=None):
        """Decode codes back into the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, e.g. from :meth:`transform`.
        n_timesteps : int, array-like of int of shape (n_samples,) or None, default=None
            Sequence architectures only: length of the decoded sequences, or
            one length per code. None means the training length, which exists
            only when all training sequences had one length.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features) or list of ndarray
            The reconstructions, in the form of the training input (flat rows,
            images, signals or sequences) and the dtype of the codes; a list
            of arrays for sequences of per-code lengths.
        """
        check_is_fitted(self)
        Z = check_codes(X)
        if Z.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has {Z.shape[1]} features, but {type(self).__name__} decodes "
                f"codes of n_components={self._n_features_out} features."
            )
        if not self._sequential:
            if n_timesteps is not None:
                raise ValueError(
                    "n_timesteps applies to sequence architectures only; "
                    f"{type(self).__name__} was fitted with {type(self.architecture_).__name__}."
                )
            return self._as_fit_form(self._batched(lambda m, z: m.decode(z), Z))
        lengths = self._output_lengths(n_timesteps, len(Z))
        longest = int(lengths.max())
        check_output_size(
            (len(Z), longest, self.input_shape_[-1]), f"inverse_transform(n_timesteps={longest})"
        )
        out = self._batched(lambda m, z: m.decode(z, longest), Z)
        if lengths.ndim == 1:
            return _inputs.as_form(out, "list", lengths)
        return self._as_fit_form(out, [longest] * len(out))

    def _output_lengths(self, n_timesteps, n_codes: int) -> np.ndarray:
        """``n_timesteps`` of :meth:`inverse_transform`, checked, as an int array."""
        if n_timesteps is None:
            if self.input_shape_[0] is None:
                raise ValueError(
                    f"{type(self).__name__} was fitted on sequences of different "
                    "lengths, so it has no default output length: pass n_timesteps "
                    "(an int, or one int per code)."
                )
            n_timesteps = self.input_shape_[0]
        lengths = np.asarray(n_timesteps)
        if (
            lengths.dtype.kind not in "iu"
            or lengths.ndim > 1
            or (lengths.ndim == 1 and len(lengths) != n_codes)
            or np.any(lengths < 1)
        ):
            raise ValueError(
                f"n_timesteps must be a positive int or {n_codes} positive ints (one "
                f"per code), got {n_timesteps!r}."
            )
        return lengths

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
            reconstruction error of each sample, computed in float64. Scores
            are always finite: one that overflows (a sample far outside the
            training data's scale) is clipped to the lowest finite value of
            the output dtype, so it ranks as the least normal.
        """
        check_is_fitted(self)
        arrays = self._validate_input(X, reset=False)
        return self._batched(self._score_batch, *arrays, overflow="low")

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
        # In float64: float32 scores clipped near float32's lowest value
        # would overflow a float32 sum.
        scores = self.score_samples(X)
        if isinstance(scores, torch.Tensor):
            return float(scores.double().mean())
        return float(np.mean(scores, dtype=np.float64))

    def _element_errors(self, module, X, lengths=None) -> torch.Tensor:
        """Squared error of each element, padded back to the batch's full length."""
        err = self._errors(module, X, lengths, exact=True)[0]
        if lengths is not None:  # (batch, longest, features) -> (batch, time, features)
            err = F.pad(err, (0, 0, 0, X.shape[1] - err.shape[1]))
        return err

    def feature_errors(self, X):
        """Squared reconstruction error of each value of each sample.

        They say which inputs make a sample anomalous: a large entry is a
        value the model could not reconstruct from the rest. For the
        reconstruction families, the mean over a sample's values is minus
        its :meth:`score_samples`; for the variational family they are the
        errors of the decoder's mean.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to explain, in any form :meth:`fit` takes.

        Returns
        -------
        errors : ndarray or list of ndarray
            ``(X - inverse_transform(transform(X))) ** 2`` computed in
            float64, in the form and dtype of the training input (dense for
            sparse input; a list of arrays for a list of sequences; a
            DataFrame with the same index and columns for a DataFrame). Errors
            that overflow are clipped to the dtype's largest finite value.
        """
        check_is_fitted(self)
        arrays, spec = self._read_input(X, reset=False)
        check_output_size(arrays[0].shape, "feature_errors(X)")
        out = self._batched(self._element_errors, *arrays, overflow="high")
        lengths = arrays[1] if len(arrays) > 1 else [out.shape[1]] * len(out)
        return like_input(_inputs.as_form(out, spec.form, lengths), X)

    @available_if(_reads_sequences)
    def timestep_errors(self, X):
        """Squared reconstruction error at each time step, to locate anomalies.

        Available on every estimator whose architecture reads sequences.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps[, n_features]) or list
            Sequences in any of the forms :meth:`fit` takes.

        Returns
        -------
        errors : ndarray of shape (n_samples, n_timesteps), or list of ndarray
            The squared error of each step, averaged over the step's features
            (higher = more anomalous); a list of arrays of shape
            (n_timesteps_i,) for list input. :meth:`score_samples` is minus
            the mean of each sequence's errors.
        """
        check_is_fitted(self)
        arrays, spec = self._read_input(X, reset=False)

        def errors(module, X, lengths=None):
            return _errors.step_mean(self._element_errors(module, X, lengths))

        out = self._batched(errors, *arrays, overflow="high")
        if spec.form != "list":
            return out
        return _inputs.as_form(
            out, "list", arrays[1] if len(arrays) > 1 else [out.shape[1]] * len(out)
        )

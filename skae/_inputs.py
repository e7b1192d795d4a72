"""Reading inputs in the forms an architecture takes, and giving outputs back in them.

An estimator's architecture says what it reads (its ``input_kind``): tables,
images, signals or sequences. :func:`read` checks ``X`` at a public boundary
and returns the aligned arrays the module takes plus an :class:`InputSpec`, a
frozen description of the input (its form and the shape of one sample as the
module sees it). ``fit`` records the spec of the training input; every later
call is checked against it, since ``validate_data(allow_nd=True)`` alone checks
only axis 1. :func:`as_form` puts per-sample outputs (reconstructions, error
maps) back into the training input's form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils.validation import check_array, validate_data

FLOAT_DTYPES = (np.float64, np.float32)
# Largest finite float32: skae computes in float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class InputSpec:
    """What an input is, as read for an architecture.

    Attributes
    ----------
    form : str
        How the samples came: ``"table"``; images and signals as ``"flat"``
        rows, without a channel axis (``"nochannel"``) or with one
        (``"channels"``); sequences as 2-D univariate rows
        (``"sequence_table"``), a 3-D ``"array"`` or a ``"list"``.
    sample_shape : tuple
        One sample as the module sees it: ``(n_features,)``, ``(c, h, w)``,
        ``(c, length)`` or ``(n_timesteps, n_features)``, with
        ``n_timesteps`` None for sequences of different lengths.
    n_features_in : int or None
        ``n_features_in_`` where ``validate_data`` did not record it (input
        of more than two dimensions), else None.
    """

    form: str
    sample_shape: tuple
    n_features_in: int | None = None


def read(est, X, *, architecture, fitted: InputSpec | None = None):
    """Check ``X`` for ``architecture``; return ``(arrays, spec)``.

    ``arrays`` is ``(X,)`` with ``X`` of shape (n_samples, *sample_shape),
    or, for variable-length sequences, ``(padded, lengths)``. Without
    ``fitted`` (in ``fit``) the input sets the spec (and ``validate_data``
    records ``n_features_in_``, ``feature_names_in_``); otherwise ``X`` is
    checked against the ``fitted`` spec.
    """
    if isinstance(X, torch.Tensor):
        return _read_tensor(est, X, architecture, fitted)
    kind = architecture._checked_kind()
    reset = fitted is None
    if kind != "table" and (
        sp.issparse(X) or (isinstance(X, (list, tuple)) and any(map(sp.issparse, X)))
    ):
        raise TypeError(
            f"{type(est).__name__} with {type(architecture).__name__} reads {kind}s and "
            "does not accept sparse input; pass dense arrays, or use a table "
            "architecture (the default MLP) for sparse tables."
        )
    n_features = None
    if kind == "table":
        # Sparse input (e.g. TF-IDF) stays sparse: CSR, densified per batch.
        X = validate_data(est, X, dtype=FLOAT_DTYPES, accept_sparse="csr", reset=reset)
        arrays, form = (X,), "table"
    elif kind == "sequence":
        arrays, form, n_features = _read_sequences(est, X, fitted)
    else:
        n_spatial = 2 if kind == "image" else 1
        arrays, form, n_features = _read_grid(
            est, X, reset, n_spatial, architecture.declared_shape()
        )
    shape = tuple(int(s) for s in arrays[0].shape[1:])
    if kind == "sequence":
        fixed = len(arrays) == 1
        shape = (shape[0] if fixed else None, shape[-1])
    spec = InputSpec(form, shape, n_features)
    if fitted is not None and kind != "sequence" and shape != tuple(fitted.sample_shape):
        raise ValueError(
            f"X has samples of shape {shape} (as {type(est).__name__} reads "
            f"them), but it was fitted on samples of shape {tuple(fitted.sample_shape)}."
        )
    return arrays, spec


def _read_tensor(est, X: torch.Tensor, architecture, fitted):
    """A dense torch tensor, read where it lies (CPU or GPU): ``(arrays, spec)``.

    Its first row goes through the NumPy reader (shape, form, feature count,
    ``n_features_in_``); the tensor is reshaped alike on its own device, and
    its values are checked there (one host-device sync).
    """
    if X.layout != torch.strided:
        raise TypeError(
            f"X is a sparse torch tensor ({X.layout}); pass a dense tensor, or a "
            "scipy.sparse matrix for sparse input."
        )
    if X.is_complex():
        raise ValueError("Complex data not supported; X is a complex torch tensor.")
    X = X.detach()
    if X.dtype not in (torch.float32, torch.float64):
        X = X.to(torch.float32)  # ints, bools, half precision: skae computes in float32
    if X.ndim == 0:
        raise ValueError("Expected a 2-D tensor (n_samples, n_features), got a scalar tensor.")
    _, spec = read(est, X[:1].cpu().numpy(), architecture=architecture, fitted=fitted)
    if spec.form == "flat":
        X = X.reshape(len(X), *spec.sample_shape)
    elif spec.form == "nochannel":
        X = X[:, None]
    elif spec.form == "sequence_table":
        X = X[:, :, None]
    if not bool(torch.isfinite(X).all()):
        raise ValueError("Input X contains NaN or infinity.")
    if X.dtype == torch.float64 and X.numel() and float(X.abs().max()) > FLOAT32_MAX:
        raise ValueError(
            f"X has values beyond float32's range (largest magnitude "
            f"{float(X.abs().max()):.3g} > {FLOAT32_MAX:.3g}); skae computes in float32. "
            "Scale the data first (e.g. StandardScaler)."
        )
    return (X,), spec


def as_form(out: np.ndarray, form: str, lengths=None):
    """Per-sample outputs ``out`` of shape (n, *input_shape) in the input's ``form``."""
    if form == "flat":
        return out.reshape(len(out), -1)
    if form == "nochannel":
        return out[:, 0]
    if form == "sequence_table":
        return out[:, :, 0]
    if form == "list":
        return [out[i, :n] for i, n in enumerate(lengths)]
    return out  # "table", "channels", "array"


# ------------------------------------------------------------------ grids


def _read_grid(est, X, reset, n_spatial: int, declared):
    """Images (n_spatial=2) or signals (n_spatial=1) in their three forms.

    Returns ``(arrays, form, n_features_in)``.
    """
    name = "image" if n_spatial == 2 else "signal"
    ndim = getattr(X, "ndim", None)
    ndim = np.ndim(X) if ndim is None else ndim
    if ndim == 2:
        X = validate_data(est, X, dtype=FLOAT_DTYPES, reset=reset)
        if declared is None and n_spatial == 2:
            raise ValueError(
                f"X is 2-D (shape {X.shape}), so each row must be a flat image: give its "
                "shape once as Convolutional2D(input_shape=(h, w)) or (c, h, w), or pass "
                "X as (n_samples, h, w) or (n_samples, c, h, w)."
            )
        shape = (1, X.shape[1]) if declared is None else declared
        if math.prod(shape) != X.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features per row, but input_shape={shape} holds "
                f"{math.prod(shape)} values per {name}."
            )
        return (X.reshape(len(X), *shape),), "flat", None
    if ndim not in (n_spatial + 1, n_spatial + 2):
        forms = (
            "(n_samples, h, w), (n_samples, c, h, w) or flat rows (n_samples, c * h * w)"
            if n_spatial == 2
            else "(n_samples, length), (n_samples, c, length) or flat rows with input_shape"
        )
        raise ValueError(f"Expected {name}s as {forms}; got an array with {ndim} dimensions.")
    X = check_array(X, dtype=FLOAT_DTYPES, allow_nd=True, input_name="X")
    if 0 in X.shape[1:]:
        raise ValueError(f"X of shape {X.shape} has an empty dimension.")
    form = "nochannel" if ndim == n_spatial + 1 else "channels"
    if form == "nochannel":
        X = X[:, None]
    return (X,), form, math.prod(X.shape[1:])


# -------------------------------------------------------------- sequences


def _read_sequences(est, X, fitted):
    """Sequences in any of the three forms of :class:`~skae.RecurrentAutoEncoder`.

    Returns ``(arrays, form, n_features_in)``: ``arrays`` is ``(padded,)``
    when all sequences have one length, else ``(padded, lengths)``, with
    ``padded`` of shape (n_samples, longest, n_features) zero-padded at the
    end; ``form`` is "sequence_table" (2-D), "array" (3-D) or "list".
    """
    if isinstance(X, (list, tuple)) and len(X) == 0:
        raise ValueError("X is an empty list; expected at least one sequence.")
    if isinstance(X, (list, tuple)) and any(np.ndim(x) >= 2 for x in X):
        form, seqs = "list", _check_sequence_list(X)
    elif isinstance(X, (list, tuple)) and len({np.shape(x) for x in X}) > 1:
        # 1-D sequences of different lengths: univariate, one feature per step.
        seqs = [np.reshape(x, (-1, 1)) if np.ndim(x) == 1 else x for x in X]
        form, seqs = "list", _check_sequence_list(seqs)
    elif getattr(X, "ndim", None) == 3:
        form = "array"
        X = check_array(X, dtype=FLOAT_DTYPES, allow_nd=True, input_name="X")
        if X.shape[1] == 0 or X.shape[2] == 0:
            raise ValueError(
                f"X of shape {X.shape} has no time steps or no features per time "
                "step; expected (n_samples, n_timesteps, n_features) with both >= 1."
            )
        seqs = X
    else:
        form, seqs = "sequence_table", _check_table(est, X, fitted)[:, :, None]

    n_features = seqs[0].shape[1]
    if fitted is not None and n_features != fitted.sample_shape[-1]:
        raise ValueError(
            f"X has {n_features} features per time step, but {type(est).__name__} "
            f"was fitted on sequences with {fitted.sample_shape[-1]}."
        )
    # A 2-D table's n_features_in_ is its number of steps, which validate_data records.
    n_features_in = None if form == "sequence_table" else n_features
    if form != "list":
        return (seqs,), form, n_features_in
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    padded = np.zeros((len(seqs), lengths.max(), n_features), dtype=np.result_type(*seqs))
    for i, s in enumerate(seqs):
        padded[i, : len(s)] = s
    fixed = lengths.min() == lengths.max()
    return ((padded,) if fixed else (padded, lengths)), form, n_features_in


def _check_table(est, X, fitted) -> np.ndarray:
    """A 2-D ``X``: univariate sequences, one per row."""
    if fitted is None or fitted.form == "sequence_table":
        return validate_data(est, X, dtype=FLOAT_DTYPES, reset=fitted is None)
    X = check_array(X, dtype=FLOAT_DTYPES, input_name="X")
    if fitted.sample_shape[-1] != 1:
        raise ValueError(
            f"A 2-D X of shape {X.shape} reads as univariate sequences, but "
            f"{type(est).__name__} was fitted on sequences with "
            f"{fitted.sample_shape[-1]} features per time step; pass a 3-D "
            "array or a list of 2-D arrays."
        )
    return X


def _check_sequence_list(X) -> list[np.ndarray]:
    """A list of 2-D arrays ``(n_timesteps_i, n_features)``."""
    seqs = []
    for i, x in enumerate(X):
        if np.ndim(x) != 2:
            raise ValueError(
                f"X is a list of sequences, so each must be a 2-D array "
                f"(n_timesteps, n_features); X[{i}] has shape {np.shape(x)}."
            )
        if np.shape(x)[0] == 0:
            raise ValueError(
                f"X[{i}] is an empty sequence (shape {np.shape(x)}); every "
                "sequence needs at least one time step."
            )
        x = check_array(x, dtype=FLOAT_DTYPES, input_name=f"X[{i}]")
        if seqs and x.shape[1] != seqs[0].shape[1]:
            raise ValueError(
                f"X[{i}] has {x.shape[1]} features per time step, but X[0] has "
                f"{seqs[0].shape[1]}; all sequences need the same number."
            )
        seqs.append(x)
    return seqs

"""Batched inference: bounded memory, CUDA out-of-memory retry, finite results.

Inference holds no gradients, so it takes bigger batches than training; device
memory stays bounded by one batch, not by the input. Every estimator's
``transform``, ``inverse_transform``, scores and errors (the ensemble's too)
run through :func:`batched`.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import scipy.sparse as sp
import torch

from ._batching import SparseRows
from ._device import check_float32_range

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
    out_dtype = X.dtype if out_dtype is None else out_dtype
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
                out = np.empty((X.shape[0], *result.shape[1:]), dtype=out_dtype)
            # float64 scores beyond float32 become inf here, handled below.
            with np.errstate(over="ignore"):
                out[start:stop] = result
            start = stop
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


def run_batch(fn, module, device, X, aligned, rows: slice) -> np.ndarray:
    """``fn`` on the rows ``rows`` of ``X`` (and of ``aligned``), back on the host."""
    if sp.issparse(X):  # densified on the device, one batch at a time
        batch = SparseRows.from_scipy(X[rows], device)[:]
    else:
        # Slices of X[::-1] have negative strides, which torch does not take.
        batch = torch.tensor(np.ascontiguousarray(X[rows]), dtype=torch.float32, device=device)
    extra = [torch.as_tensor(np.ascontiguousarray(a[rows]), device=device) for a in aligned]
    return fn(module, batch, *extra).cpu().numpy()

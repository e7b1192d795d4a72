"""Where computation runs: the ``device`` parameter, copies to it, and seeding.

Every estimator (the autoencoders and the ensemble) resolves its device, puts
arrays there and forks torch's RNG through these functions, so that a fit
seeds its own work without touching the user's global generator.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils import check_random_state

from ._batching import SparseRows

# Largest finite float32: skae computes in float32, so larger inputs would
# silently become inf on the device.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def resolve_device(device) -> torch.device:
    """Turn the ``device`` parameter into a :class:`torch.device`.

    ``"auto"`` means CUDA when :func:`torch.cuda.is_available`, else the CPU.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    expected = "expected 'auto', 'cpu', 'cuda' or 'cuda:<index>'"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device; {expected}.") from exc
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            f"device={device!r} asks for Apple's MPS backend, which this torch build or "
            f"machine does not offer; {expected}."
        )
    if resolved.type not in ("cpu", "cuda", "mps"):
        raise ValueError(
            f"device={device!r} is a {resolved.type!r} device, on which skae cannot "
            f"train or infer; {expected}."
        )
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} asks for CUDA, but torch.cuda.is_available() is "
            "False on this machine; use device='auto' or 'cpu'."
        )
    return resolved


def check_float32_range(a, name: str = "X") -> None:
    """Reject finite values that float32, the computing dtype, cannot hold."""
    if sp.issparse(a):
        a = a.data
    if a.dtype != np.float64 or a.size == 0:
        return
    # max and -min instead of abs(a).max(): no temporary copy of a.
    largest = max(float(a.max()), -float(a.min()))
    if largest > FLOAT32_MAX:
        raise ValueError(
            f"{name} has values beyond float32's range (largest magnitude "
            f"{largest:.3g} > {FLOAT32_MAX:.3g}); skae computes in float32. "
            "Scale the data first (e.g. StandardScaler)."
        )


def to_device(a, device: torch.device, densify_on=None) -> torch.Tensor:
    """Float arrays become float32 tensors on ``device``; others keep their dtype.

    A scipy sparse matrix stays sparse on ``device``, as
    :class:`~skae._batching.SparseRows` whose row batches come out dense on
    ``densify_on`` (default ``device``).
    """
    check_float32_range(a)
    if sp.issparse(a):
        return SparseRows.from_scipy(a, device, densify_on)
    # torch takes neither negative strides (X[::-1]) nor, without a warning,
    # read-only arrays (e.g. joblib memmaps); copy those.
    a = np.ascontiguousarray(a)
    tensor = torch.from_numpy(a if a.flags.writeable else a.copy())
    dtype = torch.float32 if tensor.is_floating_point() else tensor.dtype
    return tensor.to(device=device, dtype=dtype)


def device_bytes(a) -> int:
    """Bytes that :func:`to_device` takes for ``a`` (float32 values)."""
    if sp.issparse(a):  # float32 values, int32 column indices, int64 row pointers
        return 8 * a.nnz + 8 * (a.shape[0] + 1)
    return a.size * (4 if a.dtype.kind == "f" else a.itemsize)


def fits_on_device(arrays, device: torch.device) -> bool:
    """Whether the training arrays (as float32) fit in half the device's free memory."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return sum(device_bytes(a) for a in arrays) <= free // 2


def data_home(arrays, device: torch.device) -> torch.device:
    """Where training data live: on ``device``, or on the host when they would crowd it.

    Data kept on the host are streamed to ``device`` one batch at a time
    (see :class:`~skae._batching.TensorBatchIterator`).
    """
    return device if fits_on_device(arrays, device) else torch.device("cpu")


def forked_rng(device: torch.device):
    """Fork torch's global RNG on ``device`` so seeding a fit leaves the user's alone."""
    cuda = [device.index or 0] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=cuda)


def draw_seed(random_state) -> int:
    """One int32 seed from a ``random_state`` parameter."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))

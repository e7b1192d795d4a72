"""Where computation runs: the ``device`` parameter, copies to it, and seeding.

Every estimator (the autoencoders and the ensemble) resolves its device, puts
arrays there and forks torch's RNG through these functions, so that a fit
seeds its own work without touching the user's global generator.
"""

from __future__ import annotations

import mmap
import warnings

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
    if isinstance(a, torch.Tensor):
        return  # checked where it was read (skae._inputs)
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
    tensor = a if isinstance(a, torch.Tensor) else host_view(a)
    dtype = torch.float32 if tensor.is_floating_point() else tensor.dtype
    return tensor.to(device=device, dtype=dtype)


def host_view(a: np.ndarray) -> torch.Tensor:
    """``a`` as a CPU tensor sharing its memory (a copy only for negative strides).

    Read-only arrays (a read-only ``np.memmap``, joblib's memmaps) are shared
    too: skae never writes into its input tensors, it gathers batches from them.
    """
    # torch does not take negative strides (X[::-1]).
    a = np.ascontiguousarray(a)
    if a.flags.writeable:
        return torch.from_numpy(a)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a)


def file_backed(a) -> bool:
    """Whether ``a`` is a view of a memory-mapped file (``np.memmap``, ``mmap``)."""
    while a is not None:
        if isinstance(a, (np.memmap, mmap.mmap)):
            return True
        a = getattr(a, "base", None)
    return False


def training_tensor(a, home: torch.device, device: torch.device):
    """The training array ``a`` on ``home`` (see :func:`data_home`), as :func:`to_device`.

    A memory-mapped file trained on the CPU is not read into memory: it stays
    a view of the file in its own dtype, and batches are gathered from it and
    cast to float32 as they are drawn (see
    :class:`~skae._batching.TensorBatchIterator`).
    """
    if home.type == "cpu" and not sp.issparse(a) and file_backed(a):
        check_float32_range(a)
        return host_view(a)
    return to_device(a, home, device)


def device_bytes(a) -> int:
    """Bytes that :func:`to_device` takes for ``a`` (float32 values)."""
    if sp.issparse(a):  # float32 values, int32 column indices, int64 row pointers
        return 8 * a.nnz + 8 * (a.shape[0] + 1)
    if isinstance(a, torch.Tensor):
        return a.numel() * (4 if a.is_floating_point() else a.element_size())
    return a.size * (4 if a.dtype.kind == "f" else a.itemsize)


def fits_on_device(arrays, device: torch.device) -> bool:
    """Whether the training arrays (as float32) fit in half the device's free memory."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return sum(device_bytes(a) for a in arrays) <= free // 2


def data_home(arrays, device: torch.device) -> torch.device:
    """Where training data live: on ``device``, or on the host when they would crowd it.

    A memory-mapped file (``np.memmap``) stays on the host (a view of the
    file, never read whole into memory) and is streamed.

    Data kept on the host are streamed to ``device`` one batch at a time
    (see :class:`~skae._batching.TensorBatchIterator`).
    """
    on_device = [a for a in arrays if isinstance(a, torch.Tensor) and a.device == device]
    if on_device:  # a tensor already there trains where it lies
        return device
    if any(file_backed(a) for a in arrays) or not fits_on_device(arrays, device):
        return torch.device("cpu")
    return device


def forked_rng(device: torch.device):
    """Fork torch's global RNG on ``device`` so seeding a fit leaves the user's alone."""
    cuda = [device.index or 0] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=cuda)


def draw_seed(random_state) -> int:
    """One int32 seed from a ``random_state`` parameter."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))

"""Batches as slices of tensors that already sit on the training device.

skorch's default path wraps data in a ``Dataset`` and a ``DataLoader`` that
index and collate one sample at a time; for a small MLP that costs far more
than the forward and backward passes. Here a batch is one gather from a
device tensor (or, for data made of several aligned tensors, such as padded
sequences and their lengths, one gather from each, returned as a tuple).
A sparse matrix sits on the device as :class:`SparseRows`, whose row gathers
come back dense: only one batch is ever densified.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from skorch.dataset import Dataset


class SparseRows:
    """The rows of a CSR matrix on a device; indexing rows gives them dense.

    ``rows[i]`` for a slice or an index tensor returns a dense float32 tensor
    of shape (len(i), n_columns) on ``densify_on`` (the storage device unless
    given). :meth:`take` returns the selected rows as another ``SparseRows``
    (for a validation split). Memory on the storage device: the stored values
    (float32), their column indices (int32 when they fit) and one row pointer
    per row (int64), about the size of the scipy matrix.

    A gather reads, for each selected row, ``max_row_nnz`` slots from the row's
    start (slots past the row's end read as zero), so a batch of ``b`` rows
    costs ``b * max_row_nnz`` reads, never more than the ``b * n_columns`` of
    the dense batch itself, with no host-device sync (its size is known
    before the data are read).
    """

    def __init__(self, indptr, indices, data, n_columns, densify_on=None):
        self.indptr = indptr
        self.indices = indices
        self.data = data
        self.n_columns = n_columns
        self.device = data.device
        self.densify_on = self.device if densify_on is None else torch.device(densify_on)
        # One host sync here, so that gathers need none.
        counts = indptr[1:] - indptr[:-1]
        self.max_row_nnz = int(counts.max()) if len(counts) else 0
        self._slots = torch.arange(self.max_row_nnz, device=self.device)

    @classmethod
    def from_scipy(cls, X, device, densify_on=None) -> SparseRows:
        """Copy the scipy sparse matrix or array ``X`` to ``device`` as CSR."""
        X = sp.csr_matrix(X)
        index_dtype = np.int32 if X.shape[1] <= np.iinfo(np.int32).max else np.int64
        return cls(
            torch.from_numpy(X.indptr.astype(np.int64)).to(device),
            torch.from_numpy(X.indices.astype(index_dtype, copy=False)).to(device),
            torch.from_numpy(X.data.astype(np.float32, copy=False)).to(device),
            X.shape[1],
            densify_on,
        )

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self), self.n_columns)

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def _row_index(self, rows) -> torch.Tensor:
        if isinstance(rows, slice):
            return torch.arange(len(self), device=self.device)[rows]
        return torch.as_tensor(rows, device=self.device)

    def _gather(self, rows: torch.Tensor):
        """Column indices and values of ``rows``, padded to ``max_row_nnz`` slots."""
        starts = self.indptr[rows]  # (b,)
        counts = self.indptr[rows + 1] - starts
        pos = starts[:, None] + self._slots  # (b, max_row_nnz)
        valid = self._slots < counts[:, None]
        # Padding slots read stored entry 0 (any in-range one would do) as zero.
        pos = torch.where(valid, pos, 0)
        values = torch.where(valid, self.data[pos], 0.0)
        return self.indices[pos].long(), values, counts

    def __getitem__(self, rows) -> torch.Tensor:
        columns, values, _ = self._gather(self._row_index(rows))
        columns = columns.to(self.densify_on, non_blocking=True)
        values = values.to(self.densify_on, non_blocking=True)
        dense = torch.zeros(len(columns), self.n_columns, device=self.densify_on)
        # Adding (not writing) sums duplicate entries, as scipy reads them;
        # padding slots add an exact zero.
        return dense.scatter_add_(1, columns, values)

    def take(self, rows) -> SparseRows:
        """The selected ``rows`` as a new ``SparseRows`` (one host sync)."""
        columns, values, counts = self._gather(self._row_index(rows))
        keep = self._slots < counts[:, None]
        indptr = torch.zeros(len(counts) + 1, dtype=torch.int64, device=self.device)
        torch.cumsum(counts, 0, out=indptr[1:])
        return SparseRows(
            indptr,
            columns[keep].to(self.indices.dtype),
            values[keep],
            self.n_columns,
            self.densify_on,
        )


class TensorDataset(Dataset):
    """The aligned rows of one or more tensors; what skorch's split hands around.

    A :class:`skorch.dataset.Dataset` to skorch's callbacks: ``X`` is the data
    as the net batches it (the tensor, or the tuple of aligned tensors) and
    ``y`` the reconstruction target, the samples as flat rows, so that
    ``EpochScoring`` compares them with ``net.predict(X)``.
    """

    def __init__(self, *tensors: torch.Tensor, weights: torch.Tensor | None = None):
        # Not skorch's __init__: the data are tensors already.
        if len({len(t) for t in tensors}) != 1:
            raise ValueError("TensorDataset needs tensors with the same number of rows.")
        self.tensors = tensors
        # Sample weights: shuffled epochs draw rows in proportion to them.
        self.weights = weights

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, i: int):
        x = self.tensors[0][i : i + 1]
        return x[0], x.reshape(-1)

    @property
    def X(self):
        return self.tensors[0] if len(self.tensors) == 1 else self.tensors

    @property
    def y(self) -> torch.Tensor:
        # Sparse rows come dense here: only a scoring callback asks for them.
        dense = self.tensors[0][:] if isinstance(self.tensors[0], SparseRows) else self.tensors[0]
        return dense.reshape(len(dense), -1)


class TensorBatchIterator:
    """Iterate over the aligned rows of ``tensors`` in batches of ``batch_size``.

    A batch is a tensor when there is one tensor, else a tuple of tensors. When
    ``device`` differs from the tensors' device, each batch is moved there.
    With ``shuffle=True`` every pass draws a fresh permutation from torch's
    global generator on the first tensor's device, so a seeded fit is
    reproducible; with ``weights`` (one non-negative float per row) it draws
    as many rows with replacement, each with probability proportional to its
    weight.
    """

    def __init__(
        self,
        tensors: tuple[torch.Tensor, ...],
        batch_size: int,
        shuffle: bool,
        device: torch.device | str | None = None,
        weights: torch.Tensor | None = None,
    ):
        self.tensors = tensors
        # Inverse-CDF sampling (torch.multinomial takes at most 2**24 rows).
        self._cdf = None if weights is None else torch.cumsum(weights.double(), 0)
        self.batch_size = batch_size
        self.shuffle = shuffle
        # Data kept on the host while training runs elsewhere (it did not fit
        # there) is streamed: each batch is gathered on the host and copied.
        source = tensors[0].device
        self.device = source if device is None else torch.device(device)
        # float64 data (a memory-mapped file kept as it is) are cast per batch.
        self._stream = self.device != source or getattr(tensors[0], "dtype", None) == torch.float64

    def __len__(self) -> int:
        return -(-len(self.tensors[0]) // self.batch_size)

    def __iter__(self):
        n = len(self.tensors[0])
        order = None
        if self.shuffle and self._cdf is not None:
            u = torch.rand(n, device=self._cdf.device, dtype=torch.float64) * self._cdf[-1]
            # The first row whose cumulative weight exceeds u: never a zero-weight row.
            order = torch.searchsorted(self._cdf, u, right=True).clamp_(max=n - 1)
        elif self.shuffle:
            order = torch.randperm(n, device=self.tensors[0].device)
        for start in range(0, n, self.batch_size):
            stop = start + self.batch_size
            rows = slice(start, stop) if order is None else order[start:stop]
            batch = tuple(t[rows] for t in self.tensors)
            if self._stream:
                batch = tuple(self._to_device(t) for t in batch)
            yield batch[0] if len(batch) == 1 else batch

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        if t.dtype == torch.float64:
            t = t.float()
        if t.device == self.device:  # SparseRows densify on the training device
            return t
        if self.device.type == "cuda":
            # A pinned copy makes the transfer asynchronous, so the host
            # gathers the next batch while the GPU works on this one; torch's
            # caching host allocator keeps the buffer until the copy is done.
            return t.pin_memory().to(self.device, non_blocking=True)
        return t.to(self.device)


def split_rows(tensors: tuple[torch.Tensor, ...], validation_fraction: float):
    """Split aligned rows at random into a training and a validation tuple."""
    n = len(tensors[0])
    n_valid = max(1, int(round(validation_fraction * n)))
    if n - n_valid < 1:
        raise ValueError(
            f"validation_fraction={validation_fraction} leaves no training sample "
            f"out of {n}; use more samples or early_stopping=False."
        )
    order = torch.randperm(n, device=tensors[0].device)
    train, valid = order[n_valid:], order[:n_valid]
    return tuple(_take(t, train) for t in tensors), tuple(_take(t, valid) for t in tensors)


def _take(t, rows):
    """The selected rows of ``t``, kept sparse when ``t`` is :class:`SparseRows`."""
    return t.take(rows) if isinstance(t, SparseRows) else t[rows]

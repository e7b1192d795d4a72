"""Batches as slices of tensors that already sit on the training device.

skorch's default path wraps data in a ``Dataset`` and a ``DataLoader`` that
index and collate one sample at a time; for a small MLP that costs far more
than the forward and backward passes. Here a batch is one gather from a
device tensor (or, for data made of several aligned tensors, such as padded
sequences and their lengths, one gather from each, returned as a tuple).
"""

from __future__ import annotations

import torch


class TensorDataset:
    """The aligned rows of one or more tensors; what skorch's split hands around."""

    def __init__(self, *tensors: torch.Tensor):
        if len({len(t) for t in tensors}) != 1:
            raise ValueError("TensorDataset needs tensors with the same number of rows.")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])


class TensorBatchIterator:
    """Iterate over the aligned rows of ``tensors`` in batches of ``batch_size``.

    A batch is a tensor when there is one tensor, else a tuple of tensors. When
    ``device`` differs from the tensors' device, each batch is moved there.
    With ``shuffle=True`` every pass draws a fresh permutation from torch's
    global generator on the first tensor's device, so a seeded fit is
    reproducible.
    """

    def __init__(
        self,
        tensors: tuple[torch.Tensor, ...],
        batch_size: int,
        shuffle: bool,
        device: torch.device | str | None = None,
    ):
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        # Data kept on the host while training runs elsewhere (it did not fit
        # there) is streamed: each batch is gathered on the host and copied.
        source = tensors[0].device
        self.device = source if device is None else torch.device(device)
        self._stream = self.device != source

    def __len__(self) -> int:
        return -(-len(self.tensors[0]) // self.batch_size)

    def __iter__(self):
        n = len(self.tensors[0])
        order = torch.randperm(n, device=self.tensors[0].device) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            stop = start + self.batch_size
            rows = slice(start, stop) if order is None else order[start:stop]
            batch = tuple(t[rows] for t in self.tensors)
            if self._stream:
                batch = tuple(self._to_device(t) for t in batch)
            yield batch[0] if len(batch) == 1 else batch

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
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
    return tuple(t[train] for t in tensors), tuple(t[valid] for t in tensors)

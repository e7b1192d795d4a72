"""Batches as slices of tensors that already sit on the training device.

skorch's default path wraps data in a ``Dataset`` and a ``DataLoader`` that
index and collate one sample at a time; for a small MLP that costs far more
than the forward and backward passes. Here a batch is one gather from a
device tensor.
"""

from __future__ import annotations

import torch


class TensorDataset:
    """The rows of one tensor; what skorch's train/valid split hands around."""

    def __init__(self, X: torch.Tensor):
        self.X = X

    def __len__(self) -> int:
        return len(self.X)


class TensorBatchIterator:
    """Iterate over ``X`` in batches of ``batch_size`` rows.

    With ``shuffle=True`` every pass draws a fresh permutation from torch's
    global generator on ``X``'s device, so a seeded fit is reproducible.
    """

    def __init__(self, X: torch.Tensor, batch_size: int, shuffle: bool):
        self.X = X
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self) -> int:
        return -(-len(self.X) // self.batch_size)

    def __iter__(self):
        n = len(self.X)
        if self.shuffle:
            order = torch.randperm(n, device=self.X.device)
            for start in range(0, n, self.batch_size):
                yield self.X[order[start : start + self.batch_size]]
        else:
            for start in range(0, n, self.batch_size):
                yield self.X[start : start + self.batch_size]


def split_rows(X: torch.Tensor, validation_fraction: float):
    """Split the rows of ``X`` at random into a training and a validation part."""
    n = len(X)
    n_valid = max(1, int(round(validation_fraction * n)))
    if n - n_valid < 1:
        raise ValueError(
            f"validation_fraction={validation_fraction} leaves no training sample "
            f"out of {n}; use more samples or early_stopping=False."
        )
    order = torch.randperm(n, device=X.device)
    return X[order[n_valid:]], X[order[:n_valid]]

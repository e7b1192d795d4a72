"""The reconstruction error, written once, and its padding-aware means.

Every consumer of a reconstruction error (the training losses, the scores,
``feature_errors``/``timestep_errors``, the ensemble, the ONNX graphs and
:class:`~skae.AnomalyDetector`) computes it with :func:`squared_errors` and
reduces it with :func:`sample_mean` or :func:`batch_mean`. Variable-length
sequences come zero-padded with their ``lengths``; padded steps never count.
The functions take torch tensors; :func:`squared_errors` and
:func:`sample_mean` take NumPy arrays too.
"""

from __future__ import annotations

import torch


def split_batch(batch):
    """``(X, lengths)`` of a batch; ``lengths=None`` for fixed-size samples."""
    return batch if isinstance(batch, tuple) else (batch, None)


def trim(X: torch.Tensor, lengths) -> torch.Tensor:
    """Cut padded sequences ``X`` to the longest of the batch (one host-device sync)."""
    return X if lengths is None else X[:, : int(lengths.max())]


def valid_steps(err: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mask of the real (unpadded) time steps, broadcastable to ``err`` (batch, time, ...)."""
    valid = torch.arange(err.shape[1], device=err.device) < lengths[:, None]
    return valid.view(*valid.shape, *([1] * (err.ndim - 2)))


def squared_errors(X_hat, X, lengths=None, exact: bool = False):
    """Squared error of each element of the reconstruction ``X_hat`` of ``X``.

    ``X`` and ``X_hat`` have one shape (batch, *sample_shape) (or a leading
    axis more, as the ensemble's members). ``exact=True`` computes in float64,
    where squares of float32 values cannot overflow (scores of inputs far
    outside the training scale). Padded steps of sequences are exactly 0.
    """
    if exact:
        X_hat, X = X_hat.double(), X.double()
    err = (X_hat - X) ** 2
    if lengths is not None:
        err = torch.where(valid_steps(err, lengths), err, 0.0)
    return err


def _n_real(err: torch.Tensor, lengths) -> torch.Tensor:
    """Number of real elements of each sample of ``err``."""
    return lengths * (err[0].numel() // err.shape[1])


def sample_mean(err, lengths=None, start_dim: int = 1):
    """Mean of each sample's real elements: the axes from ``start_dim`` on are reduced."""
    if lengths is None:
        if isinstance(err, torch.Tensor):
            return err.flatten(start_dim).mean(dim=start_dim)
        return err.reshape(*err.shape[:start_dim], -1).mean(axis=start_dim)
    return err.flatten(1).sum(dim=1) / _n_real(err, lengths)


def batch_mean(err: torch.Tensor, lengths=None) -> torch.Tensor:
    """Mean over all real elements of a batch: a scalar."""
    if lengths is None:
        return err.mean()
    return err.sum() / _n_real(err, lengths).sum()


def step_mean(err: torch.Tensor) -> torch.Tensor:
    """Mean over the features of each time step of sequences: (batch, time)."""
    return err.flatten(2).mean(dim=2)

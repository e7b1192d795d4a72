"""Whole images from a model of patches: overlapping patches, averaged.

A model trained on ``h x w`` images (or patches) reconstructs a larger image
patch by patch: every ``h x w`` window on a grid of step ``stride`` (the last
window flush with the image's edge, so every pixel is covered) goes through
the model, and each pixel of the result is the mean of the reconstructions of
the windows that contain it, as scikit-learn's ``extract_patches_2d`` and
``reconstruct_from_patches_2d`` do with every window. Memory stays bounded:
the windows of a band of rows are cut on the device
(:func:`torch.nn.functional.unfold`), reconstructed in batches, and summed
back (:func:`~torch.nn.functional.fold`) into the host's output, so the device
holds one band's windows at a time and the host the input, the output and a
count per pixel.
"""

from __future__ import annotations

import numpy as np
import torch


def window_starts(size: int, window: int, stride: int) -> np.ndarray:
    """Start of each window along one axis: a grid of ``stride``, the last flush at the end."""
    starts = np.arange(0, size - window + 1, stride)
    if starts[-1] != size - window:
        starts = np.append(starts, size - window)
    return starts


def reconstruct_by_patches(
    fn, module, device, images: np.ndarray, window: tuple, stride: int, rows: int, weight=None
) -> np.ndarray:
    """Average of ``fn(module, patches)`` over the overlapping windows of each image.

    ``images`` is (n, c, H, W) with H >= h and W >= w for ``window=(h, w)``;
    ``fn`` maps a batch of patches (batch, c, h, w) to reconstructions of the
    same shape. ``rows`` bounds the patches per model call. Returns an array
    of the images' shape and dtype.
    """
    n, c, H, W = images.shape
    h, w = window
    cols = window_starts(W, w, stride)
    band_windows = max(1, rows // len(cols))  # window rows per band
    out = np.empty(images.shape, dtype=images.dtype)
    row_starts = window_starts(H, h, stride)
    # Windows covering each pixel: separable, rows' count times columns'.
    if weight is None:
        count = np.outer(_coverage(row_starts, h, H), _coverage(cols, w, W))
    else:
        count = _weight_sum(row_starts, cols, weight, H, W)
    module.eval()
    with torch.inference_mode():
        for i in range(n):
            total = np.zeros((c, H, W))
            for b in range(0, len(row_starts), band_windows):
                band = row_starts[b : b + band_windows]
                top, bottom = int(band[0]), int(band[-1]) + h
                x = torch.tensor(
                    np.ascontiguousarray(images[i, :, top:bottom]),
                    dtype=torch.float32,
                    device=device,
                )
                total[:, top:bottom] += _band(fn, module, x, band - top, cols, window, rows, weight)
            out[i] = total / count
    return out


def _coverage(starts: np.ndarray, window: int, size: int) -> np.ndarray:
    """How many windows starting at ``starts`` cover each position of an axis."""
    edges = np.zeros(size + 1)
    np.add.at(edges, starts, 1)
    np.add.at(edges, starts + window, -1)
    return np.cumsum(edges)[:size]


def _weight_sum(row_starts, col_starts, weight, H, W) -> np.ndarray:
    """Sum of the weights that the windows starting at the grid give each pixel."""
    total = np.zeros((H, W))
    for dy in range(weight.shape[0]):
        for dx in range(weight.shape[1]):
            total[np.ix_(row_starts + dy, col_starts + dx)] += weight[dy, dx]
    return total


def _band(fn, module, x, row_starts, col_starts, window, rows, weight=None) -> np.ndarray:
    """Sum of the reconstructed windows of one band ``x`` (c, band_h, W)."""
    c = x.shape[0]
    h, w = window
    dev = x.device
    # Windows at irregular starts (the last one flush): gather them by index.
    ii = torch.as_tensor(row_starts, device=dev)[:, None] + torch.arange(h, device=dev)
    jj = torch.as_tensor(col_starts, device=dev)[:, None] + torch.arange(w, device=dev)
    # (c, n_rows, h, W) -> (c, n_rows, h, n_cols, w) -> (n_rows, n_cols, c, h, w)
    patches = x[:, ii][:, :, :, jj].permute(1, 3, 0, 2, 4).reshape(-1, c, h, w)
    rec = torch.cat([fn(module, patches[s : s + rows]) for s in range(0, len(patches), rows)])
    rec = rec.reshape(len(row_starts), len(col_starts), c, h, w).double()
    if weight is not None:
        rec = rec * torch.as_tensor(weight, dtype=torch.float64, device=dev)
    total = torch.zeros(x.shape, dtype=torch.float64, device=dev)
    # One window offset at a time: its pixels are distinct across windows.
    for dy in range(h):
        for dx in range(w):
            total[:, ii[:, dy, None], jj[None, :, dx]] += rec[:, :, :, dy, dx].permute(2, 0, 1)
    return total.cpu().numpy()

"""A fitted estimator's state as plain data, and the net rebuilt from it.

``__getstate__`` replaces the fitted skorch net by its plain state (weights
as NumPy arrays, the history as dicts, the device's name), so that pickle,
joblib and ``skops.io`` save no torch or skorch object; ``__setstate__``
rebuilds the module and the net from it, as ``fit`` builds them.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from skorch.history import History

from ._training import make_net


def net_state(net) -> dict:
    """The plain state of a fitted net: weights (from the CPU), history, device."""
    return {
        "weights": {
            name: tensor.detach().cpu().numpy().copy()
            for name, tensor in net.module_.state_dict().items()
        },
        "history": [_plain_row(row) for row in net.history],
        "device": str(net.device),
    }


def _plain_row(row: dict) -> dict:
    """A history row with NumPy scalars turned into Python numbers."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in row.items()}


def rebuild_net(est, state: dict):
    """The fitted net of ``est`` from :func:`net_state`'s plain ``state``.

    A model fitted on CUDA comes back on the CPU where CUDA is not available
    (with a warning).
    """
    device = torch.device(state["device"])
    if device.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(
            f"This {type(est).__name__} was fitted on {device}, but no CUDA devices "
            "are available; it is loaded on the CPU.",
            UserWarning,
            stacklevel=4,
        )
        device = torch.device("cpu")
    module = est._build_module(est.input_shape_)
    weights = {}
    for name, array in state["weights"].items():
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiub":
            raise TypeError(
                f"The saved weight {name!r} is not a numeric array, but "
                f"{type(array).__name__}; the file is damaged or was not written by skae."
            )
        weights[name] = torch.from_numpy(np.array(array))
    module.load_state_dict(weights)
    net = make_net(est, module, device, loss_fn=est._loss)
    net.initialize()
    net.history = History(state["history"])
    return net

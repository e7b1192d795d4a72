"""Export of a fitted estimator's deterministic methods to ONNX."""

from __future__ import annotations

import copy
import io
import warnings

import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._errors import sample_mean, squared_errors

METHODS = ("transform", "inverse_transform", "score_samples")


class _Method(nn.Module):
    """One method of a fitted module, as a module whose ``forward`` ONNX traces.

    The graph takes and gives arrays in the form of the training input:
    ``form`` says how to get from it to the network's own shape
    ``(batch, *input_shape)`` and back (flat rows of images, images without
    a channel axis, univariate sequences given as 2-D).
    """

    def __init__(self, module, method, input_shape, form, sequential, n_timesteps=None):
        super().__init__()
        self.module = module
        self.method = method
        self.input_shape = tuple(input_shape)
        self.form = form
        self.sequential = sequential
        self.n_timesteps = n_timesteps

    def to_network(self, x):
        if self.form == "flat":
            return x.reshape(-1, *self.input_shape)  # (batch, c, *spatial)
        if self.form == "nochannel":
            return x.unsqueeze(1)
        if self.form == "sequence_table":
            return x.unsqueeze(-1)  # (batch, time) -> (batch, time, 1)
        return x

    def from_network(self, out):
        if self.form == "flat":
            return out.flatten(1)
        if self.form == "nochannel":
            return out[:, 0]
        if self.form == "sequence_table":
            return out[:, :, 0]
        return out

    def forward(self, x):
        m = self.module
        if self.method == "inverse_transform":
            return self.from_network(m.decode(x, self.n_timesteps))
        x = self.to_network(x)
        z = m.encode(x)
        if self.method == "transform":
            return z  # (batch, n_components)
        x_hat = m.decode(z, x.shape[1] if self.sequential else None)
        return -sample_mean(squared_errors(x_hat, x))  # (batch,)


def to_onnx(estimator, method: str = "transform", path=None, *, opset: int | None = None):
    """Export a method of a fitted skae estimator to an ONNX model.

    The graph takes a float32 array named ``"X"`` and returns a float32 array
    named ``"Y"``; the batch dimension (and, for sequences, the time
    dimension) is dynamic. Run it with ONNX Runtime, from any language, with
    neither Python nor torch. Needs the ``onnx`` extra
    (``pip install skae[onnx]``).

    Parameters
    ----------
    estimator : fitted skae estimator
        An :class:`~skae.AutoEncoder`, :class:`~skae.DenoisingAutoEncoder`,
        :class:`~skae.SparseAutoEncoder`, :class:`~skae.VariationalAutoEncoder`
        or :class:`~skae.RecurrentAutoEncoder` (for an
        :class:`~skae.AnomalyDetector`, export its ``estimator_``).
    method : {"transform", "inverse_transform", "score_samples"}, default="transform"
        The method to export. ``"score_samples"`` is the negative mean squared
        reconstruction error, computed in float32 (skae computes it in
        float64, so the two agree to float32 precision). The variational
        family's ``score_samples`` draws random latent samples and is not
        exported; its ``transform`` (the posterior mean) and
        ``inverse_transform`` (the decoder mean) are deterministic and are.
        A recurrent model exports for sequences of one length at a time
        (3-D, or 2-D if it was fitted on 2-D input); its
        ``inverse_transform`` decodes ``n_timesteps_in_`` steps.
    path : str or path-like, default=None
        If given, the model is also written there (conventionally ``.onnx``).
    opset : int, default=None
        ONNX opset version; None lets torch choose.

    Returns
    -------
    model : onnx.ModelProto
        The exported model.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime as ort
    >>> from skae import AutoEncoder, to_onnx
    >>> X = np.random.RandomState(0).normal(size=(100, 6)).astype(np.float32)
    >>> ae = AutoEncoder(n_components=2, max_iter=5, random_state=0).fit(X)
    >>> model = to_onnx(ae, "transform")
    >>> session = ort.InferenceSession(model.SerializeToString())
    >>> codes = session.run(None, {"X": X})[0]
    >>> codes.shape
    (100, 2)
    >>> bool(np.allclose(codes, ae.transform(X), atol=1e-5))
    True
    """
    try:
        import onnx
    except ImportError as exc:
        raise ImportError("to_onnx needs the onnx package: pip install skae[onnx]") from exc
    from ._base import BaseAutoEncoder

    if not isinstance(estimator, BaseAutoEncoder):
        raise TypeError(
            "to_onnx exports a skae autoencoder (AutoEncoder, DenoisingAutoEncoder, "
            "SparseAutoEncoder, VariationalAutoEncoder or RecurrentAutoEncoder); got "
            f"{type(estimator).__name__}. For an AnomalyDetector, export its estimator_."
        )
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    check_is_fitted(estimator)
    if method == "score_samples" and hasattr(estimator, "n_importance_samples"):
        raise ValueError(
            f"{type(estimator).__name__}.score_samples draws random latent samples, so "
            "it has no deterministic graph to export; export 'transform' (the "
            "posterior mean) or 'inverse_transform' (the decoder mean)."
        )

    sequences = estimator._sequential
    form = estimator._fit_form
    n_timesteps = None
    if sequences and method == "inverse_transform":
        n_timesteps = estimator.input_shape_[0]
        if n_timesteps is None:
            raise ValueError(
                f"{type(estimator).__name__} was fitted on sequences of different "
                "lengths, so its inverse_transform has no fixed output length to export."
            )

    # Export a CPU copy, so the estimator's own module stays where it is.
    module = _copy_to_cpu(estimator.module_).eval()
    wrapper = _Method(module, method, estimator.input_shape_, form, sequences, n_timesteps)
    if method == "inverse_transform":
        example = torch.zeros(2, estimator.n_components)
        axes = {"X": {0: "n_samples"}}
    elif sequences:
        n_steps = estimator.input_shape_[0] or 3
        example = torch.zeros(2, n_steps, estimator.input_shape_[-1])
        example = example[:, :, 0] if form == "sequence_table" else example
        axes = {"X": {0: "n_samples", 1: "n_timesteps"}}
    else:
        example = wrapper.from_network(torch.zeros(2, *estimator.input_shape_))
        axes = {"X": {0: "n_samples"}}
    axes["Y"] = {0: "n_samples"}

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter (dynamo=False) needs nothing beyond torch
        # and handles recurrent layers; torch marks it deprecated.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="torch")
        # Tracing the recurrent layers' shape checks; the checks hold for any batch.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            wrapper,
            (example,),
            buffer,
            input_names=["X"],
            output_names=["Y"],
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
    model = onnx.load_from_string(buffer.getvalue())
    if path is not None:
        onnx.save(model, path)
    return model


def _copy_to_cpu(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` on the CPU."""
    return copy.deepcopy(module).to("cpu")

"""Export of a fitted estimator's deterministic methods to ONNX.

Three kinds of estimator export: a skae autoencoder (its codes,
reconstructions, scores and errors), the :class:`~skae.AutoEncoderEnsemble`
(its score) and an :class:`~skae.AnomalyDetector` around either (its score,
decision function and labels). Every graph computes its errors with
:mod:`skae._errors`.
"""

from __future__ import annotations

import copy
import io
import warnings

import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._errors import sample_mean, squared_errors, step_mean

# What each kind of estimator exports.
AUTOENCODER_METHODS = (
    "transform",
    "inverse_transform",
    "score_samples",
    "feature_errors",
    "timestep_errors",
)
ENSEMBLE_METHODS = ("score_samples",)
DETECTOR_METHODS = ("score_samples", "decision_function", "predict")


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
        err = squared_errors(x_hat, x)
        if self.method == "feature_errors":
            return self.from_network(err)  # in the input's form
        if self.method == "timestep_errors":
            return step_mean(err)  # (batch, time)
        return -sample_mean(err)  # (batch,)


class _EnsembleScore(nn.Module):
    """:meth:`AutoEncoderEnsemble.score_samples` as one graph, in float32."""

    def __init__(self, ensemble):
        super().__init__()
        from .ensemble import CLIP, NORMALISATION

        self.clip = CLIP
        self.code_density = bool(ensemble.code_density)
        self.groups, self.error_weight = ensemble._score_settings()
        self.members = _copy_to_cpu(ensemble._members()[0])
        self.names = NORMALISATION
        for name in ("center", "scale", *NORMALISATION):
            self._add(name, getattr(ensemble, name + "_"))

    def _add(self, name, values):
        self.register_buffer(name, torch.as_tensor(values, dtype=torch.float32))

    def forward(self, x):
        x = torch.clamp((x - self.center) / self.scale, -self.clip, self.clip)
        stats = {name: getattr(self, name) for name in self.names}
        # The very computation of score_samples, on the same module.
        return self.members.score(
            x, stats, self.groups, self.error_weight, code_density=self.code_density
        )  # (batch,)


class _Detector(nn.Module):
    """An :class:`AnomalyDetector`'s method on top of its estimator's score graph."""

    def __init__(self, scorer: nn.Module, offset: float, method: str):
        super().__init__()
        self.scorer = scorer
        self.method = method
        self.register_buffer("offset", torch.tensor(offset, dtype=torch.float32))

    def forward(self, x):
        scores = self.scorer(x)
        if self.method == "score_samples":
            return scores
        decision = scores - self.offset
        if self.method == "decision_function":
            return decision
        return 1 - 2 * (decision < 0).to(torch.int64)  # +1 inlier, -1 outlier


def to_onnx(estimator, method: str = "transform", path=None, *, opset: int | None = None):
    """Export a method of a fitted skae estimator to an ONNX model.

    The graph takes a float32 array named ``"X"`` and returns an array
    named ``"Y"`` (float32; int64 labels for ``"predict"``); the batch
    dimension (and, for sequences, the time dimension) is dynamic. Run it
    with ONNX Runtime, from any language, with neither Python nor torch.
    Needs the ``onnx`` extra (``pip install skae[onnx]``).

    Parameters
    ----------
    estimator : fitted skae estimator
        One of:

        - a skae autoencoder (:class:`~skae.AutoEncoder`,
          :class:`~skae.DenoisingAutoEncoder`, :class:`~skae.SparseAutoEncoder`,
          :class:`~skae.VariationalAutoEncoder`, :class:`~skae.RecurrentAutoEncoder`,
          on any architecture): ``"transform"``, ``"inverse_transform"``,
          ``"score_samples"``, ``"feature_errors"``, and for sequence
          architectures ``"timestep_errors"``;
        - an :class:`~skae.AutoEncoderEnsemble`: ``"score_samples"``;
        - an :class:`~skae.AnomalyDetector` around either (the default
          detector included): ``"score_samples"``, ``"decision_function"``
          and ``"predict"``.
    method : str, default="transform"
        The method to export, one of those listed for the estimator.
        Scores and errors are computed in float32 (skae computes them in
        float64, so the two agree to float32 precision; a sample within
        that precision of ``offset_`` may get the other label). The
        variational family's ``score_samples`` draws random latent samples
        and is not exported (nor, so, a detector around it); its
        ``transform`` (the posterior mean), ``inverse_transform`` and
        ``feature_errors`` (the decoder mean) are deterministic and are. A
        sequence model exports for sequences of one length at a time (3-D,
        or 2-D if it was fitted on 2-D input); its ``inverse_transform``
        decodes ``n_timesteps_in_`` steps.
    path : str or path-like, default=None
        If given, the model is also written there (conventionally ``.onnx``).
    opset : int, default=None
        ONNX opset version; None lets torch choose.

    Returns
    -------
    model : onnx.ModelProto
        The exported model.

    See Also
    --------
    skae.register_skl2onnx_converters : Convert whole pipelines holding skae estimators.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime as ort
    >>> from skae import AnomalyDetector, AutoEncoder, to_onnx
    >>> X = np.random.RandomState(0).normal(size=(100, 6)).astype(np.float32)
    >>> ae = AutoEncoder(n_components=2, max_iter=5, random_state=0).fit(X)
    >>> model = to_onnx(ae, "transform")
    >>> session = ort.InferenceSession(model.SerializeToString())
    >>> codes = session.run(None, {"X": X})[0]
    >>> codes.shape
    (100, 2)
    >>> bool(np.allclose(codes, ae.transform(X), atol=1e-5))
    True

    The default anomaly detector (an ensemble of autoencoders) exports its
    labels too:

    >>> detector = AnomalyDetector(random_state=0).fit(X)
    >>> session = ort.InferenceSession(to_onnx(detector, "predict").SerializeToString())
    >>> X_new = np.vstack([X[:3], np.full((1, 6), 50, dtype=np.float32)])
    >>> labels = session.run(None, {"X": X_new})[0]  # int64, +1 inlier, -1 outlier
    >>> bool((labels == detector.predict(X_new)).all()), int(labels[-1])
    (True, -1)
    """
    try:
        import onnx
    except ImportError as exc:
        raise ImportError("to_onnx needs the onnx package: pip install skae[onnx]") from exc

    wrapper, example, axes = _graph(estimator, method)
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


def _check_method(estimator, method: str, allowed: tuple) -> None:
    if method not in allowed:
        raise ValueError(
            f"method must be one of {allowed} for {type(estimator).__name__}, got {method!r}."
        )


def _graph(estimator, method: str):
    """``(module, example input, dynamic axes)`` of ``estimator``'s ``method``."""
    from ._base import BaseAutoEncoder
    from .anomaly import AnomalyDetector
    from .ensemble import AutoEncoderEnsemble

    if isinstance(estimator, AnomalyDetector):
        _check_method(estimator, method, DETECTOR_METHODS)
        check_is_fitted(estimator)
        inner = estimator.estimator_
        if not isinstance(inner, BaseAutoEncoder | AutoEncoderEnsemble):
            raise TypeError(
                "to_onnx exports an AnomalyDetector whose estimator is skae's (the default "
                f"AutoEncoderEnsemble, or a skae autoencoder); this one wraps "
                f"{type(inner).__name__}."
            )
        scorer, example, axes = _graph(inner, "score_samples")
        return _Detector(scorer, estimator.offset_, method), example, axes
    if isinstance(estimator, AutoEncoderEnsemble):
        _check_method(estimator, method, ENSEMBLE_METHODS)
        check_is_fitted(estimator)
        example = torch.zeros(2, estimator.n_features_in_)
        return (
            _EnsembleScore(estimator).eval(),
            example,
            {"X": {0: "n_samples"}, "Y": {0: "n_samples"}},
        )
    if not isinstance(estimator, BaseAutoEncoder):
        raise TypeError(
            "to_onnx exports a fitted skae autoencoder (AutoEncoder, DenoisingAutoEncoder, "
            "SparseAutoEncoder, VariationalAutoEncoder, RecurrentAutoEncoder), an "
            f"AutoEncoderEnsemble or an AnomalyDetector around one; got {type(estimator).__name__}."
        )
    return _autoencoder_graph(estimator, method)


def _autoencoder_graph(estimator, method: str):
    _check_method(estimator, method, AUTOENCODER_METHODS)
    check_is_fitted(estimator)
    sequences = estimator._sequential
    if method == "timestep_errors" and not sequences:
        raise ValueError(
            f"timestep_errors exists for sequence architectures only; {type(estimator).__name__} "
            f"was fitted with {type(estimator.architecture_).__name__}."
        )
    if method == "score_samples" and hasattr(estimator, "n_importance_samples"):
        raise ValueError(
            f"{type(estimator).__name__}.score_samples draws random latent samples, so "
            "it has no deterministic graph to export; export 'transform' (the "
            "posterior mean), 'inverse_transform' or 'feature_errors' (the decoder mean)."
        )

    if method in ("score_samples", "feature_errors") and getattr(estimator, "loss", None) == (
        "multinomial"
    ):
        raise ValueError(
            f"{type(estimator).__name__}(loss='multinomial') scores rows by the "
            f"multinomial log-loss, which to_onnx does not export as {method!r}; "
            "export 'transform' or 'inverse_transform' (the decoded distributions)."
        )

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
    if sequences and method in ("feature_errors", "timestep_errors"):
        axes["Y"] = {0: "n_samples", 1: "n_timesteps"}
    return wrapper, example, axes


def _copy_to_cpu(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` on the CPU."""
    return copy.deepcopy(module).to("cpu")

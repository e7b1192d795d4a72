"""skl2onnx converters for skae's estimators, so whole pipelines export to one ONNX graph.

Each converter exports the estimator with :func:`skae.to_onnx` (at the opset
skl2onnx targets) and copies that graph's nodes and initializers into
skl2onnx's container under fresh names, wired to the operator's input and
outputs.
"""

from __future__ import annotations

import numpy as np

from ._onnx import to_onnx

# skl2onnx's outlier detectors (IsolationForest, LocalOutlierFactor) give an int64
# label and the decision function, both of shape (n_samples, 1), and on request
# the score_samples; AnomalyDetector follows them.
DETECTOR_OPTIONS = {"score_samples": [False, True]}
# Recurrent nodes, whose sequence_lens input torch leaves out.
RECURRENT_OPS = ("RNN", "GRU", "LSTM")


def register_skl2onnx_converters() -> None:
    """Register skae's estimators with skl2onnx, so pipelines holding them convert to ONNX.

    After this call, :func:`skl2onnx.to_onnx` (or ``convert_sklearn``)
    converts a scikit-learn pipeline (or any skl2onnx-supported composite)
    whose steps include skae estimators into one ONNX graph, for ONNX
    Runtime: a scaler, a skae autoencoder and a classifier, say, or a scaler
    and an :class:`~skae.AnomalyDetector`. Registration lasts for the Python
    process; calling it again is harmless. Importing skae registers nothing,
    so it never imports skl2onnx by itself. Needs the ``onnx`` extra
    (``pip install skae[onnx]``).

    Each estimator converts to the graph :func:`skae.to_onnx` exports, so
    the same estimators and methods convert (computed in float32; a float64
    input is cast to float32 and the outputs back to float64):

    - the autoencoders (:class:`~skae.AutoEncoder`,
      :class:`~skae.DenoisingAutoEncoder`, :class:`~skae.SparseAutoEncoder`,
      :class:`~skae.VariationalAutoEncoder`, whose code is its posterior mean,
      and :class:`~skae.RecurrentAutoEncoder` on sequences of one length): the
      output of ``transform``, of shape ``(n_samples, n_components)``;
    - :class:`~skae.AutoEncoderEnsemble`: ``score_samples``, of shape
      ``(n_samples, 1)``;
    - :class:`~skae.AnomalyDetector`, as skl2onnx converts scikit-learn's
      outlier detectors: outputs ``label`` (int64 ``predict``, +1 inlier, -1
      outlier) and ``scores`` (``decision_function``), both of shape
      ``(n_samples, 1)``; with the option ``{"score_samples": True}`` (by
      ``options={AnomalyDetector: {"score_samples": True}}`` or by ``id``), a
      third output ``score_samples``.

    Converting an unfitted estimator raises
    :class:`~sklearn.exceptions.NotFittedError`; one :func:`skae.to_onnx`
    refuses (a detector around a variational autoencoder or around a
    non-skae estimator) raises the same error as :func:`skae.to_onnx`.

    Raises
    ------
    ImportError
        If skl2onnx is not installed.

    See Also
    --------
    skae.to_onnx : Export one skae estimator's method on its own.

    Examples
    --------
    >>> skl2onnx = __import__("pytest").importorskip("skl2onnx")
    >>> import numpy as np
    >>> import onnxruntime as ort
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skae import AutoEncoder, register_skl2onnx_converters
    >>> register_skl2onnx_converters()
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 6)).astype(np.float32)
    >>> y = (X[:, 0] + X[:, 1] > 0).astype(int)
    >>> pipe = make_pipeline(
    ...     StandardScaler(), AutoEncoder(n_components=3, max_iter=20, random_state=0),
    ...     LogisticRegression(),
    ... ).fit(X, y)
    >>> model = skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False})
    >>> session = ort.InferenceSession(model.SerializeToString())
    >>> labels, probabilities = session.run(None, {"X": X})
    >>> bool((labels == pipe.predict(X)).mean() > 0.99)
    True
    >>> bool(np.allclose(probabilities, pipe.predict_proba(X), atol=1e-4))
    True
    """
    try:
        from skl2onnx import update_registered_converter
    except ImportError as exc:
        raise ImportError(
            "register_skl2onnx_converters needs skl2onnx: pip install skae[onnx]"
        ) from exc

    from .anomaly import AnomalyDetector
    from .autoencoder import AutoEncoder
    from .denoising import DenoisingAutoEncoder
    from .ensemble import AutoEncoderEnsemble
    from .recurrent import RecurrentAutoEncoder
    from .sparse import SparseAutoEncoder
    from .variational import VariationalAutoEncoder

    for cls in (
        AutoEncoder,
        DenoisingAutoEncoder,
        SparseAutoEncoder,
        VariationalAutoEncoder,
        RecurrentAutoEncoder,
    ):
        update_registered_converter(
            cls, f"Skae{cls.__name__}", _transform_shapes, _convert_transform
        )
    update_registered_converter(
        AutoEncoderEnsemble, "SkaeAutoEncoderEnsemble", _score_shapes, _convert_ensemble
    )
    update_registered_converter(
        AnomalyDetector,
        "SkaeAnomalyDetector",
        _detector_shapes,
        _convert_detector,
        parser=_parse_detector,
        options=DETECTOR_OPTIONS,
    )


# ------------------------------------------------------------------- parsing and shapes


def _parse_detector(scope, model, inputs, custom_parsers=None):
    """Declare the detector's outputs: label, scores and, on request, score_samples."""
    from skl2onnx.common.data_types import Int64TensorType, guess_tensor_type

    operator = scope.declare_local_operator("SkaeAnomalyDetector", model)
    operator.inputs = inputs
    operator.outputs.append(scope.declare_local_variable("label", Int64TensorType()))
    names = ["scores"]
    if scope.get_options(model, {"score_samples": False})["score_samples"]:
        names.append("score_samples")
    for name in names:
        variable = scope.declare_local_variable(name, guess_tensor_type(inputs[0].type))
        operator.outputs.append(variable)
    return operator.outputs


def _float_input(operator):
    """The operator's single input type, checked to be float32 or float64."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    if len(operator.inputs) != 1:
        raise ValueError(
            f"{type(operator.raw_operator).__name__} takes one input in an ONNX graph, "
            f"got {len(operator.inputs)}."
        )
    kind = operator.inputs[0].type
    if not isinstance(kind, FloatTensorType | DoubleTensorType):
        raise TypeError(
            f"{type(operator.raw_operator).__name__} converts float32 or float64 input "
            f"to ONNX, got {type(kind).__name__}; cast the data (or the initial type) "
            "to float."
        )
    return kind


def _transform_shapes(operator):
    kind = _float_input(operator)
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = type(kind)([n, operator.raw_operator.n_components])


def _score_shapes(operator):
    kind = _float_input(operator)
    n = operator.inputs[0].get_first_dimension()
    for output in operator.outputs:
        output.type = type(kind)([n, 1])


def _detector_shapes(operator):
    from skl2onnx.common.data_types import Int64TensorType

    _score_shapes(operator)
    operator.outputs[0].type = Int64TensorType([operator.inputs[0].get_first_dimension(), 1])


# ------------------------------------------------------------------------ converters


def _convert_transform(scope, operator, container):
    est = operator.raw_operator
    _check_width(operator)
    x, cast_back = _as_float32(scope, operator, container)
    codes = _add_graph(scope, container, _export(est, "transform", container), x)
    cast_back(codes, operator.outputs[0].full_name)


def _convert_ensemble(scope, operator, container):
    _check_width(operator)
    x, cast_back = _as_float32(scope, operator, container)
    scores = _add_graph(
        scope, container, _export(operator.raw_operator, "score_samples", container), x
    )
    cast_back(_column(scope, container, scores), operator.outputs[0].full_name)


def _convert_detector(scope, operator, container):
    from onnx import TensorProto

    est = operator.raw_operator
    _check_width(operator)
    x, cast_back = _as_float32(scope, operator, container)
    # The detector's score_samples graph (which refuses what to_onnx refuses),
    # then decision = score - offset_ and label = 1 - 2 * (decision < 0), as
    # AnomalyDetector computes them.
    scores = _column(
        scope, container, _add_graph(scope, container, _export(est, "score_samples", container), x)
    )
    offset = _constant(scope, container, "offset", np.float32(est.offset_))
    decision = _node(scope, container, "Sub", [scores, offset])
    outlier = _node(
        scope, container, "Less", [decision, _constant(scope, container, "zero", np.float32(0))]
    )
    outlier = _node(scope, container, "Cast", [outlier], to=TensorProto.INT64)
    twice = _node(
        scope, container, "Mul", [outlier, _constant(scope, container, "minus_two", np.int64(-2))]
    )
    container.add_node(
        "Add",
        [twice, _constant(scope, container, "one", np.int64(1))],
        [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("SkaeLabel"),
    )
    cast_back(decision, operator.outputs[1].full_name)
    if len(operator.outputs) > 2:
        cast_back(scores, operator.outputs[2].full_name)


# ------------------------------------------------------------------------- helpers


def _export(est, method, container):
    """``to_onnx(est, method)`` at the opset of the graph skl2onnx builds.

    Torch's TorchScript exporter stops at opset 20; above, the graph is
    lifted with ONNX's version converter, so that every node means what the
    final model's opset says.
    """
    import onnx
    import torch
    from onnx import version_converter

    target = container.target_opset_any_domain("")
    highest = getattr(torch.onnx._constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", 17)
    lowest = getattr(torch.onnx._constants, "ONNX_MIN_OPSET", 7)
    if target < lowest:
        raise ValueError(
            f"skae's ONNX graphs need target_opset >= {lowest} (torch's exporter); got {target}."
        )
    model = to_onnx(est, method, opset=min(target, highest))
    if target > highest:
        try:
            model = version_converter.convert_version(model, target)
        except Exception as exc:  # the converter lacks an adapter for some node
            raise RuntimeError(
                f"Could not lift {type(est).__name__}'s ONNX graph from opset {highest} to "
                f"target_opset={target}; convert with target_opset={highest}."
            ) from exc
    for node in model.graph.node:
        if any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
            for a in node.attribute
        ):
            raise RuntimeError(
                f"{type(est).__name__}'s ONNX graph holds a subgraph ({node.op_type}), "
                "which the skl2onnx converter does not copy; export it with skae.to_onnx."
            )
    return model


def _add_graph(scope, container, model, x: str) -> str:
    """Copy ``model``'s graph into ``container`` reading ``x``; return its output's name."""
    graph = model.graph
    opset = {o.domain or "": o.version for o in model.opset_import}
    names = {graph.input[0].name: x}

    def rename(name: str) -> str:
        if name not in names:
            names[name] = scope.get_unique_variable_name(f"skae_{name}")
        return names[name]

    for tensor in graph.initializer:
        copy = type(tensor)()
        copy.CopyFrom(tensor)
        copy.name = rename(tensor.name)
        container.initializers.append(copy)
    for node in graph.node:
        domain = "" if node.domain in ("", "ai.onnx") else node.domain
        inputs = [rename(n) if n else n for n in node.input]
        if node.op_type in RECURRENT_OPS and len(inputs) > 4 and not inputs[4]:
            inputs[4] = _full_lengths(scope, container, inputs[0], node)
        while inputs and not inputs[-1]:
            inputs.pop()  # omitted trailing optional inputs
        if "" in inputs:
            raise RuntimeError(
                f"skae's ONNX graph has a {node.op_type} node with an omitted optional input "
                "before a given one, which skl2onnx cannot order; export it with skae.to_onnx."
            )
        container.add_node(
            node.op_type,
            inputs,
            # An omitted optional output gets a name of its own, read by nothing.
            [
                rename(n) if n else scope.get_unique_variable_name("skae_unused")
                for n in node.output
            ],
            op_domain=domain,
            op_version=opset[domain],
            name=scope.get_unique_operator_name(f"skae_{node.op_type}"),
        )
        container.nodes[-1].attribute.extend(node.attribute)
    return rename(graph.output[0].name)


def _full_lengths(scope, container, x: str, node) -> str:
    """The int32 ``sequence_lens`` of a recurrent node: every sequence at full length.

    Torch leaves the input out (all sequences are whole); skl2onnx cannot
    order a node with an omitted input before a given one (the initial
    state), so the graph computes the lengths from the node's input.
    """
    from onnx import TensorProto

    batch_first = any(a.name == "layout" and a.i == 1 for a in node.attribute)
    shape = _node(scope, container, "Shape", [x])
    steps = _node(scope, container, "Gather", [shape, _index(scope, container, int(batch_first))])
    batch = _node(
        scope, container, "Gather", [shape, _index(scope, container, int(not batch_first))]
    )
    steps = _node(scope, container, "Cast", [steps], to=TensorProto.INT32)
    return _node(scope, container, "Expand", [steps, batch])  # (batch,)


def _index(scope, container, i: int) -> str:
    """A 1-D int64 initializer ``[i]``; return its name."""
    from onnx import TensorProto

    name = scope.get_unique_variable_name("skae_index")
    container.add_initializer(name, TensorProto.INT64, [1], [i])
    return name


def _as_float32(scope, operator, container):
    """The float32 name of the operator's input, and a function writing an output back.

    The graphs skae exports compute in float32; for float64 input the input is
    cast to float32 and each output back to float64.
    """
    from onnx import TensorProto
    from skl2onnx.common.data_types import DoubleTensorType

    x = operator.inputs[0].full_name
    double = isinstance(operator.inputs[0].type, DoubleTensorType)
    if double:
        x = _node(scope, container, "Cast", [x], to=TensorProto.FLOAT)

    def cast_back(name: str, output: str) -> None:
        if double:
            container.add_node(
                "Cast",
                [name],
                [output],
                name=scope.get_unique_operator_name("SkaeCast"),
                to=TensorProto.DOUBLE,
            )
        else:
            container.add_node(
                "Identity", [name], [output], name=scope.get_unique_operator_name("SkaeOut")
            )

    return x, cast_back


def _column(scope, container, name: str) -> str:
    """``name`` of shape (n,) reshaped to (n, 1), skl2onnx's shape for per-sample values."""
    from onnx import TensorProto

    shape = scope.get_unique_variable_name("skae_column_shape")
    container.add_initializer(shape, TensorProto.INT64, [2], [-1, 1])
    return _node(scope, container, "Reshape", [name, shape])


def _constant(scope, container, name: str, value) -> str:
    """A scalar initializer holding ``value`` (a NumPy scalar); return its name."""
    from onnx.helper import np_dtype_to_tensor_dtype

    unique = scope.get_unique_variable_name(f"skae_{name}")
    container.add_initializer(unique, np_dtype_to_tensor_dtype(value.dtype), [], [value.item()])
    return unique


def _node(scope, container, op_type: str, inputs: list, **attrs) -> str:
    """Add one node; return the name of its output."""
    output = scope.get_unique_variable_name(f"skae_{op_type.lower()}")
    container.add_node(
        op_type, inputs, [output], name=scope.get_unique_operator_name(f"Skae{op_type}"), **attrs
    )
    return output


def _check_width(operator) -> None:
    """A clear error when the graph's input has a known width the estimator was not fitted on."""
    est = operator.raw_operator
    shape = operator.inputs[0].type.shape
    expected = getattr(est, "n_features_in_", None)
    if expected is None or shape is None or len(shape) != 2:
        return  # unfitted (to_onnx says so), or sequences (to_onnx checks their shape)
    width = shape[1]
    if isinstance(width, int | np.integer) and width != expected:
        raise ValueError(
            f"The input of {type(est).__name__} in the ONNX graph has {width} features, "
            f"but it was fitted on {expected}."
        )

"""A skops model card for a fitted skae estimator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.utils.validation import _num_samples, check_is_fitted

# The card's figure and the names its "get started" code uses.
CURVE_FILE = "training_curve.png"
README = "README.md"
# Longest list of feature names written in full.
MAX_NAMES = 20

GET_STARTED = """\
Load the model with skops, which runs no code from the file; trust only the types it lists
after reading them (for a model saved by skae: skae's classes):

```python
import skops.io as sio

unknown = sio.get_untrusted_types(file="{model_file}")
print(unknown)
model = sio.load("{model_file}", trusted=unknown)
```

Needs `pip install skae[skops]` and the versions of skae, torch, skorch and scikit-learn
listed under "Environment"."""


def model_card(estimator, X_valid=None, *, folder, model_file="model.skops", description=None):
    """Write a model card (a :class:`skops.card.Card`) for a fitted skae estimator.

    The card, saved as ``README.md`` in ``folder`` next to a figure of the
    training curve, holds skops's default sections (hyperparameters, the
    model's diagram) and the estimator's own: what it is and the input it
    takes (shape, feature names), its architecture (layers, number of
    weights), the training curve, the versions it was fitted with, code to
    load it safely with :mod:`skops.io`, and, if ``X_valid`` is given, its
    results on that data. With :func:`skops.io.dump` of the model into the
    same folder, the folder is ready to share (for example as a Hugging Face
    Hub repository): two calls. Needs the ``skops`` and ``plot`` extras
    (``pip install skae[skops,plot]``).

    Parameters
    ----------
    estimator : fitted skae estimator
        A skae autoencoder, an :class:`~skae.AutoEncoderEnsemble` or an
        :class:`~skae.AnomalyDetector`.
    X_valid : array-like, default=None
        Held-out data the model was validated on, in the form ``fit`` took.
        If given, the card reports the number of samples and the mean
        ``score`` on it; for an autoencoder the mean squared reconstruction
        error as well, for a detector the share of samples it labels outliers.
    folder : str or path-like
        Folder (created if missing) where ``README.md`` and
        ``training_curve.png`` are written; the card links the figure by its
        file name, so keep the files together.
    model_file : str, default="model.skops"
        File name of the saved model that the card's loading code names.
    description : str, default=None
        Text opening the card's "Model description" (what the model is for,
        what data it was fitted on). If None, the section only says what
        the estimator is.

    Returns
    -------
    card : skops.card.Card
        The card. After editing it (``card.add(...)``), write it again with
        ``card.save(Path(folder) / "README.md")``.

    Raises
    ------
    ImportError
        If skops or matplotlib is not installed.
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.

    See Also
    --------
    skops.card.Card : The card, to edit further.
    skops.io.dump : Save the model, to load without trusting code.

    Examples
    --------
    >>> sio = __import__("pytest").importorskip("skops.io")
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from skae import AutoEncoder, model_card
    >>> rng = np.random.RandomState(0)
    >>> X, X_valid = rng.normal(size=(200, 6)), rng.normal(size=(50, 6))
    >>> ae = AutoEncoder(n_components=2, max_iter=20, random_state=0).fit(X)
    >>> folder = Path(tempfile.mkdtemp())
    >>> card = model_card(ae, X_valid, folder=folder)
    >>> sio.dump(ae, folder / "model.skops")
    >>> sorted(p.name for p in folder.iterdir())
    ['README.md', 'model.skops', 'training_curve.png']
    >>> "mean squared reconstruction error" in card.render()
    True
    """
    try:
        from skops.card import Card
    except ImportError as exc:
        raise ImportError("model_card needs skops: pip install skae[skops]") from exc
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "model_card draws the training curve with matplotlib: pip install skae[plot]"
        ) from exc

    _check_skae(estimator)
    check_is_fitted(estimator)
    # The data first, so that a bad X_valid leaves no files behind.
    metrics = None if X_valid is None else _metrics(estimator, X_valid)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    card = Card(estimator)
    name = type(estimator).__name__
    intro = f"A fitted `skae.{name}` (scikit-learn compatible autoencoders on PyTorch)."
    card.add(**{"Model description": f"{description}\n\n{intro}" if description else intro})
    card.add(**{"Model description/Input": _input_text(estimator)})
    card.add(**{"Model description/Architecture": _architecture_text(estimator)})
    card.add(**{"Model description/Training Procedure": _training_text(estimator)})
    _plot_curve(estimator, folder / CURVE_FILE, Figure)
    card.add_plot(
        **{"Model description/Training Procedure/Training curve": CURVE_FILE},
        description=_curve_text(estimator),
        alt_text=f"Training loss of the {name} at each epoch",
    )
    card.add(**{"Model description/Training Procedure/Environment": _environment_text()})
    if metrics is not None:
        card.add_metrics(description="Results on the validation data:", **metrics)
    else:
        card.add(**{"Model description/Evaluation Results": "No validation data was given."})
    card.add(**{"How to Get Started with the Model": GET_STARTED.format(model_file=model_file)})
    card.save(folder / README)
    return card


# ------------------------------------------------------------------------- the parts


def _check_skae(estimator) -> None:
    from ._base import BaseAutoEncoder
    from .anomaly import AnomalyDetector
    from .ensemble import AutoEncoderEnsemble

    if not isinstance(estimator, BaseAutoEncoder | AutoEncoderEnsemble | AnomalyDetector):
        raise TypeError(
            "model_card describes a skae estimator (an autoencoder, an AutoEncoderEnsemble "
            f"or an AnomalyDetector); got {type(estimator).__name__}."
        )


def _scorer(estimator):
    """The estimator that was trained: the detector's inner one, else itself."""
    from .anomaly import AnomalyDetector

    return estimator.estimator_ if isinstance(estimator, AnomalyDetector) else estimator


def _input_text(estimator) -> str:
    inner = _scorer(estimator)
    lines = [f"- features seen in fit (`n_features_in_`): {estimator.n_features_in_}"]
    shape = getattr(inner, "input_shape_", None)
    if shape is not None:
        shown = tuple("any" if s is None else s for s in shape)
        lines.append(f"- shape of one sample as the network reads it (`input_shape_`): {shown}")
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        listed = ", ".join(f"`{n}`" for n in names[:MAX_NAMES])
        more = len(names) - MAX_NAMES
        lines.append(f"- feature names: {listed}" + (f" and {more} more" if more > 0 else ""))
    return "\n".join(lines)


def _architecture_text(estimator) -> str:
    from .anomaly import AnomalyDetector
    from .ensemble import AutoEncoderEnsemble

    inner = _scorer(estimator)
    lines = []
    if isinstance(estimator, AnomalyDetector):
        lines.append(
            f"An anomaly detector (contamination={estimator.contamination!r}, cutoff "
            f"`offset_` = {estimator.offset_:.6g} on `score_samples`); its scoring model "
            f"(`estimator_`) is a `{type(inner).__name__}`."
        )
    if isinstance(inner, AutoEncoderEnsemble):
        sizes = np.asarray(inner.code_sizes_)
        n_weights = sum(np.size(a) for a in [*inner.coefs_, *inner.intercepts_])
        lines.append(
            f"{len(sizes)} small autoencoders trained together, code sizes "
            f"{sizes.min()} to {sizes.max()}; {n_weights:,} weights in all."
        )
        return "\n\n".join(lines)
    module = inner.module_
    n_weights = sum(p.numel() for p in module.parameters())
    lines.append(
        f"Code size (`n_components`): {inner.n_components}; architecture: "
        f"`{inner.architecture_!r}`; {n_weights:,} weights."
    )
    lines.append(f"The torch module (`module_`):\n\n```\n{module}\n```")
    return "\n\n".join(lines)


def _training_text(estimator) -> str:
    from .ensemble import AutoEncoderEnsemble

    inner = _scorer(estimator)
    if isinstance(inner, AutoEncoderEnsemble):
        return f"{inner.n_iter_} full-batch Adam steps on each member's subsample."
    text = f"{inner.n_iter_} epochs of Adam on mini-batches of {inner.batch_size}"
    if getattr(inner, "early_stopping", False):
        text += f", stopped early on a validation split of {inner.validation_fraction:g}"
    return text + " (skorch's training loop)."


def _loss_curves(estimator):
    """``(training losses, validation losses or None)`` of the trained estimator."""
    inner = _scorer(estimator)
    valid = getattr(inner, "validation_scores_", None)
    return list(inner.loss_curve_), (None if valid is None else [-v for v in valid])


def _curve_text(estimator) -> str:
    from .ensemble import AutoEncoderEnsemble

    inner = _scorer(estimator)
    train, valid = _loss_curves(estimator)
    step = "step" if isinstance(inner, AutoEncoderEnsemble) else "epoch"
    text = f"Mean training loss at each {step} ({len(train)} in all; last: {train[-1]:.6g})"
    if valid:
        text += f", and the validation loss (best: {min(valid):.6g})"
    return text + "."


def _plot_curve(estimator, path: Path, Figure) -> None:
    """Draw the training (and validation) loss against the epoch into ``path``."""
    from .ensemble import AutoEncoderEnsemble

    train, valid = _loss_curves(estimator)
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    epochs = np.arange(1, len(train) + 1)
    ax.plot(epochs, train, marker="o" if len(train) < 30 else None, label="training loss")
    if valid:
        ax.plot(
            epochs[: len(valid)],
            valid,
            marker="o" if len(valid) < 30 else None,
            label="validation loss",
        )
    values = np.asarray(train + (valid or []), dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 30:
        ax.set_yscale("log")  # a loss falling by orders of magnitude
    step = "step" if isinstance(_scorer(estimator), AutoEncoderEnsemble) else "epoch"
    ax.set_xlabel(step)
    ax.set_ylabel("loss")
    ax.set_title(f"{type(_scorer(estimator)).__name__}: training curve")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=120)


def _environment_text() -> str:
    import sklearn
    import skorch
    import torch

    from . import __version__

    versions = {
        "skae": __version__,
        "torch": torch.__version__,
        "skorch": skorch.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
    }
    return "\n".join(f"- {k} {v}" for k, v in versions.items())


def _metrics(estimator, X_valid) -> dict:
    from ._base import BaseAutoEncoder
    from .anomaly import AnomalyDetector

    metrics = {"validation samples": _num_samples(X_valid)}
    scores = estimator.score_samples(X_valid)
    metrics["mean score_samples (higher is more normal)"] = round(float(np.mean(scores)), 6)
    if isinstance(estimator, BaseAutoEncoder):
        errors = estimator.feature_errors(X_valid)
        if isinstance(errors, list):  # sequences of different lengths
            errors = np.concatenate([np.ravel(e) for e in errors])
        metrics["mean squared reconstruction error"] = round(float(np.mean(errors)), 6)
    if isinstance(estimator, AnomalyDetector):
        share = float(np.mean(estimator.predict(X_valid) == -1))
        metrics["share labelled outliers"] = round(share, 4)
    return metrics

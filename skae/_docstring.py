"""Parameter documentation that every autoencoder family shares, written once.

A family's docstring says ``{training_parameters}`` where the training
parameters go (``alpha`` through ``compile``); :func:`shared_docs` fills the
placeholder when the class is defined, so each family's rendered docstring is
plain numpydoc and the shared descriptions cannot drift apart. What a family
adds to a shared parameter (e.g. what its validation loss is) goes in its Notes.
"""

from __future__ import annotations

import textwrap

TRAINING_PARAMETERS = """\
alpha : float, default=0.0
    L2 penalty, applied as Adam's ``weight_decay``.
batch_size : int, default=256
    Samples per training batch.
learning_rate_init : float, default=1e-3
    Adam's learning rate.
max_iter : int, default=200
    Maximum number of epochs (passes over the training data).
early_stopping : bool, default=False
    If True, hold out ``validation_fraction`` of the training data, stop
    when its loss has not improved by ``tol`` for ``n_iter_no_change``
    epochs, and keep the weights of the best epoch.
validation_fraction : float, default=0.1
    Fraction of the training data held out when ``early_stopping=True``.
n_iter_no_change : int, default=10
    Epochs without an improvement of at least ``tol`` before stopping.
tol : float or None, default=1e-4
    Minimum improvement of the monitored loss (validation loss with early
    stopping, training loss otherwise). ``None`` disables stopping on the
    training loss, so that exactly ``max_iter`` epochs run.
warm_start : bool, default=False
    If True, ``fit`` continues from the weights of the previous fit (with a
    fresh optimizer, as :class:`~sklearn.neural_network.MLPRegressor`).
random_state : int, RandomState instance or None, default=None
    Seeds weight initialisation, shuffling and the validation split. The
    same int gives the same model on CPU. torch's global RNG is left as it
    was.
verbose : int, default=0
    0 is silent; 1 shows each fit's progress (epochs, loss, validation
    score, time left); above 1 adds a line per epoch. Where it goes is
    decided at each fit: a widget bar in a notebook (an IPython kernel with
    ipywidgets), a text bar on standard error when that is a terminal, and
    otherwise (a log file, CI, ``nohup``, a pipe) whole lines on standard
    output: a start line, one every tenth of the epochs and a final one.
    Lines per epoch always go to standard output.
device : str or torch.device, default="auto"
    Where to train and infer. ``"auto"`` is CUDA when available, else CPU.
callbacks : list or tuple of skorch callbacks or (name, callback) tuples, default=None
    Extra :mod:`skorch.callbacks` for the training loop. The loop records
    per-epoch history rows only (``train_loss``, ``valid_loss``, ``dur``);
    ``valid_*`` keys exist only with ``early_stopping=True``, and a callback
    that monitors one without it is refused before training. For
    ``EpochScoring`` the target is the input as flat rows and
    ``net.predict`` returns the reconstructions as flat rows.
    skae's end-of-training checks are callbacks too (``interrupt_check``,
    ``divergence_check``, ``fitted_model_check``, ``convergence_check``):
    one of yours with that name replaces it, and ``(name, None)`` disables it.
mixed_precision : bool, default=False
    If True, the training forward pass and loss run under bfloat16
    autocast (on CUDA this needs a GPU with bf16 support; on CPU it works
    everywhere but is only faster on CPUs with bf16 instructions). Weights,
    optimizer state and inference stay float32.
compile : bool, default=False
    If True, the training loss (forward pass included) is compiled with
    :func:`torch.compile` for the fit. Compilation costs seconds to minutes
    up front and pays off on long fits of small models on a GPU, where the
    eager loop is bound by kernel launches. Inference stays eager.
"""

PLACEHOLDER = "{training_parameters}"


def shared_docs(cls):
    """Class decorator: put :data:`TRAINING_PARAMETERS` in place of the placeholder."""
    doc = cls.__doc__
    if doc is None or PLACEHOLDER not in doc:
        raise ValueError(f"{cls.__name__}'s docstring has no {PLACEHOLDER} placeholder.")
    # The placeholder sits at the parameters' indentation; the block follows it.
    indent = doc[: doc.index(PLACEHOLDER)].rsplit("\n", 1)[-1]
    block = textwrap.indent(TRAINING_PARAMETERS.rstrip(), indent).lstrip()
    cls.__doc__ = doc.replace(PLACEHOLDER, block)
    return cls

"""skorch callbacks that skae adds to every fit."""

from __future__ import annotations

import math
import sys
import time

from skorch.callbacks import Callback


def silent(*args, **kwargs) -> None:
    """A ``sink`` for skorch callbacks that should not print."""


class NonFiniteLossGuard(Callback):
    """Stop a fit whose loss became NaN or infinite, with advice.

    Raises
    ------
    FloatingPointError
        At the end of the first epoch whose training or validation loss is not
        finite. The estimator then keeps no fitted state from this fit.

    Parameters
    ----------
    advice : str or None, default=None
        What to try, said after the loss (the estimator knows its suspects);
        None gives generic advice.
    """

    def __init__(self, advice: str | None = None):
        self.advice = advice

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        for key in ("train_loss", "valid_loss"):
            value = row.get(key)
            if value is not None and not math.isfinite(value):
                advice = self.advice or (
                    f"Try a smaller learning_rate_init (it is {net.lr}), scale the "
                    "input (e.g. StandardScaler), or a smaller batch_size."
                )
                raise FloatingPointError(
                    f"The {key.replace('_', ' ')} became {value} at epoch "
                    f"{row['epoch']}: training diverged. {advice}"
                )


def progress_display() -> str:
    """How a fit with ``verbose >= 1`` reports progress here, decided at each fit.

    ``"notebook"`` in an IPython kernel (Jupyter, VS Code, Colab) with
    ipywidgets installed: tqdm's widget bar. ``"bar"`` when standard error is
    a terminal: tqdm's text bar there. ``"lines"`` otherwise (a CI log,
    ``nohup``, a scheduler's log file, a pipe, a kernel without ipywidgets):
    whole lines on standard output, which a log keeps readable, where a text
    bar would leave one carriage-return-separated segment per refresh.
    """
    if _in_notebook():
        return "notebook"
    try:
        terminal = sys.stderr.isatty()
    except (AttributeError, ValueError, OSError):  # None, replaced or closed
        terminal = False
    return "bar" if terminal else "lines"


def _in_notebook() -> bool:
    """Whether this process is an IPython kernel that can draw tqdm's widget."""
    ipython = sys.modules.get("IPython")  # only a kernel's user has imported it
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
        if shell is None or "IPKernelApp" not in shell.config:
            return False  # a terminal IPython: stderr is a terminal there
        from tqdm.notebook import IProgress
    except Exception:  # an old or partial IPython, no ipywidgets
        return False
    return IProgress is not None


class ProgressBar(Callback):
    """Report a fit's progress: a bar where one can be drawn, lines in a log.

    Where the output goes is decided at the start of each fit by
    :func:`progress_display`: tqdm's widget in a notebook, tqdm's text bar
    on a terminal's standard error, else lines on standard output: one when
    training starts, one every tenth of the epochs and one when it ends.
    With ``verbose > 1`` every epoch gets a line, on standard output whatever
    the display.

    Parameters
    ----------
    verbose : int, default=1
        The estimator's ``verbose``.
    name : str, default="fit"
        What the first and last lines call the fit (the estimator's class).
    total : int or None, default=None
        Epochs this training runs at most; None is the net's ``max_epochs``
        (``partial_fit`` sets 1).
    """

    def __init__(self, verbose: int = 1, name: str = "fit", total: int | None = None):
        self.verbose = verbose
        self.name = name
        self.total = total

    def on_train_begin(self, net, **kwargs):
        self.total_ = net.max_epochs if self.total is None else self.total
        self.display_ = progress_display()
        self.epochs_ = 0
        self.start_ = time.perf_counter()
        self.bar_ = None
        if self.display_ == "lines":
            if self.total_ > 1:
                self._print(f"{self.name}: up to {self.total_} epochs on {net.device}")
            return
        if self.display_ == "notebook":
            from tqdm.notebook import tqdm

            self.bar_ = tqdm(total=self.total_, unit="epoch", leave=True)
        else:
            from tqdm.std import tqdm

            self.bar_ = tqdm(total=self.total_, unit="epoch", leave=True, file=sys.stderr)

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        self.epochs_ += 1
        scores = {"loss": f"{row['train_loss']:.4g}"}
        if "valid_loss" in row:
            scores["val_score"] = f"{-row['valid_loss']:.4g}"
        if self.bar_ is not None:
            self.bar_.set_postfix(scores, refresh=False)
            self.bar_.update(1)
        every = max(1, math.ceil(self.total_ / 10))
        if self.verbose > 1 or (
            self.bar_ is None and self.epochs_ % every == 0 and self.epochs_ < self.total_
        ):
            self._print(self._epoch_line(scores))

    def on_train_end(self, net, **kwargs):
        if self.bar_ is not None:
            self.bar_.close()
        else:
            elapsed = time.perf_counter() - self.start_
            ran = f"{self.epochs_} epoch{'s' if self.epochs_ != 1 else ''}"
            if self.epochs_ < self.total_:
                ran = f"stopped after {self.epochs_} of {self.total_} epochs"
            row = net.history[-1] if net.history else {}
            scores = "".join(
                f", {name}={sign * row[key]:.4g}"
                for name, key, sign in (("loss", "train_loss", 1), ("val_score", "valid_loss", -1))
                if key in row
            )
            self._print(f"{self.name}: {ran} in {elapsed:.2f}s{scores}")
        # Nothing that holds a stream or a widget stays: the fitted net pickles.
        del self.bar_, self.display_, self.start_

    def _epoch_line(self, scores: dict) -> str:
        elapsed = time.perf_counter() - self.start_
        left = elapsed / self.epochs_ * (self.total_ - self.epochs_)
        fields = ", ".join(f"{k}={v}" for k, v in scores.items())
        return f"epoch {self.epochs_}/{self.total_}: {fields}, {elapsed:.2f}s elapsed" + (
            f", at most ~{left:.2f}s left" if self.epochs_ < self.total_ else ""
        )

    def _print(self, line: str) -> None:
        if self.bar_ is not None:
            self.bar_.write(line, file=sys.stdout)  # clears and redraws the bar around it
        else:
            print(line, file=sys.stdout, flush=True)

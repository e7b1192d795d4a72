"""skorch callbacks that skae adds to every fit."""

from __future__ import annotations

import math
import sys

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


class ProgressBar(Callback):
    """One progress bar per fit; with ``verbose > 1`` a line per epoch too.

    Uses ``tqdm.auto``, which draws a widget in Jupyter and text in a terminal.
    """

    def __init__(self, verbose: int = 1):
        self.verbose = verbose

    def on_train_begin(self, net, **kwargs):
        from tqdm.auto import tqdm

        self.bar_ = tqdm(total=net.max_epochs, unit="epoch", leave=True)

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        postfix = {"loss": f"{row['train_loss']:.4g}"}
        if "valid_loss" in row:
            postfix["val_score"] = f"{-row['valid_loss']:.4g}"
        self.bar_.set_postfix(postfix, refresh=False)
        self.bar_.update(1)
        if self.verbose > 1:
            fields = ", ".join(f"{k}={v}" for k, v in postfix.items())
            self.bar_.write(f"epoch {row['epoch']}: {fields}, {row['dur']:.2f}s", file=sys.stdout)

    def on_train_end(self, net, **kwargs):
        self.bar_.close()
        del self.bar_

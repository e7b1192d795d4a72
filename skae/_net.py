"""The skorch net every skae estimator trains through.

It differs from :class:`skorch.NeuralNet` in three seams only:

* ``get_dataset``/``get_iterator``: batches are slices of a tensor already on
  the training device (see :mod:`skae._batching`), never per-row indexing.
  Data made of several aligned tensors (padded sequences and their lengths)
  comes as a :class:`~skae._batching.TensorDataset` and gives tuple batches.
* ``train_step_single``/``validation_step``: the loss comes from the family's
  ``loss_fn(module, X, training)``, since an autoencoder's target is its input
  (and a denoising or variational family needs the module, not only its output).
* ``run_single_epoch``: batch losses are summed on the device and read back once
  per epoch, so the loop has no host-device sync per batch. The history keeps
  per-epoch rows (``train_loss``, ``valid_loss``, ``dur``, events) and no
  per-batch rows. Each loss also gets skorch's ``<loss>_best`` flag, which
  skorch's own callbacks (``Checkpoint``, ``EarlyStopping``...) read.
* ``evaluation_step``/``get_dataset``: ``net.predict(X)`` returns the
  reconstructions as flat rows (the target is the input), so that skorch's
  scoring callbacks (``EpochScoring``) work; they read the data from
  :class:`~skae._batching.TensorDataset`. The net does not cache batch
  predictions for them: training computes none.
* ``fit_loop``: keeps the ``KeyboardInterrupt`` (Ctrl-C, or skorch's
  ``EarlyStopping``) that ended training, which skorch otherwise swallows, as
  ``interrupt_``; :class:`~skae._checks.InterruptCheck` decides what follows.
"""

from __future__ import annotations

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, EpochTimer
from skorch.utils import TeeGenerator

from ._batching import SparseRows, TensorBatchIterator, TensorDataset
from ._chunked import ChunkStream
from ._errors import valid_steps


class SkaeNet(NeuralNet):
    """A :class:`skorch.NeuralNet` fed by on-device tensor slices.

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn(module, X, training) -> scalar tensor``.
    reconstruct_fn : callable or None, default=None
        ``reconstruct_fn(module, X, lengths) -> tensor`` of the shape of
        ``X``: what ``predict`` returns (as flat rows). None: ``module(X)``.
    *args, **kwargs
        As for :class:`skorch.NeuralNet`.
    """

    def __init__(self, *args, loss_fn, reconstruct_fn=None, **kwargs):
        kwargs.setdefault("use_caching", False)
        super().__init__(*args, **kwargs)
        self.loss_fn = loss_fn
        self.reconstruct_fn = reconstruct_fn

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        # skorch swallows a KeyboardInterrupt (Ctrl-C, or its EarlyStopping
        # ending the loop); the exception itself is kept for the checks.
        self.interrupt_ = None
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt as exc:
            self.interrupt_ = exc
            if self.history and "train_loss" not in self.history[-1]:
                # The row of an epoch cut short: skorch opened it, nothing closed it.
                self.history.pop()
            raise

    def stopped_early(self) -> bool:
        """Whether a stopping rule (an ``EarlyStopping`` callback) ended training."""
        return any(
            isinstance(cb, EarlyStopping) and cb.misses_ >= cb.patience
            for _, cb in getattr(self, "callbacks_", [])
        )

    def notify(self, method_name, **cb_kwargs):
        # As skorch's, but only callbacks that override the hook are called:
        # skae's end-of-training checks act once per fit, and calling their
        # no-op batch hooks would cost a small model's step several Python calls.
        getattr(self, method_name)(self, **cb_kwargs)
        for cb in self._listeners(method_name):
            getattr(cb, method_name)(self, **cb_kwargs)

    def _listeners(self, method_name: str) -> list:
        """The callbacks whose class overrides ``method_name``.

        Cached while ``callbacks_`` is the same list with the same length (the
        cache holds the list, so its identity cannot be reused).
        """
        callbacks = getattr(self, "callbacks_", [])
        cache = self.__dict__.setdefault("_listener_cache", {})
        entry = cache.get(method_name)
        if entry is None or entry[0] is not callbacks or entry[1] != len(callbacks):
            base = getattr(Callback, method_name, None)
            found = [cb for _, cb in callbacks if getattr(type(cb), method_name, None) is not base]
            entry = cache[method_name] = (callbacks, len(callbacks), found)
        return entry[2]

    def get_default_callbacks(self):
        # skorch's defaults score from per-batch history rows and print a
        # table; skae records epoch losses itself and prints through its own
        # progress bar.
        return [("epoch_timer", EpochTimer())]

    def get_dataset(self, X, y=None):
        if isinstance(X, (TensorDataset, ChunkStream)):
            return X
        # What a scoring callback passes to predict: a dataset's X (a tensor,
        # or the tuple of aligned tensors of padded sequences), or an array.
        arrays = X if isinstance(X, tuple) else (X,)
        kept = (torch.Tensor, SparseRows)
        return TensorDataset(*(a if isinstance(a, kept) else torch.as_tensor(a) for a in arrays))

    def get_iterator(self, dataset, training=False):
        if isinstance(dataset, ChunkStream):  # data larger than memory, read in chunks
            return dataset.iterator(self.batch_size, training, self.device)
        return TensorBatchIterator(
            dataset.tensors,
            self.batch_size,
            shuffle=training,
            device=self.device,
            weights=dataset.weights,
        )

    # Training mode is set once per epoch in run_single_epoch: module.train()
    # walks every submodule, which costs more than a small MLP's step.

    def train_step_single(self, batch, **fit_params):
        loss = self.loss_fn(self.module_, batch, True)
        loss.backward()
        return {"loss": loss, "y_pred": None}

    def train_step(self, batch, **fit_params):
        # skorch wraps each step in a closure and an accumulator for optimizers
        # that call it several times (LBFGS); skae's Adam calls it once, so the
        # step is taken directly. Gradient callbacks are still notified.
        self._zero_grad_optimizer()
        step = self.train_step_single(batch, **fit_params)
        if self._listeners("on_grad_computed"):
            self.notify(
                "on_grad_computed",
                named_parameters=TeeGenerator(self.get_all_learnable_params()),
                batch=batch,
                training=True,
            )
        self._step_optimizer(None)
        return step

    def evaluation_step(self, batch, training=False):
        # A batch is the data alone (no target): the reconstruction as flat rows.
        self.check_is_fitted()
        X, lengths = batch if isinstance(batch, tuple) else (batch, None)
        with torch.set_grad_enabled(training):
            self._set_training(training)
            if self.reconstruct_fn is None:
                out = self.module_(X)
            else:
                out = self.reconstruct_fn(self.module_, X, lengths)
        if lengths is not None:  # padded steps as in the target: zero
            out = torch.where(valid_steps(out, lengths), out, 0.0)
        return out.reshape(len(out), -1)

    def validation_step(self, batch, **fit_params):
        with torch.no_grad():
            loss = self.loss_fn(self.module_, batch, False)
        return {"loss": loss, "y_pred": None}

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if iterator is None:
            return
        # Weighted by batch size so the epoch loss is the mean over samples.
        total = torch.zeros((), device=self.device)
        n_seen = 0
        self._set_training(training)
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            n_rows = len(batch[0]) if isinstance(batch, tuple) else len(batch)
            total.add_(step["loss"].detach(), alpha=n_rows)
            n_seen += n_rows
            self.notify("on_batch_end", batch=batch, training=training, **step)
        # The one host-device sync of the epoch.
        loss = (total / n_seen).item()
        key = prefix + "_loss"
        earlier = [row[key] for row in self.history[:-1] if key in row]
        self.history.record(key, loss)
        self.history.record(key + "_best", not earlier or loss < min(earlier))
        self.history.record(prefix + "_batch_count", len(iterator))

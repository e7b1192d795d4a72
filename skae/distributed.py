"""Scaling out: searches on a Dask or Ray cluster, data-parallel training with PyTorch DDP.

Both go through existing engines. :func:`search_backend` points joblib (hence
``GridSearchCV``, ``RandomizedSearchCV``, ``cross_validate``...) at a Dask or
Ray cluster, starting a local one when no address is given.
:func:`fit_data_parallel` trains one model in several processes with
:class:`torch.nn.parallel.DistributedDataParallel`: each process trains on its
share of the rows and gradients are averaged at every step.

The engines are extras: ``pip install skae[dask]``, ``skae[ray]``,
``skae[distributed]`` (PyTorch's own ``torch.distributed``: nothing more to
install).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import tempfile

import numpy as np
import torch
from sklearn.base import clone
from sklearn.utils import check_random_state
from skorch.callbacks import Callback

__all__ = ["DataParallel", "fit_data_parallel", "search_backend"]


def _require(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"This needs {module.split('.')[0]}, which is not installed: pip install skae[{extra}]"
        ) from exc


@contextlib.contextmanager
def search_backend(
    engine: str, *, n_workers: int = 2, address: str | None = None, **backend_params
):
    """Run joblib-parallel work (a search's fits) on a Dask or Ray cluster.

    Inside the ``with`` block, scikit-learn's searches with ``n_jobs=-1``
    send each candidate's fits to the cluster's workers. With ``address``,
    it connects to a running cluster (a Dask scheduler such as
    ``"tcp://host:8786"``, or a Ray address such as ``"ray://host:10001"`` or
    ``"auto"``); without, it starts a local cluster of ``n_workers``
    single-threaded worker processes and shuts it down on exit.

    Parameters
    ----------
    engine : {"dask", "ray"}
        Which engine: joblib's Dask backend (``dask.distributed``) or Ray's
        (``ray.util.joblib``).
    n_workers : int, default=2
        Worker processes of the local cluster; ignored with ``address``.
    address : str or None, default=None
        A running cluster to use instead of a local one.
    **backend_params
        Passed to :func:`joblib.parallel_backend`, e.g. Ray's
        ``ray_remote_args={"num_gpus": 1}`` to give each fit a GPU.

    Yields
    ------
    client : dask.distributed.Client or None
        The Dask client, or None for Ray.

    Raises
    ------
    ImportError
        When the engine is not installed, naming the extra to install.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skae import AutoEncoder
    >>> from skae.distributed import search_backend
    >>> search = GridSearchCV(AutoEncoder(max_iter=5), {"n_components": [2, 4]}, n_jobs=-1)
    >>> with search_backend("dask", n_workers=2):  # doctest: +SKIP
    ...     search.fit(X)
    """
    import joblib

    if engine == "dask":
        distributed = _require("dask.distributed", "dask")
        if address is None:
            cluster = distributed.LocalCluster(
                n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = distributed.Client(cluster)
        else:
            cluster, client = None, distributed.Client(address)
        try:
            with joblib.parallel_backend("dask", **backend_params):
                yield client
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    elif engine == "ray":
        ray = _require("ray", "ray")
        ray_joblib = _require("ray.util.joblib", "ray")
        started = not ray.is_initialized()
        if started:
            kwargs = {"num_cpus": n_workers} if address is None else {"address": address}
            ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
        ray_joblib.register_ray()
        try:
            with joblib.parallel_backend("ray", **backend_params):
                yield None
        finally:
            if started:
                ray.shutdown()
    else:
        raise ValueError(f"engine must be 'dask' or 'ray', got {engine!r}.")


# ------------------------------------------------------------ data parallel


class _LossModule(torch.nn.Module):
    """The module and its loss as one ``forward``, so DDP sees (and syncs) the backward."""

    def __init__(self, module: torch.nn.Module, loss_fn):
        super().__init__()
        self.module = module
        self.loss_fn = loss_fn

    def forward(self, batch):
        return self.loss_fn(self.module, batch, True)


class DataParallel(Callback):
    """skorch callback: train the net's module under DistributedDataParallel.

    For use inside a process group (``torch.distributed`` initialised), as
    :func:`fit_data_parallel` does. At the start of training it wraps the
    module *and the estimator's loss* in
    :class:`~torch.nn.parallel.DistributedDataParallel`, so the loss's
    backward all-reduces (averages) the gradients across processes; it
    unwraps them at the end, so the fitted net pickles as usual. DDP also
    broadcasts rank 0's initial weights, so every process starts alike.

    Examples
    --------
    >>> from skae.distributed import DataParallel
    >>> callback = DataParallel()  # for AutoEncoder(callbacks=[callback]) in a process group
    >>> type(callback).__name__
    'DataParallel'
    """

    def on_train_begin(self, net, **kwargs):
        from torch.nn.parallel import DistributedDataParallel

        if not torch.distributed.is_initialized():
            raise RuntimeError(
                "DataParallel trains inside a torch.distributed process group; "
                "use skae.distributed.fit_data_parallel, or initialise one first."
            )
        self.inner_ = net.loss_fn
        device = torch.device(net.device)
        ids = [device] if device.type == "cuda" else None
        ddp = DistributedDataParallel(_LossModule(net.module_, self.inner_), device_ids=ids)

        def loss_fn(module, batch, training):
            return ddp(batch) if training else self.inner_(module, batch, training)

        net.loss_fn = loss_fn

    def on_train_end(self, net, **kwargs):
        net.loss_fn = self.inner_
        del self.inner_


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shards(n_rows: int, n_processes: int, random_state) -> list[np.ndarray]:
    """Row indices of each process: a seeded permutation cut into equal shares.

    DDP needs every process to take the same number of steps, so the shares
    have equal sizes; the ``n_rows % n_processes`` rows left over are dropped.
    """
    order = check_random_state(random_state).permutation(n_rows)
    share = n_rows // n_processes
    return [np.sort(order[i * share : (i + 1) * share]) for i in range(n_processes)]


def _worker(rank, world_size, port, backend, cuda, estimator, X, shards, out_path):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
    )
    try:
        est = clone(estimator)
        if cuda:
            est.set_params(device=f"cuda:{rank}")
        callbacks = list(est.callbacks or []) + [("data_parallel", DataParallel())]
        # Only rank 0 prints; early stopping on a per-process loss could stop
        # one process before the others, which would then wait forever.
        est.set_params(callbacks=callbacks, verbose=est.verbose if rank == 0 else 0, tol=None)
        rows = shards[rank]
        est.fit([X[i] for i in rows] if isinstance(X, list) else X[rows])
        if rank == 0:
            est.set_params(callbacks=estimator.callbacks, tol=estimator.tol)
            est.net_.callbacks = [c for c in est.net_.callbacks if c[0] != "data_parallel"]
            est.net_.callbacks_ = [c for c in est.net_.callbacks_ if c[0] != "data_parallel"]
            with open(out_path, "wb") as f:
                pickle.dump(est, f)
    finally:
        torch.distributed.destroy_process_group()


def fit_data_parallel(estimator, X, *, n_processes: int = 2, backend: str | None = None):
    """Fit a clone of ``estimator`` on ``X`` in ``n_processes`` processes with PyTorch DDP.

    Each process trains the same model on its share of the rows (a seeded
    random split into equal shares) with ``batch_size`` rows per step, and
    :class:`~torch.nn.parallel.DistributedDataParallel` averages the
    gradients at every step: one step sees ``n_processes * batch_size`` rows,
    as a single process with that batch size would. To match a
    single-process fit, divide ``batch_size`` by ``n_processes``.

    Processes are started with ``torch.multiprocessing`` (spawn) on this
    machine: on CPU they talk through gloo; on a machine with CUDA GPUs each
    process takes ``cuda:<rank>`` and they talk through NCCL. Only rank 0
    shows a progress bar. Every process runs exactly ``max_iter`` epochs
    (``tol`` is ignored: stopping has to be agreed by all), and
    ``early_stopping`` is not supported. Returns rank 0's fitted estimator.
    The input is pickled to each process, so it must fit in memory; for
    larger data, use :class:`DataParallel` in your own ``torchrun`` script.

    Parameters
    ----------
    estimator : skae estimator
        The unfitted model (cloned; not modified).
    X : array-like of shape (n_samples, n_features)
        Training data, in any form ``estimator.fit`` takes.
    n_processes : int, default=2
        Processes (on GPUs: one per GPU).
    backend : {"gloo", "nccl"} or None, default=None
        ``torch.distributed`` backend; None picks NCCL when CUDA is used, else gloo.

    Returns
    -------
    estimator : skae estimator
        The fitted clone, with the parameters of ``estimator``.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import AutoEncoder
    >>> from skae.distributed import fit_data_parallel
    >>> X = np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32)
    >>> ae = fit_data_parallel(AutoEncoder(2, max_iter=3, random_state=0), X)  # doctest: +SKIP
    >>> ae.n_iter_  # doctest: +SKIP
    3
    """
    if not torch.distributed.is_available():
        raise ImportError(
            "fit_data_parallel needs a torch built with torch.distributed: pip install "
            "skae[distributed] (a standard torch build)."
        )
    if isinstance(n_processes, bool) or not isinstance(n_processes, int) or n_processes < 1:
        raise ValueError(f"n_processes must be a positive int, got {n_processes!r}.")
    if getattr(estimator, "early_stopping", False):
        raise ValueError(
            "fit_data_parallel does not support early_stopping=True (each process "
            "would stop on its own validation set); use early_stopping=False."
        )
    n_rows = len(X)
    if n_rows < n_processes:
        raise ValueError(f"X has {n_rows} samples, fewer than n_processes={n_processes}.")
    cuda = estimator.device != "cpu" and torch.cuda.is_available()
    if backend is None:
        backend = "nccl" if cuda else "gloo"
    shards = _shards(n_rows, n_processes, estimator.random_state)
    with tempfile.TemporaryDirectory() as tmp:
        out_path = os.path.join(tmp, "fitted.pkl")
        torch.multiprocessing.spawn(
            _worker,
            args=(n_processes, _free_port(), backend, cuda, estimator, X, shards, out_path),
            nprocs=n_processes,
            join=True,
        )
        with open(out_path, "rb") as f:
            return pickle.load(f)

"""skae.distributed's argument checks and errors; the engines run in test_cluster.py."""

import sys

import numpy as np
import pytest
import torch

from skae import AutoEncoder
from skae.distributed import DataParallel, fit_data_parallel, search_backend


@pytest.mark.parametrize(
    "engine, modules, extra",
    [("dask", ["dask", "dask.distributed"], "dask"), ("ray", ["ray", "ray.util.joblib"], "ray")],
)
def test_missing_engine_names_the_extra(engine, modules, extra, monkeypatch):
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)  # makes the import fail
    with pytest.raises(ImportError, match=rf"pip install skae\[{extra}\]"):
        with search_backend(engine):
            pass


def test_search_backend_rejects_unknown_engine():
    with pytest.raises(ValueError, match="engine must be 'dask' or 'ray', got 'spark'"):
        with search_backend("spark"):
            pass


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_processes": 0}, "n_processes must be a positive int, got 0"),
        ({"n_processes": 2.0}, "n_processes must be a positive int"),
        ({"n_processes": 5}, "X has 4 samples, fewer than n_processes=5"),
    ],
)
def test_fit_data_parallel_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_data_parallel(AutoEncoder(), np.zeros((4, 3)), **kwargs)


def test_fit_data_parallel_rejects_early_stopping():
    with pytest.raises(ValueError, match="does not support early_stopping=True"):
        fit_data_parallel(AutoEncoder(early_stopping=True), np.zeros((4, 3)))


def test_data_parallel_callback_needs_a_process_group():
    assert not torch.distributed.is_initialized()
    ae = AutoEncoder(max_iter=1, callbacks=[DataParallel()])
    with pytest.raises(RuntimeError, match="inside a torch.distributed process group"):
        ae.fit(np.random.default_rng(0).normal(size=(20, 3)))
    assert not hasattr(ae, "net_")

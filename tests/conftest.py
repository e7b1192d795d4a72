import pytest
import torch


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA; torch.cuda.is_available() is False")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config):
    # The suite's models are tiny: one thread per process avoids spinning
    # OpenMP workers and is faster on the 2-core CI machine.
    torch.set_num_threads(1)

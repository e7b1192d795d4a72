"""Settings the test files share: tiny networks, few epochs, on the CPU.

Imported as ``from _settings import FAST`` (pytest puts ``tests/`` on the path, as
``tests/`` has no ``__init__.py``). A file that needs other values derives them from
these, e.g. ``{**FAST, "max_iter": 30}``. The data sets are fixtures in ``conftest.py``.
"""

import numpy as np

# A table family: 8 hidden units, 4 epochs, one batch an epoch on the suite's small sets
# (batch_size="auto", the default, takes 16 steps an epoch; test_training.py tests it).
FAST = dict(hidden_layer_sizes=(8,), max_iter=4, batch_size=256, random_state=0, device="cpu")
# The AutoEncoder tests' model: 16 hidden units, 15 epochs.
FAST_16 = {**FAST, "hidden_layer_sizes": (16,), "max_iter": 15}
# Several batches an epoch (the sparse-input tests: 60 rows, 16 a batch).
FAST_BATCHES = {**FAST, "max_iter": 5, "batch_size": 16}
# A recurrent family: 4 hidden units, 3 epochs, one batch an epoch.
FAST_RNN = dict(hidden_size=4, max_iter=3, batch_size=256, random_state=0, device="cpu")
# The fast paths (mixed precision, compile, streaming): no device, each test sets it.
FAST_PATHS = dict(n_components=4, hidden_layer_sizes=(16,), max_iter=10, tol=None, random_state=0)


def family_id(est):
    return type(est).__name__


def curved_manifold(seed, n=600):
    """A noisy 1-D curve (an arc of a twisted circle) embedded in 10-D."""
    rng = np.random.RandomState(seed)
    t = rng.uniform(0, 1.5 * np.pi, n)
    curve = np.c_[np.cos(t), np.sin(t), 0.3 * np.cos(2 * t)]
    rotation, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    return curve @ rotation[:3] + 0.01 * rng.normal(size=(n, 10))

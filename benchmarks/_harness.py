"""What the benchmark scripts share: data paths, loaders, timing, memory, tables.

The scripts run as ``python benchmarks/<name>.py``, which puts this folder
first on ``sys.path``, so they import this module as ``_harness``. It is not
part of skae and uses only skae's public API.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# ------------------------------------------------------------------- data

# The data sets live beside the project checkout, not in it; the messages
# print this unresolved form, so they read as the README's ``../shared/data``.
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
MNIST = DATA / "mnist10k.npz"
ADBENCH = DATA / "adbench"
ECG5000 = DATA / "ecg5000_train500.npz"
FSDD = DATA / "fsdd.npz"
SMS_SPAM = DATA / "sms_spam.tsv"


def data_missing(path: Path) -> bool:
    """Report a benchmark as skipped when its data is absent.

    Parameters
    ----------
    path : Path
        The data file or folder the benchmark reads.

    Returns
    -------
    missing : bool
        True, after printing why, when ``path`` does not exist: the caller
        then returns without running (a clone without the shared data folder
        is a normal setup, not an error).
    """
    if path.exists():
        return False
    print(f"skipped: {path} not found (see ../shared/data/README.md)")
    return True


def load_mnist(*, flat: bool = True, dtype=np.float32):
    """The 8000/2000 split of the MNIST test set, pixels scaled to [0, 1].

    Parameters
    ----------
    flat : bool, default=True
        If True, images come as rows of 784 pixels; otherwise as (28, 28).
    dtype : numpy dtype, default=np.float32
        Dtype of the pixels, converted before the division by 255.

    Returns
    -------
    X_train : ndarray of shape (8000, 784) or (8000, 28, 28)
    y_train : ndarray of shape (8000,), uint8 digit labels
    X_test : ndarray of shape (2000, 784) or (2000, 28, 28)
    y_test : ndarray of shape (2000,), uint8 digit labels
    """
    d = np.load(MNIST)

    def images(key):
        X = d[key].astype(dtype) / 255
        return X.reshape(len(X), -1) if flat else X

    return images("x_train"), d["y_train"], images("x_test"), d["y_test"]


def mnist_training(epochs: int) -> dict:
    """The training settings the MNIST image benchmarks share.

    Denoising, sparse codes and compression are compared across their pages
    at the same seed, batch size, learning rate and fixed epoch count.

    Parameters
    ----------
    epochs : int
        Number of epochs (``max_iter``); ``tol=None`` runs all of them.

    Returns
    -------
    params : dict
        Keyword arguments for any skae estimator.
    """
    return dict(
        batch_size=128,
        learning_rate_init=2e-3,
        max_iter=epochs,
        tol=None,
        random_state=0,
        device="cpu",
    )


def sine_waves(n: int = 300, steps: int = 60) -> np.ndarray:
    """The recurrent benchmarks' synthetic sequences: noisy sines of random frequency,
    phase and amplitude, shape (n, steps), float64, always the same (seed 0)."""
    rng = np.random.RandomState(0)
    t = np.arange(steps)
    frequency = rng.uniform(0.05, 0.2, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    amplitude = rng.uniform(0.5, 1.5, (n, 1))
    return amplitude * np.sin(2 * np.pi * frequency * t + phase) + 0.1 * rng.normal(size=(n, steps))


def psnr(A, B) -> float:
    """Peak signal-to-noise ratio in dB of ``A`` against ``B``, for values in [0, 1] (peak 1)."""
    return float(10 * np.log10(1.0 / np.mean((A - B) ** 2)))


# ----------------------------------------------------------------- timing


def timed(fn: Callable, *args, **kwargs) -> tuple[Any, float]:
    """Call ``fn(*args, **kwargs)`` and measure its wall time.

    Returns
    -------
    result : object
        What ``fn`` returned (for ``model.fit``, the fitted model).
    seconds : float
        Wall-clock seconds of the call (``time.perf_counter``).
    """
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


# ----------------------------------------------------------------- memory


def proc_status_kib(field: str) -> int:
    """One memory field of ``/proc/self/status`` (Linux only), in KiB.

    Parameters
    ----------
    field : str
        E.g. ``"RssAnon"``, ``"VmRSS"`` or ``"VmHWM"``.

    Returns
    -------
    kib : int
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def rss_anon_bytes() -> int:
    """Anonymous resident memory of this process, in bytes.

    RssAnon counts what the process itself allocated, not the file pages the
    kernel maps in for a memmap and may drop at will.
    """
    return proc_status_kib("RssAnon") * 1024


class PeakSampler(threading.Thread):
    """Peak anonymous resident memory while a block runs.

    A daemon thread polls RssAnon every few milliseconds and keeps the
    maximum; polling, unlike the kernel's high-water mark, measures from a
    chosen baseline without resetting anything process-wide.

    Attributes
    ----------
    baseline : int
        RssAnon in bytes when the sampler was created.
    peak : int
        Highest RssAnon seen so far, in bytes.

    Examples
    --------
    >>> with PeakSampler() as memory:  # doctest: +SKIP
    ...     model.score_samples(X)
    >>> memory.increase  # doctest: +SKIP
    """

    def __init__(self):
        super().__init__(daemon=True)
        self.baseline = self.peak = rss_anon_bytes()
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            self.peak = max(self.peak, rss_anon_bytes())
            time.sleep(0.005)

    def stop(self) -> int:
        """Stop polling and return the peak in bytes."""
        self._stop_event.set()
        self.join()
        return self.peak

    @property
    def increase(self) -> int:
        """Peak minus baseline, in bytes."""
        return self.peak - self.baseline

    def __enter__(self) -> PeakSampler:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def write_random_memmap(path: Path, n_rows: int, n_features: int) -> tuple[np.memmap, float]:
    """Write uniform float32 noise to a memmap on disk, 100,000 rows at a time.

    The rows come from ``np.random.default_rng(0)`` in that order, so every
    benchmark that calls this reads the same data for the same shape.

    Parameters
    ----------
    path : Path
        The file to write (it becomes ``n_rows * n_features * 4`` bytes).
    n_rows, n_features : int
        Shape of the array.

    Returns
    -------
    X : np.memmap of shape (n_rows, n_features)
        The file reopened read-only, so that nothing dirties its pages.
    seconds : float
        Time taken to write and flush it.
    """
    shape = (n_rows, n_features)
    X = np.memmap(path, dtype=np.float32, mode="w+", shape=shape)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for i in range(0, n_rows, 100_000):
        X[i : i + 100_000] = rng.random((min(100_000, n_rows - i), n_features), np.float32)
    X.flush()
    seconds = time.perf_counter() - start
    del X
    return np.memmap(path, dtype=np.float32, mode="r", shape=shape), seconds


# ----------------------------------------------------------------- tables


def table_header(columns: Sequence[str], align: str | None = None) -> str:
    """The first two lines of a markdown table.

    Parameters
    ----------
    columns : sequence of str
        Column titles.
    align : str, optional
        One letter per column, ``"l"`` (``---``) or ``"r"`` (``---:``);
        default all ``"l"``.

    Returns
    -------
    header : str
        The title line and the separator line, joined by a newline.
    """
    align = align or "l" * len(columns)
    if len(align) != len(columns):
        raise ValueError(f"align {align!r} does not have one letter per column of {columns}")
    rule = ["---:" if a == "r" else "---" for a in align]
    return table_row(columns) + "\n" + table_row(rule)


def table_row(cells: Iterable) -> str:
    """One markdown table line of already formatted ``cells``."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def markdown_table(
    columns: Sequence[str], rows: Iterable[Iterable], align: str | None = None
) -> str:
    """A whole markdown table; see :func:`table_header` for ``align``.

    Scripts whose rows take long to compute print :func:`table_header` and
    then one :func:`table_row` at a time instead, so partial runs show.
    """
    return "\n".join([table_header(columns, align), *(table_row(r) for r in rows)])

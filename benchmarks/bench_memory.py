"""Peak memory of ``score_samples`` on an input far larger than a batch, and of ``fit`` on a memmap.

The input is a float32 ``np.memmap`` on disk, so it never has to fit in RAM;
skae reads it one inference batch at a time. The script reports the peak
*anonymous* resident memory (RssAnon: what the process itself allocated, not
the file pages the kernel maps in and may drop at will) during scoring,
against the input's size.

With ``--fit-mib N`` it instead fits an ``AutoEncoder`` (one epoch) on a
read-only float32 and a float64 ``np.memmap`` of N MiB each and reports how
much anonymous memory the fit added: training reads batches from the file's
pages, so the increase should stay far below the file's size.

Usage::

    python benchmarks/bench_memory.py                    # 2,000,000 x 784 (6.3 GB file)
    python benchmarks/bench_memory.py --rows 10000000    # 10M x 784 (31 GB file)
    python benchmarks/bench_memory.py --fit-mib 512      # fit on 512 MiB memmaps
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
from pathlib import Path

import numpy as np
from _harness import PeakSampler, timed, write_random_memmap

from skae import AutoEncoder


def inference_batch_rows() -> int | None:
    """Rows per inference batch of a table in skae, or None if not found.

    skae has no public name for it, and its private home is moving (from
    ``skae._base`` to ``skae._inference``); it is only printed, as the scale
    the peak is to be read against, so a missing one must not stop the run.
    """
    for module in ("skae._inference", "skae._base"):
        try:
            return importlib.import_module(module).INFERENCE_BATCH_ROWS
        except (ImportError, AttributeError):
            pass
    return None


def fit_on_memmaps(mib: int, directory) -> None:
    """Anonymous memory that one epoch of ``fit`` adds on read-only memmaps of ``mib`` MiB."""
    n_features = 256
    for dtype in (np.float32, np.float64):
        n_rows = mib * 2**20 // (np.dtype(dtype).itemsize * n_features)
        with tempfile.TemporaryDirectory(dir=directory) as tmp:
            path = Path(tmp) / "X.bin"
            X = np.memmap(path, dtype=dtype, mode="w+", shape=(n_rows, n_features))
            rng = np.random.default_rng(0)
            for i in range(0, n_rows, 50_000):
                X[i : i + 50_000] = rng.random((min(50_000, n_rows - i), n_features))
            X.flush()
            del X
            X = np.memmap(path, dtype=dtype, mode="r", shape=(n_rows, n_features))
            model = AutoEncoder(
                n_components=8, hidden_layer_sizes=(16,), max_iter=1, batch_size=4096,
                tol=None, random_state=0, device="cpu",
            )  # fmt: skip
            with PeakSampler() as memory:
                _, seconds = timed(model.fit, X)
            print(
                f"fit on a {X.nbytes / 2**20:.0f} MiB read-only {np.dtype(dtype).name} memmap "
                f"({n_rows:,} x {n_features}): peak RssAnon - baseline "
                f"{memory.increase / 2**20:.0f} MiB, {seconds:.1f}s"
            )
            del X, model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=784)
    parser.add_argument("--dir", default=None, help="where to write the memmap (default: tmp)")
    parser.add_argument("--fit-mib", type=int, default=None, help="fit on memmaps of this size")
    args = parser.parse_args(argv)
    if args.fit_mib:
        fit_on_memmaps(args.fit_mib, args.dir)
        return
    gib = 1024**3

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        X, seconds = write_random_memmap(Path(tmp) / "X.f32", args.rows, args.features)
        print(f"wrote {X.nbytes / gib:.1f} GiB input in {seconds:.0f}s")

        model = AutoEncoder(
            n_components=32, hidden_layer_sizes=(256,), max_iter=2, random_state=0, device="cpu"
        ).fit(np.asarray(X[:10_000]))

        with PeakSampler() as memory:
            scores, seconds = timed(model.score_samples, X)

    batch_rows = inference_batch_rows()
    print(f"rows x features        : {args.rows:,} x {args.features}")
    print(f"input size             : {args.rows * args.features * 4 / gib:.2f} GiB (memmap)")
    if batch_rows is None:
        print("inference batch        : unknown (skae moved its private constant)")
    else:
        batch_mib = batch_rows * args.features * 4 / 2**20
        print(f"inference batch        : {batch_rows:,} rows = {batch_mib:.0f} MiB")
    print(f"output size            : {scores.nbytes / 2**20:.0f} MiB")
    print(f"peak RssAnon - baseline: {memory.increase / 2**20:.0f} MiB")
    print(f"scoring time           : {seconds:.1f}s ({args.rows / seconds:,.0f} rows/s)")
    print(f"all scores finite      : {bool(np.isfinite(scores).all())}")


if __name__ == "__main__":
    main()

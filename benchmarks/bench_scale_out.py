r"""Scaling out: a search on 1 process, loky, Dask and Ray; out-of-core fit on a memmap.

(a) ``search``: a 16-candidate ``GridSearchCV`` (2 folds, 32 fits) of an
AutoEncoder on the digits, with ``n_jobs=1``, joblib's loky backend with
``n_jobs=2``, a local Dask cluster of 2 worker processes and local Ray with 2
CPUs (both through :func:`skae.distributed.search_backend`): wall time, ratio
to ``n_jobs=1`` (speed-up), and whether ``best_params_`` agree. Each runs the
search twice: the first time counts starting the cluster and the workers
(each imports torch), the second runs on warm workers.

(b) ``ooc``: ``fit`` on a float32 ``np.memmap`` through
:class:`skae.ChunkedData` against ``fit`` on an in-memory array of the rows
that fit: one epoch each, samples/s and peak *anonymous* resident memory
(RssAnon; the memmap's file pages are the kernel's, mapped in and dropped at
will).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_scale_out.py search
    OMP_NUM_THREADS=1 python benchmarks/bench_scale_out.py ooc --rows 2000000
    OMP_NUM_THREADS=1 python benchmarks/bench_scale_out.py ooc --rows 10000000 \
        --hidden 64 --components 8
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _harness import PeakSampler, timed, write_random_memmap


def search(args):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV, KFold

    from skae import AutoEncoder
    from skae.distributed import search_backend

    X = (load_digits().data / 16.0).astype(np.float32)
    grid = {
        "n_components": [4, 8, 16, 32],
        "learning_rate_init": [1e-3, 3e-3],
        "hidden_layer_sizes": [(64,), (128,)],
    }
    model = AutoEncoder(max_iter=args.max_iter, tol=None, random_state=0, device="cpu")

    def run(n_jobs, engine=None):
        """Wall time of a first search (with the workers' start-up) and of a second one."""
        times = []
        context = contextlib.nullcontext() if engine is None else search_backend(engine)
        start = time.perf_counter()
        with context:
            for _ in range(2):
                s = GridSearchCV(model, grid, cv=KFold(2), n_jobs=n_jobs).fit(X)
                times.append(time.perf_counter() - start)
                start = time.perf_counter()
        return times, s.best_params_

    rows = [("n_jobs=1", *run(1)), ("loky, n_jobs=2", *run(2))]
    rows.append(("Dask, 2 workers", *run(-1, "dask")))
    rows.append(("Ray, 2 workers", *run(-1, "ray")))
    print(f"16 candidates x 2 folds, AutoEncoder max_iter={args.max_iter}, digits {X.shape}")
    print("first: with cluster/worker start-up; second: the same search again on warm workers")
    print(f"{'backend':<18} {'first s':>8} {'ratio':>6} {'second s':>9} {'ratio':>6}  same best")
    (ref_first, ref_second), ref_best = rows[0][1], rows[0][2]
    for name, (first, second), best in rows:
        print(
            f"{name:<18} {first:8.1f} {ref_first / first:6.2f} {second:9.1f} "
            f"{ref_second / second:6.2f}  {best == ref_best}"
        )
    print(f"best_params_: {ref_best}")


def ooc(args):
    from skae import AutoEncoder, ChunkedData

    gib = 1024**3
    params = dict(
        n_components=args.components,
        hidden_layer_sizes=(args.hidden,),
        batch_size=256,
        max_iter=1,
        tol=None,
        random_state=0,
        device="cpu",
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        X, seconds = write_random_memmap(Path(tmp) / "X.f32", args.rows, args.features)
        size = args.rows * args.features * 4 / gib
        print(f"wrote {size:.1f} GiB in {seconds:.0f}s")

        part = np.array(X[: args.in_memory_rows])
        with PeakSampler() as memory:
            # Only the time is kept, so the model is freed before the out-of-core fit.
            in_memory_s = timed(AutoEncoder(**params).fit, part)[1]
        in_memory_peak = memory.increase
        del part

        data = ChunkedData(X, chunk_size=args.chunk_size, shuffle_window=args.shuffle_window)
        with PeakSampler() as memory:
            model, ooc_s = timed(AutoEncoder(**params).fit, data)
        ooc_peak = memory.increase

    mib = 2**20
    window = args.chunk_size * args.shuffle_window * args.features * 4
    in_rate, ooc_rate = args.in_memory_rows / in_memory_s, args.rows / ooc_s
    print(f"torch threads             : {torch.get_num_threads()}")
    layers = f"{args.features}-{args.hidden}-{args.components}"
    print(f"model                     : {layers}, batch 256, 1 epoch")
    print(
        f"memmap                    : {args.rows:,} x {args.features} = "
        f"{args.rows * args.features * 4 / gib:.2f} GiB"
    )
    print(
        f"window                    : {args.shuffle_window} chunks x {args.chunk_size:,} rows"
        f" = {window / mib:.0f} MiB"
    )
    print(
        f"in-memory fit, {args.in_memory_rows:,} rows: {in_rate:,.0f} samples/s, "
        f"peak RssAnon +{in_memory_peak / mib:.0f} MiB (the array itself was "
        f"{args.in_memory_rows * args.features * 4 / mib:.0f} MiB before)"
    )
    print(
        f"out-of-core fit, all rows : {ooc_rate:,.0f} samples/s, "
        f"peak RssAnon +{ooc_peak / mib:.0f} MiB"
    )
    print(f"throughput ratio          : {ooc_rate / in_rate:.2f}x")
    print(f"final loss finite         : {np.isfinite(model.loss_curve_[-1])}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    s = sub.add_parser("search")
    s.add_argument("--max-iter", type=int, default=20)
    o = sub.add_parser("ooc")
    o.add_argument("--rows", type=int, default=2_000_000)
    o.add_argument("--in-memory-rows", type=int, default=200_000)
    o.add_argument("--features", type=int, default=784)
    o.add_argument("--hidden", type=int, default=256, help="hidden layer width")
    o.add_argument("--components", type=int, default=32, help="code size")
    o.add_argument("--chunk-size", type=int, default=10_000)
    o.add_argument("--shuffle-window", type=int, default=10)
    o.add_argument("--dir", default=None, help="where to write the memmap (default: tmp)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    search(args) if args.what == "search" else ooc(args)


if __name__ == "__main__":
    main()

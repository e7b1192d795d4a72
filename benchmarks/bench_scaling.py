"""How skae's cost grows: fit time against n_samples and width, and inference rows/s.

Each fit runs a fixed number of epochs (``tol=None``) so times compare across
sizes. Numbers depend on the machine; the shape of the curves is the point.

Usage::

    python benchmarks/bench_scaling.py                       # 1e3 .. 1e6 rows, CPU
    python benchmarks/bench_scaling.py --max-rows 100000 --device cuda
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _harness import table_header, table_row, timed

from skae import AutoEncoder


def fit_seconds(X, hidden, epochs, device):
    """Seconds of one fit of a code-16 AutoEncoder, and the fitted model."""
    model = AutoEncoder(
        n_components=16,
        hidden_layer_sizes=hidden,
        max_iter=epochs,
        tol=None,
        random_state=0,
        device=device,
    )
    model, seconds = timed(model.fit, X)
    return seconds, model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--max-rows", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    print(f"device={args.device}, torch {torch.__version__}, threads={torch.get_num_threads()}")
    rng = np.random.default_rng(0)
    X_all = rng.random((args.max_rows, args.features), dtype=np.float32)
    fit_seconds(X_all[:2048], (64,), 1, args.device)  # warm-up

    print(
        f"\nFit time against n_samples ({args.features} features, hidden 64, code 16, "
        f"{args.epochs} epochs, batch 256)"
    )
    print(table_header(["n_samples", "fit (s)", "samples/s"], "rrr"))
    n = 1000
    while n <= args.max_rows:
        seconds, _ = fit_seconds(X_all[:n], (64,), args.epochs, args.device)
        print(
            table_row([f"{n:,}", f"{seconds:.2f}", f"{n * args.epochs / seconds:,.0f}"]), flush=True
        )
        n *= 10

    n = min(100_000, args.max_rows)
    print(f"\nFit time against width ({n:,} rows, one hidden layer, {args.epochs} epochs)")
    print(table_header(["hidden units", "fit (s)", "samples/s"], "rrr"))
    for width in (16, 64, 256, 1024):
        seconds, _ = fit_seconds(X_all[:n], (width,), args.epochs, args.device)
        print(table_row([width, f"{seconds:.2f}", f"{n * args.epochs / seconds:,.0f}"]), flush=True)

    print("\nInference rows/s (hidden 64, code 16)")
    print(table_header(["method", "rows", "seconds", "rows/s"], "lrrr"))
    _, model = fit_seconds(X_all[:10_000], (64,), 1, args.device)
    for method in ("transform", "score_samples"):
        seconds = timed(getattr(model, method), X_all)[1]
        print(
            table_row([method, f"{len(X_all):,}", f"{seconds:.2f}", f"{len(X_all) / seconds:,.0f}"])
        )


if __name__ == "__main__":
    main()

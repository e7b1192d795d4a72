"""Dead code units of the default SparseAutoEncoder on MinMax-scaled digits.

A check of issue 20 ("Defaults that learn"): scikit-learn's ``load_digits``
(1,797 images of 8x8 pixels) scaled to [0, 1] by ``MinMaxScaler``, one
``SparseAutoEncoder(n_components, sparsity=...)`` per code size, sparsity kind
and seed, nothing else set but ``random_state`` and ``device="cpu"`` (``k`` is
``min(4, n_components)`` with ``"topk"``). For each fit it prints the dead
units (``"l1"``, ``"topk"``: 0 on every row; ``"kl"``: standard deviation over
the rows below 1e-3), the fraction of exact zeros in the codes, the
reconstruction MSE of the training rows, the 3-fold cross-validated accuracy
of a ``LogisticRegression`` on the codes, the epochs, the fit time and the
warnings the fit raised; then PCA's MSE and accuracy at each code size.

Usage::

    PYTHONPATH=. python benchmarks/bench_sparse_dead_units.py --sizes 2 4 8 16 32 --seeds 0 1 2
    PYTHONPATH=. python benchmarks/bench_sparse_dead_units.py --sizes 4 16 --sparsity kl topk
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import torch
from _harness import markdown_table
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.preprocessing import MinMaxScaler

from skae import SparseAutoEncoder


def accuracy(Z, y):
    return cross_val_score(LogisticRegression(max_iter=1000), Z, y, cv=3).mean()


def fit_row(X, y, n_components, sparsity, seed):
    params = dict(sparsity=sparsity, random_state=seed, device="cpu")
    if sparsity == "topk":
        params["k"] = min(4, n_components)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model = SparseAutoEncoder(n_components, **params).fit(X)
    seconds = time.perf_counter() - start
    Z = model.transform(X)
    dead = (Z.std(axis=0) < 1e-3) if sparsity == "kl" else (Z == 0).all(axis=0)
    mse = float(np.mean((model.inverse_transform(Z) - X) ** 2))
    raised = sorted({type(w.message).__name__ for w in record}) or ["-"]
    return [
        sparsity,
        n_components,
        seed,
        int(dead.sum()),
        f"{(Z == 0).mean():.2f}",
        f"{mse:.4f}",
        f"{accuracy(Z, y):.3f}",
        model.n_iter_,
        f"{seconds:.0f}",
        ", ".join(raised),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4])
    parser.add_argument("--sparsity", nargs="+", default=["l1"], choices=["l1", "kl", "topk"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    X, y = load_digits(return_X_y=True)
    X = MinMaxScaler().fit_transform(X)
    print(f"torch {torch.__version__}, {args.threads} thread(s), command: {' '.join(sys.argv)}")
    rows = [
        fit_row(X, y, n, sparsity, seed)
        for sparsity in args.sparsity
        for n in args.sizes
        for seed in args.seeds
    ]
    columns = ["sparsity", "units", "seed", "dead", "exact zeros", "MSE", "accuracy"]
    print(markdown_table([*columns, "epochs", "fit (s)", "warnings"], rows))
    pca_rows = []
    for n in args.sizes:
        pca = PCA(n).fit(X)
        Z = pca.transform(X)
        mse = float(np.mean((pca.inverse_transform(Z) - X) ** 2))
        pca_rows.append([n, f"{mse:.4f}", f"{accuracy(Z, y):.3f}"])
    print()
    print(markdown_table(["PCA components", "MSE", "accuracy"], pca_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

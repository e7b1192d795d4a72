"""Sparse codes of MNIST digits: SparseAutoEncoder's three options against
AutoEncoder and PCA at the same code size.

For each model the script prints, on the 2k test images (pixels in [0, 1]):
the fraction of exact zeros in the codes, the fraction of entries below 1e-3 in
magnitude, the number of dead code units (0 on every training image), the
reconstruction MSE, and the test accuracy of a ``LogisticRegression`` (after
``StandardScaler``) trained on the codes of the 8k training images.

All autoencoders are the classic one-layer kind (``hidden_layer_sizes=()``:
784 -> 128 code -> 784), with the same seed, batch size and epochs.

Usage::

    PYTHONPATH=. python benchmarks/bench_sparse_mnist.py
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _harness import MNIST, data_missing, load_mnist, mnist_training, table_header, table_row
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoEncoder, SparseAutoEncoder

N_COMPONENTS = 128


def models(epochs):
    common = dict(hidden_layer_sizes=(), **mnist_training(epochs))
    return {
        "PCA": PCA(N_COMPONENTS, random_state=0),
        "AutoEncoder": AutoEncoder(N_COMPONENTS, **common),
        "Sparse l1 (weight 0.1)": SparseAutoEncoder(
            N_COMPONENTS, sparsity="l1", sparsity_weight=0.1, **common
        ),
        "Sparse kl (weight 1e-1, target 0.05)": SparseAutoEncoder(
            N_COMPONENTS, sparsity="kl", sparsity_weight=1e-1, sparsity_target=0.05, **common
        ),
        "Sparse topk (k=20)": SparseAutoEncoder(N_COMPONENTS, sparsity="topk", k=20, **common),
    }


def evaluate(model, X_train, y_train, X_test, y_test):
    Z_train = model.fit_transform(X_train)
    Z_test = model.transform(X_test)
    mse = float(np.mean((model.inverse_transform(Z_test) - X_test) ** 2))
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    accuracy = clf.fit(Z_train, y_train).score(Z_test, y_test)
    dead = int((Z_train == 0).all(axis=0).sum())
    return (Z_test == 0).mean(), (np.abs(Z_test) < 1e-3).mean(), dead, mse, accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args(argv)
    if data_missing(MNIST):
        return 0
    start = time.perf_counter()
    data = load_mnist()
    print(
        table_header(
            [
                "model",
                "exact zeros",
                "abs < 1e-3",
                "dead units",
                "test MSE",
                "LogisticRegression accuracy",
            ]
        )
    )
    for name, model in models(args.epochs).items():
        zeros, small, dead, mse, accuracy = evaluate(model, *data)
        cells = [name, f"{zeros:.1%}", f"{small:.1%}", str(dead), f"{mse:.4f}", f"{accuracy:.3f}"]
        print(table_row(cells), flush=True)
    wall = time.perf_counter() - start
    print(f"\nwall time: {wall:.0f} s ({args.epochs} epochs per autoencoder)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

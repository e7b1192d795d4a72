"""The default RecurrentAutoEncoder, nothing set but the seed and the device.

Two checks of issue 20 ("Defaults that learn"), on ECG5000
(``../shared/data/ecg5000_train500.npz``, class 1 normal, every other class
an anomaly): for each seed, train on 200 random normal beats and score the
other normal beats and every anomalous beat; and the protocol of
``bench_ecg5000.py`` (train on a random 60% of the normal beats, 175 beats).
It prints ROC-AUC of ``-score_samples``, epochs, the final training loss, the
fit time and the warnings the fit raised. Then the same default model on a
synthetic set that no benchmark tuned anything on: 300 noisy sine waves of 60
steps with random amplitude, frequency and phase (200 to train, 100 held out),
its held-out reconstruction error against PCA(8) of the series and against
the mean predictor.

Usage::

    PYTHONPATH=. python benchmarks/bench_recurrent_defaults.py --seeds 0 1
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import torch
from _harness import ECG5000, data_missing, sine_waves
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score

from skae import RecurrentAutoEncoder


def fit(X, seed):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        start = time.perf_counter()
        model = RecurrentAutoEncoder(random_state=seed, device="cpu").fit(X)
        seconds = time.perf_counter() - start
    names = sorted({w.category.__name__ for w in record}) or ["-"]
    return model, seconds, ", ".join(names)


def ecg(seeds):
    if data_missing(ECG5000):
        return
    data = np.load(ECG5000)
    X, is_anomaly = data["x"], data["y"] != 1
    for protocol in ("200 normal beats", "60% of the normal beats"):
        for seed in seeds:
            normal = np.random.RandomState(seed).permutation(np.flatnonzero(~is_anomaly))
            n_train = 200 if protocol.startswith("200") else int(round(0.6 * len(normal)))
            train = normal[:n_train]
            test = np.concatenate([normal[n_train:], np.flatnonzero(is_anomaly)])
            model, seconds, warned = fit(X[train], seed)
            auc = roc_auc_score(is_anomaly[test], -model.score_samples(X[test]))
            print(
                f"ECG5000, {protocol} ({n_train}), seed {seed}: ROC-AUC {auc:.3f}, "
                f"{model.n_iter_} epochs, loss {model.loss_curve_[-1]:.4f}, "
                f"{seconds:.0f} s, warnings: {warned}",
                flush=True,
            )


def sines(seeds):
    X = sine_waves()
    X_train, X_test = X[:200], X[200:]
    pca = PCA(8).fit(X_train)
    pca_mse = np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2)
    mean_mse = np.mean((X_test - X_train.mean(axis=0)) ** 2)
    for seed in seeds:
        model, seconds, warned = fit(X_train, seed)
        mse = np.mean((model.inverse_transform(model.transform(X_test)) - X_test) ** 2)
        print(
            f"sines, seed {seed}: model / PCA {mse / pca_mse:.2f}, model / mean "
            f"{mse / mean_mse:.2f}, {model.n_iter_} epochs, {seconds:.0f} s, warnings: {warned}",
            flush=True,
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, seeds {args.seeds}")
    ecg(args.seeds)
    sines(args.seeds)


if __name__ == "__main__":
    sys.exit(main())

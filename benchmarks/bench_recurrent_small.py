"""Why the default RecurrentAutoEncoder trails PCA on small sets: development data only.

Issue 20: on public UCR/UEA sets with 12 to 50 training series a class
(``bench_sequence_sets.py``), the default ``RecurrentAutoEncoder()`` ranks
anomalies worse than the reconstruction error of ``PCA(8)``. This script looks
for the reason on the project's development data only, at those sizes:

* ECG5000 (``../shared/data/ecg5000_train500.npz``): for class 1 (normal) and
  class 2 (R-on-T PVC), train on ``n`` random beats of the class and score
  every other beat; a beat of another class is an anomaly;
* synthetic noisy sines (as ``bench_recurrent_defaults.py``): train on ``n``
  series, reconstruct 100 held-out ones.

For each fit it prints the training error and the held-out error of the
class's own rows, both divided by PCA's (``PCA(min(8, n - 1))``, the same
rows), the ROC-AUC of model and PCA (ECG only), the epochs run and the final
loss, so that a shortfall can be told apart as underfitting (training error
above PCA's) or as a generalisation gap (training error low, held-out error
high). ``best code`` is the held-out error when each held-out row's code is
not the encoder's but found by gradient descent through the frozen decoder
(Adam, 300 steps from the encoder's code), divided by PCA's: when it is far
below the encoder's error, the decoder could draw the unseen rows and it is
the encoder that maps them to poor codes. ``--variants`` names settings that
each test one explanation; none of them is a proposed default by itself.
``stem``, ``stem-bidirectional`` and ``stem-maxpool`` give the encoder a
front end of two strided convolutions (:class:`ConvStemRecurrent`, a network
defined here with skae's own-architecture protocol); ``--no-best-code`` skips
the slow last column.

Usage::

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/bench_recurrent_small.py \\
        --sizes 12 50 --seeds 0 1 --variants default long bidirectional
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from _harness import ECG5000, data_missing, sine_waves
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from torch import nn

from skae import AutoEncoder, RecurrentAutoEncoder
from skae._modules import RecurrentSeq2Seq
from skae.architectures import Recurrent


class _StemSeq2Seq(RecurrentSeq2Seq):
    """``RecurrentSeq2Seq`` whose encoder reads the output of two strided convolutions.

    Each convolution (kernel 5, stride 2, 32 channels, ReLU) halves the
    length, so the recurrent encoder reads a quarter of the steps; with
    ``max_pool`` the code also sees the maximum of the encoder's states over
    time. The decoder is the default one (code and clock at every step).
    """

    def __init__(self, n_features, n_components, hidden_size, bidirectional, max_pool):
        super().__init__(
            n_features, n_components, "lstm", hidden_size, 1, bidirectional, time_encoding=10
        )
        self.stem = nn.Sequential(
            nn.Conv1d(n_features, 32, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv1d(32, 32, 5, stride=2, padding=2),
            nn.ReLU(),
        )
        self.max_pool = max_pool
        self.encoder = nn.LSTM(32, hidden_size, batch_first=True, bidirectional=bidirectional)
        width = self.n_directions * hidden_size * (2 if max_pool else 1)
        self.to_code = nn.Linear(width, n_components)

    def encode(self, x, lengths=None):
        # Fixed-length series only (these problems have no padding).
        states, (h, _) = self.encoder(self.stem(x.transpose(1, 2)).transpose(1, 2))
        code = h[-self.n_directions :].transpose(0, 1).flatten(1)
        if self.max_pool:
            code = torch.cat([code, states.max(dim=1).values], dim=1)
        return self.to_code(code)


class ConvStemRecurrent(Recurrent):
    """``Recurrent()`` (LSTM, 64 units, clock) with a strided convolutional front end."""

    def __init__(self, bidirectional=False, max_pool=False):
        super().__init__(bidirectional=bidirectional)
        self.max_pool = max_pool

    def build(self, input_shape, n_components, n_outputs):
        return _StemSeq2Seq(
            input_shape[-1], n_components, self.hidden_size, self.bidirectional, self.max_pool
        )


# Each variant tests one explanation of the shortfall.
VARIANTS = {
    "default": {},
    # Too few optimizer steps: 12 rows in batches of 8 are 2 steps an epoch.
    "long": {"max_iter": 1000, "tol": None},
    # The code forgets the start of long series: read them both ways.
    "bidirectional": {"bidirectional": True},
    # Too many parameters for a few series: a smaller state.
    "small": {"hidden_size": 16},
    # Larger steps in the same budget.
    "lr3e-3": {"learning_rate_init": 3e-3},
    # A shorter sequence for the encoder: convolutions summarise local shape.
    "stem": {"architecture": ConvStemRecurrent()},
    "stem-bidirectional": {"architecture": ConvStemRecurrent(bidirectional=True)},
    "stem-maxpool": {"architecture": ConvStemRecurrent(max_pool=True)},
}


def mse_rows(model, X):
    """Mean squared reconstruction error of each row of a 2-D ``X``."""
    return np.mean((model.inverse_transform(model.transform(X)) - X) ** 2, axis=1)


def fit_pair(X_train, variant, seed):
    """The recurrent model of ``variant`` and PCA, fitted on ``X_train``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        settings = dict(VARIANTS[variant])
        if "architecture" in settings:
            model = AutoEncoder(8, random_state=seed, device="cpu", **settings)
        else:
            model = RecurrentAutoEncoder(random_state=seed, device="cpu", **settings)
        model.fit(X_train)
        seconds = time.perf_counter() - start
    pca = PCA(min(8, len(X_train) - 1), random_state=seed).fit(X_train)
    return model, pca, seconds


def best_code_mse(model, X, steps=300):
    """Mean squared error of 2-D ``X`` decoded from codes fitted through the frozen decoder."""
    module = model.module_
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    target = torch.as_tensor(X[:, :, None], dtype=torch.float32)
    z = torch.as_tensor(model.transform(X), dtype=torch.float32).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = ((module.decode(z, X.shape[1]) - target) ** 2).mean()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return ((module.decode(z, X.shape[1]) - target) ** 2).mean().item()


def line(problem, variant, model, pca, seconds, X_train, X_held, best_code, auc=""):
    pca_held = mse_rows(pca, X_held).mean()
    train = mse_rows(model, X_train).mean() / mse_rows(pca, X_train).mean()
    held = mse_rows(model, X_held).mean() / pca_held
    best = best_code_mse(model, X_held) / pca_held if best_code else float("nan")
    print(
        f"{problem:28s} {variant:14s} train/PCA {train:7.2f}  held-out/PCA {held:5.2f}  "
        f"best code {best:5.2f}  {auc}epochs {model.n_iter_:4d}  "
        f"loss {model.loss_curve_[-1]:.4f}  {seconds:5.0f} s",
        flush=True,
    )


def ecg(sizes, seeds, variants, best_code):
    if data_missing(ECG5000):
        return
    data = np.load(ECG5000)
    X, y = data["x"].astype(np.float32), data["y"]
    for label in (1, 2):
        for n in sizes:
            for seed in seeds:
                rows = np.random.RandomState(seed).permutation(np.flatnonzero(y == label))
                train = rows[:n]
                test = np.setdiff1d(np.arange(len(X)), train)
                held = rows[n:]
                for variant in variants:
                    model, pca, seconds = fit_pair(X[train], variant, seed)
                    auc_model = roc_auc_score(y[test] != label, -model.score_samples(X[test]))
                    auc_pca = roc_auc_score(y[test] != label, mse_rows(pca, X[test]))
                    auc = f"ROC-AUC {auc_model:.3f} (PCA {auc_pca:.3f})  "
                    problem = f"ECG class {label}, n={n}, seed {seed}"
                    line(problem, variant, model, pca, seconds, X[train], X[held], best_code, auc)


def sines(sizes, seeds, variants, best_code):
    X = sine_waves().astype(np.float32)
    X_held = X[200:]
    for n in sizes:
        for seed in seeds:
            X_train = X[np.random.RandomState(seed).permutation(200)[:n]]
            for variant in variants:
                model, pca, seconds = fit_pair(X_train, variant, seed)
                problem = f"sines, n={n}, seed {seed}"
                line(problem, variant, model, pca, seconds, X_train, X_held, best_code)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[12, 50])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=["default"])
    parser.add_argument("--data", nargs="+", choices=["ecg", "sines"], default=["ecg", "sines"])
    parser.add_argument(
        "--no-best-code", action="store_true", help="skip the slow best-code column"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread; sizes {args.sizes}, seeds {args.seeds}")
    if "ecg" in args.data:
        ecg(args.sizes, args.seeds, args.variants, not args.no_best_code)
    if "sines" in args.data:
        sines(args.sizes, args.seeds, args.variants, not args.no_best_code)


if __name__ == "__main__":
    main()

"""Defaults study: every skae family with its defaults, across data sizes and kinds.

Each cell fits one family with its defaults only: the script sets
``random_state``, ``device="cpu"`` and, where the data kind needs one, the
architecture (itself with its defaults). Nothing else is set and nothing is
tuned per data set. For every cell it reports, on held-out rows of the same
source:

* the reconstruction error (MSE over all held-out values) of the model,
  ``inverse_transform(transform(X))`` (the mean code for the VAE);
* the error of PCA at the same code size (``n_components=8``, the family
  default, or fewer when the data has fewer features), fitted on the same
  training rows; ``TruncatedSVD`` for sparse text; the ratio model / PCA;
* the mean predictor's error (every value predicted by its training mean):
  a model near it has "learned nothing";
* epochs run (``n_iter_``), optimizer steps (``n_iter_ * ceil(n_train /
  rows per batch)``, with the batch the fit used), fit time, and the
  categories of the warnings the fit raised.

Kinds and sources (data files from ``../shared/data``; a kind whose file is
absent is skipped with a message):

* ``tables``: scikit-learn's digits (pixels / 16), breast cancer
  (standardised with the training pool's mean and std), and two synthetic
  sets of 12,500 rows: ``lowrank`` (64 features, rank 16 with a decaying
  spectrum, plus noise) and ``swissroll`` (a swiss roll lifted to 32 features
  by a fixed random ``tanh`` layer, plus noise). Dense MLP (the default).
  A size above the 10,000 training rows those sets leave (e.g. 100,000 or
  1,000,000, with ``--max-rows`` raised) gets a synthetic set of its own,
  drawn by the same recipe and seed with just enough rows that the split
  below leaves that many training rows (so its test set is 20% of its rows);
  it is a different draw, not an extension of the 12,500 rows, and sizes up
  to 10,000 are unchanged. The real sources stay at the rows they have.
* ``images``: MNIST, the harness's 8000/2000 split, as (n, 28, 28) arrays,
  with ``Convolutional2D()``.
* ``signals``: ECG5000 beats (500 x 140, all classes) as (n, 140) signals
  with ``Convolutional1D()``.
* ``sequences``: the same beats as univariate sequences for
  ``RecurrentAutoEncoder``; PCA on the 140-step series.
* ``ragged``: each beat cropped to a random window of 70 to 140 steps (seeded),
  a list of 1-D arrays for ``RecurrentAutoEncoder``. PCA (and the mean
  predictor) work on the series resampled to 140 steps by linear
  interpolation; their reconstructions are resampled back to each series'
  own length, and every error is over the real steps only.
* ``text``: SMS Spam TF-IDF (``TfidfVectorizer(sublinear_tf=True,
  min_df=2)`` fitted on the training pool), sparse input to the default MLP;
  ``TruncatedSVD`` as the PCA counterpart.

Split: each source is shuffled with ``--seed``; the test set is 20% of the
rows or at least 200 (MNIST: the harness's 2000 test images), and the training
rows of size n are the first n of the rest, so smaller sets nest in larger
ones. A size is run only where the source has that many training rows.

Usage (from the project root)::

    PYTHONPATH=. python benchmarks/bench_defaults.py      # modest default run
    PYTHONPATH=. python benchmarks/bench_defaults.py --kinds tables text --sizes 50 200
    # the full study (hours on a 2-core CPU):
    PYTHONPATH=. python benchmarks/bench_defaults.py --kinds all --families all \\
        --sizes 50 200 1000 10000 --max-rows 10000
    # large synthetic tables (lowrank, swissroll only):
    PYTHONPATH=. python benchmarks/bench_defaults.py --kinds tables --families all \\
        --sizes 100000 1000000 --max-rows 1000000
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
import warnings
from collections import Counter

import numpy as np
import torch
from _harness import (
    ECG5000,
    MNIST,
    SMS_SPAM,
    data_missing,
    load_mnist,
    table_header,
    table_row,
    timed,
)
from scipy import sparse
from sklearn.datasets import load_breast_cancer, load_digits, make_swiss_roll
from sklearn.decomposition import PCA, TruncatedSVD

from skae import (
    AutoEncoder,
    DenoisingAutoEncoder,
    RecurrentAutoEncoder,
    SparseAutoEncoder,
    VariationalAutoEncoder,
)
from skae.architectures import Convolutional1D, Convolutional2D

KINDS = ("tables", "images", "signals", "sequences", "ragged", "text")
FAMILIES = ("ae", "dae", "sae", "vae", "rae")
FAMILY_CLASSES = {
    "ae": AutoEncoder,
    "dae": DenoisingAutoEncoder,
    "sae": SparseAutoEncoder,
    "vae": VariationalAutoEncoder,
    "rae": RecurrentAutoEncoder,
}
# Which families each kind fits, and the architecture it needs (None: the default MLP).
KIND_FAMILIES = {
    "tables": ("ae", "dae", "sae", "vae"),
    "images": ("ae", "dae", "sae", "vae"),
    "signals": ("ae", "dae", "sae", "vae"),
    "sequences": ("rae",),
    "ragged": ("rae",),
    "text": ("ae", "dae", "sae", "vae"),
}
KIND_ARCHITECTURE = {"images": Convolutional2D, "signals": Convolutional1D}
CODE_SIZE = 8  # the families' default n_components
RAGGED_LENGTHS = (70, 140)
COLUMNS = [
    "source",
    "family",
    "train rows",
    "test rows",
    "model MSE",
    "PCA MSE",
    "model / PCA",
    "mean-predictor MSE",
    "model / mean",
    "epochs",
    "steps",
    "fit (s)",
    "warnings",
]
ALIGN = "lllrrrrrrrrrl"
LEARNED_NOTHING = 0.9  # model MSE >= this x the mean predictor's


# ------------------------------------------------------------------- data


def n_test_of(n_rows):
    return max(200, int(round(0.2 * n_rows)))


def split(n_rows, seed):
    """Shuffled indices: (training pool, test), test = 20% or at least 200 rows."""
    order = np.random.RandomState(seed).permutation(n_rows)
    n_test = n_test_of(n_rows)
    return order[n_test:], order[:n_test]


def rows_for(n_train):
    """The fewest rows whose split leaves ``n_train`` training rows."""
    n_rows = math.ceil(n_train / 0.8)
    while n_rows - n_test_of(n_rows) < n_train:
        n_rows += 1
    return n_rows


def lowrank(seed, n_rows=12_500, n_features=64, rank=16, noise=0.1):
    rng = np.random.RandomState(seed)
    scales = 1.0 / np.arange(1, rank + 1)  # decaying spectrum: PCA(8) leaves some signal
    Z = rng.standard_normal((n_rows, rank)) * scales
    W = np.linalg.qr(rng.standard_normal((n_features, rank)))[0].T
    return (Z @ W * 4 + noise * rng.standard_normal((n_rows, n_features)) / 4).astype(np.float32)


def swissroll(seed, n_rows=12_500, n_features=32, noise=0.05):
    rng = np.random.RandomState(seed)
    S, _ = make_swiss_roll(n_rows, noise=0.0, random_state=seed)
    S = (S - S.mean(0)) / S.std(0)
    W = rng.standard_normal((3, n_features))
    X = np.tanh(S @ W) + noise * rng.standard_normal((n_rows, n_features))
    return X.astype(np.float32)


SYNTHETIC_ROWS = 12_500  # the synthetic tables' rows for sizes up to their pool (10,000)


def table_sources(seed, sizes=()):
    """(name, X_pool, X_test) of each table source.

    A synthetic source gets one more entry per size in ``sizes`` above the
    pool of its ``SYNTHETIC_ROWS`` rows: a set of ``rows_for(size)`` rows drawn
    by the same recipe, as (name, X_pool, X_test, [size]), run at that size only.
    """
    sources = []
    X = (load_digits().data / 16).astype(np.float32)
    pool, test = split(len(X), seed)
    sources.append(("digits", X[pool], X[test]))
    X = load_breast_cancer().data
    pool, test = split(len(X), seed)
    mean, std = X[pool].mean(0), X[pool].std(0)
    X = ((X - mean) / std).astype(np.float32)
    sources.append(("breast_cancer", X[pool], X[test]))
    n_base = SYNTHETIC_ROWS - n_test_of(SYNTHETIC_ROWS)
    for name, make in (("lowrank", lowrank), ("swissroll", swissroll)):
        X = make(seed, n_rows=SYNTHETIC_ROWS)
        pool, test = split(len(X), seed)
        sources.append((name, X[pool], X[test]))
        for size in sorted(s for s in sizes if s > n_base):
            X = make(seed, n_rows=rows_for(size))
            pool, test = split(len(X), seed)
            sources.append((name, X[pool], X[test], [size]))
    return sources


def ecg(seed):
    X = np.load(ECG5000)["x"].astype(np.float32)
    pool, test = split(len(X), seed)
    return X[pool], X[test]


def crop(X, seed):
    """Each row cropped to a random window of RAGGED_LENGTHS steps: a list of 1-D arrays."""
    rng = np.random.RandomState(seed)
    out = []
    for x in X:
        length = rng.randint(RAGGED_LENGTHS[0], min(RAGGED_LENGTHS[1], len(x)) + 1)
        start = rng.randint(0, len(x) - length + 1)
        out.append(np.ascontiguousarray(x[start : start + length]))
    return out


def sms(seed):
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer

    d = pd.read_csv(SMS_SPAM, sep="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
    texts = np.asarray(d["text"].tolist(), dtype=object)
    pool, test = split(len(texts), seed)
    vec = TfidfVectorizer(sublinear_tf=True, min_df=2, dtype=np.float32).fit(texts[pool])
    return vec.transform(texts[pool]).tocsr(), vec.transform(texts[test]).tocsr()


def sources_of(kind, seed, sizes=()):
    """(name, X_pool, X_test) of each source of ``kind``, or None when its data is absent.

    An entry may carry a fourth item, the only sizes it runs (see ``table_sources``).
    """
    if kind == "tables":
        return table_sources(seed, sizes)
    if kind == "images":
        if data_missing(MNIST):
            return None
        X_train, _, X_test, _ = load_mnist(flat=False)
        order = np.random.RandomState(seed).permutation(len(X_train))
        return [("mnist", X_train[order], X_test)]
    if kind in ("signals", "sequences", "ragged"):
        if data_missing(ECG5000):
            return None
        X_pool, X_test = ecg(seed)
        if kind == "ragged":
            return [("ecg5000 cropped", crop(X_pool, seed), crop(X_test, seed + 1))]
        return [("ecg5000", X_pool, X_test)]
    if kind == "text":
        if data_missing(SMS_SPAM):
            return None
        return [("sms tf-idf", *sms(seed))]
    raise ValueError(kind)


# ------------------------------------------------------------ reconstructions


def resample(x, length):
    """A 1-D series linearly interpolated to ``length`` points over the same span."""
    return np.interp(np.linspace(0, 1, length), np.linspace(0, 1, len(x)), x)


def squared_errors(X, R):
    """All squared errors, flat; lists are compared series by series."""
    if isinstance(X, list):
        return np.concatenate(
            # Both sides flat: a (n_i, 1) reconstruction of a (n_i,) series.
            [(np.ravel(r).astype(np.float64) - np.ravel(x)) ** 2 for x, r in zip(X, R, strict=True)]
        )
    if sparse.issparse(X):
        X = X.toarray()
    return ((np.asarray(R, np.float64) - X) ** 2).ravel()


def baselines(X_train, X_test, seed):
    """(PCA MSE, mean-predictor MSE, code size of the PCA) on the held-out rows."""
    if isinstance(X_train, list):  # ragged: on series resampled to the longest length
        length = RAGGED_LENGTHS[1]
        A = np.stack([resample(x, length) for x in X_train])
        B = np.stack([resample(x, length) for x in X_test])
        k = min(CODE_SIZE, *A.shape)
        pca = PCA(k, random_state=seed).fit(A)
        R = pca.inverse_transform(pca.transform(B))
        R_pca = [resample(r, len(x)) for r, x in zip(R, X_test, strict=True)]
        R_mean = [resample(A.mean(0), len(x)) for x in X_test]
        return squared_errors(X_test, R_pca).mean(), squared_errors(X_test, R_mean).mean(), k
    if sparse.issparse(X_train):
        A, B = X_train, X_test
    else:
        A, B = X_train.reshape(X_train.shape[0], -1), X_test.reshape(X_test.shape[0], -1)
    k = min(CODE_SIZE, *A.shape)
    if sparse.issparse(A):
        svd = TruncatedSVD(k, random_state=seed).fit(A)
        R = svd.inverse_transform(svd.transform(B))
        mean = np.asarray(A.mean(0))
    else:
        pca = PCA(k, random_state=seed).fit(A)
        R = pca.inverse_transform(pca.transform(B))
        mean = A.mean(0, keepdims=True)
    R_mean = np.broadcast_to(mean, B.shape)
    return squared_errors(B, R).mean(), squared_errors(B, R_mean).mean(), k


def model_mse(model, X_test):
    codes = model.transform(X_test)
    if isinstance(X_test, list):
        R = model.inverse_transform(codes, n_timesteps=np.array([len(x) for x in X_test]))
    else:
        R = model.inverse_transform(codes)
    return squared_errors(X_test, R).mean()


def make_model(family, kind, seed):
    params = dict(random_state=seed, device="cpu")
    if kind in KIND_ARCHITECTURE:
        params["architecture"] = KIND_ARCHITECTURE[kind]()
    return FAMILY_CLASSES[family](**params)


def fit_recorded(model, X):
    """Fit ``model``; its seconds and the (category name, message) of each warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, seconds = timed(model.fit, X)
    return seconds, [(w.category.__name__, " ".join(str(w.message).split())) for w in caught]


def warning_cell(counts):
    if not counts:
        return "-"
    return ", ".join(name + (f" x{n}" if n > 1 else "") for name, n in sorted(counts.items()))


def fmt(value):
    return f"{value:.4g}"


# ------------------------------------------------------------------- main


def run_kind(kind, families, sizes, seed):
    """Print the kind's table row by row; return its summary counts."""
    sources = sources_of(kind, seed, sizes)
    if sources is None:
        return None
    families = [f for f in KIND_FAMILIES[kind] if f in families]
    if not families:
        print(f"skipped: no family of {list(families)} fits the kind {kind}")
        return None
    arch = KIND_ARCHITECTURE.get(kind)
    if arch:
        arch_text = f"architecture={arch.__name__}()"
    elif kind in ("sequences", "ragged"):
        arch_text = "RecurrentAutoEncoder's own LSTM"
    else:
        arch_text = "the default MLP"
    print(f"\n### {kind} ({arch_text})\n", flush=True)
    print(table_header(COLUMNS, ALIGN), flush=True)
    counts, messages = Counter(), Counter()
    for name, X_pool, X_test, *only in sources:
        n_pool = len(X_pool) if isinstance(X_pool, list) else X_pool.shape[0]
        own_sizes = only[0] if only else sizes
        for n in [s for s in sizes if s <= n_pool and s in own_sizes]:
            X_train = X_pool[:n]
            pca_mse, mean_mse, k = baselines(X_train, X_test, seed)
            for family in families:
                model = make_model(family, kind, seed)
                seconds, raised = fit_recorded(model, X_train)
                caught = Counter(category for category, _ in raised)
                messages.update(set(raised))
                mse = model_mse(model, X_test)
                steps = model.n_iter_ * math.ceil(n / model.net_.batch_size)
                counts["cells"] += 1
                counts["worse than PCA"] += mse > pca_mse
                counts["learned nothing"] += mse >= LEARNED_NOTHING * mean_mse
                counts["ConvergenceWarning"] += "ConvergenceWarning" in caught
                n_test = len(X_test) if isinstance(X_test, list) else X_test.shape[0]
                pca_name = "SVD" if sparse.issparse(X_train) else "PCA"
                row = [
                    name,
                    FAMILY_CLASSES[family].__name__,
                    f"{n:,}",
                    f"{n_test:,}",
                    fmt(mse),
                    fmt(pca_mse) + (f" ({pca_name} {k})" if k != CODE_SIZE else ""),
                    f"{mse / pca_mse:.2f}",
                    fmt(mean_mse),
                    f"{mse / mean_mse:.2f}",
                    model.n_iter_,
                    f"{steps:,}",
                    f"{seconds:.1f}",
                    warning_cell(caught),
                ]
                print(table_row(row), flush=True)
    if messages:
        print(f"\nWarning messages ({kind}; cells that raised each):\n")
        for (category, text), n in sorted(messages.items()):
            text = text.replace("`", "'")
            text = text if len(text) <= 240 else text[:237] + "..."
            print(f"- {category} ({n}): `{text}`")
    print(
        f"\nSummary ({kind}): {counts['cells']} cells; default worse than PCA in "
        f"{counts['worse than PCA']}; learned nothing (MSE >= {LEARNED_NOTHING} x mean "
        f"predictor) in {counts['learned nothing']}; ConvergenceWarning in "
        f"{counts['ConvergenceWarning']}.",
        flush=True,
    )
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--kinds",
        nargs="+",
        default=["tables", "signals", "sequences", "ragged", "text"],
        help=f"any of {', '.join(KINDS)}, or all (default: all but images)",
    )
    parser.add_argument(
        "--families",
        nargs="+",
        default=["all"],
        help=f"any of {', '.join(FAMILIES)}, or all",
    )
    parser.add_argument("--sizes", nargs="+", type=int, default=[50, 200, 1000])
    parser.add_argument("--max-rows", type=int, default=10_000, help="cap on training rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args(argv)
    kinds = KINDS if "all" in args.kinds else args.kinds
    families = FAMILIES if "all" in args.families else args.families
    for value, allowed, flag in ((kinds, KINDS, "--kinds"), (families, FAMILIES, "--families")):
        if unknown := sorted(set(value) - set(allowed)):
            parser.error(f"{flag}: unknown {unknown}; choose from {', '.join(allowed)}")
    sizes = sorted({s for s in args.sizes if s <= args.max_rows})
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), seed {args.seed}, "
        f"sizes {sizes}, command: {' '.join(sys.argv)}",
        flush=True,
    )
    start = time.perf_counter()
    total = Counter()
    for kind in kinds:
        counts = run_kind(kind, families, sizes, args.seed)
        if counts:
            total.update(counts)
    print(
        f"\nAll kinds: {total['cells']} cells; default worse than PCA in "
        f"{total['worse than PCA']}; learned nothing in {total['learned nothing']}; "
        f"ConvergenceWarning in {total['ConvergenceWarning']}. "
        f"Wall time {time.perf_counter() - start:.0f} s."
    )


if __name__ == "__main__":
    main()

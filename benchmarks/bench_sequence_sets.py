"""Default sequence networks against PCA on public sequence sets skae does not ship.

A check of issue 20 ("Defaults that learn"): are the default sequence
architectures at least as good as PCA's reconstruction error on sequence data
the project never used? Each set is a UCR/UEA classification set in ``.ts``
format (a ``<Name>_TRAIN.ts`` and a ``<Name>_TEST.ts``); it becomes several
one-class anomaly problems:

* for each class ``c`` (at most ``--max-classes``: the classes with the most
  training rows, ties broken by the order the header lists them), the
  model trains on the TRAIN split's rows of class ``c`` (no labels) and
  scores the whole TEST split; a test row is an anomaly when its class is
  not ``c``;
* ROC-AUC of the anomaly score (``-score_samples`` of each estimator, or
  PCA's reconstruction error), averaged over the classes, then over seeds.

Rows, all with their defaults but ``random_state`` and ``device="cpu"``:

* ``RecurrentAutoEncoder()``, ``AutoEncoder(architecture=Recurrent())``,
  ``AutoEncoder(architecture=PooledSequence())``: 2-D arrays for univariate
  sets of one length, 3-D ``(n, time, dims)`` for multivariate ones, lists of
  ``(time_i, dims)`` arrays for sets of different lengths;
* ``AutoEncoder(architecture=Convolutional1D())`` on ``(n, length)`` or
  channels-first ``(n, dims, length)``; sets of one length only (it reads
  fixed-length signals);
* ``PCA(n_components=min(8, n_train - 1))`` reconstruction error and
  ``IsolationForest()`` on the flattened series (time-major; series of
  different lengths first resampled linearly to the median length of the
  class's training rows).

Two more rows run only when named in ``--models``: encoder variants tried for
the recurrent default, ``bidirectional`` (``Recurrent(bidirectional=True)``)
and ``stem-bidirectional`` (``ConvStemRecurrent`` of
``bench_recurrent_small.py``, sets of one length only).

No preprocessing is added: the series go in as the files give them, as a user
would pass them. skae does not standardise its input (most univariate UCR
sets are z-normalised per series by their authors; BasicMotions,
JapaneseVowels, PickupGestureWiimoteZ and Covid3Month_disc are not).

Getting the data: the ``.ts`` files ship inside the wheels of aeon and
sktime (not dependencies of skae); unzip them anywhere outside the project::

    pip download --no-deps aeon==1.6.0 sktime==1.2.0 -d /tmp/pk
    mkdir -p /tmp/ucr && cd /tmp/ucr
    unzip -q -j /tmp/pk/aeon-1.6.0-py3-none-any.whl 'aeon/datasets/data/*/*.ts'
    unzip -q -j -n /tmp/pk/sktime-1.2.0-py3-none-any.whl 'sktime/datasets/data/*/*.ts'

The script runs every classification set in ``--data-dir`` (a set whose
header says ``@targetLabel``, a regression set, is skipped, as are the
``UnitTest*`` files and the ``*_eq`` copies of ragged sets), or the ones named
with ``--sets``.

Usage::

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/bench_sequence_sets.py --data-dir /tmp/ucr
    PYTHONPATH=. python benchmarks/bench_sequence_sets.py --data-dir /tmp/ucr \\
        --sets GunPoint BasicMotions --seeds 0 --models recurrent pca
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _harness import markdown_table
from bench_recurrent_small import ConvStemRecurrent
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

from skae import AutoEncoder, RecurrentAutoEncoder
from skae.architectures import Convolutional1D, PooledSequence, Recurrent

# ------------------------------------------------------------------- data


def read_ts(path: Path):
    """Read a UCR/UEA ``.ts`` file (no timestamps).

    Returns
    -------
    series : list of ndarray of shape (length_i, n_dims)
    labels : ndarray of str
    header : dict
        The ``@`` lines, keys lower-cased, values as written (the class list
        of ``@classLabel true ...`` under ``"classlabel"``).
    """
    header, series, labels = {}, [], []
    in_data = False
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if line.lower() == "@data":
                in_data = True
                continue
            key, _, value = line[1:].partition(" ")
            header[key.lower()] = value.strip()
            continue
        *dims, label = line.split(":")
        rows = [[float("nan") if v == "?" else float(v) for v in d.split(",")] for d in dims]
        if len({len(r) for r in rows}) != 1:
            raise ValueError(f"{path.name}: dimensions of one case differ in length")
        series.append(np.asarray(rows, dtype=np.float32).T)  # (length, n_dims)
        labels.append(label.strip())
    return series, np.asarray(labels), header


def find_sets(data_dir: Path, names):
    """Names of the classification sets in ``data_dir`` that have both splits."""
    found = []
    for train in sorted(data_dir.glob("*_TRAIN.ts")):
        name = train.name[: -len("_TRAIN.ts")]
        if names and name not in names:
            continue
        if not names and (name.startswith("UnitTest") or name.endswith("_eq")):
            continue
        if not (data_dir / f"{name}_TEST.ts").exists():
            continue
        head = train.read_text()[:4000].lower()
        if "@classlabel true" not in head:
            continue  # a regression set (@targetLabel)
        found.append(name)
    if names:  # in the order asked
        found.sort(key=list(names).index)
    return found


def as_sequences(series):
    """What the sequence estimators read: 2-D, 3-D or a list of 2-D arrays."""
    if len({len(s) for s in series}) > 1:
        return list(series)
    X = np.stack(series)  # (n, time, dims)
    return X[:, :, 0] if X.shape[2] == 1 else X


def as_fixed_sequences(series):
    """As :func:`as_sequences`; None for ragged sets (a network that ignores padding)."""
    return None if len({len(s) for s in series}) > 1 else as_sequences(series)


def as_signals(series):
    """``(n, length)`` or channels-first ``(n, dims, length)``; None for ragged sets."""
    if len({len(s) for s in series}) > 1:
        return None
    X = np.stack(series).transpose(0, 2, 1)  # (n, dims, length)
    return X[:, 0] if X.shape[1] == 1 else X


def flatten(series, length):
    """Time-major flat rows; each series resampled linearly to ``length`` steps."""
    rows = []
    for s in series:
        if len(s) != length:
            old = np.linspace(0.0, 1.0, len(s))
            new = np.linspace(0.0, 1.0, length)
            s = np.stack([np.interp(new, old, s[:, d]) for d in range(s.shape[1])], axis=1)
        rows.append(np.asarray(s, dtype=np.float64).ravel())
    return np.stack(rows)


# ----------------------------------------------------------------- models


def skae_row(make, form):
    def run(train, test, seed):
        X_train, X_test = form(train), form(test)
        if X_train is None:
            return None
        model = make(seed)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            model.fit(X_train)
        warned = sorted({w.category.__name__ for w in record})
        return -model.score_samples(X_test), f"{model.n_iter_} ep {' '.join(warned)}".strip()

    return run


def pca_row(train, test, seed):
    length = int(np.median([len(s) for s in train]))
    F_train, F_test = flatten(train, length), flatten(test, length)
    k = min(8, len(F_train) - 1, F_train.shape[1])
    pca = PCA(n_components=k, random_state=seed).fit(F_train)
    error = np.mean((pca.inverse_transform(pca.transform(F_test)) - F_test) ** 2, axis=1)
    return error, f"k={k}"


def iforest_row(train, test, seed):
    length = int(np.median([len(s) for s in train]))
    F_train, F_test = flatten(train, length), flatten(test, length)
    forest = IsolationForest(random_state=seed).fit(F_train)
    return -forest.score_samples(F_test), ""


def models():
    return {
        "RecurrentAutoEncoder()": skae_row(
            lambda s: RecurrentAutoEncoder(random_state=s, device="cpu"), as_sequences
        ),
        "AutoEncoder(Recurrent())": skae_row(
            lambda s: AutoEncoder(architecture=Recurrent(), random_state=s, device="cpu"),
            as_sequences,
        ),
        "AutoEncoder(Convolutional1D())": skae_row(
            lambda s: AutoEncoder(architecture=Convolutional1D(), random_state=s, device="cpu"),
            as_signals,
        ),
        "AutoEncoder(PooledSequence())": skae_row(
            lambda s: AutoEncoder(architecture=PooledSequence(), random_state=s, device="cpu"),
            as_sequences,
        ),
        # Encoder variants tried for the recurrent default (not defaults):
        "AutoEncoder(Recurrent(bidirectional=True))": skae_row(
            lambda s: AutoEncoder(
                architecture=Recurrent(bidirectional=True), random_state=s, device="cpu"
            ),
            as_sequences,
        ),
        "AutoEncoder(ConvStemRecurrent(bidirectional=True))": skae_row(
            lambda s: AutoEncoder(
                architecture=ConvStemRecurrent(bidirectional=True), random_state=s, device="cpu"
            ),
            as_fixed_sequences,
        ),
        "PCA(8) error, flattened": pca_row,
        "IsolationForest, flattened": iforest_row,
    }


SHORT = {
    "recurrent": "RecurrentAutoEncoder()",
    "ae-recurrent": "AutoEncoder(Recurrent())",
    "conv1d": "AutoEncoder(Convolutional1D())",
    "pooled": "AutoEncoder(PooledSequence())",
    "pca": "PCA(8) error, flattened",
    "iforest": "IsolationForest, flattened",
    "bidirectional": "AutoEncoder(Recurrent(bidirectional=True))",
    "stem-bidirectional": "AutoEncoder(ConvStemRecurrent(bidirectional=True))",
}
# The rows of the check; the others are variants tried for the recurrent default.
CHECK = ["recurrent", "ae-recurrent", "conv1d", "pooled", "pca", "iforest"]


# ------------------------------------------------------------------- runs


def chosen_classes(labels, header, max_classes):
    order = header.get("classlabel", "").split()[1:]
    order += sorted(set(labels) - set(order))
    counts = {c: int(np.sum(labels == c)) for c in order if np.any(labels == c)}
    ranked = sorted(counts, key=lambda c: (-counts[c], order.index(c)))
    return ranked[:max_classes]


def run_set(data_dir, name, rows, seeds, max_classes):
    train, y_train, header = read_ts(data_dir / f"{name}_TRAIN.ts")
    test, y_test, _ = read_ts(data_dir / f"{name}_TEST.ts")
    lengths = sorted({len(s) for s in train + test})
    classes = chosen_classes(y_train, header, max_classes)
    span = f"{lengths[0]}" if len(lengths) == 1 else f"{lengths[0]}-{lengths[-1]}"
    print(
        f"\n## {name}: {len(train)} train / {len(test)} test series, {train[0].shape[1]} dims, "
        f"length {span}, classes {classes} of {len(set(y_train))}",
        flush=True,
    )
    aucs = {row: [] for row in rows}  # one mean over classes per seed
    seconds = dict.fromkeys(rows, 0.0)
    start = time.perf_counter()
    for seed in seeds:
        per_class = {row: [] for row in rows}
        for c in classes:
            fit_rows = [s for s, y in zip(train, y_train, strict=True) if y == c]
            is_anomaly = y_test != c
            for row in rows:
                t0 = time.perf_counter()
                result = models()[row](fit_rows, test, seed)
                seconds[row] += time.perf_counter() - t0
                if result is None:
                    continue
                score, note = result
                auc = roc_auc_score(is_anomaly, score)
                per_class[row].append(auc)
                print(
                    f"  seed {seed} class {c} ({len(fit_rows)} rows) {row}: ROC-AUC {auc:.3f} "
                    f"{note} {time.perf_counter() - t0:.1f} s",
                    flush=True,
                )
        for row in rows:
            if per_class[row]:
                aucs[row].append(float(np.mean(per_class[row])))
    table = [
        (row, *(f"{a:.3f}" for a in aucs[row]), f"{np.mean(aucs[row]):.3f}", f"{seconds[row]:.0f}")
        for row in rows
        if aucs[row]
    ]
    columns = ["model", *(f"seed {s}" for s in seeds), "mean ROC-AUC", "time (s)"]
    print()
    print(markdown_table(columns, table, "l" + "r" * (len(columns) - 1)))
    print(f"\n{name}: {time.perf_counter() - start:.0f} s", flush=True)
    return {row: float(np.mean(a)) for row, a in aucs.items() if a}


def merge_identical(results, rows):
    """Show rows that scored the same on every set where both ran as one row.

    ``RecurrentAutoEncoder()`` and ``AutoEncoder(architecture=Recurrent())``
    train the same network the same way; counting them twice would skew the
    ranks of the others.
    """
    kept = []
    for row in rows:
        same = (k for k in kept if all(r.get(row) == r.get(k) for r in results.values()))
        twin = next(same, None)
        if twin is None:
            kept.append(row)
            continue
        merged = f"{twin} = {row}"
        kept[kept.index(twin)] = merged
        for name in results:
            if twin in results[name]:
                results[name][merged] = results[name].pop(twin)
            results[name].pop(row, None)
    return kept


def summary(results, rows):
    rows = merge_identical(results, rows)
    sets = list(results)
    ranks = {}
    for name in sets:
        present = [r for r in rows if r in results[name]]
        values = np.array([results[name][r] for r in present])
        order = (-values).argsort(kind="stable")
        rank = np.empty(len(values))
        # Average ranks for ties: 1 is the best ROC-AUC.
        for value in np.unique(values):
            tied = np.flatnonzero(values == value)
            rank[tied] = np.mean([np.flatnonzero(order == i)[0] + 1 for i in tied])
        ranks[name] = dict(zip(present, rank, strict=True))
    equal = [n for n in sets if all(r in results[n] for r in rows)]
    columns = ["model", *sets, "mean", "mean rank", f"mean where every row ran ({len(equal)} sets)"]
    table = []
    for row in rows:
        have = [n for n in sets if row in results[n]]
        cells = [f"{results[n][row]:.3f}" if row in results[n] else "-" for n in sets]
        mean = np.mean([results[n][row] for n in have]) if have else float("nan")
        rank = np.mean([ranks[n][row] for n in have]) if have else float("nan")
        both = np.mean([results[n][row] for n in equal]) if equal else float("nan")
        table.append((row, *cells, f"{mean:.3f}", f"{rank:.2f}", f"{both:.3f}"))
    print("\n## Mean ROC-AUC over the classes and seeds of each set\n")
    print(markdown_table(columns, table, "l" + "r" * (len(columns) - 1)))
    print(
        "\nA row without a value on a set (Convolutional1D on sets of different lengths) is "
        "ranked among the rows that ran there; its mean is over the sets it ran on. Rows "
        "that scored the same on every set are one row, ranked once."
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--sets", nargs="+", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--max-classes", type=int, default=5)
    parser.add_argument("--models", nargs="+", choices=list(SHORT), default=CHECK)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = [SHORT[m] for m in args.models]
    sets = find_sets(args.data_dir, args.sets)
    print(
        f"torch {torch.__version__}, 1 thread, seeds {args.seeds}, at most "
        f"{args.max_classes} classes a set, sets {sets}",
        flush=True,
    )
    start = time.perf_counter()
    results = {
        name: run_set(args.data_dir, name, rows, args.seeds, args.max_classes) for name in sets
    }
    summary(results, rows)
    print(f"\nWall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

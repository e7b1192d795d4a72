"""Unsupervised anomaly detection on the ADBench "Classical" tabular sets.

Protocol as in ADBench (Han et al., NeurIPS 2022), unsupervised setting: a
stratified 70/30 split per seed; each method is fitted on the training part
without labels (anomalies included) and scores the test part; the script
reports ROC-AUC and average precision on the test part, averaged over the
seeds, and the fit time. Every method runs with the defaults a user would
use, with no per-dataset tuning.

Rows: skae's ``AnomalyDetector`` with its default ``AutoEncoderEnsemble`` and
``random_state=seed``; ``AnomalyDetector`` around a single ``AutoEncoder``
(``n_components=4, max_iter=100``, the default before the ensemble), and
around ``VariationalAutoEncoder`` / ``DenoisingAutoEncoder`` with the same
settings when skae exports them; each in a pipeline after a
``StandardScaler``. PyOD's ``AutoEncoder`` and ``VAE`` with their defaults
(which standardise internally); scikit-learn's ``IsolationForest``; and the
reconstruction error of a PCA with the same code size as the single
autoencoders (scaled input).

Usage::

    PYTHONPATH=. python benchmarks/bench_anomaly.py
    PYTHONPATH=. python benchmarks/bench_anomaly.py --datasets 6_cardio 42_WBC --seeds 1
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import torch
from _harness import ADBENCH, data_missing, markdown_table, table_header, table_row, timed
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import skae
from skae import AnomalyDetector


class PCAReconstruction(PCA):
    """PCA scored by the negative mean squared reconstruction error.

    scikit-learn's ``PCA.score_samples`` is a probabilistic-PCA likelihood;
    the classical PCA detector uses the reconstruction error instead.
    """

    def score_samples(self, X):
        X = np.asarray(X, dtype=float)
        return -((X - self.inverse_transform(self.transform(X))) ** 2).mean(axis=1)


# The single autoencoders' settings (the detector's default before the ensemble).
SINGLE = dict(n_components=4, max_iter=100)


def skae_detector(estimator=None, random_state=None):
    """What a skae user writes: scale, then detect."""
    return make_pipeline(StandardScaler(), AnomalyDetector(estimator, random_state=random_state))


def pyod_model(name, seed):
    from pyod.models.auto_encoder import AutoEncoder as PyODAutoEncoder
    from pyod.models.vae import VAE as PyODVAE

    cls = {"PyOD AutoEncoder": PyODAutoEncoder, "PyOD VAE": PyODVAE}[name]
    return cls(random_state=seed, verbose=0)


def methods() -> dict:
    """name -> make(seed) returning a fresh model; which rows run here."""
    found = {
        "skae default (AutoEncoderEnsemble)": lambda seed: skae_detector(random_state=seed),
        "skae AutoEncoder": lambda seed: skae_detector(skae.AutoEncoder(**SINGLE)),
    }
    for family in ("VariationalAutoEncoder", "DenoisingAutoEncoder"):
        cls = getattr(skae, family, None)
        if cls is None:
            print(f"note: skae does not export {family} here; skipping its row.")
            continue
        found[f"skae {family}"] = lambda seed, cls=cls: skae_detector(cls(**SINGLE))
    try:
        import pyod  # noqa: F401

        for name in ("PyOD AutoEncoder", "PyOD VAE"):
            found[name] = lambda seed, name=name: pyod_model(name, seed)
    except ImportError:
        print("note: pyod is not installed; skipping the PyOD rows (pip install pyod).")
    found["IsolationForest"] = lambda seed: make_pipeline(IsolationForest(random_state=seed))
    found["PCA reconstruction"] = lambda seed: skae_detector(
        PCAReconstruction(n_components=SINGLE["n_components"], random_state=seed)
    )
    return found


def anomaly_scores(model, X) -> np.ndarray:
    """Higher = more anomalous, for every method.

    scikit-learn and skae models come as pipelines (scores: higher = more
    normal, labels: -1 = outlier); PyOD's do not (higher = more anomalous,
    labels: 1 = outlier).
    """
    if isinstance(model, Pipeline):
        return -model.score_samples(X)
    return model.decision_function(X)


def run_one(make, X, y, seed):
    """Fit on 70% (no labels), evaluate on 30%: AUC, AP, fit time, label quality."""
    X_train, X_test, _, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=seed
    )
    # skae estimators left at random_state=None draw their seed from numpy's
    # global RNG, so this makes the default detector reproducible.
    np.random.seed(seed)
    model, fit_time = timed(make(seed).fit, X_train)
    scores = anomaly_scores(model, X_test)
    if not np.isfinite(scores).all():
        raise RuntimeError(f"{model!r} gave non-finite scores")
    # Labels from each detector's own cutoff (contamination="auto" for skae).
    flagged = model.predict(X_test) == (-1 if isinstance(model, Pipeline) else 1)
    n_hits = np.sum(flagged & (y_test == 1))
    return (
        roc_auc_score(y_test, scores),
        average_precision_score(y_test, scores),
        fit_time,
        flagged.mean(),
        n_hits / max(flagged.sum(), 1),  # precision
        n_hits / y_test.sum(),  # recall
    )


def metric_table(results, datasets, names, metric) -> str:
    """Datasets x methods of ``metric``, plus mean and mean rank (1 = best)."""
    table = np.array([[results[d][m][metric] for m in names] for d in datasets])
    # Rank within each dataset, best first; ties share the mean rank.
    ranks = np.array([_ranks(-row) for row in table])
    rows = []
    for d, row in zip(datasets, table, strict=True):
        best = row.max()
        rows.append([d, *(f"**{v:.3f}**" if v == best else f"{v:.3f}" for v in row)])
    rows.append(["mean", *(f"{v:.3f}" for v in table.mean(0))])
    rows.append(["mean rank", *(f"{v:.2f}" for v in ranks.mean(0))])
    return markdown_table(["dataset", *names], rows, "l" + "r" * len(names))


def _ranks(values) -> np.ndarray:
    order = values.argsort(kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for v in np.unique(values):
        tied = values == v
        ranks[tied] = ranks[tied].mean()
    return ranks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="*", help="file stems, e.g. 6_cardio (default: all)")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    parser.add_argument("--methods", nargs="*", help="run only these rows (default: all)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads for every method (default 1)"
    )
    args = parser.parse_args(argv)

    if data_missing(ADBENCH):
        return 0
    # Small MLPs gain little from intra-op threads, and on a shared machine
    # extra threads spin and slow every method down; the same for all rows.
    torch.set_num_threads(args.threads)
    # Smallest first, so that an interrupted run (Ctrl-C) still covers many sets.
    files = sorted(ADBENCH.glob("*.npz"), key=lambda p: p.stat().st_size)
    if args.datasets:
        files = [p for p in files if p.stem in args.datasets]
    found = methods()
    if args.methods:
        found = {k: v for k, v in found.items() if k in args.methods}
    names = list(found)

    wall, cpu = time.perf_counter(), time.process_time()
    results = {}
    try:
        for path in files:
            d = np.load(path)
            X, y = d["X"].astype("float32"), d["y"].astype(int)
            row = {}
            for name, make in found.items():
                runs = np.array([run_one(make, X, y, seed) for seed in range(args.seeds)])
                auc, ap, fit_time, flagged, precision, recall = runs.mean(0)
                row[name] = {
                    "auc": auc,
                    "ap": ap,
                    "fit_time": runs[:, 2].sum(),
                    "labels": (flagged, y.mean(), precision, recall),
                }
                print(
                    f"{path.stem:>18} {name:<30} ROC-AUC {auc:.3f}  AP {ap:.3f}  "
                    f"fit {fit_time:7.2f} s",
                    flush=True,
                )
            results[path.stem] = row
    except KeyboardInterrupt:
        print(f"\ninterrupted: the tables cover the {len(results)} finished datasets")
    datasets = list(results)
    if not datasets:
        return 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    # CPU time is what the run costs on an idle machine; wall time grows with
    # whatever else shares the cores.
    print(
        f"\n{len(datasets)} datasets, {args.seeds} seeds, wall time {wall:.0f} s, "
        f"CPU time {cpu:.0f} s\n"
    )
    print("ROC-AUC (test part, mean over seeds)\n")
    print(metric_table(results, datasets, names, "auc"))
    print("\nAverage precision (test part, mean over seeds)\n")
    print(metric_table(results, datasets, names, "ap"))

    total = {m: sum(results[d][m]["fit_time"] for d in datasets) for m in names}
    print("\nTotal fit time over all datasets and seeds\n")
    print(markdown_table(["method", "fit time (s)"], [[m, f"{total[m]:.1f}"] for m in names], "lr"))
    for ours, theirs in [
        ("skae default (AutoEncoderEnsemble)", "PyOD AutoEncoder"),
        ("skae AutoEncoder", "PyOD AutoEncoder"),
        ("skae VariationalAutoEncoder", "PyOD VAE"),
    ]:
        if ours in total and theirs in total:
            print(f"\nfit-time ratio {ours} / {theirs}: {total[ours] / total[theirs]:.2f}")

    print(
        "\nLabels from each detector's own cutoff on the test part (skae: "
        'contamination="auto"; IsolationForest: "auto"; PyOD: its default '
        "contamination=0.1), mean over datasets\n"
    )
    print(table_header(["method", "flagged", "true anomaly rate", "precision", "recall"], "lrrrr"))
    for m in names:
        flagged, rate, precision, recall = np.mean([results[d][m]["labels"] for d in datasets], 0)
        print(table_row([m, f"{flagged:.1%}", f"{rate:.1%}", f"{precision:.2f}", f"{recall:.2f}"]))
    return 0


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        sys.exit(main())

"""Unsupervised anomaly detection on ADBench tabular sets (any folder of them).

Protocols (``--protocol``), after ADBench (Han et al., NeurIPS 2022):

- ``contaminated`` (default; ADBench's unsupervised setting): a stratified
  70/30 split per seed; each method is fitted on the training part without
  labels, anomalies included, and scores the test part.
- ``one-class`` (clean training, as in the one-class setting of DTE,
  Livernoche et al.): the same split, but each method is fitted on the
  normal rows of the training part only.

The script reports ROC-AUC and average precision on the test part, averaged
over the seeds (sets with more than ``--large-rows`` rows: one split), the
mean rank of each method, and a Wilcoxon signed-rank test of the skae
default against every other row over the data sets (paired ROC-AUC), and
the fit plus scoring time. Every method runs with the defaults a user would
use, with no per-dataset tuning.

Rows (``--methods`` picks some; ``--all`` adds the older autoencoder rows):
skae's ``AnomalyDetector`` with its default ``AutoEncoderEnsemble`` and
``random_state=seed`` (``--skae-params`` changes the ensemble's parameters,
for ablations); scikit-learn's ``IsolationForest``; PyOD's ``KNN``, ``MCD``
and ``ECOD`` (the ``benchmark`` extra); the reconstruction error of a PCA
with a 4-value code; with ``--all``, single skae autoencoders and PyOD's
``AutoEncoder`` and ``VAE``. KNN and MCD skip sets with more than
``--large-rows`` rows, and MCD sets with more than 500 features (too slow).

``--timing`` instead times fit plus scoring of the skae default against
``IsolationForest`` on synthetic 100,000 x 20 and 1,000,000 x 10 rows.

Usage::

    PYTHONPATH=. python benchmarks/bench_anomaly.py
    PYTHONPATH=. python benchmarks/bench_anomaly.py --datasets 6_cardio 42_WBC --seeds 1
    PYTHONPATH=. python benchmarks/bench_anomaly.py --data-dir DIR --protocol one-class
    PYTHONPATH=. python benchmarks/bench_anomaly.py --skae-params trim_fraction=0.1
    PYTHONPATH=. python benchmarks/bench_anomaly.py --breast-cancer
    PYTHONPATH=. python benchmarks/bench_anomaly.py --timing
    python benchmarks/bench_anomaly.py --from-logs base.txt "novelty.txt=skae novelty"

``--from-logs`` prints the tables from the printed lines of earlier runs
(rows run separately, e.g. only the skae row of an ablation); ``FILE=NAME``
renames that file's skae default row to NAME.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _harness import ADBENCH, data_missing, markdown_table, table_header, table_row
from scipy.stats import wilcoxon
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import skae
from skae import AnomalyDetector, AutoEncoderEnsemble

DEFAULT = "skae default"


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
    """A PyOD detector with its defaults."""
    if name == "KNN (PyOD)":
        from pyod.models.knn import KNN

        return KNN()
    if name == "MCD (PyOD)":
        from pyod.models.mcd import MCD

        return MCD(random_state=seed)
    if name == "ECOD (PyOD)":
        from pyod.models.ecod import ECOD

        return ECOD()
    from pyod.models.auto_encoder import AutoEncoder as PyODAutoEncoder
    from pyod.models.vae import VAE as PyODVAE

    cls = {"PyOD AutoEncoder": PyODAutoEncoder, "PyOD VAE": PyODVAE}[name]
    return cls(random_state=seed, verbose=0)


# Rows that are too slow on large or wide sets: name -> (max rows, max features).
SLOW = {"KNN (PyOD)": (None, None), "MCD (PyOD)": (None, 500)}


def methods(skae_params: dict, all_rows: bool) -> dict:
    """name -> make(seed) returning a fresh model; which rows run here."""
    found = {
        DEFAULT: lambda seed: make_pipeline(
            AnomalyDetector(AutoEncoderEnsemble(**skae_params), random_state=seed)
        ),
        "IsolationForest": lambda seed: make_pipeline(IsolationForest(random_state=seed)),
    }
    try:
        import pyod  # noqa: F401

        pyod_rows = ["KNN (PyOD)", "MCD (PyOD)", "ECOD (PyOD)"]
        if all_rows:
            pyod_rows += ["PyOD AutoEncoder", "PyOD VAE"]
        for name in pyod_rows:
            found[name] = lambda seed, name=name: pyod_model(name, seed)
    except ImportError:
        print("note: pyod is not installed; skipping the PyOD rows (pip install skae[bench]).")
    found["PCA reconstruction"] = lambda seed: skae_detector(
        PCAReconstruction(n_components=SINGLE["n_components"], random_state=seed)
    )
    if all_rows:
        found["skae AutoEncoder"] = lambda seed: skae_detector(skae.AutoEncoder(**SINGLE))
        for family in ("VariationalAutoEncoder", "DenoisingAutoEncoder"):
            cls = getattr(skae, family)
            found[f"skae {family}"] = lambda seed, cls=cls: skae_detector(cls(**SINGLE))
    return found


def anomaly_scores(model, X) -> np.ndarray:
    """Higher = more anomalous, for every method.

    scikit-learn and skae models come as pipelines (scores: higher = more
    normal); PyOD's do not (higher = more anomalous).
    """
    if isinstance(model, Pipeline):
        return -model.score_samples(X)
    return model.decision_function(X)


def run_one(make, X, y, seed, protocol):
    """Fit on 70% (no labels; normal rows only for one-class), evaluate on 30%."""
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=seed
    )
    if protocol == "one-class":
        X_train = X_train[y_train == 0]
    # skae estimators left at random_state=None draw their seed from numpy's
    # global RNG, so this makes every row reproducible.
    np.random.seed(seed)
    start = time.perf_counter()
    model = make(seed).fit(X_train)
    scores = anomaly_scores(model, X_test)
    seconds = time.perf_counter() - start
    if not np.isfinite(scores).all():
        raise RuntimeError(f"{model!r} gave non-finite scores")
    return roc_auc_score(y_test, scores), average_precision_score(y_test, scores), seconds


def metric_table(results, datasets, names, metric, *, higher_is_better=True) -> str:
    """Datasets x methods of ``metric``, plus mean and mean rank (1 = best).

    A method that skipped a set shows "—" there; the mean and the mean rank
    are over the sets where every method ran (the count is in the row title).
    """
    table = np.array([[results[d].get(m, {}).get(metric, np.nan) for m in names] for d in datasets])
    complete = ~np.isnan(table).any(1)
    sign = 1 if higher_is_better else -1
    rows = []
    for d, row in zip(datasets, table, strict=True):
        best = sign * np.nanmax(sign * row)
        rows.append(
            [d, *("—" if np.isnan(v) else f"**{v:.3f}**" if v == best else f"{v:.3f}" for v in row)]
        )
    if complete.any():
        ranks = np.array([_ranks(-sign * row) for row in table[complete]])
        n = int(complete.sum())
        rows.append([f"mean ({n} sets)", *(f"{v:.3f}" for v in table[complete].mean(0))])
        rows.append([f"mean rank ({n} sets)", *(f"{v:.2f}" for v in ranks.mean(0))])
    if not complete.all():
        rows.append(["mean (sets it ran on)", *(f"{v:.3f}" for v in np.nanmean(table, 0))])
    return markdown_table(["dataset", *names], rows, "l" + "r" * len(names))


def _ranks(values) -> np.ndarray:
    order = values.argsort(kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for v in np.unique(values):
        tied = values == v
        ranks[tied] = ranks[tied].mean()
    return ranks


def wilcoxon_table(results, datasets, names, ours=DEFAULT) -> str:
    """The skae default against each other row: wins, losses, Wilcoxon signed-rank p."""
    rows = []
    for other in names:
        if other == ours:
            continue
        pairs = [
            (results[d][ours]["auc"], results[d][other]["auc"])
            for d in datasets
            if ours in results[d] and other in results[d]
        ]
        if not pairs:
            continue
        a, b = np.array(pairs).T
        diff = a - b
        wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
        p = wilcoxon(a, b).pvalue if np.any(diff != 0) and len(diff) > 1 else float("nan")
        rows.append([other, len(diff), f"{diff.mean():+.3f}", f"{wins} / {losses}", f"{p:.3f}"])
    return markdown_table(
        ["against", "sets", "mean ROC-AUC difference", "wins / losses", "Wilcoxon p (two-sided)"],
        rows,
        "lrrrr",
    )


def load_sets(args) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, X, y) of every set to run, smallest file first."""
    if args.breast_cancer:
        from sklearn.datasets import load_breast_cancer

        # scikit-learn's copy of WDBC: 212 malignant (label 0) of 569, 37%,
        # all kept: the contaminated case of the benchmark page.
        X, y = load_breast_cancer(return_X_y=True)
        return [("breast_cancer (37% malignant)", X.astype("float32"), (y == 0).astype(int))]
    folder = Path(args.data_dir)
    # Smallest first, so that an interrupted run (Ctrl-C) still covers many sets.
    files = sorted(folder.glob("*.npz"), key=lambda p: p.stat().st_size)
    if args.datasets:
        files = [p for p in files if p.stem in args.datasets]
    sets = []
    for path in files:
        d = np.load(path)
        sets.append((path.stem, d["X"].astype("float32"), d["y"].astype(int)))
    return sets


ROW = re.compile(
    r"^\s*(?P<left>.+?) ROC-AUC (?P<auc>[\d.]+)  AP (?P<ap>[\d.]+)  fit\+score\s+(?P<time>[\d.]+) s"
)


def results_from_logs(items, known) -> tuple[dict, list]:
    """Results and row names from the per-set lines that runs of this script print."""
    results, names = {}, []
    for item in items:
        path, _, rename = item.partition("=")
        for line in Path(path).read_text().splitlines():
            match = ROW.match(line)
            if not match:
                continue
            left = match["left"].rstrip()
            method = next(m for m in sorted(known, key=len, reverse=True) if left.endswith(m))
            name_set = left[: -len(method)].strip()
            if rename and method == DEFAULT:
                method = rename
            if method not in names:
                names.append(method)
            results.setdefault(name_set, {})[method] = {
                k: float(match[k]) for k in ("auc", "ap", "time")
            }
    return results, names


def parse_params(items) -> dict:
    """``key=value`` strings to a dict; values are Python literals (or plain strings)."""
    params = {}
    for item in items or []:
        key, _, value = item.partition("=")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    return params


def timing(skae_params: dict) -> int:
    """Fit plus scoring time, skae default against IsolationForest, synthetic rows."""
    # Steady-state times: one small fit of each method first, so that neither
    # pays for first-use imports and allocations inside the timed calls.
    warm = np.random.RandomState(1).normal(size=(1000, 5)).astype("float32")
    AnomalyDetector(AutoEncoderEnsemble(**skae_params), random_state=0).fit(warm).score_samples(
        warm
    )
    IsolationForest(random_state=0).fit(warm).score_samples(warm)
    print(table_header(["rows x features", "method", "fit (s)", "score (s)", "total (s)"], "llrrr"))
    for n, d in [(100_000, 20), (1_000_000, 10)]:
        rng = np.random.RandomState(0)
        X = (rng.normal(size=(n, d)) @ rng.normal(size=(d, d))).astype("float32")
        outliers = rng.rand(n) < 0.01
        X[outliers] += 5 * rng.normal(size=(outliers.sum(), d)).astype("float32")
        for name, model in [
            (DEFAULT, AnomalyDetector(AutoEncoderEnsemble(**skae_params), random_state=0)),
            ("IsolationForest", IsolationForest(random_state=0)),
        ]:
            start = time.perf_counter()
            model.fit(X)
            fitted = time.perf_counter()
            model.score_samples(X)
            end = time.perf_counter()
            print(
                table_row(
                    [
                        f"{n:,} x {d}",
                        name,
                        f"{fitted - start:.2f}",
                        f"{end - fitted:.2f}",
                        f"{end - start:.2f}",
                    ]
                ),
                flush=True,
            )
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", default=str(ADBENCH), help="folder of ADBench .npz files (X, y)"
    )
    parser.add_argument("--datasets", nargs="*", help="file stems, e.g. 6_cardio (default: all)")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    parser.add_argument(
        "--large-rows",
        type=int,
        default=40_000,
        help="sets with more rows run one split, without KNN and MCD (default 40000)",
    )
    parser.add_argument("--protocol", choices=["contaminated", "one-class"], default="contaminated")
    parser.add_argument("--methods", nargs="*", help="run only these rows (default: all)")
    parser.add_argument("--all", action="store_true", help="add the older autoencoder rows")
    parser.add_argument(
        "--skae-params", nargs="*", help="AutoEncoderEnsemble parameters for the skae row, k=v"
    )
    parser.add_argument(
        "--breast-cancer", action="store_true", help="scikit-learn's breast cancer set instead"
    )
    parser.add_argument("--timing", action="store_true", help="synthetic timing rows instead")
    parser.add_argument(
        "--from-logs", nargs="*", help="tables from earlier runs' output files (FILE or FILE=NAME)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads for every method (default 1)"
    )
    args = parser.parse_args(argv)
    skae_params = parse_params(args.skae_params)

    # Small MLPs gain little from intra-op threads, and on a shared machine
    # extra threads spin and slow every method down; the same for all rows.
    torch.set_num_threads(args.threads)
    if args.timing:
        return timing(skae_params)
    if args.from_logs:
        known = [*methods({}, True), DEFAULT]
        results, names = results_from_logs(args.from_logs, known)
        return print_tables(results, list(results), names, args.seeds)
    if not args.breast_cancer and data_missing(Path(args.data_dir)):
        return 0
    found = methods(skae_params, args.all)
    if args.methods:
        found = {k: v for k, v in found.items() if k in args.methods}
    names = list(found)
    print(f"protocol: {args.protocol}; skae parameters: {skae_params or 'defaults'}")

    wall, cpu = time.perf_counter(), time.process_time()
    results = {}
    try:
        for name_set, X, y in load_sets(args):
            large = len(X) > args.large_rows
            seeds = 1 if large else args.seeds
            row = {}
            for name, make in found.items():
                max_rows, max_features = SLOW.get(name, (np.inf, np.inf))
                if (max_rows is None and large) or (max_features and X.shape[1] > max_features):
                    continue
                runs = np.array([run_one(make, X, y, seed, args.protocol) for seed in range(seeds)])
                auc, ap, _ = runs.mean(0)
                row[name] = {"auc": auc, "ap": ap, "time": runs[:, 2].sum()}
                print(
                    f"{name_set:>18} {name:<22} ROC-AUC {auc:.3f}  AP {ap:.3f}  "
                    f"fit+score {runs[:, 2].sum():7.2f} s ({seeds} splits)",
                    flush=True,
                )
            results[name_set] = row
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
        f"CPU time {cpu:.0f} s"
    )
    return print_tables(results, datasets, names, args.seeds)


def print_tables(results, datasets, names, seeds) -> int:
    """The ROC-AUC, AP, significance and time tables."""
    if not datasets:
        return 1
    # A row that ran on no set (MCD when every set is too wide) would leave no
    # set where every row ran, hence no mean rank.
    skipped = [m for m in names if not any(m in results[d] for d in datasets)]
    if skipped:
        print(f"\nnot run on any set (too slow there): {', '.join(skipped)}")
        names = [m for m in names if m not in skipped]
    print(f"\n{len(datasets)} datasets\n")
    print("ROC-AUC (test part, mean over seeds)\n")
    print(metric_table(results, datasets, names, "auc"))
    print("\nAverage precision (test part, mean over seeds)\n")
    print(metric_table(results, datasets, names, "ap"))
    for ours in names:
        if ours.startswith("skae"):
            print(f"\n{ours} against each row, paired ROC-AUC over the sets\n")
            print(wilcoxon_table(results, datasets, names, ours))
    print("\nFit plus scoring time (s, summed over splits)\n")
    print(metric_table(results, datasets, names, "time", higher_is_better=False))
    return 0


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        sys.exit(main())

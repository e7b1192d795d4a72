"""Text: sparse TF-IDF input on the SMS Spam Collection.

Three parts, each with its baseline measured in the same run:

* ``features``: ``make_pipeline(TfidfVectorizer, reducer, StandardScaler,
  LogisticRegression)`` with stratified 5-fold cross-validation; the reducer
  is an skae estimator (codes of ``--code-size`` values) or ``TruncatedSVD``
  (LSA) of the same size; a line without a reducer (the classifier on all
  TF-IDF columns) gives the ceiling. Accuracy, F1 (spam = positive) and the
  mean fit time of the whole pipeline, as CPU time (one thread) and wall
  time, and their ratios to LSA's. ``--families AutoEncoder before`` adds
  the benchmark's earlier squared-error setting (minutes per fold).
* ``anomaly``: trained on ham only, spam scored as the anomaly. Each split
  fits the vectorizer and the detector on a random 80% of the ham messages and
  scores the other 20% plus every spam message; ROC-AUC and average precision
  (spam = positive) of the skae estimators' ``score_samples``, of
  ``IsolationForest`` on the same TF-IDF features, and of the negative
  reconstruction error of ``TruncatedSVD`` at the same code size.
* ``memory``: peak resident memory of sparse fits, each in a fresh
  subprocess, against what the sparse data, the model and one dense batch
  need (and what a dense copy of the data would need).

All settings are fixed in advance (``SETTINGS`` below); nothing is tuned on
the test folds.

Usage::

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/bench_text_sms.py
    PYTHONPATH=. python benchmarks/bench_text_sms.py --parts features --folds 2
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _harness import SMS_SPAM, data_missing, proc_status_kib, timed
from sklearn.base import clone
from sklearn.decomposition import TruncatedSVD
from sklearn.ensemble import IsolationForest
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoEncoder, DenoisingAutoEncoder


def load():
    d = pd.read_csv(SMS_SPAM, sep="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
    return d["text"].tolist(), (d["label"] == "spam").to_numpy()


def vectorizer():
    # Log-scaled term counts, words seen in at least 2 messages, L2-normalised rows.
    return TfidfVectorizer(sublinear_tf=True, min_df=2)


def skae_models(code_size, seed, families):
    # The text recipe, chosen by benchmarks/study_text_codes.py on two corpora
    # (this one and a docstring corpus; see docs/benchmarks/text-sms.md): the
    # multinomial loss on TF-IDF rows, a linear code and decoder (the softmax
    # over the vocabulary is the model's only nonlinearity), sparse batches of
    # 256 multiplied directly by the first layer, 4 epochs at a learning rate
    # of 2e-2. tol=None runs all 4 (the budget is fixed in advance).
    recipe = dict(
        hidden_layer_sizes=(),
        batch_size=256,
        max_iter=4,
        learning_rate_init=2e-2,
        tol=None,
        random_state=seed,
        device="cpu",
    )
    # The earlier setting of this benchmark, for comparison (squared error).
    before = dict(
        hidden_layer_sizes=(128,),
        batch_size=64,
        max_iter=20,
        tol=None,
        random_state=seed,
        device="cpu",
    )
    models = {
        "AutoEncoder (multinomial, recipe)": AutoEncoder(code_size, loss="multinomial", **recipe),
        "AutoEncoder (squared_error, recipe)": AutoEncoder(code_size, **recipe),
        "AutoEncoder (squared_error, before)": AutoEncoder(code_size, **before),
        # Masking noise drops a random 20% of a message's words at each epoch.
        "DenoisingAutoEncoder (masking 0.2)": DenoisingAutoEncoder(
            code_size, noise="masking", noise_level=0.2, **before
        ),
    }
    return {
        name: m
        for name, m in models.items()
        if name.split()[0] in families and ("before" not in name or "before" in families)
    }


# ----------------------------------------------------------------- features


def run_features(texts, y, code_size, folds, families):
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    texts = np.asarray(texts, dtype=object)
    reducers = {"TruncatedSVD (LSA)": TruncatedSVD(code_size, random_state=0)}
    reducers.update(skae_models(code_size, 0, families))
    reducers["none (all TF-IDF columns)"] = None
    rows = []
    for name, reducer in reducers.items():
        steps = [vectorizer()] + ([reducer, StandardScaler()] if reducer is not None else [])
        pipe = make_pipeline(*steps, LogisticRegression(max_iter=1000))
        folds_out = []
        for train, test in cv.split(texts, y):
            model = clone(pipe)
            # CPU time (one thread) is what the fit costs whatever else runs
            # on the machine; wall time is printed beside it.
            cpu, wall = time.process_time(), time.perf_counter()
            model.fit(texts[train], y[train])
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            pred = model.predict(texts[test])
            folds_out.append((accuracy_score(y[test], pred), f1_score(y[test], pred), cpu, wall))
        r = np.array(folds_out)
        rows.append(dict(model=name, accuracy=r[:, 0], f1=r[:, 1], cpu=r[:, 2], wall=r[:, 3]))
        print(
            f"  {name:38s} accuracy {r[:, 0].mean():.4f} ± {r[:, 0].std():.4f}  "
            f"F1 {r[:, 1].mean():.4f} ± {r[:, 1].std():.4f}  "
            f"fit CPU {r[:, 2].mean():.2f} s, wall {r[:, 3].mean():.2f} s",
            flush=True,
        )
    lsa = rows[0]
    for r in rows[1:]:
        print(
            f"  {r['model']:38s} fit time / LSA's: CPU {r['cpu'].mean() / lsa['cpu'].mean():.1f}x, "
            f"wall {r['wall'].mean() / lsa['wall'].mean():.1f}x",
            flush=True,
        )
    return rows


# ------------------------------------------------------------------ anomaly


def svd_scores(svd, X):
    """Negative squared reconstruction error of the rank-k projection, from sparse X."""
    Z = svd.transform(X)
    # components_ are orthonormal rows: ||x - Z V||^2 = ||x||^2 - ||Z||^2.
    return -(np.asarray(X.multiply(X).sum(axis=1)).ravel() - (Z**2).sum(axis=1))


def run_anomaly(texts, is_spam, code_size, splits, families):
    texts = np.asarray(texts, dtype=object)
    ham, spam = np.flatnonzero(~is_spam), np.flatnonzero(is_spam)
    results: dict[str, list] = {}
    for seed in range(splits):
        rng = np.random.default_rng(seed)
        train = rng.choice(ham, size=int(0.8 * len(ham)), replace=False)
        test = np.r_[np.setdiff1d(ham, train), spam]
        truth = is_spam[test]
        vec = vectorizer().fit(texts[train])
        X_train, X_test = vec.transform(texts[train]), vec.transform(texts[test])
        detectors = {
            "TruncatedSVD reconstruction error": TruncatedSVD(code_size, random_state=seed),
            "IsolationForest": IsolationForest(random_state=seed),
        }
        detectors.update(skae_models(code_size, seed, families))
        for name, model in detectors.items():
            model, fit_time = timed(clone(model).fit, X_train)
            if isinstance(model, TruncatedSVD):
                scores = svd_scores(model, X_test)
            else:
                scores = model.score_samples(X_test)
            # Higher score = more normal, so the anomaly score is its negative.
            results.setdefault(name, []).append(
                (roc_auc_score(truth, -scores), average_precision_score(truth, -scores), fit_time)
            )
        print(
            f"  split {seed}: {X_train.shape[0]} ham to train on, "
            f"{len(test)} to score ({truth.sum()} spam), {X_train.shape[1]} columns",
            flush=True,
        )
    rows = []
    for name, runs in results.items():
        runs = np.array(runs)
        rows.append(dict(model=name, auc=runs[:, 0], ap=runs[:, 1], fit_time=runs[:, 2].mean()))
        print(
            f"  {name:38s} ROC-AUC {runs[:, 0].mean():.4f} ± {runs[:, 0].std():.4f}  "
            f"AP {runs[:, 1].mean():.4f} ± {runs[:, 1].std():.4f}  fit {runs[:, 2].mean():.1f} s",
            flush=True,
        )
    return rows


# ------------------------------------------------------------------- memory


def memory_child(case):
    """Run in a fresh process: build the data, reset the peak, fit, report."""
    torch.set_num_threads(1)
    texts, _ = load()
    if case == "tfidf-tiled":
        # The SMS TF-IDF rows repeated 36 times: 200k rows, too big to densify casually.
        X = vectorizer().fit_transform(texts)
        X = X[np.resize(np.arange(X.shape[0]), 200_000)].astype(np.float32)
        model = AutoEncoder(32, loss="multinomial", hidden_layer_sizes=(), batch_size=256)
        model.set_params(max_iter=1, learning_rate_init=2e-2)
    else:  # hashing: 2**20 columns; 1,024 messages keep the CPU run short
        X = HashingVectorizer(n_features=2**20, alternate_sign=False).transform(texts[:1024])
        X = X.astype(np.float32)
        model = AutoEncoder(16, hidden_layer_sizes=(), batch_size=32, max_iter=1)
    model.set_params(random_state=0, device="cpu", tol=None)
    # A warm-up fit on a few rows loads torch's kernels and allocator pools,
    # which would otherwise count as memory of the fit.
    clone(model).fit(X[: 2 * model.batch_size])
    # Resetting the high-water mark (Linux) makes VmHWM the peak of the fit alone.
    Path("/proc/self/clear_refs").write_text("5")
    before = proc_status_kib("VmRSS")
    _, seconds = timed(model.fit, X)
    peak = proc_status_kib("VmHWM")
    n_params = sum(p.numel() for p in model.module_.parameters())
    batch = model.batch_size * X.shape[1] * 4
    print(
        json.dumps(
            dict(
                case=case,
                shape=list(X.shape),
                nnz=int(X.nnz),
                sparse_mib=(X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20,
                dense_mib=X.shape[0] * X.shape[1] * 4 / 2**20,
                params=n_params,
                # Weights, gradients and Adam's two moments, float32.
                model_state_mib=4 * n_params * 4 / 2**20,
                dense_batch_mib=batch / 2**20,
                fit_peak_increase_mib=(peak - before) / 1024,
                rows_per_s=X.shape[0] / seconds,
            )
        )
    )


def run_memory(cases):
    rows = []
    for case in cases:
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", case],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(
            f"  {case}: X {r['shape'][0]} x {r['shape'][1]}, nnz {r['nnz']}, sparse "
            f"{r['sparse_mib']:.1f} MiB (dense float32 {r['dense_mib']:.0f} MiB); model "
            f"{r['params']} parameters, with gradients and Adam state "
            f"{r['model_state_mib']:.1f} MiB; one dense batch {r['dense_batch_mib']:.1f} MiB; "
            f"peak RSS increase during fit {r['fit_peak_increase_mib']:.1f} MiB; "
            f"{r['rows_per_s']:.0f} rows/s",
            flush=True,
        )
    return rows


# -------------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["features", "anomaly", "memory"])
    parser.add_argument("--code-size", type=int, default=32)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--families", nargs="+", default=["AutoEncoder"])
    parser.add_argument("--memory-cases", nargs="+", default=["tfidf-tiled", "hashing-2**20"])
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if data_missing(SMS_SPAM):
        return
    if args.memory_child:
        memory_child(args.memory_child)
        return
    torch.set_num_threads(1)
    texts, is_spam = load()
    print(
        f"SMS Spam Collection: {len(texts)} messages, {is_spam.sum()} spam; "
        f"code size {args.code_size}; torch threads {torch.get_num_threads()}"
    )
    start = time.perf_counter()
    if "features" in args.parts:
        print(f"Feature extraction, stratified {args.folds}-fold CV:", flush=True)
        run_features(texts, is_spam, args.code_size, args.folds, args.families)
    if "anomaly" in args.parts:
        print(f"Anomaly detection, trained on ham, {args.splits} splits:", flush=True)
        run_anomaly(texts, is_spam, args.code_size, args.splits, args.families)
    if "memory" in args.parts:
        print("Memory of sparse fits (one epoch each, fresh processes):", flush=True)
        run_memory(args.memory_cases)
    print(f"wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

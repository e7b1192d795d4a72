"""Study: which text-code settings to fix, chosen on two corpora, not on one.

Corpora (both offline):

* ``sms``: the SMS Spam Collection (``../shared/data/sms_spam.tsv``), binary,
  spam = positive;
* ``docstrings``: the docstrings of functions and classes in the source of
  five installed Python packages (scikit-learn, SciPy, PyTorch, pandas,
  SymPy), read with :mod:`ast` (nothing is imported), 1,000 per package,
  each cut to its first 600 characters; the label is the package (5 classes,
  macro F1). Real technical prose whose classes share most of their
  vocabulary, unlike SMS spam.

Each setting is ``make_pipeline(TfidfVectorizer(sublinear_tf=True,
min_df=2), reducer, StandardScaler(), LogisticRegression(max_iter=1000))`` in
stratified 5-fold CV, code size 32, the reducer an ``AutoEncoder`` or
``TruncatedSVD`` (LSA). Printed: accuracy, F1, and the pipeline's fit time
per fold as CPU time (one thread: what the fit costs, whatever else runs on
the machine) and wall time.

Usage::

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/study_text_codes.py
"""

from __future__ import annotations

import argparse
import ast
import csv
import importlib.util
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _harness import SMS_SPAM, data_missing
from sklearn.base import clone
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoEncoder

PACKAGES = ("sklearn", "scipy", "torch", "pandas", "sympy")


def load_sms():
    d = pd.read_csv(SMS_SPAM, sep="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
    return d["text"].tolist(), (d["label"] == "spam").to_numpy().astype(int)


def docstrings(package, n, rng):
    root = Path(importlib.util.find_spec(package).origin).parent
    docs = set()
    for path in sorted(root.rglob("*.py")):
        if "tests" in path.parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="ignore"))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= 100:
                    docs.add(doc[:600])
    docs = sorted(docs)
    return [docs[i] for i in rng.choice(len(docs), size=min(n, len(docs)), replace=False)]


def load_docstrings(n_per_package=1000):
    # Parsing the five packages takes a minute or two; reruns read a cache.
    cache = Path(tempfile.gettempdir()) / "skae_study_docstrings.json"
    if cache.exists():
        d = json.loads(cache.read_text())
        return d["texts"], np.array(d["labels"])
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for i, package in enumerate(PACKAGES):
        docs = docstrings(package, n_per_package, rng)
        texts += docs
        labels += [i] * len(docs)
    cache.write_text(json.dumps(dict(texts=texts, labels=labels)))
    return texts, np.array(labels)


def settings(code_size):
    # All fixed before the run; tol=None runs every epoch.
    common = dict(tol=None, random_state=0, device="cpu")
    linear = dict(hidden_layer_sizes=(), batch_size=256, **common)
    return {
        "LSA (TruncatedSVD)": TruncatedSVD(code_size, random_state=0),
        "squared_error, linear, 10 epochs": AutoEncoder(code_size, max_iter=10, **linear),
        "multinomial, linear, 5 epochs": AutoEncoder(
            code_size, loss="multinomial", max_iter=5, **linear
        ),
        "multinomial, linear, 10 epochs": AutoEncoder(
            code_size, loss="multinomial", max_iter=10, **linear
        ),
        "multinomial, linear, 10 epochs, lr 1e-2": AutoEncoder(
            code_size, loss="multinomial", max_iter=10, learning_rate_init=1e-2, **linear
        ),
        "multinomial, linear, 5 epochs, lr 1e-2": AutoEncoder(
            code_size, loss="multinomial", max_iter=5, learning_rate_init=1e-2, **linear
        ),
        "multinomial, linear, 4 epochs, lr 1e-2": AutoEncoder(
            code_size, loss="multinomial", max_iter=4, learning_rate_init=1e-2, **linear
        ),
        "multinomial, linear, 4 epochs, lr 2e-2": AutoEncoder(
            code_size, loss="multinomial", max_iter=4, learning_rate_init=2e-2, **linear
        ),
        "multinomial, hidden 128, 10 epochs": AutoEncoder(
            code_size,
            loss="multinomial",
            max_iter=10,
            hidden_layer_sizes=(128,),
            batch_size=256,
            **common,
        ),
    }


def cross_validate_cpu(pipe, texts, y, cv, f1_average):
    """Accuracy, F1 and the fit's CPU and wall seconds of each fold."""
    texts = np.asarray(texts, dtype=object)
    rows = []
    for train, test in cv.split(texts, y):
        model = clone(pipe)
        cpu, wall = time.process_time(), time.perf_counter()
        model.fit(texts[train], y[train])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        pred = model.predict(texts[test])
        rows.append(
            (accuracy_score(y[test], pred), f1_score(y[test], pred, average=f1_average), cpu, wall)
        )
    return np.array(rows)


def run(name, texts, y, code_size, only):
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    average = "binary" if len(set(y)) == 2 else "macro"
    print(f"{name}: {len(texts)} documents, {len(set(y))} classes, F1 {average}", flush=True)
    lsa_cpu = None
    for label, reducer in settings(code_size).items():
        if only and not any(o in label for o in only) and "LSA" not in label:
            continue
        pipe = make_pipeline(
            TfidfVectorizer(sublinear_tf=True, min_df=2),
            reducer,
            StandardScaler(),
            LogisticRegression(max_iter=1000),
        )
        r = cross_validate_cpu(pipe, texts, y, cv, average)
        mean, std = r.mean(axis=0), r.std(axis=0)
        lsa_cpu = mean[2] if lsa_cpu is None else lsa_cpu
        print(
            f"  {label:42s} accuracy {mean[0]:.4f} ± {std[0]:.4f}  F1 {mean[1]:.4f} ± "
            f"{std[1]:.4f}  fit CPU {mean[2]:.2f} s ({mean[2] / lsa_cpu:.1f}x LSA), "
            f"wall {mean[3]:.1f} s",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", nargs="+", default=["docstrings", "sms"])
    parser.add_argument("--only", nargs="*", default=[])
    parser.add_argument("--code-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    if "docstrings" in args.corpora:
        run("docstrings", *load_docstrings(), args.code_size, args.only)
    if "sms" in args.corpora and not data_missing(SMS_SPAM):
        run("sms", *load_sms(), args.code_size, args.only)
    print(f"wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

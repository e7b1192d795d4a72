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
``TruncatedSVD`` (LSA). Printed: accuracy, F1, fit time per fold.

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
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_validate
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
    common = dict(hidden_layer_sizes=(128,), tol=None, random_state=0, device="cpu")
    return {
        "LSA (TruncatedSVD)": TruncatedSVD(code_size, random_state=0),
        "squared_error, batch 256, 20 epochs": AutoEncoder(
            code_size, batch_size=256, max_iter=20, **common
        ),
        "multinomial, batch 256, 10 epochs": AutoEncoder(
            code_size, loss="multinomial", batch_size=256, max_iter=10, **common
        ),
        "multinomial, batch 256, 20 epochs": AutoEncoder(
            code_size, loss="multinomial", batch_size=256, max_iter=20, **common
        ),
    }


def run(name, texts, y, code_size, only):
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    f1 = "f1" if len(set(y)) == 2 else "f1_macro"
    print(f"{name}: {len(texts)} documents, {len(set(y))} classes", flush=True)
    for label, reducer in settings(code_size).items():
        if only and not any(o in label for o in only):
            continue
        pipe = make_pipeline(
            TfidfVectorizer(sublinear_tf=True, min_df=2),
            reducer,
            StandardScaler(),
            LogisticRegression(max_iter=1000),
        )
        r = cross_validate(pipe, texts, y, cv=cv, scoring=["accuracy", f1], error_score="raise")
        print(
            f"  {label:45s} accuracy {r['test_accuracy'].mean():.4f} ± "
            f"{r['test_accuracy'].std():.4f}  F1 {r['test_' + f1].mean():.4f} ± "
            f"{r['test_' + f1].std():.4f}  fit {r['fit_time'].mean():.1f} s",
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

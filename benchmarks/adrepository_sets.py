"""Nine categorical anomaly sets of ADRepository as ADBench-style ``.npz`` files.

A group of tabular anomaly sets that no choice of the default detector used
(issue 22): the ARFF files under ``categorical data/`` of Guansong Pang's
ADRepository (https://github.com/GuansongPang/ADRepository-Anomaly-detection-datasets),
leaving out those made from the same sources as ADBench sets (bank marketing,
census, covertype). Each file becomes ``NAME.npz`` with ``X`` (float64) and
``y`` (1 for an anomaly), which ``bench_anomaly.py --data-dir`` reads:

* the anomaly is the label's rarer value;
* a nominal attribute with the values 0 and 1 stays one 0/1 column; any other
  nominal attribute becomes one 0/1 column per value (one-hot), as a user
  would encode it; numeric attributes are kept as they are;
* rows with a missing value are dropped.

Usage (the ``.tar.xz`` file unpacked first, with ``tar xJf``)::

    python benchmarks/adrepository_sets.py "ADRepository/categorical data" /tmp/adr
    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/bench_anomaly.py --data-dir /tmp/adr \\
        --large-rows 70000
"""

from __future__ import annotations

import argparse
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.io import arff

# ARFF file stem -> short name of the .npz file.
SETS = {
    "AID362red_train_allpossiblenominal": "AID362",
    "Reuters-corn-100": "reuters_corn",
    "apascal_entire_trainvsall": "apascal",
    "chess_krkopt_zerovsall": "chess",
    "cmc-nominal": "cmc",
    "kddcup99-corrected-probevsnormal-nominal-cleaned": "kdd_probe",
    "kddcup99-corrected-u2rvsnormal-nominal-cleaned": "kdd_u2r",
    "solar-flare_FvsAll-cleaned": "solar_flare",
    "w7a-libsvm-nonsparse": "w7a",
}


def read_arff(path: Path) -> tuple[pd.DataFrame, object]:
    """The rows and the header of an ARFF file, nominal values as strings."""
    text = path.read_text(encoding="latin-1")
    # Some headers write "@attribute name{0,1}" without a space, which
    # SciPy's reader does not accept.
    text = re.sub(r"(?im)^(@attribute\s+\S+?)\{", r"\1 {", text)
    data, meta = arff.loadarff(io.StringIO(text))
    frame = pd.DataFrame(data)
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].str.decode("utf-8")
    return frame, meta


def to_arrays(frame: pd.DataFrame, meta) -> tuple[np.ndarray, np.ndarray]:
    """``X`` (one-hot nominal attributes) and ``y`` (1 for the rarer label) of a set."""
    label = frame.columns[-1]
    rarer = frame[label].value_counts().idxmin()
    columns = []
    for name in frame.columns[:-1]:
        kind, values = meta[name]
        if kind == "nominal" and not set(values) <= {"0", "1"}:
            columns.append(pd.get_dummies(frame[name], prefix=name).astype(float))
        else:
            columns.append(frame[name].astype(float))
    X = pd.concat(columns, axis=1).to_numpy(np.float64)
    y = (frame[label] == rarer).to_numpy().astype(np.int64)
    complete = ~np.isnan(X).any(axis=1)
    return X[complete], y[complete]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the 'categorical data' folder")
    parser.add_argument("target", type=Path, help="folder for the .npz files")
    args = parser.parse_args(argv)
    args.target.mkdir(parents=True, exist_ok=True)
    for stem, name in SETS.items():
        X, y = to_arrays(*read_arff(args.source / f"{stem}.arff"))
        np.savez(args.target / f"{name}.npz", X=X, y=y)
        print(f"{name:14s} {X.shape[0]:6d} rows {X.shape[1]:4d} features  anomalies {y.mean():.3f}")


if __name__ == "__main__":
    main()

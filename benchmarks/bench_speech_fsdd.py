"""Speech: spoken-digit features from a RecurrentAutoEncoder on FSDD.

Each recording becomes a variable-length sequence of log-mel frames computed
with SciPy (``scipy.signal.stft``, a triangular mel filterbank written here,
log), standardised with the training frames' mean and standard deviation. A
``RecurrentAutoEncoder`` reads the list of sequences (no padding by the user)
into one code per recording; a ``LogisticRegression`` classifies the digits
from the codes. The same list also trains
``AutoEncoder(architecture=PooledSequence())``, whose encoder pools
convolutions over time, so that its code does not depend on timing (the
estimator's defaults; only the code size and the seed are set), and
``RecurrentAutoEncoder`` with its defaults too (``--models
recurrent-defaults``), to tell the pooling from the training budget. Baselines
at the same code size, measured in the same run:

* ``PCA`` on time-pooled frames (mean and standard deviation of each mel band
  over the recording, 2 x n_mels values);
* an MLP ``AutoEncoder`` on the same pooled vectors;
* the classifier on all pooled values (no reduction), for reference.

Splits (../shared/data/README.md): the official one (takes 0-4 of every
speaker and digit are the test set) and leave-one-speaker-out (six folds).
Settings are fixed in advance; nothing is tuned on the test sets.

Usage::

    PYTHONPATH=. OMP_NUM_THREADS=2 python benchmarks/bench_speech_fsdd.py
    PYTHONPATH=. python benchmarks/bench_speech_fsdd.py --splits official --epochs 5
    PYTHONPATH=. python benchmarks/bench_speech_fsdd.py --models pooled pca
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _harness import FSDD, data_missing, timed
from scipy.signal import stft
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoEncoder, RecurrentAutoEncoder
from skae.architectures import PooledSequence

N_FFT, HOP, N_MELS = 512, 256, 32  # 64 ms windows every 32 ms at 8 kHz


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular filters evenly spaced on the mel scale, shape (n_mels, n_fft // 2 + 1)."""
    to_mel = lambda hz: 2595.0 * np.log10(1.0 + hz / 700.0)  # noqa: E731
    to_hz = lambda mel: 700.0 * (10.0 ** (mel / 2595.0) - 1.0)  # noqa: E731
    edges = to_hz(np.linspace(0.0, to_mel(sample_rate / 2), n_mels + 2))
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    left, center, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - left) / (center - left)
    falling = (right - freqs) / (right - center)
    return np.maximum(0.0, np.minimum(rising, falling))


def log_mel(clip: np.ndarray, sample_rate: int, filters: np.ndarray) -> np.ndarray:
    """Log-mel frames of one recording, shape (n_frames, n_mels), float32."""
    _, _, spec = stft(clip, fs=sample_rate, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary=None)
    power = np.abs(spec) ** 2  # (n_fft // 2 + 1, n_frames)
    return np.log(filters @ power + 1e-6).T.astype(np.float32)


def load():
    d = np.load(FSDD)
    sample_rate = int(d["sample_rate"])
    filters = mel_filterbank(sample_rate, N_FFT, N_MELS)
    audio = d["audio"]  # read once: each d["audio"] decompresses the whole array
    bounds = zip(d["offsets"][:-1], d["offsets"][1:], strict=True)
    frames = [log_mel(audio[a:b] / 32768.0, sample_rate, filters) for a, b in bounds]
    return frames, d["digit"].astype(int), d["speaker"], d["index"]


def classify(Z_train, y_train, Z_test, y_test):
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return clf.fit(Z_train, y_train).score(Z_test, y_test)


MODELS = (
    "recurrent",
    "recurrent-defaults",
    "pooled",
    "pooled-mean",
    "pooled-k1",
    "pca",
    "mlp",
    "raw",
)


def run_split(frames, y, train, test, code_size, epochs, models=MODELS, seed=0):
    """Accuracy and fit time of each of ``models`` on one train/test split."""
    # Standardise every mel band with the training frames only.
    stacked = np.concatenate([frames[i] for i in train])
    mean, std = stacked.mean(axis=0), stacked.std(axis=0)
    seqs = [(f - mean) / std for f in frames]
    pooled = np.array([np.r_[s.mean(axis=0), s.std(axis=0)] for s in seqs])
    seq_split = ([seqs[i] for i in train], [seqs[i] for i in test])
    results = {}

    def evaluate(model, name, reducer, X_train, X_test):
        if model not in models:
            return
        Z_train, seconds = timed(reducer.fit_transform, X_train)
        acc = classify(Z_train, y[train], reducer.transform(X_test), y[test])
        results[name] = (acc, seconds)
        epochs = f", {reducer.n_iter_} epochs" if hasattr(reducer, "n_iter_") else ""
        print(f"  ({name}: accuracy {acc:.3f}{epochs}, fit {seconds:.1f} s)", flush=True)

    evaluate(
        "recurrent",
        f"RecurrentAutoEncoder (GRU 64) on log-mel sequences -> {code_size}",
        RecurrentAutoEncoder(
            code_size,
            cell="gru",
            hidden_size=64,
            batch_size=32,
            learning_rate_init=3e-3,
            max_iter=epochs,
            random_state=seed,
            device="cpu",
        ),
        *seq_split,
    )
    evaluate(
        "recurrent-defaults",
        f"RecurrentAutoEncoder() (defaults) on log-mel sequences -> {code_size}",
        RecurrentAutoEncoder(code_size, random_state=seed, device="cpu"),
        *seq_split,
    )
    evaluate(
        "pooled",
        f"AutoEncoder, PooledSequence() on log-mel sequences -> {code_size}",
        AutoEncoder(code_size, architecture=PooledSequence(), random_state=seed, device="cpu"),
        *seq_split,
    )
    # Two variants of the pooled encoder, for the design study on the validation split.
    evaluate(
        "pooled-mean",
        f"AutoEncoder, PooledSequence(pooling='mean') -> {code_size}",
        AutoEncoder(
            code_size,
            architecture=PooledSequence(pooling="mean"),
            random_state=seed,
            device="cpu",
        ),
        *seq_split,
    )
    evaluate(
        "pooled-k1",
        f"AutoEncoder, PooledSequence(kernel_size=1) -> {code_size}",
        AutoEncoder(
            code_size, architecture=PooledSequence(kernel_size=1), random_state=seed, device="cpu"
        ),
        *seq_split,
    )
    evaluate(
        "pca",
        f"PCA on pooled frames (mean+std) -> {code_size}",
        make_pipeline(StandardScaler(), PCA(code_size, random_state=seed)),
        pooled[train],
        pooled[test],
    )
    evaluate(
        "mlp",
        f"AutoEncoder (MLP 64) on pooled frames -> {code_size}",
        make_pipeline(
            StandardScaler(),
            AutoEncoder(
                code_size,
                hidden_layer_sizes=(64,),
                batch_size=32,
                max_iter=100,
                random_state=seed,
                device="cpu",
            ),
        ),
        pooled[train],
        pooled[test],
    )
    if "raw" in models:
        results[f"no reduction (all {pooled.shape[1]} pooled values)"] = timed(
            classify, pooled[train], y[train], pooled[test], y[test]
        )
    return results


def report(title, runs):
    print(title)
    for name in runs[0]:
        accs = np.array([r[name][0] for r in runs])
        secs = np.mean([r[name][1] for r in runs])
        spread = f" ± {accs.std():.3f} (min {accs.min():.3f})" if len(runs) > 1 else ""
        print(f"  {name:60s} accuracy {accs.mean():.3f}{spread}  fit {secs:.1f} s", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--splits",
        nargs="+",
        default=["official", "speaker"],
        choices=["official", "speaker", "validation"],
        help="validation: inside the official training set, takes 10-49 to train, 5-9 to test",
    )
    parser.add_argument("--code-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument(
        "--speakers", nargs="+", help="held-out speakers of the leave-one-out split (default: all)"
    )
    parser.add_argument(
        "--models", nargs="+", choices=MODELS, default=list(MODELS), help="models to run"
    )
    args = parser.parse_args()
    if data_missing(FSDD):
        return
    torch.set_num_threads(min(2, torch.get_num_threads()))
    start = time.perf_counter()
    frames, y, speaker, take = load()
    lengths = np.array([len(f) for f in frames])
    print(
        f"FSDD: {len(frames)} recordings, {N_MELS} log-mel bands, {lengths.min()}-"
        f"{lengths.max()} frames (median {int(np.median(lengths))}); code size "
        f"{args.code_size}; RecurrentAutoEncoder epochs {args.epochs}; torch threads "
        f"{torch.get_num_threads()}; features in {time.perf_counter() - start:.1f} s",
        flush=True,
    )

    def run(train, test):
        """One split: ``train`` and ``test`` are boolean masks over the recordings."""
        train, test = np.flatnonzero(train), np.flatnonzero(test)
        return run_split(frames, y, train, test, args.code_size, args.epochs, args.models)

    if "official" in args.splits:
        runs = [run(take >= 5, take < 5)]
        report("Official split (train on takes 5-49, test on takes 0-4):", runs)
    if "validation" in args.splits:
        # The official test takes (0-4) are left out entirely.
        runs = [run(take >= 10, (take >= 5) & (take < 10))]
        report("Validation split (train on takes 10-49, test on takes 5-9):", runs)
    if "speaker" in args.splits:
        runs = []
        for who in args.speakers or np.unique(speaker):
            runs.append(run(speaker != who, speaker == who))
            report(f"  held out {who}:", runs[-1:])
        report(f"Leave one speaker out ({len(runs)} folds, mean over folds):", runs)
    print(f"wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

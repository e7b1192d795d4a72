"""
===================================================
Spoken digits: one code per recording from log-mel
===================================================

Speech comes as sequences of short-time spectra, one frame every few
milliseconds, and recordings differ in length. A
:class:`~skae.RecurrentAutoEncoder` takes a plain list of such sequences, reads
each into a fixed-size code and is trained to unroll the code back into the
sequence. Here its codes of spoken digits go to a classifier, beside
:class:`~sklearn.decomposition.PCA` of time-pooled frames at the same code
size, and a two-value code is drawn, coloured by digit.

The frames are log-mel spectra computed with SciPy: a short-time Fourier
transform (:func:`scipy.signal.stft`), a triangular mel filterbank, and a log.
The data are the Free Spoken Digit Dataset in ``../shared/data`` when that
folder is present (its official split); otherwise synthetic "words" stand in,
each digit a different pair of moving spectral peaks.
"""

# %%
# Log-mel frames, one variable-length sequence per recording
# ----------------------------------------------------------
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from scipy.signal import stft
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import RecurrentAutoEncoder

N_FFT, HOP, N_MELS = 512, 256, 24  # 64 ms windows every 32 ms at 8 kHz


def mel_filterbank(sample_rate, n_fft, n_mels):
    """Triangular filters evenly spaced on the mel scale, (n_mels, n_fft // 2 + 1)."""
    to_mel = lambda hz: 2595.0 * np.log10(1.0 + hz / 700.0)  # noqa: E731
    to_hz = lambda mel: 700.0 * (10.0 ** (mel / 2595.0) - 1.0)  # noqa: E731
    edges = to_hz(np.linspace(0.0, to_mel(sample_rate / 2), n_mels + 2))
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    left, center, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising, falling = (freqs - left) / (center - left), (right - freqs) / (right - center)
    return np.maximum(0.0, np.minimum(rising, falling))


def log_mel(clip, sample_rate, filters):
    _, _, spec = stft(clip, fs=sample_rate, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary=None)
    return np.log(filters @ np.abs(spec) ** 2 + 1e-6).T.astype(np.float32)  # (frames, mels)


rng = np.random.default_rng(0)
shared = next((p for p in (Path("../shared/data"), Path("../../shared/data")) if p.is_dir()), None)
if shared is not None and (shared / "fsdd.npz").exists():
    d = np.load(shared / "fsdd.npz")
    sample_rate = int(d["sample_rate"])
    bounds = zip(d["offsets"][:-1], d["offsets"][1:], strict=True)
    audio = d["audio"]  # read once: each d["audio"] decompresses the whole array
    clips = [audio[a:b] / 32768.0 for a, b in bounds]
    digits, is_test = d["digit"].astype(int), d["index"] < 5
    # Two of the six speakers keep the example short; the benchmark uses all.
    keep = np.isin(d["speaker"], ["george", "jackson"])
    source = "FSDD (speakers george and jackson)"
else:
    sample_rate, t_step = 8000, 1 / 8000

    def word(digit):
        n = int(rng.integers(2500, 5000))
        t = np.arange(n) * t_step
        f1 = 300 + 60 * digit + 400 * t / t[-1] * (-1) ** digit
        f2 = 1200 + 150 * digit - 300 * t / t[-1]
        envelope = np.sin(np.pi * np.arange(n) / n)
        phase1, phase2 = 2 * np.pi * np.cumsum(f1) * t_step, 2 * np.pi * np.cumsum(f2) * t_step
        return envelope * (np.sin(phase1) + 0.5 * np.sin(phase2)) + 0.05 * rng.normal(size=n)

    digits = np.repeat(np.arange(10), 60)
    clips = [word(k) for k in digits]
    is_test = np.tile(np.arange(60) < 10, 10)
    keep = np.ones(len(digits), bool)
    source = "synthetic words"

filters = mel_filterbank(sample_rate, N_FFT, N_MELS)
frames = [log_mel(clip, sample_rate, filters) for clip, k in zip(clips, keep, strict=True) if k]
digits, is_test = digits[keep], is_test[keep]
train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
# Standardise each mel band with the training frames.
stacked = np.concatenate([frames[i] for i in train])
mean, std = stacked.mean(axis=0), stacked.std(axis=0)
seqs = [(f - mean) / std for f in frames]
lengths = [len(s) for s in seqs]
print(
    f"{source}: {len(seqs)} recordings ({len(train)} train, {len(test)} test), "
    f"{min(lengths)}-{max(lengths)} frames of {N_MELS} log-mel bands"
)

# %%
# Codes for a classifier: recurrent autoencoder vs PCA of pooled frames
# ---------------------------------------------------------------------
# The list of sequences goes in as it is; the model packs them, so padding
# never enters the loss. The baseline pools each recording over time (mean
# and standard deviation of each band) and keeps as many principal
# components as the autoencoder has code values.
code_size = 8


def classify(Z):
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return clf.fit(Z[train], digits[train]).score(Z[test], digits[test])


def recurrent(n_components):
    return RecurrentAutoEncoder(
        n_components,
        cell="gru",
        hidden_size=32,
        batch_size=32,
        learning_rate_init=3e-3,
        max_iter=8,
        tol=None,
        random_state=0,
    )


rae = recurrent(code_size).fit([seqs[i] for i in train])
codes = rae.transform(seqs)
pooled = np.array([np.r_[s.mean(axis=0), s.std(axis=0)] for s in seqs])
pca = make_pipeline(StandardScaler(), PCA(code_size, random_state=0)).fit(pooled[train])
print(f"RecurrentAutoEncoder codes ({code_size}): accuracy {classify(codes):.3f}")
print(f"PCA of pooled frames ({code_size}):      accuracy {classify(pca.transform(pooled)):.3f}")

# %%
# A two-value code, coloured by digit
# -----------------------------------
rae2 = recurrent(2).fit([seqs[i] for i in train])
Z = rae2.transform(seqs)
fig, ax = plt.subplots(figsize=(6, 5))
points = ax.scatter(Z[:, 0], Z[:, 1], c=digits, cmap="tab10", s=8, alpha=0.8)
ax.legend(*points.legend_elements(), title="digit", fontsize=8, loc="best")
ax.set(xlabel="code 1", ylabel="code 2")
ax.set_title(
    f"RecurrentAutoEncoder, 2-value codes ({source})\n"
    f"logistic regression on them: accuracy {classify(Z):.3f}",
    fontsize=10,
)
fig.tight_layout()
plt.show()

# %%
# Conclusion
# ----------
# The recurrent autoencoder turns recordings of any length into codes of one
# size, learned without labels, that a linear classifier can read digits from.
# How they compare with PCA of pooled frames depends on the data:
# ``benchmarks/bench_speech_fsdd.py`` measures both on all six FSDD speakers,
# on the official split and leaving each speaker out, and the "Text and
# speech" page of the user guide gives its table.

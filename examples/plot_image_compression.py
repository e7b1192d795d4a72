"""
================================================================
Image compression with a convolutional autoencoder, PCA and JPEG
================================================================

An autoencoder compresses: the code of an image is all a receiver needs, given
the decoder. Here a convolutional :class:`~skae.AutoEncoder`
(``architecture=Convolutional2D``) turns 8x8 digits into codes of ``k``
values, each quantised to one byte, and back; PCA with ``k`` components is
quantised the same way, and JPEG (from Pillow) at several qualities gives the
reference curve of a general-purpose codec. The result is a rate-distortion
curve: reconstruction quality (PSNR) against bytes per image. The benchmark
``benchmarks/bench_compression_mnist.py`` does the same on 28x28 MNIST digits.
"""

# %%
# Flat digits, with the image shape given once to the architecture
# ----------------------------------------------------------------
# ``load_digits`` gives flat rows of 64 pixels. ``Convolutional2D((8, 8))``
# reads each row as an 8x8 image, so the estimator takes the same 2-D array
# a scaler or a pipeline would hand it, and reconstructions come back flat.
import io

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from skae import AutoEncoder
from skae.architectures import Convolutional2D

torch.set_num_threads(1)  # small models: one thread is fastest
X, _ = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test = train_test_split(X, test_size=0.3, random_state=0)


def psnr(clean, estimate):
    return 10 * np.log10(1.0 / np.mean((clean - estimate) ** 2))


def quantise(codes, low, high):
    """One byte per code value, on the range of the training codes."""
    scale = np.where(high > low, high - low, 1.0)
    q = np.round((np.clip(codes, low, high) - low) / scale * 255)
    return q / 255 * scale + low


# %%
# Autoencoder and PCA at 2 to 16 bytes per image
# ----------------------------------------------
curves = {"convolutional AutoEncoder": [], "PCA": []}
examples = {}
for k in (2, 4, 8, 16):
    ae = AutoEncoder(
        k,
        architecture=Convolutional2D((8, 8), channels=(16, 32)),
        max_iter=60,
        tol=None,
        batch_size=64,
        learning_rate_init=3e-3,
        random_state=0,
    ).fit(X_train)
    codes = ae.transform(X_train)
    recon = ae.inverse_transform(quantise(ae.transform(X_test), codes.min(0), codes.max(0)))
    curves["convolutional AutoEncoder"].append((k, psnr(X_test, recon)))
    examples[f"AE, {k} B"] = recon

    pca = PCA(k).fit(X_train)
    codes = pca.transform(X_train)
    recon = pca.inverse_transform(quantise(pca.transform(X_test), codes.min(0), codes.max(0)))
    curves["PCA"].append((k, psnr(X_test, recon)))
    if k == 8:
        examples[f"PCA, {k} B"] = recon

# %%
# JPEG at several qualities
# -------------------------
# JPEG's headers alone take hundreds of bytes, more than an 8x8 image holds;
# the curve counts only the entropy-coded scan, a lower bound on what JPEG
# would need in a container that shares its headers.
curves["JPEG (scan only)"] = []
for quality in (10, 30, 50, 75, 95):
    decoded, sizes = [], []
    for img in X_test:
        buffer = io.BytesIO()
        pixels = np.round(img.reshape(8, 8) * 255).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(buffer, "JPEG", quality=quality, optimize=True)
        data = buffer.getvalue()
        sos = data.index(b"\xff\xda")
        sizes.append(len(data) - (sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")) - 2)
        decoded.append(np.asarray(Image.open(buffer), dtype=float).ravel() / 255)
    decoded = np.array(decoded)
    curves["JPEG (scan only)"].append((np.mean(sizes), psnr(X_test, decoded)))
    if quality == 50:
        examples[f"JPEG q50, {np.mean(sizes):.0f} B"] = decoded

for name, points in curves.items():
    print(name, ", ".join(f"{b:.0f} B: {p:.1f} dB" for b, p in points))

# %%
# The rate-distortion curves
# --------------------------
fig, ax = plt.subplots(figsize=(6.4, 4))
for (name, points), marker in zip(curves.items(), "osv", strict=True):
    ax.plot(*zip(*points, strict=True), marker=marker, label=name)
ax.set_xscale("log")
ax.set_xticks([2, 4, 8, 16, 32, 64], labels=["2", "4", "8", "16", "32", "64"])
ax.minorticks_off()
ax.set_xlabel("bytes per 8x8 image")
ax.set_ylabel("PSNR (dB)")
ax.set_title("Held-out digits: quality against size")
ax.legend()
ax.grid(alpha=0.3)
fig.tight_layout()

# %%
# A few held-out digits at each rate
# ----------------------------------
rows = {"original": X_test, **examples}
fig, axes = plt.subplots(len(rows), 6, figsize=(6.4, 1.05 * len(rows)))
for r, (name, images) in enumerate(rows.items()):
    for c in range(6):
        axes[r, c].imshow(images[c].reshape(8, 8).clip(0, 1), cmap="gray_r", vmin=0, vmax=1)
        axes[r, c].set_xticks([])
        axes[r, c].set_yticks([])
    label = name if name == "original" else f"{name}\n{psnr(X_test, images):.1f} dB"
    axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
fig.tight_layout()
plt.show()

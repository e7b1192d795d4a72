r"""Image compression on MNIST: a convolutional autoencoder against PCA and JPEG.

Each method turns a 28x28 test digit into bytes and back:

* ``AutoEncoder(architecture=Convolutional2D(...))`` with a code of ``k`` values,
  each quantised to 8 bits (per-dimension range from the training codes):
  ``k`` bytes per image;
* PCA with ``k`` components, quantised the same way: ``k`` bytes per image;
* JPEG from Pillow at several quality settings, on the 8-bit image: the size of
  the whole file (headers included, which dominate at this image size) and,
  as a lower bound on what a container that shares the headers would need,
  the size of the entropy-coded scan alone.

The decoders (the autoencoder's weights, PCA's components, JPEG's tables)
are not counted: they are shared by every image. The script prints PSNR
(peak 1) and MSE against the original test images for each rate, and
optionally saves a figure of the rate-distortion curves with example digits.

Usage::

    PYTHONPATH=. python benchmarks/bench_compression_mnist.py
    PYTHONPATH=. python benchmarks/bench_compression_mnist.py \
        --figure docs/images/compression_mnist.png
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from _harness import MNIST, data_missing, load_mnist, markdown_table, mnist_training, psnr, timed
from sklearn.decomposition import PCA

from skae import AutoEncoder
from skae.architectures import Convolutional2D

CODE_SIZES = (4, 8, 16, 32)
JPEG_QUALITIES = (5, 10, 25, 50, 75, 90)


def quantise(codes, low, high, bits=8):
    """Codes to integers in [0, 2**bits - 1] on the training range, and back."""
    levels = 2**bits - 1
    scale = np.where(high > low, high - low, 1.0)
    q = np.round((np.clip(codes, low, high) - low) / scale * levels)
    return q / levels * scale + low


def jpeg_round_trip(images, quality):
    """(decoded images in [0, 1], mean file bytes, mean scan bytes) of JPEG at ``quality``."""
    from PIL import Image

    out, file_bytes, scan_bytes = [], [], []
    for img in images:
        buffer = io.BytesIO()
        Image.fromarray(np.round(img * 255).astype(np.uint8), mode="L").save(
            buffer, format="JPEG", quality=quality, optimize=True
        )
        data = buffer.getvalue()
        file_bytes.append(len(data))
        # The entropy-coded data runs from the end of the start-of-scan header
        # to the end-of-image marker.
        sos = data.index(b"\xff\xda")
        header = int.from_bytes(data[sos + 2 : sos + 4], "big")
        scan_bytes.append(len(data) - (sos + 2 + header) - 2)
        out.append(np.asarray(Image.open(buffer), dtype=np.float32) / 255)
    return np.stack(out), float(np.mean(file_bytes)), float(np.mean(scan_bytes))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--figure", type=Path, default=None)
    args = parser.parse_args(argv)
    if data_missing(MNIST):
        return 0
    X_train, _, X_test, _ = load_mnist(flat=False)  # (8000, 28, 28), (2000, 28, 28)
    flat_train, flat_test = X_train.reshape(len(X_train), -1), X_test.reshape(len(X_test), -1)
    rows, examples = [], {}
    for k in CODE_SIZES:
        ae, fit_s = timed(
            AutoEncoder(
                k, architecture=Convolutional2D(channels=(32, 64)), **mnist_training(args.epochs)
            ).fit,
            X_train,
        )
        codes = ae.transform(X_train)
        low, high = codes.min(axis=0), codes.max(axis=0)
        recon = ae.inverse_transform(quantise(ae.transform(X_test), low, high))
        rows.append(("conv AutoEncoder", f"k={k}", k, recon, X_test, fit_s))
        examples[f"conv AE, {k} B"] = recon

        pca = PCA(k, random_state=0).fit(flat_train)
        codes = pca.transform(flat_train)
        low, high = codes.min(axis=0), codes.max(axis=0)
        recon = pca.inverse_transform(quantise(pca.transform(flat_test), low, high))
        rows.append(("PCA", f"k={k}", k, recon.reshape(X_test.shape), X_test, None))
        examples[f"PCA, {k} B"] = recon.reshape(X_test.shape)

    for quality in JPEG_QUALITIES:
        decoded, file_b, scan_b = jpeg_round_trip(X_test, quality)
        rows.append(("JPEG (file)", f"quality={quality}", file_b, decoded, X_test, None))
        rows.append(("JPEG (scan only)", f"quality={quality}", scan_b, decoded, X_test, None))
        if quality in (10, 50):
            examples[f"JPEG q{quality}, {file_b:.0f} B"] = decoded

    lines = []
    for method, setting, size, recon, target, fit_s in rows:
        mse = float(np.mean((recon - target) ** 2))
        fit = "" if fit_s is None else f"{fit_s:.0f}"
        lines.append(
            [method, setting, f"{size:.1f}", f"{mse:.4f}", f"{psnr(recon, target):.2f}", fit]
        )
    columns = ["method", "setting", "bytes per image", "test MSE", "test PSNR (dB)", "fit time (s)"]
    print(markdown_table(columns, lines, "llrrrr"))
    if args.figure is not None:
        save_figure(args.figure, rows, X_test, examples)
    return 0


def save_figure(path, rows, X_test, examples):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(11, 4.2))
    ax = fig.add_subplot(1, 2, 1)
    for method, marker in [
        ("conv AutoEncoder", "o"),
        ("PCA", "s"),
        ("JPEG (file)", "^"),
        ("JPEG (scan only)", "v"),
    ]:
        pts = [(r[2], psnr(r[3], r[4])) for r in rows if r[0] == method]
        ax.plot(*zip(*pts, strict=True), marker=marker, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("bytes per 28x28 image (log scale)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title("Rate-distortion on 2,000 MNIST test digits")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    shown = ["original", *examples]
    n_digits = 5
    for r, name in enumerate(shown):
        images = X_test if name == "original" else examples[name]
        for c in range(n_digits):
            sub = fig.add_subplot(len(shown), 2 * n_digits, r * 2 * n_digits + n_digits + c + 1)
            sub.imshow(images[c].clip(0, 1), cmap="gray_r", vmin=0, vmax=1)
            sub.set_xticks([])
            sub.set_yticks([])
            if c == 0:
                sub.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    print(f"figure written to {path}")


if __name__ == "__main__":
    sys.exit(main())

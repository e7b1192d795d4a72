"""Denoising MNIST digits: DenoisingAutoEncoder against PCA and AutoEncoder.

Gaussian noise of standard deviation 0.3 and 0.5 is added to the 2k test
images (pixels in [0, 1], not clipped after the noise). Each method
reconstructs the noisy images; the script prints the MSE and PSNR (peak 1)
against the clean images for:

* the noisy input itself;
* PCA fitted on the clean training images, with ``n_components`` chosen on a
  validation split (noisy validation images vs clean ones, per noise level);
* AutoEncoder trained on the clean training images;
* DenoisingAutoEncoder trained with ``noise="gaussian"`` at the test's level;
* the same DenoisingAutoEncoder with ``architecture=Convolutional2D((28, 28),
  channels=(32, 64))``: two stride-2 convolutions (28 -> 14 -> 7), a linear
  code of the same size, and transposed convolutions back.

The MLP autoencoders share one architecture (784-256-64-256-784, ReLU); all
share the code size (64), seed, batch size (128), learning rate (2e-3) and
number of epochs (20). The fit time of each model is printed beside it.

Usage::

    PYTHONPATH=. python benchmarks/bench_denoising_mnist.py
    PYTHONPATH=. python benchmarks/bench_denoising_mnist.py --figure docs/images/denoising_mnist.png
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from _harness import MNIST, data_missing, load_mnist, markdown_table, mnist_training, psnr, timed
from sklearn.decomposition import PCA

from skae import AutoEncoder, DenoisingAutoEncoder
from skae.architectures import Convolutional2D

NOISE_LEVELS = (0.3, 0.5)
PCA_GRID = (8, 16, 24, 32, 48, 64, 96, 128, 192)


def add_noise(X, sigma, seed):
    rng = np.random.RandomState(seed)
    return (X + sigma * rng.normal(size=X.shape)).astype(np.float32)


def mse(A, B):
    return float(np.mean((A - B) ** 2))


def best_pca(X_train, sigma):
    """PCA on clean images; n_components minimising validation denoising MSE."""
    X_fit, X_val = X_train[:6400], X_train[6400:]
    X_val_noisy = add_noise(X_val, sigma, seed=1)
    pca = PCA(max(PCA_GRID), random_state=0).fit(X_fit)
    errors = {}
    for n in PCA_GRID:
        Z = (X_val_noisy - pca.mean_) @ pca.components_[:n].T
        errors[n] = mse(Z @ pca.components_[:n] + pca.mean_, X_val)
    n_best = min(errors, key=errors.get)
    return PCA(n_best, random_state=0).fit(X_train), n_best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--figure", type=Path, default=None, help="save example digits here")
    args = parser.parse_args(argv)
    if data_missing(MNIST):
        return 0
    start = time.perf_counter()
    X_train, _, X_test, _ = load_mnist()
    common = dict(hidden_layer_sizes=(256,), **mnist_training(args.epochs))
    ae, t_ae = timed(AutoEncoder(64, **common).fit, X_train)
    conv = Convolutional2D((28, 28), channels=(32, 64))
    # hidden_layer_sizes sizes the MLPs only: the convolutional network has its own.
    conv_common = {k: v for k, v in common.items() if k != "hidden_layer_sizes"}
    rows, examples = [], {}
    for sigma in NOISE_LEVELS:
        X_noisy = add_noise(X_test, sigma, seed=0)
        (pca, n_pca), t_pca = timed(best_pca, X_train, sigma)
        dae, t_dae = timed(
            DenoisingAutoEncoder(64, noise="gaussian", noise_level=sigma, **common).fit, X_train
        )
        cdae, t_cdae = timed(
            DenoisingAutoEncoder(
                64, architecture=conv, noise="gaussian", noise_level=sigma, **conv_common
            ).fit,
            X_train,
        )
        outputs = {
            "noisy input": (X_noisy, None),
            f"PCA (n_components={n_pca})": (
                pca.inverse_transform(pca.transform(X_noisy)),
                t_pca,
            ),
            "AutoEncoder": (ae.inverse_transform(ae.transform(X_noisy)), t_ae),
            "DenoisingAutoEncoder": (dae.denoise(X_noisy), t_dae),
            "DenoisingAutoEncoder, Convolutional2D": (cdae.denoise(X_noisy), t_cdae),
        }
        examples[sigma] = {name: X_hat for name, (X_hat, _) in outputs.items()}
        for name, (X_hat, t) in outputs.items():
            fit_time = "" if t is None else f"{t:.1f}"
            cells = [f"{mse(X_hat, X_test):.4f}", f"{psnr(X_hat, X_test):.2f}", fit_time]
            rows.append([sigma, name, *cells])
    wall = time.perf_counter() - start

    columns = ["noise std", "method", "test MSE", "test PSNR (dB)", "fit time (s)"]
    print(markdown_table(columns, rows))
    print(f"\nwall time: {wall:.0f} s ({args.epochs} epochs per autoencoder)")
    if args.figure is not None:
        save_figure(args.figure, X_test, examples)
    return 0


def save_figure(path, X_test, examples):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_digits = 6
    rows = [("clean", X_test)] + [
        (f"{name}\nstd {sigma}", X) for sigma, out in examples.items() for name, X in out.items()
    ]
    fig, axes = plt.subplots(len(rows), n_digits, figsize=(n_digits * 0.9, len(rows) * 0.95))
    for r, (label, X) in enumerate(rows):
        for c in range(n_digits):
            ax = axes[r, c]
            ax.imshow(X[c].reshape(28, 28).clip(0, 1), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


if __name__ == "__main__":
    sys.exit(main())

"""The default convolutional DenoisingAutoEncoder on 3,000 MNIST digits against PCA.

A check of issue 20 ("Defaults that learn"): ``DenoisingAutoEncoder(64,
architecture=Convolutional2D(), noise_level=sigma, random_state=0)`` with every
other parameter at its default (``max_iter=200``, ``batch_size="auto"``, the
relative ``tol``), trained on the first 3,000 training digits of
``../shared/data/mnist10k.npz`` (pixels / 255, as (n, 28, 28) images). The 2,000
test digits get Gaussian noise of standard deviation ``sigma`` (seed 0, not
clipped). It prints the PSNR (peak 1) against the clean test digits of the
noisy input, of the best PCA reconstruction (PCA fitted on the clean training
digits, ``n_components`` the best of a grid *on the test digits*, which
favours PCA), and of the model's ``denoise``; during training, the PSNR on the
first 500 noisy test digits at a few epochs; then the epochs run, the fit time
and the warnings of the fit.

Usage::

    PYTHONPATH=. python benchmarks/bench_denoising_default.py --sigma 0.5
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import torch
from _harness import MNIST, data_missing, load_mnist, psnr
from sklearn.decomposition import PCA
from skorch.callbacks import Callback

from skae import DenoisingAutoEncoder
from skae.architectures import Convolutional2D

PCA_GRID = (8, 16, 24, 32, 48, 64, 96, 128, 192)
TRACKED_EPOCHS = (1, 2, 4, 8, 15, 25, 40, 60, 80, 100, 130, 160, 200)


def best_pca(pca, noisy, clean):
    """The best PSNR of PCA's reconstructions over ``PCA_GRID``, and its n_components."""
    flat = noisy.reshape(len(noisy), -1) - pca.mean_
    scores = {}
    for n in PCA_GRID:
        top = pca.components_[:n]
        scores[n] = psnr(((flat @ top.T) @ top + pca.mean_).reshape(clean.shape), clean)
    n = max(scores, key=scores.get)
    return scores[n], n


class TrackPSNR(Callback):
    """Prints the PSNR of the module's reconstructions of ``noisy`` at some epochs."""

    def __init__(self, noisy, clean, start):
        self.noisy, self.clean, self.start = noisy, clean, start

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        if epoch not in TRACKED_EPOCHS and epoch % 50:
            return
        module = net.module_
        module.eval()
        with torch.no_grad():
            out = module.decode(module.encode(torch.as_tensor(self.noisy).unsqueeze(1)))
        module.train()
        value = psnr(out.reshape(self.clean.shape).numpy(), self.clean)
        print(
            f"  epoch {epoch}: PSNR on 500 noisy test digits {value:.2f} dB, training loss "
            f"{net.history[-1, 'train_loss']:.5f}, {time.time() - self.start:.0f} s",
            flush=True,
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sigma", type=float, default=0.5)
    parser.add_argument("--n-components", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if data_missing(MNIST):
        return 0
    torch.set_num_threads(args.threads)
    X_train, _, X_test, _ = load_mnist(flat=False)
    X_train = X_train[:3000]
    rng = np.random.RandomState(0)
    noisy = (X_test + args.sigma * rng.normal(size=X_test.shape)).astype(np.float32)
    pca = PCA(max(PCA_GRID), random_state=0).fit(X_train.reshape(len(X_train), -1))
    print(f"torch {torch.__version__}, {args.threads} thread(s), command: {' '.join(sys.argv)}")
    subset, n_subset = best_pca(pca, noisy[:500], X_test[:500])
    whole, n_whole = best_pca(pca, noisy, X_test)
    print(f"best PCA on the 500 tracked test digits {subset:.2f} dB (n={n_subset})")
    print(
        f"noisy input {psnr(noisy, X_test):.2f} dB; best PCA on the test set "
        f"{whole:.2f} dB (n={n_whole})"
    )
    start = time.time()
    model = DenoisingAutoEncoder(
        args.n_components,
        architecture=Convolutional2D(),
        noise_level=args.sigma,
        random_state=0,
        device="cpu",
        callbacks=[TrackPSNR(noisy[:500], X_test[:500], start)],
    )
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model.fit(X_train)
    seconds = time.time() - start
    value = psnr(model.denoise(noisy).reshape(X_test.shape), X_test)
    messages = [str(w.message) for w in record] or ["none"]
    print(f"epochs {model.n_iter_}, fit {seconds:.0f} s, PSNR {value:.2f} dB; warnings: {messages}")
    print("training loss every 10 epochs:", " ".join(f"{c:.5f}" for c in model.loss_curve_[::10]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

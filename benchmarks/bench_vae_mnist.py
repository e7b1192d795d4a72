"""VariationalAutoEncoder on MNIST: test log-likelihood, figures, anomaly detection.

Three parts, each printing its numbers and wall time:

* ``likelihood``: an MLP VAE (Bernoulli likelihood, 50-d latent) on
  stochastically binarised MNIST; test ELBO and importance-weighted bound
  (IWAE, ``--k`` samples) in nats, a per-epoch curve of train/test ELBO, and
  a grid of generated digits (``docs/images/vae_mnist_samples.png``).
* ``latent``: a 2-d VAE whose test-set posterior means, coloured by label,
  make ``docs/images/vae_mnist_latent.png``.
* ``anomaly``: train on all digits but one, score held-out normal digits and
  the held-out class with ``score_samples``; ROC-AUC of the VAE beside
  ``AutoEncoder`` and PCA (grey-level pixels in [0, 1]).

Data: ``../shared/data/mnist10k.npz``, the official 10k MNIST test set split
8000/2000 (seed 0). Numbers are not comparable 1:1 with the literature's
60k/10k split.

Binarisation: stochastic, pixel ~ Bernoulli(grey level / 255). The training
set stacks ``--copies`` independent binarisations of each training image (an
approximation of the dynamic binarisation of Burda et al.); the test set is
one binarisation with a fixed seed.

Usage::

    PYTHONPATH=. python benchmarks/bench_vae_mnist.py              # all parts
    PYTHONPATH=. python benchmarks/bench_vae_mnist.py --part anomaly
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _harness import MNIST, data_missing, load_mnist, timed
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from skorch.callbacks import Callback

from skae import AutoEncoder, VariationalAutoEncoder

IMAGES = Path("docs/images")


def load():
    """MNIST rows in [0, 1], float64: the grey levels the binarisation draws from."""
    return load_mnist(dtype=np.float64)


def binarise(X, rng):
    return (rng.uniform(size=X.shape) < X).astype(np.float32)


class ELBOCurve(Callback):
    """Train and test ELBO (one sample of z per image) after every epoch."""

    def __init__(self, vae, X_train, X_test):
        self.vae, self.X_train, self.X_test = vae, X_train, X_test
        self.rows = []

    def on_epoch_end(self, net, **kwargs):
        module = net.module_
        module.eval()
        with torch.no_grad():
            elbo = [
                self.vae._log_likelihood_bound(module, torch.as_tensor(X), seed=0).mean().item()
                for X in (self.X_train, self.X_test)
            ]
        self.rows.append((len(net.history), *elbo))


def bernoulli_vae(n_components, epochs):
    """The MLP VAE of the likelihood and latent parts, at a given code size."""
    return VariationalAutoEncoder(
        n_components=n_components,
        likelihood="bernoulli",
        hidden_layer_sizes=(512, 256),
        batch_size=100,
        max_iter=epochs,
        tol=None,
        random_state=0,
        device="cpu",
    )


def part_likelihood(args):
    x_train, _, x_test, _ = load()
    x_train = x_train[: args.n_train]
    rng = np.random.RandomState(0)
    X_train = np.vstack([binarise(x_train, rng) for _ in range(args.copies)])
    X_test = binarise(x_test, np.random.RandomState(1))
    vae = bernoulli_vae(50, args.epochs)
    # Train ELBO is measured on the first binarisation of 2000 training images.
    curve = ELBOCurve(vae, X_train[:2000], X_test)
    vae.set_params(callbacks=[("elbo_curve", curve)])
    _, t_fit = timed(vae.fit, X_train)
    print(
        f"fit: {args.epochs} epochs x {len(X_train)} rows "
        f"({args.epochs * args.copies} passes over {len(x_train)} images), {t_fit:.0f} s"
    )
    print("epoch  image-passes  train ELBO  test ELBO")
    for epoch, train, test in curve.rows:
        print(f"{epoch:5d}  {epoch * args.copies:12d}  {train:10.2f}  {test:9.2f}")

    t0 = time.perf_counter()
    elbo = vae.set_params(n_importance_samples=1).score(X_test)
    iwae = vae.set_params(n_importance_samples=args.k).score(X_test)
    t_score = time.perf_counter() - t0
    print(
        f"test ELBO (K=1): {elbo:.2f} nats; IWAE bound (K={args.k}): {iwae:.2f} nats "
        f"-> NLL estimate {-iwae:.2f} nats ({t_score:.0f} s)"
    )
    train_iwae = vae.score(X_train[:2000])
    print(f"train IWAE bound (K={args.k}, 2000 training images): {train_iwae:.2f} nats")
    if len(x_train) < 8000:
        return  # the figure shows the model trained on all 8000 images

    import matplotlib.pyplot as plt

    codes = np.random.RandomState(0).standard_normal((64, vae.n_components))
    digits = vae.inverse_transform(codes).reshape(8, 8, 28, 28)
    grid = digits.transpose(0, 2, 1, 3).reshape(8 * 28, 8 * 28)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(grid, cmap="gray_r")
    ax.set_axis_off()
    ax.set_title(f"VAE samples (decoder means), test NLL ~ {-iwae:.1f} nats", fontsize=8)
    fig.tight_layout()
    fig.savefig(IMAGES / "vae_mnist_samples.png", dpi=80)


def part_latent(args):
    x_train, _, x_test, y_test = load()
    X_train = binarise(x_train, np.random.RandomState(0))
    X_test = binarise(x_test, np.random.RandomState(1))
    t0 = time.perf_counter()
    vae = bernoulli_vae(2, args.latent_epochs).fit(X_train)
    Z = vae.transform(X_test)
    elbo = vae.score(X_test)
    print(
        f"2-d VAE: {args.latent_epochs} epochs, test ELBO {elbo:.2f} nats, "
        f"{time.perf_counter() - t0:.0f} s"
    )

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4))
    points = ax.scatter(Z[:, 0], Z[:, 1], c=y_test, cmap="tab10", s=3)
    fig.colorbar(points, ax=ax, ticks=range(10), label="digit")
    ax.set_title(
        f"2-d VAE: posterior means of 2000 test digits\n(test ELBO {elbo:.1f} nats)", fontsize=8
    )
    fig.tight_layout()
    fig.savefig(IMAGES / "vae_mnist_latent.png", dpi=80)


def part_anomaly(args):
    x_train, y_train, x_test, y_test = load()
    common = dict(
        n_components=16,
        hidden_layer_sizes=(256,),
        batch_size=100,
        max_iter=args.anomaly_epochs,
        tol=None,
        random_state=0,
        device="cpu",
    )
    models = {
        "VAE (ELBO)": lambda: VariationalAutoEncoder(likelihood="bernoulli", **common),
        "AutoEncoder": lambda: AutoEncoder(**common),
        "PCA": lambda: PCA(n_components=16, random_state=0),
    }
    print(f"held-out class | {' | '.join(models)}")
    aucs = {name: [] for name in models}
    t0 = time.perf_counter()
    for digit in args.anomaly_classes:
        train = x_train[y_train != digit]
        labels = (y_test != digit).astype(int)  # 1 = normal, scored higher
        row = []
        for name, make in models.items():
            model = make().fit(train)
            if name == "PCA":
                recon = model.inverse_transform(model.transform(x_test))
                scores = -((recon - x_test) ** 2).mean(axis=1)
            else:
                scores = model.score_samples(x_test)
            aucs[name].append(roc_auc_score(labels, scores))
            row.append(f"{aucs[name][-1]:.3f}")
        print(f"{digit} | {' | '.join(row)}", flush=True)
    means = " | ".join(f"{np.mean(v):.3f}" for v in aucs.values())
    print(f"mean | {means}  ({time.perf_counter() - t0:.0f} s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["all", "likelihood", "latent", "anomaly"], default="all")
    parser.add_argument(
        "--copies",
        type=int,
        default=10,
        help="binarisations of each training image stacked per epoch",
    )
    parser.add_argument("--epochs", type=int, default=15, help="epochs over the stack")
    parser.add_argument(
        "--n-train", type=int, default=8000, help="training images used (likelihood part)"
    )
    parser.add_argument("--k", type=int, default=1000, help="importance samples")
    parser.add_argument("--latent-epochs", type=int, default=20)
    parser.add_argument("--anomaly-epochs", type=int, default=10)
    parser.add_argument("--anomaly-classes", type=int, nargs="+", default=list(range(10)))
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1 is fastest on a shared 2-core machine)",
    )
    args = parser.parse_args()
    if data_missing(MNIST):
        sys.exit(0)
    torch.set_num_threads(args.threads)
    IMAGES.mkdir(parents=True, exist_ok=True)
    parts = {"likelihood": part_likelihood, "latent": part_latent, "anomaly": part_anomaly}
    for part, run in parts.items():
        if args.part in ("all", part):
            print(f"== {part}", flush=True)
            t0 = time.perf_counter()
            run(args)
            print(f"== {part}: {time.perf_counter() - t0:.0f} s wall", flush=True)


if __name__ == "__main__":
    main()

"""VariationalAutoEncoder on MNIST: test log-likelihood, figures, anomaly detection.

Three parts, each printing its numbers and wall time:

* ``likelihood``: an MLP VAE (Bernoulli likelihood, 50-d latent) on
  stochastically binarised MNIST; test ELBO and importance-weighted bound
  (IWAE, ``--k`` samples) in nats, a per-epoch curve of train/test ELBO, and
  a grid of generated digits (``docs/images/vae_mnist_samples.png``).
* ``reference``: the MLP VAE and IWAE recipes of Burda et al. (2016) (200-200
  tanh, 50-d latent), each trained by a plain-PyTorch implementation written
  here and by skae on the same stream of dynamically binarised training
  images for the same number of epochs, and evaluated alike (test ELBO and
  IWAE bound with ``--ref-k`` samples): what is skae, and what is data size.
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
    PYTHONPATH=. python benchmarks/bench_vae_mnist.py --part reference --ref-epochs 30
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _harness import MNIST, data_missing, load_mnist, timed
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.nn import functional as F

from skae import AutoEncoder, VariationalAutoEncoder

IMAGES = Path("docs/images")


def load():
    """MNIST rows in [0, 1], float64: the grey levels the binarisation draws from."""
    return load_mnist(dtype=np.float64)


def binarise(X, rng):
    return (rng.uniform(size=X.shape) < X).astype(np.float32)


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
    # One partial_fit call is one epoch (Adam's state carries over), so the
    # ELBO curve is read with the public score between epochs. The train ELBO
    # is measured on the first binarisation of 2000 training images.
    curve, t_fit = [], 0.0
    for epoch in range(1, args.epochs + 1):
        _, seconds = timed(vae.partial_fit, X_train)
        t_fit += seconds
        curve.append((epoch, vae.score(X_train[:2000]), vae.score(X_test)))
    print(
        f"fit: {args.epochs} epochs x {len(X_train)} rows "
        f"({args.epochs * args.copies} passes over {len(x_train)} images), {t_fit:.0f} s"
    )
    print("epoch  image-passes  train ELBO  test ELBO")
    for epoch, train, test in curve:
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


# ---------------------------------------------------------------- reference

LOG_2PI = float(np.log(2 * np.pi))


class ReferenceVAE(nn.Module):
    """The MLP VAE / IWAE of Burda et al. (2016), one stochastic layer, in plain PyTorch.

    Encoder 784 -> 200 -> 200 -> (mean, log-variance) of 50 latent units,
    decoder 50 -> 200 -> 200 -> 784 Bernoulli logits, tanh between layers,
    torch's default initialisation. Written here for the benchmark; it shares
    no code with skae.
    """

    def __init__(self, n_features=784, hidden=(200, 200), n_latent=50):
        super().__init__()
        sizes = [n_features, *hidden]
        enc = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            enc += [nn.Linear(a, b), nn.Tanh()]
        self.encoder = nn.Sequential(*enc, nn.Linear(sizes[-1], 2 * n_latent))
        sizes = [n_latent, *hidden[::-1]]
        dec = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            dec += [nn.Linear(a, b), nn.Tanh()]
        self.decoder = nn.Sequential(*dec, nn.Linear(sizes[-1], n_features))

    def log_weights(self, x, k):
        """log p(x, z) - log q(z | x) for k reparameterised z per row: (k, batch)."""
        mean, log_var = self.encoder(x).chunk(2, dim=-1)
        eps = torch.randn(k, *mean.shape, dtype=x.dtype)
        z = mean + torch.exp(0.5 * log_var) * eps
        logits = self.decoder(z)
        log_px = (x * logits - F.softplus(logits)).sum(-1)
        log_pz = -0.5 * (LOG_2PI + z**2).sum(-1)
        log_qz = -0.5 * (LOG_2PI + log_var + eps**2).sum(-1)
        return log_px + log_pz - log_qz

    def loss(self, x, k):
        """Negative ELBO (k = 1, KL in closed form) or negative IWAE bound (k > 1)."""
        if k > 1:
            return -(torch.logsumexp(self.log_weights(x, k), 0) - np.log(k)).mean()
        mean, log_var = self.encoder(x).chunk(2, dim=-1)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        logits = self.decoder(z)
        log_px = (x * logits - F.softplus(logits)).sum(-1)
        kl = 0.5 * (mean**2 + torch.exp(log_var) - 1 - log_var).sum(-1)
        return (kl - log_px).mean()

    @torch.no_grad()
    def bound(self, X, k, rows=100, chunk=100):
        """Mean IWAE bound (nats per image) with k samples, in float64."""
        model = copy.deepcopy(self).double()
        out = []
        for start in range(0, len(X), rows):
            x = torch.as_tensor(X[start : start + rows], dtype=torch.float64)
            total = None
            for s in range(0, k, chunk):
                part = torch.logsumexp(model.log_weights(x, min(chunk, k - s)), 0)
                total = part if total is None else torch.logaddexp(total, part)
            out.append(total - np.log(k))
        return torch.cat(out).mean().item()


def train_reference(x_train, k, epochs, batch_size=100, seed=0):
    """Adam (lr 1e-3) on a fresh binarisation of the images each epoch."""
    torch.manual_seed(seed)
    model = ReferenceVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.RandomState(seed)
    for _ in range(epochs):
        X = torch.as_tensor(binarise(x_train, rng))
        for rows in torch.randperm(len(X)).split(batch_size):
            optimizer.zero_grad()
            model.loss(X[rows], k).backward()
            optimizer.step()
    return model


def train_skae(x_train, k, epochs, batch_size=100, seed=0):
    """skae's VariationalAutoEncoder with the same network, data stream and budget."""
    vae = VariationalAutoEncoder(
        n_components=50,
        likelihood="bernoulli",
        hidden_layer_sizes=(200, 200),
        activation="tanh",
        n_importance_samples=k,
        batch_size=batch_size,
        random_state=seed,
        device="cpu",
    )
    rng = np.random.RandomState(seed)
    for _ in range(epochs):
        vae.partial_fit(binarise(x_train, rng))  # one epoch, Adam's state kept
    return vae


def part_reference(args):
    x_train, _, x_test, _ = load()
    X_test = binarise(x_test, np.random.RandomState(1))
    print(
        f"{len(x_train)} training images, a fresh binarisation each epoch, {args.ref_epochs} "
        f"epochs, batch 100; test: {len(X_test)} images, IWAE bound with K = {args.ref_k}"
    )
    print("implementation | recipe | fit (s) | test ELBO | test NLL estimate")
    for recipe, k in (("VAE (k=1)", 1), (f"IWAE (k={args.ref_train_k})", args.ref_train_k)):
        for name in ("reference (plain PyTorch)", "skae"):
            train = train_reference if name.startswith("reference") else train_skae
            model, t_fit = timed(train, x_train, k, args.ref_epochs)
            if name == "skae":
                elbo = model.set_params(n_importance_samples=1).score(X_test)
                nll = -model.set_params(n_importance_samples=args.ref_k).score(X_test)
            else:
                torch.manual_seed(1)
                elbo = model.bound(X_test, 1)
                nll = -model.bound(X_test, args.ref_k)
            print(f"{name} | {recipe} | {t_fit:.0f} | {elbo:.2f} | {nll:.2f}", flush=True)


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
    parser.add_argument(
        "--part", choices=["all", "likelihood", "reference", "latent", "anomaly"], default="all"
    )
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
    parser.add_argument("--ref-epochs", type=int, default=30, help="reference part's epochs")
    parser.add_argument("--ref-k", type=int, default=500, help="reference part's test K")
    parser.add_argument("--ref-train-k", type=int, default=5, help="IWAE's training k")
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
    parts = {
        "likelihood": part_likelihood,
        "reference": part_reference,
        "latent": part_latent,
        "anomaly": part_anomaly,
    }
    for part, run in parts.items():
        if args.part in ("all", part):
            print(f"== {part}", flush=True)
            t0 = time.perf_counter()
            run(args)
            print(f"== {part}: {time.perf_counter() - t0:.0f} s wall", flush=True)


if __name__ == "__main__":
    main()

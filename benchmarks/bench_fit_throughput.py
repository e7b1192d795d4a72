"""Fit throughput of skae.AutoEncoder against a hand-written PyTorch loop.

A second table does the same for images with ``Convolutional2D`` against the
same convolutional module trained by hand.

Both train the same architecture (same module class, Adam, same batch size,
random permutation + tensor slicing) on the same data, in one process,
alternating repeats, and the script prints samples/s of each and their ratio.
For reference it also times skorch's default path (``NeuralNetRegressor`` fed
numpy arrays through its ``Dataset``/``DataLoader``) and, when installed, PyOD's
``AutoEncoder`` with the same layers.

Usage::

    python benchmarks/bench_fit_throughput.py            # both cases, CPU
    python benchmarks/bench_fit_throughput.py --device cuda --repeats 5
    python benchmarks/bench_fit_throughput.py --no-mlp   # the convolutional case only
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _harness import table_header, table_row, timed
from skorch import NeuralNetRegressor

from skae import AutoEncoder
from skae.architectures import MLP, Convolutional2D

CASES = {
    # name: (n_samples, n_features, hidden_layer_sizes, n_components, batch_size, epochs)
    "mnist-sized (60000x784, 256-64, code 32)": (60_000, 784, (256, 64), 32, 256, 2),
    "small (60000x64, 32, code 8)": (60_000, 64, (32,), 8, 256, 3),
}


# The convolutional case: images (n, 1, 28, 28), Convolutional2D(channels, stride 2).
CONV_CASES = {
    # name: (n_samples, image side, channels, n_components, batch_size, epochs)
    "conv 2-D (6000x1x28x28, channels 16-32, code 32)": (6_000, 28, (16, 32), 32, 128, 1),
}


def conv_loop(X: np.ndarray, channels, n_components, batch_size, epochs, device):
    """The reference for images: the same convolutional module, trained by hand."""
    torch.manual_seed(0)
    module = Convolutional2D(channels=channels).build(X.shape[1:], n_components, n_components)
    train_by_hand(module.to(device), X, batch_size, epochs, device)


def conv_skae(X, channels, n_components, batch_size, epochs, device, **options):
    AutoEncoder(
        n_components,
        architecture=Convolutional2D(channels=channels),
        batch_size=batch_size,
        max_iter=epochs,
        tol=None,
        random_state=0,
        device=device,
        **options,
    ).fit(X)
    if device.type == "cuda":
        torch.cuda.synchronize()


def conv_skae_bf16(X, channels, n_components, batch_size, epochs, device):
    conv_skae(X, channels, n_components, batch_size, epochs, device, mixed_precision=True)


def conv_skae_compiled(X, channels, n_components, batch_size, epochs, device):
    conv_skae(X, channels, n_components, batch_size, epochs, device, compile=True)


def hand_written_loop(X: np.ndarray, hidden, n_components, batch_size, epochs, device):
    """The reference: the loop a PyTorch user writes by hand."""
    torch.manual_seed(0)
    module = MLP(hidden, "relu").build(X.shape[1:], n_components, n_components)
    train_by_hand(module.to(device), X, batch_size, epochs, device)


def train_by_hand(module, X: np.ndarray, batch_size, epochs, device):
    """Adam on random permutations of tensor slices: what a PyTorch user writes."""
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    X_t = torch.as_tensor(X, device=device)
    module.train()
    for _ in range(epochs):
        order = torch.randperm(len(X_t), device=device)
        for start in range(0, len(X_t), batch_size):
            batch = X_t[order[start : start + batch_size]]
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(module(batch), batch)
            loss.backward()
            optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()


def skae_fit(X, hidden, n_components, batch_size, epochs, device, **options):
    AutoEncoder(
        n_components,
        hidden_layer_sizes=hidden,
        batch_size=batch_size,
        max_iter=epochs,
        tol=None,
        random_state=0,
        device=str(device),
        **options,
    ).fit(X)


def skae_bf16(X, hidden, n_components, batch_size, epochs, device):
    skae_fit(X, hidden, n_components, batch_size, epochs, device, mixed_precision=True)


def skae_compiled(X, hidden, n_components, batch_size, epochs, device):
    skae_fit(X, hidden, n_components, batch_size, epochs, device, compile=True)


def pyod_autoencoder(X, hidden, n_components, batch_size, epochs, device):
    """PyOD's AutoEncoder with the same layers, optimizer and batch size.

    Batch norm, dropout, weight decay and PyOD's own standardisation are turned
    off so that it trains the same network; PyOD still scores the training data
    at the end of ``fit`` (its ``decision_scores_``), which is part of its fit.
    """
    from pyod.models.auto_encoder import AutoEncoder as PyODAutoEncoder

    PyODAutoEncoder(
        hidden_neuron_list=[*hidden, n_components],
        epoch_num=epochs,
        batch_size=batch_size,
        lr=1e-3,
        optimizer_params={"weight_decay": 0.0},
        batch_norm=False,
        dropout_rate=0.0,
        preprocessing=False,
        verbose=0,
        device=str(device),
    ).fit(X)


def skorch_default(X, hidden, n_components, batch_size, epochs, device):
    NeuralNetRegressor(
        MLP(hidden, "relu").build(X.shape[1:], n_components, n_components),
        optimizer=torch.optim.Adam,
        lr=1e-3,
        batch_size=batch_size,
        max_epochs=epochs,
        train_split=None,
        verbose=0,
        device=str(device),
    ).fit(X, X)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-skorch", action="store_true", help="skip skorch's default path")
    parser.add_argument("--no-pyod", action="store_true", help="skip PyOD's AutoEncoder")
    parser.add_argument("--no-mlp", action="store_true", help="skip the MLP cases")
    parser.add_argument("--no-conv", action="store_true", help="skip the convolutional case")
    parser.add_argument(
        "--fast-paths",
        action="store_true",
        help="also time skae with mixed_precision=True and with compile=True",
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    print(f"device={device}, torch {torch.__version__}, threads={torch.get_num_threads()}")
    runners = {"loop": hand_written_loop, "skae": skae_fit}
    if args.fast_paths:
        runners.update({"skae bf16": skae_bf16, "skae compiled": skae_compiled})
    if not args.no_skorch:
        runners["skorch default"] = skorch_default
    if not args.no_pyod:
        try:
            import pyod  # noqa: F401

            runners["PyOD AutoEncoder"] = pyod_autoencoder
        except ImportError:
            print("note: pyod is not installed; skipping its column (pip install pyod).")
    if not args.no_mlp:
        table(runners, CASES, args.repeats, device, lambda n, d: (n, d))
    if not args.no_conv:
        conv_runners = {"loop": conv_loop, "skae": conv_skae}
        if args.fast_paths:
            conv_runners.update({"skae bf16": conv_skae_bf16, "skae compiled": conv_skae_compiled})
        table(conv_runners, CONV_CASES, args.repeats, device, lambda n, side: (n, 1, side, side))


def table(runners, cases, repeats, device, shape):
    """Time every runner on every case, alternating repeats; print one markdown table."""
    others = [key for key in runners if key != "loop"]
    columns = ["case", "hand-written loop (samples/s)"]
    for key in others:
        columns += [f"{key} (samples/s)", f"{key} / loop"]
    print(table_header(columns, "l" + "r" * (len(columns) - 1)))
    for name, (n, d, hidden, k, bs, epochs) in cases.items():
        X = np.random.RandomState(0).rand(*shape(n, d)).astype(np.float32)
        # Warm-up: allocator, thread pools, kernels, and torch.compile's cache.
        for fn in runners.values():
            fn(X[:2048], hidden, k, bs, 1, device)
        times = {key: [] for key in runners}
        for _ in range(repeats):
            for key, fn in runners.items():
                times[key].append(timed(fn, X, hidden, k, bs, epochs, device)[1])
        rate = {key: n * epochs / np.median(t) for key, t in times.items()}
        cells = [name, f"{rate['loop']:,.0f}"]
        for key in others:
            cells += [f"{rate[key]:,.0f}", f"{rate[key] / rate['loop']:.2f}x"]
        print(table_row(cells), flush=True)


if __name__ == "__main__":
    main()

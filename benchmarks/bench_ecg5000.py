"""Sequence anomaly detection on ECG5000 with skae.RecurrentAutoEncoder.

Protocol (../shared/data/README.md): class 1 beats are normal, all others
anomalous. Each split trains on a random 60% of the normal beats only and
scores the other 40% of the normal beats plus every anomalous beat. The script
prints ROC-AUC and average precision of ``score_samples`` (mean and standard
deviation over the splits) and the mean fit time, for

* ``RecurrentAutoEncoder`` (LSTM encoder, repeat-vector decoder: skae's choice),
* the same estimator with an autoregressive decoder that feeds back its own
  previous output (no teacher forcing): the alternative the decoder choice was
  measured against,
* a dense ``AutoEncoder`` on the same beats as 140-feature vectors,
* ``AutoEncoder(architecture=Convolutional1D(...))``: a 1-D convolutional
  autoencoder on the beats as one-channel signals,
* ``VariationalAutoEncoder(architecture=Recurrent(...))``: an LSTM-VAE, scored
  by its ELBO,
* ``IsolationForest`` on the same vectors.

Usage::

    PYTHONPATH=. python benchmarks/bench_ecg5000.py
    PYTHONPATH=. python benchmarks/bench_ecg5000.py --splits 2 --figure docs/images/ecg5000.png
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from _harness import ECG5000, data_missing, table_header, table_row, timed
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from torch import nn

from skae import AutoEncoder, RecurrentAutoEncoder, VariationalAutoEncoder
from skae.architectures import Convolutional1D, Recurrent

RECURRENT = dict(
    n_components=16, hidden_size=64, batch_size=32, learning_rate_init=5e-3, max_iter=100
)
AUTOREGRESSIVE = "RecurrentAutoEncoder (LSTM, autoregressive decoder)"


def _repeat_vector_network() -> type[nn.Module]:
    """The class of the module ``Recurrent`` builds, reached through the public API.

    skae keeps the class in a private module that may move; building a
    one-feature network once finds it wherever it lives. The torch RNG is
    restored afterwards, so importing this script draws no random numbers.
    """
    with torch.random.fork_rng(devices=[]):
        return type(Recurrent(hidden_size=1).build((1, 1), 1, 1))


class AutoregressiveSeq2Seq(_repeat_vector_network()):
    """The same encoder; a one-layer decoder started from the code that reads its own output."""

    def __init__(self, n_features, n_components, cell, hidden_size, num_layers, bidirectional):
        super().__init__(n_features, n_components, cell, hidden_size, num_layers, bidirectional)
        self.cell = cell
        self.decoder = {"lstm": nn.LSTMCell, "gru": nn.GRUCell}[cell](n_features, hidden_size)
        self.to_state = nn.Linear(n_components, hidden_size)

    def decode(self, z, n_timesteps):
        h = torch.tanh(self.to_state(z))  # (batch, hidden)
        state = (h, torch.zeros_like(h)) if self.cell == "lstm" else h
        y = z.new_zeros(len(z), self.to_output.out_features)  # (batch, n_features)
        steps = []
        for _ in range(n_timesteps):
            state = self.decoder(y, state)
            y = self.to_output(state[0] if self.cell == "lstm" else state)
            steps.append(y)
        return torch.stack(steps, dim=1)  # (batch, time, n_features)


class AutoregressiveRecurrent(Recurrent):
    """The recurrent architecture with the autoregressive decoder."""

    def build(self, input_shape, n_components, n_outputs):
        return AutoregressiveSeq2Seq(
            input_shape[-1],
            n_components,
            self.cell,
            self.hidden_size,
            self.num_layers,
            self.bidirectional,
        )


def models(seed):
    return {
        "RecurrentAutoEncoder (LSTM, repeat-vector decoder)": RecurrentAutoEncoder(
            **RECURRENT, random_state=seed, device="cpu"
        ),
        AUTOREGRESSIVE: AutoEncoder(
            architecture=AutoregressiveRecurrent(hidden_size=RECURRENT["hidden_size"]),
            **{k: v for k, v in RECURRENT.items() if k != "hidden_size"},
            random_state=seed,
            device="cpu",
        ),
        "AutoEncoder, Convolutional1D (channels 32-64, kernel 5)": AutoEncoder(
            architecture=Convolutional1D(channels=(32, 64), kernel_size=5),
            **{k: v for k, v in RECURRENT.items() if k != "hidden_size"},
            random_state=seed,
            device="cpu",
        ),
        "VariationalAutoEncoder, Recurrent (LSTM-VAE)": VariationalAutoEncoder(
            architecture=Recurrent(hidden_size=RECURRENT["hidden_size"]),
            **{k: v for k, v in RECURRENT.items() if k != "hidden_size"},
            random_state=seed,
            device="cpu",
        ),
        "AutoEncoder (dense, 140 features)": AutoEncoder(
            n_components=16,
            hidden_layer_sizes=(64,),
            batch_size=32,
            max_iter=300,
            random_state=seed,
            device="cpu",
        ),
        "IsolationForest": IsolationForest(random_state=seed),
    }


def split(is_anomaly, seed, train_fraction=0.6):
    normal = np.flatnonzero(~is_anomaly)
    normal = np.random.RandomState(seed).permutation(normal)
    n_train = int(round(train_fraction * len(normal)))
    test = np.concatenate([normal[n_train:], np.flatnonzero(is_anomaly)])
    return normal[:n_train], test


def plot(model, X, is_anomaly, test, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [*test[~is_anomaly[test]][:3], *test[is_anomaly[test]][:3]]
    recon = model.inverse_transform(model.transform(X[rows]))
    errors = model.timestep_errors(X[rows])
    scores = model.score_samples(X[rows])
    fig, axes = plt.subplots(
        2, 6, figsize=(13, 3.6), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    for j, row in enumerate(rows):
        kind = "anomalous" if is_anomaly[row] else "normal"
        axes[0, j].plot(X[row], color="black", lw=1, label="beat")
        axes[0, j].plot(recon[j], color="tab:red", lw=1, label="reconstruction")
        axes[0, j].set_title(f"{kind}, score {scores[j]:.2f}", fontsize=9)
        axes[1, j].fill_between(np.arange(X.shape[1]), errors[j], color="tab:orange")
        axes[1, j].set_ylim(0, max(1.0, errors.max()))
        axes[1, j].set_xlabel("time step", fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="lower left")
    axes[1, 0].set_ylabel("squared error", fontsize=8)
    fig.suptitle("ECG5000: RecurrentAutoEncoder reconstructions and per-timestep errors")
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    print(f"figure written to {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=5, help="random splits (seeds 0..n-1)")
    parser.add_argument(
        "--decoder-splits",
        type=int,
        default=2,
        help="run the (slow) autoregressive-decoder variant on the first this many splits",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--figure", help="write a PNG of reconstructions from split 0 here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if data_missing(ECG5000):
        return
    data = np.load(ECG5000)
    X, is_anomaly = data["x"].astype(np.float32), data["y"] != 1
    print(f"ECG5000 TRAIN: {len(X)} beats x {X.shape[1]} steps, {is_anomaly.sum()} anomalous")
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, splits={args.splits}")

    results: dict[str, dict[str, list]] = {}
    start = time.perf_counter()
    for seed in range(args.splits):
        train, test = split(is_anomaly, seed)
        for name, model in models(seed).items():
            if name == AUTOREGRESSIVE and seed >= args.decoder_splits:
                continue
            model, fit_s = timed(model.fit, X[train])
            scores = model.score_samples(X[test])
            row = results.setdefault(name, {"auc": [], "ap": [], "fit_s": [], "epochs": []})
            row["auc"].append(roc_auc_score(is_anomaly[test], -scores))
            row["ap"].append(average_precision_score(is_anomaly[test], -scores))
            row["fit_s"].append(fit_s)
            row["epochs"].append(getattr(model, "n_iter_", None))
            if seed == 0 and args.figure and type(model) is RecurrentAutoEncoder:
                plot(model, X, is_anomaly, test, args.figure)
            print(
                f"split {seed}: {name}: ROC-AUC {row['auc'][-1]:.3f}, "
                f"AP {row['ap'][-1]:.3f}, fit {fit_s:.1f}s",
                file=sys.stderr,
                flush=True,
            )
    print(f"train: 60% of the normal beats per split; test: the rest + all anomalies ({len(test)})")
    columns = ["model", "splits", "ROC-AUC", "average precision", "fit time (s)", "epochs"]
    print(table_header(columns, "lrrrrr"))
    for name, row in results.items():
        epochs = "-" if row["epochs"][0] is None else f"{np.mean(row['epochs']):.0f}"
        cells = [
            name,
            len(row["auc"]),
            f"{np.mean(row['auc']):.3f} ± {np.std(row['auc']):.3f}",
            f"{np.mean(row['ap']):.3f} ± {np.std(row['ap']):.3f}",
            f"{np.mean(row['fit_s']):.1f}",
            epochs,
        ]
        print(table_row(cells))
    decoder_epoch_times(X[split(is_anomaly, 0)[0]])
    print(f"wall time: {time.perf_counter() - start:.0f}s")


def decoder_epoch_times(X_train, repeats=3):
    """Seconds per epoch of the two decoders, alternating 5-epoch fits in one process."""
    settings = {**RECURRENT, "max_iter": 5, "tol": None, "random_state": 0, "device": "cpu"}
    hidden = settings.pop("hidden_size")
    kinds = {
        "repeat-vector": lambda: AutoEncoder(
            architecture=Recurrent(hidden_size=hidden), **settings
        ),
        "autoregressive": lambda: AutoEncoder(
            architecture=AutoregressiveRecurrent(hidden_size=hidden), **settings
        ),
    }
    times = {name: [] for name in kinds}
    for _ in range(repeats):
        for name, make in kinds.items():
            times[name].append(np.median(make().fit(X_train).history_[:, "dur"]))
    per_epoch = {name: np.median(t) for name, t in times.items()}
    print(
        f"decoder time per epoch (median of {repeats} alternating fits): repeat-vector "
        f"{per_epoch['repeat-vector']:.2f}s, autoregressive {per_epoch['autoregressive']:.2f}s "
        f"({per_epoch['autoregressive'] / per_epoch['repeat-vector']:.2f}x)"
    )


if __name__ == "__main__":
    main()

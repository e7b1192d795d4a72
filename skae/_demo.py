"""``skae demo``: an AutoEncoder beside PCA on scikit-learn's 8x8 digits."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from ._errors import sample_mean, squared_errors
from .autoencoder import AutoEncoder

N_COMPONENTS = 8
ANOMALY_DIGIT = 7


def _autoencoder(verbose: int) -> AutoEncoder:
    return AutoEncoder(
        n_components=N_COMPONENTS,
        hidden_layer_sizes=(128,),
        batch_size=64,
        max_iter=100,
        random_state=0,
        verbose=verbose,
    )


def _reconstruction_error(model, X) -> np.ndarray:
    """Mean squared reconstruction error of each row, for skae models and PCA alike."""
    return sample_mean(squared_errors(model.inverse_transform(model.transform(X)), X))


def _save_figure(path: Path, X, ae, pca) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = {
        "original": X,
        "AutoEncoder": ae.inverse_transform(ae.transform(X)),
        "PCA": pca.inverse_transform(pca.transform(X)),
    }
    fig, axes = plt.subplots(len(rows), len(X), figsize=(len(X) * 0.8, len(rows) * 0.95))
    for r, (name, images) in enumerate(rows.items()):
        for c, image in enumerate(images):
            ax = axes[r, c]
            ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(f"Held-out digits and their reconstructions from {N_COMPONENTS} values")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return True


def run_demo(output: str | Path = "skae_demo.png", verbose: int = 1) -> dict:
    """Fit an AutoEncoder and PCA on the digits, print a comparison, save a figure.

    Parameters
    ----------
    output : str or Path, default="skae_demo.png"
        Where to save the PNG of original vs reconstructed digits (needs
        matplotlib, the ``plot`` extra).
    verbose : int, default=1
        Passed to the autoencoders: 1 shows each fit's progress.

    Returns
    -------
    results : dict
        ``{metric: (autoencoder_value, pca_value)}`` for the printed metrics.

    Examples
    --------
    >>> from skae._demo import run_demo
    >>> results = run_demo(output=None, verbose=0)  # doctest: +SKIP
    """
    # These models and batches are tiny: torch's intra-op threads cost more in
    # synchronisation than they save (measured: 5 s with one thread against
    # 52 s with two on a 2-core machine whose other core was busy).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(output, verbose)
    finally:
        torch.set_num_threads(threads)


def _run(output, verbose: int) -> dict:
    start = time.perf_counter()
    X, y = load_digits(return_X_y=True)
    X = X / 16.0  # pixels in [0, 1]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    print(f"digits: {len(X_train)} train / {len(X_test)} test images of 8x8 pixels")
    print(f"code size {N_COMPONENTS} for both models\n")

    print("Fitting AutoEncoder on all digits...")
    ae = _autoencoder(verbose).fit(X_train)
    pca = PCA(n_components=N_COMPONENTS).fit(X_train)

    def accuracy(model):
        clf = LogisticRegression(max_iter=2000).fit(model.transform(X_train), y_train)
        return clf.score(model.transform(X_test), y_test)

    print(f"Fitting AutoEncoder on every digit but {ANOMALY_DIGIT} (anomaly detection)...")
    normal = y_train != ANOMALY_DIGIT
    ae_normal = _autoencoder(verbose).fit(X_train[normal])
    pca_normal = PCA(n_components=N_COMPONENTS).fit(X_train[normal])
    is_anomaly = y_test == ANOMALY_DIGIT

    results = {
        "held-out reconstruction MSE (lower is better)": (
            _reconstruction_error(ae, X_test).mean(),
            _reconstruction_error(pca, X_test).mean(),
        ),
        "LogisticRegression accuracy on the codes": (accuracy(ae), accuracy(pca)),
        f"ROC-AUC, digit {ANOMALY_DIGIT} as the anomaly": (
            roc_auc_score(is_anomaly, -ae_normal.score_samples(X_test)),
            roc_auc_score(is_anomaly, _reconstruction_error(pca_normal, X_test)),
        ),
    }
    width = max(len(k) for k in results)
    print(f"\n{'':{width}}  AutoEncoder     PCA")
    for name, (ae_value, pca_value) in results.items():
        print(f"{name:{width}}  {ae_value:11.4f}  {pca_value:6.4f}")

    if output is not None:
        path = Path(output).resolve()
        if _save_figure(path, X_test[:10], ae, pca):
            print(f"\nSaved original vs reconstructed digits to {path}")
        else:
            print("\nmatplotlib is not installed: no figure (pip install 'skae[plot]').")
    print(f"Done in {time.perf_counter() - start:.1f}s.")
    return results

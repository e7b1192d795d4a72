"""
==================================
Training curves and early stopping
==================================

Every fitted skae estimator keeps its training curve in ``loss_curve_`` (the
mean training loss of each epoch) and, with ``early_stopping=True``, the
validation curve in ``validation_scores_`` (the negative loss on a held-out
``validation_fraction`` of the training data, so higher is better, as in
:class:`~sklearn.neural_network.MLPRegressor`). This example reads both for a
wide :class:`~skae.AutoEncoder` on scikit-learn's digits, and lets early
stopping pick the epoch.
"""

# %%
# Two fits of the same model
# --------------------------
# The model is deliberately large for its data: 300 training digits, two hidden
# layers of 256 units and a 32-value code, so that it can fit details of the
# training digits that other digits do not share. Both fits hold out 20% of the
# training data for validation. The first one runs all ``max_iter`` epochs
# (``n_iter_no_change`` as large as ``max_iter``) so that we see the whole
# validation curve, then, like every fit with early stopping, keeps the weights
# of its best epoch; the second keeps the defaults, ``n_iter_no_change=10`` and
# ``tol=1e-4``: it stops after 10 epochs without an improvement of ``tol`` and
# keeps the weights of its best epoch. The other 1,497 digits measure the
# reconstruction error on data neither fit has seen.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler

from skae import AutoEncoder

X, _ = load_digits(return_X_y=True)
X_train, X_test = train_test_split(X, train_size=300, random_state=0)
scaler = MinMaxScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

params = dict(
    n_components=32,
    hidden_layer_sizes=(256, 256),
    batch_size=16,
    max_iter=150,
    early_stopping=True,
    validation_fraction=0.2,
    random_state=0,
)
# The first run goes all ``max_iter`` epochs on purpose, so its convergence
# check, which would warn that the stopping rule never decided, is switched off.
no_check = [("convergence_check", None)]
full = AutoEncoder(**params, n_iter_no_change=150, callbacks=no_check).fit(X_train)
stopped = AutoEncoder(**params).fit(X_train)


def held_out_mse(model):
    return np.mean((model.inverse_transform(model.transform(X_test)) - X_test) ** 2)


for name, model in (("all epochs", full), ("early stopping", stopped)):
    print(
        f"{name:>14}: {model.n_iter_:3d} epochs, best validation score "
        f"{model.best_validation_score_:.5f}, held-out MSE {held_out_mse(model):.5f}"
    )

# %%
# The curves
# ----------
# ``validation_scores_`` are negative losses; plotted as losses (their
# negatives) they sit on the same scale as ``loss_curve_``. The training loss
# keeps falling while the validation loss levels off: the gap between them is
# what the model learns about its training digits only. Early stopping ends
# the second fit once the validation loss stops improving by ``tol`` and
# restores the best epoch's weights.
fig, ax = plt.subplots(figsize=(6.4, 3.8))
epochs = np.arange(1, full.n_iter_ + 1)
ax.plot(epochs, full.loss_curve_, color="tab:blue", label="training loss")
ax.plot(epochs, -np.asarray(full.validation_scores_), color="tab:orange", label="validation loss")
best_epoch = int(np.argmax(stopped.validation_scores_)) + 1
ax.axvline(stopped.n_iter_, color="gray", linestyle="--", label="early stopping ends")
ax.plot(
    best_epoch,
    -stopped.best_validation_score_,
    "o",
    color="black",
    label=f"weights kept (epoch {best_epoch})",
)
ax.set_yscale("log")
ax.set_xlabel("epoch")
ax.set_ylabel("mean squared error")
ax.set_title(
    f"Held-out MSE: {held_out_mse(full):.4f} after {full.n_iter_} epochs, "
    f"{held_out_mse(stopped):.4f} with early stopping",
    fontsize=10,
)
ax.legend()
fig.tight_layout()

# %%
# The per-epoch record
# --------------------
# ``history_`` is skorch's record of the last fit, one row per epoch, with
# the training and validation losses and each epoch's duration.
epoch, train_loss, valid_loss = stopped.history_[-1, ("epoch", "train_loss", "valid_loss")]
print(f"last epoch {epoch}: training loss {train_loss:.5f}, validation loss {valid_loss:.5f}")

# %%
# Conclusion
# ----------
# The validation loss stops improving long before the training loss does. In
# the run printed above, early stopping ended after 77 of the 150 epochs with
# the same best validation score and the same held-out error as the full run
# (both keep their best epoch's weights): about half the training for the same
# model. Without ``early_stopping``, a fit keeps its last epoch's weights and
# stops only when the *training* loss stalls, which for a large model can be
# long after the validation loss stopped improving.

"""
=====================================
Sparse codes and the learned features
=====================================

A :class:`~skae.SparseAutoEncoder` learns codes in which most entries are
zero. With ``sparsity="topk"`` each sample keeps exactly its ``k`` largest code
entries, so an overcomplete code (more code units than pixels) stays sparse
and each unit becomes a reusable part. Here a linear decoder
(``hidden_layer_sizes=()``) makes each code unit's contribution an image we can
look at: a dictionary of strokes learned from the 8x8 digits.
"""

# %%
# Fit an overcomplete top-k autoencoder
# -------------------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from skae import AutoEncoder, SparseAutoEncoder

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)

N_UNITS, K = 100, 8
sparse = SparseAutoEncoder(
    n_components=N_UNITS,
    sparsity="topk",
    k=K,
    hidden_layer_sizes=(),
    batch_size=64,
    max_iter=100,
    tol=None,
    random_state=0,
).fit(X_train)
dense = AutoEncoder(
    n_components=N_UNITS, hidden_layer_sizes=(), batch_size=64, max_iter=100, random_state=0
).fit(X_train)

for name, model in (("SparseAutoEncoder (top-k)", sparse), ("AutoEncoder", dense)):
    codes = model.transform(X_test)
    zeros = np.mean(codes == 0)
    mse = np.mean((model.inverse_transform(codes) - X_test) ** 2)
    accuracy = (
        LogisticRegression(max_iter=3000)
        .fit(model.transform(X_train), y_train)
        .score(codes, y_test)
    )
    print(
        f"{name:>26}: {zeros:6.1%} exact zeros, max non-zeros per row "
        f"{(codes != 0).sum(axis=1).max():3d}, test MSE {mse:.4f}, "
        f"LogisticRegression accuracy {accuracy:.3f}"
    )

# %%
# The dictionary: what each code unit adds to a reconstruction
# -------------------------------------------------------------
# The decoder is linear, so unit ``i``'s contribution is
# ``inverse_transform(e_i) - inverse_transform(0)``. We show the units used
# most often on the test digits.
codes = sparse.transform(X_test)
usage = (codes != 0).mean(axis=0)
order = np.argsort(usage)[::-1][:30]
print(f"{np.sum(usage == 0)} of {N_UNITS} units are zero on every test digit")
origin = sparse.inverse_transform(np.zeros((1, N_UNITS)))
atoms = sparse.inverse_transform(np.eye(N_UNITS)[order]) - origin

fig, axes = plt.subplots(3, 10, figsize=(10, 3.4))
for ax, atom, unit in zip(axes.ravel(), atoms, order, strict=True):
    limit = np.abs(atom).max()
    ax.imshow(atom.reshape(8, 8), cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(f"{usage[unit]:.0%}", fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle(
    f"30 most used of {N_UNITS} code units (top-k, k={K}); "
    f"title: share of test digits using the unit, {np.mean(codes == 0):.0%} of codes are zero"
)
fig.tight_layout()

# %%
# Conclusion
# ----------
# Every test code has at most ``k`` non-zero entries out of 100. The most used
# units look like parts of digits (loops, bars, strokes) that reconstructions
# add together. A unit that never wins the top k never receives a gradient (a
# "dead unit"); training revives each such unit once, and ``fit`` warns when
# more than a tenth of the units end dead, with what to change (a larger ``k``
# or fewer units). The printed count of units that are zero on every test digit
# shows how many ended unused. The printed table
# shows the price of sparsity: the dense linear autoencoder with 100 free values
# reconstructs far better, while the top-k codes, with 8 non-zeros, remain
# useful features for a classifier.

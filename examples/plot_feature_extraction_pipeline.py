"""
==================================================================
Autoencoder features in a pipeline, tuned with GridSearchCV vs PCA
==================================================================

An :class:`~skae.AutoEncoder` is a transformer, so it can sit in a
:class:`~sklearn.pipeline.Pipeline` between a scaler and a classifier, and
:class:`~sklearn.model_selection.GridSearchCV` can tune it together with the
rest of the pipeline. Here the same search chooses, for a logistic regression on
scikit-learn's 8x8 digits, between :class:`~sklearn.decomposition.PCA` and an
autoencoder as the feature extractor, at several code sizes.
"""

# %%
# Data and pipeline
# -----------------
# The pipeline's ``reduce`` step is a placeholder: the grid puts PCA in it for
# some candidates and an autoencoder for the others, each with 2 to 16
# components. Both see pixels scaled to [0, 1].
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from skae import AutoEncoder

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)

pipe = Pipeline(
    [
        ("scale", MinMaxScaler()),
        ("reduce", "passthrough"),
        ("classify", LogisticRegression(max_iter=2000)),
    ]
)
sizes = [2, 4, 8, 16]
param_grid = [
    {"reduce": [PCA(random_state=0)], "reduce__n_components": sizes},
    {
        "reduce": [AutoEncoder(hidden_layer_sizes=(128,), max_iter=60, tol=None, random_state=0)],
        "reduce__n_components": sizes,
    },
]
search = GridSearchCV(pipe, param_grid, cv=3).fit(X_train, y_train)

# %%
# Cross-validated accuracy by code size
# -------------------------------------
# ``cv_results_`` holds one row per candidate; the two halves of the grid are
# PCA's and the autoencoder's.
results = search.cv_results_
kinds = np.array([type(step).__name__ for step in results["param_reduce"]])
n_components = np.array(results["param_reduce__n_components"], dtype=int)

fig, ax = plt.subplots(figsize=(6, 3.6))
width = 0.38
for offset, kind in ((-width / 2, "PCA"), (width / 2, "AutoEncoder")):
    rows = kinds == kind
    positions = np.arange(len(sizes)) + offset
    ax.bar(
        positions,
        results["mean_test_score"][rows],
        width,
        yerr=results["std_test_score"][rows],
        label=kind,
    )
ax.set_xticks(np.arange(len(sizes)), [str(s) for s in sizes])
ax.set_xlabel("n_components (code size)")
ax.set_ylabel("3-fold CV accuracy")
ax.set_ylim(0, 1)
ax.legend(loc="lower right")
best = search.best_params_
ax.set_title(
    f"Best: {type(best['reduce']).__name__}, {best['reduce__n_components']} components, "
    f"CV accuracy {search.best_score_:.3f}",
    fontsize=10,
)
fig.tight_layout()

for kind in ("PCA", "AutoEncoder"):
    rows = kinds == kind
    pairs = zip(n_components[rows], results["mean_test_score"][rows], strict=True)
    scores = ", ".join(f"{n}: {s:.3f}" for n, s in pairs)
    print(f"{kind:>11} CV accuracy by n_components  {scores}")
print(f"Best candidate on held-out digits: accuracy {search.score(X_test, y_test):.3f}")

# %%
# What the codes keep
# -------------------
# At the smallest code size the two extractors differ most. Reconstructing
# held-out digits from 4 numbers shows what each keeps: PCA's linear code keeps
# the directions of largest variance, the autoencoder's nonlinear code more of
# each digit's shape.
scaler = MinMaxScaler().fit(X_train)
S_train, S_test = scaler.transform(X_train), scaler.transform(X_test)
models = {
    "PCA": PCA(n_components=4, random_state=0).fit(S_train),
    "AutoEncoder": AutoEncoder(
        n_components=4, hidden_layer_sizes=(128,), max_iter=60, tol=None, random_state=0
    ).fit(S_train),
}
shown = S_test[:8]
fig, axes = plt.subplots(3, len(shown), figsize=(len(shown) * 0.9, 3.2))
rows = {"original": shown}
for name, model in models.items():
    rows[name] = model.inverse_transform(model.transform(shown))
for r, (name, images) in enumerate(rows.items()):
    for c, image in enumerate(images):
        axes[r, c].imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        axes[r, c].set_xticks([])
        axes[r, c].set_yticks([])
    axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
errors = {
    name: np.mean((model.inverse_transform(model.transform(S_test)) - S_test) ** 2)
    for name, model in models.items()
}
fig.suptitle(
    "Held-out digits from 4 numbers: MSE "
    + ", ".join(f"{name} {mse:.4f}" for name, mse in errors.items()),
    fontsize=10,
)
for name, mse in errors.items():
    print(f"{name:>11} held-out reconstruction MSE from 4 numbers: {mse:.4f}")

# %%
# Conclusion
# ----------
# On the digits, with a linear classifier on top, the autoencoder's codes are
# not better features than PCA's. In the run printed above it is ahead only
# with 2 components (0.675 against 0.620 CV accuracy); from 4 components on
# PCA is as good or better, and the search picks PCA with 16 components. Yet
# from 4 numbers the autoencoder reconstructs held-out digits with a lower
# error than PCA (0.033 against 0.040): a code that reconstructs better is not
# necessarily one a linear model separates better. That is why the code size
# and the extractor are best chosen, as here, by the score of the whole
# pipeline rather than by the reconstruction error alone.

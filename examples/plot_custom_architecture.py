"""
========================================
Bring your own torch module as a network
========================================

Every skae estimator is an *objective* (reconstruction, denoising, sparsity,
the variational bound); the network it trains is its ``architecture``
parameter. Besides the built-in ones (:class:`~skae.architectures.MLP`,
:class:`~skae.architectures.Convolutional2D`,
:class:`~skae.architectures.Convolutional1D`,
:class:`~skae.architectures.Recurrent`), any torch module with ``encode`` and
``decode`` methods plugs in through a small
:class:`~skae.architectures.Architecture` subclass. Here a hand-written
residual MLP becomes the network of an :class:`~skae.AutoEncoder` and of a
:class:`~skae.VariationalAutoEncoder`, and a grid search tunes its width
as ``architecture__width``.
"""

# %%
# The module: an encoder to ``n_outputs`` values, a decoder from ``n_components``
# -------------------------------------------------------------------------------
# ``encode`` returns a linear code of ``n_outputs`` values (the variational
# objective asks for twice the code size: a mean and a log-variance per
# latent dimension); ``decode`` maps ``n_components`` values back to the
# input's shape. Nothing else is required of the module.
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV, train_test_split
from torch import nn

from skae import AutoEncoder, VariationalAutoEncoder
from skae.architectures import Architecture


class Residual(nn.Module):
    """x + MLP(x): a block that starts close to the identity."""

    def __init__(self, width):
        super().__init__()
        self.body = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU())

    def forward(self, x):
        return x + self.body(x)


class ResidualAutoEncoderModule(nn.Module):
    def __init__(self, n_features, n_outputs, n_components, width, depth):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(n_features, width),
            *[Residual(width) for _ in range(depth)],
            nn.Linear(width, n_outputs),
        )
        self.decoder = nn.Sequential(
            nn.Linear(n_components, width),
            *[Residual(width) for _ in range(depth)],
            nn.Linear(width, n_features),
        )

    def encode(self, x):  # (batch, n_features) -> (batch, n_outputs)
        return self.encoder(x)

    def decode(self, z):  # (batch, n_components) -> (batch, n_features)
        return self.decoder(z)


# %%
# The architecture: hyper-parameters in ``__init__``, the module in ``build``
# ---------------------------------------------------------------------------
# As with a scikit-learn estimator, ``__init__`` only stores its arguments,
# so the architecture clones, pickles and tunes in a search.
# ``input_kind = "table"`` says it reads 2-D arrays; ``build`` gets the shape
# of one sample, the code size and the number of encoder outputs.
class ResidualMLP(Architecture):
    input_kind = "table"

    def __init__(self, width=64, depth=2):
        self.width = width
        self.depth = depth

    def build(self, input_shape, n_components, n_outputs):
        return ResidualAutoEncoderModule(
            input_shape[0], n_outputs, n_components, self.width, self.depth
        )


X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test = train_test_split(X, test_size=0.3, random_state=0)

torch.set_num_threads(1)  # tiny models: one thread is fastest
ae = AutoEncoder(
    8, architecture=ResidualMLP(), max_iter=60, tol=None, learning_rate_init=3e-3, random_state=0
)
ae.fit(X_train)
pca = PCA(8).fit(X_train)
print(f"the fitted network is {type(ae.module_.net).__name__}")
print(f"held-out MSE, residual AutoEncoder: {-ae.score(X_test):.4f}")
print(
    "held-out MSE, PCA with 8 components: "
    f"{np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2):.4f}"
)

# %%
# Tune the module's width like any other hyper-parameter
# ------------------------------------------------------
# The architecture's parameters appear as ``architecture__<name>`` in
# ``get_params``, as a kernel's do in a Gaussian process, so
# :class:`~sklearn.model_selection.GridSearchCV` searches over them; with no
# ``scoring=`` it maximises ``score``, the negative reconstruction error.
search = GridSearchCV(
    AutoEncoder(
        8,
        architecture=ResidualMLP(),
        max_iter=30,
        tol=None,
        learning_rate_init=3e-3,
        random_state=0,
    ),
    {"architecture__width": [16, 64], "architecture__depth": [1, 2]},
    cv=3,
).fit(X_train)
print("best:", search.best_params_)

# %%
# The same module under another objective
# ---------------------------------------
# The variational objective asks the same architecture for an encoder with
# ``2 * n_components`` outputs and trains it on the evidence lower bound;
# its :meth:`~skae.VariationalAutoEncoder.sample` draws new digits.
vae = VariationalAutoEncoder(
    8,
    architecture=ResidualMLP(),
    likelihood="bernoulli",
    max_iter=60,
    tol=None,
    learning_rate_init=3e-3,
    random_state=0,
).fit(X_train)
samples = vae.inverse_transform(np.random.default_rng(0).standard_normal((8, 8)))

fig, axes = plt.subplots(3, 8, figsize=(8, 3.3))
recon = ae.inverse_transform(ae.transform(X_test[:8]))
for i in range(8):
    for row, (images, label) in enumerate(
        [(X_test, "original"), (recon, "residual AE"), (samples, "VAE sample")]
    ):
        axes[row, i].imshow(images[i].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        axes[row, i].set_xticks([])
        axes[row, i].set_yticks([])
        if i == 0:
            axes[row, i].set_ylabel(label, fontsize=8)
fig.suptitle("A hand-written residual network as skae's architecture")
plt.show()

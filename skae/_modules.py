"""Small torch modules shared by the skae estimators.

Estimators build these; nothing here knows about scikit-learn.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "identity": nn.Identity,
}


def mlp(sizes: Sequence[int], activation: str) -> nn.Sequential:
    """Linear layers through ``sizes`` with ``activation`` between them.

    There is no activation after the last layer: codes and reconstructions
    are unbounded unless the caller adds one.
    """
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        if i > 0:
            layers.append(ACTIVATIONS[activation]())
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class MLPAutoEncoder(nn.Module):
    """An MLP encoder and a mirrored MLP decoder.

    ``encoder``: n_features -> *hidden_layer_sizes -> n_components (linear code).
    ``decoder``: n_components -> *reversed(hidden_layer_sizes) -> n_out (linear).
    ``n_out`` defaults to ``n_features``; a family whose decoder emits more than
    one value per feature (e.g. a mean and a variance) asks for more.
    """

    def __init__(
        self,
        n_features: int,
        n_components: int,
        hidden_layer_sizes: Sequence[int],
        activation: str,
        n_code_out: int | None = None,
        n_out: int | None = None,
    ):
        super().__init__()
        hidden = list(hidden_layer_sizes)
        n_code_out = n_components if n_code_out is None else n_code_out
        n_out = n_features if n_out is None else n_out
        self.encoder = mlp([n_features, *hidden, n_code_out], activation)
        self.decoder = mlp([n_components, *hidden[::-1], n_out], activation)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (batch, n_components)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (batch, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

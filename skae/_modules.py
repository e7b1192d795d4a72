"""Small torch modules shared by the skae estimators.

Estimators build these; nothing here knows about scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ._errors import valid_steps

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "identity": nn.Identity,
}


class SparseInputLinear(nn.Linear):
    """:class:`torch.nn.Linear` that also takes a sparse COO batch.

    A sparse batch (e.g. TF-IDF rows) is multiplied as it is, with no dense
    copy: the cost is that of its stored values, not of its width. A dense
    batch takes the ordinary path, so exports and state dicts are those of
    ``nn.Linear``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.layout == torch.sparse_coo:
            return torch.sparse.addmm(self.bias, x, self.weight.t())
        return super().forward(x)


def mlp(sizes: Sequence[int], activation: str, first=nn.Linear) -> nn.Sequential:
    """Linear layers through ``sizes`` with ``activation`` between them.

    There is no activation after the last layer: codes and reconstructions
    are unbounded unless the caller adds one. ``first`` is the class of the
    first linear layer.
    """
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        if i > 0:
            layers.append(ACTIVATIONS[activation]())
        layers.append((first if i == 0 else nn.Linear)(n_in, n_out))
    return nn.Sequential(*layers)


class MLPAutoEncoder(nn.Module):
    """An MLP encoder and a mirrored MLP decoder.

    ``encoder``: n_features -> *hidden_layer_sizes -> n_components (linear code).
    ``decoder``: n_components -> *reversed(hidden_layer_sizes) -> n_out (linear).
    ``n_out`` defaults to ``n_features``; a family whose decoder emits more than
    one value per feature (e.g. a mean and a variance) asks for more. The
    encoder's first layer also multiplies sparse COO batches directly
    (``takes_sparse_batches``).
    """

    takes_sparse_batches = True

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
        self.encoder = mlp([n_features, *hidden, n_code_out], activation, SparseInputLinear)
        self.decoder = mlp([n_components, *hidden[::-1], n_out], activation)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (batch, n_components)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (batch, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


RNN_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


def step_clock(n_timesteps: int, n_pairs: int, like: torch.Tensor) -> torch.Tensor:
    """Sines and cosines of each step's index: (n_timesteps, 2 * n_pairs), like ``like``.

    Pair ``k`` has period ``4 * 2**k`` steps (4, 8, 16, ...), so 10 pairs tell
    apart the steps of sequences up to 2,048 steps long. A step's values
    depend on its index from the start only, never on how many steps follow.
    """
    t = torch.arange(n_timesteps, device=like.device, dtype=like.dtype).unsqueeze(1)
    periods = 4.0 * 2.0 ** torch.arange(n_pairs, device=like.device, dtype=like.dtype)
    angle = (2 * math.pi) * t / periods  # (time, n_pairs)
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)


def repeat_decode(
    decoder: nn.Module,
    to_output: nn.Module,
    z: torch.Tensor,
    n_timesteps: int,
    time_encoding: int = 0,
):
    """The repeat-vector decoder: ``z`` fed at each of ``n_timesteps`` steps.

    (batch, n_components) -> ``decoder`` (a batch-first recurrent network)
    -> ``to_output`` of each state -> (batch, n_timesteps, n_features). With
    ``time_encoding`` pairs, each step's input is ``z`` followed by the
    step's :func:`step_clock` values, so the decoder knows where in the
    sequence it is instead of having to count steps in its state. It runs
    forward in time, so its output at a step never depends on how many follow.
    """
    steps = z.unsqueeze(1).expand(-1, n_timesteps, -1)  # (batch, time, n_components)
    if time_encoding:
        clock = step_clock(n_timesteps, time_encoding, z)
        steps = torch.cat([steps, clock.unsqueeze(0).expand(z.shape[0], -1, -1)], dim=2)
    out, _ = decoder(steps)  # (batch, time, hidden)
    return to_output(out)  # (batch, time, n_features)


class RecurrentSeq2Seq(nn.Module):
    """A recurrent encoder and a repeat-vector recurrent decoder.

    ``encode``: (batch, time, n_features) -> final hidden state of the encoder's
    last layer (both directions if bidirectional) -> linear -> (batch, n_components).
    ``decode``: the code (followed by ``time_encoding`` sine/cosine pairs of
    the step's index, see :func:`step_clock`) fed at each of ``n_timesteps``
    steps into a unidirectional recurrent network -> linear -> (batch,
    n_timesteps, n_features).
    Since the decoder reads only the code and runs forward in time, its output
    at a step never depends on how many steps follow it (or on padding).
    """

    def __init__(
        self,
        n_features: int,
        n_components: int,
        cell: str,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        n_code_out: int | None = None,
        time_encoding: int = 0,
    ):
        super().__init__()
        rnn = RNN_CELLS[cell]
        self.time_encoding = time_encoding
        n_code_out = n_components if n_code_out is None else n_code_out
        self.n_directions = 2 if bidirectional else 1
        self.encoder = rnn(
            n_features, hidden_size, num_layers, batch_first=True, bidirectional=bidirectional
        )
        self.to_code = nn.Linear(self.n_directions * hidden_size, n_code_out)
        self.decoder = rnn(
            n_components + 2 * time_encoding, hidden_size, num_layers, batch_first=True
        )
        self.to_output = nn.Linear(hidden_size, n_features)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Codes of padded sequences ``x``; ``lengths=None`` means all are full length."""
        if lengths is not None:
            # Packing needs the lengths on the CPU: a host-device sync on CUDA,
            # paid only by variable-length data.
            lengths = lengths.cpu()
            x = x[:, : int(lengths.max())]
            if int(lengths.min()) < x.shape[1]:
                x = nn.utils.rnn.pack_padded_sequence(
                    x, lengths, batch_first=True, enforce_sorted=False
                )
        _, state = self.encoder(x)
        h = state[0] if isinstance(state, tuple) else state  # (layers * dirs, batch, hidden)
        last = h[-self.n_directions :].transpose(0, 1).flatten(1)  # (batch, dirs * hidden)
        return self.to_code(last)  # (batch, n_code_out)

    def decode(self, z: torch.Tensor, n_timesteps: int) -> torch.Tensor:
        return repeat_decode(self.decoder, self.to_output, z, n_timesteps, self.time_encoding)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(x, lengths), x.shape[1])


class Network(nn.Module):
    """An architecture's module behind the one interface the objectives use.

    ``encode(x, lengths=None)`` and ``decode(z, n_timesteps=None)``: a
    sequence module (``sequential=True``) takes the lengths and the output
    length, any other module ignores them. The objectives subclass it to add
    what they need (a sparsifying code, a posterior, a likelihood).
    """

    def __init__(self, net: nn.Module, sequential: bool):
        super().__init__()
        self.net = net
        self.sequential = sequential

    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.net.encode(x, lengths) if self.sequential else self.net.encode(x)

    def decode(self, z: torch.Tensor, n_timesteps: int | None = None) -> torch.Tensor:
        return self.net.decode(z, n_timesteps) if self.sequential else self.net.decode(z)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(x, lengths), x.shape[1])


POOLINGS = ("mean", "max")


class PooledConvSeq2Seq(nn.Module):
    """Convolutions over time pooled into a code, and a repeat-vector recurrent decoder.

    ``encode``: (batch, time, n_features) -> channels first -> per entry of
    ``channels`` a "same" convolution over time and an activation, the padded
    steps set to zero after each -> mean and/or max over each sequence's own
    steps, concatenated -> linear -> (batch, n_code_out). Zeroing the padded
    steps after every layer makes a step's value the one it has when its
    sequence is alone (zero "same" padding there too), so a code never
    depends on the batch the sequence sits in.
    ``decode``: as :class:`RecurrentSeq2Seq`, the code fed at each of
    ``n_timesteps`` steps into a unidirectional recurrent network -> linear
    -> (batch, n_timesteps, n_features).
    """

    def __init__(
        self,
        n_features: int,
        n_components: int,
        channels: Sequence[int],
        kernel_size: int,
        activation: str,
        pooling: Sequence[str],
        cell: str,
        hidden_size: int,
        n_code_out: int | None = None,
    ):
        super().__init__()
        n_code_out = n_components if n_code_out is None else n_code_out
        widths = [n_features, *channels]
        self.convs = nn.ModuleList(
            nn.Conv1d(n_in, n_out, kernel_size, padding=kernel_size // 2)
            for n_in, n_out in zip(widths[:-1], widths[1:], strict=True)
        )
        self.act = ACTIVATIONS[activation]()
        self.pooling = tuple(pooling)
        self.to_code = nn.Linear(len(self.pooling) * widths[-1], n_code_out)
        self.decoder = RNN_CELLS[cell](n_components, hidden_size, batch_first=True)
        self.to_output = nn.Linear(hidden_size, n_features)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Codes of padded sequences ``x``; ``lengths=None`` means all are full length."""
        h = x.transpose(1, 2)  # (batch, n_features, time)
        mask = None  # or (batch, 1, time): 1 on the real steps, 0 on the padding
        if lengths is not None:
            mask = valid_steps(x, lengths).transpose(1, 2).to(h.dtype)
            h = h * mask
        for conv in self.convs:
            h = self.act(conv(h))  # (batch, channels, time)
            if mask is not None:
                h = h * mask
        pooled = []
        for how in self.pooling:
            if how == "mean" and mask is None:
                pooled.append(h.mean(dim=2))
            elif how == "mean":
                pooled.append(h.sum(dim=2) / mask.sum(dim=2))
            elif mask is None:
                pooled.append(h.amax(dim=2))
            else:
                pooled.append(h.masked_fill(mask == 0, float("-inf")).amax(dim=2))
        return self.to_code(torch.cat(pooled, dim=1))  # (batch, n_code_out)

    def decode(self, z: torch.Tensor, n_timesteps: int) -> torch.Tensor:
        return repeat_decode(self.decoder, self.to_output, z, n_timesteps)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(x, lengths), x.shape[1])

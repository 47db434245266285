"""The sequence encoder (embedding or one-hot input -> recurrent stack, optionally bidirectional, run by length:
packed, or on a CPU in length segments (LSTM; GRU / RNN when training on 16 steps or more), see
:func:`rnnkit.nn.stack.run_stack`) and the bridge that turns its final states into a decoder's initial state."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.nn.rnn import State
from rnnkit.nn.stack import make_stack, run_stack, zero_state

BRIDGES = ("zero", "last", "learned")


def embed(embedding: nn.Embedding | None, ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """ids (T, B) -> (T, B, E) through ``embedding``, or one-hot vectors (T, B, V) when it is None (seed
    000 feeds characters one-hot: the first layer's ``weight_ih`` is then the embedding)."""
    if embedding is None:
        return F.one_hot(ids, vocab_size).float()
    return embedding(ids)


def merge_directions(h: torch.Tensor) -> torch.Tensor:
    """A layer's final hidden state (D, B, H) -> (B, D*H): the forward and backward states side by side."""
    return h.transpose(0, 1).reshape(h.size(1), -1)


@dataclass
class Encoded:
    """outputs (S, B, D*H): the top layer at every source step (zeros past a sentence's end); final: each
    layer's state at the sentence's last valid step ((D, B, H), or an (h, c) pair of them); lengths (B,)."""

    outputs: torch.Tensor
    final: list[State]
    lengths: torch.Tensor


class Encoder(nn.Module):
    """Parameters: ``embedding.weight`` (absent for one-hot input), ``rnns.{k}.*`` (``*_reverse`` too when
    bidirectional)."""

    def __init__(self, cell: str, vocab_size: int, embedding_size: int, hidden_size: int, layers: int,
                 bidirectional: bool, dropout: float):
        super().__init__()
        self.vocab_size, self.dropout = vocab_size, dropout
        self.embedding = nn.Embedding(vocab_size, embedding_size) if embedding_size > 0 else None
        self.rnns = make_stack(cell, embedding_size or vocab_size, [hidden_size] * layers, bidirectional)
        self.output_size = hidden_size * (2 if bidirectional else 1)

    def forward(self, src: torch.Tensor, lengths: torch.Tensor) -> Encoded:
        """src (S, B) ids, lengths (B,) of at least 1; padding past a length never reaches a state."""
        if src.dim() != 2 or lengths.shape != (src.size(1),):
            raise ValueError(f"src must be (S, B) and src_lengths (B,); got {tuple(src.shape)} and "
                             f"{tuple(lengths.shape)}")
        if lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > src.size(0)):
            raise ValueError(f"src_lengths must lie in 1..{src.size(0)} (the padded source length)")
        x = F.dropout(embed(self.embedding, src, self.vocab_size), self.dropout, self.training)
        outputs, final = run_stack(self.rnns, x, lengths, dropout=self.dropout, training=self.training)
        return Encoded(outputs, final, lengths)


class Bridge(nn.Module):
    """The decoder's initial state from the encoder's final states.

    ``zero``: zeros. ``last``: each decoder layer starts from an encoder layer's final state (same size;
    unidirectional encoder). ``learned``: tanh(W_h [h_fwd; h_bwd] + b_h) for the hidden state and, for
    LSTM, W_c [c_fwd; c_bwd] + b_c for the cell state (parameters ``bridge.hidden.*``, ``bridge.cell.*``;
    one map shared by all layers). Layers are aligned from the top: the top decoder layer starts from the
    top encoder layer, the one below from the one below, and decoder layers below the encoder's lowest
    start from zeros.
    """

    def __init__(self, kind: str, cell: str, encoder_size: int, decoder_size: int):
        super().__init__()
        if kind not in BRIDGES:
            raise ValueError(f"unknown bridge '{kind}' (one of {', '.join(BRIDGES)})")
        self.kind = kind
        if kind == "learned":
            self.hidden = nn.Linear(encoder_size, decoder_size)
            self.cell = nn.Linear(encoder_size, decoder_size) if cell == "lstm" else None

    def forward(self, encoded: Encoded, decoder_rnns: nn.ModuleList) -> list[State]:
        zeros = zero_state(decoder_rnns, encoded.lengths.numel(), encoded.outputs.device)
        if self.kind == "zero":
            return zeros
        offset = len(encoded.final) - len(decoder_rnns)
        return [self._map(encoded.final[k + offset]) if k + offset >= 0 else zeros[k]
                for k in range(len(decoder_rnns))]

    def _map(self, state: State) -> State:
        if self.kind == "last":
            return state
        if isinstance(state, tuple):
            h, c = (merge_directions(s) for s in state)
            return torch.tanh(self.hidden(h)).unsqueeze(0), self.cell(c).unsqueeze(0)
        return torch.tanh(self.hidden(merge_directions(state))).unsqueeze(0)

"""One recurrent stack, shared by the language model, encoders and decoders.

A stack is an ``nn.ModuleList`` of one ``torch.nn.RNN/GRU/LSTM`` per layer; its owner names it ``rnns``,
so parameters read ``rnns.{k}.weight_ih_l0`` ... in every task and weights transfer between tasks by name.
:func:`run_stack` runs it over a padded (T, B, I) batch: each layer on torch's fused kernel
(:func:`rnnkit.nn.rnn.run_layer` keeps the per-shape CPU kernel choice and DropConnect), dropout
between layers, and, given lengths, packed so padding never enters a state (DESIGN principle 4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnkit.nn.dropout import sequence_dropout
from rnnkit.nn.rnn import State, make_layer, run_layer


def make_stack(cell: str, input_size: int, sizes: list[int], bidirectional: bool = False) -> nn.ModuleList:
    """One single-layer torch.nn module per entry of ``sizes`` (hidden units per direction); a layer
    takes the previous layer's output (both directions concatenated when ``bidirectional``)."""
    directions = 2 if bidirectional else 1
    inputs = [input_size] + [size * directions for size in sizes[:-1]]
    return nn.ModuleList(make_layer(cell, i, h, bidirectional) for i, h in zip(inputs, sizes, strict=True))


def run_stack(rnns: nn.ModuleList, x: torch.Tensor, lengths: torch.Tensor | None = None,
              state: list[State] | None = None, dropout: float = 0.0, locked: bool = False,
              weight_drop: float = 0.0, training: bool = False) -> tuple[torch.Tensor, list[State]]:
    """Run the layers over x (T, B, I); returns the top layer's output (T, B, D*H) and each layer's final
    state ((D, B, H), or an (h, c) pair of them; D = 2 for a bidirectional layer).

    lengths (B,): the sequences are packed, so each final state is taken at that sequence's last valid
    step (the reverse direction starts there) and outputs past it are zeros. state: one initial state
    per layer (None: zeros). dropout: between layers, a fresh mask per element, or one per sequence
    when ``locked``. weight_drop: DropConnect on the hidden-to-hidden weights (training only).
    """
    steps = x.size(0)
    if lengths is not None:
        x = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
    final = []
    for k, layer in enumerate(rnns):
        x, s = run_layer(layer, x, None if state is None else state[k], weight_drop, training)
        final.append(s)
        if k < len(rnns) - 1:
            x = _dropout(x, dropout, training, locked)
    if lengths is not None:
        x = pad_packed_sequence(x, total_length=steps)[0]
    return x, final


def _dropout(x: torch.Tensor | PackedSequence, p: float, training: bool, locked: bool):
    """:func:`sequence_dropout` for a padded tensor or a PackedSequence (whose rows mix sequences)."""
    if not training or p == 0:
        return x
    if isinstance(x, torch.Tensor):
        return sequence_dropout(x, p, training, locked)
    if not locked:
        return x._replace(data=F.dropout(x.data, p, True))
    batch = int(x.batch_sizes[0])  # every sequence runs at the first step
    mask = x.data.new_empty(batch, x.data.size(1)).bernoulli_(1 - p) / (1 - p)
    return x._replace(data=x.data * mask[_packed_rows(x)])


def _packed_rows(packed: PackedSequence) -> torch.Tensor:
    """The batch row (in the caller's order) of each row of ``packed.data``: steps one after another,
    each holding the sequences still running, longest first."""
    batch_sizes = packed.batch_sizes
    width = int(batch_sizes[0])
    running = torch.arange(width) < batch_sizes[:, None]  # (T, B) in sorted order
    sorted_rows = torch.arange(width).expand_as(running)[running]
    rows = sorted_rows if packed.sorted_indices is None else packed.sorted_indices.cpu()[sorted_rows]
    return rows.to(packed.data.device)


def zero_state(rnns: nn.ModuleList, batch: int, device: torch.device | None = None) -> list[State]:
    """The zero initial state of every layer for ``batch`` sequences."""
    states = []
    for layer in rnns:
        directions = 2 if layer.bidirectional else 1
        h = torch.zeros(directions, batch, layer.hidden_size, device=device)
        states.append((h, h.clone()) if isinstance(layer, nn.LSTM) else h)
    return states

"""Recurrent layers: one ``torch.nn.RNN/GRU/LSTM`` per layer, so every layer runs torch's own kernel
(cuDNN on a GPU; oneDNN for LSTM on a CPU, ATen's C++ time loop for GRU and plain RNN there).

Keeping one module per layer (rather than one multi-layer module) lets layers differ in size (the
last layer of a tied AWD-LSTM matches the embedding) and lets dropout between layers be locked.
Parameters keep torch.nn's names and gate order (i,f,g,o for LSTM; r,z,n for GRU), so weights copy
one-to-one to and from the NumPy reference in :mod:`rnnkit.reference`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

CELLS = ("rnn_tanh", "rnn_relu", "gru", "lstm")

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def make_layer(cell: str, input_size: int, hidden_size: int) -> nn.RNNBase:
    """A single-layer, time-major torch.nn recurrent module."""
    if cell == "lstm":
        return nn.LSTM(input_size, hidden_size)
    if cell == "gru":
        return nn.GRU(input_size, hidden_size)
    if cell in ("rnn_tanh", "rnn_relu", "rnn"):
        return nn.RNN(input_size, hidden_size, nonlinearity="relu" if cell == "rnn_relu" else "tanh")
    raise ValueError(f"unknown cell '{cell}' (one of {', '.join(CELLS)})")


def run_layer(layer: nn.RNNBase, x: torch.Tensor, state: State | None, weight_drop: float,
              training: bool) -> tuple[torch.Tensor, State]:
    """Run one layer over a sequence, optionally with DropConnect on ``weight_hh`` (AWD-LSTM).

    x: (T, B, I) -> output (T, B, H), state (1, B, H) or a (h, c) pair of them.
    DropConnect goes through ``functional_call`` so the layer still runs torch's own kernel.
    """
    if not training or weight_drop == 0:
        return layer(x, state)
    params = dict(layer.named_parameters())
    params["weight_hh_l0"] = F.dropout(params["weight_hh_l0"], weight_drop, True)
    return functional_call(layer, params, (x, state))


def map_state(state, fn):
    """Apply ``fn`` to every tensor of a (nested list/tuple) recurrent state, keeping its structure."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return fn(state)
    return type(state)(map_state(s, fn) for s in state)


def detach_state(state: State | list | None):
    """Cut the graph at a truncated-BPTT boundary, keeping the values."""
    return map_state(state, torch.Tensor.detach)

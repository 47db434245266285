"""Recurrent layers: one ``torch.nn.RNN/GRU/LSTM`` per layer, so every layer runs torch's own kernel
(cuDNN on a GPU; on a CPU oneDNN's fused LSTM or ATen's C++ time loop, see :func:`lstm_cpu_kernel`;
ATen's loop for GRU and plain RNN, which have no fused CPU kernel).

Keeping one module per layer (rather than one multi-layer module) lets layers differ in size (the
last layer of a tied AWD-LSTM matches the embedding) and lets dropout between layers be locked.
Parameters keep torch.nn's names and gate order (i,f,g,o for LSTM; r,z,n for GRU), so weights copy
one-to-one to and from the NumPy reference in :mod:`rnnkit.reference`.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence

CELLS = ("rnn_tanh", "rnn_relu", "gru", "lstm")

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def make_layer(cell: str, input_size: int, hidden_size: int, bidirectional: bool = False) -> nn.RNNBase:
    """A single-layer, time-major torch.nn recurrent module (both directions in one module when
    ``bidirectional``: parameters ``*_l0`` and ``*_l0_reverse``, outputs of size 2 * hidden_size)."""
    if cell == "lstm":
        return nn.LSTM(input_size, hidden_size, bidirectional=bidirectional)
    if cell == "gru":
        return nn.GRU(input_size, hidden_size, bidirectional=bidirectional)
    if cell in ("rnn_tanh", "rnn_relu", "rnn"):
        return nn.RNN(input_size, hidden_size, nonlinearity="relu" if cell == "rnn_relu" else "tanh",
                      bidirectional=bidirectional)
    raise ValueError(f"unknown cell '{cell}' (one of {', '.join(CELLS)})")


def lstm_cpu_kernel(steps: int, batch: int, hidden_size: int, training: bool) -> str:
    """``"aten"`` or ``"onednn"``: the faster torch LSTM kernel on a CPU for one call of this shape.

    oneDNN's fused LSTM (torch's CPU default) prepares its weights on every call, a cost that grows with
    the hidden size squared, then runs each time step faster than ATen's C++ loop. So ATen wins short
    calls (one-step generation; seed 002's 3-word windows) and oneDNN long ones (BPTT over 35 steps).
    ``training``: a backward pass follows. The step limits are the crossovers measured on a 2-core CPU,
    torch 2.13, hidden 128-1024, batch 1-64 (``benchmarks/lstm_kernel.py``).
    """
    if training:
        limit = 8 if hidden_size >= 512 and batch == 1 else 4 if hidden_size >= 256 else 2
    elif batch == 1:
        limit = 16 if hidden_size >= 512 else 4
    else:
        limit = 2 if hidden_size >= 256 else 1
    return "aten" if steps <= limit else "onednn"


def kernel_name(layer: nn.RNNBase, steps: int, batch: int, device: torch.device, training: bool) -> str:
    """Which torch kernel runs ``layer`` over ``steps`` x ``batch`` inputs: for logs and tests."""
    if device.type == "cuda":
        return "cudnn"
    if isinstance(layer, nn.LSTM):
        return lstm_cpu_kernel(steps, batch, layer.hidden_size, training)
    return "aten"


def describe_kernels(layers: list[nn.RNNBase], steps: int | None, batch: int, device: torch.device,
                     training: bool) -> str:
    """The kernel path of calls of ``steps`` x ``batch`` (None: steps vary per call), for a log line."""
    if device.type == "cuda":
        return "cuDNN fused kernel"
    if not isinstance(layers[0], nn.LSTM):  # no fused CPU kernel for GRU / plain RNN
        return "ATen CPU kernel, a C++ loop over time steps"
    if steps is None:
        return "oneDNN fused kernel or ATen's C++ loop, whichever is faster for each batch's length"
    names = {kernel_name(layer, steps, batch, device, training) for layer in layers}
    text = " / ".join("ATen's C++ loop" if k == "aten" else "oneDNN fused kernel" for k in sorted(names))
    return f"{text} for {steps}-step batches of {batch}"


@contextlib.contextmanager
def _onednn_disabled():
    """torch runs nn.LSTM through ATen instead of oneDNN while this is active (a process-wide flag)."""
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before


def run_layer(layer: nn.RNNBase, x: torch.Tensor | PackedSequence, state: State | None, weight_drop: float,
              training: bool) -> tuple[torch.Tensor | PackedSequence, State]:
    """Run one layer over a sequence, on the faster kernel for its shape, optionally with DropConnect
    on ``weight_hh`` (AWD-LSTM).

    x: (T, B, I) -> output (T, B, H), state (1, B, H) or a (h, c) pair of them; a PackedSequence in
    gives one out (torch runs packed input through ATen's loop whatever the flag says).
    DropConnect goes through ``functional_call`` so the layer still runs torch's own kernel.
    """
    with _kernel_for(layer, x):
        if not training or weight_drop == 0:
            return layer(x, state)
        return functional_call(layer, layer_weights(layer, weight_drop, training), (x, state))


def run_direction(layer: nn.RNNBase, weights: dict[str, torch.Tensor], reverse: bool, x: torch.Tensor,
                  state: State) -> tuple[torch.Tensor, State]:
    """One direction of a layer as a one-direction forward run, on the kernel :func:`run_layer` would pick
    for the shape: the same torch op the module calls (``torch.lstm`` / ``gru`` / ``rnn_tanh`` / ``rnn_relu``,
    so autocast and oneDNN apply alike), given only that direction's ``weights`` (``*_l0`` or ``*_l0_reverse``,
    from :func:`layer_weights`, DropConnect included). The reverse direction's weights run forward in time:
    the caller reverses x.

    x (T, B, I), state: (1, B, H), or an (h, c) pair of them for LSTM -> output (T, B, H) and the final state.
    """
    suffix = "_reverse" if reverse else ""
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if layer.bias else ("weight_ih", "weight_hh")
    flat = [weights[f"{name}_l0{suffix}"] for name in names]
    options = (layer.bias, 1, 0.0, layer.training, False, False)
    if isinstance(layer, nn.LSTM):
        with _kernel_for(layer, x):
            out, h, c = torch.lstm(x, tuple(state), flat, *options)
        return out, (h, c)
    op = torch.gru if isinstance(layer, nn.GRU) else torch.rnn_relu if layer.nonlinearity == "relu" else torch.rnn_tanh
    return op(x, state, flat, *options)


def _kernel_for(layer: nn.RNNBase, x: torch.Tensor | PackedSequence):
    """A context that makes torch run ``layer`` over x on the faster CPU kernel for its shape."""
    use_aten = (isinstance(layer, nn.LSTM) and isinstance(x, torch.Tensor) and x.device.type == "cpu"
                and lstm_cpu_kernel(x.size(0), x.size(1), layer.hidden_size, torch.is_grad_enabled()) == "aten")
    return _onednn_disabled() if use_aten else contextlib.nullcontext()


def layer_weights(layer: nn.RNNBase, weight_drop: float, training: bool) -> dict[str, torch.Tensor]:
    """The layer's parameters by name, with DropConnect applied to each direction's ``weight_hh``
    (one mask for the whole sequence) when training."""
    params = dict(layer.named_parameters())
    if training and weight_drop > 0:
        for name in params:
            if name.startswith("weight_hh"):
                params[name] = F.dropout(params[name], weight_drop, True)
    return params


def cell_step(layer: nn.RNNBase, weights: dict[str, torch.Tensor], input_projection: torch.Tensor,
              state: State) -> State:
    """One time step of a one-direction layer whose input projection ``x @ weight_ih.T + bias_ih``
    (N, G*H) was computed beforehand (for all steps at once, outside the loop).

    state and the result: (N, H), or an (h, c) pair for LSTM; the equations and gate order are
    torch.nn's (LSTM i,f,g,o; GRU r,z,n with the reset gate applied to the hidden projection).
    """
    h = state[0] if isinstance(state, tuple) else state
    hidden = F.linear(h, weights["weight_hh_l0"], weights["bias_hh_l0"])
    if isinstance(layer, nn.LSTM):
        i, f, g, o = (input_projection + hidden).chunk(4, dim=-1)
        c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c
    if isinstance(layer, nn.GRU):
        xr, xz, xn = input_projection.chunk(3, dim=-1)
        hr, hz, hn = hidden.chunk(3, dim=-1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return n + z * (h - n)
    pre = input_projection + hidden
    return torch.relu(pre) if layer.nonlinearity == "relu" else torch.tanh(pre)


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

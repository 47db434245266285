"""Recurrent cells in plain NumPy: one step forward, one step backward, and a layer over a sequence.

Shapes used throughout (torch.nn's layout, so weights copy both ways):

- ``x``: (B, I) input at one step, ``h``/``c``: (B, H) state, ``xs``: (T, B, I) a whole sequence.
- ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih`` (G*H,), ``bias_hh`` (G*H,) with
  G = 1 (rnn), 3 (gru: r, z, n) or 4 (lstm: i, f, g, o).

A recurrent state is handled internally as a tuple: ``(h,)`` for rnn/gru and ``(h, c)`` for lstm, so
the layer code does not care which cell it runs.

Every ``*_step`` returns the new state and a cache (what the backward needs); every ``*_step_backward``
takes the gradient of the loss w.r.t. the new state, adds the parameter gradients into ``g`` *in place*
(gradients from all time steps sum into one set of arrays) and returns the gradients w.r.t. the step's
input and previous state.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "CELLS",
    "LayerWeights",
    "canonical_cell",
    "num_gates",
    "sigmoid",
    "init_layer",
    "zeros_like_weights",
    "rnn_step",
    "rnn_step_backward",
    "gru_step",
    "gru_step_backward",
    "lstm_step",
    "lstm_step_backward",
    "cell_step",
    "cell_step_backward",
    "layer_forward",
    "layer_backward",
]

#: canonical cell names; "rnn" is an alias of "rnn_tanh" (the torch.nn.RNN default).
CELLS = ("rnn_tanh", "rnn_relu", "gru", "lstm")
_ALIASES = {"rnn": "rnn_tanh", "tanh": "rnn_tanh", "relu": "rnn_relu"}
_GATES = {"rnn_tanh": 1, "rnn_relu": 1, "gru": 3, "lstm": 4}

State = tuple  # (h,) or (h, c), each (B, H)


class LayerWeights(NamedTuple):
    """The four arrays of one recurrent layer, named as in torch.nn (without the ``_l0`` suffix)."""

    weight_ih: np.ndarray  # (G*H, I)
    weight_hh: np.ndarray  # (G*H, H)
    bias_ih: np.ndarray  # (G*H,)
    bias_hh: np.ndarray  # (G*H,)


def canonical_cell(cell: str) -> str:
    """Map "rnn"/"rnn_tanh"/"rnn_relu"/"gru"/"lstm" (any case) to one of :data:`CELLS`."""
    name = _ALIASES.get(cell.lower(), cell.lower())
    if name not in _GATES:
        raise ValueError(f"unknown cell {cell!r}; expected one of rnn, rnn_tanh, rnn_relu, gru, lstm")
    return name


def num_gates(cell: str) -> int:
    """G, the number of stacked gate blocks in the weight matrices."""
    return _GATES[canonical_cell(cell)]


def sigmoid(a: np.ndarray) -> np.ndarray:
    # The tanh form never overflows in exp(), unlike 1 / (1 + exp(-a)) for very negative a.
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def init_layer(
    cell: str, input_size: int, hidden_size: int, rng: np.random.Generator, dtype=np.float64, scale=None
) -> LayerWeights:
    """Weights drawn like torch.nn.RNN/GRU/LSTM: uniform(-k, k) with k = 1/sqrt(H) (or ``scale``)."""
    G = num_gates(cell)
    k = 1.0 / np.sqrt(hidden_size) if scale is None else scale

    def u(*shape):
        return rng.uniform(-k, k, size=shape).astype(dtype)

    return LayerWeights(u(G * hidden_size, input_size), u(G * hidden_size, hidden_size),
                        u(G * hidden_size), u(G * hidden_size))


def zeros_like_weights(w: LayerWeights) -> LayerWeights:
    """A gradient accumulator with the same shapes as ``w``."""
    return LayerWeights(*(np.zeros_like(a) for a in w))


def _accumulate(g: LayerWeights, da_ih: np.ndarray, da_hh: np.ndarray, x: np.ndarray, h: np.ndarray) -> None:
    """Add the gradients of ``a_ih = x W_ih^T + b_ih`` and ``a_hh = h W_hh^T + b_hh`` into ``g``."""
    # [...] writes into the arrays themselves (a NamedTuple field cannot be rebound).
    g.weight_ih[...] += da_ih.T @ x
    g.weight_hh[...] += da_hh.T @ h
    g.bias_ih[...] += da_ih.sum(axis=0)
    g.bias_hh[...] += da_hh.sum(axis=0)


# ----------------------------------------------------------------------------------------------------
# Vanilla RNN:  h' = act(W_ih x + b_ih + W_hh h + b_hh),  act = tanh or relu


def rnn_step(x: np.ndarray, h: np.ndarray, w: LayerWeights, nonlinearity: str = "tanh"):
    """One RNN step. x (B, I), h (B, H) -> h' (B, H), cache."""
    a = x @ w.weight_ih.T + w.bias_ih + h @ w.weight_hh.T + w.bias_hh
    h_new = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0.0)
    return h_new, (x, h, h_new, nonlinearity)


def rnn_step_backward(dh_new: np.ndarray, cache, w: LayerWeights, g: LayerWeights):
    """Backward of :func:`rnn_step`. dh_new (B, H) -> dx (B, I), dh (B, H); adds into ``g``."""
    x, h, h_new, nonlinearity = cache
    # Both derivatives are cheapest written in terms of the output we already have.
    da = dh_new * (1.0 - h_new**2) if nonlinearity == "tanh" else dh_new * (h_new > 0)
    _accumulate(g, da, da, x, h)
    return da @ w.weight_ih, da @ w.weight_hh


# ----------------------------------------------------------------------------------------------------
# GRU (torch.nn.GRU, gate order r, z, n):
#   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
#   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
#   n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
#   h' = (1 - z) * n + z * h


def gru_step(x: np.ndarray, h: np.ndarray, w: LayerWeights):
    """One GRU step. x (B, I), h (B, H) -> h' (B, H), cache."""
    H = h.shape[1]
    gi = x @ w.weight_ih.T + w.bias_ih  # (B, 3H)
    gh = h @ w.weight_hh.T + w.bias_hh  # (B, 3H); kept apart because r multiplies only its n-block
    r = sigmoid(gi[:, :H] + gh[:, :H])
    z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    hn = gh[:, 2 * H:]
    n = np.tanh(gi[:, 2 * H:] + r * hn)
    h_new = (1.0 - z) * n + z * h
    return h_new, (x, h, r, z, n, hn)


def gru_step_backward(dh_new: np.ndarray, cache, w: LayerWeights, g: LayerWeights):
    """Backward of :func:`gru_step`. dh_new (B, H) -> dx (B, I), dh (B, H); adds into ``g``."""
    x, h, r, z, n, hn = cache
    dn = dh_new * (1.0 - z)
    dz = dh_new * (h - n)
    da_n = dn * (1.0 - n**2)  # gradient at the pre-activation of n
    da_r = da_n * hn * r * (1.0 - r)
    da_z = dz * z * (1.0 - z)
    da_ih = np.concatenate([da_r, da_z, da_n], axis=1)
    da_hh = np.concatenate([da_r, da_z, da_n * r], axis=1)  # the h-side of n is scaled by r
    _accumulate(g, da_ih, da_hh, x, h)
    return da_ih @ w.weight_ih, dh_new * z + da_hh @ w.weight_hh


# ----------------------------------------------------------------------------------------------------
# LSTM (torch.nn.LSTM, gate order i, f, g, o):
#   [i, f, g, o] = [sigmoid, sigmoid, tanh, sigmoid](W_ih x + b_ih + W_hh h + b_hh)
#   c' = f * c + i * g
#   h' = o * tanh(c')


def lstm_step(x: np.ndarray, h: np.ndarray, c: np.ndarray, w: LayerWeights):
    """One LSTM step. x (B, I), h (B, H), c (B, H) -> h' (B, H), c' (B, H), cache."""
    H = h.shape[1]
    a = x @ w.weight_ih.T + w.bias_ih + h @ w.weight_hh.T + w.bias_hh  # (B, 4H)
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H:2 * H])
    gg = np.tanh(a[:, 2 * H:3 * H])
    o = sigmoid(a[:, 3 * H:])
    c_new = f * c + i * gg
    tc = np.tanh(c_new)
    h_new = o * tc
    return h_new, c_new, (x, h, c, i, f, gg, o, tc)


def lstm_step_backward(dh_new: np.ndarray, dc_new: np.ndarray, cache, w: LayerWeights, g: LayerWeights):
    """Backward of :func:`lstm_step`. dh_new, dc_new (B, H) -> dx (B, I), dh (B, H), dc (B, H)."""
    x, h, c, i, f, gg, o, tc = cache
    do = dh_new * tc
    dc = dc_new + dh_new * o * (1.0 - tc**2)  # c' reaches the loss directly and through h'
    da = np.concatenate(
        [dc * gg * i * (1.0 - i), dc * c * f * (1.0 - f), dc * i * (1.0 - gg**2), do * o * (1.0 - o)], axis=1
    )
    _accumulate(g, da, da, x, h)
    return da @ w.weight_ih, da @ w.weight_hh, dc * f


# ----------------------------------------------------------------------------------------------------
# Cell-agnostic step, with the state as a tuple (h,) or (h, c)


def cell_step(cell: str, x: np.ndarray, state: State, w: LayerWeights):
    """One step of any cell. x (B, I), state tuple of (B, H) -> new state tuple, cache."""
    if cell == "lstm":
        h, c, cache = lstm_step(x, state[0], state[1], w)
        return (h, c), cache
    if cell == "gru":
        h, cache = gru_step(x, state[0], w)
    else:
        h, cache = rnn_step(x, state[0], w, "relu" if cell == "rnn_relu" else "tanh")
    return (h,), cache


def cell_step_backward(cell: str, dstate_new: State, cache, w: LayerWeights, g: LayerWeights):
    """Backward of :func:`cell_step`: gradient w.r.t. the new state -> (dx, gradient w.r.t. old state)."""
    # The functions are looked up at call time so that a test can monkeypatch one of them.
    if cell == "lstm":
        dx, dh, dc = lstm_step_backward(dstate_new[0], dstate_new[1], cache, w, g)
        return dx, (dh, dc)
    if cell == "gru":
        dx, dh = gru_step_backward(dstate_new[0], cache, w, g)
    else:
        dx, dh = rnn_step_backward(dstate_new[0], cache, w, g)
    return dx, (dh,)


# ----------------------------------------------------------------------------------------------------
# A layer over a sequence


def layer_forward(cell: str, xs: np.ndarray, state: State, w: LayerWeights):
    """Run a layer over a sequence.

    xs (T, B, I), state tuple of (B, H) -> hs (T, B, H) (the h at every step), final state, caches
    (a list of T per-step caches, for :func:`layer_backward`).
    """
    cell = canonical_cell(cell)
    hs, caches = [], []
    for x in xs:
        state, cache = cell_step(cell, x, state, w)
        hs.append(state[0])
        caches.append(cache)
    return np.stack(hs), state, caches


def _backprop_span(cell: str, caches: list, dhs: np.ndarray, w: LayerWeights, g: LayerWeights, dstate):
    """Back through the steps in ``caches`` (last to first), ``dhs`` (n, B, H) arriving from above.

    Returns dxs (n, B, I) and the gradient w.r.t. the state entering the first step.
    """
    dxs = [None] * len(caches)
    for s in range(len(caches) - 1, -1, -1):
        # The h output of a step feeds both the layer above (dhs) and the next step (dstate).
        dstate = (dstate[0] + dhs[s],) + tuple(dstate[1:])
        dxs[s], dstate = cell_step_backward(cell, dstate, caches[s], w, g)
    return np.stack(dxs), dstate


def layer_backward(
    cell: str,
    caches: list,
    dhs: np.ndarray,
    w: LayerWeights,
    g: LayerWeights | None = None,
    bptt_truncate: int | None = None,
    dstate_final: State | None = None,
):
    """Backpropagation through time for one layer.

    caches: from :func:`layer_forward` (T steps); dhs (T, B, H): gradient of the loss w.r.t. the h
    output at each step; dstate_final: gradient w.r.t. the final state (default zero).
    Returns dxs (T, B, I), dstate0 (gradient w.r.t. the initial state), g (parameter gradients, summed
    into ``g`` if given).

    bptt_truncate=None is full BPTT. bptt_truncate=k is the WildML tutorial's truncated BPTT: the
    gradient arriving at output step t flows back through steps t, t-1, ..., max(0, t-k) only, the
    state before that being treated as a constant. (dstate_final is then ignored: it has no output step.)
    """
    cell = canonical_cell(cell)
    g = zeros_like_weights(w) if g is None else g
    T = len(caches)
    B, H = dhs.shape[1], dhs.shape[2]
    zero = tuple(np.zeros((B, H), dhs.dtype) for _ in range(2 if cell == "lstm" else 1))
    if bptt_truncate is None:
        dxs, dstate0 = _backprop_span(cell, caches, dhs, w, g, zero if dstate_final is None else dstate_final)
        return dxs, dstate0, g
    # Truncated: one short backward pass per output step, as in WildML's double loop.
    dxs = np.zeros((T, B, w.weight_ih.shape[1]), dhs.dtype)
    dstate0 = zero
    for t in range(T):
        s = max(0, t - bptt_truncate)
        d = np.zeros((t - s + 1, B, H), dhs.dtype)
        d[-1] = dhs[t]
        dx, dstate = _backprop_span(cell, caches[s:t + 1], d, w, g, zero)
        dxs[s:t + 1] += dx
        if s == 0:  # only windows that reach the start touch the initial state
            dstate0 = tuple(a + b for a, b in zip(dstate0, dstate, strict=True))
    return dxs, dstate0, g

"""A word/char-level language model in plain NumPy, weight-compatible with rnnkit's PyTorch LM.

Model (time-major, T steps, batch B, vocabulary V, embedding E, hidden H, L layers)::

    e_t       = embedding.weight[x_t]                         (B, E)
    h_t^(1)   = cell(e_t,        h_{t-1}^(1))                  (B, H)
    h_t^(l)   = cell(h_t^(l-1),  h_{t-1}^(l))                  (B, H)
    logits_t  = h_t^(L) @ output.weight.T + output.bias      (B, V)
    loss      = mean over positions with y != ignore_index of -log softmax(logits_t)[y_t]

Parameter names are exactly the PyTorch LM's state_dict keys (``embedding.weight``,
``rnns.{k}.weight_ih_l0`` ..., ``output.weight``, ``output.bias``), so a state_dict copies both ways
after a ``.numpy()`` / ``torch.from_numpy``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .cells import (
    LayerWeights,
    canonical_cell,
    init_layer,
    layer_backward,
    layer_forward,
    num_gates,
)

__all__ = ["NumpyLanguageModel", "cross_entropy", "train_sgd"]

_LAYER_KEYS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def cross_entropy(logits: np.ndarray, y: np.ndarray, ignore_index: int = -100):
    """Mean cross-entropy (natural log) and its gradient.

    logits (..., V), y (...) int -> (loss, dlogits (..., V)). Positions with y == ignore_index count for
    nothing, neither in the sum nor in the number of positions it is divided by. If every position is
    ignored the loss is defined as 0 (torch would give nan).
    """
    mask = y != ignore_index
    count = max(int(mask.sum()), 1)
    yy = np.where(mask, y, 0)  # any valid index; masked out below
    if np.any((yy < 0) | (yy >= logits.shape[-1])):
        raise ValueError("target id out of range")
    shifted = logits - logits.max(axis=-1, keepdims=True)  # keeps exp() from overflowing
    logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    nll = -np.take_along_axis(logp, yy[..., None], axis=-1)[..., 0]
    # A NumPy scalar, not float(): a float64 result is a float anyway, and a longdouble one keeps its
    # extra digits (the gradient check relies on them).
    loss = (nll * mask).sum() / count
    # d(-log softmax(l)[y]) / dl = softmax(l) - onehot(y)
    dlogits = np.exp(logp)
    np.put_along_axis(dlogits, yy[..., None], np.take_along_axis(dlogits, yy[..., None], -1) - 1.0, -1)
    dlogits *= mask[..., None] / count
    return loss, dlogits


def _to_numpy(v: Any) -> np.ndarray:
    """Accept NumPy arrays or (CPU or not) torch tensors without importing torch."""
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return np.asarray(v)


def _same_storage(a: Any, b: Any) -> bool:
    """True if two state_dict entries are one shared (tied) parameter."""
    if a is b:
        return True
    if hasattr(a, "data_ptr") and hasattr(b, "data_ptr"):
        return a.data_ptr() == b.data_ptr() and tuple(a.shape) == tuple(b.shape)
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.shape == b.shape and np.shares_memory(a, b)
    return False


class NumpyLanguageModel:
    """Embedding -> L single-layer recurrent layers -> linear output layer, in NumPy.

    Args:
        cell: "rnn"/"rnn_tanh", "rnn_relu", "gru" or "lstm".
        vocab_size, embedding_size, hidden_size, num_layers: V, E, H, L.
        tie_weights: output.weight is the very same array as embedding.weight (needs H == E).
        seed: for the default initialisation.
        dtype: float64 by default, which is what makes 1e-7 agreement with torch possible.
        init_scale: None initialises like torch (embedding N(0, 1), recurrent weights U(±1/sqrt(H)),
            output layer U(±1/sqrt(H))); a number draws every parameter from U(±init_scale) instead (a small
            value gives an initial loss of about ln V).

    State: for rnn/gru a list of L arrays (B, H); for lstm a list of L tuples (h, c).
    """

    def __init__(
        self,
        cell: str,
        vocab_size: int,
        embedding_size: int,
        hidden_size: int,
        num_layers: int = 1,
        tie_weights: bool = False,
        seed: int = 0,
        dtype: Any = np.float64,
        init_scale: float | None = None,
    ) -> None:
        self.cell = canonical_cell(cell)
        self.vocab_size, self.embedding_size = vocab_size, embedding_size
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.tie_weights, self.dtype = tie_weights, np.dtype(dtype)
        if tie_weights and hidden_size != embedding_size:
            raise ValueError("tie_weights needs hidden_size == embedding_size")
        rng = np.random.default_rng(seed)
        V, E, H = vocab_size, embedding_size, hidden_size
        p: dict[str, np.ndarray] = {}
        if init_scale is None:
            p["embedding.weight"] = rng.standard_normal((V, E)).astype(self.dtype)  # nn.Embedding default
        else:
            p["embedding.weight"] = rng.uniform(-init_scale, init_scale, (V, E)).astype(self.dtype)
        for k in range(num_layers):
            w = init_layer(self.cell, E if k == 0 else H, H, rng, self.dtype, init_scale)
            for key, a in zip(_LAYER_KEYS, w, strict=True):
                p[f"rnns.{k}.{key}"] = a
        kd = 1.0 / np.sqrt(H) if init_scale is None else init_scale  # nn.Linear default: U(±1/sqrt(in))
        if tie_weights:
            p["output.weight"] = p["embedding.weight"]  # one array, not a copy
        else:
            p["output.weight"] = rng.uniform(-kd, kd, (V, H)).astype(self.dtype)
        p["output.bias"] = rng.uniform(-kd, kd, V).astype(self.dtype)
        self.params = p

    # ------------------------------------------------------------------------------------------------
    # parameters

    def layer_weights(self, k: int) -> LayerWeights:
        """Layer k's arrays (views into :attr:`params`, so in-place updates are seen by both)."""
        return LayerWeights(*(self.params[f"rnns.{k}.{key}"] for key in _LAYER_KEYS))

    def unique_names(self) -> list[str]:
        """Parameter names with tied aliases dropped (``output.weight`` when tied)."""
        return [n for n in self.params if not (self.tie_weights and n == "output.weight")]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters under the PyTorch LM's keys (tied: one array under both keys)."""
        sd = {n: a.copy() for n, a in self.params.items()}
        if self.tie_weights:
            sd["output.weight"] = sd["embedding.weight"]
        return sd

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Copy arrays (or torch tensors) in; keys and shapes must match exactly."""
        missing = set(self.params) - set(state_dict)
        unexpected = set(state_dict) - set(self.params)
        if missing or unexpected:
            raise KeyError(f"state_dict mismatch: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
        new = {}
        for name, ref in self.params.items():
            a = _to_numpy(state_dict[name]).astype(self.dtype, copy=True)
            if a.shape != ref.shape:
                raise ValueError(f"{name}: shape {a.shape} != expected {ref.shape}")
            new[name] = a
        if self.tie_weights:
            if not np.array_equal(new["output.weight"], new["embedding.weight"]):
                raise ValueError("model is tied but output.weight != embedding.weight in the state_dict")
            new["output.weight"] = new["embedding.weight"]
        self.params = new

    @classmethod
    def from_state_dict(
        cls,
        cell: str,
        state_dict: Mapping[str, Any],
        tie_weights: bool | None = None,
        dtype: Any = np.float64,
    ) -> NumpyLanguageModel:
        """Build a model whose sizes are read off a (torch or NumPy) state_dict, then load it.

        tie_weights=None detects tying from output.weight and embedding.weight sharing storage.
        """
        V, E = _to_numpy(state_dict["embedding.weight"]).shape
        L = 0
        while f"rnns.{L}.weight_hh_l0" in state_dict:
            L += 1
        if L == 0:
            raise KeyError("no rnns.0.weight_hh_l0 in the state_dict")
        GH, H = _to_numpy(state_dict["rnns.0.weight_hh_l0"]).shape
        if GH != num_gates(cell) * H:
            raise ValueError(f"weight_hh has {GH} rows: not a {cell} layer of hidden size {H}")
        if tie_weights is None:
            tie_weights = _same_storage(state_dict["output.weight"], state_dict["embedding.weight"])
        model = cls(cell, V, E, H, L, tie_weights=tie_weights, dtype=dtype)
        model.load_state_dict(state_dict)
        return model

    # ------------------------------------------------------------------------------------------------
    # state

    def init_state(self, batch: int) -> list:
        """Zero state: L arrays (B, H), or L tuples (h, c) for lstm."""
        z = [np.zeros((batch, self.hidden_size), self.dtype) for _ in range(self.num_layers)]
        return [(h, np.zeros_like(h)) for h in z] if self.cell == "lstm" else z

    def _internal(self, state, batch: int) -> list[tuple]:
        if state is None:
            state = self.init_state(batch)
        if self.cell == "lstm":
            return [(np.asarray(h, self.dtype), np.asarray(c, self.dtype)) for h, c in state]
        return [(np.asarray(h, self.dtype),) for h in state]

    def _public(self, state: list[tuple]) -> list:
        return [tuple(s) if self.cell == "lstm" else s[0] for s in state]

    # ------------------------------------------------------------------------------------------------
    # forward / loss / backward

    def _forward(self, x: np.ndarray, state):
        """x (T, B) int -> logits (T, B, V), internal final state, cache for the backward."""
        x = np.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"x must be (T, B) token ids, got shape {x.shape}")
        inp = self.params["embedding.weight"][x]  # (T, B, E)
        new_state, caches, top = [], [], inp
        for k, s in enumerate(self._internal(state, x.shape[1])):
            top, s_new, cache = layer_forward(self.cell, top, s, self.layer_weights(k))
            new_state.append(s_new)
            caches.append(cache)
        logits = top @ self.params["output.weight"].T + self.params["output.bias"]
        return logits, new_state, (x, caches, top)

    def forward(self, x: np.ndarray, state=None):
        """x (T, B) int, state (None = zeros) -> logits (T, B, V), new state."""
        logits, new_state, _ = self._forward(x, state)
        return logits, self._public(new_state)

    __call__ = forward

    def step(self, token_ids: np.ndarray, state=None):
        """One token per sequence, for generation: token_ids (B,) -> logits (B, V), new state."""
        logits, state = self.forward(np.asarray(token_ids)[None], state)
        return logits[0], state

    def loss(self, x: np.ndarray, y: np.ndarray, state=None, ignore_index: int = -100):
        """x, y (T, B) int -> (mean cross-entropy over non-ignored positions, new state)."""
        logits, new_state = self.forward(x, state)
        return cross_entropy(logits, np.asarray(y), ignore_index)[0], new_state

    def loss_and_grads(
        self,
        x: np.ndarray,
        y: np.ndarray,
        state=None,
        bptt_truncate: int | None = None,
        ignore_index: int = -100,
    ):
        """Loss, gradients of every parameter (same keys as :attr:`params`) and the new state.

        bptt_truncate=None: full BPTT over the T steps. bptt_truncate=k: the loss at output step t sends
        gradient back through steps t..max(0, t-k) of every layer only (the states before are constants),
        as in the WildML tutorial; k >= T-1 is full BPTT. The initial ``state`` is always a constant.
        With tied weights both names map to one gradient array holding the sum of both uses.
        """
        logits, new_state, (x, caches, top) = self._forward(x, state)
        loss, dlogits = cross_entropy(logits, np.asarray(y), ignore_index)
        p = self.params
        grads = {n: np.zeros_like(a) for n, a in p.items()}
        if self.tie_weights:
            grads["output.weight"] = grads["embedding.weight"]
        V, H = self.vocab_size, self.hidden_size
        grads["output.weight"] += dlogits.reshape(-1, V).T @ top.reshape(-1, H)
        grads["output.bias"] += dlogits.reshape(-1, V).sum(axis=0)
        dtop = dlogits @ p["output.weight"]  # (T, B, H)

        weights = [self.layer_weights(k) for k in range(self.num_layers)]
        # The layer gradients are views into `grads`, so the layer backward sums straight into it.
        lgrads = [LayerWeights(*(grads[f"rnns.{k}.{key}"] for key in _LAYER_KEYS))
                  for k in range(len(weights))]
        T = x.shape[0]
        if bptt_truncate is not None and bptt_truncate < 0:
            raise ValueError("bptt_truncate must be >= 0 (or None for full BPTT)")
        if bptt_truncate is None or bptt_truncate >= T - 1:
            spans = [(0, T, dtop)]  # one pass over everything
        else:
            # One window per output step t: steps s..t with gradient only entering at t.
            spans = []
            for t in range(T):
                s = max(0, t - bptt_truncate)
                d = np.zeros((t - s + 1,) + dtop.shape[1:], dtop.dtype)
                d[-1] = dtop[t]
                spans.append((s, t + 1, d))
        for s, e, d in spans:
            for k in range(self.num_layers - 1, -1, -1):
                # Full BPTT inside the window; the window itself is the truncation, and it is the same
                # window in every layer (what torch gives when the state entering step s is detached).
                d, _, _ = layer_backward(self.cell, caches[k][s:e], d, weights[k], lgrads[k])
            np.add.at(grads["embedding.weight"], x[s:e], d)  # a token used twice gets both gradients
        return loss, grads, self._public(new_state)

    def sgd_step(self, grads: Mapping[str, np.ndarray], lr: float, clip: float | None = None) -> None:
        """p -= lr * g in place, each shared (tied) array once; optional elementwise clip (min-char-rnn)."""
        for n in self.unique_names():  # a tied array updated under both names would take two steps
            g = grads[n] if clip is None else np.clip(grads[n], -clip, clip)
            self.params[n] -= lr * g


def train_sgd(
    model: NumpyLanguageModel,
    x: np.ndarray,
    y: np.ndarray,
    *,
    lr: float = 0.1,
    steps: int = 100,
    bptt_truncate: int | None = None,
    clip: float | None = None,
    check_every: int = 10,
) -> list[float]:
    """Plain SGD on one batch (x, y) (T, B) from a zero state, returning the loss before each step.

    As in the WildML tutorial, every ``check_every`` steps the learning rate is halved if the loss went
    up since the last check.
    """
    losses: list[float] = []
    last = np.inf
    for i in range(steps):
        loss, grads, _ = model.loss_and_grads(x, y, None, bptt_truncate=bptt_truncate)
        losses.append(loss)
        if check_every and i % check_every == 0:
            if loss > last:
                lr *= 0.5
            last = loss
        model.sgd_step(grads, lr, clip)
    return losses

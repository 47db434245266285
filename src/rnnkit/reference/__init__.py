"""rnnkit.reference: a from-scratch NumPy reference of the RNN, GRU and LSTM language model.

This is the readable oracle for the fast PyTorch path (in the spirit of karpathy's min-char-rnn and
the WildML RNN tutorial): plain NumPy, float64 by default, every backward written out by hand, and a
finite-difference gradient check. Weights use torch.nn's layout and the PyTorch LM's state_dict keys,
so they copy both ways and the two implementations can be compared to ~1e-7.

Notation: x input (B, I), h previous hidden state (B, H), sigma the logistic sigmoid, * elementwise.
Each layer has ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih`` and ``bias_hh`` (G*H,), the
G gate blocks stacked in the order below (as torch.nn.RNN / GRU / LSTM).

RNN (G = 1; torch.nn.RNN, nonlinearity tanh or relu -- cells "rnn"/"rnn_tanh", "rnn_relu")::

    h' = tanh(W_ih x + b_ih + W_hh h + b_hh)

GRU (G = 3, order r, z, n; torch.nn.GRU -- cell "gru")::

    r  = sigma(W_ir x + b_ir + W_hr h + b_hr)         reset gate
    z  = sigma(W_iz x + b_iz + W_hz h + b_hz)         update gate
    n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))    candidate (r scales the h-side, bias included)
    h' = (1 - z) * n + z * h

LSTM (G = 4, order i, f, g, o; torch.nn.LSTM -- cell "lstm"), state (h, c)::

    i  = sigma(W_ii x + b_ii + W_hi h + b_hi)         input gate
    f  = sigma(W_if x + b_if + W_hf h + b_hf)         forget gate
    g  = tanh(W_ig x + b_ig + W_hg h + b_hg)          candidate cell
    o  = sigma(W_io x + b_io + W_ho h + b_ho)         output gate
    c' = f * c + i * g
    h' = o * tanh(c')

Language model (:class:`NumpyLanguageModel`), inputs time-major x, y (T, B) int::

    e_t = embedding.weight[x_t];  h_t = layers(e_t, h_{t-1});  logits_t = h_t output.weight^T + output.bias
    loss = mean over y_t != ignore_index of -log softmax(logits_t)[y_t]

Backward: :func:`layer_backward` / :meth:`NumpyLanguageModel.loss_and_grads` do full BPTT, or with
``bptt_truncate=k`` the WildML truncated BPTT (the loss at step t sends gradient back through steps
t..t-k only). :func:`gradcheck.run` (``rnnkit gradcheck --cell lstm``) checks every parameter's gradient
against centred finite differences.

Example::

    from rnnkit.reference import NumpyLanguageModel
    m = NumpyLanguageModel("lstm", vocab_size=10, embedding_size=8, hidden_size=16, num_layers=2)
    loss, grads, state = m.loss_and_grads(x, y, m.init_state(x.shape[1]), bptt_truncate=None)
    m.sgd_step(grads, lr=0.5)
    torch_lm.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})

As a backend (imported on first use: they need torch): :func:`train_numpy` (``rnnkit train lm
--backend numpy``, in :mod:`rnnkit.reference.train`) and :func:`load_numpy` (``rnnkit evaluate|generate DIR
--backend numpy``, in :mod:`rnnkit.reference.backend`).
"""

from .cells import (
    CELLS,
    LayerWeights,
    canonical_cell,
    cell_step,
    cell_step_backward,
    gru_step,
    gru_step_backward,
    init_layer,
    layer_backward,
    layer_forward,
    lstm_step,
    lstm_step_backward,
    num_gates,
    rnn_step,
    rnn_step_backward,
    sigmoid,
)
from .gradcheck import gradcheck, run
from .lm import NumpyLanguageModel, cross_entropy, train_sgd

__all__ = [
    "CELLS",
    "LayerWeights",
    "NumpyLanguageModel",
    "canonical_cell",
    "cell_step",
    "cell_step_backward",
    "cross_entropy",
    "gradcheck",
    "gru_step",
    "gru_step_backward",
    "init_layer",
    "layer_backward",
    "layer_forward",
    "lstm_step",
    "load_numpy",
    "lstm_step_backward",
    "num_gates",
    "rnn_step",
    "rnn_step_backward",
    "run",
    "sigmoid",
    "train_numpy",
    "train_sgd",
]

_LAZY = {"train_numpy": "rnnkit.reference.train", "load_numpy": "rnnkit.reference.backend"}


def __getattr__(name: str):
    """``train_numpy`` / ``load_numpy``, imported on first use (they need torch and :mod:`rnnkit.api`)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

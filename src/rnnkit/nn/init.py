"""Keras' default initial weights for torch.nn layers (``model.init: keras`` of the classifier).

PyTorch starts every recurrent and linear weight and bias uniform in +-1/sqrt(fan_in) (an LSTM of 128 units:
+-0.088, its forget gate biased nowhere). Keras 3 starts a recurrent layer's input kernel Glorot-uniform, its
recurrent kernel orthogonal, its biases at zero and, for an LSTM, the forget gate's bias at 1
(``unit_forget_bias``); a Dense layer Glorot-uniform with a zero bias. Seed 003's Keras models train from
those; :func:`keras_init_` gives a torch module the same start, so a comparison with them differs in the
training code, not the draw of the first weights' scale.
"""

from __future__ import annotations

import torch
from torch import nn

INITS = ("torch", "keras")


@torch.no_grad()
def keras_init_(module: nn.Module) -> None:
    """Re-draw, in place, every recurrent (nn.RNN/GRU/LSTM) and linear layer inside ``module`` as Keras' defaults
    would; embeddings and everything else are left as they are."""
    for layer in module.modules():
        if isinstance(layer, nn.RNNBase):
            _keras_recurrent(layer)
        elif isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def _keras_recurrent(layer: nn.RNNBase) -> None:
    """torch keeps a gate-stacked (gates x H, I) matrix where Keras keeps its transpose (I, gates x H): the same
    fans for Glorot, and an orthogonal (gates x H, H) matrix is an orthogonal (H, gates x H) one transposed. torch
    has two bias vectors (input and recurrent) where Keras has one: their sum is Keras' bias, so the forget gate's
    1 goes in one of them."""
    hidden = layer.hidden_size
    for name, param in layer.named_parameters():
        if name.startswith("weight_ih"):
            nn.init.xavier_uniform_(param)
        elif name.startswith("weight_hh"):
            nn.init.orthogonal_(param)
        elif name.startswith("bias"):
            nn.init.zeros_(param)
            if layer.mode == "LSTM" and name.startswith("bias_ih"):
                param[hidden:2 * hidden] = 1.0  # torch's gate order i, f, g, o: the second block is the forget gate

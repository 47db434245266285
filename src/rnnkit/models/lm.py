"""Recurrent language model: embedding -> stacked RNN/GRU/LSTM layers -> softmax over the vocabulary."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rnnkit.config import ModelConfig
from rnnkit.nn.dropout import embedding_dropout, sequence_dropout
from rnnkit.nn.rnn import State, make_layer, run_layer


@dataclass
class LMOutput:
    """logits: (T, B, V); state: one entry per layer; last_hidden / last_dropped: (T, B, H_last)."""

    logits: torch.Tensor
    state: list[State]
    last_hidden: torch.Tensor
    last_dropped: torch.Tensor


class RNNLanguageModel(nn.Module):
    """Word/char/subword LM (Mikolov 2010; Zaremba et al. 2014; Merity et al. 2017 options).

    Parameter names: ``embedding.weight``, ``rnns.{k}.weight_ih_l0`` ..., ``decoder.weight/bias``.
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        self.cfg = cfg
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, cfg.embedding_size)
        sizes = [cfg.hidden_size] * cfg.layers
        if cfg.tie_weights:
            sizes[-1] = cfg.embedding_size  # the softmax shares the embedding matrix (Press & Wolf 2017)
        inputs = [cfg.embedding_size] + sizes[:-1]
        self.rnns = nn.ModuleList(make_layer(cfg.cell, i, h) for i, h in zip(inputs, sizes, strict=True))
        self.decoder = nn.Linear(sizes[-1], vocab_size)
        self._init_weights()
        if cfg.tie_weights:
            self.decoder.weight = self.embedding.weight

    def vocab_parameters(self) -> dict[str, str]:
        """Parameters whose rows are indexed by the vocabulary (weight transfer maps them by token)."""
        return {"embedding.weight": "vocab", "decoder.weight": "vocab", "decoder.bias": "vocab"}

    def _init_weights(self) -> None:
        r = self.cfg.init_range
        if r > 0:  # Zaremba et al.: every parameter uniform in [-r, r]
            for p in self.parameters():
                nn.init.uniform_(p, -r, r)
            return
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, inputs: torch.Tensor, state: list[State] | None = None) -> LMOutput:
        """inputs: (T, B) ids; state: None (zeros) or the previous batch's state."""
        cfg, training = self.cfg, self.training
        x = embedding_dropout(self.embedding, inputs, cfg.word_dropout, training)
        x = sequence_dropout(x, cfg.embedding_dropout, training, cfg.locked_dropout)
        new_state = []
        for k, layer in enumerate(self.rnns):
            x, s = run_layer(layer, x, None if state is None else state[k], cfg.weight_drop, training)
            new_state.append(s)
            if k < len(self.rnns) - 1:
                x = sequence_dropout(x, cfg.layer_dropout, training, cfg.locked_dropout)
        dropped = sequence_dropout(x, cfg.dropout, training, cfg.locked_dropout)
        return LMOutput(self.decoder(dropped), new_state, x, dropped)

    def init_state(self, batch: int, device: torch.device | None = None) -> list[State]:
        """Zero state for ``batch`` sequences."""
        states = []
        for layer in self.rnns:
            h = torch.zeros(1, batch, layer.hidden_size, device=device)
            states.append((h, h.clone()) if isinstance(layer, nn.LSTM) else h)
        return states

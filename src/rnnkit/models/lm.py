"""Recurrent language model: embedding -> stacked RNN/GRU/LSTM layers -> softmax over the vocabulary.

The softmax is ``model.softmax``: ``full`` (one linear layer over every word) or ``adaptive`` (Grave et al.
2017): :mod:`rnnkit.nn.softmax`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rnnkit.config import ModelConfig
from rnnkit.errors import RnnkitError
from rnnkit.nn.dropout import embedding_dropout, sequence_dropout
from rnnkit.nn.rnn import State
from rnnkit.nn.softmax import AdaptiveSoftmax, FullSoftmax, make_softmax, output_parameters
from rnnkit.nn.softmax import check_softmax as check_output_layer
from rnnkit.nn.stack import make_stack, run_stack, zero_state


def check_softmax(cfg: ModelConfig, vocab_size: int | None) -> None:
    """What ``model.softmax`` and its keys must say (``vocab_size`` None: not known yet, checked later)."""
    if cfg.softmax == "adaptive" and cfg.tie_weights:
        raise RnnkitError("model.tie_weights shares the embedding with a full softmax's output layer: the "
                          "adaptive softmax has none (set model.softmax full or model.tie_weights false)")
    check_output_layer(cfg, cfg.hidden_size, vocab_size)


@dataclass
class LMOutput:
    """state: one entry per layer; last_hidden / last_dropped: (T, B, H_last); ``softmax`` scores them."""

    state: list[State]
    last_hidden: torch.Tensor
    last_dropped: torch.Tensor
    softmax: FullSoftmax | AdaptiveSoftmax

    @property
    def logits(self) -> torch.Tensor:
        """(T, B, V) scores whose softmax is the model's next-token distribution (computed on each access)."""
        return self.softmax.scores(self.last_dropped)

    def loss_sum(self, targets: torch.Tensor) -> torch.Tensor:
        """Summed cross-entropy of ``targets`` (T, B), padding skipped."""
        return self.softmax.loss_sum(self.last_dropped, targets)


class RNNLanguageModel(nn.Module):
    """Word/char/subword LM (Mikolov 2010; Zaremba et al. 2014; Merity et al. 2017 options).

    Parameter names: ``embedding.weight``, ``rnns.{k}.weight_ih_l0`` ..., ``output.weight/bias`` (full softmax)
    or ``output.head.*``, ``output.tail.*`` (adaptive).
    """

    #: old name -> name: weights saved before issue 13 named the output layer ``decoder``
    legacy_weight_names = {"decoder.weight": "output.weight", "decoder.bias": "output.bias"}

    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        self.cfg = cfg
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, cfg.embedding_size)
        sizes = [cfg.hidden_size] * cfg.layers
        if cfg.tie_weights:
            sizes[-1] = cfg.embedding_size  # the softmax shares the embedding matrix (Press & Wolf 2017)
        self.rnns = make_stack(cfg.cell, cfg.embedding_size, sizes)
        self.output = make_softmax(cfg, sizes[-1], vocab_size)
        self._init_weights()
        if cfg.tie_weights:
            self.output.weight = self.embedding.weight

    def vocab_parameters(self) -> dict[str, str]:
        """Parameters whose rows are indexed by the vocabulary (weight transfer maps them by token)."""
        if self.cfg.softmax == "adaptive":
            return {"embedding.weight": "vocab"}
        return {"embedding.weight": "vocab", "output.weight": "vocab", "output.bias": "vocab"}

    def vocab_order_parameters(self) -> dict[str, str]:
        """Parameters whose meaning follows the vocabulary's whole order (the adaptive softmax's clusters are
        id ranges): weight transfer copies them only from a model of the very same vocabulary."""
        return output_parameters(self.output, "output", "vocab")

    def _init_weights(self) -> None:
        r = self.cfg.init_range
        if r > 0:  # Zaremba et al.: every parameter uniform in [-r, r]
            for p in self.parameters():
                nn.init.uniform_(p, -r, r)
            return
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        if isinstance(self.output, FullSoftmax):  # the adaptive softmax keeps torch's Linear initialisation
            nn.init.uniform_(self.output.weight, -0.1, 0.1)
            nn.init.zeros_(self.output.bias)

    def forward(self, inputs: torch.Tensor, state: list[State] | None = None) -> LMOutput:
        """inputs: (T, B) ids; state: None (zeros) or the previous batch's state. The output's ``logits``
        and ``loss_sum`` run the softmax."""
        cfg, training = self.cfg, self.training
        x = embedding_dropout(self.embedding, inputs, cfg.word_dropout, training)
        x = sequence_dropout(x, cfg.embedding_dropout, training, cfg.locked_dropout)
        x, new_state = run_stack(self.rnns, x, state=state, dropout=cfg.layer_dropout, locked=cfg.locked_dropout,
                                 weight_drop=cfg.weight_drop, training=training)
        dropped = sequence_dropout(x, cfg.dropout, training, cfg.locked_dropout)
        return LMOutput(new_state, x, dropped, self.output)

    def init_state(self, batch: int, device: torch.device | None = None) -> list[State]:
        """Zero state for ``batch`` sequences."""
        return zero_state(self.rnns, batch, device)

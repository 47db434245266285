"""Recurrent language model: embedding -> stacked RNN/GRU/LSTM layers -> softmax over the vocabulary.

The softmax is ``model.softmax``: ``full`` (one linear layer over every word) or ``adaptive`` (Grave et al.
2017, :class:`torch.nn.AdaptiveLogSoftmaxWithLoss`): the frequent words and one entry per cluster of rarer
words form a small head; a word of a cluster costs the head plus its cluster's smaller layer. Both are
proper distributions: perplexity is exact either way. The clusters are id ranges, and the vocabulary
(:meth:`rnnkit.data.vocab.Vocab.build`) orders tokens by frequency, so the head holds the frequent words.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.config import ModelConfig
from rnnkit.data.lm import IGNORE_INDEX
from rnnkit.errors import RnnkitError
from rnnkit.nn.dropout import embedding_dropout, sequence_dropout
from rnnkit.nn.rnn import State
from rnnkit.nn.stack import make_stack, run_stack, zero_state

#: the values of model.softmax
SOFTMAXES = ("full", "adaptive")


class FullSoftmax(nn.Linear):
    """The softmax over the whole vocabulary: logits = h W^T + b (parameters ``weight``, ``bias``)."""

    def scores(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., H) -> logits (..., V)."""
        return self(hidden)

    def loss_sum(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Summed cross-entropy (float32) of ``targets`` (padding, IGNORE_INDEX, skipped)."""
        logits = self(hidden)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1),
                               ignore_index=IGNORE_INDEX, reduction="sum")


class AdaptiveSoftmax(nn.AdaptiveLogSoftmaxWithLoss):
    """The adaptive softmax (parameters ``head.weight``, ``head.bias``, ``tail.{i}.{0,1}.weight``).

    The training loss computes only the head and, for each cluster, the rows whose target lies in it;
    ``scores`` gives the full log-probabilities, which sampling and search take as logits (their softmax
    is the model's distribution)."""

    def scores(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., H) -> log-probabilities (..., V)."""
        return self.log_prob(hidden.reshape(-1, hidden.size(-1))).reshape(*hidden.shape[:-1], self.n_classes)

    def loss_sum(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Summed negative log-likelihood (float32) of ``targets`` (padding, IGNORE_INDEX, skipped)."""
        hidden, targets = hidden.reshape(-1, hidden.size(-1)), targets.reshape(-1)
        scored = targets != IGNORE_INDEX
        if not bool(scored.all()):
            hidden, targets = hidden[scored], targets[scored]
        loss = -self(hidden, targets).output.float().sum()
        if torch.is_grad_enabled():  # a cluster no target fell in gets a zero gradient, not none: data-parallel
            loss = loss + 0.0 * sum(p.sum() for p in self.tail.parameters())  # ranks reduce every parameter
        return loss


def check_softmax(cfg: ModelConfig, vocab_size: int | None) -> None:
    """What ``model.softmax`` and its keys must say (``vocab_size`` None: not known yet, checked later)."""
    if cfg.softmax not in SOFTMAXES:
        raise RnnkitError(f"unknown model.softmax '{cfg.softmax}' ({' | '.join(SOFTMAXES)})")
    cutoffs = cfg.adaptive_cutoffs
    if cfg.softmax == "full":
        if cutoffs:
            raise RnnkitError(f"model.adaptive_cutoffs {cutoffs} needs model.softmax adaptive (it is full)")
        return
    if cfg.tie_weights:
        raise RnnkitError("model.tie_weights shares the embedding with a full softmax's output layer: the "
                          "adaptive softmax has none (set model.softmax full or model.tie_weights false)")
    if not cutoffs:
        raise RnnkitError("model.softmax adaptive needs model.adaptive_cutoffs: the increasing ids where the "
                          "head's words end and each cluster of rarer words ends, e.g. [2000, 10000]")
    if cutoffs[0] <= 0 or any(b <= a for a, b in zip(cutoffs, cutoffs[1:], strict=False)):
        raise RnnkitError(f"model.adaptive_cutoffs {cutoffs} must be positive and increasing")
    if vocab_size is not None and cutoffs[-1] >= vocab_size:
        raise RnnkitError(f"model.adaptive_cutoffs {cutoffs} must each be below the vocabulary size {vocab_size:,} "
                          "(the last cluster holds the ids from the last cutoff up to it)")
    last_hidden = cfg.embedding_size if cfg.tie_weights else cfg.hidden_size
    smallest = int(last_hidden // cfg.adaptive_div ** len(cutoffs))
    if smallest < 1:
        raise RnnkitError(f"model.adaptive_div {cfg.adaptive_div} leaves the last of {len(cutoffs)} clusters "
                          f"{smallest} units ({last_hidden} // {cfg.adaptive_div}^{len(cutoffs)}): lower it")


def make_softmax(cfg: ModelConfig, hidden_size: int, vocab_size: int) -> FullSoftmax | AdaptiveSoftmax:
    """The output layer ``cfg.softmax`` names, checked against the vocabulary."""
    check_softmax(cfg, vocab_size)
    if cfg.softmax == "adaptive":
        return AdaptiveSoftmax(hidden_size, vocab_size, list(cfg.adaptive_cutoffs), div_value=cfg.adaptive_div,
                               head_bias=True)
    return FullSoftmax(hidden_size, vocab_size)


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
        if self.cfg.softmax != "adaptive":
            return {}
        return {name: "vocab" for name, _ in self.output.named_parameters(prefix="output")}

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

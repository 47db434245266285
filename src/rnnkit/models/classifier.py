"""Sequence classifier: input (token embedding, or numeric features) -> encoder (a recurrent stack packed by
length, or ``bag``: no recurrence) -> pooling over the valid steps -> dropout + MLP head -> class logits.

Parameter names are stable across tasks: ``encoder.embedding.weight`` (text) or ``encoder.input.*``
(numeric features through a linear layer), ``encoder.rnns.{k}.*`` (the LM's ``rnns.{k}.*`` under the
prefix ``encoder``: ``--init-from LM --init-prefix encoder``), ``pool.*`` (attention pooling) and ``head.*``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.nn.bag import bag_mean
from rnnkit.nn.dropout import sequence_dropout
from rnnkit.nn.encoder import merge_directions
from rnnkit.nn.stack import make_stack, run_stack
from rnnkit.tasks.classify_config import ENCODERS, POOLINGS, ClassifyModel


def check_model_config(cfg: ClassifyModel, numeric: bool) -> None:
    """ValueError naming the key for a combination that cannot be built."""
    if cfg.encoder not in ENCODERS:
        raise ValueError(f"model.encoder: unknown encoder '{cfg.encoder}' ({' | '.join(ENCODERS)})")
    if cfg.pooling not in POOLINGS:
        raise ValueError(f"model.pooling: unknown pooling '{cfg.pooling}' ({' | '.join(POOLINGS)})")
    if cfg.encoder == "bag" and cfg.pooling == "last":
        raise ValueError("model.pooling: a bag of embeddings has no last state: mean, max or attention")
    if not numeric and cfg.embedding_size < 1:
        raise ValueError("model.embedding_size: a text classifier embeds its tokens: at least 1")


class SequenceEncoder(nn.Module):
    """ids (T, B) or features (T, B, F) -> step outputs (T, B, D) and, for a recurrent encoder, the top
    layer's final hidden state (B, D) at each sequence's last valid step (both directions side by side)."""

    def __init__(self, cfg: ClassifyModel, vocab_size: int = 0, features: int = 0):
        super().__init__()
        self.cfg = cfg
        if features:
            self.input = nn.Linear(features, cfg.embedding_size) if cfg.embedding_size else None
            width = cfg.embedding_size or features
        else:
            self.embedding = nn.Embedding(vocab_size, cfg.embedding_size, padding_idx=0)
            width = cfg.embedding_size
        directions = 2 if cfg.bidirectional else 1
        if cfg.encoder == "bag":
            self.output_size = width
        else:
            self.rnns = make_stack(cfg.encoder, width, [cfg.hidden_size] * cfg.layers, cfg.bidirectional)
            self.output_size = cfg.hidden_size * directions

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if inputs.dtype == torch.long:
            x = self.embedding(inputs)
        else:
            x = self.input(inputs) if self.input is not None else inputs
        x = sequence_dropout(x, self.cfg.embedding_dropout, self.training, False)
        if self.cfg.encoder == "bag":
            return x, None
        # a batch with no padding (every MNIST image: 28 rows) runs unpacked, on the fused kernel
        full = int(lengths.min()) == x.size(0)
        outputs, final = run_stack(self.rnns, x, None if full else lengths, dropout=self.cfg.layer_dropout,
                                   training=self.training)
        top = final[-1][0] if isinstance(final[-1], tuple) else final[-1]  # an LSTM's (h, c): h
        return outputs, merge_directions(top)


class AttentionPooling(nn.Module):
    """A weighted mean of the steps, weights softmax(v^T tanh(W o_t)) over the valid steps (Yang et al. 2016)."""

    def __init__(self, size: int):
        super().__init__()
        self.project = nn.Linear(size, size)
        self.score = nn.Linear(size, 1, bias=False)

    def forward(self, outputs: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """outputs (T, B, D), padding (T, B) True past a length -> (B, D)."""
        scores = self.score(torch.tanh(self.project(outputs))).squeeze(-1)
        weights = torch.softmax(scores.masked_fill(padding, float("-inf")), dim=0)
        return (weights.unsqueeze(-1) * outputs).sum(0)


def pool(kind: str, outputs: torch.Tensor, final: torch.Tensor | None, padding: torch.Tensor,
         lengths: torch.Tensor, attention: AttentionPooling | None) -> torch.Tensor:
    """One vector (B, D) per sequence from its valid steps only: padding never changes a prediction."""
    if kind == "last":
        return final
    if kind == "attention":
        return attention(outputs, padding)
    if kind == "max":
        return outputs.masked_fill(padding.unsqueeze(-1), float("-inf")).max(0).values
    kept = outputs.masked_fill(padding.unsqueeze(-1), 0.0)
    return kept.sum(0) / lengths.unsqueeze(-1).to(outputs.dtype)


class Head(nn.Module):
    """Dropout, then an MLP: [Linear -> ReLU -> dropout ->] Linear to the class logits."""

    def __init__(self, size: int, hidden: int, classes: int, dropout: float):
        super().__init__()
        self.dropout = dropout
        self.hidden = nn.Linear(size, hidden) if hidden else None
        self.output = nn.Linear(hidden or size, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.dropout(x, self.dropout, self.training)
        if self.hidden is not None:
            x = F.dropout(torch.relu(self.hidden(x)), self.dropout, self.training)
        return self.output(x)


class SequenceClassifier(nn.Module):
    """Text (``vocab_size``) or numeric (``features`` per step) sequences -> logits over ``classes``."""

    def __init__(self, cfg: ClassifyModel, classes: int, vocab_size: int = 0, features: int = 0):
        super().__init__()
        check_model_config(cfg, numeric=bool(features))
        self.cfg, self.numeric = cfg, bool(features)
        self.encoder = SequenceEncoder(cfg, vocab_size, features)
        self.pool = AttentionPooling(self.encoder.output_size) if cfg.pooling == "attention" else None
        self.head = Head(self.encoder.output_size, cfg.head_hidden, classes, cfg.dropout)

    def _bag_of_means(self) -> bool:
        cfg = self.cfg
        return (cfg.encoder == "bag" and cfg.pooling == "mean" and not self.numeric
                and not (self.training and cfg.embedding_dropout))

    def vocab_parameters(self) -> dict[str, str]:
        """The embedding's rows are vocabulary tokens (weight transfer maps them by token)."""
        return {} if self.numeric else {"encoder.embedding.weight": "vocab"}

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """inputs (T, B) ids or (T, B, F) features, lengths (B,) of at least 1 -> logits (B, classes)."""
        if self._bag_of_means():  # the seed's bag model, without its (T, B, D) step embeddings
            return self.head(bag_mean(inputs, lengths, self.encoder.embedding.weight))
        outputs, final = self.encoder(inputs, lengths)
        steps = torch.arange(inputs.size(0), device=inputs.device).unsqueeze(1)
        padding = steps >= lengths.to(inputs.device).unsqueeze(0)  # (T, B)
        return self.head(pool(self.cfg.pooling, outputs, final, padding, lengths.to(outputs.device), self.pool))

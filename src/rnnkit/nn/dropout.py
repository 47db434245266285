"""Dropout variants for recurrent nets (Gal & Ghahramani 2016; Merity et al. 2017, AWD-LSTM)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def locked_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout with one mask per sequence, shared over time.

    x: (T, B, H) -> (T, B, H)
    """
    if not training or p == 0:
        return x
    mask = x.new_empty(1, x.size(1), x.size(2)).bernoulli_(1 - p) / (1 - p)
    return x * mask


def sequence_dropout(x: torch.Tensor, p: float, training: bool, locked: bool) -> torch.Tensor:
    """Standard (a fresh mask per element) or locked dropout on a (T, B, H) tensor."""
    return locked_dropout(x, p, training) if locked else F.dropout(x, p, training)


def embedding_dropout(embedding: nn.Embedding, ids: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Drop whole words: zero random rows of the embedding matrix for this batch (AWD-LSTM).

    ids: (T, B) -> (T, B, E)
    """
    if not training or p == 0:
        return embedding(ids)
    weight = embedding.weight
    mask = weight.new_empty(weight.size(0), 1).bernoulli_(1 - p) / (1 - p)
    return F.embedding(ids, weight * mask, embedding.padding_idx)

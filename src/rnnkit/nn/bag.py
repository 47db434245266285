"""The mean of each sequence's token embeddings over its valid tokens: a bag of embeddings with global average
pooling (seed 003's IMDB model), without the (T, B, D) tensor of every step's embedding.

On a CPU the gradient is added token by token (``index_add_``): torch's own embedding and embedding-bag
backward passes sort the tokens first, which made them most of the bag model's training step. On a GPU
``index_add_`` adds in no fixed order, so there torch's (repeatable) embedding-bag backward runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class _BagMean(torch.autograd.Function):
    """flat ids (N,), offsets (B,), lengths (B,), weight (V, D) -> the mean embedding of each bag (B, D)."""

    @staticmethod
    def forward(ctx, flat: torch.Tensor, offsets: torch.Tensor, lengths: torch.Tensor,
                weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(flat, lengths)
        ctx.rows, ctx.dtype = weight.size(0), weight.dtype
        return F.embedding_bag(flat, weight, offsets, mode="mean")

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if not ctx.needs_input_grad[3]:
            return None, None, None, None
        flat, lengths = ctx.saved_tensors
        per_token = (grad / lengths.unsqueeze(-1).to(grad.dtype)).repeat_interleave(lengths, 0).to(ctx.dtype)
        weight_grad = per_token.new_zeros(ctx.rows, per_token.size(1)).index_add_(0, flat, per_token)
        return None, None, None, weight_grad


def bag_mean(ids: torch.Tensor, lengths: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """ids (T, B), padded past each of ``lengths`` (B,) (at least 1), embedding ``weight`` (V, D) -> (B, D): the
    mean of each sequence's valid tokens' rows (padding never changes it)."""
    lengths = lengths.to(ids.device)
    valid = torch.arange(ids.size(0), device=ids.device).unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
    flat = ids.t()[valid]  # each sequence's valid tokens, one sequence after the other
    offsets = lengths.cumsum(0) - lengths
    if weight.device.type == "cpu":
        return _BagMean.apply(flat, offsets, lengths, weight)
    return F.embedding_bag(flat, weight, offsets, mode="mean")

"""The mean of each text's token embeddings: a bag of embeddings with global average pooling (seed 003's IMDB
model), without the (T, B, D) tensor of every step's embedding.

A batch is :class:`TokenBags`: each text's tokens with their shares of it (``count / length``), so the mean is
a weighted sum of embedding rows (``F.embedding_bag``, mode ``sum``). A data set's texts become bags of their
*distinct* tokens once (:func:`rnnkit.data.labelled.collate_bags`), 37% fewer rows than IMDB's words; a
padded batch becomes a bag of every valid token (:func:`bags_of_padded`). Either way it is the same mean.

The gradient of the embedding, dW[v] = sum over the entries of token v of share x the text's gradient, is
itself an embedding bag: the texts' gradients (B, D) summed per token, the entries sorted by token (a stable
sort: a fixed order of summation, so it is repeatable on a GPU too, and one code path serves both). On a CPU
torch's own embedding and embedding-bag backward passes were most of the bag model's training step, and
``index_add_`` (a kernel call per row, used here before) took 2.2 ms of an IMDB batch of 512 reviews; this
takes ~0.7 ms (benchmarks/RESULTS.md, "IMDB bag: texts as bags of their distinct tokens").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class TokenBags:
    """B texts as bags of tokens. ids (N,): each text's tokens, text after text (each at most once, or every
    token); shares (N,): each entry's share of its text (its count / the text's length: a text's shares sum
    to 1); offsets (B,): where each text's entries start (ascending, the first 0; every text has one)."""

    ids: torch.Tensor
    shares: torch.Tensor
    offsets: torch.Tensor

    def __len__(self) -> int:
        return len(self.offsets)

    def to(self, device: torch.device) -> TokenBags:
        return TokenBags(self.ids.to(device), self.shares.to(device), self.offsets.to(device))


def bags_of_padded(ids: torch.Tensor, lengths: torch.Tensor) -> TokenBags:
    """ids (T, B), padded past each of ``lengths`` (B,) (at least 1) -> every valid token, share 1 / length."""
    lengths = lengths.to(ids.device)
    valid = torch.arange(ids.size(0), device=ids.device).unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
    shares = (1.0 / lengths.float()).repeat_interleave(lengths)
    return TokenBags(ids.t()[valid], shares, lengths.cumsum(0) - lengths)


class _WeightedBag(torch.autograd.Function):
    """ids (N,), shares (N,), offsets (B,), weight (V, D) -> (B, D): each bag's shares x rows, summed."""

    @staticmethod
    def forward(ctx, ids: torch.Tensor, shares: torch.Tensor, offsets: torch.Tensor,
                weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(ids, shares, offsets)
        ctx.rows = weight.size(0)
        # detached: an embedding bag of a weight that needs a gradient also builds what torch's backward would use
        return F.embedding_bag(ids, weight.detach(), offsets, mode="sum", per_sample_weights=shares.to(weight.dtype))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if not ctx.needs_input_grad[3]:
            return None, None, None, None
        ids, shares, offsets = ctx.saved_tensors
        return None, None, None, gradient_by_token(ids, shares, offsets, grad, ctx.rows)


def gradient_by_token(ids: torch.Tensor, shares: torch.Tensor, offsets: torch.Tensor, grad: torch.Tensor,
                      rows: int) -> torch.Tensor:
    """dW (rows, D) of the bags' sums given their gradient ``grad`` (B, D): row v = sum over the entries of
    token v of share x its bag's gradient, as an embedding bag over ``grad``, one bag per token."""
    sizes = torch.diff(offsets, append=offsets.new_tensor([len(ids)]))
    bag_of_entry = torch.repeat_interleave(torch.arange(len(offsets), device=ids.device), sizes)
    # a stable sort: each token's entries in bag order; 16-bit keys sort fastest (a radix sort)
    key = ids.to(torch.int16) if rows <= torch.iinfo(torch.int16).max + 1 else ids.to(torch.int32)
    order = torch.argsort(key, stable=True)
    per_token = torch.bincount(ids, minlength=rows)
    return F.embedding_bag(bag_of_entry.index_select(0, order), grad, per_token.cumsum(0) - per_token, mode="sum",
                           per_sample_weights=shares.index_select(0, order).to(grad.dtype))


def bag_mean(bags: TokenBags, weight: torch.Tensor) -> torch.Tensor:
    """The mean embedding (B, D) of each bag's tokens, rows of ``weight`` (V, D)."""
    return _WeightedBag.apply(bags.ids, bags.shares, bags.offsets, weight)

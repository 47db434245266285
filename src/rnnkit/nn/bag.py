"""The mean of each text's token embeddings: a bag of embeddings with global average pooling (seed 003's IMDB
model), without the (T, B, D) tensor of every step's embedding.

Texts come as bags of tokens (:class:`rnnkit.data.batching.TokenBags`): each text's tokens with their shares of
it (``count / length``), so the mean is a weighted sum of embedding rows (``F.embedding_bag``, mode ``sum``).

On a CPU the gradient of the embedding, dW[v] = sum over the entries of token v of share x the text's gradient,
is itself an embedding bag: the texts' gradients (B, D) summed per token, the entries sorted by token with a
stable sort, so each token's entries are summed in their input order (repeatable, bit for bit). torch's own
embedding and embedding-bag backward passes, and ``index_add_`` (a kernel call per row, used here before), were
most of the bag model's CPU training step; ``benchmarks/bag_epoch_parts.py --kernels`` clocks this against the
previous ``index_add_`` path (benchmarks/RESULTS.md, "IMDB bag: texts as bags of their distinct tokens").
On other devices torch's own embedding-bag backward runs: this one was never run or measured on a GPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
    token v, in their input order, of share x its bag's gradient, as an embedding bag over ``grad``, one bag per
    token."""
    sizes = torch.diff(offsets, append=offsets.new_tensor([len(ids)]))
    bag_of_entry = torch.repeat_interleave(torch.arange(len(offsets), device=ids.device), sizes)
    # stable: each token's entries stay in input order, so the sums' order is fixed; 16-bit keys sort faster
    key = ids.to(torch.int16) if rows <= torch.iinfo(torch.int16).max + 1 else ids.to(torch.int32)
    order = torch.argsort(key, stable=True)
    per_token = torch.bincount(ids, minlength=rows)
    return F.embedding_bag(bag_of_entry.index_select(0, order), grad, per_token.cumsum(0) - per_token, mode="sum",
                           per_sample_weights=shares.index_select(0, order).to(grad.dtype))


def bag_mean(ids: torch.Tensor, shares: torch.Tensor, offsets: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The mean embedding (B, D) of each bag's tokens, rows of ``weight`` (V, D): bags as
    :class:`rnnkit.data.batching.TokenBags`' ids, shares and offsets."""
    if weight.device.type == "cpu":
        return _WeightedBag.apply(ids, shares, offsets, weight)
    return F.embedding_bag(ids, weight, offsets, mode="sum", per_sample_weights=shares.to(weight.dtype))

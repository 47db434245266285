"""Length-bucketed padded batches for any task whose examples are variable-length sequences.

A task gives each example's length (the sort key, in tokens) and a ``collate(indices) -> batch``
function; :class:`BucketBatches` decides which examples go together and implements the trainer's
protocol: ``plan(epoch) -> list[spec]``, ``batch(spec) -> batch`` (the collate's object, with
``.to(device)``) and ``num_tokens``.

* **Size**: ``unit="sentences"``: ``batch_size`` examples per batch; ``unit="tokens"``: at most
  ``batch_size`` padded tokens (longest length x rows), so the memory a batch needs is bounded.
* **Training order** (``shuffle=True``): shuffle all examples, sort pools of about ``window``
  batches by length, cut each pool into batches, shuffle the batch order (the torchtext
  BucketIterator / JoeyNMT recipe: little padding, still random). It depends only on
  ``(seed, epoch)``, so a resumed run replays the same plan.
* **Evaluation order** (``shuffle=False``): the whole set sorted by length (stable); every batch
  knows its example indices, so outputs go back to input order (:func:`in_input_order`).
* **DDP**: a spec is a *global* batch, the same list on every rank; ``batch(spec)`` returns this
  rank's balanced share (sizes differ by at most one), so every rank takes the same number of steps
  and ``world`` processes together see exactly the batches of one process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

UNITS = ("sentences", "tokens")


def pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Time-major padded ids. seqs: B lists -> ((T, B) LongTensor, lengths (B,)); T = longest (at least 1)."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    width = max(int(lengths.max()) if len(seqs) else 0, 1)
    out = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    flat = torch.tensor([i for s in seqs for i in s], dtype=torch.long)
    out[torch.arange(width) < lengths.unsqueeze(1)] = flat  # row-major fill: row b gets its ids in order
    return out.t().contiguous(), lengths



@dataclass
class TokenBags:
    """B texts as bags of tokens (the bag of means' batch: :func:`rnnkit.nn.bag.bag_mean`). ids (N,): each
    text's tokens, text after text (each at most once, or every token); shares (N,): each entry's share of its
    text (its count / the text's length: a text's shares sum to 1); offsets (B,): where each text's entries start
    (ascending, the first 0; every text has one)."""

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

def in_input_order(indices: Sequence[Sequence[int]], outputs: Sequence[Sequence[Any]]) -> list[Any]:
    """Per-batch outputs put back in example order: ``indices[k][j]`` is the example of ``outputs[k][j]``."""
    total = sum(len(ix) for ix in indices)
    result: list[Any] = [None] * total
    for ix, out in zip(indices, outputs, strict=True):
        if len(ix) != len(out):
            raise ValueError(f"a batch of {len(ix)} examples has {len(out)} outputs")
        for i, value in zip(ix, out, strict=True):
            result[i] = value
    return result


def rows_in_input_order(indices: Sequence[Sequence[int]], outputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """:func:`in_input_order` for per-batch output tensors, one row per example: one tensor of all the rows
    (a classifier's 10,000 validation examples as 10,000 row tensors took most of its scoring time)."""
    rows = torch.cat(list(outputs))
    order = torch.tensor([i for ix in indices for i in ix], dtype=torch.long)
    if len(order) != len(rows):
        raise ValueError(f"{len(order)} examples have {len(rows)} output rows")
    result = torch.empty_like(rows)
    result[order] = rows
    return result


class BucketBatches:
    """Batches of example indices grouped by length; ``collate`` turns one rank's indices into a batch.

    lengths: the length of every example (its cost in padded tokens per row, and the sort key).
    num_tokens: what the task counts as tokens of the whole set (e.g. target tokens), for its report.
    """

    def __init__(self, lengths: Sequence[int], collate: Callable[[list[int]], Any], batch_size: int,
                 unit: str = "sentences", shuffle: bool = True, seed: int = 0, rank: int = 0, world: int = 1,
                 window: int = 100, num_tokens: int | None = None):
        if unit not in UNITS:
            raise ValueError(f"unit must be one of {' | '.join(UNITS)}, got {unit!r}")
        if not lengths:
            raise ValueError("no examples to batch")
        if batch_size < 1 or window < 1:
            raise ValueError(f"batch_size and window must be >= 1, got {batch_size} and {window}")
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is outside a world of {world} processes")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        longest = int(self.lengths.max())
        if unit == "tokens" and batch_size < world * longest:
            raise ValueError(f"a batch of {batch_size} tokens cannot hold {world} row(s) of the longest example "
                             f"({longest} tokens): raise the batch size or limit the length")
        if unit == "sentences" and batch_size < world:
            raise ValueError(f"a batch of {batch_size} sentences cannot give each of {world} processes a row")
        self.collate, self.batch_size, self.unit = collate, batch_size, unit
        self.shuffle, self.seed, self.rank, self.world, self.window = shuffle, seed, rank, world, window
        self.num_tokens = int(self.lengths.sum()) if num_tokens is None else num_tokens

    def __len__(self) -> int:
        """Examples (not batches)."""
        return len(self.lengths)

    def plan(self, epoch: int) -> list[list[int]]:
        """The global batches of ``epoch``, each a list of example indices, shortest first."""
        if not self.shuffle:
            return self._cut(np.argsort(self.lengths, kind="stable"))
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.lengths))
        pool = self.window * self._rows_per_batch()
        batches: list[list[int]] = []
        for start in range(0, len(order), pool):
            chunk = order[start: start + pool]
            batches += self._cut(chunk[np.argsort(self.lengths[chunk], kind="stable")])
        batches = [batches[i] for i in rng.permutation(len(batches))]
        if self.world > 1:  # a pool's short tail batch: every rank needs a row to take part in the step
            batches = [b for b in batches if len(b) >= self.world]
        return batches

    def batch(self, indices: list[int]) -> Any:
        """This rank's share of the global batch ``indices``, collated."""
        if self.world > 1:
            n = len(indices)
            indices = indices[self.rank * n // self.world: (self.rank + 1) * n // self.world]
        return self.collate(list(indices))

    def _rows_per_batch(self) -> int:
        if self.unit == "sentences":
            return self.batch_size
        return max(1, int(self.batch_size / max(float(self.lengths.mean()), 1.0)))

    def _cut(self, sorted_indices: np.ndarray) -> list[list[int]]:
        """Consecutive batches of indices sorted by ascending length."""
        ids = sorted_indices.tolist()
        if self.unit == "sentences":
            return [ids[b: b + self.batch_size] for b in range(0, len(ids), self.batch_size)]
        batches: list[list[int]] = []
        current: list[int] = []
        for i, length in zip(ids, self.lengths[sorted_indices].tolist(), strict=True):
            # ascending lengths: the newest example is the longest of its batch
            if current and (len(current) + 1) * length > self.batch_size:
                batches.append(current)
                current = []
            current.append(i)
        batches.append(current)
        return batches

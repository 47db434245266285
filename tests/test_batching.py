"""Generic length-bucketed batches: sizes, determinism, bucketing, DDP shares, evaluation order, pad."""

from __future__ import annotations

import random

import pytest
import torch

from rnnkit.data.batching import BucketBatches, in_input_order, pad, rows_in_input_order


def lengths_of(n: int, seed: int = 0, longest: int = 30) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(1, longest) for _ in range(n)]


def identity(indices: list[int]) -> list[int]:
    return indices


def batches(lengths: list[int], batch_size: int = 8, **kw) -> BucketBatches:
    return BucketBatches(lengths, identity, batch_size, **kw)


def test_pad_is_time_major_with_lengths() -> None:
    ids, lengths = pad([[5, 6, 7], [8], []], pad_id=0)
    assert ids.tolist() == [[5, 8, 0], [6, 0, 0], [7, 0, 0]]
    assert lengths.tolist() == [3, 1, 0]
    assert ids.dtype == torch.long and ids.is_contiguous()
    assert pad([[]], 9)[0].tolist() == [[9]]  # at least one step


@pytest.mark.parametrize("shuffle", [True, False])
def test_every_example_once_per_epoch(shuffle: bool) -> None:
    lengths = lengths_of(203)
    plan = batches(lengths, shuffle=shuffle).plan(4)
    assert sorted(i for b in plan for i in b) == list(range(203))
    assert all(len(b) <= 8 for b in plan)


def test_plan_depends_only_on_seed_and_epoch() -> None:
    lengths = lengths_of(500)
    a, b = batches(lengths, seed=1), batches(lengths, seed=1)
    assert a.plan(3) == b.plan(3)
    assert a.plan(3) != a.plan(4)
    assert a.plan(3) != batches(lengths, seed=2).plan(3)


def test_buckets_cut_padding() -> None:
    """Sorted pools pad far less than random batches, and the batch order is still shuffled."""
    lengths = lengths_of(2000, longest=50)
    plan = batches(lengths, 16, window=20).plan(0)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in plan)
    assert padded < 1.1 * sum(lengths)
    random_plan = [list(range(k, min(k + 16, 2000))) for k in range(0, 2000, 16)]
    assert padded < 0.75 * sum(len(b) * max(lengths[i] for i in b) for b in random_plan)
    longest = [max(lengths[i] for i in b) for b in plan]
    assert longest != sorted(longest)


def test_token_batches_bound_padded_tokens() -> None:
    lengths = lengths_of(1000, longest=40)
    plan = batches(lengths, 200, unit="tokens").plan(1)
    assert sorted(i for b in plan for i in b) == list(range(1000))
    assert all(len(b) * max(lengths[i] for i in b) <= 200 for b in plan)
    assert sum(len(b) for b in plan) / len(plan) > 6  # batches are filled, not one example each


def test_token_batch_too_small_for_the_longest_example() -> None:
    with pytest.raises(ValueError, match="cannot hold 1 row.*41 tokens"):
        batches([3, 41, 5], 40, unit="tokens")
    with pytest.raises(ValueError, match="cannot hold 2 row"):
        batches([3, 30, 5], 40, unit="tokens", world=2)


def test_evaluation_order_is_sorted_and_recoverable() -> None:
    lengths = lengths_of(50)
    data = batches(lengths, 7, shuffle=False)
    plan = data.plan(0)
    assert plan == data.plan(9)
    flat = [i for b in plan for i in b]
    assert [lengths[i] for i in flat] == sorted(lengths)
    outputs = [[f"out{i}" for i in data.batch(b)] for b in plan]
    assert in_input_order(plan, outputs) == [f"out{i}" for i in range(50)]
    rows = [torch.tensor([[i, -i] for i in data.batch(b)]) for b in plan]  # tensors: one row per example
    assert torch.equal(rows_in_input_order(plan, rows), torch.tensor([[i, -i] for i in range(50)]))


@pytest.mark.parametrize("unit, size", [("sentences", 8), ("tokens", 120)])
def test_ranks_share_every_global_batch(unit: str, size: int) -> None:
    """Each rank gets a balanced slice of the same global batch; together they are the one-process batch."""
    lengths = lengths_of(301)
    single = batches(lengths, size, unit=unit, seed=5)
    ranks = [batches(lengths, size, unit=unit, seed=5, rank=r, world=3) for r in range(3)]
    plans = [r.plan(2) for r in ranks]
    assert plans[0] == plans[1] == plans[2]
    assert plans[0] == [b for b in single.plan(2) if len(b) >= 3]  # only a tail shorter than the world goes
    for spec in plans[0]:
        shares = [r.batch(spec) for r in ranks]
        assert sum(shares, []) == spec
        assert max(map(len, shares)) - min(map(len, shares)) <= 1 and min(map(len, shares)) >= 1


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unit"):
        batches([1], unit="words")
    with pytest.raises(ValueError, match="no examples"):
        batches([])
    with pytest.raises(ValueError, match="rank 2"):
        batches([1, 2], rank=2, world=2)
    with pytest.raises(ValueError, match="outputs"):
        in_input_order([[0, 1]], [["a"]])
    with pytest.raises(ValueError, match="output rows"):
        rows_in_input_order([[0, 1]], [torch.zeros(1, 3)])

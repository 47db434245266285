"""Search: choosing tokens from a model's next-token distribution.

Greedy, temperature, top-k (Fan et al. 2018) and nucleus / top-p (Holtzman et al. 2020) sampling over
a batch of sequences at once. Models plug in through a step function
``step(ids (B,), state) -> (logits (B, V), state)``, so every task's decoder shares this code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

StepFn = Callable[[torch.Tensor, object], tuple[torch.Tensor, object]]


@dataclass
class SamplingConfig:
    greedy: bool = False  # always take the most likely token
    temperature: float = 1.0  # < 1 sharper, > 1 flatter
    top_k: int = 0  # sample among the k most likely tokens (0 = all)
    top_p: float = 1.0  # sample among the smallest set whose probability reaches p (1 = all)

    def validate(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be > 0 and finite, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top-k must be >= 0, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top-p must be in (0, 1], got {self.top_p}")


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Set logits outside the top-k / nucleus to -inf. logits: (B, V) -> (B, V)."""
    logits = logits.clone()
    if top_k and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits[logits < kth] = float("-inf")
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(-1)
        # drop a token when the tokens before it already reach top_p (the first always stays)
        drop_sorted = (cumulative - torch.softmax(sorted_logits, dim=-1)) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits[drop] = float("-inf")
    return logits


def choose(logits: torch.Tensor, cfg: SamplingConfig, generator: torch.Generator | None = None,
           banned: list[int] | None = None) -> torch.Tensor:
    """Next token per row. logits: (B, V) -> ids (B,). ``banned`` ids are never chosen."""
    logits = logits.float()
    if banned:
        logits = logits.clone()
        logits[:, banned] = float("-inf")
    if cfg.greedy:
        return logits.argmax(-1)
    logits = filter_logits(logits / cfg.temperature, cfg.top_k, cfg.top_p)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def sample_sequences(step: StepFn, logits: torch.Tensor, state: object,
                     max_new: int, cfg: SamplingConfig, eos_id: int | None = None,
                     generator: torch.Generator | None = None, banned: list[int] | None = None,
                     min_new: int = 0) -> list[list[int]]:
    """Extend B sequences by up to ``max_new`` tokens each.

    logits: (B, V), the distribution after the prompt; ``state`` the model state that produced it.
    A sequence stops after ``eos_id`` (kept in its output) unless fewer than ``min_new`` tokens
    were produced, in which case ``eos_id`` is banned for it until then.
    Returns the new ids of each sequence.
    """
    batch = logits.size(0)
    out: list[list[int]] = [[] for _ in range(batch)]
    done = torch.zeros(batch, dtype=torch.bool)
    for t in range(max_new):
        ban = list(banned or [])
        if eos_id is not None and t < min_new:
            ban.append(eos_id)
        ids = choose(logits, cfg, generator, ban)
        for b, i in enumerate(ids.tolist()):
            if not done[b]:
                out[b].append(i)
                if eos_id is not None and i == eos_id:
                    done[b] = True
        if bool(done.all()) or t == max_new - 1:
            break
        logits, state = step(ids, state)
    return out

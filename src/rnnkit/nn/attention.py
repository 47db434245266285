"""Attention over an encoder's outputs, in Luong et al.'s (2015) placement: the decoder RNN runs first,
then its top output h_t (the query) scores the source positions, and the attentional vector
``tanh(W_c [c_t; h_t])`` (c_t the context: the weighted sum of the encoder outputs) feeds the output layer.

Scores: ``bahdanau`` (additive, Bahdanau et al. 2015: v^T tanh(W_q h + W_k m)), ``dot`` (h^T m) and
``general`` (h^T W_a m). Every query of a sequence is scored in one batched call, so teacher forcing
attends over all target steps at once (DESIGN principle 3); a decoding step is the same call with T = 1.
"""

from __future__ import annotations

import torch
from torch import nn

SCORES = ("bahdanau", "dot", "general")


class Attention(nn.Module):
    """Parameters: ``key`` (W_k or W_a, applied to the memory), ``query`` and ``energy`` (Bahdanau's W_q
    and v), ``combine`` (W_c); none of them has a bias, as in the papers."""

    def __init__(self, score: str, query_size: int, memory_size: int):
        super().__init__()
        if score not in SCORES:
            raise ValueError(f"unknown attention score '{score}' (one of {', '.join(SCORES)})")
        if score == "dot" and query_size != memory_size:
            raise ValueError(f"dot attention needs the decoder size ({query_size}) to equal the encoder's output "
                             f"size ({memory_size})")
        self.score = score
        if score != "dot":
            self.key = nn.Linear(memory_size, query_size, bias=False)
        if score == "bahdanau":
            self.query = nn.Linear(query_size, query_size, bias=False)
            self.energy = nn.Linear(query_size, 1, bias=False)
        self.combine = nn.Linear(memory_size + query_size, query_size, bias=False)

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        """What the queries are scored against, computed once per source batch: memory (B, S, C) ->
        (B, S, K)."""
        return memory if self.score == "dot" else self.key(memory)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor,
                padding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, T, H), keys (B, S, K), memory (B, S, C), padding (B, S) True at source padding ->
        attentional vectors (B, T, H) and attention weights (B, T, S) (exact zeros at padding)."""
        if self.score == "bahdanau":
            projected = self.query(query).unsqueeze(2) + keys.unsqueeze(1)  # (B, T, S, H)
            scores = self.energy(torch.tanh(projected)).squeeze(-1)
        else:
            scores = torch.bmm(query, keys.transpose(1, 2))
        weights = torch.softmax(scores.masked_fill(padding.unsqueeze(1), float("-inf")), dim=-1)
        context = torch.bmm(weights, memory)  # (B, T, C)
        return torch.tanh(self.combine(torch.cat([context, query], dim=-1))), weights

"""Language-model data: a corpus of token ids and the batches a trainer walks through.

Three modes (``data.mode``):

* ``stream`` (running text, seed 002, PTB): every line's tokens plus ``<eos>`` joined into one long
  stream, cut into ``batch_size`` contiguous columns; truncated BPTT walks down the columns and the
  hidden state is carried from one batch to the next (Zaremba et al. 2014; pytorch/examples).
  Training drops the tail that does not fill a column; evaluation pads the last column instead, so
  every token after the first is scored.
* ``sentences`` (seed 001): each line is ``<bos> tokens <eos>``, trained as length-bucketed padded
  batches; the hidden state starts from zero for each sentence and padding is ignored by the loss.
* ``windows`` (seed 002): every ``window`` consecutive tokens of the stream, from a zero state,
  predict the token after them (the loss is on that last token only, as in the seed).

The batches of an epoch depend only on ``(seed, epoch)``, so a resumed run can skip to the exact
batch where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rnnkit.config import DataConfig
from rnnkit.data.batching import BucketBatches
from rnnkit.data.readers import read_lines, split_sentences
from rnnkit.data.tokenizers import Tokenizer
from rnnkit.data.vocab import OovCount, Vocab

IGNORE_INDEX = -100  # target id the loss skips (padding)


def read_corpus_lines(path: str, cfg: DataConfig) -> list[str]:
    """Lines of a file, split into sentences if the config asks (``max_lines`` counts the result)."""
    lines = read_lines(path, 0 if cfg.split_sentences else cfg.max_lines, cfg.strip_markup, skip_empty_records=True)
    if cfg.split_sentences:
        lines = [s for line in lines for s in split_sentences(line)]
        if cfg.max_lines:
            lines = lines[: cfg.max_lines]
    return lines


def encode_lines(lines: list[str], tokenizer: Tokenizer, vocab: Vocab, cfg: DataConfig,
                 oov: OovCount | None = None) -> list[list[int]]:
    """Token ids per line: with ``<eos>`` (stream), ``<bos> ... <eos>`` (sentences, length-filtered),
    or the ``window + 1``-token slices of the stream (windows). ``oov`` counts the tokens read and
    those outside the vocabulary."""

    def ids_of(line: str) -> list[int]:
        tokens = tokenizer.tokenize(line)
        if oov is not None:
            oov.add(tokens, vocab)
        return vocab.encode(tokens)

    if cfg.mode == "windows":
        stream = [i for line in lines for i in (*ids_of(line), Vocab.eos_id)]
        return [stream[i: i + cfg.window + 1] for i in range(len(stream) - cfg.window)]
    out = []
    for line in lines:
        ids = ids_of(line)
        if cfg.mode == "sentences":
            if not ids or (cfg.min_length and len(ids) < cfg.min_length):
                continue
            if cfg.max_length and len(ids) > cfg.max_length:
                continue
            out.append([Vocab.bos_id, *ids, Vocab.eos_id])
        else:
            out.append([*ids, Vocab.eos_id])
    return out


@dataclass
class Batch:
    """One training/eval batch, time-major.

    inputs:  (T, B) token ids
    targets: (T, B) next-token ids, ``IGNORE_INDEX`` on padding
    lengths: (B,) valid steps per column
    carry_state: whether the hidden state continues from the previous batch (stream mode)
    num_tokens: targets that count (known on the CPU, so the trainer never waits on the GPU for it)
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    lengths: torch.Tensor
    carry_state: bool
    num_tokens: int

    def to(self, device: torch.device) -> Batch:
        return Batch(self.inputs.to(device, non_blocking=True), self.targets.to(device, non_blocking=True),
                     self.lengths, self.carry_state, self.num_tokens)


class StreamBatches:
    """Contiguous columns + truncated BPTT over one token stream.

    ``columns`` is the global batch size; with several processes each rank owns a contiguous share of
    the columns, so N processes together see exactly the batches of one process. ``pad_tail``
    (evaluation) pads the last column with ignored targets instead of dropping the tokens that do not
    fill it, so every token but the first is a target exactly once.
    """

    def __init__(self, sequences: list[list[int]], columns: int, bptt: int, variable_bptt: bool = False,
                 seed: int = 0, rank: int = 0, world: int = 1, pad_tail: bool = False):
        if columns % world:
            raise ValueError(f"batch size {columns} is not divisible by {world} processes")
        stream = torch.tensor([i for seq in sequences for i in seq], dtype=torch.long)
        targets = len(stream) - 1
        n = -(-targets // columns) if pad_tail else targets // columns
        if n < 2:
            raise ValueError(f"only {len(stream)} tokens: too few for {columns} columns")
        per_rank = columns // world
        cols = slice(rank * per_rank, (rank + 1) * per_rank)
        size = n * columns
        self.padded = size > targets
        self.inputs = _padded(stream[:-1], size, Vocab.pad_id).view(columns, n).t()[:, cols].contiguous()
        self.targets = _padded(stream[1:], size, IGNORE_INDEX).view(columns, n).t()[:, cols].contiguous()
        self.bptt, self.variable_bptt, self.seed = bptt, variable_bptt, seed

    @property
    def num_tokens(self) -> int:
        return _count_targets(self.targets, self.padded)

    def plan(self, epoch: int) -> list[tuple[int, int]]:
        """(start, length) of every batch of ``epoch``; AWD-LSTM's random lengths are seeded by epoch."""
        rng = np.random.default_rng([self.seed, epoch])
        spans, start, total = [], 0, self.inputs.size(0)
        while start < total:
            length = self.bptt
            if self.variable_bptt:
                base = self.bptt if rng.random() < 0.95 else self.bptt / 2
                length = max(5, int(rng.normal(base, 5)))
            length = min(length, total - start)
            spans.append((start, length))
            start += length
        return spans

    def batch(self, span: tuple[int, int]) -> Batch:
        start, length = span
        x = self.inputs[start: start + length]
        y = self.targets[start: start + length]
        return Batch(x, y, torch.full((x.size(1),), length, dtype=torch.long), True, _count_targets(y, self.padded))


def _padded(ids: torch.Tensor, size: int, fill: int) -> torch.Tensor:
    """The first ``size`` ids, with ``fill`` appended up to ``size`` if there are fewer."""
    if len(ids) >= size:
        return ids[:size]
    return torch.cat([ids, torch.full((size - len(ids),), fill, dtype=ids.dtype)])


def _count_targets(targets: torch.Tensor, padded: bool) -> int:
    return int((targets != IGNORE_INDEX).sum()) if padded else targets.numel()


class SentenceBatches(BucketBatches):
    """Padded batches of whole sentences, bucketed by length (pools of 50 batches), shuffled per epoch.

    Training order, evaluation order (sorted by length) and the DDP shares are :class:`BucketBatches`'.
    """

    def __init__(self, sequences: list[list[int]], batch_size: int, shuffle: bool = True, seed: int = 0,
                 rank: int = 0, world: int = 1, last_only: bool = False):
        if batch_size % world:
            raise ValueError(f"batch size {batch_size} is not divisible by {world} processes")
        if not sequences:
            raise ValueError("no sentences to batch")
        self.sequences, self.last_only = sequences, last_only
        num_tokens = len(sequences) if last_only else sum(len(s) - 1 for s in sequences)
        super().__init__([len(s) for s in sequences], self._collate, batch_size, "sentences", shuffle, seed, rank,
                         world, window=50, num_tokens=num_tokens)

    def _collate(self, indices: list[int]) -> Batch:
        return pad_sentences([self.sequences[i] for i in indices], self.last_only)


def pad_sentences(seqs: list[list[int]], last_only: bool = False) -> Batch:
    """``<bos> w1 .. wn <eos>`` sequences -> inputs ``<bos> w1..wn``, targets ``w1..wn <eos>``, padded.

    ``last_only`` keeps only each sequence's final target (windows mode).
    """
    lengths = torch.tensor([len(s) - 1 for s in seqs], dtype=torch.long)
    t = int(lengths.max()) if len(seqs) else 1
    inputs = torch.full((t, len(seqs)), Vocab.pad_id, dtype=torch.long)
    targets = torch.full((t, len(seqs)), IGNORE_INDEX, dtype=torch.long)
    for j, s in enumerate(seqs):
        ids = torch.tensor(s, dtype=torch.long)
        inputs[: len(s) - 1, j] = ids[:-1]
        if last_only:
            targets[len(s) - 2, j] = ids[-1]
        else:
            targets[: len(s) - 1, j] = ids[1:]
    count = len(seqs) if last_only else int(lengths.sum())
    return Batch(inputs, targets, lengths, False, count)


def make_batches(sequences: list[list[int]], mode: str, batch_size: int, bptt: int,
                 variable_bptt: bool = False, shuffle: bool = True, seed: int = 0, rank: int = 0,
                 world: int = 1, pad_tail: bool = False) -> StreamBatches | SentenceBatches:
    """The batches of a data mode; ``pad_tail`` (evaluation): a stream's every token is a target."""
    if mode == "stream":
        return StreamBatches(sequences, batch_size, bptt, variable_bptt, seed, rank, world, pad_tail)
    return SentenceBatches(sequences, batch_size, shuffle, seed, rank, world, last_only=mode == "windows")

"""Parallel data for sequence-to-sequence tasks: reading, splitting, encoding and batching pairs.

Two formats:

* TSV lines ``source<TAB>target[<TAB>anything]`` (seed 000 / the Anki exports: extra columns such as
  an attribution are ignored);
* two aligned files, line *i* of one translating line *i* of the other (Multi30k ``train.de`` +
  ``train.en``).

Files are read by :mod:`rnnkit.data.readers` (UTF-8, ``.gz``, line-length caps). Every problem is one
:class:`RnnkitError` naming the file and line: a TSV line without a tab, an empty source or target
side, bytes that are not UTF-8, aligned files of different line counts, an empty file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch

from rnnkit.data.batching import BucketBatches, pad
from rnnkit.data.lm import IGNORE_INDEX
from rnnkit.data.readers import read_lines
from rnnkit.data.splits import held_out_parts
from rnnkit.data.tokenizers import Tokenizer
from rnnkit.data.vocab import OovCount, Vocab
from rnnkit.errors import RnnkitError

SPLIT_MODES = ("tail", "random")
TOO_LONG = ("drop", "error")


@dataclass
class ParallelText:
    """Source/target sentence pairs and where each came from (``lines``: its line in the file(s))."""

    sources: list[str]
    targets: list[str]
    lines: list[int]
    source_path: str
    target_path: str  # the same file as source_path for TSV

    def __len__(self) -> int:
        return len(self.sources)

    def subset(self, indices: list[int]) -> ParallelText:
        return ParallelText([self.sources[i] for i in indices], [self.targets[i] for i in indices],
                            [self.lines[i] for i in indices], self.source_path, self.target_path)


def _pair_lines(path: str | Path, max_pairs: int) -> list[str]:
    if ".jsonl" in Path(path).suffixes:
        raise RnnkitError("parallel data is TSV (source<TAB>target) or two aligned text files, not JSON Lines",
                          path)
    return read_lines(path, max_pairs)


def _without_blank_ends(max_pairs: int, *files: list[str]) -> None:
    """Drop the lines at the end of ``files`` (read whole: fewer than ``max_pairs``) that are blank in every one of
    them (an editor's trailing newline holds no pair; a blank line facing a sentence stays an error)."""
    if max_pairs and any(len(lines) >= max_pairs for lines in files):
        return
    while all(lines and not lines[-1].strip() for lines in files) and len({len(lines) for lines in files}) == 1:
        for lines in files:
            lines.pop()


def _side(text: str, which: str, path: str | Path, line: int) -> str:
    text = text.strip()
    if not text:
        raise RnnkitError(f"the {which} side is empty", path, line)
    return text


def read_tsv_pairs(path: str | Path, max_pairs: int = 0) -> ParallelText:
    """Pairs from ``source<TAB>target[<TAB>anything]`` lines; ``max_pairs``: only the first N lines."""
    sources, targets, lines = [], [], _pair_lines(path, max_pairs)
    _without_blank_ends(max_pairs, lines)
    for number, line in enumerate(lines, 1):
        fields = line.split("\t")
        if len(fields) < 2:
            raise RnnkitError("no tab on this line: expected source<TAB>target", path, number)
        sources.append(_side(fields[0], "source", path, number))
        targets.append(_side(fields[1], "target", path, number))
    return ParallelText(sources, targets, list(range(1, len(sources) + 1)), str(path), str(path))


def read_aligned_pairs(source_path: str | Path, target_path: str | Path, max_pairs: int = 0) -> ParallelText:
    """Pairs from two files aligned by line; ``max_pairs``: only the first N lines of each."""
    source_lines = _pair_lines(source_path, max_pairs)
    target_lines = _pair_lines(target_path, max_pairs)
    _without_blank_ends(max_pairs, source_lines, target_lines)
    if len(source_lines) != len(target_lines):
        raise RnnkitError(f"has {len(source_lines)} lines but {target_path} has {len(target_lines)}: aligned "
                          "files must have one line per pair", source_path)
    sources = [_side(s, "source", source_path, n) for n, s in enumerate(source_lines, 1)]
    targets = [_side(t, "target", target_path, n) for n, t in enumerate(target_lines, 1)]
    return ParallelText(sources, targets, list(range(1, len(sources) + 1)), str(source_path), str(target_path))


def read_parallel(path: str | Path, source_suffix: str | None = None, target_suffix: str | None = None,
                  max_pairs: int = 0) -> ParallelText:
    """TSV pairs from ``path``; with both suffixes, the aligned files ``path.SRC`` and ``path.TRG``
    (``multi30k/train`` with ``de``, ``en``: ``multi30k/train.de`` + ``multi30k/train.en``; a missing
    file is looked for with ``.gz`` added)."""
    if (source_suffix is None) != (target_suffix is None):
        raise ValueError("give both source_suffix and target_suffix (aligned files), or neither (TSV)")
    if source_suffix is None:
        return read_tsv_pairs(path, max_pairs)
    return read_aligned_pairs(_aligned_file(path, source_suffix), _aligned_file(path, target_suffix), max_pairs)


def _aligned_file(prefix: str | Path, suffix: str) -> Path:
    plain = Path(f"{prefix}.{suffix}")
    packed = Path(f"{plain}.gz")
    return packed if not plain.exists() and packed.exists() else plain


def split_pairs(data: ParallelText, valid_fraction: float, test_fraction: float = 0.0, mode: str = "tail",
                seed: int = 0) -> tuple[ParallelText, ParallelText, ParallelText]:
    """(train, valid, test) out of one set of pairs.

    ``tail``: the file order is kept and the held-out parts are its end: ``[train | valid | test]``
    (seed 000 / Keras ``validation_split``: the last 20% validate). ``random``: a permutation seeded
    by ``seed`` chooses them; each part keeps file order. Held-out sizes are ``floor(n * fraction)``;
    a non-zero fraction gets at least one pair. An empty part is returned for a zero fraction.
    """
    if mode not in SPLIT_MODES:
        raise ValueError(f"split mode must be one of {' | '.join(SPLIT_MODES)}, got {mode!r}")
    if not (0 <= valid_fraction < 1 and 0 <= test_fraction < 1 and valid_fraction + test_fraction < 1):
        raise ValueError(f"valid and test fractions must be in [0, 1) with a sum below 1, got {valid_fraction} "
                         f"and {test_fraction}")
    parts = held_out_parts(len(data), valid_fraction, test_fraction, mode, seed, "pairs", data.source_path)
    train, valid, test = (data.subset(part) for part in parts)
    return train, valid, test


@dataclass
class EncodedPairs:
    """Token ids of each pair: ``sources[i]`` (no specials) and ``targets[i]`` = ``<bos> y <eos>``.

    The decoder reads ``targets[i][:-1]`` (``<bos> y``) and predicts ``targets[i][1:]`` (``y <eos>``).
    ``lines``: where each kept pair came from; ``dropped``: pairs over the length limits.
    """

    sources: list[list[int]]
    targets: list[list[int]]
    lines: list[int]
    dropped: int = 0
    source_oov: OovCount = field(default_factory=OovCount)
    target_oov: OovCount = field(default_factory=OovCount)

    def __len__(self) -> int:
        return len(self.sources)


def encode_pairs(data: ParallelText, source_tokenizer: Tokenizer, target_tokenizer: Tokenizer,
                 source_vocab: Vocab, target_vocab: Vocab, max_source_tokens: int = 0,
                 max_target_tokens: int = 0, too_long: str = "drop") -> EncodedPairs:
    """Tokenize and encode each side, counting tokens outside each vocabulary (encoded as ``<unk>``).

    A pair with more than ``max_source_tokens`` / ``max_target_tokens`` tokens (0: no limit; specials
    not counted) is dropped and counted (``too_long="drop"``) or is an error naming its line ("error").
    """
    if too_long not in TOO_LONG:
        raise ValueError(f"too_long must be one of {' | '.join(TOO_LONG)}, got {too_long!r}")
    out = EncodedPairs([], [], [])
    for source, target, line in zip(data.sources, data.targets, data.lines, strict=True):
        src_tokens, trg_tokens = source_tokenizer.tokenize(source), target_tokenizer.tokenize(target)
        over = [(path, problem) for path, problem in
                ((data.source_path, _over_limit(len(src_tokens), max_source_tokens, "source")),
                 (data.target_path, _over_limit(len(trg_tokens), max_target_tokens, "target"))) if problem]
        if over and too_long == "error":
            raise RnnkitError(over[0][1], over[0][0], line)
        if over:
            out.dropped += 1
            continue
        out.source_oov.add(src_tokens, source_vocab)
        out.target_oov.add(trg_tokens, target_vocab)
        out.sources.append(source_vocab.encode(src_tokens))
        out.targets.append([Vocab.bos_id, *target_vocab.encode(trg_tokens), Vocab.eos_id])
        out.lines.append(line)
    return out


def _over_limit(count: int, limit: int, side: str) -> str:
    """The problem with a side of ``count`` tokens under ``limit`` (0: none), or ''."""
    if limit and count > limit:
        return f"the {side} side has {count} tokens, more than the limit of {limit}"
    return ""


@dataclass
class PairBatch:
    """A padded batch of pairs, time-major; rows ordered by source length, longest first.

    src:         (S, B) source ids, ``<pad>`` after each source's end
    src_lengths: (B,) source lengths, kept on the CPU (``pack_padded_sequence`` wants them there)
    trg_in:      (T, B) decoder input ``<bos> y``, ``<pad>`` after it
    trg_out:     (T, B) decoder target ``y <eos>``, ``IGNORE_INDEX`` after it
    trg_lengths: (B,) target steps (len(y) + 1), on the CPU
    indices:     example index of each row (outputs go back to input order through it)
    num_tokens:  target tokens that count (known on the CPU: the trainer never waits on the device)
    """

    src: torch.Tensor
    src_lengths: torch.Tensor
    trg_in: torch.Tensor
    trg_out: torch.Tensor
    trg_lengths: torch.Tensor
    indices: list[int]
    num_tokens: int

    def to(self, device: torch.device) -> PairBatch:
        return PairBatch(self.src.to(device, non_blocking=True), self.src_lengths,
                         self.trg_in.to(device, non_blocking=True), self.trg_out.to(device, non_blocking=True),
                         self.trg_lengths, self.indices, self.num_tokens)


def collate_pairs(data: EncodedPairs, indices: list[int]) -> PairBatch:
    """The pairs ``indices`` as one :class:`PairBatch` (rows sorted by source length, longest first)."""
    indices = sorted(indices, key=lambda i: -len(data.sources[i]))  # stable: ties keep their order
    src, src_lengths = pad([data.sources[i] for i in indices], Vocab.pad_id)
    trg_in, trg_lengths = pad([data.targets[i][:-1] for i in indices], Vocab.pad_id)
    trg_out, _ = pad([data.targets[i][1:] for i in indices], IGNORE_INDEX)
    return PairBatch(src, src_lengths, trg_in, trg_out, trg_lengths, indices, int(trg_lengths.sum()))


def pair_batches(data: EncodedPairs, batch_size: int, unit: str = "sentences", shuffle: bool = True,
                 seed: int = 0, rank: int = 0, world: int = 1) -> BucketBatches:
    """:class:`BucketBatches` of encoded pairs; a pair's length is its longer side (the padded cost)."""
    lengths = [max(len(s), len(t) - 1) for s, t in zip(data.sources, data.targets, strict=True)]
    return BucketBatches(lengths, partial(collate_pairs, data), batch_size, unit, shuffle, seed,
                         rank, world, num_tokens=sum(len(t) - 1 for t in data.targets))

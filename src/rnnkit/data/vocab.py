"""Vocabulary: tokens <-> ids, with the specials every task shares."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rnnkit.errors import RnnkitError, parse_json

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
#: an LM's evaluation warns when more of a text than this is out of the model's vocabulary: its perplexity
#: scores <unk>, an easy guess, in place of the words
OOV_WARN_RATE = 0.05
#: a classifier's warns above this share of the tokens it reads (after data.max_length): <unk> only hides words from
#: it, and a vocabulary cut by tokenizer.vocab_size leaves some out of any text (IMDB's test: 5.4% with
#: seed-003-imdb-bag's 10,000 alnum words, 3.3-3.5% with 20,000; English image captions 8.0%), while another
#: language is 56-83% out and another domain 11-19%
CLASSIFY_OOV_WARN_RATE = 0.10


@dataclass
class OovCount:
    """Tokens read and how many of them a vocabulary lacks (they are encoded as <unk>)."""

    tokens: int = 0
    oov: int = 0

    def add(self, tokens: list[str], vocab: Vocab) -> None:
        self.tokens += len(tokens)
        self.oov += sum(1 for t in tokens if t not in vocab.stoi)

    def add_ids(self, ids: list[int]) -> int:
        """Count ids a :class:`Vocab` encoded (no second look at the tokens): those of <unk> are out of it.
        Returns this sequence's count."""
        unknown = ids.count(Vocab.unk_id)
        self.tokens += len(ids)
        self.oov += unknown
        return unknown

    @property
    def rate(self) -> float:
        return self.oov / max(self.tokens, 1)


#: what an out-of-vocabulary warning advises, unless its caller knows better
CHECK_READING = "check the file, the tokenizer and tokenizer.lowercase"


def reused_vocabulary(way_out: str = "--init-partial") -> str:
    """What an out-of-vocabulary warning (or error) advises where the run keeps the --init-from model's vocabulary
    instead of building one from its training text (a same-task --init-from, tokenizer.from_init): ``way_out``, what
    builds one from that text instead."""
    return (f"the run keeps the --init-from model's vocabulary; {way_out} builds one from the training text and "
            "copies the rows of the tokens both hold")


def oov_warning(oov: OovCount, path: str | Path, vocab_size: int, read_as: str = "scored",
                limit: float = OOV_WARN_RATE, scope: str = "", advice: str = CHECK_READING) -> None:
    """A line on stderr when more than ``limit`` of a text is outside the vocabulary: the model sees <unk> there
    (``read_as``: what it does with them, "scored" for a perplexity; ``scope``: which tokens were counted, said
    after the share, e.g. those of the part of each text a classifier keeps; ``advice``: what to do, in brackets)."""
    if oov.rate > limit:
        print(f"warning: {path}: {oov.oov:,} of {oov.tokens:,} token{'s' if oov.tokens != 1 else ''} "
              f"({share_above(oov.rate, limit)}){scope} are not in the model's vocabulary of {vocab_size:,} and are "
              f"{read_as} as <unk> ({advice})", file=sys.stderr, flush=True)


def share_above(rate: float, limit: float) -> str:
    """``rate`` (above ``limit``) as a percentage, 0.1% precise, or finer where that would show the limit itself
    (10.004% above a 10% rule: "10.004%", not "10.0%")."""
    for decimals in range(1, 7):
        shown = f"{rate:.{decimals}%}"
        if float(shown[:-1]) / 100 > limit:
            return shown
    return shown


class Vocab:
    """Ids 0..3 are ``<pad> <unk> <bos> <eos>``; then tokens by descending frequency (ties: first seen)."""

    def __init__(self, tokens: Iterable[str]):
        self.itos: list[str] = list(SPECIALS) + [t for t in tokens if t not in SPECIALS]
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("duplicate tokens in vocabulary")

    pad_id, unk_id, bos_id, eos_id = 0, 1, 2, 3

    @classmethod
    def build(cls, token_lists: Iterable[Iterable[str]], max_size: int = 0, min_freq: int = 1) -> Vocab:
        """Count tokens; keep those seen ``min_freq`` times, at most ``max_size`` entries with specials."""
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        # Counter.most_common keeps first-seen order among equal counts: deterministic.
        kept = [t for t, c in counts.most_common() if c >= min_freq and t not in SPECIALS]
        if max_size:
            kept = kept[: max(0, max_size - len(SPECIALS))]
        return cls(kept)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def encode(self, tokens: Iterable[str]) -> list[int]:
        unk = self.unk_id
        return [self.stoi.get(t, unk) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in ids]

    def save(self, path: str | Path) -> None:
        from rnnkit.checkpoint import atomic_write_text

        atomic_write_text(path, json.dumps(self.itos, ensure_ascii=False, indent=0))

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        try:
            itos = parse_json(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RnnkitError("vocabulary file missing", path) from None
        except (ValueError, UnicodeDecodeError) as e:
            raise RnnkitError(f"vocabulary file is corrupt ({e})", path) from None
        if not isinstance(itos, list) or tuple(itos[:4]) != SPECIALS:
            raise RnnkitError("vocabulary file does not start with <pad> <unk> <bos> <eos>", path)
        if not all(isinstance(t, str) for t in itos):
            raise RnnkitError("vocabulary file is corrupt (an entry is not a string)", path)
        try:
            return cls(itos[4:])
        except ValueError as e:
            raise RnnkitError(f"vocabulary file is corrupt ({e})", path) from None

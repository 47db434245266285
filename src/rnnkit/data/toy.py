"""Seed 004's toy sequence-to-sequence tasks, as TSV pairs of space-separated tokens.

* ``copy``, ``reverse``, ``sort``: 3-10 digits (``0``..``9``) -> the same, reversed, or in ascending order
  (the tflearn_seq2seq examples seed 004 shows);
* ``digits-to-words``: 1-5 numbers 0-99 -> their English words, a compound joined by ``_``, as in
  seed 004's data (``21 5`` -> ``twenty_one five``);
* ``pig-latin``: the letters of one made-up word -> the letters of its Pig Latin (the Linusp/soph
  example of seed 004): leading consonants move to the end and take ``ay`` (``s t r o n g`` ->
  ``o n g s t r a y``), a word starting with a vowel takes ``way``.

Every source is distinct, so the held-out pairs are never seen in training. ``write_toy`` splits them
80/10/10 into ``train.tsv``, ``valid.tsv`` and ``test.tsv``, with a ``toy.json`` manifest that says how
they were made; it never replaces files that a manifest of its own does not name.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

from rnnkit.errors import RnnkitError, parse_json

SPLITS = ("train", "valid", "test")
MANIFEST = "toy.json"
MAKER = "rnnkit data toy"

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ONSETS = ("", "", "", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w",
           "z", "bl", "br", "ch", "cl", "cr", "dr", "fl", "fr", "gl", "gr", "pl", "pr", "sc", "sh", "sk", "sl",
           "sm", "sn", "sp", "st", "str", "th", "tr", "wh")
_VOWELS = "aeiou"
_CODAS = ("", "", "n", "r", "s", "t", "l", "m", "ck", "nd", "st")


def number_words(n: int) -> str:
    """0-99 in English words, a compound joined by ``_``: 21 -> ``twenty_one``."""
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] + (f"_{_ONES[ones]}" if ones else "")


def pig_latin(word: str) -> str:
    """``string`` -> ``ingstray``; ``apple`` -> ``appleway`` (letters a-z; a, e, i, o, u are the vowels)."""
    first_vowel = next((i for i, c in enumerate(word) if c in _VOWELS), len(word))
    if first_vowel == 0:
        return word + "way"
    return word[first_vowel:] + word[:first_vowel] + "ay"


def _digits(rng: random.Random) -> list[str]:
    return [str(rng.randrange(10)) for _ in range(rng.randint(3, 10))]


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(rng.randint(1, 3)))


def _copy(rng: random.Random) -> tuple[list[str], list[str]]:
    x = _digits(rng)
    return x, x


def _reverse(rng: random.Random) -> tuple[list[str], list[str]]:
    x = _digits(rng)
    return x, x[::-1]


def _sort(rng: random.Random) -> tuple[list[str], list[str]]:
    x = _digits(rng)
    return x, sorted(x)


def _digits_to_words(rng: random.Random) -> tuple[list[str], list[str]]:
    numbers = [rng.randrange(100) for _ in range(rng.randint(1, 5))]
    return [str(n) for n in numbers], [number_words(n) for n in numbers]


def _pig_latin(rng: random.Random) -> tuple[list[str], list[str]]:
    word = _word(rng)
    return list(word), list(pig_latin(word))


TASKS: dict[str, Callable[[random.Random], tuple[list[str], list[str]]]] = {
    "copy": _copy, "reverse": _reverse, "sort": _sort, "digits-to-words": _digits_to_words,
    "pig-latin": _pig_latin}


def generate(task: str, n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (source, target) pairs of ``task`` with distinct sources, each side space-separated tokens."""
    if task not in TASKS:
        raise ValueError(f"unknown toy task {task!r} ({' | '.join(TASKS)})")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    make, rng = TASKS[task], random.Random(f"{task}/{seed}")
    pairs: dict[str, str] = {}
    for _ in range(20 * n + 1000):  # a bounded number of draws: a task has only so many distinct inputs
        source, target = make(rng)
        pairs.setdefault(" ".join(source), " ".join(target))
        if len(pairs) == n:
            return list(pairs.items())
    raise ValueError(f"toy task {task!r} gave only {len(pairs)} distinct inputs in {20 * n + 1000} draws; ask for "
                     "fewer pairs")


def split_sizes(n: int) -> dict[str, int]:
    """80/10/10: valid and test take ``n // 10`` pairs each, train the rest."""
    held = n // 10
    return {"train": n - 2 * held, "valid": held, "test": held}


def write_toy(task: str, out: str | Path, n: int = 10000, seed: int = 0, overwrite: bool = False) -> dict[str, Path]:
    """Generate ``task`` into ``out``/{train,valid,test}.tsv (+ ``toy.json``); returns the TSV paths.

    ``out`` may hold other files. Existing split files are an error, unless ``overwrite`` and a
    ``toy.json`` written by this command is beside them (rnnkit replaces only what it made).
    """
    from rnnkit.files import atomic_write_text

    if n < 10:
        raise RnnkitError(f"--n must be at least 10 (80/10/10 train/valid/test), got {n}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RnnkitError("is not a directory", out)
    paths = {split: out / f"{split}.tsv" for split in SPLITS}
    _check_replaceable([*paths.values(), out / MANIFEST], out / MANIFEST, overwrite)
    try:
        pairs = generate(task, n, seed)
    except ValueError as e:
        raise RnnkitError(str(e)) from None
    sizes = split_sizes(n)
    manifest = {"made_by": MAKER, "task": task, "n": n, "seed": seed, "sizes": sizes}
    # the manifest first: files a kill leaves behind are then known as this command's to replace
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    start = 0
    for split, path in paths.items():
        chunk = pairs[start: start + sizes[split]]
        atomic_write_text(path, "".join(f"{s}\t{t}\n" for s, t in chunk))
        start += sizes[split]
    return paths


def _check_replaceable(paths: list[Path], manifest: Path, overwrite: bool) -> None:
    existing = [p for p in paths if p.exists() or p.is_symlink()]
    if not existing:
        return
    if not overwrite:
        raise RnnkitError(f"exists: `{MAKER}` does not replace files (--overwrite replaces the ones it made)",
                          existing[0])
    if not _made_here(manifest):
        raise RnnkitError(f"exists and was not made by `{MAKER}` (no {MANIFEST} of its own beside it): remove it "
                          "yourself or choose another --out", existing[0])
    for path in existing:
        if path.is_symlink() or not path.is_file():
            raise RnnkitError("exists and is not a plain file: remove it yourself or choose another --out", path)


def _made_here(manifest: Path) -> bool:
    try:
        record = parse_json(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(record, dict) and record.get("made_by") == MAKER

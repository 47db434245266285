"""Readers: text files (plain or gzip) and JSON Lines, validated line by line.

Every reader fails with one :class:`RnnkitError` naming the file and line: missing file, empty file,
bytes that are not UTF-8, a JSON line that does not parse or lacks the text field.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

from rnnkit.errors import RnnkitError

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
# A sentence ends at . ! or ? (runs of them, optionally one closing quote/bracket, which stays with
# the sentence: it is matched by lookbehind, not consumed) followed by space.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=[\"'(\[]?[A-Z0-9])")


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_lines(path: str | Path, max_lines: int = 0) -> list[str]:
    """Lines of a UTF-8 text file (``.gz`` allowed), without line endings.

    ``.jsonl`` / ``.jsonl.gz`` files yield the ``text`` field of each record instead, with HTML
    line breaks (``<br />``, as in IMDB) turned into spaces.
    """
    path = check_file(path)
    lines = list(_iter_lines(path, max_lines))
    if not any(line.strip() for line in lines):
        raise RnnkitError("file is empty (no non-blank lines)", path)
    return lines


def check_file(path: str | Path) -> Path:
    """``path`` as a Path if it is an existing file (checked before a long run needs it), else a clear error."""
    path = Path(path)
    if not path.exists():
        raise RnnkitError("file not found", path)
    if path.is_dir():
        raise RnnkitError("is a directory, expected a text file", path)
    return path


def _iter_lines(path: Path, max_lines: int) -> Iterator[str]:
    is_jsonl = ".jsonl" in path.suffixes
    try:
        with _open_bytes(path) as f:
            for number, raw in enumerate(f, start=1):
                if max_lines and number > max_lines:
                    return
                try:
                    line = raw.decode("utf-8").rstrip("\r\n")
                    if number == 1:
                        line = line.removeprefix("\ufeff")  # a byte-order mark (Windows editors) is not text
                except UnicodeDecodeError as e:
                    raise RnnkitError(f"not UTF-8 (invalid byte at column {e.start + 1})", path,
                                      number) from None
                yield _json_text(line, path, number) if is_jsonl else line
    except (OSError, EOFError, zlib.error) as e:
        if isinstance(e, (gzip.BadGzipFile, EOFError, zlib.error)) or "gzip" in str(e).lower():
            raise RnnkitError(f"not a valid gzip file ({e})", path) from None
        raise RnnkitError(f"cannot read ({e.strerror or e})", path) from None


def _json_text(line: str, path: Path, number: int) -> str:
    if not line.strip():
        return ""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise RnnkitError(f"invalid JSON ({e.msg})", path, number) from None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise RnnkitError('JSON record has no string "text" field', path, number)
    return _BR.sub(" ", record["text"]).replace("\n", " ")


def split_sentences(line: str) -> list[str]:
    """Split running text into sentences at ``. ! ?`` followed by a capitalised word.

    A light rule (no nltk): good enough for review-style text, as seed 001 uses on comments.
    """
    return [s.strip() for s in _SENTENCE_END.split(line) if s.strip()]

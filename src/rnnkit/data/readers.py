"""Readers: text files (plain or gzip) and JSON Lines, validated line by line.

Every reader fails with one :class:`RnnkitError` naming the file and line: missing file, empty file,
something that is not a regular file (a device, FIFO or socket: it may never end), a line longer than
:data:`MAX_LINE_BYTES` (memory stays bounded on a file with no line breaks), bytes that are not UTF-8,
a JSON line that does not parse or lacks the text field, a JSON string escape that is no character (a lone
surrogate).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

from rnnkit.errors import RnnkitError

#: the longest line read (IMDB's longest review is 14 KB): longer ones are not line-based text
MAX_LINE_BYTES = 16 << 20
_GZIP_MAGIC = b"\x1f\x8b"

#: the HTML elements read as markup: those a review writer or a scraped page leaves in text (line breaks,
#: emphasis, paragraphs, links, lists, tables). HTML lets a tag have any name, so ``x<y and y>z`` is a tag
#: by syntax alone: only a known name tells markup from text that looks like it (a comparison, a
#: reviewer's ``<sighs>`` or ``<insert title here>``). Names that are also common words inside angle
#: brackets (main, title, time, label, ...) are left out.
_TAG_NAMES = ("a|abbr|acronym|address|b|big|blink|blockquote|br|center|cite|code|dd|del|dfn|div|dl|dt|em|font|"
              "h1|h2|h3|h4|h5|h6|hr|i|img|ins|kbd|li|marquee|nobr|ol|p|pre|q|s|small|span|strike|strong|sub|sup|"
              "table|tbody|td|tfoot|th|thead|tr|tt|u|ul|wbr")
#: an HTML tag (IMDB reviews hold ``<br />``, ``<i>``, ``</i>``), read as a space where markup is stripped:
#: ``<`` right before the name or ``/`` + name (``< b >`` is not a tag in HTML either), the whole name, then
#: attributes holding no ``<`` or ``>``
_MARKUP = re.compile(rf"</?(?:{_TAG_NAMES})(?=[\s/>])[^<>]*>", re.IGNORECASE)
# A sentence ends at . ! or ? (runs of them, optionally one closing quote/bracket, which stays with
# the sentence: it is matched by lookbehind, not consumed) followed by space.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=[\"'(\[]?[A-Z0-9])")


def shown_name(path: str) -> str:
    """A file name as text: bytes that are not UTF-8 (an old archive's Latin-1) as \\xe9 escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_lines(path: str | Path, max_lines: int = 0, strip_markup: bool = True,
               skip_empty_records: bool = False) -> list[str]:
    """Lines of a UTF-8 text file (``.gz`` allowed), without line endings.

    ``.jsonl`` / ``.jsonl.gz`` files yield the ``text`` field of each record instead, as one line read by
    :func:`clean_text` (as the classifier reads it: HTML tags such as IMDB's ``<br />`` as spaces unless
    ``strip_markup`` is off); blank lines between records are skipped, and so are records with no text left
    (only markup and white space) when ``skip_empty_records`` (the LM: such a record would add a lone
    ``<eos>``; translate answers every record). ``max_lines`` counts the lines yielded. Plain text is read as
    it is (PTB's ``<unk>`` is a word).
    """
    path = check_file(path)
    lines = list(_iter_lines(path, max_lines, strip_markup, skip_empty_records))
    if not any(line.strip() for line in lines):
        only_markup = " (its records hold only markup and white space)" if ".jsonl" in path.suffixes else ""
        raise RnnkitError(f"file is empty (no non-blank lines){only_markup}", path)
    return lines


def clean_text(text: str, strip_markup: bool) -> str:
    """A text as one line: markup (``<br />``) read as spaces when asked, line breaks as spaces."""
    if strip_markup:
        text = _MARKUP.sub(" ", text)
    return " ".join(text.split())


def check_file(path: str | Path) -> Path:
    """``path`` as a Path if it is an existing file (checked before a long run needs it), else a clear error."""
    path = Path(path)
    if not path.exists():
        raise RnnkitError("file not found", path)
    if path.is_dir():
        raise RnnkitError("is a directory, expected a text file", path)
    if not path.is_file():
        raise RnnkitError("is not a regular file (a device, FIFO or socket, which may never end); give a text "
                          "file", path)
    if path.suffix == ".json" or path.suffixes[-2:] == [".json", ".gz"]:
        raise RnnkitError("a .json file would be read as plain text; for JSON Lines with a \"text\" field, name "
                          "it .jsonl", path)
    return path


def _raw_lines(f, path: Path) -> Iterator[tuple[int, bytes]]:
    """(number, bytes) of each line, none longer than :data:`MAX_LINE_BYTES` (a clear error instead)."""
    number = 0
    while raw := f.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            raise RnnkitError(f"the line is longer than {MAX_LINE_BYTES >> 20} MiB: not line-based text "
                              "(break it into lines)", path, number)
        yield number, raw


def _iter_lines(path: Path, max_lines: int, strip_markup: bool, skip_empty_records: bool) -> Iterator[str]:
    is_jsonl = ".jsonl" in path.suffixes
    count = 0
    for number, line in numbered_lines(path):
        if is_jsonl and not line.strip():  # not a record: it must not add a line end to the text
            continue
        if max_lines and count == max_lines:
            return  # (the records after the last one read are not parsed)
        if is_jsonl:
            line = clean_text(_json_text(line, path, number), strip_markup)
            if skip_empty_records and not line:  # no text: as a blank line, it adds no line end
                continue
        count += 1
        yield line


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text without its line end) of each line of a UTF-8 file (``.gz`` allowed), every
    problem one error naming the file and line (not UTF-8, not gzip, unreadable, a line too long)."""
    try:
        with _open_bytes(path) as f:
            for number, raw in _raw_lines(f, path):
                try:
                    line = raw.decode("utf-8").rstrip("\r\n")
                    if number == 1:
                        line = line.removeprefix("\ufeff")  # a byte-order mark (Windows editors) is not text
                except UnicodeDecodeError as e:
                    packed = " (it is gzip-compressed: name it .gz)" if raw.startswith(_GZIP_MAGIC) else ""
                    raise RnnkitError(f"not UTF-8 (invalid byte at column {e.start + 1}){packed}", path,
                                      number) from None
                yield number, line
    except (OSError, EOFError, zlib.error) as e:
        if isinstance(e, (gzip.BadGzipFile, EOFError, zlib.error)) or "gzip" in str(e).lower():
            raise RnnkitError(f"not a valid gzip file ({e})", path) from None
        raise RnnkitError(f"cannot read ({e.strerror or e})", path) from None


def _json_text(line: str, path: Path, number: int) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise RnnkitError(f"invalid JSON ({e.msg})", path, number) from None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise RnnkitError('JSON record has no string "text" field', path, number)
    check_unicode(record["text"], path, number, 'the "text" field')
    return record["text"]


def check_unicode(text: str, path: Path, line: int | None, what: str) -> None:
    """A string read from JSON holds no lone surrogate: ``"\\udce9"`` is valid JSON syntax, but no UTF-8 file
    (vocab.json, labels.json) can hold what it decodes to, so it is an error here, not a traceback later."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise RnnkitError(f"{what} is not valid Unicode: a lone surrogate \\u{ord(text[e.start]):04x}", path,
                          line) from None


def split_sentences(line: str) -> list[str]:
    """Split running text into sentences at ``. ! ?`` followed by a capitalised word.

    A light rule (no nltk): good enough for review-style text, as seed 001 uses on comments.
    """
    return [s.strip() for s in _SENTENCE_END.split(line) if s.strip()]

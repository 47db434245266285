"""Labelled examples for sequence classification: reading, label sets, splitting, encoding and batching.

Formats (``format: auto`` tells them by name):

* ``jsonl``: JSON Lines ``{"text": ..., "label": ...}`` (``.jsonl``, ``.jsonl.gz``; IMDB), field names
  configurable;
* ``csv`` / ``tsv``: a header row naming the columns, then one example per row (``.csv``, ``.tsv``, ``.gz``):
  CSV with the csv module's quoting (a quoted field may hold commas and line breaks), TSV split on tabs only
  (no quoting: a quote is a character of the text, as in the seq2seq TSV reader); a column read (the text's, the
  label's) may be named once only, the others any number of times (they are not read);
* ``folder``: one sub-folder per class holding one ``.txt`` file per text (the aclImdb layout; a class folder's
  name is its label and must be UTF-8). A sub-folder named ``unsup`` (aclImdb's 50,000 unlabelled reviews in
  ``train/unsup``) is no class, nor is ``__MACOSX`` (what macOS adds to a zip): each is skipped, with a line on
  stderr, and loose files (``urls_pos.txt``, ``labeledBow.feat``) are not read; ``classes`` (``data.classes``)
  names the class folders to read instead. A folder inside a class folder is not read either (a line on stderr
  names it), nor are hidden folders and files (a hidden ``.txt`` file, such as the ``._NAME.txt`` macOS puts beside
  each file of a tar, is named on stderr); a data set's root (aclImdb: ``train/`` and ``test/``, folders of class
  folders) is an error naming the split to give. Unlabelled (pretraining, texts to classify), every sub-folder
  holding ``.txt`` files is read, ``unsup`` too (an empty one is skipped, said on stderr), or, in a folder without
  them, its own ``.txt`` files;
* ``lines``: one text per line, no labels (what ``rnnkit classify --input`` reads);
* ``npz``: numeric sequences, ``X`` of shape [N, T, F], ``y`` of N labels (numbers, strings, or byte strings,
  read as UTF-8) and optionally ``lengths`` (N,) (valid steps of each padded row);
* ``idx``: IDX files (MNIST / Fashion-MNIST, gzip or not): the images file; each image is a sequence of
  its rows (28 steps of 28 features), scaled to [0, 1]; the labels file beside it is found by name
  (``...-images-idx3-ubyte`` -> ``...-labels-idx1-ubyte``, Kaggle's ``...-images.idx3-ubyte`` ->
  ``...-labels.idx1-ubyte``).

Every problem is one :class:`RnnkitError` naming the file and line (or example): a JSON line without the
text field, a JSON string holding a lone surrogate (``"\\udce9"``: no UTF-8 file can hold it), an empty text,
a missing label, a label that is not finite (nan) or holds a tab or line break, a label the model does not know
(validation and test files), ragged or wrong-width arrays, an IDX file whose magic number is not an images (labels)
file's or whose header does not match its size.
Unlabelled input (texts to classify, an autoencoder's corpus) is read without its labels: a label field, column
or array there is not looked at. Blank lines between JSON records and blank CSV/TSV rows are skipped, labelled or
not (a corpus), except in texts read to be answered (``answered``: classify / reconstruct --input, where answer k is
text k): there a blank line (row) followed by a text is an error naming it, and blank ones at the end are ignored.
In plain text every line is a text: a blank line is an error ("empty text") unless only blank lines follow it.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import os
import re
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property, partial
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.data.batching import BucketBatches, TokenBags
from rnnkit.data.readers import MAX_LINE_BYTES, check_file, check_unicode, clean_text, numbered_lines
from rnnkit.data.splits import held_out_parts
from rnnkit.data.tokenizers import Tokenizer
from rnnkit.data.vocab import OovCount, Vocab
from rnnkit.errors import RnnkitError, shown_value

FORMATS = ("auto", "jsonl", "csv", "tsv", "folder", "lines", "npz", "idx")
NUMERIC_FORMATS = ("npz", "idx")
TRUNCATE = ("pre", "post")
SPLIT_MODES = ("random", "tail")
#: IDX element types (the third byte of the magic number) and their big-endian NumPy dtypes
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
#: the dimensions (the fourth byte of the magic number) of each IDX file read: images [N, rows, columns], labels [N]
_IDX_DIMS = {"images": 3, "labels": 1}
#: the most bytes an IDX or .npz file may take decompressed (Fashion-MNIST's train images: 47 MB)
MAX_ARRAY_BYTES = 4 << 30
#: sub-folders of a folder per class that are no class: aclImdb's unlabelled reviews (aclImdb/train/unsup)
UNLABELLED_FOLDERS = ("unsup",)
#: names of the folders that split a data set (aclImdb/train, aclImdb/test), not classes
SPLIT_FOLDERS = ("train", "valid", "validation", "dev", "test")
#: sub-folders that hold no texts of the data set, labelled or not: what macOS adds to a zip archive
NOT_DATA_FOLDERS = ("__MACOSX",)


@dataclass
class Examples:
    """Texts or numeric sequences with their labels (None: unlabelled input).

    ``features``: (N, T, F) float32 with ``lengths`` (N,) valid steps, for numeric data; ``texts`` for text.
    ``where``: for each example, the line (text formats) or file (folder, arrays) it came from, as
    (path, line or None): errors about an example name it; ``label_at``, for labelled arrays, where each label is
    in its file (``y[7]``, ``image 7``), which errors about a label name too.
    """

    path: str
    labels: list[str] | None
    where: list[tuple[str, int | None]]
    texts: list[str] | None = None
    features: np.ndarray | None = None
    lengths: np.ndarray | None = None
    label_at: list[str] | None = None

    def __len__(self) -> int:
        return len(self.where)

    @property
    def numeric(self) -> bool:
        return self.features is not None

    def subset(self, indices: list[int]) -> Examples:
        pick = np.asarray(indices, dtype=np.int64)
        labels = None if self.labels is None else [self.labels[i] for i in indices]
        texts = None if self.texts is None else [self.texts[i] for i in indices]
        return Examples(self.path, labels, [self.where[i] for i in indices], texts,
                        None if self.features is None else self.features[pick],
                        None if self.lengths is None else self.lengths[pick],
                        None if self.label_at is None else [self.label_at[i] for i in indices])


@dataclass(frozen=True)
class ReadOptions:
    """How a file becomes examples (the ``data`` section's reading keys)."""

    format: str = "auto"
    text_field: str = "text"
    label_field: str = "label"
    strip_markup: bool = True
    classes: tuple[str, ...] = ()  # a folder per class: the class folders to read (empty: every one but unsup/)


def class_names(value: str) -> tuple[str, ...]:
    """``data.classes`` ("neg,pos") as folder names; a name given twice, or one that is a path, is an error."""
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    for name in names:
        if names.count(name) > 1:
            raise RnnkitError(f"data.classes names the folder '{name}' twice")
        if name in (".", "..") or "/" in name or "\\" in name:
            raise RnnkitError(f"data.classes: '{name}' is not a folder name (the class folders are inside the data "
                              "folder)")
    return names


# ------------------------------------------------------------------------------------------------ formats
def detect_format(path: str | Path, fmt: str = "auto") -> str:
    """The format of ``path``: ``fmt`` unless it is ``auto``, else told by the name (or a folder)."""
    if fmt not in FORMATS:
        raise RnnkitError(f"unknown data.format '{fmt}' ({' | '.join(FORMATS)})")
    if fmt != "auto":
        return fmt
    path = Path(path)
    if path.is_dir():
        return "folder"
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".npz"):
        return "npz"
    if "-ubyte" in name or name.endswith(".idx"):
        return "idx"
    for suffix in ("jsonl", "csv", "tsv"):
        if name.endswith(f".{suffix}"):
            return suffix
    return "lines"


def read_examples(path: str | Path, options: ReadOptions = ReadOptions(), labelled: bool = True,
                  max_examples: int = 0, answered: bool = False) -> Examples:
    """Examples of ``path`` (labels required when ``labelled``; else not read, even when present);
    ``max_examples`` > 0: the first that many; ``answered``: texts answered one by one (:func:`_blanks_dropped`)."""
    fmt = detect_format(path, options.format)
    if fmt == "folder":
        return _read_folder(Path(path), options, labelled, max_examples)
    path = check_file(path)
    if fmt == "npz":
        return _cut(_read_npz(path, labelled), max_examples)
    if fmt == "idx":
        return _cut(_read_idx_examples(path, labelled), max_examples)
    if fmt == "lines":
        if labelled:
            raise RnnkitError("plain text has no labels: give JSON Lines (.jsonl), CSV/TSV with a header, a "
                              "folder per class, .npz or IDX (or set data.format)", path)
        return _read_lines(path, options, max_examples, answered)
    if fmt == "jsonl":
        return _read_jsonl(path, options, labelled, max_examples, answered)
    return _read_table(path, options, labelled, max_examples, "\t" if fmt == "tsv" else ",", answered)


def _cut(examples: Examples, max_examples: int) -> Examples:
    return examples.subset(list(range(min(max_examples, len(examples))))) if max_examples else examples


def _text(raw: object, options: ReadOptions, path: Path, line: int | None, what: str) -> str:
    if not isinstance(raw, str):
        raise RnnkitError(f"the {what} is {type(raw).__name__}, not a string", path, line)
    check_unicode(raw, path, line, f"the {what}")
    text = clean_text(raw, options.strip_markup)
    if not text:
        raise RnnkitError(f"empty text{' (only markup)' if raw.strip() else ''}", path, line)
    return text


#: characters a label may not hold: rnnkit classify prints one label per line (FILE<tab>LABEL for a folder)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def label_name(raw: object, path: Path, line: int | None, what: str = "the label") -> str:
    """A label as the string rnnkit keeps (``1`` and ``"1"`` are the same class; a byte string is read as
    UTF-8); a list, object, null, a number that is not finite, or a control character (a tab, a line break) is
    an error naming ``what`` (an array's label: ``y[7]``)."""
    if isinstance(raw, bytes):  # np.savez of Python byte strings, h5py: dtype S
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise RnnkitError(f"{what} is a byte string that is not UTF-8 (invalid byte at {e.start + 1})", path,
                              line) from None
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise RnnkitError(f"{what} must be a string or a number, got {_shown(raw)[:40]}", path, line)
    if isinstance(raw, float) and not math.isfinite(raw):
        raise RnnkitError(f"{what} is {raw}: not a class (a label must be a finite number or a string)", path, line)
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    name = str(raw).strip()
    if not name:
        raise RnnkitError("empty label" if what == "the label" else f"{what} is empty", path, line)
    check_unicode(name, path, line, what)
    if _CONTROL.search(name):
        raise RnnkitError(f"{what} {name[:40]!r} holds a control character (a tab or line break): rnnkit prints one "
                          "label per line", path, line)
    return name


def _shown(raw: object) -> str:
    try:
        return json.dumps(raw)
    except (TypeError, ValueError):  # not JSON (a complex number of an array)
        return repr(raw)


def _jsonl_records(path: Path, max_examples: int, answered: bool):
    count = 0
    for number, line in _blanks_dropped(numbered_lines(path), lambda line: not line.strip(), answered, path, "line"):
        if max_examples and count == max_examples:
            return
        count += 1
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise RnnkitError(f"invalid JSON ({e.msg})", path, number) from None
        if not isinstance(record, dict):
            raise RnnkitError("a JSON line must be an object with a text and a label", path, number)
        yield number, record


def _read_jsonl(path: Path, options: ReadOptions, labelled: bool, max_examples: int, answered: bool) -> Examples:
    texts, labels, where = [], [], []
    for number, record in _jsonl_records(path, max_examples, answered):
        if options.text_field not in record:
            raise RnnkitError(f'JSON record has no "{options.text_field}" field (data.text_field)', path, number)
        texts.append(_text(record[options.text_field], options, path, number, f'"{options.text_field}" field'))
        if labelled:  # (texts to classify, an autoencoder's corpus: a label there is not looked at)
            if options.label_field not in record:
                raise RnnkitError(f'JSON record has no "{options.label_field}" field (data.label_field)', path,
                                  number)
            labels.append(label_name(record[options.label_field], path, number))
        where.append((str(path), number))
    return _texts(path, texts, labels, where)


def _blanks_dropped(numbered: Iterable[tuple[int, Any]], blank: Callable[[Any], bool], answered: bool, path: Path,
                    what: str) -> Iterator[tuple[int, Any]]:
    """``numbered`` ((line number, line or row) pairs) without its blank lines (rows): skipped in a corpus; in texts
    read to be ``answered`` (classify / reconstruct --input: answer k is text k) only those at the end of the file
    are, and one followed by a text is an error naming it (skipping it would shift every later answer)."""
    blank_at = 0
    for number, item in numbered:
        if blank(item):
            blank_at = blank_at or number
        elif answered and blank_at:
            raise RnnkitError(f"blank {what}: answer k is text k here, so only blank {what}s at the end of the file "
                              f"are skipped", path, blank_at)
        else:
            yield number, item


def _trailing_blanks_dropped(numbered: Iterable[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """``numbered`` (line number, line) pairs without the blank lines at the end; a blank one followed by a text is
    kept (for the reader to refuse)."""
    held: list[tuple[int, str]] = []
    for number, line in numbered:
        if not line.strip():
            held.append((number, line))
            continue
        yield from held
        held.clear()
        yield number, line


def _texts(path: Path, texts: list[str], labels: list[str], where: list) -> Examples:
    """Examples of texts, with ``labels`` (one per text) or unlabelled (``[]``)."""
    if not texts:
        raise RnnkitError("no examples in the file", path)
    return Examples(str(path), labels or None, where, texts=texts)


def _read_lines(path: Path, options: ReadOptions, max_examples: int, answered: bool) -> Examples:
    texts, where = [], []
    lines = numbered_lines(path)
    if answered:
        lines = _blanks_dropped(lines, lambda line: not line.strip(), answered, path, "line")
    else:  # a corpus in plain text keeps a blank line between texts an error ("empty text"), not those at its end
        lines = _trailing_blanks_dropped(lines)
    for number, line in lines:
        if max_examples and len(texts) >= max_examples:
            break
        texts.append(_text(line, options, path, number, "line"))
        where.append((str(path), number))
    return _texts(path, texts, [], where)


def _read_table(path: Path, options: ReadOptions, labelled: bool, max_examples: int, delimiter: str,
                answered: bool) -> Examples:
    """CSV or TSV with a header row naming the text and label columns (the label's only when ``labelled``)."""
    rows = _table_rows(path, delimiter)
    try:
        _, header = next(rows, (0, None))
        if header is None:
            raise RnnkitError("file is empty (no header row)", path)
        names = [name.strip() for name in header]
        columns = {name: k for k, name in enumerate(names)}
        for key, name in (("text_field", options.text_field), ("label_field", options.label_field)):
            if key == "label_field" and not labelled:  # a column not read may be anything, named twice too
                continue
            if name not in columns:
                raise RnnkitError(f"the header has no column '{name}' (data.{key}; columns: {', '.join(columns)})",
                                  path, 1)
            at = [str(k + 1) for k, other in enumerate(names) if other == name]
            if len(at) > 1:  # which one holds the text (the label) is a guess
                times = "twice" if len(at) == 2 else f"{len(at)} times"
                raise RnnkitError(f"the header names the column '{name}' {times} (columns {', '.join(at[:-1])} and "
                                  f"{at[-1]}; data.{key})", path, 1)
        text_col, label_col = columns[options.text_field], columns[options.label_field] if labelled else None
        texts, labels, where = [], [], []
        numbered = ((number, (last, row)) for (number, last), row in rows)
        for number, (last, row) in _blanks_dropped(numbered, lambda item: not any(cell.strip() for cell in item[1]),
                                                   answered, path, "row"):
            if max_examples and len(texts) >= max_examples:
                break
            if len(row) != len(header):
                hint = _row_hint(row, number, last, delimiter)
                raise RnnkitError(f"{len(row)} columns, the header has {len(header)}{hint}", path, number)
            texts.append(_text(row[text_col], options, path, number, f"'{options.text_field}' column"))
            if label_col is not None:
                labels.append(label_name(row[label_col], path, number))
            where.append((str(path), number))
    except csv.Error as e:
        raise RnnkitError(f"not valid CSV ({e})", path, e.line) from None
    return _texts(path, texts, labels, where)


def _row_hint(row: list[str], number: int, last: int, delimiter: str) -> str:
    """Why a row may have the wrong number of columns: a CSV quote left open, or a TSV written with quoting
    (Python's csv module and pandas quote a field holding a quote, tab or line break; we split on tabs only)."""
    if last > number:
        return f" (a quoted field opened on line {number} runs to line {last}: is a quote left open?)"
    if delimiter == "\t" and any(cell.startswith('"') for cell in row):
        return (" (TSV is split on tabs only, no quoting: a file written with quoting is not read as written; "
                "write it without quoting, or as CSV)")
    return ""


def _table_rows(path: Path, delimiter: str):
    """((first line, last line), cells) of each row of a CSV (``,``: the csv module's quoting, a quoted field may
    span lines) or TSV file (tab: split on tabs, no quoting); a csv.Error carries the line it stopped at
    (``line``). A quoted field still open at the end of the file is an error naming the line it opened on."""
    lines = numbered_lines(path)
    if delimiter == "\t":
        yield from (((number, number), line.split("\t")) for number, line in lines)
        return
    # a field may be as long as a line may (the readers' bound), not the csv module's default 128 KiB
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))
    ended = []  # set once the lines run out

    def source() -> Iterator[str]:
        yield from (line + "\n" for _, line in lines)  # a quoted line break stays one
        ended.append(True)

    reader = csv.reader(source(), delimiter=delimiter)
    while True:
        first = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            e.line = reader.line_num
            raise
        if ended:  # every line ends in a line break: a row read to the end of the file ran on inside a quote
            opened = reader.line_num - row[-1].count("\n") + 1  # the open field is the row's last, every line in it
            raise RnnkitError(f"a quoted field opened on this line runs to the end of the file (line "
                              f"{reader.line_num}): is a quote left open?", path, opened)
        yield (first, reader.line_num), row


def _read_folder(path: Path, options: ReadOptions, labelled: bool, max_examples: int) -> Examples:
    """aclImdb layout: ``path/CLASS/*.txt``, the folder name is the label; files in name order (module docstring:
    which folders are classes)."""
    if not path.is_dir():
        raise RnnkitError("folder not found", path)
    folders = _class_folders(path, options.classes, labelled)
    if not folders:
        if not labelled and _holds_texts(path):  # a folder of texts (aclImdb/train/unsup)
            folders = [path]
        elif not labelled:
            raise RnnkitError("no .txt files in it or its sub-folders", path)
        else:
            raise RnnkitError("no class folders (the layout is FOLDER/LABEL/*.txt)", path)
    texts, labels, where = [], [], []
    for folder in folders:
        files = _folder_texts(folder, labelled)
        if not files:
            raise RnnkitError("no .txt files in this class folder", folder)
        for file in files:
            raw = " ".join(line for _, line in numbered_lines(file))
            texts.append(_text(raw, options, file, None, "file"))
            labels.append(folder.name)
            where.append((str(file), None))
    examples = Examples(str(path), labels if labelled else None, where, texts=texts)
    if max_examples:  # spread over the classes, not the first class only
        order = np.random.default_rng(0).permutation(len(texts))[:max_examples]
        examples = examples.subset(sorted(order.tolist()))
    return examples


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def read_files(path: str | Path, classes: tuple[str, ...] = (), labelled: bool = True) -> list[Path]:
    """The files :func:`read_examples` reads of a folder (per class, or of texts), in its order, without its notes
    on stderr: what a run's data record hashes (rnnkit.api.data_record)."""
    path = Path(path)
    folders = _class_folders(path, classes, labelled, note=_quiet)
    if not folders and not labelled and _holds_texts(path):
        folders = [path]
    return [file for folder in folders for file in _folder_texts(folder, labelled, note=_quiet)]


def _quiet(message: str) -> None:
    """A note not printed (read_files lists again what the reader has said or will say)."""


def _folder_texts(folder: Path, labelled: bool, note: Callable[[str], None] = _note) -> list[Path]:
    """The ``.txt`` files of one folder, in name order; a folder inside it, or a hidden file, is not read, and stderr
    says so."""
    with os.scandir(folder) as scan:
        entries = list(scan)
    nested = sorted(f"{e.name}/" for e in entries if e.is_dir() and not e.name.startswith("."))
    if nested:
        kind = "class folder" if labelled else "folder"
        note(f"{folder}: {', '.join(nested)} inside it not read (a {kind}'s texts are its own .txt files)")
    files = [folder / e.name for e in entries if e.name.endswith(".txt") and e.is_file()]
    hidden = sorted(f.name for f in files if not _is_text(f))
    if hidden:  # one per text where macOS made the tar: name a few
        more = f" and {len(hidden) - 3:,} more" if len(hidden) > 3 else ""
        note(f"{folder}: {', '.join(hidden[:3])}{more}: {'a hidden file' if len(hidden) == 1 else 'hidden files'}, "
              "not read")
    return sorted(f for f in files if _is_text(f))


def _is_text(file: Path) -> bool:
    """Whether a file of a folder is one of its texts: a ``.txt`` file that is not hidden (macOS adds an AppleDouble
    ``._NAME.txt``, not text, beside each file of a tar it makes), as hidden folders are not read."""
    return file.name.endswith(".txt") and not file.name.startswith(".")


def _holds_texts(folder: Path) -> bool:
    return any(_is_text(f) for f in folder.glob("*.txt"))


def _class_folders(path: Path, classes: tuple[str, ...], labelled: bool,
                   note: Callable[[str], None] = _note) -> list[Path]:
    """The sub-folders of ``path`` read: ``classes`` when given (each must exist), else every one but hidden ones,
    ``__MACOSX`` and, for labelled examples, the unlabelled ``unsup``; unlabelled, one without .txt files is
    skipped (no class either). Each folder skipped is said on stderr."""
    if classes:
        for name in classes:
            if not (path / name).is_dir():
                raise RnnkitError(f"no class folder '{name}' here (data.classes: {', '.join(classes)})", path)
        return [path / name for name in classes]
    found = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    skipped = [p.name for p in found if p.name in NOT_DATA_FOLDERS or labelled and p.name in UNLABELLED_FOLDERS]
    folders = [p for p in found if p.name not in skipped]
    _check_not_splits(path, folders)
    if skipped:
        why = "; ".join(f"{name}/ {_SKIPPED_WHY.get(name, 'holds unlabelled texts, not a class')}" for name in skipped)
        if labelled and not folders:
            raise RnnkitError(f"no class folders ({why}; the layout is FOLDER/LABEL/*.txt)", path)
        note(f"{path}: {why}: not read" + (" (data.classes names the class folders)" if labelled else ""))
    if not labelled:
        texts = [p for p in folders if _holds_texts(p)]
        for folder in (p for p in folders if texts and p not in texts):  # all empty: none read, an error
            note(f"{folder}: no .txt files: not read")
        return texts
    for folder in folders:
        _check_label_name(folder)
    return folders


#: why a folder of NOT_DATA_FOLDERS is not read (else: it is one of UNLABELLED_FOLDERS)
_SKIPPED_WHY = {"__MACOSX": "is what macOS adds to a zip archive, not a class"}


def _check_label_name(folder: Path) -> None:
    """A class folder's name is its label, saved in labels.json: a name that is not UTF-8 (an old archive's
    Latin-1, read with surrogate escapes) cannot be."""
    try:
        folder.name.encode("utf-8")
    except UnicodeEncodeError:
        raise RnnkitError("the class folder's name is not UTF-8 (it would be the label): rename it", folder) from None


def _check_not_splits(path: Path, folders: list[Path]) -> None:
    """A data set's root (aclImdb: train/ and test/, each a folder per class) read as a folder per class is an
    error that names the folder to give instead."""
    nested = folders and all(any(p.is_dir() and not p.name.startswith(".") for p in f.iterdir()) for f in folders)
    # aclImdb's train/ holds loose .txt files (urls_pos.txt): a split by its name, or a folder of folders only
    if nested and any(f.name in SPLIT_FOLDERS or not _holds_texts(f) for f in folders):
        names = ", ".join(f"{f.name}/" for f in folders)
        given = next((f for f in folders if f.name == "test"), folders[0])
        raise RnnkitError(f"holds {names}: folders of class folders (a data set's splits), not classes: give one of "
                          f"them ({given})", path)


# ------------------------------------------------------------------------------------------------ arrays
#: what to store instead of an object array (which NumPy reads only by unpickling: never done), per array
_OBJECT_ARRAYS = {
    "X": "holds an object array (ragged sequences?): store X as one padded [N, T, F] number array, with 'lengths' "
         "giving each row's valid steps",
    "y": "holds an object array as y: store the labels as numbers or strings (e.g. y.astype(str))",
    "lengths": "holds an object array as lengths: store them as integers"}


def _read_npz(path: Path, labelled: bool) -> Examples:
    """X, lengths and (when ``labelled``; else not read) y of a .npz file."""
    names = ("X", "y", "lengths") if labelled else ("X", "lengths")
    arrays = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            for name in (n for n in names if n in data.files):
                try:
                    arrays[name] = data[name]
                except ValueError as e:
                    if "allow_pickle" not in str(e):
                        raise
                    raise RnnkitError(_OBJECT_ARRAYS[name], path) from None
    except ValueError as e:
        raise RnnkitError(f"not a readable .npz file ({e})", path) from None
    except (OSError, zlib.error, EOFError, zipfile.BadZipFile) as e:
        raise RnnkitError(f"not a readable .npz file ({e})", path) from None
    if "X" not in arrays:
        raise RnnkitError("has no array 'X' (the sequences, [N, T, F])", path)
    x = arrays["X"]
    if x.ndim != 3 or not np.issubdtype(x.dtype, np.number) or 0 in x.shape:
        raise RnnkitError(f"X must be a non-empty [N, T, F] number array, got shape {list(x.shape)} of {x.dtype}", path)
    if np.issubdtype(x.dtype, np.complexfloating):  # float32() would drop the imaginary parts with a mere warning
        raise RnnkitError(f"X holds complex numbers ({x.dtype}): the features must be real", path)
    features = x.astype(np.float32)
    check_finite(features, path)
    lengths = _npz_lengths(arrays.get("lengths"), x.shape, path)
    labels = None
    if "y" in arrays:
        y = arrays["y"]
        if y.ndim != 1 or len(y) != x.shape[0]:
            raise RnnkitError(f"y must hold one label per row of X ({x.shape[0]}), got shape {list(y.shape)}", path)
        labels = [label_name(v.item() if hasattr(v, "item") else v, path, None, f"y[{row}]")
                  for row, v in enumerate(y)]
    elif labelled:
        raise RnnkitError("has no array 'y' (one label per row of X)", path)
    return Examples(str(path), labels, [(str(path), None)] * x.shape[0], features=features, lengths=lengths,
                    label_at=None if labels is None else [f"y[{row}]" for row in range(len(labels))])


def check_finite(features: np.ndarray, path: str | Path, row: str = "X row", first: int = 0) -> None:
    """An error naming the first row of ``features`` (N, T, F) that holds nan or inf (a value beyond float32 has
    become inf) as ``{row} {first + n}``: the .npz reader's rows and ``Classifier.classify``'s inputs."""
    bad = ~np.isfinite(features).all(axis=(1, 2))
    if bad.any():
        raise RnnkitError(f"{row} {first + int(bad.argmax())} holds a value that is not finite (nan or inf)", path)


def _npz_lengths(lengths: np.ndarray | None, shape: tuple, path: Path) -> np.ndarray:
    if lengths is None:
        return np.full(shape[0], shape[1], dtype=np.int64)
    if lengths.shape != (shape[0],) or not np.issubdtype(lengths.dtype, np.integer):
        raise RnnkitError(f"lengths must be {shape[0]} integers (one per row of X), got shape {list(lengths.shape)} "
                          f"of {lengths.dtype}", path)
    bad = (lengths < 1) | (lengths > shape[1])
    if bad.any():
        row = int(bad.argmax())
        raise RnnkitError(f"lengths[{row}] is {int(lengths[row])}: it must lie in 1..{shape[1]} (the steps of X)", path)
    return lengths.astype(np.int64)


def _read_bounded(path: Path) -> bytes:
    """The (decompressed) bytes of a file, read in chunks: one larger than :data:`MAX_ARRAY_BYTES` is an error
    before it fills the memory."""
    chunks, size = [], 0
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            while chunk := f.read(1 << 24):
                size += len(chunk)
                if size > MAX_ARRAY_BYTES:
                    raise RnnkitError(f"is larger than {MAX_ARRAY_BYTES >> 30} GiB", path)
                chunks.append(chunk)
    except (OSError, EOFError, zlib.error) as e:
        raise RnnkitError(f"cannot read ({e})", path) from None
    return b"".join(chunks)


def read_idx(path: Path, what: str) -> np.ndarray:
    """An IDX array (gzip or not) of ``what`` ("images": [N, rows, columns], "labels": [N]), its magic number (0 0
    TYPE DIMS) checked, then its header against the size of the data."""
    raw = _read_bounded(path)
    if len(raw) < 4:
        raise RnnkitError(f"not an IDX {what} file ({len(raw)} bytes: no magic number)", path)
    ndim = _IDX_DIMS[what]
    if raw[0] or raw[1] or raw[2] not in _IDX_TYPES or raw[3] != ndim:
        expected = (raw[2] if raw[2] in _IDX_TYPES else 0x08) << 8 | ndim  # of this element type, else bytes
        raise RnnkitError(f"not an IDX {what} file (magic 0x{int.from_bytes(raw[:4], 'big'):08x}; expected "
                          f"0x{expected:08x})", path)
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise RnnkitError(f"the header of {ndim} dimensions is cut short ({len(raw)} bytes)", path)
    dims = [int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim)]
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise RnnkitError(f"the header says {' x '.join(map(str, dims))} ({expected:,} bytes) but the file holds "
                          f"{len(raw):,} bytes", path)
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def labels_file(images: Path) -> Path | None:
    """The IDX labels file beside an images file, by name: ``*-images-idx3-ubyte*`` -> ``*-labels-idx1-ubyte*`` (as
    MNIST ships them), ``*-images.idx3-ubyte*`` -> ``*-labels.idx1-ubyte*`` (as Kaggle does); None for a name that
    says neither."""
    name, found = re.subn(r"images([-.])idx3", r"labels\1idx1", images.name, count=1)
    return images.with_name(name) if found else None


def _read_idx_examples(path: Path, labelled: bool) -> Examples:
    images = read_idx(path, "images")
    # grey levels 0-255 -> [0, 1] (seed 003: x / 255.0)
    scale = 255.0 if images.dtype.kind == "u" and images.dtype.itemsize == 1 else 1.0
    features = (images.astype(np.float32) / scale)
    n, steps = images.shape[0], images.shape[1]
    labels = _idx_labels(path, n) if labelled else None  # images to classify: a labels file is not read
    return Examples(str(path), labels, [(str(path), None)] * n, features=features,
                    lengths=np.full(n, steps, dtype=np.int64),
                    label_at=None if labels is None else [f"image {row}" for row in range(n)])


def _idx_labels(images: Path, n: int) -> list[str]:
    """The labels of the ``n`` images of ``images``, from the labels file beside it."""
    label_path = labels_file(images)
    if label_path is None:
        raise RnnkitError("no labels file found for these images: the labels are found by name "
                          "(...-images-idx3-ubyte -> ...-labels-idx1-ubyte)", images)
    if not label_path.is_file():
        raise RnnkitError(f"no labels file beside the images ({label_path.name} expected)", images)
    values = read_idx(label_path, "labels")
    if values.shape != (n,):
        raise RnnkitError(f"holds {list(values.shape)} labels, the images file {images.name} {n} images", label_path)
    return [str(int(v)) for v in values]


# ------------------------------------------------------------------------------------------------ labels
def label_set(labels: list[str]) -> list[str]:
    """The classes in a stable order: numerically when every label is an integer (0, 1, ..., 10), else by name."""
    names = sorted(set(labels))
    if all(re.fullmatch(r"-?\d+", n) for n in names):
        names.sort(key=int)
    return names


def label_ids(examples: Examples, classes: list[str]) -> list[int]:
    """Class ids of ``examples``' labels; a label outside ``classes`` is an error naming its line (row)."""
    index = {name: i for i, name in enumerate(classes)}
    ids = []
    for k, (label, (path, line)) in enumerate(zip(examples.labels or [], examples.where, strict=False)):
        if label not in index:
            shown = ", ".join(map(_listed, classes[:10])) + (" ..." if len(classes) > 10 else "")
            at = f"{examples.label_at[k]}; " if examples.label_at else ""
            raise RnnkitError(f"unknown label {shown_value(label)} ({at}the model's labels: {shown})", path, line)
        ids.append(index[label])
    return ids


def _listed(label: str) -> str:
    """One of ten labels in a message: as it is, or cut short when long (data.label_field naming a text field
    makes each text a label)."""
    shown = shown_value(label, 30)
    return label if shown == repr(label) else shown


def split_examples(data: Examples, valid_fraction: float, test_fraction: float, mode: str = "random",
                   seed: int = 0) -> tuple[Examples, Examples, Examples]:
    """(train, valid, test) out of one set: ``random`` (a permutation seeded by ``seed``: IMDB is sorted by
    label) or ``tail`` (file order, the held-out parts at its end, as Keras' ``validation_split``)."""
    parts = held_out_parts(len(data), valid_fraction, test_fraction, mode, seed, "examples", data.path)
    train, valid, test = (data.subset(part) for part in parts)
    return train, valid, test


# ------------------------------------------------------------------------------------------------ encoding
def truncate(seq, max_length: int, side: str):
    """At most ``max_length`` items (0: all): ``post`` keeps the start, ``pre`` the end (Keras' truncating)."""
    if not max_length or len(seq) <= max_length:
        return seq
    return seq[-max_length:] if side == "pre" else seq[:max_length]


def encode_texts(examples: Examples, tokenizer: Tokenizer, vocab: Vocab, max_length: int,
                 side: str) -> list[list[int]]:
    """Token ids of each text, truncated; a text with no tokens is an error naming its line."""
    return [truncate(ids, max_length, side) for ids in text_ids(examples, tokenizer, vocab)]


def text_ids(examples: Examples, tokenizer: Tokenizer, vocab: Vocab) -> Iterator[list[int]]:
    """Token ids of each text, whole, one text at a time; a text with no tokens is an error naming its line."""
    for text, (path, line) in zip(examples.texts or [], examples.where, strict=True):
        tokens = tokenizer.tokenize(text)
        if not tokens:
            raise RnnkitError("empty text (no tokens)", path, line)
        yield vocab.encode(tokens)


@dataclass
class ClassifyBatch:
    """inputs: (T, B) ids or (T, B, F) features, time-major, or B texts as :class:`TokenBags` (the bag of
    means'); lengths (B,) valid steps; labels (B,) class ids (None for unlabelled input)."""

    inputs: torch.Tensor | TokenBags
    lengths: torch.Tensor
    labels: torch.Tensor | None

    def to(self, device: torch.device) -> ClassifyBatch:
        return ClassifyBatch(self.inputs.to(device), self.lengths.to(device),
                             None if self.labels is None else self.labels.to(device))


@dataclass
class UnknownTokens:
    """What the model reads as <unk> in a set of texts: ``count``, its tokens outside the vocabulary; ``texts``, the
    indices of the texts of which it knows no token it reads (it sees nothing of them)."""

    count: OovCount
    texts: list[int]


@dataclass
class Encoded:
    """A set ready to batch: ``ids`` (text) or ``features`` + ``lengths`` (numeric), and class ids."""

    lengths: list[int]
    labels: list[int] | None
    ids: list[list[int]] | None = None
    features: torch.Tensor | None = None  # (N, T, F)
    cut: frozenset[int] = frozenset()  # the texts truncated (data.max_length): ``ids`` holds the part kept

    def __len__(self) -> int:
        return len(self.lengths)

    @cached_property
    def unknown(self) -> UnknownTokens:
        """The texts' <unk> ids (what the model reads, truncation included), counted once on the ids: a large file
        is not tokenized again."""
        count = OovCount()
        return UnknownTokens(count, [i for i, seq in enumerate(self.ids) if count.add_ids(seq) == len(seq)])

    @cached_property
    def id_rows(self) -> list[np.ndarray]:
        """``ids`` as int64 arrays, made once: a batch then copies slices, not one Python int per token."""
        return [np.asarray(seq, dtype=np.int64) for seq in self.ids]

    @cached_property
    def id_table(self) -> np.ndarray | None:
        """``ids`` padded into one (N, longest) int64 array, made once, so that a batch is one gather (~2x
        faster than copying its rows on IMDB's batches of 512); None, and batches copy rows, where padding would
        more than double the memory of the ids (a few sequences much longer than the rest)."""
        if not _pads_compactly(np.asarray(self.lengths, dtype=np.int64)):
            return None
        longest = max(self.lengths, default=0)
        table = np.full((len(self.lengths), max(longest, 1)), Vocab.pad_id, dtype=np.int64)
        for i, seq in enumerate(self.ids):
            table[i, : len(seq)] = seq
        return table

    @cached_property
    def distinct_tokens(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each text's distinct token ids, ascending, text after text (M,); each one's share of its text (its
        count / the text's length, float32, (M,)); where each text's entries start (N + 1,). Made once, so a batch
        of :class:`TokenBags` is one gather."""
        lengths = np.asarray(self.lengths, dtype=np.int64)
        flat = np.fromiter(chain.from_iterable(self.ids), dtype=np.int32, count=int(lengths.sum()))
        if _pads_compactly(lengths):  # a few times faster than one np.unique over (text, token) keys
            ids, counts, sizes = _runs_in_sorted_rows(flat, lengths)
        else:
            ids, counts, sizes = _distinct_keys(flat, lengths)
        shares = (counts / np.repeat(lengths, sizes)).astype(np.float32)
        return ids.astype(np.int64), shares, np.concatenate([[0], np.cumsum(sizes)])


def _pads_compactly(lengths: np.ndarray) -> bool:
    """Whether padding sequences of ``lengths`` to the longest at most doubles their size."""
    return len(lengths) * int(lengths.max(initial=0)) <= 2 * int(lengths.sum())


def _runs_in_sorted_rows(flat: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Texts ``flat`` (their tokens, text after text) of ``lengths`` -> each text's distinct tokens, ascending,
    text after text; how often each occurs in its text; how many each text has: each text's row of a padded
    table sorted, and its runs of equal tokens counted."""
    width, padding = max(int(lengths.max(initial=0)), 1), np.iinfo(flat.dtype).max  # padding sorts last
    table = np.full((len(lengths), width), padding, dtype=flat.dtype)
    table[np.arange(width) < lengths[:, None]] = flat
    table.sort(axis=1)
    first = np.empty(table.shape, dtype=bool)  # where each run starts; a row's padding is one more run
    first[:, 0] = True
    np.not_equal(table[:, 1:], table[:, :-1], out=first[:, 1:])
    starts = np.flatnonzero(first)
    counts, tokens = np.diff(starts, append=table.size), table.reshape(-1)[starts]
    real = tokens != padding
    return tokens[real], counts[real], np.bincount(starts[real] // width, minlength=len(lengths))


def _distinct_keys(flat: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As :func:`_runs_in_sorted_rows`, for texts too unequal to pad: one np.unique over (text, token) keys."""
    bound = int(flat.max(initial=0)) + 1
    keys, counts = np.unique(np.repeat(np.arange(len(lengths)), lengths) * bound + flat, return_counts=True)
    return keys % bound, counts, np.bincount(keys // bound, minlength=len(lengths))


def encode_features(examples: Examples, features: int, max_length: int, side: str) -> tuple[torch.Tensor, list[int]]:
    """(N, T', F) features truncated to ``max_length`` steps, and lengths; a width other than ``features``
    is an error naming the file."""
    x, lengths = examples.features, examples.lengths
    if x.shape[2] != features:
        raise RnnkitError(f"sequences of {x.shape[2]} features per step, the model reads {features}", examples.path)
    if max_length and x.shape[1] > max_length:
        if side == "pre":  # keep each row's last max_length valid steps, moved to the start
            starts = np.maximum(lengths - max_length, 0)
            x = np.stack([row[s: s + max_length] for row, s in zip(x, starts, strict=True)])
        else:
            x = x[:, :max_length]
        lengths = np.minimum(lengths, max_length)
    return torch.from_numpy(np.ascontiguousarray(x)), lengths.tolist()


def warp_randomly(inputs: torch.Tensor, lengths: torch.Tensor, shift: int, rotate: float = 0.0,
                  scale: float = 0.0) -> torch.Tensor:
    """Numeric inputs (T, B, F), each example's plane of valid steps x features moved as an image: turned by a
    random angle in [-rotate, rotate] degrees and zoomed by a factor in [1 - scale, 1 + scale] about its centre,
    then shifted by whole steps and features in [-shift, shift]; bilinear, zeros fill what comes in, padding
    stays padding. For images read row by row, the classic MNIST augmentation (data.augment_*); the torch RNG
    draws, so a resume repeats it."""
    steps, batch, width = inputs.shape
    device = inputs.device
    lengths = lengths.to(device)
    valid = (torch.arange(steps, device=device)[:, None] < lengths[None, :]).unsqueeze(-1)  # (T, B, 1)
    image = (inputs * valid).permute(1, 0, 2).unsqueeze(1)  # (B, 1, T, F)

    def uniform(limit: float) -> torch.Tensor:  # (B, 1, 1) draws in [-limit, limit]
        return ((torch.rand(batch, device=device) * 2 - 1) * limit).view(batch, 1, 1)

    def whole(limit: int) -> torch.Tensor:
        return torch.randint(-limit, limit + 1, (batch,), device=device).float().view(batch, 1, 1)

    angle, zoom = uniform(math.radians(rotate)), 1 + uniform(scale)
    centre_step, centre_feature = ((lengths.float() - 1) / 2).view(batch, 1, 1), (width - 1) / 2
    # each output position, relative to the centre and unshifted, is turned back and unzoomed to its source
    d_step = torch.arange(steps, device=device).float().view(1, steps, 1) - centre_step - whole(shift)
    d_feature = torch.arange(width, device=device).float().view(1, 1, width) - centre_feature - whole(shift)
    cos, sin = angle.cos(), angle.sin()
    src_step = (cos * d_step - sin * d_feature) / zoom + centre_step
    src_feature = (sin * d_step + cos * d_feature) / zoom + centre_feature
    grid = torch.stack([(2 * src_feature + 1) / width - 1, (2 * src_step + 1) / steps - 1], dim=-1)  # x, y
    moved = torch.nn.functional.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return moved.squeeze(1).permute(1, 0, 2) * valid


def _lengths_and_labels(data: Encoded, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
    lengths = torch.tensor([data.lengths[i] for i in indices], dtype=torch.long)
    return lengths, None if data.labels is None else torch.tensor([data.labels[i] for i in indices], dtype=torch.long)


def collate(data: Encoded, indices: list[int]) -> ClassifyBatch:
    """The examples ``indices`` as one padded, time-major batch."""
    lengths, labels = _lengths_and_labels(data, indices)
    if data.ids is not None:  # batching.pad's result, from the padded table or the rows' arrays
        width = max(int(lengths.max()), 1)
        if data.id_table is not None:
            return ClassifyBatch(torch.from_numpy(data.id_table[indices, :width].T.copy()), lengths, labels)
        padded = np.full((len(indices), width), Vocab.pad_id, dtype=np.int64)
        for b, row in enumerate(data.id_rows[i] for i in indices):
            padded[b, : len(row)] = row
        return ClassifyBatch(torch.from_numpy(padded.T.copy()), lengths, labels)
    inputs = data.features[indices, : int(lengths.max())].transpose(0, 1).contiguous()
    return ClassifyBatch(inputs, lengths, labels)


def collate_bags(data: Encoded, indices: list[int]) -> ClassifyBatch:
    """The texts ``indices`` as one batch of :class:`TokenBags`, each text's distinct tokens."""
    ids, shares, starts = data.distinct_tokens
    chosen = np.asarray(indices, dtype=np.int64)
    first, sizes = starts[chosen], starts[chosen + 1] - starts[chosen]
    offsets = np.cumsum(sizes) - sizes
    entries = np.repeat(first - offsets, sizes) + np.arange(int(sizes.sum()))
    bags = TokenBags(torch.from_numpy(ids[entries]), torch.from_numpy(shares[entries]), torch.from_numpy(offsets))
    return ClassifyBatch(bags, *_lengths_and_labels(data, indices))


def example_batches(data: Encoded, batch_size: int, shuffle: bool = True, seed: int = 0, rank: int = 0,
                    world: int = 1, bags: bool = False) -> BucketBatches:
    """:class:`BucketBatches` of a set (``num_tokens``: its steps in all); ``bags``: texts as
    :class:`TokenBags` (:func:`collate_bags`), else padded."""
    return BucketBatches(data.lengths, partial(collate_bags if bags else collate, data), batch_size, shuffle=shuffle,
                         seed=seed, rank=rank, world=world)


def describe_sizes(sizes: dict[str, int]) -> str:
    return ", ".join(f"{n:,} {split}" for split, n in sizes.items() if n)


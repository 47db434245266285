"""The one exception type users see: a clear message naming the file, line and problem."""

from __future__ import annotations

from pathlib import Path


class RnnkitError(Exception):
    """A problem with the user's input (file, config, prompt, model dir).

    The CLI prints ``error: <message>`` and exits with status 2; no traceback, nothing half-written.
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        where = place(path, line)
        super().__init__(f"{where}: {message}" if where else message)


def place(path: str | Path | None, line: int | None = None) -> str | None:
    """A file (or ``--set``) and line as an error's prefix names them: ``r.yaml:3``, ``r.yaml``; None without a path."""
    return None if path is None else f"{path}:{line}" if line is not None else str(path)


def shown_value(value, limit: int = 60) -> str:
    """``repr(value)`` cut short for a message: a wrong value may be a huge list or string (a whole review)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({type(value).__name__})"


def parse_json(text: str | bytes):
    """``json.loads`` for files rnnkit reads back: nesting too deep for the parser is a ValueError (like any
    malformed JSON) rather than a RecursionError, so every caller's "is corrupt" error covers it."""
    import json

    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None

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
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)

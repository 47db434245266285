"""One writer per model directory: an exclusive ``flock`` on ``rnnkit.lock`` held for a run's lifetime.

A new run, ``--resume``, ``--overwrite`` and the demo take the lock before they write into a model
directory (rank 0 under torchrun); a second writer is refused with a message naming the holder. The
kernel drops a ``flock`` when its process dies, so a killed run never leaves a stale lock behind. The
lock file is never deleted (deleting it would let two processes lock two different files).
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import socket
import stat
import sys
import time
from pathlib import Path

from rnnkit.errors import RnnkitError, parse_json

LOCK_FILE = "rnnkit.lock"
_MAX_HOLDER_BYTES = 1 << 20  # what a second writer reads of the holder's note (a command line is far shorter)


def _holder_info() -> dict:
    """Who holds the lock, for the message a second writer gets."""
    argv = list(sys.argv)
    if argv and Path(argv[0]).name in ("rnnkit", "__main__.py"):  # the console script or python -m rnnkit
        argv[0] = "rnnkit"
    return {"pid": os.getpid(), "host": socket.gethostname(), "command": shlex.join(argv),
            "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def _describe_holder(fd: int) -> str:
    """The holder's pid, host, command and start time, as it wrote them (best effort: it may be mid-write)."""
    try:
        info = parse_json(os.pread(fd, min(os.fstat(fd).st_size, _MAX_HOLDER_BYTES), 0).decode("utf-8"))
        return (f"pid {int(info['pid'])} on {info['host']}, since {info['since']}: {info['command']}")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, OSError):
        return "a process that has not said who it is yet"


class ModelDirLock:
    """An exclusive lock on a model directory; a context manager that releases it on exit."""

    def __init__(self, model_dir: Path, fd: int):
        self.model_dir, self._fd = model_dir, fd

    @classmethod
    def acquire(cls, model_dir: str | Path) -> ModelDirLock:
        """Lock ``model_dir`` (which must exist) or raise RnnkitError naming the process that holds it."""
        model_dir = Path(model_dir)
        path = model_dir / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except OSError as e:
            raise RnnkitError(f"cannot open the lock file ({e.strerror}; it must be a plain file rnnkit made)",
                              path) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise RnnkitError("the lock file is not a plain file", path)
            if info.st_nlink != 1:  # a hard link to another file: writing the holder's note would change it
                raise RnnkitError(f"the lock file has {info.st_nlink} hard links, so it is also another file, "
                                  "which rnnkit will not write to: remove it (rnnkit makes a new one)", path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RnnkitError(f"another rnnkit process is writing this model directory ({_describe_holder(fd)}); "
                                  "wait for it to finish or stop it", model_dir) from None
            if os.stat(path, follow_symlinks=False).st_ino != os.fstat(fd).st_ino:
                raise RnnkitError("the lock file was replaced while rnnkit locked it; try again", path)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(_holder_info()).encode("utf-8"), 0)
        except BaseException:
            os.close(fd)
            raise
        return cls(model_dir, fd)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)  # nobody holds it now
        finally:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None

    def __enter__(self) -> ModelDirLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

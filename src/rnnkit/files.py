"""Writing files safely, without torch: atomic writes (a temporary name in the same folder, then a
rename) and the checks on a file the user asked rnnkit to write (``--json``, ``--output``).

Torch-free so that light commands (``rnnkit data toy``) start in a fraction of a second.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from rnnkit.errors import RnnkitError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: the permissions a plain ``open()`` would give (mkstemp/mkdtemp make 0600/0700, private to the user)
FILE_MODE, DIR_MODE = 0o666 & ~_umask(), 0o777 & ~_umask()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def check_output_file(path: str | Path, option: str) -> None:
    """A file the user asked rnnkit to write (``option``, e.g. --json) may be new or a plain file; never a
    folder, a symbolic link or a device, pipe or socket (rnnkit would replace it)."""
    parent = Path(path).parent
    if not parent.is_dir():  # rnnkit makes no folders the user did not ask for
        problem = "is not a folder" if os.path.lexists(parent) else "does not exist (create it first)"
        raise RnnkitError(f"{option}: {parent} {problem}", path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise RnnkitError(f"{option}: cannot use this path ({e.strerror})", path) from None
    if stat.S_ISDIR(mode):
        raise RnnkitError(f"{option} names a folder; give a file name", path)
    if stat.S_ISLNK(mode):
        raise RnnkitError(f"{option} names a symbolic link; rnnkit does not replace links (give the file "
                          "itself or a new name)", path)
    if not stat.S_ISREG(mode):
        raise RnnkitError(f"{option} names a device, pipe or socket, not a file; give a file name", path)


def write_output_file(path: str | Path, text: str, option: str) -> None:
    """Write a file the user asked for (``option``), atomically, after :func:`check_output_file`."""
    check_output_file(path, option)
    try:
        atomic_write_text(path, text)
    except OSError as e:
        raise RnnkitError(f"{option}: cannot write the file ({e.strerror})", path) from None

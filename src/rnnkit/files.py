"""Writing files safely, without torch: atomic writes (a temporary name in the same folder, then a
rename) and the checks on a file the user asked rnnkit to write (``--json``, ``--output``).

Torch-free so that light commands (``rnnkit data toy``) start in a fraction of a second.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Sequence
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


#: what marks a folder as a model directory (checkpoint.MARKER_FILE, the ownership marker, and WEIGHTS_FILE):
#: no file the user asks for is written into one, or into a folder inside it (its checkpoint/)
MARKER = "rnnkit.json"  # what a run writes first into its folder (rnnkit.checkpoint.MARKER_FILE)
MODEL_DIR_FILES = (MARKER, "model.safetensors")


def check_output_file(path: str | Path, option: str, overwrite: bool = False,
                      inputs: Sequence[tuple[str, str | Path | None]] = ()) -> None:
    """A file the user asked rnnkit to write (``option``, e.g. --json) must be new, or with ``overwrite`` an
    existing plain file; never a folder, a symbolic link or a device, pipe or socket. Even with ``overwrite``,
    never one of ``inputs`` ((option, path) of what the command reads: --data, a file or a folder) or a file in
    a model directory (its weights, labels, vocabulary: rnnkit writes there only when it trains)."""
    parent = Path(path).parent
    if not parent.is_dir():  # rnnkit makes no folders the user did not ask for
        problem = "is not a folder" if os.path.lexists(parent) else "does not exist (create it first)"
        raise RnnkitError(f"{option}: {parent} {problem}", path)
    _check_not_protected(Path(path), option, inputs)
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
    if not overwrite:
        raise RnnkitError(f"{option}: the file exists, and rnnkit does not replace a file unasked (give a new "
                          "name, or --overwrite to replace it)", path)


def check_distinct_outputs(outputs: Sequence[tuple[str, str | Path | None]]) -> None:
    """No two of a command's output files ((option, path), e.g. --json and --confusion-png) are one file: the
    second written would replace the first. Checked before anything loads, so no output is lost."""
    given = [(option, path) for option, path in outputs if path]
    for index, (option, path) in enumerate(given):
        for earlier, earlier_path in given[:index]:
            if _same_file(_target(Path(path)), _target(Path(earlier_path))):
                raise RnnkitError(f"{earlier} and {option} name the same file (give each its own name)", path)


def _target(path: Path) -> Path:
    """``path`` with its folder resolved: a link to a folder is followed; the file's own name is not."""
    return path.parent.resolve() / path.name


def check_not_input(path: str | Path, option: str, inputs: Sequence[tuple[str, str | Path | None]]) -> None:
    """``path`` (a file or folder rnnkit is to write, named by ``option``) is none of the command's ``inputs``
    ((option, path): a file or a folder) and lies in no input folder: a file written into a data folder would be
    read as data (a model's folder inside a folder per class, as a class)."""
    target = _target(Path(path))
    for input_option, given in inputs:
        if given is None:
            continue
        source = Path(given).resolve()
        if _same_file(target, source):
            raise RnnkitError(f"{option} names the {input_option} {'folder' if source.is_dir() else 'file'}: rnnkit "
                              "does not write over its input (give another name)", path)
        if source.is_dir() and source in target.parents:
            raise RnnkitError(f"{option} lies in the {input_option} folder: rnnkit does not write into its input, "
                              "where it would be read as data (give a path outside it)", path)


def _check_not_protected(path: Path, option: str, inputs: Sequence[tuple[str, str | Path | None]]) -> None:
    """``path`` is none of the command's inputs, lies in no input folder and in no model directory."""
    check_not_input(path, option, inputs)
    folder = _model_dir_holding(_target(path))
    if folder:
        raise RnnkitError(f"{option}: {folder} is a model directory: rnnkit writes into one only when it trains "
                          "(give a path outside it)", path)


def _model_dir_holding(target: Path) -> Path | None:
    """The model directory ``target`` lies in as one of its files: its folder, or the folder of its checkpoint/."""
    # a model directory's files lie in it or in its checkpoint/: a folder further up holding a model.safetensors of
    # its own (a project's root) does not make every folder below it one
    folders = [target.parent, *([target.parent.parent] if target.parent.name == "checkpoint" else [])]
    return next((folder for folder in folders if any((folder / name).is_file() for name in MODEL_DIR_FILES)), None)


def _same_file(a: Path, b: Path) -> bool:
    """The same path, or two names of one file (a hard link)."""
    try:
        return a == b or os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def write_output_file(path: str | Path, text: str, option: str, overwrite: bool = False,
                      inputs: Sequence[tuple[str, str | Path | None]] = ()) -> None:
    """Write a file the user asked for (``option``), atomically, after :func:`check_output_file`."""
    check_output_file(path, option, overwrite, inputs)
    try:
        atomic_write_text(path, text)
    except OSError as e:
        raise RnnkitError(f"{option}: cannot write the file ({e.strerror})", path) from None


def data_fingerprint(path: str | Path, read: Sequence[Path] | None = None) -> dict[str, int | str]:
    """``{"bytes", "sha256"}`` of a data file, or of a folder: the files its reader reads (``read``; default every
    file under it), in the order of their relative paths, hashed as path, size and contents, so a file renamed,
    added, removed or edited changes it. Streamed: a 25 MB file costs a fraction of a second, once per run started."""
    path = Path(path)
    folder = path.is_dir()
    digest, size = hashlib.sha256(), 0
    try:
        listed = read if read is not None else (p for p in path.rglob("*") if p.is_file())
        files = sorted((str(p.relative_to(path)), p) for p in listed) if folder else [("", path)]
        for name, file in files:
            length = file.stat().st_size
            size += length
            if folder:
                digest.update(f"{name}\0{length}\0".encode("utf-8", "surrogateescape"))
            with file.open("rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
    except OSError as e:
        raise RnnkitError(f"cannot read the data ({e.strerror})", e.filename or path) from None
    return {"bytes": size, "sha256": digest.hexdigest()}

"""The model directory: one format for every task, written atomically.

::

    MODEL_DIR/
      config.yaml          the full resolved config (its ``task`` says which task made the folder)
      the task's assets    vocabularies, tokenizers, ... (the LM: vocab.json, tokenizer.json, spm.model)
      model.safetensors    the weights to use (best on validation); no pickle, loads on any device
      checkpoint/          what --resume needs: last.safetensors + trainer_state.pt (+ rng per rank), and
                           ``complete``, written last (what marks a temporary checkpoint whole)
      log.csv, curves.png  training log and learning curves
      results.json         final metrics (valid/test)
      rnnkit.json          the ownership marker: what made the folder (rnnkit train | demo), version, time
      rnnkit.lock          the one-writer lock (see rnnkit.lock)

Every file is written to a temporary name and renamed; the checkpoint folder is swapped whole, so a
kill at any moment leaves either the old or the new checkpoint, never a mix.

A model directory is untrusted input when it is loaded: the safetensors header (names, shapes, dtypes)
is checked against the model the config describes before any weights are allocated, and a fingerprint
saved in the weights' metadata binds them to the config fields and files that decide what they mean; the
weights read are finite numbers (no NaN or infinity).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
from torch import nn
from torch.overrides import TorchFunctionMode

from rnnkit import files
from rnnkit.errors import RnnkitError, parse_json
from rnnkit.files import (  # noqa: F401 (re-exported)
    DIR_MODE,
    FILE_MODE,
    check_output_file,
    write_output_file,
)
from rnnkit.lock import LOCK_FILE

CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "model.safetensors"
CHECKPOINT_DIR = "checkpoint"
LAST_WEIGHTS = "last.safetensors"
TRAINER_STATE = "trainer_state.pt"
RESULTS_FILE = "results.json"
#: written into a checkpoint folder last, after every other file is renamed in and fsynced: only a temporary
#: checkpoint that holds it is whole (older rnnkit wrote no such file, and its files unrenamed: a kill could leave
#: a temp with every file there, one cut short)
COMPLETE_FILE = "complete"
MARKER_FILE = "rnnkit.json"

#: what every run writes into a model directory, beside its task's asset files
_COMMON_RUN_FILES = (MARKER_FILE, CONFIG_FILE, WEIGHTS_FILE, CHECKPOINT_DIR, f"{CHECKPOINT_DIR}.old", "log.csv",
                     "curves.png", RESULTS_FILE)


def run_files() -> tuple[str, ...]:
    """Every name rnnkit writes into a model directory: the common ones and every task's asset files
    (--overwrite and the demo remove these, nothing else; a folder made by one task may be reused by another)."""
    from rnnkit.tasks import all_tasks

    assets = sorted({name for task in all_tasks() for name in task.asset_files} - set(_COMMON_RUN_FILES))
    return (*_COMMON_RUN_FILES, *assets)
_CHECKPOINT_DIRS = (CHECKPOINT_DIR, f"{CHECKPOINT_DIR}.old")
#: mkstemp's random part (tempfile's 8 characters of a-z, 0-9 and _): a user's ".log.csv.backup.tmp" is not it
_RANDOM = r"[a-z0-9_]{8}"
#: the temporary names of atomic_write_bytes (.NAME.XXXXXXXX.tmp) and save_checkpoint (.checkpoint.XXXXXXXX)
_TEMP_FILE = re.compile(rf"^\.(?P<name>.+)\.{_RANDOM}\.tmp$")
_TEMP_CHECKPOINT = re.compile(rf"^\.{CHECKPOINT_DIR}\.{_RANDOM}$")
#: what a checkpoint folder (or its temporary) holds: nothing else is rnnkit's
_CHECKPOINT_ENTRY = re.compile(
    rf"^(trainer_state\.pt|last\.safetensors|rng_rank\d+\.pt|{COMPLETE_FILE}"
    rf"|\.(last\.safetensors|trainer_state\.pt|rng_rank\d+\.pt|{COMPLETE_FILE})"
    rf"\.{_RANDOM}\.tmp)$")


def _unique_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """state_dict without aliases (tied weights are stored once) as contiguous CPU tensors."""
    seen: dict[int, str] = {}
    out = {}
    for name, tensor in model.state_dict().items():
        key = tensor.data_ptr()
        if key in seen:
            continue
        seen[key] = name
        out[name] = tensor.detach().to("cpu").contiguous()
    return out


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """:func:`rnnkit.files.atomic_write_bytes` for a model directory's files (every writer of one uses it): a write
    that fails (a full disk, a folder made read-only) is one error naming the file, which stays as it was."""
    try:
        files.atomic_write_bytes(path, data)
    except OSError as e:
        raise RnnkitError(f"cannot write the file ({e.strerror or e})", path) from None


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _weights_bytes(model: nn.Module, metadata: dict[str, str] | None) -> bytes:
    return save_safetensors_bytes(_unique_state(model), metadata=metadata)


def save_weights(model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    atomic_write_bytes(path, _weights_bytes(model, metadata))


_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16"}
_ITEM_SIZE = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2,
              "U16": 2, "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header


def require_plain_file(path: str | Path, what: str) -> os.stat_result:
    """``path`` (``what``: "weights file", ...) exists and is a plain file (a link to one is fine): a
    folder, pipe or device is named as such, not as missing."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise RnnkitError(f"{what} is missing", path) from None
    except OSError as e:
        raise RnnkitError(f"cannot read the {what} ({e.strerror})", path) from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a device, pipe or socket"
        raise RnnkitError(f"{what} is not a plain file but {kind}", path)
    return info


def read_safetensors_header(path: str | Path) -> tuple[dict[str, tuple[str, tuple[int, ...]]], dict[str, str]]:
    """The tensors (name -> (dtype, shape)) and metadata a safetensors file declares, read from its header
    alone (an 8-byte length and a JSON object; no tensor data), every field checked."""
    path = Path(path)
    size = require_plain_file(path, "weights file").st_size
    try:
        with path.open("rb") as f:
            length = int.from_bytes(f.read(8), "little")
            if size < 8 or length > min(size - 8, _MAX_HEADER):
                raise ValueError(f"header length {length} does not fit a file of {size} bytes")
            header = parse_json(f.read(length).decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
        metadata = header.pop("__metadata__", None) or {}
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise ValueError("__metadata__ is not a mapping of strings")
        tensors = {name: _tensor_entry(name, entry, size - 8 - length) for name, entry in header.items()}
    except (ValueError, UnicodeDecodeError, OSError) as e:
        raise RnnkitError(f"weights file is corrupt ({e})", path) from None
    return tensors, metadata


def _tensor_entry(name: str, entry, data_size: int) -> tuple[str, tuple[int, ...]]:
    """(dtype, shape) of one header entry, after checking its types and that its bytes lie in the file."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise ValueError(f"entry '{name}' is not {{dtype, shape, data_offsets}}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in _ITEM_SIZE:
        raise ValueError(f"'{name}' has an unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise ValueError(f"'{name}' has a bad shape {shape!r}")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(n) is int for n in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_size
            or offsets[1] - offsets[0] != math.prod(shape) * _ITEM_SIZE[dtype]):
        raise ValueError(f"'{name}' has data offsets {offsets!r} that do not fit its shape or the file")
    return dtype, tuple(shape)


def expected_tensors(model: nn.Module) -> tuple[dict[str, tuple[str, tuple[int, ...]]], dict[str, str]]:
    """What ``model``'s weights file must hold (name -> (dtype, shape)), and tied aliases (alias -> name
    stored); works for a model on the "meta" device, so the check costs no memory."""
    expected: dict[str, tuple[str, tuple[int, ...]]] = {}
    aliases: dict[str, str] = {}
    first: dict[int, str] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        if id(tensor) in first:  # tied weights are one Parameter under two names, stored once
            aliases[name] = first[id(tensor)]
            continue
        first[id(tensor)] = name
        expected[name] = (_DTYPES.get(tensor.dtype, str(tensor.dtype)), tuple(tensor.shape))
    return expected, aliases


# torch.nn.init's initialisers and the in-place fills they use: each returns the tensor it fills
_INITIALISERS = frozenset({"normal_", "uniform_", "zero_", "fill_", "zeros_", "ones_", "constant_",
                           "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_",
                           "trunc_normal_", "orthogonal_"})


class _SkipInitialisers(TorchFunctionMode):
    """Initialisers do nothing: on the meta device torch runs them through Python decompositions that
    import torch._dynamo on first use (about 1 s, more than the rest of loading a small model)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", None) in _INITIALISERS:
            return args[0] if args else kwargs["tensor"]
        return func(*args, **(kwargs or {}))


def shapes_only(build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` on the meta device with its initialisers skipped: a model's tensor names, shapes and
    dtypes without memory or time, for :func:`check_weights_header`."""
    with torch.device("meta"), _SkipInitialisers():
        return build()


def check_model_weights(model_dir: str | Path, cfg, build: Callable[[], nn.Module], weights: str | Path | None = None,
                        dtype: torch.dtype = torch.float32) -> None:
    """A model directory's weights fit before anything is allocated: the header of ``weights`` (default its
    model.safetensors) matches the model ``build()`` makes in ``dtype`` (built by :func:`shapes_only`), and their
    fingerprint binds ``cfg`` and the directory's asset files. A config no model can be built from is an error
    naming config.yaml."""
    model_dir = Path(model_dir)
    weights = Path(weights) if weights else model_dir / WEIGHTS_FILE
    check_model_sizes(cfg, read_safetensors_header(weights)[0], weights, model_dir / CONFIG_FILE)
    try:
        expected = shapes_only(build).to(dtype)
    except (ValueError, RuntimeError, RnnkitError) as e:  # a config.yaml edited into a model no one can build
        raise RnnkitError(str(e), model_dir / CONFIG_FILE) from None
    verify_fingerprint(model_dir, cfg, weights, check_weights_header(expected, weights))


#: layer / cluster counts and unit sizes a config may hold whatever its weights file holds (check_model_sizes)
FEW_LAYERS, FEW_UNITS = 64, 4096


def check_model_sizes(cfg, stored: dict[str, tuple[str, tuple[int, ...]]], weights: Path, config_path: Path) -> None:
    """Refuse a ``cfg.model`` no weights file like ``stored`` (its header's tensors) can hold, before any model is
    built: even on the meta device 40,000 layers take seconds and a hidden_size of 10**9 overflows torch. Each layer
    (a ``*layers`` key) and each adaptive-softmax cluster (an item of a list key) has tensors of its own, so their
    count is at most the file's tensors; a size of n units (any other integer key) puts at least n values in the
    file. Only keys the built model uses are held to this: a model config's ``unused_keys()`` names the others (a
    bag's layers and hidden_size, which may be anything). Counts up to :data:`FEW_LAYERS` and sizes up to
    :data:`FEW_UNITS` pass whatever the file holds: they build on the meta device at once, the header check that
    follows names what disagrees, and a key a tiny model leaves at its default (a repeat decoder's
    trg_embedding_size 256) is not refused."""
    values = sum(math.prod(shape) for _, shape in stored.values())
    unused = cfg.model.unused_keys() if hasattr(cfg.model, "unused_keys") else ()
    for f in dataclasses.fields(cfg.model):
        if f.name in unused:
            continue
        value = getattr(cfg.model, f.name)
        if isinstance(value, list) or f.name.endswith("layers"):
            count = len(value) if isinstance(value, list) else value
            if count > max(len(stored), FEW_LAYERS):
                raise RnnkitError(f"'model.{f.name}' asks for {count:,} layers or clusters, but {weights.name} "
                                  f"holds {len(stored):,} tensors (config and weights disagree)", config_path)
        elif type(value) is int and value > max(values, FEW_UNITS):
            raise RnnkitError(f"'model.{f.name}' is {value:,}, but {weights.name} holds {values:,} values in all "
                              "(config and weights disagree)", config_path)


def legacy_names(model: nn.Module, given: dict[str, str] | None = None) -> dict[str, str]:
    """Old tensor names -> current ones that a model's files may still hold: ``given``, else the model
    class's ``legacy_weight_names`` (a model whose parameters were renamed declares it, so directories
    saved before the rename still load)."""
    names = given if given is not None else getattr(model, "legacy_weight_names", None) or {}
    if not isinstance(names, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in names.items()):
        raise TypeError(f"legacy_weight_names must map old tensor names to new ones, got {names!r:.80}")
    return names


def _renamed(stored: dict, legacy: dict[str, str], path: Path) -> dict:
    """``stored`` (a header's entries or tensors by name) with old names read as their new ones; a file that
    holds both an old name and its new one is refused (which would it mean?)."""
    for old, new in legacy.items():
        if old in stored:
            if new in stored:
                raise RnnkitError(f"weights file holds both '{old}' and '{new}' (its new name)", path)
            stored[new] = stored.pop(old)
    return stored


def check_weights_header(model: nn.Module, path: str | Path,
                         legacy_weight_names: dict[str, str] | None = None) -> dict[str, str]:
    """Check the names, shapes and dtypes ``path`` declares against ``model`` (which may be on the meta
    device) before any tensor is read; returns the file's metadata. Tensors under an old name
    (:func:`legacy_names`) count as their new one."""
    path = Path(path)
    stored, metadata = read_safetensors_header(path)
    stored = _renamed(stored, legacy_names(model, legacy_weight_names), path)
    expected, aliases = expected_tensors(model)
    for alias, name in aliases.items():  # a file may store a tied weight under either of its names
        if name not in stored and alias in stored:
            stored[name] = stored.pop(alias)
    for name, (dtype, shape) in expected.items():
        if name not in stored:
            raise RnnkitError(f"weights file lacks '{name}' (was it made for another model?)", path)
        if stored[name][1] != shape:
            raise RnnkitError(f"'{name}' has shape {stored[name][1]}, model expects {shape} "
                              "(config and weights disagree)", path)
        if stored[name][0] != dtype:
            raise RnnkitError(f"'{name}' is stored as {stored[name][0]}, the model holds {dtype} "
                              "(not what rnnkit saved for this model)", path)
    unexpected = set(stored) - set(expected) - set(aliases)
    if unexpected:
        raise RnnkitError(f"weights file has unexpected tensors {sorted(unexpected)[:3]}", path)
    return metadata


def check_finite(state: dict, path: Path) -> None:
    """Every floating-point tensor of ``state`` (torch tensors or NumPy arrays, by name) holds finite numbers: a
    weight that is NaN or infinite (a header, shapes and fingerprint can all be right) makes the model's every
    answer NaN, which would still print as a label."""
    for name, tensor in state.items():
        tensor = torch.as_tensor(tensor)
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise RnnkitError(f"'{name}' holds a value that is not finite (NaN or infinity): the weights are "
                              "damaged", path)


def load_weights(model: nn.Module, path: str | Path,
                 legacy_weight_names: dict[str, str] | None = None) -> dict[str, str]:
    """Load safetensors weights into ``model`` (any device) after checking the header, every value finite; returns
    the metadata. Tensors under an old name (:func:`legacy_names`) load into their new one."""
    path = Path(path)
    legacy = legacy_names(model, legacy_weight_names)
    metadata = check_weights_header(model, path, legacy)
    try:
        state = _renamed(load_safetensors_bytes(path.read_bytes()), legacy, path)
    except (SafetensorError, ValueError, OSError) as e:
        raise RnnkitError(f"weights file is corrupt ({e})", path) from None
    check_finite(state, path)
    _, aliases = expected_tensors(model)
    for alias, name in aliases.items():
        if name not in state:
            state[name] = state[alias]
        state[alias] = state[name]
    model.load_state_dict(state)
    return metadata


# ---------------------------------------------------------------------------------------------- fingerprint
# the config fields that decide what the weights mean and the files they read through are the task's
# (Task.bound_config_keys and Task.asset_files)
_BINDING_KEY, _FINGERPRINT_KEY = "rnnkit.binding", "rnnkit.fingerprint"
_unverified_noted: set[str] = set()


def _config_value(cfg, key: str):
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _binding(model_dir: Path, cfg) -> dict:
    """The config fields ``cfg``'s task binds and the sha256 of each of its asset files ("" for one that is
    absent)."""
    from rnnkit.tasks import get_task

    task = get_task(cfg.task)
    files = {name: hashlib.sha256((model_dir / name).read_bytes()).hexdigest() if (model_dir / name).is_file()
             else "" for name in task.asset_files}
    return {"config": {key: _config_value(cfg, key) for key in task.bound_config_keys}, "files": files}


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def fingerprint_metadata(model_dir: str | Path, cfg) -> dict[str, str]:
    """Safetensors metadata binding weights to ``model_dir``'s config fields and vocabulary/tokenizer files:
    the bound values and a sha256 fingerprint over them."""
    binding = _canonical(_binding(Path(model_dir), cfg))
    return {_BINDING_KEY: binding, _FINGERPRINT_KEY: hashlib.sha256(binding.encode()).hexdigest()}


def verify_fingerprint(model_dir: str | Path, cfg, weights: str | Path, metadata: dict[str, str]) -> None:
    """Refuse weights whose fingerprint does not match ``model_dir`` now, naming the file (and config key)
    that changed; weights saved before fingerprints existed load, with a note on stderr that they are
    unverified."""
    model_dir, weights = Path(model_dir), Path(weights)
    if _FINGERPRINT_KEY not in metadata:
        if str(weights) not in _unverified_noted:
            _unverified_noted.add(str(weights))
            print(f"note: {weights} has no fingerprint (saved before rnnkit bound weights to their config and "
                  "vocabulary): config.yaml and the vocabulary and tokenizer files are not verified", file=sys.stderr)
        return
    saved = metadata.get(_BINDING_KEY, "")
    try:
        bound = parse_json(saved)
        ok = (hashlib.sha256(saved.encode()).hexdigest() == metadata[_FINGERPRINT_KEY] and isinstance(bound, dict)
              and isinstance(bound.get("config"), dict) and isinstance(bound.get("files"), dict))
    except ValueError:
        ok = False
    if not ok:
        raise RnnkitError("the weights' fingerprint is damaged (metadata edited?)", weights)
    now = _binding(model_dir, cfg)
    for key, value in now["config"].items():  # a key bound only by a newer rnnkit is absent from older files
        if key in bound["config"] and bound["config"][key] != value:
            raise RnnkitError(f"'{key}' is {value!r}, but the weights were trained with "
                              f"{bound['config'][key]!r} (the file was changed after training)",
                              model_dir / CONFIG_FILE)
    for name, digest in now["files"].items():
        if bound["files"].get(name) != digest:
            change = "was added" if not bound["files"].get(name) else "is missing" if not digest else "was changed"
            raise RnnkitError(f"{change} since the weights were saved: it no longer matches them "
                              f"({weights.name} fingerprint)", model_dir / name)


# ---------------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(out_dir: str | Path, model: nn.Module, trainer_state: dict,
                    rank_states: dict[int, dict] | None = None, metadata: dict[str, str] | None = None) -> None:
    """Write ``checkpoint/`` whole: build it under a temporary name, its ``complete`` file last (renamed into place
    once every other file is: what marks it whole, :func:`_complete`), then swap it in (:func:`_swap_in`). A write
    that fails (a full disk) is one error naming the checkpoint, and leaves the last one as it was."""
    out_dir = Path(out_dir)
    tmp = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".checkpoint.", dir=out_dir))
        os.chmod(tmp, DIR_MODE)
        files.atomic_write_bytes(tmp / LAST_WEIGHTS,
                                 _weights_bytes(model, {**(metadata or {}), "step": str(trainer_state["step"])}))
        for rank, state in (rank_states or {}).items():
            _torch_save(state, tmp / f"rng_rank{rank}.pt")
        _torch_save(trainer_state, tmp / TRAINER_STATE)
        files.atomic_write_bytes(tmp / COMPLETE_FILE, f"step {trainer_state['step']}\n".encode())
        _swap_in(tmp, out_dir)
    except BaseException as e:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise RnnkitError(f"cannot write the checkpoint ({e.strerror or e})", out_dir / CHECKPOINT_DIR) from None
        raise


def _torch_save(value: dict, path: Path) -> None:
    """``torch.save`` under a temporary name, then a rename: a checkpoint's file is there whole or not at all."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), FILE_MODE)
        torch.save(value, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Make the complete checkpoint ``tmp`` the run's ``checkpoint/``, keeping a complete checkpoint on disk at every
    moment: the current one moves to ``checkpoint.old`` first, and ``checkpoint.old`` is removed only while a newer
    one exists (with no ``checkpoint/``, a kill cut the last swap short: ``checkpoint.old`` stays until ``tmp`` is
    in)."""
    final, old = (out_dir / name for name in _CHECKPOINT_DIRS)
    for path in (old, final):  # checked before the swap: a file of the user's is never moved or removed
        if os.path.lexists(path):
            _refuse_foreign(path)
    if os.path.lexists(final):
        if os.path.lexists(old):
            _remove_own(old)
        os.replace(final, old)
    os.replace(tmp, final)
    if os.path.lexists(old):
        _remove_own(old)


def _complete(folder: Path) -> bool:
    """Whether a temporary checkpoint folder is whole: its ``complete`` file, written last, is there. Files alone do
    not tell: rnnkit before the marker wrote them unrenamed, so a kill during its last RNG state left them all,
    one cut short (such a temp is removed, and the resume goes on from ``checkpoint/``)."""
    return (folder / COMPLETE_FILE).is_file()


#: what a run leaves once it got as far as its first validation or checkpoint (before that, a resume
#: starts it again from step 0)
PROGRESS_FILES = (WEIGHTS_FILE, "log.csv", *_CHECKPOINT_DIRS)
_RESTART_ADVICE = "--resume cannot continue the run without it; --overwrite starts the run again"


def run_started(out_dir: str | Path) -> bool:
    """Whether the run in ``out_dir`` got as far as writing weights, a log or a checkpoint."""
    return any(os.path.lexists(Path(out_dir) / name) for name in PROGRESS_FILES)


def has_checkpoint(out_dir: str | Path) -> bool:
    """Whether ``out_dir`` holds a saved checkpoint (what a Ctrl-C leaves to resume from)."""
    return any((Path(out_dir) / name / TRAINER_STATE).is_file() for name in _CHECKPOINT_DIRS)


def checkpoint_path(out_dir: str | Path, rank: int = 0, world: int | None = None) -> Path:
    """The checkpoint folder to resume from (``checkpoint``, or ``checkpoint.old`` when a kill cut the swap
    short), with its trainer state, weights and ``rank``'s RNG state each a plain file; else an error
    naming the first one missing or irregular. ``world``: the processes resuming it, which must be as many as
    saved it (one RNG state each)."""
    final, old = (Path(out_dir) / name for name in _CHECKPOINT_DIRS)
    ckpt = old if os.path.lexists(old) and not os.path.lexists(final) else final
    if not ckpt.is_dir():
        what = "is not a folder" if os.path.lexists(ckpt) else "is missing"
        raise RnnkitError(f"the checkpoint folder {what}: {_RESTART_ADVICE}", ckpt)
    saved_by = len([p for p in ckpt.iterdir() if re.fullmatch(r"rng_rank\d+\.pt", p.name)])
    if world is not None and saved_by and saved_by != world:
        again = (f"torchrun --nproc-per-node {saved_by} -m rnnkit train ... --resume" if saved_by > 1
                 else "rnnkit train ... --resume, without torchrun")
        raise RnnkitError(f"this run was saved by {saved_by} process(es) and is resumed by {world}: each resumes "
                          f"from its own RNG state, so resume it with as many ({again})", ckpt)
    for name, what in ((TRAINER_STATE, "trainer state"), (LAST_WEIGHTS, "checkpoint weights file"),
                       (f"rng_rank{rank}.pt", "RNG state")):
        try:
            require_plain_file(ckpt / name, what)
        except RnnkitError as e:
            raise RnnkitError(f"{e}; {_RESTART_ADVICE}") from None
    return ckpt


#: the trainer state's fields and their types (a checkpoint is untrusted input like the rest of the folder)
_STATE_TYPES = {"step": int, "epoch": int, "batch_index": int, "optimizer_name": str, "optimizer": dict,
                "schedule": dict, "bad_evals": int, "val_history": list, "rows": list,
                "elapsed": float, "finished": bool, "validated_at": int, "backend": str, "window": list}
_SCHEDULE_TYPES = {"lr": float, "best": float, "previous": float, "bad": int}
_RNG_TYPES = {"torch": torch.Tensor, "numpy": list, "python": list}


def _torch_load(path: Path, what: str) -> dict:
    """``torch.load(weights_only=True)``; any refusal is one error of ours (torch's own message suggests
    weights_only=False, which would run whatever pickle the file holds: never pass that on)."""
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a damaged or refused file
        raise RnnkitError(f"{what} cannot be read ({type(e).__name__}): it is damaged or was not written by "
                          "rnnkit, which loads only plain tensors and numbers from it", path) from None
    if not isinstance(value, dict):
        raise RnnkitError(f"{what} is not a mapping (not written by rnnkit)", path)
    return value


def _check_types(state: dict, types: dict[str, type], what: str, path: Path) -> None:
    for key, kind in types.items():
        value = state.get(key)
        if kind is float and type(value) is int:
            continue
        if value is None or not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise RnnkitError(f"{what} field '{key}' must be {kind.__name__}, got {type(value).__name__}", path)
        if kind is int and value < -1:
            raise RnnkitError(f"{what} field '{key}' is negative ({value})", path)


def _check_lists(state: dict, path: Path) -> None:
    """The log rows are mappings, the validation history numbers, the log window (loss sum, count)."""
    number = (int, float)
    if not all(isinstance(r, dict) and all(isinstance(k, str) for k in r) for r in state["rows"]):
        raise RnnkitError("trainer state field 'rows' must be a list of mappings", path)
    for i, row in enumerate(state["rows"]):  # what the log and the curves read of each row
        if not (type(row.get("step")) is int and row.get("split") in ("train", "valid")
                and all(isinstance(row.get(k), number) and not isinstance(row.get(k), bool) for k in ("loss", "lr"))):
            raise RnnkitError(f"trainer state field 'rows': row {i} lacks an int step, a split (train | valid), "
                              "or a number loss and lr", path)
    if not all(isinstance(v, number) and not isinstance(v, bool) for v in state["val_history"]):
        raise RnnkitError("trainer state field 'val_history' must be a list of numbers", path)
    window = state["window"]
    if len(window) != 2 or not isinstance(window[0], number) or type(window[1]) is not int:
        raise RnnkitError("trainer state field 'window' must be [loss sum, token count]", path)


#: the best selection value: ``best_value`` with its ``selection_metric``, or (written before tasks named
#: their metric) ``best_loss``
_BEST_TYPES = ({"best_value": float, "selection_metric": str}, {"best_loss": float})


def load_trainer_state(ckpt: Path, rank: int = 0) -> tuple[dict, dict | None]:
    """The trainer state and this rank's RNG state of a checkpoint folder, their fields type-checked."""
    state = _torch_load(ckpt / TRAINER_STATE, "trainer state")
    _check_types(state, _STATE_TYPES, "trainer state", ckpt / TRAINER_STATE)
    _check_types(state, _BEST_TYPES[0] if "best_value" in state else _BEST_TYPES[1], "trainer state",
                 ckpt / TRAINER_STATE)
    _check_types(state["schedule"], _SCHEDULE_TYPES, "trainer state schedule", ckpt / TRAINER_STATE)
    _check_lists(state, ckpt / TRAINER_STATE)
    rng_file = ckpt / f"rng_rank{rank}.pt"
    rng = _torch_load(rng_file, "RNG state")
    _check_types(rng, _RNG_TYPES, "RNG state", rng_file)
    return state, rng


#: the most rnnkit reads of each common file of a model directory it parses whole (far above what it
#: writes); a task adds its assets' limits (Task.read_limits)
_READ_LIMITS = {CONFIG_FILE: 1 << 20, MARKER_FILE: 1 << 16}


def read_limits() -> dict[str, int]:
    """The read limit of every file rnnkit parses whole, over every task (the least where two tasks
    name one file): the files are checked before config.yaml says which task made the folder."""
    from rnnkit.tasks import all_tasks

    limits = dict(_READ_LIMITS)
    for task in all_tasks():
        for name, limit in task.read_limits.items():
            limits[name] = min(limit, limits.get(name, limit))
    return limits


def check_model_files(model_dir: Path) -> None:
    """The files rnnkit reads whole are plain files of a sane size: a link to /dev/zero, a pipe or a
    many-gigabyte vocab.json is an error, not a hang or an exhausted memory."""
    for name, limit in read_limits().items():
        path = model_dir / name
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        except OSError as e:
            raise RnnkitError(f"cannot read ({e.strerror})", path) from None
        if not stat.S_ISREG(info.st_mode):
            raise RnnkitError("is not a plain file (a device, pipe or socket?); a model directory holds files", path)
        if info.st_size > limit:
            raise RnnkitError(f"is {info.st_size:,} bytes, more than rnnkit reads for it ({limit:,})", path)


def require_model_dir(model_dir: str | Path) -> Path:
    """Check a model directory has its config and weights (name the first missing) and that what it reads
    whole is a plain file of a sane size (the task's own files: :func:`require_task_files`)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise RnnkitError("model directory not found", model_dir)
    check_model_files(model_dir)
    require_files(model_dir, (CONFIG_FILE, WEIGHTS_FILE))
    return model_dir


def require_files(model_dir: Path, names) -> None:
    """Each of ``names`` is a plain file in ``model_dir`` (else an error naming the first missing)."""
    for name in names:
        if not (model_dir / name).exists():
            raise RnnkitError(f"not a complete model directory: '{name}' is missing{_stopped_early(model_dir, name)}",
                              model_dir)
        require_plain_file(model_dir / name, f"'{name}'")


def _stopped_early(model_dir: Path, name: str) -> str:
    """The way on for a run stopped (Ctrl-C, SIGTERM: a wall budget) before its first validation wrote the
    weights to use: its checkpoint holds weights, and a resume that trains no further validates them."""
    if name != WEIGHTS_FILE or not has_checkpoint(model_dir) or (model_dir / RESULTS_FILE).exists():
        return ""  # no checkpoint, or a finished run (results.json) whose weights were removed
    return (" (the run stopped before its first validation; its checkpoint holds weights: `rnnkit train TASK --out "
            "DIR --resume --set train.max_steps=N`, N at most the step it reached, validates them without training "
            "and writes it)")


# ---------------------------------------------------------------------------------------------- ownership
def write_marker(model_dir: str | Path, made_by: str, init: str = "", data: dict | None = None) -> None:
    """Mark ``model_dir`` as made by rnnkit (``made_by``: "rnnkit train" or "rnnkit demo"); ``init``: the options the
    run started from another model with (``--init-from /abs/DIR ...``), which the same command with --resume repeats;
    ``data``: the fingerprint of each data file the run reads, by split, which --resume checks."""
    from rnnkit import __version__

    marker = {"made_by": made_by, "rnnkit_version": __version__,
              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **({"init": init} if init else {}),
              **({"data": data} if data else {})}
    atomic_write_text(Path(model_dir) / MARKER_FILE, json.dumps(marker, indent=1) + "\n")


def read_marker(model_dir: str | Path) -> dict[str, str] | None:
    """The ownership marker of ``model_dir`` (None when it has none), its fields type-checked."""
    path = Path(model_dir) / MARKER_FILE
    if not path.is_file():
        return None
    try:
        marker = parse_json(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise RnnkitError(f"ownership marker is corrupt ({e})", path) from None
    if not isinstance(marker, dict) or not all(isinstance(marker.get(k), str)
                                               for k in ("made_by", "rnnkit_version", "created")):
        raise RnnkitError("ownership marker is corrupt (made_by, rnnkit_version and created must be strings)", path)
    if not isinstance(marker.get("init", ""), str):
        raise RnnkitError("ownership marker is corrupt (init must be a string)", path)
    data = marker.get("data", {})
    if not isinstance(data, dict) or not all(
            isinstance(record, dict) and set(record) == {"bytes", "sha256"} and type(record["bytes"]) is int
            and isinstance(record["sha256"], str) for record in data.values()):
        raise RnnkitError("ownership marker is corrupt (data must map each split to its bytes and sha256)", path)
    return marker


def require_marker(model_dir: str | Path, action: str) -> dict[str, str]:
    """The marker of a folder rnnkit is about to ``action`` (resume, replace); refuse a folder without one."""
    marker = read_marker(model_dir)
    if marker is None:
        raise RnnkitError(f"has no {MARKER_FILE}, so rnnkit did not make it (or made it before it marked its "
                          f"folders): it does not {action} it; use another --out (--init-from DIR starts a new "
                          "run from a model's weights)", model_dir)
    return marker


def _written_as(name: str) -> str | None:
    """What rnnkit writes under ``name`` in a model directory: "dir", "file", or None (not rnnkit's name)."""
    if name in _CHECKPOINT_DIRS or _TEMP_CHECKPOINT.match(name):
        return "dir"
    temp = _TEMP_FILE.match(name)
    names = run_files()
    if name in names or name == LOCK_FILE or (temp and temp["name"] in names):
        return "file"
    return None


def check_not_a_run_entry(out_dir: str | Path, option: str) -> None:
    """A run's folder (``option``: --out) is no entry another run writes in its folder (its checkpoint/, a
    temporary checkpoint, log.csv, ...) and lies in none: that run replaces its checkpoint/ whole and would stop
    at a folder where it writes a file. A folder below a run's of another name (a fine-tuning run in A/ft) is
    fine; a run's folder is one whose rnnkit.json rnnkit wrote (read_marker), not any file of that name."""
    out_dir = Path(out_dir)
    target = out_dir.parent.resolve() / out_dir.name
    for entry in (target, *target.parents):
        if _written_as(entry.name) and entry.name != LOCK_FILE and _is_run_folder(entry.parent):
            raise RnnkitError(f"{option} is or lies in {entry}, which the run in {entry.parent} writes (give a path "
                              "outside it)", out_dir)


def _is_run_folder(folder: Path) -> bool:
    try:
        return read_marker(folder) is not None
    except (RnnkitError, OSError):  # a file of that name rnnkit did not write
        return False


def _foreign_parts(path: Path) -> list[str]:
    """The parts of one model-directory entry rnnkit did not write ([] when it is all rnnkit's): an entry
    of another name, a folder or link where rnnkit writes a file, anything but a checkpoint's files in a
    checkpoint folder."""
    kind, mode = _written_as(path.name), os.lstat(path).st_mode
    if kind == "dir" and stat.S_ISDIR(mode):
        return [f"{path.name}/{part}" for p in sorted(path.iterdir())
                for part in _unexpected(p, "file" if _CHECKPOINT_ENTRY.match(p.name) else None)]
    return _unexpected(path, kind)


def _unexpected(path: Path, kind: str | None) -> list[str]:
    """``[]`` when ``path`` is what rnnkit writes under its name (``kind``: "file", "dir", or None when the
    name is not rnnkit's), else the name, with what it is where rnnkit writes another kind of entry."""
    mode = os.lstat(path).st_mode
    if kind is None:
        return [path.name]
    if (kind == "file" and stat.S_ISREG(mode)) or (kind == "dir" and stat.S_ISDIR(mode)):
        return []
    found = ("a folder" if stat.S_ISDIR(mode) else "a symbolic link" if stat.S_ISLNK(mode)
             else "a file" if stat.S_ISREG(mode) else "a device, pipe or socket")
    return [f"{path.name} ({found}, where rnnkit writes {'a folder' if kind == 'dir' else 'a file'})"]


def foreign_entries(model_dir: str | Path) -> list[str]:
    """What in ``model_dir`` rnnkit did not write (the user's own files), as paths relative to it."""
    return [part for p in sorted(Path(model_dir).iterdir()) for part in _foreign_parts(p)]


def _refuse_foreign(path: Path) -> None:
    """An error naming what in the entry ``path`` rnnkit did not write, if anything."""
    foreign = _foreign_parts(path)
    if foreign:
        raise RnnkitError(f"holds {', '.join(foreign[:5])}, which rnnkit did not write: it replaces and removes "
                          "only its own files (move them away)", path.parent)


def _remove_own(path: Path) -> None:
    """Remove an entry rnnkit wrote; refuse (naming it) one that holds anything else."""
    _refuse_foreign(path)
    if stat.S_ISDIR(os.lstat(path).st_mode):
        shutil.rmtree(path)
    else:
        path.unlink()


def refuse_foreign_run_entries(model_dir: str | Path) -> None:
    """Each of rnnkit's names in ``model_dir`` holds only what rnnkit writes there (a folder named log.csv,
    a file named checkpoint.old, a note in checkpoint/ are refused, naming them, before a run writes)."""
    for name in run_files():
        if os.path.lexists(Path(model_dir) / name):
            _refuse_foreign(Path(model_dir) / name)


def remove_run_files(model_dir: str | Path) -> list[str]:
    """Remove what rnnkit wrote into ``model_dir`` (never other files, never the lock) except the ownership
    marker, which stays to the end so that a kill half-way leaves a folder rnnkit still knows as its own
    (call write_marker next); the names removed."""
    removed = sorted(p.name for p in Path(model_dir).iterdir() if _written_as(p.name) and p.name != LOCK_FILE)
    for name in removed:
        if name != MARKER_FILE:
            _remove_own(Path(model_dir) / name)
    return removed


def remove_stale_temps(model_dir: str | Path) -> list[str]:
    """Settle what writes that a kill cut short left (call under the lock, when no write is in progress): a complete
    temporary checkpoint folder is newer than ``checkpoint/`` and ``checkpoint.old`` (it was built after them), so the
    newest one is swapped in as ``checkpoint/``; the other temporary files and folders are removed (rnnkit's own temp
    names only, holding only rnnkit's files). Returns the names removed."""
    model_dir = Path(model_dir)
    temps = [p for p in model_dir.iterdir() if _TEMP_CHECKPOINT.match(p.name) and p.is_dir() and not p.is_symlink()]
    complete = [p for p in temps if _complete(p)]
    if complete:
        newest = max(complete, key=lambda p: (p / TRAINER_STATE).stat().st_mtime_ns)
        _refuse_foreign(newest)
        try:
            _swap_in(newest, model_dir)
        except OSError as e:
            raise RnnkitError(f"cannot move the checkpoint {newest.name} into place ({e.strerror or e})",
                              model_dir / CHECKPOINT_DIR) from None
    stale = sorted(p.name for p in model_dir.iterdir()
                   if _TEMP_FILE.match(p.name) and _written_as(p.name) or _TEMP_CHECKPOINT.match(p.name))
    for name in stale:
        _remove_own(model_dir / name)
    return stale

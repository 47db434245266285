"""The model directory: one format for every task, written atomically.

::

    MODEL_DIR/
      config.yaml          the full resolved config
      tokenizer.json       tokenizer options (+ spm.model for sentencepiece)
      vocab.json           id -> token
      model.safetensors    the weights to use (best on validation); no pickle, loads on any device
      checkpoint/          what --resume needs: last.safetensors + trainer_state.pt (+ rng per rank)
      log.csv, curves.png  training log and learning curves
      results.json         final metrics (valid/test)

Every file is written to a temporary name and renamed; the checkpoint folder is swapped whole, so a
kill at any moment leaves either the old or the new checkpoint, never a mix.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
from torch import nn

from rnnkit.errors import RnnkitError

CONFIG_FILE = "config.yaml"
VOCAB_FILE = "vocab.json"
WEIGHTS_FILE = "model.safetensors"
CHECKPOINT_DIR = "checkpoint"
LAST_WEIGHTS = "last.safetensors"
TRAINER_STATE = "trainer_state.pt"
RESULTS_FILE = "results.json"


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


def save_weights(model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    atomic_write_bytes(path, save_safetensors_bytes(_unique_state(model), metadata=metadata))


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load safetensors weights into ``model`` (any device), accepting tied weights stored once."""
    path = Path(path)
    if not path.is_file():
        raise RnnkitError("weights file missing", path)
    try:
        state = load_safetensors_bytes(path.read_bytes())
    except (SafetensorError, ValueError, OSError) as e:
        raise RnnkitError(f"weights file is corrupt ({e})", path) from None
    expected = model.state_dict()
    for name, tensor in expected.items():  # tied aliases point at a stored name
        if name not in state:
            alias = next((n for n, t in expected.items() if n in state and t.data_ptr() == tensor.data_ptr()),
                         None)
            if alias is None:
                raise RnnkitError(f"weights file lacks '{name}' (was it made for another model?)", path)
            state[name] = state[alias]
    unexpected = set(state) - set(expected)
    if unexpected:
        raise RnnkitError(f"weights file has unexpected tensors {sorted(unexpected)[:3]}", path)
    for name, tensor in expected.items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise RnnkitError(f"'{name}' has shape {tuple(state[name].shape)}, model expects "
                              f"{tuple(tensor.shape)} (config and weights disagree)", path)
    model.load_state_dict(state)


def save_checkpoint(out_dir: str | Path, model: nn.Module, trainer_state: dict,
                    rank_states: dict[int, dict] | None = None) -> None:
    """Write ``checkpoint/`` whole: build it under a temporary name, then swap it in."""
    out_dir = Path(out_dir)
    final = out_dir / CHECKPOINT_DIR
    tmp = Path(tempfile.mkdtemp(prefix=".checkpoint.", dir=out_dir))
    try:
        os.chmod(tmp, DIR_MODE)
        save_weights(model, tmp / LAST_WEIGHTS, {"step": str(trainer_state["step"])})
        torch.save(trainer_state, tmp / TRAINER_STATE)
        for rank, state in (rank_states or {}).items():
            torch.save(state, tmp / f"rng_rank{rank}.pt")
        old = out_dir / f"{CHECKPOINT_DIR}.old"
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
        for stale in out_dir.glob(".checkpoint.*"):  # left by a run killed while it wrote (one writer: rank 0)
            shutil.rmtree(stale, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _find_checkpoint(out_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder (``checkpoint.old`` if a swap was cut short), or None."""
    for name in (CHECKPOINT_DIR, f"{CHECKPOINT_DIR}.old"):
        path = Path(out_dir) / name
        if (path / TRAINER_STATE).is_file() and (path / LAST_WEIGHTS).is_file():
            return path
    return None


def has_checkpoint(out_dir: str | Path) -> bool:
    """Whether ``out_dir`` holds a complete checkpoint."""
    return _find_checkpoint(out_dir) is not None


def checkpoint_path(out_dir: str | Path) -> Path:
    """The checkpoint folder to resume from; a clear error when there is none."""
    path = _find_checkpoint(out_dir)
    if path is None:
        raise RnnkitError("no checkpoint to resume from (train without --resume first)", out_dir)
    return path


def load_trainer_state(ckpt: Path, rank: int = 0) -> tuple[dict, dict | None]:
    try:
        state = torch.load(ckpt / TRAINER_STATE, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a damaged file
        raise RnnkitError(f"trainer state is corrupt ({e})", ckpt / TRAINER_STATE) from None
    rng_file = ckpt / f"rng_rank{rank}.pt"
    try:
        rng = torch.load(rng_file, map_location="cpu", weights_only=True) if rng_file.is_file() else None
    except Exception as e:  # as above
        raise RnnkitError(f"RNG state is corrupt ({e})", rng_file) from None
    return state, rng


def require_model_dir(model_dir: str | Path) -> Path:
    """Check a model directory has what loading needs; name the first missing piece."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise RnnkitError("model directory not found", model_dir)
    for name in (CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE):
        if not (model_dir / name).is_file():
            raise RnnkitError(f"not a complete model directory: '{name}' is missing", model_dir)
    return model_dir

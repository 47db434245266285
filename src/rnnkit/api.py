"""The Python API, mirroring the command line: ``rnnkit.train(...)`` and ``rnnkit.load(DIR)``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from rnnkit import distributed as dist_utils
from rnnkit import runtime
from rnnkit.checkpoint import (
    CONFIG_FILE,
    RESULTS_FILE,
    VOCAB_FILE,
    WEIGHTS_FILE,
    atomic_write_text,
    load_weights,
    require_model_dir,
)
from rnnkit.config import Config, apply_overrides, config_from_dict, load_config, load_yaml, override_keys, save_config
from rnnkit.errors import RnnkitError
from rnnkit.tasks import task_classes
from rnnkit.train import Trainer, resolve_device, seed_everything

# What may change when resuming: how long to train and where, not what is trained.
RESUMABLE_KEYS = ("train.epochs", "train.max_steps", "train.device", "train.progress", "train.threads",
                  "train.log_every", "train.eval_every", "train.save_every", "train.early_stop")


def find_splits(path: str | Path) -> dict[str, str]:
    """A file is the training text; a folder is searched for train / valid / test files by name."""
    path = Path(path)
    if not path.exists():
        raise RnnkitError("data path not found", path)
    if path.is_file():
        return {"train": str(path.resolve())}
    found: dict[str, str] = {}
    for split, words in (("train", ("train",)), ("valid", ("valid", "val", "dev")), ("test", ("test",))):
        matches = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                         and any(w in re.split(r"[^a-z0-9]+", p.name.lower()) or p.name.lower().startswith(w)
                                 for w in words))
        if len(matches) > 1:  # PTB ships ptb.char.train.txt beside ptb.train.txt: the word-level one
            matches = [m for m in matches if ".char." not in m.name] or matches
        if len(matches) > 1:
            raise RnnkitError(f"several {split} files ({', '.join(m.name for m in matches)}); "
                              "name the file instead", path)
        if matches:
            found[split] = str(matches[0].resolve())
    if "train" not in found:
        raise RnnkitError("no training file in the folder (a name with the word 'train', e.g. ptb.train.txt, "
                          "en_train.txt)", path)
    return found


def _resolved(path: str | None) -> str | None:
    return str(Path(path).resolve()) if path else None


def build_config(task: str, recipe: str | None, data: str | None, valid: str | None, test: str | None,
                 overrides: list[str] | None) -> Config:
    extra: dict[str, Any] = {"task": task}
    splits = find_splits(data) if data else {}
    if valid:
        splits["valid"] = str(Path(valid).resolve())
    if test:
        splits["test"] = str(Path(test).resolve())
    if splits:
        extra["data"] = splits
    cfg = load_config(recipe, overrides, extra)
    for split in ("train", "valid", "test"):
        setattr(cfg.data, split, _resolved(getattr(cfg.data, split)))
    return cfg


def _resume_config(out_dir: Path, overrides: list[str] | None) -> Config:
    values = load_yaml(out_dir / CONFIG_FILE)
    keys = override_keys(overrides)
    for key in keys:
        if key not in RESUMABLE_KEYS:
            raise RnnkitError(f"cannot change '{key}' when resuming (only {', '.join(RESUMABLE_KEYS)})")
    return config_from_dict(apply_overrides(values, overrides or []), str(out_dir / CONFIG_FILE), keys)


def _check_resume_inputs(cfg: Config, out_dir: Path, recipe, data, valid, test) -> None:
    """Resuming trains what ``config.yaml`` in ``out_dir`` says; data named again must be the same data."""
    given = {**(find_splits(data) if data else {}), **({"valid": _resolved(valid)} if valid else {}),
             **({"test": _resolved(test)} if test else {})}
    for split, path in given.items():
        if path != getattr(cfg.data, split):
            raise RnnkitError(f"--resume continues with the run's own data; its {split} file is "
                              f"{getattr(cfg.data, split)}, not {path} (leave out --data to resume)",
                              out_dir / CONFIG_FILE)
    if recipe:
        print(f"resuming with {out_dir / CONFIG_FILE} (the recipe is not read again)", flush=True)


def prepare_config(task: str, recipe: str | None, data: str | None, out_dir: Path, overrides: list[str] | None,
                   valid: str | None, test: str | None, resume: bool) -> Config:
    """The run's config, checked against ``out_dir``: read back from it when resuming (data named again
    must be the same), else built from the recipe for an empty or new ``out_dir``. Writes nothing."""
    if resume:
        if not (out_dir / CONFIG_FILE).is_file():
            raise RnnkitError("nothing to resume: no config.yaml in the output folder", out_dir)
        cfg = _resume_config(out_dir, overrides)
        _check_resume_inputs(cfg, out_dir, recipe, data, valid, test)
        return cfg
    cfg = build_config(task, recipe, data, valid, test, overrides)
    if out_dir.exists() and not out_dir.is_dir():
        raise RnnkitError("--out is a file; give a folder for the model", out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise RnnkitError("output folder is not empty; pass --resume to continue it, or choose "
                          "another --out", out_dir)
    return cfg


def write_run_files(cfg: Config, task, out_dir: Path) -> None:
    """A new run's model directory before training: config, tokenizer and vocabulary."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RnnkitError(f"cannot create the model folder ({e.strerror or e})", out_dir) from None
    save_config(cfg, out_dir / CONFIG_FILE)
    task.tokenizer.save(out_dir)
    task.vocab.save(out_dir / VOCAB_FILE)


def train(task: str = "lm", recipe: str | None = None, data: str | None = None, out: str | Path = "runs/model",
          overrides: list[str] | None = None, resume: bool = False, init_from: str | Path | None = None,
          device: str | None = None, valid: str | None = None, test: str | None = None):
    """Train a model into ``out`` and return it loaded (``rnnkit.load(out)``).

    ``recipe`` is a built-in name (``rnnkit recipes``) or a YAML file; ``data`` a training file or a
    folder with train/valid/test files; ``overrides`` are ``section.key=value`` strings.
    ``resume`` continues the checkpoint in ``out`` exactly (optimizer, schedule, data position, RNG);
    ``init_from`` starts a fresh run from another model's weights and vocabulary.
    """
    out_dir = Path(out)
    if resume and init_from:
        raise RnnkitError("--resume and --init-from exclude each other")
    cfg = prepare_config(task, recipe, data, out_dir, overrides, valid, test, resume)
    if device:
        cfg.train.device = device
    device_ = resolve_device(cfg.train.device)
    dist = dist_utils.init_distributed(device_)  # under torchrun: join the group before touching files
    dist_utils.barrier()
    if dist.enabled and device_.type == "cuda":
        device_ = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device_)
    return run(cfg, out_dir, device_, dist, resume, Path(init_from) if init_from else None)


def run(cfg: Config, out_dir: Path, device: torch.device, dist: dist_utils.DistInfo, resume: bool = False,
        init_from: Path | None = None):
    """Train ``cfg`` into ``out_dir`` on ``device`` (the body of :func:`train`)."""
    task_cls, _ = task_classes(cfg.task)
    threads = runtime.set_threads(cfg.train.threads)
    seed_everything(cfg.train.seed)  # same initial weights on every rank
    if init_from is not None:
        require_model_dir(init_from)
    vocab_from = out_dir if resume else init_from
    task = task_cls(cfg, dist, device, vocab_from=vocab_from)
    if init_from is not None:
        load_weights(task.model, init_from / WEIGHTS_FILE)
    seed_everything(cfg.train.seed + dist.rank)  # dropout masks differ between ranks
    if dist.is_main and cfg.train.progress:
        print(f"{task.describe()}; device {device}; {threads}; {dist.world} process(es)", flush=True)
    # the trainer checks optimizer and schedule names: fail before anything is written to out_dir
    trainer = Trainer(task, cfg.train, out_dir, device, dist)
    if dist.is_main and not resume:
        write_run_files(cfg, task, out_dir)
    dist_utils.barrier()
    if resume:
        trainer.resume()
    elif init_from is not None:  # a step-0 checkpoint holds the copied weights: a resume starts from them
        trainer.save_checkpoint()
    trainer.fit()
    model = None
    if dist.is_main:
        model = load(out_dir, device=str(device))
        model.results = _final_results(cfg, task, trainer.best_metrics, model, out_dir)
    dist_utils.barrier()
    if dist.enabled:
        dist_utils.shutdown()
    return model


def _final_results(cfg: Config, task, best_valid: dict | None, model, out_dir: Path) -> dict:
    """Metrics of the best weights: on the validation data as the trainer scored them when it saved them
    (not scored again), and on the test file with ``model``, those weights loaded."""
    if best_valid is None:  # a run resumed from a checkpoint written before the trainer kept them
        load_weights(task.model, out_dir / WEIGHTS_FILE)
        best_valid = task.validate(task.model)
    results = {"valid": best_valid}
    if cfg.data.test:
        results["test"] = model.evaluate(cfg.data.test)
    atomic_write_text(out_dir / RESULTS_FILE, json.dumps(results, indent=1))
    return results


def read_model_config(model_dir: str | Path) -> tuple[Path, Config]:
    """A complete model directory (else a clear error) and the config it was trained with."""
    model_dir = require_model_dir(model_dir)
    return model_dir, config_from_dict(load_yaml(model_dir / CONFIG_FILE), str(model_dir / CONFIG_FILE))


def load(model_dir: str | Path, device: str = "cpu"):
    """Load a trained model directory on ``device`` (any device, wherever it was trained)."""
    model_dir, cfg = read_model_config(model_dir)
    _, model_cls = task_classes(cfg.task)
    return model_cls.load(model_dir, cfg, resolve_device(device))

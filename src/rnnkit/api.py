"""The Python API, mirroring the command line: ``rnnkit.train(...)`` and ``rnnkit.load(DIR)``."""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from rnnkit import distributed as dist_utils
from rnnkit import runtime, transfer
from rnnkit.arguments import (
    check_bool_argument,
    check_overrides_argument,
    check_path_argument,
    check_str_argument,
)
from rnnkit.checkpoint import (
    CONFIG_FILE,
    LAST_WEIGHTS,
    MARKER_FILE,
    RESULTS_FILE,
    WEIGHTS_FILE,
    atomic_write_text,
    check_model_files,
    check_not_a_run_entry,
    checkpoint_path,
    fingerprint_metadata,
    foreign_entries,
    load_weights,
    read_marker,
    read_safetensors_header,
    refuse_foreign_run_entries,
    remove_run_files,
    remove_stale_temps,
    require_files,
    require_marker,
    require_model_dir,
    run_started,
    write_marker,
)
from rnnkit.config import (
    DEFAULT_TASK,
    TaskConfig,
    apply_overrides,
    config_from_dict,
    key_source,
    load_config,
    load_yaml,
    override_keys,
    resolve_recipe,
    save_config,
    task_of,
)
from rnnkit.data.labelled import class_names, read_files
from rnnkit.data.readers import check_file
from rnnkit.errors import RnnkitError, parse_json
from rnnkit.files import check_not_input, data_fingerprint
from rnnkit.lock import LOCK_FILE, ModelDirLock
from rnnkit.tasks import get_task
from rnnkit.train import (
    Trainer,
    check_training_keys,
    refuse_other_backend,
    resolve_device,
    seed_everything,
)

# What may change when resuming: how long and how fast to train and where, not what is trained (a task
# adds its own: Task.resumable_keys).
RESUMABLE_KEYS = ("train.lr", "train.betas", "train.momentum", "train.rmsprop_alpha", "train.clip", "train.epochs",
                  "train.max_steps", "train.device", "train.progress", "train.threads", "train.log_every",
                  "train.eval_every", "train.save_every", "train.early_stop")
#: what a resume may add to a run that has none (--test): a test file is scored after training only
#: (:func:`check_test_addable`)
TEST_KEY = "data.test"


def resumable_keys(cfg: TaskConfig) -> tuple[str, ...]:
    """The keys ``--resume --set`` may change for ``cfg``'s task: the shared ones and the task's."""
    return (*RESUMABLE_KEYS, *get_task(cfg.task).resumable_keys)


#: the words in a file's name that make it a split's file in a data folder
SPLIT_WORDS = {"train": ("train",), "valid": ("valid", "val", "dev"), "test": ("test",)}


def names_split(name: str, split: str) -> bool:
    """Whether a file name says it holds ``split``: one of its words is a part of the name (between
    non-alphanumerics: ``ptb.train.txt``, ``test_2016_flickr.de``) or starts it (``trainset.txt``)."""
    name = name.lower()
    return any(w in re.split(r"[^a-z0-9]+", name) or name.startswith(w) for w in SPLIT_WORDS[split])


def find_splits(path: str | Path, folders: bool = False) -> dict[str, str]:
    """A file is the training text; a folder is searched for train / valid / test files by name. ``folders``
    (a task whose data set may be a folder, :attr:`Task.data_folders`): sub-folders count as splits too, and a
    folder holding none is itself the training set."""
    path = Path(path)
    if not path.exists():
        raise RnnkitError("data path not found", path)
    if not path.is_dir():  # a file; a device or FIFO is refused by name
        return {"train": str(check_file(path).resolve())}
    found: dict[str, str] = {}
    for split in SPLIT_WORDS:
        matches = sorted(p for p in path.iterdir() if (p.is_file() or folders and p.is_dir())
                         and not p.name.startswith(".") and names_split(p.name, split))
        if len(matches) > 1:  # PTB ships ptb.char.train.txt beside ptb.train.txt: the word-level one
            matches = [m for m in matches if ".char." not in m.name] or matches
        if len(matches) > 1:
            raise RnnkitError(f"several {split} files ({', '.join(m.name for m in matches)}); "
                              "name the file instead", path)
        if matches:
            found[split] = str(matches[0].resolve())
    if "train" not in found and folders and not found:
        return {"train": str(path.resolve())}
    if "train" not in found:
        raise RnnkitError("no training file in the folder (a name with the word 'train', e.g. ptb.train.txt, "
                          "en_train.txt)", path)
    return found


def _resolved(path: str | None) -> str | None:
    return str(Path(path).resolve()) if path else None


def build_config(task: str, recipe: str | None, data: str | None, valid: str | None, test: str | None,
                 overrides: list[str] | None) -> TaskConfig:
    extra: dict[str, Any] = {"task": task}
    # the task resolves --data with the recipe's settings (seq2seq: aligned files by data.src / data.trg)
    splits = get_task(task).find_data(data, load_config(recipe, overrides, extra)) if data else {}
    if valid:
        splits["valid"] = str(Path(valid).resolve())
    if test:
        splits["test"] = str(Path(test).resolve())
    if splits:
        extra["data"] = splits
    cfg = load_config(recipe, overrides, extra)
    for split in ("train", "valid", "test"):  # every task's data section names its splits so
        if hasattr(cfg.data, split):
            setattr(cfg.data, split, _resolved(getattr(cfg.data, split)))
    return cfg


def _setting(cfg: TaskConfig, key: str) -> Any:
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def saved_config_values(model_dir: Path, loading: bool = False) -> dict[str, Any]:
    """The values of a model directory's config.yaml, every section present: rnnkit writes them all, and an
    empty or cut file would otherwise load as the built-in defaults and the errors blame other files.
    ``loading``: the files its task cannot load without come first (an error naming the first missing)."""
    path = model_dir / CONFIG_FILE
    values = load_yaml(path)
    task = task_of(values, str(path))
    if loading:
        require_files(model_dir, task.required_files)
    missing = [name for name in task.config_class.__dataclass_fields__ if name not in values]
    if missing:
        raise RnnkitError(f"lacks {', '.join(missing)}: not the config rnnkit saved for this model (it writes "
                          "every section)", path)
    return values


def _resume_config(out_dir: Path, overrides: list[str] | None) -> TaskConfig:
    """The saved config with ``overrides``: a key outside the resumable keys may be repeated, not changed."""
    values = saved_config_values(out_dir)
    saved = config_from_dict(copy.deepcopy(values), str(out_dir / CONFIG_FILE))
    keys = override_keys(overrides)
    cfg = config_from_dict(apply_overrides(values, overrides or []), str(out_dir / CONFIG_FILE), keys)
    allowed = resumable_keys(saved)
    for key in sorted(keys - set(allowed)):
        if _setting(cfg, key) != _setting(saved, key):
            raise RnnkitError(f"cannot change '{key}' when resuming ({_setting(saved, key)!r} in the run, "
                              f"{_setting(cfg, key)!r} asked for; safe to change: {', '.join(allowed)}); "
                              "--overwrite starts the run again", out_dir / CONFIG_FILE)
    return cfg


def resume_changes(out_dir: Path, cfg: TaskConfig) -> dict[str, tuple[Any, Any]]:
    """What ``cfg`` changes of the run's saved config (resumable keys, and a test file added): key -> (old, new)."""
    saved = config_from_dict(saved_config_values(out_dir), str(out_dir / CONFIG_FILE))
    keys = [*resumable_keys(cfg), *([TEST_KEY] if hasattr(cfg.data, "test") else [])]
    return {key: (_setting(saved, key), _setting(cfg, key)) for key in keys
            if _setting(saved, key) != _setting(cfg, key)}


def check_test_addable(cfg: TaskConfig, what: str, out_dir: Path) -> None:
    """Whether a test file (``what``, for the error) may join the run in ``out_dir`` on resume: unless it holds
    ``data.test_fraction`` of its training data out as its test set, which a test file would put back into
    training (the classifier's and seq2seq's rule), it changes nothing that is trained."""
    held = getattr(cfg.data, "test_fraction", 0)
    if held:
        raise RnnkitError(f"this run holds data.test_fraction {held:g} of its training data out as its test set, and "
                          f"{what} would put that part back into training: a resume cannot add it (score the file "
                          f"with `rnnkit evaluate {out_dir} --data FILE`)", out_dir / CONFIG_FILE)


def _check_resume_inputs(cfg: TaskConfig, out_dir: Path, recipe, data, valid, test) -> None:
    """Resuming trains what ``config.yaml`` in ``out_dir`` says; data named again must be the same data. A test
    file may be added to a run that has none (:func:`check_test_addable`): ``cfg`` takes it."""
    given = {split: (path, "--data") for split, path in
             (get_task(cfg.task).find_data(data, cfg) if data else {}).items()}  # a folder names its splits
    given.update({split: (_resolved(path), f"--{split}") for split, path in (("valid", valid), ("test", test))
                  if path})
    for split, (path, option) in given.items():
        if path == getattr(cfg.data, split):
            continue
        if split == "test" and not cfg.data.test:
            check_test_addable(cfg, f"{option} {path}", out_dir)
            if not _names_data(cfg, path):  # recorded in config.yaml, so checked now, not after training
                raise RnnkitError("test file not found", path)
            cfg.data.test = path
            continue
        raise RnnkitError(f"--resume continues with the run's own data; its {split} file is "
                          f"{getattr(cfg.data, split)}, not {path} (leave out {option} to resume)",
                          out_dir / CONFIG_FILE)
    if recipe:
        print(f"resuming with {out_dir / CONFIG_FILE} (the recipe is not read again)", flush=True)


def _names_data(cfg: TaskConfig, path: str) -> bool:
    """``path`` is a file, or names data as the task reads it (seq2seq's stem form: PATH.de beside PATH.en)."""
    if Path(path).exists():
        return True
    try:
        get_task(cfg.task).find_data(path, cfg)
    except RnnkitError:
        return False
    return True


def _check_replaceable(out_dir: Path) -> None:
    """--overwrite replaces a folder rnnkit made that holds nothing but rnnkit's files."""
    require_marker(out_dir, "replace")
    foreign = foreign_entries(out_dir)
    if foreign:
        raise RnnkitError(f"rnnkit replaces only its own files, and this folder also holds "
                          f"{', '.join(foreign[:5])}{' ...' if len(foreign) > 5 else ''}: move them or choose "
                          "another --out", out_dir)


def holds_files(out_dir: Path) -> bool:
    """Whether ``out_dir`` exists and holds anything but a lock file (a folder a new run may not take)."""
    return out_dir.is_dir() and any(p.name != LOCK_FILE for p in out_dir.iterdir())


def _check_new_out_dir(out_dir: Path, overwrite: bool) -> None:
    """``out_dir`` is new, empty, or (with ``overwrite``) a folder rnnkit may replace. Writes nothing."""
    if out_dir.exists() and not out_dir.is_dir():
        raise RnnkitError("--out is a file; give a folder for the model", out_dir)
    if not holds_files(out_dir):
        return
    if not overwrite:
        raise RnnkitError("output folder is not empty; pass --resume to continue it, --overwrite to start it "
                          "again (a folder rnnkit made), or choose another --out", out_dir)
    _check_replaceable(out_dir)


def prepare_config(task: str, recipe: str | None, data: str | None, out_dir: Path, overrides: list[str] | None,
                   valid: str | None, test: str | None, resume: bool, overwrite: bool = False) -> TaskConfig:
    """The run's config, checked against ``out_dir``: read back from it when resuming (data named again
    must be the same), else built from the recipe for an empty or new ``out_dir`` (or, with
    ``overwrite``, one rnnkit made). Writes nothing."""
    if resume and overwrite:
        raise RnnkitError("--resume and --overwrite exclude each other")
    if resume:
        if out_dir.is_dir():
            check_model_files(out_dir)
        if not (out_dir / CONFIG_FILE).is_file():
            if (out_dir / MARKER_FILE).is_file():  # set-up writes config.yaml last
                raise RnnkitError("the run stopped while it set up this folder, before config.yaml: nothing was "
                                  "trained; --overwrite starts it again", out_dir)
            raise RnnkitError("nothing to resume: no config.yaml in the output folder", out_dir)
        require_marker(out_dir, "resume")
        cfg = _resume_config(out_dir, overrides)
        if task != cfg.task:
            raise RnnkitError(f"the run in this folder is a {cfg.task} run, not {task} (rnnkit train {cfg.task} "
                              "--resume)", out_dir / CONFIG_FILE)
        _check_resume_inputs(cfg, out_dir, recipe, data, valid, test)
    else:
        cfg = build_config(task, recipe, data, valid, test, overrides)
    # a model folder inside a data folder would be read as data (in a folder per class, as a class of its own)
    check_not_input(out_dir, "--out", [("--data" if split == "train" else f"--{split}", getattr(cfg.data, split))
                                       for split in ("train", "valid", "test") if hasattr(cfg.data, split)])
    check_not_a_run_entry(out_dir, "--out")  # nor in another run's checkpoint/, which it would stop
    if not resume:
        _check_new_out_dir(out_dir, overwrite)
    config_file = out_dir / CONFIG_FILE if resume else resolve_recipe(recipe) if recipe else None
    check_training_keys(cfg.train, get_task(cfg.task), lambda key: key_source(key, overrides, config_file),
                        resume)  # before the task reads its data
    return cfg


def set_up_model_dir(cfg: TaskConfig, task, out_dir: Path, made_by: str, overwrite: bool = False,
                     init: str = "") -> ModelDirLock:
    """A new run's model directory before training, under its lock (returned, held): marker (with ``init``, the
    run's :func:`init_options`), config and the task's assets (the LM: tokenizer and vocabulary); with ``overwrite``
    an earlier run's files are removed first (only rnnkit's)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RnnkitError(f"cannot create the model folder ({e.strerror or e})", out_dir) from None
    lock = ModelDirLock.acquire(out_dir)
    try:
        _check_new_out_dir(out_dir, overwrite)  # again under the lock: another run may have started here
        removed = remove_run_files(out_dir) if overwrite else []
        if removed:
            print(f"replacing the earlier run in {out_dir}: removed {', '.join(removed)}", flush=True)
        write_marker(out_dir, made_by, init, data_record(cfg))
        task.save_assets(out_dir)
        save_config(cfg, out_dir / CONFIG_FILE)  # last: a folder with config.yaml holds its assets (see --resume)
    except BaseException:
        lock.release()
        raise
    return lock


def _data_files(cfg: TaskConfig) -> dict[str, Path]:
    """The run's data files and folders by split (a seq2seq run's aligned files, named by their stem, are not
    one file: they are left out)."""
    given = {split: getattr(cfg.data, split, None) for split in ("train", "valid", "test")}
    return {split: Path(path) for split, path in given.items() if path and Path(path).exists()}


def data_record(cfg: TaskConfig) -> dict[str, dict[str, int | str]]:
    """What rnnkit.json records of a new run's data: each split's bytes and sha256 (:func:`data_fingerprint`)."""
    return {split: _fingerprint(cfg, path) for split, path in _data_files(cfg).items()}


def _fingerprint(cfg: TaskConfig, path: Path) -> dict[str, int | str]:
    """:func:`data_fingerprint` of the files the task reads: of a folder per class (or of texts), its reader's own
    listing (the class folders' non-hidden .txt files, links followed; not unsup/, .DS_Store or a README)."""
    if cfg.task not in ("classify", "autoencoder") or not path.is_dir():
        return data_fingerprint(path)
    classes = class_names(cfg.data.classes) if cfg.task == "classify" else ()
    return data_fingerprint(path, read_files(path, classes, labelled=cfg.task == "classify"))


def _check_data_record(out_dir: Path, cfg: TaskConfig) -> None:
    """--resume continues on the data the run started with: a data file (or folder) rnnkit.json records that
    changed since is refused, naming it (runs recorded before rnnkit kept the record, and a test file added by a
    resume, are not checked)."""
    recorded = (read_marker(out_dir) or {}).get("data", {})
    for split, path in _data_files(cfg).items():
        if split not in recorded:
            continue
        now = _fingerprint(cfg, path)
        if now != recorded[split]:
            change = (f"{recorded[split]['bytes']:,} bytes then, {now['bytes']:,} now" if now["bytes"] !=
                      recorded[split]["bytes"] else "the same size, other contents (sha256)")
            raise RnnkitError(f"the {split} data changed since the run started ({change}): --resume continues a run "
                              "on its own data; restore it, or start a new run (--overwrite, or another --out)", path)


def open_for_resume(out_dir: Path, cfg: TaskConfig, backend: str = "torch") -> ModelDirLock:
    """Lock a run's folder to resume it (returned, held): temp files of killed writes are removed and the
    folder is checked (:func:`check_resume_dir`)."""
    lock = ModelDirLock.acquire(out_dir)
    try:
        remove_stale_temps(out_dir)
        check_resume_dir(out_dir, cfg, backend)
    except BaseException:
        lock.release()
        raise
    return lock


def init_options(init_from: str | Path | None, prefix: str | None, partial: bool) -> str:
    """The --init-from options of a run as rnnkit.json records them (the folder's absolute path), "" for none."""
    if not init_from:
        return ""
    return shlex.join(["--init-from", str(Path(init_from).resolve()), *(["--init-prefix", prefix] if prefix else []),
                       *(["--init-partial"] if partial else [])])


def check_resume_init(out_dir: Path, init: str) -> None:
    """--resume with the --init-from options (``init``, :func:`init_options`) the run started with, as rnnkit.json
    records them (the same command again), is accepted: the resume loads the run's own checkpoint, not the source.
    Other options are refused."""
    recorded = (read_marker(out_dir) or {}).get("init", "")
    if init and init != recorded:
        started = (f"started from `{recorded}`" if recorded else
                   "records no --init-from (it started without one, or before rnnkit recorded it)")
        raise RnnkitError(f"--resume continues this run, which {started}, not `{init}`: leave out --init-from, "
                          "--init-prefix and --init-partial to resume (or give the run's own), or --overwrite to start "
                          "it again", out_dir / MARKER_FILE)


def init_to_repeat(out_dir: Path) -> tuple[str | None, str | None, bool]:
    """The --init-from options (source, prefix, partial) that rnnkit.json records for a run stopped before its first
    checkpoint (the step-0 one holds the copied weights): a resume starts it again from step 0 as it first started,
    so it applies them again. None for other runs. The source's weights must still be there, unchanged since the run
    started (rnnkit.json's ``created``): else an error, not a silently different run."""
    marker = read_marker(out_dir) or {}
    recorded = marker.get("init", "")
    if not recorded or run_started(out_dir):
        return None, None, False
    try:  # as init_options wrote it
        options = shlex.split(recorded)
        source = Path(options[options.index("--init-from") + 1])
        started = datetime.strptime(marker["created"], "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except (ValueError, IndexError):
        raise RnnkitError("ownership marker is corrupt (init or created is not as rnnkit writes it)",
                          out_dir / MARKER_FILE) from None
    weights = source / WEIGHTS_FILE
    problem = ("is missing" if not weights.is_file() else
               "has changed since this run started" if int(weights.stat().st_mtime) > started else "")
    if problem:
        raise RnnkitError(f"this run started from `{recorded}` and stopped before its first checkpoint, so --resume "
                          f"would apply that again, but {weights} {problem}: --overwrite starts the run again",
                          out_dir / MARKER_FILE)
    prefix = options[options.index("--init-prefix") + 1] if "--init-prefix" in options else None
    return str(source), prefix, "--init-partial" in options


def record_resume_changes(out_dir: Path, cfg: TaskConfig, changes: dict[str, tuple[Any, Any]]) -> None:
    """Write the settings a resume changes (:func:`resume_changes`) into the run's config.yaml, once the task was
    built with them: a test file added that its task refuses (missing, an unknown label) is never recorded."""
    if changes:
        save_config(cfg, out_dir / CONFIG_FILE)


_RUN_KEY, _BACKEND_KEY = "rnnkit.run", "rnnkit.backend"


def _run_settings(cfg: TaskConfig) -> dict[str, Any]:
    """Every config value a resume may not change (all but its resumable keys), by ``section.key``."""
    flat = {f"{section}.{key}": value for section, values in cfg.to_dict().items() if isinstance(values, dict)
            for key, value in values.items()}
    flat["task"] = cfg.task
    allowed = resumable_keys(cfg)
    return {key: value for key, value in sorted(flat.items()) if key not in allowed}


def weights_metadata(out_dir: Path, cfg: TaskConfig, backend: str) -> dict[str, str]:
    """What a run's weights files carry: the fingerprint binding them to the folder, the backend that
    trained them and the run's settings that a resume checks config.yaml against."""
    return {**fingerprint_metadata(out_dir, cfg), _BACKEND_KEY: backend,
            _RUN_KEY: json.dumps(_run_settings(cfg), sort_keys=True)}


def _check_run_settings(out_dir: Path, cfg: TaskConfig, weights: Path, metadata: dict[str, str], backend: str) -> None:
    """The checkpoint was trained by ``backend`` with the settings config.yaml holds now: an edit by hand
    of a key --resume may not change is refused naming the key (checkpoints without the record pass)."""
    refuse_other_backend(metadata.get(_BACKEND_KEY, backend), backend, out_dir)
    if _RUN_KEY not in metadata:
        return
    try:
        saved = parse_json(metadata[_RUN_KEY])
    except ValueError:
        saved = None
    if not isinstance(saved, dict):
        raise RnnkitError(f"the record of the run's settings is damaged (metadata '{_RUN_KEY}' edited?)", weights)
    now = json.loads(json.dumps(_run_settings(cfg)))
    # a key only a newer rnnkit records is absent from older checkpoints; one an older rnnkit recorded that a resume
    # may now change (train.momentum, rmsprop_alpha) is the resume's to change
    for key in sorted(saved.keys() - set(resumable_keys(cfg))):
        if key == TEST_KEY and not saved[key] and now.get(key):  # a test file added on an earlier resume
            check_test_addable(cfg, f"{TEST_KEY} {now[key]}", out_dir)
        elif saved[key] != now.get(key):
            raise RnnkitError(f"'{key}' is {now.get(key)!r}, but the run was trained with {saved[key]!r} (the file "
                              f"was edited): --resume may change only {', '.join(resumable_keys(cfg))}; --overwrite "
                              "starts the run again", out_dir / CONFIG_FILE)


def check_resume_dir(out_dir: Path, cfg: TaskConfig, backend: str = "torch") -> None:
    """Before a resume builds anything: a run that got as far as weights, a log or a checkpoint has a
    complete checkpoint (else an error naming what is missing); its weights and model.safetensors match
    the model config.yaml describes (header names, shapes, dtypes: nothing allocated) and the folder
    (fingerprint), config.yaml holds the settings the run was trained with, and its data files are those it
    started with (:func:`_check_data_record`). A run stopped before any
    of those starts again from step 0 (:meth:`Trainer.resume`)."""
    refuse_foreign_run_entries(out_dir)
    _check_data_record(out_dir, cfg)
    if not run_started(out_dir):
        return
    ckpt = checkpoint_path(out_dir)
    model_cls = get_task(cfg.task).loaded_class
    last = ckpt / LAST_WEIGHTS
    metadata = read_safetensors_header(last)[1]
    _check_run_settings(out_dir, cfg, last, metadata, backend)
    model_cls.checked_parts(out_dir, cfg, last, torch.float64 if backend == "numpy" else torch.float32)
    if os.path.lexists(out_dir / WEIGHTS_FILE):
        model_cls.checked_parts(out_dir, cfg)


def announce_resume(trainer: Trainer, changes: dict[str, tuple[Any, Any]]) -> None:
    """Say where a resumed run continues (step, epoch, batch), or that it is finished, and what it
    changed (:func:`resume_changes`); under the step schedule a new train.lr is the schedule's base, and the line
    says the lr the current epoch really trains at; under the triangular one a new train.epochs / max_steps changes
    the schedule's length, and the line says it and the next update's rate (or that no update is left). A finished
    run's line names its changes too: config.yaml records them for a resume that goes on."""
    cfg = trainer.cfg
    said = {key: f"{key} {old} -> {new}" for key, (old, new) in changes.items()}
    if trainer.finished and trainer.done():
        recorded = f"; changed in config.yaml: {', '.join(said.values())}" if said else ""
        print(f"resuming {trainer.out_dir}: the run finished at step {trainer.step}; nothing left to train (raise "
              f"train.epochs or train.max_steps to go on): validating its weights{recorded}", flush=True)
        return
    where = (f"epoch {trainer.epoch + 1}, batch {trainer.batch_index + 1}" if trainer.batch_index
             else f"the start of epoch {trainer.epoch + 1}")
    if cfg.schedule == "step" and "train.lr" in changes:
        lr = trainer.schedule.on_epoch_start(trainer.epoch)
        said["train.lr"] += f" (the step schedule's base lr: epoch {trainer.epoch + 1} trains at {lr:.4g})"
    if cfg.schedule == "triangular" and changes.keys() & {"train.epochs", "train.max_steps"}:
        # the schedule spans the run's updates, which these set: from here on it follows the new length
        next_update = ("no update is left to train" if trainer.done() else
                       f"update {trainer.step + 1} trains at {trainer.schedule.rate_at(trainer.step):.4g}")
        said["schedule"] = f"the triangular schedule now spans {trainer.schedule.total:,} updates ({next_update})"
    changed = f"; changed: {', '.join(said.values())}" if said else ""
    print(f"resuming {trainer.out_dir} from step {trainer.step} ({where}){changed}", flush=True)


def train(task: str = DEFAULT_TASK, recipe: str | None = None, data: str | None = None, out: str | Path = "runs/model",
          overrides: list[str] | None = None, resume: bool = False, init_from: str | Path | None = None,
          device: str | None = None, valid: str | None = None, test: str | None = None, *,
          overwrite: bool = False, made_by: str = "rnnkit train", init_prefix: str | None = None,
          init_partial: bool = False):
    """Train a model into ``out`` and return it loaded (``rnnkit.load(out)``).

    ``task`` is the task's name (``rnnkit train TASK``; a recipe that names another is refused).
    ``recipe`` is a built-in name (``rnnkit recipes``) or a YAML file; ``data`` a training file or a
    folder with train/valid/test files; ``overrides`` are ``section.key=value`` strings.
    ``resume`` continues the checkpoint in ``out`` exactly (optimizer, schedule, data position, RNG);
    overrides may then change only :func:`resumable_keys`, and the run's own ``init_from`` (``init_prefix``,
    ``init_partial``) may be given again, unread (another is an error); a run stopped before its first checkpoint
    applies its recorded ones again (:func:`init_to_repeat`). ``init_from`` starts a fresh run from another
    model's weights: of the same task, all of them and its vocabulary (strict); with ``init_partial``, or
    from another task, what matches by name and shape (vocabulary rows by token) into a model built from
    this run's data, with a report (:mod:`rnnkit.transfer`); ``init_prefix`` puts the source's names under
    a part of the new model (e.g. ``"encoder"``). ``overwrite`` starts again in an ``out`` that rnnkit made (its files
    are removed, nothing else). ``made_by`` is what the folder's ownership marker records.
    """
    check_train_arguments(task=task, recipe=recipe, data=data, out=out, overrides=overrides, resume=resume,
                          init_from=init_from, device=device, valid=valid, test=test, overwrite=overwrite)
    check_str_argument(init_prefix, "init_prefix", "e.g. 'encoder'", optional=True)
    check_bool_argument(init_partial, "init_partial")
    out_dir = Path(out)
    if (init_prefix or init_partial) and not init_from:
        raise RnnkitError(f"{'--init-prefix' if init_prefix else '--init-partial'} needs --init-from DIR")
    cfg = prepare_config(task, recipe, data, out_dir, overrides, valid, test, resume, overwrite)
    if resume:  # the same command again: the run's own --init-from is accepted, read only if no checkpoint holds it
        check_resume_init(out_dir, init_options(init_from, init_prefix, init_partial))
        init_from, init_prefix, init_partial = init_to_repeat(out_dir)
    if device:
        cfg.train.device = device
    device_ = resolve_device(cfg.train.device)
    dist = dist_utils.init_distributed(device_)  # under torchrun: join the group before touching files
    dist_utils.barrier()
    if dist.enabled and device_.type == "cuda":
        device_ = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device_)
    return run(cfg, out_dir, device_, dist, resume, Path(init_from) if init_from else None, overwrite, made_by,
               init_prefix=init_prefix or "", init_partial=init_partial)


def check_train_arguments(task: Any, recipe: Any, data: Any, out: Any, overrides: Any, resume: Any,
                          init_from: Any = None, device: Any = None, valid: Any = None, test: Any = None,
                          overwrite: Any = False) -> None:
    """Arguments of :func:`train` (and the NumPy backend's ``train_numpy``) of the right types, naming the
    wrong one; an unknown task is a clear error before anything is read."""
    check_str_argument(task, "task", "e.g. 'lm'")
    get_task(task)
    for name, value in (("recipe", recipe), ("data", data), ("init_from", init_from), ("valid", valid),
                        ("test", test)):
        check_path_argument(value, name, optional=True)
    check_path_argument(out, "out")
    check_overrides_argument(overrides)
    check_bool_argument(resume, "resume")
    check_bool_argument(overwrite, "overwrite")
    check_str_argument(device, "device", "auto | cpu | cuda", optional=True)


def run(cfg: TaskConfig, out_dir: Path, device: torch.device, dist: dist_utils.DistInfo, resume: bool = False,
        init_from: Path | None = None, overwrite: bool = False, made_by: str = "rnnkit train", *,
        init_prefix: str = "", init_partial: bool = False):
    """Train ``cfg`` into ``out_dir`` on ``device`` (the body of :func:`train`); rank 0 holds the folder's
    lock (from before a resume reads anything, or from the new run's first write) until the results are
    written."""
    task_cls = get_task(cfg.task)
    threads = runtime.set_threads(cfg.train.threads)
    with ExitStack() as held:
        changes = resume_changes(out_dir, cfg) if resume else {}
        if resume and dist.is_main:
            held.enter_context(open_for_resume(out_dir, cfg))
        seed_everything(cfg.train.seed)  # same initial weights on every rank
        strict = init_from is not None and transfer.is_strict(init_from, cfg.task, init_partial, init_prefix)
        reused = out_dir if resume else init_from if strict else None  # its assets: tokenizer and vocabulary too
        from_init = reused is None and task_cls.reads_text_from_init(cfg)  # tokenizer.from_init
        task = task_cls(cfg, dist, device, vocab_from=reused,
                        **({"text_from": transfer.text_reading(init_from)} if from_init else {}))
        if init_from is not None:
            report = transfer.init_model(task.model, init_from, task.vocabularies(), strict=strict,
                                         prefix=init_prefix)
            if dist.is_main:
                print(report, flush=True)
        if dist.is_main:
            task.warn_unknown_text(vocab_from_init=strict)
        seed_everything(cfg.train.seed + dist.rank)  # dropout masks differ between ranks
        if dist.is_main and cfg.train.progress:
            print(f"{task.describe()}; device {device}; {threads}; {dist.world} process(es)", flush=True)
        # the trainer checks optimizer and schedule names: fail before anything is written to out_dir
        trainer = Trainer(task, cfg.train, out_dir, device, dist)
        trainer.announce_rates()
        if dist.is_main and not resume:
            held.enter_context(set_up_model_dir(cfg, task, out_dir, made_by, overwrite,
                                                init_options(init_from, init_prefix, init_partial)))
        if dist.is_main:
            trainer.weights_metadata = weights_metadata(out_dir, cfg, trainer.backend)
        dist_utils.barrier()
        if resume:
            trainer.resume(changes)  # (before config.yaml records the changes: it may refuse one)
            if dist.is_main:
                record_resume_changes(out_dir, cfg, changes)
                announce_resume(trainer, changes)
        if init_from is not None:  # a step-0 checkpoint holds the copied weights: a resume starts from them
            trainer.save_checkpoint()
        trainer.fit()
        results = _final_results(task, trainer.best_metrics, out_dir, device) if dist.is_main else None
        dist_utils.barrier()
    if dist.enabled:
        dist_utils.shutdown()
    model = load(out_dir, device=str(device)) if dist.is_main else None
    if model is not None:
        model.results = results
    return model


def _final_results(task, best_valid: dict | None, out_dir: Path, device: torch.device) -> dict:
    """Metrics of the best weights: on the validation data as the trainer scored them when it saved them
    (not scored again), and on the test split, as the task scores it."""
    if best_valid is None:  # a run resumed from a checkpoint written before the trainer kept them
        load_weights(task.model, out_dir / WEIGHTS_FILE)
        best_valid = task.validate(task.model)
    results = {"valid": best_valid}
    test = task.test_metrics(out_dir, device)
    if test is not None:
        results["test"] = test
    atomic_write_text(out_dir / RESULTS_FILE, json.dumps(results, indent=1))
    return results


def read_model_config(model_dir: str | Path) -> tuple[Path, TaskConfig]:
    """A complete model directory (else a clear error naming the first file missing) and the config it was
    trained with."""
    model_dir = require_model_dir(model_dir)
    return model_dir, config_from_dict(saved_config_values(model_dir, loading=True), str(model_dir / CONFIG_FILE))


def check_model_dir(model_dir: Path, cfg: TaskConfig) -> None:
    """Check a model directory without building its model: every JSON file's fields, the weights' names,
    shapes and dtypes (from the safetensors header) and the fingerprint binding them to the config,
    vocabulary and tokenizer (what every load does first)."""
    get_task(cfg.task).loaded_class.checked_parts(model_dir, cfg)


def load(model_dir: str | Path, device: str = "cpu"):
    """Load a trained model directory on ``device`` (any device, wherever it was trained), checked first
    (:func:`check_model_dir`)."""
    check_path_argument(model_dir, "model_dir")
    check_str_argument(device, "device", "auto | cpu | cuda")
    model_dir, cfg = read_model_config(model_dir)
    return get_task(cfg.task).loaded_class.load(model_dir, cfg, resolve_device(device))

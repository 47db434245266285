"""The one trainer every task uses.

A task (see :mod:`rnnkit.tasks.base`) supplies the model, the training batches, the loss of one batch,
a validation function and the metric that selects the best weights (with its direction); the trainer
owns everything else: optimizer and learning-rate schedule, gradient clipping, bf16 autocast of the training
forward (on GPU by default, on CPU as an option; validation always runs in fp32),
data parallelism (DDP), validation, checkpoints with exact resume, best model and early stopping by the
selection metric, the CSV log, learning curves and the progress bar.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
import random
import re
import shlex
import signal
import sys
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnkit import distributed as dist_utils
from rnnkit.checkpoint import (
    LAST_WEIGHTS,
    RESULTS_FILE,
    TRAINER_STATE,
    WEIGHTS_FILE,
    atomic_write_text,
    checkpoint_path,
    load_trainer_state,
    load_weights,
    run_started,
    save_checkpoint,
    save_weights,
)
from rnnkit.config import TrainConfig, field_default
from rnnkit.errors import RnnkitError, place
from rnnkit.metrics import COUNTS
from rnnkit.nn.rnn import detach_state, map_state
from rnnkit.plotting import plot_curves
from rnnkit.tasks.base import LossResult, Task

__all__ = ["LossResult", "Task", "Trainer"]

NON_FINITE_ADVICE = ("lower train.lr, set train.clip, or check the data (then --resume with --set train.lr=... "
                     "continues the run, --overwrite starts it again)")
LOG_FIELDS = ["step", "epoch", "split", "loss", "lr", "tokens_per_sec", "elapsed_sec"]
#: the least wall time between two drawings of curves.png while a run trains: a drawing takes about 0.5 s of
#: CPU (matplotlib), which at every validation was most of a small model's epoch; the end of a run (finished,
#: stopped early, interrupted, failed) always draws the rows log.csv holds then
CURVES_EVERY_SEC = 60.0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = re.fullmatch(r"cuda(?::(\d+))?", name)
    if name != "cpu" and cuda is None:
        raise RnnkitError(f"unknown device '{name}' (auto | cpu | cuda | cuda:N)")
    if cuda and not torch.cuda.is_available():
        raise RnnkitError(f"--device {name} asked for, but no CUDA GPU is available (use --device cpu)")
    if cuda and cuda.group(1) and int(cuda.group(1)) >= torch.cuda.device_count():
        raise RnnkitError(f"there is no GPU {cuda.group(1)}: {torch.cuda.device_count()} visible (cuda:0 ...)")
    return torch.device(name)


def refuse_other_backend(trained_by: str, backend: str, out_dir: Path) -> None:
    """A run resumes with the backend that trained it (their checkpoints hold different dtypes)."""
    if trained_by != backend:
        flag = " --backend numpy" if trained_by == "numpy" else " (without --backend numpy)"
        raise RnnkitError(f"this run was trained with the {trained_by} backend: resume it{flag}", out_dir)


CPU_BF16_EMULATED = ("train.cpu_amp: this CPU has no native bf16 (AVX-512 BF16 / AMX), so bf16 is emulated "
                     "and training is SLOWER than in fp32; set train.cpu_amp=false")


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (without it, PyTorch emulates bf16, slowly)."""
    return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def training_autocast(cfg: TrainConfig, device: torch.device, warn: bool = True):
    """The context the training forward runs in: bf16 autocast on GPU (``train.amp``) or on CPU
    (``train.cpu_amp``), else none. Weights, gradients and optimizer state stay fp32 (autocast casts copies of
    the weights per op), and validation runs outside it: the metrics that select weights are fp32 figures."""
    if device.type == "cuda" and cfg.amp:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if device.type == "cpu" and cfg.cpu_amp:
        if warn and not cpu_has_native_bf16():
            print(f"warning: {CPU_BF16_EMULATED}", file=sys.stderr, flush=True)
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def fusable(params: list[torch.Tensor]) -> bool:
    """Whether torch's fused Adam kernel takes these parameters: floating point, on a CPU or a CUDA GPU.

    One pass over each parameter instead of a dozen tensor operations: about 3x faster steps on 1 thread of
    a 2-core CPU, e.g. 15.97 -> 4.85 ms for the LM-LSTM classifier's 6.7M parameters, 0.26 -> 0.09 ms (3% of
    the update) for MNIST rows' LSTM 128 (``benchmarks/fused_adam.py``, RESULTS.md "Fused Adam")."""
    return bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)


#: what train.optimizer may name (asgd: averaged SGD; NT-ASGD switches SGD to it, train.nt_asgd)
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "asgd")
#: the optimizers that take train.betas
ADAM_OPTIMIZERS = ("adam", "adamw")
#: the optimizer settings beyond train.lr and weight_decay: key -> (whose they are, for the error; the optimizers
#: that use it; its name in their torch parameter groups). Set away from its default for another optimizer, a key
#: would do nothing. A resume may change them (:func:`set_optimizer_keys`).
OPTIMIZER_KEYS = {"betas": ("are Adam's", ADAM_OPTIMIZERS, "betas"),
                  "momentum": ("is SGD's and RMSprop's", ("sgd", "rmsprop"), "momentum"),
                  "rmsprop_alpha": ("is RMSprop's", ("rmsprop",), "alpha")}


#: the optimizer settings that must be below 1 where they are used, and why: a training run checks it
#: (:func:`check_optimizer_keys`), not the config's ranges, so that a model whose config.yaml holds a value an older
#: rnnkit took (rmsprop_alpha 1.0 for adam, which ignored it) still loads for use
BELOW_ONE = {"momentum": "at 1 and above the steps grow without bound",
             "rmsprop_alpha": "at 1 the mean square stays 0 and each step divides by eps"}


def make_optimizer(name: str, params, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer ``name`` over ``params``: tensors, or torch's parameter groups (dicts with ``params`` and
    their own settings, e.g. ``lr``: the trainer's discriminative rates)."""
    params = list(params)
    tensors = [p for item in params for p in (item["params"] if isinstance(item, dict) else [item])]
    if name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay,
                                fused=fusable(tensors))
    if name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay,
                                 fused=fusable(tensors))
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, alpha=cfg.rmsprop_alpha, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay, eps=1e-10)
    if name == "asgd":
        return torch.optim.ASGD(params, lr=cfg.lr, t0=0, lambd=0.0, weight_decay=cfg.weight_decay)
    raise RnnkitError(f"unknown optimizer '{name}' ({' | '.join(OPTIMIZERS)})")


def unused_optimizer_keys(optimizer: str) -> list[str]:
    """The train keys of :data:`OPTIMIZER_KEYS` that ``optimizer`` does not use (``momentum`` for adam)."""
    return [key for key, (_, users, _) in OPTIMIZER_KEYS.items() if optimizer not in users]


def no_source(key: str) -> tuple[str | None, int | None]:
    """Where config key ``key`` was set, when that is not known (the file and line an error names: none)."""
    return None, None


def check_optimizer_keys(cfg: TrainConfig, key_source: Callable[[str], tuple[str | None, int | None]] = no_source,
                         resuming: bool = False) -> None:
    """train.optimizer is known, and each setting of :data:`OPTIMIZER_KEYS` that it does not use holds its default
    (the values are compared: a config that writes the defaults out, as every config.yaml does, is fine); those that
    do not are refused all in one error. ``key_source(key)``: the file (or ``--set``) and line a key
    (``train.betas``) came from, for the error (:func:`rnnkit.config.key_source`); ``resuming``: the run's optimizer
    is fixed, so the advice is the resume that sets the keys back to their defaults."""
    if cfg.optimizer not in OPTIMIZERS:
        raise RnnkitError(f"unknown optimizer '{cfg.optimizer}' ({' | '.join(OPTIMIZERS)})")
    unused = unused_optimizer_keys(cfg.optimizer)
    defaults = {f.name: field_default(f) for f in dataclasses.fields(cfg) if f.name in unused}
    # all of them in one error: one per attempt, a config that sets several would take as many reruns
    ignored = [(key, getattr(cfg, key), defaults[key], key_source(f"train.{key}")) for key in unused
               if _as_list(getattr(cfg, key)) != defaults[key]]
    if ignored:
        raise _unused_keys_error(cfg.optimizer, ignored, resuming)
    for key, why in BELOW_ONE.items():
        if key not in unused and getattr(cfg, key) >= 1:
            advice = f": a resume may lower it (`--resume --set train.{key}=...`)" if resuming else ""
            raise RnnkitError(f"config key 'train.{key}' must be below 1 with {cfg.optimizer}, got "
                              f"{getattr(cfg, key)!r} ({why}){advice}", *key_source(f"train.{key}"))


def _as_list(value: Any) -> Any:
    """``value`` with a tuple as a list, as the config's defaults hold it (API betas may be a tuple)."""
    return list(value) if isinstance(value, tuple) else value


def _unused_keys_error(optimizer: str, ignored: list[tuple[str, Any, Any, tuple[str | None, int | None]]],
                       resuming: bool) -> RnnkitError:
    """The refusal of every setting ``optimizer`` does not use, ``ignored``: (key, value, default, where it was
    set). Each key is named after where it was set (not repeated for the next key set there); the advice is one
    change that fixes them all."""
    keys, first_source = [key for key, *_ in ignored], ignored[0][3]
    named, seen = [], place(*first_source)  # the first's is the error's prefix
    for key, value, _, source in ignored:
        whose, users, _ = OPTIMIZER_KEYS[key]
        here = place(*source)
        shown = repr(_as_list(value))  # exact: 0.9000000001 is not 0.9
        named.append(f"{here + ': ' if here and here != seen else ''}train.{key} {shown} {whose} "
                     f"({' | '.join(users)})")
        seen = here
    none = "none" if len(keys) == 1 else "none of them"
    # the defaults as --set takes them back (JSON is YAML), quoted where a shell would read them ([...] is a glob)
    default_sets = " ".join("--set " + shlex.quote(f"train.{key}={json.dumps(default)}")
                            for key, _, default, _ in ignored)
    if not resuming:
        takers = [name for name in OPTIMIZERS if all(name in OPTIMIZER_KEYS[key][1] for key in keys)]
        switch = f"set train.optimizer {' or '.join(takers)}, or " if takers else ""
        advice = f"{optimizer} has {none}: {switch}leave {_and_joined([f'train.{key}' for key in keys])} out"
    else:
        kept = f"this run trains with {optimizer}, which has {none}, and a resume keeps its optimizer"
        if all(source[0] == "--set" for *_, source in ignored):
            its = "its default" if len(keys) == 1 else "their defaults"
            advice = (f"{kept}: leave {_and_joined([f'--set train.{key}' for key in keys])} out, or give {its}: "
                      f"`{default_sets}`")
        else:
            advice = f"{kept}: resume with `--resume {default_sets}`"
    return RnnkitError(f"{', '.join(named)}; {advice}", *first_source)


def _and_joined(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def set_optimizer_keys(optimizer: torch.optim.Optimizer, name: str, cfg: TrainConfig) -> None:
    """The settings of :data:`OPTIMIZER_KEYS` that optimizer ``name`` uses, from ``cfg`` into each of its groups: a
    resume's optimizer, whose saved state holds the run's earlier ones (``--resume --set train.momentum=...``: it goes
    on with the new ones). By name, not by a group's key: ASGD's ``alpha`` is not RMSprop's. Momentum turned on from
    0 starts its buffers at zero (:func:`_zero_momentum_buffers`)."""
    for key, (_, users, setting) in OPTIMIZER_KEYS.items():
        if name in users:
            value = getattr(cfg, key)
            for group in optimizer.param_groups:
                if setting == "momentum" and value and not group["momentum"]:
                    _zero_momentum_buffers(optimizer, group)
                group[setting] = tuple(value) if isinstance(value, list) else value


def _zero_momentum_buffers(optimizer: torch.optim.Optimizer, group: dict) -> None:
    """Zero momentum buffers for ``group``'s parameters that have state, as a first step with momentum makes them:
    torch keeps a buffer from an earlier phase with momentum, unused and unchanged while momentum is 0 (its velocity
    may date from thousands of updates at another rate), and RMSprop makes one only at a parameter's first step (a
    run that began without momentum has none: KeyError at its next step). SGD's first step takes the gradient as
    its buffer, which is what it makes of a zero one."""
    for p in group["params"]:
        state = optimizer.state.get(p)
        if state:
            state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)


SCHEDULES = ("none", "halve_on_increase", "plateau", "step", "triangular")
#: the keys that shape the triangular schedule alone: set with another schedule they would do nothing
TRIANGULAR_KEYS = ("warmup", "lr_ratio")
#: the other schedules' keys: the triangular rates follow train.lr, warmup and lr_ratio alone, so these would do nothing
DECAY_KEYS = ("lr_decay", "decay_start", "patience", "min_lr")


def check_training_keys(cfg: TrainConfig, task_class: type[Task],
                        key_source: Callable[[str], tuple[str | None, int | None]] = no_source,
                        resuming: bool = False) -> None:
    """What the config alone shows no run can use, before the task reads its data or builds its model: an unknown
    schedule, a key set that the schedule does not use (each at its default otherwise), train.layer_lr_decay for a
    task that gives no parameter groups of its own, an unknown optimizer, an optimizer setting it does not use
    (train.betas, momentum, rmsprop_alpha; ``key_source``, ``resuming``: :func:`check_optimizer_keys`).
    (:class:`Trainer` checks again what it is given.)"""
    check_schedule(cfg)
    check_optimizer_keys(cfg, key_source, resuming)
    if cfg.layer_lr_decay != 1 and task_class.parameter_groups is Task.parameter_groups:
        raise _one_group_error(task_class.name, cfg.layer_lr_decay)


def check_schedule(cfg: TrainConfig) -> None:
    """train.schedule is known, and no key is set (away from its default) that the schedule does not use."""
    if cfg.schedule not in SCHEDULES:
        raise RnnkitError(f"unknown schedule '{cfg.schedule}' ({' | '.join(SCHEDULES)})")
    unused = DECAY_KEYS if cfg.schedule == "triangular" else TRIANGULAR_KEYS
    for key in unused:
        value, default = getattr(cfg, key), getattr(type(cfg), key)
        if value == default:
            continue
        if cfg.schedule == "triangular":
            raise RnnkitError(f"train.{key} {value:g} does nothing under the triangular schedule (its rates follow "
                              f"train.lr, warmup and lr_ratio alone): leave train.{key} at {default:g}, or set "
                              "another train.schedule")
        raise RnnkitError(f"train.{key} {value:g} shapes the triangular schedule only (train.schedule is "
                          f"{cfg.schedule}): set train.schedule triangular, or leave train.{key} out")


def triangular_rate(lr: float, ratio: float, warmup: float, step: int, total: int) -> float:
    """Slanted triangular learning rates (Howard & Ruder 2018, eq. 3): the rate of update ``step`` (0-based) of a
    run of ``total`` updates. It rises linearly from lr / ratio at the first update (step 0) to ``lr`` at step
    floor(warmup x total) and falls linearly back to exactly lr / ratio at the last one (total - 1). The paper's
    fall, p = 1 - (t - cut) / (cut (1 / cut_frac - 1)), does not end there: p goes below 0, so it undershoots
    lr / ratio at the last update (T 65, cut_frac 0.3, ratio 10: about 14% below it); here the fall spans the
    updates from the peak to the last.
    An update past the last (a run longer than planned) stays at lr / ratio. A run of fewer than 3 updates cannot
    both rise and fall: it only rises (a single update trains at ``lr``)."""
    last = total - 1
    peak = min(max(math.floor(warmup * total), 1), max(last - 1, 1)) if total > 1 else 0
    if step <= peak:
        p = step / peak if peak else 1.0
    else:
        p = max(last - step, 0) / max(last - peak, 1)
    return lr * (p + (1 - p) / ratio)


class LRSchedule:
    """Learning-rate rules driven by updates, epochs and validation scores (the task's selection metric,
    oriented so that lower is better: the loss itself, or minus BLEU / accuracy).

    halve_on_increase: lr *= lr_decay when the score gets worse than the previous one (seed 001).
    plateau: lr *= lr_decay after ``patience`` evaluations without a new best (pytorch/examples: 0.25, 0).
    step: lr = lr0 * lr_decay ** max(epoch + 1 - decay_start, 0) (Zaremba et al. 2014).
    triangular: slanted triangular rates over ``total_updates`` (:func:`triangular_rate`), a function of the
    update count alone, so a resumed run trains at the rates of an unbroken one.
    """

    def __init__(self, cfg: TrainConfig, total_updates: int = 0):
        check_schedule(cfg)
        self.cfg = cfg
        self.total = total_updates  # the run's updates (the trainer counts them; triangular only)
        self.lr = self.rate_at(0) if cfg.schedule == "triangular" else cfg.lr  # (a step-0 validation logs it)
        self.best = math.inf
        self.previous = math.inf
        self.bad = 0

    def rate_at(self, step: int) -> float:
        """The triangular schedule's rate of the update after ``step`` updates."""
        return triangular_rate(self.cfg.lr, self.cfg.lr_ratio, self.cfg.warmup, step, self.total)

    def on_update(self, step: int) -> float:
        """The rate of the update after ``step`` updates (the epoch's or the validations' rate, or triangular's)."""
        if self.cfg.schedule == "triangular":
            self.lr = self.rate_at(step)
        return self.lr

    def on_epoch_start(self, epoch: int) -> float:
        if self.cfg.schedule == "step":
            self.lr = max(self.cfg.lr * self.cfg.lr_decay ** max(epoch + 1 - self.cfg.decay_start, 0),
                          min(self.cfg.min_lr, self.cfg.lr))
        return self.lr

    def on_validation(self, loss: float) -> float:
        cfg = self.cfg
        if cfg.schedule == "halve_on_increase" and loss > self.previous:
            self.lr = max(self.lr * cfg.lr_decay, cfg.min_lr)
        elif cfg.schedule == "plateau":
            if loss < self.best:
                self.bad = 0
            else:
                self.bad += 1
                if self.bad > cfg.patience:
                    self.lr = max(self.lr * cfg.lr_decay, cfg.min_lr)
                    self.bad = 0
        self.previous = loss
        self.best = min(self.best, loss)
        return self.lr

    def on_new_base_lr(self, step: int) -> None:
        """A resume changed train.lr after ``step`` updates. The other schedules go on from the new rate; the
        triangular one is a function of the update count, so its rate stays the one the last update trained at
        (what a row logged before the next update names), and the next updates follow the new peak."""
        if self.cfg.schedule != "triangular":
            self.lr = self.cfg.lr
        elif step == 0:  # no update yet: the rate before the first one, lr / lr_ratio of the new lr
            self.lr = self.rate_at(0)

    def state_dict(self) -> dict:
        return {"lr": self.lr, "best": self.best, "previous": self.previous, "bad": self.bad}

    def load_state_dict(self, state: dict) -> None:
        self.lr, self.best, self.previous, self.bad = state["lr"], state["best"], state["previous"], state["bad"]


def lr_groups(task: Task, model: nn.Module, decay: float) -> list[tuple[str, list[torch.Tensor], float]]:
    """(name, parameters, lr factor) of each parameter group: one group of every parameter at the full rate,
    or with ``decay`` > 1 (train.layer_lr_decay) the task's :meth:`Task.parameter_groups`, each at
    1 / decay ** depth of the rate (ULMFiT's discriminative fine-tuning, Howard & Ruder 2018, sec. 3.2)."""
    if decay == 1:
        return [("all", list(model.parameters()), 1.0)]
    name = getattr(task, "name", "?")
    # each group's parameters as a list, once: a generator (module.parameters()) would be used up by the check
    groups = [(group, list(params), depth) for group, params, depth in task.parameter_groups(model)]
    _check_groups(name, model, groups)
    if len(groups) == 1:
        raise _one_group_error(name, decay)
    return [(group, params, decay ** -depth) for group, params, depth in groups]


def _one_group_error(task: str, decay: float) -> RnnkitError:
    return RnnkitError(f"train.layer_lr_decay {decay:g} gives each layer its own rate, but the {task} task trains its "
                       "parameters as one group: leave train.layer_lr_decay at 1")


def _check_groups(task: str, model: nn.Module, groups: list[tuple[str, list[torch.Tensor], Any]]) -> None:
    """A task's parameter groups hold each of the model's parameters once, at a depth of 0 or more (a task
    that breaks this is a bug: one clear error, not a parameter silently left out of training)."""
    own = {id(p) for p in model.parameters()}
    seen: set[int] = set()
    for name, params, depth in groups:
        if not params or type(depth) is not int or depth < 0:
            raise RnnkitError(f"task '{task}': parameter_groups() gave the group {name!r} no parameters or a "
                              f"depth that is not an integer >= 0 ({depth!r})")
        for p in params:
            if id(p) in seen:
                raise RnnkitError(f"task '{task}': parameter_groups() puts a parameter in two groups ({name!r})")
            if id(p) not in own:
                raise RnnkitError(f"task '{task}': parameter_groups()'s group {name!r} holds a tensor that is not "
                                  "the model's parameter")
            seen.add(id(p))
    missing = [n for n, p in model.named_parameters() if id(p) not in seen]
    if missing:
        raise RnnkitError(f"task '{task}': parameter_groups() leaves out {', '.join(missing[:3])}"
                          f"{f' and {len(missing) - 3} more' if len(missing) > 3 else ''} of the model's parameters")


class _StopFlag:
    """Turns Ctrl-C / SIGTERM into a request to stop at the next step boundary (and save first)."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


class Trainer:
    """Train ``task.model`` into ``out_dir`` as ``cfg`` says; ``resume`` continues the checkpoint there.

    Another backend (the NumPy reference, :class:`rnnkit.reference.train.NumpyTrainer`) reuses the loop,
    schedule, logging and checkpoints by overriding :meth:`_train_step` (which sets the update's rates with
    :meth:`_set_rates`), :meth:`_validate` and :meth:`_save_best`.
    """

    backend = "torch"  # recorded in the checkpoint: a run resumes with the backend that trained it

    def __init__(self, task: Task, cfg: TrainConfig, out_dir: str | Path, device: torch.device,
                 dist: dist_utils.DistInfo | None = None):
        self.task, self.cfg, self.out_dir, self.device = task, cfg, Path(out_dir), device
        self.dist = dist or dist_utils.DistInfo()
        self.model = task.model.to(device)
        self.train_model: nn.Module = self.model
        if self.dist.enabled:
            self.train_model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        check_optimizer_keys(cfg)
        if cfg.nt_asgd and cfg.optimizer != "sgd":
            raise RnnkitError(f"train.nt_asgd switches SGD to averaged SGD: it needs train.optimizer sgd, "
                              f"not {cfg.optimizer}")
        self.schedule = LRSchedule(cfg, self._total_updates() if cfg.schedule == "triangular" else 0)
        # (name, parameters, lr factor) of each parameter group, output layer first (train.layer_lr_decay)
        self.lr_groups = lr_groups(task, self.model, cfg.layer_lr_decay)
        self.optimizer_name = cfg.optimizer
        self.optimizer = make_optimizer(cfg.optimizer, self._param_groups(), cfg)
        self.step = 0
        self.epoch = 0
        self.batch_index = 0  # next batch of self.epoch's plan
        self.carried_state = None
        # what selects the best weights, and whether lower ("min") or higher ("max") is better
        self.metric, self.direction = getattr(task, "selection", ("loss", "min"))
        self.best_value = math.inf if self.direction == "min" else -math.inf  # of the counted validations
        self.saved_value = self.best_value  # of the weights in model.safetensors (stops' validations too)
        self.best_metrics: dict[str, float] | None = None  # validation metrics of the saved best weights
        self.bad_evals = 0
        self.val_history: list[float] = []  # the selection metric's scores, oriented: lower is better
        self.rows: list[dict] = []
        self.logged_rows = 0  # len(rows) when log.csv was last written
        self.plotted_rows = 0  # len(rows) when curves.png was last drawn
        self.plotted_at = time.monotonic()  # when curves.png was last drawn (or the trainer made)
        self.elapsed = 0.0
        self.window = _Window()  # training loss since the last log row
        self.finished = False
        self.validated_at = -1  # step of the last validation
        self._stop: _StopFlag | None = None  # set while fit() runs
        self._agreed_stop = False
        self.weights_metadata: dict[str, str] = {}  # binds saved weights to the model directory (rank 0 sets it)
        self.autocast = training_autocast(cfg, device, warn=self.dist.is_main)

    def _total_updates(self) -> int:
        """The updates the whole run makes: each epoch's batches (their number may vary: the LM's variable BPTT),
        at most train.max_steps. The plans are seeded by epoch alone, so counting them changes nothing."""
        limit = self.cfg.max_steps or math.inf
        total = 0
        for epoch in range(self.cfg.epochs):
            if total >= limit:
                break
            total += len(self.task.train_data.plan(epoch))
        return int(min(total, limit))

    def _param_groups(self) -> list[dict]:
        """The optimizer's parameter groups, each at its own share of the rate (set again at every update)."""
        return [{"params": params, "lr": self.cfg.lr * factor} for _, params, factor in self.lr_groups]

    def _set_rates(self, lr: float) -> None:
        """The rate of the next update: ``lr`` for the output's group, each deeper group its share of it."""
        for group, (_, _, factor) in zip(self.optimizer.param_groups, self.lr_groups, strict=True):
            group["lr"] = lr * factor

    def announce_rates(self) -> None:
        """Print :meth:`lr_groups_line` (main process, train.progress; nothing for one rate)."""
        line = self.lr_groups_line()
        if line and self.dist.is_main and self.cfg.progress:
            print(line, flush=True)

    def lr_groups_line(self) -> str | None:
        """What train.layer_lr_decay gives each parameter group (None: one rate for all)."""
        if len(self.lr_groups) == 1:
            return None
        shares = ", ".join(f"{name} x{factor:.3g}" for name, _, factor in self.lr_groups)
        return f"discriminative rates (train.layer_lr_decay {self.cfg.layer_lr_decay:g}): lr {shares}"

    # ----------------------------------------------------------------- checkpoints
    def _trainer_state(self) -> dict:
        return {
            "step": self.step, "epoch": self.epoch, "batch_index": self.batch_index,
            "optimizer_name": self.optimizer_name, "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(), "selection_metric": self.metric, "best_value": self.best_value,
            "saved_value": self.saved_value,
            "bad_evals": self.bad_evals,
            "best_metrics": self.best_metrics,
            "val_history": self.val_history, "rows": self.rows, "elapsed": self.elapsed,
            "finished": self.finished, "validated_at": self.validated_at, "backend": self.backend,
            "window": [self.window.loss, self.window.count], "window_logged": self.window.logged,
            "base_lr": self.cfg.lr,
        }

    def _rng_state(self) -> dict:
        state = {"torch": torch.get_rng_state(), "numpy": _numpy_state(), "python": list(random.getstate()[1]),
                 "python_pos": random.getstate()[2], "carried": _to_cpu(self.carried_state)}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def save_checkpoint(self) -> None:
        """Every rank contributes its RNG and carried state; rank 0 writes the folder."""
        rng = self._rng_state()
        if self.dist.enabled:
            gathered = [None] * self.dist.world
            torch.distributed.all_gather_object(gathered, rng)
            rank_states = dict(enumerate(gathered))
        else:
            rank_states = {0: rng}
        if self.dist.is_main:
            save_checkpoint(self.out_dir, self.model, self._trainer_state(), rank_states, self.weights_metadata)
            self._write_log()
        dist_utils.barrier()

    def resume(self, changed: Collection[str] = ()) -> None:
        """Continue from the checkpoint in ``out_dir``; a run killed before it wrote any weights, log or
        checkpoint starts again from step 0 with its saved config: the same run, seeded alike. ``changed``: the
        keys the resume changes (``train.momentum``), checked against the optimizer the checkpoint trains with."""
        if not run_started(self.out_dir):
            if self.dist.is_main:
                print(f"no checkpoint yet in {self.out_dir} (the run stopped before it wrote weights, a log or "
                      "a checkpoint): starting it from the beginning", flush=True)
            return
        ckpt = checkpoint_path(self.out_dir, self.dist.rank, self.dist.world)
        state, rng = load_trainer_state(ckpt, self.dist.rank)
        refuse_other_backend(state.get("backend", "torch"), self.backend, self.out_dir)
        load_weights(self.model, ckpt / LAST_WEIGHTS)
        if state["optimizer_name"] != self.optimizer_name:  # NT-ASGD had switched to averaging
            if not (self.cfg.nt_asgd and state["optimizer_name"] == "asgd"):
                raise RnnkitError(f"trainer state holds the optimizer {state['optimizer_name']!r}, but this run "
                                  f"trains with {self.optimizer_name!r}", ckpt / TRAINER_STATE)
            self.optimizer_name = state["optimizer_name"]
            self.optimizer = make_optimizer(self.optimizer_name, self._param_groups(), self.cfg)
        try:
            _check_optimizer_state(self.optimizer, state["optimizer"])
            self.optimizer.load_state_dict(state["optimizer"])
            set_optimizer_keys(self.optimizer, self.optimizer_name, self.cfg)  # --resume --set train.betas=...
            self.schedule.load_state_dict(state["schedule"])
        except (ValueError, KeyError, TypeError) as e:
            raise RnnkitError(f"trainer state does not fit this run's optimizer or schedule ({e})",
                              ckpt / TRAINER_STATE) from None
        for key in ("step", "epoch", "batch_index", "bad_evals", "val_history", "rows", "elapsed", "finished",
                    "validated_at"):
            setattr(self, key, state[key])
        self._refuse_keys_averaging_ignores(changed)
        if state.get("base_lr", self.cfg.lr) != self.cfg.lr:  # --resume --set train.lr=...: go on from it
            self.schedule.on_new_base_lr(self.step)
        self.logged_rows = len(self.rows)  # the checkpoint's rows are those its log.csv holds
        self.best_value = _saved_best(state, self.metric, ckpt / TRAINER_STATE)
        saved = state.get("saved_value", self.best_value)  # checkpoints before the two were kept apart
        self.saved_value = float(saved) if type(saved) in (int, float) else self.best_value
        self.window = _Window(*state.get("window", (0.0, 0)), state.get("window_logged", {}))
        self.best_metrics = _metrics_or_none(state.get("best_metrics"))
        try:
            self._restore_rng(rng)
        except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as e:  # the RNGs' own checks
            raise RnnkitError(f"RNG state is damaged ({type(e).__name__}: {e})",
                              ckpt / f"rng_rank{self.dist.rank}.pt") from None

    def _restore_rng(self, rng: dict) -> None:
        torch.set_rng_state(rng["torch"])
        np.random.set_state(("MT19937", np.array(rng["numpy"][0], dtype=np.uint32), *rng["numpy"][1:]))
        random.setstate((3, tuple(rng["python"]), rng["python_pos"]))
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self._check_carried(rng["carried"])
        self.carried_state = _to_device(rng["carried"], self.device)

    def _check_carried(self, carried) -> None:
        """The saved hidden state has the structure and shapes of this model's state for one rank's batch."""
        expected = self._carried_shapes(self.cfg.batch_size // self.dist.world)
        if carried is not None and expected is not None and _state_shapes(carried) != expected:
            raise ValueError(f"the carried hidden state is not of this model's shapes {expected}")

    def _carried_shapes(self, batch: int) -> list | None:
        """The shapes of the hidden state carried between batches of ``batch`` sequences, nested as the
        state is (None: the model does not say)."""
        init_state = getattr(self.model, "init_state", None)
        return None if init_state is None else _state_shapes(init_state(batch, device="meta"))

    def _write_log(self) -> None:
        buf = io.StringIO()
        extra = sorted({k for r in self.rows for k in r} - set(LOG_FIELDS))
        writer = csv.DictWriter(buf, fieldnames=LOG_FIELDS + extra, restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.out_dir / "log.csv", buf.getvalue())
        self.logged_rows = len(self.rows)
        self._draw_curves(final=False)

    def _draw_curves(self, final: bool) -> None:
        """Draw curves.png from the rows in log.csv, when they grew since the last drawing: at most every
        CURVES_EVERY_SEC while training, and always at the end of a run (``final``)."""
        rows = self.rows[: self.logged_rows]
        if len(rows) == self.plotted_rows or not (len(rows) > 1 or any(r["split"] == "valid" for r in rows)):
            return
        if not final and time.monotonic() - self.plotted_at < CURVES_EVERY_SEC:
            return
        # the loss, and beside it the selection metric when that is another (accuracy, BLEU)
        plot_curves(rows, self.out_dir / "curves.png", "loss" if self.metric == "loss" else ("loss", self.metric))
        self.plotted_rows, self.plotted_at = len(rows), time.monotonic()

    # ----------------------------------------------------------------- training
    def fit(self) -> dict[str, float]:
        """Train until ``epochs`` / ``max_steps`` / early stopping; returns the last validation metrics. A
        finished run (resuming may raise epochs / max_steps: then it goes on) validates its weights. Ctrl-C /
        SIGTERM is honoured to the end, the last validation and the curves included: the checkpoint is saved by
        then, and KeyboardInterrupt says so."""
        with _StopFlag() as stop:
            self._stop, self._agreed_stop = stop, False
            try:
                metrics = self._validate() if self.finished and self.done() else self._train_until_done()
            finally:  # however the run ends (finished, stopped, interrupted, failed), the curves show log.csv
                if self.dist.is_main:
                    self._draw_curves(final=True)
            if self._stop_requested():
                raise KeyboardInterrupt
        return metrics

    def _train_until_done(self) -> dict[str, float]:
        """The training loop of :meth:`fit`: epochs of updates, validations and checkpoints."""
        cfg = self.cfg
        last_metrics: dict[str, float] = {}
        while self.epoch < cfg.epochs and not self._out_of_steps():
            self.schedule.on_epoch_start(self.epoch)
            self.task.on_epoch_start(self.epoch, self.model)
            plan = self.task.train_data.plan(self.epoch)
            bar = self._progress(len(plan))
            if self.batch_index == 0:  # each epoch starts the streams from the top: zero state
                self.carried_state = None
                self.window = _Window()  # (mid-epoch, a resumed run goes on with its saved window)
            while self.batch_index < len(plan):
                batch = self.task.train_data.batch(plan[self.batch_index]).to(self.device)
                lr = self.schedule.on_update(self.step)
                loss, count = self._train_step(batch, lr * self.task.lr_scale(batch))
                self.batch_index += 1
                self.step += 1
                self.window.add(loss, count)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(self._postfix(lr), refresh=False)
                if cfg.log_every and self.step % cfg.log_every == 0:
                    self._log("train", self.window.mean(), lr, self.window.rate(), self.window.logged_means())
                    if bar is None and cfg.progress and self.dist.is_main:  # progress, but not on a terminal
                        print(f"step {self.step} epoch {self.epoch + 1}/{cfg.epochs}: {self._postfix(lr)}",
                              flush=True)
                    self.window = _Window()
                if cfg.eval_every and self.step % cfg.eval_every == 0:
                    last_metrics = self._validate_and_save()
                    self.window = _Window()  # tokens/s of training only, not of the validation
                elif cfg.save_every and self.step % cfg.save_every == 0:
                    self.save_checkpoint()
                if self._stop_requested() or self._out_of_steps() or self._early_stopped():
                    break
            if bar is not None:
                bar.close()
            if self._stop_requested():
                self.save_checkpoint()
                raise KeyboardInterrupt
            if self.batch_index >= len(plan):
                self.epoch += 1
                self.batch_index = 0
                if not cfg.eval_every:
                    last_metrics = self._validate_and_save()
            if self._early_stopped():
                break
        if self.validated_at != self.step:  # the stop's own validation, for the results
            last_metrics = self._validate_and_save(counts=False)
        self.finished = True
        self.save_checkpoint()
        return last_metrics

    def done(self) -> bool:
        """Whether the run has reached train.epochs / train.max_steps or stopped early."""
        return self.epoch >= self.cfg.epochs or self._out_of_steps() or self._early_stopped()

    def _out_of_steps(self) -> bool:
        return bool(self.cfg.max_steps) and self.step >= self.cfg.max_steps

    def _stop_requested(self) -> bool:
        """Ctrl-C / SIGTERM seen: here, or under DDP on any rank by the last step's all-reduce."""
        return self._agreed_stop if self.dist.enabled else self._stop.requested

    def _early_stopped(self) -> bool:
        return bool(self.cfg.early_stop) and self.bad_evals >= self.cfg.early_stop

    def _train_step(self, batch: Any, lr: float) -> tuple[float, int]:
        t0 = time.perf_counter()
        self.train_model.train()
        self._set_rates(lr)
        self.optimizer.zero_grad(set_to_none=True)
        state = self.carried_state if getattr(batch, "carry_state", False) else None
        with self.autocast:
            result = self.task.batch_loss(self.train_model, batch, state)
        count = result.count
        if self.dist.enabled:  # mean over the global batch: DDP averages gradients over ranks
            # the same collective agrees on Ctrl-C / SIGTERM and on a non-finite loss, so every rank
            # stops after the same step (one rank leaving alone would leave the others waiting in backward)
            unscaled = result.loss_sum.float() + result.penalty
            global_count, stops, bad_ranks = dist_utils.all_reduce_sums(
                [count, float(self._stop is not None and self._stop.requested),
                 ~torch.isfinite(unscaled.detach())], self.device)
            self._agreed_stop = stops > 0
            scale = self.dist.world / max(global_count, 1.0)
            if bad_ranks > 0:
                raise RnnkitError(f"loss is not finite on {int(bad_ranks)} of {self.dist.world} ranks (rank "
                                  f"{self.dist.rank}: {unscaled.item()}) at step {self.step + 1} (epoch "
                                  f"{self.epoch + 1}): {NON_FINITE_ADVICE}")
        else:
            scale = 1.0 / max(count, 1)
        loss = result.loss_sum.float() * scale + result.penalty
        if not torch.isfinite(loss):
            raise RnnkitError(f"loss is {loss.item()} at step {self.step + 1} (epoch {self.epoch + 1}): "
                              f"{NON_FINITE_ADVICE}")
        loss.backward()
        if self.cfg.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip)
        self.optimizer.step()
        self.carried_state = detach_state(result.state) if getattr(batch, "carry_state", False) else None
        self.window.add_logged(result.logged)  # (the loss and count: by the loop, for every backend)
        self.elapsed += time.perf_counter() - t0
        return float(result.loss_sum.detach().float()), count

    def _progress(self, total: int):
        if not (self.cfg.progress and self.dist.is_main and sys.stderr.isatty()):
            return None  # no terminal (a log file, nohup, CI): a plain line per log row instead
        from tqdm import tqdm

        return tqdm(total=total, initial=self.batch_index, desc=f"epoch {self.epoch + 1}/{self.cfg.epochs}",
                    mininterval=1.0, dynamic_ncols=True, leave=True)

    def _postfix(self, lr: float) -> str:
        """The progress line's figures of the training since the last log row: the task's, then the lr."""
        return f"{self.task.progress(self.window.mean(), self.window.rate())} lr {lr:.3g}"

    def _log(self, split: str, loss: float, lr: float, rate: float | None, metrics: dict | None = None) -> None:
        row = {"step": self.step, "epoch": self.epoch + (self.batch_index > 0), "split": split,
               "loss": round(loss, 6), "lr": lr, "tokens_per_sec": round(rate, 1) if rate else "",
               "elapsed_sec": round(self.elapsed, 2)}
        row.update({k: round(v, 6) for k, v in (metrics or {}).items() if k != "loss"})
        self.rows.append(row)

    # ----------------------------------------------------------------- validation
    def _validate_and_save(self, counts: bool = True) -> dict[str, float]:
        """Validate, keep the weights if they are the best so far, and save a checkpoint. ``counts=False``
        (the validation at a stop between scheduled ones, e.g. train.max_steps): it may replace the saved best
        weights, but it is not a figure later validations must beat, and it does not feed the schedule, early
        stopping or NT-ASGD, so a run resumed with more steps trains exactly as one that never stopped there
        (its model.safetensors is the better of that run's best and the stop's weights)."""
        averaged = self._swap_in_average()
        metrics = self._validate()
        value = self._selection_value(metrics)
        score = self._oriented(value)
        self.validated_at = self.step
        self._log("valid", metrics["loss"], self.schedule.lr, None, metrics)
        improved = score < self._oriented(self.best_value)
        saved = score < self._oriented(self.saved_value)
        if saved:
            self.saved_value, self.best_metrics = value, metrics
            if self.dist.is_main:
                # results.json holds the metrics of model.safetensors: gone before the weights change (a resumed
                # run stopped here leaves none), written again when the run ends
                (self.out_dir / RESULTS_FILE).unlink(missing_ok=True)
                self._save_best()
        if averaged is not None:
            _restore(self.model, averaged)
        if counts:
            if improved:
                self.best_value = value
            self.bad_evals = 0 if improved else self.bad_evals + 1
            self.val_history.append(score)
            self.schedule.on_validation(score)
            self._maybe_switch_to_asgd()
        if self.dist.is_main and self.cfg.progress:
            shown = ", ".join(f"{k} {int(v):,}" if k in COUNTS else f"{k} {v:.4g}" for k, v in metrics.items())
            best = f" (best {self.metric})" if saved else ""
            print(f"step {self.step} valid: {shown}{best}", flush=True)
        self.save_checkpoint()
        return metrics

    def _oriented(self, value: float) -> float:
        """A selection value as a score where lower is better, whichever the metric's direction."""
        return value if self.direction == "min" else -value

    def _selection_value(self, metrics: dict[str, float]) -> float:
        """The selection metric of validation ``metrics``; a task that does not return it is a bug."""
        for name in ("loss", self.metric):
            if not isinstance(metrics.get(name), (int, float)):
                raise RnnkitError(f"task '{getattr(self.task, 'name', '?')}': validate() returned no number "
                                  f"'{name}' (it returned {', '.join(metrics) or 'nothing'})")
        return float(metrics[self.metric])

    def _validate(self) -> dict[str, float]:
        """Metrics of the current weights on the validation data (``loss`` first)."""
        return self.task.validate(self.model)

    def _save_best(self) -> None:
        """Write the current weights as the model directory's ``model.safetensors``."""
        save_weights(self.model, self.out_dir / WEIGHTS_FILE, {**self.weights_metadata, "step": str(self.step)})

    def _refuse_keys_averaging_ignores(self, changed: Collection[str]) -> None:
        """A resume of a run NT-ASGD switched to averaged SGD may not change a key SGD uses and averaged SGD has
        not (train.momentum): the checkpoint's optimizer goes on, so the new value would be recorded and do
        nothing. (check_optimizer_keys sees train.optimizer alone: sgd.)"""
        if self.optimizer_name == self.cfg.optimizer:
            return
        for key in unused_optimizer_keys(self.optimizer_name):
            if f"train.{key}" in changed and key not in unused_optimizer_keys(self.cfg.optimizer):
                # ASGD counts its own updates: the run's updates before them were SGD's
                since = self.step - int(max((s["step"] for s in self.optimizer.state.values()), default=0))
                raise RnnkitError(f"train.{key} {getattr(self.cfg, key)!r}: NT-ASGD switched this run to averaged "
                                  f"SGD at step {since}, which has no {key}, and a resume keeps its optimizer: "
                                  f"leave --set train.{key} out", "--set")

    def _maybe_switch_to_asgd(self) -> None:
        """NT-ASGD (Merity et al. 2017): average once validation stops improving for ``nt_asgd`` evals."""
        n = self.cfg.nt_asgd
        hist = self.val_history
        if n and self.optimizer_name == "sgd" and len(hist) > n and hist[-1] > min(hist[:-n]):
            self.optimizer_name = "asgd"
            self.optimizer = make_optimizer("asgd", self._param_groups(), self.cfg)
            if self.dist.is_main:
                # (momentum is not refused with nt_asgd: it does act until here)
                stops = (f"; train.momentum {self.cfg.momentum!r} stops here: averaged SGD has none"
                         if self.cfg.momentum else "")
                print(f"step {self.step}: switching to averaged SGD (NT-ASGD){stops}", flush=True)

    def _swap_in_average(self) -> dict | None:
        """With ASGD, evaluate and save the averaged weights; returns the raw ones to restore."""
        if self.optimizer_name != "asgd":
            return None
        backup = {}
        for p in self.model.parameters():
            ax = self.optimizer.state.get(p, {}).get("ax")
            if ax is not None:
                backup[p] = p.detach().clone()
                p.data.copy_(ax)
        return backup


def _saved_best(state: dict, metric: str, path: Path) -> float:
    """The best selection value of a trainer state: ``best_value`` with the metric it records, or
    ``best_loss`` in checkpoints written before tasks named their metric (the loss selected then)."""
    saved_metric = state.get("selection_metric", "loss")
    if saved_metric != metric:
        raise RnnkitError(f"the checkpoint selected its best weights by {saved_metric!r}, this task by "
                          f"{metric!r}: --overwrite starts the run again", path)
    return float(state["best_value"] if "best_value" in state else state["best_loss"])


def _metrics_or_none(value) -> dict[str, float] | None:
    """A checkpoint's best validation metrics; None (the final results score the best weights again)
    when absent, as in checkpoints written before they were kept, or not a mapping of numbers."""
    if isinstance(value, dict) and all(isinstance(k, str) and type(v) in (int, float) for k, v in value.items()):
        return value
    return None


def _restore(model: nn.Module, backup: dict) -> None:
    for p, value in backup.items():
        p.data.copy_(value)


class _Window:
    """Running loss / token counts between two log rows, and the sums and counts of the task's other
    figures (``LossResult.logged``)."""

    def __init__(self, loss: float = 0.0, count: int = 0, logged: dict[str, list] | None = None):
        self.loss = loss  # a resumed run's window starts with the sums saved in its checkpoint
        self.count = count
        self.logged: dict[str, list] = {name: [float(total), int(n)] for name, (total, n) in (logged or {}).items()}
        # a task logs each of its figures on every update, so a resumed window that has updates but no sums for
        # a figure comes from a checkpoint written before they were kept (no window_logged, or none of a
        # classifier's accuracy): its mean would cover fewer updates than the loss, so the row leaves that
        # figure empty (the rows after it are whole again). None: every figure covers the whole window.
        self.whole: set[str] | None = set(self.logged) if count > 0 else None
        self.timed = 0  # tokens since t0, for tokens/s
        self.t0 = time.perf_counter()

    def add(self, loss_sum: float, count: int) -> None:
        self.loss += loss_sum
        self.count += count
        self.timed += count

    def add_logged(self, logged: dict[str, tuple[Any, int]]) -> None:
        for name, (value_sum, count) in logged.items():
            sums = self.logged.setdefault(name, [0.0, 0])
            sums[0] += float(value_sum.detach() if isinstance(value_sum, torch.Tensor) else value_sum)
            sums[1] += int(count)

    def mean(self) -> float:
        return self.loss / max(self.count, 1)

    def logged_means(self) -> dict[str, float]:
        return {name: total / max(n, 1) for name, (total, n) in self.logged.items()
                if self.whole is None or name in self.whole}

    def rate(self) -> float:
        return self.timed / max(time.perf_counter() - self.t0, 1e-9)


def _state_shapes(state):
    """The shapes of a (nested list/tuple) recurrent state, its nesting kept; TypeError for anything else."""
    if isinstance(state, torch.Tensor):
        return tuple(state.shape)
    if isinstance(state, (list, tuple)):
        return [_state_shapes(s) for s in state]
    raise TypeError(f"the carried hidden state holds a {type(state).__name__}, not tensors")


def _check_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """A saved optimizer state fits ``optimizer`` before it is loaded (torch checks only the parameter
    counts, and a damaged field would fail at the next step): each group's settings of the types the
    optimizer holds, and each per-parameter tensor of its parameter's shape and dtype. ValueError if not."""
    fresh = optimizer.state_dict()
    groups = saved.get("param_groups")
    if not isinstance(groups, list) or len(groups) != len(fresh["param_groups"]):
        raise ValueError("param_groups do not match the model's")
    for group, own in zip(groups, fresh["param_groups"], strict=True):
        if not isinstance(group, dict) or "params" not in group:
            raise ValueError("a param group is not a mapping with params")
        for key, value in own.items():
            if key != "params" and key in group and not _same_kind(group[key], value):
                raise ValueError(f"param group setting '{key}' is {group[key]!r}, not like {value!r}")
        if group["params"] != own["params"]:
            raise ValueError("a param group's parameter ids do not match the model's")
    params = dict(zip((pid for g in fresh["param_groups"] for pid in g["params"]),
                      (p for g in optimizer.param_groups for p in g["params"]), strict=True))
    state = saved.get("state")
    if not isinstance(state, dict) or not set(state) <= set(params):
        raise ValueError("state is not a mapping of the model's parameter ids")
    for pid, entries in state.items():
        if not isinstance(entries, dict):
            raise ValueError(f"state of parameter {pid} is not a mapping")
        for key, value in entries.items():
            if isinstance(value, torch.Tensor) and value.dim() and (
                    value.shape != params[pid].shape or value.dtype != params[pid].dtype):
                raise ValueError(f"'{key}' of parameter {pid} has shape {tuple(value.shape)} {value.dtype}, the "
                                 f"parameter {tuple(params[pid].shape)} {params[pid].dtype}")
            if not isinstance(value, (torch.Tensor, int, float, type(None))):
                raise ValueError(f"'{key}' of parameter {pid} is a {type(value).__name__}")


def _same_kind(value, like) -> bool:
    """``value`` can stand where the optimizer holds ``like`` (numbers for numbers, bool for bool, ...)."""
    if isinstance(like, bool) or like is None:  # a flag, or an option left to torch (foreach: None)
        return value is None or type(value) is bool
    if isinstance(like, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(like, tuple):
        return (isinstance(value, (tuple, list)) and len(value) == len(like)
                and all(_same_kind(v, w) for v, w in zip(value, like, strict=True)))
    return type(value) is type(like)


def _numpy_state() -> list:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return [keys.tolist(), int(pos), int(has_gauss), float(gauss)]


def _to_cpu(state):
    return map_state(state, lambda t: t.detach().cpu())


def _to_device(state, device: torch.device):
    return map_state(state, lambda t: t.to(device))


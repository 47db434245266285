"""Configuration: dataclasses, YAML recipes and ``key=value`` overrides.

A config names its ``task``; the task owns its sections (``data``, ``model``, the LM's ``tokenizer``...,
its ``config_class`` in :mod:`rnnkit.tasks`) and shares ``train`` (:class:`TrainConfig`, which a task
may extend with keys of its own). The task is read first, then the rest is built as its config class
says: a key of another task is an unknown key, an error naming it, as any unknown key is. Value ranges
sit beside their fields (:func:`ranged`). Recipes are YAML files with the same shape. The fully resolved
config is written as ``config.yaml`` into every model directory, so a model dir alone says how it was made.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rnnkit.errors import RnnkitError, shown_value

_EXPONENT_FLOAT = re.compile(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+")


def field_default(f: dataclasses.Field) -> Any:
    """A config field's default value (a fresh one where the field has a factory, e.g. train.betas' list)."""
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def ranged(default: Any, low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False) -> Any:
    """A dataclass field whose value must lie in [low, high] (an end ``None``: unbounded; ``*_open``: that
    end excluded): the range sits beside the field, and :func:`check_ranges` enforces it."""
    return field(default=default, metadata={"range": (low, low_open, high, high_open)})


def at_least(default: Any, low: float) -> Any:
    return ranged(default, low)


def fraction(default: float) -> Any:
    """A share in [0, 1) (dropout, a held-out part)."""
    return ranged(default, 0, 1, high_open=True)


def shares(*default: float) -> Any:
    """A list of exactly ``len(default)`` shares, each in [0, 1) (Adam's betas)."""
    return field(default_factory=lambda: list(default), metadata={"range": (0, False, 1, True), "length": len(default)})


#: Adam's and AdamW's decay rates of the running means of the gradient and of its square: torch's defaults
ADAM_BETAS = (0.9, 0.999)


@dataclass
class TrainConfig:
    """The training loop's settings, the same for every task (a task may extend it with its own keys)."""

    optimizer: str = "sgd"  # sgd | adam | adamw | rmsprop | asgd
    lr: float = at_least(1.0, 0)  # learning rate
    # sgd / rmsprop momentum, in [0, 1): at 1 and above the steps grow without bound (another optimizer refuses a value
    # other than 0; after NT-ASGD's switch averaged SGD has none). Its upper bound is checked for a training run only
    # (train.check_optimizer_keys): a model trained with an older rnnkit's value still loads for use.
    momentum: float = at_least(0.0, 0)
    weight_decay: float = at_least(0.0, 0)  # L2 penalty (decoupled for adamw)
    # rmsprop smoothing constant, in [0, 1): at 1 the mean square stays 0 and each step divides by eps (torch checks
    # only >= 0) (0.9 as in TensorFlow's RMSProp, seed 002; another optimizer refuses other values); the upper
    # bound as momentum's
    rmsprop_alpha: float = at_least(0.9, 0)
    # adam / adamw: [beta1, beta2], the decay rates of the running means of the gradient and of its square, each in
    # [0, 1) (torch's defaults; ULMFiT fine-tunes with [0.7, 0.99], Howard & Ruder 2018, sec. 4); another optimizer
    # has none and refuses any other values (the defaults pass: every config.yaml writes them out)
    betas: list[float] = shares(*ADAM_BETAS)
    nt_asgd: int = at_least(0, 0)  # > 0: switch SGD to averaged SGD when validation has not improved for N evals (AWD)
    schedule: str = "none"  # none | halve_on_increase | plateau | step | triangular
    # triangular (slanted triangular rates, Howard & Ruder 2018): the share of the run's updates over which the
    # rate rises from lr / lr_ratio to lr (then it falls back to lr / lr_ratio at the last update)
    warmup: float = ranged(0.1, 0, 1, low_open=True, high_open=True)
    lr_ratio: float = at_least(32.0, 1)  # triangular: how many times smaller the first and last updates' rate is
    lr_decay: float = ranged(0.5, 0, 1, low_open=True)  # factor applied by a schedule
    decay_start: int = at_least(0, 0)  # step schedule: decay once per epoch after this many epochs
    patience: int = at_least(0, 0)  # plateau schedule: evaluations without improvement before decaying
    min_lr: float = at_least(0.0, 0)  # never decay below this (halve_on_increase, plateau, step)
    # discriminative rates (ULMFiT: 2.6): each deeper parameter group of the task (Task.parameter_groups, output
    # layer first) trains at the rate of the one above / this (1 = one rate for every parameter)
    layer_lr_decay: float = at_least(1.0, 1)
    clip: float = at_least(0.0, 0)  # clip the global gradient norm to this (0 = no clipping)
    batch_size: int = at_least(20, 1)  # sequences per batch (streams for running text; global over all processes)
    eval_batch_size: int = at_least(10, 1)  # sequences per batch when evaluating
    epochs: int = at_least(10, 1)  # passes over the training data
    max_steps: int = at_least(0, 0)  # stop after this many updates (0 = no limit)
    eval_every: int = at_least(0, 0)  # validate every N updates (0 = once per epoch)
    save_every: int = at_least(0, 0)  # also save a resumable checkpoint every N updates (0 = at each validation)
    early_stop: int = at_least(0, 0)  # stop after N evaluations without a new best selection metric (0 = never)
    seed: int = at_least(1111, 0)  # seeds python, numpy and torch; data order depends only on it and the epoch
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # bf16 autocast of the training forward on GPU (ignored on CPU)
    # bf16 autocast of the training forward on CPU (weights, optimizer and validation stay fp32); pays only on
    # a CPU with native bf16 (AVX-512 BF16 / AMX), elsewhere it is emulated and slower (a warning says so)
    cpu_amp: bool = False
    # torch CPU threads (0 = rnnkit's choice: OMP_NUM_THREADS if set, else every usable core); at most 1024:
    # OpenMP allocates per thread, and 10**8 threads is 20 GB
    threads: int = ranged(0, 0, 1024)
    log_every: int = at_least(50, 0)  # write a log row every N updates
    progress: bool = True  # progress bar on a terminal, a line per log row in a log file; false: quiet


class TaskConfig:
    """Base of every task's config: a dataclass with ``task: str`` first, the task's own sections (``data``,
    ``model``, ...) and ``train``, a :class:`TrainConfig` (or the task's extension of it), last."""

    task: str
    train: TrainConfig

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: the task of a config that names none (every config rnnkit writes names its task)
DEFAULT_TASK = "lm"


def task_of(values: dict[str, Any] | None, source: str = "<config>") -> type:
    """The task class (:mod:`rnnkit.tasks`) that config ``values`` names (``task:``, default
    :data:`DEFAULT_TASK`); an unknown task is an error naming the file and line."""
    from rnnkit.tasks import get_task

    name = (values or {}).get("task", DEFAULT_TASK)
    if not isinstance(name, str):
        raise RnnkitError(f"config key 'task' must be a string, got {shown_value(name)}", source,
                          _line_of(source, "task"))
    try:
        return get_task(name)
    except RnnkitError as e:
        raise RnnkitError(str(e), source, _line_of(source, "task")) from None


def config_class(values: dict[str, Any] | None, source: str = "<config>") -> type:
    """The config class of the task ``values`` names."""
    return task_of(values, source).config_class


def _build(cls: type, values: dict[str, Any], where: str, source: str,
           overridden: set[str] | frozenset = frozenset()) -> Any:
    """Instantiate dataclass ``cls`` from ``values``, rejecting unknown keys and wrong types."""
    if not isinstance(values, dict):
        raise RnnkitError(f"section '{where}' must be a mapping, got {type(values).__name__}", source)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        name = f"{where}.{key}" if where else key
        if key not in fields:
            raise RnnkitError(f"unknown config key '{name}' (known: {', '.join(fields)})", source,
                              _line_of(source, name))
        f = fields[key]
        if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory):
            kwargs[key] = _build(f.default_factory, {} if value is None else value, name, source, overridden)
        else:
            kwargs[key] = _check_type(value, field_default(f), name, "--set" if name in overridden else source)
    return cls(**kwargs)


def _check_type(value: Any, default: Any, name: str, source: str) -> Any:
    """Coerce ints to floats where a float is expected; reject other mismatches, non-finite floats and
    integers no 64-bit library call can take."""
    if default is None:  # the optional paths (data.train, tokenizer.spm_model, ...): a string or nothing
        if value is not None and not isinstance(value, str):
            raise RnnkitError(f"config key '{name}' must be a file path (a string), got {shown_value(value)}", source)
        return value
    if value is None:
        raise RnnkitError(f"config key '{name}' needs a value (default {default!r})", source)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise RnnkitError(f"config key '{name}' must be true or false, got {shown_value(value)}", source)
    elif isinstance(default, float):
        return _check_number(value, name, source)
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise RnnkitError(f"config key '{name}' must be an integer, got {shown_value(value)}", source)
        if not -_INT64_LIMIT <= value < _INT64_LIMIT:
            raise RnnkitError(f"config key '{name}' is too large ({shown_value(value)}; at most 2**63 - 1)", source)
    elif isinstance(default, str) and not isinstance(value, str):
        raise RnnkitError(f"config key '{name}' must be a string, got {shown_value(value)}", source)
    elif isinstance(default, list) and default and isinstance(default[0], float):  # numbers (train.betas)
        if not isinstance(value, list):
            raise RnnkitError(f"config key '{name}' must be a list of numbers, e.g. {default}, got "
                              f"{shown_value(value)}", source)
        return [_check_number(v, name, source, f" in {_yaml_shown(value)}") for v in value]
    elif isinstance(default, list):  # a list of integers (model.adaptive_cutoffs)
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise RnnkitError(f"config key '{name}' must be a list of integers, e.g. [2000, 10000], got "
                              f"{shown_value(value)}", source)
        return [_check_type(v, 0, name, source) for v in value]  # each within 64 bits
    return value


def _check_number(value: Any, name: str, source: str, within: str = "") -> float:
    """``value`` as a finite float32-sized float; ``within``: the list ``value`` is an item of, for the message
    (the item is then shown as YAML writes it, as the list is: ``null``, ``true``)."""
    if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        value = float(value)  # PyYAML (YAML 1.1) reads 1e-3, without a dot, as a string
    shown = _yaml_shown(value) if within else shown_value(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RnnkitError(f"config key '{name}' must be a number, got {shown}{within}", source)
    if isinstance(value, float) and not math.isfinite(value):  # (an int is finite, and may exceed a float64)
        raise RnnkitError(f"config key '{name}' must be a finite number, got {shown}{within}", source)
    if abs(value) > _FLOAT32_MAX:  # compared exactly, an int (10**400) unconverted
        size = shown_value(value) if isinstance(value, int) else f"{value:g}"
        raise RnnkitError(f"config key '{name}' is too large for float32 ({size}; at most 3.4e38){within}", source)
    return float(value)


_INT64_LIMIT = 2**63  # torch and numpy take signed 64-bit integers
_FLOAT32_MAX = 3.4028234663852886e38  # the weights, and the optimizer's scalars applied to them, are float32


def _yaml_shown(value: Any, limit: int = 60) -> str:
    """``value`` as YAML writes it on one line (``[null, true, high]``), cut short."""
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf).strip().removesuffix("\n...").strip()
    return text if len(text) <= limit else f"{text[:limit]}..."


def _line_of(source: str, name: str) -> int | None:
    """The line of a YAML file ``source`` that sets ``section.key`` (for error messages), if found."""
    path = Path(source)
    if path.suffix not in (".yaml", ".yml") or not path.is_file():
        return None
    lines, number = path.read_text(encoding="utf-8").splitlines(), 0
    for part in name.split("."):  # the section's line first, then the key's below it
        pattern = re.compile(rf"^\s*{re.escape(part)}\s*:")
        number = next((i for i in range(number, len(lines)) if pattern.match(lines[i])), None)
        if number is None:
            return None
        number += 1
    return number


def key_source(key: str, overrides: list[str] | None, file: str | Path | None) -> tuple[str | None, int | None]:
    """Where config key ``key`` (``section.key``) took its value, for an error: ``--set`` when an override sets it,
    else ``file`` (a recipe, a run's config.yaml) and the line there that sets it, if any."""
    if key in override_keys(overrides):
        return "--set", None
    if file is None:
        return None, None
    return str(file), _line_of(str(file), key)


def check_ranges(cfg: Any, source: str = "<config>", overridden: set[str] | frozenset = frozenset(),
                 where: str = "") -> None:
    """Reject values no run can use (a zero BPTT length, dropout 1.5, a negative LR) before anything runs:
    each field's range is in its metadata (:func:`ranged`)."""
    for f in dataclasses.fields(cfg):
        name, value = f"{where}.{f.name}" if where else f.name, getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            check_ranges(value, source, overridden, name)
        elif "length" in f.metadata:  # a list of a fixed length, each value in the range (train.betas)
            where_set = "--set" if name in overridden else source
            if len(value) != f.metadata["length"]:
                raise RnnkitError(f"config key '{name}' must hold exactly {f.metadata['length']} numbers, e.g. "
                                  f"{f.default_factory()}, got {value}", where_set)
            for item in value:
                _check_range(name, item, f.metadata["range"], where_set, f" in {value}")
        elif "range" in f.metadata:
            _check_range(name, value, f.metadata["range"], "--set" if name in overridden else source)


def _check_range(name: str, value: float, bounds: tuple, source: str, within: str = "") -> None:
    """``within``: the list ``value`` is an item of, for the message."""
    low, low_open, high, high_open = bounds
    if low is not None and (value <= low if low_open else value < low):
        bound = f"above {low}" if low_open else f"at least {low}"
        raise RnnkitError(f"config key '{name}' must be {bound}, got {value}{within}", source)
    if high is not None and (value >= high if high_open else value > high):
        bound = f"below {high}" if high_open else f"at most {high}"
        raise RnnkitError(f"config key '{name}' must be {bound}, got {value}{within}", source)


def config_from_dict(values: dict[str, Any], source: str = "<config>",
                     overridden: set[str] | frozenset = frozenset()) -> Any:
    """A checked config of the task ``values`` names (its class: the task's ``config_class``); keys in
    ``overridden`` came from ``--set``, so their errors name it, not ``source``."""
    values = {k: v for k, v in (values or {}).items() if not _is_extension_key(k)}
    cfg = _build(config_class(values, "--set" if "task" in overridden else source), values, "", source, overridden)
    check_ranges(cfg, source, overridden)
    return cfg


def _is_extension_key(key: Any) -> bool:
    """Top-level ``x-...`` keys are not config: they hold YAML anchors that sections merge (``<<: *base``)."""
    return isinstance(key, str) and key.startswith("x-")


def recipe_dir() -> Path:
    return Path(__file__).with_name("recipes")  # (importlib.resources would add 20 ms to `rnnkit recipes`)


def list_recipes() -> dict[str, str]:
    """Built-in recipe names mapped to their one-line description (the YAML's first comment line)."""
    out = {}
    for path in sorted(recipe_dir().glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        out[path.stem] = first.lstrip("# ").strip()
    return out


def resolve_recipe(name_or_path: str) -> Path:
    """A path when it has a slash or a .yaml / .yml suffix, else a built-in recipe's name (even when a
    file or folder of that name is in the current directory: ``rnnkit demo`` beside a ``demo/`` folder)."""
    path = Path(name_or_path)
    if "/" in name_or_path or os.sep in name_or_path or path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise RnnkitError("recipe file not found", path)
        return path
    builtin = recipe_dir() / f"{name_or_path}.yaml"
    if not builtin.is_file():
        hint = f"; for the file here, write ./{name_or_path}" if path.is_file() else ""
        raise RnnkitError(f"unknown recipe '{name_or_path}' (built-in: {', '.join(list_recipes())}){hint}")
    return builtin


#: a config is a few dozen values; more after expanding aliases is an alias bomb ("billion laughs")
MAX_YAML_VALUES = 100_000
#: config files are a few kilobytes; PyYAML (pure Python) parses about 50,000 values a second
MAX_YAML_BYTES = 64 << 10


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last silently)
    and aliases that expand beyond :data:`MAX_YAML_VALUES` values. Merge keys (``<<: *base``) work:
    a key of the mapping itself overrides a merged one, as YAML says."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                twice = key in seen
            except TypeError:  # an unhashable key (a list): PyYAML's own error names it
                continue
            if twice:
                raise yaml.constructor.ConstructorError(
                    None, None, f"'{key}' appears twice (lines {seen[key]} and {key_node.start_mark.line + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node):
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # Python reads no integer of more than 4,300 digits (sys.get_int_max_str_digits)
            digits = sum(c.isdigit() for c in node.value)
            raise yaml.constructor.ConstructorError(None, None, f"an integer of {digits:,} digits is too long to read",
                                                    node.start_mark) from None

    def get_single_data(self):
        node = self.get_single_node()
        if node is None:
            return None
        _check_expansion(node, {}, set())
        return self.construct_document(node)


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _UniqueKeyLoader.construct_yaml_int)


def _check_expansion(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """The number of values ``node`` stands for once its aliases are expanded; refuses more than
    :data:`MAX_YAML_VALUES`, and an alias inside the value it names (a structure that contains itself)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise yaml.constructor.ConstructorError(None, None, "an alias refers to a value that contains it",
                                                node.start_mark)
    open_nodes.add(key)
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    else:
        children = []
    total = 1
    for child in children:
        total += _check_expansion(child, sizes, open_nodes)
        if total > MAX_YAML_VALUES:
            raise yaml.constructor.ConstructorError(
                None, None, f"aliases expand to more than {MAX_YAML_VALUES:,} values (an alias bomb?)",
                node.start_mark)
    open_nodes.discard(key)
    sizes[key] = total
    return total


def parse_yaml(text: str, source: str | Path | None = None) -> Any:
    """YAML text -> Python values through the checking loader; a clear error naming ``source`` and line."""
    if len(text) > MAX_YAML_BYTES:
        raise RnnkitError(f"too large for a config ({len(text):,} characters; at most {MAX_YAML_BYTES:,})",
                          source)
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None and source is not None else None
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise RnnkitError(f"invalid YAML: {problem}", source, line) from None
    except RecursionError:
        raise RnnkitError("invalid YAML: nested too deeply", source) from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise RnnkitError(f"too large for a config ({path.stat().st_size:,} bytes; at most "
                              f"{MAX_YAML_BYTES:,})", path)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RnnkitError("file not found", path) from None
    except UnicodeDecodeError as e:
        raise RnnkitError(f"not UTF-8 ({e.reason} at byte {e.start})", path) from None
    except OSError as e:
        raise RnnkitError(f"cannot read ({e.strerror or e})", path) from None
    values = parse_yaml(text, path)
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise RnnkitError(f"the top level must be a mapping of sections (data, model, ...), not a "
                          f"{type(values).__name__}", path)
    return {k: {} if v is None else v for k, v in values.items()}  # a section with every key commented out


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings; values are parsed as YAML scalars (``0.5``, ``true``)."""
    overrides = overrides or []
    for index, item in enumerate(overrides):
        if not isinstance(item, str):
            raise RnnkitError(f"an override must be a 'key=value' string, got {shown_value(item)}")
        if "=" not in item:
            raise RnnkitError(f"override '{item}' is not of the form key=value (e.g. train.lr=0.5)")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        task_source = "--set" if "task" in override_keys(overrides[:index]) else "<config>"
        default = _check_override_key(item, parts, config_class(values, task_source) if parts != ["task"]
                                      else TaskConfig)
        node = values
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise RnnkitError(f"override '{item}': the recipe's '{part}' is not a section but {node!r}")
        node[parts[-1]] = _override_value(item, raw, default)
    return values


def _override_value(item: str, raw: str, default: Any) -> Any:
    """The YAML value of one ``key=value`` override (of the key whose default is ``default``); malformed YAML
    names the override. Nothing after ``=`` is the empty string for a text key (``train.freeze=``), no value
    for an optional path (``data.valid=``), and an error for a number or a switch."""
    if not raw.strip():
        if isinstance(default, str):
            return ""
        wanted = ("true or false" if isinstance(default, bool) else "an integer" if isinstance(default, int)
                  else "a number" if isinstance(default, float) else None)
        if wanted:
            key = item.split("=", 1)[0].strip()
            raise RnnkitError(f"config key '{key}' needs a value ({wanted}, e.g. "
                              f"{key}={str(default).lower() if isinstance(default, bool) else default})", "--set")
        return None
    try:
        return parse_yaml(raw)
    except RnnkitError as e:
        shown = item if len(item) <= 80 else f"{item[:80]}..."  # a value may be thousands of characters
        raise RnnkitError(f"override '{shown}': {e}") from None


def override_keys(overrides: list[str] | None) -> set[str]:
    """The ``section.key`` names that ``key=value`` overrides set."""
    return {item.split("=", 1)[0].strip() for item in overrides or []}


def _check_override_key(item: str, parts: list[str], cls: type) -> Any:
    """An override names a key of the config class ``cls`` (the error then names the override, not the
    recipe): returns the key's default; ``task=NAME`` itself is checked when the config is built (a text
    key: ``task=`` is the empty string, no task)."""
    if parts == ["task"]:
        return DEFAULT_TASK
    for depth, part in enumerate(parts):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if part not in fields:
            raise RnnkitError(f"override '{item}': unknown config key '{'.'.join(parts[:depth + 1])}' "
                              f"(known: {', '.join(fields)})")
        factory = fields[part].default_factory
        is_section = factory is not dataclasses.MISSING and dataclasses.is_dataclass(factory)
        if depth == len(parts) - 1:
            if is_section:
                raise RnnkitError(f"override '{item}': '{part}' is a section; set one of its keys "
                                  f"(e.g. {part}.{dataclasses.fields(factory)[0].name}=...)")
            return fields[part].default
        if not is_section:
            raise RnnkitError(f"override '{item}': '{part}' is not a section (it is a key)")
        cls = factory


def load_config(recipe: str | None = None, overrides: list[str] | None = None,
                extra: dict[str, Any] | None = None) -> Any:
    """Recipe (built-in name or YAML path) + ``extra`` dict + ``key=value`` overrides -> Config."""
    values: dict[str, Any] = {}
    source = "<overrides>"
    if recipe:
        path = resolve_recipe(recipe)
        values = load_yaml(path)
        source = str(path)
    _check_recipe_task(values, (extra or {}).get("task"), source)
    for section, sub in (extra or {}).items():
        current = values.get(section) or {}
        if isinstance(sub, dict) and not isinstance(current, dict):
            raise RnnkitError(f"section '{section}' must be a mapping, got {type(current).__name__}", source)
        values[section] = {**current, **sub} if isinstance(sub, dict) else sub
    values = apply_overrides(values, overrides or [])
    return config_from_dict(values, source, override_keys(overrides))


def _check_recipe_task(values: dict[str, Any], task: Any, source: str) -> None:
    """A recipe made for one task is not read as another's (its keys would be unknown keys)."""
    named = values.get("task")
    if task is not None and named is not None and named != task:
        raise RnnkitError(f"this recipe is for the task '{named}', not '{task}' (rnnkit train {named} ...)", source,
                          _line_of(source, "task"))


def save_config(config: TaskConfig, path: str | Path) -> None:
    from rnnkit.checkpoint import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


#: names that modules imported from here before the LM owned its sections: they are the LM's (the
#: import is lazy, so that the LM's config module can use this one)
_LM_NAMES = {"Config": "LMConfig", "DataConfig": "DataConfig", "TokenizerConfig": "TokenizerConfig",
             "ModelConfig": "ModelConfig"}


def __getattr__(name: str) -> Any:
    if name in _LM_NAMES:
        from rnnkit.tasks import lm_config

        return getattr(lm_config, _LM_NAMES[name])
    raise AttributeError(f"module 'rnnkit.config' has no attribute '{name}'")

"""Configuration: dataclasses, YAML recipes and ``key=value`` overrides.

A config has four sections (``data``, ``tokenizer``, ``model``, ``train``) plus ``task``. Recipes are
YAML files with the same shape; unknown keys are an error naming the key. The fully resolved config is
written as ``config.yaml`` into every model directory, so a model dir alone says how it was made.
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

from rnnkit.errors import RnnkitError

_EXPONENT_FLOAT = re.compile(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+")


@dataclass
class DataConfig:
    train: str | None = None  # training text (.txt, .txt.gz, .jsonl[.gz] with a "text" field)
    valid: str | None = None  # validation text; when absent, the last valid_fraction of train is held out
    test: str | None = None  # test text, scored after training when given
    valid_fraction: float = 0.1  # share of train held out when no valid file is given
    mode: str = "stream"  # stream: running text | sentences: <bos> s <eos> each | windows (seed 002)
    window: int = 3  # windows mode: words of context before each predicted word (seed 002: 3)
    split_sentences: bool = False  # split each line into sentences first (seed 001 on review text)
    max_lines: int = 0  # read at most this many lines (sentences after splitting) of train/valid; 0 = all
    max_length: int = 0  # sentences mode: drop sentences longer than this many tokens; 0 = keep all
    min_length: int = 0  # sentences mode: drop sentences shorter than this many tokens


@dataclass
class TokenizerConfig:
    kind: str = "word"  # char | word | sentencepiece
    split_punctuation: bool = True  # word: split punctuation off words ("mice," -> "mice ,")
    lowercase: bool = False  # lower-case text (training data and prompts) before tokenizing
    vocab_size: int = 0  # keep the most frequent N tokens (specials included); 0 = no limit
    min_freq: int = 1  # drop tokens seen fewer times than this
    spm_model: str | None = None  # sentencepiece: a trained .model file to load instead of training
    spm_type: str = "unigram"  # sentencepiece model type when training: unigram | bpe | char | word


@dataclass
class ModelConfig:
    cell: str = "lstm"  # rnn_tanh | rnn_relu | gru | lstm (torch.nn.RNN/GRU/LSTM)
    embedding_size: int = 200  # size of the token embeddings
    hidden_size: int = 200  # hidden units per layer
    layers: int = 2  # stacked recurrent layers
    dropout: float = 0.0  # dropout on the last layer's output, before the softmax
    embedding_dropout: float = 0.0  # dropout on the embedded inputs
    layer_dropout: float = 0.0  # dropout between recurrent layers
    locked_dropout: bool = False  # one dropout mask per sequence instead of per step (Gal & Ghahramani)
    word_dropout: float = 0.0  # drop whole rows of the embedding matrix (AWD-LSTM "embedding dropout")
    weight_drop: float = 0.0  # DropConnect on the hidden-to-hidden weights (AWD-LSTM)
    tie_weights: bool = False  # share embedding and softmax weights; the last layer then has embedding_size units
    init_range: float = 0.0  # > 0: all weights uniform in [-r, r] (Zaremba et al.); 0: PyTorch defaults


@dataclass
class TrainConfig:
    optimizer: str = "sgd"  # sgd | adam | adamw | rmsprop | asgd
    lr: float = 1.0  # learning rate
    momentum: float = 0.0  # sgd / rmsprop momentum
    weight_decay: float = 0.0  # L2 penalty (decoupled for adamw)
    rmsprop_alpha: float = 0.9  # rmsprop smoothing constant (0.9 as in TensorFlow's RMSProp, seed 002)
    nt_asgd: int = 0  # > 0: switch SGD to averaged SGD when val loss has not improved for N evals (AWD)
    schedule: str = "none"  # none | halve_on_increase | plateau | step
    lr_decay: float = 0.5  # factor applied by a schedule
    decay_start: int = 0  # step schedule: decay once per epoch after this many epochs
    patience: int = 0  # plateau schedule: evaluations without improvement before decaying
    min_lr: float = 0.0  # never decay below this
    clip: float = 0.0  # clip the global gradient norm to this (0 = no clipping)
    batch_size: int = 20  # sequences per batch (streams for running text; global over all processes)
    eval_batch_size: int = 10  # sequences per batch when evaluating
    bptt: int = 35  # truncated BPTT length (running text)
    variable_bptt: bool = False  # AWD-LSTM: random BPTT length around bptt, lr scaled to match
    epochs: int = 10  # passes over the training data
    max_steps: int = 0  # stop after this many updates (0 = no limit)
    eval_every: int = 0  # validate every N updates (0 = once per epoch)
    save_every: int = 0  # also save a resumable checkpoint every N updates (0 = at each validation)
    early_stop: int = 0  # stop after N evaluations without improvement (0 = never)
    activation_reg: float = 0.0  # AWD-LSTM AR: alpha * mean(h^2) on the dropped last-layer output
    temporal_reg: float = 0.0  # AWD-LSTM TAR: beta * mean((h_t - h_{t-1})^2)
    seed: int = 1111  # seeds python, numpy and torch; data order depends only on it and the epoch
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # bf16 autocast on GPU (ignored on CPU)
    threads: int = 0  # torch CPU threads (0 = rnnkit's choice: OMP_NUM_THREADS if set, else every usable core)
    log_every: int = 50  # write a log row every N updates
    progress: bool = True  # progress bar on a terminal, a line per log row in a log file; false: quiet


@dataclass
class Config:
    task: str = "lm"  # lm (more tasks plug in here)
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
            kwargs[key] = _check_type(value, f.default, name, "--set" if name in overridden else source)
    return cls(**kwargs)


def _check_type(value: Any, default: Any, name: str, source: str) -> Any:
    """Coerce ints to floats where a float is expected; reject other mismatches, non-finite floats and
    integers no 64-bit library call can take."""
    if default is None:  # the optional paths (data.train, tokenizer.spm_model, ...): a string or nothing
        if value is not None and not isinstance(value, str):
            raise RnnkitError(f"config key '{name}' must be a file path (a string), got {_shown(value)}", source)
        return value
    if value is None:
        raise RnnkitError(f"config key '{name}' needs a value (default {default!r})", source)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise RnnkitError(f"config key '{name}' must be true or false, got {_shown(value)}", source)
    elif isinstance(default, float):
        if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
            value = float(value)  # PyYAML (YAML 1.1) reads 1e-3, without a dot, as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RnnkitError(f"config key '{name}' must be a number, got {_shown(value)}", source)
        if not math.isfinite(value):
            raise RnnkitError(f"config key '{name}' must be a finite number, got {value}", source)
        if abs(value) > _FLOAT32_MAX:
            raise RnnkitError(f"config key '{name}' is too large for float32 ({value:g}; at most 3.4e38)", source)
        return float(value)
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise RnnkitError(f"config key '{name}' must be an integer, got {_shown(value)}", source)
        if not -_INT64_LIMIT <= value < _INT64_LIMIT:
            raise RnnkitError(f"config key '{name}' is too large ({_shown(value)}; at most 2**63 - 1)", source)
    elif isinstance(default, str) and not isinstance(value, str):
        raise RnnkitError(f"config key '{name}' must be a string, got {_shown(value)}", source)
    return value


_INT64_LIMIT = 2**63  # torch and numpy take signed 64-bit integers
_FLOAT32_MAX = 3.4028234663852886e38  # the weights, and the optimizer's scalars applied to them, are float32


def _shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut short: a wrong value may be a huge list or string."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({type(value).__name__})"


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


# allowed ranges: (low, low excluded, high, high excluded); None = unbounded
_AT_LEAST_0, _AT_LEAST_1 = (0, False, None, False), (1, False, None, False)
_FRACTION, _UNIT = (0, False, 1, True), (0, True, 1, False)
_RANGES: dict[str, tuple[float | None, bool, float | None, bool]] = {
    "data.valid_fraction": _FRACTION, "data.window": _AT_LEAST_1, "data.max_lines": _AT_LEAST_0,
    "data.max_length": _AT_LEAST_0, "data.min_length": _AT_LEAST_0,
    "tokenizer.vocab_size": _AT_LEAST_0, "tokenizer.min_freq": _AT_LEAST_1,
    "model.embedding_size": _AT_LEAST_1, "model.hidden_size": _AT_LEAST_1, "model.layers": _AT_LEAST_1,
    "model.init_range": _AT_LEAST_0,
    **{f"model.{k}": _FRACTION for k in ("dropout", "embedding_dropout", "layer_dropout", "word_dropout",
                                         "weight_drop")},
    "train.lr": _AT_LEAST_0, "train.lr_decay": _UNIT, "train.rmsprop_alpha": (0, False, 1, False),
    "train.seed": _AT_LEAST_0,
    **{f"train.{k}": _AT_LEAST_0 for k in ("momentum", "weight_decay", "nt_asgd", "decay_start", "patience",
                                           "min_lr", "clip", "max_steps", "eval_every", "save_every",
                                           "early_stop", "activation_reg", "temporal_reg", "log_every")},
    "train.threads": (0, False, 1024, False),  # OpenMP allocates per thread: 10**8 threads is 20 GB
    **{f"train.{k}": _AT_LEAST_1 for k in ("batch_size", "eval_batch_size", "bptt", "epochs")},
}


def check_ranges(cfg: Config, source: str = "<config>", overridden: set[str] | frozenset = frozenset()) -> None:
    """Reject values no run can use (a zero BPTT length, dropout 1.5, a negative LR) before anything runs."""
    for name, (low, low_open, high, high_open) in _RANGES.items():
        section, key = name.split(".")
        value = getattr(getattr(cfg, section), key)
        where = "--set" if name in overridden else source
        if low is not None and (value <= low if low_open else value < low):
            bound = f"above {low}" if low_open else f"at least {low}"
            raise RnnkitError(f"config key '{name}' must be {bound}, got {value}", where)
        if high is not None and (value >= high if high_open else value > high):
            bound = f"below {high}" if high_open else f"at most {high}"
            raise RnnkitError(f"config key '{name}' must be {bound}, got {value}", where)


def config_from_dict(values: dict[str, Any], source: str = "<config>",
                     overridden: set[str] | frozenset = frozenset()) -> Config:
    """A checked Config; keys in ``overridden`` came from ``--set``, so their errors name it, not ``source``."""
    values = {k: v for k, v in (values or {}).items() if not _is_extension_key(k)}
    cfg = _build(Config, values, "", source, overridden)
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

    def get_single_data(self):
        node = self.get_single_node()
        if node is None:
            return None
        _check_expansion(node, {}, set())
        return self.construct_document(node)


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
    for item in overrides or []:
        if not isinstance(item, str):
            raise RnnkitError(f"an override must be a 'key=value' string, got {_shown(item)}")
        if "=" not in item:
            raise RnnkitError(f"override '{item}' is not of the form key=value (e.g. train.lr=0.5)")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        _check_override_key(item, parts)
        node = values
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise RnnkitError(f"override '{item}': the recipe's '{part}' is not a section but {node!r}")
        node[parts[-1]] = _override_value(item, raw)
    return values


def _override_value(item: str, raw: str) -> Any:
    """The YAML value of one ``key=value`` override (empty: no value); malformed YAML names the override."""
    if not raw.strip():
        return None
    try:
        return parse_yaml(raw)
    except RnnkitError as e:
        raise RnnkitError(f"override '{item}': {e}") from None


def override_keys(overrides: list[str] | None) -> set[str]:
    """The ``section.key`` names that ``key=value`` overrides set."""
    return {item.split("=", 1)[0].strip() for item in overrides or []}


def _check_override_key(item: str, parts: list[str]) -> None:
    """An override names a known key (the error then names the override, not the recipe)."""
    cls: Any = Config
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
            return
        if not is_section:
            raise RnnkitError(f"override '{item}': '{part}' is not a section (it is a key)")
        cls = factory


def load_config(recipe: str | None = None, overrides: list[str] | None = None,
                extra: dict[str, Any] | None = None) -> Config:
    """Recipe (built-in name or YAML path) + ``extra`` dict + ``key=value`` overrides -> Config."""
    values: dict[str, Any] = {}
    source = "<overrides>"
    if recipe:
        path = resolve_recipe(recipe)
        values = load_yaml(path)
        source = str(path)
    for section, sub in (extra or {}).items():
        current = values.get(section) or {}
        if isinstance(sub, dict) and not isinstance(current, dict):
            raise RnnkitError(f"section '{section}' must be a mapping, got {type(current).__name__}", source)
        values[section] = {**current, **sub} if isinstance(sub, dict) else sub
    values = apply_overrides(values, overrides or [])
    return config_from_dict(values, source, override_keys(overrides))


def save_config(config: Config, path: str | Path) -> None:
    from rnnkit.checkpoint import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))

"""The task contract: what a task (lm, seq2seq, classify, ...) supplies to the one trainer, the model
directory and the command line. The trainer, checkpoint, API and CLI know no task by name; they ask
the task named in the config (:func:`rnnkit.tasks.get_task`) through the classes below.

A task module ``rnnkit/tasks/NAME.py`` defines one :class:`Task` subclass with ``name = "NAME"`` and its
:class:`LoadedModel` subclass; adding the file registers the task (``rnnkit train NAME``). A task
defined elsewhere (a plug-in, a test) calls :func:`rnnkit.tasks.register_task`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

#: the direction of a selection metric: "min" (a loss) or "max" (BLEU, accuracy)
DIRECTIONS = ("min", "max")


@dataclass
class LossResult:
    """What a task returns for one batch: summed loss over ``count`` targets, the next state, an extra
    penalty (already a mean, e.g. AWD's activation regularisation) added to the mean loss, and further
    figures for the ``train`` rows of log.csv: ``logged`` maps a column name to a (sum, count) pair the
    trainer averages over the updates of each row (sum of sums / sum of counts), e.g. the classifier's
    ``aux_loss``."""

    loss_sum: Any  # a 0-d tensor
    count: int
    state: Any = None
    penalty: Any = 0.0  # a 0-d tensor or a float
    logged: dict[str, tuple[Any, int]] = field(default_factory=dict)  # name -> (0-d tensor or float, count)


class LoadedModel:
    """A trained model loaded from its directory (what ``rnnkit.load(DIR)`` returns).

    ``verb`` is the task's own command (``generate``, ``translate``, ``classify``): the method of that
    name does it. ``evaluate(path, batch_size=None, max_lines=0, **options)`` scores a data file with the
    task's standard metrics; ``rnnkit evaluate DIR --data PATH [--batch-size N] [--max-lines N]`` passes
    those, and the options a task adds with :meth:`add_evaluate_arguments` as keywords.
    """

    verb: ClassVar[str] = ""
    config: Any  # the config it was trained with (an instance sets it)
    results: dict | None = None  # set by rnnkit.train: the run's final metrics

    @classmethod
    def checked_parts(cls, model_dir: Path, cfg: Any, weights: Path | None = None, dtype: Any = None) -> Any:
        """Check ``model_dir`` before anything is allocated: its asset files' fields, the header of
        ``weights`` (default: model.safetensors) against the model ``cfg`` describes (in ``dtype``,
        default float32) and the fingerprint; returns what :meth:`load` needs of the assets."""
        raise NotImplementedError

    @classmethod
    def load(cls, model_dir: Path, cfg: Any, device: Any) -> LoadedModel:
        raise NotImplementedError

    def evaluate(self, path: str | Path, batch_size: int | None = None, max_lines: int = 0,
                 **options: Any) -> dict[str, float]:
        raise NotImplementedError

    @classmethod
    def add_evaluate_arguments(cls, parser: Any) -> None:
        """Add this task's own ``rnnkit evaluate`` options to ``parser`` (an argparse parser for the
        arguments the generic ones leave); their values reach :meth:`evaluate` as keywords named by
        each option's ``dest``. A task whose options name files to write sets the default ``overwrite=False``
        (``parser.set_defaults``): ``rnnkit evaluate --overwrite`` then passes ``overwrite=True``. Default: none."""

    def evaluation_lines(self, metrics: dict[str, float]) -> list[str] | None:
        """What ``rnnkit evaluate`` prints above its JSON line for the ``metrics`` :meth:`evaluate` just returned
        (a classifier: a per-class table and its confusion matrix); None: one line per metric."""
        return None

    def kernel_path(self, verb: str, **_: Any) -> str:
        """One line saying what runs the model (``rnnkit evaluate -v``)."""
        return f"{verb}: {type(self).__name__}"

    def vocabularies(self) -> dict[str, Any]:
        """The model's vocabularies by the role its ``vocab_parameters()`` name ("vocab", "src", "trg"):
        weight transfer (``--init-from``) maps those parameters' rows by token. Default: none."""
        return {}

    @classmethod
    def text_reading(cls, model_dir: Path) -> tuple[Any, Any] | None:
        """The (tokenizer, vocabulary) the checked model directory ``model_dir`` reads all its text with: what a
        run started from it with ``tokenizer.from_init`` takes. None: it has no one reading of text (numeric
        input; a seq2seq model's two sides). Default: None."""
        return None


class Task:
    """One training run's data, vocabulary and model, and how to score them; a subclass per task.

    Class attributes (declared, read without building anything):

    - ``name``: the task's name (``rnnkit train NAME``, ``task: NAME`` in a config).
    - ``config_class``: a dataclass subclassing :class:`rnnkit.config.TaskConfig` with ``task``, the task's
      own sections (``data``, ``model``, ...) and ``train`` (:class:`rnnkit.config.TrainConfig` or an
      extension of it). ``data`` has ``train``, ``valid`` and ``test`` paths (``--data``, ``--valid``,
      ``--test`` set them).
    - ``loaded_class``: the :class:`LoadedModel` subclass ``rnnkit.load`` returns.
    - ``selection``: (metric, "min" | "max"): what :meth:`validate` returns that selects the best weights,
      drives early stopping and the plateau / halve_on_increase schedules.
    - ``asset_files``: the files :meth:`save_assets` writes into a model directory (vocabularies,
      tokenizers, label sets); the weights' fingerprint binds every one of them (absent ones as absent).
    - ``required_files``: those of ``asset_files`` a model directory cannot load without.
    - ``read_limits``: the most bytes rnnkit reads of each asset file it parses whole.
    - ``bound_config_keys``: the config keys the weights' fingerprint binds (what decides their meaning).
    - ``resumable_keys``: the task's own config keys ``--resume --set`` may change (beyond the shared ones).
    - ``data_folders``: ``--data DIR`` may name a data set that is a folder (see :func:`rnnkit.api.find_splits`).

    An instance is built by ``Task(cfg, dist, device, vocab_from=None)`` (``vocab_from``: a model
    directory whose assets to reuse: resume, a same-task --init-from) and has ``model`` (a torch module) and
    ``train_data`` (``.plan(epoch) -> list of specs``, ``.batch(spec) -> batch`` with ``.to(device)``,
    ``.num_tokens``). A new run from another model (--init-from of another task, or with --init-prefix /
    --init-partial) whose config :meth:`reads_text_from_init` gets ``text_from=(tokenizer, vocabulary, tokenizer
    keys)`` too: the source's (:meth:`LoadedModel.text_reading`, its config's ``tokenizer``), to read its text
    with instead of building its own.
    """

    name: ClassVar[str]
    config_class: ClassVar[type]
    loaded_class: ClassVar[type[LoadedModel]]
    selection: ClassVar[tuple[str, str]] = ("loss", "min")
    asset_files: ClassVar[tuple[str, ...]] = ()
    required_files: ClassVar[tuple[str, ...]] = ()
    read_limits: ClassVar[dict[str, int]] = {}
    bound_config_keys: ClassVar[tuple[str, ...]] = ("task",)
    resumable_keys: ClassVar[tuple[str, ...]] = ()
    #: a data set may be a folder (a classifier's folder per class): ``--data DIR`` is that folder, or holds
    #: train / valid / test folders
    data_folders: ClassVar[bool] = False

    model: Any
    train_data: Any

    def __init__(self, cfg: Any, dist: Any, device: Any, vocab_from: Path | None = None):
        self.cfg, self.dist, self.device = cfg, dist, device

    @classmethod
    def reads_text_from_init(cls, cfg: Any) -> bool:
        """Whether ``cfg`` asks a run started from another model to take that model's tokenizer and vocabulary
        (``text_from``; classify and autoencoder: ``tokenizer.from_init``). Default: False."""
        return False

    @classmethod
    def find_data(cls, path: str | Path, cfg: Any) -> dict[str, str]:
        """The data splits ``--data PATH`` names, as absolute paths by split (``train``, ``valid``, ``test``):
        what ``data.train`` / ``data.valid`` / ``data.test`` become. ``cfg`` is the config the recipe and
        overrides give without ``--data`` (its data keys may say how to read the folder). Default: a file is
        the training data; a folder is searched for train / valid / test files by name
        (:func:`rnnkit.api.find_splits`; sub-folders too with :attr:`data_folders`)."""
        from rnnkit.api import find_splits

        return find_splits(path, cls.data_folders)

    def batch_loss(self, model: Any, batch: Any, state: Any) -> LossResult:
        """The summed loss of one training batch (``state``: what the last batch's result carried, when
        the batch says ``carry_state``)."""
        raise NotImplementedError

    def validate(self, model: Any) -> dict[str, float]:
        """Metrics of ``model`` on the validation data: ``loss`` and the selection metric among them."""
        raise NotImplementedError

    def on_epoch_start(self, epoch: int, model: Any) -> None:
        """Called by the trainer before each epoch's first batch (and when a run resumes mid-epoch), with the
        0-based ``epoch`` and the (unwrapped) model: e.g. a classifier's frozen parts are unfrozen here.
        Whatever it changes must follow from ``epoch`` alone, so a resumed run trains as an unbroken one."""

    def parameter_groups(self, model: Any) -> list[tuple[str, list[Any], int]]:
        """The (unwrapped) ``model``'s parameters as (name, parameters, depth) groups, ordered from the output
        down, for discriminative learning rates: with ``train.layer_lr_decay`` D > 1 the trainer trains each group
        at lr / D ** depth (the output layer: depth 0). Each parameter is in exactly one group (a list, or any
        iterable such as ``module.parameters()``). Default: one group of every parameter, ``("all", params, 0)``: a
        task with one group refuses train.layer_lr_decay (one that does not override this, before reading data)."""
        return [("all", list(model.parameters()), 0)]

    def warn_unknown_text(self, vocab_from_init: bool) -> None:
        """Warnings on stderr about the tokens of the run's data files outside its vocabulary, said once before
        training by the main process (:func:`rnnkit.api.run`); ``vocab_from_init``: the vocabulary is the --init-from
        model's (a strict same-task init), not one built from this data. Default: nothing."""

    def lr_scale(self, batch: Any) -> float:
        """A factor on the learning rate of one batch (the LM's variable BPTT); 1 for most tasks."""
        return 1.0

    def progress(self, loss: float, rate: float) -> str:
        """What the progress line (the bar's postfix, or the line printed per train log row) says of the
        training since the last row: ``loss`` is the mean loss per counted target and ``rate`` the targets
        (:attr:`LossResult.count`) per second. Default, for a loss per token (LM, seq2seq, autoencoder): the
        loss, its perplexity and tokens/s."""
        return f"loss {loss:.3f} ppl {math.exp(min(loss, 50)):.1f} {rate:,.0f} tok/s"

    def describe(self) -> str:
        """One line saying what runs (printed when training starts)."""
        params = sum(p.numel() for p in self.model.parameters())
        return f"{self.name}: {params:,} parameters; {self.train_data.num_tokens:,} training tokens"

    def save_assets(self, out_dir: Path) -> None:
        """Write :attr:`asset_files` (vocabularies, tokenizers, ...) into a new run's model directory."""

    def vocabularies(self) -> dict[str, Any]:
        """This run's vocabularies by role, as :meth:`LoadedModel.vocabularies`. Default: none."""
        return {}

    def test_metrics(self, out_dir: Path, device: Any) -> dict[str, float] | None:
        """Metrics of the best weights on the test split after training (None: no test data given).
        Default: the loaded model's ``evaluate`` on ``data.test``."""
        test = getattr(self.cfg.data, "test", None)
        if not test:
            return None
        return self.loaded_class.load(Path(out_dir), self.cfg, device).evaluate(test)


def check_task_class(cls: type) -> None:
    """A task class declares what the contract asks (a clear TypeError for a plug-in that does not)."""
    missing = [a for a in ("name", "config_class", "loaded_class") if not hasattr(cls, a)]
    if missing or not issubclass(cls, Task):
        raise TypeError(f"{cls.__name__} is not a task: subclass rnnkit.tasks.base.Task and set "
                        f"{', '.join(missing) or 'name, config_class, loaded_class'}")
    metric, direction = cls.selection
    if direction not in DIRECTIONS:
        raise TypeError(f"{cls.__name__}.selection direction must be 'min' or 'max', got {direction!r}")
    if not set(cls.required_files) <= set(cls.asset_files):
        raise TypeError(f"{cls.__name__}.required_files must be among its asset_files")

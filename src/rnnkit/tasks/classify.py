"""Sequence classification: the task the trainer runs, and the loaded model users classify with.

``ClassifyTask`` reads labelled texts (JSONL, CSV/TSV, a folder per class) or numeric sequences (.npz, IDX
images read row by row: seed 003's MNIST), builds the label set, the vocabulary (text) and the
:class:`~rnnkit.models.classifier.SequenceClassifier`, and selects the weights by validation accuracy.
``Classifier`` is what ``rnnkit.load(DIR)`` returns for a classifier: ``classify``, ``evaluate``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.arguments import check_bool_argument, check_int_argument, check_path_argument
from rnnkit.checkpoint import (
    WEIGHTS_FILE,
    atomic_write_text,
    check_model_weights,
    check_output_file,
    load_weights,
)
from rnnkit.data.batching import rows_in_input_order
from rnnkit.data.labelled import (
    SPLIT_MODES,
    TRUNCATE,
    ClassifyBatch,
    Encoded,
    Examples,
    ReadOptions,
    check_finite,
    class_names,
    clean_text,
    detect_format,
    encode_features,
    example_batches,
    label_ids,
    label_set,
    read_examples,
    split_examples,
    text_ids,
    truncate,
    warp_randomly,
)
from rnnkit.data.readers import check_file, shown_name
from rnnkit.data.tokenizers import SPM_FILE, TOKENIZER_FILE, Tokenizer, build_tokenizer, load_tokenizer
from rnnkit.data.vocab import CHECK_READING, CLASSIFY_OOV_WARN_RATE, SPECIALS, Vocab, oov_warning, reused_vocabulary
from rnnkit.distributed import DistInfo
from rnnkit.errors import RnnkitError, parse_json, shown_value
from rnnkit.metrics import ClassificationReport, classification_report
from rnnkit.models.classifier import SequenceClassifier
from rnnkit.nn.rnn import describe_kernels
from rnnkit.nn.stack import describe_padded
from rnnkit.tasks.base import LoadedModel, LossResult, Task
from rnnkit.tasks.classify_config import (
    ClassifierTrainConfig,
    ClassifyConfig,
    ClassifyTrainConfig,
    TextTokenizerConfig,
)
from rnnkit.tasks.lm_config import TokenizerConfig
from rnnkit.transfer import LABELS_ROLE, RowNames

LABELS_FILE = "labels.json"  # the classes, in id order
FEATURES_FILE = "features.json"  # numeric models: {"features": F}, the width of each step
VOCAB_FILE = "vocab.json"


def encoder_path(rnns: nn.ModuleList, numeric: bool, batch_size: int, device: torch.device, training: bool) -> str:
    """How the recurrent encoder runs batches, for a log line: texts are padded to the longest of their batch
    (:func:`rnnkit.nn.stack.describe_padded`); numeric sequences mostly all have the same length (IDX, .npz
    without lengths), and a batch with no padding runs unpadded."""
    padded = describe_padded(rnns, device)
    if not numeric:
        return f"padded batches {padded}"
    return f"full-length batches on {describe_kernels(rnns, None, batch_size, device, training)}; padded ones {padded}"


def read_options(cfg: ClassifyConfig) -> ReadOptions:
    d = cfg.data
    return ReadOptions(d.format, d.text_field, d.label_field, d.strip_markup, class_names(d.classes))


def _check_data_config(cfg: ClassifyConfig) -> None:
    """What the data keys must say before anything is read."""
    d = cfg.data
    if not d.train:
        raise RnnkitError("no training data: give --data FILE (or set data.train in the recipe)")
    if d.truncate not in TRUNCATE:
        raise RnnkitError(f"unknown data.truncate '{d.truncate}' ({' | '.join(TRUNCATE)})")
    if d.split not in SPLIT_MODES:
        raise RnnkitError(f"unknown data.split '{d.split}' ({' | '.join(SPLIT_MODES)})")
    if d.valid_fraction + d.test_fraction >= 1:
        raise RnnkitError(f"data.valid_fraction {d.valid_fraction} + data.test_fraction {d.test_fraction} leave "
                          "nothing to train on")
    fmt = detect_format(d.train, d.format)
    if d.classes and fmt != "folder":  # it would select nothing: the labels of a file are its label field's
        raise RnnkitError(f"data.classes names class folders: it applies to a folder per class, not to {d.train} "
                          f"({fmt})")
    if d.test and not Path(d.test).is_dir():
        check_file(d.test)  # scored after training: a wrong path must not wait for that


def _check_joint_weight(cfg: ClassifyConfig) -> None:
    """A joint objective's weight without the objective would be kept in config.yaml and do nothing."""
    weight = cfg.train.joint_weight
    if cfg.model.joint == "none" and weight != ClassifierTrainConfig.joint_weight:
        raise RnnkitError(f"train.joint_weight {weight:g} weighs no joint objective (model.joint none): set "
                          "model.joint lm or reconstruct, or leave train.joint_weight out")


def _splits(cfg: ClassifyConfig) -> tuple[Examples, Examples, Examples | None]:
    """Training, validation and (held-out) test examples: files when given, else parts of train."""
    d = cfg.data
    options = read_options(cfg)
    train = read_examples(d.train, options)
    if d.max_examples and d.max_examples < len(train):  # a random subset: IMDB's files are sorted by label
        chosen = np.random.default_rng(d.split_seed).permutation(len(train))[: d.max_examples]
        train = train.subset(sorted(chosen.tolist()))
    valid_fraction = 0.0 if d.valid else d.valid_fraction
    test_fraction = 0.0 if d.test else d.test_fraction
    if not d.valid and valid_fraction == 0:
        raise RnnkitError("no validation data: give --valid FILE or a data.valid_fraction above 0")
    whole = train
    train, held_valid, held_test = split_examples(train, valid_fraction, test_fraction, d.split, d.split_seed)
    _check_every_class_trains(whole, train, held_valid, held_test, cfg)
    valid = read_examples(d.valid, options) if d.valid else held_valid
    if valid.numeric != train.numeric:
        kinds = {True: "numeric sequences", False: "texts"}
        raise RnnkitError(f"holds {kinds[valid.numeric]}, the training data {kinds[train.numeric]}", valid.path)
    return train, valid, held_test if len(held_test) else None


def _check_every_class_trains(whole: Examples, train: Examples, held_valid: Examples, held_test: Examples,
                              cfg: ClassifyConfig) -> None:
    """Every class of the training file keeps a training example after the held-out parts are drawn: else an error
    saying what happened (too few examples left to train, or a rare class drawn wholly out), not an unknown label on
    a line of the training file. (A split stratified by label would avoid it, but change every recipe's split.)"""
    classes, kept = label_set(whole.labels), set(train.labels)
    missing = [label for label in classes if label not in kept]
    if not missing:
        return
    d = cfg.data
    fractions = " and ".join(f"data.{key} {getattr(d, key):g}" for key in ("valid_fraction", "test_fraction")
                             if getattr(d, key) and not getattr(d, key.split("_")[0]))
    if len(classes) > len(whole) // 2:  # most classes have one example: a text field read as the label?
        raise RnnkitError(f"{len(classes)} classes among {len(whole)} examples (one is {shown_value(missing[0])}): a "
                          "class needs examples to train on and to validate, so each needs several; is the label "
                          f"field data.label_field {d.label_field!r} (JSONL, CSV/TSV) the right one?", whole.path)
    if len(train) < len(classes):
        raise RnnkitError(f"only {len(train)} of its {len(whole)} examples left to train on after {fractions} held "
                          f"out, too few for {len(classes)} classes: lower {fractions.split()[0]} or give a --valid "
                          "file", whole.path)
    label = missing[0]
    parts = [name for name, part in (("validation", held_valid), ("test", held_test)) if label in part.labels]
    count = whole.labels.count(label)
    another = "another data.split_seed" if d.split == "random" else "data.split random"
    raise RnnkitError(f"the class {shown_value(label)} has {count} example{'s' if count > 1 else ''}, all drawn into "
                      f"the {' and '.join(parts)} split{'s' if len(parts) > 1 else ''} ({fractions}): none is left to "
                      f"train on; give it more examples, {another}, a smaller share held out, or a --valid file",
                      whole.path)


def _check_reused_reading(reused: InputReader, train: Examples, model_dir: Path) -> None:
    """The training data fits the classes and reading a run takes from ``model_dir`` (a same-task --init-from's
    source; on --resume the run's own): the same kind of input (and step width), and no label the model lacks.
    Else an error naming the model (not the data, which is fine on its own) and what to do."""
    kinds = {True: "numeric sequences (.npz, IDX)", False: "texts"}
    numeric = bool(reused.features)
    partial = "add --init-partial to build this run's own from its data and copy what fits"
    if numeric != train.numeric or numeric and train.features.shape[2] != reused.features:
        data = (f"sequences of {train.features.shape[2]} features per step" if numeric == train.numeric
                else kinds[train.numeric])
        reads = f"sequences of {reused.features} features per step" if numeric == train.numeric else kinds[numeric]
        raise RnnkitError(f"this model reads {reads}, the training data {train.path} holds {data}: a same-task "
                          f"--init-from takes the model's reading, so start from a model of {data}, or {partial}",
                          model_dir)
    lacking = [label for label in label_set(train.labels) if label not in reused.labels]
    if lacking:
        shown = ", ".join(shown_value(label) for label in lacking[:5]) + (" ..." if len(lacking) > 5 else "")
        raise RnnkitError(f"the training data {train.path} has labels this model lacks ({shown}; its labels: "
                          f"{', '.join(reused.labels[:10])}{' ...' if len(reused.labels) > 10 else ''}): a same-task "
                          f"--init-from keeps the model's classes; {partial} (the output rows of the labels both "
                          "have are copied by name)", model_dir)


def read_labels(path: Path) -> list[str]:
    try:
        labels = parse_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise RnnkitError(f"label file is corrupt ({e})", path) from None
    if (not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) and x for x in labels)
            or len(set(labels)) != len(labels)):
        raise RnnkitError("label file is corrupt (a list of at least two distinct, non-empty label strings "
                          "expected)", path)
    return labels


def read_features(path: Path) -> int:
    try:
        info = parse_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise RnnkitError(f"features file is corrupt ({e})", path) from None
    features = info.get("features") if isinstance(info, dict) else None
    if type(features) is not int or not 1 <= features <= 1 << 20:
        raise RnnkitError('features file is corrupt ({"features": N} with N from 1 expected)', path)
    return features


def text_vocabulary(cfg: TokenizerConfig, texts: list[str], path: str) -> tuple[Tokenizer, Vocab]:
    """The tokenizer and vocabulary built from training ``texts`` (of ``path``): the classifier's and the
    autoencoder's alike, so ``--init-from`` between them maps every row."""
    tokenizer = build_tokenizer(cfg, texts)
    vocab = Vocab.build((tokenizer.tokenize(x) for x in texts), cfg.vocab_size, cfg.min_freq)
    if len(vocab) <= len(SPECIALS):
        raise RnnkitError(f"the vocabulary holds only the special tokens: no token of the training texts is kept "
                          f"with tokenizer.min_freq {cfg.min_freq}", path)
    return tokenizer, vocab


#: the tokenizer keys that build a vocabulary from training text: with tokenizer.from_init the source's is taken
#: instead, so config.yaml records the source's values of them (or the defaults), not a limit the model lacks
VOCABULARY_KEYS = ("vocab_size", "min_freq", "spm_model", "spm_type")


def source_reading(cfg: TextTokenizerConfig, text_from: tuple[Tokenizer, Vocab, dict],
                   dist: DistInfo) -> tuple[Tokenizer, Vocab]:
    """tokenizer.from_init: the --init-from model's tokenizer and vocabulary (``text_from``, with its config's
    tokenizer keys). The rule is that the source's win: its reading keys (kind, lowercase, split_punctuation)
    replace ``cfg``'s, so config.yaml and the weights' fingerprint say how this run reads text; its vocabulary
    keys (:data:`VOCABULARY_KEYS`) replace them too, so config.yaml states no limit the vocabulary does not have.
    A line names each key changed."""
    tokenizer, vocab, source_keys = text_from
    defaults = TextTokenizerConfig()
    wanted = {**tokenizer.options(), **{key: source_keys.get(key, getattr(defaults, key)) for key in VOCABULARY_KEYS}}
    changed = []
    for key, value in wanted.items():
        if getattr(cfg, key) != value:
            changed.append(f"tokenizer.{key} {_yaml(getattr(cfg, key))} -> {_yaml(value)}")
            setattr(cfg, key, value)
    if changed and dist.is_main:
        print(f"tokenizer.from_init: reading text as the --init-from model does: {', '.join(changed)}", flush=True)
    return tokenizer, vocab


def _yaml(value: object) -> str:
    """A config value as config.yaml writes it (true, not True; null, not None)."""
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


@dataclasses.dataclass
class InputReader:
    """How one model turns examples into batches: its tokenizer and vocabulary (text) or its step width
    (numeric), its truncation and its classes."""

    labels: list[str]
    tokenizer: Tokenizer | None = None
    vocab: Vocab | None = None
    features: int = 0
    max_length: int = 0
    side: str = "post"

    def vocabularies(self) -> dict[str, Vocab | RowNames]:
        """The names of the model's rows by role (weight transfer maps them): tokens (text), classes."""
        return {**({"vocab": self.vocab} if self.vocab else {}), LABELS_ROLE: RowNames(self.labels)}

    def encode(self, examples: Examples, labelled: bool = True) -> Encoded:
        """Examples as ids or features; their labels as class ids (an unknown label: an error naming its line)."""
        if examples.numeric != bool(self.features):
            wants = "numeric sequences (.npz, IDX)" if self.features else "texts"
            raise RnnkitError(f"this model classifies {wants}", examples.path)
        labels = label_ids(examples, self.labels) if labelled and examples.labels is not None else None
        if self.features:
            x, lengths = encode_features(examples, self.features, self.max_length, self.side)
            return Encoded(lengths, labels, features=x)
        ids, cut = [], []
        for k, whole in enumerate(text_ids(examples, self.tokenizer, self.vocab)):
            ids.append(truncate(whole, self.max_length, self.side))
            if len(ids[-1]) < len(whole):
                cut.append(k)
        return Encoded([len(s) for s in ids], labels, ids=ids, cut=frozenset(cut))

    def kept_part(self) -> str:
        """Which part of a text the model reads, as its config says it."""
        return f"data.max_length {self.max_length}, truncate {self.side}"


def scoring_batches(data: Encoded, batch_size: int, bags: bool = False) -> Iterator[tuple[list[int], ClassifyBatch]]:
    """An encoded set's batches for scoring, by length, each with its examples' indices (``bags``: texts as
    TokenBags): collated one at a time (``list()`` them to score the same set again without collating it again)."""
    batches = example_batches(data, batch_size, shuffle=False, bags=bags)
    return ((spec, batches.batch(spec)) for spec in batches.plan(0))


def predict(model: SequenceClassifier, data: Encoded, batch_size: int, device: torch.device,
            on_batch: Callable[[int], None] | None = None) -> torch.Tensor:
    """Class probabilities (N, C) of an encoded set, in its order (batched by length)."""
    batches = scoring_batches(data, batch_size, bags=model.reads_token_bags(training=False))
    return score_batches(model, batches, device, on_batch)[0]


@torch.no_grad()
def score_batches(model: nn.Module, batches: Iterable[tuple[list[int], ClassifyBatch]], device: torch.device,
                  on_batch: Callable[[int], None] | None = None, auxiliary: bool = False) -> tuple[torch.Tensor, float]:
    """Class probabilities (N, C) of :func:`scoring_batches`' batches, in the set's order, and with ``auxiliary``
    the joint objective's mean token cross-entropy (else nan)."""
    was_training = model.training
    model.eval()
    indices, outputs, aux_sum, aux_count = [], [], 0.0, 0
    for spec, batch in batches:
        batch = batch.to(device)
        logits = model(batch.inputs, batch.lengths, auxiliary=auxiliary)
        if auxiliary:
            logits, batch_sum, batch_count = logits
            aux_sum, aux_count = aux_sum + batch_sum.item(), aux_count + batch_count
        outputs.append(torch.softmax(logits.float(), -1).cpu())
        indices.append(spec)
        if on_batch is not None:
            on_batch(len(spec))
    model.train(was_training)
    return rows_in_input_order(indices, outputs), aux_sum / aux_count if aux_count else float("nan")


def _under(name: str, prefix: str) -> bool:
    """Whether parameter ``name`` lies under the module path ``prefix`` (rnns.1 holds not rnns.10)."""
    return name == prefix or name.startswith(prefix + ".")


def frozen_groups(model: nn.Module, freeze: str) -> list[str]:
    """The parameter-name prefixes of ``train.freeze`` ("a,b": a and b), each naming a module of ``model``."""
    groups = [g.strip() for g in freeze.split(",") if g.strip()]
    names = [name for name, _ in model.named_parameters()]
    for group in groups:
        if not any(_under(name, group.rstrip(".")) for name in names):
            parts = sorted({name.rsplit(".", 1)[0] for name in names})
            raise RnnkitError(f"train.freeze: the model has no parameter under '{group}' (its parts: "
                              f"{', '.join(parts)})")
    return [g.rstrip(".") for g in groups]


@dataclasses.dataclass
class Freezing:
    """train.freeze / train.unfreeze_after: the parameter-name prefixes kept fixed, and every how many epochs
    the last still-frozen one trains again (0: never)."""

    groups: list[str]
    unfreeze_after: int = 0

    def frozen(self, epoch: int) -> list[str]:
        """The groups still frozen in ``epoch`` (from 0)."""
        thawed = epoch // self.unfreeze_after if self.unfreeze_after else 0
        return self.groups[: max(len(self.groups) - thawed, 0)]

    def apply(self, epoch: int, model: nn.Module) -> None:
        """The groups still frozen in ``epoch`` stop training; every other parameter trains."""
        frozen = self.frozen(epoch)
        for name, param in model.named_parameters():
            param.requires_grad_(not any(_under(name, prefix) for prefix in frozen))


def freezing(model: nn.Module, train: ClassifyTrainConfig, dist: DistInfo) -> Freezing:
    """``train.freeze`` / ``train.unfreeze_after`` checked against ``model`` before anything is written: each
    group names a part of it, something trains from the first epoch (a step with nothing to train has no
    gradient), and one process runs."""
    plan = Freezing(frozen_groups(model, train.freeze), train.unfreeze_after)
    names = [name for name, _ in model.named_parameters()]
    if plan.groups and all(any(_under(name, group) for group in plan.groups) for name in names):
        after = train.unfreeze_after
        last = min(after, train.epochs)
        when = ("any epoch" if not after else "epoch 1" if last == 1 else f"epochs 1-{last}") + (
            f" with train.unfreeze_after {after}" if after else "")
        raise RnnkitError(f"train.freeze: '{train.freeze}' freezes every parameter (nothing would train in {when}): "
                          f"leave a part of the model to train (its parts: "
                          f"{', '.join(sorted({name.split('.')[0] for name in names}))})")
    if plan.groups and dist.enabled:  # DDP fixes the parameters it reduces when it wraps the model
        raise RnnkitError("train.freeze needs a single process: DistributedDataParallel cannot change which "
                          "parameters train during a run")
    return plan


def scores(probs: torch.Tensor, targets: list[int], labels: list[str]) -> tuple[dict[str, float], ClassificationReport]:
    """Loss (mean cross-entropy), accuracy and macro-F1 of predicted probabilities, and the full report."""
    target = torch.tensor(targets, dtype=torch.long)
    loss = F.nll_loss(probs.clamp_min(1e-12).log(), target).item()
    report = classification_report(probs.argmax(-1), target, labels)
    return {"loss": loss, "accuracy": report.accuracy, "macro_f1": report.macro_f1}, report


class ClassifyTask(Task):
    """Data, labels, vocabulary and model of a classification run, as the trainer needs them."""

    name = "classify"
    config_class = ClassifyConfig
    selection = ("accuracy", "max")
    asset_files = (LABELS_FILE, VOCAB_FILE, TOKENIZER_FILE, SPM_FILE, FEATURES_FILE)
    required_files = (LABELS_FILE,)
    data_folders = True  # --data aclImdb (train/ and test/ inside) or --data aclImdb/train (pos/, neg/ inside)
    read_limits = {LABELS_FILE: 1 << 26, FEATURES_FILE: 1 << 10, VOCAB_FILE: 1 << 30, TOKENIZER_FILE: 1 << 20,
                   SPM_FILE: 1 << 30}
    #: what decides the weights' meaning: how examples become inputs, and what the inputs feed
    bound_config_keys = ("task", "data.strip_markup", "data.max_length", "data.truncate", "tokenizer.kind",
                         "tokenizer.lowercase", "tokenizer.split_punctuation", "model.encoder",
                         "model.embedding_size", "model.hidden_size", "model.layers", "model.bidirectional",
                         "model.pooling", "model.head_hidden", "model.joint")

    def __init__(self, cfg: ClassifyConfig, dist: DistInfo, device: torch.device, vocab_from: Path | None = None,
                 text_from: tuple[Tokenizer, Vocab, dict] | None = None):
        super().__init__(cfg, dist, device, vocab_from)
        _check_data_config(cfg)
        _check_joint_weight(cfg)
        train, valid, self.held_test = _splits(cfg)
        self.text_from_init = text_from is not None
        self.reader = self._reader(train, vocab_from, text_from)
        train_set = self.reader.encode(train)
        self.valid_set = self.reader.encode(valid)
        self.collated_valid: list[tuple[list[int], ClassifyBatch]] | None = None  # see _valid_batches
        # scored after training: an unknown label or a wrong width must not wait for that; kept, not read again
        self.test_examples = read_examples(cfg.data.test, read_options(cfg)) if cfg.data.test else None
        self.valid_file = valid if cfg.data.valid else None  # (warn_unknown_text)
        if (cfg.data.augment_shift or cfg.data.augment_rotate or cfg.data.augment_scale) and not train.numeric:
            raise RnnkitError("data.augment_shift, augment_rotate and augment_scale move numeric sequences (.npz, "
                              "IDX); this training data is text", cfg.data.train)
        self.sizes = (len(train), len(valid))
        t = cfg.train
        try:
            self.model = SequenceClassifier(cfg.model, len(self.reader.labels),
                                            len(self.reader.vocab) if self.reader.vocab else 0, self.reader.features)
            self.train_data = example_batches(train_set, t.batch_size, seed=t.seed, rank=dist.rank, world=dist.world,
                                              bags=self.model.reads_token_bags(training=True))
        except ValueError as e:
            raise RnnkitError(str(e)) from None
        self.freezing = freezing(self.model, t, dist)

    def on_epoch_start(self, epoch: int, model: nn.Module) -> None:
        """train.freeze / train.unfreeze_after: the groups still frozen in ``epoch`` stop training."""
        self.freezing.apply(epoch, model)

    def parameter_groups(self, model: nn.Module) -> list[tuple[str, list[nn.Parameter], int]]:
        """ULMFiT's discriminative fine-tuning (Howard & Ruder 2018, sec. 3.2): the head at depth 0, with what
        else sits above the encoder (attention pooling, a joint objective's own layers), then each recurrent
        layer from the top at depth 1, 2, ..., and the embedding (or a numeric input's projection) deepest."""
        layers = len(model.encoder.rnns) if hasattr(model.encoder, "rnns") else 0
        groups: dict[int, tuple[str, list[nn.Parameter]]] = {}
        for name, param in model.named_parameters():
            depth, group = 0, "head"
            if _under(name, "encoder.embedding") or _under(name, "encoder.input"):
                depth, group = layers + 1, name.rsplit(".", 1)[0]
            elif _under(name, "encoder.rnns"):
                k = int(name.split(".")[2])
                depth, group = layers - k, f"encoder.rnns.{k}"
            groups.setdefault(depth, (group, []))[1].append(param)
        return [(group, params, depth) for depth, (group, params) in sorted(groups.items())]

    def warn_unknown_text(self, vocab_from_init: bool) -> None:
        """What the model will read of the files that score the run (--valid, --test) as <unk>, said once before
        training, as evaluate says it. A vocabulary the run did not build from its training text (``vocab_from_init``:
        a strict init's; tokenizer.from_init's) is the --init-from model's: the advice is what builds one instead."""
        scored = [(self.valid_file, self.valid_set)] if self.valid_file is not None else []
        if self.test_examples is not None:
            scored.append((self.test_examples, self.reader.encode(self.test_examples)))
        ways = (["--init-partial"] if vocab_from_init else []) + (
            ["--set tokenizer.from_init=false"] if self.cfg.tokenizer.from_init else [])
        advice = reused_vocabulary(" with ".join(ways)) if vocab_from_init or self.text_from_init else CHECK_READING
        for examples, data in scored:
            warn_unknown(self.reader, examples, data, advice)

    @classmethod
    def reads_text_from_init(cls, cfg: ClassifyConfig) -> bool:
        return cfg.tokenizer.from_init

    def _reader(self, train: Examples, vocab_from: Path | None,
                text_from: tuple[Tokenizer, Vocab, dict] | None) -> InputReader:
        """Labels, tokenizer and vocabulary (text) or step width (numeric): from the training data, or the
        model directory ``vocab_from`` (a resume; a same-task --init-from); ``text_from``: the tokenizer and
        vocabulary of the --init-from model (tokenizer.from_init), the labels from the data."""
        d = self.cfg.data
        labels = label_set(train.labels)
        if len(labels) < 2:  # (a source's labels would not make a second class: checked before they are taken)
            raise RnnkitError(f"every training example has the label {labels[0]!r}: a classifier needs two classes "
                              "at least", d.train)
        if vocab_from is not None:
            parts = Classifier.assets(vocab_from)
            _check_reused_reading(parts, train, vocab_from)
            return dataclasses.replace(parts, max_length=d.max_length, side=d.truncate)
        if train.numeric:
            if text_from is not None:
                raise RnnkitError("tokenizer.from_init reads text with the --init-from model's tokenizer and "
                                  "vocabulary; this training data is numeric sequences", d.train)
            return InputReader(labels, features=train.features.shape[2], max_length=d.max_length, side=d.truncate)
        tokenizer, vocab = (source_reading(self.cfg.tokenizer, text_from, self.dist) if text_from is not None
                            else text_vocabulary(self.cfg.tokenizer, train.texts, d.train))
        return InputReader(labels, tokenizer, vocab, max_length=d.max_length, side=d.truncate)

    def save_assets(self, out_dir: Path) -> None:
        atomic_write_text(out_dir / LABELS_FILE, json.dumps(self.reader.labels, ensure_ascii=False, indent=0))
        if self.reader.features:
            atomic_write_text(out_dir / FEATURES_FILE, json.dumps({"features": self.reader.features}))
        else:
            self.reader.tokenizer.save(out_dir)
            self.reader.vocab.save(out_dir / VOCAB_FILE)

    def vocabularies(self) -> dict[str, Vocab | RowNames]:
        return self.reader.vocabularies()

    def describe(self) -> str:
        m = self.cfg.model
        params = sum(p.numel() for p in self.model.parameters())
        if m.encoder == "bag":
            encoder = "bag of embeddings"
        else:
            layers = self.model.encoder.rnns
            path = encoder_path(layers, bool(self.reader.features), self.cfg.train.batch_size, self.device, True)
            drop = f", DropConnect {m.weight_drop:g} on the hidden-to-hidden weights" if m.weight_drop else ""
            encoder = f"{m.layers} x torch.nn.{type(layers[0]).__name__} ({path}{drop})"
        if self.reader.features:
            inputs = f"{self.reader.features} features per step"
        else:
            source = " (the --init-from model's)" if self.text_from_init else ""
            inputs = f"vocabulary {len(self.reader.vocab):,}{source}"
        if self.joint:
            encoder += f", joint {m.joint} (weight {self.cfg.train.joint_weight:g})"
        steps = "time steps" if self.reader.features else "tokens"  # not updates (train.max_steps counts those)
        return (f"classify: {params:,} parameters; {inputs}; {encoder}, {self.model.pooling_description()}; "
                f"{len(self.reader.labels)} classes; {self.sizes[0]:,} training / {self.sizes[1]:,} validation "
                f"examples ({self.train_data.num_tokens:,} {steps})")

    @property
    def joint(self) -> bool:
        return self.cfg.model.joint != "none"

    def batch_loss(self, model: nn.Module, batch: ClassifyBatch, state) -> LossResult:
        """Summed cross-entropy over the batch's examples, and their accuracy (as they trained: dropout on, as
        Keras reports it) for the train rows' ``accuracy``; with model.joint, train.joint_weight x the mean token
        cross-entropy of the joint objective is added as the (already mean) penalty, and logged unweighted as
        the train rows' ``aux_loss``. Numeric inputs are warped first when data.augment_* asks."""
        d = self.cfg.data
        moved = d.augment_shift or d.augment_rotate or d.augment_scale
        inputs = (warp_randomly(batch.inputs, batch.lengths, d.augment_shift, d.augment_rotate, d.augment_scale)
                  if moved else batch.inputs)
        if not self.joint:
            logits = model(inputs, batch.lengths)
            return LossResult(F.cross_entropy(logits.float(), batch.labels, reduction="sum"), len(batch.labels),
                              logged={"accuracy": self._correct(logits, batch)})
        logits, aux_sum, aux_count = model(inputs, batch.lengths, auxiliary=True)
        return LossResult(F.cross_entropy(logits.float(), batch.labels, reduction="sum"), len(batch.labels),
                          penalty=self.cfg.train.joint_weight * aux_sum / max(aux_count, 1),
                          logged={"accuracy": self._correct(logits, batch), "aux_loss": (aux_sum, aux_count)})

    @staticmethod
    def _correct(logits: torch.Tensor, batch: ClassifyBatch) -> tuple[torch.Tensor, int]:
        """(examples labelled right, examples) of a training batch: its accuracy, as a logged (sum, count)."""
        return (logits.detach().argmax(-1) == batch.labels).sum(), len(batch.labels)

    def progress(self, loss: float, rate: float) -> str:  # a loss per example: no perplexity
        return f"loss {loss:.3f} {rate:,.0f} examples/s"

    def validate(self, model: nn.Module) -> dict[str, float]:
        """Loss, accuracy and macro-F1; with model.joint also ``aux_loss``, the joint objective's mean token
        cross-entropy on the validation texts (a log.csv column: it falls as the objective learns)."""
        probs, aux_loss = score_batches(model, self._valid_batches(), self.device, auxiliary=self.joint)
        metrics = scores(probs, self.valid_set.labels, self.reader.labels)[0]
        return {**metrics, "aux_loss": aux_loss} if self.joint else metrics

    def _valid_batches(self) -> list[tuple[list[int], ClassifyBatch]]:
        """The validation set's scoring batches, collated at the first validation and kept: the set never
        changes, and collating it was ~40% of validating 10,000 IMDB reviews with the bag model."""
        if self.collated_valid is None:
            self.collated_valid = list(scoring_batches(self.valid_set, self.cfg.train.eval_batch_size,
                                                       bags=self.model.reads_token_bags(training=False)))
        return self.collated_valid

    def test_metrics(self, out_dir: Path, device: torch.device) -> dict[str, float] | None:
        """The test file's metrics (its examples as read before training), or those of the examples held out of
        train (data.test_fraction)."""
        examples = self.test_examples if self.test_examples is not None else self.held_test
        if examples is None:
            return None
        classifier = Classifier.load(Path(out_dir), self.cfg, device)
        return classifier.evaluate_examples(examples, warn=self.test_examples is None)  # (a file's: said when read)


# ---------------------------------------------------------------------------------------------------- using a model
def _input_examples(inputs: Sequence, numeric: bool) -> Examples:
    """What ``classify`` was given (texts, or arrays of (T, F) steps) as unlabelled examples."""
    if isinstance(inputs, (str, bytes)):
        raise TypeError("classify: inputs must be a list of texts (or of arrays), not one string")
    where = [("<input>", i + 1) for i in range(len(inputs))]
    if not numeric:
        for i, text in enumerate(inputs):
            if not isinstance(text, str):
                raise TypeError(f"classify: input {i + 1} is {type(text).__name__}, not a string")
        return Examples("<input>", None, where, texts=list(inputs))
    if any(isinstance(x, str) for x in inputs):
        raise RnnkitError("this model classifies numeric sequences (.npz, IDX), not texts", "<input>")
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf: refused below, not warned about
        rows = [np.asarray(x, dtype=np.float32) for x in inputs]
    if any(r.ndim != 2 or r.shape[0] < 1 for r in rows):
        raise TypeError("classify: each numeric input must be a (T, F) array of at least one step")
    if len({r.shape[1] for r in rows}) > 1:
        raise ValueError("classify: the inputs have different numbers of features per step")
    steps = max(r.shape[0] for r in rows)
    x = np.zeros((len(rows), steps, rows[0].shape[1]), dtype=np.float32)
    for i, r in enumerate(rows):
        x[i, : len(r)] = r
    check_finite(x, "<input>", "input", first=1)  # (the zeros that pad it are finite)
    return Examples("<input>", None, where, features=x, lengths=np.array([len(r) for r in rows], dtype=np.int64))


#: a warning names at most this many texts the model reads wholly as <unk>, then counts the rest
NAMED_TEXTS = 5


def warn_unknown(reader: InputReader, examples: Examples, data: Encoded, advice: str = CHECK_READING) -> None:
    """Warnings on stderr when the model reads much of ``examples`` (encoded by ``reader`` as ``data``) as <unk>: their
    share of the tokens the model reads (after truncation) above :data:`~rnnkit.data.vocab.CLASSIFY_OOV_WARN_RATE`,
    and the texts of which it reads no known token, whose labels are guesses (another language, tokenizer or case).
    Where the model truncated texts, the warnings say that they count the part it keeps (its data.max_length and
    data.truncate): a text's other words may be known. The labels stay as they are. A numeric model has no
    vocabulary and never warns. ``advice``: what the share's warning advises (:func:`oov_warning`)."""
    if reader.vocab is None:
        return
    unknown, kept_part = data.unknown, reader.kept_part()
    scope = f" of the part of each text the model keeps ({kept_part})" if data.cut else ""
    oov_warning(unknown.count, examples.path, len(reader.vocab), "read", CLASSIFY_OOV_WARN_RATE, scope, advice)
    if unknown.texts:
        n, total = len(unknown.texts), len(examples)
        more = f" and {n - NAMED_TEXTS:,} more" if n > NAMED_TEXTS else ""
        within = (f" in the part the model keeps ({kept_part})" if any(k in data.cut for k in unknown.texts)
                  else "")
        print(f"warning: {examples.path}: {n:,} of {total:,} text{'s' if total > 1 else ''} "
              f"{'has' if n == 1 else 'have'} no token in the model's vocabulary{within} "
              f"({_text_names(examples, unknown.texts[:NAMED_TEXTS])}{more}): the model reads only <unk> there, so "
              f"{'its label is a guess' if n == 1 else 'their labels are guesses'}", file=sys.stderr, flush=True)


def _text_names(examples: Examples, indices: list[int]) -> str:
    """Examples as the user knows them: "texts 1, 3" (arguments, list items), "lines 2, 5" (a file's), or the
    files of a folder."""
    where = [examples.where[k] for k in indices]
    if any(line is None for _, line in where):  # a folder's files, named as classify's output lines name them
        return ", ".join(shown_name(p) for p, _ in where)
    kind = "text" if examples.path == "<input>" else "line"
    return f"{kind}{'s' if len(where) > 1 else ''} {', '.join(str(line) for _, line in where)}"


class Classifier(LoadedModel):
    """A trained classifier: ``classify(texts or arrays)``, ``classify_file(path)``, ``evaluate(path)``."""

    verb = "classify"

    def __init__(self, cfg: ClassifyConfig, model: SequenceClassifier, reader: InputReader, device: torch.device):
        self.config, self.model, self.reader, self.device = cfg, model.eval(), reader, device
        self.labels = reader.labels
        self.last_report: ClassificationReport | None = None  # the last evaluate's, for the CLI's table

    @staticmethod
    def assets(model_dir: Path) -> InputReader:
        """Labels and the input's reading (tokenizer and vocabulary, or the step width) of a model directory."""
        labels = read_labels(model_dir / LABELS_FILE)
        numeric, text = (model_dir / FEATURES_FILE).exists(), (model_dir / VOCAB_FILE).exists()
        if numeric == text:
            raise RnnkitError(f"a classifier's folder holds {FEATURES_FILE} (numeric input) or {VOCAB_FILE} (text), "
                              "one of them", model_dir)
        if numeric:
            return InputReader(labels, features=read_features(model_dir / FEATURES_FILE))
        return InputReader(labels, load_tokenizer(model_dir), Vocab.load(model_dir / VOCAB_FILE))

    @classmethod
    def _build(cls, cfg: ClassifyConfig, reader: InputReader) -> SequenceClassifier:
        try:
            return SequenceClassifier(cfg.model, len(reader.labels), len(reader.vocab) if reader.vocab else 0,
                                      reader.features)
        except ValueError as e:
            raise RnnkitError(str(e)) from None

    @classmethod
    def checked_parts(cls, model_dir: Path, cfg: ClassifyConfig, weights: Path | None = None,
                      dtype: torch.dtype = torch.float32) -> InputReader:
        reader = dataclasses.replace(cls.assets(model_dir), max_length=cfg.data.max_length, side=cfg.data.truncate)
        check_model_weights(model_dir, cfg, lambda: cls._build(cfg, reader), weights, dtype)
        return reader

    @classmethod
    def load(cls, model_dir: Path, cfg: ClassifyConfig, device: torch.device) -> Classifier:
        reader = cls.checked_parts(model_dir, cfg)
        model = cls._build(cfg, reader)
        load_weights(model, model_dir / WEIGHTS_FILE)
        return cls(cfg, model.to(device), reader, device)

    def vocabularies(self) -> dict[str, Vocab | RowNames]:
        return self.reader.vocabularies()

    @classmethod
    def text_reading(cls, model_dir: Path) -> tuple[Tokenizer, Vocab] | None:
        reader = cls.assets(model_dir)
        return (reader.tokenizer, reader.vocab) if reader.vocab else None  # a numeric classifier reads no text

    def kernel_path(self, verb: str, batch_size: int = 0, **_) -> str:
        if self.config.model.encoder == "bag":
            return f"{verb}: bag of embeddings"
        layers = self.model.encoder.rnns
        path = encoder_path(layers, bool(self.reader.features), batch_size or self.config.train.eval_batch_size,
                            self.device, training=False)
        return f"{verb}: {len(layers)} x torch.nn.{type(layers[0]).__name__}, {path}"

    # ------------------------------------------------------------------ classifying
    def _batch_size(self, batch_size: int | None) -> int:
        check_int_argument(batch_size, "batch_size", low=1, optional=True)
        return batch_size or self.config.train.eval_batch_size

    def _answers(self, probs: torch.Tensor, with_probs: bool) -> list:
        if with_probs:
            return [dict(zip(self.labels, row.tolist(), strict=True)) for row in probs]
        return [self.labels[i] for i in probs.argmax(-1).tolist()]

    def classify(self, inputs: Sequence, probs: bool = False, batch_size: int | None = None) -> list:
        """The label of each input (texts, or (T, F) arrays for a numeric model); with ``probs``, a dict
        label -> probability for each. Texts the model reads much as <unk> are warned about on stderr
        (:func:`warn_unknown`), as :meth:`classify_examples` and :meth:`evaluate` do."""
        check_bool_argument(probs, "probs")
        if not isinstance(inputs, (str, bytes)) and len(inputs) == 0:
            return []
        examples = _input_examples(inputs, bool(self.reader.features))
        if examples.texts is not None:
            examples.texts = [clean_text(t, self.config.data.strip_markup) for t in examples.texts]
        data = self.reader.encode(examples, labelled=False)
        answers = self._answers(predict(self.model, data, self._batch_size(batch_size), self.device), probs)
        warn_unknown(self.reader, examples, data)
        return answers

    def read(self, path: str | Path, labelled: bool = False, max_examples: int = 0) -> Examples:
        """A file's examples read as the training data was (``labelled``: in its format; inputs to classify
        in the format their name says, a text file one text per line)."""
        check_path_argument(path, "path")
        options = read_options(self.config)
        if not labelled:
            options = dataclasses.replace(options, format="auto")
        return read_examples(path, options, labelled, max_examples, answered=not labelled)

    def classify_file(self, path: str | Path, probs: bool = False, batch_size: int | None = None) -> list:
        """:meth:`classify` of every example of a file (one text per line, JSONL, CSV/TSV, .npz, IDX)."""
        return self.classify_examples(self.read(path), probs, batch_size)

    def classify_examples(self, examples: Examples, probs: bool = False, batch_size: int | None = None,
                          on_batch: Callable[[int], None] | None = None) -> list:
        """:meth:`classify` of examples read by :meth:`read`; ``on_batch(n)`` is called after each batch of
        ``n`` examples (progress)."""
        check_bool_argument(probs, "probs")
        data = self.reader.encode(examples, labelled=False)
        answers = self._answers(predict(self.model, data, self._batch_size(batch_size), self.device, on_batch), probs)
        warn_unknown(self.reader, examples, data)
        return answers

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, path: str | Path, batch_size: int | None = None, max_lines: int = 0,
                 confusion_png: str | None = None, overwrite: bool = False) -> dict[str, float]:
        """Metrics on a labelled file (its first ``max_lines`` examples when > 0): ``loss``, ``accuracy``,
        ``macro_f1``, ``examples`` (how many were scored), for a text model ``oov`` (the tokens it reads as <unk>, after
        data.max_length), ``oov_rate`` (their share of the tokens it reads) and ``oov_texts`` (the texts with no known
        token), and per class ``precision/LABEL``, ``recall/LABEL``, ``f1/LABEL``. ``confusion_png``: also draw the
        confusion matrix there (a new file, or with ``overwrite`` a plain one; never the data file nor a file in a
        model directory)."""
        check_int_argument(max_lines, "max_lines", low=0)
        check_bool_argument(overwrite, "overwrite")
        if confusion_png is not None:
            check_output_file(confusion_png, "--confusion-png", overwrite, [("--data", path)])
        examples = self.read(path, labelled=True, max_examples=max_lines)
        return self.evaluate_examples(examples, batch_size, confusion_png)

    def evaluate_examples(self, examples: Examples, batch_size: int | None = None,
                          confusion_png: str | None = None, warn: bool = True) -> dict[str, float]:
        """:meth:`evaluate` of examples read by :meth:`read`; ``warn``: say on stderr what the model reads as
        <unk> (false where that was said when the examples were read: a run's test file)."""
        check_bool_argument(warn, "warn")
        data = self.reader.encode(examples)
        probs = predict(self.model, data, self._batch_size(batch_size), self.device)
        if warn:
            warn_unknown(self.reader, examples, data)
        metrics, report = scores(probs, data.labels, self.labels)
        self.last_report = report
        if confusion_png is not None:
            from rnnkit.plotting import plot_confusion

            plot_confusion(report.confusion, report.labels, confusion_png)
        per_class = {f"{what}/{label}": value for what, values in (("precision", report.precision),
                                                                   ("recall", report.recall), ("f1", report.f1))
                     for label, value in zip(report.labels, values, strict=True)}
        return {**metrics, "examples": len(examples), **self._unknown_figures(data), **per_class}

    def _unknown_figures(self, data: Encoded) -> dict[str, int | float]:
        """A text model's out-of-vocabulary figures of ``data``, over what it reads (after data.max_length):
        ``oov``, its tokens read as <unk>; ``oov_rate``, their share; ``oov_texts``, the texts of which it reads
        no known token. An empty dict for a numeric model (no vocabulary)."""
        if self.reader.vocab is None:
            return {}
        unknown = data.unknown
        return {"oov": unknown.count.oov, "oov_rate": unknown.count.rate, "oov_texts": len(unknown.texts)}

    @classmethod
    def add_evaluate_arguments(cls, parser) -> None:
        parser.add_argument("--confusion-png", metavar="FILE", help="also draw the confusion matrix as a PNG")
        parser.set_defaults(overwrite=False)  # its file is replaced with rnnkit evaluate --overwrite

    def evaluation_lines(self, metrics: dict[str, float]) -> list[str] | None:
        """Accuracy, macro-F1 and loss (a text model's share of <unk> too), a per-class table and the confusion
        matrix (rows: true labels)."""
        report = self.last_report
        if report is None:
            return None
        lines = [f"examples  {int(metrics['examples'])}", f"accuracy  {report.accuracy:.4f}",
                 f"macro_f1  {report.macro_f1:.4f}", f"    loss  {metrics['loss']:.4f}"]
        if "oov" in metrics:  # a text model
            texts = int(metrics["oov_texts"])
            lines.append(f"     oov  {int(metrics['oov']):,} of the tokens read ({metrics['oov_rate']:.2%}) are <unk>; "
                         f"{texts:,} text{'' if texts == 1 else 's'} without a known token")
        lines.append("")
        width = max(8, *map(len, report.labels))
        lines.append(f"{'label':>{width}}  precision  recall      f1  support")
        lines += [f"{label:>{width}}  {p:9.4f}  {r:6.4f}  {f:6.4f}  {s:7d}" for label, p, r, f, s in
                  zip(report.labels, report.precision, report.recall, report.f1, report.support, strict=True)]
        cell = max(5, len(str(max(max(row) for row in report.confusion))) + 1, *map(len, report.labels))
        lines += ["", "confusion (rows: true, columns: predicted)",
                  f"{'':>{width}}" + "".join(f"{label:>{cell}}" for label in report.labels)]
        lines += [f"{label:>{width}}" + "".join(f"{n:>{cell}}" for n in row)
                  for label, row in zip(report.labels, report.confusion, strict=True)]
        return lines


ClassifyTask.loaded_class = Classifier

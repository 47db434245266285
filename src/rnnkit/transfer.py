"""Weight transfer (``--init-from DIR``): start a new model from another model's weights, across tasks and
shapes, and say exactly what was copied and what was not.

Each tensor of the new (target) model is matched with the source tensor of the same name or, with a
``prefix``, the source tensor whose name the prefix extends (``prefix="encoder."``: target
``encoder.rnns.0.weight_ih_l0`` <- source ``rnns.0.weight_ih_l0``: an LM's stack into an encoder). Then:

- a tensor both models declare vocabulary-indexed (``vocab_parameters()``: name -> role) is copied row by
  row for the tokens both vocabularies hold; the other rows keep their fresh initialisation. A classifier's
  output rows are its classes (role ``labels``, :class:`RowNames`): they are copied by label name the same way,
  and kept whole when the two label sets share no name;
- a tensor whose meaning follows the vocabulary's whole order (``vocab_order_parameters()``: an adaptive
  softmax's clusters are id ranges) is copied whole from a source of the very same vocabulary, else kept;
- any other tensor is copied when its shape is the same, and kept (reported) when it is not.

Strict mode (same-task fine-tuning) copies all or nothing: every name, shape and vocabulary must match.
A model whose parameter names changed declares ``legacy_weight_names`` (old -> new); a source that still
uses an old name is read under the new one.

The source directory is untrusted: it is checked like every load (config, vocabulary and tokenizer files,
the weights' header against the model the config describes, the fingerprint) before any tensor is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from rnnkit.checkpoint import expected_tensors
from rnnkit.data.tokenizers import Tokenizer
from rnnkit.data.vocab import Vocab
from rnnkit.errors import RnnkitError

#: how many mismatches a strict-mode error lists
SHOWN_MISMATCHES = 5
#: the role of rows that are a classifier's classes (named by its labels), not vocabulary tokens
LABELS_ROLE = "labels"


class RowNames:
    """The names of a tensor's rows that are no vocabulary (a classifier's labels, in class-id order): what
    :func:`transfer_weights` maps them by, as it maps a vocabulary's rows by token."""

    def __init__(self, names: list[str]):
        self.itos = list(names)
        self.stoi = {name: i for i, name in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)


@dataclass
class TransferReport:
    """What :func:`transfer_weights` did. ``copied``: (target name, source name, note) — the note says how
    many rows a vocabulary-indexed tensor got; ``kept``: (target name, why it was not copied), the tensor
    keeps its initialisation; ``unused``: (source name, why no target tensor took it); ``values``: numbers
    copied and numbers in the target model."""

    source: str
    copied: list[tuple[str, str, str]] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)
    unused: list[tuple[str, str]] = field(default_factory=list)
    values: tuple[int, int] = (0, 0)

    def lines(self) -> list[str]:
        tensors = len(self.copied) + len(self.kept)
        head = (f"--init-from {self.source}: copied {len(self.copied)} of {tensors} tensors "
                f"({self.values[0]:,} of {self.values[1]:,} values)")
        copied = [f"  copied  {t}" + (f" <- {s}" if s != t else "") + (f": {note}" if note else "")
                  for t, s, note in self.copied]
        kept = [f"  kept    {t}: {why}" for t, why in self.kept]
        unused = [f"  unused  {s} (source): {why}" for s, why in self.unused]
        return [head, *copied, *kept, *unused]

    def __str__(self) -> str:
        return "\n".join(self.lines())


@dataclass
class _Copy:
    """One planned copy: whole (``rows`` None) or the rows ``rows[1]`` of the source into ``rows[0]``."""

    target: str
    source: str
    rows: tuple[torch.Tensor, torch.Tensor] | None = None


def named_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's parameters and buffers by name, a tied weight once (under its first name)."""
    _, aliases = expected_tensors(model)
    return {name: t for name, t in model.state_dict(keep_vars=True).items() if name not in aliases}


def vocab_roles(model: nn.Module, declared_by: str = "vocab_parameters") -> dict[str, str]:
    """name -> vocabulary role of the tensors whose rows are tokens (``{}`` for a model declaring none);
    ``declared_by="vocab_order_parameters"``: of those that follow the vocabulary's order."""
    declared = getattr(model, declared_by, None)
    return dict(declared()) if declared else {}


def shared_rows(target: Vocab, source: Vocab) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices (target, source) of the tokens both vocabularies hold."""
    pairs = [(i, source.stoi[tok]) for i, tok in enumerate(target.itos) if tok in source.stoi]
    index = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2)
    return index[:, 0], index[:, 1]


def parts(names) -> list[str]:
    """The top-level parts of tensor names (``encoder``, ``decoder``, ...), sorted."""
    return sorted({name.split(".")[0] for name in names})


def _full_prefix(prefix: str, target_names: list[str]) -> str:
    """``prefix`` as a module path ending in a dot ("" for none), present in the target model."""
    if not prefix:
        return ""
    prefix = prefix if prefix.endswith(".") else prefix + "."
    if not any(name.startswith(prefix) for name in target_names):
        raise RnnkitError(f"--init-prefix {prefix[:-1]!r}: the new model has no tensor under '{prefix}' "
                          f"(its parts: {', '.join(parts(target_names))})")
    return prefix


def _source_by_target_name(source: nn.Module, target: nn.Module, prefix: str) -> dict[str, str]:
    """target name -> source name, the source's old names read as their new ones. A tied source weight
    counts under each of its names: it can fill an untied model's embedding and output layer."""
    renamed = {**getattr(source, "legacy_weight_names", {}), **getattr(target, "legacy_weight_names", {})}
    return {prefix + renamed.get(name, name): name for name in source.state_dict(keep_vars=True)}


class _Planner:
    """Decides, tensor by tensor, what :func:`transfer_weights` copies (nothing is changed here)."""

    def __init__(self, target: nn.Module, source: nn.Module, target_vocabs: dict[str, Vocab],
                 source_vocabs: dict[str, Vocab], prefix: str, report: TransferReport):
        self.target_tensors, self.source_tensors = named_tensors(target), source.state_dict(keep_vars=True)
        self.target_aliases = expected_tensors(target)[1]
        self.prefix = _full_prefix(prefix, list(self.target_tensors))
        self.source_names = _source_by_target_name(source, target, self.prefix)
        self.target_roles, self.source_roles = vocab_roles(target), vocab_roles(source)
        self.target_order = vocab_roles(target, "vocab_order_parameters")
        self.source_order = vocab_roles(source, "vocab_order_parameters")
        self.target_vocabs, self.source_vocabs = target_vocabs, source_vocabs
        self.report = report

    def plan(self) -> list[_Copy]:
        copies = []
        for name, tensor in self.target_tensors.items():
            source_name = self.source_names.get(name)
            if source_name is None:
                self.report.kept.append((name, "not in the source"))
                continue
            copy = self._plan_one(name, tensor, source_name, self.source_tensors[source_name])
            if copy is not None:
                copies.append(copy)
        self.report.unused = [(s, why) for t, s in self.source_names.items() if t not in self.target_tensors
                              for why in [self._why_unused(t, s)] if why]
        return copies

    def _why_unused(self, name: str, source_name: str) -> str:
        """Why the source's ``source_name`` (``name`` here) fills nothing ("" when it is the tensor the new
        model ties ``name`` to, as the source does)."""
        owner = self.target_aliases.get(name)
        if owner is None:
            return f"no tensor {name} in the new model"
        if self.source_tensors[source_name] is self.source_tensors.get(self.source_names.get(owner, "")):
            return ""
        return f"the new model ties {name} to {owner}"

    def _plan_one(self, name: str, tensor: torch.Tensor, source_name: str, source: torch.Tensor) -> _Copy | None:
        if name in self.target_order or source_name in self.source_order:
            return self._plan_ordered(name, tensor, source_name, source)
        target_role, source_role = self.target_roles.get(name), self.source_roles.get(source_name)
        if target_role is None and source_role is None:
            if tensor.shape == source.shape:
                return self._copied(_Copy(name, source_name), "", tensor.numel())
            return self._kept(name, f"shape {tuple(tensor.shape)} here, {tuple(source.shape)} in the source")
        if target_role is None or source_role is None:
            here, there = ("are", "are not") if target_role else ("are not", "are")
            return self._kept(name, f"its rows {here} vocabulary tokens here and {there} in the source")
        if (target_role == LABELS_ROLE) != (source_role == LABELS_ROLE):
            return self._kept(name, "its rows are classes on one side and vocabulary tokens on the other")
        if tensor.shape[1:] != source.shape[1:]:
            return self._kept(name, f"rows of shape {tuple(tensor.shape[1:])} here, {tuple(source.shape[1:])} in "
                                    "the source")
        here = self._vocab(self.target_vocabs, target_role, "target", name, tensor)
        there = self._vocab(self.source_vocabs, source_role, "source", source_name, source)
        rows = shared_rows(here, there)
        if target_role == LABELS_ROLE:
            if not len(rows[0]):
                return self._kept(name, f"no label in both models (here: {_listed(here.itos)}; in the source: "
                                        f"{_listed(there.itos)})")
            note = f"{len(rows[0]):,} of {tensor.shape[0]:,} rows (labels in both models, mapped by name)"
        else:
            note = f"{len(rows[0]):,} of {tensor.shape[0]:,} rows (tokens in both vocabularies)"
        return self._copied(_Copy(name, source_name, rows), note, len(rows[0]) * tensor[0].numel())

    def _plan_ordered(self, name: str, tensor: torch.Tensor, source_name: str, source: torch.Tensor) -> _Copy | None:
        """A tensor that follows the vocabulary's order: copied whole only from the same vocabulary. Both models
        declare it: only an adaptive softmax's tensors follow that order, and no model names another tensor as
        any model names one of those, under any prefix (tests/test_transfer.py checks every pair of models)."""
        target_role, source_role = self.target_order[name], self.source_order[source_name]
        here = self._vocab(self.target_vocabs, target_role, "target", name, None)
        there = self._vocab(self.source_vocabs, source_role, "source", source_name, None)
        if here.itos != there.itos:
            return self._kept(name, f"it follows the order of the {target_role} vocabulary (adaptive softmax "
                                    f"clusters), which differs ({len(here):,} tokens here, {len(there):,} in the "
                                    "source): copied only from the same vocabulary")
        if not self._same_ordered_layout():
            return self._kept(name, "the adaptive softmax's clusters differ (cutoffs or sizes): copied only from "
                                    "the same vocabulary and clusters")
        return self._copied(_Copy(name, source_name), "the same vocabulary and clusters", tensor.numel())

    def _same_ordered_layout(self) -> bool:
        """Both sides' tensors that follow the vocabulary's order pair up with equal shapes: over one vocabulary
        the shapes fix the adaptive softmax's cutoffs (a cutoff moved changes the head's or a cluster's rows)."""
        pairs = [(self.target_tensors[name], self.source_tensors.get(self.source_names.get(name, "")))
                 for name in self.target_order]
        return len(pairs) == len(self.source_order) and all(
            there is not None and here.shape == there.shape for here, there in pairs)

    @staticmethod
    def _vocab(vocabs: dict[str, Vocab], role: str, side: str, name: str, tensor: torch.Tensor | None) -> Vocab:
        """The ``side`` vocabulary of ``role``, which must have a token for each row of ``tensor`` (if given)."""
        if role not in vocabs:
            raise ValueError(f"no {side} vocabulary for the role {role!r} (given: {', '.join(vocabs) or 'none'})")
        if tensor is not None and len(vocabs[role]) != tensor.shape[0]:
            raise ValueError(f"the {side}'s {name} has {tensor.shape[0]} rows, its {role} vocabulary "
                             f"{len(vocabs[role])} tokens")
        return vocabs[role]

    def _copied(self, copy: _Copy, note: str, values: int) -> _Copy:
        self.report.copied.append((copy.target, copy.source, note))
        self.report.values = (self.report.values[0] + values, self.report.values[1])
        return copy

    def _kept(self, name: str, why: str) -> None:
        self.report.kept.append((name, why))


def _listed(names: list[str], shown: int = 5) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _strict_mismatches(planner: _Planner, report: TransferReport) -> list[str]:
    """Everything that stops a copy of all of the source's weights into all of the target's."""
    problems = [f"'{t}': {why}" for t, why in report.kept]
    problems += [f"'{s}' of the source: {why}" for s, why in report.unused]
    roles = {planner.target_roles[t]: planner.source_roles[s] for t, s, _ in report.copied
             if t in planner.target_roles}
    for target_role, source_role in roles.items():
        here, there = planner.target_vocabs[target_role], planner.source_vocabs[source_role]
        if here.itos != there.itos:
            problems.append(f"the {target_role} vocabulary differs ({len(here):,} tokens here, {len(there):,} in "
                            "the source)")
    return problems


def transfer_weights(target: nn.Module, source: nn.Module, target_vocabs: dict[str, Vocab] | None = None,
                     source_vocabs: dict[str, Vocab] | None = None, *, prefix: str = "", strict: bool = False,
                     source_label: str = "source") -> TransferReport:
    """Copy into ``target`` what matches in ``source`` (module docstring) and report it. ``target_vocabs`` /
    ``source_vocabs``: role -> vocabulary of each model's vocabulary-indexed tensors. ``strict``: everything
    must match (names, shapes, vocabularies), else one error listing the first mismatches and nothing is
    copied. ``source_label`` names the source in the report and errors."""
    report = TransferReport(source_label, values=(0, sum(t.numel() for t in named_tensors(target).values())))
    planner = _Planner(target, source, target_vocabs or {}, source_vocabs or {}, prefix, report)
    copies = planner.plan()
    if strict:
        problems = _strict_mismatches(planner, report)
        if problems:
            shown = "; ".join(problems[:SHOWN_MISMATCHES])
            more = f" (and {len(problems) - SHOWN_MISMATCHES} more)" if len(problems) > SHOWN_MISMATCHES else ""
            raise RnnkitError(f"--init-from (same task, strict) needs the same model and vocabulary: {shown}{more}; "
                              "--init-partial copies what matches and reports the rest", source_label)
    _copy(planner.target_tensors, planner.source_tensors, copies)
    return report


@torch.no_grad()
def _copy(target: dict[str, torch.Tensor], source: dict[str, torch.Tensor], copies: list[_Copy]) -> None:
    for c in copies:
        dst, src = target[c.target], source[c.source].to(target[c.target].device, target[c.target].dtype)
        if c.rows is None:
            dst.copy_(src)
        else:
            dst.index_copy_(0, c.rows[0].to(dst.device), src.index_select(0, c.rows[1].to(dst.device)))


# ---------------------------------------------------------------------------------------------- from a folder
def check_source(model_dir: Path) -> str:
    """Check ``model_dir`` as every load does, reading no tensor (files, weights header, fingerprint); its task."""
    from rnnkit.api import check_model_dir, read_model_config

    model_dir, cfg = read_model_config(model_dir)
    check_model_dir(model_dir, cfg)
    return cfg.task


def is_strict(model_dir: Path, task: str, partial: bool = False, prefix: str = "") -> bool:
    """Whether ``--init-from model_dir`` into a new ``task`` run is strict same-task fine-tuning (the source
    checked first): the same task, neither ``partial`` nor a ``prefix``. A strict run takes the source's
    vocabulary and tokenizer; any other copies what matches into a model built from its own data."""
    return check_source(model_dir) == task and not partial and not prefix


def text_reading(model_dir: Path | None) -> tuple[Tokenizer, Vocab, dict]:
    """The (tokenizer, vocabulary, its config's tokenizer keys) of the ``--init-from`` model ``model_dir`` (checked
    by :func:`is_strict`), for a new run with ``tokenizer.from_init``: a clear error without one, or from a model
    that reads no text with one."""
    from rnnkit.api import read_model_config
    from rnnkit.tasks import get_task

    if model_dir is None:
        raise RnnkitError("tokenizer.from_init takes the tokenizer and vocabulary of the --init-from model: give "
                          "--init-from DIR, or set tokenizer.from_init false to build them from the training data")
    model_dir, cfg = read_model_config(model_dir)
    reading = get_task(cfg.task).loaded_class.text_reading(model_dir)
    if reading is None:
        raise RnnkitError(f"tokenizer.from_init: this {cfg.task} model reads no text with one tokenizer and "
                          "vocabulary (numeric input, or a seq2seq model's two sides): set tokenizer.from_init false "
                          "to build this run's own", model_dir)
    return (*reading, dict(vars(cfg.tokenizer)) if hasattr(cfg, "tokenizer") else {})


def init_model(target: nn.Module, model_dir: Path, target_vocabs: dict[str, Vocab], *, strict: bool = False,
               prefix: str = "") -> TransferReport:
    """:func:`transfer_weights` from the model directory ``model_dir`` (loaded on the CPU after the checks of
    every load: nothing is read from an unchecked file) into ``target``. A source of which nothing fits (no
    tensor copied) is an error suggesting ``--init-prefix``."""
    from rnnkit.api import load

    source = load(model_dir, device="cpu")
    report = transfer_weights(target, source.model, target_vocabs, source.vocabularies(), prefix=prefix,
                              strict=strict, source_label=str(model_dir))
    if not report.copied:  # a run "initialised" from a model it took nothing of is a mistake, not a start
        raise RnnkitError(f"--init-from copies nothing of this model into the new one "
                          f"({_why_nothing(report, prefix)}): {_advice(target, source.model, prefix)}", model_dir)
    return report


def _advice(target: nn.Module, source: nn.Module, prefix: str = "") -> str:
    """What would copy something: without ``prefix`` when the names already match, else the ``--init-prefix``
    values under which the new model has tensors of the source's names, if any."""
    target_names, source_names = list(named_tensors(target)), list(named_tensors(source))
    matching = sum(name in target_names for name in source_names)
    if prefix and matching:
        return (f"drop --init-prefix '{prefix}' (without it the names match: {matching} of the source's "
                f"{len(source_names)} tensors are named as the new model's)")
    fitting = [p for p in parts(target_names) if p != prefix and any(f"{p}.{s}" in target_names for s in source_names)]
    if fitting:
        return (f"give --init-prefix {' or '.join(fitting)} to copy it into that part of the new model (its parts: "
                f"{', '.join(parts(target_names))}), or start from another model")
    return (f"no --init-prefix fits it either (its parts: {', '.join(parts(source_names))}; the new model's: "
            f"{', '.join(parts(target_names))}): start from another model")


def _why_nothing(report: TransferReport, prefix: str) -> str:
    """Why no tensor was copied: the first that matched by name and was kept, else that none matched."""
    matched = [(name, why) for name, why in report.kept if why != "not in the source"]
    if matched:
        return f"{matched[0][0]}: {matched[0][1]}" + (f", and {len(matched) - 1} more" if len(matched) > 1 else "")
    under = f" under --init-prefix '{prefix}'" if prefix else ""
    return f"none of its tensor names{under} is one of the new model's"

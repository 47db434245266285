"""Sequence to sequence: the task the trainer runs (:class:`Seq2SeqTask`) and the loaded model users
translate with (:class:`Translator`).

Data: TSV pairs, two aligned files, or a toy task generated in memory (``data.toy``); each side has its
own tokenizer and vocabulary (``source``, ``target``). The model directory holds them as
``src_vocab.json`` / ``trg_vocab.json``, ``src_tokenizer.json`` / ``trg_tokenizer.json`` and, for a
sentencepiece side, ``src_spm.model`` / ``trg_spm.model``.

``--data PATH`` with aligned files (``data.src`` / ``data.trg`` set) is resolved by markers: the target
file of a source file is its name with the source marker, a name part between ``.``, ``-`` or ``_``,
replaced by the target marker (``train.de`` -> ``train.en``; ``content-test.txt`` ->
``title-test.txt``); a folder gives the source files with the marker whose names say train / valid
(val, dev) / test (Multi30k: ``train.de``, ``val.de``, ``test_2016_flickr.de``).
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.api import SPLIT_WORDS, find_splits, names_split
from rnnkit.arguments import check_bool_argument, check_int_argument, check_path_argument
from rnnkit.checkpoint import (
    WEIGHTS_FILE,
    check_model_weights,
    load_weights,
    shapes_only,
)
from rnnkit.data import toy
from rnnkit.data.batching import in_input_order, pad
from rnnkit.data.lm import IGNORE_INDEX
from rnnkit.data.pairs import (
    EncodedPairs,
    ParallelText,
    encode_pairs,
    pair_batches,
    read_aligned_pairs,
    read_tsv_pairs,
    split_pairs,
)
from rnnkit.data.readers import check_file
from rnnkit.data.tokenizers import Tokenizer, build_tokenizer, load_tokenizer
from rnnkit.data.vocab import SPECIALS, Vocab
from rnnkit.errors import RnnkitError
from rnnkit.memory import check_fits, model_inference_bytes, model_training_bytes
from rnnkit.metrics import bleu, chrf, decoded_matches, loss_metrics
from rnnkit.models.seq2seq import Seq2SeqModel
from rnnkit.search import GREEDY, Hypothesis, SamplingConfig, beam_search, relative_max_lengths, sample_search
from rnnkit.tasks.base import LoadedModel, LossResult, Task
from rnnkit.tasks.seq2seq_config import SELECTIONS, Seq2SeqConfig, Seq2SeqDataConfig

#: each side's files in a model directory: (vocabulary, tokenizer, sentencepiece model)
SIDE_FILES = {"src": ("src_vocab.json", "src_tokenizer.json", "src_spm.model"),
              "trg": ("trg_vocab.json", "trg_tokenizer.json", "trg_spm.model")}
#: the config section of each side's tokenizer
SIDE_SECTIONS = {"src": "source", "trg": "target"}
#: what a seq2seq run can lower when its model does not fit
ADVICE = ("model.hidden_size, model.src_embedding_size / trg_embedding_size, model.encoder_layers / "
          "decoder_layers, train.batch_size or the vocabularies (source.vocab_size, target.vocab_size)")
#: decoding never emits these (an <unk> may be the best guess, and stays allowed)
BANNED = [Vocab.pad_id, Vocab.bos_id]
#: the most tokens a decoding may write for one sentence: far beyond any sentence or document a recurrent
#: decoder writes, so a larger limit is a mistyped option (and ratio x length could pass 2**63)
MAX_OUTPUT_TOKENS = 1_000_000
#: what a decoding can lower when its search does not fit
SEARCH_ADVICE = "beam, batch_size or max_length_ratio / max_length_extra"
#: the widest length penalty: GNMT's alpha lies in [0, 1]; past about 7 the penalty of a
#: MAX_OUTPUT_TOKENS-long output leaves float32's range, and below 0 long outputs' scores overflow to -inf
MAX_ALPHA = 5.0


# ---------------------------------------------------------------------------------------------- data paths
def _marker(marker: str) -> re.Pattern:
    """``marker`` as a whole name part: between the name's ends and ``.``, ``-`` or ``_``."""
    return re.compile(rf"(?<![^._-]){re.escape(marker)}(?![^._-])")


def partner_name(name: str, src: str, trg: str) -> str | None:
    """The target file's name of source file ``name``: its last ``src`` name part replaced by ``trg``
    (None: ``src`` is not a part of the name)."""
    found = list(_marker(src).finditer(name))
    if not found:
        return None
    last = found[-1]
    return name[:last.start()] + trg + name[last.end():]


def _existing(path: Path) -> Path | None:
    """``path``, or ``path.gz`` when only that exists."""
    packed = Path(f"{path}.gz")
    return path if path.exists() else packed if packed.exists() else None


def aligned_files(path: str | Path, src: str, trg: str) -> tuple[Path, Path]:
    """(source file, target file) of a data path: the stem form ``PATH.src`` + ``PATH.trg`` (``.gz``
    found), else ``PATH`` is the source file and its target is named by :func:`partner_name`."""
    stem_source = _existing(Path(f"{path}.{src}"))
    if stem_source is not None:
        target = Path(f"{path}.{trg}")
        return stem_source, _existing(target) or target
    path = Path(path)
    target_name = partner_name(path.name, src, trg)
    if target_name is None:
        raise RnnkitError(f"no aligned files: neither {path.name}.{src} exists nor has the name the source marker "
                          f"'{src}' (data.src) as a part to replace by '{trg}' (data.trg)", path)
    return path, path.with_name(target_name)


def find_aligned_splits(path: str | Path, src: str, trg: str) -> dict[str, str]:
    """The splits of ``--data PATH`` for aligned files: a folder's source files (names with the marker
    ``src`` and the word train / valid / val / dev / test), else ``PATH`` itself as the training data."""
    path = Path(path)
    if not path.is_dir():
        source, target = aligned_files(path, src, trg)
        for file in (source, target):
            check_file(file)
        return {"train": str(path.absolute())}
    found: dict[str, str] = {}
    for split in SPLIT_WORDS:
        matches = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                         and partner_name(p.name, src, trg) is not None and names_split(p.name, split))
        if len(matches) > 1:
            raise RnnkitError(f"several {split} files with the source marker '{src}' "
                              f"({', '.join(m.name for m in matches)}); name the file instead", path)
        if matches:
            found[split] = str(matches[0].absolute())
    if "train" not in found:
        raise RnnkitError(f"no training file in the folder: a name with the word 'train' and the source marker "
                          f"'{src}' (data.src) as a part, e.g. train.{src}", path)
    return found


# ---------------------------------------------------------------------------------------------- reading pairs
def read_pairs(d: Seq2SeqDataConfig, path: str | Path, max_pairs: int) -> ParallelText:
    """The pairs of a data path: TSV, or aligned files when ``data.src`` / ``data.trg`` are set."""
    if d.src is None:
        return read_tsv_pairs(path, max_pairs)
    source, target = aligned_files(path, d.src, d.trg)
    return read_aligned_pairs(source, target, max_pairs)


def toy_splits(d: Seq2SeqDataConfig) -> tuple[ParallelText, ParallelText, ParallelText]:
    """The toy task's pairs, split 80/10/10 as ``rnnkit data toy`` writes them (seed 0: the same pairs)."""
    try:
        pairs = toy.generate(d.toy, d.toy_size, seed=0)
    except ValueError as e:
        raise RnnkitError(f"data.toy_size: {e}") from None
    where = f"<toy task {d.toy}>"
    text = ParallelText([s for s, _ in pairs], [t for _, t in pairs], list(range(1, len(pairs) + 1)), where, where)
    sizes = toy.split_sizes(len(pairs))
    cut_train, cut_valid = sizes["train"], sizes["train"] + sizes["valid"]
    return (text.subset(list(range(cut_train))), text.subset(list(range(cut_train, cut_valid))),
            text.subset(list(range(cut_valid, len(pairs)))))


def read_splits(cfg: Seq2SeqConfig) -> tuple[ParallelText, ParallelText, ParallelText | None]:
    """(train, valid, test or None): the files given, else parts of train held out (``data.*_fraction``)."""
    d = cfg.data
    if d.toy and not d.train:
        return toy_splits(d)
    train = read_pairs(d, d.train, d.max_pairs)
    valid = read_pairs(d, d.valid, d.max_pairs) if d.valid else None
    test = read_pairs(d, d.test, d.max_pairs) if d.test else None
    valid_fraction = 0.0 if valid else d.valid_fraction
    test_fraction = 0.0 if test else d.test_fraction
    if valid_fraction or test_fraction:
        train, held_valid, held_test = split_pairs(train, valid_fraction, test_fraction, d.split, cfg.train.seed)
        valid = valid or held_valid
        test = test or (held_test if len(held_test) else None)
    if valid is None:
        raise RnnkitError("no validation pairs: give --valid FILE (or a folder with a valid / val / dev file), or "
                          "set data.valid_fraction (e.g. 0.1) to hold out part of the training pairs", d.train)
    return train, valid, test


def kept(text: ParallelText, pairs: EncodedPairs) -> ParallelText:
    """The pairs of ``text`` that encoding kept (the length limits drop some), in order."""
    index = {line: i for i, line in enumerate(text.lines)}
    return text.subset([index[line] for line in pairs.lines])


# ---------------------------------------------------------------------------------------------- assets
def save_side(out_dir: Path, side: str, tokenizer: Tokenizer, vocab: Vocab) -> None:
    vocab_file, tokenizer_file, spm_file = SIDE_FILES[side]
    tokenizer.save(out_dir, tokenizer_file, spm_file)
    vocab.save(out_dir / vocab_file)


def load_sides(model_dir: Path) -> tuple[dict[str, Tokenizer], dict[str, Vocab]]:
    """Both sides' tokenizers and vocabularies of a model directory (each file checked)."""
    tokenizers, vocabs = {}, {}
    for side, (vocab_file, tokenizer_file, spm_file) in SIDE_FILES.items():
        tokenizers[side] = load_tokenizer(model_dir, tokenizer_file, spm_file)
        vocabs[side] = Vocab.load(model_dir / vocab_file)
    return tokenizers, vocabs


def build_sides(cfg: Seq2SeqConfig, train: ParallelText) -> tuple[dict[str, Tokenizer], dict[str, Vocab]]:
    """Each side's tokenizer (sentencepiece trained on that side's training text) and vocabulary; with
    ``target.shared`` one of each, the source section's, built on both sides' text."""
    if cfg.target.shared:
        tokenizer, vocab = _build_side(cfg.source, "source", train.sources + train.targets, train.source_path)
        return {"src": tokenizer, "trg": tokenizer}, {"src": vocab, "trg": vocab}
    tokenizers, vocabs = {}, {}
    for side, lines in (("src", train.sources), ("trg", train.targets)):
        section = SIDE_SECTIONS[side]
        tokenizers[side], vocabs[side] = _build_side(getattr(cfg, section), section, lines, train.source_path)
    return tokenizers, vocabs


def _build_side(options, section: str, lines: list[str], where: str) -> tuple[Tokenizer, Vocab]:
    tokenizer = build_tokenizer(options, lines)
    vocab = Vocab.build((tokenizer.tokenize(x) for x in lines), options.vocab_size, options.min_freq)
    if len(vocab) <= len(SPECIALS):
        raise RnnkitError(f"the {section} vocabulary holds only the special tokens {' '.join(SPECIALS)}: no token "
                          f"of the training pairs is kept with {section}.min_freq {options.min_freq} and "
                          f"{section}.vocab_size {options.vocab_size}", where)
    return tokenizer, vocab


def model_shapes(cfg: Seq2SeqConfig, vocabs: dict[str, Vocab]) -> Seq2SeqModel:
    """The model on the meta device (names and shapes, no memory)."""
    return shapes_only(lambda: Seq2SeqModel(cfg.model, len(vocabs["src"]), len(vocabs["trg"])))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # a tied weight counts once


# ---------------------------------------------------------------------------------------------- scoring
@torch.no_grad()
def teacher_forced_metrics(model: nn.Module, pairs: EncodedPairs, batch_size: int,
                           device: torch.device) -> dict[str, float]:
    """Loss (cross entropy per target token, <eos> included) and perplexity of ``pairs``."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    batches = pair_batches(pairs, batch_size, shuffle=False)
    for spec in batches.plan(0):
        batch = batches.batch(spec).to(device)
        logits = model(batch.src, batch.src_lengths, batch.trg_in)
        total += float(F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), batch.trg_out.reshape(-1),
                                       ignore_index=IGNORE_INDEX, reduction="sum"))
        count += batch.num_tokens
    model.train(was_training)
    metrics = loss_metrics(total, count)
    return {"loss": metrics["loss"], "ppl": metrics["ppl"]}


@dataclass
class SearchOptions:
    """How to decode: beam search when ``beam`` > 1, else greedy (``sampling`` None) or sampled."""

    beam: int = 1
    n_best: int = 1
    alpha: float = 1.0  # GNMT length penalty (beam search)
    max_length_ratio: float = 1.5
    max_length_extra: int = 10
    sampling: SamplingConfig | None = None
    generator: torch.Generator | None = None


@torch.no_grad()
def search(model: Seq2SeqModel, sources: list[list[int]], batch_size: int, options: SearchOptions,
           device: torch.device, on_progress: Callable[[int], None] | None = None,
           advice: str = SEARCH_ADVICE) -> list[list[Hypothesis]]:
    """The best hypotheses of each source (ids, no specials; ``n_best`` each, best first), in input order.

    Sources are decoded ``batch_size`` at a time, sorted by length (little padding in each batch). The
    longest output allowed and the memory of the search are checked first (errors name the options; a
    search that does not fit says to lower ``advice``).
    """
    if not sources:
        return []
    longest = max(map(len, sources))
    steps = longest_output(longest, options) + 1  # the last step can only be <eos>
    was_training = model.training
    model.eval()
    check_fits(*search_bytes(model, min(batch_size, len(sources)), longest, steps, options, device), device, advice)
    order = sorted(range(len(sources)), key=lambda i: -len(sources[i]))
    indices, outputs, done = [], [], 0
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        src, lengths = pad([sources[i] for i in rows], Vocab.pad_id)
        outputs.append(_search_batch(model, src.to(device), lengths, options, device))
        indices.append(rows)
        done += len(rows)
        if on_progress is not None:
            on_progress(done)
    model.train(was_training)
    return in_input_order(indices, outputs)


def check_alpha(alpha: float, verb: str) -> None:
    """A length penalty beam search can use (:data:`MAX_ALPHA`); errors name ``verb``."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise TypeError(f"{verb}: alpha must be a number, got {alpha!r}")
    if not 0 <= alpha <= MAX_ALPHA:
        raise RnnkitError(f"{verb}: alpha (the length penalty) must be between 0 and {MAX_ALPHA:g}, got {alpha}")


def longest_output(source_length: int, options: SearchOptions) -> int:
    """The most tokens the decoding of a source of ``source_length`` tokens may write (at most
    :data:`MAX_OUTPUT_TOKENS`, else an error naming the options)."""
    tokens = math.floor(source_length * options.max_length_ratio) + options.max_length_extra
    if tokens > MAX_OUTPUT_TOKENS:
        raise RnnkitError(f"max_length_ratio {options.max_length_ratio:g} x {source_length} source tokens + "
                          f"max_length_extra {options.max_length_extra} allows outputs of {tokens:,} tokens, more "
                          f"than the limit of {MAX_OUTPUT_TOKENS:,}: lower max_length_ratio / max_length_extra")
    return tokens


def search_bytes(model: Seq2SeqModel, rows: int, source_length: int, steps: int, options: SearchOptions,
                 device: torch.device) -> tuple[int, str]:
    """Bytes the search of ``rows`` sources of ``source_length`` tokens at once needs, and what they are:
    per hypothesis (``rows`` x ``options.beam``) the decoder state (measured on one source: the
    recurrent state and what attention reads) three times (old, new, reordered), the scores of the
    target vocabulary three times (logits, log-probabilities, candidates) and the tokens written so
    far six times (live, extended, reordered and finished beams). Measured: 64 sentences x beam 3,000 over
    65 steps of a 16-unit attention model on the reverse toy task are estimated at 1.26 GiB; the search
    grew the process by 0.86 GiB (peak RSS)."""
    hypotheses = rows * options.beam
    one_source = torch.full((source_length, 1), Vocab.unk_id, dtype=torch.long, device=device)
    state = model.start(model.encode(one_source, torch.tensor([source_length])))
    logits, state = model.step(torch.full((1,), Vocab.bos_id, device=device), state)
    per_hypothesis = 3 * tensor_bytes(state) + 3 * logits.numel() * 4 + 6 * steps * 8
    return hypotheses * per_hypothesis, (f"decoding {rows:,} sentences x beam {options.beam:,} over up to "
                                         f"{steps:,} steps: state, target scores and tokens of each hypothesis")


def tensor_bytes(value: object) -> int:
    """Bytes of the tensors in ``value`` (a tensor, a dataclass, or a list / tuple of them)."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if dataclasses.is_dataclass(value):
        return sum(tensor_bytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(v) for v in value)
    return 0


def _search_batch(model: Seq2SeqModel, src: torch.Tensor, lengths: torch.Tensor, options: SearchOptions,
                  device: torch.device) -> list[list[Hypothesis]]:
    state = model.start(model.encode(src, lengths))
    limits = relative_max_lengths(lengths, options.max_length_ratio, options.max_length_extra).to(device)
    n = lengths.numel()
    if options.beam > 1:
        return beam_search(model.step, model.reorder, state, n, Vocab.bos_id, Vocab.eos_id, limits, options.beam,
                           options.alpha, options.n_best, BANNED, device)
    found = sample_search(model.step, state, n, Vocab.bos_id, Vocab.eos_id, limits, options.sampling or GREEDY,
                          options.generator, BANNED, device)
    return [[h] for h in found]


def decoding_metrics(hypotheses: list[list[str]], text: ParallelText, tokenizer: Tokenizer,
                     bleu_tokenize: str) -> tuple[dict[str, float], dict[str, str]]:
    """BLEU, chrF (sacrebleu, on detokenized text), token accuracy and exact match (output tokens vs the
    reference's tokens) of one output per pair of ``text``; and the sacrebleu signatures. A target
    tokenizer that lower-cases (the model writes lower case) scores case-insensitively: sacrebleu's
    ``lowercase``, so the signatures say ``case:lc``."""
    outputs = [tokenizer.detokenize(tokens) for tokens in hypotheses]
    lowercase = tokenizer.lowercase
    b = bleu(outputs, text.targets, tokenize=bleu_tokenize, lowercase=lowercase)
    c = chrf(outputs, text.targets, lowercase=lowercase)
    matches = decoded_matches(hypotheses, [tokenizer.tokenize(t) for t in text.targets])
    return ({"bleu": b.score, "chrf": c.score, **matches.to_dict()}, {"bleu": b.signature, "chrf": c.signature})


# ---------------------------------------------------------------------------------------------- the task
class Seq2SeqTask(Task):
    """Pairs, both sides' vocabularies and the encoder-decoder of a seq2seq run, as the trainer needs them."""

    name = "seq2seq"
    config_class = Seq2SeqConfig
    selection = ("bleu", "max")  # the default; an instance takes train.select
    asset_files = tuple(name for files in SIDE_FILES.values() for name in files)
    required_files = tuple(name for files in SIDE_FILES.values() for name in files[:2])
    read_limits = {name: 1 << 20 if name.endswith("tokenizer.json") else 1 << 30 for name in asset_files}
    #: what decides the weights' meaning: how each side's text becomes ids, and the model they feed
    bound_config_keys = ("task", *(f"{section}.{key}" for section in ("source", "target")
                                   for key in ("kind", "lowercase", "split_punctuation")), "target.shared",
                         *(f"model.{key}" for key in ("cell", "src_embedding_size", "trg_embedding_size",
                                                      "hidden_size", "decoder_hidden_size", "encoder_layers",
                                                      "decoder_layers", "bidirectional", "decoder", "attention",
                                                      "input_feeding", "bridge", "tie_embeddings")))
    resumable_keys = ()

    @classmethod
    def find_data(cls, path: str | Path, cfg: Seq2SeqConfig) -> dict[str, str]:
        """TSV: as every task (a file, or a folder's train / valid / test files); aligned files
        (``data.src`` and ``data.trg`` set): :func:`find_aligned_splits`."""
        d = cfg.data
        if d.src is None or d.trg is None:
            try:
                return find_splits(path)
            except RnnkitError as e:  # train.de beside train.en: a folder of aligned files
                if "several" not in str(e):
                    raise
                raise RnnkitError(f"{e}; for aligned files give the markers: data.src and data.trg (e.g. --set "
                                  "data.src=de --set data.trg=en)") from None
        if not Path(path).exists() and _existing(Path(f"{path}.{d.src}")) is None:  # neither a file nor a stem
            raise RnnkitError("data path not found", path)
        return find_aligned_splits(path, d.src, d.trg)

    def __init__(self, cfg: Seq2SeqConfig, dist, device: torch.device, vocab_from: Path | None = None,
                 param_bytes: int = 4):
        super().__init__(cfg, dist, device, vocab_from)
        cfg.check()
        d, t = cfg.data, cfg.train
        self.selection = (t.select, SELECTIONS[t.select])
        train, valid, self.test_text = read_splits(cfg)
        self.tokenizers, self.vocabs = load_sides(vocab_from) if vocab_from is not None else build_sides(cfg, train)
        self.train_pairs = self._encode(train)
        if not self.train_pairs:
            raise RnnkitError(f"no training pairs left: all {len(train)} are longer than data.max_src_length "
                              f"{d.max_src_length} / data.max_trg_length {d.max_trg_length}", train.source_path)
        self.valid_pairs = self._encode(valid)
        if not self.valid_pairs:
            raise RnnkitError(f"no validation pairs left: all {len(valid)} are over the length limits",
                              valid.source_path)
        self.valid_text = kept(valid, self.valid_pairs)
        try:
            self.train_data = pair_batches(self.train_pairs, t.batch_size, t.batch_unit, seed=t.seed,
                                           rank=dist.rank, world=dist.world)
        except ValueError as e:
            raise RnnkitError(f"cannot batch the training pairs (train.batch_size {t.batch_size} "
                              f"{t.batch_unit}): {e}") from None
        shapes = model_shapes(cfg, self.vocabs)
        check_fits(*model_training_bytes(count_parameters(shapes), t, self._largest_logits(), param_bytes), device,
                   ADVICE)
        self.model = Seq2SeqModel(cfg.model, len(self.vocabs["src"]), len(self.vocabs["trg"]))

    def _encode(self, text: ParallelText) -> EncodedPairs:
        d = self.cfg.data
        return encode_pairs(text, self.tokenizers["src"], self.tokenizers["trg"], self.vocabs["src"],
                            self.vocabs["trg"], d.max_src_length, d.max_trg_length, d.too_long)

    def _largest_logits(self) -> int:
        """Output scores of the largest training batch (rows x target steps x target vocabulary)."""
        t = self.cfg.train
        longest = max(len(target) - 1 for target in self.train_pairs.targets)
        cells = t.batch_size * longest if t.batch_unit == "sentences" else t.batch_size
        return cells * len(self.vocabs["trg"])

    def describe(self) -> str:
        """One line: size, vocabularies, decoder, kernel path and the data (what was dropped, too)."""
        params = count_parameters(self.model)
        dropped = self.train_pairs.dropped + self.valid_pairs.dropped
        over = (f"; {dropped:,} pairs over the length limits dropped (data.max_src_length / max_trg_length)"
                if dropped else "")
        test = f", {len(self.test_text):,} test" if self.test_text is not None else ""
        return (f"seq2seq: {params:,} parameters; vocabularies {len(self.vocabs['src']):,} source / "
                f"{len(self.vocabs['trg']):,} target; {self.model.describe_kernels(self.device)}; "
                f"{len(self.train_pairs):,} training pairs ({self.train_data.num_tokens:,} target tokens), "
                f"{len(self.valid_pairs):,} validation{test}; selection: {self.selection[0]}{over}")

    def save_assets(self, out_dir: Path) -> None:
        for side in SIDE_FILES:
            save_side(out_dir, side, self.tokenizers[side], self.vocabs[side])

    def vocabularies(self) -> dict[str, Vocab]:
        return dict(self.vocabs)

    def batch_loss(self, model: nn.Module, batch, state) -> LossResult:
        logits = model(batch.src, batch.src_lengths, batch.trg_in)
        loss_sum = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), batch.trg_out.reshape(-1),
                                   ignore_index=IGNORE_INDEX, reduction="sum",
                                   label_smoothing=self.cfg.train.label_smoothing)
        return LossResult(loss_sum, batch.num_tokens)

    def validate(self, model: nn.Module) -> dict[str, float]:
        """Loss and perplexity by teacher forcing; with ``train.select: bleu`` also BLEU, chrF, token
        accuracy and exact match of the validation pairs decoded (``train.valid_beam``)."""
        t = self.cfg.train
        metrics = teacher_forced_metrics(model, self.valid_pairs, t.eval_batch_size, self.device)
        if t.select == "bleu":
            options = SearchOptions(beam=t.valid_beam, max_length_ratio=t.max_length_ratio,
                                    max_length_extra=t.max_length_extra)
            found = search(model, self.valid_pairs.sources, t.eval_batch_size, options, self.device)
            outputs = [self.vocabs["trg"].decode(h[0].ids) for h in found]
            metrics.update(decoding_metrics(outputs, self.valid_text, self.tokenizers["trg"], t.bleu_tokenize)[0])
        return metrics

    def test_metrics(self, out_dir: Path, device: torch.device) -> dict[str, float] | None:
        """The best weights' :meth:`Translator.evaluate` figures on the test pairs (file or held out)."""
        if self.test_text is None:
            return None
        translator = Translator.load(Path(out_dir), self.cfg, device)
        return translator.evaluate_pairs(self.test_text, beam=self.cfg.train.valid_beam)


# ---------------------------------------------------------------------------------------------- translation
class Translator(LoadedModel):
    """A trained seq2seq model loaded from its directory: ``translate``, ``attention``, ``evaluate``.

    ``oov_counts``: (tokens, distinct tokens) of the last ``translate`` call's sources that are outside the
    source vocabulary (read as <unk>). ``last_signatures``: sacrebleu's signatures of the last
    ``evaluate`` ({"bleu": ..., "chrf": ...}).
    """

    verb = "translate"

    def __init__(self, model_dir: Path, cfg: Seq2SeqConfig, tokenizers: dict[str, Tokenizer],
                 vocabs: dict[str, Vocab], model: Seq2SeqModel, device: torch.device):
        self.model_dir, self.config, self.tokenizers, self.vocabs = model_dir, cfg, tokenizers, vocabs
        self.model, self.device = model.eval(), device
        self.oov_counts: tuple[int, int] = (0, 0)
        self.last_signatures: dict[str, str] = {}

    def vocabularies(self) -> dict[str, Vocab]:
        return dict(self.vocabs)

    @classmethod
    def checked_parts(cls, model_dir: Path, cfg: Seq2SeqConfig, weights: Path | None = None,
                      dtype: torch.dtype = torch.float32) -> tuple[dict[str, Tokenizer], dict[str, Vocab]]:
        """Both sides' tokenizers and vocabularies, once the header of ``weights`` (default
        model.safetensors) matches the model they and ``cfg`` describe (on the meta device) and the
        fingerprint binds them: nothing is allocated before."""
        tokenizers, vocabs = load_sides(model_dir)
        check_model_weights(model_dir, cfg, lambda: Seq2SeqModel(cfg.model, len(vocabs["src"]), len(vocabs["trg"])),
                            weights, dtype)
        return tokenizers, vocabs

    @classmethod
    def load(cls, model_dir: Path, cfg: Seq2SeqConfig, device: torch.device) -> Translator:
        tokenizers, vocabs = cls.checked_parts(model_dir, cfg)
        check_fits(*model_inference_bytes(count_parameters(model_shapes(cfg, vocabs))), device, ADVICE)
        model = Seq2SeqModel(cfg.model, len(vocabs["src"]), len(vocabs["trg"]))
        load_weights(model, model_dir / WEIGHTS_FILE)
        return cls(model_dir, cfg, tokenizers, vocabs, model.to(device), device)

    def kernel_path(self, verb: str, **_) -> str:
        return f"{verb}: {self.model.describe_kernels(self.device)}"

    # ------------------------------------------------------------------ translate
    def translate(self, texts: str | list[str], beam: int = 1, n_best: int = 1, alpha: float = 1.0,
                  batch_size: int = 64, max_length_ratio: float | None = None, max_length_extra: int | None = None,
                  temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
                  seed: int | None = None, truncate: bool = False,
                  on_progress: Callable[[int], None] | None = None, first_line: int = 1,
                  source: str | Path | None = None) -> list[str] | list[list[str]]:
        """Translations of ``texts`` (a str is a list of one), in input order: one string each, or with
        ``n_best`` > 1 a list of the ``n_best`` best (beam search) per text.

        ``beam`` > 1: batched beam search with GNMT length penalty ``alpha``; ``beam`` 1: greedy, or
        sampling when ``temperature`` / ``top_k`` / ``top_p`` is given (``seed`` makes it repeatable).
        Outputs have at most ``max_length_ratio`` x source length + ``max_length_extra`` tokens (default:
        the config's ``train.*``). A source longer than ``data.max_src_length`` is an error naming its line,
        or, with ``truncate``, cut to the limit with a warning. An empty text translates to "".
        ``on_progress(n)`` is called with the number of texts done after each batch. Messages name
        ``texts[0]`` line ``first_line`` (of the file ``source``, when given: a caller reading a file in parts).
        """
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise TypeError("translate: texts must be a string or a list of strings")
        options = self._search_options(beam, n_best, alpha, max_length_ratio, max_length_extra, temperature,
                                       top_k, top_p, seed)
        check_int_argument(batch_size, "batch_size", low=1)
        check_bool_argument(truncate, "truncate")
        check_int_argument(first_line, "first_line", low=1)
        check_path_argument(source, "source", optional=True)
        if on_progress is not None and not callable(on_progress):
            raise TypeError(f"translate: on_progress must be a function of the number of texts done, or None, "
                            f"got {on_progress!r:.60}")
        sources = self._encode_sources(texts, truncate, first_line, source)
        todo = [i for i, ids in enumerate(sources) if ids]
        found = search(self.model, [sources[i] for i in todo], batch_size, options, self.device, on_progress)
        outputs: list[list[str]] = [[""] * n_best for _ in texts]
        for i, hypotheses in zip(todo, found, strict=True):
            outputs[i] = [self._text(h.ids) for h in hypotheses]
        return [o[0] for o in outputs] if n_best == 1 else outputs

    def _text(self, ids: list[int]) -> str:
        """Output ids as text, joined as the target tokenizer joins (char: nothing; word: spaces; sentencepiece)."""
        return self.tokenizers["trg"].detokenize(self.vocabs["trg"].decode(ids))

    def _search_options(self, beam, n_best, alpha, ratio, extra, temperature, top_k, top_p, seed) -> SearchOptions:
        t = self.config.train
        check_int_argument(beam, "beam", low=1)
        check_int_argument(n_best, "n_best", low=1)
        if n_best > beam:
            raise RnnkitError(f"translate: n_best ({n_best}) needs a beam at least as wide (beam {beam})")
        for name, value in (("alpha", alpha), ("max_length_ratio", ratio), ("temperature", temperature),
                            ("top_p", top_p)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise TypeError(f"translate: {name} must be a number, got {value!r}")
        check_int_argument(extra, "max_length_extra", low=0, optional=True)
        check_int_argument(top_k, "top_k", low=0, optional=True)
        check_int_argument(seed, "seed", optional=True)
        self._check_search_ranges(alpha, ratio, seed)
        sampled = temperature is not None or top_k is not None or top_p is not None
        if sampled and beam > 1:
            raise RnnkitError("translate: sampling (temperature / top_k / top_p) draws one output per text; it "
                              "does not combine with a beam > 1")
        sampling, generator = None, None
        if sampled:
            sampling = SamplingConfig(False, float(1.0 if temperature is None else temperature), top_k or 0,
                                      float(1.0 if top_p is None else top_p))
            try:
                sampling.validate()
            except ValueError as e:
                raise RnnkitError(f"translate: {e}") from None
            generator = torch.Generator(self.device).manual_seed(seed) if seed is not None else None
        return SearchOptions(beam, n_best, float(alpha), float(t.max_length_ratio if ratio is None else ratio),
                             t.max_length_extra if extra is None else extra, sampling, generator)

    @staticmethod
    def _check_search_ranges(alpha: float, ratio: float | None, seed: int | None) -> None:
        """Values a search cannot use: NaN or overflowing scores leave beam search no hypothesis, an
        infinite ratio no length limit, and torch.Generator takes 64-bit seeds."""
        if ratio is not None and not (math.isfinite(ratio) and ratio >= 0):
            raise RnnkitError(f"translate: max_length_ratio must be >= 0 and finite, got {ratio}")
        check_alpha(alpha, "translate")
        if seed is not None and not -(2**63) <= seed < 2**64:
            raise RnnkitError(f"translate: seed (--seed) must fit in 64 bits, got {seed}")

    def _encode_sources(self, texts: list[str], truncate: bool, first_line: int = 1,
                        source: str | Path | None = None) -> list[list[int]]:
        """Source ids of each text; counts the tokens outside the vocabulary (``oov_counts``) and applies
        the model's source length limit."""
        tokenizer, vocab = self.tokenizers["src"], self.vocabs["src"]
        limit = self.config.data.max_src_length
        out, unknown = [], []
        for line, text in enumerate(texts, first_line):
            tokens = tokenizer.tokenize(text)
            if limit and len(tokens) > limit:
                where = f"{source}:{line}" if source is not None else f"input line {line}"
                if not truncate:
                    raise RnnkitError(f"{where}: {len(tokens)} tokens, more than the model's limit of {limit} "
                                      "(data.max_src_length): shorten it, or truncate it (--truncate)")
                print(f"warning: {where}: {len(tokens)} tokens cut to the model's limit of {limit}",
                      file=sys.stderr, flush=True)
                tokens = tokens[:limit]
            unknown += [tok for tok in tokens if tok not in vocab]
            out.append(vocab.encode(tokens))
        self.oov_counts = (len(unknown), len(set(unknown)))
        return out

    # ------------------------------------------------------------------ attention
    def attention(self, text: str) -> tuple[list[str], list[str], list[list[float]]]:
        """(source tokens, output tokens ending in <eos>, weights: one row per output token over the source
        tokens) of the greedy translation of ``text``."""
        if not isinstance(text, str):
            raise TypeError("attention: text must be a string")
        if self.config.model.decoder != "attention":
            raise RnnkitError(f"this model's decoder is '{self.config.model.decoder}', which has no attention to "
                              "show (model.decoder: attention has)")
        source_ids = self._encode_sources([text], truncate=False)[0]
        if not source_ids:
            raise RnnkitError("attention: the text is empty")
        output = search(self.model, [source_ids], 1, self._search_options(1, 1, 1.0, None, None, None, None, None,
                                                                          None), self.device)[0][0].ids
        src = torch.tensor(source_ids, device=self.device).unsqueeze(1)
        trg_in = torch.tensor([Vocab.bos_id, *output], device=self.device).unsqueeze(1)
        with torch.no_grad():
            _, weights = self.model.teacher_forced(src, torch.tensor([len(source_ids)]), trg_in)
        return (self.tokenizers["src"].tokenize(text), [*self.vocabs["trg"].decode(output), "<eos>"],
                weights[0].float().cpu().tolist())

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, path: str | Path | None = None, batch_size: int | None = None, max_lines: int = 0, *,
                 src: str | Path | None = None, ref: str | Path | None = None, beam: int = 1,
                 alpha: float = 1.0) -> dict[str, float]:
        """BLEU, chrF, token accuracy, exact match (of the decoded output, ``beam`` 1: greedy), loss and
        perplexity (teacher forcing) of pairs: ``path`` read like the training data (TSV, or aligned files
        by ``data.src`` / ``data.trg``), or ``src`` + ``ref`` aligned files. Every pair is scored (the
        training length limits do not apply); ``max_lines`` > 0: the first lines only."""
        check_int_argument(max_lines, "max_lines", low=0)
        check_int_argument(batch_size, "batch_size", low=1, optional=True)
        if (src is None) != (ref is None):
            raise RnnkitError("evaluate: give both --src and --ref (aligned files), or --data")
        if (path is None) == (src is None):
            raise RnnkitError("evaluate: give --data FILE, or --src FILE --ref FILE (not both)")
        if path is not None:
            check_path_argument(path, "path")
            text = read_pairs(self.config.data, path, max_lines)
        else:
            check_path_argument(src, "src")
            check_path_argument(ref, "ref")
            text = read_aligned_pairs(src, ref, max_lines)
        return self.evaluate_pairs(text, batch_size, beam, alpha)

    def evaluate_pairs(self, text: ParallelText, batch_size: int | None = None, beam: int = 1,
                       alpha: float = 1.0) -> dict[str, float]:
        """:meth:`evaluate` of pairs already read."""
        options = self._search_options(beam, 1, alpha, None, None, None, None, None, None)
        batch_size = batch_size or self.config.train.eval_batch_size
        pairs = encode_pairs(text, self.tokenizers["src"], self.tokenizers["trg"], self.vocabs["src"],
                             self.vocabs["trg"])
        metrics = teacher_forced_metrics(self.model, pairs, batch_size, self.device)
        found = search(self.model, pairs.sources, batch_size, options, self.device)
        outputs = [self.vocabs["trg"].decode(h[0].ids) for h in found]
        scores, self.last_signatures = decoding_metrics(outputs, text, self.tokenizers["trg"],
                                                        self.config.train.bleu_tokenize)
        return {**scores, **metrics, "sentences": len(text)}

    @classmethod
    def add_evaluate_arguments(cls, parser) -> None:
        parser.add_argument("--src", metavar="FILE",
                            help="source file of aligned pairs (with --ref, instead of --data)")
        parser.add_argument("--ref", metavar="FILE", help="reference translations, line by line with --src")
        parser.add_argument("--beam", type=int, default=1, metavar="N",
                            help="beam size of the decoding scored (default 1: greedy)")
        parser.add_argument("--alpha", type=float, default=1.0, metavar="A",
                            help="length penalty of beam search, as translate's (default 1.0)")


Seq2SeqTask.loaded_class = Translator  # (defined after the task, which names it)

"""Sequence autoencoder (SA-LSTM, Dai & Le 2015): pretraining on unlabelled text for a classifier.

The encoder reads a text; its final state (bridge ``last``) starts a decoder (style ``state``) that reproduces
the text token by token under teacher forcing. The model is :class:`~rnnkit.models.seq2seq.Seq2SeqModel` with
one vocabulary on both sides, so its encoder is named as the classifier's (``encoder.embedding.weight``,
``encoder.rnns.{k}.*``) and ``rnnkit train classify --init-from AE_DIR`` copies it (embedding rows by token).
``Autoencoder`` (what ``rnnkit.load`` returns) scores a file (``evaluate``: reconstruction loss, perplexity,
token accuracy) and reconstructs texts greedily or by beam search (``reconstruct``; ``rnnkit reconstruct``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.arguments import check_int_argument, check_path_argument
from rnnkit.checkpoint import (
    WEIGHTS_FILE,
    check_model_weights,
    load_weights,
    shapes_only,
)
from rnnkit.data.batching import BucketBatches, pad
from rnnkit.data.labelled import (
    NUMERIC_FORMATS,
    TRUNCATE,
    Examples,
    ReadOptions,
    clean_text,
    detect_format,
    encode_texts,
    read_examples,
    split_examples,
)
from rnnkit.data.tokenizers import SPM_FILE, TOKENIZER_FILE, Tokenizer, load_tokenizer
from rnnkit.data.vocab import Vocab
from rnnkit.distributed import DistInfo
from rnnkit.errors import RnnkitError
from rnnkit.memory import check_fits, model_training_bytes, softmax_width
from rnnkit.models.seq2seq import Seq2SeqModel, Seq2SeqModelConfig
from rnnkit.nn.softmax import SoftmaxOptions, check_softmax
from rnnkit.nn.stack import describe_padded
from rnnkit.tasks.autoencoder_config import CELLS, AutoencoderConfig
from rnnkit.tasks.base import LoadedModel, LossResult, Task
from rnnkit.tasks.classify import VOCAB_FILE, freezing, source_reading, text_vocabulary
from rnnkit.tasks.seq2seq import SearchOptions, check_alpha, search

#: what an autoencoder run can lower when its model does not fit
MODEL_ADVICE = ("model.hidden_size, model.embedding_size, model.layers, the vocabulary (tokenizer.vocab_size), "
                "train.batch_size or data.max_length, or set model.softmax adaptive")


def check_model(cfg: AutoencoderConfig, vocab_size: int | None) -> None:
    """What ``model`` must say to build a model (``vocab_size`` None: not known yet, checked when built)."""
    m = cfg.model
    if m.encoder not in CELLS:
        raise RnnkitError(f"unknown model.encoder '{m.encoder}' ({' | '.join(CELLS)})")
    check_softmax(m, m.hidden_size, vocab_size)


def build_model(cfg: AutoencoderConfig, vocab_size: int) -> Seq2SeqModel:
    """The encoder-decoder of ``cfg.model`` over one vocabulary (an error naming the key it cannot build)."""
    check_model(cfg, vocab_size)
    m = cfg.model
    softmax = SoftmaxOptions(m.softmax, tuple(m.adaptive_cutoffs), m.adaptive_div)
    return Seq2SeqModel(Seq2SeqModelConfig(
        cell=m.encoder, src_embedding_size=m.embedding_size, trg_embedding_size=m.embedding_size,
        hidden_size=m.hidden_size, encoder_layers=m.layers, decoder_layers=m.layers, decoder="state", bridge="last",
        dropout=m.dropout), vocab_size, vocab_size, softmax)


def read_texts(cfg: AutoencoderConfig, path: str | Path, max_examples: int = 0, fmt: str | None = None,
               answered: bool = False) -> Examples:
    """The texts of ``path`` in ``fmt`` (default: data.format; labels, when present, are ignored); numeric formats
    are refused. Blank lines are skipped, but in texts ``answered`` one by one (reconstruct --input): see
    :func:`rnnkit.data.labelled.read_examples`."""
    d = cfg.data
    fmt = fmt or d.format
    if detect_format(path, fmt) in NUMERIC_FORMATS:
        raise RnnkitError("an autoencoder reads texts (JSONL, CSV/TSV, plain lines or a folder of .txt files), not "
                          "numeric sequences", path)
    return read_examples(path, ReadOptions(fmt, d.text_field, "label", d.strip_markup), False, max_examples, answered)


@dataclass
class ReconstructionBatch:
    """src (S, B) ids and lengths (B,); trg_in (S+1, B): <bos> then the text; trg_out (S+1, B): the text then
    <eos> (padding 0 is not scored)."""

    src: torch.Tensor
    lengths: torch.Tensor
    trg_in: torch.Tensor
    trg_out: torch.Tensor

    def to(self, device: torch.device) -> ReconstructionBatch:
        return ReconstructionBatch(self.src.to(device), self.lengths.to(device), self.trg_in.to(device),
                                   self.trg_out.to(device))


def collate(ids: list[list[int]], indices: list[int]) -> ReconstructionBatch:
    texts = [ids[i] for i in indices]
    src, lengths = pad(texts, Vocab.pad_id)
    trg_in = pad([[Vocab.bos_id, *t] for t in texts], Vocab.pad_id)[0]
    trg_out = pad([[*t, Vocab.eos_id] for t in texts], Vocab.pad_id)[0]
    return ReconstructionBatch(src, lengths, trg_in, trg_out)


def text_batches(ids: list[list[int]], batch_size: int, shuffle: bool = True, seed: int = 0, rank: int = 0,
                 world: int = 1) -> BucketBatches:
    """Length-bucketed batches of encoded texts (``num_tokens``: the tokens to reconstruct, <eos> included)."""
    lengths = [len(t) for t in ids]
    return BucketBatches(lengths, partial(collate, ids), batch_size, shuffle=shuffle, seed=seed, rank=rank,
                         world=world, num_tokens=sum(lengths) + len(lengths))


def training_loss(model: nn.Module, batch: ReconstructionBatch) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy of the teacher-forced reconstruction (the adaptive softmax computed only where the
    targets are) and the tokens scored."""
    loss = model(batch.src, batch.lengths, batch.trg_in, batch.trg_out, Vocab.pad_id)
    return loss, int((batch.trg_out != Vocab.pad_id).sum())


def reconstruction_loss(model: nn.Module, batch: ReconstructionBatch) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Summed cross-entropy of the teacher-forced reconstruction, tokens right, tokens scored: from every
    token's scores (the adaptive softmax's log-probabilities, whose log-softmax they are), for the accuracy."""
    logits = model(batch.src, batch.lengths, batch.trg_in).float()
    target = batch.trg_out.reshape(-1)
    flat = logits.reshape(-1, logits.size(-1))
    loss = F.cross_entropy(flat, target, ignore_index=Vocab.pad_id, reduction="sum")
    scored = target != Vocab.pad_id
    right = (flat.argmax(-1)[scored] == target[scored]).sum()
    return loss, right, int(scored.sum())


@torch.no_grad()
def scores(model: nn.Module, batches: BucketBatches, device: torch.device) -> dict[str, float]:
    """Mean reconstruction loss per token, its perplexity and the teacher-forced token accuracy."""
    was_training = model.training
    model.eval()
    loss, right, count = 0.0, 0, 0
    for spec in batches.plan(0):
        batch_loss, batch_right, batch_count = reconstruction_loss(model, batches.batch(spec).to(device))
        loss, right, count = loss + batch_loss.item(), right + int(batch_right), count + batch_count
    model.train(was_training)
    mean = loss / count
    return {"loss": mean, "ppl": math.exp(min(mean, 50.0)), "accuracy": right / count, "tokens": count}


class AutoencoderTask(Task):
    """Texts, vocabulary and encoder-decoder of an SA-LSTM pretraining run; selects by validation loss."""

    name = "autoencoder"
    config_class = AutoencoderConfig
    asset_files = (VOCAB_FILE, TOKENIZER_FILE, SPM_FILE)
    required_files = (VOCAB_FILE, TOKENIZER_FILE)
    read_limits = {VOCAB_FILE: 1 << 30, TOKENIZER_FILE: 1 << 20, SPM_FILE: 1 << 30}
    data_folders = True  # --data aclImdb/train/unsup (a folder of .txt texts) or aclImdb/train (its sub-folders')
    bound_config_keys = ("task", "data.strip_markup", "data.max_length", "data.truncate", "tokenizer.kind",
                         "tokenizer.lowercase", "tokenizer.split_punctuation", "model.encoder", "model.embedding_size",
                         "model.hidden_size", "model.layers", "model.softmax", "model.adaptive_cutoffs",
                         "model.adaptive_div")

    def __init__(self, cfg: AutoencoderConfig, dist: DistInfo, device: torch.device, vocab_from: Path | None = None,
                 text_from: tuple[Tokenizer, Vocab, dict] | None = None):
        super().__init__(cfg, dist, device, vocab_from)
        d, t = cfg.data, cfg.train
        if not d.train:
            raise RnnkitError("no training data: give --data FILE (or set data.train in the recipe)")
        if d.truncate not in TRUNCATE:
            raise RnnkitError(f"unknown data.truncate '{d.truncate}' ({' | '.join(TRUNCATE)})")
        # before reading: the built vocabulary is checked again
        check_model(cfg, len(text_from[1]) if text_from else cfg.tokenizer.vocab_size or None)
        train, valid = self._splits()
        self.text_from_init = text_from is not None
        if vocab_from is not None:
            self.tokenizer, self.vocab = Autoencoder.assets(vocab_from)
        elif text_from is not None:  # tokenizer.from_init
            self.tokenizer, self.vocab = source_reading(cfg.tokenizer, text_from, dist)
        else:
            self.tokenizer, self.vocab = text_vocabulary(cfg.tokenizer, train.texts, d.train)
        train_ids, valid_ids = (encode_texts(x, self.tokenizer, self.vocab, d.max_length, d.truncate)
                                for x in (train, valid))
        self.sizes = (len(train_ids), len(valid_ids))
        self.valid_data = text_batches(valid_ids, t.eval_batch_size, shuffle=False)
        try:
            self.train_data = text_batches(train_ids, t.batch_size, seed=t.seed, rank=dist.rank, world=dist.world)
            self._check_fits(train_ids)
            self.model = build_model(cfg, len(self.vocab))
        except ValueError as e:
            raise RnnkitError(str(e)) from None
        self.freezing = freezing(self.model, t, dist)

    def _check_fits(self, train_ids: list[list[int]]) -> None:
        """Refuse a model whose training needs more memory than the device has (weights, gradients, optimizer
        state, and the scores of the longest batch: the vocabulary, or the adaptive head and largest cluster)."""
        cfg, vocab_size = self.cfg, len(self.vocab)
        shapes = shapes_only(lambda: build_model(cfg, vocab_size))
        steps = max(map(len, train_ids), default=0) + 1  # the text, then <eos>
        scores = cfg.train.batch_size * steps * softmax_width(cfg.model, vocab_size)
        needed = model_training_bytes(sum(p.numel() for p in shapes.parameters()), cfg.train, scores)
        check_fits(*needed, self.device, MODEL_ADVICE)

    @classmethod
    def reads_text_from_init(cls, cfg: AutoencoderConfig) -> bool:
        return cfg.tokenizer.from_init

    def on_epoch_start(self, epoch: int, model: nn.Module) -> None:
        """train.freeze / train.unfreeze_after, as the classifier's."""
        self.freezing.apply(epoch, model)

    def _splits(self) -> tuple[Examples, Examples]:
        d = self.cfg.data
        train = read_texts(self.cfg, d.train)
        if d.max_examples and d.max_examples < len(train):  # a random subset, as the classifier's
            chosen = np.random.default_rng(d.split_seed).permutation(len(train))[: d.max_examples]
            train = train.subset(sorted(chosen.tolist()))
        if d.valid:
            return train, read_texts(self.cfg, d.valid)
        if d.valid_fraction == 0:
            raise RnnkitError("no validation data: give --valid FILE or a data.valid_fraction above 0")
        train, valid, _ = split_examples(train, d.valid_fraction, 0.0, "random", d.split_seed)
        return train, valid

    def save_assets(self, out_dir: Path) -> None:
        self.tokenizer.save(out_dir)
        self.vocab.save(out_dir / VOCAB_FILE)

    def vocabularies(self) -> dict[str, Vocab]:
        return {"src": self.vocab, "trg": self.vocab}

    def describe(self) -> str:
        params = sum(p.numel() for p in self.model.parameters())
        m = self.cfg.model
        softmax = f" (adaptive softmax, cutoffs {m.adaptive_cutoffs})" if m.softmax == "adaptive" else ""
        padded = describe_padded(self.model.encoder.rnns, self.device)
        source = " (the --init-from model's)" if self.text_from_init else ""
        return (f"autoencoder: {params:,} parameters; vocabulary {len(self.vocab):,}{source}; {m.layers} x {m.encoder} "
                f"encoder (padded batches {padded}) -> state decoder{softmax}; {self.sizes[0]:,} training / "
                f"{self.sizes[1]:,} validation texts "
                f"({self.train_data.num_tokens:,} tokens to reconstruct)")

    def batch_loss(self, model: nn.Module, batch: ReconstructionBatch, state) -> LossResult:
        return LossResult(*training_loss(model, batch))

    def validate(self, model: nn.Module) -> dict[str, float]:
        metrics = scores(model, self.valid_data, self.device)
        del metrics["tokens"]
        return metrics


#: a reconstruction may run this many tokens past its text's length
EXTRA_TOKENS = 5
#: what a reconstruction can lower when its search does not fit
SEARCH_ADVICE = "beam or batch_size (rnnkit reconstruct --beam, --batch-size)"


class Autoencoder(LoadedModel):
    """A trained sequence autoencoder: ``evaluate(path)`` and ``reconstruct(texts)``."""

    verb = "reconstruct"  # what its encoder's state holds of a text (it is pretraining for classify --init-from)

    def __init__(self, cfg: AutoencoderConfig, model: Seq2SeqModel, tokenizer: Tokenizer, vocab: Vocab,
                 device: torch.device):
        self.config, self.model, self.tokenizer, self.vocab, self.device = cfg, model.eval(), tokenizer, vocab, device

    @staticmethod
    def assets(model_dir: Path) -> tuple[Tokenizer, Vocab]:
        return load_tokenizer(model_dir), Vocab.load(model_dir / VOCAB_FILE)

    @classmethod
    def text_reading(cls, model_dir: Path) -> tuple[Tokenizer, Vocab]:
        return cls.assets(model_dir)

    @classmethod
    def checked_parts(cls, model_dir: Path, cfg: AutoencoderConfig, weights: Path | None = None,
                      dtype: torch.dtype = torch.float32) -> tuple[Tokenizer, Vocab]:
        tokenizer, vocab = cls.assets(model_dir)
        check_model_weights(model_dir, cfg, lambda: build_model(cfg, len(vocab)), weights, dtype)
        return tokenizer, vocab

    @classmethod
    def load(cls, model_dir: Path, cfg: AutoencoderConfig, device: torch.device) -> Autoencoder:
        tokenizer, vocab = cls.checked_parts(model_dir, cfg)
        model = build_model(cfg, len(vocab))
        load_weights(model, model_dir / WEIGHTS_FILE)
        return cls(cfg, model.to(device), tokenizer, vocab, device)

    def vocabularies(self) -> dict[str, Vocab]:
        return {"src": self.vocab, "trg": self.vocab}

    def read_texts(self, path: str | Path) -> list[str]:
        """The texts of a file in the format its name says (one per line; JSONL / CSV / TSV: the text field; a
        folder of .txt files), as :meth:`evaluate` reads them but answered one by one: a blank line followed by a
        text is an error, not skipped."""
        return self._read(path, answered=True).texts

    def _read(self, path: str | Path, max_examples: int = 0, answered: bool = False) -> Examples:
        """A file's texts read by its name, whatever data.format the training data was read in: the one reading
        of both verbs (a file to score or reconstruct need not be in the training file's format)."""
        check_path_argument(path, "path")
        return read_texts(self.config, path, max_examples, fmt="auto", answered=answered)

    def _ids(self, examples: Examples) -> list[list[int]]:
        d = self.config.data
        return encode_texts(examples, self.tokenizer, self.vocab, d.max_length, d.truncate)

    def evaluate(self, path: str | Path, batch_size: int | None = None, max_lines: int = 0) -> dict[str, float]:
        """Reconstruction loss per token, perplexity and teacher-forced token accuracy on a file's texts (its
        first ``max_lines`` when > 0), read by the file's name as :meth:`read_texts` reads them."""
        check_path_argument(path, "path")
        check_int_argument(max_lines, "max_lines", low=0)
        check_int_argument(batch_size, "batch_size", low=1, optional=True)
        ids = self._ids(self._read(path, max_lines))
        batches = text_batches(ids, batch_size or self.config.train.eval_batch_size, shuffle=False)
        return {**scores(self.model, batches, self.device), "examples": len(ids)}

    def reconstruct(self, texts: list[str], batch_size: int | None = None, beam: int = 1,
                    alpha: float = 1.0) -> list[str]:
        """Each text encoded, then decoded from the encoder's state (at most its length + 5 tokens): greedily, or
        by beam search over ``beam`` hypotheses with translate's GNMT length penalty ``alpha`` (0: none; without
        one a wide beam finds the empty text likeliest): what the state holds. The search's memory is checked
        first (tasks/seq2seq.search)."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("reconstruct: texts must be a list of strings")
        check_int_argument(batch_size, "batch_size", low=1, optional=True)
        check_int_argument(beam, "beam", low=1)
        check_alpha(alpha, "reconstruct")
        where = [("<input>", i + 1) for i in range(len(texts))]
        cleaned = [clean_text(t, self.config.data.strip_markup) for t in texts]
        ids = self._ids(Examples("<input>", None, where, texts=cleaned))
        options = SearchOptions(beam, 1, float(alpha), max_length_ratio=1.0, max_length_extra=EXTRA_TOKENS)
        found = search(self.model, ids, batch_size or self.config.train.eval_batch_size, options, self.device,
                       advice=SEARCH_ADVICE)
        return [self.tokenizer.detokenize(self.vocab.decode(hypotheses[0].ids)) for hypotheses in found]


AutoencoderTask.loaded_class = Autoencoder

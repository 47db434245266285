"""Language modelling: the task the trainer runs, and the loaded model users generate with.

``LMTask`` turns a config into data, vocabulary and model and tells the trainer how to score a batch;
``LanguageModel`` is what ``rnnkit.load(DIR)`` returns for an LM directory: ``generate``,
``evaluate``.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

from rnnkit.arguments import check_int_argument, check_path_argument
from rnnkit.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    check_model_weights,
    load_weights,
)
from rnnkit.config import load_yaml
from rnnkit.data.lm import Batch, encode_lines, make_batches, read_corpus_lines
from rnnkit.data.readers import check_file
from rnnkit.data.text_decoder import TextDecoder
from rnnkit.data.tokenizers import SPM_FILE, TOKENIZER_FILE, CharTokenizer, Tokenizer, build_tokenizer, load_tokenizer
from rnnkit.data.vocab import SPECIALS, OovCount, Vocab, oov_warning, reused_vocabulary
from rnnkit.distributed import DistInfo
from rnnkit.errors import RnnkitError
from rnnkit.memory import check_fits, inference_bytes, training_bytes
from rnnkit.metrics import loss_metrics
from rnnkit.models.lm import RNNLanguageModel, check_softmax
from rnnkit.nn.rnn import describe_kernels
from rnnkit.search import SamplingConfig, sample_tokens
from rnnkit.tasks.base import LoadedModel, LossResult, Task
from rnnkit.tasks.lm_config import DataConfig, LMConfig

#: the vocabulary's file in a model directory (id -> token)
VOCAB_FILE = "vocab.json"
#: training refuses a text of which more than this is <unk>: the model would learn to predict <unk>
TRAIN_OOV_LIMIT = 0.5


def lm_loss(model: nn.Module, batch: Batch, state) -> tuple[torch.Tensor, object, object]:
    """Summed cross-entropy of one batch (padding ignored), the model's new state and its output."""
    out = model(batch.inputs, state)
    return out.loss_sum(batch.targets), out.state, out


def lm_metrics(loss_sum: float, count: int, char_level: bool) -> dict[str, float]:
    """Loss, perplexity and token count of a summed loss; bits per character for a char model."""
    return loss_metrics(loss_sum, count, bits=char_level)


@torch.no_grad()
def evaluate_sequences(model: nn.Module, sequences: list[list[int]], mode: str, batch_size: int, bptt: int,
                       device: torch.device, char_level: bool) -> dict[str, float]:
    """Perplexity of ``sequences`` (loss in nats per token; bits per char for char models)."""
    was_training = model.training
    model.eval()
    data = make_batches(sequences, mode, min(batch_size, _max_columns(sequences, mode, batch_size)), bptt,
                        shuffle=False, pad_tail=True)
    total, count, state = 0.0, 0, None
    for spec in data.plan(0):
        batch = data.batch(spec).to(device)
        loss_sum, new_state, _ = lm_loss(model, batch, state if batch.carry_state else None)
        state = new_state
        total += float(loss_sum)
        count += batch.num_tokens
    model.train(was_training)
    return lm_metrics(total, count, char_level)


def _max_columns(sequences: list[list[int]], mode: str, wanted: int) -> int:
    """Streams need at least two steps per column: shrink the batch for very short texts."""
    if mode != "stream":
        return wanted
    tokens = sum(len(s) for s in sequences)
    return max(1, min(wanted, (tokens - 1) // 2))


def _reused_vocabulary_advice(vocab_from: Path, train_file: str) -> str:
    """What a training text mostly outside the vocabulary of model directory ``vocab_from`` means. Built from this
    very file (the run's own folder on a resume), the file changed since; else it is a same-task --init-from
    model's (:func:`~rnnkit.data.vocab.reused_vocabulary`)."""
    source = load_yaml(vocab_from / CONFIG_FILE)
    built_from = source.get("data", {}).get("train") if isinstance(source.get("data"), dict) else None
    if built_from == train_file:
        return f"the run keeps the vocabulary that {vocab_from} built from this file: was the file changed since?"
    return reused_vocabulary()


def _check_training_vocabulary(vocab: Vocab, oov: OovCount, cfg: LMConfig, vocab_from: Path | None) -> None:
    """A vocabulary of only the specials, or a text mostly outside the vocabulary, trains a model that
    predicts <unk> well: a fine perplexity that means nothing. ``vocab_from``: the model directory whose vocabulary
    the run keeps (not built from this text now, so tokenizer.vocab_size and min_freq do not change it)."""
    t = cfg.tokenizer
    if len(vocab) <= len(SPECIALS):
        raise RnnkitError(f"the vocabulary holds only the special tokens {' '.join(SPECIALS)}: no token of the "
                          f"training text is kept with tokenizer.min_freq {t.min_freq} and tokenizer.vocab_size "
                          f"{t.vocab_size}", cfg.data.train)
    if oov.rate > TRAIN_OOV_LIMIT:
        fix = (_reused_vocabulary_advice(vocab_from, cfg.data.train) if vocab_from is not None else
               f"raise tokenizer.vocab_size (now {t.vocab_size}) or lower tokenizer.min_freq (now {t.min_freq})")
        raise RnnkitError(f"{oov.rate:.0%} of the training tokens ({oov.oov:,} of {oov.tokens:,}) are outside the "
                          f"vocabulary of {len(vocab):,} and would be trained as <unk>: {fix}", cfg.data.train)


def _nothing_left(d: DataConfig, tokens: int) -> str:
    """Why a text gave no sequences at all (the reason depends on the data mode)."""
    if d.mode == "windows":
        return f"too short: {tokens} token(s), and each prediction needs the data.window {d.window} tokens before it"
    reason = "no sentences left: every line is empty or filtered out by length"
    if d.min_length or d.max_length:
        reason += f" (data.min_length {d.min_length}, data.max_length {d.max_length})"
    return reason


def _longest_batch(sequences: list[list[int]], cfg: LMConfig) -> int:
    """Time steps of the longest training batch (for the memory estimate of its logits)."""
    if cfg.data.mode == "stream":  # a column holds 1 / batch_size of the text
        return min(cfg.train.bptt, sum(map(len, sequences)) // cfg.train.batch_size + 1)
    return max(len(s) for s in sequences)


def _check_data_config(cfg: LMConfig) -> None:
    """What the data keys must say before anything is read."""
    d = cfg.data
    if not d.train:
        raise RnnkitError("no training data: give --data FILE (or set data.train in the recipe)")
    if d.mode not in ("stream", "sentences", "windows"):
        raise RnnkitError(f"unknown data.mode '{d.mode}' (stream | sentences | windows)")
    if cfg.train.variable_bptt and d.mode != "stream":
        raise RnnkitError(f"train.variable_bptt varies the BPTT length of running text: it needs "
                          f"data.mode stream, not {d.mode}")
    if d.test:
        check_file(d.test)  # scored after training: a wrong path must not wait for that
    check_softmax(cfg.model, cfg.tokenizer.vocab_size or None)  # the vocabulary built later is checked again


def _read_splits(d: DataConfig) -> tuple[list[str], list[str]]:
    """Training and validation lines: the valid file, else the last ``valid_fraction`` of train held out."""
    train_lines = read_corpus_lines(d.train, d)
    if d.valid:
        return train_lines, read_corpus_lines(d.valid, d)
    if d.valid_fraction > 0 and len(train_lines) >= 10:
        cut = len(train_lines) - max(1, int(len(train_lines) * d.valid_fraction))
        return train_lines[:cut], train_lines[cut:]
    return train_lines, train_lines  # tiny texts (the fable): report the training loss as the validation figure


class LMTask(Task):
    """Data, vocabulary and model of a language-model run, as the trainer needs them."""

    name = "lm"
    config_class = LMConfig
    selection = ("loss", "min")
    asset_files = (VOCAB_FILE, TOKENIZER_FILE, SPM_FILE)
    required_files = (VOCAB_FILE,)
    read_limits = {TOKENIZER_FILE: 1 << 20, VOCAB_FILE: 1 << 30, SPM_FILE: 1 << 30}
    #: what decides the weights' meaning: how text becomes ids, and what the ids feed
    bound_config_keys = ("task", "data.mode", "data.window", "data.split_sentences", "tokenizer.kind",
                         "tokenizer.lowercase", "tokenizer.split_punctuation", "model.cell", "model.embedding_size",
                         "model.hidden_size", "model.layers", "model.tie_weights", "model.softmax",
                         "model.adaptive_cutoffs", "model.adaptive_div", "data.strip_markup")
    resumable_keys = ()

    def __init__(self, cfg: LMConfig, dist: DistInfo, device: torch.device, vocab_from: Path | None = None,
                 param_bytes: int = 4):
        super().__init__(cfg, dist, device, vocab_from)
        d, t = cfg.data, cfg.train
        _check_data_config(cfg)
        train_lines, valid_lines = _read_splits(d)
        self.valid_is_train = valid_lines is train_lines
        if vocab_from is not None:
            self.tokenizer, self.vocab = load_tokenizer(vocab_from), Vocab.load(vocab_from / VOCAB_FILE)
        else:
            self.tokenizer = build_tokenizer(cfg.tokenizer, train_lines)
            self.vocab = Vocab.build((self.tokenizer.tokenize(x) for x in train_lines),
                                     cfg.tokenizer.vocab_size, cfg.tokenizer.min_freq)
        self.char_level = isinstance(self.tokenizer, CharTokenizer)
        train_oov, valid_oov = OovCount(), OovCount()
        train_seqs = encode_lines(train_lines, self.tokenizer, self.vocab, d, train_oov)
        self.valid_seqs = encode_lines(valid_lines, self.tokenizer, self.vocab, d, valid_oov)
        if not train_seqs:
            raise RnnkitError(_nothing_left(d, train_oov.tokens), d.train)
        _check_training_vocabulary(self.vocab, train_oov, cfg, vocab_from)
        check_softmax(cfg.model, len(self.vocab))  # before the memory estimate counts the clusters
        try:
            self.train_data = make_batches(train_seqs, d.mode, t.batch_size, t.bptt, t.variable_bptt,
                                           seed=t.seed, rank=dist.rank, world=dist.world)
        except ValueError as e:
            raise RnnkitError(f"cannot batch the training data: {e}", d.train) from None
        self._check_validation_data(valid_oov.tokens)
        self.unknown_counts = {"train": train_oov, "valid": valid_oov}  # (warn_unknown_text)
        check_fits(*training_bytes(cfg, len(self.vocab), _longest_batch(train_seqs, cfg), param_bytes), device)
        try:
            self.model = RNNLanguageModel(cfg.model, len(self.vocab))
        except ValueError as e:  # an unknown model.cell
            raise RnnkitError(f"model.cell: {e}") from None

    def warn_unknown_text(self, vocab_from_init: bool) -> None:
        """The --init-from model's vocabulary (kept by a strict init, as ULMFiT's stage 2 fine-tunes on the task's
        text) may lack much of this text: the training and validation files are each said above
        :data:`~rnnkit.data.vocab.OOV_WARN_RATE`, as evaluate says it. A vocabulary built from the training text
        leaves out only what tokenizer.vocab_size / min_freq cut, as much of both: then only a validation text far
        more out of it than the training text (another language, another tokenization) is said."""
        d, train, valid = self.cfg.data, self.unknown_counts["train"], self.unknown_counts["valid"]
        if vocab_from_init:
            held_out = not d.valid and not self.valid_is_train  # the file's last lines validate: count the file
            whole = OovCount(train.tokens + valid.tokens, train.oov + valid.oov) if held_out else train
            oov_warning(whole, d.train, len(self.vocab), "trained", advice=reused_vocabulary())
            if d.valid:
                oov_warning(valid, d.valid, len(self.vocab), advice=reused_vocabulary())
        elif d.valid and valid.rate > 2 * train.rate:
            oov_warning(valid, d.valid, len(self.vocab))

    def _check_validation_data(self, tokens: int) -> None:
        """Validation data that gives no batch fails now, not after the first epoch."""
        d, t = self.cfg.data, self.cfg.train
        where = d.valid or d.train
        if not self.valid_seqs:
            raise RnnkitError(f"validation data: {_nothing_left(d, tokens)}", where)
        try:
            make_batches(self.valid_seqs, d.mode, min(t.eval_batch_size, _max_columns(self.valid_seqs, d.mode,
                                                                                      t.eval_batch_size)),
                         t.bptt, shuffle=False, pad_tail=True)
        except ValueError as e:
            raise RnnkitError(f"cannot batch the validation data: {e}", where) from None

    def save_assets(self, out_dir: Path) -> None:
        self.tokenizer.save(out_dir)
        self.vocab.save(out_dir / VOCAB_FILE)

    def vocabularies(self) -> dict[str, Vocab]:
        """The vocabulary by the role the model's ``vocab_parameters()`` name (weight transfer maps rows by it)."""
        return {"vocab": self.vocab}

    def describe(self) -> str:
        """One line saying what runs, and on which kernel path (DESIGN: never fall off it silently)."""
        m = self.cfg.model
        kernel = type(self.model.rnns[0]).__name__
        path = describe_kernels(self.model.rnns, self._training_steps(), self.cfg.train.batch_size, self.device,
                                training=True)
        drop = ", DropConnect through functional_call" if m.weight_drop else ""
        params = sum(p.numel() for p in self.model.parameters())
        held_out = ("; validation scores the training text itself (no --valid file, and under 10 lines or "
                    "data.valid_fraction 0 to hold out)" if self.valid_is_train else "")
        softmax = f"; adaptive softmax, cutoffs {m.adaptive_cutoffs}" if m.softmax == "adaptive" else ""
        return (f"lm: {params:,} parameters; vocabulary {len(self.vocab):,}; {m.layers} x torch.nn.{kernel}"
                f" ({path}{drop}){softmax}; {self.train_data.num_tokens:,} training tokens{held_out}")

    def _training_steps(self) -> int | None:
        """Time steps per training batch (None: each sentence batch has its own length)."""
        d = self.cfg.data
        return {"stream": self.cfg.train.bptt, "windows": d.window}.get(d.mode)

    def batch_loss(self, model: nn.Module, batch: Batch, state) -> LossResult:
        loss_sum, new_state, out = lm_loss(model, batch, state)
        penalty = 0.0
        t = self.cfg.train
        if t.activation_reg:  # AR (Merity et al. 2017): keep the dropped outputs small
            penalty = penalty + t.activation_reg * out.last_dropped.float().pow(2).mean()
        if t.temporal_reg:  # TAR: keep consecutive (undropped) outputs close
            h = out.last_hidden.float()
            penalty = penalty + t.temporal_reg * (h[1:] - h[:-1]).pow(2).mean()
        return LossResult(loss_sum, batch.num_tokens, new_state, penalty)

    def lr_scale(self, batch: Batch) -> float:
        """AWD-LSTM scales the step with the random BPTT length, so every token weighs the same."""
        return batch.inputs.size(0) / self.cfg.train.bptt if self.cfg.train.variable_bptt else 1.0

    def parameter_groups(self, model: RNNLanguageModel) -> list[tuple[str, list[nn.Parameter], int]]:
        """ULMFiT's discriminative fine-tuning (Howard & Ruder 2018, sec. 3.2), for its stage 2 (an LM fine-tuned
        on the target task's text): the output layer (the full softmax, or the adaptive softmax's head and clusters
        with their projections) at depth 0, each recurrent layer from the top at 1, 2, ..., the embedding deepest.

        With model.tie_weights the embedding matrix is the output layer's weight, one parameter: it trains in the
        output's group, named ``output+embedding``, at the full rate. It is the output layer (every prediction's
        softmax gradient reaches all its rows, the embedding's only the rows of the batch's words), and stage 2
        adapts it to the target text's word distribution; deepest, the output would learn D ** (layers + 1) times
        slower. fastai's ULMFiT LM does the same: its split puts the encoder with the decoder in the top group.
        DropConnect (model.weight_drop) masks the recurrent weights inside the forward: no parameter of its own."""
        layers = len(model.rnns)
        output = list(model.output.parameters())
        tied = any(p is model.embedding.weight for p in output)
        groups = [("output+embedding" if tied else "output", output, 0)]
        groups += [(f"rnns.{k}", list(model.rnns[k].parameters()), layers - k) for k in reversed(range(layers))]
        if not tied:
            groups.append(("embedding", [model.embedding.weight], layers + 1))
        return groups

    def validate(self, model: nn.Module) -> dict[str, float]:
        t = self.cfg.train
        return evaluate_sequences(model, self.valid_seqs, self.cfg.data.mode, t.eval_batch_size, t.bptt,
                                  self.device, self.char_level)


# ---------------------------------------------------------------------------------------------------- generation

#: samples generated together (one batch); more are drawn chunk after chunk, so memory stays bounded
MAX_CHUNK = 64
#: new tokens one chunk may hold (rows x n): long samples are drawn fewer at a time, one from n = 1M on
CHUNK_TOKENS = 1 << 20


def chunk_size(n: int, num_samples: int) -> int:
    """How many samples to generate together."""
    return max(1, min(MAX_CHUNK, num_samples, CHUNK_TOKENS // max(n, 1)))


@dataclasses.dataclass(frozen=True)
class TextPiece:
    """A piece of generated text. ``sample``: which sample (from 0); ``end``: its last piece, which
    also gives ``tokens`` (new tokens in the sample) and ``stopped`` (it ended with <eos>, not at n)."""

    sample: int
    text: str
    end: bool = False
    tokens: int = 0
    stopped: bool = False


@dataclasses.dataclass
class _Plan:
    """What every chunk of one generate call shares."""

    ids: list[int]  # the prompt (with <bos> / <eos> start)
    n: int
    sampling: SamplingConfig
    eos_id: int | None  # None: go on past <eos>
    min_length: int
    banned: list[int]
    prompt_tokens: list[str]  # printed before each sample (include_prompt)


#: the command-line option of each generate argument, for messages that fit both
_OPTIONS = {"n": "-n", "temperature": "--temperature", "top_k": "--top-k", "top_p": "--top-p", "seed": "--seed",
            "num_samples": "--num-samples", "min_length": "--min-length"}
_MIN_INT = {"n": 0, "top_k": 0, "num_samples": 1, "min_length": 0}


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_generate_args(prompt, seed, **args) -> None:
    """TypeError for a wrong type (Python callers), RnnkitError for a value out of range; both name it."""
    if not isinstance(prompt, str):
        raise TypeError(f"generate: prompt must be a string, got {prompt!r}")
    for name, value in args.items():
        if name in _MIN_INT:
            if not _is_int(value):
                raise TypeError(f"generate: {name} must be an integer, got {value!r}")
            if value < _MIN_INT[name]:
                raise RnnkitError(f"generate: {name} ({_OPTIONS[name]}) must be >= {_MIN_INT[name]}, got {value}")
        elif name in _OPTIONS:  # temperature, top_p: checked for range by SamplingConfig
            if not isinstance(value, numbers.Real) or isinstance(value, bool):
                raise TypeError(f"generate: {name} must be a number, got {value!r}")
        elif not isinstance(value, bool):
            raise TypeError(f"generate: {name} must be True or False, got {value!r}")
    if seed is not None:
        if not _is_int(seed):
            raise TypeError(f"generate: seed must be an integer or None, got {seed!r}")
        if not -(2**63) <= seed < 2**64:
            raise RnnkitError(f"generate: seed (--seed) must fit in 64 bits, got {seed}")


class LanguageModel(LoadedModel):
    """A trained LM loaded from its directory: ``generate`` text, ``evaluate`` perplexity."""

    verb = "generate"

    def __init__(self, model_dir: Path, cfg: LMConfig, tokenizer: Tokenizer, vocab: Vocab,
                 model: RNNLanguageModel, device: torch.device):
        self.model_dir, self.config, self.tokenizer, self.vocab = model_dir, cfg, tokenizer, vocab
        self.model, self.device = model.eval(), device

    def vocabularies(self) -> dict[str, Vocab]:
        """The vocabulary by the role the model's ``vocab_parameters()`` name (weight transfer maps rows by it)."""
        return {"vocab": self.vocab}

    @classmethod
    def text_reading(cls, model_dir: Path) -> tuple[Tokenizer, Vocab]:
        return load_tokenizer(model_dir), Vocab.load(model_dir / VOCAB_FILE)

    @classmethod
    def checked_parts(cls, model_dir: Path, cfg: LMConfig, weights: Path | None = None,
                      dtype: torch.dtype = torch.float32) -> tuple[Tokenizer, Vocab]:
        """The tokenizer and vocabulary of ``model_dir`` (each file type-checked), once the header of
        ``weights`` (default: its model.safetensors) matches the model ``cfg`` and the vocabulary describe,
        in ``dtype``, and their fingerprint matches the config, vocabulary and tokenizer: nothing is allocated
        before (:func:`~rnnkit.checkpoint.check_model_weights`)."""
        tokenizer = load_tokenizer(model_dir)
        vocab = Vocab.load(model_dir / VOCAB_FILE)
        check_model_weights(model_dir, cfg, lambda: RNNLanguageModel(cfg.model, len(vocab)), weights, dtype)
        return tokenizer, vocab

    @classmethod
    def load(cls, model_dir: Path, cfg: LMConfig, device: torch.device) -> LanguageModel:
        tokenizer, vocab = cls.checked_parts(model_dir, cfg)
        check_fits(*inference_bytes(cfg, len(vocab)), device)
        model = RNNLanguageModel(cfg.model, len(vocab))
        load_weights(model, model_dir / WEIGHTS_FILE)
        return cls(model_dir, cfg, tokenizer, vocab, model.to(device), device)

    # ------------------------------------------------------------------ generation
    def stops_at_eos(self, sentence: bool = False) -> bool:
        """Whether generation ends a sample at <eos> by default (char models go on: it is a line break)."""
        return sentence or not isinstance(self.tokenizer, CharTokenizer)

    def kernel_path(self, verb: str, n: int = 0, num_samples: int = 1, batch_size: int = 0) -> str:
        """One line saying which kernel ``generate`` (per step) or ``evaluate`` (per batch) runs on."""
        if verb == "generate":
            steps = self.config.data.window if self.config.data.mode == "windows" else 1
            batch = chunk_size(n, num_samples)
        else:
            steps = {"stream": self.config.train.bptt, "windows": self.config.data.window}.get(self.config.data.mode)
            batch = batch_size or self.config.train.eval_batch_size
        layers = self.model.rnns
        path = describe_kernels(layers, steps, batch, self.device, training=False)
        return f"{verb}: {len(layers)} x torch.nn.{type(layers[0]).__name__} on {path}"

    def prompt_ids(self, prompt: str, allow_unk: bool = False) -> list[int]:
        """Token ids of a prompt; an unknown token is an error unless ``allow_unk`` maps it to <unk>."""
        tokens: list[str] = []
        for i, line in enumerate(prompt.split("\n")):  # a line break in the prompt is a line end: <eos>
            tokens += (["<eos>"] if i else []) + self.tokenizer.tokenize(line)
        unknown = [tok for tok in tokens if tok not in self.vocab]
        if unknown and not allow_unk:
            shown = ", ".join(repr(u) for u in dict.fromkeys(unknown))
            raise RnnkitError(f"prompt has {len(unknown)} token(s) not in the model's vocabulary of "
                              f"{len(self.vocab)}: {shown} (use --allow-unk to read them as <unk>)")
        return self.vocab.encode(tokens)

    def generate(self, prompt: str = "", n: int = 32, *, greedy: bool = False, temperature: float = 1.0,
                 top_k: int = 0, top_p: float = 1.0, seed: int | None = None, num_samples: int = 1,
                 stop_at_eos: bool | None = None, allow_unk: bool = False, sentence: bool = False,
                 min_length: int = 0, include_prompt: bool = False) -> list[str]:
        """Continue ``prompt`` by up to ``n`` tokens, ``num_samples`` times: the list of texts.

        ``sentence=True`` is seed 001's sentence mode: start at <bos>, never emit <unk> (masking it is
        the same as resampling until another token comes) and stop at <eos>. ``min_length``: at least
        this many tokens before <eos> may end a sample. ``stop_at_eos`` defaults to True for word and
        subword models and False for char models (where <eos> is just a line break). Samples are drawn
        up to :data:`MAX_CHUNK` at a time (see :meth:`stream`).
        """
        pieces: list[list[str]] = [[] for _ in range(num_samples if _is_int(num_samples) else 0)]
        for piece in self.stream(prompt, n, greedy=greedy, temperature=temperature, top_k=top_k, top_p=top_p,
                                 seed=seed, num_samples=num_samples, stop_at_eos=stop_at_eos,
                                 allow_unk=allow_unk, sentence=sentence, min_length=min_length,
                                 include_prompt=include_prompt):
            pieces[piece.sample].append(piece.text)
        return ["".join(p) for p in pieces]

    def stream(self, prompt: str = "", n: int = 32, *, greedy: bool = False, temperature: float = 1.0,
               top_k: int = 0, top_p: float = 1.0, seed: int | None = None, num_samples: int = 1,
               stop_at_eos: bool | None = None, allow_unk: bool = False, sentence: bool = False,
               min_length: int = 0, include_prompt: bool = False,
               on_tokens: Callable[[int], None] | None = None) -> Iterator[TextPiece]:
        """:meth:`generate` as it happens: :class:`TextPiece` s, in sample order.

        Samples are drawn in chunks of up to :data:`MAX_CHUNK` (fewer when ``n`` is large, so a chunk
        holds at most :data:`CHUNK_TOKENS` new tokens): memory does not grow with ``num_samples``. A
        chunk of one sample comes token by token; a larger chunk one whole sample per piece when it is
        done. A seed gives the same samples for the same arguments (the chunks share its generator).
        ``on_tokens(k)`` is called after each step with the number of tokens it produced (progress).
        """
        _check_generate_args(prompt=prompt, n=n, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
                             num_samples=num_samples, min_length=min_length, greedy=greedy,
                             allow_unk=allow_unk, sentence=sentence, include_prompt=include_prompt)
        if stop_at_eos is not None and not isinstance(stop_at_eos, bool):
            raise TypeError(f"generate: stop_at_eos must be True, False or None, got {stop_at_eos!r}")
        sampling = SamplingConfig(greedy, float(temperature), top_k, float(top_p))
        try:
            sampling.validate()
        except ValueError as e:
            raise RnnkitError(f"generate: {e}") from None
        if stop_at_eos is None:
            stop_at_eos = self.stops_at_eos(sentence)
        ids = self.prompt_ids(prompt, allow_unk) if prompt else []
        if sentence or self.config.data.mode == "sentences":
            ids = [Vocab.bos_id, *ids]
        if not ids:
            ids = [Vocab.eos_id]  # running text: an empty prompt starts as after a line end
        plan = _Plan(ids, n, sampling, Vocab.eos_id if stop_at_eos else None, min_length,
                     [Vocab.pad_id, Vocab.bos_id] + ([Vocab.unk_id] if sentence else []),
                     self.vocab.decode(ids) if include_prompt else [])
        return self._stream_chunks(plan, num_samples, seed, on_tokens)

    @torch.no_grad()
    def _stream_chunks(self, plan: _Plan, num_samples: int, seed: int | None,
                       on_tokens: Callable[[int], None] | None) -> Iterator[TextPiece]:
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        chunk = chunk_size(plan.n, num_samples)
        for first in range(0, num_samples, chunk):
            yield from self._stream_chunk(plan, first, min(chunk, num_samples - first), generator, on_tokens)

    def _stream_chunk(self, plan: _Plan, first: int, rows: int, generator: torch.Generator | None,
                      on_tokens: Callable[[int], None] | None) -> Iterator[TextPiece]:
        windows = self.config.data.mode == "windows"
        # the seed-002 model always sees the last `window` words from a zero state; the whole prompt
        # is still what include_prompt prints
        context = plan.ids[-self.config.data.window:] if windows else plan.ids
        x = torch.tensor(context, dtype=torch.long, device=self.device).unsqueeze(1).repeat(1, rows)
        out = self.model(x, None)
        step = self._window_step_fn() if windows else self._step_fn()
        decoders = [TextDecoder(self.tokenizer) for _ in range(rows)]
        held: list[list[str]] = [[] for _ in range(rows)]
        counts, stopped = [0] * rows, [False] * rows
        if plan.prompt_tokens:
            for decoder, texts in zip(decoders, held, strict=True):
                texts.extend(decoder.push(tok) for tok in plan.prompt_tokens)
            if rows == 1 and held[0]:
                yield TextPiece(first, "".join(held[0]))
                held[0].clear()
        itos = self.vocab.itos
        for new in sample_tokens(step, out.logits[-1].to("cpu"), x if windows else out.state, plan.n,
                                 plan.sampling, plan.eos_id, generator, plan.banned, plan.min_length):
            for b, i in enumerate(new):
                if i is None:
                    continue
                counts[b] += 1
                stopped[b] = i == plan.eos_id
                text = decoders[b].push(itos[i])
                if rows == 1:
                    if text:
                        yield TextPiece(first, text)
                else:
                    held[b].append(text)
            if on_tokens is not None:
                on_tokens(sum(i is not None for i in new))
        for b in range(rows):
            yield TextPiece(first + b, "".join(held[b]) + decoders[b].flush(), True, counts[b], stopped[b])

    def _step_fn(self):
        device = self.device

        def step(ids: torch.Tensor, state):
            out = self.model(ids.to(device).unsqueeze(0), state)
            return out.logits[0].to("cpu"), out.state

        return step

    def _window_step_fn(self):
        window, device = self.config.data.window, self.device

        def step(ids: torch.Tensor, recent: torch.Tensor):
            recent = torch.cat([recent, ids.to(device).unsqueeze(0)])[-window:]
            return self.model(recent, None).logits[-1].to("cpu"), recent

        return step

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, path: str | Path, batch_size: int | None = None, max_lines: int = 0) -> dict[str, float]:
        """Perplexity on a text file read like the training data.

        The whole file is scored (in stream mode every token after the first): the training config's
        ``data.max_lines`` and sentence-length filters shape training only. ``max_lines`` > 0 scores the
        first lines (sentences, when the model splits reviews into them). Tokens outside the vocabulary
        are scored as <unk>: ``oov`` counts them and ``oov_rate`` is their share of the text's tokens
        (a warning on stderr above :data:`~rnnkit.data.vocab.OOV_WARN_RATE`).
        """
        check_path_argument(path, "path")
        check_int_argument(batch_size, "batch_size", low=1, optional=True)
        check_int_argument(max_lines, "max_lines", low=0)
        d = dataclasses.replace(self.config.data, max_lines=max_lines, min_length=0, max_length=0)
        lines = read_corpus_lines(str(path), d)
        oov = OovCount()
        seqs = encode_lines(lines, self.tokenizer, self.vocab, d, oov)
        if not seqs:
            raise RnnkitError(f"nothing to score: {_nothing_left(d, oov.tokens)}", path)
        try:
            metrics = self._score(seqs, batch_size or self.config.train.eval_batch_size)
        except ValueError as e:  # the batcher's complaint, e.g. a text too short to make a stream
            raise RnnkitError(f"cannot score this text: {e}", path) from None
        oov_warning(oov, path, len(self.vocab))
        return {**metrics, "oov": oov.oov, "oov_rate": oov.rate}

    def _score(self, seqs: list[list[int]], batch_size: int) -> dict[str, float]:
        """Metrics of encoded sequences (the NumPy backend overrides this)."""
        return evaluate_sequences(self.model, seqs, self.config.data.mode, batch_size, self.config.train.bptt,
                                  self.device, isinstance(self.tokenizer, CharTokenizer))


LMTask.loaded_class = LanguageModel  # (defined after the task: it is the bigger half of this module)

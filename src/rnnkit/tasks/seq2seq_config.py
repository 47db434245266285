"""The seq2seq task's config sections (torch-free: the model module and ``rnnkit --help`` import them).

``data`` says where the pairs come from (TSV, aligned files, or a generated toy task), ``source`` and
``target`` how each side is tokenized (the LM's tokenizer keys), ``model`` the encoder-decoder and
``train`` the shared :class:`rnnkit.config.TrainConfig` with the seq2seq keys added (batch unit, label
smoothing, the selection metric and how validation decodes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rnnkit.config import TaskConfig, TrainConfig, at_least, check_ranges, fraction
from rnnkit.errors import RnnkitError
from rnnkit.tasks.lm_config import TokenizerConfig

# the choices of the model's keys (nn/ checks the same names: tests/test_seq2seq_task.py holds them equal)
CELLS = ("rnn_tanh", "rnn_relu", "gru", "lstm")
DECODERS = ("repeat", "state", "peek", "attention")
SCORES = ("bahdanau", "dot", "general")
BRIDGES = ("zero", "last", "learned")
INITS = ("default", "uniform", "xavier")
TOY_TASKS = ("copy", "reverse", "sort", "digits-to-words", "pig-latin")  # rnnkit.data.toy.TASKS
SPLITS = ("tail", "random")
TOO_LONG = ("drop", "error")
BATCH_UNITS = ("sentences", "tokens")
SELECTIONS = {"bleu": "max", "loss": "min"}
BLEU_TOKENIZERS = ("13a", "intl", "zh", "ja-mecab", "ko-mecab", "char", "none", "flores101", "flores200")


@dataclass
class Seq2SeqDataConfig:
    train: str | None = None  # TSV pairs (source<TAB>target, .gz ok); aligned: the stem (.../train) or source file
    valid: str | None = None  # same form; when absent, valid_fraction of train is held out
    test: str | None = None  # same form; scored after training
    src: str | None = None  # aligned files: the source marker, a suffix (de: train.de) or a name part (content)
    trg: str | None = None  # aligned files: the target marker (en: train.en; title: title-test.txt)
    toy: str = ""  # no train file: generate this toy task (copy | reverse | sort | digits-to-words | pig-latin)
    toy_size: int = at_least(10000, 10)  # toy pairs generated (80/10/10 train/valid/test, as `rnnkit data toy`)
    valid_fraction: float = fraction(0.0)  # held out of train when no valid file (seed 000: 0.2)
    test_fraction: float = fraction(0.0)  # held out of train when no test file
    split: str = "tail"  # tail: the last pairs are held out (seed 000, Keras) | random (by train.seed)
    max_pairs: int = at_least(0, 0)  # read the first N pairs of each file only (seed 000: 10000); 0 = all
    max_src_length: int = at_least(0, 0)  # source tokens; longer pairs are dropped (or refused); 0 = no limit
    max_trg_length: int = at_least(0, 0)  # target tokens; 0 = no limit
    too_long: str = "drop"  # drop (counted, printed) | error (names the file and line)

    def _check_toy(self) -> None:
        """A generated toy task is all the data: keys about files would do nothing."""
        given = [f"data.{split} {path}" for split, path in (("valid", self.valid), ("test", self.test)) if path]
        if given:
            raise RnnkitError(f"data.toy '{self.toy}' generates all the pairs (80/10/10 train/valid/test) when no "
                              f"--data is given: leave out {given[0]} (--valid / --test), or give --data too")
        idle = [key for key in ("src", "trg", "valid_fraction", "test_fraction", "max_pairs")
                if getattr(self, key) not in (None, 0, 0.0)]
        if idle:
            raise RnnkitError(f"data.{idle[0]} does nothing with data.toy '{self.toy}', which generates its pairs "
                              "split 80/10/10 (data.toy_size says how many)")

    def check(self) -> None:
        """What no data can be read with, naming the key (before anything is read)."""
        _choice("data.split", self.split, SPLITS)
        _choice("data.too_long", self.too_long, TOO_LONG)
        if self.toy:
            _choice("data.toy", self.toy, TOY_TASKS)
        if self.toy and not self.train:  # the toy task is the data (a toy recipe given --data reads that instead)
            self._check_toy()
        elif not self.train:
            raise RnnkitError("no training data: give --data FILE or FOLDER (or set data.train, or data.toy to "
                              "generate a toy task)")
        if (self.src is None) != (self.trg is None):
            raise RnnkitError(f"data.{'trg' if self.trg is None else 'src'} is missing: aligned files need both "
                              "data.src and data.trg (TSV pairs need neither)")
        if self.src is not None and (not self.src or self.src == self.trg):
            raise RnnkitError(f"data.src and data.trg must be two different non-empty markers, got {self.src!r} "
                              f"and {self.trg!r}")
        if self.valid_fraction + self.test_fraction >= 1:
            raise RnnkitError(f"data.valid_fraction + data.test_fraction must stay below 1, got "
                              f"{self.valid_fraction} + {self.test_fraction}")


@dataclass
class TargetTokenizerConfig(TokenizerConfig):
    shared: bool = False  # one tokenizer and vocabulary for both sides: the source section's, built on both sides' text

    def check(self) -> None:
        """With ``shared`` the source section decides: a target key set besides it would do nothing."""
        if not self.shared:
            return
        defaults = TargetTokenizerConfig(shared=True)
        changed = [key for key in vars(defaults) if getattr(self, key) != getattr(defaults, key)]
        if changed:
            raise RnnkitError(f"target.{changed[0]} does nothing with target.shared: true (the source section's "
                              "tokenizer and vocabulary serve both sides): set it under source")


@dataclass
class Seq2SeqModelConfig:
    cell: str = "lstm"  # rnn_tanh | rnn_relu | gru | lstm, for encoder and decoder
    src_embedding_size: int = at_least(256, 0)  # source token embeddings; 0 = one-hot input (seed 000)
    trg_embedding_size: int = at_least(256, 0)  # target token embeddings; 0 = one-hot input (seed 000)
    hidden_size: int = at_least(256, 1)  # units per layer (per direction in a bidirectional encoder)
    decoder_hidden_size: int = at_least(0, 0)  # decoder units per layer; 0 = hidden_size (JoeyNMT: 512 after 2 x 256)
    encoder_layers: int = at_least(1, 1)  # stacked encoder layers
    decoder_layers: int = at_least(1, 1)  # stacked decoder layers
    bidirectional: bool = False  # encoder reads both ways; outputs and final states are 2 x hidden_size
    decoder: str = "attention"  # repeat | state | peek | attention (seed 004's four styles)
    attention: str = "bahdanau"  # attention decoder's score: bahdanau (additive) | dot | general (Luong)
    input_feeding: bool = False  # attention: feed the previous attentional vector back in (Luong 3.3; a step loop)
    bridge: str = "last"  # decoder's initial state: zero | last (encoder's final state) | learned (tanh(W s))
    dropout: float = fraction(0.0)  # on embeddings, between layers and before the output layer
    tie_embeddings: bool = False  # the output layer shares the target embedding (trg_embedding_size = decoder size)
    init: str = "default"  # default (PyTorch's) | uniform (every weight U(-0.1, 0.1)) | xavier (biases 0)

    @property
    def decoder_size(self) -> int:
        """Units per decoder layer."""
        return self.decoder_hidden_size or self.hidden_size

    @property
    def encoder_output_size(self) -> int:
        """Size of the encoder's outputs (the attention's memory)."""
        return self.hidden_size * (2 if self.bidirectional else 1)

    def check(self) -> None:
        """:class:`RnnkitError` naming the first key (``model.KEY``) whose value no model can be built from
        (a config built in Python has not been through the loader's range checks: they run here too)."""
        for key, allowed in (("cell", CELLS), ("decoder", DECODERS), ("attention", SCORES), ("bridge", BRIDGES),
                             ("init", INITS)):
            _choice(f"model.{key}", getattr(self, key), allowed)
        check_ranges(self, where="model")
        self._check_combinations()

    def _check_combinations(self) -> None:
        if self.input_feeding and self.decoder != "attention":
            _fail("input_feeding", f"needs model.decoder: attention (it is '{self.decoder}')")
        if self.decoder == "state" and self.bridge == "zero":
            _fail("bridge", "'zero' leaves the state decoder nothing of the source: use last or learned")
        if self.bridge == "last" and self.bidirectional:
            _fail("bridge", "'last' needs a unidirectional encoder (a bidirectional one ends in 2 x hidden_size "
                            "states): use learned")
        if self.bridge == "last" and self.decoder_size != self.hidden_size:
            _fail("bridge", f"'last' passes the encoder's states of hidden_size {self.hidden_size} on, but "
                            f"decoder_hidden_size is {self.decoder_size}: use learned")
        if self.decoder == "attention" and self.attention == "dot" and self.encoder_output_size != self.decoder_size:
            _fail("attention", f"'dot' needs encoder outputs of the decoder's size ({self.encoder_output_size} != "
                               f"{self.decoder_size}; a bidirectional encoder's are 2 x hidden_size): use general "
                               "or bahdanau")
        if self.tie_embeddings and (self.decoder == "repeat" or self.trg_embedding_size != self.decoder_size):
            _fail("tie_embeddings", "needs a decoder that embeds target tokens (not repeat) and trg_embedding_size "
                                    f"= the decoder's size ({self.trg_embedding_size} != {self.decoder_size})")


@dataclass
class Seq2SeqTrainConfig(TrainConfig):
    # the shared keys' defaults that fit an encoder-decoder (the LM's suit truncated BPTT)
    optimizer: str = "adam"  # sgd | adam | adamw | rmsprop | asgd
    lr: float = at_least(0.001, 0)  # learning rate
    batch_size: int = at_least(64, 1)  # sentence pairs per batch (target tokens with batch_unit: tokens)
    eval_batch_size: int = at_least(64, 1)  # sentence pairs per batch when validating and decoding
    # the task's own keys
    batch_unit: str = "sentences"  # sentences | tokens (what batch_size counts; tokens: padded longer side)
    label_smoothing: float = fraction(0.0)  # training loss only; validation loss is plain cross entropy
    select: str = "bleu"  # bleu (max) | loss (min): picks the best weights, early stop, plateau decay
    valid_beam: int = at_least(1, 1)  # beam size of validation decoding (1 = greedy); select bleu only
    max_length_ratio: float = at_least(1.5, 0)  # decoding: at most ratio * source length + max_length_extra tokens
    max_length_extra: int = at_least(10, 0)
    bleu_tokenize: str = "13a"  # sacrebleu's tokenizer for BLEU: 13a (default) | zh (Chinese) | char | intl | ...

    def check(self) -> None:
        _choice("train.batch_unit", self.batch_unit, BATCH_UNITS)
        _choice("train.select", self.select, tuple(SELECTIONS))
        _choice("train.bleu_tokenize", self.bleu_tokenize, BLEU_TOKENIZERS)


@dataclass
class Seq2SeqConfig(TaskConfig):
    task: str = "seq2seq"  # the task these sections belong to
    data: Seq2SeqDataConfig = field(default_factory=Seq2SeqDataConfig)
    source: TokenizerConfig = field(default_factory=TokenizerConfig)  # the source side's tokenizer
    target: TargetTokenizerConfig = field(default_factory=TargetTokenizerConfig)  # the target side's tokenizer
    model: Seq2SeqModelConfig = field(default_factory=Seq2SeqModelConfig)
    train: Seq2SeqTrainConfig = field(default_factory=Seq2SeqTrainConfig)

    def check(self) -> None:
        """Every choice and combination of keys, each error naming its key."""
        self.data.check()
        for side in ("source", "target"):
            _choice(f"{side}.kind", getattr(self, side).kind, ("char", "word", "sentencepiece"))
        self.target.check()
        self.model.check()
        self.train.check()


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise RnnkitError(f"{key} must be one of {' | '.join(allowed)}, got {value!r}")


def _fail(key: str, problem: str) -> None:
    raise RnnkitError(f"model.{key} {problem}")

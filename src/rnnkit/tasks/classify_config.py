"""The classification task's config sections (torch-free: the model module imports them).

``data`` says where the labelled examples are and how they are read, cut and split; ``tokenizer`` is the
LM's (so an LM's vocabulary and a classifier's read text alike, and ``--init-from`` maps their rows) with
``from_init`` (the autoencoder's too: :class:`TextTokenizerConfig`);
``model`` is the classifier; ``train`` is the shared :class:`rnnkit.config.TrainConfig` with defaults for
classifiers (Adam 1e-3, batches of 32: seed 003).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rnnkit.config import TaskConfig, TrainConfig, at_least, fraction, ranged
from rnnkit.tasks.lm_config import TokenizerConfig

ENCODERS = ("rnn_tanh", "rnn_relu", "gru", "lstm", "bag")
POOLINGS = ("last", "mean", "max", "attention", "concat")
#: the poolings whose vectors a pooling puts side by side, in this order: ULMFiT's concat pooling (Howard & Ruder
#: 2018, sec. 3.3); every other pooling is itself alone
CONCATENATED = {"concat": ("last", "mean", "max")}
#: the auxiliary objective trained beside the classification loss (model.joint)
JOINTS = ("none", "lm", "reconstruct")


def pooled_parts(pooling: str) -> tuple[str, ...]:
    """The poolings whose vectors ``pooling`` puts side by side (itself alone, but for concat)."""
    return CONCATENATED.get(pooling, (pooling,))


@dataclass
class ClassifyData:
    train: str | None = None  # labelled examples: .jsonl[.gz], .csv/.tsv with a header, a folder per class, .npz, IDX
    valid: str | None = None  # validation examples; when absent, valid_fraction of train is held out
    test: str | None = None  # test examples, scored after training; when absent, test_fraction of train is held out
    format: str = "auto"  # auto (from the name) | jsonl | csv | tsv | folder | npz | idx
    text_field: str = "text"  # JSONL field / CSV column of the text
    label_field: str = "label"  # JSONL field / CSV column of the label (strings or numbers)
    strip_markup: bool = True  # read HTML tags such as IMDB's <br /> as spaces
    # a folder per class: the class folders to read, comma-separated ("neg,pos"); "" = every sub-folder but unsup/
    # (aclImdb/train/unsup holds unlabelled reviews: skipped, with a line on stderr)
    classes: str = ""
    max_length: int = at_least(0, 0)  # keep at most this many tokens (text) or steps (numeric) per example; 0 = all
    truncate: str = "post"  # which end a long example loses: post (keep the start) | pre (keep the end)
    max_examples: int = at_least(0, 0)  # train on a random N of the training file's examples (split_seed); 0 = all
    valid_fraction: float = fraction(0.1)  # share of train held out for validation when no valid file is given
    test_fraction: float = fraction(0.0)  # share of train held out for testing when no test file is given
    split: str = "random"  # how held-out examples are chosen: random (split_seed) | tail (the file's end)
    split_seed: int = at_least(0, 0)  # seeds the random split
    # numeric data: each training example's plane of steps x features moved as an image (images read as rows:
    # the classic MNIST augmentation); validation and test are not moved. Shift by up to N whole steps and
    # features, turn by up to this many degrees, zoom by up to this share (0.1: 0.9-1.1x); zeros fill in
    augment_shift: int = at_least(0, 0)
    augment_rotate: float = ranged(0.0, 0, 180)
    augment_scale: float = fraction(0.0)


@dataclass
class TextTokenizerConfig(TokenizerConfig):
    """The LM's tokenizer keys, and whether a run started from another model takes that model's tokenizer and
    vocabulary (classifier and autoencoder)."""

    # with --init-from a model of another task (or --init-prefix / --init-partial): read text with its tokenizer
    # and vocabulary instead of building them from the training data, so every embedding row is copied (ULMFiT,
    # Dai & Le 2015). The source's kind, lowercase and split_punctuation replace this run's; vocab_size,
    # min_freq and spm_* build nothing and take the source's values too. Needs --init-from; a resumed run reads
    # its own saved vocabulary
    from_init: bool = False


@dataclass
class ClassifyModel:
    encoder: str = "lstm"  # rnn_tanh | rnn_relu | gru | lstm | bag (embedding + pooling, no recurrence: seed 003)
    # text: token embedding size; numeric input: 0 feeds the features to the encoder as they are (seed 003's
    # MNIST), > 0 puts a linear layer of this size first
    embedding_size: int = at_least(64, 0)
    # text: token embeddings start uniform in [-x, x] (Keras' Embedding: 0.05); 0 = PyTorch's N(0, 1)
    embedding_init: float = at_least(0.0, 0)
    hidden_size: int = at_least(128, 1)  # recurrent units per layer (and direction)
    layers: int = at_least(1, 1)  # stacked recurrent layers
    bidirectional: bool = False  # read each sequence both ways (outputs side by side)
    # over the valid steps: last (valid) state | mean | max | attention | concat (ULMFiT's: the last state, mean and
    # max side by side, a vector 3x as wide into the head); a bag has no last state: not last, not concat
    pooling: str = "last"
    head_hidden: int = at_least(0, 0)  # hidden units of the MLP head (ReLU); 0 = one linear layer
    dropout: float = fraction(0.0)  # dropout on the pooled vector (and the head's hidden layer)
    embedding_dropout: float = fraction(0.0)  # dropout on the embedded inputs
    layer_dropout: float = fraction(0.0)  # dropout between recurrent layers (and in the reconstruction decoder)
    # DropConnect on the encoder's hidden-to-hidden weights W_hh, in training only: one mask per batch (every step
    # and sequence alike), the stored weights untouched (AWD-LSTM, Merity et al. 2017; ULMFiT's weight_p, Howard &
    # Ruder 2018); the LM's model.weight_drop. A bag has no recurrent weights: 0 there
    weight_drop: float = fraction(0.0)
    # joint training (text, unidirectional recurrent encoder): none | lm (an output layer, encoder.output.*, predicts
    # each next token from the encoder's outputs: LM-LSTM's objective) | reconstruct (a decoder, decoder.*, started
    # from the encoder's final state reproduces the text: SA-LSTM's); the loss adds train.joint_weight x its mean
    # token cross-entropy. Predictions never use these parts.
    joint: str = "none"
    # the first weights of the recurrent and linear layers: torch (PyTorch's uniform +-1/sqrt(fan_in)) | keras
    # (Keras' defaults: Glorot-uniform input and dense weights, orthogonal recurrent weights, zero biases, an
    # LSTM's forget-gate bias 1; rnnkit.nn.init). Token embeddings: model.embedding_init.
    init: str = "torch"

    def unused_keys(self) -> tuple[str, ...]:
        """The size keys the built model does not read (rnnkit.checkpoint.check_model_sizes skips them): a bag has
        no recurrent layers."""
        return ("hidden_size", "layers") if self.encoder == "bag" else ()


@dataclass
class ClassifyTrainConfig(TrainConfig):
    optimizer: str = "adam"
    lr: float = at_least(0.001, 0)
    batch_size: int = at_least(32, 1)
    eval_batch_size: int = at_least(256, 1)
    epochs: int = at_least(10, 1)
    log_every: int = at_least(50, 0)
    # fine-tuning a pretrained encoder (--init-from): comma-separated parameter-name prefixes trained from the
    # start ("" = none), e.g. "encoder.embedding,encoder.rnns" keeps the copied weights fixed while the head learns
    freeze: str = ""
    # gradual unfreezing: every N epochs the last still-frozen prefix of train.freeze trains again (the top
    # first, as ULMFiT); 0 = frozen for the whole run
    unfreeze_after: int = at_least(0, 0)


@dataclass
class ClassifierTrainConfig(ClassifyTrainConfig):
    """The classifier's ``train`` section: the shared defaults above (the autoencoder's too) and the weight of
    the joint objective."""

    joint_weight: float = ranged(1.0, 0, None, low_open=True)  # loss = classification CE + this x model.joint's


@dataclass
class ClassifyConfig(TaskConfig):
    task: str = "classify"  # the task these sections belong to
    data: ClassifyData = field(default_factory=ClassifyData)
    tokenizer: TextTokenizerConfig = field(default_factory=TextTokenizerConfig)
    model: ClassifyModel = field(default_factory=ClassifyModel)
    train: ClassifierTrainConfig = field(default_factory=ClassifierTrainConfig)


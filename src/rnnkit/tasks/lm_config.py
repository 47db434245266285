"""The language model's config sections (torch-free: the model, data and memory modules import them).

``data``, ``tokenizer`` and ``model`` belong to the LM; ``train`` is the shared
:class:`rnnkit.config.TrainConfig` with the LM's truncated-BPTT and AWD-LSTM regularisation keys added
(their names stay in ``train``, so every LM recipe and model directory's config.yaml loads unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rnnkit.config import TaskConfig, TrainConfig, at_least, fraction


@dataclass
class DataConfig:
    train: str | None = None  # training text (.txt, .txt.gz, .jsonl[.gz] with a "text" field)
    valid: str | None = None  # validation text; when absent, the last valid_fraction of train is held out
    test: str | None = None  # test text, scored after training when given
    valid_fraction: float = fraction(0.1)  # share of train held out when no valid file is given
    mode: str = "stream"  # stream: running text | sentences: <bos> s <eos> each | windows (seed 002)
    window: int = at_least(3, 1)  # windows mode: words of context before each predicted word (seed 002: 3)
    split_sentences: bool = False  # split each line into sentences first (seed 001 on review text)
    strip_markup: bool = True  # .jsonl text: HTML tags (IMDB's <br />) read as spaces, as the classifier reads them
    max_lines: int = at_least(0, 0)  # read at most this many lines (sentences after splitting) of train/valid; 0 = all
    max_length: int = at_least(0, 0)  # sentences mode: drop sentences longer than this many tokens; 0 = keep all
    min_length: int = at_least(0, 0)  # sentences mode: drop sentences shorter than this many tokens


@dataclass
class TokenizerConfig:
    kind: str = "word"  # char | word | alnum (words of letters and digits, punctuation dropped) | sentencepiece
    split_punctuation: bool = True  # word: split punctuation off words ("mice," -> "mice ,")
    lowercase: bool = False  # lower-case text (training data and prompts) before tokenizing
    vocab_size: int = at_least(0, 0)  # keep the most frequent N tokens (specials included); 0 = no limit
    min_freq: int = at_least(1, 1)  # drop tokens seen fewer times than this
    spm_model: str | None = None  # sentencepiece: a trained .model file to load instead of training
    spm_type: str = "unigram"  # sentencepiece model type when training: unigram | bpe | char | word


@dataclass
class ModelConfig:
    cell: str = "lstm"  # rnn_tanh | rnn_relu | gru | lstm (torch.nn.RNN/GRU/LSTM)
    embedding_size: int = at_least(200, 1)  # size of the token embeddings
    hidden_size: int = at_least(200, 1)  # hidden units per layer
    layers: int = at_least(2, 1)  # stacked recurrent layers
    dropout: float = fraction(0.0)  # dropout on the last layer's output, before the softmax
    embedding_dropout: float = fraction(0.0)  # dropout on the embedded inputs
    layer_dropout: float = fraction(0.0)  # dropout between recurrent layers
    locked_dropout: bool = False  # one dropout mask per sequence instead of per step (Gal & Ghahramani)
    word_dropout: float = fraction(0.0)  # drop whole rows of the embedding matrix (AWD-LSTM "embedding dropout")
    weight_drop: float = fraction(0.0)  # DropConnect on the hidden-to-hidden weights (AWD-LSTM)
    tie_weights: bool = False  # share embedding and softmax weights; the last layer then has embedding_size units
    init_range: float = at_least(0.0, 0)  # > 0: all weights uniform in [-r, r] (Zaremba et al.); 0: PyTorch defaults
    # full: one output layer over the whole vocabulary | adaptive: the adaptive softmax (Grave et al. 2017), far
    # cheaper for a large vocabulary (frequent words in a head, rarer ones in clusters behind it)
    softmax: str = "full"
    # adaptive: increasing token ids where the head ends and each cluster ends, e.g. [2000, 10000] (the
    # vocabulary is ordered by frequency: ids below 2000 are the 2,000 most frequent tokens, specials included)
    adaptive_cutoffs: list[int] = field(default_factory=list)
    adaptive_div: float = at_least(4.0, 1)  # adaptive: cluster i projects to hidden / div^(i+1) units first


@dataclass
class LMTrainConfig(TrainConfig):
    bptt: int = at_least(35, 1)  # truncated BPTT length (running text)
    variable_bptt: bool = False  # AWD-LSTM: random BPTT length around bptt, lr scaled to match
    activation_reg: float = at_least(0.0, 0)  # AWD-LSTM AR: alpha * mean(h^2) on the dropped last-layer output
    temporal_reg: float = at_least(0.0, 0)  # AWD-LSTM TAR: beta * mean((h_t - h_{t-1})^2)


@dataclass
class LMConfig(TaskConfig):
    task: str = "lm"  # the task these sections belong to
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: LMTrainConfig = field(default_factory=LMTrainConfig)

"""The sequence autoencoder's config sections (SA-LSTM, Dai & Le 2015): unlabelled texts in, the same texts out.

``data`` reads texts as the classifier does (JSONL's text field, CSV/TSV's text column, or one text per line;
labels are ignored); ``tokenizer`` is the classifier's (``from_init`` included), and ``model`` names its sizes
with the classifier's keys, so a recipe's values carry over and ``rnnkit train classify --init-from AE_DIR``
copies the embedding and the encoder by name (``encoder.embedding.weight``, ``encoder.rnns.{k}.*``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rnnkit.config import TaskConfig, at_least, fraction
from rnnkit.tasks.classify_config import ClassifyTrainConfig, TextTokenizerConfig

CELLS = ("rnn_tanh", "rnn_relu", "gru", "lstm")


@dataclass
class AutoencoderData:
    # texts: .jsonl[.gz] (text field), .csv/.tsv with a header (text column), plain lines, or a folder of .txt files
    # (one text each: aclImdb/train/unsup; a folder with sub-folders: theirs, e.g. aclImdb/train's neg, pos and unsup)
    train: str | None = None
    valid: str | None = None  # validation texts; when absent, valid_fraction of train is held out
    test: str | None = None  # test texts, scored after training
    format: str = "auto"  # auto (from the name; a folder) | jsonl | csv | tsv | lines | folder
    text_field: str = "text"  # JSONL field / CSV column of the text
    strip_markup: bool = True  # read HTML tags such as IMDB's <br /> as spaces
    max_length: int = at_least(0, 0)  # keep at most this many tokens per text; 0 = all
    truncate: str = "post"  # which end a long text loses: post (keep the start) | pre (keep the end)
    max_examples: int = at_least(0, 0)  # read at most N texts of the training file (a random subset); 0 = all
    valid_fraction: float = fraction(0.02)  # share of train held out for validation when no valid file is given
    split_seed: int = at_least(0, 0)  # seeds the subset and the held-out share


@dataclass
class AutoencoderModel:
    encoder: str = "lstm"  # rnn_tanh | rnn_relu | gru | lstm: the encoder's and the decoder's cell
    embedding_size: int = at_least(128, 1)  # token embeddings (encoder and decoder each have theirs)
    hidden_size: int = at_least(128, 1)  # recurrent units per layer
    layers: int = at_least(1, 1)  # stacked layers, encoder and decoder alike (the decoder starts from each's state)
    dropout: float = fraction(0.0)  # on embeddings, between layers and before the output layer
    # the decoder's output layer: full (one layer over the whole vocabulary) | adaptive (Grave et al. 2017: frequent
    # words in a head, rarer ones in clusters behind it; far cheaper for a large vocabulary)
    softmax: str = "full"
    # adaptive: increasing token ids where the head ends and each cluster ends, e.g. [2000, 10000] (the
    # vocabulary is ordered by frequency: ids below 2000 are the 2,000 most frequent tokens, specials included)
    adaptive_cutoffs: list[int] = field(default_factory=list)
    adaptive_div: float = at_least(4.0, 1)  # adaptive: cluster i projects to hidden / div^(i+1) units first


@dataclass
class AutoencoderConfig(TaskConfig):
    task: str = "autoencoder"  # the task these sections belong to
    data: AutoencoderData = field(default_factory=AutoencoderData)
    tokenizer: TextTokenizerConfig = field(default_factory=TextTokenizerConfig)
    model: AutoencoderModel = field(default_factory=AutoencoderModel)
    train: ClassifyTrainConfig = field(default_factory=ClassifyTrainConfig)

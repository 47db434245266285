"""Sequence classifier: input (token embedding, or numeric features) -> encoder (a recurrent stack run by length,
see :func:`rnnkit.nn.stack.run_stack`, or ``bag``: no recurrence) -> pooling over the valid steps -> dropout + MLP
head -> class logits.

Parameter names are stable across tasks: ``encoder.embedding.weight`` (text) or ``encoder.input.*``
(numeric features through a linear layer), ``encoder.rnns.{k}.*`` (the LM's ``rnns.{k}.*`` under the
prefix ``encoder``: ``--init-from LM --init-prefix encoder``), ``pool.*`` (attention pooling) and ``head.*``.

Joint training (``model.joint``) adds an auxiliary part that only the training loss uses (never a prediction),
named after the model it can start from: ``lm``: ``encoder.output.*``, an output layer over the vocabulary
predicting each next token from the encoder's outputs (the LM's ``output.*`` under ``--init-prefix encoder``);
``reconstruct``: ``decoder.*``, the autoencoder's decoder (:class:`rnnkit.nn.decoders.Decoder`, style ``state``,
started through a ``last`` :class:`~rnnkit.nn.encoder.Bridge` from the encoder's final states) reproducing the
text under teacher forcing (an autoencoder's ``decoder.*`` by the same names, no prefix).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.data.batching import TokenBags, bags_of_padded
from rnnkit.data.vocab import Vocab
from rnnkit.nn.bag import bag_mean
from rnnkit.nn.decoders import Decoder
from rnnkit.nn.dropout import sequence_dropout
from rnnkit.nn.encoder import Bridge, Encoded, merge_directions
from rnnkit.nn.init import INITS, keras_init_
from rnnkit.nn.stack import make_stack, run_stack
from rnnkit.tasks.classify_config import ENCODERS, JOINTS, POOLINGS, ClassifyModel, pooled_parts


def check_model_config(cfg: ClassifyModel, numeric: bool) -> None:
    """ValueError naming the key for a combination that cannot be built."""
    if cfg.encoder not in ENCODERS:
        raise ValueError(f"model.encoder: unknown encoder '{cfg.encoder}' ({' | '.join(ENCODERS)})")
    if cfg.pooling not in POOLINGS:
        raise ValueError(f"model.pooling: unknown pooling '{cfg.pooling}' ({' | '.join(POOLINGS)})")
    if cfg.init not in INITS:
        raise ValueError(f"model.init: unknown initialisation '{cfg.init}' ({' | '.join(INITS)})")
    if cfg.encoder == "bag" and "last" in pooled_parts(cfg.pooling):
        parts = ", ".join(pooled_parts(cfg.pooling))
        why = "" if cfg.pooling == "last" else f" to concatenate ({cfg.pooling}: {parts} side by side)"
        raise ValueError(f"model.pooling: a bag of embeddings has no last state{why}: mean, max or attention")
    if cfg.encoder == "bag" and cfg.weight_drop:
        raise ValueError(f"model.weight_drop {cfg.weight_drop:g}: a bag of embeddings has no recurrent weights to "
                         "drop: a recurrent model.encoder (lstm, gru, rnn_tanh, rnn_relu) or model.weight_drop 0")
    if not numeric and cfg.embedding_size < 1:
        raise ValueError("model.embedding_size: a text classifier embeds its tokens: at least 1")
    _check_joint(cfg, numeric)


def _check_joint(cfg: ClassifyModel, numeric: bool) -> None:
    """model.joint needs tokens to predict and a unidirectional recurrent encoder."""
    if cfg.joint not in JOINTS:
        raise ValueError(f"model.joint: unknown objective '{cfg.joint}' ({' | '.join(JOINTS)})")
    if cfg.joint == "none":
        return
    if numeric:
        raise ValueError(f"model.joint {cfg.joint}: numeric sequences (.npz, IDX) have no tokens to predict: "
                         "model.joint none")
    if cfg.encoder == "bag":
        raise ValueError(f"model.joint {cfg.joint}: a bag of embeddings has no recurrent state to "
                         f"{'predict the next token' if cfg.joint == 'lm' else 'start a decoder'} from: a recurrent "
                         "model.encoder (lstm, gru, rnn_tanh, rnn_relu) or model.joint none")
    if cfg.bidirectional:
        why = ("its backward direction has read the token to predict" if cfg.joint == "lm" else
               "the decoder starts from one direction's final state")
        raise ValueError(f"model.joint {cfg.joint}: not with model.bidirectional true ({why})")


class SequenceEncoder(nn.Module):
    """ids (T, B) or features (T, B, F) -> :class:`Encoded`: step outputs (T, B, D) and, for a recurrent encoder,
    each layer's final state at each sequence's last valid step (a bag: none). ``output`` (joint lm only): the
    next-token layer over the outputs, where an LM keeps it."""

    def __init__(self, cfg: ClassifyModel, vocab_size: int = 0, features: int = 0):
        super().__init__()
        self.cfg = cfg
        if features:
            self.input = nn.Linear(features, cfg.embedding_size) if cfg.embedding_size else None
            width = cfg.embedding_size or features
        else:
            self.embedding = nn.Embedding(vocab_size, cfg.embedding_size, padding_idx=0)
            if cfg.embedding_init:  # Keras' uniform(-0.05, 0.05) instead of N(0, 1): rare words start near 0
                nn.init.uniform_(self.embedding.weight, -cfg.embedding_init, cfg.embedding_init)
                self.embedding.weight.data[0] = 0.0
            width = cfg.embedding_size
        directions = 2 if cfg.bidirectional else 1
        if cfg.encoder == "bag":
            self.output_size = width
        else:
            self.rnns = make_stack(cfg.encoder, width, [cfg.hidden_size] * cfg.layers, cfg.bidirectional)
            self.output_size = cfg.hidden_size * directions
        if cfg.joint == "lm":
            self.output = nn.Linear(self.output_size, vocab_size)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> Encoded:
        if inputs.dtype == torch.long:
            x = self.embedding(inputs)
        else:
            x = self.input(inputs) if self.input is not None else inputs
        x = sequence_dropout(x, self.cfg.embedding_dropout, self.training, False)
        if self.cfg.encoder == "bag":
            return Encoded(x, [], lengths)
        # a batch with no padding (every MNIST image: 28 rows) runs unpacked, on the fused kernel
        full = int(lengths.min()) == x.size(0)
        outputs, final = run_stack(self.rnns, x, None if full else lengths, dropout=self.cfg.layer_dropout,
                                   weight_drop=self.cfg.weight_drop, training=self.training)
        return Encoded(outputs, final, lengths)


def top_state(encoded: Encoded) -> torch.Tensor | None:
    """The top layer's final hidden state (B, D), both directions side by side (a bag: None)."""
    if not encoded.final:
        return None
    top = encoded.final[-1][0] if isinstance(encoded.final[-1], tuple) else encoded.final[-1]  # an LSTM's (h, c): h
    return merge_directions(top)


class AttentionPooling(nn.Module):
    """A weighted mean of the steps, weights softmax(v^T tanh(W o_t)) over the valid steps (Yang et al. 2016)."""

    def __init__(self, size: int):
        super().__init__()
        self.project = nn.Linear(size, size)
        self.score = nn.Linear(size, 1, bias=False)

    def forward(self, outputs: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """outputs (T, B, D), padding (T, B) True past a length -> (B, D)."""
        scores = self.score(torch.tanh(self.project(outputs))).squeeze(-1)
        weights = torch.softmax(scores.masked_fill(padding, float("-inf")), dim=0)
        return (weights.unsqueeze(-1) * outputs).sum(0)


def pooled_size(kind: str, size: int) -> int:
    """The width of the pooled vector (the head's input) from steps ``size`` wide."""
    return size * len(pooled_parts(kind))


def pool(kind: str, outputs: torch.Tensor, final: torch.Tensor | None, padding: torch.Tensor,
         lengths: torch.Tensor, attention: AttentionPooling | None) -> torch.Tensor:
    """One vector (B, D), or (B, 3 D) for ``concat``, per sequence from its valid steps only: padding never changes
    a prediction. outputs (T, B, D), final (B, D) the top layer's last valid state (:func:`top_state`), padding
    (T, B) True past a length, lengths (B,)."""
    if len(pooled_parts(kind)) > 1:
        return torch.cat([pool(part, outputs, final, padding, lengths, attention) for part in pooled_parts(kind)], -1)
    if kind == "last":
        return final
    if kind == "attention":
        return attention(outputs, padding)
    if kind == "max":
        return outputs.masked_fill(padding.unsqueeze(-1), float("-inf")).max(0).values
    kept = outputs.masked_fill(padding.unsqueeze(-1), 0.0)
    return kept.sum(0) / lengths.unsqueeze(-1).to(outputs.dtype)


class Head(nn.Module):
    """Dropout, then an MLP: [Linear -> ReLU -> dropout ->] Linear to the class logits."""

    def __init__(self, size: int, hidden: int, classes: int, dropout: float):
        super().__init__()
        self.dropout = dropout
        self.hidden = nn.Linear(size, hidden) if hidden else None
        self.output = nn.Linear(hidden or size, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.dropout(x, self.dropout, self.training)
        if self.hidden is not None:
            x = F.dropout(torch.relu(self.hidden(x)), self.dropout, self.training)
        return self.output(x)


def next_token_targets(ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """ids (T, B) -> (T, B): each step's next token, <eos> at the last valid step, padding (not scored) after."""
    target = torch.cat([ids[1:], ids.new_full((1, ids.size(1)), Vocab.pad_id)])
    target[lengths - 1, torch.arange(ids.size(1), device=ids.device)] = Vocab.eos_id
    return target


def reconstruction_targets(ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ids (T, B) -> the decoder's inputs (<bos> then the text) and targets (the text then <eos>), (T+1, B)."""
    target = torch.cat([ids, ids.new_full((1, ids.size(1)), Vocab.pad_id)])
    target[lengths, torch.arange(ids.size(1), device=ids.device)] = Vocab.eos_id
    return torch.cat([ids.new_full((1, ids.size(1)), Vocab.bos_id), ids]), target


class SequenceClassifier(nn.Module):
    """Text (``vocab_size``) or numeric (``features`` per step) sequences -> logits over ``classes``; with
    ``model.joint``, the auxiliary token loss beside them (``forward(..., auxiliary=True)``)."""

    def __init__(self, cfg: ClassifyModel, classes: int, vocab_size: int = 0, features: int = 0):
        super().__init__()
        check_model_config(cfg, numeric=bool(features))
        self.cfg, self.numeric = cfg, bool(features)
        self.encoder = SequenceEncoder(cfg, vocab_size, features)
        self.pool = AttentionPooling(self.encoder.output_size) if cfg.pooling == "attention" else None
        self.pooled_size = pooled_size(cfg.pooling, self.encoder.output_size)  # the head's input
        self.head = Head(self.pooled_size, cfg.head_hidden, classes, cfg.dropout)
        if cfg.joint == "reconstruct":  # the autoencoder's decoder and bridge (tasks/autoencoder.build_model)
            self.bridge = Bridge("last", cfg.encoder, self.encoder.output_size, cfg.hidden_size)
            self.decoder = Decoder("state", cfg.encoder, vocab_size, cfg.embedding_size, cfg.hidden_size, cfg.layers,
                                   self.encoder.output_size, dropout=cfg.layer_dropout)
        if cfg.init == "keras":
            keras_init_(self)

    def pooling_description(self) -> str:
        """The pooling as the training's first line names it: ``max pooling``; a concatenation with its parts and the
        width the head reads, ``concat pooling (last, mean, max: 384 wide)``."""
        parts = pooled_parts(self.cfg.pooling)
        if len(parts) == 1:
            return f"{self.cfg.pooling} pooling"
        return f"{self.cfg.pooling} pooling ({', '.join(parts)}: {self.pooled_size} wide)"

    def reads_token_bags(self, training: bool) -> bool:
        """Whether this model, training or not, is the seed's bag of means, which :class:`TokenBags` feed
        (no per-step embeddings: none to drop out)."""
        cfg = self.cfg
        return (cfg.encoder == "bag" and cfg.pooling == "mean" and not self.numeric
                and not (training and cfg.embedding_dropout))

    def _token_bags(self, inputs: torch.Tensor | TokenBags, lengths: torch.Tensor) -> TokenBags | None:
        """The texts as :class:`TokenBags` where this is the bag of means now; None: the general path."""
        if self.reads_token_bags(self.training):
            return inputs if isinstance(inputs, TokenBags) else bags_of_padded(inputs, lengths)
        if isinstance(inputs, TokenBags):
            raise ValueError("TokenBags feed only a bag of means (model.encoder bag, model.pooling mean, and in "
                             "training no model.embedding_dropout)")
        return None

    def vocab_parameters(self) -> dict[str, str]:
        """The rows indexed by vocabulary tokens (weight transfer maps them by token): the embedding's and the
        joint objective's output (and decoder embedding); and the output layer's, indexed by class (role
        ``labels``: mapped by label name)."""
        classes = {"head.output.weight": "labels", "head.output.bias": "labels"}
        if self.numeric:
            return classes
        joint = {"none": [], "lm": ["encoder.output.weight", "encoder.output.bias"],
                 "reconstruct": ["decoder.embedding.weight", "decoder.output.weight", "decoder.output.bias"]}
        return {**{name: "vocab" for name in ["encoder.embedding.weight", *joint[self.cfg.joint]]}, **classes}

    def forward(self, inputs: torch.Tensor | TokenBags, lengths: torch.Tensor,
                auxiliary: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, int]:
        """inputs (T, B) ids or (T, B, F) features, lengths (B,) of at least 1 -> logits (B, classes); with
        ``auxiliary`` (model.joint), also the joint objective's summed token cross-entropy and its token count
        (through forward, so DistributedDataParallel sees the auxiliary part's gradients). The bag of means
        (:meth:`reads_token_bags`) also takes its texts as :class:`TokenBags` (B bags)."""
        bags = self._token_bags(inputs, lengths)
        if bags is not None:  # the seed's bag model, without its (T, B, D) step embeddings (never joint)
            return self.head(bag_mean(bags.ids, bags.shares, bags.offsets, self.encoder.embedding.weight))
        encoded = self.encoder(inputs, lengths)
        lengths = lengths.to(inputs.device)
        steps = torch.arange(inputs.size(0), device=inputs.device).unsqueeze(1)
        padding = steps >= lengths.unsqueeze(0)  # (T, B)
        logits = self.head(pool(self.cfg.pooling, encoded.outputs, top_state(encoded), padding, lengths, self.pool))
        if not auxiliary:
            return logits
        return (logits, *self._auxiliary_loss(inputs, lengths, encoded))

    def _auxiliary_loss(self, ids: torch.Tensor, lengths: torch.Tensor, encoded: Encoded) -> tuple[torch.Tensor, int]:
        if self.cfg.joint == "lm":
            target = next_token_targets(ids, lengths)
            token_logits = self.encoder.output(encoded.outputs)
        elif self.cfg.joint == "reconstruct":
            trg_in, target = reconstruction_targets(ids, lengths)
            start = self.decoder.start(encoded, self.bridge(encoded, self.decoder.rnns))
            token_logits = self.decoder(trg_in, start)[0]
        else:
            raise ValueError("auxiliary: this classifier trains no joint objective (model.joint none)")
        loss = F.cross_entropy(token_logits.float().flatten(0, 1), target.flatten(), ignore_index=Vocab.pad_id,
                               reduction="sum")
        return loss, int((target != Vocab.pad_id).sum())

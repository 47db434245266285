"""Sequence-to-sequence model: encoder -> bridge -> one of seed 004's four decoders -> softmax.

Teacher forcing (:meth:`Seq2SeqModel.forward`) runs each recurrent stack as one fused torch.nn call per
layer (input-feeding attention excepted); :meth:`~Seq2SeqModel.encode`, :meth:`~Seq2SeqModel.start`,
:meth:`~Seq2SeqModel.step` and :meth:`~Seq2SeqModel.reorder` are the step mode that search drives, on
the same weights. Parameter names: ``encoder.embedding.weight``, ``encoder.rnns.{k}.*``, ``bridge.*``,
``decoder.embedding.weight``, ``decoder.rnns.{k}.*``, ``decoder.attention.*``, ``decoder.output.*``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rnnkit.nn.attention import SCORES
from rnnkit.nn.decoders import STYLES, Decoder, DecoderState
from rnnkit.nn.encoder import BRIDGES, Bridge, Encoded, Encoder
from rnnkit.nn.rnn import CELLS

INITS = ("default", "uniform", "xavier")


@dataclass
class Seq2SeqModelConfig:
    cell: str = "lstm"  # rnn_tanh | rnn_relu | gru | lstm, for encoder and decoder
    src_embedding_size: int = 256  # source token embeddings; 0 = one-hot input (seed 000)
    trg_embedding_size: int = 256  # target token embeddings; 0 = one-hot input (seed 000)
    hidden_size: int = 256  # units per layer (per direction in a bidirectional encoder)
    encoder_layers: int = 1  # stacked encoder layers
    decoder_layers: int = 1  # stacked decoder layers
    bidirectional: bool = False  # encoder reads both ways; outputs and final states are 2 x hidden_size
    decoder: str = "attention"  # repeat | state | peek | attention (seed 004's four styles)
    attention: str = "bahdanau"  # attention decoder's score: bahdanau (additive) | dot | general (Luong)
    input_feeding: bool = False  # attention: feed the previous attentional vector back in (Luong 3.3; a step loop)
    bridge: str = "last"  # decoder's initial state: zero | last (encoder's final state) | learned (tanh(W s))
    dropout: float = 0.0  # on embeddings, between layers and before the output layer
    tie_embeddings: bool = False  # the output layer shares the target embedding (trg_embedding_size = hidden_size)
    init: str = "default"  # default (PyTorch's) | uniform (every weight U(-0.1, 0.1)) | xavier (biases 0)

    def check(self) -> None:
        """ValueError naming the first key (``model.KEY``) whose value no model can be built from."""
        for key, allowed in (("cell", CELLS), ("decoder", STYLES), ("attention", SCORES), ("bridge", BRIDGES),
                             ("init", INITS)):
            if getattr(self, key) not in allowed:
                _fail(key, f"must be one of {', '.join(allowed)}, got {getattr(self, key)!r}")
        for key, low in (("src_embedding_size", 0), ("trg_embedding_size", 0), ("hidden_size", 1),
                         ("encoder_layers", 1), ("decoder_layers", 1)):
            if getattr(self, key) < low:
                _fail(key, f"must be at least {low}, got {getattr(self, key)}")
        if not 0 <= self.dropout < 1:
            _fail("dropout", f"must be in [0, 1), got {self.dropout}")
        self._check_combinations()

    def _check_combinations(self) -> None:
        if self.input_feeding and self.decoder != "attention":
            _fail("input_feeding", f"needs model.decoder: attention (it is '{self.decoder}')")
        if self.decoder == "state" and self.bridge == "zero":
            _fail("bridge", "'zero' leaves the state decoder nothing of the source: use last or learned")
        if self.bridge == "last" and self.bidirectional:
            _fail("bridge", "'last' needs a unidirectional encoder (a bidirectional one ends in 2 x hidden_size "
                            "states): use learned")
        if self.decoder == "attention" and self.attention == "dot" and self.bidirectional:
            _fail("attention", "'dot' needs encoder outputs of the decoder's size; a bidirectional encoder's "
                               "are 2 x hidden_size: use general or bahdanau")
        if self.tie_embeddings and (self.decoder == "repeat" or self.trg_embedding_size != self.hidden_size):
            _fail("tie_embeddings", "needs a decoder that embeds target tokens (not repeat) and trg_embedding_size "
                                    f"= hidden_size ({self.trg_embedding_size} != {self.hidden_size})")


def _fail(key: str, problem: str) -> None:
    raise ValueError(f"model.{key} {problem}")


class Seq2SeqModel(nn.Module):
    """Encoder-decoder over token ids, time-major: src (S, B), trg (T, B)."""

    #: old name -> name for weights saved under earlier names (none yet)
    legacy_weight_names: dict[str, str] = {}

    def __init__(self, cfg: Seq2SeqModelConfig, src_vocab_size: int, trg_vocab_size: int):
        super().__init__()
        cfg.check()
        self.cfg = cfg
        self.encoder = Encoder(cfg.cell, src_vocab_size, cfg.src_embedding_size, cfg.hidden_size, cfg.encoder_layers,
                               cfg.bidirectional, cfg.dropout)
        self.bridge = Bridge(cfg.bridge, cfg.cell, self.encoder.output_size, cfg.hidden_size)
        self.decoder = Decoder(cfg.decoder, cfg.cell, trg_vocab_size, cfg.trg_embedding_size, cfg.hidden_size,
                               cfg.decoder_layers, self.encoder.output_size, cfg.attention, cfg.input_feeding,
                               cfg.dropout)
        self._init_weights()
        if cfg.tie_embeddings:
            self.decoder.output.weight = self.decoder.embedding.weight

    def _init_weights(self) -> None:
        for p in self.parameters():
            if self.cfg.init == "uniform":  # OpenNMT-py's param_init 0.1 (Sutskever et al.: 0.08)
                nn.init.uniform_(p, -0.1, 0.1)
            elif self.cfg.init == "xavier" and p.dim() > 1:  # JoeyNMT's default
                nn.init.xavier_uniform_(p)
            elif self.cfg.init == "xavier":
                nn.init.zeros_(p)

    def vocab_parameters(self) -> dict[str, str]:
        """Parameters whose rows are indexed by a vocabulary ("src" or "trg"); one-hot inputs have none."""
        roles = {"encoder.embedding.weight": "src", "decoder.embedding.weight": "trg",
                 "decoder.output.weight": "trg", "decoder.output.bias": "trg"}
        names = dict(self.named_parameters(remove_duplicate=False))
        return {name: role for name, role in roles.items() if name in names}

    def describe_kernels(self, device: torch.device) -> str:
        """Which kernels train this model on ``device``, for the run's log (DESIGN: no silent slow path)."""
        cell = type(self.decoder.rnns[0]).__name__
        if device.type == "cuda":
            encoder, fused = "cuDNN", "cuDNN"
        else:
            encoder = "ATen's C++ loop: packed input has no fused CPU kernel"
            fused = "oneDNN or ATen, the faster for the length" if cell == "LSTM" else "ATen's C++ loop"
        decoder = ("input feeding: a Python loop over target steps (the tokens' input projection precomputed)"
                   if self.cfg.input_feeding else f"one fused call per layer over the target ({fused})")
        return f"{cell} encoder packed by length ({encoder}); {self.cfg.decoder} decoder: {decoder}"

    # ----------------------------------------------------------------------------------- teacher forcing
    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, trg_in: torch.Tensor) -> torch.Tensor:
        """src (S, B) ids, src_lengths (B,), trg_in (T, B) (BOS then the gold target, shifted) -> logits
        (T, B, V_trg)."""
        return self.teacher_forced(src, src_lengths, trg_in)[0]

    def teacher_forced(self, src: torch.Tensor, src_lengths: torch.Tensor,
                       trg_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`forward` plus the attention weights (B, T, S) of every target step (None without
        attention): the matrix an attention plot draws for a translation fed back as ``trg_in``."""
        return self.decoder(trg_in, self.start(self.encode(src, src_lengths)))

    # ------------------------------------------------------------------------------------------ step mode
    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> Encoded:
        return self.encoder(src, src_lengths)

    def start(self, encoded: Encoded) -> DecoderState:
        """The decoder state before the first target token, one row per source sentence."""
        return self.decoder.start(encoded, self.bridge(encoded, self.decoder.rnns))

    def step(self, prev_ids: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, DecoderState]:
        """prev_ids (N,) -> logits (N, V_trg), next state; ``state.attention`` (N, S) holds this step's
        attention weights (attention decoder)."""
        return self.decoder.step(prev_ids, state)

    def reorder(self, state: DecoderState, index: torch.Tensor) -> DecoderState:
        """The state of rows ``index`` (select, repeat or permute rows: beam search)."""
        return state.reorder(index)

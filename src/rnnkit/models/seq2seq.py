"""Sequence-to-sequence model: encoder -> bridge -> one of seed 004's four decoders -> softmax.

Teacher forcing (:meth:`Seq2SeqModel.forward`) runs each recurrent stack as one fused torch.nn call per
layer (input-feeding attention excepted); :meth:`~Seq2SeqModel.encode`, :meth:`~Seq2SeqModel.start`,
:meth:`~Seq2SeqModel.step` and :meth:`~Seq2SeqModel.reorder` are the step mode that search drives, on
the same weights. Parameter names: ``encoder.embedding.weight``, ``encoder.rnns.{k}.*``, ``bridge.*``,
``decoder.embedding.weight``, ``decoder.rnns.{k}.*``, ``decoder.attention.*``, ``decoder.output.*``.

The decoder's output layer is the full softmax unless ``softmax`` says otherwise (the sequence autoencoder's
``model.softmax adaptive``; the seq2seq task always builds the full one).
"""

from __future__ import annotations

import torch
from torch import nn

from rnnkit.data.vocab import Vocab
from rnnkit.nn.decoders import Decoder, DecoderState
from rnnkit.nn.encoder import Bridge, Encoded, Encoder
from rnnkit.nn.softmax import FULL, SoftmaxOptions, output_parameters
from rnnkit.nn.stack import describe_padded
from rnnkit.tasks.seq2seq_config import Seq2SeqModelConfig

__all__ = ["Seq2SeqModel", "Seq2SeqModelConfig"]  # the config lives with the task's sections

class Seq2SeqModel(nn.Module):
    """Encoder-decoder over token ids, time-major: src (S, B), trg (T, B)."""

    #: old name -> name for weights saved under earlier names (none yet)
    legacy_weight_names: dict[str, str] = {}

    def __init__(self, cfg: Seq2SeqModelConfig, src_vocab_size: int, trg_vocab_size: int,
                 softmax: SoftmaxOptions = FULL):
        super().__init__()
        cfg.check()
        if cfg.tie_embeddings and softmax.softmax != "full":
            raise ValueError("model.tie_embeddings shares the target embedding with a full softmax's output layer: "
                             f"the {softmax.softmax} softmax has none (set model.tie_embeddings false)")
        self.cfg = cfg
        self.encoder = Encoder(cfg.cell, src_vocab_size, cfg.src_embedding_size, cfg.hidden_size, cfg.encoder_layers,
                               cfg.bidirectional, cfg.dropout)
        self.bridge = Bridge(cfg.bridge, cfg.cell, self.encoder.output_size, cfg.decoder_size)
        self.decoder = Decoder(cfg.decoder, cfg.cell, trg_vocab_size, cfg.trg_embedding_size, cfg.decoder_size,
                               cfg.decoder_layers, self.encoder.output_size, cfg.attention, cfg.input_feeding,
                               cfg.dropout, softmax)
        self._init_weights()
        if cfg.tie_embeddings:
            self.decoder.output.weight = self.decoder.embedding.weight

    def _init_weights(self) -> None:
        gates = {"lstm": 4, "gru": 3}.get(self.cfg.cell, 1)
        for name, p in self.named_parameters():
            if self.cfg.init == "uniform":  # OpenNMT-py's param_init 0.1 (Sutskever et al.: 0.08)
                nn.init.uniform_(p, -0.1, 0.1)
            elif self.cfg.init == "xavier":  # JoeyNMT's: embeddings N(0, 0.1), each gate's matrix on its own
                if p.dim() < 2:
                    nn.init.zeros_(p)
                elif name.endswith("embedding.weight"):
                    nn.init.normal_(p, 0.0, 0.1)
                elif ".rnns." in name:  # a fused torch.nn matrix stacks the gates: Glorot's fan is one gate's
                    for gate in p.data.chunk(gates, dim=0):
                        nn.init.xavier_uniform_(gate)
                else:
                    nn.init.xavier_uniform_(p)

    def vocab_parameters(self) -> dict[str, str]:
        """Parameters whose rows are indexed by a vocabulary ("src" or "trg"); one-hot inputs have none."""
        roles = {"encoder.embedding.weight": "src", "decoder.embedding.weight": "trg",
                 "decoder.output.weight": "trg", "decoder.output.bias": "trg"}
        names = dict(self.named_parameters(remove_duplicate=False))
        return {name: role for name, role in roles.items() if name in names}

    def vocab_order_parameters(self) -> dict[str, str]:
        """The adaptive softmax's tensors, whose meaning follows the target vocabulary's whole order."""
        return output_parameters(self.decoder.output, "decoder.output", "trg")

    def describe_kernels(self, device: torch.device) -> str:
        """Which kernels train this model on ``device``, for the run's log (DESIGN: no silent slow path)."""
        cell = type(self.decoder.rnns[0]).__name__
        if device.type == "cuda":
            fused = "cuDNN"
        else:
            fused = "oneDNN or ATen, the faster for the length" if cell == "LSTM" else "ATen's C++ loop"
        decoder = ("input feeding: a Python loop over target steps (the tokens' input projection precomputed)"
                   if self.cfg.input_feeding else f"one fused call per layer over the target ({fused})")
        return f"{cell} encoder {describe_padded(self.encoder.rnns, device)}; {self.cfg.decoder} decoder: {decoder}"

    # ----------------------------------------------------------------------------------- teacher forcing
    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, trg_in: torch.Tensor,
                trg_out: torch.Tensor | None = None, ignore_index: int = Vocab.pad_id) -> torch.Tensor:
        """src (S, B) ids, src_lengths (B,), trg_in (T, B) (BOS then the gold target, shifted) -> logits
        (T, B, V_trg) (adaptive softmax: log-probabilities). Given the targets ``trg_out`` (T, B), instead their
        summed cross-entropy (those equal to ``ignore_index`` skipped): the adaptive softmax then computes only
        its head and the clusters the targets fall in (through forward, so DistributedDataParallel sees it)."""
        if trg_out is None:
            return self.teacher_forced(src, src_lengths, trg_in)[0]
        vectors, _ = self.decoder.vectors(trg_in, self.start(self.encode(src, src_lengths)))
        return self.decoder.output.loss_sum(vectors, trg_out, ignore_index)

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

"""The four decoder styles of seed 004, one module with one parameter layout and two execution modes.

* ``repeat``: the encoder's context vector (its top layer's final state) is the input at every step;
  the decoder never sees its own output (seed 004's RepeatVector model).
* ``state``: the decoder starts from the bridged encoder state and feeds on the previous target token
  (seed 000; Sutskever et al. 2014; seed 004's "feedback").
* ``peek``: the previous target token and the context vector at every step (Cho et al. 2014).
* ``attention``: the RNN runs over the previous tokens, then attends over the encoder outputs
  (Luong et al. 2015; :mod:`rnnkit.nn.attention`); with ``input_feeding`` the previous attentional
  vector joins the input (their sec. 3.3).

The output layer is :mod:`rnnkit.nn.softmax`'s, full (``output.weight/bias``) or adaptive (``output.head.*``,
``output.tail.*``): :meth:`Decoder.vectors` gives what it reads, so a training loss computes the adaptive softmax
only where its targets are; ``forward`` and ``step`` give its scores (adaptive: log-probabilities).

With teacher forcing every step's input is known up front, so :meth:`Decoder.forward` runs the stack as
one fused torch.nn call per layer over the whole target (DESIGN principle 3) and attends over all steps
in one batched call. Only input feeding needs a loop over time, and there the embedded tokens' share of
the first layer's input projection is one matmul for all steps, outside the loop (principle 1).
:meth:`Decoder.step` runs one step on the same weights (search and sampling).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.nn.attention import Attention
from rnnkit.nn.encoder import Encoded, embed, merge_directions
from rnnkit.nn.rnn import State, cell_step, layer_weights, map_state
from rnnkit.nn.softmax import FULL, SoftmaxOptions, make_softmax
from rnnkit.nn.stack import make_stack, run_stack

STYLES = ("repeat", "state", "peek", "attention")


@dataclass
class DecoderState:
    """Everything one decoding step needs, for N rows (sentences, or beams of sentences).

    rnn: each decoder layer's state, (1, N, H) or an (h, c) pair of them. rows (N,): the encoded sentence
    each row decodes. context (N, C): the encoder's context vector (repeat, peek). memory (N, S, C), keys
    (N, S, K), padding (N, S) (True past the source's end): what attention reads. feed (N, H): the
    previous attentional vector (input feeding). attention (N, S): the weights of the step just taken.
    """

    rnn: list[State]
    rows: torch.Tensor
    context: torch.Tensor | None = None
    memory: torch.Tensor | None = None
    keys: torch.Tensor | None = None
    padding: torch.Tensor | None = None
    feed: torch.Tensor | None = None
    attention: torch.Tensor | None = None

    def reorder(self, index: torch.Tensor) -> DecoderState:
        """The state of rows ``index`` (N',): select, repeat or permute rows (beam search).

        The source-side tensors are copied only when a row changes sentence: beam search's per-step
        reordering stays within each sentence's beams, so it moves the recurrent state alone.
        """
        rows = self.rows.index_select(0, index)
        same_sentences = rows.shape == self.rows.shape and bool(torch.equal(rows, self.rows))

        def source(t: torch.Tensor | None) -> torch.Tensor | None:
            return t if t is None or same_sentences else t.index_select(0, index)

        def pick(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.index_select(0, index)

        return DecoderState(map_state(self.rnn, lambda t: t.index_select(1, index)), rows, source(self.context),
                            source(self.memory), source(self.keys), source(self.padding), pick(self.feed),
                            pick(self.attention))


class Decoder(nn.Module):
    """Parameters: ``embedding.weight`` (not for ``repeat``, nor for one-hot input), ``rnns.{k}.*``,
    ``attention.*`` (attention style), ``output.weight/bias`` (``softmax`` full) or ``output.head.*``,
    ``output.tail.*`` (adaptive)."""

    def __init__(self, style: str, cell: str, vocab_size: int, embedding_size: int, hidden_size: int,
                 layers: int, context_size: int, score: str = "bahdanau", input_feeding: bool = False,
                 dropout: float = 0.0, softmax: SoftmaxOptions = FULL):
        super().__init__()
        if style not in STYLES:
            raise ValueError(f"unknown decoder '{style}' (one of {', '.join(STYLES)})")
        if input_feeding and style != "attention":
            raise ValueError("input_feeding needs the attention decoder")
        self.style, self.input_feeding, self.dropout = style, input_feeding, dropout
        self.vocab_size, self.hidden_size = vocab_size, hidden_size
        self.token_size = 0 if style == "repeat" else embedding_size or vocab_size
        has_embedding = style != "repeat" and embedding_size > 0
        self.embedding = nn.Embedding(vocab_size, embedding_size) if has_embedding else None
        input_size = {"repeat": context_size, "state": self.token_size, "peek": self.token_size + context_size,
                      "attention": self.token_size + (hidden_size if input_feeding else 0)}[style]
        self.rnns = make_stack(cell, input_size, [hidden_size] * layers)
        self.attention = Attention(score, hidden_size, context_size) if style == "attention" else None
        self.output = make_softmax(softmax, hidden_size, vocab_size)

    # ------------------------------------------------------------------------------------------- the state
    def start(self, encoded: Encoded, initial: list[State]) -> DecoderState:
        """The state before the first step, from the encoder's output and the bridged initial state."""
        batch = encoded.lengths.numel()
        device = encoded.outputs.device
        state = DecoderState(initial, torch.arange(batch, device=device))
        if self.style in ("repeat", "peek"):
            top = encoded.final[-1]
            state.context = merge_directions(top[0] if isinstance(top, tuple) else top)
        if self.style == "attention":
            state.memory = encoded.outputs.transpose(0, 1).contiguous()
            state.keys = self.attention.keys(state.memory)
            steps = torch.arange(state.memory.size(1), device=device)
            state.padding = steps >= encoded.lengths.to(device).unsqueeze(1)
            if self.input_feeding:
                state.feed = state.memory.new_zeros(batch, self.hidden_size)
        return state

    # ------------------------------------------------------------------------------- teacher forcing
    def forward(self, trg_in: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, torch.Tensor | None]:
        """trg_in (T, B): the previous gold token of every step -> logits (T, B, V) (adaptive softmax:
        log-probabilities) and, for attention, the weights (B, T, S)."""
        vectors, weights = self.vectors(trg_in, state)
        return self.output.scores(vectors), weights

    def vectors(self, trg_in: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What the output layer reads at each step of trg_in (T, B): (T, B, H), dropout applied, and the
        attention weights (B, T, S) (None without attention); ``output.loss_sum`` scores them."""
        if self.input_feeding:
            return self._feeding_loop(trg_in, state)
        out, _ = run_stack(self.rnns, self._inputs(trg_in, state.context), state=state.rnn,
                           dropout=self.dropout, training=self.training)
        weights = None
        if self.attention is not None:
            vectors, weights = self.attention(out.transpose(0, 1), state.keys, state.memory, state.padding)
            out = vectors.transpose(0, 1)
        return F.dropout(out, self.dropout, self.training), weights

    def _inputs(self, ids: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """The input of the first layer at each step of ids (T, B): (T, B, I), feedback excluded."""
        if self.style == "repeat":
            return context.unsqueeze(0).expand(ids.size(0), -1, -1).contiguous()
        x = F.dropout(embed(self.embedding, ids, self.vocab_size), self.dropout, self.training)
        if self.style == "peek":
            x = torch.cat([x, context.unsqueeze(0).expand(ids.size(0), -1, -1)], dim=-1)
        return x

    def _feeding_loop(self, trg_in: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, torch.Tensor]:
        """Input feeding: step t's first-layer input is [token_t; attentional vector_{t-1}], so the steps
        run one after another; the tokens' projection is computed for all steps before the loop."""
        weights = [layer_weights(layer, 0.0, self.training) for layer in self.rnns]
        tokens_w, feed_w = weights[0]["weight_ih_l0"].split([self.token_size, self.hidden_size], dim=1)
        projected = F.linear(self._inputs(trg_in, None), tokens_w, weights[0]["bias_ih_l0"])  # (T, B, G*H)
        rnn = map_state(state.rnn, lambda t: t[0])
        feed, outputs, attention = state.feed, [], []
        for t in range(trg_in.size(0)):
            projection = projected[t] + F.linear(feed, feed_w)
            for k, layer in enumerate(self.rnns):
                rnn[k] = cell_step(layer, weights[k], projection, rnn[k])
                top = rnn[k][0] if isinstance(rnn[k], tuple) else rnn[k]
                if k + 1 < len(self.rnns):
                    projection = F.linear(F.dropout(top, self.dropout, self.training),
                                          weights[k + 1]["weight_ih_l0"], weights[k + 1]["bias_ih_l0"])
            vector, step_weights = self.attention(top.unsqueeze(1), state.keys, state.memory, state.padding)
            feed = F.dropout(vector[:, 0], self.dropout, self.training)
            outputs.append(feed)
            attention.append(step_weights)
        return torch.stack(outputs), torch.cat(attention, dim=1)

    # ------------------------------------------------------------------------------------------ one step
    def step(self, prev_ids: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, DecoderState]:
        """prev_ids (N,) -> logits (N, V) (adaptive softmax: log-probabilities) and the next state
        (``attention`` holds this step's weights)."""
        x = self._inputs(prev_ids.unsqueeze(0), state.context)
        if self.input_feeding:
            x = torch.cat([x, state.feed.unsqueeze(0)], dim=-1)
        out, rnn = run_stack(self.rnns, x, state=state.rnn, dropout=self.dropout, training=self.training)
        new = replace(state, rnn=rnn)
        if self.attention is not None:
            vectors, weights = self.attention(out.transpose(0, 1), state.keys, state.memory, state.padding)
            out, new.attention = vectors.transpose(0, 1), weights[:, 0]
        dropped = F.dropout(out[0], self.dropout, self.training)
        if self.input_feeding:
            new.feed = dropped
        return self.output.scores(dropped), new

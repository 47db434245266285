"""One recurrent stack, shared by the language model, encoders and decoders.

A stack is an ``nn.ModuleList`` of one ``torch.nn.RNN/GRU/LSTM`` per layer; its owner names it ``rnns``,
so parameters read ``rnns.{k}.weight_ih_l0`` ... in every task and weights transfer between tasks by name.
:func:`run_stack` runs it over a padded (T, B, I) batch: each layer on torch's fused kernel
(:func:`rnnkit.nn.rnn.run_layer` keeps the per-shape CPU kernel choice and DropConnect) and dropout
between layers. Given lengths, padding never enters a state (DESIGN principle 4): the batch is packed
(cuDNN runs packed input natively; on a CPU it means ATen's per-step loop), or, on a CPU, run in length
segments (:func:`run_segmented`), one unpadded call per stretch between distinct lengths, with the same
results: LSTM layers so each call stays on oneDNN's fused kernel, forward + backward 3.5-7x faster on IMDB's
batches (best of 3; 9.7x on the median, the packed path's time varying run to run), imdb-lstm's training
4.5x end to end; GRU and plain RNN layers when training on 16 steps or more, where ATen's loop runs the
unpacked backward much faster (2.4-8.1x for a GRU on IMDB's batches; forward only, packed is as fast)
(benchmarks/RESULTS.md; :func:`use_segments` decides).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnkit.nn.dropout import sequence_dropout
from rnnkit.nn.rnn import State, layer_weights, make_layer, map_state, run_direction, run_layer


def make_stack(cell: str, input_size: int, sizes: list[int], bidirectional: bool = False) -> nn.ModuleList:
    """One single-layer torch.nn module per entry of ``sizes`` (hidden units per direction); a layer
    takes the previous layer's output (both directions concatenated when ``bidirectional``)."""
    directions = 2 if bidirectional else 1
    inputs = [input_size] + [size * directions for size in sizes[:-1]]
    return nn.ModuleList(make_layer(cell, i, h, bidirectional) for i, h in zip(inputs, sizes, strict=True))


def run_stack(rnns: nn.ModuleList, x: torch.Tensor, lengths: torch.Tensor | None = None,
              state: list[State] | None = None, dropout: float = 0.0, locked: bool = False,
              weight_drop: float = 0.0, training: bool = False) -> tuple[torch.Tensor, list[State]]:
    """Run the layers over x (T, B, I); returns the top layer's output (T, B, D*H) and each layer's final
    state ((D, B, H), or an (h, c) pair of them; D = 2 for a bidirectional layer).

    lengths (B,): each final state is taken at that sequence's last valid step (the reverse direction
    starts there) and outputs past it are zeros. state: one initial state per layer (None: zeros).
    dropout: between layers, a fresh mask per element, or one per sequence when ``locked``.
    weight_drop: DropConnect on the hidden-to-hidden weights (training only).
    """
    if lengths is not None and use_segments(rnns, x, lengths):
        return run_segmented(rnns, x, lengths, state, dropout, locked, weight_drop, training)
    return run_packed(rnns, x, lengths, state, dropout, locked, weight_drop, training)


def run_packed(rnns: nn.ModuleList, x: torch.Tensor, lengths: torch.Tensor | None, state: list[State] | None,
               dropout: float, locked: bool, weight_drop: float, training: bool) -> tuple[torch.Tensor, list[State]]:
    """:func:`run_stack` with each layer called once over the whole batch, packed when lengths are given."""
    steps = x.size(0)
    if lengths is not None:
        x = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
    final = []
    for k, layer in enumerate(rnns):
        x, s = run_layer(layer, x, None if state is None else state[k], weight_drop, training)
        final.append(s)
        if k < len(rnns) - 1:
            x = _dropout(x, dropout, training, locked)
    if lengths is not None:
        x = pad_packed_sequence(x, total_length=steps)[0]
    return x, final


def use_segments(rnns: nn.ModuleList, x: torch.Tensor, lengths: torch.Tensor) -> bool:
    """Whether a padded batch runs in length segments (:func:`run_segmented`) rather than packed; only on a CPU
    (cuDNN takes packed input natively), where torch runs a packed layer through ATen's per-step loop: never
    oneDNN's fused LSTM kernel, and for every cell a slow backward. The rule differs by cell, as measured
    (``benchmarks/padded_lstm.py [--cell gru|rnn_tanh]``, RESULTS.md; 2-core CPU, torch 2.13, 1 thread;
    packed / segments below).

    LSTM (segments run on oneDNN's fused kernel): each segment is one kernel call, so segments pay when most
    steps run in long calls: when the first segment (every sequence, up to the shortest length) covers half
    the longest length (``steps``) or more, or the segments average 4 steps (with gradients; 8 without), and
    always with gradients from 32 steps on (the packed backward grows faster than linearly with the length).
    One segment (every length equal) is one unpadded call, always the faster.
    Measured (hidden 128 and 512, batch 16 and 64, evenly spaced lengths), forward + backward: 0.6-1.1 at 1-2
    steps per segment under 32 steps, 1.0-1.2 at 4, 1.3-1.5 at 10; 1.1-2.3 at 64 steps whatever the
    segments, 2.2-7.6 at 200; with the first segment half the steps 1.0-1.5 under 32. Real batches: IMDB's (3-4
    segments over 130-200 steps) 3.5-6.9 best of 3 (9.7 on the median), Multi30k's sources (bidirectional, 4-9
    segments over 11-19 steps, the first 8-10 steps) 0.95-1.2; unbucketed bidirectional ones (lengths in 10-30,
    10-21 segments) 0.8-1.3, above 1.1 only for hidden 512 or batch 64 and hidden 256, so kept packed. Forward
    only: 0.6-1.2 at up to 4 steps per segment (mostly below 1), 0.9-1.9 from 8 on or with the first segment half
    the steps.

    GRU and plain RNN (ATen's loop either way: the gain is the unpacked backward): with gradients from 16 steps
    on, whatever the segments; else packed. Measured forward + backward, GRU (two runs) / tanh RNN / relu RNN:
    IMDB's batches (3-4 segments over 129-199 steps, and one of 400) 2.4-8.1 / 1.7-5.1 / -; 64 lengths 1..64
    1.52-1.55 / 1.87 / 1.84; 21 lengths in 10..30 1.12-1.13 / 1.18 / 1.10; Multi30k's sources (bidirectional
    256, 4-9 segments over 11-19 steps) 1.00-1.07 / 0.96-1.00 / 0.95-1.05; 64 sequences of 1-5 steps 0.92-0.95 /
    0.95 / 0.86. Forward only the packed loop is as fast or faster: 0.79-0.99 everywhere (one segment of 400
    steps included).
    """
    if x.device.type != "cpu":
        return False
    lengths = lengths.cpu()
    shortest, steps, segments = int(lengths.min()), int(lengths.max()), lengths.unique().numel()
    if not all(isinstance(layer, nn.LSTM) for layer in rnns):
        return torch.is_grad_enabled() and steps >= 16
    if segments == 1 or 2 * shortest >= steps:
        return True
    if torch.is_grad_enabled():
        return steps >= 32 or steps >= 4 * segments
    return steps >= 8 * segments


def describe_padded(rnns: nn.ModuleList, device: torch.device) -> str:
    """How :func:`run_stack` runs a padded batch with lengths through ``rnns`` on ``device``, for a log line."""
    if device.type == "cuda":
        return "packed by length (cuDNN)"
    if not all(isinstance(layer, nn.LSTM) for layer in rnns):
        return ("in length segments on ATen's C++ loop when training on 16 steps or more; else packed by length "
                "(the same loop)")
    return ("in length segments (oneDNN or ATen per segment, the faster for its length; packed, ATen's C++ loop, "
            "when too many lengths differ)")


@dataclass
class Segments:
    """A padded batch cut into length segments. Sorted longest first, the sequences still running at any
    step are a leading slice, so the steps [start, end) between two distinct lengths run as one unpadded
    call over the first ``running`` sequences, from the states the previous segment left them.

    order (B,): the batch rows longest first; restore (B,): its inverse; spans: (start, end, running) per
    segment, ``end`` going through the distinct lengths ascending; reverse (L, B): the step index that
    reverses each sorted sequence's valid part (L: the longest length).
    """

    order: torch.Tensor
    restore: torch.Tensor
    spans: list[tuple[int, int, int]]
    reverse: torch.Tensor

    @classmethod
    def of(cls, lengths: torch.Tensor, steps: int, device: torch.device) -> Segments:
        """lengths (B,), each in 1..steps, on any device and of any integer dtype."""
        ordered, order = lengths.detach().cpu().long().sort(descending=True, stable=True)
        if ordered.numel() == 0 or int(ordered[-1]) < 1 or int(ordered[0]) > steps:
            raise ValueError(f"lengths must lie in 1..{steps} (the padded length); got {lengths.tolist()}")
        distinct, counts = ordered.flip(0).unique_consecutive(return_counts=True)
        spans, start, running = [], 0, ordered.numel()
        for end, count in zip(distinct.tolist(), counts.tolist(), strict=True):
            spans.append((start, end, running))
            start, running = end, running - count
        time = torch.arange(int(ordered[0])).unsqueeze(1)
        reverse = torch.where(time < ordered, ordered - 1 - time, time)
        return cls(order.to(device), torch.argsort(order).to(device), spans, reverse.to(device))

    def run(self, layer: nn.RNNBase, weights: dict[str, torch.Tensor], reverse: bool, x: torch.Tensor,
            state: State) -> tuple[torch.Tensor, State]:
        """One direction of ``layer`` over sorted x (L, B, I) from a sorted state ((1, B, H), or an (h, c)
        pair of them) -> output (L, B, H), zeros past each length, and each sequence's state where its
        length ends, both in x's dtype."""
        batch = x.size(1)
        outputs, ended = [], []
        for start, end, running in self.spans:
            out, state = run_direction(layer, weights, reverse, x[start:end, :running],
                                       map_state(state, lambda s, n=running: s[:, :n]))
            # under autocast oneDNN returns bf16 and ATen its state's dtype: every segment hands on x's dtype
            out, state = out.to(x.dtype), map_state(state, lambda s: s.to(x.dtype))
            outputs.append(F.pad(out, (0, 0, 0, batch - running)))
            ended.append(state)
        # the rows [still running after segment k, running in it) end with segment k: longest first
        still = [running for _, _, running in self.spans[1:]] + [0]
        pieces = [map_state(s, lambda t, n=n: t[:, n:]) for s, n in zip(ended, still, strict=True)][::-1]
        return torch.cat(outputs), _cat_states(pieces, 1)

    def flip(self, x: torch.Tensor) -> torch.Tensor:
        """Each sorted sequence's valid steps of x (L, B, F) in reverse order, padding in place: its own inverse."""
        return x.gather(0, self.reverse.unsqueeze(-1).expand_as(x))


def run_segmented(rnns: nn.ModuleList, x: torch.Tensor, lengths: torch.Tensor, state: list[State] | None,
                  dropout: float, locked: bool, weight_drop: float, training: bool) -> tuple[torch.Tensor, list[State]]:
    """:func:`run_stack` in length segments (:class:`Segments`): the outputs, final states and gradients of
    :func:`run_packed` up to float rounding, each call on the faster kernel for its shape (for LSTM oneDNN's
    fused one for all but the shortest; ATen's loop for GRU and plain RNN). A bidirectional layer's reverse
    direction runs forward over each sequence's valid part reversed, so it starts at the sequence's last valid
    step.

    Outputs and final states come back in x's dtype whichever kernels ran, as from the packed path for lengths
    that differ (ATen's loop keeps its state's dtype): under bf16 autocast an LSTM's segments on oneDNN compute
    in bf16 (as the packed path's matrix products do) and return bf16, which each segment casts back, so states
    also pass from segment to segment in x's dtype. GRU and plain RNN layers compute in fp32 under CPU
    autocast, packed or in segments."""
    steps = x.size(0)
    segments = Segments.of(lengths, steps, x.device)
    x = x[: segments.reverse.size(0)].index_select(1, segments.order)
    initial = (zero_state(rnns, x.size(1), x.device, dtype=x.dtype) if state is None
               else map_state(state, lambda s: s.index_select(1, segments.order)))
    final = []
    for k, layer in enumerate(rnns):
        directions = 2 if layer.bidirectional else 1
        weights = layer_weights(layer, weight_drop, training)  # one DropConnect mask for every segment
        outputs, ends = [], []
        for d in range(directions):
            out, end = segments.run(layer, weights, d == 1, segments.flip(x) if d else x,
                                    map_state(initial[k], lambda s, d=d: s[d: d + 1]))
            outputs.append(segments.flip(out) if d else out)
            ends.append(end)
        x = torch.cat(outputs, -1)
        final.append(map_state(_cat_states(ends, 0), lambda s: s.index_select(1, segments.restore)))
        if k < len(rnns) - 1:
            x = sequence_dropout(x, dropout, training, locked)  # padding stays zero and is never read
    x = x.index_select(1, segments.restore)
    return F.pad(x, (0, 0, 0, 0, 0, steps - x.size(0))), final


def _cat_states(states: list[State], dim: int) -> State:
    """``torch.cat`` of recurrent states along ``dim``: of the tensors, or of each part of (h, c) pairs."""
    if isinstance(states[0], torch.Tensor):
        return torch.cat(states, dim)
    return tuple(torch.cat(part, dim) for part in zip(*states, strict=True))


def _dropout(x: torch.Tensor | PackedSequence, p: float, training: bool, locked: bool):
    """:func:`sequence_dropout` for a padded tensor or a PackedSequence (whose rows mix sequences)."""
    if not training or p == 0:
        return x
    if isinstance(x, torch.Tensor):
        return sequence_dropout(x, p, training, locked)
    if not locked:
        return x._replace(data=F.dropout(x.data, p, True))
    batch = int(x.batch_sizes[0])  # every sequence runs at the first step
    mask = x.data.new_empty(batch, x.data.size(1)).bernoulli_(1 - p) / (1 - p)
    return x._replace(data=x.data * mask[_packed_rows(x)])


def _packed_rows(packed: PackedSequence) -> torch.Tensor:
    """The batch row (in the caller's order) of each row of ``packed.data``: steps one after another,
    each holding the sequences still running, longest first."""
    batch_sizes = packed.batch_sizes
    width = int(batch_sizes[0])
    running = torch.arange(width) < batch_sizes[:, None]  # (T, B) in sorted order
    sorted_rows = torch.arange(width).expand_as(running)[running]
    rows = sorted_rows if packed.sorted_indices is None else packed.sorted_indices.cpu()[sorted_rows]
    return rows.to(packed.data.device)


def zero_state(rnns: nn.ModuleList, batch: int, device: torch.device | None = None, *,
               dtype: torch.dtype | None = None) -> list[State]:
    """The zero initial state of every layer for ``batch`` sequences: (D, B, H), or an (h, c) pair of them
    (D = 2 for a bidirectional layer); ``dtype`` None: torch's default dtype."""
    states = []
    for layer in rnns:
        directions = 2 if layer.bidirectional else 1
        h = torch.zeros(directions, batch, layer.hidden_size, device=device, dtype=dtype)
        states.append((h, h.clone()) if isinstance(layer, nn.LSTM) else h)
    return states

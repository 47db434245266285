"""Padded LSTM, GRU and plain RNN batches on the CPU in length segments (nn/stack.py): the packed path's results,
without packing."""

from __future__ import annotations

import pytest
import torch

from rnnkit.nn import stack
from rnnkit.nn.rnn import CELLS, State, lstm_cpu_kernel, map_state
from rnnkit.nn.stack import Segments, make_stack, run_packed, run_segmented, run_stack, use_segments

UNSORTED = [3, 9, 1, 6, 9, 3]


def _tensors(state: State) -> list[torch.Tensor]:
    """A layer's state as a list: [h], or [h, c] for LSTM."""
    return list(state) if isinstance(state, tuple) else [state]


def _state(cell: str, shape: tuple[int, ...]) -> State:
    """A random initial state of ``shape`` for a layer of ``cell``."""
    return (torch.randn(shape), torch.randn(shape)) if cell == "lstm" else torch.randn(shape)


def _run(run, rnns, x, lengths, state=None, **options):
    """Outputs, every layer's final tensors, then the gradients of the input, the initial states and the
    parameters of a loss that weighs every output and final state differently."""
    for p in rnns.parameters():
        p.grad = None
    x = x.clone().requires_grad_()
    state = map_state(state, lambda s: s.clone().requires_grad_())
    kwargs = {"dropout": 0.0, "locked": False, "weight_drop": 0.0, "training": False, **options}
    out, final = run(rnns, x, lengths, state, *kwargs.values())
    tensors = [out, *(s for layer in final for s in _tensors(layer))]
    weights = torch.Generator().manual_seed(7)
    sum((t * torch.randn(t.shape, generator=weights)).sum() for t in tensors).backward()
    inputs = [x] + ([] if state is None else [s for layer in state for s in _tensors(layer)])
    return [t.detach() for t in tensors] + [t.grad for t in inputs] + [p.grad.clone() for p in rnns.parameters()]


def _assert_all_close(got: list[torch.Tensor], want: list[torch.Tensor]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("lengths", [UNSORTED, [5, 5, 5], [4, 4], [1, 1, 7], [1], [11, 2, 11, 1]])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("given_state", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_segments_equal_the_packed_run(lengths: list[int], bidirectional: bool, layers: int, given_state: bool,
                                       cell: str) -> None:
    """Outputs (zeros past each length), every layer's final state (h, or (h, c)) and every gradient."""
    torch.manual_seed(0)
    rnns = make_stack(cell, 5, [7, 6][:layers], bidirectional)
    x = torch.randn(11, len(lengths), 5)
    shapes = [(2 if bidirectional else 1, len(lengths), m.hidden_size) for m in rnns]
    state = [_state(cell, shape) for shape in shapes] if given_state else None
    lengths = torch.tensor(lengths)
    _assert_all_close(_run(run_segmented, rnns, x, lengths, state), _run(run_packed, rnns, x, lengths, state))


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_segments_equal_the_packed_run_in_eval_mode_without_gradients_and_for_any_lengths_dtype(
        bidirectional: bool, cell: str) -> None:
    torch.manual_seed(0)
    rnns = make_stack(cell, 4, [6, 6], bidirectional).eval()
    x, lengths = torch.randn(9, 6, 4), torch.tensor(UNSORTED)
    _assert_all_close(_run(run_segmented, rnns, x, lengths), _run(run_packed, rnns, x, lengths))
    with torch.no_grad():
        want, want_final = run_packed(rnns, x, lengths, None, 0.0, False, 0.0, False)
        for typed in (lengths.int(), lengths.to(torch.int16), lengths.tolist()):
            got, final = run_segmented(rnns, x, torch.as_tensor(typed), None, 0.0, False, 0.0, False)
            _assert_all_close([got, *_tensors(final[0]), *_tensors(final[1])],
                              [want, *_tensors(want_final[0]), *_tensors(want_final[1])])


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_weight_drop_draws_one_mask_for_all_segments(bidirectional: bool, cell: str) -> None:
    """With the same seed the segments drop the same weights as the packed run (one mask per layer and
    direction, the reverse direction's included) and so give its results."""
    torch.manual_seed(0)
    rnns = make_stack(cell, 4, [6, 6], bidirectional)
    x, lengths = torch.randn(9, 6, 4), torch.tensor(UNSORTED)
    results = []
    for run in (run_segmented, run_packed):
        torch.manual_seed(3)
        results.append(_run(run, rnns, x, lengths, weight_drop=0.5, training=True))
    _assert_all_close(*results)
    plain = _run(run_segmented, rnns, x, lengths)
    for direction in range(2 if bidirectional else 1):  # each direction of the top layer dropped
        assert not torch.allclose(results[0][0][..., 6 * direction: 6 * direction + 6],
                                  plain[0][..., 6 * direction: 6 * direction + 6])


@pytest.mark.parametrize("run", [run_segmented, run_packed])
@pytest.mark.parametrize("locked", [False, True])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_padding_never_leaks_into_outputs_states_or_gradients(run, locked: bool, cell: str) -> None:
    """Padding filled with huge random values changes nothing, dropout between the layers included."""
    torch.manual_seed(0)
    rnns = make_stack(cell, 4, [6, 6], bidirectional=True)
    lengths = torch.tensor(UNSORTED)
    x = torch.randn(10, 6, 4)
    padding = torch.arange(10).unsqueeze(1) >= lengths
    noisy = x.masked_fill(padding.unsqueeze(-1), 0) + 1e4 * torch.randn(10, 6, 4) * padding.unsqueeze(-1)
    x_grad = 5 if cell == "lstm" else 3  # after the output and each layer's final h (and c)
    results = []
    for inputs in (x.masked_fill(padding.unsqueeze(-1), 0), noisy):
        torch.manual_seed(5)
        got = _run(run, rnns, inputs, lengths, dropout=0.5, locked=locked, training=True)
        got[x_grad] = got[x_grad].masked_fill(padding.unsqueeze(-1), 0)  # past a length it is zero anyway
        results.append(got)
    _assert_all_close(*results)
    assert not results[0][0][padding].any()
    assert not results[0][x_grad][padding].any()


def test_a_cpu_training_batch_of_32_steps_or_more_is_never_packed_a_short_gru_one_or_one_without_gradients_is(
        monkeypatch: pytest.MonkeyPatch) -> None:
    packed = []
    real_pack = stack.pack_padded_sequence

    def pack(*args, **kwargs):
        packed.append(1)
        return real_pack(*args, **kwargs)

    monkeypatch.setattr(stack, "pack_padded_sequence", pack)
    x, lengths = torch.randn(40, 6, 4), torch.tensor([40, 3, 17, 9, 40, 1])
    for cell in CELLS:
        out, _ = run_stack(make_stack(cell, 4, [5, 5], bidirectional=True), x, lengths, training=True)
        out.sum().backward()
    assert not packed
    gru = make_stack("gru", 4, [5])
    run_stack(gru, x[:15], lengths.clamp(max=15))  # 15 steps: packed
    with torch.no_grad():
        run_stack(gru, x, lengths)
    assert packed == [1, 1]


def test_the_reverse_direction_runs_on_onednn_in_segments() -> None:
    """Both directions of every segment long enough run on oneDNN's fused kernel, forward and backward."""
    from torch.profiler import profile

    torch.manual_seed(0)
    rnns = make_stack("lstm", 4, [8], bidirectional=True)
    x, lengths = torch.randn(30, 4, 4), torch.tensor([30, 30, 10, 10])
    with profile() as prof:
        out, _ = run_segmented(rnns, x, lengths, None, 0.0, False, 0.0, True)
        out.sum().backward()
    calls = [e.name for e in prof.events()]
    assert calls.count("aten::mkldnn_rnn_layer") == 4  # 2 segments x 2 directions
    assert calls.count("aten::mkldnn_rnn_layer_backward") == 4


@pytest.mark.parametrize("lengths, grad, segments", [
    ([5, 5, 5], False, True),                  # one segment: one unpadded call
    ([3, 3, 1], False, False),                 # 2 segments over 3 steps, the first 1 step
    ([8, 7, 6, 5], True, True),                # the first segment (5 steps) covers half of 8 or more
    ([8, 7, 6, 3], True, False),               # not: 3 steps; 4 segments of 2 steps on average
    ([8, 2, 8], True, True),                   # 4 steps per segment: enough with gradients
    ([8, 3], False, False),                    # but not without: 8 needed
    ([16, 7], False, True),
    ([40, *range(1, 31)], True, True),         # from 32 steps on, always with gradients
    ([40, *range(1, 31)], False, False),
    ([31, *range(1, 31)], True, False),
])
def test_the_segments_rule(lengths: list[int], grad: bool, segments: bool) -> None:
    rnns = make_stack("lstm", 3, [4])
    x = torch.zeros(max(lengths), len(lengths), 3)
    with torch.set_grad_enabled(grad):
        assert use_segments(rnns, x, torch.tensor(lengths)) == segments


@pytest.mark.parametrize("cell", ["gru", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("lengths, grad, segments", [
    ([*range(16, 0, -1)], True, True),         # 16 steps with gradients, whatever the segments
    ([15, 15], True, False),                   # fewer steps: packed, one segment included
    ([400, 400], False, False),                # never without gradients
    ([40, 20], False, False),
])
def test_the_segments_rule_for_gru_and_plain_rnn(cell: str, lengths: list[int], grad: bool, segments: bool) -> None:
    x = torch.zeros(max(lengths), len(lengths), 3)
    with torch.set_grad_enabled(grad):
        assert use_segments(make_stack(cell, 3, [4]), x, torch.tensor(lengths)) == segments
    assert not use_segments(make_stack(cell, 3, [4]), x.to("meta"), torch.tensor(lengths))  # off the CPU: packed




def test_segments_cut_a_batch_at_its_distinct_lengths() -> None:
    cut = Segments.of(torch.tensor(UNSORTED), 10, torch.device("cpu"))
    assert cut.spans == [(0, 1, 6), (1, 3, 5), (3, 6, 3), (6, 9, 2)]
    assert cut.order.tolist() == [1, 4, 3, 0, 5, 2] and cut.restore[cut.order].tolist() == list(range(6))
    assert cut.reverse[:, 4].tolist() == [2, 1, 0, 3, 4, 5, 6, 7, 8]  # sorted row 4: length 3
    for bad in ([0, 3], [11, 3]):
        with pytest.raises(ValueError, match=r"lengths must lie in 1\.\.10"):
            Segments.of(torch.tensor(bad), 10, torch.device("cpu"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("lengths, kernels", [
    ([9, 6, 3, 9, 6, 3], ["onednn"] * 3),
    (UNSORTED, ["aten", "aten", "onednn", "onednn"]),
    ([9, 8, 8, 9, 8, 8], ["onednn", "aten"]),
    ([9] * 6, ["onednn"]),
])
def test_under_bf16_autocast_the_segments_return_the_inputs_dtype(lengths: list[int], kernels: list[str],
                                                                  dtype: torch.dtype) -> None:
    """Under ``train.cpu_amp`` an LSTM's segments on oneDNN compute in bf16 (returning bf16) and those on ATen in
    their state's dtype: whichever ran, in whatever order, the outputs and every final state come back in the
    input's dtype, as the packed run returns them for lengths that differ, and close to it."""
    torch.manual_seed(0)
    rnns = make_stack("lstm", 4, [8, 8], bidirectional=True)
    x, lengths = torch.randn(9, 6, 4, dtype=dtype), torch.tensor(lengths)
    spans = Segments.of(lengths, 9, x.device).spans
    assert [lstm_cpu_kernel(end - start, running, 8, training=True) for start, end, running in spans] == kernels
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want, want_final = run_packed(rnns, x, lengths, None, 0.0, False, 0.0, False)
        got, final = run_segmented(rnns, x, lengths, None, 0.0, False, 0.0, False)
    assert {t.dtype for t in [got, *(s for layer in final for s in layer)]} == {dtype}
    if len(spans) > 1:
        assert {t.dtype for t in [want, *(s for layer in want_final for s in layer)]} == {dtype}
    torch.testing.assert_close(got.float(), want.float(), rtol=0, atol=3e-2)
    if dtype == torch.float32:  # still computed in bf16 (oneDNN's segments), only handed on in x's dtype
        assert not torch.equal(got, run_segmented(rnns, x, lengths, None, 0.0, False, 0.0, False)[0])
    got.float().sum().backward()
    assert rnns[0].weight_hh_l0_reverse.grad.abs().sum() > 0

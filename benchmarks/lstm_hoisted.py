#!/usr/bin/env python3
"""Prototype (not used by rnnkit): a hand-written CPU LSTM training path against torch.nn.LSTM (oneDNN).

The question (issue 14): can a training step of a one-layer, one-direction LSTM over an unpadded batch
at seed 003's shape (28 steps, batch 32, input 28, hidden 128) beat torch's CPU kernel by >= 1.3x?
The prototype is a ``torch.autograd.Function``: one GEMM for every step's input projection, then per step
one ``addmm_`` into the gate buffer and in-place pointwise ops; its backward walks the steps computing the
gate gradients and gets dW_hh, dW_ih, the bias and dX with one GEMM (or sum) each over all steps.

Per shape it first checks the prototype's outputs and gradients (an initial state included) against
nn.LSTM's, then times one whole update (LSTM, Linear head, cross entropy, backward, Adam) with each path
and nn.LSTM's forward + backward alone: interleaved rounds, CPU seconds, 1 thread, the median. It also
times the matrix products alone (what a fused kernel could not avoid: the per-step recurrent GEMMs forward
and backward and the all-steps weight GEMMs), the floor of any path built on torch's GEMMs.
Prints a JSON line per shape and a table.

  OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python benchmarks/lstm_hoisted.py
  OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python benchmarks/lstm_hoisted.py --shapes 28x32x28x128 --rounds 5
  python benchmarks/lstm_hoisted.py --quick
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, machine, markdown_table  # noqa: E402


class HoistedLSTM(torch.autograd.Function):
    """One LSTM layer (torch.nn's gate order i, f, g, o) over x (T, B, I) from (h0, c0) (B, H)."""

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        steps, batch, _ = x.shape
        hidden = w_hh.size(1)
        gates = torch.addmm(b_ih + b_hh, x.flatten(0, 1), w_ih.t()).view(steps, batch, 4 * hidden)
        hs, cs = x.new_empty(steps + 1, batch, hidden), x.new_empty(steps + 1, batch, hidden)
        tanh_cs = x.new_empty(steps, batch, hidden)
        hs[0], cs[0] = h0, c0
        for t in range(steps):
            a = gates[t].addmm_(hs[t], w_hh.t())  # the gates' activations replace their inputs in place
            a[:, :2 * hidden].sigmoid_()
            a[:, 2 * hidden:3 * hidden].tanh_()
            a[:, 3 * hidden:].sigmoid_()
            i, f, g, o = a.chunk(4, dim=1)
            torch.mul(f, cs[t], out=cs[t + 1]).addcmul_(i, g)
            torch.mul(o, torch.tanh(cs[t + 1], out=tanh_cs[t]), out=hs[t + 1])
        ctx.save_for_backward(x, w_ih, w_hh, gates, hs, cs, tanh_cs)
        return hs[1:], hs[steps].clone(), cs[steps].clone()

    @staticmethod
    def backward(ctx, d_out, d_hn, d_cn):
        x, w_ih, w_hh, gates, hs, cs, tanh_cs = ctx.saved_tensors
        steps, batch, _ = x.shape
        d_gates = torch.empty_like(gates)
        dh = d_hn.clone() if d_hn is not None else x.new_zeros(batch, w_hh.size(1))
        dc = d_cn.clone() if d_cn is not None else torch.zeros_like(dh)
        for t in range(steps - 1, -1, -1):
            if d_out is not None:
                dh += d_out[t]
            i, f, g, o = gates[t].chunk(4, dim=1)
            di, df, dg, do = d_gates[t].chunk(4, dim=1)
            dc += dh * o * (1 - tanh_cs[t] ** 2)
            torch.mul(dh, tanh_cs[t], out=do).mul_(o * (1 - o))
            torch.mul(dc, g, out=di).mul_(i * (1 - i))
            torch.mul(dc, cs[t], out=df).mul_(f * (1 - f))
            torch.mul(dc, i, out=dg).mul_(1 - g * g)
            dc *= f
            dh = d_gates[t].mm(w_hh)
        flat = d_gates.flatten(0, 1)
        d_bias = flat.sum(0)
        dx = flat.mm(w_ih).view_as(x) if ctx.needs_input_grad[0] else None
        return dx, dh, dc, flat.t().mm(x.flatten(0, 1)), flat.t().mm(hs[:-1].flatten(0, 1)), d_bias, d_bias


def hoisted(lstm: nn.LSTM, x: torch.Tensor, state=None):
    """nn.LSTM's call, (output, (h, c)), through the prototype, on the module's own parameters."""
    if state is None:
        state = (x.new_zeros(1, x.size(1), lstm.hidden_size),) * 2
    out, h, c = HoistedLSTM.apply(x, state[0][0], state[1][0], lstm.weight_ih_l0, lstm.weight_hh_l0,
                                  lstm.bias_ih_l0, lstm.bias_hh_l0)
    return out, (h[None], c[None])


def largest_difference(steps: int, batch: int, inputs: int, hidden: int) -> float:
    """The largest difference between the two paths' outputs and gradients (relative to the value)."""
    torch.manual_seed(0)
    lstm = nn.LSTM(inputs, hidden)
    leaves = [torch.randn(steps, batch, inputs), torch.randn(1, batch, hidden), torch.randn(1, batch, hidden)]
    for leaf in leaves:
        leaf.requires_grad_()
    results = []
    for path in (lstm, lambda x, s: hoisted(lstm, x, s)):
        out, (h, c) = path(leaves[0], (leaves[1], leaves[2]))
        tensors = [out, h, c]
        loss = (out * torch.linspace(-1, 1, hidden)).sum() + (h ** 2).sum() + (0.5 * c).sum()
        tensors += torch.autograd.grad(loss, list(lstm.parameters()) + leaves)
        results.append(tensors)
    return max(float(((a - b).abs() / (1 + b.abs())).max().detach()) for a, b in zip(*results, strict=True))


def update_ms(steps: int, batch: int, inputs: int, hidden: int, rounds: int, reps: int = 5) -> dict[str, float]:
    """CPU ms of one training update with each path: the median of ``rounds`` interleaved rounds."""
    torch.manual_seed(0)
    lstm, head = nn.LSTM(inputs, hidden), nn.Linear(hidden, 10)
    opt = torch.optim.Adam(list(lstm.parameters()) + list(head.parameters()), 1e-3)
    x, y = torch.randn(steps, batch, inputs), torch.randint(0, 10, (batch,))
    paths = {"nn.LSTM": lambda: lstm(x), "prototype": lambda: hoisted(lstm, x)}

    def update(path):
        h = paths[path]()[1][0]
        opt.zero_grad()
        F.cross_entropy(head(h[0]), y).backward()
        opt.step()

    def lstm_alone():  # forward + backward of nn.LSTM without the head and Adam
        lstm(x)[1][0].sum().backward()

    fns = {name: (lambda name=name: update(name)) for name in paths}
    return median_ms(fns | {"nn.LSTM fwd+bwd alone": lstm_alone}, rounds, reps)


def gemm_floor_ms(steps: int, batch: int, inputs: int, hidden: int, rounds: int) -> float:
    """CPU ms of the matrix products alone of one forward + backward (dX left out: inputs are data)."""
    h, d = torch.randn(batch, hidden), torch.randn(batch, 4 * hidden)
    w_hh, gates = torch.randn(4 * hidden, hidden), torch.randn(batch, 4 * hidden)
    flat, hs, x = torch.randn(steps * batch, 4 * hidden), torch.randn(steps * batch, hidden), torch.randn(
        steps * batch, inputs)

    def products():
        for _ in range(steps):
            gates.addmm_(h, w_hh.t())
            d.mm(w_hh)
        flat.t().mm(hs), flat.t().mm(x), flat.sum(0)

    return median_ms({"gemm": products}, rounds, 5)["gemm"]


def median_ms(fns: dict, rounds: int, reps: int) -> dict[str, float]:
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.process_time()
            for _ in range(reps):
                fn()
            times[name].append((time.process_time() - start) / reps * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def shape(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split("x"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", type=lambda s: [shape(v) for v in s.split(",")],
                   default=[shape(v) for v in "28x32x28x128,28x32x28x256,28x64x28x128,100x64x64x256".split(",")],
                   help="STEPSxBATCHxINPUTxHIDDEN,...")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--quick", action="store_true", help="two small shapes, 2 rounds")
    args = p.parse_args(argv)
    if args.quick:
        args.shapes, args.rounds = [(5, 3, 7, 16), (28, 32, 28, 128)], 2
    torch.set_num_threads(1)
    rows = []
    for steps, batch, inputs, hidden in args.shapes:
        diff = largest_difference(steps, batch, inputs, hidden)
        ms = update_ms(steps, batch, inputs, hidden, args.rounds)
        floor = gemm_floor_ms(steps, batch, inputs, hidden, args.rounds)
        emit({"bench": "lstm_hoisted", "steps": steps, "batch": batch, "input": inputs, "hidden": hidden,
              "max_rel_diff": diff, "update_ms": ms, "gemm_floor_ms": floor,
              "speedup": ms["nn.LSTM"] / ms["prototype"], "machine": machine()})
        rows.append([f"{steps}x{batch}x{inputs}x{hidden}", f"{diff:.1e}", f"{ms['nn.LSTM']:.2f}",
                     f"{ms['prototype']:.2f}", f"{ms['nn.LSTM'] / ms['prototype']:.2f}x",
                     f"{ms['nn.LSTM fwd+bwd alone']:.2f}", f"{floor:.2f}"])
    print(f"\nCPU ms per update, median of {args.rounds} interleaved rounds, 1 thread\n")
    print(markdown_table(["steps x batch x input x hidden", "max rel. diff", "nn.LSTM (oneDNN)", "prototype",
                          "prototype speed-up", "nn.LSTM fwd+bwd alone",
                          "its GEMMs alone"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

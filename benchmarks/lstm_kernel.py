#!/usr/bin/env python3
"""torch.nn.LSTM on the CPU: oneDNN's fused kernel vs ATen's C++ loop, per call shape, and rnnkit's rule.

For each hidden size x batch x time steps, inference (no grad) and training (forward + backward) calls
of one ``nn.LSTM(H, H)`` layer are timed with oneDNN on (torch's default) and off
(``torch.backends.mkldnn.enabled = False``: ATen), interleaved, in CPU time, 1 thread; the best of
``--repeats`` runs of each. Prints a JSON line per shape and a table with the ATen speed-up and the
kernel ``rnnkit.nn.rnn.lstm_cpu_kernel`` picks for the shape; "ok" when the pick is the faster kernel or
within 10% of it.

  python benchmarks/lstm_kernel.py                                   # the default grid
  python benchmarks/lstm_kernel.py --hidden 512 --batch 1 --steps 1,3,8,16
  python benchmarks/lstm_kernel.py --quick
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, emit, machine, markdown_table  # noqa: E402

sys.path.insert(0, str(REPO / "src"))
from rnnkit.nn.rnn import lstm_cpu_kernel  # noqa: E402


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=ints, default=ints("128,200,256,512,1024"))
    p.add_argument("--batch", type=ints, default=ints("1,16,64"))
    p.add_argument("--steps", type=ints, default=ints("1,2,3,4,8,16,35"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="hidden 200,512; batch 1,16; steps 1,3,35")
    return p.parse_args(argv)


def cpu_seconds_per_call(fn, budget_s: float = 0.15) -> float:
    fn()
    start = time.process_time()
    calls = 0
    while time.process_time() - start < budget_s:
        fn()
        calls += 1
    return (time.process_time() - start) / calls


def measure(hidden: int, batch: int, steps: int, training: bool, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    layer = torch.nn.LSTM(hidden, hidden)
    x = torch.randn(steps, batch, hidden)

    def call():
        if training:
            out, _ = layer(x)
            out.sum().backward()
        else:
            with torch.no_grad():
                layer(x)

    best = {"onednn": float("inf"), "aten": float("inf")}
    for _ in range(repeats):
        for kernel in best:
            torch.backends.mkldnn.enabled = kernel == "onednn"
            try:
                best[kernel] = min(best[kernel], cpu_seconds_per_call(call))
            finally:
                torch.backends.mkldnn.enabled = True
    return best


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.hidden, args.batch, args.steps, args.repeats = [200, 512], [1, 16], [1, 3, 35], 2
    torch.set_num_threads(1)
    rows, good = [], 0
    for training in (False, True):
        for hidden in args.hidden:
            for batch in args.batch:
                for steps in args.steps:
                    t = measure(hidden, batch, steps, training, args.repeats)
                    pick = lstm_cpu_kernel(steps, batch, hidden, training)
                    ok = t[pick] <= 1.1 * min(t.values())
                    good += ok
                    emit({"bench": "lstm_kernel", "hidden": hidden, "batch": batch, "steps": steps,
                          "training": training, "onednn_us": t["onednn"] * 1e6, "aten_us": t["aten"] * 1e6,
                          "rule": pick, "ok": ok})
                    rows.append(["train" if training else "infer", hidden, batch, steps, f"{t['onednn'] * 1e6:,.0f}",
                                 f"{t['aten'] * 1e6:,.0f}", f"{t['onednn'] / t['aten']:.2f}", pick,
                                 "ok" if ok else "MISS"])
    emit({"bench": "lstm_kernel", "summary": {"shapes": len(rows), "rule_ok": good}, "machine": machine()})
    print(f"\nCPU us per call, best of {args.repeats}, 1 thread; rule ok on {good} of {len(rows)} shapes\n")
    print(markdown_table(["call", "hidden", "batch", "steps", "oneDNN us", "ATen us", "ATen speed-up", "rule",
                          "rule ok (<= 1.1x best)"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Padded LSTM (or, with ``--cell``, GRU / plain RNN) batches on the CPU: torch's packed path vs rnnkit's length
segments (``nn/stack.py``).

Each case runs one recurrent stack over a padded batch with lengths, forward + backward (or forward only
under no_grad), through ``run_packed`` (pack_padded_sequence: ATen's per-step loop) and ``run_segmented``
(one fused call per distinct length, see ``rnnkit.nn.stack.Segments``) alternately in this process, 1
thread; CPU seconds, the best of ``--repeats`` (every run's in the JSON line: the packed path's vary
more, see RESULTS.md). Prints a JSON line per case and a table with the ratio,
the number of segments and what ``run_stack`` picks (``use_segments``).

The IMDB cases take the lengths of real batches: the first epoch's length-bucketed training batches of
the imdb-lstm recipe (the same reader and batching as ``rnnkit train classify``; ~10 CPU s to tokenize),
``--batches`` of them spread over the range of batch lengths; the seq2seq cases likewise Multi30k's source
lengths in bucketed batches of 64 pairs. The other cases draw lengths at random.

  python benchmarks/padded_lstm.py                       # every case
  python benchmarks/padded_lstm.py --cases seq2seq,short --repeats 3
  python benchmarks/padded_lstm.py --quick
  python benchmarks/padded_lstm.py --cell gru --cases imdb-lstm,seq2seq,spread,short   # the same shapes, GRU layers
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_DIR, REPO, emit, machine, markdown_table  # noqa: E402

sys.path.insert(0, str(REPO / "src"))
from rnnkit.nn.rnn import CELLS  # noqa: E402
from rnnkit.nn.stack import Segments, make_stack, run_packed, run_segmented, use_segments  # noqa: E402

#: name -> (input size, hidden size, layers, bidirectional, what it stands for)
SHAPES = {
    "imdb-lm-lstm": (256, 512, 1, False, "LM-LSTM / SA-LSTM fine-tuning: embedding 256 -> LSTM 512"),
    "imdb-lstm": (128, 128, 1, False, "imdb-lstm: embedding 128 -> LSTM 128"),
    "seq2seq": (256, 256, 1, True, "a bidirectional seq2seq encoder: 256 -> 2 x LSTM 256, Multi30k's bucketed batches"),
    "seq2seq-2": (256, 256, 2, True, "the same, 2 layers"),
    "seq2seq-random": (256, 256, 1, True, "the same, 1 layer, on 80 lengths drawn uniformly from 10-30 (unbucketed)"),
    "spread": (256, 512, 1, False, "stress: 64 sequences of 64 different lengths 1..64"),
    "short": (256, 512, 1, False, "stress: 64 sequences of 1-5 steps"),
}
#: a case ending in "-eval" runs its shape forward only, under no_grad (validation, inference)
CASES = ("imdb-lm-lstm", "imdb-lstm", "imdb-lm-lstm-eval", "imdb-lstm-eval", "seq2seq", "seq2seq-eval", "seq2seq-2",
         "seq2seq-random", "spread", "spread-eval", "short", "short-eval")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    p.add_argument("--batches", type=int, default=3, help="real IMDB batches per IMDB case")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--cell", default="lstm", choices=CELLS, help="the layers' cell (the shapes stay the same)")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    p.add_argument("--quick", action="store_true", help="the cases without data, once: seq2seq-random,spread,short")
    return p.parse_args(argv)


def spread_over(batches: list[torch.Tensor], count: int) -> list[torch.Tensor]:
    """``count`` batches at evenly spaced quantiles (1/2count, 3/2count, ...) of the batches' longest lengths."""
    batches = sorted(batches, key=lambda b: int(b.max()))
    return [batches[int((2 * i + 1) * len(batches) / (2 * count))] for i in range(count)]


def imdb_batch_lengths(data_dir: Path, count: int) -> list[torch.Tensor]:
    """The lengths of ``count`` of the imdb-lstm recipe's first-epoch training batches (:func:`spread_over`)."""
    from rnnkit.config import load_config
    from rnnkit.distributed import DistInfo
    from rnnkit.tasks.classify import ClassifyTask

    cfg = load_config("imdb-lstm", ["train.device=cpu", "train.threads=1"],
                      {"data": {"train": str(data_dir / "imdb" / "train.jsonl.gz")}})
    data = ClassifyTask(cfg, DistInfo(), torch.device("cpu")).train_data
    return spread_over([torch.as_tensor(data.lengths[b]) for b in data.plan(0)], count)


def multi30k_batch_lengths(data_dir: Path, count: int) -> list[torch.Tensor]:
    """The source lengths of ``count`` Multi30k de->en training batches of 64 pairs, bucketed as the seq2seq
    task buckets them (by the longer side); words and punctuation counted as the recipe's word tokenizer
    splits them, plus <eos>."""
    from rnnkit.data.batching import BucketBatches

    def lengths(side: str) -> list[int]:
        lines = (data_dir / "multi30k" / f"train.{side}").read_text(encoding="utf-8").splitlines()
        return [len(re.findall(r"\w+|[^\w\s]", line)) + 1 for line in lines]

    src, trg = lengths("de"), lengths("en")
    data = BucketBatches([max(s, t) for s, t in zip(src, trg, strict=True)], lambda b: b, 64)
    return spread_over([torch.tensor([src[i] for i in b]) for b in data.plan(0)], count)


def random_lengths(case: str, generator: torch.Generator) -> list[torch.Tensor]:
    case = case.removesuffix("-eval")
    if case == "seq2seq-random":
        return [torch.randint(10, 31, (80,), generator=generator)]
    if case == "spread":
        return [torch.randperm(64, generator=generator) + 1]
    return [torch.randint(1, 6, (64,), generator=generator)]


def cpu_seconds(fn: Callable[[], None]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def measure(case: str, lengths: torch.Tensor, repeats: int, cell: str = "lstm") -> dict:
    inputs, hidden, layers, bidirectional, _ = SHAPES[case.removesuffix("-eval")]
    training = not case.endswith("-eval")
    torch.manual_seed(0)
    rnns = make_stack(cell, inputs, [hidden] * layers, bidirectional)
    x = torch.randn(int(lengths.max()), lengths.numel(), inputs)

    def call(run):
        def go():
            with torch.set_grad_enabled(training):
                out, _ = run(rnns, x, lengths, None, 0.0, False, 0.0, training)
                if training:
                    out.sum().backward()
        return go

    with torch.set_grad_enabled(training):
        picked = use_segments(rnns, x, lengths)
    runs = {"packed": call(run_packed), "segments": call(run_segmented)}
    seconds = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            seconds[name].append(cpu_seconds(fn))
    best = {name: min(times) for name, times in seconds.items()}
    return {"bench": "padded_lstm", "case": case, "cell": cell, "training": training, "batch": lengths.numel(),
            "steps": int(lengths.max()), "valid_steps": int(lengths.sum()),
            "segments": len(Segments.of(lengths, x.size(0), x.device).spans),
            "packed_s": best["packed"], "segments_s": best["segments"], "packed_runs_s": seconds["packed"],
            "segments_runs_s": seconds["segments"],
            "speedup": best["packed"] / best["segments"], "picked": "segments" if picked else "packed"}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.cases, args.repeats = "seq2seq-random,spread,short", 1
    cases = args.cases.split(",")
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        sys.exit(f"error: unknown case(s) {', '.join(unknown)} (of {', '.join(CASES)})")
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    real = {"imdb": imdb_batch_lengths, "seq2seq": multi30k_batch_lengths}
    real = {kind: find(args.data_dir, args.batches) for kind, find in real.items()
            if any(case.split("-")[0] == kind and case != "seq2seq-random" for case in cases)}
    rows = []
    for case in cases:
        kind = case.split("-")[0]
        for lengths in real[kind] if kind in real and case != "seq2seq-random" else random_lengths(case, generator):
            r = measure(case, lengths, args.repeats, args.cell)
            emit(r)
            rows.append([case, "fwd+bwd" if r["training"] else "fwd (no_grad)", r["batch"], r["steps"],
                         r["valid_steps"], r["segments"], f"{r['packed_s']:.3f}", f"{r['segments_s']:.3f}",
                         f"{r['speedup']:.2f}", r["picked"]])
    emit({"bench": "padded_lstm", "machine": machine(), "cell": args.cell, "repeats": args.repeats})
    print(f"\n{args.cell} layers: CPU s per call, best of {args.repeats}, 1 thread\n")
    print(markdown_table(["case", "call", "batch", "longest", "valid steps", "segments", "packed s", "segments s",
                          "packed / segments", "run_stack picks"], rows))
    for case in dict.fromkeys(cases):
        print(f"- {case}: {SHAPES[case.removesuffix('-eval')][4]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

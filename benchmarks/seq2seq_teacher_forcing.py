#!/usr/bin/env python3
"""Seq2seq training with teacher forcing: rnnkit's fused decoder vs a loop of its own step().

For each decoder style, one training update (forward, cross-entropy, backward, Adam) on the same model
and batch is timed two ways: ``Seq2SeqModel.forward`` (one fused torch.nn call per decoder layer over
the whole target; input-feeding attention: its loop with the token projection precomputed) and a
Python loop of ``step()`` fed the gold previous token, as a decoder without fused teacher forcing trains.
CPU time of the process (robust on a shared machine), 1 thread by default, best of ``--repeats``
rounds of ``--updates`` updates each, the two modes interleaved. Prints a JSON line per style and a
table of target tokens/s and the fused / step ratio.

  python benchmarks/seq2seq_teacher_forcing.py                         # hidden 256, batch 32, 20 -> 20
  python benchmarks/seq2seq_teacher_forcing.py --hidden 512 --batch 64 --cell gru
  python benchmarks/seq2seq_teacher_forcing.py --quick
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, emit, machine, markdown_table  # noqa: E402

sys.path.insert(0, str(REPO / "src"))
from rnnkit.models.seq2seq import Seq2SeqModel, Seq2SeqModelConfig  # noqa: E402

STYLES = {"repeat": {"decoder": "repeat"}, "state": {"decoder": "state"}, "peek": {"decoder": "peek"},
          "attention": {"decoder": "attention"},
          "attention+feeding": {"decoder": "attention", "input_feeding": True}}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cell", default="lstm")
    p.add_argument("--hidden", type=int, default=256, help="hidden and embedding size")
    p.add_argument("--vocab", type=int, default=1000, help="source and target vocabulary size")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--src-len", type=int, default=20)
    p.add_argument("--trg-len", type=int, default=20)
    p.add_argument("--styles", default=",".join(STYLES), help="comma-separated: " + ", ".join(STYLES))
    p.add_argument("--updates", type=int, default=5, help="updates per timed round")
    p.add_argument("--repeats", type=int, default=3, help="rounds per mode; the best counts")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="smoke test: hidden 64, batch 8, one round of 2 updates")
    args = p.parse_args(argv)
    if args.quick:
        args.hidden, args.batch, args.updates, args.repeats = 64, 8, 2, 1
    return args


def fused_loss(model: Seq2SeqModel, src, lengths, trg_in, trg_out) -> torch.Tensor:
    return F.cross_entropy(model(src, lengths, trg_in).flatten(0, 1), trg_out.flatten())


def step_loss(model: Seq2SeqModel, src, lengths, trg_in, trg_out) -> torch.Tensor:
    state = model.start(model.encode(src, lengths))
    logits = []
    for t in range(trg_in.size(0)):
        out, state = model.step(trg_in[t], state)
        logits.append(out)
    return F.cross_entropy(torch.stack(logits).flatten(0, 1), trg_out.flatten())


def time_updates(model, optimizer, loss_fn, batch, updates: int) -> float:
    start = time.process_time()
    for _ in range(updates):
        loss = loss_fn(model, *batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.process_time() - start


def measure(args, style: str) -> dict:
    torch.manual_seed(0)
    cfg = Seq2SeqModelConfig(cell=args.cell, hidden_size=args.hidden, src_embedding_size=args.hidden,
                             trg_embedding_size=args.hidden, **STYLES[style])
    model = Seq2SeqModel(cfg, args.vocab, args.vocab).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    src = torch.randint(4, args.vocab, (args.src_len, args.batch))
    lengths = torch.randint(args.src_len // 2, args.src_len + 1, (args.batch,))
    lengths[0] = args.src_len
    trg = torch.randint(4, args.vocab, (args.trg_len + 1, args.batch))
    batch = (src, lengths, trg[:-1], trg[1:])
    best = {"fused": float("inf"), "step": float("inf")}
    for fn in (fused_loss, step_loss):  # warm-up
        time_updates(model, optimizer, fn, batch, 1)
    for _ in range(args.repeats):
        for mode, fn in (("fused", fused_loss), ("step", step_loss)):
            best[mode] = min(best[mode], time_updates(model, optimizer, fn, batch, args.updates))
    tokens = args.updates * args.batch * args.trg_len
    record = {"bench": "seq2seq_teacher_forcing", "style": style, "cell": args.cell, "hidden": args.hidden,
              "vocab": args.vocab, "batch": args.batch, "src_len": args.src_len, "trg_len": args.trg_len,
              "threads": args.threads, **{f"{mode}_tokens_per_s": tokens / best[mode] for mode in best}}
    record["ratio"] = record["fused_tokens_per_s"] / record["step_tokens_per_s"]
    return record


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    emit({"bench": "machine", **machine()})
    rows = []
    for style in args.styles.split(","):
        record = measure(args, style)
        emit(record)
        rows.append([style, f"{record['fused_tokens_per_s']:,.0f}", f"{record['step_tokens_per_s']:,.0f}",
                     f"{record['ratio']:.2f}x"])
    print(markdown_table(["decoder", "fused tokens/s", "step-loop tokens/s", "fused / step"], rows))


if __name__ == "__main__":
    main()

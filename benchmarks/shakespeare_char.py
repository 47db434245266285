#!/usr/bin/env python3
"""Tiny Shakespeare, character level: train the shakespeare-char recipe with the rnnkit CLI and score it.

Runs ``rnnkit train lm --recipe shakespeare-char --data <tinyshakespeare/input.txt> --out
runs/bench-shakespeare-char`` as a subprocess (exactly as a user would), records the wall time and reads
the model directory: log.csv (validation loss of every evaluation on the held-out last 10% of lines,
training tokens/s) and results.json. Target: validation loss <= 1.45 nats/char (best evaluation; the
saved model.safetensors holds those weights).

  python benchmarks/shakespeare_char.py                          # full recipe (12 epochs, early stop)
  python benchmarks/shakespeare_char.py --set train.epochs=2     # shortened
  python benchmarks/shakespeare_char.py --device cuda
  python benchmarks/shakespeare_char.py --quick                  # smoke test, < 1 min

Prints one JSON line starting with {"bench" and a Markdown table.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, machine, markdown_table, recipe_parser, train_recipe  # noqa: E402

TARGET_LOSS = 1.45
QUICK = ["train.max_steps=5", "data.max_lines=600", "train.batch_size=8", "train.bptt=50", "train.eval_every=0",
         "train.threads=1", "train.progress=false"]


CORPUS = "tinyshakespeare/input.txt"


def main(argv=None) -> int:
    p = recipe_parser(__doc__, "shakespeare-char", CORPUS, QUICK)
    p.add_argument("--target-loss", type=float, default=TARGET_LOSS, help=f"nats/char (default {TARGET_LOSS})")
    args = p.parse_args(argv)
    record = {"bench": "shakespeare_char", **train_recipe(args, CORPUS, QUICK)}
    best = record.get("best_logged_valid_loss")
    record.update({"best_valid_bpc": round(best / math.log(2), 4) if best is not None else None,
                   "target_valid_loss": args.target_loss,
                   "meets_target": (best <= args.target_loss) if best is not None else None,
                   "machine": machine(args.device or "cpu")})
    emit(record)
    print()
    print(markdown_table(
        ["recipe", "overrides", "wall s", "steps", "train tok/s (median of log rows)", "best valid loss (nats/char)",
         "target"],
        [[args.recipe, " ".join(record["overrides"]) or "-", record["wall_s"], record.get("steps"),
          record.get("train_tokens_per_sec_median"), best, f"<= {args.target_loss}"]]))
    return record["exit_code"]


if __name__ == "__main__":
    sys.exit(main())

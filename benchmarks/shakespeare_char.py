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

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_DIR, RUNS_DIR, emit, machine, markdown_table, run_recipe, summarize_run  # noqa: E402

TARGET_LOSS = 1.45
QUICK = ["train.max_steps=5", "data.max_lines=600", "train.batch_size=8", "train.bptt=50", "train.eval_every=0",
         "train.threads=1", "train.progress=false"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", default="shakespeare-char", help="recipe name or YAML file (default shakespeare-char)")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                   help=f"folder holding tinyshakespeare/ (default {DEFAULT_DATA_DIR})")
    p.add_argument("--data", type=Path, help="the text file itself (default DATA_DIR/tinyshakespeare/input.txt)")
    p.add_argument("--out", type=Path, help="model directory (default runs/bench-RECIPE)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="passed to rnnkit (default: the recipe's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="passed through to rnnkit as --set KEY=VALUE (repeatable)")
    p.add_argument("--target-loss", type=float, default=TARGET_LOSS, help=f"nats/char (default {TARGET_LOSS})")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--report-only", action="store_true", help="do not train: summarise an existing --out")
    p.add_argument("--quick", action="store_true",
                   help="smoke test (< 1 min): " + " ".join(f"--set {o}" for o in QUICK) + ", out runs/bench-quick-*")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    name = Path(args.recipe).stem
    data = args.data or args.data_dir / "tinyshakespeare" / "input.txt"
    overrides = (QUICK if args.quick else []) + args.overrides
    out = args.out or RUNS_DIR / (f"bench-quick-{name}" if args.quick else f"bench-{name}")
    if args.quick:
        args.overwrite = True
    rc, wall, cmd = 0, None, None
    if not args.report_only:
        rc, wall, cmd = run_recipe(args.recipe, data, out, overrides, args.device, args.overwrite,
                                   out.with_name(out.name + ".stdout.log"))
    summary = summarize_run(out)
    best = summary.get("best_logged_valid_loss")
    record = {"bench": "shakespeare_char", "recipe": args.recipe, "overrides": overrides, "device": args.device,
              "out": str(out), "exit_code": rc, "wall_s": round(wall, 1) if wall is not None else None, **summary,
              "best_valid_bpc": round(best / math.log(2), 4) if best is not None else None,
              "target_valid_loss": args.target_loss,
              "meets_target": (best <= args.target_loss) if best is not None else None,
              "command": cmd, "machine": machine(args.device or "cpu")}
    emit(record)
    print()
    print(markdown_table(
        ["recipe", "overrides", "wall s", "steps", "train tok/s (median of log rows)", "best valid loss (nats/char)",
         "target"],
        [[args.recipe, " ".join(overrides) or "-", record["wall_s"], summary.get("steps"),
          summary.get("train_tokens_per_sec_median"), best, f"<= {args.target_loss}"]]))
    return rc


if __name__ == "__main__":
    sys.exit(main())

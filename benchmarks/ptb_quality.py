#!/usr/bin/env python3
"""PTB word-LM quality: train a recipe with the rnnkit CLI, exactly as a user would, and score it.

Runs ``rnnkit train lm --recipe ptb-small --data <ptb dir> --out runs/bench-ptb-small`` as a subprocess,
records the wall time, then reads the model directory's results.json (valid/test perplexity of the
best weights) and log.csv (training tokens/s). Target: test ppl <= 114.5 for ptb-small (Zaremba et al.
2014, "small"); the other PTB recipes have their own targets (see --help of --recipe).

  python benchmarks/ptb_quality.py                      # full ptb-small on CPU (13 epochs)
  python benchmarks/ptb_quality.py --set train.max_steps=100
  python benchmarks/ptb_quality.py --recipe ptb-medium --device cuda
  python benchmarks/ptb_quality.py --quick              # smoke test, < 1 min

Prints one JSON line starting with {"bench" and a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_DIR, RUNS_DIR, emit, machine, markdown_table, run_recipe, summarize_run  # noqa: E402

# test perplexity each recipe should reach (the paper figure it reproduces)
TARGETS = {"ptb-small": 114.5, "ptb-medium": 82.7, "ptb-large": 78.4, "ptb-awd": 60.0}
QUICK = ["train.max_steps=30", "data.max_lines=1500", "train.threads=1", "train.progress=false"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", default="ptb-small",
                   help="ptb-small | ptb-medium | ptb-large | ptb-awd, or a YAML file (default ptb-small)")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                   help=f"folder holding ptb/ (default {DEFAULT_DATA_DIR})")
    p.add_argument("--data", type=Path, help="PTB folder itself (default DATA_DIR/ptb)")
    p.add_argument("--out", type=Path, help="model directory (default runs/bench-RECIPE)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="passed to rnnkit (default: the recipe's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="passed through to rnnkit as --set KEY=VALUE (repeatable)")
    p.add_argument("--target-ppl", type=float, help="test perplexity to reach (default: the recipe's paper figure)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--report-only", action="store_true", help="do not train: summarise an existing --out")
    p.add_argument("--quick", action="store_true",
                   help="smoke test (< 1 min): " + " ".join(f"--set {o}" for o in QUICK) + ", out runs/bench-quick-*")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    name = Path(args.recipe).stem
    data = args.data or args.data_dir / "ptb"
    overrides = (QUICK if args.quick else []) + args.overrides
    out = args.out or RUNS_DIR / (f"bench-quick-{name}" if args.quick else f"bench-{name}")
    target = args.target_ppl if args.target_ppl is not None else TARGETS.get(name)
    if args.quick:
        args.overwrite = True
    rc, wall, cmd = 0, None, None
    if not args.report_only:
        rc, wall, cmd = run_recipe(args.recipe, data, out, overrides, args.device, args.overwrite,
                                   out.with_name(out.name + ".stdout.log"))
    summary = summarize_run(out)
    test_ppl = summary.get("test_ppl")
    record = {"bench": "ptb_quality", "recipe": args.recipe, "overrides": overrides, "device": args.device,
              "out": str(out), "exit_code": rc, "wall_s": round(wall, 1) if wall is not None else None,
              **summary, "target_test_ppl": target,
              "meets_target": (test_ppl <= target) if (test_ppl is not None and target is not None) else None,
              "command": cmd, "machine": machine(args.device or "cpu")}
    emit(record)
    print()
    print(markdown_table(
        ["recipe", "overrides", "wall s", "train tok/s (median of log rows)", "valid ppl", "test ppl", "target"],
        [[args.recipe, " ".join(overrides) or "-", record["wall_s"], summary.get("train_tokens_per_sec_median"),
          summary.get("valid_ppl"), test_ppl, f"<= {target}" if target else "-"]]))
    return rc


if __name__ == "__main__":
    sys.exit(main())

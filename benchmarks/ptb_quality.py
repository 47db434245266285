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

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, machine, markdown_table, recipe_parser, train_recipe  # noqa: E402

# test perplexity each recipe should reach (the paper figure it reproduces)
TARGETS = {"ptb-small": 114.5, "ptb-medium": 82.7, "ptb-large": 78.4, "ptb-awd": 60.0}
QUICK = ["train.max_steps=30", "data.max_lines=1500", "train.threads=1", "train.progress=false"]


CORPUS = "ptb"


def main(argv=None) -> int:
    p = recipe_parser(__doc__, "ptb-small", CORPUS, QUICK)
    p.add_argument("--target-ppl", type=float, help="test perplexity to reach (default: the recipe's paper figure)")
    args = p.parse_args(argv)
    record = {"bench": "ptb_quality", **train_recipe(args, CORPUS, QUICK)}
    target = args.target_ppl if args.target_ppl is not None else TARGETS.get(Path(args.recipe).stem)
    test_ppl = record.get("test_ppl")
    record.update({"target_test_ppl": target,
                   "meets_target": (test_ppl <= target) if (test_ppl is not None and target is not None) else None,
                   "machine": machine(args.device or "cpu")})
    emit(record)
    print()
    print(markdown_table(
        ["recipe", "overrides", "wall s", "train tok/s (median of log rows)", "valid ppl", "test ppl", "target"],
        [[args.recipe, " ".join(record["overrides"]) or "-", record["wall_s"],
          record.get("train_tokens_per_sec_median"), record.get("valid_ppl"), test_ppl,
          f"<= {target}" if target else "-"]]))
    return record["exit_code"]


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""One classify recipe trained by two (or more) rnnkit source trees AT ONCE, per-epoch CPU seconds each: the
effect of a branch's change on an epoch, under equal conditions on a shared machine.

Each tree runs ``rnnkit train classify`` in its own process (1 torch thread, ``OMP_NUM_THREADS=1``,
``OMP_WAIT_POLICY=PASSIVE``, ``nice -n 5``), its epochs stamped as ``classify_vs_keras.py`` stamps them
(from one epoch's start to the next, validation and checkpoints included; per epoch: the median after the
first). Prints a JSON line per tree and a table.

  python benchmarks/classify_trees.py --tree main=/work/main/src --tree kernel=/work/wt/kernel/src \\
      --data-dir /work/shared/data --epochs 10
  python benchmarks/classify_trees.py --tree a=src --tree b=../main/src --quick
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_DIR, emit, machine, markdown_table  # noqa: E402
from classify_vs_keras import CASES, DRIVER, ENV, per_epoch  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tree", action="append", required=True, help="NAME=SRC_DIR (an rnnkit src folder); twice or more")
    p.add_argument("--case", choices=sorted(CASES), default="imdb")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    p.add_argument("--quick", action="store_true", help="2 epochs of the mnist case")
    args = p.parse_args(argv)
    if args.quick:
        args.case, args.epochs = "mnist", 2
    return args


def command(args, stamps: Path, out: Path) -> list[str]:
    recipe, data_args, _ = CASES[args.case]
    return ["nice", "-n", "5", sys.executable, "-c", DRIVER, str(stamps), "train", "classify", "--recipe", recipe,
            *[a.format(data=args.data_dir) for a in data_args], "--out", str(out), "--threads", "1",
            "--set", f"train.epochs={args.epochs}", "--set", "train.early_stop=0", "--set", "train.progress=false"]


def figures(work: Path) -> dict:
    marks = [stamp[1:] for stamp in json.loads((work / "stamps.json").read_text())]
    epochs = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(marks[:-1], marks[1:], strict=True)]
    valid = json.loads((work / "out" / "results.json").read_text())["valid"]["accuracy"]
    return {**per_epoch(epochs), "valid_acc": round(valid, 4)}


def main(argv=None) -> int:
    args = parse_args(argv)
    trees = dict(t.split("=", 1) for t in args.tree)
    work = Path(tempfile.mkdtemp(prefix=f"classify-trees-{args.case}-"))
    procs = {}
    for name, src in trees.items():
        (work / name).mkdir()
        log = open(work / name / "log", "w", encoding="utf-8")  # noqa: SIM115 - the child's, closed with it
        env = {**os.environ, **ENV, "PYTHONPATH": str(Path(src).resolve())}
        procs[name] = subprocess.Popen(command(args, work / name / "stamps.json", work / name / "out"), env=env,
                                       stdout=log, stderr=subprocess.STDOUT)
    failed = [name for name, proc in procs.items() if proc.wait() != 0]
    if failed:
        print(f"failed: {', '.join(failed)} (logs under {work})", file=sys.stderr)
        return 1
    rows = []
    for name, src in trees.items():
        fig = figures(work / name)
        emit({"bench": "classify_trees", "case": args.case, "tree": name, "src": src, "epochs": args.epochs, **fig,
              "machine": machine()})
        rows.append([name, fig["cpu_sec_per_epoch"], " ".join(map(str, fig["epoch_cpu_seconds"])),
                     fig["sec_per_epoch"], fig["valid_acc"]])
    print(markdown_table(["tree", "CPU s/epoch", "each epoch", "wall s/epoch", "valid acc"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

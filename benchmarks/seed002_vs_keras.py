#!/usr/bin/env python3
"""Seed 002 training speed: rnnkit's seed-002 recipe vs the seed's own Keras script vs today's rnnkit.

The same fable (``belling_the_cat.txt``), 3 words in, one LSTM layer of 512, RMSprop 1e-3, one window
per update (batch 1), 1 thread each:

* ``rnnkit``    ``rnnkit train lm --recipe seed-002 --data FABLE --out TMP --set train.max_steps=N
                --set train.log_every=N/4 --set train.threads=1 ...`` (this tree); windows/s from its log
                rows (the trainer's own clock: the steps, not start-up or the final save);
* ``keras``     ``shared/peers/keras_word_lstm.py --training-iters N --display-step N/4 --threads 1``
                (``KERAS_BACKEND=torch`` unless set; ``--keras-python``, default /tmp/peers/bin/python,
                set up as shared/peers/README.md says); windows/s from its timed blocks;
* ``baseline``  as ``rnnkit`` with rnnkit as it was (``--baseline``, default ../baseline/src).

Each round runs every variant as subprocesses, in a rotated order: wall windows/s is the median of a
run's blocks after the first (warm-up); CPU windows/s is N / (CPU time of a 2N-update run - CPU time of
an N-update run), so start-up, imports and the end of the run cancel out (on a shared machine the CPU
figure is the steadier one). Prints a JSON line per measurement, then min/median/max windows/s and
rnnkit/this (median of per-round ratios). Target (issue 12): rnnkit >= 2x keras.

  python benchmarks/seed002_vs_keras.py --rounds 5
  python benchmarks/seed002_vs_keras.py --quick          # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PEERS_DIR, REPO, emit, machine, markdown_table, read_log, rnnkit_cli  # noqa: E402

FABLE = REPO / "src" / "rnnkit" / "assets" / "belling_the_cat.txt"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=400,
                   help="N: each variant runs N and 2N updates per round (default 400)")
    p.add_argument("--keras-python", default="/tmp/peers/bin/python", help="Python with keras installed")
    p.add_argument("--peers-dir", type=Path, default=PEERS_DIR)
    p.add_argument("--baseline", type=Path, default=REPO.parent / "baseline" / "src",
                   help="src/ folder of the rnnkit to compare with (default ../baseline/src; left out if missing)")
    p.add_argument("--quick", action="store_true", help="smoke test: 2 rounds of 100 + 200 updates")
    return p.parse_args(argv)


def block_median(rates: list[float]) -> float:
    """Median over the timed blocks after the first (warm-up), as the Keras script reports."""
    return statistics.median(rates[1:] if len(rates) > 1 else rates)


def run_rnnkit(src: Path, steps: int) -> float:
    block = max(1, steps // 4)
    with tempfile.TemporaryDirectory(prefix="rnnkit-seed002-") as tmp:
        out = Path(tmp) / "model"
        cmd = [*rnnkit_cli(), "train", "lm", "--recipe", "seed-002", "--data", str(FABLE), "--out", str(out)]
        for item in (f"train.max_steps={steps}", f"train.log_every={block}", "train.threads=1",
                     "train.progress=false", f"train.eval_every={steps}"):
            cmd += ["--set", item]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(src)})
        rows = [r for r in read_log(out / "log.csv") if r["split"] == "train"]
    return block_median([float(r["tokens_per_sec"]) for r in rows])


def run_keras(args, steps: int) -> float:
    cmd = [args.keras_python, str(args.peers_dir / "keras_word_lstm.py"), "--data", str(FABLE),
           "--training-iters", str(steps), "--display-step", str(max(1, steps // 4)), "--threads", "1",
           "--verbose", "0", "--gen-words", "0"]
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "torch")}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    line = next(ln for ln in reversed(done.stdout.splitlines()) if ln.startswith('{"peer"'))
    return float(json.loads(line)["examples_per_sec"])


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(run, steps: int) -> dict[str, float]:
    """Wall windows/s of a 2N-update run, and CPU windows/s of the N updates it has more than an N run."""
    start = children_cpu_s()
    run(steps)
    middle = children_cpu_s()
    wall = run(2 * steps)
    extra_cpu = children_cpu_s() - middle - (middle - start)
    return {"wall": wall, "cpu": steps / extra_cpu if extra_cpu > 0 else float("nan")}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.rounds, args.steps = 2, 100
    runners = {"rnnkit": lambda n: run_rnnkit(REPO / "src", n), "keras": lambda n: run_keras(args, n)}
    if (args.baseline / "rnnkit").is_dir():
        runners["baseline"] = lambda n: run_rnnkit(args.baseline, n)
    names = list(runners)
    per_round = []
    for k in range(args.rounds):
        order = names[k % len(names):] + names[:k % len(names)]
        rates = {name: measure(runners[name], args.steps) for name in order}
        per_round.append(rates)
        emit({"bench": "seed002_vs_keras", "round": k, "steps": args.steps, "windows_per_s": rates})
    rows, summary = [], {}
    for name in names:
        summary[name] = {}
        row = [name]
        for clock in ("wall", "cpu"):
            rates = [r[name][clock] for r in per_round]
            ratio = statistics.median(r["rnnkit"][clock] / r[name][clock] for r in per_round)
            summary[name][clock] = {"min": min(rates), "median": statistics.median(rates), "max": max(rates),
                                    "rnnkit_over_this": ratio}
            row += [f"{min(rates):,.1f} / {statistics.median(rates):,.1f} / {max(rates):,.1f}",
                    "-" if name == "rnnkit" else f"{ratio:.2f}"]
        rows.append(row)
    emit({"bench": "seed002_vs_keras", "summary": summary, "rounds": args.rounds, "steps": args.steps,
          "keras_backend": os.environ.get("KERAS_BACKEND", "torch"), "machine": machine()})
    print(f"\nseed 002 (fable, LSTM 512, batch 1), {args.rounds} interleaved rounds of {args.steps} + "
          f"{2 * args.steps} updates, 1 thread; windows/s\n")
    print(markdown_table(["variant", "wall min / median / max", "rnnkit / this (wall)",
                          "CPU min / median / max", "rnnkit / this (CPU)"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""CPU runtime of the rnnkit command line: this tree against another (today's main), side by side.

Every measurement runs the real ``rnnkit`` command as a subprocess (``PYTHONPATH`` picks the tree), so
process-wide settings (glibc malloc thresholds, OpenMP's wait policy, the thread count) count, as they
do for a user. Variants are interleaved round by round (the order rotates) after one untimed warm-up.

Sections (``--only`` picks some):

* ``startup``   wall time of ``rnnkit --help`` and ``rnnkit recipes`` (target <= 0.15 s);
* ``demo``      ``rnnkit demo`` end to end, default settings (target <= 5 s on an idle 2-core machine;
                the greedy continuation must stay the fable's);
* ``train``     tokens/s of ``rnnkit train lm --recipe ptb-small`` and ``--recipe seed-002`` at 1 thread
                (median of the log rows after the first): baseline, this tree, and this tree with
                ``RNNKIT_MALLOC=0`` (the allocator's share); target ptb-small >= 1.2x the baseline;
* ``evaluate``  wall time of ``rnnkit evaluate`` of a ptb-small model on ptb.valid.txt (default settings,
                or ``--eval-threads N`` in both trees);
* ``threads``   every verb (train, evaluate, demo, generate) of this tree at its default settings and at
                ``--threads 1`` / ``--threads 2``, on the machine as it is ("idle") and with one extra
                CPU-bound process running ("busy"); target: the default within 10% of the best setting.

Each run records the load other processes put on the machine meanwhile (``others_busy_cores``, from
/proc/stat minus this benchmark's own processes). One JSON line per run and per summary (``{"bench"``),
then Markdown tables.

  python benchmarks/cpu_runtime.py --baseline ../baseline --rounds 5
  python benchmarks/cpu_runtime.py --baseline ../baseline --only train --rounds 5
  python benchmarks/cpu_runtime.py --quick          # smoke test: 1 round, tiny budgets
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_DIR, REPO, RUNS_DIR, emit, machine, markdown_table, read_log  # noqa: E402

SECTIONS = ("startup", "demo", "train", "evaluate", "threads")
FABLE = REPO / "src" / "rnnkit" / "assets" / "belling_the_cat.txt"
DEMO_GREEDY = "council to consider what measures they could take to outwit their common enemy"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", type=Path, help="another rnnkit checkout to compare with (its src/ is used)")
    p.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds per variant (default 5)")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="holds ptb/")
    p.add_argument("--train-steps", type=int, default=200, help="ptb-small updates per training run")
    p.add_argument("--eval-threads", type=int, default=0, metavar="N",
                   help="evaluate section: OMP_NUM_THREADS=N for both trees (the evaluation code alike, "
                        "whatever each tree's thread default); default: each tree's default settings")
    p.add_argument("--quick", action="store_true", help="smoke test: 1 round, tiny budgets")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.train_steps = 1, 20
    return args


class Tree:
    """An rnnkit source tree, run through ``python -m rnnkit`` with its src/ first on PYTHONPATH."""

    def __init__(self, name: str, root: Path, env: dict | None = None):
        self.name, self.root, self.extra_env = name, root.resolve(), env or {}

    def env(self, **more) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
        env.update(PYTHONPATH=str(self.root / "src"), **self.extra_env, **more)
        return env

    def cmd(self, *argv) -> list[str]:
        return [sys.executable, "-m", "rnnkit", *map(str, argv)]


def cpu_stat() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat", encoding="ascii") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v) - v[3] - v[4], sum(v)


def timed(cmd: list[str], env: dict, cwd: Path = REPO) -> dict:
    """Run ``cmd``; wall and CPU seconds, and how many cores other processes kept busy meanwhile."""
    b0, t0 = cpu_stat()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - w0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    b1, t1 = cpu_stat()
    if proc.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    cores = os.cpu_count() or 1
    machine_busy = (b1 - b0) / max(t1 - t0, 1) * cores
    others = max(machine_busy - cpu / wall - _hog_cores(), 0.0)
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "sys_s": round(r1.ru_stime - r0.ru_stime, 3),
            "others_busy_cores": round(others, 2), "stdout": proc.stdout}


_HOG: subprocess.Popen | None = None


def _hog_cores() -> float:
    return 1.0 if _HOG is not None else 0.0


def start_hog() -> None:
    """One CPU-bound process (a Python busy loop) beside the measured commands."""
    global _HOG
    _HOG = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.5)


def stop_hog() -> None:
    global _HOG
    if _HOG is not None:
        _HOG.kill()
        _HOG.wait()
        _HOG = None


def interleave(variants: dict, rounds: int, bench: str, meta: dict, warmup: bool = True) -> dict[str, list[dict]]:
    """variants: name -> callable() -> record; one warm-up round (unless ``warmup`` is false), then
    ``rounds`` rotated rounds."""
    names = list(variants)
    for name in names if warmup else []:
        variants[name]()
    out: dict[str, list[dict]] = {n: [] for n in names}
    for k in range(rounds):
        for name in names[k % len(names):] + names[: k % len(names)]:
            record = variants[name]()
            record.pop("stdout", None)
            out[name].append(record)
            emit({"bench": "cpu_runtime", "section": bench, "variant": name, "round": k + 1, **record, **meta})
    return out


def spread(values: list[float], digits: int = 3) -> dict:
    return {"min": round(min(values), digits), "median": round(statistics.median(values), digits),
            "max": round(max(values), digits)}


def fmt(s: dict, unit: str = "") -> str:
    return f"{s['min']:,} / **{s['median']:,}** / {s['max']:,}{unit}"


# ----------------------------------------------------------------------------- sections
def section_startup(trees: list[Tree], args) -> list[list]:
    rows = []
    for argv in (["--help"], ["recipes"]):
        variants = {t.name: (lambda t=t, argv=argv: timed(t.cmd(*argv), t.env())) for t in trees}
        res = interleave(variants, args.rounds, "startup", {"command": "rnnkit " + " ".join(argv)})
        for name, recs in res.items():
            s = spread([r["wall_s"] for r in recs])
            emit({"bench": "cpu_runtime", "section": "startup", "variant": name, "summary": True,
                  "command": argv, "wall_s": s, "target_s": 0.15})
            rows.append([f"`rnnkit {' '.join(argv)}`", name, fmt(s, " s"), _others(recs),
                         "met" if s["median"] <= 0.15 else "not met"])
    return rows


def _others(recs: list[dict]) -> str:
    return f"{statistics.median(r['others_busy_cores'] for r in recs):.2f}"


def demo_run(tree: Tree, out: Path, *threads) -> dict:
    if out.exists():
        shutil.rmtree(out)
    r = timed(tree.cmd("demo", "--out", out, *threads), tree.env())
    greedy = next(line for line in r["stdout"].splitlines() if line.startswith("greedy:"))
    r["greedy_ok"] = greedy.split(":", 1)[1].strip().startswith(DEMO_GREEDY)
    return r


def section_demo(trees: list[Tree], args) -> list[list]:
    variants = {t.name: (lambda t=t: demo_run(t, RUNS_DIR / "bench-cpu-runtime" / f"demo-{t.name}"))
                for t in trees}
    res = interleave(variants, args.rounds, "demo", {})
    rows = []
    for name, recs in res.items():
        s, c = spread([r["wall_s"] for r in recs]), spread([r["cpu_s"] for r in recs])
        ok = all(r["greedy_ok"] for r in recs)
        emit({"bench": "cpu_runtime", "section": "demo", "variant": name, "summary": True, "wall_s": s,
              "cpu_s": c, "greedy_ok": ok, "target_s": 5.0})
        rows.append(["`rnnkit demo`", name, fmt(s, " s"), fmt(c, " s"), _others(recs),
                     "same" if ok else "DIFFERENT"])
    return rows


def ptb_slice(args, split: str, lines: int) -> Path:
    """The first ``lines`` lines of ptb.SPLIT.txt (a short end-of-run validation, a quick set-up)."""
    path = RUNS_DIR / "bench-cpu-runtime" / f"ptb.{split}.{lines}.txt"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        text = (args.data_dir / "ptb" / f"ptb.{split}.txt").read_text(encoding="utf-8").splitlines()[:lines]
        path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


def small_valid(args) -> Path:
    return ptb_slice(args, "valid", 300)


def train_run(tree: Tree, args, recipe: str, steps: int, *extra, env: dict | None = None,
              train_lines: int = 0) -> dict:
    out = RUNS_DIR / "bench-cpu-runtime" / f"train-{recipe}-{tree.name}"
    if out.exists():
        shutil.rmtree(out)
    log_every = max(steps // 4, 1)
    if recipe == "seed-002":
        data = ["--data", FABLE]
    else:
        train = ptb_slice(args, "train", train_lines) if train_lines else args.data_dir / "ptb" / "ptb.train.txt"
        data = ["--data", train, "--valid", small_valid(args)]
    cmd = tree.cmd("train", "lm", "--recipe", recipe, *data, "--out", out, "--set", f"train.max_steps={steps}",
                   "--set", f"train.log_every={log_every}", "--set", "train.progress=false", *extra)
    r = timed(cmd, tree.env(**(env or {})))
    rates = [float(row["tokens_per_sec"]) for row in read_log(out / "log.csv")
             if row["split"] == "train" and row["tokens_per_sec"]]
    r["tokens_per_sec"] = round(statistics.median(rates[1:] or rates), 1)  # the first window holds warm-up
    return r


def section_train(trees: list[Tree], args) -> list[list]:
    rows = []
    mine = trees[-1]
    no_malloc = Tree(f"{mine.name}, RNNKIT_MALLOC=0", mine.root, {"RNNKIT_MALLOC": "0"})
    for recipe, steps in (("ptb-small", args.train_steps), ("seed-002", args.train_steps * 4)):
        variants = {t.name: (lambda t=t, recipe=recipe, steps=steps:
                              train_run(t, args, recipe, steps, "--set", "train.threads=1"))
                    for t in [*trees, no_malloc]}
        res = interleave(variants, args.rounds, "train", {"recipe": recipe, "steps": steps, "threads": 1})
        ref = res[trees[0].name]
        for name, recs in res.items():
            s = spread([r["tokens_per_sec"] for r in recs], 1)
            ratios = [r["tokens_per_sec"] / b["tokens_per_sec"] for r, b in zip(recs, ref, strict=True)]
            sys_s = spread([r["sys_s"] for r in recs], 2)
            emit({"bench": "cpu_runtime", "section": "train", "variant": name, "summary": True, "recipe": recipe,
                  "tokens_per_sec": s, "ratio_to_first": spread(ratios), "sys_s": sys_s})
            rows.append([recipe, name, fmt(s), fmt(spread(ratios)), fmt(sys_s, " s"), _others(recs)])
    return rows


def ptb_model(tree: Tree, args) -> Path:
    """A ptb-small model directory (10 updates: its speed, not its quality, is measured)."""
    out = RUNS_DIR / "bench-cpu-runtime" / "ptb-small-model"
    if not (out / "model.safetensors").is_file():
        if out.exists():
            shutil.rmtree(out)
        timed(tree.cmd("train", "lm", "--recipe", "ptb-small", "--data", args.data_dir / "ptb" / "ptb.train.txt",
                       "--valid", small_valid(args), "--out", out, "--set", "train.max_steps=10",
                       "--set", "train.progress=false"), tree.env())
    return out


def evaluate_run(tree: Tree, model: Path, args, *options) -> dict:
    data = small_valid(args) if args.quick else args.data_dir / "ptb" / "ptb.valid.txt"
    threads = {"OMP_NUM_THREADS": str(args.eval_threads)} if getattr(args, "eval_threads", 0) else {}
    return timed(tree.cmd("evaluate", model, "--data", data, *options), tree.env(**threads))


def section_evaluate(trees: list[Tree], args) -> list[list]:
    model = ptb_model(trees[-1], args)
    variants = {t.name: (lambda t=t: evaluate_run(t, model, args)) for t in trees}
    res = interleave(variants, args.rounds, "evaluate", {"data": "ptb.valid.txt"})
    rows = []
    for name, recs in res.items():
        s, c = spread([r["wall_s"] for r in recs]), spread([r["cpu_s"] for r in recs])
        emit({"bench": "cpu_runtime", "section": "evaluate", "variant": name, "summary": True, "wall_s": s, "cpu_s": c})
        rows.append(["`rnnkit evaluate` ptb-small on ptb.valid.txt", name, fmt(s, " s"), fmt(c, " s"), _others(recs)])
    return rows


def verb_runs(tree: Tree, args) -> dict:
    """verb -> function(*threads) -> record (wall seconds; tokens/s for train). Smaller budgets than the
    other sections (a quarter of --train-steps on the first 10,000 lines of ptb.train.txt, 1000 lines of
    ptb.valid.txt): 30 runs per verb."""
    model = ptb_model(tree, args)
    steps = max(args.train_steps // 4, 8)
    return {
        "train": lambda *th: train_run(tree, args, "ptb-small", steps, *th, train_lines=10000),
        "evaluate": lambda *th: evaluate_run(tree, model, args, "--max-lines", "1000", *th),
        "demo": lambda *th: demo_run(tree, RUNS_DIR / "bench-cpu-runtime" / "demo-threads", *th),
        "generate": lambda *th: timed(tree.cmd("generate", model, "--prompt", "the stock market", "-n", "100",
                                               "--no-stop", "--seed", "1", *th), tree.env()),
    }


def section_threads(trees: list[Tree], args) -> list[list]:
    mine = trees[-1]
    settings = {"default": (), "--threads 1": ("--threads", "1"), "--threads 2": ("--threads", "2")}
    rows = []
    for condition in ("idle", "busy"):
        if condition == "busy":
            start_hog()
        try:
            for verb, fn in verb_runs(mine, args).items():
                variants = {s: (lambda th=th, fn=fn: fn(*th)) for s, th in settings.items()}
                res = interleave(variants, args.rounds, "threads", {"verb": verb, "condition": condition},
                                 warmup=False)
                rows.append(_threads_row(verb, condition, res))
        finally:
            stop_hog()
    return rows


def _threads_row(verb: str, condition: str, res: dict) -> list:
    # train: tokens/s (higher is better); the other verbs: wall seconds (lower is better)
    key, better = ("tokens_per_sec", max) if verb == "train" else ("wall_s", min)
    med = {s: statistics.median(r[key] for r in recs) for s, recs in res.items()}
    best = better((s for s in med if s != "default"), key=lambda s: med[s])
    ratio = med["default"] / med[best] if key == "wall_s" else med[best] / med["default"]
    emit({"bench": "cpu_runtime", "section": "threads", "verb": verb, "condition": condition, "summary": True,
          "median": med, "best_setting": best, "default_cost_vs_best": round(ratio, 3), "target": 1.10})
    others = statistics.median(r["others_busy_cores"] for recs in res.values() for r in recs)
    unit = " tok/s" if key == "tokens_per_sec" else " s"
    return [verb, condition, *(f"{med[s]:,.{1 if unit == ' tok/s' else 2}f}{unit}" for s in res), best,
            f"{ratio:.3f}", "met" if ratio <= 1.10 else "not met", f"{others:.2f}"]


def main(argv=None) -> int:
    args = parse_args(argv)
    trees = ([Tree("baseline", args.baseline)] if args.baseline else []) + [Tree("this tree", REPO)]
    meta = {"machine": machine(), "rounds": args.rounds, "load_avg_start": os.getloadavg()}
    emit({"bench": "cpu_runtime", "section": "meta", **meta, "trees": {t.name: str(t.root) for t in trees}})
    tables = []
    if "startup" in args.only:
        tables.append((["command", "tree", "wall s min / median / max", "others' busy cores", "<= 0.15 s"],
                       section_startup(trees, args)))
    if "demo" in args.only:
        tables.append((["command", "tree", "wall s min / median / max", "CPU s", "others' busy cores",
                        "greedy continuation"], section_demo(trees, args)))
    if "train" in args.only:
        tables.append((["recipe (1 thread)", "tree", "tokens/s min / median / max", "ratio to the first row",
                        "system time", "others' busy cores"], section_train(trees, args)))
    if "evaluate" in args.only:
        tables.append((["command", "tree", "wall s", "CPU s", "others' busy cores"], section_evaluate(trees, args)))
    if "threads" in args.only:
        tables.append((["verb", "machine", "default", "--threads 1", "--threads 2", "best setting",
                        "default / best", "within 10%", "others' busy cores"], section_threads(trees, args)))
    emit({"bench": "cpu_runtime", "section": "end", "load_avg_end": os.getloadavg()})
    for header, rows in tables:
        print()
        print(markdown_table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

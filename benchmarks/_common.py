"""Helpers shared by the benchmark scripts: paths, machine description, JSON lines, recipe runs.

Not part of the package; the scripts import it from their own folder.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
PEERS_DIR = REPO.parent / "shared" / "peers"
RUNS_DIR = REPO / "runs"


def rnnkit_cli() -> list[str]:
    """The ``rnnkit`` entry point next to this Python (the venv's), else ``python -m rnnkit``."""
    exe = Path(sys.executable).with_name("rnnkit")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "rnnkit"]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(device: str = "cpu") -> dict:
    """What the numbers were measured on (the GPU name when ``device`` is cuda)."""
    info = {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if device.startswith("cuda") and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name()
    except ImportError:
        pass
    return info


def emit(record: dict) -> None:
    """One machine-readable line per measurement, starting with ``{"bench"``."""
    print(json.dumps(record, default=float), flush=True)


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


@functools.cache
def timed_trainer_class() -> type:
    """The real ``rnnkit.train.Trainer``, unchanged per step; two hooks read the wall and CPU clocks at
    the points where its own tokens/s window opens (after the epoch's progress bar is made) and closes
    (its train log row): ``trainer.marks`` is [(wall, cpu) at the start, then at each train row]. The log
    row's figure is the one the overhead benchmarks report; the hooks add CPU time, which other processes
    on the shared machine disturb far less than wall time."""
    from rnnkit.train import Trainer

    class TimedTrainer(Trainer):
        def _progress(self, total):
            bar = super()._progress(total)
            self.marks = [(time.perf_counter(), time.process_time())]
            return bar

        def _log(self, split, loss, lr, rate, metrics=None):
            if split == "train":
                self.marks.append((time.perf_counter(), time.process_time()))
            super()._log(split, loss, lr, rate, metrics)

    return TimedTrainer


def read_log(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def summarize_run(out_dir: Path) -> dict:
    """results.json (valid/test metrics) and log.csv (tokens/s, validation curve) of a model dir."""
    summary: dict = {}
    results_path = out_dir / "results.json"
    if results_path.is_file():
        results = json.loads(results_path.read_text(encoding="utf-8"))
        for split, metrics in results.items():
            for key in ("loss", "ppl", "bpc"):
                if key in metrics:
                    summary[f"{split}_{key}"] = round(metrics[key], 4)
    log_path = out_dir / "log.csv"
    if log_path.is_file():
        rows = read_log(log_path)
        rates = [float(r["tokens_per_sec"]) for r in rows if r["split"] == "train" and r["tokens_per_sec"]]
        if rates:
            summary["train_tokens_per_sec_median"] = round(statistics.median(rates), 1)
            summary["train_tokens_per_sec_mean"] = round(statistics.fmean(rates), 1)
            summary["log_rows_train"] = len(rates)
        valid = [r for r in rows if r["split"] == "valid"]
        if valid:
            losses = [float(r["loss"]) for r in valid]
            summary["valid_curve"] = [round(v, 4) for v in losses]
            summary["best_logged_valid_loss"] = round(min(losses), 4)
            summary["best_logged_valid_ppl"] = round(math.exp(min(losses)), 2)
        if rows:
            last = rows[-1]
            summary["steps"] = int(last["step"])
            summary["epochs_done"] = int(float(last["epoch"]))
            summary["train_step_seconds"] = float(last["elapsed_sec"])  # trainer's summed step time
    return summary


def run_recipe(recipe: str, data: Path, out_dir: Path, overrides: list[str], device: str | None,
               overwrite: bool, log_file: Path) -> tuple[int, float, list[str]]:
    """``rnnkit train lm --recipe R --data D --out O [--set ...] [--device ...]`` as a subprocess.

    stdout and stderr go to ``log_file``; returns (exit code, wall seconds, the command).
    """
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            sys.exit(f"error: {out_dir} exists and is not empty (pass --overwrite to replace it)")
        shutil.rmtree(out_dir)
    cmd = [*rnnkit_cli(), "train", "lm", "--recipe", recipe, "--data", str(data), "--out", str(out_dir)]
    for item in overrides:
        cmd += ["--set", item]
    if device:
        cmd += ["--device", device]
    log_file.parent.mkdir(parents=True, exist_ok=True)
    print("running: " + " ".join(cmd), flush=True)
    print(f"output in {log_file}", flush=True)
    t0 = time.perf_counter()
    with open(log_file, "w", encoding="utf-8") as log:
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    if rc != 0:
        tail = log_file.read_text(encoding="utf-8", errors="replace")[-3000:]
        print(f"rnnkit exited with {rc}; last output:\n{tail}", file=sys.stderr, flush=True)
    return rc, wall, cmd


def recipe_parser(doc: str, recipe: str, corpus: str, quick: list[str]) -> argparse.ArgumentParser:
    """The options every recipe-quality script shares (it adds its own target option)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", default=recipe, help=f"recipe name or YAML file (default {recipe})")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                   help=f"folder holding the datasets (default {DEFAULT_DATA_DIR})")
    p.add_argument("--data", type=Path, help=f"the data itself (default DATA_DIR/{corpus})")
    p.add_argument("--out", type=Path, help="model directory (default runs/bench-RECIPE)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="passed to rnnkit (default: the recipe's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="passed through to rnnkit as --set KEY=VALUE (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--report-only", action="store_true", help="do not train: summarise an existing --out")
    p.add_argument("--quick", action="store_true",
                   help="smoke test (< 1 min): " + " ".join(f"--set {o}" for o in quick) + ", out runs/bench-quick-*")
    return p


def train_recipe(args: argparse.Namespace, corpus: str, quick: list[str]) -> dict:
    """Train (unless --report-only) as :func:`run_recipe` and summarise the model directory.

    Returns the fields every record shares: recipe, overrides, device, out, exit_code, wall_s, command
    and the :func:`summarize_run` summary.
    """
    name = Path(args.recipe).stem
    data = args.data or args.data_dir / corpus
    overrides = (quick if args.quick else []) + args.overrides
    out = args.out or RUNS_DIR / (f"bench-quick-{name}" if args.quick else f"bench-{name}")
    rc, wall, cmd = 0, None, None
    if not args.report_only:
        rc, wall, cmd = run_recipe(args.recipe, data, out, overrides, args.device, args.overwrite or args.quick,
                                   out.with_name(out.name + ".stdout.log"))
    return {"recipe": args.recipe, "overrides": overrides, "device": args.device, "out": str(out), "exit_code": rc,
            "wall_s": round(wall, 1) if wall is not None else None, "command": cmd, **summarize_run(out)}

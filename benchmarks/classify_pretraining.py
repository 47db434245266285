#!/usr/bin/env python3
"""IMDB from scratch vs LM-LSTM vs SA-LSTM pretraining (Dai & Le 2015): bounded runs, side by side.

Issue 14's benchmark "IMDB from scratch and with each pretraining: accuracy, wall time, examples/s". Every
process runs with 1 torch thread (``--threads 1``, ``OMP_NUM_THREADS=1``, ``OMP_WAIT_POLICY=PASSIVE``) under
``nice -n --nice``; CPU seconds of each come from ``wait4``.

1. Pretraining, both AT ONCE for ``--pretrain-minutes`` of wall time:
   ``rnnkit train lm --recipe imdb-lm-lstm-pretrain`` and ``rnnkit train autoencoder --recipe
   imdb-sa-lstm-pretrain`` on the 50,000 unlabelled reviews (``unsup.jsonl.gz``), into ``--lm-dir`` /
   ``--ae-dir``: a new run, or, when the directory already holds a checkpoint, that run resumed (the same
   command with ``--resume``): so pretraining goes on across sessions. At the budget each gets SIGTERM (the
   trainer stops at the step boundary and saves its checkpoint), then ``--resume --set train.max_steps=STEP``
   validates the weights of that step without training further and writes model.safetensors, which
   ``--init-from`` reads. ``--pretrain-minutes 0`` takes the directories as they are.
2. Fine-tuning, three classifiers AT ONCE with the same recipe settings, overrides and update budget
   (``--steps``): ``scratch`` (``imdb-lm-lstm`` without ``--init-from``: the same architecture, its vocabulary
   built from the reviews), ``lm`` (``imdb-lm-lstm --init-from LM_DIR --init-prefix encoder``) and ``sa``
   (``imdb-sa-lstm --init-from AE_DIR``).
   ``train.freeze`` is emptied for all three (``--keep-freeze`` keeps the recipes' gradual unfreezing, which
   freezes the encoder for a whole epoch: the scratch model's random one too). Test accuracy is scored on
   ``--test-examples`` reviews drawn at random (seed 0) from ``test.jsonl.gz`` (0: all 25,000).

Reported: pretraining steps (before -> after), wall and CPU seconds, training tokens/s, validation loss / ppl;
per classifier test accuracy and macro-F1, best validation accuracy, wall and CPU seconds, examples/s (the
median of the trainer's log windows, training steps only) and what ``--init-from`` copied.

  python benchmarks/classify_pretraining.py --pretrain-minutes 20 --steps 200 --lm-dir /work/runs/imdb-lm \\
      --ae-dir /work/runs/imdb-ae --set data.max_length=128
  python benchmarks/classify_pretraining.py --quick      # smoke test, about a minute
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_DIR, RUNS_DIR, emit, machine, markdown_table, read_log, rnnkit_cli  # noqa: E402

ENV = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "MKL_NUM_THREADS": "1"}
POLL_SECONDS = 2.0

# --quick: tiny data and models, the same commands
QUICK_LM = ["data.max_lines=600", "train.bptt=20", "train.batch_size=8"]
QUICK_AE = ["data.max_examples=600", "data.max_length=30", "train.batch_size=8"]
QUICK_MODEL = ["tokenizer.vocab_size=2000", "model.embedding_size=32", "model.hidden_size=32"]
QUICK_FINETUNE = ["data.max_examples=600", "data.max_length=40", "train.eval_every=10", "train.batch_size=16"]


@dataclass
class Run:
    """One rnnkit process: its command, log file and, once it ended, exit code, wall and CPU seconds."""

    name: str
    cmd: list[str]
    log: Path
    pid: int = 0
    start: float = 0.0
    rc: int | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    interrupted: bool = False
    extra: dict = field(default_factory=dict)


def start(run: Run, nice: int) -> None:
    run.log.parent.mkdir(parents=True, exist_ok=True)
    print("running: " + " ".join(run.cmd) + f"  > {run.log}", flush=True)
    with open(run.log, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(["nice", "-n", str(nice), *run.cmd], stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **ENV})
    run.pid, run.start = proc.pid, time.perf_counter()


def _reap(run: Run, block: bool) -> bool:
    """Collect ``run``'s exit (wait4: its CPU time too); whether it has ended."""
    pid, status, usage = os.wait4(run.pid, 0 if block else os.WNOHANG)
    if pid == 0:
        return False
    run.rc = os.waitstatus_to_exitcode(status)
    run.wall_s = round(time.perf_counter() - run.start, 1)
    run.cpu_s = round(usage.ru_utime + usage.ru_stime, 1)
    return True


def run_at_once(runs: list[Run], nice: int, seconds: float = 0.0) -> None:
    """Start every run, then wait for all; with ``seconds`` > 0, SIGTERM those still running at that budget
    (the trainer saves a checkpoint and exits 130)."""
    for run in runs:
        start(run, nice)
    deadline = time.perf_counter() + seconds if seconds else None
    pending = list(runs)
    while pending:
        pending = [r for r in pending if not _reap(r, block=False)]
        if pending and deadline is not None and time.perf_counter() >= deadline:
            for r in pending:
                print(f"{r.name}: budget of {seconds:.0f} s reached, stopping it (SIGTERM)", flush=True)
                os.kill(r.pid, signal.SIGTERM)
                r.interrupted = True
            for r in pending:
                _reap(r, block=True)
            pending = []
        time.sleep(POLL_SECONDS if pending else 0)
    for r in runs:
        ok = r.rc == 0 or (r.interrupted and r.rc in (130, -signal.SIGTERM))  # -15: stopped while starting
        if not ok:
            tail = r.log.read_text(encoding="utf-8", errors="replace")[-2000:]
            sys.exit(f"{r.name} exited with {r.rc}; the end of {r.log}:\n{tail}")


# ------------------------------------------------------------------------------------------------ pretraining
def checkpoint_step(model_dir: Path) -> int:
    """The update count of ``model_dir``'s checkpoint (0 when it has none yet)."""
    from rnnkit.checkpoint import has_checkpoint, load_trainer_state

    if not has_checkpoint(model_dir):
        return 0
    return int(load_trainer_state(model_dir / "checkpoint")[0]["step"])


def pretrain_runs(args, data: Path) -> list[Run]:
    """The LM and the autoencoder, each new or resumed, with no step limit (the wall budget stops them)."""
    quick = args.quick
    specs = [("lm", "lm", "imdb-lm-lstm-pretrain", args.lm_dir, (QUICK_LM + QUICK_MODEL) if quick else []),
             ("sa", "autoencoder", "imdb-sa-lstm-pretrain", args.ae_dir, (QUICK_AE + QUICK_MODEL) if quick else [])]
    runs = []
    for name, task, recipe, out, quick_sets in specs:
        cmd = [*rnnkit_cli(), "train", task, "--recipe", recipe, "--data", str(data), "--out", str(out),
               "--threads", "1", *sets(quick_sets + args.pretrain_sets + ["train.max_steps=0"])]
        before = checkpoint_step(out)
        if before:
            cmd.append("--resume")
        runs.append(Run(name, cmd, out.with_name(out.name + ".stdout.log"), extra={"out": out, "task": task,
                                                                                    "step_before": before}))
    return runs


def validate_runs(pretrained: list[Run]) -> list[Run]:
    """``--resume --set train.max_steps=STEP``: validate each stopped run's weights and write model.safetensors."""
    runs = []
    for p in pretrained:
        out, step = p.extra["out"], checkpoint_step(p.extra["out"])
        if not step:
            sys.exit(f"{p.name}: {out} holds no checkpoint (stopped before its first update?); see {p.log}")
        cmd = [*rnnkit_cli(), "train", p.extra["task"], "--out", str(out), "--resume", "--threads", "1",
               *sets([f"train.max_steps={step}"])]
        runs.append(Run(p.name, cmd, out.with_name(out.name + ".validate.log"), extra={"step": step}))
    return runs


def pretrained_state(name: str, out: Path, step_before: int = 0) -> dict:
    """A pretraining directory's step and validation (results.json), and its training rows after ``step_before``:
    median tokens/s and the last training loss."""
    results = json.loads((out / "results.json").read_text(encoding="utf-8")) if (out / "results.json").is_file() else {}
    rows = read_log(out / "log.csv") if (out / "log.csv").is_file() else []
    mine = [r for r in rows if r["split"] == "train" and int(r["step"]) > step_before]
    rates = [float(r["tokens_per_sec"]) for r in mine if r["tokens_per_sec"]]
    return {"name": name, "out": str(out), "step_before": step_before, "step_after": checkpoint_step(out),
            "train_tokens_per_sec_median": round(statistics.median(rates), 1) if rates else None,
            "last_train_loss": float(mine[-1]["loss"]) if mine else None, "valid": results.get("valid")}


def pretrain_summary(run: Run, check: Run) -> dict:
    return {**pretrained_state(run.name, run.extra["out"], run.extra["step_before"]), "command": run.cmd,
            "wall_s": run.wall_s, "cpu_s": run.cpu_s, "stopped_at_budget": run.interrupted,
            "validate_command": check.cmd, "validate_wall_s": check.wall_s}


# ------------------------------------------------------------------------------------------------ fine-tuning
def test_sample(test: Path, count: int, out_dir: Path) -> Path:
    """``count`` test reviews drawn at random (seed 0; the file is sorted by label) as a JSONL file."""
    if not count:
        return test
    with gzip.open(test, "rt", encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    sample = out_dir / f"imdb-test-{count}.jsonl"
    out_dir.mkdir(parents=True, exist_ok=True)
    sample.write_text("".join(random.Random(0).sample(lines, min(count, len(lines)))), encoding="utf-8")
    return sample


def finetune_runs(args, train: Path, test: Path) -> list[Run]:
    common = (QUICK_FINETUNE + QUICK_MODEL if args.quick else []) + args.overrides + [f"train.max_steps={args.steps}"]
    if not args.keep_freeze:
        common.append("train.freeze=''")  # YAML's empty string: no group frozen
    specs = [("scratch", "imdb-lm-lstm", ["--set", "tokenizer.from_init=false"]),  # no source: its own vocabulary
             ("lm", "imdb-lm-lstm", ["--init-from", str(args.lm_dir), "--init-prefix", "encoder"]),
             ("sa", "imdb-sa-lstm", ["--init-from", str(args.ae_dir)])]
    runs = []
    for name, recipe, init in specs:
        out = args.out / name
        cmd = [*rnnkit_cli(), "train", "classify", "--recipe", recipe, "--data", str(train), "--test", str(test),
               "--out", str(out), "--threads", "1", "--overwrite", *init, *sets(common)]
        runs.append(Run(name, cmd, args.out / f"{name}.stdout.log", extra={"out": out}))
    return runs


def finetune_summary(run: Run) -> dict:
    out = run.extra["out"]
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    rows = read_log(out / "log.csv")
    rates = [float(r["tokens_per_sec"]) for r in rows if r["split"] == "train" and r["tokens_per_sec"]]
    valid = [float(r["accuracy"]) for r in rows if r["split"] == "valid" and r.get("accuracy")]
    copied = [line.strip() for line in run.log.read_text(encoding="utf-8").splitlines()
              if line.startswith("--init-from ")]
    return {"name": run.name, "out": str(out), "command": run.cmd, "steps": int(rows[-1]["step"]),
            "test_accuracy": results["test"]["accuracy"], "test_macro_f1": results["test"].get("macro_f1"),
            "valid_accuracy_curve": valid, "best_valid_accuracy": max(valid) if valid else None,
            "wall_s": run.wall_s, "cpu_s": run.cpu_s, "train_step_s": float(rows[-1]["elapsed_sec"]),
            "examples_per_sec_median": round(statistics.median(rates), 2) if rates else None,
            "init_from": copied[0] if copied else None}


# ------------------------------------------------------------------------------------------------ main
def print_tables(pretrained: list[dict], finetuned: list[dict]) -> None:
    print(markdown_table(["pretraining", "steps", "wall s", "CPU s", "train tok/s", "valid loss (ppl)"],
                         [[p["name"], f"{p['step_before']} -> {p['step_after']}", p.get("wall_s", "-"),
                           p.get("cpu_s", "-"), p["train_tokens_per_sec_median"],
                           f"{p['valid']['loss']:.3f} ({p['valid']['ppl']:.1f})" if p["valid"] else "-"]
                          for p in pretrained]))
    print(markdown_table(["classifier", "steps", "test acc", "best valid acc", "wall s", "CPU s", "examples/s"],
                         [[f["name"], f["steps"], f"{100 * f['test_accuracy']:.2f}%",
                           f"{100 * f['best_valid_accuracy']:.2f}%" if f["best_valid_accuracy"] else "-",
                           f["wall_s"], f["cpu_s"], f["examples_per_sec_median"]] for f in finetuned]))


def sets(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="holds imdb/ (default %(default)s)")
    p.add_argument("--lm-dir", type=Path, help="LM run, new or resumed (default --out/lm-pretrain)")
    p.add_argument("--ae-dir", type=Path, help="autoencoder run, new or resumed (default --out/sa-pretrain)")
    p.add_argument("--out", type=Path, help="fine-tuned model dirs and logs (default runs/bench-pretrain)")
    p.add_argument("--pretrain-minutes", type=float, default=20.0,
                   help="wall minutes of pretraining, LM and autoencoder at once; 0: use the dirs as they are")
    p.add_argument("--steps", type=int, default=200, help="updates of each fine-tuning (default 200)")
    p.add_argument("--test-examples", type=int, default=5000, help="random test reviews scored (0: all 25,000)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="fine-tuning override, the same for all three classifiers (repeatable)")
    p.add_argument("--pretrain-set", dest="pretrain_sets", action="append", default=[], metavar="KEY=VALUE",
                   help="pretraining override for both runs (repeatable; a resumed run needs the same ones)")
    p.add_argument("--keep-freeze", action="store_true", help="keep the recipes' train.freeze (see above)")
    p.add_argument("--nice", type=int, default=5, help="niceness of every process (default 5)")
    p.add_argument("--quick", action="store_true", help="smoke test: tiny data and models, 1 min of pretraining, "
                   "10 updates, 200 test reviews, under runs/bench-quick-pretrain")
    args = p.parse_args(argv)
    args.out = args.out or RUNS_DIR / ("bench-quick-pretrain" if args.quick else "bench-pretrain")
    args.lm_dir = args.lm_dir or args.out / "lm-pretrain"
    args.ae_dir = args.ae_dir or args.out / "sa-pretrain"
    if args.quick:
        args.pretrain_minutes, args.steps, args.test_examples = 1.0, 10, 200
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    imdb = args.data_dir / "imdb"
    t0 = time.perf_counter()
    if args.pretrain_minutes > 0:
        runs = pretrain_runs(args, imdb / "unsup.jsonl.gz")
        run_at_once(runs, args.nice, seconds=args.pretrain_minutes * 60)
        checks = validate_runs(runs)
        run_at_once(checks, args.nice)
        pretrained = [pretrain_summary(r, c) for r, c in zip(runs, checks, strict=True)]
    else:  # taken as they are
        pretrained = [pretrained_state("lm", args.lm_dir), pretrained_state("sa", args.ae_dir)]
    test = test_sample(imdb / "test.jsonl.gz", args.test_examples, args.out)
    tuned = finetune_runs(args, imdb / "train.jsonl.gz", test)
    run_at_once(tuned, args.nice)
    finetuned = [finetune_summary(r) for r in tuned]
    emit({"bench": "classify_pretraining", "machine": machine(), "load_average": os.getloadavg(),
          "pretrain_minutes": args.pretrain_minutes, "steps": args.steps, "test": str(test),
          "overrides": args.overrides, "pretrain_overrides": args.pretrain_sets, "pretraining": pretrained,
          "finetuning": finetuned, "total_wall_s": round(time.perf_counter() - t0, 1)})
    print_tables(pretrained, finetuned)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Full vs adaptive softmax on a pretraining recipe: seconds per update and validation perplexity.

``--task lm`` (default): every variant is ``rnnkit train lm --recipe imdb-lm-lstm-pretrain`` (vocabulary 20,000,
embedding 256, LSTM 512, batch 64 x bptt 70) on the first ``--lines`` reviews of ``unsup.jsonl.gz``;
``--task autoencoder``: ``rnnkit train autoencoder --recipe imdb-sa-lstm-pretrain`` (the SA-LSTM: vocabulary
20,000, embedding 256, LSTM 512, batch 32 reviews of up to 400 words, the decoder's softmax at every word) on
``--lines`` reviews of it (``data.max_examples``: a random subset). Each with ``model.softmax`` set
as the variant says, for ``--steps`` updates, validated once at the end (the recipe's held-out 2%). All
variants run AT ONCE, each with 1 torch thread (``--threads 1``, ``OMP_NUM_THREADS=1``,
``OMP_WAIT_POLICY=PASSIVE``) under ``nice -n --nice``, so they share the machine's load equally.

Each variant also runs for ``--base-steps`` updates, at the same time: the difference of the two processes'
CPU seconds (``wait4``) over the difference of their updates is the CPU seconds of one update, without the
start-up (reading and tokenizing the slice, building the vocabulary), the validation and the saving, which
both runs share. On a loaded machine this is the figure to compare: wall time there depends on how the
scheduler shares the cores.

Reported per variant: parameters, CPU seconds per update and the full softmax's over it (the speed-up),
the trainer's wall seconds per update (log.csv, the first log window left out as warm-up), validation loss
and perplexity after ``--steps`` updates, the whole process's CPU and wall seconds.

  python benchmarks/lm_adaptive_softmax.py --steps 40 --base-steps 10 --lines 10000 \\
      --variant full --variant adaptive:2000,10000 --variant adaptive:1000,5000
  python benchmarks/lm_adaptive_softmax.py --task autoencoder --steps 20 --base-steps 5 --lines 2000
  python benchmarks/lm_adaptive_softmax.py --quick      # smoke test, well under a minute (also with --task)
  python benchmarks/lm_adaptive_softmax.py --shares --lines 10000 \\
      --variant adaptive:2000,10000 --variant adaptive:1000,5000   # the tokens' shares per cutoff range
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_DIR, RUNS_DIR, emit, machine, markdown_table, read_log, rnnkit_cli  # noqa: E402

ENV = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "MKL_NUM_THREADS": "1"}
#: task -> its pretraining recipe, the key that reads a slice of the reviews, and --quick's small model
TASKS = {
    "lm": ("imdb-lm-lstm-pretrain", "data.max_lines",
           ["tokenizer.vocab_size=2000", "model.embedding_size=32", "model.hidden_size=32", "train.batch_size=8",
            "train.bptt=20"]),
    "autoencoder": ("imdb-sa-lstm-pretrain", "data.max_examples",
                    ["tokenizer.vocab_size=2000", "model.embedding_size=32", "model.hidden_size=32",
                     "train.batch_size=8", "data.max_length=50"]),
}


@dataclass
class Variant:
    name: str  # full | adaptive:C1,C2,...
    steps: int
    out: Path
    command: list[str]
    process: subprocess.Popen | None = None
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    returncode: int | None = None

    @property
    def overrides(self) -> list[str]:
        if self.name == "full":
            return ["model.softmax=full", "model.adaptive_cutoffs=[]"]
        cutoffs = self.name.split(":", 1)[1]
        return ["model.softmax=adaptive", f"model.adaptive_cutoffs=[{cutoffs}]"]


def make_variant(name: str, steps: int, args) -> Variant:
    if name != "full" and not (name.startswith("adaptive:") and name[9:].replace(",", "").isdigit()):
        sys.exit(f"error: --variant {name!r}: full or adaptive:C1,C2,... (cutoffs)")
    out = args.out_dir / f"{name.replace(':', '-').replace(',', '-')}-{steps}"
    variant = Variant(name, steps, out, [])
    _, slice_key, quick = TASKS[args.task]
    sets = [f"{slice_key}={args.lines}", f"train.max_steps={steps}", f"train.eval_every={steps}",
            f"train.log_every={args.log_every}", "train.progress=false", *(quick if args.quick else []),
            *variant.overrides, *args.overrides]
    variant.command = ["nice", "-n", str(args.nice), *rnnkit_cli(), "train", args.task, "--recipe", args.recipe,
                       "--data", str(args.data), "--out", str(out), "--threads", "1", "--overwrite",
                       *[a for s in sets for a in ("--set", s)]]
    return variant


def run_at_once(variants: list[Variant]) -> None:
    """Start every variant, then reap each with its CPU seconds (``wait4``)."""
    env = {**os.environ, **ENV}
    started = time.perf_counter()
    for v in variants:
        v.out.parent.mkdir(parents=True, exist_ok=True)
        print("running: " + " ".join(v.command), flush=True)
        log = open(v.out.parent / f"{v.out.name}.log", "w", encoding="utf-8")  # noqa: SIM115 (closed below)
        v.process = subprocess.Popen(v.command, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
    pending = {v.process.pid: v for v in variants}
    while pending:
        pid, status, usage = os.wait4(-1, 0)
        v = pending.pop(pid, None)
        if v is not None:
            v.returncode = os.waitstatus_to_exitcode(status)
            v.cpu_seconds = usage.ru_utime + usage.ru_stime
            v.wall_seconds = time.perf_counter() - started


def summary(v: Variant, base: Variant) -> dict:
    """The variant's figures from its model directory and the CPU seconds of its run and of ``base``'s."""
    rows = read_log(v.out / "log.csv")
    train = [r for r in rows if r["split"] == "train"]
    valid = [r for r in rows if r["split"] == "valid"]
    first, last = train[0], train[-1]  # the first window holds the warm-up
    steps = int(last["step"]) - int(first["step"])
    per_update = (float(last["elapsed_sec"]) - float(first["elapsed_sec"])) / max(steps, 1)
    cpu_per_update = (v.cpu_seconds - base.cpu_seconds) / (v.steps - base.steps)
    return {"variant": v.name, "steps": int(last["step"]), "cpu_s_per_update": round(cpu_per_update, 3),
            "wall_s_per_update": round(per_update, 3),
            "valid_loss": round(float(valid[-1]["loss"]), 4), "valid_ppl": round(float(valid[-1]["ppl"]), 2),
            "cpu_s": round(v.cpu_seconds, 1), "wall_s": round(v.wall_seconds, 1),
            "base_steps": base.steps, "base_cpu_s": round(base.cpu_seconds, 1),
            "parameters": count_parameters(v.out)}


def speedup_text(speedup: float | None) -> str:
    """A table cell: ``4.4x``, or ``-`` where there is no figure (no full variant, or --quick's CPU seconds
    too close to tell)."""
    return "-" if speedup is None else f"{speedup}x"


def count_parameters(model_dir: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(model_dir / "model.safetensors"), "pt") as f:
        return sum(math.prod(f.get_slice(name).get_shape()) for name in f.keys())  # noqa: SIM118 (no __iter__)


def cutoff_shares(args) -> None:
    """Print, for each adaptive variant, the share of the training tokens (``<eos>`` and ``<unk>`` counted,
    as the LM trains on them) whose ids fall in the head and in each cluster: the first ``--lines`` reviews
    read and the vocabulary built as ``rnnkit train lm --recipe`` does (no training)."""
    from collections import Counter

    from rnnkit.config import load_config
    from rnnkit.data.lm import encode_lines
    from rnnkit.data.tokenizers import build_tokenizer
    from rnnkit.data.vocab import Vocab
    from rnnkit.tasks.lm import _read_splits  # the task's own split: the shares are of what it trains on

    cfg = load_config(args.recipe, [f"data.train={args.data}", f"data.max_lines={args.lines}", *args.overrides])
    train_lines, _ = _read_splits(cfg.data)
    tokenizer = build_tokenizer(cfg.tokenizer, train_lines)
    vocab = Vocab.build((tokenizer.tokenize(x) for x in train_lines), cfg.tokenizer.vocab_size,
                        cfg.tokenizer.min_freq)
    counts = Counter(i for ids in encode_lines(train_lines, tokenizer, vocab, cfg.data) for i in ids)
    total = sum(counts.values())
    rows = []
    for name in (v for v in args.variants if v != "full"):
        bounds = [0, *(int(c) for c in name.split(":", 1)[1].split(",")), len(vocab)]
        names = ["head", *(f"cluster{k}" for k in range(1, len(bounds) - 1))]
        shares = {n: round(100 * sum(c for i, c in counts.items() if lo <= i < hi) / total, 1)
                  for n, lo, hi in zip(names, bounds, bounds[1:], strict=False)}
        emit({"bench": "lm_adaptive_softmax_shares", "variant": name, "shares_pct": shares, "tokens": total,
              "vocab": len(vocab), "lines": args.lines, "recipe": args.recipe, "data": str(args.data)})
        rows.append([name, *(f"{v}%" for v in shares.values())])
    clusters = max((len(r) - 2 for r in rows), default=0)
    print(markdown_table(["Cutoffs", "Head", *(f"Cluster {k}" for k in range(1, clusters + 1))],
                         [r + [""] * (clusters + 2 - len(r)) for r in rows]))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR / "imdb" / "unsup.jsonl.gz",
                   help="unlabelled reviews (default DATA_DIR/imdb/unsup.jsonl.gz)")
    p.add_argument("--task", choices=sorted(TASKS), default="lm", help="what to pretrain (default lm)")
    p.add_argument("--recipe", help="the task's recipe (default: " + ", ".join(
        f"{task}: {recipe}" for task, (recipe, _, _) in TASKS.items()) + ")")
    p.add_argument("--lines", type=int, default=10000,
                   help="reviews read (data.max_lines; the autoencoder: data.max_examples; default 10000)")
    p.add_argument("--steps", type=int, default=40, help="updates per variant (default 40)")
    p.add_argument("--base-steps", type=int, default=10,
                   help="updates of each variant's second run, for the CPU seconds per update (default 10)")
    p.add_argument("--log-every", type=int, default=5, help="log window in updates (default 5)")
    p.add_argument("--variant", action="append", dest="variants", metavar="full|adaptive:C1,C2",
                   help="a softmax to compare (repeatable; default full and adaptive:2000,10000)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="passed to every variant as --set KEY=VALUE")
    p.add_argument("--out-dir", type=Path, help="default RUNS_DIR/bench-adaptive-softmax (lm), "
                   "bench-autoencoder-adaptive-softmax (autoencoder)")
    p.add_argument("--nice", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="smoke test: a small model on 600 reviews, 6 updates")
    p.add_argument("--shares", action="store_true",
                   help="no training: print the share of the training tokens in each adaptive variant's head and "
                        "clusters (the first --lines reviews, the recipe's vocabulary)")
    args = p.parse_args(argv)
    args.recipe = args.recipe or TASKS[args.task][0]
    task = "" if args.task == "lm" else f"{args.task}-"
    if args.quick:
        args.lines, args.steps, args.base_steps, args.log_every = 600, 6, 2, 2
        args.out_dir = RUNS_DIR / f"bench-quick-{task}adaptive-softmax"
    args.out_dir = args.out_dir or RUNS_DIR / f"bench-{task}adaptive-softmax"
    args.variants = args.variants or ["full", "adaptive:2000,10000"]
    if args.quick:
        args.variants = ["full" if v == "full" else "adaptive:200,1000" for v in args.variants]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.shares:
        if args.task != "lm":
            sys.exit("error: --shares counts the LM recipe's training tokens (--task lm)")
        from rnnkit.errors import RnnkitError

        try:
            cutoff_shares(args)
        except RnnkitError as e:  # a missing file, a bad --set: one line, as the CLI prints it
            sys.exit(f"error: {e}")
        return 0
    if not 0 < args.base_steps < args.steps:
        sys.exit("error: --base-steps must be above 0 and below --steps")
    variants = [make_variant(name, args.steps, args) for name in args.variants]
    bases = [make_variant(name, args.base_steps, args) for name in args.variants]
    run_at_once(variants + bases)
    failed = [v for v in variants + bases if v.returncode != 0]
    for v in failed:
        log = (v.out.parent / f"{v.out.name}.log").read_text(errors="replace")[-2000:]
        print(f"{v.name} exited with {v.returncode}:\n{log}", file=sys.stderr)
    if failed:
        return 1
    results = [summary(v, base) for v, base in zip(variants, bases, strict=True)]
    full = next((r for r in results if r["variant"] == "full"), None)
    for r, v in zip(results, variants, strict=True):
        if full:
            # (None where the runs' CPU seconds are too close to tell: --quick's tiny updates)
            r["speedup_vs_full"] = (round(full["cpu_s_per_update"] / r["cpu_s_per_update"], 2)
                                    if r["cpu_s_per_update"] > 0 else None)
        emit({"bench": f"{args.task}_adaptive_softmax", **r, "lines": args.lines, "machine": machine(),
              "threads_per_run": 1, "load": os.getloadavg(), "command": " ".join(v.command)})
    header = ["Softmax", "Parameters", "CPU s/update", "Speed-up", "Wall s/update", f"Valid ppl after {args.steps}",
              "CPU s / wall s"]
    print(markdown_table(header, [[r["variant"], f"{r['parameters']:,}", r["cpu_s_per_update"],
                                   speedup_text(r.get("speedup_vs_full")), r["wall_s_per_update"], r["valid_ppl"],
                                   f"{r['cpu_s']} / {r['wall_s']}"] for r in results]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Trainer overhead: rnnkit's Trainer vs a minimal PyTorch loop vs the peer's bare step, one process.

One model, the peer bare step's (``lstm_lm_step_bench.py``): 2x200 LSTM, embedding and softmax weights
tied, dropout 0.5 on the embedded inputs, between the layers and on the output, batch 20, bptt 35, the
vocabulary of rnnkit's PTB (10,002: its four specials), trained N steps at a time by

* ``rnnkit``         the real ``rnnkit.train.Trainer`` driving ``rnnkit.tasks.lm.LMTask`` built from
                     ``load_config("ptb-small", ["train.bptt=35", "model.tie_weights=true", ...])``
                     (MODEL_OVERRIDES: the peer's model); tokens/s is the trainer's own
                     log row (``log_every = N``): the clock starts before the first batch is sliced and
                     stops after the N-th update, so it holds everything the trainer does per step
                     (batch slicing, .to(device), lr setting, finite-loss check, clipping, state
                     detaching, loss readback, window bookkeeping, logging); progress bar off
                     (``--progress`` adds a variant with it on);
* ``minimal``        a hand-written loop over the SAME columns of the same token stream (asserted
                     equal to the trainer's), a plain ``nn.Embedding -> dropout -> nn.LSTM(200, 200, 2,
                     dropout=0.5) -> dropout -> nn.Linear`` (tied) with the same init range, SGD lr 1,
                     clip 5, ``loss.item()`` per step;
* ``minimal_rnnkit_model``  the same hand-written loop around rnnkit's own ``RNNLanguageModel``
                     (separates the trainer's cost from the model's);
* ``bare``           ``lstm_lm_step_bench.bench`` from shared/peers (imported, not copied): embedding,
                     2-layer nn.LSTM, tied softmax, dropout 0.5, clip, SGD, random ids, called with
                     rnnkit's vocabulary size;
* ``word_lm`` (``--word-lm``) the peer ``torch_word_lm.py`` as a subprocess, ``--max-batches N``,
                     ``--tied --dropout 0.5`` (its own PTB vocabulary of 10,000).

Importing rnnkit sets glibc malloc's thresholds for the whole process (rnnkit.runtime), so the
in-process variants share them; ``word_lm`` runs with glibc's defaults.

Rounds are interleaved (round k runs every variant once, in a rotated order) after one untimed warm-up
round; one-time setup (reading PTB, building the vocabulary, building models) is outside the clocks.
Prints one JSON line per measurement (``{"bench": "trainer_overhead", ...}``), one summary line, and a
Markdown table of median tokens/s and the ratios rnnkit/minimal and rnnkit/bare (target >= 0.95).

  python benchmarks/trainer_overhead.py                   # 3 rounds x 40 steps, 1 torch thread
  python benchmarks/trainer_overhead.py --rounds 5 --steps 60 --threads 2 --word-lm
  python benchmarks/trainer_overhead.py --profile          # + cProfile of the trainer's steps
  python benchmarks/trainer_overhead.py --quick            # smoke test, < 1 min
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    DEFAULT_DATA_DIR,
    PEERS_DIR,
    RUNS_DIR,
    emit,
    machine,
    markdown_table,
    timed_trainer_class,
)

SHAPE = {"hidden": 200, "layers": 2, "batch": 20, "bptt": 35, "dropout": 0.5}
# ptb-small made into the peer bare step's model: tied weights, its three dropouts
MODEL_OVERRIDES = ["model.tie_weights=true", f"model.embedding_dropout={SHAPE['dropout']}",
                   f"model.layer_dropout={SHAPE['dropout']}", f"model.dropout={SHAPE['dropout']}"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help=f"holds ptb/ (default {DEFAULT_DATA_DIR})")
    p.add_argument("--peers-dir", type=Path, default=PEERS_DIR, help=f"peer scripts (default {PEERS_DIR})")
    p.add_argument("--steps", type=int, default=40, help="training steps per variant per round (default 40)")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3), after one warm-up round")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads for every variant (default 1: on a shared 2-core machine two "
                        "threads make every variant several times slower and far noisier; 0 = torch default)")
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--progress", action="store_true", help="also time the trainer with its progress bar on")
    p.add_argument("--word-lm", action="store_true",
                   help="also time the peer torch_word_lm.py (subprocess; reads PTB again each round)")
    p.add_argument("--profile", action="store_true", help="cProfile the trainer's steps after the rounds")
    p.add_argument("--out", type=Path, default=RUNS_DIR / "bench-trainer-overhead",
                   help="scratch model directory for the trainer (default runs/bench-trainer-overhead)")
    p.add_argument("--quick", action="store_true", help="smoke test (< 1 min): 1 round of 5 steps, 300 PTB lines")
    return p.parse_args(argv)


def build_task(args, progress: bool):
    """rnnkit's public path: recipe + overrides -> Config -> LMTask (vocabulary, batches, model)."""
    from rnnkit.config import load_config
    from rnnkit.distributed import DistInfo
    from rnnkit.tasks.lm import LMTask
    from rnnkit.train import resolve_device, seed_everything

    ptb = args.data_dir / "ptb"
    overrides = [*MODEL_OVERRIDES, f"train.bptt={SHAPE['bptt']}", f"train.batch_size={SHAPE['batch']}",
                 f"train.log_every={args.steps}",
                 f"train.progress={'true' if progress else 'false'}", f"train.device={args.device}"]
    if args.quick:
        overrides.append("data.max_lines=300")
    extra = {"data": {"train": str(ptb / "ptb.train.txt"), "valid": str(ptb / "ptb.valid.txt")}}
    cfg = load_config("ptb-small", overrides, extra)
    device = resolve_device(cfg.train.device)
    seed_everything(cfg.train.seed)
    task = LMTask(cfg, DistInfo(), device)
    # Validation is not what is measured: the fit() of each round ends with one; keep it short.
    task.valid_seqs = task.valid_seqs[:20]
    return cfg, task, device, overrides


class RnnkitVariant:
    """A fresh Trainer per round (step 0: the first N batches of epoch 1, like the other loops)."""

    def __init__(self, name, args, progress: bool):
        self.name, self.args = name, args
        self.cfg, self.task, self.device, self.overrides = build_task(args, progress)
        self.out = args.out / name

    def run(self, steps: int) -> dict:
        self.cfg.train.max_steps = steps
        self.cfg.train.log_every = steps
        trainer = timed_trainer_class()(self.task, self.cfg.train, self.out, self.device)
        t0 = time.perf_counter()
        trainer.fit()  # N steps, then a (short) validation and a checkpoint: outside the log row's clock
        fit_wall = time.perf_counter() - t0
        row = next(r for r in trainer.rows if r["split"] == "train" and r["step"] == steps)
        (w0, c0), (w1, c1) = trainer.marks[:2]
        tokens = steps * SHAPE["bptt"] * SHAPE["batch"]
        return {"tokens_per_sec": float(row["tokens_per_sec"]), "tokens_per_sec_hooks": round(tokens / (w1 - w0), 1),
                "tokens_per_cpu_sec": round(tokens / (c1 - c0), 1), "fit_wall_s": round(fit_wall, 3),
                "trainer_step_s": row["elapsed_sec"]}


def independent_columns(task, ptb: Path, max_lines: int):
    """PTB read and encoded without rnnkit's batching code: same ids, same column layout."""
    import torch

    ids = []
    with open(ptb / "ptb.train.txt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if max_lines and i >= max_lines:
                break
            ids += [task.vocab.stoi.get(w, task.vocab.unk_id) for w in line.split()] + [task.vocab.eos_id]
    stream = torch.tensor(ids, dtype=torch.long)
    b = SHAPE["batch"]
    n = (len(stream) - 1) // b
    x = stream[: n * b].view(b, n).t().contiguous()
    y = stream[1: n * b + 1].view(b, n).t().contiguous()
    if not (torch.equal(x, task.train_data.inputs) and torch.equal(y, task.train_data.targets)):
        raise SystemExit("error: the hand-built PTB columns differ from rnnkit's: not the same data order")
    return x, y


class MinimalVariant:
    """The loop a PyTorch user writes by hand (pytorch/examples word_language_model style)."""

    def __init__(self, name, x, y, vocab_size: int, model=None, device="cpu"):
        import torch
        from torch import nn

        self.name, self.device = name, torch.device(device)
        self.x, self.y = x.to(self.device), y.to(self.device)
        self.vocab = vocab_size
        if model is None:
            torch.manual_seed(1111)
            model = PlainLM(vocab_size, SHAPE["hidden"], SHAPE["layers"])
            for p in model.parameters():
                nn.init.uniform_(p, -0.1, 0.1)
            self.rnnkit_model = False
        else:
            self.rnnkit_model = True
        self.model = model.to(self.device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=1.0)

    def run(self, steps: int) -> dict:
        import torch
        import torch.nn.functional as F

        model, opt, bptt = self.model, self.opt, SHAPE["bptt"]
        model.train()
        state = None
        total = 0.0
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(steps):
            x = self.x[i * bptt: (i + 1) * bptt]
            y = self.y[i * bptt: (i + 1) * bptt]
            if state is not None:
                state = _detach(state)
            opt.zero_grad(set_to_none=True)
            if self.rnnkit_model:
                out = model(x, state)
                logits, state = out.logits, out.state
            else:
                logits, state = model(x, state)
            loss = F.cross_entropy(logits.reshape(-1, self.vocab), y.reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            total += loss.item()
        sync()
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        tokens = steps * bptt * SHAPE["batch"]
        return {"tokens_per_sec": round(tokens / dt, 1), "tokens_per_cpu_sec": round(tokens / cpu, 1),
                "mean_loss": round(total / steps, 4)}


def _detach(state):
    import torch

    if isinstance(state, torch.Tensor):
        return state.detach()
    return type(state)(_detach(s) for s in state)


def PlainLM(vocab: int, hidden: int, layers: int):  # noqa: N802 - a class factory (torch imported lazily)
    """The bare step's model written the usual way: tied softmax, dropout on inputs, between layers, outputs."""
    from torch import nn

    class _PlainLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab, hidden)
            self.drop = nn.Dropout(SHAPE["dropout"])
            self.rnn = nn.LSTM(hidden, hidden, layers, dropout=SHAPE["dropout"])
            self.proj = nn.Linear(hidden, vocab)
            self.proj.weight = self.embed.weight

        def forward(self, x, state):
            h, state = self.rnn(self.drop(self.embed(x)), state)
            return self.proj(self.drop(h)), state

    return _PlainLM()


class BareVariant:
    """The peer's bare step, imported from shared/peers (its own warm-up and clock)."""

    def __init__(self, name, peers_dir: Path, device: str, vocab_size: int):
        import torch

        sys.path.insert(0, str(peers_dir))
        import lstm_lm_step_bench as peer

        self.name, self.peer, self.torch, self.device = name, peer, torch, torch.device(device)
        self.shape = (vocab_size, SHAPE["hidden"], SHAPE["layers"], SHAPE["batch"], SHAPE["bptt"])

    def run(self, steps: int) -> dict:
        r = self.peer.bench(self.torch, "small(2x200,b20)", self.shape, self.device, False, steps, 3)
        return {"tokens_per_sec": r["tokens_per_sec"], "ms_per_step": r["ms_per_step"]}


class WordLMVariant:
    """The peer torch_word_lm.py as a subprocess: one epoch of N batches, tied, dropout 0.5, no test."""

    def __init__(self, name, args):
        self.name, self.args = name, args

    def run(self, steps: int) -> dict:
        a = self.args
        cmd = [sys.executable, str(a.peers_dir / "torch_word_lm.py"), "--data-dir", str(a.data_dir / "ptb"),
               "--epochs", "1", "--max-batches", str(steps), "--dropout", str(SHAPE["dropout"]), "--tied",
               "--lr", "1", "--clip", "5",
               "--no-test", "--max-eval-tokens", "2000", "--log-interval", "0", "--device", a.device]
        if a.threads:
            cmd += ["--threads", str(a.threads)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        result = json.loads([line for line in out.splitlines() if line.startswith('{"peer"')][-1])
        return {"tokens_per_sec": result["tokens_per_sec"], "sec_per_epoch": result["sec_per_epoch"]}


def profile_trainer(variant: RnnkitVariant, steps: int) -> str:
    """cProfile of ``steps`` trainer steps (plus its end-of-fit validation/checkpoint, shown apart)."""
    prof = cProfile.Profile()
    prof.enable()
    variant.run(steps)
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats("rnnkit", 30)
    return buf.getvalue()


def summarize(results: dict[str, list[float]], cpu: dict[str, list[float]]):
    """Medians, ratios of medians, and the median of the ratios taken round by round (neighbours in time)."""
    med = {n: statistics.median(v) for n, v in results.items()}
    cpu_med = {n: statistics.median(v) for n, v in cpu.items() if v}
    per_round = {n: [a / b for a, b in zip(results["rnnkit"], v, strict=True)] for n, v in results.items()}
    summary = {
        "median_tokens_per_sec": {n: round(v, 1) for n, v in med.items()},
        "ratio_of_medians": {f"rnnkit/{n}": round(med["rnnkit"] / v, 3) for n, v in med.items() if n != "rnnkit"},
        "median_ratio_per_round": {f"rnnkit/{n}": round(statistics.median(v), 3)
                                   for n, v in per_round.items() if n != "rnnkit"},
        "ratio_per_round": {f"rnnkit/{n}": [round(r, 3) for r in v] for n, v in per_round.items() if n != "rnnkit"},
        "median_tokens_per_cpu_sec": {n: round(v, 1) for n, v in cpu_med.items()},
        "cpu_ratio_of_medians": {f"rnnkit/{n}": round(cpu_med["rnnkit"] / v, 3)
                                 for n, v in cpu_med.items() if n != "rnnkit"},
    }
    rows = []
    for n in results:
        own = n == "rnnkit"
        rows.append([n, " / ".join(f"{t:,.0f}" for t in results[n]), f"{med[n]:,.0f}",
                     "-" if own else f"{statistics.median(per_round[n]):.3f}",
                     "-" if own else f"{med['rnnkit'] / med[n]:.3f}",
                     f"{cpu_med[n]:,.0f}" if n in cpu_med else "n/a (peer's own wall clock)",
                     "-" if own or n not in cpu_med else f"{cpu_med['rnnkit'] / cpu_med[n]:.3f}"])
    return summary, rows


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.steps, args.rounds = 5, 1
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    t_setup = time.perf_counter()
    variants = [RnnkitVariant("rnnkit", args, progress=False)]
    if args.progress:
        variants.append(RnnkitVariant("rnnkit_progress_bar", args, progress=True))
    task = variants[0].task
    x, y = independent_columns(task, args.data_dir / "ptb", 300 if args.quick else 0)
    vocab_size = len(task.vocab)
    from rnnkit.models.lm import RNNLanguageModel

    torch.manual_seed(1111)
    variants.append(MinimalVariant("minimal", x, y, vocab_size, device=args.device))
    variants.append(MinimalVariant("minimal_rnnkit_model", x, y, vocab_size,
                                   RNNLanguageModel(task.cfg.model, vocab_size), device=args.device))
    variants.append(BareVariant("bare", args.peers_dir, args.device, vocab_size))
    if args.word_lm:
        variants.append(WordLMVariant("word_lm", args))
    setup_s = time.perf_counter() - t_setup
    meta = {"shape": {**SHAPE, "vocab": vocab_size, "tied": True}, "steps": args.steps,
            "threads": torch.get_num_threads(), "device": args.device, "rnnkit_overrides": variants[0].overrides,
            "machine": machine(args.device)}
    print(f"setup (PTB, vocabulary, models) {setup_s:.1f} s, not timed; {len(variants)} variants x "
          f"{args.rounds} rounds x {args.steps} steps, {meta['threads']} torch thread(s)", file=sys.stderr)

    for v in variants:  # warm-up round (allocator, oneDNN primitives, page cache): not reported
        v.run(min(args.steps, 5))
    results: dict[str, list[float]] = {v.name: [] for v in variants}
    cpu: dict[str, list[float]] = {v.name: [] for v in variants}
    for k in range(args.rounds):
        order = variants[k % len(variants):] + variants[: k % len(variants)]  # rotate who goes first
        for v in order:
            r = v.run(args.steps)
            results[v.name].append(r["tokens_per_sec"])
            if "tokens_per_cpu_sec" in r:
                cpu[v.name].append(r["tokens_per_cpu_sec"])
            emit({"bench": "trainer_overhead", "variant": v.name, "round": k + 1, **r, **meta})

    if args.rounds < 1:  # e.g. --rounds 0 --profile: only the profile
        results = {}
    summary, rows = summarize(results, cpu) if results else ({}, [])
    if results:
        emit({"bench": "trainer_overhead", "variant": "summary", **summary, "target": 0.95, "rounds": args.rounds,
              **meta})
        print()
        print(markdown_table(["variant", "wall tok/s per round", "median",
                              "rnnkit / this: median of per-round ratios", "rnnkit / this: ratio of medians",
                              "CPU-time tok/s (median)", "rnnkit / this (CPU time)"], rows))
    if args.profile:
        print("\n## cProfile of the rnnkit variant\n```")
        print(profile_trainer(variants[0], args.steps))
        print("```")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Seq2seq training overhead: rnnkit's Trainer + seq2seq task vs a minimal PyTorch loop, same model and batches.

One process, ``--threads`` torch threads. The task is built as ``rnnkit train seq2seq`` builds it
(``rnnkit.api.build_config`` -> the registered seq2seq task: tokenizers, vocabularies, bucketed
batches, model), from ``--recipe`` (default ``multi30k-de-en``) on Multi30k's training pairs (the
validation file cut to its first 20 pairs: validation is not what is measured). Variants, each run
for the first ``--steps`` batches of epoch 1's plan (the same batches for all):

* ``rnnkit``: the real ``rnnkit.train.Trainer`` on the task (``max_steps = log_every = N``); tokens/s
  is its own log row (the clock holds batch collation, ``.to(device)``, the task's ``batch_loss``,
  backward, clipping, the optimizer, loss readback, logging); two hooks add the CPU time of the same window.
* ``minimal``: a hand-written loop over the same batch specs: ``task.train_data.batch(spec)`` (the same
  collation), ``model(src, src_lengths, trg_in)``, summed cross-entropy / target tokens, backward,
  ``clip_grad_norm_``, the optimizer ``make_optimizer`` builds for the recipe (Adam 1e-3 ...), ``loss.item()``;
  on a copy of the same model (same initial weights).
* ``minimal_prebuilt``: the same loop over batches collated before the clock starts (what collation costs).

Rounds are interleaved after a warm-up round (rotated order); the ratio rnnkit / minimal (target >= 0.95)
is the median of the per-round ratios, in wall and CPU time.

Then fused teacher forcing vs a loop of ``step()`` (``seq2seq_teacher_forcing.py``'s two loss functions)
on the same real batches: the recipe's model and, with ``--tf-styles``, variants of it (e.g. attention
without input feeding, whose decoder runs as one fused GRU call).

  python benchmarks/seq2seq_overhead.py                          # 3 rounds x 30 steps
  python benchmarks/seq2seq_overhead.py --rounds 5 --steps 40
  python benchmarks/seq2seq_overhead.py --quick
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, RUNS_DIR, emit, machine, markdown_table, timed_trainer_class  # noqa: E402
from _seq2seq import DATA_DIR  # noqa: E402

sys.path.insert(0, str(REPO / "src"))

TF_STYLES = {"recipe": {}, "attention": {"input_feeding": False}, "state": {"decoder": "state", "input_feeding": False}}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", default="multi30k-de-en")
    p.add_argument("--data", type=Path, default=DATA_DIR / "multi30k")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--steps", type=int, default=30, help="training steps per variant per round (default 30)")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds after one warm-up round (default 3)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tf-styles", default="recipe,attention",
                   help="teacher forcing comparison: comma-separated of " + ", ".join(TF_STYLES) + " ('' = skip)")
    p.add_argument("--tf-batches", type=int, default=5, help="real batches per teacher-forcing timing")
    p.add_argument("--out", type=Path, default=RUNS_DIR / "bench-seq2seq-overhead")
    p.add_argument("--quick", action="store_true", help="smoke test: 1 round of 4 steps, 2 batches")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.rounds, args.tf_batches = 4, 1, 2
    return args


def small_valid_folder(args) -> Path:
    """The data folder the task reads: Multi30k's training pairs, its validation file cut to 20 pairs."""
    folder = args.out / "data"
    folder.mkdir(parents=True, exist_ok=True)
    for lang in ("de", "en"):
        (folder / f"train.{lang}").write_bytes((args.data / f"train.{lang}").read_bytes())
        lines = (args.data / f"val.{lang}").read_text(encoding="utf-8").splitlines()[:20]
        (folder / f"val.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def build_task(args):
    from rnnkit.api import build_config
    from rnnkit.distributed import DistInfo
    from rnnkit.tasks import get_task
    from rnnkit.train import resolve_device, seed_everything

    overrides = [f"train.threads={args.threads}", "train.progress=false", "train.eval_every=0",
                 "train.device=cpu", *args.overrides]
    cfg = build_config("seq2seq", args.recipe, str(small_valid_folder(args)), None, None, overrides)
    seed_everything(cfg.train.seed)
    task = get_task("seq2seq")(cfg, DistInfo(), resolve_device("cpu"))
    return cfg, task, overrides


class RnnkitVariant:
    name = "rnnkit"

    def __init__(self, cfg, task, out: Path):
        self.cfg, self.task, self.out = cfg, task, out

    def run(self, steps: int) -> dict:
        self.cfg.train.max_steps = self.cfg.train.log_every = steps
        trainer = timed_trainer_class()(self.task, self.cfg.train, self.out, self.task.device)
        trainer.fit()
        row = next(r for r in trainer.rows if r["split"] == "train" and r["step"] == steps)
        (w0, c0), (w1, c1) = trainer.marks[:2]
        tokens = self.tokens(steps)
        return {"tokens_per_sec": float(row["tokens_per_sec"]), "tokens_per_sec_hooks": round(tokens / (w1 - w0), 1),
                "tokens_per_cpu_sec": round(tokens / (c1 - c0), 1), "tokens": tokens}

    def tokens(self, steps: int) -> int:
        data = self.task.train_data
        return sum(data.batch(spec).num_tokens for spec in data.plan(0)[:steps])


class MinimalVariant:
    """The loop a PyTorch user writes by hand around the same model, on the same batches."""

    def __init__(self, name: str, cfg, task, prebuilt: bool):
        import torch

        from rnnkit.train import make_optimizer

        self.name, self.task, self.prebuilt = name, task, prebuilt
        self.model = copy.deepcopy(task.model)
        self.optimizer = make_optimizer(cfg.train.optimizer, self.model.parameters(), cfg.train)
        self.clip = cfg.train.clip
        self.smoothing = getattr(cfg.train, "label_smoothing", 0.0)
        self.specs = task.train_data.plan(0)
        self.torch = torch

    def run(self, steps: int) -> dict:
        import torch.nn.functional as F

        from rnnkit.data.lm import IGNORE_INDEX

        torch, data, model = self.torch, self.task.train_data, self.model
        specs = self.specs[:steps]
        batches = [data.batch(s) for s in specs] if self.prebuilt else None
        model.train()
        tokens, total = 0, 0.0
        t0, c0 = time.perf_counter(), time.process_time()
        for k, spec in enumerate(specs):
            batch = batches[k] if batches else data.batch(spec)
            logits = model(batch.src, batch.src_lengths, batch.trg_in)
            loss = F.cross_entropy(logits.flatten(0, 1), batch.trg_out.flatten(), ignore_index=IGNORE_INDEX,
                                   reduction="sum", label_smoothing=self.smoothing) / batch.num_tokens
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), self.clip)
            self.optimizer.step()
            total += loss.item()
            tokens += batch.num_tokens
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        return {"tokens_per_sec": round(tokens / dt, 1), "tokens_per_cpu_sec": round(tokens / cpu, 1),
                "tokens": tokens, "mean_loss": round(total / len(specs), 4)}


def overhead(args, cfg, task, meta) -> list[list]:
    variants = [RnnkitVariant(cfg, task, args.out / "model"), MinimalVariant("minimal", cfg, task, False),
                MinimalVariant("minimal_prebuilt", cfg, task, True)]
    for v in variants:  # warm-up
        v.run(min(args.steps, 3))
    wall = {v.name: [] for v in variants}
    cpu = {v.name: [] for v in variants}
    for k in range(args.rounds):
        for v in variants[k % len(variants):] + variants[: k % len(variants)]:
            r = v.run(args.steps)
            wall[v.name].append(r["tokens_per_sec"])
            cpu[v.name].append(r["tokens_per_cpu_sec"])
            emit({"bench": "seq2seq_overhead", "variant": v.name, "round": k + 1, **r, **meta})
    rows, summary = [], {}
    for name in wall:
        ratio = statistics.median(a / b for a, b in zip(wall["rnnkit"], wall[name], strict=True))
        cpu_ratio = statistics.median(a / b for a, b in zip(cpu["rnnkit"], cpu[name], strict=True))
        summary[name] = {"median_tokens_per_sec": statistics.median(wall[name]),
                         "median_tokens_per_cpu_sec": statistics.median(cpu[name]),
                         "rnnkit_over_this": round(ratio, 3), "rnnkit_over_this_cpu": round(cpu_ratio, 3)}
        own = name == "rnnkit"
        rows.append([name, " / ".join(f"{t:,.0f}" for t in wall[name]), f"{statistics.median(wall[name]):,.0f}",
                     f"{statistics.median(cpu[name]):,.0f}", "-" if own else f"{ratio:.3f}",
                     "-" if own else f"{cpu_ratio:.3f}"])
    emit({"bench": "seq2seq_overhead", "variant": "summary", **summary, "target": 0.95, "rounds": args.rounds, **meta})
    return rows


def teacher_forcing(args, cfg, task, meta) -> list[list]:
    import torch

    from rnnkit.data.lm import IGNORE_INDEX
    from rnnkit.train import make_optimizer
    from seq2seq_teacher_forcing import fused_loss, step_loss, time_updates

    # seq2seq_teacher_forcing's losses use cross_entropy's default ignore_index for the padded targets
    assert IGNORE_INDEX == -100, f"padding targets are {IGNORE_INDEX}, not cross_entropy's default -100"
    data = task.train_data
    batches = [data.batch(s) for s in data.plan(0)[: args.tf_batches]]
    tokens = sum(b.num_tokens for b in batches)
    src_vocab = task.model.encoder.embedding.num_embeddings if task.model.encoder.embedding is not None else None
    rows = []
    for style in [s for s in args.tf_styles.split(",") if s]:
        torch.manual_seed(0)
        model_cfg = dataclasses.replace(cfg.model, **TF_STYLES[style])
        model = task.model if style == "recipe" else type(task.model)(
            model_cfg, src_vocab, task.model.decoder.output.out_features)
        optimizer = make_optimizer(cfg.train.optimizer, model.parameters(), cfg.train)
        model.train()
        best = {}
        for fn in (fused_loss, step_loss):
            time_updates(model, optimizer, fn, as_tuple(batches[0]), 1)  # warm-up
        for _ in range(max(args.rounds, 1)):
            for mode, fn in (("fused", fused_loss), ("step", step_loss)):
                secs = sum(time_updates(model, optimizer, fn, as_tuple(b), 1) for b in batches)
                best[mode] = min(best.get(mode, float("inf")), secs)
        record = {"bench": "seq2seq_teacher_forcing_real", "style": style, "model": dataclasses.asdict(model_cfg),
                  "batches": len(batches), "tokens": tokens, **meta,
                  **{f"{m}_tokens_per_cpu_s": round(tokens / s, 1) for m, s in best.items()},
                  "ratio": round(best["step"] / best["fused"], 3)}
        emit(record)
        rows.append([style, f"{record['fused_tokens_per_cpu_s']:,.0f}", f"{record['step_tokens_per_cpu_s']:,.0f}",
                     f"{record['ratio']:.2f}x"])
    return rows


def as_tuple(batch):
    return batch.src, batch.src_lengths, batch.trg_in, batch.trg_out


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    cfg, task, overrides = build_task(args)
    params = sum(p.numel() for p in task.model.parameters())
    meta = {"recipe": args.recipe, "overrides": overrides, "steps": args.steps, "params": params,
            "threads": torch.get_num_threads(), "machine": machine()}
    print(f"setup {time.perf_counter() - t0:.1f} s (not timed): {task.describe()}", file=sys.stderr, flush=True)
    rows = overhead(args, cfg, task, meta)
    print(markdown_table(["variant", "wall tok/s per round", "median wall tok/s", "median CPU tok/s",
                          "rnnkit / this (wall, median of rounds)", "rnnkit / this (CPU)"], rows))
    if args.tf_styles:
        tf_rows = teacher_forcing(args, cfg, task, meta)
        print()
        print(markdown_table(["model", "fused tok/s (CPU)", "step-loop tok/s (CPU)", "fused / step"], tf_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Where one epoch of seed 003's IMDB bag model goes: CPU seconds of each part of an epoch, in one process.

The recipe's task (``seed-003-imdb-bag``: 15,000 training / 10,000 validation reviews of at most 256 words,
batches of 512, Adam) is built as ``rnnkit train classify`` builds it, then each part of epoch 1 is clocked
(``time.process_time``, the best of ``--repeats``) over the same 30 batches:

* ``collate``  the trainer's batches of the epoch (``train_data.batch(spec)``);
* ``forward``  the training forward and the summed cross-entropy;
* ``backward`` ``loss.backward()`` (the embedding's gradient is most of it);
* ``optimizer`` Adam's step;
* ``validate`` the task's validation (10,000 reviews, batches collated once);
* ``update``   collate, forward, backward and step together, as the trainer does them.

Checkpoints, log rows and the epoch's bookkeeping are not in these parts: ``classify_vs_keras.py side``
clocks whole epochs. Any ``src`` tree can be measured (``PYTHONPATH=OTHER/src``), so two trees' parts compare.

  OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python benchmarks/bag_epoch_parts.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_DIR, emit, machine, markdown_table  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    p.add_argument("--repeats", type=int, default=5, help="clock each part this many times, keep the best")
    p.add_argument("--max-examples", type=int, default=0, help="use only this many of the training file's reviews")
    p.add_argument("--quick", action="store_true", help="smoke test: 2,000 reviews, 2 repeats")
    args = p.parse_args(argv)
    if args.quick:
        args.max_examples, args.repeats = 2000, 2
    return args


def build(args):
    import torch

    from rnnkit.config import load_config
    from rnnkit.distributed import DistInfo
    from rnnkit.tasks.classify import ClassifyTask
    from rnnkit.train import make_optimizer, seed_everything

    torch.set_num_threads(1)
    cfg = load_config("seed-003-imdb-bag", ["train.device=cpu", "train.threads=1",
                                            f"data.max_examples={args.max_examples}"],
                      {"data": {"train": str(args.data_dir / "imdb" / "train.jsonl.gz")}})
    seed_everything(cfg.train.seed)
    task = ClassifyTask(cfg, DistInfo(), torch.device("cpu"))
    return task, make_optimizer("adam", task.model.parameters(), cfg.train)


def clock(part, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        part()
        best = min(best, time.process_time() - start)
    return best


def parts(task, optimizer, repeats: int) -> dict[str, float]:
    import torch.nn.functional as F

    model, data = task.model.train(), task.train_data
    plan = data.plan(0)
    batches = [data.batch(spec) for spec in plan]  # also makes what a set caches at its first batch

    def loss_of(batch):
        return F.cross_entropy(model(batch.inputs, batch.lengths), batch.labels, reduction="sum") / len(batch.labels)

    losses = []

    def forward():
        losses[:] = [loss_of(batch) for batch in batches]

    def backward():  # each graph is freed by its backward: forward() again before each timing
        for loss in losses:
            loss.backward()

    def update():
        for spec in plan:
            optimizer.zero_grad(set_to_none=True)
            loss_of(data.batch(spec)).backward()
            optimizer.step()

    update()  # warm-up; Adam's state exists from here on
    task.validate(model)  # collates the validation batches once, as the trainer's first validation does
    timings = {"collate": clock(lambda: [data.batch(spec) for spec in plan], repeats),
               "forward": clock(forward, repeats)}
    best_backward = float("inf")
    for _ in range(repeats):
        forward()
        best_backward = min(best_backward, clock(backward, 1))
    timings["backward"] = best_backward
    timings["optimizer"] = clock(lambda: [optimizer.step() for _ in plan], repeats)
    timings["validate"] = clock(lambda: task.validate(model), repeats)
    timings["update"] = clock(update, repeats)
    return {name: round(seconds, 4) for name, seconds in timings.items()} | {"batches": len(plan)}


def main(argv=None) -> int:
    args = parse_args(argv)
    import rnnkit

    task, optimizer = build(args)
    figures = parts(task, optimizer, args.repeats)
    emit({"bench": "bag_epoch_parts", "src": str(Path(rnnkit.__file__).parent), **figures,
          "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
    print(markdown_table(["part", f"CPU s per epoch ({figures['batches']} batches)"],
                         [[name, seconds] for name, seconds in figures.items() if name != "batches"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

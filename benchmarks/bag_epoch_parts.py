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

``--measure`` clocks something else instead:

* ``scoring``  ``predict`` (what ``rnnkit evaluate``, ``classify`` and the test after training run) on the test
  file's 25,000 reviews, encoded once, each repeat on a fresh copy of the encoded set (so the tables a set
  makes once are in it); also those tables alone (``id_table``; ``distinct_tokens`` where the tree has it).
  Any ``src`` tree.
* ``counts``   the training split's tokens and distinct (text, token) entries, in all and per batch.
* ``kernels``  ms per batch of the embedding's gradient on the epoch's batches: ``gradient_by_token`` against
  the previous ``index_add_`` path (61e8214's ``_BagMean.backward``, on every token of the padded batch), and
  the stable sort of the batch's 16-bit against 64-bit token keys.

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
    p.add_argument("--measure", choices=["parts", "scoring", "counts", "kernels"], default="parts")
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
    test = {"test": str(args.data_dir / "imdb" / "test.jsonl.gz")} if args.measure == "scoring" else {}
    cfg = load_config("seed-003-imdb-bag", ["train.device=cpu", "train.threads=1",
                                            f"data.max_examples={args.max_examples}"],
                      {"data": {"train": str(args.data_dir / "imdb" / "train.jsonl.gz"), **test}})
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


def scoring(task, repeats: int) -> dict[str, float]:
    import torch

    from rnnkit.data.labelled import Encoded
    from rnnkit.tasks.classify import predict

    encoded = task.reader.encode(task.test_examples)
    size = task.cfg.train.eval_batch_size

    def fresh() -> Encoded:  # without the tables a set makes at its first batch
        return Encoded(encoded.lengths, encoded.labels, ids=encoded.ids)

    timings = {"predict": clock(lambda: predict(task.model, fresh(), size, torch.device("cpu")), repeats),
               "id_table": clock(lambda: fresh().id_table, repeats)}
    if hasattr(Encoded, "distinct_tokens"):
        timings["distinct_tokens"] = clock(lambda: fresh().distinct_tokens, repeats)
    return {name: round(seconds, 4) for name, seconds in timings.items()} | {"reviews": len(encoded)}


def counts(task) -> dict[str, float]:
    data = task.train_data
    batches = [data.batch(spec) for spec in data.plan(0)]
    entries = [len(b.inputs.ids) for b in batches]
    tokens = [int(b.lengths.sum()) for b in batches]
    full = [i for i, b in enumerate(batches) if len(b.lengths) == task.cfg.train.batch_size]
    return {"reviews": len(data.lengths), "tokens": sum(tokens), "distinct_entries": sum(entries),
            "distinct_share": round(sum(entries) / sum(tokens), 4), "batches": len(batches), "full_batches": len(full),
            "mean_entries_per_full_batch": round(sum(entries[i] for i in full) / len(full)),
            "mean_tokens_per_full_batch": round(sum(tokens[i] for i in full) / len(full))}


def previous_gradient(flat, lengths, grad, rows: int):
    """61e8214's ``_BagMean.backward``: each token's share of its text's gradient, added row by row."""
    per_token = (grad / lengths.unsqueeze(-1)).repeat_interleave(lengths, 0)
    return per_token.new_zeros(rows, per_token.size(1)).index_add_(0, flat, per_token)


def kernels(task, repeats: int) -> dict[str, float]:
    import torch

    from rnnkit.data.batching import bags_of_padded
    from rnnkit.data.labelled import collate
    from rnnkit.nn.bag import gradient_by_token

    data, rows = task.train_data, task.model.encoder.embedding.weight.size(0)
    plan = data.plan(0)
    bags = [data.batch(spec).inputs for spec in plan]
    padded = [collate(data.collate.args[0], spec) for spec in plan]
    every = [(bags_of_padded(b.inputs, b.lengths).ids, b.lengths) for b in padded]
    grads = [torch.randn(len(b), task.model.encoder.embedding.weight.size(1)) for b in bags]
    keys = [(b.ids.to(torch.int16), b.ids) for b in bags]

    def per_batch(part) -> float:  # ms per batch, the best of the repeats
        return round(clock(lambda: [part(i) for i in range(len(plan))], repeats) / len(plan) * 1e3, 3)

    return {"batches": len(plan),
            "gradient_by_token_ms": per_batch(lambda i: gradient_by_token(bags[i].ids, bags[i].shares, bags[i].offsets,
                                                                          grads[i], rows)),
            "previous_index_add_path_ms": per_batch(lambda i: previous_gradient(*every[i], grads[i], rows)),
            "of_which_index_add_ms": per_batch(lambda i: torch.zeros(rows, grads[i].size(1)).index_add_(
                0, every[i][0], grads[i].new_ones(len(every[i][0]), grads[i].size(1)))),
            "stable_sort_int16_keys_ms": per_batch(lambda i: torch.argsort(keys[i][0], stable=True)),
            "stable_sort_int64_keys_ms": per_batch(lambda i: torch.argsort(keys[i][1], stable=True))}


def main(argv=None) -> int:
    args = parse_args(argv)
    import rnnkit

    task, optimizer = build(args)
    if args.measure == "parts":
        figures = parts(task, optimizer, args.repeats)
    else:
        figures = {"scoring": lambda: scoring(task, args.repeats), "counts": lambda: counts(task),
                   "kernels": lambda: kernels(task, args.repeats)}[args.measure]()
    emit({"bench": "bag_epoch_parts", "measure": args.measure, "src": str(Path(rnnkit.__file__).parent), **figures,
          "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
    if args.measure == "parts":
        print(markdown_table(["part", f"CPU s per epoch ({figures['batches']} batches)"],
                             [[name, seconds] for name, seconds in figures.items() if name != "batches"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

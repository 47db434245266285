"""Issue 14: the training step of a classifier with model.joint none / lm / reconstruct, on the same IMDB batches.

The three models (imdb-lstm's, on the first 128 words and a vocabulary of 5,000) take each batch in turn, in an
order that rotates from batch to batch, so a shared machine's load falls on all three alike; one torch thread.

    python benchmarks/joint_step_time.py --data ../shared/data/imdb/train.jsonl.gz [--batches 40]
"""

from __future__ import annotations

import argparse
import time

import torch

from rnnkit.config import load_config
from rnnkit.distributed import DistInfo
from rnnkit.tasks.classify import ClassifyTask

JOINTS = ("none", "lm", "reconstruct")
KEYS = ["data.max_examples=2000", "data.max_length=128", "tokenizer.vocab_size=5000", "train.batch_size=32"]


def build(data: str, joint: str) -> ClassifyTask:
    torch.manual_seed(0)
    cfg = load_config("imdb-lstm", [*KEYS, f"data.train={data}", f"model.joint={joint}"], {"task": "classify"})
    return ClassifyTask(cfg, DistInfo(), torch.device("cpu"))


def step(task: ClassifyTask, optimizer: torch.optim.Optimizer, batch) -> float:
    """Seconds of one update (loss as the trainer forms it, backward, Adam)."""
    start = time.perf_counter()
    result = task.batch_loss(task.model, batch, None)
    loss = result.loss_sum / result.count + result.penalty
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="IMDB train.jsonl.gz")
    parser.add_argument("--batches", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(1)
    tasks = {joint: build(args.data, joint) for joint in JOINTS}
    optimizers = {joint: torch.optim.Adam(task.model.parameters(), 2e-3) for joint, task in tasks.items()}
    batches = tasks["none"].train_data
    seconds = dict.fromkeys(JOINTS, 0.0)
    plan = batches.plan(0)[: args.batches]
    for i, spec in enumerate(plan):
        batch = batches.batch(spec)
        for joint in JOINTS[i % 3:] + JOINTS[: i % 3]:
            seconds[joint] += step(tasks[joint], optimizers[joint], batch)
    for joint in JOINTS:
        print(f"{joint:12s} {sum(map(len, plan)) / seconds[joint]:7.1f} examples/s  "
              f"{seconds[joint] / len(plan) * 1000:7.1f} ms/step  x{seconds[joint] / seconds['none']:.2f} of none")


if __name__ == "__main__":
    main()

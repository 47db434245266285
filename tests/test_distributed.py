"""Data-parallel training: 2 CPU processes (gloo, launched by torchrun) match 1 process with the same
global batch."""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

SETTINGS = ["model.embedding_size=16", "model.hidden_size=16", "model.layers=2", "train.batch_size=4",
            "train.bptt=8", "train.epochs=2", "train.progress=false", "train.optimizer=sgd", "train.lr=0.5",
            "train.clip=1.0", "data.valid_fraction=0.1", "tokenizer.kind=word", "train.eval_every=10"]


def _text(path: Path) -> Path:
    rng = random.Random(0)
    words = "the cat sat on a mat and the dog ran to the park while birds sang in trees".split()
    lines = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(60)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _train(out: Path, data: Path, nproc: int, extra: list[str]) -> None:
    sets = [a for s in SETTINGS + extra for a in ("--set", s)]
    args = ["-m", "rnnkit", "train", "lm", "--data", str(data), "--out", str(out), "--device", "cpu", *sets]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *args]
    else:
        cmd = [sys.executable, *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("mode", ["stream", "sentences"])
def test_two_processes_match_one(tmp_path: Path, mode: str) -> None:
    data = _text(tmp_path / "text.txt")
    extra = [f"data.mode={mode}"]
    _train(tmp_path / "one", data, 1, extra)
    _train(tmp_path / "two", data, 2, extra)
    one = load_file(tmp_path / "one" / "checkpoint" / "last.safetensors")
    two = load_file(tmp_path / "two" / "checkpoint" / "last.safetensors")
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-5, msg=name)
    # the runs really trained: validation loss went down from the first evaluation to the last
    rows = list(csv.DictReader((tmp_path / "two" / "log.csv").open()))
    valid = [float(r["loss"]) for r in rows if r["split"] == "valid"]
    assert len(valid) >= 2 and valid[-1] < valid[0]
    # only rank 0 wrote the model directory, and it is complete
    for name in ("config.yaml", "vocab.json", "tokenizer.json", "model.safetensors", "log.csv", "results.json"):
        assert (tmp_path / "two" / name).is_file(), name

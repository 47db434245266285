"""Scoring a classifier's validation set: collated once for the whole training run, the same
probabilities as scoring it afresh."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rnnkit.config import load_config
from rnnkit.data import labelled
from rnnkit.distributed import DistInfo
from rnnkit.tasks.classify import ClassifyTask, predict, scores
from test_classify import CLS, order_texts, write_jsonl


@pytest.fixture
def task(tmp_path: Path) -> ClassifyTask:
    train = write_jsonl(tmp_path / "train.jsonl", order_texts(60, 1))
    valid = write_jsonl(tmp_path / "valid.jsonl", order_texts(50, 2))
    cfg = load_config(None, [*CLS, f"data.train={train}", f"data.valid={valid}", "train.eval_batch_size=16"],
                      {"task": "classify"})
    return ClassifyTask(cfg, DistInfo(), torch.device("cpu"))


def test_validation_collates_its_batches_once(task: ClassifyTask, monkeypatch) -> None:
    collated = []
    real = labelled.collate
    monkeypatch.setattr(labelled, "collate", lambda data, indices: collated.append(indices) or real(data, indices))
    first = task.validate(task.model)
    assert sorted(i for batch in collated for i in batch) == list(range(50))  # 4 batches of <= 16
    with torch.no_grad():
        for p in task.model.parameters():
            p.add_(0.1)
    second = task.validate(task.model)
    assert len(collated) == 4  # none collated again
    assert second != first  # the cached batches are scored by the model as it is now
    fresh = predict(task.model, task.valid_set, 16, torch.device("cpu"))
    assert second == scores(fresh, task.valid_set.labels, task.reader.labels)[0]

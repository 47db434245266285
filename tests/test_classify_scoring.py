"""Collating a classifier's batches: text batches gathered from one padded table (or, for very uneven
lengths, copied row by row) alike; the validation set collated once for the whole training run, the same
probabilities as scoring it afresh."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rnnkit.config import load_config
from rnnkit.data import labelled
from rnnkit.data.labelled import Encoded, collate
from rnnkit.data.vocab import Vocab
from rnnkit.distributed import DistInfo
from rnnkit.tasks.classify import ClassifyTask, predict, scores
from test_classify import CLS, order_texts, write_jsonl


def test_a_text_batch_from_the_padded_table_equals_one_from_the_rows() -> None:
    ids = [[5, 6, 7], [8], [9, 10], [], [11, 12, 13]]
    table = Encoded([len(s) for s in ids], [0, 1, 0, 1, 0], ids=ids)
    assert table.id_table is not None
    rows = Encoded(table.lengths, table.labels, ids=ids)
    rows.__dict__["id_table"] = None  # what very uneven lengths get
    pad = Vocab.pad_id
    batch = collate(table, [0, 1, 2])
    assert batch.inputs.tolist() == [[5, 8, 9], [6, pad, 10], [7, pad, pad]]
    assert batch.lengths.tolist() == [3, 1, 2] and batch.labels.tolist() == [0, 1, 0]
    for indices in ([0, 1, 2], [3], [3, 1], [4, 0, 3, 2]):
        a, b = collate(table, indices), collate(rows, indices)
        assert all(torch.equal(getattr(a, k), getattr(b, k)) for k in ("inputs", "lengths", "labels")), indices
    uneven = [[4] * 100, [4], [4], [4]]  # a table would be 400 ids for 103
    assert Encoded([len(s) for s in uneven], None, ids=uneven).id_table is None


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

"""train.cpu_amp: bf16 autocast of the training forward on CPU. Every task trains under it with fp32 weights, a
classifier learns as it does in fp32 (numbers close, not equal), a run resumes exactly with it on, and a CPU
without native bf16 gets one warning."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import rnnkit
from conftest import TINY, corpus_lines, read_log, write_lines
from rnnkit.errors import RnnkitError

pytestmark = pytest.mark.usefixtures("no_curves")

trainer = importlib.import_module("rnnkit.train")  # the module (rnnkit.train is the API function)

AMP = "train.cpu_amp=true"
# a classifier of "does x come before y?" (tests/test_classify.py's task): only an order-aware model learns it
CLS = ["model.embedding_size=8", "model.hidden_size=16", "train.lr=0.02", "train.batch_size=32", "train.epochs=3",
       "train.progress=false", "train.device=cpu", "train.log_every=4", "train.seed=5", "train.eval_batch_size=64"]


def order_records(n: int, seed: int) -> list[dict]:
    from test_classify import order_texts

    return order_texts(n, seed)


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def order_data(tmp_path: Path) -> dict[str, str]:
    return {"data": str(write_jsonl(tmp_path / "data" / "train.jsonl", order_records(600, 1))),
            "valid": str(write_jsonl(tmp_path / "data" / "valid.jsonl", order_records(150, 2)))}


def losses(out: Path, split: str) -> list[float]:
    return [float(r["loss"]) for r in read_log(out) if r["split"] == split]


def test_a_classifier_learns_under_cpu_amp_as_in_fp32(tmp_path: Path, order_data) -> None:
    fp32 = rnnkit.train("classify", out=tmp_path / "fp32", overrides=CLS, **order_data)
    bf16 = rnnkit.train("classify", out=tmp_path / "bf16", overrides=[*CLS, AMP], **order_data)
    assert fp32.results["valid"]["accuracy"] > 0.9 and bf16.results["valid"]["accuracy"] > 0.9
    assert abs(bf16.results["valid"]["accuracy"] - fp32.results["valid"]["accuracy"]) <= 0.05
    ours, theirs = losses(tmp_path / "bf16", "train"), losses(tmp_path / "fp32", "train")
    assert ours != theirs  # the forward did run in bf16 ...
    assert ours[0] == pytest.approx(theirs[0], rel=0.02)  # ... on the same start, within bf16's rounding
    weights = load_file(tmp_path / "bf16" / "model.safetensors")
    assert {w.dtype for w in weights.values()} == {torch.float32}


def test_validation_runs_in_fp32_under_cpu_amp(tmp_path: Path, order_data) -> None:
    model = rnnkit.train("classify", out=tmp_path / "m", overrides=[*CLS, AMP, "train.epochs=1"], **order_data)
    assert rnnkit.load(tmp_path / "m").evaluate(order_data["valid"])["loss"] == pytest.approx(
        model.results["valid"]["loss"], rel=1e-6)


def test_a_run_with_cpu_amp_resumes_exactly(tmp_path: Path, order_data) -> None:
    rnnkit.train("classify", out=tmp_path / "whole", overrides=[*CLS, AMP, "train.epochs=2"], **order_data)
    rnnkit.train("classify", out=tmp_path / "cut", overrides=[*CLS, AMP, "train.epochs=1"], **order_data)
    with pytest.raises(RnnkitError, match="train.cpu_amp"):  # what is trained, not how fast: it stays
        rnnkit.train("classify", out=tmp_path / "cut", overrides=["train.epochs=2", "train.cpu_amp=false"],
                     resume=True)
    rnnkit.train("classify", out=tmp_path / "cut", overrides=["train.epochs=2"], resume=True)
    for name in ("model.safetensors", "checkpoint/last.safetensors"):
        whole, cut = (load_file(tmp_path / d / name) for d in ("whole", "cut"))
        assert all(torch.equal(whole[k], cut[k]) for k in whole)
    assert losses(tmp_path / "whole", "train") == losses(tmp_path / "cut", "train")


def tiny_run(task: str, tmp_path: Path, cell: str = "gru") -> tuple[str, dict, list[str]]:
    """(task, data keywords, overrides) of a run of a few seconds at most; ``cell``: the seq2seq model's and the
    classifier's encoder (an LSTM one runs padded batches in length segments, see the LSTM case below)."""
    text = write_lines(tmp_path / "text.txt", corpus_lines(40, seed=0))
    if task == "lm":
        return "lm", {"data": str(text)}, [*TINY, "train.epochs=1"]
    if task == "seq2seq":
        lstm = ["model.bidirectional=true", "model.bridge=learned"] if cell == "lstm" else []
        return "seq2seq", {}, ["data.toy=reverse", "data.toy_size=200", f"model.cell={cell}", "model.hidden_size=16",
                               "model.src_embedding_size=8", "model.trg_embedding_size=8", "train.epochs=1",
                               "train.batch_size=32", "train.progress=false", "train.device=cpu", "train.log_every=1",
                               *lstm]
    small = ["model.embedding_size=8", "model.hidden_size=16", "train.epochs=1", "train.batch_size=16",
             "train.log_every=1", "train.progress=false", "train.device=cpu"]
    if task == "autoencoder":
        records = [{"text": t} for t in corpus_lines(60, 3)]
        return "autoencoder", {"data": str(write_jsonl(tmp_path / "unsup.jsonl", records))}, \
            [*small, "data.valid_fraction=0.1"]
    return "classify", {"data": str(write_jsonl(tmp_path / "labelled.jsonl", order_records(100, 1)))}, \
        [*small, "data.valid_fraction=0.1", f"model.encoder={cell}", "model.pooling=attention"]


@pytest.mark.parametrize("task", ["lm", "seq2seq", "autoencoder", "classify"])
def test_every_task_trains_under_cpu_amp_with_fp32_weights(tmp_path: Path, task: str) -> None:
    name, data, overrides = tiny_run(task, tmp_path)
    rnnkit.train(name, out=tmp_path / "m", overrides=[*overrides, AMP], **data)
    assert_trained_with_fp32_weights(tmp_path / "m")


def assert_trained_with_fp32_weights(out: Path) -> None:
    train_losses = losses(out, "train")
    assert train_losses and all(loss == loss and loss < 1e4 for loss in train_losses)  # finite, trained
    weights = load_file(out / "model.safetensors")
    assert {w.dtype for w in weights.values()} == {torch.float32}


@pytest.mark.parametrize("task", ["seq2seq", "classify"])
def test_an_lstm_encoder_in_length_segments_trains_under_cpu_amp_and_validates_in_fp32(tmp_path: Path, task: str,
                                                                                       stack_calls) -> None:
    """Under autocast the segments compute in bf16 on oneDNN, yet their outputs and final states come back in the
    embeddings' dtype (fp32), as packed batches' do, whichever kernels ran; validation runs in fp32."""
    name, data, overrides = tiny_run(task, tmp_path, cell="lstm")
    rnnkit.train(name, out=tmp_path / "m", overrides=[*overrides, AMP], **data)
    assert_trained_with_fp32_weights(tmp_path / "m")
    training = [call for call in stack_calls if call.grad]
    assert any(call.path == "segments" for call in training)
    assert {(call.dtype, call.state_dtype) for call in training} == {(torch.float32,) * 2}
    validation = [call for call in stack_calls if not call.grad]
    assert validation and {(call.dtype, call.state_dtype) for call in validation} == {(torch.float32,) * 2}
    assert losses(tmp_path / "m", "valid")


@pytest.mark.parametrize("native", [True, False])
def test_emulated_bf16_is_said_once(tmp_path: Path, order_data, monkeypatch, capsys, native: bool) -> None:
    monkeypatch.setattr(trainer, "cpu_has_native_bf16", lambda: native)
    rnnkit.train("classify", out=tmp_path / "m", overrides=[*CLS, AMP, "train.epochs=2"], **order_data)
    assert capsys.readouterr().err.count("no native bf16") == (0 if native else 1)


def test_without_cpu_amp_nothing_is_checked_or_said(tmp_path: Path, order_data, monkeypatch, capsys) -> None:
    def refuse() -> bool:
        raise AssertionError("checked without train.cpu_amp")

    monkeypatch.setattr(trainer, "cpu_has_native_bf16", refuse)
    rnnkit.train("classify", out=tmp_path / "m", overrides=[*CLS, "train.epochs=1"], **order_data)
    assert "bf16" not in capsys.readouterr().err

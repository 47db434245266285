"""Training with the reference (``rnnkit train lm --backend numpy``) and running a model on either backend."""

from __future__ import annotations

import csv
import json
import math
import os
import random
import signal

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

import rnnkit
import rnnkit.reference.train as ref_train
from rnnkit.cli import main
from rnnkit.errors import RnnkitError
from rnnkit.reference.backend import load_numpy
from rnnkit.reference.train import train_numpy

# A small sentence model: seed 001's recipe, shrunk (hidden 16), one sentence per step as in the seed, with a
# learning rate that moves it (every training key the tests rely on is pinned, whatever the recipe says).
SMALL = ["model.hidden_size=16", "model.embedding_size=16", "train.lr=0.5", "train.bptt=4", "train.batch_size=1",
         "train.clip=0", "train.eval_batch_size=8", "train.schedule=halve_on_increase", "train.progress=false",
         "data.valid_fraction=0.2", "train.epochs=3"]


def _sets(overrides: list[str]) -> list[str]:
    return [a for kv in overrides for a in ("--set", kv)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """60 short made-up sentences (vocabulary of about 30 words)."""
    rng = random.Random(0)
    subj = ["the cat", "a dog", "the old man", "my sister", "the mouse", "a bird"]
    verb = ["sees", "likes", "chases", "finds", "hears", "watches"]
    obj = ["the ball", "a fish", "the red house", "some cheese", "the tree", "a small boat"]
    lines = [f"{rng.choice(subj)} {rng.choice(verb)} {rng.choice(obj)} ." for _ in range(60)]
    path = tmp_path_factory.mktemp("data") / "tiny.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def numpy_dir(corpus, tmp_path_factory):
    """A model directory trained by the numpy backend through the CLI, and what the CLI printed."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("runs") / "numpy"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["train", "lm", "--backend", "numpy", "--recipe", "seed-001", "--data", str(corpus),
                   "--out", str(out), *_sets(SMALL)])
    assert rc == 0
    return out, buf.getvalue()


def _rows(model_dir) -> list[dict]:
    with open(model_dir / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_numpy_training_writes_a_complete_model_dir(numpy_dir):
    out, printed = numpy_dir
    for name in ("config.yaml", "tokenizer.json", "vocab.json", "model.safetensors", "log.csv", "curves.png",
                 "results.json", "checkpoint/last.safetensors", "checkpoint/trainer_state.pt"):
        assert (out / name).is_file(), name
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left
    results = json.loads((out / "results.json").read_text())
    assert results["trained_by"]["backend"] == "numpy" and results["trained_by"]["bptt_truncate"] == 4
    assert set(results["valid"]) == {"loss", "ppl", "tokens"}
    # the torch LM's keys and dtype
    weights = load_file(out / "model.safetensors")
    assert set(weights) == {"embedding.weight", "rnns.0.weight_ih_l0", "rnns.0.weight_hh_l0", "rnns.0.bias_ih_l0",
                            "rnns.0.bias_hh_l0", "output.weight", "output.bias"}
    assert all(w.dtype == np.float32 for w in weights.values())
    assert "valid: loss" in printed and "model saved in" in printed


def test_initial_loss_is_about_ln_vocab_and_training_lowers_it(numpy_dir):
    out, printed = numpy_dir
    vocab_size = len(json.loads((out / "vocab.json").read_text()))
    trained_by = json.loads((out / "results.json").read_text())["trained_by"]
    assert trained_by["ln_vocab"] == pytest.approx(math.log(vocab_size))
    assert abs(trained_by["initial_loss"] - math.log(vocab_size)) < 0.05  # untrained: near-uniform predictions
    assert f"ln V = ln {vocab_size} = {math.log(vocab_size):.4f}" in printed
    valid = [float(r["loss"]) for r in _rows(out) if r["split"] == "valid"]
    assert len(valid) == 4  # before training, then once per epoch
    assert valid[0] == pytest.approx(trained_by["initial_loss"], abs=1e-5)
    assert valid[-1] < valid[0] - 1.0 and valid == sorted(valid, reverse=True)


def test_numpy_trained_model_generates_with_torch(numpy_dir, capsys):
    out, _ = numpy_dir
    args = ["generate", str(out), "--sentence", "--min-length", "7", "--seed", "3", "--num-samples", "3"]
    assert main(args) == 0
    torch_text = capsys.readouterr().out.splitlines()
    assert len(torch_text) == 3
    for line in torch_text:
        assert len(line.split()) >= 7 and "<unk>" not in line
    assert main([*args, "--backend", "numpy"]) == 0  # the same samples from the NumPy model
    assert capsys.readouterr().out.splitlines() == torch_text


def _evaluate(model_dir, data, backend: str, capsys) -> dict:
    assert main(["evaluate", str(model_dir), "--data", str(data), "--backend", backend]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_numpy_trained_model_scores_the_same_in_torch(numpy_dir, corpus, capsys):
    out, _ = numpy_dir
    by_torch, by_numpy = _evaluate(out, corpus, "torch", capsys), _evaluate(out, corpus, "numpy", capsys)
    assert by_numpy["backend"] == "numpy" and by_numpy["tokens"] == by_torch["tokens"]
    assert by_numpy["ppl"] == pytest.approx(by_torch["ppl"], rel=1e-5)
    assert by_numpy["ppl"] < 10  # it learned something (a uniform model would score about 30)


@pytest.mark.parametrize("overrides", [
    [],  # seed 001's vanilla RNN on sentences
    ["data.mode=stream", "model.cell=lstm", "model.layers=2", "model.tie_weights=true", "train.batch_size=4",
     "train.bptt=6", "train.eval_batch_size=3"],  # carried state, two layers, tied weights stored once
], ids=["rnn-sentences", "lstm-stream-tied"])
def test_torch_trained_model_scores_the_same_in_numpy(corpus, tmp_path, capsys, overrides):
    lm = rnnkit.train("lm", recipe="seed-001", data=str(corpus), out=tmp_path / "torch", device="cpu",
                      overrides=[*SMALL, "train.epochs=1", *overrides])
    by_torch = _evaluate(tmp_path / "torch", corpus, "torch", capsys)
    by_numpy = _evaluate(tmp_path / "torch", corpus, "numpy", capsys)
    assert by_numpy["ppl"] == pytest.approx(by_torch["ppl"], rel=1e-5)
    assert by_numpy["tokens"] == by_torch["tokens"]
    numpy_lm = load_numpy(tmp_path / "torch")  # the held-out score too, through the Python API
    assert numpy_lm.evaluate(corpus)["loss"] == pytest.approx(lm.evaluate(corpus)["loss"], rel=1e-5)


@pytest.mark.parametrize("overrides", [[], ["train.layer_lr_decay=2.6"]], ids=["one-rate", "discriminative"])
def test_same_start_same_steps_as_torch(corpus, tmp_path, overrides):
    """Full BPTT (train.bptt beyond the sentence length): both backends take the same SGD steps, here on
    padded batches of 4 sentences with gradient-norm clipping; with train.layer_lr_decay each parameter group
    at its share of the rate (output, recurrent layer, embedding)."""
    same = [*SMALL, "train.bptt=100", "train.max_steps=12", "train.batch_size=4", "train.clip=0.5", *overrides]
    by_torch = rnnkit.train("lm", recipe="seed-001", data=str(corpus), out=tmp_path / "t", device="cpu",
                            overrides=same)
    by_numpy = train_numpy("seed-001", str(corpus), tmp_path / "n", same)
    a, b = load_file(tmp_path / "t" / "model.safetensors"), load_file(tmp_path / "n" / "model.safetensors")
    assert set(a) == set(b)
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=0, atol=1e-6, err_msg=name)
    assert by_numpy.results["valid"]["loss"] == pytest.approx(by_torch.results["valid"]["loss"], rel=1e-5)


def test_resume_after_interrupt_is_exact(corpus, tmp_path, monkeypatch):
    overrides = [*SMALL, "train.eval_every=20"]
    straight = train_numpy("seed-001", str(corpus), tmp_path / "a", overrides)

    original = ref_train.NumpyTrainer._train_step

    def interrupted_step(self, batch, lr):  # Ctrl-C in the middle of epoch 1, between two checkpoints
        result = original(self, batch, lr)
        if self.step == 31:
            os.kill(os.getpid(), signal.SIGINT)
        return result

    monkeypatch.setattr(ref_train.NumpyTrainer, "_train_step", interrupted_step)
    with pytest.raises(KeyboardInterrupt):
        train_numpy("seed-001", str(corpus), tmp_path / "b", overrides)
    state = torch.load(tmp_path / "b" / "checkpoint" / "trainer_state.pt", weights_only=True)
    assert state["step"] == 32 and state["backend"] == "numpy"
    monkeypatch.setattr(ref_train.NumpyTrainer, "_train_step", original)
    resumed = train_numpy(out=tmp_path / "b", resume=True)
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert resumed.results == straight.results

    def strip(rows):
        return [{k: v for k, v in r.items() if k != "elapsed_sec"} for r in rows]

    assert strip(_rows(tmp_path / "a")) == strip(_rows(tmp_path / "b"))


def test_clear_errors(corpus, tmp_path, capsys):
    with pytest.raises(RnnkitError, match="does not implement model.dropout"):
        train_numpy("seed-001", str(corpus), tmp_path / "x", [*SMALL, "model.dropout=0.2"])
    with pytest.raises(RnnkitError, match="plain SGD"):
        train_numpy("seed-001", str(corpus), tmp_path / "x", [*SMALL, "train.optimizer=adam"])
    with pytest.raises(RnnkitError, match="nothing to resume"):
        train_numpy(out=tmp_path / "x", resume=True)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file").write_text("x")
    with pytest.raises(RnnkitError, match="not empty"):
        train_numpy("seed-001", str(corpus), tmp_path / "full", SMALL)
    rnnkit.train("lm", recipe="seed-001", data=str(corpus), out=tmp_path / "t", device="cpu",
                 overrides=[*SMALL, "train.max_steps=2"])
    with pytest.raises(RnnkitError, match="torch backend"):
        train_numpy(out=tmp_path / "t", resume=True)
    assert main(["train", "lm", "--backend", "numpy", "--out", str(tmp_path / "y"), "--init-from",
                 str(tmp_path / "t")]) == 2
    assert "--init-from is not supported" in capsys.readouterr().err

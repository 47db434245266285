"""The trainer: learning, optimizers, schedules, clipping, early stopping, NT-ASGD, exact resume,
interruption, --init-from, the model directory, and the demo learning test."""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file

import rnnkit
from conftest import DEMO_CONTINUATION, DEMO_PROMPT, FABLE, TINY, corpus_lines, read_log, signal_on_call, write_lines
from rnnkit.api import RESUMABLE_KEYS
from rnnkit.checkpoint import has_checkpoint
from rnnkit.config import TrainConfig, load_config
from rnnkit.distributed import DistInfo
from rnnkit.errors import RnnkitError
from rnnkit.tasks.lm import LMTask
from rnnkit.train import (
    LOG_FIELDS,
    LRSchedule,
    Trainer,
    fusable,
    make_optimizer,
    seed_everything,
    set_optimizer_keys,
)

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("no_curves")


def make_trainer(out: Path, data: Path, *overrides: str) -> Trainer:
    """A Trainer over a tiny LM, built the way ``rnnkit.train`` builds it, without the model-dir files."""
    cfg = load_config(None, [*TINY, *overrides], {"data": {"train": str(data)}})
    seed_everything(cfg.train.seed)
    task = LMTask(cfg, DistInfo(), CPU)
    seed_everything(cfg.train.seed)
    out.mkdir(parents=True, exist_ok=True)
    return Trainer(task, cfg.train, out, CPU)


def script_validation(trainer: Trainer, losses: list[float], seen: list | None = None) -> None:
    """Replace validation by a fixed sequence of losses (repeating the last one)."""
    it = itertools.chain(losses, itertools.repeat(losses[-1]))

    def validate(model):
        if seen is not None:
            seen.append({n: p.detach().clone() for n, p in model.named_parameters()})
        loss = next(it)
        return {"loss": loss, "ppl": math.exp(loss)}

    trainer.task.validate = validate


def train_rows(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["split"] == "train"]


def comparable(rows: list[dict]) -> list[tuple]:
    """Log rows without the timing columns."""
    return [(int(r["step"]), int(r["epoch"]), r["split"], float(r["loss"]), float(r["lr"])) for r in rows]


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(path)


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


# ----------------------------------------------------------------------------------------------------
# learning and the model directory


@pytest.mark.curves
def test_loss_decreases_and_model_dir_is_complete(train_tiny, valid_corpus: Path) -> None:
    out = train_tiny("model", "train.epochs=4", "train.eval_every=13", valid=str(valid_corpus))
    rows = read_log(out)
    train = [float(r["loss"]) for r in train_rows(rows)]
    valid = [float(r["loss"]) for r in rows if r["split"] == "valid"]
    assert len(train) == int(rows[-1]["step"]) >= 40  # log_every=1: one row per update
    assert sum(train[-5:]) / 5 < sum(train[:5]) / 5 - 0.8  # well below the start (about ln 24 = 3.2)
    vocab_size = len(json.loads((out / "vocab.json").read_text(encoding="utf-8")))
    assert valid[-1] < valid[0] - 0.2 and valid[-1] < math.log(vocab_size) - 0.6  # chance is ln |V|
    for name in ("config.yaml", "tokenizer.json", "vocab.json", "model.safetensors", "log.csv", "curves.png",
                 "results.json", "checkpoint/last.safetensors", "checkpoint/trainer_state.pt",
                 "checkpoint/rng_rank0.pt"):
        assert (out / name).is_file(), name
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(rows[0])[: len(LOG_FIELDS)] == LOG_FIELDS
    leftovers = [p.name for p in out.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]
    assert leftovers == []  # every temporary file was renamed into place
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["valid"]["loss"] == pytest.approx(min(valid), abs=1e-5)  # scored with the best weights


def test_loaded_model_evaluates_to_the_training_perplexity(train_tiny, valid_corpus: Path) -> None:
    out = train_tiny("model", "train.eval_every=5", valid=str(valid_corpus))
    rows = [r for r in read_log(out) if r["split"] == "valid"]
    best = min(rows, key=lambda r: float(r["loss"]))
    lm = rnnkit.load(out, device="cpu")
    metrics = lm.evaluate(valid_corpus)
    assert metrics["ppl"] == pytest.approx(float(best["ppl"]), rel=1e-5)
    assert metrics["loss"] == pytest.approx(float(best["loss"]), abs=1e-5)
    assert metrics["tokens"] == float(best["tokens"])
    with safe_open(str(out / "model.safetensors"), "pt") as f:  # model.safetensors is the best step's
        assert f.metadata()["step"] == best["step"]


def test_save_load_round_trip_gives_identical_logits(tmp_path: Path, corpus: Path) -> None:
    trainer = make_trainer(tmp_path / "m", corpus, "train.max_steps=6", "train.eval_every=6")
    trainer.fit()
    valid = [r for r in trainer.rows if r["split"] == "valid"]
    assert len(valid) == 1  # the final weights are the best (only) validated ones
    lm = rnnkit.load(_complete_dir(trainer), device="cpu")
    x = torch.randint(4, len(lm.vocab), (9, 3), generator=torch.Generator().manual_seed(0))
    trainer.model.eval()
    assert torch.equal(lm.model(x).logits, trainer.model(x).logits)
    for (name, a), b in zip(lm.model.state_dict().items(), trainer.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def _complete_dir(trainer: Trainer) -> Path:
    """Add the files ``rnnkit.train`` writes before training to a bare Trainer's folder."""
    from rnnkit.config import Config, save_config

    task, out = trainer.task, trainer.out_dir
    save_config(Config(data=task.cfg.data, tokenizer=task.cfg.tokenizer, model=task.cfg.model, train=task.cfg.train),
                out / "config.yaml")
    task.tokenizer.save(out)
    task.vocab.save(out / "vocab.json")
    return out


# ----------------------------------------------------------------------------------------------------
# optimizers, schedules, clipping


OPTIMIZER_STATE = {"sgd": "momentum_buffer", "adam": "exp_avg", "adamw": "exp_avg", "rmsprop": "square_avg",
                   "asgd": "ax"}


@pytest.mark.parametrize("name", list(OPTIMIZER_STATE))
def test_each_optimizer_trains(tmp_path: Path, corpus: Path, name: str) -> None:
    lr = {"sgd": 1.0, "asgd": 1.0}.get(name, 0.01)
    trainer = make_trainer(tmp_path / name, corpus, f"train.optimizer={name}", f"train.lr={lr}",
                           "train.momentum=0.5" if name == "sgd" else "train.momentum=0.0",
                           "train.epochs=3", "train.clip=5")
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.fit()
    assert type(trainer.optimizer).__name__.lower() == name
    state = trainer.optimizer.state[trainer.model.output.bias]
    assert OPTIMIZER_STATE[name] in state  # the optimizer's own statistics exist: it really ran
    assert all(not torch.equal(before[n], p) for n, p in trainer.model.named_parameters())
    train = [r["loss"] for r in train_rows(trainer.rows)]
    assert sum(train[-5:]) / 5 < sum(train[:5]) / 5 - 0.3, train  # each one learns


def test_unknown_optimizer_and_schedule(tmp_path: Path, corpus: Path) -> None:
    with pytest.raises(RnnkitError, match="unknown optimizer 'lbfgs'"):
        make_trainer(tmp_path / "a", corpus, "train.optimizer=lbfgs")
    with pytest.raises(RnnkitError, match="unknown schedule 'cosine'"):
        LRSchedule(TrainConfig(schedule="cosine"))


def test_schedule_none_keeps_lr() -> None:
    s = LRSchedule(TrainConfig(lr=0.3))
    assert [s.on_epoch_start(e) for e in range(5)] == [0.3] * 5
    assert [s.on_validation(v) for v in (3, 4, 5, 6)] == [0.3] * 4


def test_schedule_halve_on_increase() -> None:
    s = LRSchedule(TrainConfig(lr=1.0, schedule="halve_on_increase", lr_decay=0.5, min_lr=0.2))
    lrs = [s.on_validation(v) for v in (5.0, 4.0, 4.5, 4.2, 4.3, 4.4, 4.5)]
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.2, 0.2]  # halved on every rise, never below min_lr
    assert s.on_epoch_start(9) == 0.2  # epochs alone do not change it


def test_schedule_plateau() -> None:
    s = LRSchedule(TrainConfig(lr=1.0, schedule="plateau", lr_decay=0.1, patience=1))
    lrs = [s.on_validation(v) for v in (5.0, 4.0, 4.5, 4.6, 3.0, 3.5, 2.0, 2.5, 2.6, 2.7)]
    assert lrs == pytest.approx([1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01])
    s0 = LRSchedule(TrainConfig(lr=1.0, schedule="plateau", lr_decay=0.5, patience=0))
    assert [s0.on_validation(v) for v in (2.0, 2.0, 1.0, 1.5)] == [1.0, 0.5, 0.5, 0.25]  # a tie is no gain


def test_schedule_step_follows_zaremba() -> None:
    s = LRSchedule(TrainConfig(lr=1.0, schedule="step", lr_decay=0.5, decay_start=4))
    assert [s.on_epoch_start(e) for e in range(7)] == [1.0, 1.0, 1.0, 1.0, 0.5, 0.25, 0.125]
    assert s.on_validation(100.0) == 0.125  # validation does not move it


def test_schedule_step_stops_at_min_lr() -> None:
    s = LRSchedule(TrainConfig(lr=1.0, schedule="step", lr_decay=0.1, decay_start=0, min_lr=0.05))
    assert [s.on_epoch_start(e) for e in range(4)] == pytest.approx([0.1, 0.05, 0.05, 0.05])


def test_schedule_state_round_trip() -> None:
    cfg = TrainConfig(lr=1.0, schedule="plateau", lr_decay=0.5, patience=2)
    a = LRSchedule(cfg)
    for v in (3.0, 2.0, 2.5, 2.6):
        a.on_validation(v)
    b = LRSchedule(cfg)
    b.load_state_dict(a.state_dict())
    assert [a.on_validation(2.7), a.on_validation(2.8)] == [b.on_validation(2.7), b.on_validation(2.8)]
    assert a.lr == 0.5


@pytest.mark.parametrize("schedule", ["none", "halve_on_increase", "plateau", "step"])
def test_trainer_applies_the_schedule(tmp_path: Path, corpus: Path, schedule: str) -> None:
    """Every update uses the lr the schedule gives after the validations and epochs before it."""
    trainer = make_trainer(tmp_path / schedule, corpus, "train.optimizer=sgd", "train.lr=0.5",
                           f"train.schedule={schedule}", "train.lr_decay=0.5", "train.decay_start=1",
                           "train.patience=0", "train.eval_every=3", "train.epochs=2")
    script_validation(trainer, [3.0, 2.9, 3.1, 2.8, 2.85, 2.9, 2.7, 2.75, 2.8, 2.9])
    seen_lrs = []
    step_fn = trainer._train_step
    trainer._train_step = lambda batch, lr: (seen_lrs.append(lr), step_fn(batch, lr))[1]
    trainer.fit()
    replay, epoch, expected = LRSchedule(trainer.cfg), 0, []
    for row in trainer.rows:
        if row["split"] == "train":
            if row["epoch"] != epoch:
                epoch = row["epoch"]
                replay.on_epoch_start(epoch - 1)
            expected.append(replay.lr)
        else:
            assert row["lr"] == replay.lr  # a valid row logs the lr in force when it was scored
            replay.on_validation(row["loss"])
    assert [r["lr"] for r in train_rows(trainer.rows)] == expected == pytest.approx(seen_lrs)
    # the optimizer really used it
    assert trainer.optimizer.param_groups[0]["lr"] == expected[-1]
    assert (len(set(expected)) == 1) == (schedule == "none")


def _update_norm(trainer: Trainer) -> tuple[float, torch.Tensor]:
    params = list(trainer.model.parameters())
    before = [p.detach().clone() for p in params]
    batch = trainer.task.train_data.batch(trainer.task.train_data.plan(0)[0])
    trainer._train_step(batch, 1.0)
    delta = torch.cat([(p.detach() - b).flatten() for p, b in zip(params, before, strict=True)])
    return float(delta.norm()), delta


def test_gradient_clipping_bounds_the_update(tmp_path: Path, corpus: Path) -> None:
    free_norm, free = _update_norm(make_trainer(tmp_path / "a", corpus, "train.optimizer=sgd"))
    assert free_norm > 0.05
    clipped_norm, clipped = _update_norm(make_trainer(tmp_path / "b", corpus, "train.optimizer=sgd",
                                                      "train.clip=0.01"))
    assert clipped_norm == pytest.approx(0.01, rel=1e-3)  # SGD, lr 1: the update is the clipped gradient
    cosine = torch.dot(free, clipped) / (free.norm() * clipped.norm())
    assert float(cosine) == pytest.approx(1.0, abs=1e-4)  # same direction, only shorter
    loose_norm, _ = _update_norm(make_trainer(tmp_path / "c", corpus, "train.optimizer=sgd", "train.clip=1e6"))
    assert loose_norm == pytest.approx(free_norm, rel=1e-5)


# ----------------------------------------------------------------------------------------------------
# stopping rules


def test_max_steps_stops_mid_epoch(tmp_path: Path, corpus: Path) -> None:
    trainer = make_trainer(tmp_path / "m", corpus, "train.max_steps=7", "train.epochs=50")
    trainer.fit()
    assert trainer.step == 7 and trainer.epoch == 0 and trainer.batch_index == 7
    assert [r["step"] for r in train_rows(trainer.rows)] == list(range(1, 8))
    assert trainer.rows[-1]["split"] == "valid" and trainer.rows[-1]["step"] == 7  # a run ends validated


def test_early_stopping_stops_and_stays_stopped(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "m"
    trainer = make_trainer(out, corpus, "train.eval_every=2", "train.early_stop=2", "train.epochs=50")
    script_validation(trainer, [3.0, 2.5, 2.6, 2.55, 2.4])
    trainer.fit()
    assert trainer.step == 8  # best at step 4, then two evaluations without a gain
    assert [r["loss"] for r in trainer.rows if r["split"] == "valid"] == [3.0, 2.5, 2.6, 2.55]
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert f.metadata()["step"] == "4"  # the best weights are the ones kept
    again = make_trainer(out, corpus, "train.eval_every=2", "train.early_stop=2", "train.epochs=50")
    again.resume()
    again.fit()
    assert again.step == 8  # resuming a stopped run does not train further


def test_nt_asgd_switches_and_validates_averaged_weights(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "m"
    trainer = make_trainer(out, corpus, "train.optimizer=sgd", "train.lr=0.5", "train.nt_asgd=2",
                           "train.eval_every=2", "train.epochs=2")
    seen: list[dict] = []
    script_validation(trainer, [5.0, 4.0, 4.5, 4.6, 4.7, 4.8, 4.9, 5.0], seen)
    trainer.fit()
    assert trainer.optimizer_name == "asgd" and isinstance(trainer.optimizer, torch.optim.ASGD)
    # switched at the 4th validation (step 8): 4.6 > min of all but the last 2 (4.0), as in AWD-LSTM
    assert trainer.optimizer.state[trainer.model.output.bias]["step"] == trainer.step - 8
    # later validations scored the average, and training carried on with the raw weights
    ax = trainer.optimizer.state[trainer.model.output.bias]["ax"]
    assert torch.equal(seen[-1]["output.bias"], ax)
    assert not torch.equal(trainer.model.output.bias, ax)
    resumed = make_trainer(out, corpus, "train.optimizer=sgd", "train.lr=0.5", "train.nt_asgd=2",
                           "train.eval_every=2", "train.epochs=2")
    resumed.resume()
    assert resumed.optimizer_name == "asgd" and isinstance(resumed.optimizer, torch.optim.ASGD)


@pytest.mark.parametrize(("momentum", "said"), [("0", ""), ("0.5", "; train.momentum 0.5 stops here: averaged SGD "
                                                                  "has none")])
def test_the_nt_asgd_switch_says_that_momentum_stops_there(tmp_path: Path, corpus: Path, capsys, momentum: str,
                                                           said: str) -> None:
    trainer = make_trainer(tmp_path / "m", corpus, "train.optimizer=sgd", "train.lr=0.5", "train.nt_asgd=2",
                           "train.eval_every=2", "train.epochs=2", f"train.momentum={momentum}")
    script_validation(trainer, [5.0, 4.0, 4.5, 4.6, 4.7, 4.8, 4.9, 5.0], [])
    capsys.readouterr()
    trainer.fit()
    assert f"step 8: switching to averaged SGD (NT-ASGD){said}\n" in capsys.readouterr().out


def test_a_resume_on_a_changed_training_file_mostly_outside_its_vocabulary_asks_whether_it_changed(
        train_tiny, tmp_path: Path, corpus: Path) -> None:
    """The run keeps its own vocabulary: the --init-from advice (--init-partial) would not apply to a resume. (A run
    whose rnnkit.json records its data is refused before, naming the change: this is a run recorded without it.)"""
    text = tmp_path / "text.txt"
    shutil.copy(corpus, text)
    out = train_tiny("model", "train.max_steps=2", data=str(text))
    text.write_text("la souris voit le chat .\n" * 40)
    with pytest.raises(RnnkitError, match="the train data changed since the run started"):
        train_tiny("model", "train.max_steps=4", resume=True, data=str(text))
    marker = json.loads((out / "rnnkit.json").read_text(encoding="utf-8"))
    del marker["data"]
    (out / "rnnkit.json").write_text(json.dumps(marker), encoding="utf-8")
    with pytest.raises(RnnkitError) as error:
        train_tiny("model", "train.max_steps=4", resume=True, data=str(text))
    assert str(error.value).startswith(f"{text.resolve()}: ")
    assert str(error.value).endswith(f"would be trained as <unk>: the run keeps the vocabulary that {out} built from "
                                     "this file: was the file changed since?")


def test_nan_loss_is_an_error_naming_the_step(train_tiny) -> None:
    with pytest.raises(RnnkitError, match=r"loss is nan at step \d+ \(epoch 1\)") as err:
        train_tiny("model", "model.cell=rnn_relu", "train.optimizer=sgd", "train.lr=1e10")
    assert "train.lr" in str(err.value) and "train.clip" in str(err.value)


# ----------------------------------------------------------------------------------------------------
# exact resume

RESUME_CASES = {
    "stream-dropout-adam": ["model.dropout=0.3", "model.embedding_dropout=0.2", "model.weight_drop=0.3",
                            "model.word_dropout=0.1", "model.locked_dropout=true", "model.layers=2"],
    "sentences-sgd-momentum": ["data.mode=sentences", "model.dropout=0.3", "train.optimizer=sgd", "train.lr=0.5",
                               "train.momentum=0.9", "model.cell=gru"],
    "awd-variable-bptt": ["model.tie_weights=true", "model.dropout=0.2", "train.variable_bptt=true",
                          "train.optimizer=sgd", "train.lr=2", "train.clip=0.5", "train.activation_reg=1.0",
                          "train.temporal_reg=1.0"],
}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_resume_equals_uninterrupted_training(train_tiny, case: str) -> None:
    settings = [*RESUME_CASES[case], "train.eval_every=4", "train.epochs=3", "train.log_every=3"]
    full = train_tiny("full", *settings, "train.max_steps=22")
    part = train_tiny("part", *settings, "train.max_steps=10")  # stops mid-epoch, between validations
    assert torch.load(part / "checkpoint" / "trainer_state.pt", weights_only=True)["step"] == 10
    rnnkit.train("lm", out=part, resume=True, overrides=["train.max_steps=22"])
    assert_same_weights(weights(full / "checkpoint" / "last.safetensors"),
                        weights(part / "checkpoint" / "last.safetensors"))
    full_rows, part_rows = comparable(read_log(full)), comparable(read_log(part))
    assert [r for r in part_rows if r[:3] != (10, 1, "valid")] == full_rows  # plus the stop's own validation
    assert max(r[1] for r in full_rows) >= 2  # the runs crossed an epoch boundary


def test_resuming_a_finished_run_changes_nothing(train_tiny) -> None:
    out = train_tiny("model", "train.max_steps=5")
    before = weights(out / "checkpoint" / "last.safetensors")
    rows = read_log(out)
    rnnkit.train("lm", out=out, resume=True)
    assert_same_weights(before, weights(out / "checkpoint" / "last.safetensors"))
    assert comparable(read_log(out)) == comparable(rows)


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_it_again(train_tiny) -> None:
    full = train_tiny("full", "train.max_steps=6")
    killed = train_tiny("killed", "train.max_steps=6")
    for name in ("checkpoint", "model.safetensors", "log.csv", "curves.png", "results.json"):
        path = killed / name  # what a hard kill during the first epoch leaves: the set-up files only
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    rnnkit.train("lm", out=killed, resume=True)
    assert_same_weights(weights(full / "checkpoint" / "last.safetensors"),
                        weights(killed / "checkpoint" / "last.safetensors"))


def test_resume_names_the_option_that_brought_other_data(train_tiny, tmp_path: Path) -> None:
    """A validation file found in a --data folder is --data's, not --valid's (which the user never gave)."""
    folder = tmp_path / "corpus"
    train = write_lines(folder / "train.txt", corpus_lines(60))
    out = train_tiny("model", "train.max_steps=2", data=str(train))
    write_lines(folder / "valid.txt", corpus_lines(20, seed=1))
    with pytest.raises(RnnkitError, match=r"its valid file is None, not .*valid.txt \(leave out --data to resume"):
        rnnkit.train("lm", out=out, resume=True, data=str(folder))
    with pytest.raises(RnnkitError, match=r"\(leave out --valid to resume"):
        rnnkit.train("lm", out=out, resume=True, valid=str(folder / "valid.txt"))


def test_resume_refuses_different_data(train_tiny, valid_corpus: Path) -> None:
    out = train_tiny("model", "train.max_steps=2")
    with pytest.raises(RnnkitError, match="continues with the run's own data"):
        rnnkit.train("lm", out=out, resume=True, data=str(valid_corpus))
    rnnkit.train("lm", out=out, resume=True, data=str(out.parent / "data" / "train.txt"),
                 overrides=["train.max_steps=3"])  # the same data named again is fine
    assert torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=True)["step"] == 3


def saved_test(out: Path) -> str | None:
    return yaml.safe_load((out / "config.yaml").read_text())["data"]["test"]


def test_a_resume_may_add_a_test_file_to_a_run_that_has_none(train_tiny, valid_corpus: Path, tmp_path: Path,
                                                              capsys) -> None:
    """Scored after training only, a test file added on resume changes nothing that is trained; config.yaml (and
    so every later resume) takes it, and a test file other than the run's is still refused."""
    tested, plain = train_tiny("tested", "train.max_steps=2"), train_tiny("plain", "train.max_steps=2")
    for bad, message in (("missing.txt", "test file not found"), ("t.json", "a .json file would be read as plain")):
        (tmp_path / "t.json").write_text("{}\n")
        with pytest.raises(RnnkitError, match=message):
            rnnkit.train("lm", out=tested, resume=True, test=str(tmp_path / bad))
    assert saved_test(tested) is None  # a test file refused is not recorded
    capsys.readouterr()
    model = rnnkit.train("lm", out=tested, resume=True, test=str(valid_corpus), overrides=["train.max_steps=4"])
    assert f"; changed: train.max_steps 2 -> 4, data.test None -> {valid_corpus.resolve()}\n" in capsys.readouterr().out
    rnnkit.train("lm", out=plain, resume=True, overrides=["train.max_steps=4"])
    assert_same_weights(weights(tested / "checkpoint" / "last.safetensors"),
                        weights(plain / "checkpoint" / "last.safetensors"))
    assert saved_test(tested) == str(valid_corpus.resolve())
    assert set(model.results) == set(json.loads((tested / "results.json").read_text())) == {"valid", "test"}
    assert rnnkit.train("lm", out=tested, resume=True).results["test"] == model.results["test"]
    other = write_lines(tmp_path / "other.txt", corpus_lines(5, seed=2))
    with pytest.raises(RnnkitError, match=r"its test file is .*valid.txt, not .*other.txt \(leave out --test"):
        rnnkit.train("lm", out=tested, resume=True, test=str(other))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_saves_a_complete_checkpoint_and_resumes_exactly(train_tiny, monkeypatch, signum) -> None:
    settings = ["model.dropout=0.3", "train.eval_every=5", "train.epochs=2"]
    full = train_tiny("full", *settings, "train.max_steps=20")
    calls: list[int] = []
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(LMTask, "batch_loss", signal_on_call(LMTask.batch_loss, 7, signum, calls))
    with pytest.raises(KeyboardInterrupt):
        train_tiny("part", *settings, "train.max_steps=20")
    monkeypatch.undo()
    part = full.parent / "part"
    assert len(calls) == 7  # stopped at the end of the update the signal came in
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers  # given back
    ckpt = part / "checkpoint"
    assert sorted(p.name for p in ckpt.iterdir()) == ["complete", "last.safetensors", "rng_rank0.pt",
                                                      "trainer_state.pt"]
    assert torch.load(ckpt / "trainer_state.pt", weights_only=True)["step"] == 7
    assert not [p for p in part.iterdir() if p.name.startswith(".")]
    rnnkit.train("lm", out=part, resume=True)
    assert_same_weights(weights(full / "checkpoint" / "last.safetensors"), weights(ckpt / "last.safetensors"))
    assert comparable(read_log(part)) == comparable(read_log(full))


def test_sigterm_to_a_cli_training_process(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "model"
    sets = [a for s in [*TINY, "train.epochs=100000", "train.save_every=5"] for a in ("--set", s)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit", "train", "lm", "--data", str(corpus),
                             "--out", str(out), *sets], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint" / "trainer_state.pt").is_file():  # training (and the handler) is on
            if proc.poll() is not None:
                pytest.fail(f"training exited early ({proc.returncode}): {proc.stderr.read()}")
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted: checkpoint saved" in stderr and "--resume" in stderr
    state = torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=True)
    assert state["step"] >= 5 and not state["finished"]
    rnnkit.train("lm", out=out, resume=True, overrides=[f"train.max_steps={state['step'] + 3}"])
    resumed = torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=True)
    assert resumed["step"] == state["step"] + 3 and resumed["finished"]
    assert [int(r["step"]) for r in train_rows(read_log(out))] == list(range(1, state["step"] + 4))


# the CLI, stopped while it reads its data: the hook says when it is there, then waits
_READING_FOREVER = """
import sys, time
import rnnkit.tasks.lm
from rnnkit.cli import main

def reading(path, cfg):
    print("reading", flush=True)
    time.sleep(120)

rnnkit.tasks.lm.read_corpus_lines = reading
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_during_start_up_says_terminated_and_exits_143(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "model"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _READING_FOREVER, "train", "lm", "--data", str(corpus),
                             "--out", str(out), *[a for s in TINY for a in ("--set", s)]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline() == "reading\n", proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (proc.returncode, stderr) == (128 + signal.SIGTERM, "terminated\n")
    assert not out.exists()  # nothing was written yet: the same command starts it


# the CLI, stopped while it scores the test file after training: the hook says when it is there, then waits
_SCORING_FOREVER = """
import sys, time
import rnnkit.tasks.lm
from rnnkit.cli import main

def scoring(self, out_dir, device):
    print("scoring", flush=True)
    time.sleep(120)

rnnkit.tasks.lm.LMTask.test_metrics = scoring
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_while_the_test_file_is_scored_says_how_to_resume(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "model"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _SCORING_FOREVER, "train", "lm", "--data", str(corpus),
                             "--test", str(corpus), "--out", str(out), *[a for s in TINY for a in ("--set", s)],
                             "--set", "train.max_steps=3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().endswith("scoring\n"), proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert f"terminated: checkpoint saved in {out}; continue with" in stderr and "--resume" in stderr
    assert not (out / "results.json").exists()
    model = rnnkit.train("lm", out=out, resume=True)  # the finished run scores its test file again
    assert set(model.results) == {"valid", "test"} and (out / "results.json").is_file()


# ----------------------------------------------------------------------------------------------------
# --init-from


def test_init_from_loads_weights_with_fresh_optimizer_and_step(train_tiny, tmp_path: Path) -> None:
    base = train_tiny("base", "train.max_steps=6")
    other = write_lines(tmp_path / "other.txt", [*corpus_lines(30, seed=5), "a zebra finds the ball ."])
    new = train_tiny("new", "train.max_steps=2", "train.lr=0.0", data=str(other), init_from=str(base))
    # lr 0: the weights it trained are exactly the ones it started from
    assert_same_weights(weights(base / "model.safetensors"), weights(new / "checkpoint" / "last.safetensors"))
    state = torch.load(new / "checkpoint" / "trainer_state.pt", weights_only=True)
    assert state["step"] == 2
    assert all(s["step"] == 2 for s in state["optimizer"]["state"].values())  # Adam started afresh
    assert [int(r["step"]) for r in train_rows(read_log(new))] == [1, 2]
    # the vocabulary comes with the weights: the new word is <unk>, not a new row
    assert (new / "vocab.json").read_text() == (base / "vocab.json").read_text()
    assert "zebra" not in json.loads((new / "vocab.json").read_text())


def test_init_from_run_stopped_before_its_first_step_resumes_from_the_copied_weights(
        train_tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = train_tiny("base", "train.max_steps=6")
    whole = train_tiny("whole", "train.max_steps=3", init_from=str(base))
    real_fit = Trainer.fit

    def stopped_at_once(self):  # Ctrl-C (or a kill) after set-up, before the first update
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", stopped_at_once)
    with pytest.raises(KeyboardInterrupt):
        train_tiny("cut", "train.max_steps=3", init_from=str(base))
    monkeypatch.setattr(Trainer, "fit", real_fit)
    cut = tmp_path / "cut"
    rnnkit.train("lm", out=cut, resume=True)  # not from fresh random weights: from base's
    assert_same_weights(weights(whole / "checkpoint" / "last.safetensors"),
                        weights(cut / "checkpoint" / "last.safetensors"))


def test_init_from_a_different_shape_is_an_error(train_tiny, tmp_path: Path) -> None:
    base = train_tiny("base", "train.max_steps=2")
    with pytest.raises(RnnkitError, match=r"strict\) needs the same model .* shape \(96, 8\) here, \(64, 8\) in the "
                                          r"source.* --init-partial copies what matches"):
        train_tiny("new", "model.hidden_size=24", init_from=str(base))
    assert not (tmp_path / "new").exists()  # nothing half-written


def test_ptb_recipe_on_a_slice_of_ptb(shared_data: Path, tmp_path: Path) -> None:
    """The PTB folder resolves to its word-level train / valid / test files; the recipe runs on a slice."""
    ptb = shared_data / "ptb"
    if not (ptb / "ptb.train.txt").is_file():
        pytest.skip(f"{ptb} has no ptb.train.txt")
    out = tmp_path / "ptb"
    lm = rnnkit.train("lm", recipe="ptb-small", data=str(ptb), out=out, device="cpu", overrides=[
        "model.embedding_size=16", "model.hidden_size=16", "data.max_lines=300", "train.batch_size=4",
        "train.eval_batch_size=4", "train.epochs=1", "train.max_steps=10", "train.progress=false"])
    names = {split: Path(getattr(lm.config.data, split)).name for split in ("train", "valid", "test")}
    assert names == {"train": "ptb.train.txt", "valid": "ptb.valid.txt", "test": "ptb.test.txt"}
    assert lm.vocab.itos.count("<unk>") == 1 and "N" in lm.vocab
    assert lm.tokenizer.split_punctuation is False  # PTB's tokens are kept as they are
    for split in ("valid", "test"):
        assert math.isfinite(lm.results[split]["ppl"]) and lm.results[split]["tokens"] > 1000
        assert lm.results[split]["ppl"] < len(lm.vocab)  # better than uniform after 10 updates


# ----------------------------------------------------------------------------------------------------
# the learning test


def test_demo_learns_the_fable(demo_model: Path) -> None:
    lm = rnnkit.load(demo_model, device="cpu")
    text = lm.generate(DEMO_PROMPT, 32, greedy=True)[0]
    assert text.startswith(DEMO_CONTINUATION), text
    assert lm.evaluate(FABLE)["ppl"] < 1.5  # it has learned the fable by heart


def test_progress_prints_a_line_per_log_row_without_a_terminal_and_nothing_when_off(train_tiny, capsys) -> None:
    train_tiny("quiet", "train.max_steps=4", "train.log_every=2")
    assert capsys.readouterr().out == ""  # progress false: quiet
    train_tiny("lines", "train.max_steps=4", "train.log_every=2", "train.progress=true")
    out = capsys.readouterr().out  # pytest's captured stderr is no terminal: plain lines, no bar
    assert "step 2 epoch 1/2: loss" in out and "step 4 epoch 1/2: loss" in out and "tok/s" in out
    assert "\r" not in out


def test_the_valid_line_prints_counts_as_integers_with_thousands_separators(train_tiny, tmp_path: Path,
                                                                          capsys) -> None:
    """A count is an integer (``tokens 12,345``), not 4 significant digits (``tokens 1.234e+04``); floats as before."""
    valid = write_lines(tmp_path / "valid.txt", corpus_lines(2500, seed=1))
    out = train_tiny("model", "train.max_steps=2", "train.eval_every=2", "train.progress=true", valid=str(valid))
    tokens = json.loads((out / "results.json").read_text())["valid"]["tokens"]
    assert tokens >= 10_000  # where 4 significant digits would round it
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("step 2 valid:"))
    shown = rf"step 2 valid: loss \d\.\d{{3}}, ppl \d+(\.\d+)?, tokens {tokens:,} \(best loss\)"
    assert re.fullmatch(shown, line), line


def test_model_dir_files_get_the_usual_permissions(train_tiny) -> None:
    out = train_tiny("model", "train.max_steps=2")
    mask = os.umask(0)
    os.umask(mask)
    for name in ("config.yaml", "vocab.json", "model.safetensors", "log.csv", "results.json",
                 "checkpoint/last.safetensors"):
        assert (out / name).stat().st_mode & 0o777 == 0o666 & ~mask, name  # not mkstemp's private 0600
    assert (out / "checkpoint").stat().st_mode & 0o777 == 0o777 & ~mask


def test_a_checkpoint_write_cleans_up_the_temporary_folder_of_a_killed_one(train_tiny, tmp_path: Path) -> None:
    out = train_tiny("m", "train.max_steps=2")
    stale = out / ".checkpoint.abc123xy"  # what a kill during a checkpoint write leaves (mkdtemp: 8 characters)
    stale.mkdir()
    (stale / "last.safetensors").write_bytes(b"partial")
    rnnkit.train("lm", out=out, resume=True, overrides=["train.max_steps=4"])
    assert not stale.exists()
    assert has_checkpoint(out)


def test_a_line_break_in_a_char_models_prompt_is_a_line_end(train_tiny) -> None:
    lm = rnnkit.load(train_tiny("char", "tokenizer.kind=char", "train.max_steps=2"))
    ids = lm.prompt_ids("the cat\na dog")
    assert ids == [*lm.prompt_ids("the cat"), lm.vocab.eos_id, *lm.prompt_ids("a dog")]  # as in training data
    out = lm.generate("the cat\na dog", 0, include_prompt=True)
    assert out == ["the cat\na dog"]


def test_the_progress_line_says_what_the_task_counts(tmp_path: Path, capsys) -> None:
    """A classifier's loss is per example: its line shows examples/s and no perplexity (the LM's, above, tok/s)."""
    texts = [{"text": f"{'good fine' if i % 2 else 'bad poor'} film {i}", "label": i % 2} for i in range(40)]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(t) + "\n" for t in texts), encoding="utf-8")
    rnnkit.train("classify", data=str(data), out=tmp_path / "m",
                 overrides=["model.embedding_size=4", "model.hidden_size=4", "train.batch_size=8", "train.epochs=1",
                            "train.log_every=2", "train.progress=true", "train.device=cpu"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step 2 epoch")]
    assert len(lines) == 1 and "examples/s lr " in lines[0] and "ppl" not in lines[0] and "tok/s" not in lines[0]


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_takes_the_fused_kernel_for_float_parameters_on_a_cpu(name: str) -> None:
    params = [torch.nn.Parameter(torch.randn(3, 4)), torch.nn.Parameter(torch.randn(4))]
    assert make_optimizer(name, iter(params), TrainConfig(lr=0.01)).defaults["fused"] is True


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_takes_train_betas_on_the_fused_kernel(name: str) -> None:
    """A few steps of rnnkit's fused optimizer follow torch's single-tensor loop with the same betas, and differ from
    its steps with the default ones (one step cannot tell: Adam's bias correction makes the first step lr * sign)."""
    start = torch.randn(3, 4)
    grads = [torch.randn(3, 4) for _ in range(4)]

    def trained(optimizer_of) -> torch.Tensor:
        param = torch.nn.Parameter(start.clone())
        optimizer = optimizer_of([param])
        for grad in grads:
            param.grad = grad.clone()
            optimizer.step()
        return param.detach()

    assert make_optimizer(name, [torch.nn.Parameter(start)], TrainConfig(lr=0.01)).param_groups[0]["betas"] == (
        0.9, 0.999)  # torch's
    fused = make_optimizer(name, [torch.nn.Parameter(start)], TrainConfig(lr=0.01, betas=[0.5, 0.9]))
    assert fused.defaults["fused"] is True
    torch_class = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    ours = trained(lambda params: make_optimizer(name, params, TrainConfig(lr=0.01, betas=[0.5, 0.9])))
    theirs = trained(lambda params: torch_class(params, lr=0.01, betas=(0.5, 0.9), weight_decay=0.0, foreach=False))
    with_defaults = trained(lambda params: torch_class(params, lr=0.01, weight_decay=0.0, foreach=False))
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)
    assert (ours - with_defaults).abs().max() > 1e-4


def test_train_betas_reach_every_parameter_group() -> None:
    groups = [{"params": [torch.nn.Parameter(torch.randn(3, 4))], "lr": 0.01},
              {"params": [torch.nn.Parameter(torch.randn(4))], "lr": 0.005}]
    optimizer = make_optimizer("adam", groups, TrainConfig(lr=0.01, betas=[0.7, 0.99]))
    assert [group["betas"] for group in optimizer.param_groups] == [(0.7, 0.99)] * 2


def test_a_resume_may_change_the_betas_and_says_so(train_tiny, capsys) -> None:
    out = train_tiny("model", "train.max_steps=2")
    capsys.readouterr()
    train_tiny("model", "train.max_steps=4", "train.betas=[0.7, 0.99]", resume=True)
    assert "changed: train.betas [0.9, 0.999] -> [0.7, 0.99], train.max_steps 2 -> 4" in capsys.readouterr().out
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["betas"] == [0.7, 0.99]
    state = torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=False)
    assert [group["betas"] for group in state["optimizer"]["param_groups"]] == [(0.7, 0.99)]


def test_a_finished_run_resumed_with_other_betas_says_config_yaml_records_them(train_tiny, capsys) -> None:
    out = train_tiny("model", "train.max_steps=2")
    capsys.readouterr()
    train_tiny("model", "train.max_steps=2", "train.betas=[0.7, 0.99]", resume=True)
    said = capsys.readouterr().out
    assert "nothing left to train" in said
    assert "; changed in config.yaml: train.betas [0.9, 0.999] -> [0.7, 0.99]" in said
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["betas"] == [0.7, 0.99]


def test_a_resume_of_a_run_without_betas_refuses_them_naming_their_source(train_tiny, capsys) -> None:
    """The run's optimizer is fixed on resume: the advice is the resume that sets the betas back, not to change it;
    it can be followed as given, whether --set or a hand edit of config.yaml set them."""
    out = train_tiny("model", "train.optimizer=sgd", "train.max_steps=2")
    refusal = ("train.betas [0.5, 0.9] are Adam's (adam | adamw); this run trains with sgd, which has none, and a "
               "resume keeps its optimizer: ")
    with pytest.raises(RnnkitError) as error:
        train_tiny("model", "train.optimizer=sgd", "train.max_steps=4", "train.betas=[0.5, 0.9]", resume=True)
    assert str(error.value) == (f"--set: {refusal}leave --set train.betas out, or give its default: "
                                "`--set 'train.betas=[0.9, 0.999]'`")
    config = out / "config.yaml"
    lines = config.read_text().splitlines()
    at = lines.index("  betas:") + 1  # the line that sets them, 1-based
    lines[at: at + 2] = ["  - 0.5", "  - 0.9"]  # edited by hand
    config.write_text("\n".join(lines) + "\n")
    with pytest.raises(RnnkitError) as error:
        train_tiny("model", "train.optimizer=sgd", "train.max_steps=4", resume=True)
    assert str(error.value) == f"{config}:{at}: {refusal}resume with `--resume --set 'train.betas=[0.9, 0.999]'`"
    # the command as a shell reads it, whatever files the folder holds ([...] unquoted is a glob)
    command = shlex.split(str(error.value).split("`")[1])
    assert command == ["--resume", "--set", "train.betas=[0.9, 0.999]"]
    capsys.readouterr()
    train_tiny("model", "train.optimizer=sgd", "train.max_steps=4", command[2], resume=True)
    assert "changed: train.betas [0.5, 0.9] -> [0.9, 0.999], train.max_steps 2 -> 4" in capsys.readouterr().out
    assert yaml.safe_load(config.read_text())["train"]["betas"] == [0.9, 0.999]


def test_a_resume_refuses_every_ignored_setting_at_once_and_its_advice_fixes_them_all(train_tiny, capsys) -> None:
    """Several settings the run's optimizer ignores: one refusal names each where it was set, and the one command it
    gives resumes the run (not one key per attempt)."""
    out = train_tiny("model", "train.optimizer=sgd", "train.max_steps=2")
    kept = "this run trains with sgd, which has none of them, and a resume keeps its optimizer: "
    betas, alpha = "train.betas [0.5, 0.9] are Adam's (adam | adamw)", "train.rmsprop_alpha 0.5 is RMSprop's (rmsprop)"
    defaults = "--set 'train.betas=[0.9, 0.999]' --set train.rmsprop_alpha=0.9"
    with pytest.raises(RnnkitError) as error:
        train_tiny("model", "train.optimizer=sgd", "train.max_steps=4", "train.betas=[0.5, 0.9]",
                   "train.rmsprop_alpha=0.5", resume=True)
    assert str(error.value) == (f"--set: {betas}, {alpha}; {kept}leave --set train.betas and --set "
                                f"train.rmsprop_alpha out, or give their defaults: `{defaults}`")
    config = out / "config.yaml"
    at = config.read_text().splitlines().index("  rmsprop_alpha: 0.9") + 1
    config.write_text(config.read_text().replace("  rmsprop_alpha: 0.9\n", "  rmsprop_alpha: 0.5\n"))  # by hand
    with pytest.raises(RnnkitError) as error:
        train_tiny("model", "train.optimizer=sgd", "train.max_steps=4", "train.betas=[0.5, 0.9]", resume=True)
    assert str(error.value) == f"--set: {betas}, {config}:{at}: {alpha}; {kept}resume with `--resume {defaults}`"
    command = shlex.split(str(error.value).split("`")[1])
    capsys.readouterr()
    train_tiny("model", "train.optimizer=sgd", "train.max_steps=4", "train.betas=[0.5, 0.9]", *command[2::2],
               resume=True)  # the user's own --set of betas still there: the command's, later, wins
    assert "changed: train.rmsprop_alpha 0.5 -> 0.9, train.max_steps 2 -> 4" in capsys.readouterr().out
    assert yaml.safe_load(config.read_text())["train"]["rmsprop_alpha"] == 0.9


def test_a_run_an_older_rnnkit_trained_with_an_ignored_momentum_resumes_once_config_yaml_drops_it(
        train_tiny, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """Before check_optimizer_keys knew momentum, an adam run took train.momentum 0.9 and ignored it. Its resume is
    refused naming config.yaml's line; the advice (back to 0) is one a resume can follow: the checkpoint's record
    of the run's settings does not hold the ignored key against it."""
    with monkeypatch.context() as older:
        older.setattr(sys.modules["rnnkit.train"], "check_optimizer_keys", lambda *args, **kwargs: None)
        out = train_tiny("model", "train.momentum=0.9", "train.max_steps=2")
    config = out / "config.yaml"
    at = config.read_text().splitlines().index("  momentum: 0.9") + 1
    with pytest.raises(RnnkitError) as error:
        train_tiny("model", "train.max_steps=4", resume=True)
    assert str(error.value) == (f"{config}:{at}: train.momentum 0.9 is SGD's and RMSprop's (sgd | rmsprop); this run "
                                "trains with adam, which has none, and a resume keeps its optimizer: resume with "
                                "`--resume --set train.momentum=0.0`")
    config.write_text(config.read_text().replace("  momentum: 0.9\n", "  momentum: 0.0\n"))
    capsys.readouterr()
    train_tiny("model", "train.max_steps=4", resume=True)
    assert "changed: train.max_steps 2 -> 4" in capsys.readouterr().out
    assert torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=False)["step"] == 4


#: what --resume --set could change before train.momentum and rmsprop_alpha joined it
OLDER_RESUMABLE_KEYS = tuple(k for k in RESUMABLE_KEYS if k not in ("train.momentum", "train.rmsprop_alpha"))


@pytest.mark.parametrize(("optimizer", "key", "value", "default"), [("adam", "momentum", "0.9", "0.0"),
                                                                    ("sgd", "rmsprop_alpha", "0.99", "0.9")])
def test_an_older_run_with_an_ignored_setting_resumes_as_its_refusal_advises(
        train_tiny, monkeypatch: pytest.MonkeyPatch, capsys, optimizer: str, key: str, value: str,
        default: str) -> None:
    """A run an older rnnkit trained (it took train.momentum for adam, rmsprop_alpha for sgd, and its checkpoint
    records them among the settings a resume may not change): the refusal's command resumes it, and config.yaml
    records the default from then on."""
    with monkeypatch.context() as older:
        older.setattr(sys.modules["rnnkit.train"], "check_optimizer_keys", lambda *args, **kwargs: None)
        older.setattr(sys.modules["rnnkit.api"], "RESUMABLE_KEYS", OLDER_RESUMABLE_KEYS)
        out = train_tiny("model", f"train.optimizer={optimizer}", f"train.{key}={value}", "train.max_steps=2")
    with pytest.raises(RnnkitError, match=f"resume with `--resume --set train.{key}={default}`"):
        train_tiny("model", f"train.optimizer={optimizer}", "train.max_steps=4", resume=True)
    capsys.readouterr()
    train_tiny("model", f"train.optimizer={optimizer}", "train.max_steps=4", f"train.{key}={default}", resume=True)
    assert f"changed: train.{key} {value} -> {default}, train.max_steps 2 -> 4" in capsys.readouterr().out
    assert yaml.safe_load((out / "config.yaml").read_text())["train"][key] == float(default)
    assert torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=False)["step"] == 4


def test_a_resume_may_change_momentum_and_rmsprop_alpha(train_tiny, capsys) -> None:
    """The resumed optimizer goes on with them; RMSprop given momentum after steps without starts its buffers at 0
    (torch makes them only at a parameter's first step)."""
    out = train_tiny("model", "train.optimizer=rmsprop", "train.max_steps=2")
    capsys.readouterr()
    train_tiny("model", "train.optimizer=rmsprop", "train.max_steps=4", "train.momentum=0.5",
               "train.rmsprop_alpha=0.99", resume=True)
    assert "changed: train.momentum 0.0 -> 0.5, train.rmsprop_alpha 0.9 -> 0.99" in capsys.readouterr().out
    state = torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=False)
    assert state["step"] == 4
    assert [(g["momentum"], g["alpha"]) for g in state["optimizer"]["param_groups"]] == [(0.5, 0.99)]
    assert all(float(s["momentum_buffer"].abs().sum()) > 0 for s in state["optimizer"]["state"].values())


def test_a_resume_after_the_nt_asgd_switch_may_not_change_momentum(train_tiny, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys) -> None:
    """Averaged SGD has no momentum: a new train.momentum would be recorded and do nothing. Refused, naming the
    switch's step, and config.yaml keeps the run's value; a resume that leaves it out goes on averaging."""
    losses = itertools.chain([5.0, 4.0, 4.5, 4.6], itertools.repeat(4.7))  # NT-ASGD (2) switches at step 4
    monkeypatch.setattr(LMTask, "validate", lambda self, model: {"loss": next(losses)})
    nt_asgd = ["train.optimizer=sgd", "train.lr=0.5", "train.nt_asgd=2", "train.eval_every=1"]
    out = train_tiny("model", *nt_asgd, "train.momentum=0.9", "train.max_steps=6")
    assert "step 4: switching to averaged SGD" in capsys.readouterr().out
    with pytest.raises(RnnkitError) as error:
        train_tiny("model", *nt_asgd, "train.max_steps=8", "train.momentum=0.5", resume=True)
    assert str(error.value) == ("--set: train.momentum 0.5: NT-ASGD switched this run to averaged SGD at step 4, "
                                "which has no momentum, and a resume keeps its optimizer: leave --set train.momentum "
                                "out")
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["momentum"] == 0.9
    train_tiny("model", *nt_asgd, "train.max_steps=8", "train.momentum=0.9", resume=True)
    state = torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=False)
    assert state["step"] == 8 and state["optimizer_name"] == "asgd"


def _set_in_config(out: Path, key: str, value: str) -> int:
    """Write ``train.key: value`` into ``out``'s config.yaml by hand (what an older rnnkit accepted); its line."""
    config = out / "config.yaml"
    lines = config.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(f"  {key}: "))
    lines[at] = f"  {key}: {value}"
    config.write_text("\n".join(lines) + "\n")
    return at + 1


def test_a_model_with_an_older_rnnkits_momentum_or_rmsprop_alpha_loads_for_use(train_tiny, tmp_path: Path,
                                                                               corpus: Path) -> None:
    """Before train.momentum and rmsprop_alpha had to be below 1, an adam run took rmsprop_alpha 1.0 (and ignored
    it), an sgd run momentum 1.0: such models still generate, evaluate, classify and start an --init-from run
    (loading does not depend on training settings); training on with the value is refused, and the resume that
    lowers it goes on."""
    lm = train_tiny("lm", "train.max_steps=2")
    _set_in_config(lm, "rmsprop_alpha", "1.0")
    assert rnnkit.load(lm).generate("the cat", 2)
    assert rnnkit.load(lm).evaluate(str(corpus))["tokens"] > 0
    train_tiny("from_lm", "train.max_steps=1", init_from=lm)
    labelled = tmp_path / "t.jsonl"
    labelled.write_text("".join(json.dumps({"text": t, "label": t.split()[0]}) + "\n"
                                for t in ["x a y", "y b x", "x c x", "y d y"] * 5))
    classifier = tmp_path / "classifier"
    tiny = ["model.embedding_size=4", "model.hidden_size=4", "train.batch_size=4", "train.progress=false",
            "train.device=cpu", "train.optimizer=sgd"]
    rnnkit.train("classify", data=str(labelled), out=classifier, overrides=[*tiny, "train.max_steps=2"])
    at = _set_in_config(classifier, "momentum", "1.0")
    assert len(rnnkit.load(classifier).classify(["x a y", "y b x"])) == 2
    with pytest.raises(RnnkitError) as error:
        rnnkit.train("classify", out=classifier, resume=True, overrides=[*tiny, "train.max_steps=4"])
    assert str(error.value) == (f"{classifier / 'config.yaml'}:{at}: config key 'train.momentum' must be below 1 with "
                                "sgd, got 1.0 (at 1 and above the steps grow without bound): a resume may lower it "
                                "(`--resume --set train.momentum=...`)")
    rnnkit.train("classify", out=classifier, resume=True, overrides=[*tiny, "train.max_steps=4", "train.momentum=0.5"])
    assert torch.load(classifier / "checkpoint" / "trainer_state.pt", weights_only=False)["step"] == 4


@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop"])
def test_momentum_turned_on_again_starts_its_buffers_at_zero(optimizer: str) -> None:
    """Momentum on, then off for a while, then on again (each a resume's set_optimizer_keys): torch keeps the first
    phase's buffer unused while momentum is 0; the new phase starts from zero, not from that stale velocity. A
    change between two values that are both on keeps the buffer."""
    param = torch.nn.Parameter(torch.zeros(3))
    opt = make_optimizer(optimizer, [param], TrainConfig(lr=0.1, momentum=0.9))

    def step(momentum: float) -> torch.Tensor:
        set_optimizer_keys(opt, optimizer, TrainConfig(lr=0.1, momentum=momentum))
        param.grad = torch.ones(3)
        opt.step()
        return opt.state[param]["momentum_buffer"].clone()

    step(0.9)
    stale = step(0.9)
    assert torch.equal(step(0.0), stale)  # (kept, unused)
    set_optimizer_keys(opt, optimizer, TrainConfig(lr=0.1, momentum=0.5))
    assert torch.equal(opt.state[param]["momentum_buffer"], torch.zeros(3))
    moving = step(0.5)
    set_optimizer_keys(opt, optimizer, TrainConfig(lr=0.1, momentum=0.7))
    assert torch.equal(opt.state[param]["momentum_buffer"], moving)


def test_resumed_settings_reach_only_the_optimizer_that_has_them() -> None:
    """ASGD (NT-ASGD's second phase) has an ``alpha`` of its own, which train.rmsprop_alpha must not set."""
    cfg = TrainConfig(lr=0.1, momentum=0.5, rmsprop_alpha=0.5, betas=[0.7, 0.99])
    param = [torch.nn.Parameter(torch.zeros(3))]
    averaged = make_optimizer("asgd", param, TrainConfig(lr=0.1))
    set_optimizer_keys(averaged, "asgd", cfg)
    assert averaged.param_groups[0]["alpha"] == 0.75 and "momentum" not in averaged.param_groups[0]
    plain = make_optimizer("sgd", param, TrainConfig(lr=0.1))
    set_optimizer_keys(plain, "sgd", cfg)
    assert plain.param_groups[0]["momentum"] == 0.5 and "betas" not in plain.param_groups[0]


def test_fused_adam_takes_the_single_tensor_loops_steps() -> None:
    """The fused kernel is a speed-up, not another optimizer: runs keep their numbers to float rounding."""
    torch.manual_seed(0)
    start = torch.randn(50)
    grads = [torch.randn(50) for _ in range(5)]
    results = []
    for fused in (False, True):
        param = torch.nn.Parameter(start.clone())
        optimizer = torch.optim.Adam([param], lr=0.01, fused=fused)
        for grad in grads:
            param.grad = grad.clone()
            optimizer.step()
        results.append(param.detach())
    assert torch.allclose(results[0], results[1], atol=1e-6)
    assert not fusable([torch.zeros(2, dtype=torch.long)])

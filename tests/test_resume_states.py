"""What a kill, a full disk or a signal at an awkward moment leaves, and that --resume goes on from it (review 3,
findings 1, 2, 6, 7, 8b, 8c). The folder states a kill leaves are built directly, not timed."""

from __future__ import annotations

import errno
import importlib
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

import rnnkit
from conftest import TINY, assert_same_run, read_log, signal_on_call, timeless
from rnnkit import checkpoint
from rnnkit.cli import main
from rnnkit.tasks.lm import LMTask

pytestmark = pytest.mark.usefixtures("no_curves")
trainer_module = importlib.import_module("rnnkit.train")  # rnnkit.train is also the API function


def saved_step(folder: Path) -> int:
    return torch.load(folder / "trainer_state.pt", weights_only=True)["step"]


# ---------------------------------------------------------------------------------------------- 1. the swap
def save_step(out: Path, step: int) -> None:
    checkpoint.save_checkpoint(out, nn.Linear(2, 2), {"step": step}, {0: {"rng": step}})


def kill_states(out: Path, step: int, monkeypatch) -> list[Path]:
    """Save checkpoint ``step`` in ``out``, copying the folder as a kill would leave it before every rename and
    removal the save makes (copies beside ``out``)."""
    states: list[Path] = []

    def snapshot() -> None:
        copy = out.parent / f"kill{len(states)}"
        shutil.copytree(out, copy, symlinks=True)
        states.append(copy)

    def before(function):
        def wrapped(*args, **kwargs):
            snapshot()
            return function(*args, **kwargs)
        return wrapped

    with monkeypatch.context() as patch:
        patch.setattr(checkpoint.os, "replace", before(os.replace))
        patch.setattr(checkpoint, "_remove_own", before(checkpoint._remove_own))
        save_step(out, step)
    snapshot()  # and after it
    return states


@pytest.mark.parametrize("start", ["checkpoint", "checkpoint.old alone"])
def test_a_kill_at_any_moment_of_a_checkpoint_save_leaves_a_checkpoint_resume_finds(tmp_path: Path, monkeypatch,
                                                                                    start: str) -> None:
    """checkpoint.old alone is what a kill between the two renames of the last save leaves: the next save must
    not remove it before its own checkpoint is in (the review's data loss), and the settling a resume does
    first (remove_stale_temps) keeps the newest complete checkpoint, a temporary one included."""
    out = tmp_path / "run"
    out.mkdir()
    save_step(out, 1)
    save_step(out, 2)
    if start == "checkpoint.old alone":
        os.replace(out / "checkpoint", out / "checkpoint.old")
    states = kill_states(out, 3, monkeypatch)
    assert len(states) >= 3
    steps = []
    for state in states:
        checkpoint.remove_stale_temps(state)
        assert not [p.name for p in state.iterdir() if p.name.startswith(".")], state
        steps.append(saved_step(checkpoint.checkpoint_path(state)))
    assert steps == sorted(steps) and steps[-1] == 3, steps  # never back to an older one once a newer is whole
    assert 3 in steps[:-1]  # a complete temporary checkpoint (the kill before its rename) is kept, not removed


def test_an_incomplete_temporary_checkpoint_is_removed_and_the_last_complete_one_kept(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    save_step(out, 1)
    partial = out / ".checkpoint.abcd1234"  # killed before its trainer state (and then its complete file) was in
    partial.mkdir()
    (partial / "last.safetensors").write_bytes(b"x")
    (partial / "rng_rank0.pt").write_bytes(b"x")
    (partial / ".trainer_state.pt.zz9_zz9z.tmp").write_bytes(b"half")
    assert checkpoint.remove_stale_temps(out) == [partial.name]
    assert saved_step(checkpoint.checkpoint_path(out)) == 1


def killed_between_renames(train_tiny, name: str, keep_old: bool) -> Path:
    """A run killed while it swapped in its step-6 checkpoint: the step-6 folder still under its temporary name,
    its step-4 one as checkpoint.old (``keep_old``) or already removed."""
    out = train_tiny(name, "train.max_steps=4")
    shutil.copytree(out / "checkpoint", out.parent / "step4")
    rnnkit.train("lm", out=out, resume=True, overrides=["train.max_steps=6"])
    os.replace(out / "checkpoint", out / ".checkpoint.k1ll3d_x")
    if keep_old:
        os.replace(out.parent / "step4", out / "checkpoint.old")
    return out


@pytest.mark.parametrize("keep_old", [True, False], ids=["with-checkpoint.old", "temporary-alone"])
def test_resume_goes_on_from_a_complete_temporary_checkpoint(train_tiny, capsys, keep_old: bool) -> None:
    full = train_tiny("full", "train.max_steps=8")
    out = killed_between_renames(train_tiny, "killed", keep_old)
    capsys.readouterr()
    rnnkit.train("lm", out=out, resume=True, overrides=["train.max_steps=8"])
    assert f"resuming {out} from step 6 " in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir() if "checkpoint" in p.name) == ["checkpoint"]
    last = [load_file(run / "checkpoint" / "last.safetensors") for run in (full, out)]
    assert all(torch.equal(last[0][k], last[1][k]) for k in last[0])
    assert train_rows(full) == train_rows(out)  # (the stopped run has its stop's validation row at step 4 besides)


def test_a_temporary_checkpoint_without_its_complete_file_never_replaces_the_checkpoint(train_tiny, capsys) -> None:
    """Review 4, finding 1: rnnkit before the ``complete`` file wrote a checkpoint's files unrenamed, so a kill during
    its RNG state left a temp with every file there, one cut short. The resume removes it and goes on from
    ``checkpoint/``, which it keeps (it swapped the temp in, and then could not read it)."""
    full = train_tiny("full", "train.max_steps=6")
    out = train_tiny("killed", "train.max_steps=4")
    good = out / "checkpoint"
    old_style = out / ".checkpoint.k1ll3d00"
    old_style.mkdir()
    for name in ("last.safetensors", "trainer_state.pt"):
        shutil.copy(good / name, old_style / name)
    (old_style / "rng_rank0.pt").write_bytes((good / "rng_rank0.pt").read_bytes()[:200])
    capsys.readouterr()
    rnnkit.train("lm", out=out, resume=True, overrides=["train.max_steps=6"])
    assert f"resuming {out} from step 4 " in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir() if "checkpoint" in p.name) == ["checkpoint"]
    assert (good / "complete").read_text() == "step 6\n"
    last = [load_file(run / "checkpoint" / "last.safetensors") for run in (full, out)]
    assert all(torch.equal(last[0][k], last[1][k]) for k in last[0])


def train_rows(out: Path) -> list[dict[str, str]]:
    return [row for row in timeless(read_log(out)) if row["split"] == "train"]


# ---------------------------------------------------------------------------------------------- 2. results.json
def weights_step(path: Path) -> int:
    with safe_open(str(path), "pt") as f:
        return int(f.metadata()["step"])


def test_results_json_never_describes_other_weights_than_model_safetensors(train_tiny, monkeypatch) -> None:
    """A finished run resumed for more steps replaces model.safetensors at a better validation: results.json (the
    metrics of the weights there before) goes in the same step, and the run writes it again when it ends."""
    out = train_tiny("model", "train.max_steps=4", "train.eval_every=2")
    assert weights_step(out / "model.safetensors") <= 4 and (out / "results.json").is_file()
    losses = iter([1 / n for n in range(1, 100)])  # every validation better than the last (and than step 4's)
    monkeypatch.setattr(LMTask, "validate", lambda task, model: {"loss": next(losses)})
    # SIGINT in update 7 (the resume's third), after the step-6 validation replaced the weights
    original = LMTask.batch_loss
    monkeypatch.setattr(LMTask, "batch_loss", signal_on_call(original, 3))
    with pytest.raises(KeyboardInterrupt):
        rnnkit.train("lm", out=out, resume=True, overrides=["train.max_steps=10"])
    assert weights_step(out / "model.safetensors") == 6
    assert not (out / "results.json").exists()
    monkeypatch.setattr(LMTask, "batch_loss", original)
    model = rnnkit.train("lm", out=out, resume=True, overrides=["train.max_steps=10"])
    assert weights_step(out / "model.safetensors") == 10
    assert json.loads((out / "results.json").read_text()) == model.results == {"valid": {"loss": 1 / 3}}


# ---------------------------------------------------------------------------------------------- 6. a full disk
def disk_full_at(name: str, monkeypatch, after: int = 0) -> None:
    """Creating the temporary file of ``name`` (its atomic write) fails as on a full disk, after ``after`` times."""
    mkstemp = tempfile.mkstemp
    made: list[str] = []

    def full(*args, prefix=None, **kwargs):
        if prefix == f".{name}.":
            made.append(name)
            if len(made) > after:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return mkstemp(*args, prefix=prefix, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", full)


@pytest.mark.parametrize("name, after, named", [("model.safetensors", 1, "model.safetensors: cannot write the file"),
                                                ("log.csv", 0, "log.csv: cannot write the file"),
                                                ("trainer_state.pt", 1, "checkpoint: cannot write the checkpoint"),
                                                ("results.json", 0, "results.json: cannot write the file")])
def test_a_full_disk_while_training_is_one_error_naming_the_file_and_the_run_resumes(
        tmp_path: Path, corpus: Path, monkeypatch, capsys, name: str, after: int, named: str) -> None:
    out = tmp_path / "model"
    args = ["train", "lm", "--data", str(corpus), "--out", str(out), *[a for s in TINY for a in ("--set", s)],
            "--set", "train.max_steps=6", "--set", "train.eval_every=3"]
    with monkeypatch.context() as patch:
        disk_full_at(name, patch, after)
        assert main(args) == 2
    err = capsys.readouterr().err
    assert err == f"error: {out}/{named} (No space left on device)\n"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # nothing half-written left
    assert main(["train", "lm", "--out", str(out), "--resume"]) == 0, capsys.readouterr().err
    assert torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=True)["finished"]
    assert (out / "results.json").is_file()


# ---------------------------------------------------------------------------------------------- 7. set-up cut short
def test_a_run_stopped_while_it_set_up_its_folder_is_resumed_or_refused_with_the_fix(
        tmp_path: Path, corpus: Path, monkeypatch, capsys) -> None:
    """Set-up writes config.yaml last: a folder that has it holds its vocabulary and tokenizer, and --resume
    starts the run from step 0 as the README says; one cut short before it names --overwrite."""
    out = tmp_path / "model"
    args = ["train", "lm", "--data", str(corpus), "--out", str(out), *[a for s in TINY for a in ("--set", s)],
            "--set", "train.max_steps=2"]
    with monkeypatch.context() as patch:
        disk_full_at("vocab.json", patch)
        assert main(args) == 2
    assert capsys.readouterr().err == f"error: {out}/vocab.json: cannot write the file (No space left on device)\n"
    assert not (out / "config.yaml").exists()
    assert main(["train", "lm", "--out", str(out), "--resume"]) == 2
    assert capsys.readouterr().err == (f"error: {out}: the run stopped while it set up this folder, before "
                                       "config.yaml: nothing was trained; --overwrite starts it again\n")
    assert main([*args, "--overwrite"]) == 0, capsys.readouterr().err
    for name in ("checkpoint", "model.safetensors", "log.csv", "results.json"):  # stopped after set-up
        path = out / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    capsys.readouterr()
    assert main(["train", "lm", "--out", str(out), "--resume"]) == 0
    assert "starting it from the beginning" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- 8. late signals
@pytest.fixture
def sigterm_raises(monkeypatch):
    """SIGTERM outside training raises Terminated, as under the CLI (pytest's own SIGTERM would end the tests)."""
    from rnnkit.cli import Terminated, _raise_terminated

    old = signal.signal(signal.SIGTERM, _raise_terminated)
    yield Terminated
    signal.signal(signal.SIGTERM, old)


def test_sigterm_during_the_last_validation_stops_with_the_checkpoint_saved(train_tiny, monkeypatch,
                                                                            sigterm_raises) -> None:
    """The last validation (the stop's own, at step 5) is past the last step boundary: the signal is honoured
    after it, the run finished and its checkpoint saved; the resume validates and writes results.json."""
    full = train_tiny("full", "train.max_steps=5", "train.eval_every=2")
    # the third validation is the last (steps 2, 4, 5)
    monkeypatch.setattr(LMTask, "validate", signal_on_call(LMTask.validate, 3, signal.SIGTERM))
    with pytest.raises(KeyboardInterrupt):
        train_tiny("stopped", "train.max_steps=5", "train.eval_every=2")
    monkeypatch.undo()
    out = full.parent / "stopped"
    assert torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=True)["finished"]
    assert not (out / "results.json").exists()
    model = rnnkit.train("lm", out=out, resume=True)
    assert_same_run(full, out)
    assert json.loads((out / "results.json").read_text()) == model.results
    assert model.results == json.loads((full / "results.json").read_text())


@pytest.mark.curves
def test_a_signal_while_the_last_curves_are_drawn_is_honoured(train_tiny, tmp_path: Path, monkeypatch,
                                                              sigterm_raises) -> None:
    draw = trainer_module.plot_curves

    def interrupted(rows, path, metric="ppl"):
        signal.raise_signal(signal.SIGTERM)
        draw(rows, path, metric)

    monkeypatch.setattr(trainer_module, "CURVES_EVERY_SEC", 1e9)  # drawn at the end only
    monkeypatch.setattr(trainer_module, "plot_curves", interrupted)
    with pytest.raises(KeyboardInterrupt):  # the trainer's (checkpoint saved), not Terminated from outside it
        train_tiny("model", "train.max_steps=4", "train.eval_every=2")
    out = tmp_path / "model"
    assert (out / "curves.png").is_file()
    assert torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=True)["finished"]


def test_resume_of_a_finished_run_draws_its_curves(train_tiny, monkeypatch) -> None:
    """A run stopped while its last curves were drawn (by a kill) has no curves.png: the resume draws it."""
    drawn: list[Path] = []
    monkeypatch.setattr(trainer_module, "plot_curves", lambda rows, path, metric="ppl": drawn.append(Path(path)))
    out = train_tiny("model", "train.max_steps=4", "train.eval_every=2")
    drawn.clear()
    rnnkit.train("lm", out=out, resume=True)
    assert drawn == [out / "curves.png"]

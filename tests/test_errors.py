"""Bad input that needs more than one row of the table in test_bad_input.py: a failure next to the
success that follows it, or a check of what a refused run left alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from conftest import TINY
from rnnkit.cli import main

pytestmark = pytest.mark.usefixtures("no_curves")


def fails(capsys, *argv) -> str:
    """Run the CLI, expect exit status 2 and a single-line error without a traceback; return it."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert rc == 2, (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def sets(*overrides: str) -> list[str]:
    return [a for s in overrides for a in ("--set", s)]


def train_args(data: Path, out: Path, *overrides: str) -> list:
    return ["train", "lm", "--data", data, "--out", out, *sets(*TINY, "train.max_steps=2", *overrides)]


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_recipe_with_an_empty_section_trains(capsys, tmp_path: Path, corpus: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("data:\n  # every key commented out\nmodel:\n  cell: gru\n", encoding="utf-8")
    assert main([*map(str, train_args(corpus, tmp_path / "m", "data.max_lines=40")), "--recipe", str(empty)]) == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu(capsys, tmp_path: Path, corpus: Path) -> None:
    err = fails(capsys, *train_args(corpus, tmp_path / "m"), "--device", "cuda")
    assert "no CUDA GPU" in err and "--device cpu" in err


def test_resume_with_nothing_to_resume(capsys, tmp_path: Path, corpus: Path, tiny_model: Path) -> None:
    started = copy_model(tiny_model, tmp_path / "started")  # killed after set-up, before any weights or log
    shutil.rmtree(started / "checkpoint")
    for name in ("model.safetensors", "log.csv", "results.json"):
        (started / name).unlink(missing_ok=True)
    assert main(["train", "lm", "--out", str(started), "--resume"]) == 0  # the run starts again from step 0
    assert "starting it from the beginning" in capsys.readouterr().out
    assert (started / "checkpoint" / "trainer_state.pt").is_file()
    broken = tmp_path / "broken"  # a config but no vocabulary: nothing to start from
    broken.mkdir()
    shutil.copy(tiny_model / "config.yaml", broken / "config.yaml")
    err = fails(capsys, "train", "lm", "--out", broken, "--resume")
    assert str(broken) in err


def test_changing_a_non_resumable_key_on_resume(capsys, tmp_path: Path, tiny_model: Path) -> None:
    out = copy_model(tiny_model, tmp_path / "m")
    before = (out / "checkpoint" / "trainer_state.pt").read_bytes()
    err = fails(capsys, "train", "lm", "--out", out, "--resume", *sets("model.hidden_size=64"))
    assert "cannot change 'model.hidden_size' when resuming" in err and "train.max_steps" in err
    err = fails(capsys, "train", "lm", "--out", out, "--resume", *sets("train.optimizer=sgd"))
    assert "cannot change 'train.optimizer' when resuming ('adam' in the run, 'sgd' asked for" in err
    assert (out / "checkpoint" / "trainer_state.pt").read_bytes() == before


def test_prompt_word_not_in_the_vocabulary_with_allow_unk(capsys, tiny_model: Path) -> None:
    rc = main(["generate", str(tiny_model), "--prompt", "the zebra sees a unicorn", "--allow-unk", "-n", "5",
               "--greedy", "--include-prompt"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert out.startswith("the <unk> sees a <unk>")

"""Bad input: each case exits with status 2 and one ``error:`` line naming the file (and line)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import TINY, write_lines
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


# ----------------------------------------------------------------------------------------------------
# data files


def test_missing_data_file(capsys, tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    err = fails(capsys, *train_args(missing, tmp_path / "m"))
    assert str(missing) in err and "not found" in err
    assert not (tmp_path / "m").exists()


def test_empty_data_file(capsys, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    err = fails(capsys, *train_args(empty, tmp_path / "m"))
    assert f"{empty}: file is empty" in err
    assert not (tmp_path / "m").exists()


def test_non_utf8_data_names_the_line(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"the cat sees the ball .\n" * 4 + "the caf\xe9 .\n".encode("latin-1"))
    err = fails(capsys, *train_args(bad, tmp_path / "m"))
    assert f"{bad}:5: not UTF-8" in err


def test_broken_jsonl_line(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "reviews.jsonl"
    bad.write_text('{"text": "a fine film ."}\n{"text": "a fine film ."}\n{"text": "oops\n', encoding="utf-8")
    err = fails(capsys, *train_args(bad, tmp_path / "m"))
    assert f"{bad}:3: invalid JSON" in err


def test_bad_validation_file_is_named(capsys, tmp_path: Path, corpus: Path) -> None:
    bad = tmp_path / "valid.txt"
    bad.write_bytes(b"ok\n\xff\xfe\n")
    err = fails(capsys, *train_args(corpus, tmp_path / "m"), "--valid", bad)
    assert f"{bad}:2: not UTF-8" in err


def test_evaluate_bad_data(capsys, tmp_path: Path, tiny_model: Path) -> None:
    err = fails(capsys, "evaluate", tiny_model, "--data", tmp_path / "none.txt")
    assert str(tmp_path / "none.txt") in err
    short = write_lines(tmp_path / "short.txt", ["the"])  # one word + <eos>: no stream to score
    err = fails(capsys, "evaluate", tiny_model, "--data", short)
    assert f"{short}: cannot score this text" in err
    err = fails(capsys, "evaluate", tiny_model, "--data", short, "--backend", "numpy")  # same reading, same error
    assert f"{short}: cannot score this text" in err


def test_missing_test_file_fails_before_training(capsys, tmp_path: Path, corpus: Path) -> None:
    missing = tmp_path / "nope.txt"
    err = fails(capsys, *train_args(corpus, tmp_path / "m"), "--test", missing)
    assert f"{missing}: file not found" in err
    assert not (tmp_path / "m").exists()  # nothing trained, nothing written


def test_output_paths_that_cannot_be_used(capsys, tmp_path: Path, corpus: Path, tiny_model: Path) -> None:
    a_file = write_lines(tmp_path / "afile", ["x"])
    err = fails(capsys, *train_args(corpus, a_file))
    assert f"{a_file}: --out is a file" in err
    blocked = a_file / "model"  # a folder under a file cannot be made
    err = fails(capsys, *train_args(corpus, blocked))
    assert f"{blocked}: cannot create the model folder" in err
    err = fails(capsys, "evaluate", tiny_model, "--data", corpus, "--json", tmp_path)
    assert f"{tmp_path}: --json names a folder" in err


def test_corrupt_gzip_data(capsys, tmp_path: Path, corpus: Path) -> None:
    import gzip

    packed = bytearray(gzip.compress(corpus.read_bytes()))
    packed[20:40] = bytes(20)  # damage the deflate stream, not the header
    bad = tmp_path / "bad.txt.gz"
    bad.write_bytes(bytes(packed))
    err = fails(capsys, "train", "lm", "--data", bad, "--out", tmp_path / "m")
    assert f"{bad}: not a valid gzip file" in err


def test_validation_data_too_short_fails_before_training(capsys, tmp_path: Path, corpus: Path) -> None:
    tiny_valid = write_lines(tmp_path / "v.txt", ["Fin"])  # one word: no validation stream
    err = fails(capsys, *train_args(corpus, tmp_path / "m"), "--valid", tiny_valid)
    assert f"{tiny_valid}: cannot batch the validation data" in err
    assert not (tmp_path / "m").exists()


# ----------------------------------------------------------------------------------------------------
# config


def test_unknown_config_key(capsys, tmp_path: Path, corpus: Path) -> None:
    err = fails(capsys, *train_args(corpus, tmp_path / "m", "train.learning_rate=0.1"))
    assert "unknown config key 'train.learning_rate'" in err
    assert not (tmp_path / "m").exists()


def test_unknown_key_in_a_recipe_file(capsys, tmp_path: Path, corpus: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model:\n  cells: lstm  # typo\n", encoding="utf-8")
    err = fails(capsys, *train_args(corpus, tmp_path / "m"), "--recipe", recipe)
    assert f"{recipe}:2: unknown config key 'model.cells'" in err


def test_recipe_with_an_empty_section_or_no_mapping(capsys, tmp_path: Path, corpus: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("data:\n  # every key commented out\nmodel:\n  cell: gru\n", encoding="utf-8")
    assert main([*map(str, train_args(corpus, tmp_path / "m", "data.max_lines=40")), "--recipe", str(empty)]) == 0
    listed = tmp_path / "list.yaml"
    listed.write_text("- data\n- model\n", encoding="utf-8")
    err = fails(capsys, *train_args(corpus, tmp_path / "n"), "--recipe", listed)
    assert f"{listed}: the top level must be a mapping" in err


def test_bad_value_type(capsys, tmp_path: Path, corpus: Path) -> None:
    err = fails(capsys, *train_args(corpus, tmp_path / "m", "train.epochs=many"))
    assert "'train.epochs' must be an integer" in err


def test_bad_override_syntax(capsys, tmp_path: Path, corpus: Path) -> None:
    err = fails(capsys, *train_args(corpus, tmp_path / "m", "train.lr:0.1"))
    assert "'train.lr:0.1' is not of the form key=value" in err


def test_unknown_recipe(capsys, tmp_path: Path, corpus: Path) -> None:
    err = fails(capsys, *train_args(corpus, tmp_path / "m"), "--recipe", "ptb-huge")
    assert "unknown recipe 'ptb-huge'" in err and "ptb-small" in err


@pytest.mark.parametrize("override, message", [
    ("model.cell=transformer", "unknown cell 'transformer'"),
    ("train.optimizer=lbfgs", "unknown optimizer 'lbfgs'"),
    ("train.schedule=cosine", "unknown schedule 'cosine'"),
    ("data.mode=documents", "unknown data.mode 'documents'"),
    ("tokenizer.kind=bytes", "unknown tokenizer kind 'bytes'"),
    ("train.device=tpu", "unknown device 'tpu'"),
    ("train.nt_asgd=3", "train.nt_asgd switches SGD to averaged SGD: it needs train.optimizer sgd"),
])
def test_unknown_choice_fails_before_writing_anything(capsys, tmp_path: Path, corpus: Path, override: str,
                                                      message: str) -> None:
    out = tmp_path / "m"
    err = fails(capsys, *train_args(corpus, out, override))
    assert message in err
    assert not out.exists()  # so the corrected command can use the same --out


def test_variable_bptt_outside_streams_is_refused(capsys, tmp_path: Path, corpus: Path) -> None:
    err = fails(capsys, *train_args(corpus, tmp_path / "m", "train.variable_bptt=true", "data.mode=sentences"))
    assert "train.variable_bptt varies the BPTT length of running text: it needs data.mode stream" in err
    assert not (tmp_path / "m").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu(capsys, tmp_path: Path, corpus: Path) -> None:
    err = fails(capsys, *train_args(corpus, tmp_path / "m"), "--device", "cuda")
    assert "no CUDA GPU" in err and "--device cpu" in err


# ----------------------------------------------------------------------------------------------------
# output folder, resume


def test_output_dir_not_empty_without_resume(capsys, tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "m"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    err = fails(capsys, *train_args(corpus, out))
    assert f"{out}: output folder is not empty" in err and "--resume" in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_resume_with_nothing_to_resume(capsys, tmp_path: Path, corpus: Path, tiny_model: Path) -> None:
    err = fails(capsys, "train", "lm", "--out", tmp_path / "never", "--resume")
    assert f"{tmp_path / 'never'}: nothing to resume" in err
    started = copy_model(tiny_model, tmp_path / "started")  # killed between best weights and first checkpoint
    shutil.rmtree(started / "checkpoint")
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


def test_nan_loss_names_the_step(capsys, tmp_path: Path, corpus: Path) -> None:
    err = fails(capsys, *train_args(corpus, tmp_path / "m", "model.cell=rnn_relu", "train.optimizer=sgd",
                                    "train.lr=1e10", "train.max_steps=0"))
    assert "loss is nan at step 2 (epoch 1)" in err


def test_init_from_an_incomplete_model_dir(capsys, tmp_path: Path, corpus: Path, tiny_model: Path) -> None:
    broken = copy_model(tiny_model, tmp_path / "broken")
    (broken / "model.safetensors").unlink()
    err = fails(capsys, *train_args(corpus, tmp_path / "m"), "--init-from", broken)
    assert f"{broken}: not a complete model directory: 'model.safetensors' is missing" in err


# ----------------------------------------------------------------------------------------------------
# model directories and prompts


@pytest.mark.parametrize("name, message", [
    ("model.safetensors", "'model.safetensors' is missing"),
    ("vocab.json", "'vocab.json' is missing"),
    ("config.yaml", "'config.yaml' is missing"),
    ("tokenizer.json", "no tokenizer file"),
])
def test_model_dir_missing_a_file(capsys, tmp_path: Path, tiny_model: Path, name: str, message: str) -> None:
    model = copy_model(tiny_model, tmp_path / "m")
    (model / name).unlink()
    err = fails(capsys, "generate", model, "--prompt", "the cat")
    assert message in err and str(model) in err
    err = fails(capsys, "evaluate", model, "--data", tiny_model.parent / "valid.txt")
    assert message in err


def test_model_dir_not_found(capsys, tmp_path: Path) -> None:
    err = fails(capsys, "generate", tmp_path / "ghost")
    assert f"{tmp_path / 'ghost'}: model directory not found" in err


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_weights_file(capsys, tmp_path: Path, tiny_model: Path, damage: str) -> None:
    model = copy_model(tiny_model, tmp_path / "m")
    weights = model / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(b"\x00garbage" * 10 if damage == "garbage" else data[: len(data) // 2])
    err = fails(capsys, "generate", model, "--prompt", "the cat")
    assert f"{weights}: weights file is corrupt" in err


def test_weights_of_another_model(capsys, tmp_path: Path, tiny_model: Path) -> None:
    model = copy_model(tiny_model, tmp_path / "m")
    config = (model / "config.yaml").read_text(encoding="utf-8")
    (model / "config.yaml").write_text(config.replace("hidden_size: 16", "hidden_size: 17"), encoding="utf-8")
    err = fails(capsys, "generate", model)
    assert "config and weights disagree" in err


def test_corrupt_vocab_and_tokenizer_files(capsys, tmp_path: Path, tiny_model: Path) -> None:
    model = copy_model(tiny_model, tmp_path / "m")
    (model / "vocab.json").write_text('["<pad>", "<unk>"', encoding="utf-8")
    assert "vocabulary file is corrupt" in fails(capsys, "generate", model)
    model = copy_model(tiny_model, tmp_path / "m2")
    (model / "tokenizer.json").write_text(json.dumps({"kind": "morse"}), encoding="utf-8")
    assert "unknown tokenizer kind 'morse'" in fails(capsys, "generate", model)
    (model / "tokenizer.json").write_text("[1]", encoding="utf-8")
    assert "tokenizer file is corrupt (a JSON object expected, got list)" in fails(capsys, "generate", model)
    model = copy_model(tiny_model, tmp_path / "m3")
    words = json.loads((model / "vocab.json").read_text(encoding="utf-8"))
    (model / "vocab.json").write_text(json.dumps([*words, words[5]]), encoding="utf-8")
    assert "vocabulary file is corrupt (duplicate tokens" in fails(capsys, "generate", model)


def test_prompt_word_not_in_the_vocabulary(capsys, tiny_model: Path) -> None:
    err = fails(capsys, "generate", tiny_model, "--prompt", "the zebra sees a unicorn")
    assert "'zebra'" in err and "'unicorn'" in err and "--allow-unk" in err
    rc = main(["generate", str(tiny_model), "--prompt", "the zebra sees a unicorn", "--allow-unk", "-n", "5",
               "--greedy", "--include-prompt"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert out.startswith("the <unk> sees a <unk>")


@pytest.mark.parametrize("option, message", [
    (["--temperature", "0"], "temperature must be > 0"),
    (["--top-p", "1.5"], "top-p must be in"),
    (["--top-k", "-2"], "top-k must be >= 0"),
    (["--num-samples", "-1"], "--num-samples >= 1"),
    (["--temperature", "nan"], "temperature must be > 0 and finite"),
    (["--temperature", "inf"], "temperature must be > 0 and finite"),
    (["-n", "-3"], "-n >= 0"),
])
def test_bad_sampling_options(capsys, tiny_model: Path, option: list[str], message: str) -> None:
    assert message in fails(capsys, "generate", tiny_model, "--prompt", "the", *option)

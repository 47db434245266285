"""CLI smoke tests: every command end to end on tiny data (in-process ``main``, one real subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import rnnkit
from conftest import DEMO_CONTINUATION, DEMO_PROMPT, TINY, assert_same_run, read_log, write_lines
from rnnkit.cli import COMMANDS, SAMPLE_SEPARATOR, main
from rnnkit.config import list_recipes
from rnnkit.data.vocab import OOV_WARN_RATE

pytestmark = pytest.mark.usefixtures("no_curves")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def sets(*overrides: str) -> list[str]:
    return [a for s in overrides for a in ("--set", s)]


@pytest.mark.parametrize("verb", [None, *COMMANDS])
def test_help_of_every_verb_exits_0(capsys, verb: str | None) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([verb, "--help"] if verb else ["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: rnnkit{' ' + verb if verb else ''}")
    if verb is None:
        assert all(name in out for name in COMMANDS)


def test_evaluate_help_lists_each_tasks_own_options(capsys) -> None:
    """The options a task adds to ``rnnkit evaluate`` are shown in its help, one section per task (parsed only
    once the model's task is known: test_bad_input checks that another task's model refuses them)."""
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    classify, seq2seq = out.index("options of a classify model"), out.index("options of a seq2seq model")
    assert "--confusion-png FILE" in out[classify:seq2seq] and "--confusion-png FILE" not in out[seq2seq:]
    assert all(option in out[seq2seq:] for option in ("--src FILE", "--ref FILE", "--beam N", "--alpha A"))
    assert "--beam" not in out[:classify]


def test_no_command_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2
    assert "required" in capsys.readouterr().err


def test_recipes_lists_every_builtin(capsys) -> None:
    rc, out, _ = run(capsys, "recipes")
    assert rc == 0
    lines = out.splitlines()
    assert len(lines) == len(list_recipes())
    for (name, description), line in zip(list_recipes().items(), lines, strict=True):
        assert line.split()[0] == name and line.endswith(description)


def test_recipe_descriptions_are_whole_lines() -> None:
    """The line ``rnnkit recipes`` shows (a recipe's first comment line) must not stop mid-parenthesis or mid-clause."""
    for name, description in list_recipes().items():
        assert description.count("(") == description.count(")"), name
        assert not description.endswith((";", ",", ":")), name


def test_console_script_runs(tmp_path: Path) -> None:
    """The installed entry point (not just main()): ``python -m rnnkit`` and the ``rnnkit`` script."""
    script = Path(sys.executable).with_name("rnnkit")
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "rnnkit"]
    proc = subprocess.run([*cmd, "recipes"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "demo" in proc.stdout and "ptb-small" in proc.stdout


def test_train_lm_command(capsys, tmp_path: Path, corpus: Path, valid_corpus: Path) -> None:
    out = tmp_path / "model"
    rc, stdout, stderr = run(capsys, "train", "lm", "--data", corpus, "--valid", valid_corpus, "--test",
                             valid_corpus, "--out", out, *sets(*TINY, "train.max_steps=8"), "--device", "cpu")
    assert rc == 0, stderr
    assert f"model saved in {out}" in stdout
    assert "valid: loss" in stdout and "test: loss" in stdout and " ppl " in stdout
    assert int(read_log(out)[-1]["step"]) == 8
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert {k: results["test"][k] for k in results["valid"]} == results["valid"]  # same file, same best weights
    assert results["test"]["oov"] == 0


def test_train_with_a_recipe_file_and_a_data_folder(capsys, tmp_path: Path, corpus: Path) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text("# tiny\ndata:\n  mode: sentences  # one line each\nmodel:\n  init_range: 0.05  # small\n",
                      encoding="utf-8")
    (corpus.parent / "valid.txt").write_text("the cat sees the ball .\n", encoding="utf-8")
    out = tmp_path / "model"
    rc, stdout, stderr = run(capsys, "train", "lm", "--recipe", recipe, "--data", corpus.parent, "--out", out,
                             *sets(*TINY, "train.max_steps=3"))
    assert rc == 0, stderr
    cfg = rnnkit.load(out).config
    assert (cfg.data.mode, cfg.model.init_range, cfg.model.cell) == ("sentences", 0.05, "lstm")  # --set wins
    assert cfg.data.valid == str((corpus.parent / "valid.txt").resolve())  # found by name in the folder


def test_generate_greedy_matches_the_api(capsys, tiny_model: Path) -> None:
    rc, out, err = run(capsys, "generate", tiny_model, "--prompt", "the cat", "-n", "12", "--greedy")
    assert rc == 0, err
    expected = rnnkit.load(tiny_model).generate("the cat", 12, greedy=True)[0]
    assert out == expected + "\n"
    rc, out, _ = run(capsys, "generate", tiny_model, "--prompt", "the cat", "-n", "12", "--greedy",
                     "--include-prompt")
    assert out == "the cat " + expected + "\n"


def test_generate_demo_model_greedy(capsys, demo_model: Path) -> None:
    rc, out, err = run(capsys, "generate", demo_model, "--prompt", DEMO_PROMPT, "-n", "32", "--greedy")
    assert rc == 0, err
    assert out.startswith(DEMO_CONTINUATION)


@pytest.mark.parametrize("options", [["--temperature", "0.7"], ["--top-k", "3"], ["--top-p", "0.8"],
                                     ["--temperature", "1.3", "--top-k", "5", "--top-p", "0.9"]])
def test_generate_sampling_with_seed_is_repeatable(capsys, tiny_model: Path, options: list[str]) -> None:
    argv = ["generate", tiny_model, "--prompt", "the", "-n", "15", "--no-stop", "--num-samples", "4", *options]
    rc, first, err = run(capsys, *argv, "--seed", "3")
    assert rc == 0, err
    samples = first.split(f"\n{SAMPLE_SEPARATOR}\n") if SAMPLE_SEPARATOR in first else first.splitlines()
    assert len(samples) == 4 and all(0 < len(s.split()) <= 15 for s in samples)  # <eos>: a line break
    assert "<eos>" not in first
    assert run(capsys, *argv, "--seed", "3")[1] == first
    assert run(capsys, *argv, "--seed", "4")[1] != first


def test_generate_sentences(capsys, tiny_model: Path) -> None:
    rc, out, err = run(capsys, "generate", tiny_model, "--sentence", "--min-length", "3", "-n", "20",
                       "--num-samples", "5", "--seed", "1")
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 5
    for line in lines:
        words = line.split()
        assert len(words) >= 3 and "<unk>" not in words and "<eos>" not in words


def test_evaluate_prints_ppl_and_json(capsys, tmp_path: Path, tiny_model: Path) -> None:
    valid = tiny_model.parent / "valid.txt"
    json_file = tmp_path / "metrics.json"
    rc, out, err = run(capsys, "evaluate", tiny_model, "--data", valid, "--json", json_file)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[1].split()[0] == "ppl"
    record = json.loads(lines[-1])
    expected = rnnkit.load(tiny_model).evaluate(valid)
    assert record["ppl"] == pytest.approx(expected["ppl"], rel=1e-9)
    assert float(lines[1].split()[1]) == pytest.approx(expected["ppl"], abs=1e-4)
    assert record["data"] == str(valid) and record["model"] == str(tiny_model)
    assert json.loads(json_file.read_text(encoding="utf-8")) == record
    results = json.loads((tiny_model / "results.json").read_text(encoding="utf-8"))
    assert record["loss"] == pytest.approx(results["valid"]["loss"], rel=1e-9)  # the figure training reported


def test_evaluate_scores_the_whole_file_not_the_training_slice(capsys, tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "sliced"  # trained on the first 20 of the corpus's 60 lines
    rc, _, err = run(capsys, "train", "lm", "--data", corpus, "--out", out,
                     *sets(*TINY, "train.max_steps=2", "data.max_lines=20", "data.valid_fraction=0.2",
                          "data.mode=sentences", "data.max_length=7"))  # every token scored (a stream
    # drops a remainder); training keeps sentences of at most 7 tokens, evaluation scores the longer ones too
    assert rc == 0, err
    lines = corpus.read_text(encoding="utf-8").splitlines()
    every_token = sum(len(line.split()) + 1 for line in lines)  # words and <eos>
    for extra, expected in (([], every_token), (["--max-lines", "10"], sum(len(x.split()) + 1 for x in lines[:10]))):
        rc, stdout, err = run(capsys, "evaluate", out, "--data", corpus, *extra)
        assert rc == 0, err
        assert json.loads(stdout.splitlines()[-1])["tokens"] == expected


@pytest.mark.parametrize("batch_size", [1, 3, 10])
def test_evaluate_in_stream_mode_scores_every_token(capsys, tmp_path: Path, tiny_model: Path,
                                                    batch_size: int) -> None:
    """A stream of N tokens has N - 1 targets (the first token has no context); none is left out when the
    text does not fill the batch's columns, in either backend."""
    lines = ["the cat sees the ball .", "a dog likes some cheese .", "the bird finds the tree"]
    text = write_lines(tmp_path / "t.txt", lines)
    records = []
    for backend in ("torch", "numpy"):
        rc, stdout, err = run(capsys, "evaluate", tiny_model, "--data", text, "--batch-size", batch_size,
                              "--backend", backend)
        assert rc == 0, err
        records.append(json.loads(stdout.splitlines()[-1]))
    assert records[0]["tokens"] == records[1]["tokens"] == sum(len(x.split()) + 1 for x in lines) - 1
    assert records[0]["loss"] == pytest.approx(records[1]["loss"], rel=1e-6)


def test_evaluate_reports_and_warns_about_tokens_outside_the_vocabulary(capsys, tmp_path: Path,
                                                                         tiny_model: Path) -> None:
    text = write_lines(tmp_path / "zoo.txt", ["the zebra sees the unicorn .", "the cat sees the ball ."])
    json_file = tmp_path / "m.json"
    rc, stdout, err = run(capsys, "evaluate", tiny_model, "--data", text, "--json", json_file)
    assert rc == 0, err
    record = json.loads(stdout.splitlines()[-1])
    assert (record["oov"], record["oov_rate"]) == (2, pytest.approx(2 / 12))  # 12 words; <eos> not counted
    assert type(record["oov"]) is type(record["tokens"]) is int  # counts, as metrics.COUNTS says: 2, not 2.0
    assert json.loads(json_file.read_text(encoding="utf-8"))["oov"] == 2
    assert "     oov  2" in stdout
    assert err == (f"warning: {text}: 2 of 12 tokens (16.7%) are not in the model's vocabulary of 25 and are "
                   "scored as <unk> (check the file, the tokenizer and tokenizer.lowercase)\n")
    known = write_lines(tmp_path / "known.txt", ["the cat sees the ball ."] * 3)
    rc, stdout, err = run(capsys, "evaluate", tiny_model, "--data", known)
    assert rc == 0 and err == "" and json.loads(stdout.splitlines()[-1])["oov_rate"] == 0.0
    # the LM's rule is 5% (a perplexity scores <unk>, an easy guess), not the classifier's 10%: 1 of 20 is quiet
    at_limit = write_lines(tmp_path / "five.txt", ["the cat sees the ball ."] * 3 + ["the zebra"])
    assert OOV_WARN_RATE == 0.05 and run(capsys, "evaluate", tiny_model, "--data", at_limit)[::2] == (0, "")
    above = write_lines(tmp_path / "above.txt", ["the cat sees the ball ."] * 3 + ["zebra"])  # 1 of 19: 5.3%
    assert run(capsys, "evaluate", tiny_model, "--data", above)[2].startswith(
        f"warning: {above}: 1 of 19 tokens (5.3%) are not in the model's vocabulary of 25 and are scored as <unk>")


def test_training_warns_when_the_validation_text_is_mostly_unknown(capsys, tmp_path: Path, corpus: Path) -> None:
    valid = write_lines(tmp_path / "v.txt", ["la souris voit le chat ."] * 4)
    rc, _, err = run(capsys, "train", "lm", "--data", corpus, "--valid", valid, "--out", tmp_path / "m",
                     *sets(*TINY, "train.max_steps=1"))
    assert rc == 0, err
    assert f"warning: {valid}: 20 of 24 tokens (83.3%) are not in the model's vocabulary" in err


def test_lm_fine_tuning_on_the_init_models_vocabulary_warns_about_its_unknown_share_before_training(
        capsys, monkeypatch, tmp_path: Path, tiny_model: Path) -> None:
    """A same-task --init-from keeps the source's vocabulary (ULMFiT's stage 2): the training and validation texts'
    words it lacks are trained and scored as <unk>. Said once, before training, as evaluate says it, with the way
    out; --init-partial (a vocabulary built from this text) has nothing to say."""
    trainer = sys.modules["rnnkit.train"]
    before_training, fit = [], trainer.Trainer.fit

    def fit_after_the_warnings(self):
        before_training.append(capsys.readouterr().err)
        return fit(self)

    monkeypatch.setattr(trainer.Trainer, "fit", fit_after_the_warnings)
    known, new = "the cat sees the ball .", "the zebra sees the unicorn ."  # 6 tokens; 2 the model lacks
    text = write_lines(tmp_path / "task.txt", [known] * 8 + [new] * 4)  # 8 of 72 tokens unknown
    valid = write_lines(tmp_path / "task_valid.txt", [known, new] * 2)  # 4 of 24
    rc, _, after = run(capsys, "train", "lm", "--init-from", tiny_model, "--data", text, "--valid", valid, "--out",
                       tmp_path / "fine", *sets(*TINY, "train.max_steps=2"))
    assert rc == 0 and len(before_training) == 1, after
    way_out = ("(the run keeps the --init-from model's vocabulary; --init-partial builds one from the training text "
               "and copies the rows of the tokens both hold)")
    assert before_training[0].splitlines() == [
        f"warning: {text}: 8 of 72 tokens (11.1%) are not in the model's vocabulary of 25 and are trained as <unk> "
        f"{way_out}",
        f"warning: {valid}: 4 of 24 tokens (16.7%) are not in the model's vocabulary of 25 and are scored as <unk> "
        f"{way_out}"]
    assert "warning" not in after
    before_training.clear()  # no --valid: the file's last line validates, and the warning counts the whole file
    rc, _, after = run(capsys, "train", "lm", "--init-from", tiny_model, "--data", text, "--out", tmp_path / "held",
                       *sets(*TINY, "train.max_steps=2"))
    assert rc == 0 and before_training[0].splitlines() == [
        f"warning: {text}: 8 of 72 tokens (11.1%) are not in the model's vocabulary of 25 and are trained as <unk> "
        f"{way_out}"]
    before_training.clear()
    rc, _, after = run(capsys, "train", "lm", "--init-from", tiny_model, "--init-partial", "--data", text, "--valid",
                       valid, "--out", tmp_path / "partial", *sets(*TINY, "train.max_steps=2"))
    assert rc == 0 and "warning" not in before_training[0] + after


def test_demo_command(capsys, monkeypatch, tmp_path: Path) -> None:
    """The demo's wiring and report (its learning is test_train's demo test); shortened to 40 updates."""
    real_train = rnnkit.train

    def short_train(*args, overrides=(), **kwargs):
        return real_train(*args, overrides=[*overrides, "train.max_steps=40"], **kwargs)

    monkeypatch.setattr(rnnkit, "train", short_train)
    out = tmp_path / "demo"
    for _ in range(2):  # a second run replaces the first model directory
        rc, stdout, err = run(capsys, "demo", "--out", out)
        assert rc == 0, err
        assert "greedy:" in stdout and "sampled (T=0.8):" in stdout and "perplexity on the fable" in stdout
        assert int(read_log(out)[-1]["step"]) == 40
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.txt").write_text("keep me", encoding="utf-8")
    rc, _, err = run(capsys, "demo", "--out", tmp_path / "precious")
    assert rc == 2 and "has no rnnkit.json, so rnnkit did not make it" in err
    assert (tmp_path / "precious" / "thesis.txt").read_text(encoding="utf-8") == "keep me"
    # a config naming the fable does not make a folder the demo's (only the demo's marker does)
    shutil.copy(out / "config.yaml", tmp_path / "precious" / "config.yaml")
    rc, _, err = run(capsys, "demo", "--out", tmp_path / "precious")
    assert rc == 2 and "has no rnnkit.json" in err
    assert sorted(p.name for p in (tmp_path / "precious").iterdir()) == ["config.yaml", "thesis.txt"]


def test_resume_and_init_from_commands(capsys, tmp_path: Path, corpus: Path, tiny_model: Path) -> None:
    out = tmp_path / "model"
    rc, _, err = run(capsys, "train", "lm", "--data", corpus, "--out", out, *sets(*TINY, "train.max_steps=4"))
    assert rc == 0, err
    rc, _, err = run(capsys, "train", "lm", "--out", out, "--resume", *sets("train.max_steps=6"))
    assert rc == 0, err
    assert [int(r["step"]) for r in read_log(out) if r["split"] == "train"] == list(range(1, 7))
    fine = ["train", "lm", "--data", corpus, "--out", tmp_path / "fine", "--init-from", tiny_model,
            *sets(*TINY, "train.max_steps=2")]
    rc, _, err = run(capsys, *fine)
    assert rc == 0, err
    assert (tmp_path / "fine" / "vocab.json").read_text() == (tiny_model / "vocab.json").read_text()
    # the same command with --resume goes on from the run's checkpoint; its --init-from is accepted, not read again
    rc, printed, err = run(capsys, *fine, "--resume", *sets("train.max_steps=3"))
    assert rc == 0, err
    assert "resuming" in printed and "--init-from" not in printed  # no weights copied: no transfer report
    assert [int(r["step"]) for r in read_log(tmp_path / "fine") if r["split"] == "train"] == [1, 2, 3]
    rc, _, err = run(capsys, *fine, "--init-partial", "--resume")
    assert rc == 2 and f"which started from `--init-from {tiny_model.resolve()}`, not `--init-from " in err
    rc, _, err = run(capsys, "train", "lm", "--out", out, "--resume", "--init-from", tiny_model)
    assert rc == 2 and "--resume continues this run, which records no --init-from" in err


def test_an_init_from_run_stopped_before_its_first_checkpoint_resumes_from_the_init_weights(
        capsys, monkeypatch, tmp_path: Path, corpus: Path, tiny_model: Path) -> None:
    """A kill before the step-0 checkpoint leaves rnnkit.json (with the --init-from options), config.yaml and the
    vocabulary: --resume applies the recorded init again, and the run equals one that was not stopped."""
    from rnnkit.train import Trainer

    fine = ["train", "lm", "--data", corpus, "--init-from", tiny_model, *sets(*TINY, "train.max_steps=2")]
    rc, _, err = run(capsys, *fine, "--out", tmp_path / "whole")
    assert rc == 0, err

    def killed(self) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(Trainer, "save_checkpoint", killed)  # Ctrl-C just before the step-0 checkpoint is written
        rc, _, err = run(capsys, *fine, "--out", tmp_path / "stopped")
    assert rc == 130, err
    assert sorted(p.name for p in (tmp_path / "stopped").iterdir()) == ["config.yaml", "rnnkit.json", "rnnkit.lock",
                                                                         "tokenizer.json", "vocab.json"]
    rc, printed, err = run(capsys, "train", "lm", "--out", tmp_path / "stopped", "--resume")
    assert rc == 0, err
    assert f"--init-from {tiny_model.resolve()}" in printed and "starting it from the beginning" in printed
    assert_same_run(tmp_path / "stopped", tmp_path / "whole")
    # the source changed since the run started (or is gone): one error, not a different run
    shutil.copytree(tiny_model, tmp_path / "source")
    with monkeypatch.context() as patched:
        patched.setattr(Trainer, "save_checkpoint", killed)
        assert run(capsys, *fine[:5], tmp_path / "source", *fine[6:], "--out", tmp_path / "again")[0] == 130
    os.utime(tmp_path / "source" / "model.safetensors", (2e9, 2e9))
    rc, _, err = run(capsys, "train", "lm", "--out", tmp_path / "again", "--resume")
    assert rc == 2 and "changed since this run started" in err, err
    shutil.rmtree(tmp_path / "source")
    rc, _, err = run(capsys, "train", "lm", "--out", tmp_path / "again", "--resume")
    assert rc == 2 and "is missing" in err and "--overwrite" in err, err


@pytest.mark.parametrize("verb", ["train", "generate", "classify"])
def test_output_into_a_closed_pipe_stops_quietly(tmp_path: Path, corpus: Path, tiny_model: Path, verb: str) -> None:
    """`rnnkit VERB ... | head`: when the reader has gone, no BrokenPipeError traceback, SIGPIPE's exit status."""
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": f"{w} film", "label": w}) + "\n" for w in ["good", "bad"] * 8))
    if verb == "classify":
        rnnkit.train("classify", data=str(texts), out=tmp_path / "cls",
                     overrides=["model.embedding_size=4", "model.hidden_size=4", "train.epochs=1", "train.device=cpu",
                                "train.progress=false"])
    argv = {"train": ["train", "lm", "--data", corpus, "--out", tmp_path / "lm", *sets(*TINY, "train.progress=true")],
            "generate": ["generate", tiny_model, "--prompt", "the cat", "-n", "50", "--seed", "1"],
            "classify": ["classify", tmp_path / "cls", "--input", texts]}[verb]
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit", *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(Path(rnnkit.__file__).parents[1])})
    proc.stdout.close()  # no reader left: the first line rnnkit prints meets a broken pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_ctrl_c_in_any_command_is_one_line_not_a_traceback(monkeypatch, capsys) -> None:
    """Ctrl-C in a command with nothing to resume (reading a big --input, decoding): "interrupted", exit 130."""
    def interrupted(args) -> int:
        raise KeyboardInterrupt

    monkeypatch.setitem(COMMANDS, "recipes", interrupted)
    assert main(["recipes"]) == 130
    assert capsys.readouterr().err == "\ninterrupted\n"


# torch's import as review3 (8a) found it: a KeyboardInterrupt raised inside its C init is swallowed (SIGTERM's
# exception there, review4 finding 6, also left torch half-initialized: a segfault, a RecursionError)
SWALLOWING_TORCH = """
import os, signal, sys, time

class SwallowingImport:
    def find_spec(self, name, path, target=None):
        if name == "torch":  # the signal arrives while torch is imported, and torch's init loses its exception
            try:
                os.kill(os.getpid(), int(os.environ["RNNKIT_TEST_SIGNAL"]))
                time.sleep(0.1)
            except BaseException:
                pass
        return None

sys.meta_path.insert(0, SwallowingImport())
from rnnkit.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_while_torch_is_imported_stops_the_run_before_it_writes(tmp_path: Path, corpus: Path) -> None:
    """A Ctrl-C in the first seconds of `rnnkit train` (torch's import) exits 130 with "interrupted", nothing
    written; without it held, the run trained to the end and exited 0."""
    out = tmp_path / "m"
    proc = signalled_in_torch_import(signal.SIGINT, tmp_path, "train", "lm", "--data", str(corpus), "--out", str(out),
                                     *sets(*TINY, "train.max_steps=2"))
    assert proc.returncode == 130 and "interrupted before anything was written" in proc.stderr, proc.stderr
    assert not out.exists()


def signalled_in_torch_import(signum: int, cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SWALLOWING_TORCH, *argv], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(Path(rnnkit.__file__).parents[1]),
                               "RNNKIT_TEST_SIGNAL": str(int(signum))}, timeout=120)


@pytest.mark.parametrize("command", ["train", "generate"])
def test_sigterm_while_torch_is_imported_says_terminated(tmp_path: Path, corpus: Path, command: str) -> None:
    """Review 4, finding 6: SIGTERM in the first second of a command that imports torch exits 143 with
    "terminated", nothing written (the run trained to the end; generate went on to read the model)."""
    out = tmp_path / "m"
    argv = (["train", "lm", "--data", str(corpus), "--out", str(out), *sets(*TINY, "train.max_steps=2")]
            if command == "train" else ["generate", str(out)])
    proc = signalled_in_torch_import(signal.SIGTERM, tmp_path, *argv)
    assert (proc.returncode, proc.stderr) == (143, "terminated\n"), proc.stderr
    assert not out.exists()

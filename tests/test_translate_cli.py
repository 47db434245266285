"""CLI smoke tests of the seq2seq verbs: train seq2seq (a toy recipe, tiny), translate (TEXT, --input /
--output, stdin as it comes, --n-best, --attention-plot, refusals), evaluate (--data pairs, --src / --ref,
JSON) and the data toy -> train -> evaluate pipeline. Tiny models: learning is tests/test_seq2seq_learning.py's."""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rnnkit
from conftest import TINY, corpus_lines, write_lines
from rnnkit.cli import main
from rnnkit.config import list_recipes, load_config, recipe_dir
from rnnkit.models.seq2seq import Seq2SeqModel

pytestmark = pytest.mark.usefixtures("no_curves")

SRC = str(Path(rnnkit.__file__).resolve().parents[1])
#: a seq2seq model that trains 10 updates in well under a second
TINY_S2S = ["model.src_embedding_size=8", "model.trg_embedding_size=8", "model.hidden_size=16",
            "train.batch_size=16", "train.eval_batch_size=64", "train.epochs=1", "train.max_steps=10",
            "train.log_every=5", "train.progress=false", "train.device=cpu", "train.threads=1"]


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def sets(*overrides: str) -> list[str]:
    return [a for s in overrides for a in ("--set", s)]


def quiet_main(*argv) -> None:
    """``main`` in a module fixture (no capsys there): it must succeed."""
    assert main([str(a) for a in argv]) == 0


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("toy")
    quiet_main("data", "toy", "reverse", "--out", folder, "--n", "200", "--seed", "1")
    return folder


@pytest.fixture(scope="module")
def attention_model(tmp_path_factory, toy_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("s2s") / "attention"
    quiet_main("train", "seq2seq", "--recipe", "toy-attention", "--data", toy_dir / "train.tsv", "--valid",
               toy_dir / "valid.tsv", "--out", out, *sets(*TINY_S2S, "data.max_src_length=10"))
    return out


@pytest.fixture(scope="module")
def state_model(tmp_path_factory, toy_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("s2s") / "state"
    quiet_main("train", "seq2seq", "--recipe", "toy-state", "--data", toy_dir / "train.tsv", "--valid",
               toy_dir / "valid.tsv", "--out", out, *sets(*TINY_S2S, "train.max_steps=2"))
    return out


@pytest.fixture(scope="module")
def lm_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("lm")
    corpus = write_lines(folder / "train.txt", corpus_lines(40))
    out = folder / "model"
    quiet_main("train", "lm", "--data", corpus, "--out", out, *sets(*TINY, "train.max_steps=2"))
    return out


def sources(toy_dir: Path, split: str = "test", n: int = 5) -> list[str]:
    lines = (toy_dir / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[0] for line in lines[:n]]


# ------------------------------------------------------------------------------------------ recipes
SEQ2SEQ_RECIPES = {"seed-000", "toy-repeat", "toy-state", "toy-peek", "toy-attention", "fra-eng-attention",
                   "multi30k-de-en", "headline-zh"}


def test_every_seq2seq_recipe_loads_and_builds_its_model() -> None:
    assert SEQ2SEQ_RECIPES <= set(list_recipes())
    for name in SEQ2SEQ_RECIPES:
        cfg = load_config(name)
        assert cfg.task == "seq2seq", name
        cfg.model.check()
        cfg.train.check()
        assert cfg.data.toy or "Use with: --data " in (recipe_dir() / f"{name}.yaml").read_text(encoding="utf-8")
        model = Seq2SeqModel(cfg.model, 12, 14)
        assert sum(p.numel() for p in model.parameters()) > 0, name


def test_train_a_toy_recipe_without_data_generates_it(capsys, tmp_path: Path) -> None:
    out = tmp_path / "m"
    rc, stdout, stderr = run(capsys, "train", "seq2seq", "--recipe", "toy-peek", "--out", out,
                             *sets(*TINY_S2S, "data.toy_size=100", "train.max_steps=3"))
    assert rc == 0, stderr
    assert f"model saved in {out}" in stdout
    assert "valid: " in stdout and "test: " in stdout and "bleu" in stdout  # the toy's test split is scored
    assert rnnkit.load(out).config.model.decoder == "peek"


# ------------------------------------------------------------------------------------------ translate
def test_translate_text_arguments_matches_the_api(capsys, attention_model: Path, toy_dir: Path) -> None:
    texts = sources(toy_dir, n=3)
    rc, out, err = run(capsys, "translate", attention_model, *texts)
    assert rc == 0, err
    assert out.splitlines() == rnnkit.load(attention_model).translate(texts)
    rc, beam, err = run(capsys, "translate", attention_model, texts[0], "--beam", "3", *texts[1:], "--alpha", "0")
    assert rc == 0, err
    assert beam.splitlines() == rnnkit.load(attention_model).translate(texts, beam=3, alpha=0.0)


def test_translate_input_to_output_file(capsys, attention_model: Path, toy_dir: Path, tmp_path: Path) -> None:
    texts = sources(toy_dir, "train", n=40)
    src = write_lines(tmp_path / "src.txt", texts)
    hyp = tmp_path / "hyp.txt"
    rc, out, err = run(capsys, "translate", attention_model, "--input", src, "--output", hyp, "--batch-size", "7")
    assert rc == 0, err
    assert out == ""
    assert f"40 line(s) translated into {hyp}" in err
    assert hyp.read_text(encoding="utf-8").splitlines() == rnnkit.load(attention_model).translate(texts)


def test_translate_input_to_stdout_in_chunks_keeps_the_order(capsys, attention_model: Path, toy_dir: Path,
                                                             tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("rnnkit.cli.TRANSLATE_CHUNK_BATCHES", 1)  # 40 lines in calls of 3: 14 chunks
    texts = sources(toy_dir, "train", n=40)
    src = write_lines(tmp_path / "src.txt", texts)
    rc, out, err = run(capsys, "translate", attention_model, "--input", src, "--batch-size", "3")
    assert rc == 0, err
    assert out.splitlines() == rnnkit.load(attention_model).translate(texts)


def test_translate_stdin_line_by_line(capsys, attention_model: Path, toy_dir: Path, monkeypatch) -> None:
    texts = sources(toy_dir, n=4)
    monkeypatch.setattr(sys, "stdin", _Stdin(("\n".join(texts) + "\n").encode()))
    rc, out, err = run(capsys, "translate", attention_model)
    assert rc == 0, err
    assert out.splitlines() == rnnkit.load(attention_model).translate(texts)


class _Stdin:
    """Standard input holding ``data`` (the CLI reads its bytes: ``sys.stdin.buffer``)."""

    def __init__(self, data: bytes):
        self.buffer = io.BytesIO(data)


def test_translate_stdin_answers_each_line_before_the_next_arrives(attention_model: Path, toy_dir: Path) -> None:
    """A real pipe: the translation of a line comes back while the input stays open (interactive use)."""
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit", "translate", str(attention_model)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        answers = []
        for text in sources(toy_dir, n=2):
            proc.stdin.write(text.encode() + b"\n")
            proc.stdin.flush()
            answers.append(_read_line(proc, timeout=60))
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        proc.kill()
    assert answers == rnnkit.load(attention_model).translate(sources(toy_dir, n=2))


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while not select.select([proc.stdout], [], [], 0.2)[0]:
        assert time.monotonic() < deadline and proc.poll() is None, "no translation while stdin stays open"
    return proc.stdout.readline().decode().rstrip("\n")


def test_translate_n_best_prints_k_lines_per_input(capsys, attention_model: Path, toy_dir: Path) -> None:
    texts = sources(toy_dir, n=3)
    rc, out, err = run(capsys, "translate", attention_model, *texts, "--beam", "4", "--n-best", "3")
    assert rc == 0, err
    rows = [line.split("\t") for line in out.splitlines()]
    assert [int(r[0]) for r in rows] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    expected = rnnkit.load(attention_model).translate(texts, beam=4, n_best=3)
    assert [[r[-1] for r in rows[i * 3:(i + 1) * 3]] for i in range(3)] == expected


def test_translate_sampling_is_repeatable_with_a_seed(capsys, attention_model: Path, toy_dir: Path) -> None:
    argv = ["translate", attention_model, *sources(toy_dir, n=5), "--temperature", "1.5", "--top-k", "5"]
    first = run(capsys, *argv, "--seed", "1")
    assert first[0] == 0, first[2]
    assert run(capsys, *argv, "--seed", "1")[1] == first[1]


def test_translate_counts_unknown_source_tokens(capsys, attention_model: Path) -> None:
    rc, out, err = run(capsys, "translate", attention_model, "1 2 x y 3", "4 x")
    assert rc == 0, err
    assert len(out.splitlines()) == 2
    assert "3 source token(s) not in the model's vocabulary were read as <unk>" in err


def test_translate_attention_plot_writes_a_png(capsys, attention_model: Path, toy_dir: Path, tmp_path: Path) -> None:
    png = tmp_path / "attention.png"
    rc, out, err = run(capsys, "translate", attention_model, *sources(toy_dir, n=2), "--attention-plot", png)
    assert rc == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(out.splitlines()) == 2 and str(png) in err


def test_plot_attention_checks_its_shape_and_says_when_glyphs_are_missing(tmp_path: Path) -> None:
    from rnnkit.plotting import _label_fonts, plot_attention

    assert plot_attention(["1", "2", "3"], ["3", "<eos>"], [[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]], tmp_path / "a.png")
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="weights must be len\\(output\\) x len\\(source\\) = 2 x 3"):
        plot_attention(["1", "2", "3"], ["3", "<eos>"], [[1.0, 0.0, 0.0]], tmp_path / "b.png")
    if len(_label_fonts()) == 1:  # no CJK font installed: the Chinese labels are boxes, and it says so
        assert not plot_attention(["中央", "气象台"], ["暴雨"], [[0.4, 0.6]], tmp_path / "c.png")


def test_translate_refuses_a_model_of_another_task_and_generate_a_seq2seq_model(capsys, attention_model: Path,
                                                                                 lm_model: Path) -> None:
    rc, out, err = run(capsys, "translate", lm_model, "the cat")
    assert rc == 2 and out == ""
    assert err == f"error: {lm_model}: is an lm model: it does not translate (its command is rnnkit generate)\n"
    rc, out, err = run(capsys, "generate", attention_model, "--prompt", "1 2")
    assert rc == 2 and out == ""
    assert err == (f"error: {attention_model}: is a seq2seq model: it does not generate (its command is rnnkit "
                   "translate)\n")


def test_translate_attention_plot_skips_blank_lines(capsys, attention_model: Path, tmp_path: Path,
                                                     monkeypatch) -> None:
    png = tmp_path / "a.png"
    monkeypatch.setattr(sys, "stdin", _Stdin(b"\n1 2 3\n"))
    rc, out, err = run(capsys, "translate", attention_model, "--attention-plot", png)
    assert rc == 0, err
    assert out.splitlines()[0] == "" and len(out.splitlines()) == 2 and png.is_file()
    monkeypatch.setattr(sys, "stdin", _Stdin(b"\n"))
    rc, out, err = run(capsys, "translate", attention_model, "--attention-plot", tmp_path / "b.png")
    assert rc == 0 and out == "\n" and not (tmp_path / "b.png").exists()
    assert "b.png was not drawn: no input line had a sentence" in err


def test_translate_attention_plot_of_a_model_without_attention(capsys, state_model: Path, tmp_path: Path) -> None:
    png = tmp_path / "a.png"
    rc, out, err = run(capsys, "translate", state_model, "1 2 3", "--attention-plot", png)
    assert rc == 2 and out == "" and not png.exists()
    assert err.startswith("error: ") and "attention" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("case", ["text-and-input", "output-symlink", "output-folder", "plot-in-missing-folder",
                                  "output-is-the-input"])
def test_translate_refusals(capsys, attention_model: Path, tmp_path: Path, case: str) -> None:
    src = write_lines(tmp_path / "src.txt", ["1 2 3"])
    (tmp_path / "target.txt").write_text("keep me\n", encoding="utf-8")
    os.symlink(tmp_path / "target.txt", tmp_path / "link.txt")
    argv, message = {
        "text-and-input": (["1 2", "--input", src], "TEXT arguments or as --input FILE, not both"),
        "output-symlink": (["--input", src, "--output", tmp_path / "link.txt"],
                           f"{tmp_path / 'link.txt'}: --output names a symbolic link"),
        "output-folder": (["--input", src, "--output", tmp_path], f"{tmp_path}: --output names a folder"),
        "plot-in-missing-folder": (["1 2", "--attention-plot", tmp_path / "no" / "a.png"],
                                   "--attention-plot: " + str(tmp_path / "no") + " does not exist"),
        "output-is-the-input": (["--input", src, "--output", tmp_path / "." / "src.txt"],
                                "--output names the --input file"),
    }[case]
    rc, out, err = run(capsys, "translate", attention_model, *argv)
    assert rc == 2 and out == ""
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1, err
    assert (tmp_path / "target.txt").read_text(encoding="utf-8") == "keep me\n"
    assert src.read_text(encoding="utf-8") == "1 2 3\n"


def test_translate_interrupted_writes_no_output_file(capsys, attention_model: Path, tmp_path: Path,
                                                     monkeypatch) -> None:
    loaded_class = type(rnnkit.load(attention_model))
    translate = loaded_class.translate

    def interrupted(self, texts, **options):
        if texts:  # Ctrl-C while the first lines are translated (the options' check passes)
            raise KeyboardInterrupt
        return translate(self, texts, **options)

    monkeypatch.setattr(loaded_class, "translate", interrupted)
    src = write_lines(tmp_path / "src.txt", ["1 2 3", "4 5 6"])
    hyp = tmp_path / "hyp.txt"
    rc, out, err = run(capsys, "translate", attention_model, "--input", src, "--output", hyp)
    assert rc == 130
    assert f"interrupted: {hyp} was not written (0 of 2 line(s) were translated)" in err
    assert not hyp.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["src.txt"]


def test_translate_stdin_not_utf8_names_the_line(capsys, attention_model: Path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdin", _Stdin(b"1 2 3\n4 \xff 5\n"))
    rc, out, err = run(capsys, "translate", attention_model)
    assert rc == 2
    assert len(out.splitlines()) == 1  # the first line was answered before the second arrived
    assert err == "error: <stdin>:2: not UTF-8 (invalid byte at column 3)\n"


def test_translate_over_long_input_names_its_line_in_any_chunk(capsys, attention_model: Path, tmp_path: Path,
                                                                monkeypatch) -> None:
    """The model was trained with data.max_src_length 10: line 5 of the file is over it."""
    monkeypatch.setattr("rnnkit.cli.TRANSLATE_CHUNK_BATCHES", 1)  # calls of 2 lines: line 5 is the third's first
    lines = ["1 2", "3 4", "5 6", "7 8", " ".join("123456789012"), "9 0"]
    src = write_lines(tmp_path / "src.txt", lines)
    hyp = tmp_path / "hyp.txt"
    rc, out, err = run(capsys, "translate", attention_model, "--input", src, "--output", hyp, "--batch-size", "2")
    assert rc == 2 and out == "" and not hyp.exists()
    assert err == (f"error: {src}:5: 12 tokens, more than the model's limit of 10 (data.max_src_length): shorten "
                   "it, or truncate it (--truncate)\n")
    rc, out, err = run(capsys, "translate", attention_model, "--input", src, "--output", hyp, "--batch-size", "2",
                       "--truncate")
    assert rc == 0, err
    assert f"warning: {src}:5: 12 tokens cut to the model's limit of 10" in err
    assert len(hyp.read_text(encoding="utf-8").splitlines()) == 6
    monkeypatch.setattr(sys, "stdin", _Stdin(("\n".join(lines) + "\n").encode()))
    rc, out, err = run(capsys, "translate", attention_model)
    assert rc == 2 and len(out.splitlines()) == 4  # the lines before it were answered
    assert err.startswith("error: <stdin>:5: 12 tokens, more than the model's limit of 10")
    rc, out, err = run(capsys, "translate", attention_model, "1 2", " ".join("123456789012"))
    assert rc == 2 and err.startswith("error: input line 2: 12 tokens")


# ------------------------------------------------------------------------------------------ evaluate
def test_evaluate_pairs_prints_metrics_signatures_and_json(capsys, attention_model: Path, toy_dir: Path,
                                                          tmp_path: Path) -> None:
    json_file = tmp_path / "metrics.json"
    rc, out, err = run(capsys, "evaluate", attention_model, "--data", toy_dir / "test.tsv", "--json", json_file)
    assert rc == 0, err
    lines = out.splitlines()
    record = json.loads(lines[-1])
    for metric in ("bleu", "chrf", "token_accuracy", "exact_match", "loss", "ppl"):
        assert any(line.split()[0] == metric for line in lines[:-1]), metric
        assert isinstance(record[metric], float)
    assert any(line.split()[:2] == ["bleu", "signature"] and "nrefs:1|" in line for line in lines)
    assert record["signatures"]["bleu"].startswith("nrefs:1|")
    assert record["data"] == str(toy_dir / "test.tsv") and record["sentences"] == 20
    assert json.loads(json_file.read_text(encoding="utf-8")) == record


def test_evaluate_src_ref_equals_pairs_and_takes_a_beam(capsys, attention_model: Path, toy_dir: Path,
                                                       tmp_path: Path) -> None:
    pairs = [line.split("\t") for line in (toy_dir / "test.tsv").read_text(encoding="utf-8").splitlines()]
    src = write_lines(tmp_path / "test.src", [p[0] for p in pairs])
    ref = write_lines(tmp_path / "test.ref", [p[1] for p in pairs])
    rc, out, err = run(capsys, "evaluate", attention_model, "--src", src, "--ref", ref)
    assert rc == 0, err
    by_files = json.loads(out.splitlines()[-1])
    by_pairs = json.loads(run(capsys, "evaluate", attention_model, "--data", toy_dir / "test.tsv")[1].splitlines()[-1])
    for metric in ("bleu", "chrf", "exact_match", "loss"):
        assert by_files[metric] == by_pairs[metric], metric
    assert by_files["src"] == str(src) and by_files["ref"] == str(ref) and by_files["data"] is None
    rc, out, err = run(capsys, "evaluate", attention_model, "--src", src, "--ref", ref, "--beam", "3")
    assert rc == 0, err
    assert json.loads(out.splitlines()[-1])["beam"] == 3


def test_evaluate_without_data_is_one_error(capsys, attention_model: Path) -> None:
    rc, out, err = run(capsys, "evaluate", attention_model)
    assert rc == 2 and out == ""
    assert err.startswith("error: the following arguments are required: --data")


def test_evaluate_an_lm_refuses_seq2seq_options(capsys, lm_model: Path, tmp_path: Path) -> None:
    src = write_lines(tmp_path / "a.txt", ["the cat"])
    rc, out, err = run(capsys, "evaluate", lm_model, "--src", src, "--ref", src)
    assert rc == 2 and out == ""
    assert "unrecognized arguments: --src" in err and "lm model" in err


# ------------------------------------------------------------------------------------------ pipeline
def test_data_toy_train_evaluate_translate_pipeline(capsys, tmp_path: Path) -> None:
    data = tmp_path / "digits"
    rc, out, err = run(capsys, "data", "toy", "sort", "--out", data, "--n", "100")
    assert rc == 0, err
    model = tmp_path / "model"
    rc, out, err = run(capsys, "train", "seq2seq", "--recipe", "toy-state", "--data", data / "train.tsv",
                       "--valid", data / "valid.tsv", "--test", data / "test.tsv", "--out", model,
                       *sets(*TINY_S2S, "train.max_steps=4"))
    assert rc == 0, err
    assert "test: " in out
    rc, out, err = run(capsys, "evaluate", model, "--data", data / "test.tsv")
    assert rc == 0, err
    assert json.loads(out.splitlines()[-1])["sentences"] == 10
    rc, out, err = run(capsys, "translate", model, "3 1 2")
    assert rc == 0 and len(out.splitlines()) == 1, err

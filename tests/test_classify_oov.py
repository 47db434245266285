"""A classifier says on stderr when its inputs are out of its vocabulary: the share of tokens read as <unk> above
CLASSIFY_OOV_WARN_RATE, and the texts it reads wholly as <unk> (their labels are guesses). Labels, JSON and exit
status stay as they are; a numeric model has no vocabulary and never warns."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from conftest import write_lines
from rnnkit.cli import PROGRESS_MIN_EXAMPLES, main
from rnnkit.data.labelled import Encoded
from rnnkit.data.vocab import CLASSIFY_OOV_WARN_RATE, Vocab, share_above
from test_classify import CLS, order_texts, parity_features, write_jsonl

TINY = [*CLS, "train.epochs=1"]


def _trained(out: Path, data: Path, *overrides: str) -> Path:
    with pytest.MonkeyPatch.context() as patch:  # no curves.png: the tests do not look at it
        patch.setattr(importlib.import_module("rnnkit.train"), "plot_curves", lambda *args, **kwargs: None)
        rnnkit.train("classify", data=str(data), out=out, overrides=[*TINY, "data.valid_fraction=0.2", *overrides])
    return out


@pytest.fixture(scope="module")
def text_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny classifier of the texts of test_classify's order task: its vocabulary is x, y and a-f."""
    root = tmp_path_factory.mktemp("oov")
    return _trained(root / "model", write_jsonl(root / "train.jsonl", order_texts(150, 1)))


@pytest.fixture(scope="module")
def short_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """text_model's task read through its first 3 tokens (data.max_length 3, truncate post)."""
    root = tmp_path_factory.mktemp("oov-short")
    return _trained(root / "model", write_jsonl(root / "train.jsonl", order_texts(150, 1)), "data.max_length=3")


@pytest.fixture(scope="module")
def numeric_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("oov-numeric")
    x, lengths, y = parity_features(100, 1)
    data = root / "train.npz"
    np.savez(data, X=x.transpose(0, 1).numpy(), y=np.array(["even", "odd"])[y.numpy()], lengths=lengths.numpy())
    return _trained(root / "model", data, "model.embedding_size=0"), data


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_encoded_texts_count_their_unk_ids_once() -> None:
    unk = Vocab.unk_id
    data = Encoded([3, 2, 1], None, ids=[[5, unk, 6], [unk, unk], [unk]])
    assert (data.unknown.count.tokens, data.unknown.count.oov, data.unknown.texts) == (6, 4, [1, 2])
    assert data.unknown is data.unknown  # cached: a second warning does not count again


def test_cli_classify_of_an_unknown_text_warns_on_stderr_and_still_labels_it(capsys, text_model: Path) -> None:
    rc, out, err = run(capsys, "classify", text_model, "a x b y", "zebra unicorn")
    assert rc == 0 and out.split() == rnnkit.load(text_model).classify(["a x b y", "zebra unicorn"])
    capsys.readouterr()
    assert err.splitlines() == [
        "warning: <input>: 2 of 6 tokens (33.3%) are not in the model's vocabulary of 12 and are read as <unk> (check "
        "the file, the tokenizer and tokenizer.lowercase)",
        "warning: <input>: 1 of 2 texts has no token in the model's vocabulary (text 2): the model reads only <unk> "
        "there, so its label is a guess"]
    rc, out, err = run(capsys, "classify", text_model, "--probs", "Zebra")  # one text, wholly unknown: both warnings
    assert rc == 0 and set(json.loads(out)["probs"]) == {"xy", "yx"}
    assert "(text 1): the model reads only <unk> there" in err and "1 of 1 token (100.0%)" in err


def test_known_texts_and_a_few_unknown_tokens_give_no_warning(capsys, text_model: Path) -> None:
    assert run(capsys, "classify", text_model, "a x b y", "y c d x")[::2] == (0, "")
    few = " ".join(["a", "x", "b", "y", "c", "d"] * 3) + " zebra lion"  # 2 of 20 tokens: 10%, not above it
    assert CLASSIFY_OOV_WARN_RATE == 0.1 and run(capsys, "classify", text_model, few)[::2] == (0, "")
    rc, _, err = run(capsys, "classify", text_model, few + " tiger")
    assert rc == 0 and err.startswith("warning: <input>: 3 of 21 tokens (14.3%) are not in the model's vocabulary")


def test_cli_classify_input_names_the_unknown_lines_a_few_then_a_count(capsys, tmp_path: Path,
                                                                         text_model: Path) -> None:
    lines = ["a x b y", *[f"lion {k}" for k in range(7)], "c y x"]
    rc, out, err = run(capsys, "classify", text_model, "--input", write_lines(tmp_path / "in.txt", lines))
    assert rc == 0 and len(out.split()) == 9 and set(out.split()) <= {"xy", "yx"}
    path = tmp_path / "in.txt"
    assert err.splitlines() == [
        f"warning: {path}: 14 of 21 tokens (66.7%) are not in the model's vocabulary of 12 and are read as <unk> "
        "(check the file, the tokenizer and tokenizer.lowercase)",
        f"warning: {path}: 7 of 9 texts have no token in the model's vocabulary (lines 2, 3, 4, 5, 6 and 2 more): "
        "the model reads only <unk> there, so their labels are guesses"]


def test_a_folder_of_texts_names_the_unknown_files(capsys, tmp_path: Path, text_model: Path) -> None:
    write_lines(tmp_path / "texts" / "unsup" / "1.txt", ["a x b y"])
    write_lines(tmp_path / "texts" / "unsup" / "2.txt", ["ZEBRA"])  # another case: not the word the model knows
    rc, out, err = run(capsys, "classify", text_model, "--input", tmp_path / "texts")
    assert rc == 0 and out.splitlines()[1].split("\t")[0] == str(tmp_path / "texts" / "unsup" / "2.txt")
    named = out.splitlines()[1].split("\t")[0]  # the warning names the file as the output line does
    assert f"1 of 2 texts has no token in the model's vocabulary ({named})" in err


def test_evaluate_of_a_file_with_many_unknown_tokens_warns_naming_it(capsys, tmp_path: Path, text_model: Path) -> None:
    records = order_texts(20, 3)
    plain = run(capsys, "evaluate", text_model, "--data", write_jsonl(tmp_path / "known.jsonl", records))
    assert plain[0] == 0 and plain[2] == ""
    for r in records[:4]:
        r["text"] = r["text"].upper()  # the model's tokenizer keeps case: X is not x
    data = write_jsonl(tmp_path / "upper.jsonl", records)
    rc, out, err = run(capsys, "evaluate", text_model, "--data", data)
    assert rc == 0 and json.loads(out.splitlines()[-1])["examples"] == 20
    assert err.startswith(f"warning: {data}: ") and "tokens" in err.splitlines()[0]
    assert "4 of 20 texts have no token in the model's vocabulary (lines 1, 2, 3, 4)" in err


def test_the_python_api_warns_on_stderr_as_the_cli(capsys, tmp_path: Path, text_model: Path) -> None:
    model = rnnkit.load(text_model)
    assert model.classify(["a x b y", "y c x"]) and capsys.readouterr().err == ""
    labels = model.classify(["a x b y", "hund katze"])
    err = capsys.readouterr().err
    assert len(labels) == 2 and "warning: <input>: 1 of 2 texts has no token" in err and "(text 2)" in err
    model.classify_file(write_lines(tmp_path / "in.txt", ["a x", "hund"]))
    assert f"warning: {tmp_path / 'in.txt'}: 1 of 2 texts has no token" in capsys.readouterr().err
    data = write_jsonl(tmp_path / "eval.jsonl", [{"text": "hund katze", "label": "xy"}, *order_texts(3, 4)])
    assert model.evaluate(data)["examples"] == 4
    assert f"warning: {data}: 1 of 4 texts has no token in the model's vocabulary (line 1)" in capsys.readouterr().err
    examples = model.read(data, labelled=True)
    assert model.evaluate_examples(examples, warn=False)["oov_texts"] == 1 and capsys.readouterr().err == ""
    with pytest.raises(TypeError, match="warn must be True or False, got str 'no'"):
        model.evaluate_examples(examples, warn="no")  # (a string is true: it would have warned)


def test_a_numeric_model_has_no_vocabulary_and_never_warns(capsys, numeric_model: tuple[Path, Path]) -> None:
    model_dir, data = numeric_model
    rc, out, err = run(capsys, "classify", model_dir, "--input", data)
    assert rc == 0 and len(out.split()) == 100 and err == ""
    assert run(capsys, "evaluate", model_dir, "--data", data)[::2] == (0, "")
    assert len(rnnkit.load(model_dir).classify([np.zeros((3, 1))])) == 1 and capsys.readouterr().err == ""


def test_a_truncating_model_counts_the_part_it_keeps_and_says_so(capsys, short_model: Path) -> None:
    """The kept part of a text all unknown: not "the text has no known token", for its known words come later."""
    rc, out, err = run(capsys, "classify", short_model, "zebra lion tiger a x b y")
    assert rc == 0 and out.split() == rnnkit.load(short_model).classify(["zebra lion tiger"])
    kept = "(data.max_length 3, truncate post)"
    assert err.splitlines() == [
        f"warning: <input>: 3 of 3 tokens (100.0%) of the part of each text the model keeps {kept} are not in the "
        "model's vocabulary of 12 and are read as <unk> (check the file, the tokenizer and tokenizer.lowercase)",
        f"warning: <input>: 1 of 1 text has no token in the model's vocabulary in the part the model keeps {kept} "
        "(text 1): the model reads only <unk> there, so its label is a guess"]
    rc, _, err = run(capsys, "classify", short_model, "zebra", "a x b")  # nothing cut: the plain wording
    assert rc == 0 and "keeps" not in err and "1 of 2 texts has no token in the model's vocabulary (text 1)" in err


def test_the_share_shown_is_never_the_limit_it_is_above(capsys, text_model: Path) -> None:
    assert (share_above(0.10004, 0.1), share_above(2 / 12, 0.05), share_above(0.1001, 0.1)) == \
        ("10.004%", "16.7%", "10.01%")
    text = " ".join(["zebra"] * 201 + ["a", "x", "b", "y"] * 450)  # 201 of 2,001 tokens: 10.045%, not "10.0%"
    rc, _, err = run(capsys, "classify", text_model, text)
    assert rc == 0 and err.startswith("warning: <input>: 201 of 2,001 tokens (10.04%) are not in the model's")


def test_the_warnings_follow_the_progress_bar_on_a_line_of_their_own(capsys, monkeypatch, tmp_path: Path,
                                                                     text_model: Path) -> None:
    """A terminal's stderr shows the bar (stdout redirected): it is cleared before the warnings are printed."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    lines = ["a x b y"] * PROGRESS_MIN_EXAMPLES + ["hund katze"]
    rc, out, err = run(capsys, "classify", text_model, "--input", write_lines(tmp_path / "in.txt", lines))
    assert rc == 0 and len(out.split()) == len(lines)
    bar, warning = err.split("warning: ", 1)
    assert "classify" in bar and bar.endswith("\r") and "classify" not in warning  # cleared, then the warning
    assert bar[: -1].rsplit("\r", 1)[-1].strip() == ""  # the bar's last drawing is blanked out


def test_train_warns_about_its_validation_and_test_files_once_before_training(capsys, monkeypatch,
                                                                              tmp_path: Path) -> None:
    """The files that score the run are read before it trains: what the model will read of them as <unk> is said
    then, as evaluate says it, and once (the test file's scoring after training does not repeat it)."""
    trainer = importlib.import_module("rnnkit.train")
    monkeypatch.setattr(trainer, "plot_curves", lambda *args, **kwargs: None)
    before_training, fit = [], trainer.Trainer.fit

    def fit_after_the_warnings(self):
        before_training.append(capsys.readouterr().err)
        return fit(self)

    monkeypatch.setattr(trainer.Trainer, "fit", fit_after_the_warnings)
    foreign = [{"text": "hund katze", "label": "xy"}]
    upper = [{**r, "text": r["text"].upper()} for r in order_texts(4, 2)]  # the model's tokenizer keeps case
    valid = write_jsonl(tmp_path / "valid.jsonl", upper + order_texts(16, 2))
    test = write_jsonl(tmp_path / "test.jsonl", foreign + order_texts(20, 3))
    rc, _, after = run(capsys, "train", "classify", "--data",
                       write_jsonl(tmp_path / "train.jsonl", order_texts(150, 1)), "--valid", valid, "--test", test,
                       "--out", tmp_path / "model", *[a for s in TINY for a in ("--set", s)])
    assert rc == 0 and len(before_training) == 1, after
    warned = before_training[0].splitlines()
    assert [line.split(": ", 2)[1] for line in warned] == [str(valid), str(valid), str(test)]
    assert warned[0].endswith("are not in the model's vocabulary of 12 and are read as <unk> (check the file, the "
                              "tokenizer and tokenizer.lowercase)")
    assert warned[1:] == [
        f"warning: {valid}: 4 of 20 texts have no token in the model's vocabulary (lines 1, 2, 3, 4): the model reads "
        "only <unk> there, so their labels are guesses",
        f"warning: {test}: 1 of 21 texts has no token in the model's vocabulary (line 1): the model reads only <unk> "
        "there, so its label is a guess"]
    assert "warning" not in after


def test_evaluate_reports_what_a_text_model_reads_as_unk_in_its_json_and_its_table(capsys, tmp_path: Path,
                                                                                   text_model: Path) -> None:
    """As an LM's evaluate reports its oov and oov_rate: the tokens read as <unk>, their share, and the texts of
    which the model reads no known token (their labels are guesses)."""
    known = set(json.loads((text_model / "vocab.json").read_text()))
    records = order_texts(20, 3)
    for r in records[:4]:
        r["text"] = r["text"].upper()  # wholly unknown: the model's tokenizer keeps case
    records[4]["text"] += " zebra"  # one unknown token in a text otherwise known
    tokens = [r["text"].split() for r in records]
    oov, total = sum(t not in known for text in tokens for t in text), sum(map(len, tokens))
    data = write_jsonl(tmp_path / "mixed.jsonl", records)
    rc, out, _ = run(capsys, "evaluate", text_model, "--data", data)
    figures = {key: json.loads(out.splitlines()[-1])[key] for key in ("oov", "oov_rate", "oov_texts")}
    assert rc == 0 and figures == {"oov": oov, "oov_rate": pytest.approx(oov / total), "oov_texts": 4}
    assert oov == sum(map(len, tokens[:4])) + 1
    assert f"     oov  {oov} of the tokens read ({oov / total:.2%}) are <unk>; 4 texts without a known token" in out
    assert {key: rnnkit.load(text_model).evaluate(data)[key] for key in figures} == figures  # the API's too
    rc, out, _ = run(capsys, "evaluate", text_model, "--data", write_jsonl(tmp_path / "known.jsonl", order_texts(9, 4)))
    line = json.loads(out.splitlines()[-1])
    assert (line["oov"], line["oov_rate"], line["oov_texts"]) == (0, 0.0, 0)
    assert "     oov  0 of the tokens read (0.00%) are <unk>; 0 texts without a known token" in out


def test_evaluate_counts_what_a_truncating_model_reads(capsys, tmp_path: Path, short_model: Path) -> None:
    data = write_jsonl(tmp_path / "late.jsonl", [{"text": "zebra lion tiger a x b y", "label": "xy"},
                                                 {"text": "a x b zebra", "label": "xy"}])
    line = json.loads(run(capsys, "evaluate", short_model, "--data", data)[1].splitlines()[-1])
    assert (line["oov"], line["oov_rate"], line["oov_texts"]) == (3, 0.5, 1)  # of 3 + 3 tokens read


def test_a_numeric_models_evaluate_has_no_oov_figures(capsys, numeric_model: tuple[Path, Path]) -> None:
    model_dir, data = numeric_model
    rc, out, _ = run(capsys, "evaluate", model_dir, "--data", data)
    figures = {"oov", "oov_rate", "oov_texts"}
    assert rc == 0 and not figures & json.loads(out.splitlines()[-1]).keys() and "     oov  " not in out
    assert not figures & rnnkit.load(model_dir).evaluate(data).keys()

"""The session-9 review's findings on classification (notes/review.md), each checked: TSV split on tabs only,
CSV quoting and its long fields, labels read only where labels are needed, byte-string labels, labels mapped by
name on --init-partial, training accuracy in log.csv and curves.png, output files never replaced unasked, and
the help and counts the review found wrong; and of the next review (notes/review.md at 2373ade), scores that are
not finite never printed as JSON and the run header's counts. (Bad input: rows of tests/test_bad_input.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import rnnkit
from conftest import read_log, write_lines
from rnnkit import plotting
from rnnkit.cli import main
from rnnkit.data.labelled import read_examples
from rnnkit.errors import RnnkitError
from rnnkit.models.classifier import SequenceClassifier
from rnnkit.tasks.classify_config import ClassifyModel
from rnnkit.transfer import RowNames, transfer_weights

pytestmark = pytest.mark.usefixtures("no_curves")

TINY = ["model.embedding_size=4", "model.hidden_size=4", "train.batch_size=4", "train.progress=false",
        "train.device=cpu", "train.log_every=1"]
PAIRS = [("a x b y", "xy"), ("b y x", "yx"), ("x c y", "xy"), ("y d x", "yx")] * 5


def write_jsonl(path: Path, records: list[dict]) -> Path:
    return write_lines(path, [json.dumps(r) for r in records])


def labelled(path: Path, names: dict[str, str] | None = None) -> Path:
    return write_jsonl(path, [{"text": t, "label": (names or {}).get(y, y)} for t, y in PAIRS])


def sets(overrides: list[str]) -> list[str]:
    return [a for s in overrides for a in ("--set", s)]


@pytest.fixture
def classifier(tmp_path: Path) -> Path:
    rnnkit.train("classify", data=str(labelled(tmp_path / "t.jsonl")), out=tmp_path / "m",
                 overrides=[*TINY, "train.max_steps=4"])
    return tmp_path / "m"


# ------------------------------------------------------------------ 2, 7: TSV and CSV
def test_tsv_is_split_on_tabs_only_and_keeps_its_quotes(tmp_path: Path) -> None:
    path = tmp_path / "q.tsv"
    path.write_text('text\tlabel\n"Unclosed review\tneg\nfine" film\tpos\n"A" and "B\tneg\n', encoding="utf-8")
    examples = read_examples(path)
    assert examples.texts == ['"Unclosed review', 'fine" film', '"A" and "B']
    assert examples.labels == ["neg", "pos", "neg"] and [line for _, line in examples.where] == [2, 3, 4]


def test_csv_keeps_its_quoting_and_names_the_line_an_unclosed_quote_opens(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('text,label\n"two\nlines, one text",neg\n"""quoted"" start",pos\n', encoding="utf-8")
    examples = read_examples(path)
    assert examples.texts == ["two lines, one text", '"quoted" start'] and examples.labels == ["neg", "pos"]
    assert [line for _, line in examples.where] == [2, 4]
    path.write_text('text,label\nfine,pos\n"open,neg\nbad,neg\nworse,neg\n', encoding="utf-8")
    with pytest.raises(RnnkitError, match=r"q\.csv:3: a quoted field opened on this line runs to the end of the file "
                                          r"\(line 5\): is a quote left open\?"):
        read_examples(path)
    path.write_text('text,label\nfine,pos\n"open,neg\nbad",neg,x\nworse,neg\n', encoding="utf-8")  # closed, late
    with pytest.raises(RnnkitError, match=r"q\.csv:3: 3 columns, the header has 2 \(a quoted field opened on line 3 "
                                          r"runs to line 4"):
        read_examples(path)


def test_csv_fields_may_be_as_long_as_a_line(tmp_path: Path) -> None:
    long_text = "word " * 60_000  # 300,000 characters: over the csv module's default limit of 131,072
    path = write_lines(tmp_path / "huge.csv", ["text,label", f"{long_text},pos", "short,neg"])
    assert [len(t) for t in read_examples(path).texts] == [len(long_text.strip()), 5]


# ------------------------------------------------------------------ 3, 4, 5: labels only where needed
def test_unlabelled_reading_does_not_look_at_labels(tmp_path: Path) -> None:
    partial = write_lines(tmp_path / "p.jsonl", ['{"text": "great film", "label": "pos"}', '{"text": "awful"}',
                                                 '{"text": "so so", "label": null}', '{"text": "ok", "label": NaN}'])
    empty = write_lines(tmp_path / "e.csv", ["text,label", "great film,", "awful,"])
    x = np.zeros((3, 2, 1), dtype=np.float32)
    np.savez(tmp_path / "y.npz", X=x, y=np.array([0.0, np.nan, 1.0]))
    np.savez(tmp_path / "o.npz", X=x, y=np.array([1, "a", None], dtype=object))
    for path, count in ((partial, 4), (empty, 2), (tmp_path / "y.npz", 3), (tmp_path / "o.npz", 3)):
        examples = read_examples(path, labelled=False)
        assert len(examples) == count and examples.labels is None
    with pytest.raises(RnnkitError, match=r"p\.jsonl:2: JSON record has no \"label\" field"):
        read_examples(partial)


def test_classify_and_an_autoencoder_take_files_with_stray_labels(tmp_path: Path, classifier: Path, capsys) -> None:
    partial = write_lines(tmp_path / "p.jsonl", ['{"text": "a x b y", "label": "xy"}', '{"text": "y d x"}',
                                                 '{"text": "x y", "label": null}'] * 4)
    assert main(["classify", str(classifier), "--input", str(partial)]) == 0
    assert len(capsys.readouterr().out.split()) == 12
    rnnkit.train("autoencoder", data=str(partial), out=tmp_path / "ae",
                 overrides=[*TINY, "train.max_steps=1", "data.valid_fraction=0.25"])
    assert (tmp_path / "ae" / "model.safetensors").is_file()


def test_byte_string_labels_are_read_as_utf8(tmp_path: Path) -> None:
    np.savez(tmp_path / "b.npz", X=np.zeros((3, 2, 1)), y=np.array([b"neg", "caf\u00e9".encode(), b"1"]))
    assert read_examples(tmp_path / "b.npz").labels == ["neg", "caf\u00e9", "1"]


def test_labels_name_their_array_row(tmp_path: Path) -> None:
    np.savez(tmp_path / "n.npz", X=np.zeros((3, 2, 1)), y=np.array([0.0, 1.0, np.inf]))
    with pytest.raises(RnnkitError, match=r"n\.npz: y\[2\] is inf: not a class"):
        read_examples(tmp_path / "n.npz")


# ------------------------------------------------------------------ 6: the output layer's rows are classes
def _classifier(classes: int, seed: int) -> SequenceClassifier:
    torch.manual_seed(seed)
    return SequenceClassifier(ClassifyModel(embedding_size=0, hidden_size=4), classes, features=2)  # numeric


def test_output_rows_are_copied_by_label_name() -> None:
    source, target = _classifier(2, 0), _classifier(3, 1)
    before = target.head.output.weight.detach().clone()
    report = transfer_weights(target, source, {"labels": RowNames(["neg", "neutral", "pos"])},
                              {"labels": RowNames(["neg", "pos"])}, source_label="src")
    out, src = target.head.output, source.head.output
    assert torch.equal(out.weight[[0, 2]], src.weight) and torch.equal(out.bias[[0, 2]], src.bias)
    assert torch.equal(out.weight[1], before[1])
    assert ("head.output.weight", "head.output.weight", "2 of 3 rows (labels in both models, mapped by name)") \
        in report.copied


def test_output_rows_of_other_labels_are_kept() -> None:
    source, target = _classifier(2, 0), _classifier(2, 1)
    before = target.head.output.weight.detach().clone()
    report = transfer_weights(target, source, {"labels": RowNames(["bad", "good"])},
                              {"labels": RowNames(["0", "1"])}, source_label="src")
    assert torch.equal(target.head.output.weight, before)
    assert ("head.output.weight", "no label in both models (here: bad, good; in the source: 0, 1)") in report.kept


def test_init_partial_from_a_classifier_reports_the_labels(tmp_path: Path, classifier: Path, capsys) -> None:
    data = labelled(tmp_path / "named.jsonl", {"xy": "good", "yx": "bad"})
    assert main(["train", "classify", "--data", str(data), "--out", str(tmp_path / "c"), "--init-from",
                 str(classifier), "--init-partial", *sets([*TINY, "train.max_steps=1"])]) == 0
    out = capsys.readouterr().out
    assert "kept    head.output.weight: no label in both models (here: bad, good; in the source: xy, yx)" in out


# ------------------------------------------------------------------ 12: training accuracy
def test_the_train_rows_log_the_accuracy_of_the_training_batches(classifier: Path) -> None:
    rows = [r for r in read_log(classifier) if r["split"] == "train"]
    assert len(rows) == 4
    for row in rows:  # batches of 4: a multiple of 1/4
        assert float(row["accuracy"]) * 4 in (0, 1, 2, 3, 4)


def test_the_curves_draw_train_accuracy_and_a_linear_loss_when_it_spans_little(monkeypatch, tmp_path: Path) -> None:
    figures = []
    monkeypatch.setattr(plotting, "_save", lambda fig, path: figures.append(fig))
    rows = [{"step": s, "split": split, "loss": loss, "accuracy": acc} for s, split, loss, acc in
            [(1, "train", 0.7, 0.5), (2, "train", 0.5, 0.75), (2, "valid", 0.6, 0.6)]]
    plotting.plot_curves(rows, tmp_path / "c.png", ("loss", "accuracy"))
    loss, accuracy = figures[0].axes
    assert [line.get_label() for line in accuracy.get_lines()] == ["train", "valid"]
    assert loss.get_yscale() == "linear" and accuracy.get_yscale() == "linear"
    rows[0]["loss"] = 100.0  # an LM's first losses: orders of magnitude above the last
    plotting.plot_curves(rows, tmp_path / "c.png", ("loss", "accuracy"))
    assert figures[1].axes[0].get_yscale() == "log"


# ------------------------------------------------------------------ 1: output files
def test_evaluate_replaces_its_own_output_files_only_with_overwrite(tmp_path: Path, classifier: Path,
                                                                    capsys) -> None:
    data = tmp_path / "t.jsonl"
    metrics, png = write_lines(tmp_path / "m.json", ["mine"]), write_lines(tmp_path / "c.png", ["mine"])
    argv = ["evaluate", str(classifier), "--data", str(data), "--json", str(metrics), "--confusion-png", str(png)]
    assert main(argv) == 2
    assert "--json: the file exists" in capsys.readouterr().err
    assert metrics.read_text() == png.read_text() == "mine\n"
    assert main([*argv, "--overwrite"]) == 0
    assert json.loads(metrics.read_text())["examples"] == 20 and png.read_bytes()[:4] == b"\x89PNG"
    assert "overwrite" not in json.loads(capsys.readouterr().out.splitlines()[-1])
    with pytest.raises(RnnkitError, match="--confusion-png: the file exists"):
        rnnkit.load(classifier).evaluate(data, confusion_png=png)
    assert rnnkit.load(classifier).evaluate(data, confusion_png=png, overwrite=True)["examples"] == 20


# ------------------------------------------------------------------ 10, 13: help and counts
def test_help_names_the_classifier_and_its_options(capsys) -> None:
    for verb, words in (("evaluate", ["--confusion-png", "--overwrite", "a classifier"]),
                        ("train", ["classify:", "autoencoder:"]), ("translate", ["--overwrite"])):
        with pytest.raises(SystemExit):
            main([verb, "--help"])
        shown = " ".join(capsys.readouterr().out.split())
        assert all(word in shown for word in words), (verb, shown)


def test_example_counts_are_whole_numbers(tmp_path: Path, capsys) -> None:
    data = labelled(tmp_path / "t.jsonl")
    assert main(["train", "classify", "--data", str(data), "--out", str(tmp_path / "m"),
                 *sets([*TINY, "train.max_steps=1", "data.test_fraction=0.2"])]) == 0
    assert "examples 4," in capsys.readouterr().out
    assert main(["evaluate", str(tmp_path / "m"), "--data", str(data)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "examples  20" in printed and json.loads(printed[-1])["examples"] == 20


# ------------------------------------------------------------------ the next review (3): nothing but JSON
def test_scores_that_are_not_finite_are_an_error_not_bare_nan_in_json(tmp_path: Path, classifier: Path, capsys,
                                                                      monkeypatch) -> None:
    from rnnkit.tasks import classify

    monkeypatch.setattr(classify, "predict", lambda model, data, *_, **__: torch.full((len(data.lengths), 2),
                                                                                      torch.nan))
    assert main(["classify", str(classifier), "x y", "--probs"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "error: the output's 'probs.xy' is not a finite number (nan or inf)" in err
    assert main(["evaluate", str(classifier), "--data", str(tmp_path / "t.jsonl")]) == 2
    out, err = capsys.readouterr()
    assert "NaN" not in out and "error: the output's 'loss' is not a finite number" in err


# ------------------------------------------------------------------ the next review (10): the run's header
def test_the_run_header_counts_tokens_or_time_steps_not_training_steps(tmp_path: Path, capsys) -> None:
    argv = ["train", "classify", "--out", str(tmp_path / "m"),
            *sets([*TINY, "train.max_steps=1", "train.progress=true"])]
    assert main([*argv, "--data", str(labelled(tmp_path / "t.jsonl"))]) == 0
    assert re.search(r"; 18 training / 2 validation examples \(\d\d tokens\); ", capsys.readouterr().out)
    np.savez(tmp_path / "t.npz", X=np.zeros((10, 3, 2)), y=["a", "b"] * 5)
    assert main([*argv[:3], str(tmp_path / "n"), *argv[4:], "--data", str(tmp_path / "t.npz")]) == 0
    assert "; 9 training / 1 validation examples (27 time steps); " in capsys.readouterr().out  # 9 x 3 steps

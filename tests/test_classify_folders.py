"""The aclImdb layout as it ships: aclImdb/train holds neg/ and pos/ (the classes), unsup/ (unlabelled reviews:
no class) and loose files (labeledBow.feat, urls_*.txt). A classifier reads 2 classes from it, saying on stderr
that unsup/ is not read; data.classes names the class folders; an autoencoder pretrains on unsup/ or on all of
train/ (labels ignored)."""

from __future__ import annotations

from pathlib import Path

import pytest

import rnnkit
from conftest import corpus_lines, write_lines
from rnnkit.data.labelled import ReadOptions, read_examples
from rnnkit.errors import RnnkitError
from test_classify import CLS, order_texts

pytestmark = pytest.mark.usefixtures("no_curves")


def acl_imdb(root: Path) -> Path:
    """A tiny aclImdb: train/{neg,pos,unsup}/*.txt and the loose files beside them, test/{neg,pos}."""
    for split, n in (("train", 40), ("test", 12)):
        for k, record in enumerate(order_texts(n, 7 if split == "train" else 8)):
            label = {"xy": "pos", "yx": "neg"}[record["label"]]
            write_lines(root / split / label / f"{k}_7.txt", [record["text"]])
    for k, line in enumerate(corpus_lines(30, 5)):
        write_lines(root / "train" / "unsup" / f"{k}_0.txt", [line])
    write_lines(root / "train" / "urls_pos.txt", ["http://www.imdb.com/title/tt0453418/usercomments"])
    write_lines(root / "train" / "urls_unsup.txt", ["http://www.imdb.com/title/tt0018515/usercomments"])
    (root / "train" / "labeledBow.feat").write_text("9 0:9 1:1\n", encoding="utf-8")
    write_lines(root / "imdb.vocab", ["the", "a"])
    return root


def test_unsup_is_not_a_class_and_stderr_says_so(tmp_path: Path, capsys) -> None:
    train = acl_imdb(tmp_path / "aclImdb") / "train"
    examples = read_examples(train)
    assert sorted(set(examples.labels)) == ["neg", "pos"] and len(examples) == 40
    assert all("/unsup/" not in file and "urls_" not in file for file, _ in examples.where)
    assert "unsup/ holds unlabelled texts, not a class: not read" in capsys.readouterr().err


def test_data_classes_names_the_class_folders(tmp_path: Path, capsys) -> None:
    train = acl_imdb(tmp_path / "aclImdb") / "train"
    examples = read_examples(train, ReadOptions(classes=("pos", "unsup")))
    assert sorted(set(examples.labels)) == ["pos", "unsup"] and capsys.readouterr().err == ""
    with pytest.raises(RnnkitError, match="no class folder 'neutral' here"):
        read_examples(train, ReadOptions(classes=("pos", "neutral")))


def test_a_classifier_trains_on_acl_imdb_train_with_two_classes(tmp_path: Path, capsys) -> None:
    root = acl_imdb(tmp_path / "aclImdb")
    model = rnnkit.train("classify", data=str(root / "train"), out=tmp_path / "m",
                         overrides=[*CLS, "train.epochs=1", "data.valid_fraction=0.25"])
    assert model.labels == ["neg", "pos"] and "not a class" in capsys.readouterr().err
    model = rnnkit.train("classify", data=str(root), out=tmp_path / "m2",  # train/ and test/ inside
                         overrides=[*CLS, "train.epochs=1", "data.valid_fraction=0.25", "data.classes=neg,pos"])
    assert model.labels == ["neg", "pos"] and model.results["test"]["examples"] == 12
    assert capsys.readouterr().err == ""


def test_an_autoencoder_pretrains_on_the_unlabelled_folder_or_all_of_train(tmp_path: Path, capsys) -> None:
    root = acl_imdb(tmp_path / "aclImdb")
    keys = ["model.embedding_size=8", "model.hidden_size=8", "train.max_steps=1", "train.device=cpu",
            "data.valid_fraction=0.2", "train.log_every=0"]
    rnnkit.train("autoencoder", data=str(root / "train" / "unsup"), out=tmp_path / "u", overrides=keys)
    assert "24 training / 6 validation texts" in capsys.readouterr().out
    rnnkit.train("autoencoder", data=str(root / "train"), out=tmp_path / "all", overrides=keys)
    assert "56 training / 14 validation texts" in capsys.readouterr().out  # neg, pos and unsup; no loose file
    assert read_examples(root / "train" / "unsup", labelled=False).labels is None


def test_a_folder_inside_a_class_folder_is_not_read_and_stderr_says_so(tmp_path: Path, capsys) -> None:
    train = acl_imdb(tmp_path / "aclImdb") / "train"
    write_lines(train / "pos" / "deeper" / "1_7.txt", ["x y a b"])
    (train / "pos" / ".ipynb_checkpoints").mkdir()  # hidden: not data, nothing said
    assert len(read_examples(train)) == 40
    err = capsys.readouterr().err
    assert f"{train / 'pos'}: deeper/ inside it not read (a class folder's texts are its own .txt files)" in err
    assert ".ipynb_checkpoints" not in err
    assert len(read_examples(train, labelled=False)) == 70  # unlabelled alike (the autoencoder, classify --input)
    assert "deeper/ inside it not read (a folder's texts" in capsys.readouterr().err


def test_macosx_is_no_class_and_stderr_says_so(tmp_path: Path, capsys) -> None:
    train = acl_imdb(tmp_path / "aclImdb") / "train"
    write_lines(train / "__MACOSX" / "x.txt", ["hi"])
    assert sorted(set(read_examples(train).labels)) == ["neg", "pos"]
    assert "__MACOSX/ is what macOS adds to a zip archive, not a class" in capsys.readouterr().err
    assert all("__MACOSX" not in file for file, _ in read_examples(train, labelled=False).where)


def test_hidden_files_are_not_texts_and_stderr_says_so(tmp_path: Path, capsys) -> None:
    train = acl_imdb(tmp_path / "aclImdb") / "train"
    # macOS's AppleDouble copy of a file in a tar (not UTF-8), and a hidden file that is
    (train / "pos" / "._0_7.txt").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \xff\xfe")
    write_lines(train / "neg" / ".draft.txt", ["x y a b"])
    for labelled, count in ((True, 40), (False, 70)):  # training and evaluate; classify --input and the autoencoder
        examples = read_examples(train, labelled=labelled)
        assert len(examples) == count and not any("/." in file for file, _ in examples.where)
        err = capsys.readouterr().err
        assert f"{train / 'pos'}: ._0_7.txt: a hidden file, not read" in err
        assert f"{train / 'neg'}: .draft.txt: a hidden file, not read" in err
    only_hidden = tmp_path / "only"
    write_lines(only_hidden / ".a.txt", ["x y"])
    with pytest.raises(RnnkitError, match="no .txt files in it or its sub-folders"):
        read_examples(only_hidden, labelled=False)


def test_reading_unlabelled_an_empty_sub_folder_is_skipped_and_said(tmp_path: Path, capsys) -> None:
    train = acl_imdb(tmp_path / "aclImdb") / "train"
    (train / "extra").mkdir()
    assert len(read_examples(train, labelled=False)) == 70
    assert f"{train / 'extra'}: no .txt files: not read" in capsys.readouterr().err


def test_the_test_folder_is_read_once_and_its_unsup_note_said_once(tmp_path: Path, capsys) -> None:
    root = acl_imdb(tmp_path / "aclImdb")
    write_lines(root / "test" / "unsup" / "1_0.txt", ["a b c"])
    model = rnnkit.train("classify", data=str(root), out=tmp_path / "m",
                         overrides=[*CLS, "train.epochs=1", "data.valid_fraction=0.25"])
    assert model.results["test"]["examples"] == 12
    assert capsys.readouterr().err.count(f"{root / 'test'}: unsup/ holds unlabelled texts") == 1


def test_classify_input_folder_prints_each_file_with_its_label(tmp_path: Path, capsys) -> None:
    from rnnkit.cli import main

    root = acl_imdb(tmp_path / "aclImdb")
    model = rnnkit.train("classify", data=str(root / "train"), out=tmp_path / "m",
                         overrides=[*CLS, "train.epochs=1", "data.valid_fraction=0.25"])
    capsys.readouterr()
    assert main(["classify", str(tmp_path / "m"), "--input", str(root / "train"), "--threads", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    files = [line.split("\t")[0] for line in lines]
    assert len(lines) == 70 and files == sorted(files)  # every sub-folder, unsup/ too, in folder and name order
    assert files[0] == str(root / "train" / "neg" / "0_7.txt") and all(
        line.split("\t")[1] in model.labels for line in lines)
    assert main(["classify", str(tmp_path / "m"), "--input", str(root / "test" / "pos"), "--probs"]) == 0
    first = __import__("json").loads(capsys.readouterr().out.splitlines()[0])
    assert first["file"] == str(root / "test" / "pos" / "0_7.txt") and set(first["probs"]) == {"neg", "pos"}

"""tokenizer.from_init: a classifier or an autoencoder started from a model of another task (--init-from) reads
text with that model's tokenizer and vocabulary instead of building its own, so every embedding row is copied
(ULMFiT; Dai & Le 2015). The model directory then holds the source's vocabulary, classifies and evaluates, resumes
exactly, and the source's reading keys replace the run's (the documented rule)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import rnnkit
from conftest import TINY, assert_same_run, corpus_lines, write_lines
from rnnkit import transfer
from rnnkit.cli import main
from rnnkit.config import load_config
from rnnkit.distributed import DistInfo
from rnnkit.tasks.classify import ClassifyTask

pytestmark = pytest.mark.usefixtures("no_curves")

#: the tiny LM's sizes (embedding 8, one LSTM layer of 16): the classifier's and the autoencoder's
SIZES = ["model.embedding_size=8", "model.hidden_size=16", "train.lr=0.02", "train.progress=false",
         "train.device=cpu", "train.seed=5", "train.log_every=0", "train.batch_size=16"]
CLS = [*SIZES, "train.epochs=2"]
FROM_INIT = "tokenizer.from_init=true"


def labelled(path: Path, n: int, seed: int, extra_word: str = "") -> Path:
    """Labelled sentences of the tiny language (``extra_word``: one word no pretraining text holds, appended)."""
    records = [{"text": f"{line} {extra_word}".strip(), "label": "cat" if "cat" in line else "other"}
               for line in corpus_lines(n, seed)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny word LM and a tiny autoencoder, each on 60 sentences of its own (vocabularies that differ)."""
    root = tmp_path_factory.mktemp("sources")
    rnnkit.train("lm", data=str(write_lines(root / "lm.txt", corpus_lines(60, 0))), out=root / "lm",
                 overrides=[*TINY, "train.epochs=1"])
    rnnkit.train("autoencoder", data=str(write_lines(root / "ae.txt", corpus_lines(60, 7))), out=root / "ae",
                 overrides=[*SIZES, "train.epochs=1", "data.valid_fraction=0.2"])
    return {"lm": root / "lm", "ae": root / "ae"}


def test_the_task_takes_the_lm_vocabulary_and_every_embedding_row(sources: dict[str, Path], tmp_path: Path) -> None:
    data = labelled(tmp_path / "l.jsonl", 80, 4, extra_word="zebra")  # a word the LM never saw
    cfg = load_config(None, [*CLS, f"data.train={data}", FROM_INIT], {"task": "classify"})
    task = ClassifyTask(cfg, DistInfo(), torch.device("cpu"), text_from=transfer.text_reading(sources["lm"]))
    report = transfer.init_model(task.model, sources["lm"], task.vocabularies(), prefix="encoder")
    lm = rnnkit.load(sources["lm"])
    assert task.reader.vocab.itos == lm.vocab.itos and "zebra" not in task.reader.vocab
    rows = len(lm.vocab)
    assert ("encoder.embedding.weight", "embedding.weight", f"{rows:,} of {rows:,} rows (tokens in both "
            "vocabularies)") in report.copied
    assert torch.equal(task.model.encoder.embedding.weight, lm.model.embedding.weight)
    # without the option the classifier's own vocabulary leaves rows uncopied: what the option is for
    own = ClassifyTask(load_config(None, [*CLS, f"data.train={data}"], {"task": "classify"}), DistInfo(),
                       torch.device("cpu"))
    note = dict((t, n) for t, _, n in transfer.init_model(own.model, sources["lm"], own.vocabularies(),
                                                          prefix="encoder").copied)["encoder.embedding.weight"]
    assert not note.startswith(f"{len(own.reader.vocab):,} of")


@pytest.mark.parametrize(("source", "prefix"), [("lm", "encoder"), ("ae", "")])
def test_a_classifier_from_init_holds_the_sources_vocabulary_and_classifies(sources: dict[str, Path], tmp_path: Path,
                                                                              capsys, source: str, prefix: str) -> None:
    data, out = labelled(tmp_path / "l.jsonl", 80, 4), tmp_path / "c"
    argv = ["train", "classify", "--data", str(data), "--out", str(out), "--init-from", str(sources[source]),
            *(["--init-prefix", prefix] if prefix else []), *[a for s in [*CLS, FROM_INIT] for a in ("--set", s)]]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    rows = len(json.loads((sources[source] / "vocab.json").read_text(encoding="utf-8")))
    assert f"copied  encoder.embedding.weight{' <- embedding.weight' if prefix else ''}: {rows:,} of {rows:,} rows" \
           in printed
    for name in ("vocab.json", "tokenizer.json"):
        assert (out / name).read_bytes() == (sources[source] / name).read_bytes(), name
    model = rnnkit.load(out)
    assert model.config.tokenizer.from_init and len(model.classify(["the cat sees a dog ."])) == 1
    assert 0 <= model.evaluate(data)["accuracy"] <= 1
    assert main(["evaluate", str(out), "--data", str(data)]) == 0 and "accuracy" in capsys.readouterr().out


def test_an_autoencoder_takes_an_lms_vocabulary(sources: dict[str, Path], tmp_path: Path) -> None:
    texts = write_lines(tmp_path / "t.txt", corpus_lines(60, 9))
    model = rnnkit.train("autoencoder", data=str(texts), out=tmp_path / "ae", init_from=sources["lm"],
                         init_prefix="encoder", overrides=[*SIZES, "train.max_steps=2", "data.valid_fraction=0.2",
                                                           FROM_INIT])
    assert model.vocab.itos == rnnkit.load(sources["lm"]).vocab.itos
    assert (tmp_path / "ae" / "vocab.json").read_bytes() == (sources["lm"] / "vocab.json").read_bytes()


def test_the_sources_reading_keys_replace_the_runs(sources: dict[str, Path], tmp_path: Path, capsys) -> None:
    data = labelled(tmp_path / "l.jsonl", 40, 4)
    rnnkit.train("classify", data=str(data), out=tmp_path / "c", init_from=sources["ae"],
                 overrides=[*CLS, "train.max_steps=1", FROM_INIT, "tokenizer.kind=alnum", "tokenizer.lowercase=true",
                            "tokenizer.vocab_size=3", "tokenizer.min_freq=2", "tokenizer.spm_type=bpe"])
    assert ("tokenizer.from_init: reading text as the --init-from model does: tokenizer.kind alnum -> word, "
            "tokenizer.lowercase true -> false, tokenizer.vocab_size 3 -> 0, tokenizer.min_freq 2 -> 1, "
            "tokenizer.spm_type bpe -> unigram\n") in capsys.readouterr().out
    saved = rnnkit.load(tmp_path / "c").config.tokenizer  # config.yaml says how it reads text, and loads
    assert (saved.kind, saved.lowercase, saved.split_punctuation) == ("word", False, True)
    # and no vocabulary limit the model lacks: the autoencoder's own (no limit, every token)
    assert (saved.vocab_size, saved.min_freq, saved.spm_model, saved.spm_type) == (0, 1, None, "unigram")


def test_a_run_from_init_resumes_exactly_with_its_own_vocabulary(sources: dict[str, Path], tmp_path: Path) -> None:
    data = labelled(tmp_path / "l.jsonl", 80, 4)
    kw = {"data": str(data), "init_from": sources["lm"], "init_prefix": "encoder"}
    rnnkit.train("classify", out=tmp_path / "whole", overrides=[*CLS, FROM_INIT], **kw)
    rnnkit.train("classify", out=tmp_path / "cut", overrides=[*CLS, FROM_INIT, "train.epochs=1"], **kw)
    resumed = rnnkit.train("classify", out=tmp_path / "cut", overrides=["train.epochs=2"], resume=True)
    assert_same_run(tmp_path / "whole", tmp_path / "cut")
    assert resumed.reader.vocab.itos == rnnkit.load(sources["lm"]).vocab.itos


@pytest.mark.parametrize(("how", "advice"), [
    ("from_init", "(the run keeps the --init-from model's vocabulary; --set tokenizer.from_init=false builds one from "
                  "the training text and copies the rows of the tokens both hold)"),
    ("same_task", "(the run keeps the --init-from model's vocabulary; --init-partial builds one from the training "
                  "text and copies the rows of the tokens both hold)"),
    ("same_task_from_init", "(the run keeps the --init-from model's vocabulary; --init-partial with --set "
                            "tokenizer.from_init=false builds one from the training text and copies the rows of the "
                            "tokens both hold)"),
    ("own_vocabulary", "(check the file, the tokenizer and tokenizer.lowercase)")])
def test_the_test_files_unknown_token_warning_says_whose_vocabulary_it_is(sources: dict[str, Path], tmp_path: Path,
                                                                         capsys, how: str, advice: str) -> None:
    """Read with the --init-from model's vocabulary (tokenizer.from_init, or a same-task init's), the warning about
    the --test file's unknown tokens says so and what builds a vocabulary from the training text instead, not to
    check the tokenizer and tokenizer.lowercase (the source's reading keys win); with the run's own, it does."""
    data, test = labelled(tmp_path / "l.jsonl", 40, 4), labelled(tmp_path / "t.jsonl", 10, 5, extra_word="zebra")
    test.write_text(test.read_text(encoding="utf-8").replace(" .", " gnu okapi ."), encoding="utf-8")  # 3 of 8 unknown
    init_from, overrides = sources["lm"], [*CLS, "train.max_steps=1"]
    if how.startswith("same_task"):  # a classifier of the LM's vocabulary, fine-tuned on
        init_from = tmp_path / "first"
        rnnkit.train("classify", data=str(data), out=init_from, init_from=sources["lm"], init_prefix="encoder",
                     overrides=[*overrides, FROM_INIT])
        overrides += [FROM_INIT] if how == "same_task_from_init" else []
    capsys.readouterr()
    rnnkit.train("classify", data=str(data), test=str(test), out=tmp_path / "c", init_from=init_from,
                 init_prefix=None if how.startswith("same_task") else "encoder",
                 overrides=[*overrides, *([FROM_INIT] if how == "from_init" else [])])
    warned = [line for line in capsys.readouterr().err.splitlines() if " tokens (" in line]
    assert len(warned) == 1 and warned[0].startswith(f"warning: {test}: ") and warned[0].endswith(advice), warned

"""SA-LSTM pretraining (rnnkit train autoencoder) and fine-tuning a classifier from it: the autoencoder learns to
reconstruct, evaluates and reloads, reconstructs through `rnnkit reconstruct` (greedy and beam, with translate's
length penalty; an empty line explained on stderr),
--init-from copies exactly the embedding and encoder it reports, and
train.freeze / train.unfreeze_after keep the frozen parts fixed for exactly the epochs they say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import rnnkit
from conftest import corpus_lines, write_lines
from rnnkit import transfer
from rnnkit.cli import main
from rnnkit.config import load_config
from rnnkit.data.labelled import read_examples
from rnnkit.distributed import DistInfo
from rnnkit.errors import RnnkitError
from rnnkit.tasks.autoencoder import Autoencoder
from rnnkit.tasks.classify import ClassifyTask

pytestmark = pytest.mark.usefixtures("no_curves")

SIZES = ["model.embedding_size=8", "model.hidden_size=32", "train.lr=0.02", "train.progress=false",
         "train.device=cpu", "train.seed=5", "train.log_every=0"]
AE = [*SIZES, "data.valid_fraction=0.1", "train.epochs=20", "train.batch_size=16"]
CLS = [*SIZES, "train.epochs=2", "train.batch_size=16"]


def labelled(path: Path, n: int, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [{"text": line, "label": "cat" if "cat" in line else "other"} for line in corpus_lines(n, seed)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def autoencoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An autoencoder trained once on 150 unlabelled sentences (JSONL without labels)."""
    root = tmp_path_factory.mktemp("ae")
    texts = root / "unsup.jsonl"
    texts.write_text("".join(json.dumps({"text": t}) + "\n" for t in corpus_lines(150, 3)), encoding="utf-8")
    rnnkit.train("autoencoder", data=str(texts), out=root / "ae", overrides=AE)
    return root / "ae"


def test_an_autoencoder_learns_to_reconstruct_and_reloads(autoencoder_dir: Path, tmp_path: Path) -> None:
    model = rnnkit.load(autoencoder_dir)
    assert isinstance(model, Autoencoder) and model.verb == "reconstruct"
    held_out = write_lines(tmp_path / "held.txt", corpus_lines(40, 11))
    metrics = model.evaluate(held_out)
    # 3 to 6 content tokens of a few dozen choices each: chance is far below these
    assert metrics["accuracy"] > 0.85 and metrics["ppl"] < 1.6 and metrics["examples"] == 40
    assert type(metrics["tokens"]) is int and metrics["tokens"] > 40  # a count (metrics.COUNTS)
    texts = corpus_lines(20, 12)
    right = sum(a == b for a, b in zip(model.reconstruct(texts), texts, strict=True))
    assert right >= 8 and model.reconstruct([]) == []
    again = rnnkit.load(autoencoder_dir).evaluate(held_out)
    assert again == metrics


def test_rnnkit_reconstruct_decodes_greedily_or_by_beam_search(autoencoder_dir: Path, tmp_path: Path,
                                                                capsys) -> None:
    model = rnnkit.load(autoencoder_dir)
    texts = corpus_lines(12, 13)
    greedy, beam = model.reconstruct(texts), model.reconstruct(texts, beam=4)
    assert sum(a == b for a, b in zip(beam, texts, strict=True)) >= 5 and len(beam) == len(texts)
    assert model.reconstruct(texts, beam=4, batch_size=3) == beam  # batch composition changes nothing
    assert main(["reconstruct", str(autoencoder_dir), *texts[:2]]) == 0
    assert capsys.readouterr().out.splitlines() == greedy[:2]
    lines = write_lines(tmp_path / "in.txt", texts)
    assert main(["reconstruct", str(autoencoder_dir), "--input", str(lines), "--beam", "4"]) == 0
    assert capsys.readouterr().out.splitlines() == beam
    assert main(["reconstruct", str(autoencoder_dir), "--beam", "0", "a"]) == 2
    assert "--beam must be at least 1" in capsys.readouterr().err


def test_classify_init_from_an_autoencoder_copies_exactly_what_it_reports(autoencoder_dir: Path,
                                                                         tmp_path: Path) -> None:
    data = labelled(tmp_path / "labelled.jsonl", 80, 4)
    cfg = load_config(None, [*CLS, f"data.train={data}"], {"task": "classify"})
    task = ClassifyTask(cfg, DistInfo(), torch.device("cpu"))
    before = {k: v.clone() for k, v in task.model.state_dict().items()}
    report = transfer.init_model(task.model, autoencoder_dir, task.vocabularies())
    source = rnnkit.load(autoencoder_dir)
    weights = source.model.state_dict()
    copied = {t: s for t, s, _ in report.copied}
    assert copied == {"encoder.embedding.weight": "encoder.embedding.weight",
                      **{f"encoder.rnns.0.{p}_l0": f"encoder.rnns.0.{p}_l0" for p in
                         ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}}
    vocab = task.reader.vocab
    for name, value in task.model.state_dict().items():
        if name == "encoder.embedding.weight":
            for token in ("cat", "the", "<unk>"):
                assert torch.equal(value[vocab.stoi[token]], weights[name][source.vocab.stoi[token]])
            only_here = [i for i, t in enumerate(vocab.itos) if t not in source.vocab.stoi]
            assert all(torch.equal(value[i], before[name][i]) for i in only_here)
        elif name in copied:
            assert torch.equal(value, weights[name])
        else:
            assert name in {t for t, _ in report.kept} and torch.equal(value, before[name])
    assert {s.split(".")[0] for s, _ in report.unused} == {"decoder"}


def test_the_cli_pretrains_then_fine_tunes_with_the_encoder_frozen(autoencoder_dir: Path, tmp_path: Path,
                                                                  capsys) -> None:
    data, out = labelled(tmp_path / "labelled.jsonl", 80, 4), tmp_path / "c"
    sets = [a for s in [*CLS, "train.freeze=encoder"] for a in ("--set", s)]
    assert main(["train", "classify", "--data", str(data), "--out", str(out), "--init-from", str(autoencoder_dir),
                 *sets]) == 0
    printed = capsys.readouterr().out
    assert "copied 5 of 7 tensors" in printed and "  copied  encoder.rnns.0.weight_hh_l0\n" in printed
    assert "  unused  decoder.output.weight (source)" in printed
    trained, pretrained = load_file(out / "model.safetensors"), load_file(autoencoder_dir / "model.safetensors")
    assert torch.equal(trained["encoder.rnns.0.weight_hh_l0"], pretrained["encoder.rnns.0.weight_hh_l0"])
    assert main(["generate", str(autoencoder_dir), "--prompt", "the"]) == 2
    assert "its command is rnnkit reconstruct" in capsys.readouterr().err


def test_gradual_unfreezing_thaws_the_last_group_first(tmp_path: Path) -> None:
    data = labelled(tmp_path / "labelled.jsonl", 60, 4)
    cfg = load_config(None, [*CLS, f"data.train={data}", "train.freeze=encoder.embedding,encoder.rnns",
                             "train.unfreeze_after=2"], {"task": "classify"})
    task = ClassifyTask(cfg, DistInfo(), torch.device("cpu"))

    def training(epoch: int) -> set[str]:
        task.on_epoch_start(epoch, task.model)
        return {n.rsplit(".", 1)[0] for n, p in task.model.named_parameters() if p.requires_grad}

    assert training(0) == training(1) == {"head.output"}
    assert training(2) == training(3) == {"head.output", "encoder.rnns.0"}
    assert training(4) == {"head.output", "encoder.rnns.0", "encoder.embedding"}


def test_freezing_a_part_the_model_lacks_is_an_error_naming_the_key(tmp_path: Path) -> None:
    data = labelled(tmp_path / "labelled.jsonl", 20, 4)
    cfg = load_config(None, [*CLS, f"data.train={data}", "train.freeze=encoder.rnns.1"], {"task": "classify"})
    with pytest.raises(RnnkitError, match=r"train.freeze: the model has no parameter under 'encoder.rnns.1'"):
        ClassifyTask(cfg, DistInfo(), torch.device("cpu"))


def test_an_autoencoder_refuses_numeric_data(tmp_path: Path) -> None:
    array = tmp_path / "x.npz"
    array.write_bytes(b"")
    with pytest.raises(RnnkitError, match="an autoencoder reads texts"):
        rnnkit.train("autoencoder", data=str(array), out=tmp_path / "ae", overrides=AE)


@pytest.mark.parametrize(("pretrain", "fine_tune", "prefix"), [("imdb-sa-lstm-pretrain", "imdb-sa-lstm", ""),
                                                               ("imdb-lm-lstm-pretrain", "imdb-lm-lstm", "encoder")])
def test_each_pretraining_recipe_fills_its_fine_tuning_recipes_encoder(pretrain: str, fine_tune: str,
                                                                       prefix: str) -> None:
    from rnnkit.data.vocab import Vocab
    from rnnkit.models.classifier import SequenceClassifier
    from rnnkit.models.lm import RNNLanguageModel
    from rnnkit.tasks.autoencoder import build_model

    source_cfg, target_cfg = load_config(pretrain), load_config(fine_tune)
    cutoffs = getattr(source_cfg.model, "adaptive_cutoffs", [])  # an adaptive softmax needs ids up to its cutoffs
    vocab = Vocab([f"w{i}" for i in range(20 + max(cutoffs, default=0))])
    reading = ("kind", "lowercase", "split_punctuation", "vocab_size", "min_freq")  # rows of the embedding map by token
    assert all(getattr(source_cfg.tokenizer, key) == getattr(target_cfg.tokenizer, key) for key in reading)
    # the pretrained model's own vocabulary (every row copied): measured not worse for the LM (session 9) and, with
    # concat pooling, for the autoencoder (session 12; README, "The pretrained model's vocabulary")
    assert target_cfg.tokenizer.from_init and target_cfg.model.pooling == "concat"
    assert target_cfg.train.freeze == ""  # everything fine-tunes from the first update (the recipes' comment says why)
    source = (build_model(source_cfg, len(vocab)) if source_cfg.task == "autoencoder"
              else RNNLanguageModel(source_cfg.model, len(vocab)))
    target = SequenceClassifier(target_cfg.model, 2, len(vocab))
    report = transfer.transfer_weights(target, source, {"vocab": vocab}, {"vocab": vocab, "src": vocab, "trg": vocab},
                                       prefix=prefix)
    assert {t for t, _ in report.kept} == {"head.output.weight", "head.output.bias"}


def test_freezing_is_refused_under_several_processes(tmp_path: Path) -> None:
    data = labelled(tmp_path / "labelled.jsonl", 20, 4)
    cfg = load_config(None, [*CLS, f"data.train={data}", "train.freeze=encoder"], {"task": "classify"})
    with pytest.raises(RnnkitError, match="train.freeze needs a single process"):
        ClassifyTask(cfg, DistInfo(rank=0, world=2), torch.device("cpu"))


@pytest.fixture(scope="module")
def untrained_autoencoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An autoencoder after one tiny step: its output is near uniform, so a wide beam without a length
    penalty finds the empty text (one <eos>, log 1/V) likelier than any longer one (about log 1/V per token)."""
    root = tmp_path_factory.mktemp("ae0")
    texts = write_lines(root / "texts.txt", corpus_lines(40, 3))
    rnnkit.train("autoencoder", data=str(texts), out=root / "ae",
                 overrides=[*SIZES, "train.lr=0.0001", "train.max_steps=1", "data.valid_fraction=0.1"])
    return root / "ae"


def test_reconstruct_has_translates_length_penalty_and_explains_an_empty_line(untrained_autoencoder: Path,
                                                                               capsys) -> None:
    model = rnnkit.load(untrained_autoencoder)
    wide, text = len(model.vocab), corpus_lines(1, 5)
    assert model.reconstruct(text, beam=wide, alpha=0) == [""]
    assert model.reconstruct(text, beam=wide, alpha=5) != [""]  # the penalty favours the longer outputs
    assert model.reconstruct(text, beam=wide) == model.reconstruct(text, beam=wide, alpha=1.0)  # translate's default
    assert main(["reconstruct", str(untrained_autoencoder), *text, text[0], "--beam", str(wide), "--alpha", "0"]) == 0
    out, err = capsys.readouterr()
    assert out == "\n\n"
    assert err.splitlines() == [
        f"reconstruct: text 1's reconstruction is empty: with --beam {wide} --alpha 0 the likeliest output is <eos> "
        "at once; a larger --alpha (the length penalty, default 1) favours longer outputs",
        "reconstruct: 2 of 2 reconstructions were empty"]
    assert main(["reconstruct", str(untrained_autoencoder), *text, "--beam", str(wide), "--alpha", "5"]) == 0
    assert capsys.readouterr().err == ""


def test_evaluate_and_reconstruct_read_a_file_by_its_name_alike(autoencoder_dir: Path, tmp_path: Path) -> None:
    texts = corpus_lines(6, 21)
    jsonl = tmp_path / "texts.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    lines, folder = write_lines(tmp_path / "texts.txt", texts), tmp_path / "folder"
    folder.mkdir()
    for i, t in enumerate(texts):
        (folder / f"{i}.txt").write_text(t, encoding="utf-8")
    cfg = load_config(None, ["data.format=jsonl"], {"task": "autoencoder"})
    model = rnnkit.load(autoencoder_dir)
    model.config.data = cfg.data  # as trained with data.format jsonl: a file to score is still read by its name
    scored = [model.evaluate(path) for path in (jsonl, lines, folder)]
    assert scored[0] == scored[1] == scored[2] and scored[0]["examples"] == 6
    assert model.read_texts(lines) == model.read_texts(jsonl) == texts


def test_an_autoencoder_honours_train_freeze(autoencoder_dir: Path, tmp_path: Path) -> None:
    texts = write_lines(tmp_path / "texts.txt", corpus_lines(40, 3))
    out = tmp_path / "ae"
    rnnkit.train("autoencoder", data=str(texts), out=out, init_from=autoencoder_dir,
                 overrides=[*SIZES, "train.max_steps=3", "train.batch_size=8", "train.freeze=encoder"])
    trained, pretrained = load_file(out / "model.safetensors"), load_file(autoencoder_dir / "model.safetensors")
    assert all(torch.equal(trained[n], pretrained[n]) for n in trained if n.startswith("encoder."))
    assert not torch.equal(trained["decoder.output.weight"], pretrained["decoder.output.weight"])


def test_the_first_line_says_how_padded_batches_run(tmp_path: Path, capsys) -> None:
    texts = tmp_path / "unsup.jsonl"
    texts.write_text("".join(json.dumps({"text": t}) + "\n" for t in corpus_lines(40, 3)), encoding="utf-8")
    rnnkit.train("autoencoder", data=str(texts), out=tmp_path / "ae", overrides=[*AE, "train.max_steps=1",
                                                                             "train.progress=true"])
    first = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("autoencoder: "))
    assert "lstm encoder (padded batches in length segments (oneDNN" in first and "-> state decoder" in first


def test_blank_lines_are_skipped_in_a_corpus_and_at_the_end_of_texts_answered(tmp_path: Path) -> None:
    """Review 4, finding 7: an autoencoder's training corpus in JSONL or CSV skips blank lines (rows), as it did;
    texts answered one by one (classify / reconstruct --input) skip only the blank ones at the end of the file (an
    interior one is an error: tests/test_bad_input.py)."""
    lines = corpus_lines(40, 5)
    jsonl = tmp_path / "ae.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": t}) for t in lines[:20]) + "\n\n"
                     + "\n".join(json.dumps({"text": t}) for t in lines[20:]) + "\n\n", encoding="utf-8")
    table = tmp_path / "ae.csv"
    table.write_text("text\n" + "\n".join(lines[:20]) + "\n\n" + "\n".join(lines[20:]) + "\n\n", encoding="utf-8")
    for data in (jsonl, table):
        out = tmp_path / f"ae-{data.suffix[1:]}"
        rnnkit.train("autoencoder", data=str(data), out=out, overrides=[*SIZES, "train.max_steps=2"])
        assert read_examples(data, labelled=False).texts == lines
    for name, content in (("in.txt", "x y\ny x\n\n \n"), ("in.jsonl", '{"text": "x y"}\n{"text": "y x"}\n\n'),
                          ("in.csv", "text\nx y\ny x\n\n")):
        path = write_lines(tmp_path / name, content.split("\n")[:-1])
        assert read_examples(path, labelled=False, answered=True).texts == ["x y", "y x"]
    assert rnnkit.load(tmp_path / "ae-csv").read_texts(tmp_path / "in.csv") == ["x y", "y x"]


def test_a_plain_text_corpus_may_end_in_blank_lines_not_hold_one_between_texts(tmp_path: Path) -> None:
    """review5 finding 5: in plain text every line is a text, so a blank line between texts stays an error ("empty
    text"), but blank lines at the end of the file are no texts (an editor's trailing newline)."""
    lines = corpus_lines(40, 5)
    ending = write_lines(tmp_path / "ending.txt", [*lines, "", "  "])
    assert read_examples(ending, labelled=False).texts == lines
    rnnkit.train("autoencoder", data=str(ending), out=tmp_path / "ae", overrides=[*SIZES, "train.max_steps=2"])
    between = write_lines(tmp_path / "between.txt", [*lines[:20], "", *lines[20:]])
    with pytest.raises(RnnkitError, match=r"between.txt:21: empty text"):
        read_examples(between, labelled=False)

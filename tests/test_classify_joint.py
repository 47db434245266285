"""Joint training (model.joint lm | reconstruct): the auxiliary token loss trains and falls through rnnkit.train, the
auxiliary part never changes a prediction (nor padding / batch composition), it is saved and resumed exactly, and
--init-from an LM / an autoencoder fills the LM head / the reconstruction decoder with exactly the weights reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import rnnkit
from conftest import assert_same_run, corpus_lines, read_log, timeless
from rnnkit import transfer
from rnnkit.cli import main
from rnnkit.config import load_config
from rnnkit.distributed import DistInfo
from rnnkit.tasks.classify import ClassifyTask
from test_classify import CLS, order_ids, text_model, write_jsonl

pytestmark = pytest.mark.usefixtures("no_curves")

JOINTS = ["lm", "reconstruct"]


def cat_records(n: int, seed: int) -> list[dict]:
    return [{"text": line, "label": "cat" if "cat" in line else "other"} for line in corpus_lines(n, seed)]


@pytest.fixture
def cat_data(tmp_path: Path) -> tuple[Path, Path]:
    """Short regular sentences (an LM / an autoencoder learns their tokens in a few updates), labelled."""
    return (write_jsonl(tmp_path / "data" / "train.jsonl", cat_records(240, 1)),
            write_jsonl(tmp_path / "data" / "valid.jsonl", cat_records(60, 2)))


@pytest.mark.parametrize("joint", JOINTS)
def test_joint_training_logs_an_auxiliary_loss_that_falls(tmp_path: Path, cat_data, joint: str) -> None:
    train, valid = cat_data
    model = rnnkit.train("classify", data=str(train), valid=str(valid), out=tmp_path / "m",
                         overrides=[*CLS, f"model.joint={joint}", "train.eval_every=8", "train.epochs=4"])
    aux = [float(r["aux_loss"]) for r in read_log(tmp_path / "m") if r["split"] == "valid"]
    assert len(aux) >= 4 and aux[-1] < 0.7 * aux[0]  # the token loss learns: it falls by far more than noise
    assert model.results["valid"]["accuracy"] > 0.9
    names = set(load_file(tmp_path / "m" / "model.safetensors"))
    part = {"lm": "encoder.output.weight", "reconstruct": "decoder.output.weight"}[joint]
    assert part in names  # saved with the model


def test_the_train_rows_log_the_auxiliary_loss_too_and_resume_it_exactly(tmp_path: Path, cat_data) -> None:
    """Each train row's aux_loss is the mean token loss of the joint objective over the row's updates (as the
    valid rows' on the validation texts); a run stopped inside a row's updates resumes that row's sums."""
    kw = {"data": str(cat_data[0]), "valid": str(cat_data[1])}
    sets = [*CLS, "model.joint=lm"]  # 8 updates an epoch, a train row every 4

    def train_rows(out: Path) -> list[dict[str, str]]:
        return [r for r in timeless(read_log(out)) if r["split"] == "train"]

    rnnkit.train("classify", out=tmp_path / "whole", overrides=sets, **kw)
    aux = [float(r["aux_loss"]) for r in train_rows(tmp_path / "whole")]
    assert len(aux) == 6 and aux[0] > 1 and aux[-1] < 0.8 * aux[0]
    rnnkit.train("classify", out=tmp_path / "cut", overrides=[*sets, "train.max_steps=6"], **kw)
    rnnkit.train("classify", out=tmp_path / "cut", overrides=["train.max_steps=0"], resume=True)
    assert train_rows(tmp_path / "cut") == train_rows(tmp_path / "whole")


def test_a_checkpoint_without_the_window_sums_of_the_extras_logs_none_for_that_row(tmp_path: Path, cat_data) -> None:
    """A checkpoint made before its trainer state kept the window's aux_loss sums (window_logged) resumes with
    the loss sums only: the first train row after it leaves aux_loss empty rather than a mean over fewer
    updates than its loss; the rows after it are whole again."""
    kw = {"data": str(cat_data[0]), "valid": str(cat_data[1])}
    sets = [*CLS, "model.joint=lm", "train.epochs=2"]  # 8 updates an epoch, a train row every 4
    rnnkit.train("classify", out=tmp_path / "whole", overrides=sets, **kw)
    rnnkit.train("classify", out=tmp_path / "cut", overrides=[*sets, "train.max_steps=6"], **kw)
    state_file = tmp_path / "cut" / "checkpoint" / "trainer_state.pt"
    state = torch.load(state_file, weights_only=False)
    del state["window_logged"]  # as an older rnnkit wrote it
    torch.save(state, state_file)
    rnnkit.train("classify", out=tmp_path / "cut", overrides=["train.max_steps=0"], resume=True)
    whole, cut = ([r for r in timeless(read_log(tmp_path / out)) if r["split"] == "train"] for out in ("whole", "cut"))
    assert [r["step"] for r in cut] == ["4", "8", "12", "16"]
    assert cut[1]["aux_loss"] == "" and cut[1]["loss"] == whole[1]["loss"]
    assert cut[0] == whole[0] and cut[2:] == whole[2:]


@pytest.mark.parametrize("joint", ["none", "lm"])
def test_a_checkpoint_without_the_window_sums_of_accuracy_logs_none_for_that_row(tmp_path: Path, cat_data,
                                                                                   joint: str) -> None:
    """A checkpoint made before the classifier logged its training accuracy holds window sums without it (none at
    all, or aux_loss's): the first train row after it leaves accuracy empty rather than the mean of the updates
    since the resume; the figures it has sums for, and the rows after it, are whole."""
    kw = {"data": str(cat_data[0]), "valid": str(cat_data[1])}
    sets = [*CLS, f"model.joint={joint}", "train.epochs=2"]  # 8 updates an epoch, a train row every 4
    rnnkit.train("classify", out=tmp_path / "whole", overrides=sets, **kw)
    rnnkit.train("classify", out=tmp_path / "cut", overrides=[*sets, "train.max_steps=6"], **kw)
    state_file = tmp_path / "cut" / "checkpoint" / "trainer_state.pt"
    state = torch.load(state_file, weights_only=False)
    del state["window_logged"]["accuracy"]  # as the older rnnkit wrote it
    torch.save(state, state_file)
    rnnkit.train("classify", out=tmp_path / "cut", overrides=["train.max_steps=0"], resume=True)
    whole, cut = ([r for r in timeless(read_log(tmp_path / out)) if r["split"] == "train"] for out in ("whole", "cut"))
    assert [r["step"] for r in cut] == ["4", "8", "12", "16"]
    assert cut[1]["accuracy"] == "" and whole[1]["accuracy"] != ""
    assert {**cut[1], "accuracy": whole[1]["accuracy"]} == whole[1]  # the loss (and aux_loss) over the whole window
    assert cut[0] == whole[0] and cut[2:] == whole[2:]


def test_no_joint_objective_logs_no_auxiliary_loss(tmp_path: Path, cat_data) -> None:
    rnnkit.train("classify", data=str(cat_data[0]), valid=str(cat_data[1]), out=tmp_path / "m",
                 overrides=[*CLS, "train.epochs=1"])
    assert "aux_loss" not in read_log(tmp_path / "m")[0]


@pytest.mark.parametrize("joint", JOINTS)
def test_the_auxiliary_part_never_changes_a_prediction(joint: str) -> None:
    model = text_model(joint=joint).eval()
    x, lengths, _ = order_ids(24, 3)
    with torch.no_grad():
        batched = model(x, lengths)
        one_by_one = torch.cat([model(x[: lengths[b], b: b + 1], lengths[b: b + 1]) for b in range(24)])
        padded = model(torch.cat([x, torch.zeros(5, 24, dtype=torch.long)]), lengths)
        with_aux, aux_sum, aux_count = model(x, lengths, auxiliary=True)
        part = model.encoder.output if joint == "lm" else model.decoder
        for p in part.parameters():
            p.add_(torch.randn_like(p))
        changed = model(x, lengths)
    assert torch.allclose(batched, one_by_one, atol=1e-6) and torch.allclose(batched, padded, atol=1e-6)
    assert torch.equal(batched, with_aux) and torch.equal(batched, changed)
    # every text token is scored, and <eos> once per text (lm: the last step predicts it; reconstruct: after the text)
    assert aux_count == int(lengths.sum()) + (24 if joint == "reconstruct" else 0) and aux_sum > 0


def test_the_lm_objective_predicts_each_next_token_then_the_end() -> None:
    from rnnkit.models.classifier import next_token_targets, reconstruction_targets

    ids = torch.tensor([[5, 7], [6, 8], [9, 0]])  # texts 5 6 9 and 7 8 (padded)
    assert next_token_targets(ids, torch.tensor([3, 2])).T.tolist() == [[6, 9, 3], [8, 3, 0]]
    trg_in, target = reconstruction_targets(ids, torch.tensor([3, 2]))
    assert trg_in.T.tolist() == [[2, 5, 6, 9], [2, 7, 8, 0]] and target.T.tolist() == [[5, 6, 9, 3], [7, 8, 3, 0]]


@pytest.mark.parametrize("joint", JOINTS)
def test_a_joint_run_saves_loads_and_resumes_exactly(tmp_path: Path, cat_data, joint: str) -> None:
    kw = {"data": str(cat_data[0]), "valid": str(cat_data[1])}
    sets = [*CLS, f"model.joint={joint}", "train.joint_weight=0.5", "model.layer_dropout=0.2"]
    rnnkit.train("classify", out=tmp_path / "whole", overrides=[*sets, "train.epochs=2"], **kw)
    rnnkit.train("classify", out=tmp_path / "cut", overrides=[*sets, "train.epochs=1"], **kw)
    rnnkit.train("classify", out=tmp_path / "cut", overrides=["train.epochs=2"], resume=True)
    assert_same_run(tmp_path / "whole", tmp_path / "cut")
    loaded = rnnkit.load(tmp_path / "whole")
    saved = load_file(tmp_path / "whole" / "model.safetensors")
    assert all(torch.equal(v, saved[k]) for k, v in loaded.model.state_dict().items())
    assert loaded.classify(["the cat sleeps ."]) in (["cat"], ["other"])


def joint_task(tmp_path: Path, joint: str, *extra: str) -> ClassifyTask:
    data = write_jsonl(tmp_path / "labelled.jsonl", cat_records(80, 4))
    cfg = load_config(None, [*CLS, f"data.train={data}", f"model.joint={joint}", *extra], {"task": "classify"})
    return ClassifyTask(cfg, DistInfo(), torch.device("cpu"))


def check_rows_by_token(value: torch.Tensor, before: torch.Tensor, source: torch.Tensor, vocab, source_vocab) -> None:
    """A vocabulary-indexed tensor: the rows of tokens both models know are the source's, the others untouched."""
    for i, token in enumerate(vocab.itos):
        expected = source[source_vocab.stoi[token]] if token in source_vocab.stoi else before[i]
        assert torch.equal(value[i], expected), token


def check_transfer(task: ClassifyTask, before: dict, report, source_model, expected: dict[str, str]) -> None:
    """Exactly ``expected`` (target -> source name) was copied (vocabulary rows by token); the rest is untouched."""
    copied = {t: s for t, s, _ in report.copied}
    assert copied == expected
    source = source_model.model.state_dict()
    roles = task.model.vocab_parameters()
    for name, value in task.model.state_dict().items():
        if name not in copied:
            assert torch.equal(value, before[name]), name
        elif name in roles:
            check_rows_by_token(value, before[name], source[copied[name]], task.reader.vocab, source_model.vocab)
        else:
            assert torch.equal(value, source[copied[name]]), name


RNN = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def test_init_from_an_lm_fills_the_lm_head(tmp_path: Path, train_tiny) -> None:
    lm_dir = train_tiny("lm", "model.layers=1")  # embedding 8, hidden 16: the classifier's sizes
    task = joint_task(tmp_path, "lm")
    before = {k: v.clone() for k, v in task.model.state_dict().items()}
    report = transfer.init_model(task.model, lm_dir, task.vocabularies(), prefix="encoder")
    expected = {"encoder.embedding.weight": "embedding.weight", "encoder.output.weight": "output.weight",
                "encoder.output.bias": "output.bias", **{f"encoder.rnns.0.{p}_l0": f"rnns.0.{p}_l0" for p in RNN}}
    check_transfer(task, before, report, rnnkit.load(lm_dir), expected)
    assert report.unused == [] and {t for t, _ in report.kept} == {"head.output.weight", "head.output.bias"}


def test_init_from_an_autoencoder_fills_the_reconstruction_decoder(tmp_path: Path) -> None:
    texts = write_jsonl(tmp_path / "unsup.jsonl", [{"text": t} for t in corpus_lines(60, 3)])
    ae_dir = tmp_path / "ae"
    rnnkit.train("autoencoder", data=str(texts), out=ae_dir, overrides=[
        "model.embedding_size=8", "model.hidden_size=16", "train.max_steps=2", "train.progress=false",
        "train.device=cpu", "data.valid_fraction=0.1", "train.log_every=0"])
    task = joint_task(tmp_path, "reconstruct")
    before = {k: v.clone() for k, v in task.model.state_dict().items()}
    report = transfer.init_model(task.model, ae_dir, task.vocabularies())
    same = ["encoder.embedding.weight", "decoder.embedding.weight", "decoder.output.weight", "decoder.output.bias",
            *(f"{side}.rnns.0.{p}_l0" for side in ("encoder", "decoder") for p in RNN)]
    check_transfer(task, before, report, rnnkit.load(ae_dir), {name: name for name in same})
    assert report.unused == [] and {t for t, _ in report.kept} == {"head.output.weight", "head.output.bias"}


def test_the_cli_trains_a_joint_classifier_that_classifies_and_evaluates(tmp_path: Path, cat_data, capsys) -> None:
    train, valid = cat_data
    out = tmp_path / "m"
    assert main(["train", "classify", "--data", str(train), "--valid", str(valid), "--out", str(out),
                 *[a for s in [*CLS, "model.joint=reconstruct", "train.joint_weight=0.3", "train.epochs=2",
                                      "train.progress=true"]
                   for a in ("--set", s)]]) == 0
    printed = capsys.readouterr()
    assert "joint reconstruct (weight 0.3)" in printed.out and "aux_loss" in printed.out
    assert main(["classify", str(out), "the cat sleeps .", "a dog runs ."]) == 0
    assert set(capsys.readouterr().out.split()) <= {"cat", "other"}
    assert main(["evaluate", str(out), "--data", str(valid)]) == 0
    metrics = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert metrics["examples"] == 60 and "aux_loss" not in metrics

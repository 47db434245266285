"""Weight transfer (``--init-from``): it copies exactly what it reports (whole tensors, vocabulary rows by
token), maps names under a prefix and from legacy names, refuses in strict mode, and checks an untrusted
source before reading a tensor."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import rnnkit
from conftest import TINY, corpus_lines, write_lines
from rnnkit import checkpoint
from rnnkit.cli import main
from rnnkit.config import ModelConfig
from rnnkit.data.vocab import Vocab
from rnnkit.errors import RnnkitError
from rnnkit.models.classifier import SequenceClassifier
from rnnkit.models.lm import RNNLanguageModel
from rnnkit.models.seq2seq import Seq2SeqModel, Seq2SeqModelConfig
from rnnkit.nn.softmax import SoftmaxOptions
from rnnkit.tasks.classify_config import ClassifyModel
from rnnkit.transfer import TransferReport, _Planner, init_model, named_tensors, transfer_weights, vocab_roles

pytestmark = pytest.mark.usefixtures("no_curves")


#: the LM's output layer: ``decoder`` until issue 13 renames it ``output`` (declaring the old names as
#: ``legacy_weight_names``); these tests hold for either
OUT = "output" if hasattr(RNNLanguageModel, "legacy_weight_names") else "decoder"


def lm(vocab: Vocab, hidden: int = 6, embedding: int = 4, seed: int = 0, **options) -> RNNLanguageModel:
    torch.manual_seed(seed)
    return RNNLanguageModel(ModelConfig(cell="lstm", embedding_size=embedding, hidden_size=hidden, layers=1,
                                        **options), len(vocab))


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: t.detach().clone() for name, t in named_tensors(model).items()}


SOURCE_VOCAB = Vocab(["cat", "dog", "ball", "tree"])
TARGET_VOCAB = Vocab(["dog", "zebra", "cat", "moon", "tree"])  # cat, dog, tree moved; zebra, moon new


def assert_copied_as_reported(report, before: dict, after: dict, source: dict, prefix: str = "",
                              renamed: dict | None = None) -> None:
    """Every tensor the report says was copied equals the source (vocabulary rows by token, the other rows
    unchanged); every tensor it says was kept is unchanged."""
    for target_name, source_name, note in report.copied:
        assert source_name == (renamed or {}).get(target_name, target_name.removeprefix(prefix))
        if "rows" not in note:
            assert torch.equal(after[target_name], source[source_name]), target_name
            continue
        for i, token in enumerate(TARGET_VOCAB.itos):
            expected = (source[source_name][SOURCE_VOCAB.stoi[token]] if token in SOURCE_VOCAB
                        else before[target_name][i])
            assert torch.equal(after[target_name][i], expected), (target_name, token)
    for target_name, _ in report.kept:
        assert torch.equal(after[target_name], before[target_name]), target_name
    assert {t for t, _, _ in report.copied} | {t for t, _ in report.kept} == set(after)


def test_partial_transfer_copies_vocabulary_rows_by_token_and_reports_shape_mismatches() -> None:
    source, target = lm(SOURCE_VOCAB, hidden=6, seed=1), lm(TARGET_VOCAB, hidden=8, seed=2)
    before = snapshot(target)
    report = transfer_weights(target, source, {"vocab": TARGET_VOCAB}, {"vocab": SOURCE_VOCAB})
    after, src = snapshot(target), snapshot(source)
    assert_copied_as_reported(report, before, after, src)
    # 4 specials + cat, dog, tree are in both vocabularies: 7 of the 9 rows
    assert [(t, note) for t, _, note in report.copied] == [
        ("embedding.weight", "7 of 9 rows (tokens in both vocabularies)"),
        (f"{OUT}.bias", "7 of 9 rows (tokens in both vocabularies)")]
    assert dict(report.kept) == {
        "rnns.0.weight_ih_l0": "shape (32, 4) here, (24, 4) in the source",
        "rnns.0.weight_hh_l0": "shape (32, 8) here, (24, 6) in the source",
        "rnns.0.bias_ih_l0": "shape (32,) here, (24,) in the source",
        "rnns.0.bias_hh_l0": "shape (32,) here, (24,) in the source",
        f"{OUT}.weight": "rows of shape (8,) here, (6,) in the source"}
    cat_here, cat_there = TARGET_VOCAB.stoi["cat"], SOURCE_VOCAB.stoi["cat"]
    assert cat_here != cat_there
    assert torch.equal(after["embedding.weight"][cat_here], src["embedding.weight"][cat_there])
    assert report.values == (7 * 4 + 7, sum(t.numel() for t in after.values()))
    text = str(report)
    assert text.splitlines()[0] == (f"--init-from source: copied 2 of 7 tensors ({7 * 4 + 7} of "
                                    f"{report.values[1]:,} values)")
    assert f"  kept    {OUT}.weight: rows of shape (8,) here, (6,) in the source" in text


class TinyClassifier(nn.Module):
    """Names as issue 14's classifier has them: ``encoder.embedding``, ``encoder.rnns.{k}``, ``head``."""

    def __init__(self, vocab: Vocab, embedding: int = 4, hidden: int = 6):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.embedding = nn.Embedding(len(vocab), embedding)
        self.encoder.rnns = nn.ModuleList([nn.LSTM(embedding, hidden)])
        self.head = nn.Linear(hidden, 3)

    def vocab_parameters(self) -> dict[str, str]:
        return {"encoder.embedding.weight": "vocab"}


def test_prefix_puts_an_lms_embedding_and_stack_under_the_encoder() -> None:
    source, target = lm(SOURCE_VOCAB, seed=1), TinyClassifier(TARGET_VOCAB)
    before = snapshot(target)
    report = transfer_weights(target, source, {"vocab": TARGET_VOCAB}, {"vocab": SOURCE_VOCAB}, prefix="encoder")
    assert_copied_as_reported(report, before, snapshot(target), snapshot(source), prefix="encoder.")
    assert [t for t, _, _ in report.copied] == ["encoder.embedding.weight", "encoder.rnns.0.weight_ih_l0",
                                                "encoder.rnns.0.weight_hh_l0", "encoder.rnns.0.bias_ih_l0",
                                                "encoder.rnns.0.bias_hh_l0"]
    assert dict(report.kept) == {"head.weight": "not in the source", "head.bias": "not in the source"}
    assert report.unused == [(f"{OUT}.weight", f"no tensor encoder.{OUT}.weight in the new model"),
                             (f"{OUT}.bias", f"no tensor encoder.{OUT}.bias in the new model")]
    assert "  copied  encoder.rnns.0.weight_ih_l0 <- rnns.0.weight_ih_l0" in str(report)
    assert f"  unused  {OUT}.bias (source): no tensor encoder.{OUT}.bias in the new model" in str(report)


def test_without_a_prefix_nothing_of_another_layout_is_copied_and_a_wrong_prefix_is_refused() -> None:
    report = transfer_weights(TinyClassifier(TARGET_VOCAB), lm(SOURCE_VOCAB), {"vocab": TARGET_VOCAB},
                              {"vocab": SOURCE_VOCAB})
    assert report.copied == [] and len(report.unused) == 7
    with pytest.raises(RnnkitError, match=r"--init-prefix 'decoder': the new model has no tensor under 'decoder\.' "
                                          r"\(its parts: encoder, head\)"):
        transfer_weights(TinyClassifier(TARGET_VOCAB), lm(SOURCE_VOCAB), {"vocab": TARGET_VOCAB},
                         {"vocab": SOURCE_VOCAB}, prefix="decoder")


class SmallLM(nn.Module):
    """An LM with its output layer named ``decoder`` (before issue 13) or ``output`` (after: it declares the
    old names)."""

    def __init__(self, vocab: Vocab, output: str, embedding: int = 4, hidden: int = 6):
        super().__init__()
        self.embedding = nn.Embedding(len(vocab), embedding)
        self.rnns = nn.ModuleList([nn.LSTM(embedding, hidden)])
        setattr(self, output, nn.Linear(hidden, len(vocab)))
        self.output_name = output
        if output == "output":
            self.legacy_weight_names = {"decoder.weight": "output.weight", "decoder.bias": "output.bias"}

    def vocab_parameters(self) -> dict[str, str]:
        return {"embedding.weight": "vocab", f"{self.output_name}.weight": "vocab", f"{self.output_name}.bias": "vocab"}


def test_a_source_with_the_legacy_names_fills_the_renamed_layer() -> None:
    source, target = SmallLM(SOURCE_VOCAB, "decoder"), SmallLM(TARGET_VOCAB, "output")
    before = snapshot(target)
    report = transfer_weights(target, source, {"vocab": TARGET_VOCAB}, {"vocab": SOURCE_VOCAB})
    renamed = {"output.weight": "decoder.weight", "output.bias": "decoder.bias"}
    assert_copied_as_reported(report, before, snapshot(target), snapshot(source), renamed=renamed)
    assert len(report.copied) == 7 and report.kept == [] and report.unused == []
    assert ("output.weight", "decoder.weight", "7 of 9 rows (tokens in both vocabularies)") in report.copied


def test_strict_copies_everything_or_refuses_with_the_first_mismatches() -> None:
    source = lm(SOURCE_VOCAB, seed=1)
    same = lm(SOURCE_VOCAB, seed=2)
    report = transfer_weights(same, source, {"vocab": SOURCE_VOCAB}, {"vocab": SOURCE_VOCAB}, strict=True)
    assert report.kept == [] and report.unused == [] and len(report.copied) == 7
    for name, tensor in snapshot(source).items():
        assert torch.equal(snapshot(same)[name], tensor)
    bigger = lm(SOURCE_VOCAB, hidden=8, seed=2)
    before = snapshot(bigger)
    with pytest.raises(RnnkitError, match=r"^src: --init-from \(same task, strict\) needs the same model and "
                                          r"vocabulary: 'rnns.0.weight_ih_l0': shape \(32, 4\) here, \(24, 4\) in "
                                          rf"the source; .*; '{OUT}.weight': rows of shape \(8,\) here, \(6,\) "
                                          r"in the source; --init-partial copies what matches and reports the rest$"):
        transfer_weights(bigger, source, {"vocab": SOURCE_VOCAB}, {"vocab": SOURCE_VOCAB}, strict=True,
                         source_label="src")
    assert all(torch.equal(t, before[n]) for n, t in snapshot(bigger).items())  # nothing copied
    with pytest.raises(RnnkitError, match=r"the vocab vocabulary differs \(9 tokens here, 8 in the source\)"):
        transfer_weights(lm(TARGET_VOCAB), source, {"vocab": TARGET_VOCAB}, {"vocab": SOURCE_VOCAB}, strict=True)


def every_kind_of_model() -> dict[str, nn.Module]:
    """One tiny model of each layout weight transfer meets: each task's, with each output layer and joint part."""
    adaptive = SoftmaxOptions("adaptive", (8, 16), 2.0)
    s2s = Seq2SeqModelConfig(hidden_size=16, decoder="state")
    lm_cfg = {"embedding_size": 8, "hidden_size": 16, "layers": 1}
    classifier = {"encoder": "lstm", "embedding_size": 8, "hidden_size": 16, "pooling": "attention", "head_hidden": 4}
    return {
        "lm": RNNLanguageModel(ModelConfig(**lm_cfg), 25),
        "lm-adaptive": RNNLanguageModel(ModelConfig(**lm_cfg, softmax="adaptive", adaptive_cutoffs=[8, 16],
                                                    adaptive_div=2.0), 25),
        "seq2seq": Seq2SeqModel(s2s, 25, 25),
        "autoencoder-adaptive": Seq2SeqModel(s2s, 25, 25, adaptive),
        **{f"classifier-{joint}": SequenceClassifier(ClassifyModel(**classifier, joint=joint), 2, vocab_size=25)
           for joint in ("none", "lm", "reconstruct")},
    }


def test_a_tensor_follows_the_vocabularys_order_in_both_models_or_in_neither() -> None:
    """Why the planner has no case for a tensor that follows the vocabulary's order (an adaptive softmax's) on one
    side only: between any two models, under any --init-prefix, a target tensor and the source tensor it is
    matched with are both such tensors or neither."""
    models = every_kind_of_model()
    ordered = {name for name, model in models.items() if vocab_roles(model, "vocab_order_parameters")}
    assert ordered == {"lm-adaptive", "autoencoder-adaptive"}
    for target in models.values():
        names = list(named_tensors(target))
        prefixes = {""} | {name[:i + 1] for name in names for i, char in enumerate(name) if char == "."}
        for source in models.values():
            for prefix in prefixes:
                planner = _Planner(target, source, {}, {}, prefix, TransferReport("source"))
                for name in planner.target_tensors:
                    source_name = planner.source_names.get(name)
                    if source_name is not None:
                        assert (name in planner.target_order) == (source_name in planner.source_order), \
                            (prefix, name, source_name)


def test_tied_weights_count_under_both_names() -> None:
    tied_source = lm(SOURCE_VOCAB, hidden=4, seed=1, tie_weights=True)
    untied = lm(SOURCE_VOCAB, hidden=4, seed=2)
    report = transfer_weights(untied, tied_source, {"vocab": SOURCE_VOCAB}, {"vocab": SOURCE_VOCAB}, strict=True)
    assert (f"{OUT}.weight", f"{OUT}.weight", "8 of 8 rows (tokens in both vocabularies)") in report.copied
    assert torch.equal(getattr(untied, OUT).weight, tied_source.embedding.weight)
    tied = lm(SOURCE_VOCAB, hidden=4, seed=3, tie_weights=True)
    report = transfer_weights(tied, tied_source, {"vocab": SOURCE_VOCAB}, {"vocab": SOURCE_VOCAB}, strict=True)
    assert report.unused == [] and [t for t, _, _ in report.copied][0] == "embedding.weight"
    with pytest.raises(RnnkitError, match=f"'{OUT}.weight' of the source: the new model ties {OUT}.weight to "
                                          "embedding.weight"):
        transfer_weights(lm(SOURCE_VOCAB, hidden=4, tie_weights=True), untied, {"vocab": SOURCE_VOCAB},
                         {"vocab": SOURCE_VOCAB}, strict=True)


# ---------------------------------------------------------------------------------------------- from a folder
def test_init_model_from_a_model_directory(tiny_model: Path) -> None:
    vocab = Vocab.load(tiny_model / "vocab.json")
    target = lm(vocab, hidden=16, embedding=8)
    before = snapshot(target)
    report = init_model(target, tiny_model, {"vocab": vocab}, strict=True)
    stored = load_file(tiny_model / "model.safetensors")
    assert report.kept == [] and report.unused == []
    assert all(torch.equal(t, stored[n]) for n, t in snapshot(target).items())
    assert not torch.equal(before["embedding.weight"], stored["embedding.weight"])
    assert str(report).startswith(f"--init-from {tiny_model}: copied 7 of 7 tensors")


@pytest.mark.parametrize(("edit", "message"), [
    (("config.yaml", "hidden_size: 16", "hidden_size: 12"), "config and weights disagree"),
    (("vocab.json", '"ball"', '"balls"'), "was changed since the weights were saved"),
    (("model.safetensors", b'"F32"', b'"I64"'), "weights file is corrupt"),
])
def test_an_untrusted_source_is_checked_before_a_tensor_is_read(tiny_model: Path, tmp_path: Path, edit, message,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "source"
    shutil.copytree(tiny_model, source)
    name, old, new = edit
    path = source / name
    old, new = (old, new) if isinstance(old, bytes) else (old.encode(), new.encode())
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new, 1))

    def no_tensor_reads(*args, **kwargs):
        raise AssertionError("a tensor was read before the source was checked")

    monkeypatch.setattr(checkpoint, "load_safetensors_bytes", no_tensor_reads)
    vocab = Vocab.load(tiny_model / "vocab.json")
    with pytest.raises(AssertionError, match="a tensor was read"):  # the good source is read through it
        init_model(lm(vocab, hidden=16, embedding=8), tiny_model, {"vocab": vocab})
    with pytest.raises(RnnkitError, match=message):
        init_model(lm(vocab, hidden=16, embedding=8), source, {"vocab": vocab})


def test_train_init_partial_into_a_bigger_model_with_its_own_vocabulary(tiny_model: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    data = write_lines(tmp_path / "other.txt", ["a zebra finds the moon .", *corpus_lines(30, seed=5)])
    new = tmp_path / "new"
    # lr 0: the weights of step 1 are the ones the transfer gave
    rnnkit.train("lm", data=str(data), out=new, init_from=tiny_model, init_partial=True,
                 overrides=[*TINY, "model.hidden_size=24", "train.max_steps=1", "train.lr=0.0"])
    printed = capsys.readouterr().out
    source, target = Vocab.load(tiny_model / "vocab.json"), Vocab.load(new / "vocab.json")
    assert "zebra" in target and "zebra" not in source  # the new run's own vocabulary
    shared = sum(token in source for token in target.itos)
    assert f"  copied  embedding.weight: {shared} of {len(target)} rows (tokens in both vocabularies)" in printed
    assert "  kept    rnns.0.weight_hh_l0: shape (96, 24) here, (64, 16) in the source" in printed
    stored, trained = load_file(tiny_model / "model.safetensors"), load_file(new / "checkpoint" / "last.safetensors")
    for token in ("the", "cat", "<eos>"):
        for name in ("embedding.weight", f"{OUT}.bias"):
            assert torch.equal(trained[name][target.stoi[token]], stored[name][source.stoi[token]])


def test_cli_init_from_options(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = write_lines(tmp_path / "other.txt", corpus_lines(30, seed=5))
    train = ["train", "lm", "--data", str(data), *[a for s in [*TINY, "train.max_steps=1"] for a in ("--set", s)]]
    assert main([*train, "--out", str(tmp_path / "a"), "--init-from", str(tiny_model), "--init-partial",
                 "--set", "model.embedding_size=6"]) == 0
    out = capsys.readouterr().out
    assert f"--init-from {tiny_model}: copied 5 of 7 tensors" in out
    assert "  kept    embedding.weight: rows of shape (6,) here, (8,) in the source" in out
    assert main([*train, "--out", str(tmp_path / "b"), "--init-prefix", "encoder"]) == 2
    assert "error: --init-prefix needs --init-from DIR" in capsys.readouterr().err
    assert main([*train, "--out", str(tmp_path / "c"), "--init-from", str(tiny_model), "--init-prefix", "encoder"]) == 2
    assert "error: --init-prefix 'encoder': the new model has no tensor under 'encoder.'" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()

"""The sequence autoencoder with ``model.softmax adaptive`` (rnnkit.nn.softmax in the decoder): its training loss
is the summed NLL of the factorised distribution, validation and `rnnkit reconstruct` run on its log-probabilities,
a run resumes exactly, and a classifier --init-from it copies the embedding and encoder as from a full-softmax one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import rnnkit
from conftest import assert_same_run, corpus_lines, write_lines
from rnnkit import transfer
from rnnkit.cli import main
from rnnkit.config import load_config
from rnnkit.data.vocab import Vocab
from rnnkit.distributed import DistInfo
from rnnkit.memory import softmax_width
from rnnkit.models.seq2seq import Seq2SeqModel, Seq2SeqModelConfig
from rnnkit.nn.softmax import AdaptiveSoftmax, SoftmaxOptions
from rnnkit.tasks.autoencoder import build_model, collate, reconstruction_loss
from rnnkit.tasks.classify import ClassifyTask

pytestmark = pytest.mark.usefixtures("no_curves")

ADAPTIVE = ["model.softmax=adaptive", "model.adaptive_cutoffs=[8, 16]", "model.adaptive_div=2"]
SIZES = ["model.embedding_size=8", "model.hidden_size=32", "train.lr=0.02", "train.progress=false",
         "train.device=cpu", "train.seed=5", "train.log_every=2", "train.batch_size=16", "data.valid_fraction=0.1"]
CLS = ["model.embedding_size=8", "model.hidden_size=32", "train.progress=false", "train.device=cpu",
       "train.epochs=1", "train.batch_size=16"]


def tiny_autoencoder(vocab: int = 25) -> Seq2SeqModel:
    torch.manual_seed(0)
    cfg = load_config(None, [*SIZES, *ADAPTIVE], {"task": "autoencoder"})
    return build_model(cfg, vocab)


def log_probs_by_hand(output: AdaptiveSoftmax, hidden: torch.Tensor) -> torch.Tensor:
    """p(w) = p_head(w) in the head, else p_head(cluster) * p(w | cluster) (Grave et al. 2017), written out."""
    cutoffs = output.cutoffs
    head = F.log_softmax(hidden @ output.head.weight.T + output.head.bias, -1)
    parts = [head[:, :cutoffs[0]]]
    for i in range(len(cutoffs) - 1):
        projected, words = output.tail[i][0].weight, output.tail[i][1].weight
        parts.append(head[:, cutoffs[0] + i:cutoffs[0] + i + 1] + F.log_softmax(hidden @ projected.T @ words.T, -1))
    return torch.cat(parts, -1)


def test_the_reconstruction_loss_is_the_summed_nll_of_the_factorised_distribution() -> None:
    model = tiny_autoencoder()
    assert isinstance(model.decoder.output, AdaptiveSoftmax)
    texts = [[5, 9, 17, 24, 4], [12, 20], [6, 7, 8, 16, 23, 15, 10]]  # every cluster; padding in two texts
    batch = collate(texts, [0, 1, 2])
    vectors, _ = model.decoder.vectors(batch.trg_in, model.start(model.encode(batch.src, batch.lengths)))
    by_hand = log_probs_by_hand(model.decoder.output, vectors.reshape(-1, 32))
    target = batch.trg_out.reshape(-1)
    kept = target != Vocab.pad_id
    expected = -by_hand[kept].gather(1, target[kept, None]).sum()
    loss = model(batch.src, batch.lengths, batch.trg_in, batch.trg_out)
    assert torch.allclose(loss, expected, rtol=1e-6)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()  # validation scores every token's log-probabilities (accuracy needs them): the same loss
    with torch.no_grad():
        scored, right, count = reconstruction_loss(model, batch)
        assert torch.allclose(model(batch.src, batch.lengths, batch.trg_in).exp().sum(-1), torch.ones(8, 3))
        assert torch.allclose(scored, model(batch.src, batch.lengths, batch.trg_in, batch.trg_out), rtol=1e-5)
    assert count == int(kept.sum()) == 17 and 0 <= int(right) <= count


def test_the_adaptive_decoder_has_its_own_names_and_refuses_tied_embeddings() -> None:
    names = {n for n, _ in tiny_autoencoder().named_parameters() if n.startswith("decoder.output.")}
    assert names == {"decoder.output.head.weight", "decoder.output.head.bias", "decoder.output.tail.0.0.weight",
                     "decoder.output.tail.0.1.weight", "decoder.output.tail.1.0.weight",
                     "decoder.output.tail.1.1.weight"}
    assert set(tiny_autoencoder().vocab_order_parameters()) == names
    tied = Seq2SeqModelConfig(hidden_size=16, trg_embedding_size=16, decoder="state", tie_embeddings=True)
    with pytest.raises(ValueError, match="model.tie_embeddings shares the target embedding with a full softmax"):
        Seq2SeqModel(tied, 25, 25, SoftmaxOptions("adaptive", (8, 16), 2.0))
    assert Seq2SeqModel(tied, 25, 25).vocab_order_parameters() == {}  # the full softmax: rows by token


def test_the_memory_estimate_counts_the_head_and_largest_cluster() -> None:
    cfg = load_config(None, [*SIZES, *ADAPTIVE], {"task": "autoencoder"})
    assert softmax_width(cfg.model, 25) == 8 + 2 + 9  # the head's words and clusters, then the last cluster's 9


@pytest.fixture(scope="module")
def texts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("texts")
    path = root / "unsup.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in corpus_lines(64, 3)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def adaptive_dir(texts: Path) -> Path:
    out = texts.parent / "ae"
    rnnkit.train("autoencoder", data=str(texts), out=out, overrides=[*SIZES, *ADAPTIVE, "train.max_steps=12"])
    return out


def test_an_adaptive_autoencoder_evaluates_and_reconstructs(adaptive_dir: Path, tmp_path: Path, capsys) -> None:
    model = rnnkit.load(adaptive_dir)
    assert model.config.model.softmax == "adaptive" and isinstance(model.model.decoder.output, AdaptiveSoftmax)
    held_out = write_lines(tmp_path / "held.txt", corpus_lines(10, 11))
    metrics = model.evaluate(held_out)
    ids = model._ids(model._read(held_out))
    batch = collate(ids, list(range(len(ids))))
    with torch.no_grad():
        nll = model.model(batch.src, batch.lengths, batch.trg_in, batch.trg_out).item()
    assert metrics["loss"] == pytest.approx(nll / metrics["tokens"], rel=1e-5)
    sentences = corpus_lines(6, 13)
    greedy, beam = model.reconstruct(sentences), model.reconstruct(sentences, beam=3)
    assert len(greedy) == len(beam) == 6 and model.reconstruct(sentences, beam=3, batch_size=2) == beam
    assert main(["reconstruct", str(adaptive_dir), *sentences[:2]]) == 0
    assert capsys.readouterr().out.splitlines() == greedy[:2]


def test_an_adaptive_autoencoder_resumes_exactly(texts: Path, tmp_path: Path) -> None:
    sets = [*SIZES, *ADAPTIVE, "train.eval_every=4"]
    rnnkit.train("autoencoder", data=str(texts), out=tmp_path / "full", overrides=[*sets, "train.max_steps=10"])
    rnnkit.train("autoencoder", data=str(texts), out=tmp_path / "part", overrides=[*sets, "train.max_steps=4"])
    rnnkit.train("autoencoder", out=tmp_path / "part", resume=True, overrides=["train.max_steps=10"])
    assert_same_run(tmp_path / "full", tmp_path / "part")


@pytest.mark.parametrize("joint", ["none", "reconstruct"])
def test_classify_init_from_an_adaptive_autoencoder_copies_the_embedding_and_encoder(
        adaptive_dir: Path, tmp_path: Path, joint: str) -> None:
    """The classifier's joint decoder keeps a full softmax: from an adaptive autoencoder its output layer stays
    fresh (reported), everything else is copied as from a full-softmax one."""
    data = tmp_path / "labelled.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": "cat" if "cat" in t else "other"}) + "\n"
                            for t in corpus_lines(40, 4)), encoding="utf-8")
    cfg = load_config(None, [*CLS, f"data.train={data}", f"model.joint={joint}"], {"task": "classify"})
    task = ClassifyTask(cfg, DistInfo(), torch.device("cpu"))
    before = {k: v.clone() for k, v in task.model.state_dict().items()}
    report = transfer.init_model(task.model, adaptive_dir, task.vocabularies())
    source = rnnkit.load(adaptive_dir)
    weights = source.model.state_dict()
    rnn = [f"rnns.0.{p}_l0" for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    parts = ["encoder"] + (["decoder"] if joint == "reconstruct" else [])
    assert {t for t, _, _ in report.copied} == {f"{part}.{name}" for part in parts
                                                  for name in ["embedding.weight", *rnn]}
    vocab = task.reader.vocab
    for name in [f"{part}.embedding.weight" for part in parts]:
        for token in ("cat", "the", "<unk>"):
            assert torch.equal(task.model.state_dict()[name][vocab.stoi[token]],
                               weights[name][source.vocab.stoi[token]])
    for name in [f"{part}.{r}" for part in parts for r in rnn]:
        assert torch.equal(task.model.state_dict()[name], weights[name])
    kept = dict(report.kept)
    if joint == "reconstruct":
        assert kept["decoder.output.weight"] == kept["decoder.output.bias"] == "not in the source"
    assert all(torch.equal(task.model.state_dict()[name], before[name]) for name in kept)
    assert {s for s, _ in report.unused} >= {"decoder.output.head.weight", "decoder.output.tail.1.1.weight"}

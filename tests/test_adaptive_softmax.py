"""The LM's adaptive softmax (``model.softmax: adaptive``): its loss, perplexity, generation, checkpoints,
memory estimate and weight transfer agree with a computation by hand and with the full softmax's contract."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import rnnkit
from conftest import assert_same_run
from rnnkit.data.lm import IGNORE_INDEX
from rnnkit.data.vocab import Vocab
from rnnkit.memory import count_parameters
from rnnkit.models.lm import RNNLanguageModel
from rnnkit.tasks.lm_config import ModelConfig
from rnnkit.transfer import transfer_weights

ADAPTIVE = ["model.softmax=adaptive", "model.adaptive_cutoffs=[6, 12]", "model.adaptive_div=2"]


def tiny_model(vocab: int = 20, cutoffs: tuple[int, ...] = (6, 12)) -> RNNLanguageModel:
    torch.manual_seed(0)
    cfg = ModelConfig(embedding_size=8, hidden_size=16, layers=1, softmax="adaptive",
                      adaptive_cutoffs=list(cutoffs), adaptive_div=2.0)
    return RNNLanguageModel(cfg, vocab)


def log_probs_by_hand(model: RNNLanguageModel, hidden: torch.Tensor) -> torch.Tensor:
    """Grave et al.'s factorisation written out: p(w) = p_head(w) in the head, else p_head(cluster) * p(w | cluster)."""
    out, cutoffs = model.output, model.output.cutoffs
    head = F.log_softmax(hidden @ out.head.weight.T + out.head.bias, -1)
    parts = [head[:, :cutoffs[0]]]
    for i, (start, end) in enumerate(zip(cutoffs, cutoffs[1:], strict=False)):
        projected, words = out.tail[i][0].weight, out.tail[i][1].weight
        assert words.shape[0] == end - start
        parts.append(head[:, cutoffs[0] + i:cutoffs[0] + i + 1] + F.log_softmax(hidden @ projected.T @ words.T, -1))
    return torch.cat(parts, -1)


def test_the_loss_is_the_summed_nll_of_the_factorised_distribution() -> None:
    model = tiny_model()
    inputs = torch.randint(0, 20, (7, 3), generator=torch.Generator().manual_seed(1))
    targets = torch.tensor([[0, 5, 6], [11, 12, 19]] * 3 + [[IGNORE_INDEX, 3, IGNORE_INDEX]])  # every cluster, padding
    out = model(inputs)
    by_hand = log_probs_by_hand(model, out.last_dropped.reshape(-1, 16))
    assert torch.allclose(by_hand.exp().sum(-1), torch.ones(21), atol=1e-6)  # a proper distribution
    assert torch.allclose(out.logits.reshape(-1, 20), by_hand, atol=1e-5)  # what sampling and search take
    kept = targets.reshape(-1) != IGNORE_INDEX
    expected = -by_hand[kept].gather(1, targets.reshape(-1)[kept, None]).sum()
    loss = out.loss_sum(targets)
    assert loss.dtype == torch.float32 and torch.allclose(loss, expected, rtol=1e-6)
    loss.backward()  # every cluster's layer gets a gradient
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.output.parameters())


def test_the_memory_estimate_counts_the_adaptive_parameters() -> None:
    model = tiny_model(vocab=50, cutoffs=(6, 12, 30))
    assert count_parameters(model.cfg, 50) == sum(p.numel() for p in model.parameters())


@pytest.fixture
def adaptive_run(train_tiny, valid_corpus: Path):
    def run(name: str, *overrides: str, **kw) -> Path:
        return train_tiny(name, *ADAPTIVE, "train.eval_every=4", "train.epochs=3", *overrides,
                          valid=str(valid_corpus), **kw)
    return run


def test_evaluate_gives_exp_of_the_mean_nll(adaptive_run, valid_corpus: Path) -> None:
    lm = rnnkit.load(adaptive_run("m", "train.max_steps=12"))
    metrics = lm.evaluate(valid_corpus, batch_size=1)  # one stream: the state runs through the whole text
    text = torch.tensor(lm.prompt_ids(valid_corpus.read_text()))[:, None]  # each line then <eos>, as read
    with torch.no_grad():
        log_probs = lm.model(text[:-1]).logits[:, 0]
    nll = -log_probs.gather(1, text[1:]).sum().item()
    assert metrics["oov"] == 0 and metrics["loss"] == pytest.approx(nll / (len(text) - 1), rel=1e-5)
    assert metrics["ppl"] == pytest.approx(math.exp(nll / (len(text) - 1)), rel=1e-5)


def test_generation_samples_from_the_adaptive_distribution(adaptive_run) -> None:
    lm = rnnkit.load(adaptive_run("m", "train.max_steps=12"))
    greedy = lm.generate("the cat", 4, greedy=True)[0]
    with torch.no_grad():
        first = lm.model(torch.tensor(lm.prompt_ids("the cat"))[:, None]).logits[-1, 0].argmax().item()
    assert greedy.split()[0] == lm.vocab.itos[first]
    kw = {"temperature": 0.8, "top_k": 5, "seed": 3, "num_samples": 3, "stop_at_eos": False}
    samples = lm.generate("the cat", 6, **kw)
    assert samples == lm.generate("the cat", 6, **kw)
    assert [piece.tokens for piece in lm.stream("the cat", 6, **kw) if piece.end] == [6, 6, 6]


def test_an_adaptive_run_resumes_exactly(adaptive_run) -> None:
    full = adaptive_run("full", "train.max_steps=14")
    part = adaptive_run("part", "train.max_steps=8")  # at a validation: no extra row
    rnnkit.train("lm", out=part, resume=True, overrides=["train.max_steps=14"])
    assert_same_run(full, part)
    again = rnnkit.load(part)
    assert again.config.model.softmax == "adaptive" and again.config.model.adaptive_cutoffs == [6, 12]


def test_lm_to_lm_transfer_copies_the_clusters_only_from_the_same_vocabulary() -> None:
    source, words = tiny_model(), [f"w{i}" for i in range(16)]
    same = transfer_weights(tiny_model(), source, {"vocab": Vocab(words)}, {"vocab": Vocab(words)}, strict=True)
    assert len(same.copied) == len(list(source.parameters())) and not same.kept
    target = tiny_model()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    report = transfer_weights(target, source, {"vocab": Vocab(words[::-1])}, {"vocab": Vocab(words)})
    kept = dict(report.kept)
    assert set(kept) == {n for n, _ in target.named_parameters() if n.startswith("output.")}
    assert all("follows the order of the vocab vocabulary (adaptive softmax clusters)" in why for why in kept.values())
    assert all(torch.equal(target.state_dict()[n], before[n]) for n in kept)
    here, there = target.embedding.weight, source.embedding.weight  # rows by token: w0 is id 4 there, 19 here
    assert torch.equal(here[19], there[4]) and torch.equal(here[4], there[19])


def test_lm_to_lm_transfer_copies_no_cluster_from_other_cutoffs() -> None:
    """One vocabulary, a moved cutoff: the head's shape is the same, but its cluster rows mean other ids."""
    words = [f"w{i}" for i in range(16)]
    source, target = tiny_model(cutoffs=(6, 12)), tiny_model(cutoffs=(6, 14))
    report = transfer_weights(target, source, {"vocab": Vocab(words)}, {"vocab": Vocab(words)})
    kept = dict(report.kept)
    assert set(kept) == {n for n, _ in target.named_parameters() if n.startswith("output.")}
    assert "output.head.weight" in kept and "clusters differ" in kept["output.head.weight"]
    assert {name for name, _, _ in report.copied} >= {"embedding.weight", "rnns.0.weight_hh_l0"}


def test_the_loss_under_bf16_autocast_is_summed_in_float32() -> None:
    """torch's adaptive softmax gathers each row's log-probability in its input's dtype: under autocast each
    would be rounded to bf16 (relative error ~3e-4 on this batch), so the loss runs outside it."""
    model = tiny_model(vocab=3000, cutoffs=(100, 1000)).output
    hidden = torch.randn(500, 16, generator=torch.Generator().manual_seed(0))
    targets = torch.randint(0, 3000, (500,), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        exact = model.loss_sum(hidden, targets)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model.loss_sum(hidden.bfloat16(), targets)
    assert mixed.dtype == torch.float32 and torch.allclose(mixed, exact, rtol=2e-5)

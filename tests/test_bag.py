"""rnnkit.nn.bag and the bag of means' batches: the weighted bag of a text's tokens (every token, or each distinct
one with its count) is the masked mean of its step embeddings, value and gradient; the gradient by token equals
adding each entry's share of its text's gradient row by row, in one fixed order; a data set's distinct tokens and
their batches; the classifier and its task fed TokenBags train exactly as on padded batches."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import rnnkit
from conftest import assert_same_run
from rnnkit.config import load_config
from rnnkit.data.batching import TokenBags, bags_of_padded
from rnnkit.data.labelled import Encoded, collate, collate_bags
from rnnkit.distributed import DistInfo
from rnnkit.models.classifier import SequenceClassifier
from rnnkit.nn.bag import bag_mean, gradient_by_token
from rnnkit.tasks.classify import ClassifyTask, predict, score_batches, scores, scoring_batches
from rnnkit.tasks.classify_config import ClassifyModel
from test_classify import CLS, order_texts, write_jsonl

pytestmark = pytest.mark.usefixtures("no_curves")


def padded_batch(seed: int = 0, steps: int = 9, batch: int = 6, vocab: int = 20):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, steps + 1, (batch,), generator=g)
    lengths[0] = steps
    ids = torch.randint(1, vocab, (steps, batch), generator=g)
    padding = torch.arange(steps).unsqueeze(1) >= lengths.unsqueeze(0)
    return ids.masked_fill(padding, 0), lengths, padding


def encoded_texts(ids: torch.Tensor, lengths: torch.Tensor, labels: list[int] | None = None) -> Encoded:
    """A padded batch's texts as an encoded set (labels default 0)."""
    texts = [ids[: int(n), b].tolist() for b, n in enumerate(lengths)]
    return Encoded([len(t) for t in texts], labels or [0] * len(texts), ids=texts)


def masked_mean(ids, lengths, padding, weight):
    steps = F.embedding(ids, weight, padding_idx=0).masked_fill(padding.unsqueeze(-1), 0.0)
    return steps.sum(0) / lengths.unsqueeze(-1)


def value_and_gradient(mean_of, weight: torch.Tensor, direction: torch.Tensor):
    weight = weight.detach().clone().requires_grad_(True)
    value = mean_of(weight)
    (value * direction).sum().backward()
    return value.detach(), weight.grad


@pytest.mark.parametrize("distinct", [False, True])
def test_a_bag_mean_is_the_masked_mean_of_the_embeddings_with_its_gradient(distinct: bool) -> None:
    ids, lengths, padding = padded_batch()
    bags = (collate_bags(encoded_texts(ids, lengths), list(range(6))).inputs if distinct
            else bags_of_padded(ids, lengths))
    weight, direction = torch.randn(20, 5), torch.randn(6, 5)
    fast, fast_grad = value_and_gradient(lambda w: bag_mean(bags.ids, bags.shares, bags.offsets, w), weight, direction)
    slow, slow_grad = value_and_gradient(lambda w: masked_mean(ids, lengths, padding, w), weight, direction)
    torch.testing.assert_close(fast, slow, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(fast_grad, slow_grad, atol=1e-6, rtol=1e-6)
    assert not fast_grad[0].any()  # the padding row learns nothing


@pytest.mark.parametrize("rows", [50, 40000])  # 16-bit sort keys, and 32-bit ones past 32,768 rows
def test_the_gradient_by_token_sums_each_tokens_entries_in_their_input_order_bit_for_bit(rows: int) -> None:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, rows, (400,), generator=g)
    ids[::3] = rows - 1  # one token in every text, and most tokens in several
    ids[1::3] = torch.randint(0, 7, (133,), generator=g)
    # shares of 1/2^k: each product is exact, so only the order of the sums can change a bit of the result
    shares = 2.0 ** -torch.randint(0, 4, (400,), generator=g).float()
    offsets = torch.tensor([0, 30, 30, 170, 300])  # the second text: no entry
    grad = torch.randn(5, 4, generator=g) * 10.0 ** torch.randint(-6, 7, (5, 4), generator=g)
    bag_of_entry = torch.repeat_interleave(torch.arange(5), torch.tensor([30, 0, 140, 130, 100]))

    def summed(entries) -> torch.Tensor:  # row by row, fp32, in the order given
        total = torch.zeros(rows, 4)
        for entry in entries:
            total[ids[entry]] += shares[entry] * grad[bag_of_entry[entry]]
        return total

    in_order = summed(range(400))
    assert not torch.equal(in_order, summed(reversed(range(400))))  # this data tells the orders apart
    assert torch.equal(gradient_by_token(ids, shares, offsets, grad, rows), in_order)


def test_a_sets_distinct_tokens_and_their_batches() -> None:
    texts = [[5, 6, 5, 5], [7], [9, 8, 9], [4, 4]]
    data = Encoded([len(t) for t in texts], [0, 1, 0, 1], ids=texts)
    ids, shares, starts = data.distinct_tokens
    assert ids.tolist() == [5, 6, 7, 8, 9, 4] and starts.tolist() == [0, 2, 3, 5, 6]
    assert shares.tolist() == [0.75, 0.25, 1.0, pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0]
    batch = collate_bags(data, [2, 0, 3])
    assert batch.inputs.ids.tolist() == [8, 9, 5, 6, 4] and batch.inputs.offsets.tolist() == [0, 2, 4]
    assert batch.inputs.shares.tolist() == pytest.approx([1 / 3, 2 / 3, 0.75, 0.25, 1.0])
    assert batch.lengths.tolist() == [3, 4, 2] and batch.labels.tolist() == [0, 0, 1] and len(batch.inputs) == 3
    assert collate_bags(Encoded(data.lengths, None, ids=texts), [1]).labels is None


@pytest.mark.parametrize("outlier", [0, 3000])  # a padded table of the texts; none (one text far the longest)
def test_each_texts_distinct_tokens_are_counted_with_or_without_a_padded_table(outlier: int) -> None:
    g = torch.Generator().manual_seed(3)
    texts = [torch.randint(1, 9, (int(n),), generator=g).tolist() for n in torch.randint(0, 12, (2100,), generator=g)]
    texts[7] = [4] * outlier or texts[7]
    data = Encoded([len(t) for t in texts], None, ids=texts)
    assert (data.id_table is None) == bool(outlier)
    ids, shares, starts = data.distinct_tokens
    for text, (start, end) in zip(texts, zip(starts[:-1], starts[1:], strict=True), strict=True):
        counts = Counter(text)
        assert ids[start:end].tolist() == sorted(counts)
        assert shares[start:end].tolist() == pytest.approx([counts[t] / len(text) for t in sorted(counts)])


def bag_model(**kw) -> SequenceClassifier:
    torch.manual_seed(0)
    return SequenceClassifier(ClassifyModel(encoder="bag", pooling="mean", embedding_size=4, head_hidden=3, **kw), 2,
                              vocab_size=20)


def test_the_bag_classifier_ignores_padding_and_its_neighbours() -> None:
    model = bag_model()
    ids, lengths, _ = padded_batch()
    together = model(ids, lengths)
    alone = torch.cat([model(ids[: int(n), b: b + 1], lengths[b: b + 1]) for b, n in enumerate(lengths)])
    assert torch.equal(together, alone)


def train_steps(model: SequenceClassifier, batches: list) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for batch in batches:
        optimizer.zero_grad()
        F.cross_entropy(model(batch.inputs, batch.lengths), batch.labels).backward()
        optimizer.step()


def test_the_bag_classifier_trains_on_token_bags_as_on_padded_batches() -> None:
    ids, lengths, _ = padded_batch(steps=12, batch=16)
    data = encoded_texts(ids, lengths, labels=[b % 2 for b in range(16)])
    parts = [[0, 3, 5, 7, 9], [1, 2, 4, 6, 8, 10], [11, 12, 13, 14, 15]] * 3
    padded, bagged = bag_model(), bag_model()
    train_steps(padded, [collate(data, p) for p in parts])
    train_steps(bagged, [collate_bags(data, p) for p in parts])
    for (name, a), b in zip(padded.named_parameters(), bagged.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, msg=name)
    everyone = list(range(16))
    torch.testing.assert_close(padded.eval()(collate(data, everyone).inputs, lengths),
                               bagged.eval()(collate_bags(data, everyone).inputs, lengths), atol=1e-5, rtol=1e-5)


def test_token_bags_feed_only_a_bag_of_means() -> None:
    ids, lengths, _ = padded_batch()
    bags = bags_of_padded(ids, lengths)
    lstm = SequenceClassifier(ClassifyModel(encoder="lstm", embedding_size=4, hidden_size=3), 2, vocab_size=20)
    dropped = bag_model(embedding_dropout=0.5)  # drops step embeddings in training: the general path
    assert not lstm.reads_token_bags(training=False) and bag_model().reads_token_bags(training=True)
    assert dropped.reads_token_bags(training=False) and not dropped.reads_token_bags(training=True)
    dropped.eval()(bags, lengths)
    for model in (lstm, dropped.train()):
        with pytest.raises(ValueError, match="TokenBags feed only a bag of means"):
            model(bags, lengths)


def test_under_bf16_autocast_the_bag_mean_and_its_gradient_are_computed_in_fp32() -> None:
    ids, lengths, padding = padded_batch()
    bags = bags_of_padded(ids, lengths)
    weight, direction = torch.randn(20, 5), torch.randn(6, 3)
    head = torch.nn.Linear(5, 3)  # runs in bf16 under autocast, as the classifier's head does

    def under_autocast(mean_of):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return value_and_gradient(lambda w: head(mean_of(w)).float(), weight, direction)

    fast, fast_grad = under_autocast(lambda w: bag_mean(bags.ids, bags.shares, bags.offsets, w))
    slow, slow_grad = under_autocast(lambda w: masked_mean(ids, lengths, padding, w))  # fp32 mean, same bf16 head
    # bf16 keeps 8 bits (relative error ~4e-3): a bag or gradient computed in it would be far outside these
    torch.testing.assert_close(fast, slow, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(fast_grad, slow_grad, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("dropout, bags", [("0", True), ("0.3", False)])
def test_the_bag_task_batches_token_bags_when_its_model_reads_them(tmp_path: Path, dropout: str, bags: bool) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", order_texts(60, 1))
    valid = write_jsonl(tmp_path / "valid.jsonl", order_texts(50, 2))
    cfg = load_config(None, [*CLS, f"data.train={train}", f"data.valid={valid}", "train.eval_batch_size=16",
                             "model.encoder=bag", "model.pooling=mean", f"model.embedding_dropout={dropout}"],
                      {"task": "classify"})
    task = ClassifyTask(cfg, DistInfo(), torch.device("cpu"))
    batch = task.train_data.batch(task.train_data.plan(0)[0])
    assert isinstance(batch.inputs, TokenBags) == bags
    assert all(isinstance(b.inputs, TokenBags) for _, b in task._valid_batches())  # scoring: always bags
    padded = score_batches(task.model, scoring_batches(task.valid_set, 16), torch.device("cpu"))[0]
    scored = []  # what predict (evaluate, classify, the test after training) feeds the model: bags
    hook = task.model.register_forward_pre_hook(lambda _, args: scored.append(type(args[0])))
    torch.testing.assert_close(predict(task.model, task.valid_set, 16, torch.device("cpu")), padded)
    hook.remove()
    assert scored and set(scored) == {TokenBags}
    assert task.validate(task.model) == pytest.approx(scores(padded, task.valid_set.labels, task.reader.labels)[0])


def presence_texts(n: int, seed: int) -> list[dict]:
    """Texts of 2-9 filler words; label "x" when the word x is among them: what a bag of words can learn."""
    g = torch.Generator().manual_seed(seed)
    words = ["a", "b", "c", "d", "e", "f", "x"]
    records = []
    for _ in range(n):
        text = [words[i] for i in torch.randint(0, len(words), (int(torch.randint(2, 10, (1,), generator=g)),),
                                                generator=g).tolist()]
        records.append({"text": " ".join(text), "label": "x" if "x" in text else "none"})
    return records


BAG = [*CLS, "model.encoder=bag", "model.pooling=mean", "model.head_hidden=8", "train.lr=0.05"]


def test_a_bag_of_means_trains_on_token_bags_end_to_end_and_resumes_exactly(tmp_path: Path) -> None:
    kw = {"data": str(write_jsonl(tmp_path / "train.jsonl", presence_texts(300, 1))),
          "valid": str(write_jsonl(tmp_path / "valid.jsonl", presence_texts(100, 2)))}
    model = rnnkit.train("classify", out=tmp_path / "whole", overrides=[*BAG, "train.epochs=4"], **kw)
    assert model.results["valid"]["accuracy"] > 0.9
    assert rnnkit.load(tmp_path / "whole").evaluate(kw["valid"])["accuracy"] == model.results["valid"]["accuracy"]
    rnnkit.train("classify", out=tmp_path / "cut", overrides=[*BAG, "train.epochs=2"], **kw)
    rnnkit.train("classify", out=tmp_path / "cut", overrides=["train.epochs=4"], resume=True)
    assert_same_run(tmp_path / "whole", tmp_path / "cut")

"""rnnkit.nn.bag: the bag-of-embeddings mean equals the masked mean of the step embeddings, value and gradient."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rnnkit.models.classifier import SequenceClassifier
from rnnkit.nn.bag import bag_mean
from rnnkit.tasks.classify_config import ClassifyModel


def padded_batch(seed: int = 0, steps: int = 9, batch: int = 6, vocab: int = 20):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, steps + 1, (batch,), generator=g)
    lengths[0] = steps
    ids = torch.randint(1, vocab, (steps, batch), generator=g)
    padding = torch.arange(steps).unsqueeze(1) >= lengths.unsqueeze(0)
    return ids.masked_fill(padding, 0), lengths, padding


def test_bag_mean_is_the_masked_mean_of_the_embeddings_with_its_gradient() -> None:
    ids, lengths, padding = padded_batch()
    weight = torch.randn(20, 5, requires_grad=True)
    direction = torch.randn(6, 5)
    (bag_mean(ids, lengths, weight) * direction).sum().backward()
    fast = weight.grad.clone()
    weight.grad = None
    steps = F.embedding(ids, weight, padding_idx=0).masked_fill(padding.unsqueeze(-1), 0.0)
    slow = steps.sum(0) / lengths.unsqueeze(-1)
    (slow * direction).sum().backward()
    assert torch.allclose(bag_mean(ids, lengths, weight), slow, atol=1e-6)
    assert torch.allclose(fast, weight.grad, atol=1e-6) and not fast[0].any()  # the padding row learns nothing


def test_the_bag_classifier_ignores_padding_and_its_neighbours() -> None:
    torch.manual_seed(0)
    model = SequenceClassifier(ClassifyModel(encoder="bag", pooling="mean", embedding_size=4, head_hidden=3), 2,
                               vocab_size=20)
    ids, lengths, _ = padded_batch()
    together = model(ids, lengths)
    alone = torch.cat([model(ids[: int(n), b: b + 1], lengths[b: b + 1]) for b, n in enumerate(lengths)])
    assert torch.equal(together, alone)

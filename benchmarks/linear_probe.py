"""How much a classifier's encoder already knows, before any fine-tuning: a linear probe of its pooled states.

Reads a labelled text file with a classifier model directory's own reading (tokenizer, vocabulary, markup),
encodes a random sample with its encoder (e.g. one just initialised from a pretrained LM with ``--init-from``
and no updates: ``train.max_steps=1 train.lr=0``), pools each text's states four ways as the classifier does
(max, mean, last valid state, and concat: the three side by side) and fits a logistic regression on each
(standardised features, L-BFGS, L2 penalties 1e-3 and 1e-2) on the first ``--train`` texts, scoring the other
``--test``. One JSON line per pooling and penalty, and a table.

  python benchmarks/linear_probe.py MODEL_DIR --data ../shared/data/imdb/train.jsonl.gz --train 3000 --test 2000
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, markdown_table  # noqa: E402


def pooled_features(model_dir: Path, data: Path, count: int, seed: int):
    """{pooling: (N, D) features} and (N,) labels of ``count`` random texts of ``data``."""
    import torch

    import rnnkit
    from rnnkit.data.readers import clean_text
    from rnnkit.models.classifier import pool, pooled_size, top_state
    from rnnkit.tasks.classify import scoring_batches

    classifier = rnnkit.load(model_dir)
    examples = classifier.read(data, labelled=True)
    total = len(examples.texts)
    chosen = random.Random(seed).sample(range(total), min(count, total))
    examples = dataclasses.replace(examples, **{
        name: [value[i] for i in chosen] for name, value in vars(examples).items()
        if isinstance(value, list) and len(value) == total})
    examples.texts = [clean_text(text, classifier.config.data.strip_markup) for text in examples.texts]
    encoded = classifier.reader.encode(examples, labelled=True)
    encoder = classifier.model.eval().encoder
    features = {kind: torch.zeros(len(chosen), pooled_size(kind, encoder.output_size))
                for kind in ("max", "mean", "last", "concat")}
    with torch.no_grad():
        for rows, batch in scoring_batches(encoded, 128):
            out = encoder(batch.inputs, batch.lengths)
            padding = torch.arange(out.outputs.size(0)).unsqueeze(1) >= batch.lengths.unsqueeze(0)
            for kind, values in features.items():
                values[rows] = pool(kind, out.outputs, top_state(out), padding, batch.lengths, None)
    return features, torch.as_tensor(encoded.labels)


def probe(features, labels, train: int, l2: float) -> tuple[float, float]:
    """Train and test accuracy of an L2-penalised logistic regression (two classes) on standardised features."""
    import torch
    import torch.nn.functional as F

    mean, sd = features[:train].mean(0), features[:train].std(0) + 1e-6
    x, y = (features - mean) / sd, labels.float()
    weight, bias = torch.zeros(x.size(1), requires_grad=True), torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x[:train] @ weight + bias, y[:train]) + l2 * weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        right = ((x @ weight + bias > 0).float() == y).float()
    return float(right[:train].mean()), float(right[train:].mean())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir", type=Path, help="a two-class text classifier's model directory")
    p.add_argument("--data", type=Path, required=True, help="a labelled file in the model's format")
    p.add_argument("--train", type=int, default=3000, help="texts the probe is fitted on")
    p.add_argument("--test", type=int, default=2000, help="texts it is scored on")
    p.add_argument("--seed", type=int, default=0, help="the sample's seed")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    start = time.process_time()
    features, labels = pooled_features(args.model_dir, args.data, args.train + args.test, args.seed)
    if int(labels.max()) > 1:
        raise SystemExit(f"{args.model_dir}: the probe is a two-class logistic regression")
    rows = []
    for kind, values in features.items():
        for l2 in (1e-3, 1e-2):
            train_acc, test_acc = probe(values, labels, args.train, l2)
            emit({"bench": "linear_probe", "model_dir": str(args.model_dir), "pooling": kind, "l2": l2,
                  "train": args.train, "test": args.test, "train_acc": round(train_acc, 4),
                  "test_acc": round(test_acc, 4), "cpu_s": round(time.process_time() - start, 1)})
            rows.append([kind, l2, f"{train_acc:.4f}", f"{test_acc:.4f}"])
    print(markdown_table(["pooling", "L2", "probe train accuracy", "probe test accuracy"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

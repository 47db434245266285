"""Adam's step, torch's single-tensor loop vs its fused kernel, over the parameters of real rnnkit models.

The trainer builds Adam / AdamW with ``fused=True`` where every parameter is a float tensor on a CPU or a
CUDA GPU (``rnnkit.train.fusable``). This measures what that buys per update: CPU seconds of
``optimizer.step()`` (random gradients, after one untimed step), the two kinds interleaved over rounds, one
process, 1 thread. Models: the LM-LSTM fine-tuning classifier (``imdb-lm-lstm``, vocabulary 20,000), the
LM it is pretrained from (``imdb-lm-lstm-pretrain``, adaptive softmax), seed 003's MNIST-rows LSTM and
JoeyNMT's Multi30k RNN (``multi30k-de-en``, vocabularies ~8,000 / ~6,000).

  python benchmarks/fused_adam.py --rounds 5 --steps 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, machine, markdown_table  # noqa: E402


def models() -> dict:
    """name -> a model built from its recipe (weights random: only the shapes matter here)."""
    from rnnkit.config import load_config
    from rnnkit.models.classifier import SequenceClassifier
    from rnnkit.models.lm import RNNLanguageModel
    from rnnkit.models.seq2seq import Seq2SeqModel
    from rnnkit.nn.softmax import SoftmaxOptions

    lm_cfg = load_config("imdb-lm-lstm-pretrain")
    clf = load_config("imdb-lm-lstm")
    mnist = load_config("seed-003-mnist")
    s2s = load_config("multi30k-de-en")
    m = s2s.model
    return {
        "imdb-lm-lstm classifier": SequenceClassifier(clf.model, 2, vocab_size=20000),
        "imdb-lm-lstm-pretrain LM": RNNLanguageModel(lm_cfg.model, 20000),
        "seed-003-mnist": SequenceClassifier(mnist.model, 10, features=28),
        "multi30k-de-en": Seq2SeqModel(m, 8000, 6000, SoftmaxOptions()),
    }


def step_seconds(model, fused: bool, steps: int) -> float:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.randn_like(p)
    optimizer = torch.optim.Adam(params, lr=1e-3, fused=fused)
    optimizer.step()  # state allocated outside the clock
    start = time.process_time()
    for _ in range(steps):
        optimizer.step()
    return (time.process_time() - start) / steps


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    rows = []
    for name, model in models().items():
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.rounds):
            for fused in (False, True):
                times[fused].append(step_seconds(model, fused, args.steps))
        single, fused = statistics.median(times[False]) * 1e3, statistics.median(times[True]) * 1e3
        params = sum(p.numel() for p in model.parameters())
        emit({"bench": "fused_adam", "model": name, "params": params, "single_ms": round(single, 3),
              "fused_ms": round(fused, 3), "speedup": round(single / fused, 2), "rounds": args.rounds,
              "steps": args.steps, "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
        rows.append([name, f"{params:,}", f"{single:.2f}", f"{fused:.2f}", f"{single / fused:.2f}x"])
    print(markdown_table(["model", "parameters", "single-tensor ms/step", "fused ms/step", "speedup"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

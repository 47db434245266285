"""Time per SGD step: the NumPy reference against the PyTorch path, on seed 001's configuration.

Seed 001 (the WildML RNN tutorial): a vanilla RNN language model, vocabulary 8000, hidden 100, one
sentence per SGD step; it reports about 350 ms per step for its NumPy code and about 70 ms on
Theano/GPU. Here, on the CPU and interleaved in one run (same sentences, same initial weights):

* ``numpy``: :class:`rnnkit.reference.NumpyLanguageModel` (float64), ``loss_and_grads`` with
  ``bptt_truncate=4`` (the seed's truncation) + ``sgd_step``, what ``rnnkit train --backend numpy`` runs;
* ``torch``: rnnkit's ``RNNLanguageModel`` (float32), the trainer's step (zero_grad, summed
  cross-entropy / tokens, backward with full BPTT over the sentence, ``torch.optim.SGD``);
* ``numpy_full``: the reference with full BPTT, for scale (truncation is a Python loop per step).

Sentences come from the first reviews of ``../shared/data/imdb/unsup.jsonl.gz`` (split with
``rnnkit.data.readers.split_sentences``, word-tokenized and lower-cased as seed 001, 20 to 45 tokens),
or are random ids of those lengths when the file is missing.

    python benchmarks/reference_speed.py [--quick] [--steps N] [--data FILE] [--threads 1]

Prints one JSON line (``{"bench": "reference_speed", ...}``) and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path


def _threads_from_argv(argv: list[str]) -> int:
    """--threads N, read before NumPy is imported (its BLAS reads the variables once, at load)."""
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if a.startswith("--threads="):
            return int(a.split("=", 1)[1])
    return 1


THREADS = _threads_from_argv(sys.argv[1:])
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, str(THREADS))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from rnnkit.config import load_config  # noqa: E402
from rnnkit.data.lm import pad_sentences  # noqa: E402
from rnnkit.data.readers import read_lines, split_sentences  # noqa: E402
from rnnkit.data.tokenizers import build_tokenizer  # noqa: E402
from rnnkit.data.vocab import Vocab  # noqa: E402
from rnnkit.models.lm import RNNLanguageModel  # noqa: E402
from rnnkit.reference import NumpyLanguageModel  # noqa: E402
from rnnkit.tasks.lm import lm_loss  # noqa: E402

IMDB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "imdb" / "unsup.jsonl.gz"
VOCAB, HIDDEN, BPTT_TRUNCATE, LR = 8000, 100, 4, 0.005
MIN_WORDS, MAX_WORDS = 20, 45


def sentences(path: Path, reviews: int, wanted: int, seed: int) -> tuple[list[list[int]], str]:
    """``<bos> w1..wn <eos>`` id lists with MIN_WORDS <= n <= MAX_WORDS, and where they came from."""
    cfg = load_config("seed-001")
    if path.is_file():
        lines = [s for line in read_lines(path, reviews) for s in split_sentences(line)]
        tokenizer = build_tokenizer(cfg.tokenizer, lines)
        tokens = [tokenizer.tokenize(s) for s in lines]
        vocab = Vocab.build(tokens, VOCAB)
        seqs = [[Vocab.bos_id, *vocab.encode(t), Vocab.eos_id] for t in tokens if MIN_WORDS <= len(t) <= MAX_WORDS]
        if len(seqs) >= wanted:
            return seqs[:wanted], f"{path.name}: first {reviews} reviews, {len(seqs)} sentences of " \
                                  f"{MIN_WORDS}-{MAX_WORDS} tokens, vocabulary {len(vocab)}"
    rng = np.random.default_rng(seed)
    seqs = [[Vocab.bos_id, *rng.integers(4, VOCAB, rng.integers(MIN_WORDS, MAX_WORDS + 1)).tolist(), Vocab.eos_id]
            for _ in range(wanted)]
    return seqs, f"synthetic ids ({MIN_WORDS}-{MAX_WORDS} tokens, vocabulary {VOCAB})"


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def breakdown(tokens: int, repeats: int = 200) -> dict[str, float]:
    """ms per call of the parts of one PyTorch step at seed 001's shape (plain torch.nn modules)."""
    rnn, emb, dec = torch.nn.RNN(HIDDEN, HIDDEN), torch.nn.Embedding(VOCAB, HIDDEN), torch.nn.Linear(HIDDEN, VOCAB)
    params = [*rnn.parameters(), *emb.parameters(), *dec.parameters()]
    opt = torch.optim.SGD(params, lr=LR)
    x, y = torch.randint(0, VOCAB, (tokens, 1)), torch.randint(0, VOCAB, (tokens,))
    h_in, top = torch.randn(tokens, 1, HIDDEN, requires_grad=True), torch.randn(tokens, HIDDEN, requires_grad=True)

    def whole():
        opt.zero_grad(set_to_none=True)
        out, _ = rnn(emb(x))
        torch.nn.functional.cross_entropy(dec(out[:, 0]), y).backward()
        opt.step()

    def fresh(loss_fn):  # gradients start from nothing each call, as in a training step
        def run():
            opt.zero_grad(set_to_none=True)
            loss_fn().backward()
        return run

    def sgd():
        for p in params:
            p.grad = torch.full_like(p, 1e-6)
        opt.step()

    parts = {
        "output layer + cross-entropy, fwd+bwd": fresh(lambda: torch.nn.functional.cross_entropy(dec(top), y)),
        "nn.RNN over the sentence, fwd+bwd": fresh(lambda: rnn(h_in)[0].sum()),
        "embedding lookup, fwd+bwd (dense grad)": fresh(lambda: emb(x).sum()),
        "SGD update of all parameters (+ setting its gradients)": sgd,
        "whole step": whole,
    }
    # the floor under any implementation: the output layer's three matrix products (forward, gradient of
    # the input, gradient of the weight) at this shape, float32 in torch and float64 in NumPy
    h32, w32, g32 = torch.randn(tokens, HIDDEN), torch.randn(VOCAB, HIDDEN), torch.randn(tokens, VOCAB)
    h64, w64, g64 = h32.double().numpy(), w32.double().numpy(), g32.double().numpy()
    parts["floor: output layer's 3 matrix products, torch float32"] = lambda: (h32 @ w32.T, g32 @ w32, g32.T @ h32)
    parts["floor: output layer's 3 matrix products, NumPy float64"] = lambda: (h64 @ w64.T, g64 @ w64, g64.T @ h64)
    result = {}
    for name, fn in parts.items():
        for _ in range(10):
            fn()
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        result[name] = round(1000 * (time.perf_counter() - t0) / repeats, 3)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few steps only (a smoke run)")
    p.add_argument("--steps", type=int, help="timed steps per implementation (default 150; --quick 15)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    p.add_argument("--data", type=Path, default=IMDB, help=f"JSONL/text file of reviews (default {IMDB})")
    p.add_argument("--reviews", type=int, default=400, help="reviews to read (default 400)")
    p.add_argument("--batch", type=int, default=1,
                   help="sentences per SGD step for both (default 1, the seed's step; the seed-001 recipe uses 16)")
    p.add_argument("--seed", type=int, default=10)
    p.add_argument("--threads", type=int, default=THREADS,
                   help="CPU threads for both NumPy's BLAS and torch (default 1: fair, and steady on a busy machine)")
    p.add_argument("--breakdown", action="store_true",
                   help="also time the parts of one PyTorch step (output layer, RNN, embedding, SGD)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = args.steps or (15 if args.quick else 150)
    warmup = min(args.warmup, 2) if args.quick else args.warmup
    seqs, source = sentences(args.data, args.reviews, (steps + warmup) * args.batch, args.seed)
    batches = [seqs[i: i + args.batch] for i in range(0, len(seqs), args.batch)]

    cfg = load_config("seed-001")  # vanilla rnn_tanh, embedding = hidden = 100, one layer
    cfg.model.hidden_size = cfg.model.embedding_size = HIDDEN
    torch.manual_seed(args.seed)
    torch_lm = RNNLanguageModel(cfg.model, VOCAB).train()
    numpy_lm = NumpyLanguageModel.from_state_dict(cfg.model.cell, torch_lm.state_dict())  # same start, float64
    numpy_full = NumpyLanguageModel.from_state_dict(cfg.model.cell, torch_lm.state_dict())
    optimizer = torch.optim.SGD(torch_lm.parameters(), lr=LR)

    def step_numpy(model, batch, truncate):
        loss, grads, _ = model.loss_and_grads(batch.inputs.numpy(), batch.targets.numpy(), None,
                                              bptt_truncate=truncate)
        model.sgd_step(grads, LR)
        return float(loss)

    def step_torch(batch):
        optimizer.zero_grad(set_to_none=True)
        loss_sum, _, _ = lm_loss(torch_lm, batch, None)
        loss = loss_sum / batch.num_tokens
        loss.backward()
        optimizer.step()
        return loss.item()

    runs = {
        "numpy": lambda b: step_numpy(numpy_lm, b, BPTT_TRUNCATE),
        "torch": step_torch,
        "numpy_full": lambda b: step_numpy(numpy_full, b, None),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for i, group in enumerate(batches):
        batch = pad_sentences(group)
        order = names if i % 2 == 0 else names[::-1]  # interleaved, alternating who goes first
        for name in order:
            t0 = time.perf_counter()
            runs[name](batch)
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)

    ms = {name: 1000 * statistics.median(t) for name, t in times.items()}
    mean_ms = {name: 1000 * statistics.fmean(t) for name, t in times.items()}
    tokens = [sum(len(s) - 1 for s in group) for group in batches[warmup:]]
    record = {
        "bench": "reference_speed",
        "config": {"cell": cfg.model.cell, "vocab": VOCAB, "hidden": HIDDEN, "sentences_per_step": args.batch,
                   "numpy_bptt_truncate": BPTT_TRUNCATE, "torch_bptt": "full", "lr": LR,
                   "numpy_dtype": "float64", "torch_dtype": "float32", "device": "cpu"},
        "data": source, "steps": len(tokens), "warmup": warmup, "tokens_per_step_mean": statistics.fmean(tokens),
        "ms_per_step_median": {k: round(v, 3) for k, v in ms.items()},
        "ms_per_step_mean": {k: round(v, 3) for k, v in mean_ms.items()},
        "speedup_torch_vs_numpy": round(ms["numpy"] / ms["torch"], 2),
        "speedup_torch_vs_numpy_full": round(ms["numpy_full"] / ms["torch"], 2),
        "threads": args.threads, "blas_threads_env": os.environ.get("OPENBLAS_NUM_THREADS"),
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "load_avg_1min": _load(),
        "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(), "quick": args.quick,
    }
    print(json.dumps(record))
    print()
    print(f"Seed 001 configuration (vanilla RNN, V={VOCAB}, H={HIDDEN}, {args.batch} sentence(s) per SGD step, "
          f"{min(tokens)}-{max(tokens)} tokens per step, mean {record['tokens_per_step_mean']:.1f}), "
          f"CPU, {len(tokens)} steps each, interleaved; {source}.")
    print()
    print("| implementation | BPTT | ms/step (median) | ms/step (mean) | PyTorch speed-up |")
    print("|---|---|---:|---:|---:|")
    labels = {"numpy": ("NumPy reference (float64)", f"truncated {BPTT_TRUNCATE}"),
              "numpy_full": ("NumPy reference (float64)", "full"),
              "torch": ("PyTorch RNNLanguageModel (float32)", "full")}
    for name in ("numpy", "numpy_full", "torch"):
        label, bptt = labels[name]
        speed = "1.0x" if name == "torch" else f"{ms[name] / ms['torch']:.1f}x"
        print(f"| {label} | {bptt} | {ms[name]:.2f} | {mean_ms[name]:.2f} | {speed} |")
    if args.breakdown:
        parts = breakdown(round(statistics.fmean(tokens)))
        print(json.dumps({"bench": "reference_speed_breakdown", "tokens": round(statistics.fmean(tokens)),
                          "ms": parts}))
        print()
        print("| part of the PyTorch step | ms |")
        print("|---|---:|")
        for name, value in parts.items():
            print(f"| {name} | {value:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Sampling speed: rnnkit's generate vs a minimal PyTorch sampling loop vs today's rnnkit, same weights.

One model directory (the ptb-small recipe, 2x200 LSTM, vocabulary 10,002, trained for one step: speed
does not depend on the weights; ``--shape shakespeare-char``: 2x512 LSTM over 65 characters) is
sampled by

* ``rnnkit``    this tree's ``rnnkit.load(DIR).generate("", n, seed=..., num_samples=B, stop_at_eos=False)``
                (text decoding included);
* ``minimal``   the obvious hand-written loop with the same weights and torch defaults: ``nn.Embedding
                -> nn.LSTM(E, H, layers)`` step with the state carried ``-> nn.Linear -> softmax ->
                torch.multinomial``, one token per step, ids only;
* ``baseline``  rnnkit as it was (``--baseline``, default ../baseline/src), same call as ``rnnkit``.

Each variant runs in its own process (two rnnkit versions cannot share one), started fresh every round
in a rotated order; inside it an untimed warm-up, then 1 sample of ``--n`` tokens and ``--batch``
samples of ``--n-batch`` tokens, timed in wall and CPU time, 1 torch thread. Every variant makes the
same number of model steps (the prompt, here one line end, then a step per new token but the last).
Prints a JSON line per measurement, then min/median/max tokens/s and the ratios rnnkit/minimal and
rnnkit/baseline (median of per-round ratios). Targets (issue 12): 1 sample >= 1.3x minimal,
``--batch`` 16 >= 1.0x minimal and >= 1.0x baseline.

  python benchmarks/generation_speed.py --rounds 7
  python benchmarks/generation_speed.py --shape shakespeare-char --rounds 5
  python benchmarks/generation_speed.py --quick          # smoke test, < 1 min
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_DIR, REPO, RUNS_DIR, emit, machine, markdown_table, rnnkit_cli  # noqa: E402

SHAPES = {  # recipe, training text, a small validation slice (the one-step run scores it)
    "ptb-small": ("ptb-small", "ptb/ptb.train.txt", "ptb/ptb.valid.txt"),
    "shakespeare-char": ("shakespeare-char", "tinyshakespeare/input.txt", "tinyshakespeare/input.txt"),
}
VARIANTS = ("rnnkit", "minimal", "baseline")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=sorted(SHAPES), default="ptb-small")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    p.add_argument("--baseline", type=Path, default=REPO.parent / "baseline" / "src",
                   help="src/ folder of the rnnkit to compare with (default ../baseline/src; left out if missing)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--n", type=int, default=300, help="tokens of the one-sample run (default 300)")
    p.add_argument("--batch", type=int, default=16, help="samples of the batched run (default 16)")
    p.add_argument("--n-batch", type=int, default=100, help="tokens per sample of the batched run (default 100)")
    p.add_argument("--quick", action="store_true", help="smoke test: 2 rounds, 40 / 20 tokens")
    p.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    p.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------------- workers


def minimal_sampler(model_dir: Path):
    """The hand-written loop, with the weights of ``model_dir`` copied into plain torch.nn modules."""
    import torch
    from safetensors.torch import load_file
    from torch import nn

    # a model directory saved before issue 13 names the output layer "decoder"
    stored = load_file(str(model_dir / "model.safetensors"))
    weights = {name.replace("decoder.", "output.", 1): w for name, w in stored.items()}
    vocab, emb_size = weights["embedding.weight"].shape
    layers = sum(1 for k in weights if k.endswith(".weight_hh_l0"))
    hidden = weights["rnns.0.weight_hh_l0"].shape[1]
    embedding, lstm = nn.Embedding(vocab, emb_size), nn.LSTM(emb_size, hidden, layers)
    output = nn.Linear(hidden, vocab)
    with torch.no_grad():
        embedding.weight.copy_(weights["embedding.weight"])
        output.weight.copy_(weights.get("output.weight", weights["embedding.weight"]))
        output.bias.copy_(weights["output.bias"])
        for k in range(layers):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(lstm, f"{name}_l{k}").copy_(weights[f"rnns.{k}.{name}_l0"])

    @torch.no_grad()
    def sample(n: int, batch: int, seed: int) -> int:
        generator = torch.Generator().manual_seed(seed)
        x, state, produced = torch.full((1, batch), 3), None, 0  # id 3: <eos>, a line end, as rnnkit starts
        for _ in range(n):
            out, state = lstm(embedding(x), state)
            probs = torch.softmax(output(out[0]), dim=-1)
            x = torch.multinomial(probs, 1, generator=generator).T
            produced += batch
        return produced

    return sample


def rnnkit_sampler(model_dir: Path):
    import rnnkit

    lm = rnnkit.load(model_dir)

    def sample(n: int, batch: int, seed: int) -> int:
        texts = lm.generate("", n, seed=seed, num_samples=batch, stop_at_eos=False)
        assert len(texts) == batch
        return n * batch

    return sample


def run_worker(args) -> None:
    import torch

    torch.set_num_threads(1)
    sample = minimal_sampler(args.model) if args.worker == "minimal" else rnnkit_sampler(args.model)
    sample(20, 2, 0)  # warm-up
    result = {}
    for label, n, batch in (("1", args.n, 1), (str(args.batch), args.n_batch, args.batch)):
        wall, cpu = time.perf_counter(), time.process_time()
        tokens = sample(n, batch, 1)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        result[label] = {"tok_s": tokens / wall, "cpu_tok_s": tokens / cpu}
    print(json.dumps(result))


# ---------------------------------------------------------------------------------------------------- driver


def ensure_model(args) -> Path:
    """A model directory of the shape (trained one step with this tree's rnnkit), made once under runs/."""
    recipe, train, valid = SHAPES[args.shape]
    out = RUNS_DIR / f"bench-generation-{args.shape}"
    if (out / "model.safetensors").is_file():
        return out
    slice_file = RUNS_DIR / f"bench-generation-{args.shape}-valid.txt"
    slice_file.parent.mkdir(parents=True, exist_ok=True)
    lines = (args.data_dir / valid).read_text(encoding="utf-8").splitlines()[:40]
    slice_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cmd = [*rnnkit_cli(), "train", "lm", "--recipe", recipe, "--data", str(args.data_dir / train), "--valid",
           str(slice_file), "--out", str(out), "--set", "train.max_steps=1", "--set", "train.threads=1",
           "--set", "train.progress=false"]
    print("making the model: " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    return out


def run_variant(variant: str, model: Path, args) -> dict:
    src = args.baseline if variant == "baseline" else REPO / "src"
    cmd = [sys.executable, __file__, "--worker", variant, "--model", str(model), "--n", str(args.n),
           "--batch", str(args.batch), "--n-batch", str(args.n_batch)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(src)})
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(per_round: list[dict], labels: list[str]) -> tuple[dict, list[list]]:
    summary, rows = {}, []
    for label in labels:
        for variant in per_round[0]:
            rates = [r[variant][label]["tok_s"] for r in per_round]
            cpu = [r[variant][label]["cpu_tok_s"] for r in per_round]
            entry = {"min": min(rates), "median": statistics.median(rates), "max": max(rates),
                     "cpu_median": statistics.median(cpu)}
            if variant != "rnnkit":
                entry["rnnkit_over_this"] = statistics.median(
                    r["rnnkit"][label]["tok_s"] / r[variant][label]["tok_s"] for r in per_round)
                entry["rnnkit_over_this_cpu"] = statistics.median(
                    r["rnnkit"][label]["cpu_tok_s"] / r[variant][label]["cpu_tok_s"] for r in per_round)
            summary[f"{label}/{variant}"] = entry
            ratio = (f"{entry['rnnkit_over_this']:.2f} ({entry['rnnkit_over_this_cpu']:.2f})"
                     if variant != "rnnkit" else "-")
            rows.append([label, variant, f"{entry['min']:,.0f} / {entry['median']:,.0f} / {entry['max']:,.0f}",
                         f"{entry['cpu_median']:,.0f}", ratio])
    return summary, rows


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.rounds, args.n, args.n_batch = 2, 40, 20
    if args.worker:
        run_worker(args)
        return 0
    model = ensure_model(args)
    variants = VARIANTS if (args.baseline / "rnnkit").is_dir() else VARIANTS[:2]
    per_round = []
    for k in range(args.rounds):
        order = variants[k % len(variants):] + variants[:k % len(variants)]
        results = {v: run_variant(v, model, args) for v in order}
        per_round.append({v: results[v] for v in variants})
        for variant, result in results.items():
            emit({"bench": "generation_speed", "shape": args.shape, "round": k, "variant": variant, **result})
    labels = ["1", str(args.batch)]
    summary, rows = summarize(per_round, labels)
    emit({"bench": "generation_speed", "shape": args.shape, "summary": summary, "rounds": args.rounds,
          "n": args.n, "n_batch": args.n_batch, "machine": machine()})
    print(f"\n{args.shape}, {args.rounds} interleaved rounds, 1 torch thread; tokens/s\n")
    print(markdown_table(["samples", "variant", "wall tok/s min / median / max", "CPU tok/s median",
                          "rnnkit / this: wall (CPU)"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

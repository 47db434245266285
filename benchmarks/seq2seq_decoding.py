#!/usr/bin/env python3
"""Decoding speed of a trained seq2seq model: batched vs one sentence at a time, greedy and beam search.

``rnnkit.load(MODEL).translate(sources, beam=B, batch_size=N)`` on test_2016_flickr's German side
(``--sentences``, default all 1,000), ``batch_size=--batch`` (batched) against ``batch_size=1`` (one by
one, on the first ``--one-by-one`` sentences: slow), for beam 1 (greedy) and ``--beam``; the same
Translator, one process, ``--threads`` torch threads. ``--rounds`` rounds, the two modes alternating;
sentences/s of each round (wall and CPU time), the median reported. It also counts the sentences
whose translation differs between the two modes (batch composition must not change a translation).

The model: ``--model DIR`` (e.g. the ``multi30k-de-en`` model ``seq2seq_vs_joeynmt.py`` trains into
``runs/bench-seq2seq-joeynmt/rnnkit``), or ``--make-model STEPS``: train the recipe for STEPS updates
into ``runs/bench-seq2seq-decoding-model`` first (a partly trained model: its translations already
have realistic lengths, which decide the cost).

  python benchmarks/seq2seq_decoding.py --model runs/bench-seq2seq-joeynmt/rnnkit
  python benchmarks/seq2seq_decoding.py --make-model 300 --one-by-one 200
  python benchmarks/seq2seq_decoding.py --quick
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, RUNS_DIR, emit, machine, markdown_table  # noqa: E402
from _seq2seq import DATA_DIR, read_lines, score, timed_translate  # noqa: E402

sys.path.insert(0, str(REPO / "src"))

TEST = "test_2016_flickr"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, help="a trained seq2seq model directory")
    p.add_argument("--make-model", type=int, metavar="STEPS", help="train --recipe for STEPS updates first")
    p.add_argument("--recipe", default="multi30k-de-en")
    p.add_argument("--data", type=Path, default=DATA_DIR / "multi30k")
    p.add_argument("--sentences", type=int, default=1000, help="test sentences decoded batched (default 1000)")
    p.add_argument("--one-by-one", type=int, default=1000, help="of them decoded one at a time (default 1000)")
    p.add_argument("--batch", type=int, default=64, help="batch size of the batched mode (default 64)")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="smoke test: a 20-step model, 40 sentences")
    args = p.parse_args(argv)
    if args.quick:
        args.make_model, args.sentences, args.one_by_one, args.rounds = 20, 40, 20, 1
    if not args.model and not args.make_model:
        p.error("give --model DIR or --make-model STEPS")
    args.one_by_one = min(args.one_by_one, args.sentences)
    return args


def make_model(args) -> Path:
    import rnnkit

    out = RUNS_DIR / ("bench-seq2seq-decoding-model" + ("-quick" if args.quick else ""))
    overrides = [f"train.max_steps={args.make_model}", f"train.threads={args.threads}", "train.eval_every=0"]
    print(f"training {args.recipe} for {args.make_model} updates into {out}", file=sys.stderr, flush=True)
    rnnkit.train("seq2seq", recipe=args.recipe, data=str(args.data), out=out, overrides=overrides, overwrite=True)
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    import rnnkit

    torch.set_num_threads(args.threads)
    model_dir = args.model or make_model(args)
    tr = rnnkit.load(model_dir)
    sources = read_lines(args.data / f"{TEST}.de")[: args.sentences]
    refs = read_lines(args.data / f"{TEST}.en")[: args.sentences]
    timed_translate(tr, sources[:20], beam=args.beam, batch_size=args.batch)  # warm-up
    rows, meta = [], {"model": str(model_dir), "threads": torch.get_num_threads(), "batch": args.batch,
                      "machine": machine()}
    for beam in (1, args.beam):
        rates: dict[str, list[float]] = {"batched": [], "one_by_one": []}
        cpu_rates: dict[str, list[float]] = {"batched": [], "one_by_one": []}
        outputs = {}
        for _ in range(args.rounds):
            for mode, n, batch in (("batched", args.sentences, args.batch), ("one_by_one", args.one_by_one, 1)):
                hyps, secs, cpu = timed_translate(tr, sources[:n], beam=beam, batch_size=batch)
                rates[mode].append(n / secs)
                cpu_rates[mode].append(n / cpu)
                outputs[mode] = hyps
        differ = sum(a != b for a, b in zip(outputs["batched"], outputs["one_by_one"], strict=False))
        med = {mode: statistics.median(v) for mode, v in rates.items()}
        record = {"bench": "seq2seq_decoding", "beam": beam, **meta, "sentences": args.sentences,
                  "one_by_one_sentences": args.one_by_one,
                  **{f"{m}_sent_per_s": [round(r, 2) for r in v] for m, v in rates.items()},
                  **{f"{m}_sent_per_cpu_s": [round(r, 2) for r in v] for m, v in cpu_rates.items()},
                  "speedup": round(med["batched"] / med["one_by_one"], 2), "outputs_differing": differ,
                  **score(outputs["batched"], refs, lowercase=True)}
        emit(record)
        rows.append([f"{'greedy' if beam == 1 else f'beam {beam}'}", f"{med['batched']:,.1f}",
                     f"{med['one_by_one']:,.1f}", f"{record['speedup']:.2f}x", f"{differ} / {args.one_by_one}",
                     f"{record['bleu']:.2f}"])
    print(markdown_table(["search", f"batched (batch {args.batch}) sent/s", "one by one sent/s",
                          "batched / one by one", "translations differing", "BLEU (lc, batched)"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

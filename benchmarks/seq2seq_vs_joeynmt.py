#!/usr/bin/env python3
"""Multi30k de->en side by side: rnnkit's ``multi30k-de-en`` recipe vs JoeyNMT 2.3, one run.

Phase 1, training, both at once (``--sequential``: one after the other), each one process with
``--threads`` torch threads and ``OMP_WAIT_POLICY=PASSIVE``, the same wall-clock budget ``--minutes``
counted from each side's first training step (validations included), same data
(``../shared/data/multi30k``: train / val / test_2016_flickr):

* ``joeynmt``: ``../shared/peers/joeynmt/joeynmt_multi30k.sh --threads T --minutes M --work OUT/joeynmt
  --data DATA`` (its RNN config: bi-GRU 256, GRU 512 decoder, Bahdanau attention, input feeding,
  10.6M parameters; validation every 250 updates; best checkpoint by greedy validation BLEU);
* ``rnnkit``: this script with ``--worker train``: ``rnnkit.train("seq2seq", recipe="multi30k-de-en",
  data=DATA, overrides=["train.threads=T", ...])`` through the real Trainer, with a wall-clock bound
  and clocks added from outside (``_seq2seq.ClockedTrainer``, as the peer driver adds its own to
  JoeyNMT): after the update during which the budget runs out the trainer leaves its loop as at
  ``max_steps``, validates the final weights and keeps the best by its selection metric.

Training speed, JoeyNMT's definition on both sides: target tokens (the peer: Moses words + ``</s>``; no
padding) per second of training with the validations' time taken out. rnnkit tokenizes with its own
word tokenizer, so its figure is given twice: in its own target tokens (+ ``<eos>``), and in the
peer's Moses tokens of the very sentences it trained on (counted from the peer's tokenized
``train.en``, one line per raw line), which is the like-for-like number; sentences/s beside both.

Phase 2, decoding, one side at a time (``--decode-rounds`` rounds, rotated), nothing else of ours
running: JoeyNMT ``--skip-train`` re-tests its best checkpoint (its ``predict``, greedy and beam 5,
batch 50, length penalty alpha 1, then Moses detokenization); rnnkit ``--worker decode`` loads the
model directory and calls ``Translator.translate(test sources, beam=1 | 5, batch_size=50)``. Test
BLEU on both sides as the peer scores it: sacrebleu 13a, case-insensitive, detokenized output vs the
raw ``test_2016_flickr.en``.

  python benchmarks/seq2seq_vs_joeynmt.py --minutes 50            # the full comparison
  python benchmarks/seq2seq_vs_joeynmt.py --minutes 12 --decode-rounds 2
  python benchmarks/seq2seq_vs_joeynmt.py --decode-only           # phase 2 again on the models in --out
  python benchmarks/seq2seq_vs_joeynmt.py --quick                 # smoke test: 1 minute each
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, RUNS_DIR, emit, machine, markdown_table  # noqa: E402
from _seq2seq import (  # noqa: E402
    DATA_DIR,
    PEERS,
    Side,
    equal_threads_env,
    fresh_folder,
    git_state,
    json_line,
    read_lines,
    run_against_peer,
    run_side_by_side,
    score,
    timed_translate,
    torch_threads,
    train_clocked,
)

TEST = "test_2016_flickr"
DECODE_BATCH = 50  # the peer config's testing.batch_size


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA_DIR / "multi30k")
    p.add_argument("--minutes", type=float, default=50.0, help="training budget of each side (default 50)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--recipe", default="multi30k-de-en")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="extra rnnkit overrides (repeatable)")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--decode-rounds", type=int, default=1, help="phase-2 rounds (default 1)")
    p.add_argument("--decode-only", action="store_true", help="skip training: phase 2 on the models in --out")
    p.add_argument("--joeynmt", type=Path, default=PEERS / "joeynmt" / "joeynmt_multi30k.sh")
    p.add_argument("--out", type=Path, default=RUNS_DIR / "bench-seq2seq-joeynmt",
                   help="scratch folder: new, empty, or one an earlier run of this benchmark made (training empties "
                        "it)")
    p.add_argument("--sequential", action="store_true", help="train rnnkit first, then JoeyNMT (default: at once)")
    p.add_argument("--quick", action="store_true", help="smoke test: 1 minute each")
    p.add_argument("--worker", choices=["train", "decode"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.minutes = 1.0
        args.out = args.out.with_name(args.out.name + "-quick")
    return args


# ---------------------------------------------------------------------------------------- rnnkit side
def moses_target_tokens(lines_trained: list[int], joey_train_en: Path) -> int | None:
    """The peer's count of the sentences rnnkit trained on: Moses words + </s> of each, by file line."""
    if not joey_train_en.is_file():
        return None
    per_line = [len(line.split()) + 1 for line in read_lines(joey_train_en)]
    return sum(per_line[line - 1] for line in lines_trained)


def worker_train(args) -> None:
    overrides = [f"train.threads={args.threads}", *args.overrides]
    tr, clock, wall = train_clocked("seq2seq", args.recipe, str(args.data), args.out / "rnnkit", overrides,
                                    minutes=args.minutes)
    lines = [clock.example_lines[i] for i in clock.example_indices] if clock.example_lines else []
    moses = moses_target_tokens(lines, args.out / "joeynmt" / "data" / "train.en") if lines else None
    with open(args.out / "rnnkit" / "log.csv", newline="", encoding="utf-8") as f:
        valid = [r for r in csv.DictReader(f) if r["split"] == "valid"]
    results = json.loads((args.out / "rnnkit" / "results.json").read_text(encoding="utf-8"))
    summary = clock.summary()
    print(json.dumps({
        "side": "rnnkit", "recipe": args.recipe, "overrides": overrides, "bound_minutes": args.minutes,
        "params": sum(p.numel() for p in tr.model.parameters()), "train_total_wall_s": round(wall, 1),
        **summary,
        "moses_target_tokens": moses,
        "moses_target_tokens_per_s": round(moses / clock.compute_s(), 1) if moses else None,
        "val_history": [[int(r["step"]), round(float(r.get("bleu") or "nan"), 2), round(float(r["loss"]), 4)]
                        for r in valid],
        "results": results,
    }), flush=True)


def worker_decode(args) -> None:
    import rnnkit

    tr = rnnkit.load(args.out / "rnnkit")
    sources, refs = read_lines(args.data / f"{TEST}.de"), read_lines(args.data / f"{TEST}.en")
    record = {"side": "rnnkit", "params": sum(p.numel() for p in tr.model.parameters()), "batch": DECODE_BATCH}
    for name, beam in (("greedy", 1), (f"beam{args.beam}", args.beam)):
        hyps, secs, cpu = timed_translate(tr, sources, beam=beam, batch_size=DECODE_BATCH)
        (args.out / f"rnnkit_test.{name}.en").write_text("\n".join(hyps) + "\n", encoding="utf-8")
        scores = score(hyps, refs, lowercase=True)
        record.update({f"test_bleu_{name}": scores["bleu"], f"test_chrf_{name}": scores["chrf"],
                       f"decode_s_{name}": round(secs, 2), f"decode_cpu_s_{name}": round(cpu, 2),
                       f"decode_sent_per_s_{name}": round(len(sources) / secs, 2),
                       "sacrebleu_signature": scores["bleu_signature"]})
    print(json.dumps(record), flush=True)


# ----------------------------------------------------------------------------------------------- main
def rnnkit_cmd(args, worker: str) -> list[str]:
    cmd = [sys.executable, __file__, "--worker", worker, "--data", str(args.data), "--minutes", str(args.minutes),
           "--threads", str(args.threads), "--recipe", args.recipe, "--beam", str(args.beam), "--out", str(args.out)]
    return cmd + sum((["--set", o] for o in args.overrides), [])


def joey_cmd(args, train: bool) -> list[str]:
    cmd = [str(args.joeynmt), "--threads", str(args.threads), "--work", str(args.out / "joeynmt"),
           "--data", str(args.data), "--beam", str(args.beam), "--test-batch", str(DECODE_BATCH)]
    return cmd + (["--minutes", str(args.minutes)] if train else ["--skip-train"])


def train_phase(args, env: dict) -> tuple[dict, dict, list[Side]]:
    fresh_folder(args.out)
    sides = [Side("rnnkit", rnnkit_cmd(args, "train"), args.out / "rnnkit_train.log", env),
             Side("joeynmt", joey_cmd(args, True), args.out / "joeynmt_train.log", env)]
    ours, peer = run_against_peer(sides, concurrent=not args.sequential, what="training result")
    if ours.get("moses_target_tokens") is None and (args.out / "joeynmt" / "data" / "train.en").is_file():
        print("note: rnnkit's Moses token count was not available", file=sys.stderr)
    return ours, peer, sides


def decode_phase(args, env: dict) -> tuple[dict, dict, list[list[str]]]:
    runs: dict[str, list[dict]] = {"rnnkit": [], "joeynmt": []}
    commands = []
    for k in range(args.decode_rounds):
        sides = [Side("rnnkit", rnnkit_cmd(args, "decode"), args.out / f"rnnkit_decode{k}.log", env),
                 Side("joeynmt", joey_cmd(args, False), args.out / f"joeynmt_decode{k}.log", env)]
        if k % 2:
            sides.reverse()
        run_side_by_side(sides, concurrent=False)
        for s in sides:
            result = json_line(s.stdout, '{"side"' if s.name == "rnnkit" else '{"peer"')
            if result is None:
                sys.exit(f"error: {s.name} printed no decoding result (see the log above)")
            runs[s.name].append(result)
        commands = [s.cmd for s in sides]
    return runs["rnnkit"], runs["joeynmt"], commands


def median_of(runs: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 2)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker == "train":
        worker_train(args)
        return 0
    if args.worker == "decode":
        worker_decode(args)
        return 0
    env = equal_threads_env(args.threads, {"PYTHONPATH": str(REPO / "src")})
    torch_threads(args.threads)  # so that machine() reports the sides' setting
    record = {"bench": "seq2seq_vs_joeynmt", "minutes": args.minutes, "threads": args.threads,
              "omp_wait_policy": "PASSIVE", "concurrent": not args.sequential, "machine": machine(),
              "rnnkit_commit": git_state()}
    if not args.decode_only:
        ours, peer, sides = train_phase(args, env)
        record.update(train_rnnkit=ours, train_joeynmt=peer, train_commands={s.name: s.cmd for s in sides})
        emit({**record, "phase": "train"})
    dec_ours, dec_peer, dec_cmds = decode_phase(args, env)
    name = f"beam{args.beam}"
    decode = {side: {k: median_of(runs, f"decode_sent_per_s_{k}") for k in ("greedy", name)}
              for side, runs in (("rnnkit", dec_ours), ("joeynmt", dec_peer))}
    record.update(decode_rnnkit=dec_ours, decode_joeynmt=dec_peer, decode_commands=dec_cmds,
                  decode_sent_per_s=decode)
    emit({**record, "phase": "all" if not args.decode_only else "decode"})
    if not args.decode_only:
        print(train_table(record["train_rnnkit"], record["train_joeynmt"], dec_ours[-1], dec_peer[-1], args.beam))
    print(decode_table(decode, args.beam))
    return 0


def train_table(ours: dict, peer: dict, dec_ours: dict, dec_peer: dict, beam: int) -> str:
    def bleu(d, name):
        return f"{d[f'test_bleu_{name}']:.2f}"

    moses = ours.get("moses_target_tokens_per_s")
    rows = [
        ["rnnkit", f"{ours['params']:,}", ours["steps"], f"{ours['loop_s']:.0f} / {ours['valid_s']:.0f}",
         f"{moses:,.0f}" if moses else "n/a", f"{ours['target_tokens_per_s']:,.0f} (own tokens)",
         f"{ours['sentences_per_s']:.1f}", bleu(dec_ours, "greedy"), bleu(dec_ours, f"beam{beam}")],
        ["joeynmt", f"{dec_peer.get('n_params', peer.get('n_params')):,}", peer["steps"],
         f"{peer['train_wall_s']:.0f} / {peer['valid_s']:.0f}", f"{peer['tokens_per_s']:,.0f}", "-",
         f"{peer['sent_per_s']:.1f}", bleu(dec_peer, "greedy"), bleu(dec_peer, f"beam{beam}")],
    ]
    header = ["side", "params", "updates", "train wall s / of it validating", "target tok/s (Moses + </s>)",
              "target tok/s (rnnkit's tokens)", "sentences/s", "test BLEU greedy", f"test BLEU beam {beam}"]
    ratio = (moses or 0) / peer["tokens_per_s"]
    return markdown_table(header, rows) + f"\n\ntraining tokens/s rnnkit / JoeyNMT: {ratio:.2f}x (target >= 1.5x)\n"


def decode_table(decode: dict, beam: int) -> str:
    name = f"beam{beam}"
    rows = [[side, f"{d['greedy']:.1f}", f"{d[name]:.1f}"] for side, d in decode.items()]
    ours, peer = decode["rnnkit"], decode["joeynmt"]
    return (markdown_table(["side", "greedy sent/s", f"beam {beam} sent/s"], rows)
            + f"\n\nrnnkit / JoeyNMT decoding: greedy {ours['greedy'] / peer['greedy']:.2f}x, beam {beam} "
              f"{ours[name] / peer[name]:.2f}x (target >= 2x)")


if __name__ == "__main__":
    sys.exit(main())

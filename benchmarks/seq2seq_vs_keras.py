#!/usr/bin/env python3
"""Seed 000 side by side: rnnkit's ``seed-000`` recipe vs the seed's Keras script, one run.

Both sides train the seed's model on the same pairs with the same settings: the first ``--pairs``
(10,000) lines of ``fra-eng/fra.txt.gz``, character level, one-hot inputs, LSTM 256, the decoder
starting from the encoder's state, RMSprop 1e-3, batch 64, the last 20% of the pairs for validation,
``--epochs`` epochs. They run as two processes, at once by default (``--sequential``: one after the
other), each with ``--threads`` torch threads and ``OMP_WAIT_POLICY=PASSIVE``:

* ``keras``: ``../shared/peers/keras_char_seq2seq.py --num-samples N --epochs E --heldout H --threads T``
  with ``KERAS_BACKEND=torch`` and the peer venv's Python (``--keras-python``).
* ``rnnkit``: this script with ``--worker``: ``rnnkit.train("seq2seq", recipe="seed-000",
  data=fra.txt.gz, overrides=["train.epochs=E", "train.threads=T", "data.max_pairs=N"])`` through
  the real Trainer, with clocks added from outside (``_seq2seq.ClockedTrainer``).

Compared:

* **seconds per epoch**: Keras's epoch timer (training plus its validation pass); rnnkit: time between
  the ends of consecutive end-of-epoch validations (training plus validation), the first from the first
  step. Both: the median of the epochs after the first (the peer's rule).
* **validation loss**: the same quantity on the same 2,000 pairs: mean cross-entropy per target
  character, padding excluded, the end-of-sequence symbol included, the start symbol not (Keras:
  the peer's ``val_char_loss_masked``; rnnkit: its trainer's validation loss of the last epoch, and
  ``Translator.evaluate`` of the saved best weights on the same pairs as a check).
* **BLEU / chrF of greedy decoding** of the same held-out pairs (the peer's ``--heldout`` rule: the
  first H pairs after the training lines whose English side never occurs in them; this script
  computes them with the peer's own reader and checks the peer's ``.src`` file equals them), sacrebleu
  defaults (13a, case-sensitive), hypotheses stripped; decoding batch 256 on both sides.

  python benchmarks/seq2seq_vs_keras.py                         # 3 epochs, at once
  python benchmarks/seq2seq_vs_keras.py --epochs 2 --sequential
  python benchmarks/seq2seq_vs_keras.py --quick                 # smoke test: 600 pairs, 1 epoch
"""

from __future__ import annotations

import argparse
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
    read_lines,
    run_against_peer,
    score,
    timed_translate,
    torch_threads,
    train_clocked,
)

DECODE_BATCH = 256  # the peer's --decode-batch default


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA_DIR / "fra-eng" / "fra.txt.gz")
    p.add_argument("--pairs", type=int, default=10000, help="first N pairs (seed: 10,000)")
    p.add_argument("--epochs", type=int, default=3, help="epochs on both sides (default 3)")
    p.add_argument("--heldout", type=int, default=1000, help="held-out pairs decoded greedily (default 1000)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--recipe", default="seed-000")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="extra rnnkit overrides (repeatable)")
    p.add_argument("--keras-python", default="/tmp/peers/bin/python")
    p.add_argument("--peers-dir", type=Path, default=PEERS)
    p.add_argument("--out", type=Path, default=RUNS_DIR / "bench-seq2seq-keras",
                   help="scratch folder: new, empty, or one an earlier run of this benchmark made (it is emptied)")
    p.add_argument("--sequential", action="store_true", help="rnnkit first, then Keras (default: at once)")
    p.add_argument("--quick", action="store_true", help="smoke test: 600 pairs, 1 epoch, 50 held out")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.pairs, args.epochs, args.heldout = 600, 1, 50
        args.out = args.out.with_name(args.out.name + "-quick")
    return args


def peer_module(peers_dir: Path):
    sys.path.insert(0, str(peers_dir))
    import keras_char_seq2seq  # module level: argparse/paths only; keras is imported in its main()

    return keras_char_seq2seq


def write_pair_files(args) -> None:
    """valid.tsv (the last 20% of the first N pairs) and heldout.tsv, read with the peer's own reader."""
    peer = peer_module(args.peers_dir)
    pairs = peer.read_pairs(str(args.data), limit=args.pairs)
    n_valid = int(len(pairs) * 0.2)
    seen = {s for s, _ in pairs}
    held = []
    for s, t in peer.iter_pairs(str(args.data), skip=args.pairs):
        if s not in seen:
            held.append((s, t))
            if len(held) >= args.heldout:
                break
    for name, rows in (("valid.tsv", pairs[len(pairs) - n_valid:]), ("heldout.tsv", held)):
        (args.out / name).write_text("".join(f"{s}\t{t}\n" for s, t in rows), encoding="utf-8")


# ----------------------------------------------------------------------------------------- rnnkit side
def worker(args) -> None:
    """rnnkit's side, in its own process: train, time, check the validation loss, decode the held-out pairs."""
    overrides = [f"train.epochs={args.epochs}", f"train.threads={args.threads}", f"data.max_pairs={args.pairs}",
                 *args.overrides]
    tr, clock, wall = train_clocked("seq2seq", args.recipe, str(args.data), args.out / "rnnkit", overrides)
    log = [row for row in tr_log(args.out / "rnnkit") if row["split"] == "valid"]
    valid = tr.evaluate(str(args.out / "valid.tsv"))
    held = [line.split("\t") for line in read_lines(args.out / "heldout.tsv")]
    srcs, refs = [s for s, _ in held], [t for _, t in held]
    hyps, secs, _ = timed_translate(tr, srcs, beam=1, batch_size=DECODE_BATCH)
    (args.out / "rnnkit_heldout.hyp").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    epochs = clock.epoch_seconds()
    print(json.dumps({
        "side": "rnnkit", "recipe": args.recipe, "overrides": overrides,
        "params": sum(p.numel() for p in tr.model.parameters()),
        "epoch_seconds": epochs, "sec_per_epoch": median_after_first(epochs),
        "valid_loss_per_epoch": [float(r["loss"]) for r in log],
        "val_char_loss_masked": float(log[-1]["loss"]) if log else None,
        "evaluate_valid": valid, "train_wall_s": round(wall, 1), "clock": clock.summary(),
        "heldout": {"n": len(srcs), "decode_s": round(secs, 2), "sent_per_sec": round(len(srcs) / secs, 1),
                    **score(hyps, refs)},
    }), flush=True)


def tr_log(model_dir: Path) -> list[dict]:
    import csv

    with open(model_dir / "log.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def median_after_first(times: list[float]) -> float | None:
    """The peer's rule (_peerutil.median_after_first)."""
    if not times:
        return None
    return round(float(statistics.median(times[1:] if len(times) > 1 else times)), 3)


# ----------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    fresh_folder(args.out)
    write_pair_files(args)
    env = equal_threads_env(args.threads, {"KERAS_BACKEND": "torch"})
    torch_threads(args.threads)  # so that machine() reports the sides' setting
    rnnkit_cmd = [sys.executable, __file__, "--worker", "--data", str(args.data), "--pairs", str(args.pairs),
                  "--epochs", str(args.epochs), "--heldout", str(args.heldout), "--threads", str(args.threads),
                  "--recipe", args.recipe, "--out", str(args.out), *sum((["--set", o] for o in args.overrides), [])]
    keras_cmd = [args.keras_python, str(args.peers_dir / "keras_char_seq2seq.py"), "--data", str(args.data),
                 "--num-samples", str(args.pairs), "--epochs", str(args.epochs), "--heldout", str(args.heldout),
                 "--heldout-out", str(args.out / "keras_heldout"), "--threads", str(args.threads),
                 "--decode-batch", str(DECODE_BATCH), "--show", "0", "--sentences", "--verbose", "2"]
    sides = [Side("rnnkit", rnnkit_cmd, args.out / "rnnkit.log", {**env, "PYTHONPATH": str(REPO / "src")}),
             Side("keras", keras_cmd, args.out / "keras.log", env)]
    ours, peer = run_against_peer(sides, concurrent=not args.sequential)
    same_heldout = read_lines(args.out / "keras_heldout.src") == [
        line.split("\t")[0] for line in read_lines(args.out / "heldout.tsv")]
    record = {"bench": "seq2seq_vs_keras", "pairs": args.pairs, "epochs": args.epochs, "threads": args.threads,
              "omp_wait_policy": "PASSIVE", "concurrent": not args.sequential, "same_heldout_sources": same_heldout,
              "speedup_per_epoch": round(peer["sec_per_epoch"] / ours["sec_per_epoch"], 2),
              "rnnkit": ours, "keras": peer, "commands": {s.name: s.cmd for s in sides},
              "machine": machine()}
    emit(record)
    print(table(ours, peer, record["speedup_per_epoch"]))
    return 0


def table(ours: dict, peer: dict, speedup: float) -> str:
    def row(name, r, val_loss, params):
        h = r["heldout"]
        return [name, params, " / ".join(f"{t:.1f}" for t in r["epoch_seconds"]), f"{r['sec_per_epoch']:.1f}",
                f"{val_loss:.4f}", f"{h['bleu']:.2f}", f"{h['chrf']:.2f}", f"{h['sent_per_sec']:,.0f}"]

    rows = [row("rnnkit", ours, ours["val_char_loss_masked"], f"{ours['params']:,}"),
            row("keras", peer, peer["val_char_loss_masked"], f"{peer['config']['params']:,}")]
    header = ["side", "params", "s per epoch", "s/epoch (median after 1st)", "val loss/char (masked)",
              "held-out BLEU", "chrF", "decode sent/s"]
    return markdown_table(header, rows) + f"\n\nrnnkit per epoch: {speedup:.2f}x faster than Keras (target >= 4x)"


if __name__ == "__main__":
    sys.exit(main())

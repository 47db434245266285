#!/usr/bin/env python3
"""Seed 003 classification: rnnkit's recipes vs the Keras port, side by side, and the trainer's overhead.

``side`` (default): each case runs rnnkit and ``shared/peers/keras_seq_classify.py`` (Keras 3,
``KERAS_BACKEND=torch``, ``--keras-python``) AT ONCE, as two processes under equal conditions (1 torch thread
each, ``OMP_NUM_THREADS=1``, ``OMP_WAIT_POLICY=PASSIVE``), on the same split and for the same epochs:

* ``mnist``   ``rnnkit train classify --recipe seed-003-mnist`` (its random warps ``data.augment_*`` set to 0 and its
              step decay of the rate off, ``train.schedule=none``: the seed trains on plain images at a constant
              rate) on MNIST's 10k images (7,200 train / 800 valid / 2,000 test in file order) vs
              ``keras_seq_classify.py mnist --dataset mnist`` (8,000 / 2,000, the last 10% of the 8,000
              validating: the same three parts);
* ``fashion`` ``--recipe fashion-mnist-rows`` on Fashion-MNIST's 60k training images (54,000 train / the last 6,000
              valid: ``data.valid_fraction=0.1``, Keras' split) and its 10k test images vs
              ``keras_seq_classify.py mnist --dataset fashion-mnist --n-train 60000`` (54,000 fit / the last 10% =
              6,000 valid, the 10k test images: the same three parts), validated once an epoch as Keras
              (``train.eval_every=0``; the recipe validates every 500 updates);
* ``imdb``    ``seed-003-imdb-bag`` vs ``keras_seq_classify.py imdb --model gap`` (15,000 train / 10,000 valid,
              the 25,000 test reviews; each its own tokenisation, see RESULTS.md).

Each side's epochs are stamped in its own process, wall (``perf_counter``) and CPU (``process_time``) seconds:
rnnkit's from one epoch's start (its ``Task.on_epoch_start`` hook) to the next one's, the last to the end of
the training loop (``Trainer._train_until_done``): everything an epoch does, its validations and checkpoints
included; Keras' by its epoch timer callback (``on_epoch_begin`` to ``on_epoch_end``, its validation included).
Per epoch: the median of the epochs after the first (warm-up). CPU seconds of each whole process come from
``wait4``. Accuracy: the test split (rnnkit scores the weights selected by validation accuracy, Keras its last
epoch's). Target (issue 14): rnnkit >= 3x faster per epoch at equal or better accuracy.

``--seeds 1,2,3`` repeats every case once per seed, all sides of one seed at once (rnnkit ``train.seed=S``, Keras
``--seed S``: its ``keras.utils.set_random_seed``, which seeds Python, NumPy and torch: the initial weights and
``fit``'s shuffling), and then reports per side the mean, standard deviation and per-seed values of test accuracy
and CPU / wall seconds per epoch, and the ratio Keras / side of the mean CPU seconds per epoch (and the per-seed
ratios, each measured at once): one summary JSON line per case and a short table. Without ``--seeds`` each side
runs once at its own default seed (the recipe's ``train.seed``, Keras' 1234). A few epochs of one run each decide
nothing about accuracy: seeds move MNIST rows' 5-epoch test accuracy by points (RESULTS.md).

``--set KEY=VALUE`` (repeatable) passes config overrides to every rnnkit side; ``--variant NAME:KEY=VALUE,...``
(repeatable) runs one more rnnkit process per variant in the same batch, with those overrides on top (e.g.
``--variant bf16:train.cpu_amp=true``: the plain recipe, its bf16-autocast run and Keras, all three at once).

``summary --from FILE ...``: the same summary from the per-seed JSON lines of earlier ``side --seeds`` runs (a
batch stopped after some seeds, or seeds run in several batches); a seed counts once all its sides are there.

``overhead``: one process, seed-003-mnist's task and model, interleaved rounds of N updates each (after an
untimed warm-up round) by the real ``rnnkit.train.Trainer`` (clocked as ``trainer_overhead.py`` does: from its
epoch's start to its train log row) and by a minimal PyTorch loop (collate the batch with the task's batches,
zero_grad, forward, cross-entropy, backward, Adam step, ``loss.item()``) over the SAME batches (the trainer's
first N of epoch 1) around the same ``SequenceClassifier``; ``plain`` is that loop
around a bare ``nn.LSTM(28, 128) -> nn.Linear`` (no packing). Ratio rnnkit/minimal (examples/s), target >= 0.95.

  python benchmarks/classify_vs_keras.py side --cases mnist,fashion,imdb --epochs 3
  python benchmarks/classify_vs_keras.py overhead --rounds 3 --steps 60
  python benchmarks/classify_vs_keras.py side --cases mnist --epochs 5 --variant bf16:train.cpu_amp=true
  python benchmarks/classify_vs_keras.py side --cases mnist --epochs 5 --seeds 1,2,3,4,5 \
      --variant bf16:train.cpu_amp=true
  python benchmarks/classify_vs_keras.py side --quick      # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_DIR, PEERS_DIR, REPO, emit, machine, markdown_table  # noqa: E402

# rnnkit's recipe and its Keras counterpart per case: (recipe, data files, keras arguments)
CASES = {
    "mnist": ("seed-003-mnist", ["--data", "{data}/mnist/t10k-images-idx3-ubyte.gz",  # the seed's plain images:
                                 *[arg for key in ("shift", "rotate", "scale")  # the recipe's random warps off
                                   for arg in ("--set", f"data.augment_{key}=0")],
                                 "--set", "train.schedule=none"],  # the seed's constant rate (the recipe's
              # step decay from epoch 15 settles its warped images; on plain ones it cost 0.15-0.95 points at 50
              # epochs, 2 seeds, RESULTS.md "Seed 003 MNIST rows at the seed's constant rate")
              ["mnist", "--dataset", "mnist", "--data-dir", "{data}/mnist"]),
    "fashion": ("fashion-mnist-rows", ["--data", "{data}/fashion-mnist/train-images-idx3-ubyte.gz",
                                       "--test", "{data}/fashion-mnist/t10k-images-idx3-ubyte.gz",
                                       "--set", "data.valid_fraction=0.1",  # Keras' split, whatever the recipe's
                                       "--set", "train.eval_every=0"],  # one validation an epoch, as Keras
                ["mnist", "--dataset", "fashion-mnist", "--data-dir", "{data}/fashion-mnist", "--n-train", "60000"]),
    "imdb": ("seed-003-imdb-bag", ["--data", "{data}/imdb/train.jsonl.gz", "--test", "{data}/imdb/test.jsonl.gz"],
             ["imdb", "--model", "gap"]),
}
ENV = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "KERAS_BACKEND": "torch", "MKL_NUM_THREADS": "1"}

# run inside the rnnkit process: the CLI, with each epoch start and the end of the training loop stamped
DRIVER = """
import json, sys, time
from rnnkit.tasks.classify import ClassifyTask
from rnnkit.train import Trainer
stamps = []
def stamp(epoch):
    stamps.append([epoch, time.perf_counter(), time.process_time()])
hook, loop = ClassifyTask.on_epoch_start, Trainer._train_until_done
def stamped(self, epoch, model):
    stamp(epoch)
    hook(self, epoch, model)
def stamped_loop(self):
    try:
        return loop(self)
    finally:
        stamp(None)
ClassifyTask.on_epoch_start, Trainer._train_until_done = stamped, stamped_loop
from rnnkit.cli import main
rc = main(sys.argv[2:])
open(sys.argv[1], "w").write(json.dumps(stamps))
sys.exit(rc)
"""

# run inside the Keras process: the peer script, its epoch timer also stamping wall and CPU seconds
KERAS_DRIVER = """
import json, runpy, sys, time
out, script = sys.argv[1:3]
sys.path.insert(0, script.rsplit("/", 1)[0])
import _peerutil
make_timer, stamps = _peerutil.make_epoch_timer, []
def stamped_timer():
    timer = make_timer()
    begin, end = timer.on_epoch_begin, timer.on_epoch_end
    def on_begin(epoch, logs=None):
        stamps.append([epoch, time.perf_counter(), time.process_time()])
        begin(epoch, logs)
    def on_end(epoch, logs=None):
        end(epoch, logs)
        stamps[-1] += [time.perf_counter(), time.process_time()]
    timer.on_epoch_begin, timer.on_epoch_end = on_begin, on_end
    return timer
_peerutil.make_epoch_timer = stamped_timer
sys.argv = sys.argv[2:]
try:
    runpy.run_path(script, run_name="__main__")
finally:
    open(out, "w").write(json.dumps(stamps))
"""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", nargs="?", choices=["side", "overhead", "summary"], default="side")
    p.add_argument("--cases", default="mnist", help="comma-separated: mnist, fashion, imdb (default mnist)")
    p.add_argument("--epochs", type=int, default=3, help="epochs each side trains (default 3)")
    p.add_argument("--rounds", type=int, default=3, help="overhead: timed rounds (default 3)")
    p.add_argument("--steps", type=int, default=60, help="overhead: updates per round (default 60)")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    p.add_argument("--peers-dir", type=Path, default=PEERS_DIR)
    p.add_argument("--keras-python", default="/tmp/peers/bin/python", help="Python with keras installed")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="side: a config override for every rnnkit run (repeatable)")
    p.add_argument("--variant", dest="variants", action="append", default=[], metavar="NAME:KEY=VALUE,...",
                   help="side: one more rnnkit run at once, with these overrides too (repeatable)")
    p.add_argument("--seeds", type=lambda text: seed_list(text, p), default=[None], metavar="S1,S2,...",
                   help="side: run every case once per seed (rnnkit train.seed, Keras --seed), all sides of a seed "
                        "at once, and summarise mean / sd / per-seed values (default: each side's own seed, once)")
    p.add_argument("--from", dest="sources", action="append", type=Path, default=[], metavar="FILE",
                   help="summary: the output of earlier seeded side runs (repeatable)")
    p.add_argument("--quick", action="store_true", help="smoke test: 1 epoch / 2 rounds of 10 updates")
    args = p.parse_args(argv)
    args.variants = dict(rnnkit_variant(v, p) for v in args.variants)
    if args.quick:
        args.epochs, args.rounds, args.steps = 1, 2, 10
    return args


# ----------------------------------------------------------------------------------------------- side by side
def rnnkit_variant(text: str, parser: argparse.ArgumentParser) -> tuple[str, list[str]]:
    """``NAME:KEY=VALUE,...`` as (name, overrides)."""
    name, _, overrides = text.partition(":")
    if not name or name in ("rnnkit", "keras") or not overrides or "=" not in overrides:
        parser.error(f"--variant {text!r}: expected NAME:KEY=VALUE[,KEY=VALUE...] (NAME not rnnkit or keras)")
    return name, overrides.split(",")


def seed_list(text: str, parser: argparse.ArgumentParser) -> list[int]:
    """``1,2,3`` as distinct non-negative integers."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0 or len(set(seeds)) < len(seeds):
        parser.error(f"--seeds {text!r}: expected distinct non-negative integers, e.g. 1,2,3")
    return seeds


def side_commands(case: str, args, work: Path, seed: int | None = None) -> dict[str, list[str]]:
    """The command of each side: ``rnnkit`` (the recipe), one per ``--variant`` and ``keras``; each at ``seed``
    when it is given (rnnkit ``train.seed``, Keras ``--seed``), else at its own default seed."""
    recipe, data_args, keras_args = CASES[case]
    data = str(args.data_dir)
    seeded = [] if seed is None else [f"train.seed={seed}"]
    commands = {}
    for name, overrides in {"rnnkit": [], **args.variants}.items():
        sets = [f"train.epochs={args.epochs}", "train.early_stop=0", "train.progress=false", *seeded,
                *args.overrides, *overrides]
        commands[name] = [sys.executable, "-c", DRIVER, str(work / f"{name}.stamps.json"), "train", "classify",
                          "--recipe", recipe, *[a.format(data=data) for a in data_args], "--out", str(work / name),
                          "--threads", "1", *[arg for s in sets for arg in ("--set", s)]]
    commands["keras"] = [args.keras_python, "-c", KERAS_DRIVER, str(work / "keras_stamps.json"),
                         str(args.peers_dir / "keras_seq_classify.py"), *[a.format(data=data) for a in keras_args],
                         "--epochs", str(args.epochs), "--threads", "1", "--json-out", str(work / "keras.json"),
                         *([] if seed is None else ["--seed", str(seed)])]
    return commands


def run_together(commands: dict[str, list[str]], work: Path) -> dict[str, dict]:
    """Start every command at once; wait for all; exit code, wall and CPU seconds of each."""
    env = {**os.environ, **ENV, "PYTHONPATH": str(REPO / "src")}
    started, procs = time.perf_counter(), {}
    for name, cmd in commands.items():
        log = open(work / f"{name}.log", "w", encoding="utf-8")  # noqa: SIM115 - closed below
        procs[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log)
    done = {}
    while len(done) < len(procs):
        pid, status, usage = os.wait4(-1, 0)
        name = next(n for n, (p, _) in procs.items() if p.pid == pid)
        procs[name][1].close()
        done[name] = {"exit_code": os.waitstatus_to_exitcode(status),
                      "wall_s": round(time.perf_counter() - started, 1),
                      "cpu_s": round(usage.ru_utime + usage.ru_stime, 1)}
    return done


def per_epoch(epochs: list[tuple[float, float]]) -> dict:
    """Wall and CPU seconds of each epoch, and their medians after the first (warm-up) epoch."""
    later = epochs[1:] or epochs
    return {"epoch_seconds": [round(w, 2) for w, _ in epochs], "epoch_cpu_seconds": [round(c, 2) for _, c in epochs],
            "sec_per_epoch": round(statistics.median(w for w, _ in later), 3),
            "cpu_sec_per_epoch": round(statistics.median(c for _, c in later), 3)}


def rnnkit_figures(work: Path, name: str) -> dict:
    stamps = json.loads((work / f"{name}.stamps.json").read_text())
    firsts = {}
    for epoch, wall, cpu in stamps[:-1]:  # a resumed epoch would stamp twice: keep its first
        firsts.setdefault(epoch, (wall, cpu))
    marks = [firsts[e] for e in sorted(firsts)] + [tuple(stamps[-1][1:])]  # the last: the loop's end
    epochs = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(marks[:-1], marks[1:], strict=True)]
    results = json.loads((work / name / "results.json").read_text())
    return {**per_epoch(epochs), "valid_acc": round(results["valid"]["accuracy"], 4),
            "test_acc": round(results["test"]["accuracy"], 4)}


def keras_figures(work: Path) -> dict:
    result = json.loads((work / "keras.json").read_text())
    stamps = json.loads((work / "keras_stamps.json").read_text())
    epochs = [(wall_end - wall, cpu_end - cpu) for _, wall, cpu, wall_end, cpu_end in stamps]
    return {**per_epoch(epochs), "valid_acc": result["val_acc"],
            "test_acc": result.get("holdout_acc", result.get("test_acc"))}


def side_by_side(args) -> list[list]:
    rows = []
    for case in args.cases.split(","):
        figures_by_seed = {seed: run_seed(case, args, seed) for seed in args.seeds}
        if args.seeds != [None]:
            summary = seed_summary(figures_by_seed)
            emit({"bench": "classify_vs_keras", "case": case, "summary": True, "epochs": args.epochs,
                  "seeds": args.seeds, **summary, "machine": {**machine(), "torch_threads": 1, "env": ENV},
                  "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
            print(markdown_table(SUMMARY_HEADER, summary_rows(case, summary)), flush=True)
        for seed, figures in figures_by_seed.items():
            theirs = figures["keras"]
            rows += [[case, seed if seed is not None else "default", name, fig["cpu_sec_per_epoch"],
                      fig["sec_per_epoch"], fig["cpu_s"], fig["wall_s"], fig["valid_acc"], fig["test_acc"],
                      "" if name == "keras" else speedup(theirs, fig)]
                     for name, fig in figures.items()]
    return rows


def run_seed(case: str, args, seed: int | None) -> dict[str, dict]:
    """Every side of ``case`` at ``seed``, all at once: each side's figures (one JSON line each)."""
    with tempfile.TemporaryDirectory(prefix=f"classify-vs-keras-{case}-") as tmp:
        work = Path(tmp)
        commands = side_commands(case, args, work, seed)
        runs = run_together(commands, work)
        for name, run in runs.items():
            if run["exit_code"] != 0:
                sys.exit(f"{name} failed ({run['exit_code']}): {(work / f'{name}.log').read_text()[-3000:]}")
        figures = {name: {**runs[name], **(keras_figures(work) if name == "keras" else rnnkit_figures(work, name))}
                   for name in commands}
    for name, fig in figures.items():
        emit({"bench": "classify_vs_keras", "case": case, "side": name, "seed": seed, "epochs": args.epochs, **fig,
              "command": " ".join(commands[name]).replace(DRIVER, "DRIVER").replace(KERAS_DRIVER, "KERAS_DRIVER"),
              "machine": {**machine(), "torch_threads": 1, "env": ENV},
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
    return figures


def spread(values: list[float], digits: int) -> dict:
    """Mean, sample standard deviation (0 for one value) and the values themselves."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": round(statistics.fmean(values), digits), "sd": round(sd, digits), "values": values}


def difference_se(ours: list[float], theirs: list[float]) -> float:
    """The standard error of the difference of two means (Welch: each sample's own variance; 0 for one seed)."""
    if len(ours) < 2:
        return 0.0
    return (statistics.variance(ours) / len(ours) + statistics.variance(theirs) / len(theirs)) ** 0.5


def seed_summary(figures_by_seed: dict[int, dict[str, dict]]) -> dict:
    """Per side over the seeds: test accuracy and CPU / wall seconds per epoch (mean, sd, values); for each
    rnnkit side the ratio Keras / side of the mean CPU and wall seconds per epoch, the per-seed CPU ratios
    (each from processes that ran at once) and the test accuracy's difference from Keras' with its standard error."""
    runs = list(figures_by_seed.values())
    keras_cpu, keras_wall, keras_acc = (statistics.fmean(run["keras"][key] for run in runs)
                                        for key in ("cpu_sec_per_epoch", "sec_per_epoch", "test_acc"))
    keras_accs = [run["keras"]["test_acc"] for run in runs]
    sides = {}
    for name in runs[0]:
        per_seed = [run[name] for run in runs]
        side = {key: spread([fig[key] for fig in per_seed], digits)
                for key, digits in (("test_acc", 4), ("cpu_sec_per_epoch", 3), ("sec_per_epoch", 3))}
        if name != "keras":
            side["ratio_cpu"] = round(keras_cpu / side["cpu_sec_per_epoch"]["mean"], 3)
            side["ratio_wall"] = round(keras_wall / side["sec_per_epoch"]["mean"], 3)
            side["ratio_cpu_per_seed"] = spread(
                [round(run["keras"]["cpu_sec_per_epoch"] / run[name]["cpu_sec_per_epoch"], 3) for run in runs], 3)
            side["test_acc_minus_keras"] = round(side["test_acc"]["mean"] - keras_acc, 4)
            side["test_acc_minus_keras_se"] = round(difference_se(side["test_acc"]["values"], keras_accs), 4)
        sides[name] = side
    return {"sides": sides}


SUMMARY_HEADER = ["case", "side", "test acc mean ± sd", "test acc per seed", "minus Keras ± se",
                  "CPU s/epoch mean ± sd", "CPU s/epoch per seed", "Keras / side (CPU, of means)",
                  "per-seed ratios mean ± sd"]


def summaries_from(paths: list[Path]) -> list[list]:
    """The seed summary (a JSON line and its table rows) of each case and epoch count in the per-seed JSON lines
    of earlier ``side --seeds`` runs (e.g. a batch stopped after some seeds, or seeds run in several batches)."""
    runs: dict[tuple[str, int], dict[int, dict[str, dict]]] = {}
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line) if line.startswith('{"bench": "classify_vs_keras"') else {}
            if record.get("seed") is not None:
                runs.setdefault((record["case"], record["epochs"]), {}).setdefault(record["seed"], {})[
                    record["side"]] = record
    rows = []
    for (case, epochs), figures_by_seed in runs.items():
        every_side = max((set(sides) for sides in figures_by_seed.values()), key=len)
        complete = {seed: sides for seed, sides in sorted(figures_by_seed.items()) if set(sides) == every_side}
        summary = seed_summary(complete)
        emit({"bench": "classify_vs_keras", "case": case, "summary": True, "epochs": epochs,
              "seeds": list(complete), **summary, "from": [str(path) for path in paths]})
        rows += summary_rows(case, summary)
    return rows


def summary_rows(case: str, summary: dict) -> list[list]:
    rows = []
    for name, side in summary["sides"].items():
        acc, cpu = side["test_acc"], side["cpu_sec_per_epoch"]
        versus = ["", "", ""] if name == "keras" else [
            f"{side['test_acc_minus_keras']:+.4f} ± {side['test_acc_minus_keras_se']:.4f}", f"{side['ratio_cpu']:.2f}x",
            f"{side['ratio_cpu_per_seed']['mean']:.2f} ± {side['ratio_cpu_per_seed']['sd']:.2f}"]
        rows.append([case, name, f"{acc['mean']:.4f} ± {acc['sd']:.4f}", " ".join(f"{v:.4f}" for v in acc["values"]),
                     versus[0], f"{cpu['mean']:.3f} ± {cpu['sd']:.3f}", " ".join(f"{v:.2f}" for v in cpu["values"]),
                     *versus[1:]])
    return rows


def speedup(theirs: dict, ours: dict) -> str:
    return (f"{theirs['cpu_sec_per_epoch'] / ours['cpu_sec_per_epoch']:.2f}x CPU, "
            f"{theirs['sec_per_epoch'] / ours['sec_per_epoch']:.2f}x wall")


# ---------------------------------------------------------------------------------------------------- overhead
def overhead_task(args):
    import torch

    from rnnkit.config import load_config
    from rnnkit.distributed import DistInfo
    from rnnkit.tasks.classify import ClassifyTask
    from rnnkit.train import seed_everything

    mnist = args.data_dir / "mnist" / "t10k-images-idx3-ubyte.gz"
    plain_images = [f"data.augment_{key}=0" for key in ("shift", "rotate", "scale")]  # the minimal loop does not warp
    cfg = load_config("seed-003-mnist", ["train.progress=false", "train.device=cpu", "train.threads=1", *plain_images],
                      {"data": {"train": str(mnist)}})
    seed_everything(cfg.train.seed)
    return cfg, ClassifyTask(cfg, DistInfo(), torch.device("cpu"))


def minimal_loop(model, data, plan, lr: float) -> tuple[float, float]:
    """Wall and CPU seconds of one update per batch of ``plan`` (collated by the task's own batches, as the
    trainer's are, inside the clock): the least any PyTorch trainer does."""
    import torch
    import torch.nn.functional as F

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    wall, cpu = time.perf_counter(), time.process_time()
    for spec in plan:
        batch = data.batch(spec)
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(batch.inputs, batch.lengths), batch.labels)
        loss.backward()
        optimizer.step()
        loss.item()
    return time.perf_counter() - wall, time.process_time() - cpu


def plain_model():
    from torch import nn

    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.out = nn.LSTM(28, 128), nn.Linear(128, 10)

        def forward(self, x, lengths):  # every MNIST image has 28 rows: the last step is the last valid one
            return self.out(self.lstm(x)[0][-1])

    return Plain()


def overhead(args) -> list[list]:
    import tempfile

    import torch

    from rnnkit.models.classifier import SequenceClassifier
    from trainer_overhead import timed_trainer_class

    torch.set_num_threads(1)
    cfg, task = overhead_task(args)
    plan = task.train_data.plan(0)[: args.steps]  # the trainer's first N batches of epoch 1
    examples = sum(len(spec) for spec in plan)
    same_model = SequenceClassifier(cfg.model, 10, features=28)
    rates: dict[str, list[tuple[float, float]]] = {"rnnkit": [], "minimal": [], "plain": []}
    with tempfile.TemporaryDirectory(prefix="classify-overhead-") as tmp:
        for round_ in range(args.rounds + 1):  # round 0: warm-up, not counted
            cfg.train.max_steps, cfg.train.log_every = args.steps, args.steps
            trainer = timed_trainer_class()(task, cfg.train, Path(tmp) / f"r{round_}", torch.device("cpu"))
            trainer.fit()
            (w0, c0), (w1, c1) = trainer.marks[:2]
            measured = {"rnnkit": (w1 - w0, c1 - c0),
                        "minimal": minimal_loop(same_model, task.train_data, plan, cfg.train.lr),
                        "plain": minimal_loop(plain_model(), task.train_data, plan, cfg.train.lr)}
            if round_:
                for name, (wall, cpu) in measured.items():
                    rates[name].append((examples / wall, examples / cpu))
                    emit({"bench": "classify_overhead", "variant": name, "round": round_, "steps": args.steps,
                          "examples_per_sec": round(examples / wall, 1),
                          "examples_per_cpu_sec": round(examples / cpu, 1)})
    median = {name: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v))
              for name, v in rates.items()}
    emit({"bench": "classify_overhead", "summary": True, "machine": machine(), "steps": args.steps,
          "rounds": args.rounds, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
          "rnnkit_over_minimal": round(median["rnnkit"][0] / median["minimal"][0], 3),
          "rnnkit_over_minimal_cpu": round(median["rnnkit"][1] / median["minimal"][1], 3)})
    return [[name, round(w, 1), round(c, 1), f"{w / median['minimal'][0]:.3f}", f"{c / median['minimal'][1]:.3f}"]
            for name, (w, c) in median.items()]


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.mode == "summary":
        print(markdown_table(SUMMARY_HEADER, summaries_from(args.sources)))
    elif args.mode == "side":
        print(markdown_table(["case", "seed", "side", "CPU s/epoch", "wall s/epoch", "process CPU s", "process wall s",
                              "valid acc", "test acc", "rnnkit faster per epoch"], side_by_side(args)))
    else:
        print(markdown_table(["variant", "examples/s", "examples/CPU s", "/ minimal", "/ minimal (CPU)"],
                             overhead(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

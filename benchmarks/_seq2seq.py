"""Helpers shared by the seq2seq benchmark scripts (not part of the package).

* :func:`equal_threads_env`: the environment every side of a comparison runs in (N threads, passive
  OpenMP waiting), so rnnkit and a peer get the same thread settings.
* :class:`ClockedTrainer`: rnnkit's real ``Trainer`` with clocks added from outside (as the JoeyNMT
  peer driver adds its own to JoeyNMT): first step, end of every validation, validation seconds,
  sentences and target tokens trained, and an optional wall-clock bound counted from the first step
  (validations included), after which the trainer leaves its loop as if ``max_steps`` were reached.
* :func:`train_clocked`: ``rnnkit.train(...)`` with that trainer; returns the loaded model and the clock.
* :func:`run_side_by_side`: start several commands at once (or one after another), collect their
  stdout JSON lines; :func:`run_against_peer`: rnnkit's side and a peer's, their result lines read;
  :func:`fresh_folder`: a benchmark's scratch folder, emptied only if the benchmark made it.
* :func:`score`, :func:`timed_translate`: sacrebleu BLEU / chrF and timed decoding through
  ``Translator.translate``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


def shared_dir() -> Path:
    """``../shared`` beside the repository (a worktree one level deeper: the first that exists)."""
    from _common import REPO

    candidates = [REPO.parent / "shared", REPO.parents[1] / "shared"]
    return next((c for c in candidates if c.is_dir()), candidates[0])


DATA_DIR = shared_dir() / "data"
PEERS = shared_dir() / "peers"


def equal_threads_env(threads: int, extra: dict | None = None) -> dict:
    """os.environ with ``threads`` OpenMP/MKL threads and passive waiting (for rnnkit and the peer alike)."""
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"})
    env.update(extra or {})
    return env


def git_state() -> str:
    """The tree's commit, '+dirty' when src/ has uncommitted changes (what a figure was measured on)."""
    from _common import REPO

    def git(*a):
        return subprocess.run(["git", "-C", str(REPO), *a], capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain", "src") else "")


def torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def json_line(text: str, prefix: str) -> dict | None:
    """The last line of ``text`` that starts with ``prefix`` (e.g. '{"peer"'), parsed; None if absent."""
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return json.loads(lines[-1]) if lines else None


@dataclass
class Side:
    """One command of a side-by-side run: its name, argv, where its stderr goes, and what it printed."""

    name: str
    cmd: list[str]
    log: Path
    env: dict = field(default_factory=dict, repr=False)
    stdout: str = ""
    rc: int | None = None
    wall_s: float = 0.0


def run_side_by_side(sides: list[Side], concurrent: bool = True) -> None:
    """Run every side (all at once, or in order), stdout captured, stderr to its log file."""
    def start(side: Side):
        side.log.parent.mkdir(parents=True, exist_ok=True)
        print(f"[{side.name}] {' '.join(side.cmd)}  (log: {side.log})", file=sys.stderr, flush=True)
        handle = open(side.log, "w", encoding="utf-8")
        proc = subprocess.Popen(side.cmd, stdout=subprocess.PIPE, stderr=handle, text=True, env=side.env or None)
        return proc, handle, time.perf_counter()

    def finish(side: Side, running) -> None:
        proc, handle, t0 = running
        side.stdout, _ = proc.communicate()
        side.wall_s = time.perf_counter() - t0
        side.rc = proc.returncode
        handle.write("\n--- stdout ---\n" + side.stdout)  # the log keeps both streams
        handle.close()
        if side.rc != 0:
            tail = side.log.read_text(encoding="utf-8", errors="replace")[-2500:]
            print(f"[{side.name}] exited with {side.rc}; end of {side.log}:\n{tail}", file=sys.stderr, flush=True)

    if concurrent:
        running = [start(s) for s in sides]
        for side, r in zip(sides, running, strict=True):
            finish(side, r)
    else:
        for side in sides:
            finish(side, start(side))


#: written into every folder :func:`fresh_folder` makes: only a folder holding it is ever emptied
BENCHMARK_MARKER = ".rnnkit-benchmark"


def fresh_folder(out: Path) -> None:
    """``out`` made empty and marked as the benchmark's own scratch folder. A folder an earlier run made (it
    holds :data:`BENCHMARK_MARKER`) is emptied; any other non-empty folder (``--out`` given by mistake) is
    left as it is, with one error: rnnkit never deletes what it did not create."""
    if out.exists() and not out.is_dir():
        sys.exit(f"error: --out {out} is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / BENCHMARK_MARKER).is_file():
            sys.exit(f"error: --out {out} is not empty and was not made by this benchmark (it holds no "
                     f"{BENCHMARK_MARKER}): give a new or empty folder")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / BENCHMARK_MARKER).write_text("made by an rnnkit benchmark: it empties this folder when run again\n")


def run_against_peer(sides: list[Side], concurrent: bool, what: str = "result") -> tuple[dict, dict]:
    """Run rnnkit's side and the peer's (``sides``, in that order) and read each one's JSON result line
    (rnnkit's starts with ``{"side"``, the peer's with ``{"peer"``); a side that printed none ends the
    benchmark with one error naming ``what`` was missing."""
    run_side_by_side(sides, concurrent)
    ours, peer = json_line(sides[0].stdout, '{"side"'), json_line(sides[1].stdout, '{"peer"')
    if ours is None or peer is None:
        sys.exit(f"error: a side printed no {what} (see the logs above)")
    return ours, peer


# ----------------------------------------------------------------------------------- clocked training
@dataclass
class TrainingClock:
    """What :class:`ClockedTrainer` measured (times from time.time(), seconds)."""

    deadline_s: float | None = None
    t_first_step: float | None = None
    t_loop_end: float | None = None
    deadline_hit: bool = False
    valid_s: float = 0.0  # validations inside the training loop (before the bound)
    valid_ends: list = field(default_factory=list)  # time.time() at the end of each of them
    cpu_first_step: float | None = None  # time.process_time() at the first step
    cpu_valid_ends: list = field(default_factory=list)  # time.process_time() at the end of each validation
    final_valid_s: float = 0.0  # the validation of the weights at the bound
    steps: int = 0
    sentences: int = 0
    target_tokens: int = 0  # the task's count: target tokens incl. </s>, no padding
    source_tokens: int = 0
    example_indices: list = field(default_factory=list)  # training examples, in the order trained
    example_lines: list = field(default_factory=list)  # each training example's line in its file(s)

    def loop_s(self) -> float:
        end = self.t_loop_end or time.time()
        return end - (self.t_first_step or end)

    def compute_s(self) -> float:
        """Training time without the validations (JoeyNMT's definition of its tokens/s clock)."""
        return max(self.loop_s() - self.valid_s, 1e-9)

    def epoch_seconds(self) -> list[float]:
        """Seconds between consecutive validation ends, the first from the first step: per epoch when
        the run validates once an epoch (training plus its validation, as Keras counts an epoch)."""
        marks = [self.t_first_step, *self.valid_ends] if self.t_first_step else []
        return [round(b - a, 3) for a, b in zip(marks, marks[1:], strict=False)]

    def summary(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("example_indices", "example_lines")}
        d.update(loop_s=round(self.loop_s(), 2), compute_s=round(self.compute_s(), 2),
                 epoch_seconds=self.epoch_seconds(),
                 target_tokens_per_s=round(self.target_tokens / self.compute_s(), 1),
                 sentences_per_s=round(self.sentences / self.compute_s(), 2))
        return d


def clocked_trainer_class(clock: TrainingClock):
    """A subclass of rnnkit's Trainer that fills ``clock``; every step is the real Trainer's."""
    from rnnkit.train import Trainer

    class ClockedTrainer(Trainer):
        def __init__(self, task, *args, **kwargs):
            super().__init__(task, *args, **kwargs)
            # pair_batches' collate is partial(collate_pairs, EncodedPairs): the file line of each example
            encoded = getattr(getattr(task.train_data, "collate", None), "args", [None])[0]
            clock.example_lines = list(getattr(encoded, "lines", []))

        def _train_step(self, batch, lr):
            if clock.t_first_step is None:
                clock.t_first_step, clock.cpu_first_step = time.time(), time.process_time()
            loss, count = super()._train_step(batch, lr)
            clock.steps += 1
            clock.target_tokens += count
            clock.sentences += len(batch.indices)
            clock.source_tokens += int(batch.src_lengths.sum())
            clock.example_indices.extend(batch.indices)
            return loss, count

        def _out_of_steps(self):
            if super()._out_of_steps():
                return True
            if clock.deadline_s is None or clock.t_first_step is None:
                return False
            if not clock.deadline_hit and time.time() - clock.t_first_step >= clock.deadline_s:
                clock.deadline_hit = True
                clock.t_loop_end = time.time()
            return clock.deadline_hit

        def _validate_and_save(self, *args, **kwargs):
            t0 = time.time()
            metrics = super()._validate_and_save(*args, **kwargs)
            if clock.t_loop_end is None:
                clock.valid_s += time.time() - t0
                clock.valid_ends.append(time.time())
                clock.cpu_valid_ends.append(time.process_time())
            else:
                clock.final_valid_s += time.time() - t0
            return metrics

        def fit(self):
            metrics = super().fit()
            if clock.t_loop_end is None:  # ended by epochs / max_steps / early stopping
                clock.t_loop_end = clock.valid_ends[-1] if clock.valid_ends else time.time()
            return metrics

    return ClockedTrainer


def train_clocked(task: str, recipe: str, data: str, out: Path, overrides: list[str], minutes: float | None = None,
                  **kwargs):
    """``rnnkit.train`` through :class:`ClockedTrainer` (``minutes``: the wall-clock bound); returns
    (the loaded model, the clock, wall seconds of the whole call)."""
    import rnnkit
    import rnnkit.api

    clock = TrainingClock(deadline_s=minutes * 60 if minutes else None)
    rnnkit.api.Trainer = clocked_trainer_class(clock)
    t0 = time.time()
    model = rnnkit.train(task, recipe=recipe, data=data, out=out, overrides=overrides, overwrite=True, **kwargs)
    return model, clock, time.time() - t0


# ------------------------------------------------------------------------------------ scoring/decoding
def score(hyps: list[str], refs: list[str], lowercase: bool = False) -> dict:
    """sacrebleu corpus BLEU (13a) and chrF, as the peers score (case-insensitive when ``lowercase``)."""
    import sacrebleu

    bleu = sacrebleu.metrics.BLEU(tokenize="13a", lowercase=lowercase)
    chrf = sacrebleu.metrics.CHRF(lowercase=lowercase)
    return {"bleu": round(bleu.corpus_score(hyps, [refs]).score, 2),
            "chrf": round(chrf.corpus_score(hyps, [refs]).score, 2),
            "bleu_signature": str(bleu.get_signature())}


def timed_translate(translator, sources: list[str], beam: int, batch_size: int) -> tuple[list[str], float, float]:
    """(hypotheses, wall s, CPU s) of ``translator.translate(sources, beam=beam, batch_size=batch_size)``."""
    t0, c0 = time.perf_counter(), time.process_time()
    hyps = translator.translate(sources, beam=beam, batch_size=batch_size)
    return [h.strip() for h in hyps], time.perf_counter() - t0, time.process_time() - c0


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").rstrip("\n").split("\n")


def param_count(translator) -> int:
    model = getattr(translator, "model", None)
    return sum(p.numel() for p in model.parameters()) if model is not None else -1

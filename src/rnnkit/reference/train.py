"""Training with the reference: ``rnnkit train lm --backend numpy``.

The NumPy reference (:class:`~rnnkit.reference.NumpyLanguageModel`, float64) trained on exactly the data
the PyTorch path would see -- the config from :func:`rnnkit.api.build_config`, tokenizer, vocabulary,
held-out split and batches from :class:`rnnkit.tasks.lm.LMTask` -- and written as the same model
directory, so ``rnnkit generate`` / ``rnnkit evaluate`` (either backend) use it unchanged.

What it does, as seed 001 (the WildML RNN tutorial):

* the initial weights are the PyTorch LM's at the same ``train.seed`` (both backends start alike); the
  loss before training is printed next to ln V, the loss of uniform predictions;
* plain SGD, one update per batch (``train.batch_size`` sentences; the seed's 1), on the mean
  cross-entropy of the batch's tokens (as the PyTorch path), optional global-norm clipping
  (``train.clip``);
* truncated BPTT: in ``data.mode: sentences`` the loss at step t sends its gradient back through
  ``train.bptt`` steps only (WildML's ``bptt_truncate``; seed 001 used 4, so train it with
  ``--set train.bptt=4``); in ``stream`` mode the batches are ``train.bptt`` long with the state
  carried over and full BPTT inside them (as PyTorch); ``windows`` batches are short: full BPTT;
* validation each epoch (or every ``train.eval_every`` updates); ``train.schedule`` through
  :class:`rnnkit.train.LRSchedule` (``halve_on_increase``: the LR is halved when the validation loss
  rises); the best weights go to ``model.safetensors``;
* ``log.csv``, ``curves.png``, ``results.json`` (with ``"trained_by": {"backend": "numpy", ...}``) and
  a resumable ``checkpoint/`` (float64 weights + ``numpy_state.json``), all written atomically.

``model.safetensors`` holds float32 tensors, exactly what the PyTorch model holds when it loads them,
so both backends score the very same weights; the NumPy backend keeps float64 while it trains.
Not implemented (a clear error): dropout of any kind, optimizers other than plain SGD, momentum,
weight decay, AR/TAR, NT-ASGD, variable BPTT, ``--init-from``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from rnnkit.api import _resume_config, build_config, load
from rnnkit.checkpoint import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    LAST_WEIGHTS,
    RESULTS_FILE,
    VOCAB_FILE,
    WEIGHTS_FILE,
    atomic_write_text,
)
from rnnkit.config import Config, save_config
from rnnkit.errors import RnnkitError
from rnnkit.plotting import plot_curves
from rnnkit.train import LOG_FIELDS, LRSchedule, _StopFlag, _Window, seed_everything

from .backend import (
    check_numpy_config,
    evaluate_numpy_sequences,
    load_numpy_weights,
    numpy_model_for,
    save_numpy_weights,
)
from .lm import NumpyLanguageModel

__all__ = ["NUMPY_STATE", "NumpyTrainer", "bptt_truncate_for", "train_numpy"]

NUMPY_STATE = "numpy_state.json"  # the NumPy trainer's counters, schedule and log, next to last.safetensors
CARRIED = "carried.safetensors"  # stream mode: the hidden state carried into the next batch


def bptt_truncate_for(cfg: Config) -> int | None:
    """The ``bptt_truncate`` of :meth:`NumpyLanguageModel.loss_and_grads` for this config's data mode."""
    return cfg.train.bptt if cfg.data.mode == "sentences" else None


def train_numpy(recipe: str | None = None, data: str | None = None, out: str | Path = "runs/model",
                overrides: list[str] | None = None, valid: str | None = None, test: str | None = None,
                resume: bool = False, task: str = "lm"):
    """Train the NumPy reference into ``out`` and return the model directory loaded (``rnnkit.load``),
    with ``.results`` (final valid/test metrics) set, as :func:`rnnkit.train` does.

    Same arguments as :func:`rnnkit.train`; ``resume`` continues a numpy-backend checkpoint in ``out``.
    """
    import torch

    from rnnkit.distributed import DistInfo
    from rnnkit.tasks.lm import LMTask

    out_dir = Path(out)
    if resume:
        if not (out_dir / CONFIG_FILE).is_file():
            raise RnnkitError("nothing to resume: no config.yaml in the output folder", out_dir)
        _numpy_checkpoint(out_dir)  # fails clearly for a torch-trained folder
        cfg = _resume_config(out_dir, overrides)
    else:
        cfg = build_config(task, recipe, data, valid, test, overrides)
        if out_dir.exists() and any(out_dir.iterdir()):
            raise RnnkitError("output folder is not empty; pass --resume to continue it, or choose "
                              "another --out", out_dir)
    check_numpy_config(cfg)
    seed_everything(cfg.train.seed)  # the torch LM built by the task gives the initial weights
    lm_task = LMTask(cfg, DistInfo(), torch.device("cpu"), vocab_from=out_dir if resume else None)
    model = NumpyLanguageModel.from_state_dict(cfg.model.cell, lm_task.model.state_dict(),
                                               tie_weights=cfg.model.tie_weights)
    if not resume:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out_dir / CONFIG_FILE)
        lm_task.tokenizer.save(out_dir)
        lm_task.vocab.save(out_dir / VOCAB_FILE)
    trainer = NumpyTrainer(cfg, model, lm_task, out_dir)
    if resume:
        trainer.resume()
    trainer.fit()
    results = trainer.final_results()
    loaded = load(out_dir, device="cpu")
    loaded.results = results
    return loaded


class NumpyTrainer:
    """The loop of :class:`rnnkit.train.Trainer` for a :class:`NumpyLanguageModel`: SGD, schedule,
    validation, best weights, log, curves and checkpoints with resume at the exact batch."""

    def __init__(self, cfg: Config, model: NumpyLanguageModel, task, out_dir: Path):
        self.cfg, self.model, self.task, self.out_dir = cfg, model, task, Path(out_dir)
        self.schedule = LRSchedule(cfg.train)
        self.bptt_truncate = bptt_truncate_for(cfg)
        self.step = self.epoch = self.batch_index = 0
        self.carried_state = None
        self.best_loss = math.inf
        self.bad_evals = 0
        self.val_history: list[float] = []
        self.rows: list[dict] = []
        self.elapsed = 0.0
        self.finished = False
        self.validated_at = -1
        self.initial_loss: float | None = None
        self.ln_vocab = math.log(model.vocab_size)

    # ----------------------------------------------------------------- checkpoints
    def _state(self) -> dict:
        return {"backend": "numpy", "step": self.step, "epoch": self.epoch, "batch_index": self.batch_index,
                "schedule": self.schedule.state_dict(), "best_loss": self.best_loss, "bad_evals": self.bad_evals,
                "val_history": self.val_history, "rows": self.rows, "elapsed": self.elapsed,
                "finished": self.finished, "validated_at": self.validated_at, "initial_loss": self.initial_loss}

    def save_checkpoint(self) -> None:
        """Write ``checkpoint/`` whole (float64 weights, state, carried state), then the log."""
        final = self.out_dir / CHECKPOINT_DIR
        tmp = Path(tempfile.mkdtemp(prefix=".checkpoint.", dir=self.out_dir))
        try:
            save_numpy_weights(self.model, tmp / LAST_WEIGHTS, np.float64,
                               {"step": str(self.step), "backend": "numpy"})
            if self.carried_state is not None:
                _save_state_arrays(self.carried_state, tmp / CARRIED)
            atomic_write_text(tmp / NUMPY_STATE, json.dumps(self._state()))
            old = self.out_dir / f"{CHECKPOINT_DIR}.old"
            if final.exists():
                shutil.rmtree(old, ignore_errors=True)
                os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._write_log()

    def resume(self) -> None:
        ckpt = _numpy_checkpoint(self.out_dir)
        load_numpy_weights(self.model, ckpt / LAST_WEIGHTS)
        try:
            state = json.loads((ckpt / NUMPY_STATE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise RnnkitError(f"trainer state is corrupt ({e})", ckpt / NUMPY_STATE) from None
        self.schedule.load_state_dict(state["schedule"])
        for key in ("step", "epoch", "batch_index", "best_loss", "bad_evals", "val_history", "rows", "elapsed",
                    "finished", "validated_at", "initial_loss"):
            setattr(self, key, state[key])
        if (ckpt / CARRIED).is_file():
            self.carried_state = _load_state_arrays(ckpt / CARRIED, self.model)

    def _write_log(self) -> None:
        buf = io.StringIO()
        extra = sorted({k for r in self.rows for k in r} - set(LOG_FIELDS))
        writer = csv.DictWriter(buf, fieldnames=LOG_FIELDS + extra, restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.out_dir / "log.csv", buf.getvalue())
        if any(r["split"] == "valid" for r in self.rows) or len(self.rows) > 1:
            plot_curves(self.rows, self.out_dir / "curves.png", "loss")

    # ----------------------------------------------------------------- training
    def validate(self) -> dict[str, float]:
        t = self.cfg.train
        return evaluate_numpy_sequences(self.model, self.task.valid_seqs, self.cfg.data.mode, t.eval_batch_size,
                                        t.bptt, self.task.char_level)

    def check_initial_loss(self) -> float:
        """Seed 001's sanity check: before training the loss should be near ln V (uniform predictions)."""
        self.initial_loss = self.validate()["loss"]
        print(f"initial loss {self.initial_loss:.4f} on the validation data; ln V = ln {self.model.vocab_size} "
              f"= {self.ln_vocab:.4f} (uniform predictions)", flush=True)
        self._log("valid", self.initial_loss, self.schedule.lr, None, {"ppl": math.exp(min(self.initial_loss, 50))})
        return self.initial_loss

    def fit(self) -> None:
        cfg = self.cfg.train
        if self.finished:
            return
        if self.step == 0 and self.initial_loss is None:
            self.check_initial_loss()
        with _StopFlag() as stop:
            while self.epoch < cfg.epochs and not self._out_of_steps():
                lr = self.schedule.on_epoch_start(self.epoch)
                plan = self.task.train_data.plan(self.epoch)
                bar = self._progress(len(plan))
                window = _Window()
                if self.batch_index == 0:
                    self.carried_state = None
                while self.batch_index < len(plan):
                    batch = self.task.train_data.batch(plan[self.batch_index])
                    loss_sum, count = self._train_step(batch, lr)
                    self.batch_index += 1
                    self.step += 1
                    window.add(loss_sum, count)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix_str(window.postfix(lr), refresh=False)
                    if cfg.log_every and self.step % cfg.log_every == 0:
                        self._log("train", window.mean(), lr, window.rate())
                        window = _Window()
                    if cfg.eval_every and self.step % cfg.eval_every == 0:
                        self._validate_and_save()
                        lr = self.schedule.lr
                    elif cfg.save_every and self.step % cfg.save_every == 0:
                        self.save_checkpoint()
                    if stop.requested or self._out_of_steps() or self._early_stopped():
                        break
                if bar is not None:
                    bar.close()
                if stop.requested:
                    self.save_checkpoint()
                    raise KeyboardInterrupt
                if self.batch_index >= len(plan):
                    self.epoch += 1
                    self.batch_index = 0
                    if not cfg.eval_every:
                        self._validate_and_save()
                if self._early_stopped():
                    break
            if self.validated_at != self.step:
                self._validate_and_save()
            self.finished = True
            self.save_checkpoint()

    def _train_step(self, batch, lr: float) -> tuple[float, int]:
        from rnnkit.data.lm import IGNORE_INDEX

        t0 = time.perf_counter()
        carry = batch.carry_state
        loss, grads, state = self.model.loss_and_grads(batch.inputs.numpy(), batch.targets.numpy(),
                                                       self.carried_state if carry else None,
                                                       bptt_truncate=self.bptt_truncate, ignore_index=IGNORE_INDEX)
        loss = float(loss)
        if not math.isfinite(loss):
            raise RnnkitError(f"loss is {loss} at step {self.step + 1} (epoch {self.epoch + 1}): lower train.lr, "
                              "set train.clip, or check the data")
        if self.cfg.train.clip > 0:  # as torch.nn.utils.clip_grad_norm_: one norm over all parameters
            norm = math.sqrt(sum(float((grads[n] ** 2).sum()) for n in self.model.unique_names()))
            coef = min(1.0, self.cfg.train.clip / (norm + 1e-6))
            if coef < 1.0:
                grads = {n: g * coef for n, g in grads.items()}
        self.model.sgd_step(grads, lr)
        self.carried_state = state if carry else None
        self.elapsed += time.perf_counter() - t0
        return loss * batch.num_tokens, batch.num_tokens

    def _out_of_steps(self) -> bool:
        return bool(self.cfg.train.max_steps) and self.step >= self.cfg.train.max_steps

    def _early_stopped(self) -> bool:
        return bool(self.cfg.train.early_stop) and self.bad_evals >= self.cfg.train.early_stop

    def _progress(self, total: int):
        if not self.cfg.train.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=total, initial=self.batch_index, desc=f"numpy epoch {self.epoch + 1}/{self.cfg.train.epochs}",
                    mininterval=1.0, dynamic_ncols=True, leave=True)

    def _log(self, split: str, loss: float, lr: float, rate: float | None, metrics: dict | None = None) -> None:
        row = {"step": self.step, "epoch": self.epoch + (self.batch_index > 0), "split": split,
               "loss": round(loss, 6), "lr": lr, "tokens_per_sec": round(rate, 1) if rate else "",
               "elapsed_sec": round(self.elapsed, 2)}
        row.update({k: round(v, 6) for k, v in (metrics or {}).items() if k != "loss"})
        self.rows.append(row)

    def _validate_and_save(self) -> dict[str, float]:
        metrics = self.validate()
        loss = metrics["loss"]
        self.validated_at = self.step
        self._log("valid", loss, self.schedule.lr, None, metrics)
        improved = loss < self.best_loss
        if improved:
            self.best_loss, self.bad_evals = loss, 0
            save_numpy_weights(self.model, self.out_dir / WEIGHTS_FILE, np.float32,
                               {"step": str(self.step), "backend": "numpy"})
        else:
            self.bad_evals += 1
        self.val_history.append(loss)
        self.schedule.on_validation(loss)
        if self.cfg.train.progress:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            print(f"step {self.step} valid: {shown}{' (best)' if improved else ''}", flush=True)
        self.save_checkpoint()
        return metrics

    # ----------------------------------------------------------------- results
    def final_results(self) -> dict:
        """Score the best (saved, float32) weights in NumPy on the validation data and the test file;
        write ``results.json``. Returns the metrics per split (what ``.results`` holds)."""
        from .backend import NumpyBackendLM

        best = numpy_model_for(self.cfg, self.model.vocab_size)
        load_numpy_weights(best, self.out_dir / WEIGHTS_FILE)
        t = self.cfg.train
        results = {"valid": evaluate_numpy_sequences(best, self.task.valid_seqs, self.cfg.data.mode,
                                                     t.eval_batch_size, t.bptt, self.task.char_level)}
        if self.cfg.data.test:
            lm = NumpyBackendLM(self.out_dir, self.cfg, self.task.tokenizer, self.task.vocab, best)
            results["test"] = lm.evaluate(self.cfg.data.test)
        record = {**results, "trained_by": {
            "backend": "numpy", "dtype": str(self.model.dtype), "bptt_truncate": self.bptt_truncate,
            "initial_loss": self.initial_loss, "ln_vocab": self.ln_vocab, "steps": self.step}}
        atomic_write_text(self.out_dir / RESULTS_FILE, json.dumps(record, indent=1))
        return results


def _numpy_checkpoint(out_dir: Path) -> Path:
    """The newest complete numpy-backend checkpoint folder (``checkpoint.old`` if a swap was cut short)."""
    for name in (CHECKPOINT_DIR, f"{CHECKPOINT_DIR}.old"):
        path = out_dir / name
        if (path / NUMPY_STATE).is_file() and (path / LAST_WEIGHTS).is_file():
            return path
    if (out_dir / CHECKPOINT_DIR / "trainer_state.pt").is_file():
        raise RnnkitError("this run was trained with the torch backend: resume it without --backend numpy", out_dir)
    raise RnnkitError("no numpy-backend checkpoint to resume from (train without --resume first)", out_dir)


def _save_state_arrays(state: list, path: Path) -> None:
    from safetensors.numpy import save

    from rnnkit.checkpoint import atomic_write_bytes

    arrays = {}
    for k, s in enumerate(state):
        for j, a in enumerate(s if isinstance(s, tuple) else (s,)):
            arrays[f"{k}.{j}"] = np.ascontiguousarray(a)
    atomic_write_bytes(path, save(arrays))


def _load_state_arrays(path: Path, model: NumpyLanguageModel) -> list:
    from safetensors.numpy import load

    arrays = load(path.read_bytes())
    if model.cell == "lstm":
        return [(arrays[f"{k}.0"], arrays[f"{k}.1"]) for k in range(model.num_layers)]
    return [arrays[f"{k}.0"] for k in range(model.num_layers)]

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
* ``train.layer_lr_decay`` D: the LM's parameter groups (:meth:`rnnkit.tasks.lm.LMTask.parameter_groups`: the
  output layer, each recurrent layer from the top, the embedding) each at lr / D ** depth, as the PyTorch path;
* truncated BPTT: in ``data.mode: sentences`` the loss at step t sends its gradient back through
  ``train.bptt`` steps only (WildML's ``bptt_truncate``; seed 001 used 4, so train it with
  ``--set train.bptt=4``); in ``stream`` mode the batches are ``train.bptt`` long with the state
  carried over and full BPTT inside them (as PyTorch); ``windows`` batches are short: full BPTT;
* validation each epoch (or every ``train.eval_every`` updates); ``train.schedule`` through
  :class:`rnnkit.train.LRSchedule` (``halve_on_increase``: the LR is halved when the validation loss
  rises); the best weights go to ``model.safetensors``;
* ``log.csv``, ``curves.png``, ``results.json`` (with ``"trained_by": {"backend": "numpy", ...}``) and
  a resumable ``checkpoint/`` (float64 weights), all written atomically.

The loop is rnnkit's one :class:`~rnnkit.train.Trainer` (epochs, schedule, validation, early stopping,
log, checkpoints, exact resume, Ctrl-C): :class:`NumpyTrainer` replaces only the step (gradients from
:meth:`NumpyLanguageModel.loss_and_grads` instead of autograd), the validation (scored in NumPy) and the
saving of the best weights. The SGD update itself is ``torch.optim.SGD`` acting on float64 tensors that
share memory with the NumPy arrays: ``p -= lr * g``, the reference's own ``sgd_step``.

``model.safetensors`` holds float32 tensors, exactly what the PyTorch model holds when it loads them,
so both backends score the very same weights; the NumPy backend keeps float64 while it trains.
Not implemented (a clear error): dropout of any kind, optimizers other than plain SGD, momentum,
weight decay, AR/TAR, NT-ASGD, variable BPTT, ``--init-from``.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch

from rnnkit import runtime
from rnnkit.api import (
    announce_resume,
    check_train_arguments,
    load,
    open_for_resume,
    prepare_config,
    record_resume_changes,
    resume_changes,
    set_up_model_dir,
    weights_metadata,
)
from rnnkit.checkpoint import RESULTS_FILE, WEIGHTS_FILE, atomic_write_text
from rnnkit.config import Config
from rnnkit.data.lm import IGNORE_INDEX
from rnnkit.errors import RnnkitError
from rnnkit.train import NON_FINITE_ADVICE, Trainer, seed_everything

from .backend import (
    check_numpy_config,
    evaluate_numpy_sequences,
    load_numpy_weights,
    numpy_model_for,
    save_numpy_weights,
)
from .lm import NumpyLanguageModel

__all__ = ["NumpyTrainer", "bptt_truncate_for", "train_numpy"]


def bptt_truncate_for(cfg: Config) -> int | None:
    """The ``bptt_truncate`` of :meth:`NumpyLanguageModel.loss_and_grads` for this config's data mode."""
    return cfg.train.bptt if cfg.data.mode == "sentences" else None


def train_numpy(recipe: str | None = None, data: str | None = None, out: str | Path = "runs/model",
                overrides: list[str] | None = None, valid: str | None = None, test: str | None = None,
                resume: bool = False, task: str = "lm", *, overwrite: bool = False):
    """Train the NumPy reference into ``out`` and return the model directory loaded (``rnnkit.load``),
    with ``.results`` (final valid/test metrics) set, as :func:`rnnkit.train` does.

    Same arguments as :func:`rnnkit.train`; ``resume`` continues a numpy-backend checkpoint in ``out``.
    The folder's lock is held as :func:`rnnkit.api.run` holds it.
    """
    from rnnkit.distributed import DistInfo
    from rnnkit.tasks.lm import LMTask

    check_train_arguments(task=task, recipe=recipe, data=data, out=out, overrides=overrides, resume=resume,
                          valid=valid, test=test, overwrite=overwrite)
    out_dir = Path(out)
    cfg = prepare_config(task, recipe, data, out_dir, overrides, valid, test, resume, overwrite)
    check_numpy_config(cfg)
    runtime.set_threads(cfg.train.threads)
    with ExitStack() as held:
        changes = resume_changes(out_dir, cfg) if resume else {}
        if resume:
            held.enter_context(open_for_resume(out_dir, cfg, NumpyTrainer.backend))
        seed_everything(cfg.train.seed)  # the torch LM built by the task gives the initial weights
        # float64 weights and gradients: twice the bytes of the PyTorch path
        lm_task = LMTask(cfg, DistInfo(), torch.device("cpu"), vocab_from=out_dir if resume else None,
                         param_bytes=8)
        lm_task.warn_unknown_text(vocab_from_init=False)  # (no --init-from here)
        trainer = NumpyTrainer(cfg, lm_task, out_dir)
        trainer.announce_rates()
        if not resume:
            held.enter_context(set_up_model_dir(cfg, lm_task, out_dir, "rnnkit train", overwrite))
        else:
            record_resume_changes(out_dir, cfg, changes)
        trainer.weights_metadata = weights_metadata(out_dir, cfg, trainer.backend)
        if resume:
            trainer.resume()
            announce_resume(trainer, changes)
        if trainer.step == 0 and not trainer.rows:
            trainer.check_initial_loss()
        trainer.fit()
        results = trainer.final_results()
    loaded = load(out_dir, device="cpu")
    loaded.results = results
    return loaded


class NumpyTrainer(Trainer):
    """rnnkit's :class:`~rnnkit.train.Trainer` with the NumPy reference computing loss and gradients.

    ``task.model`` (the PyTorch LM) is turned to float64 and the :class:`NumpyLanguageModel` made to hold
    NumPy views of its parameters, so the two are one set of weights: the trainer's checkpoints, resume
    and SGD work on the tensors, the reference computes on the arrays.
    """

    backend = "numpy"

    def __init__(self, cfg: Config, task, out_dir: Path):
        task.model = task.model.double()
        params = dict(task.model.named_parameters(remove_duplicate=False))
        self.numpy_model = NumpyLanguageModel.from_state_dict(cfg.model.cell, task.model.state_dict(),
                                                              tie_weights=cfg.model.tie_weights)
        self.numpy_model.params = {n: params[n].detach().numpy() for n in self.numpy_model.params}
        super().__init__(task, cfg.train, out_dir, torch.device("cpu"))
        self.config = cfg
        self.unique = [(n, params[n]) for n in self.numpy_model.unique_names()]
        self.bptt_truncate = bptt_truncate_for(cfg)
        self.ln_vocab = math.log(self.numpy_model.vocab_size)

    @property
    def initial_loss(self) -> float | None:
        """The validation loss before any update (the first log row, kept across resumes)."""
        first = next((r for r in self.rows if r["step"] == 0 and r["split"] == "valid"), None)
        return first["loss"] if first else None

    def check_initial_loss(self) -> float:
        """Seed 001's sanity check: before training the loss should be near ln V (uniform predictions)."""
        loss = self._validate()["loss"]
        print(f"initial loss {loss:.4f} on the validation data; ln V = ln {self.numpy_model.vocab_size} "
              f"= {self.ln_vocab:.4f} (uniform predictions)", flush=True)
        self._log("valid", loss, self.schedule.lr, None, {"ppl": math.exp(min(loss, 50))})
        return loss

    # ----------------------------------------------------------------- the Trainer's hooks
    def _carried_shapes(self, batch: int) -> list | None:
        """The NumPy cells carry (batch, hidden) per layer: torch's shapes without the leading 1."""
        return [[shape[1:] for shape in layer] if isinstance(layer, list) else layer[1:]
                for layer in super()._carried_shapes(batch)]

    def _train_step(self, batch, lr: float) -> tuple[float, int]:
        t0 = time.perf_counter()
        carry = batch.carry_state and self.carried_state is not None
        state = [tuple(t.numpy() for t in s) if isinstance(s, tuple) else s.numpy()
                 for s in self.carried_state] if carry else None
        loss, grads, new_state = self.numpy_model.loss_and_grads(
            batch.inputs.numpy(), batch.targets.numpy(), state, bptt_truncate=self.bptt_truncate,
            ignore_index=IGNORE_INDEX)
        loss = float(loss)
        if not math.isfinite(loss):
            raise RnnkitError(f"loss is {loss} at step {self.step + 1} (epoch {self.epoch + 1}): {NON_FINITE_ADVICE}")
        for name, param in self.unique:  # a tied array once, with the gradient of both its uses
            param.grad = torch.from_numpy(grads[name])
        if self.cfg.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip)
        self._set_rates(lr)  # (train.layer_lr_decay: each group its share)
        self.optimizer.step()
        self.carried_state = ([tuple(torch.from_numpy(a) for a in s) if isinstance(s, tuple) else torch.from_numpy(s)
                               for s in new_state] if batch.carry_state else None)
        self.elapsed += time.perf_counter() - t0
        return loss * batch.num_tokens, batch.num_tokens

    def _validate(self) -> dict[str, float]:
        t = self.cfg
        return evaluate_numpy_sequences(self.numpy_model, self.task.valid_seqs, self.config.data.mode,
                                        t.eval_batch_size, t.bptt, self.task.char_level)

    def _save_best(self) -> None:
        """float32, exactly what the PyTorch LM holds once it loads them: both backends score the same weights."""
        save_numpy_weights(self.numpy_model, self.out_dir / WEIGHTS_FILE, np.float32,
                           {**self.weights_metadata, "step": str(self.step), "backend": "numpy"})

    # ----------------------------------------------------------------- results
    def final_results(self) -> dict:
        """Score the best (saved, float32) weights in NumPy on the validation data and the test file;
        write ``results.json``. Returns the metrics per split (what ``.results`` holds)."""
        from .backend import NumpyBackendLM

        best = numpy_model_for(self.config, self.numpy_model.vocab_size)
        load_numpy_weights(best, self.out_dir / WEIGHTS_FILE)
        t = self.cfg
        results = {"valid": evaluate_numpy_sequences(best, self.task.valid_seqs, self.config.data.mode,
                                                     t.eval_batch_size, t.bptt, self.task.char_level)}
        if self.config.data.test:
            lm = NumpyBackendLM(self.out_dir, self.config, self.task.tokenizer, self.task.vocab, best)
            results["test"] = lm.evaluate(self.config.data.test)
        record = {**results, "trained_by": {
            "backend": "numpy", "dtype": str(self.numpy_model.dtype), "bptt_truncate": self.bptt_truncate,
            "initial_loss": self.initial_loss, "ln_vocab": self.ln_vocab, "steps": self.step}}
        atomic_write_text(self.out_dir / RESULTS_FILE, json.dumps(record, indent=1))
        return results

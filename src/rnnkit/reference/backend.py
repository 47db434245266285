"""The NumPy reference as a second backend of the language model: weights, perplexity, generation.

A model directory is the same whichever backend trained it (``config.yaml``, ``tokenizer.json``,
``vocab.json``, ``model.safetensors`` with the PyTorch LM's keys and float32 tensors). This module reads
and writes such a directory from the NumPy side:

* :func:`save_numpy_weights` / :func:`load_numpy_weights`: ``model.safetensors`` <-> a
  :class:`~rnnkit.reference.NumpyLanguageModel` (float64 in memory; tied weights stored once, as torch does).
* :func:`evaluate_numpy_sequences`: perplexity computed entirely in NumPy (float64), with exactly the
  batching of :func:`rnnkit.tasks.lm.evaluate_sequences`, so the two backends agree to ~1e-7.
* :class:`NumpyBackendLM` (:func:`load_numpy`): what ``rnnkit.load`` gives, with NumPy underneath:
  ``evaluate(path)`` and ``generate(...)`` (``rnnkit evaluate|generate DIR --backend numpy``).

Unlike :mod:`rnnkit.reference.lm` this module imports torch (the tokenizer, batching and sampling code
it shares with the PyTorch path do).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load as load_safetensors_bytes
from safetensors.numpy import save as save_safetensors_bytes

from rnnkit.checkpoint import WEIGHTS_FILE, atomic_write_bytes, check_finite, read_safetensors_header
from rnnkit.config import Config
from rnnkit.data.lm import IGNORE_INDEX, make_batches
from rnnkit.data.tokenizers import CharTokenizer
from rnnkit.data.vocab import Vocab
from rnnkit.errors import RnnkitError
from rnnkit.memory import check_fits, inference_bytes
from rnnkit.models.lm import RNNLanguageModel
from rnnkit.tasks.lm import LanguageModel, _max_columns, lm_metrics

from .lm import NumpyLanguageModel

__all__ = [
    "EVAL_CHUNK",
    "NumpyBackendLM",
    "check_numpy_config",
    "evaluate_numpy_sequences",
    "load_numpy",
    "load_numpy_weights",
    "numpy_model_for",
    "save_numpy_weights",
]

#: time steps scored at once when evaluating (bounds the (T, B, V) float64 logits in memory)
EVAL_CHUNK = 16


def check_numpy_config(cfg: Config, training: bool = True) -> None:
    """Reject what the NumPy reference does not implement, naming the key (RnnkitError)."""
    m, t = cfg.model, cfg.train
    if cfg.task != "lm":
        raise RnnkitError(f"the numpy backend trains language models only (task '{cfg.task}')")
    if m.softmax != "full":
        raise RnnkitError(f"the numpy backend implements the full softmax only (model.softmax is '{m.softmax}'; use "
                          "--backend torch)")
    if m.tie_weights and m.layers > 1 and m.hidden_size != m.embedding_size:
        raise RnnkitError("the numpy backend needs every layer the same size: with model.tie_weights and "
                          "several layers, set model.hidden_size = model.embedding_size")
    if not training:
        return
    unsupported = {
        "model.dropout": m.dropout, "model.embedding_dropout": m.embedding_dropout,
        "model.layer_dropout": m.layer_dropout, "model.word_dropout": m.word_dropout,
        "model.weight_drop": m.weight_drop, "train.momentum": t.momentum, "train.weight_decay": t.weight_decay,
        "train.activation_reg": t.activation_reg, "train.temporal_reg": t.temporal_reg,
        "train.nt_asgd": t.nt_asgd, "train.variable_bptt": t.variable_bptt,
        "train.cpu_amp": t.cpu_amp,  # it computes in float64: bf16 autocast has nothing to cast
    }
    if t.optimizer != "sgd":
        raise RnnkitError(f"the numpy backend trains with plain SGD only (train.optimizer is '{t.optimizer}')")
    for key, value in unsupported.items():
        if value:
            raise RnnkitError(f"the numpy backend does not implement {key} (set it to 0/false, or use "
                              "--backend torch)")


def numpy_model_for(cfg: Config, vocab_size: int, dtype=np.float64) -> NumpyLanguageModel:
    """An (uninitialised-by-torch) NumPy LM of the shape ``cfg.model`` describes."""
    m = cfg.model
    hidden = m.embedding_size if m.tie_weights else m.hidden_size
    return NumpyLanguageModel(m.cell, vocab_size, m.embedding_size, hidden, m.layers, tie_weights=m.tie_weights,
                              dtype=dtype)


def save_numpy_weights(model: NumpyLanguageModel, path: str | Path, dtype=np.float32,
                       metadata: dict[str, str] | None = None) -> None:
    """Write the weights as safetensors under the torch LM's keys (tied weights once), atomically.

    float32 (the default) is exactly what the PyTorch model holds, so both backends then score the very
    same weights; float64 keeps the NumPy model's full precision (the resume checkpoint).
    """
    arrays = {n: np.ascontiguousarray(model.params[n], dtype=dtype) for n in model.unique_names()}
    atomic_write_bytes(path, save_safetensors_bytes(arrays, metadata=metadata))


def load_numpy_weights(model: NumpyLanguageModel, path: str | Path) -> dict[str, str]:
    """Load a safetensors file (written by either backend, under today's names or the LM's legacy ones)
    into ``model``; returns its metadata."""
    path = Path(path)
    metadata = read_safetensors_header(path)[1]
    try:
        state = dict(load_safetensors_bytes(path.read_bytes()))
    except (SafetensorError, ValueError, OSError) as e:
        raise RnnkitError(f"weights file is corrupt ({e})", path) from None
    check_finite(state, path)
    state = {RNNLanguageModel.legacy_weight_names.get(name, name): array for name, array in state.items()}
    if model.tie_weights and "output.weight" not in state and "embedding.weight" in state:
        state["output.weight"] = state["embedding.weight"]
    try:
        model.load_state_dict(state)
    except (KeyError, ValueError) as e:
        raise RnnkitError(f"weights do not fit the model in config.yaml ({e})", path) from None
    return metadata


def evaluate_numpy_sequences(model: NumpyLanguageModel, sequences: list[list[int]], mode: str, batch_size: int,
                             bptt: int, char_level: bool) -> dict[str, float]:
    """Perplexity of ``sequences`` in NumPy: the batches of :func:`rnnkit.tasks.lm.evaluate_sequences`.

    Each batch is scored :data:`EVAL_CHUNK` steps at a time with the state carried between chunks
    (exact: no gradient is involved), so memory stays small for a large vocabulary.
    """
    data = make_batches(sequences, mode, min(batch_size, _max_columns(sequences, mode, batch_size)), bptt,
                        shuffle=False, pad_tail=True)
    total, count, state = 0.0, 0, None
    for spec in data.plan(0):
        batch = data.batch(spec)
        x, y = batch.inputs.numpy(), batch.targets.numpy()
        state = state if batch.carry_state else None
        for s in range(0, x.shape[0], EVAL_CHUNK):
            yc = y[s: s + EVAL_CHUNK]
            loss, state = model.loss(x[s: s + EVAL_CHUNK], yc, state, ignore_index=IGNORE_INDEX)
            total += float(loss) * int((yc != IGNORE_INDEX).sum())
        count += batch.num_tokens
    return lm_metrics(total, count, char_level)


class _TorchFacade:
    """Makes a NumpyLanguageModel look like the torch LM to :meth:`LanguageModel.generate`:
    ``model(ids (T, B) tensor, state) -> .logits (T, B, V) tensor, .state``."""

    def __init__(self, model: NumpyLanguageModel):
        self.numpy_model = model

    def eval(self):
        return self

    def __call__(self, inputs: torch.Tensor, state=None):
        logits, new_state = self.numpy_model.forward(inputs.detach().cpu().numpy(), state)
        return SimpleNamespace(logits=torch.from_numpy(logits), state=new_state)


class NumpyBackendLM(LanguageModel):
    """A model directory loaded onto the NumPy reference: ``evaluate`` and ``generate`` as
    :class:`rnnkit.tasks.lm.LanguageModel` (generation shares its prompt and sampling code)."""

    def __init__(self, model_dir: Path, cfg: Config, tokenizer, vocab: Vocab, model: NumpyLanguageModel):
        super().__init__(model_dir, cfg, tokenizer, vocab, _TorchFacade(model), torch.device("cpu"))
        self.numpy_model = model

    @classmethod
    def load(cls, model_dir: Path, cfg: Config, device: torch.device | None = None) -> NumpyBackendLM:
        check_numpy_config(cfg, training=False)
        tokenizer, vocab = cls.checked_parts(model_dir, cfg)  # the checks of rnnkit.load: header, fingerprint
        check_fits(*inference_bytes(cfg, len(vocab), param_bytes=8), torch.device("cpu"))
        model = numpy_model_for(cfg, len(vocab))
        load_numpy_weights(model, model_dir / WEIGHTS_FILE)
        return cls(model_dir, cfg, tokenizer, vocab, model)

    def kernel_path(self, verb: str, n: int = 0, num_samples: int = 1, batch_size: int = 0) -> str:
        return f"{verb}: the NumPy reference (float64, CPU)"

    def _score(self, seqs: list[list[int]], batch_size: int) -> dict[str, float]:
        """Perplexity computed in NumPy (float64); reading and errors are :meth:`LanguageModel.evaluate`'s."""
        return evaluate_numpy_sequences(self.numpy_model, seqs, self.config.data.mode, batch_size,
                                        self.config.train.bptt, isinstance(self.tokenizer, CharTokenizer))


def load_numpy(model_dir: str | Path) -> NumpyBackendLM:
    """Load a model directory (trained by either backend) onto the NumPy reference."""
    from rnnkit.api import read_model_config
    from rnnkit.arguments import check_path_argument

    check_path_argument(model_dir, "model_dir")
    model_dir, cfg = read_model_config(model_dir)
    if cfg.task != "lm":
        raise RnnkitError(f"the numpy backend loads language models only (task '{cfg.task}')", model_dir)
    return NumpyBackendLM.load(model_dir, cfg)


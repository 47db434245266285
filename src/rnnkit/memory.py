"""Memory budget: what a model will need, checked against what the machine has, before it is built.

A ``hidden_size`` of 30,000 is 11 billion parameters: building it would swap the machine for minutes
before anything failed. :func:`check_model_fits` estimates the bytes from the config and vocabulary
size alone (weights; for training also gradients, optimizer state and the logits of one batch) and
refuses what cannot fit, saying how much it needs and how much there is.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from rnnkit.config import Config, ModelConfig
from rnnkit.errors import RnnkitError
from rnnkit.nn.softmax import adaptive_outputs, cluster_units

#: tensors of the optimizer's state per parameter (Adam: two moments; ASGD: the running average)
OPTIMIZER_STATES = {"sgd": 0, "adam": 2, "adamw": 2, "rmsprop": 1, "asgd": 1}
_GATES = {"lstm": 4, "gru": 3}


def count_parameters(cfg: ModelConfig, vocab_size: int) -> int:
    """The parameters of :class:`rnnkit.models.lm.RNNLanguageModel` for ``cfg`` (counted, not built)."""
    sizes = [cfg.hidden_size] * cfg.layers
    if cfg.tie_weights:
        sizes[-1] = cfg.embedding_size
    inputs = [cfg.embedding_size, *sizes[:-1]]
    gates = _GATES.get(cfg.cell, 1)
    layers = sum(gates * h * (i + h + 2) for i, h in zip(inputs, sizes, strict=True))
    if cfg.softmax == "adaptive":
        return vocab_size * cfg.embedding_size + layers + _adaptive_parameters(cfg, sizes[-1], vocab_size)
    decoder = (0 if cfg.tie_weights else sizes[-1] * vocab_size) + vocab_size
    return vocab_size * cfg.embedding_size + layers + decoder


def _adaptive_parameters(cfg: ModelConfig, hidden: int, vocab_size: int) -> int:
    """The adaptive softmax's parameters: a head (with bias) over the shortlist and one entry per cluster, and
    per cluster a projection (no bias) to fewer units and a layer (no bias) over its words."""
    head, words = adaptive_outputs(cfg, vocab_size)
    tails = sum(units * (hidden + n) for units, n in zip(cluster_units(cfg, hidden), words, strict=True))
    return (hidden + 1) * head + tails


def softmax_width(cfg: ModelConfig, vocab_size: int) -> int:
    """Scores one token's loss computes at most: the vocabulary, or the adaptive head plus its largest cluster."""
    if cfg.softmax != "adaptive":
        return vocab_size
    head, words = adaptive_outputs(cfg, vocab_size)
    return head + max(words)


def training_bytes(cfg: Config, vocab_size: int, steps: int, param_bytes: int = 4) -> tuple[int, str]:
    """Bytes an LM training run needs (:func:`model_training_bytes` of its parameters and of the logits of
    one batch of ``steps`` time steps). Measured: a 2 x 1500 LSTM on 4,990 words (51M parameters, SGD) is
    estimated at 0.99 GiB; its training process (ptb-large, 2,000 PTB lines, 2 steps) grew by 1.15 GiB
    (peak RSS)."""
    logits = cfg.train.batch_size * steps * softmax_width(cfg.model, vocab_size)
    return model_training_bytes(count_parameters(cfg.model, vocab_size), cfg.train, logits, param_bytes)


def model_training_bytes(params: int, train, logits: int, param_bytes: int = 4) -> tuple[int, str]:
    """Bytes training a model of ``params`` parameters needs, and what they are: weights, gradients,
    optimizer state (``train``: a :class:`rnnkit.config.TrainConfig`) and a copy while a checkpoint is
    written (``param_bytes`` each), the float32 model loaded and returned at the end
    (:func:`model_inference_bytes`), and ``logits`` output scores of the largest batch, their gradient
    and softmax (float32)."""
    states = OPTIMIZER_STATES.get(train.optimizer, 2) + (train.momentum > 0) + (train.nt_asgd > 0)
    optimizer = f", {states} of {train.optimizer} state" if states else ""
    what = (f"{params:,} parameters x (weights, gradients{optimizer}, checkpoint copy, the model loaded at the end)"
            " + the logits of a batch")
    return params * (param_bytes * (3 + states) + 2 * 4) + 3 * 4 * logits, what


def inference_bytes(cfg: Config, vocab_size: int, param_bytes: int = 4) -> tuple[int, str]:
    """Bytes a loaded LM needs: its weights and the weights file read to fill them."""
    return model_inference_bytes(count_parameters(cfg.model, vocab_size), param_bytes)


def model_inference_bytes(params: int, param_bytes: int = 4) -> tuple[int, str]:
    """Bytes a loaded model of ``params`` parameters needs: its weights and the weights file read to fill them."""
    return 2 * params * param_bytes, f"{params:,} parameters x (weights + the file read into them)"


def available_bytes(device: torch.device) -> int | None:
    """Memory this process can still allocate on ``device`` (None: unknown, do not check).

    CPU: the least of the system's available memory, the cgroup's (container) limit and this process's
    address-space limit (``ulimit -v``); CUDA: the free memory of the GPU.
    """
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    limits = [_meminfo_available(), _cgroup_available(), _address_space_left()]
    known = [x for x in limits if x is not None]
    return min(known) if known else None


#: what an LM run can lower when its model does not fit
LM_ADVICE = "model.hidden_size, model.embedding_size, model.layers or the vocabulary (tokenizer.vocab_size)"


def check_fits(needed: int, what: str, device: torch.device, advice: str = LM_ADVICE) -> None:
    """Refuse (before building anything) a model that needs more memory than ``device`` has; ``advice``
    names the config keys that make it smaller."""
    available = available_bytes(device)
    if available is not None and needed > available:
        raise RnnkitError(f"the model needs about {_human(needed)} of memory ({what}) but only {_human(available)} "
                          f"is available on {device.type}: lower {advice}")


def _human(size: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available(cgroup: Path = Path("/sys/fs/cgroup")) -> int | None:
    """A container's (cgroup v2) ``memory.max`` minus what it uses, page cache not counted (reclaimable)."""
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit == "max":
            return None
        stat = dict(line.split() for line in (cgroup / "memory.stat").read_text().splitlines())
        used = int((cgroup / "memory.current").read_text()) - int(stat.get("file", 0))
        return int(limit) - used
    except (OSError, ValueError):
        return None


def _address_space_left() -> int | None:
    """``RLIMIT_AS`` minus the address space this process already maps (Unix only)."""
    try:
        import resource
    except ImportError:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return soft - pages * os.sysconf("SC_PAGE_SIZE")

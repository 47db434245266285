"""Output layers over a vocabulary: ``full`` (one linear layer) or ``adaptive`` (Grave et al. 2017).

The adaptive softmax (:class:`torch.nn.AdaptiveLogSoftmaxWithLoss`) puts the frequent words and one entry per
cluster of rarer words in a small head; a word of a cluster costs the head plus its cluster's smaller layer.
Both are proper distributions: perplexity is exact either way. The clusters are id ranges, and the vocabulary
(:meth:`rnnkit.data.vocab.Vocab.build`) orders tokens by frequency, so the head holds the frequent words.

One implementation for every model with such an output: the LM (``output``), the encoder-decoder's
:class:`~rnnkit.nn.decoders.Decoder` (``decoder.output``: the sequence autoencoder). A model section that offers
the choice has the keys ``softmax``, ``adaptive_cutoffs`` and ``adaptive_div`` (:class:`SoftmaxOptions`' names).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.data.lm import IGNORE_INDEX
from rnnkit.errors import RnnkitError

#: the values of model.softmax
SOFTMAXES = ("full", "adaptive")


@dataclass(frozen=True)
class SoftmaxOptions:
    """What a model section's ``softmax``, ``adaptive_cutoffs`` and ``adaptive_div`` say (a config section with
    these keys serves as well)."""

    softmax: str = "full"
    adaptive_cutoffs: tuple[int, ...] = ()
    adaptive_div: float = 4.0


#: the full softmax (what a model without the keys has)
FULL = SoftmaxOptions()


class FullSoftmax(nn.Linear):
    """The softmax over the whole vocabulary: logits = h W^T + b (parameters ``weight``, ``bias``)."""

    def scores(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., H) -> logits (..., V)."""
        return self(hidden)

    def loss_sum(self, hidden: torch.Tensor, targets: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
        """Summed cross-entropy (float32) of ``targets`` (those equal to ``ignore_index``, padding, skipped)."""
        logits = self(hidden)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1),
                               ignore_index=ignore_index, reduction="sum")


class AdaptiveSoftmax(nn.AdaptiveLogSoftmaxWithLoss):
    """The adaptive softmax (parameters ``head.weight``, ``head.bias``, ``tail.{i}.{0,1}.weight``).

    The training loss computes only the head and, for each cluster, the rows whose target lies in it;
    ``scores`` gives the full log-probabilities, which sampling and search take as logits (their softmax
    is the model's distribution)."""

    def scores(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., H) -> log-probabilities (..., V)."""
        return self.log_prob(hidden.reshape(-1, hidden.size(-1))).reshape(*hidden.shape[:-1], self.n_classes)

    def loss_sum(self, hidden: torch.Tensor, targets: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
        """Summed negative log-likelihood (float32) of ``targets`` (those equal to ``ignore_index`` skipped)."""
        hidden, targets = hidden.reshape(-1, hidden.size(-1)), targets.reshape(-1)
        scored = targets != ignore_index
        if not bool(scored.all()):
            hidden, targets = hidden[scored], targets[scored]
        with torch.autocast(hidden.device.type, enabled=False):  # torch gathers each row's log-probability in
            loss = -self(hidden.float(), targets).output.sum()  # its input's dtype: bf16 would round every one
        if torch.is_grad_enabled():  # a cluster no target fell in gets a zero gradient, not none: data-parallel
            loss = loss + 0.0 * sum(p.sum() for p in self.tail.parameters())  # ranks reduce every parameter
        return loss


def adaptive_outputs(cfg: SoftmaxOptions, vocab_size: int) -> tuple[int, list[int]]:
    """The adaptive softmax's output widths, as :class:`torch.nn.AdaptiveLogSoftmaxWithLoss` builds it: the head's
    (the words below the first cutoff, plus one entry per cluster) and each cluster's words (the ids from its
    cutoff up to the next, the last up to ``vocab_size``)."""
    bounds = [*cfg.adaptive_cutoffs, vocab_size]
    words = [end - start for start, end in zip(bounds, bounds[1:], strict=False)]
    return bounds[0] + len(words), words


def cluster_units(cfg: SoftmaxOptions, hidden_size: int) -> list[int]:
    """The units each cluster projects the ``hidden_size`` input to before its layer over its words:
    ``hidden_size // adaptive_div^(i+1)`` for cluster i, as torch builds them."""
    return [int(hidden_size // cfg.adaptive_div ** (i + 1)) for i in range(len(cfg.adaptive_cutoffs))]


def check_softmax(cfg: SoftmaxOptions, hidden_size: int, vocab_size: int | None) -> None:
    """What ``model.softmax`` and its keys must say for an output layer on ``hidden_size`` units (``vocab_size``
    None: not known yet, checked later). Errors name the keys."""
    if cfg.softmax not in SOFTMAXES:
        raise RnnkitError(f"unknown model.softmax '{cfg.softmax}' ({' | '.join(SOFTMAXES)})")
    cutoffs = list(cfg.adaptive_cutoffs)
    if cfg.softmax == "full":
        if cutoffs:
            raise RnnkitError(f"model.adaptive_cutoffs {cutoffs} needs model.softmax adaptive (it is full)")
        return
    if not cutoffs:
        raise RnnkitError("model.softmax adaptive needs model.adaptive_cutoffs: the increasing ids where the "
                          "head's words end and each cluster of rarer words ends, e.g. [2000, 10000]")
    if cutoffs[0] <= 0 or any(b <= a for a, b in zip(cutoffs, cutoffs[1:], strict=False)):
        raise RnnkitError(f"model.adaptive_cutoffs {cutoffs} must be positive and increasing")
    if vocab_size is not None and cutoffs[-1] >= vocab_size:
        raise RnnkitError(f"model.adaptive_cutoffs {cutoffs} must each be below the vocabulary size {vocab_size:,} "
                          "(the last cluster holds the ids from the last cutoff up to it)")
    smallest = cluster_units(cfg, hidden_size)[-1]
    if smallest < 1:
        raise RnnkitError(f"model.adaptive_div {cfg.adaptive_div} leaves the last of {len(cutoffs)} clusters "
                          f"{smallest} units ({hidden_size} // {cfg.adaptive_div}^{len(cutoffs)}): lower it")


def make_softmax(cfg: SoftmaxOptions, hidden_size: int, vocab_size: int) -> FullSoftmax | AdaptiveSoftmax:
    """The output layer ``cfg.softmax`` names, checked against the vocabulary."""
    check_softmax(cfg, hidden_size, vocab_size)
    if cfg.softmax == "adaptive":
        return AdaptiveSoftmax(hidden_size, vocab_size, list(cfg.adaptive_cutoffs), div_value=cfg.adaptive_div,
                               head_bias=True)
    return FullSoftmax(hidden_size, vocab_size)


def output_parameters(output: nn.Module, prefix: str, role: str) -> dict[str, str]:
    """name -> vocabulary role of an adaptive output layer's tensors, whose meaning follows the vocabulary's
    whole order (its clusters are id ranges: weight transfer copies them only from the very same vocabulary);
    ``{}`` for a full softmax, whose rows weight transfer maps token by token."""
    if not isinstance(output, AdaptiveSoftmax):
        return {}
    return {name: role for name, _ in output.named_parameters(prefix=prefix)}

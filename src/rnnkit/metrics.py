"""Every metric rnnkit reports, in one place: perplexity from a mean loss, BLEU and chrF through sacrebleu,
token accuracy and exact match of sequences, and accuracy / precision / recall / F1 / confusion matrix of
a classifier.

Corpus-level text metrics come from sacrebleu (Post 2018) so that rnnkit's figures are comparable with
published ones; each carries sacrebleu's signature (tokenizer, casing, version), which is printed with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

#: a mean loss above this is reported as exp(50) perplexity instead of overflowing to inf
MAX_LOG_PPL = 50.0
#: the metrics that are counts: integers in every task's results (the JSON line, results.json), printed so
#: (the trainer's valid lines with thousands separators: ``tokens 262,782``)
COUNTS = ("tokens", "oov", "oov_texts", "sentences", "examples")


# ------------------------------------------------------------------------------------------- losses
def perplexity(mean_loss: float) -> float:
    """exp of a mean cross-entropy in nats per token (capped at exp(:data:`MAX_LOG_PPL`))."""
    return math.exp(min(mean_loss, MAX_LOG_PPL))


def bits_per_token(mean_loss: float) -> float:
    """A mean cross-entropy in nats as bits (bits per character for a char model)."""
    return mean_loss / math.log(2)


def loss_metrics(loss_sum: float, count: int, bits: bool = False) -> dict[str, float]:
    """``loss`` (mean nats per token), ``ppl``, ``tokens`` (an int: a count) and, with ``bits``, ``bpc`` of a summed
    loss."""
    loss = loss_sum / max(count, 1)
    metrics = {"loss": loss, "ppl": perplexity(loss), "tokens": int(count)}
    if bits:
        metrics["bpc"] = bits_per_token(loss)
    return metrics


# ------------------------------------------------------------------------------------------- BLEU / chrF
@dataclass(frozen=True)
class CorpusScore:
    """A corpus-level score: ``name`` (BLEU, chrF2), ``score`` (0-100), ``detail`` (sacrebleu's line, e.g.
    ``BLEU = 53.73 83.3/60.0/50.0/33.3 (BP = 1.000 ...)``) and ``signature`` (how it was computed)."""

    name: str
    score: float
    detail: str
    signature: str

    def __str__(self) -> str:
        return f"{self.detail} ({self.signature})"


def _check_corpus(hypotheses: Sequence[str], references: Sequence[str], metric: str) -> None:
    """One reference per hypothesis, at least one of each, all strings: else one clear error."""
    from rnnkit.errors import RnnkitError

    if isinstance(hypotheses, str) or isinstance(references, str):
        raise TypeError(f"{metric}: hypotheses and references must be lists of strings, not one string")
    if len(hypotheses) != len(references):
        raise RnnkitError(f"{metric}: {len(hypotheses)} hypotheses but {len(references)} references "
                          "(one reference per hypothesis)")
    if not hypotheses:
        raise RnnkitError(f"{metric}: nothing to score (no sentences)")
    for what, texts in (("hypothesis", hypotheses), ("reference", references)):
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise TypeError(f"{metric}: {what} {bad + 1} is {type(texts[bad]).__name__}, not a string")


def _corpus_score(scorer, hypotheses: Sequence[str], references: Sequence[str]) -> CorpusScore:
    result = scorer.corpus_score(list(hypotheses), [list(references)])
    return CorpusScore(result.name, float(result.score), str(result), str(scorer.get_signature()))


def bleu(hypotheses: Sequence[str], references: Sequence[str], tokenize: str = "13a",
         lowercase: bool = False) -> CorpusScore:
    """Corpus BLEU of detokenized ``hypotheses`` against one reference each, as ``sacrebleu`` computes it
    (``tokenize``: one of sacrebleu's tokenizers, ``13a`` its default, ``zh`` for Chinese, ``char``, ...).
    An empty hypothesis scores as no match; an empty corpus is an error."""
    from sacrebleu.metrics import BLEU

    _check_corpus(hypotheses, references, "BLEU")
    if tokenize not in BLEU.TOKENIZERS:
        raise ValueError(f"BLEU: unknown tokenize {tokenize!r} (one of {', '.join(BLEU.TOKENIZERS)})")
    # force: sacrebleu warns on stderr at every call when outputs end in " ." (tokenized text such as
    # Multi30k's, which a word-level model reproduces): a training run would print it at every validation
    return _corpus_score(BLEU(tokenize=tokenize, lowercase=lowercase, force=True), hypotheses, references)


def chrf(hypotheses: Sequence[str], references: Sequence[str], lowercase: bool = False) -> CorpusScore:
    """Corpus chrF (character 6-grams, beta 2: Popovic 2015) as ``sacrebleu`` computes it."""
    from sacrebleu.metrics import CHRF

    _check_corpus(hypotheses, references, "chrF")
    return _corpus_score(CHRF(lowercase=lowercase), hypotheses, references)


# ------------------------------------------------------------------------------------------- sequences
@dataclass
class SequenceMatches:
    """Counts of predicted tokens / whole sequences equal to their targets; ``+`` adds batches up."""

    tokens_correct: int = 0
    tokens: int = 0
    sequences_correct: int = 0
    sequences: int = 0

    def __add__(self, other: SequenceMatches) -> SequenceMatches:
        return SequenceMatches(self.tokens_correct + other.tokens_correct, self.tokens + other.tokens,
                               self.sequences_correct + other.sequences_correct, self.sequences + other.sequences)

    @property
    def token_accuracy(self) -> float:
        return self.tokens_correct / max(self.tokens, 1)

    @property
    def exact_match(self) -> float:
        return self.sequences_correct / max(self.sequences, 1)

    def to_dict(self) -> dict[str, float]:
        return {"token_accuracy": self.token_accuracy, "exact_match": self.exact_match}


def sequence_matches(predictions: torch.Tensor, targets: torch.Tensor, ignore_index: int) -> SequenceMatches:
    """Agreement of ``predictions`` (T, B) ids with ``targets`` (T, B), time-major like every batch in rnnkit;
    positions where ``targets == ignore_index`` (padding) count for neither. A sequence matches when all its
    other positions do: include <eos> in the targets, so a prediction that runs on past it does not."""
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions {tuple(predictions.shape)} and targets {tuple(targets.shape)} differ in shape")
    real = targets != ignore_index
    wrong = (predictions != targets) & real
    has_tokens = real.any(dim=0)
    return SequenceMatches(int(real.sum() - wrong.sum()), int(real.sum()),
                           int((~wrong.any(dim=0) & has_tokens).sum()), int(has_tokens.sum()))


def decoded_matches(hypotheses: Sequence[Sequence], references: Sequence[Sequence]) -> SequenceMatches:
    """The same counts for decoded sequences of different lengths (tokens or ids, <eos> stripped): token
    ``i`` of a reference is correct when the hypothesis has the same token at ``i``; a sequence matches
    when it is equal to its reference."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    matches = SequenceMatches(sequences=len(references))
    for hyp, ref in zip(hypotheses, references, strict=True):
        matches.tokens_correct += sum(h == r for h, r in zip(hyp, ref, strict=False))
        matches.tokens += len(ref)
        matches.sequences_correct += list(hyp) == list(ref)
    return matches


# ------------------------------------------------------------------------------------------- classification
def confusion_matrix(predictions: Sequence[int] | torch.Tensor, targets: Sequence[int] | torch.Tensor,
                     num_classes: int) -> torch.Tensor:
    """(C, C) counts: row = true class, column = predicted class (ids in ``[0, num_classes)``)."""
    pred = torch.as_tensor(predictions, dtype=torch.long).reshape(-1)
    true = torch.as_tensor(targets, dtype=torch.long).reshape(-1)
    if pred.shape != true.shape:
        raise ValueError(f"{pred.numel()} predictions but {true.numel()} targets")
    for what, ids in (("prediction", pred), ("target", true)):
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= num_classes):
            raise ValueError(f"a {what} id is outside [0, {num_classes})")
    return torch.bincount(true * num_classes + pred, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)


def accuracy(predictions: Sequence[int] | torch.Tensor, targets: Sequence[int] | torch.Tensor) -> float:
    """Share of predictions equal to their targets (0 for no examples)."""
    pred, true = torch.as_tensor(predictions).reshape(-1), torch.as_tensor(targets).reshape(-1)
    if pred.shape != true.shape:
        raise ValueError(f"{pred.numel()} predictions but {true.numel()} targets")
    return float((pred == true).sum()) / max(true.numel(), 1)


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


@dataclass
class ClassificationReport:
    """Accuracy, macro-F1 and per-class precision / recall / F1 / support of a classifier, with its
    confusion matrix (``confusion[true][predicted]``). A class never predicted has precision 0, one never
    true recall 0 (scikit-learn's ``zero_division=0``). Macro-F1 averages the classes that occur as a
    target or a prediction, as scikit-learn does without an explicit label list."""

    labels: list[str]
    confusion: list[list[int]]
    accuracy: float
    macro_f1: float
    precision: list[float] = field(default_factory=list)
    recall: list[float] = field(default_factory=list)
    f1: list[float] = field(default_factory=list)
    support: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        per_class = {label: {"precision": p, "recall": r, "f1": f, "support": s}
                     for label, p, r, f, s in zip(self.labels, self.precision, self.recall, self.f1, self.support,
                                                  strict=True)}
        return {"accuracy": self.accuracy, "macro_f1": self.macro_f1, "per_class": per_class,
                "labels": self.labels, "confusion": self.confusion}


def classification_report(predictions: Sequence[int] | torch.Tensor, targets: Sequence[int] | torch.Tensor,
                          labels: Sequence[str]) -> ClassificationReport:
    """The :class:`ClassificationReport` of class ids ``predictions`` against ``targets``; ``labels[i]`` is
    the name of class ``i``."""
    counts = confusion_matrix(predictions, targets, len(labels))
    correct = counts.diagonal().tolist()
    predicted, support = counts.sum(dim=0).tolist(), counts.sum(dim=1).tolist()
    precision = [_ratio(c, p) for c, p in zip(correct, predicted, strict=True)]
    recall = [_ratio(c, s) for c, s in zip(correct, support, strict=True)]
    f1 = [_ratio(2 * c, p + s) for c, p, s in zip(correct, predicted, support, strict=True)]  # = 2PR / (P + R)
    present = [i for i in range(len(labels)) if predicted[i] or support[i]]
    return ClassificationReport(list(labels), counts.tolist(), _ratio(sum(correct), sum(support)),
                                _ratio(sum(f1[i] for i in present), len(present)), precision, recall, f1, support)

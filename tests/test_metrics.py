"""metrics.py: BLEU / chrF against sacrebleu's own command line, sequence matches, classification figures
computed by hand, and the LM's loss figures unchanged."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rnnkit import metrics
from rnnkit.errors import RnnkitError
from rnnkit.tasks.lm import lm_metrics

HYPOTHESES = ["The cat sat on the mat.", "A quick brown fox jumps over the lazy dog.", "", "Hello, world!"]
REFERENCES = ["The cat is sitting on the mat.", "The quick brown fox jumped over the lazy dog.",
              "Something was here.", "hello world!"]

# `sacrebleu ref.txt -i hyp.txt -m bleu chrf -w 4` (sacrebleu 2.6.0) on the sentences above, one per line;
# -lc / --chrf-lowercase for the lowercased figures, -tok char for character BLEU
CLI_FIGURES = [({}, "bleu", 38.3957, "tok:13a"), ({"lowercase": True}, "bleu", 38.9821, "case:lc"),
               ({"tokenize": "char"}, "bleu", 54.6014, "tok:char"), ({}, "chrf", 56.2486, "nc:6"),
               ({"lowercase": True}, "chrf", 57.3448, "case:lc")]


@pytest.mark.parametrize(("options", "metric", "expected", "in_signature"), CLI_FIGURES)
def test_text_metrics_equal_sacrebleus_command_line(options, metric, expected, in_signature) -> None:
    score = getattr(metrics, metric)(HYPOTHESES, REFERENCES, **options)
    assert round(score.score, 4) == expected
    assert in_signature in score.signature and "nrefs:1" in score.signature
    assert score.detail.startswith(score.name) and score.signature in str(score)


def test_bleu_equals_sacrebleu_run_as_a_program(tmp_path: Path) -> None:
    hyp, ref = tmp_path / "hyp.txt", tmp_path / "ref.txt"
    hyp.write_text("\n".join(HYPOTHESES) + "\n", encoding="utf-8")
    ref.write_text("\n".join(REFERENCES) + "\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "sacrebleu", str(ref), "-i", str(hyp), "-m", "bleu", "-b", "-w", "4"],
                         capture_output=True, text=True, check=True).stdout
    assert float(out) == round(metrics.bleu(HYPOTHESES, REFERENCES).score, 4)


def test_perfect_and_empty_hypotheses() -> None:
    assert metrics.bleu(REFERENCES, REFERENCES).score == pytest.approx(100.0)
    assert metrics.chrf(REFERENCES, REFERENCES).score == pytest.approx(100.0)
    assert metrics.bleu([""] * 4, REFERENCES).score == 0.0
    assert metrics.chrf([""] * 4, REFERENCES).score == 0.0


@pytest.mark.parametrize("metric", ["bleu", "chrf"])
def test_bad_corpora_are_one_clear_error(metric: str) -> None:
    score = getattr(metrics, metric)
    with pytest.raises(RnnkitError, match="nothing to score"):
        score([], [])
    with pytest.raises(RnnkitError, match="2 hypotheses but 1 references"):
        score(["a", "b"], ["a"])
    with pytest.raises(TypeError, match="not one string"):
        score("a b", "a b")
    with pytest.raises(TypeError, match="hypothesis 2 is NoneType"):
        score(["a", None], ["a", "b"])
    with pytest.raises(ValueError, match="unknown tokenize 'spaces'"):
        metrics.bleu(["a"], ["a"], tokenize="spaces")


def test_sequence_matches_ignore_padding() -> None:
    pad = 0
    targets = torch.tensor([[5, 5, 7], [6, 4, 0], [3, 3, 0], [0, 3, 0]])  # (T, B): three sequences
    predictions = torch.tensor([[5, 5, 7], [6, 4, 9], [3, 8, 9], [9, 3, 9]])  # errors only in sequence 1
    m = metrics.sequence_matches(predictions, targets, pad)
    assert (m.tokens_correct, m.tokens, m.sequences_correct, m.sequences) == (7, 8, 2, 3)
    assert m.token_accuracy == pytest.approx(7 / 8) and m.exact_match == pytest.approx(2 / 3)
    total = m + metrics.sequence_matches(targets[:, :1], targets[:, :1], pad)
    assert (total.tokens, total.sequences_correct, total.sequences) == (11, 3, 4)
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.sequence_matches(predictions[:2], targets, pad)


def test_decoded_matches_count_against_the_reference() -> None:
    m = metrics.decoded_matches([["a", "b"], ["a", "b", "c"], ["x"]], [["a", "b"], ["a", "b"], ["y", "z"]])
    # the second runs on past its reference: its tokens are right, the sequence is not
    assert (m.tokens_correct, m.tokens, m.sequences_correct, m.sequences) == (4, 6, 1, 3)
    assert m.to_dict() == {"token_accuracy": pytest.approx(4 / 6), "exact_match": pytest.approx(1 / 3)}


def test_classification_report_by_hand() -> None:
    targets = [0, 0, 0, 1, 1, 2]
    predictions = [0, 0, 1, 1, 2, 2]
    r = metrics.classification_report(predictions, targets, ["a", "b", "c", "never"])
    assert r.confusion == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert r.accuracy == pytest.approx(4 / 6)
    assert r.precision == pytest.approx([1.0, 0.5, 0.5, 0.0])
    assert r.recall == pytest.approx([2 / 3, 0.5, 1.0, 0.0])
    assert r.f1 == pytest.approx([0.8, 0.5, 2 / 3, 0.0])
    assert r.support == [3, 2, 1, 0]
    # "never" is neither a target nor a prediction: not averaged (scikit-learn's macro over present labels)
    assert r.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert r.to_dict()["per_class"]["c"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3),
                                             "support": 1}
    assert metrics.accuracy(torch.tensor(predictions), torch.tensor(targets)) == pytest.approx(4 / 6)


def test_confusion_matrix_refuses_ids_outside_the_classes() -> None:
    assert metrics.confusion_matrix([], [], 2).tolist() == [[0, 0], [0, 0]]
    with pytest.raises(ValueError, match="outside"):
        metrics.confusion_matrix([0, 2], [0, 1], 2)
    with pytest.raises(ValueError, match="2 predictions but 1 targets"):
        metrics.confusion_matrix([0, 1], [0], 2)


def test_lm_metrics_are_unchanged() -> None:
    loss = 10.0 / 4
    assert lm_metrics(10.0, 4, True) == {"loss": loss, "ppl": math.exp(loss), "tokens": 4,
                                         "bpc": loss / math.log(2)}
    assert lm_metrics(1e6, 1, False) == {"loss": 1e6, "ppl": math.exp(50.0), "tokens": 1}
    assert type(lm_metrics(1e6, 1, False)["tokens"]) is int  # a count (metrics.COUNTS), as the JSON line shows it
    assert lm_metrics(0.0, 0, False)["loss"] == 0.0

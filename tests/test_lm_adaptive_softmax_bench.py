"""benchmarks/lm_adaptive_softmax.py: its table cells and --shares (the tokens' shares per cutoff range)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import lm_adaptive_softmax as bench  # noqa: E402


def test_a_missing_speedup_is_a_dash_not_nonex() -> None:
    assert bench.speedup_text(None) == "-"
    assert bench.speedup_text(4.4) == "4.4x"


def test_shares_count_the_training_tokens_per_cutoff_range(tmp_path: Path, capsys) -> None:
    # training reviews (the 11th is held out): "a" 9 times, "x" 6, "b" 3, "c" once, and 10 <eos>
    reviews = [{"text": "a a a b"}] * 3 + [{"text": "c"}] + [{"text": "x"}] * 7
    data = tmp_path / "r.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in reviews))
    assert bench.main(["--shares", "--data", str(data), "--lines", "11", "--variant", "adaptive:5,6"]) == 0
    line = json.loads(next(x for x in capsys.readouterr().out.splitlines() if x.startswith("{")))
    # ids: the 4 specials (<eos> is 3), then a 4, x 5, b 6, c 7 (by frequency)
    assert line["tokens"] == 29 and line["vocab"] == 8
    assert line["shares_pct"] == {"head": round(100 * 19 / 29, 1), "cluster1": round(100 * 6 / 29, 1),
                                  "cluster2": round(100 * 4 / 29, 1)}

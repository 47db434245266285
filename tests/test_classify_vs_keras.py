"""benchmarks/classify_vs_keras.py: its seeded commands and its summary over seeds (no training here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import classify_vs_keras as bench  # noqa: E402


def test_seeds_set_every_side_and_keep_the_variants(tmp_path: Path) -> None:
    args = bench.parse_args(["side", "--seeds", "4,7", "--variant", "bf16:train.cpu_amp=true", "--epochs", "5"])
    assert args.seeds == [4, 7]
    commands = bench.side_commands("mnist", args, tmp_path, seed=7)
    for name in ("rnnkit", "bf16"):
        sets = [commands[name][k + 1] for k, arg in enumerate(commands[name]) if arg == "--set"]
        assert "train.seed=7" in sets and "train.epochs=5" in sets
    assert "train.cpu_amp=true" in commands["bf16"] and "train.cpu_amp=true" not in commands["rnnkit"]
    assert commands["keras"][-2:] == ["--seed", "7"]
    unseeded = bench.side_commands("mnist", bench.parse_args(["side"]), tmp_path)
    assert "--seed" not in unseeded["keras"] and not any("train.seed" in a for a in unseeded["rnnkit"])


@pytest.mark.parametrize("text", ["1,1", "a", "-1", ""])
def test_bad_seed_lists_are_refused(text: str, capsys) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(["side", "--seeds", text])
    assert "--seeds" in capsys.readouterr().err


def test_the_summary_gives_mean_sd_values_and_ratios() -> None:
    def fig(acc: float, cpu: float) -> dict:
        return {"test_acc": acc, "cpu_sec_per_epoch": cpu, "sec_per_epoch": 2 * cpu}

    runs = {1: {"rnnkit": fig(0.90, 2.0), "keras": fig(0.94, 6.0)},
            2: {"rnnkit": fig(0.94, 1.0), "keras": fig(0.96, 4.0)}}
    sides = bench.seed_summary(runs)["sides"]
    assert sides["rnnkit"]["test_acc"] == {"mean": 0.92, "sd": round(0.04 / 2 ** 0.5, 4), "values": [0.90, 0.94]}
    assert sides["keras"]["cpu_sec_per_epoch"]["mean"] == 5.0 and "ratio_cpu" not in sides["keras"]
    assert sides["rnnkit"]["ratio_cpu"] == round(5.0 / 1.5, 3) and sides["rnnkit"]["ratio_wall"] == round(5.0 / 1.5, 3)
    assert sides["rnnkit"]["ratio_cpu_per_seed"]["values"] == [3.0, 4.0]
    assert sides["rnnkit"]["test_acc_minus_keras"] == -0.03
    assert sides["rnnkit"]["test_acc_minus_keras_se"] == round((0.04 ** 2 / 4 + 0.02 ** 2 / 4) ** 0.5, 4)
    table = bench.markdown_table(bench.SUMMARY_HEADER, bench.summary_rows("mnist", {"sides": sides}))
    assert ("| mnist | rnnkit | 0.9200 ± 0.0283 | 0.9000 0.9400 | -0.0300 ± 0.0224 | 1.500 ± 0.707 | 2.00 1.00 | 3.33x "
            "| 3.50 ± 0.71 |" in table)


def test_summary_mode_reads_the_per_seed_lines_of_earlier_runs(tmp_path: Path, capsys) -> None:
    lines = [{"bench": "classify_vs_keras", "case": "fashion", "side": side, "seed": seed, "epochs": 3,
              "test_acc": acc, "cpu_sec_per_epoch": cpu, "sec_per_epoch": cpu}
             for side, seed, acc, cpu in (("rnnkit", 1, 0.85, 15.0), ("keras", 1, 0.86, 35.0),
                                          ("rnnkit", 2, 0.87, 17.0), ("keras", 2, 0.86, 37.0),
                                          ("rnnkit", 3, 0.80, 16.0))]  # seed 3 stopped before Keras' side ended
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(line) for line in lines[:2]) + "\n| a table row |\n")
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(line) for line in lines[2:]) + "\n")
    assert bench.main(["summary", "--from", str(tmp_path / "a.jsonl"), "--from", str(tmp_path / "b.jsonl")]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[0])
    assert summary["case"] == "fashion" and summary["seeds"] == [1, 2]
    assert summary["sides"]["rnnkit"]["test_acc"]["values"] == [0.85, 0.87]
    assert summary["sides"]["rnnkit"]["ratio_cpu"] == round(36.0 / 16.0, 3)

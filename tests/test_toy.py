"""Seed 004's toy tasks: the rules, determinism, distinct inputs, the split files and `rnnkit data toy`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rnnkit.cli import main
from rnnkit.data.pairs import read_tsv_pairs
from rnnkit.data.toy import TASKS, generate, number_words, pig_latin, split_sizes, write_toy
from rnnkit.errors import RnnkitError


def test_number_words_as_seed_004() -> None:
    assert [number_words(n) for n in (0, 1, 13, 20, 21, 25, 70, 99)] == [
        "zero", "one", "thirteen", "twenty", "twenty_one", "twenty_five", "seventy", "ninety_nine"]


def test_pig_latin_rule() -> None:
    assert pig_latin("string") == "ingstray" and pig_latin("cat") == "atcay" and pig_latin("apple") == "appleway"


RULES = {
    "copy": lambda x: x,
    "reverse": lambda x: x[::-1],
    "sort": sorted,
    "digits-to-words": lambda x: [number_words(int(n)) for n in x],
    "pig-latin": lambda x: list(pig_latin("".join(x))),
}


@pytest.mark.parametrize("task", list(TASKS))
def test_every_pair_follows_its_rule(task: str) -> None:
    pairs = generate(task, 500, seed=3)
    assert len(pairs) == 500 and len({s for s, _ in pairs}) == 500  # distinct sources
    for source, target in pairs:
        assert target.split() == RULES[task](source.split()), (source, target)
    assert generate(task, 500, seed=3) == pairs
    assert generate(task, 500, seed=4) != pairs


def test_lengths_and_symbols() -> None:
    sources = [s.split() for s, _ in generate("reverse", 2000, seed=1)]
    assert {len(s) for s in sources} == set(range(3, 11))
    assert {t for s in sources for t in s} == set("0123456789")
    numbers = [s.split() for s, _ in generate("digits-to-words", 2000)]
    assert {len(s) for s in numbers} == set(range(1, 6)) and max(int(t) for s in numbers for t in s) == 99


def test_generate_argument_checks() -> None:
    with pytest.raises(ValueError, match="unknown toy task 'rot13'"):
        generate("rot13", 10)
    with pytest.raises(ValueError, match="n must be"):
        generate("copy", 0)


def test_write_toy_splits_80_10_10(tmp_path: Path) -> None:
    paths = write_toy("sort", tmp_path / "toy", n=200, seed=2)
    assert split_sizes(200) == {"train": 160, "valid": 20, "test": 20}
    parts = {split: read_tsv_pairs(path) for split, path in paths.items()}
    assert [len(parts[s]) for s in ("train", "valid", "test")] == [160, 20, 20]
    assert sum((p.sources for p in parts.values()), []) == [s for s, _ in generate("sort", 200, seed=2)]
    manifest = json.loads((tmp_path / "toy" / "toy.json").read_text())
    assert manifest == {"made_by": "rnnkit data toy", "task": "sort", "n": 200, "seed": 2,
                        "sizes": {"train": 160, "valid": 20, "test": 20}}


def test_never_replaces_files_it_did_not_make(tmp_path: Path) -> None:
    theirs = tmp_path / "train.tsv"
    theirs.write_text("mine\tkeep\n")
    (tmp_path / "notes.txt").write_text("other files are fine\n")
    for overwrite in (False, True):
        with pytest.raises(RnnkitError, match="train.tsv: exists"):
            write_toy("copy", tmp_path, n=20, overwrite=overwrite)
    assert theirs.read_text() == "mine\tkeep\n" and not (tmp_path / "toy.json").exists()


def test_overwrite_replaces_its_own_files(tmp_path: Path) -> None:
    write_toy("copy", tmp_path, n=20)
    with pytest.raises(RnnkitError, match="does not replace files"):
        write_toy("reverse", tmp_path, n=30)
    write_toy("reverse", tmp_path, n=30, overwrite=True)
    assert len(read_tsv_pairs(tmp_path / "train.tsv")) == 24
    assert json.loads((tmp_path / "toy.json").read_text())["task"] == "reverse"


def test_toy_out_must_be_a_folder_and_n_large_enough(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(RnnkitError, match="is not a directory"):
        write_toy("copy", tmp_path / "file", n=20)
    with pytest.raises(RnnkitError, match="--n must be at least 10"):
        write_toy("copy", tmp_path / "d", n=9)


def test_data_toy_command(capsys, tmp_path: Path) -> None:
    out = tmp_path / "rev"
    assert main(["data", "toy", "reverse", "--out", str(out), "--n", "50", "--seed", "7"]) == 0
    assert capsys.readouterr().out == f"reverse: 40 train, 5 valid, 5 test pairs in {out}\n"
    assert read_tsv_pairs(out / "test.tsv").sources == [s for s, _ in generate("reverse", 50, 7)][45:]
    assert main(["data", "toy", "reverse", "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {out / 'train.tsv'}: exists")


def test_help_stays_light() -> None:
    """Building the parser (``rnnkit --help``) imports no torch."""
    code = "import sys, rnnkit.cli as c; c.build_parser(); print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr

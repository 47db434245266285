"""benchmarks/_seq2seq.fresh_folder: a benchmark empties only a folder it made itself (rnnkit never deletes
what it did not create)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _seq2seq import fresh_folder  # noqa: E402


def test_a_new_or_empty_folder_is_made_and_marked_and_emptied_on_the_next_run(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "new" / "out", tmp_path / "empty"):
        fresh_folder(out)
        (out / "rnnkit_train.log").write_text("an earlier run's log")
        fresh_folder(out)
        assert [p.name for p in out.iterdir()] == [".rnnkit-benchmark"]


def test_a_folder_the_benchmark_did_not_make_is_left_as_it_is(tmp_path: Path, capsys) -> None:
    (tmp_path / "thesis.tex").write_text("years of work")
    with pytest.raises(SystemExit) as stop:
        fresh_folder(tmp_path)
    assert f"--out {tmp_path}" in str(stop.value) and "not made by this benchmark" in str(stop.value)
    assert (tmp_path / "thesis.tex").read_text() == "years of work"
    (tmp_path / "thesis.tex").unlink()
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit, match="not a folder"):
        fresh_folder(tmp_path / "file")

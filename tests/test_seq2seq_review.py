"""The hostile review of the seq2seq round (notes/h3-findings.md): what a user does that is not bad input
but went wrong, each kept as a test. Bad input (one clear error) is in tests/test_bad_input.py's rows."""

from __future__ import annotations

from pathlib import Path

import pytest

import rnnkit
from rnnkit.cli import main

pytestmark = pytest.mark.usefixtures("no_curves")

TINY = ["model.src_embedding_size=4", "model.trg_embedding_size=4", "model.hidden_size=8", "train.batch_size=4",
        "train.max_steps=2", "train.progress=false", "train.device=cpu", "data.valid_fraction=0.2",
        "source.kind=word", "target.kind=word", "data.max_src_length=4"]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("review")
    pairs = root / "pairs.tsv"
    pairs.write_text("".join(f"{a} {b}\t{b} {a}\n" for a in "abcd" for b in "abcd"), encoding="utf-8")
    rnnkit.train("seq2seq", data=str(pairs), out=root / "m", overrides=TINY)
    return root / "m"


@pytest.mark.parametrize("options", [["--beam", "2"], ["--n-best", "1"], ["--truncate"], ["--batch-size", "4"]])
def test_translate_takes_its_options_before_the_text(capsys, model: Path, options: list[str]) -> None:
    """``rnnkit translate MODEL --beam 5 "Go away."``: the natural order must work as well as text first."""
    assert main(["translate", str(model), "a b", *options]) == 0
    expected = capsys.readouterr().out
    assert main(["translate", str(model), *options, "a b"]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out == expected


def test_truncate_cuts_an_over_long_source_with_a_warning_naming_its_line(capsys, model: Path) -> None:
    assert main(["translate", str(model), "a b", "a b c d a b"]) == 2
    assert "input line 2: 6 tokens, more than the model's limit of 4" in capsys.readouterr().err
    assert main(["translate", str(model), "a b", "a b c d a b", "--truncate"]) == 0
    out, err = capsys.readouterr()
    assert "warning: input line 2: 6 tokens cut to the model's limit of 4" in err and len(out.splitlines()) == 2
    # the cut source translates as the first 4 tokens would
    assert main(["translate", str(model), "a b c d"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == out.splitlines()[1]

"""Parallel data: TSV and aligned readers, their errors, splits, length limits, encoding, pair batches."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

from rnnkit.data.lm import IGNORE_INDEX
from rnnkit.data.pairs import (
    ParallelText,
    collate_pairs,
    encode_pairs,
    pair_batches,
    read_aligned_pairs,
    read_parallel,
    read_tsv_pairs,
    split_pairs,
)
from rnnkit.data.tokenizers import CharTokenizer, WordTokenizer
from rnnkit.data.vocab import Vocab
from rnnkit.errors import RnnkitError


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_tsv_pairs_ignore_extra_columns(tmp_path: Path) -> None:
    data = read_tsv_pairs(write(tmp_path / "p.tsv", "Go.\tVa !\tCC-BY 2.0\n Hi. \tSalut !\n"))
    assert data.sources == ["Go.", "Hi."] and data.targets == ["Va !", "Salut !"]
    assert data.lines == [1, 2] and data.source_path == data.target_path == str(tmp_path / "p.tsv")


def test_tsv_pairs_gzip_and_max_pairs(tmp_path: Path) -> None:
    path = tmp_path / "p.tsv.gz"
    path.write_bytes(gzip.compress("".join(f"s{i}\tt{i}\n" for i in range(10)).encode()))
    assert read_tsv_pairs(path, max_pairs=3).targets == ["t0", "t1", "t2"]


def test_anki_file_reads_whole(shared_data: Path) -> None:
    data = read_tsv_pairs(shared_data / "fra-eng" / "fra.txt.gz", max_pairs=10000)
    assert len(data) == 10000 and data.sources[0] == "Go." and data.targets[0] == "Va !"


@pytest.mark.parametrize("text, message, line", [
    ("a\tb\nno tab here\n", "no tab on this line", 2),
    ("a\tb\n\t x\n", "the source side is empty", 2),
    ("a\tb\nc\t  \n", "the target side is empty", 2),
    ("a\tb\n\nc\td\n", "no tab", 2),  # a blank line between pairs (at the end: none, test_blank_lines_at_the_end...)
    (b"a\tb\nc\t\xe9t\xe9\n", "not UTF-8", 2),
    ("\n \n", "file is empty", None),
])
def test_tsv_errors_name_file_and_line(tmp_path: Path, text, message: str, line: int | None) -> None:
    path = write(tmp_path / "p.tsv", text)
    with pytest.raises(RnnkitError, match=message) as e:
        read_tsv_pairs(path)
    assert e.value.path == str(path) and e.value.line == line


def test_aligned_pairs(tmp_path: Path, shared_data: Path) -> None:
    de = write(tmp_path / "train.de", "ein Hund\nzwei Katzen\n")
    en = write(tmp_path / "train.en", "a dog\ntwo cats\n")
    data = read_aligned_pairs(de, en)
    assert data.sources == ["ein Hund", "zwei Katzen"] and data.targets == ["a dog", "two cats"]
    assert (data.source_path, data.target_path) == (str(de), str(en))
    assert len(read_aligned_pairs(shared_data / "multi30k" / "val.de", shared_data / "multi30k" / "val.en")) == 1014


def test_read_parallel_by_prefix_or_tsv(tmp_path: Path) -> None:
    write(tmp_path / "train.de", "ein Hund\n")
    (tmp_path / "train.en.gz").write_bytes(gzip.compress(b"a dog\n"))
    data = read_parallel(tmp_path / "train", "de", "en")
    assert (data.sources, data.targets) == (["ein Hund"], ["a dog"])
    assert data.target_path == str(tmp_path / "train.en.gz")
    assert read_parallel(write(tmp_path / "p.tsv", "a\tb\n")).targets == ["b"]
    with pytest.raises(RnnkitError, match="train.fr: file not found"):
        read_parallel(tmp_path / "train", "fr", "en")
    with pytest.raises(ValueError, match="both source_suffix and target_suffix"):
        read_parallel(tmp_path / "train", "de")


def test_aligned_files_of_different_lengths(tmp_path: Path) -> None:
    de = write(tmp_path / "train.de", "a\nb\nc\n")
    en = write(tmp_path / "train.en", "a\nb\n")
    with pytest.raises(RnnkitError, match=r"train.de: has 3 lines but .*train.en has 2: aligned files"):
        read_aligned_pairs(de, en)


def test_aligned_empty_line_names_its_file(tmp_path: Path) -> None:
    de = write(tmp_path / "train.de", "a\nb\n")
    en = write(tmp_path / "train.en", "a\n \n")
    with pytest.raises(RnnkitError, match="target side is empty") as e:
        read_aligned_pairs(de, en)
    assert (e.value.path, e.value.line) == (str(en), 2)


def test_jsonl_is_not_parallel_data(tmp_path: Path) -> None:
    with pytest.raises(RnnkitError, match="not JSON Lines"):
        read_tsv_pairs(write(tmp_path / "p.jsonl", '{"text": "a"}\n'))


def numbered(n: int) -> ParallelText:
    return ParallelText([f"s{i}" for i in range(n)], [f"t{i}" for i in range(n)], list(range(1, n + 1)), "p", "p")


def test_tail_split_is_seed_000s() -> None:
    """Keras validation_split: the last 20%, unshuffled."""
    train, valid, test = split_pairs(numbered(10000), 0.2)
    assert train.sources == [f"s{i}" for i in range(8000)] and valid.sources == [f"s{i}" for i in range(8000, 10000)]
    assert len(test) == 0
    train, valid, test = split_pairs(numbered(100), 0.1, 0.05)
    assert (len(train), len(valid), len(test)) == (85, 10, 5)
    assert valid.lines[0] == 86 and test.lines == list(range(96, 101))


def test_random_split_is_seeded_and_disjoint() -> None:
    parts = split_pairs(numbered(200), 0.1, 0.1, mode="random", seed=4)
    assert [len(p) for p in parts] == [160, 20, 20]
    assert sorted(sum((p.lines for p in parts), [])) == list(range(1, 201))
    assert all(p.lines == sorted(p.lines) for p in parts)  # each part keeps file order
    assert parts[1].lines != list(range(161, 181))
    assert split_pairs(numbered(200), 0.1, 0.1, "random", 4)[1].lines == parts[1].lines
    assert split_pairs(numbered(200), 0.1, 0.1, "random", 5)[1].lines != parts[1].lines


def test_split_errors() -> None:
    with pytest.raises(RnnkitError, match="only 2 pairs"):
        split_pairs(numbered(2), 0.2, 0.2)
    with pytest.raises(ValueError, match="split mode"):
        split_pairs(numbered(10), 0.2, mode="head")
    with pytest.raises(ValueError, match="fractions"):
        split_pairs(numbered(10), 0.6, 0.5)


def vocabs(data: ParallelText, tokenizer) -> tuple[Vocab, Vocab]:
    return Vocab.build(map(tokenizer.tokenize, data.sources)), Vocab.build(map(tokenizer.tokenize, data.targets))


def test_encode_adds_bos_eos_to_targets_and_counts_oov() -> None:
    data = ParallelText(["a b", "b c d"], ["x", "y z"], [1, 2], "p", "p")
    tok = WordTokenizer()
    src_vocab, trg_vocab = Vocab(["a", "b"]), Vocab(["x", "y"])
    enc = encode_pairs(data, tok, tok, src_vocab, trg_vocab)
    assert enc.sources == [[4, 5], [5, Vocab.unk_id, Vocab.unk_id]]
    assert enc.targets == [[Vocab.bos_id, 4, Vocab.eos_id], [Vocab.bos_id, 5, Vocab.unk_id, Vocab.eos_id]]
    assert (enc.source_oov.tokens, enc.source_oov.oov, enc.target_oov.tokens, enc.target_oov.oov) == (5, 2, 3, 1)


def test_length_limits_drop_or_fail() -> None:
    data = ParallelText(["a", "a a a", "a"], ["b", "b", "b b b b"], [1, 2, 3], "src.txt", "trg.txt")
    tok = WordTokenizer()
    sv, tv = vocabs(data, tok)
    enc = encode_pairs(data, tok, tok, sv, tv, max_source_tokens=2, max_target_tokens=3)
    assert enc.lines == [1] and enc.dropped == 2
    with pytest.raises(RnnkitError, match="src.txt:2: the source side has 3 tokens, more than the limit of 2"):
        encode_pairs(data, tok, tok, sv, tv, max_source_tokens=2, too_long="error")
    with pytest.raises(RnnkitError, match="trg.txt:3: the target side has 4 tokens"):
        encode_pairs(data, tok, tok, sv, tv, max_target_tokens=3, too_long="error")


def test_pair_batch_layout() -> None:
    data = ParallelText(["ab", "abcd", "a"], ["xy", "x", "xyz"], [1, 2, 3], "p", "p")
    tok = CharTokenizer()
    enc = encode_pairs(data, tok, tok, *vocabs(data, tok))
    batch = collate_pairs(enc, [0, 1, 2])
    assert batch.indices == [1, 0, 2]  # longest source first
    assert batch.src_lengths.tolist() == [4, 2, 1] and batch.trg_lengths.tolist() == [2, 3, 4]
    assert batch.src.shape == (4, 3) and batch.trg_in.shape == batch.trg_out.shape == (4, 3)
    assert batch.trg_in[0].tolist() == [Vocab.bos_id] * 3
    assert batch.trg_out[:, 0].tolist() == [enc.targets[1][1], Vocab.eos_id, IGNORE_INDEX, IGNORE_INDEX]
    assert batch.trg_in[:, 0].tolist() == [Vocab.bos_id, enc.targets[1][1], Vocab.pad_id, Vocab.pad_id]
    assert batch.num_tokens == 9
    moved = batch.to(torch.device("cpu"))
    assert torch.equal(moved.src, batch.src) and moved.indices == batch.indices


def test_pair_batches_on_real_pairs(shared_data: Path) -> None:
    data = read_tsv_pairs(shared_data / "fra-eng" / "fra.txt.gz", max_pairs=2000)
    tok = CharTokenizer()
    enc = encode_pairs(data, tok, tok, *vocabs(data, tok))
    train = pair_batches(enc, 500, unit="tokens", seed=3)
    plan = train.plan(0)
    assert sorted(i for spec in plan for i in spec) == list(range(2000))
    for spec in plan[:20]:
        b = train.batch(spec)
        assert b.src.size(0) * b.src.size(1) <= 500 and b.trg_in.size(0) * b.trg_in.size(1) <= 500
    assert train.num_tokens == sum(len(t) - 1 for t in enc.targets)


def test_blank_lines_at_the_end_hold_no_pair(tmp_path: Path) -> None:
    """review6 finding 5: an editor's trailing newline after a TSV or after both aligned files is no pair; a blank
    line between pairs, or facing a sentence in the other file, stays an error."""
    tsv = write(tmp_path / "p.tsv", "a\tb\nc\td\n\n \n")
    assert read_tsv_pairs(tsv).sources == ["a", "c"]
    with pytest.raises(RnnkitError, match="no tab"):
        read_tsv_pairs(write(tmp_path / "q.tsv", "a\tb\n\nc\td\n"))
    de, en = write(tmp_path / "t.de", "a\nb\n\n"), write(tmp_path / "t.en", "x\ny\n\n")
    assert read_aligned_pairs(de, en).targets == ["x", "y"]

"""Data: tokenizers, vocabulary, readers and the LM batchers (stream, sentences, windows)."""

from __future__ import annotations

import gzip
import json
import random
import tempfile
from pathlib import Path

import pytest
import torch

import rnnkit
from conftest import FABLE
from rnnkit.config import DataConfig, TokenizerConfig
from rnnkit.data import readers
from rnnkit.data.labelled import ReadOptions, read_examples
from rnnkit.data.lm import (
    IGNORE_INDEX,
    SentenceBatches,
    StreamBatches,
    encode_lines,
    make_batches,
    pad_sentences,
    read_corpus_lines,
)
from rnnkit.data.readers import clean_text, read_lines, split_sentences
from rnnkit.data.tokenizers import (
    AlnumTokenizer,
    CharTokenizer,
    SentencePieceTokenizer,
    WordTokenizer,
    build_tokenizer,
    load_tokenizer,
)
from rnnkit.data.vocab import SPECIALS, OovCount, Vocab
from rnnkit.errors import RnnkitError

# ----------------------------------------------------------------------------------------------------
# tokenizers


def test_char_tokenizer_round_trip() -> None:
    tok = CharTokenizer()
    line = "Hi, mice!  ok"
    assert tok.tokenize(line) == list(line)
    assert tok.detokenize(tok.tokenize(line)) == line
    assert tok.detokenize(["a", "<eos>", "b"]) == "a\nb"  # <eos> prints back as a line break
    assert CharTokenizer(lowercase=True).tokenize("AbC") == ["a", "b", "c"]


@pytest.mark.parametrize("line, tokens", [
    ("the mice, at last.", ["the", "mice", ",", "at", "last", "."]),
    ('"Hello!" she said', ['"', "Hello", "!", '"', "she", "said"]),
    ("(yes) <unk>, ok", ["(", "yes", ")", "<unk>", ",", "ok"]),
    ("mr. <unk> 's chairman", ["mr", ".", "<unk>", "'s", "chairman"]),  # PTB's <unk> and 's stay whole
    ("it's n't 're 'll", ["it's", "n't", "'re", "'ll"]),
])
def test_word_tokenizer_splits_punctuation(line: str, tokens: list[str]) -> None:
    assert WordTokenizer().tokenize(line) == tokens


def test_word_tokenizer_without_punctuation_split_keeps_ptb_tokens() -> None:
    line = " mr. <unk> is chairman of <unk> n.v. 's "
    assert WordTokenizer(split_punctuation=False).tokenize(line) == line.split()
    assert WordTokenizer(lowercase=True).tokenize("The CAT") == ["the", "cat"]


def test_alnum_tokenizer_drops_punctuation_and_keeps_clitics_on_their_word(tmp_path: Path) -> None:
    line = "This movie wasn't great, but... 10/10! <br /> The film's end_credits."
    assert AlnumTokenizer(lowercase=True).tokenize(line) == [
        "this", "movie", "wasn't", "great", "but", "10", "10", "br", "the", "film's", "end", "credits"]
    assert build_tokenizer(TokenizerConfig(kind="alnum"), []).tokenize("Café, OK?") == ["Café", "OK"]
    AlnumTokenizer(lowercase=True).save(tmp_path)
    loaded = load_tokenizer(tmp_path)
    assert isinstance(loaded, AlnumTokenizer) and loaded.lowercase


def test_word_round_trip_on_the_fable() -> None:
    """The fable is already spaced: tokenize then detokenize gives it back (whitespace normalised)."""
    tok = WordTokenizer()
    text = FABLE.read_text(encoding="utf-8")
    for line in text.splitlines():
        assert tok.detokenize(tok.tokenize(line)) == " ".join(line.split())
    assert len(tok.tokenize(text)) == 204  # the demo's "204 words" (punctuation included)


def test_tokenizer_options_survive_save_and_load(tmp_path: Path) -> None:
    WordTokenizer(lowercase=True, split_punctuation=False).save(tmp_path)
    loaded = load_tokenizer(tmp_path)
    assert isinstance(loaded, WordTokenizer)
    assert loaded.lowercase and not loaded.split_punctuation
    CharTokenizer().save(tmp_path)
    assert isinstance(load_tokenizer(tmp_path), CharTokenizer)


def test_sentencepiece_trained_saved_and_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = FABLE.read_text(encoding="utf-8").splitlines() * 3
    cfg = TokenizerConfig(kind="sentencepiece", vocab_size=60, spm_type="unigram")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    sp = build_tokenizer(cfg, lines)
    assert not list((tmp_path / "tmp").iterdir())  # training leaves no temporary files behind
    assert isinstance(sp, SentencePieceTokenizer)
    assert sp.processor.get_piece_size() <= 60
    line = "the mice had a general council to consider what measures they could take"
    pieces = sp.tokenize(line)
    assert 1 < len(pieces) < len(line)  # subwords: more than one piece, fewer than characters
    assert sp.detokenize(pieces) == line
    assert sp.detokenize([*pieces, "<eos>"]) == line  # specials are not text
    sp.save(tmp_path / "dir")
    loaded = load_tokenizer(tmp_path / "dir")
    assert isinstance(loaded, SentencePieceTokenizer) and loaded.tokenize(line) == pieces
    given = build_tokenizer(TokenizerConfig(kind="sentencepiece", spm_model=str(tmp_path / "dir" / "spm.model")),
                            ["unrelated text that must not be trained on"])
    assert given.tokenize(line) == pieces


def test_sentencepiece_errors(tmp_path: Path) -> None:
    with pytest.raises(RnnkitError, match="sentencepiece model not found"):
        build_tokenizer(TokenizerConfig(kind="sentencepiece", spm_model=str(tmp_path / "none.model")), [])
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"not a model")
    with pytest.raises(RnnkitError, match="is not a sentencepiece model that rnnkit can load"):
        build_tokenizer(TokenizerConfig(kind="sentencepiece", spm_model=str(bad)), [])
    with pytest.raises(RnnkitError, match="unknown tokenizer kind 'bytes'"):
        build_tokenizer(TokenizerConfig(kind="bytes"), [])


# ----------------------------------------------------------------------------------------------------
# vocabulary


def test_vocab_specials_and_frequency_order() -> None:
    vocab = Vocab.build([["b", "a", "b"], ["c", "a", "b", "d"]])
    assert vocab.itos[:4] == list(SPECIALS)
    assert (Vocab.pad_id, Vocab.unk_id, Vocab.bos_id, Vocab.eos_id) == (0, 1, 2, 3)
    assert [vocab.stoi[s] for s in SPECIALS] == [0, 1, 2, 3]
    assert vocab.itos[4:] == ["b", "a", "c", "d"]  # by count; c and d tie: first seen first
    assert vocab.encode(["a", "zebra"]) == [5, Vocab.unk_id]
    assert vocab.decode([4, 5, 3]) == ["b", "a", "<eos>"]


def test_vocab_max_size_and_min_freq() -> None:
    tokens = [["x"] * 5 + ["y"] * 4 + ["z"] * 2 + ["w"]]
    assert Vocab.build(tokens, max_size=6).itos[4:] == ["x", "y"]  # max size counts the specials
    assert len(Vocab.build(tokens, max_size=6)) == 6
    assert Vocab.build(tokens, min_freq=2).itos[4:] == ["x", "y", "z"]
    assert Vocab.build(tokens, max_size=6, min_freq=5).itos[4:] == ["x"]


def test_vocab_does_not_duplicate_specials_in_the_text() -> None:
    vocab = Vocab.build([["<unk>", "the", "<unk>", "<eos>"]])  # PTB writes <unk> itself
    assert vocab.itos == [*SPECIALS, "the"]
    assert vocab.encode(["<unk>"]) == [Vocab.unk_id]


def test_vocab_save_load(tmp_path: Path) -> None:
    vocab = Vocab.build([["héllo", "wörld", "héllo"]])
    vocab.save(tmp_path / "vocab.json")
    loaded = Vocab.load(tmp_path / "vocab.json")
    assert loaded.itos == vocab.itos and loaded.stoi == vocab.stoi
    (tmp_path / "bad.json").write_text('["a", "b"]', encoding="utf-8")
    with pytest.raises(RnnkitError, match="does not start with <pad> <unk> <bos> <eos>"):
        Vocab.load(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text('["<pad>", ', encoding="utf-8")
    with pytest.raises(RnnkitError, match="vocabulary file is corrupt"):
        Vocab.load(tmp_path / "broken.json")
    with pytest.raises(RnnkitError, match="vocabulary file missing"):
        Vocab.load(tmp_path / "none.json")


def test_ptb_vocabulary(shared_data: Path) -> None:
    """PTB's 10k-word vocabulary (<unk> written in the text, <eos> ours) plus <pad> and <bos>."""
    path = shared_data / "ptb" / "ptb.train.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    tok = WordTokenizer(split_punctuation=False)
    vocab = Vocab.build(tok.tokenize(line) for line in read_lines(path))
    assert len(vocab) == 10002
    assert vocab.itos.count("<unk>") == 1 and vocab.itos[4] == "the"
    first = read_lines(path, max_lines=3)[1]
    assert "<unk>" in WordTokenizer().tokenize(first)  # kept whole even with punctuation splitting


def test_shared_fable_is_the_embedded_one(shared_data: Path) -> None:
    path = shared_data / "belling-the-cat" / "belling_the_cat.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    assert read_lines(path) == read_lines(FABLE)


# ----------------------------------------------------------------------------------------------------
# readers


def test_read_plain_and_gzip(tmp_path: Path) -> None:
    lines = ["first line", "", "third línea"]
    (tmp_path / "a.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with gzip.open(tmp_path / "a.txt.gz", "wt", encoding="utf-8") as f:
        f.write("\r\n".join(lines) + "\r\n")
    assert read_lines(tmp_path / "a.txt") == lines
    assert read_lines(tmp_path / "a.txt.gz") == lines
    assert read_lines(tmp_path / "a.txt", max_lines=2) == lines[:2]


def test_read_jsonl_text_field(tmp_path: Path) -> None:
    records = [{"text": "A review.<br /><br />Second part.", "label": 1}, {"text": "line\nbreak"}]
    body = "\n".join(json.dumps(r) for r in records[:1]) + "\n\n" + json.dumps(records[1]) + "\n"
    (tmp_path / "r.jsonl").write_text(body, encoding="utf-8")
    with gzip.open(tmp_path / "r.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(body)
    expected = ["A review. Second part.", "line break"]  # a blank line is no record: no extra <eos>
    assert read_lines(tmp_path / "r.jsonl") == expected
    assert read_lines(tmp_path / "r.jsonl.gz") == expected
    assert read_lines(tmp_path / "r.jsonl", max_lines=2) == expected  # records, not lines, are counted


def test_the_lm_reads_jsonl_markup_as_the_classifier_does(tmp_path: Path, train_tiny) -> None:
    """An LM pretrained on reviews and the classifier fine-tuned from it see the same words: every tag is a space
    (not only <br />), unless both are told to keep markup (data.strip_markup false)."""
    records = [{"text": "A <i>fine</i>  film.<br /><br />Second\npart.", "label": "pos"},
               {"text": "<p>Bad <B>acting</b> ,<hr>sadly", "label": "neg"}] * 6
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    for strip in (True, False):
        assert read_lines(path, strip_markup=strip) == read_examples(path, ReadOptions(strip_markup=strip)).texts
    assert read_lines(path)[:2] == ["A fine film. Second part.", "Bad acting , sadly"]
    def markup(model) -> list[str]:
        return [token for token in model.vocab.itos[len(SPECIALS):] if "<" in token or ">" in token]

    assert markup(rnnkit.load(train_tiny("lm", "train.max_steps=1", data=str(path)))) == []
    keeps = rnnkit.load(train_tiny("keeps", "train.max_steps=1", "data.strip_markup=false", data=str(path)))
    assert "<br" in markup(keeps) and "<p>Bad" in markup(keeps)


@pytest.mark.parametrize("text, cleaned", [
    ("a<br />b<BR>c<br/>d", "a b c d"),  # IMDB's line breaks, any case
    ("<i>fine</i> <p>film</P><hr> <b/>x", "fine film x"),
    ('<a href="x.html" title=\'y\'>link</a> <img src=p.png />', "link"),
    ("x<y and y>z", "x<y and y>z"),  # comparisons are text
    ("if a < b and c > d", "if a < b and c > d"),
    ("<sighs> <shakes his head> < Cough > <insert 5 pages of swearing>",  # reviewers' asides (IMDB)
     "<sighs> <shakes his head> < Cough > <insert 5 pages of swearing>"),
    ("<SPOILER>the end</SPOILER> a<3 <<b>>", "<SPOILER>the end</SPOILER> a<3 < >"),
])
def test_only_real_html_tags_are_markup(text: str, cleaned: str) -> None:
    assert clean_text(text, True) == cleaned
    assert clean_text(text, False) == " ".join(text.split())


def test_a_jsonl_record_of_only_markup_adds_no_eos_to_the_lm_stream(tmp_path: Path) -> None:
    """A record that is empty once its markup is read is no text, as a blank line between records: the LM's
    stream gets no lone <eos> from it (and max_lines counts the records that hold text)."""
    records = [{"text": "one two"}, {"text": "<br /><br />"}, {"text": " <p> "}, {"text": "three"}]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    cfg = DataConfig(train=str(path), max_lines=2)
    assert read_corpus_lines(str(path), cfg) == ["one two", "three"]
    assert read_lines(path) == ["one two", "", "", "three"]  # a record each (translate answers every one)


@pytest.mark.parametrize("body, line, message", [
    ('{"text": "ok"}\n{"text": "broken\n', 2, "invalid JSON"),
    ('{"text": "ok"}\n{"text": "ok"}\n{"title": "no text"}\n', 3, 'no string "text" field'),
    ('{"text": 5}\n', 1, 'no string "text" field'),
    ('["text"]\n', 1, 'no string "text" field'),
])
def test_bad_jsonl_names_file_and_line(tmp_path: Path, body: str, line: int, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(RnnkitError, match=message) as err:
        read_lines(path)
    assert (err.value.path, err.value.line) == (str(path), line)
    assert str(err.value).startswith(f"{path}:{line}: ")


def test_a_byte_order_mark_is_not_text(tmp_path: Path) -> None:
    plain = tmp_path / "bom.txt"
    plain.write_bytes("\ufeffthe cat\nsat\n".encode())
    assert read_lines(plain) == ["the cat", "sat"]
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes('\ufeff{"text": "a review"}\n{"text": "another"}\n'.encode())
    assert read_lines(jsonl) == ["a review", "another"]


def test_non_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("fine\nalso fine\ncaf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(RnnkitError, match="not UTF-8") as err:
        read_lines(path)
    assert (err.value.path, err.value.line) == (str(path), 3)
    assert "column 4" in str(err.value)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_file_is_an_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(RnnkitError, match="file is empty") as err:
        read_lines(path)
    assert err.value.path == str(path)


def test_missing_file_directory_and_bad_gzip(tmp_path: Path) -> None:
    with pytest.raises(RnnkitError, match="file not found") as err:
        read_lines(tmp_path / "missing.txt")
    assert err.value.path == str(tmp_path / "missing.txt")
    with pytest.raises(RnnkitError, match="is a directory"):
        read_lines(tmp_path)
    (tmp_path / "fake.txt.gz").write_text("plain text, not gzip\n", encoding="utf-8")
    with pytest.raises(RnnkitError, match="not a valid gzip file"):
        read_lines(tmp_path / "fake.txt.gz")


def test_split_sentences() -> None:
    text = 'Hello there. How are you? I am fine!! e.g. this costs 3.5 dollars. "Yes." She left. (Done.) 2 more.'
    assert split_sentences(text) == ["Hello there.", "How are you?", "I am fine!! e.g. this costs 3.5 dollars.",
                                     '"Yes."', "She left.", "(Done.)", "2 more."]
    # splitting loses nothing but the separating spaces (closing quotes and brackets stay)
    assert " ".join(split_sentences(text)) == text


def test_read_corpus_lines_splits_then_counts_sentences(tmp_path: Path) -> None:
    path = tmp_path / "reviews.txt"
    path.write_text("One. Two here. Three!\nFour? Five.\n", encoding="utf-8")
    cfg = DataConfig(split_sentences=True)
    assert read_corpus_lines(str(path), cfg) == ["One.", "Two here.", "Three!", "Four?", "Five."]
    cfg.max_lines = 4  # max_lines counts sentences after splitting
    assert read_corpus_lines(str(path), cfg) == ["One.", "Two here.", "Three!", "Four?"]
    assert read_corpus_lines(str(path), DataConfig(max_lines=1)) == ["One. Two here. Three!"]


# ----------------------------------------------------------------------------------------------------
# encoding lines into sequences


def _vocab_for(lines: list[str]) -> tuple[WordTokenizer, Vocab]:
    tok = WordTokenizer()
    return tok, Vocab.build(tok.tokenize(line) for line in lines)


def test_encode_lines_per_mode() -> None:
    lines = ["a b c", "", "d e", "f g h i j"]
    tok, vocab = _vocab_for(lines)
    ids = {w: vocab.stoi[w] for w in "abcdefghij"}
    bos, eos = Vocab.bos_id, Vocab.eos_id
    stream = encode_lines(lines, tok, vocab, DataConfig(mode="stream"))
    assert stream == [[ids["a"], ids["b"], ids["c"], eos], [eos], [ids["d"], ids["e"], eos],
                      [*(ids[w] for w in "fghij"), eos]]
    sents = encode_lines(lines, tok, vocab, DataConfig(mode="sentences"))
    assert sents[0] == [bos, ids["a"], ids["b"], ids["c"], eos] and len(sents) == 3  # empty line dropped
    filtered = encode_lines(lines, tok, vocab, DataConfig(mode="sentences", min_length=3, max_length=4))
    assert filtered == [[bos, ids["a"], ids["b"], ids["c"], eos]]
    windows = encode_lines(lines, tok, vocab, DataConfig(mode="windows", window=3))
    flat = [i for seq in stream for i in seq]  # windows slide over the running text, across lines
    assert windows == [flat[i: i + 4] for i in range(len(flat) - 3)]


# ----------------------------------------------------------------------------------------------------
# stream batches


def _ramp(n: int) -> list[list[int]]:
    """Sequences whose concatenation is 0..n-1, so every id tells its position in the stream."""
    return [list(range(0, n // 3)), list(range(n // 3, n))]


def test_stream_columns_contiguous_and_targets_shifted() -> None:
    data = StreamBatches(_ramp(103), columns=4, bptt=7)
    n = 102 // 4
    assert data.inputs.shape == (n, 4)
    for j in range(4):  # column j is the j-th contiguous chunk of the stream
        assert torch.equal(data.inputs[:, j], torch.arange(j * n, (j + 1) * n))
    assert torch.equal(data.targets, data.inputs + 1)
    assert data.num_tokens == 4 * n


def test_stream_epoch_sees_every_token_once() -> None:
    data = StreamBatches(_ramp(103), columns=4, bptt=7)
    plan = data.plan(0)
    assert [length for _, length in plan] == [7, 7, 7, 4]
    batches = [data.batch(span) for span in plan]
    assert all(b.carry_state for b in batches)
    inputs = torch.cat([b.inputs for b in batches])
    assert torch.equal(inputs, data.inputs)  # in order: the carried state continues each column
    assert sorted(inputs.flatten().tolist()) == list(range(100))
    assert torch.equal(torch.cat([b.targets for b in batches]), inputs + 1)
    assert sum(b.num_tokens for b in batches) == 100
    assert all(b.lengths.tolist() == [b.inputs.size(0)] * 4 for b in batches)


def test_stream_with_a_padded_tail_scores_every_token_once() -> None:
    """Evaluation: the tokens that do not fill a column are targets too (training drops them)."""
    dropped = StreamBatches(_ramp(103), columns=4, bptt=7)
    data = StreamBatches(_ramp(103), columns=4, bptt=7, pad_tail=True)
    assert dropped.num_tokens == 100 and data.num_tokens == 102  # 103 tokens: every one but the first
    batches = [data.batch(span) for span in data.plan(0)]
    targets = torch.cat([b.targets for b in batches])
    scored = targets[targets != IGNORE_INDEX]
    assert sorted(scored.tolist()) == list(range(1, 103))
    assert sum(b.num_tokens for b in batches) == 102
    real = targets != IGNORE_INDEX  # each real target follows its own input, as without padding
    assert torch.equal(targets[real], torch.cat([b.inputs for b in batches])[real] + 1)
    exact = StreamBatches(_ramp(101), columns=4, bptt=7, pad_tail=True)  # 100 targets fill 4 columns
    assert not exact.padded and torch.equal(exact.inputs, StreamBatches(_ramp(101), 4, 7).inputs)


def test_a_line_longer_than_the_limit_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 16)
    ok = tmp_path / "ok.txt"
    ok.write_bytes(b"x" * 15 + b"\n" + b"y" * 16 + b"\n")  # 16 bytes with the line break, then 16 without
    assert read_lines(ok) == ["x" * 15, "y" * 16]
    long = tmp_path / "long.txt"
    long.write_bytes(b"short\n" + b"z" * 17 + b"\n")
    with pytest.raises(RnnkitError, match=r"long.txt:2: the line is longer than"):
        read_lines(long)


def test_oov_count() -> None:
    vocab = Vocab(["the", "cat"])
    count = OovCount()
    count.add(["the", "dog", "<unk>", "cat", "emu"], vocab)  # a literal <unk> is in every vocabulary
    assert (count.tokens, count.oov, count.rate) == (5, 2, 0.4)
    assert OovCount().rate == 0.0


@pytest.mark.parametrize("variable", [False, True])
def test_stream_rank_shards_concatenate_to_the_one_process_batch(variable: bool) -> None:
    seqs = _ramp(403)
    one = StreamBatches(seqs, columns=4, bptt=10, variable_bptt=variable, seed=7)
    ranks = [StreamBatches(seqs, columns=4, bptt=10, variable_bptt=variable, seed=7, rank=r, world=2)
             for r in range(2)]
    for epoch in range(2):
        plan = one.plan(epoch)
        assert all(r.plan(epoch) == plan for r in ranks)
        for span in plan:
            full = one.batch(span)
            shards = [r.batch(span) for r in ranks]
            assert torch.equal(torch.cat([s.inputs for s in shards], dim=1), full.inputs)
            assert torch.equal(torch.cat([s.targets for s in shards], dim=1), full.targets)
            assert sum(s.num_tokens for s in shards) == full.num_tokens


def test_variable_bptt_plan_is_deterministic_per_seed_and_epoch() -> None:
    seqs = _ramp(4001)
    a = StreamBatches(seqs, columns=2, bptt=20, variable_bptt=True, seed=5)
    b = StreamBatches(seqs, columns=2, bptt=20, variable_bptt=True, seed=5)
    c = StreamBatches(seqs, columns=2, bptt=20, variable_bptt=True, seed=6)
    assert a.plan(0) == b.plan(0) and a.plan(3) == b.plan(3)
    assert a.plan(0) != a.plan(1)
    assert a.plan(0) != c.plan(0)
    plan = a.plan(0)
    lengths = [length for _, length in plan]
    assert sum(lengths) == a.inputs.size(0)
    assert [s for s, _ in plan] == [sum(lengths[:i]) for i in range(len(plan))]  # contiguous spans
    assert min(lengths[:-1]) >= 5 and len(set(lengths)) > 3
    assert 15 < sum(lengths) / len(lengths) < 22  # around bptt (5% of the time around bptt / 2)


def test_stream_too_short_or_indivisible() -> None:
    with pytest.raises(ValueError, match="too few"):
        StreamBatches([[1, 2, 3, 4]], columns=4, bptt=5)
    with pytest.raises(ValueError, match="not divisible"):
        StreamBatches(_ramp(100), columns=3, bptt=5, world=2)


# ----------------------------------------------------------------------------------------------------
# sentence batches


def _sentences(n: int = 40, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[Vocab.bos_id, *(rng.randrange(4, 30) for _ in range(rng.randrange(1, 12))), Vocab.eos_id]
            for _ in range(n)]


def test_pad_sentences_padding_lengths_and_ignored_targets() -> None:
    seqs = [[2, 10, 11, 3], [2, 12, 3], [2, 13, 14, 15, 16, 3]]
    batch = pad_sentences(seqs)
    assert batch.inputs.shape == batch.targets.shape == (5, 3)
    assert batch.lengths.tolist() == [3, 2, 5]
    assert not batch.carry_state
    for j, s in enumerate(seqs):
        n = len(s) - 1
        assert batch.inputs[:n, j].tolist() == s[:-1]
        assert batch.targets[:n, j].tolist() == s[1:]
        assert (batch.inputs[n:, j] == Vocab.pad_id).all()
        assert (batch.targets[n:, j] == IGNORE_INDEX).all()
    assert batch.num_tokens == 10 == int((batch.targets != IGNORE_INDEX).sum())


def test_sentence_plan_deterministic_and_each_sentence_once() -> None:
    seqs = _sentences(40)
    a, b = SentenceBatches(seqs, 4, seed=3), SentenceBatches(seqs, 4, seed=3)
    assert a.plan(0) == b.plan(0) and a.plan(2) == b.plan(2)
    assert a.plan(0) != a.plan(1)
    assert a.plan(0) != SentenceBatches(seqs, 4, seed=4).plan(0)
    for epoch in range(3):
        plan = a.plan(epoch)
        assert sorted(i for batch in plan for i in batch) == list(range(40))
        assert all(1 <= len(batch) <= 4 for batch in plan)
        # bucketed: sorted by length within the pool, so batches do not overlap in length
        spans = sorted((min(len(seqs[i]) for i in batch), max(len(seqs[i]) for i in batch)) for batch in plan)
        assert all(prev[1] <= nxt[0] for prev, nxt in zip(spans, spans[1:], strict=False))
    assert sum(a.batch(batch).num_tokens for batch in a.plan(0)) == a.num_tokens == sum(len(s) - 1 for s in seqs)
    unshuffled = SentenceBatches(seqs, 4, shuffle=False)
    assert unshuffled.plan(0) == unshuffled.plan(1)


def test_sentence_rank_shards_cover_the_global_batch() -> None:
    seqs = _sentences(41)
    one = SentenceBatches(seqs, 4, seed=1)
    ranks = [SentenceBatches(seqs, 4, seed=1, rank=r, world=2) for r in range(2)]
    plan = ranks[0].plan(0)
    assert plan == ranks[1].plan(0)
    assert plan == [b for b in one.plan(0) if len(b) >= 2]  # a 1-sentence batch cannot feed 2 ranks
    for indices in plan:
        shards = [r.batch(indices) for r in ranks]
        assert sum(s.num_tokens for s in shards) == one.batch(indices).num_tokens
        got = [s.inputs[: n, j].tolist() for s in shards for j, n in enumerate(s.lengths.tolist())]
        assert got == [seqs[i][:-1] for i in indices]


def test_windows_mode_has_last_only_targets() -> None:
    lines = ["a b c d", "e f"]
    tok, vocab = _vocab_for(lines)
    seqs = encode_lines(lines, tok, vocab, DataConfig(mode="windows", window=3))
    data = make_batches(seqs, "windows", batch_size=3, bptt=35, seed=0)
    assert isinstance(data, SentenceBatches) and data.num_tokens == len(seqs) == 5
    for indices in data.plan(0):
        batch = data.batch(indices)
        assert batch.inputs.shape == (3, len(indices))
        assert (batch.targets[:-1] == IGNORE_INDEX).all()
        assert batch.targets[-1].tolist() == [seqs[i][-1] for i in indices]
        assert batch.inputs.t().tolist() == [seqs[i][:3] for i in indices]
        assert batch.num_tokens == len(indices)


def test_make_batches_picks_the_batcher() -> None:
    assert isinstance(make_batches(_ramp(100), "stream", 2, 5), StreamBatches)
    sentences = make_batches(_sentences(5), "sentences", 2, 5)
    assert isinstance(sentences, SentenceBatches) and not sentences.last_only
    with pytest.raises(ValueError, match="no sentences"):
        make_batches([], "sentences", 2, 5)

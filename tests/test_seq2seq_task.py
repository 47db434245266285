"""The seq2seq task's own pieces: its config sections and their errors, how ``--data`` finds aligned files,
the toy data, the model directory's assets, and the Translator (input order and batching, OOV counts,
over-long input, evaluate's figures against the same metrics computed by hand, weight transfer from an LM).

Learning each decoder style, search equivalences and DDP are in tests/test_seq2seq_learning.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import sacrebleu
import torch
import torch.nn.functional as F

import rnnkit
from rnnkit.api import build_config
from rnnkit.config import load_config
from rnnkit.data import toy
from rnnkit.data.batching import pad
from rnnkit.data.pairs import ParallelText
from rnnkit.data.vocab import Vocab
from rnnkit.errors import RnnkitError
from rnnkit.tasks import seq2seq_config
from rnnkit.tasks.seq2seq import (
    SIDE_FILES,
    Seq2SeqTask,
    Translator,
    build_sides,
    decoding_metrics,
    find_aligned_splits,
    partner_name,
    toy_splits,
)

# a model that learns to reverse 3-10 digits in about a second on one core (train.lr 0.01 for a toy task)
TINY = ["model.cell=gru", "model.src_embedding_size=16", "model.trg_embedding_size=16", "model.hidden_size=48",
        "train.lr=0.01", "train.batch_size=32", "train.eval_batch_size=32", "train.epochs=6", "train.seed=5",
        "train.device=cpu", "train.threads=1", "train.progress=false", "train.log_every=0"]


@pytest.fixture(scope="module")
def reverser(tmp_path_factory: pytest.TempPathFactory) -> Translator:
    """A small attention model trained on the generated reverse task (source limit 10 tokens)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("reverser") / "model"
    return rnnkit.train("seq2seq", out=out, overrides=[*TINY, "data.toy=reverse", "data.toy_size=800",
                                                        "data.max_src_length=10", "train.epochs=4",
                                                        "train.batch_size=16"])


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("toy")
    toy.write_toy("reverse", out, n=200)
    return out


# ---------------------------------------------------------------------------------------------- config
def test_the_model_choices_are_those_the_modules_build() -> None:
    from rnnkit.nn.attention import SCORES
    from rnnkit.nn.decoders import STYLES
    from rnnkit.nn.encoder import BRIDGES
    from rnnkit.nn.rnn import CELLS

    assert (seq2seq_config.CELLS, seq2seq_config.DECODERS, seq2seq_config.SCORES, seq2seq_config.BRIDGES) == \
        (CELLS, STYLES, SCORES, BRIDGES)
    assert seq2seq_config.TOY_TASKS == tuple(toy.TASKS)


@pytest.mark.parametrize("overrides, key", [
    (["data.toy=shuffle"], "data.toy"),
    (["data.toy=reverse", "data.valid=x.tsv"], "leave out data.valid "),
    ([], "--data"),
    (["data.toy=copy", "data.max_pairs=100"], "data.max_pairs does nothing with data.toy"),
    (["data.train=x.tsv", "data.src=de"], "data.trg"),
    (["data.train=x.tsv", "data.src=de", "data.trg=de"], "data.src"),
    (["data.toy=copy", "data.split=middle"], "data.split"),
    (["data.toy=copy", "data.too_long=cut"], "data.too_long"),
    (["data.train=x.tsv", "data.valid_fraction=0.6", "data.test_fraction=0.5"], "must stay below 1"),
    (["data.toy=copy", "source.kind=bytes"], "source.kind"),
    (["data.toy=copy", "train.select=accuracy"], "train.select"),
    (["data.toy=copy", "train.batch_unit=pairs"], "train.batch_unit"),
    (["data.toy=copy", "train.bleu_tokenize=words"], "train.bleu_tokenize"),
    (["data.toy=copy", "model.decoder=state", "model.bridge=zero"], "model.bridge"),
    (["data.toy=copy", "model.bidirectional=true"], "model.bridge"),
    (["data.toy=copy", "model.tie_embeddings=true", "model.hidden_size=8"], "model.tie_embeddings"),
    (["data.toy=copy", "model.cell=transformer"], "model.cell"),
])
def test_a_config_no_run_can_use_is_one_error_naming_the_key(tmp_path: Path, overrides: list[str], key: str) -> None:
    with pytest.raises(RnnkitError, match=key):
        rnnkit.train("seq2seq", out=tmp_path / "m", overrides=[*TINY, *overrides])
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("item, key", [("train.label_smoothing=1.0", "train.label_smoothing"),
                                       ("train.valid_beam=0", "train.valid_beam"),
                                       ("model.hidden_size=0", "model.hidden_size"),
                                       ("data.toy_size=5", "data.toy_size"),
                                       ("train.bptt=20", "train.bptt")])
def test_ranges_and_keys_of_other_tasks_are_checked_when_the_config_loads(item: str, key: str) -> None:
    with pytest.raises(RnnkitError, match=f"'{key}'"):
        load_config(None, [item], {"task": "seq2seq"})


def test_seq2seq_defaults_of_the_shared_training_keys() -> None:
    cfg = load_config(None, None, {"task": "seq2seq"})
    assert (cfg.train.optimizer, cfg.train.lr, cfg.train.batch_size, cfg.train.select) == ("adam", 0.001, 64, "bleu")


def test_a_model_too_large_for_memory_is_refused_before_it_is_built(tmp_path: Path) -> None:
    with pytest.raises(RnnkitError, match="model.hidden_size"):
        rnnkit.train("seq2seq", out=tmp_path / "m", overrides=[*TINY, "data.toy=copy", "data.toy_size=100",
                                                               "model.hidden_size=300000"])


# ---------------------------------------------------------------------------------------------- --data
def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture()
def multi30k_like(tmp_path: Path) -> Path:
    for name in ("train", "val", "test_2016_flickr"):
        for lang, words in (("de", "ein hund"), ("en", "a dog"), ("fr", "un chien")):
            _write(tmp_path / f"{name}.{lang}", [words] * 4)
    return tmp_path


def test_a_folder_of_aligned_files_is_resolved_by_the_source_marker(multi30k_like: Path) -> None:
    cfg = build_config("seq2seq", None, str(multi30k_like), None, None, ["data.src=de", "data.trg=en"])
    assert (Path(cfg.data.train).name, Path(cfg.data.valid).name, Path(cfg.data.test).name) == \
        ("train.de", "val.de", "test_2016_flickr.de")
    # the recipe's markers count as the overrides' do
    recipe = _write(multi30k_like.parent / "r.yaml", ["task: seq2seq", "data:", "  src: fr", "  trg: en"])
    assert Path(build_config("seq2seq", str(recipe), str(multi30k_like), None, None, None).data.train).name == \
        "train.fr"


def test_a_folder_of_several_languages_without_markers_asks_for_them(multi30k_like: Path) -> None:
    with pytest.raises(RnnkitError, match="data.src"):
        build_config("seq2seq", None, str(multi30k_like), None, None, None)


def test_the_target_file_is_the_source_name_with_the_marker_replaced(tmp_path: Path) -> None:
    assert partner_name("train.de", "de", "en") == "train.en"
    assert partner_name("content-test.txt", "content", "title") == "title-test.txt"
    assert partner_name("test_2016_flickr.de.gz", "de", "en") == "test_2016_flickr.en.gz"
    assert partner_name("decode.txt", "de", "en") is None  # a marker is a whole name part
    _write(tmp_path / "content-train-sample.txt", ["a b c"])
    _write(tmp_path / "title-train-sample.txt", ["c b a"])
    _write(tmp_path / "content-test.txt", ["a b"])
    _write(tmp_path / "title-test.txt", ["b a"])
    _write(tmp_path / "vocab.txt", ["a"])
    found = find_aligned_splits(tmp_path, "content", "title")
    assert {split: Path(p).name for split, p in found.items()} == {"train": "content-train-sample.txt",
                                                                   "test": "content-test.txt"}


def test_aligned_data_paths_the_stem_the_source_file_and_what_is_missing(multi30k_like: Path) -> None:
    aligned = ["data.src=de", "data.trg=en"]
    stem = build_config("seq2seq", None, str(multi30k_like / "train"), None, None, aligned).data.train
    assert stem == str((multi30k_like / "train").resolve())
    source = build_config("seq2seq", None, str(multi30k_like / "val.de"), None, None, aligned).data.train
    assert Path(source).name == "val.de"
    (multi30k_like / "val.en").unlink()
    with pytest.raises(RnnkitError, match="val.en"):
        build_config("seq2seq", None, str(multi30k_like / "val.de"), None, None, aligned)
    with pytest.raises(RnnkitError, match="source marker 'de'"):
        build_config("seq2seq", None, str(multi30k_like / "train.fr"), None, None, aligned)
    with pytest.raises(RnnkitError, match="not found"):
        build_config("seq2seq", None, str(multi30k_like / "nothing"), None, None, aligned)


def test_toy_data_is_generated_in_memory_as_rnnkit_data_toy_writes_it(toy_dir: Path) -> None:
    cfg = load_config(None, ["data.toy=reverse", "data.toy_size=200"], {"task": "seq2seq"})
    parts = toy_splits(cfg.data)
    for part, split in zip(parts, toy.SPLITS, strict=True):
        written = (toy_dir / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
        assert [f"{s}\t{t}" for s, t in zip(part.sources, part.targets, strict=True)] == written


# ---------------------------------------------------------------------------------------------- the trained model
def test_training_writes_both_sides_assets_and_scores_the_test_split(reverser: Translator) -> None:
    names = {p.name for p in reverser.model_dir.iterdir()}
    assert {"src_vocab.json", "trg_vocab.json", "src_tokenizer.json", "trg_tokenizer.json"} <= names
    assert not names & {"src_spm.model", "trg_spm.model", "vocab.json", "tokenizer.json"}
    assert set(Seq2SeqTask.asset_files) == {n for files in SIDE_FILES.values() for n in files}
    assert json.loads((reverser.model_dir / "src_tokenizer.json").read_text())["kind"] == "word"
    assert set(reverser.results["test"]) == {"bleu", "chrf", "token_accuracy", "exact_match", "loss", "ppl",
                                             "sentences"}
    assert reverser.results["valid"]["exact_match"] > 0.25  # it learned something: the figures mean it
    loaded = rnnkit.load(reverser.model_dir)
    assert isinstance(loaded, Translator) and loaded.verb == "translate"


def test_translate_keeps_input_order_whatever_the_batching(reverser: Translator) -> None:
    texts = ["1 2 3", "4 5 6 7 8 9 0 1", "2 2", "", "7 3 5 1 9", "8 6 4 2 0 1 3 5 7 9"]
    one_by_one = [reverser.translate(t)[0] for t in texts]
    assert reverser.translate(texts, batch_size=2) == one_by_one == reverser.translate(texts, batch_size=64)
    assert one_by_one[3] == ""
    assert reverser.translate("1 2 3") == [one_by_one[0]]
    best = reverser.translate(texts, beam=4, n_best=3, batch_size=4)
    assert len(best) == len(texts) and all(len(b) == 3 for b in best)
    seen = []
    reverser.translate(texts, batch_size=2, on_progress=seen.append)
    assert seen == [2, 4, 5]  # the empty text is not decoded


def test_unknown_source_tokens_are_counted(reverser: Translator) -> None:
    reverser.translate(["1 x 2 y x", "3 4"])
    assert reverser.oov_counts == (3, 2)
    reverser.translate(["1 2"])
    assert reverser.oov_counts == (0, 0)


def test_an_over_long_input_is_an_error_naming_its_line_or_is_cut(reverser: Translator,
                                                                 capsys: pytest.CaptureFixture) -> None:
    long = " ".join("1234567890" + "12")
    with pytest.raises(RnnkitError, match="^input line 2: 12 tokens.*limit of 10"):
        reverser.translate(["1 2", long])
    with pytest.raises(RnnkitError, match="^in.txt:42: 12 tokens"):  # a file read in parts names its line
        reverser.translate([long], first_line=42, source="in.txt")
    assert reverser.translate(["1 2", long], truncate=True)[1] == reverser.translate(" ".join("1234567890"))[0]
    assert "input line 2: 12 tokens cut" in capsys.readouterr().err


def test_translate_arguments_are_checked(reverser: Translator) -> None:
    with pytest.raises(RnnkitError, match="n_best"):
        reverser.translate("1 2", beam=2, n_best=3)
    with pytest.raises(RnnkitError, match="beam"):
        reverser.translate("1 2", beam=2, temperature=0.5)
    with pytest.raises(RnnkitError, match="temperature"):
        reverser.translate("1 2", temperature=0)
    with pytest.raises(TypeError, match="texts"):
        reverser.translate([1, 2])
    sampled = [reverser.translate(["1 2 3"] * 3, temperature=2.0, seed=s) for s in (1, 1)]
    assert sampled[0] == sampled[1]


def test_a_search_too_long_or_too_large_for_memory_is_refused_before_it_runs(reverser: Translator) -> None:
    with pytest.raises(RnnkitError, match=r"max_length_extra 1000000000 allows outputs of 1,000,000,004 tokens, "
                                          r"more than the limit of 1,000,000: lower max_length_ratio"):
        reverser.translate("1 2 3", max_length_extra=10**9)
    with pytest.raises(RnnkitError, match=r"decoding 1 sentences x beam 1,000,000,000 over up to 15 steps.* lower "
                                          r"beam, batch_size or max_length_ratio / max_length_extra"):
        reverser.translate("1 2 3", beam=10**9)
    for alpha in (math.nan, -100.0, 1e6):  # NaN or overflowing scores: no hypothesis would be left
        with pytest.raises(RnnkitError, match=r"alpha \(the length penalty\) must be between 0 and 5, got"):
            reverser.translate("1 2 3", beam=2, alpha=alpha)
    assert len(reverser.translate("1 2 3", beam=2, alpha=5.0)) == 1
    with pytest.raises(RnnkitError, match=r"seed \(--seed\) must fit in 64 bits"):
        reverser.translate("1 2 3", temperature=0.5, seed=2**64)
    with pytest.raises(TypeError, match="on_progress must be a function"):
        reverser.translate("1 2 3", on_progress=5)
    with pytest.raises(RnnkitError, match="max_length_ratio must be >= 0 and finite, got inf"):
        reverser.translate("1 2 3", max_length_ratio=math.inf)


def test_attention_weights_are_one_row_per_output_token(reverser: Translator) -> None:
    source, output, weights = reverser.attention("1 2 3 4")
    assert source == ["1", "2", "3", "4"] and output[-1] == "<eos>"
    assert " ".join(output[:-1]) == reverser.translate("1 2 3 4")[0]
    assert len(weights) == len(output) and all(len(row) == 4 and math.isclose(sum(row), 1, rel_tol=1e-4)
                                                for row in weights)


def _by_hand(model: Translator, sources: list[str], references: list[str]) -> dict[str, float]:
    """The figures evaluate reports, computed here from translate() and the model's forward pass."""
    outputs = model.translate(sources)
    loss, tokens, correct, exact = 0.0, 0, 0, 0
    for source, reference, output in zip(sources, references, outputs, strict=True):
        src = torch.tensor(model.vocabs["src"].encode(source.split())).unsqueeze(1)
        target = model.vocabs["trg"].encode(reference.split())
        trg_in, _ = pad([[Vocab.bos_id, *target]], Vocab.pad_id)
        with torch.no_grad():
            logits = model.model(src, torch.tensor([src.size(0)]), trg_in)[:, 0]
        loss += float(F.cross_entropy(logits, torch.tensor([*target, Vocab.eos_id]), reduction="sum"))
        tokens += len(target) + 1
        words, ref_words = output.split(), reference.split()
        correct += sum(a == b for a, b in zip(words, ref_words, strict=False))
        exact += words == ref_words
    n_ref_tokens = sum(len(r.split()) for r in references)
    return {"bleu": sacrebleu.corpus_bleu(outputs, [references]).score,
            "chrf": sacrebleu.corpus_chrf(outputs, [references]).score,
            "token_accuracy": correct / n_ref_tokens, "exact_match": exact / len(sources),
            "loss": loss / tokens, "ppl": math.exp(loss / tokens), "sentences": float(len(sources))}


def test_evaluate_reports_the_figures_computed_by_hand(reverser: Translator, toy_dir: Path, tmp_path: Path) -> None:
    lines = (toy_dir / "test.tsv").read_text(encoding="utf-8").splitlines()
    # a source token outside the vocabulary and a reference the model cannot produce exactly
    lines += ["1 2 x 3\t3 x 2 1"]
    sources, references = zip(*(line.split("\t") for line in lines), strict=True)
    _write(tmp_path / "pairs.tsv", lines)
    expected = _by_hand(reverser, list(sources), list(references))
    got = reverser.evaluate(tmp_path / "pairs.tsv", batch_size=7)
    assert got == pytest.approx(expected, rel=1e-5)
    assert reverser.last_signatures["bleu"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert "chrF" in reverser.last_signatures["chrf"] or "nc:6" in reverser.last_signatures["chrf"]
    _write(tmp_path / "x.src", sources)
    _write(tmp_path / "x.ref", references)
    assert reverser.evaluate(src=tmp_path / "x.src", ref=tmp_path / "x.ref") == pytest.approx(got, rel=1e-6)
    sentences = reverser.evaluate(tmp_path / "pairs.tsv", max_lines=3)["sentences"]
    assert sentences == 3 and type(sentences) is int


def test_a_lowercased_target_is_scored_case_insensitively(tmp_path: Path) -> None:
    """A model that writes lower case is scored against its references with sacrebleu's ``lowercase``
    (signature case:lc), in validation and in evaluate; case-sensitive BLEU of its outputs would be 0."""
    letters = [source.translate(str.maketrans("0123456789", "abcdefghij"))
               for source, _ in toy.generate("copy", 400, seed=3)]
    for split, part in (("train", letters[:320]), ("valid", letters[320:])):
        _write(tmp_path / f"{split}.tsv", [f"{x}\t{x.upper()}" for x in part])
    model = rnnkit.train("seq2seq", data=str(tmp_path), out=tmp_path / "m", overrides=[
        *TINY, "target.lowercase=true", "train.epochs=3"])
    got = model.evaluate(tmp_path / "valid.tsv")
    assert "case:lc" in model.last_signatures["bleu"] and "case:lc" in model.last_signatures["chrf"]
    sources, references = letters[320:], [x.upper() for x in letters[320:]]
    outputs = model.translate(sources)
    assert got["bleu"] == pytest.approx(sacrebleu.corpus_bleu(outputs, [references], lowercase=True).score)
    assert got["bleu"] > 0 and sacrebleu.corpus_bleu(outputs, [references]).score == 0
    assert model.results["valid"]["bleu"] == pytest.approx(got["bleu"])  # validation scored the same way
    # source.lowercase with target.shared: one lower-casing tokenizer for both sides
    cfg = load_config(None, ["source.lowercase=true", "target.shared=true"], {"task": "seq2seq"})
    text = ParallelText(["a B"], ["C d"], [1], "x", "x")
    tokenizers, _ = build_sides(cfg, text)
    _, signatures = decoding_metrics([["c", "d"]], text, tokenizers["trg"], "13a")
    assert "case:lc" in signatures["bleu"] and "case:lc" in signatures["chrf"]


def test_evaluate_needs_data_or_both_aligned_files(reverser: Translator, toy_dir: Path) -> None:
    with pytest.raises(RnnkitError, match="--src and --ref"):
        reverser.evaluate(src=toy_dir / "test.tsv")
    with pytest.raises(RnnkitError, match="not both"):
        reverser.evaluate(toy_dir / "test.tsv", src=toy_dir / "a", ref=toy_dir / "b")
    with pytest.raises(RnnkitError, match="not both"):
        reverser.evaluate()


def test_attention_of_a_model_without_it_is_an_error(tmp_path: Path) -> None:
    model = rnnkit.train("seq2seq", out=tmp_path / "m", overrides=[
        *TINY, "data.toy=copy", "data.toy_size=100", "train.epochs=1", "model.decoder=state", "train.select=loss"])
    assert set(model.results["valid"]) == {"loss", "ppl"}  # selected by loss: no decoding during training
    with pytest.raises(RnnkitError, match="no attention"):
        model.attention("1 2 3")


def test_a_toy_recipe_given_data_reads_the_data(toy_dir: Path, tmp_path: Path) -> None:
    model = rnnkit.train("seq2seq", data=str(toy_dir), out=tmp_path / "m", overrides=[
        *TINY, "data.toy=sort", "train.epochs=1"])
    assert model.config.data.train.endswith("train.tsv")
    assert model.results["test"]["sentences"] == 20  # toy_dir's test.tsv, not a generated sort task


def test_sentencepiece_sides_and_a_folder_of_tsv_files(toy_dir: Path, tmp_path: Path) -> None:
    pig = tmp_path / "pig"
    toy.write_toy("pig-latin", pig, n=300)
    for split in toy.SPLITS:  # letters joined into words: sentencepiece has pieces to find
        lines = (pig / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
        _write(pig / f"{split}.tsv", ["\t".join(side.replace(" ", "") for side in line.split("\t"))
                                      for line in lines])
    sides = [f"{side}.{key}" for side in ("source", "target") for key in ("kind=sentencepiece", "vocab_size=40")]
    model = rnnkit.train("seq2seq", data=str(pig), out=tmp_path / "m", overrides=[*TINY, *sides,
                                                                                  "train.epochs=1"])
    assert (tmp_path / "m" / "src_spm.model").is_file() and (tmp_path / "m" / "trg_spm.model").is_file()
    assert isinstance(rnnkit.load(tmp_path / "m").translate("strong")[0], str)
    assert model.config.data.test.endswith("test.tsv") and "test" in model.results


def test_one_shared_tokenizer_and_vocabulary_serves_both_sides(tmp_path: Path) -> None:
    model = rnnkit.train("seq2seq", out=tmp_path / "m", overrides=[
        *TINY, "data.toy=digits-to-words", "data.toy_size=100", "train.epochs=1", "target.shared=true"])
    src, trg = (json.loads((tmp_path / "m" / f"{side}_vocab.json").read_text()) for side in ("src", "trg"))
    assert src == trg and {"7", "seven"} <= set(src)
    assert model.vocabs["src"].itos == model.vocabs["trg"].itos
    with pytest.raises(RnnkitError, match="target.kind does nothing with target.shared"):
        rnnkit.train("seq2seq", out=tmp_path / "n", overrides=[*TINY, "data.toy=copy", "target.shared=true",
                                                               "target.kind=char"])


def test_an_lm_initialises_the_decoder_through_init_prefix(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    targets = [t for _, t in toy.generate("reverse", 300)]
    _write(tmp_path / "lm.txt", targets)
    lm = rnnkit.train("lm", data=str(tmp_path / "lm.txt"), out=tmp_path / "lm", overrides=[
        "model.embedding_size=16", "model.hidden_size=48", "model.layers=1", "train.epochs=1",
        "train.progress=false", "train.device=cpu", "tokenizer.kind=word", "train.batch_size=4"])
    capsys.readouterr()
    model = rnnkit.train("seq2seq", out=tmp_path / "s2s", init_from=tmp_path / "lm", init_prefix="decoder",
                         overrides=[*TINY, "data.toy=reverse", "data.toy_size=300", "model.cell=lstm",
                                    "model.decoder=state", "train.epochs=1", "train.max_steps=1", "train.lr=0"])
    report = capsys.readouterr().out
    assert "decoder.rnns.0.weight_ih_l0" in report and "decoder.embedding.weight" in report
    lm_weights = lm.model.state_dict()
    assert torch.equal(model.model.decoder.rnns[0].weight_hh_l0, lm_weights["rnns.0.weight_hh_l0"])
    digit = lm.vocab.stoi["7"]
    assert torch.equal(model.model.decoder.embedding.weight[model.vocabs["trg"].stoi["7"]],
                       lm_weights["embedding.weight"][digit])
    # without the prefix nothing has a name of the new model: one error, suggesting the prefixes that fit
    with pytest.raises(RnnkitError, match=r"--init-from copies nothing of this model into the new one \(none of its "
                                          r"tensor names is one of the new model's\): give --init-prefix decoder or "
                                          r"encoder"):
        rnnkit.train("seq2seq", out=tmp_path / "none", init_from=tmp_path / "lm",
                     overrides=[*TINY, "data.toy=reverse", "data.toy_size=300", "train.epochs=1"])
    # and the other way: a seq2seq model's parts fit no part of an LM
    with pytest.raises(RnnkitError, match=r"copies nothing .*no --init-prefix fits it either \(its parts: decoder, "
                                          r"encoder; the new model's: embedding, output, rnns\)"):
        rnnkit.train("lm", data=str(tmp_path / "lm.txt"), out=tmp_path / "lm2", init_from=tmp_path / "s2s",
                     overrides=["model.embedding_size=16", "model.hidden_size=16", "train.epochs=1",
                                "train.device=cpu", "tokenizer.kind=word"])
    assert not (tmp_path / "none").exists() and not (tmp_path / "lm2").exists()


def test_a_resume_adds_a_test_set_named_by_its_stem(multi30k_like: Path, tmp_path: Path) -> None:
    """review6 finding 3: --test DIR/test_2016_flickr (the stem of .de + .en) joins a run on resume, as --data,
    --valid and a new run's --test take it; a stem that names nothing is still refused."""
    out = tmp_path / "m"
    aligned = ["data.src=de", "data.trg=en", *TINY, "train.max_steps=2"]
    rnnkit.train("seq2seq", data=str(multi30k_like / "train"), valid=str(multi30k_like / "val"), out=out,
                 overrides=aligned)
    with pytest.raises(RnnkitError, match="test file not found"):
        rnnkit.train("seq2seq", out=out, resume=True, test=str(multi30k_like / "nothing"))
    model = rnnkit.train("seq2seq", out=out, resume=True, test=str(multi30k_like / "test_2016_flickr"))
    assert "test" in model.results

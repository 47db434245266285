"""Sequence classification: readers of every format, the classifier learning what only a recurrent model can
(and the bag of embeddings failing it), padding and batch invariance, --init-from an LM, save/load, exact
resume, and the CLI verbs (train classify, classify, evaluate)."""

from __future__ import annotations

import gzip
import importlib
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import rnnkit
from conftest import assert_same_run, corpus_lines, read_log, write_lines
from rnnkit import transfer
from rnnkit.cli import main
from rnnkit.config import load_config
from rnnkit.data.batching import pad
from rnnkit.data.labelled import (
    ReadOptions,
    clean_text,
    label_set,
    read_examples,
    read_idx,
    split_examples,
    truncate,
    warp_randomly,
)
from rnnkit.distributed import DistInfo
from rnnkit.errors import RnnkitError
from rnnkit.models.classifier import SequenceClassifier, pool, top_state
from rnnkit.nn import stack
from rnnkit.tasks import classify
from rnnkit.tasks.classify import Classifier, ClassifyTask
from rnnkit.tasks.classify_config import ClassifyModel

pytestmark = pytest.mark.usefixtures("no_curves")

FILLER = ["a", "b", "c", "d", "e", "f"]


# ------------------------------------------------------------------ synthetic tasks
def order_ids(n: int, seed: int, shortest: int = 3,
              longest: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """"Does token 2 come before token 3?": both occur once among filler ids 4..9 (``shortest`` to ``longest``
    tokens). The same tokens in the other order have the other label, so a model blind to order is at chance."""
    rng = random.Random(seed)
    seqs, labels = [], []
    for _ in range(n):
        length = rng.randint(shortest, longest)
        tokens = [rng.randint(4, 9) for _ in range(length)]
        i, j = rng.sample(range(length), 2)
        tokens[i], tokens[j] = 2, 3
        seqs.append(tokens)
        labels.append(int(i < j))
    x, lengths = pad(seqs, 0)
    return x, lengths, torch.tensor(labels)


def order_texts(n: int, seed: int) -> list[dict]:
    """The same task as JSONL records: "x" before "y" is label "xy", else "yx"."""
    x, lengths, y = order_ids(n, seed)
    words = ["<pad>", "", "x", "y", *FILLER]
    return [{"text": " ".join(words[t] for t in x[: lengths[b], b].tolist()), "label": ["yx", "xy"][y[b]]}
            for b in range(n)]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def fit(model: torch.nn.Module, x: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor, steps: int = 150,
        lr: float = 0.02) -> None:
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for step in range(steps):
        rows = torch.randint(0, len(y), (64,), generator=torch.Generator().manual_seed(step))
        steps_here = int(lengths[rows].max())
        loss = F.cross_entropy(model(x[:steps_here, rows], lengths[rows]), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor) -> float:
    return (model(x, lengths).argmax(-1) == y).float().mean().item()


def text_model(**keys) -> SequenceClassifier:
    torch.manual_seed(0)
    return SequenceClassifier(ClassifyModel(**{"embedding_size": 8, "hidden_size": 16, **keys}), 2, vocab_size=10)


ENCODERS = ["rnn_tanh", "gru", "lstm"]
POOLINGS = ["last", "mean", "max", "attention", "concat"]


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("encoder", ENCODERS)
def test_each_recurrent_encoder_and_pooling_learns_which_token_comes_first(encoder: str, pooling: str) -> None:
    model = text_model(encoder=encoder, pooling=pooling)
    fit(model, *order_ids(512, 1))
    assert accuracy(model, *order_ids(400, 2)) > 0.95


@pytest.mark.parametrize("pooling", ["mean", "max", "attention"])
def test_a_bag_of_embeddings_cannot_learn_the_order(pooling: str) -> None:
    model = text_model(encoder="bag", pooling=pooling)
    x, lengths, y = order_ids(512, 1)
    fit(model, x, lengths, y)
    assert accuracy(model, *order_ids(400, 2)) < 0.6  # chance: the bag of x before y is that of y before x


def test_stacked_bidirectional_encoders_learn_the_order_too() -> None:
    model = text_model(encoder="gru", layers=2, bidirectional=True, pooling="last")
    fit(model, *order_ids(512, 1))
    assert accuracy(model, *order_ids(400, 2)) > 0.95


@pytest.mark.parametrize(("encoder", "pooling"), [("lstm", "last"), ("gru", "concat")])
def test_training_with_weight_drop_still_solves_the_order_task(encoder: str, pooling: str) -> None:
    """A learning test only: DropConnect 0.3 leaves the task learnable. That the masks are drawn at all is
    test_weight_drop_drops_recurrent_weights_in_training_only_one_mask_a_batch's."""
    model = text_model(encoder=encoder, pooling=pooling, weight_drop=0.3)
    fit(model, *order_ids(512, 1))
    assert accuracy(model, *order_ids(400, 2)) > 0.95


def parity_features(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Numeric sequences of 1-6 bits (one feature per step); the label is their parity."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 7, (n,), generator=g)
    bits = torch.randint(0, 2, (6, n), generator=g).float()
    bits[torch.arange(6).unsqueeze(1) >= lengths] = 0.0
    return bits.unsqueeze(-1), lengths, bits.sum(0).long() % 2


def test_a_numeric_lstm_learns_parity_through_a_linear_input_layer() -> None:
    torch.manual_seed(0)
    model = SequenceClassifier(ClassifyModel(encoder="lstm", embedding_size=8, hidden_size=16), 2, features=1)
    fit(model, *parity_features(512, 1), steps=300)
    assert accuracy(model, *parity_features(400, 2)) > 0.95
    assert "encoder.input.weight" in dict(model.named_parameters()) and model.vocab_parameters() == {
        "head.output.weight": "labels", "head.output.bias": "labels"}  # no token rows: only the classes' rows


# lengths (shortest, longest) of the invariance batches: under no_grad an LSTM on a CPU runs 3-8 packed (6 lengths
# over 8 steps: too many short segments) and 5-9 in length segments (the first, whole-batch one covers half the steps)
SPANS = {"packed": (3, 8), "segments": (5, 9)}


@pytest.mark.parametrize("span", SPANS)
@pytest.mark.parametrize("encoder, bidirectional, pooling", [
    (e, bi, p) for e, bi in [("rnn_tanh", False), ("gru", True), ("lstm", False), ("lstm", True), ("bag", False)]
    for p in POOLINGS if not (e == "bag" and p in ("last", "concat"))])  # a bag has no last state
def test_predictions_do_not_change_with_padding_or_batch_composition(encoder: str, bidirectional: bool, pooling: str,
                                                                    span: str, stack_calls) -> None:
    model = text_model(encoder=encoder, pooling=pooling, bidirectional=bidirectional,
                       layers=2 if bidirectional else 1).eval()
    x, lengths, _ = order_ids(12, 3, *SPANS[span])
    with torch.no_grad():
        batched = model(x, lengths)
        padded = model(torch.cat([x, torch.full((5, x.size(1)), 7)]), lengths)  # more padding, not zeros
        alone = torch.cat([model(x[: lengths[b], b: b + 1], lengths[b: b + 1]) for b in range(len(lengths))])
        shuffled = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(0))
        regrouped = model(x[:, shuffled], lengths[shuffled])[shuffled.argsort()]
    for other in (padded, alone, regrouped):
        torch.testing.assert_close(other, batched, atol=1e-5, rtol=1e-5)
    # the three padded batches took the path the case names (GRU / plain RNN: packed without gradients); alone:
    # unpadded
    path = "packed" if encoder != "lstm" else span
    assert [call.path for call in stack_calls] == ([] if encoder == "bag" else [path] * 3)


@pytest.mark.parametrize("span", SPANS)
@pytest.mark.parametrize(("encoder", "bidirectional"), [("lstm", False), ("lstm", True), ("gru", True)])
def test_weight_drop_drops_recurrent_weights_in_training_only_one_mask_a_batch(
        encoder: str, bidirectional: bool, span: str, stack_calls, monkeypatch) -> None:
    keys = {"encoder": encoder, "bidirectional": bidirectional, "pooling": "concat"}
    dropped, plain = text_model(weight_drop=0.5, **keys), text_model(**keys)
    weights = {name: p.detach().clone() for name, p in dropped.named_parameters()}
    assert all(torch.equal(weights[name], p) for name, p in plain.named_parameters())  # the same model, but the key
    x, lengths, _ = order_ids(12, 3, *SPANS[span])
    with torch.no_grad():
        assert torch.equal(dropped.eval()(x, lengths), plain.eval()(x, lengths))  # evaluation drops nothing
    dropped.train(), plain.train()
    torch.manual_seed(1)
    out = dropped(x, lengths)
    assert not torch.allclose(out, plain(x, lengths), atol=1e-3)
    out.sum().backward()
    assert all(torch.equal(weights[name], p) for name, p in dropped.named_parameters())  # no mask written back
    rnn = dropped.encoder.rnns[0]
    for name in ["weight_hh_l0", *(["weight_hh_l0_reverse"] if bidirectional else [])]:
        assert getattr(rnn, name).grad.abs().sum() > 0
    # the other padded path (length segments <-> packed) with the same seed drops the same weights: one mask per
    # layer and direction for the whole batch, not one per segment
    use_segments = stack.use_segments
    monkeypatch.setattr(stack, "use_segments", lambda *args: not use_segments(*args))
    torch.manual_seed(1)
    torch.testing.assert_close(dropped(x, lengths), out, atol=1e-5, rtol=1e-5)
    assert {call.path for call in stack_calls if call.grad} == {"packed", "segments"}


@pytest.mark.parametrize("keys", [{"joint": "lm"}, {"joint": "reconstruct"}, {"features": 3}])
def test_weight_drop_reaches_joint_and_numeric_encoders(keys: dict) -> None:
    """The auxiliary objectives read the dropped encoder; numeric batches without padding run it unpacked."""
    keys = dict(keys)  # the parametrize dict itself is shared by reruns of the case
    features = keys.pop("features", 0)
    twins = []
    for weight_drop in (0.5, 0.0):
        torch.manual_seed(0)
        twins.append(SequenceClassifier(ClassifyModel(embedding_size=0 if features else 8, hidden_size=16,
                                                      weight_drop=weight_drop, **keys), 2, 10, features).train())
    x = torch.randn(6, 4, features) if features else order_ids(4, 5, 6, 6)[0]
    lengths = torch.full((4,), 6)
    outputs = []
    for model in twins:
        torch.manual_seed(1)
        out = model(x, lengths, auxiliary=True)[1] if not features else model(x, lengths)
        outputs.append(out.sum())
    assert not torch.allclose(*outputs)
    outputs[0].backward()
    assert twins[0].encoder.rnns[0].weight_hh_l0.grad.abs().sum() > 0


def test_a_bag_of_embeddings_refuses_weight_drop() -> None:
    with pytest.raises(ValueError, match="^model.weight_drop 0.3: a bag of embeddings has no recurrent weights"):
        text_model(encoder="bag", pooling="mean", weight_drop=0.3)


@pytest.mark.parametrize(("encoder", "bidirectional"), [("gru", False), ("lstm", True)])
def test_concat_pooling_is_the_last_state_mean_and_max_of_the_valid_steps_side_by_side(encoder: str,
                                                                                      bidirectional: bool) -> None:
    model = text_model(encoder=encoder, pooling="concat", bidirectional=bidirectional).eval()
    x, lengths, _ = order_ids(6, 4)
    x = torch.cat([x, torch.full((3, x.size(1)), 7)])  # padding of real tokens: only masking keeps it out
    padding = torch.arange(x.size(0)).unsqueeze(1) >= lengths.unsqueeze(0)
    with torch.no_grad():
        encoded = model.encoder(x, lengths)
        final = top_state(encoded)
        concat = pool("concat", encoded.outputs, final, padding, lengths, None)
        parts = [pool(kind, encoded.outputs, final, padding, lengths, None) for kind in ("last", "mean", "max")]
        torch.testing.assert_close(concat, torch.cat(parts, -1), atol=0, rtol=0)
        torch.testing.assert_close(model(x, lengths), model.head(concat))
    width = 32 if bidirectional else 16
    assert concat.shape == (6, 3 * width) and model.head.output.in_features == 3 * width
    for b, length in enumerate(lengths.tolist()):  # each part from this example's valid steps alone
        steps = encoded.outputs[:length, b]
        # the last state: forward at the last valid step, backward (the second half) at the first
        last = torch.cat([steps[-1, :16], steps[0, 16:]]) if bidirectional else steps[-1]
        torch.testing.assert_close(concat[b], torch.cat([last, steps.mean(0), steps.max(0).values]))
    assert model.pooling_description() == f"concat pooling (last, mean, max: {3 * width} wide)"
    assert text_model(pooling="max").pooling_description() == "max pooling"


@pytest.mark.parametrize("pooling", ["last", "concat"])
def test_a_bag_of_embeddings_refuses_the_poolings_of_a_last_state(pooling: str) -> None:
    with pytest.raises(ValueError, match="^model.pooling: a bag of embeddings has no last state"):
        text_model(encoder="bag", pooling=pooling)


def test_the_parameter_names_are_the_shared_ones() -> None:
    names = set(dict(text_model(encoder="lstm", layers=2, pooling="attention", head_hidden=4).named_parameters()))
    assert {"encoder.embedding.weight", "encoder.rnns.0.weight_ih_l0", "encoder.rnns.1.weight_hh_l0",
            "pool.project.weight", "pool.score.weight", "head.hidden.weight", "head.output.bias"} <= names
    assert text_model().vocab_parameters() == {"encoder.embedding.weight": "vocab", "head.output.weight": "labels",
                                               "head.output.bias": "labels"}
    with pytest.raises(ValueError, match="a bag of embeddings has no last state"):
        text_model(encoder="bag", pooling="last")


# ------------------------------------------------------------------ readers
def test_jsonl_reading_strips_markup_and_keeps_string_and_number_labels(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write('{"text": "Great film.<br /><br />Loved it", "label": 1}\n\n{"text": "bad", "label": "0"}\n')
    examples = read_examples(path)
    assert examples.texts == ["Great film. Loved it", "bad"] and examples.labels == ["1", "0"]
    assert examples.where == [(str(path), 1), (str(path), 3)]
    assert read_examples(path, ReadOptions(strip_markup=False)).texts[0] == "Great film.<br /><br />Loved it"
    assert label_set(["10", "9", "1"]) == ["1", "9", "10"] and label_set(["pos", "neg"]) == ["neg", "pos"]


def test_csv_and_tsv_columns_are_named_by_the_header(tmp_path: Path) -> None:
    csv_path = write_lines(tmp_path / "r.csv", ['id,review,stars', '1,"good, really",5', '2,awful,1'])
    examples = read_examples(csv_path, ReadOptions(text_field="review", label_field="stars"))
    assert examples.texts == ["good, really", "awful"] and examples.labels == ["5", "1"]
    assert examples.where[1] == (str(csv_path), 3)
    tsv_path = write_lines(tmp_path / "r.tsv", ["label\ttext", "pos\tnice one", "neg\tno"])
    assert read_examples(tsv_path).labels == ["pos", "neg"]
    with pytest.raises(RnnkitError, match=r"r\.csv:1: the header has no column 'text'"):
        read_examples(csv_path)


def test_a_column_named_twice_is_an_error_only_where_it_is_read(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "r.csv", ["id,text,id,label,label", "1,good,2,pos,x", "3,bad,4,neg,y"])
    assert read_examples(path, labelled=False).texts == ["good", "bad"]  # neither id nor label is read
    with pytest.raises(RnnkitError, match=r"r\.csv:1: the header names the column 'label' twice \(columns 4 and 5"):
        read_examples(path)


def test_a_quote_left_open_is_named_on_its_own_line_not_its_rows_first(tmp_path: Path) -> None:
    # the row starts on line 2 (a closed quoted field spans lines 2-3); the third field's quote opens on line 3
    path = write_lines(tmp_path / "r.csv", ["text,label,note", '"a', 'b",xy,"open', "more"])
    with pytest.raises(RnnkitError, match=r"r\.csv:3: a quoted field opened on this line runs to the end of the "
                                          r"file \(line 4\)"):
        read_examples(path)
    ends_in_a_line_break = write_lines(tmp_path / "ok.csv", ["text,label", '"a', '",xy', "b,yx"])  # closed: fine
    assert read_examples(ends_in_a_line_break).texts == ["a", "b"]


def test_a_folder_per_class_is_the_acl_imdb_layout(tmp_path: Path) -> None:
    for label, texts in (("neg", ["bad.", "worse"]), ("pos", ["fine<br />film"])):
        for k, text in enumerate(texts):
            write_lines(tmp_path / "train" / label / f"{k}_1.txt", [text])
    examples = read_examples(tmp_path / "train")
    assert examples.labels == ["neg", "neg", "pos"] and examples.texts[2] == "fine film"


def write_idx(path: Path, array: np.ndarray, dtype_code: int = 0x08, cut: int = 0) -> Path:
    header = bytes([0, 0, dtype_code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(">u1").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(data[: len(data) - cut])
    return path


def test_idx_images_are_sequences_of_rows_scaled_to_one(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    path = write_idx(tmp_path / "t-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t-labels-idx1-ubyte.gz", np.array([7, 2], dtype=np.uint8))
    examples = read_examples(path)
    assert examples.features.shape == (2, 3, 4) and examples.labels == ["7", "2"]
    np.testing.assert_allclose(examples.features, images / 255.0, rtol=1e-6)
    assert list(examples.lengths) == [3, 3]
    np.testing.assert_array_equal(read_idx(path, "images"), images)


def test_idx_labels_are_found_beside_kaggle_style_names(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-labels.idx1-ubyte.gz", np.array([3, 1], dtype=np.uint8))
    images = write_idx(tmp_path / "train-images.idx3-ubyte.gz", np.zeros((2, 3, 4), dtype=np.uint8))
    assert read_examples(images).labels == ["3", "1"]


def test_npz_sequences_with_lengths_and_truncation(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(3, 5, 2)).astype(np.float32)
    np.savez(tmp_path / "s.npz", X=x, y=np.array(["a", "b", "a"]), lengths=np.array([5, 2, 3]))
    examples = read_examples(tmp_path / "s.npz")
    assert examples.labels == ["a", "b", "a"] and list(examples.lengths) == [5, 2, 3]
    assert truncate([1, 2, 3, 4], 2, "post") == [1, 2] and truncate([1, 2, 3, 4], 2, "pre") == [3, 4]
    assert clean_text("a <b>bold</b>\nline", True) == "a bold line"


def test_nan_or_inf_in_an_npz_file_and_in_api_inputs_is_one_check(tmp_path: Path) -> None:
    from rnnkit.data.labelled import check_finite

    x = np.zeros((3, 2, 1), dtype=np.float32)
    x[2, 1, 0] = np.nan
    np.savez(tmp_path / "s.npz", X=x, y=np.array(["a", "b", "a"]))
    message = "holds a value that is not finite (nan or inf)"
    with pytest.raises(RnnkitError) as read:
        read_examples(tmp_path / "s.npz")
    assert str(read.value) == f"{tmp_path / 's.npz'}: X row 2 {message}"
    with pytest.raises(RnnkitError) as given:
        classify._input_examples([row[:1] for row in x[:2]] + [x[2]], numeric=True)  # (ragged, as classify takes)
    assert str(given.value) == f"<input>: input 3 {message}"
    assert classify.check_finite is check_finite  # the reader's check, not a copy of it


def shifted_by(x: torch.Tensor, length: int, step: int, feature: int) -> torch.Tensor:
    """One example (T, F) moved by ``step`` steps and ``feature`` features within its first ``length`` steps."""
    out = torch.zeros_like(x)
    for t in range(length):
        for f in range(x.shape[1]):
            if 0 <= t - step < length and 0 <= f - feature < x.shape[1]:
                out[t, f] = x[t - step, f - feature]
    return out


def test_augment_shift_translates_each_example_within_its_valid_steps() -> None:
    torch.manual_seed(0)
    lengths = torch.randint(1, 6, (40,))
    x = torch.rand(5, 40, 4) + 1
    x[torch.arange(5).unsqueeze(1) >= lengths] = 0.0
    moved = warp_randomly(x, lengths, 2)
    offsets = set()
    for b, length in enumerate(lengths.tolist()):
        fits = [(s, f) for s in range(-2, 3) for f in range(-2, 3)
                if torch.allclose(moved[:, b], shifted_by(x[:, b], length, s, f), atol=1e-5)]
        assert fits, f"example {b} is not a translation of its input"
        offsets.add(fits[0])
    assert len(offsets) > 5  # each example draws its own offsets


def test_augment_rotate_and_scale_turn_and_zoom_about_each_examples_centre() -> None:
    torch.manual_seed(0)
    x = torch.zeros(7, 30, 5)
    lengths = torch.tensor([5, 7] * 15)
    centres = lengths // 2
    x[centres, torch.arange(30), 2] = 1.0  # a dot at the centre of each example's valid plane
    x[0, torch.arange(30), 2] = 0.5  # and one at the top edge's middle
    moved = warp_randomly(x, lengths, 0, rotate=30)
    assert torch.allclose(moved[centres, torch.arange(30), 2], torch.ones(30))  # the centre stays
    assert not torch.allclose(moved[0, :, 2], x[0, :, 2])  # the edge dot turns away
    assert (moved[5:, ::2] == 0).all()  # the 5-step examples' padding stays padding
    zoomed = warp_randomly(x, lengths, 0, scale=0.5)
    assert torch.allclose(zoomed[centres, torch.arange(30), 2], torch.ones(30)) and not torch.equal(zoomed, x)


def test_augment_shift_moves_the_training_batches_only(tmp_path: Path, monkeypatch) -> None:
    import rnnkit.tasks.classify as classify_module

    x, lengths, y = parity_features(64, 1)
    np.savez(tmp_path / "t.npz", X=x.transpose(0, 1).numpy(), y=y.numpy(), lengths=lengths.numpy())
    moved = []
    monkeypatch.setattr(classify_module, "warp_randomly", lambda inputs, lens, *how: (
        moved.append((inputs.shape[1], *how)), warp_randomly(inputs, lens, *how))[1])
    model = rnnkit.train("classify", data=str(tmp_path / "t.npz"), out=tmp_path / "m",
                         overrides=[*CLS, "train.epochs=1", "train.batch_size=16", "model.embedding_size=0",
                                    "data.valid_fraction=0.25", "data.augment_shift=1", "data.augment_rotate=10"])
    assert moved == [(16, 1, 10.0, 0.0)] * 3  # 48 training examples, 16 a batch; validation is not moved
    assert model.config.data.augment_rotate == 10


def test_random_and_tail_splits_hold_out_the_asked_shares(tmp_path: Path) -> None:
    examples = read_examples(write_jsonl(tmp_path / "d.jsonl", order_texts(100, 0)))
    train, valid, test = split_examples(examples, 0.1, 0.2, "tail")
    assert (len(train), len(valid), len(test)) == (70, 10, 20) and test.where[0][1] == 81
    train, valid, test = split_examples(examples, 0.1, 0.2, "random", seed=1)
    lines = {w[1] for part in (train, valid, test) for w in part.where}
    assert len(lines) == 100 and test.where[0][1] != 81


# ------------------------------------------------------------------ training, loading, resuming
CLS = ["model.embedding_size=8", "model.hidden_size=16", "train.lr=0.02", "train.batch_size=32", "train.epochs=3",
       "train.progress=false", "train.device=cpu", "train.log_every=4", "train.seed=5", "train.eval_batch_size=64"]


@pytest.fixture
def order_data(tmp_path: Path) -> tuple[Path, Path]:
    return (write_jsonl(tmp_path / "data" / "train.jsonl", order_texts(600, 1)),
            write_jsonl(tmp_path / "data" / "valid.jsonl", order_texts(150, 2)))


@pytest.mark.parametrize("pooling", ["last", "concat"])
def test_a_classifier_trains_selects_by_accuracy_saves_and_loads(tmp_path: Path, order_data, pooling: str) -> None:
    train, valid = order_data
    model = rnnkit.train("classify", data=str(train), valid=str(valid), test=str(valid), out=tmp_path / "m",
                         overrides=[*CLS, f"model.pooling={pooling}"])
    assert isinstance(model, Classifier) and model.results["valid"]["accuracy"] > 0.9
    assert model.results["test"]["accuracy"] == pytest.approx(model.results["valid"]["accuracy"])
    rows = [r for r in read_log(tmp_path / "m") if r["split"] == "valid"]
    assert {"accuracy", "macro_f1"} <= set(rows[0])
    assert json.loads((tmp_path / "m" / "labels.json").read_text()) == ["xy", "yx"]
    loaded = rnnkit.load(tmp_path / "m")
    width = {"last": 16, "concat": 3 * 16}[pooling]  # the head reads the pooled vector
    assert loaded.config.model.pooling == pooling and loaded.model.head.output.in_features == width
    texts = ["a x b y", "a y b x", "y c d e x"]
    assert loaded.classify(texts) == model.classify(texts) == ["xy", "yx", "yx"] and loaded.classify([]) == []
    probs = loaded.classify(texts, probs=True)
    assert probs == model.classify(texts, probs=True)
    assert set(probs[0]) == {"xy", "yx"} and probs[0]["xy"] > 0.5 and sum(probs[0].values()) == pytest.approx(1)
    metrics = loaded.evaluate(valid)
    assert metrics["accuracy"] == pytest.approx(model.results["valid"]["accuracy"])
    assert {"macro_f1", "loss", "precision/xy", "recall/yx", "f1/xy"} <= set(metrics)
    assert sum(map(sum, loaded.last_report.confusion)) == 150


@pytest.mark.parametrize("encoder, path", [
    ("lstm", "padded batches in length segments (oneDNN or ATen per segment, the faster for its length; packed, "
             "ATen's C++ loop, when too many lengths differ)"),
    ("gru", "padded batches in length segments on ATen's C++ loop when training on 16 steps or more; else packed "
            "by length (the same loop)")])
def test_the_run_description_says_how_padded_text_batches_run(tmp_path: Path, order_data, capsys, encoder: str,
                                                              path: str) -> None:
    rnnkit.train("classify", data=str(order_data[0]), out=tmp_path / "m",
                 overrides=[*CLS, "train.max_steps=1", "train.progress=true", f"model.encoder={encoder}"])
    name = encoder.upper()
    assert f"; 1 x torch.nn.{name} ({path}), last pooling; 2 classes;" in capsys.readouterr().out
    assert rnnkit.load(tmp_path / "m").kernel_path("classify") == f"classify: 1 x torch.nn.{name}, {path}"


def test_weight_drop_is_described_saved_and_loaded_and_an_old_config_reads_as_none(tmp_path: Path, order_data,
                                                                                    capsys) -> None:
    model = rnnkit.train("classify", data=str(order_data[0]), out=tmp_path / "m",
                         overrides=[*CLS, "train.max_steps=4", "train.progress=true", "model.weight_drop=0.3"])
    assert "; 1 x torch.nn.LSTM (padded batches in length segments (oneDNN or ATen per segment, the faster for its " \
           "length; packed, ATen's C++ loop, when too many lengths differ), DropConnect 0.3 on the hidden-to-hidden " \
           "weights), last pooling;" in capsys.readouterr().out
    texts = ["a x b y", "a y b x", "y c d e x"]
    loaded = rnnkit.load(tmp_path / "m")
    assert loaded.config.model.weight_drop == 0.3
    assert loaded.classify(texts, probs=True) == model.classify(texts, probs=True)
    config = tmp_path / "m" / "config.yaml"
    config.write_text(config.read_text().replace("  weight_drop: 0.3\n", ""))  # as saved before the key existed
    old = rnnkit.load(tmp_path / "m")
    assert old.config.model.weight_drop == 0.0
    assert old.classify(texts, probs=True) == model.classify(texts, probs=True)  # it never changed a prediction


def test_a_held_out_test_share_is_scored_after_training(tmp_path: Path, order_data) -> None:
    model = rnnkit.train("classify", data=str(order_data[0]), out=tmp_path / "m",
                         overrides=[*CLS, "train.epochs=1", "data.test_fraction=0.2", "data.valid_fraction=0.1"])
    assert model.results["test"]["examples"] == 120


def test_a_resume_adds_a_test_file_unless_a_share_of_train_is_the_test_set(tmp_path: Path, order_data) -> None:
    """A run with data.test_fraction holds that share of train out as its test set: a test file would put it back
    into training. A test file its task refuses (an unknown label) fails before config.yaml records it."""
    train, valid = order_data
    rnnkit.train("classify", data=str(train), out=tmp_path / "held",
                 overrides=[*CLS, "train.max_steps=1", "data.test_fraction=0.2", "data.valid_fraction=0.1"])
    with pytest.raises(RnnkitError, match=r"holds data.test_fraction 0.2 of its training data out as its test set, "
                                          r"and --test .*valid.jsonl would put that part back into training"):
        rnnkit.train("classify", out=tmp_path / "held", resume=True, test=str(valid))
    rnnkit.train("classify", data=str(train), valid=str(valid), out=tmp_path / "m",
                 overrides=[*CLS, "train.max_steps=1"])
    config = (tmp_path / "m" / "config.yaml").read_text()
    unknown = write_jsonl(tmp_path / "unknown.jsonl", [{"text": "a x b y", "label": "zz"}])
    with pytest.raises(RnnkitError, match="unknown label 'zz'"):
        rnnkit.train("classify", out=tmp_path / "m", resume=True, test=str(unknown))
    assert (tmp_path / "m" / "config.yaml").read_text() == config
    model = rnnkit.train("classify", out=tmp_path / "m", resume=True, test=str(valid))
    assert model.results["test"]["examples"] == 150
    assert model.results["test"]["accuracy"] == pytest.approx(model.results["valid"]["accuracy"])


def test_a_classifier_run_resumes_exactly(tmp_path: Path, order_data) -> None:
    train, valid = order_data
    kw = {"data": str(train), "valid": str(valid)}
    rnnkit.train("classify", out=tmp_path / "whole", overrides=[*CLS, "train.epochs=2"], **kw)
    rnnkit.train("classify", out=tmp_path / "cut", overrides=[*CLS, "train.epochs=1"], **kw)
    rnnkit.train("classify", out=tmp_path / "cut", overrides=["train.epochs=2"], resume=True)
    assert_same_run(tmp_path / "whole", tmp_path / "cut")


#: the LM's output layer under each softmax: never copied into a classifier (reported unused)
LM_OUTPUTS = {"full": {"output.weight", "output.bias"},
              "adaptive": {"output.head.weight", "output.head.bias", "output.tail.0.0.weight",
                           "output.tail.0.1.weight"}}


@pytest.mark.parametrize("softmax", list(LM_OUTPUTS))
def test_init_from_an_lm_copies_exactly_what_it_reports(tmp_path: Path, train_tiny, softmax: str) -> None:
    cutoffs = ["model.adaptive_cutoffs=[8]"] if softmax == "adaptive" else []
    # embedding 8, hidden 16: the classifier's sizes
    lm_dir = train_tiny("lm", "model.layers=1", f"model.softmax={softmax}", *cutoffs)
    records = [{"text": line, "label": "cat" if "cat" in line else "other"} for line in corpus_lines(80, 4)]
    data = write_jsonl(tmp_path / "labelled.jsonl", records)
    cfg = load_config(None, [*CLS, f"data.train={data}"], {"task": "classify"})
    task = ClassifyTask(cfg, DistInfo(), torch.device("cpu"))
    before = {k: v.clone() for k, v in task.model.state_dict().items()}
    report = transfer.init_model(task.model, lm_dir, task.vocabularies(), prefix="encoder")
    lm = rnnkit.load(lm_dir)
    source = lm.model.state_dict()
    copied = {t: s for t, s, _ in report.copied}
    assert set(copied) == {"encoder.embedding.weight", *(f"encoder.rnns.0.{p}_l0" for p in
                                                            ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))}
    after = task.model.state_dict()
    for name, value in after.items():
        if name == "encoder.embedding.weight":
            vocab = task.reader.vocab
            for token in ("cat", "the", "<unk>"):
                assert torch.equal(value[vocab.stoi[token]], source["embedding.weight"][lm.vocab.stoi[token]])
            only_here = [i for i, t in enumerate(vocab.itos) if t not in lm.vocab.stoi]
            assert all(torch.equal(value[i], before[name][i]) for i in only_here)
        elif name in copied:
            assert torch.equal(value, source[copied[name]])
        else:  # the head and anything else it reports as kept are untouched
            assert name in {t for t, _ in report.kept} and torch.equal(value, before[name])
    assert {s for s, _ in report.unused} == LM_OUTPUTS[softmax]


def test_init_from_through_the_cli_prints_the_report(tmp_path: Path, train_tiny, capsys) -> None:
    lm_dir = train_tiny("lm", "model.layers=1")
    records = [{"text": line, "label": "cat" if "cat" in line else "other"} for line in corpus_lines(80, 4)]
    data = write_jsonl(tmp_path / "labelled.jsonl", records)
    assert main(["train", "classify", "--data", str(data), "--out", str(tmp_path / "c"), "--init-from", str(lm_dir),
                 "--init-prefix", "encoder", *[a for s in [*CLS, "train.epochs=1"] for a in ("--set", s)]]) == 0
    out = capsys.readouterr().out
    assert "copied  encoder.embedding.weight <- embedding.weight" in out
    assert "copied  encoder.rnns.0.weight_hh_l0 <- rnns.0.weight_hh_l0" in out and "kept    head.output.weight" in out


def test_a_head_of_another_pooled_width_is_reported_kept_not_copied(tmp_path: Path, order_data, capsys) -> None:
    """--init-partial from a last-pooling classifier into a concat one: the encoder is copied, the head's weight
    (16 inputs there, 48 here) is kept and said so; strict --init-from refuses it, naming the head."""
    train = order_data[0]
    overrides = [a for s in [*CLS, "train.max_steps=1"] for a in ("--set", s)]
    assert main(["train", "classify", "--data", str(train), "--out", str(tmp_path / "last"), *overrides]) == 0
    concat = ["train", "classify", "--data", str(train), "--init-from", str(tmp_path / "last"), *overrides,
              "--set", "model.pooling=concat", "--set", "train.progress=true"]
    capsys.readouterr()
    assert main([*concat, "--out", str(tmp_path / "concat"), "--init-partial"]) == 0
    out = capsys.readouterr().out
    assert "kept    head.output.weight: rows of shape (48,) here, (16,) in the source" in out
    assert "copied  encoder.rnns.0.weight_hh_l0" in out and ", concat pooling (last, mean, max: 48 wide); " in out
    assert rnnkit.load(tmp_path / "concat").classify(["a x b y"]) in (["xy"], ["yx"])
    assert main([*concat, "--out", str(tmp_path / "strict")]) == 2
    assert "'head.output.weight': rows of shape (48,) here, (16,) in the source" in capsys.readouterr().err


# ------------------------------------------------------------------ command line
def test_the_cli_trains_classifies_and_evaluates_text(tmp_path: Path, order_data, capsys) -> None:
    train, valid = order_data
    out = tmp_path / "m"
    assert main(["train", "classify", "--data", str(train), "--valid", str(valid), "--out", str(out),
                 *[a for s in CLS for a in ("--set", s)]]) == 0
    assert "valid: loss" in capsys.readouterr().out
    assert main(["classify", str(out), "a x b y", "y x"]) == 0
    assert capsys.readouterr().out.split() == ["xy", "yx"]
    inputs = write_lines(tmp_path / "in.txt", ["c x y", "<b>y</b> d x"])
    assert main(["classify", str(out), "--input", str(inputs), "--probs"]) == 0
    answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [a["label"] for a in answers] == ["xy", "yx"] and set(answers[0]["probs"]) == {"xy", "yx"}
    png = tmp_path / "confusion.png"
    assert main(["evaluate", str(out), "--data", str(valid), "--confusion-png", str(png)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "confusion (rows: true, columns: predicted)" in printed
    metrics = json.loads(printed[-1])
    assert metrics["accuracy"] > 0.9 and "f1/xy" in metrics and png.read_bytes()[:4] == b"\x89PNG"
    assert main(["classify", str(out)]) == 2
    assert "give the texts to classify or --input FILE" in capsys.readouterr().err


def test_the_cli_trains_and_classifies_numeric_sequences(tmp_path: Path, capsys) -> None:
    x, lengths, y = parity_features(300, 1)
    x = x.transpose(0, 1).numpy()  # (N, T, F)
    np.savez(tmp_path / "train.npz", X=x, y=np.array(["even", "odd"])[y.numpy()], lengths=lengths.numpy())
    out = tmp_path / "m"
    assert main(["train", "classify", "--data", str(tmp_path / "train.npz"), "--out", str(out),
                 *[a for s in [*CLS, "train.epochs=1", "model.embedding_size=0"] for a in ("--set", s)]]) == 0
    assert json.loads((out / "features.json").read_text()) == {"features": 1}
    capsys.readouterr()
    assert main(["classify", str(out), "--input", str(tmp_path / "train.npz")]) == 0
    assert set(capsys.readouterr().out.split()) <= {"even", "odd"}
    loaded = rnnkit.load(out)
    assert loaded.classify([np.zeros((3, 1)), np.ones((1, 1))])[0] in ("even", "odd")
    assert loaded.kernel_path("classify") == (
        "classify: 1 x torch.nn.LSTM, full-length batches on oneDNN fused kernel or ATen's C++ loop, whichever is "
        "faster for each batch's length; padded ones in length segments (oneDNN or ATen per segment, the faster "
        "for its length; packed, ATen's C++ loop, when too many lengths differ)")
    assert main(["evaluate", str(out), "--data", str(tmp_path / "train.npz")]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["examples"] == 300


@pytest.mark.curves
def test_the_learning_curves_show_accuracy_beside_the_loss(tmp_path: Path, order_data, monkeypatch) -> None:
    from rnnkit.plotting import plot_curves

    trainer_module = importlib.import_module("rnnkit.train")  # rnnkit.train is also the API function
    drawn = []
    monkeypatch.setattr(trainer_module, "plot_curves",
                        lambda rows, path, metric="ppl": (drawn.append(metric), plot_curves(rows, path, metric)))
    rnnkit.train("classify", data=str(order_data[0]), valid=str(order_data[1]), out=tmp_path / "m",
                 overrides=[*CLS, "train.epochs=1"])
    assert drawn and drawn[-1] == ("loss", "accuracy") and (tmp_path / "m" / "curves.png").is_file()


def test_real_mnist_rows_read_as_28_steps_of_28_features(shared_data: Path) -> None:
    examples = read_examples(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz", max_examples=5)
    assert examples.features.shape == (5, 28, 28) and examples.labels == ["7", "2", "1", "0", "4"]
    assert 0.0 <= examples.features.min() and examples.features.max() == pytest.approx(1.0)


CLASSIFY_RECIPES = {"seed-003-mnist": 28, "fashion-mnist-rows": 28, "seed-003-imdb-bag": 0, "imdb-lstm": 0,
                    "imdb-lm-lstm": 0, "imdb-sa-lstm": 0}


def test_embedding_init_starts_the_token_embeddings_uniform_and_the_padding_row_at_zero() -> None:
    torch.manual_seed(0)
    weight = SequenceClassifier(ClassifyModel(encoder="bag", pooling="mean", embedding_size=16,
                                              embedding_init=0.05), 2, vocab_size=1000).encoder.embedding.weight
    assert weight.abs().max() <= 0.05 and weight[1:].std() > 0.025 and not weight[0].any()
    default = SequenceClassifier(ClassifyModel(encoder="bag", pooling="mean"), 2, vocab_size=1000)
    assert default.encoder.embedding.weight.std() > 0.5  # PyTorch's N(0, 1)


@pytest.mark.parametrize(("encoder", "bidirectional"), [("lstm", False), ("lstm", True), ("gru", False)])
def test_keras_init_draws_keras_default_weights(encoder: str, bidirectional: bool) -> None:
    torch.manual_seed(0)
    cfg = ClassifyModel(encoder=encoder, embedding_size=0, hidden_size=16, bidirectional=bidirectional, head_hidden=8,
                        init="keras")
    model = SequenceClassifier(cfg, 10, features=28)
    for name, param in model.encoder.rnns[0].named_parameters():
        if name.startswith("weight_ih"):  # Glorot: uniform in +-sqrt(6 / (fan_in + fan_out)), fans 28 and gates x 16
            limit = (6 / (28 + param.size(0))) ** 0.5
            assert param.abs().max() <= limit and param.abs().max() > 0.9 * limit
        elif name.startswith("weight_hh"):  # orthogonal: orthonormal columns
            assert torch.allclose(param.T @ param, torch.eye(16), atol=1e-5)
        else:  # zero biases, an LSTM's forget gate (torch's second block) at 1 in one of its two bias vectors
            forget = encoder == "lstm" and name.startswith("bias_ih")
            assert torch.equal(param, torch.zeros(param.shape).index_fill_(0, torch.arange(16, 32), 1.0)
                               if forget else torch.zeros(param.shape)), name
    for linear in (model.head.hidden, model.head.output):
        limit = (6 / (linear.in_features + linear.out_features)) ** 0.5
        assert linear.weight.abs().max() <= limit and not linear.bias.any()
    torch.manual_seed(0)  # the default draws as before: PyTorch's uniform +-1/sqrt(H), biases too
    default = SequenceClassifier(ClassifyModel(encoder=encoder, embedding_size=0, hidden_size=16,
                                               bidirectional=bidirectional, head_hidden=8), 10, features=28)
    assert default.encoder.rnns[0].bias_ih_l0.abs().max() <= 0.25 and default.encoder.rnns[0].bias_ih_l0.any()


def test_keras_init_trains_saves_and_loads(tmp_path: Path) -> None:
    x, lengths, y = parity_features(64, 1)
    np.savez(tmp_path / "t.npz", X=x.transpose(0, 1).numpy(), y=y.numpy(), lengths=lengths.numpy())
    overrides = [*CLS, "train.epochs=1", "model.embedding_size=0", "data.valid_fraction=0.25"]
    models = {init: rnnkit.train("classify", data=str(tmp_path / "t.npz"), out=tmp_path / init,
                                 overrides=[*overrides, f"model.init={init}"]) for init in ("torch", "keras")}
    assert rnnkit.load(tmp_path / "keras").config.model.init == "keras"
    bias = {init: dict(m.model.named_parameters())["encoder.rnns.0.bias_ih_l0"] for init, m in models.items()}
    assert bias["keras"][16:32].mean() > 0.5 > bias["torch"][16:32].abs().max()  # one epoch moves it a little


@pytest.mark.parametrize(("name", "features"), CLASSIFY_RECIPES.items())
def test_the_classification_recipes_load_and_build(name: str, features: int) -> None:
    cfg = load_config(name)
    assert cfg.task == "classify" and name in rnnkit.config.list_recipes()
    model = SequenceClassifier(cfg.model, 10, vocab_size=0 if features else 50, features=features)
    assert model.head.output.out_features == 10


def test_data_may_be_a_folder_per_class_or_a_folder_of_split_folders(tmp_path: Path) -> None:
    for split, n in (("train", 40), ("test", 10)):
        for k, record in enumerate(order_texts(n, 7)):
            write_lines(tmp_path / "acl" / split / record["label"] / f"{k}.txt", [record["text"]])
    model = rnnkit.train("classify", data=str(tmp_path / "acl"), out=tmp_path / "m",
                         overrides=[*CLS, "train.epochs=1", "data.valid_fraction=0.25"])
    assert model.config.data.test == str((tmp_path / "acl" / "test").resolve())
    assert model.results["test"]["examples"] == 10
    model = rnnkit.train("classify", data=str(tmp_path / "acl" / "train"), out=tmp_path / "m2",
                         overrides=[*CLS, "train.epochs=1", "data.valid_fraction=0.25"])
    assert model.labels == ["xy", "yx"] and "test" not in model.results

"""RNNLanguageModel: shapes, tying, dropout variants, padding invariance and stream == step mode."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from rnnkit.checkpoint import load_weights, save_weights
from rnnkit.config import Config, ModelConfig, TrainConfig
from rnnkit.data.lm import IGNORE_INDEX, SentenceBatches, pad_sentences
from rnnkit.data.vocab import Vocab
from rnnkit.errors import RnnkitError
from rnnkit.memory import check_fits, count_parameters, training_bytes
from rnnkit.models.lm import RNNLanguageModel
from rnnkit.nn.dropout import embedding_dropout, locked_dropout
from rnnkit.nn.rnn import detach_state, make_layer
from rnnkit.tasks.lm import evaluate_sequences, lm_loss

CELLS = ["rnn_tanh", "rnn_relu", "gru", "lstm"]
V, E, H, T, B = 13, 6, 10, 7, 3


def tiny(cell: str = "lstm", layers: int = 2, seed: int = 0, **kwargs) -> RNNLanguageModel:
    torch.manual_seed(seed)
    cfg = ModelConfig(cell=cell, embedding_size=E, hidden_size=H, layers=layers, **kwargs)
    return RNNLanguageModel(cfg, V)


def ids(t: int = T, b: int = B, seed: int = 1) -> torch.Tensor:
    return torch.randint(4, V, (t, b), generator=torch.Generator().manual_seed(seed))


def _states(state) -> list[torch.Tensor]:
    return [t for s in state for t in (s if isinstance(s, tuple) else (s,))]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2])
def test_output_shapes(cell: str, layers: int) -> None:
    model = tiny(cell, layers)
    out = model(ids())
    assert out.logits.shape == (T, B, V)
    assert out.last_hidden.shape == out.last_dropped.shape == (T, B, H)
    assert len(out.state) == layers
    for s in out.state:
        if cell == "lstm":
            assert isinstance(s, tuple) and len(s) == 2
            assert s[0].shape == s[1].shape == (1, B, H)
        else:
            assert isinstance(s, torch.Tensor) and s.shape == (1, B, H)
    # the last output step is the top layer's final hidden state
    top = out.state[-1][0] if cell == "lstm" else out.state[-1]
    torch.testing.assert_close(out.last_hidden[-1], top[0])


@pytest.mark.parametrize("cell", CELLS)
def test_layers_are_the_fused_torch_modules(cell: str) -> None:
    model = tiny(cell)
    expected = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}.get(cell, torch.nn.RNN)
    assert all(type(layer) is expected for layer in model.rnns)
    if cell.startswith("rnn"):
        assert model.rnns[0].nonlinearity == cell.split("_")[1]
    names = {n for n, _ in model.named_parameters()}
    assert {"embedding.weight", "rnns.0.weight_ih_l0", "rnns.0.weight_hh_l0", "rnns.1.bias_hh_l0",
            "decoder.weight", "decoder.bias"} <= names
    with pytest.raises(ValueError, match="unknown cell"):
        make_layer("transformer", 3, 3)


def test_zero_state_equals_no_state() -> None:
    for cell in CELLS:
        model = tiny(cell).eval()
        x = ids()
        torch.testing.assert_close(model(x, model.init_state(B)).logits, model(x, None).logits, rtol=0, atol=0)


def test_tied_weights_share_storage_and_save_once(tmp_path) -> None:
    model = tiny("lstm", tie_weights=True)
    assert model.decoder.weight is model.embedding.weight
    assert model.decoder.weight.data_ptr() == model.embedding.weight.data_ptr()
    assert model.rnns[-1].hidden_size == E and model.rnns[0].hidden_size == H  # last layer matches the embedding
    assert model(ids()).logits.shape == (T, B, V)
    with torch.no_grad():  # a change through one name is seen through the other
        model.embedding.weight[5, 0] = 42.0
    assert model.decoder.weight[5, 0] == 42.0
    save_weights(model, tmp_path / "w.safetensors")
    from safetensors.torch import load_file

    stored = load_file(tmp_path / "w.safetensors")
    assert ("decoder.weight" in stored) != ("embedding.weight" in stored)  # one copy only
    fresh = tiny("lstm", tie_weights=True, seed=9)
    load_weights(fresh, tmp_path / "w.safetensors")
    assert fresh.decoder.weight is fresh.embedding.weight
    x = ids()
    assert torch.equal(fresh.eval()(x).logits, model.eval()(x).logits)


def test_init_range() -> None:
    model = tiny("gru", init_range=0.05)
    for name, p in model.named_parameters():
        assert p.abs().max() <= 0.05, name
        assert p.abs().max() > 0.02, name  # really drawn from the range, not left at zero


@pytest.mark.parametrize("cell", CELLS)
def test_save_load_round_trip_gives_identical_logits(cell: str, tmp_path) -> None:
    model = tiny(cell).eval()
    save_weights(model, tmp_path / "m.safetensors")
    other = tiny(cell, seed=123).eval()
    x = ids()
    assert not torch.equal(other(x).logits, model(x).logits)
    load_weights(other, tmp_path / "m.safetensors")
    assert torch.equal(other(x).logits, model(x).logits)


DROPOUTS = [
    {"dropout": 0.5},
    {"embedding_dropout": 0.5},
    {"layer_dropout": 0.5},
    {"dropout": 0.5, "embedding_dropout": 0.5, "layer_dropout": 0.5, "locked_dropout": True},
    {"word_dropout": 0.3},
    {"weight_drop": 0.5},
]


@pytest.mark.parametrize("options", DROPOUTS, ids=lambda o: "+".join(o))
def test_dropout_only_in_training(options: dict) -> None:
    plain = tiny("lstm")
    model = tiny("lstm", **options)
    model.load_state_dict(plain.state_dict())
    x = ids(12, 4)
    model.train()
    a, b = model(x).logits, model(x).logits
    assert not torch.allclose(a, b), "training mode should drop something"
    model.eval(), plain.eval()
    c, d = model(x).logits, model(x).logits
    assert torch.equal(c, d)  # eval is deterministic
    torch.testing.assert_close(c, plain(x).logits, rtol=0, atol=0)  # and equals the model without dropout


def test_weight_drop_keeps_the_stored_weight_and_its_gradient() -> None:
    model = tiny("lstm", weight_drop=0.5).train()
    before = model.rnns[0].weight_hh_l0.detach().clone()
    out = model(ids())
    out.logits.sum().backward()
    assert torch.equal(model.rnns[0].weight_hh_l0, before)  # DropConnect does not overwrite the weight
    grad = model.rnns[0].weight_hh_l0.grad
    assert grad is not None and grad.abs().sum() > 0


def test_locked_dropout_shares_one_mask_over_time() -> None:
    x = torch.ones(9, 4, 16)
    y = locked_dropout(x, 0.5, training=True)
    zeros = y == 0
    assert zeros.any() and not zeros.all()
    assert (zeros == zeros[0]).all()  # the same units dropped at every step
    assert set(y.unique().tolist()) <= {0.0, 2.0}  # survivors scaled by 1 / (1 - p)
    assert torch.equal(locked_dropout(x, 0.5, training=False), x)


def test_word_dropout_drops_whole_words() -> None:
    torch.manual_seed(0)
    emb = torch.nn.Embedding(20, 5)
    x = torch.arange(20).repeat(6, 1)  # every word at 6 positions
    out = embedding_dropout(emb, x, 0.5, training=True)
    dropped = (out == 0).all(-1)  # (6, 20): a word is zero everywhere or nowhere
    assert dropped.any() and not dropped.all()
    assert (dropped == dropped[0]).all()
    kept = ~dropped[0]
    torch.testing.assert_close(out[0, kept], emb.weight[kept] * 2)
    assert torch.equal(embedding_dropout(emb, x, 0.5, training=False), emb(x))


# ----------------------------------------------------------------------------------------------------
# equivalences


@pytest.mark.parametrize("cell", CELLS)
def test_stream_equals_step_mode(cell: str) -> None:
    """One call over the sequence == feeding one token at a time with the carried state."""
    model = tiny(cell, layers=2).eval()
    x = ids(11, 3)
    full = model(x)
    state, steps = None, []
    for t in range(x.size(0)):
        out = model(x[t: t + 1], state)
        steps.append(out.logits)
        state = out.state
    torch.testing.assert_close(torch.cat(steps), full.logits, rtol=1e-5, atol=1e-6)
    for got, want in zip(_states(state), _states(full.state), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_truncated_chunks_with_carried_state_equal_one_call(cell: str) -> None:
    """What stream training does: chunks of bptt steps, state carried (detached) between them."""
    model = tiny(cell, layers=2).eval()
    x = ids(12, 3)
    full = model(x).logits
    state, chunks = None, []
    for start in range(0, 12, 5):
        out = model(x[start: start + 5], state)
        chunks.append(out.logits)
        state = detach_state(out.state)
    torch.testing.assert_close(torch.cat(chunks), full, rtol=1e-5, atol=1e-6)


def _sentence_losses(model, seqs: list[list[int]]) -> list[torch.Tensor]:
    """Per-sentence logits and summed loss when ``seqs`` are one padded batch."""
    batch = pad_sentences(seqs)
    logits = model(batch.inputs).logits
    losses = F.cross_entropy(logits.permute(1, 2, 0), batch.targets.t(), ignore_index=IGNORE_INDEX,
                             reduction="none").sum(1)
    return [(logits[: n, j], losses[j]) for j, n in enumerate(batch.lengths.tolist())]


@pytest.mark.parametrize("cell", CELLS)
def test_padding_invariance(cell: str) -> None:
    """A sentence's logits and loss do not depend on its batch-mates or on how much padding it gets."""
    model = tiny(cell).eval()
    rng = random.Random(0)
    target = [Vocab.bos_id, 5, 6, 7, Vocab.eos_id]
    others = [[Vocab.bos_id, *(rng.randrange(4, V) for _ in range(n)), Vocab.eos_id] for n in (1, 9, 20, 3)]
    alone_logits, alone_loss = _sentence_losses(model, [target])[0]
    for mates in ([others[1]], [others[2], others[0]], others):
        for position in (0, len(mates)):
            batch = mates[:position] + [target] + mates[position:]
            logits, loss = _sentence_losses(model, batch)[position]
            torch.testing.assert_close(logits, alone_logits, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(loss, alone_loss, rtol=1e-5, atol=1e-6)


def test_sentence_perplexity_independent_of_batch_size() -> None:
    model = tiny("gru").eval()
    rng = random.Random(1)
    seqs = [[Vocab.bos_id, *(rng.randrange(4, V) for _ in range(rng.randrange(1, 15))), Vocab.eos_id]
            for _ in range(23)]
    results = [evaluate_sequences(model, seqs, "sentences", bs, 35, torch.device("cpu"), False)
               for bs in (1, 4, 23)]
    assert results[0]["tokens"] == sum(len(s) - 1 for s in seqs)
    for r in results[1:]:
        assert r["tokens"] == results[0]["tokens"]
        assert r["loss"] == pytest.approx(results[0]["loss"], rel=1e-6)


def test_lm_loss_ignores_padding_and_counts_tokens() -> None:
    model = tiny("lstm").eval()
    seqs = [[2, 5, 6, 3], [2, 7, 8, 9, 10, 11, 3]]
    data = SentenceBatches(seqs, 2, shuffle=False)
    batch = data.batch(data.plan(0)[0])
    loss_sum, _, out = lm_loss(model, batch, None)
    manual = sum(float(loss.detach()) for _, loss in _sentence_losses(model, seqs))
    assert float(loss_sum.detach()) == pytest.approx(manual, rel=1e-6)
    assert batch.num_tokens == 3 + 6
    assert out.logits.shape == (6, 2, V)


# ----------------------------------------------------------------------------------------------------
# the memory estimate


@pytest.mark.parametrize("cell, tie, layers", [("lstm", False, 2), ("gru", True, 3), ("rnn_tanh", False, 1),
                                               ("rnn_relu", True, 1)])
def test_parameter_count_from_the_config_equals_the_built_model(cell: str, tie: bool, layers: int) -> None:
    cfg = ModelConfig(cell=cell, embedding_size=6, hidden_size=10, layers=layers, tie_weights=tie)
    model = RNNLanguageModel(cfg, 23)
    assert count_parameters(cfg, 23) == sum(p.numel() for p in model.parameters())


def test_a_model_that_cannot_fit_is_refused_before_it_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    from rnnkit import memory

    cfg = Config(model=ModelConfig(embedding_size=8, hidden_size=16, layers=1), train=TrainConfig(optimizer="adam"))
    needed, what = training_bytes(cfg, 100, steps=35)
    params = count_parameters(cfg.model, 100)
    # weights, gradients, 2 Adam moments, a checkpoint copy; the loaded result (weights + file); the logits
    assert needed == params * 4 * (5 + 2) + 3 * 4 * 20 * 35 * 100
    monkeypatch.setattr(memory, "available_bytes", lambda device: needed - 1)
    with pytest.raises(RnnkitError, match=r"needs about .* but only .* is available on cpu"):
        check_fits(needed, what, torch.device("cpu"))
    monkeypatch.setattr(memory, "available_bytes", lambda device: needed)
    check_fits(needed, what, torch.device("cpu"))


def test_a_huge_model_fails_in_well_under_a_second(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """hidden_size 30,000 (11 billion parameters) is refused from the config alone, nothing allocated."""
    import time

    import rnnkit
    from conftest import TINY, corpus_lines, write_lines

    data = write_lines(tmp_path / "train.txt", corpus_lines(60))
    built = []
    monkeypatch.setattr(RNNLanguageModel, "__init__", lambda *a, **k: built.append(1))
    start = time.perf_counter()
    with pytest.raises(RnnkitError, match="the model needs about"):
        rnnkit.train("lm", data=str(data), out=tmp_path / "m", overrides=[*TINY, "model.hidden_size=30000"])
    assert time.perf_counter() - start < 0.5
    assert not built and not (tmp_path / "m").exists()


def test_a_containers_memory_limit_counts_what_it_uses_but_not_its_page_cache(tmp_path) -> None:
    from rnnkit.memory import _cgroup_available

    (tmp_path / "memory.max").write_text("8000000000\n")
    (tmp_path / "memory.current").write_text("5000000000\n")
    (tmp_path / "memory.stat").write_text("anon 2000000000\nfile 3000000000\n")
    assert _cgroup_available(tmp_path) == 6_000_000_000
    (tmp_path / "memory.max").write_text("max\n")
    assert _cgroup_available(tmp_path) is None


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_loading_a_model_that_cannot_fit_is_refused_before_it_is_built(tiny_model, backend: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import rnnkit
    from rnnkit import memory
    from rnnkit.reference import backend as numpy_backend
    from rnnkit.reference import load_numpy
    from rnnkit.tasks import lm as lm_task

    loaded = []
    monkeypatch.setattr(memory, "available_bytes", lambda device: 1000)
    monkeypatch.setattr(lm_task, "load_weights", lambda *a: loaded.append(a))
    monkeypatch.setattr(numpy_backend, "load_numpy_weights", lambda *a: loaded.append(a))
    with pytest.raises(RnnkitError, match=r"the model needs about .* \(weights \+ the file read into them\)"):
        (rnnkit.load if backend == "torch" else load_numpy)(tiny_model)
    assert not loaded

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
from rnnkit.nn.rnn import cell_step, detach_state, kernel_name, layer_weights, lstm_cpu_kernel, make_layer
from rnnkit.nn.stack import make_stack, run_stack, zero_state
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
            "output.weight", "output.bias"} <= names
    with pytest.raises(ValueError, match="unknown cell"):
        make_layer("transformer", 3, 3)


def test_zero_state_equals_no_state() -> None:
    for cell in CELLS:
        model = tiny(cell).eval()
        x = ids()
        torch.testing.assert_close(model(x, model.init_state(B)).logits, model(x, None).logits, rtol=0, atol=0)


def test_tied_weights_share_storage_and_save_once(tmp_path) -> None:
    model = tiny("lstm", tie_weights=True)
    assert model.output.weight is model.embedding.weight
    assert model.output.weight.data_ptr() == model.embedding.weight.data_ptr()
    assert model.rnns[-1].hidden_size == E and model.rnns[0].hidden_size == H  # last layer matches the embedding
    assert model(ids()).logits.shape == (T, B, V)
    with torch.no_grad():  # a change through one name is seen through the other
        model.embedding.weight[5, 0] = 42.0
    assert model.output.weight[5, 0] == 42.0
    save_weights(model, tmp_path / "w.safetensors")
    from safetensors.torch import load_file

    stored = load_file(tmp_path / "w.safetensors")
    assert ("output.weight" in stored) != ("embedding.weight" in stored)  # one copy only
    fresh = tiny("lstm", tie_weights=True, seed=9)
    load_weights(fresh, tmp_path / "w.safetensors")
    assert fresh.output.weight is fresh.embedding.weight
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
# LSTM kernel choice on the CPU (oneDNN fused vs ATen's loop)


def _onednn_flag_seen(layer: torch.nn.Module) -> list[bool]:
    """Records, at each call of ``layer``, whether torch would run it through oneDNN."""
    seen: list[bool] = []
    layer.register_forward_pre_hook(lambda module, args: seen.append(torch.backends.mkldnn.enabled))
    return seen


@pytest.mark.parametrize("steps, batch, hidden, training, kernel", [
    (1, 1, 200, True, "aten"), (2, 64, 128, True, "aten"), (3, 20, 200, True, "onednn"),
    (35, 20, 200, True, "onednn"), (3, 1, 512, True, "aten"), (4, 16, 256, True, "aten"),
    (5, 16, 512, True, "onednn"), (8, 1, 512, True, "aten"), (9, 1, 1024, True, "onednn"),
    (1, 64, 128, False, "aten"), (2, 64, 128, False, "onednn"), (2, 16, 256, False, "aten"),
    (3, 16, 256, False, "onednn"), (4, 1, 200, False, "aten"), (5, 1, 200, False, "onednn"),
    (16, 1, 512, False, "aten"), (35, 1, 512, False, "onednn"), (35, 10, 200, False, "onednn")])
def test_lstm_kernel_rule(steps: int, batch: int, hidden: int, training: bool, kernel: str) -> None:
    assert lstm_cpu_kernel(steps, batch, hidden, training) == kernel


@pytest.mark.parametrize("steps, grad, aten", [(1, False, True), (2, False, False), (2, True, True),
                                               (3, True, False), (35, True, False)])
def test_run_layer_follows_the_kernel_rule(steps: int, grad: bool, aten: bool) -> None:
    """Hidden 10, batch 3: ATen up to 2 steps when a backward follows (grad on), 1 step without."""
    model = tiny("lstm", layers=2).eval()
    seen = _onednn_flag_seen(model.rnns[0])
    before = torch.backends.mkldnn.enabled
    with torch.set_grad_enabled(grad):
        model(ids(steps, B))
    assert seen == [not aten]
    assert torch.backends.mkldnn.enabled == before  # restored after the call
    assert kernel_name(model.rnns[0], steps, B, torch.device("cpu"), grad) == ("aten" if aten else "onednn")


def test_gru_never_switches_the_onednn_flag() -> None:
    model = tiny("gru").eval()
    seen = _onednn_flag_seen(model.rnns[0])
    model(ids(1, 1))
    assert seen == [torch.backends.mkldnn.enabled]


@pytest.mark.parametrize("steps, batch", [(1, 1), (3, 4), (20, 2)])
def test_onednn_and_aten_lstm_agree_in_outputs_and_gradients(steps: int, batch: int) -> None:
    torch.manual_seed(0)
    layer = torch.nn.LSTM(12, 24)
    x = torch.randn(steps, batch, 12)
    state = (torch.randn(1, batch, 24), torch.randn(1, batch, 24))
    results = []
    for onednn in (True, False):
        layer.zero_grad()
        torch.backends.mkldnn.enabled = onednn
        try:
            out, (h, c) = layer(x, state)
        finally:
            torch.backends.mkldnn.enabled = True
        (out.pow(2).sum() + h.sum() + c.sum()).backward()
        results.append([out, h, c, *(p.grad.clone() for p in layer.parameters())])
    for fused, aten in zip(*results, strict=True):
        torch.testing.assert_close(fused, aten, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("overrides, path", [
    ([], "oneDNN fused kernel for 8-step batches of 4"),
    (["data.mode=windows", "data.window=2"], "ATen's C++ loop for 2-step batches of 4"),
    (["data.mode=sentences"], "whichever is faster for each batch's length"),
    (["model.cell=gru"], "ATen CPU kernel, a C++ loop over time steps")])
def test_the_run_description_names_the_kernel_path(train_tiny, capsys, overrides: list[str], path: str) -> None:
    train_tiny("model", "train.max_steps=1", "train.progress=true", *overrides)
    assert path in capsys.readouterr().out


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


# ----------------------------------------------------------------------------------------------------
# the recurrent stack (nn/stack.py) every model runs


def _final_tensors(state) -> list[torch.Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_packed_stack_equals_each_sequence_run_alone(cell: str, bidirectional: bool) -> None:
    """Given lengths, outputs past a sequence's end are zeros and each final state is its last valid
    step's (the reverse direction starting there), whatever the padding."""
    torch.manual_seed(0)
    rnns = make_stack(cell, 5, [7, 6], bidirectional)
    assert [type(m).__name__ for m in rnns] == [cell.upper()] * 2 and rnns[1].input_size == (14 if bidirectional else 7)
    lengths = torch.tensor([3, 9, 1, 6])
    x = torch.randn(11, 4, 5)
    out, final = run_stack(rnns, x, lengths)
    assert out.shape == (11, 4, 12 if bidirectional else 6)
    for b, n in enumerate(lengths.tolist()):
        alone, alone_final = run_stack(rnns, x[:n, b: b + 1])
        torch.testing.assert_close(out[:n, b: b + 1], alone, rtol=1e-5, atol=1e-6)
        assert not out[n:, b].any()
        for layer, layer_alone in zip(final, alone_final, strict=True):
            for got, want in zip(_final_tensors(layer), _final_tensors(layer_alone), strict=True):
                torch.testing.assert_close(got[:, b: b + 1], want, rtol=1e-5, atol=1e-6)


def test_a_stack_takes_an_initial_state_and_returns_zero_state_shapes() -> None:
    torch.manual_seed(0)
    rnns = make_stack("lstm", 3, [4, 4], bidirectional=True)
    zeros = zero_state(rnns, 2)
    assert [tuple(h.shape) for h, _ in zeros] == [(2, 2, 4)] * 2
    assert {t.dtype for layer in zeros for t in layer} == {torch.get_default_dtype()}
    assert {t.dtype for layer in zero_state(rnns, 2, dtype=torch.bfloat16) for t in layer} == {torch.bfloat16}
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(run_stack(rnns, x, state=zeros)[0], run_stack(rnns, x)[0], rtol=0, atol=0)
    start = [(torch.randn(2, 2, 4), torch.randn(2, 2, 4)) for _ in range(2)]
    assert not torch.allclose(run_stack(rnns, x, torch.tensor([5, 3]), state=start)[0],
                              run_stack(rnns, x, torch.tensor([5, 3]))[0])


@pytest.mark.parametrize("locked", [False, True])
def test_dropout_between_packed_layers(locked: bool) -> None:
    """Plain or locked dropout reaches packed layers; locked keeps one mask per sequence over time."""
    rnns = make_stack("rnn_relu", 8, [8, 8])
    with torch.no_grad():  # layer 1 copies its input: what it outputs shows the dropout mask
        rnns[1].weight_ih_l0.copy_(torch.eye(8))
        rnns[1].weight_hh_l0.zero_(), rnns[1].bias_ih_l0.zero_(), rnns[1].bias_hh_l0.zero_()
        rnns[0].weight_ih_l0.copy_(torch.eye(8))
        rnns[0].weight_hh_l0.zero_(), rnns[0].bias_ih_l0.fill_(1.0), rnns[0].bias_hh_l0.zero_()
    lengths = torch.tensor([4, 7, 2])
    torch.manual_seed(1)
    out, _ = run_stack(rnns, torch.zeros(7, 3, 8), lengths, dropout=0.5, locked=locked, training=True)
    for b, n in enumerate(lengths.tolist()):
        kept = out[:n, b] != 0
        assert set(out[:n, b].unique().tolist()) <= {0.0, 2.0}  # survivors scaled by 1 / (1 - p)
        assert (kept == kept[0]).all() == locked or n == 1  # locked: the same units at every step
    assert (out == 0).any() and (out != 0).any()
    unchanged, _ = run_stack(rnns, torch.zeros(7, 3, 8), lengths, dropout=0.5, locked=locked, training=False)
    assert set(unchanged[:2].unique().tolist()) == {1.0}


def test_weight_drop_drops_both_directions_of_a_bidirectional_layer() -> None:
    torch.manual_seed(0)
    rnns = make_stack("gru", 3, [5], bidirectional=True)
    x = torch.randn(6, 2, 3)
    plain, _ = run_stack(rnns, x, training=True)
    dropped, _ = run_stack(rnns, x, weight_drop=0.9, training=True)
    assert not torch.allclose(dropped[..., :5], plain[..., :5]) and not torch.allclose(dropped[..., 5:], plain[..., 5:])
    dropped.sum().backward()
    assert rnns[0].weight_hh_l0_reverse.grad.abs().sum() > 0


@pytest.mark.parametrize("cell", CELLS)
def test_cell_step_equals_the_torch_layer(cell: str) -> None:
    """One hand-written step from a precomputed input projection == the torch.nn layer's step."""
    torch.manual_seed(0)
    layer = make_layer(cell, 4, 6)
    x, h = torch.randn(3, 4), torch.randn(1, 3, 6)
    state = (h, torch.randn(1, 3, 6)) if cell == "lstm" else h
    weights = layer_weights(layer, 0.0, False)
    projection = torch.nn.functional.linear(x, weights["weight_ih_l0"], weights["bias_ih_l0"])
    got = cell_step(layer, weights, projection, tuple(s[0] for s in state) if cell == "lstm" else h[0])
    _, want = layer(x.unsqueeze(0), state)
    for g, w in zip(_final_tensors(got), _final_tensors(want), strict=True):
        torch.testing.assert_close(g, w[0], rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------------
# the output layer's name (``decoder`` before issue 13) and the vocabulary-indexed parameters


def test_the_output_layer_and_its_legacy_names() -> None:
    model = tiny("lstm")
    names = {n for n, _ in model.named_parameters()}
    assert {"output.weight", "output.bias"} <= names and not any(n.startswith("decoder") for n in names)
    assert RNNLanguageModel.legacy_weight_names == {"decoder.weight": "output.weight", "decoder.bias": "output.bias"}
    assert set(RNNLanguageModel.legacy_weight_names.values()) <= names
    roles = model.vocab_parameters()
    assert roles == {"embedding.weight": "vocab", "output.weight": "vocab", "output.bias": "vocab"}
    params = dict(model.named_parameters())
    assert all(params[name].size(0) == V for name in roles)


def _with_legacy_names(weights_file) -> None:
    """Rewrite a weights file as rnnkit saved it before issue 13 (output layer named ``decoder``)."""
    from safetensors.torch import load_file, save_file

    from rnnkit.checkpoint import read_safetensors_header

    metadata = read_safetensors_header(weights_file)[1]
    old = {name.replace("output.", "decoder.", 1): t for name, t in load_file(weights_file).items()}
    assert "decoder.bias" in old
    save_file(old, weights_file, metadata=metadata)


def test_the_numpy_backend_reads_weights_saved_under_the_legacy_names(tmp_path) -> None:
    from rnnkit.reference import NumpyLanguageModel
    from rnnkit.reference.backend import load_numpy_weights

    for tie in (False, True):
        model = tiny("lstm", layers=1, tie_weights=tie).eval()
        path = tmp_path / f"tied{tie}.safetensors"
        save_weights(model, path)
        _with_legacy_names(path)
        numpy_model = NumpyLanguageModel("lstm", V, E, E if tie else H, 1, tie_weights=tie)
        load_numpy_weights(numpy_model, path)
        np_logits, _ = numpy_model.forward(ids().numpy())
        torch.testing.assert_close(torch.from_numpy(np_logits).float(), model(ids()).logits, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_a_model_dir_saved_before_the_rename_still_loads(tiny_model, tmp_path, backend: str) -> None:
    import shutil

    import rnnkit
    from rnnkit.reference import load_numpy

    old = shutil.copytree(tiny_model, tmp_path / "old")
    _with_legacy_names(old / "model.safetensors")
    load = rnnkit.load if backend == "torch" else load_numpy
    text = "the cat sees the ball .\n"
    (tmp_path / "eval.txt").write_text(text * 3)
    assert load(old).evaluate(tmp_path / "eval.txt") == load(tiny_model).evaluate(tmp_path / "eval.txt")

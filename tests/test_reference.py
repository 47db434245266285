"""rnnkit.reference (NumPy RNN/GRU/LSTM LM) against torch.nn in float64, finite differences and training."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import rnnkit.reference as ref
import rnnkit.reference.cells as cells
from rnnkit.reference import NumpyLanguageModel, gradcheck, layer_backward, layer_forward, run, train_sgd

CELLS = ["rnn_tanh", "rnn_relu", "gru", "lstm"]
IGNORE = -100


# ----------------------------------------------------------------------------------------------------
# The PyTorch side: a tiny LM whose state_dict has exactly the keys the reference uses


def torch_layer(cell: str, input_size: int, hidden_size: int) -> nn.Module:
    if cell == "gru":
        return nn.GRU(input_size, hidden_size)
    if cell == "lstm":
        return nn.LSTM(input_size, hidden_size)
    return nn.RNN(input_size, hidden_size, nonlinearity="relu" if cell == "rnn_relu" else "tanh")


class TorchLM(nn.Module):
    def __init__(self, cell: str, V: int, E: int, H: int, L: int, tie: bool = False):
        super().__init__()
        self.embedding = nn.Embedding(V, E)
        self.rnns = nn.ModuleList([torch_layer(cell, E if k == 0 else H, H) for k in range(L)])
        self.output = nn.Linear(H, V)
        if tie:
            self.output.weight = self.embedding.weight

    def forward(self, x, state):
        out, new = self.embedding(x), []
        for rnn, s in zip(self.rnns, state, strict=True):
            out, s = rnn(out, s)
            new.append(s)
        return self.output(out), new


def make_torch(cell, V=11, E=6, H=5, L=2, tie=False, seed=0) -> TorchLM:
    torch.manual_seed(seed)
    return TorchLM(cell, V, E, H, L, tie).double()


def to_torch_state(cell, state):
    if cell == "lstm":
        return [(torch.from_numpy(h)[None], torch.from_numpy(c)[None]) for h, c in state]
    return [torch.from_numpy(h)[None] for h in state]


def from_torch_state(cell, state):
    if cell == "lstm":
        return [(h[0].detach().numpy(), c[0].detach().numpy()) for h, c in state]
    return [h[0].detach().numpy() for h in state]


def detach_state(cell, state):
    return [(h.detach(), c.detach()) for h, c in state] if cell == "lstm" else [h.detach() for h in state]


def random_state(model: NumpyLanguageModel, batch: int, rng):
    st = model.init_state(batch)
    if model.cell == "lstm":
        return [(rng.uniform(-0.5, 0.5, h.shape), rng.uniform(-0.5, 0.5, c.shape)) for h, c in st]
    return [rng.uniform(-0.5, 0.5, h.shape) for h in st]


def random_batch(rng, V, T, B, ignore_frac=0.25):
    x = rng.integers(0, V, (T, B))
    y = rng.integers(0, V, (T, B))
    y[rng.random((T, B)) < ignore_frac] = IGNORE
    y[0, 0] = 1
    return x, y


def assert_state_close(a, b, rtol=1e-7):
    """Two public states (lists of arrays, or of (h, c) tuples) agree."""
    for sa, sb in zip(a, b, strict=True):
        sa, sb = (sa, sb) if isinstance(sa, tuple) else ((sa,), (sb,))
        for ta, tb in zip(sa, sb, strict=True):
            np.testing.assert_allclose(ta, tb, rtol=rtol, atol=1e-12)


def torch_param_grads(tm: TorchLM) -> dict[str, np.ndarray]:
    return {n: p.grad.numpy().copy() for n, p in tm.named_parameters(remove_duplicate=False)}


def assert_grads_close(ours: dict, theirs: dict, rtol=1e-7):
    assert set(ours) == set(theirs)
    for name in ours:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=rtol, atol=1e-13, err_msg=name)


# ----------------------------------------------------------------------------------------------------
# Forward agreement, weights copied both ways


FORWARD_CASES = [(c, L, B, T) for c in CELLS for L in (1, 2) for B in (1, 3) for T in (1, 7)]
FORWARD_CASES += [("lstm", 3, 3, 7), ("gru", 3, 2, 4)]


@pytest.mark.parametrize("cell,L,B,T", FORWARD_CASES)
def test_forward_matches_torch_both_ways(cell, L, B, T):
    rng = np.random.default_rng(L * 100 + B * 10 + T)
    V, E, H = 11, 6, 5
    x = rng.integers(0, V, (T, B))

    # torch -> numpy
    tm = make_torch(cell, V, E, H, L, seed=L + B + T)
    m = NumpyLanguageModel.from_state_dict(cell, tm.state_dict())
    assert (m.num_layers, m.hidden_size, m.embedding_size, m.vocab_size) == (L, H, E, V)
    state = random_state(m, B, rng)
    logits, new_state = m.forward(x, state)
    with torch.no_grad():
        t_logits, t_state = tm(torch.from_numpy(x), to_torch_state(cell, state))
    assert logits.shape == (T, B, V)
    np.testing.assert_allclose(logits, t_logits.numpy(), rtol=1e-7, atol=1e-12)
    assert_state_close(new_state, from_torch_state(cell, t_state))

    # numpy -> torch (a different init, drawn by the reference)
    m2 = NumpyLanguageModel(cell, V, E, H, L, seed=7)
    tm2 = make_torch(cell, V, E, H, L)
    tm2.load_state_dict({k: torch.from_numpy(v) for k, v in m2.state_dict().items()})
    logits2, new_state2 = m2.forward(x, state)
    with torch.no_grad():
        t_logits2, t_state2 = tm2(torch.from_numpy(x), to_torch_state(cell, state))
    np.testing.assert_allclose(logits2, t_logits2.numpy(), rtol=1e-7, atol=1e-12)
    assert_state_close(new_state2, from_torch_state(cell, t_state2))


def test_state_dict_keys_and_round_trip():
    m = NumpyLanguageModel("lstm", 9, 4, 3, 2, seed=3)
    tm = make_torch("lstm", 9, 4, 3, 2)
    assert list(m.params) == list(tm.state_dict())
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
    back = NumpyLanguageModel.from_state_dict("lstm", tm.state_dict())
    for k, v in m.params.items():
        np.testing.assert_array_equal(back.params[k], v)


def test_tied_weights_share_one_array_and_are_detected():
    tm = make_torch("gru", 9, 5, 5, 1, tie=True)
    m = NumpyLanguageModel.from_state_dict("gru", tm.state_dict())
    assert m.tie_weights and m.params["output.weight"] is m.params["embedding.weight"]
    untied = make_torch("gru", 9, 5, 5, 1).state_dict()
    assert not NumpyLanguageModel.from_state_dict("gru", untied).tie_weights
    with pytest.raises(ValueError):
        NumpyLanguageModel("gru", 9, 4, 5, 1, tie_weights=True)


def test_load_state_dict_rejects_bad_keys_and_shapes():
    m = NumpyLanguageModel("gru", 9, 4, 3, 2)
    sd = m.state_dict()
    with pytest.raises(KeyError):
        m.load_state_dict({k: v for k, v in sd.items() if k != "output.bias"})
    with pytest.raises(KeyError):
        m.load_state_dict({**sd, "extra": np.zeros(1)})
    with pytest.raises(ValueError):
        m.load_state_dict({**sd, "output.bias": np.zeros(3)})
    with pytest.raises(ValueError):
        NumpyLanguageModel.from_state_dict("lstm", sd)  # 3H rows is not an LSTM


def test_cell_names():
    assert ref.canonical_cell("rnn") == ref.canonical_cell("RNN_TANH") == "rnn_tanh"
    assert [ref.num_gates(c) for c in ("rnn", "rnn_relu", "gru", "lstm")] == [1, 1, 3, 4]
    with pytest.raises(ValueError):
        ref.canonical_cell("transformer")


# ----------------------------------------------------------------------------------------------------
# Gradients: torch autograd, including tied weights and ignore_index masking


@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_grads_match_torch_autograd(cell, tie):
    rng = np.random.default_rng(1)
    V, E, H, L, T, B = 11, 5, 5, 2, 6, 3
    tm = make_torch(cell, V, E, H, L, tie=tie, seed=4)
    m = NumpyLanguageModel.from_state_dict(cell, tm.state_dict())
    assert m.tie_weights == tie
    x, y = random_batch(rng, V, T, B)
    state = random_state(m, B, rng)

    loss, grads, new_state = m.loss_and_grads(x, y, state)
    logits, t_state = tm(torch.from_numpy(x), to_torch_state(cell, state))
    t_loss = F.cross_entropy(logits.reshape(-1, V), torch.from_numpy(y).reshape(-1), ignore_index=IGNORE)
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-12)
    assert_grads_close(grads, torch_param_grads(tm))
    assert_state_close(new_state, from_torch_state(cell, t_state))
    if tie:
        assert grads["output.weight"] is grads["embedding.weight"]


def test_ignored_positions_contribute_nothing():
    rng = np.random.default_rng(2)
    m = NumpyLanguageModel("lstm", 8, 4, 4, 1)
    x, y = random_batch(rng, 8, 5, 2, ignore_frac=0.0)
    y2 = y.copy()
    y2[2:, 1] = IGNORE
    loss2, _, _ = m.loss_and_grads(x, y2)
    # The loss is the mean over the kept positions only, and ignored positions send back no gradient.
    logits, _ = m.forward(x)
    keep = y2 != IGNORE
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expect = -np.take_along_axis(logp, np.where(keep, y2, 0)[..., None], -1)[..., 0][keep].mean()
    assert loss2 == pytest.approx(expect, rel=1e-12)
    _, dlogits = ref.cross_entropy(logits, y2)
    assert not dlogits[~keep].any() and dlogits[keep].any()
    # All ignored: zero loss and zero gradients (torch would give nan).
    loss0, g0, _ = m.loss_and_grads(x, np.full_like(y, IGNORE))
    assert loss0 == 0.0 and all(not g.any() for g in g0.values())


# ----------------------------------------------------------------------------------------------------
# Gradients: finite differences (rnnkit.reference.gradcheck)


@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_gradcheck_finite_differences(cell, tie):
    results = gradcheck(cell, num_layers=2, tie_weights=tie, seed=3)
    names = {n for n, _ in results}
    expected = set(NumpyLanguageModel(cell, 7, 4 if tie else 5, 4, 2, tie_weights=tie).unique_names())
    assert names == expected  # every parameter is checked
    for name, err in results:
        assert err < 1e-6, (name, err)


@pytest.mark.parametrize("cell", ["rnn_tanh", "gru", "lstm"])
def test_gradcheck_truncated_objective(cell):
    # With bptt_truncate the differences are of the truncated objective (states before the window fixed).
    for name, err in gradcheck(cell, num_layers=2, T=6, bptt_truncate=1, seed=5):
        assert err < 1e-6, (name, err)


@pytest.mark.parametrize("cell", ["rnn", "rnn_relu", "gru", "lstm"])
def test_run_passes(cell):
    out = io.StringIO()
    assert run(cell, file=out) == 0
    text = out.getvalue()
    assert "max rel error" in text and " NO" not in text and "output.bias" in text


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_run_fails_on_a_broken_gradient(cell, monkeypatch):
    # Scale one parameter's gradient (bias_hh) by 1.01 inside the cell backward: the check must notice.
    name = f"{cell}_step_backward"
    original = getattr(cells, name)

    def broken(*args):
        *rest, g = args
        tmp = cells.zeros_like_weights(g)
        out = original(*rest, tmp)
        for a, b, scale in zip(g, tmp, (1.0, 1.0, 1.0, 1.01), strict=True):
            a += scale * b
        return out

    monkeypatch.setattr(cells, name, broken)
    out = io.StringIO()
    assert run(cell, file=out) == 1
    bad = [line.split()[0] for line in out.getvalue().splitlines() if line.endswith(" NO")]
    assert bad and all(n.endswith("bias_hh_l0") for n in bad)


@pytest.mark.parametrize("scale", [1.01, np.nan])
def test_run_fails_on_a_broken_output_layer_gradient(monkeypatch, capsys, scale):
    original = NumpyLanguageModel.loss_and_grads

    def broken(self, *a, **kw):
        loss, grads, state = original(self, *a, **kw)
        grads["output.bias"] *= scale
        return loss, grads, state

    monkeypatch.setattr(NumpyLanguageModel, "loss_and_grads", broken)
    assert run("rnn") == 1
    assert "output.bias" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------------
# Truncated BPTT against torch with the graph cut the same way


def torch_truncated_grads(tm: TorchLM, cell, x, y, state, k):
    """sum_t loss_t, each loss_t backpropagated through steps max(0, t-k)..t only (state before detached)."""
    T, V = x.shape[0], tm.output.out_features
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    n = int((y != IGNORE).sum())
    tm.zero_grad()
    total = 0.0
    for t in range(T):
        s = max(0, t - k)
        with torch.no_grad():
            st = to_torch_state(cell, state) if s == 0 else tm(xt[:s], to_torch_state(cell, state))[1]
        logits, _ = tm(xt[s:t + 1], detach_state(cell, st))
        loss_t = F.cross_entropy(logits[-1].reshape(-1, V), yt[t], ignore_index=IGNORE, reduction="sum") / n
        loss_t.backward()
        total += loss_t.item()
    return total, torch_param_grads(tm)


@pytest.mark.parametrize("k", [0, 2])
@pytest.mark.parametrize("cell", CELLS)
def test_truncated_bptt_matches_torch(cell, k):
    rng = np.random.default_rng(11)
    V, E, H, L, T, B = 9, 4, 5, 2, 6, 2
    tm = make_torch(cell, V, E, H, L, seed=2)
    m = NumpyLanguageModel.from_state_dict(cell, tm.state_dict())
    x, y = random_batch(rng, V, T, B)
    state = random_state(m, B, rng)
    loss, grads, _ = m.loss_and_grads(x, y, state, bptt_truncate=k)
    t_loss, t_grads = torch_truncated_grads(tm, cell, x, y, state, k)
    assert loss == pytest.approx(t_loss, rel=1e-12)
    assert_grads_close(grads, t_grads)
    # and truncation really changes something
    _, full, _ = m.loss_and_grads(x, y, state)
    assert not np.allclose(full["rnns.0.weight_hh_l0"], grads["rnns.0.weight_hh_l0"])


def test_truncation_at_least_T_minus_1_is_full_bptt():
    rng = np.random.default_rng(12)
    m = NumpyLanguageModel("lstm", 9, 4, 5, 2)
    x, y = random_batch(rng, 9, 6, 2)
    _, full, _ = m.loss_and_grads(x, y)
    for k in (5, 50):
        _, g, _ = m.loss_and_grads(x, y, bptt_truncate=k)
        assert_grads_close(g, full, rtol=1e-12)
    # the output layer gradient never depends on the truncation
    _, g4, _ = m.loss_and_grads(x, y, bptt_truncate=1)
    np.testing.assert_allclose(g4["output.weight"], full["output.weight"], rtol=1e-12)


@pytest.mark.parametrize("k", [None, 0, 2])
@pytest.mark.parametrize("cell", CELLS)
def test_layer_backward_matches_torch(cell, k):
    """One layer, objective sum_t <G_t, h_t>: dW, dxs and dh0 against autograd (windowed for k)."""
    rng = np.random.default_rng(13)
    T, B, I, H = 6, 2, 3, 4
    torch.manual_seed(5)
    layer = torch_layer(cell, I, H).double()
    w = cells.LayerWeights(*(p.detach().numpy() for p in layer.parameters()))
    xs = rng.standard_normal((T, B, I))
    G = rng.standard_normal((T, B, H))
    state = tuple(rng.uniform(-0.5, 0.5, (B, H)) for _ in range(2 if cell == "lstm" else 1))
    hs, _, caches = layer_forward(cell, xs, state, w)
    dxs, dstate0, g = layer_backward(cell, caches, G, w, bptt_truncate=k)

    xt = torch.from_numpy(xs).requires_grad_()
    st = [torch.from_numpy(s)[None].requires_grad_() for s in state]
    tst = tuple(st) if cell == "lstm" else st[0]
    if k is None:
        out, _ = layer(xt, tst)
        (out * torch.from_numpy(G)).sum().backward()
    else:
        for t in range(T):  # output t sees steps max(0, t-k)..t, from a detached state
            s = max(0, t - k)
            if s == 0:
                start = tst
            else:
                with torch.no_grad():
                    _, start = layer(xt[:s], tst)
            out, _ = layer(xt[s:t + 1], start)
            (out[-1] * torch.from_numpy(G[t])).sum().backward()
    np.testing.assert_allclose(hs, layer(torch.from_numpy(xs), tst)[0].detach().numpy(), rtol=1e-7)
    for ours, p in zip(g, layer.parameters(), strict=True):
        np.testing.assert_allclose(ours, p.grad.numpy(), rtol=1e-7, atol=1e-13)
    np.testing.assert_allclose(dxs, xt.grad.numpy(), rtol=1e-7, atol=1e-13)
    for ours, s in zip(dstate0, st, strict=True):
        np.testing.assert_allclose(ours, s.grad[0].numpy(), rtol=1e-7, atol=1e-13)


# ----------------------------------------------------------------------------------------------------
# Sequential vs batched


@pytest.mark.parametrize("cell", CELLS)
def test_step_by_step_equals_forward(cell):
    rng = np.random.default_rng(21)
    m = NumpyLanguageModel(cell, 10, 4, 5, 2, seed=1)
    x = rng.integers(0, 10, (7, 3))
    state = random_state(m, 3, rng)
    logits, final = m.forward(x, state)
    s = state
    for t in range(7):
        step_logits, s = m.step(x[t], s)
        np.testing.assert_allclose(step_logits, logits[t], rtol=1e-12, atol=1e-14)
    assert_state_close(s, final, rtol=1e-12)
    # and the state carries over: two halves equal the whole
    l1, mid = m.forward(x[:3], state)
    l2, end = m.forward(x[3:], mid)
    np.testing.assert_allclose(np.concatenate([l1, l2]), logits, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell", CELLS)
def test_batch_equals_separate_runs(cell):
    rng = np.random.default_rng(22)
    m = NumpyLanguageModel(cell, 10, 4, 5, 2, seed=2)
    x, y = random_batch(rng, 10, 6, 3)
    state = random_state(m, 3, rng)
    logits, final = m.forward(x, state)
    loss, grads, _ = m.loss_and_grads(x, y, state)
    n_total = (y != IGNORE).sum()
    summed = {k: np.zeros_like(v) for k, v in grads.items()}
    loss_sum = 0.0
    for b in range(3):
        sb = [tuple(a[b:b + 1] for a in s) for s in state] if cell == "lstm" else [s[b:b + 1] for s in state]
        lb, fb = m.forward(x[:, b:b + 1], sb)
        np.testing.assert_allclose(lb[:, 0], logits[:, b], rtol=1e-12, atol=1e-14)
        fb_expect = [tuple(a[b:b + 1] for a in s) for s in final] if cell == "lstm" else [
            s[b:b + 1] for s in final]
        assert_state_close(fb, fb_expect, rtol=1e-12)
        # the batch loss is the count-weighted mean of the per-sequence losses; same for the gradients
        nb = (y[:, b] != IGNORE).sum()
        lossb, gb, _ = m.loss_and_grads(x[:, b:b + 1], y[:, b:b + 1], sb)
        loss_sum += lossb * nb / n_total
        for k in summed:
            summed[k] += gb[k] * nb / n_total
    assert loss == pytest.approx(loss_sum, rel=1e-12)
    assert_grads_close(grads, summed, rtol=1e-10)


# ----------------------------------------------------------------------------------------------------
# Training


@pytest.mark.parametrize("seed", [0, 1])
def test_initial_loss_is_ln_V_with_small_init(seed):
    rng = np.random.default_rng(seed)
    for cell in ("rnn", "gru", "lstm"):
        m = NumpyLanguageModel(cell, 13, 8, 8, 2, seed=seed, init_scale=0.01)
        x, y = random_batch(rng, 13, 10, 4)
        loss, _ = m.loss(x, y)
        assert loss == pytest.approx(math.log(13), abs=5e-3)  # logits are all within ~0.05 of 0
    # the torch-like default init is further off but still in the neighbourhood
    loss, _ = NumpyLanguageModel("lstm", 13, 8, 8, 2, seed=seed).loss(x, y)
    assert abs(loss - math.log(13)) < 0.5


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_training_lowers_the_loss(cell):
    text = "abcdabcdabcdabcdabcd"
    ids = np.array(["abcd".index(ch) for ch in text])
    x, y = ids[:-1, None], ids[1:, None]  # (T, 1)
    m = NumpyLanguageModel(cell, 4, 8, 16, 1, seed=0, init_scale=0.1)
    losses = train_sgd(m, x, y, lr=0.5 if cell == "lstm" else 0.2, steps=300, bptt_truncate=4, clip=5.0)
    assert losses[0] == pytest.approx(math.log(4), abs=0.05)
    assert losses[-1] < 0.1 * losses[0], losses[::50]
    final, _ = m.loss(x, y)
    assert final < 0.1 * losses[0]


def test_sgd_step_updates_a_tied_array_once():
    m = NumpyLanguageModel("gru", 6, 4, 4, 1, tie_weights=True, seed=0)
    before = m.params["embedding.weight"].copy()
    grads = {k: np.ones_like(v) for k, v in m.params.items()}
    grads["output.weight"] = grads["embedding.weight"]
    m.sgd_step(grads, lr=0.1)
    np.testing.assert_allclose(m.params["embedding.weight"], before - 0.1)
    assert m.params["output.weight"] is m.params["embedding.weight"]

"""Search: greedy, temperature, top-k, top-p, seeds, min length and banned ids; LanguageModel.generate."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rnnkit.config import Config, ModelConfig
from rnnkit.data.tokenizers import WordTokenizer
from rnnkit.data.vocab import Vocab
from rnnkit.errors import RnnkitError
from rnnkit.models.lm import RNNLanguageModel
from rnnkit.search import (
    SamplingConfig,
    beam_search,
    choose,
    filter_logits,
    greedy_search,
    length_penalty,
    relative_max_lengths,
    sample_categorical,
    sample_search,
    sample_sequences,
)
from rnnkit.tasks.lm import LanguageModel

EOS = 3


def rows(logits: list[float], n: int) -> torch.Tensor:
    """The same next-token logits for ``n`` sequences: (n, V)."""
    return torch.tensor(logits).repeat(n, 1)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def frequencies(ids: torch.Tensor, vocab: int) -> torch.Tensor:
    return torch.bincount(ids, minlength=vocab).float() / ids.numel()


def test_greedy_is_argmax() -> None:
    logits = torch.randn(6, 40, generator=gen(0))
    assert torch.equal(choose(logits, SamplingConfig(greedy=True)), logits.argmax(-1))
    # greedy ignores temperature / top-k / top-p and the generator
    assert torch.equal(choose(logits, SamplingConfig(True, 0.3, 5, 0.5), gen(1)), logits.argmax(-1))


def test_banned_ids_are_never_chosen() -> None:
    logits = torch.randn(500, 12, generator=gen(0))
    logits[:, 7] = 100.0  # by far the best
    assert (choose(logits, SamplingConfig(greedy=True), banned=[7]) == logits.topk(2).indices[:, 1]).all()
    sampled = choose(logits, SamplingConfig(), gen(1), banned=[7, 0])
    assert not ((sampled == 7) | (sampled == 0)).any()


def test_top_k_never_picks_outside_the_k_best() -> None:
    logits = torch.randn(30, generator=gen(2))
    best = set(logits.topk(5).indices.tolist())
    filtered = filter_logits(logits.unsqueeze(0), top_k=5)[0]
    assert {i for i in range(30) if filtered[i] > float("-inf")} == best
    assert torch.equal(filtered[list(best)], logits[list(best)])  # kept logits are unchanged
    picks = choose(rows(logits.tolist(), 3000), SamplingConfig(top_k=5, temperature=5.0), gen(3))
    assert set(picks.tolist()) == best  # every one of the k is reachable, nothing else is
    assert torch.equal(choose(rows(logits.tolist(), 50), SamplingConfig(top_k=1), gen(4)),
                       torch.full((50,), int(logits.argmax())))


@pytest.mark.parametrize("top_p, nucleus", [(0.5, {1}), (0.7, {1, 3}), (0.9, {0, 1, 3}), (1.0, {0, 1, 2, 3})])
def test_top_p_keeps_the_smallest_nucleus(top_p: float, nucleus: set[int]) -> None:
    probs = torch.tensor([0.1, 0.6, 0.05, 0.25])  # sorted: 1 (0.6), 3 (0.85), 0 (0.95), 2 (1.0)
    logits = probs.log().unsqueeze(0)
    filtered = filter_logits(logits, top_p=top_p)[0]
    assert {i for i in range(4) if filtered[i] > float("-inf")} == nucleus
    picks = choose(logits.repeat(4000, 1), SamplingConfig(top_p=top_p), gen(5))
    assert set(picks.tolist()) == nucleus
    # within the nucleus the probabilities are renormalised, not flattened
    freq = frequencies(picks, 4)
    kept = torch.tensor(sorted(nucleus))
    torch.testing.assert_close(freq[kept], probs[kept] / probs[kept].sum(), atol=0.03, rtol=0)


def test_top_k_and_top_p_together() -> None:
    probs = torch.tensor([0.3, 0.29, 0.21, 0.2])
    filtered = filter_logits(probs.log().unsqueeze(0), top_k=3, top_p=0.5)[0]
    assert {i for i in range(4) if filtered[i] > float("-inf")} == {0, 1}


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_temperature_reshapes_the_distribution(temperature: float) -> None:
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    picks = choose(probs.log().repeat(20000, 1), SamplingConfig(temperature=temperature), gen(6))
    expected = probs ** (1 / temperature)
    torch.testing.assert_close(frequencies(picks, 4), expected / expected.sum(), atol=0.015, rtol=0)


def test_inverse_cdf_draws_follow_the_probabilities_and_skip_zeros(monkeypatch: pytest.MonkeyPatch) -> None:
    probs = torch.tensor([0.0, 0.25, 0.0, 0.5, 0.25, 0.0])
    picks = sample_categorical(probs.repeat(40000, 1), gen(12))
    torch.testing.assert_close(frequencies(picks, 6), probs, atol=0.01, rtol=0)
    # the extreme uniform draws: 0, and one whose product with the total rounded up to the total
    for u in (0.0, 1.0):
        monkeypatch.setattr(torch, "rand", lambda shape, generator=None, device=None, u=u: torch.full(shape, u))
        assert sample_categorical(probs.unsqueeze(0)).item() == (1 if u == 0 else 4)


def test_extreme_temperatures() -> None:
    logits = torch.randn(10, generator=gen(7))
    cold = choose(rows(logits.tolist(), 1000), SamplingConfig(temperature=1e-3), gen(8))
    assert (cold == logits.argmax()).all()
    hot = choose(rows(logits.tolist(), 5000), SamplingConfig(temperature=1e3), gen(9))
    assert frequencies(hot, 10).max() < 0.15  # close to uniform (0.1 each)


def test_seeded_sampling_is_repeatable() -> None:
    logits = torch.randn(64, 50, generator=gen(10))
    cfg = SamplingConfig(temperature=0.9, top_k=20, top_p=0.95)
    a = choose(logits, cfg, gen(11))
    assert torch.equal(a, choose(logits, cfg, gen(11)))
    assert not torch.equal(a, choose(logits, cfg, gen(12)))


@pytest.mark.parametrize("cfg, message", [
    (SamplingConfig(temperature=0), "temperature must be > 0"),
    (SamplingConfig(top_k=-1), "top-k must be >= 0"),
    (SamplingConfig(top_p=0), "top-p must be in"),
    (SamplingConfig(top_p=1.5), "top-p must be in"),
])
def test_sampling_config_validation(cfg: SamplingConfig, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cfg.validate()


# ----------------------------------------------------------------------------------------------------
# sample_sequences


def eos_loving_step(calls: list[int]):
    """A fake decoder: EOS is always the most likely next token; token 5 the second."""

    def step(ids: torch.Tensor, state):
        calls.append(len(ids))
        logits = torch.zeros(len(ids), 8)
        logits[:, EOS], logits[:, 5] = 10.0, 5.0
        return logits, state

    return step


def test_stops_at_eos_and_keeps_it() -> None:
    calls: list[int] = []
    first = torch.zeros(2, 8)
    first[:, 4] = 1.0
    out = sample_sequences(eos_loving_step(calls), first, None, 10, SamplingConfig(greedy=True), EOS)
    assert out == [[4, EOS], [4, EOS]]
    assert len(calls) == 1  # no step is run once every sequence has ended


def test_min_length_bans_eos_until_reached() -> None:
    calls: list[int] = []
    first = torch.zeros(1, 8)
    first[0, EOS], first[0, 5] = 10.0, 5.0
    out = sample_sequences(eos_loving_step(calls), first, None, 10, SamplingConfig(greedy=True),
                           EOS, min_new=4)
    assert out == [[5, 5, 5, 5, EOS]]


def test_max_new_without_eos_and_banned_ids() -> None:
    calls: list[int] = []
    out = sample_sequences(eos_loving_step(calls), torch.zeros(3, 8), None, 6,
                           SamplingConfig(greedy=True), eos_id=None, banned=[0])
    assert [len(o) for o in out] == [6, 6, 6]
    assert len(calls) == 5  # the last token needs no further step
    assert all(i != 0 for seq in out for i in seq)


def test_finished_rows_stop_while_others_continue() -> None:
    def step(ids, state):
        logits = torch.zeros(len(ids), 8)
        logits[0, EOS] = 10.0  # row 0 wants to end, row 1 never does
        logits[1, 6] = 10.0
        return logits, state

    out = sample_sequences(step, torch.zeros(2, 8) + torch.eye(8)[[7, 7]], None, 5,
                           SamplingConfig(greedy=True), EOS)
    assert out == [[7, EOS], [7, 6, 6, 6, 6]]


# ----------------------------------------------------------------------------------------------------
# LanguageModel.generate on an untrained tiny model (generation logic, not quality)

WORDS = "the cat sat on a mat and dog ran".split()


def tiny_lm(mode: str = "stream", bias: dict[str, float] | None = None) -> LanguageModel:
    torch.manual_seed(0)
    cfg = Config()
    cfg.data.mode = mode
    cfg.model = ModelConfig(cell="gru", embedding_size=8, hidden_size=12, layers=2)
    vocab = Vocab(WORDS)
    model = RNNLanguageModel(cfg.model, len(vocab))
    with torch.no_grad():
        for token, value in (bias or {}).items():
            model.output.bias[vocab.stoi[token]] += value
    return LanguageModel(Path("."), cfg, WordTokenizer(), vocab, model, torch.device("cpu"))


def manual_greedy(lm: LanguageModel, ids: list[int], n: int, window: int = 0) -> list[str]:
    """Greedy decoding that re-reads the whole history each step (no carried state)."""
    ids, new = list(ids), []
    for _ in range(n):
        x = torch.tensor(ids[-window:] if window else ids).unsqueeze(1)
        logits = lm.model(x).logits[-1, 0]
        logits[[Vocab.pad_id, Vocab.bos_id]] = float("-inf")
        nxt = int(logits.argmax())
        if nxt == Vocab.eos_id:
            break
        ids.append(nxt)
        new.append(lm.vocab.itos[nxt])
    return new


@pytest.mark.parametrize("mode, window", [("stream", 0), ("windows", 3)])
def test_greedy_generation_with_carried_state_equals_rereading(mode: str, window: int) -> None:
    lm = tiny_lm(mode, bias={"<eos>": -20.0})
    lm.config.data.window = 3
    prompt = "the cat sat on"
    got = lm.generate(prompt, 12, greedy=True)[0].split()
    assert len(got) == 12
    assert got == manual_greedy(lm, lm.vocab.encode(prompt.split()), 12, window)
    assert lm.generate(prompt, 5, greedy=True, include_prompt=True)[0] == " ".join(prompt.split() + got[:5])


def test_seeded_generation_repeatable_and_num_samples() -> None:
    lm = tiny_lm(bias={"<eos>": -20.0})
    a = lm.generate("the cat", 10, temperature=1.5, top_k=6, top_p=0.95, seed=4, num_samples=5)
    assert len(a) == 5 and all(len(t.split()) == 10 for t in a)
    assert a == lm.generate("the cat", 10, temperature=1.5, top_k=6, top_p=0.95, seed=4, num_samples=5)
    assert len(set(a)) > 1  # the samples differ from each other
    assert a != lm.generate("the cat", 10, temperature=1.5, top_k=6, top_p=0.95, seed=5, num_samples=5)


def test_sentence_mode_never_emits_unk_and_respects_min_length() -> None:
    lm = tiny_lm(bias={"<unk>": 30.0, "<pad>": 30.0, "<bos>": 30.0})
    plain = lm.generate("", 6, greedy=True)[0].split()
    assert plain == ["<unk>"] * 6  # the model loves <unk> ...
    sentence = lm.generate("", 6, greedy=True, sentence=True)[0].split()
    assert sentence and "<unk>" not in sentence and "<pad>" not in sentence and "<bos>" not in sentence
    eager = tiny_lm(bias={"<eos>": 30.0})
    assert eager.generate("", 6, greedy=True, sentence=True) == [""]  # ... or ends at once
    words = eager.generate("", 10, greedy=True, sentence=True, min_length=4)[0].split()
    assert len(words) == 4 and "<eos>" not in words


def test_generation_past_eos_prints_a_line_per_sentence() -> None:
    lm = tiny_lm(bias={"<eos>": 30.0})
    assert lm.generate("the", 4, greedy=True) == [""]  # stops at the first <eos>
    assert lm.generate("the", 4, greedy=True, stop_at_eos=False) == [""]  # four empty sentences: nothing
    mixed = tiny_lm(bias={"<eos>": 3.0})
    text = mixed.generate("the", 40, temperature=1.0, seed=0, stop_at_eos=False)[0]
    assert "<eos>" not in text and "\n" in text


def test_prompt_outside_the_vocabulary() -> None:
    lm = tiny_lm()
    with pytest.raises(RnnkitError, match="'zebra'") as err:
        lm.generate("the zebra sat", 3)
    assert "--allow-unk" in str(err.value)
    assert lm.prompt_ids("the zebra", allow_unk=True) == [lm.vocab.stoi["the"], Vocab.unk_id]
    assert len(lm.generate("the zebra sat", 3, greedy=True, allow_unk=True, stop_at_eos=False)[0].split()) == 3
    with pytest.raises(RnnkitError, match="temperature must be > 0"):
        lm.generate("the", 3, temperature=0.0)


# --- encoder-decoder search: greedy, sampling and batched beam search over a transition-table "model" ---

BOS = 2


class TableModel:
    """A fixed "model": the logits for source s at output position t after token p are ``table[s, t, p]``.

    State: (source index per row (N,), position). ``reorder`` selects rows, as a real decoder's would.
    """

    def __init__(self, sources: int, steps: int, vocab: int, seed: int = 0, scale: float = 2.0):
        self.table = torch.randn(sources, steps + 1, vocab, vocab, generator=gen(seed)) * scale
        self.calls = 0
        self.rows: list[int] = []  # rows of each step call

    def start(self, sources: list[int]) -> tuple[torch.Tensor, int]:
        return torch.tensor(sources), 0

    def step(self, prev: torch.Tensor, state: tuple[torch.Tensor, int]):
        self.calls += 1
        self.rows.append(prev.numel())
        src, t = state
        return self.table[src, t, prev], (src, t + 1)

    @staticmethod
    def reorder(state: tuple[torch.Tensor, int], index: torch.Tensor) -> tuple[torch.Tensor, int]:
        return state[0][index], state[1]

    def log_prob(self, source: int, ids: list[int]) -> float:
        """log p(ids <eos> | source), the last <eos> included."""
        total, prev = 0.0, BOS
        for t, i in enumerate([*ids, EOS]):
            total += torch.log_softmax(self.table[source, t, prev], -1)[i].item()
            prev = i
        return total


def exhaustive(model: TableModel, source: int, vocab: int, max_len: int, alpha: float = 0.0) -> list[tuple]:
    """Every output of up to ``max_len`` non-<eos> tokens, (score, ids) best first."""
    import itertools

    tokens = [i for i in range(vocab) if i != EOS]
    scored = []
    for n in range(max_len + 1):
        for ids in itertools.product(tokens, repeat=n):
            scored.append((model.log_prob(source, list(ids)) / length_penalty(n + 1, alpha), list(ids)))
    return sorted(scored, key=lambda x: -x[0])


def test_greedy_search_follows_the_argmax_and_scores_it() -> None:
    model = TableModel(3, 6, 7, seed=1)
    out = greedy_search(model.step, model.start([0, 1, 2]), 3, BOS, EOS, max_lengths=6)
    for source, hyp in enumerate(out):
        prev, ids = BOS, []
        for t in range(7):
            i = int(model.table[source, t, prev].argmax()) if t < 6 else EOS
            if i == EOS:
                break
            ids.append(i)
            prev = i
        assert hyp.ids == ids
        assert hyp.log_prob == pytest.approx(model.log_prob(source, ids), abs=1e-5) and hyp.score == hyp.log_prob


def test_beam_1_equals_greedy() -> None:
    model = TableModel(8, 10, 6, seed=2)
    sources = list(range(8))
    greedy = greedy_search(model.step, model.start(sources), 8, BOS, EOS, max_lengths=10)
    beam = beam_search(model.step, model.reorder, model.start(sources), 8, BOS, EOS, 10, beam_size=1)
    assert [b[0].ids for b in beam] == [g.ids for g in greedy]
    assert [b[0].score for b in beam] == pytest.approx([g.score for g in greedy], abs=1e-5)


@pytest.mark.parametrize("alpha, seed", [(0.0, 3), (1.0, 3), (1.0, 4), (2.0, 5)])
def test_batched_beam_equals_one_source_at_a_time(alpha: float, seed: int) -> None:
    model = TableModel(6, 9, 8, seed=seed)
    limits = [9, 3, 7, 0, 5, 8]
    batched = beam_search(model.step, model.reorder, model.start(list(range(6))), 6, BOS, EOS, limits,
                          beam_size=4, alpha=alpha, n_best=3)
    for s in range(6):
        alone = beam_search(model.step, model.reorder, model.start([s]), 1, BOS, EOS, limits[s], beam_size=4,
                            alpha=alpha, n_best=3)[0]
        assert [h.ids for h in batched[s]] == [h.ids for h in alone]
        assert [h.score for h in batched[s]] == pytest.approx([h.score for h in alone], abs=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_wide_beam_finds_the_exhaustive_best(seed: int) -> None:
    """Vocabulary 4 (<eos> among them), length 4: a beam as wide as the 108 extensions of the longest
    prefixes never prunes, so it is exact: all 121 outputs, in order."""
    model = TableModel(2, 4, 4, seed=seed, scale=1.0)
    out = beam_search(model.step, model.reorder, model.start([0, 1]), 2, BOS, EOS, 4, beam_size=121, n_best=121)
    for source in range(2):
        best = exhaustive(model, source, 4, 4)
        assert [h.ids for h in out[source]] == [ids for _, ids in best]
        assert [h.score for h in out[source]] == pytest.approx([s for s, _ in best], abs=1e-5)
    narrow = beam_search(model.step, model.reorder, model.start([0, 1]), 2, BOS, EOS, 4, beam_size=2)
    assert all(n[0].score <= exhaustive(model, s, 4, 4)[0][0] + 1e-6 for s, n in enumerate(narrow))


def test_a_done_source_does_not_change_while_others_run() -> None:
    """Source 0 is done at once (its <eos> beats every live beam); with a strong length penalty a longer
    output would score better later, but the batch running on for source 1 must not change its result."""
    model = TableModel(2, 8, 4, seed=9)
    model.table[0] = -10.0
    model.table[0, 0, BOS, EOS], model.table[0, 0, BOS, 0] = 2.0, 1.5
    model.table[0, 1:, :, 0] = 10.0
    model.table[0, 2:, :, EOS] = 20.0
    model.table[1, :, :, EOS] = -30.0  # source 1 runs to its limit
    both = beam_search(model.step, model.reorder, model.start([0, 1]), 2, BOS, EOS, 8, beam_size=2, alpha=5.0)
    alone = beam_search(model.step, model.reorder, model.start([0]), 1, BOS, EOS, 8, beam_size=2, alpha=5.0)
    assert both[0][0].ids == alone[0][0].ids == []
    assert len(both[1][0].ids) == 8


def test_done_sources_leave_the_batch() -> None:
    model = TableModel(3, 12, 6, seed=11)
    model.table[:, :, :, EOS] = -30.0
    limits = [2, 10, 5]
    out = beam_search(model.step, model.reorder, model.start([0, 1, 2]), 3, BOS, EOS, limits, beam_size=4)
    assert [len(h[0].ids) for h in out] == limits
    assert model.rows == [12] * 3 + [8] * 3 + [4] * 5  # 3 sources x 4 beams, then 2, then 1


def test_finished_hypotheses_leave_the_live_beams_full() -> None:
    """Beam 2: after step 0 the beams are [0] and [1], and "<eos>" is finished; the finished one must not
    push [1] out of the beam: its continuation [1 1 1 1] is the best output under a strong length penalty."""
    model = TableModel(1, 6, 4, seed=10)
    table = model.table[0]
    table.zero_()
    table[0, BOS, 0], table[0, BOS, EOS], table[0, BOS, 1], table[0, BOS, BOS] = 5.0, 2.6, 2.1, -30.0
    table[1:, 0, BOS] = 20.0  # after [0] nearly all mass is on the banned <bos>: every continuation is bad
    table[1:4, 1, 1] = 20.0
    table[4, 1, EOS] = 20.0
    out = beam_search(model.step, model.reorder, model.start([0]), 1, BOS, EOS, 6, beam_size=2, alpha=5.0,
                      banned=[BOS])
    assert out[0][0].ids == [1, 1, 1, 1]


def test_length_penalty_reranks_and_nbest_is_sorted() -> None:
    model = TableModel(4, 8, 6, seed=5)
    for alpha in (0.0, 0.6, 2.0):
        out = beam_search(model.step, model.reorder, model.start(list(range(4))), 4, BOS, EOS, 8, beam_size=5,
                          alpha=alpha, n_best=5)
        for source, hyps in enumerate(out):
            assert len(hyps) == 5
            assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
            for h in hyps:
                assert h.log_prob == pytest.approx(model.log_prob(source, h.ids), abs=1e-5)
                assert h.score == pytest.approx(h.log_prob / length_penalty(len(h.ids) + 1, alpha), abs=1e-5)
    assert length_penalty(1, 1.0) == 1.0 and length_penalty(7, 1.0) == 2.0 and length_penalty(7, 0.0) == 1.0


def test_max_length_respected_per_source() -> None:
    model = TableModel(5, 12, 6, seed=6)
    model.table[:, :, :, EOS] = -30.0  # the model never wants to stop: every output runs to its limit
    limits = torch.tensor([0, 1, 4, 12, 7])
    beam = beam_search(model.step, model.reorder, model.start(list(range(5))), 5, BOS, EOS, limits, beam_size=3,
                       n_best=3)
    greedy = greedy_search(model.step, model.start(list(range(5))), 5, BOS, EOS, limits)
    for limit, hyps, g in zip(limits.tolist(), beam, greedy, strict=True):
        assert len(g.ids) == limit and all(len(h.ids) == limit for h in hyps)
        assert g.log_prob < -25  # the forced <eos> is scored


def test_search_bans_ids_and_stops_early() -> None:
    model = TableModel(2, 30, 6, seed=7)
    model.table[:, :, :, 4] = 40.0  # the favourite, banned below
    model.table[:, :3, :, EOS] = -50.0
    model.table[:, 3:, :, EOS] = 50.0  # every output ends at the 4th position
    greedy = greedy_search(model.step, model.start([0, 1]), 2, BOS, EOS, 30, banned=[4, BOS])
    beam = beam_search(model.step, model.reorder, model.start([0, 1]), 2, BOS, EOS, 30, beam_size=3,
                       banned=[4, BOS])
    for hyp in [*greedy, *(b[0] for b in beam)]:
        assert len(hyp.ids) == 3 and not {4, BOS} & set(hyp.ids)
    model.calls = 0
    beam_search(model.step, model.reorder, model.start([0, 1]), 2, BOS, EOS, 30, beam_size=3)
    assert model.calls <= 5  # stopped when done, not at the max length


def test_sampling_search_is_seeded_and_filtered() -> None:
    model = TableModel(1, 6, 10, seed=8, scale=1.0)
    runs = [sample_search(model.step, model.start([0] * 200), 200, BOS, EOS, 6, SamplingConfig(top_k=2), gen(1))
            for _ in range(2)]
    assert [h.ids for h in runs[0]] == [h.ids for h in runs[1]]
    firsts = {h.ids[0] if h.ids else EOS for h in runs[0]}
    assert firsts == set(model.table[0, 0, BOS].topk(2).indices.tolist())  # both top-2 drawn, nothing else
    top1 = sample_search(model.step, model.start([0]), 1, BOS, EOS, 6, SamplingConfig(top_k=1), gen(2))
    assert top1[0].ids == greedy_search(model.step, model.start([0]), 1, BOS, EOS, 6)[0].ids


def test_search_argument_checks() -> None:
    model = TableModel(1, 3, 5)
    with pytest.raises(ValueError, match="n_best"):
        beam_search(model.step, model.reorder, model.start([0]), 1, BOS, EOS, 3, beam_size=2, n_best=3)
    with pytest.raises(ValueError, match="max lengths"):
        greedy_search(model.step, model.start([0]), 1, BOS, EOS, -1)
    assert relative_max_lengths(torch.tensor([4, 10]), 1.5, 2).tolist() == [8, 17]
    assert relative_max_lengths(torch.tensor([4, 10]), 2.0, 0, limit=12).tolist() == [8, 12]

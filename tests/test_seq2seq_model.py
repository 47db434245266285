"""Seq2SeqModel: fused teacher forcing == step mode for every decoder style, padding and batch invariance,
one-hot input, stable parameter names, bridges, reorder for beam search, config checks, learning."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch
import torch.nn.functional as F

from rnnkit.checkpoint import load_weights, save_weights
from rnnkit.errors import RnnkitError
from rnnkit.models.seq2seq import Seq2SeqModel, Seq2SeqModelConfig

SRC_V, TRG_V, H = 11, 13, 8
PAD, BOS, EOS = 0, 1, 2

# (decoder, attention score, input feeding): every decoder the config can select
DECODERS = [("repeat", "bahdanau", False), ("state", "bahdanau", False), ("peek", "bahdanau", False),
            ("attention", "bahdanau", False), ("attention", "dot", False), ("attention", "general", False),
            ("attention", "bahdanau", True), ("attention", "general", True)]
VARIANTS = [  # cell, bridge, bidirectional, encoder_layers, decoder_layers
    ("lstm", "last", False, 2, 2), ("gru", "learned", True, 2, 1), ("rnn_tanh", "last", False, 1, 2),
    ("lstm", "learned", True, 1, 2), ("gru", "zero", False, 2, 2)]


def _cases():
    for decoder, score, feeding in DECODERS:
        for cell, bridge, bidirectional, enc, dec in VARIANTS:
            if (bridge == "zero" and decoder == "state") or (score == "dot" and bidirectional):
                continue
            yield pytest.param(dict(cell=cell, bridge=bridge, bidirectional=bidirectional, encoder_layers=enc,
                                    decoder_layers=dec, decoder=decoder, attention=score, input_feeding=feeding),
                               id=f"{decoder}-{score}{'-feed' if feeding else ''}-{cell}-{bridge}"
                                  f"{'-bi' if bidirectional else ''}-{enc}x{dec}")


CASES = list(_cases())


def build(seed: int = 0, **options) -> Seq2SeqModel:
    torch.manual_seed(seed)
    options = {"hidden_size": H, "src_embedding_size": 5, "trg_embedding_size": 6, **options}
    return Seq2SeqModel(Seq2SeqModelConfig(**options), SRC_V, TRG_V)


def padded(seqs: list[list[int]], extra: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Time-major (max length + extra, B) ids padded with PAD, and the lengths."""
    out = torch.full((max(map(len, seqs)) + extra, len(seqs)), PAD)
    for b, s in enumerate(seqs):
        out[: len(s), b] = torch.tensor(s)
    return out, torch.tensor([len(s) for s in seqs])


def sample_batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    srcs = [torch.randint(3, SRC_V, (n,), generator=g).tolist() for n in (6, 2, 4)]
    trgs = [[BOS, *torch.randint(3, TRG_V, (n,), generator=g).tolist()] for n in (3, 5, 1)]
    src, lengths = padded(srcs)
    return src, lengths, padded(trgs)[0]


def step_through(model: Seq2SeqModel, src, lengths, trg_in) -> tuple[torch.Tensor, list]:
    """Logits of a loop of step() fed the gold previous tokens, and each step's attention weights."""
    state = model.start(model.encode(src, lengths))
    logits, attention = [], []
    for t in range(trg_in.size(0)):
        out, state = model.step(trg_in[t], state)
        logits.append(out)
        attention.append(state.attention)
    return torch.stack(logits), attention


# ------------------------------------------------------------------------------------- the two modes
@pytest.mark.parametrize("options", CASES)
def test_teacher_forcing_equals_step_mode(options: dict) -> None:
    model = build(**options).eval()
    src, lengths, trg_in = sample_batch()
    logits, attention = model.teacher_forced(src, lengths, trg_in)
    assert logits.shape == (trg_in.size(0), 3, TRG_V)
    stepped, step_attention = step_through(model, src, lengths, trg_in)
    torch.testing.assert_close(stepped, logits, rtol=1e-5, atol=1e-6)
    if options["decoder"] == "attention":
        torch.testing.assert_close(torch.stack(step_attention, dim=1), attention, rtol=1e-5, atol=1e-6)
        assert attention.shape == (3, trg_in.size(0), src.size(0))
        torch.testing.assert_close(attention.sum(-1), torch.ones(3, trg_in.size(0)))
        assert not attention[1, :, 2:].any()  # source padding gets exactly no weight
    else:
        assert attention is None and step_attention == [None] * trg_in.size(0)


@pytest.mark.parametrize("options", [
    dict(cell="gru", bidirectional=True, bridge="learned", decoder_hidden_size=2 * H, input_feeding=True),
    dict(cell="lstm", bidirectional=True, bridge="learned", decoder_hidden_size=2 * H, attention="dot"),
    dict(cell="lstm", bridge="zero", decoder="peek", decoder_hidden_size=H + 3)], ids=["joeynmt-shape", "dot", "peek"])
def test_a_decoder_of_its_own_size_agrees_in_both_modes(options: dict) -> None:
    """model.decoder_hidden_size (JoeyNMT's shape: a bi-GRU of 256 per direction, a decoder of 512)."""
    model = build(**options).eval()
    assert model.decoder.rnns[0].hidden_size == options["decoder_hidden_size"]
    src, lengths, trg_in = sample_batch()
    logits, _ = model.teacher_forced(src, lengths, trg_in)
    torch.testing.assert_close(step_through(model, src, lengths, trg_in)[0], logits, rtol=1e-5, atol=1e-6)


def test_a_decoder_size_the_last_bridge_cannot_feed_is_refused() -> None:
    with pytest.raises(RnnkitError, match="model.bridge"):
        build(bridge="last", decoder_hidden_size=2 * H)


@pytest.mark.parametrize("decoder, feeding, calls", [("state", False, 1), ("peek", False, 1), ("repeat", False, 1),
                                                     ("attention", False, 1), ("attention", True, 0)])
def test_only_input_feeding_steps_through_time_when_teacher_forced(decoder: str, feeding: bool, calls: int) -> None:
    """The fused decoders call each torch.nn layer once per batch; input feeding runs a loop instead."""
    model = build(decoder=decoder, input_feeding=feeding, decoder_layers=2)
    seen = []
    for layer in model.decoder.rnns:
        layer.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    src, lengths, trg_in = sample_batch()
    model(src, lengths, trg_in)
    assert seen == [trg_in.size(0)] * 2 * calls


def test_the_kernel_description_names_the_step_loop_of_input_feeding() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert build(decoder="state").describe_kernels(cpu) == (
        "LSTM encoder in length segments (oneDNN or ATen per segment, the faster for its length; packed, ATen's "
        "C++ loop, when too many lengths differ); state decoder: one fused call per layer over the target (oneDNN "
        "or ATen, the faster for the length)")
    assert ("GRU encoder in length segments on ATen's C++ loop when training on 16 steps or more; else packed by "
            "length (the same loop)") in build(cell="gru").describe_kernels(cpu)
    assert "over the target (ATen's C++ loop)" in build(cell="gru").describe_kernels(cpu)
    assert "a Python loop over target steps" in build(decoder="attention", input_feeding=True).describe_kernels(cuda)
    assert "(cuDNN); peek decoder: one fused call per layer over the target (cuDNN)" in build(
        decoder="peek").describe_kernels(cuda)


# ----------------------------------------------------------------------------- padding and batch mates
# the sentence's batch mates: lengths 9, 1, 2 beside its 4 (an LSTM runs them packed: too many short segments) or
# 7, 5, 8 (in length segments: the first, whole-batch segment covers half the steps)
MATES = {"packed": [[3, 3, 4, 5, 6, 7, 8, 9, 10], [4], [9, 8]],
         "segments": [[3, 3, 4, 5, 6, 7, 8], [4, 5, 6, 7, 3], [9, 8, 7, 6, 5, 4, 3, 3]]}


@pytest.mark.parametrize("mates", MATES)
@pytest.mark.parametrize("options", [c for c in CASES if c.values[0]["cell"] in ("lstm", "gru")][::2])
def test_a_sentence_gets_the_same_logits_alone_or_in_a_padded_batch(options, mates: str, stack_calls) -> None:
    model = build(**options).eval()
    src, trg = [5, 6, 7, 8], [BOS, 4, 9, 10]
    alone = model(*padded([src]), padded([trg])[0])
    stack_calls.clear()  # alone: one length, one segment
    mates_src = MATES[mates]
    mates_trg = [[BOS, 5], [BOS, 3, 4, 5, 6, 7, 8, 9], [BOS, 12, 11]]
    for position in (0, 1, 3):
        srcs = mates_src[:position] + [src] + mates_src[position:]
        trgs = mates_trg[:position] + [trg] + mates_trg[position:]
        for extra in (0, 3):
            src_ids, lengths = padded(srcs, extra)
            logits = model(src_ids, lengths, padded(trgs, extra)[0])
            torch.testing.assert_close(logits[: len(trg), position], alone[:, 0], rtol=1e-5, atol=1e-6)
    path = mates if options["cell"] == "lstm" else "packed"  # a GRU encoder's padded batches: under 16 steps, packed
    assert [call.path for call in stack_calls] == [path] * 6


# ------------------------------------------------------------------------------------ inputs and names
def test_one_hot_input_is_an_embedding_by_the_identity() -> None:
    """src/trg_embedding_size 0: one-hot inputs (seed 000); the same model as identity embeddings."""
    one_hot = build(src_embedding_size=0, trg_embedding_size=0, decoder="peek").eval()
    names = {n for n, _ in one_hot.named_parameters()}
    assert not any("embedding" in n for n in names)
    assert one_hot.encoder.rnns[0].weight_ih_l0.shape == (4 * H, SRC_V)
    assert one_hot.decoder.rnns[0].weight_ih_l0.shape == (4 * H, TRG_V + H)
    assert one_hot.vocab_parameters() == {"decoder.output.weight": "trg", "decoder.output.bias": "trg"}
    embedded = build(src_embedding_size=SRC_V, trg_embedding_size=TRG_V, decoder="peek").eval()
    state = {**one_hot.state_dict(), "encoder.embedding.weight": torch.eye(SRC_V),
             "decoder.embedding.weight": torch.eye(TRG_V)}
    embedded.load_state_dict(state)
    src, lengths, trg_in = sample_batch()
    torch.testing.assert_close(one_hot(src, lengths, trg_in), embedded(src, lengths, trg_in), rtol=0, atol=0)


def test_parameter_names_are_the_stable_ones() -> None:
    model = build(cell="lstm", bidirectional=True, bridge="learned", decoder="attention", encoder_layers=2)
    names = {n for n, _ in model.named_parameters()}
    layer = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"}
    expected = ({"encoder.embedding.weight", "decoder.embedding.weight", "decoder.output.weight",
                 "decoder.output.bias", "bridge.hidden.weight", "bridge.hidden.bias", "bridge.cell.weight",
                 "bridge.cell.bias", "decoder.attention.key.weight", "decoder.attention.query.weight",
                 "decoder.attention.energy.weight", "decoder.attention.combine.weight"}
                | {f"encoder.rnns.{k}.{p}{r}" for k in (0, 1) for p in layer for r in ("", "_reverse")}
                | {f"decoder.rnns.0.{p}" for p in layer})
    assert names == expected
    assert model.vocab_parameters() == {"encoder.embedding.weight": "src", "decoder.embedding.weight": "trg",
                                        "decoder.output.weight": "trg", "decoder.output.bias": "trg"}
    params = dict(model.named_parameters())
    for name, role in model.vocab_parameters().items():
        assert params[name].size(0) == (SRC_V if role == "src" else TRG_V)
    repeat = build(decoder="repeat", bridge="zero")
    repeat_names = {n for n, _ in repeat.named_parameters()}
    assert not any(n.startswith(("bridge", "decoder.embedding", "decoder.attention")) for n in repeat_names)
    assert {n for n, _ in build(decoder="attention", attention="dot").decoder.attention.named_parameters()} == {
        "combine.weight"}


def test_tied_embeddings_share_one_tensor_saved_once(tmp_path) -> None:
    model = build(tie_embeddings=True, trg_embedding_size=H, decoder="state").eval()
    assert model.decoder.output.weight is model.decoder.embedding.weight
    save_weights(model, tmp_path / "w.safetensors")
    other = build(seed=5, tie_embeddings=True, trg_embedding_size=H, decoder="state").eval()
    load_weights(other, tmp_path / "w.safetensors")
    assert other.decoder.output.weight is other.decoder.embedding.weight
    src, lengths, trg_in = sample_batch()
    assert torch.equal(other(src, lengths, trg_in), model(src, lengths, trg_in))


@pytest.mark.parametrize("options", [dict(decoder="repeat", bridge="zero"), dict(decoder="state", cell="gru"),
                                     dict(decoder="peek", bidirectional=True, bridge="learned"),
                                     dict(decoder="attention", input_feeding=True, tie_embeddings=True,
                                          trg_embedding_size=H, init="xavier")])
def test_weights_round_trip_through_the_loaders_header_check(options: dict, tmp_path) -> None:
    """save_weights / load_weights, with the header checked against the model built on the meta device."""
    from rnnkit.checkpoint import check_weights_header, expected_tensors, shapes_only

    model = build(**options).eval()
    save_weights(model, tmp_path / "w.safetensors")
    meta = shapes_only(lambda: build(**options))
    assert expected_tensors(meta) == expected_tensors(model)
    check_weights_header(meta, tmp_path / "w.safetensors")
    other = build(seed=7, **options).eval()
    load_weights(other, tmp_path / "w.safetensors")
    src, lengths, trg_in = sample_batch()
    assert torch.equal(other(src, lengths, trg_in), model(src, lengths, trg_in))


@pytest.mark.parametrize("init", ["uniform", "xavier"])
def test_init_schemes(init: str) -> None:
    model = build(init=init, decoder="attention")
    for name, p in model.named_parameters():
        if init == "uniform":
            assert 0.05 < p.abs().max() <= 0.1, name
        elif p.dim() == 1:
            assert not p.any(), name
        elif name.endswith("embedding.weight"):  # JoeyNMT's N(0, 0.1)
            assert 0.05 < p.std() < 0.15, name
        else:  # Glorot's bound of each gate's matrix (a fused torch.nn matrix stacks the gates: LSTM 4)
            rows = p.size(0) // 4 if ".rnns." in name else p.size(0)
            bound = (6 / (rows + p.size(1))) ** 0.5
            assert bound / 2 < p.abs().max() <= bound, name


# ------------------------------------------------------------------------------------------- bridges
def test_the_last_bridge_aligns_layers_from_the_top() -> None:
    model = build(bridge="last", encoder_layers=2, decoder_layers=3, decoder="state").eval()
    src, lengths, _ = sample_batch()
    encoded = model.encode(src, lengths)
    state = model.start(encoded)
    assert not state.rnn[0][0].any() and not state.rnn[0][1].any()  # below the encoder's lowest: zeros
    for k in (1, 2):
        for got, want in zip(state.rnn[k], encoded.final[k - 1], strict=True):
            assert torch.equal(got, want)
    shallow = build(bridge="last", encoder_layers=3, decoder_layers=1, decoder="state").eval()
    encoded = shallow.encode(src, lengths)
    assert torch.equal(shallow.start(encoded).rnn[0][0], encoded.final[2][0])


def test_the_learned_bridge_maps_both_directions_to_the_decoder_size() -> None:
    model = build(cell="lstm", bidirectional=True, bridge="learned", decoder="peek").eval()
    src, lengths, trg_in = sample_batch()
    encoded = model.encode(src, lengths)
    assert encoded.outputs.shape == (src.size(0), 3, 2 * H)
    state = model.start(encoded)
    h, c = encoded.final[0]
    want_h = torch.tanh(model.bridge.hidden(torch.cat([h[0], h[1]], dim=-1)))
    torch.testing.assert_close(state.rnn[0][0][0], want_h)
    torch.testing.assert_close(state.rnn[0][1][0], model.bridge.cell(torch.cat([c[0], c[1]], dim=-1)))
    assert state.context.shape == (3, 2 * H)  # peek's context: both directions' final states
    torch.testing.assert_close(state.context, torch.cat([h[0], h[1]], dim=-1))


def test_the_backward_direction_reads_each_sentence_from_its_own_end() -> None:
    model = build(bidirectional=True, bridge="learned").eval()
    src, lengths = padded([[5, 6, 7], [8, 9, 10, 4, 3]])
    encoded = model.encode(src, lengths)
    alone = model.encode(*padded([[5, 6, 7]]))
    torch.testing.assert_close(encoded.outputs[:3, :1], alone.outputs, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(encoded.final[0][0][:, :1], alone.final[0][0], rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------- beam search's reorder
@pytest.mark.parametrize("options", [dict(decoder="attention", input_feeding=True), dict(decoder="peek"),
                                     dict(decoder="repeat", cell="gru")])
def test_reorder_selects_rows_like_decoding_those_sentences(options: dict) -> None:
    model = build(**options).eval()
    src, lengths, trg_in = sample_batch()
    state = model.start(model.encode(src, lengths))
    _, state = model.step(trg_in[0], state)
    index = torch.tensor([2, 0, 0, 1])  # a different order, one sentence twice, as beam search expands
    moved = model.reorder(state, index)
    order = [2, 0, 0, 1]
    fresh = model.start(model.encode(src[:, order], lengths[order]))
    _, fresh = model.step(trg_in[0, order], fresh)
    for t in range(1, trg_in.size(0)):
        got, moved = model.step(trg_in[t, order], moved)
        want, fresh = model.step(trg_in[t, order], fresh)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_reordering_within_sentences_moves_only_the_recurrent_state() -> None:
    """Beam search's per-step reorder keeps each row's sentence: the source side is not copied."""
    model = build(decoder="attention").eval()
    src, lengths, trg_in = sample_batch()
    beams = model.reorder(model.start(model.encode(src, lengths)), torch.arange(3).repeat_interleave(2))
    assert beams.rows.tolist() == [0, 0, 1, 1, 2, 2] and beams.memory.size(0) == 6
    _, beams = model.step(trg_in[0].repeat_interleave(2), beams)
    swapped = model.reorder(beams, torch.tensor([1, 0, 2, 2, 5, 4]))
    assert swapped.memory is beams.memory and swapped.keys is beams.keys and swapped.padding is beams.padding
    h = beams.rnn[0][0]
    assert torch.equal(swapped.rnn[0][0], h[:, [1, 0, 2, 2, 5, 4]])
    assert torch.equal(swapped.attention, beams.attention[[1, 0, 2, 2, 5, 4]])


# ------------------------------------------------------------------------------------------ training
@pytest.mark.parametrize("options", [dict(decoder="attention", input_feeding=True, dropout=0.2, encoder_layers=2,
                                          decoder_layers=2, bidirectional=True, bridge="learned"),
                                     dict(decoder="peek", cell="gru", dropout=0.2, decoder_layers=2),
                                     dict(decoder="repeat", tie_embeddings=False)])
def test_every_parameter_gets_a_gradient(options: dict) -> None:
    model = build(**options).train()
    src, lengths, trg_in = sample_batch()
    model(src, lengths, trg_in).pow(2).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_dropout_acts_in_training_only() -> None:
    model = build(decoder="attention", dropout=0.5, encoder_layers=2, decoder_layers=2)
    plain = build(decoder="attention", encoder_layers=2, decoder_layers=2)
    src, lengths, trg_in = sample_batch()
    model.train()
    assert not torch.allclose(model(src, lengths, trg_in), model(src, lengths, trg_in))
    model.eval(), plain.eval()
    assert torch.equal(model(src, lengths, trg_in), plain(src, lengths, trg_in))


def _copy_batch(n: int, generator: torch.Generator):
    """The copy task on 4 symbols (ids 3..6), 2-4 long: src, lengths, trg_in (BOS + copy), trg_out (copy + EOS)."""
    lengths = torch.randint(2, 5, (n,), generator=generator)
    seqs = [torch.randint(3, 7, (int(k),), generator=generator).tolist() for k in lengths]
    src, _ = padded(seqs)
    trg_in, _ = padded([[BOS, *s] for s in seqs])
    trg_out, _ = padded([[*s, EOS] for s in seqs])
    return src, lengths, trg_in, trg_out


def _greedy(model: Seq2SeqModel, src, lengths, steps: int) -> torch.Tensor:
    state = model.start(model.encode(src, lengths))
    prev, out = torch.full((src.size(1),), BOS), []
    for _ in range(steps):
        logits, state = model.step(prev, state)
        prev = logits.argmax(-1)
        out.append(prev)
    return torch.stack(out)


@pytest.mark.parametrize("decoder, feeding", [("repeat", False), ("state", False), ("peek", False),
                                              ("attention", False), ("attention", True)])
def test_each_decoder_style_learns_to_copy(decoder: str, feeding: bool) -> None:
    """300 Adam steps on batches of 32; greedy decoding of 200 held-out sentences then copies them."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = Seq2SeqModelConfig(cell="gru", hidden_size=48, src_embedding_size=16, trg_embedding_size=16,
                             decoder=decoder, input_feeding=feeding)
    model = Seq2SeqModel(cfg, 7, 7)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        src, lengths, trg_in, trg_out = _copy_batch(32, generator)
        loss = F.cross_entropy(model(src, lengths, trg_in).flatten(0, 1), trg_out.flatten(), ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    src, lengths, _, trg_out = _copy_batch(200, torch.Generator().manual_seed(99))
    with torch.no_grad():
        output = _greedy(model.eval(), src, lengths, trg_out.size(0))
    exact = ((output == trg_out) | (trg_out == PAD)).all(0).float().mean()
    assert exact >= 0.97


# ---------------------------------------------------------------------------------------- bad config
@pytest.mark.parametrize("options, key", [
    (dict(cell="transformer"), "model.cell"), (dict(decoder="beam"), "model.decoder"),
    (dict(attention="cosine"), "model.attention"), (dict(bridge="mean"), "model.bridge"),
    (dict(init="orthogonal"), "model.init"), (dict(hidden_size=0), "model.hidden_size"),
    (dict(src_embedding_size=-1), "model.src_embedding_size"), (dict(decoder_layers=0), "model.decoder_layers"),
    (dict(dropout=1.0), "model.dropout"), (dict(decoder="peek", input_feeding=True), "model.input_feeding"),
    (dict(decoder="state", bridge="zero"), "model.bridge"), (dict(bidirectional=True, bridge="last"), "model.bridge"),
    (dict(bidirectional=True, bridge="learned", attention="dot"), "model.attention"),
    (dict(tie_embeddings=True), "model.tie_embeddings"),
    (dict(tie_embeddings=True, trg_embedding_size=H, decoder="repeat"), "model.tie_embeddings")])
def test_a_config_no_model_can_be_built_from_is_refused_naming_the_key(options: dict, key: str) -> None:
    with pytest.raises(RnnkitError, match=rf"(^|'){re.escape(key)}[ ']"):
        build(**options)


def test_the_config_documents_every_key() -> None:
    import inspect

    from rnnkit.models import seq2seq

    source = inspect.getsource(seq2seq.Seq2SeqModelConfig)
    for field in dataclasses.fields(Seq2SeqModelConfig):
        line = next(line for line in source.splitlines() if line.strip().startswith(f"{field.name}:"))
        assert "  # " in line, field.name


def test_bad_shapes_are_refused_naming_the_argument() -> None:
    model = build()
    src, lengths, trg_in = sample_batch()
    with pytest.raises(ValueError, match="src_lengths"):
        model(src, lengths[:2], trg_in)
    with pytest.raises(ValueError, match="src_lengths must lie in 1.."):
        model(src, torch.tensor([6, 0, 4]), trg_in)


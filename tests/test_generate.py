"""Generation as it happens: streamed text, chunks of samples, argument checks, Ctrl-C, empty samples."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import rnnkit
import rnnkit.tasks.lm as lm_module
from rnnkit.cli import SAMPLE_SEPARATOR, main
from rnnkit.data.text_decoder import CONTEXT, TextDecoder
from rnnkit.data.tokenizers import CharTokenizer, SentencePieceTokenizer, WordTokenizer
from rnnkit.errors import RnnkitError
from rnnkit.reference.backend import load_numpy
from rnnkit.tasks.lm import TextPiece, chunk_size
from test_search import tiny_lm


def whole_text(tokenizer, tokens: list[str]) -> str:
    """Decoding a whole sequence at once, as generate did before it streamed (the reference)."""
    tokens = [t for t in tokens if t != "<bos>"]
    if isinstance(tokenizer, CharTokenizer):
        return tokenizer.detokenize(tokens)
    lines, line = [], []
    for tok in tokens:
        if tok == "<eos>":
            lines.append(line)
            line = []
        else:
            line.append(tok)
    return "\n".join(tokenizer.detokenize(ln) for ln in [*lines, line] if ln)


def streamed_text(tokenizer, tokens: list[str]) -> str:
    decoder = TextDecoder(tokenizer)
    return "".join(decoder.push(t) for t in tokens) + decoder.flush()


def spm_tokenizer() -> SentencePieceTokenizer:
    lines = [f"the {w} cat sat on the {v} mat, naïvely: ünïcödé €{i}" for i, (w, v) in
             enumerate(zip(["big", "small", "red", "old"] * 20, ["blue", "green", "flat", "new"] * 20, strict=True))]
    return SentencePieceTokenizer.train(lines, 60, "bpe", lowercase=False)


@pytest.mark.parametrize("kind", ["char", "word", "sentencepiece"])
def test_streamed_pieces_join_up_to_the_whole_text(kind: str) -> None:
    tokenizer = {"char": CharTokenizer, "word": WordTokenizer, "sentencepiece": spm_tokenizer}[kind]()
    if kind == "sentencepiece":
        words = [tokenizer.processor.id_to_piece(i) for i in range(tokenizer.processor.get_piece_size())]
    else:
        words = list("ab c,é") if kind == "char" else ["the", "cat", ",", "sat", "'s", "."]
    rng = random.Random(0)
    for length in (0, 1, 5, 40, 300):  # long lines go past the decoder's context
        tokens = [rng.choice([*words, *words, "<eos>", "<eos>", "<unk>", "<bos>"]) for _ in range(length)]
        assert streamed_text(tokenizer, tokens) == whole_text(tokenizer, tokens), tokens


def test_one_sample_streams_token_by_token_and_joins_to_generate() -> None:
    lm = tiny_lm(bias={"<eos>": -20.0})
    pieces = list(lm.stream("the cat", 12, temperature=1.2, seed=3))
    assert len(pieces) == 13 and [p.end for p in pieces] == [False] * 12 + [True]
    assert pieces[-1] == TextPiece(0, "", True, 12, False)
    assert "".join(p.text for p in pieces) == lm.generate("the cat", 12, temperature=1.2, seed=3)[0]


def test_samples_come_in_bounded_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert chunk_size(32, 1_000_000) == 64 and chunk_size(32, 5) == 5
    assert chunk_size(100_000, 1000) == 10 and chunk_size(10_000_000, 3) == 1  # rows x n stays <= 2^20
    lm = tiny_lm(bias={"<eos>": -20.0})
    one_chunk = lm.generate("the", 6, seed=2, num_samples=5)
    batches: list[int] = []
    lm.model.register_forward_pre_hook(lambda module, args: batches.append(args[0].size(1)))
    monkeypatch.setattr(lm_module, "MAX_CHUNK", 2)
    chunked = lm.generate("the", 6, seed=2, num_samples=5)
    assert set(batches) == {2, 1}  # chunks of 2, 2 and 1 sample(s): never all 5 at once
    assert len(chunked) == 5 and all(len(t.split()) == 6 for t in chunked)
    assert chunked == lm.generate("the", 6, seed=2, num_samples=5)  # a seed still repeats
    assert chunked[:2] != one_chunk[:2] or chunked[2:4] != one_chunk[2:4]  # documented: chunking draws anew
    order = [p.sample for p in lm.stream("the", 6, seed=2, num_samples=5) if p.end]
    assert order == [0, 1, 2, 3, 4]


BAD_ARGS = [
    (dict(n=1.5), TypeError, "n must be an integer"),
    (dict(n=True), TypeError, "n must be an integer"),
    (dict(n=-1), RnnkitError, r"n \(-n\) must be >= 0"),
    (dict(temperature="hot"), TypeError, "temperature must be a number"),
    (dict(temperature=float("nan")), RnnkitError, "temperature must be > 0"),
    (dict(temperature=-1), RnnkitError, "temperature must be > 0"),
    (dict(num_samples=True), TypeError, "num_samples must be an integer"),
    (dict(num_samples=0), RnnkitError, r"num_samples \(--num-samples\) must be >= 1"),
    (dict(prompt=None), TypeError, "prompt must be a string"),
    (dict(prompt=123), TypeError, "prompt must be a string"),
    (dict(seed="x"), TypeError, "seed must be an integer"),
    (dict(seed=1.0), TypeError, "seed must be an integer"),
    (dict(seed=2**64), RnnkitError, "seed .* must fit in 64 bits"),
    (dict(top_k=2.5), TypeError, "top_k must be an integer"),
    (dict(top_k=-3), RnnkitError, r"top_k \(--top-k\) must be >= 0"),
    (dict(top_p="0.9"), TypeError, "top_p must be a number"),
    (dict(top_p=1.5), RnnkitError, "top-p must be in"),
    (dict(min_length=-1), RnnkitError, r"min_length \(--min-length\) must be >= 0"),
    (dict(greedy="yes"), TypeError, "greedy must be True or False"),
    (dict(stop_at_eos=1), TypeError, "stop_at_eos must be True, False or None"),
    (dict(include_prompt=None), TypeError, "include_prompt must be True or False"),
]


@pytest.mark.parametrize("kwargs, error, message", BAD_ARGS)
def test_generate_arguments_are_checked_and_named(kwargs: dict, error: type, message: str) -> None:
    lm = tiny_lm()
    with pytest.raises(error, match=message):
        lm.generate(**{"prompt": "the", **kwargs})
    with pytest.raises(error, match=message):
        lm.stream(**{"prompt": "the", **kwargs})  # at the call, not at the first piece


def test_numpy_backend_streams_and_checks_like_torch(tiny_model: Path) -> None:
    numpy_lm, torch_lm = load_numpy(tiny_model), rnnkit.load(tiny_model)
    pieces = list(numpy_lm.stream("the cat", 8, greedy=True, stop_at_eos=False))
    assert len(pieces) > 2
    assert "".join(p.text for p in pieces) == torch_lm.generate("the cat", 8, greedy=True, stop_at_eos=False)[0]
    with pytest.raises(TypeError, match="n must be an integer"):
        numpy_lm.generate("the", n=1.5)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_empty_sample_is_explained(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rnnkit, "load", lambda path, device="cpu": tiny_lm(bias={"<eos>": 30.0}))
    rc, out, err = run_cli(capsys, "generate", "any", "--prompt", "the", "--greedy")
    assert (rc, out) == (0, "\n")
    assert "ended it at once with <eos>" in err and "--min-length" in err and "--no-stop" in err
    rc, out, err = run_cli(capsys, "generate", "any", "--prompt", "the", "--greedy", "--min-length", "3")
    assert rc == 0 and len(out.split()) == 3 and err == ""
    rc, out, err = run_cli(capsys, "generate", "any", "--prompt", "the", "--num-samples", "3", "--seed", "1")
    assert out == "\n\n\n" and "sample 1 is empty" in err and "3 of 3 samples were empty" in err


def test_samples_that_span_lines_are_separated(capsys, tiny_model: Path) -> None:
    rc, out, _ = run_cli(capsys, "generate", tiny_model, "-n", "30", "--no-stop", "--num-samples", "3",
                         "--seed", "5")
    assert rc == 0
    samples = out[:-1].split(f"\n{SAMPLE_SEPARATOR}\n")
    assert samples == rnnkit.load(tiny_model).generate("", 30, seed=5, num_samples=3, stop_at_eos=False)


def test_ctrl_c_keeps_the_printed_text(tiny_model: Path) -> None:
    """A run of ten million tokens, interrupted once text has arrived: what was printed stays, one line
    on stderr, exit 130, no traceback."""
    env = {**os.environ, "PYTHONPATH": str(Path(rnnkit.__file__).parents[1])}
    # a shell's background job (`pytest ... &`) ignores SIGINT, and children inherit that: give Ctrl-C back
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit", "generate", str(tiny_model), "-n", "10000000",
                             "--no-stop", "--seed", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = proc.stdout.read(200)  # streamed: arrives long before the run could end
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    text = (first + rest).decode()
    assert len(text.split()) >= 20 and text.endswith("\n")
    assert "Traceback" not in err.decode()
    assert err.decode().strip().splitlines()[-1].startswith("interrupted: kept the text printed above")


def test_progress_bar_only_where_it_can_be_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    from rnnkit import cli

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    bar = cli._generation_progress(10_000)
    assert bar is not None and bar.total == 10_000
    bar.close()
    assert cli._generation_progress(100) is None  # short runs need none
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert cli._generation_progress(10_000) is None  # the text on the terminal is the progress



def test_verbose_says_which_kernel_runs(capsys, tiny_model: Path) -> None:
    rc, _, err = run_cli(capsys, "generate", tiny_model, "-n", "3", "-v")
    assert rc == 0 and "generate: 1 x torch.nn.LSTM on ATen's C++ loop for 1-step batches of 1" in err
    rc, _, err = run_cli(capsys, "generate", tiny_model, "-n", "3", "--num-samples", "5", "--verbose")
    assert "for 1-step batches of 5" in err
    rc, _, err = run_cli(capsys, "evaluate", tiny_model, "--data", tiny_model.parent / "valid.txt", "-v")
    assert rc == 0 and "evaluate: 1 x torch.nn.LSTM on oneDNN fused kernel for 8-step batches of 4" in err
    rc, _, err = run_cli(capsys, "generate", tiny_model, "-n", "3", "-v", "--backend", "numpy")
    assert "the NumPy reference" in err


def test_the_decoder_keeps_only_recent_tokens_of_an_endless_line() -> None:
    decoder = TextDecoder(WordTokenizer())
    text = "".join(decoder.push("cat") for _ in range(10_000))
    assert text == " ".join(["cat"] * 10_000) and len(decoder.line) <= 4 * CONTEXT

"""Shared fixtures: tiny corpora written to tmp_path, a tiny training config, the real data slices."""

from __future__ import annotations

import csv
import importlib
import importlib.resources
import os
import random
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import rnnkit

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FABLE = Path(str(importlib.resources.files("rnnkit") / "assets" / "belling_the_cat.txt"))
DEMO_PROMPT = "had a general"
DEMO_CONTINUATION = "council to consider what measures they could take to outwit their common enemy"

# A model small enough that a few dozen updates take well under a second on one CPU core.
TINY = ["model.cell=lstm", "model.embedding_size=8", "model.hidden_size=16", "model.layers=1",
        "train.optimizer=adam", "train.lr=0.01", "train.batch_size=4", "train.eval_batch_size=4",
        "train.bptt=8", "train.epochs=2", "train.log_every=1", "train.progress=false", "train.seed=3",
        "train.device=cpu", "tokenizer.kind=word"]

_SUBJECTS = ["the cat", "a dog", "the old mouse", "my friend", "the bird"]
_VERBS = ["sees", "likes", "chases", "finds", "hears"]
_OBJECTS = ["the ball", "a red box", "the tree", "some cheese", "the cat"]


def corpus_lines(n: int = 60, seed: int = 0) -> list[str]:
    """``n`` short, regular sentences (about 6 words each): learnable in a few updates."""
    rng = random.Random(seed)
    return [f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} ." for _ in range(n)]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_log(model_dir: Path) -> list[dict[str, str]]:
    with (Path(model_dir) / "log.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def timeless(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """log.csv rows without their clocks (what two runs of the same work share)."""
    return [{k: v for k, v in r.items() if k not in ("elapsed_sec", "tokens_per_sec")} for r in rows]


def assert_same_run(a: Path, b: Path) -> None:
    """Two run directories hold the same weights (best and last checkpoint) and log rows but their clocks:
    a run stopped and resumed equals one that was not."""
    from safetensors.torch import load_file

    for name in ("model.safetensors", "checkpoint/last.safetensors"):
        x, y = load_file(Path(a) / name), load_file(Path(b) / name)
        assert set(x) == set(y) and all(torch.equal(x[k], y[k]) for k in x), name
    assert timeless(read_log(a)) == timeless(read_log(b))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "curves: the test checks curves.png, so draw it for real")


@pytest.fixture
def no_curves(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip drawing curves.png (about 0.5 s per checkpoint here) unless the test is marked ``curves``."""
    if request.node.get_closest_marker("curves") is None:
        trainer_module = importlib.import_module("rnnkit.train")  # rnnkit.train is also the API function
        monkeypatch.setattr(trainer_module, "plot_curves", lambda rows, path, metric="ppl": None)


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """The machine is small and shared: one intra-op thread keeps timings steady and results exact
    (OMP_NUM_THREADS too: runs that choose their own thread count, rnnkit.runtime.choose_threads, read it)."""
    old, old_env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    yield
    torch.set_num_threads(old)
    if old_env is None:
        del os.environ["OMP_NUM_THREADS"]
    else:
        os.environ["OMP_NUM_THREADS"] = old_env


@dataclass(frozen=True)
class StackCall:
    """One run_stack call given lengths: the path it took and the dtypes of what it returned."""

    path: str  # "segments" (run_segmented) or "packed" (run_packed)
    grad: bool  # whether gradients were enabled (a training forward)
    dtype: torch.dtype  # the outputs'
    state_dtype: torch.dtype  # the top layer's final state's


@pytest.fixture
def stack_calls(monkeypatch: pytest.MonkeyPatch) -> list[StackCall]:
    """Records every padded batch (lengths given) that rnnkit.nn.stack.run_stack runs, in order."""
    from rnnkit.nn import stack

    calls: list[StackCall] = []

    def spy(path: str, run: Callable) -> Callable:
        def recorded(rnns, x, lengths, *rest):
            out, final = run(rnns, x, lengths, *rest)
            if lengths is not None:
                top = final[-1][0] if isinstance(final[-1], tuple) else final[-1]
                calls.append(StackCall(path, torch.is_grad_enabled(), out.dtype, top.dtype))
            return out, final
        return recorded

    monkeypatch.setattr(stack, "run_segmented", spy("segments", stack.run_segmented))
    monkeypatch.setattr(stack, "run_packed", spy("packed", stack.run_packed))
    return calls


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A training text of 60 lines (about 350 tokens)."""
    return write_lines(tmp_path / "data" / "train.txt", corpus_lines(60, seed=0))


@pytest.fixture
def valid_corpus(tmp_path: Path) -> Path:
    """A held-out text in the same small language."""
    return write_lines(tmp_path / "data" / "valid.txt", corpus_lines(12, seed=1))


@pytest.fixture
def train_tiny(tmp_path: Path, corpus: Path) -> Callable[..., Path]:
    """``train_tiny(name, *overrides, **train_kwargs) -> model dir``: a tiny LM on ``corpus``."""

    def run(name: str = "model", *overrides: str, **kwargs) -> Path:
        out = tmp_path / name
        kwargs.setdefault("data", str(corpus))
        rnnkit.train("lm", out=out, overrides=[*TINY, *overrides], **kwargs)
        return out

    return run


@pytest.fixture(scope="session")
def demo_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo recipe trained on the embedded fable (about 10-30 s), shared by the tests that need it."""
    out = tmp_path_factory.mktemp("demo") / "model"
    rnnkit.train("lm", recipe="demo", data=str(FABLE), out=out, device="cpu")
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny word LM trained once (stream mode, with a validation file); copy it before changing it."""
    root = tmp_path_factory.mktemp("tiny")
    train = write_lines(root / "train.txt", corpus_lines(60, seed=0))
    valid = write_lines(root / "valid.txt", corpus_lines(12, seed=1))
    out = root / "model"
    rnnkit.train("lm", data=str(train), valid=str(valid), out=out, overrides=[*TINY, "train.epochs=3"])
    return out


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (real data slices); tests using it skip when it is not checked out beside us."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED}")
    return SHARED


def signal_on_call(original: Callable, at: int, signum: int = signal.SIGINT,
                   calls: list[int] | None = None) -> Callable:
    """A stand-in for ``original`` (a task's ``batch_loss``, ``validate`` ...) that delivers a real signal ``signum`` to
    this process during call ``at``, then does what ``original`` does; ``calls`` (a list) counts the calls."""
    calls = [] if calls is None else calls

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == at:
            signal.raise_signal(signum)
        return original(*args, **kwargs)

    return wrapper

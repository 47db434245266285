"""CPU runtime: start-up without torch, the allocator settings, OpenMP's wait policy, the thread count,
one final validation, curves drawn at most every minute and at the end, and ``--recipe NAME`` beside a folder NAME."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import rnnkit
from conftest import TINY, read_log, signal_on_call
from rnnkit import runtime
from rnnkit.cli import main
from rnnkit.config import recipe_dir, resolve_recipe
from rnnkit.errors import RnnkitError

SRC = str(Path(rnnkit.__file__).resolve().parents[1])


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter on this tree, without the test session's thread setting."""
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "RNNKIT_MALLOC")}
    return subprocess.run([sys.executable, "-c", code], env={**base, "PYTHONPATH": SRC, **env},
                          capture_output=True, text=True, check=True)


@pytest.mark.parametrize("argv", [None, ["recipes"], ["--help"], ["train", "--help"]])
def test_import_help_and_recipes_do_not_import_torch(argv: list[str] | None) -> None:
    run = "import rnnkit" if argv is None else (
        f"from rnnkit.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass")
    out = python(f"import sys\n{run}\nprint('TORCH', 'torch' in sys.modules)").stdout
    assert out.splitlines()[-1] == "TORCH False"


def test_data_toy_does_not_import_torch(tmp_path) -> None:
    argv = ["data", "toy", "copy", "--out", str(tmp_path / "toy"), "--n", "20"]
    run = f"import sys\nfrom rnnkit.cli import main\nmain({argv!r})"
    out = python(f"{run}\nprint('TORCH', 'torch' in sys.modules)").stdout
    assert out.splitlines()[-1] == "TORCH False"
    assert (tmp_path / "toy" / "train.tsv").is_file()


def test_train_is_the_api_function_also_after_importing_the_trainer_module() -> None:
    out = python("import rnnkit, sys\nfrom rnnkit.train import Trainer\nfrom rnnkit import api\n"
                 "print(rnnkit.train is api.train, rnnkit.load is api.load, "
                 "sys.modules['rnnkit.train'].Trainer is Trainer)").stdout
    assert out.split() == ["True", "True", "True"]


MMAPPED_BYTES = """
import ctypes, sys
class Info(ctypes.Structure):  # glibc's struct mallinfo2
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
before = libc.mallinfo2().hblkhd
block = libc.malloc(4 * 2**20)  # a 4 MiB tensor's worth
print(libc.mallinfo2().hblkhd - before)
"""


@pytest.mark.skipif(not runtime.glibc_version(), reason="glibc only")
def test_allocator_keeps_mid_sized_blocks_off_mmap_unless_opted_out() -> None:
    """glibc maps a 4 MiB block straight from the kernel (and unmaps it on free) by default; rnnkit's
    thresholds serve it from the heap. RNNKIT_MALLOC=0 or glibc's own variables keep the default."""
    tuned = python("import rnnkit\n" + MMAPPED_BYTES).stdout.split()
    opted_out = python("import rnnkit\n" + MMAPPED_BYTES, RNNKIT_MALLOC="0").stdout.split()
    users_own = python("import rnnkit\n" + MMAPPED_BYTES, MALLOC_TOP_PAD_="0").stdout.split()
    assert tuned == ["0"]
    assert int(opted_out[0]) >= 4 * 2**20 and int(users_own[0]) >= 4 * 2**20


def test_passive_waiting_unless_the_user_chose_or_torch_is_loaded() -> None:
    show = "import os\nprint(os.environ.get('OMP_WAIT_POLICY'))"
    assert python("import rnnkit\n" + show).stdout.strip() == "PASSIVE"
    assert python("import rnnkit\n" + show, OMP_WAIT_POLICY="ACTIVE").stdout.strip() == "ACTIVE"
    assert python("import torch, rnnkit\n" + show).stdout.strip() == "None"  # too late to matter: not set


def test_thread_count_asked_for_else_omp_num_threads_else_every_usable_core(monkeypatch) -> None:
    monkeypatch.setattr(runtime, "usable_cores", lambda: 3)
    assert runtime.choose_threads(2) == (2, "asked for")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # torchrun sets it for each of its processes
    assert runtime.choose_threads(0) == (1, "OMP_NUM_THREADS")
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert runtime.choose_threads(0) == (3, "all 3 cores")


@pytest.mark.usefixtures("no_curves")
def test_threads_option_of_every_torch_verb(capsys, tmp_path: Path, corpus: Path, tiny_model: Path) -> None:
    """--threads N reaches torch in train (logged in the run's first line), generate and evaluate."""
    import torch

    out = tmp_path / "model"
    try:
        rc = main(["train", "lm", "--data", str(corpus), "--out", str(out), "--threads", "2",
                   *[a for s in [*TINY, "train.max_steps=2", "train.progress=true"] for a in ("--set", s)]])
        first_line = capsys.readouterr().out.splitlines()[0]
        assert rc == 0 and "; 2 threads (asked for);" in first_line
        assert torch.get_num_threads() == 2
        for verb in (["generate", str(tiny_model), "-n", "3"], ["evaluate", str(tiny_model), "--data", str(corpus)]):
            torch.set_num_threads(2)
            assert main([*verb, "--threads", "1"]) == 0
            assert torch.get_num_threads() == 1
        assert main(["evaluate", str(tiny_model), "--data", str(corpus), "--threads", "-1"]) == 2
        assert "--threads must be at least 1" in capsys.readouterr().err
    finally:
        torch.set_num_threads(1)


def test_validation_scored_once_at_the_end(monkeypatch, train_tiny) -> None:
    """results.json's validation metrics are the best validation's, not a second scoring of the same weights."""
    from rnnkit.tasks.lm import LMTask

    calls = []
    real = LMTask.validate
    monkeypatch.setattr(LMTask, "validate", lambda self, model: calls.append(1) or real(self, model))
    out = train_tiny("model", "train.epochs=3")
    valid_rows = [r for r in read_log(out) if r["split"] == "valid"]
    assert len(calls) == len(valid_rows) == 3
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert round(results["valid"]["loss"], 6) == min(float(r["loss"]) for r in valid_rows)


def drawings(monkeypatch) -> list[int]:
    """The number of log rows of each drawing of curves.png from now on (nothing is drawn)."""
    drawn: list[int] = []
    monkeypatch.setattr(importlib.import_module("rnnkit.train"), "plot_curves",
                        lambda rows, path, metric="ppl": drawn.append(len(rows)))
    return drawn


def test_a_fast_run_draws_its_curves_once_at_the_end_with_every_row(monkeypatch, train_tiny) -> None:
    """Six validations and checkpoints within CURVES_EVERY_SEC: one drawing, of all the log's rows."""
    drawn = drawings(monkeypatch)
    out = train_tiny("model", "train.epochs=6", "train.log_every=2")
    rows = read_log(out)
    assert sum(r["split"] == "valid" for r in rows) == 6
    assert drawn == [len(rows)]


def test_curves_redrawn_while_training_at_most_every_interval(monkeypatch, train_tiny) -> None:
    """With no least interval, every checkpoint that added rows redraws (and the end adds none): the
    interval is what keeps a fast run from drawing at every validation."""
    monkeypatch.setattr(importlib.import_module("rnnkit.train"), "CURVES_EVERY_SEC", 0.0)
    drawn = drawings(monkeypatch)
    train_tiny("model", "train.epochs=2", "train.log_every=0")
    assert drawn == [1, 2]


@pytest.mark.parametrize("stop", ["train.max_steps=5", "train.early_stop=1"])
def test_a_stopped_run_draws_every_row_of_its_log(monkeypatch, train_tiny, stop: str) -> None:
    drawn = drawings(monkeypatch)
    out = train_tiny("model", "train.epochs=8", "train.eval_every=3", "train.lr=3", stop)
    assert drawn == [len(read_log(out))]


def test_an_interrupted_run_draws_every_row_of_its_log(monkeypatch, train_tiny, tmp_path: Path) -> None:
    from rnnkit.tasks.lm import LMTask

    drawn = drawings(monkeypatch)
    calls: list[int] = []
    monkeypatch.setattr(LMTask, "batch_loss", signal_on_call(LMTask.batch_loss, 7, calls=calls))  # Ctrl-C in update 7
    with pytest.raises(KeyboardInterrupt):
        train_tiny("model", "train.epochs=4", "train.eval_every=3")
    assert len(calls) == 7 and drawn == [len(read_log(tmp_path / "model"))]  # the rows of steps 1-7 included


def test_recipe_name_means_the_builtin_even_beside_a_folder_of_that_name(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()  # e.g. the output of `rnnkit demo --out demo`
    (tmp_path / "ptb-small").write_text("not a recipe", encoding="utf-8")
    assert resolve_recipe("demo") == recipe_dir() / "demo.yaml"
    assert resolve_recipe("ptb-small") == recipe_dir() / "ptb-small.yaml"
    (tmp_path / "mine.yml").write_text("model:\n  layers: 1\n", encoding="utf-8")
    assert resolve_recipe("mine.yml") == Path("mine.yml")
    with pytest.raises(RnnkitError, match="recipe file not found"):
        resolve_recipe("./demo")  # a slash: a path, and a folder is not a recipe file
    (tmp_path / "myrecipe").write_text("model:\n  layers: 1\n", encoding="utf-8")
    with pytest.raises(RnnkitError, match=r"unknown recipe 'myrecipe'.*write \./myrecipe"):
        resolve_recipe("myrecipe")


@pytest.mark.usefixtures("no_curves")
def test_demo_runs_inside_a_folder_holding_demo(capsys, monkeypatch, tmp_path: Path) -> None:
    real_train = rnnkit.train

    def short_train(*args, overrides=(), **kwargs):
        return real_train(*args, overrides=[*overrides, "train.max_steps=20"], **kwargs)

    monkeypatch.setattr(rnnkit, "train", short_train)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "notes.txt").write_text("someone's folder", encoding="utf-8")
    assert main(["demo", "--out", "runs/demo", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "1 thread: asked for" in out.splitlines()[0] and "greedy:" in out


def test_loading_a_model_checks_its_shapes_without_importing_dynamo(tiny_model: Path) -> None:
    """The header check builds the model on the meta device with initialisers skipped: torch's meta
    initialisers import torch._dynamo (about 1 s of every generate/evaluate)."""
    out = python(f"import sys, rnnkit\nlm = rnnkit.load({str(tiny_model)!r})\n"
                 f"print(lm.evaluate({str(tiny_model.parent / 'train.txt')!r})['tokens'] > 0, "
                 "'torch._dynamo' in sys.modules)").stdout
    assert out.split()[-2:] == ["True", "False"]


@pytest.mark.parametrize("overrides", [{}, {"cell": "gru", "tie_weights": True, "init_range": 0.1},
                                       {"cell": "rnn_tanh", "weight_drop": 0.5, "layers": 3}])
def test_shapes_only_matches_the_real_model(overrides: dict) -> None:
    import dataclasses

    from rnnkit.checkpoint import shapes_only
    from rnnkit.config import ModelConfig
    from rnnkit.models.lm import RNNLanguageModel

    cfg = dataclasses.replace(ModelConfig(embedding_size=12, hidden_size=12), **overrides)
    meta = shapes_only(lambda: RNNLanguageModel(cfg, 50))
    real = RNNLanguageModel(cfg, 50)
    assert {k: (v.shape, v.dtype) for k, v in meta.state_dict().items()} == \
        {k: (v.shape, v.dtype) for k, v in real.state_dict().items()}
    assert all(v.is_meta for v in meta.state_dict().values())

"""Model directories are owned, locked and checked (issue 11 items 1, 2, 3, 8, 9).

What rnnkit made carries a marker and only that is replaced; one process writes a model directory at a
time; a model directory is untrusted input, checked (header, dtypes, fingerprint, every JSON field)
before anything is built; --resume may change what is safe to change; no pickle ever runs.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomllib
import torch
from safetensors.torch import load_file, save_file

import rnnkit
from conftest import TINY, write_lines
from rnnkit.checkpoint import read_safetensors_header
from rnnkit.cli import main
from rnnkit.errors import RnnkitError
from rnnkit.files import data_fingerprint
from rnnkit.lock import ModelDirLock
from rnnkit.reference.backend import load_numpy

pytestmark = pytest.mark.usefixtures("no_curves")
ROOT = Path(__file__).resolve().parents[1]


def cli(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def fails(capsys, *argv) -> str:
    """Exit status 2 and one ``error:`` line, no traceback; returns the line."""
    rc, out, err = cli(capsys, *argv)
    assert rc == 2, (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def sets(*overrides: str) -> list[str]:
    return [a for s in overrides for a in ("--set", s)]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ----------------------------------------------------------------------------------------------------
# 1. never delete or overwrite what rnnkit did not create


def test_a_new_run_marks_its_folder(train_tiny) -> None:
    out = train_tiny("m", "train.max_steps=2")
    marker = json.loads((out / "rnnkit.json").read_text(encoding="utf-8"))
    assert marker["made_by"] == "rnnkit train" and marker["rnnkit_version"] == rnnkit.__version__
    assert marker["created"][:4].isdigit()


def test_the_demo_replaces_only_a_folder_the_demo_made(capsys, train_tiny) -> None:
    trained = train_tiny("trained", "train.max_steps=2")  # a model the user trained: not the demo's
    before = snapshot(trained)
    err = fails(capsys, "demo", "--out", trained)
    assert "was made by rnnkit train, not by the demo" in err
    assert snapshot(trained) == before
    demo = train_tiny("demo", "train.max_steps=2", made_by="rnnkit demo")
    (demo / "notes.txt").write_text("mine", encoding="utf-8")  # the user's file in a demo folder
    before = snapshot(demo)
    err = fails(capsys, "demo", "--out", demo)
    assert "rnnkit replaces only its own files, and this folder also holds notes.txt" in err
    assert snapshot(demo) == before


def test_a_failed_run_can_be_started_again_with_overwrite(capsys, tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "m"
    args = ["train", "lm", "--data", corpus, "--out", out, *sets(*TINY, "model.cell=rnn_relu", "train.optimizer=sgd")]
    err = fails(capsys, *args, *sets("train.lr=1e10"))
    assert "loss is nan at step 2" in err and "--overwrite" in err and "--resume" in err
    err = fails(capsys, *args, *sets("train.lr=0.1"))  # the same command again: the folder is not empty
    assert "output folder is not empty" in err and "--overwrite" in err
    rc, stdout, err = cli(capsys, *args, *sets("train.lr=0.1", "train.max_steps=3"), "--overwrite")
    assert rc == 0, err
    assert f"replacing the earlier run in {out}: removed config.yaml, rnnkit.json, tokenizer.json, vocab.json" in stdout
    assert rnnkit.load(out).config.train.lr == 0.1
    (out / "thesis.txt").write_text("keep me", encoding="utf-8")
    err = fails(capsys, *args, "--overwrite")
    assert "also holds thesis.txt" in err and (out / "thesis.txt").is_file() and (out / "model.safetensors").is_file()
    err = fails(capsys, *args, "--overwrite", "--resume")
    assert "--resume and --overwrite exclude each other" in err


KILL_DURING_REMOVAL = """
import os, pathlib, signal, sys
from rnnkit.cli import main
unlink = pathlib.Path.unlink
def unlink_then_die(self, missing_ok=False):
    unlink(self, missing_ok=missing_ok)
    if self.name == "tokenizer.json":  # a kill -9 landing half-way through --overwrite's removals
        os.kill(os.getpid(), signal.SIGKILL)
pathlib.Path.unlink = unlink_then_die
sys.exit(main(sys.argv[1:]))
"""


def test_a_kill_during_overwrite_leaves_a_folder_that_can_be_overwritten(capsys, tmp_path: Path, corpus: Path,
                                                                       tiny_model: Path) -> None:
    out = copy_model(tiny_model, tmp_path / "m")
    args = ["train", "lm", "--data", str(corpus), "--out", str(out), *sets(*TINY, "train.max_steps=2"), "--overwrite"]
    proc = subprocess.run([sys.executable, "-c", KILL_DURING_REMOVAL, *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (out / "vocab.json").is_file()  # cut short half-way ...
    assert (out / "rnnkit.json").is_file()  # ... but the marker stays to the end: the folder is still rnnkit's
    rc, stdout, err = cli(capsys, *args)
    assert rc == 0, err


def test_overwrite_and_resume_refuse_a_folder_without_the_marker(capsys, tmp_path: Path, corpus: Path,
                                                                 tiny_model: Path) -> None:
    legacy = copy_model(tiny_model, tmp_path / "legacy")  # as a model dir made before markers existed
    (legacy / "rnnkit.json").unlink()
    before = snapshot(legacy)
    for flag in ("--overwrite", "--resume"):
        err = fails(capsys, "train", "lm", "--data", corpus, "--out", legacy, flag, *sets(*TINY))
        assert f"{legacy}: has no rnnkit.json, so rnnkit did not make it" in err and "--init-from" in err
    assert snapshot(legacy) == before


def test_json_output_refuses_links_folders_devices_and_files_unasked(capsys, tmp_path: Path, tiny_model: Path) -> None:
    data = tiny_model.parent / "valid.txt"
    target = write_lines(tmp_path / "precious.txt", ["keep me"])
    link = tmp_path / "link.json"
    link.symlink_to(target)
    err = fails(capsys, "evaluate", tiny_model, "--data", data, "--json", link)
    assert "--json names a symbolic link" in err
    assert link.is_symlink() and target.read_text(encoding="utf-8") == "keep me\n"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert "--json names a device, pipe or socket" in fails(capsys, "evaluate", tiny_model, "--data", data,
                                                            "--json", fifo)
    assert "--json names a folder" in fails(capsys, "evaluate", tiny_model, "--data", data, "--json", tmp_path)
    plain = write_lines(tmp_path / "old.json", ["{}"])
    assert "--json: the file exists" in fails(capsys, "evaluate", tiny_model, "--data", data, "--json", plain)
    assert plain.read_text(encoding="utf-8") == "{}\n"  # replaced only when asked
    rc, _, err = cli(capsys, "evaluate", tiny_model, "--data", data, "--json", plain, "--overwrite")
    assert rc == 0, err
    assert "ppl" in json.loads(plain.read_text(encoding="utf-8"))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ----------------------------------------------------------------------------------------------------
# 2. one writer per model directory

HOLD_LOCK = """
import sys, time
from rnnkit.lock import ModelDirLock
lock = ModelDirLock.acquire(sys.argv[1])
print("locked", flush=True)
time.sleep(120)
"""


def hold_lock(folder: Path) -> subprocess.Popen:
    """A child process that holds ``folder``'s lock (as a live run does) until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(folder)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_is_refused_naming_the_holder_and_a_killed_holder_leaves_no_lock(
        capsys, tmp_path: Path, corpus: Path, tiny_model: Path) -> None:
    empty = tmp_path / "new"
    empty.mkdir()
    model = copy_model(tiny_model, tmp_path / "m")
    holders = [hold_lock(empty), hold_lock(model)]
    try:
        # two new runs on one --out: both find it empty; the one that locks second is refused
        err = fails(capsys, "train", "lm", "--data", corpus, "--out", empty, *sets(*TINY))
        assert "another rnnkit process is writing this model directory" in err
        assert f"pid {holders[0].pid} on " in err and "since " in err and "-c" in err
        assert [p.name for p in empty.iterdir()] == ["rnnkit.lock"]
        before = snapshot(model)
        err = fails(capsys, "train", "lm", "--out", model, "--resume", *sets("train.max_steps=40"))
        assert f"pid {holders[1].pid} on " in err
        assert snapshot(model) == before  # the live run's checkpoint is untouched
    finally:
        for proc in holders:
            proc.kill()  # kill -9: the kernel drops the lock with the process
            proc.wait()
    rc, stdout, err = cli(capsys, "train", "lm", "--out", model, "--resume", *sets("train.max_steps=40"))
    assert rc == 0, err
    assert "resuming" in stdout


def test_a_live_cli_run_holds_its_lock(capsys, tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "model"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit", "train", "lm", "--data", str(corpus), "--out",
                             str(out), *sets(*TINY, "train.epochs=100000", "train.save_every=5")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint" / "trainer_state.pt").is_file():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.1)
        err = fails(capsys, "train", "lm", "--out", out, "--resume")
        assert f"another rnnkit process is writing this model directory (pid {proc.pid} on " in err
        assert f": rnnkit train lm --data {corpus} --out {out}" in err
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    rc, stdout, err = cli(capsys, "train", "lm", "--out", out, "--resume", *sets("train.epochs=1"))
    assert rc == 0, err


def test_the_lock_never_writes_through_a_hard_link_and_names_the_whole_command(tmp_path: Path, monkeypatch) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    run = tmp_path / "run"
    run.mkdir()
    os.link(victim, run / "rnnkit.lock")
    with pytest.raises(RnnkitError, match="the lock file has 2 hard links"):
        ModelDirLock.acquire(run)
    assert victim.read_text(encoding="utf-8") == "precious"
    (run / "rnnkit.lock").unlink()
    command = ["rnnkit", "train", "lm", "--set", "x" * 500, "--out", str(run)]
    monkeypatch.setattr(sys, "argv", command)
    with ModelDirLock.acquire(run), pytest.raises(RnnkitError) as refused:
        ModelDirLock.acquire(run)  # a second open file description: refused like another process
    assert str(refused.value).endswith(f": {' '.join(command)}); wait for it to finish or stop it")


def test_the_numpy_backend_marks_locks_and_replaces_alike(capsys, tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "np"
    args = ["train", "lm", "--backend", "numpy", "--data", corpus, "--out", out,
            *sets(*TINY, "train.optimizer=sgd", "train.lr=0.5", "train.max_steps=2")]
    assert cli(capsys, *args)[0] == 0
    assert torch.load(out / "checkpoint" / "rng_rank0.pt", weights_only=True)["carried"] is not None  # mid-epoch
    rc, stdout, err = cli(capsys, "train", "lm", "--backend", "numpy", "--out", out, "--resume",
                          *sets("train.max_steps=3"))  # the NumPy cells' carried state passes the shape check
    assert rc == 0 and "resuming" in stdout, err
    assert json.loads((out / "rnnkit.json").read_text(encoding="utf-8"))["made_by"] == "rnnkit train"
    assert "rnnkit.fingerprint" in read_safetensors_header(out / "model.safetensors")[1]
    assert "output folder is not empty" in fails(capsys, *args)
    holder = hold_lock(out)
    try:
        assert f"pid {holder.pid} on " in fails(capsys, *args, "--overwrite")
    finally:
        holder.kill()
        holder.wait()
    rc, stdout, err = cli(capsys, *args, "--overwrite")
    assert rc == 0 and f"replacing the earlier run in {out}: removed checkpoint" in stdout, err


def test_temp_files_of_killed_writes_are_removed_under_the_lock_and_only_rnnkits(train_tiny) -> None:
    out = train_tiny("m", "train.max_steps=2")
    stale = [out / ".checkpoint.k1ll3d_x", out / ".log.csv.ab12cd34.tmp", out / ".model.safetensors.zz9_zz9z.tmp"]
    stale[0].mkdir()
    for path in stale[1:]:
        path.write_bytes(b"partial")
    mine = [out / ".notes.ab12cd34.tmp", out / "draft.tmp", out / ".log.csv.backup.tmp",  # not mkstemp's names
            out / ".results.json.old.tmp", out / ".checkpoint.bak" / "data.txt"]
    mine[-1].parent.mkdir()
    for path in mine:
        path.write_text("mine", encoding="utf-8")
    rnnkit.train("lm", out=out, resume=True, overrides=["train.max_steps=3"])
    assert not any(p.exists() for p in stale)
    assert all(p.read_text(encoding="utf-8") == "mine" for p in mine)


# ----------------------------------------------------------------------------------------------------
# 3. a model directory is checked before it is trusted


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_an_edited_hidden_size_is_an_error_before_any_memory_is_allocated(tmp_path: Path, tiny_model: Path) -> None:
    model = copy_model(tiny_model, tmp_path / "m")
    _edit(model / "config.yaml", "hidden_size: 16", "hidden_size: 30000")  # a 14 GB weight matrix if built

    def limit_memory() -> None:  # 4 GB of address space: building the model would fail, checking must not
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    proc = subprocess.run([sys.executable, "-m", "rnnkit", "generate", str(model)], capture_output=True, text=True,
                          preexec_fn=limit_memory, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2, proc.stderr
    assert "config.yaml: 'model.hidden_size' is 30,000, but model.safetensors holds 2,289 values in all (config and " \
        "weights disagree)" in proc.stderr


@pytest.mark.parametrize("old, new, message", [
    ("hidden_size: 16", "hidden_size: 1000000000", "'model.hidden_size' is 1,000,000,000, but model.safetensors holds"),
    ("layers: 1", "layers: 40000", "'model.layers' asks for 40,000 layers or clusters, but model.safetensors holds")])
def test_absurd_sizes_in_config_yaml_are_refused_at_once(tmp_path: Path, tiny_model: Path, old: str, new: str,
                                                         message: str) -> None:
    """Before any model is built, even on the meta device (where 40,000 layers took 19 s and hidden_size 10**9
    overflowed torch): the sizes are checked against the weights' header."""
    model = copy_model(tiny_model, tmp_path / "m")
    rnnkit.load(model)  # imports done: what follows times the check alone
    _edit(model / "config.yaml", old, new)
    start = time.perf_counter()
    with pytest.raises(RnnkitError, match="config.yaml: " + message):
        rnnkit.load(model)
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("size", [("model.layers=4",), ("model.embedding_size=2",)])
def test_a_bag_classifier_loads_whatever_its_unused_sizes(capsys, tmp_path: Path, size: tuple[str, ...]) -> None:
    """A bag reads neither layers nor hidden_size (review4 finding 2): layers 4 above its 3 tensors, and the default
    hidden_size 128 above a tiny bag's 26 values, are not held to the weights' header; the model trains, loads,
    evaluates and resumes."""
    data = tmp_path / "c.jsonl"
    words = ["good", "fine", "great", "nice", "bad", "poor", "awful", "dull"]
    write_lines(data, [json.dumps({"text": f"{words[i % 4 + 4 * (i % 2)]} {words[(i + 1) % 4 + 4 * (i % 2)]}",
                                   "label": ["pos", "neg"][i % 2]}) for i in range(60)])
    out = tmp_path / "bag"
    bag = sets("model.encoder=bag", "model.pooling=mean", "train.max_steps=2", "train.progress=false", *size)
    assert cli(capsys, "train", "classify", "--data", data, "--out", out, *bag)[0] == 0
    assert cli(capsys, "evaluate", out, "--data", data)[0] == 0
    assert cli(capsys, "classify", out, "good fine")[0] == 0
    assert cli(capsys, "train", "classify", "--out", out, "--resume", *sets("train.max_steps=3"))[0] == 0
    assert rnnkit.load(out) is not None


def _limited_rnnkit(*argv) -> subprocess.CompletedProcess:
    """``rnnkit ARGV`` under 4 GB of address space (building a model with hidden_size 30000 would fail)."""
    return subprocess.run([sys.executable, "-m", "rnnkit", *map(str, argv)], capture_output=True, text=True,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)),
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"})


def _drop_metadata(weights: Path, key: str) -> None:
    metadata = read_safetensors_header(weights)[1]
    save_file(load_file(weights), weights, metadata={k: v for k, v in metadata.items() if k != key})


def test_resume_checks_an_edited_hidden_size_before_building_the_model(capsys, tmp_path: Path, corpus: Path,
                                                                      tiny_model: Path) -> None:
    torch_run = copy_model(tiny_model, tmp_path / "m")
    numpy_run = tmp_path / "np"
    assert cli(capsys, "train", "lm", "--backend", "numpy", "--data", corpus, "--out", numpy_run,
               *sets(*TINY, "train.optimizer=sgd", "train.lr=0.5", "train.max_steps=2"))[0] == 0
    for run, backend in ((torch_run, "torch"), (numpy_run, "numpy")):
        _edit(run / "config.yaml", "hidden_size: 16", "hidden_size: 30000")
        proc = _limited_rnnkit("train", "lm", "--out", run, "--resume", "--backend", backend)
        assert proc.returncode == 2 and "'model.hidden_size' is 30000, but the run was trained with 16" in proc.stderr
        _drop_metadata(run / "checkpoint" / "last.safetensors", "rnnkit.run")  # as saved before the record
        proc = _limited_rnnkit("train", "lm", "--out", run, "--resume", "--backend", backend)
        assert proc.returncode == 2, proc.stderr
        assert "config.yaml: 'model.hidden_size' is 30,000, but last.safetensors holds" in proc.stderr


def test_weights_of_another_dtype_are_refused(capsys, tmp_path: Path, tiny_model: Path) -> None:
    model = copy_model(tiny_model, tmp_path / "m")
    weights = model / "model.safetensors"
    metadata = read_safetensors_header(weights)[1]
    save_file({k: v.double() for k, v in load_file(weights).items()}, weights, metadata=metadata)
    err = fails(capsys, "generate", model)
    assert "is stored as F64, the model holds F32" in err
    with pytest.raises(RnnkitError, match="is stored as F64"):
        load_numpy(model)


@pytest.mark.parametrize("damage", ["reordered vocab", "tokenizer option", "data mode"])
def test_a_changed_vocabulary_tokenizer_or_config_is_named(capsys, tmp_path: Path, tiny_model: Path,
                                                           damage: str) -> None:
    model = copy_model(tiny_model, tmp_path / "m")
    if damage == "reordered vocab":  # same tokens, same size: without the fingerprint ids would silently swap
        words = json.loads((model / "vocab.json").read_text(encoding="utf-8"))
        words[5], words[6] = words[6], words[5]
        (model / "vocab.json").write_text(json.dumps(words), encoding="utf-8")
        expected = f"{model / 'vocab.json'}: was changed since the weights were saved"
    elif damage == "tokenizer option":
        _edit(model / "tokenizer.json", '"lowercase": false', '"lowercase": true')
        expected = f"{model / 'tokenizer.json'}: was changed since the weights were saved"
    else:
        _edit(model / "config.yaml", "mode: stream", "mode: windows")
        expected = f"{model / 'config.yaml'}: 'data.mode' is 'windows', but the weights were trained with 'stream'"
    assert expected in fails(capsys, "generate", model)
    assert expected in fails(capsys, "evaluate", model, "--data", tiny_model.parent / "valid.txt",
                             "--backend", "numpy")
    with pytest.raises(RnnkitError, match="was changed|trained with"):
        load_numpy(model)


def test_an_edited_cell_type_of_the_same_shape_is_named(capsys, train_tiny) -> None:
    model = train_tiny("m", "model.cell=rnn_tanh", "train.max_steps=2")  # rnn_relu has the very same shapes
    _edit(model / "config.yaml", "cell: rnn_tanh", "cell: rnn_relu")
    err = fails(capsys, "generate", model)
    assert "'model.cell' is 'rnn_relu', but the weights were trained with 'rnn_tanh'" in err


@pytest.mark.parametrize("options, message", [
    ({"kind": "word", "lowercase": "no", "split_punctuation": True}, "'lowercase' must be true or false, got 'no'"),
    ({"kind": "word", "lowercase": False, "split_punctuation": 1}, "'split_punctuation' must be true or false"),
    ({"kind": "word", "lowercase": False}, "lacks the field 'split_punctuation'"),
    ({"kind": "char", "lowercase": False, "colour": "red"}, "unknown field(s) 'colour' for kind 'char'"),
    ({"kind": 7, "lowercase": False}, "unknown tokenizer kind 7"),
])
def test_every_tokenizer_field_is_type_checked(capsys, tmp_path: Path, tiny_model: Path, options: dict,
                                               message: str) -> None:
    model = copy_model(tiny_model, tmp_path / "m")
    (model / "tokenizer.json").write_text(json.dumps(options), encoding="utf-8")
    assert message in fails(capsys, "generate", model)


@pytest.mark.parametrize("name", ["vocab.json", "tokenizer.json", "config.yaml"])
def test_a_model_file_that_is_a_device_or_pipe_is_refused_without_reading_it(capsys, tmp_path: Path,
                                                                            tiny_model: Path, name: str) -> None:
    model = copy_model(tiny_model, tmp_path / "m")
    (model / name).unlink()
    os.mkfifo(model / name)  # reading it would wait forever
    assert f"{model / name}: is not a plain file" in fails(capsys, "generate", model)
    assert f"{model / name}: is not a plain file" in fails(capsys, "train", "lm", "--out", model, "--resume")
    (model / name).unlink()
    (model / name).symlink_to("/dev/zero")  # endless
    assert f"{model / name}: is not a plain file" in fails(capsys, "evaluate", model, "--data", model / "log.csv")


def test_a_model_saved_without_a_fingerprint_loads_with_one_note(capsys, tmp_path: Path, tiny_model: Path) -> None:
    model = copy_model(tiny_model, tmp_path / "m")
    weights = model / "model.safetensors"
    save_file(load_file(weights), weights, metadata={"step": "6"})  # as saved before fingerprints
    lm = rnnkit.load(model)
    rnnkit.load(model)
    err = capsys.readouterr().err
    assert err.count("has no fingerprint") == 1 and "not verified" in err
    assert lm.generate("the cat", 3, greedy=True)


def test_a_damaged_header_is_a_clear_error(capsys, tmp_path: Path, tiny_model: Path) -> None:
    model = copy_model(tiny_model, tmp_path / "m")
    weights = model / "model.safetensors"
    data = weights.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header["output.bias"]["shape"] = [10 ** 9]  # claims far more bytes than the file holds
    raw = json.dumps(header).encode()
    weights.write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + n:])
    assert "weights file is corrupt" in fails(capsys, "generate", model)
    header["output.bias"]["shape"] = [16]
    raw = json.dumps(header).encode()[:-1] + b', "deep": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    weights.write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + n:])
    assert "weights file is corrupt (nested too deeply)" in fails(capsys, "generate", model)
    metadata = read_safetensors_header(model / "checkpoint" / "last.safetensors")[1]
    metadata["rnnkit.binding"] = "[" * 5000 + "]" * 5000
    save_file(load_file(model / "checkpoint" / "last.safetensors"), model / "checkpoint" / "last.safetensors",
              metadata=metadata)
    err = fails(capsys, "train", "lm", "--out", model, "--resume")
    assert "last.safetensors: the weights' fingerprint is damaged" in err


def test_resume_checks_the_checkpoint_against_the_folder(capsys, tmp_path: Path, tiny_model: Path) -> None:
    model = copy_model(tiny_model, tmp_path / "m")
    words = json.loads((model / "vocab.json").read_text(encoding="utf-8"))
    (model / "vocab.json").write_text(json.dumps([*words[:4], *reversed(words[4:])]), encoding="utf-8")
    err = fails(capsys, "train", "lm", "--out", model, "--resume", *sets("train.max_steps=9"))
    assert "vocab.json: was changed since the weights were saved" in err and "last.safetensors" in err


# ----------------------------------------------------------------------------------------------------
# 9. trainer state: no pickle ever runs, and no advice to let one


class _Planted:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


@pytest.mark.parametrize("name", ["trainer_state.pt", "rng_rank0.pt"])
def test_a_planted_pickle_never_runs_and_the_error_gives_no_unsafe_advice(capsys, tmp_path: Path,
                                                                          tiny_model: Path, monkeypatch,
                                                                          name: str) -> None:
    model = copy_model(tiny_model, tmp_path / "m")
    monkeypatch.chdir(tmp_path)
    torch.save({"step": _Planted()}, model / "checkpoint" / name)
    err = fails(capsys, "train", "lm", "--out", model, "--resume", *sets("train.max_steps=9"))
    assert f"{model / 'checkpoint' / name}: " in err and "cannot be read" in err
    assert "weights_only" not in err
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("file, change, message", [
    ("trainer_state.pt", {"step": "10"}, "trainer state field 'step' must be int, got str"),
    ("trainer_state.pt", {"finished": 1}, "trainer state field 'finished' must be bool, got int"),
    ("trainer_state.pt", {"schedule": {"lr": "fast", "best": 1.0, "previous": 1.0, "bad": 0}},
     "trainer state schedule field 'lr' must be float, got str"),
    ("trainer_state.pt", {"rows": [["step", 1]]}, "'rows' must be a list of mappings"),
    ("trainer_state.pt", {"optimizer": {"state": {}, "param_groups": []}}, "does not fit this run's optimizer"),
    ("rng_rank0.pt", {"python": [1, 2, 3]}, "RNG state is damaged"),
    ("rng_rank0.pt", {"torch": torch.zeros(3)}, "RNG state is damaged"),
    # contents of the right types that do not fit the model or the optimizer (tracebacks at the first step)
    ("trainer_state.pt", lambda s: s["rows"].append({}), "'rows': row 45 lacks an int step, a split"),
    ("trainer_state.pt", {"optimizer_name": "sgd"}, "holds the optimizer 'sgd', but this run trains with 'adam'"),
    ("trainer_state.pt", lambda s: s["optimizer"]["param_groups"][0].update(betas="fast"),
     "param group setting 'betas' is 'fast'"),
    ("trainer_state.pt", lambda s: s["optimizer"]["param_groups"][0].update(lr="0.1"), "setting 'lr' is '0.1'"),
    ("trainer_state.pt", lambda s: s["optimizer"]["state"][0].update(exp_avg=torch.zeros(3)),
     "'exp_avg' of parameter 0 has shape (3,)"),
    ("rng_rank0.pt", {"carried": [torch.zeros(1, 3, 5)]}, "the carried hidden state is not of this model's shapes"),
    ("rng_rank0.pt", {"carried": "x"}, "the carried hidden state holds a str"),
])
def test_trainer_state_fields_are_type_checked(capsys, tmp_path: Path, tiny_model: Path, file: str, change,
                                               message: str) -> None:
    model = copy_model(tiny_model, tmp_path / "m")
    path = model / "checkpoint" / file
    state = torch.load(path, weights_only=True)
    change(state) if callable(change) else state.update(change)
    torch.save(state, path)
    err = fails(capsys, "train", "lm", "--out", model, "--resume", *sets("train.max_steps=9"))
    assert f"{path}: " in err and message in err


def test_the_torch_floor_excludes_the_weights_only_bypass() -> None:
    """CVE-2025-32434: torch.load(weights_only=True) could run code before torch 2.6."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    torch_spec = next(d for d in deps if d.startswith("torch"))
    assert torch_spec.startswith("torch>=2.6"), torch_spec


# ----------------------------------------------------------------------------------------------------
# 8. resume and restart


def test_rerunning_the_same_command_with_resume_is_accepted(capsys, tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "m"
    args = ["train", "lm", "--data", corpus, "--out", out, *sets(*TINY, "train.max_steps=4")]
    assert cli(capsys, *args)[0] == 0
    rc, stdout, err = cli(capsys, *args, "--resume", *sets("train.max_steps=6"))
    assert rc == 0, err
    assert f"resuming {out} from step 4 (epoch 1, batch 5); changed: train.max_steps 4 -> 6" in stdout
    err = fails(capsys, *args, "--resume", *sets("model.hidden_size=32"))
    assert "cannot change 'model.hidden_size' when resuming (16 in the run, 32 asked for" in err


def test_a_run_that_failed_at_step_2_resumes_with_a_lower_lr(capsys, tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "m"
    args = ["train", "lm", "--data", corpus, "--out", out,
            *sets(*TINY, "model.cell=rnn_relu", "train.optimizer=sgd", "train.max_steps=4")]
    assert "loss is nan at step 2" in fails(capsys, *args, *sets("train.lr=1e10"))
    rc, stdout, err = cli(capsys, *args, "--resume", *sets("train.lr=0.5"))
    assert rc == 0, err
    assert "changed: train.lr 10000000000.0 -> 0.5" in stdout
    assert rnnkit.load(out).config.train.lr == 0.5  # config.yaml records the change
    assert [float(r["lr"]) for r in csv_rows(out) if r["split"] == "train"] == [0.5] * 4


def test_resuming_a_finished_run_says_so(capsys, tmp_path: Path, tiny_model: Path) -> None:
    model = copy_model(tiny_model, tmp_path / "m")
    rc, stdout, err = cli(capsys, "train", "lm", "--out", model, "--resume")
    assert rc == 0, err
    assert f"resuming {model}: the run finished at step 42; nothing left to train (raise train.epochs" in stdout
    assert "start of epoch" not in stdout


def test_a_changed_lr_under_the_step_schedule_says_the_lr_it_trains_at(capsys, tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "m"
    args = ["train", "lm", "--data", corpus, "--out", out,
            *sets(*TINY, "train.optimizer=sgd", "train.schedule=step", "train.decay_start=1", "train.lr_decay=0.5",
                  "train.epochs=1")]
    assert cli(capsys, *args)[0] == 0
    rc, stdout, err = cli(capsys, *args, "--resume", *sets("train.epochs=2", "train.lr=2"))
    assert rc == 0, err
    assert ("changed: train.lr 0.01 -> 2.0 (the step schedule's base lr: epoch 2 trains at 1), train.epochs 1 -> 2"
            in stdout)
    assert {float(r["lr"]) for r in csv_rows(out) if r["split"] == "train" and r["epoch"] == "2"} == {1.0}


def csv_rows(out: Path) -> list[dict[str, str]]:
    import csv

    with (out / "log.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_resume_refuses_data_changed_since_the_run_started(capsys, tmp_path: Path, corpus: Path,
                                                           valid_corpus: Path) -> None:
    """rnnkit.json records each data file's size and sha256 when the run starts (review3 finding 3); a run
    recorded before that resumes unchecked, as it did."""
    out = tmp_path / "run"
    assert cli(capsys, "train", "lm", "--data", corpus, "--valid", valid_corpus, "--out", out,
               *sets(*TINY, "train.max_steps=2"))[0] == 0
    resume = ("train", "lm", "--out", out, "--resume", *sets("train.max_steps=3"))
    train, valid = corpus.read_bytes(), valid_corpus.read_bytes()
    fix = "--resume continues a run on its own data; restore it, or start a new run (--overwrite, or another --out)"
    corpus.write_bytes(train.replace(b"the cat", b"the bat", 1))
    assert fails(capsys, *resume) == (f"error: {corpus}: the train data changed since the run started (the same size, "
                                      f"other contents (sha256)): {fix}\n")
    corpus.write_bytes(train + b"the cat sees more text .\n")
    assert f"the train data changed since the run started ({len(train):,} bytes then, " in fails(capsys, *resume)
    corpus.write_bytes(train)
    valid_corpus.write_bytes(valid.replace(b"a dog", b"a hog", 1))
    assert f"error: {valid_corpus}: the valid data changed since the run started" in fails(capsys, *resume)
    valid_corpus.write_bytes(valid)
    assert cli(capsys, *resume)[0] == 0  # restored: the run goes on
    marker = json.loads((out / "rnnkit.json").read_text(encoding="utf-8"))
    del marker["data"]  # as an older rnnkit wrote it
    (out / "rnnkit.json").write_text(json.dumps(marker), encoding="utf-8")
    corpus.write_bytes(train + b"the cat sees more text .\n")
    assert cli(capsys, "train", "lm", "--out", out, "--resume", *sets("train.max_steps=4"))[0] == 0


def test_the_data_fingerprint_of_a_folder_covers_names_sizes_and_contents(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    write_lines(folder / "pos" / "1.txt", ["good"])
    write_lines(folder / "neg" / "1.txt", ["bad"])
    seen = {data_fingerprint(folder)["sha256"]}
    (folder / "neg" / "1.txt").rename(folder / "neg" / "2.txt")
    seen.add(data_fingerprint(folder)["sha256"])
    write_lines(folder / "neg" / "2.txt", ["bed"])
    seen.add(data_fingerprint(folder)["sha256"])
    (folder / "neg" / "2.txt").rename(folder / "pos" / "2.txt")
    seen.add(data_fingerprint(folder)["sha256"])
    assert len(seen) == 4 and data_fingerprint(folder) == data_fingerprint(folder)
    assert data_fingerprint(folder)["bytes"] == 9


def test_the_data_record_of_a_folder_per_class_covers_the_files_read_and_only_those(capsys, tmp_path: Path) -> None:
    """review4 findings 4, 5a: a .DS_Store, a README, unsup/ or a hidden ._N.txt (none read) leave the record alone;
    a text in a class folder reached through a link is covered."""
    real, data = tmp_path / "real", tmp_path / "d"
    for i in range(20):
        write_lines(real / "pos" / f"{i}.txt", [f"good fine film {i}"])
        write_lines(real / "neg" / f"{i}.txt", [f"bad dull film {i}"])
    data.mkdir()
    for name in ("pos", "neg"):
        (data / name).symlink_to(real / name)
    out = tmp_path / "run"
    tiny = sets("model.hidden_size=8", "model.embedding_size=8", "train.max_steps=2", "train.progress=false")
    assert cli(capsys, "train", "classify", "--data", data, "--out", out, *tiny)[0] == 0
    (data / ".DS_Store").write_bytes(b"\0\1")
    write_lines(data / "README.md", ["notes"])
    write_lines(data / "unsup" / "0.txt", ["no label"])
    write_lines(real / "pos" / "._0.txt", ["appledouble"])
    assert cli(capsys, "train", "classify", "--out", out, "--resume", *sets("train.max_steps=3"))[0] == 0
    write_lines(real / "pos" / "0.txt", ["good fine film 9"])
    assert "the train data changed since the run started" in fails(
        capsys, "train", "classify", "--out", out, "--resume", *sets("train.max_steps=4"))


def test_a_changed_lr_takes_effect_from_the_checkpoint(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "m"
    rnnkit.train("lm", data=str(corpus), out=out, overrides=[*TINY, "train.max_steps=3", "train.lr=0.01"])
    rnnkit.train("lm", out=out, resume=True, overrides=["train.max_steps=5", "train.lr=0.002"])
    lrs = [(int(r["step"]), float(r["lr"])) for r in csv_rows(out) if r["split"] == "train"]
    assert lrs == [(1, 0.01), (2, 0.01), (3, 0.01), (4, 0.002), (5, 0.002)]


def test_a_run_may_lie_below_another_runs_folder_but_not_in_its_checkpoint(capsys, tmp_path: Path,
                                                                            corpus: Path) -> None:
    """review4 finding 3: a fine-tuning run in A/ft starts and resumes, and so does A around it; a folder holding a
    model.safetensors or an rnnkit.json that rnnkit did not write is no run's; A/checkpoint/x is refused."""
    outer, inner = tmp_path / "A", tmp_path / "A" / "ft"
    for out in (outer, inner):
        assert cli(capsys, "train", "lm", "--data", corpus, "--out", out, *sets(*TINY, "train.max_steps=2"))[0] == 0
    for out in (inner, outer):
        assert cli(capsys, "train", "lm", "--out", out, "--resume", *sets("train.max_steps=3"))[0] == 0
    assert "A/checkpoint, which the run in" in fails(capsys, "train", "lm", "--data", corpus, "--out",
                                                     outer / "checkpoint" / "x", *sets(*TINY))
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "model.safetensors").write_bytes(b"")
    (tmp_path / "proj" / "checkpoint").mkdir(parents=True)
    (tmp_path / "proj" / "rnnkit.json").write_text('{"name": "x"}', encoding="utf-8")
    proj = tmp_path / "proj"
    for out in (tmp_path / "hf" / "run", proj / "runs" / "deep" / "a", proj / "checkpoint" / "r"):
        assert cli(capsys, "train", "lm", "--data", corpus, "--out", out, *sets(*TINY, "train.max_steps=1"))[0] == 0


def test_an_output_file_is_refused_in_a_model_directory_not_below_a_folder_holding_weights(tmp_path: Path) -> None:
    """A model directory's files lie in it or its checkpoint/; a project folder with a model.safetensors of its own
    (a download) does not make every folder below it one."""
    from rnnkit.files import check_output_file

    model = tmp_path / "m"
    (model / "checkpoint").mkdir(parents=True)
    (model / "model.safetensors").write_bytes(b"")
    for inside in (model / "r.json", model / "checkpoint" / "r.json"):
        with pytest.raises(RnnkitError, match="is a model directory"):
            check_output_file(inside, "--json")
    (model / "runs").mkdir()
    check_output_file(model / "runs" / "r.json", "--json")  # a folder of the user's own below it


def test_a_tiny_model_loads_with_a_key_its_decoder_does_not_use_at_its_default(capsys, tmp_path: Path) -> None:
    """review5 finding 1: a repeat decoder embeds no target tokens, so trg_embedding_size keeps its default (256),
    more than a tiny model's whole weights file holds: the size check refuses only what would not build at once."""
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{s}\t{' '.join(reversed(s.split()))}\n" for s in ["a b", "b c a", "c a", "a b c"] * 10),
                     encoding="utf-8")
    out = tmp_path / "m"
    tiny = ("model.decoder=repeat", "model.hidden_size=2", "model.src_embedding_size=2", "train.max_steps=2",
            "data.valid_fraction=0.1")
    assert cli(capsys, "train", "seq2seq", "--data", pairs, "--out", out, *sets(*tiny))[0] == 0
    assert cli(capsys, "translate", out, "a b")[0] == 0
    assert cli(capsys, "train", "seq2seq", "--out", out, "--resume", *sets("train.max_steps=3"))[0] == 0

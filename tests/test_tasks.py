"""The task contract: a task written here (not in rnnkit) trains, resumes exactly and loads through
``rnnkit.train`` / ``rnnkit.load``; a maximised selection metric picks the best weights; config
sections belong to their task; old model directories and weight names still load."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import rnnkit
from conftest import assert_same_run, corpus_lines, read_log, write_lines
from rnnkit import tasks
from rnnkit.checkpoint import (
    atomic_write_text,
    check_weights_header,
    load_weights,
    read_safetensors_header,
    save_weights,
    shapes_only,
    verify_fingerprint,
)
from rnnkit.cli import main
from rnnkit.config import TaskConfig, TrainConfig, at_least, load_config
from rnnkit.errors import RnnkitError
from rnnkit.tasks.base import LoadedModel, LossResult, Task

FIXTURES = Path(__file__).with_name("fixtures")


# ------------------------------------------------------------------ a tiny task: the sum of digits mod k
@dataclass
class SumData:
    k: int = at_least(3, 2)  # digits 0..k-1; the label is their sum mod k
    n: int = at_least(512, 1)  # training sequences (validation: a quarter as many more)
    length: int = at_least(3, 1)  # digits per sequence
    train: str | None = None  # (generated: the contract's split names, unused)
    valid: str | None = None
    test: str | None = None


@dataclass
class SumModel:
    hidden_size: int = at_least(16, 1)


@dataclass
class SumConfig(TaskConfig):
    task: str = "summod"
    data: SumData = field(default_factory=SumData)
    model: SumModel = field(default_factory=SumModel)
    train: TrainConfig = field(default_factory=TrainConfig)


class SumNet(nn.Module):
    def __init__(self, k: int, hidden: int):
        super().__init__()
        self.embedding, self.rnn, self.head = nn.Embedding(k, hidden), nn.GRU(hidden, hidden), nn.Linear(hidden, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (T, B) -> logits (B, k)
        return self.head(self.rnn(self.embedding(x))[1][-1])


class Batch:
    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def to(self, device) -> Batch:
        return Batch(self.x.to(device), self.y.to(device))


class ExampleBatches:
    """Examples in shuffled batches; the order depends only on (seed, epoch)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch: int, seed: int):
        self.x, self.y, self.size, self.seed, self.num_tokens = x, y, batch, seed, len(y)

    def plan(self, epoch: int) -> list[torch.Tensor]:
        order = torch.randperm(len(self.y), generator=torch.Generator().manual_seed(self.seed * 1000 + epoch))
        return list(order.split(self.size))

    def batch(self, index: torch.Tensor) -> Batch:
        return Batch(self.x[:, index], self.y[index])


def sum_examples(k: int, n: int, length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randint(k, (length, n), generator=torch.Generator().manual_seed(seed))
    return x, x.sum(0) % k


class SumModLoaded(LoadedModel):
    verb = "predict"

    def __init__(self, cfg: SumConfig, model: SumNet):
        self.config, self.model = cfg, model.eval()

    @classmethod
    def checked_parts(cls, model_dir, cfg, weights=None, dtype=torch.float32):
        weights = weights or model_dir / "model.safetensors"
        k = json.loads((model_dir / "digits.json").read_text())["k"]
        expected = shapes_only(lambda: SumNet(k, cfg.model.hidden_size)).to(dtype)
        verify_fingerprint(model_dir, cfg, weights, check_weights_header(expected, weights))
        return k

    @classmethod
    def load(cls, model_dir, cfg, device):
        model = SumNet(cls.checked_parts(model_dir, cfg), cfg.model.hidden_size)
        load_weights(model, model_dir / "model.safetensors")
        return cls(cfg, model.to(device))

    @torch.no_grad()
    def predict(self, sequences: list[list[int]]) -> list[int]:
        return self.model(torch.tensor(sequences).T).argmax(-1).tolist()

    @classmethod
    def add_evaluate_arguments(cls, parser) -> None:
        parser.add_argument("--first", type=int, default=0, help="score the first N rows (0: all)")

    def evaluate(self, path, batch_size=None, max_lines=0, first=0):
        rows = [[int(t) for t in line.split()] for line in Path(path).read_text().splitlines()][:first or None]
        right = sum(p == sum(r) % self.config.data.k for p, r in zip(self.predict(rows), rows, strict=True))
        return {"accuracy": right / len(rows), "rows": len(rows)}


class SumModTask(Task):
    name, config_class, loaded_class = "summod", SumConfig, SumModLoaded
    selection = ("accuracy", "max")
    asset_files = required_files = ("digits.json",)
    bound_config_keys = ("task", "data.k", "model.hidden_size")

    def __init__(self, cfg: SumConfig, dist, device, vocab_from=None):
        super().__init__(cfg, dist, device, vocab_from)
        d = cfg.data
        self.train_data = ExampleBatches(*sum_examples(d.k, d.n, d.length, 1), cfg.train.batch_size, cfg.train.seed)
        self.valid = sum_examples(d.k, d.n // 4, d.length, 2)
        self.model = SumNet(d.k, cfg.model.hidden_size)

    def batch_loss(self, model, batch: Batch, state) -> LossResult:
        return LossResult(F.cross_entropy(model(batch.x), batch.y, reduction="sum"), len(batch.y))

    @torch.no_grad()
    def validate(self, model) -> dict[str, float]:
        logits = model(self.valid[0].to(self.device))
        y = self.valid[1].to(self.device)
        return {"loss": F.cross_entropy(logits, y).item(), "accuracy": (logits.argmax(-1) == y).float().mean().item()}

    def save_assets(self, out_dir: Path) -> None:
        atomic_write_text(out_dir / "digits.json", json.dumps({"k": self.cfg.data.k}))


# ------------------------------------------------------------------ tests
SUM = ["train.optimizer=adam", "train.lr=0.02", "train.batch_size=32", "train.epochs=4", "train.progress=false",
       "train.device=cpu", "train.log_every=4", "train.seed=5"]


@pytest.fixture
def summod(no_curves):
    tasks.register_task(SumModTask)
    yield SumModTask
    tasks.unregister_task("summod")


def test_a_task_written_outside_rnnkit_trains_selects_by_its_maximised_metric_and_loads(tmp_path, summod) -> None:
    model = rnnkit.train("summod", out=tmp_path / "m", overrides=SUM)
    valid = [r for r in read_log(tmp_path / "m") if r["split"] == "valid"]
    accuracies = [float(r["accuracy"]) for r in valid]
    best = valid[accuracies.index(max(accuracies))]  # the first evaluation reaching the best accuracy
    saved_step = read_safetensors_header(tmp_path / "m" / "model.safetensors")[1]["step"]
    assert saved_step == best["step"]
    assert model.results["valid"]["accuracy"] == pytest.approx(max(accuracies), abs=1e-6)
    assert max(accuracies) > 0.6  # it learned (chance: 1/3)
    loaded = rnnkit.load(tmp_path / "m")
    assert isinstance(loaded, SumModLoaded)
    x, y = sum_examples(3, 64, 3, 9)
    assert sum(p == t for p, t in zip(loaded.predict(x.T.tolist()), y.tolist(), strict=True)) > 32
    state = torch.load(tmp_path / "m" / "checkpoint" / "trainer_state.pt", weights_only=True)
    assert state["selection_metric"] == "accuracy" and state["best_value"] == pytest.approx(max(accuracies), abs=1e-6)


def test_early_stopping_and_plateau_follow_the_maximised_metric(tmp_path, summod) -> None:
    from rnnkit.train import Trainer

    trainer = Trainer(SumModTask(load_config(None, [*SUM, "train.schedule=plateau", "train.patience=0",
                                                     "train.early_stop=2"], {"task": "summod"}),
                                 None, torch.device("cpu")),
                      TrainConfig(lr=1.0, schedule="plateau", patience=0, early_stop=2), tmp_path, torch.device("cpu"))
    trainer._save_best = trainer.save_checkpoint = lambda: None
    for accuracy in (0.5, 0.7, 0.6, 0.65):  # up, down (lr halves), down: two evaluations without a new best
        trainer.task.validate = lambda model, a=accuracy: {"loss": 1.0, "accuracy": a}
        trainer._validate_and_save()
    assert trainer.best_value == 0.7 and trainer.bad_evals == 2 and trainer._early_stopped()
    assert trainer.schedule.lr == 0.25


def test_a_task_run_resumes_exactly(tmp_path, summod) -> None:
    rnnkit.train("summod", out=tmp_path / "whole", overrides=SUM)
    rnnkit.train("summod", out=tmp_path / "cut", overrides=[*SUM, "train.epochs=2"])
    rnnkit.train("summod", out=tmp_path / "cut", overrides=["train.epochs=4"], resume=True)
    assert_same_run(tmp_path / "whole", tmp_path / "cut")


def test_the_cli_trains_a_registered_task_and_overwrite_removes_its_assets(tmp_path, summod, capsys) -> None:
    out = tmp_path / "m"
    assert main(["train", "summod", "--out", str(out), *[a for s in SUM for a in ("--set", s)],
                 "--set", "train.epochs=1"]) == 0
    assert (out / "digits.json").is_file()
    (out / "digits.json").write_text('{"k":3}')  # changed since training: the fingerprint names it
    with pytest.raises(RnnkitError, match="digits.json: was changed since the weights were saved"):
        rnnkit.load(out)
    assert main(["train", "summod", "--out", str(out), "--overwrite", *[a for s in SUM for a in ("--set", s)],
                 "--set", "train.epochs=1"]) == 0
    assert "removed" in capsys.readouterr().out and rnnkit.load(out).predict([[1, 1, 1]])[0] in range(3)
    data = write_lines(tmp_path / "rows.txt", ["1 1 1", "0 0 0", "2 0 0"])
    for extra, scored in (([], 3), (["--first", "1"], 1)):  # the task's own evaluate option reaches it
        assert main(["evaluate", str(out), "--data", str(data), *extra]) == 0
        assert json.loads(capsys.readouterr().out.splitlines()[-1])["rows"] == scored
    assert main(["evaluate", str(out), "--data", str(data), "--last", "1"]) == 2
    assert "unrecognized arguments: --last 1" in capsys.readouterr().err
    assert main(["generate", str(out)]) == 2
    assert f"{out}: is a summod model: it does not generate (its command is rnnkit predict)" in capsys.readouterr().err


@pytest.mark.parametrize(("key", "named"), [("train.bptt=5", "train.bptt"), ("tokenizer.kind=char", "tokenizer"),
                                           ("data.mode=stream", "data.mode"), ("model.cell=gru", "model.cell")])
def test_a_key_of_another_task_is_an_unknown_key(summod, key: str, named: str) -> None:
    with pytest.raises(RnnkitError, match=rf"unknown config key '{named}'"):
        load_config(None, [key], {"task": "summod"})
    with pytest.raises(RnnkitError, match=rf"unknown config key '{named}'"):
        load_config(None, None, {"task": "summod", key.split(".")[0]: {key.split(".")[1].split("=")[0]: 1}})


def test_a_recipe_key_of_another_task_names_the_file_and_line(tmp_path, summod) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("task: summod\ntrain:\n  lr: 0.1\n  bptt: 35\n")
    with pytest.raises(RnnkitError, match=r"r\.yaml:4: unknown config key 'train\.bptt'"):
        load_config(str(recipe))
    with pytest.raises(RnnkitError, match="this recipe is for the task 'summod', not 'lm'"):
        rnnkit.train("lm", recipe=str(recipe), out=tmp_path / "x")


def test_a_resume_keeps_the_runs_task(tmp_path, summod) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("task: summod\ntrain:\n  epochs: 1\n")
    model = rnnkit.train("summod", recipe=str(recipe), out=tmp_path / "m",
                         overrides=[s for s in SUM if "epochs" not in s])
    assert isinstance(model, SumModLoaded)
    with pytest.raises(RnnkitError, match=r"config\.yaml: the run in this folder is a summod run, not lm"):
        rnnkit.train("lm", out=tmp_path / "m", resume=True)


def test_task_names_come_from_the_files_and_registration() -> None:
    assert "lm" in tasks.task_names() and "lm_config" not in tasks.task_names()
    with pytest.raises(RnnkitError, match=r"unknown task 'nope' \(available: .*lm"):
        tasks.get_task("nope")
    with pytest.raises(TypeError, match="direction must be 'min' or 'max'"):
        tasks.register_task(type("Bad", (SumModTask,), {"selection": ("accuracy", "up")}))


# ------------------------------------------------------------------ old model directories
FIXTURE_DATA = Path("/tmp/rnnkit-fixture-0fa6866/train.txt")  # where the fixture's run read its text


def test_a_model_directory_written_before_tasks_owned_their_config_loads_and_resumes(tmp_path, no_curves) -> None:
    """tests/fixtures/lm-0fa6866: made by rnnkit at 0fa6866 (TINY, 1 epoch; its trainer state has best_loss)."""
    model_dir = shutil.copytree(FIXTURES / "lm-0fa6866", tmp_path / "old")
    lm = rnnkit.load(model_dir)
    text = write_lines(tmp_path / "t.txt", corpus_lines(40))
    assert lm.evaluate(text)["loss"] == pytest.approx(3.100753366130672, abs=1e-6)  # as rnnkit 0fa6866 scores it
    write_lines(FIXTURE_DATA, corpus_lines(40))
    resumed = rnnkit.train("lm", out=model_dir, overrides=["train.epochs=2"], resume=True)
    rows = read_log(model_dir)
    assert [r["epoch"] for r in rows if r["split"] == "valid"] == ["1", "2"]
    assert resumed.results["valid"]["loss"] <= min(float(r["loss"]) for r in rows if r["split"] == "valid") + 1e-6
    state = torch.load(model_dir / "checkpoint" / "trainer_state.pt", weights_only=True)
    assert state["selection_metric"] == "loss" and "best_loss" not in state


class Renamed(nn.Module):
    """A model whose output layer was once called ``decoder``."""

    legacy_weight_names = {"decoder.weight": "output.weight", "decoder.bias": "output.bias"}

    def __init__(self):
        super().__init__()
        self.embedding, self.output = nn.Embedding(5, 3), nn.Linear(3, 5)


class Old(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding, self.decoder = nn.Embedding(5, 3), nn.Linear(3, 5)


def test_weights_saved_under_old_names_load_through_the_models_aliases(tmp_path) -> None:
    old = Old()
    save_weights(old, tmp_path / "old.safetensors")
    new = Renamed()
    check_weights_header(shapes_only(Renamed), tmp_path / "old.safetensors")
    load_weights(new, tmp_path / "old.safetensors")
    assert torch.equal(new.output.weight, old.decoder.weight) and torch.equal(new.output.bias, old.decoder.bias)
    with pytest.raises(RnnkitError, match="lacks 'output.weight'"):
        load_weights(new, tmp_path / "old.safetensors", legacy_weight_names={})
    save_weights(new, tmp_path / "new.safetensors")
    load_weights(Renamed(), tmp_path / "new.safetensors")  # the new names load as they are

"""ULMFiT's fine-tuning pieces of the trainer (Howard & Ruder 2018): slanted triangular learning rates
(``train.schedule: triangular``) and discriminative rates per parameter group (``train.layer_lr_decay`` through
``Task.parameter_groups``): their rates, exact resume, and the classifier's and the LM's groups."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

import rnnkit
from conftest import TINY, assert_same_run, read_log, signal_on_call
from rnnkit.config import load_config
from rnnkit.distributed import DistInfo
from rnnkit.errors import RnnkitError
from rnnkit.tasks.classify import ClassifyTask
from rnnkit.tasks.lm import LMTask
from rnnkit.train import Trainer, lr_groups, triangular_rate
from test_classify import CLS, order_texts, write_jsonl

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("no_curves")


def train_lrs(out: Path) -> list[float]:
    return [float(r["lr"]) for r in read_log(out) if r["split"] == "train"]


def test_triangular_rate_rises_to_lr_then_falls_back() -> None:
    rates = [triangular_rate(0.01, 32, 0.1, step, 100) for step in range(100)]
    assert rates[0] == pytest.approx(0.01 / 32, rel=1e-12) and rates[99] == pytest.approx(0.01 / 32, rel=1e-12)
    assert rates[10] == 0.01 == max(rates)  # the peak: update floor(0.1 x 100)
    assert all(a < b for a, b in zip(rates[:10], rates[1:11], strict=True))  # rising, linearly
    assert all(a > b for a, b in zip(rates[10:], rates[11:], strict=False))  # then falling
    assert rates[5] == pytest.approx((rates[0] + rates[10]) / 2, rel=1e-12)
    assert rates[10 + 89 // 2] == pytest.approx(0.01 / 32 + (0.01 - 0.01 / 32) * (1 - 44 / 89), rel=1e-12)
    assert triangular_rate(0.01, 32, 0.1, 150, 100) == pytest.approx(0.01 / 32)  # past the last: the floor
    assert [triangular_rate(1.0, 4, 0.5, s, 3) for s in range(3)] == [0.25, 1.0, 0.25]  # shortest rise and fall


def test_a_triangular_run_logs_the_rate_of_each_update(train_tiny) -> None:
    """log_every 1: each train row is one update, its lr the rate it trained at."""
    out = train_tiny("tri", "train.schedule=triangular", "train.warmup=0.25", "train.lr_ratio=8")
    lrs = train_lrs(out)
    total = len(lrs)
    assert total >= 20  # two epochs of the tiny corpus
    peak = math.floor(0.25 * total)
    assert lrs[0] == pytest.approx(0.01 / 8) and lrs[-1] == pytest.approx(0.01 / 8)
    assert lrs[peak] == pytest.approx(0.01) and max(lrs) == lrs[peak]
    assert lrs == pytest.approx([triangular_rate(0.01, 8, 0.25, s, total) for s in range(total)])


def test_train_max_steps_sets_the_triangle_and_a_resume_that_changes_it_says_so(train_tiny, capsys) -> None:
    out = train_tiny("tri", "train.schedule=triangular", "train.max_steps=12")
    lrs = train_lrs(out)
    assert len(lrs) == 12 and lrs[-1] == pytest.approx(0.01 / 32) and lrs[1] == pytest.approx(0.01)
    capsys.readouterr()
    rnnkit.train("lm", out=out, resume=True, overrides=["train.max_steps=16"])
    said = capsys.readouterr().out
    assert "changed: train.max_steps 12 -> 16, the triangular schedule now spans 16 updates" in said
    assert f"update 13 trains at {triangular_rate(0.01, 32, 0.1, 12, 16):.4g}" in said
    # the rest of the run follows the new length: a pure function of the update count and the config
    assert train_lrs(out)[12:] == pytest.approx([triangular_rate(0.01, 32, 0.1, s, 16) for s in range(12, 16)])


def test_the_triangle_spans_the_updates_made_when_the_epochs_differ_in_batches(train_tiny) -> None:
    """The LM's variable BPTT draws each epoch's batch lengths anew, so its epochs differ in updates: the schedule
    counts each epoch's (not the first epoch's times the epochs), and the last update trains at lr / lr_ratio."""
    settings = ["train.schedule=triangular", "train.variable_bptt=true", "train.epochs=4", "train.warmup=0.3",
                "train.lr_ratio=10"]
    out = train_tiny("vbptt", *settings)
    rows = [r for r in read_log(out) if r["split"] == "train"]
    per_epoch = [sum(1 for r in rows if int(r["epoch"]) == e) for e in range(1, 5)]
    assert len(set(per_epoch)) > 1  # (else this test could not tell the counts apart)
    lrs = train_lrs(out)  # the schedule's rates: the update's own is scaled by its BPTT length (lr_scale)
    assert lrs[-1] == pytest.approx(0.01 / 10, rel=1e-12) and max(lrs) == pytest.approx(0.01, rel=1e-12)
    assert lrs == pytest.approx([triangular_rate(0.01, 10, 0.3, s, len(lrs)) for s in range(len(lrs))], rel=1e-12)


def test_a_resume_names_the_rates_updates_train_at_or_that_none_is_left(train_tiny, tmp_path, monkeypatch,
                                                                        capsys) -> None:
    """A resume at a new train.lr: the triangular rate stays the one the last update trained at (a row logged
    before the next update names it, not the new peak); one whose max_steps is reached says no update is left."""
    monkeypatch.setattr(LMTask, "batch_loss", signal_on_call(LMTask.batch_loss, 7))
    with pytest.raises(KeyboardInterrupt):
        train_tiny("cut", "train.schedule=triangular")
    monkeypatch.undo()
    capsys.readouterr()
    rnnkit.train("lm", out=tmp_path / "cut", resume=True, overrides=["train.lr=0.05", "train.max_steps=7"])
    said = capsys.readouterr().out
    assert ("changed: train.lr 0.01 -> 0.05, train.max_steps 0 -> 7, the triangular schedule now spans 7 updates "
            "(no update is left to train)") in said
    last_update, stop = [r for r in read_log(tmp_path / "cut") if r["step"] == "7"]
    assert (last_update["split"], stop["split"]) == ("train", "valid")
    assert float(stop["lr"]) == float(last_update["lr"]) < 0.01  # the rate update 7 trained at, not 0.05


def assert_interrupted_run_resumes_exactly(train_tiny, monkeypatch, settings: list[str]) -> None:
    """A tiny LM run stopped by Ctrl-C at update 7 and resumed ends as the same run trained straight through."""
    full = train_tiny("full", *settings)
    monkeypatch.setattr(LMTask, "batch_loss", signal_on_call(LMTask.batch_loss, 7))
    with pytest.raises(KeyboardInterrupt):
        train_tiny("part", *settings)
    monkeypatch.undo()
    rnnkit.train("lm", out=full.parent / "part", resume=True)
    assert_same_run(full, full.parent / "part")


def test_an_interrupted_triangular_run_resumes_exactly(train_tiny, monkeypatch) -> None:
    settings = ["train.schedule=triangular", "model.dropout=0.3", "train.eval_every=5"]
    assert_interrupted_run_resumes_exactly(train_tiny, monkeypatch, settings)


# ------------------------------------------------------------------------------------------- the classifier

def classify_config(tmp_path: Path, *overrides: str):
    train = write_jsonl(tmp_path / "data" / "train.jsonl", order_texts(200, 1))
    valid = write_jsonl(tmp_path / "data" / "valid.jsonl", order_texts(60, 2))
    return load_config(None, [*CLS, "model.layers=2", f"data.train={train}", f"data.valid={valid}", *overrides],
                       {"task": "classify"})


def test_the_classifier_groups_its_layers_from_the_head_down(tmp_path: Path) -> None:
    cfg = classify_config(tmp_path, "model.pooling=attention")
    task = ClassifyTask(cfg, DistInfo(), CPU)
    groups = task.parameter_groups(task.model)
    assert [(name, depth) for name, _, depth in groups] == [
        ("head", 0), ("encoder.rnns.1", 1), ("encoder.rnns.0", 2), ("encoder.embedding", 3)]
    names = {id(p): n for n, p in task.model.named_parameters()}
    held = {name: {names[id(p)] for p in params} for name, params, _ in groups}
    assert held["head"] == {n for n in names.values() if n.startswith(("head.", "pool."))}  # attention pooling too
    assert held["encoder.rnns.1"] == {f"encoder.rnns.1.{w}_l0" for w in ("weight_ih", "weight_hh", "bias_ih",
                                                                          "bias_hh")}
    assert held["encoder.embedding"] == {"encoder.embedding.weight"}
    bag = ClassifyTask(classify_config(tmp_path, "model.encoder=bag", "model.pooling=mean"), DistInfo(), CPU)
    assert [(n, d) for n, _, d in bag.parameter_groups(bag.model)] == [("head", 0), ("encoder.embedding", 1)]


def test_each_classifier_group_trains_at_lr_over_decay_to_its_depth(tmp_path: Path) -> None:
    cfg = classify_config(tmp_path, "train.optimizer=adam", "train.max_steps=3", "train.layer_lr_decay=2.6",
                          "train.freeze=encoder.embedding")
    task = ClassifyTask(cfg, DistInfo(), CPU)
    trainer = Trainer(task, cfg.train, tmp_path / "out", CPU)
    embedding = task.model.encoder.embedding.weight.detach().clone()
    assert trainer.lr_groups_line() == ("discriminative rates (train.layer_lr_decay 2.6): lr head x1, "
                                        "encoder.rnns.1 x0.385, encoder.rnns.0 x0.148, encoder.embedding x0.0569")
    trainer.fit()
    assert trainer.optimizer.defaults["fused"] is True  # torch's fused Adam takes the groups
    lrs = [group["lr"] for group in trainer.optimizer.param_groups]
    assert lrs == pytest.approx([0.02, 0.02 / 2.6, 0.02 / 2.6**2, 0.02 / 2.6**3])
    assert torch.equal(task.model.encoder.embedding.weight, embedding)  # frozen: in its group, without a gradient
    assert [len(g["params"]) for g in trainer.optimizer.param_groups] == [len(p) for _, p, _ in trainer.lr_groups]


def test_a_classifier_with_both_fine_tuning_pieces_resumes_exactly(tmp_path: Path, monkeypatch) -> None:
    train = write_jsonl(tmp_path / "data" / "train.jsonl", order_texts(300, 1))
    valid = write_jsonl(tmp_path / "data" / "valid.jsonl", order_texts(60, 2))
    kw = {"data": str(train), "valid": str(valid),
          "overrides": [*CLS, "model.layers=2", "train.epochs=2", "train.schedule=triangular",
                        "train.layer_lr_decay=2.6", "train.eval_every=5"]}
    rnnkit.train("classify", out=tmp_path / "whole", **kw)
    monkeypatch.setattr(ClassifyTask, "batch_loss", signal_on_call(ClassifyTask.batch_loss, 7))
    with pytest.raises(KeyboardInterrupt):
        rnnkit.train("classify", out=tmp_path / "cut", **kw)
    monkeypatch.undo()
    rnnkit.train("classify", out=tmp_path / "cut", resume=True)
    assert_same_run(tmp_path / "whole", tmp_path / "cut")
    lrs = train_lrs(tmp_path / "whole")  # the base (head's) rate of the last update of each row
    assert max(lrs) <= 0.02 and lrs[-1] < 0.02 / 8



def test_groups_given_as_generators_train_every_parameter(tmp_path: Path, monkeypatch) -> None:
    """A task may give each group's parameters as ``module.parameters()``: the check must not use them up."""
    given = ClassifyTask.parameter_groups
    monkeypatch.setattr(ClassifyTask, "parameter_groups",
                        lambda task, model: ((name, iter(params), depth) for name, params, depth in given(task, model)))
    cfg = classify_config(tmp_path, "train.optimizer=adam", "train.max_steps=2", "train.layer_lr_decay=2.6")
    task = ClassifyTask(cfg, DistInfo(), CPU)
    before = {name: p.detach().clone() for name, p in task.model.named_parameters()}
    trainer = Trainer(task, cfg.train, tmp_path / "out", CPU)
    assert [len(g["params"]) for g in trainer.optimizer.param_groups] == [len(p) for _, p, _ in trainer.lr_groups]
    assert sum(len(p) for _, p, _ in trainer.lr_groups) == len(before)
    trainer.fit()
    assert all(not torch.equal(p, before[name]) for name, p in task.model.named_parameters())  # each one trained


class GroupedTask:
    """A stand-in task whose parameter_groups are given: what ``lr_groups`` checks."""

    name = "grouped"

    def __init__(self, groups):
        self.groups = groups

    def parameter_groups(self, model):
        return self.groups


@pytest.mark.parametrize(("groups", "message"), [
    (lambda m: [("top", [m[1].weight], 0), ("bottom", [m[0].weight, m[0].bias], 1)],
     "parameter_groups() leaves out 1.bias of the model's parameters"),
    (lambda m: [("top", [*m[1].parameters(), m[0].bias], 0), ("bottom", list(m[0].parameters()), 1)],
     "parameter_groups() puts a parameter in two groups ('bottom')"),
    (lambda m: [("top", list(m[1].parameters()), 0), ("bottom", list(m[0].parameters()), -1)],
     "gave the group 'bottom' no parameters or a depth that is not an integer >= 0 (-1)"),
    (lambda m: [("top", list(m[1].parameters()), 0), ("bottom", list(m[0].parameters()), True)],
     "a depth that is not an integer >= 0 (True)"),
    (lambda m: [("top", list(m[1].parameters()), 0), ("bottom", [], 1), ("rest", list(m[0].parameters()), 2)],
     "gave the group 'bottom' no parameters"),
    (lambda m: [("top", [*m[1].parameters(), torch.nn.Parameter(torch.zeros(2))], 0),
                ("bottom", list(m[0].parameters()), 1)],
     "parameter_groups()'s group 'top' holds a tensor that is not the model's parameter"),
], ids=["left-out", "twice", "negative-depth", "bool-depth", "empty", "foreign"])
def test_groups_that_leave_out_or_repeat_a_parameter_are_refused_naming_the_task(groups, message) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    with pytest.raises(RnnkitError, match=re.escape(message)) as error:
        lr_groups(GroupedTask(groups(model)), model, 2.0)
    assert str(error.value).startswith("task 'grouped': ")
    good = [("top", list(model[1].parameters()), 0), ("bottom", list(model[0].parameters()), 1)]
    assert [(name, factor) for name, _, factor in lr_groups(GroupedTask(good), model, 2.0)] == [("top", 1.0),
                                                                                               ("bottom", 0.5)]


def test_a_task_overriding_the_groups_with_one_group_refuses_layer_lr_decay() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    with pytest.raises(RnnkitError, match="train.layer_lr_decay 2 gives each layer its own rate, but the grouped task "
                                          "trains its parameters as one group"):
        lr_groups(GroupedTask([("all", list(model.parameters()), 0)]), model, 2.0)


def never_built(*args, **kwargs):
    raise AssertionError("the task was built: its data read")


@pytest.mark.parametrize("overrides", [
    ["train.warmup=0.2"], ["train.schedule=triangular", "train.min_lr=0.001"],
    ["train.schedule=cosine"]], ids=["warmup", "min-lr", "schedule"])
def test_config_mistakes_are_refused_before_the_task_reads_its_data(train_tiny, tmp_path, monkeypatch,
                                                                    overrides) -> None:
    monkeypatch.setattr(LMTask, "__init__", never_built)
    with pytest.raises(RnnkitError, match=r"train\.(warmup|min_lr)|unknown schedule"):
        train_tiny("early", *overrides)
    assert not (tmp_path / "early").exists()


def test_a_one_group_task_refuses_layer_lr_decay_before_it_reads_its_data(tmp_path, monkeypatch) -> None:
    """seq2seq trains its parameters as one group (the LM and the classifier give layers)."""
    from rnnkit.tasks.seq2seq import Seq2SeqTask

    monkeypatch.setattr(Seq2SeqTask, "__init__", never_built)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("a b\tb a\nc d\td c\n", encoding="utf-8")
    with pytest.raises(RnnkitError, match="train.layer_lr_decay 2 gives each layer its own rate, but the seq2seq task "
                                          "trains its parameters as one group"):
        rnnkit.train("seq2seq", data=str(pairs), out=tmp_path / "early", overrides=["train.layer_lr_decay=2"])
    assert not (tmp_path / "early").exists()


# ------------------------------------------------------------------------------------------- the language model

def lm_task(corpus: Path, *overrides: str) -> LMTask:
    cfg = load_config(None, [*TINY, f"data.train={corpus}", *overrides], {"task": "lm"})
    return LMTask(cfg, DistInfo(), CPU)


def names_by_group(model: torch.nn.Module, groups) -> dict[str, set[str]]:
    """Each group's parameters by every name they have (a tied matrix has two)."""
    names: dict[int, set[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), set()).add(name)
    return {group: set().union(*(names[id(p)] for p in params)) for group, params, _ in groups}


def rnn_names(*layers: int) -> set[str]:
    return {f"rnns.{k}.{w}_l0" for k in layers for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}


FULL_OUTPUT = {"output.weight", "output.bias"}
ADAPTIVE_OUTPUT = {"output.head.weight", "output.head.bias", "output.tail.0.0.weight", "output.tail.0.1.weight",
                   "output.tail.1.0.weight", "output.tail.1.1.weight"}
LM_VARIANTS = {  # overrides -> (group, depth, parameter names) from the output down
    "untied-2": (["model.layers=2"], [("output", 0, FULL_OUTPUT), ("rnns.1", 1, rnn_names(1)),
                                      ("rnns.0", 2, rnn_names(0)), ("embedding", 3, {"embedding.weight"})]),
    "tied-2": (["model.layers=2", "model.tie_weights=true"],
               [("output+embedding", 0, {*FULL_OUTPUT, "embedding.weight"}), ("rnns.1", 1, rnn_names(1)),
                ("rnns.0", 2, rnn_names(0))]),
    "adaptive": (["model.softmax=adaptive", "model.adaptive_cutoffs=[8,16]"],
                 [("output", 0, ADAPTIVE_OUTPUT), ("rnns.0", 1, rnn_names(0)), ("embedding", 2, {"embedding.weight"})]),
    "awd-3": (["model.layers=3", "model.tie_weights=true", "model.weight_drop=0.5", "model.locked_dropout=true",
               "model.word_dropout=0.1", "model.layer_dropout=0.2", "model.dropout=0.3"],
              [("output+embedding", 0, {*FULL_OUTPUT, "embedding.weight"}), ("rnns.2", 1, rnn_names(2)),
               ("rnns.1", 2, rnn_names(1)), ("rnns.0", 3, rnn_names(0))]),
    "gru-1": (["model.cell=gru"], [("output", 0, FULL_OUTPUT), ("rnns.0", 1, rnn_names(0)),
                                   ("embedding", 2, {"embedding.weight"})]),
}


@pytest.mark.parametrize("variant", LM_VARIANTS)
def test_the_lm_groups_its_layers_from_the_output_down(corpus: Path, variant: str) -> None:
    overrides, expected = LM_VARIANTS[variant]
    task = lm_task(corpus, *overrides)
    groups = task.parameter_groups(task.model)
    assert [(name, depth) for name, _, depth in groups] == [(name, depth) for name, depth, _ in expected]
    assert names_by_group(task.model, groups) == {name: names for name, _, names in expected}
    # the trainer's own check: every parameter in exactly one group, at 1 / 2.6 ** depth of the rate
    assert [(n, f) for n, _, f in lr_groups(task, task.model, 2.6)] == [(n, 2.6**-d) for n, d, _ in expected]


@pytest.mark.parametrize("variant", ["untied-2", "tied-2", "adaptive"])
def test_each_lm_group_steps_at_its_share_of_the_rate(corpus: Path, tmp_path: Path, variant: str) -> None:
    """One plain SGD update moves each parameter by -(its group's rate) x its gradient: the group's share of
    train.lr, measured on the update itself (a least-squares fit of the step to the gradient)."""
    cfg_overrides, expected = LM_VARIANTS[variant]
    task = lm_task(corpus, *cfg_overrides, "train.optimizer=sgd", "train.lr=0.5", "train.max_steps=1",
                   "train.layer_lr_decay=2.6")
    before = [p.detach().clone() for p in task.model.parameters()]
    trainer = Trainer(task, task.cfg.train, tmp_path / "out", CPU)
    trainer.fit()
    steps = {id(p): (b - p.detach()).double() for b, p in zip(before, task.model.parameters(), strict=True)}
    for name, params, factor in trainer.lr_groups:
        step = torch.cat([steps[id(p)].flatten() for p in params])
        grad = torch.cat([p.grad.double().flatten() for p in params])
        assert float(grad.norm()) > 0, name
        assert float(step @ grad / (grad @ grad)) == pytest.approx(0.5 * factor, rel=1e-4), name
    assert [g["lr"] for g in trainer.optimizer.param_groups] == pytest.approx([0.5 * 2.6**-d for _, d, _ in expected])


def test_lm_fine_tuning_with_discriminative_rates_from_the_command_line(tiny_model: Path, valid_corpus: Path,
                                                                        tmp_path: Path, capsys) -> None:
    """ULMFiT's stage 2: the LM fine-tuned on the target task's text at discriminative rates; its resume keeps them."""
    from rnnkit.cli import main

    out = tmp_path / "fine"
    sets = [a for s in (*TINY, "train.progress=true", "train.layer_lr_decay=2.6", "train.max_steps=3")
            for a in ("--set", s)]
    assert main(["train", "lm", "--init-from", str(tiny_model), "--data", str(valid_corpus), "--out", str(out),
                 *sets]) == 0
    line = "discriminative rates (train.layer_lr_decay 2.6): lr output x1, rnns.0 x0.385, embedding x0.148"
    assert line in capsys.readouterr().out
    assert "layer_lr_decay: 2.6" in (out / "config.yaml").read_text()
    assert main(["train", "lm", "--out", str(out), "--resume", "--set", "train.max_steps=5"]) == 0
    assert line in capsys.readouterr().out
    state = torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=True)
    assert state["step"] == 5
    lrs = [g["lr"] for g in state["optimizer"]["param_groups"]]
    assert lrs == pytest.approx([lrs[0], lrs[0] / 2.6, lrs[0] / 2.6**2])


README = Path(__file__).resolve().parents[1] / "README.md"


def test_readmes_stage_2_command_fine_tunes_an_lm_trained_from_a_recipe(corpus: Path, valid_corpus: Path,
                                                                         tmp_path: Path, capsys) -> None:
    """README's ULMFiT stage-2 command, with the recipe the LM was trained with (demo here): a strict same-task
    --init-from needs the same model, which the run's config takes from the recipe, not from LM_DIR."""
    from rnnkit.cli import main

    words = re.search(r"`(rnnkit train lm --recipe LM_RECIPE [^`]*)`", " ".join(README.read_text().split()))
    assert words, "README gives the stage-2 command with the LM's recipe"
    source = tmp_path / "lm"
    rnnkit.train("lm", recipe="demo", data=str(corpus), out=source, overrides=["train.max_steps=1"])
    given = {"LM_RECIPE": "demo", "LM_DIR": str(source), "TASK_TEXT": str(valid_corpus)}
    command = [given.get(word, word) for word in words.group(1).split()[1:]]  # after "rnnkit"
    quick = ["--set", "train.max_steps=1", "--set", "train.progress=false"]
    assert main([*command, "--out", str(tmp_path / "fine"), *quick]) == 0, capsys.readouterr().err
    without_recipe = command[:2] + command[4:]  # (train lm) --recipe demo
    assert main([*without_recipe, "--out", str(tmp_path / "other"), *quick]) == 2
    assert "--init-from (same task, strict) needs the same model" in capsys.readouterr().err


def test_an_interrupted_lm_run_at_discriminative_rates_resumes_exactly(train_tiny, monkeypatch) -> None:
    settings = ["model.layers=2", "model.tie_weights=true", "train.layer_lr_decay=2.6", "model.dropout=0.3",
                "train.eval_every=5"]
    assert_interrupted_run_resumes_exactly(train_tiny, monkeypatch, settings)


def test_nt_asgd_switches_to_averaging_with_the_lm_groups_rates(corpus: Path, tmp_path: Path) -> None:
    task = lm_task(corpus, "model.layers=2", "train.optimizer=sgd", "train.lr=5", "train.nt_asgd=1",
                   "train.eval_every=2", "train.epochs=4", "train.layer_lr_decay=2.6")
    trainer = Trainer(task, task.cfg.train, tmp_path / "out", CPU)
    trainer.fit()
    assert trainer.optimizer_name == "asgd"
    assert [g["lr"] for g in trainer.optimizer.param_groups] == pytest.approx([5 * 2.6**-d for d in range(4)])

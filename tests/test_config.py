"""Config: recipes, overrides with type checking, unknown keys, and the config.yaml a run writes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import TINY
from rnnkit.api import find_splits
from rnnkit.config import (
    Config,
    apply_overrides,
    config_from_dict,
    list_recipes,
    load_config,
    load_yaml,
    recipe_dir,
    resolve_recipe,
    save_config,
)
from rnnkit.errors import RnnkitError
from rnnkit.models.lm import RNNLanguageModel
from rnnkit.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
EXPECTED_RECIPES = {"demo", "seed-001", "seed-002", "ptb-small", "ptb-medium", "ptb-large", "ptb-awd",
                    "shakespeare-char"}


def test_demo_recipe_loads_its_values() -> None:
    cfg = load_config("demo")
    assert cfg.task == "lm"
    assert (cfg.data.mode, cfg.data.window) == ("windows", 3)
    assert (cfg.model.cell, cfg.model.embedding_size, cfg.model.hidden_size, cfg.model.layers) == ("lstm", 64, 256, 1)
    assert (cfg.train.optimizer, cfg.train.lr, cfg.train.epochs, cfg.train.batch_size) == ("adam", 0.02, 15, 32)
    assert cfg.model.dropout == 0.0  # not in the recipe: the dataclass default


def test_recipe_from_a_yaml_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("model:\n  cell: gru  # a comment\n  hidden_size: 7\ntrain:\n  lr: 2\n", encoding="utf-8")
    cfg = load_config(str(path))
    assert cfg.model.cell == "gru" and cfg.model.hidden_size == 7
    assert cfg.train.lr == 2.0 and isinstance(cfg.train.lr, float)  # int coerced where a float is expected


def test_every_builtin_recipe_parses_and_builds_a_model() -> None:
    recipes = list_recipes()
    assert EXPECTED_RECIPES <= set(recipes)
    for name, description in recipes.items():
        assert description and not description.startswith("#"), name
        cfg = load_config(name)
        if cfg.task != "lm":  # another task's recipes are checked by its own tests (test_translate_cli.py, ...)
            continue
        assert isinstance(cfg, Config), name
        assert cfg.data.mode in ("stream", "sentences", "windows"), name
        assert cfg.tokenizer.kind in ("char", "word", "sentencepiece"), name
        assert cfg.model.cell in ("rnn_tanh", "rnn_relu", "gru", "lstm"), name
        assert cfg.train.optimizer in ("sgd", "adam", "adamw", "rmsprop", "asgd"), name
        assert cfg.train.schedule in ("none", "halve_on_increase", "plateau", "step"), name
        # the shapes are consistent: a model of the recipe's layout can be built (tiny sizes for speed)
        cfg.model.embedding_size, cfg.model.hidden_size = 4, 16  # 16: an adaptive softmax's clusters keep units
        model = RNNLanguageModel(cfg.model, 10 + max(cfg.model.adaptive_cutoffs, default=0))
        assert len(model.rnns) == cfg.model.layers


def test_every_recipe_key_has_a_comment() -> None:
    """DESIGN.md: every recipe is a YAML file with a comment on every key."""
    for path in sorted(recipe_dir().glob("*.yaml")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if re.match(r"^\s+\w+:\s*\S", line):  # an indented key with a value
                assert "#" in line, f"{path.name}:{number} has no comment: {line!r}"


def test_data_paths_named_in_recipe_comments_are_accepted() -> None:
    """A recipe's "Use with: --data PATH" (relative to the repo root) must work where PATH exists."""
    checked = 0
    for path in sorted(recipe_dir().glob("*.yaml")):
        comments = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#"))
        for match in re.finditer(r"--data (\S+)", comments):
            data = REPO / match.group(1)
            if data.exists():  # ../shared/data may not be checked out
                cfg = load_config(path.stem)  # the recipe's task resolves its --data (seq2seq: data.src / data.trg)
                train = get_task(cfg.task).find_data(data, cfg)["train"]
                assert Path(train).is_file(), f"{path.name}: {match.group(1)}"
                checked += 1
    assert checked >= 1  # at least the embedded fable


def test_overrides_set_values_with_types() -> None:
    cfg = load_config("demo", ["train.lr=0.5", "model.cell=gru", "train.progress=true", "train.epochs=3",
                               "data.valid=/tmp/v.txt", "tokenizer.spm_model=null", "train.clip=1"])
    assert cfg.train.lr == 0.5
    assert cfg.model.cell == "gru"
    assert cfg.train.progress is True
    assert cfg.train.epochs == 3 and isinstance(cfg.train.epochs, int)
    assert cfg.data.valid == "/tmp/v.txt"
    assert cfg.tokenizer.spm_model is None
    assert cfg.train.clip == 1.0 and isinstance(cfg.train.clip, float)
    # what the recipe set and no override touched stays
    assert cfg.model.hidden_size == 256


def test_betas_are_a_pair_of_floats_that_round_trip_through_a_model_dirs_config(tmp_path: Path) -> None:
    assert load_config(None).train.betas == [0.9, 0.999]  # torch's Adam defaults
    cfg = load_config(None, ["train.optimizer=adamw", "train.betas=[0.7, 1e-1]"])
    assert cfg.train.betas == [0.7, 0.1] and all(isinstance(b, float) for b in cfg.train.betas)
    (tmp_path / "r.yaml").write_text("train:\n  optimizer: adam\n  betas: [0, 0.99]\n")
    assert load_config(str(tmp_path / "r.yaml")).train.betas == [0.0, 0.99]
    save_config(cfg, tmp_path / "config.yaml")
    assert config_from_dict(load_yaml(tmp_path / "config.yaml")).train.betas == [0.7, 0.1]


def test_later_override_wins_and_value_may_contain_equals() -> None:
    cfg = load_config(None, ["train.lr=0.5", "train.lr=0.25", "data.train=a=b.txt"])
    assert cfg.train.lr == 0.25
    assert cfg.data.train == "a=b.txt"


def test_an_empty_override_value_is_the_empty_string_for_a_text_key() -> None:
    """``--set train.freeze=`` clears the recipe's freeze (no ``''`` needed); an optional path given nothing is
    unset, as before; every other form reads as YAML."""
    frozen = "train.freeze=encoder.embedding,encoder.rnns"
    recipe = load_config("imdb-lm-lstm", [frozen])
    assert recipe.train.freeze == "encoder.embedding,encoder.rnns" and recipe.data.valid is None
    cfg = load_config("imdb-lm-lstm", [frozen, "train.freeze=", "data.valid=v.jsonl", "data.valid=",
                                       "data.classes=neg,pos"])
    assert cfg.train.freeze == "" and cfg.data.valid is None and cfg.data.classes == "neg,pos"
    assert load_config("imdb-lm-lstm", [frozen, "train.freeze=''"]).train.freeze == ""
    assert load_config("imdb-lm-lstm", [frozen, "train.freeze= "]).train.freeze == ""
    assert load_config("imdb-lm-lstm", ["data.valid=null", "data.test=~"]).data.valid is None


@pytest.mark.parametrize("override, wanted", [
    ("train.lr=", "a number"), ("train.epochs=", "an integer"), ("train.progress=", "true or false"),
])
def test_an_empty_override_value_of_a_number_or_switch_is_one_clear_error(override: str, wanted: str) -> None:
    key = override.removesuffix("=")
    message = f"--set: config key '{key}' needs a value ({wanted}, e.g. {key}="
    with pytest.raises(RnnkitError, match=re.escape(message)):
        load_config("demo", [override])


@pytest.mark.parametrize("override, key", [
    ("train.lrr=0.1", "train.lrr"),
    ("model.hidden=3", "model.hidden"),
    ("optim.lr=1", "optim"),
])
def test_unknown_key_is_an_error_naming_it(override: str, key: str) -> None:
    with pytest.raises(RnnkitError, match=f"unknown config key '{re.escape(key)}'"):
        load_config("demo", [override])


def test_unknown_key_in_a_yaml_file_names_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  lr: 0.1\n  epoch: 3\n", encoding="utf-8")
    with pytest.raises(RnnkitError) as err:
        load_config(str(path))
    assert str(path) in str(err.value) and "'train.epoch'" in str(err.value)


@pytest.mark.parametrize("override, key", [
    ("train.epochs=abc", "train.epochs"),
    ("train.epochs=1.5", "train.epochs"),
    ("train.epochs=true", "train.epochs"),
    ("train.lr=fast", "train.lr"),
    ("train.lr=true", "train.lr"),
    ("train.progress=maybe", "train.progress"),
    ("train.progress=1", "train.progress"),
    ("model.cell=3", "model.cell"),
])
def test_bad_type_is_an_error_naming_the_key(override: str, key: str) -> None:
    with pytest.raises(RnnkitError, match=re.escape(f"'{key}' must be")):
        load_config("demo", [override])


def test_a_section_given_a_scalar_is_an_error() -> None:
    with pytest.raises(RnnkitError, match="section 'train' must be a mapping"):
        config_from_dict({"train": 3})


@pytest.mark.parametrize("override", ["train.lr", "train.lr 0.5"])
def test_bad_override_syntax(override: str) -> None:
    with pytest.raises(RnnkitError, match="not of the form key=value"):
        apply_overrides({}, [override])


def test_override_into_a_value_is_an_error() -> None:
    with pytest.raises(RnnkitError, match="'lr' is not a section"):
        apply_overrides({"train": {"lr": 0.5}}, ["train.lr.x=1"])


def test_unknown_recipe_lists_the_builtin_ones() -> None:
    with pytest.raises(RnnkitError, match="unknown recipe 'no-such-recipe'") as err:
        resolve_recipe("no-such-recipe")
    assert "demo" in str(err.value)


def test_missing_recipe_file(tmp_path: Path) -> None:
    with pytest.raises(RnnkitError, match="recipe file not found") as err:
        load_config(str(tmp_path / "nope.yaml"))
    assert "nope.yaml" in str(err.value)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("train:\n  lr: 0.1\n  epochs: [3\n", encoding="utf-8")
    with pytest.raises(RnnkitError, match="invalid YAML") as err:
        load_config(str(path))
    assert err.value.path == str(path) and err.value.line is not None and err.value.line >= 3


def test_resolved_config_written_to_the_model_dir_is_what_was_trained(train_tiny, corpus: Path, no_curves) -> None:
    out = train_tiny("model", "model.cell=gru", "model.hidden_size=12", "train.max_steps=2")
    written = yaml.safe_load((out / "config.yaml").read_text(encoding="utf-8"))
    cfg = config_from_dict(written)
    assert cfg.model.cell == "gru" and cfg.model.hidden_size == 12 and cfg.model.embedding_size == 8
    assert cfg.train.max_steps == 2 and cfg.train.progress is False
    assert cfg.data.train == str(corpus.resolve())  # data paths are stored resolved
    # every field is present and equals the config the run was built from
    expected = load_config(None, [*TINY, "model.cell=gru", "model.hidden_size=12", "train.max_steps=2"],
                           {"task": "lm", "data": {"train": str(corpus.resolve())}})
    assert written == expected.to_dict()
    assert set(written) == {"task", "data", "tokenizer", "model", "train"}
    assert set(written["train"]) == set(Config().to_dict()["train"])
    # and the weights have the shapes that config describes
    from safetensors.torch import load_file

    weights = load_file(out / "model.safetensors")
    assert tuple(weights["rnns.0.weight_hh_l0"].shape) == (3 * 12, 12)  # GRU: 3 gates
    assert tuple(weights["embedding.weight"].shape)[1] == 8


def test_find_splits_prefers_word_level_ptb_files_but_takes_a_char_file_alone(tmp_path: Path) -> None:
    for name in ("ptb.train.txt", "ptb.char.train.txt", "ptb.valid.txt", "ptb.char.valid.txt"):
        (tmp_path / name).write_text("x\n", encoding="utf-8")
    assert {k: Path(v).name for k, v in find_splits(tmp_path).items()} == \
        {"train": "ptb.train.txt", "valid": "ptb.valid.txt"}
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "en.char.train.txt").write_text("x\n", encoding="utf-8")
    assert Path(find_splits(alone)["train"]).name == "en.char.train.txt"


def test_find_splits_matches_the_word_in_any_part_of_the_name(tmp_path: Path) -> None:
    for name in ("en_train.txt", "imdb-dev.jsonl", "ptb.test.txt", "pretrained.txt", "ptb.char.valid.txt"):
        (tmp_path / name).write_text("x\n", encoding="utf-8")
    splits = {k: Path(v).name for k, v in find_splits(tmp_path).items()}
    assert splits == {"train": "en_train.txt", "valid": "imdb-dev.jsonl", "test": "ptb.test.txt"}
    (tmp_path / "en_train.txt").unlink()
    with pytest.raises(RnnkitError, match="no training file"):  # 'pretrained' does not hold the word
        find_splits(tmp_path)


@pytest.mark.parametrize("override, message", [
    ("train.bptt=0", "'train.bptt' must be at least 1, got 0"),
    ("train.batch_size=0", "'train.batch_size' must be at least 1, got 0"),
    ("train.lr=-1", "'train.lr' must be at least 0, got -1.0"),
    ("train.lr_decay=0", "'train.lr_decay' must be above 0, got 0.0"),
    ("model.dropout=1.5", "'model.dropout' must be below 1, got 1.5"),
    ("model.layers=0", "'model.layers' must be at least 1, got 0"),
    ("data.valid_fraction=-0.5", "'data.valid_fraction' must be at least 0, got -0.5"),
    ("train.lr_decay=2", "'train.lr_decay' must be at most 1, got 2.0"),
    ("train.lr=", "'train.lr' needs a value"),
])
def test_values_no_run_can_use_are_refused_naming_the_override(override: str, message: str) -> None:
    with pytest.raises(RnnkitError, match=re.escape(message)) as err:
        load_config("demo", [override])
    assert str(err.value).startswith("--set: ")  # the override, not the recipe, is to blame


def test_a_bad_value_in_a_recipe_names_the_recipe(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  bptt: 0\n", encoding="utf-8")
    with pytest.raises(RnnkitError, match=re.escape(f"{recipe}: config key 'train.bptt' must be at least 1")):
        load_config(str(recipe))


def test_an_unknown_key_points_at_its_line_in_its_section(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  bptt: 5\ndata:\n  mode: stream\n  bptt: 3\n", encoding="utf-8")
    with pytest.raises(RnnkitError, match=re.escape(f"{recipe}:5: unknown config key 'data.bptt'")):
        load_config(str(recipe))


def test_a_key_given_twice_in_a_recipe_is_an_error(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  epochs: 1\nmodel:\n  layers: 1\ntrain:\n  epochs: 10\n", encoding="utf-8")
    with pytest.raises(RnnkitError, match=re.escape(f"{recipe}:5: invalid YAML")) as err:
        load_config(str(recipe))
    assert "'train' appears twice (lines 1 and 5)" in str(err.value)


@pytest.mark.parametrize("override, message", [
    ("train.lrr=1", "override 'train.lrr=1': unknown config key 'train.lrr'"),
    ("model=3", "override 'model=3': 'model' is a section"),
])
def test_override_errors_name_the_override(override: str, message: str) -> None:
    with pytest.raises(RnnkitError, match=re.escape(message)) as err:
        load_config("demo", [override])
    assert "demo.yaml" not in str(err.value)


def test_yaml_merge_keys_work_and_a_key_of_the_mapping_wins(tmp_path: Path) -> None:
    recipe = tmp_path / "merge.yaml"
    recipe.write_text("x-common: &common\n  lr: 0.5\n  clip: 2\ntrain:\n  <<: *common\n  clip: 3\n", encoding="utf-8")
    cfg = load_config(str(recipe))
    assert (cfg.train.lr, cfg.train.clip) == (0.5, 3.0)  # merged, and overridden by the mapping's own key
    assert "x-common" not in cfg.to_dict()  # x- keys hold anchors; they are not config


def test_a_small_alias_use_is_fine(tmp_path: Path) -> None:
    recipe = tmp_path / "alias.yaml"
    recipe.write_text("train:\n  lr: &rate 0.25\n  min_lr: *rate\n", encoding="utf-8")
    assert load_config(str(recipe)).train.min_lr == 0.25


def test_an_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    import time

    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)]
    bomb = tmp_path / "bomb.yaml"  # 9**9 = 387 million strings once expanded
    bomb.write_text("\n".join(lines) + "\ndata:\n  train: *i\n", encoding="utf-8")
    start = time.perf_counter()
    with pytest.raises(RnnkitError, match="aliases expand to more than 100,000 values"):
        load_config(str(bomb))
    assert time.perf_counter() - start < 1.0

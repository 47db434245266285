"""The bad-input corpus: every CLI verb and public Python entry point, fed what a hostile user feeds it.

One table, ``CASES``. Each row is plain data, ``Case(id, run, expect, message, files, isolate, out)``:

``id``       unique name (the pytest id), ``verb-what``.
``run``      ``("cli", [argv, ...])``: ``rnnkit.cli.main(argv)``, in this process unless ``isolate``; or
             ``("api", ENTRY, {kwargs})`` with ENTRY one of ``train``, ``load``, ``evaluate``,
             ``generate`` (methods of ``rnnkit.load("{model}")``), ``train_numpy``, ``load_numpy``,
             ``generate_numpy`` (``load_numpy("{model}").generate``), ``classify``
             (``rnnkit.load("{classifier}").classify``), ``classify_numeric`` (``{numeric_classifier}``'s),
             ``reconstruct`` (``rnnkit.load("{autoencoder}")``'s),
             ``translate``, ``attention``, ``evaluate_seq2seq`` (methods of ``rnnkit.load("{s2s_model}")``),
             ``evaluate_classifier`` (``rnnkit.load("{classifier}").evaluate``).
``expect``   CLI: the exit status (2: a user error; argparse's own errors exit 2 too).
             API: the exception class (``RnnkitError``, ``TypeError``, ``ValueError``).
``message``  a fragment the one error line (CLI) or the exception text (API) must contain.
``files``    ``{path in the case's folder: content}`` written first; content is ``str`` or ``bytes``,
             or one of ``("copy", SRC)`` (a copy of a file or folder), ``("edit", OLD, NEW)`` (replace
             text in a file written or copied before it), ``("truncate", SIZE)``, ``("delete",)`` (a file
             or a folder), ``("sparse", SIZE)`` (a file of SIZE zero bytes that takes no disk), ``("fifo",)``
             (a named pipe), ``("mkdir",)`` (a folder), ``("symlink", TARGET)``; the last three replace a
             file of that name.
             ``("float64",)`` rewrites a safetensors file (written or copied before it) with its tensors as
             float64, metadata kept; ``("nan", NAME, VALUE)`` sets every value of its tensor NAME to VALUE (NaN,
             infinity), metadata kept.
``isolate``  run in a subprocess under an address-space limit (``RLIMIT_AS``) and a timeout: the rows
             that would hang, or abort the process, if the fix regressed (huge models, /dev/zero, FIFOs,
             alias bombs, 10**8 threads). In-process rows run under a lowered RLIMIT_AS too.
``out``      the run's own folder (relative): the one place the run may change.

Placeholders, in argv, kwargs, files and message: ``{tmp}`` the case's folder (also the working
directory), ``{model}`` a tiny trained word LM (shared: it must not change), ``{windows_model}`` the same
in windows mode, ``{train}`` / ``{valid}`` good texts (shared too), ``{classifier}`` /
``{numeric_classifier}`` tiny classifiers of texts (labels xy, yx) and of 2-feature sequences, ``{autoencoder}`` a
tiny autoencoder of the same texts, ``{s2s_model}`` a
tiny trained seq2seq model (attention, sources of at most 10 tokens), ``{pairs}`` its training pairs (TSV),
``{s2s_text}`` a good sentence to translate.

Every row asserts: the exit status or exception type; exactly one message, containing the fragment;
no traceback (CLI rows: anything escaping ``main`` but SystemExit fails the row); no file changed
outside ``out`` (the case's folder and the shared inputs are snapshotted before and after); and bounded
time and memory (in-process: the peak RSS grows by less than :data:`MAX_RSS_GROWTH`; isolated: under
:data:`ISOLATED_AS_LIMIT` of address space and :data:`ISOLATED_TIMEOUT` seconds).

To add a verb (translate, classify) or a fix: add rows. Keep in-process rows to what fails before any
training step (they share the test process); put anything that could hang or allocate into ``isolate``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import rnnkit
from conftest import TINY
from rnnkit.cli import main
from rnnkit.errors import RnnkitError

pytestmark = pytest.mark.usefixtures("no_curves")

MAX_SECONDS = 10  # any in-process row
MAX_RSS_GROWTH = 300 << 20  # bytes of peak RSS an in-process row may add
ADDRESS_SPACE_HEADROOM = 2 << 30  # an in-process row runs under RLIMIT_AS = what is mapped + this
ISOLATED_AS_LIMIT = 6 << 30  # address space of an isolated row (torch alone maps about 1 GiB)
ISOLATED_TIMEOUT = 60  # seconds, start-up (torch import) included
SRC = Path(__file__).resolve().parents[1] / "src"


@dataclass(frozen=True)
class Case:
    id: str
    run: tuple
    expect: int | type[BaseException]
    message: str
    files: dict[str, Any] = field(default_factory=dict)
    isolate: bool = False
    out: str | None = None


def sets(*overrides: str) -> list[str]:
    return [a for s in overrides for a in ("--set", s)]


def cli(*argv: str) -> tuple:
    return ("cli", list(argv))


def api(entry: str, **kwargs: Any) -> tuple:
    return ("api", entry, kwargs)


# a tiny, fast run on the good text: a row adds the one thing that is wrong
TRAIN = ["train", "lm", "--data", "{train}", "--out", "{tmp}/m", *sets(*TINY, "train.max_steps=2")]
TRAIN_KW = {"data": "{train}", "out": "{tmp}/m", "overrides": [*TINY, "train.max_steps=2"]}
MODEL_COPY = {"mc": ("copy", "{model}")}
E = RnnkitError


def bad_set(id_: str, override: str, message: str, **kw: Any) -> Case:
    return Case(f"config-{id_}", cli(*TRAIN, "--set", override), 2, message, **kw)


def recipe(id_: str, text: str | bytes, message: str, **kw: Any) -> Case:
    return Case(f"recipe-{id_}", cli(*TRAIN, "--recipe", "{tmp}/r.yaml"), 2, message, files={"r.yaml": text}, **kw)


def bad_data(id_: str, content: Any, name: str, message: str, verb: str = "train", **kw: Any) -> Case:
    argv = (["train", "lm", "--data", f"{{tmp}}/{name}", "--out", "{tmp}/m", *sets(*TINY)] if verb == "train"
            else ["evaluate", "{model}", "--data", f"{{tmp}}/{name}"])
    return Case(f"{verb}-data-{id_}", cli(*argv), 2, message, files={name: content}, **kw)


def absurd_size(verb: str, argv: tuple, model: str, hidden: int, key: str, value: int) -> Case:
    """``model`` (its config.yaml's hidden_size is ``hidden``) copied with ``key`` (hidden_size or the layer counts:
    a seq2seq model's encoder_layers) set to ``value``, then loaded by ``argv``: refused naming the file and key."""
    old, new = ((f"hidden_size: {hidden}", f"hidden_size: {value}") if key == "hidden_size" else
                ("layers: 1", f"layers: {value}"))
    name = f"model.{'encoder_' if key == 'layers' and verb == 'translate' else ''}{key}"
    told = f"is {value:,}" if key == "hidden_size" else f"asks for {value:,} layers"
    return Case(f"{verb}-config-{key}-{value}", cli(*argv), 2, f"{{tmp}}/mc/config.yaml: '{name}' {told}",
                files={"mc": ("copy", model), "mc/config.yaml": ("edit", old, new)})


# seq2seq: a tiny run on good pairs ({pairs}); {s2s_model} is a tiny trained attention model (source
# limit 10 tokens) and {s2s_text} a good input for it
S2S_TINY = ["model.src_embedding_size=4", "model.trg_embedding_size=4", "model.hidden_size=8", "train.batch_size=4",
            "train.max_steps=2", "train.progress=false", "train.device=cpu", "data.valid_fraction=0.2",
            "source.kind=word", "target.kind=word"]
S2S_TRAIN = ["train", "seq2seq", "--data", "{pairs}", "--out", "{tmp}/m", *sets(*S2S_TINY)]
S2S_COPY = {"mc": ("copy", "{s2s_model}")}
PAIRS_TEXT = "a b\tb a\nc d\td c\nd a\ta d\n"
LONG_INPUT = "the cat sees the ball and the dog sees the cat ."  # 12 tokens: over the limit of 10


def s2s_data(id_: str, files: dict[str, Any], data: str, message: str, *extra: str, **kw: Any) -> Case:
    """``rnnkit train seq2seq --data DATA`` on the case's own files."""
    argv = ["train", "seq2seq", "--data", data, "--out", "{tmp}/m", *sets(*S2S_TINY), *extra]
    return Case(f"s2s-train-{id_}", cli(*argv), 2, message, files=files, **kw)


def s2s_set(id_: str, override: str, message: str) -> Case:
    return Case(f"s2s-config-{id_}", cli(*S2S_TRAIN, "--set", override), 2, message)


def translate(id_: str, *argv: str, message: str, model: str = "{s2s_model}", **kw: Any) -> Case:
    return Case(f"translate-{id_}", cli("translate", model, *argv), 2, message, **kw)


def damaged(id_: str, name: str, content: Any, message: str) -> Case:
    """``rnnkit translate`` of a copy of {s2s_model} (``mc``) whose file ``name`` is made ``content``."""
    return translate(id_, "{s2s_text}", message=message, model="{tmp}/mc", files={**S2S_COPY, f"mc/{name}": content})


ALIAS_BOMB = ("a: &a [x, x, x, x, x, x, x, x, x]\n"
              + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))
              + "data:\n  train: *i\n")
TRAIN_TEXT = "the cat sees the ball .\n" * 20


# classification: a tiny run on good labelled lines; a row adds the one thing that is wrong
LABELLED = "".join(f'{{"text": "{t}", "label": "{l}"}}\n' for t, l in
                   [("a x b y", "xy"), ("b y x", "yx"), ("x c y", "xy"), ("y d x", "yx")] * 5)
CLS_TINY = ["model.embedding_size=4", "model.hidden_size=4", "train.max_steps=2", "train.batch_size=4",
            "train.progress=false", "train.device=cpu"]
AE_TINY = [*CLS_TINY, "data.valid_fraction=0.2"]
TRAIN_CLS = ["train", "classify", "--data", "{tmp}/t.jsonl", "--out", "{tmp}/m", *sets(*CLS_TINY)]
TRAIN_FOLDER = ["train", "classify", "--out", "{tmp}/m", *sets(*CLS_TINY, "data.train={tmp}/d")]
TRAIN_NPZ = ["train", "classify", "--data", "{tmp}/t.npz", "--out", "{tmp}/m", *sets(*CLS_TINY)]


def npz_bytes(**arrays: Any) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v, dtype=object if k == "ragged" else None) for k, v in arrays.items()
                     if k != "ragged"}, **({"X": np.array(arrays["ragged"], dtype=object)} if "ragged" in arrays
                                          else {}))
    return buf.getvalue()


def idx_bytes(magic: bytes, dims: list[int], payload: int | bytes) -> bytes:
    """A gzipped IDX file: ``payload`` its data (an int: that many zero bytes)."""
    return __import__("gzip").compress(magic + b"".join(d.to_bytes(4, "big") for d in dims) + bytes(payload))


def bad_labelled(id_: str, content: str, message: str, name: str = "t.jsonl", extra: tuple = ()) -> Case:
    """A training run of the classifier on ``content``; unless the content is the training file, the good
    examples train."""
    files = {name: content} if name == "t.jsonl" else {"t.jsonl": LABELLED, name: content}
    return Case(f"classify-train-{id_}", cli(*TRAIN_CLS, *extra), 2, message, files=files)


CLASS_FOLDER = {f"d/{label}/{k}.txt": f"{text}\n" for k in range(5)  # a folder per class
                for text, label in (("x a y", "xy"), ("y b x", "yx"))}
RARE = '{"text": "x z y", "label": "zz"}\n'  # a class of one example
GOOD_NPZ = {"t.npz": npz_bytes(X=[[[0.0, 1.0]], [[1.0, 0.0]]] * 6, y=["a", "b"] * 6)}
EVAL_FILES = {"e.jsonl": '{"text": "x y", "label": "xy"}\n'}  # a file to evaluate {classifier} on
CLASSIFIER_COPY = {"mc": ("copy", "{classifier}"), **EVAL_FILES}


def _npz_object_labels() -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, X=np.zeros((2, 1, 1)), y=np.array([1, None], dtype=object))
    return buf.getvalue()


NPZ_OBJECT_LABELS = _npz_object_labels()

CASES: list[Case] = [
    # ------------------------------------------------------------------------------ argparse, every verb
    Case("cli-no-verb", cli(), 2, "the following arguments are required: command"),
    Case("cli-unknown-verb", cli("frobnicate"), 2, "invalid choice: 'frobnicate'"),
    Case("recipes-extra-argument", cli("recipes", "extra"), 2, "unrecognized arguments: extra"),
    Case("demo-out-without-value", cli("demo", "--out"), 2, "--out: expected one argument"),
    Case("train-no-task", cli("train"), 2, "the following arguments are required: task"),
    Case("train-unknown-task", cli("train", "xyz", "--out", "{tmp}/m"), 2, "invalid choice: 'xyz'"),
    Case("train-no-out", cli("train", "lm", "--data", "{train}"), 2, "the following arguments are required: --out"),
    Case("train-resume-with-another-init-from", cli("train", "lm", "--out", "{tmp}/mc", "--resume", "--init-from",
                                                    "{model}"), 2,
         "{tmp}/mc/rnnkit.json: --resume continues this run, which records no --init-from (it started without one, or "
         "before rnnkit recorded it), not `--init-from {model}`: leave out --init-from", files=MODEL_COPY),
    Case("train-unknown-device", cli(*TRAIN, "--device", "tpu"), 2, "invalid choice: 'tpu'"),
    Case("train-unknown-backend", cli(*TRAIN, "--backend", "jax"), 2, "invalid choice: 'jax'"),
    Case("generate-no-model", cli("generate"), 2, "the following arguments are required: model"),
    Case("generate-n-not-a-number", cli("generate", "{model}", "-n", "many"), 2, "invalid int value: 'many'"),
    Case("generate-temperature-not-a-number", cli("generate", "{model}", "--temperature", "hot"), 2,
         "invalid float value: 'hot'"),
    Case("evaluate-no-data", cli("evaluate", "{model}"), 2, "the following arguments are required: --data"),
    Case("evaluate-batch-size-not-a-number", cli("evaluate", "{model}", "--data", "{valid}", "--batch-size", "1.5"),
         2, "invalid int value: '1.5'"),
    Case("gradcheck-unknown-cell", cli("gradcheck", "--cell", "transformer"), 2, "invalid choice: 'transformer'"),
    Case("gradcheck-layers-not-a-number", cli("gradcheck", "--layers", "two"), 2, "invalid int value: 'two'"),
    # ------------------------------------------------------------------------------ gradcheck values
    Case("gradcheck-zero-layers", cli("gradcheck", "--layers", "0"), 2, "--layers must be between 1 and 8, got 0"),
    Case("gradcheck-negative-layers", cli("gradcheck", "--layers", "-1"), 2, "--layers must be between 1 and 8"),
    Case("gradcheck-huge-layers", cli("gradcheck", "--layers", "100000"), 2, "--layers must be between 1 and 8"),
    Case("gradcheck-nan-threshold", cli("gradcheck", "--threshold", "nan"), 2, "--threshold must be a positive"),
    Case("gradcheck-negative-threshold", cli("gradcheck", "--threshold", "-1"), 2, "--threshold must be a positive"),
    # ------------------------------------------------------------------------------ demo
    Case("demo-out-is-a-file", cli("demo", "--out", "{tmp}/f"), 2, "{tmp}/f: --out is a file",
         files={"f": "mine\n"}),
    Case("demo-out-is-another-model", cli("demo", "--out", "{tmp}/mc"), 2,
         "{tmp}/mc: was made by rnnkit train, not by the demo", files=MODEL_COPY),
    Case("demo-out-not-made-by-rnnkit", cli("demo", "--out", "{tmp}/d"), 2, "{tmp}/d: has no rnnkit.json",
         files={"d/config.yaml": "data: [\n"}),
    # ------------------------------------------------------------------------------ training data
    bad_data("missing", None, "nope.txt", "{tmp}/nope.txt: data path not found"),
    bad_data("empty", "", "empty.txt", "{tmp}/empty.txt: file is empty"),
    bad_data("blank-lines", "\n  \n\t\n", "blank.txt", "{tmp}/blank.txt: file is empty"),
    bad_data("latin1", b"the cat .\n" * 3 + b"the caf\xe9 .\n", "latin1.txt", "{tmp}/latin1.txt:4: not UTF-8"),
    bad_data("utf16", "the cat sees the ball .\n".encode("utf-16"), "u16.txt", "{tmp}/u16.txt:1: not UTF-8"),
    bad_data("gzip-named-txt", __import__("gzip").compress(TRAIN_TEXT.encode()), "packed.txt",
             "{tmp}/packed.txt:1: not UTF-8 (invalid byte at column 2) (it is gzip-compressed: name it .gz)"),
    bad_data("not-gzip-named-gz", TRAIN_TEXT, "plain.txt.gz", "{tmp}/plain.txt.gz: not a valid gzip file"),
    bad_data("truncated-gzip", __import__("gzip").compress(TRAIN_TEXT.encode() * 50)[:60], "cut.txt.gz",
             "{tmp}/cut.txt.gz: not a valid gzip file"),
    bad_data("json-suffix", '{"text": "the cat ."}\n' * 20, "reviews.json", "{tmp}/reviews.json: a .json file"),
    bad_data("jsonl-invalid-line", '{"text": "a fine film ."}\n{"text": "oops\n', "r.jsonl",
             "{tmp}/r.jsonl:2: invalid JSON"),
    bad_data("jsonl-no-text", '{"text": "a fine film ."}\n{"body": "x"}\n', "r.jsonl",
             '{tmp}/r.jsonl:2: JSON record has no string "text" field'),
    bad_data("jsonl-text-number", '{"text": 5}\n', "r.jsonl", '{tmp}/r.jsonl:1: JSON record has no string "text"'),
    bad_data("jsonl-text-null", '{"text": "ok ."}\n{"text": null}\n', "r.jsonl", "{tmp}/r.jsonl:2: JSON record"),
    bad_data("jsonl-text-list", '{"text": ["a", "b"]}\n', "r.jsonl", "{tmp}/r.jsonl:1: JSON record has no string"),
    bad_data("jsonl-record-list", '["text"]\n', "r.jsonl", '{tmp}/r.jsonl:1: JSON record has no string "text"'),
    bad_data("jsonl-blank-only", "\n\n", "r.jsonl", "{tmp}/r.jsonl: file is empty"),
    bad_data("jsonl-only-markup", '{"text": "<p> </p>"}\n{"text": "<hr>"}\n', "r.jsonl",
             "{tmp}/r.jsonl: file is empty (no non-blank lines) (its records hold only markup and white space)"),
    bad_data("one-word", "Fin\n", "one.txt", "{tmp}/one.txt: cannot batch the training data"),
    Case("train-data-char-device", cli(*TRAIN[:3], "/dev/null", *TRAIN[4:]), 2, "/dev/null: is not a regular file"),
    Case("train-data-folder-without-train-file", cli(*TRAIN[:3], "{tmp}/d", *TRAIN[4:]), 2,
         "{tmp}/d: no training file in the folder", files={"d/notes.txt": "x\n"}),
    Case("train-data-folder-with-two-train-files", cli(*TRAIN[:3], "{tmp}/d", *TRAIN[4:]), 2,
         "{tmp}/d: several train files (a.train.txt, b.train.txt)",
         files={"d/a.train.txt": TRAIN_TEXT, "d/b.train.txt": TRAIN_TEXT}),
    Case("train-data-fifo", cli(*TRAIN[:3], "{tmp}/pipe", *TRAIN[4:]), 2, "{tmp}/pipe: is not a regular file",
         files={"pipe": ("fifo",)}, isolate=True),
    Case("train-data-2gb-single-line", cli(*TRAIN[:3], "{tmp}/big.txt", *TRAIN[4:]), 2,
         "{tmp}/big.txt:1: the line is longer than 16 MiB", files={"big.txt": ("sparse", 2 << 30)}),
    Case("train-valid-missing", cli(*TRAIN, "--valid", "{tmp}/nope.txt"), 2, "{tmp}/nope.txt: file not found"),
    Case("train-valid-latin1", cli(*TRAIN, "--valid", "{tmp}/v.txt"), 2, "{tmp}/v.txt:2: not UTF-8",
         files={"v.txt": b"ok\n\xff\xfe\n"}),
    Case("train-valid-too-short", cli(*TRAIN, "--valid", "{tmp}/v.txt"), 2,
         "{tmp}/v.txt: cannot batch the validation data", files={"v.txt": "Fin\n"}),
    Case("train-valid-is-a-folder", cli(*TRAIN, "--valid", "{tmp}/v"), 2, "{tmp}/v: is a directory",
         files={"v": ("mkdir",)}),  # (not the folder --out lies in: that is refused first)
    Case("train-test-missing", cli(*TRAIN, "--test", "{tmp}/nope.txt"), 2, "{tmp}/nope.txt: file not found"),
    Case("train-test-device", cli(*TRAIN, "--test", "/dev/null"), 2, "/dev/null: is not a regular file"),
    Case("train-vocab-only-specials", cli(*TRAIN, "--set", "tokenizer.min_freq=1000"), 2,
         "the vocabulary holds only the special tokens <pad> <unk> <bos> <eos>"),
    Case("train-mostly-unk", cli(*TRAIN, "--set", "tokenizer.vocab_size=5"), 2,
         "of the training tokens", ),
    Case("train-no-sentences-after-filter", cli(*TRAIN, *sets("data.mode=sentences", "data.max_length=1")), 2,
         "no sentences left: every line is empty or filtered out by length (data.min_length 0, data.max_length 1)"),
    Case("train-window-longer-than-text", cli(*TRAIN, *sets("data.mode=windows", "data.window=100000")), 2,
         "{train}: too short: 340 token(s), and each prediction needs the data.window 100000 tokens before it"),
    Case("train-valid-filtered-out", cli(*TRAIN, "--valid", "{tmp}/v.txt", *sets("data.mode=sentences",
                                                                                  "data.min_length=7")), 2,
         "{tmp}/v.txt: validation data: no sentences left", files={"v.txt": "a b .\n" * 3}),
    Case("evaluate-windows-too-short", cli("evaluate", "{windows_model}", "--data", "{tmp}/s.txt"), 2,
         "{tmp}/s.txt: nothing to score: too short: 2 token(s), and each prediction needs the data.window 3",
         files={"s.txt": "the cat\n"}),
    Case("train-spm-model-missing", cli(*TRAIN, *sets("tokenizer.kind=sentencepiece",
                                                       "tokenizer.spm_model={tmp}/no.model")), 2,
         "{tmp}/no.model: sentencepiece model not found"),
    Case("train-spm-model-garbage", cli(*TRAIN, *sets("tokenizer.kind=sentencepiece",
                                                       "tokenizer.spm_model={tmp}/bad.model")), 2,
         "{tmp}/bad.model: is not a sentencepiece model that rnnkit can load", files={"bad.model": b"\x00garbage"}),
    Case("train-spm-unknown-type", cli(*TRAIN, *sets("tokenizer.kind=sentencepiece", "tokenizer.spm_type=xyz")), 2,
         "unknown tokenizer.spm_type 'xyz'"),
    # ------------------------------------------------------------------------------ --set: keys and syntax
    bad_set("unknown-key", "train.learning_rate=0.1", "unknown config key 'train.learning_rate'"),
    bad_set("unknown-section", "optim.lr=0.1", "unknown config key 'optim'"),
    bad_set("empty-key", "=1", "unknown config key ''"),
    bad_set("section-as-key", "model=3", "'model' is a section"),
    bad_set("key-as-section", "train.lr.x=1", "'lr' is not a section"),
    bad_set("not-key-value", "train.lr:0.1", "'train.lr:0.1' is not of the form key=value"),
    bad_set("missing-value", "train.lr=", "config key 'train.lr' needs a value"),
    bad_set("missing-value-int", "train.epochs=", "--set: config key 'train.epochs' needs a value (an integer, e.g. "
            "train.epochs="),
    bad_set("missing-value-bool", "train.progress=", "--set: config key 'train.progress' needs a value (true or "
            "false,"),
    bad_set("yaml-open-list", "train.lr=[1", "override 'train.lr=[1': invalid YAML"),
    bad_set("yaml-open-map", "train.lr={a", "override 'train.lr={a': invalid YAML"),
    bad_set("yaml-open-quote", 'train.lr="0.1', "invalid YAML"),
    bad_set("yaml-undefined-alias", "train.lr=*x", "invalid YAML: found undefined alias"),
    bad_set("yaml-recursive-alias", "data.train=&a [*a]", "an alias refers to a value that contains it"),
    bad_set("yaml-duplicate-key", "data.train={a: 1, a: 2}", "'a' appears twice"),
    bad_set("yaml-tab", "train.lr=\t- 1", "invalid YAML"),
    bad_set("task-unknown", "task=xyz", "--set: unknown task 'xyz' (available: autoencoder, classify, lm, seq2seq)"),
    bad_set("task-number", "task=3", "--set: config key 'task' must be a string, got 3"),
    # task is a text key: nothing after = is the empty string, no task
    bad_set("task-empty", "task=", "--set: unknown task '' (available: autoencoder, classify, lm, seq2seq)"),
    Case("config-task-unknown-then-key", cli(*TRAIN, *sets("task=xyz", "train.lr=1")), 2,
         "--set: unknown task 'xyz' (available: autoencoder, classify, lm, seq2seq)"),
    # ------------------------------------------------------------------------------ --set: types
    bad_set("int-word", "train.epochs=many", "'train.epochs' must be an integer, got 'many'"),
    bad_set("int-float", "train.epochs=1.5", "'train.epochs' must be an integer, got 1.5"),
    bad_set("int-bool", "train.batch_size=true", "'train.batch_size' must be an integer, got True"),
    bad_set("int-list", "train.batch_size=[1, 2]", "'train.batch_size' must be an integer, got [1, 2]"),
    bad_set("float-word", "train.lr=fast", "'train.lr' must be a number, got 'fast'"),
    bad_set("float-quoted", "train.lr='0.1'", "'train.lr' must be a number, got '0.1'"),
    bad_set("float-bool", "train.lr=true", "'train.lr' must be a number, got True"),
    bad_set("float-map", "train.clip={a: 1}", "'train.clip' must be a number"),
    bad_set("bool-word", "train.amp=maybe", "'train.amp' must be true or false, got 'maybe'"),
    bad_set("bool-word-cpu-amp", "train.cpu_amp=maybe", "'train.cpu_amp' must be true or false, got 'maybe'"),
    bad_set("bool-number-cpu-amp", "train.cpu_amp=2", "'train.cpu_amp' must be true or false, got 2"),
    bad_set("bool-number", "model.tie_weights=1", "'model.tie_weights' must be true or false, got 1"),
    bad_set("str-number", "model.cell=3", "'model.cell' must be a string, got 3"),
    bad_set("str-list", "train.optimizer=[sgd]", "'train.optimizer' must be a string"),
    bad_set("path-number", "data.train=123", "'data.train' must be a file path (a string), got 123"),
    bad_set("path-list", "data.valid=[a, b]", "'data.valid' must be a file path (a string)"),
    bad_set("path-map", "data.test={a: 1}", "'data.test' must be a file path (a string)"),
    bad_set("path-bool", "tokenizer.spm_model=true", "'tokenizer.spm_model' must be a file path (a string)"),
    bad_set("path-huge-list", "data.train=[" + ", ".join(["1"] * 5000) + "]",
            "must be a file path (a string), got [1,"),
    # ------------------------------------------------------------------------------ --set: NaN, infinity, huge
    *[bad_set(f"nan-{key}", f"{key}=.nan", f"'{key}' must be a finite number, got nan")
      for key in ("train.lr", "train.clip", "model.dropout", "train.momentum", "train.weight_decay",
                  "train.lr_decay", "data.valid_fraction", "model.init_range", "train.rmsprop_alpha",
                  "train.activation_reg", "train.temporal_reg", "model.weight_drop", "train.min_lr")],
    *[bad_set(f"inf-{sign}{key}", f"{key}={sign}.inf", f"'{key}' must be a finite number, got {sign}inf")
      for key, sign in (("train.lr", ""), ("train.clip", ""), ("train.min_lr", "-"), ("model.word_dropout", ""),
                        ("train.lr", "-"))],
    bad_set("nan-exponent-string", "train.lr=1e400", "'train.lr' must be a finite number, got inf"),
    bad_set("seed-negative", "train.seed=-1", "'train.seed' must be at least 0, got -1"),
    bad_set("seed-beyond-64-bits", "train.seed=" + str(2**64), "'train.seed' is too large"),
    bad_set("seed-huge", "train.seed=" + "9" * 400, "'train.seed' is too large"),
    bad_set("epochs-huge", "train.epochs=" + str(10**30), "'train.epochs' is too large"),
    # an integer beyond a float64 where a number is wanted: once an OverflowError in math.isfinite
    *[bad_set(f"float-huge-int-{key}", f"{key}={sign}1{'0' * 400}", f"--set: config key '{key}' is too large for "
              f"float32 ({sign}1000")
      for key, sign in (("train.lr", ""), ("model.weight_drop", ""), ("train.clip", "-"))],
    bad_set("betas-huge-int", f"train.betas=[1{'0' * 400}, 0.5]", "--set: config key 'train.betas' is too large for "
            "float32 (1000"),
    recipe("betas-huge-int", f"train:\n  betas: [1{'0' * 400}, 0.5]\n", "{tmp}/r.yaml: config key 'train.betas' is "
           "too large for float32"),
    # more digits than Python reads (4,300): once a ValueError out of PyYAML
    bad_set("int-beyond-python-digits", "train.lr=" + "9" * 5000, "override 'train.lr=" + "9" * 71 + "...': invalid "
            "YAML: an integer of 5,000 digits is too long to read"),  # the override cut short
    recipe("int-beyond-python-digits", "train:\n  seed: " + "9" * 5000 + "\n", "{tmp}/r.yaml:2: invalid YAML: an "
           "integer of 5,000 digits is too long to read"),
    bad_set("hidden-huge-int", "model.hidden_size=" + str(10**30), "'model.hidden_size' is too large"),
    bad_set("float-beyond-float32", "model.init_range=1e300", "'model.init_range' is too large for float32"),
    bad_set("weight-decay-beyond-float32", "train.weight_decay=1e39", "'train.weight_decay' is too large for float32"),
    bad_set("device-unknown-gpu-index", "train.device=cuda:x", "unknown device 'cuda:x' (auto | cpu | cuda | cuda:N)"),
    bad_set("device-cpu-index", "train.device=cpu:0", "unknown device 'cpu:0'"),
    bad_set("threads-huge", "train.threads=100000000", "'train.threads' must be at most 1024",
            isolate=True),  # OpenMP aborts the process allocating 10**8 thread slots
    # ------------------------------------------------------------------------------ --set: ranges
    *[bad_set(f"range-{key}-{value}", f"{key}={value}", f"'{key}' must be {bound}")
      for key, value, bound in (
          ("train.bptt", 0, "at least 1"), ("train.batch_size", 0, "at least 1"), ("train.epochs", 0, "at least 1"),
          ("train.eval_batch_size", -4, "at least 1"), ("model.dropout", 1.5, "below 1"),
          ("model.dropout", -0.1, "at least 0"), ("train.lr", -1, "at least 0"), ("model.layers", 0, "at least 1"),
          ("model.hidden_size", 0, "at least 1"), ("model.embedding_size", -5, "at least 1"),
          ("data.valid_fraction", 1, "below 1"), ("train.lr_decay", 0, "above 0"), ("data.window", 0, "at least 1"),
          ("tokenizer.min_freq", 0, "at least 1"), ("tokenizer.vocab_size", -1, "at least 0"),
          ("train.max_steps", -1, "at least 0"), ("train.threads", -1, "at least 0"),
          ("train.rmsprop_alpha", -0.1, "at least 0"), ("train.momentum", -0.5, "at least 0"),
          ("data.max_lines", -1, "at least 0"),
          ("train.warmup", 0, "above 0"), ("train.warmup", 1, "below 1"), ("train.lr_ratio", 0.5, "at least 1"),
          ("train.layer_lr_decay", 0.5, "at least 1"))],
    # momentum and rmsprop_alpha: below 1 where the optimizer uses them (a training run's check, not the config's
    # range: a model whose config.yaml holds an older rnnkit's value still loads for use)
    *[Case(f"config-range-{key}-{value}", cli(*TRAIN, *sets("train.optimizer=rmsprop", f"{key}={value}")), 2,
           f"--set: config key '{key}' must be below 1 with rmsprop, got {float(value)!r} ({why})")
      for key, value, why in (
          ("train.rmsprop_alpha", 2, "at 1 the mean square stays 0 and each step divides by eps"),
          ("train.rmsprop_alpha", 1, "at 1 the mean square stays 0 and each step divides by eps"),
          ("train.momentum", 1, "at 1 and above the steps grow without bound"),
          ("train.momentum", 1.5, "at 1 and above the steps grow without bound"))],
    Case("config-momentum-1-sgd-recipe", cli(*TRAIN, "--recipe", "{tmp}/r.yaml", *sets("train.optimizer=sgd")), 2,
         "{tmp}/r.yaml:3: config key 'train.momentum' must be below 1 with sgd, got 1.0 (at 1 and above the steps "
         "grow without bound)", files={"r.yaml": "train:\n  lr: 0.1\n  momentum: 1.0\n"}),
    # ------------------------------------------------------------------------------ --set: unknown choices
    bad_set("choice-cell", "model.cell=transformer", "unknown cell 'transformer'"),
    bad_set("choice-optimizer", "train.optimizer=lbfgs", "unknown optimizer 'lbfgs'"),
    bad_set("choice-schedule", "train.schedule=cosine", "unknown schedule 'cosine'"),
    bad_set("choice-mode", "data.mode=documents", "unknown data.mode 'documents'"),
    bad_set("choice-tokenizer", "tokenizer.kind=bytes", "unknown tokenizer kind 'bytes'"),
    bad_set("choice-device", "train.device=tpu", "unknown device 'tpu'"),
    bad_set("betas-one", "train.betas=[0.9]", "--set: config key 'train.betas' must hold exactly 2 numbers, e.g. "
            "[0.9, 0.999], got [0.9]"),
    bad_set("betas-three", "train.betas=[0.9, 0.99, 0.999]", "'train.betas' must hold exactly 2 numbers"),
    bad_set("betas-scalar", "train.betas=0.9", "--set: config key 'train.betas' must be a list of numbers, e.g. "
            "[0.9, 0.999], got 0.9"),
    bad_set("betas-word", "train.betas=[0.9, high]", "--set: config key 'train.betas' must be a number, got high in "
            "[0.9, high]"),
    bad_set("betas-null", "train.betas=[null, 0.9]", "--set: config key 'train.betas' must be a number, got null in "
            "[null, 0.9]"),
    bad_set("betas-bool", "train.betas=[true, 0.9]", "--set: config key 'train.betas' must be a number, got true in "
            "[true, 0.9]"),
    bad_set("betas-quoted", "train.betas=[0.9, '0.5']", "config key 'train.betas' must be a number, got '0.5' in "
            "[0.9, '0.5']"),
    bad_set("betas-nan", "train.betas=[.nan, 0.9]", "config key 'train.betas' must be a finite number, got .nan in "
            "[.nan, 0.9]"),
    bad_set("betas-1", "train.betas=[0.9, 1]", "--set: config key 'train.betas' must be below 1, got 1.0 in "
            "[0.9, 1.0]"),
    bad_set("betas-negative", "train.betas=[-0.1, 0.9]", "config key 'train.betas' must be at least 0, got -0.1"),
    bad_set("betas-empty", "train.betas=", "config key 'train.betas' needs a value (default [0.9, 0.999])"),
    Case("config-betas-sgd", cli(*TRAIN, *sets("train.optimizer=sgd", "train.betas=[0.8, 0.9]")), 2,
         "--set: train.betas [0.8, 0.9] are Adam's (adam | adamw); sgd has none: set train.optimizer adam or adamw, or "
         "leave train.betas out"),
    Case("config-betas-rmsprop-recipe", cli(*TRAIN, "--recipe", "{tmp}/r.yaml", *sets("train.optimizer=rmsprop")),
         2, "{tmp}/r.yaml:3: train.betas [0.5, 0.9] are Adam's (adam | adamw); rmsprop has none",
         files={"r.yaml": "train:\n  lr: 0.1\n  betas: [0.5, 0.9]\n"}),
    # refused from the config alone: before the task reads its data (here not JSON) and makes the model's folder
    Case("config-betas-sgd-before-data", cli(*TRAIN_CLS, *sets("train.optimizer=sgd", "train.betas=[0.8, 0.9]")), 2,
         "--set: train.betas [0.8, 0.9] are Adam's (adam | adamw); sgd has none", files={"t.jsonl": "not json\n"}),
    # momentum and rmsprop_alpha likewise: set for an optimizer that ignores them, once silently ignored
    bad_set("momentum-adam", "train.momentum=0.9", "--set: train.momentum 0.9 is SGD's and RMSprop's (sgd | rmsprop); "
            "adam has none: set train.optimizer sgd or rmsprop, or leave train.momentum out"),
    Case("config-momentum-asgd", cli(*TRAIN, *sets("train.optimizer=asgd", "train.momentum=0.5")), 2,
         "--set: train.momentum 0.5 is SGD's and RMSprop's (sgd | rmsprop); asgd has none"),
    Case("config-rmsprop-alpha-sgd-recipe", cli(*TRAIN, "--recipe", "{tmp}/r.yaml", *sets("train.optimizer=sgd")), 2,
         "{tmp}/r.yaml:3: train.rmsprop_alpha 0.99 is RMSprop's (rmsprop); sgd has none: set train.optimizer rmsprop, "
         "or leave train.rmsprop_alpha out", files={"r.yaml": "train:\n  momentum: 0.9\n  rmsprop_alpha: 0.99\n"}),
    # the value as given: 0.9000000001 is not the default 0.9 (6 digits would show it as 0.9)
    bad_set("rmsprop-alpha-near-default-adam", "train.rmsprop_alpha=0.9000000001",
            "--set: train.rmsprop_alpha 0.9000000001 is RMSprop's (rmsprop); adam has none"),
    Case("config-rmsprop-alpha-adam-before-data", cli(*TRAIN_CLS, *sets("train.rmsprop_alpha=0.5")), 2,
         "--set: train.rmsprop_alpha 0.5 is RMSprop's (rmsprop); adam has none", files={"t.jsonl": "not json\n"}),
    # several at once: one error names each where it was set (--set once for all it set), the advice fixes them all
    Case("config-momentum-rmsprop-alpha-adam", cli(*TRAIN, *sets("train.momentum=0.9", "train.rmsprop_alpha=0.5")),
         2, "--set: train.momentum 0.9 is SGD's and RMSprop's (sgd | rmsprop), train.rmsprop_alpha 0.5 is RMSprop's "
         "(rmsprop); adam has none of them: set train.optimizer rmsprop, or leave train.momentum and "
         "train.rmsprop_alpha out"),
    Case("config-three-ignored-asgd-recipe", cli(*TRAIN, "--recipe", "{tmp}/r.yaml", *sets("train.optimizer=asgd")),
         2, "{tmp}/r.yaml:5: train.betas [0.5, 0.9] are Adam's (adam | adamw), {tmp}/r.yaml:3: train.momentum 0.9 is "
         "SGD's and RMSprop's (sgd | rmsprop), {tmp}/r.yaml:4: train.rmsprop_alpha 0.99 is RMSprop's (rmsprop); asgd "
         "has none of them: leave train.betas, train.momentum and train.rmsprop_alpha out",
         files={"r.yaml": "train:\n  lr: 0.1\n  momentum: 0.9\n  rmsprop_alpha: 0.99\n  betas: [0.5, 0.9]\n"}),
    Case("config-betas-recipe-rmsprop-alpha-set-sgd", cli(*TRAIN, "--recipe", "{tmp}/r.yaml",
                                                          *sets("train.optimizer=sgd", "train.rmsprop_alpha=0.5")),
         2, "{tmp}/r.yaml:3: train.betas [0.5, 0.9] are Adam's (adam | adamw), --set: train.rmsprop_alpha 0.5 is "
         "RMSprop's (rmsprop); sgd has none of them: leave train.betas and train.rmsprop_alpha out",
         files={"r.yaml": "train:\n  lr: 0.1\n  betas: [0.5, 0.9]\n"}),
    bad_set("nt-asgd-without-sgd", "train.nt_asgd=3", "train.nt_asgd switches SGD to averaged SGD"),
    # ------------------------------------------------------------------------------ --set: ULMFiT's fine-tuning keys
    bad_set("warmup-without-triangular", "train.warmup=0.2", "train.warmup 0.2 shapes the triangular schedule "
            "only (train.schedule is none): set train.schedule triangular, or leave train.warmup out"),
    Case("config-lr-ratio-without-triangular", cli(*TRAIN, *sets("train.schedule=plateau", "train.lr_ratio=10")), 2,
         "train.lr_ratio 10 shapes the triangular schedule only (train.schedule is plateau)"),
    *[Case(f"config-{key.replace('_', '-')}-with-triangular", cli(*TRAIN, *sets("train.schedule=triangular",
                                                                              f"train.{key}={value}")), 2,
           f"train.{key} {value} does nothing under the triangular schedule (its rates follow train.lr, warmup and "
           f"lr_ratio alone): leave train.{key} at {default}, or set another train.schedule")
      for key, value, default in (("lr_decay", 0.25, 0.5), ("decay_start", 2, 0), ("patience", 1, 0),
                                  ("min_lr", 0.001, 0))],
    s2s_set("layer-lr-decay-one-group", "train.layer_lr_decay=2.6", "train.layer_lr_decay 2.6 gives each layer its "
            "own rate, but the seq2seq task trains its parameters as one group: leave train.layer_lr_decay at 1"),
    # ------------------------------------------------------------------------------ --set: the adaptive softmax
    bad_set("choice-softmax", "model.softmax=hierarchical", "unknown model.softmax 'hierarchical' (full | adaptive)"),
    bad_set("adaptive-without-cutoffs", "model.softmax=adaptive",
            "model.softmax adaptive needs model.adaptive_cutoffs: the increasing ids"),
    bad_set("cutoffs-without-adaptive", "model.adaptive_cutoffs=[10]",
            "model.adaptive_cutoffs [10] needs model.softmax adaptive (it is full)"),
    bad_set("cutoffs-not-a-list", "model.adaptive_cutoffs=2000",
            "'model.adaptive_cutoffs' must be a list of integers, e.g. [2000, 10000], got 2000"),
    bad_set("cutoffs-floats", "model.adaptive_cutoffs=[2.5]", "'model.adaptive_cutoffs' must be a list of integers"),
    *[Case(f"config-adaptive-{id_}", cli(*TRAIN, *sets("model.softmax=adaptive", *extra)), 2, message)
      for id_, extra, message in (
          ("cutoffs-decreasing", ["model.adaptive_cutoffs=[10, 5]"],
           "model.adaptive_cutoffs [10, 5] must be positive and increasing"),
          ("cutoffs-zero", ["model.adaptive_cutoffs=[0, 5]"], "model.adaptive_cutoffs [0, 5] must be positive"),
          ("cutoff-at-vocab-size", ["model.adaptive_cutoffs=[5, 100]", "tokenizer.vocab_size=100"],
           "model.adaptive_cutoffs [5, 100] must each be below the vocabulary size 100"),
          ("cutoff-beyond-built-vocab", ["model.adaptive_cutoffs=[5, 5000]"],
           "model.adaptive_cutoffs [5, 5000] must each be below the vocabulary size"),
          ("tied", ["model.adaptive_cutoffs=[5]", "model.tie_weights=true"],
           "model.tie_weights shares the embedding with a full softmax's output layer"),
          ("div-too-large", ["model.adaptive_cutoffs=[5, 10]", "model.adaptive_div=100"],
           "model.adaptive_div 100.0 leaves the last of 2 clusters 0 units"),
          ("div-below-one", ["model.adaptive_cutoffs=[5]", "model.adaptive_div=0.5"],
           "config key 'model.adaptive_div' must be at least 1"),
      )],
    Case("train-numpy-adaptive",
         cli(*TRAIN, "--backend", "numpy", *sets("train.optimizer=sgd", "model.softmax=adaptive",
                                                 "model.adaptive_cutoffs=[5]")),
         2, "the numpy backend implements the full softmax only (model.softmax is 'adaptive'"),
    Case("config-variable-bptt-in-sentences", cli(*TRAIN, *sets("train.variable_bptt=true", "data.mode=sentences")),
         2, "train.variable_bptt varies the BPTT length of running text"),
    # ------------------------------------------------------------------------------ recipe files
    recipe("unknown-key-line", "model:\n  cells: lstm\n", "{tmp}/r.yaml:2: unknown config key 'model.cells'"),
    recipe("duplicate-key", "train:\n  lr: 1\n  lr: 2\n", "{tmp}/r.yaml:3: invalid YAML: 'lr' appears twice"),
    recipe("duplicate-section", "train:\n  lr: 1\ntrain:\n  clip: 2\n", "'train' appears twice (lines 1 and 3)"),
    recipe("duplicate-after-merge", "x-base: &b\n  lr: 1\ntrain:\n  <<: *b\n  clip: 1\n  clip: 2\n",
           "{tmp}/r.yaml:6: invalid YAML: 'clip' appears twice"),
    recipe("merge-not-a-mapping", "train:\n  <<: 3\n", "invalid YAML: expected a mapping or list of mappings"),
    recipe("malformed", "model: [lstm\n", "{tmp}/r.yaml:2: invalid YAML"),
    recipe("top-level-list", "- data\n- model\n", "{tmp}/r.yaml: the top level must be a mapping"),
    recipe("top-level-scalar", "lstm\n", "the top level must be a mapping of sections"),
    recipe("section-scalar", "data: 3\n", "{tmp}/r.yaml: section 'data' must be a mapping, got int"),
    recipe("section-list", "model: [1]\n", "the recipe's 'model' is not a section but [1]"),
    recipe("key-in-wrong-section", "train:\n  cell: gru\n", "{tmp}/r.yaml:2: unknown config key 'train.cell'"),
    recipe("unknown-top-level", "optim:\n  lr: 1\n", "{tmp}/r.yaml:1: unknown config key 'optim'"),
    recipe("not-utf8", b"model:\n  cell: \xff\n", "{tmp}/r.yaml: not UTF-8"),
    recipe("nan-value", "train:\n  clip: .nan\n", "{tmp}/r.yaml: config key 'train.clip' must be a finite number"),
    recipe("recursive-alias", "data: &a\n  train: *a\n", "an alias refers to a value that contains it"),
    recipe("nested-too-deeply", "data: " + "[" * 3000 + "]" * 3000 + "\n", "invalid YAML: nested too deeply"),
    recipe("too-large", "# " + "x" * (70 << 10) + "\n", "{tmp}/r.yaml: too large for a config"),
    recipe("alias-bomb", ALIAS_BOMB, "aliases expand to more than 100,000 values", isolate=True),
    recipe("python-tag", "train: !!python/object/apply:os.system [echo hi]\n", "invalid YAML: could not determine"),
    recipe("unhashable-key", "data:\n  ? [a]\n  : 1\n", "{tmp}/r.yaml:2: invalid YAML: found unhashable key"),
    Case("recipe-missing-file", cli(*TRAIN, "--recipe", "{tmp}/none.yaml"), 2,
         "{tmp}/none.yaml: recipe file not found"),
    Case("recipe-device", cli(*TRAIN, "--recipe", "/dev/zero"), 2, "/dev/zero: recipe file not found"),
    Case("train-spm-model-device", cli(*TRAIN, *sets("tokenizer.kind=sentencepiece", "tokenizer.spm_model=/dev/zero")),
         2, "/dev/zero: sentencepiece model not found"),
    Case("recipe-unknown-builtin", cli(*TRAIN, "--recipe", "ptb-huge"), 2, "unknown recipe 'ptb-huge'"),
    # ------------------------------------------------------------------------------ output folder, resume, backend
    Case("train-out-is-a-file", cli(*TRAIN[:5], "{tmp}/f", *TRAIN[6:]), 2, "{tmp}/f: --out is a file",
         files={"f": "mine\n"}),
    Case("train-out-under-a-file", cli(*TRAIN[:5], "{tmp}/f/m", *TRAIN[6:]), 2,
         "{tmp}/f/m: cannot create the model folder", files={"f": "mine\n"}),
    Case("train-out-not-empty", cli(*TRAIN[:5], "{tmp}/o", *TRAIN[6:]), 2, "{tmp}/o: output folder is not empty",
         files={"o/notes.txt": "mine\n"}),
    Case("train-resume-nothing", cli("train", "lm", "--out", "{tmp}/never", "--resume"), 2,
         "{tmp}/never: nothing to resume"),
    Case("train-resume-and-overwrite", cli(*TRAIN, "--overwrite", "--resume"), 2,
         "--resume and --overwrite exclude each other"),
    Case("train-resume-model-copy-without-marker", cli("train", "lm", "--out", "{tmp}/mc", "--resume"), 2,
         "{tmp}/mc: has no rnnkit.json", files={**MODEL_COPY, "mc/rnnkit.json": ("delete",)}, out="mc"),
    Case("train-resume-user-config-without-marker", cli("train", "lm", "--out", "{tmp}/mine", "--resume"), 2,
         "{tmp}/mine: has no rnnkit.json", files={"mine/config.yaml": "task: lm\n", "mine/notes.txt": "mine\n"}),
    Case("train-resume-change-model", cli("train", "lm", "--out", "{tmp}/mc", "--resume",
                                          "--set", "model.hidden_size=64"), 2,
         "cannot change 'model.hidden_size' when resuming", files=MODEL_COPY, out="mc"),
    Case("train-resume-other-data", cli("train", "lm", "--out", "{tmp}/mc", "--resume", "--data", "{tmp}/t.txt"), 2,
         "--resume continues with the run's own data", files={**MODEL_COPY, "t.txt": TRAIN_TEXT}, out="mc"),
    Case("train-resume-other-test", cli("train", "lm", "--out", "{tmp}/mc", "--resume", "--test", "{tmp}/t.txt"), 2,
         "its test file is /x/test.txt, not {tmp}/t.txt (leave out --test to resume)",
         files={**MODEL_COPY, "mc/config.yaml": ("edit", "test: null", "test: /x/test.txt"), "t.txt": TRAIN_TEXT},
         out="mc"),
    Case("train-resume-missing-test", cli("train", "lm", "--out", "{tmp}/mc", "--resume", "--test", "{tmp}/t.txt"),
         2, "{tmp}/t.txt: test file not found", files=MODEL_COPY, out="mc"),
    *[Case(f"train-resume-{id_}", cli("train", "lm", "--out", "{tmp}/mc", "--resume", *sets("train.max_steps=60")),
           2, message, files={**MODEL_COPY, **files}, out="mc", isolate=isolate)
      for id_, files, message, isolate in (
        # a run that got as far as a checkpoint is never silently restarted from step 0
        ("checkpoint-deleted", {"mc/checkpoint": ("delete",)},
         "{tmp}/mc/checkpoint: the checkpoint folder is missing: --resume cannot continue the run without it; "
         "--overwrite starts the run again", False),
        ("trainer-state-deleted", {"mc/checkpoint/trainer_state.pt": ("delete",)},
         "{tmp}/mc/checkpoint/trainer_state.pt: trainer state is missing; --resume cannot continue", False),
        ("trainer-state-fifo", {"mc/checkpoint/trainer_state.pt": ("fifo",)},
         "holds checkpoint/trainer_state.pt (a device, pipe or socket, where rnnkit writes a file)", True),
        ("trainer-state-dev-zero", {"mc/checkpoint/trainer_state.pt": ("symlink", "/dev/zero")},
         "holds checkpoint/trainer_state.pt (a symbolic link, where rnnkit writes a file)", True),
        ("rng-deleted", {"mc/checkpoint/rng_rank0.pt": ("delete",)},
         "{tmp}/mc/checkpoint/rng_rank0.pt: RNG state is missing; --resume cannot continue", False),
        ("rng-fifo", {"mc/checkpoint/rng_rank0.pt": ("fifo",)},
         "holds checkpoint/rng_rank0.pt (a device, pipe or socket,", True),
        ("checkpoint-old-a-file", {"mc/checkpoint.old": "x"},
         "holds checkpoint.old (a file, where rnnkit writes a folder)", False),
        # model.safetensors is checked before anything is built, not after training
        ("weights-truncated", {"mc/model.safetensors": ("truncate", 200)},
         "{tmp}/mc/model.safetensors: weights file is corrupt", False),
        ("weights-dev-zero", {"mc/model.safetensors": ("symlink", "/dev/zero")},
         "holds model.safetensors (a symbolic link, where rnnkit writes a file)", True),
        ("weights-folder", {"mc/model.safetensors": ("mkdir",)},
         "holds model.safetensors (a folder, where rnnkit writes a file)", False),
        # config.yaml edited by hand: what --resume may not change is refused, naming the key
        ("config-hidden-30000", {"mc/config.yaml": ("edit", "hidden_size: 16", "hidden_size: 30000")},
         "{tmp}/mc/config.yaml: 'model.hidden_size' is 30000, but the run was trained with 16 (the file was edited)",
         True),
        ("config-optimizer", {"mc/config.yaml": ("edit", "optimizer: adam", "optimizer: sgd")},
         "'train.optimizer' is 'sgd', but the run was trained with 'adam'", False),
        ("config-batch-size", {"mc/config.yaml": ("edit", "batch_size: 4", "batch_size: 2")},
         "'train.batch_size' is 2, but the run was trained with 4", False),
        ("config-seed", {"mc/config.yaml": ("edit", "seed: 3", "seed: 5")},
         "'train.seed' is 5, but the run was trained with 3", False),
        ("config-train-file", {"mc/config.yaml": ("edit", "train: /", "train: /x/")},
         "'data.train' is '/x/", False),
        # an optimizer setting the run's optimizer (adam) ignores: refused with advice a resume can follow
        ("config-momentum-adam", {"mc/config.yaml": ("edit", "momentum: 0.0", "momentum: 0.9")},
         "{tmp}/mc/config.yaml:41: train.momentum 0.9 is SGD's and RMSprop's (sgd | rmsprop); this run trains with "
         "adam, which has none, and a resume keeps its optimizer: resume with `--resume --set train.momentum=0.0`",
         False),
        # an older rnnkit's rmsprop_alpha 1.0 in an adam run (it loads for use, ignored): the resume gives the way back
        ("config-rmsprop-alpha-1-adam", {"mc/config.yaml": ("edit", "rmsprop_alpha: 0.9", "rmsprop_alpha: 1.0")},
         "{tmp}/mc/config.yaml:43: train.rmsprop_alpha 1.0 is RMSprop's (rmsprop); this run trains with adam, which "
         "has none, and a resume keeps its optimizer: resume with `--resume --set train.rmsprop_alpha=0.9`", False),
        # what rnnkit did not write, under rnnkit's names, is never removed
        ("foreign-temp-checkpoint", {"mc/.checkpoint.abcd1234/mine.txt": "mine\n"},
         "{tmp}/mc: holds .checkpoint.abcd1234/mine.txt, which rnnkit did not write", False),
        ("foreign-in-checkpoint", {"mc/checkpoint/my_notes.txt": "mine\n"},
         "{tmp}/mc: holds checkpoint/my_notes.txt, which rnnkit did not write", False),
      )],
    # the user's own --set of a key the run's optimizer ignores: leave it out (the advice is not to resume with it)
    Case("train-resume-set-rmsprop-alpha-adam", cli("train", "lm", "--out", "{tmp}/mc", "--resume",
                                                    *sets("train.max_steps=60", "train.rmsprop_alpha=0.5")), 2,
         "--set: train.rmsprop_alpha 0.5 is RMSprop's (rmsprop); this run trains with adam, which has none, and a "
         "resume keeps its optimizer: leave --set train.rmsprop_alpha out, or give its default: "
         "`--set train.rmsprop_alpha=0.9`", files=MODEL_COPY, out="mc"),
    *[Case(f"train-overwrite-{id_}", cli(*TRAIN[:5], "{tmp}/mc", *TRAIN[6:], "--overwrite"), 2,
           f"{{tmp}}/mc: rnnkit replaces only its own files, and this folder also holds {held}",
           files={**MODEL_COPY, **files}, out="mc")
      for id_, files, held in (
        ("note-in-checkpoint", {"mc/checkpoint/my_notes.txt": "mine\n"}, "checkpoint/my_notes.txt"),
        ("log-csv-a-folder", {"mc/log.csv": ("delete",), "mc/log.csv/data.txt": "mine\n"},
         "log.csv (a folder, where rnnkit writes a file)"),
        ("temp-like-folder", {"mc/.checkpoint.bak/data.txt": "mine\n"}, ".checkpoint.bak"),
        ("temp-like-file", {"mc/.log.csv.backup.tmp": "mine\n"}, ".log.csv.backup.tmp"),
      )],
    Case("train-init-from-missing", cli(*TRAIN, "--init-from", "{tmp}/ghost"), 2,
         "{tmp}/ghost: model directory not found"),
    Case("train-init-from-incomplete", cli(*TRAIN, "--init-from", "{tmp}/inc"), 2,
         "{tmp}/inc: not a complete model directory: 'vocab.json' is missing",
         files={"inc/config.yaml": "task: lm\n", "inc/model.safetensors": b"x"}),
    Case("train-init-from-stopped-before-validation", cli(*TRAIN, "--init-from", "{tmp}/mc"), 2,
         "{tmp}/mc: not a complete model directory: 'model.safetensors' is missing (the run stopped before its first "
         "validation; its checkpoint holds weights: `rnnkit train TASK --out DIR --resume --set train.max_steps=N`",
         files={**MODEL_COPY, "mc/model.safetensors": ("delete",), "mc/results.json": ("delete",)}),
    # the --init-from model's vocabulary lacks most of this text: vocab_size / min_freq would not change it
    Case("train-init-from-foreign-text", cli("train", "lm", "--init-from", "{model}", "--data", "{tmp}/f.txt", "--out",
                                             "{tmp}/m", *sets(*TINY, "train.max_steps=2")), 2,
         "{tmp}/f.txt: 83% of the training tokens (20 of 24) are outside the vocabulary of 25 and would be trained as "
         "<unk>: the run keeps the --init-from model's vocabulary; --init-partial builds one from the training text "
         "and copies the rows of the tokens both hold", files={"f.txt": "la souris voit le chat .\n" * 4}),
    Case("train-numpy-init-from", cli(*TRAIN, "--backend", "numpy", "--init-from", "{model}"), 2,
         "--init-from is not supported with --backend numpy"),
    Case("train-numpy-cuda", cli(*TRAIN, "--backend", "numpy", "--device", "cuda"), 2,
         "the numpy backend runs on the CPU"),
    Case("train-numpy-adam", cli(*TRAIN, "--backend", "numpy"), 2, "the numpy backend trains with plain SGD only"),
    Case("train-numpy-dropout", cli(*TRAIN, "--backend", "numpy", *sets("train.optimizer=sgd", "model.dropout=0.5")),
         2, "the numpy backend does not implement model.dropout"),
    Case("train-numpy-cpu-amp", cli(*TRAIN, "--backend", "numpy", *sets("train.optimizer=sgd", "train.cpu_amp=true")),
         2, "the numpy backend does not implement train.cpu_amp"),
    Case("train-nan-loss", cli(*TRAIN, *sets("model.cell=rnn_relu", "train.optimizer=sgd", "train.lr=1e10")), 2,
         "loss is nan at step 2 (epoch 1)", out="m"),
    # ------------------------------------------------------------------------------ memory before building
    Case("train-hidden-30000", cli(*TRAIN, "--set", "model.hidden_size=30000"), 2,
         "parameters x (weights, gradients, 2 of adam state, checkpoint copy, the model loaded at the end)",
         isolate=True),
    Case("train-embedding-huge", cli(*TRAIN, "--set", "model.embedding_size=100000000"), 2, "the model needs about"),
    Case("train-layers-huge", cli(*TRAIN, *sets("model.layers=100000", "model.hidden_size=1000")), 2,
         "the model needs about"),
    Case("train-numpy-hidden-30000", cli(*TRAIN, "--backend", "numpy", *sets("train.optimizer=sgd",
                                                                              "model.hidden_size=30000")), 2,
         "parameters x (weights, gradients, checkpoint copy, the model loaded at the end)", isolate=True),
    Case("generate-config-hidden-30000", cli("generate", "{tmp}/mc", "--prompt", "the cat"), 2,
         "{tmp}/mc/config.yaml: 'model.hidden_size' is 30,000, but model.safetensors holds 2,289 values in all (config "
         "and weights disagree)",
         files={**MODEL_COPY, "mc/config.yaml": ("edit", "hidden_size: 16", "hidden_size: 30000")}, isolate=True),
    Case("evaluate-numpy-config-hidden-30000", cli("evaluate", "{tmp}/mc", "--data", "{valid}", "--backend", "numpy"),
         2, "{tmp}/mc/config.yaml: 'model.hidden_size' is 30,000, but model.safetensors holds 2,289 values",
         files={**MODEL_COPY, "mc/config.yaml": ("edit", "hidden_size: 16", "hidden_size: 30000")}),
    # absurd sizes in an untrusted config.yaml: refused against the weights' header before any model is built (even
    # on the meta device, where hidden_size 10**9 overflowed torch and 40,000 layers took 19 s), by every loader
    *[absurd_size(verb, argv, copy, hidden, key, value) for key, value in (("hidden_size", 10**9), ("layers", 40000))
      for verb, argv, copy, hidden in (
          ("generate", ("generate", "{tmp}/mc"), "{model}", 16),
          ("evaluate", ("evaluate", "{tmp}/mc", "--data", "{valid}"), "{model}", 16),
          ("train-init-from", (*TRAIN, "--init-from", "{tmp}/mc"), "{model}", 16),
          ("classify", ("classify", "{tmp}/mc", "x y"), "{classifier}", 4),
          ("translate", ("translate", "{tmp}/mc", "{s2s_text}"), "{s2s_model}", 8),
          ("reconstruct", ("reconstruct", "{tmp}/mc", "x y"), "{autoencoder}", 4))],
    # ------------------------------------------------------------------------------ evaluate
    bad_data("missing", None, "nope.txt", "{tmp}/nope.txt: file not found", verb="evaluate"),
    bad_data("empty", "\n", "e.txt", "{tmp}/e.txt: file is empty", verb="evaluate"),
    bad_data("one-word", "the\n", "s.txt", "{tmp}/s.txt: cannot score this text", verb="evaluate"),
    bad_data("latin1", b"the cat\n\xe9\n", "l.txt", "{tmp}/l.txt:2: not UTF-8", verb="evaluate"),
    bad_data("jsonl-text-number", '{"text": 1}\n', "r.jsonl", "{tmp}/r.jsonl:1: JSON record", verb="evaluate"),
    bad_data("json-suffix", '{"text": "the cat"}\n', "r.json", "a .json file would be read as plain text",
             verb="evaluate"),
    Case("evaluate-data-folder", cli("evaluate", "{model}", "--data", "{tmp}"), 2, "{tmp}: is a directory"),
    Case("evaluate-dev-zero", cli("evaluate", "{model}", "--data", "/dev/zero"), 2, "/dev/zero: is not a regular file",
         isolate=True),
    Case("evaluate-dev-urandom", cli("evaluate", "{model}", "--data", "/dev/urandom"), 2,
         "/dev/urandom: is not a regular file"),
    Case("evaluate-fifo", cli("evaluate", "{model}", "--data", "{tmp}/pipe"), 2, "{tmp}/pipe: is not a regular file",
         files={"pipe": ("fifo",)}, isolate=True),
    Case("evaluate-2gb-single-line", cli("evaluate", "{model}", "--data", "{tmp}/big.txt"), 2,
         "{tmp}/big.txt:1: the line is longer than 16 MiB", files={"big.txt": ("sparse", 2 << 30)}, isolate=True),
    Case("evaluate-numpy-one-word", cli("evaluate", "{model}", "--data", "{tmp}/s.txt", "--backend", "numpy"), 2,
         "{tmp}/s.txt: cannot score this text", files={"s.txt": "the\n"}),
    Case("evaluate-batch-size-0", cli("evaluate", "{model}", "--data", "{valid}", "--batch-size", "0"), 2,
         "batch_size must be at least 1, got 0"),
    Case("evaluate-batch-size-negative", cli("evaluate", "{model}", "--data", "{valid}", "--batch-size", "-3"), 2,
         "batch_size must be at least 1, got -3"),
    Case("evaluate-max-lines-negative", cli("evaluate", "{model}", "--data", "{valid}", "--max-lines", "-1"), 2,
         "max_lines must be at least 0, got -1"),
    Case("evaluate-json-folder", cli("evaluate", "{model}", "--data", "{valid}", "--json", "{tmp}"), 2,
         "{tmp}: --json names a folder"),
    Case("evaluate-json-under-a-file", cli("evaluate", "{model}", "--data", "{valid}", "--json", "{tmp}/f/x.json"), 2,
         "{tmp}/f/x.json: --json: {tmp}/f is not a folder", files={"f": "mine\n"}),
    Case("evaluate-json-in-a-missing-folder", cli("evaluate", "{model}", "--data", "{valid}", "--json",
                                                  "{tmp}/new/x.json"), 2,
         "{tmp}/new/x.json: --json: {tmp}/new does not exist (create it first)"),
    Case("evaluate-json-symlink", cli("evaluate", "{model}", "--data", "{valid}", "--json", "{tmp}/link.json"), 2,
         "{tmp}/link.json: --json names a symbolic link",
         files={"mine.json": "mine\n", "link.json": ("symlink", "{tmp}/mine.json")}),
    Case("evaluate-json-fifo", cli("evaluate", "{model}", "--data", "{valid}", "--json", "{tmp}/pipe"), 2,
         "{tmp}/pipe: --json names a device, pipe or socket", files={"pipe": ("fifo",)}, isolate=True),
    Case("evaluate-numpy-cuda", cli("evaluate", "{model}", "--data", "{valid}", "--backend", "numpy",
                                    "--device", "cuda"), 2, "the numpy backend runs on the CPU"),
    # ------------------------------------------------------------------------------ model directories
    Case("generate-model-missing", cli("generate", "{tmp}/ghost"), 2, "{tmp}/ghost: model directory not found"),
    Case("generate-model-is-a-file", cli("generate", "{tmp}/f"), 2, "{tmp}/f: model directory not found",
         files={"f": "x\n"}),
    *[Case(f"{verb}-model-without-{name}", cli(verb, "{tmp}/mc", *extra), 2, message,
           files={**MODEL_COPY, f"mc/{name}": ("delete",)})
      for verb, extra in (("generate", ["--prompt", "the cat"]), ("evaluate", ["--data", "{valid}"]))
      for name, message in (("model.safetensors", "'model.safetensors' is missing"),
                            ("vocab.json", "'vocab.json' is missing"), ("config.yaml", "'config.yaml' is missing"),
                            ("tokenizer.json", "model directory has no tokenizer file"))],
    Case("generate-weights-folder", cli("generate", "{tmp}/mc"), 2,
         "{tmp}/mc/model.safetensors: 'model.safetensors' is not a plain file but a folder",
         files={**MODEL_COPY, "mc/model.safetensors": ("mkdir",)}),
    Case("generate-weights-dev-zero", cli("generate", "{tmp}/mc"), 2,
         "{tmp}/mc/model.safetensors: 'model.safetensors' is not a plain file but a device, pipe or socket",
         files={**MODEL_COPY, "mc/model.safetensors": ("symlink", "/dev/zero")}, isolate=True),
    *[Case(f"{verb}-{name.replace('.', '-')}-nested-too-deeply", cli(*argv), 2, f"{{tmp}}/mc/{name}: {message}",
           files={**MODEL_COPY, f"mc/{name}": text}, out="mc")
      for name, text, message in (
        ("vocab.json", "[" * 100_000 + "]" * 100_000, "vocabulary file is corrupt (nested too deeply)"),
        ("tokenizer.json", "[" * 100_000 + "]" * 100_000, "tokenizer file is corrupt (nested too deeply)"),
        ("rnnkit.json", "[" * 3000 + "]" * 3000, "ownership marker is corrupt (nested too deeply)"),
        ("config.yaml", "task: " + "[" * 3000 + "]" * 3000, "invalid YAML: nested too deeply"))
      for verb, argv in (("generate", ["generate", "{tmp}/mc"]), ("resume", ["train", "lm", "--out", "{tmp}/mc",
                                                                              "--resume"]))
      if verb == "resume" or name != "rnnkit.json"],
    *[Case(f"generate-config-{id_}", cli("generate", "{tmp}/mc"), 2, f"{{tmp}}/mc/config.yaml: {message}",
           files={**MODEL_COPY, "mc/config.yaml": text})
      for id_, text, message in (
        ("empty", "", "lacks task, data, tokenizer, model, train: not the config rnnkit saved for this model"),
        ("without-sections", "task: lm\n", "lacks data, tokenizer, model, train"))],
    Case("generate-weights-garbage", cli("generate", "{tmp}/mc"), 2, "model.safetensors: weights file is corrupt",
         files={**MODEL_COPY, "mc/model.safetensors": b"\x00garbage" * 10}),
    Case("generate-weights-truncated", cli("generate", "{tmp}/mc"), 2, "model.safetensors: weights file is corrupt",
         files={**MODEL_COPY, "mc/model.safetensors": ("truncate", 200)}),
    Case("generate-vocab-duplicate-entry", cli("generate", "{tmp}/mc"), 2,
         "vocabulary file is corrupt (duplicate tokens",
         files={**MODEL_COPY, "mc/vocab.json": ("edit", '"the"', '"the", "the"')}),
    Case("generate-config-disagrees-with-weights", cli("generate", "{tmp}/mc"), 2, "config and weights disagree",
         files={**MODEL_COPY, "mc/config.yaml": ("edit", "hidden_size: 16", "hidden_size: 17")}),
    Case("generate-config-nan", cli("generate", "{tmp}/mc"), 2,
         "mc/config.yaml: config key 'train.lr' must be a finite",
         files={**MODEL_COPY, "mc/config.yaml": ("edit", "lr: 0.01", "lr: .nan")}),
    Case("generate-config-alias-bomb", cli("generate", "{tmp}/mc"), 2, "aliases expand to more than",
         files={**MODEL_COPY, "mc/config.yaml": ALIAS_BOMB}),
    Case("generate-vocab-truncated", cli("generate", "{tmp}/mc"), 2, "vocabulary file is corrupt",
         files={**MODEL_COPY, "mc/vocab.json": '["<pad>", "<unk>"'}),
    Case("generate-vocab-no-specials", cli("generate", "{tmp}/mc"), 2, "does not start with <pad> <unk> <bos> <eos>",
         files={**MODEL_COPY, "mc/vocab.json": '["a", "b"]'}),
    Case("generate-tokenizer-unknown-kind", cli("generate", "{tmp}/mc"), 2, "unknown tokenizer kind 'morse'",
         files={**MODEL_COPY, "mc/tokenizer.json": '{"kind": "morse"}'}),
    Case("generate-tokenizer-not-object", cli("generate", "{tmp}/mc"), 2, "a JSON object expected, got list",
         files={**MODEL_COPY, "mc/tokenizer.json": "[1]"}),
    Case("generate-weights-float64", cli("generate", "{tmp}/mc"), 2,
         "{tmp}/mc/model.safetensors: 'embedding.weight' is stored as F64, the model holds F32",
         files={**MODEL_COPY, "mc/model.safetensors": ("float64",)}),
    Case("generate-weights-nan", cli("generate", "{tmp}/mc"), 2,
         "{tmp}/mc/model.safetensors: 'embedding.weight' holds a value that is not finite (NaN or infinity)",
         files={**MODEL_COPY, "mc/model.safetensors": ("nan", "embedding.weight", float("nan"))}),
    Case("evaluate-numpy-weights-infinite", cli("evaluate", "{tmp}/mc", "--data", "{valid}", "--backend", "numpy"), 2,
         "{tmp}/mc/model.safetensors: 'embedding.weight' holds a value that is not finite (NaN or infinity)",
         files={**MODEL_COPY, "mc/model.safetensors": ("nan", "embedding.weight", float("inf"))}),
    Case("generate-vocab-entries-swapped", cli("generate", "{tmp}/mc"), 2,
         "{tmp}/mc/vocab.json: was changed since the weights were saved",
         files={**MODEL_COPY, "mc/vocab.json": ("edit", '"the",\n".",', '".",\n"the",')}),
    Case("generate-tokenizer-lowercase-not-bool", cli("generate", "{tmp}/mc"), 2,
         "{tmp}/mc/tokenizer.json: tokenizer field 'lowercase' must be true or false, got 'no'",
         files={**MODEL_COPY, "mc/tokenizer.json": ("edit", '"lowercase": false', '"lowercase": "no"')}),
    Case("generate-tokenizer-unknown-field", cli("generate", "{tmp}/mc"), 2,
         "{tmp}/mc/tokenizer.json: tokenizer file has unknown field(s) 'stem'",
         files={**MODEL_COPY, "mc/tokenizer.json": ("edit", '"kind": "word",', '"kind": "word", "stem": true,')}),
    Case("generate-config-data-mode-edited", cli("generate", "{tmp}/mc"), 2,
         "{tmp}/mc/config.yaml: 'data.mode' is 'sentences', but the weights were trained with 'stream'",
         files={**MODEL_COPY, "mc/config.yaml": ("edit", "mode: stream", "mode: sentences")}),
    # ------------------------------------------------------------------------------ generate options
    Case("generate-temperature-0", cli("generate", "{model}", "--temperature", "0"), 2, "temperature must be > 0"),
    Case("generate-temperature-nan", cli("generate", "{model}", "--temperature", "nan"), 2,
         "temperature must be > 0 and finite"),
    Case("generate-temperature-inf", cli("generate", "{model}", "--temperature", "inf"), 2,
         "temperature must be > 0 and finite"),
    Case("generate-top-p-1.5", cli("generate", "{model}", "--top-p", "1.5"), 2, "top-p must be in"),
    Case("generate-top-k-negative", cli("generate", "{model}", "--top-k", "-2"), 2, "top_k (--top-k) must be >= 0"),
    Case("generate-num-samples-0", cli("generate", "{model}", "--num-samples", "0"), 2,
         "num_samples (--num-samples) must be >= 1"),
    Case("generate-n-negative", cli("generate", "{model}", "-n", "-3"), 2, "n (-n) must be >= 0"),
    Case("generate-min-length-negative", cli("generate", "{model}", "--sentence", "--min-length", "-1"), 2,
         "min_length (--min-length) must be >= 0"),
    Case("generate-prompt-oov", cli("generate", "{model}", "--prompt", "the zebra sees a unicorn"), 2,
         "'zebra', 'unicorn' (use --allow-unk"),
    Case("generate-numpy-prompt-oov", cli("generate", "{model}", "--backend", "numpy", "--prompt", "a zebra"), 2,
         "'zebra' (use --allow-unk"),
    Case("generate-numpy-cuda", cli("generate", "{model}", "--backend", "numpy", "--device", "cuda"), 2,
         "the numpy backend runs on the CPU"),
    Case("generate-seed-beyond-64-bits", cli("generate", "{model}", "--seed", str(2**64)), 2,
         "seed (--seed) must fit in 64 bits"),
    Case("generate-numpy-n-negative", cli("generate", "{model}", "--backend", "numpy", "-n", "-3"), 2,
         "n (-n) must be >= 0"),
    Case("generate-numpy-num-samples-0", cli("generate", "{model}", "--backend", "numpy", "--num-samples", "0"), 2,
         "num_samples (--num-samples) must be >= 1"),
    # ------------------------------------------------------------------------------ Python API: rnnkit.train
    Case("api-train-data-int", api("train", **{**TRAIN_KW, "data": 123}), TypeError, "data must be a path"),
    Case("api-train-overrides-string", api("train", **{**TRAIN_KW, "overrides": "train.lr=1"}), TypeError,
         "not one string: pass ['train.lr=1']"),
    Case("api-train-overrides-ints", api("train", **{**TRAIN_KW, "overrides": [1, 2]}), TypeError,
         "overrides must be a list of 'section.key=value' strings"),
    Case("api-train-overrides-dict", api("train", **{**TRAIN_KW, "overrides": {"train.lr": 1}}), TypeError,
         "overrides must be a list"),
    Case("api-train-overrides-no-equals", api("train", **{**TRAIN_KW, "overrides": ["train.lr"]}), E,
         "'train.lr' is not of the form key=value"),
    Case("api-train-task-unknown", api("train", task="xyz", **TRAIN_KW), E,
         "unknown task 'xyz' (available: autoencoder, classify, lm, seq2seq)"),
    Case("api-train-task-none", api("train", task=None, **TRAIN_KW), TypeError, "task must be a str"),
    Case("api-train-recipe-int", api("train", recipe=5, **TRAIN_KW), TypeError, "recipe must be a path"),
    Case("api-train-recipe-unknown", api("train", recipe="ptb-huge", **TRAIN_KW), E, "unknown recipe 'ptb-huge'"),
    Case("api-train-out-none", api("train", **{**TRAIN_KW, "out": None}), TypeError, "out must be a path"),
    Case("api-train-out-list", api("train", **{**TRAIN_KW, "out": ["a"]}), TypeError, "out must be a path"),
    Case("api-train-valid-float", api("train", valid=1.5, **TRAIN_KW), TypeError, "valid must be a path"),
    Case("api-train-test-list", api("train", test=[], **TRAIN_KW), TypeError, "test must be a path"),
    Case("api-train-init-from-int", api("train", init_from=3, **TRAIN_KW), TypeError, "init_from must be a path"),
    Case("api-train-resume-string", api("train", resume="yes", **TRAIN_KW), TypeError, "resume must be True or False"),
    Case("api-train-overwrite-string", api("train", overwrite="no", **TRAIN_KW), TypeError,
         "overwrite must be True or False"),
    Case("api-train-device-int", api("train", device=0, **TRAIN_KW), TypeError, "device must be a str"),
    Case("api-train-device-unknown", api("train", device="tpu", **TRAIN_KW), E, "unknown device 'tpu'"),
    Case("api-train-data-missing", api("train", **{**TRAIN_KW, "data": "{tmp}/nope.txt"}), E,
         "{tmp}/nope.txt: data path not found"),
    Case("train-resume-marker-init-not-a-string", cli("train", "lm", "--out", "{tmp}/mc", "--resume"), 2,
         "{tmp}/mc/rnnkit.json: ownership marker is corrupt (init must be a string)",
         files={**MODEL_COPY, "mc/rnnkit.json": ("edit", '"made_by": "rnnkit train"',
                                                 '"made_by": "rnnkit train", "init": 5')}),
    Case("api-train-resume-with-another-init-from", api("train", resume=True, init_from="{model}", out="{tmp}/mc"),
         E, "--resume continues this run, which records no --init-from", files=MODEL_COPY),
    Case("api-train-resume-and-overwrite", api("train", resume=True, overwrite=True, **TRAIN_KW), E,
         "--resume and --overwrite exclude each other"),
    Case("api-train-nan-lr", api("train", **{**TRAIN_KW, "overrides": ["train.lr=.nan"]}), E,
         "'train.lr' must be a finite number"),
    # ------------------------------------------------------------------------------ Python API: rnnkit.load
    Case("api-load-none", api("load", model_dir=None), TypeError, "model_dir must be a path"),
    Case("api-load-int", api("load", model_dir=123), TypeError, "model_dir must be a path"),
    Case("api-load-missing", api("load", model_dir="{tmp}/ghost"), E, "{tmp}/ghost: model directory not found"),
    Case("api-load-device-int", api("load", model_dir="{model}", device=1), TypeError, "device must be a str"),
    Case("api-load-device-unknown", api("load", model_dir="{model}", device="tpu"), E, "unknown device 'tpu'"),
    # ------------------------------------------------------------------------------ Python API: the loaded model
    Case("api-evaluate-path-none", api("evaluate", path=None), TypeError, "path must be a path"),
    Case("api-evaluate-path-int", api("evaluate", path=123), TypeError, "path must be a path"),
    Case("api-evaluate-batch-size-float", api("evaluate", path="{valid}", batch_size=1.5), TypeError,
         "batch_size must be an int or None, got float"),
    Case("api-evaluate-batch-size-bool", api("evaluate", path="{valid}", batch_size=True), TypeError,
         "batch_size must be an int"),
    Case("api-evaluate-batch-size-0", api("evaluate", path="{valid}", batch_size=0), E,
         "batch_size must be at least 1, got 0"),
    Case("api-evaluate-max-lines-str", api("evaluate", path="{valid}", max_lines="10"), TypeError,
         "max_lines must be an int, got str"),
    Case("api-evaluate-max-lines-negative", api("evaluate", path="{valid}", max_lines=-1), E,
         "max_lines must be at least 0"),
    Case("api-evaluate-missing", api("evaluate", path="{tmp}/nope.txt"), E, "{tmp}/nope.txt: file not found"),
    Case("api-evaluate-folder", api("evaluate", path="{tmp}"), E, "{tmp}: is a directory"),
    Case("api-generate-temperature-0", api("generate", prompt="the", temperature=0.0), E, "temperature must be > 0"),
    Case("api-generate-top-p-2", api("generate", prompt="the", top_p=2.0), E, "top-p must be in"),
    Case("api-generate-num-samples-0", api("generate", prompt="the", num_samples=0), E,
         "num_samples (--num-samples) must be >= 1"),
    Case("api-generate-prompt-oov", api("generate", prompt="zebra"), E, "'zebra'"),
    *[Case(f"api-generate-{id_}", api("generate", **kwargs), expect, message)
      for id_, kwargs, expect, message in (
        ("n-float", {"n": 1.5}, TypeError, "n must be an integer, got 1.5"),
        ("n-bool", {"n": True}, TypeError, "n must be an integer, got True"),
        ("temperature-string", {"temperature": "hot"}, TypeError, "temperature must be a number"),
        ("num-samples-bool", {"num_samples": True}, TypeError, "num_samples must be an integer"),
        ("prompt-none", {"prompt": None}, TypeError, "prompt must be a string, got None"),
        ("prompt-int", {"prompt": 123}, TypeError, "prompt must be a string, got 123"),
        ("seed-string", {"seed": "x"}, TypeError, "seed must be an integer or None"),
        ("seed-float", {"seed": 1.0}, TypeError, "seed must be an integer or None"),
        ("seed-beyond-64-bits", {"seed": 2**64}, E, "seed (--seed) must fit in 64 bits"),
        ("top-k-float", {"top_k": 2.5}, TypeError, "top_k must be an integer"),
        ("top-p-string", {"top_p": "0.9"}, TypeError, "top_p must be a number"),
        ("greedy-string", {"greedy": "yes"}, TypeError, "greedy must be True or False"),
        ("include-prompt-none", {"include_prompt": None}, TypeError, "include_prompt must be True or False"),
        ("allow-unk-int", {"allow_unk": 1}, TypeError, "allow_unk must be True or False"),
        ("sentence-int", {"sentence": 1}, TypeError, "sentence must be True or False"),
        ("stop-at-eos-int", {"stop_at_eos": 1}, TypeError, "stop_at_eos must be True, False or None"),
      )],
    # ------------------------------------------------------------------------------ data toy
    Case("data-no-kind", cli("data"), 2, "the following arguments are required: kind"),
    Case("data-toy-unknown-task", cli("data", "toy", "rot13", "--out", "{tmp}/t"), 2, "invalid choice: 'rot13'"),
    Case("data-toy-no-out", cli("data", "toy", "copy"), 2, "the following arguments are required: --out"),
    Case("data-toy-n-not-a-number", cli("data", "toy", "copy", "--out", "{tmp}/t", "--n", "many"), 2,
         "invalid int value: 'many'"),
    Case("data-toy-n-too-small", cli("data", "toy", "copy", "--out", "{tmp}/t", "--n", "9"), 2,
         "--n must be at least 10"),
    Case("data-toy-out-is-a-file", cli("data", "toy", "copy", "--out", "{tmp}/t"), 2, "t: is not a directory",
         files={"t": "mine\n"}),
    Case("data-toy-existing-split", cli("data", "toy", "copy", "--out", "{tmp}/t"), 2,
         "t/train.tsv: exists: `rnnkit data toy` does not replace files", files={"t/train.tsv": "a\tb\n"}),
    Case("data-toy-overwrite-not-its-own", cli("data", "toy", "copy", "--out", "{tmp}/t", "--overwrite"), 2,
         "t/valid.tsv: exists and was not made by `rnnkit data toy`", files={"t/valid.tsv": "a\tb\n"}),
    Case("data-toy-overwrite-forged-manifest-link", cli("data", "toy", "copy", "--out", "{tmp}/t", "--overwrite"),
         2, "t/train.tsv: exists and is not a plain file",
         files={"t/toy.json": '{"made_by": "rnnkit data toy"}', "t/train.tsv": ("symlink", "{train}")}),
    # ------------------------------------------------------------------------------ Python API: the NumPy reference
    Case("api-train-numpy-data-int", api("train_numpy", **{**TRAIN_KW, "data": 123}), TypeError,
         "data must be a path"),
    Case("api-train-numpy-overrides-string", api("train_numpy", **{**TRAIN_KW, "overrides": "train.lr=1"}),
         TypeError, "pass ['train.lr=1']"),
    Case("api-train-numpy-task-unknown", api("train_numpy", task="xyz", **TRAIN_KW), E, "unknown task 'xyz'"),
    Case("api-train-numpy-adam", api("train_numpy", **TRAIN_KW), E, "the numpy backend trains with plain SGD only"),
    Case("api-train-numpy-resume-int", api("train_numpy", resume=1, **TRAIN_KW), TypeError, "resume must be True"),
    Case("api-load-numpy-none", api("load_numpy", model_dir=None), TypeError, "model_dir must be a path"),
    Case("api-load-numpy-int", api("load_numpy", model_dir=123), TypeError, "model_dir must be a path"),
    Case("api-load-numpy-missing", api("load_numpy", model_dir="{tmp}/ghost"), E, "model directory not found"),
    Case("api-generate-numpy-n-float", api("generate_numpy", n=1.5), TypeError, "n must be an integer, got 1.5"),
    Case("api-generate-numpy-n-negative", api("generate_numpy", n=-3), E, "n (-n) must be >= 0"),
    Case("api-generate-numpy-num-samples-0", api("generate_numpy", num_samples=0), E,
         "num_samples (--num-samples) must be >= 1"),
    Case("api-generate-numpy-prompt-none", api("generate_numpy", prompt=None), TypeError, "prompt must be a string"),
    Case("train-init-prefix-without-init-from", cli(*TRAIN, "--init-prefix", "encoder"), 2,
         "--init-prefix needs --init-from DIR"),
    Case("train-init-partial-without-init-from", cli(*TRAIN, "--init-partial"), 2,
         "--init-partial needs --init-from DIR"),
    Case("train-init-prefix-unknown", cli(*TRAIN, "--init-from", "{model}", "--init-prefix", "encoder"), 2,
         "--init-prefix 'encoder': the new model has no tensor under 'encoder.' (its parts: "),
    Case("train-init-from-strict-mismatch", cli(*TRAIN, "--init-from", "{model}", *sets("model.hidden_size=24")), 2,
         "{model}: --init-from (same task, strict) needs the same model and vocabulary: 'rnns.0.weight_ih_l0': shape "
         "(96, 8) here, (64, 8) in the source"),
    Case("train-init-partial-edited-source", cli(*TRAIN, "--init-partial", "--init-from", "{tmp}/mc"), 2,
         "'rnns.0.weight_ih_l0' has shape (64, 8), model expects (48, 8) (config and weights disagree)",
         files={**MODEL_COPY, "mc/config.yaml": ("edit", "hidden_size: 16", "hidden_size: 12")}),
    Case("train-init-partial-source-vocab-edited", cli(*TRAIN, "--init-partial", "--init-from", "{tmp}/mc"), 2,
         "{tmp}/mc/vocab.json: was changed since the weights were saved",
         files={**MODEL_COPY, "mc/vocab.json": ("edit", '"ball"', '"balls"')}),
    Case("api-train-init-prefix-int", api("train", init_from="{model}", init_prefix=3, **TRAIN_KW), TypeError,
         "init_prefix must be a str"),
    Case("api-train-init-partial-string", api("train", init_from="{model}", init_partial="yes", **TRAIN_KW), TypeError,
         "init_partial must be True or False"),
    Case("api-train-init-prefix-without-init-from", api("train", init_prefix="encoder", **TRAIN_KW), E,
         "--init-prefix needs --init-from DIR"),
    # ------------------------------------------------------------------------------ classification (issue 14)
    bad_labelled("jsonl-no-text", LABELLED + '{"review": "x y", "label": "xy"}\n', '{tmp}/t.jsonl:21: JSON record '
                 'has no "text" field (data.text_field)'),
    bad_labelled("empty-text", '{"text": "a x y", "label": "xy"}\n{"text": "  ", "label": "yx"}\n',
                 "{tmp}/t.jsonl:2: empty text"),
    bad_labelled("only-markup", LABELLED + '{"text": "<br /><br />", "label": "xy"}\n',
                 "{tmp}/t.jsonl:21: empty text (only markup)"),
    bad_labelled("text-number", '{"text": 7, "label": "xy"}\n', '{tmp}/t.jsonl:1: the "text" field is int, not a'),
    bad_labelled("no-label", LABELLED + '{"text": "x y"}\n', '{tmp}/t.jsonl:21: JSON record has no "label" field'),
    bad_labelled("label-list", '{"text": "x y", "label": [1]}\n', "{tmp}/t.jsonl:1: the label must be a string or "
                 "a number, got [1]"),
    bad_labelled("label-empty", '{"text": "x y", "label": " "}\n', "{tmp}/t.jsonl:1: empty label"),
    bad_labelled("one-class", '{"text": "x y", "label": "xy"}\n' * 20, "{tmp}/t.jsonl: every training example "
                 "has the label 'xy': a classifier needs two classes at least"),
    bad_labelled("jsonl-not-an-object", '["x y", "xy"]\n', "{tmp}/t.jsonl:1: a JSON line must be an object"),
    bad_labelled("jsonl-invalid", LABELLED + '{"text": "x\n', "{tmp}/t.jsonl:21: invalid JSON"),
    bad_labelled("freeze-unknown-part", LABELLED, "train.freeze: the model has no parameter under 'encoder.rnns.3'",
                 extra=("--set", "train.freeze=encoder.embedding,encoder.rnns.3")),
    bad_labelled("freeze-everything", LABELLED, "train.freeze: 'encoder,head' freezes every parameter (nothing would "
                 "train in any epoch)", extra=sets("train.freeze=encoder,head")),
    bad_labelled("freeze-everything-joint-until-unfrozen", LABELLED, "train.freeze: 'encoder,head,decoder' freezes "
                 "every parameter (nothing would train in epochs 1-2 with train.unfreeze_after 2)",
                 extra=sets("model.joint=reconstruct", "train.freeze=encoder,head,decoder", "train.unfreeze_after=2",
                            "train.epochs=3")),
    bad_labelled("joint-weight-without-joint", LABELLED, "train.joint_weight 5 weighs no joint objective (model.joint "
                 "none): set model.joint lm or reconstruct, or leave train.joint_weight out",
                 extra=sets("train.joint_weight=5")),
    Case("autoencoder-train-freeze-unknown-part", cli("train", "autoencoder", "--data", "{tmp}/t.jsonl", "--out",
                                                      "{tmp}/m", *sets(*AE_TINY, "train.freeze=bogus")), 2,
         "train.freeze: the model has no parameter under 'bogus'", files={"t.jsonl": LABELLED}),
    Case("autoencoder-train-freeze-everything", cli("train", "autoencoder", "--data", "{tmp}/t.jsonl", "--out",
                                                    "{tmp}/m", *sets(*AE_TINY, "train.freeze=encoder,decoder")), 2,
         "train.freeze: 'encoder,decoder' freezes every parameter", files={"t.jsonl": LABELLED}),
    # a same-task --init-from whose reading or classes do not fit the data: the error names the model, not the data
    Case("classify-train-init-from-text-model-numeric-data", cli(*TRAIN_NPZ, "--init-from", "{classifier}"), 2,
         "{classifier}: this model reads texts, the training data {tmp}/t.npz holds numeric sequences (.npz, IDX): a "
         "same-task --init-from takes the model's reading, so start from a model of numeric sequences (.npz, IDX), "
         "or add --init-partial", files=GOOD_NPZ),
    Case("classify-train-init-from-numeric-model-text-data", cli(*TRAIN_CLS, "--init-from", "{numeric_classifier}"),
         2, "{numeric_classifier}: this model reads numeric sequences (.npz, IDX), the training data {tmp}/t.jsonl "
         "holds texts", files={"t.jsonl": LABELLED}),
    Case("classify-train-init-from-numeric-model-other-width", cli(*TRAIN_NPZ, "--init-from", "{numeric_classifier}"),
         2, "{numeric_classifier}: this model reads sequences of 2 features per step, the training data {tmp}/t.npz "
         "holds sequences of 3 features per step", files={"t.npz": npz_bytes(X=[[[0.0, 1.0, 2.0]]] * 12,
                                                                             y=["a", "b"] * 6)}),
    Case("classify-train-init-from-other-labels", cli(*TRAIN_CLS, "--init-from", "{classifier}"), 2,
         "{classifier}: the training data {tmp}/t.jsonl has labels this model lacks ('ab'; its labels: xy, yx): a "
         "same-task --init-from keeps the model's classes; add --init-partial",
         files={"t.jsonl": LABELLED.replace('"xy"', '"ab"')}),
    Case("classify-train-init-prefix-not-needed", cli(*TRAIN_CLS, "--init-from", "{autoencoder}", "--init-prefix",
                                                       "encoder"), 2,
         "drop --init-prefix 'encoder' (without it the names match: ", files={"t.jsonl": LABELLED}),
    # tokenizer.from_init: the --init-from model's tokenizer and vocabulary, which must exist and read text
    Case("classify-train-from-init-without-init-from", cli(*TRAIN_CLS, *sets("tokenizer.from_init=true")), 2,
         "tokenizer.from_init takes the tokenizer and vocabulary of the --init-from model: give --init-from DIR, or "
         "set tokenizer.from_init false to build them from the training data", files={"t.jsonl": LABELLED}),
    Case("autoencoder-train-from-init-without-init-from",
         cli("train", "autoencoder", "--data", "{tmp}/t.jsonl", "--out", "{tmp}/m",
             *sets(*AE_TINY, "tokenizer.from_init=true")), 2,
         "tokenizer.from_init takes the tokenizer and vocabulary of the --init-from model",
         files={"t.jsonl": LABELLED}),
    Case("classify-train-from-init-numeric-source", cli(*TRAIN_CLS, "--init-from", "{numeric_classifier}",
                                                         "--init-partial", *sets("tokenizer.from_init=true")), 2,
         "{numeric_classifier}: tokenizer.from_init: this classify model reads no text with one tokenizer and "
         "vocabulary (numeric input, or a seq2seq model's two sides)", files={"t.jsonl": LABELLED}),
    Case("classify-train-from-init-seq2seq-source", cli(*TRAIN_CLS, "--init-from", "{s2s_model}",
                                                         *sets("tokenizer.from_init=true")), 2,
         "{s2s_model}: tokenizer.from_init: this seq2seq model reads no text with one tokenizer and vocabulary",
         files={"t.jsonl": LABELLED}),
    Case("classify-train-from-init-numeric-data", cli(*TRAIN_NPZ, "--init-from", "{autoencoder}",
                                                       *sets("tokenizer.from_init=true")), 2,
         "{tmp}/t.npz: tokenizer.from_init reads text with the --init-from model's tokenizer and vocabulary; this "
         "training data is numeric sequences", files=GOOD_NPZ),
    Case("autoencoder-train-numeric", cli("train", "autoencoder", "--data", "{tmp}/t.npz", "--out", "{tmp}/m"), 2,
         "{tmp}/t.npz: an autoencoder reads texts (JSONL, CSV/TSV, plain lines or a folder of .txt files), not "
         "numeric sequences",
         files=GOOD_NPZ),
    Case("autoencoder-train-empty-text", cli("train", "autoencoder", "--data", "{tmp}/t.jsonl", "--out", "{tmp}/m"), 2,
         "{tmp}/t.jsonl:2: empty text", files={"t.jsonl": '{"text": "a b"}\n{"text": " "}\n'}),
    *[Case(f"autoencoder-train-{id_}", cli("train", "autoencoder", "--data", "{tmp}/t.jsonl", "--out", "{tmp}/m",
                                            *sets(*AE_TINY, *extra)), 2, message, files={"t.jsonl": LABELLED})
      for id_, extra, message in [
          ("softmax-unknown", ["model.softmax=hierarchical"], "unknown model.softmax 'hierarchical' (full | adaptive)"),
          ("adaptive-without-cutoffs", ["model.softmax=adaptive"],
           "model.softmax adaptive needs model.adaptive_cutoffs: the increasing ids"),
          ("cutoffs-without-adaptive", ["model.adaptive_cutoffs=[2]"],
           "model.adaptive_cutoffs [2] needs model.softmax adaptive (it is full)"),
          ("cutoffs-decreasing", ["model.softmax=adaptive", "model.adaptive_cutoffs=[3, 2]"],
           "model.adaptive_cutoffs [3, 2] must be positive and increasing"),
          ("cutoff-beyond-built-vocab", ["model.softmax=adaptive", "model.adaptive_cutoffs=[5000]"],
           "model.adaptive_cutoffs [5000] must each be below the vocabulary size"),
          ("adaptive-div-too-large", ["model.softmax=adaptive", "model.adaptive_cutoffs=[2, 3]",
                                      "model.adaptive_div=4"],
           "model.adaptive_div 4.0 leaves the last of 2 clusters 0 units (4 // 4.0^2): lower it"),
          ("hidden-huge", ["model.hidden_size=1000000"], "the model needs about"),
          ("batch-huge", ["train.batch_size=100000000"], "train.batch_size or data.max_length, or set model.softmax "
                                                         "adaptive")]],
    Case("autoencoder-train-only-markup", cli("train", "autoencoder", "--data", "{tmp}/t.jsonl", "--out", "{tmp}/m"),
         2, "{tmp}/t.jsonl:2: empty text (only markup)",
         files={"t.jsonl": '{"text": "a b"}\n{"text": "<p><br /></p>"}\n'}),
    Case("classify-train-plain-text", cli(*TRAIN_CLS[:3], "{tmp}/t.txt", *TRAIN_CLS[4:]), 2,
         "{tmp}/t.txt: plain text has no labels", files={"t.txt": "a x y\n"}),
    bad_labelled("valid-unknown-label", '{"text": "x y", "label": "xy"}\n{"text": "y x", "label": "maybe"}\n',
                 "{tmp}/v.jsonl:2: unknown label 'maybe' (the model's labels: xy, yx)", "v.jsonl",
                 ("--valid", "{tmp}/v.jsonl")),
    # data.label_field naming the text field: the unknown label (a whole text) is cut short, as on training (#10),
    # and so are the model's labels
    Case("classify-train-valid-unknown-label-is-a-text",
         cli(*TRAIN_CLS, "--valid", "{tmp}/v.jsonl", *sets("data.label_field=text")), 2,
         "{tmp}/v.jsonl:1: unknown label 'review review review review review review review review rev... (str) (the "
         "model's labels: 'a review review review review... (str), 'b review review review review... (str))",
         files={"t.jsonl": "".join(f'{{"text": "{w} {"review " * 20}", "label": "xy"}}\n' for w in "ab" * 5),
                "v.jsonl": f'{{"text": "{"review " * 20}", "label": "xy"}}\n'}),
    bad_labelled("test-unknown-label", '{"text": "x y", "label": "xz"}\n', "{tmp}/s.jsonl:1: unknown label 'xz'",
                 "s.jsonl", ("--test", "{tmp}/s.jsonl")),
    bad_labelled("test-missing", "", "{tmp}/nope.jsonl: file not found", "x.jsonl", ("--test", "{tmp}/nope.jsonl")),
    bad_labelled("csv-no-text-column", "body,label\nx y,xy\n", "{tmp}/t.csv:1: the header has no column 'text' "
                 "(data.text_field; columns: body, label)", "t.csv", ("--set", "data.train={tmp}/t.csv")),
    bad_labelled("csv-short-row", "text,label\nx y,xy\nlonely\n", "{tmp}/t.csv:3: 1 columns, the header has 2",
                 "t.csv", ("--set", "data.train={tmp}/t.csv")),
    # a TSV from a quoting writer (Python's csv, pandas): the quoted line break splits the row (review2 #2)
    bad_labelled("tsv-written-with-quoting", 'text\tlabel\n"He said ""hi"" twice"\txy\n"line one\nline two"\tyx\n',
                 "{tmp}/t.tsv:3: 1 columns, the header has 2 (TSV is split on tabs only, no quoting: a file written "
                 "with quoting is not read as written; write it without quoting, or as CSV)", "t.tsv",
                 ("--set", "data.train={tmp}/t.tsv")),
    bad_labelled("tsv-empty-text", "text\tlabel\nx y\txy\n\tyx\n", "{tmp}/t.tsv:3: empty text", "t.tsv",
                 ("--set", "data.train={tmp}/t.tsv")),
    Case("classify-train-folder-empty-class", cli(*TRAIN_FOLDER), 2,
         "{tmp}/d/neg: no .txt files in this class folder", files={"d/pos/1.txt": "fine\n", "d/neg/notes.md": "x"}),
    Case("classify-train-folder-no-classes", cli(*TRAIN_FOLDER), 2,
         "{tmp}/d: no class folders (the layout is FOLDER/LABEL/*.txt)", files={"d/a.txt": "fine\n"}),
    Case("classify-train-folder-class-missing", cli(*TRAIN_FOLDER, *sets("data.classes=neg,neutral")), 2,
         "{tmp}/d: no class folder 'neutral' here (data.classes: neg, neutral)",
         files={"d/pos/1.txt": "fine\n", "d/neg/1.txt": "no\n"}),
    Case("classify-train-folder-class-twice", cli(*TRAIN_FOLDER, *sets("data.classes=neg,pos,neg")), 2,
         "data.classes names the folder 'neg' twice", files={"d/pos/1.txt": "fine\n", "d/neg/1.txt": "no\n"}),
    Case("classify-train-folder-class-path", cli(*TRAIN_FOLDER, *sets("data.classes=neg,../pos")), 2,
         "data.classes: '../pos' is not a folder name", files={"d/pos/1.txt": "fine\n", "d/neg/1.txt": "no\n"}),
    Case("classify-train-folder-only-unsup", cli(*TRAIN_FOLDER), 2,
         "{tmp}/d: no class folders (unsup/ holds unlabelled texts, not a class; the layout is FOLDER/LABEL/*.txt)",
         files={"d/unsup/1.txt": "fine\n"}),
    Case("classify-train-folder-empty-file", cli(*TRAIN_FOLDER), 2,
         "{tmp}/d/pos/2.txt: empty text", files={"d/pos/1.txt": "fine\n", "d/pos/2.txt": "\n", "d/neg/1.txt": "no"}),
    # review 2026-11-29: data reading (1b, 1c, 6, 7, 14)
    Case("classify-train-folder-class-name-not-utf8", cli(*TRAIN_FOLDER), 2,
         "{tmp}/d/n\udce9g: the class folder's name is not UTF-8 (it would be the label)",
         files={"d/pos/1.txt": "fine\n", "d/neg/1.txt": "no\n", "d/n\udce9g/1.txt": "no\n"}),
    bad_labelled("jsonl-lone-surrogate-text", LABELLED + '{"text": "fine \\udce9 film", "label": "xy"}\n',
                 '{tmp}/t.jsonl:21: the "text" field is not valid Unicode: a lone surrogate \\udce9'),
    bad_labelled("jsonl-lone-surrogate-label", LABELLED + '{"text": "fine film", "label": "n\\udce9g"}\n',
                 "{tmp}/t.jsonl:21: the label is not valid Unicode: a lone surrogate \\udce9"),
    Case("autoencoder-train-lone-surrogate", cli("train", "autoencoder", "--data", "{tmp}/t.jsonl", "--out", "{tmp}/m"),
         2, '{tmp}/t.jsonl:2: the "text" field is not valid Unicode: a lone surrogate \\udce9',
         files={"t.jsonl": '{"text": "a b"}\n{"text": "fine \\udce9 film"}\n'}),
    bad_data("jsonl-lone-surrogate", '{"text": "a b"}\n{"text": "fine \\udce9 film"}\n', "t.jsonl",
             '{tmp}/t.jsonl:2: the "text" field is not valid Unicode: a lone surrogate \\udce9'),
    bad_labelled("classes-for-jsonl", LABELLED, "data.classes names class folders: it applies to a folder per "
                 "class, not to {tmp}/t.jsonl (jsonl)", extra=("--set", "data.classes=xy,yx")),
    # --out in (or equal to) a folder per class: the model's folder would be read as a class of its own
    *[Case(f"{task}-train-out-{id_}", cli("train", task, "--data", "{tmp}/d", "--out", out, *sets(*AE_TINY)), 2,
           f"{out}: --out {message} the --data folder", files=CLASS_FOLDER)
      for task in ("classify", "autoencoder")
      for id_, out, message in (("in-the-data-folder", "{tmp}/d/m", "lies in"),
                                ("in-a-class-folder", "{tmp}/d/xy", "lies in"),
                                ("is-the-data-folder", "{tmp}/d", "names"))],
    # --out in what another run writes in its folder: that run replaces its checkpoint/ whole, and stops at a
    # folder where it writes a file (review3 #4); a folder of another name below a run's is fine (review4 #3)
    *[Case(f"train-out-{id_}", cli("train", "lm", "--data", "{train}", "--out", out, *sets(*TINY)), 2,
           f"{out}: --out is or lies in {{tmp}}/mc/{entry}, which the run in {{tmp}}/mc writes", files=MODEL_COPY)
      for id_, out, entry in (("in-a-checkpoint", "{tmp}/mc/checkpoint/x", "checkpoint"),
                              ("deep-in-a-checkpoint", "{tmp}/mc/checkpoint/a/b", "checkpoint"),
                              ("in-checkpoint-old", "{tmp}/mc/checkpoint.old/x", "checkpoint.old"),
                              ("in-a-temp-checkpoint", "{tmp}/mc/.checkpoint.ab12cd34/x", ".checkpoint.ab12cd34"),
                              ("is-a-run-file", "{tmp}/mc/log.csv", "log.csv"))],
    Case("classify-train-valid-folder-holds-out", cli("train", "classify", "--data", "{tmp}/t.jsonl", "--valid",
                                                           "{tmp}/d", "--out", "{tmp}/d/m", *sets(*CLS_TINY)), 2,
         "{tmp}/d/m: --out lies in the --valid folder", files={**CLASS_FOLDER, "t.jsonl": LABELLED}),
    Case("evaluate-classifier-data-set-root", cli("evaluate", "{classifier}", "--data", "{tmp}/acl"), 2,
         "{tmp}/acl: holds test/, train/: folders of class folders (a data set's splits), not classes: give one "
         "of them ({tmp}/acl/test)", files={"acl/train/xy/1.txt": "x y\n", "acl/test/xy/1.txt": "x y\n",
                                         "acl/train/urls_xy.txt": "http://x\n"}),  # aclImdb has loose .txt files
    Case("classify-input-data-set-root", cli("classify", "{classifier}", "--input", "{tmp}/acl"), 2,
         "{tmp}/acl: holds test/, train/: folders of class folders", files={"acl/train/xy/1.txt": "x y\n",
                                                                            "acl/test/xy/1.txt": "x y\n"}),
    Case("classify-input-folder-all-empty", cli("classify", "{classifier}", "--input", "{tmp}/d"), 2,
         "{tmp}/d: no .txt files in it or its sub-folders", files={"d/a": ("mkdir",), "d/b/notes.md": "x"}),
    Case("classify-train-npz-ragged", cli(*TRAIN_NPZ), 2, "{tmp}/t.npz: holds an object array (ragged sequences?)",
         files={"t.npz": npz_bytes(ragged=[[[1.0]], [[1.0], [2.0]]], y=["a", "b"])}),
    Case("classify-train-npz-2d", cli(*TRAIN_NPZ), 2, "{tmp}/t.npz: X must be a non-empty [N, T, F] number array, "
         "got shape [2, 3]", files={"t.npz": npz_bytes(X=[[1, 2, 3], [4, 5, 6]], y=["a", "b"])}),
    Case("classify-train-npz-no-x", cli(*TRAIN_NPZ), 2, "{tmp}/t.npz: has no array 'X'",
         files={"t.npz": npz_bytes(y=["a", "b"])}),
    Case("classify-train-npz-no-y", cli(*TRAIN_NPZ), 2, "{tmp}/t.npz: has no array 'y'",
         files={"t.npz": npz_bytes(X=[[[1.0]], [[2.0]]])}),
    Case("classify-train-npz-y-length", cli(*TRAIN_NPZ), 2, "{tmp}/t.npz: y must hold one label per row of X (2), got "
         "shape [3]", files={"t.npz": npz_bytes(X=[[[1.0]], [[2.0]]], y=["a", "b", "a"])}),
    Case("classify-train-npz-nan", cli(*TRAIN_NPZ), 2, "{tmp}/t.npz: X row 1 holds a value that is not finite",
         files={"t.npz": npz_bytes(X=[[[1.0]], [[float("nan")]]], y=["a", "b"])}),
    Case("classify-train-npz-lengths-out-of-range", cli(*TRAIN_NPZ), 2, "{tmp}/t.npz: lengths[1] is 5: it must lie "
         "in 1..2", files={"t.npz": npz_bytes(X=[[[1.0], [2.0]]] * 2, y=["a", "b"], lengths=[2, 5])}),
    Case("classify-train-npz-not-zip", cli(*TRAIN_NPZ), 2, "{tmp}/t.npz: not a readable .npz file",
         files={"t.npz": b"PK\x03\x04 not really"}),
    Case("classify-train-npz-valid-wrong-width", cli(*TRAIN_NPZ, "--valid", "{tmp}/v.npz"), 2,
         "{tmp}/v.npz: sequences of 3 features per step, the model reads 2",
         files={**GOOD_NPZ, "v.npz": npz_bytes(X=[[[0.0, 1.0, 2.0]]] * 2, y=["a", "b"])}),
    Case("classify-train-npz-valid-is-text", cli(*TRAIN_NPZ, "--valid", "{tmp}/v.jsonl"), 2,
         "{tmp}/v.jsonl: holds texts, the training data numeric sequences", files={**GOOD_NPZ, "v.jsonl": LABELLED}),
    Case("classify-train-idx-size-mismatch", cli(*TRAIN_CLS[:3], "{tmp}/a-images-idx3-ubyte.gz", *TRAIN_CLS[4:]), 2,
         "{tmp}/a-images-idx3-ubyte.gz: the header says 3 x 2 x 2 (28 bytes) but the file holds 24 bytes",
         files={"a-images-idx3-ubyte.gz": idx_bytes(b"\0\0\x08\x03", [3, 2, 2], 8)}),
    Case("classify-train-idx-bad-magic", cli(*TRAIN_CLS[:3], "{tmp}/a-images-idx3-ubyte.gz", *TRAIN_CLS[4:]), 2,
         "{tmp}/a-images-idx3-ubyte.gz: not an IDX images file (magic 0x504b0000; expected 0x00000803)",
         files={"a-images-idx3-ubyte.gz": idx_bytes(b"PK\0\0", [], 9)}),
    Case("classify-train-idx-label-count", cli(*TRAIN_CLS[:3], "{tmp}/a-images-idx3-ubyte.gz", *TRAIN_CLS[4:]), 2,
         "{tmp}/a-labels-idx1-ubyte.gz: holds [3] labels, the images file a-images-idx3-ubyte.gz 2 images",
         files={"a-images-idx3-ubyte.gz": idx_bytes(b"\0\0\x08\x03", [2, 2, 2], 8),
                "a-labels-idx1-ubyte.gz": idx_bytes(b"\0\0\x08\x01", [3], 3)}),
    Case("classify-train-idx-no-labels", cli(*TRAIN_CLS[:3], "{tmp}/a-images-idx3-ubyte.gz", *TRAIN_CLS[4:]), 2,
         "{tmp}/a-images-idx3-ubyte.gz: no labels file beside the images (a-labels-idx1-ubyte.gz expected)",
         files={"a-images-idx3-ubyte.gz": idx_bytes(b"\0\0\x08\x03", [2, 2, 2], 8)}),
    Case("classify-train-idx-not-gzip", cli(*TRAIN_CLS[:3], "{tmp}/a-images-idx3-ubyte.gz", *TRAIN_CLS[4:]), 2,
         "{tmp}/a-images-idx3-ubyte.gz: cannot read", files={"a-images-idx3-ubyte.gz": b"\0\0\x08\x03 plain"}),
    bad_labelled("unknown-encoder", LABELLED, "model.encoder: unknown encoder 'transformer'", extra=sets(
        "model.encoder=transformer")),
    bad_labelled("bag-last", LABELLED, "model.pooling: a bag of embeddings has no last state", extra=sets(
        "model.encoder=bag", "model.pooling=last")),
    bad_labelled("bag-concat", LABELLED, "model.pooling: a bag of embeddings has no last state to concatenate "
                 "(concat: last, mean, max side by side): mean, max or attention", extra=sets(
                     "model.encoder=bag", "model.pooling=concat")),
    bad_labelled("bag-weight-drop", LABELLED, "model.weight_drop 0.3: a bag of embeddings has no recurrent weights to "
                 "drop: a recurrent model.encoder (lstm, gru, rnn_tanh, rnn_relu) or model.weight_drop 0", extra=sets(
                     "model.encoder=bag", "model.pooling=mean", "model.weight_drop=0.3")),
    bad_labelled("weight-drop-1", LABELLED, "--set: config key 'model.weight_drop' must be below 1, got 1.0",
                 extra=sets("model.weight_drop=1")),
    bad_labelled("weight-drop-negative", LABELLED, "--set: config key 'model.weight_drop' must be at least 0, got -0.1",
                 extra=sets("model.weight_drop=-0.1")),
    bad_labelled("unknown-pooling", LABELLED, "model.pooling: unknown pooling 'sum' (last | mean | max | attention | "
                 "concat)", extra=sets("model.pooling=sum")),
    bad_labelled("unknown-init", LABELLED, "model.init: unknown initialisation 'glorot'",
                 extra=sets("model.init=glorot")),
    bad_labelled("joint-unknown", LABELLED, "model.joint: unknown objective 'both' (none | lm | reconstruct)",
                 extra=sets("model.joint=both")),
    bad_labelled("joint-lm-bag", LABELLED, "model.joint lm: a bag of embeddings has no recurrent state to predict "
                 "the next token from", extra=sets("model.encoder=bag", "model.pooling=mean", "model.joint=lm")),
    bad_labelled("joint-reconstruct-bag", LABELLED, "model.joint reconstruct: a bag of embeddings has no recurrent "
                 "state to start a decoder from", extra=sets("model.encoder=bag", "model.pooling=max",
                                                             "model.joint=reconstruct")),
    bad_labelled("joint-lm-bidirectional", LABELLED, "model.joint lm: not with model.bidirectional true (its "
                 "backward direction has read the token to predict)", extra=sets("model.bidirectional=true",
                                                                                  "model.joint=lm")),
    bad_labelled("joint-reconstruct-bidirectional", LABELLED, "model.joint reconstruct: not with "
                 "model.bidirectional true", extra=sets("model.bidirectional=true", "model.joint=reconstruct")),
    bad_labelled("joint-weight-zero", LABELLED, "train.joint_weight", extra=sets("model.joint=lm",
                                                                                 "train.joint_weight=0")),
    Case("classify-train-npz-joint", cli(*TRAIN_NPZ, *sets("model.joint=reconstruct")), 2,
         "model.joint reconstruct: numeric sequences (.npz, IDX) have no tokens to predict", files=GOOD_NPZ),
    bad_labelled("unknown-truncate", LABELLED, "unknown data.truncate 'middle' (pre | post)",
                 extra=sets("data.truncate=middle")),
    bad_labelled("unknown-format", LABELLED, "unknown data.format 'xml'", extra=sets("data.format=xml")),
    bad_labelled("unknown-split", LABELLED, "unknown data.split 'odd'", extra=sets("data.split=odd")),
    bad_labelled("fractions-leave-nothing", LABELLED, "data.valid_fraction 0.5 + data.test_fraction 0.5 leave nothing",
                 extra=sets("data.valid_fraction=0.5", "data.test_fraction=0.5")),
    bad_labelled("no-validation", LABELLED, "no validation data: give --valid FILE or a data.valid_fraction above 0",
                 extra=sets("data.valid_fraction=0")),
    bad_labelled("lm-key", LABELLED, "unknown config key 'train.bptt'", extra=sets("train.bptt=5")),
    bad_labelled("text-model-without-embedding", LABELLED, "model.embedding_size: a text classifier embeds its "
                 "tokens", extra=sets("model.embedding_size=0")),
    bad_labelled("augment-shift-on-text", LABELLED, "{tmp}/t.jsonl: data.augment_shift, augment_rotate and "
                 "augment_scale move numeric sequences (.npz, IDX); this training data is text",
                 extra=sets("data.augment_rotate=5")),
    Case("classify-no-inputs", cli("classify", "{classifier}"), 2, "give the texts to classify or --input FILE"),
    Case("reconstruct-no-inputs", cli("reconstruct", "{classifier}"), 2,
         "give the texts to reconstruct or --input FILE"),
    Case("reconstruct-beam-zero", cli("reconstruct", "{classifier}", "x y", "--beam", "0"), 2,
         "--beam must be at least 1, got 0"),
    Case("reconstruct-beam-huge", cli("reconstruct", "{autoencoder}", "x y", "--beam", "1000000000"), 2,
         "(decoding 1 sentences x beam 1,000,000,000 over up to ", isolate=True),
    Case("reconstruct-alpha-negative", cli("reconstruct", "{autoencoder}", "x y", "--beam", "2", "--alpha", "-1"), 2,
         "reconstruct: alpha (the length penalty) must be between 0 and 5, got -1.0"),
    Case("api-reconstruct-alpha-string", api("reconstruct", texts=["x y"], alpha="1"), TypeError,
         "reconstruct: alpha must be a number, got '1'"),
    Case("generate-with-an-autoencoder", cli("generate", "{autoencoder}"), 2,
         "{autoencoder}: is an autoencoder model: it does not generate (its command is rnnkit reconstruct)"),
    Case("reconstruct-a-classifier", cli("reconstruct", "{classifier}", "x y"), 2,
         "is a classify model: it does not reconstruct (its command is rnnkit classify)"),
    Case("classify-texts-and-input", cli("classify", "{classifier}", "x y", "--input", "{tmp}/in.txt"), 2,
         "give the texts to classify or --input FILE (one of them)"),
    Case("classify-batch-size-zero", cli("classify", "{classifier}", "x y", "--batch-size", "0"), 2,
         "--batch-size must be at least 1, got 0"),
    Case("classify-an-lm", cli("classify", "{model}", "the cat"), 2,
         "is an lm model: it does not classify (its command is rnnkit generate)"),
    Case("generate-with-a-classifier", cli("generate", "{classifier}"), 2,
         "is a classify model: it does not generate (its command is rnnkit classify)"),
    Case("classify-input-missing", cli("classify", "{classifier}", "--input", "{tmp}/nope.txt"), 2,
         "{tmp}/nope.txt: file not found"),
    Case("classify-input-blank-line", cli("classify", "{classifier}", "--input", "{tmp}/in.txt"), 2,
         "{tmp}/in.txt:2: blank line: answer k is text k here, so only blank lines at the end of the file are skipped",
         files={"in.txt": "x y\n\ny x\n"}),
    Case("classify-input-jsonl-no-text", cli("classify", "{classifier}", "--input", "{tmp}/in.jsonl"), 2,
         '{tmp}/in.jsonl:1: JSON record has no "text" field', files={"in.jsonl": '{"body": "x y"}\n'}),
    Case("classify-text-model-given-arrays", cli("classify", "{classifier}", "--input", "{tmp}/in.npz"), 2,
         "{tmp}/in.npz: this model classifies texts", files={"in.npz": npz_bytes(X=[[[1.0]]])}),
    Case("classify-numeric-wrong-width", cli("classify", "{numeric_classifier}", "--input", "{tmp}/in.npz"), 2,
         "{tmp}/in.npz: sequences of 3 features per step, the model reads 2", files={"in.npz": npz_bytes(
             X=[[[1.0, 2.0, 3.0]]])}),
    Case("classify-numeric-given-text", cli("classify", "{numeric_classifier}", "x y"), 2,
         "<input>: this model classifies numeric sequences (.npz, IDX)"),
    Case("classify-labels-file-corrupt", cli("classify", "{tmp}/cc", "x y"), 2,
         "{tmp}/cc/labels.json: label file is corrupt (a list of at least two distinct",
         files={"cc": ("copy", "{classifier}"), "cc/labels.json": '["xy", "xy"]'}),
    Case("classify-labels-file-changed", cli("classify", "{tmp}/cc", "x y"), 2,
         "{tmp}/cc/labels.json: was changed since the weights were saved",
         files={"cc": ("copy", "{classifier}"), "cc/labels.json": ("edit", '"yx"', '"no"')}),
    Case("classify-config-pooling-wider-than-the-weights", cli("classify", "{tmp}/cc", "x y"), 2,
         "{tmp}/cc/model.safetensors: 'head.output.weight' has shape (2, 4), model expects (2, 12) (config and "
         "weights disagree)", files={"cc": ("copy", "{classifier}"),
                                     "cc/config.yaml": ("edit", "pooling: last", "pooling: concat")}),
    Case("classify-weights-nan", cli("classify", "{tmp}/cc", "x y", "--probs"), 2,
         "{tmp}/cc/model.safetensors: 'head.output.bias' holds a value that is not finite (NaN or infinity)",
         files={"cc": ("copy", "{classifier}"), "cc/model.safetensors": ("nan", "head.output.bias", float("nan"))}),
    Case("classify-train-init-from-nan-weights", cli(*TRAIN_CLS, "--init-from", "{tmp}/cc"), 2,
         "{tmp}/cc/model.safetensors: 'head.output.bias' holds a value that is not finite (NaN or infinity)",
         files={"t.jsonl": LABELLED, "cc": ("copy", "{classifier}"),
                "cc/model.safetensors": ("nan", "head.output.bias", float("-inf"))}),
    Case("classify-labels-file-missing", cli("classify", "{tmp}/cc", "x y"), 2,
         "not a complete model directory: 'labels.json' is missing",
         files={"cc": ("copy", "{classifier}"), "cc/labels.json": ("delete",)}),
    Case("classify-resume-test-over-held-out-share", cli("train", "classify", "--out", "{tmp}/cc", "--resume",
                                                         "--test", "{tmp}/t.jsonl"), 2,
         "{tmp}/cc/config.yaml: this run holds data.test_fraction 0.2 of its training data out as its test set, and "
         "--test {tmp}/t.jsonl would put that part back into training",
         files={"cc": ("copy", "{classifier}"), "cc/config.yaml": ("edit", "test_fraction: 0.0", "test_fraction: 0.2"),
                "t.jsonl": LABELLED}),
    Case("evaluate-classifier-unknown-label", cli("evaluate", "{classifier}", "--data", "{tmp}/e.jsonl"), 2,
         "{tmp}/e.jsonl:2: unknown label 'zz' (the model's labels: xy, yx)",
         files={"e.jsonl": '{"text": "x y", "label": "xy"}\n{"text": "y x", "label": "zz"}\n'}),
    Case("evaluate-classifier-no-labels", cli("evaluate", "{classifier}", "--data", "{tmp}/e.txt"), 2,
         "{tmp}/e.txt: plain text has no labels", files={"e.txt": "x y\n"}),
    Case("evaluate-classifier-unknown-option", cli("evaluate", "{classifier}", "--data", "{tmp}/e.txt", "--bleu"), 2,
         "unrecognized arguments: --bleu (rnnkit evaluate of a classify model takes no such option)"),
    Case("evaluate-confusion-png-is-a-folder", cli("evaluate", "{classifier}", "--data", "{tmp}/e.jsonl",
                                                   "--confusion-png", "{tmp}"), 2, "--confusion-png",
         files={"e.jsonl": '{"text": "x y", "label": "xy"}\n'}),
    Case("api-classify-one-string", api("classify", inputs="x y"), TypeError,
         "classify: inputs must be a list of texts (or of arrays), not one string"),
    Case("api-classify-not-a-string", api("classify", inputs=["x y", 3]), TypeError,
         "classify: input 2 is int, not a string"),
    Case("api-classify-empty-text", api("classify", inputs=["x y", " <br /> "]), E, "<input>:2: empty text"),
    Case("api-classify-probs-string", api("classify", inputs=["x y"], probs="yes"), TypeError,
         "probs must be True or False"),
    Case("api-classify-batch-size-zero", api("classify", inputs=["x y"], batch_size=0), E, "batch_size"),
    *[Case(f"api-classify-numeric-{value}", api("classify_numeric", inputs=[[[0.0, 1.0]], [[1.0, 0.0], [value, 0.0]]],
                                                probs=True), E,
           "<input>: input 2 holds a value that is not finite (nan or inf)")
      for value in (float("nan"), float("-inf"), 1e39)],  # 1e39: beyond float32
    # ------------------------------------------------------------------------------ seq2seq: training data
    s2s_data("tsv-no-tab", {"p.tsv": "a b\tb a\nc d\nd a\ta d\n"}, "{tmp}/p.tsv",
             "{tmp}/p.tsv:2: no tab on this line: expected source<TAB>target"),
    s2s_data("tsv-empty-source", {"p.tsv": "a b\tb a\n \tc d\nd a\ta d\n"}, "{tmp}/p.tsv",
             "{tmp}/p.tsv:2: the source side is empty"),
    s2s_data("tsv-empty-target", {"p.tsv": "a b\tb a\nc d\t\t x\nd a\ta d\n"}, "{tmp}/p.tsv",
             "{tmp}/p.tsv:2: the target side is empty"),
    s2s_data("tsv-latin1", {"p.tsv": b"a b\tb a\nc d\td c\ncaf\xe9\tx\n"}, "{tmp}/p.tsv",
             "{tmp}/p.tsv:3: not UTF-8 (invalid byte at column 4)"),
    s2s_data("tsv-empty-file", {"p.tsv": ""}, "{tmp}/p.tsv", "{tmp}/p.tsv: file is empty"),
    s2s_data("tsv-jsonl", {"p.jsonl": '{"src": "a", "trg": "b"}\n'}, "{tmp}/p.jsonl",
             "{tmp}/p.jsonl: parallel data is TSV (source<TAB>target) or two aligned text files, not JSON Lines"),
    s2s_data("aligned-line-counts", {"a.de": "a b\nc d\nd a\n", "a.en": "b a\nd c\n"}, "{tmp}/a",
             "{tmp}/a.de: has 3 lines but {tmp}/a.en has 2: aligned files must have one line per pair",
             "--set", "data.src=de", "--set", "data.trg=en"),
    s2s_data("aligned-target-missing", {"a.de": "a b\nc d\n"}, "{tmp}/a.de", "{tmp}/a.en: file not found",
             "--set", "data.src=de", "--set", "data.trg=en"),
    s2s_data("aligned-target-latin1", {"a.de": "a b\nc d\nd a\n", "a.en": b"b a\nd \xff\na d\n"}, "{tmp}/a",
             "{tmp}/a.en:2: not UTF-8", "--set", "data.src=de", "--set", "data.trg=en"),
    s2s_data("aligned-empty-target-line", {"a.de": "a b\nc d\nd a\n", "a.en": "b a\n  \na d\n"}, "{tmp}/a",
             "{tmp}/a.en:2: the target side is empty", "--set", "data.src=de", "--set", "data.trg=en"),
    s2s_data("aligned-without-markers", {"d/train.de": "a b\n", "d/train.en": "b a\n"}, "{tmp}/d",
             "data.src and data.trg"),
    Case("s2s-train-valid-no-tab", cli(*S2S_TRAIN, "--valid", "{tmp}/v.tsv"), 2,
         "{tmp}/v.tsv:2: no tab on this line", files={"v.tsv": "a b\tb a\nc d\n"}),
    Case("s2s-train-test-latin1", cli(*S2S_TRAIN, "--test", "{tmp}/t.tsv"), 2, "{tmp}/t.tsv:1: not UTF-8",
         files={"t.tsv": b"\xff\tb\n"}),
    Case("s2s-train-lm-text-as-pairs", cli(*S2S_TRAIN[:3], "{train}", *S2S_TRAIN[4:]), 2,
         "{train}:1: no tab on this line"),
    s2s_set("no-validation", "data.valid_fraction=0", "no validation pairs: give --valid FILE"),
    s2s_set("too-long-error", "data.max_src_length=1", "no training pairs left"),
    Case("s2s-train-too-long-error-names-line", cli(*S2S_TRAIN, *sets("data.max_src_length=1",
                                                                         "data.too_long=error")), 2,
         "{pairs}:1: the source side has "),
    # ------------------------------------------------------------------------------ seq2seq: config
    s2s_set("lm-key-train-bptt", "train.bptt=5", "unknown config key 'train.bptt'"),
    s2s_set("lm-section-tokenizer", "tokenizer.kind=char", "unknown config key 'tokenizer'"),
    s2s_set("lm-key-data-mode", "data.mode=stream", "unknown config key 'data.mode'"),
    s2s_set("lm-key-model-embedding-size", "model.embedding_size=8", "unknown config key 'model.embedding_size'"),
    s2s_set("decoder-unknown", "model.decoder=transformer",
            "model.decoder must be one of repeat | state | peek | attention, got 'transformer'"),
    s2s_set("attention-unknown", "model.attention=luong",
            "model.attention must be one of bahdanau | dot | general, got 'luong'"),
    s2s_set("bridge-unknown", "model.bridge=mean", "model.bridge must be one of zero | last | learned, got 'mean'"),
    s2s_set("cell-unknown", "model.cell=transformer", "model.cell must be one of"),
    s2s_set("select-unknown", "train.select=accuracy", "train.select must be one of bleu | loss"),
    s2s_set("batch-unit-unknown", "train.batch_unit=pairs", "train.batch_unit must be one of sentences | tokens"),
    s2s_set("source-kind-unknown", "source.kind=bytes", "source.kind must be one of"),
    s2s_set("too-long-unknown", "data.too_long=cut", "data.too_long must be one of drop | error"),
    s2s_set("label-smoothing-1", "train.label_smoothing=1.0", "'train.label_smoothing' must be below 1"),
    s2s_set("valid-beam-0", "train.valid_beam=0", "'train.valid_beam' must be at least 1, got 0"),
    s2s_set("hidden-size-0", "model.hidden_size=0", "'model.hidden_size' must be at least 1"),
    Case("s2s-config-input-feeding-with-state", cli(*S2S_TRAIN, *sets("model.decoder=state",
                                                                       "model.input_feeding=true")), 2,
         "model.input_feeding needs model.decoder: attention (it is 'state')"),
    Case("s2s-config-state-bridge-zero", cli(*S2S_TRAIN, *sets("model.decoder=state", "model.bridge=zero")), 2,
         "model.bridge 'zero' leaves the state decoder nothing of the source"),
    Case("s2s-config-bidirectional-bridge-last", cli(*S2S_TRAIN, "--set", "model.bidirectional=true"), 2,
         "model.bridge 'last' needs a unidirectional encoder"),
    Case("s2s-config-tie-with-repeat", cli(*S2S_TRAIN, *sets("model.decoder=repeat", "model.tie_embeddings=true",
                                                             "model.trg_embedding_size=8")), 2,
         "model.tie_embeddings needs a decoder that embeds target tokens"),
    Case("s2s-recipe-lm-key", cli(*S2S_TRAIN, "--recipe", "{tmp}/r.yaml"), 2,
         "{tmp}/r.yaml:4: unknown config key 'train.bptt'",
         files={"r.yaml": "task: seq2seq\ntrain:\n  lr: 0.1\n  bptt: 35\n"}),
    Case("s2s-recipe-lm-section", cli(*S2S_TRAIN, "--recipe", "{tmp}/r.yaml"), 2,
         "{tmp}/r.yaml:2: unknown config key 'tokenizer'",
         files={"r.yaml": "task: seq2seq\ntokenizer:\n  kind: char\n"}),
    Case("s2s-recipe-of-the-lm", cli(*S2S_TRAIN, "--recipe", "{tmp}/r.yaml"), 2,
         "{tmp}/r.yaml:1: this recipe is for the task 'lm', not 'seq2seq'", files={"r.yaml": "task: lm\n"}),
    Case("s2s-recipe-lm-builtin", cli(*S2S_TRAIN, "--recipe", "demo"), 2, "this recipe is for the task 'lm'"),
    # ------------------------------------------------------------------------------ seq2seq: resume, --init-from
    Case("s2s-resume-change-decoder", cli("train", "seq2seq", "--out", "{tmp}/mc", "--resume", "--set",
                                          "model.decoder=state"), 2,
         "cannot change 'model.decoder' when resuming ('attention' in the run, 'state' asked for", files=S2S_COPY),
    Case("s2s-resume-lm-key", cli("train", "seq2seq", "--out", "{tmp}/mc", "--resume", "--set", "train.bptt=3"), 2,
         "unknown config key 'train.bptt'", files=S2S_COPY),
    Case("s2s-resume-as-lm", cli("train", "lm", "--out", "{tmp}/mc", "--resume"), 2,
         "{tmp}/mc/config.yaml: the run in this folder is a seq2seq run, not lm", files=S2S_COPY),
    Case("s2s-init-from-strict-other-shape", cli(*S2S_TRAIN, "--set", "model.hidden_size=12", "--init-from",
                                                  "{s2s_model}"), 2,
         "--init-from (same task, strict) needs the same model and vocabulary"),
    Case("s2s-init-prefix-not-in-the-model", cli(*S2S_TRAIN, "--init-from", "{model}", "--init-prefix", "xyz"), 2,
         "--init-prefix 'xyz': the new model has no tensor under 'xyz.' (its parts: decoder, encoder)"),
    Case("s2s-init-from-not-a-model", cli(*S2S_TRAIN, "--init-from", "{tmp}"), 2,
         "{tmp}: not a complete model directory: 'config.yaml' is missing"),
    # an LM's names (embedding, rnns, output) are none of a seq2seq model's: without --init-prefix nothing is
    # copied, and a run "initialised" from a model it took nothing of is a mistake to stop at
    Case("s2s-init-from-an-lm-copies-nothing", cli(*S2S_TRAIN, "--init-from", "{model}"), 2, "--init-from"),
    Case("lm-init-from-a-seq2seq-model-copies-nothing", cli(*TRAIN, "--init-from", "{s2s_model}"), 2,
         "--init-from"),
    # ------------------------------------------------------------------------------ seq2seq: the model directory
    damaged("src-vocab-cut", "src_vocab.json", ("truncate", 30),
            "{tmp}/mc/src_vocab.json: vocabulary file is corrupt"),
    damaged("src-vocab-edited", "src_vocab.json", ("edit", '"cat"', '"cats"'),
            "{tmp}/mc/src_vocab.json: was changed since the weights were saved"),
    damaged("src-vocab-missing", "src_vocab.json", ("delete",),
            "{tmp}/mc: not a complete model directory: 'src_vocab.json' is missing"),
    damaged("src-vocab-binary", "src_vocab.json", b"\xff\xfe\x00",
            "{tmp}/mc/src_vocab.json: vocabulary file is corrupt"),
    damaged("src-vocab-a-folder", "src_vocab.json", ("mkdir",), "{tmp}/mc/src_vocab.json"),
    # another vocabulary (of another size) put in its place: the vocabulary changed, not the weights or config
    damaged("src-vocab-of-an-lm", "src_vocab.json", ("copy", "{model}/vocab.json"), "{tmp}/mc/src_vocab.json"),
    damaged("trg-tokenizer-cut", "trg_tokenizer.json", ("truncate", 5), "{tmp}/mc/trg_tokenizer.json"),
    damaged("weights-cut", "model.safetensors", ("truncate", 100), "{tmp}/mc/model.safetensors"),
    # ------------------------------------------------------------------------------ seq2seq: the other task's model
    Case("generate-a-seq2seq-model", cli("generate", "{s2s_model}"), 2,
         "{s2s_model}: is a seq2seq model: it does not generate (its command is rnnkit translate)"),
    Case("translate-an-lm", cli("translate", "{model}", "the cat"), 2,
         "{model}: is an lm model: it does not translate (its command is rnnkit generate)"),
    Case("translate-a-classifier", cli("translate", "{classifier}", "x y"), 2,
         "{classifier}: is a classify model: it does not translate (its command is rnnkit classify)"),
    Case("classify-a-seq2seq-model", cli("classify", "{s2s_model}", "the cat"), 2,
         "{s2s_model}: is a seq2seq model: it does not classify (its command is rnnkit translate)"),
    Case("evaluate-an-lm-with-src-ref", cli("evaluate", "{model}", "--src", "{valid}", "--ref", "{valid}"), 2,
         "--src {valid} --ref {valid} (rnnkit evaluate of an lm model takes no such option)"),
    # ------------------------------------------------------------------------------ translate: arguments
    translate("beam-0", "{s2s_text}", "--beam", "0", message="beam must be at least 1, got 0"),
    translate("beam-negative", "{s2s_text}", "--beam", "-3", message="beam must be at least 1, got -3"),
    translate("n-best-over-beam", "{s2s_text}", "--beam", "2", "--n-best", "3",
              message="n_best (3) needs a beam at least as wide (beam 2)"),
    translate("n-best-0", "{s2s_text}", "--n-best", "0", message="n_best must be at least 1, got 0"),
    translate("batch-size-0", "{s2s_text}", "--batch-size", "0", message="batch_size must be at least 1, got 0"),
    translate("beam-not-a-number", "{s2s_text}", "--beam", "wide", message="invalid int value: 'wide'"),
    translate("temperature-0", "{s2s_text}", "--temperature", "0", message="temperature must be > 0"),
    translate("top-p-2", "{s2s_text}", "--top-p", "2", message="top-p must be in (0, 1]"),
    translate("sampling-with-beam", "{s2s_text}", "--temperature", "0.5", "--beam", "3",
              message="does not combine with a beam > 1"),
    translate("max-length-ratio-negative", "{s2s_text}", "--max-length-ratio", "-1",
              message="max_length_ratio must be >= 0"),
    translate("max-length-extra-negative", "{s2s_text}", "--max-length-extra", "-1",
              message="max_length_extra must be at least 0"),
    translate("max-length-ratio-nan", "{s2s_text}", "--max-length-ratio", "nan", message="max_length_ratio"),
    translate("max-length-ratio-inf", "{s2s_text}", "--max-length-ratio", "inf", message="max_length_ratio"),
    translate("alpha-nan", "{s2s_text}", "--beam", "2", "--alpha", "nan", message="alpha"),
    translate("alpha-negative", "{s2s_text}", "--beam", "3", "--alpha", "-100", message="alpha"),
    translate("seed-beyond-64-bits", "{s2s_text}", "--temperature", "0.5", "--seed", str(2**64), message="seed"),
    # a limit or a beam that would need terabytes: one clear error, not an allocator's traceback
    translate("max-length-ratio-huge", "{s2s_text}", "--max-length-ratio", "1e12", message="max_length_ratio",
              isolate=True),
    translate("max-length-extra-huge", "{s2s_text}", "--max-length-extra", "1000000000",
              message="max_length_extra", isolate=True),
    translate("beam-huge", "{s2s_text}", "--beam", "100000000", message="beam", isolate=True),
    translate("text-and-input", "{s2s_text}", "--input", "{tmp}/in.txt",
              message="give the sentences as TEXT arguments or as --input FILE, not both", files={"in.txt": "a\n"}),
    translate("attention-plot-in-a-missing-folder", "{s2s_text}", "--attention-plot", "{tmp}/no/a.png",
              message="--attention-plot: {tmp}/no does not exist"),
    # ------------------------------------------------------------------------------ translate: input
    translate("over-long-text", "{s2s_text}", LONG_INPUT,
              message="input line 2: 12 tokens, more than the model's limit of 10 (data.max_src_length)"),
    translate("over-long-input-line", "--input", "{tmp}/in.txt",
              message="{tmp}/in.txt:3: 12 tokens, more than the model's limit of 10 (data.max_src_length)",
              files={"in.txt": "{s2s_text}\n{s2s_text}\n" + LONG_INPUT + "\n"}),
    translate("over-long-input-line-into-output", "--input", "{tmp}/in.txt", "--output", "{tmp}/out.txt",
              message="{tmp}/in.txt:2: 12 tokens", files={"in.txt": "{s2s_text}\n" + LONG_INPUT + "\n"}),
    translate("input-missing", "--input", "{tmp}/nope.txt", message="{tmp}/nope.txt: file not found"),
    translate("input-latin1", "--input", "{tmp}/in.txt", message="{tmp}/in.txt:2: not UTF-8",
              files={"in.txt": b"the cat\ncaf\xe9\n"}),
    translate("input-empty", "--input", "{tmp}/in.txt", message="{tmp}/in.txt: file is empty", files={"in.txt": ""}),
    translate("input-a-folder", "--input", "{tmp}", message="{tmp}: is a directory"),
    translate("input-fifo", "--input", "{tmp}/pipe", message="{tmp}/pipe: is not a regular file",
              files={"pipe": ("fifo",)}, isolate=True),
    translate("output-a-folder", "{s2s_text}", "--output", "{tmp}", message="{tmp}: --output names a folder"),
    translate("output-in-a-missing-folder", "{s2s_text}", "--output", "{tmp}/no/out.txt",
              message="--output: {tmp}/no does not exist"),
    translate("output-a-symlink", "{s2s_text}", "--output", "{tmp}/link",
              message="--output names a symbolic link", files={"link": ("symlink", "{pairs}")}),
    # the translations written over the text they translate: the user's input is lost
    translate("output-is-the-input", "--input", "{tmp}/in.txt", "--output", "{tmp}/in.txt", message="--output",
              files={"in.txt": "{s2s_text}\n"}),
    Case("translate-model-missing", cli("translate", "{tmp}/nope", "a"), 2, "{tmp}/nope: model directory not found"),
    Case("translate-model-is-a-file", cli("translate", "{pairs}", "a"), 2, "{pairs}: model directory not found"),
    # ------------------------------------------------------------------------------ evaluate a seq2seq model
    Case("evaluate-s2s-src-without-ref", cli("evaluate", "{s2s_model}", "--src", "{tmp}/a.de"), 2,
         "give both --src and --ref", files={"a.de": "a\n"}),
    Case("evaluate-s2s-data-and-src", cli("evaluate", "{s2s_model}", "--data", "{pairs}", "--src", "{tmp}/a.de",
                                          "--ref", "{tmp}/a.en"), 2, "give --data FILE, or --src FILE --ref FILE",
         files={"a.de": "a\n", "a.en": "b\n"}),
    Case("evaluate-s2s-src-ref-line-counts", cli("evaluate", "{s2s_model}", "--src", "{tmp}/a.de", "--ref",
                                                 "{tmp}/a.en"), 2, "{tmp}/a.de: has 2 lines but {tmp}/a.en has 1",
         files={"a.de": "a\nb\n", "a.en": "b\n"}),
    Case("evaluate-s2s-ref-latin1", cli("evaluate", "{s2s_model}", "--src", "{tmp}/a.de", "--ref", "{tmp}/a.en"),
         2, "{tmp}/a.en:1: not UTF-8", files={"a.de": "a\n", "a.en": b"\xe9\n"}),
    Case("evaluate-s2s-no-tab", cli("evaluate", "{s2s_model}", "--data", "{tmp}/p.tsv"), 2,
         "{tmp}/p.tsv:2: no tab on this line", files={"p.tsv": "a\tb\nc\n"}),
    Case("evaluate-s2s-lm-text", cli("evaluate", "{s2s_model}", "--data", "{train}"), 2,
         "{train}:1: no tab on this line"),
    Case("evaluate-s2s-beam-0", cli("evaluate", "{s2s_model}", "--data", "{pairs}", "--beam", "0"), 2,
         "beam must be at least 1, got 0"),
    Case("evaluate-s2s-no-data", cli("evaluate", "{s2s_model}"), 2, "--data"),
    # ------------------------------------------------------------------------------ Python API: Translator
    *[Case(f"api-translate-{id_}", api("translate", **kwargs), expect, message)
      for id_, kwargs, expect, message in (
        ("texts-int", {"texts": 5}, TypeError, "texts must be a string or a list of strings"),
        ("texts-list-of-int", {"texts": [1]}, TypeError, "texts must be a string or a list of strings"),
        ("texts-tuple", {"texts": ("a",)}, TypeError, "texts must be a string or a list of strings"),
        ("beam-float", {"texts": "the cat", "beam": 2.0}, TypeError, "beam must be an int"),
        ("beam-bool", {"texts": "the cat", "beam": True}, TypeError, "beam must be an int"),
        ("beam-0", {"texts": "the cat", "beam": 0}, E, "beam must be at least 1, got 0"),
        ("n-best-over-beam", {"texts": "the cat", "n_best": 2}, E, "n_best (2) needs a beam at least as wide"),
        ("alpha-string", {"texts": "the cat", "beam": 2, "alpha": "1"}, TypeError, "alpha must be a number"),
        ("alpha-nan", {"texts": "the cat", "beam": 2, "alpha": float("nan")}, E, "alpha"),
        ("ratio-inf", {"texts": "the cat", "max_length_ratio": float("inf")}, E, "max_length_ratio"),
        ("alpha-negative", {"texts": "the cat", "beam": 3, "alpha": -100.0}, E, "alpha"),
        ("seed-beyond-64-bits", {"texts": "the cat", "temperature": 0.5, "seed": 2**64}, E, "seed"),
        ("on-progress-int", {"texts": "the cat", "on_progress": 5}, TypeError, "on_progress"),
        ("truncate-string", {"texts": "the cat", "truncate": "yes"}, TypeError, "truncate must be True or False"),
        ("batch-size-0", {"texts": "the cat", "batch_size": 0}, E, "batch_size must be at least 1"),
        ("seed-float", {"texts": "the cat", "temperature": 0.5, "seed": 1.5}, TypeError, "seed must be an int"),
        ("over-long", {"texts": ["the cat", LONG_INPUT]}, E, "input line 2: 12 tokens"),
      )],
    Case("api-attention-empty", api("attention", text=""), E, "attention: the text is empty"),
    Case("api-attention-list", api("attention", text=["a"]), TypeError, "attention: text must be a string"),
    Case("api-evaluate-s2s-src-without-ref", api("evaluate_seq2seq", src="{pairs}"), E, "give both --src and --ref"),
    Case("api-evaluate-s2s-no-tab", api("evaluate_seq2seq", path="{train}"), E, "{train}:1: no tab on this line"),
    Case("api-load-s2s-vocab-cut", api("load", model_dir="{tmp}/mc"), E,
         "{tmp}/mc/trg_vocab.json: vocabulary file is corrupt",
         files={**S2S_COPY, "mc/trg_vocab.json": ("truncate", 20)}),
    Case("api-train-s2s-unknown-lm-key", api("train", task="seq2seq", data="{pairs}", out="{tmp}/m",
                                             overrides=[*S2S_TINY, "train.bptt=5"]), E,
         "unknown config key 'train.bptt'"),
    # ------------------------------------------------------------------------------ output files (review s9, 1)
    # never replaced unasked (--overwrite), never the data read, never a file in a model directory
    Case("evaluate-json-is-the-data", cli("evaluate", "{classifier}", "--data", "{tmp}/e.jsonl", "--json",
                                          "{tmp}/e.jsonl"), 2,
         "{tmp}/e.jsonl: --json names the --data file: rnnkit does not write over its input", files=EVAL_FILES),
    Case("evaluate-json-is-the-data-overwrite", cli("evaluate", "{classifier}", "--data", "{tmp}/e.jsonl", "--json",
                                                    "./e.jsonl", "--overwrite"), 2,
         "--json names the --data file", files=EVAL_FILES),
    Case("evaluate-confusion-png-is-the-data-overwrite", cli("evaluate", "{classifier}", "--data", "{tmp}/e.jsonl",
                                                             "--confusion-png", "{tmp}/e.jsonl", "--overwrite"), 2,
         "{tmp}/e.jsonl: --confusion-png names the --data file", files=EVAL_FILES),
    Case("evaluate-json-in-the-data-folder", cli("evaluate", "{classifier}", "--data", "{tmp}/d", "--json",
                                                 "{tmp}/d/xy/m.json"), 2,
         "{tmp}/d/xy/m.json: --json lies in the --data folder: rnnkit does not write into its input",
         files={"d/xy/1.txt": "x y\n", "d/yx/1.txt": "y x\n"}),
    Case("evaluate-confusion-png-over-the-weights", cli("evaluate", "{tmp}/mc", "--data", "{tmp}/e.jsonl",
                                                        "--confusion-png", "{tmp}/mc/model.safetensors",
                                                        "--overwrite"), 2,
         "{tmp}/mc/model.safetensors: --confusion-png: {tmp}/mc is a model directory", files=CLASSIFIER_COPY),
    Case("evaluate-json-over-the-labels", cli("evaluate", "{tmp}/mc", "--data", "{tmp}/e.jsonl", "--json",
                                              "{tmp}/mc/labels.json", "--overwrite"), 2,
         "{tmp}/mc/labels.json: --json: {tmp}/mc is a model directory", files=CLASSIFIER_COPY),
    Case("evaluate-json-new-in-a-model-dir", cli("evaluate", "{classifier}", "--data", "{tmp}/e.jsonl", "--json",
                                                 "{tmp}/mc/checkpoint/m.json"), 2,
         "--json: {tmp}/mc is a model directory", files=CLASSIFIER_COPY),
    Case("evaluate-json-exists", cli("evaluate", "{classifier}", "--data", "{tmp}/e.jsonl", "--json", "{tmp}/m.json"),
         2, "{tmp}/m.json: --json: the file exists, and rnnkit does not replace a file unasked (give a new name, or "
         "--overwrite", files={**EVAL_FILES, "m.json": "mine\n"}),
    Case("evaluate-confusion-png-exists", cli("evaluate", "{classifier}", "--data", "{tmp}/e.jsonl", "--confusion-png",
                                              "{tmp}/c.png"), 2, "{tmp}/c.png: --confusion-png: the file exists",
         files={**EVAL_FILES, "c.png": "mine\n"}),
    # two outputs of one command naming one file: refused before the model loads (review2 #1)
    Case("evaluate-json-and-confusion-png-one-file", cli("evaluate", "{classifier}", "--data", "{tmp}/e.jsonl",
                                                         "--json", "{tmp}/same.out", "--confusion-png", "same.out"),
         2, "same.out: --json and --confusion-png name the same file", files=EVAL_FILES),
    Case("evaluate-json-and-confusion-png-one-file-overwrite", cli("evaluate", "{classifier}", "--data",
                                                                   "{tmp}/e.jsonl", "--json", "{tmp}/same.out",
                                                                   "--confusion-png", "same.out", "--overwrite"),
         2, "--json and --confusion-png name the same file", files=EVAL_FILES),
    translate("output-and-attention-plot-one-file", "{s2s_text}", "--output", "{tmp}/same.out", "--attention-plot",
              "same.out", "--overwrite", message="same.out: --output and --attention-plot name the same file"),
    Case("evaluate-lm-json-exists", cli("evaluate", "{model}", "--data", "{valid}", "--json", "{tmp}/m.json"), 2,
         "{tmp}/m.json: --json: the file exists", files={"m.json": "mine\n"}),
    Case("evaluate-lm-json-over-the-model-config", cli("evaluate", "{tmp}/mc", "--data", "{valid}", "--json",
                                                       "{tmp}/mc/config.yaml", "--overwrite"), 2,
         "--json: {tmp}/mc is a model directory", files=MODEL_COPY),
    Case("api-evaluate-classifier-confusion-png-exists", api("evaluate_classifier", path="{tmp}/e.jsonl",
                                                             confusion_png="{tmp}/c.png"), E,
         "{tmp}/c.png: --confusion-png: the file exists", files={**EVAL_FILES, "c.png": "mine\n"}),
    Case("api-evaluate-classifier-overwrite-not-bool", api("evaluate_classifier", path="{tmp}/e.jsonl",
                                                           confusion_png="{tmp}/c.png", overwrite="yes"), TypeError,
         "overwrite must be True or False, got str 'yes'", files=EVAL_FILES),
    translate("output-exists", "{s2s_text}", "--output", "{tmp}/o.txt", message="{tmp}/o.txt: --output: the file "
              "exists", files={"o.txt": "mine\n"}),
    translate("attention-plot-exists", "{s2s_text}", "--attention-plot", "{tmp}/a.png",
              message="{tmp}/a.png: --attention-plot: the file exists", files={"a.png": "mine\n"}),
    translate("output-is-the-input-overwrite", "--input", "{tmp}/in.txt", "--output", "{tmp}/in.txt", "--overwrite",
              message="--output names the --input file", files={"in.txt": "{s2s_text}\n"}),
    translate("output-in-the-model-dir", "{s2s_text}", "--output", "{tmp}/mc/out.txt", message="--output: {tmp}/mc is "
              "a model directory", files=S2S_COPY),
    # ------------------------------------------------------------------------------ labelled data (review s9)
    bad_labelled("csv-unclosed-quote", 'text,label\nx y,xy\n"y x,yx\nx c y,xy\n',
                 "{tmp}/t.csv:3: a quoted field opened on this line runs to the end of the file (line 4): is a quote "
                 "left open?", "t.csv", ("--valid", "{tmp}/t.csv")),
    # a quote left open in the last column: the row's cell count is right, the rest of the file was its text (#1)
    bad_labelled("csv-quote-open-to-the-end", 'label,text\nxy,x y\nyx,"y x\nxy,x c y\nyx,c x\n',
                 "{tmp}/t.csv:3: a quoted field opened on this line runs to the end of the file (line 5): is a quote "
                 "left open?", "t.csv", ("--valid", "{tmp}/t.csv")),
    Case("evaluate-classifier-csv-quote-open-to-the-end", cli("evaluate", "{classifier}", "--data", "{tmp}/e.csv"), 2,
         "{tmp}/e.csv:3: a quoted field opened on this line runs to the end of the file (line 4)",
         files={"e.csv": 'label,text\nxy,x y\nyx,"y x\nxy,x c y\n'}),
    Case("classify-input-csv-quote-open-to-the-end", cli("classify", "{classifier}", "--input", "{tmp}/in.csv"), 2,
         "{tmp}/in.csv:2: a quoted field opened on this line runs to the end of the file (line 3)",
         files={"in.csv": 'text\n"x y\ny x\n'}),
    # a column named twice (after the lookup's stripping): which one is the text or the label is anyone's guess (#2)
    bad_labelled("csv-text-column-twice", "label,text,text\nxy,x y,a\nyx,y x,b\n",
                 "{tmp}/t.csv:1: the header names the column 'text' twice (columns 2 and 3; data.text_field)", "t.csv",
                 ("--set", "data.train={tmp}/t.csv")),
    Case("evaluate-classifier-csv-label-column-twice", cli("evaluate", "{classifier}", "--data", "{tmp}/e.csv"), 2,
         "{tmp}/e.csv:1: the header names the column 'label' twice (columns 1 and 3; data.label_field)",
         files={"e.csv": "label,text, label\nxy,x y,yx\n"}),
    Case("classify-input-tsv-text-column-twice", cli("classify", "{classifier}", "--input", "{tmp}/in.tsv"), 2,
         "{tmp}/in.tsv:1: the header names the column 'text' twice (columns 1 and 2; data.text_field)",
         files={"in.tsv": "text\ttext\nx y\ty x\n"}),
    # IDX: Kaggle's names (.idx3-ubyte) find their labels; the name expected is never the images file's own (#9)
    Case("classify-train-idx-kaggle-name-no-labels", cli(*TRAIN_CLS[:3], "{tmp}/a-images.idx3-ubyte.gz",
                                                         *TRAIN_CLS[4:]), 2,
         "{tmp}/a-images.idx3-ubyte.gz: no labels file beside the images (a-labels.idx1-ubyte.gz expected)",
         files={"a-images.idx3-ubyte.gz": idx_bytes(b"\0\0\x08\x03", [2, 2, 2], 8)}),
    Case("classify-train-idx-name-without-images", cli(*TRAIN_CLS[:3], "{tmp}/a.idx.gz", *TRAIN_CLS[4:]), 2,
         "{tmp}/a.idx.gz: no labels file found for these images: the labels are found by name "
         "(...-images-idx3-ubyte -> ...-labels-idx1-ubyte)",
         files={"a.idx.gz": idx_bytes(b"\0\0\x08\x03", [2, 2, 2], 8)}),
    Case("classify-train-idx-wrong-magic", cli(*TRAIN_CLS[:3], "{tmp}/a-images-idx3-ubyte.gz", *TRAIN_CLS[4:]), 2,
         "{tmp}/a-images-idx3-ubyte.gz: not an IDX images file (magic 0x00000804; expected 0x00000803)",
         files={"a-images-idx3-ubyte.gz": idx_bytes(b"\0\0\x08\x04", [2, 2, 2], 8)}),
    Case("classify-train-idx-labels-wrong-magic", cli(*TRAIN_CLS[:3], "{tmp}/a-images-idx3-ubyte.gz",
                                                      *TRAIN_CLS[4:]), 2,
         "{tmp}/a-labels-idx1-ubyte.gz: not an IDX labels file (magic 0x00000803; expected 0x00000801)",
         files={"a-images-idx3-ubyte.gz": idx_bytes(b"\0\0\x08\x03", [2, 2, 2], 8),
                "a-labels-idx1-ubyte.gz": idx_bytes(b"\0\0\x08\x03", [2, 1, 1], 2)}),
    # arrays: an unknown label names its row, as every other label error does (#10)
    Case("evaluate-classifier-npz-unknown-label", cli("evaluate", "{numeric_classifier}", "--data", "{tmp}/e.npz"), 2,
         "{tmp}/e.npz: unknown label 'zz' (y[1]; the model's labels: a, b)",
         files={"e.npz": npz_bytes(X=[[[0.0, 1.0]]] * 2, y=["a", "zz"])}),
    Case("evaluate-classifier-idx-unknown-label", cli("evaluate", "{numeric_classifier}", "--data",
                                                      "{tmp}/e-images-idx3-ubyte.gz"), 2,
         "{tmp}/e-images-idx3-ubyte.gz: unknown label '7' (image 0; the model's labels: a, b)",
         files={"e-images-idx3-ubyte.gz": idx_bytes(b"\0\0\x08\x03", [2, 2, 2], 8),
                "e-labels-idx1-ubyte.gz": idx_bytes(b"\0\0\x08\x01", [2], b"\x07\x01")}),
    # texts answered one by one (answer k is text k): a blank line (row) followed by a text is an error (#10)
    Case("classify-input-jsonl-blank-line", cli("classify", "{classifier}", "--input", "{tmp}/in.jsonl"), 2,
         "{tmp}/in.jsonl:2: blank line: answer k is text k here, so only blank lines at the end of the file are "
         "skipped",
         files={"in.jsonl": '{"text": "x y"}\n\n{"text": "y x"}\n'}),
    Case("classify-input-csv-blank-row", cli("classify", "{classifier}", "--input", "{tmp}/in.csv"), 2,
         "{tmp}/in.csv:3: blank row: answer k is text k here, so only blank rows at the end of the file are skipped",
         files={"in.csv": "text\nx y\n\ny x\n"}),
    # a class the held-out split draws wholly out of training (split_seed 8 draws the last example): said as such,
    # not as an unknown label on a line of the training file
    bad_labelled("rare-class-drawn-into-validation", LABELLED + RARE, "{tmp}/t.jsonl: the class 'zz' has 1 example, "
                 "all drawn into the validation split (data.valid_fraction 0.1): none is left to train on; give it "
                 "more examples, another data.split_seed, a smaller share held out, or a --valid file",
                 extra=sets("data.split_seed=8")),
    bad_labelled("rare-class-drawn-into-test", LABELLED + RARE, "the class 'zz' has 1 example, all drawn into the "
                 "test split (data.valid_fraction 0.1 and data.test_fraction 0.2)",
                 extra=sets("data.split_seed=8", "data.test_fraction=0.2")),
    bad_labelled("rare-class-at-the-tail", LABELLED + RARE, "the class 'zz' has 1 example, all drawn into the "
                 "validation split (data.valid_fraction 0.1): none is left to train on; give it more examples, "
                 "data.split random,", extra=sets("data.split=tail")),
    bad_labelled("valid-fraction-leaves-one", LABELLED, "{tmp}/t.jsonl: only 1 of its 20 examples left to train on "
                 "after data.valid_fraction 0.99 held out, too few for 2 classes: lower data.valid_fraction or give a "
                 "--valid file", extra=sets("data.valid_fraction=0.99")),
    bad_labelled("label-field-is-the-text", "".join(f'{{"text": "{"review " * 20}{k}", "label": "xy"}}\n'
                                                    for k in range(20)),
                 "{tmp}/t.jsonl: 20 classes among 20 examples (one is 'review review review review review review "
                 "review review rev... (str)): a class needs examples to train on and to validate",
                 extra=sets("data.label_field=text")),
    bad_labelled("label-nan", LABELLED + '{"text": "x y", "label": NaN}\n',
                 "{tmp}/t.jsonl:21: the label is nan: not a class (a label must be a finite number or a string)"),
    bad_labelled("label-infinity", LABELLED + '{"text": "x y", "label": -Infinity}\n', "{tmp}/t.jsonl:21: the label "
                 "is -inf: not a class"),
    bad_labelled("label-with-a-tab", LABELLED + '{"text": "x y", "label": "x\\ty"}\n', "{tmp}/t.jsonl:21: the label "
                 "'x\\ty' holds a control character (a tab or line break): rnnkit prints one label per line"),
    bad_labelled("label-with-a-line-break", LABELLED + '{"text": "x y", "label": "x\\ny"}\n',
                 "{tmp}/t.jsonl:21: the label 'x\\ny' holds a control character"),
    bad_labelled("one-class-init-from-the-same-task", '{"text": "x y", "label": "xy"}\n' * 20,
                 "{tmp}/t.jsonl: every training example has the label 'xy': a classifier needs two classes at least",
                 extra=("--init-from", "{classifier}")),
    Case("classify-train-npz-y-nan", cli(*TRAIN_NPZ), 2, "{tmp}/t.npz: y[1] is nan: not a class",
         files={"t.npz": npz_bytes(X=[[[1.0]], [[2.0]]], y=[0.0, float("nan")])}),
    Case("classify-train-npz-y-bytes-not-utf8", cli(*TRAIN_NPZ), 2, "{tmp}/t.npz: y[0] is a byte string that is not "
         "UTF-8", files={"t.npz": npz_bytes(X=[[[1.0]], [[2.0]]], y=[b"\xff", b"a"])}),
    Case("classify-train-npz-y-objects", cli(*TRAIN_NPZ), 2, "{tmp}/t.npz: holds an object array as y: store the "
         "labels as numbers or strings", files={"t.npz": NPZ_OBJECT_LABELS}),
    Case("classify-train-npz-y-complex", cli(*TRAIN_NPZ), 2, "{tmp}/t.npz: y[0] must be a string or a number, got "
         "(1+2j)", files={"t.npz": npz_bytes(X=[[[1.0]], [[2.0]]], y=[1 + 2j, 1j])}),
    Case("classify-train-npz-x-complex", cli(*TRAIN_NPZ), 2, "{tmp}/t.npz: X holds complex numbers (complex128): the "
         "features must be real", files={"t.npz": npz_bytes(X=[[[1j]], [[2.0]]], y=["a", "b"])}),
    Case("classify-input-after-texts", cli("classify", "{classifier}", "--input", "{tmp}/in.txt", "extra"), 2,
         "give the texts to classify or --input FILE (one of them)", files={"in.txt": "x y\n"}),
]


# ---------------------------------------------------------------------------------------------------- running

@pytest.fixture(scope="module")
def windows_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny seed-002-style model: 3 words predict the next (data.mode windows)."""
    out = tmp_path_factory.mktemp("windows") / "model"
    rnnkit.train("lm", data=str(tiny_model.parent / "train.txt"), out=out,
                 overrides=[*TINY, "data.mode=windows", "train.max_steps=2"])
    return out


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Tiny classifiers: of texts (labels xy, yx) and of numeric sequences (2 features per step)."""
    root = tmp_path_factory.mktemp("classifiers")
    (root / "t.jsonl").write_text(LABELLED, encoding="utf-8")
    (root / "t.npz").write_bytes(GOOD_NPZ["t.npz"])
    for name, data in (("classifier", "t.jsonl"), ("numeric_classifier", "t.npz")):
        rnnkit.train("classify", data=str(root / data), out=root / name, overrides=CLS_TINY)
    rnnkit.train("autoencoder", data=str(root / "t.jsonl"), out=root / "autoencoder", overrides=AE_TINY)
    return {name: str(root / name) for name in ("classifier", "numeric_classifier", "autoencoder")}


@pytest.fixture(scope="module")
def s2s_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny seq2seq attention model: the LM corpus's sentences to themselves reversed, sources of at most
    10 tokens (data.max_src_length); ``pairs.tsv`` beside it is its training data."""
    root = tmp_path_factory.mktemp("s2s")
    lines = (tiny_model.parent / "train.txt").read_text(encoding="utf-8").split("\n")
    pairs = root / "pairs.tsv"
    pairs.write_text("".join(f"{line}\t{' '.join(reversed(line.split()))}\n" for line in lines if line),
                     encoding="utf-8")
    out = root / "model"
    rnnkit.train("seq2seq", data=str(pairs), out=out, overrides=[*S2S_TINY, "data.max_src_length=10"])
    return out


@pytest.fixture(scope="module")
def inputs(tiny_model: Path, windows_model: Path, classifiers: dict[str, str], s2s_model: Path) -> dict[str, str]:
    """The shared, read-only inputs of the placeholders."""
    return {"model": str(tiny_model), "windows_model": str(windows_model),
            "train": str(tiny_model.parent / "train.txt"), "valid": str(tiny_model.parent / "valid.txt"),
            **classifiers, "s2s_model": str(s2s_model), "pairs": str(s2s_model.parent / "pairs.tsv"),
            "s2s_text": "the cat sees a dog"}


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, filled in names.items():
            value = value.replace(f"{{{name}}}", filled)
        return value
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    if isinstance(value, tuple):
        return tuple(_fill(v, names) for v in value)
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


def _make_files(root: Path, files: dict[str, Any]) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            continue
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        elif content[0] == "copy":
            (shutil.copytree if Path(content[1]).is_dir() else shutil.copy)(content[1], path)
        elif content[0] == "edit":
            text = path.read_text(encoding="utf-8")
            assert content[1] in text, (relative, content[1])
            path.write_text(text.replace(content[1], content[2]), encoding="utf-8")
        elif content[0] == "truncate":
            path.write_bytes(path.read_bytes()[: content[1]])
        elif content[0] == "delete":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        elif content[0] == "sparse":
            with path.open("wb") as f:
                f.truncate(content[1])
        elif content[0] == "float64":
            _save_as_float64(path)
        elif content[0] == "nan":
            _save_with(path, content[1], content[2])
        elif content[0] in ("fifo", "mkdir", "symlink"):
            path.unlink(missing_ok=True)
            os.mkfifo(path) if content[0] == "fifo" else path.mkdir() if content[0] == "mkdir" else \
                path.symlink_to(content[1])
        else:
            raise AssertionError(f"unknown file maker {content[0]!r}")


def _save_as_float64(path: Path) -> None:
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(path), "np") as f:
        tensors = {name: f.get_tensor(name).astype("float64") for name in f.keys()}
        metadata = f.metadata()
    save_file(tensors, str(path), metadata=metadata)


def _save_with(path: Path, name: str, value: float) -> None:
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(path), "np") as f:
        tensors = {key: f.get_tensor(key) for key in f.keys()}
        metadata = f.metadata()
    tensors[name][...] = value
    save_file(tensors, str(path), metadata=metadata)


def _snapshot(roots: list[Path], skip: Path | None) -> dict[str, tuple]:
    """Every file under ``roots`` (but ``skip``): its kind, size, and content digest for small files."""
    state: dict[str, tuple] = {}
    for root in roots:
        paths = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in paths:
            if skip is not None and (path == skip or skip in path.parents):
                continue
            st = path.lstat()
            digest = ""
            if path.is_file() and not path.is_symlink() and st.st_size < (1 << 20):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            state[str(path)] = (st.st_mode, st.st_size if path.is_file() else 0, st.st_mtime_ns, digest)
    return state


def _one_error(stderr: str, message: str) -> None:
    """Exactly one error line, containing ``message``; argparse's usage lines may come before it."""
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error: " in ln]
    assert len(errors) == 1, stderr
    assert message in errors[0], f"{message!r} not in {errors[0]!r}"
    assert lines[-1] == errors[0] and all(ln.startswith(("usage:", "  ", "rnnkit")) for ln in lines[:-1]), stderr


@contextlib.contextmanager
def _bounded_address_space(headroom: int):
    """Lower this process's soft RLIMIT_AS to what it maps now + ``headroom`` while a row runs, so a
    regression that allocates a huge model fails with MemoryError instead of swapping the machine."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    mapped = int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = mapped + headroom if hard == resource.RLIM_INFINITY else min(mapped + headroom, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _run_cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse
            rc = e.code
    return rc, err.getvalue()


def _run_api(entry: str, kwargs: dict[str, Any], inputs: dict[str, str]) -> BaseException | None:
    from rnnkit.reference import load_numpy, train_numpy

    model, s2s_model = inputs["model"], inputs["s2s_model"]
    calls = {"train": rnnkit.train, "load": rnnkit.load, "train_numpy": train_numpy, "load_numpy": load_numpy,
             "evaluate": lambda **kw: rnnkit.load(model).evaluate(**kw),
             "generate": lambda **kw: rnnkit.load(model).generate(**kw),
             "generate_numpy": lambda **kw: load_numpy(model).generate(**kw),
             "classify": lambda **kw: rnnkit.load(inputs["classifier"]).classify(**kw),
             "classify_numeric": lambda **kw: rnnkit.load(inputs["numeric_classifier"]).classify(**kw),
             "reconstruct": lambda **kw: rnnkit.load(inputs["autoencoder"]).reconstruct(**kw),
             "translate": lambda **kw: rnnkit.load(s2s_model).translate(**kw),
             "attention": lambda **kw: rnnkit.load(s2s_model).attention(**kw),
             "evaluate_seq2seq": lambda **kw: rnnkit.load(s2s_model).evaluate(**kw),
             "evaluate_classifier": lambda **kw: rnnkit.load(inputs["classifier"]).evaluate(**kw)}
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            calls[entry](**kwargs)
    except Exception as e:  # noqa: BLE001 -- the row says which type it wants
        return e
    return None


_ISOLATED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
from rnnkit.cli import main
sys.exit(main({argv!r}))
"""


def _run_isolated(argv: list[str], cwd: Path) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    script = _ISOLATED.format(limit=ISOLATED_AS_LIMIT, argv=argv)
    done = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=ISOLATED_TIMEOUT)
    return done.returncode, done.stderr


def test_the_table_is_large_and_its_ids_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) >= 150, len(ids)
    assert len(set(ids)) == len(ids), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input(case: Case, inputs: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = {**inputs, "tmp": str(tmp_path)}
    _make_files(tmp_path, _fill(case.files, names))
    monkeypatch.chdir(tmp_path)
    watched = [tmp_path, *(Path(p) for p in inputs.values())]
    own = tmp_path / case.out if case.out else None
    before = _snapshot(watched, own)
    message = _fill(case.message, names)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    if case.run[0] == "cli" and case.isolate:
        rc, stderr = _run_isolated(_fill(case.run[1], names), tmp_path)
    elif case.run[0] == "cli":
        with _bounded_address_space(ADDRESS_SPACE_HEADROOM):
            rc, stderr = _run_cli(_fill(case.run[1], names))
    else:
        with _bounded_address_space(ADDRESS_SPACE_HEADROOM):
            error = _run_api(case.run[1], _fill(case.run[2], names), inputs)
    if case.run[0] == "cli":
        assert rc == case.expect, stderr
        _one_error(stderr, message)
    else:
        assert type(error) is case.expect, repr(error)
        assert message in str(error) and "\n" not in str(error), str(error)
    assert time.perf_counter() - start < (ISOLATED_TIMEOUT if case.isolate else MAX_SECONDS)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before < MAX_RSS_GROWTH
    after = _snapshot(watched, own)
    assert after == before, {k: (before.get(k), after.get(k)) for k in set(before) ^ set(after) or before}


def test_an_isolated_row_is_held_to_its_memory_limit(tmp_path: Path) -> None:
    """The harness itself: a run that needs more address space than the limit fails instead of swapping."""
    script = _ISOLATED.format(limit=ISOLATED_AS_LIMIT, argv=[]).replace(
        "from rnnkit.cli import main\nsys.exit(main([]))", "bytearray(8 << 30)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and "MemoryError" in done.stderr


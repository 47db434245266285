"""The ``rnnkit`` command line: one verb per job.

    rnnkit demo [--out DIR]
    rnnkit recipes
    rnnkit train lm --recipe NAME|FILE.yaml --data PATH --out DIR [--set key=value ...]
                    [--resume | --overwrite] [--init-from DIR [--init-prefix PREFIX] [--init-partial]]
                    [--device auto|cpu|cuda] [--backend torch|numpy]
    rnnkit generate DIR [--prompt TEXT] [-n N] [--greedy | --temperature T --top-k K --top-p P] [--seed S]
                    [--num-samples K] [--backend torch|numpy] [-v]     (prints as it generates)
    rnnkit translate DIR [TEXT ...] [--input FILE] [--output FILE [--overwrite]] [--beam N] [--n-best K] [--alpha A]
                    [--batch-size N] [--max-length-ratio R] [--truncate] [--attention-plot PNG]
                    [--temperature T --top-k K --top-p P --seed S] [-v]   (stdin line by line without TEXT)
    rnnkit evaluate DIR --data PATH [--json FILE [--overwrite]] [--backend torch|numpy] [-v]
    rnnkit evaluate DIR --src FILE --ref FILE [--beam N] [--json FILE]   (a seq2seq model; or --data PAIRS.tsv)
    rnnkit evaluate DIR --data PATH [--confusion-png FILE] [--json FILE] [--overwrite]   (a classifier)
    rnnkit classify DIR [TEXT ...] [--input FILE] [--probs] [--batch-size N]
    rnnkit reconstruct DIR [TEXT ...] [--input FILE] [--beam N] [--alpha A] [--batch-size N]   (an autoencoder)
    rnnkit gradcheck --cell rnn|gru|lstm
    rnnkit data toy TASK --out DIR [--n N] [--seed S] [--overwrite]

The verbs that run torch (demo, train, generate, translate, evaluate, classify, reconstruct) take
``--threads N``. Errors in the user's input print one ``error: ...`` line naming the file, line and problem (exit 2).

This module imports torch only inside the verbs that need it: ``rnnkit --help`` and ``rnnkit recipes``
start at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rnnkit.data.readers import shown_name
from rnnkit.data.vocab import CLASSIFY_OOV_WARN_RATE
from rnnkit.errors import RnnkitError

DEMO_PROMPT = "had a general"
DEMO_MAKER = "rnnkit demo"  # what the demo's ownership marker records


def _add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=0, metavar="N",
                   help="torch CPU threads (default: OMP_NUM_THREADS if set, else every usable core; "
                        "waiting threads sleep unless OMP_WAIT_POLICY says otherwise)")


def _add_train(sub) -> None:
    from rnnkit.tasks import task_names  # the task modules' names, from their files: no task is imported

    p = sub.add_parser("train", help="train a model", description="Train a model into a model directory.")
    p.add_argument("task", choices=task_names(),
                   help="the task (lm: language model; seq2seq: sequence to sequence; classify: sequence "
                        "classification; autoencoder: sequence autoencoder, a classifier's pretraining); its "
                        "recipes say which")
    p.add_argument("--recipe", help="built-in recipe name (see `rnnkit recipes`) or a YAML file")
    p.add_argument("--data", help="training data file, or a folder with train/valid/test files (seq2seq: TSV pairs, "
                                  "or aligned files by the recipe's data.src / data.trg; classify: a folder per "
                                  "class, aclImdb/train's unsup/ is no class, data.classes names them; autoencoder: "
                                  "a folder of .txt texts); a seq2seq toy recipe generates its data without it")
    p.add_argument("--valid", help="validation file (default: from --data, else held out of train)")
    p.add_argument("--test", help="test file, scored with the best weights after training (with --resume: added to "
                                   "a run that has none, unless it holds data.test_fraction of train out)")
    p.add_argument("--out", required=True,
                   help="model directory to write (new or empty, unless --resume or --overwrite); one run "
                        "writes it at a time")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.lr=0.5 (repeatable; a YAML value; nothing after = is "
                        "the empty string for a text key, e.g. --set train.freeze=, no file for a path key, e.g. "
                        "--set data.valid=, and an error for a number or a switch)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out exactly where its last checkpoint left it "
                        "(weights, optimizer, schedule, data position, RNG); --set may change train.lr, "
                        "the optimizer's betas, momentum and rmsprop_alpha, clip, epochs, max_steps, the "
                        "eval/save/log cadence, "
                        "early_stop, device, threads, progress, and repeat any other value unchanged; --test may "
                        "add a test file; the run's own --init-from options may be repeated (the same command), "
                        "and are not read again")
    p.add_argument("--init-from", metavar="DIR",
                   help="start from another model's weights; fresh optimizer and schedule. Same task: all of "
                        "them and its vocabulary (strict), unless --init-partial; another task: what matches "
                        "by name and shape, vocabulary rows by token, with a report (--set "
                        "tokenizer.from_init=true: its tokenizer and vocabulary too, every row copied)")
    p.add_argument("--init-prefix", metavar="PREFIX",
                   help="with --init-from: the part of the new model the source's weights go under, e.g. "
                        "encoder (an LM's embedding and stack into a classifier's encoder; with "
                        "model.joint=lm a full-softmax LM's output layer too)")
    p.add_argument("--init-partial", action="store_true",
                   help="with --init-from of the same task: copy what matches (the new run builds its own "
                        "vocabulary and may change sizes) instead of requiring the same model")
    p.add_argument("--overwrite", action="store_true",
                   help="start again in an --out that rnnkit made: remove its files (never anyone else's) first")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: the recipe's (auto)")
    p.add_argument("--backend", choices=["torch", "numpy"], default="torch",
                   help="numpy (language models only): the from-scratch NumPy reference (rnnkit.reference), SGD only")
    _add_threads(p)


def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="generate text with a language model",
                       description="Continue a prompt with a trained language model.")
    p.add_argument("model", help="model directory")
    p.add_argument("--prompt", default="", help="text to continue (default: start of a line/sentence)")
    p.add_argument("-n", type=int, default=32,
                   help="tokens to generate at most per sample (default 32); printed as they come, and a "
                        "progress bar on a terminal when the output goes to a file; Ctrl-C keeps what was printed")
    p.add_argument("--greedy", action="store_true", help="always take the most likely token")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    p.add_argument("--top-k", type=int, default=0, help="sample among the k most likely tokens (0 = all)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling threshold (1.0 = off)")
    p.add_argument("--seed", type=int, help="random seed, for repeatable samples")
    p.add_argument("--num-samples", type=int, default=1,
                   help="how many continuations (default 1), drawn up to 64 at a time, each printed when done")
    p.add_argument("--sentence", action="store_true",
                   help="seed-001 sentence mode: a whole sentence from <bos>, never <unk>, to <eos>")
    p.add_argument("--min-length", type=int, default=0, help="at least this many tokens before <eos> may end a sample")
    p.add_argument("--no-stop", action="store_true",
                   help="go on past <eos> (printed as a line break) for all -n tokens")
    p.add_argument("--allow-unk", action="store_true", help="read prompt words outside the vocabulary as <unk>")
    p.add_argument("--include-prompt", action="store_true",
                   help="print the prompt, as the model reads it, before each sample")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.add_argument("--backend", choices=["torch", "numpy"], default="torch",
                   help="numpy: run the model on the from-scratch NumPy reference (float64, CPU)")
    _add_threads(p)
    p.add_argument("-v", "--verbose", action="store_true", help="say on stderr which kernel runs the model")


def _add_translate(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "translate", help="translate text with a sequence-to-sequence model",
        description="Translate with a sequence-to-sequence model: the TEXT arguments, the lines of --input FILE "
                    "(batched), or else standard input line by line, each line translated and printed as it comes "
                    "(interactively or in a pipe). One output line per input line; with --n-best K, K lines per input, "
                    "best first: LINE<TAB>TEXT, LINE the input's number from 1. Source tokens outside the model's "
                    "vocabulary are read as <unk> and counted on stderr.")
    p.add_argument("model", metavar="MODEL", help="model directory (of a seq2seq model)")
    p.add_argument("text", nargs="*", metavar="TEXT",
                   help="sentences to translate, one per argument (`--` before one that starts with -)")
    p.add_argument("--input", metavar="FILE",
                   help="translate the lines of FILE (UTF-8, .gz ok), in length-sorted batches; a progress bar on "
                        "stderr when it is a terminal and the output goes elsewhere")
    p.add_argument("--output", metavar="FILE",
                   help="write the translations to FILE (a new file, or with --overwrite a plain file; written whole "
                        "when all are done, so an interruption leaves it as it was) instead of standard output")
    p.add_argument("--beam", type=int, default=1, metavar="N", help="beam size (default 1: greedy search)")
    p.add_argument("--n-best", type=int, default=1, metavar="K",
                   help="print the K best translations of each input (at most --beam), as LINE<TAB>TEXT lines")
    p.add_argument("--alpha", type=float, default=1.0, metavar="A",
                   help="beam search length penalty ((5 + length) / 6) ** A (GNMT; default 1.0, 0 = none)")
    p.add_argument("--batch-size", type=int, default=64, metavar="N", help="sentences translated at once (default 64)")
    p.add_argument("--max-length-ratio", type=float, metavar="R",
                   help="at most R x the source length + --max-length-extra output tokens (default: the model's "
                        "train.max_length_ratio)")
    p.add_argument("--max-length-extra", type=int, metavar="N",
                   help="tokens allowed beyond R x the source length (default: the model's train.max_length_extra)")
    p.add_argument("--truncate", action="store_true",
                   help="cut a source longer than the model's limit (data.max_src_length) with a warning, instead of "
                        "an error naming its line")
    p.add_argument("--attention-plot", metavar="PNG",
                   help="draw the attention weights of the first sentence (first non-blank TEXT or line) as a heatmap "
                        "(an attention model only; a new file, or with --overwrite a plain file)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the --output / --attention-plot file when it exists (never the --input file, nor a "
                        "file in a model directory)")
    p.add_argument("--temperature", type=float, metavar="T",
                   help="sample each token (with --beam 1) at this temperature instead of taking the most likely")
    p.add_argument("--top-k", type=int, metavar="K", help="sample among the K most likely tokens (with --beam 1)")
    p.add_argument("--top-p", type=float, metavar="P", help="nucleus sampling threshold (with --beam 1)")
    p.add_argument("--seed", type=int, help="random seed of sampling, for repeatable samples")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    _add_threads(p)
    p.add_argument("-v", "--verbose", action="store_true", help="say on stderr which kernels run the model")
    return p


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score a model on data with its task's metrics (LM: perplexity; bits per "
                                        "char for char models; seq2seq: BLEU, chrF, accuracy, perplexity; "
                                        "classify: accuracy, macro-F1, per-class scores)",
                       description="Score a model on data with its task's standard metrics, printed one per line "
                                   "and as one JSON line. A task may take options of its own: they are listed below "
                                   "the common ones, one section per task, and a model of another task refuses them. A "
                                   "seq2seq model also prints sacrebleu's signatures of BLEU and chrF; a classifier "
                                   "prints a per-class table and its confusion matrix, and for a text model what it "
                                   "reads as <unk> (JSON: oov, the tokens; oov_rate, their share of the tokens it "
                                   "reads; oov_texts, the texts with no known token); it warns on stderr about texts "
                                   "out of its vocabulary as classify does.",
                       add_help=False)
    p.add_argument("-h", "--help", action=_TaskOptionsHelp,
                   help="show this help message, each task's own options included, and exit")
    p.add_argument("model", help="model directory")
    p.add_argument("--data", help="data file read like the training data (an autoencoder's: by the file's name, as "
                                  "reconstruct --input; required unless the model's task takes its data from options "
                                  "of its own: a seq2seq model also takes --src FILE --ref FILE)")
    p.add_argument("--batch-size", type=int, help="sequences per batch (default: the training config's)")
    p.add_argument("--max-lines", type=int, default=0,
                   help="score only the first N lines (sentences, for models that split reviews; a classifier's "
                        "folder per class: N files drawn evenly from its classes); default: all")
    p.add_argument("--json", dest="json_out",
                   help="also write the metrics to this JSON file (a new file, or with --overwrite a plain file; "
                        "never a link or device)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the --json (and a classifier's --confusion-png) file when it exists (never the data "
                        "read, nor a file in a model directory)")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.add_argument("--backend", choices=["torch", "numpy"], default="torch",
                   help="numpy (language models only): run the model on the from-scratch NumPy reference "
                        "(float64, CPU)")
    _add_threads(p)
    p.add_argument("-v", "--verbose", action="store_true", help="say on stderr which kernel runs the model")


class _TaskOptionsHelp(argparse.Action):
    """``rnnkit evaluate --help``: the common options, then a section per task with the options its loaded class
    adds (``add_evaluate_arguments``). They are only shown here: :func:`_task_options` parses them once the model's
    task is known, so a model of another task refuses them. Listing them imports the tasks (and torch), which this
    help alone pays for: building the parser stays light."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, default: str = argparse.SUPPRESS,
                 help: str | None = None) -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from rnnkit.tasks import all_tasks

        parser.print_help()
        for task in all_tasks():
            shown = argparse.ArgumentParser(prog=parser.prog, usage=argparse.SUPPRESS, add_help=False)
            task.loaded_class.add_evaluate_arguments(
                shown.add_argument_group(f"options of {_a_model(task.name)} (refused for other models)"))
            section = shown.format_help()
            if section.strip():
                print(f"\n{section}", end="")
        parser.exit()


def _add_classify(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("classify", help="label texts or sequences with a trained classifier",
                       description="Label texts (or, for a numeric model, sequences) with a trained classifier: one "
                                   "line per input, the label, or with --probs a JSON object of the label and every "
                                   "class's probability. Inputs out of a text model's vocabulary are warned about on "
                                   "stderr (their tokens read as <unk> when over "
                                   f"{CLASSIFY_OOV_WARN_RATE:.0%} of the tokens the model reads, after its "
                                   "data.max_length; the texts read wholly as <unk>, whose labels are guesses); the "
                                   "labels are printed all the same.")
    p.add_argument("model", help="model directory")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify (or give --input)")
    p.add_argument("--input", metavar="FILE",
                   help="classify every example of a file: one text per line (a blank line is an error: answer k "
                        "is line k), JSONL (the text field), CSV/TSV with a "
                        "header, or .npz / IDX for a numeric model; or of a folder's .txt files (those of each "
                        "sub-folder, unsup/ too, or its own), each line then 'FILE<tab>LABEL' (--probs: a \"file\" "
                        "key), in folder and file-name order; a progress bar on a terminal")
    p.add_argument("--probs", action="store_true", help="print each class's probability too (JSON lines)")
    p.add_argument("--batch-size", type=int, help="inputs per batch (default: the training config's eval_batch_size)")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.set_defaults(backend="torch")
    _add_threads(p)
    return p


def _add_reconstruct(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("reconstruct", help="decode texts back from an autoencoder's encoder state",
                       description="Encode each text with a trained sequence autoencoder (rnnkit train autoencoder) "
                                   "and decode it again from the encoder's final state, greedily or by beam search: "
                                   "one reconstruction per line, what the state holds of the text (an empty one is "
                                   "explained on stderr).")
    p.add_argument("model", help="model directory (an autoencoder)")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to reconstruct (or give --input)")
    p.add_argument("--input", metavar="FILE",
                   help="reconstruct every text of a file, read by its name: JSONL (.jsonl, .jsonl.gz) or CSV / TSV "
                        "(.csv, .tsv) with the training's data.text_field, a folder of .txt files (one text each), "
                        "else one text per line")
    p.add_argument("--beam", type=int, default=1, metavar="N", help="beam size (default 1: greedy)")
    p.add_argument("--alpha", type=float, default=1.0, metavar="A",
                   help="beam search length penalty ((5 + length) / 6) ** A, as translate's (GNMT; default 1.0, 0 = "
                        "none: a wide beam then finds the empty text likeliest)")
    p.add_argument("--batch-size", type=int, help="texts per batch (default: the training config's eval_batch_size)")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.set_defaults(backend="torch")
    _add_threads(p)
    return p


def _add_data(sub) -> None:
    from rnnkit.data.toy import MANIFEST, TASKS

    p = sub.add_parser("data", help="make data sets", description="Make data sets.")
    kinds = p.add_subparsers(dest="kind", required=True)
    toy = kinds.add_parser("toy", help="seed 004's toy seq2seq tasks as train/valid/test TSV pairs",
                           description="Write a toy sequence-to-sequence task as TSV pairs of space-separated tokens: "
                                       "DIR/train.tsv, valid.tsv and test.tsv (80/10/10, distinct sources) and "
                                       f"DIR/{MANIFEST} (how they were made).")
    toy.add_argument("task", choices=list(TASKS),
                     help="copy / reverse / sort: 3-10 digits; digits-to-words: 1-5 numbers 0-99 -> English words; "
                          "pig-latin: the letters of a made-up word -> its Pig Latin")
    toy.add_argument("--out", required=True, help="folder to write (may hold other files)")
    toy.add_argument("--n", type=int, default=10000, help="pairs in all (default 10000: 8000/1000/1000)")
    toy.add_argument("--seed", type=int, default=0, help="random seed (default 0); same seed, same pairs")
    toy.add_argument("--overwrite", action="store_true",
                     help=f"replace split files that an earlier `rnnkit data toy` made (its {MANIFEST} is beside "
                          "them); never anyone else's")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnkit", description="Recurrent sequence models (RNN, GRU, LSTM) on PyTorch.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `rnnkit demo` to see it work; `rnnkit COMMAND --help` for each command.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo",
                          help="train a small LSTM on an embedded fable and generate (about 4-5 s on a 2-core CPU)")
    demo.add_argument("--out", default="runs/demo",
                      help="model directory (default runs/demo; a folder the demo made is replaced, nothing else)")
    _add_threads(demo)
    sub.add_parser("recipes", help="list the built-in recipes")
    _add_train(sub)
    _add_generate(sub)
    # TEXT may come after options: main() re-reads them
    parser.intermixed = {"translate": _add_translate(sub)}
    _add_evaluate(sub)
    parser.intermixed["classify"] = _add_classify(sub)
    parser.intermixed["reconstruct"] = _add_reconstruct(sub)
    _add_data(sub)
    grad = sub.add_parser("gradcheck", help="check the NumPy reference's gradients by finite differences")
    grad.add_argument("--cell", choices=["rnn", "gru", "lstm"], default="lstm")
    grad.add_argument("--layers", type=int, default=2)
    grad.add_argument("--threshold", type=float, default=1e-6, help="relative errors below this pass")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        with _sigterm_raises_terminated():
            return _run(argv)
    except BrokenPipeError:  # the reader of our output went away (`rnnkit ... | head`)
        return _reader_gone()
    except KeyboardInterrupt:  # Ctrl-C where a command keeps nothing to resume (reading, decoding, scoring)
        print("\ninterrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except Terminated:  # SIGTERM there, or while a run starts up (training saves a checkpoint and says so)
        print("terminated", file=sys.stderr)
        return 128 + signal.SIGTERM


class Terminated(BaseException):
    """SIGTERM outside training (where the trainer's own handler stops at a step boundary and saves): raised so
    that every ``finally`` and context manager (the model directory's lock, half-written files) cleans up."""


def _raise_terminated(signum, frame):
    raise Terminated


@contextlib.contextmanager
def _sigterm_raises_terminated():
    """While a command runs, SIGTERM raises :class:`Terminated` instead of killing the process silently; a
    handler someone else installed (a program calling :func:`main`) is left alone."""
    ours = threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    if ours:
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        if ours:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


#: the signals :func:`_signals_held` holds, each with the handler main installs and the exception it raises
_HOLDABLE = {signal.SIGINT: (signal.default_int_handler, KeyboardInterrupt),
             signal.SIGTERM: (_raise_terminated, Terminated)}


@contextlib.contextmanager
def _signals_held():
    """Ctrl-C and SIGTERM during the block are held, and the first one raised (KeyboardInterrupt, Terminated) when it
    ends. Around torch's import (1-3 s as a command starts): an exception raised inside it is swallowed by torch's C
    init (the run would train to the end) or leaves torch half-initialized (a segfault, a RecursionError). A handler
    someone else installed (a program calling :func:`main`) is left alone."""
    held: list[int] = []
    ours = [signum for signum, (handler, _) in _HOLDABLE.items()
            if threading.current_thread() is threading.main_thread() and signal.getsignal(signum) is handler]
    for signum in ours:
        signal.signal(signum, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        for signum in ours:
            signal.signal(signum, _HOLDABLE[signum][0])
    if held:
        raise _HOLDABLE[held[0]][1]


def _reader_gone() -> int:
    """Stop quietly, as a Unix tool killed by SIGPIPE does (exit status 128 + 13); a run being trained stops
    as if killed there (its last checkpoint resumes it)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python flushes stdout at exit: not again
    return 128 + signal.SIGPIPE


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args, rest = parser.parse_known_args(argv)
    if args.command in parser.intermixed:  # `translate MODEL --beam 5 "Go."`: argparse stops the TEXT list at --beam
        args = parser.intermixed[args.command].parse_intermixed_args(argv[argv.index(args.command) + 1:],
                                                                     argparse.Namespace(command=args.command))
        rest = []
    args.task_arguments = rest  # options of the model's task, parsed once its task is known (evaluate)
    if rest and args.command != "evaluate":
        parser.parse_args(argv)  # argparse's own error for the arguments it does not know
    if getattr(args, "threads", 0) < 0:
        print(f"error: --threads must be at least 1 (or 0: rnnkit's choice), got {args.threads}", file=sys.stderr)
        return 2
    try:
        if args.command in _TORCH_IMPORT_HELD:
            with _signals_held():
                import torch  # noqa: F401
        return COMMANDS[args.command](args)
    except RnnkitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def cmd_recipes(args) -> int:
    from rnnkit.config import list_recipes

    recipes = list_recipes()
    width = max(map(len, recipes))
    for name, line in recipes.items():
        print(f"{name:<{width}}  {line}")
    return 0


def cmd_train(args) -> int:
    import rnnkit

    backend = " --backend numpy" if args.backend == "numpy" else ""
    if args.threads:
        args.overrides = [*args.overrides, f"train.threads={args.threads}"]
    try:
        with _signals_held():
            import rnnkit.api  # noqa: F401  (torch: both backends train with it)
        if args.backend == "numpy":
            from rnnkit.reference.train import train_numpy

            if args.init_from or args.init_prefix or args.init_partial:
                raise RnnkitError("--init-from is not supported with --backend numpy")
            if args.device == "cuda":
                raise RnnkitError("the numpy backend runs on the CPU (leave out --device cuda)")
            model = train_numpy(recipe=args.recipe, data=args.data, out=args.out, overrides=args.overrides,
                                valid=args.valid, test=args.test, resume=args.resume, task=args.task,
                                overwrite=args.overwrite)
        else:
            model = rnnkit.train(args.task, recipe=args.recipe, data=args.data, out=args.out,
                                 overrides=args.overrides, resume=args.resume, init_from=args.init_from,
                                 device=args.device, valid=args.valid, test=args.test, overwrite=args.overwrite,
                                 init_prefix=args.init_prefix, init_partial=args.init_partial)
    except (KeyboardInterrupt, Terminated) as stop:
        # Ctrl-C anywhere; SIGTERM outside the trainer's steps (setup, test scoring: the trainer itself turns it into
        # KeyboardInterrupt at a step boundary)
        from rnnkit.checkpoint import CONFIG_FILE, has_checkpoint

        terminated = isinstance(stop, Terminated)
        if not (Path(args.out) / CONFIG_FILE).is_file():
            if terminated:
                raise  # main: "terminated", 143
            print(f"\ninterrupted before anything was written to {args.out}; run the same command again",
                  file=sys.stderr)
            return 130
        code = 128 + (signal.SIGTERM if terminated else signal.SIGINT)
        if os.environ.get("RANK", "0") != "0":  # under torchrun: said once, by rank 0
            return code
        saved = "checkpoint saved in" if has_checkpoint(args.out) else "stopped before the first checkpoint of"
        print(f"\n{'terminated' if terminated else 'interrupted'}: {saved} {args.out}; continue with\n"
              f"  {_rerun()} train {args.task} --out {args.out} --resume{backend}", file=sys.stderr)
        return code
    if model is not None:  # None on the non-zero ranks of a torchrun job
        for split, metrics in (model.results or {}).items():
            print(f"{split}: " + ", ".join(f"{k} {_shown(k, v)}" for k, v in metrics.items() if k != "tokens"))
        print(f"model saved in {args.out}")
    return 0


def _rerun() -> str:
    """The command that runs rnnkit as this process runs: under torchrun with as many processes (a run resumes
    with the number that saved it), else ``rnnkit``."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return "rnnkit"
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world) or world)
    return f"torchrun {'--standalone ' if local == world else ''}--nproc-per-node {local} -m rnnkit"


def _load_model(args):
    """``rnnkit.load`` (torch), or the NumPy reference with ``--backend numpy``, on ``--threads``."""
    from rnnkit import runtime

    runtime.set_threads(args.threads)
    if getattr(args, "backend", "torch") == "numpy":
        from rnnkit.reference.backend import load_numpy

        if args.device == "cuda":
            raise RnnkitError("the numpy backend runs on the CPU (leave out --device cuda)")
        return load_numpy(args.model)
    import rnnkit

    return rnnkit.load(args.model, device=args.device)


SAMPLE_SEPARATOR = "-----"


def _model_task(model_dir: str):
    """The task class of the model directory ``model_dir`` (read from its config, nothing loaded)."""
    from rnnkit.api import read_model_config
    from rnnkit.tasks import get_task

    return get_task(read_model_config(model_dir)[1].task)


def _require_verb(task: str, own: str, verb: str, model_dir: str) -> None:
    """A model does its own task's job (``own``): a seq2seq model given to ``generate`` (an LM given to
    ``translate``) is an error naming its command."""
    if own != verb:
        raise RnnkitError(f"is {_a_model(task)}: it does not {verb} (its command is rnnkit {own or 'evaluate'})",
                          model_dir)


def _a_model(task: str) -> str:
    """'a seq2seq model', 'an autoencoder model', 'an lm model' (read "el-em")."""
    return f"{'an' if task[0] in 'aeiou' or task == 'lm' else 'a'} {task} model"


def cmd_generate(args) -> int:
    try:
        model = _load_model(args)
    except KeyboardInterrupt:
        print("\ninterrupted while loading the model", file=sys.stderr)
        return 130
    _require_verb(model.config.task, model.verb, "generate", args.model)
    if args.verbose:
        print(model.kernel_path("generate", args.n, args.num_samples), file=sys.stderr)
    stop = model.stops_at_eos(args.sentence) and not args.no_stop
    printer = SamplePrinter(args.num_samples, args.n,
                            spans_lines=not stop or (args.include_prompt and "\n" in args.prompt))
    progress = _generation_progress(args.n * args.num_samples)
    try:
        pieces = model.stream(args.prompt, args.n, greedy=args.greedy, temperature=args.temperature,
                              top_k=args.top_k, top_p=args.top_p, seed=args.seed, num_samples=args.num_samples,
                              stop_at_eos=False if args.no_stop else None, allow_unk=args.allow_unk,
                              sentence=args.sentence, min_length=args.min_length,
                              include_prompt=args.include_prompt, on_tokens=progress and progress.update)
        for piece in pieces:
            printer.add(piece)
    except KeyboardInterrupt:
        printer.interrupted()
        return 130
    finally:
        if progress is not None:
            progress.close()
    printer.finish()
    return 0


#: a progress bar is shown for generation runs of at least this many tokens (when it can be seen)
PROGRESS_MIN_TOKENS = 2000


def _generation_progress(total: int):
    """A tqdm bar on stderr when it is a terminal and the text goes elsewhere (else the text shows progress)."""
    if total < PROGRESS_MIN_TOKENS or not sys.stderr.isatty() or sys.stdout.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="tok", desc="generate", file=sys.stderr, leave=False, dynamic_ncols=True)


class SamplePrinter:
    """Prints generated text as it comes (flushed), one sample per line or, when samples can span lines,
    separated by :data:`SAMPLE_SEPARATOR` lines; explains empty samples and an interruption on stderr."""

    def __init__(self, num_samples: int, n: int, spans_lines: bool):
        self.num_samples, self.n, self.spans_lines = num_samples, n, spans_lines
        self.done = 0  # samples printed completely
        self.line_open = False  # text of the current sample is on the screen without its line end
        self.printed = False  # the current sample printed some text
        self.empty = 0

    def add(self, piece) -> None:
        if piece.text:
            if self.spans_lines and piece.sample and not (self.printed or self.line_open):
                sys.stdout.write(SAMPLE_SEPARATOR + "\n")
            sys.stdout.write(piece.text)
            self.printed = self.line_open = True
        if piece.end:
            if self.spans_lines and piece.sample and not self.printed:
                sys.stdout.write(SAMPLE_SEPARATOR + "\n")
            sys.stdout.write("\n")
            self._explain_if_empty(piece)
            self.done += 1
            self.printed = self.line_open = False
        sys.stdout.flush()

    def _explain_if_empty(self, piece) -> None:
        if self.printed or self.n == 0:
            return
        self.empty += 1
        if self.empty > 1:
            return  # one explanation; finish() counts the rest
        which = f"sample {piece.sample + 1}" if self.num_samples > 1 else "the sample"
        if piece.stopped and piece.tokens == 1:
            print(f"generate: {which} is empty: the model ended it at once with <eos>; try --min-length N "
                  "(at least N tokens before <eos>) or --no-stop", file=sys.stderr)
        else:
            print(f"generate: {which} is empty: its {piece.tokens} token(s) were only <eos> (line ends) or "
                  "special tokens", file=sys.stderr)

    def finish(self) -> None:
        if self.empty > 1:
            print(f"generate: {self.empty} of {self.num_samples} samples were empty", file=sys.stderr)

    def interrupted(self) -> None:
        if self.line_open:
            sys.stdout.write("\n")
        sys.stdout.flush()
        print(f"interrupted: kept the text printed above ({self.done} of {self.num_samples} sample(s) complete)",
              file=sys.stderr)


# ------------------------------------------------------------------------------------------ translate
#: --input lines translated per call, in batches of --batch-size: a call sorts its batches by length, and its
#: translations are printed when it ends (a long file shows output as it goes; Ctrl-C keeps what was printed)
TRANSLATE_CHUNK_BATCHES = 16


def cmd_translate(args) -> int:
    from rnnkit.checkpoint import check_output_file
    from rnnkit.files import check_distinct_outputs

    if args.text and args.input:
        raise RnnkitError("give the sentences as TEXT arguments or as --input FILE, not both")
    check_distinct_outputs([("--output", args.output), ("--attention-plot", args.attention_plot)])
    for path, option in ((args.output, "--output"), (args.attention_plot, "--attention-plot")):
        if path:  # before the model loads; each is checked again when written
            check_output_file(path, option, args.overwrite, [("--input", args.input)])
    task = _model_task(args.model)  # from its config: a model of another task is refused before it loads
    _require_verb(task.name, task.loaded_class.verb, "translate", args.model)
    try:
        translator = _load_model(args)
    except KeyboardInterrupt:
        print("\ninterrupted while loading the model", file=sys.stderr)
        return 130
    if args.verbose:
        print(translator.kernel_path("translate", beam=args.beam, batch_size=args.batch_size), file=sys.stderr)
    job = TranslationJob(translator, args)
    translator.translate([], **job.options)  # the options are checked before any input is read
    try:
        if args.input:
            job.translate_file(args.input)
        elif args.text:
            job.translate_texts(args.text)
        else:
            job.translate_stdin()
    except KeyboardInterrupt:
        job.interrupted()
        return 130
    job.finish()
    return 0


class TranslationJob:
    """One ``rnnkit translate``: translations printed as they come (flushed), or kept and written whole to
    --output at the end; the attention plot of the first sentence; the count of <unk> sources on stderr."""

    def __init__(self, translator, args):
        self.translator, self.args = translator, args
        self.options = {"beam": args.beam, "n_best": args.n_best, "alpha": args.alpha, "batch_size": args.batch_size,
                        "max_length_ratio": args.max_length_ratio, "max_length_extra": args.max_length_extra,
                        "truncate": args.truncate, "temperature": args.temperature, "top_k": args.top_k,
                        "top_p": args.top_p, "seed": args.seed}
        self.kept: list[str] | None = [] if args.output else None  # the text for --output
        self.done = 0  # inputs translated
        self.total: int | None = None  # inputs in all, when known
        self.unknown = 0  # source tokens read as <unk>
        self.unknown_told = 0  # of those, said on stderr line by line (stdin to stdout: interactive)
        self.plot_pending = bool(args.attention_plot)

    def translate_texts(self, texts: list[str]) -> None:
        self.total = len(texts)
        self._plot(_first_sentence(texts))
        self._emit(self._translate(texts), 1)

    def translate_file(self, path: str) -> None:
        from rnnkit.data.readers import read_lines

        lines = read_lines(path)
        self.total = len(lines)
        self._plot(_first_sentence(lines))
        size = self.args.batch_size * TRANSLATE_CHUNK_BATCHES
        bar = _translation_progress(len(lines), to_file=bool(self.args.output))
        try:
            for start in range(0, len(lines), size):
                on_progress = bar and _progress_from(bar, start)
                self._emit(self._translate(lines[start:start + size], path, start + 1, on_progress), start + 1)
        finally:
            if bar is not None:
                bar.close()

    def translate_stdin(self) -> None:
        for number, line in _stdin_lines():
            self._plot(line)
            before = self.unknown
            self._emit(self._translate([line], "<stdin>", number), number)
            if self.unknown > before and self.kept is None:
                print(f"translate: line {number}: {self.unknown - before} source token(s) not in the model's "
                      "vocabulary, read as <unk>", file=sys.stderr)
                self.unknown_told = self.unknown

    def _translate(self, texts: list[str], source: str | None = None, first_line: int = 1, on_progress=None) -> list:
        """The translations of ``texts`` (lines ``first_line``... of ``source``, which errors and warnings name),
        counting their source tokens read as <unk>."""
        results = self.translator.translate(texts, on_progress=on_progress, first_line=first_line, source=source,
                                            **self.options)
        self.unknown += self.translator.oov_counts[0]
        return results

    def _emit(self, results: list, first_line: int) -> None:
        text = "".join(_translation_lines(first_line + i, result) for i, result in enumerate(results))
        if self.kept is not None:
            self.kept.append(text)
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
        self.done += len(results)

    def _plot(self, text: str) -> None:
        """Draw the attention of the first sentence (the first non-blank text), once, before it is translated."""
        if not self.plot_pending or not text.strip():
            return
        from rnnkit.plotting import plot_attention

        self.plot_pending = False
        source, output, weights = self.translator.attention(text)
        drawn = plot_attention(source, output, weights, self.args.attention_plot, self.args.overwrite,
                               [("--input", self.args.input)])
        boxes = "" if drawn else " (some characters are in no installed font: drawn as boxes)"
        print(f"translate: the attention of the first sentence is drawn in {self.args.attention_plot}{boxes}",
              file=sys.stderr)

    def finish(self) -> None:
        from rnnkit.checkpoint import write_output_file

        if self.plot_pending:
            print(f"translate: {self.args.attention_plot} was not drawn: no input line had a sentence",
                  file=sys.stderr)
        if self.kept is not None:
            write_output_file(self.args.output, "".join(self.kept), "--output", self.args.overwrite,
                              [("--input", self.args.input)])
            print(f"translate: {self.done} line(s) translated into {self.args.output}", file=sys.stderr)
        if self.unknown > self.unknown_told:
            print(f"translate: {self.unknown} source token(s) not in the model's vocabulary were read as <unk>",
                  file=sys.stderr)

    def interrupted(self) -> None:
        of = f" of {self.total}" if self.total is not None else ""
        if self.kept is not None:
            print(f"\ninterrupted: {self.args.output} was not written ({self.done}{of} line(s) were translated)",
                  file=sys.stderr)
        else:
            print(f"\ninterrupted: kept the {self.done}{of} translation(s) printed above", file=sys.stderr)


def _first_sentence(texts: list[str]) -> str:
    return next((text for text in texts if text.strip()), "")


def _translation_lines(number: int, result) -> str:
    """One line per input; n-best (a list, best first): ``NUMBER<TAB>TEXT`` per hypothesis."""
    if isinstance(result, str):
        return result + "\n"
    return "".join(f"{number}\t{text}\n" for text in result)


def _stdin_lines():
    """(number, text) of each line of standard input as it arrives (UTF-8; else an error naming the line)."""
    number = 0
    while raw := sys.stdin.buffer.readline():
        number += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise RnnkitError(f"not UTF-8 (invalid byte at column {e.start + 1})", "<stdin>", number) from None
        yield number, text.rstrip("\r\n")


def _translation_progress(total: int, to_file: bool):
    """A tqdm bar on stderr when it is a terminal and the translations go elsewhere (a file or a pipe)."""
    if not sys.stderr.isatty() or (sys.stdout.isatty() and not to_file):
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="line", desc="translate", file=sys.stderr, leave=False, dynamic_ncols=True)


def _progress_from(bar, start: int):
    """An ``on_progress(n_done)`` callback moving ``bar`` to ``start + n_done``."""
    return lambda n_done: bar.update(start + n_done - bar.n)


def _shown(key: str, value: float) -> str:
    from rnnkit.metrics import COUNTS

    return str(int(value)) if key in COUNTS else f"{value:.4f}"


def json_line(record: dict, ensure_ascii: bool = True) -> str:
    """``record`` as one line of JSON; a number in it that is not finite is an error naming it: json.dumps would
    print a bare NaN or Infinity, which is not JSON (RFC 8259) and which parsers such as jq refuse."""
    try:
        return json.dumps(record, ensure_ascii=ensure_ascii, allow_nan=False)
    except ValueError:
        raise RnnkitError(f"the output's '{_not_finite(record)}' is not a finite number (nan or inf), which JSON "
                          "cannot carry: the model's scores overflowed (extreme weights or input values)") from None


def _not_finite(value, name: str = "") -> str | None:
    """The name (``probs.neg``) of the first number in ``value`` (nested mappings) that is not finite, else None."""
    if isinstance(value, dict):
        found = (_not_finite(v, f"{name}.{k}" if name else str(k)) for k, v in value.items())
        return next((f for f in found if f), None)
    return name if isinstance(value, float) and not math.isfinite(value) else None


def cmd_evaluate(args) -> int:
    from rnnkit.checkpoint import check_output_file, write_output_file
    from rnnkit.files import check_distinct_outputs

    if args.data is None and not args.task_arguments:
        raise RnnkitError("the following arguments are required: --data (or the data options of the model's task)")
    options = _task_options(args.model, args.task_arguments)  # before the weights load: a typo fails at once
    check_distinct_outputs([("--json", args.json_out), ("--confusion-png", options.get("confusion_png"))])
    if "overwrite" in options:  # the task writes files of its own (a classifier's --confusion-png)
        options["overwrite"] = args.overwrite
    inputs = [("--data", args.data), ("--src", options.get("src")), ("--ref", options.get("ref"))]
    if args.json_out:  # before the model loads; checked again when written
        check_output_file(args.json_out, "--json", args.overwrite, inputs)
    model = _load_model(args)
    if args.verbose:
        print(model.kernel_path("evaluate", batch_size=args.batch_size or 0), file=sys.stderr)
    metrics = model.evaluate(args.data, batch_size=args.batch_size, max_lines=args.max_lines, **options)
    signatures = getattr(model, "last_signatures", None) or {}  # how corpus scores were computed (sacrebleu)
    shown = model.evaluation_lines(metrics)  # the task's own table (a classifier's confusion matrix), or:
    if shown is None:
        width = max(8, *map(len, metrics))
        shown = [f"{key:>{width}}  {_shown(key, value)}" for key, value in metrics.items()]
        shown += [f"{key + ' signature':>{width}}  {signature}" for key, signature in signatures.items()]
    print("\n".join(shown))
    extra = {"backend": "numpy"} if args.backend == "numpy" else {}
    given = {key: str(value) if isinstance(value, os.PathLike) else value for key, value in options.items()
             if value is not None and key != "overwrite"}
    line = json_line({"model": str(args.model), "data": args.data and str(args.data), **given, **extra, **metrics,
                      **({"signatures": signatures} if signatures else {})})
    print(line)
    if args.json_out:
        write_output_file(args.json_out, line + "\n", "--json", args.overwrite, inputs)
    return 0


def _task_options(model_dir: str, arguments: list[str]) -> dict:
    """The ``rnnkit evaluate`` options that the task of ``model_dir`` adds (its loaded class's
    ``add_evaluate_arguments``), parsed from what the generic options left, as keywords for its
    ``evaluate``; anything else is an error naming it."""
    task = _model_task(model_dir)
    parser = argparse.ArgumentParser(prog="rnnkit evaluate", add_help=False)
    task.loaded_class.add_evaluate_arguments(parser)
    known, unknown = parser.parse_known_args(arguments)
    if unknown:
        raise RnnkitError(f"unrecognized arguments: {' '.join(unknown)} (rnnkit evaluate of "
                          f"{_a_model(task.name)} takes no such option)")
    return vars(known)


#: a progress bar is shown for files of at least this many examples (when it can be seen)
PROGRESS_MIN_EXAMPLES = 1000


def cmd_classify(args) -> int:
    if bool(args.texts) == bool(args.input):
        raise RnnkitError("give the texts to classify or --input FILE (one of them)")
    if args.batch_size is not None and args.batch_size < 1:
        raise RnnkitError(f"--batch-size must be at least 1, got {args.batch_size}")
    model = _load_model(args)
    _require_verb(model.config.task, model.verb, "classify", args.model)
    if args.input:
        examples = model.read(args.input)
        progress = _classify_progress(len(examples))
        try:
            answers = model.classify_examples(examples, args.probs, args.batch_size,
                                              on_batch=progress and _closing_when_done(progress))
        finally:
            if progress is not None:
                progress.close()
    else:
        answers = model.classify(args.texts, args.probs, args.batch_size)
    # a folder's texts are many files: each line names its file (in a text file, line k is input k)
    files = [shown_name(f) for f, _ in examples.where] if args.input and Path(args.input).is_dir() else None
    for k, answer in enumerate(answers):
        if args.probs:
            record = {"label": max(answer, key=answer.get), "probs": answer}
            print(json_line({"file": files[k], **record} if files else record, ensure_ascii=False))
        else:
            print(f"{files[k]}\t{answer}" if files else answer)
    return 0


def cmd_reconstruct(args) -> int:
    if bool(args.texts) == bool(args.input):
        raise RnnkitError("give the texts to reconstruct or --input FILE (one of them)")
    if args.batch_size is not None and args.batch_size < 1:
        raise RnnkitError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.beam < 1:
        raise RnnkitError(f"--beam must be at least 1, got {args.beam}")
    model = _load_model(args)
    _require_verb(model.config.task, model.verb, "reconstruct", args.model)
    texts = model.read_texts(args.input) if args.input else args.texts
    lines = model.reconstruct(texts, args.batch_size, args.beam, args.alpha)
    for line in lines:
        print(line)
    _explain_empty_reconstructions(lines, args.beam, args.alpha)
    return 0


def _explain_empty_reconstructions(lines: list[str], beam: int, alpha: float) -> None:
    """Say on stderr why a reconstruction is empty (the first; then how many were), as generate explains an
    empty sample: a blank line must not read as a bug."""
    empty = [number for number, line in enumerate(lines, 1) if not line]
    if not empty:
        return
    if beam > 1:
        why = (f"with --beam {beam} --alpha {alpha:g} the likeliest output is <eos> at once; a larger --alpha (the "
               "length penalty, default 1) favours longer outputs")
    else:
        why = ("greedy search took <eos> as the likeliest first token; --beam N weighs whole outputs, with the "
               "length penalty --alpha")
    print(f"reconstruct: text {empty[0]}'s reconstruction is empty: {why}", file=sys.stderr)
    if len(empty) > 1:
        print(f"reconstruct: {len(empty)} of {len(lines)} reconstructions were empty", file=sys.stderr)


def _classify_progress(total: int):
    """A tqdm bar on stderr when it is a terminal and the labels go elsewhere."""
    if total < PROGRESS_MIN_EXAMPLES or not sys.stderr.isatty() or sys.stdout.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="ex", desc="classify", file=sys.stderr, leave=False, dynamic_ncols=True)


def _closing_when_done(progress) -> Callable[[int], None]:
    """``progress.update``, closing the bar after the last batch: the out-of-vocabulary warnings that
    classify_examples prints next then start on a line of their own, not glued onto the bar's."""
    def on_batch(n: int) -> None:
        progress.update(n)
        if progress.n >= progress.total:
            progress.close()  # leave=False: the bar's line is cleared; the finally's close does nothing more
    return on_batch


MAX_GRADCHECK_LAYERS = 8  # finite differences over every weight: more layers take minutes


def cmd_gradcheck(args) -> int:
    from rnnkit.reference.gradcheck import run

    if not 1 <= args.layers <= MAX_GRADCHECK_LAYERS:
        raise RnnkitError(f"--layers must be between 1 and {MAX_GRADCHECK_LAYERS}, got {args.layers}")
    if not (math.isfinite(args.threshold) and args.threshold > 0):
        raise RnnkitError(f"--threshold must be a positive number, got {args.threshold}")
    return run(args.cell, threshold=args.threshold, num_layers=args.layers)


def cmd_demo(args) -> int:
    import rnnkit
    from rnnkit import runtime
    from rnnkit.api import holds_files
    from rnnkit.checkpoint import require_marker

    out = Path(args.out)
    fable = Path(__file__).with_name("assets") / "belling_the_cat.txt"
    replace = holds_files(out)
    if replace:  # only a folder an earlier demo made is replaced (rnnkit.train removes its files, no others)
        made_by = require_marker(out, "replace")["made_by"]
        if made_by != DEMO_MAKER:
            raise RnnkitError(f"was made by {made_by}, not by the demo: the demo replaces only its own folders; "
                              "choose another --out", out)
    threads, why = runtime.choose_threads(args.threads)
    print(f"Training a word-level LSTM language model on the fable 'Belling the Cat' ({fable.name}, "
          f"204 words; {threads} thread{'s' if threads != 1 else ''}: {why}) ...")
    t0 = time.perf_counter()
    try:
        lm = rnnkit.train("lm", recipe="demo", data=str(fable), out=out, device="cpu",
                          overrides=["train.progress=false", f"train.threads={threads}"], overwrite=replace,
                          made_by=DEMO_MAKER)
    except KeyboardInterrupt:
        print("\ninterrupted; run `rnnkit demo` again to start over", file=sys.stderr)
        return 130
    seconds = time.perf_counter() - t0
    greedy = lm.generate(DEMO_PROMPT, 32, greedy=True)[0]
    sampled = lm.generate(DEMO_PROMPT, 32, temperature=0.8, top_k=10, seed=7)[0]
    ppl = lm.evaluate(fable)["ppl"]
    print(f"trained in {seconds:.0f} s; perplexity on the fable {ppl:.2f}\n")
    print(f"prompt:          {DEMO_PROMPT}")
    print(f"greedy:          {greedy}")
    print(f"sampled (T=0.8): {sampled}\n")
    print(f"model directory: {out}  (config.yaml, vocab.json, model.safetensors, log.csv, curves.png)")
    print(f"try:             rnnkit generate {out} --prompt \"the mice\" -n 20 --temperature 0.7 --seed 1")
    return 0


def cmd_data(args) -> int:
    from rnnkit.data.toy import split_sizes, write_toy

    paths = write_toy(args.task, args.out, args.n, args.seed, args.overwrite)
    sizes = split_sizes(args.n)
    print(f"{args.task}: " + ", ".join(f"{sizes[split]} {split}" for split in paths) + f" pairs in {args.out}")
    return 0


#: the commands whose torch import _run makes first, signals held (recipes and data run without torch; train holds
#: them itself, around the import of its API: a Ctrl-C there says that nothing was written)
_TORCH_IMPORT_HELD = ("demo", "generate", "translate", "evaluate", "classify", "reconstruct", "gradcheck")
COMMANDS = {"demo": cmd_demo, "data": cmd_data, "recipes": cmd_recipes, "train": cmd_train, "generate": cmd_generate,
            "translate": cmd_translate, "evaluate": cmd_evaluate, "classify": cmd_classify,
            "reconstruct": cmd_reconstruct, "gradcheck": cmd_gradcheck}


if __name__ == "__main__":
    raise SystemExit(main())

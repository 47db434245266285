"""The ``rnnkit`` command line: one verb per job.

    rnnkit demo [--out DIR]
    rnnkit recipes
    rnnkit train lm --recipe NAME|FILE.yaml --data PATH --out DIR [--set key=value ...]
                    [--resume | --overwrite] [--init-from DIR [--init-prefix PREFIX] [--init-partial]]
                    [--device auto|cpu|cuda] [--backend torch|numpy]
    rnnkit generate DIR [--prompt TEXT] [-n N] [--greedy | --temperature T --top-k K --top-p P] [--seed S]
                    [--num-samples K] [--backend torch|numpy] [-v]     (prints as it generates)
    rnnkit evaluate DIR --data PATH [--json FILE] [--backend torch|numpy] [-v]
    rnnkit classify DIR [TEXT ...] [--input FILE] [--probs] [--batch-size N]
    rnnkit gradcheck --cell rnn|gru|lstm
    rnnkit data toy TASK --out DIR [--n N] [--seed S] [--overwrite]

The verbs that run torch (demo, train, generate, evaluate, classify) take ``--threads N``. Errors in the user's
input print one ``error: ...`` line naming the file, line and problem (exit 2).

This module imports torch only inside the verbs that need it: ``rnnkit --help`` and ``rnnkit recipes``
start at once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

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
    p.add_argument("task", choices=task_names(), help="the task (lm: language model); its recipes say which")
    p.add_argument("--recipe", help="built-in recipe name (see `rnnkit recipes`) or a YAML file")
    p.add_argument("--data", help="training text file, or a folder with train/valid/test files")
    p.add_argument("--valid", help="validation file (default: from --data, else held out of train)")
    p.add_argument("--test", help="test file, scored with the best weights after training")
    p.add_argument("--out", required=True,
                   help="model directory to write (new or empty, unless --resume or --overwrite); one run "
                        "writes it at a time")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.lr=0.5 (repeatable)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true",
                       help="continue the run in --out exactly where its last checkpoint left it "
                            "(weights, optimizer, schedule, data position, RNG); --set may change train.lr, "
                            "clip, epochs, max_steps, the eval/save/log cadence, early_stop, device, threads, "
                            "progress, and repeat any other value unchanged")
    group.add_argument("--init-from", metavar="DIR",
                       help="start from another model's weights; fresh optimizer and schedule. Same task: all of "
                            "them and its vocabulary (strict), unless --init-partial; another task: what matches "
                            "by name and shape, vocabulary rows by token, with a report")
    p.add_argument("--init-prefix", metavar="PREFIX",
                   help="with --init-from: the part of the new model the source's weights go under, e.g. "
                        "encoder (an LM's embedding and stack into a classifier's encoder)")
    p.add_argument("--init-partial", action="store_true",
                   help="with --init-from of the same task: copy what matches (the new run builds its own "
                        "vocabulary and may change sizes) instead of requiring the same model")
    p.add_argument("--overwrite", action="store_true",
                   help="start again in an --out that rnnkit made: remove its files (never anyone else's) first")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: the recipe's (auto)")
    p.add_argument("--backend", choices=["torch", "numpy"], default="torch",
                   help="numpy: the from-scratch NumPy reference (rnnkit.reference), SGD only")
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
    p.add_argument("--include-prompt", action="store_true", help="print the prompt before the continuation")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.add_argument("--backend", choices=["torch", "numpy"], default="torch",
                   help="numpy: run the model on the from-scratch NumPy reference (float64, CPU)")
    _add_threads(p)
    p.add_argument("-v", "--verbose", action="store_true", help="say on stderr which kernel runs the model")


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score a model on data with its task's metrics (LM: perplexity; bits per "
                                        "char for char models)",
                       description="Score a model on data with its task's standard metrics. A task may take "
                                   "options of its own after these (see the task's documentation).")
    p.add_argument("model", help="model directory")
    p.add_argument("--data", required=True, help="data file read like the training data")
    p.add_argument("--batch-size", type=int, help="sequences per batch (default: the training config's)")
    p.add_argument("--max-lines", type=int, default=0,
                   help="score only the first N lines (sentences, for models that split reviews); default: all")
    p.add_argument("--json", dest="json_out",
                   help="also write the metrics to this JSON file (new or a plain file; never a link or device)")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.add_argument("--backend", choices=["torch", "numpy"], default="torch",
                   help="numpy: run the model on the from-scratch NumPy reference (float64, CPU)")
    _add_threads(p)
    p.add_argument("-v", "--verbose", action="store_true", help="say on stderr which kernel runs the model")


def _add_classify(sub) -> None:
    p = sub.add_parser("classify", help="label texts or sequences with a trained classifier",
                       description="Label texts (or, for a numeric model, sequences) with a trained classifier: one "
                                   "line per input, the label, or with --probs a JSON object of the label and every "
                                   "class's probability.")
    p.add_argument("model", help="model directory")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify (or give --input)")
    p.add_argument("--input", metavar="FILE",
                   help="classify every example of a file: one text per line, JSONL (the text field), CSV/TSV with a "
                        "header, or .npz / IDX for a numeric model; a progress bar on a terminal")
    p.add_argument("--probs", action="store_true", help="print each class's probability too (JSON lines)")
    p.add_argument("--batch-size", type=int, help="inputs per batch (default: the training config's eval_batch_size)")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.set_defaults(backend="torch")
    _add_threads(p)


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
    _add_evaluate(sub)
    _add_classify(sub)
    _add_data(sub)
    grad = sub.add_parser("gradcheck", help="check the NumPy reference's gradients by finite differences")
    grad.add_argument("--cell", choices=["rnn", "gru", "lstm"], default="lstm")
    grad.add_argument("--layers", type=int, default=2)
    grad.add_argument("--threshold", type=float, default=1e-6, help="relative errors below this pass")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    args.task_arguments = rest  # options of the model's task, parsed once its task is known (evaluate)
    if rest and args.command != "evaluate":
        parser.parse_args(argv)  # argparse's own error for the arguments it does not know
    if getattr(args, "threads", 0) < 0:
        print(f"error: --threads must be at least 1 (or 0: rnnkit's choice), got {args.threads}", file=sys.stderr)
        return 2
    try:
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
    except KeyboardInterrupt:
        from rnnkit.checkpoint import CONFIG_FILE, has_checkpoint

        if not (Path(args.out) / CONFIG_FILE).is_file():
            print(f"\ninterrupted before anything was written to {args.out}; run the same command again",
                  file=sys.stderr)
            return 130
        saved = "checkpoint saved in" if has_checkpoint(args.out) else "stopped before the first checkpoint of"
        print(f"\ninterrupted: {saved} {args.out}; continue with\n"
              f"  rnnkit train {args.task} --out {args.out} --resume{backend}", file=sys.stderr)
        return 130
    if model is not None:  # None on the non-zero ranks of a torchrun job
        for split, metrics in (model.results or {}).items():
            print(f"{split}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "tokens"))
        print(f"model saved in {args.out}")
    return 0


def _load_model(args):
    """``rnnkit.load`` (torch), or the NumPy reference with ``--backend numpy``, on ``--threads``."""
    from rnnkit import runtime

    runtime.set_threads(args.threads)
    if args.backend == "numpy":
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


def _require_verb(model, verb: str, model_dir: str) -> None:
    """A model does its own task's job: a seq2seq model given to ``generate`` is an error naming its command."""
    if model.verb != verb:
        raise RnnkitError(f"is a {model.config.task} model: it does not {verb} (its command is rnnkit "
                          f"{model.verb or 'evaluate'})", model_dir)


def cmd_generate(args) -> int:
    try:
        model = _load_model(args)
    except KeyboardInterrupt:
        print("\ninterrupted while loading the model", file=sys.stderr)
        return 130
    _require_verb(model, "generate", args.model)
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
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
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


COUNTS = ("tokens", "oov")  # metrics printed as integers


def cmd_evaluate(args) -> int:
    from rnnkit.checkpoint import check_output_file, write_output_file

    if args.json_out:
        check_output_file(args.json_out, "--json")  # before the model loads; checked again when written
    options = _task_options(args.model, args.task_arguments)  # before the weights load: a typo fails at once
    model = _load_model(args)
    if args.verbose:
        print(model.kernel_path("evaluate", batch_size=args.batch_size or 0), file=sys.stderr)
    metrics = model.evaluate(args.data, batch_size=args.batch_size, max_lines=args.max_lines, **options)
    shown = model.evaluation_lines(metrics)  # the task's own table (a classifier's confusion matrix), or:
    if shown is None:
        shown = [f"{key:>8}  {int(value)}" if key in COUNTS else f"{key:>8}  {value:.4f}"
                 for key, value in metrics.items()]
    print("\n".join(shown))
    extra = {"backend": "numpy"} if args.backend == "numpy" else {}
    line = json.dumps({"model": str(args.model), "data": str(args.data), **extra, **metrics})
    print(line)
    if args.json_out:
        write_output_file(args.json_out, line + "\n", "--json")
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
        raise RnnkitError(f"unrecognized arguments: {' '.join(unknown)} (rnnkit evaluate of a {task.name} model "
                          "takes no such option)")
    return vars(known)


#: a progress bar is shown for files of at least this many examples (when it can be seen)
PROGRESS_MIN_EXAMPLES = 1000


def cmd_classify(args) -> int:
    if bool(args.texts) == bool(args.input):
        raise RnnkitError("give the texts to classify or --input FILE (one of them)")
    if args.batch_size is not None and args.batch_size < 1:
        raise RnnkitError(f"--batch-size must be at least 1, got {args.batch_size}")
    model = _load_model(args)
    _require_verb(model, "classify", args.model)
    if args.input:
        examples = model.read(args.input)
        progress = _classify_progress(len(examples))
        try:
            answers = model.classify_examples(examples, args.probs, args.batch_size,
                                              on_batch=progress and progress.update)
        finally:
            if progress is not None:
                progress.close()
    else:
        answers = model.classify(args.texts, args.probs, args.batch_size)
    for answer in answers:
        print(json.dumps({"label": max(answer, key=answer.get), "probs": answer}, ensure_ascii=False)
              if args.probs else answer)
    return 0


def _classify_progress(total: int):
    """A tqdm bar on stderr when it is a terminal and the labels go elsewhere."""
    if total < PROGRESS_MIN_EXAMPLES or not sys.stderr.isatty() or sys.stdout.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="ex", desc="classify", file=sys.stderr, leave=False, dynamic_ncols=True)


MAX_GRADCHECK_LAYERS = 8  # finite differences over every weight: more layers take minutes


def cmd_gradcheck(args) -> int:
    import math

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


COMMANDS = {"demo": cmd_demo, "data": cmd_data, "recipes": cmd_recipes, "train": cmd_train, "generate": cmd_generate,
            "evaluate": cmd_evaluate, "classify": cmd_classify, "gradcheck": cmd_gradcheck}


if __name__ == "__main__":
    raise SystemExit(main())

"""Tokenizers: char, word (punctuation split off, as the seeds do), alnum (punctuation dropped) and
sentencepiece subwords.

A tokenizer turns a line of text into a list of string tokens and back; :class:`~rnnkit.data.vocab.Vocab`
maps tokens to ids. Both are saved into the model directory, so a loaded model reads prompts exactly
as its training data was read.
"""

from __future__ import annotations

import abc
import json
import re
import tempfile
from pathlib import Path

from rnnkit.config import TokenizerConfig
from rnnkit.errors import RnnkitError, parse_json

TOKENIZER_FILE = "tokenizer.json"
SPM_FILE = "spm.model"
SPM_TYPES = ("unigram", "bpe", "char", "word")

_SPECIAL = re.compile(r"^<[A-Za-z_]+>$")  # <unk>, <eos>: never split
_CLITIC = re.compile(r"^'[A-Za-z]{1,3}$")  # 's 're 'll (PTB keeps these as tokens)
_EDGE_PUNCT = re.compile(r"^([^\w<]*)(.*?)([^\w>]*)$", re.DOTALL)
_ALNUM_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")  # letters and digits, "don't" one word


class Tokenizer(abc.ABC):
    """Base: ``tokenize(line) -> tokens`` and ``detokenize(tokens) -> text``."""

    kind = ""

    def __init__(self, lowercase: bool = False):
        self.lowercase = lowercase

    def tokenize(self, line: str) -> list[str]:
        return self._split(line.lower() if self.lowercase else line)

    @abc.abstractmethod
    def _split(self, line: str) -> list[str]:
        """Tokens of one (already lower-cased if asked) line."""

    def detokenize(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def options(self) -> dict:
        return {"kind": self.kind, "lowercase": self.lowercase}

    def save(self, model_dir: str | Path, name: str = TOKENIZER_FILE, spm_name: str = SPM_FILE) -> None:
        """Write the tokenizer as ``name`` (and its sentencepiece model as ``spm_name``) into ``model_dir``:
        a seq2seq model has one per side."""
        from rnnkit.checkpoint import atomic_write_text

        atomic_write_text(Path(model_dir) / name, json.dumps(self.options(), indent=1))


class CharTokenizer(Tokenizer):
    kind = "char"

    def _split(self, line: str) -> list[str]:
        return list(line)

    def detokenize(self, tokens: list[str]) -> str:
        return "".join("\n" if t == "<eos>" else t for t in tokens)


class WordTokenizer(Tokenizer):
    """Whitespace tokens; with ``split_punctuation`` leading/trailing punctuation becomes its own token."""

    kind = "word"

    def __init__(self, lowercase: bool = False, split_punctuation: bool = True):
        super().__init__(lowercase)
        self.split_punctuation = split_punctuation

    def _split(self, line: str) -> list[str]:
        chunks = line.split()
        if not self.split_punctuation:
            return chunks
        tokens: list[str] = []
        for chunk in chunks:
            if _SPECIAL.match(chunk) or _CLITIC.match(chunk):
                tokens.append(chunk)
                continue
            lead, core, trail = _EDGE_PUNCT.match(chunk).groups()
            tokens.extend(lead)
            if core:
                tokens.append(core)
            tokens.extend(trail)
        return tokens

    def options(self) -> dict:
        return {**super().options(), "split_punctuation": self.split_punctuation}


class AlnumTokenizer(Tokenizer):
    """Runs of letters and digits, an apostrophe clitic kept on its word ("don't"); punctuation dropped: Keras'
    IMDB copy reads reviews this way, so a 10,000-word vocabulary spends no slots (and no share of an average)
    on commas and full stops."""

    kind = "alnum"

    def _split(self, line: str) -> list[str]:
        return _ALNUM_WORD.findall(line)


class SentencePieceTokenizer(Tokenizer):
    """Subword pieces from a sentencepiece model (trained on the training text, or given)."""

    kind = "sentencepiece"

    def __init__(self, model_file: str | Path | None = None, lowercase: bool = False,
                 model_proto: bytes | None = None):
        import sentencepiece as spm

        super().__init__(lowercase)
        if model_proto is None:
            try:
                model_proto = Path(model_file).read_bytes()
            except OSError as e:
                raise RnnkitError(f"cannot read sentencepiece model ({e.strerror})", model_file) from None
        self.model_proto = model_proto  # kept in memory: saved into the model directory as spm.model
        try:
            self.processor = spm.SentencePieceProcessor(model_proto=model_proto)
        except (OSError, RuntimeError):  # sentencepiece's own text names its C++ source line, not the problem
            raise RnnkitError("is not a sentencepiece model that rnnkit can load (damaged, empty, or a file "
                              "of another kind)", model_file) from None

    @classmethod
    def train(cls, lines: list[str], vocab_size: int, model_type: str, lowercase: bool) -> SentencePieceTokenizer:
        import sentencepiece as spm

        if model_type not in SPM_TYPES:
            raise RnnkitError(f"unknown tokenizer.spm_type '{model_type}' ({' | '.join(SPM_TYPES)})")
        with tempfile.TemporaryDirectory(prefix="rnnkit-spm-") as tmp:
            text = Path(tmp) / "train.txt"
            text.write_text("\n".join(line.lower() if lowercase else line for line in lines), encoding="utf-8")
            try:
                spm.SentencePieceTrainer.train(
                    input=str(text), model_prefix=str(Path(tmp) / "spm"), vocab_size=vocab_size or 8000,
                    model_type=model_type, hard_vocab_limit=False, bos_id=-1, eos_id=-1,
                    minloglevel=2, input_sentence_size=2_000_000, shuffle_input_sentence=True)
            except (RuntimeError, ValueError, OSError) as e:
                raise RnnkitError(f"cannot train the sentencepiece model on the training text ({e})") from None
            proto = (Path(tmp) / "spm.model").read_bytes()
        return cls(lowercase=lowercase, model_proto=proto)

    def _split(self, line: str) -> list[str]:
        return self.processor.encode(line, out_type=str)

    def detokenize(self, tokens: list[str]) -> str:
        return self.processor.decode_pieces([t for t in tokens if not _SPECIAL.match(t)])

    def save(self, model_dir: str | Path, name: str = TOKENIZER_FILE, spm_name: str = SPM_FILE) -> None:
        from rnnkit.checkpoint import atomic_write_bytes

        atomic_write_bytes(Path(model_dir) / spm_name, self.model_proto)
        super().save(model_dir, name, spm_name)


def build_tokenizer(cfg: TokenizerConfig, train_lines: list[str]) -> Tokenizer:
    """The tokenizer a config asks for; sentencepiece is trained on ``train_lines`` unless given."""
    if cfg.kind == "char":
        return CharTokenizer(cfg.lowercase)
    if cfg.kind == "word":
        return WordTokenizer(cfg.lowercase, cfg.split_punctuation)
    if cfg.kind == "alnum":
        return AlnumTokenizer(cfg.lowercase)
    if cfg.kind == "sentencepiece":
        if cfg.spm_model:
            if not Path(cfg.spm_model).is_file():
                raise RnnkitError("sentencepiece model not found", cfg.spm_model)
            return SentencePieceTokenizer(cfg.spm_model, cfg.lowercase)
        return SentencePieceTokenizer.train(train_lines, cfg.vocab_size, cfg.spm_type, cfg.lowercase)
    raise RnnkitError(f"unknown tokenizer kind '{cfg.kind}' (char | word | alnum | sentencepiece)")


def load_tokenizer(model_dir: str | Path, name: str = TOKENIZER_FILE, spm_name: str = SPM_FILE) -> Tokenizer:
    """The tokenizer :meth:`Tokenizer.save` wrote into ``model_dir`` under these names."""
    path = Path(model_dir) / name
    try:
        opts = parse_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RnnkitError("model directory has no tokenizer file", path) from None
    except (ValueError, UnicodeDecodeError) as e:
        raise RnnkitError(f"tokenizer file is corrupt ({e})", path) from None
    if not isinstance(opts, dict):
        raise RnnkitError(f"tokenizer file is corrupt (a JSON object expected, got {type(opts).__name__})", path)
    kind = opts.get("kind")
    if kind not in _OPTIONS:
        raise RnnkitError(f"unknown tokenizer kind {kind!r}", path)
    _check_options(opts, _OPTIONS[kind], path)
    if kind == "char":
        return CharTokenizer(opts["lowercase"])
    if kind == "word":
        return WordTokenizer(opts["lowercase"], opts["split_punctuation"])
    if kind == "alnum":
        return AlnumTokenizer(opts["lowercase"])
    spm_path = Path(model_dir) / spm_name
    if not spm_path.is_file():
        raise RnnkitError("model directory has no sentencepiece model", spm_path)
    return SentencePieceTokenizer(spm_path, opts["lowercase"])


#: the fields tokenizer.json holds for each kind (what Tokenizer.options() writes) and their types
_OPTIONS = {"char": {"lowercase": bool}, "word": {"lowercase": bool, "split_punctuation": bool},
            "alnum": {"lowercase": bool}, "sentencepiece": {"lowercase": bool}}


def _check_options(opts: dict, fields: dict[str, type], path: Path) -> None:
    """Every field present with its type ("lowercase": "no" is an error, not true), and no others."""
    unknown = sorted(set(opts) - set(fields) - {"kind"})
    if unknown:
        raise RnnkitError(f"tokenizer file has unknown field(s) {', '.join(map(repr, unknown))} for kind "
                          f"{opts['kind']!r} (known: {', '.join(fields)})", path)
    for name, kind in fields.items():
        if name not in opts:
            raise RnnkitError(f"tokenizer file lacks the field {name!r}", path)
        if type(opts[name]) is not kind:
            raise RnnkitError(f"tokenizer field {name!r} must be {'true or false' if kind is bool else kind.__name__}"
                              f", got {opts[name]!r}", path)

"""Generated tokens -> text, a token at a time, so that generation can print as it goes.

The pieces :meth:`TextDecoder.push` returns join up to exactly the text of the whole sequence: for char
models the characters (``<eos>`` a line break), for word and subword models one line per sentence
(``<eos>`` ends a line; a line with no tokens is left out), each line detokenized as a whole.
"""

from __future__ import annotations

from rnnkit.data.tokenizers import CharTokenizer, Tokenizer

#: tokens of context a subword piece is decoded with (its leading space and byte sequences depend on
#: its neighbours); decoding only these keeps a long line linear, not quadratic, in its length
CONTEXT = 8
_INCOMPLETE = "\ufffd"  # what a byte sequence cut in the middle decodes to


class TextDecoder:
    """Turns one sequence's tokens into text incrementally: ``push(token) -> new text``, then ``flush()``."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self.char_level = isinstance(tokenizer, CharTokenizer)
        self.line: list[str] = []  # the current line's last tokens (enough context for what is not shown)
        self.shown = 0  # how many of them are already in the returned text
        self.in_line = False  # the current line has tokens
        self.lines = 0  # lines ended so far that had tokens

    def push(self, token: str) -> str:
        if token == "<bos>":
            return ""
        if self.char_level:
            return self.tokenizer.detokenize([token])
        if token == "<eos>":
            text = self.flush()
            self.lines += self.in_line
            self.line, self.shown, self.in_line = [], 0, False
            return text
        start = "\n" if not self.in_line and self.lines else ""
        self.line.append(token)
        self.in_line = True
        text = start + self._new_text(final=False)
        if self.shown == len(self.line) > 4 * CONTEXT:  # a line without end must not grow memory
            del self.line[:-CONTEXT]
            self.shown = len(self.line)
        return text

    def flush(self) -> str:
        """The text held back so far (an unfinished byte sequence of a subword model), at the end."""
        return "" if self.char_level else self._new_text(final=True)

    def _new_text(self, final: bool) -> str:
        """Text of the line's tokens not shown yet, decoded with up to CONTEXT tokens before them."""
        if self.shown == len(self.line):
            return ""
        context = max(0, self.shown - CONTEXT)
        before = self.tokenizer.detokenize(self.line[context:self.shown])
        after = self.tokenizer.detokenize(self.line[context:])
        if not final and (after.endswith(_INCOMPLETE) or not after.startswith(before)):
            return ""  # hold the tokens until the character they spell is complete
        self.shown = len(self.line)
        return after[len(before):]

"""Tasks plug into the one trainer: each supplies data, model, batch loss and validation, and a
loaded-model class for inference. New tasks (seq2seq, classify) register here."""

from __future__ import annotations

from rnnkit.tasks.lm import LanguageModel, LMTask

TASKS = {"lm": (LMTask, LanguageModel)}


def task_classes(name: str):
    from rnnkit.errors import RnnkitError

    if name not in TASKS:
        raise RnnkitError(f"unknown task '{name}' (available: {', '.join(TASKS)})")
    return TASKS[name]

"""The task registry: every module ``rnnkit/tasks/NAME.py`` is the task NAME (adding the file adds the
task), except ``base`` (the contract), private modules (``_*``) and ``NAME_config`` companions (a
task's torch-free config sections, for the model and data modules that import them).

Names are found from the files alone (``rnnkit --help`` imports no task); a task's module is imported
when the task is first asked for. A task defined outside this package (a plug-in, a test) registers
with :func:`register_task`.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path

_EXCLUDED = {"__init__", "base"}
#: tasks registered by register_task, and the modules' tasks once imported
_registered: dict[str, type] = {}


@functools.cache  # the package's files do not change while rnnkit runs
def _module_names() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in Path(__file__).parent.glob("*.py")
                        if p.stem not in _EXCLUDED and not p.stem.startswith("_") and not p.stem.endswith("_config")))


def task_names() -> list[str]:
    """Every known task's name (sorted); imports nothing."""
    return sorted({*_module_names(), *_registered})


def register_task(cls: type) -> type:
    """Register a :class:`rnnkit.tasks.base.Task` subclass under ``cls.name`` (usable as a decorator)."""
    from rnnkit.tasks.base import check_task_class

    check_task_class(cls)
    _registered[cls.name] = cls
    return cls


def unregister_task(name: str) -> None:
    """Forget a task :func:`register_task` added (tests)."""
    _registered.pop(name, None)


def get_task(name: str) -> type:
    """The task class of ``name``; an error naming the known tasks for any other."""
    if name in _registered:
        return _registered[name]
    if name not in _module_names():
        from rnnkit.errors import RnnkitError

        raise RnnkitError(f"unknown task '{name}' (available: {', '.join(task_names())})")
    from rnnkit.tasks.base import Task

    module = importlib.import_module(f"rnnkit.tasks.{name}")
    found = [c for c in vars(module).values()
             if isinstance(c, type) and issubclass(c, Task) and getattr(c, "name", None) == name]
    if len(found) != 1:
        raise TypeError(f"rnnkit/tasks/{name}.py must define one Task subclass with name = {name!r}")
    return register_task(found[0])


def all_tasks() -> list[type]:
    """Every known task class (imports every task module)."""
    return [get_task(name) for name in task_names()]


def task_classes(name: str) -> tuple[type, type]:
    """(task class, loaded-model class) of ``name``."""
    task = get_task(name)
    return task, task.loaded_class

"""Checks of the public Python API's arguments, so that misuse fails like the command line does.

A value of the wrong type is a ``TypeError`` naming the argument (the command line never passes one);
a value of the right type that no run can use is an :class:`RnnkitError` naming it (the command line
prints it as one ``error:`` line).
"""

from __future__ import annotations

import os
from typing import Any

from rnnkit.errors import RnnkitError


def _type_name(value: Any) -> str:
    return type(value).__name__


def check_path_argument(value: Any, name: str, optional: bool = False) -> None:
    """A file or folder path: ``str`` or ``os.PathLike`` (``None`` too when ``optional``)."""
    if value is None and optional:
        return
    if not isinstance(value, (str, os.PathLike)):
        wanted = "a path (str or pathlib.Path)" + (" or None" if optional else "")
        raise TypeError(f"{name} must be {wanted}, got {_type_name(value)} {value!r:.60}")


def check_int_argument(value: Any, name: str, low: int | None = None, optional: bool = False) -> None:
    """An ``int`` (not a bool, not a float) of at least ``low`` (``None`` too when ``optional``)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int{' or None' if optional else ''}, got {_type_name(value)} "
                        f"{value!r:.60}")
    if low is not None and value < low:
        raise RnnkitError(f"{name} must be at least {low}, got {value}")


def check_bool_argument(value: Any, name: str) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {_type_name(value)} {value!r:.60}")


def check_str_argument(value: Any, name: str, example: str, optional: bool = False) -> None:
    """A ``str`` (``None`` too when ``optional``); ``example`` says what it may be."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str ({example}){' or None' if optional else ''}, got {_type_name(value)}")


def check_overrides_argument(value: Any, name: str = "overrides") -> None:
    """A list (or tuple) of ``'section.key=value'`` strings, or None."""
    if value is None:
        return
    if isinstance(value, str):
        raise TypeError(f"{name} must be a list of 'section.key=value' strings, not one string: pass "
                        f"[{value!r:.60}]")
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise TypeError(f"{name} must be a list of 'section.key=value' strings, got {value!r:.60}")

"""Holding validation and test parts out of one data set (pairs, labelled examples): deterministic."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnkit.errors import RnnkitError


def held_out_parts(n: int, valid_fraction: float, test_fraction: float, mode: str, seed: int, what: str,
                   path: str | Path | None) -> tuple[list[int], list[int], list[int]]:
    """Indices of (train, valid, test) out of ``n`` items, each part in file order.

    ``tail`` keeps the file order and holds out its end, ``[train | valid | test]`` (Keras'
    ``validation_split``); ``random`` chooses by a permutation seeded by ``seed``. Held-out sizes are
    ``floor(n * fraction)``, at least one for a non-zero fraction; too few items to train on is an error
    naming ``path`` and counting ``what`` ("pairs", "examples")."""
    n_valid, n_test = (max(int(n * f), 1) if f > 0 else 0 for f in (valid_fraction, test_fraction))
    if n - n_valid - n_test < 1:
        raise RnnkitError(f"only {n} {what}: too few to hold out {n_valid} for validation and {n_test} for "
                          "testing and still train", path)
    order = np.arange(n) if mode == "tail" else np.random.default_rng(seed).permutation(n)
    cut_train, cut_valid = n - n_valid - n_test, n - n_test
    return tuple(sorted(part.tolist()) for part in (order[:cut_train], order[cut_train:cut_valid],
                                                   order[cut_valid:]))

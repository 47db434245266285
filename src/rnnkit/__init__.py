"""rnnkit: recurrent sequence models (RNN, GRU, LSTM) on PyTorch.

    import rnnkit
    lm = rnnkit.train("lm", recipe="seed-002", data="fable.txt", out="runs/fable")
    print(lm.generate("had a general", n=32, greedy=True)[0])
    lm = rnnkit.load("runs/fable")

Importing the package does not import torch (``rnnkit --help`` and ``rnnkit recipes`` start at once):
``train`` and ``load`` load :mod:`rnnkit.api` on first use. The import does set the process's CPU
defaults first (glibc malloc thresholds, OpenMP passive waiting; :mod:`rnnkit.runtime`).
"""

import sys
import types

from rnnkit import runtime
from rnnkit.errors import RnnkitError

runtime.configure_process()

__version__ = "0.1.0"
__all__ = ["RnnkitError", "__version__", "load", "train"]


def __getattr__(name: str):
    if name in ("train", "load"):
        from rnnkit import api

        return getattr(api, name)
    raise AttributeError(f"module 'rnnkit' has no attribute '{name}'")


class _Package(types.ModuleType):
    """``rnnkit.train`` is the API function, also once the submodule rnnkit.train (the trainer) is
    imported, which would otherwise rebind the name to the module; the module stays in sys.modules."""

    def __setattr__(self, name: str, value) -> None:
        if name == "train" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

"""rnnkit: recurrent sequence models (RNN, GRU, LSTM) on PyTorch.

    import rnnkit
    lm = rnnkit.train("lm", recipe="seed-002", data="fable.txt", out="runs/fable")
    print(lm.generate("had a general", n=32, greedy=True)[0])
    lm = rnnkit.load("runs/fable")
"""

from rnnkit.api import load, train
from rnnkit.errors import RnnkitError

__version__ = "0.1.0"
__all__ = ["RnnkitError", "__version__", "load", "train"]

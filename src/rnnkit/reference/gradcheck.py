"""Gradient check: analytic gradients of :class:`NumpyLanguageModel` against centred finite differences.

For each parameter a bounded number of entries is sampled; for each entry
``numeric = (loss(p + eps) - loss(p - eps)) / (2 eps)`` and the relative error is
``|analytic - numeric| / max(|analytic| + |numeric|, tiny)``; the maximum over the sampled entries is
reported. The analytic gradients are the float64 ones; the losses for the differences are evaluated on
a copy of the model in extended precision (``np.longdouble``; where that is just float64 the smallest
entries may show ~1e-6 from rounding alone). A correct gradient then gives about 1e-8 or less; a wrong
one gives 1e-3 or more.

With ``bptt_truncate=k`` the finite differences are taken of the truncated gradient's own objective:
the sum over output steps t of the loss at t computed from the (unperturbed, constant) states entering
step max(0, t-k) -- the function whose exact gradient truncated BPTT is.

``rnnkit gradcheck --cell lstm|gru|rnn`` calls :func:`run`.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

import numpy as np

from .lm import NumpyLanguageModel, cross_entropy

__all__ = ["gradcheck", "run"]


def _relu_pattern(caches: list) -> np.ndarray:
    """Which ReLU units are on, at every layer and step (from rnn_step's caches: (x, h, h_new, act))."""
    return np.concatenate([(c[2] > 0).ravel() for layer in caches for c in layer])


def _objective(model: NumpyLanguageModel, x, y, state, ignore_index: int):
    """The mean loss, and the ReLU on/off pattern (None for smooth cells)."""
    logits, _, (_, caches, _) = model._forward(x, state)
    pattern = _relu_pattern(caches) if model.cell == "rnn_relu" else None
    return cross_entropy(logits, y, ignore_index)[0], pattern


def _truncated_objective(model: NumpyLanguageModel, x, y, states_before, k: int, ignore_index: int):
    """sum_t loss_t with the state entering step max(0, t-k) held at states_before[max(0, t-k)]."""
    total = max(int((y != ignore_index).sum()), 1)
    loss, patterns = 0.0, []
    for t in range(x.shape[0]):
        s = max(0, t - k)
        logits, _, (_, caches, _) = model._forward(x[s:t + 1], states_before[s])
        if model.cell == "rnn_relu":
            patterns.append(_relu_pattern(caches))
        n_t = int((y[t] != ignore_index).sum())
        if n_t:
            loss += cross_entropy(logits[-1], y[t], ignore_index)[0] * n_t / total
    return loss, (np.concatenate(patterns) if patterns else None)


def _states_before_each_step(model: NumpyLanguageModel, x, state) -> list:
    """The state entering each step 0..T-1 (copies, so later perturbations cannot change them)."""
    out = []
    for t in range(x.shape[0]):
        out.append(state)
        _, state = model.forward(x[t:t + 1], state)
    return out


def gradcheck(
    cell: str,
    *,
    num_layers: int = 2,
    vocab_size: int = 7,
    embedding_size: int = 5,
    hidden_size: int = 4,
    T: int = 5,
    batch: int = 3,
    bptt_truncate: int | None = None,
    eps: float = 1e-5,
    seed: int = 0,
    tie_weights: bool = False,
    num_checks: int = 10,
    ignore_index: int = -100,
    tiny: float = 1e-12,
    fd_dtype: Any = np.longdouble,
    details: list | None = None,
) -> list[tuple[str, float]]:
    """Check every parameter of a small random model; returns [(name, max relative error)].

    The batch has random tokens, about a fifth of the targets set to ``ignore_index`` and a random
    non-zero initial state, so masking and state-carrying paths are exercised. With tied weights the
    shared array is checked once, under ``embedding.weight``.

    num_checks entries are sampled per parameter (an entry where a ReLU switches on or off between
    p - eps and p + eps is replaced by another: the difference quotient across a kink means nothing).
    tiny floors the relative error's denominator; fd_dtype is the precision of the finite-difference
    evaluations. If ``details`` is a list, (name, shape, max relative error, entries replaced) rows are
    appended to it.
    """
    rng = np.random.default_rng(seed)
    if tie_weights:
        embedding_size = hidden_size
    model = NumpyLanguageModel(cell, vocab_size, embedding_size, hidden_size, num_layers,
                               tie_weights=tie_weights, seed=seed)
    x = rng.integers(0, vocab_size, (T, batch))
    y = rng.integers(0, vocab_size, (T, batch))
    y[rng.random((T, batch)) < 0.2] = ignore_index
    y[0, 0] = 0  # never all ignored
    state = [rng.uniform(-0.5, 0.5, s.shape) for s in model.init_state(batch)] if model.cell != "lstm" else [
        (rng.uniform(-0.5, 0.5, h.shape), rng.uniform(-0.5, 0.5, c.shape)) for h, c in model.init_state(batch)
    ]

    # The analytic gradient under test is the float64 one.
    _, grads, _ = model.loss_and_grads(x, y, state, bptt_truncate=bptt_truncate, ignore_index=ignore_index)

    # The differences are taken on a copy in extended precision (x86: 64-bit mantissa): in float64 the
    # loss is only known to ~1 ulp (4e-16 at loss ~2), which over 2*eps = 2e-5 is an error of 2e-11 in
    # the numeric gradient -- more than 1e-6 relative for the small entries deep layers have.
    fd = NumpyLanguageModel(cell, vocab_size, embedding_size, hidden_size, num_layers,
                            tie_weights=tie_weights, dtype=fd_dtype)
    fd.load_state_dict(model.params)
    if bptt_truncate is None:
        def objective():
            return _objective(fd, x, y, state, ignore_index)
    else:
        before = _states_before_each_step(fd, x, state)

        def objective():
            return _truncated_objective(fd, x, y, before, bptt_truncate, ignore_index)

    results = []
    for name in model.unique_names():
        p, g = fd.params[name], grads[name]
        worst, checked, skipped = 0.0, 0, 0
        for i in rng.permutation(p.size):  # random entries until num_checks have been checked
            if checked == num_checks:
                break
            old = p.flat[i]
            p.flat[i] = old + eps
            (plus, on_plus), hi = objective(), p.flat[i]
            p.flat[i] = old - eps
            (minus, on_minus), lo = objective(), p.flat[i]
            p.flat[i] = old  # restore exactly, not by subtracting eps again
            if on_plus is not None and not np.array_equal(on_plus, on_minus):
                # A ReLU switched between p-eps and p+eps: the loss has a kink there and the difference
                # quotient is not a derivative. Such an entry says nothing; take another.
                skipped += 1
                continue
            numeric = float((plus - minus) / (hi - lo))  # the step actually taken, after rounding
            analytic = g.flat[i]
            err = abs(analytic - numeric) / max(abs(analytic) + abs(numeric), tiny)
            if not err <= worst:  # written so that a nan error also becomes the worst (max() would drop it)
                worst = err
            checked += 1
        results.append((name, float(worst)))
        if details is not None:
            details.append((name, p.shape, float(worst), skipped))
    return results


def run(cell: str, threshold: float = 1e-6, file: TextIO | None = None, **kw: Any) -> int:
    """Print ``parameter  shape  max rel error  ok`` for every parameter; 0 if all pass, else 1.

    Keyword arguments go to :func:`gradcheck`.
    """
    out = sys.stdout if file is None else file
    rows: list = []
    gradcheck(cell, details=rows, **kw)
    trunc = kw.get("bptt_truncate")
    print(f"gradcheck {cell}: {'full BPTT' if trunc is None else f'bptt_truncate={trunc}'}, "
          f"threshold {threshold:g}", file=out)
    width = max(len("parameter"), *(len(r[0]) for r in rows))
    print(f"{'parameter':<{width}}  {'shape':<12}  {'max rel error':>13}  ok", file=out)
    failed = 0
    for name, shape, err, _ in rows:
        ok = err < threshold
        failed += not ok
        shape_s = "x".join(map(str, shape))
        print(f"{name:<{width}}  {shape_s:<12}  {err:>13.3e}  {'yes' if ok else 'NO'}", file=out)
    if kw.get("tie_weights"):
        print("(output.weight is tied to embedding.weight and checked with it)", file=out)
    skipped = sum(r[3] for r in rows)
    if skipped:
        print(f"({skipped} sampled entries were replaced: a ReLU switched within +-eps)", file=out)
    print(f"{len(rows) - failed}/{len(rows)} parameters pass", file=out)
    return 0 if failed == 0 else 1

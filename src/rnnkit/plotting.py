"""Learning curves from the training log."""

from __future__ import annotations

import io
from pathlib import Path

from rnnkit.checkpoint import atomic_write_bytes


def plot_curves(rows: list[dict], path: str | Path, metric: str = "ppl") -> None:
    """Train and validation ``metric`` against the update step, saved as a PNG (log-scale y).

    Drawn on a bare ``Figure`` with fixed margins: importing pyplot and ``tight_layout`` (which lays the
    text out twice) took most of the time of a drawing, and a short run draws at every checkpoint.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=100)
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.12, top=0.96)
    ax = fig.add_subplot()
    for split, style in (("train", "-"), ("valid", "o-")):
        pts = [(r["step"], r[metric]) for r in rows if r["split"] == split and r.get(metric) not in (None, "")]
        if pts:
            ax.plot(*zip(*pts, strict=True), style, label=split, markersize=3)
    ax.set_xlabel("update step")
    ax.set_ylabel(metric)
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())

"""Learning curves from the training log."""

from __future__ import annotations

import io
from pathlib import Path

from rnnkit.checkpoint import atomic_write_bytes


def plot_curves(rows: list[dict], path: str | Path, metric: str = "ppl") -> None:
    """Train and validation ``metric`` against the update step, saved as a PNG (log-scale y)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for split, style in (("train", "-"), ("valid", "o-")):
        pts = [(r["step"], r[metric]) for r in rows if r["split"] == split and r.get(metric) not in (None, "")]
        if pts:
            ax.plot(*zip(*pts, strict=True), style, label=split, markersize=3)
    ax.set_xlabel("update step")
    ax.set_ylabel(metric)
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())

"""Learning curves from the training log, and a classifier's confusion matrix."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from rnnkit.checkpoint import atomic_write_bytes

#: metrics drawn on a log scale (losses span orders of magnitude); the others (accuracy, BLEU) are linear
LOG_SCALE = ("loss", "ppl", "bpc")


def _save(fig, path: str | Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())


def plot_curves(rows: list[dict], path: str | Path, metric: str | Sequence[str] = "ppl") -> None:
    """Train and validation ``metric`` against the update step, saved as a PNG; several metrics (a task's
    loss and its selection metric, e.g. accuracy) side by side, one panel each.

    Drawn on a bare ``Figure`` with fixed margins: importing pyplot and ``tight_layout`` (which lays the
    text out twice) took most of the time of a drawing, and a short run draws at every checkpoint.
    """
    from matplotlib.figure import Figure

    metrics = [metric] if isinstance(metric, str) else list(metric)
    fig = Figure(figsize=(6 * len(metrics), 4), dpi=100)
    fig.subplots_adjust(left=1.0 / fig.get_figwidth(), right=0.97, bottom=0.12, top=0.96, wspace=0.25)  # 1 inch
    for k, name in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), k + 1)
        for split, style in (("train", "-"), ("valid", "o-")):
            pts = [(r["step"], r[name]) for r in rows if r["split"] == split and r.get(name) not in (None, "")]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, label=split, markersize=3)
        ax.set_xlabel("update step")
        ax.set_ylabel(name)
        if name in LOG_SCALE:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend()
    _save(fig, path)


def plot_confusion(confusion: list[list[int]], labels: list[str], path: str | Path) -> None:
    """A confusion matrix (rows: true class, columns: predicted) as a PNG heatmap with the counts written in."""
    from matplotlib.figure import Figure

    n = len(labels)
    size = min(max(4.0, 0.6 * n + 2), 20.0)
    fig = Figure(figsize=(size, size), dpi=100)
    fig.subplots_adjust(left=0.18, right=0.95, bottom=0.18, top=0.92)
    ax = fig.add_subplot()
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=45 if max(map(len, labels)) > 3 else 0)
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = max(max(row) for row in confusion) or 1
    if n <= 30:
        for i, row in enumerate(confusion):
            for j, count in enumerate(row):
                ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                        color="white" if count > top / 2 else "black")
    ax.set_title("confusion matrix")
    _save(fig, path)

"""Drawings: learning curves from the training log, a classifier's confusion matrix, attention heatmaps of a
translation."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path

from rnnkit.checkpoint import atomic_write_bytes

#: metrics drawn on a log scale when their values span more than LOG_SCALE_SPAN (an LM's perplexity falls by
#: orders of magnitude; a classifier's loss from 0.69 to 0.3 reads better on a linear axis, as seed 003 draws
#: it); the others (accuracy, BLEU) are always linear
LOG_SCALE = ("loss", "ppl", "bpc")
LOG_SCALE_SPAN = 10.0


def _save(fig, path: str | Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())


def plot_curves(rows: list[dict], path: str | Path, metric: str | Sequence[str] = "ppl") -> None:
    """Train and validation ``metric`` against the update step, saved as a PNG; several metrics (a task's
    loss and its selection metric, e.g. accuracy) side by side, one panel each, each with the rows of both
    splits that hold it (a classifier's train rows hold the accuracy of its training batches).

    Drawn on a bare ``Figure`` with fixed margins: importing pyplot and ``tight_layout`` (which lays the
    text out twice) took most of the time of a drawing, and a short run draws at every checkpoint.
    """
    from matplotlib.figure import Figure

    metrics = [metric] if isinstance(metric, str) else list(metric)
    fig = Figure(figsize=(6 * len(metrics), 4), dpi=100)
    fig.subplots_adjust(left=1.0 / fig.get_figwidth(), right=0.97, bottom=0.12, top=0.96, wspace=0.25)  # 1 inch
    for k, name in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), k + 1)
        values = []
        for split, style in (("train", "-"), ("valid", "o-")):
            pts = [(r["step"], r[name]) for r in rows if r["split"] == split and r.get(name) not in (None, "")]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, label=split, markersize=3)
                values += [float(v) for _, v in pts]
        ax.set_xlabel("update step")
        ax.set_ylabel(name)
        if name in LOG_SCALE and min(values, default=0) > 0 and max(values) > LOG_SCALE_SPAN * min(values):
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


#: the most source / output tokens labelled on an attention plot's axes (longer ones are drawn unlabelled)
MAX_LABELS = 80
#: fonts with Chinese / Japanese / Korean glyphs, used for the labels when installed (matplotlib falls back
#: glyph by glyph along the list; its default DejaVu Sans has none of them)
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
             "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN", "Microsoft YaHei", "SimHei",
             "PingFang SC", "Hiragino Sans GB", "Arial Unicode MS")


def plot_attention(source: list[str], output: list[str], weights, path: str | Path, overwrite: bool = False,
                   inputs: Sequence[tuple[str, str | Path | None]] = ()) -> bool:
    """Attention weights of one sentence as a heatmap saved as a PNG: one row per output token (top to
    bottom), one column per source token, darker = more weight. ``weights`` is ``len(output) x len(source)``
    (a nested list, NumPy array or tensor). The file is checked (:func:`rnnkit.files.check_output_file`: a new
    file, or with ``overwrite`` a plain one; never one of ``inputs`` nor in a model directory) and written
    atomically. Returns False when some characters of the tokens are in no installed font (drawn as boxes)."""
    import numpy as np
    from matplotlib.figure import Figure

    from rnnkit.checkpoint import check_output_file

    grid = np.asarray(weights.tolist() if hasattr(weights, "tolist") else weights, dtype=float)
    if grid.shape != (len(output), len(source)):
        raise ValueError(f"weights must be len(output) x len(source) = {len(output)} x {len(source)}, "
                         f"got {grid.shape}")
    check_output_file(path, "--attention-plot", overwrite, inputs)
    cell = 0.3  # inches per token: labels stay readable on long sentences
    fig = Figure(figsize=(min(2 + cell * len(source), 30), min(1.5 + cell * len(output), 30)), dpi=100)
    ax = fig.add_subplot()
    image = ax.imshow(grid, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    fonts = _label_fonts()
    _label_axis(ax.set_xticks, ax.set_xticklabels, source, fonts, rotation=90)
    _label_axis(ax.set_yticks, ax.set_yticklabels, output, fonts, rotation=0)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.colorbar(image, ax=ax, fraction=0.04)
    buf = io.BytesIO()
    with warnings.catch_warnings(record=True) as caught:  # matplotlib warns once per glyph it cannot draw
        warnings.simplefilter("always", UserWarning)
        fig.savefig(buf, format="png", bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return not any("missing from font" in str(w.message) for w in caught)


def _label_fonts() -> list[str]:
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    return ["DejaVu Sans", *(name for name in CJK_FONTS if name in installed)]


def _label_axis(set_ticks, set_labels, tokens: list[str], fonts: list[str], rotation: int) -> None:
    if len(tokens) <= MAX_LABELS:
        set_ticks(range(len(tokens)))
        set_labels(tokens, rotation=rotation, fontsize=8, fontfamily=fonts)

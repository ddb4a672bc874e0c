"""The report's figures, drawn with matplotlib's Agg canvas (no screen, no pyplot state) and returned as
`data:image/png;base64,...` URIs, so report.html carries its images inside itself.

Each function takes plain JSON values (a training history, a confusion matrix, per-class rows, calibration
bins) and returns one URI, or None when there is nothing to draw.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

TRAIN_COLOUR, VAL_COLOUR, BEST_COLOUR = "#1f77b4", "#d62728", "#7f7f7f"
MAX_ANNOTATED_CLASSES = 20  # beyond this the heatmap's cell counts would be unreadable


def _figure(width: float, height: float, rows: int = 1, cols: int = 1, **grid: Any):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)  # Agg explicitly: the same PNG on any machine, display or not
    axes = figure.subplots(rows, cols, squeeze=False, gridspec_kw=grid or None)
    return figure, list(axes.ravel())


def figure_uri(figure) -> str:
    """PNG bytes of a matplotlib figure as a data URI."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _series(history: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    points = [(row["epoch"], row[key]) for row in history if isinstance(row.get(key), (int, float))]
    return [p[0] for p in points], [p[1] for p in points]


def _metric_keys(history: Sequence[dict[str, Any]]) -> list[str]:
    """Validation (and training) metrics other than loss, in the order the training loop logged them."""
    keys: list[str] = []
    for row in history:
        for key in row:
            if key.startswith(("val_", "train_")) and not key.endswith("_loss") and key not in keys:
                keys.append(key)
    return keys


def learning_curves(history: Sequence[dict[str, Any]], title: str, best_epoch: int | None = None) -> str | None:
    """Loss per epoch (train vs validation) and, when logged, the validation metrics per epoch."""
    if not history:
        return None
    metrics = _metric_keys(history)
    figure, axes = _figure(10 if metrics else 5.5, 3.4, cols=2 if metrics else 1)
    loss_ax = axes[0]
    for key, colour, name in (("train_loss", TRAIN_COLOUR, "train"), ("val_loss", VAL_COLOUR, "validation")):
        epochs, values = _series(history, key)
        if values:
            loss_ax.plot(epochs, values, marker="o", color=colour, label=name)
    loss_ax.set(title=f"{title}: loss", xlabel="epoch", ylabel="loss")
    if metrics:
        for key in metrics:
            epochs, values = _series(history, key)
            style = "--" if key.startswith("train_") else "-"
            axes[1].plot(epochs, values, style, marker="o", label=key.replace("_", " "))
        axes[1].set(title=f"{title}: metrics", xlabel="epoch", ylabel="score")
    for ax in axes:
        if best_epoch is not None:
            ax.axvline(best_epoch, color=BEST_COLOUR, linestyle=":", label=f"best epoch ({best_epoch})")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return figure_uri(figure)


def confusion_heatmap(matrix: Sequence[Sequence[int]], labels: Sequence[str]) -> str | None:
    """Rows = true class, columns = predicted; colour is the share of the row (recall), text the count."""
    import numpy as np

    counts = np.asarray(matrix, dtype=float)
    if counts.size == 0:
        return None
    k = len(labels)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = min(max(3.5, 0.45 * k + 2), 14)
    figure, (ax,) = _figure(side + 1, side)
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=ax, label="share of true class", shrink=0.8)
    ticks = range(k)
    names = [str(name)[:24] for name in labels]
    ax.set_xticks(ticks, names, rotation=45 if k > 3 else 0, ha="right" if k > 3 else "center", fontsize=8)
    ax.set_yticks(ticks, names, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix")
    if k <= MAX_ANNOTATED_CLASSES:
        for i in range(k):
            for j in range(k):
                colour = "white" if shares[i, j] > 0.6 else "black"
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", color=colour, fontsize=8)
    return figure_uri(figure)


def per_class_bars(per_class: dict[str, dict[str, float]]) -> str | None:
    """Precision, recall and F1 of each class as grouped horizontal bars (support in the tick label)."""
    import numpy as np

    if not per_class:
        return None
    names = list(per_class)
    k = len(names)
    figure, (ax,) = _figure(7.5, min(max(2.5, 0.5 * k + 1.2), 30))
    positions = np.arange(k)
    height = 0.26
    for offset, key, colour in ((-1, "precision", "#4c72b0"), (0, "recall", "#55a868"), (1, "f1", "#c44e52")):
        values = [per_class[name].get(key, 0.0) for name in names]
        ax.barh(positions + offset * height, values, height, label=key, color=colour)
    ticks = [f"{str(name)[:24]} (n={per_class[name].get('support', '?')})" for name in names]
    ax.set_yticks(positions, ticks, fontsize=8)
    ax.invert_yaxis()  # first class on top, as in the table
    ax.set(xlim=(0, 1.0), xlabel="score", title="per-class precision, recall, F1")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never over them
    return figure_uri(figure)


def reliability_diagram(bins: Sequence[dict[str, float]], ece: float | None = None) -> str | None:
    """Accuracy vs confidence per bin (a calibrated model sits on the diagonal), and how many examples each bin holds."""
    if not bins:
        return None
    figure, (top, bottom) = _figure(5.5, 5.2, rows=2, height_ratios=[3, 1])
    lefts = [b["low"] for b in bins]
    widths = [b["high"] - b["low"] for b in bins]
    top.bar(
        lefts, [b["accuracy"] for b in bins], widths, align="edge", color="#4c72b0", edgecolor="white", label="accuracy"
    )
    top.plot([0, 1], [0, 1], "--", color=BEST_COLOUR, label="perfect calibration")
    top.plot(
        [b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o", color=VAL_COLOUR, label="mean confidence"
    )
    title = "reliability diagram" + (f" (ECE {ece:.3f})" if ece is not None else "")
    top.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy", title=title)
    top.legend(fontsize=8, loc="upper left")
    bottom.bar(lefts, [b["count"] for b in bins], widths, align="edge", color="#8172b2", edgecolor="white")
    bottom.set(xlim=(0, 1), xlabel="confidence (probability of the predicted class)", ylabel="examples")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    return figure_uri(figure)

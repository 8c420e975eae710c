"""What a training run leaves besides the model: its history as JSON, and a plot of it as PNG.

:func:`history_record` is the JSON-ready record of a :class:`~webml.train.transfer.TrainResult`:
the loss and the validation accuracy per epoch (``loss[i]`` is epoch ``i + 1``'s
mean training loss), the seconds per epoch, the class names and the confusion
matrix on the validation split (rows: true class, columns: predicted).
:func:`plot_history` draws the loss and accuracy curves and the confusion
matrix into one PNG, with matplotlib's Agg renderer (no display needed, no
global backend changed).
"""

from __future__ import annotations

import json
import os
from typing import Any

from .transfer import TrainResult

__all__ = ["HISTORY_FORMAT", "history_record", "plot_history", "write_history"]

#: The ``format`` entry of history files.
HISTORY_FORMAT = "webml.train.history"


def history_record(result: TrainResult) -> dict[str, Any]:
    """The run's history, JSON-ready."""
    history = result.history
    return {
        "format": HISTORY_FORMAT,
        "version": 1,
        "epochs": int(history.get("epochs", len(history["loss"]))),
        "loss": [float(v) for v in history["loss"]],
        "val_accuracy": [float(v) for v in history.get("val_accuracy", [])],
        "seconds": [float(v) for v in history.get("time", [])],
        "validation_accuracy": result.validation_accuracy,
        "train_images": result.train_count,
        "validation_images": result.validation_count,
        "class_names": list(result.classifier.class_names),
        "confusion_matrix": None if result.confusion is None else result.confusion.tolist(),
    }


def write_history(result: TrainResult, path: str | os.PathLike[str]) -> None:
    """Write :func:`history_record` to ``path`` as JSON."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(history_record(result), f, indent=1)
        f.write("\n")


def plot_history(result: TrainResult, path: str | os.PathLike[str]) -> None:
    """Draw the loss and accuracy per epoch and the validation confusion matrix into the PNG ``path``."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ModuleNotFoundError("plots need matplotlib, which is not installed: pip install matplotlib") from None
    record = history_record(result)
    epochs = list(range(1, len(record["loss"]) + 1))
    figure = Figure(figsize=(13, 4.2), layout="constrained")
    FigureCanvasAgg(figure)  # attaches the Agg renderer to this figure only
    loss, accuracy, matrix = figure.subplots(1, 3)
    loss.plot(epochs, record["loss"], marker=".")
    loss.set(title="training loss", xlabel="epoch", ylabel="softmax cross-entropy")
    if record["val_accuracy"]:
        accuracy.plot(epochs, record["val_accuracy"], marker=".", color="tab:green")
        accuracy.set_ylim(-0.02, 1.02)
    else:
        accuracy.text(0.5, 0.5, "no validation split", ha="center", va="center", transform=accuracy.transAxes)
    accuracy.set(title="validation accuracy", xlabel="epoch", ylabel="accuracy")
    _draw_confusion(matrix, record)
    figure.savefig(os.fspath(path), format="png", dpi=100)


def _draw_confusion(ax: Any, record: dict[str, Any]) -> None:
    names = record["class_names"]
    ax.set_title("confusion matrix (validation)")
    if record["confusion_matrix"] is None:
        ax.text(0.5, 0.5, "no validation split", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    counts = record["confusion_matrix"]
    ax.imshow(counts, cmap="Blues")
    top = max(max(row) for row in counts) or 1
    for i, row in enumerate(counts):
        for j, n in enumerate(row):
            ax.text(j, i, str(n), ha="center", va="center", color="white" if n > top / 2 else "black")
    ticks = range(len(names))
    ax.set_xticks(ticks, names, rotation=45, ha="right")
    ax.set_yticks(ticks, names)
    ax.set(xlabel="predicted", ylabel="true")

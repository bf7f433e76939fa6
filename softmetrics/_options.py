"""The option vocabulary, defined once: the accepted strings of every option that more
than one family takes, as `Literal` aliases for annotations and tuples for the checks."""

from __future__ import annotations

from typing import Literal

__all__ = [
    "AVERAGES",
    "MULTIDIM_AVERAGES",
    "REDUCTIONS",
    "SMOOTHS",
    "TASKS",
    "Average",
    "MultidimAverage",
    "Reduction",
    "Smooth",
    "Task",
]

Task = Literal["binary", "multiclass", "multilabel"]
Average = Literal["micro", "macro", "weighted", "none"]
MultidimAverage = Literal["global", "samplewise"]
Reduction = Literal["mean", "sum", "none"]
Smooth = Literal["none", "floor", "add-k", "exp"]

TASKS: tuple[Task, ...] = ("binary", "multiclass", "multilabel")
AVERAGES: tuple[Average, ...] = ("micro", "macro", "weighted", "none")
MULTIDIM_AVERAGES: tuple[MultidimAverage, ...] = ("global", "samplewise")
REDUCTIONS: tuple[Reduction, ...] = ("mean", "sum", "none")
SMOOTHS: tuple[Smooth, ...] = ("none", "floor", "add-k", "exp")

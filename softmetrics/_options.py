"""The option vocabulary, defined once: the accepted strings of every option that more
than one family takes, as `Literal` aliases for annotations and tuples for the checks."""

from __future__ import annotations

from typing import Literal

__all__ = [
    "ABSENT_CLASSES",
    "AVERAGES",
    "GATHERS",
    "MULTIDIM_AVERAGES",
    "PADDING_SIDES",
    "REDUCTIONS",
    "RELAXATIONS",
    "SMOOTHS",
    "TASKS",
    "AbsentClasses",
    "Average",
    "Gather",
    "MultidimAverage",
    "PaddingSide",
    "Reduction",
    "Relaxation",
    "Smooth",
    "Task",
]

Task = Literal["binary", "multiclass", "multilabel"]
Average = Literal["micro", "macro", "weighted", "none"]
MultidimAverage = Literal["global", "samplewise"]
Reduction = Literal["mean", "sum", "none"]
Smooth = Literal["none", "floor", "add-k", "exp"]
PaddingSide = Literal["right", "left"]
AbsentClasses = Literal["skip", "include"]
Relaxation = Literal["softmax", "lovasz"]
# the keys of every process: False (none), True (all-gathered), "ring" (passed around)
Gather = bool | Literal["ring"]

TASKS: tuple[Task, ...] = ("binary", "multiclass", "multilabel")
AVERAGES: tuple[Average, ...] = ("micro", "macro", "weighted", "none")
MULTIDIM_AVERAGES: tuple[MultidimAverage, ...] = ("global", "samplewise")
REDUCTIONS: tuple[Reduction, ...] = ("mean", "sum", "none")
SMOOTHS: tuple[Smooth, ...] = ("none", "floor", "add-k", "exp")
PADDING_SIDES: tuple[PaddingSide, ...] = ("right", "left")
ABSENT_CLASSES: tuple[AbsentClasses, ...] = ("skip", "include")
RELAXATIONS: tuple[Relaxation, ...] = ("softmax", "lovasz")
GATHERS: tuple[Gather, ...] = (False, True, "ring")

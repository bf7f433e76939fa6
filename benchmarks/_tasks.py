"""The tasks of `compare_ce.py` beyond the tabular datasets, behind one interface.

Each task lives in its own module and exposes a `TASK` (or several, see `TASK_MODULES`):

- `check_available()`: stop with a clear message when a package it needs is missing, before
  any training starts;
- `run(seeds, size)`: train every loss of the task and return its record (a
  JSON-serialisable dict with at least "description", "settings", "seeds", "seconds" and
  "comparisons"); `size` is "smoke" (the test suite's tiny run), "default" (the README's
  command: the task's share of about ten minutes on 2 cores, using the run's first seeds
  only if it must, and saying so in its description) or "full" (`--full`); the task shows
  its own progress (`_common.Progress`, one bar per task);
- `markdown(record)`: the docs' tables, after the line `_common.provenance_line` makes of
  the record's "run" and "machine", which `compare_ce.run_task` adds to the body `run`
  returns (with "size"); `console(record)`: the end-of-run summary, each
  loss's own metric next to cross-entropy's with the difference, its interval and verdict
  (`_common.paired`, with `_common.holm` over each baseline's comparisons);
- `plots(record, out)`: writes its PNGs into `out` (names start with
  `compare_ce_<name>`) and returns their file names;
- `compare(record)`: the record's "comparisons" from its per-seed values (what `run`
  stores), so that `verdicts.py --rederive` can apply the current rule to a recorded run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SIZES = ("smoke", "default", "full")


@dataclass(frozen=True)
class Task:
    name: str  # the key of `--tasks`, and the record's file name compare_ce_<name>.json
    title: str  # the heading of its section in the docs and the console
    check_available: Callable[[], None]
    run: Callable[[list[int], str], dict[str, Any]]
    markdown: Callable[[dict[str, Any]], str]
    console: Callable[[dict[str, Any]], str]
    plots: Callable[[dict[str, Any], Path], list[str]]
    compare: Callable[[dict[str, Any]], dict[str, Any]]


# task name -> (module, attribute holding its Task); imported only when selected, so that
# a task's optional packages are not needed by the others
TASK_MODULES: dict[str, tuple[str, str]] = {
    "segmentation": ("_segmentation", "SEGMENTATION"),
    "multilabel": ("_segmentation", "MULTILABEL"),
    "g2p": ("_g2p", "TASK"),
    "pretraining": ("_pretraining", "TASK"),
}


def load(name: str) -> Task:
    module, attribute = TASK_MODULES[name]
    task = getattr(importlib.import_module(module), attribute)
    if not isinstance(task, Task) or task.name != name:
        raise TypeError(f"{module}.{attribute} is not the Task {name!r}")
    return task

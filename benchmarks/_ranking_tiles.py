"""The CPU tile-size part of `benchmarks/ranking.py`: the measurements behind
`softmetrics._tuning.RANKING_TILE_ELEMENTS`.

Forward + backward of `soft_average_precision` (macro, temperature 0.1) on one torch
thread, for each tile size, on binary, multilabel and multiclass problems. The module
constant is set in this process before each timing (the library reads it at call time).
Each of `rounds` rounds times every tile size once (`Timer.blocked_autorange`, median),
one after the other, so that a change of the machine's speed hits all sizes alike; a row
keeps the median over the rounds and the median of the per-round ratios to the largest
tile size.
"""

from __future__ import annotations

import statistics

import torch
from torch.utils.benchmark import Timer

from softmetrics import _tuning
from softmetrics.functional import soft_average_precision

TILE_SIZES = [1 << 16, 1 << 18, 1 << 20, 1 << 22]
# (task, samples, classes): classes 0 for binary
TILE_PROBLEMS = [("binary", 8192, 0), ("multilabel", 2048, 10), ("multilabel", 512, 100),
                 ("multiclass", 4096, 10), ("multiclass", 2048, 100)]
SMOKE_TILE_SIZES = [1 << 10, 1 << 12]
SMOKE_TILE_PROBLEMS = [("binary", 256, 0), ("multilabel", 64, 3), ("multiclass", 64, 3)]


def tile_step(task: str, n: int, c: int, temperature: float):
    """One forward + backward of soft AP on `task`'s random inputs (10% positives for
    binary and multilabel targets, a uniform class for multiclass ones)."""
    g = torch.Generator().manual_seed(0)
    shape = (n,) if task == "binary" else (n, c)
    scores = torch.randn(shape, generator=g).requires_grad_(True)
    if task == "multiclass":
        target = torch.randint(0, c, (n,), generator=g)
    else:
        target = (torch.rand(shape, generator=g) < 0.1).long()
    kw = {} if task == "binary" else {"num_classes": c, "average": "macro"}

    def run() -> None:
        scores.grad = None
        soft_average_precision(scores, target, task=task, temperature=temperature,
                               validate_args=False, **kw).backward()
    return run


def _label(elements: int) -> str:
    return f"2^{elements.bit_length() - 1}"


def tile_sizes(problems: list[tuple[str, int, int]], tiles: list[int], rounds: int,
               min_run_time: float, temperature: float, budget=None, log=print
               ) -> list[dict]:
    """Time every problem at every tile size on one torch thread (restored afterwards);
    stops before the next problem once `budget` is spent."""
    threads = torch.get_num_threads()
    default = _tuning.RANKING_TILE_ELEMENTS
    reference = max(tiles)
    rows: list[dict] = []
    torch.set_num_threads(1)
    try:
        for task, n, c in problems:
            if budget is not None and budget.spent():
                budget.stop(f"the tile sizes of {task} ({n}, {c})")
                break
            run = tile_step(task, n, c, temperature)
            times: dict[int, list[float]] = {t: [] for t in tiles}
            for r in range(rounds):
                for t in tiles:
                    _tuning.RANKING_TILE_ELEMENTS = t
                    if r == 0:
                        run()  # warm-up
                    m = Timer("run()", globals={"run": run}).blocked_autorange(
                        min_run_time=min_run_time)
                    times[t].append(m.median)
            for t in tiles:
                ratios = [a / b for a, b in zip(times[t], times[reference], strict=True)]
                rows.append({"task": task, "n": n, "classes": c, "tile_elements": t,
                             "median_s": statistics.median(times[t]),
                             "ratio": statistics.median(ratios), "rounds": rounds})
            log(" ".join(f"{_label(r['tile_elements'])}: {r['median_s'] * 1e3:.1f} ms"
                         for r in rows[-len(tiles):]) + f"  <- {task} ({n}, {c})")
    finally:
        _tuning.RANKING_TILE_ELEMENTS = default
        torch.set_num_threads(threads)
    return rows


def tiles_table(part: dict) -> str:
    """The tile-size table: median time of each problem at each tile size, and its ratio
    to the largest size."""
    rows = part.get("rows", [])
    if not rows:
        return ""
    tiles = list(dict.fromkeys(r["tile_elements"] for r in rows))
    reference = _label(max(tiles))
    lines = [f"Soft AP (macro), forward + backward on one torch thread, for each "
             f"`RANKING_TILE_ELEMENTS` (pairs per CPU tile; the default is "
             f"{_label(part['default'])}): median of {rows[0]['rounds']} rounds and, in "
             f"brackets, the median per-round ratio to {reference}.", "",
             "| problem | " + " | ".join(_label(t) for t in tiles) + " |",
             "|---|" + "---:|" * len(tiles)]
    for key in dict.fromkeys((r["task"], r["n"], r["classes"]) for r in rows):
        task, n, c = key
        by = {r["tile_elements"]: r for r in rows if (r["task"], r["n"], r["classes"]) == key}
        name = f"{task}, N = {n:,}" if task == "binary" else f"{task}, ({n:,}, {c})"
        cells = [f"{by[t]['median_s'] * 1e3:.0f} ms ({by[t]['ratio']:.2f}x)" if t in by
                 else "" for t in tiles]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

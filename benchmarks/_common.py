"""What the training benchmarks share: where a run writes, what its record says about the
run, progress on the console, the tuning design and the paired statistics.

A user's run writes into an output folder (`results/` at the repository root, ignored by
git; `--out DIR` chooses another); only `--record` writes the record that the docs show
(`docs/benchmarks/`). Every record names the command, the commit, the date, the machine
and its load (`run_record`, `_machine.machine`).
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, TextIO

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"  # a user's run (git-ignored)
DOCS = ROOT / "docs" / "benchmarks"  # the record the docs show: written by --record only


# ---------------------------------------------------------------------------------------
# where a run writes, and what its record says about the run


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """`--out DIR` and `--record` (exclusive): the two places a run can write to."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--out", type=Path,
                       help=f"output folder (default: {RESULTS.relative_to(ROOT)}/ in the "
                            f"repository, ignored by git)")
    group.add_argument("--record", action="store_true",
                       help=f"write the record that the docs show, under "
                            f"{DOCS.relative_to(ROOT)}/ (and the generated parts of its page)")


def output_dir(args: argparse.Namespace, default: Path = RESULTS) -> Path:
    """The folder a run writes to: `--out`, the docs with `--record`, else `default`."""
    if args.record:
        return DOCS
    return args.out if args.out is not None else default


def refuse_smoke_record(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """`--record` writes the docs' record, which a `--smoke` run must never replace."""
    if args.record and getattr(args, "smoke", False):
        parser.error("--record writes the docs' record; it cannot be combined with --smoke")


def git_commit() -> dict[str, Any]:
    """The checked-out commit (`None` outside a git checkout) and whether tracked files
    differ from it (`dirty`): the code a record's numbers come from."""
    def git(*cmd: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(ROOT), *cmd], capture_output=True,
                                  text=True, timeout=30, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def load_average() -> float | None:
    """The 1-minute load average now (None where the system has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def run_record(command: str, code: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run's command, commit and start time; `finish_record` adds its end.

    `code` reuses the commit and `dirty` of an earlier record of the same run: a run's
    later part must not read the tree that its earlier part has written to.
    """
    state = git_commit() if code is None else {k: code[k] for k in ("commit", "dirty")}
    return {"command": command, **state,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "_t0": time.perf_counter()}


def finish_record(run: dict[str, Any]) -> dict[str, Any]:
    """Close a `run_record`: wall-clock seconds and the load average at the end."""
    out = {k: v for k, v in run.items() if k != "_t0"}
    out["seconds"] = time.perf_counter() - run["_t0"]
    out["load_average_end"] = load_average()
    return out


def command_line(script: str, argv: Sequence[str]) -> str:
    """The command as a user would type it: `python benchmarks/<script> ARGS`."""
    return " ".join(["python", f"benchmarks/{script}", *argv])


def provenance_line(run: dict[str, Any], machine: dict[str, Any], seconds: float) -> str:
    """One Markdown sentence: command, commit, date, time taken, machine and its load."""
    commit = run.get("commit")
    at = ("at an unknown commit" if commit is None else
          f"at commit `{commit[:10]}`" + (" (with uncommitted changes)" if run.get("dirty")
                                          else ""))
    load = [f"{v:.1f}" for v in (machine.get("load_average"), run.get("load_average_end"))
            if v is not None]
    load_text = (f"; load average {load[0]} at the start, {load[1]} at the end"
                 if len(load) == 2 else "")
    again = run.get("verdicts")  # set by `verdicts.py --rederive`
    if again:
        at += (f" (its verdicts re-derived from the recorded per-seed values by "
               f"`{again['command']}` at commit `{str(again['commit'])[:10]}` on "
               f"{again['date']})")
    return (f"Produced by `{run['command']}` {at} on {machine['date']}, in "
            f"{seconds / 60:.1f} minutes on {machine['cpu']} ({machine['cpu_count']} CPUs"
            f"{load_text}; torch threads: {machine['torch_threads']}), {machine['platform']}")


def fresh_compile_cache() -> Any:
    """A new, empty on-disk cache for the compiler's output (Inductor's and Triton's),
    deleted afterwards, so that a compile time is a cold one: torch's own helper, under
    either of its names; where torch has neither, the cache as it is."""
    from torch._inductor import utils

    fresh = getattr(utils, "fresh_cache", None) or getattr(utils, "fresh_inductor_cache", None)
    return fresh() if fresh is not None else nullcontext()


def wrote(out: Path, names: Sequence[str], stream: TextIO | None = None) -> None:
    """The last lines of a run: where its files are."""
    stream = sys.stdout if stream is None else stream
    print(f"\nwrote to {out.resolve()}/:", file=stream)
    for name in names:
        print(f"  {name}", file=stream)
    stream.flush()


# ---------------------------------------------------------------------------------------
# progress


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d}"


class Progress:
    """Progress over a known number of tasks, on `stream` (default: standard error).

    On a terminal: a bar (tqdm), advanced by each task's `tick`s. Anywhere else (a file, a
    pipe): no bar, one line per finished task, its name and the time it and the run took.
    """

    def __init__(self, tasks: int, desc: str, *, ticks_per_task: int = 1,
                 stream: TextIO | None = None) -> None:
        self.tasks, self.desc, self.ticks = tasks, desc, ticks_per_task
        self.stream = sys.stderr if stream is None else stream
        self.done = 0
        self.t0 = time.perf_counter()
        isatty = getattr(self.stream, "isatty", None)
        self.bar = None
        if isatty is not None and isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=tasks * ticks_per_task, desc=desc, file=self.stream,
                            dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    @contextmanager
    def task(self, name: str) -> Iterator[Callable[[int], None]]:
        """Run one task; the yielded `tick(n)` advances the bar by `n` of the task's ticks."""
        t_task = time.perf_counter()
        used = 0

        def tick(n: int = 1) -> None:
            nonlocal used
            n = max(0, min(n, self.ticks - used))
            used += n
            if self.bar is not None and n:
                self.bar.update(n)

        if self.bar is not None:
            self.bar.set_postfix_str(name)
        yield tick
        tick(self.ticks - used)
        self.done += 1
        if self.bar is None:
            now = time.perf_counter()
            width = len(str(self.tasks))
            print(f"{self.desc} [{self.done:{width}d}/{self.tasks}] {name}: "
                  f"{now - t_task:.1f} s (elapsed {_clock(now - self.t0)})",
                  file=self.stream, flush=True)


# ---------------------------------------------------------------------------------------
# the tuning design: the same budget of configurations for every loss

# Fixed before any result was seen: the learning rates, and the range of a loss's own
# hyper-parameter (a temperature, or the weight of a term added to cross-entropy).
LR_RANGE = (1e-3, 3e-2)
EXTRA_RANGES = {"temperature": (0.1, 2.0), "weight": (0.1, 3.0)}


def latin_hypercube(n: int, dims: int, seed: int = 0) -> np.ndarray:
    """`n` points in [0, 1)^dims, one per stratum in every dimension (centred)."""
    rng = np.random.default_rng(seed)
    cols = [(rng.permutation(n) + 0.5) / n for _ in range(dims)]
    return np.stack(cols, axis=1)


def configurations(n: int, extra: str | None = None) -> list[dict[str, float]]:
    """`n` hyper-parameter configurations: the same budget for every loss.

    One fixed design (seed 0) is used for every loss, so every loss sees the same `n`
    learning rates (log scale over `LR_RANGE`); a loss with its own hyper-parameter
    (`extra`, a key of `EXTRA_RANGES`) gets it from the design's second coordinate.
    """
    u = latin_hypercube(n, 2, seed=0)
    lo, hi = np.log(LR_RANGE[0]), np.log(LR_RANGE[1])
    out = []
    for a, b in u:
        cfg = {"lr": float(np.exp(lo + a * (hi - lo)))}
        if extra is not None:
            elo, ehi = (np.log(v) for v in EXTRA_RANGES[extra])
            cfg[extra] = float(np.exp(elo + b * (ehi - elo)))
        out.append(cfg)
    return out


# ---------------------------------------------------------------------------------------
# statistics over seeds


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% Student-t interval over seeds."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return float(v.mean()), float("nan")
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean()), float(half)


# Most benchmarks' seeds re-split one pool of data 60% / 20% / 20% (the tabular datasets;
# the MNIST sample behind the canvas and pre-training tasks): the training sets of two
# seeds overlap, so their differences are correlated and the variance of their mean is
# larger than var / n. Nadeau and Bengio (2003) correct it to var * (1/n + n_test/n_train).
RESPLIT_CORRECTION = 0.2 / 0.6


def few_seeds_caution(seeds: int) -> list[str]:
    """Lines a console prints above its verdicts when the run has fewer than 5 seeds: how
    wide the t interval of so few seeds is."""
    if seeds >= 5:
        return []
    if seeds < 2:
        return [f"Caution: with {seeds} seed there is no interval; every verdict is a tie.",
                ""]
    from scipy import stats

    q = stats.t.ppf(0.975, seeds - 1)
    return [f"Caution: with {seeds} seeds the 95% t interval is +-{q:.1f} standard errors "
            f"wide ({seeds - 1} degree{'s' if seeds > 2 else ''} of freedom):",
            "only a difference far above the seeds' spread is a win or a loss. 5 or more "
            "seeds: `--full`.", ""]


def paired(a: Sequence[float], b: Sequence[float], *, baseline: str,
           correction: float = 0.0) -> dict[str, Any]:
    """`a - b` paired by seed: the mean, its 95% Student-t interval (n - 1 degrees of
    freedom, the variance of the mean `var * (1/n + correction)`; `correction` is
    `RESPLIT_CORRECTION` where the seeds re-split one dataset), the two-sided p-value of
    the same t statistic, and the verdict: win when the interval lies above 0, loss when
    below, tie otherwise (so p < 0.05 exactly when the verdict is not a tie). Fewer than 2
    seeds give no interval and a tie. `holm` adds the family-wise view of a whole table."""
    from scipy import stats

    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    n, mean = len(d), float(d.mean()) if len(d) else 0.0
    if n < 2:
        lo, hi, p = -math.inf, math.inf, 1.0
    else:
        scale = math.sqrt(float(d.var(ddof=1)) * (1.0 / n + correction))
        if scale == 0.0:  # every seed the same difference: no spread to test against
            lo = hi = mean
            p = 1.0 if mean == 0.0 else 0.0
        else:
            half = float(stats.t.ppf(0.975, n - 1)) * scale
            lo, hi = mean - half, mean + half
            p = float(2.0 * stats.t.sf(abs(mean) / scale, n - 1))
    verdict = "win" if lo > 0 else "loss" if hi < 0 else "tie"
    return {"baseline": baseline, "mean_diff": mean, "ci_low": lo, "ci_high": hi, "p": p,
            "verdict": verdict, "correction": correction, "diffs": d.tolist()}


HOLM_NOTE = ("†: the verdict also holds under Holm's correction over all the comparisons "
             "with that baseline (family-wise 5%)")


def verdict_mark(c: dict[str, Any], marks: dict[str, str] | None = None) -> str:
    """A comparison's verdict in a table (through `marks`, e.g. bold wins), with † when it
    holds under Holm's correction (`HOLM_NOTE`)."""
    return (marks or {}).get(c["verdict"], c["verdict"]) + (" †" if c.get("holm") else "")


def console_verdict(c: dict[str, Any]) -> str:
    """A comparison's verdict on the console: win / tie / loss, and "(Holm)" when it holds
    under Holm's correction."""
    return c["verdict"] + (" (Holm)" if c.get("holm") else "")


def comparisons(node: Any, path: tuple[str, ...] = ()
                ) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every paired comparison in a record (a dict with `diffs` and `verdict`, as `paired`
    makes it), with its path of keys."""
    if isinstance(node, dict):
        if "diffs" in node and "verdict" in node:
            yield path, node
            return
        for key, value in node.items():
            yield from comparisons(value, (*path, str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from comparisons(value, (*path, str(i)))


def holm(record: Any, alpha: float = 0.05) -> None:
    """Holm's step-down correction over each table of a record: the comparisons against one
    baseline (their `baseline`). Adds to each comparison `p_holm`, its adjusted p-value,
    and `holm`: whether its verdict holds at family-wise level `alpha` over its table."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for _, c in comparisons(record):
        tables.setdefault(c["baseline"], []).append(c)
    for family in tables.values():
        order = sorted(range(len(family)), key=lambda i: family[i]["p"])
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (len(family) - rank) * family[i]["p"]))
            family[i]["p_holm"] = running
            family[i]["holm"] = running < alpha and family[i]["verdict"] != "tie"


# ---------------------------------------------------------------------------------------
# plots


def finish_time_memory_plot(fig: Any, axes: Sequence[Any], path: Path, *, xlabel: str,
                            xbase: int = 10, legend_rows: int = 0) -> None:
    """Label the two log-log panels of a time / memory plot (forward + backward time, peak
    extra memory) over a size axis, and save the figure to `path`. The legend goes inside
    the time panel, or with `legend_rows` below both panels, in columns of that many
    rows (for many lines, which would hide the time panel's)."""
    import matplotlib.pyplot as plt

    for ax, ylabel in zip(axes, ("forward + backward time (s)", "peak extra memory (MiB)"),
                          strict=True):
        ax.set_xscale("log", base=xbase)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if not legend_rows:
        axes[0].legend(fontsize=7)
        fig.tight_layout()
    elif not labels:  # nothing measured (a run stopped before its first row)
        fig.tight_layout()
    else:
        columns = -(-len(labels) // legend_rows)
        fig.legend(handles, labels, loc="lower center", ncol=columns, fontsize=7,
                   frameon=False)
        # the legend's height: about a fifth of an inch a row, of the figure's height
        fig.tight_layout(rect=(0, min(0.5, 0.2 * (legend_rows + 1) / fig.get_figheight()),
                               1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------
# training many independent networks at once


class BatchedAdam:
    """Adam (Kingma & Ba, 2015) over parameters that stack independent networks, with one
    learning rate per network along the parameters' axis `axis` (every parameter has the
    networks on that axis). Gradients that are not finite count as 0."""

    def __init__(self, params: Sequence[Any], lr: Sequence[float], *, axis: int = 0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        import torch

        self.params = list(params)
        self.lr = torch.tensor(lr, dtype=self.params[0].dtype)
        self.axis = axis
        self.b1, self.b2, self.eps, self.t = betas[0], betas[1], eps, 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    def step(self, grads: Sequence[Any]) -> None:
        import torch

        self.t += 1
        c1, c2 = 1 - self.b1**self.t, 1 - self.b2**self.t
        with torch.no_grad():
            for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
                g = torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)
                m.mul_(self.b1).add_(g, alpha=1 - self.b1)
                v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
                shape = [1] * p.dim()
                shape[self.axis] = -1
                p.sub_(self.lr.view(shape) * (m / c1) / ((v / c2).sqrt_().add_(self.eps)))

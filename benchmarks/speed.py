"""Forward + backward time of every classification loss as a ratio to cross-entropy.

Each loss runs on the same logits and targets as `F.cross_entropy` (multiclass, (N, C)), in
one process. Every round times the baseline, the loss and the baseline again
(`torch.utils.benchmark.Timer.blocked_autorange`, median of each) and takes the ratio of
the loss to the mean of the two baseline timings, so drift of the machine's speed hits both
alike; the table reports the median ratio over the rounds, the JSON also its quartiles. A
"naive" soft F1 (softmax, one-hot, three full (N, C) products under autograd) is timed too,
as the formulation the library improves on. Three multiclass losses are timed against
target probabilities too (label smoothing 0.1), with `F.cross_entropy` on the same
probabilities as the baseline. Binary and multilabel losses are timed against
`F.binary_cross_entropy_with_logits` on (N, C) multilabel logits; the pairwise
`SoftAUROCLoss` (N^2/4 pairs per label) only at the sizes up to (4096, 10).

A row whose one call is estimated above `--max-call-s` seconds (30 by default; 0: no
limit) is not run, and its cell says "not run (about X s per call)". The estimate, which
every row records, is the second of two calls on the first 4096 samples, times N / 4096:
the time of one call at N = 4096, and short of it at N = 65536 for a loss whose work
outgrows the cache. The rule keeps a loss that loops over the classes in Python from
taking over the run, such as segmentation_models_pytorch's Lovász-softmax, whose backward
adds one (N, C) gradient per class (work that grows as N C^2); every row that runs is
timed alike.

With `--runs R` each timing is instead the mean of R calls after two warm-up calls
(`Timer.timeit(R)`), a fixed amount of work whatever the machine: on a GPU, where one call
takes a millisecond or less, this keeps the whole run to seconds. The results (JSON and
the Markdown table) are rewritten after every row, so a run that is stopped still leaves
every figure measured until then; `--budget-s` stops it cleanly before the next row.

On the CPU a second part (`--tuning`, on by default there; `--no-tuning` skips it) records
the measurements behind the CPU constants of `softmetrics._tuning`: the time of ATen's row
softmax and log-softmax for narrow widths, the ratio of `SoftF1Loss` to cross-entropy with
narrow rows padded to one vector and without (`CPU_SOFTMAX_PAD_ROWS`,
`CPU_SOFTMAX_MAX_PADDING`), both with this CPU's kernels and, on a CPU with AVX-512, again
in a fresh process with the AVX2 kernels (`ATEN_CPU_CAPABILITY=avx2`), the ratio of
`SoftF1Loss` to cross-entropy on the plain and on the blocked path for sizes around
`SMALL_COUNTS_ENTRIES`, and the ratio of
`SoftF1Loss` to cross-entropy at (4096, 1000) for several `CPU_BLOCK_ENTRIES` (0: one
block), each with glibc's default allocator and with one told to keep freed memory
(`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`), in a fresh process per allocator.

    python benchmarks/speed.py            # CPU (and CUDA when present), writes results/
    python benchmarks/speed.py --record   # the docs' record, docs/benchmarks/
    python benchmarks/speed.py --smoke    # a few milliseconds per size; checks the script
    python benchmarks/speed.py --device cuda --runs 20 --rounds 3 --budget-s 40
    python benchmarks/speed.py --losses "SoftDiceLoss (generalized)"   # some rows only
    python benchmarks/speed.py --sizes 65536x21 --losses LovaszLoss "smp LovaszLoss"

Writes `speed.json` (the record: command, commit, date, machine and load, every row),
`speed_table.md` and `speed_tuning_table.md` to `results/` (ignored by git) or `--out DIR`;
`--record` writes them to `docs/benchmarks/`, where the Speed page includes them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import (
    add_output_arguments,
    command_line,
    finish_record,
    output_dir,
    provenance_line,
    refuse_smoke_record,
    run_record,
    wrote,
)
from _machine import Budget, machine, write_atomic
from torch.utils.benchmark import Timer

import softmetrics

# the headline sizes first: a run stopped early still has them
SIZES = [(65536, 1000), (4096, 1000), (65536, 10), (4096, 10)]
# the CPU tuning part: softmax widths around one vector (8 or 16 float32 lanes), padding,
# and block sizes
TUNING_WIDTHS = [2, 4, 8, 10, 15, 16, 32]
# CPU_SOFTMAX_PAD_ROWS and CPU_SOFTMAX_MAX_PADDING: SoftF1Loss with and without padding
TUNING_PADDING_SIZES = [(512, 10), (1024, 10), (4096, 10), (65536, 10), (1024, 4), (4096, 4),
                        (65536, 4), (4096, 2), (65536, 2)]
# the kernels of a CPU without AVX-512, run on one with it (ATen's own switch)
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2"}
TUNING_BLOCKS = [1 << 17, 1 << 18, 1 << 19, 1 << 20, 0]
TUNING_SIZE = (4096, 1000)
# SMALL_COUNTS_ENTRIES: sizes at and below 2^16 logits, where the plain path runs, and above
TUNING_SMALL_SIZES = [(64, 10), (4096, 10), (64, 1000), (16384, 4), (16384, 10), (65536, 4),
                      (4096, 100)]
# pairwise (ranking) losses grow as N^2 C: timed only up to (4096, 10) here; the Ranking
# benchmark times them at every size
PAIRWISE_PAIRS = 4096 * 4096 * 10
# the soft targets' rows: label smoothing of this strength
SMOOTHING = 0.1
# a row whose one call is estimated above MAX_CALL_S seconds is not run: the estimate is one
# call on the first PROBE_ROWS samples times N / PROBE_ROWS (every row but the pairwise one
# is linear in N, up to the cache)
PROBE_ROWS = 4096
MAX_CALL_S = 30.0
# glibc keeps freed memory: buffers below 32 MiB (its largest mmap threshold) come from the
# heap, and the heap is never trimmed, so no step maps fresh pages
KEEP_MEMORY = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 40)}


def naive_soft_f1(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The textbook soft F1 loss: three dense (N, C) products under autograd."""
    p = torch.softmax(logits, dim=1)
    y = F.one_hot(target, logits.shape[1]).to(p.dtype)
    tp = (p * y).sum(0)
    fp = (p * (1 - y)).sum(0)
    fn = ((1 - p) * y).sum(0)
    return 1 - (2 * tp / (2 * tp + fp + fn).clamp_min(1e-12)).mean()


def multiclass_losses(c: int) -> dict[str, torch.nn.Module]:
    kw = dict(task="multiclass", num_classes=c, validate_args=False)
    return {
        "SoftAccuracyLoss": softmetrics.SoftAccuracyLoss(**kw),
        "SoftPrecisionLoss": softmetrics.SoftPrecisionLoss(**kw),
        "SoftRecallLoss": softmetrics.SoftRecallLoss(**kw),
        "SoftF1Loss": softmetrics.SoftF1Loss(**kw),
        "SoftFBetaLoss": softmetrics.SoftFBetaLoss(beta=2.0, **kw),
        "SoftJaccardLoss": softmetrics.SoftJaccardLoss(**kw),
        "SoftTverskyLoss": softmetrics.SoftTverskyLoss(alpha=0.3, beta=0.7, **kw),
        "SoftMCCLoss": softmetrics.SoftMCCLoss(**kw),
        "SoftTopKAccuracyLoss": softmetrics.SoftTopKAccuracyLoss(num_classes=c, k=5,
                                                                 validate_args=False),
        "naive soft F1": naive_soft_f1,
        # options: per-class weights, Sudre et al.'s generalized weights, the focal exponent
        "SoftF1Loss (class_weights)": softmetrics.SoftF1Loss(
            class_weights=torch.linspace(0.5, 1.5, c), **kw),
        "SoftDiceLoss (generalized)": softmetrics.SoftDiceLoss(class_weights="generalized",
                                                               **kw),
        "SoftTverskyLoss (gamma=0.75)": softmetrics.SoftTverskyLoss(
            alpha=0.3, beta=0.7, gamma=0.75, **kw),
        "LovaszLoss": softmetrics.LovaszLoss(**kw),
        **smp_lovasz(),
        # Cohen's kappa: unweighted from the counts, quadratic from per-sample weight rows
        "SoftCohenKappaLoss": softmetrics.SoftCohenKappaLoss(**kw),
        "SoftCohenKappaLoss (quadratic)": softmetrics.SoftCohenKappaLoss(weights="quadratic",
                                                                         **kw),
    }


def soft_target_losses(c: int) -> dict[str, torch.nn.Module]:
    """Multiclass losses against target probabilities (label smoothing here), timed against
    `F.cross_entropy` on the same probabilities: the soft targets' own path (the counts of
    `min(p, y)`, see the Classification page)."""
    kw = dict(task="multiclass", num_classes=c, validate_args=False)
    return {
        "SoftF1Loss (soft targets)": softmetrics.SoftF1Loss(**kw),
        "SoftMCCLoss (soft targets)": softmetrics.SoftMCCLoss(**kw),
        "SoftAccuracyLoss (soft targets)": softmetrics.SoftAccuracyLoss(**kw),
    }


def smp_lovasz() -> dict[str, torch.nn.Module]:
    """segmentation_models_pytorch's Lovász-softmax at the same size, when installed (it
    loops over the classes in Python); nothing otherwise."""
    try:
        from _peers import smp_losses

        return {"smp LovaszLoss": smp_losses().LovaszLoss("multiclass")}
    except ImportError:
        return {}


def multilabel_losses(n: int, c: int) -> dict[str, torch.nn.Module]:
    kw = dict(task="multilabel", num_classes=c, validate_args=False)
    losses = {
        "SoftF1Loss (multilabel)": softmetrics.SoftF1Loss(**kw),
        "SoftMCCLoss (multilabel)": softmetrics.SoftMCCLoss(average="macro", **kw),
        "SoftAccuracyLoss (multilabel)": softmetrics.SoftAccuracyLoss(**kw),
        "SoftExactMatchLoss (multilabel)": softmetrics.SoftExactMatchLoss(**kw),
    }
    if n * n * c <= PAIRWISE_PAIRS:  # a pairwise loss: n^2/4 pairs per label
        losses["SoftAUROCLoss (multilabel, max_fpr=0.1)"] = softmetrics.SoftAUROCLoss(
            max_fpr=0.1, **kw)
    return losses


def _step(loss_fn, logits: torch.Tensor, target: torch.Tensor) -> None:
    logits.grad = None
    loss_fn(logits, target).sum().backward()


def _estimate(loss_fn, logits: torch.Tensor, target: torch.Tensor,
              device: torch.device) -> tuple[float, int, float]:
    """One call's seconds at the full batch, estimated from the second of two calls on its
    first PROBE_ROWS samples (the first warms up); with the samples probed and their time."""
    m = min(PROBE_ROWS, logits.shape[0])
    part = logits[:m].detach().requires_grad_()
    _step(loss_fn, part, target[:m])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    _step(loss_fn, part, target[:m])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t
    return seconds * logits.shape[0] / m, m, seconds


def _minor_faults() -> int:
    """Minor page faults of this process so far (0 where the count is not available)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _interleaved(base_fn, loss_fn, logits, target, rounds: int, min_run_time: float,
                 device: torch.device, runs: int | None = None) -> dict[str, float]:
    """`rounds` of baseline, loss, baseline timings, so that drifting load hits both: the
    medians (ms, page faults per step) and the median and quartiles of the loss's ratio to
    the mean of the two baseline timings around it."""
    base_t, loss_t, ratios, base_f, loss_f = [], [], [], [], []
    for _ in range(rounds):
        before, f0 = _time(base_fn, logits, target, min_run_time, device, runs)
        t, f1 = _time(loss_fn, logits, target, min_run_time, device, runs)
        after, f2 = _time(base_fn, logits, target, min_run_time, device, runs)
        base_t += [before, after]
        base_f += [f0, f2]
        loss_t.append(t)
        loss_f.append(f1)
        ratios.append(2 * t / (before + after))
    q = statistics.quantiles(ratios, n=4) if rounds > 1 else ratios * 3
    return dict(baseline_ms=statistics.median(base_t) * 1e3,
                loss_ms=statistics.median(loss_t) * 1e3,
                ratio=statistics.median(ratios), ratio_q1=q[0], ratio_q3=q[2],
                baseline_faults=statistics.median(base_f), loss_faults=statistics.median(loss_f))


def _time(loss_fn, logits, target, min_run_time: float, device: torch.device,
          runs: int | None = None) -> tuple[float, float]:
    """Seconds per step (the median of `blocked_autorange`, or with `runs` the mean of
    that many calls) and minor page faults per step (fresh pages the allocator had to
    map: on CPU a large share of a step's time when buffers are not reused)."""
    sync = "torch.cuda.synchronize()" if device.type == "cuda" else ""
    calls = [0]

    def step(loss_fn, logits, target) -> None:
        calls[0] += 1
        _step(loss_fn, logits, target)

    timer = Timer(stmt=f"step(loss_fn, logits, target); {sync}",
                  globals=dict(step=step, loss_fn=loss_fn, logits=logits, target=target))
    before = _minor_faults()
    m = timer.timeit(runs) if runs else timer.blocked_autorange(min_run_time=min_run_time)
    # every call the timer made, those that sized its blocks or warmed up included
    return m.median, (_minor_faults() - before) / max(1, calls[0])


def run(device: torch.device, sizes, min_run_time: float, rounds: int,
        runs: int | None = None, budget: Budget | None = None,
        rows: list[dict] | None = None, on_row=lambda: None,
        only: list[str] | None = None, max_call_s: float | None = MAX_CALL_S,
        not_run: list[dict] | None = None) -> list[dict]:
    """One row per (size, loss), appended to `rows` (a new list by default), and
    `on_row()` called after each; `only` names the losses to time (default: all). A row
    whose one call `_estimate` puts above `max_call_s` seconds goes to `not_run` instead
    (None: every row runs). When `budget` is spent the remaining rows are left out
    (`budget.stopped` says from where)."""
    rows = [] if rows is None else rows
    not_run = [] if not_run is None else not_run
    budget = budget or Budget(None)
    for n, c in sizes:
        g = torch.Generator(device="cpu").manual_seed(0)
        logits = torch.randn(n, c, generator=g).to(device).requires_grad_()
        target = torch.randint(0, c, (n,), generator=g).to(device)
        labels = torch.randint(0, 2, (n, c), generator=g).to(device).float()
        smoothed = F.one_hot(target, c).float().mul_(1 - SMOOTHING).add_(SMOOTHING / c)
        groups = [(F.cross_entropy, target, "F.cross_entropy", multiclass_losses(c)),
                  (F.cross_entropy, smoothed, "F.cross_entropy (soft targets)",
                   soft_target_losses(c)),
                  (F.binary_cross_entropy_with_logits, labels,
                   "F.binary_cross_entropy_with_logits", multilabel_losses(n, c))]
        for base_fn, tgt, base_name, losses in groups:
            for name, loss_fn in losses.items():
                if only is not None and name not in only:
                    continue
                if isinstance(loss_fn, torch.nn.Module):
                    loss_fn = loss_fn.to(device)  # buffers: class weights
                if budget.spent():
                    budget.stop(f"{device.type} N={n}, C={c}, {name}")
                    return rows
                estimate, probe_rows, probe_s = _estimate(loss_fn, logits, tgt, device)
                if max_call_s is not None and estimate > max_call_s:
                    not_run.append(dict(device=device.type, n=n, c=c, loss=name,
                                        baseline=base_name, estimated_s=estimate,
                                        probe_rows=probe_rows, probe_s=probe_s))
                    print(f"{device.type:>4} N={n:>6} C={c:>5} {name:32s} not run: one "
                          f"call estimated at {estimate:.3g} s (> {max_call_s:g} s)",
                          flush=True)
                    on_row()
                    continue
                _step(loss_fn, logits, tgt)  # warm-up
                r = _interleaved(base_fn, loss_fn, logits, tgt, rounds, min_run_time, device,
                                 runs)
                rows.append(dict(device=device.type, n=n, c=c, loss=name, baseline=base_name,
                                 **r, rounds=rounds, estimated_s=estimate,
                                 timing=f"mean of {runs} runs" if runs else
                                 f"blocked_autorange median, {min_run_time} s"))
                r = rows[-1]
                print(f"{device.type:>4} N={n:>6} C={c:>5} {name:32s} {r['loss_ms']:9.3f} ms  "
                      f"{r['ratio']:5.2f}x {base_name} (quartiles {r['ratio_q1']:.2f}-"
                      f"{r['ratio_q3']:.2f}; "
                      f"page faults per step {r['loss_faults']:.0f} vs "
                      f"{r['baseline_faults']:.0f})", flush=True)
                on_row()
    return rows


def _about(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.2g} s"


def device_label(device: str, info: dict) -> str:
    """The machine a table's rows ran on: the GPU's name, or the CPU and its threads."""
    return info.get("gpu", "GPU") if device == "cuda" else (
        f"{info['cpu']}, {info['torch_threads']} thread(s) of {info['cpu_count']} cores")


def markdown(rows: list[dict], info: dict, stopped: str | None = None,
             run: dict | None = None, not_run: list[dict] | None = None,
             max_call_s: float | None = None) -> str:
    """The table of ratios; with `run` (the record's run) it starts with its provenance;
    the rows of `not_run` (left out above `max_call_s` seconds per call) give their
    estimate."""
    not_run = not_run or []
    sizes = sorted({(r["n"], r["c"]) for r in rows + not_run})
    head = [provenance_line(run, info, run["seconds"]) + ".\n"] if run else []
    if not rows and not not_run:
        return "\n".join([*head, (stopped or "No row was measured.") + "\n"])
    out = head
    for device in sorted({r["device"] for r in rows + not_run}):
        where = device_label(device, info)
        out.append(f"**{device.upper()}** ({where}; torch {info['torch']}): forward + backward "
                   "time as a multiple of the baseline on the same logits (median over "
                   "paired rounds, lower is better).\n")
        header = "| loss | baseline | " + " | ".join(f"N={n}, C={c}" for n, c in sizes) + " |"
        out += [header, "|" + "---|" * (2 + len(sizes))]
        # the multiclass rows first (a row not run at the first size keeps its place)
        entries = sorted((r for r in rows + not_run if r["device"] == device),
                         key=lambda r: r["baseline"] != "F.cross_entropy")
        names = list(dict.fromkeys(r["loss"] for r in entries))
        for name in names:
            cells = []
            base = ""
            for n, c in sizes:
                r = [x for x in entries if x["loss"] == name and (x["n"], x["c"]) == (n, c)]
                cells.append("" if not r else f"{r[0]['ratio']:.2f}x" if "ratio" in r[0] else
                             f"not run (about {_about(r[0]['estimated_s'])} per call)")
                base = r[0]["baseline"].replace("F.", "") if r else base
            out.append(f"| {name} | {base} | " + " | ".join(cells) + " |")
        base_ms = {(r["n"], r["c"]): r["baseline_ms"] for r in rows
                   if r["device"] == device and r["baseline"] == "F.cross_entropy"}
        out.append("| *cross_entropy itself (ms)* | | " +
                   " | ".join(f"{base_ms[s]:.3f}" if s in base_ms else "" for s in sizes)
                   + " |")
        out.append("")
    if not_run:
        probe = not_run[0]["probe_rows"]
        limit = f" above {max_call_s:g} s" if max_call_s is not None else ""
        out.append(f"Not run: rows whose one call was estimated{limit} from one call on the "
                   f"first {probe} samples, times N / {probe}.\n")
    if stopped:
        out.append(stopped + "\n")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------
# the CPU tuning part: the measurements behind softmetrics._tuning's CPU constants


def _f1_problem(n: int, c: int) -> tuple[torch.Tensor, torch.Tensor, torch.nn.Module]:
    """The tuning measurements' problem: seeded (n, c) logits, class indices, and
    `SoftF1Loss` for them."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(n, c, generator=g).requires_grad_()
    target = torch.randint(0, c, (n,), generator=g)
    return logits, target, softmetrics.SoftF1Loss(task="multiclass", num_classes=c,
                                                  validate_args=False)


def softmax_widths(widths: list[int], n: int, min_run_time: float) -> list[dict]:
    """Forward time of ATen's row softmax and log-softmax over (n, width) float32 rows,
    with the kernels of this process's CPU capability."""
    rows = []
    for width in widths:
        x = torch.randn(n, width, generator=torch.Generator().manual_seed(0))
        row = {"n": n, "width": width, "capability": _capability()}
        for name, fn in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
            m = Timer("fn(x, 1)", globals={"fn": fn, "x": x}).blocked_autorange(
                min_run_time=min_run_time)
            row[f"{name}_us"] = m.median * 1e6
        rows.append(row)
        print(f"cpu softmax {row['capability']} ({n}, {width:>3}): {row['softmax_us']:8.1f} us, "
              f"log_softmax {row['log_softmax_us']:8.1f} us", flush=True)
    return rows


def _capability() -> str:
    return str(getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")())


def padding(sizes: list[tuple[int, int]], rounds: int, min_run_time: float) -> list[dict]:
    """`SoftF1Loss` over cross-entropy at each size with narrow rows padded to one vector
    of this process's float32 kernels and without padding, whatever
    `CPU_SOFTMAX_PAD_ROWS` and `CPU_SOFTMAX_MAX_PADDING` would choose: the measurement
    behind those constants. Sizes whose rows are a vector wide or wider have nothing to
    pad: they are timed unpadded only (`padded` None), which says how the losses fare
    against cross-entropy where neither takes the slow loop."""
    from softmetrics import _tuning
    from softmetrics.functional._classification_counts import softmax_width

    names = ("CPU_SOFTMAX_MIN_WIDTH", "CPU_SOFTMAX_PAD_ROWS", "CPU_SOFTMAX_MAX_PADDING")
    default = {name: getattr(_tuning, name) for name in names}
    lanes = _tuning.cpu_softmax_width(torch.float32)
    cpu = torch.device("cpu")
    rows = []
    try:
        for n, c in sizes:
            logits, target, loss_fn = _f1_problem(n, c)
            row: dict = dict(n=n, c=c, loss="SoftF1Loss", rounds=rounds, lanes=lanes,
                             capability=_capability(),
                             padded_by_default=softmax_width(logits.detach()) != c)
            row["padded"] = None
            for path, width in (("padded", lanes), ("unpadded", 0)):
                if path == "padded" and c >= lanes:
                    continue
                _tuning.CPU_SOFTMAX_MIN_WIDTH = width
                _tuning.CPU_SOFTMAX_PAD_ROWS, _tuning.CPU_SOFTMAX_MAX_PADDING = 0, 1 << 20
                _step(loss_fn, logits, target)  # warm-up
                row[path] = _interleaved(F.cross_entropy, loss_fn, logits, target, rounds,
                                         min_run_time, cpu)
            for name, value in default.items():
                setattr(_tuning, name, value)
            rows.append(row)
            padded = (f"padded to {lanes} {row['padded']['ratio']:.2f}x, " if row["padded"]
                      else f"rows a vector of {lanes} wide or wider, ")
            print(f"cpu {row['capability']} ({n}, {c}): {padded}unpadded "
                  f"{row['unpadded']['ratio']:.2f}x cross_entropy "
                  f"({row['unpadded']['baseline_ms']:.3f} ms)", flush=True)
    finally:
        for name, value in default.items():
            setattr(_tuning, name, value)
    return rows


def _kernels_child(rounds: int, min_run_time: float, threads: int | None) -> dict:
    """The softmax widths and the padding measured in a fresh process with the AVX2
    kernels (`ATEN_CPU_CAPABILITY=avx2`): those of a CPU without AVX-512."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--kernels-child",
           "--rounds", str(rounds), "--min-run-time", str(min_run_time)]
    if threads:
        cmd += ["--threads", str(threads)]
    done = subprocess.run(cmd, env={**os.environ, **AVX2}, capture_output=True, text=True,
                          check=True)
    print(done.stdout.rsplit("\n", 2)[0], flush=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def block_sizes(entries: list[int], size: tuple[int, int], rounds: int,
                min_run_time: float, allocator: str) -> list[dict]:
    """`SoftF1Loss` over cross-entropy at `size` for each `CPU_BLOCK_ENTRIES` (0: one
    block), with the allocator this process was started with (`allocator` names it)."""
    from softmetrics import _tuning

    n, c = size
    logits, target, loss_fn = _f1_problem(n, c)
    cpu = torch.device("cpu")
    rows = []
    default = _tuning.CPU_BLOCK_ENTRIES
    try:
        for e in entries:
            _tuning.CPU_BLOCK_ENTRIES = e
            _step(loss_fn, logits, target)  # warm-up
            r = _interleaved(F.cross_entropy, loss_fn, logits, target, rounds, min_run_time,
                             cpu)
            rows.append(dict(allocator=allocator, block_entries=e, n=n, c=c,
                             loss="SoftF1Loss", rounds=rounds, **r))
            r = rows[-1]
            print(f"cpu {allocator:>7} allocator, CPU_BLOCK_ENTRIES={e:>7}: {r['ratio']:.2f}x "
                  f"cross_entropy (page faults per step {r['loss_faults']:.0f} vs "
                  f"{r['baseline_faults']:.0f})", flush=True)
    finally:
        _tuning.CPU_BLOCK_ENTRIES = default
    return rows


def small_inputs(sizes: list[tuple[int, int]], rounds: int, min_run_time: float
                 ) -> list[dict]:
    """`SoftF1Loss` over cross-entropy at each size on the plain path (one softmax, no
    blocks) and on the blocked path, whatever `SMALL_COUNTS_ENTRIES` would choose (both
    padded as `softmax_width` says): the measurement behind that constant."""
    from softmetrics import _tuning

    default = _tuning.SMALL_COUNTS_ENTRIES
    cpu = torch.device("cpu")
    rows = []
    try:
        for n, c in sizes:
            logits, target, loss_fn = _f1_problem(n, c)
            row: dict = dict(n=n, c=c, loss="SoftF1Loss", rounds=rounds,
                             plain_by_default=n * c <= default)
            for path, entries in (("plain", 1 << 62), ("blocked", 0)):
                _tuning.SMALL_COUNTS_ENTRIES = entries
                _step(loss_fn, logits, target)  # warm-up
                r = _interleaved(F.cross_entropy, loss_fn, logits, target, rounds,
                                 min_run_time, cpu)
                row[path] = r
            rows.append(row)
            print(f"cpu ({n}, {c}): plain path {row['plain']['ratio']:.2f}x, blocked "
                  f"{row['blocked']['ratio']:.2f}x cross_entropy "
                  f"({row['plain']['baseline_ms']:.3f} ms)", flush=True)
    finally:
        _tuning.SMALL_COUNTS_ENTRIES = default
    return rows


def _tuning_child(allocator: str, rounds: int, min_run_time: float, threads: int | None
                  ) -> list[dict]:
    """`block_sizes` in a fresh process started with `allocator`'s environment."""
    env = {k: v for k, v in os.environ.items() if k not in KEEP_MEMORY}
    if allocator == "keep":
        env.update(KEEP_MEMORY)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--tuning-child", allocator,
           "--rounds", str(rounds), "--min-run-time", str(min_run_time)]
    if threads:
        cmd += ["--threads", str(threads)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    print(done.stdout.rsplit("\n", 2)[0], flush=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def tuning_markdown(tuning: dict) -> str:
    """The two tables of the tuning part."""
    widths = tuning.get("softmax_widths", [])
    out = []
    if widths:
        n = widths[0]["n"]
        kernels = list(dict.fromkeys(w.get("capability", "") for w in widths))
        by = {(w.get("capability", ""), w["width"]): w for w in widths}
        heads = [f"{k} {name}".strip() for k in kernels for name in ("softmax", "log-softmax")]
        out += [f"ATen's CPU row softmax and log-softmax over ({n}, width) float32 logits, "
                "forward only, with the kernels of each CPU capability (median, "
                "microseconds):\n",
                "| width | " + " | ".join(heads) + " |",
                "|---:|" + "---:|" * len(heads)]
        for width in dict.fromkeys(w["width"] for w in widths):
            cells = [f"{by[k, width][key]:.0f}" if (k, width) in by else ""
                     for k in kernels for key in ("softmax_us", "log_softmax_us")]
            out.append(f"| {width} | " + " | ".join(cells) + " |")
        out.append("")
    pads = tuning.get("padding", [])
    if pads:
        out += [f"`{pads[0]['loss']}` forward + backward as a multiple of `F.cross_entropy` "
                "with narrow rows padded to one vector of the kernels (16 float32 lanes for "
                "AVX-512, 8 for AVX2) and without padding (median of "
                f"{pads[0]['rounds']} paired rounds; * the width `softmax_width` chooses; "
                "rows a vector wide or wider run unpadded only):\n",
                "| kernels | (N, C) | padded to | padded | unpadded | cross-entropy (ms) |",
                "|---|---|---:|---:|---:|---:|"]
        for r in pads:
            mark = ("*", "") if r["padded_by_default"] else ("", "*")
            lanes, padded = ((r["lanes"], f"{r['padded']['ratio']:.2f}x{mark[0]}")
                             if r["padded"] else ("", ""))
            out.append(f"| {r['capability']} | ({r['n']}, {r['c']}) | {lanes} | {padded} | "
                       f"{r['unpadded']['ratio']:.2f}x{mark[1]} | "
                       f"{r['unpadded']['baseline_ms']:.3f} |")
        out.append("")
    small = tuning.get("small_inputs", [])
    if small:
        out += [f"`{small[0]['loss']}` forward + backward as a multiple of `F.cross_entropy` "
                "on the plain path and on the blocked one (median of "
                f"{small[0]['rounds']} paired rounds; * the path `SMALL_COUNTS_ENTRIES` "
                "chooses):\n",
                "| (N, C) | N C | plain | blocked | cross-entropy (ms) |",
                "|---|---:|---:|---:|---:|"]
        for r in small:
            mark = ("*", "") if r["plain_by_default"] else ("", "*")
            out.append(f"| ({r['n']}, {r['c']}) | {r['n'] * r['c']} | "
                       f"{r['plain']['ratio']:.2f}x{mark[0]} | "
                       f"{r['blocked']['ratio']:.2f}x{mark[1]} | "
                       f"{r['plain']['baseline_ms']:.3f} |")
        out.append("")
    blocks = tuning.get("block_sizes", [])
    if blocks:
        r0 = blocks[0]
        names = {"default": "glibc default", "keep": "glibc keeps freed memory"}
        entries = list(dict.fromkeys(r["block_entries"] for r in blocks))
        label = {e: ("one block" if e == 0 else f"2^{e.bit_length() - 1}") for e in entries}
        out += [f"`{r0['loss']}` forward + backward at (N, C) = ({r0['n']}, {r0['c']}) as a "
                f"multiple of `F.cross_entropy` for each `CPU_BLOCK_ENTRIES` (median of "
                f"{r0['rounds']} paired rounds; page faults per step of the loss):\n",
                "| allocator | " + " | ".join(label[e] for e in entries) + " |",
                "|---|" + "---:|" * len(entries)]
        for allocator in dict.fromkeys(r["allocator"] for r in blocks):
            by = {r["block_entries"]: r for r in blocks if r["allocator"] == allocator}
            cells = [f"{by[e]['ratio']:.2f}x ({by[e]['loss_faults']:.0f})" if e in by else ""
                     for e in entries]
            out.append(f"| {names.get(allocator, allocator)} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out) + ("\n" if out else "")


def _size(text: str) -> tuple[int, int]:
    n, c = text.lower().split("x")
    return int(n), int(c)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and run time")
    parser.add_argument("--device", action="append", help="cpu and/or cuda (default: all)")
    parser.add_argument("--min-run-time", type=float, default=0.2)
    parser.add_argument("--runs", type=int, default=None,
                        help="time a fixed number of calls per timing (Timer.timeit) instead "
                        "of blocked_autorange's --min-run-time")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="stop before the next row once this many seconds have passed")
    parser.add_argument("--rounds", type=int, default=5,
                        help="paired (baseline, loss, baseline) rounds per loss and size")
    parser.add_argument("--sizes", type=_size, nargs="+", metavar="NxC",
                        help="problem sizes (default: the four of the speed target)")
    parser.add_argument("--losses", nargs="+", metavar="NAME",
                        help="time only these rows (names as in the table; not with --record, "
                        "whose table has every row)")
    parser.add_argument("--max-call-s", type=float, default=MAX_CALL_S,
                        help="leave out a row whose one call is estimated above this many "
                        f"seconds (from one call on {PROBE_ROWS} samples; default "
                        f"{MAX_CALL_S:g}; 0: no limit)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's own choice)")
    parser.add_argument("--tuning", action=argparse.BooleanOptionalAction, default=None,
                        help="the CPU tuning part (default: on when the CPU is timed, not "
                        "with --smoke or --sizes)")
    parser.add_argument("--tuning-child", choices=["default", "keep"], help=argparse.SUPPRESS)
    parser.add_argument("--kernels-child", action="store_true", help=argparse.SUPPRESS)
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    refuse_smoke_record(parser, args)
    if args.record and args.losses:
        parser.error("--record writes the docs' record of every row; it cannot be combined "
                     "with --losses")
    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tuning_child:
        rows = block_sizes(TUNING_BLOCKS, TUNING_SIZE, args.rounds, args.min_run_time,
                           args.tuning_child)
        print(json.dumps(rows))
        return 0
    if args.kernels_child:
        kernels = dict(softmax_widths=softmax_widths(TUNING_WIDTHS, 4096, args.min_run_time),
                       padding=padding(TUNING_PADDING_SIZES, args.rounds, args.min_run_time))
        print(json.dumps(kernels))
        return 0
    out = output_dir(args)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    sizes = [(256, 10), (256, 100)] if args.smoke else (args.sizes or SIZES)
    min_run_time = 0.01 if args.smoke else args.min_run_time
    tuning = args.tuning
    if tuning is None:
        tuning = "cpu" in devices and not args.smoke and not args.sizes and not args.losses
    info = machine(device="cuda" if "cuda" in devices else "cpu")
    started = run_record(command_line("speed.py", argv))
    rows: list[dict] = []
    not_run: list[dict] = []
    max_call_s = args.max_call_s or None
    result: dict = dict(machine=info, rows=rows, max_call_s=max_call_s, not_run=not_run)
    budget = Budget(args.budget_s)

    def save() -> None:
        result["run"] = finish_record(started)
        result["stopped"] = budget.stopped
        if not args.smoke:
            write_atomic(out / "speed.json", json.dumps(
                {"run": result["run"], **{k: v for k, v in result.items() if k != "run"}},
                indent=1))
            write_atomic(out / "speed_table.md",
                         markdown(rows, info, budget.stopped, result["run"], not_run,
                                  max_call_s))
            if "tuning" in result:
                write_atomic(out / "speed_tuning_table.md", tuning_markdown(result["tuning"]))

    for device in devices:
        run(torch.device(device), sizes, min_run_time, 1 if args.smoke else args.rounds,
                   runs=args.runs, budget=budget, rows=rows, on_row=save, only=args.losses,
                   max_call_s=max_call_s, not_run=not_run)
    if tuning:
        result["tuning"] = part = {"size": list(TUNING_SIZE), "keep_memory_env": KEEP_MEMORY}
        if budget.spent():
            budget.stop("the CPU tuning part")
        else:
            part["softmax_widths"] = softmax_widths(TUNING_WIDTHS, 4096, min_run_time)
            part["padding"] = padding(TUNING_PADDING_SIZES, args.rounds, min_run_time)
            save()
            if "512" in _capability():  # and the kernels of CPUs without AVX-512
                kernels = _kernels_child(args.rounds, min_run_time, args.threads)
                part["softmax_widths"] += kernels["softmax_widths"]
                part["padding"] += kernels["padding"]
                save()
            part["small_inputs"] = small_inputs(
                TUNING_SMALL_SIZES, args.rounds, min_run_time)
            save()
            part["block_sizes"] = []
            for allocator in ("default", "keep"):
                if budget.spent():
                    budget.stop(f"the block sizes with the {allocator} allocator")
                    break
                part["block_sizes"] += _tuning_child(allocator, args.rounds, min_run_time,
                                                     args.threads)
                save()
    save()
    print()
    print(markdown(rows, info, budget.stopped, not_run=not_run, max_call_s=max_call_s))
    if "tuning" in result:
        print(tuning_markdown(result["tuning"]))
    if not args.smoke:
        wrote(out, ["speed.json (the record)", "speed_table.md",
                    *(["speed_tuning_table.md"] if "tuning" in result else [])])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

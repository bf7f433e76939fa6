"""Forward + backward time of every classification loss as a ratio to cross-entropy.

Each loss runs on the same logits and targets as `F.cross_entropy` (multiclass, (N, C)), in
one process. Every round times the baseline, the loss and the baseline again
(`torch.utils.benchmark.Timer.blocked_autorange`, median of each) and takes the ratio of
the loss to the mean of the two baseline timings, so drift of the machine's speed hits both
alike; the table reports the median ratio over the rounds, the JSON also its quartiles. A
"naive" soft F1 (softmax, one-hot, three full (N, C) products under autograd) is timed too,
as the formulation the library improves on. Binary and multilabel losses are timed against
`F.binary_cross_entropy_with_logits` on (N, C) multilabel logits.

With `--runs R` each timing is instead the mean of R calls after two warm-up calls
(`Timer.timeit(R)`), a fixed amount of work whatever the machine: on a GPU, where one call
takes a millisecond or less, this keeps the whole run to seconds. The results (JSON and
the Markdown table) are rewritten after every row, so a run that is stopped still leaves
every figure measured until then; `--budget-s` stops it cleanly before the next row.

    python benchmarks/speed.py            # CPU (and CUDA when present), writes results
    python benchmarks/speed.py --smoke    # a few milliseconds per size; checks the script
    python benchmarks/speed.py --device cuda --runs 20 --rounds 3 --budget-s 40
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F
from _machine import Budget, machine, write_atomic
from torch.utils.benchmark import Timer

import softmetrics

# the headline sizes first: a run stopped early still has them
SIZES = [(65536, 1000), (4096, 1000), (65536, 10), (4096, 10)]
DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


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
    }


def multilabel_losses(c: int) -> dict[str, torch.nn.Module]:
    kw = dict(task="multilabel", num_classes=c, validate_args=False)
    return {
        "SoftF1Loss (multilabel)": softmetrics.SoftF1Loss(**kw),
        "SoftMCCLoss (multilabel)": softmetrics.SoftMCCLoss(average="macro", **kw),
        "SoftAccuracyLoss (multilabel)": softmetrics.SoftAccuracyLoss(**kw),
    }


def _step(loss_fn, logits: torch.Tensor, target: torch.Tensor) -> None:
    logits.grad = None
    loss_fn(logits, target).sum().backward()


def _minor_faults() -> int:
    """Minor page faults of this process so far (0 where the count is not available)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _time(loss_fn, logits, target, min_run_time: float, device: torch.device,
          runs: int | None = None) -> tuple[float, float]:
    """Seconds per step (the median of `blocked_autorange`, or with `runs` the mean of
    that many calls) and minor page faults per step (fresh pages the allocator had to
    map: on CPU a large share of a step's time when buffers are not reused)."""
    sync = "torch.cuda.synchronize()" if device.type == "cuda" else ""
    timer = Timer(stmt=f"step(loss_fn, logits, target); {sync}",
                  globals=dict(step=_step, loss_fn=loss_fn, logits=logits, target=target))
    before = _minor_faults()
    m = timer.timeit(runs) if runs else timer.blocked_autorange(min_run_time=min_run_time)
    return m.median, (_minor_faults() - before) / max(1, m.number_per_run * len(m.times))


def run(device: torch.device, sizes, min_run_time: float, rounds: int,
        runs: int | None = None, budget: Budget | None = None,
        rows: list[dict] | None = None, on_row=lambda: None) -> list[dict]:
    """One row per (size, loss), appended to `rows` (a new list by default), and
    `on_row()` called after each. When `budget` is spent the remaining rows are left out
    (`budget.stopped` says from where)."""
    rows = [] if rows is None else rows
    budget = budget or Budget(None)
    for n, c in sizes:
        g = torch.Generator(device="cpu").manual_seed(0)
        logits = torch.randn(n, c, generator=g).to(device).requires_grad_()
        target = torch.randint(0, c, (n,), generator=g).to(device)
        labels = torch.randint(0, 2, (n, c), generator=g).to(device).float()
        groups = [(F.cross_entropy, target, "F.cross_entropy", multiclass_losses(c)),
                  (F.binary_cross_entropy_with_logits, labels,
                   "F.binary_cross_entropy_with_logits", multilabel_losses(c))]
        for base_fn, tgt, base_name, losses in groups:
            for name, loss_fn in losses.items():
                if budget.spent():
                    budget.stop(f"{device.type} N={n}, C={c}, {name}")
                    return rows
                _step(loss_fn, logits, tgt)  # warm-up
                base_t, loss_t, ratios, base_f, loss_f = [], [], [], [], []
                for _ in range(rounds):
                    before, f0 = _time(base_fn, logits, tgt, min_run_time, device, runs)
                    t, f1 = _time(loss_fn, logits, tgt, min_run_time, device, runs)
                    after, f2 = _time(base_fn, logits, tgt, min_run_time, device, runs)
                    base_t += [before, after]
                    base_f += [f0, f2]
                    loss_t.append(t)
                    loss_f.append(f1)
                    ratios.append(2 * t / (before + after))
                q = statistics.quantiles(ratios, n=4) if rounds > 1 else ratios * 3
                rows.append(dict(device=device.type, n=n, c=c, loss=name, baseline=base_name,
                                 baseline_ms=statistics.median(base_t) * 1e3,
                                 loss_ms=statistics.median(loss_t) * 1e3,
                                 ratio=statistics.median(ratios), ratio_q1=q[0],
                                 ratio_q3=q[2], rounds=rounds,
                                 timing=f"mean of {runs} runs" if runs else
                                 f"blocked_autorange median, {min_run_time} s",
                                 baseline_faults=statistics.median(base_f),
                                 loss_faults=statistics.median(loss_f)))
                r = rows[-1]
                print(f"{device.type:>4} N={n:>6} C={c:>5} {name:32s} {r['loss_ms']:9.3f} ms  "
                      f"{r['ratio']:5.2f}x {base_name} (quartiles {q[0]:.2f}-{q[2]:.2f}; "
                      f"page faults per step {r['loss_faults']:.0f} vs "
                      f"{r['baseline_faults']:.0f})", flush=True)
                on_row()
    return rows


def markdown(rows: list[dict], info: dict, stopped: str | None = None) -> str:
    sizes = sorted({(r["n"], r["c"]) for r in rows})
    if not rows:
        return (stopped or "No row was measured.") + "\n"
    out = []
    for device in sorted({r["device"] for r in rows}):
        where = info.get("gpu", "GPU") if device == "cuda" else (
            f"{info['cpu']}, {info['torch_threads']} thread(s) of {info['cpu_count']} cores")
        out.append(f"**{device.upper()}** ({where}; torch {info['torch']}): forward + backward "
                   "time as a multiple of the baseline on the same logits (median over "
                   "paired rounds, lower is better).\n")
        header = "| loss | baseline | " + " | ".join(f"N={n}, C={c}" for n, c in sizes) + " |"
        out += [header, "|" + "---|" * (2 + len(sizes))]
        names = list(dict.fromkeys(r["loss"] for r in rows if r["device"] == device))
        for name in names:
            cells = []
            base = ""
            for n, c in sizes:
                r = [x for x in rows if x["device"] == device and x["loss"] == name
                     and (x["n"], x["c"]) == (n, c)]
                cells.append(f"{r[0]['ratio']:.2f}x" if r else "")
                base = r[0]["baseline"].replace("F.", "") if r else base
            out.append(f"| {name} | {base} | " + " | ".join(cells) + " |")
        base_ms = {(r["n"], r["c"]): r["baseline_ms"] for r in rows
                   if r["device"] == device and r["baseline"] == "F.cross_entropy"}
        out.append("| *cross_entropy itself (ms)* | | " +
                   " | ".join(f"{base_ms[s]:.3f}" if s in base_ms else "" for s in sizes)
                   + " |")
        out.append("")
    if stopped:
        out.append(stopped + "\n")
    return "\n".join(out)


def _size(text: str) -> tuple[int, int]:
    n, c = text.lower().split("x")
    return int(n), int(c)


def main(argv: list[str] | None = None) -> int:
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
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's own choice)")
    parser.add_argument("--out", type=Path, default=DOCS, help="folder for JSON and table")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    sizes = [(256, 10), (256, 100)] if args.smoke else (args.sizes or SIZES)
    min_run_time = 0.01 if args.smoke else args.min_run_time
    info = machine()
    rows: list[dict] = []
    budget = Budget(args.budget_s)

    def save() -> None:
        if not args.smoke:
            write_atomic(args.out / "speed.json", json.dumps(
                dict(machine=info, rows=rows, stopped=budget.stopped), indent=1))
            write_atomic(args.out / "speed_table.md", markdown(rows, info, budget.stopped))

    for device in devices:
        run(torch.device(device), sizes, min_run_time, 1 if args.smoke else args.rounds,
            runs=args.runs, budget=budget, rows=rows, on_row=save)
    save()
    print()
    print(markdown(rows, info, budget.stopped))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

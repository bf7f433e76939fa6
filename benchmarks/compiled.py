"""Forward + backward time of classification losses under `torch.compile`, as a ratio to
eager `F.cross_entropy`.

The Speed page's table times every loss in eager mode; this one asks what compiling
gives. Each row compiles one loss (`torch.compile(loss, fullgraph=True, dynamic=False)`,
after `torch._dynamo.reset()`, so that none falls back to eager mode at the recompilation
limit, and with a fresh, empty compile cache, so that every row pays a cold compilation)
and records:

- the seconds of its first forward + backward (the compilation, mostly; the first row of
  a run also starts the compiler's worker processes);
- the compiled loss's time as a multiple of eager `F.cross_entropy` on the same logits,
  and, in the same process, the eager loss's: median over paired rounds of baseline, loss,
  baseline, as in `speed.py` (whose timing code this uses);
- `F.cross_entropy` itself compiled, against its eager self, as a row of its own.

Where a step is bound by the number of its operations (small logits, and on a GPU
anything up to a few MiB) compiling fuses the small ones into few kernels; where it is
bound by memory traffic eager mode's hand-written backwards are hard to beat. The rows
run loss by loss (`--losses`, in that order), then mode by mode (`--modes`: torch.compile's
`mode`, "default" for none; "reduce-overhead" adds CUDA graphs on a GPU), then size by
size, and the results are rewritten after every row; `--budget-s` stops the run before
the next row.

    python benchmarks/compiled.py                    # CPU (and CUDA when present)
    python benchmarks/compiled.py --record --threads 1    # the docs' record
    python benchmarks/compiled.py --device cuda --runs 20 --rounds 3 \\
        --sizes 4096x10 65536x10 --modes default reduce-overhead --budget-s 60

Writes `compiled.json` and `compiled_table.md` to `results/` (ignored by git) or `--out
DIR`; `--record` writes them to `docs/benchmarks/`, where the Speed page includes them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F
from _common import (
    add_output_arguments,
    command_line,
    finish_record,
    fresh_compile_cache,
    output_dir,
    provenance_line,
    run_record,
    wrote,
)
from _machine import Budget, machine, write_atomic
from speed import SIZES, _interleaved, _size, _step, device_label, multiclass_losses

BASELINE = "F.cross_entropy"
# the losses whose counts share the softmax Functions, and cross-entropy itself
LOSSES = ["SoftF1Loss", "SoftAccuracyLoss", "SoftMCCLoss", "SoftJaccardLoss",
          "SoftCohenKappaLoss", BASELINE]
MODES = ["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _loss(name: str, c: int, device: torch.device):
    if name == BASELINE:
        # a function of its own: torch 2.6's compiler refuses a torch function itself
        def cross_entropy(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(input, target)

        return cross_entropy
    return multiclass_losses(c)[name].to(device)


def run(device: torch.device, sizes, names: list[str], modes: list[str],
        min_run_time: float, rounds: int, runs: int | None = None,
        budget: Budget | None = None, rows: list[dict] | None = None,
        on_row=lambda: None) -> list[dict]:
    """One row per (loss, mode, size), appended to `rows`, `on_row()` after each."""
    rows = [] if rows is None else rows
    budget = budget or Budget(None)
    for name in names:
        for mode in modes:
            for n, c in sizes:
                where = f"{device.type} N={n}, C={c}, {name} ({mode})"
                if budget.spent():
                    budget.stop(where)
                    return rows
                g = torch.Generator(device="cpu").manual_seed(0)
                logits = torch.randn(n, c, generator=g).to(device).requires_grad_()
                target = torch.randint(0, c, (n,), generator=g).to(device)
                loss_fn = _loss(name, c, device)
                torch._dynamo.reset()
                compiled = torch.compile(loss_fn, fullgraph=True, dynamic=False,
                                         mode=None if mode == "default" else mode)
                with fresh_compile_cache():
                    _sync(device)
                    start = time.perf_counter()
                    _step(compiled, logits, target)
                    _sync(device)
                    compile_s = time.perf_counter() - start
                    _step(compiled, logits, target)  # CUDA graphs record on a later call
                    timed = _interleaved(F.cross_entropy, compiled, logits, target, rounds,
                                         min_run_time, device, runs)
                row = dict(device=device.type, n=n, c=c, loss=name, mode=mode,
                           compile_s=compile_s, cache="fresh", rounds=rounds,
                           timing=f"mean of {runs} runs" if runs else
                           f"blocked_autorange median, {min_run_time} s", compiled=timed)
                if name != BASELINE:
                    _step(loss_fn, logits, target)  # warm-up
                    row["eager"] = _interleaved(F.cross_entropy, loss_fn, logits, target,
                                                rounds, min_run_time, device, runs)
                rows.append(row)
                eager = f", eager {row['eager']['ratio']:.2f}x" if "eager" in row else ""
                print(f"{where}: compiled in {compile_s:.1f} s, "
                      f"{row['compiled']['ratio']:.2f}x{eager} eager cross_entropy "
                      f"({row['compiled']['baseline_ms']:.3f} ms)", flush=True)
                on_row()
    return rows


def markdown(rows: list[dict], info: dict, stopped: str | None = None,
             run: dict | None = None) -> str:
    """One table per device: a row per (loss, mode), a column per size."""
    head = [provenance_line(run, info, run["seconds"]) + ".\n"] if run else []
    if not rows:
        return "\n".join([*head, (stopped or "No row was measured.") + "\n"])
    out = head
    sizes = list(dict.fromkeys((r["n"], r["c"]) for r in rows))
    for device in dict.fromkeys(r["device"] for r in rows):
        where = device_label(device, info)
        mine = [r for r in rows if r["device"] == device]
        out.append(f"**{device.upper()}** ({where}; torch {info['torch']}): forward + backward "
                   "time as a multiple of eager `F.cross_entropy` on the same logits, "
                   "compiled (eager in brackets; median over paired rounds, lower is "
                   "better), and the seconds of the first, compiling call.\n")
        out += ["| loss | mode | " + " | ".join(f"N={n}, C={c}" for n, c in sizes) + " |",
                "|---|---|" + "---:|" * len(sizes)]
        for name, mode in dict.fromkeys((r["loss"], r["mode"]) for r in mine):
            cells = []
            for n, c in sizes:
                r = [x for x in mine if (x["loss"], x["mode"], x["n"], x["c"])
                     == (name, mode, n, c)]
                if not r:
                    cells.append("")
                    continue
                eager = f" ({r[0]['eager']['ratio']:.2f}x)" if "eager" in r[0] else ""
                cells.append(f"{r[0]['compiled']['ratio']:.2f}x{eager}, "
                             f"{r[0]['compile_s']:.0f}&nbsp;s")
            out.append(f"| {name.replace('F.', '')} | {mode} | " + " | ".join(cells) + " |")
        base = {(r["n"], r["c"]): r["compiled"]["baseline_ms"] for r in mine}
        out.append("| *eager cross_entropy itself (ms)* | | " +
                   " | ".join(f"{base[s]:.3f}" if s in base else "" for s in sizes) + " |")
        out.append("")
    if stopped:
        out.append(stopped + "\n")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", action="append", help="cpu and/or cuda (default: all)")
    parser.add_argument("--sizes", type=_size, nargs="+", metavar="NxC",
                        help="problem sizes (default: the four of the speed target)")
    parser.add_argument("--losses", nargs="+", metavar="NAME", choices=LOSSES,
                        default=LOSSES, help="the losses, in this order")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=["default"],
                        help="torch.compile modes (default: default)")
    parser.add_argument("--min-run-time", type=float, default=0.2)
    parser.add_argument("--runs", type=int, default=None,
                        help="time a fixed number of calls per timing (Timer.timeit) instead "
                        "of blocked_autorange's --min-run-time")
    parser.add_argument("--rounds", type=int, default=5,
                        help="paired (baseline, loss, baseline) rounds per row")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="stop before the next row once this many seconds have passed")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's own choice)")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    if not hasattr(torch.library, "custom_op"):
        print(f"torch {torch.__version__} has no custom operators: the losses compile from "
              "torch 2.4", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = output_dir(args)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    info = machine(device="cuda" if "cuda" in devices else "cpu")
    started = run_record(command_line("compiled.py", argv))
    rows: list[dict] = []
    result: dict = dict(machine=info, rows=rows)
    budget = Budget(args.budget_s)

    def save() -> None:
        result["run"] = finish_record(started)
        result["stopped"] = budget.stopped
        write_atomic(out / "compiled.json", json.dumps(
            {"run": result["run"], **{k: v for k, v in result.items() if k != "run"}},
            indent=1))
        write_atomic(out / "compiled_table.md",
                     markdown(rows, info, budget.stopped, result["run"]))

    for device in devices:
        run(torch.device(device), args.sizes or SIZES, args.losses, args.modes,
            args.min_run_time, args.rounds, args.runs, budget, rows, save)
    save()
    print()
    print(markdown(rows, info, budget.stopped))
    wrote(out, ["compiled.json (the record)", "compiled_table.md"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

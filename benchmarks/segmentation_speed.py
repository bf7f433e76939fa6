"""Segmentation losses on (N, C, H, W) batches: forward + backward time against
cross-entropy, beside smp's and MONAI's losses of the same definition.

    python benchmarks/segmentation_speed.py            # CPU (and CUDA when present)
    python benchmarks/segmentation_speed.py --record   # the docs' record, docs/benchmarks/
    python benchmarks/segmentation_speed.py --smoke    # a small batch; writes nothing
    python benchmarks/segmentation_speed.py --device cuda --runs 20 --budget-s 60

The losses are the matched calls of `segmentation_peers.py` (Dice, Jaccard, Tversky,
generalized Dice, Lovász; each peer called with the arguments that compute softmetrics'
definition), on seeded float32 logits of 21 classes (PASCAL VOC's number) and masks with
and without a tenth of the pixels void (`ignore_index=255`). softmetrics runs twice: with
`validate_args=True`, the default, whose checks read the logits and the mask once, and
with `validate_args=False`, as in a training loop on trusted data. Each row is timed as
`speed.py` times its rows: rounds of cross-entropy on the same logits (with
`ignore_index=255` on the void batch), the loss, and cross-entropy again, the ratio of
the loss to the mean of the two, the median over the rounds. Results are rewritten after
every row; `--budget-s` stops cleanly before the next row.

Writes `segmentation_speed.json` (the record) and `segmentation_speed_table.md` to
`results/` or `--out DIR`; `--record` writes them to `docs/benchmarks/`, where the Speed
page includes the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
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
from segmentation_peers import VOID, batches, cases
from speed import _interleaved, device_label

SIZE = (8, 21, 128, 128)  # N, C, H, W: 131,072 pixels, 2.75 million logits
SMOKE_SIZE = (2, 5, 16, 16)
# the matched definitions timed, in the table's order (their batches: plain and void)
KEYS = ["dice", "jaccard", "tversky", "generalized_dice", "lovasz"]
# the columns: softmetrics twice, then each peer's matched call
COLUMNS = {"softmetrics": "softmetrics", "unchecked": "softmetrics, validate_args=False",
           "smp": "smp", "monai": "MONAI"}


def _size(text: str) -> tuple[int, int, int, int]:
    n, c, h, w = (int(v) for v in text.lower().split("x"))
    return n, c, h, w


def calls(c: int) -> list[tuple[str, str, str, str, Callable[..., Any]]]:
    """(key, batch, label, column, function) for every timed call, in the table's
    order."""
    checked = {(k.key, k.batch): k for k in cases(c)}
    unchecked = {(k.key, k.batch): k for k in cases(c, validate_args=False)}
    out = []
    for key in KEYS:
        for batch in ("plain", "void"):
            case = checked.get((key, batch))
            if case is None:
                continue
            label = case.label + (", void 255" if batch == "void" else "")
            out.append((key, batch, label, "softmetrics", case.ours.fn))
            out.append((key, batch, label, "unchecked", unchecked[(key, batch)].ours.fn))
            for peer in ("smp", "monai"):
                call = getattr(case, peer)
                if call is not None:
                    out.append((key, batch, label, peer, call.fn))
    return out


def run(device: torch.device, size: tuple[int, int, int, int], rounds: int,
        min_run_time: float, runs: int | None, budget: Budget, rows: list[dict],
        on_row: Callable[[], None]) -> None:
    """One row per (definition, batch, column), appended to `rows`."""
    data = batches(size)
    for key, batch, label, column, fn in calls(size[1]):
        if budget.spent():
            budget.stop(f"{device.type} {label}, {COLUMNS[column]}")
            return
        logits, mask = data[batch]
        x = logits.float().to(device).requires_grad_()
        target = mask.to(device)
        base: Callable[..., torch.Tensor] = (
            (lambda z, t: F.cross_entropy(z, t, ignore_index=VOID)) if batch == "void"
            else F.cross_entropy)
        x.grad = None
        fn(x, target).backward()  # warm-up
        r = _interleaved(base, fn, x, target, rounds, min_run_time, device, runs)
        rows.append(dict(device=device.type, key=key, batch=batch, label=label,
                         column=column, **r, rounds=rounds, size=list(size)))
        print(f"{device.type:>4} {label:32s} {COLUMNS[column]:34s} {r['loss_ms']:9.3f} ms  "
              f"{r['ratio']:5.2f}x cross-entropy ({r['baseline_ms']:.3f} ms)", flush=True)
        on_row()


def markdown(rows: list[dict], info: dict, run: dict | None = None,
             stopped: str | None = None) -> str:
    """The table of ratios per device, one line per definition and batch."""
    out = [provenance_line(run, info, run["seconds"]) + ".\n"] if run else []
    if not rows:
        return "\n".join([*out, (stopped or "No row was measured.") + "\n"])
    for device in dict.fromkeys(r["device"] for r in rows):
        mine = [r for r in rows if r["device"] == device]
        n, c, h, w = mine[0]["size"]
        out.append(f"**{device.upper()}** ({device_label(device, info)}; torch "
                   f"{info['torch']}): forward + backward time as a multiple of "
                   f"`F.cross_entropy` on the same float32 logits, (N, C, H, W) = ({n}, {c}, "
                   f"{h}, {w}) (median over paired rounds, lower is better); — : no such "
                   f"loss in that library.\n")
        out += ["| loss | " + " | ".join(COLUMNS.values()) + " | cross-entropy (ms) |",
                "|---|" + "---:|" * (len(COLUMNS) + 1)]
        for label in dict.fromkeys(r["label"] for r in mine):
            by = {r["column"]: r for r in mine if r["label"] == label}
            cells = [f"{by[k]['ratio']:.2f}x" if k in by else "—" for k in COLUMNS]
            base = next(iter(by.values()))["baseline_ms"]
            out.append(f"| {label} | " + " | ".join(cells) + f" | {base:.2f} |")
        out.append("")
    if stopped:
        out.append(stopped + "\n")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a small batch, short timings")
    parser.add_argument("--device", action="append", help="cpu and/or cuda (default: all)")
    parser.add_argument("--size", type=_size, metavar="NxCxHxW",
                        help=f"the batch (default {'x'.join(map(str, SIZE))})")
    parser.add_argument("--min-run-time", type=float, default=0.2)
    parser.add_argument("--runs", type=int, default=None,
                        help="time a fixed number of calls per timing instead")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget-s", type=float, default=None,
                        help="stop before the next row once this many seconds have passed")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's own choice)")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    refuse_smoke_record(parser, args)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = output_dir(args)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    size = SMOKE_SIZE if args.smoke else (args.size or SIZE)
    rounds = 1 if args.smoke else args.rounds
    min_run_time = 0.01 if args.smoke else args.min_run_time
    info = machine(device="cuda" if "cuda" in devices else "cpu")
    started = run_record(command_line("segmentation_speed.py", argv))
    rows: list[dict] = []
    budget = Budget(args.budget_s)
    record: dict[str, Any] = {}

    def save() -> None:
        record.update(run=finish_record(started), machine=info, size=list(size),
                      stopped=budget.stopped, rows=rows)
        if not args.smoke:
            write_atomic(out / "segmentation_speed.json", json.dumps(record, indent=1))
            write_atomic(out / "segmentation_speed_table.md",
                         markdown(rows, info, record["run"], budget.stopped))

    for device in devices:
        run(torch.device(device), size, rounds, min_run_time, args.runs, budget, rows, save)
    save()
    print()
    print(markdown(rows, info, stopped=budget.stopped))
    if not args.smoke:
        wrote(out, ["segmentation_speed.json (the record)", "segmentation_speed_table.md"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

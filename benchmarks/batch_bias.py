"""Mini-batch bias of the soft F1 loss, and what running statistics (`momentum=`) change.

The F1 of a set is not a mean over samples, so the soft F1 of a mini-batch is a biased
estimate of the soft F1 of the dataset: with 3.3% positives most batches of 16 hold no
positive at all, and their F1 is 0 whatever the model does. This script trains a small MLP
with `SoftF1Loss(task="binary")` on the ISLR `Default` data (10,000 samples, 3.3%
positives; the loader and the stratified 60/20/20 split of `benchmarks/_datasets.py`) with
several batch sizes, without and with `momentum`, and reports for each setting:

* **estimate gap**: for the trained model, the mean over a stream of training mini-batches
  of the soft F1 the loss sees (the batch's own, or the momentum-mixed one), minus the soft
  F1 of the whole training set (temperature 1, the loss's own); and its root mean square
  error, which adds the batch-to-batch spread to the bias;
* **test F1**: the exact F1 (threshold 0.5, the loss's hard limit) on the test split.

Every setting gets the same number of optimiser steps (Adam), so a small batch sees fewer
samples than a large one: the comparison is between objectives at equal update counts.
Means and standard deviations are over seeds (each seed: its own split, initialisation and
batch order).

    python benchmarks/batch_bias.py            # a few minutes on 2 CPU cores
    python benchmarks/batch_bias.py --smoke --out /tmp/x   # seconds; checks the script
    python benchmarks/batch_bias.py --record   # rewrite the docs' record

Writes `batch_bias.json` (the record: command, commit, date, machine and load, every run),
`batch_bias_table.md` and `batch_bias.png` to `results/` (ignored by git) or `--out DIR`;
`--record` writes them to `docs/benchmarks/`, where the docs page includes them.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _datasets
import _machine
from _common import (
    Progress,
    add_output_arguments,
    command_line,
    finish_record,
    output_dir,
    provenance_line,
    refuse_smoke_record,
    run_record,
    wrote,
)

from softmetrics import SoftF1Loss
from softmetrics.functional import soft_f1_score

FULL = 0  # batch size 0 stands for the whole training split


def mlp(features: int, hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                         nn.ReLU(), nn.Linear(hidden, 1))


def batches(n: int, size: int, generator: torch.Generator):
    """Endless shuffled batches of `size` indices (the last incomplete batch dropped)."""
    while True:
        perm = torch.randperm(n, generator=generator)
        for start in range(0, n - size + 1, size):
            yield perm[start:start + size]


def estimate_gap(logits: torch.Tensor, y: torch.Tensor, size: int, momentum: float | None,
                 generator: torch.Generator) -> tuple[float, float]:
    """Bias and RMS error of the loss's soft F1 estimate against the dataset soft F1.

    The model is fixed (`logits` of the whole training split); a fresh loss in training
    mode sees a stream of mini-batches, as in training; a burn-in of two momentum windows
    is left out of the averages.
    """
    dataset = soft_f1_score(logits, y, task="binary").item()
    window = 1 if momentum is None else math.ceil(1 / (1 - momentum))
    burn_in, count = (0 if momentum is None else 2 * window), max(200, 5 * window)
    loss_fn = SoftF1Loss(task="binary", momentum=momentum, validate_args=False).train()
    errors = []
    with torch.no_grad():
        for step, idx in enumerate(batches(len(y), size, generator)):
            if step >= burn_in + count:
                break
            value = 1 - loss_fn(logits[idx], y[idx]).item()
            if step >= burn_in:
                errors.append(value - dataset)
    bias = statistics.fmean(errors)
    rmse = math.sqrt(statistics.fmean(e * e for e in errors))
    return bias, rmse


def run_one(split: _datasets.Split, size: int, momentum: float | None, seed: int, steps: int,
            lr: float, hidden: int) -> dict:
    x, y = torch.from_numpy(split.x_train), torch.from_numpy(split.y_train)
    size = len(y) if size == FULL else size
    torch.manual_seed(seed)
    model = mlp(x.shape[1], hidden)
    loss_fn = SoftF1Loss(task="binary", momentum=momentum, validate_args=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for step, idx in enumerate(batches(len(y), size, g)):
        if step == steps:
            break
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x[idx]).squeeze(1), y[idx]).backward()
        optimizer.step()
    seconds = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        train_logits = model(x).squeeze(1)
        test_logits = model(torch.from_numpy(split.x_test)).squeeze(1)
    bias, rmse = estimate_gap(train_logits, y, size, momentum, g)
    exact = SoftF1Loss(task="binary")
    return dict(
        batch=size, momentum=momentum, seed=seed, gap=bias, rmse=rmse,
        train_soft_f1=soft_f1_score(train_logits, y, task="binary").item(),
        train_f1=exact.metric(train_logits, y).item(),
        test_f1=exact.metric(test_logits, torch.from_numpy(split.y_test)).item(),
        train_seconds=seconds)


def summarise(rows: list[dict]) -> list[dict]:
    out = []
    keys = list(dict.fromkeys((r["batch_label"], r["momentum"]) for r in rows))
    for label, momentum in keys:
        group = [r for r in rows if r["batch_label"] == label and r["momentum"] == momentum]
        entry = dict(batch=label, momentum=momentum, seeds=len(group))
        # paired by seed (same split, initialisation and batch order): test F1 minus that of
        # the same batch size without momentum
        plain = {r["seed"]: r["test_f1"] for r in rows
                 if r["batch_label"] == label and r["momentum"] is None}
        for r in group:
            r["test_f1_vs_none"] = r["test_f1"] - plain[r["seed"]] if plain else math.nan
        for key in ("gap", "rmse", "test_f1", "train_f1", "test_f1_vs_none"):
            values = [r[key] for r in group]
            entry[key] = statistics.fmean(values)
            entry[key + "_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
        out.append(entry)
    return out


def _f(value: float, spec: str) -> str:
    """Format without a negative zero."""
    return format(round(value, 3) + 0.0, spec)


def _m(momentum: float | None) -> str:
    return "none" if momentum is None else f"{momentum:g}"


def table(summary: list[dict], settings: dict, run: dict | None = None,
          machine: dict | None = None) -> str:
    """The summary table; with the record's `run` and `machine` it starts with its
    provenance (command, commit, date, time taken, machine and load)."""
    head = [provenance_line(run, machine, run["seconds"]) + ".\n"] if run and machine else []
    lines = [*head,
        f"Mean ± standard deviation over {settings['seeds']} seeds; {settings['steps']} Adam "
        f"steps (lr {settings['lr']:g}) for every setting; the training split has "
        f"{settings['n_train']} samples ({100 * settings['positive_rate']:.1f}% positives).\n",
        "| batch | momentum | estimate gap (mean) | estimate RMS error | train F1 | test F1 | "
        "test F1 vs no momentum (paired) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summary:
        lines.append(
            f"| {s['batch']} | {_m(s['momentum'])} | {_f(s['gap'], '+.3f')} ± "
            f"{_f(s['gap_sd'], '.3f')} | {_f(s['rmse'], '.3f')} ± {_f(s['rmse_sd'], '.3f')} | "
            f"{s['train_f1']:.3f} ± {s['train_f1_sd']:.3f} | {s['test_f1']:.3f} ± "
            f"{s['test_f1_sd']:.3f} | " + ("" if s["momentum"] is None else
                                          f"{_f(s['test_f1_vs_none'], '+.3f')} ± "
                                          f"{_f(s['test_f1_vs_none_sd'], '.3f')}") + " |")
    return "\n".join(lines) + "\n"


def plot(summary: list[dict], path: Path) -> bool:
    """Draw the plot; False where matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    labels = list(dict.fromkeys(s["batch"] for s in summary))
    xs = range(len(labels))
    momenta = list(dict.fromkeys(s["momentum"] for s in summary))
    panels = [("gap", "estimate − dataset soft F1 (bias)"), ("rmse", "RMS error of the estimate"),
              ("test_f1", "test F1 (threshold 0.5)")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, (key, title) in zip(axes, panels, strict=True):
        for j, m in enumerate(momenta):
            pts = [next(s for s in summary if s["batch"] == b and s["momentum"] == m)
                   for b in labels]
            shift = (j - (len(momenta) - 1) / 2) * 0.06
            ax.errorbar([x + shift for x in xs], [p[key] for p in pts],
                        yerr=[p[key + "_sd"] for p in pts], marker="o", capsize=3,
                        label=f"momentum {_m(m)}")
        if key == "gap":
            ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(list(xs))
        ax.set_xticklabels([str(b) for b in labels])
        ax.set_xlabel("batch size")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("SoftF1Loss on ISLR Default (3.3% positives): mean ± sd over seeds",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def parser() -> argparse.ArgumentParser:
    """The command line; `main` parses it."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="Default", choices=sorted(_datasets.DATASETS))
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64, 256, FULL],
                        help="0 = the whole training split")
    ap.add_argument("--momenta", type=float, nargs="+", default=[-1, 0.9, 0.99],
                        help="-1 = no running statistics")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smoke", action="store_true", help="tiny settings, seconds")
    add_output_arguments(ap)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = parser()
    args = p.parse_args(argv)
    refuse_smoke_record(p, args)
    out = output_dir(args)
    if args.smoke:
        args.batch_sizes, args.momenta, args.seeds, args.steps = [16, FULL], [-1, 0.9], 2, 20
    torch.set_num_threads(args.threads)
    momenta = [None if m < 0 else m for m in args.momenta]
    data = _datasets.load(args.dataset)
    if data.task != "binary":
        p.error(f"--dataset {args.dataset} is not binary")
    run, machine = run_record(command_line("batch_bias.py", argv)), _machine.machine()
    rows = []
    tasks = args.seeds * len(args.batch_sizes) * len(momenta)
    with Progress(tasks, "batch_bias") as progress:
        for seed in range(args.seeds):
            split = _datasets.split(data, seed)
            for size in args.batch_sizes:
                for momentum in momenta:
                    label = "full" if size == FULL else str(size)
                    with progress.task(f"seed {seed}, batch {label}, momentum {_m(momentum)}"):
                        row = run_one(split, size, momentum, seed, args.steps, args.lr,
                                      args.hidden)
                    row["batch_label"] = label
                    rows.append(row)
    summary = summarise(rows)
    settings = dict(dataset=args.dataset, batch_sizes=args.batch_sizes,
                    momenta=momenta, seeds=args.seeds, steps=args.steps, lr=args.lr,
                    hidden=args.hidden, n_train=len(split.y_train),
                    positive_rate=float(split.y_train.mean()), smoke=args.smoke)
    out.mkdir(parents=True, exist_ok=True)
    result = dict(run=finish_record(run), settings=settings, machine=machine,
                  summary=summary, rows=rows)
    (out / "batch_bias.json").write_text(json.dumps(result, indent=1) + "\n")
    markdown = table(summary, settings, result["run"], machine)
    (out / "batch_bias_table.md").write_text(markdown)
    plotted = plot(summary, out / "batch_bias.png")
    print(markdown)
    print(f"{result['run']['seconds']:.0f} s")
    wrote(out, ["batch_bias.json (the record)", "batch_bias_table.md",
                *(["batch_bias.png"] if plotted else [])])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

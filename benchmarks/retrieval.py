"""Time and peak memory of the retrieval losses: B queries ranking a gallery of B items.

B embeddings (D = 32, classes of 4, seed 0) and their cosine similarities, the query
itself ignored (`ignore_index` on the diagonal). Forward + backward of:

- softmetrics `SoftRetrievalAPLoss`, `SoftRecallAtKLoss` (k = 4), `SoftNDCGLoss` and
  `SoftMRRLoss` (soft ranks tiled over the gallery, temperature 0.01, the cut at k with
  `cutoff_temperature=1`; on the CPU the tiles hold the rows of each query's 3 relevant
  items only, 3 B^2 pairs in all, and B^3 on other devices),
- the same soft AP on the full B x B x B tensor under autograd ("naive AP"),
- pytorch-metric-learning's `SmoothAPLoss` (temperature 0.01; it builds B x B x B
  tensors) and `NTXentLoss` (temperature 0.07, the classes as positives; a contrastive
  loss of O(B^2) pairs, for scale), when that package is installed.

The softmetrics and peer losses are not the same surrogates (docs/retrieval.md): only
their cost is compared. Times are medians of `torch.utils.benchmark` in one process, with
the interquartile range; peak memory is measured in a fresh process per (method, B) as in
`benchmarks/ranking.py` (CPU: the peak resident set of one step minus the resident set
before it; CUDA: `max_memory_allocated`). A method whose estimated memory exceeds
`--max-gib` is skipped.

    python benchmarks/retrieval.py           # writes results/retrieval.{json,png}, the table
    python benchmarks/retrieval.py --record  # the docs' record, docs/benchmarks/
    python benchmarks/retrieval.py --smoke   # tiny sizes, to check the script

Writes `retrieval.json` (the record: command, commit, date, machine and load, every row),
`retrieval_table.md` (the table the Retrieval page includes) and `retrieval.png`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from softmetrics import (  # noqa: E402
    SoftMRRLoss,
    SoftNDCGLoss,
    SoftRecallAtKLoss,
    SoftRetrievalAPLoss,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    add_output_arguments,
    command_line,
    finish_record,
    finish_time_memory_plot,
    output_dir,
    provenance_line,
    refuse_smoke_record,
    run_record,
    wrote,
)
from _machine import Budget, machine, write_atomic  # noqa: E402
from ranking import cuda_peak_mib, pml_available, time_step  # noqa: E402

TEMPERATURE = 0.01
K = 4
OURS = ["softmetrics AP", "softmetrics recall@4", "softmetrics NDCG", "softmetrics MRR"]
PEERS = ["pytorch-metric-learning SmoothAPLoss", "pytorch-metric-learning NTXentLoss"]
METHODS = [*OURS, "naive AP (B x B x B)", *PEERS]


def inputs(b: int, device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Embeddings (with gradient), class labels (classes of 4) and the (B, B) relevance
    with -1 on the diagonal (the query itself, ignored)."""
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(b, 32, generator=g).to(device).requires_grad_(True)
    labels = (torch.arange(b) // 4).to(device)
    same = (labels.unsqueeze(0) == labels.unsqueeze(1)).long()
    eye = torch.eye(b, dtype=torch.bool, device=device)
    return emb, labels, same.masked_fill(eye, -1)


def naive_ap(sims: torch.Tensor, target: torch.Tensor, temperature: float) -> torch.Tensor:
    """The same soft AP per query on the full (B, B, B) tensor under autograd."""
    keep = (target >= 0).to(sims.dtype)
    pos = (target == 1).to(sims.dtype)
    neg = keep - pos
    diff = (sims.unsqueeze(1) - sims.unsqueeze(2)) / temperature  # [q, i, j]: s_j - s_i
    above = (torch.sigmoid(diff) * neg.unsqueeze(1)).sum(-1)
    order = sims.detach().argsort(dim=1, descending=True)
    rank = torch.empty_like(pos).scatter_(1, order, pos.gather(1, order).cumsum(1))
    rank = torch.where(pos > 0, rank, torch.ones_like(rank))
    ap = (pos * rank / (rank + above)).sum(1) / pos.sum(1).clamp_min(1)
    return 1 - ap.mean()


def step(method: str, b: int, device: str):
    emb, labels, target = inputs(b, device)
    options = dict(temperature=TEMPERATURE, ignore_index=-1, validate_args=False)
    loss_fn = {
        "softmetrics AP": lambda: SoftRetrievalAPLoss(**options),
        "softmetrics recall@4": lambda: SoftRecallAtKLoss(k=K, cutoff_temperature=1.0,
                                                          **options),
        "softmetrics NDCG": lambda: SoftNDCGLoss(**options),
        "softmetrics MRR": lambda: SoftMRRLoss(**options),
    }.get(method, lambda: None)()
    if method == PEERS[0]:
        from pytorch_metric_learning.losses import SmoothAPLoss
        peer = SmoothAPLoss(temperature=TEMPERATURE)
    elif method == PEERS[1]:
        from pytorch_metric_learning.losses import NTXentLoss
        peer = NTXentLoss(temperature=0.07)

    def run() -> None:
        emb.grad = None
        if method in PEERS:
            peer(emb, labels).backward()
            return
        x = torch.nn.functional.normalize(emb, dim=1)
        sims = x @ x.t()
        if loss_fn is not None:
            loss_fn(sims, target).backward()
        elif method == "naive AP (B x B x B)":
            naive_ap(sims, target, TEMPERATURE).backward()
        else:
            raise ValueError(method)
    return run


def estimated_gib(method: str, b: int) -> float:
    """A rough upper estimate of the extra memory, to skip what does not fit: the B x B x B
    methods keep about six float32 values per triple under autograd."""
    if method in ("naive AP (B x B x B)", PEERS[0]):
        return 24 * b**3 / 2**30
    return (3 * 2**22 * 4 + 64 * b * b) / 2**30


_MEMORY_CHILD = r"""
import json, sys
import torch
sys.path.insert(0, sys.argv[1] + "/benchmarks")
torch.set_num_threads(int(sys.argv[4]))
from retrieval import step
from ranking import peak_tracker
method, b = sys.argv[2], int(sys.argv[3])
step(method, 8, "cpu")()  # warm-up: kernels, allocator
run = step(method, b, "cpu")
reset, peak = peak_tracker()
base = reset()
run()
print(json.dumps({"peak_extra_mib": (peak() - base) / 1024}))
"""


def cpu_peak_mib(method: str, b: int, threads: int) -> float:
    """Peak extra memory of one step in a fresh process."""
    out = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(ROOT), method, str(b),
                          str(threads)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_extra_mib"]


def measure(sizes: list[int], device: str, max_gib: float, min_run_time: float, log,
            budget: Budget, rows: list[dict], memory: bool = True) -> None:
    """Time (and measure the memory of) every (B, method), appending to `rows`."""
    methods = [m for m in METHODS if m not in PEERS or pml_available()]
    for b in sizes:
        for method in methods:
            row = {"device": device, "method": method, "b": b}
            if budget.spent():
                row["skipped"] = budget.stop(f"{method} at B = {b}")
            elif estimated_gib(method, b) > max_gib:
                row["estimated_gib"] = estimated_gib(method, b)
                row["skipped"] = (f"needs about {row['estimated_gib']:.0f} GiB "
                                  f"(limit {max_gib:g} GiB)")
            else:
                run = step(method, b, device)
                row.update(time_step(run, device, min_run_time))
                if device == "cuda":
                    row["peak_extra_mib"] = cuda_peak_mib(run)
                elif memory:
                    row["peak_extra_mib"] = cpu_peak_mib(method, b, torch.get_num_threads())
            rows.append(row)
            log(row)


def _fmt(row: dict) -> str:
    if "median_s" not in row:
        return f"not run (~{row['estimated_gib']:.0f} GiB)" if "estimated_gib" in row else "-"
    t = row["median_s"]
    time = f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"
    return time + (f", {row['peak_extra_mib']:.0f} MiB" if "peak_extra_mib" in row else "")


def table(result: dict) -> str:
    """The Retrieval page's table: one row per method, one column per B."""
    run = result["run"]
    sizes = sorted({r["b"] for r in result["rows"]})
    lines = [provenance_line(run, result["machine"], run["seconds"]) + "; pytorch-metric-"
             f"learning {result['machine']['pytorch_metric_learning'] or 'not installed'}.",
             "", "| method | " + " | ".join(f"B = {b}" for b in sizes) + " |",
             "|---|" + "---:|" * len(sizes)]
    for method in dict.fromkeys(r["method"] for r in result["rows"]):
        cells = [_fmt(next((r for r in result["rows"]
                            if r["method"] == method and r["b"] == b), {})) for b in sizes]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    if result.get("stopped"):
        lines += ["", result["stopped"]]
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for method in dict.fromkeys(r["method"] for r in result["rows"]):
        pts = sorted((r["b"], r["median_s"], r.get("peak_extra_mib", 0.0))
                     for r in result["rows"] if r["method"] == method and "median_s" in r)
        style = "-" if method.startswith("softmetrics") else "--"
        for ax, i in zip(axes, (1, 2), strict=True):
            ax.plot([p[0] for p in pts], [max(p[i], 1e-3) for p in pts], style, marker="o",
                    label=method)
    finish_time_memory_plot(fig, axes, path, xlabel="B (queries = gallery items)", xbase=2)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, quick check")
    parser.add_argument("--sizes", type=int, nargs="*", default=[64, 128, 256, 512])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--max-gib", type=float, default=4.0,
                        help="skip a method whose estimated memory exceeds this")
    parser.add_argument("--min-run-time", type=float, default=0.5)
    parser.add_argument("--budget-s", type=float, default=None,
                        help="stop before the next row once this many seconds have passed")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    refuse_smoke_record(parser, args)
    out = output_dir(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [16, 32] if args.smoke else args.sizes
    started = run_record(command_line("retrieval.py", argv))
    result = {"run": None,
              "machine": machine({"pytorch_metric_learning": "pytorch_metric_learning"},
                                 device=args.device),
              "temperature": TEMPERATURE, "k": K, "smoke": args.smoke, "rows": []}
    budget = Budget(args.budget_s)

    def save() -> None:
        result["stopped"] = budget.stopped
        result["run"] = finish_record(started)
        write_atomic(out / "retrieval.json", json.dumps(result, indent=2) + "\n")
        write_atomic(out / "retrieval_table.md", table(result))

    def log(row: dict) -> None:
        print(json.dumps(row), flush=True)
        save()

    measure(sizes, args.device, args.max_gib, 0.01 if args.smoke else args.min_run_time,
            log, budget, result["rows"], memory=not args.smoke)
    save()
    plot(result, out / "retrieval.png")
    wrote(out, ["retrieval.json (the record)", "retrieval_table.md", "retrieval.png"])


if __name__ == "__main__":
    main()

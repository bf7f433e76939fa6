"""Time and peak memory of the soft ranking metrics vs the number of samples.

Four settings, forward + backward each:

1. **Binary AP and AUROC vs N** (one ranking of N scores, 10% positives, temperature
   0.1): `soft_average_precision` (tiled custom autograd Function; on the CPU the tiles
   cover the positive x negative pairs only, 9% of the N^2) against the same
   formula on the full N x N matrix under autograd ("full matrix"), the exact metric
   (temperature 0, one sort), `soft_auroc` ("softmetrics AUROC", tiled too), and soft AP
   under `torch.compile` ("softmetrics, compiled": `fullgraph=True, dynamic=False`,
   after `torch._dynamo.reset()`; its first forward + backward, the compilation mostly,
   is recorded as `first_s`; `--no-compiled` leaves it out). Its CPU memory is not
   measured: it would be measured after a first call at full size, with the allocator
   warm where the others' is cold, and the operator runs eager mode's code.
2. **Retrieval, B queries x B items** (B embeddings in classes of 4, cosine
   similarities): `soft_average_precision(task="multilabel")` with one column per query
   and the query itself ignored, against pytorch-metric-learning's `SmoothAPLoss` (which
   builds B x B x B tensors) when that package is installed. That one costs B^3 pairs;
   softmetrics on the CPU 3 B (B - 4), each query's 3 relevant items against its B - 4
   others, and B^3 on other devices, where the tiles cover every pair. The values differ
   (see docs/ranking.md), only time and memory are compared.
3. **Multiclass macro soft AP, N samples x C classes** (uniform random classes,
   temperature 0.1): `soft_average_precision(task="multiclass")`, which computes the
   statistic of each sample's one positive only (N^2 pairs), against the same metric
   through the every-pair path (`task="multilabel"` on `log_softmax` of the logits with
   one-hot targets: C N^2 pairs; the same value, see tests/test_ranking.py), the path
   multilabel targets take on other devices (on the CPU, where they take the positive x
   negative pairs only, it runs with `_tuning.RANKING_CPU_LISTS_POSITIVES` off). A method
   is skipped where its pairs exceed `--multiclass-max-pairs`.
4. **Multilabel macro soft AP with long-tailed labels, N samples x C labels** (label c
   positive with probability 0.5 (0.01 / 0.5)^(c / (C - 1)), from 50% down to 1%;
   temperature 0.1): `soft_average_precision(task="multilabel")`, which on the CPU
   computes the positive x negative pairs of each label, sum_c |P_c| |N_c|, against
   every pair of each label (C N^2, `_tuning.RANKING_CPU_LISTS_POSITIVES` off, the path
   of other devices). Its pairs are those the tiles computed in one pass, counted; a
   tile's rows run over the labels with a positive among them, from the earliest first
   negative of those labels, so more than sum_c |P_c| |N_c|. Skipped above
   `--multiclass-max-pairs` (with sum_c |P_c| |N_c| for the listed paths) too.

On other devices than the CPU, binary soft AP, retrieval and the multilabel setting are
also timed as "softmetrics, listed": the tiles list the positives there too
(`_tuning.RANKING_DEVICE_LISTS_POSITIVES` on, off by default), which reads numbers back
from the device in each pass, a synchronisation, and then computes the CPU's pairs.

Times are medians of `torch.utils.benchmark.Timer.blocked_autorange` in one process, with
the interquartile range. Peak memory on CPU is measured in a fresh subprocess per (method,
size): the peak resident set of one forward + backward (Linux: VmHWM, reset once the
inputs exist and after a small warm-up) minus the resident set at that reset. On CUDA it
is `torch.cuda.max_memory_allocated` minus the memory held before the step. A method is
skipped ("-") where its estimated memory exceeds `--max-gib`.

A CPU tile-size part (`--tiles`, on by default when the CPU is timed; `--no-tiles`
skips it; see `_ranking_tiles.py`) times soft AP on one torch thread for each
`softmetrics._tuning.RANKING_TILE_ELEMENTS` in 2^16, 2^18, 2^20 and 2^22.

A last part, without timing: the exact AP and calibrated AP of a random ranking (scores
independent of the labels, `--random-n` samples, seed 0) for 1%, 10% and 50% positives,
the figures the Ranking page quotes for what a random detector scores.

The devices run in the order of `--devices` (CUDA first by default when present);
`--cuda-binary-sizes` and `--cuda-retrieval-sizes` add sizes on CUDA only. The CPU memory
children run after the timings, several at once (`--memory-jobs`): each measures its own
process. The results are rewritten after every row, so a run that is stopped keeps what
it measured, and `--budget-s` stops it cleanly before the next row.

    python benchmarks/ranking.py           # writes results/ranking.{json,md,png}
    python benchmarks/ranking.py --record  # the docs' record and page, docs/benchmarks/
    python benchmarks/ranking.py --smoke   # tiny sizes, to check the script

Writes `ranking.json` (the record: command, commit, date, machine and load, every row),
`ranking.md` (the benchmark page), `ranking_table.md` (the summary the Ranking page
includes), `ranking_tiles_table.md` (the tile sizes) and `ranking.png` to `results/`
(ignored by git) or `--out DIR`; `--record` writes them to `docs/benchmarks/`. The
reports are made in `_ranking_report.py`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

import torch
from torch.utils.benchmark import Timer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from softmetrics import _tuning  # noqa: E402
from softmetrics.functional import (  # noqa: E402
    _ranking_tiles,
    soft_auroc,
    soft_average_precision,
    soft_calibrated_average_precision,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    add_output_arguments,
    command_line,
    finish_record,
    fresh_compile_cache,
    output_dir,
    refuse_smoke_record,
    run_record,
    wrote,
)
from _machine import Budget, machine, write_atomic  # noqa: E402
from _ranking_report import COMPILED, LISTED, markdown, plot, summary_table  # noqa: E402
from _ranking_tiles import (  # noqa: E402
    SMOKE_TILE_PROBLEMS,
    SMOKE_TILE_SIZES,
    TILE_PROBLEMS,
    TILE_SIZES,
    tile_sizes,
    tiles_table,
)

TEMPERATURE = 0.1
RANDOM_RATES = [0.01, 0.1, 0.5]


# ---------------------------------------------------------------------------------------
# the methods


def full_matrix_ap(scores: torch.Tensor, target: torch.Tensor, temperature: float
                   ) -> torch.Tensor:
    """The same soft AP as the library, on the full N x N matrix under autograd."""
    pos = (target == 1).to(scores.dtype)
    neg = 1 - pos
    above = (torch.sigmoid((scores.unsqueeze(0) - scores.unsqueeze(1)) / temperature)
             * neg.unsqueeze(0)).sum(1)
    order = scores.detach().argsort(descending=True)
    rank = torch.empty_like(pos).scatter_(0, order, pos[order].cumsum(0))
    rank = torch.where(pos > 0, rank, torch.ones_like(rank))
    return (pos * rank / (rank + above)).sum() / pos.sum().clamp_min(1)


def listing(on: bool):
    """The tiles list the positives on every device (`on`: on the CPU they do by default,
    elsewhere at one synchronisation per pass) or on none (every pair, as by default off
    the CPU), for a whole forward and backward."""
    return mock.patch.multiple(_tuning, RANKING_CPU_LISTS_POSITIVES=on,
                               RANKING_DEVICE_LISTS_POSITIVES=on)


def binary_inputs(n: int, device: str):
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(n, generator=g).to(device).requires_grad_(True)
    target = (torch.rand(n, generator=g) < 0.1).long().to(device)
    return scores, target


def _soft_ap(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return soft_average_precision(scores, target, task="binary", temperature=TEMPERATURE,
                                  validate_args=False)


def binary_step(method: str, n: int, device: str):
    scores, target = binary_inputs(n, device)
    compiled, first = None, [True]
    if method == COMPILED:
        torch._dynamo.reset()
        compiled = torch.compile(_soft_ap, fullgraph=True, dynamic=False)

    def run():
        scores.grad = None
        if compiled is not None:
            # the first call compiles, with an empty compile cache: a cold compilation
            with fresh_compile_cache() if first else nullcontext():
                compiled(scores, target).backward()
            first.clear()
        elif method == "softmetrics":
            _soft_ap(scores, target).backward()
        elif method == LISTED:
            with listing(True):
                _soft_ap(scores, target).backward()
        elif method == "softmetrics AUROC":
            soft_auroc(scores, target, task="binary", temperature=TEMPERATURE,
                       validate_args=False).backward()
        elif method == "full matrix":
            full_matrix_ap(scores, target, TEMPERATURE).backward()
        elif method == "exact (temperature 0)":
            with torch.no_grad():
                soft_average_precision(scores, target, task="binary", temperature=0,
                                       validate_args=False)
        else:
            raise ValueError(method)
    return run


def retrieval_inputs(b: int, device: str):
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(b, 32, generator=g).to(device).requires_grad_(True)
    labels = (torch.arange(b) // 4).to(device)
    return emb, labels


def retrieval_step(method: str, b: int, device: str):
    emb, labels = retrieval_inputs(b, device)
    same = (labels.unsqueeze(0) == labels.unsqueeze(1)).long()
    eye = torch.eye(b, dtype=torch.bool, device=device)
    target = torch.where(eye, torch.full_like(same, -1), same)
    if method == "pytorch-metric-learning":
        from pytorch_metric_learning.losses import SmoothAPLoss
        loss_fn = SmoothAPLoss(temperature=0.01)

    def run():
        emb.grad = None
        if method in ("softmetrics", LISTED):
            with listing(True) if method == LISTED else nullcontext():
                x = torch.nn.functional.normalize(emb, dim=1)
                sims = x @ x.t()
                value = soft_average_precision(sims, target, task="multilabel",
                                               num_classes=b, temperature=0.01,
                                               ignore_index=-1, validate_args=False)
                (1 - value).backward()
        elif method == "pytorch-metric-learning":
            loss_fn(emb, labels).backward()
        else:
            raise ValueError(method)
    return run


def multiclass_step(method: str, n: int, c: int, device: str):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(n, c, generator=g).to(device).requires_grad_(True)
    target = torch.randint(0, c, (n,), generator=g).to(device)
    one_hot = torch.nn.functional.one_hot(target, c)
    kw = dict(num_classes=c, average="macro", temperature=TEMPERATURE, validate_args=False)

    def run():
        logits.grad = None
        if method == "softmetrics":
            value = soft_average_precision(logits, target, task="multiclass", **kw)
            value.backward()
        elif method == "every pair":
            # as on other devices: no listing of the positives, forward and backward
            with listing(False):
                value = soft_average_precision(torch.log_softmax(logits, 1), one_hot,
                                               task="multilabel", **kw)
                value.backward()
        else:
            raise ValueError(method)
        return value.detach()
    return run


def multilabel_target(n: int, c: int) -> torch.Tensor:
    """(n, c) 0/1 labels, label j positive with probability 0.5 (0.02)^(j / (c - 1))."""
    g = torch.Generator().manual_seed(0)
    rates = 0.5 * 0.02 ** (torch.arange(c) / max(c - 1, 1))
    return (torch.rand(n, c, generator=g) < rates).long()


def multilabel_step(method: str, n: int, c: int, device: str):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(n, c, generator=g).to(device).requires_grad_(True)
    target = multilabel_target(n, c).to(device)
    kw = dict(task="multilabel", num_classes=c, average="macro", temperature=TEMPERATURE,
              validate_args=False)
    listed = {"softmetrics": None, LISTED: True, "every pair": False}[method]

    def run():
        logits.grad = None
        with nullcontext() if listed is None else listing(listed):
            value = soft_average_precision(logits, target, **kw)
            value.backward()
        return value.detach()
    return run


def make_step(setting: str, method: str, n: int, device: str, classes: int = 0):
    if setting == "multiclass":
        return multiclass_step(method, n, classes, device)
    if setting == "multilabel":
        return multilabel_step(method, n, classes, device)
    return (binary_step if setting == "binary" else retrieval_step)(method, n, device)


def pairs_of(setting: str, method: str, n: int, c: int, device: str) -> int:
    """Sigmoid pairs of one forward. Multiclass: each sample's positive against its
    class's column, or every entry against its column. Multilabel: each label's
    positives against its negatives where they are listed (the least a listing computes;
    `tile_pairs` counts what the tiles do), else every pair."""
    if setting == "multiclass":
        return n * n if method == "softmetrics" else c * n * n
    listed = method == LISTED or (method == "softmetrics" and device == "cpu")
    if not listed:
        return c * n * n
    positives = multilabel_target(n, c).sum(0)
    return int((positives * (n - positives)).sum())


def tile_pairs(run) -> int:
    """The sigmoid pairs that the tiles of `NegativesAbove` compute in one pass of `run`
    (forward and backward run the same tiles), counted by a wrapper of its tile loop."""
    counted = []
    tiles = _ranking_tiles._tiles

    def counting(*args):
        for tile in tiles(*args):
            start, stop, k, _, cols = tile[:5]
            counted.append(k * (stop - start) * cols.shape[-1])
            yield tile

    with mock.patch.object(_ranking_tiles, "_tiles", counting):
        run()
    return sum(counted) // 2


# three float32 tile buffers of at most 2^22 pairs: a bound on any tiled path's tiles
TILE_BYTES = 3 * 2**22 * 4


def estimated_gib(setting: str, method: str, n: int, classes: int = 0) -> float:
    """A rough upper estimate of the extra memory, to skip what does not fit: the full
    matrix keeps about four float32 N x N buffers under autograd (16 bytes per pair)."""
    if setting in ("multiclass", "multilabel"):
        return (TILE_BYTES + 64 * n * classes) / 2**30
    if setting == "binary":
        if method == "full matrix":
            return 16 * n * n / 2**30
        return (TILE_BYTES + 64 * n) / 2**30
    if method == "pytorch-metric-learning":
        return 24 * n**3 / 2**30
    return (TILE_BYTES + 64 * n * n) / 2**30


def pml_available() -> bool:
    try:
        import pytorch_metric_learning  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------------
# measurements


def time_step(run, device: str, min_run_time: float) -> dict:
    """Median and interquartile range of `run` after one warm-up call, whose seconds are
    kept too (`first_s`: a compiled step's compilation)."""
    start = time.perf_counter()
    run()  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    first = time.perf_counter() - start
    stmt = "run(); torch.cuda.synchronize()" if device == "cuda" else "run()"
    m = Timer(stmt=stmt, globals={"run": run, "torch": torch}).blocked_autorange(
        min_run_time=min_run_time)
    return {"median_s": m.median, "iqr_s": m.iqr, "runs": len(m.times), "first_s": first}


def peak_tracker():
    """`(reset, peak_kib)`: start a fresh peak-memory window and read its peak (KiB).

    On Linux the peak resident set (VmHWM) of this process is reset by writing 5 to
    /proc/self/clear_refs, and `reset` returns the resident size at that moment. Elsewhere
    the process-lifetime `ru_maxrss` is the fallback. (`ru_maxrss` is not used on Linux:
    it is inherited from the parent across fork + exec, so a child started by a large
    process would report that parent's peak.)
    """
    import resource

    def status(field: str) -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        status("VmHWM")
    except OSError:
        def ru() -> int:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return ru, ru

    def reset() -> int:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return status("VmRSS")

    return reset, lambda: status("VmHWM")


_MEMORY_CHILD = r"""
import json, sys
import torch
sys.path.insert(0, sys.argv[1])
torch.set_num_threads(int(sys.argv[5]))
from benchmarks.ranking import make_step, peak_tracker
setting, method, n, c = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[6])
small = 8 if setting == "retrieval" else 64
make_step(setting, method, small, "cpu", c)()  # warm-up: kernels, allocator
run = make_step(setting, method, n, "cpu", c)
reset, peak = peak_tracker()
base = reset()
run()
print(json.dumps({"peak_extra_mib": (peak() - base) / 1024}))
"""


def cpu_peak_mib(setting: str, method: str, n: int, threads: int, classes: int = 0
                 ) -> float:
    """Peak extra memory of one step in a fresh process (one retry if the child fails)."""
    for attempt in range(2):
        out = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(ROOT), setting,
                              method, str(n), str(threads), str(classes)],
                             capture_output=True, text=True)
        if out.returncode == 0:
            return json.loads(out.stdout.strip().splitlines()[-1])["peak_extra_mib"]
        if attempt:
            raise RuntimeError(f"memory child failed for {setting}/{method}/{n}:\n"
                               + out.stderr[-2000:])
    raise AssertionError("unreachable")


def cuda_peak_mib(run) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    run()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def measure(settings: dict[str, list], devices: list[str], max_gib: float,
            min_run_time: float, log, memory: bool = True,
            cuda_settings: dict[str, list] | None = None,
            budget: Budget | None = None, memory_jobs: int = 1,
            rows: list[dict] | None = None, max_pairs: float = float("inf"),
            compiled: bool = True) -> list[dict]:
    """Time every (device, setting, size, method), appending to `rows` and calling
    `log(row)` after each; the CPU memory afterwards, in subprocesses, `memory_jobs` at
    once (with `memory=False` only for the first CPU row, which keeps the smoke run
    short). `cuda_settings` adds sizes on CUDA only. A size is N, or (N, C) for the
    multiclass setting, whose methods are skipped above `max_pairs` pairs; `compiled`
    adds the compiled soft AP to the binary setting."""
    rows = [] if rows is None else rows
    budget = budget or Budget(None)
    methods = {
        "binary": ["softmetrics", "softmetrics AUROC", "full matrix", "exact (temperature 0)",
                   *([COMPILED] if compiled else [])],
        "retrieval": ["softmetrics"] + (["pytorch-metric-learning"] if pml_available() else []),
        "multiclass": ["softmetrics", "every pair"],
        "multilabel": ["softmetrics", "every pair"],
    }
    cpu_memory = []
    for device in devices:
        for setting, sizes in settings.items():
            extra = (cuda_settings or {}).get(setting, []) if device == "cuda" else []
            for size in [*sizes, *(x for x in extra if x not in sizes)]:
                n, c = size if setting in ("multiclass", "multilabel") else (size, 0)
                names = list(methods[setting])
                if device != "cpu" and setting != "multiclass":
                    # there the tiles compute every pair unless allowed to synchronise
                    names.insert(1, LISTED)
                    if setting == "multilabel":  # every pair: the default path there
                        names.remove("every pair")
                for method in names:
                    row = {"device": device, "setting": setting, "method": method, "n": n}
                    if setting in ("multiclass", "multilabel"):
                        row.update(classes=c, pairs=pairs_of(setting, method, n, c, device))
                    gib = estimated_gib(setting, method, n, c)
                    if budget.spent():
                        row["skipped"] = budget.stop(f"{device} {setting} {method} {size}")
                    elif gib > max_gib:
                        row["estimated_gib"] = gib
                        row["skipped"] = f"needs about {gib:.0f} GiB (limit {max_gib:g} GiB)"
                    elif row.get("pairs", 0) > max_pairs:
                        row["skipped"] = f"{row['pairs']:.1e} pairs (limit {max_pairs:.1e})"
                    else:
                        run = make_step(setting, method, n, device, c)
                        row.update(time_step(run, device, min_run_time))
                        if setting == "multilabel":
                            row["pairs"] = tile_pairs(run)
                        if device == "cuda":
                            row["peak_extra_mib"] = cuda_peak_mib(run)
                        elif method == COMPILED:
                            # compiled at this size, the allocator is warm where the
                            # others' is not (the operator runs eager mode's code)
                            row["memory"] = "not measured"
                        elif memory or not cpu_memory:
                            cpu_memory.append(row)
                        del run
                    rows.append(row)
                    log(row)
    if cpu_memory and budget.spent():
        budget.stop("the CPU memory measurements")
    elif cpu_memory:
        threads = torch.get_num_threads()

        lock = threading.Lock()

        def peak(row: dict) -> None:
            try:
                value = {"peak_extra_mib": cpu_peak_mib(row["setting"], row["method"],
                                                        row["n"], threads,
                                                        row.get("classes", 0))}
            except RuntimeError as err:
                value = {"memory_error": str(err).splitlines()[0]}
            with lock:  # one writer of the rows and the result files at a time
                row.update(value)
                log(row)

        with ThreadPoolExecutor(max(1, memory_jobs)) as pool:
            list(pool.map(peak, cpu_memory))
    return rows


def random_ranking(n: int, rates: list[float], seed: int = 0) -> list[dict]:
    """Exact AP and calibrated AP of scores drawn independently of the labels."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for rate in rates:
        scores = torch.rand(n, generator=g, dtype=torch.float64)
        target = (torch.rand(n, generator=g) < rate).long()
        kw = dict(task="binary", temperature=0)
        out.append({"n": n, "positive_rate": rate,
                    "positives": int(target.sum()),
                    "ap": float(soft_average_precision(scores, target, **kw)),
                    "cap": float(soft_calibrated_average_precision(scores, target, **kw))})
    return out


def _size(text: str) -> tuple[int, int]:
    n, c = text.lower().split("x")
    return int(n), int(c)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, quick check")
    parser.add_argument("--max-gib", type=float, default=4.0,
                        help="skip a method whose estimated memory exceeds this")
    parser.add_argument("--binary-sizes", type=int, nargs="*",
                        default=[1000, 4000, 8000, 16000, 100000])
    parser.add_argument("--retrieval-sizes", type=int, nargs="*",
                        default=[64, 128, 256, 512])
    parser.add_argument("--multiclass-sizes", type=_size, nargs="*", metavar="NxC",
                        default=[(1000, 10), (4000, 10), (16000, 10), (500, 100),
                                 (2000, 100), (8000, 100)])
    parser.add_argument("--multilabel-sizes", type=_size, nargs="*", metavar="NxC",
                        default=[(1000, 20), (4000, 20), (16000, 20)])
    parser.add_argument("--multiclass-max-pairs", type=float, default=5e8,
                        help="skip a multiclass or multilabel method with more sigmoid "
                        "pairs than this")
    parser.add_argument("--cuda-binary-sizes", type=int, nargs="*", default=[],
                        help="binary sizes run on CUDA only")
    parser.add_argument("--cuda-retrieval-sizes", type=int, nargs="*", default=[],
                        help="retrieval sizes run on CUDA only")
    parser.add_argument("--devices", nargs="+", choices=["cpu", "cuda"], default=None,
                        help="in this order (default: cuda when present, then cpu)")
    parser.add_argument("--min-run-time", type=float, default=1.0)
    parser.add_argument("--memory-jobs", type=int, default=1,
                        help="CPU memory measurements run at once (each in its own process)")
    parser.add_argument("--compiled", action=argparse.BooleanOptionalAction,
                        default=hasattr(torch.library, "custom_op"),
                        help="binary soft AP under torch.compile too (default: where torch "
                        "has custom operators, 2.4 and later, which compiling needs)")
    parser.add_argument("--tiles", action=argparse.BooleanOptionalAction, default=None,
                        help="the CPU tile-size part (default: on when the CPU is timed)")
    parser.add_argument("--tile-rounds", type=int, default=5,
                        help="rounds of the tile-size part (each times every tile size)")
    parser.add_argument("--tile-min-run-time", type=float, default=0.5)
    parser.add_argument("--random-n", type=int, default=20000,
                        help="scores of the random ranking (0: skip that part)")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="stop before the next row once this many seconds have passed")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    refuse_smoke_record(parser, args)
    out = output_dir(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.smoke:  # every pair is skipped at the second multiclass size
        settings = {"binary": [200, 500], "retrieval": [16],
                    "multiclass": [(100, 4), (200, 4)], "multilabel": [(100, 5)]}
        min_run_time, max_pairs = 0.01, 1e5
    else:
        settings = {"binary": args.binary_sizes, "retrieval": args.retrieval_sizes,
                    "multiclass": args.multiclass_sizes,
                    "multilabel": args.multilabel_sizes}
        min_run_time, max_pairs = args.min_run_time, args.multiclass_max_pairs
    cuda_settings = {"binary": args.cuda_binary_sizes, "retrieval": args.cuda_retrieval_sizes}
    devices = args.devices or (["cuda"] if torch.cuda.is_available() else []) + ["cpu"]
    tiles = "cpu" in devices if args.tiles is None else args.tiles
    started = run_record(command_line("ranking.py", argv))
    result = {"run": None,
              "machine": machine({"pytorch_metric_learning": "pytorch_metric_learning"},
                                 device="cuda" if "cuda" in devices else "cpu"),
              "temperature": TEMPERATURE, "smoke": args.smoke, "rows": []}

    budget = Budget(args.budget_s)

    def save() -> None:
        result["stopped"] = budget.stopped
        result["run"] = finish_record(started)
        write_atomic(out / "ranking.json", json.dumps(result, indent=2) + "\n")
        write_atomic(out / "ranking.md", markdown(result))
        write_atomic(out / "ranking_table.md", summary_table(result))
        if "tiles" in result:
            write_atomic(out / "ranking_tiles_table.md", tiles_table(result["tiles"]))

    def log(row: dict) -> None:
        print(json.dumps(row), flush=True)
        save()

    measure(settings, devices, args.max_gib, min_run_time, log, memory=not args.smoke,
            cuda_settings=cuda_settings, budget=budget,
            memory_jobs=args.memory_jobs, rows=result["rows"], max_pairs=max_pairs,
            compiled=args.compiled)
    if tiles:
        result["tiles"] = {"threads": 1, "default": _tuning.RANKING_TILE_ELEMENTS,
                           "temperature": TEMPERATURE, "rows": []}
        result["tiles"]["rows"] = tile_sizes(
            SMOKE_TILE_PROBLEMS if args.smoke else TILE_PROBLEMS,
            SMOKE_TILE_SIZES if args.smoke else TILE_SIZES,
            1 if args.smoke else args.tile_rounds,
            0.01 if args.smoke else args.tile_min_run_time, TEMPERATURE, budget)
        save()
    if args.random_n:
        if budget.spent():
            budget.stop("the random ranking")
        else:
            result["random_ranking"] = random_ranking(200 if args.smoke else args.random_n,
                                                      RANDOM_RATES)
    save()
    plot(result, out / "ranking.png")
    wrote(out, ["ranking.json (the record)", "ranking.md", "ranking_table.md",
                *(["ranking_tiles_table.md"] if tiles else []), "ranking.png"])


if __name__ == "__main__":
    main()

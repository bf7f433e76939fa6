"""Speed and memory of InfoNCE and SigLIP: naive losses, peers, and softmetrics (tiled and not).

Two workloads, D = 128 by default, temperature 0.07, cosine similarity, and a third on request:

* **InfoNCE** (CLIP direction, CPC): N queries, N keys, in-batch negatives.
  naive `F.cross_entropy(q @ k.T / tau, arange(N))`, info-nce-pytorch `info_nce`,
  softmetrics `info_nce` with the full matrix and tiled.
* **NT-Xent** (SimCLR): N pairs, 2N views, every other view a negative.
  naive cross-entropy on the 2N x 2N matrix with the diagonal masked,
  pytorch-metric-learning `NTXentLoss`, softmetrics `info_nce(query_negatives=True,
  symmetric=True)` tiled.
* **SigLIP** (`--siglip-sizes`, D = `--siglip-d`, 512 by default): N images, N texts, the
  sigmoid loss with t = 10, b = -10. naive: the paper's formulation on the full matrix,
  labels `2 I - 1` and `-logsigmoid(labels * logits).sum() / N`; softmetrics
  `sigmoid_contrastive_loss` with the full matrix and with its automatic tiles.
  `--siglip-memory-only` skips their timing (one forward + backward at N = 65536 and
  D = 512 takes minutes on a CPU).

Peak memory is measured in a fresh subprocess per (method, N): the peak resident set size
(`VmHWM`, reset through `/proc/self/clear_refs`; on CUDA `max_memory_allocated`) of one
forward + backward pass, minus the resident size just before it, with the inputs already
allocated. Times are medians of `torch.utils.benchmark.Timer.blocked_autorange`, all methods
of one N timed in one subprocess. Methods that would not fit in memory are skipped and say so.
With `--in-process` the memory and the time of each (method, N) are measured in this
process instead: exact on CUDA, where `max_memory_allocated` counts the tensors of one
step whatever ran before, and approximate on the CPU (freed memory the C allocator keeps
hides part of the peak); it saves the start-up of one process per measurement. `--methods`
picks the InfoNCE methods, among them `softmetrics_auto`: the tiles the library chooses by
itself on the device (`chunk_size=None`).

The memory scaling part (`--scale-sizes`) runs the automatic tiles alone at large N, for
each of `--scale-dtypes`, and reports the peak extra memory and the peak with the two
embedding matrices. `--scale-tf32` allows TF32 matrix products there: the same tensors are
allocated, so the memory is unchanged, and the single step takes a fraction of the time.

Every row is written (JSON and tables) as soon as it is measured, so a run that is stopped
keeps what it measured; `--budget-s` stops it cleanly before the next measurement.

A third part estimates the InfoNCE mutual-information bound on correlated Gaussians with the
optimal critic (Poole et al. 2019) and plots it against the true value.

Usage:
    python benchmarks/contrastive.py                 # N in {1024, 4096, 16384}
    python benchmarks/contrastive.py --large         # also N = 65536 (tiled only on CPU)
    python benchmarks/contrastive.py --record --large --threads 2 --scale-sizes 16384 32768
    python benchmarks/contrastive.py --smoke --out /tmp/x   # seconds; keeps the script working
    python benchmarks/contrastive.py --sizes --ntxent-sizes --skip-mi --out /tmp/siglip \
        --siglip-sizes 16384 65536 --siglip-memory-only   # the SigLIP rows alone
    python benchmarks/contrastive.py --device cuda --in-process --methods naive \
        softmetrics_auto --sizes 16384 65536 --d 512 --ntxent-sizes --skip-mi \
        --scale-sizes 262144 1048576 --scale-methods softmetrics_auto --scale-tf32

Writes `contrastive.json` (the record: command, commit, date, machine and load, every
row), `contrastive_table.md`, `contrastive_memory.png` and `contrastive_mi.png` to
`results/` (ignored by git) or `--out DIR`; `--record` writes them to `docs/benchmarks/`
and refreshes the tables in `docs/contrastive.md` between its `bench` markers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

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

ROOT = Path(__file__).resolve().parents[1]
TAU = 0.07
TILE = 256  # candidates per tile of the "tiled" rows: a fixed size, below the automatic one
SIGLIP_SCALE, SIGLIP_BIAS = 10.0, -10.0  # t and b at SigLIP's initialisation (Zhai et al. 2023)

INFONCE_METHODS = ["naive", "info_nce_pytorch", "softmetrics_full", "softmetrics_tiled",
                   "softmetrics_auto"]
DEFAULT_METHODS = INFONCE_METHODS[:4]
# the memory scaling of the automatic tiles (memory only): one direction and CLIP's two
SCALE_METHODS = ["softmetrics_auto", "softmetrics_clip_auto"]
NTXENT_METHODS = ["naive_ntxent", "pml_ntxent", "softmetrics_ntxent_tiled"]
SIGLIP_METHODS = ["naive_siglip", "softmetrics_siglip_full", "softmetrics_siglip_auto"]
LABELS = {
    "naive": "naive cross-entropy",
    "info_nce_pytorch": "info-nce-pytorch",
    "softmetrics_full": "softmetrics, full matrix",
    "softmetrics_tiled": f"softmetrics, tiled ({TILE})",
    "naive_ntxent": "naive NT-Xent",
    "pml_ntxent": "pytorch-metric-learning NTXentLoss",
    "softmetrics_ntxent_tiled": f"softmetrics NT-Xent, tiled ({TILE})",
    "softmetrics_auto": "softmetrics InfoNCE, automatic tiles",
    "softmetrics_clip_auto": "softmetrics CLIP (symmetric), automatic tiles",
    "naive_siglip": "naive SigLIP (labels 2I - 1, logsigmoid)",
    "softmetrics_siglip_full": "softmetrics SigLIP, full matrix",
    "softmetrics_siglip_auto": "softmetrics SigLIP, automatic tiles",
}


# --------------------------------------------------------------------------------------
# the methods: each returns a closure running forward + backward
# --------------------------------------------------------------------------------------


def _available(method: str) -> str | None:
    """None when the method can run here, else why not."""
    try:
        if method == "info_nce_pytorch":
            import info_nce  # noqa: F401
        if method == "pml_ntxent":
            import pytorch_metric_learning  # noqa: F401
    except ImportError as err:
        return f"not installed ({err.name})"
    return None


def _bytes_needed(method: str, n: int, d: int = 128) -> float:
    """A rough upper estimate of the peak extra memory, to skip what cannot fit."""
    if method in ("naive", "info_nce_pytorch", "softmetrics_full"):
        return 16.0 * n * n
    if method == "naive_ntxent":
        return 16.0 * (2 * n) ** 2
    if method == "pml_ntxent":
        return 17.0 * (2 * n) ** 3  # measured: 2.1 GiB at n = 256 pairs, cubic in n
    if method in ("naive_siglip", "softmetrics_siglip_full"):
        return 24.0 * n * n  # up to six N x N float32 buffers
    return 64.0 * n * d + 24.0 * n * TILE


def make_step(method: str, n: int, d: int, device: str, dtype: torch.dtype = torch.float32):
    from softmetrics.functional import info_nce, sigmoid_contrastive_loss

    # on a GPU the embeddings are drawn there: 2^20 x 512 numbers take seconds on a CPU
    where = "cuda" if torch.device(device).type == "cuda" else "cpu"
    g = torch.Generator(device=where).manual_seed(0)
    q, k = (torch.randn(n, d, generator=g, device=where).to(device=device, dtype=dtype)
            .requires_grad_(True) for _ in range(2))

    def run(loss_fn):
        def step():
            q.grad = k.grad = None
            loss_fn().backward()
        return step

    if method == "naive":
        target = torch.arange(n, device=device)
        return run(lambda: F.cross_entropy(
            F.normalize(q, dim=1) @ F.normalize(k, dim=1).T / TAU, target))
    if method == "info_nce_pytorch":
        import info_nce as peer
        return run(lambda: peer.info_nce(q, k, temperature=TAU))
    if method == "softmetrics_full":
        return run(lambda: info_nce(q, k, temperature=TAU, chunk_size=n, validate_args=False))
    if method == "softmetrics_tiled":
        return run(lambda: info_nce(q, k, temperature=TAU, chunk_size=TILE,
                                    validate_args=False))
    if method == "naive_siglip":
        def naive_siglip():
            labels = 2 * torch.eye(n, device=device) - 1
            logits = (SIGLIP_SCALE * F.normalize(q, dim=1) @ F.normalize(k, dim=1).T
                      + SIGLIP_BIAS)
            return -F.logsigmoid(labels * logits).sum() / n
        return run(naive_siglip)
    if method in ("softmetrics_siglip_full", "softmetrics_siglip_auto"):
        chunk = n if method == "softmetrics_siglip_full" else None
        return run(lambda: sigmoid_contrastive_loss(
            q, k, logit_scale=SIGLIP_SCALE, logit_bias=SIGLIP_BIAS, chunk_size=chunk,
            validate_args=False))
    if method in ("softmetrics_auto", "softmetrics_clip_auto"):
        return run(lambda: info_nce(q, k, temperature=TAU, validate_args=False,
                                    symmetric=method == "softmetrics_clip_auto"))
    # NT-Xent: q and k are the two views of n images
    if method == "naive_ntxent":
        target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(device)
        eye = torch.eye(2 * n, dtype=torch.bool, device=device)

        def naive_ntxent():
            z = F.normalize(torch.cat([q, k]), dim=1)
            return F.cross_entropy((z @ z.T / TAU).masked_fill(eye, float("-inf")), target)
        return run(naive_ntxent)
    if method == "pml_ntxent":
        from pytorch_metric_learning.losses import NTXentLoss
        labels = torch.arange(n, device=device).repeat(2)
        loss = NTXentLoss(temperature=TAU)
        return run(lambda: loss(torch.cat([q, k]), labels))
    if method == "softmetrics_ntxent_tiled":
        return run(lambda: info_nce(q, k, temperature=TAU, chunk_size=TILE,
                                    query_negatives=True, symmetric=True, validate_args=False))
    raise ValueError(method)


# --------------------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------------------


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise RuntimeError(key)


def child_memory(method: str, n: int, d: int, device: str,
                 dtype: torch.dtype = torch.float32) -> dict:
    """Peak extra memory of one forward + backward (in a fresh process, except on CUDA
    where the caching allocator's peak counts only this step's tensors)."""
    make_step(method, 16, d, device, dtype)()  # one-time initialisation outside the measurement
    step = make_step(method, n, d, device, dtype)
    if device == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        return {"peak_extra_bytes": torch.cuda.max_memory_allocated() - base,
                "how": "torch.cuda.max_memory_allocated",
                "step_s": time.perf_counter() - start}
    import gc
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak resident set size (VmHWM) to the current one
        base = _status("VmRSS:")
        step()
        return {"peak_extra_bytes": _status("VmHWM:") - base, "how": "VmHWM - VmRSS"}
    except OSError:  # no /proc: ru_maxrss, which cannot be reset
        import resource
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        step()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return {"peak_extra_bytes": after - before, "how": "ru_maxrss delta (lower bound)"}


def child_time(methods: list[str], n: int, d: int, device: str, min_run_time: float) -> dict:
    """Median forward + backward time of each method, all in this one process."""
    from torch.utils.benchmark import Timer

    out = {}
    for method in methods:
        step = make_step(method, n, d, device)
        step()  # warm up
        sync = "torch.cuda.synchronize()" if device == "cuda" else ""
        m = Timer(stmt=f"step(); {sync}", globals={"step": step, "torch": torch},
                  num_threads=torch.get_num_threads()).blocked_autorange(
                      min_run_time=min_run_time)
        out[method] = {"median_s": m.median, "iqr_s": m.iqr, "runs": len(m.times)}
        del step
    return out


def _spawn(args: list[str], timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    # a fixed mmap threshold: glibc then returns every large buffer to the system when it
    # is freed, so the resident size follows the live tensors
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072",
           "MALLOC_TRIM_THRESHOLD_": "131072"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _in_process(fn, *args) -> dict:
    """`fn(*args)` in this process, its tensors released afterwards; a failure (out of
    memory, above all) becomes an `error` entry, as a failed child process does."""
    import gc
    try:
        return fn(*args)
    except (RuntimeError, MemoryError) as err:
        return {"error": [f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"]}
    finally:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def run_workload(methods: list[str], sizes: list[int], d: int, device: str,
                 min_run_time: float, mem_limit: float, threads: int,
                 in_process: bool = False, budget: Budget | None = None,
                 rows: list[dict] | None = None, on_row=lambda row: None,
                 time_it: bool = True) -> list[dict]:
    """One row per (N, method), appended to `rows` (a new list by default); `on_row` sees
    each as soon as it is there. `time_it=False` measures the memory only."""
    rows = [] if rows is None else rows
    budget = budget or Budget(None)
    for n in sizes:
        if budget.spent():
            budget.stop(f"N = {n} ({', '.join(methods)})")
            return rows
        runnable, skipped = [], {}
        for method in methods:
            reason = _available(method)
            if reason is None and _bytes_needed(method, n, d) > mem_limit:
                reason = (f"skipped: needs about {_bytes_needed(method, n, d) / 2**30:.0f} "
                          f"GiB (limit {mem_limit / 2**30:.0f} GiB)")
            if reason is None:
                runnable.append(method)
            else:
                skipped[method] = reason
        if in_process:
            mem, times = {}, {}
            for m in runnable:
                if budget.spent():
                    skipped[m] = budget.stop(f"N = {n}, {m}")
                    continue
                mem[m] = _in_process(child_memory, m, n, d, device)
                if "error" not in mem[m] and time_it:
                    timed = _in_process(child_time, [m], n, d, device, min_run_time)
                    mem[m].update(timed.get(m, timed))
        else:
            common = ["--d", str(d), "--device", device, "--threads", str(threads)]
            mem = {m: _spawn(["--child-memory", m, str(n), *common], timeout=3600)
                   for m in runnable}
            times = _spawn(["--child-time", ",".join(runnable), str(n), *common,
                            "--min-run-time", str(min_run_time)], timeout=7200
                           ) if runnable and time_it else {}
        for method in methods:
            row = {"method": method, "n": n, "d": d}
            if method in skipped:
                row["skipped"] = skipped[method]
            else:
                row.update(mem.get(method, {}))
                row.update(times.get(method, {}) if "error" not in times else times)
            rows.append(row)
            print(json.dumps(row), flush=True)
            on_row(row)
    return rows


def run_scale(methods: list[str], sizes: list[int], d: int, device: str, threads: int,
              dtypes: tuple[str, ...] = ("float32",), in_process: bool = False,
              tf32: bool = False, budget: Budget | None = None,
              rows: list[dict] | None = None, on_row=lambda row: None) -> list[dict]:
    """Peak extra memory of the automatic tiles at large N (no timing, no naive loss),
    also as a multiple of one N x D float32 buffer, and with the embeddings themselves."""
    rows = [] if rows is None else rows
    budget = budget or Budget(None)
    for n in sizes:
        for dtype in dtypes:
            for method in methods:
                row = {"method": method, "n": n, "d": d, "dtype": dtype, "workload": "scale"}
                if budget.spent():
                    row["skipped"] = budget.stop(f"N = {n}, {dtype}, {method}")
                elif in_process:
                    previous = torch.backends.cuda.matmul.allow_tf32
                    torch.backends.cuda.matmul.allow_tf32 = tf32
                    try:
                        row.update(_in_process(child_memory, method, n, d, device,
                                               getattr(torch, dtype)))
                    finally:
                        torch.backends.cuda.matmul.allow_tf32 = previous
                    row["tf32"] = tf32
                else:
                    row.update(_spawn(["--child-memory", method, str(n), "--d", str(d),
                                       "--device", device, "--threads", str(threads),
                                       "--dtype", dtype, *(["--tf32"] if tf32 else [])],
                                      timeout=3600))
                    row["tf32"] = tf32
                if "peak_extra_bytes" in row:
                    row["nd_float32_buffers"] = row["peak_extra_bytes"] / (4.0 * n * d)
                    embeddings = 2 * n * d * getattr(torch, dtype).itemsize
                    row["embedding_bytes"] = embeddings
                    row["peak_with_embeddings_bytes"] = row["peak_extra_bytes"] + embeddings
                rows.append(row)
                print(json.dumps(row), flush=True)
                on_row(row)
    return rows


def scale_table(rows: list[dict]) -> str:
    out = ["| N | D | embeddings | method | peak extra memory | in N x D float32 buffers | "
           "peak with the embeddings |", "|---:|---:|---|---|---:|---:|---:|"]
    for r in rows:
        head = (f"| {r['n']} | {r['d']} | {r.get('dtype', 'float32')} | "
                f"{LABELS[r['method']]} | ")
        if "peak_extra_bytes" in r:
            total = r.get("peak_with_embeddings_bytes")
            total_txt = f"{_fmt_bytes(total)} ({total / 1e9:.2f} GB)" if total else ""
            out.append(head + f"{_fmt_bytes(r['peak_extra_bytes'])} | "
                       f"{r['nd_float32_buffers']:.2f} | {total_txt} |")
        else:
            why = r.get("skipped") or "failed: " + " ".join(r.get("error", []))
            out.append(head + f"{why} | | |")
    return "\n".join(out)


# --------------------------------------------------------------------------------------
# the mutual-information bound on correlated Gaussians
# --------------------------------------------------------------------------------------


def gaussian_mi_curve(n: int, d: int, rhos: list[float], queries: int, seed: int = 0):
    """InfoNCE bound with the optimal critic for each correlation in `rhos`."""
    from softmetrics.functional import info_nce, mutual_information_bound

    out = []
    g = torch.Generator().manual_seed(seed)
    for rho in rhos:
        batches = max(1, queries // n)
        x = torch.randn(batches, n, d, generator=g, dtype=torch.float64)
        y = rho * x + math.sqrt(1 - rho**2) * torch.randn(batches, n, d, generator=g,
                                                            dtype=torch.float64)
        b, a = rho / (1 - rho**2), rho**2 / (2 * (1 - rho**2))
        query = torch.cat([b * x, torch.ones(batches, n, 1, dtype=torch.float64)], 2)
        key = torch.cat([y, -a * (y * y).sum(2, keepdim=True)], 2)
        loss = torch.stack([info_nce(query[i], key[i], normalize=False, temperature=1.0,
                                     validate_args=False) for i in range(batches)]).mean()
        out.append(mutual_information_bound(loss, n).item())
    return out


def mi_part(out: Path, smoke: bool) -> dict:
    d = 10
    true = [0.25 * i for i in range(1, 41)] if not smoke else [0.5, 2.0, 8.0]
    rhos = [math.sqrt(1 - math.exp(-2 * mi / d)) for mi in true]
    sizes = [16, 128, 1024] if not smoke else [16]
    queries = 4096 if not smoke else 256
    curves = {n: gaussian_mi_curve(n, d, rhos, queries) for n in sizes}
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(true, true, color="black", lw=1, label="true $I(X;Y)$")
        for n, values in curves.items():
            line, = ax.plot(true, values, marker=".", label=f"InfoNCE bound, N = {n}")
            ax.axhline(math.log(n), color=line.get_color(), ls="--", lw=0.8)
        ax.set_xlabel("true mutual information (nats)")
        ax.set_ylabel("estimate (nats)")
        ax.set_title(f"InfoNCE bound, correlated Gaussians (d = {d}), optimal critic")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "contrastive_mi.png", dpi=110)
        plt.close(fig)
    except ImportError:
        pass
    return {"d": d, "true_mi": true, "bound": {str(n): v for n, v in curves.items()},
            "queries_per_point": queries}


# --------------------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------------------


def _fmt_bytes(b: float) -> str:
    if b < 2**20:
        return f"{b / 2**10:.0f} KiB"
    if b < 2**30:
        return f"{b / 2**20:.1f} MiB"
    return f"{b / 2**30:.2f} GiB"


def table(rows: list[dict], methods: list[str], naive: str) -> str:
    lines = ["| N | method | peak extra memory | vs naive | fwd+bwd time (median) | vs naive |",
             "|---:|---|---:|---:|---:|---:|"]
    by = {(r["n"], r["method"]): r for r in rows if "method" in r}
    for n in sorted({r["n"] for r in rows}):
        base = by.get((n, naive), {})
        for method in methods:
            r = by.get((n, method))
            if r is None:
                continue
            if "skipped" in r or "error" in r:
                why = r.get("skipped") or "failed: " + " ".join(r["error"])
                lines.append(f"| {n} | {LABELS[method]} | {why} | | | |")
                continue
            mem, t = r.get("peak_extra_bytes"), r.get("median_s")
            if mem is None:  # the memory was measured, the timing failed
                lines.append(f"| {n} | {LABELS[method]} | failed: "
                             f"{' '.join(r.get('error', []))} | | | |")
                continue
            rel_mem = (f"{mem / base['peak_extra_bytes']:.1%}"
                       if base.get("peak_extra_bytes") and mem is not None else "")
            rel_t = f"{t / base['median_s']:.2f}x" if base.get("median_s") and t else ""
            t_txt = (f"{t * 1e3:.0f} ms ({r.get('runs', '?')} runs)" if t
                     else "not timed" if r.get("untimed") else "")
            lines.append(f"| {n} | {LABELS[method]} | {_fmt_bytes(mem)} | {rel_mem} | "
                         f"{t_txt} | {rel_t} |")
    return "\n".join(lines)


def memory_plot(rows: list[dict], path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    # the full-matrix methods coincide: distinct markers and sizes keep each visible
    style = {"naive": ("o", 9), "info_nce_pytorch": ("s", 6), "softmetrics_full": ("x", 7),
             "softmetrics_tiled": ("^", 7), "naive_ntxent": ("o", 7), "pml_ntxent": ("D", 6),
             "softmetrics_ntxent_tiled": ("v", 7), "softmetrics_auto": ("+", 8)}
    for method in INFONCE_METHODS + NTXENT_METHODS:
        pts = sorted((r["n"], r["peak_extra_bytes"]) for r in rows
                     if r.get("method") == method and r.get("peak_extra_bytes"))
        if pts:
            marker, size = style[method]
            ax.plot([p[0] for p in pts], [p[1] / 2**20 for p in pts], marker=marker,
                    markersize=size, mfc="none", ls="--" if "ntxent" in method else "-",
                    label=LABELS[method])
    if not ax.lines:  # a run of other rows only (SigLIP): nothing to draw
        plt.close(fig)
        return
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("N (pairs)")
    ax.set_ylabel("peak extra memory of fwd+bwd (MiB)")
    ax.set_title(f"InfoNCE / NT-Xent memory, D = {rows[0]['d'] if rows else 128}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _refresh_docs(markdown: str) -> None:
    page = ROOT / "docs" / "contrastive.md"
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    text = page.read_text()
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        page.write_text(f"{head}{start}\n{markdown}\n{end}{tail}")


def report_markdown(result: dict) -> str:
    """The tables of a record (the block the Contrastive page shows between its markers)."""
    rows = result["rows"]
    d = next((r["d"] for r in rows if r.get("method") not in SIGLIP_METHODS), 128)
    m, run = result["machine"], result["run"]
    gpu = f"; GPU: {m['gpu']}" if m["gpu"] else ""
    where = f"{provenance_line(run, m, run['seconds'])}; torch {m['torch']}{gpu}."
    if any(r.get("method") in INFONCE_METHODS + NTXENT_METHODS for r in rows):
        where += f" D = {d}, temperature {TAU}."
    parts = [where]
    if any(r.get("method") in INFONCE_METHODS for r in rows):
        parts += ["**InfoNCE** (N queries, N keys, in-batch negatives):",
                  table(rows, INFONCE_METHODS, "naive")]
    if any(r.get("method") in NTXENT_METHODS for r in rows):
        parts += ["**NT-Xent** (N pairs = 2N views):",
                  table(rows, NTXENT_METHODS, "naive_ntxent")]
    siglip = [r for r in rows if r.get("method") in SIGLIP_METHODS]
    if siglip:
        parts += [f"**SigLIP** (N images, N texts, D = {siglip[0]['d']}, t = {SIGLIP_SCALE:g}, "
                  f"b = {SIGLIP_BIAS:g}):", table(siglip, SIGLIP_METHODS, "naive_siglip")]
    markdown = "\n\n".join(parts)
    if result.get("scale"):
        markdown += ("\n\n**Memory of the automatic tiles at large N** (peak extra memory; "
                     "one N x D float32 buffer is 4 N D bytes; the peak with the query and "
                     "key embeddings adds 2 N D times their item size):\n\n"
                     + scale_table(result["scale"]))
    if result.get("stopped"):
        markdown += "\n\n" + result["stopped"]
    return markdown


def _report(result: dict, out: Path, refresh_docs: bool, plot: bool = True) -> str:
    """Write the tables (and the plot) of `result` to `out`; with `refresh_docs` also into
    docs/contrastive.md between its markers."""
    if plot:
        memory_plot(result["rows"], out / "contrastive_memory.png")
    markdown = report_markdown(result)
    write_atomic(out / "contrastive_table.md", markdown + "\n")
    if refresh_docs:
        _refresh_docs(markdown)
    return markdown


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1024, 4096, 16384])
    parser.add_argument("--methods", nargs="+", default=DEFAULT_METHODS,
                        choices=INFONCE_METHODS, help="the InfoNCE methods timed")
    parser.add_argument("--ntxent-sizes", type=int, nargs="*", default=[128, 256, 1024, 4096])
    parser.add_argument("--large", action="store_true", help="also N = 65536")
    parser.add_argument("--scale-sizes", type=int, nargs="*", default=[],
                        help="N for the memory scaling of the automatic tiles (none: skip)")
    parser.add_argument("--scale-d", type=int, default=512)
    parser.add_argument("--scale-methods", nargs="+", default=SCALE_METHODS,
                        choices=SCALE_METHODS)
    parser.add_argument("--scale-dtypes", nargs="+", default=["float32"],
                        choices=["float32", "bfloat16", "float16"],
                        help="dtypes of the embeddings in the memory scaling")
    parser.add_argument("--scale-tf32", action="store_true",
                        help="TF32 matrix products in the memory scaling (same memory, faster)")
    parser.add_argument("--siglip-sizes", type=int, nargs="*", default=[],
                        help="N for the SigLIP rows (none: skip)")
    parser.add_argument("--siglip-d", type=int, default=512)
    parser.add_argument("--siglip-methods", nargs="+", default=SIGLIP_METHODS,
                        choices=SIGLIP_METHODS)
    parser.add_argument("--siglip-memory-only", action="store_true",
                        help="measure the memory of the SigLIP rows, not their time")
    parser.add_argument("--d", type=int, default=128)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads (1 by default: steadier on a busy machine)")
    parser.add_argument("--min-run-time", type=float, default=2.0)
    parser.add_argument("--mem-limit-gib", type=float, default=None,
                        help="skip methods estimated to need more (default: 60%% of RAM)")
    parser.add_argument("--in-process", action="store_true",
                        help="measure in this process, not one process per measurement")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="stop before the next measurement once this many seconds passed")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--skip-mi", action="store_true")
    parser.add_argument("--replot", action="store_true",
                        help="redraw the plot and tables from the output folder's "
                        "contrastive.json only")
    add_output_arguments(parser)
    parser.add_argument("--child-memory", nargs=2, metavar=("METHOD", "N"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--child-time", nargs=2, metavar=("METHODS", "N"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--tf32", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    refuse_smoke_record(parser, args)
    torch.set_num_threads(args.threads)

    if args.child_memory:
        method, n = args.child_memory
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        print(json.dumps(child_memory(method, int(n), args.d, args.device,
                                      getattr(torch, args.dtype))))
        return
    if args.child_time:
        methods, n = args.child_time
        print(json.dumps(child_time(methods.split(","), int(n), args.d, args.device,
                                    args.min_run_time)))
        return

    out = output_dir(args)
    if args.replot:
        result = json.loads((out / "contrastive.json").read_text())
        print(_report(result, out, refresh_docs=args.record))
        return

    sizes, nt_sizes, d = args.sizes, args.ntxent_sizes, args.d
    if args.large:
        sizes = [*sizes, 65536]
    siglip_sizes, siglip_d = args.siglip_sizes, args.siglip_d
    if args.smoke:
        sizes, nt_sizes, d, args.min_run_time = [128], [32], 16, 0.05
        siglip_sizes, siglip_d = ([128] if siglip_sizes else []), 16
    if args.mem_limit_gib is not None:
        mem_limit = args.mem_limit_gib * 2**30
    elif args.device == "cuda":
        mem_limit = 0.8 * torch.cuda.get_device_properties(0).total_memory
    else:
        mem_limit = 0.6 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    out.mkdir(parents=True, exist_ok=True)
    budget = Budget(args.budget_s)

    started = run_record(command_line("contrastive.py", argv))
    result = {"run": finish_record(started),
              "machine": {**machine({name: name for name in ("info_nce",
                                                              "pytorch_metric_learning")},
                                    device=args.device), "device": args.device},
              "temperature": TAU, "tile": TILE, "in_process": args.in_process,
              "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
              "rows": []}

    def save(row: dict | None = None) -> None:
        result["stopped"] = budget.stopped
        result["run"] = finish_record(started)
        write_atomic(out / "contrastive.json", json.dumps(result, indent=1))
        _report(result, out, refresh_docs=False, plot=False)

    save()
    for methods, ns in ((args.methods, sizes), (NTXENT_METHODS, nt_sizes)):
        run_workload(methods, ns, d, args.device, args.min_run_time, mem_limit, args.threads,
                     args.in_process, budget, rows=result["rows"], on_row=save)
    if siglip_sizes:
        siglip_rows: list[dict] = []
        run_workload(args.siglip_methods, siglip_sizes, siglip_d, args.device,
                     args.min_run_time, mem_limit, args.threads, args.in_process, budget,
                     rows=siglip_rows, time_it=not args.siglip_memory_only,
                     on_row=lambda row: (result["rows"].append(
                         {**row, "untimed": args.siglip_memory_only}), save()))
    if args.scale_sizes:
        run_scale(args.scale_methods, args.scale_sizes, args.scale_d, args.device,
                  args.threads, tuple(args.scale_dtypes), args.in_process, args.scale_tf32,
                  budget, rows=result.setdefault("scale", []), on_row=save)
    if not args.skip_mi:
        result["mutual_information"] = mi_part(out, args.smoke)
    save()
    print(_report(result, out, refresh_docs=args.record))
    wrote(out, ["contrastive.json (the record)", "contrastive_table.md",
                "contrastive_memory.png", *([] if args.skip_mi else ["contrastive_mi.png"])])


if __name__ == "__main__":
    main()

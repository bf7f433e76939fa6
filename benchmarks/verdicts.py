"""How strong the win / tie / loss verdicts of the compare_ce records are.

The training benchmark (`compare_ce.py`) calls a paired difference a win or a loss when
the percentile bootstrap interval of its mean over seeds excludes 0. This script reads the
five records under `docs/benchmarks/` (no training) and asks the same differences three
stricter questions:

- a paired Student-t 95% interval (n - 1 degrees of freedom);
- for the tabular datasets, whose seeds re-split one dataset (60% train, 20% test, so the
  test sets overlap), the corrected resampled t of Nadeau and Bengio (2003), which scales
  the variance of the mean by `1/n + n_test/n_train` instead of `1/n`;
- Holm's correction of the paired t p-values over each table of comparisons.

It also measures the bootstrap rule itself: how often it calls a win or a loss on
simulated differences with no true effect (normal, mean 0), for 2, 5 and 10 seeds.

    python benchmarks/verdicts.py
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
RECORDS = ("compare_ce", "compare_ce_segmentation", "compare_ce_multilabel",
           "compare_ce_pretraining", "compare_ce_g2p")
RESPLIT = {"compare_ce": 0.2 / 0.6}  # records whose seeds re-split one dataset: n_test/n_train
SEEDS = (2, 5, 10)


def comparisons(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict]]:
    """Every paired comparison of a record (a dict with `diffs` and `verdict`), with its
    path of keys."""
    if isinstance(node, dict):
        if "diffs" in node and "verdict" in node:
            yield path, node
            return
        for key, value in node.items():
            yield from comparisons(value, (*path, str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from comparisons(value, (*path, str(i)))


def _table(record: str, path: tuple[str, ...]) -> str:
    """The table a comparison belongs to, for Holm's correction: per record, and for the
    tabular record per baseline (cross-entropy, or it with a tuned threshold)."""
    if record == "compare_ce":
        return f"{record}:{'ce_thr' if 'ce_thr' in path else 'ce'}"
    return record


def t_test(diffs: list[float], correction: float = 0.0) -> tuple[float, float, float]:
    """The 95% interval of the mean difference and the two-sided p-value of a paired
    t-test, the variance of the mean scaled by `1/n + correction`."""
    from scipy import stats

    d = np.asarray(diffs, dtype=np.float64)
    n = len(d)
    if n < 2:
        return -math.inf, math.inf, 1.0
    scale = math.sqrt(d.var(ddof=1) * (1.0 / n + correction))
    if scale == 0.0:
        mean = float(d.mean())
        return mean, mean, 1.0 if mean == 0.0 else 0.0
    half = stats.t.ppf(0.975, n - 1) * scale
    p = 2.0 * stats.t.sf(abs(d.mean()) / scale, n - 1)
    return float(d.mean() - half), float(d.mean() + half), float(p)


def holm(p_values: list[float], alpha: float = 0.05) -> list[bool]:
    """Holm's step-down rejections at family-wise level `alpha`."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    rejected = [False] * len(p_values)
    for rank, i in enumerate(order):
        if p_values[i] > alpha / (len(p_values) - rank):
            break
        rejected[i] = True
    return rejected


def bootstrap_false_rate(n: int, *, trials: int = 4000, resamples: int = 2000,
                         seed: int = 0) -> float:
    """How often the benchmark's rule (a percentile bootstrap interval of the mean that
    excludes 0) calls a win or a loss on `n` normal differences of mean 0. One set of
    `resamples` draws of seeds serves every trial: a resample's mean is then a weighted
    mean, the weights the draw's counts over `n`."""
    rng = np.random.default_rng(seed)
    d = rng.standard_normal((trials, n))
    draws = rng.integers(0, n, size=(resamples, n))
    weights = np.stack([np.bincount(row, minlength=n) for row in draws]) / n
    boot = d @ weights.T  # trials x resamples
    lo, hi = np.quantile(boot, [0.025, 0.975], axis=1)
    return float(np.mean((lo > 0) | (hi < 0)))


def summary(docs: Path = DOCS) -> dict[str, Any]:
    """The counts of the five records and the simulated rates of the bootstrap rule."""
    rows = []
    for record in RECORDS:
        data = json.loads((docs / f"{record}.json").read_text())
        for path, c in comparisons(data):
            lo, hi, p = t_test(c["diffs"])
            row = {"record": record, "path": "/".join(path), "table": _table(record, path),
                   "bootstrap": c["verdict"] != "tie", "t": lo > 0 or hi < 0, "p": p}
            if record in RESPLIT:
                clo, chi, _ = t_test(c["diffs"], RESPLIT[record])
                row["corrected"] = clo > 0 or chi < 0
            rows.append(row)
    for table in {r["table"] for r in rows}:
        members = [r for r in rows if r["table"] == table]
        for r, keep in zip(members, holm([r["p"] for r in members]), strict=True):
            r["holm"] = keep
    tabular = [r for r in rows if r["record"] in RESPLIT]
    return {
        "comparisons": len(rows),
        "bootstrap_decided": sum(r["bootstrap"] for r in rows),
        "t_decided": sum(r["t"] and r["bootstrap"] for r in rows),
        "t_only": sum(r["t"] and not r["bootstrap"] for r in rows),
        "holm_decided": sum(r["holm"] for r in rows),
        "tabular": len(tabular),
        "tabular_bootstrap_decided": sum(r["bootstrap"] for r in tabular),
        "tabular_corrected_decided": sum(r["corrected"] for r in tabular),
        "false_rates": {n: bootstrap_false_rate(n) for n in SEEDS},
        "rows": rows,
    }


def main() -> None:
    s = summary()
    print(f"{s['comparisons']} paired comparisons in the five records; the bootstrap rule "
          f"calls {s['bootstrap_decided']} of them a win or a loss")
    print(f"  a paired t 95% interval agrees on {s['t_decided']} "
          f"(and decides {s['t_only']} that the bootstrap called ties)")
    print(f"  Holm's correction over each table keeps {s['holm_decided']}")
    print(f"  tabular datasets: {s['tabular_bootstrap_decided']} of {s['tabular']} decided by "
          f"the bootstrap, {s['tabular_corrected_decided']} by the corrected resampled t")
    for n, rate in s["false_rates"].items():
        print(f"  no true effect, {n} seeds: the bootstrap rule decides {rate:.1%} "
              f"(a 95% interval: 5%)")


if __name__ == "__main__":
    main()

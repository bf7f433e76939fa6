"""How the compare_ce records decide a win or a loss, how often that rule errs, and what
it decides in the recorded runs.

The rule (`_common.paired`, `_common.holm`): a paired Student-t 95% interval of the mean
difference over seeds (n - 1 degrees of freedom). Where the seeds re-split one pool of
data 60/20/20, so that the training sets of two seeds overlap, the variance of the mean
is the corrected resampled t's `var * (1/n + n_test/n_train)` (Nadeau and Bengio, 2003).
A win: the interval lies above 0; a loss: below 0; a tie otherwise. Holm's step-down
correction over each table (the comparisons against one baseline) says which verdicts
also hold at a family-wise level of 5%.

This script reads the five records under `docs/benchmarks/` (no training) and prints, per
record, how many comparisons the rule decides and how many hold under Holm. It also
measures on simulated differences with no true effect how often a rule calls a win or a
loss: the t rule with normal, heavy-tailed (Student t, 3 degrees of freedom) and skewed
(centred exponential) differences, and, for comparison, a percentile bootstrap interval
of the mean, which is too narrow with few seeds.

    python benchmarks/verdicts.py               # the counts and the simulated rates
    python benchmarks/verdicts.py --rederive    # the current rule on the recorded runs
    python benchmarks/verdicts.py --rederive compare_ce_g2p   # on some of them

`--rederive` recomputes every comparison of the five records from their per-seed values
(nothing is trained), rewrites the records, their Markdown and the page's generated
blocks, and says so in each block's first line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DOCS, comparisons, git_commit, paired

RECORDS = ("compare_ce", "compare_ce_segmentation", "compare_ce_multilabel",
           "compare_ce_pretraining", "compare_ce_g2p")
SEEDS = (2, 5, 10)
COMMAND = "python benchmarks/verdicts.py --rederive"


def _false_rate(draw: Callable[[np.random.Generator, int, int], np.ndarray], n: int,
                trials: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    d = draw(rng, trials, n)
    return float(np.mean([paired(row, np.zeros(n), baseline="-")["verdict"] != "tie"
                          for row in d]))


DIFFERENCES: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "normal": lambda rng, t, n: rng.standard_normal((t, n)),
    "heavy-tailed": lambda rng, t, n: rng.standard_t(3, size=(t, n)),
    "skewed": lambda rng, t, n: rng.exponential(size=(t, n)) - 1.0,
}


def t_false_rates(n: int, *, trials: int = 4000, seed: int = 0) -> dict[str, float]:
    """How often the t rule calls a win or a loss on `n` differences of mean 0, for each
    shape of `DIFFERENCES`."""
    return {name: _false_rate(draw, n, trials, seed) for name, draw in DIFFERENCES.items()}


def bootstrap_false_rate(n: int, *, trials: int = 4000, resamples: int = 2000,
                         seed: int = 0) -> float:
    """How often a percentile bootstrap 95% interval of the mean excludes 0 on `n` normal
    differences of mean 0. One set of `resamples` draws of seeds serves every trial: a
    resample's mean is then a weighted mean, the weights the draw's counts over `n`."""
    rng = np.random.default_rng(seed)
    d = rng.standard_normal((trials, n))
    draws = rng.integers(0, n, size=(resamples, n))
    weights = np.stack([np.bincount(row, minlength=n) for row in draws]) / n
    boot = d @ weights.T  # trials x resamples
    lo, hi = np.quantile(boot, [0.025, 0.975], axis=1)
    return float(np.mean((lo > 0) | (hi < 0)))


def summary(docs: Path = DOCS) -> dict[str, Any]:
    """Per record: its comparisons, how many the rule decides and how many hold under
    Holm; and the simulated rates of the t rule and of a percentile bootstrap."""
    records = {}
    for name in RECORDS:
        rows = [c for _, c in comparisons(json.loads((docs / f"{name}.json").read_text()))]
        records[name] = {"comparisons": len(rows),
                         "decided": sum(c["verdict"] != "tie" for c in rows),
                         "holm": sum(bool(c.get("holm")) for c in rows)}
    return {"records": records,
            "comparisons": sum(r["comparisons"] for r in records.values()),
            "decided": sum(r["decided"] for r in records.values()),
            "holm": sum(r["holm"] for r in records.values()),
            "t_false_rates": {n: t_false_rates(n) for n in SEEDS},
            "bootstrap_false_rates": {n: bootstrap_false_rate(n) for n in SEEDS}}


def rederive(docs: Path = DOCS, names: Sequence[str] = RECORDS) -> list[str]:
    """Apply the current rule to the recorded runs: recompute each record's comparisons
    from its per-seed values, note it in the record's `run`, and rewrite the record, its
    Markdown and (for the records under `DOCS`) the page's blocks. Returns what changed."""
    import _tasks
    import compare_ce as cc

    code = git_commit()
    command = " ".join([COMMAND, *([] if list(names) == list(RECORDS) else names)])
    again = {"command": command, "commit": code["commit"], "dirty": code["dirty"],
             "date": time.strftime("%Y-%m-%d")}
    written = []
    for name in names:
        record = json.loads((docs / f"{name}.json").read_text())
        record["run"]["verdicts"] = again
        if name == "compare_ce":
            cc.compare_datasets(record["datasets"])
            written += cc.write_tabular(record, docs, docs == DOCS)
        else:
            task = _tasks.load(name.removeprefix("compare_ce_"))
            record["comparisons"] = task.compare(record)
            written += cc.write_task(task, record, docs, docs == DOCS)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rederive", nargs="*", metavar="RECORD", choices=RECORDS,
                   help="apply the current rule to these records (all five when none is "
                        "named) and rewrite them")
    args = p.parse_args(argv)
    if args.rederive is not None:
        for line in rederive(names=args.rederive or RECORDS):
            print(f"wrote {line}")
        return
    s = summary()
    print(f"{s['comparisons']} paired comparisons in the five records: the t rule decides "
          f"{s['decided']}, of which {s['holm']} hold under Holm's correction per table")
    for name, r in s["records"].items():
        print(f"  {name}: {r['comparisons']} comparisons, {r['decided']} decided, "
              f"{r['holm']} under Holm")
    print("No true effect: how often a rule calls a win or a loss (a 95% interval: 5%)")
    for n in SEEDS:
        t = ", ".join(f"{k} {v:.1%}" for k, v in s["t_false_rates"][n].items())
        print(f"  {n} seeds: the t rule {t}; a percentile bootstrap (normal) "
              f"{s['bootstrap_false_rates'][n]:.1%}")


if __name__ == "__main__":
    main()

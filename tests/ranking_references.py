"""Independent references for the ranking family: numpy formulas and explicit loops.

None of these share code with `softmetrics.functional.ranking`.
"""

from __future__ import annotations

import numpy as np


def calibrated_ap_reference(scores: np.ndarray, target: np.ndarray) -> float:
    """Calibrated AP of TVSeries (De Geest et al. 2016), as the formula of REFERENCES.md.

    Sort by decreasing score, `tps = cumsum(y)`, `fps = cumsum(1 - y)`, `w = |N| / |P|`,
    `cprec = tps / (tps + fps / w)`, `cap = sum(cprec[y == 1]) / sum(y)`. Defined for
    columns with at least one positive and one negative; tied scores are taken in the
    order of a stable sort, so the value is only meaningful for distinct scores.
    """
    scores = np.asarray(scores, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    y = y[order]
    tps = np.cumsum(y)
    fps = np.cumsum(1 - y)
    w = (len(y) - y.sum()) / y.sum()
    cprec = tps / (tps + fps / w)
    return float(np.sum(cprec * y) / np.sum(y))


def _step(d: float) -> float:
    return 1.0 if d > 0 else (0.5 if d == 0 else 0.0)


def pairwise_auroc_loop(scores, target) -> float:
    """Mean over (positive, negative) pairs of step(s_i - s_j), step(0) = 1/2: a double loop."""
    pos = [s for s, y in zip(scores, target, strict=True) if y == 1]
    neg = [s for s, y in zip(scores, target, strict=True) if y == 0]
    total = sum(_step(p - n) for p in pos for n in neg)
    return total / (len(pos) * len(neg))


def pairwise_ap_loop(scores, target, *, calibrated: bool = False) -> float:
    """AP (or cAP) with the library's tie rule, by explicit loops over pairs.

    For each positive i: F_i = sum over negatives j of step(s_j - s_i) (ties count 1/2);
    positives are taken in decreasing score order (any order among tied positives) and
    the t-th gets precision t / (t + F_i) (cAP: t / (t + F_i |P| / |N|)).
    """
    pos = sorted((s for s, y in zip(scores, target, strict=True) if y == 1), reverse=True)
    neg = [s for s, y in zip(scores, target, strict=True) if y == 0]
    scale = len(pos) / len(neg) if (calibrated and neg) else 1.0
    total = 0.0
    for t, s_i in enumerate(pos, start=1):
        f_i = sum(_step(s_j - s_i) for s_j in neg)
        total += t / (t + f_i * scale)
    return total / len(pos)


def column_average(values: list[float], defined: list[bool], weights: list[float],
                   average: str) -> float | np.ndarray:
    """Average per-column values over the defined columns, as documented by the library."""
    values_a = np.asarray(values, dtype=np.float64)
    mask = np.asarray(defined, dtype=bool)
    if average == "none":
        return np.where(mask, values_a, 0.0)
    w = mask.astype(np.float64)
    if average == "weighted":
        w = w * np.asarray(weights, dtype=np.float64)
    if w.sum() == 0:
        return 0.0
    return float((w * np.where(mask, values_a, 0.0)).sum() / w.sum())

"""Independent references for the retrieval metrics: textbook definitions per query, by
explicit loops, and the mean over every order of tied items by enumeration.

None of these share code with `softmetrics.functional.retrieval`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence


def ranking_metric(name: str, order: Sequence[int], rel: Sequence[float], k: int | None
                   ) -> float:
    """The metric of one ranking `order` (item indices, best first) of relevances `rel`."""
    ranked = [rel[i] for i in order]
    cut = len(ranked) if k is None else k
    relevant = sum(1 for r in rel if r > 0)
    if name == "recall":
        return sum(1 for r in ranked[:cut] if r > 0) / relevant
    if name == "precision":
        return sum(1 for r in ranked[:cut] if r > 0) / cut
    if name == "rr":
        first = next(p for p, r in enumerate(ranked, start=1) if r > 0)
        return 1.0 / first if first <= cut else 0.0
    if name == "ndcg":
        dcg = sum(r / math.log2(p + 1) for p, r in enumerate(ranked[:cut], start=1))
        ideal = sorted(rel, reverse=True)[:cut]
        return dcg / sum(r / math.log2(p + 1) for p, r in enumerate(ideal, start=1))
    if name == "ap":
        hits, total = 0, 0.0
        for p, r in enumerate(ranked, start=1):
            if r > 0:
                hits += 1
                total += hits / p
        return total / relevant
    raise ValueError(name)


def textbook(name: str, scores: Sequence[float], rel: Sequence[float], k: int | None
             ) -> float:
    """The metric of the ranking by decreasing score (distinct scores)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    return ranking_metric(name, order, rel, k)


def mean_over_tie_orders(name: str, scores: Sequence[float], rel: Sequence[float],
                         k: int | None) -> float:
    """The metric averaged over every ranking consistent with the scores (every order of
    the tied items), by enumerating the permutations: small galleries only."""
    values = [ranking_metric(name, order, rel, k)
              for order in itertools.permutations(range(len(scores)))
              if all(scores[a] >= scores[b] for a, b in itertools.pairwise(order))]
    return sum(values) / len(values)


def per_row(fn: Callable[[Sequence[float], Sequence[float]], float], scores, rel
            ) -> list[float]:
    """`fn` of each row, 0 for rows without a relevant item (the library's "none")."""
    return [fn(s, r) if any(x > 0 for x in r) else 0.0
            for s, r in zip(scores, rel, strict=True)]

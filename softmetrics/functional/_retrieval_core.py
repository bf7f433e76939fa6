"""Machinery of the retrieval metrics: checks, the per-item ranks of a (Q, G) score matrix
(exact, with ties averaged, or soft and tiled) and the per-query formulas.

Each query (row) ranks its gallery (columns). The soft rank of an item is the pairwise
relaxation of the ranking family (`NegativesAbove` of `_ranking_tiles`, tiled over the
gallery), the exact one comes from one sort per row; the formulas of NDCG, recall,
precision, reciprocal rank and AP are written once over them, and the public functions
of `functional/retrieval.py` and the Modules reduce their per-query values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import (
    DataChecks,
    check_floating,
    check_held,
    check_index_tensor,
    check_int,
    check_ndim,
    check_option,
    check_same_device,
    check_same_shape,
    check_temperature,
    checks_data,
    fail,
)
from .._options import REDUCTIONS
from .._relax import (
    bounded,
    compute_dtype,
    is_hard,
    running_sums,
    soft_step,
    sum_dtype,
    tie_averaged,
)
from ._ranking_core import column_stats, negatives_above, negatives_above_exact

__all__ = [
    "GAINS",
    "Gain",
    "Metric",
    "PerQuery",
    "check_retrieval_options",
    "per_query",
    "reduce_metric",
]

Metric = Literal["ndcg", "recall", "precision", "rr", "ap"]
Gain = Literal["linear", "exponential"]
GAINS: tuple[Gain, ...] = ("linear", "exponential")


class PerQuery(NamedTuple):
    """The metric of each query and whether it is defined (the query has a relevant,
    not ignored item), each (Q,); 0 where undefined."""

    value: Tensor
    defined: Tensor


# ---------------------------------------------------------------------------------------
# options and inputs


def check_retrieval_options(fn: str, *, temperature: float | Tensor, k: int | None,
                            ignore_index: int | None, chunk_size: int | None,
                            reduction: str, cutoff_temperature: float | None = None,
                            gain: str | None = None) -> None:
    """Validate the options of every retrieval function (no tensor data read). Modules
    call this once in `__init__`; the functions on every call."""
    check_temperature(fn, temperature)
    if cutoff_temperature is not None:
        check_temperature(fn, cutoff_temperature, arg="cutoff_temperature")
    if k is not None:
        check_int(fn, "k", k, low=1)
    if ignore_index is not None:
        check_int(fn, "ignore_index", ignore_index)
    if chunk_size is not None:
        check_int(fn, "chunk_size", chunk_size, low=1)
    check_option(fn, "reduction", reduction, REDUCTIONS)
    if gain is not None:
        check_option(fn, "gain", gain, GAINS)


def _check_data(fn: str, scores: Tensor, target: Tensor, rel: Tensor, graded: bool,
                ignore_index: int | None, temperatures: dict[str, float | Tensor | None]
                ) -> None:
    """The value checks of `_format`, on the scores and relevance it made (ignored
    entries 0 in both): finite scores; 0/1 relevance, or finite non-negative grades;
    tensor `temperatures` (by argument name) > 0."""
    checks = DataChecks()
    checks.finite(fn, "input", scores)
    if not graded:
        checks.values_in(fn, "target", target, 0, 2, ignore=ignore_index,
                         masked=None if target.is_floating_point() else rel)
    else:
        if target.is_floating_point():
            checks.finite(fn, "target", rel)

        def non_negative() -> None:
            grades = target if ignore_index is None else target[target != ignore_index]
            if bool((grades < 0).any()):
                fail(fn, "target", "non-negative relevance grades"
                     + ("" if ignore_index is None else f" or {ignore_index} (ignore_index)"),
                     f"a value {grades[grades < 0][0].item()!r}", raw=True)

        if rel.numel():
            checks.add(rel.amin() >= 0, non_negative)
    for arg, temperature in temperatures.items():
        if temperature is not None:
            checks.temperature(fn, arg, temperature)
    checks.settle()


def _format(fn: str, input: Tensor, target: Tensor, *, graded: bool,
            ignore_index: int | None, validate_args: bool,
            temperatures: dict[str, float | Tensor | None]) -> tuple[Tensor, Tensor, Tensor]:
    """Check shapes, dtypes and (under `checks_data`) values; return `(scores, rel, keep)`,
    each (Q, G): scores in the compute dtype, relevance and the kept mask in the count
    dtype (ignored entries have relevance 0 and keep 0). An ignored entry is padding: its
    score is neither checked nor read (it becomes 0), so `-inf` or NaN may fill it."""
    check_floating(fn, "input", input, "the (Q, G) scores of the gallery for each query")
    check_ndim(fn, "input", input, 2, "a 2-D tensor (Q, G): queries x gallery items")
    check_index_tensor(fn, "target", target, allow_bool=True, allow_float=True)
    check_same_shape(fn, "target", target, tuple(input.shape), "the shape of `input`")
    check_same_device(fn, ("input", input), ("target", target))
    if ignore_index is not None:
        check_held(fn, "ignore_index", ignore_index, "target", target)
    kept = None if ignore_index is None else target != ignore_index
    count = sum_dtype(input.device)
    scores = input.to(compute_dtype(input.dtype)).contiguous()
    rel = target.to(count)
    if kept is None:
        keep = torch.ones_like(rel)
    else:
        keep = kept.to(count)
        rel = rel * keep
        scores = torch.where(kept, scores, 0.0)
    if checks_data(validate_args):  # one host synchronisation for all the checks
        _check_data(fn, scores, target, rel, graded, ignore_index, temperatures)
    return scores, rel, keep


# ---------------------------------------------------------------------------------------
# ranks


def _level_rank(scores: Tensor, level: Tensor) -> Tensor:
    """1-based rank of each item among the items of its row with the same `level`, by
    decreasing score (tied scores in column order). Reads only the order (no gradient)."""
    q, g = scores.shape
    order = scores.detach().argsort(dim=-1, descending=True, stable=True)
    order = order.gather(-1, level.gather(-1, order).argsort(dim=-1, stable=True))
    sorted_level = level.gather(-1, order).contiguous()
    first = torch.searchsorted(sorted_level, sorted_level, right=False)
    within = torch.arange(1, g + 1, device=scores.device).expand(q, g) - first
    return torch.empty_like(within).scatter_(-1, order, within).to(level.dtype)


def _exact_counts(scores: Tensor, keep: Tensor) -> tuple[Tensor, Tensor]:
    """Per item: the kept items of its row scored strictly above it and those tied with it
    (itself included when kept), by one sort per row."""
    above, ties = negatives_above_exact(scores, keep, keep.dtype)
    return above - 0.5 * ties, ties


def _soft_ranks(scores: Tensor, rel: Tensor, keep: Tensor, relevant: Tensor, graded: bool,
                temperature: float | Tensor, chunk_size: int | None) -> Tensor:
    """The soft 1-based rank of every relevant item: 1 + the exact number of items of the
    same relevance above it + the soft number of kept items of another relevance above it
    (`sigmoid((s_j - s_i) / tau)` each, tiled). Entries of non-relevant items are
    meaningless (binary targets count only the non-relevant items above): `relevant`
    (0/1, the kept relevant items) marks the ranks that are read, whose rows alone the
    tiles need."""
    level = torch.where(keep > 0, rel, torch.full_like(rel, -1.0))  # ignored: a level apart
    same = _level_rank(scores, level)
    weight = (keep if graded else (1 - rel) * keep).to(scores.dtype)
    other, _ = negatives_above(scores, weight, temperature, chunk_size, rel.dtype,
                               level if graded else None, pos=relevant)
    return same + other


# ---------------------------------------------------------------------------------------
# formulas


def _cutoff(k: int | None) -> Callable[[Tensor], Tensor]:
    """`C(n) = min(n, k)`: the cumulative top-k indicator (all positions when k is None)."""
    return (lambda n: n) if k is None else (lambda n: n.clamp(max=k))


def _discount_sum(k: int | None, size: int, like: Tensor) -> Callable[[Tensor], Tensor]:
    """`C(n) = sum_{p <= min(n, k)} 1 / log2(p + 1)` for integer counts `n` in [0, size]."""
    p = torch.arange(1, size + 1, dtype=like.dtype, device=like.device)
    disc = 1.0 / torch.log2(p + 1)
    if k is not None:
        disc = disc * (p <= k).to(like.dtype)
    table = torch.cat([disc.new_zeros(1), running_sums(disc)])
    return lambda n: table[n.round().long()]


def _ideal_dcg(gain: Tensor, k: int | None) -> Tensor:
    """DCG@k of each row's gains in decreasing order (the ideal ranking), (Q,)."""
    g = gain.shape[-1]
    ideal = gain.sort(dim=-1, descending=True).values
    p = torch.arange(1, g + 1, dtype=gain.dtype, device=gain.device)
    disc = 1.0 / torch.log2(p + 1)
    if k is not None:
        disc = disc * (p <= k).to(gain.dtype)
    return (ideal * disc).sum(-1)


def _safe(den: Tensor) -> Tensor:
    """A denominator with its zeros (rows that are then undefined) replaced by 1."""
    return torch.where(den > 0, den, torch.ones_like(den))


def _over_k_or_relevant(hits: Tensor, metric: str, k: int | None, n_rel: Tensor) -> Tensor:
    """Recall (`hits / |P|`) or precision (`hits / k`, at most 1: the soft top k can hold
    the mass of more than k relevant items, never the exact one)."""
    if metric == "recall":
        return hits / n_rel.clamp_min(1)
    return bounded(hits / float(k or 1), high=1.0)


def _hard_reciprocal_rank(scores: Tensor, rel: Tensor, keep: Tensor, k: int | None
                          ) -> Tensor:
    """Reciprocal rank of the first relevant item, averaged over every order of tied
    items: with `g` kept items above the best relevant score, `t` kept items at it and `r`
    of them relevant, the first relevant item sits at `g + x` with probability
    `C(t - x, r - 1) / C(t, r)`, x = 1..t - r + 1."""
    m = scores.shape[-1]
    dtype = rel.dtype
    s = scores.to(dtype)
    best = torch.where(rel > 0, s, torch.full_like(s, float("-inf")))
    best = F.pad(best, (0, 1), value=float("-inf")).amax(-1, keepdim=True)  # G may be 0
    g = (keep * (s > best).to(dtype)).sum(-1, keepdim=True)
    tied = (s == best).to(dtype)
    t = (keep * tied).sum(-1, keepdim=True).clamp_min(1)
    r = (rel.clamp(max=1) * tied).sum(-1, keepdim=True).clamp(1, None)
    r = torch.minimum(r, t)
    x = torch.arange(1, m + 1, dtype=dtype, device=scores.device)
    valid = x <= t - r + 1
    rest = torch.where(valid, t - x, torch.zeros_like(x))  # t - x >= r - 1 where valid
    log_p = (torch.lgamma(rest + 1) - torch.lgamma(r) - torch.lgamma(rest - r + 2)
             - torch.lgamma(t + 1) + torch.lgamma(r + 1) + torch.lgamma(t - r + 1))
    position = g + x
    value = 1.0 / position
    if k is not None:
        value = value * (position <= k).to(dtype)
    return torch.where(valid, log_p.exp() * value, torch.zeros_like(value)).sum(-1)


def per_query(metric: Metric, input: Tensor, target: Tensor, *, fn: str,
              temperature: float | Tensor, k: int | None, ignore_index: int | None,
              chunk_size: int | None, validate_args: bool,
              cutoff_temperature: float | Tensor | None = None, gain: str = "linear"
              ) -> tuple[PerQuery, torch.dtype]:
    """The metric of every query, exact at temperature 0 (ties averaged over orders; AP:
    the ranking family's rule), else soft; and the dtype to return it in."""
    graded = metric == "ndcg"
    scores, rel, keep = _format(fn, input, target, graded=graded, ignore_index=ignore_index,
                                validate_args=validate_args,
                                temperatures={"temperature": temperature,
                                              "cutoff_temperature": cutoff_temperature})
    out_dtype = scores.dtype
    relevant = (rel > 0).to(rel.dtype) * keep
    n_rel = relevant.sum(-1)
    defined = n_rel > 0
    hard = is_hard(temperature)
    if metric == "ap":
        stats = column_stats("ap", scores, relevant.to(scores.dtype),
                             ((1 - relevant) * keep).to(scores.dtype), temperature, chunk_size)
        value = stats.num / stats.den.clamp_min(1)
    elif metric == "rr" and hard:
        value = _hard_reciprocal_rank(scores, rel, keep, k)
    elif hard:
        above, ties = _exact_counts(scores, keep)
        if metric == "ndcg":
            weight = _gains(rel, gain)
            share = tie_averaged(_discount_sum(k, scores.shape[-1], rel), above, ties)
            value = (weight * share).sum(-1) / _safe(_ideal_dcg(weight, k))
        else:
            hits = (relevant * tie_averaged(_cutoff(k), above, ties)).sum(-1)
            value = _over_k_or_relevant(hits, metric, k, n_rel)
    else:
        rank = _soft_ranks(scores, rel, keep, relevant, graded, temperature, chunk_size)
        tau = temperature if cutoff_temperature is None else cutoff_temperature
        if metric == "rr":  # the best relevant item: 1 + the soft count of others above
            rank = torch.where(relevant > 0, rank, torch.full_like(rank, float("inf")))
            rank = F.pad(rank, (0, 1), value=float("inf")).amin(-1)  # G may be 0
            rank = torch.where(defined, rank, torch.ones_like(rank))
        cut = torch.ones_like(rank) if k is None else soft_step(k + 0.5 - rank, tau)
        if metric == "rr":
            value = cut / rank
        elif metric == "ndcg":  # at most 1: soft ranks and a soft cut can give more items
            # high positions than an order can (precision@k's cap), never the exact ones
            weight = _gains(rel, gain)
            dcg = (weight * cut / torch.log2(rank + 1)).sum(-1)
            value = bounded(dcg / _safe(_ideal_dcg(weight, k)), high=1.0)
        else:
            hits = (relevant * cut).sum(-1)
            value = _over_k_or_relevant(hits, metric, k, n_rel)
    if hard:  # a NaN score leaves its row no order: NaN, not a value from failed comparisons
        unordered = scores.isnan().any(-1)  # ignored scores are 0
        value = torch.where(unordered, torch.full_like(value, float("nan")), value)
    return PerQuery(torch.where(defined, value, torch.zeros_like(value)), defined), out_dtype


def _gains(rel: Tensor, gain: str) -> Tensor:
    """NDCG's gain of each relevance: the relevance itself ("linear", scikit-learn's) or
    `2^rel - 1` ("exponential")."""
    return rel if gain == "linear" else torch.exp2(rel) - 1


def reduce_metric(values: Tensor, defined: Tensor, reduction: str) -> Tensor:
    """"mean" over the defined queries (0 when none is), "sum" over them, or "none": the
    (Q,) values, 0 for undefined queries."""
    values = torch.where(defined, values, torch.zeros_like(values))
    if reduction == "none":
        return values
    total = values.sum()
    if reduction == "sum":
        return total
    return total / defined.sum().clamp_min(1).to(values.dtype)

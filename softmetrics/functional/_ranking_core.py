r"""The machinery of the ranking family, behind `softmetrics.functional.ranking`.

Option checks and formatting into columns of scores with positive and negative masks; the
statistic $F_i$ (the negatives ranked above each sample: exact by one sort, soft in tiles
by `_ranking_tiles`); the per-column sums (`ColumnStats`) and the formulas of AUROC (full
and partial), AP and calibrated AP over them; and `ranking_metric`, the one pipeline of
the three public functions and their Modules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from .. import _checks
from .._relax import compute_dtype, full_precision, is_hard, sum_dtype, temperature_scale
from ._ranking_tiles import negatives_above_tiles, positives_above_tiles, tile_rows

__all__ = [
    "ColumnStats",
    "Metric",
    "Positives",
    "StatsHook",
    "check_ranking_options",
    "column_stats",
    "negatives_above",
    "negatives_above_exact",
    "ranking_metric",
]

Metric = Literal["auroc", "ap", "cap"]


# ---------------------------------------------------------------------------------------
# options and inputs


def check_ranking_options(fn: str, *, task: str, num_classes: int | None, average: str,
                          temperature: float | Tensor, ignore_index: int | None,
                          chunk_size: int | None, max_fpr: float | None = None) -> None:
    """Validate the options shared by every ranking function (no tensor data read): those
    of classification (`_checks.check_task_options`), `chunk_size` and AUROC's `max_fpr`.

    Modules call this once in `__init__`; the functions call it on every call.
    """
    _checks.check_task_options(fn, task=task, num_classes=num_classes, average=average,
                               temperature=temperature, ignore_index=ignore_index)
    if chunk_size is not None:
        _checks.check_int(fn, "chunk_size", chunk_size, low=1)
    if max_fpr is not None:
        _checks.check_number(fn, "max_fpr", max_fpr, low=0.0, low_open=True, high=1.0)


class Positives(NamedTuple):
    """Entries `(cols[p], idx[p])` of the (K, M) columns that hold every positive, (P,)
    each (long). Multiclass targets have one per sample, at its class (an ignored sample's
    entry is at column 0 and is no positive); `micro` puts them in one row of K x M."""

    cols: Tensor
    idx: Tensor

    def pooled(self, m: int) -> Positives:
        """The same entries once the (K, M) columns are reshaped to one row."""
        return Positives(torch.zeros_like(self.cols), self.cols * m + self.idx)


def _format(fn: str, input: Tensor, target: Tensor, *, task: str, num_classes: int | None,
            ignore_index: int | None, validate_args: bool,
            temperature: float | Tensor) -> tuple[Tensor, Tensor, Tensor, Positives | None]:
    """Check shapes and dtypes; return `(scores, pos, neg, positives)`: the first three
    (K, M), one row per column, and the entries of the positives where they are known
    without reading the data (multiclass), else None.

    `scores` are in the compute dtype (multiclass: log-softmax probabilities); `pos` and
    `neg` are 0/1 masks of the positives and negatives of each column (ignored entries are
    0 in both).
    """
    _checks.check_task_inputs(fn, input, target, task=task, num_classes=num_classes,
                              ignore_index=ignore_index)
    if _checks.checks_data(validate_args):
        _checks.check_task_data(fn, input, target, task=task, num_classes=num_classes,
                                ignore_index=ignore_index, temperature=temperature)
    dtype = compute_dtype(input.dtype)
    if task == "multiclass":
        c = input.shape[1]
        z = torch.log_softmax(input.to(dtype), dim=1)
        scores = z.movedim(1, -1).reshape(-1, c).t()
        labels = target.reshape(1, -1)
        classes = torch.arange(c, device=target.device).unsqueeze(1)
        y = (labels == classes).to(dtype)
        keep = None if ignore_index is None else (labels != ignore_index).to(dtype)
        flat = labels.reshape(-1)
        cols = flat if ignore_index is None else flat.masked_fill(flat == ignore_index, 0)
        positives = Positives(cols.long(), torch.arange(flat.shape[0], device=flat.device))
    else:
        positives = None
        if task == "multilabel":
            c = input.shape[1]
            scores = input.to(dtype).movedim(1, -1).reshape(-1, c).t()
            labels = target.movedim(1, -1).reshape(-1, c).t()
        else:
            scores = input.to(dtype).reshape(1, -1)
            labels = target.reshape(1, -1)
        y = (labels == 1).to(dtype)
        keep = None if ignore_index is None else (labels != ignore_index).to(dtype)
    pos = y if keep is None else y * keep
    neg = 1 - y if keep is None else (1 - y) * keep
    return scores.contiguous(), pos.expand_as(scores), neg.expand_as(scores), positives


# ---------------------------------------------------------------------------------------
# statistics: negatives above each sample (hard: one sort; soft: tiled pairs)


def _positive_rank(scores: Tensor, pos: Tensor, count_dtype: torch.dtype) -> Tensor:
    """`k_i`: 1-based rank of each positive among the positives of its column (descending).

    Tied positives are ordered by position; non-positives get a meaningless value. Reads
    only the order of `scores` (no gradient).
    """
    order = scores.detach().argsort(dim=-1, stable=True)
    # `pos` is 0/1: an integer cumsum is exact, and deterministic on CUDA (a floating-point
    # one has no deterministic CUDA kernel)
    pos_sorted = pos.gather(-1, order).long()
    at_or_above = pos_sorted.flip(-1).cumsum(-1).flip(-1).to(count_dtype)
    return torch.empty_like(at_or_above).scatter_(-1, order, at_or_above)


def negatives_above_exact(scores: Tensor, neg: Tensor,
                           count_dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """`F_i = sum_j neg_j step(s_j - s_i)` with `step(0) = 1/2`, by sorting: O(M log M).

    Also returns the number of negatives tied with each sample (exactly equal scores).
    """
    sorted_scores, order = scores.sort(dim=-1)
    # negatives at or below each sorted place, after a 0 (0/1: exact, deterministic);
    # padded out of place, which `torch.func.vmap` batches (a write into zeros it cannot)
    below = torch.nn.functional.pad(neg.gather(-1, order).long().cumsum(-1).to(count_dtype),
                                    (1, 0))
    left = torch.searchsorted(sorted_scores, scores, right=False)
    right = torch.searchsorted(sorted_scores, scores, right=True)
    total = below[:, -1:]
    at_left, at_right = below.gather(-1, left), below.gather(-1, right)
    return total - 0.5 * (at_left + at_right), at_right - at_left


def negatives_above(scores: Tensor, neg: Tensor, temperature: float | Tensor,
                    chunk_size: int | None, count_dtype: torch.dtype,
                    level: Tensor | None = None,
                    positives: Positives | None = None,
                    pos: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """The statistic `F_i` of every sample: exact at temperature 0, else soft and tiled.

    With it, at temperature 0, the number of negatives tied with each sample (the width of
    its tied block on the ROC curve); `None` at temperature > 0, where a comparison is
    never a tie but a sigmoid. `level` (temperature > 0 only) counts only the pairs whose
    levels differ (see `NegativesAbove`). `positives` (temperature > 0 only) lists every
    entry whose `F_i` is read: the others are left 0 (see `PositivesAbove`); `pos` marks
    them instead, where they are not listed (see `NegativesAbove`).
    """
    if is_hard(temperature):
        return negatives_above_exact(scores, neg, count_dtype)
    scale = temperature_scale(temperature)
    u = scores / (scale.to(scores.dtype) if isinstance(scale, Tensor) else scale)
    if positives is not None:
        k, m = scores.shape
        rows = tile_rows(1, m, chunk_size, scores.device)
        with full_precision(scores.device):
            listed = positives_above_tiles(u.contiguous(), neg.contiguous(),
                                            positives.cols, positives.idx, rows)
        above = listed.new_zeros(k, m).index_put((positives.cols, positives.idx), listed)
        return above.to(count_dtype), None
    rows = tile_rows(scores.shape[0], scores.shape[1], chunk_size, scores.device)
    with full_precision(scores.device):  # no half-precision tile sums under autocast
        above = negatives_above_tiles(u.contiguous(), neg.contiguous(), rows,
                                       None if level is None else level.contiguous(),
                                       None if pos is None else pos.contiguous())
    return above.to(count_dtype), None


def _capped_negatives_above(above: Tensor, cut: Tensor, ties: Tensor | None) -> Tensor:
    """`min(F_i, cut)`: the negatives above each positive that lie within the first `cut`
    negatives of the ranking (`cut = max_fpr * |N|`, one per column, (K, 1)).

    A positive tied with `w > 0` negatives sits on a diagonal segment of the ROC curve that
    spans the negatives `F_i - w/2 .. F_i + w/2`; where the cut falls inside it, the count
    is averaged along the segment (the linear interpolation of the curve at `max_fpr`):
    `cut - (cut - F_i + w/2)^2 / (2 w)`, which joins `F_i` and `cut` at the segment's ends.
    """
    capped = torch.minimum(above, cut)
    if ties is None:
        return capped
    inside = ties > 0
    width = torch.where(inside, ties, torch.ones_like(ties))
    gap = cut - above + 0.5 * width
    inside = inside & (gap > 0) & (gap < width)
    return torch.where(inside, cut - gap * gap / (2 * width), capped)


# ---------------------------------------------------------------------------------------
# formulas, written once over the statistics


class ColumnStats(NamedTuple):
    """Per-column sums that every formula of this family reads, each (K,).

    `num` is the sum of the per-positive terms ($\\sum_{i \\in P} F_i$ for AUROC,
    $\\sum_{i \\in P} \\min(F_i, \\mathrm{max\\_fpr} \\cdot |N|)$ for partial AUROC, the sum
    of the per-positive precisions $\\sum_{i \\in P} k_i / (k_i + F_i)$ for AP, with
    $F_i / w$ for cAP), `den` what it is divided by ($|P|\\,|N|$ for AUROC, $|P|$ for AP
    and cAP) and `pos` the number of positives $|P|$ (the "weighted" average's weights).
    A column is defined when `den > 0`.
    """

    num: Tensor
    den: Tensor
    pos: Tensor


#: Maps the column statistics before the formula (Modules: running statistics).
StatsHook = Callable[[ColumnStats], ColumnStats]


def column_stats(metric: str, scores: Tensor, pos: Tensor, neg: Tensor,
                  temperature: float | Tensor, chunk_size: int | None,
                  max_fpr: float | None = None,
                  positives: Positives | None = None) -> ColumnStats:
    """The statistics of each column (see `ColumnStats`); `max_fpr` < 1 (AUROC only)
    caps each positive's negatives above at `max_fpr * |N|`; `positives`, where known,
    limits the soft statistic to them (the formulas read no other)."""
    count_dtype = sum_dtype(scores.device)
    n_pos = pos.to(count_dtype).sum(-1)
    n_neg = neg.to(count_dtype).sum(-1)
    above, ties = negatives_above(scores, neg, temperature, chunk_size, count_dtype,
                                  positives=positives, pos=pos)
    pos_w = pos.to(count_dtype)
    if metric == "auroc":
        if max_fpr is not None:
            above = _capped_negatives_above(above, max_fpr * n_neg.unsqueeze(-1), ties)
        return ColumnStats((pos_w * above).sum(-1), n_pos * n_neg, n_pos)
    if metric == "cap":
        above = above * (n_pos / n_neg.clamp_min(1)).unsqueeze(-1)
    is_pos = pos_w > 0
    rank = _positive_rank(scores, pos, count_dtype)
    rank = torch.where(is_pos, rank, torch.ones_like(rank))
    return ColumnStats((pos_w * (rank / (rank + above))).sum(-1), n_pos, n_pos)


def _column_formula(metric: str, stats: ColumnStats,
                    max_fpr: float | None = None) -> tuple[Tensor, Tensor]:
    """Per-column metric and whether the column is defined, each (K,); 0 where undefined.

    With `max_fpr` < 1 (AUROC only), the partial area `max_fpr - num / den` standardised
    by McClish's correction to 1/2 for a random and 1 for a perfect ranking.
    """
    defined = stats.den > 0
    undefined = ~defined  # masked_fill: one operation each way where `where` takes two
    ratio = stats.num / stats.den.masked_fill(undefined, 1.0)
    if metric != "auroc":
        value = ratio
    elif max_fpr is None:
        value = 1 - ratio
    else:
        min_area, max_area = 0.5 * max_fpr * max_fpr, max_fpr
        value = 0.5 * (1 + (max_fpr - ratio - min_area) / (max_area - min_area))
    return value.masked_fill(undefined, 0.0), defined


def ranking_metric(fn: str, metric: Metric, input: Tensor, target: Tensor, *, task: str,
                   num_classes: int | None, average: str, temperature: float | Tensor,
                   ignore_index: int | None, chunk_size: int | None,
                   validate_args: bool, max_fpr: float | None = None,
                   hook: StatsHook | None = None, check: bool = True) -> Tensor:
    """Validate, format, compute per column, average: every function of this family.

    `max_fpr` (AUROC only) gives the standardised partial AUROC; 1 is the full AUROC.
    `hook` maps the column statistics before the formula (Modules use it for running
    statistics); `check=False` skips the option checks, for Modules that ran them once.
    """
    if check:
        check_ranking_options(fn, task=task, num_classes=num_classes, average=average,
                              temperature=temperature, ignore_index=ignore_index,
                              chunk_size=chunk_size, max_fpr=max_fpr)
    if max_fpr is not None and (metric != "auroc" or max_fpr == 1):
        max_fpr = None  # the whole curve: the plain AUROC, as scikit-learn
    scores, pos, neg, positives = _format(fn, input, target, task=task,
                                          num_classes=num_classes, ignore_index=ignore_index,
                                          validate_args=validate_args, temperature=temperature)
    out_dtype = scores.dtype
    if task != "binary" and average == "micro":
        if positives is not None:
            positives = positives.pooled(scores.shape[1])
        scores, pos, neg = scores.reshape(1, -1), pos.reshape(1, -1), neg.reshape(1, -1)
    stats = column_stats(metric, scores, pos, neg, temperature, chunk_size, max_fpr,
                         positives)
    if hook is not None:
        stats = hook(stats)
    value, defined = _column_formula(metric, stats, max_fpr)
    # a NaN score leaves its column no order: NaN, not a value (also where the NaN is
    # ignored, and at temperature > 0, where the tiles may not read an ignored entry)
    value = value.masked_fill(scores.isnan().any(-1), float("nan"))
    if task == "binary" or average == "micro":
        return value[0].to(out_dtype)
    if average == "none":
        return value.to(out_dtype)
    weight = defined.to(value.dtype)
    if average == "weighted":
        weight = weight * stats.pos
    return ((weight * value).sum() / weight.sum().clamp_min(1)).to(out_dtype)

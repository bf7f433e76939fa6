r"""Ranking surrogates: AUROC, average precision (mAP) and calibrated AP from pairwise orders.

Every metric here is a formula over one pairwise statistic. For a column of scores $s$
with positives $P$ and negatives $N$ (entries whose target equals `ignore_index` belong to
neither), each positive $i$ gets

$$
F_i = \sum_{j \in N} \operatorname{step}(s_j - s_i),\qquad
k_i = \#\{j \in P : j \text{ ranks at or above } i\},
$$

the (soft) number of negatives ranked above $i$ and the rank of $i$ among the positives.
The decision $\operatorname{step}$ is that of `softmetrics._relax.soft_step`: the Heaviside
step with $\operatorname{step}(0) = 1/2$ at `temperature=0`, and $\sigma(d / \tau)$
otherwise (computed here by a sort, or fused into tiles, and tested against it). Then

- **AUROC** $= 1 - \frac{1}{|P|\,|N|} \sum_{i \in P} F_i$,
- **AP** $= \frac{1}{|P|} \sum_{i \in P} \frac{k_i}{k_i + F_i}$,
- **calibrated AP** $= \frac{1}{|P|} \sum_{i \in P} \frac{k_i}{k_i + F_i / w}$ with
  $w = |N| / |P|$.

Only the positive-negative comparisons are relaxed; the order among positives ($k_i$) is
kept exact. AP depends on that order only through which positive is counted where, not on
how far apart the positives are, so relaxing it (as Smooth-AP does) adds no useful signal
and makes the surrogate non-monotone: raising a positive just above another positive would
lower it. With $k_i$ exact, raising a positive's score never lowers any of the three soft
metrics, and the value is continuous in the scores (tied positives have equal $F_i$, so
the order in which they are counted does not matter).

Cost: the $F_i$ of a column are $O(M^2)$ pairs for $M$ samples. At `temperature > 0` they
are computed in tiles of `chunk_size` rows by a custom autograd Function that recomputes
each tile in backward, so the extra memory is $O(C\,M\,\text{chunk})$, never the full
matrix. At `temperature=0` the exact statistics come from one sort per column
($O(M \log M)$ time, $O(M)$ memory).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .. import _checks
from .._relax import compute_dtype, full_precision, is_hard

__all__ = ["soft_auroc", "soft_average_precision", "soft_calibrated_average_precision"]

Task = Literal["binary", "multiclass", "multilabel"]
Average = Literal["micro", "macro", "weighted", "none"]
Metric = Literal["auroc", "ap", "cap"]

TASKS = ("binary", "multiclass", "multilabel")
AVERAGES = ("micro", "macro", "weighted", "none")

#: Number of pairwise elements (columns x rows x samples) in one tile on the CPU when
#: `chunk_size` is not given: 2^22 float32 values, 16 MiB per buffer. Inputs with at most
#: this many pairs per tile (e.g. one column of up to 2048 samples) are computed in a
#: single tile.
TILE_ELEMENTS = 1 << 22
#: The same on other devices, where each tile costs a few kernel launches whatever its
#: size: 2^24 values, 64 MiB per buffer in float32 (one column of 4096 samples per tile).
DEVICE_TILE_ELEMENTS = 1 << 24


# ---------------------------------------------------------------------------------------
# options and inputs


def check_options(fn: str, *, task: str, num_classes: int | None, average: str,
                  temperature: float | Tensor, ignore_index: int | None,
                  chunk_size: int | None) -> None:
    """Validate the options shared by every ranking function (no tensor data read).

    Modules call this once in `__init__`; the functions call it on every call.
    """
    _checks.check_option(fn, "task", task, TASKS)
    _checks.check_option(fn, "average", average, AVERAGES)
    _checks.check_temperature(fn, temperature)
    if ignore_index is not None:
        _checks.check_int(fn, "ignore_index", ignore_index)
    if chunk_size is not None:
        _checks.check_int(fn, "chunk_size", chunk_size, low=1)
    _checks.check_num_classes(fn, task, num_classes)


def _format(fn: str, input: Tensor, target: Tensor, *, task: str, num_classes: int | None,
            ignore_index: int | None, validate_args: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Check shapes and dtypes; return `(scores, pos, neg)`, each (K, M), one row per column.

    `scores` are in the compute dtype (multiclass: log-softmax probabilities); `pos` and
    `neg` are 0/1 masks of the positives and negatives of each column (ignored entries are
    0 in both).
    """
    _checks.check_task_inputs(fn, input, target, task=task, num_classes=num_classes,
                              ignore_index=ignore_index, validate_args=validate_args)
    if validate_args:
        _checks.check_finite(fn, "input", input)
    dtype = compute_dtype(input.dtype)
    if task == "multiclass":
        c = input.shape[1]
        z = torch.log_softmax(input.to(dtype), dim=1)
        scores = z.movedim(1, -1).reshape(-1, c).t()
        labels = target.reshape(1, -1)
        classes = torch.arange(c, device=target.device).unsqueeze(1)
        y = (labels == classes).to(dtype)
        keep = None if ignore_index is None else (labels != ignore_index).to(dtype)
    else:
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
    return scores.contiguous(), pos.expand_as(scores), neg.expand_as(scores)


def _count_dtype(device: torch.device) -> torch.dtype:
    """Exact counts and the formulas are computed in float64 (float32 where unsupported)."""
    return torch.float32 if device.type == "mps" else torch.float64


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


def _negatives_above_exact(scores: Tensor, neg: Tensor, count_dtype: torch.dtype) -> Tensor:
    """`F_i = sum_j neg_j step(s_j - s_i)` with `step(0) = 1/2`, by sorting: O(M log M)."""
    k, m = scores.shape
    sorted_scores, order = scores.sort(dim=-1)
    below = torch.zeros(k, m + 1, dtype=count_dtype, device=scores.device)
    below[:, 1:] = neg.gather(-1, order).long().cumsum(-1)  # 0/1: exact, deterministic
    left = torch.searchsorted(sorted_scores, scores, right=False)
    right = torch.searchsorted(sorted_scores, scores, right=True)
    total = below[:, -1:]
    return total - 0.5 * (below.gather(-1, left) + below.gather(-1, right))


class _NegativesAbove(torch.autograd.Function):
    """`F_i = sum_j neg_j sigmoid(u_j - u_i)` for every row `i`, in tiles of `rows` rows.

    `u` (K, M) are the scores divided by the temperature. Forward keeps only the (K, M)
    result; backward recomputes each tile: with upstream gradient $g$ and
    $D_{ij} = \\sigma'(u_j - u_i)$, $\\partial / \\partial u_j = \\sum_i g_i\\, neg_j D_{ij}$
    and $\\partial / \\partial u_i = -g_i \\sum_j neg_j D_{ij}$. Extra memory is two tiles,
    $O(K \\cdot rows \\cdot M)$.
    """

    @staticmethod
    def forward(ctx, u: Tensor, neg: Tensor, rows: int) -> Tensor:  # type: ignore[override]
        m = u.shape[-1]
        out = u.new_empty(u.shape)
        weight = neg.unsqueeze(-1)
        for start in range(0, m, rows):
            stop = min(start + rows, m)
            tile = (u.unsqueeze(1) - u[:, start:stop].unsqueeze(2)).sigmoid_()
            out[:, start:stop] = torch.matmul(tile, weight).squeeze(-1)
        ctx.save_for_backward(u, neg)
        ctx.rows = rows
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        u, neg = ctx.saved_tensors
        rows, m = ctx.rows, u.shape[-1]
        grad = torch.zeros_like(u)
        weight = neg.unsqueeze(-1)
        for start in range(0, m, rows):
            stop = min(start + rows, m)
            tile = (u.unsqueeze(1) - u[:, start:stop].unsqueeze(2)).sigmoid_()
            tile.sub_(tile * tile)
            g = grad_out[:, start:stop]
            grad.addcmul_(torch.matmul(g.unsqueeze(1), tile).squeeze(1), neg)
            grad[:, start:stop] -= g * torch.matmul(tile, weight).squeeze(-1)
        return grad, None, None


def _tile_rows(k: int, m: int, chunk_size: int | None, device: torch.device) -> int:
    """Rows per tile: `chunk_size`, else about `TILE_ELEMENTS` pairs on the CPU and
    `DEVICE_TILE_ELEMENTS` elsewhere."""
    if chunk_size is not None:
        return chunk_size
    tile = TILE_ELEMENTS if device.type == "cpu" else DEVICE_TILE_ELEMENTS
    return max(1, tile // max(k * m, 1))


def _negatives_above(scores: Tensor, neg: Tensor, temperature: float | Tensor,
                     chunk_size: int | None, count_dtype: torch.dtype) -> Tensor:
    """The statistic `F_i` of every sample: exact at temperature 0, else soft and tiled."""
    if is_hard(temperature):
        return _negatives_above_exact(scores, neg, count_dtype)
    if isinstance(temperature, Tensor):
        u = scores / temperature.to(scores.dtype).reshape(())
    else:
        u = scores / temperature
    rows = _tile_rows(scores.shape[0], scores.shape[1], chunk_size, scores.device)
    with full_precision(scores.device):  # no half-precision tile sums under autocast
        above = _NegativesAbove.apply(u.contiguous(), neg.contiguous(), rows)
    return above.to(count_dtype)


# ---------------------------------------------------------------------------------------
# formulas, written once over the statistics


class ColumnStats(NamedTuple):
    """Per-column sums that every formula of this family reads, each (K,).

    `num` is the sum of the per-positive terms ($\\sum_{i \\in P} F_i$ for AUROC, the sum
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


def _column_stats(metric: str, scores: Tensor, pos: Tensor, neg: Tensor,
                  temperature: float | Tensor, chunk_size: int | None) -> ColumnStats:
    """The statistics of each column (see `ColumnStats`)."""
    count_dtype = _count_dtype(scores.device)
    n_pos = pos.to(count_dtype).sum(-1)
    n_neg = neg.to(count_dtype).sum(-1)
    above = _negatives_above(scores, neg, temperature, chunk_size, count_dtype)
    pos_w = pos.to(count_dtype)
    if metric == "auroc":
        return ColumnStats((pos_w * above).sum(-1), n_pos * n_neg, n_pos)
    if metric == "cap":
        above = above * (n_pos / n_neg.clamp_min(1)).unsqueeze(-1)
    is_pos = pos_w > 0
    rank = _positive_rank(scores, pos, count_dtype)
    rank = torch.where(is_pos, rank, torch.ones_like(rank))
    return ColumnStats((pos_w * (rank / (rank + above))).sum(-1), n_pos, n_pos)


def _column_formula(metric: str, stats: ColumnStats) -> tuple[Tensor, Tensor]:
    """Per-column metric and whether the column is defined, each (K,); 0 where undefined."""
    defined = stats.den > 0
    ratio = stats.num / torch.where(defined, stats.den, torch.ones_like(stats.den))
    value = 1 - ratio if metric == "auroc" else ratio
    return torch.where(defined, value, torch.zeros_like(value)), defined


def _ranking_metric(fn: str, metric: str, input: Tensor, target: Tensor, *, task: str,
                    num_classes: int | None, average: str, temperature: float | Tensor,
                    ignore_index: int | None, chunk_size: int | None,
                    validate_args: bool, hook: StatsHook | None = None,
                    check: bool = True) -> Tensor:
    """Validate, format, compute per column, average: every function of this family.

    `hook` maps the column statistics before the formula (Modules use it for running
    statistics); `check=False` skips the option checks, for Modules that ran them once.
    """
    if check:
        check_options(fn, task=task, num_classes=num_classes, average=average,
                      temperature=temperature, ignore_index=ignore_index,
                      chunk_size=chunk_size)
    scores, pos, neg = _format(fn, input, target, task=task, num_classes=num_classes,
                               ignore_index=ignore_index, validate_args=validate_args)
    out_dtype = scores.dtype
    if task != "binary" and average == "micro":
        scores, pos, neg = scores.reshape(1, -1), pos.reshape(1, -1), neg.reshape(1, -1)
    stats = _column_stats(metric, scores, pos, neg, temperature, chunk_size)
    if hook is not None:
        stats = hook(stats)
    value, defined = _column_formula(metric, stats)
    if task == "binary" or average == "micro":
        return value[0].to(out_dtype)
    if average == "none":
        return value.to(out_dtype)
    weight = defined.to(value.dtype)
    if average == "weighted":
        weight = weight * stats.pos
    return ((weight * value).sum() / weight.sum().clamp_min(1)).to(out_dtype)


# ---------------------------------------------------------------------------------------
# public functions

def soft_auroc(input: Tensor, target: Tensor, *, task: Task, num_classes: int | None = None,
               average: Average = "macro", temperature: float | Tensor = 1.0,
               ignore_index: int | None = None, chunk_size: int | None = None,
               validate_args: bool = True) -> Tensor:
    r"""Soft area under the ROC curve: the fraction of (positive, negative) pairs in order.

    $$
    \mathrm{AUROC} = \frac{1}{|P|\,|N|} \sum_{i \in P} \sum_{j \in N}
    \operatorname{step}_\tau(s_i - s_j),\qquad
    \operatorname{step}_\tau(d) = \sigma(d / \tau),
    $$

    the Wilcoxon-Mann-Whitney statistic with the comparison relaxed by a sigmoid. Binary
    and multilabel scores are the raw `input` (logits); multiclass is one-vs-rest, class
    $c$ ranking the samples by their log-softmax probability of $c$ (the same order as the
    probability itself).

    Hard limit: at `temperature=0` the step counts ties as 1/2 and this equals
    scikit-learn's `roc_auc_score`, ties included (multiclass: `multi_class="ovr"`,
    multilabel: the per-column scores averaged as below).

    Columns (classes) without a positive or without a negative have no AUROC: they are left
    out of "macro" and "weighted" averages and reported as 0 by "none"; when no column is
    defined the result is 0 (no warning, no NaN).

    Args:
        input: raw scores: (N, ...) for binary; (N, C, ...) logits otherwise.
        target: 0/1 (int, bool or float) of the input's shape for binary and multilabel;
            (N, ...) class indices for multiclass.
        task: "binary", "multiclass" or "multilabel".
        num_classes: C; required unless binary.
        average: "macro" averages per-column values, "weighted" weighs them by their number
            of positives, "micro" pools every (sample, class) entry into one column, "none"
            returns the per-column values. Ignored for binary.
        temperature: >= 0, on the scale of score differences; 0 gives the exact metric (no
            gradient). A one-element tensor (e.g. a learnable temperature) is allowed.
        ignore_index: target value whose entries (multiclass: samples) take no part.
        chunk_size: rows of the pairwise matrix per tile at `temperature > 0`; extra
            memory is a few tiles of `C * N * chunk_size` values (C = 1 for binary and
            micro). Default: tiles of about $2^{22}$ pairs on a CPU and $2^{24}$ on other
            devices (a single tile for small inputs).
        validate_args: check target values and finite scores (reads data, one host
            synchronisation).

    Returns:
        A scalar in [0, 1] ((C,) for `average="none"`), float32 for half-precision inputs.

    Raises:
        ValueError: on shapes, option values or target values out of range.
        TypeError: on non-floating `input` or non-integer multiclass `target`.

    Example:
        >>> import torch
        >>> from softmetrics.functional import soft_auroc
        >>> scores = torch.tensor([2.0, 0.5, 0.5, -1.0, 1.0])
        >>> target = torch.tensor([1, 1, 0, 0, 0])
        >>> soft_auroc(scores, target, task="binary", temperature=0)
        tensor(0.7500)
        >>> soft_auroc(scores, target, task="binary", temperature=0.5)
        tensor(0.7587)

    ??? cite "References"
        Hanley and McNeil, *The meaning and use of the area under a receiver operating
        characteristic (ROC) curve*, Radiology 143(1), 1982 (AUROC as the
        Wilcoxon-Mann-Whitney statistic). Yan, Dodier, Mozer and Wolniewicz, *Optimizing
        classifier performance via an approximation to the Wilcoxon-Mann-Whitney
        statistic*, ICML 2003 (sigmoid relaxation).
    """
    return _ranking_metric("soft_auroc", "auroc", input, target, task=task,
                           num_classes=num_classes, average=average, temperature=temperature,
                           ignore_index=ignore_index, chunk_size=chunk_size,
                           validate_args=validate_args)


def soft_average_precision(input: Tensor, target: Tensor, *, task: Task,
                           num_classes: int | None = None, average: Average = "macro",
                           temperature: float | Tensor = 1.0, ignore_index: int | None = None,
                           chunk_size: int | None = None,
                           validate_args: bool = True) -> Tensor:
    r"""Soft average precision; with `average="macro"` the mean AP (per-frame mAP).

    $$
    \mathrm{AP} = \frac{1}{|P|} \sum_{i \in P} \frac{k_i}{k_i + F_i},\qquad
    F_i = \sum_{j \in N} \operatorname{step}_\tau(s_j - s_i),
    $$

    where $k_i$ is the rank of positive $i$ among the positives (1 for the highest) and
    $F_i$ the soft number of negatives ranked above it, so $k_i / (k_i + F_i)$ is the
    precision at $i$'s rank. This is Smooth-AP (Brown et al.) with one change: the order
    among positives is kept exact. Relaxing it adds nothing to AP (which depends only on
    how negatives interleave with positives) and makes the surrogate non-monotone; with it
    exact, raising a positive's score never lowers the soft AP. Binary and multilabel
    scores are the raw `input`; multiclass is one-vs-rest on log-softmax probabilities.

    Hard limit: at `temperature=0` this is the exact AP, equal to scikit-learn's
    `average_precision_score` for distinct scores. Tie rule: a negative tied with a
    positive counts as half a negative above it (the AUROC rule); tied positives are
    counted in any order, which gives the same value. scikit-learn instead treats a group
    of tied scores as one threshold, crediting every positive of the group with the
    precision at the group's end, so the two differ when scores tie.

    Columns without a positive have no AP: they are left out of "macro" and "weighted"
    averages and reported as 0 by "none"; when no column is defined the result is 0.
    Per-frame mAP of online action detection (THUMOS'14) is `task="multilabel"` (or
    multiclass) with `average="macro"`; pass the background class as a column of its own
    and drop it with `average="none"` (`values[1:].mean()`) or give its column no
    positive.

    Args:
        input: raw scores: (N, ...) for binary; (N, C, ...) logits otherwise.
        target: 0/1 (int, bool or float) of the input's shape for binary and multilabel;
            (N, ...) class indices for multiclass.
        task: "binary", "multiclass" or "multilabel".
        num_classes: C; required unless binary.
        average: "macro" (mean AP), "weighted" by number of positives, "micro" (all
            entries pooled into one ranking) or "none". Ignored for binary.
        temperature: >= 0, on the scale of score differences; 0 gives the exact metric (no
            gradient). A one-element tensor is allowed.
        ignore_index: target value whose entries (multiclass: samples) take no part.
        chunk_size: rows of the pairwise matrix per tile at `temperature > 0` (see
            `soft_auroc`).
        validate_args: check target values and finite scores (reads data, one host
            synchronisation).

    Returns:
        A scalar in [0, 1] ((C,) for `average="none"`), float32 for half-precision inputs.

    Raises:
        ValueError: on shapes, option values or target values out of range.
        TypeError: on non-floating `input` or non-integer multiclass `target`.

    Example:
        >>> import torch
        >>> from softmetrics.functional import soft_average_precision
        >>> scores = torch.tensor([2.0, 0.7, 0.5, -1.0, 1.0], requires_grad=True)
        >>> target = torch.tensor([1, 1, 0, 0, 1])
        >>> soft_average_precision(scores, target, task="binary", temperature=0)
        tensor(1.)
        >>> ap = soft_average_precision(scores, target, task="binary", temperature=0.5)
        >>> ap.backward()
        >>> ap
        tensor(0.9002, grad_fn=<ToCopyBackward0>)
        >>> scores.grad
        tensor([ 0.0288,  0.0461, -0.1182, -0.0113,  0.0546])

    ??? cite "References"
        Brown, Xie, Kalogeiton and Zisserman, *Smooth-AP: Smoothing the Path Towards
        Large-Scale Image Retrieval*, ECCV 2020, arXiv:2007.12163.
    """
    return _ranking_metric("soft_average_precision", "ap", input, target, task=task,
                           num_classes=num_classes, average=average, temperature=temperature,
                           ignore_index=ignore_index, chunk_size=chunk_size,
                           validate_args=validate_args)


def soft_calibrated_average_precision(input: Tensor, target: Tensor, *, task: Task,
                                      num_classes: int | None = None,
                                      average: Average = "macro",
                                      temperature: float | Tensor = 1.0,
                                      ignore_index: int | None = None,
                                      chunk_size: int | None = None,
                                      validate_args: bool = True) -> Tensor:
    r"""Soft calibrated average precision (cAP), the per-frame metric of TVSeries.

    $$
    \mathrm{cAP} = \frac{1}{|P|} \sum_{i \in P} \frac{k_i}{k_i + F_i / w},\qquad
    w = \frac{|N|}{|P|},
    $$

    with $k_i$ and $F_i$ as in `soft_average_precision`: the precision at each positive's
    rank with false positives scaled by the ratio $w$ of negatives to positives, so that
    the value does not depend on how rare the class is (De Geest et al.). A column with
    positives but no negative has cAP 1.

    Hard limit: at `temperature=0`, for distinct scores, this equals the TVSeries
    reference `sum(tps / (tps + fps / w) * y) / sum(y)` over the scores sorted in
    decreasing order; ties follow the rule of `soft_average_precision`.

    Columns without a positive are left out of "macro" and "weighted" averages and reported
    as 0 by "none"; when no column is defined the result is 0. The mean cAP over action
    classes (background excluded) is `average="macro"`.

    Args:
        input: raw scores: (N, ...) for binary; (N, C, ...) logits otherwise.
        target: 0/1 (int, bool or float) of the input's shape for binary and multilabel;
            (N, ...) class indices for multiclass.
        task: "binary", "multiclass" or "multilabel".
        num_classes: C; required unless binary.
        average: "macro" (mean cAP), "weighted", "micro" or "none". Ignored for binary.
        temperature: >= 0; 0 gives the exact metric (no gradient).
        ignore_index: target value whose entries (multiclass: samples) take no part.
        chunk_size: rows of the pairwise matrix per tile at `temperature > 0` (see
            `soft_auroc`).
        validate_args: check target values and finite scores (reads data, one host
            synchronisation).

    Returns:
        A scalar in [0, 1] ((C,) for `average="none"`), float32 for half-precision inputs.

    Raises:
        ValueError: on shapes, option values or target values out of range.
        TypeError: on non-floating `input` or non-integer multiclass `target`.

    Example:
        >>> import torch
        >>> from softmetrics.functional import soft_calibrated_average_precision
        >>> scores = torch.tensor([2.0, 0.7, 0.5, -1.0, 1.0, 0.0])
        >>> target = torch.tensor([1, 0, 1, 0, 0, 0])
        >>> soft_calibrated_average_precision(scores, target, task="binary", temperature=0)
        tensor(0.8333)

    ??? cite "References"
        De Geest, Gavves, Ghodrati, Li, Snoek and Tuytelaars, *Online Action Detection*,
        ECCV 2016, arXiv:1604.06506 (TVSeries, calibrated AP). Used for per-frame cAP by
        TRN (Xu et al., ICCV 2019), IDN (Eun et al., CVPR 2020), OadTR (Wang et al., ICCV
        2021) and LSTR (Xu et al., NeurIPS 2021).
    """
    return _ranking_metric("soft_calibrated_average_precision", "cap", input, target,
                           task=task, num_classes=num_classes, average=average,
                           temperature=temperature, ignore_index=ignore_index,
                           chunk_size=chunk_size, validate_args=validate_args)

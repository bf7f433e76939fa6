"""The statistics of the classification metrics and the formulas over them.

`Counts` holds what every formula reads, per (group, class): true positives, predicted
mass, support and the number of counted entries (`_classification_core.statistics` makes
them). Each formula is written once here: the Tversky index (precision, recall, F-beta,
Dice, Jaccard), accuracy and MCC, with the average over classes (`class_average`, by the
rules of `Averaging`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from .._relax import as_tensor_on, bounded, soft_positive, sum_dtype
from ._classification_options import Averaging

__all__ = ["Counts", "StatScores", "accuracy_value", "class_average", "divide", "focal",
           "mcc_value", "tversky_value"]


class StatScores(NamedTuple):
    """Soft (or, at temperature 0, exact) per-class counts, each of shape `(C,)` for
    `multidim_average="global"` or `(N, C)` for `"samplewise"` (`C = 1` for binary)."""

    tp: Tensor
    fp: Tensor
    fn: Tensor
    tn: Tensor

    @property
    def support(self) -> Tensor:
        """Number of (non-ignored) entries whose target is the class: `tp + fn`."""
        return self.tp + self.fn


class Counts(NamedTuple):
    """The statistics every formula reads, per (group, class): soft true positives, soft
    predicted mass (TP + FP), support (TP + FN, no gradient) and the number of counted
    entries (TP + FP + FN + TN: a (G, 1) or (G, C) tensor, or a number)."""

    tp: Tensor
    pred: Tensor
    support: Tensor
    total: Tensor | float

    def micro(self, keep: Tensor | None = None) -> Counts:
        """Counts pooled over the class axis (over the classes where `keep` is 1 only)."""
        tp, pred, support = self.tp, self.pred, self.support
        total = self.total
        if keep is not None:
            tp, pred, support = tp * keep, pred * keep, support * keep
            whole = total.expand_as(tp) if isinstance(total, Tensor) else torch.full_like(tp, total)
            total = whole * keep
        if isinstance(total, Tensor):
            total = total.expand_as(tp).sum(-1, keepdim=True)
        else:
            total = total * tp.shape[-1]
        return Counts(tp.sum(-1, keepdim=True), pred.sum(-1, keepdim=True),
                      support.sum(-1, keepdim=True), total)

    def to(self, dtype: torch.dtype) -> Counts:
        """The counts in `dtype` (a number stays a number)."""
        total = self.total.to(dtype) if isinstance(self.total, Tensor) else self.total
        return Counts(self.tp.to(dtype), self.pred.to(dtype), self.support.to(dtype), total)

    def stat_scores(self) -> StatScores:
        """The four counts TP, FP, FN, TN."""
        fn = self.support - self.tp
        return StatScores(self.tp, self.pred - self.tp, fn, self.total - self.pred - fn)


# ---------------------------------------------------------------------------------------
# formulas: each written once, over the statistics


# The square root of the smallest normal number of each floating dtype (about 1e-19 in
# float32, 1e-154 in float64): the offset of the denominators of `divide` and `_mcc`. A
# table, not a cached function: the compiler warns of every `functools.cache` it traces.
_FLOORS = {dtype: math.sqrt(torch.finfo(dtype).tiny)
           for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64)}


def _floor(dtype: torch.dtype) -> float:
    return _FLOORS[dtype]


def divide(num: Tensor, den: Tensor, zero_division: float) -> Tensor:
    """`num / den`, with `zero_division` where `den == 0` (no NaN in values or gradients).

    Every formula here has `0 <= num <= den` where it divides. The denominator is offset
    by the square root of the dtype's smallest normal number (`_floor`: about 1e-19 in
    float32): near 0, `num / den` would have a slope of order `1 / den`, up to
    `1 / tiny`, which a small temperature's factor `1 / tau` in the softmax backward takes
    to inf; with the offset the slope stays below `1 / floor`. Such soft counts (a class
    whose predicted mass underflows) hold no mass worth the name; the offset takes their
    ratio continuously to 0 as `den` falls to 0, where `zero_division` takes over. Any
    denominator above `floor / eps` (about 1e-12 in float32, 1e-138 in float64) is left
    unchanged, bit for bit, exact counts included. A NaN (from a NaN or infinite logit)
    is divided, not replaced: it reaches the result.

    The offset is an addition rather than a clamp at `floor`, and the zero case a
    `masked_fill` rather than a `where` with a number: the same values in fewer
    operations each way (a clamp's backward takes three, a `where` with a number two),
    which is most of a small step's time (see the Speed page).
    """
    # `den <= 0` is False for NaN: one comparison
    return (num / (den + _floor(den.dtype))).masked_fill(den <= 0, zero_division)


def _weighted_sum(terms: tuple[tuple[float, Tensor], ...]) -> Tensor:
    """`sum(a * x for a, x in terms)` in as few operations as the coefficients allow (at
    least one is not 0): a term with coefficient 0 is left out, a coefficient +-1 adds or
    subtracts, and terms of equal coefficients are added before one product (F1:
    `(pred + support) / 2`). The products left out are exact, so only the order of the
    additions may differ from the plain sum's (not at all for counts that are integers)."""
    groups: dict[float, Tensor] = {}
    for a, x in terms:
        if a != 0.0:
            groups[a] = groups[a] + x if a in groups else x
    # negatives last (a stable partition: torch 2.4's compiler cannot call `sorted` with a key)
    ordered = [item for item in groups.items() if item[0] >= 0]
    ordered += [item for item in groups.items() if item[0] < 0]
    a, x = ordered[0]
    total = x if a == 1.0 else a * x
    for a, x in ordered[1:]:
        total = total + x if a == 1.0 else total - x if a == -1.0 else total + a * x
    return total


def _tversky(c: Counts, alpha: float, beta: float, zero_division: float,
             temperature: float | Tensor | None = None, seen: Counts | None = None
             ) -> Tensor:
    """TP / (TP + alpha FP + beta FN), with FP = pred - TP and FN = support - TP.

    A class absent from the target (support 0, so TP = 0) has the exact value
    `zero_division` when nothing predicts it and 0 otherwise (for `alpha > 0`). Given the
    decision's `temperature`, its value is `zero_division * (1 - soft_positive(FP))`
    `= zero_division * t / (t + FP)`: exact at temperature 0, and at temperature
    > 0 a slope that lets predicting nothing reach `zero_division` (the plain formula
    scores any soft prediction 0: a floor with no gradient).

    With `beta = 0` (precision) a class that nothing predicts has the exact value
    `zero_division` (0/0), while the ratio of its vanishing soft TP and predicted count
    tends to whatever the least unlikely prediction is: so the value is `m TP / pred +
    (1 - m) zero_division`, `m = min(2 pred, 1)`, which is `[pred > 0]` on exact counts
    (multiples of 1/2: a top-k tie is half a hit).

    `seen`: the counts these rules read, where `c` are weighted (pooled with class
    weights): the same counts unweighted, over the classes of positive weight. Whether
    anything is predicted or has a target does not depend on the weights.
    """
    seen = c if seen is None else seen
    den = _weighted_sum(((1.0 - alpha - beta, c.tp), (alpha, c.pred), (beta, c.support)))
    value = divide(c.tp, den, zero_division)
    if beta == 0 and alpha > 0:
        predicted = bounded(2.0 * seen.pred, 0.0, 1.0)  # products: `value` or `zd` unrounded
        value = predicted * value
        if zero_division != 0:
            value = value + (1.0 - predicted) * zero_division
    if temperature is not None and alpha > 0 and zero_division != 0:
        absent = zero_division * (1.0 - soft_positive(seen.pred, temperature))
        value = torch.where(seen.support == 0, absent, value)
    return value


def _correlation(cov_pt: Tensor, den: Tensor, zero_division: float) -> Tensor:
    """`cov_pt / sqrt(den)`, with `zero_division` where `den <= 0`.

    The denominator is offset as in `divide`: the rsqrt's backward cubes it, and at the
    smallest normal number that is inf, which the masked branch turned into a NaN second
    derivative (0 * inf); at its square root the cube is finite. NaN counts give a NaN
    value, not zero_division: `NaN <= 0` is False."""
    return (cov_pt * torch.rsqrt(den + _floor(den.dtype))).masked_fill(den <= 0, zero_division)


def _mcc(trace: Tensor, total: Tensor | float, pred: Tensor, true: Tensor,
         zero_division: float) -> Tensor:
    """Gorodkin's R_K from the trace, total, and column (`pred`) and row (`true`) sums of a
    confusion matrix whose class axis is the last one; one value per group."""
    cov_pt = trace * total - (pred * true).sum(-1)
    cov_pp = total * total - (pred * pred).sum(-1)
    cov_tt = total * total - (true * true).sum(-1)
    return _correlation(cov_pt, cov_pp * cov_tt, zero_division)


def _multiclass_mcc(c: Counts, zero_division: float) -> Tensor:
    total = c.total if not isinstance(c.total, Tensor) else c.total[..., 0]
    return _mcc(c.tp.sum(-1), total, c.pred, c.support, zero_division)


def _binary_mcc(c: Counts, zero_division: float) -> Tensor:
    """Per-class one-vs-rest MCC: R_K of the 2 x 2 table (negatives, positives).

    For two classes R_K's covariances are twice `N TP - pred support`, `pred (N - pred)`
    and `support (N - support)` (N the entries): the same value, bit for bit on exact
    counts (integers below 2^53; a factor 2 is exact), in half the operations, and
    without the subtractions of squares of size N^2 that the general form makes."""
    n = c.total
    cov_pt = n * c.tp - c.pred * c.support
    return _correlation(cov_pt, (c.pred * (n - c.pred)) * (c.support * (n - c.support)),
                        zero_division)


def class_average(score: Tensor, c: Counts, how: Averaging, seen: Tensor | None = None) -> Tensor:
    """Reduce per-class scores (G, C) over classes: macro, weighted by support, or none.

    The macro average weighs each class by whether it counts: 0 for the ignored class;
    with `absent="skip"`, 1 for a class with a target and `soft_positive(seen)` for one
    without (`seen` = its predicted mass by default, which for a class without a target
    is its FP: its TP is a sum over no entries, or of `min(p, 0)`, exactly 0): exactly
    "has a target or a prediction" at temperature 0, and at temperature > 0 a weight that
    predicting an absent class less lowers, with a gradient at every count, instead of a
    constant term.
    """
    if how.average == "none":
        return score
    keep = how.class_mask(score, c.support)
    if how.average == "weighted":
        total = c.support.sum(-1)
        weighted = divide((score * c.support).sum(-1), total, how.zero_division)
        # no support at all (every weight 0): the plain mean, as scikit-learn's
        # `_nanaverage`, which then ignores the weights
        plain = score.mean(-1) if keep is None else divide(
            (score * keep).sum(-1), keep.sum(-1), how.zero_division)
        return torch.where(total > 0, weighted, plain)
    if how.absent == "include":
        if keep is None:
            return score.mean(-1)
        weight = keep.expand_as(score)
    else:
        seen = c.pred if seen is None else seen
        weight = soft_positive(seen, how.temperature).masked_fill(c.support > 0, 1.0)
        if keep is not None:
            weight = weight * keep
    return divide((score * weight).sum(-1), weight.sum(-1), how.zero_division)


def focal(value: Tensor, gamma: float) -> Tensor:
    """`1 - (1 - value)^gamma`, whose loss is the focal loss `(1 - value)^gamma` (Abraham
    and Khan's focal Tversky loss). For `gamma < 1` the slope at `1 - value = 0` (reached
    by saturated soft values) is infinite: below the machine epsilon `eps` the power is
    replaced by its chord, `(1 - value) eps^(gamma - 1)`, at most `eps^gamma` away; exact
    values (float64 ratios of counts) never fall there. A NaN value stays NaN."""
    if gamma == 1.0:
        return value
    # rounding may put a soft value a hair above 1; at exactly 1 the chord's slope
    miss = bounded(1.0 - value, 0.0)
    if gamma > 1.0:
        return 1.0 - miss.pow(gamma)
    eps = torch.finfo(miss.dtype).eps
    small = miss < eps
    power = torch.where(small, eps, miss).pow(gamma)  # no infinite slope at 0, not even masked
    return 1.0 - torch.where(small, miss * eps ** (gamma - 1.0), power)


def tversky_value(c: Counts, task: str, how: Averaging, alpha: float,
                   beta: float, gamma: float = 1.0, skip_unsupported: bool = False) -> Tensor:
    """Every metric of the Tversky form: precision, recall, F-beta, Dice, Jaccard.

    `gamma` applies `focal` to the value of each class (of the pooled counts for
    "micro") before the average, which weighs the classes as it weighs the plain values.
    `skip_unsupported`: a macro average that skips absent classes skips every class
    absent from the target, predicted or not (torchmetrics' precision and recall with
    `top_k > 1`).
    """
    zd = how.zero_division
    # a tensor is never compared with a string (torch 2.8's compiler cannot trace it)
    generalized = isinstance(how.class_weights, str) and how.class_weights == "generalized"
    if (how.average == "micro" or generalized) and task != "binary":
        weights = how.class_mask(c.tp, c.support)
        micro = c.micro(weights)
        seen = None if weights is None else c.micro((weights > 0).to(weights.dtype))
        value = _tversky(micro, alpha, beta, zd, how.temperature, seen)
        return focal(value, gamma).squeeze(-1)
    value = _tversky(c, alpha, beta, zd, how.temperature if how.bridges_absent() else None)
    value = focal(value, gamma)
    if task == "binary":
        return value
    return class_average(value, c, how, seen=torch.zeros_like(c.tp) if skip_unsupported else None)


def mcc_value(c: Counts, task: str, how: Averaging) -> Tensor:
    """MCC over the counts, in float64 (float32 on MPS) and returned in their dtype: the
    formula subtracts nearly equal products of large counts (`N^2 - sum_k pred_k^2`,
    `N - pred - support + TP`), which in float32 lost four digits over 4 million soft
    entries."""
    dtype = c.tp.dtype
    c = c.to(sum_dtype(c.tp.device))
    zd = how.zero_division
    if task == "multiclass" and how.average == "micro":
        return _multiclass_mcc(c, zd).to(dtype)
    if task == "multilabel" and how.average == "micro":
        return _binary_mcc(c.micro(), zd).squeeze(-1).to(dtype)
    value = _binary_mcc(c, zd)
    return (value if task == "binary" else class_average(value, c, how)).to(dtype)


def accuracy_value(c: Counts, task: str, how: Averaging) -> Tensor:
    """Accuracy over the counts: fraction correct (micro), balanced (macro), per class.

    Multiclass macro is the mean recall; skipping absent classes, it skips every class
    absent from the target, predicted or not (scikit-learn's `balanced_accuracy_score`).
    """
    zd = how.zero_division
    if task == "multiclass":
        if how.average in ("micro", "weighted"):
            return divide(c.tp.sum(-1), c.support.sum(-1), zd)
        return class_average(divide(c.tp, c.support, zd), c, how, seen=torch.zeros_like(c.tp))
    if task == "binary" or how.average == "micro":
        c = c.micro()
    total = as_tensor_on(c.total, c.tp)
    correct = total - c.pred - c.support + 2 * c.tp
    value = divide(correct, total.expand_as(correct), zd)
    if task == "binary" or how.average == "micro":
        return value.squeeze(-1)
    return class_average(value, c, how)

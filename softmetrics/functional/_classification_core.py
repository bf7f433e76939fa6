r"""The machinery behind the classification metrics: options, formatting, counts, formulas.

Every metric runs one pipeline, `evaluate`:

1. `check_classification_options` (Modules run it once, in `__init__`);
2. `format_inputs`: a class axis 1 everywhere, the compute dtype, a 0/1 weight per entry
   for `ignore_index`;
3. `Counts`: the decision's true positives and predicted mass per (group, class), from
   `_classification_counts` (argmax/threshold, or top-k), with the support and the number
   of counted entries; exact integers in float64 at temperature 0;
4. an optional `CountsHook` (Modules: sum across processes, mix running statistics);
5. one formula over the counts: Tversky (precision, recall, F-beta, Dice, Jaccard),
   accuracy, or MCC, then the average over classes.

The public functions (`softmetrics.functional.classification`) and the Modules
(`softmetrics.losses.classification`) call `evaluate` (or `stat_scores`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from .. import _checks
from .._options import MULTIDIM_AVERAGES
from .._relax import as_tensor_on, compute_dtype, full_precision, is_hard
from ._classification_counts import decision_counts, group_sum, index_counts, top_k_hits

__all__ = [
    "Counts",
    "CountsHook",
    "Kind",
    "StatScores",
    "check_classification_options",
    "check_top_k",
    "evaluate",
    "fbeta_weights",
    "format_inputs",
    "stat_scores",
    "tversky_weights",
]


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

    def micro(self) -> Counts:
        """Counts pooled over the class axis."""
        total = self.total
        if isinstance(total, Tensor):
            total = total.expand_as(self.tp).sum(-1, keepdim=True)
        else:
            total = total * self.tp.shape[-1]
        return Counts(*(t.sum(-1, keepdim=True) for t in self[:3]), total)

    def stat_scores(self) -> StatScores:
        """The four counts TP, FP, FN, TN."""
        fn = self.support - self.tp
        return StatScores(self.tp, self.pred - self.tp, fn, self.total - self.pred - fn)


CountsHook = Callable[[Counts], Counts]
"""Maps the counts before a formula reads them (Modules: sums across processes, running
statistics)."""


# ---------------------------------------------------------------------------------------
# options and inputs


def check_classification_options(fn: str, *, task: str, num_classes: int | None,
                                 average: str, temperature: float | Tensor, threshold: float,
                                 ignore_index: int | None, multidim_average: str,
                                 zero_division: float) -> None:
    """Validate the options shared by every classification function (no tensor data read).

    Modules call this once in `__init__`; the functions call it on every call.
    """
    _checks.check_task_options(fn, task=task, num_classes=num_classes, average=average,
                               temperature=temperature, ignore_index=ignore_index)
    _checks.check_option(fn, "multidim_average", multidim_average, MULTIDIM_AVERAGES)
    _checks.check_number(fn, "threshold", threshold, low=0.0, high=1.0, low_open=True,
                         high_open=True)
    _checks.check_number(fn, "zero_division", zero_division, low=0.0, high=1.0)


def check_top_k(fn: str, *, task: str, k: int, num_classes: int | None) -> None:
    """Top-k accuracy: multiclass only, with 1 <= k <= num_classes."""
    _checks.check_option(fn, "task", task, ("multiclass",))
    _checks.check_int(fn, "k", k, low=1)
    if num_classes is not None and k > num_classes:
        _checks.fail(fn, "k", f"<= num_classes = {num_classes}", k)


def tversky_weights(fn: str, alpha: float, beta: float) -> tuple[float, float]:
    """The weights (alpha on FP, beta on FN) of a Tversky index, checked: both >= 0."""
    return (_checks.check_number(fn, "alpha", alpha, low=0.0),
            _checks.check_number(fn, "beta", beta, low=0.0))


def fbeta_weights(fn: str, beta: float) -> tuple[float, float]:
    """F-beta as a Tversky index: weights 1/(1+beta^2) on FP and beta^2/(1+beta^2) on FN
    (`beta > 0` is checked). An infinite `beta`, or one whose square overflows, gives
    recall's weights (0, 1), the limit scikit-learn's `fbeta_score` also takes."""
    beta = _checks.check_number(fn, "beta", beta, low=0.0, low_open=True)
    b2 = beta * beta
    if math.isinf(b2):
        return 0.0, 1.0
    return 1.0 / (1.0 + b2), b2 / (1.0 + b2)


def format_inputs(fn: str, input: Tensor, target: Tensor, *, task: str,
                  num_classes: int | None, ignore_index: int | None, validate_args: bool
                  ) -> tuple[Tensor, Tensor, Tensor | None, int]:
    """Check shapes and dtypes; return `(z, y, w, C)` with a class axis 1 everywhere.

    `z` is the input as (N, C, ...) (binary: C = 1) in its own dtype: the statistics
    convert it to the compute dtype (the fused softmax block by block, so that no float32
    copy of half-precision logits is kept for backward); `y` is the target: class indices
    (N, ...) for multiclass, 0/1 floats (compute dtype) shaped like `z` otherwise, with
    ignored entries set to 0; `w` is the 0/1 weight of each entry (`None` when nothing is
    ignored) shaped like `y`, in the compute dtype.
    """
    _checks.check_task_inputs(fn, input, target, task=task, num_classes=num_classes,
                              ignore_index=ignore_index, validate_args=validate_args)
    if _checks.checks_data(validate_args):
        _checks.check_finite(fn, "input", input)
    dtype = compute_dtype(input.dtype)
    z = input
    if task == "binary" and _checks.binary_channel_squeezed(input, target):
        z = input.squeeze(1)
    w = None
    y = target
    if ignore_index is not None:
        keep = target != ignore_index
        w = keep.to(dtype)
        y = torch.where(keep, target, torch.zeros((), dtype=target.dtype, device=target.device))
    if task == "multiclass":
        y = y.long()
    else:
        y = y.to(dtype)
        if task == "binary":
            z, y = z.unsqueeze(1), y.unsqueeze(1)
            w = None if w is None else w.unsqueeze(1)
    return z, y, w, int(z.shape[1])


# ---------------------------------------------------------------------------------------
# statistics: the counts of every metric


def _class_support(y: Tensor, w: Tensor | None, num_classes: int, samplewise: bool,
                   dtype: torch.dtype) -> Tensor:
    """Support (G, C) of multiclass labels `y`: the (weighted) number of entries per class."""
    ones = torch.ones((), dtype=dtype, device=y.device).expand(y.shape)
    return index_counts(ones if w is None else w, y, num_classes, samplewise)


def _nan_groups(z: Tensor, samplewise: bool) -> Tensor:
    """Which groups' scores hold a NaN, (N, 1) or a scalar: their exact counts are set to
    NaN, because the exact decision (argmax, threshold, rank) would turn a NaN logit into
    an ordinary prediction and hide it. Soft probabilities carry the NaN themselves."""
    return z.isnan().flatten(1).any(1, keepdim=True) if samplewise else z.isnan().any()


def _top_k_counts(z: Tensor, y: Tensor, w: Tensor | None, num_classes: int, k: int,
                  temperature: float | Tensor, samplewise: bool) -> Counts:
    """Counts whose true positives are the top-k hits (only TP and support are read)."""
    hit = top_k_hits(z.to(compute_dtype(z.dtype)), y, k, temperature)
    if w is not None:
        hit = hit * w
    tp = index_counts(hit, y, num_classes, samplewise)
    with torch.no_grad():
        support = _class_support(y, w, num_classes, samplewise, hit.dtype)
    if is_hard(temperature):
        tp = torch.where(_nan_groups(z, samplewise), torch.nan, tp.double())
        support = support.double()
    return Counts(tp, tp, support, 0.0)


def _statistics(z: Tensor, y: Tensor, w: Tensor | None, num_classes: int, *, task: str,
                temperature: float | Tensor, threshold: float, samplewise: bool) -> Counts:
    """The counts of the decision on `z` against `y`, each (G, C).

    At temperature 0 they are exact integers, returned in float64 so that the formulas of
    the exact metric round like scikit-learn's; soft counts stay in the compute dtype.
    """
    with full_precision(z.device):  # autocast would round the weighted sums to half
        tp, pred = decision_counts(z, y, w, task=task, temperature=temperature,
                                   threshold=threshold, samplewise=samplewise)
    with torch.no_grad():
        if task == "multiclass":
            support = _class_support(y, w, num_classes, samplewise, tp.dtype)
            if w is None:
                total: Tensor | float = float(math.prod(y.shape[1:]) if samplewise
                                              else y.numel())
            else:
                total = group_sum(w.unsqueeze(1), samplewise)
        else:
            support = group_sum(y if w is None else y * w, samplewise)
            if w is None:
                per_sample = math.prod(y.shape[2:])
                total = float(per_sample if samplewise else y.shape[0] * per_sample)
            else:
                total = group_sum(w.expand_as(y), samplewise)
    if is_hard(temperature):
        if tp.device.type != "mps":
            tp, pred, support = tp.double(), pred.double(), support.double()
            if isinstance(total, Tensor):
                total = total.double()
        bad = _nan_groups(z, samplewise)
        tp, pred = torch.where(bad, torch.nan, tp), torch.where(bad, torch.nan, pred)
    return Counts(tp, pred, support, total)


# ---------------------------------------------------------------------------------------
# formulas: each written once, over the statistics


def _divide(num: Tensor, den: Tensor, zero_division: float) -> Tensor:
    """`num / den`, with `zero_division` where `den == 0` (no NaN in values or gradients).

    Every formula here has `0 <= num <= den` where it divides, so the clamp only ever
    touches the 0/0 entries that `zero_division` replaces. A NaN (from a NaN or infinite
    logit) is divided, not replaced: it reaches the result.
    """
    tiny = torch.finfo(den.dtype).tiny
    defined = (den > 0) | den.isnan()
    return torch.where(defined, num / den.clamp_min(tiny), zero_division)


def _tversky(c: Counts, alpha: float, beta: float, zero_division: float) -> Tensor:
    """TP / (TP + alpha FP + beta FN), with FP = pred - TP and FN = support - TP."""
    den = (1.0 - alpha - beta) * c.tp + alpha * c.pred + beta * c.support
    return _divide(c.tp, den, zero_division)


def _mcc(trace: Tensor, total: Tensor | float, pred: Tensor, true: Tensor,
         zero_division: float) -> Tensor:
    """Gorodkin's R_K from the trace, total, and column (`pred`) and row (`true`) sums of a
    confusion matrix whose class axis is the last one; one value per group."""
    cov_pt = trace * total - (pred * true).sum(-1)
    cov_pp = total * total - (pred * pred).sum(-1)
    cov_tt = total * total - (true * true).sum(-1)
    den = cov_pp * cov_tt
    tiny = torch.finfo(den.dtype).tiny
    defined = (den > 0) | den.isnan()  # NaN counts give a NaN value, not zero_division
    return torch.where(defined, cov_pt * torch.rsqrt(den.clamp_min(tiny)), zero_division)


def _multiclass_mcc(c: Counts, zero_division: float) -> Tensor:
    total = c.total if not isinstance(c.total, Tensor) else c.total[..., 0]
    return _mcc(c.tp.sum(-1), total, c.pred, c.support, zero_division)


def _binary_mcc(c: Counts, zero_division: float) -> Tensor:
    """Per-class one-vs-rest MCC: R_K of the 2 x 2 table (negatives, positives)."""
    tn = c.total - c.pred - c.support + c.tp
    neg_pred, neg_true = c.total - c.pred, c.total - c.support
    return _mcc(c.tp + tn, c.total, torch.stack([neg_pred, c.pred], -1),
                torch.stack([neg_true, c.support], -1), zero_division)


def _average(score: Tensor, support: Tensor, average: str, zero_division: float) -> Tensor:
    """Reduce per-class scores (G, C) over classes: macro, weighted by support, or none."""
    if average == "macro":
        return score.mean(-1)
    if average == "weighted":
        return _divide((score * support).sum(-1), support.sum(-1), zero_division)
    return score


def _finish(value: Tensor, task: str, samplewise: bool, out_dtype: torch.dtype) -> Tensor:
    """Drop the group axis for global results and the class axis for binary ones."""
    if task == "binary" and value.ndim == 2:
        value = value.squeeze(-1)
    if not samplewise:
        value = value.squeeze(0)
    return value.to(out_dtype)


class _Prepared(NamedTuple):
    counts: Counts
    task: str
    samplewise: bool
    out_dtype: torch.dtype


def _prepare(fn: str, input: Tensor, target: Tensor, *, task: str, num_classes: int | None,
             average: str, temperature: float | Tensor, threshold: float,
             ignore_index: int | None, multidim_average: str, zero_division: float,
             validate_args: bool, top_k: int | None = None,
             hook: CountsHook | None = None, check: bool = True) -> _Prepared:
    """Validate, format and count: the shared first half of every classification metric.

    `top_k` counts top-k hits as the true positives instead of the argmax decision;
    `hook` maps the counts before any formula sees them (Modules use it to sum counts
    across processes and to mix in running statistics). `check=False` skips the option
    checks, for Modules that ran them once in `__init__`.
    """
    if check:
        check_classification_options(
            fn, task=task, num_classes=num_classes, average=average,
            temperature=temperature, threshold=threshold, ignore_index=ignore_index,
            multidim_average=multidim_average, zero_division=zero_division)
        if top_k is not None:
            check_top_k(fn, task=task, k=top_k, num_classes=num_classes)
    z, y, w, c = format_inputs(fn, input, target, task=task, num_classes=num_classes,
                               ignore_index=ignore_index, validate_args=validate_args)
    samplewise = multidim_average == "samplewise"
    if top_k is None:
        counts = _statistics(z, y, w, c, task=task, temperature=temperature,
                             threshold=threshold, samplewise=samplewise)
    else:
        counts = _top_k_counts(z, y, w, c, top_k, temperature, samplewise)
    if hook is not None:
        counts = hook(counts)
    return _Prepared(counts, task, samplewise, compute_dtype(z.dtype))


def _tversky_value(c: Counts, task: str, average: str, zero_division: float, alpha: float,
                   beta: float) -> Tensor:
    """Every metric of the Tversky form: precision, recall, F-beta, Dice, Jaccard."""
    if average == "micro" and task != "binary":
        return _tversky(c.micro(), alpha, beta, zero_division).squeeze(-1)
    value = _tversky(c, alpha, beta, zero_division)
    return value if task == "binary" else _average(value, c.support, average, zero_division)


def _mcc_value(c: Counts, task: str, average: str, zero_division: float) -> Tensor:
    if task == "multiclass" and average == "micro":
        return _multiclass_mcc(c, zero_division)
    if task == "multilabel" and average == "micro":
        return _binary_mcc(c.micro(), zero_division).squeeze(-1)
    value = _binary_mcc(c, zero_division)
    return value if task == "binary" else _average(value, c.support, average, zero_division)


def _accuracy_value(c: Counts, task: str, average: str, zero_division: float) -> Tensor:
    """Accuracy over the counts: fraction correct (micro), balanced (macro), per class."""
    if task == "multiclass":
        if average in ("micro", "weighted"):
            return _divide(c.tp.sum(-1), c.support.sum(-1), zero_division)
        recall = _divide(c.tp, c.support, zero_division)
        if average == "none":
            return recall
        present = (c.support > 0).to(recall.dtype)
        return _divide((recall * present).sum(-1), present.sum(-1), zero_division)
    if task == "binary" or average == "micro":
        c = c.micro()
    total = as_tensor_on(c.total, c.tp)
    correct = total - c.pred - c.support + 2 * c.tp
    value = _divide(correct, total.expand_as(correct), zero_division)
    if task == "binary" or average == "micro":
        return value.squeeze(-1)
    return _average(value, c.support, average, zero_division)


Kind = Literal["tversky", "accuracy", "mcc"]


def evaluate(fn: str, kind: Kind, input: Tensor, target: Tensor, *, alpha: float = 0.0,
             beta: float = 0.0, top_k: int | None = None, hook: CountsHook | None = None,
             check: bool = True, **options) -> Tensor:
    """The one pipeline: validate, count (optionally `hook` the counts), apply a formula.

    `kind` selects the formula: "tversky" (with `alpha`, `beta`), "accuracy" (top-k
    accuracy with `top_k`) or "mcc". Public functions and Modules all call this.
    """
    prep = _prepare(fn, input, target, top_k=top_k, hook=hook, check=check, **options)
    average, zd = options["average"], options["zero_division"]
    if kind == "tversky":
        value = _tversky_value(prep.counts, prep.task, average, zd, alpha, beta)
    elif kind == "accuracy":
        value = _accuracy_value(prep.counts, prep.task, average, zd)
    else:
        value = _mcc_value(prep.counts, prep.task, average, zd)
    return _finish(value, prep.task, prep.samplewise, prep.out_dtype)


def stat_scores(fn: str, input: Tensor, target: Tensor, **options) -> StatScores:
    """The pipeline's counts as `StatScores` (no formula): `(C,)` each, or `(N, C)` for
    `multidim_average="samplewise"`. `options` are those of `evaluate`."""
    prep = _prepare(fn, input, target, average="none", zero_division=0.0, **options)
    stats = prep.counts.stat_scores()
    return StatScores(*(t if prep.samplewise else t.squeeze(0) for t in stats))

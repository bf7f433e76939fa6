r"""The machinery behind the classification metrics: formatting, counts, formulas.

Every metric runs one pipeline, `evaluate`:

1. `check_classification_options` (in `_classification_options`; Modules run it once, in
   `__init__`);
2. `format_inputs`: a class axis 1 everywhere, the compute dtype, a 0/1 weight per entry
   for `ignore_index`;
3. `Counts` (`statistics`, also read by Cohen's kappa in `_agreement_core`): the
   decision's true positives and predicted mass per (group, class), from
   `_classification_counts` (argmax/threshold, or top-k), with the support and the number
   of counted entries; exact integers in float64 at temperature 0;
4. an optional `CountsHook` (Modules: sum across processes, mix running statistics);
5. one formula over the counts: Tversky (precision, recall, F-beta, Dice, Jaccard),
   accuracy, or MCC, then the average over classes (`Averaging`, in
   `_classification_options`: which classes a macro average counts, and how a class absent
   from the target scores).

The public functions (`softmetrics.functional.classification`) and the Modules
(`softmetrics.losses.classification`) call `evaluate` (or `stat_scores`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor

from .. import _checks
from .._relax import (
    as_tensor_on,
    compute_dtype,
    full_precision,
    is_hard,
    soft_argmax,
    soft_positive,
)
from ._classification_counts import decision_counts, group_sum, index_counts, top_k_hits
from ._classification_options import (
    Averaging,
    check_class_weight_values,
    check_class_weights,
    check_classification_options,
    check_top_k,
)
from ._lovasz import check_lovasz_options, lovasz_columns

__all__ = [
    "Counts",
    "CountsHook",
    "Kind",
    "StatScores",
    "class_support",
    "evaluate",
    "format_inputs",
    "stat_scores",
    "statistics",
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

    def stat_scores(self) -> StatScores:
        """The four counts TP, FP, FN, TN."""
        fn = self.support - self.tp
        return StatScores(self.tp, self.pred - self.tp, fn, self.total - self.pred - fn)


CountsHook = Callable[[Counts], Counts]
"""Maps the counts before a formula reads them (Modules: sums across processes, running
statistics)."""


# ---------------------------------------------------------------------------------------
# options and inputs


def format_inputs(fn: str, input: Tensor, target: Tensor, *, task: str,
                  num_classes: int | None, ignore_index: int | None, validate_args: bool,
                  soft_targets: bool = False) -> tuple[Tensor, Tensor, Tensor | None, int]:
    """Check shapes and dtypes; return `(z, y, w, C)` with a class axis 1 everywhere.

    `z` is the input as (N, C, ...) (binary: C = 1) in its own dtype: the statistics
    convert it to the compute dtype (the fused softmax block by block, so that no float32
    copy of half-precision logits is kept for backward); `y` is the target: class indices
    (N, ...) for multiclass, 0/1 floats (compute dtype) shaped like `z` otherwise, with
    ignored entries set to 0; `w` is the 0/1 weight of each entry (`None` when nothing is
    ignored) shaped like `y`, in the compute dtype. With `soft_targets`, a floating target
    of the input's shape holds probabilities (`_checks.is_soft_target`): `y` is that
    target, detached, in the compute dtype and shaped like `z` (multiclass included).
    """
    _checks.check_task_inputs(fn, input, target, task=task, num_classes=num_classes,
                              ignore_index=ignore_index, validate_args=validate_args,
                              soft_targets=soft_targets)
    if _checks.checks_data(validate_args):
        _checks.check_finite(fn, "input", input)
    soft = soft_targets and _checks.is_soft_target(task, input, target)
    dtype = compute_dtype(input.dtype)
    z = input
    if task == "binary" and _checks.binary_channel_squeezed(input, target):
        z = input.squeeze(1)
    w = None
    y = target.detach() if soft else target
    if ignore_index is not None:
        keep = y != ignore_index
        w = keep.to(dtype)
        y = torch.where(keep, y, torch.zeros((), dtype=y.dtype, device=y.device))
    if task == "multiclass" and not soft:
        y = y.long()
    else:
        y = y.to(dtype)
        if task == "binary":
            z, y = z.unsqueeze(1), y.unsqueeze(1)
            w = None if w is None else w.unsqueeze(1)
    return z, y, w, int(z.shape[1])


# ---------------------------------------------------------------------------------------
# statistics: the counts of every metric


def class_support(y: Tensor, w: Tensor | None, num_classes: int, samplewise: bool,
                  dtype: torch.dtype) -> Tensor:
    """Support (G, C) of multiclass labels `y`: the (weighted) number of entries per
    class, summed in `dtype`."""
    ones = torch.ones((), dtype=dtype, device=y.device).expand(y.shape)
    return index_counts(ones if w is None else w.to(dtype), y, num_classes, samplewise)


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
        support = class_support(y, w, num_classes, samplewise, hit.dtype)
    if is_hard(temperature):
        tp = torch.where(_nan_groups(z, samplewise), torch.nan, tp.double())
        support = support.double()
    return Counts(tp, tp, support, 0.0)


def _top_k_decision_counts(z: Tensor, y: Tensor, w: Tensor | None, num_classes: int, k: int,
                           temperature: float | Tensor, samplewise: bool) -> Counts:
    """Counts of the top-k decision of precision, recall and F-beta (torchmetrics'
    `top_k`): each entry predicts its true class when that ranks in the top k (the hit
    `h` of `top_k_hits`), else its argmax `a` (soft: the softmax), so its decision is
    `h e_y + (1 - h) a`: one unit of predicted mass per entry, as for the argmax."""
    dtype = compute_dtype(z.dtype)
    with full_precision(z.device):
        hit = top_k_hits(z.to(dtype), y, k, temperature)
        a = soft_argmax(z.to(dtype), temperature, dim=1)
        miss = 1.0 - hit
        if w is not None:
            hit, miss = hit * w, miss * w
        true = hit + miss * a.gather(1, y.unsqueeze(1)).squeeze(1)
        tp = index_counts(true, y, num_classes, samplewise)
        pred = group_sum(a * miss.unsqueeze(1), samplewise) + index_counts(
            hit, y, num_classes, samplewise)
    with torch.no_grad():
        support = class_support(y, w, num_classes, samplewise, tp.dtype)
        if w is None:
            total: Tensor | float = float(math.prod(y.shape[1:]) if samplewise else y.numel())
        else:
            total = group_sum(w.unsqueeze(1), samplewise)
    if is_hard(temperature):
        bad = _nan_groups(z, samplewise)
        tp = torch.where(bad, torch.nan, tp.double())
        pred = torch.where(bad, torch.nan, pred.double())
        support = support.double()
        total = total.double() if isinstance(total, Tensor) else total
    return Counts(tp, pred, support, total)


def statistics(z: Tensor, y: Tensor, w: Tensor | None, num_classes: int, *, task: str,
                temperature: float | Tensor, threshold: float, samplewise: bool,
                soft: bool = False) -> Counts:
    """The counts of the decision on `z` against `y`, each (G, C).

    At temperature 0 they are exact integers, returned in float64 so that the formulas of
    the exact metric round like scikit-learn's; soft counts stay in the compute dtype.
    With soft targets (`soft`) the support is the target mass, and TP sums
    `min(decision, target)` (see `_classification_counts._label_counts`).
    """
    with full_precision(z.device):  # autocast would round the weighted sums to half
        tp, pred = decision_counts(z, y, w, task=task, temperature=temperature,
                                   threshold=threshold, samplewise=samplewise, soft=soft)
    with torch.no_grad():
        if task == "multiclass" and not soft:
            support = class_support(y, w, num_classes, samplewise, tp.dtype)
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

    Every formula here has `0 <= num <= den` where it divides. The denominator is clamped
    at the square root of the dtype's smallest normal number (about 1e-19 in float32):
    below it `num / den` would have a slope of order `1 / den`, up to `1 / tiny`, which a
    small temperature's factor `1 / tau` in the softmax backward takes to inf. Such soft
    counts (a class whose predicted mass underflows) hold no mass worth the name; the
    clamp takes their ratio continuously to 0 as `den` falls to 0, where `zero_division`
    takes over (exact counts are integers, never in between). A NaN (from a NaN or
    infinite logit) is divided, not replaced: it reaches the result.
    """
    floor = torch.finfo(den.dtype).tiny ** 0.5
    # `den <= 0` is False for NaN: one comparison
    return torch.where(den <= 0, zero_division, num / den.clamp_min(floor))


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
    ordered = sorted(groups.items(), key=lambda item: item[0] < 0)  # negatives last
    a, x = ordered[0]
    total = x if a == 1.0 else a * x
    for a, x in ordered[1:]:
        total = total + x if a == 1.0 else total - x if a == -1.0 else total + a * x
    return total


def _tversky(c: Counts, alpha: float, beta: float, zero_division: float,
             temperature: float | Tensor | None = None) -> Tensor:
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
    """
    den = _weighted_sum(((1.0 - alpha - beta, c.tp), (alpha, c.pred), (beta, c.support)))
    value = _divide(c.tp, den, zero_division)
    if beta == 0 and alpha > 0:
        predicted = (2.0 * c.pred).clamp(0.0, 1.0)  # products: `value` or `zd` unrounded
        value = predicted * value
        if zero_division != 0:
            value = value + (1.0 - predicted) * zero_division
    if temperature is not None and alpha > 0 and zero_division != 0:
        absent = zero_division * (1.0 - soft_positive(c.pred, temperature))
        value = torch.where(c.support == 0, absent, value)
    return value


def _mcc(trace: Tensor, total: Tensor | float, pred: Tensor, true: Tensor,
         zero_division: float) -> Tensor:
    """Gorodkin's R_K from the trace, total, and column (`pred`) and row (`true`) sums of a
    confusion matrix whose class axis is the last one; one value per group."""
    cov_pt = trace * total - (pred * true).sum(-1)
    cov_pp = total * total - (pred * pred).sum(-1)
    cov_tt = total * total - (true * true).sum(-1)
    den = cov_pp * cov_tt
    tiny = torch.finfo(den.dtype).tiny
    # NaN counts give a NaN value, not zero_division: `NaN <= 0` is False
    return torch.where(den <= 0, zero_division, cov_pt * torch.rsqrt(den.clamp_min(tiny)))


def _multiclass_mcc(c: Counts, zero_division: float) -> Tensor:
    total = c.total if not isinstance(c.total, Tensor) else c.total[..., 0]
    return _mcc(c.tp.sum(-1), total, c.pred, c.support, zero_division)


def _binary_mcc(c: Counts, zero_division: float) -> Tensor:
    """Per-class one-vs-rest MCC: R_K of the 2 x 2 table (negatives, positives)."""
    tn = c.total - c.pred - c.support + c.tp
    neg_pred, neg_true = c.total - c.pred, c.total - c.support
    return _mcc(c.tp + tn, c.total, torch.stack([neg_pred, c.pred], -1),
                torch.stack([neg_true, c.support], -1), zero_division)


def _average(score: Tensor, c: Counts, how: Averaging, seen: Tensor | None = None) -> Tensor:
    """Reduce per-class scores (G, C) over classes: macro, weighted by support, or none.

    The macro average weighs each class by whether it counts: 0 for the ignored class;
    with `absent="skip"`, 1 for a class with a target and `soft_positive(seen)` for one
    without (`seen` = its FP by default): exactly "has a target or a prediction" at
    temperature 0, and at temperature > 0 a weight that predicting an absent class less
    lowers, with a gradient at every count, instead of a constant term.
    """
    if how.average == "none":
        return score
    if how.average == "weighted":
        return _divide((score * c.support).sum(-1), c.support.sum(-1), how.zero_division)
    keep = how.class_mask(score, c.support)
    if how.absent == "include":
        if keep is None:
            return score.mean(-1)
        weight = keep.expand_as(score)
    else:
        seen = (c.pred - c.tp).clamp_min(0.0) if seen is None else seen
        weight = torch.where(c.support > 0, 1.0, soft_positive(seen, how.temperature))
        if keep is not None:
            weight = weight * keep
    return _divide((score * weight).sum(-1), weight.sum(-1), how.zero_division)


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
    num_classes: int


def _prepare(fn: str, input: Tensor, target: Tensor, *, task: str, num_classes: int | None,
             average: str, temperature: float | Tensor, threshold: float,
             ignore_index: int | None, multidim_average: str, zero_division: float,
             validate_args: bool, absent_classes: str | None = None, top_k: int | None = None,
             top_k_hits_only: bool = True, hook: CountsHook | None = None,
             check: bool = True) -> _Prepared:
    """Validate, format and count: the shared first half of every classification metric.

    `top_k` counts top-k hits as the true positives instead of the argmax decision
    (`top_k_hits_only`: top-k accuracy) or decides by the top k (`_top_k_decision_counts`:
    precision, recall, F-beta);
    `hook` maps the counts before any formula sees them (Modules use it to sum counts
    across processes and to mix in running statistics). `check=False` skips the option
    checks, for Modules that ran them once in `__init__`.
    """
    if check:
        check_classification_options(
            fn, task=task, num_classes=num_classes, average=average,
            temperature=temperature, threshold=threshold, ignore_index=ignore_index,
            multidim_average=multidim_average, zero_division=zero_division,
            absent_classes=absent_classes)
        if top_k is not None:
            check_top_k(fn, task=task, k=top_k, num_classes=num_classes)
    soft = top_k is None and _checks.is_soft_target(task, input, target)
    z, y, w, c = format_inputs(fn, input, target, task=task, num_classes=num_classes,
                               ignore_index=ignore_index, validate_args=validate_args,
                               soft_targets=top_k is None)
    samplewise = multidim_average == "samplewise"
    if top_k is None:
        counts = statistics(z, y, w, c, task=task, temperature=temperature,
                             threshold=threshold, samplewise=samplewise, soft=soft)
    elif top_k_hits_only:
        counts = _top_k_counts(z, y, w, c, top_k, temperature, samplewise)
    else:
        counts = _top_k_decision_counts(z, y, w, c, top_k, temperature, samplewise)
    if hook is not None:
        counts = hook(counts)
    return _Prepared(counts, task, samplewise, compute_dtype(z.dtype), c)


def _focal(value: Tensor, gamma: float) -> Tensor:
    """`1 - (1 - value)^gamma`, whose loss is the focal loss `(1 - value)^gamma` (Abraham
    and Khan's focal Tversky loss). For `gamma < 1` the slope at `1 - value = 0` (reached
    by saturated soft values) is infinite: below the machine epsilon `eps` the power is
    replaced by its chord, `(1 - value) eps^(gamma - 1)`, at most `eps^gamma` away; exact
    values (float64 ratios of counts) never fall there. A NaN value stays NaN."""
    if gamma == 1.0:
        return value
    miss = (1.0 - value).clamp_min(0.0)  # rounding may put a soft value a hair above 1
    if gamma > 1.0:
        return 1.0 - miss.pow(gamma)
    eps = torch.finfo(miss.dtype).eps
    small = miss < eps
    power = torch.where(small, eps, miss).pow(gamma)  # no infinite slope at 0, not even masked
    return 1.0 - torch.where(small, miss * eps ** (gamma - 1.0), power)


def _tversky_value(c: Counts, task: str, how: Averaging, alpha: float,
                   beta: float, gamma: float = 1.0, skip_unsupported: bool = False) -> Tensor:
    """Every metric of the Tversky form: precision, recall, F-beta, Dice, Jaccard.

    `gamma` applies `_focal` to the value of each class (of the pooled counts for
    "micro") before the average, which weighs the classes as it weighs the plain values.
    `skip_unsupported`: a macro average that skips absent classes skips every class
    absent from the target, predicted or not (torchmetrics' precision and recall with
    `top_k > 1`).
    """
    zd = how.zero_division
    if (how.average == "micro" or how.class_weights == "generalized") and task != "binary":
        micro = c.micro(how.class_mask(c.tp, c.support))
        return _focal(_tversky(micro, alpha, beta, zd, how.temperature), gamma).squeeze(-1)
    value = _tversky(c, alpha, beta, zd, how.temperature if how.bridges_absent else None)
    value = _focal(value, gamma)
    if task == "binary":
        return value
    return _average(value, c, how, seen=torch.zeros_like(c.tp) if skip_unsupported else None)


def _mcc_value(c: Counts, task: str, how: Averaging) -> Tensor:
    zd = how.zero_division
    if task == "multiclass" and how.average == "micro":
        return _multiclass_mcc(c, zd)
    if task == "multilabel" and how.average == "micro":
        return _binary_mcc(c.micro(), zd).squeeze(-1)
    value = _binary_mcc(c, zd)
    return value if task == "binary" else _average(value, c, how)


def _accuracy_value(c: Counts, task: str, how: Averaging) -> Tensor:
    """Accuracy over the counts: fraction correct (micro), balanced (macro), per class.

    Multiclass macro is the mean recall; skipping absent classes, it skips every class
    absent from the target, predicted or not (scikit-learn's `balanced_accuracy_score`).
    """
    zd = how.zero_division
    if task == "multiclass":
        if how.average in ("micro", "weighted"):
            return _divide(c.tp.sum(-1), c.support.sum(-1), zd)
        return _average(_divide(c.tp, c.support, zd), c, how, seen=torch.zeros_like(c.tp))
    if task == "binary" or how.average == "micro":
        c = c.micro()
    total = as_tensor_on(c.total, c.tp)
    correct = total - c.pred - c.support + 2 * c.tp
    value = _divide(correct, total.expand_as(correct), zd)
    if task == "binary" or how.average == "micro":
        return value.squeeze(-1)
    return _average(value, c, how)


Kind = Literal["tversky", "accuracy", "mcc"]


def evaluate(fn: str, kind: Kind, input: Tensor, target: Tensor, *, alpha: float = 0.0,
             beta: float = 0.0, top_k: int | None = None, hook: CountsHook | None = None,
             check: bool = True, gamma: float = 1.0, skip_unsupported: bool = False,
             **options: Any) -> Tensor:
    """The one pipeline: validate, count (optionally `hook` the counts), apply a formula.

    `kind` selects the formula: "tversky" (with `alpha`, `beta`, the focal exponent
    `gamma`, checked by the caller: see `_focal`, and the top-k decision with `top_k`),
    "accuracy" (top-k accuracy with `top_k`) or "mcc". Public functions and Modules all
    call this. `relaxation="lovasz"` (Jaccard only) evaluates `_lovasz_value` instead.
    """
    class_weights = options.pop("class_weights", None)
    relaxation = options.pop("relaxation", "softmax")
    if check:
        check_lovasz_options(fn, relaxation, average=options["average"],
                             class_weights=class_weights)
    if check and class_weights is not None:
        check_class_weights(fn, kind, class_weights, task=options["task"],
                            num_classes=options["num_classes"], average=options["average"])
        if _checks.checks_data(options["validate_args"]):
            check_class_weight_values(fn, class_weights)
    if relaxation == "lovasz":
        return _lovasz_value(fn, input, target, gamma=gamma, check=check,
                             class_weights=class_weights, **options)
    prep = _prepare(fn, input, target, top_k=top_k, top_k_hits_only=kind == "accuracy",
                    hook=hook, check=check, **options)
    how = Averaging.of(prep.task, options["average"], options["zero_division"],
                       options.get("absent_classes"), options["ignore_index"],
                       prep.num_classes, options["temperature"], class_weights)
    if kind == "tversky":
        value = _tversky_value(prep.counts, prep.task, how, alpha, beta, gamma,
                               skip_unsupported)
    elif kind == "accuracy":
        value = _accuracy_value(prep.counts, prep.task, how)
    else:
        value = _mcc_value(prep.counts, prep.task, how)
    return _finish(value, prep.task, prep.samplewise, prep.out_dtype)


def _lovasz_value(fn: str, input: Tensor, target: Tensor, *, gamma: float, check: bool,
                  class_weights: Tensor | str | None, **options: Any) -> Tensor:
    """The Jaccard index under the Lovász relaxation (`_lovasz`), averaged as the other
    formulas are.

    A column with a target scores `1 - loss`; one without scores `zero_division *
    (1 - loss)`, the Lovász extension of its exact value (`zero_division` unless
    something is predicted: its loss is then the largest error). For
    `absent_classes="skip"` that loss is also the "is it predicted?" that weighs an
    absent class (`_average`'s `seen`). `"micro"` is the extension of the pooled loss,
    one column of every (class, entry) pair.
    """
    if check:
        check_classification_options(fn, **{k: v for k, v in options.items()
                                            if k != "validate_args"})
    task, average = options["task"], options["average"]
    z, y, w, c = format_inputs(fn, input, target, task=task,
                               num_classes=options["num_classes"],
                               ignore_index=options["ignore_index"],
                               validate_args=options["validate_args"])
    samplewise = options["multidim_average"] == "samplewise"
    temperature = options["temperature"]
    how = Averaging.of(task, average, options["zero_division"], options.get("absent_classes"),
                       options["ignore_index"], c, temperature, class_weights)
    pooled = average == "micro" and task != "binary"
    with full_precision(z.device):
        columns = lovasz_columns(z, y, w, task=task, temperature=temperature,
                                 threshold=options["threshold"], samplewise=samplewise,
                                 pooled=pooled,
                                 keep=how.class_mask(z.new_empty(c)) if pooled else None)
    loss, support = columns
    if is_hard(temperature):
        loss = torch.where(_nan_groups(z, samplewise), torch.nan, loss)
    value = _focal(torch.where(support > 0, 1.0 - loss, how.zero_division * (1.0 - loss)),
                   gamma)
    if pooled:
        value = value.squeeze(-1)
    elif task != "binary":  # the average reads the support only (and `seen`)
        value = _average(value, Counts(support, support, support, 0.0), how, seen=loss)
    return _finish(value, task, samplewise, compute_dtype(z.dtype))


def stat_scores(fn: str, input: Tensor, target: Tensor, **options: Any) -> StatScores:
    """The pipeline's counts as `StatScores` (no formula): `(C,)` each, or `(N, C)` for
    `multidim_average="samplewise"`. `options` are those of `evaluate`."""
    prep = _prepare(fn, input, target, average="none", zero_division=0.0, **options)
    stats = prep.counts.stat_scores()
    return StatScores(*(t if prep.samplewise else t.squeeze(0) for t in stats))


r"""The machinery behind the classification metrics: formatting, counts, the pipeline.

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
5. one formula over the counts (`_classification_formulas`): Tversky (precision, recall,
   F-beta, Dice, Jaccard), accuracy, or MCC, then the average over classes (`Averaging`, in
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
    compute_dtype,
    full_precision,
    is_hard,
    soft_argmax,
    sum_dtype,
)
from ._classification_counts import (
    decision_counts,
    group_sum,
    index_counts,
    top_k_hits,
)
from ._classification_formulas import (
    Counts,
    StatScores,
    accuracy_value,
    class_average,
    focal,
    mcc_value,
    tversky_value,
)
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


CountsHook = Callable[[Counts], Counts]
"""Maps the counts before a formula reads them (Modules: sums across processes, running
statistics)."""


# ---------------------------------------------------------------------------------------
# options and inputs


def format_inputs(fn: str, input: Tensor, target: Tensor, *, task: str,
                  num_classes: int | None, ignore_index: int | None, validate_args: bool,
                  soft_targets: bool = False, temperature: float | Tensor = 0.0
                  ) -> tuple[Tensor, Tensor, Tensor | None, int]:
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
                              ignore_index=ignore_index, soft_targets=soft_targets)
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
    if _checks.checks_data(validate_args):
        _checks.check_task_data(fn, input, target, task=task, num_classes=num_classes,
                                ignore_index=ignore_index, soft_targets=soft_targets,
                                masked=None if ignore_index is None else y,
                                temperature=temperature)
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


def _entries(y: Tensor, w: Tensor | None, samplewise: bool, dtype: torch.dtype,
             exact: bool) -> Tensor | float:
    """The number of counted entries per group: a number where nothing is ignored (known
    without the data), else the sum of the weights (float64 for exact counts)."""
    if w is None:
        return float(math.prod(y.shape[1:]) if samplewise else y.numel())
    total = group_sum(w.unsqueeze(1), samplewise, dtype)
    return total.double() if exact else total


def _top_k_counts(z: Tensor, y: Tensor, w: Tensor | None, num_classes: int, k: int,
                  temperature: float | Tensor, samplewise: bool) -> Counts:
    """Counts whose true positives are the top-k hits (the formula reads TP and support;
    the number of entries tells running statistics whether the batch holds any)."""
    hit = top_k_hits(z.to(compute_dtype(z.dtype)), y, k, temperature)
    if w is not None:
        hit = hit * w
    exact = sum_dtype(z.device) if is_hard(temperature) else None  # halves, summed exactly
    tp = index_counts(hit, y, num_classes, samplewise, exact)
    with torch.no_grad():
        support = class_support(y, w, num_classes, samplewise, tp.dtype)
        total = _entries(y, w, samplewise, tp.dtype, is_hard(temperature))
    if is_hard(temperature):
        tp = torch.where(_nan_groups(z, samplewise), torch.nan, tp.double())
        support = support.double()
    return Counts(tp, tp, support, total)


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
        exact = sum_dtype(z.device) if is_hard(temperature) else None  # summed exactly
        tp = index_counts(true, y, num_classes, samplewise, exact)
        pred = group_sum(a * miss.unsqueeze(1), samplewise, exact) + index_counts(
            hit, y, num_classes, samplewise, exact)
    with torch.no_grad():
        support = class_support(y, w, num_classes, samplewise, tp.dtype)
        total = _entries(y, w, samplewise, tp.dtype, is_hard(temperature))
    if is_hard(temperature):
        bad = _nan_groups(z, samplewise)
        tp = torch.where(bad, torch.nan, tp.double())
        pred = torch.where(bad, torch.nan, pred.double())
        support = support.double()
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
            total = _entries(y, w, samplewise, tp.dtype, exact=False)  # float64 below
        else:
            support = group_sum(y if w is None else y * w, samplewise, tp.dtype)
            if w is None:
                per_sample = math.prod(y.shape[2:])
                total = float(per_sample if samplewise else y.shape[0] * per_sample)
            else:
                total = group_sum(w.expand_as(y), samplewise, tp.dtype)
    if is_hard(temperature):
        if tp.device.type != "mps":
            tp, pred, support = tp.double(), pred.double(), support.double()
            if isinstance(total, Tensor):
                total = total.double()
        bad = _nan_groups(z, samplewise)
        tp, pred = torch.where(bad, torch.nan, tp), torch.where(bad, torch.nan, pred)
    return Counts(tp, pred, support, total)


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
    if top_k is not None:
        _checks.refuse_class_probabilities(fn, task, input, target, "the top-k decision")
    soft = top_k is None and _checks.is_soft_target(task, input, target)
    z, y, w, c = format_inputs(fn, input, target, task=task, num_classes=num_classes,
                               ignore_index=ignore_index, validate_args=validate_args,
                               soft_targets=top_k is None, temperature=temperature)
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


Kind = Literal["tversky", "accuracy", "mcc"]


def evaluate(fn: str, kind: Kind, input: Tensor, target: Tensor, *, alpha: float = 0.0,
             beta: float = 0.0, top_k: int | None = None, hook: CountsHook | None = None,
             check: bool = True, gamma: float = 1.0, skip_unsupported: bool = False,
             **options: Any) -> Tensor:
    """The one pipeline: validate, count (optionally `hook` the counts), apply a formula.

    `kind` selects the formula: "tversky" (with `alpha`, `beta`, the focal exponent
    `gamma`, checked by the caller: see `focal`, and the top-k decision with `top_k`),
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
        value = tversky_value(prep.counts, prep.task, how, alpha, beta, gamma,
                               skip_unsupported)
    elif kind == "accuracy":
        value = accuracy_value(prep.counts, prep.task, how)
    else:
        value = mcc_value(prep.counts, prep.task, how)
    return _finish(value, prep.task, prep.samplewise, prep.out_dtype)


def _lovasz_value(fn: str, input: Tensor, target: Tensor, *, gamma: float, check: bool,
                  class_weights: Tensor | str | None, **options: Any) -> Tensor:
    """The Jaccard index under the Lovász relaxation (`_lovasz`), averaged as the other
    formulas are.

    A column with a target scores `1 - loss`; one without scores `zero_division *
    (1 - loss)`, the Lovász extension of its exact value (`zero_division` unless
    something is predicted: its loss is then the largest error). For
    `absent_classes="skip"` that loss is also the "is it predicted?" that weighs an
    absent class (`class_average`'s `seen`). `"micro"` is the extension of the pooled loss,
    one column of every (class, entry) pair.
    """
    if check:
        check_classification_options(fn, **{k: v for k, v in options.items()
                                            if k != "validate_args"})
    task, average = options["task"], options["average"]
    _checks.refuse_class_probabilities(fn, task, input, target, "the Lovász relaxation")
    z, y, w, c = format_inputs(fn, input, target, task=task,
                               num_classes=options["num_classes"],
                               ignore_index=options["ignore_index"],
                               validate_args=options["validate_args"],
                               temperature=options["temperature"])
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
    loss, support, exact = columns
    score = 1.0 - loss if exact is None else exact  # the exact index, unrounded
    if is_hard(temperature):
        nan = _nan_groups(z, samplewise)
        loss, score = torch.where(nan, torch.nan, loss), torch.where(nan, torch.nan, score)
    value = focal(torch.where(support > 0, score, how.zero_division * score), gamma)
    if pooled:
        value = value.squeeze(-1)
    elif task != "binary":  # the average reads the support only (and `seen`)
        value = class_average(value, Counts(support, support, support, 0.0), how, seen=loss)
    return _finish(value, task, samplewise, compute_dtype(z.dtype))


def stat_scores(fn: str, input: Tensor, target: Tensor, **options: Any) -> StatScores:
    """The pipeline's counts as `StatScores` (no formula): `(C,)` each, or `(N, C)` for
    `multidim_average="samplewise"`. `options` are those of `evaluate`."""
    prep = _prepare(fn, input, target, average="none", zero_division=0.0, **options)
    stats = prep.counts.stat_scores()
    return StatScores(*(t if prep.samplewise else t.squeeze(0) for t in stats))


r"""The options of the classification metrics: their checks, and how per-class values are
averaged (`Averaging`: which classes a macro average counts, how an absent class scores, the
class weights).

No tensor data is read here except by `check_class_weight_values` (run under
`validate_args`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor

from .. import _checks
from .._options import ABSENT_CLASSES, MULTIDIM_AVERAGES

__all__ = [
    "Averaging",
    "check_class_weight_values",
    "check_class_weights",
    "check_classification_options",
    "check_top_k",
    "fbeta_weights",
    "generalized_weights",
    "top_k_options",
    "tversky_weights",
]


def check_classification_options(fn: str, *, task: str, num_classes: int | None,
                                 average: str, temperature: float | Tensor, threshold: float,
                                 ignore_index: int | None, multidim_average: str,
                                 zero_division: float, absent_classes: str | None = None
                                 ) -> None:
    """Validate the options shared by every classification function (no tensor data read).

    Modules call this once in `__init__`; the functions call it on every call.
    """
    _checks.check_task_options(fn, task=task, num_classes=num_classes, average=average,
                               temperature=temperature, ignore_index=ignore_index)
    _checks.check_option(fn, "multidim_average", multidim_average, MULTIDIM_AVERAGES)
    _checks.check_number(fn, "threshold", threshold, low=0.0, high=1.0, low_open=True,
                         high_open=True)
    _checks.check_number(fn, "zero_division", zero_division, low=0.0, high=1.0)
    if absent_classes is not None:
        _checks.check_option(fn, "absent_classes", absent_classes, ABSENT_CLASSES)
        if task == "binary":
            _checks.fail(fn, "absent_classes", "None for task='binary' (one class, nothing "
                         "to average)", absent_classes)


class Averaging(NamedTuple):
    """How per-class values become the result.

    `absent` is "skip" (a class with no target and no prediction, TP + FP + FN = 0,
    leaves the macro average: scikit-learn's default `labels`, torchmetrics' multiclass
    rule) or "include" (every class counts; one absent from the target scores
    `zero_division` when nothing predicts it, scikit-learn's `labels=range(C)`).
    `ignored_class` is the multiclass class equal to `ignore_index`, when it lies in
    [0, C): it leaves the micro sums and every average (torchmetrics' Jaccard rule).
    Both rules read "is this count positive?", which `soft_positive` relaxes at the
    decision's `temperature`. `class_weights` (a (C,) tensor, or "generalized") weighs
    the classes of a macro average or the counts of a micro one (`class_mask`).
    """

    average: str
    zero_division: float
    absent: str
    ignored_class: int | None
    temperature: float | Tensor
    class_weights: Tensor | str | None = None

    @staticmethod
    def of(task: str, average: str, zero_division: float, absent_classes: str | None,
           ignore_index: int | None, num_classes: int, temperature: float | Tensor,
           class_weights: Tensor | str | None = None) -> Averaging:
        absent = absent_classes or ("skip" if task == "multiclass" else "include")
        ignored = (ignore_index if task == "multiclass" and ignore_index is not None
                   and 0 <= ignore_index < num_classes else None)
        return Averaging(average, zero_division, absent, ignored, temperature, class_weights)

    def class_mask(self, like: Tensor, support: Tensor | None = None) -> Tensor | None:
        """The weight of each class: 0 for the ignored class, times `class_weights`
        ("generalized" reads `support`); None when every class weighs 1."""
        mask: Tensor | None = None
        if self.ignored_class is not None:
            classes = torch.arange(like.shape[-1], device=like.device)
            mask = (classes != self.ignored_class).to(like.dtype)
        weights = self.class_weights
        if isinstance(weights, Tensor):
            weights = weights.to(dtype=like.dtype, device=like.device)
        elif weights == "generalized" and support is not None:
            weights = generalized_weights(support.to(like.dtype))
        else:
            return mask
        return weights if mask is None else weights * mask

    def bridges_absent(self) -> bool:
        """Whether a class absent from the target scores `zero_division` relaxed (see
        `_tversky`): every result but a macro average that skips absent classes. (A
        method: the compilers of torch 2.9 and older do not read a NamedTuple's
        properties.)"""
        return not (self.average == "macro" and self.absent == "skip")


def generalized_weights(support: Tensor) -> Tensor:
    """Sudre et al.'s class weights `1 / support^2` per group (G, C), for the generalized
    Dice score; a class with no support gets the largest weight of its group instead of
    infinity, as MONAI's `GeneralizedDiceLoss` does, so that predicting it still costs."""
    w = 1.0 / (support * support)
    finite = torch.isfinite(w)
    w = torch.where(finite, w, 0.0)
    return torch.where(finite, w, w.amax(-1, keepdim=True))


def check_class_weights(fn: str, kind: str, class_weights: object, *, task: str,
                        num_classes: int | None, average: str) -> None:
    """`class_weights`: a (C,) floating tensor (a macro average's class weights, or the
    micro pooling's for the Tversky family) or "generalized" (Tversky family only)."""
    if class_weights is None:
        return
    if task == "binary":
        _checks.fail(fn, "class_weights", "None for task='binary' (one class)", class_weights)
    micro_ok = kind == "tversky"
    allowed = ("macro", "micro") if micro_ok else ("macro",)
    if average not in allowed:
        _checks.fail(fn, "average", f"one of {allowed} with class_weights", average)
    if isinstance(class_weights, str):
        if class_weights != "generalized" or not micro_ok:
            _checks.fail(fn, "class_weights", "a (C,) tensor" + (
                " or 'generalized'" if micro_ok else ""), class_weights)
        return
    tensor = _checks.check_floating(fn, "class_weights", class_weights, what="class weights")
    if tensor.shape != (num_classes,):
        _checks.fail(fn, "class_weights", f"of shape ({num_classes},)", tuple(tensor.shape))


def check_class_weight_values(fn: str, class_weights: object) -> None:
    """The values of a weight tensor: finite and >= 0, not all 0 (reads data)."""
    if isinstance(class_weights, Tensor):
        w = class_weights.detach()
        if not bool(torch.isfinite(w).all() and (w >= 0).all() and (w > 0).any()):
            _checks.fail(fn, "class_weights", "finite, >= 0 and not all 0",
                         "other values")


def check_top_k(fn: str, *, task: str, k: int, num_classes: int | None) -> None:
    """Top-k accuracy: multiclass only, with 1 <= k <= num_classes."""
    _checks.check_option(fn, "task", task, ("multiclass",))
    _checks.check_int(fn, "k", k, low=1)
    if num_classes is not None and k > num_classes:
        _checks.fail(fn, "k", f"<= num_classes = {num_classes}", k)


def top_k_options(fn: str, top_k: int, *, task: str, num_classes: int | None,
                  by_support: bool) -> dict[str, Any]:
    """The `top_k` of precision, recall and F-beta, checked: an int >= 1, above 1 only for
    multiclass and at most `num_classes`. Returns what `evaluate` takes for it: nothing
    for 1 (the argmax), else `top_k` and, for precision and recall (`by_support`),
    torchmetrics' rule that a macro average skips every class absent from the target."""
    _checks.check_int(fn, "top_k", top_k, low=1)
    if top_k == 1:
        return {}
    if task != "multiclass":
        _checks.fail(fn, "top_k", "1 unless task='multiclass'", top_k)
    if num_classes is not None and top_k > num_classes:
        _checks.fail(fn, "top_k", f"<= num_classes = {num_classes}", top_k)
    return {"top_k": top_k, "skip_unsupported": by_support}


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

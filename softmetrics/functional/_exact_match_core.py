"""Exact match (subset accuracy): every entry of a unit right, a product over the entries
rather than counts, so it has its own pipeline next to `_classification_core`'s."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import _checks, _relax
from .._relax import compute_dtype, full_precision, is_hard, temperature_scale
from ._classification_core import format_inputs
from ._classification_options import check_classification_options

__all__ = ["check_exact_match_options", "exact_match"]


def check_exact_match_options(fn: str, *, task: str, num_classes: int | None,
                              temperature: float | Tensor, threshold: float,
                              ignore_index: int | None, multidim_average: str,
                              zero_division: float) -> None:
    """Exact match: multiclass or multilabel, with the shared options (no `average`)."""
    _checks.check_option(fn, "task", task, ("multiclass", "multilabel"))
    check_classification_options(fn, task=task, num_classes=num_classes, average="micro",
                                 temperature=temperature, threshold=threshold,
                                 ignore_index=ignore_index, multidim_average=multidim_average,
                                 zero_division=zero_division)


def _unit(tau: float | Tensor) -> bool:
    """Whether the relaxation's scale is the number 1 (a tensor always divides: it may
    carry a gradient)."""
    return not isinstance(tau, Tensor) and tau == 1.0


def exact_match(fn: str, input: Tensor, target: Tensor, *, task: str, num_classes: int | None,
                temperature: float | Tensor, threshold: float, ignore_index: int | None,
                multidim_average: str, zero_division: float, validate_args: bool,
                check: bool = True) -> Tensor:
    """The fraction of units whose every non-ignored entry is right, a unit being one
    position's labels (multilabel) or one sample's positions (multiclass); per sample
    (N,) for "samplewise". Soft: the product over a unit's entries of the probability
    that the entry is right, as a sum of logarithms (logsigmoid, log-softmax)."""
    if check:
        check_exact_match_options(fn, task=task, num_classes=num_classes,
                                  temperature=temperature, threshold=threshold,
                                  ignore_index=ignore_index, multidim_average=multidim_average,
                                  zero_division=zero_division)
    _checks.refuse_class_probabilities(fn, task, input, target, "exact match")
    z, y, w, _ = format_inputs(fn, input, target, task=task, num_classes=num_classes,
                               ignore_index=ignore_index, validate_args=validate_args,
                               temperature=temperature)
    dtype = compute_dtype(z.dtype)
    hard = is_hard(temperature)
    negated = False  # whether `log_right` holds -log q, the minus taken after the sum
    with full_precision(z.device):
        if hard:  # log(right) as 0 (right) or -1 (wrong): a unit is right when its sum is 0
            right = (z.argmax(1) == y if task == "multiclass"
                     else _relax.soft_threshold(z, 0, threshold) == y)
            exact = torch.float64 if z.device.type != "mps" else dtype
            log_right = right.to(exact) - 1.0
        else:
            tau = temperature_scale(temperature)
            x = z.to(dtype)  # no pass over the logits for a shift of 0 or a scale of 1
            if task == "multiclass":
                log_p = torch.log_softmax(x if _unit(tau) else x / tau, 1)
                log_right = log_p.gather(1, y.unsqueeze(1)).squeeze(1)
            else:
                # log q = logsigmoid(+-(z - b) / tau), which for 0/1 labels is minus the
                # elementwise binary cross-entropy of the scaled logits: one fused
                # operation each way where the sign, its product and the log-sigmoid took
                # four passes forward; the minus is taken after the sum, on (N,)
                shift = _relax.logit(threshold)
                scaled = x if shift == 0.0 else x - shift
                log_right = torch.nn.functional.binary_cross_entropy_with_logits(
                    scaled if _unit(tau) else scaled / tau, y, reduction="none")
                negated = True
        if w is not None:
            log_right = log_right * (w if task == "multilabel" else w.to(log_right.dtype))
        axes = (1,) if task == "multilabel" else tuple(range(1, log_right.ndim))
        total = log_right.sum(axes) if axes else log_right
        if negated:
            total = -total
        unit = (total == 0).to(total.dtype) if hard else total.exp()
    if hard:  # the exact decision would turn a NaN logit into an ordinary prediction
        nan = z.isnan().any(1) if task == "multilabel" else z.isnan().flatten(1).any(1)
        unit = torch.where(nan, torch.nan, unit)
    unit = unit.flatten(1) if unit.ndim > 1 else unit.unsqueeze(1)  # (N, units per sample)
    if multidim_average == "samplewise":
        count, value = unit.shape[1], unit.sum(1)
    else:
        count, value = unit.numel(), unit.sum()
    if count == 0:  # a shape, not data: no entries give zero_division (`value`, a sum of
        return (value + zero_division).to(dtype)  # nothing, keeps the graph: 0 gradient)
    return (value / count).to(dtype)

"""The exact-match loss (subset accuracy): a mean over samples, so no set-level options.
Its functional twin is `softmetrics.functional.soft_exact_match`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn

from .. import _checks
from .._options import REDUCTIONS, MultidimAverage, Reduction
from .._relax import reduce_per_sample
from ..functional._exact_match_core import check_exact_match_options, exact_match
from ._base import check_number_temperature


class SoftExactMatchLoss(nn.Module):
    """`1 - soft_exact_match`: the loss of
    [soft_exact_match][softmetrics.functional.soft_exact_match] (subset accuracy).

    Options: those of `soft_exact_match`, checked once here (an unknown keyword is a
    `TypeError`), and `reduction` of the per-sample losses of
    `multidim_average="samplewise"`: "mean" (default), "sum" or "none"; with "global" the
    loss is one number and only "mean" is accepted. The metric is a mean over samples,
    so there are no set-level options. `metric` returns the exact match with the same
    options.

    Examples:
        >>> import torch
        >>> from softmetrics import SoftExactMatchLoss
        >>> loss_fn = SoftExactMatchLoss(task="multilabel", num_classes=3, temperature=0.5)
        >>> logits = torch.tensor([[2.0, -1.0, 0.5], [1.0, 1.5, -2.0]], requires_grad=True)
        >>> labels = torch.tensor([[1, 0, 1], [1, 0, 0]])
        >>> loss_fn(logits, labels), loss_fn.metric(logits, labels)
        (tensor(0.6633, grad_fn=<RsubBackward1>), tensor(0.5000))
    """

    def __init__(self, *, task: Literal["multiclass", "multilabel"],
                 num_classes: int | None = None, temperature: float = 1.0,
                 threshold: float = 0.5, ignore_index: int | None = None,
                 multidim_average: MultidimAverage = "global", zero_division: float = 0.0,
                 validate_args: bool = True, reduction: Reduction = "mean",
                 **unexpected: Any) -> None:
        super().__init__()
        name = type(self).__name__
        _checks.check_no_extra_options(name, unexpected)
        check_number_temperature(name, temperature)
        check_exact_match_options(name, task=task, num_classes=num_classes,
                                  temperature=temperature, threshold=threshold,
                                  ignore_index=ignore_index, multidim_average=multidim_average,
                                  zero_division=zero_division)
        _checks.check_option(name, "reduction", reduction, REDUCTIONS)
        if multidim_average == "global" and reduction != "mean":
            _checks.fail(name, "reduction", "'mean' with multidim_average='global' (the "
                         "loss of the whole batch is one number; per-sample losses need "
                         "multidim_average='samplewise')", reduction)
        self.options: dict[str, Any] = dict(
            task=task, num_classes=num_classes, threshold=threshold,
            ignore_index=ignore_index, multidim_average=multidim_average,
            zero_division=zero_division, validate_args=validate_args)
        self.temperature = temperature
        self.reduction = reduction

    def _value(self, input: Tensor, target: Tensor, temperature: float) -> Tensor:
        return exact_match(type(self).__name__, input, target, temperature=temperature,
                           check=False, **self.options)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """The loss `1 - soft exact match`, reduced over samples for "samplewise"."""
        loss = 1.0 - self._value(input, target, self.temperature)
        if self.options["multidim_average"] == "samplewise":
            loss = reduce_per_sample(loss, self.reduction)
        return loss

    if TYPE_CHECKING:  # calling the Module runs `forward`: its signature for type checkers
        __call__ = forward

    @torch.no_grad()
    def metric(self, input: Tensor, target: Tensor) -> Tensor:
        """The exact match (temperature 0) with this loss's options; no gradient."""
        return self._value(input, target, 0.0)

    def extra_repr(self) -> str:
        shown = {k: v for k, v in self.options.items() if v is not None}
        shown["temperature"] = self.temperature
        if self.reduction != "mean":
            shown["reduction"] = self.reduction
        return ", ".join(f"{k}={v!r}" for k, v in shown.items())

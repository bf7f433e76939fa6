"""`torch.nn.Module` losses: each holds its options and makes one functional call.

`forward(input, target)` returns the loss (`1 - soft metric` for metrics, the loss itself
for InfoNCE and NCE); `.metric(input, target)` returns the exact metric with the same
options (temperature 0, no gradient).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .functional import classification, contrastive, ranking, text  # noqa: F401

__all__: list[str] = []

# --- classification ------------------------------------------------------------------


class _ClassificationLoss(nn.Module):
    """`1 - soft metric` of one classification function, with its options fixed.

    Options are validated once here; `forward` returns the loss (averaged over samples for
    `multidim_average="samplewise"`; per class for `average="none"`), `metric` the exact
    metric with the same options.
    """

    _function: ClassVar[Callable[..., Tensor]]
    _default_average: ClassVar[str] = "macro"

    def __init__(self, *, task: str, num_classes: int | None = None,
                 average: str | None = None, temperature: float = 1.0,
                 threshold: float = 0.5, ignore_index: int | None = None,
                 multidim_average: str = "global", zero_division: float = 0.0,
                 validate_args: bool = True, **extra: Any) -> None:
        super().__init__()
        average = self._default_average if average is None else average
        name = type(self).__name__
        classification.check_options(name, task=task, num_classes=num_classes,
                                     average=average, temperature=temperature,
                                     threshold=threshold, ignore_index=ignore_index,
                                     multidim_average=multidim_average,
                                     zero_division=zero_division)
        self.options: dict[str, Any] = dict(
            task=task, num_classes=num_classes, average=average, threshold=threshold,
            ignore_index=ignore_index, multidim_average=multidim_average,
            zero_division=zero_division, validate_args=validate_args, **extra)
        self.temperature = temperature

    def _value(self, input: Tensor, target: Tensor, temperature: float) -> Tensor:
        return type(self)._function(input, target, temperature=temperature, **self.options)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """The loss `1 - soft metric` (for MCC: in [0, 2])."""
        loss = 1.0 - self._value(input, target, self.temperature)
        if self.options["multidim_average"] == "samplewise":
            loss = loss.mean(0)
        return loss

    @torch.no_grad()
    def metric(self, input: Tensor, target: Tensor) -> Tensor:
        """The exact metric (temperature 0) with this loss's options; no gradient."""
        return self._value(input, target, 0.0)

    def extra_repr(self) -> str:
        shown = {k: v for k, v in self.options.items() if v is not None}
        return ", ".join(f"{k}={v!r}" for k, v in
                         {**shown, "temperature": self.temperature}.items())


class SoftAccuracyLoss(_ClassificationLoss):
    """`1 - soft_accuracy`; `average="micro"` by default ("macro" is balanced accuracy).

    Example:
        >>> import torch
        >>> from softmetrics import SoftAccuracyLoss
        >>> loss_fn = SoftAccuracyLoss(task="multiclass", num_classes=3)
        >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]], requires_grad=True)
        >>> target = torch.tensor([0, 2])
        >>> loss_fn(logits, target)
        tensor(0.5005, grad_fn=<RsubBackward1>)
        >>> loss_fn.metric(logits, target)
        tensor(0.5000)
    """

    _function = staticmethod(classification.soft_accuracy)
    _default_average = "micro"


class SoftPrecisionLoss(_ClassificationLoss):
    """`1 - soft_precision`."""

    _function = staticmethod(classification.soft_precision)


class SoftRecallLoss(_ClassificationLoss):
    """`1 - soft_recall`."""

    _function = staticmethod(classification.soft_recall)


class SoftFBetaLoss(_ClassificationLoss):
    """`1 - soft_fbeta_score` with the given `beta`."""

    _function = staticmethod(classification.soft_fbeta_score)

    def __init__(self, *, task: str, beta: float = 1.0, **options: Any) -> None:
        beta = classification._checks.check_number(type(self).__name__, "beta", beta, low=0.0,
                                                   low_open=True)
        super().__init__(task=task, beta=beta, **options)


class SoftF1Loss(_ClassificationLoss):
    """`1 - soft_f1_score`: the soft F1 (= soft Dice) loss.

    Example:
        >>> import torch
        >>> from softmetrics import SoftF1Loss
        >>> loss_fn = SoftF1Loss(task="binary")
        >>> logits = torch.tensor([2.0, -1.0, 0.5, -3.0], requires_grad=True)
        >>> loss = loss_fn(logits, torch.tensor([1, 1, 0, 0]))
        >>> loss.backward()
        >>> loss, logits.grad
        (tensor(0.3980, grad_fn=<RsubBackward1>), tensor([-0.0384, -0.0720,  0.0370,  0.0071]))
    """

    _function = staticmethod(classification.soft_f1_score)


SoftDiceLoss = SoftF1Loss


class SoftJaccardLoss(_ClassificationLoss):
    """`1 - soft_jaccard_index`: the soft IoU (Lovász-free) loss."""

    _function = staticmethod(classification.soft_jaccard_index)


SoftIoULoss = SoftJaccardLoss


class SoftTverskyLoss(_ClassificationLoss):
    """`1 - soft_tversky_index(alpha, beta)`."""

    _function = staticmethod(classification.soft_tversky_index)

    def __init__(self, *, task: str, alpha: float = 0.5, beta: float = 0.5,
                 **options: Any) -> None:
        name = type(self).__name__
        alpha = classification._checks.check_number(name, "alpha", alpha, low=0.0)
        beta = classification._checks.check_number(name, "beta", beta, low=0.0)
        super().__init__(task=task, alpha=alpha, beta=beta, **options)


class SoftMCCLoss(_ClassificationLoss):
    """`1 - soft_matthews_corrcoef`, in [0, 2]; `average="micro"` (R_K) by default."""

    _function = staticmethod(classification.soft_matthews_corrcoef)
    _default_average = "micro"


class SoftTopKAccuracyLoss(_ClassificationLoss):
    """`1 - soft_top_k_accuracy` (multiclass only)."""

    _function = staticmethod(classification.soft_top_k_accuracy)
    _default_average = "micro"

    def __init__(self, *, num_classes: int, k: int = 1, task: str = "multiclass",
                 **options: Any) -> None:
        name = type(self).__name__
        classification._checks.check_option(name, "task", task, ("multiclass",))
        classification._checks.check_int(name, "k", k, low=1)
        if k > num_classes:
            classification._checks.fail(name, "k", f"<= num_classes = {num_classes}", k)
        if "threshold" in options:
            classification._checks.fail(name, "threshold", "unset (top-k has no threshold)",
                                        options["threshold"])
        super().__init__(task=task, num_classes=num_classes, k=k, **options)
        del self.options["threshold"]


__all__ += [
    "SoftAccuracyLoss",
    "SoftDiceLoss",
    "SoftF1Loss",
    "SoftFBetaLoss",
    "SoftIoULoss",
    "SoftJaccardLoss",
    "SoftMCCLoss",
    "SoftPrecisionLoss",
    "SoftRecallLoss",
    "SoftTopKAccuracyLoss",
    "SoftTverskyLoss",
]

# --- ranking -------------------------------------------------------------------------

# --- text ----------------------------------------------------------------------------

# --- contrastive ---------------------------------------------------------------------

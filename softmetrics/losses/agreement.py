"""The Cohen's kappa loss, `1 - soft_cohen_kappa`: a set-level metric, with the set-level
options of the classification losses (`sync_dist`, `momentum`) acting on kappa's
statistics. Its functional twin is `softmetrics.functional.soft_cohen_kappa`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from torch import Tensor

from .. import _checks, distributed
from ..functional._agreement_core import (
    KappaCounts,
    KappaHook,
    KappaWeights,
    check_kappa_options,
    cohen_kappa,
)
from ._base import RunningStatistics, check_number_temperature, set_level_repr


class SoftCohenKappaLoss(RunningStatistics):
    r"""`1 - soft_cohen_kappa`, in [0, 2]: the loss of
    [soft_cohen_kappa][softmetrics.functional.soft_cohen_kappa]; with
    `weights="quadratic"` the soft quadratic weighted kappa loss of de la Torre, Puig and
    Valls (2018) for ordinal labels.

    Options: those of `soft_cohen_kappa`, checked once here (an unknown keyword is a
    `TypeError` naming the loss), and the
    [set-level options](losses.md#set-level-options) `sync_dist`, `process_group` and
    `momentum`, which act on kappa's statistics (the weighted disagreement, the
    predicted mass and the support per class, the number of entries: all sums over
    samples). There is no `multidim_average`, so no `reduction`: the loss is one number
    for the batch. `metric` returns the exact kappa with the same options.

    Examples:
        >>> import torch
        >>> from softmetrics import SoftCohenKappaLoss
        >>> loss_fn = SoftCohenKappaLoss(task="multiclass", num_classes=3, weights="quadratic")
        >>> logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.5], [-1.0, 0.0, 2.0],
        ...                        [0.5, 1.5, 0.0], [0.0, 0.2, 1.0]], requires_grad=True)
        >>> grades = torch.tensor([0, 1, 2, 2, 1])
        >>> loss_fn(logits, grades), loss_fn.metric(logits, grades)
        (tensor(0.5546, grad_fn=<RsubBackward1>), tensor(0.6429))
    """

    _float32_buffers: ClassVar[tuple[str, ...]] = ("running_",)

    def __init__(self, *, task: Literal["binary", "multiclass"], num_classes: int | None = None,
                 weights: KappaWeights = None, temperature: float = 1.0,
                 threshold: float = 0.5, ignore_index: int | None = None,
                 zero_division: float = 0.0, validate_args: bool = True,
                 sync_dist: bool = False,
                 process_group: torch.distributed.ProcessGroup | None = None,
                 momentum: float | None = None, **unexpected: Any) -> None:
        super().__init__()
        name = type(self).__name__
        _checks.check_no_extra_options(name, unexpected)
        check_number_temperature(name, temperature)
        check_kappa_options(name, task=task, num_classes=num_classes, weights=weights,
                            temperature=temperature, threshold=threshold,
                            ignore_index=ignore_index, zero_division=zero_division)
        self.options: dict[str, Any] = dict(
            task=task, num_classes=num_classes, weights=weights, threshold=threshold,
            ignore_index=ignore_index, zero_division=zero_division,
            validate_args=validate_args)
        self.temperature = temperature
        self.keep_set_level_options(sync_dist, process_group, momentum)
        if momentum is not None:
            # (1, C) buffers; the two (1, 1) statistics are stored broadcast along the row
            columns = 2 if task == "binary" else int(num_classes or 2)
            self.register_running(KappaCounts._fields, (1, columns))

    def _sync(self, counts: KappaCounts) -> KappaCounts:
        return KappaCounts(*distributed.all_reduce_sums(counts, self.process_group))

    def _hook(self, counts: KappaCounts) -> KappaCounts:
        if self.sync_dist:
            counts = self._sync(counts)
        if self.momentum is None:
            return counts
        return KappaCounts(*self.mix_running(list(counts), (counts.total > 0).any()))

    def _value(self, input: Tensor, target: Tensor, temperature: float,
               hook: KappaHook | None) -> Tensor:
        return cohen_kappa(type(self).__name__, input, target, temperature=temperature,
                           hook=hook, check=False, **self.options)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """The loss `1 - soft kappa`, in [0, 2]."""
        if self.momentum is not None:
            self.check_running_device(input)
        hook = self._hook if (self.sync_dist or self.momentum is not None) else None
        return 1.0 - self._value(input, target, self.temperature, hook)

    if TYPE_CHECKING:  # calling the Module runs `forward`: its signature for type checkers
        __call__ = forward

    @torch.no_grad()
    def metric(self, input: Tensor, target: Tensor) -> Tensor:
        """The exact kappa (temperature 0) with this loss's options; no gradient."""
        return self._value(input, target, 0.0, self._sync if self.sync_dist else None)

    def extra_repr(self) -> str:
        return set_level_repr(self, dict(self.options))

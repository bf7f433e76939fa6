"""Ranking losses: `1 - soft AUROC / AP / calibrated AP`, pairwise and set-level."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor

from .. import _checks, distributed
from .._options import Average, Task
from ..functional._ranking_core import (
    ColumnStats,
    Metric,
    StatsHook,
    check_ranking_options,
    ranking_metric,
)
from ._base import RunningStatistics, keep_temperature, set_level_repr


class _RankingLoss(RunningStatistics):
    """`1 - soft metric` of one ranking function, with its options fixed.

    Options are validated once here; `forward` returns the loss (per class for
    `average="none"`), `metric` the exact metric (temperature 0) with the same options.
    A tensor temperature is kept as a buffer (an `nn.Parameter` stays a parameter).

    Set-level options:

    - `sync_dist=True` gathers the scores and targets of every process of `process_group`
      (default: the whole world) with an autograd-aware all-gather before the metric, so
      that every process computes the metric of the global batch, with the gradient of one
      process on the concatenated batch (times `world_size`, which data-parallel gradient
      averaging divides out). Processes may hold batches of different sizes (one small
      extra all-gather learns the sizes per call: in host memory with gloo or a `cpu:`
      device map, with one host synchronisation with NCCL alone). `metric` then also
      reports the global exact metric.
    - `momentum=m` mixes the per-class statistics of the batch with running ones,
      `m * running + (1 - m) * batch`, before the formula: the sum of the per-positive
      terms and its normaliser (AUROC: the mis-ordered pair mass and the number of
      (positive, negative) pairs; AP and cAP: the sum of the per-positive precisions and
      the number of positives), plus the number of positives for `average="weighted"`.
      The running statistics (buffers `running_num`, `running_den`, `running_pos`, saved in
      `state_dict`) hold the previous mixed ones, detached, and update in training mode; the
      first batch initialises them. The value is then a ratio of exponential moving
      averages: the metric pooled over the pairs (AUROC) or positives (AP, cAP) of the last
      ~`1 / (1 - m)` batches, each ranked within its own batch. A class without positives
      in this batch keeps its running value. This lowers the variance of the estimate, not
      the bias of ranking within small batches (pairs across batches are never compared).
    """

    _metric: ClassVar[Metric]
    temperature: float | Tensor

    def __init__(self, *, task: Task, num_classes: int | None = None, average: Average = "macro",
                 temperature: float | Tensor = 1.0, ignore_index: int | None = None,
                 chunk_size: int | None = None, validate_args: bool = True,
                 sync_dist: bool = False,
                 process_group: torch.distributed.ProcessGroup | None = None,
                 momentum: float | None = None, **unexpected: Any) -> None:
        super().__init__()
        name = type(self).__name__
        _checks.check_no_extra_options(name, unexpected)
        check_ranking_options(name, task=task, num_classes=num_classes, average=average,
                              temperature=temperature, ignore_index=ignore_index,
                              chunk_size=chunk_size)
        self.options: dict[str, Any] = dict(
            task=task, num_classes=num_classes, average=average, ignore_index=ignore_index,
            chunk_size=chunk_size, validate_args=validate_args)
        keep_temperature(self, temperature)
        self.keep_set_level_options(sync_dist, process_group, momentum)
        if momentum is not None:
            columns = 1 if task == "binary" or average == "micro" else int(num_classes or 1)
            self.register_running(ColumnStats._fields, (columns,))

    def _gather(self, input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """Scores and targets of every process, concatenated in rank order, with gradient."""
        if not (self.sync_dist and distributed.is_distributed()) or input.ndim == 0:
            return input, target
        group = self.process_group
        (input, target), _ = distributed.all_gather_rows(input, target, process_group=group)
        return input, target

    def _hook(self, stats: ColumnStats) -> ColumnStats:
        # a batch that defines no column (no samples, or no positive anywhere) holds none
        # of these statistics
        entries = (stats.den > 0).any() | (stats.pos > 0).any()
        return ColumnStats(*self.mix_running(stats, entries))

    def _value(self, input: Tensor, target: Tensor, temperature: float | Tensor,
               hook: StatsHook | None = None) -> Tensor:
        input, target = self._gather(input, target)
        return ranking_metric(type(self).__name__, self._metric, input, target,
                              temperature=temperature, hook=hook, check=False, **self.options)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """The loss `1 - soft metric`, in [0, 1]."""
        hook = None
        if self.momentum is not None:
            self.check_running_device(input)
            hook = self._hook
        return 1.0 - self._value(input, target, self.temperature, hook)

    if TYPE_CHECKING:  # calling the Module runs `forward`: its signature for type checkers
        __call__ = forward

    @torch.no_grad()
    def metric(self, input: Tensor, target: Tensor) -> Tensor:
        """The exact metric (temperature 0) with this loss's options; no gradient.

        With `sync_dist`, the metric of the global batch; never the running statistics.
        """
        return self._value(input, target, 0.0)

    def extra_repr(self) -> str:
        return set_level_repr(self, self.options)


class SoftAUROCLoss(_RankingLoss):
    """`1 - soft AUROC`, the Module of [`soft_auroc`][softmetrics.functional.soft_auroc]:
    a pairwise ranking loss for imbalanced binary or multilabel tasks.

    Takes the options of `soft_auroc` (see there), `max_fpr` included (the standardised
    partial AUROC, checked here to lie in (0, 1]; with `momentum`, the running statistics
    are the capped sums), and the set-level `sync_dist`, `process_group` (the metric of
    the batch of every process) and `momentum` (running statistics) of every ranking loss.

    Examples:
        >>> import torch
        >>> from softmetrics import SoftAUROCLoss
        >>> loss_fn = SoftAUROCLoss(task="binary", temperature=0.5)
        >>> scores = torch.tensor([2.0, 0.5, 0.5, -1.0, 1.0], requires_grad=True)
        >>> target = torch.tensor([1, 1, 0, 0, 0])
        >>> loss_fn(scores, target)
        tensor(0.2413, grad_fn=<RsubBackward1>)
        >>> loss_fn.metric(scores, target)
        tensor(0.7500)
        >>> partial_fn = SoftAUROCLoss(task="binary", max_fpr=0.3, temperature=0.5)
        >>> partial_fn(scores, target), partial_fn.metric(scores, target)
        (tensor(0.3494, grad_fn=<RsubBackward1>), tensor(0.7059))
    """

    _metric = "auroc"

    def __init__(self, *, task: Task, num_classes: int | None = None, average: Average = "macro",
                 max_fpr: float | None = None, temperature: float | Tensor = 1.0,
                 ignore_index: int | None = None, chunk_size: int | None = None,
                 validate_args: bool = True, sync_dist: bool = False,
                 process_group: torch.distributed.ProcessGroup | None = None,
                 momentum: float | None = None) -> None:
        super().__init__(task=task, num_classes=num_classes, average=average,
                         temperature=temperature, ignore_index=ignore_index,
                         chunk_size=chunk_size, validate_args=validate_args,
                         sync_dist=sync_dist, process_group=process_group, momentum=momentum)
        check_ranking_options(type(self).__name__, task=task, num_classes=num_classes,
                              average=average, temperature=temperature,
                              ignore_index=ignore_index, chunk_size=chunk_size,
                              max_fpr=max_fpr)
        self.options["max_fpr"] = max_fpr


class SoftAveragePrecisionLoss(_RankingLoss):
    """`1 - soft AP`, the Module of
    [`soft_average_precision`][softmetrics.functional.soft_average_precision]; with
    `average="macro"`, `1 - mean AP`.

    Takes the options of `soft_average_precision` and the set-level options of
    [`SoftAUROCLoss`][softmetrics.SoftAUROCLoss].

    Examples:
        >>> import torch
        >>> from softmetrics import SoftAveragePrecisionLoss
        >>> loss_fn = SoftAveragePrecisionLoss(task="multilabel", num_classes=2,
        ...                                    temperature=0.1)
        >>> scores = torch.tensor([[2.0, -1.0], [0.5, 1.5], [-0.5, 0.0]])
        >>> target = torch.tensor([[1, 0], [0, 1], [1, 1]])
        >>> loss_fn(scores, target), loss_fn.metric(scores, target)
        (tensor(0.0833), tensor(0.9167))
    """

    _metric = "ap"


class SoftCalibratedAveragePrecisionLoss(_RankingLoss):
    """`1 - soft cAP`, the Module of
    [`soft_calibrated_average_precision`][softmetrics.functional.soft_calibrated_average_precision];
    with `average="macro"`, `1 - mean cAP`.

    Takes the options of `soft_calibrated_average_precision` and the set-level options of
    [`SoftAUROCLoss`][softmetrics.SoftAUROCLoss].

    Examples:
        >>> import torch
        >>> from softmetrics import SoftCalibratedAveragePrecisionLoss
        >>> loss_fn = SoftCalibratedAveragePrecisionLoss(task="binary", temperature=0.5)
        >>> scores = torch.tensor([2.0, 0.7, 0.5, -1.0, 1.0, 0.0], requires_grad=True)
        >>> target = torch.tensor([1, 0, 1, 0, 0, 0])
        >>> loss_fn(scores, target)
        tensor(0.1930, grad_fn=<RsubBackward1>)
        >>> loss_fn.metric(scores, target)
        tensor(0.8333)
    """

    _metric = "cap"
